//! The writing stage of a restore: packs → blob decoder → files. Each pack
//! is fetched once, in runs of the blobs needed; each blob goes straight to
//! its offsets in every file that needs it; all-zero chunks stay holes.
//!
//! Every file is written under a hidden partial name beside its final one
//! and renamed into place once its last blob has landed, with its metadata
//! set through the open file: a restore killed at any moment leaves no
//! half-written file under a final name, and a rerun's plan keeps what is
//! complete and writes the rest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::fetch::{Buffers, Slot};
use crate::id::Id;
use crate::index::BlobLocation;
use crate::indexed::Indexed;
use crate::progress::Progress;
use crate::sys;
use crate::tree::Node;

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

/// A file to write: its number, size, and each blob with its offset in
/// the file.
type FilePlan = (usize, u64, Vec<(BlobLocation, Id, u64)>);

/// Blobs needed from one pack, by offset in the pack.
type PackPlan = BTreeMap<(u32, Id), BlobPlan>;

/// A file to write: where, and what the snapshot says it is.
pub(crate) struct FileJob<'a> {
    pub path: &'a Path,
    pub node: &'a Node,
    /// A directory is in the way: the file is completed under its partial
    /// name and placed by the caller, once deleting is known to be safe.
    pub defer: bool,
}

/// What writing gave: which files are complete under their final name,
/// and the bytes fetched.
pub struct Written {
    pub complete: Vec<bool>,
    pub bytes_downloaded: u64,
}

/// Writes `files`; `fail` hears of each file that could not be. The
/// progress phase counts `items` files, of which these are some: each is
/// counted as it is completed, the others by the caller.
pub(crate) fn write_files(
    repo: &Indexed,
    files: &[FileJob],
    items: u64,
    trust: sys::Trust,
    progress: &dyn Progress,
    fail: &(dyn Fn(String) + Sync),
) -> Result<Written> {
    let n = files.len();
    let mut w = Writer {
        repo,
        files,
        trust,
        progress,
        fail,
        finished: (0..n).map(|_| AtomicBool::new(false)).collect(),
        inodes: (0..n).map(|_| AtomicU64::new(0)).collect(),
        remaining: (0..n).map(|_| AtomicUsize::new(0)).collect(),
        single: vec![false; n],
        broken: Mutex::new(vec![false; n]),
        downloaded: AtomicU64::new(0),
    };
    let (plans, usable) = w.locate();
    for (i, _, planned) in &plans {
        w.single[*i] = planned.len() == 1;
    }
    let (by_pack, total_bytes, usable) = w.prepare(plans, usable);
    progress.start("restore", Some(total_bytes), Some(items));
    w.fetch(by_pack)?;
    let broken = w.broken.into_inner().unwrap();
    // What could not be completed leaves nothing that looks complete.
    for (i, f) in files.iter().enumerate() {
        if broken[i] || !usable[i] {
            let _ = std::fs::remove_file(partial_path(f.path));
        }
    }
    Ok(Written {
        complete: (0..n)
            .map(|i| usable[i] && !broken[i] && w.finished[i].load(Ordering::Relaxed))
            .collect(),
        bytes_downloaded: w.downloaded.into_inner(),
    })
}

/// The writing stage's shared state: per file, whether it is complete,
/// the inode its partial file was created as (see [`open_partial`]), the
/// blob placements still to land, whether it is one blob, and whether it
/// broke.
struct Writer<'a> {
    repo: &'a Indexed<'a>,
    files: &'a [FileJob<'a>],
    trust: sys::Trust,
    progress: &'a dyn Progress,
    fail: &'a (dyn Fn(String) + Sync),
    finished: Vec<AtomicBool>,
    inodes: Vec<AtomicU64>,
    remaining: Vec<AtomicUsize>,
    single: Vec<bool>,
    broken: Mutex<Vec<bool>>,
    downloaded: AtomicU64,
}

