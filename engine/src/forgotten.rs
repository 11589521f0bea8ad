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
    repo.require_full("remove snapshots")?;
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

/// Every snapshot id that a record on storage says was removed. A record
/// that does not open (planted, or another repository's, or in a version 3
/// repository sealed with a write-only key's shared key) proves nothing
/// and is passed over: one such record once stopped every command that
/// looked for hidden snapshots, restore with --allow-rollback included.
pub fn all(repo: &Repository) -> Result<std::collections::HashSet<Id>> {
    let mut out = std::collections::HashSet::new();
    for (_, bytes) in repo.read_all(crate::object::Object::Forgotten)? {
        if let Ok(record) = codec::open::<ForgetRecord, { codec::MAX_SMALL_OBJECT }>(
            Kind::Forget,
            repo.sealer(),
            &bytes,
        ) {
            out.extend(record.snapshots);
        }
    }
    Ok(out)
}

/// A snapshot this device saw that is gone from the listing without a
/// forget record: storage hid it, rolled the repository back, or lost it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HiddenSnapshot {
    pub id: Id,
    /// When it was taken; 0 when this device saw it before it remembered
    /// times.
    pub time_ns: i64,
    pub host: String,
    /// Set when the snapshot is another repository's that this device saw
    /// at this location: storage now serves a different repository there.
    pub repository: Option<Id>,
}

impl HiddenSnapshot {
    /// "1a2b3c4d of laptop, taken 2026-11-02 10:00 UTC", for messages.
    pub fn describe(&self) -> String {
        let mut text = self.id.short();
        if self.time_ns != 0 {
            let time = chrono::DateTime::from_timestamp_nanos(self.time_ns);
            text = format!(
                "{text} of {}, taken {}",
                self.host,
                time.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        if let Some(r) = self.repository {
            text.push_str(&format!(
                ", in repository {}, which this location held before (if you made a new \
                 repository here on purpose, `snap init` on this device, or deleting this \
                 device's state file, accepts it)",
                r.short()
            ));
        }
        text
    }
}

/// The hidden snapshots that `latest` would have been instead of `chosen`:
/// newer, and of a host `filter` admits; or of the repository storage
/// swapped out, whatever their time. A restore of `latest` then brings
/// back older data without a word, so it refuses (see
/// [`crate::Error::RolledBack`]).
pub fn newer_than<'a>(
    hidden: &'a [HiddenSnapshot],
    chosen: &crate::snapshot::Snapshot,
    filter: &crate::snapshot::SnapshotFilter,
) -> Vec<&'a HiddenSnapshot> {
    hidden
        .iter()
        .filter(|h| h.repository.is_some() || h.time_ns == 0 || h.time_ns > chosen.time_ns)
        .filter(|h| filter.hosts.is_empty() || h.time_ns == 0 || filter.hosts.contains(&h.host))
        .collect()
}

/// The snapshots this device has seen that are neither `listed` nor
/// removed with a record: a prune must not delete their data as unused,
/// and `restore latest` must not take an older snapshot for the newest.
/// Forgotten ones are dropped from the device's memory. Without a device
/// state, none.
pub(crate) fn hidden_snapshots(repo: &Repository, listed: &[Id]) -> Result<Vec<HiddenSnapshot>> {
    let Some(state) = repo.device_state() else {
        return Ok(Vec::new());
    };
    let Some(known) = state.load()? else {
        return Ok(Vec::new());
    };
    let listed: std::collections::HashSet<Id> = listed.iter().copied().collect();
    let current = repo.config().id;
    let gone: Vec<HiddenSnapshot> = known
        .snapshots_of(&current)
        .into_iter()
        .filter(|(id, _)| !listed.contains(id))
        .map(|(id, seen)| HiddenSnapshot {
            id,
            time_ns: seen.time_ns,
            host: seen.host,
            repository: None,
        })
        .collect();
    // Another repository's snapshots, seen here before: storage swapped
    // the repository (one with the same password opens as well), and
    // everything this device knew there is gone.
    let swapped = known
        .snapshots
        .iter()
        .filter(|(r, _)| **r != current)
        .flat_map(|(r, seen)| {
            seen.iter().map(move |(id, s)| HiddenSnapshot {
                id: *id,
                time_ns: s.time_ns,
                host: s.host.clone(),
                repository: Some(*r),
            })
        });
    let mut hidden: Vec<HiddenSnapshot> = Vec::new();
    // A write-only key opens no forget record (format-spec.md section 10):
    // it cannot tell its own snapshots that a full device forgot from ones
    // storage hid, and it neither restores nor prunes, so it names none.
    if !gone.is_empty() && repo.access() == crate::keys::Access::Full {
        let forgotten = all(repo)?;
        let (recorded, still): (Vec<HiddenSnapshot>, Vec<HiddenSnapshot>) =
            gone.into_iter().partition(|h| forgotten.contains(&h.id));
        let recorded: Vec<Id> = recorded.iter().map(|h| h.id).collect();
        state.update_snapshots(current, &[], &recorded)?;
        hidden = still;
    }
    hidden.extend(swapped);
    Ok(hidden)
}
