//! The packer stage: takes plaintext blobs, drops the ones the repository
//! already has, encodes the rest, fills packs and hands full packs to
//! uploader threads. Index files are written as packs land, so an
//! interrupted backup leaves its uploaded packs usable by the next one.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::backend::Backend;
use crate::blob::{BlobCodec, BlobType};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{Index, IndexFile, IndexPack};
use crate::pack::{FinishedPack, PackBuilder, pack_path};

/// Packs per checkpoint index file: an interrupted backup uploads again at
/// most this many packs (64 MiB by default).
const CHECKPOINT_PACKS: usize = 4;

#[derive(Clone, Debug)]
pub struct PackerOptions {
    pub pack_size: usize,
    /// Parallel uploads; 0 means as many as the backend's connections.
    pub uploaders: usize,
    /// The lock of the backup this packer stores for, named in every index
    /// file it writes ([`IndexFile::writer`]).
    pub writer: Option<Id>,
}

impl Default for PackerOptions {
    fn default() -> Self {
        PackerOptions {
            pack_size: crate::pack::DEFAULT_PACK_SIZE,
            uploaders: 0,
            writer: None,
        }
    }
}

/// What a packer stored, once finished.
#[derive(Clone, Debug, Default)]
pub struct PackerStats {
    pub blobs_added: u64,
    /// Bytes of packs and index files written.
    pub bytes_added: u64,
    /// Bytes of packs alone. Only totals are kept: the blob lists of a
    /// large first backup went to index files and need not stay in memory.
    pub pack_bytes: u64,
    /// The packs this packer wrote: 32 bytes each, a few MB for a terabyte.
    pub packs: Vec<Id>,
    /// Packs of the known index that hold blobs this packer did not store
    /// because they were there already: what a backup relies on.
    pub reused_packs: HashSet<Id>,
}

struct Shared {
    backend: Arc<dyn Backend>,
    codec: BlobCodec,
    /// This device's cache: what the packer writes that a later run reads
    /// (index files, trees) goes there too, so the next backup on this
    /// device downloads none of it.
    cache: Option<Cache>,
    bytes_added: AtomicU64,
    /// Packs uploaded but not yet in a written index file.
    unindexed: Mutex<Vec<IndexPack>>,
    pack_bytes: AtomicU64,
    packs: Mutex<Vec<Id>>,
    writer: Option<Id>,
    error: Mutex<Option<Error>>,
}

impl Shared {
    fn fail(&self, e: Error) {
        self.error.lock().unwrap().get_or_insert(e);
    }

    fn upload(&self, pack: FinishedPack) -> Result<()> {
        let size = pack.size as u64;
        self.backend.write_parts(&pack_path(&pack.id), pack.parts)?;
        self.bytes_added.fetch_add(size, Ordering::Relaxed);
        self.pack_bytes.fetch_add(size, Ordering::Relaxed);
        self.packs.lock().unwrap().push(pack.id);
        let entry = IndexPack {
            id: pack.id,
            size,
            blobs: pack.blobs,
        };
        let batch = {
            let mut u = self.unindexed.lock().unwrap();
            u.push(entry);
            if u.len() >= CHECKPOINT_PACKS {
                std::mem::take(&mut *u)
            } else {
                Vec::new()
            }
        };
        if !batch.is_empty() {
            self.write_index(batch)?;
        }
        Ok(())
    }

    fn write_index(&self, packs: Vec<IndexPack>) -> Result<()> {
        let file = IndexFile {
            supersedes: Vec::new(),
            packs,
            writer: self.writer,
        };
        // A write-only device's cache is its record of trees: its index
        // files are read from storage like anyone's.
        let cache = self.cache.as_ref().filter(|_| self.codec.local().is_none());
        let (_, len) = crate::repo::write_index(&*self.backend, &self.codec.sealer, cache, &file)?;
        self.bytes_added.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }
}

pub struct Packer<'a> {
    known: &'a Index,
    shared: Arc<Shared>,
    options: PackerOptions,
    pending: Mutex<HashSet<(BlobType, Id)>>,
    reused: Mutex<HashSet<u32>>,
    builders: Mutex<(PackBuilder, PackBuilder)>,
    blobs_added: AtomicU64,
    tx: Option<Sender<FinishedPack>>,
    uploaders: Vec<JoinHandle<()>>,
}

