//! `snap key` and the key-derivation settings of new passwords.

use anyhow::{Result, anyhow};
use snap_engine::report::KeyReport;

use crate::args;
use crate::ctx::*;
use crate::output::{self, Ui, outln};
use crate::password;

/// What `KdfParams::validate` accepts for a new key's knobs, in the words of the flags.
pub(crate) const KDF_RANGE: &str = "--kdf-memory must be 32 to 1048576 (KiB), --kdf-iterations 1 to 64, \
                         and memory × iterations at most 4194304 (4 GiB-passes)";

/// A key weaker than the defaults costs an attacker less per guess.
pub(crate) fn warn_weak_kdf(ui: &Ui, kdf: &snap_engine::crypto::KdfParams) {
    if kdf.weaker_than_default() {
        snap_engine::progress::Progress::warn(
            ui,
            &format!(
                "the key derivation ({} KiB, {} passes) is weaker than the default (65536 KiB, \
             14 passes): each password guess costs an attacker less",
                kdf.memory_kib, kdf.iterations
            ),
        );
    }
}

pub(crate) fn new_kdf(a: &args::NewPasswordArgs) -> Result<snap_engine::crypto::KdfParams> {
    let mut kdf = snap_engine::crypto::KdfParams::new_default();
    if let Some(m) = a.kdf_memory {
        kdf.memory_kib = m;
    }
    if let Some(t) = a.kdf_iterations {
        kdf.iterations = t;
    }
    kdf.validate().map_err(|_| anyhow!(KDF_RANGE))?;
    Ok(kdf)
}

/// What `key add`, `key remove` and `key passwd` report.
#[derive(Default, serde::Serialize)]
struct Outcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    added: Option<snap_engine::Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed: Option<snap_engine::Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<snap_engine::Id>,
}

pub(crate) fn key_command(ctx: &Ctx, cmd: &args::KeyCommand, ui: &Ui) -> Result<u8> {
    use args::KeyCommand;
    let mut repo = ctx.open()?;
    match cmd {
        KeyCommand::List => {
            let keys = repo.keys()?;
            let current = repo.key_id();
            if ui.json {
                let list: Vec<KeyReport> = keys
                    .iter()
                    .map(|(id, k)| KeyReport::new(id, k, current))
                    .collect();
                output::report(&list)?;
            } else {
                outln!(
                    "  {:<8}  {:<10}  {:<19}  {:<16}  User",
                    "ID",
                    "Kind",
                    "Created",
                    "Host"
                )?;
                for (id, k) in &keys {
                    let mark = if Some(*id) == current { "*" } else { " " };
                    let created = chrono::DateTime::from_timestamp_nanos(k.created_ns)
                        .with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S");
                    let kind = k.access().map_or("unknown", |a| a.name());
                    outln!(
                        "{mark} {:<8}  {kind:<10}  {created}  {:<16}  {}",
                        id.short(),
                        k.host,
                        k.username
                    )?;
                }
            }
        }
        KeyCommand::Add(add) => {
            let a = &add.password;
            // Refused before the passphrase is asked for.
            repo.require_full("add keys")?;
            let pw = password::new_key(a.new_password_file.as_deref())?;
            let kdf = new_kdf(a)?;
            warn_weak_kdf(ui, &kdf);
            let id = if add.write_only {
                repo.add_write_only_key(&pw, kdf, add.host.as_deref())?
            } else {
                repo.add_key(&pw, kdf)?
            };
            if ui.json {
                output::report(&Outcome {
                    added: Some(id),
                    ..Outcome::default()
                })?;
            } else {
                let kind = if add.write_only {
                    "write-only key"
                } else {
                    "key"
                };
                ui.say(&format!("added {kind} {}", id.short()));
                if let Some(host) = &add.host {
                    ui.say(&format!(
                        "on {host}, give this passphrase as its password (a password file or \
                         SNAP_PASSWORD): its backups then go here, and it reads none"
                    ));
                }
            }
        }
        KeyCommand::Remove { id } => {
            let removed = repo.remove_key(id)?;
            if ui.json {
                output::report(&Outcome {
                    removed: Some(removed),
                    ..Outcome::default()
                })?;
            } else {
                ui.say(&format!("removed key {}", removed.short()));
            }
        }
        KeyCommand::Passwd(a) => {
            let pw = password::new_key(a.new_password_file.as_deref())?;
            let kdf = new_kdf(a)?;
            warn_weak_kdf(ui, &kdf);
            let id = repo.change_password(&pw, kdf)?;
            if ui.json {
                output::report(&Outcome {
                    key: Some(id),
                    ..Outcome::default()
                })?;
            } else {
                ui.say(&format!("password changed; the key is now {}", id.short()));
            }
        }
    }
    Ok(0)
}
