//! `snap prune`: forget snapshots by policy, then delete data no snapshot
//! uses and repack mostly-unused packs, so the repository shrinks, while
//! backups on other devices go on (format-spec.md section 10).
//!
//! Phase 1 takes garbage out of the index: repacked blobs go to new packs,
//! an index of the kept packs supersedes every old index file, and a trash
//! record lists the packs left out with the backup locks live at that
//! moment. Phase 2 deletes trashed packs once none of those backups is
//! running, putting back any that a snapshot written meanwhile needs. A
//! crash at any point loses nothing a snapshot needs: until the new index
//! exists the old one names every pack, and a pack is deleted only after
//! its trash record exists.
//!
//! Under S3 Object Lock (or wherever the store refuses a delete with 403)
//! a prune never fails because an object is retained: it forgets what it
//! may, deletes every version it may, and puts the packs whose deletion
//! was refused into a trash record of their own that waits for no backup,
//! so a later prune deletes them once their retention lapses. Packs and
//! index files still in use have their retention extended
//! (format-spec.md section 4).
//!
//! Packs that a running backup wrote are never taken out of the index: its
//! index files name its lock, and while that lock is live they are left as
//! they are. The order of reads is what makes that enough: index files,
//! then locks, then snapshots. A backup whose index files were read either
//! still held its lock when the locks were listed, or had ended, and then
//! its snapshot is among those listed after.

use std::collections::{HashMap, HashSet};

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::indexed::Indexed;

use crate::fetch::{Buffers, Slot};
use crate::index::{BlobSet, IndexBuilder, IndexFile, IndexPack, PACKS_PER_INDEX};
use crate::lock::{LockGuard, LockKind, live_locks};
use crate::object::Object;
use crate::packer::{Packer, PackerOptions};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{GroupBy, KeepPolicy, Snapshot, SnapshotFilter};
use crate::trash::{self, TrashRecord, Waits};

#[derive(Clone, Debug)]
pub struct PruneOptions {
    pub policy: KeepPolicy,
    /// What the policy's groups are made of.
    pub group_by: GroupBy,
    /// The policy applies only to matching snapshots; others are kept.
    pub filter: SnapshotFilter,
    pub dry_run: bool,
    /// Repack a pack when more than this share of its bytes is unused.
    pub max_unused: f64,
    /// Index files naming fewer packs than this are merged into one.
    pub merge_index_below: usize,
    pub packer: PackerOptions,
    /// Name this device the one that deletes data, in place of the device
    /// the repository names ([`crate::pruner`]).
    pub take_over: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            policy: KeepPolicy::default(),
            group_by: GroupBy::default(),
            filter: SnapshotFilter::default(),
            dry_run: false,
            max_unused: 0.5,
            merge_index_below: PACKS_PER_INDEX / 4,
            packer: PackerOptions::default(),
            take_over: false,
        }
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PruneResult {
    pub dry_run: bool,
    pub snapshots_kept: Vec<crate::report::Kept>,
    pub snapshots_forgotten: Vec<Id>,
    /// The same decisions per retention group, in group order, for people
    /// to read: retention applies within each group, which a flat list of
    /// ids hid.
    #[serde(skip)]
    pub groups: Vec<RetentionGroup>,
    /// Packs deleted from storage by this run, and their bytes.
    pub packs_deleted: u64,
    pub bytes_deleted: u64,
    /// Packs taken out of the index (by this run or an earlier one) whose
    /// deletion waits in the trash, and their bytes: a later prune deletes
    /// them.
    pub packs_deferred: u64,
    pub bytes_deferred: u64,
    /// Why they wait, in words (the backups running, or what stopped the
    /// trash from being emptied).
    pub deferred_because: Vec<String>,
    /// Packs left alone because a running backup wrote them.
    pub packs_of_running_backups: u64,
    /// Trashed packs put back because a new snapshot needs them.
    pub packs_restored: u64,
    /// Packs whose used blobs moved to new packs.
    pub packs_repacked: u64,
    pub packs_kept: u64,
    pub blobs_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Distinct trees read to mark what snapshots use.
    pub trees_read: u64,
    /// Index files left as they were, and index files written to replace
    /// the others.
    pub index_files_kept: u64,
    pub index_files_written: u64,
    /// The device that deletes data, when it is not this one: this prune
    /// only forgot snapshots.
    pub data_left_to: Option<crate::pruner::PrunerRecord>,
    /// This prune names this device the one that deletes data from now on
    /// (with `dry_run`: would): the page says so before a first
    /// keep-last-N on a second computer makes it the pruner unawares.
    pub claims_pruner: bool,
    /// Packs whose deletion the store refused (Object Lock retention, a
    /// bucket's default retention, a key that may not delete), and their
    /// bytes: they wait in the trash, and a later prune deletes them once
    /// the store lets it.
    pub packs_retained: Vec<Id>,
    pub bytes_retained: u64,
    /// Superseded index files whose deletion the store refused: a later
    /// prune supersedes and deletes them again.
    pub index_files_retained: u64,
    /// Packs and index files in use whose Object Lock retention this prune
    /// extended to the full term.
    pub retention_extended: u64,
}

