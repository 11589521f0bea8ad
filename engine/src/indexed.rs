//! A repository with its index loaded. Only this value reads blobs, loads
//! trees and packs new data, so a command cannot forget to load the index
//! or read through a stale one: [`Repository::indexed`] is the one way to
//! get it, and the plain [`Repository`] (config, keys, snapshots, locks)
//! serves the commands that need no blobs.

use std::ops::Deref;

use rayon::prelude::*;

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::fetch::{Buffers, Slot, runs};
use crate::id::Id;
use crate::index::Index;
use crate::packer::{Packer, PackerOptions};
use crate::repo::Repository;
use crate::tree::Tree;

pub struct Indexed<'r> {
    pub(crate) repo: &'r Repository,
    pub(crate) index: Index,
}

impl Deref for Indexed<'_> {
    type Target = Repository;

    fn deref(&self) -> &Repository {
        self.repo
    }
}

impl<'r> Indexed<'r> {
    /// The repository, for as long as it lives: a fresh index can replace
    /// this one.
    pub fn repository(&self) -> &'r Repository {
        self.repo
    }

    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    /// A packer that deduplicates against this index.
    pub(crate) fn packer(&self, options: PackerOptions) -> Packer<'_> {
        self.repo.packer_over(&self.index, options)
    }

    /// A tree's plaintext from this device's cache, verified; `None` when
    /// the cache lacks it or holds bytes that fail (then it is fetched).
    fn cached_tree(&self, id: &Id) -> Option<Vec<u8>> {
        let stored = self.repo.tree_cache()?.get_blob(id)?;
        let codec = self.repo.codec();
        match codec.local() {
            // A write-only device's record: its trees of this backup are in
            // no index yet.
            Some(local) => local.decode_unindexed(BlobType::Tree, id, &stored).ok(),
            None => {
                let loc = self.index.get(BlobType::Tree, id)?;
                codec
                    .decode(BlobType::Tree, id, &stored, loc.raw_length)
                    .ok()
            }
        }
    }

    /// Reads, opens and verifies one blob.
    pub(crate) fn read_blob(&self, ty: BlobType, id: &Id) -> Result<Vec<u8>> {
        let cache = self.repo.tree_cache().filter(|_| ty == BlobType::Tree);
        if cache.is_some()
            && let Some(plain) = self.cached_tree(id)
        {
            return Ok(plain);
        }
        self.repo
            .require_full("read trees or files it did not back up itself")?;
        let loc = self.index.get(ty, id).ok_or_else(|| Error::Missing {
            what: ty.name(),
            id: id.to_hex(),
        })?;
        let mut plain = Err(Error::Other("not fetched".into()));
        let slot = Slot::located(*id, &loc);
        let pack = self.index.pack_id(loc.pack);
        self.fetcher().ranges(
            &pack,
            &[slot],
            |s| *s,
            &mut Buffers::default(),
            |_, b| {
                plain = b.map(|b| {
                    if let Some(c) = cache {
                        c.put_blob(id, b.stored);
                    }
                    b.plain.to_vec()
                });
            },
        );
        plain
    }

    pub(crate) fn load_tree(&self, id: &Id) -> Result<Tree> {
        Tree::decode(&self.read_blob(BlobType::Tree, id)?)
    }

    /// Loads many trees at once, in the order given (repeats allowed).
    /// Cached trees are decoded in parallel; the others are fetched pack by
    /// pack, in coalesced ranges, several at a time, and cached. A walk that
    /// loads the directories of one level together so makes a few requests
    /// per level on a device with an empty cache, where loading them one by
    /// one made a round trip per directory.
    pub(crate) fn load_trees(&self, ids: &[Id]) -> Result<Vec<Result<Tree>>> {
        let pool = self.transfer_pool()?;
        let cache = self.repo.tree_cache();
        let cached: Vec<Option<Result<Tree>>> = pool.install(|| {
            ids.par_iter()
                .map(|id| Some(Tree::decode(&self.cached_tree(id)?)))
                .collect()
        });
        // What the cache lacks, once per id, grouped by pack in offset order.
        let mut wanted: std::collections::BTreeMap<Id, Vec<usize>> = Default::default();
        for (i, c) in cached.iter().enumerate() {
            if c.is_none() {
                wanted.entry(ids[i]).or_default().push(i);
            }
        }
        let mut by_pack: std::collections::BTreeMap<u32, Vec<Slot>> = Default::default();
        let mut unindexed = Vec::new();
        for id in wanted.keys() {
            match self.index.get(BlobType::Tree, id) {
                Some(loc) => by_pack
                    .entry(loc.pack)
                    .or_default()
                    .push(Slot::located(*id, &loc)),
                None => unindexed.push(*id),
            }
        }
        // One range request per run, all runs of all packs in parallel.
        let runs: Vec<(Id, Vec<Slot>)> = by_pack
            .into_iter()
            .flat_map(|(pack, mut slots)| {
                slots.sort_unstable_by_key(|s| s.offset);
                let pack = self.index.pack_id(pack);
                runs(slots, Slot::span).into_iter().map(move |r| (pack, r))
            })
            .collect();
        let fetcher = self.fetcher();
        let fetched: Vec<(Id, Result<Vec<u8>>)> = pool.install(|| {
            runs.par_iter()
                .flat_map_iter(|(pack, slots)| {
                    let mut out = Vec::with_capacity(slots.len());
                    let mut buffers = Buffers::default();
                    fetcher.ranges(
                        pack,
                        slots,
                        |s| *s,
                        &mut buffers,
                        |s, b| {
                            let plain = match b {
                                Ok(b) => {
                                    if let Some(c) = cache {
                                        c.put_blob(&s.id, b.stored);
                                    }
                                    Ok(b.plain.to_vec())
                                }
                                // A range shared with other trees failed: alone,
                                // each gets another chance and its own error.
                                Err(e)
                                    if slots.len() > 1 && !matches!(e, Error::Corrupt { .. }) =>
                                {
                                    self.read_blob(BlobType::Tree, &s.id)
                                }
                                Err(e) => Err(e),
                            };
                            out.push((s.id, plain));
                        },
                    );
                    out
                })
                .collect()
        });
        let mut out: Vec<Option<Result<Tree>>> = cached;
        for (id, plain) in fetched {
            let at = &wanted[&id];
            match plain {
                Ok(p) => at.iter().for_each(|&i| out[i] = Some(Tree::decode(&p))),
                Err(e) => {
                    out[at[0]] = Some(Err(e));
                    // Errors do not clone; a repeat of a broken tree, rare,
                    // is loaded again for its own.
                    at[1..]
                        .iter()
                        .for_each(|&i| out[i] = Some(self.load_tree(&id)));
                }
            }
        }
        for id in unindexed {
            for &i in &wanted[&id] {
                out[i] = Some(self.load_tree(&id));
            }
        }
        Ok(out
            .into_iter()
            .map(|t| t.expect("every id was loaded"))
            .collect())
    }
}
