//! Path patterns, as `--exclude` and `--include` take them. A pattern
//! without `/` matches a name anywhere in the tree; one with `/` matches
//! the whole absolute path (a leading `/` anchors it at the root, otherwise
//! it may end anywhere); `**` crosses directories, `*` does not.
//!
//! One syntax for backup and restore, so that a pattern that excluded a
//! folder from backups selects the same folder in a restore.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

pub struct Patterns {
    names: GlobSet,
    paths: GlobSet,
    /// For each glob of `names`, then of `paths`, the pattern it came from.
    origin: Vec<usize>,
    count: usize,
}

impl Patterns {
    /// `what` names the option in errors ("exclude", "include").
    pub fn new(patterns: &[String], what: &str) -> Result<Patterns> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        let (mut name_origin, mut path_origin) = (Vec::new(), Vec::new());
        for (i, p) in patterns.iter().enumerate() {
            let (builder, origin, pat) = if p.contains('/') {
                let trimmed = if p.len() > 1 {
                    p.trim_end_matches('/')
                } else {
                    p
                };
                let full = if trimmed.starts_with('/') {
                    trimmed.to_string()
                } else {
                    format!("**/{trimmed}")
                };
                (&mut paths, &mut path_origin, full)
            } else {
                (&mut names, &mut name_origin, p.clone())
            };
            let glob = GlobBuilder::new(&pat)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::InvalidArgument(format!("{what} pattern {p:?}: {e}")))?;
            builder.add(glob);
            origin.push(i);
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::InvalidArgument(format!("{what} patterns: {e}")))
        };
        name_origin.extend(path_origin);
        Ok(Patterns {
            names: build(names)?,
            paths: build(paths)?,
            origin: name_origin,
            count: patterns.len(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn matches(&self, path: &Path) -> bool {
        path.file_name().is_some_and(|n| self.names.is_match(n)) || self.paths.is_match(path)
    }

    /// The indexes, in the list given to [`Patterns::new`], of the
    /// patterns that match `path`.
    pub fn matching(&self, path: &Path) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        if let Some(n) = path.file_name() {
            out.extend(self.names.matches(n).into_iter().map(|i| self.origin[i]));
        }
        let offset = self.names.len();
        out.extend(
            self.paths
                .matches(path)
                .into_iter()
                .map(|i| self.origin[offset + i]),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_match_names_and_paths() {
        let e = Patterns::new(
            &["*.log".into(), "/home/*/cache".into(), "build/out".into()],
            "exclude",
        )
        .unwrap();
        assert!(e.matches(Path::new("/a/b/x.log")));
        assert!(!e.matches(Path::new("/a/b/x.log.txt")));
        assert!(e.matches(Path::new("/home/u/cache")));
        assert!(!e.matches(Path::new("/home/u/v/cache")));
        assert!(e.matches(Path::new("/src/p/build/out")));
        assert!(Patterns::new(&["[".into()], "exclude").is_err());
    }

    #[test]
    fn names_anywhere_paths_whole() {
        let p = Patterns::new(
            &[
                "*.tmp".into(),
                "/home/a/cache".into(),
                "node_modules/".into(),
                "b/c".into(),
            ],
            "exclude",
        )
        .unwrap();
        assert!(p.matches(Path::new("/x/y.tmp")));
        assert!(p.matches(Path::new("/home/a/cache")));
        assert!(!p.matches(Path::new("/home/a/cache/x")));
        assert!(!p.matches(Path::new("/other/home/a/cache")));
        assert!(p.matches(Path::new("/p/node_modules")));
        assert!(p.matches(Path::new("/a/b/c")));
        assert!(!p.matches(Path::new("/a/xb/c")));
        assert_eq!(p.matching(Path::new("/a/b/c")), vec![3]);
        assert_eq!(p.matching(Path::new("/home/a/cache")), vec![1]);
        assert!(Patterns::new(&["a[".into()], "include").is_err());
    }
}