/// One retention group and what the policy decided for its snapshots,
/// newest first.
#[derive(Clone, Debug)]
pub struct RetentionGroup {
    pub key: crate::snapshot::GroupKey,
    /// Each snapshot, and why it is kept (empty: removed).
    pub snapshots: Vec<(Id, Snapshot, Vec<String>)>,
}

pub fn prune(
    repo: &Repository,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneResult> {
    repo.require_full("prune (it reads trees and removes data)")?;
    let mut result = PruneResult {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let lock = crate::lock::acquire_sole_prune(repo)?;
    let to_claim = match crate::pruner::role(repo, opts.take_over)? {
        crate::pruner::Role::ForgetOnly(pruner) => {
            apply_retention(repo, opts, &mut result)?;
            result.data_left_to = Some(pruner);
            return Ok(result);
        }
        crate::pruner::Role::Delete(record) => record,
    };
    result.claims_pruner = to_claim.is_some();
    // The order of reading matters: index files, then locks, then
    // snapshots (see format-spec.md section 10).
    let state = read_index_and_locks(repo, &lock)?;
    let (all, forget) = apply_retention(repo, opts, &mut result)?;
    // Past the check for hidden snapshots: this prune goes on, and is the
    // one that deletes data from now on.
    if let Some(record) = &to_claim
        && !opts.dry_run
    {
        crate::pruner::claim(repo, record)?;
    }
    let (marking, lingering) = index_for_marking(repo, &state)?;
    let index = marking.index();
    progress.start("marking used data", None, Some(all.len() as u64));
    let mut used = BlobSet::new(index);
    let mut seen = HashSet::new();
    let marked: HashSet<Id> = all.iter().map(|(id, _)| *id).collect();
    for (id, s) in all.iter().filter(|(id, _)| !forget.contains(id)) {
        mark(&marking, id, s.tree, &mut used, &mut seen)?;
    }
    result.trees_read = seen.len() as u64;
    let sweep = sweep(&state, index, &used, &lingering, opts, &mut result);
    if opts.dry_run {
        result.packs_deleted = sweep.removed.len() as u64;
        for (p, _) in &sweep.repack {
            result.bytes_after += p.size;
        }
        return Ok(result);
    }
    repack(repo, &sweep, opts, progress, &mut result)?;
    replace_index_files(repo, &lock, &state, &sweep, &lingering, opts, &mut result)?;
    // Phase 2.
    empty_trash(&marking, &lock, &marked, &mut used, &mut seen, &mut result)?;
    progress.finish();
    let repo = &repo.indexed()?;
    result.retention_extended = keep_retained(repo)?;
    // Trees of deleted packs are no longer worth keeping on this device.
    if let Some(c) = repo.cache() {
        let trees = repo
            .index()
            .blobs()
            .filter(|(_, loc)| loc.ty == BlobType::Tree)
            .map(|(id, _)| id)
            .collect();
        c.retain("trees", &trees);
    }
    Ok(result)
}

/// Every snapshot, and the ids retention forgets.
type Retention = (Vec<(Id, Snapshot)>, HashSet<Id>);

/// What prune read before deciding anything.
struct State {
    /// Every index file, superseded ones too.
    files: Vec<(Id, IndexFile)>,
    /// Packs in the listing of `data/`, with their sizes.
    stored: HashMap<Id, u64>,
    /// Index files written by backups running now, and their packs: left
    /// as they are.
    protected_files: HashSet<Id>,
    protected: HashSet<Id>,
}

/// Steps 1 and 2. First every index file, superseded ones too: a prune
/// that crashed can leave packs that only a superseded file names. A pack
/// counts once, in the first file (by id) that names it, and only if it is
/// stored. Then the locks: the files of running backups stay as they are.
fn read_index_and_locks(repo: &Repository, lock: &LockGuard) -> Result<State> {
    let files = repo.read_index_files()?;
    let trashed: HashSet<Id> = trash::list(repo)?
        .iter()
        .flat_map(|t| t.packs.iter().map(|p| p.id))
        .collect();
    let indexed: Vec<Id> = crate::index::current(files.clone())
        .iter()
        .flat_map(|(_, f)| f.packs.iter().map(|p| p.id))
        .filter(|id| !trashed.contains(id))
        .collect();
    let (stored, gone) = repo.stored_packs(indexed)?;
    if !gone.is_empty() {
        return Err(packs_gone(repo, &files, &gone));
    }
    let running = running_backups(repo, lock)?;
    let protected_files: HashSet<Id> = files
        .iter()
        .filter(|(_, f)| f.writer.is_some_and(|w| running.contains(&w)))
        .map(|(id, _)| *id)
        .collect();
    let protected: HashSet<Id> = files
        .iter()
        .filter(|(id, _)| protected_files.contains(id))
        .flat_map(|(_, f)| f.packs.iter().map(|p| p.id))
        .collect();
    Ok(State {
        files,
        stored,
        protected_files,
        protected,
    })
}

/// The error that stops a prune when packs that the index names are gone,
/// asked for by name and not only missing from a listing: nothing was
/// deleted, and the index still names them. It names the files that need
/// them, so the user knows what is at stake before choosing to repair.
fn packs_gone(repo: &Repository, files: &[(Id, IndexFile)], gone: &[Id]) -> Error {
    let mut builder = IndexBuilder::default();
    for (_, f) in crate::index::current(files.to_vec()) {
        builder.add_file(&f);
    }
    let indexed = repo.with_index(builder.build());
    let lost: HashSet<Id> = gone.iter().copied().collect();
    let needing = repo
        .snapshots()
        .and_then(|all| crate::damage::affected(&indexed, &all, &lost))
        .map(|files| {
            if files.is_empty() {
                "no snapshot needs them".to_string()
            } else {
                format!("needed by {}", crate::damage::some_of(&files, 10))
            }
        })
        .unwrap_or_else(|e| format!("what needs them could not be read: {e}"));
    let names: Vec<String> = gone.iter().map(Id::short).collect();
    Error::PacksGone(format!(
        "prune stopped, nothing was deleted: {} pack(s) that the index names are not in \
         storage, asked for by name as well as listed ({}); {needing}. If the storage is only \
         behind, prune again later. If they are lost, `snap repair index` takes them out of \
         the index and `snap repair snapshots` writes snapshots without the damaged files",
        gone.len(),
        crate::damage::some_of(&names, 10)
    ))
}

/// Step 3: the snapshots, and retention per group; the snapshots it
/// forgets are removed (not in a dry run). Storage can hide a snapshot
/// from the listing; one this device has seen that is gone without a
/// forget record stops the prune before anything is deleted. Returns
/// every snapshot and the ids forgotten.
fn apply_retention(
    repo: &Repository,
    opts: &PruneOptions,
    result: &mut PruneResult,
) -> Result<Retention> {
    let all = repo.snapshots()?;
    let listed: Vec<Id> = all.iter().map(|(id, _)| *id).collect();
    let hidden = crate::forgotten::hidden_snapshots(repo, &listed)?;
    if !hidden.is_empty() {
        let names: Vec<String> = hidden.iter().map(|h| h.describe()).collect();
        return Err(Error::Other(format!(
            "prune stopped, nothing was deleted: snapshot(s) {} that this device has seen are gone \
             from the repository without a record that snap removed them; storage may be hiding \
             them, and their data would be deleted as unused. Run `snap check`; if you know they \
             were removed by an older snap, delete {} to accept that",
            names.join(", "),
            repo.device_state()
                .map(|s| s.path().display().to_string())
                .unwrap_or_default()
        )));
    }
    let mut groups: HashMap<_, Vec<_>> = HashMap::new();
    for (id, s) in &all {
        if opts.filter.matches(s) {
            groups
                .entry(s.group_key(&opts.group_by))
                .or_default()
                .push((*id, s.clone()));
        }
    }
    // `--host` mistyped in a cron job once made every prune keep all.
    if groups.is_empty() && !opts.filter.is_empty() && !all.is_empty() {
        let mut hosts: Vec<&str> = all.iter().map(|(_, s)| s.host.as_str()).collect();
        hosts.sort();
        hosts.dedup();
        return Err(Error::InvalidArgument(format!(
            "no snapshot matches {} (the repository has snapshots of {})",
            opts.filter.describe(),
            hosts.join(", ")
        )));
    }
    let mut forget: HashSet<Id> = HashSet::new();
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, group) in groups {
        let snapshot = |id: &Id| group.iter().find(|(i, _)| i == id).map(|(_, s)| s.clone());
        let mut decided = Vec::new();
        for (id, reasons) in opts.policy.apply(&group) {
            if reasons.is_empty() {
                forget.insert(id);
            } else {
                result.snapshots_kept.push(crate::report::Kept {
                    id,
                    reasons: reasons.clone(),
                });
            }
            if let Some(s) = snapshot(&id) {
                decided.push((id, s, reasons));
            }
        }
        decided.sort_by(|a, b| b.1.time_ns.cmp(&a.1.time_ns).then(a.0.cmp(&b.0)));
        result.groups.push(RetentionGroup {
            key,
            snapshots: decided,
        });
    }
    result.snapshots_forgotten = all
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| forget.contains(id))
        .collect();
    if !opts.dry_run {
        repo.remove_snapshots(&result.snapshots_forgotten)?;
    }
    Ok((all, forget))
}

