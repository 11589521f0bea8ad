//! `snap repair index` and `snap repair snapshots`: the way back from an
//! index that lost track of stored packs, and from snapshots that name data
//! that is gone (format-spec.md section 10, "Repair").
//!
//! `repair index` trusts the packs themselves: every pack carries an
//! encrypted header that lists its blobs. It keeps each index entry whose
//! pack is stored with the size the entry gives, reads the header of every
//! stored pack that no index names (and of every entry whose size is
//! wrong), and drops entries whose pack is gone when asked for by name, not
//! only missing from a listing. Only the index files that change are
//! replaced, so the work grows with the damage.
//!
//! `repair snapshots` writes, for each snapshot that names blobs no index
//! holds, a replacement whose trees leave the damaged files out (and hold
//! an empty folder where a whole tree is gone), tagged `repaired`. The
//! original stays until the user forgets it, or goes at once with
//! `forget`.
//!
//! Both hold the prune lock, so no prune decides beside them; backups go
//! on, and their index files are left as they are.

use std::collections::{HashMap, HashSet};

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::IndexPack;
use crate::indexed::Indexed;
use crate::lock::{LockKind, live_locks};
use crate::object::Object;
use crate::packer::{Packer, PackerOptions};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{Snapshot, SnapshotFilter};
use crate::tree::{NodeKind, Tree};

/// The tag a replacement snapshot carries.
pub const REPAIRED_TAG: &str = "repaired";

