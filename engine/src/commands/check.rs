//! `snap check`: is every snapshot restorable? Always: every index file
//! decodes, every indexed pack exists with its size, every tree of every
//! snapshot loads and every blob it names is indexed. With `read_data`:
//! every pack is downloaded, hashed, its header compared with the index and
//! every blob decrypted and verified against its id.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::fetch::{Buffers, Slot};
use crate::id::Id;
use crate::index::{IndexBuilder, IndexFile, IndexPack};
use crate::indexed::Indexed;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::Snapshot;

#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    pub read_data: bool,
    /// Read only this part of the packs, so a large repository can be
    /// verified a slice at a time.
    pub subset: Option<Subset>,
}

/// Which packs `--read-data-subset` reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Subset {
    /// A random share, in percent (0, 100].
    Percent(f64),
    /// Slice `n` of `t` (1-based): run all t over time and every pack is
    /// read once.
    Slice(u32, u32),
}

impl std::str::FromStr for Subset {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("{s:?} is not a subset: give N% (0 < N <= 100) or n/t (1 <= n <= t)");
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            return if v > 0.0 && v <= 100.0 {
                Ok(Subset::Percent(v))
            } else {
                Err(bad())
            };
        }
        let (n, t) = s.split_once('/').ok_or_else(bad)?;
        let (n, t): (u32, u32) = (
            n.trim().parse().map_err(|_| bad())?,
            t.trim().parse().map_err(|_| bad())?,
        );
        if n >= 1 && n <= t {
            Ok(Subset::Slice(n, t))
        } else {
            Err(bad())
        }
    }
}

impl Subset {
    fn selects(&self, pack: &Id) -> bool {
        match *self {
            Subset::Percent(p) => {
                let r = u64::from_le_bytes(crate::crypto::random_array()) as f64 / u64::MAX as f64;
                r * 100.0 < p
            }
            // Pack ids are uniform, so their first bytes split them evenly.
            Subset::Slice(n, t) => {
                ((u32::from_be_bytes(pack.0[..4].try_into().unwrap()) as u64 * t as u64) >> 32)
                    as u32
                    == n - 1
            }
        }
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CheckResult {
    pub snapshots: u64,
    /// Distinct trees read: a tree that several snapshots share is read
    /// once, so this grows with what changed between snapshots.
    pub trees: u64,
    pub packs: u64,
    pub packs_read: u64,
    /// Problems that make data unrestorable; non-empty means exit code 1.
    pub errors: Vec<String>,
    /// Harmless findings, such as packs no index names.
    pub warnings: Vec<String>,
    pub damaged_packs: Vec<Id>,
    /// Stored packs that no index names and no trash record holds: data
    /// that `snap repair index` indexes again.
    pub unindexed_packs: u64,
    /// `snapshot-short-id:path` of every file or directory that needs a
    /// damaged or missing pack.
    pub affected: Vec<String>,
    /// Locks left released by devices that may not delete: no command
    /// runs under them, and a prune on a device with full rights removes
    /// them.
    pub released_locks: Vec<crate::lock::ReleasedLock>,
}

impl CheckResult {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn report(&self) -> CheckReport<'_> {
        CheckReport {
            ok: self.ok(),
            result: self,
        }
    }
}

/// A check's result with its verdict, as `--json` prints it.
#[derive(Debug, serde::Serialize)]
pub struct CheckReport<'a> {
    pub ok: bool,
    #[serde(flatten)]
    pub result: &'a CheckResult,
}

fn read_pack(repo: &Repository, p: &IndexPack) -> std::result::Result<(), String> {
    let pack = repo.fetcher().pack(&p.id).map_err(|e| e.to_string())?;
    let header = pack.header().map_err(|e| e.to_string())?;
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
    let mut outcome = Ok(());
    pack.blobs(
        &header,
        |b| Slot::from(b),
        &mut Buffers::default(),
        |_, blob| {
            if let (Ok(()), Err(e)) = (&outcome, blob) {
                outcome = Err(e.to_string());
            }
        },
    );
    outcome
}

pub fn check(
    repo: &Repository,
    opts: &CheckOptions,
    progress: &dyn Progress,
) -> Result<CheckResult> {
    repo.require_full("check a repository (it reads packs and snapshots)")?;
    let mut r = CheckResult::default();
    let files = read_index_files(repo, &mut r)?;
    let packs = current_packs(&files);
    let mut index = IndexBuilder::default();
    for (_, f) in &files {
        index.add_file(f);
    }
    // Trees are read through the index built here, so a bad index file
    // is reported above and does not stop the check.
    let repo = &repo.with_index(index.build());
    r.packs = packs.len() as u64;
    let mut sorted_packs: Vec<&IndexPack> = packs.values().copied().collect();
    sorted_packs.sort_by_key(|p| p.id);
    let mut damaged = compare_packs(repo, &sorted_packs, &packs, &mut r)?;
    let snapshots = check_snapshots(repo, progress, &mut r)?;
    r.released_locks = crate::lock::released_locks(repo)?;
    for l in &r.released_locks {
        r.warnings.push(format!(
            "lock {} was left by a device that may not delete ({} on {}): its command has \
             ended, and a prune on a device with full rights removes it",
            l.name, l.username, l.host
        ));
    }
    if opts.read_data || opts.subset.is_some() {
        if let Some(subset) = &opts.subset {
            sorted_packs.retain(|p| subset.selects(&p.id));
        }
        read_data(repo, &sorted_packs, &mut damaged, progress, &mut r);
    }
    if !damaged.is_empty() {
        r.affected = crate::damage::affected(repo, &snapshots, &damaged)?;
    }
    let mut damaged: Vec<Id> = damaged.into_iter().collect();
    damaged.sort();
    r.damaged_packs = damaged;
    progress.finish();
    Ok(r)
}