/// The index to mark with: every stored pack of every index file, then
/// trashed packs too: a backup that reused one may have written its
/// snapshot after the pack left the index, and its trees must still be
/// readable to mark it (phase 2 copies what it needs). Returns the
/// lingering packs: trashed packs that only superseded files still name (a
/// prune crashed between replacing and deleting them). They stay in the
/// trash: naming them again under their old id would undo what another
/// prune, paused, may still carry out. Phase 2 copies what of them is
/// needed.
fn index_for_marking<'r>(
    repo: &'r Repository,
    state: &State,
) -> Result<(Indexed<'r>, HashSet<Id>)> {
    let mut builder = IndexBuilder::default();
    for (_, f) in &state.files {
        for p in f.packs.iter().filter(|p| state.stored.contains_key(&p.id)) {
            builder.add_pack(p);
        }
    }
    let trashed_now = trash::list(repo)?;
    for t in &trashed_now {
        for p in t.packs.iter().filter(|p| state.stored.contains_key(&p.id)) {
            builder.add_pack(p);
        }
    }
    let indexed = repo.with_index(builder.build());
    let current: HashSet<Id> = crate::index::current(state.files.clone())
        .iter()
        .flat_map(|(_, f)| f.packs.iter().map(|p| p.id))
        .collect();
    let lingering = trashed_now
        .iter()
        .flat_map(|t| t.packs.iter().map(|p| p.id))
        .filter(|id| !current.contains(id))
        .collect();
    Ok((indexed, lingering))
}

