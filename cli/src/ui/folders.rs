//! The folder picker's view of this computer: the folders inside one
//! folder, and the usual places (home, Documents, Desktop, Pictures, the
//! app-data folders), so that a desktop user chooses what to back up
//! instead of typing an absolute path (`~/Documents` was refused).
//!
//! Names only, never file contents, and only folders; the page already
//! backs up and restores anything this user can read, so listing names
//! gives the token holder nothing new.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::app::blocking;

/// Folders shown at most in one folder, the first by name: a picker is
/// for people.
pub(crate) const MAX_FOLDERS: usize = 2000;

/// Entries of one folder read at most, and how long the reading may take:
/// a folder of millions of entries, or a network mount that stopped
/// answering, should not hold the page.
const MAX_READ: usize = 200_000;
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct FoldersQuery {
    /// "" (or "~"): the home folder.
    path: String,
}

#[derive(Serialize, Debug)]
pub(crate) struct Place {
    pub(crate) name: String,
    pub(crate) path: String,
}

#[derive(Serialize, Debug)]
pub(crate) struct Folders {
    pub(crate) path: String,
    pub(crate) parent: Option<String>,
    pub(crate) folders: Vec<Place>,
    /// More than [`MAX_FOLDERS`] were there, or more entries than are read.
    pub(crate) truncated: bool,
    /// Folders whose names are not text this page can send back (not
    /// UTF-8): left out, and counted.
    pub(crate) unnamed: usize,
    pub(crate) places: Vec<Place>,
}

/// `~` and `~/…` as this user's home; anything else as given.
pub(crate) fn expand_home(s: &str) -> String {
    let home = || dirs::home_dir().map(|h| h.display().to_string());
    match s.strip_prefix('~') {
        Some("") => home().unwrap_or_else(|| s.to_string()),
        Some(rest) if rest.starts_with('/') || rest.starts_with('\\') => match home() {
            Some(h) => format!("{h}{rest}"),
            None => s.to_string(),
        },
        _ => s.to_string(),
    }
}

/// The usual places that exist on this computer.
fn places() -> Vec<Place> {
    let home = dirs::home_dir();
    let under_home = |name: &str| home.as_ref().map(|h| h.join(name));
    let candidates: Vec<(&str, Option<PathBuf>)> = vec![
        ("Home", home.clone()),
        (
            "Documents",
            dirs::document_dir().or_else(|| under_home("Documents")),
        ),
        (
            "Desktop",
            dirs::desktop_dir().or_else(|| under_home("Desktop")),
        ),
        (
            "Pictures",
            dirs::picture_dir().or_else(|| under_home("Pictures")),
        ),
        ("Music", dirs::audio_dir().or_else(|| under_home("Music"))),
        ("Videos", dirs::video_dir().or_else(|| under_home("Videos"))),
        (
            "Downloads",
            dirs::download_dir().or_else(|| under_home("Downloads")),
        ),
        ("App data", dirs::data_dir()),
        ("App settings", dirs::config_dir()),
        ("This computer", Some(PathBuf::from("/"))),
    ];
    let mut seen = Vec::new();
    candidates
        .into_iter()
        .filter_map(|(name, p)| p.filter(|p| p.is_dir()).map(|p| (name, p)))
        .filter(|(_, p)| {
            let fresh = !seen.contains(p);
            seen.push(p.clone());
            fresh
        })
        .map(|(name, p)| Place {
            name: name.to_string(),
            path: p.display().to_string(),
        })
        .collect()
}

