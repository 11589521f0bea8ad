//! Trash records: packs that prune took out of the index but has not yet
//! deleted, with their index entries so that they can be put back if a
//! backup that was running turns out to need them, and the backup locks
//! whose end they wait for (format-spec.md section 10).

use serde::{Deserialize, Serialize};

use crate::codec::{self, Kind};
use crate::error::Result;
use crate::id::Id;
use crate::index::IndexPack;
use crate::object::Object;
use crate::repo::Repository;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrashRecord {
    pub packs: Vec<IndexPack>,
    /// The backup locks that were live when the packs left the index
    /// (format version 2). Any of them may have read an index that named
    /// the packs, so none of the packs is deleted while one of them is live,
    /// however long that takes.
    pub waits_for: Vec<Id>,
}

/// A trash body of format version 1.
#[derive(Deserialize)]
struct TrashRecordV1 {
    packs: Vec<IndexPack>,
}

/// Whose end a record waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waits {
    /// These backup locks (format version 2).
    Locks(Vec<Id>),
    /// Every backup lock: a version 1 record does not say which.
    AnyBackup,
}

/// A record as found on storage.
pub struct Trashed {
    pub id: Id,
    pub packs: Vec<IndexPack>,
    pub waits: Waits,
}

pub fn write(repo: &Repository, record: &TrashRecord) -> Result<Id> {
    let bytes = codec::seal(Kind::Trash, repo.sealer(), record);
    Object::Trash.write(&**repo.backend(), bytes)
}

/// Ids of the records on storage, sorted: a backup compares them at its
/// start and end to learn whether a prune ran meanwhile.
pub fn ids(repo: &Repository) -> Result<Vec<Id>> {
    repo.object_ids(Object::Trash)
}

pub fn list(repo: &Repository) -> Result<Vec<Trashed>> {
    repo.read_all(Object::Trash)?
        .into_iter()
        .map(|(id, bytes)| {
            let (packs, waits) = open(repo.sealer(), &bytes)?;
            Ok(Trashed { id, packs, waits })
        })
        .collect()
}

/// Opens a trash envelope of either format version.
pub fn open(sealer: &codec::Sealer, bytes: &[u8]) -> Result<(Vec<IndexPack>, Waits)> {
    const LIMIT: usize = codec::MAX_INDEX_BODY;
    let (version, body) = codec::open_versioned(Kind::Trash, sealer, bytes, LIMIT)?;
    if version == 1 {
        let v1: TrashRecordV1 = codec::decode::<_, LIMIT>("trash record", &body)?;
        return Ok((v1.packs, Waits::AnyBackup));
    }
    let r: TrashRecord = codec::decode::<_, LIMIT>("trash record", &body)?;
    Ok((r.packs, Waits::Locks(r.waits_for)))
}

pub fn remove(repo: &Repository, id: &Id) -> Result<()> {
    Object::Trash.delete(&**repo.backend(), id)
}