/// The packs by what happens to them.
struct Sweep<'a> {
    keep: Vec<&'a IndexPack>,
    /// Mostly unused: the used blobs (their positions) move to new packs.
    repack: Vec<(&'a IndexPack, Vec<usize>)>,
    removed: Vec<&'a IndexPack>,
}

/// Step 4, sweep: classify each pack by how much of it is still used. A blob
/// stored twice is used only where the index locates it: in the first
/// pack that names it.
fn sweep<'a>(
    state: &'a State,
    index: &crate::index::Index,
    used: &BlobSet,
    lingering: &HashSet<Id>,
    opts: &PruneOptions,
    result: &mut PruneResult,
) -> Sweep<'a> {
    let mut listed = HashSet::new();
    let mut sweep = Sweep {
        keep: Vec::new(),
        repack: Vec::new(),
        removed: Vec::new(),
    };
    for p in state.files.iter().flat_map(|(_, f)| &f.packs) {
        if !listed.insert(p.id) || lingering.contains(&p.id) {
            continue;
        }
        result.bytes_before += p.size;
        if state.protected.contains(&p.id) {
            result.packs_of_running_backups += 1;
            result.bytes_after += p.size;
            continue;
        }
        let Some(number) = index.pack_number(&p.id) else {
            // Not stored: a pack that only superseded files name, or a
            // trashed one, gone by design (a current one that is gone
            // stopped the prune in step 1).
            sweep.removed.push(p);
            continue;
        };
        let mut used_idx = Vec::new();
        let mut used_bytes = 0u64;
        let mut total = 0u64;
        for (i, b) in p.blobs.iter().enumerate() {
            total += b.length as u64;
            if used.contains(b.ty, &b.id)
                && index.get(b.ty, &b.id).is_some_and(|l| l.pack == number)
            {
                used_idx.push(i);
                used_bytes += b.length as u64;
            }
        }
        result.blobs_removed += (p.blobs.len() - used_idx.len()) as u64;
        if used_idx.is_empty() {
            sweep.removed.push(p);
        } else if used_idx.len() < p.blobs.len()
            && (total - used_bytes) as f64 > opts.max_unused * total as f64
        {
            sweep.repack.push((p, used_idx));
        } else {
            result.bytes_after += p.size;
            sweep.keep.push(p);
        }
    }
    result.packs_repacked = sweep.repack.len() as u64;
    result.packs_kept = sweep.keep.len() as u64;
    sweep
}

