//! Connection profiles in a TOML file, and the resolution of every setting
//! from the command line, the environment and the profile, in that order.

use std::collections::BTreeMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use snap_engine::backend::{Addressing, S3Options};

use crate::args::Global;

/// One profile: everything needed to reach a repository.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub repository: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub addressing: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Run with the shell; its first line of output is the secret.
    pub secret_access_key_command: Option<String>,
    pub connections: Option<usize>,
    pub bulk_delete: Option<bool>,
    pub password_file: Option<PathBuf>,
    pub password_command: Option<String>,
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// `SNAP_CONFIG`, else `snap/config.toml` in the user's config directory.
pub fn path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SNAP_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    Ok(dirs::config_dir()
        .ok_or_else(|| anyhow!("no config directory; set SNAP_CONFIG"))?
        .join("snap")
        .join("config.toml"))
}

impl ConfigFile {
    /// Loads the file (absent means empty), warning when others can read it.
    pub fn load(warn: &dyn Fn(&str)) -> Result<ConfigFile> {
        let path = path()?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.permissions().mode() & 0o077 != 0
        {
            warn(&format!(
                "warning: {} may hold secrets but others can read it (mode {:o}); run chmod 600 on it",
                path.display(),
                meta.permissions().mode() & 0o777
            ));
        }
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid snap config", path.display()))
    }

    /// Writes the file readable by its owner only.
    pub fn save(&self) -> Result<PathBuf> {
        let path = path()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = toml::to_string_pretty(self).context("cannot encode the config")?;
        let tmp = path.with_extension("toml.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// The profile named on the command line or in SNAP_PROFILE, if any.
/// The chosen profile's name; an empty one (`SNAP_PROFILE=`) is an error,
/// not a profile called "".
pub fn profile_name(global: &Global) -> Result<Option<&String>> {
    match &global.profile {
        Some(name) if name.trim().is_empty() => {
            bail!(
                "the profile name is empty (is SNAP_PROFILE set to \"\"?): name a profile or unset it"
            )
        }
        other => Ok(other.as_ref()),
    }
}

pub fn profile(global: &Global, warn: &dyn Fn(&str)) -> Result<Profile> {
    let Some(name) = profile_name(global)? else {
        return Ok(Profile::default());
    };
    let file = ConfigFile::load(warn)?;
    file.profiles.get(name).cloned().ok_or_else(|| {
        anyhow!(
            "no profile {name:?} in {} (create it with `snap config --profile {name} ...`)",
            path().map(|p| p.display().to_string()).unwrap_or_default()
        )
    })
}

fn run_secret_command(cmd: &str) -> Result<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .with_context(|| format!("cannot run the secret command {cmd:?}"))?;
    if !out.status.success() {
        bail!("the secret command {cmd:?} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}

/// Settings for an s3:// repository.
/// A setting by precedence: given on the command line, then the chosen
/// profile, then the environment (which clap fills into the same field),
/// then nothing. The environment once overrode a profile chosen explicitly:
/// `AWS_ENDPOINT_URL` set for another tool sent `-P work` elsewhere.
pub fn pick<T: Clone>(
    global: &Global,
    id: &str,
    flag: &Option<T>,
    profile: &Option<T>,
) -> Option<T> {
    if global.given_on_command_line(id) {
        return flag.clone();
    }
    profile.clone().or_else(|| flag.clone())
}

/// Settings for an s3:// repository.
pub fn s3_options(location: &str, global: &Global, p: &Profile) -> Result<S3Options> {
    let (bucket, root) = S3Options::parse_location(location)?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let region = pick(global, "region", &global.region, &p.region)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_default();
    let addressing: Addressing = pick(
        global,
        "s3_addressing",
        &global.s3_addressing,
        &p.addressing,
    )
    .unwrap_or_else(|| "auto".into())
    .parse()
    .map_err(|e: String| anyhow!("--s3-addressing: {e}"))?;
    let secret = if global.given_on_command_line("secret_access_key") {
        global.secret_access_key.clone()
    } else if let Some(s) = &p.secret_access_key {
        Some(s.clone())
    } else if let Some(cmd) = &p.secret_access_key_command {
        Some(run_secret_command(cmd)?)
    } else {
        global.secret_access_key.clone()
    };
    let mut o = S3Options {
        bucket,
        root,
        endpoint: pick(global, "endpoint", &global.endpoint, &p.endpoint),
        region,
        access_key_id: pick(
            global,
            "access_key_id",
            &global.access_key_id,
            &p.access_key_id,
        ),
        secret_access_key: secret,
        session_token: env("AWS_SESSION_TOKEN"),
        addressing,
        bulk_delete: !global.no_bulk_delete && p.bulk_delete.unwrap_or(true),
        ..S3Options::default()
    };
    if let Some(c) = global.connections.or(p.connections) {
        if c == 0 {
            bail!("--connections must be at least 1");
        }
        o.connections = c;
    }
    Ok(o)
}

/// A profile as shown to people: secrets are replaced by a mark.
pub fn redacted(p: &Profile) -> Profile {
    let mut shown = p.clone();
    if shown.secret_access_key.is_some() {
        shown.secret_access_key = Some("(set, hidden)".into());
    }
    shown
}
