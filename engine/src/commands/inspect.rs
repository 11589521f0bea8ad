//! Looking inside a repository without restoring: `ls`, `diff`, `find` and
//! `stats`. Trees are content-addressed, so identical subtrees are skipped
//! by id, which keeps `diff` proportional to what changed.

use crate::blob::BlobType;
use crate::error::Result;
use crate::id::Id;
use crate::indexed::Indexed;
use crate::repo::Repository;
use crate::snapshot::{Snapshot, SnapshotFilter};
use crate::tree::{Node, NodeKind, Tree};

/// One entry of a snapshot, with its absolute path as backed up.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: Vec<u8>,
    pub node: Node,
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = prefix.to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

/// Every entry of a snapshot at or below `under` (all when `None`), in
/// depth-first order.
pub fn ls(
    repo: &Repository,
    spec: &str,
    filter: &SnapshotFilter,
    under: Option<&[u8]>,
) -> Result<(Id, Snapshot, Vec<Entry>)> {
    repo.require_full("list snapshots' files")?;
    let repo = &repo.indexed()?;
    let (id, snapshot) = repo.find_snapshot(spec, filter)?;
    let under = under.map(|u| {
        if u.len() > 1 {
            u.strip_suffix(b"/").unwrap_or(u)
        } else {
            u
        }
    });
    let inside = |path: &[u8]| match under {
        None | Some(b"/") => true,
        Some(u) => path == u || (path.starts_with(u) && path.get(u.len()) == Some(&b'/')),
    };
    let out: Vec<Entry> = walk_sorted(repo, snapshot.tree)?
        .into_iter()
        .filter(|e| inside(&e.path))
        .collect();
    // `ls ID /mistyped` listed nothing and exited 0.
    if let Some(u) = under
        && out.is_empty()
        && u != b"/"
    {
        return Err(crate::Error::InvalidArgument(format!(
            "{} is not in snapshot {} (its paths: {})",
            String::from_utf8_lossy(u),
            id.short(),
            snapshot.paths_lossy().join(", ")
        )));
    }
    Ok((id, snapshot, out))
}

/// The entries of one directory of a snapshot (`/` for its top), in name
/// order: what a file browser shows. Only the trees on the way down are
/// read, where `ls` walks the whole snapshot, so a click in a snapshot of
/// a home directory costs a few tree reads, not all of them.
pub fn list_dir(repo: &Repository, spec: &str, dir: &[u8]) -> Result<(Id, Snapshot, Vec<Entry>)> {
    repo.require_full("list snapshots' files")?;
    let repo = &repo.indexed()?;
    let (id, snapshot) = repo.find_snapshot(spec, &SnapshotFilter::default())?;
    let trimmed = if dir.len() > 1 {
        dir.strip_suffix(b"/").unwrap_or(dir)
    } else {
        dir
    };
    let tree = if trimmed == b"/" || trimmed.is_empty() {
        snapshot.tree
    } else {
        match crate::walk::node_at(repo, snapshot.tree, trimmed)? {
            Some(n) if n.kind == NodeKind::Dir => n.subtree.ok_or_else(|| {
                crate::Error::corrupt(
                    format!("snapshot {}", id.short()),
                    format!("directory {} has no tree", String::from_utf8_lossy(trimmed)),
                )
            })?,
            Some(_) => {
                return Err(crate::Error::InvalidArgument(format!(
                    "{} in snapshot {} is not a directory",
                    String::from_utf8_lossy(trimmed),
                    id.short()
                )));
            }
            None => {
                return Err(crate::Error::InvalidArgument(format!(
                    "{} is not in snapshot {} (its paths: {})",
                    String::from_utf8_lossy(trimmed),
                    id.short(),
                    snapshot.paths_lossy().join(", ")
                )));
            }
        }
    };
    let prefix: &[u8] = if trimmed == b"/" { b"" } else { trimmed };
    let entries = repo
        .load_tree(&tree)?
        .nodes
        .into_iter()
        .map(|node| Entry {
            path: join(prefix, &node.name),
            node,
        })
        .collect();
    Ok((id, snapshot, entries))
}

