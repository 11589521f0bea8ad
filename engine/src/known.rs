//! What a device remembers of the repository at each location it has
//! opened: the repository's id, whether it was encrypted, and the
//! snapshots it has read there. Kept apart from the cache, which may be
//! wiped or evicted at any time; this is what lets a device notice that the
//! bucket removed a repository's encryption (a plain `config` copied over
//! an encrypted one) or hid snapshots it knows (format-spec.md section 11).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Error, Result};
use crate::id::Id;

/// The remembered facts of one location.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// The repository last opened there, and whether it was encrypted.
    pub repository: Id,
    pub encrypted: bool,
    /// Per repository ever opened there, the snapshots this device has read
    /// or written and not seen forgotten. Kept per repository: storage that
    /// serves another repository at the location for a while (one with the
    /// same password) must not make the device forget the first one's.
    pub snapshots: BTreeMap<Id, BTreeMap<Id, Seen>>,
    /// The key file that last unlocked the repository here: tried first,
    /// so that key files planted by storage cannot crowd it out.
    pub key: Option<Id>,
}

/// What a device remembers of a snapshot it saw: enough to say which one
/// storage hid, and whether `latest` would have been another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub time_ns: i64,
    pub host: String,
}

/// A state file of version 2, before snapshots carried their time and the
/// key was remembered: read, and written again as version 3.
#[derive(Deserialize)]
struct KnownV2 {
    repository: Id,
    encrypted: bool,
    snapshots: BTreeMap<Id, BTreeSet<Id>>,
}

impl Known {
    /// The remembered snapshots of repository `id`.
    pub fn snapshots_of(&self, id: &Id) -> BTreeMap<Id, Seen> {
        self.snapshots.get(id).cloned().unwrap_or_default()
    }
}

/// The file that holds one location's [`Known`].
#[derive(Clone, Debug)]
pub struct DeviceState {
    path: PathBuf,
}

