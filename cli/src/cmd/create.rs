//! `snap create`.

use anyhow::{Result, anyhow};
use snap_engine::Error;
use snap_engine::commands::create;

use crate::args;
use crate::ctx::*;
use crate::output::{self, outln};

/// `snap create`.
pub(crate) fn create(ctx: &Ctx, a: &args::CreateArgs) -> Result<u8> {
    let ui = ctx.ui;
    let (loc, is_default) = ctx.location()?;
    let repo = match ctx.open() {
        Err(e) if is_default && matches!(engine_error(&e), Some(Error::RepositoryNotFound(_))) => {
            if let Some(hint) = ctx.forgotten_profile() {
                return Err(anyhow!(
                    "not creating the local default repository {loc}: {hint}; or give \
                     --repo DIR for a local repository"
                ));
            }
            let (repo, r) = ctx.init(&loc, ctx.init_options(false)?)?;
            ui.say(&format!(
                "created a new repository at {} (the default; use --repo for another)",
                r.location
            ));
            ui.say(LOST_PASSWORD);
            repo
        }
        other => other?,
    };
    if !repo.is_encrypted() {
        ui.say("note: this repository is not encrypted");
    }
    let opts = create::CreateOptions {
        paths: a.paths.clone(),
        tags: split_tags(&a.tags)?,
        host: match &a.host {
            Some(h) if h.trim().is_empty() => {
                return Err(anyhow!(
                    "--host is empty: leave it out for this machine's name"
                ));
            }
            h => h.clone(),
        },
        excludes: a.excludes.clone(),
        parent: a.parent.clone(),
        force: a.force,
        skip_if_unchanged: match (a.skip_if_unchanged, a.no_skip_if_unchanged) {
            (true, _) => true,
            (_, true) => false,
            _ => ctx.profile.skip_if_unchanged.unwrap_or(false),
        },
        no_delete: a.no_delete || ctx.profile.no_delete.unwrap_or(false),
        ..Default::default()
    };
    say_interrupted_on_ctrl_c();
    let r = create::create(&repo, &opts, ui)?;
    if let Some(lock) = &r.lock_left
        && !ui.json
    {
        ui.say(&output::lock_left(lock));
    }
    let s = &r.snapshot.summary;
    if r.skipped_unchanged && !ui.json {
        ui.say(&format!(
            "{}: no snapshot written",
            output::unchanged_since(&r.snapshot_id)
        ));
    } else if ui.json {
        output::report(&r.report())?;
    } else {
        ui.say(&format!(
            "files: {} new, {} changed, {} unmodified; {} read, {} added to the repository in {:.1}s",
            s.files_new,
            s.files_changed,
            s.files_unmodified,
            output::bytes(s.bytes_read),
            output::bytes(s.bytes_added),
            s.duration_ns as f64 / 1e9
        ));
        // The id for scripts; -q means errors only (use --json).
        if ui.level != output::Level::Quiet {
            outln!("{}", r.snapshot_id)?;
        }
    }
    for p in &r.unused_excludes {
        ui.say(&format!(
            "note: --exclude {p:?} matched nothing{}",
            exclude_advice(p)
        ));
    }
    if !r.warnings.is_empty() {
        let unread = r.warnings.len() as u64 - r.changed_while_read;
        let mut parts = Vec::new();
        if unread > 0 {
            parts.push(format!(
                "{unread} path(s) could not be read and are not in it"
            ));
        }
        if r.changed_while_read > 0 {
            parts.push(format!(
                "{} file(s) changed while they were read and are stored as read \
                 (the next backup reads them again)",
                r.changed_while_read
            ));
        }
        let what = if r.skipped_unchanged {
            output::unchanged_since(&r.snapshot_id)
        } else {
            format!("snapshot {} was written", r.snapshot_id.short())
        };
        ui.say(&format!(
            "{what}, but {} (listed above)",
            parts.join(", and ")
        ));
        return Ok(3);
    }
    Ok(0)
}

/// Why an exclude pattern may have matched nothing, for the patterns
/// newcomers write.
pub(crate) fn exclude_advice(p: &str) -> &'static str {
    if p.starts_with('~') {
        ": the shell expands ~ only outside quotes; write \"$HOME/...\""
    } else if p.starts_with("./") || p.starts_with("../") {
        ": patterns are not relative to the current folder; write an absolute path, or \
         a name alone to match it anywhere"
    } else {
        ""
    }
}

/// What a Ctrl-C during a backup says, alone on its line.
const INTERRUPTED: &str = "interrupted: what was uploaded is reused by the next backup";

/// A Ctrl-C during a backup ends it with one line and exit code 130, as a
/// shell reports a command that SIGINT ended. The line is true: the backup
/// indexes its packs every few (`packer::CHECKPOINT_PACKS`) as it goes, and
/// the next backup finds their chunks in the index. Its lock is left to
/// expire, as when the process is killed.
#[cfg(unix)]
fn say_interrupted_on_ctrl_c() {
    use std::io::IsTerminal;
    use std::sync::atomic::{AtomicBool, Ordering};
    static TERMINAL: AtomicBool = AtomicBool::new(false);
    extern "C" fn on_sigint(_: libc::c_int) {
        // Only async-signal-safe calls here: an atomic load, write, _exit.
        let clear: &[u8] = if TERMINAL.load(Ordering::Relaxed) {
            // The progress bar's line, cleared and returned to.
            b"\r\x1b[K"
        } else {
            b""
        };
        let line = INTERRUPTED.as_bytes();
        // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffers
        // are static and live for the whole call.
        unsafe {
            libc::write(2, clear.as_ptr().cast(), clear.len());
            libc::write(2, line.as_ptr().cast(), line.len());
            libc::write(2, b"\n".as_ptr().cast(), 1);
            libc::_exit(130);
        }
    }
    TERMINAL.store(std::io::stderr().is_terminal(), Ordering::Relaxed);
    // SAFETY: the handler only makes async-signal-safe calls (above).
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
}

#[cfg(not(unix))]
fn say_interrupted_on_ctrl_c() {}
