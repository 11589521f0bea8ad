//! The `snap` command: arguments, passwords, repository location and
//! output. Every decision about data is made by `snap_engine`.

mod args;
mod output;
mod password;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use serde_json::json;
use snap_engine::backend::{Backend, StoreBackend};
use snap_engine::commands::{self, check, create, prune, restore};
use snap_engine::snapshot::{KeepPolicy, Snapshot, SnapshotFilter};
use snap_engine::{Error, Id, InitOptions, Repository};

use args::{Cli, Command, Global};
use output::Ui;

/// A failure that already told the user what went wrong and only needs an
/// exit code (a check that found errors, a restore that skipped files).
#[derive(Debug)]
struct Reported(i32);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Reported {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui::new(cli.global.quiet, cli.global.verbose, cli.global.json);
    match run(&cli, &ui) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            ui.finish_progress();
            if let Some(Reported(code)) = e.downcast_ref::<Reported>() {
                return ExitCode::from(*code as u8);
            }
            let code = e.downcast_ref::<Error>().map(Error::exit_code).unwrap_or(1);
            let mut msg = format!("error: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("{msg}");
            ExitCode::from(code as u8)
        }
    }
}

impl Ui {
    fn finish_progress(&self) {
        snap_engine::progress::Progress::finish(self);
    }
}

/// Where the repository is, and whether it is the built-in default.
fn location(global: &Global) -> Result<(String, bool)> {
    if let Some(r) = &global.repo {
        if r.trim().is_empty() {
            return Err(anyhow!("the repository location is empty"));
        }
        return Ok((r.clone(), false));
    }
    let dir = dirs::data_dir()
        .ok_or_else(|| {
            anyhow!("no --repo given and no data directory to put a default repository in")
        })?
        .join("snap")
        .join("repository");
    Ok((dir.display().to_string(), true))
}

fn backend(location: &str, create: bool) -> Result<Arc<dyn Backend>> {
    if let Some(rest) = location.split_once("://").map(|(scheme, _)| scheme) {
        return Err(anyhow!(
            "repository {location:?}: the scheme {rest:?} is not supported; give a local directory"
        ));
    }
    let path = location.strip_prefix("local:").unwrap_or(location);
    Ok(Arc::new(StoreBackend::local(&PathBuf::from(path), create)?))
}

fn open(global: &Global) -> Result<Repository> {
    let (loc, _) = location(global)?;
    let backend = backend(&loc, false)?;
    let pw = || password::existing(global).map_err(|e| Error::Other(format!("{e:#}")));
    Ok(Repository::open(backend, &pw)?)
}

fn init_options(global: &Global, no_encryption: bool) -> Result<InitOptions> {
    let password = if no_encryption {
        None
    } else {
        Some(password::new(global)?)
    };
    Ok(InitOptions::new(password))
}