/// Every node below `tree`, depth first, children right after their
/// directory, in name order. Trees are loaded breadth first in batches
/// (see `Indexed::load_trees`) and put in order after; the first tree
/// that cannot be loaded is the error.
pub(crate) fn walk_sorted(repo: &Indexed, tree: Id) -> Result<Vec<Entry>> {
    let mut all = Vec::new();
    let mut failure = None;
    crate::walk::walk(
        repo,
        tree,
        None,
        &mut |path, node| {
            all.push(Entry {
                path: path.to_vec(),
                node: node.clone(),
            })
        },
        &mut |_, e| {
            failure.get_or_insert(e);
        },
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    // Component by component: "/a/x" sorts before "/a.c", as in a walk.
    fn parts(p: &[u8]) -> impl Iterator<Item = &[u8]> {
        p.split(|&c| c == b'/')
    }
    all.sort_by(|a, b| parts(&a.path).cmp(parts(&b.path)));
    Ok(all)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    /// Content, kind or link target differ.
    Modified,
    /// Same content; mode, owner or times differ.
    Metadata,
}

impl ChangeKind {
    /// The word `diff --json` and the UI use.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
            ChangeKind::Metadata => "metadata",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: Vec<u8>,
}

fn same_content(a: &Node, b: &Node) -> bool {
    a.kind == b.kind && a.content == b.content && a.link_target == b.link_target && a.rdev == b.rdev
}

fn same_metadata(a: &Node, b: &Node) -> bool {
    a.mode == b.mode
        && a.uid == b.uid
        && a.gid == b.gid
        && a.mtime_ns == b.mtime_ns
        && a.xattrs == b.xattrs
}

/// What changed from snapshot `a` to snapshot `b`.
pub fn diff(repo: &Repository, a: &str, b: &str) -> Result<(Id, Id, Vec<Change>)> {
    repo.require_full("compare snapshots' files")?;
    let repo = &repo.indexed()?;
    let (ia, sa) = repo.find_snapshot(a, &SnapshotFilter::default())?;
    let (ib, sb) = repo.find_snapshot(b, &SnapshotFilter::default())?;
    let mut out = Vec::new();
    diff_trees(repo, Some(sa.tree), Some(sb.tree), &[], &mut out)?;
    Ok((ia, ib, out))
}

fn load(repo: &Indexed, id: Option<Id>) -> Result<Tree> {
    match id {
        Some(id) => repo.load_tree(&id),
        None => Ok(Tree::default()),
    }
}

/// A node and every path below it, as added or removed.
fn whole(
    repo: &Indexed,
    n: &Node,
    prefix: &[u8],
    kind: ChangeKind,
    out: &mut Vec<Change>,
) -> Result<()> {
    let path = join(prefix, &n.name);
    out.push(Change {
        kind,
        path: path.clone(),
    });
    all_below(repo, n.subtree, &path, kind, out)
}

/// Every path below a subtree, as added or removed.
fn all_below(
    repo: &Indexed,
    tree: Option<Id>,
    prefix: &[u8],
    kind: ChangeKind,
    out: &mut Vec<Change>,
) -> Result<()> {
    for n in load(repo, tree)?.nodes {
        whole(repo, &n, prefix, kind, out)?;
    }
    Ok(())
}

fn diff_trees(
    repo: &Indexed,
    a: Option<Id>,
    b: Option<Id>,
    prefix: &[u8],
    out: &mut Vec<Change>,
) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let (ta, tb) = (load(repo, a)?, load(repo, b)?);
    let (mut i, mut j) = (0, 0);
    while i < ta.nodes.len() || j < tb.nodes.len() {
        let order = match (ta.nodes.get(i), tb.nodes.get(j)) {
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                whole(repo, &ta.nodes[i], prefix, ChangeKind::Removed, out)?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                whole(repo, &tb.nodes[j], prefix, ChangeKind::Added, out)?;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (&ta.nodes[i], &tb.nodes[j]);
                let path = join(prefix, &x.name);
                if x.kind == NodeKind::Dir && y.kind == NodeKind::Dir {
                    if !same_metadata(x, y) {
                        out.push(Change {
                            kind: ChangeKind::Metadata,
                            path: path.clone(),
                        });
                    }
                    diff_trees(repo, x.subtree, y.subtree, &path, out)?;
                } else if !same_content(x, y) {
                    out.push(Change {
                        kind: ChangeKind::Modified,
                        path: path.clone(),
                    });
                    all_below(repo, x.subtree, &path, ChangeKind::Removed, out)?;
                    all_below(repo, y.subtree, &path, ChangeKind::Added, out)?;
                } else if !same_metadata(x, y) {
                    out.push(Change {
                        kind: ChangeKind::Metadata,
                        path,
                    });
                }
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

/// Entries matching `pattern` in every snapshot that `filter` selects, as
/// (snapshot id, snapshot, entry), oldest snapshot first.
pub fn find(
    repo: &Repository,
    pattern: &str,
    filter: &SnapshotFilter,
) -> Result<Vec<(Id, Snapshot, Entry)>> {
    repo.require_full("search snapshots for files")?;
    // The syntax of --exclude, so that a pattern found here excludes the
    // same files from a backup.
    let pattern = crate::pattern::Patterns::new(&[pattern.to_string()], "find")?;
    let repo = &repo.indexed()?;
    let mut out = Vec::new();
    for (id, s) in repo
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| filter.matches(s))
    {
        let hits = walk_sorted(repo, s.tree)?
            .into_iter()
            .filter(|e| pattern.matches(&crate::sys::bytes_path(&e.path)));
        out.extend(hits.into_iter().map(|e| (id, s.clone(), e)));
    }
    Ok(out)
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Stats {
    pub snapshots: u64,
    pub packs: u64,
    /// Bytes of all packs: what the data costs in storage.
    pub stored_bytes: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Plaintext bytes of all distinct data blobs.
    pub unique_bytes: u64,
    /// Plaintext bytes of the distinct data blobs, as stored (compressed,
    /// with encryption overhead).
    pub unique_stored_bytes: u64,
    /// What restoring every snapshot would write.
    pub restore_bytes: u64,
    /// Restore size of each snapshot, oldest first.
    pub per_snapshot: Vec<crate::report::SnapshotSize>,
}

/// `snap stats`: the numbers, and the ratios they give.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StatsReport<'a> {
    #[serde(flatten)]
    pub stats: &'a Stats,
    pub dedup_ratio: f64,
    pub compression_ratio: f64,
}

impl crate::report::DiffReport {
    pub fn new(from: Id, to: Id, changes: &[Change]) -> crate::report::DiffReport {
        crate::report::DiffReport {
            from,
            to,
            changes: changes
                .iter()
                .map(|c| crate::report::ChangeReport {
                    change: c.kind.name(),
                    path: String::from_utf8_lossy(&c.path).into_owned(),
                })
                .collect(),
        }
    }
}

impl Stats {
    /// How many times over deduplication saves: restore size per unique byte.
    pub fn report(&self) -> StatsReport<'_> {
        StatsReport {
            stats: self,
            dedup_ratio: self.dedup_ratio(),
            compression_ratio: self.compression_ratio(),
        }
    }

    pub fn dedup_ratio(&self) -> f64 {
        if self.unique_bytes == 0 {
            1.0
        } else {
            self.restore_bytes as f64 / self.unique_bytes as f64
        }
    }

    /// Plaintext per stored byte of data.
    pub fn compression_ratio(&self) -> f64 {
        if self.unique_stored_bytes == 0 {
            1.0
        } else {
            self.unique_bytes as f64 / self.unique_stored_bytes as f64
        }
    }
}

pub fn stats(repo: &Repository) -> Result<Stats> {
    repo.require_full("read snapshots for statistics")?;
    let repo = &repo.indexed()?;
    let index = repo.index();
    let mut st = Stats {
        packs: index.pack_count() as u64,
        stored_bytes: index.packs().map(|(_, _, size)| size).sum(),
        ..Default::default()
    };
    // The index holds each (type, id) once.
    for (_, loc) in index.blobs() {
        match loc.ty {
            BlobType::Data => {
                st.data_blobs += 1;
                st.unique_bytes += loc.raw_length as u64;
                st.unique_stored_bytes += loc.length as u64;
            }
            BlobType::Tree => st.tree_blobs += 1,
        }
    }
    let snapshots = repo.snapshots()?;
    st.snapshots = snapshots.len() as u64;
    for (id, s) in &snapshots {
        let size = s.summary.bytes_total;
        st.restore_bytes += size;
        st.per_snapshot.push(crate::report::SnapshotSize {
            id: *id,
            restore_bytes: size,
        });
    }
    Ok(st)
}