/// Step 5: repack the used blobs of mostly-unused packs.
fn repack(
    repo: &Repository,
    sweep: &Sweep,
    opts: &PruneOptions,
    progress: &dyn Progress,
    result: &mut PruneResult,
) -> Result<()> {
    if sweep.repack.is_empty() {
        return Ok(());
    }
    let mut kept = IndexBuilder::default();
    for p in &sweep.keep {
        kept.add_pack(p);
    }
    let kept = kept.build();
    progress.start("repacking", None, Some(sweep.repack.len() as u64));
    let packer = repo.packer_over(&kept, opts.packer.clone());
    for (p, used_idx) in &sweep.repack {
        copy_blobs(repo, &packer, p, used_idx)?;
        progress.item(std::path::Path::new(&p.id.short()));
    }
    let stats = packer.finish()?;
    result.bytes_after += stats.pack_bytes;
    Ok(())
}

/// Step 6, phase 1: new index files for the kept packs of the files that
/// change supersede those files, then the trash record, then those files
/// go. Files naming only kept packs stay as they are, so the index written
/// scales with what changed, not with the repository.
fn replace_index_files(
    repo: &Repository,
    lock: &LockGuard,
    state: &State,
    sweep: &Sweep,
    lingering: &HashSet<Id>,
    opts: &PruneOptions,
    result: &mut PruneResult,
) -> Result<()> {
    let files = &state.files;
    let gone: HashSet<Id> = sweep
        .removed
        .iter()
        .map(|p| p.id)
        .chain(sweep.repack.iter().map(|(p, _)| p.id))
        .collect();
    let rewrite = files_to_rewrite(files, &gone, &state.protected_files, opts.merge_index_below);
    result.index_files_kept = (files.len() - rewrite.len()) as u64;
    if rewrite.is_empty() {
        return Ok(());
    }
    let staying: HashSet<Id> = files
        .iter()
        .filter(|(id, _)| !rewrite.contains(id))
        .flat_map(|(_, f)| f.packs.iter().map(|p| p.id))
        .collect();
    let mut moved = HashSet::new();
    let packs: Vec<IndexPack> = files
        .iter()
        .filter(|(id, _)| rewrite.contains(id))
        .flat_map(|(_, f)| &f.packs)
        .filter(|p| {
            state.stored.contains_key(&p.id)
                && !gone.contains(&p.id)
                && !staying.contains(&p.id)
                && !lingering.contains(&p.id)
                && moved.insert(p.id)
        })
        .cloned()
        .collect();
    let mut supersedes: Vec<Id> = rewrite.iter().copied().collect();
    supersedes.sort();
    result.index_files_written += repo.write_superseding(&packs, &supersedes)?;
    let trashed: Vec<IndexPack> = sweep
        .removed
        .iter()
        .copied()
        .chain(sweep.repack.iter().map(|(p, _)| *p))
        .filter(|p| state.stored.contains_key(&p.id))
        .cloned()
        .collect();
    if !trashed.is_empty() {
        // The backups running now, listed after the new index files
        // exist: a backup that starts later reads an index without the
        // trashed packs, since the new files supersede the old.
        let mut waits_for: Vec<Id> = running_backups(repo, lock)?.into_iter().collect();
        waits_for.sort();
        trash::write(
            repo,
            &TrashRecord {
                packs: trashed,
                waits_for,
            },
        )?;
    }
    let names: Vec<String> = supersedes.iter().map(|id| Object::Index.name(id)).collect();
    result.index_files_retained = repo.backend().purge(&names)?.len() as u64;
    Ok(())
}

/// Extends the retention of every pack and index file in use, where the
/// repository keeps objects under Object Lock and less than half the term
/// remains.
fn keep_retained(repo: &Indexed) -> Result<u64> {
    if repo.backend().retention().is_none() {
        return Ok(0);
    }
    let mut names: Vec<String> = repo
        .list_index_ids()?
        .iter()
        .map(|id| Object::Index.name(id))
        .collect();
    names.extend(
        repo.index()
            .packs()
            .map(|(_, id, _)| Object::Pack.name(&id)),
    );
    // The snapshots kept, and the config and keys without which nothing
    // opens: a thief with delete rights could otherwise wait until their
    // retention lapsed and delete them, every pack still locked.
    names.extend(
        repo.list_snapshot_ids()?
            .iter()
            .map(|id| Object::Snapshot.name(id)),
    );
    names.extend(crate::repo::lifelines(repo)?);
    repo.backend().extend_retention(&names)
}

/// Copies blobs `which` of pack `p` into `packer`, after verifying the
/// pack against its name.
fn copy_blobs(repo: &Repository, packer: &Packer, p: &IndexPack, which: &[usize]) -> Result<()> {
    let stopped =
        |e: Error| Error::Other(format!("{e}; prune stopped, run `snap check --read-data`"));
    let pack = repo.fetcher().pack(&p.id).map_err(stopped)?;
    let mut outcome = Ok(());
    pack.blobs(
        which,
        |&i| Slot::from(&p.blobs[i]),
        &mut Buffers::default(),
        |&i, blob| {
            let b = &p.blobs[i];
            if outcome.is_ok() {
                outcome = blob
                    .map_err(stopped)
                    .and_then(|blob| packer.add_with_id(b.ty, b.id, blob.plain).map(drop));
            }
        },
    );
    outcome
}

