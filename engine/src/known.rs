//! What a device remembers of the repository at each location it has
//! opened: the repository's id, whether it was encrypted, and the
//! snapshots it has read there. Kept apart from the cache, which may be
//! wiped or evicted at any time; this is what lets a device notice that the
//! bucket removed a repository's encryption (a plain `config` copied over
//! an encrypted one) or hid snapshots it knows (format-spec.md section 11).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Error, Result};
use crate::id::Id;

/// The remembered facts of one location.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    pub repository: Id,
    pub encrypted: bool,
    /// Snapshots this device has read from that repository and not seen
    /// forgotten, sorted.
    pub snapshots: BTreeSet<Id>,
}

/// The file that holds one location's [`Known`].
#[derive(Clone, Debug)]
pub struct DeviceState {
    path: PathBuf,
}

const MAGIC: &[u8] = b"snap-device-state-1\n";

impl DeviceState {
    /// The state of `location` below `base`, named by a hash of the
    /// location, since the repository's id is what it checks.
    pub fn new(base: &Path, location: &str) -> DeviceState {
        let tag = blake3::hash(location.as_bytes()).to_hex();
        DeviceState {
            path: base.join("repositories").join(&tag[..32]),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `None` when this device never opened the location.
    pub fn load(&self) -> Result<Option<Known>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let body = bytes.strip_prefix(MAGIC).ok_or_else(|| {
            Error::corrupt(
                format!("device state {}", self.path.display()),
                "not a snap device state file",
            )
        })?;
        codec::decode::<Known, { codec::MAX_INDEX_BODY }>("device state", body).map(Some)
    }

    fn store(&self, known: &Known) -> Result<()> {
        let dir = self.path.parent().expect("state files live in a folder");
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(MAGIC)?;
            tmp.write_all(&codec::encode(known))?;
            tmp.as_file().sync_all()?;
            tmp.persist(&self.path).map_err(|e| e.error)?;
            Ok(())
        };
        write().map_err(|e| Error::io(&self.path, e))
    }

    /// Records that the repository `id` at this location was opened, and
    /// whether it is encrypted. A different id (a repository created anew
    /// at the location) starts a fresh record.
    pub fn pin(&self, id: Id, encrypted: bool) -> Result<()> {
        let old = self.load()?;
        if old
            .as_ref()
            .is_some_and(|k| k.repository == id && k.encrypted == encrypted)
        {
            return Ok(());
        }
        let snapshots = old
            .filter(|k| k.repository == id)
            .map(|k| k.snapshots)
            .unwrap_or_default();
        self.store(&Known {
            repository: id,
            encrypted,
            snapshots,
        })
    }

    /// Adds `seen` to, and removes `forgotten` from, the snapshots this
    /// device knows in repository `id`. Several commands may run at once:
    /// each merges into what is on disk.
    pub fn update_snapshots(&self, id: Id, seen: &[Id], forgotten: &[Id]) -> Result<()> {
        let mut known = match self.load()? {
            Some(k) if k.repository == id => k,
            _ => return Ok(()),
        };
        let before = known.snapshots.len();
        let mut changed = false;
        known.snapshots.extend(seen.iter().copied());
        changed |= known.snapshots.len() != before;
        for f in forgotten {
            changed |= known.snapshots.remove(f);
        }
        if changed { self.store(&known) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_and_merges_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let s = DeviceState::new(dir.path(), "s3://b/x");
        assert_eq!(s.load().unwrap(), None);
        let id = Id([1; 32]);
        s.pin(id, true).unwrap();
        s.update_snapshots(id, &[Id([2; 32]), Id([3; 32])], &[])
            .unwrap();
        s.update_snapshots(id, &[], &[Id([2; 32])]).unwrap();
        let k = s.load().unwrap().unwrap();
        assert!(k.encrypted);
        assert_eq!(
            k.snapshots.into_iter().collect::<Vec<_>>(),
            vec![Id([3; 32])]
        );
        // Another repository at the location starts afresh.
        s.pin(Id([9; 32]), false).unwrap();
        let k = s.load().unwrap().unwrap();
        assert!(!k.encrypted && k.snapshots.is_empty());
        std::fs::write(s.path(), b"junk").unwrap();
        assert!(s.load().is_err());
    }
}