impl Writer<'_> {
    /// Each file's blobs, found in the index, with their offsets in the
    /// file; files with a blob the index lacks are not usable.
    fn locate(&self) -> (Vec<FilePlan>, Vec<bool>) {
        let index = self.repo.index();
        let mut usable = vec![true; self.files.len()];
        let mut plans = Vec::new();
        for (i, f) in self.files.iter().enumerate() {
            let mut offset = 0u64;
            let mut planned = Vec::new();
            for id in &f.node.content {
                let Some(loc) = index.get(BlobType::Data, id) else {
                    (self.fail)(format!(
                        "{}: data blob {} is missing from the repository",
                        f.path.display(),
                        id.short()
                    ));
                    usable[i] = false;
                    break;
                };
                planned.push((loc, *id, offset));
                offset += loc.raw_length as u64;
            }
            if !usable[i] {
                continue;
            }
            if offset != f.node.size {
                (self.fail)(format!(
                    "{}: content adds up to {offset} bytes, the snapshot says {}",
                    f.path.display(),
                    f.node.size
                ));
            }
            plans.push((i, offset, planned));
        }
        (plans, usable)
    }

    /// In parallel, creates each file at full size under its partial name
    /// (regions never written stay holes). Empty files finish here; a file
    /// of one blob is created by the thread that writes the blob. Returns
    /// the blobs needed from each pack, with every place each goes.
    fn prepare(
        &self,
        plans: Vec<FilePlan>,
        mut usable: Vec<bool>,
    ) -> (BTreeMap<u32, PackPlan>, u64, Vec<bool>) {
        let created: Vec<std::result::Result<(), String>> = plans
            .par_iter()
            .map(|(i, size, planned)| {
                let f = &self.files[*i];
                if planned.len() == 1 {
                    return Ok(());
                }
                let partial = partial_path(f.path);
                open_partial(&partial, true, &self.inodes[*i])
                    .and_then(|file| {
                        file.set_len(*size)?;
                        if planned.is_empty() {
                            sys::restore_file_metadata(&file, f.node, self.trust)?;
                            drop(file);
                            if !f.defer {
                                place(&partial, f.path)?;
                            }
                            self.finished[*i].store(true, Ordering::Relaxed);
                            self.progress.item(f.path);
                        }
                        Ok(())
                    })
                    .map_err(|e| format!("{}: {e}", f.path.display()))
            })
            .collect();
        let mut by_pack: BTreeMap<u32, PackPlan> = BTreeMap::new();
        let mut total_bytes = 0u64;
        for ((i, size, planned), outcome) in plans.into_iter().zip(created) {
            if let Err(msg) = outcome {
                (self.fail)(msg);
                usable[i] = false;
                continue;
            }
            total_bytes += size;
            self.remaining[i].store(planned.len(), Ordering::Relaxed);
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
        (by_pack, total_bytes, usable)
    }

    fn mark_broken(&self, targets: &[Target], why: &str) {
        let mut b = self.broken.lock().unwrap();
        for t in targets {
            if !b[t.file] {
                b[t.file] = true;
                (self.fail)(format!("{}: {why}", self.files[t.file].path.display()));
            }
        }
    }

    /// One placement of a blob is done. The thread that completes a file
    /// sets its metadata through the open file and moves it into place.
    fn done(&self, t: &Target, handle: Option<std::fs::File>) {
        if self.remaining[t.file].fetch_sub(1, Ordering::AcqRel) != 1
            || self.broken.lock().unwrap()[t.file]
        {
            return;
        }
        let f = &self.files[t.file];
        let partial = partial_path(f.path);
        let single = self.single[t.file];
        let r = (|| {
            let file = match handle {
                Some(h) => h,
                None => open_partial(&partial, single, &self.inodes[t.file])?,
            };
            if single {
                // Its only blob may have been all zeros: a hole to the end.
                file.set_len(f.node.size)?;
            }
            sys::restore_file_metadata(&file, f.node, self.trust)?;
            drop(file);
            if f.defer {
                return Ok(());
            }
            place(&partial, f.path)
        })();
        match r {
            Ok(()) => {
                self.finished[t.file].store(true, Ordering::Relaxed);
                self.progress.item(f.path);
            }
            Err(e) => {
                self.broken.lock().unwrap()[t.file] = true;
                (self.fail)(format!("{}: {e}", f.path.display()));
            }
        }
    }

    /// Fetches each pack once, in runs of the blobs needed, on the
    /// transfer pool (downloads wait on the network more than on the CPU:
    /// blobs are decoded as they arrive), and writes every blob to each
    /// place it goes.
    fn fetch(&self, by_pack: BTreeMap<u32, PackPlan>) -> Result<()> {
        let packs: Vec<_> = by_pack.into_iter().collect();
        let pool = self.repo.transfer_pool()?;
        pool.install(|| {
            // Each worker reuses its blob buffers for every blob it decodes.
            packs
                .par_iter()
                .for_each_init(Buffers::default, |buffers, (pack, blobs)| {
                    self.fetch_pack(*pack, blobs, buffers)
                })
        });
        Ok(())
    }

    fn fetch_pack(&self, pack: u32, blobs: &PackPlan, buffers: &mut Buffers) {
        let pack_id = self.repo.index().pack_id(pack);
        let items: Vec<(&(u32, Id), &BlobPlan)> = blobs.iter().collect();
        let slot = |&((offset, id), plan): &(&(u32, Id), &BlobPlan)| Slot {
            ty: BlobType::Data,
            id: *id,
            offset: *offset,
            length: plan.length,
            raw_length: plan.raw_length,
        };
        let fetcher = self.repo.fetcher();
        let downloaded =
            fetcher.ranges(
                &pack_id,
                &items,
                slot,
                buffers,
                |(_, plan), blob| match blob {
                    Ok(b) => {
                        self.place_blob(b.plain, &plan.targets);
                        self.progress
                            .bytes(b.plain.len() as u64 * plan.targets.len() as u64);
                    }
                    Err(e @ Error::Corrupt { .. }) => self.mark_broken(
                        &plan.targets,
                        &format!("damaged data in pack {}: {e}", pack_id.short()),
                    ),
                    Err(e) => self.mark_broken(&plan.targets, &e.to_string()),
                },
            );
        self.downloaded.fetch_add(downloaded, Ordering::Relaxed);
    }

    /// Writes one decoded blob to each place it goes; all zeros stay holes.
    fn place_blob(&self, plain: &[u8], targets: &[Target]) {
        let zero = plain.iter().all(|&b| b == 0);
        for t in targets {
            let mut handle = None;
            if !zero {
                let partial = partial_path(self.files[t.file].path);
                // A single-blob file is created here, in the same open.
                let r = open_partial(&partial, self.single[t.file], &self.inodes[t.file]).and_then(
                    |f| {
                        write_sparse(&f, plain, t.offset)?;
                        Ok(f)
                    },
                );
                match r {
                    Ok(f) => handle = Some(f),
                    Err(e) => self.mark_broken(std::slice::from_ref(t), &e.to_string()),
                }
            }
            self.done(t, handle);
        }
    }
}

