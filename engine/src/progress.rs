//! How commands report what they are doing without knowing who listens: the
//! CLI draws progress bars and prints warnings, tests collect them.

use std::path::Path;

pub trait Progress: Sync {
    /// Something could not be done but the command goes on (an unreadable
    /// file, a damaged blob); the command's result also lists it.
    fn warn(&self, _message: &str) {}
    /// A phase with known totals begins (either may be unknown).
    fn start(&self, _phase: &str, _total_bytes: Option<u64>, _total_items: Option<u64>) {}
    /// Whether anyone shows totals: a backup then counts its work ahead
    /// on a second thread (see [`crate::scan`]); unwatched runs skip it.
    fn wants_totals(&self) -> bool {
        false
    }
    /// The whole of the current phase became known (a backup's scanner
    /// finished counting): from here progress can show percent and time left.
    fn total(&self, _bytes: u64, _items: u64) {}
    /// Bytes processed in the current phase.
    fn bytes(&self, _n: u64) {}
    /// One item (file, pack) finished.
    fn item(&self, _path: &Path) {}
    fn finish(&self) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}