/// The index files phase 1 replaces: those naming a pack that goes, those
/// already superseded (left by a crash), and small files, merged so that
/// backups' many small files do not slow every later load. Small files
/// are merged only when there are two or more or a rewrite happens anyway,
/// so a prune with nothing to collect writes nothing.
fn files_to_rewrite(
    files: &[(Id, IndexFile)],
    gone: &HashSet<Id>,
    protected: &HashSet<Id>,
    merge_below: usize,
) -> HashSet<Id> {
    let superseded: HashSet<Id> = files
        .iter()
        .flat_map(|(_, f)| f.supersedes.iter().copied())
        .collect();
    let (mut must, mut small) = (HashSet::new(), HashSet::new());
    for (id, f) in files.iter().filter(|(id, _)| !protected.contains(id)) {
        if superseded.contains(id) || f.packs.iter().any(|p| gone.contains(&p.id)) {
            must.insert(*id);
        } else if f.packs.len() < merge_below {
            small.insert(*id);
        }
    }
    if !must.is_empty() || small.len() >= 2 {
        must.extend(small);
    }
    must
}

/// Adds every blob that snapshot `id` reaches to `used`. A tree that cannot
/// be read stops the prune: what it references is unknown, so nothing may
/// be deleted.
fn mark(
    repo: &Indexed,
    id: &Id,
    tree: Id,
    used: &mut BlobSet,
    seen: &mut HashSet<Id>,
) -> Result<()> {
    used.insert(BlobType::Tree, &tree);
    let mut failure = None;
    crate::walk::walk(
        repo,
        tree,
        Some(seen),
        &mut |_, node| {
            if let Some(sub) = node.subtree {
                used.insert(BlobType::Tree, &sub);
            }
            for c in &node.content {
                used.insert(BlobType::Data, c);
            }
        },
        &mut |path, e| {
            failure.get_or_insert(format!(
                "snapshot {}: {}: {e}",
                id.short(),
                String::from_utf8_lossy(path)
            ));
        },
    )?;
    match failure {
        Some(f) => Err(Error::Other(format!(
            "prune stopped, nothing was deleted: {f}; run `snap check`"
        ))),
        None => Ok(()),
    }
}

/// The ids of the backup locks live now. A backup that prune cannot tell
/// apart (an older snap's, whose index files do not name their writer, or
/// a lock that cannot be read) stops the prune: its packs could not be
/// protected.
fn running_backups(repo: &Repository, lock: &LockGuard) -> Result<HashSet<Id>> {
    let now = lock.store_now()?;
    let mut out = HashSet::new();
    for l in live_locks(repo, now, lock)? {
        if l.kind() != LockKind::Backup {
            continue;
        }
        if l.is_unknown_backup() {
            return Err(Error::Locked(format!(
                "a backup by an older snap, or one whose lock cannot be read, is running ({}); \
                 prune again when it has finished (its lock expires by itself within {} minutes \
                 if it crashed)",
                l.describe(),
                crate::lock::EXPIRY.as_secs() / 60
            )));
        }
        out.extend(l.id);
    }
    Ok(out)
}

