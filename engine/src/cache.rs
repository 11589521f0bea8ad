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
