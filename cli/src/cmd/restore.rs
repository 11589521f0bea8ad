//! `snap restore` and `snap dump`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, anyhow};

use snap_engine::commands::restore::Change;
use snap_engine::commands::{self, restore};
use snap_engine::snapshot::SnapshotFilter;
use snap_engine::{Id, Repository};

use crate::args;
use crate::ctx::*;
use crate::output::{self, Ui, outln};

/// `snap restore`: plan, confirm deletions, carry out, say how to undo.
pub(crate) fn restore(ctx: &Ctx, a: &args::RestoreArgs) -> Result<u8> {
    let ui = ctx.ui;
    return_large_buffers_on_free();
    let repo = ctx.open_full("restore files")?;
    let mut filter = snapshot_filter(&a.filter)?;
    let (spec, path) = split_snapshot_path(&a.snapshot);
    // `latest:PATH` is the newest snapshot that has PATH.
    if let Some(p) = &path {
        filter.containing.push(path_bytes(p)?);
    }
    let rollback = if a.allow_rollback {
        Rollback::Warn
    } else {
        Rollback::Refuse
    };
    let (id, _) = choose(&repo, ui, spec, &filter, rollback)?;
    let opts = restore::RestoreOptions {
        snapshot: id.to_hex(),
        path,
        target: a.target.clone(),
        filter,
        include: a.include.clone(),
        exclude: a.exclude.clone(),
        delete: a.delete,
        overwrite: a
            .overwrite
            .parse()
            .map_err(|e: String| anyhow!("--overwrite: {e}"))?,
        no_undo: a.no_undo,
    };
    let repo = repo.indexed()?;
    let plan = restore::plan(&repo, &opts)?;
    if a.dry_run {
        return print_restore_plan(ui, &plan);
    }
    confirm_deletions(&plan, a.yes)?;
    let r = restore::apply(repo, &plan, &opts, ui)?;
    let undo_command = r.undo.as_ref().map(restore::Undo::command);
    if ui.json {
        output::report(&r.report())?;
    } else {
        let mut parts = vec![format!("{} files written", r.files_written)];
        if r.files_kept > 0 {
            parts.push(format!("{} already right", r.files_kept));
        }
        if r.files_updated > 0 {
            parts.push(format!("{} with metadata updated", r.files_updated));
        }
        if r.skipped > 0 {
            parts.push(format!("{} left by --overwrite", r.skipped));
        }
        if a.delete {
            parts.push(format!("{} deleted ({} files)", r.deleted, r.files_deleted));
        }
        ui.say(&format!(
            "restored snapshot {} into {}: {}; {} in {} files and {} directories",
            r.snapshot_id.short(),
            a.target.display(),
            parts.join(", "),
            output::bytes(r.bytes),
            r.files,
            r.dirs
        ));
        if let (Some(u), Some(cmd)) = (&r.undo, &undo_command) {
            ui.say(&format!(
                "what was there before is in snapshot {}; to put it back: {cmd}",
                u.snapshot_id.short()
            ));
            if let Some(first) = u.earlier.last() {
                ui.say(&format!(
                    "an earlier restore of this snapshot here took undo snapshot {}: \
                     if it was interrupted, what was there before it is in that one",
                    first.short()
                ));
            }
        }
    }
    if r.devices_withheld > 0 && !ui.json {
        ui.say(&format!(
            "device file not created ({} in all), as the format requires: the repository is not \
             encrypted, so nothing proves they are the ones you backed up",
            r.devices_withheld
        ));
    }
    if !r.errors.is_empty() {
        eprintln!(
            "error: {} item(s) could not be restored (listed above)",
            r.errors.len()
        );
        return Err(Reported(1).into());
    }
    if !r.warnings.is_empty() {
        ui.say(&format!(
            "restored, with {} warning(s) listed above: names escaped for this system, \
             attributes the target refused, or entries it cannot hold",
            r.warnings.len()
        ));
        return Ok(3);
    }
    Ok(0)
}

/// `snap dump`.
pub(crate) fn dump(ctx: &Ctx, a: &args::DumpArgs) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open_full("read files from snapshots")?;
    let filter = snapshot_filter(&a.filter)?;
    let rollback = if a.allow_rollback {
        Rollback::Warn
    } else {
        Rollback::Refuse
    };
    let (id, _) = choose(&repo, ui, &a.snapshot, &filter, rollback)?;
    let path = path_bytes(&a.path)?;
    dump_to_stdout(&repo, &id, &filter, &path)?;
    Ok(0)
}

