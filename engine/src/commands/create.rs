//! `snap create`: announce the backup with a lock, find the parent
//! snapshot, run the [archiver](crate::archiver) over the
//! [sources](crate::sources), confirm every pack the new snapshot needs
//! is stored, and write the snapshot.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use crate::archiver::Archiver;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::IndexFile;
use crate::indexed::Indexed;
use crate::lock::{LockGuard, LockKind};
use crate::packer::PackerOptions;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{Snapshot, SnapshotFilter, Summary};
use crate::sources::Sources;
use crate::sys;
use crate::trash;
use crate::tree::Node;

pub use crate::sources::{clean_path, recorded_path};

/// This device's name, as a backup records it when no host is given:
/// what "this device" means to retention and to the UI's Manage list.
pub fn this_host() -> String {
    sys::hostname()
}

#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    pub paths: Vec<PathBuf>,
    pub tags: Vec<String>,
    /// Defaults to this machine's host name.
    pub host: Option<String>,
    pub excludes: Vec<String>,
    /// Snapshot to compare with instead of the latest of this host and paths.
    pub parent: Option<String>,
    /// Read every file even if the parent says it is unchanged.
    pub force: bool,
    /// Write no snapshot when the backup would record what the parent
    /// does: the same paths, host and tags, and each backed-up path the
    /// same node; the folders above them are not compared
    /// ([`CreateResult::skipped_unchanged`]).
    pub skip_if_unchanged: bool,
    pub packer: PackerOptions,
    /// This device may not delete (a key without DeleteObject): the backup
    /// deletes nothing, and leaves its lock released for a device that may
    /// ([`CreateResult::lock_left`]).
    pub no_delete: bool,
}

#[derive(Clone, Debug)]
pub struct CreateResult {
    pub snapshot_id: Id,
    pub snapshot: Snapshot,
    /// Files and directories that could not be read and are not in the
    /// snapshot, and files that changed while they were read (stored as
    /// read); non-empty means exit code 3.
    pub warnings: Vec<String>,
    /// How many of `warnings` are files that changed while they were read:
    /// they are in the snapshot, as read, and the next backup reads them
    /// again.
    pub changed_while_read: u64,
    /// `--exclude` patterns that matched nothing: most often a pattern that
    /// does not mean what its writer thought (`~` not expanded, a relative
    /// path).
    pub unused_excludes: Vec<String>,
    /// Nothing changed since the parent and `skip_if_unchanged` was asked
    /// for: no snapshot was written, and `snapshot_id` is the parent's,
    /// which holds what this backup found (`snapshot` is what would have
    /// been written).
    pub skipped_unchanged: bool,
    /// The lock this backup left, released, for a device with full rights
    /// to remove: it may not delete (asked for, or its delete was refused).
    pub lock_left: Option<String>,
    /// Reused packs whose Object Lock retention this backup extended.
    pub retention_extended: u64,
}

/// A backup as `--json` prints it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CreateReport {
    pub snapshot_id: Id,
    pub short_id: String,
    pub parent: Option<Id>,
    #[serde(flatten)]
    pub summary: crate::report::SummaryReport,
    pub warnings: Vec<String>,
    pub changed_while_read: u64,
    pub unused_excludes: Vec<String>,
    pub skipped_unchanged: bool,
    pub lock_left: Option<String>,
    pub retention_extended: u64,
}

impl CreateResult {
    pub fn report(&self) -> CreateReport {
        CreateReport {
            snapshot_id: self.snapshot_id,
            short_id: self.snapshot_id.short(),
            parent: self.snapshot.parent,
            summary: (&self.snapshot.summary).into(),
            warnings: self.warnings.clone(),
            changed_while_read: self.changed_while_read,
            unused_excludes: self.unused_excludes.clone(),
            skipped_unchanged: self.skipped_unchanged,
            lock_left: self.lock_left.clone(),
            retention_extended: self.retention_extended,
        }
    }
}

