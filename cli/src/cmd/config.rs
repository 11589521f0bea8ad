//! `snap config`: profiles, the default profile, and `--check`.

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use snap_engine::Error;

use crate::args::{self, Global};
use crate::config;
use crate::config::Profile;
use crate::ctx::*;
use crate::output::{self, Ui, out, outln};

/// `snap config`: saves the connection settings given on the command line
/// (and, with --save-keys, the keys in the environment) into a profile,
/// then shows it without secrets.
pub(crate) fn configure(g: &Global, a: &args::ConfigArgs, ui: &Ui) -> Result<u8> {
    let mut file = config::ConfigFile::load(&|w| ui.say(w))?;
    const SETTINGS: [&str; 11] = [
        "repo",
        "endpoint",
        "region",
        "s3_addressing",
        "access_key_id",
        "secret_access_key",
        "connections",
        "password_file",
        "password_command",
        "cache_dir",
        "no_bulk_delete",
    ];
    let given: Vec<&str> = SETTINGS
        .into_iter()
        .filter(|id| g.given_on_command_line(id))
        .collect();
    let profile = config::profile_name(g)?;
    if let Some(name) = &a.default {
        if !file.profiles.contains_key(name) {
            return Err(anyhow!(
                "no profile {name:?} to make the default (create it with `snap config --profile \
                 {name} --repo ...`)"
            ));
        }
        file.default = Some(name.clone());
        let path = file.save()?;
        ui.say(&format!(
            "profile {name} is now the default (in {})",
            path.display()
        ));
        return Ok(0);
    }
    if a.no_default {
        file.default = None;
        file.save()?;
        ui.say("no profile is the default now");
        return Ok(0);
    }
    if profile.is_none()
        && (!given.is_empty()
            || a.save_keys
            || a.secret_command.is_some()
            || a.on_failure.is_some()
            || a.remove)
    {
        return Err(anyhow!(
            "settings are saved in a profile: add --profile NAME (given: {})",
            given
                .iter()
                .map(|id| format!("--{}", id.replace('_', "-")))
                .chain(a.save_keys.then(|| "--save-keys".to_string()))
                .chain(
                    a.secret_command
                        .as_ref()
                        .map(|_| "--secret-command".to_string())
                )
                .chain(a.on_failure.as_ref().map(|_| "--on-failure".to_string()))
                .chain(a.remove.then(|| "--remove".to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let Some(name) = profile else {
        let names: Vec<&String> = file.profiles.keys().collect();
        if ui.json {
            output::report(&Listing {
                path: config::path()?,
                profiles: names,
                default: file.default.as_deref(),
            })?;
        } else {
            outln!("config file: {}", config::path()?.display())?;
            for n in names {
                let mark = if file.default.as_ref() == Some(n) {
                    " (default)"
                } else {
                    ""
                };
                outln!("profile {n}{mark}")?;
            }
        }
        return Ok(0);
    };
    if a.remove {
        if file.profiles.remove(name).is_none() {
            return Err(anyhow!("no profile {name:?}"));
        }
        if file.default.as_ref() == Some(name) {
            file.default = None;
        }
        file.save()?;
        ui.say(&format!("removed profile {name}"));
        return Ok(0);
    }
    let from_cli = |id: &str| g.given_on_command_line(id);
    let existed = file.profiles.contains_key(name);
    let p = file.profiles.entry(name.clone()).or_default();
    let mut changed = false;
    macro_rules! take {
        ($id:literal, $field:expr, $value:expr) => {
            if from_cli($id) {
                $field = $value;
                changed = true;
            }
        };
    }
    take!("repo", p.repository, g.repo.clone());
    take!("endpoint", p.endpoint, g.endpoint.clone());
    take!("region", p.region, g.region.clone());
    take!("s3_addressing", p.addressing, g.s3_addressing.clone());
    take!("access_key_id", p.access_key_id, g.access_key_id.clone());
    take!(
        "secret_access_key",
        p.secret_access_key,
        g.secret_access_key.clone()
    );
    take!("connections", p.connections, g.connections);
    take!("password_file", p.password_file, g.password_file.clone());
    take!(
        "password_command",
        p.password_command,
        g.password_command.clone()
    );
    take!("cache_dir", p.cache_dir, g.cache_dir.clone());
    if g.no_bulk_delete {
        p.bulk_delete = Some(false);
        changed = true;
    }
    if let Some(cmd) = &a.secret_command {
        p.secret_access_key_command = Some(cmd.clone());
        p.secret_access_key = None;
        changed = true;
    }
    if let Some(cmd) = &a.on_failure {
        p.on_failure = (!cmd.trim().is_empty()).then(|| cmd.clone());
        changed = true;
    }
    if a.save_keys {
        let id = std::env::var("AWS_ACCESS_KEY_ID")
            .map_err(|_| anyhow!("--save-keys: AWS_ACCESS_KEY_ID is not set"))?;
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
            .map_err(|_| anyhow!("--save-keys: AWS_SECRET_ACCESS_KEY is not set"))?;
        p.access_key_id = Some(id);
        p.secret_access_key = Some(secret);
        p.secret_access_key_command = None;
        changed = true;
    }
    if let Some(style) = &p.addressing {
        style
            .parse::<snap_engine::backend::Addressing>()
            .map_err(|e| anyhow!("--s3-addressing: {e}"))?;
    }
    if changed {
        check_profile(name, p)?;
    }
    if !changed && !existed {
        file.profiles.remove(name);
        return Err(anyhow!(
            "no profile {name:?} in {} (create it by giving settings, e.g. `snap config --profile \
             {name} --repo s3://BUCKET/PATH`)",
            config::path()?.display()
        ));
    }
    let mut shown = config::redacted(p);
    shown.name = name.clone();
    let is_default = file.default.as_ref() == Some(name);
    if changed {
        let path = file.save()?;
        ui.say(&format!("saved profile {name} in {}", path.display()));
    }
    if let Some(f) = &shown.password_file {
        warn_if_missing(f);
    }
    let effective = config::effective(g, &shown);
    if ui.json {
        output::report(&Shown {
            name,
            default: is_default,
            settings: &shown,
            in_effect: effective
                .iter()
                .map(|e| InEffect {
                    setting: e.setting,
                    value: &e.value,
                    source: e.source.to_string(),
                })
                .collect(),
        })?;
    } else {
        out!("[profiles.{name}]\n{}", toml::to_string_pretty(&shown)?)?;
        outln!(
            "\nin effect with this profile{} (the command line, then the profile, then the \
             environment):",
            if is_default { ", the default" } else { "" }
        )?;
        for e in &effective {
            outln!(
                "  {:<18} {:<34} {}",
                e.setting,
                format!("from {}", e.source),
                e.value
            )?;
        }
    }
    Ok(0)
}

/// A profile's password file that is not there fails every command that
/// uses the profile: said when the profile is saved or shown.
fn warn_if_missing(file: &std::path::Path) {
    if !file.exists() {
        eprintln!(
            "warning: the password file {0} does not exist: create it readable by you alone, \
             e.g. umask 077; printf '%s\\n' 'PASSPHRASE' > {0}",
            file.display()
        );
    }
}

/// `snap config --check`: each step of reaching the repository in turn,
/// stopping at the first that fails with the setting it points at, as the
/// "Check connection" button of backup apps does.
pub(crate) fn check_connection(ctx: &Ctx) -> Result<u8> {
    let ui = ctx.ui;
    let checked = diagnose(ctx, &mut |step| ui.say(step))?;
    if ui.json {
        output::report(&checked)?;
    }
    Ok(0)
}

/// The steps of `snap config --check`, each said as it passes; the first
/// that fails is the error, naming the setting it points at. The UI's
/// "Check connection" shows the same steps.
pub(crate) fn diagnose(ctx: &Ctx, say: &mut dyn FnMut(&str)) -> Result<Checked> {
    let (loc, is_default) = ctx.location()?;
    if is_default && let Some(hint) = ctx.forgotten_profile() {
        say(&format!("note: {hint}"));
    }
    let backend = match ctx.backend(&loc, false) {
        Ok(b) => b,
        // A local folder without a repository yet: the settings are fine.
        Err(e) if matches!(engine_error(&e), Some(Error::RepositoryNotFound(_))) => {
            say("settings: ok");
            return Err(e);
        }
        Err(e) => return Err(e.context("the settings are not usable")),
    };
    say(&format!("settings: ok ({})", backend.location()));
    let keys = backend
        .list("keys/")
        .context("cannot list the repository's keys")?;
    say(&format!(
        "storage: ok (reached and listed; {} key file(s))",
        keys.len()
    ));
    let repo = ctx.open_on(backend.clone(), false)?;
    let what = if repo.is_encrypted() {
        "encrypted, and the password opens it"
    } else {
        "NOT encrypted"
    };
    say(&format!(
        "repository: ok ({}, {what})",
        repo.config().id.short()
    ));
    Ok(Checked {
        location: backend.location().to_string(),
        repository_id: repo.config().id,
        encrypted: repo.is_encrypted(),
    })
}

/// A profile's settings checked as a command would check them, when they
/// are saved: `snap config` once saved a mistyped `s3:bucket` or an
/// endpoint with a path, found wrong only by the first backup cron ran.
pub(crate) fn check_profile(name: &str, p: &Profile) -> Result<()> {
    if let Some(r) = &p.repository {
        if r.trim().is_empty() {
            return Err(anyhow!("profile {name}: the repository location is empty"));
        }
        check_location(r)?;
    }
    if let Some(e) = &p.endpoint {
        let bucket = p
            .repository
            .as_deref()
            .and_then(|r| snap_engine::backend::S3Options::parse_location(r).ok())
            .map(|(bucket, _)| bucket);
        snap_engine::backend::S3Options::check_endpoint(e, bucket.as_deref())?;
    }
    if p.region.as_ref().is_some_and(|r| r.trim().is_empty()) {
        return Err(anyhow!(
            "profile {name}: the region is empty (leave --region out for the default)"
        ));
    }
    let local = p
        .repository
        .as_ref()
        .is_some_and(|r| !r.starts_with("s3://"));
    let s3: Vec<&str> = [
        ("--endpoint", p.endpoint.is_some()),
        ("--region", p.region.is_some()),
        ("--s3-addressing", p.addressing.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect();
    if local && !s3.is_empty() {
        return Err(anyhow!(
            "profile {name}: {} appl{} to S3 repositories only, and its repository {:?} is a \
             local folder; for a bucket write --repo s3://BUCKET[/PATH]",
            s3.join(", "),
            if s3.len() == 1 { "ies" } else { "y" },
            p.repository.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}

/// `snap config`: the file and its profiles.
#[derive(Serialize)]
struct Listing<'a> {
    path: std::path::PathBuf,
    profiles: Vec<&'a String>,
    default: Option<&'a str>,
}

/// `snap config --profile NAME`: the profile, and each setting in effect.
#[derive(Serialize)]
struct Shown<'a> {
    name: &'a str,
    default: bool,
    settings: &'a Profile,
    in_effect: Vec<InEffect<'a>>,
}

#[derive(Serialize)]
struct InEffect<'a> {
    setting: &'a str,
    value: &'a str,
    source: String,
}

/// `snap config --check`, when every step passed.
#[derive(Serialize)]
pub(crate) struct Checked {
    pub(crate) location: String,
    pub(crate) repository_id: snap_engine::Id,
    pub(crate) encrypted: bool,
}