/// The folders in `dir`, sorted by name, hidden ones (".name") last.
pub(crate) fn list(dir: &Path) -> std::io::Result<Folders> {
    let mut folders = Vec::new();
    let mut truncated = false;
    let mut unnamed = 0;
    for (n, entry) in std::fs::read_dir(dir)?.enumerate() {
        if n == MAX_READ {
            truncated = true;
            break;
        }
        let Ok(entry) = entry else { continue };
        // A link to a folder is followed, as a file manager shows it; the
        // file type alone answers for the rest without a stat.
        let dir = match entry.file_type() {
            Ok(t) if t.is_dir() => true,
            Ok(t) if t.is_symlink() => entry.path().is_dir(),
            _ => false,
        };
        if !dir {
            continue;
        }
        let (name, path) = (entry.file_name(), entry.path());
        let (Some(name), Some(path)) = (name.to_str(), path.to_str()) else {
            unnamed += 1;
            continue;
        };
        folders.push(Place {
            name: name.to_string(),
            path: path.to_string(),
        });
    }
    folders.sort_by(|a, b| {
        (a.name.starts_with('.'), a.name.to_lowercase())
            .cmp(&(b.name.starts_with('.'), b.name.to_lowercase()))
    });
    if folders.len() > MAX_FOLDERS {
        folders.truncate(MAX_FOLDERS);
        truncated = true;
    }
    Ok(Folders {
        path: dir.display().to_string(),
        parent: dir.parent().map(|p| p.display().to_string()),
        folders,
        truncated,
        unnamed,
        places: places(),
    })
}

pub(crate) async fn folders(Query(q): Query<FoldersQuery>) -> Response {
    let given = q.path.trim().to_string();
    let r = tokio::time::timeout(
        PATIENCE,
        blocking(move || {
            let path = if given.is_empty() {
                expand_home("~")
            } else {
                expand_home(&given)
            };
            let dir = PathBuf::from(&path);
            if !dir.is_absolute() {
                anyhow::bail!("{path:?} is not a full path");
            }
            list(&dir).map_err(|e| anyhow::anyhow!("cannot open the folder {path}: {e}"))
        }),
    )
    .await
    .unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "the folder does not answer within {} s (a network drive away?)",
            PATIENCE.as_secs()
        ))
    });
    match r {
        Ok(f) => Json(f).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": format!("{e:#}") })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_only_sorted_with_hidden_last() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b", ".hidden", "A", "c"] {
            std::fs::create_dir(d.path().join(f)).unwrap();
        }
        std::fs::write(d.path().join("file"), b"x").unwrap();
        let l = list(d.path()).unwrap();
        let names: Vec<&str> = l.folders.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["A", "b", "c", ".hidden"]);
        assert!(!l.truncated);
        assert_eq!(l.unnamed, 0);
        assert_eq!(
            l.parent.as_deref(),
            d.path().parent().and_then(|p| p.to_str())
        );
    }

    #[test]
    fn the_tilde_is_the_home_folder() {
        let home = dirs::home_dir().unwrap().display().to_string();
        assert_eq!(expand_home("~"), home);
        assert_eq!(expand_home("~/Documents"), format!("{home}/Documents"));
        assert_eq!(expand_home("/srv/~x"), "/srv/~x");
        assert_eq!(expand_home("~other/x"), "~other/x");
    }

    /// Past the limit, the first folders by name are shown, not whichever
    /// the file system gave first; a name that is not text is counted.
    #[test]
    fn the_first_folders_by_name_and_names_that_are_not_text_counted() {
        let d = tempfile::tempdir().unwrap();
        for i in (0..MAX_FOLDERS + 5).rev() {
            std::fs::create_dir(d.path().join(format!("f{i:05}"))).unwrap();
        }
        #[cfg(unix)]
        std::fs::create_dir(
            d.path()
                .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"bad\xff")),
        )
        .unwrap();
        let l = list(d.path()).unwrap();
        assert!(l.truncated);
        assert_eq!(l.folders.len(), MAX_FOLDERS);
        assert_eq!(l.folders[0].name, "f00000");
        assert_eq!(
            l.folders[MAX_FOLDERS - 1].name,
            format!("f{:05}", MAX_FOLDERS - 1)
        );
        #[cfg(unix)]
        assert_eq!(l.unnamed, 1);
    }
}