/// Before the snapshot refers to them, confirms that every pack this
/// backup relies on (those it wrote and those it reused) is indexed and
/// stored, so that no sequence of events lets a backup exit 0 with a
/// snapshot that refers to missing data.
///
/// - A prune that ran meanwhile (the trash records changed) may have taken
///   reused packs out of the index; they wait in the trash, not deleted,
///   because this backup's lock was live. They are put back. The backup's
///   own packs are indexed under its lock, which prune leaves alone.
/// - If the lock lapsed (the machine slept, the process was stopped, the
///   heartbeat failed), prunes may have treated this backup as dead. The
///   lock is marked lapsed, which stops every prune from emptying trash,
///   and running prunes are waited for. Then every needed pack must still
///   be indexed: nothing is put back from the trash, since a prune that
///   decided to delete a pack may itself be paused between deciding and
///   deleting.
/// - Storage may have lost packs, or replayed an old index file that names
///   deleted ones: every needed pack must be stored (listed, or found when
///   asked for by name).
///
/// A pack that is gone fails the backup with no snapshot written. Returns
/// the trash records seen, for the check after the snapshot (see
/// [`create`]).
fn confirm_packs(
    repo: &Repository,
    own: &[Id],
    reused: &HashSet<Id>,
    lock: &LockGuard,
    trash_at_start: &[Id],
) -> Result<Vec<Id>> {
    let lapsed = lock.lapsed();
    if lapsed {
        lock.mark_lapsed()?;
        crate::lock::wait_for_prunes(repo, lock, crate::lock::EXPIRY)?;
    }
    let needed: HashSet<Id> = own.iter().chain(reused).copied().collect();
    let gone = |id: &Id, why: &str| {
        Err(Error::Other(format!(
            "pack {} that this backup needs is {why}; no snapshot was written. Run the backup \
             again; if this recurs, run `snap check`",
            id.short()
        )))
    };
    let trash_now = trash::ids(repo)?;
    if lapsed || trash_now != trash_at_start {
        let mut indexed: HashSet<Id> = HashSet::new();
        for (_, f) in repo.current_index_files()? {
            indexed.extend(f.packs.iter().map(|p| p.id));
        }
        let mut back = Vec::new();
        for t in trash::list(repo)?.into_iter().filter(|_| !lapsed) {
            back.extend(
                t.packs
                    .into_iter()
                    .filter(|p| needed.contains(&p.id) && !indexed.contains(&p.id)),
            );
        }
        back.sort_by_key(|p| p.id);
        back.dedup_by_key(|p| p.id);
        indexed.extend(back.iter().map(|p| p.id));
        if let Some(id) = needed.iter().find(|id| !indexed.contains(id)) {
            return gone(
                id,
                "no longer in the index (a prune ran while this backup's lock had lapsed)",
            );
        }
        if !back.is_empty() {
            repo.write_index(&IndexFile {
                supersedes: Vec::new(),
                packs: back,
                writer: Some(lock.id()),
            })?;
        }
    }
    let (_, missing) = repo.stored_packs(needed.iter().copied())?;
    if let Some(id) = missing.first() {
        return gone(id, "missing from the repository");
    }
    Ok(trash_now)
}