#[derive(Clone, Debug, Default)]
pub struct RepairIndexOptions {
    /// Report what would change; write and delete nothing.
    pub dry_run: bool,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RepairIndexResult {
    pub dry_run: bool,
    /// Packs whose index entries were right and stay as they are.
    pub packs_kept: u64,
    /// Stored packs that no index named, indexed again from their headers.
    pub packs_added: Vec<Id>,
    /// Index entries whose pack is gone, asked for by name: taken out.
    pub packs_dropped: Vec<Id>,
    /// Entries whose size disagreed with the stored pack, replaced by what
    /// the pack's header says.
    pub packs_corrected: Vec<Id>,
    /// Stored packs whose header cannot be read (damaged, or not this
    /// repository's), with why: not indexed, and not deleted.
    pub packs_unreadable: Vec<(Id, String)>,
    /// Index files that could not be read: replaced, their packs indexed
    /// again from the packs' headers.
    pub index_files_unreadable: Vec<Id>,
    pub index_files_written: u64,
    pub index_files_replaced: u64,
}

impl RepairIndexResult {
    pub fn changed(&self) -> bool {
        !(self.packs_added.is_empty()
            && self.packs_dropped.is_empty()
            && self.packs_corrected.is_empty()
            && self.index_files_unreadable.is_empty())
    }
}

pub fn repair_index(
    repo: &Repository,
    opts: &RepairIndexOptions,
    progress: &dyn Progress,
) -> Result<RepairIndexResult> {
    repo.require_full("repair the index (it reads pack headers)")?;
    let mut r = RepairIndexResult {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let lock = crate::lock::acquire_sole_prune(repo)?;
    let mut files = Vec::new();
    for id in repo.list_index_ids()? {
        match repo.read_index_file(&id) {
            Ok(f) => files.push((id, f)),
            // Bytes that fail their checks are replaced; a file gone since
            // the listing was replaced by a prune; any other failure (the
            // network) stops the repair rather than drop what it names.
            Err(Error::Corrupt { .. }) => r.index_files_unreadable.push(id),
            Err(Error::Missing { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    r.index_files_unreadable.sort();
    let files = crate::index::current(files);
    // Files of backups running now stay as they are: such a backup names
    // its lock in them, which prune reads.
    let now = lock.store_now()?;
    let running: HashSet<Id> = live_locks(repo, now, &lock)?
        .iter()
        .filter(|l| l.kind() == LockKind::Backup)
        .filter_map(|l| l.id)
        .collect();
    let trashed: HashSet<Id> = crate::trash::list(repo)?
        .iter()
        .flat_map(|t| t.packs.iter().map(|p| p.id))
        .collect();
    let named: HashSet<Id> = files
        .iter()
        .flat_map(|(_, f)| f.packs.iter().map(|p| p.id))
        .collect();
    let (stored, gone) = repo.stored_packs(named.iter().copied())?;
    let gone: HashSet<Id> = gone.into_iter().collect();

    // Which entries are wrong, and which files hold them.
    let mut wrong_size: Vec<Id> = Vec::new();
    let mut replace: HashSet<Id> = HashSet::new();
    for (fid, f) in &files {
        let mut damaged = false;
        for p in &f.packs {
            if gone.contains(&p.id) {
                damaged = true;
            } else if stored.get(&p.id).is_some_and(|&s| s != p.size) {
                wrong_size.push(p.id);
                damaged = true;
            }
        }
        let protected = f.writer.is_some_and(|w| running.contains(&w));
        if damaged && !protected {
            replace.insert(*fid);
        }
    }
    wrong_size.sort();
    wrong_size.dedup();
    let mut unnamed: Vec<Id> = stored
        .keys()
        .filter(|id| !named.contains(id) && !trashed.contains(id))
        .copied()
        .collect();
    unnamed.sort();

    // Headers of the packs to index again, read whole and checked against
    // their names.
    let to_read: Vec<Id> = unnamed.iter().chain(&wrong_size).copied().collect();
    progress.start("reading pack headers", None, Some(to_read.len() as u64));
    let read: Vec<(Id, std::result::Result<IndexPack, String>)> = {
        use rayon::prelude::*;
        let pool = repo.transfer_pool()?;
        pool.install(|| {
            to_read
                .par_iter()
                .map(|id| {
                    let got = repo
                        .fetcher()
                        .pack(id)
                        .and_then(|pack| {
                            Ok(IndexPack {
                                id: *id,
                                size: pack.size(),
                                blobs: pack.header()?,
                            })
                        })
                        .map_err(|e| e.to_string());
                    progress.item(std::path::Path::new(&id.short()));
                    (*id, got)
                })
                .collect()
        })
    };
    let mut fresh: HashMap<Id, IndexPack> = HashMap::new();
    for (id, got) in read {
        match got {
            Ok(p) => {
                fresh.insert(id, p);
            }
            Err(e) => r.packs_unreadable.push((id, e)),
        }
    }
    r.packs_added = unnamed
        .iter()
        .filter(|id| fresh.contains_key(id))
        .copied()
        .collect();
    r.packs_corrected = wrong_size
        .iter()
        .filter(|id| fresh.contains_key(id))
        .copied()
        .collect();
    // Only a pack that is gone leaves the index. One whose size is wrong
    // and that cannot be read keeps its entry: its blobs may still be
    // readable by range, and `check` reports the damage.
    let mut dropped: HashSet<Id> = HashSet::new();
    for (_, f) in files.iter().filter(|(fid, _)| replace.contains(fid)) {
        for p in &f.packs {
            if gone.contains(&p.id) {
                dropped.insert(p.id);
            }
        }
    }
    r.packs_dropped = dropped.into_iter().collect();
    r.packs_dropped.sort();
    r.packs_kept = named
        .iter()
        .filter(|id| !gone.contains(id) && !fresh.contains_key(id))
        .count() as u64;
    progress.finish();
    if opts.dry_run || !r.changed() {
        return Ok(r);
    }

    // The new files: the right entries of the files replaced, then the
    // corrected and the added packs. They supersede the files replaced and
    // the unreadable ones, which go once the new files exist.
    let staying: HashSet<Id> = files
        .iter()
        .filter(|(fid, _)| !replace.contains(fid))
        .flat_map(|(_, f)| f.packs.iter().map(|p| p.id))
        .collect();
    let mut moved: HashSet<Id> = HashSet::new();
    let mut packs: Vec<IndexPack> = Vec::new();
    for (_, f) in files.iter().filter(|(fid, _)| replace.contains(fid)) {
        for p in &f.packs {
            let kept = !gone.contains(&p.id) && !fresh.contains_key(&p.id);
            if kept && !staying.contains(&p.id) && moved.insert(p.id) {
                packs.push(p.clone());
            }
        }
    }
    for id in r.packs_corrected.iter().chain(&r.packs_added) {
        if moved.insert(*id) {
            packs.push(fresh[id].clone());
        }
    }
    let mut supersedes: Vec<Id> = replace
        .iter()
        .chain(&r.index_files_unreadable)
        .copied()
        .collect();
    supersedes.sort();
    r.index_files_written += repo.write_superseding(&packs, &supersedes)?;
    repo.delete_objects(Object::Index, &supersedes)?;
    r.index_files_replaced = supersedes.len() as u64;
    drop(lock);
    Ok(r)
}

#[derive(Clone, Debug, Default)]
pub struct RepairSnapshotsOptions {
    /// Report what would change; write nothing.
    pub dry_run: bool,
    /// Forget each damaged original once its replacement is written.
    pub forget: bool,
    /// Only these snapshots are looked at.
    pub filter: SnapshotFilter,
}

/// One damaged snapshot and what became of it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RepairedSnapshot {
    pub original: Id,
    /// The snapshot written in its place (none in a dry run).
    pub replacement: Option<Id>,
    /// Paths left out: files whose data is gone, and folders whose listing
    /// is gone (written as empty folders).
    pub removed: Vec<String>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RepairSnapshotsResult {
    pub dry_run: bool,
    pub snapshots_checked: u64,
    pub repaired: Vec<RepairedSnapshot>,
    /// Originals forgotten (`forget`).
    pub forgotten: Vec<Id>,
}

pub fn repair_snapshots(
    repo: &Repository,
    opts: &RepairSnapshotsOptions,
    progress: &dyn Progress,
) -> Result<RepairSnapshotsResult> {
    repo.require_full("repair snapshots")?;
    let mut r = RepairSnapshotsResult {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let lock = crate::lock::acquire_sole_prune(repo)?;
    let indexed = repo.indexed()?;
    let snapshots: Vec<(Id, Snapshot)> = repo
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| opts.filter.matches(s))
        .collect();
    // An original that a replacement already names is not replaced again:
    // each run once wrote one more.
    let replaced: HashSet<Id> = snapshots
        .iter()
        .filter(|(_, s)| s.tags.iter().any(|t| t == REPAIRED_TAG))
        .filter_map(|(_, s)| s.parent)
        .collect();
    let (already, snapshots): (Vec<_>, Vec<_>) = snapshots
        .into_iter()
        .partition(|(id, _)| replaced.contains(id));
    r.snapshots_checked = snapshots.len() as u64;
    progress.start("checking snapshots", None, Some(snapshots.len() as u64));
    let packer = indexed.packer(PackerOptions::default());
    let mut mender = Mender {
        repo: &indexed,
        packer: (!opts.dry_run).then_some(&packer),
        intact: HashSet::new(),
    };
    let mut replacements: Vec<(usize, Snapshot)> = Vec::new();
    for (id, s) in &snapshots {
        let mut removed = Vec::new();
        let root = mender.tree(Some(s.tree), b"", &mut removed)?;
        progress.item(std::path::Path::new(&id.short()));
        if removed.is_empty() {
            continue;
        }
        let mut tags = s.tags.clone();
        tags.push(REPAIRED_TAG.to_string());
        tags.sort();
        tags.dedup();
        replacements.push((
            r.repaired.len(),
            Snapshot {
                tree: root,
                tags,
                parent: Some(*id),
                ..s.clone()
            },
        ));
        r.repaired.push(RepairedSnapshot {
            original: *id,
            replacement: None,
            removed,
        });
    }
    drop(mender);
    progress.finish();
    if opts.dry_run {
        return Ok(r);
    }
    // Trees first, then the snapshots that name them, then (asked for)
    // the originals' removal, each with its forget record.
    packer.finish()?;
    for (i, snapshot) in replacements {
        r.repaired[i].replacement = Some(repo.save_snapshot(&snapshot)?);
    }
    if opts.forget {
        r.forgotten = r
            .repaired
            .iter()
            .map(|s| s.original)
            .chain(already.iter().map(|(id, _)| *id))
            .collect();
        repo.remove_snapshots(&r.forgotten)?;
    }
    drop(lock);
    Ok(r)
}

/// Writes mended trees: each tree is read once; those with nothing missing
/// below them are remembered and kept as they are.
struct Mender<'a> {
    repo: &'a Indexed<'a>,
    /// `None` in a dry run.
    packer: Option<&'a Packer<'a>>,
    intact: HashSet<Id>,
}

impl Mender<'_> {
    /// The id of tree `id` with what is gone left out; `removed` gains the
    /// paths left out, below `path`. A tree that cannot be read (`None`, or
    /// gone) becomes an empty one.
    fn tree(&mut self, id: Option<Id>, path: &[u8], removed: &mut Vec<String>) -> Result<Id> {
        if let Some(id) = id
            && self.intact.contains(&id)
        {
            return Ok(id);
        }
        let before = removed.len();
        let shown = |name: &[u8]| {
            let mut p = path.to_vec();
            p.push(b'/');
            p.extend_from_slice(name);
            p
        };
        let loaded = match id {
            Some(id) => self.repo.load_tree(&id),
            None => Ok(Tree::default()),
        };
        let mut tree = match loaded {
            Ok(t) => t,
            Err(_) => {
                let mut p = String::from_utf8_lossy(path).into_owned();
                if p.is_empty() {
                    p.push('/');
                }
                removed.push(format!("{p} (its listing is gone: left empty)"));
                Tree::default()
            }
        };
        let index = self.repo.index();
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for mut node in std::mem::take(&mut tree.nodes) {
            let here = shown(&node.name);
            if node.kind == NodeKind::Dir {
                node.subtree = Some(self.tree(node.subtree, &here, removed)?);
            } else if node
                .content
                .iter()
                .any(|c| !index.contains(BlobType::Data, c))
            {
                removed.push(String::from_utf8_lossy(&here).into_owned());
                continue;
            }
            nodes.push(node);
        }
        tree.nodes = nodes;
        match id {
            Some(id) if removed.len() == before => {
                self.intact.insert(id);
                Ok(id)
            }
            _ => self.store(&tree),
        }
    }

    fn store(&self, tree: &Tree) -> Result<Id> {
        let bytes = tree.encode();
        match self.packer {
            Some(p) => Ok(p.add(BlobType::Tree, &bytes)?.0),
            None => Ok(Id::default()),
        }
    }
}
