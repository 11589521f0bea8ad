//! One function per command, each returning a typed result the CLI prints.

pub mod check;
pub mod create;
pub mod dump;
pub mod inspect;
pub mod prune;
pub mod repair;
pub mod restore;

use std::sync::Arc;

use crate::backend::Backend;
use crate::error::Result;
use crate::id::Id;
use crate::repo::{InitOptions, Repository};
use crate::snapshot::{Snapshot, SnapshotFilter};

#[derive(Clone, Debug, serde::Serialize)]
pub struct InitResult {
    pub location: String,
    pub repository_id: Id,
    pub encrypted: bool,
    pub key_id: Option<Id>,
    /// What the provider did not allow, in words.
    pub warnings: Vec<String>,
}

pub fn init(backend: Arc<dyn Backend>, opts: InitOptions) -> Result<(Repository, InitResult)> {
    let repo = Repository::init(backend, opts)?;
    let result = InitResult {
        location: repo.location().to_string(),
        repository_id: repo.config().id,
        encrypted: repo.is_encrypted(),
        key_id: repo.key_id(),
        warnings: if repo.backend().create_is_atomic() {
            Vec::new()
        } else {
            vec![format!(
                "{} refused a conditional write (If-None-Match), so init looked for an \
                 existing repository first and then wrote: two devices running init on the \
                 same place at the same moment could both succeed there",
                repo.location()
            )]
        },
    };
    Ok((repo, result))
}

/// Snapshots, and the snapshots this device saw that storage no longer
/// shows.
pub type SnapshotsAndHidden = (Vec<(Id, Snapshot)>, Vec<crate::forgotten::HiddenSnapshot>);

/// Snapshots matching `filter`, oldest first, and the snapshots this
/// device saw that storage no longer shows, from one listing.
pub fn snapshots_and_hidden(
    repo: &Repository,
    filter: &SnapshotFilter,
) -> Result<SnapshotsAndHidden> {
    let all = repo.snapshots()?;
    let listed: Vec<Id> = all.iter().map(|(id, _)| *id).collect();
    let hidden = repo.hidden_snapshots_in(&listed)?;
    Ok((
        all.into_iter().filter(|(_, s)| filter.matches(s)).collect(),
        hidden,
    ))
}

/// Snapshots matching `filter`, oldest first.
pub fn snapshots(repo: &Repository, filter: &SnapshotFilter) -> Result<Vec<(Id, Snapshot)>> {
    Ok(repo
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| filter.matches(s))
        .collect())
}

/// The snapshots that `specs` name for a destructive command: full ids,
/// unique prefixes of at least 4 hex digits, or `latest` among those
/// `filter` matches, which must then name a host. A one-digit prefix once
/// deleted a snapshot, and `forget latest` the newest of any host.
pub fn resolve_for_removal(
    repo: &Repository,
    specs: &[String],
    filter: &SnapshotFilter,
) -> Result<Vec<(Id, Snapshot)>> {
    let mut out: Vec<(Id, Snapshot)> = Vec::new();
    for spec in specs {
        if spec == "latest" && filter.hosts.is_empty() {
            return Err(crate::Error::InvalidArgument(
                "`latest` with a command that removes snapshots needs --host, so that it \
                 cannot name another device's newest snapshot"
                    .into(),
            ));
        }
        if spec != "latest" && spec.len() < 4 {
            return Err(crate::Error::InvalidArgument(format!(
                "{spec:?} is too short to remove snapshots by: give at least 4 hex digits"
            )));
        }
        let found = repo.find_snapshot(spec, filter)?;
        if !out.iter().any(|(id, _)| *id == found.0) {
            out.push(found);
        }
    }
    Ok(out)
}

/// Removes snapshots, with a forget record first. Their data stays until
/// `prune` collects it.
pub fn forget(repo: &Repository, ids: &[Id]) -> Result<()> {
    repo.require_full("remove snapshots")?;
    repo.remove_snapshots(ids)
}
