//! The sources of a backup: the paths given, cleaned as snapshots record
//! them, those present and those missing, and the directories above them,
//! which a snapshot stores from the root so that a restore can recreate
//! absolute paths.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys;

/// A path as snapshots record it: absolute and lexically cleaned (no `.`,
/// `..` or trailing `/`); symlinks are not resolved, so a snapshot records
/// the path the user gave. Commands that look for a snapshot by path clean
/// theirs the same way.
pub fn clean_path(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
    let mut clean = PathBuf::new();
    for c in abs.components() {
        match c {
            // `/`, or `C:` then `\` on Windows: kept, never popped.
            Component::Prefix(_) | Component::RootDir => clean.push(c),
            Component::Normal(s) => clean.push(s),
            Component::ParentDir => {
                if clean.parent().is_some() {
                    clean.pop();
                }
            }
            Component::CurDir => {}
        }
    }
    Ok(clean)
}

/// [`clean_path`] as the bytes snapshots record (`/C/Users/me` for
/// `C:\Users\me` on Windows).
pub fn recorded_path(p: &Path) -> Result<Vec<u8>> {
    Ok(sys::path_bytes(&clean_path(p)?).into_owned())
}

/// [`clean_path`] of each source, sorted, without repeats.
fn clean_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = paths
        .iter()
        .map(|p| clean_path(p))
        .collect::<Result<Vec<_>>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// The sources of a backup, cleaned: those present, and a message for each
/// missing one (a backup with none present is an error).
pub(crate) struct Sources {
    pub present: Vec<PathBuf>,
    pub missing: Vec<String>,
    /// All of them as the snapshot records them.
    pub path_bytes: Vec<Vec<u8>>,
}

impl Sources {
    pub fn of(paths: &[PathBuf]) -> Result<Sources> {
        if paths.is_empty() {
            return Err(Error::InvalidArgument("no paths to back up".into()));
        }
        let paths = clean_paths(paths)?;
        let mut missing = Vec::new();
        let mut present = Vec::new();
        for p in &paths {
            match std::fs::symlink_metadata(p) {
                Ok(_) => present.push(p.clone()),
                Err(e) => missing.push(format!("{}: {e}", p.display())),
            }
        }
        if missing.len() == paths.len() {
            return Err(Error::InvalidArgument(format!(
                "nothing to back up: {}",
                missing.join("; ")
            )));
        }
        let path_bytes = paths
            .iter()
            .map(|p| sys::path_bytes(p).into_owned())
            .collect();
        Ok(Sources {
            present,
            missing,
            path_bytes,
        })
    }
}

/// The directories above the sources: backing up `/home/a/x` stores
/// `home/a/x` from the root, so restore can recreate absolute paths.
#[derive(Default)]
pub(crate) struct Above {
    pub children: BTreeMap<Vec<u8>, AboveEntry>,
}

pub(crate) enum AboveEntry {
    Source(PathBuf),
    Dir(Above),
}

impl Above {
    /// Builds the tree of sources; a source inside another is dropped.
    pub fn build(paths: &[PathBuf]) -> Result<(Above, Option<PathBuf>)> {
        let mut root = Above::default();
        for p in paths {
            // The path as recorded (on Windows the drive is its first
            // component: `C:\a` is `/C/a`), so the tree and the snapshot's
            // paths agree.
            let recorded = sys::path_bytes(p);
            let parts: Vec<&[u8]> = recorded
                .split(|&b| b == b'/')
                .filter(|s| !s.is_empty())
                .collect();
            if parts.is_empty() {
                // The file system root itself.
                return Ok((Above::default(), Some(p.clone())));
            }
            let mut node = &mut root;
            for (i, part) in parts.iter().enumerate() {
                let key = part.to_vec();
                if i + 1 == parts.len() {
                    node.children.insert(key, AboveEntry::Source(p.clone()));
                    break;
                }
                let entry = node
                    .children
                    .entry(key)
                    .or_insert_with(|| AboveEntry::Dir(Above::default()));
                match entry {
                    AboveEntry::Dir(d) => node = d,
                    AboveEntry::Source(_) => break,
                }
            }
        }
        Ok((root, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_are_absolute_and_lexical() {
        let p = clean_paths(&[PathBuf::from("/a/./b/../c"), PathBuf::from("/a/c")]).unwrap();
        assert_eq!(p, vec![PathBuf::from("/a/c")]);
    }
}
