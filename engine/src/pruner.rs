//! The one device that deletes data (format-spec.md section 10, "The
//! pruner"). Forgetting snapshots is safe anywhere: it is recorded. Deleting
//! the data only forgotten snapshots used is safe only on a device that
//! would notice a snapshot hidden by storage, which is one that has seen
//! them all. Every device that ran "keep the last N" from the page also
//! deleted data, multiplying that exposure; now the repository names one
//! device for it, and the others only forget.

use serde::{Deserialize, Serialize};

use crate::codec::{self, Kind};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;

/// Where the record lives: one object, replaced when another device takes
/// the role over.
const NAME: &str = "pruner";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunerRecord {
    /// The device's own random id (not its host name, which two devices
    /// may share).
    pub device: Id,
    /// The host name it had, for people to read.
    pub host: String,
    pub time_ns: i64,
}

/// What a prune on this device may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Forget snapshots and delete data: this device is the pruner, or has
    /// no identity to compare (a library caller without device state).
    /// With a record to write first, once the prune is sure to go on
    /// ([`claim`]): a prune that stops changes nothing.
    Delete(Option<PrunerRecord>),
    /// Forget snapshots only: the repository names another device.
    ForgetOnly(PrunerRecord),
}

/// The record, if the repository has one.
pub fn read(repo: &Repository) -> Result<Option<PrunerRecord>> {
    match repo.backend().read(NAME, codec::MAX_SMALL_OBJECT as u64) {
        Ok(bytes) => Ok(Some(codec::open::<
            PrunerRecord,
            { codec::MAX_SMALL_OBJECT },
        >(Kind::Pruner, repo.sealer(), &bytes)?)),
        Err(Error::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Decides this device's role: the pruner to be when the repository names
/// none yet, or when `take_over` asks.
pub(crate) fn role(repo: &Repository, take_over: bool) -> Result<Role> {
    let Some(state) = repo.device_state() else {
        return Ok(Role::Delete(None));
    };
    let me = state.device_id()?;
    match read(repo)? {
        Some(r) if r.device == me => Ok(Role::Delete(None)),
        Some(r) if !take_over => Ok(Role::ForgetOnly(r)),
        _ => Ok(Role::Delete(Some(PrunerRecord {
            device: me,
            host: crate::sys::hostname(),
            time_ns: crate::repo::now_ns(),
        }))),
    }
}

/// Writes the record that names this device.
pub(crate) fn claim(repo: &Repository, record: &PrunerRecord) -> Result<()> {
    let bytes = codec::seal(Kind::Pruner, repo.sealer(), record);
    repo.backend().write(NAME, bytes::Bytes::from(bytes))
}
