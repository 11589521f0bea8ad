//! Trash records: packs that prune took out of the index but has not yet
//! deleted, with their index entries so that they can be put back if a
//! backup that was running turns out to need them (format-spec.md section
//! 10).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Kind};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::IndexPack;
use crate::repo::Repository;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrashRecord {
    pub packs: Vec<IndexPack>,
}

/// A record as found on storage.
pub struct Trashed {
    pub id: Id,
    /// When it was written, by the store's clock.
    pub modified_ns: i64,
    pub record: TrashRecord,
}

pub fn write(repo: &Repository, record: &TrashRecord) -> Result<Id> {
    let bytes = codec::seal(Kind::Trash, repo.sealer(), record);
    let id = Id::of_bytes(&bytes);
    repo.backend()
        .write(&format!("trash/{id}"), Bytes::from(bytes))?;
    Ok(id)
}

pub fn list(repo: &Repository) -> Result<Vec<Trashed>> {
    let mut out = Vec::new();
    for o in repo.backend().list("trash/")? {
        let Some(id) = o.name.rsplit('/').next().and_then(|n| Id::from_hex(n).ok()) else {
            continue;
        };
        let bytes = repo.backend().read(&o.name)?;
        if Id::of_bytes(&bytes) != id {
            return Err(Error::corrupt(
                format!("trash record {}", id.short()),
                "content does not match its name",
            ));
        }
        let record = codec::open::<TrashRecord, { codec::MAX_INDEX_BODY }>(
            Kind::Trash,
            repo.sealer(),
            &bytes,
        )?;
        out.push(Trashed {
            id,
            modified_ns: o.modified_ns,
            record,
        });
    }
    Ok(out)
}

pub fn remove(repo: &Repository, id: &Id) -> Result<()> {
    repo.backend().delete(&format!("trash/{id}"))
}