pub fn create(
    repo: &Repository,
    opts: &CreateOptions,
    progress: &dyn Progress,
) -> Result<CreateResult> {
    let started = Instant::now();
    let time_ns = crate::repo::now_ns();
    let sources = Sources::of(&opts.paths)?;
    let host = match &opts.host {
        Some(h) => h.clone(),
        None => repo.default_host()?,
    };
    // Announce the backup before reading the index: a prune that starts
    // later sees the lock and keeps what this backup may rely on.
    let lock = LockGuard::acquire_as(repo, LockKind::Backup, opts.no_delete)?;
    let trash_at_start = trash::ids(repo)?;
    let repo = &repo.indexed()?;
    let Parents {
        parent,
        root: parent_root,
        of_source,
    } = find_parents(repo, opts, &host, &sources)?;
    let parent_root = match parent_root {
        Some(tree) => Some(repo.load_tree(&tree)?),
        None => None,
    };

    let packer = PackerOptions {
        writer: Some(lock.id()),
        ..opts.packer.clone()
    };
    let archiver = Archiver::new(
        repo,
        packer,
        &opts.excludes,
        opts.force,
        &sources.missing,
        progress,
    )?
    .with_source_parents(of_source);
    for m in &sources.missing {
        progress.warn(m);
    }
    let root_id = archiver.run(&sources.present, parent_root)?;
    let archived = archiver.finish()?;
    let stored = &archived.stored;
    progress.finish();
    let trash_seen = confirm_packs(
        repo,
        &stored.packs,
        &stored.reused_packs,
        &lock,
        &trash_at_start,
    )?;
    // Under Object Lock, what this snapshot reuses stays retained as long
    // as what it writes, and so do the config and key files without which
    // nothing opens. A failure here is a warning, not a lost backup: the
    // next backup or prune extends them again.
    let mut reused: Vec<String> = stored
        .reused_packs
        .iter()
        .map(|id| crate::object::Object::Pack.name(id))
        .collect();
    let retention_extended = match repo.backend().retention() {
        None => 0,
        Some(_) => {
            reused.extend(crate::repo::lifelines(repo)?);
            repo.backend()
                .extend_retention(&reused)
                .unwrap_or_else(|e| {
                    progress.warn(&format!(
                        "the retention of what this backup reuses was not extended ({e}); the \
                         next backup or prune tries again"
                    ));
                    0
                })
        }
    };

    let mut tags = opts.tags.clone();
    tags.sort();
    tags.dedup();
    let snapshot = Snapshot {
        time_ns,
        host,
        username: sys::username(),
        uid: sys::uid(),
        gid: sys::gid(),
        paths: sources.path_bytes,
        tags,
        tree: root_id,
        parent: parent.as_ref().map(|(id, _)| *id),
        program_version: format!("snap {}", env!("CARGO_PKG_VERSION")),
        summary: Summary {
            bytes_added: stored.bytes_added,
            blobs_added: stored.blobs_added,
            duration_ns: started.elapsed().as_nanos() as u64,
            ..archived.counts.clone()
        },
    };
    let unused_excludes = archived
        .unused_excludes
        .iter()
        .map(|&i| opts.excludes[i].clone())
        .collect();
    if opts.skip_if_unchanged
        && let Some((parent_id, p)) = &parent
        && unchanged(repo, p, &snapshot, &archived.source_nodes)?
    {
        let lock_left = left(lock.release()?);
        return Ok(CreateResult {
            snapshot_id: *parent_id,
            snapshot,
            unused_excludes,
            warnings: archived.warnings,
            changed_while_read: archived.changed_while_read,
            skipped_unchanged: true,
            lock_left,
            retention_extended,
        });
    }
    let snapshot_id = repo.save_snapshot(&snapshot)?;
    // The backup may have stalled between the check and the snapshot (a
    // slow listing, a SIGSTOP), and a prune may have trashed what it
    // reused meanwhile. Checked again while the lock is held; a failure
    // takes the snapshot back.
    if (lock.lapsed() || trash::ids(repo)? != trash_seen)
        && let Err(e) = confirm_packs(
            repo,
            &stored.packs,
            &stored.reused_packs,
            &lock,
            &trash_seen,
        )
    {
        // Removed as `forget` would, with a record: this device has
        // already noted the snapshot as seen.
        repo.remove_snapshots(&[snapshot_id])?;
        return Err(e);
    }
    // The snapshot is saved: what fails from here is said, not a failed
    // backup (the lock expires by itself; the record is trimmed next time).
    let lock_left = match lock.release() {
        Ok(ending) => left(ending),
        Err(e) => {
            progress.warn(&format!(
                "the backup's lock could not be released ({e}): it expires by itself"
            ));
            None
        }
    };
    if let Err(e) = repo.trim_record(repo) {
        progress.warn(&format!(
            "this device's record of its backups was not trimmed: {e}"
        ));
    }
    Ok(CreateResult {
        snapshot_id,
        snapshot,
        unused_excludes,
        warnings: archived.warnings,
        changed_while_read: archived.changed_while_read,
        skipped_unchanged: false,
        lock_left,
        retention_extended,
    })
}

/// The lock a backup left released, if it could not delete it.
fn left(ending: crate::lock::Ending) -> Option<String> {
    match ending {
        crate::lock::Ending::Deleted => None,
        crate::lock::Ending::LeftReleased(name) => Some(name),
    }
}

