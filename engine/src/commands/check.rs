//! `snap check`: is every snapshot restorable? Always: every index file
//! decodes, every indexed pack exists with its size, every tree of every
//! snapshot loads and every blob it names is indexed. With `read_data`:
//! every pack is downloaded, hashed, its header compared with the index and
//! every blob decrypted and verified against its id.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{Index, IndexPack};
use crate::pack::{self, pack_path};
use crate::progress::Progress;
use crate::repo::Repository;

#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    pub read_data: bool,
}

#[derive(Clone, Debug, Default)]
pub struct CheckResult {
    pub snapshots: u64,
    pub packs: u64,
    pub packs_read: u64,
    /// Problems that make data unrestorable; non-empty means exit code 1.
    pub errors: Vec<String>,
    /// Harmless findings, such as packs no index names.
    pub warnings: Vec<String>,
    pub damaged_packs: Vec<Id>,
    /// `snapshot-short-id:path` of every file or directory that needs a
    /// damaged or missing pack.
    pub affected: Vec<String>,
}

impl CheckResult {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

fn read_pack(repo: &Repository, p: &IndexPack) -> std::result::Result<(), String> {
    let bytes = repo
        .backend()
        .read(&pack_path(&p.id))
        .map_err(|e| e.to_string())?;
    if Id::of_bytes(&bytes) != p.id {
        return Err("content does not match its name".into());
    }
    let header = pack::read_header(repo.sealer(), &bytes).map_err(|e| e.to_string())?;
    let mut expected: Vec<_> = p
        .blobs
        .iter()
        .map(|b| (b.offset, b.ty, b.id, b.length, b.raw_length))
        .collect();
    let mut found: Vec<_> = header
        .iter()
        .map(|b| (b.offset, b.ty, b.id, b.length, b.raw_length))
        .collect();
    expected.sort();
    found.sort();
    if expected != found {
        return Err("its header does not match the index".into());
    }
    for b in &header {
        let stored = &bytes[b.offset as usize..b.offset as usize + b.length as usize];
        repo.codec()
            .decode(b.ty, &b.id, stored, b.raw_length)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub fn check(
    repo: &mut Repository,
    opts: &CheckOptions,
    progress: &dyn Progress,
) -> Result<CheckResult> {
    let mut r = CheckResult::default();

    // Index files, one by one, so one bad file does not hide the others.
    let mut index = Index::default();
    let mut packs: HashMap<Id, IndexPack> = HashMap::new();
    let index_ids = repo.list_index_ids()?;
    let mut files = Vec::new();
    for id in &index_ids {
        match repo.read_index_file(id) {
            Ok(f) => files.push((*id, f)),
            Err(e) => r.errors.push(format!("index file {}: {e}", id.short())),
        }
    }
    let superseded: HashSet<Id> = files
        .iter()
        .flat_map(|(_, f)| f.supersedes.iter().copied())
        .collect();
    for (id, f) in &files {
        if superseded.contains(id) {
            continue;
        }
        index.add_file(f);
        for p in &f.packs {
            packs.entry(p.id).or_insert_with(|| p.clone());
        }
    }
    repo.load_index()?;
    r.packs = packs.len() as u64;

    // Packs on storage against the index.
    let stored: HashMap<Id, u64> = repo
        .backend()
        .list("data/")?
        .into_iter()
        .filter_map(|o| Some((Id::from_hex(o.name.rsplit('/').next()?).ok()?, o.size)))
        .collect();
    let mut damaged: HashSet<Id> = HashSet::new();
    let mut sorted_packs: Vec<&IndexPack> = packs.values().collect();
    sorted_packs.sort_by_key(|p| p.id);
    for p in &sorted_packs {
        match stored.get(&p.id) {
            None => {
                r.errors.push(format!("pack {} is missing", p.id));
                damaged.insert(p.id);
            }
            Some(&size) if size != p.size => {
                r.errors.push(format!(
                    "pack {} has {size} bytes, the index says {}",
                    p.id, p.size
                ));
                damaged.insert(p.id);
            }
            Some(_) => {}
        }
    }
    let mut unindexed: Vec<&Id> = stored.keys().filter(|id| !packs.contains_key(id)).collect();
    unindexed.sort();
    for id in unindexed {
        r.warnings.push(format!(
            "pack {id} is not in any index (left by an interrupted backup; prune removes it)"
        ));
    }

    // Every snapshot's trees, and every blob they name.
    let snapshot_ids = repo.list_snapshot_ids()?;
    let mut snapshots = Vec::new();
    for id in &snapshot_ids {
        match repo.read_snapshot(id) {
            Ok(s) => snapshots.push((*id, s)),
            Err(e) => r.errors.push(format!("snapshot {}: {e}", id.short())),
        }
    }
    r.snapshots = snapshots.len() as u64;
    progress.start("checking snapshots", None, Some(snapshots.len() as u64));
    let mut seen = HashSet::new();
    for (sid, s) in &snapshots {
        if !index.contains(BlobType::Tree, &s.tree) {
            r.errors.push(format!(
                "snapshot {}: root tree {} is missing",
                sid.short(),
                s.tree.short()
            ));
            continue;
        }
        let mut errors = Vec::new();
        let mut tree_errors = Vec::new();
        crate::walk::walk(
            repo,
            s.tree,
            Some(&mut seen),
            &mut |path, node| {
                let missing = node
                    .content
                    .iter()
                    .filter(|c| !index.contains(BlobType::Data, c))
                    .count();
                if missing > 0 {
                    errors.push(format!(
                        "snapshot {}: {}: {missing} data blob(s) missing",
                        sid.short(),
                        String::from_utf8_lossy(path)
                    ));
                }
                if let Some(sub) = node.subtree
                    && !index.contains(BlobType::Tree, &sub)
                {
                    errors.push(format!(
                        "snapshot {}: {}: tree {} missing",
                        sid.short(),
                        String::from_utf8_lossy(path),
                        sub.short()
                    ));
                }
            },
            &mut |path, e| {
                tree_errors.push(format!(
                    "snapshot {}: {}: {e}",
                    sid.short(),
                    String::from_utf8_lossy(path)
                ));
            },
        )?;
        r.errors.extend(tree_errors);
        r.errors.extend(errors);
    }

    if opts.read_data {
        let total: u64 = sorted_packs.iter().map(|p| p.size).sum();
        progress.start(
            "reading packs",
            Some(total),
            Some(sorted_packs.len() as u64),
        );
        let outcomes: Vec<(Id, std::result::Result<(), String>)> = sorted_packs
            .par_iter()
            .filter(|p| !damaged.contains(&p.id))
            .map(|p| {
                let res = read_pack(repo, p);
                progress.bytes(p.size);
                (p.id, res)
            })
            .collect();
        for (id, res) in outcomes {
            r.packs_read += 1;
            if let Err(e) = res {
                r.errors.push(format!("pack {id} is damaged: {e}"));
                damaged.insert(id);
            }
        }
    }

    // Name what damage costs: every file and directory of every snapshot
    // that needs a damaged or missing pack.
    if !damaged.is_empty() {
        let in_damaged = |ty: BlobType, id: &Id| {
            index
                .get(ty, id)
                .is_some_and(|loc| damaged.contains(&index.pack_id(loc.pack)))
        };
        for (sid, s) in &snapshots {
            if in_damaged(BlobType::Tree, &s.tree) {
                r.affected.push(format!("{}:/", sid.short()));
            }
            let mut affected = Vec::new();
            crate::walk::walk(
                repo,
                s.tree,
                None,
                &mut |path, node| {
                    let hit = node.content.iter().any(|c| in_damaged(BlobType::Data, c))
                        || node.subtree.is_some_and(|t| in_damaged(BlobType::Tree, &t));
                    if hit {
                        affected.push(format!("{}:{}", sid.short(), String::from_utf8_lossy(path)));
                    }
                },
                &mut |_, _| {},
            )?;
            r.affected.extend(affected);
        }
    }
    let mut damaged: Vec<Id> = damaged.into_iter().collect();
    damaged.sort();
    r.damaged_packs = damaged;
    progress.finish();
    Ok(r)
}

/// Used by the CLI to turn a failed check into an error after printing it.
pub fn failed(result: &CheckResult) -> Error {
    Error::Other(format!("check found {} error(s)", result.errors.len()))
}
