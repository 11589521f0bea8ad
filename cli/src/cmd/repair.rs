//! `snap repair index` and `snap repair snapshots`.

use anyhow::Result;
use snap_engine::commands::repair;

use crate::args::RepairCommand;
use crate::ctx::*;
use crate::output;

/// `snap repair …`.
pub(crate) fn repair(ctx: &Ctx, command: &RepairCommand) -> Result<u8> {
    match command {
        RepairCommand::Index { dry_run } => index(ctx, *dry_run),
        RepairCommand::Snapshots {
            dry_run,
            forget,
            filter,
        } => snapshots(
            ctx,
            &repair::RepairSnapshotsOptions {
                dry_run: *dry_run,
                forget: *forget,
                filter: snapshot_filter(filter)?,
            },
        ),
    }
}

fn index(ctx: &Ctx, dry_run: bool) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open_full("repair the repository")?;
    let r = repair::repair_index(&repo, &repair::RepairIndexOptions { dry_run }, ui)?;
    if ui.json {
        output::report(&r)?;
        return Ok(0);
    }
    let would = |done: &str, not_yet: &str| if dry_run { not_yet } else { done }.to_string();
    for id in &r.index_files_unreadable {
        ui.say(&format!(
            "index file {} cannot be read: {}",
            id.short(),
            would("replaced", "would be replaced")
        ));
    }
    for id in &r.packs_added {
        ui.say(&format!(
            "pack {} was in no index: {} from its header",
            id.short(),
            would("indexed again", "would be indexed again")
        ));
    }
    for id in &r.packs_corrected {
        ui.say(&format!(
            "pack {} has another size than its index entry: {} from its header",
            id.short(),
            would("entry replaced", "entry would be replaced")
        ));
    }
    for id in &r.packs_dropped {
        ui.say(&format!(
            "pack {} is gone from storage (asked for by name): {} of the index",
            id.short(),
            would("taken out", "would be taken out")
        ));
    }
    for (id, why) in &r.packs_unreadable {
        ui.say(&format!(
            "pack {} cannot be read, so it is not indexed (nor deleted): {why}",
            id.short()
        ));
    }
    if !r.changed() {
        ui.say(&format!(
            "the index is right: {} pack(s), nothing to change",
            r.packs_kept
        ));
    } else if dry_run {
        ui.say(&format!(
            "{} pack(s) would stay as indexed, {} be added, {} corrected, {} dropped; nothing \
             was changed",
            r.packs_kept,
            r.packs_added.len(),
            r.packs_corrected.len(),
            r.packs_dropped.len()
        ));
    } else {
        ui.say(&format!(
            "{} pack(s) stay as indexed, {} added, {} corrected, {} dropped: {} index file(s) \
             written in place of {}",
            r.packs_kept,
            r.packs_added.len(),
            r.packs_corrected.len(),
            r.packs_dropped.len(),
            r.index_files_written,
            r.index_files_replaced
        ));
        if !r.packs_dropped.is_empty() {
            ui.say(
                "snapshots that needed the dropped packs are damaged: `snap repair snapshots` \
                 writes them again without the files that are lost",
            );
        }
    }
    Ok(0)
}

fn snapshots(ctx: &Ctx, opts: &repair::RepairSnapshotsOptions) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open_full("repair the repository")?;
    let r = repair::repair_snapshots(&repo, opts, ui)?;
    if ui.json {
        output::report(&r)?;
        return Ok(0);
    }
    for s in &r.repaired {
        match s.replacement {
            Some(new) => ui.say(&format!(
                "snapshot {} -> {}: {} path(s) left out",
                s.original.short(),
                new.short(),
                s.removed.len()
            )),
            None => ui.say(&format!(
                "snapshot {} would be written again with {} path(s) left out",
                s.original.short(),
                s.removed.len()
            )),
        }
        for p in &s.removed {
            ui.say(&format!("  {p}"));
        }
    }
    if r.repaired.is_empty() {
        ui.say(&format!(
            "{} snapshot(s) checked: none names data that is gone",
            r.snapshots_checked
        ));
    } else if opts.dry_run {
        ui.say(&format!(
            "{} of {} snapshot(s) would be replaced; nothing was changed",
            r.repaired.len(),
            r.snapshots_checked
        ));
    } else if r.forgotten.is_empty() {
        ui.say(&format!(
            "{} snapshot(s) replaced (tagged \"{}\"); the originals stay until you forget them \
             (`snap forget ID`, or run this again with --forget)",
            r.repaired.len(),
            repair::REPAIRED_TAG
        ));
    } else {
        ui.say(&format!(
            "{} snapshot(s) replaced (tagged \"{}\"), and the originals forgotten; `snap prune` \
             frees what only they used",
            r.repaired.len(),
            repair::REPAIRED_TAG
        ));
    }
    Ok(0)
}
