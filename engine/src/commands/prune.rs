//! `snap prune`: forget snapshots by policy, then delete data no snapshot
//! uses and repack mostly-unused packs, so the repository shrinks.
//!
//! Order on storage, so that a crash at any point loses nothing a
//! remaining snapshot needs: (1) delete forgotten snapshots; (2) upload
//! repacked blobs in new packs and their index; (3) upload an index of the
//! kept packs that supersedes every old index file; (4) delete old index
//! files; (5) delete unused packs. Until (3) the old index still names
//! every pack; after it the new one does.

use std::collections::{HashMap, HashSet};

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{Index, IndexFile, IndexPack};
use crate::pack::pack_path;
use crate::packer::{Packer, PackerOptions};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{KeepPolicy, SnapshotFilter, snapshot_path};

#[derive(Clone, Debug)]
pub struct PruneOptions {
    pub policy: KeepPolicy,
    /// The policy applies only to matching snapshots; others are kept.
    pub filter: SnapshotFilter,
    pub dry_run: bool,
    /// Repack a pack when more than this share of its bytes is unused.
    pub max_unused: f64,
    pub packer: PackerOptions,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            policy: KeepPolicy::default(),
            filter: SnapshotFilter::default(),
            dry_run: false,
            max_unused: 0.5,
            packer: PackerOptions::default(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct PruneResult {
    pub dry_run: bool,
    pub snapshots_kept: Vec<(Id, Vec<String>)>,
    pub snapshots_forgotten: Vec<Id>,
    pub packs_deleted: u64,
    pub packs_repacked: u64,
    pub packs_kept: u64,
    pub blobs_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Packs per index file that prune writes: keeps each file well below the
/// index size limit.
const PACKS_PER_INDEX: usize = 4096;

pub fn prune(
    repo: &mut Repository,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneResult> {
    let mut result = PruneResult {
        dry_run: opts.dry_run,
        ..Default::default()
    };

    // 1. Retention.
    let all = repo.snapshots()?;
    let mut groups: HashMap<_, Vec<_>> = HashMap::new();
    for (id, s) in &all {
        if opts.filter.matches(s) {
            groups
                .entry(s.group_key())
                .or_default()
                .push((*id, s.clone()));
        }
    }
    let mut forget: HashSet<Id> = HashSet::new();
    for group in groups.values() {
        for (id, reasons) in opts.policy.apply(group) {
            if reasons.is_empty() {
                forget.insert(id);
            } else {
                result.snapshots_kept.push((id, reasons));
            }
        }
    }
    result.snapshots_forgotten = all
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| forget.contains(id))
        .collect();
    if !opts.dry_run {
        for id in &result.snapshots_forgotten {
            repo.backend().delete(&snapshot_path(id))?;
        }
    }

    // 2. Mark: every blob a remaining snapshot reaches. A tree that cannot
    // be read stops the prune: what it references is unknown, so nothing
    // may be deleted.
    repo.load_index()?;
    progress.start("marking used data", None, Some(all.len() as u64));
    let mut used: HashSet<(BlobType, Id)> = HashSet::new();
    let mut seen = HashSet::new();
    for (id, s) in all.iter().filter(|(id, _)| !forget.contains(id)) {
        used.insert((BlobType::Tree, s.tree));
        let mut failure = None;
        crate::walk::walk(
            repo,
            s.tree,
            Some(&mut seen),
            &mut |_, node| {
                if let Some(sub) = node.subtree {
                    used.insert((BlobType::Tree, sub));
                }
                for c in &node.content {
                    used.insert((BlobType::Data, *c));
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
        if let Some(f) = failure {
            return Err(Error::Other(format!(
                "prune stopped, nothing was deleted: {f}; run `snap check`"
            )));
        }
    }

    // 3. Sweep: classify each pack by how much of it is still used. A blob
    // stored twice is used only in the first pack that has it.
    let mut index_ids: Vec<Id> = repo.list_index_ids()?;
    index_ids.sort();
    let mut packs: Vec<IndexPack> = Vec::new();
    let mut pack_seen = HashSet::new();
    for id in &index_ids {
        let file = repo.read_index_file(id)?;
        for p in file.packs {
            if pack_seen.insert(p.id) {
                packs.push(p);
            }
        }
    }
    let stored: HashMap<Id, u64> = repo
        .backend()
        .list("data/")?
        .into_iter()
        .filter_map(|o| Some((Id::from_hex(o.name.rsplit('/').next()?).ok()?, o.size)))
        .collect();
    let mut claimed: HashSet<(BlobType, Id)> = HashSet::new();
    let mut keep: Vec<IndexPack> = Vec::new();
    let mut repack: Vec<(IndexPack, Vec<usize>)> = Vec::new();
    let mut delete: Vec<Id> = Vec::new();
    for p in packs {
        result.bytes_before += p.size;
        if !stored.contains_key(&p.id) {
            // Indexed but gone: its blobs are lost either way; drop it from
            // the index so later backups store them again.
            delete.push(p.id);
            continue;
        }
        let mut used_idx = Vec::new();
        let mut used_bytes = 0u64;
        let mut total = 0u64;
        for (i, b) in p.blobs.iter().enumerate() {
            total += b.length as u64;
            if used.contains(&(b.ty, b.id)) && claimed.insert((b.ty, b.id)) {
                used_idx.push(i);
                used_bytes += b.length as u64;
            }
        }
        result.blobs_removed += (p.blobs.len() - used_idx.len()) as u64;
        if used_idx.is_empty() {
            delete.push(p.id);
        } else if used_idx.len() < p.blobs.len()
            && (total - used_bytes) as f64 > opts.max_unused * total as f64
        {
            repack.push((p, used_idx));
        } else {
            result.bytes_after += p.size;
            keep.push(p);
        }
    }
    result.packs_deleted = delete.len() as u64;
    result.packs_repacked = repack.len() as u64;
    result.packs_kept = keep.len() as u64;
    if opts.dry_run || (delete.is_empty() && repack.is_empty()) {
        for (p, _) in &repack {
            result.bytes_after += p.size;
        }
        return Ok(result);
    }

    // 4. Repack the used blobs of mostly-unused packs.
    let mut kept_index = Index::default();
    for p in &keep {
        kept_index.add_pack(p);
    }
    progress.start("repacking", None, Some(repack.len() as u64));
    let packer = Packer::new(
        repo.backend().clone(),
        repo.codec().clone(),
        &kept_index,
        opts.packer.clone(),
    );
    for (p, used_idx) in &repack {
        let bytes = repo.backend().read(&pack_path(&p.id))?;
        if Id::of_bytes(&bytes) != p.id {
            return Err(Error::corrupt(
                format!("pack {}", p.id.short()),
                "content does not match its name; prune stopped, run `snap check --read-data`",
            ));
        }
        for &i in used_idx {
            let b = &p.blobs[i];
            let stored = bytes
                .get(b.offset as usize..b.offset as usize + b.length as usize)
                .ok_or_else(|| {
                    Error::corrupt(format!("pack {}", p.id.short()), "blob outside the pack")
                })?;
            let plain = repo.codec().decode(b.ty, &b.id, stored, b.raw_length)?;
            packer.add_with_id(b.ty, b.id, &plain)?;
        }
        progress.item(std::path::Path::new(&p.id.short()));
    }
    let stats = packer.finish()?;
    result.bytes_after += stats.packs.iter().map(|p| p.size).sum::<u64>();

    // 5. One index for the kept packs that supersedes every old file, then
    // delete what is no longer referenced.
    let supersedes = index_ids.clone();
    if keep.is_empty() {
        repo.write_index(&IndexFile {
            supersedes,
            packs: Vec::new(),
        })?;
    } else {
        for chunk in keep.chunks(PACKS_PER_INDEX) {
            repo.write_index(&IndexFile {
                supersedes: supersedes.clone(),
                packs: chunk.to_vec(),
            })?;
        }
    }
    for id in &index_ids {
        repo.backend().delete(&format!("index/{id}"))?;
    }
    for id in delete.iter().chain(repack.iter().map(|(p, _)| &p.id)) {
        repo.backend().delete(&pack_path(id))?;
    }
    progress.finish();
    repo.load_index()?;
    Ok(result)
}
