//! Repositories near a location that holds none: what a typo in a root
//! path or a folder most likely meant. A user on a second computer who
//! typed `famliy` for `family` was once offered to create a new, empty
//! repository beside the one holding their backups.
//!
//! Read only after opening found no repository, so the way that works
//! pays nothing. It looks below the location (a parent was given), beside
//! it (a sibling was mistyped) and at the top of the bucket; a candidate
//! is a repository if its `config` has a config's header. Every step is
//! bounded: at most [`MAX_PAGES`] pages of each folder are listed, at most
//! [`MAX_CANDIDATES`] candidates (the nearest by name) are asked about,
//! and the whole search gives up after [`PATIENCE`] (a storage that lists
//! without end gets no advice, not a hang). It is advice: a failure finds
//! nothing.

use std::path::Path;
use std::time::Duration;

/// Candidates asked about at most (each one a ranged GET of the first 8
/// bytes of its `config`).
pub const MAX_CANDIDATES: usize = 64;

/// Pages of a thousand names read at most from each folder listed.
pub const MAX_PAGES: usize = 10;

/// How long the search may take in all.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Folders of a local parent read at most.
const MAX_ENTRIES: usize = 10_000;

/// The repositories found near a location, as locations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Nearby {
    /// The location that holds no repository.
    pub missing: String,
    /// Repositories found, the likeliest first.
    pub found: Vec<String>,
}

impl Nearby {
    /// Ranks `found` by how close each is to `missing`.
    pub fn new(missing: &str, mut found: Vec<String>) -> Nearby {
        found.sort();
        found.dedup();
        found.retain(|f| f.trim_end_matches('/') != missing.trim_end_matches('/'));
        found.sort_by_key(|f| distance(missing, f));
        Nearby {
            missing: missing.to_string(),
            found,
        }
    }

    /// The repository the location was most likely meant to name: one a
    /// typo or two away, in its last part.
    pub fn likely(&self) -> Option<&str> {
        let first = self.found.first()?;
        let name = last_part(&self.missing);
        let allowed = 2.max(name.chars().count() / 3);
        (distance(&self.missing, first) <= allowed).then_some(first.as_str())
    }

    /// In words: "repositories are at X and Y: did you mean X?", or None
    /// when there are none.
    pub fn sentence(&self) -> Option<String> {
        if self.found.is_empty() {
            return None;
        }
        const SHOWN: usize = 5;
        let mut names: Vec<String> = self.found.iter().take(SHOWN).cloned().collect();
        if self.found.len() > SHOWN {
            names.push(format!("{} more", self.found.len() - SHOWN));
        }
        let list = match names.len() {
            1 => names[0].clone(),
            n => format!("{} and {}", names[..n - 1].join(", "), names[n - 1]),
        };
        let what = if self.found.len() == 1 {
            "a repository is at"
        } else {
            "repositories are at"
        };
        Some(match self.likely() {
            Some(l) => format!("{what} {list}: did you mean {l}?"),
            None => format!("{what} {list}."),
        })
    }

    /// Those beside the location (in the same folder) or below it: where
    /// a new repository is most likely a typo or a wrong level, not a wish.
    /// A repository at the top of the bucket is near every location, and
    /// says nothing about this one.
    pub fn beside_or_below(&self) -> Nearby {
        let missing = self.missing.trim_end_matches(['/', '\\']);
        let parent = parent_of(missing);
        let found = self
            .found
            .iter()
            .filter(|f| {
                let f = f.trim_end_matches(['/', '\\']);
                parent_of(f) == parent || f.starts_with(&format!("{missing}/"))
            })
            .cloned()
            .collect();
        Nearby {
            missing: self.missing.clone(),
            found,
        }
    }
}

fn parent_of(location: &str) -> &str {
    location.rsplit_once(['/', '\\']).map_or("", |(p, _)| p)
}

fn last_part(location: &str) -> &str {
    let t = location.trim_end_matches(['/', '\\']);
    t.rsplit(['/', '\\']).next().unwrap_or(t)
}

/// Edits between the last parts, then the whole: `family` is nearer to
/// `famliy` than `work` is.
pub(crate) fn distance(missing: &str, found: &str) -> usize {
    strsim::damerau_levenshtein(last_part(missing), last_part(found))
}

/// Longest name of a candidate shown.
const MAX_NAME: usize = 256;