impl<'a> Packer<'a> {
    /// `known` is the index of blobs that need not be stored again.
    pub fn new(
        backend: Arc<dyn Backend>,
        codec: BlobCodec,
        known: &'a Index,
        cache: Option<Cache>,
        options: PackerOptions,
    ) -> Packer<'a> {
        let shared = Arc::new(Shared {
            backend,
            codec,
            cache,
            bytes_added: AtomicU64::new(0),
            unindexed: Mutex::new(Vec::new()),
            pack_bytes: AtomicU64::new(0),
            packs: Mutex::new(Vec::new()),
            writer: options.writer,
            error: Mutex::new(None),
        });
        let n = match options.uploaders {
            0 => shared.backend.connections().max(1),
            n => n,
        };
        // A finished pack is handed over only when an uploader is free: the
        // producer waits otherwise, which bounds memory to one pack per
        // uploader plus the ones being filled, whatever the backup's size.
        let (tx, rx): (Sender<FinishedPack>, Receiver<FinishedPack>) = bounded(0);
        let uploaders = (0..n)
            .map(|_| {
                let rx = rx.clone();
                let shared = shared.clone();
                std::thread::spawn(move || {
                    for pack in rx {
                        if shared.error.lock().unwrap().is_some() {
                            continue;
                        }
                        if let Err(e) = shared.upload(pack) {
                            shared.fail(e);
                        }
                    }
                })
            })
            .collect();
        Packer {
            known,
            shared,
            options,
            pending: Mutex::new(HashSet::new()),
            reused: Mutex::new(HashSet::new()),
            builders: Mutex::new((PackBuilder::default(), PackBuilder::default())),
            blobs_added: AtomicU64::new(0),
            tx: Some(tx),
            uploaders,
        }
    }

    /// Whether the repository has, or this packer will store, the blob.
    pub fn has(&self, ty: BlobType, id: &Id) -> bool {
        self.reuses(ty, id) || self.pending.lock().unwrap().contains(&(ty, *id))
    }

    /// Whether the known index has the blob; if so, its pack is recorded as
    /// one this packer's output relies on.
    fn reuses(&self, ty: BlobType, id: &Id) -> bool {
        match self.known.get(ty, id) {
            Some(loc) => {
                self.reused.lock().unwrap().insert(loc.pack);
                true
            }
            None => false,
        }
    }

    /// Stores `plaintext` unless it is already stored; returns its id and
    /// whether it was new. Safe to call from many threads.
    pub fn add(&self, ty: BlobType, plaintext: &[u8]) -> Result<(Id, bool)> {
        let id = self.shared.codec.id(plaintext);
        Ok((id, self.add_with_id(ty, id, plaintext)?))
    }

    pub fn add_with_id(&self, ty: BlobType, id: Id, plaintext: &[u8]) -> Result<bool> {
        // A write-only device keeps its own copy of every tree of its
        // backup, new or not: it cannot read one from storage next time.
        let local = (ty == BlobType::Tree)
            .then(|| self.shared.codec.local())
            .flatten()
            .zip(self.shared.cache.as_ref());
        if let Some((codec, cache)) = &local {
            cache.put_blob(&id, &codec.encode(ty, &id, plaintext));
        }
        if self.reuses(ty, &id) || !self.pending.lock().unwrap().insert((ty, id)) {
            return Ok(false);
        }
        if let Some(e) = self.shared.error.lock().unwrap().take() {
            return Err(e);
        }
        let stored = self.shared.codec.encode(ty, &id, plaintext);
        if ty == BlobType::Tree
            && local.is_none()
            && let Some(c) = &self.shared.cache
        {
            c.put_blob(&id, &stored);
        }
        self.blobs_added.fetch_add(1, Ordering::Relaxed);
        let full = {
            let mut b = self.builders.lock().unwrap();
            let builder = if ty == BlobType::Data {
                &mut b.0
            } else {
                &mut b.1
            };
            builder.add(ty, id, plaintext.len(), stored);
            builder
                .is_full(self.options.pack_size)
                .then(|| std::mem::take(builder))
        };
        if let Some(builder) = full {
            self.send(builder)?;
        }
        Ok(true)
    }

    fn send(&self, builder: PackBuilder) -> Result<()> {
        self.send_pack(builder.finish(&self.shared.codec.sealer))
    }

    fn send_pack(&self, pack: FinishedPack) -> Result<()> {
        self.tx
            .as_ref()
            .expect("packer used after finish")
            .send(pack)
            .map_err(|_| Error::Other("uploaders stopped".into()))
    }

    /// Flushes partial packs, waits for every upload and writes the final
    /// index file. Nothing this packer stored is referenced before this
    /// returns successfully.
    ///
    /// The partial data and tree packs go out as one pack, padded: the last
    /// pack of a backup often holds a single small blob, whose exact length
    /// its size would otherwise show.
    pub fn finish(mut self) -> Result<PackerStats> {
        let (mut data, tree) = std::mem::take(&mut *self.builders.lock().unwrap());
        data.absorb(tree);
        if !data.is_empty() {
            self.send_pack(data.finish_padded(&self.shared.codec.sealer))?;
        }
        drop(self.tx.take());
        for h in self.uploaders.drain(..) {
            h.join()
                .map_err(|_| Error::Other("an upload thread panicked".into()))?;
        }
        if let Some(e) = self.shared.error.lock().unwrap().take() {
            return Err(e);
        }
        let rest = std::mem::take(&mut *self.shared.unindexed.lock().unwrap());
        if !rest.is_empty() {
            self.shared.write_index(rest)?;
        }
        Ok(PackerStats {
            blobs_added: self.blobs_added.load(Ordering::Relaxed),
            bytes_added: self.shared.bytes_added.load(Ordering::Relaxed),
            pack_bytes: self.shared.pack_bytes.load(Ordering::Relaxed),
            packs: std::mem::take(&mut *self.shared.packs.lock().unwrap()),
            reused_packs: self
                .reused
                .lock()
                .unwrap()
                .iter()
                .map(|&n| self.known.pack_id(n))
                .collect(),
        })
    }
}

impl Drop for Packer<'_> {
    fn drop(&mut self) {
        drop(self.tx.take());
        for h in self.uploaders.drain(..) {
            let _ = h.join();
        }
    }
}
