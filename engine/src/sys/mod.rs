//! What the engine asks of the operating system: who and where we are,
//! names and paths as recorded bytes, file metadata in and out, positional
//! writes, links and locks. Everything specific to one system lives below
//! this module, behind `cfg`: a port adds a sibling of `unix.rs` with the
//! same names, and the rest of the engine does not change.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

// Pure rules, compiled everywhere so that every platform tests them; only
// Windows builds use them.
#[cfg_attr(not(windows), allow(dead_code))]
pub mod windows_names;

use crate::tree::Node;

/// How far a restore believes a tree's metadata. Trees of an unencrypted
/// repository are not authenticated: whoever controls the storage could
/// have written them, so they get no owners, no set-id bits and no device
/// files (a planted set-uid root shell, or a block device readable by all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    Authenticated,
    Unauthenticated,
}

impl Trust {
    /// The permission bits to apply: without set-uid and set-gid when the
    /// tree is not authenticated.
    pub fn mode(self, node: &Node) -> u32 {
        match self {
            Trust::Authenticated => node.mode,
            Trust::Unauthenticated => node.mode & 0o1777,
        }
    }

    /// Whether owners are applied: as root (as restic does), from an
    /// authenticated tree.
    #[cfg(unix)]
    fn owners(self) -> bool {
        self == Trust::Authenticated && is_root()
    }
}

/// What tells one file from another: the same device and inode is the
/// same file; more than one link means other names share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    pub device: u64,
    pub inode: u64,
    pub links: u64,
}

/// The key a file system matches names by: the name itself on Linux; the
/// upper-cased name on Windows and macOS, whose usual file systems (NTFS,
/// APFS) ignore case, so that a restore sees `README.TXT` in the target as
/// the snapshot's `readme.txt`.
pub fn name_key(name: &std::ffi::OsStr) -> std::ffi::OsString {
    if cfg!(any(windows, target_vendor = "apple")) {
        name.to_string_lossy().to_uppercase().into()
    } else {
        name.to_os_string()
    }
}