/// Whether a name from a listing may be shown: no control characters (a
/// terminal escape sequence planted as a bucket prefix would otherwise be
/// printed by `snap snapshots`), and not longer than [`MAX_NAME`].
pub(crate) fn presentable(name: &str) -> bool {
    name.len() <= MAX_NAME && !name.chars().any(char::is_control)
}

/// Repositories in the folders below `dir` and beside it.
pub fn local(dir: &Path) -> Nearby {
    let mut found = Vec::new();
    let mut places = vec![dir.to_path_buf()];
    if let Some(parent) = dir.parent() {
        places.push(parent.to_path_buf());
    }
    let mut asked = 0;
    for place in places {
        let Ok(entries) = std::fs::read_dir(&place) else {
            continue;
        };
        for entry in entries.take(MAX_ENTRIES).flatten() {
            if asked >= MAX_CANDIDATES {
                break;
            }
            let path = entry.path();
            if path == dir
                || !entry.file_type().is_ok_and(|t| t.is_dir())
                || !presentable(&path.display().to_string())
            {
                continue;
            }
            asked += 1;
            if is_config(&path.join("config")) {
                found.push(path.display().to_string());
            }
        }
    }
    Nearby::new(&dir.display().to_string(), found)
}

/// Whether `file` starts as a repository's config does (its header: the
/// magic, the kind, a known version and mode): a folder of another program
/// with a file named `config` is no repository.
fn is_config(file: &Path) -> bool {
    let mut head = [0u8; crate::codec::HEADER_LEN];
    std::fs::File::open(file)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| crate::codec::peek_mode(crate::codec::Kind::Config, &head).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_by_its_last_part_is_offered() {
        let n = Nearby::new(
            "s3://b/famliy",
            vec!["s3://b/work".into(), "s3://b/family".into()],
        );
        assert_eq!(n.found, ["s3://b/family", "s3://b/work"]);
        assert_eq!(n.likely(), Some("s3://b/family"));
        assert_eq!(
            n.sentence().unwrap(),
            "repositories are at s3://b/family and s3://b/work: did you mean s3://b/family?"
        );
        let far = Nearby::new("s3://b/photos", vec!["s3://b/work".into()]);
        assert_eq!(far.likely(), None);
        assert_eq!(far.sentence().unwrap(), "a repository is at s3://b/work.");
        let deep = Nearby::new(
            "s3://b/photos/new",
            vec![
                "s3://b/family".into(),
                "s3://b/photos/old".into(),
                "s3://b/photos/new/x".into(),
            ],
        );
        let mut close = deep.beside_or_below().found;
        close.sort();
        assert_eq!(close, ["s3://b/photos/new/x", "s3://b/photos/old"]);
        assert_eq!(Nearby::new("s3://b/x", vec![]).sentence(), None);
    }

    #[test]
    fn names_that_could_steer_a_terminal_are_not_shown() {
        assert!(presentable("family"));
        assert!(!presentable("fam\x1b]0;owned\x07ily"));
        assert!(!presentable("a\nb"));
        assert!(!presentable(&"x".repeat(MAX_NAME + 1)));
    }

    #[test]
    fn local_repositories_beside_and_below_are_found() {
        let d = tempfile::tempdir().unwrap();
        for r in ["family", "work/inner"] {
            std::fs::create_dir_all(d.path().join(r).join("keys")).unwrap();
            let head =
                crate::codec::header(crate::codec::Kind::Config, crate::codec::Mode::Encrypted);
            std::fs::write(
                d.path().join(r).join("config"),
                [&head[..], b"and more"].concat(),
            )
            .unwrap();
        }
        // Another program's folder with a file named config, and one that
        // starts as snap's objects do but is no config.
        std::fs::create_dir_all(d.path().join("famly")).unwrap();
        std::fs::write(d.path().join("famly/config"), b"[core]").unwrap();
        std::fs::create_dir_all(d.path().join("fmaily")).unwrap();
        std::fs::write(d.path().join("fmaily/config"), b"snapFAKE-not-a-config").unwrap();
        let n = local(&d.path().join("famliy"));
        assert_eq!(n.found, [d.path().join("family").display().to_string()]);
        let mut below = local(&d.path().join("work")).found;
        below.sort();
        let at = |p: &str| d.path().join(p).display().to_string();
        assert_eq!(below, [at("family"), at("work/inner")]);
    }
}
