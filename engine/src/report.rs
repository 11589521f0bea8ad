//! Reports as data: what each command tells its caller, as plain values
//! that serialize to snap's `--json` output (field names are that output's,
//! and stay stable). The CLI prints text from the same values, so the text
//! and the JSON cannot disagree, and the UI reads them as they are.

use serde::Serialize;

use crate::id::Id;
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind};

/// Time as RFC 3339 in UTC with nanoseconds, as every report writes it.
pub(crate) fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The kind of an entry as reports name it (`"file"`, `"dir"`, …): the
/// tree's [`NodeKind`], which the format stores as a number, in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Chardev,
    Blockdev,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Fifo => "fifo",
            EntryKind::Chardev => "chardev",
            EntryKind::Blockdev => "blockdev",
        }
    }
}

impl From<NodeKind> for EntryKind {
    fn from(k: NodeKind) -> EntryKind {
        match k {
            NodeKind::File => EntryKind::File,
            NodeKind::Dir => EntryKind::Dir,
            NodeKind::Symlink => EntryKind::Symlink,
            NodeKind::Fifo => EntryKind::Fifo,
            NodeKind::CharDevice => EntryKind::Chardev,
            NodeKind::BlockDevice => EntryKind::Blockdev,
        }
    }
}

/// What a backup did, in a snapshot's summary, with its time in seconds.
#[derive(Clone, Debug, Serialize)]
pub struct SummaryReport {
    #[serde(flatten)]
    pub summary: crate::snapshot::Summary,
    pub duration_s: f64,
}

impl From<&crate::snapshot::Summary> for SummaryReport {
    fn from(m: &crate::snapshot::Summary) -> SummaryReport {
        SummaryReport {
            summary: m.clone(),
            duration_s: m.duration_ns as f64 / 1e9,
        }
    }
}

/// One snapshot, as `snap snapshots` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotReport {
    pub id: Id,
    pub short_id: String,
    pub time: String,
    pub host: String,
    pub username: String,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    pub parent: Option<Id>,
    pub tree: Id,
    pub program_version: String,
    pub summary: SummaryReport,
}

impl SnapshotReport {
    pub fn new(id: &Id, s: &Snapshot) -> SnapshotReport {
        SnapshotReport {
            id: *id,
            short_id: id.short(),
            time: rfc3339(s.time_ns),
            host: s.host.clone(),
            username: s.username.clone(),
            paths: s.paths_lossy(),
            tags: s.tags.clone(),
            parent: s.parent,
            tree: s.tree,
            program_version: s.program_version.clone(),
            summary: (&s.summary).into(),
        }
    }
}

/// One entry of a snapshot, as `ls` and `find` list it.
#[derive(Clone, Debug, Serialize)]
pub struct EntryReport {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    pub size: u64,
    pub mtime: String,
    pub link_target: Option<String>,
}

impl EntryReport {
    pub fn new(path: &[u8], n: &Node) -> EntryReport {
        EntryReport {
            path: String::from_utf8_lossy(path).into_owned(),
            kind: n.kind.into(),
            mode: n.mode,
            uid: n.uid,
            gid: n.gid,
            user: n.user.clone(),
            group: n.group.clone(),
            size: n.size,
            mtime: rfc3339(n.mtime_ns),
            link_target: (!n.link_target.is_empty())
                .then(|| String::from_utf8_lossy(&n.link_target).into_owned()),
        }
    }
}

/// `snap ls`.
#[derive(Clone, Debug, Serialize)]
pub struct LsReport {
    pub snapshot_id: Id,
    pub entries: Vec<EntryReport>,
}

/// One hit of `snap find`: the entry and the snapshot it is in.
#[derive(Clone, Debug, Serialize)]
pub struct FindHit {
    #[serde(flatten)]
    pub entry: EntryReport,
    pub snapshot_id: Id,
    pub snapshot_time: String,
}

/// One change of `snap diff`.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeReport {
    pub change: &'static str,
    pub path: String,
}

/// `snap diff`.
#[derive(Clone, Debug, Serialize)]
pub struct DiffReport {
    pub from: Id,
    pub to: Id,
    pub changes: Vec<ChangeReport>,
}

/// Restore size of one snapshot, in `snap stats`.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotSize {
    pub id: Id,
    pub restore_bytes: u64,
}

/// Why prune keeps a snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct Kept {
    pub id: Id,
    pub reasons: Vec<String>,
}

/// One key of `snap key list`.
#[derive(Clone, Debug, Serialize)]
pub struct KeyReport {
    pub id: Id,
    /// The key that opened the repository in this run.
    pub current: bool,
    pub created: String,
    pub host: String,
    pub username: String,
    /// "full" or "write-only" (format-spec.md section 5); "unknown" for a
    /// key file no snap writes.
    pub kind: &'static str,
    pub kdf_memory_kib: u32,
    pub kdf_iterations: u32,
}

impl KeyReport {
    pub fn new(id: &Id, k: &crate::repo::KeyFile, current: Option<Id>) -> KeyReport {
        KeyReport {
            id: *id,
            current: Some(*id) == current,
            created: chrono::DateTime::from_timestamp_nanos(k.created_ns).to_rfc3339(),
            host: k.host.clone(),
            username: k.username.clone(),
            kind: k.access().map_or("unknown", |a| a.name()),
            kdf_memory_kib: k.kdf.memory_kib,
            kdf_iterations: k.kdf.iterations,
        }
    }
}

/// What `snap forget` removed, or with `--dry-run` would remove.
#[derive(Clone, Debug, Serialize)]
pub struct ForgetReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<Vec<Id>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_remove: Option<Vec<Id>>,
}
