//! `snap restore`: backend → packs → blob decoder → files. Each pack is
//! fetched once; its blobs go straight to their offsets in every file that
//! needs them; all-zero chunks are left as holes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::BlobLocation;
use crate::pack::{self, pack_path};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::SnapshotFilter;
use crate::sys;
use crate::tree::{Node, NodeKind};

#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// `latest`, an id or an id prefix.
    pub snapshot: String,
    pub target: PathBuf,
    pub filter: SnapshotFilter,
    /// Absolute paths as backed up; only these and what is below them are
    /// restored. Empty: everything.
    pub include: Vec<PathBuf>,
}

#[derive(Clone, Debug, Default)]
pub struct RestoreResult {
    pub snapshot_id: Id,
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// Files found already restored and verified, so not downloaded again.
    pub files_kept: u64,
    /// Bytes of packs fetched from storage.
    pub bytes_downloaded: u64,
    /// Entries that could not be restored; non-empty means a non-zero exit.
    pub errors: Vec<String>,
}

/// Where a file's blob goes.
struct Target {
    file: usize,
    offset: u64,
}

/// One blob of a pack and every place it goes.
struct BlobPlan {
    length: u32,
    raw_length: u32,
    targets: Vec<Target>,
}

/// A file to restore: its number, size, and each blob with its offset in
/// the file.
type FilePlan = (usize, u64, Vec<(BlobLocation, Id, u64)>);

/// Blobs needed from one pack, by offset in the pack.
type PackPlan = BTreeMap<(u32, Id), BlobPlan>;

struct Planned {
    path: PathBuf,
    node: Node,
    /// Its directory was created by this restore: nothing can be in the way.
    fresh: bool,
}

/// Whether `path` is restored (and, for a directory, descended into): it
/// is at or below an include, or above one on the way to it.
fn is_included(path: &[u8], includes: &[Vec<u8>]) -> bool {
    if includes.is_empty() {
        return true;
    }
    let under = |inc: &[u8], p: &[u8]| {
        p.starts_with(inc) && (p.len() == inc.len() || p[inc.len()] == b'/' || inc == b"/")
    };
    includes
        .iter()
        .any(|inc| under(inc, path) || under(path, inc))
}

/// Whether `path` (absolute, `/`-separated, as backed up) is in the tree
/// whose root is `root`.
fn path_in_tree(repo: &Repository, root: Id, path: &[u8]) -> Result<bool> {
    let mut tree = root;
    let mut parts = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .peekable();
    while let Some(part) = parts.next() {
        let t = repo.load_tree(&tree)?;
        let Some(node) = t.nodes.iter().find(|n| n.name == part) else {
            return Ok(false);
        };
        match (node.subtree, parts.peek()) {
            (_, None) => return Ok(true),
            (Some(sub), Some(_)) => tree = sub,
            (None, Some(_)) => return Ok(false),
        }
    }
    Ok(true)
}

