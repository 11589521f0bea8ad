//! A device's local copy of what it reads often: index files, snapshots and
//! tree blobs. Objects are immutable and named by their hash, so an entry is
//! never stale, only superfluous; the bucket stays the truth, and every
//! cached byte is verified again when used, so a damaged cache costs a
//! download, never correctness.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::id::Id;

#[derive(Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache of one repository below `base`.
    pub fn new(base: &Path, repository: &Id) -> Cache {
        Cache {
            dir: base.join(repository.to_hex()),
        }
    }

    fn path(&self, folder: &str, id: &Id) -> PathBuf {
        self.dir.join(folder).join(id.to_hex())
    }

    /// Cached bytes of an object named by its hash, if present and intact.
    pub fn get_object(&self, folder: &str, id: &Id) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(folder, id)).ok()?;
        (Id::of_bytes(&bytes) == *id).then_some(bytes)
    }

    /// Cached stored form of a blob; the caller verifies it by decoding.
    pub fn get_blob(&self, id: &Id) -> Option<Vec<u8>> {
        std::fs::read(self.path("trees", id)).ok()
    }

    /// A record this device keeps of an object (a write-only device's own
    /// snapshot): named by the object's id, not by its own hash, and
    /// verified by whoever opens it, with a key only this device's kind
    /// of key derives.
    pub fn get_record(&self, folder: &str, id: &Id) -> Option<Vec<u8>> {
        std::fs::read(self.path(folder, id)).ok()
    }

    pub fn put_record(&self, folder: &str, id: &Id, bytes: &[u8]) {
        self.put(folder, id, bytes);
    }

    pub fn put_object(&self, folder: &str, id: &Id, bytes: &[u8]) {
        self.put(folder, id, bytes);
    }

    pub fn put_blob(&self, id: &Id, bytes: &[u8]) {
        self.put("trees", id, bytes);
    }

    /// Best effort: a cache that cannot be written only makes snap slower.
    fn put(&self, folder: &str, id: &Id, bytes: &[u8]) {
        let dir = self.dir.join(folder);
        let _ = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
            tmp.write_all(bytes)?;
            tmp.persist(dir.join(id.to_hex())).map_err(|e| e.error)?;
            Ok(())
        })();
    }

    /// Drops cached objects of `folder` that storage no longer lists.
    pub fn retain(&self, folder: &str, listed: &HashSet<Id>) {
        let Ok(rd) = std::fs::read_dir(self.dir.join(folder)) else {
            return;
        };
        for e in rd.flatten() {
            let keep = e
                .file_name()
                .to_str()
                .and_then(|n| Id::from_hex(n).ok())
                .is_some_and(|id| listed.contains(&id));
            if !keep {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Where a device remembers the config and key file of the repository at
/// `location`: named by a hash of the location, because the repository's
/// id is inside the config that this saves reading.
fn location_dir(base: &Path, location: &str) -> PathBuf {
    let tag = blake3::hash(location.as_bytes()).to_hex();
    base.join("locations").join(&tag[..32])
}

/// The remembered (config, key file) bytes for `location`, if both are.
/// Whoever uses them checks them: the key file against the bucket's
/// listing, the config by opening it with the key.
pub fn remembered(base: &Path, location: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let dir = location_dir(base, location);
    let config = std::fs::read(dir.join("config")).ok()?;
    let key = std::fs::read(dir.join("key")).ok()?;
    Some((config, key))
}

/// Best effort, like every cache write: failing costs two reads next time.
pub fn remember(base: &Path, location: &str, config: &[u8], key: &[u8]) {
    let dir = location_dir(base, location);
    let _ = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in [("config", config), ("key", key)] {
            let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
            tmp.write_all(bytes)?;
            tmp.persist(dir.join(name)).map_err(|e| e.error)?;
        }
        Ok(())
    })();
}
