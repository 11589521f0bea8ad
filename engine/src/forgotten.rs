//! Forget records: the authenticated word of `forget` and `prune` that
//! they removed snapshots. Storage can hide any object, and a prune that
//! cannot see a snapshot deletes its data; a device that remembers the
//! snapshots it has seen ([`crate::known`]) tells a snapshot removed by
//! snap, which has a record, from one that storage hid, which has none
//! (format-spec.md section 10).

use serde::{Deserialize, Serialize};

use crate::codec::{self, Kind};
use crate::error::Result;
use crate::id::Id;
use crate::repo::Repository;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetRecord {
    pub time_ns: i64,
    pub host: String,
    /// The snapshots removed, sorted.
    pub snapshots: Vec<Id>,
}

/// Writes the record; called before any of its snapshots is deleted.
pub fn write(repo: &Repository, snapshots: &[Id]) -> Result<Id> {
    let mut ids = snapshots.to_vec();
    ids.sort();
    let record = ForgetRecord {
        time_ns: crate::repo::now_ns(),
        host: crate::sys::hostname(),
        snapshots: ids,
    };
    let bytes = codec::seal(Kind::Forget, repo.sealer(), &record);
    crate::object::Object::Forgotten.write(&**repo.backend(), bytes)
}

/// Every snapshot id that a record on storage says was removed.
pub fn all(repo: &Repository) -> Result<std::collections::HashSet<Id>> {
    let mut out = std::collections::HashSet::new();
    for (_, bytes) in repo.read_all(crate::object::Object::Forgotten)? {
        let record = codec::open::<ForgetRecord, { codec::MAX_SMALL_OBJECT }>(
            Kind::Forget,
            repo.sealer(),
            &bytes,
        )?;
        out.extend(record.snapshots);
    }
    Ok(out)
}

/// Before deleting anything, a prune checks that every snapshot this
/// device has seen is still listed or was removed with a record. A missing
/// one means storage hid it (or lost it): its data must not be deleted as
/// unused. Returns the ids of the ones missing. Forgotten ones are dropped
/// from the device's memory.
pub(crate) fn hidden_snapshots(repo: &Repository, listed: &[Id]) -> Result<Vec<Id>> {
    let Some(state) = repo.device_state() else {
        return Ok(Vec::new());
    };
    let Some(known) = state.load()? else {
        return Ok(Vec::new());
    };
    let listed: std::collections::HashSet<Id> = listed.iter().copied().collect();
    let gone: Vec<Id> = known
        .snapshots_of(&repo.config().id)
        .iter()
        .filter(|id| !listed.contains(id))
        .copied()
        .collect();
    if gone.is_empty() {
        return Ok(Vec::new());
    }
    let forgotten = all(repo)?;
    let (recorded, hidden): (Vec<Id>, Vec<Id>) =
        gone.into_iter().partition(|id| forgotten.contains(id));
    state.update_snapshots(repo.config().id, &[], &recorded)?;
    Ok(hidden)
}