pub fn restore(
    repo: &mut Repository,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreResult> {
    repo.load_index()?;
    let (snapshot_id, snapshot) = repo.find_snapshot(&opts.snapshot, &opts.filter)?;
    let trust = if repo.is_encrypted() {
        sys::Trust::Authenticated
    } else {
        sys::Trust::Unauthenticated
    };
    let includes: Vec<Vec<u8>> = opts
        .include
        .iter()
        .map(|p| {
            let s = p.as_os_str().as_bytes();
            let trimmed = if s.len() > 1 {
                s.strip_suffix(b"/").unwrap_or(s)
            } else {
                s
            };
            trimmed.to_vec()
        })
        .collect();
    // An --include that names nothing in the snapshot once restored nothing
    // and exited 0. Checked before anything is written.
    for (inc, given) in includes.iter().zip(&opts.include) {
        if !path_in_tree(repo, snapshot.tree, inc)? {
            return Err(Error::InvalidArgument(format!(
                "--include {} names nothing in snapshot {} (its paths: {})",
                given.display(),
                snapshot_id.short(),
                snapshot.paths_lossy().join(", ")
            )));
        }
    }
    std::fs::create_dir_all(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
    let mut result = RestoreResult {
        snapshot_id,
        ..Default::default()
    };
    let errors = Mutex::new(Vec::new());
    let fail = |msg: String| {
        progress.warn(&msg);
        errors.lock().unwrap().push(msg);
    };

    // Walk the snapshot: create directories, links and special files now,
    // plan file contents, and remember what needs metadata afterwards.
    let mut files: Vec<Planned> = Vec::new();
    let mut others: Vec<Planned> = Vec::new();
    let mut dirs: Vec<Planned> = Vec::new();
    // Level by level, a batch of directories at a time, so that a device
    // with an empty cache fetches trees a few requests per level.
    let mut queue: VecDeque<(Id, PathBuf, Vec<u8>, bool)> =
        VecDeque::from([(snapshot.tree, opts.target.clone(), Vec::new(), false)]);
    while !queue.is_empty() {
        let take = queue.len().min(crate::walk::TREE_BATCH);
        let batch: Vec<_> = queue.drain(..take).collect();
        let ids: Vec<Id> = batch.iter().map(|b| b.0).collect();
        for ((_, dir, logical, fresh), tree) in batch.into_iter().zip(repo.load_trees(&ids)?) {
            let tree = match tree {
                Ok(t) => t,
                Err(e) => {
                    fail(format!("{}: directory cannot be read: {e}", dir.display()));
                    continue;
                }
            };
            for node in tree.nodes {
                let mut lpath = logical.clone();
                lpath.push(b'/');
                lpath.extend_from_slice(&node.name);
                if !is_included(&lpath, &includes) {
                    continue;
                }
                let path = dir.join(OsStr::from_bytes(&node.name));
                match node.kind {
                    NodeKind::Dir => {
                        let created = match ensure_dir(&path) {
                            Ok(c) => c,
                            Err(e) => {
                                fail(format!("{}: {e}", path.display()));
                                continue;
                            }
                        };
                        if let Some(sub) = node.subtree {
                            queue.push_back((sub, path.clone(), lpath, created));
                        }
                        dirs.push(Planned { path, node, fresh });
                    }
                    NodeKind::File => files.push(Planned { path, node, fresh }),
                    NodeKind::Symlink => {
                        let r = remove_existing(&path).and_then(|_| {
                            std::os::unix::fs::symlink(OsStr::from_bytes(&node.link_target), &path)
                        });
                        match r {
                            Ok(()) => others.push(Planned { path, node, fresh }),
                            Err(e) => fail(format!("{}: {e}", path.display())),
                        }
                    }
                    NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
                        match remove_existing(&path)
                            .and_then(|_| sys::make_special(&path, &node, trust))
                        {
                            Ok(()) => others.push(Planned { path, node, fresh }),
                            Err(e) => fail(format!(
                                "{}: cannot create {:?}: {e}",
                                path.display(),
                                node.kind
                            )),
                        }
                    }
                }
            }
        }
    }

    // Hardlinks: the first path of each (device, inode) gets the content,
    // the others are linked to it once it is complete.
    let mut first_of: HashMap<(u64, u64), usize> = HashMap::new();
    let mut links: Vec<(usize, usize)> = Vec::new();
    let mut content_files: Vec<usize> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if f.node.links > 1 {
            if let Some(&first) = first_of.get(&(f.node.device, f.node.inode)) {
                links.push((first, i));
                continue;
            }
            first_of.insert((f.node.device, f.node.inode), i);
        }
        content_files.push(i);
    }

    // Plan: for each pack, which blobs go where. A file already on disk
    // with the snapshot's content is verified and kept, which is what lets
    // an interrupted restore continue; every other file is written under a
    // partial name and renamed into place once its last blob has landed,
    // so no half-written file ever has the final name.
    let index = repo.index();
    let mut by_pack: BTreeMap<u32, PackPlan> = BTreeMap::new();
    let mut file_ok = vec![true; files.len()];
    let remaining: Vec<AtomicUsize> = (0..files.len()).map(|_| AtomicUsize::new(0)).collect();
    // Files whose content and metadata are complete under the final name.
    let finished: Vec<AtomicBool> = (0..files.len()).map(|_| AtomicBool::new(false)).collect();
    let mut total_bytes = 0u64;
    let mut plans: Vec<FilePlan> = Vec::new();
    let mut single = vec![false; files.len()];
    for &i in &content_files {
        let f = &files[i];
        let mut offset = 0u64;
        let mut planned = Vec::new();
        for id in &f.node.content {
            match index.get(BlobType::Data, id) {
                Some(loc) => {
                    planned.push((loc, *id, offset));
                    offset += loc.raw_length as u64;
                }
                None => {
                    fail(format!(
                        "{}: data blob {} is missing from the repository",
                        f.path.display(),
                        id.short()
                    ));
                    file_ok[i] = false;
                    break;
                }
            }
        }
        if !file_ok[i] {
            continue;
        }
        if offset != f.node.size {
            fail(format!(
                "{}: content adds up to {offset} bytes, the snapshot says {}",
                f.path.display(),
                f.node.size
            ));
        }
        plans.push((i, offset, planned));
    }
    // In parallel: keep what is already restored, create the rest at full
    // size (regions never written stay holes). Empty files finish here.
    enum Prepared {
        Kept,
        Created,
        /// A single-blob file: created by the thread that writes its blob.
        Deferred,
        Failed(String),
    }
    let prepared: Vec<Prepared> = plans
        .par_iter()
        .map(|(i, size, planned)| {
            let f = &files[*i];
            let partial = partial_path(&f.path);
            if !f.fresh {
                let blobs: Vec<(u32, Id)> = planned
                    .iter()
                    .map(|(loc, id, _)| (loc.raw_length, *id))
                    .collect();
                if matches_snapshot(repo, &f.path, &blobs, *size) {
                    let _ = std::fs::remove_file(&partial);
                    return Prepared::Kept;
                }
            }
            if planned.len() == 1 {
                return Prepared::Deferred;
            }
            let created = std::fs::File::create(&partial).and_then(|file| {
                file.set_len(*size)?;
                if planned.is_empty() {
                    sys::restore_file_metadata(&file, &f.node, trust)?;
                    drop(file);
                    place(&partial, &f.path)?;
                    finished[*i].store(true, Ordering::Relaxed);
                }
                Ok(())
            });
            match created {
                Ok(()) => Prepared::Created,
                Err(e) => Prepared::Failed(format!("{}: {e}", f.path.display())),
            }
        })
        .collect();
    for ((i, size, planned), outcome) in plans.into_iter().zip(prepared) {
        match outcome {
            Prepared::Kept => {
                result.files_kept += 1;
                continue;
            }
            Prepared::Failed(msg) => {
                fail(msg);
                file_ok[i] = false;
                continue;
            }
            Prepared::Created => {}
            Prepared::Deferred => single[i] = true,
        }
        total_bytes += size;
        remaining[i].store(planned.len(), Ordering::Relaxed);
        for (loc, id, off) in planned {
            by_pack
                .entry(loc.pack)
                .or_default()
                .entry((loc.offset, id))
                .or_insert(BlobPlan {
                    length: loc.length,
                    raw_length: loc.raw_length,
                    targets: Vec::new(),
                })
                .targets
                .push(Target {
                    file: i,
                    offset: off,
                });
        }
    }

    progress.start(
        "restore",
        Some(total_bytes),
        Some(content_files.len() as u64),
    );
    let broken = Mutex::new(vec![false; files.len()]);
    let downloaded = AtomicU64::new(0);
    let packs: Vec<_> = by_pack.into_iter().collect();
    // Downloads wait on the network more than on the CPU: decode as they arrive.
    let pool = repo.transfer_pool()?;
    let mark_broken = |targets: &[Target], why: &str| {
        let mut b = broken.lock().unwrap();
        for t in targets {
            if !b[t.file] {
                b[t.file] = true;
                fail(format!("{}: {why}", files[t.file].path.display()));
            }
        }
    };
    // One placement of a blob is done. The thread that completes a file
    // sets its metadata through the open file and moves it into place.
    let done = |t: &Target, handle: Option<std::fs::File>| {
        if remaining[t.file].fetch_sub(1, Ordering::AcqRel) != 1 || broken.lock().unwrap()[t.file] {
            return;
        }
        let f = &files[t.file];
        let partial = partial_path(&f.path);
        let r = (|| {
            let file = match handle {
                Some(h) => h,
                None => std::fs::OpenOptions::new()
                    .write(true)
                    .create(single[t.file])
                    .truncate(single[t.file])
                    .open(&partial)?,
            };
            if single[t.file] {
                // Its only blob may have been all zeros: a hole to the end.
                file.set_len(f.node.size)?;
            }
            sys::restore_file_metadata(&file, &f.node, trust)?;
            drop(file);
            place(&partial, &f.path)
        })();
        match r {
            Ok(()) => finished[t.file].store(true, Ordering::Relaxed),
            Err(e) => {
                broken.lock().unwrap()[t.file] = true;
                fail(format!("{}: {e}", f.path.display()));
            }
        }
    };
    pool.install(|| {
        // Each worker reuses its two blob buffers for every blob it decodes.
        let buffers = || (Vec::new(), Vec::new());
        packs
            .par_iter()
            .for_each_init(buffers, |(plain, scratch), (pack, blobs)| {
                let pack_id = index.pack_id(*pack);
                let span = |b: &(&(u32, Id), &BlobPlan)| (b.0.0 as u64, b.1.length as u64);
                for run in pack::runs(blobs.iter(), span) {
                    let range = pack::run_range(&run, span);
                    let start = range.start;
                    let bytes = match repo
                        .backend()
                        .read_range(&pack_path(&pack_id), range.clone())
                    {
                        Ok(b) => b,
                        Err(e) => {
                            for (_, plan) in &run {
                                mark_broken(
                                    &plan.targets,
                                    &format!("pack {} cannot be read: {e}", pack_id.short()),
                                );
                            }
                            continue;
                        }
                    };
                    downloaded.fetch_add(range.end - start, Ordering::Relaxed);
                    for ((offset, id), plan) in run {
                        let targets = &plan.targets;
                        let s = (*offset as u64 - start) as usize;
                        let stored = bytes.get(s..s + plan.length as usize).unwrap_or(&[]);
                        let decoded = repo.codec().decode_into(
                            BlobType::Data,
                            id,
                            stored,
                            plan.raw_length,
                            plain,
                            scratch,
                        );
                        if let Err(e) = decoded {
                            mark_broken(
                                targets,
                                &format!("damaged data in pack {}: {e}", pack_id.short()),
                            );
                            continue;
                        }
                        let zero = plain.iter().all(|&b| b == 0);
                        for t in targets {
                            let mut handle = None;
                            if !zero {
                                let partial = partial_path(&files[t.file].path);
                                // A single-blob file is created here, in the same open.
                                let r = std::fs::OpenOptions::new()
                                    .write(true)
                                    .create(single[t.file])
                                    .truncate(single[t.file])
                                    .open(&partial)
                                    .and_then(|f| {
                                        write_sparse(&f, plain, t.offset)?;
                                        Ok(f)
                                    });
                                match r {
                                    Ok(f) => handle = Some(f),
                                    Err(e) => mark_broken(std::slice::from_ref(t), &e.to_string()),
                                }
                            }
                            done(t, handle);
                        }
                        progress.bytes(plain.len() as u64 * targets.len() as u64);
                    }
                }
            })
    });
    result.bytes_downloaded = downloaded.load(Ordering::Relaxed);
    let broken = broken.into_inner().unwrap();
    // What could not be completed leaves nothing that looks complete.
    for (i, f) in files.iter().enumerate() {
        if broken[i] {
            let _ = std::fs::remove_file(partial_path(&f.path));
        }
    }

    for (first, other) in &links {
        let (src, dst) = (&files[*first].path, &files[*other].path);
        let r = remove_existing(dst).and_then(|_| std::fs::hard_link(src, dst));
        if let Err(e) = r {
            fail(format!(
                "{}: cannot link to {}: {e}",
                dst.display(),
                src.display()
            ));
        }
    }

    // Metadata of files not completed above: kept ones and hardlinks.
    files.par_iter().enumerate().for_each(|(i, f)| {
        if file_ok[i]
            && !broken[i]
            && !finished[i].load(Ordering::Relaxed)
            && let Err(e) = sys::restore_metadata(&f.path, &f.node, trust)
        {
            fail(format!("{}: metadata: {e}", f.path.display()));
        }
        progress.item(&f.path);
    });
    for (i, f) in files.iter().enumerate() {
        if file_ok[i] && !broken[i] {
            result.files += 1;
            result.bytes += f.node.size;
        }
    }
    for o in &others {
        if let Err(e) = sys::restore_metadata(&o.path, &o.node, trust) {
            fail(format!("{}: metadata: {e}", o.path.display()));
        }
    }
    // Deepest directories first, so setting a child's times does not touch
    // its parent's after the parent was set.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
    for d in &dirs {
        if let Err(e) = sys::restore_metadata(&d.path, &d.node, trust) {
            fail(format!("{}: metadata: {e}", d.path.display()));
        }
    }
    result.dirs = dirs.len() as u64;
    progress.finish();
    result.errors = errors.into_inner().unwrap();
    Ok(result)
}