/// Index files, one by one, so one bad file does not hide the others;
/// superseded ones left out.
fn read_index_files(repo: &Repository, r: &mut CheckResult) -> Result<Vec<(Id, IndexFile)>> {
    let mut files = Vec::new();
    for id in &repo.list_index_ids()? {
        match repo.read_index_file(id) {
            Ok(f) => files.push((*id, f)),
            Err(e) => r.errors.push(format!("index file {}: {e}", id.short())),
        }
    }
    let superseded: HashSet<Id> = files
        .iter()
        .flat_map(|(_, f)| f.supersedes.iter().copied())
        .collect();
    files.retain(|(id, _)| !superseded.contains(id));
    Ok(files)
}

/// Each pack the index names, as the first file names it.
fn current_packs(files: &[(Id, IndexFile)]) -> HashMap<Id, &IndexPack> {
    let mut packs: HashMap<Id, &IndexPack> = HashMap::new();
    for (_, f) in files {
        for p in &f.packs {
            packs.entry(p.id).or_insert(p);
        }
    }
    packs
}

/// Packs on storage against the index: missing or of the wrong size is
/// damage. A pack the listing lacks is asked for by name before it is
/// called missing. A stored pack that no index names is data to index
/// again, unless it waits in the trash for prune to delete it.
fn compare_packs(
    repo: &Repository,
    sorted_packs: &[&IndexPack],
    packs: &HashMap<Id, &IndexPack>,
    r: &mut CheckResult,
) -> Result<HashSet<Id>> {
    let (stored, _) = repo.stored_packs(sorted_packs.iter().map(|p| p.id))?;
    let mut damaged: HashSet<Id> = HashSet::new();
    for p in sorted_packs {
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
    let trashed: HashSet<Id> = crate::trash::list(repo)?
        .iter()
        .flat_map(|t| t.packs.iter().map(|p| p.id))
        .collect();
    let mut unindexed: Vec<&Id> = stored.keys().filter(|id| !packs.contains_key(id)).collect();
    unindexed.sort();
    for id in unindexed {
        r.warnings.push(if trashed.contains(id) {
            format!("pack {id} waits in the trash: a prune deletes it once no backup needs it")
        } else {
            r.unindexed_packs += 1;
            format!(
                "pack {id} is not in any index: it holds data that snapshots may need (left by an \
                 interrupted backup, or dropped from the index); run `snap repair index` to index \
                 it again"
            )
        });
    }
    Ok(damaged)
}

/// Every snapshot's trees, and every blob they name, in the index.
fn check_snapshots(
    repo: &Indexed,
    progress: &dyn Progress,
    r: &mut CheckResult,
) -> Result<Vec<(Id, Snapshot)>> {
    let index = repo.index();
    let mut snapshots = Vec::new();
    let listed = repo.list_snapshot_ids()?;
    for h in crate::forgotten::hidden_snapshots(repo, &listed)? {
        r.errors.push(format!(
            "snapshot {} that this device saw is gone without a record that snap removed it: \
             storage hid it, lost it or rolled the repository back",
            h.describe()
        ));
    }
    for id in &listed {
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
    r.trees = seen.len() as u64;
    Ok(snapshots)
}

/// `--read-data`: every selected pack downloaded and each blob verified.
fn read_data(
    repo: &Repository,
    packs: &[&IndexPack],
    damaged: &mut HashSet<Id>,
    progress: &dyn Progress,
    r: &mut CheckResult,
) {
    let total: u64 = packs.iter().map(|p| p.size).sum();
    progress.start("reading packs", Some(total), Some(packs.len() as u64));
    let outcomes: Vec<(Id, std::result::Result<(), String>)> = packs
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

/// Used by the CLI to turn a failed check into an error after printing it.
pub fn failed(result: &CheckResult) -> Error {
    Error::Other(format!("check found {} error(s)", result.errors.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_partition_the_packs() {
        let ids: Vec<Id> = (0..1000u32)
            .map(|i| Id::of_bytes(&i.to_le_bytes()))
            .collect();
        let mut counts = [0usize; 4];
        for id in &ids {
            let hits: Vec<u32> = (1..=4)
                .filter(|n| Subset::Slice(*n, 4).selects(id))
                .collect();
            assert_eq!(hits.len(), 1, "each pack in exactly one slice");
            counts[hits[0] as usize - 1] += 1;
        }
        assert!(counts.iter().all(|&c| c > 200 && c < 300), "{counts:?}");
        assert_eq!("10%".parse::<Subset>().unwrap(), Subset::Percent(10.0));
        assert_eq!("2/5".parse::<Subset>().unwrap(), Subset::Slice(2, 5));
        for bad in ["0%", "101%", "0/3", "4/3", "x", "1/0"] {
            assert!(bad.parse::<Subset>().is_err(), "{bad}");
        }
    }
}