fn run(cli: &Cli, ui: &Ui) -> Result<u8> {
    let g = &cli.global;
    match &cli.command {
        Command::Init(a) => {
            let (loc, _) = location(g)?;
            let mut opts = init_options(g, a.no_encryption)?;
            if let Some(m) = a.kdf_memory {
                opts.kdf.memory_kib = m;
            }
            if let Some(t) = a.kdf_iterations {
                opts.kdf.iterations = t;
            }
            opts.kdf
                .validate()
                .map_err(|_| anyhow!("--kdf-memory or --kdf-iterations is out of range"))?;
            let (_, r) = commands::init(backend(&loc, true)?, opts)?;
            if ui.json {
                output::json(&json!({
                    "location": r.location,
                    "repository_id": r.repository_id.to_hex(),
                    "encrypted": r.encrypted,
                    "key_id": r.key_id.map(|k| k.to_hex()),
                }));
            } else {
                ui.say(&format!(
                    "created repository {} at {}",
                    r.repository_id.short(),
                    r.location
                ));
                if !r.encrypted {
                    ui.say("the repository is NOT encrypted: anyone who can read it can read your files");
                }
            }
            Ok(0)
        }
        Command::Create(a) => {
            let (loc, is_default) = location(g)?;
            let mut repo = match open(g) {
                Err(e)
                    if is_default
                        && matches!(
                            e.downcast_ref::<Error>(),
                            Some(Error::RepositoryNotFound(_))
                        ) =>
                {
                    let (repo, r) = commands::init(backend(&loc, true)?, init_options(g, false)?)?;
                    ui.say(&format!(
                        "created a new repository at {} (the default; use --repo for another)",
                        r.location
                    ));
                    repo
                }
                other => other?,
            };
            if !repo.is_encrypted() {
                ui.say("note: this repository is not encrypted");
            }
            let opts = create::CreateOptions {
                paths: a.paths.clone(),
                tags: a.tags.clone(),
                host: a.host.clone(),
                excludes: a.excludes.clone(),
                parent: a.parent.clone(),
                force: a.force,
                ..Default::default()
            };
            let r = create::create(&mut repo, &opts, ui)?;
            let s = &r.snapshot.summary;
            if ui.json {
                output::json(&json!({
                    "snapshot_id": r.snapshot_id.to_hex(),
                    "short_id": r.snapshot_id.short(),
                    "parent": r.snapshot.parent.map(|p| p.to_hex()),
                    "files_new": s.files_new,
                    "files_changed": s.files_changed,
                    "files_unmodified": s.files_unmodified,
                    "dirs": s.dirs,
                    "files": s.files,
                    "bytes_total": s.bytes_total,
                    "bytes_read": s.bytes_read,
                    "bytes_added": s.bytes_added,
                    "blobs_added": s.blobs_added,
                    "duration_s": s.duration_ns as f64 / 1e9,
                    "warnings": r.warnings,
                }));
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
                println!("{}", r.snapshot_id);
            }
            if !r.warnings.is_empty() {
                ui.say(&format!(
                    "snapshot {} was written, but {} path(s) could not be read",
                    r.snapshot_id.short(),
                    r.warnings.len()
                ));
                return Ok(3);
            }
            Ok(0)
        }
        Command::Snapshots(a) => {
            let repo = open(g)?;
            let filter = SnapshotFilter {
                hosts: a.hosts.clone(),
                tags: a.tags.clone(),
                paths: a
                    .paths
                    .iter()
                    .map(|p| path_bytes(p))
                    .collect::<Result<_>>()?,
            };
            let list = commands::snapshots(&repo, &filter)?;
            if ui.json {
                let arr: Vec<_> = list.iter().map(|(id, s)| snapshot_json(id, s)).collect();
                output::json(&serde_json::Value::Array(arr));
            } else {
                print_snapshot_table(&list);
            }
            Ok(0)
        }
        Command::Restore(a) => {
            let mut repo = open(g)?;
            let opts = restore::RestoreOptions {
                snapshot: a.snapshot.clone(),
                target: a.target.clone(),
                filter: SnapshotFilter {
                    hosts: a.hosts.clone(),
                    tags: a.tags.clone(),
                    paths: Vec::new(),
                },
                include: a.include.clone(),
            };
            let r = restore::restore(&mut repo, &opts, ui)?;
            if ui.json {
                output::json(&json!({
                    "snapshot_id": r.snapshot_id.to_hex(),
                    "files": r.files,
                    "dirs": r.dirs,
                    "bytes": r.bytes,
                    "errors": r.errors,
                }));
            } else {
                ui.say(&format!(
                    "restored snapshot {}: {} files, {} directories, {} to {}",
                    r.snapshot_id.short(),
                    r.files,
                    r.dirs,
                    output::bytes(r.bytes),
                    a.target.display()
                ));
            }
            if !r.errors.is_empty() {
                eprintln!(
                    "error: {} item(s) could not be restored (listed above)",
                    r.errors.len()
                );
                return Err(Reported(1).into());
            }
            Ok(0)
        }
        Command::Forget(a) => {
            let repo = open(g)?;
            let ids = commands::forget(&repo, &a.ids)?;
            if ui.json {
                output::json(&json!({ "removed": ids.iter().map(Id::to_hex).collect::<Vec<_>>() }));
            } else {
                for id in &ids {
                    ui.say(&format!("removed snapshot {}", id.short()));
                }
                ui.say("run `snap prune` to free the space their data used");
            }
            Ok(0)
        }
        Command::Prune(a) => {
            let mut repo = open(g)?;
            let opts = prune::PruneOptions {
                policy: KeepPolicy {
                    last: a.keep_last,
                    hourly: a.keep_hourly,
                    daily: a.keep_daily,
                    weekly: a.keep_weekly,
                    monthly: a.keep_monthly,
                    yearly: a.keep_yearly,
                    within: a.keep_within,
                    tags: a.keep_tag.clone(),
                },
                filter: SnapshotFilter {
                    hosts: a.hosts.clone(),
                    ..Default::default()
                },
                dry_run: a.dry_run,
                ..Default::default()
            };
            let r = prune::prune(&mut repo, &opts, ui)?;
            if ui.json {
                output::json(&json!({
                    "dry_run": r.dry_run,
                    "snapshots_forgotten": r.snapshots_forgotten.iter().map(Id::to_hex).collect::<Vec<_>>(),
                    "snapshots_kept": r.snapshots_kept.iter().map(|(id, why)| json!({"id": id.to_hex(), "reasons": why})).collect::<Vec<_>>(),
                    "packs_deleted": r.packs_deleted,
                    "packs_repacked": r.packs_repacked,
                    "packs_kept": r.packs_kept,
                    "blobs_removed": r.blobs_removed,
                    "bytes_before": r.bytes_before,
                    "bytes_after": r.bytes_after,
                }));
            } else {
                let verb = if r.dry_run { "would remove" } else { "removed" };
                for id in &r.snapshots_forgotten {
                    ui.say(&format!("{verb} snapshot {}", id.short()));
                }
                ui.say(&format!(
                    "{verb} {} unused blob(s): {} pack(s) deleted, {} repacked, {} kept; {} -> {}",
                    r.blobs_removed,
                    r.packs_deleted,
                    r.packs_repacked,
                    r.packs_kept,
                    output::bytes(r.bytes_before),
                    output::bytes(r.bytes_after)
                ));
            }
            Ok(0)
        }
        Command::Check(a) => {
            let mut repo = open(g)?;
            let r = check::check(
                &mut repo,
                &check::CheckOptions {
                    read_data: a.read_data,
                },
                ui,
            )?;
            if ui.json {
                output::json(&json!({
                    "ok": r.ok(),
                    "snapshots": r.snapshots,
                    "packs": r.packs,
                    "packs_read": r.packs_read,
                    "errors": r.errors,
                    "warnings": r.warnings,
                    "damaged_packs": r.damaged_packs.iter().map(Id::to_hex).collect::<Vec<_>>(),
                    "affected": r.affected,
                }));
            } else {
                for w in &r.warnings {
                    ui.say(&format!("warning: {w}"));
                }
                for e in &r.errors {
                    eprintln!("error: {e}");
                }
                for a in &r.affected {
                    eprintln!("affected: {a}");
                }
                if r.ok() {
                    ui.say(&format!(
                        "no errors: {} snapshot(s), {} pack(s){}",
                        r.snapshots,
                        r.packs,
                        if a.read_data {
                            format!(", {} read and verified", r.packs_read)
                        } else {
                            String::new()
                        }
                    ));
                }
            }
            if !r.ok() {
                if !ui.json {
                    eprintln!("{}", check::failed(&r));
                }
                return Err(Reported(1).into());
            }
            Ok(0)
        }
    }
}