/// Where a file's content is assembled before it gets its name: hidden,
/// beside the target (so the rename stays on one file system), and named by
/// a hash so that long names stay within the file system's limit.
fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    let tag = &blake3::hash(name).to_hex()[..16];
    path.with_file_name(format!(".snap-{tag}.partial"))
}

/// Gives a complete file its name. rename(2) replaces a file or link in
/// the way and refuses a directory, which is what restore wants.
fn place(partial: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(partial, path).map_err(|e| match e.raw_os_error() {
        Some(nix::libc::EISDIR) | Some(nix::libc::ENOTEMPTY) | Some(nix::libc::EEXIST) => {
            std::io::Error::other("a directory is in the way")
        }
        _ => e,
    })
}

/// Whether `path` already holds exactly the snapshot's content: same size,
/// and every chunk hashes to its id.
fn matches_snapshot(repo: &Repository, path: &Path, blobs: &[(u32, Id)], size: u64) -> bool {
    use std::io::Read;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.len() != size {
        return false;
    }
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut buf = Vec::new();
    for (len, id) in blobs {
        buf.resize(*len as usize, 0);
        if file.read_exact(&mut buf).is_err() || repo.codec().id(&buf) != *id {
            return false;
        }
    }
    true
}

/// Writes `data` at `offset`, skipping file-system blocks that are all
/// zero: the file was created at full size, so they stay holes.
fn write_sparse(file: &std::fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    const BLOCK: u64 = 4096;
    let mut pos = 0usize;
    let mut run_start: Option<usize> = None;
    while pos < data.len() {
        let abs = offset + pos as u64;
        let end = (pos + (BLOCK - abs % BLOCK) as usize).min(data.len());
        let zero = data[pos..end].iter().all(|&b| b == 0);
        match (zero, run_start) {
            (false, None) => run_start = Some(pos),
            (true, Some(start)) => {
                file.write_all_at(&data[start..pos], offset + start as u64)?;
                run_start = None;
            }
            _ => {}
        }
        pos = end;
    }
    if let Some(start) = run_start {
        file.write_all_at(&data[start..], offset + start as u64)?;
    }
    Ok(())
}

/// Makes `path` a directory; true if this call created it.
fn ensure_dir(path: &Path) -> std::io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(false),
        Ok(_) => {
            std::fs::remove_file(path)?;
            std::fs::create_dir(path).map(|_| true)
        }
        Err(_) => std::fs::create_dir(path).map(|_| true),
    }
}

/// Makes room for a new entry: an existing file or link is replaced, an
/// existing directory is an error (its contents are not ours to delete).
fn remove_existing(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(std::io::Error::other("a directory is in the way")),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_selects_subtree_and_ancestors() {
        let inc = vec![b"/home/a".to_vec()];
        assert!(is_included(b"/home", &inc));
        assert!(is_included(b"/home/a", &inc));
        assert!(is_included(b"/home/a/x", &inc));
        assert!(!is_included(b"/home/ab", &inc));
        assert!(!is_included(b"/etc", &inc));
    }
}
