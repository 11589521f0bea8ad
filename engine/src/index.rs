//! Where every blob lives. The on-storage index files (format-spec.md
//! section 7) and the in-memory map built from their union.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::blob::BlobType;
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
}

/// Location of one blob, compact so that millions fit in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: u32,
    pub ty: BlobType,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

/// The union of all index files.
#[derive(Default)]
pub struct Index {
    packs: Vec<(Id, u64)>,
    pack_numbers: HashMap<Id, u32>,
    blobs: HashMap<(BlobType, Id), BlobLocation>,
}

impl Index {
    pub fn add_pack(&mut self, pack: &IndexPack) {
        let next = self.packs.len() as u32;
        let number = *self.pack_numbers.entry(pack.id).or_insert_with(|| next);
        if number == next {
            self.packs.push((pack.id, pack.size));
        }
        for b in &pack.blobs {
            self.blobs.entry((b.ty, b.id)).or_insert(BlobLocation {
                pack: number,
                ty: b.ty,
                offset: b.offset,
                length: b.length,
                raw_length: b.raw_length,
            });
        }
    }

    pub fn add_file(&mut self, file: &IndexFile) {
        for p in &file.packs {
            self.add_pack(p);
        }
    }

    pub fn get(&self, ty: BlobType, id: &Id) -> Option<BlobLocation> {
        self.blobs.get(&(ty, *id)).copied()
    }

    pub fn contains(&self, ty: BlobType, id: &Id) -> bool {
        self.blobs.contains_key(&(ty, *id))
    }

    pub fn pack_id(&self, number: u32) -> Id {
        self.packs[number as usize].0
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
        self.blobs.iter().map(|((_, id), loc)| (*id, *loc))
    }
}