/// Phase 2: deletes trashed packs that no running backup can rely on.
///
/// A backup writes its lock before it reads the index. So once none of the
/// backups a record waits for is live, every backup that could have seen
/// its packs in the index has finished, and its snapshot is among those
/// listed now: marking the snapshots that appeared since phase 1 and
/// putting back the packs they need makes the rest safe to delete. A
/// record waits however long its backups run: no clock decides. A backup
/// whose lock lapsed may have been missed by any record, so while one is
/// live no record is emptied.
fn empty_trash(
    repo: &Indexed,
    lock: &LockGuard,
    marked: &HashSet<Id>,
    used: &mut BlobSet,
    seen: &mut HashSet<Id>,
    result: &mut PruneResult,
) -> Result<()> {
    let records = trash::list(repo)?;
    if records.is_empty() {
        return Ok(());
    }
    let now = lock.store_now()?;
    let locks = live_locks(repo, now, lock)?;
    let backups: HashSet<Id> = locks
        .iter()
        .filter(|l| l.kind() == LockKind::Backup)
        .filter_map(|l| l.id)
        .collect();
    let block_all = locks.iter().any(|l| l.blocks_all_trash());
    let defer_all = |result: &mut PruneResult, why: String| {
        for t in &records {
            defer(result, t);
        }
        result.deferred_because.push(why);
    };
    let listed = repo.list_snapshot_ids()?;
    // Storage may hide a snapshot written since step 4 (by a backup on this
    // device): its packs would look unused.
    if !crate::forgotten::hidden_snapshots(repo, &listed)?.is_empty() {
        defer_all(
            result,
            "a snapshot this device saw is not listed now (run `snap check`)".into(),
        );
        return Ok(());
    }
    for id in listed {
        if !marked.contains(&id) {
            let s = repo.read_snapshot(&id)?;
            if mark(repo, &id, s.tree, used, seen).is_err() {
                // A snapshot written during this prune may have its trees
                // in packs this prune's index lacks. Decide nothing now:
                // the next prune marks it with an index that has them.
                defer_all(
                    result,
                    format!(
                        "snapshot {}, written during this prune, is not yet readable here",
                        id.short()
                    ),
                );
                return Ok(());
            }
        }
    }
    // Everything indexed now, including index files that backups wrote to
    // put trashed packs back.
    let indexed = repo.read_index()?;
    // A trashed pack the listing lacks is asked for by name: one that a
    // new snapshot needs must not be passed over on a listing's word.
    let trashed: Vec<Id> = records
        .iter()
        .flat_map(|t| t.packs.iter().map(|p| p.id))
        .collect();
    let (stored, _) = repo.stored_packs(trashed)?;
    // Blobs of packs put back by this loop, which the index above lacks.
    let mut put_back: HashSet<(BlobType, Id)> = HashSet::new();
    let mut restore = Vec::new();
    let mut delete = Vec::new();
    // Every pack this phase may delete, for a record of those the store
    // refuses to delete.
    let mut candidates: HashMap<Id, IndexPack> = HashMap::new();
    // Under retention a pack no longer listed may still have versions
    // that an earlier prune could not delete: it is purged again.
    let versioned = repo.backend().retention().is_some();
    let mut emptied = Vec::new();
    let mut waited_for: HashSet<Id> = HashSet::new();
    for t in records {
        let waits_on: Vec<Id> = match &t.waits {
            Waits::Locks(ids) => ids
                .iter()
                .filter(|id| backups.contains(id))
                .copied()
                .collect(),
            Waits::AnyBackup => backups.iter().copied().collect(),
        };
        if block_all || !waits_on.is_empty() {
            defer(result, &t);
            waited_for.extend(waits_on);
            continue;
        }
        for p in t.packs {
            if indexed.pack_number(&p.id).is_some() {
                continue;
            }
            if !stored.contains_key(&p.id) {
                if versioned {
                    delete.push(p.id);
                    candidates.insert(p.id, p);
                }
                continue;
            }
            candidates.insert(p.id, p.clone());
            let needed = p.blobs.iter().any(|b| {
                used.contains(b.ty, &b.id)
                    && !indexed.contains(b.ty, &b.id)
                    && !put_back.contains(&(b.ty, b.id))
            });
            if needed {
                put_back.extend(p.blobs.iter().map(|b| (b.ty, b.id)));
                restore.push(p);
            } else {
                delete.push(p.id);
            }
        }
        emptied.push(t.id);
    }
    // Needed blobs of trashed packs are copied into new packs, not put back
    // under the old pack's name: another prune, paused after it decided to
    // delete that pack, may still delete it. The old pack then goes too.
    if !restore.is_empty() {
        result.packs_restored = restore.len() as u64;
        let packer = repo.packer_over(&indexed, PackerOptions::default());
        for p in &restore {
            let needed: Vec<usize> = (0..p.blobs.len())
                .filter(|&i| used.contains(p.blobs[i].ty, &p.blobs[i].id))
                .collect();
            copy_blobs(repo, &packer, p, &needed)?;
        }
        packer.finish()?;
        delete.extend(restore.iter().map(|p| p.id));
    }
    let names: Vec<String> = delete.iter().map(|id| Object::Pack.name(id)).collect();
    let refused: HashSet<String> = repo.backend().purge(&names)?.into_iter().collect();
    let (kept, deleted): (Vec<Id>, Vec<Id>) = delete
        .iter()
        .partition(|id| refused.contains(&Object::Pack.name(id)));
    result.packs_deleted = deleted.iter().filter(|id| stored.contains_key(id)).count() as u64;
    result.bytes_deleted = deleted.iter().filter_map(|id| stored.get(id)).sum();
    if !kept.is_empty() {
        // Remembered before the records they came from go: a trash record
        // that waits for no backup, which the next prune empties when the
        // store lets it.
        let packs: Vec<IndexPack> = kept.iter().filter_map(|id| candidates.remove(id)).collect();
        result.bytes_retained = packs.iter().map(|p| p.size).sum();
        result.packs_retained = kept.clone();
        result.packs_retained.sort();
        trash::write(
            repo,
            &TrashRecord {
                packs,
                waits_for: Vec::new(),
            },
        )?;
    }
    for id in &emptied {
        trash::remove(repo, id)?;
    }
    let here = crate::sys::hostname();
    for l in &locks {
        let Some(l_id) = l.id else { continue };
        if l.kind() != LockKind::Backup || !(block_all || waited_for.contains(&l_id)) {
            continue;
        }
        let on_this = l.lock.as_ref().is_some_and(|k| k.host == here);
        result.deferred_because.push(format!(
            "a backup is running {} ({}){}",
            if on_this {
                "on this computer"
            } else {
                "on another device"
            },
            l.describe(),
            if l.blocks_all_trash() {
                ": its lock lapsed or cannot be read, so no trash is emptied while it runs"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

/// Counts a trash record's packs as waiting.
fn defer(result: &mut PruneResult, t: &trash::Trashed) {
    result.packs_deferred += t.packs.len() as u64;
    result.bytes_deferred += t.packs.iter().map(|p| p.size).sum::<u64>();
}

#[cfg(test)]
mod tests {
    use std::ops::Range;
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::backend::{Backend, ObjectInfo, StoreBackend};
    use crate::commands::create::{CreateOptions, create};
    use crate::crypto::KdfParams;
    use crate::progress::Silent;
    use crate::repo::InitOptions;

    /// A store whose listings of `data/` leave out every name in `hidden`,
    /// while the objects themselves answer: a listing that lags, a replica
    /// behind, or a bucket that hides one key.
    struct Hiding {
        inner: StoreBackend,
        hidden: std::sync::Mutex<Vec<String>>,
    }

    impl Backend for Hiding {
        fn location(&self) -> &str {
            self.inner.location()
        }
        fn read(&self, name: &str, max: u64) -> Result<Bytes> {
            self.inner.read(name, max)
        }
        fn read_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
            self.inner.read_range(name, range)
        }
        fn write(&self, name: &str, data: Bytes) -> Result<()> {
            self.inner.write(name, data)
        }
        fn create(&self, name: &str, data: Bytes) -> Result<bool> {
            self.inner.create(name, data)
        }
        fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
            let hidden = self.hidden.lock().unwrap();
            let mut all = self.inner.list(prefix)?;
            all.retain(|o| !hidden.contains(&o.name));
            Ok(all)
        }
        fn delete(&self, name: &str) -> Result<()> {
            self.inner.delete(name)
        }
        fn head(&self, name: &str) -> Result<Option<u64>> {
            self.inner.head(name)
        }
    }

    fn fast_init(backend: Arc<dyn Backend>) -> Repository {
        let mut o = InitOptions::new(Some("pw".into()));
        o.kdf = KdfParams {
            memory_kib: 1024,
            iterations: 1,
            ..o.kdf
        };
        Repository::init(backend, o).unwrap()
    }

    /// A pack that one listing leaves out stays in the index: prune once
    /// wrote the index again without it, and every byte of its files was
    /// still stored but no command could find them.
    #[test]
    fn a_pack_the_listing_leaves_out_stays_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("doc.txt"), b"balance: 100").unwrap();
        let store = dir.path().join("repo");
        let plain = Arc::new(StoreBackend::local(&store, true).unwrap());
        let repo = fast_init(plain.clone());
        create(
            &repo,
            &CreateOptions {
                paths: vec![src.clone()],
                ..Default::default()
            },
            &Silent,
        )
        .unwrap();
        let packs: Vec<String> = plain
            .list("data/")
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert!(!packs.is_empty());
        let hiding = Arc::new(Hiding {
            inner: StoreBackend::local(&store, false).unwrap(),
            hidden: std::sync::Mutex::new(packs.clone()),
        });
        let lying = Repository::open(hiding.clone(), &|| Ok("pw".to_string())).expect("opens");
        let r = prune(&lying, &PruneOptions::default(), &Silent).unwrap();
        assert_eq!(r.packs_deleted, 0);
        // Seen through an honest listing: the index still names every
        // pack, and the repository checks clean.
        let honest = Repository::open(plain, &|| Ok("pw".to_string())).unwrap();
        let indexed: HashSet<Id> = crate::index::current(honest.read_index_files().unwrap())
            .iter()
            .flat_map(|(_, f)| f.packs.iter().map(|p| p.id))
            .collect();
        assert_eq!(indexed.len(), packs.len(), "a hidden pack left the index");
        let c = crate::commands::check::check(&honest, &Default::default(), &Silent).unwrap();
        assert!(
            c.ok() && c.unindexed_packs == 0,
            "{:?} {:?}",
            c.errors,
            c.warnings
        );
    }
}
