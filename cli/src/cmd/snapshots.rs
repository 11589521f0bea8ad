//! `snap snapshots`, as a table or JSON.

use anyhow::Result;
use snap_engine::Id;
use snap_engine::commands::{self};
use snap_engine::report::SnapshotReport;
use snap_engine::snapshot::Snapshot;

use crate::args;
use crate::ctx::*;
use crate::output::{self, outln};

/// `snap snapshots`.
pub(crate) fn snapshots(ctx: &Ctx, a: &args::SnapshotsArgs) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open()?;
    let (list, hidden) = commands::snapshots_and_hidden(&repo, &snapshot_filter(&a.filter)?)?;
    warn_of(&hidden, ui);
    if ui.json {
        let list: Vec<SnapshotReport> = list
            .iter()
            .map(|(id, s)| SnapshotReport::new(id, s))
            .collect();
        output::report(&list)?;
    } else {
        print_snapshot_table(&list)?;
    }
    if repo.access() == snap_engine::keys::Access::WriteOnly {
        let sealed = repo
            .snapshot_count()?
            .saturating_sub(repo.snapshots()?.len());
        if sealed > 0 {
            ui.say(&format!(
                "{sealed} more snapshot(s) are sealed from this key: it is write-only, and \
                 shows only the newest backup this device made of each set of folders (its \
                 older ones are among the sealed)"
            ));
        }
    }
    Ok(0)
}

pub(crate) fn print_snapshot_table(list: &[(Id, Snapshot)]) -> Result<()> {
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
                s.tags
                    .iter()
                    .map(|t| output::tag(t))
                    .collect::<Vec<_>>()
                    .join(", "),
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
    outln!("{}", line(head))?;
    outln!("{}", "-".repeat(width.iter().sum::<usize>() + 10))?;
    for r in &rows {
        outln!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]))?;
    }
    outln!("{} snapshot(s)", rows.len())
}
