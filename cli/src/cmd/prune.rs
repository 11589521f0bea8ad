//! `snap prune`.

use anyhow::Result;
use snap_engine::commands::prune;
use snap_engine::snapshot::{KeepPolicy, SnapshotFilter};

use crate::args;
use crate::ctx::*;
use crate::output;

/// `snap prune`.
pub(crate) fn prune(ctx: &Ctx, a: &args::PruneArgs) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open_full("prune")?;
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
        group_by: a.group_by,
        filter: SnapshotFilter {
            hosts: a.hosts.clone(),
            ..Default::default()
        },
        dry_run: a.dry_run,
        take_over: a.take_over,
        ..Default::default()
    };
    let r = prune::prune(&repo, &opts, ui)?;
    if ui.json {
        output::report(&r)?;
    } else {
        let verb = if r.dry_run { "would remove" } else { "remove" };
        for g in &r.groups {
            ui.say(&format!("{}:", group_name(&g.key)));
            for (id, s, why) in &g.snapshots {
                let time = s
                    .time()
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M");
                if why.is_empty() {
                    ui.say(&format!("  {verb:<12} {}  {time}", id.short()));
                } else {
                    ui.say(&format!(
                        "  {:<12} {}  {time}  ({})",
                        "keep",
                        id.short(),
                        why.join(", ")
                    ));
                }
            }
        }
        let removed = r.snapshots_forgotten.len();
        let kept = r.snapshots_kept.len();
        ui.say(&format!(
            "{kept} snapshot(s) kept, {removed} {}",
            if r.dry_run {
                "would be removed"
            } else {
                "removed"
            }
        ));
        let unused = r.bytes_before.saturating_sub(r.bytes_after);
        if let Some(p) = &r.data_left_to {
            ui.say(&format!(
                "unused data is deleted by {} (device {}), the device this repository names for \
                 it: here prune only {} snapshots. Prune there, or here with --take-over to make \
                 this device the one",
                p.host,
                p.device.short(),
                if r.dry_run { "would forget" } else { "forgot" }
            ));
        } else if r.dry_run {
            if r.claims_pruner {
                ui.say(
                    "this device would become the one that deletes unused data for this \
                     repository; others then only forget snapshots",
                );
            }
            if r.blobs_removed == 0 && r.packs_deleted == 0 && r.packs_repacked == 0 {
                ui.say(&format!(
                    "no unused data: the repository would stay at {}",
                    output::bytes(r.bytes_before)
                ));
            } else {
                ui.say(&format!(
                    "would take {} of unused data ({} blob(s)) out of the index: {} pack(s) \
                     to delete, {} to repack, {} left as they are; {} -> {}",
                    output::bytes(unused),
                    r.blobs_removed,
                    r.packs_deleted,
                    r.packs_repacked,
                    r.packs_kept,
                    output::bytes(r.bytes_before),
                    output::bytes(r.bytes_after)
                ));
            }
        } else {
            if r.blobs_removed == 0 && r.packs_repacked == 0 && unused == 0 {
                ui.say(&format!(
                    "no unused data in the index: it names {}",
                    output::bytes(r.bytes_before)
                ));
            } else if unused == 0 {
                ui.say(&format!(
                    "{} unused blob(s) stay, in packs still mostly in use (repacking them \
                     would cost more than it frees); the index names {}",
                    r.blobs_removed,
                    output::bytes(r.bytes_before)
                ));
            } else {
                ui.say(&format!(
                    "{} of unused data ({} blob(s)) taken out of the index: {} pack(s) \
                     repacked, {} left as they were; the index names {} -> {}",
                    output::bytes(unused),
                    r.blobs_removed,
                    r.packs_repacked,
                    r.packs_kept,
                    output::bytes(r.bytes_before),
                    output::bytes(r.bytes_after)
                ));
            }
            if r.packs_deleted > 0 {
                ui.say(&format!(
                    "deleted {} pack(s) from storage, {}",
                    r.packs_deleted,
                    output::bytes(r.bytes_deleted)
                ));
            }
            if r.packs_deferred > 0 {
                ui.say(&format!(
                    "{} pack(s), {}, wait in the trash and are not deleted yet, because {}; a \
                     later prune deletes them",
                    r.packs_deferred,
                    output::bytes(r.bytes_deferred),
                    r.deferred_because.join("; ")
                ));
            }
            if !r.packs_retained.is_empty() || r.index_files_retained > 0 {
                ui.say(&format!(
                    "the storage refused to delete {} pack(s), {}, and {} index file(s): they \
                     are retained (Object Lock, or a key that may not delete). They wait in the \
                     trash, and a later prune deletes them once the retention lapses",
                    r.packs_retained.len(),
                    output::bytes(r.bytes_retained),
                    r.index_files_retained
                ));
            }
            if r.retention_extended > 0 {
                ui.say(&format!(
                    "extended the Object Lock retention of {} pack(s) and index file(s) in use",
                    r.retention_extended
                ));
            }
        }
    }
    Ok(0)
}

/// A retention group as a person reads it: "host laptop, paths /a, /b".
pub(crate) fn group_name(k: &snap_engine::snapshot::GroupKey) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &k.host {
        parts.push(format!("host {h}"));
    }
    if let Some(p) = &k.paths {
        let shown: Vec<_> = p.iter().map(|p| String::from_utf8_lossy(p)).collect();
        parts.push(format!("paths {}", shown.join(", ")));
    }
    if let Some(t) = &k.tags {
        parts.push(if t.is_empty() {
            "no tags".to_string()
        } else {
            format!("tags {}", t.join(", "))
        });
    }
    if parts.is_empty() {
        "all snapshots".to_string()
    } else {
        parts.join(", ")
    }
}
