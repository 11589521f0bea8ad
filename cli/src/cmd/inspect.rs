//! `snap ls`, `diff`, `find` and `stats`.

use anyhow::Result;
use snap_engine::commands::inspect;
use snap_engine::report::{self, EntryReport};

use crate::args;
use crate::ctx::*;
use crate::output::{self, outln};

/// `snap ls`.
pub(crate) fn ls(ctx: &Ctx, a: &args::LsArgs) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open_full("list files of snapshots")?;
    let filter = snapshot_filter(&a.filter)?;
    let (chosen, _) = choose(&repo, ui, &a.snapshot, &filter, Rollback::Warn)?;
    let under = a.path.as_ref().map(|p| path_bytes(p)).transpose()?;
    let (id, _, entries) = inspect::ls(&repo, &chosen.to_hex(), &filter, under.as_deref())?;
    if ui.json {
        output::report(&report::LsReport {
            snapshot_id: id,
            entries: entries
                .iter()
                .map(|e| EntryReport::new(&e.path, &e.node))
                .collect(),
        })?;
    } else {
        for e in &entries {
            let path = String::from_utf8_lossy(&e.path);
            if a.long {
                outln!("{}", long_line(&e.node, &path))?;
            } else {
                outln!("{path}")?;
            }
        }
    }
    Ok(0)
}

/// `snap diff`.
pub(crate) fn diff(ctx: &Ctx, a: &args::DiffArgs) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open_full("compare snapshots")?;
    let filter = snapshot_filter(&a.filter)?;
    let (first, _) = choose(&repo, ui, &a.first, &filter, Rollback::Warn)?;
    let (second, _) = choose(&repo, ui, &a.second, &filter, Rollback::Warn)?;
    let (ia, ib, changes) = inspect::diff(&repo, &first.to_hex(), &second.to_hex())?;
    let mark = |k: inspect::ChangeKind| match k {
        inspect::ChangeKind::Added => "+",
        inspect::ChangeKind::Removed => "-",
        inspect::ChangeKind::Modified => "M",
        inspect::ChangeKind::Metadata => "U",
    };
    if ui.json {
        output::report(&report::DiffReport::new(ia, ib, &changes))?;
    } else {
        for c in &changes {
            outln!("{} {}", mark(c.kind), String::from_utf8_lossy(&c.path))?;
        }
        let count = |k| changes.iter().filter(|c| c.kind == k).count();
        ui.say(&format!(
            "{} added, {} removed, {} modified, {} metadata only",
            count(inspect::ChangeKind::Added),
            count(inspect::ChangeKind::Removed),
            count(inspect::ChangeKind::Modified),
            count(inspect::ChangeKind::Metadata)
        ));
    }
    Ok(0)
}

/// `snap find`.
pub(crate) fn find(ctx: &Ctx, a: &args::FindArgs) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open_full("search snapshots")?;
    let hits = inspect::find(&repo, &a.pattern, &snapshot_filter(&a.filter)?)?;
    if ui.json {
        let list: Vec<report::FindHit> = hits
            .iter()
            .map(|(id, s, e)| report::FindHit {
                entry: EntryReport::new(&e.path, &e.node),
                snapshot_id: *id,
                snapshot_time: s.time().to_rfc3339(),
            })
            .collect();
        output::report(&list)?;
    } else {
        for (id, _, e) in &hits {
            outln!(
                "{}  {}",
                id.short(),
                long_line(&e.node, &String::from_utf8_lossy(&e.path))
            )?;
        }
        ui.say(&format!("{} match(es)", hits.len()));
    }
    Ok(0)
}

/// `snap stats`.
pub(crate) fn stats(ctx: &Ctx) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open_full("read snapshots for statistics")?;
    let st = inspect::stats(&repo)?;
    if ui.json {
        output::report(&st.report())?;
    } else {
        outln!("snapshots:          {}", st.snapshots)?;
        outln!(
            "stored:             {} in {} packs",
            output::bytes(st.stored_bytes),
            st.packs
        )?;
        outln!(
            "restore size:       {} (all snapshots)",
            output::bytes(st.restore_bytes)
        )?;
        outln!(
            "unique data:        {} in {} chunks",
            output::bytes(st.unique_bytes),
            st.data_blobs
        )?;
        outln!("deduplication:      {:.2}x", st.dedup_ratio())?;
        outln!("compression:        {:.2}x", st.compression_ratio())?;
        for s in &st.per_snapshot {
            let (id, b) = (&s.id, &s.restore_bytes);
            outln!("  {}  {}", id.short(), output::bytes(*b))?;
        }
    }
    Ok(0)
}

/// `ls -l`-like: type and mode, owner, size, time, path.
/// `rwsr-xr-t`, as `ls -l` writes the mode: set-id and sticky bits show
/// in the execute places (they were dropped, hiding a set-uid file).
pub(crate) fn permissions(mode: u32) -> String {
    let mut perms: Vec<char> = "rwxrwxrwx"
        .chars()
        .enumerate()
        .map(|(i, c)| if mode & (0o400 >> i) != 0 { c } else { '-' })
        .collect();
    for (bit, place, set) in [(0o4000, 2, 's'), (0o2000, 5, 's'), (0o1000, 8, 't')] {
        if mode & bit != 0 {
            perms[place] = if perms[place] == 'x' {
                set
            } else {
                set.to_ascii_uppercase()
            };
        }
    }
    perms.into_iter().collect()
}

pub(crate) fn long_line(n: &snap_engine::tree::Node, path: &str) -> String {
    use snap_engine::tree::NodeKind::*;
    let t = match n.kind {
        File => '-',
        Dir => 'd',
        Symlink => 'l',
        Fifo => 'p',
        CharDevice => 'c',
        BlockDevice => 'b',
    };
    let perms = permissions(n.mode);
    let owner = if n.user.is_empty() {
        n.uid.to_string()
    } else {
        n.user.clone()
    };
    let group = if n.group.is_empty() {
        n.gid.to_string()
    } else {
        n.group.clone()
    };
    let time = chrono::DateTime::from_timestamp_nanos(n.mtime_ns)
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S");
    let target = if n.kind == Symlink {
        format!(" -> {}", String::from_utf8_lossy(&n.link_target))
    } else {
        String::new()
    };
    format!(
        "{t}{perms} {owner:>8} {group:>8} {:>12} {time} {path}{target}",
        n.size
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn permissions_show_set_id_and_sticky_bits_as_ls_does() {
        assert_eq!(super::permissions(0o755), "rwxr-xr-x");
        assert_eq!(super::permissions(0o4755), "rwsr-xr-x");
        assert_eq!(super::permissions(0o2750), "rwxr-s---");
        assert_eq!(super::permissions(0o1777), "rwxrwxrwt");
        assert_eq!(super::permissions(0o7644), "rwSr-Sr-T");
    }
}