fn path_bytes(p: &std::path::Path) -> Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let abs = std::path::absolute(p).with_context(|| format!("{}", p.display()))?;
    Ok(abs.as_os_str().as_bytes().to_vec())
}

fn snapshot_json(id: &Id, s: &Snapshot) -> serde_json::Value {
    let m = &s.summary;
    json!({
        "id": id.to_hex(),
        "short_id": id.short(),
        "time": s.time().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "host": s.host,
        "username": s.username,
        "paths": s.paths_lossy(),
        "tags": s.tags,
        "parent": s.parent.map(|p| p.to_hex()),
        "tree": s.tree.to_hex(),
        "program_version": s.program_version,
        "summary": {
            "files_new": m.files_new,
            "files_changed": m.files_changed,
            "files_unmodified": m.files_unmodified,
            "dirs": m.dirs,
            "files": m.files,
            "bytes_total": m.bytes_total,
            "bytes_read": m.bytes_read,
            "bytes_added": m.bytes_added,
            "blobs_added": m.blobs_added,
            "duration_s": m.duration_ns as f64 / 1e9,
        },
    })
}

fn print_snapshot_table(list: &[(Id, Snapshot)]) {
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|(id, s)| {
            [
                id.short(),
                s.time()
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                s.host.clone(),
                s.tags.join(","),
                s.paths_lossy().join(" "),
                output::bytes(s.summary.bytes_total),
            ]
        })
        .collect();
    let head = ["ID", "Time", "Host", "Tags", "Paths", "Size"];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 5 {
                s.push_str(&format!("{c:>w$}", w = width[i]));
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string()
    };
    println!("{}", line(head));
    println!("{}", "-".repeat(width.iter().sum::<usize>() + 10));
    for r in &rows {
        println!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }
    println!("{} snapshot(s)", rows.len());
}
