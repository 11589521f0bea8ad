//! One function per command, each returning a typed result the CLI prints.

pub mod check;
pub mod create;
pub mod inspect;
pub mod prune;
pub mod restore;

use std::sync::Arc;

use crate::backend::Backend;
use crate::error::Result;
use crate::id::Id;
use crate::repo::{InitOptions, Repository};
use crate::snapshot::{Snapshot, SnapshotFilter};

#[derive(Clone, Debug)]
pub struct InitResult {
    pub location: String,
    pub repository_id: Id,
    pub encrypted: bool,
    pub key_id: Option<Id>,
}

pub fn init(backend: Arc<dyn Backend>, opts: InitOptions) -> Result<(Repository, InitResult)> {
    let repo = Repository::init(backend, opts)?;
    let result = InitResult {
        location: repo.backend().location().to_string(),
        repository_id: repo.config().id,
        encrypted: repo.is_encrypted(),
        key_id: repo.key_id(),
    };
    Ok((repo, result))
}

/// Snapshots matching `filter`, oldest first.
pub fn snapshots(repo: &Repository, filter: &SnapshotFilter) -> Result<Vec<(Id, Snapshot)>> {
    Ok(repo
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| filter.matches(s))
        .collect())
}

/// Removes the named snapshots (ids or unique prefixes). Their data stays
/// until `prune` collects it.
pub fn forget(repo: &Repository, specs: &[String]) -> Result<Vec<Id>> {
    let mut ids = Vec::new();
    for spec in specs {
        let (id, _) = repo.find_snapshot(spec, &SnapshotFilter::default())?;
        ids.push(id);
    }
    repo.remove_snapshots(&ids)?;
    Ok(ids)
}
