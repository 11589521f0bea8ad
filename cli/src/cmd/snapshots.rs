//! `snap snapshots`, as a table or JSON.

use anyhow::Result;
use serde_json::json;
use snap_engine::Id;
use snap_engine::commands::{self};
use snap_engine::snapshot::Snapshot;

use crate::args;
use crate::ctx::*;
use crate::output::{self, outln};

/// `snap snapshots`.
pub(crate) fn snapshots(ctx: &Ctx, a: &args::SnapshotsArgs) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open()?;
    let list = commands::snapshots(&repo, &snapshot_filter(&a.filter)?)?;
    if ui.json {
        let arr: Vec<_> = list.iter().map(|(id, s)| snapshot_json(id, s)).collect();
        output::json(&serde_json::Value::Array(arr))?;
    } else {
        print_snapshot_table(&list)?;
    }
    Ok(0)
}

pub(crate) fn snapshot_json(id: &Id, s: &Snapshot) -> serde_json::Value {
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
    outln!("{}", line(head))?;
    outln!("{}", "-".repeat(width.iter().sum::<usize>() + 10))?;
    for r in &rows {
        outln!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]))?;
    }
    outln!("{} snapshot(s)", rows.len())
}
