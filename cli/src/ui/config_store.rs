//! The config file as the page knows it: read once and kept in memory,
//! and read again only when the file itself changed (a `snap config` in a
//! terminal sets what the page cannot, such as a failure command). Every
//! page and the scheduler's look each second once parsed the file anew,
//! and would have logged its loose-permissions warning each time; now a
//! look costs one `stat`, and the warning comes once per change. Saves go
//! through here, so what is kept is what was written.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::Result;

use super::app::lock;
use crate::config::{self, ConfigFile};

/// What identifies one version of the file: its modification time and
/// size, or `None` while there is no file.
type Stamp = Option<(SystemTime, u64)>;

#[derive(Default)]
pub(crate) struct ConfigStore {
    kept: Mutex<Option<(Stamp, ConfigFile)>>,
}

fn stamp(path: &PathBuf) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl ConfigStore {
    /// The file as it is now; read only when it changed since the last look.
    pub(crate) fn get(&self, warn: &dyn Fn(&str)) -> Result<ConfigFile> {
        let path = config::path()?;
        let now = stamp(&path);
        let mut kept = lock(&self.kept);
        if let Some((s, file)) = kept.as_ref()
            && *s == now
        {
            return Ok(file.clone());
        }
        let file = ConfigFile::load(warn)?;
        *kept = Some((now, file.clone()));
        Ok(file)
    }

    /// Writes `file`, and keeps it as the version now on disk.
    pub(crate) fn save(&self, file: &ConfigFile) -> Result<()> {
        let path = file.save()?;
        *lock(&self.kept) = Some((stamp(&path), file.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// One read per version of the file: the warning comes once, and a
    /// change made from a terminal is seen.
    #[test]
    fn read_once_and_again_only_after_a_change() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("config.toml");
        // SAFETY: this test alone in this binary sets SNAP_CONFIG.
        unsafe { std::env::set_var("SNAP_CONFIG", &path) };
        std::fs::write(&path, "default = \"a\"\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let warned = Cell::new(0);
        let warn = |_: &str| warned.set(warned.get() + 1);
        let store = ConfigStore::default();
        for _ in 0..3 {
            assert_eq!(store.get(&warn).unwrap().default.as_deref(), Some("a"));
        }
        #[cfg(unix)]
        assert_eq!(warned.get(), 1, "warned once, not at every look");
        std::fs::write(&path, "default = \"bb\"\n").unwrap();
        assert_eq!(store.get(&warn).unwrap().default.as_deref(), Some("bb"));
        let mut f = store.get(&warn).unwrap();
        f.default = Some("c".into());
        store.save(&f).unwrap();
        assert_eq!(store.get(&warn).unwrap().default.as_deref(), Some("c"));
    }
}