/// Where a file's content is assembled before it gets its name: hidden,
/// beside the target (so the rename stays on one file system), and named by
/// a hash so that long names stay within the file system's limit.
pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(sys::name_bytes).unwrap_or_default();
    let tag = &blake3::hash(name).to_hex()[..16];
    path.with_file_name(format!(".snap-{tag}.partial"))
}

/// Opens a file's partial name for writing, never through a link and never
/// into another file's inode: a partial name planted beforehand as a link
/// to a file elsewhere once received the restored content and metadata.
/// `create` makes it afresh (whatever had the name is removed, then the
/// file is created exclusively, readable by its owner only until its
/// metadata is set); later opens must find the inode created.
fn open_partial(partial: &Path, create: bool, inode: &AtomicU64) -> std::io::Result<std::fs::File> {
    if create {
        match std::fs::remove_file(partial) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    let file = sys::open_no_follow(create).open(partial)?;
    let id = sys::file_id(&file)?;
    if create {
        inode.store(id.inode, Ordering::Relaxed);
    } else if id.inode != inode.load(Ordering::Relaxed) || id.links != 1 {
        return Err(std::io::Error::other(
            "its partial file was replaced by something else while it was written",
        ));
    }
    Ok(file)
}

/// Gives a complete file its name. rename(2) replaces a file or link in
/// the way and refuses a directory, which is what restore wants.
fn place(partial: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(partial, path).map_err(|e| {
        if sys::directory_in_the_way(&e) {
            std::io::Error::other("a directory is in the way")
        } else {
            e
        }
    })
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
                sys::write_at(file, &data[start..pos], offset + start as u64)?;
                run_start = None;
            }
            _ => {}
        }
        pos = end;
    }
    if let Some(start) = run_start {
        sys::write_at(file, &data[start..], offset + start as u64)?;
    }
    Ok(())
}