/// glibc raises its mmap threshold to the size of each large block freed,
/// so after the first multi-MiB buffers every later one comes from a
/// per-thread heap that keeps what it is given. A restore frees pack ranges
/// on other threads than the I/O threads that read them, and its resident
/// memory grew from 64 to 141 MB that way (local repository, 1.7 GB of
/// files). A fixed 1 MiB threshold hands large buffers back when freed: 88
/// MB, in the same time. Only for restore: a backup allocates a fresh
/// buffer per file and per chunk, and there the page faults cost 0.2 s of
/// 3.2 s; `check --read-data` lost 0.4 s.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn return_large_buffers_on_free() {
    // SAFETY: mallopt sets a tunable of the C allocator; it touches no Rust
    // state, and any value is valid for M_MMAP_THRESHOLD up to 32 MiB.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn return_large_buffers_on_free() {}

/// `ID:PATH` into the snapshot and the path in it (`latest:/a`).
pub(crate) fn split_snapshot_path(spec: &str) -> (&str, Option<PathBuf>) {
    match spec.split_once(':') {
        Some((id, path)) if !path.is_empty() => {
            let path = if path.starts_with('/') {
                PathBuf::from(path)
            } else {
                PathBuf::from(format!("/{path}"))
            };
            (id, Some(path))
        }
        Some((id, _)) => (id, None),
        None => (spec, None),
    }
}

/// `--dry-run`: every change but the files kept (JSON lists those too),
/// then the totals.
pub(crate) fn print_restore_plan(ui: &Ui, plan: &restore::Plan) -> Result<u8> {
    let r = plan.report();
    if ui.json {
        output::report(&r)?;
    } else {
        for c in &r.changes {
            let mark = match c.change {
                Change::Create => "+",
                Change::Replace => "R",
                Change::Update => "U",
                Change::Delete => "-",
                Change::Skip => "=",
                Change::Keep => continue,
            };
            outln!("{mark} {}", c.path)?;
        }
        let said: Vec<String> = Change::ALL
            .iter()
            .map(|c| {
                let t = r.totals.get(c).copied().unwrap_or_default();
                format!("{c} {} ({})", t.entries, output::bytes(t.bytes))
            })
            .collect();
        ui.say(&format!(
            "dry run of snapshot {} into {}, nothing changed: {}",
            plan.snapshot_id.short(),
            plan.target.display(),
            said.join(", ")
        ));
        for e in &plan.errors {
            ui.say(&format!("would fail: {e}"));
        }
    }
    Ok(if plan.errors.is_empty() { 0 } else { 1 })
}

/// A restore that deletes more than half of what the target holds is most
/// likely aimed at the wrong folder: it asks on a terminal, and stops
/// without one unless --yes was given.
pub(crate) fn confirm_deletions(plan: &restore::Plan, yes: bool) -> Result<()> {
    let Some(what) = deletes_most(plan).filter(|_| !yes) else {
        return Ok(());
    };
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        if confirm(&format!("{what}. Go on?"))? {
            return Ok(());
        }
        return Err(anyhow!("nothing was changed"));
    }
    Err(anyhow!(
        "{what}, more than half: check --target (--dry-run lists them), then add --yes"
    ))
}

/// The rule the CLI and the web page both ask by: the words for a plan
/// that deletes more than half of the files its target holds, else None.
pub(crate) fn deletes_most(plan: &restore::Plan) -> Option<String> {
    let (deleted, existing) = (plan.files_deleted, plan.existing_files);
    (deleted > 0 && deleted * 2 > existing).then(|| {
        format!(
            "this restore deletes {deleted} of the {existing} files in {}",
            plan.target.display()
        )
    })
}

/// `snap dump`: to stdout, which must not be a terminal for a tar stream.
pub(crate) fn dump_to_stdout(
    repo: &Repository,
    id: &Id,
    filter: &SnapshotFilter,
    path: &[u8],
) -> Result<()> {
    /// Notes whether the reader went away, to exit quietly as `ls | head` does.
    struct Watch<W> {
        inner: W,
        closed: bool,
    }
    impl<W: std::io::Write> std::io::Write for Watch<W> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.inner.write(b).inspect_err(|e| {
                self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe;
            })
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush().inspect_err(|e| {
                self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe;
            })
        }
    }
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = Watch {
        inner: std::io::BufWriter::with_capacity(1 << 20, stdout.lock()),
        closed: false,
    };
    // A file is fine on a terminal; a directory's tar stream is not.
    match commands::dump::dump(repo, &id.to_hex(), filter, path, !terminal, &mut out) {
        Ok(_) => Ok(()),
        Err(_) if out.closed => Err(output::ClosedOutput.into()),
        Err(e) => Err(e.into()),
    }
}
