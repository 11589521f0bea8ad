//! Connection profiles in a TOML file, and the resolution of every setting
//! from the command line, the environment and the profile, in that order.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use snap_engine::backend::{Addressing, S3Options};

use crate::args::{Global, Source};

/// One profile: everything needed to reach a repository.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name in the file (not stored inside the profile).
    #[serde(skip)]
    pub name: String,
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
    /// The folders `snap ui` backs up ("Backup now" and the schedule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Exclude patterns for those backups, as `--exclude` takes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// How often `snap ui` backs up by itself: "off", "15m", "1h", ...
    pub schedule: Option<String>,
    /// After each automatic backup, keep only this many snapshots of this
    /// device (per set of folders); none keeps them all.
    pub keep_last: Option<u32>,
    /// Run with the shell when an automatic backup fails, with
    /// SNAP_PROFILE and SNAP_ERROR set.
    pub on_failure: Option<String>,
    /// Write no snapshot when nothing changed since the last one (`snap
    /// create` with this profile, unless `--skip-if-unchanged` or
    /// `--no-skip-if-unchanged` says otherwise). Unset: off for `snap
    /// create`; the page's schedule takes it as on.
    pub skip_if_unchanged: Option<bool>,
    /// This device's key may not delete (`--no-delete` on every backup).
    pub no_delete: Option<bool>,
    /// `snap init --object-lock-days` for repositories made with this
    /// profile.
    pub object_lock_days: Option<u32>,
    /// `snap init --object-lock-mode`; governance when unset.
    pub object_lock_mode: Option<crate::args::ObjectLockMode>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The profile used when none is named: `snap config --default NAME`.
    /// Without one, a newcomer's `snap create DIR` backed up into the local
    /// default repository while their profile pointed at a bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
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
        if let Some(mode) = others_can_read(&path) {
            warn(&format!(
                "warning: {} may hold secrets but others can read it (mode {mode:o}); run chmod 600 on it",
                path.display(),
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
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            only_the_owner_reads(&mut o);
            let mut f = o
                .open(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
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

/// A profile name made of what the page accepts (letters, digits, '.',
/// '_', '-', at most 64): "My Laptop" becomes "my-laptop". Lower case;
/// any other character, spaces included, becomes '-', a run of them one,
/// and none is left at either end. Empty when nothing usable is left.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || "._".contains(c) {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(64);
    out.trim_end_matches('-').to_string()
}

/// The profile in use and how it came to be chosen.
#[derive(Debug, Default)]
pub struct Chosen {
    /// Empty (`Profile::default()`) when no profile is in use.
    pub profile: Profile,
    /// Every profile in the file, to name them when none is in use.
    pub all: Vec<String>,
}

/// The profile named with -P or SNAP_PROFILE, else the file's default.
pub fn choose(global: &Global, warn: &dyn Fn(&str)) -> Result<Chosen> {
    choose_in(global, &ConfigFile::load(warn)?)
}

/// [`choose`] in a file already read (snap ui keeps it in memory).
pub fn choose_in(global: &Global, file: &ConfigFile) -> Result<Chosen> {
    let named = profile_name(global)?;
    let all = file.profiles.keys().cloned().collect();
    let (name, by_default) = match (named, &file.default) {
        (Some(n), _) => (n.clone(), false),
        // A repository named for this command (--repo, SNAP_REPOSITORY)
        // is not overruled by a default profile nobody asked for.
        (None, Some(_)) if global.repo.is_some() => return Ok(Chosen::default()),
        (None, Some(d)) => (d.clone(), true),
        (None, None) => {
            return Ok(Chosen {
                all,
                ..Chosen::default()
            });
        }
    };
    let Some(p) = file.profiles.get(&name) else {
        let path = path().map(|p| p.display().to_string()).unwrap_or_default();
        if by_default {
            bail!(
                "the default profile {name:?} is not in {path}: choose another with `snap config \
                 --default NAME`, or create it with `snap config --profile {name} ...`"
            );
        }
        bail!("no profile {name:?} in {path} (create it with `snap config --profile {name} ...`)");
    };
    let mut profile = p.clone();
    profile.name = name;
    Ok(Chosen { profile, all })
}

/// The permission bits of a file that others than its owner can read
/// (Unix); `None` when only the owner can, or where modes do not say.
pub(crate) fn others_can_read(path: &std::path::Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The config holds secrets: mode 0600 on Unix. On Windows the file is
/// created in the user's own profile folder (`%APPDATA%`), whose
/// inherited ACL lets only that user, administrators and SYSTEM read it;
/// snap sets no ACL of its own (the README says so).
fn only_the_owner_reads(o: &mut std::fs::OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(o, 0o600);
    #[cfg(not(unix))]
    let _ = o;
}

fn run_secret_command(cmd: &str) -> Result<String> {
    let out = crate::password::shell(cmd)
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

/// Where `pick` takes the setting from.
pub fn source<T>(
    global: &Global,
    id: &str,
    flag: &Option<T>,
    p: &Profile,
    field: &Option<T>,
) -> Option<Source> {
    if global.given_on_command_line(id) {
        return flag.as_ref().map(|_| Source::CommandLine);
    }
    if field.is_some() {
        return Some(Source::Profile(p.name.clone()));
    }
    flag.as_ref().and(global.source(id))
}

/// The region, with where it comes from: beside the command line and the
/// profile, AWS_REGION and AWS_DEFAULT_REGION.
fn region(global: &Global, p: &Profile) -> Option<(String, Source)> {
    if let Some(r) = pick(global, "region", &global.region, &p.region) {
        let from = source(global, "region", &global.region, p, &p.region)?;
        return Some((r, from));
    }
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .find_map(|var| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| (v, Source::Environment(var)))
        })
}

/// One setting as `snap config --profile NAME` shows it: the value in
/// effect for a command run now with that profile, and where it came from.
pub struct Effective {
    pub setting: &'static str,
    pub value: String,
    pub source: Source,
}

/// Every setting in effect with the profile `p`, and its source: a
/// newcomer could not tell why a region or endpoint set in the profile was
/// not the one used.
pub fn effective(global: &Global, p: &Profile) -> Vec<Effective> {
    let mut rows = Vec::new();
    let mut row = |setting: &'static str, v: Option<(String, Source)>| {
        if let Some((value, source)) = v {
            rows.push(Effective {
                setting,
                value,
                source,
            });
        }
    };
    macro_rules! plain {
        ($setting:literal, $id:literal, $flag:expr, $field:expr, $show:expr) => {
            row(
                $setting,
                pick(global, $id, &$flag, &$field)
                    .and_then(|v| source(global, $id, &$flag, p, &$field).map(|s| ($show(v), s))),
            )
        };
    }
    let text = |v: String| v;
    let shown_path = |v: PathBuf| v.display().to_string();
    plain!("repository", "repo", global.repo, p.repository, text);
    plain!("endpoint", "endpoint", global.endpoint, p.endpoint, text);
    row("region", region(global, p));
    plain!(
        "addressing",
        "s3_addressing",
        global.s3_addressing,
        p.addressing,
        text
    );
    plain!(
        "access_key_id",
        "access_key_id",
        global.access_key_id,
        p.access_key_id,
        text
    );
    let hidden = |_: String| "(set, hidden)".to_string();
    if p.secret_access_key.is_none()
        && !global.given_on_command_line("secret_access_key")
        && let Some(cmd) = &p.secret_access_key_command
    {
        row(
            "secret_access_key",
            Some((
                format!("printed by {cmd:?}"),
                Source::Profile(p.name.clone()),
            )),
        );
    } else {
        plain!(
            "secret_access_key",
            "secret_access_key",
            global.secret_access_key,
            p.secret_access_key,
            hidden
        );
    }
    row("password", crate::password::source(global, p));
    plain!(
        "cache_dir",
        "cache_dir",
        global.cache_dir,
        p.cache_dir,
        shown_path
    );
    rows
}

/// Settings for an s3:// repository.
pub fn s3_options(location: &str, global: &Global, p: &Profile) -> Result<S3Options> {
    let (bucket, root) = S3Options::parse_location(location)?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let region = region(global, p).map(|(r, _)| r).unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn a_profile_name_becomes_a_slug() {
        assert_eq!(slug("My Laptop"), "my-laptop");
        assert_eq!(slug("  work  "), "work");
        assert_eq!(slug("Family / Photos!"), "family-photos");
        assert_eq!(slug("nas_2.backup"), "nas_2.backup");
        assert_eq!(slug("Café"), "caf");
        assert_eq!(slug("!!!"), "");
        let long = slug(&"a b ".repeat(40));
        assert!(long.len() <= 64 && !long.ends_with('-'), "{long}");
    }
}
