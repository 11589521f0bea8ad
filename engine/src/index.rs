//! Where every blob lives. The on-storage index files (format-spec.md
//! section 7) and the compact in-memory table built from their union.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::blob::BlobType;
use crate::codec;
use crate::id::Id;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexBlob {
    pub ty: BlobType,
    pub id: Id,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPack {
    pub id: Id,
    pub size: u64,
    pub blobs: Vec<IndexBlob>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    pub supersedes: Vec<Id>,
    pub packs: Vec<IndexPack>,
    /// The lock of the backup that wrote this file while it ran (format
    /// version 2). While that lock is live, prune takes none of the file's
    /// packs out of the index: they hold the backup's data, which no
    /// snapshot names yet. Without this, a prune beside a running backup
    /// rewrote the backup's checkpoint index without its blobs, and the
    /// snapshot the backup then wrote referred to unindexed packs.
    pub writer: Option<Id>,
}

/// An index body of format version 1, before files named their writer.
#[derive(Deserialize)]
struct IndexFileV1 {
    supersedes: Vec<Id>,
    packs: Vec<IndexPack>,
}

/// Packs per index file that prune and repair write: keeps each file well
/// below the index size limit.
pub(crate) const PACKS_PER_INDEX: usize = 4096;

/// The files that no other file supersedes: what readers use as the index.
/// A file listed in another's `supersedes` is on its way out (a prune
/// writes the replacement first, then deletes it), so a pack that only it
/// names is not indexed.
pub fn current(files: Vec<(Id, IndexFile)>) -> Vec<(Id, IndexFile)> {
    let superseded: HashSet<Id> = files
        .iter()
        .flat_map(|(_, f)| f.supersedes.iter().copied())
        .collect();
    files
        .into_iter()
        .filter(|(id, _)| !superseded.contains(id))
        .collect()
}

impl IndexFile {
    /// Opens an index envelope of either format version.
    pub fn open(sealer: &codec::Sealer, bytes: &[u8]) -> crate::Result<IndexFile> {
        const LIMIT: usize = codec::MAX_INDEX_BODY;
        let (version, body) =
            codec::open_versioned(codec::Kind::Index, sealer, bytes, codec::MAX_INDEX_BODY)?;
        if version == 1 {
            let v1: IndexFileV1 = codec::decode::<_, LIMIT>("index file", &body)?;
            return Ok(IndexFile {
                supersedes: v1.supersedes,
                packs: v1.packs,
                writer: None,
            });
        }
        codec::decode::<IndexFile, LIMIT>("index file", &body)
    }

    /// Checks the lengths that readers later allocate by, so that a hostile
    /// index cannot make a restore request gigabytes for one blob
    /// (format-spec.md section 12).
    pub fn validate(&self) -> std::result::Result<(), String> {
        for p in &self.packs {
            if p.size > codec::MAX_PACK as u64 {
                return Err(format!("pack {} claims {} bytes", p.id.short(), p.size));
            }
            for b in &p.blobs {
                let end = b.offset as u64 + b.length as u64;
                if b.raw_length as usize > codec::MAX_BLOB
                    || b.length as usize > codec::MAX_STORED_BLOB
                    || end > p.size
                {
                    return Err(format!(
                        "{} {} claims {} bytes ({} stored) at {}..{end} of a {}-byte pack",
                        b.ty.name(),
                        b.id.short(),
                        b.raw_length,
                        b.length,
                        b.offset,
                        p.size
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Location of one blob, as a lookup returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: u32,
    pub ty: BlobType,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

/// One blob in a sorted table: 48 bytes with no padding, because the
/// table is what a repository's size costs in memory.
#[derive(Clone, Copy)]
struct Entry {
    id: Id,
    pack: u32,
    offset: u32,
    length: u32,
    raw_length: u32,
}

impl Entry {
    fn location(&self, ty: BlobType) -> BlobLocation {
        BlobLocation {
            pack: self.pack,
            ty,
            offset: self.offset,
            length: self.length,
            raw_length: self.raw_length,
        }
    }
}

/// The blobs of one type, sorted by id, with a radix table over the ids'
/// leading bits. Ids are keyed hashes, so they spread evenly: each radix
/// slot holds one or two entries and a lookup touches about as much memory
/// as a hash table would, at less than half a hash table's size (no empty
/// slots, no growth slack, no per-entry control bytes).
#[derive(Default)]
struct Table {
    entries: Vec<Entry>,
    /// `slots[k]..slots[k + 1]` are the entries whose ids start with the
    /// `bits`-bit prefix `k`.
    slots: Vec<u32>,
    bits: u32,
}

impl Table {
    fn build(mut entries: Vec<Entry>) -> Table {
        // A blob stored in several packs keeps the location in the pack
        // added first (the lowest number), so callers choose by order.
        entries.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.pack.cmp(&b.pack)));
        entries.dedup_by_key(|e| e.id);
        if entries.capacity() - entries.len() > entries.len() / 8 {
            entries.shrink_to_fit();
        }
        // About one entry per slot; 2^24 slots at most (64 MiB) since
        // beyond that a few more binary-search steps cost nothing.
        let bits = (usize::BITS - entries.len().leading_zeros())
            .saturating_sub(1)
            .min(24);
        let mut slots = Vec::with_capacity((1 << bits) + 1);
        let mut i = 0usize;
        for k in 0..=(1u64 << bits) {
            while i < entries.len() && (Self::slot(bits, &entries[i].id) as u64) < k {
                i += 1;
            }
            slots.push(i as u32);
        }
        Table {
            entries,
            slots,
            bits,
        }
    }

    fn slot(bits: u32, id: &Id) -> usize {
        if bits == 0 {
            0
        } else {
            (u32::from_be_bytes([id.0[0], id.0[1], id.0[2], id.0[3]]) >> (32 - bits)) as usize
        }
    }

    fn position(&self, id: &Id) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let k = Self::slot(self.bits, id);
        let (lo, hi) = (self.slots[k] as usize, self.slots[k + 1] as usize);
        self.entries[lo..hi]
            .binary_search_by(|e| e.id.cmp(id))
            .ok()
            .map(|i| lo + i)
    }
}

const TYPES: [BlobType; 2] = [BlobType::Data, BlobType::Tree];

fn type_slot(ty: BlobType) -> usize {
    match ty {
        BlobType::Data => 0,
        BlobType::Tree => 1,
    }
}

/// Collects packs, then sorts them once into an [`Index`]. Building and
/// looking up are separate steps because a sorted table takes no inserts.
#[derive(Default)]
pub struct IndexBuilder {
    packs: Vec<(Id, u64)>,
    pack_numbers: HashMap<Id, u32>,
    entries: [Vec<Entry>; 2],
}

impl IndexBuilder {
    /// Adds a pack's blobs; a pack added twice counts once.
    pub fn add_pack(&mut self, pack: &IndexPack) {
        let next = self.packs.len() as u32;
        let number = *self.pack_numbers.entry(pack.id).or_insert(next);
        if number != next {
            return;
        }
        self.packs.push((pack.id, pack.size));
        for b in &pack.blobs {
            self.entries[type_slot(b.ty)].push(Entry {
                id: b.id,
                pack: number,
                offset: b.offset,
                length: b.length,
                raw_length: b.raw_length,
            });
        }
    }

    pub(crate) fn add_file(&mut self, file: &IndexFile) {
        for p in &file.packs {
            self.add_pack(p);
        }
    }

    pub fn build(self) -> Index {
        let [data, tree] = self.entries;
        Index {
            packs: self.packs,
            pack_numbers: self.pack_numbers,
            tables: [Table::build(data), Table::build(tree)],
        }
    }
}

/// Where every blob lives: the union of index files, sorted. Memory is
/// about 52 bytes per blob (format-spec.md section 7 describes the files
/// it is built from).
#[derive(Default)]
pub struct Index {
    packs: Vec<(Id, u64)>,
    pack_numbers: HashMap<Id, u32>,
    tables: [Table; 2],
}

impl Index {
    pub fn get(&self, ty: BlobType, id: &Id) -> Option<BlobLocation> {
        let table = &self.tables[type_slot(ty)];
        table.position(id).map(|i| table.entries[i].location(ty))
    }

    pub fn contains(&self, ty: BlobType, id: &Id) -> bool {
        self.tables[type_slot(ty)].position(id).is_some()
    }

    /// Numbers every indexed blob from 0 to `len() - 1`, for sets kept as
    /// bits (see [`BlobSet`]).
    fn position(&self, ty: BlobType, id: &Id) -> Option<usize> {
        let slot = type_slot(ty);
        let before: usize = self.tables[..slot].iter().map(|t| t.entries.len()).sum();
        self.tables[slot].position(id).map(|i| before + i)
    }

    /// Number of distinct blobs.
    pub fn len(&self) -> usize {
        self.tables.iter().map(|t| t.entries.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn pack_id(&self, number: u32) -> Id {
        self.packs[number as usize].0
    }

    pub(crate) fn pack_number(&self, id: &Id) -> Option<u32> {
        self.pack_numbers.get(id).copied()
    }

    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }

    pub fn packs(&self) -> impl Iterator<Item = (u32, Id, u64)> + '_ {
        self.packs
            .iter()
            .enumerate()
            .map(|(i, (id, size))| (i as u32, *id, *size))
    }

    pub fn blobs(&self) -> impl Iterator<Item = (Id, BlobLocation)> + '_ {
        TYPES.iter().flat_map(move |&ty| {
            self.tables[type_slot(ty)]
                .entries
                .iter()
                .map(move |e| (e.id, e.location(ty)))
        })
    }
}

/// A set of blobs that costs one bit per blob the index knows, so marking
/// everything a repository's snapshots use stays small next to the index
/// itself. Blobs the index lacks (missing, or in trashed packs) are kept
/// in a hash set; there are normally none.
pub(crate) struct BlobSet<'a> {
    index: &'a Index,
    bits: Vec<u64>,
    unindexed: HashSet<(BlobType, Id)>,
}

impl<'a> BlobSet<'a> {
    pub fn new(index: &'a Index) -> BlobSet<'a> {
        BlobSet {
            index,
            bits: vec![0; index.len().div_ceil(64)],
            unindexed: HashSet::new(),
        }
    }

    /// Adds a blob; returns whether it was new.
    pub(crate) fn insert(&mut self, ty: BlobType, id: &Id) -> bool {
        match self.index.position(ty, id) {
            Some(i) => {
                let (word, bit) = (i / 64, 1u64 << (i % 64));
                let new = self.bits[word] & bit == 0;
                self.bits[word] |= bit;
                new
            }
            None => self.unindexed.insert((ty, *id)),
        }
    }

    pub fn contains(&self, ty: BlobType, id: &Id) -> bool {
        match self.index.position(ty, id) {
            Some(i) => self.bits[i / 64] & (1u64 << (i % 64)) != 0,
            None => self.unindexed.contains(&(ty, *id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(ty: BlobType, n: u32, offset: u32) -> IndexBlob {
        IndexBlob {
            ty,
            id: Id::of_bytes(&n.to_le_bytes()),
            offset,
            length: n + 1,
            raw_length: n + 2,
        }
    }

    fn pack(n: u8, blobs: Vec<IndexBlob>) -> IndexPack {
        IndexPack {
            id: Id([n; 32]),
            size: 100,
            blobs,
        }
    }

    #[test]
    fn validate_rejects_lengths_past_the_limits() {
        let file = |size: u64, offset: u32, length: u32, raw_length: u32| IndexFile {
            supersedes: Vec::new(),
            packs: vec![IndexPack {
                id: Id([1; 32]),
                size,
                blobs: vec![IndexBlob {
                    ty: BlobType::Tree,
                    id: Id([2; 32]),
                    offset,
                    length,
                    raw_length,
                }],
            }],
            writer: None,
        };
        let max = codec::MAX_STORED_BLOB as u32;
        assert!(
            file(1 << 30, 0, max, codec::MAX_BLOB as u32)
                .validate()
                .is_ok()
        );
        assert!(file(100, 60, 40, 50).validate().is_ok());
        for bad in [
            file(100, 60, 41, 50),
            file(1 << 30, 0, max + 1, 50),
            file(1 << 30, 0, 50, codec::MAX_BLOB as u32 + 1),
            file((1 << 30) + 1, 0, 50, 50),
            file(u64::MAX, u32::MAX, u32::MAX, 50),
        ] {
            let err = bad.validate().unwrap_err();
            assert!(err.contains("claims"), "{err}");
        }
    }

    #[test]
    fn finds_every_blob_of_every_size_and_no_other() {
        for count in [0u32, 1, 2, 3, 7, 64, 1000, 5000] {
            let mut b = IndexBuilder::default();
            let blobs: Vec<IndexBlob> = (0..count)
                .map(|n| blob(BlobType::Data, n, n * 10))
                .collect();
            for (i, chunk) in blobs.chunks(100).enumerate() {
                b.add_pack(&pack(i as u8, chunk.to_vec()));
            }
            let index = b.build();
            assert_eq!(index.len(), count as usize);
            for (i, x) in blobs.iter().enumerate() {
                let loc = index
                    .get(BlobType::Data, &x.id)
                    .expect("indexed blob found");
                assert_eq!(
                    (loc.pack, loc.offset, loc.length, loc.raw_length),
                    ((i / 100) as u32, x.offset, x.length, x.raw_length)
                );
                assert!(
                    !index.contains(BlobType::Tree, &x.id),
                    "type is part of the key"
                );
            }
            for n in count..count + 50 {
                assert!(!index.contains(BlobType::Data, &Id::of_bytes(&n.to_le_bytes())));
            }
            assert_eq!(index.blobs().count(), count as usize);
        }
    }

    #[test]
    fn a_blob_in_several_packs_is_found_in_the_first_added() {
        let mut b = IndexBuilder::default();
        b.add_pack(&pack(9, vec![blob(BlobType::Tree, 1, 5)]));
        b.add_pack(&pack(3, vec![blob(BlobType::Tree, 1, 7)]));
        b.add_pack(&pack(9, vec![blob(BlobType::Data, 2, 0)]));
        let index = b.build();
        let loc = index
            .get(BlobType::Tree, &Id::of_bytes(&1u32.to_le_bytes()))
            .unwrap();
        assert_eq!((index.pack_id(loc.pack), loc.offset), (Id([9; 32]), 5));
        assert_eq!(index.pack_count(), 2);
        assert!(
            !index.contains(BlobType::Data, &Id::of_bytes(&2u32.to_le_bytes())),
            "a pack added twice counts once"
        );
    }

    #[test]
    fn blob_sets_hold_indexed_and_unindexed_blobs() {
        let mut b = IndexBuilder::default();
        b.add_pack(&pack(
            1,
            (0..300).map(|n| blob(BlobType::Data, n, 0)).collect(),
        ));
        b.add_pack(&pack(
            2,
            (0..3).map(|n| blob(BlobType::Tree, n, 0)).collect(),
        ));
        let index = b.build();
        let mut set = BlobSet::new(&index);
        let id = |n: u32| Id::of_bytes(&n.to_le_bytes());
        for n in (0..300).step_by(7) {
            assert!(set.insert(BlobType::Data, &id(n)));
            assert!(
                !set.insert(BlobType::Data, &id(n)),
                "second insert is not new"
            );
        }
        assert!(set.insert(BlobType::Tree, &id(2)));
        assert!(set.insert(BlobType::Data, &id(1000)), "unindexed blob");
        for n in 0..300 {
            assert_eq!(set.contains(BlobType::Data, &id(n)), n % 7 == 0, "{n}");
        }
        assert!(set.contains(BlobType::Tree, &id(2)));
        assert!(!set.contains(BlobType::Tree, &id(1)));
        assert!(
            !set.contains(BlobType::Tree, &id(7)),
            "type is part of the key"
        );
        assert!(set.contains(BlobType::Data, &id(1000)));
        assert!(!set.contains(BlobType::Data, &id(1001)));
    }
}