/// Whether `new` records what `parent` does: the same paths, host and
/// tags, and each backed-up path the same node (its metadata, and its
/// contents by id). A file read anew with a new ctime makes another node,
/// and so a change. The folders above the paths are left out: their
/// times move whenever anything beside the backup changes (`/tmp`, a home
/// folder), and comparing the whole tree once wrote a snapshot every run.
/// A tree of those folders uploaded meanwhile is left for prune.
fn unchanged(
    repo: &crate::indexed::Indexed,
    parent: &Snapshot,
    new: &Snapshot,
    recorded: &[(Vec<u8>, crate::tree::Node)],
) -> Result<bool> {
    if parent.paths != new.paths || parent.host != new.host || parent.tags != new.tags {
        return Ok(false);
    }
    for path in &new.paths {
        if path.as_slice() == b"/" {
            if parent.tree != new.tree {
                return Ok(false);
            }
            continue;
        }
        // The new node from what this backup recorded: its trees are not
        // in the index this backup started from.
        let Some((_, now)) = recorded.iter().find(|(p, _)| p == path) else {
            return Ok(false);
        };
        let then = match crate::walk::node_at(repo, parent.tree, path) {
            Err(Error::WriteOnlyKey(_)) => return Ok(false),
            r => r?,
        };
        if then.as_ref() != Some(now) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What a backup compares its sources with, so that files unchanged since
/// need not be read.
struct Parents {
    /// The snapshot recorded as the parent: the one named, else the latest
    /// of this host with these paths, else the newest that supplied a
    /// source below.
    parent: Option<(Id, Snapshot)>,
    /// The root tree the walk descends from `/`: the named snapshot's, or
    /// that of the latest with these paths.
    root: Option<Id>,
    /// For a source that a newer snapshot of this host holds than `root`'s
    /// (or when there is no such root), its node there: a folder added to a
    /// backup set leaves the folders already backed up unread.
    of_source: HashMap<PathBuf, Node>,
}

/// Finds the [`Parents`] of a backup. A device whose cache lacks their
/// trees (a new or wiped cache) fetches them a level at a time first, into
/// the cache: the walk would otherwise load them one round trip per
/// directory.
fn find_parents(
    repo: &Indexed,
    opts: &CreateOptions,
    host: &str,
    sources: &Sources,
) -> Result<Parents> {
    if let Some(spec) = &opts.parent {
        let (id, s) = repo.find_snapshot(spec, &SnapshotFilter::default())?;
        prefetch(repo, s.tree)?;
        return Ok(Parents {
            root: Some(s.tree),
            parent: Some((id, s)),
            of_source: HashMap::new(),
        });
    }
    // This host's snapshots, newest first. A write-only device compares
    // only with those whose trees it keeps: it cannot fetch others.
    let write_only = repo.access() == crate::keys::Access::WriteOnly;
    let kept = |tree: &Id| {
        repo.tree_cache()
            .is_some_and(|c| c.get_blob(tree).is_some())
    };
    let mine: Vec<(Id, Snapshot)> = repo
        .snapshots()?
        .into_iter()
        .rev()
        .filter(|(_, s)| s.host == host && (!write_only || kept(&s.tree)))
        .collect();
    let same = mine.iter().position(|(_, s)| s.paths == sources.path_bytes);
    let mut of_source = HashMap::new();
    let mut newest_holder: Option<usize> = None;
    for path in &sources.present {
        let bytes = sys::path_bytes(path);
        let Some(i) = mine
            .iter()
            .position(|(_, s)| s.paths.iter().any(|p| holds(p, &bytes)))
        else {
            continue;
        };
        if Some(i) == same {
            // The root tree holds it already.
            continue;
        }
        let found = match crate::walk::node_at(repo, mine[i].1.tree, &bytes) {
            // A tree the write-only device's record lacks: read the files.
            Err(Error::WriteOnlyKey(_)) => None,
            r => r?,
        };
        if let Some(node) = found {
            if let Some(tree) = node.subtree {
                prefetch(repo, tree)?;
            }
            of_source.insert(path.clone(), node);
            newest_holder = Some(newest_holder.map_or(i, |n| n.min(i)));
        }
    }
    let root = same.map(|i| mine[i].1.tree);
    if let Some(tree) = root {
        prefetch(repo, tree)?;
    }
    Ok(Parents {
        parent: same.or(newest_holder).map(|i| mine[i].clone()),
        root,
        of_source,
    })
}

/// Whether a snapshot of `source` holds `path`: it is that path or below it.
fn holds(source: &[u8], path: &[u8]) -> bool {
    path.strip_prefix(source)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/") || source.ends_with(b"/"))
}

/// Fetches the trees below `tree` into the cache, a level at a time, when
/// the cache lacks it.
fn prefetch(repo: &Indexed, tree: Id) -> Result<()> {
    if let Some(cache) = repo.cache()
        && cache.get_blob(&tree).is_none()
        && repo.access() == crate::keys::Access::Full
    {
        let mut seen = HashSet::new();
        crate::walk::walk(repo, tree, Some(&mut seen), &mut |_, _| {}, &mut |_, _| {})?;
    }
    Ok(())
}