const MAGIC: &[u8] = b"snap-device-state-3\n";
const MAGIC_V2: &[u8] = b"snap-device-state-2\n";

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
        if let Some(body) = bytes.strip_prefix(MAGIC_V2) {
            let old = codec::decode::<KnownV2, { codec::MAX_INDEX_BODY }>("device state", body)?;
            let unknown = |ids: BTreeSet<Id>| ids.into_iter().map(|id| (id, Seen::default()));
            return Ok(Some(Known {
                repository: old.repository,
                encrypted: old.encrypted,
                snapshots: old
                    .snapshots
                    .into_iter()
                    .map(|(repo, ids)| (repo, unknown(ids).collect()))
                    .collect(),
                key: None,
            }));
        }
        let body = bytes.strip_prefix(MAGIC).ok_or_else(|| {
            Error::corrupt(
                format!("device state {}", self.path.display()),
                "not a snap device state file",
            )
        })?;
        codec::decode::<Known, { codec::MAX_INDEX_BODY }>("device state", body).map(Some)
    }

    /// Runs `change` on the state under an exclusive lock of a file beside
    /// it, so that a backup and a prune on one device do not lose each
    /// other's updates; writes the result when `change` says it changed.
    fn update(&self, change: impl FnOnce(&mut Option<Known>) -> bool) -> Result<()> {
        let dir = self.path.parent().expect("state files live in a folder");
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock_path = self.path.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        let mut known = self.load()?;
        if change(&mut known)
            && let Some(k) = &known
        {
            self.store(k)?;
        }
        Ok(())
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

    /// This device's own id, made at random the first time it is asked
    /// for and kept beside the state files: what a repository names as the
    /// device that deletes data ([`crate::pruner`]). A host name would not
    /// do: two devices can share one, and one can change it.
    pub fn device_id(&self) -> Result<Id> {
        let base = self
            .path
            .parent()
            .and_then(Path::parent)
            .expect("state files live two folders down");
        let file = base.join("device-id");
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(id) = Id::from_hex(text.trim())
        {
            return Ok(id);
        }
        std::fs::create_dir_all(base).map_err(|e| Error::io(base, e))?;
        let id = Id::random();
        let mut tmp = tempfile::NamedTempFile::new_in(base).map_err(|e| Error::io(base, e))?;
        tmp.write_all(id.to_hex().as_bytes())
            .map_err(|e| Error::io(&file, e))?;
        // Two first runs at once: the one that lands first is the id.
        match tmp.persist_noclobber(&file) {
            Ok(_) => Ok(id),
            Err(_) => {
                let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
                Id::from_hex(text.trim()).map_err(|_| {
                    Error::corrupt(format!("device id {}", file.display()), "not an id")
                })
            }
        }
    }

    /// Records that the repository `id` at this location was opened, and
    /// whether it is encrypted.
    pub fn pin(&self, id: Id, encrypted: bool) -> Result<()> {
        self.update(|known| {
            let k = known.get_or_insert_with(Known::default);
            let changed = k.repository != id || k.encrypted != encrypted;
            k.repository = id;
            k.encrypted = encrypted;
            changed
        })
    }

    /// Adds `seen` to, and removes `forgotten` from, the snapshots this
    /// device knows in repository `id`.
    pub fn update_snapshots(&self, id: Id, seen: &[(Id, Seen)], forgotten: &[Id]) -> Result<()> {
        self.update(|known| {
            let Some(k) = known else {
                return false;
            };
            let map = k.snapshots.entry(id).or_default();
            let mut changed = false;
            for (sid, s) in seen {
                if map.get(sid) != Some(s) {
                    map.insert(*sid, s.clone());
                    changed = true;
                }
            }
            for f in forgotten {
                changed |= map.remove(f).is_some();
            }
            changed
        })
    }

    /// Forgets the snapshots of every repository at this location but
    /// `keep`: said by `init`, which the user runs to make a new one there.
    pub fn forget_other_repositories(&self, keep: Id) -> Result<()> {
        self.update(|known| {
            let Some(k) = known else {
                return false;
            };
            let before = k.snapshots.len();
            k.snapshots.retain(|id, _| *id == keep);
            k.snapshots.len() != before
        })
    }

    /// Remembers the key file that unlocked the repository here.
    pub fn remember_key(&self, key: Id) -> Result<()> {
        self.update(|known| {
            let Some(k) = known else {
                return false;
            };
            let changed = k.key != Some(key);
            k.key = Some(key);
            changed
        })
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
        let seen = |t: i64| Seen {
            time_ns: t,
            host: "h".into(),
        };
        s.update_snapshots(id, &[(Id([2; 32]), seen(2)), (Id([3; 32]), seen(3))], &[])
            .unwrap();
        s.update_snapshots(id, &[], &[Id([2; 32])]).unwrap();
        let k = s.load().unwrap().unwrap();
        assert!(k.encrypted);
        assert_eq!(
            k.snapshots_of(&id).into_iter().collect::<Vec<_>>(),
            vec![(Id([3; 32]), seen(3))]
        );
        // Another repository served at the location for a while does not
        // make the device forget the first one's snapshots.
        s.pin(Id([9; 32]), false).unwrap();
        let k = s.load().unwrap().unwrap();
        assert!(!k.encrypted && k.snapshots_of(&Id([9; 32])).is_empty());
        s.pin(id, true).unwrap();
        assert_eq!(s.load().unwrap().unwrap().snapshots_of(&id).len(), 1);
        std::fs::write(s.path(), b"junk").unwrap();
        assert!(s.load().is_err());
    }

    /// A state file written before snapshots carried their time is read,
    /// its snapshots remembered with no time.
    #[test]
    fn reads_version_2_state() {
        let dir = tempfile::tempdir().unwrap();
        let s = DeviceState::new(dir.path(), "s3://b/x");
        #[derive(Serialize)]
        struct V2 {
            repository: Id,
            encrypted: bool,
            snapshots: BTreeMap<Id, BTreeSet<Id>>,
        }
        let old = V2 {
            repository: Id([1; 32]),
            encrypted: true,
            snapshots: [(Id([1; 32]), [Id([4; 32])].into_iter().collect())]
                .into_iter()
                .collect(),
        };
        std::fs::create_dir_all(s.path().parent().unwrap()).unwrap();
        std::fs::write(s.path(), [MAGIC_V2, &codec::encode(&old)].concat()).unwrap();
        let k = s.load().unwrap().unwrap();
        assert!(k.encrypted && k.key.is_none());
        assert_eq!(
            k.snapshots_of(&Id([1; 32])).into_keys().collect::<Vec<_>>(),
            vec![Id([4; 32])]
        );
    }
}
