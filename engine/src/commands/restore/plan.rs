//! What a restore will do to the target, decided before anything is
//! touched. Each entry of the snapshot is created, replaced, updated
//! (metadata only), kept, or skipped by the `--overwrite` policy; with
//! `--delete`, each entry of the target that the snapshot lacks, inside
//! what the restore covers, is deleted. `--dry-run` shows this plan, the
//! undo snapshot saves what it would change, and the writer carries it out.
//!
//! The target is read without following symbolic links: a link in the
//! target is an entry like any other, replaced or deleted itself, never
//! the place it points to.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{FileType, Metadata};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::indexed::Indexed;
use crate::pattern::Patterns;
use crate::repo::Repository;
use crate::report::EntryKind;
use crate::snapshot::Snapshot;
use crate::sys;
use crate::tree::{Node, NodeKind};
use crate::walk::node_at;

use super::{Overwrite, RestoreOptions};

/// What happens to one path. Reports name it in lower case (`"create"`),
/// and maps of changes are ordered by that name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Nothing is there: created.
    Create,
    /// Something else is there: rewritten, or removed to make room.
    Replace,
    /// The content is the snapshot's; permissions or time are set again.
    Update,
    /// Already exactly the snapshot's.
    Keep,
    /// Left as it is, by the `--overwrite` policy.
    Skip,
    /// In the target but not in the snapshot: deleted (`--delete`).
    Delete,
}

impl Change {
    /// Every change, in the order the CLI and the page list them.
    pub const ALL: [Change; 6] = [
        Change::Create,
        Change::Replace,
        Change::Update,
        Change::Delete,
        Change::Skip,
        Change::Keep,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Replace => "replace",
            Change::Update => "update",
            Change::Keep => "keep",
            Change::Skip => "skip",
            Change::Delete => "delete",
        }
    }
}

// Ordered as its name, so that a map keyed by changes serializes in the
// order it always had.
impl Ord for Change {
    fn cmp(&self, other: &Change) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl PartialOrd for Change {
    fn partial_cmp(&self, other: &Change) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of the snapshot and its fate.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Where it goes in the target.
    pub path: PathBuf,
    /// Its path in the snapshot, absolute as backed up.
    pub logical: Vec<u8>,
    pub node: Node,
    pub change: Change,
    /// A directory of the target is in its way: removed first (only with
    /// `--delete`, which covers it).
    pub dir_in_way: bool,
}

/// An entry of the target that the snapshot lacks.
#[derive(Clone, Debug)]
pub struct Extra {
    pub path: PathBuf,
    pub dir: bool,
    /// Files (all but directories) it holds, itself included, and their bytes.
    pub files: u64,
    pub bytes: u64,
}

/// Entries and bytes of one kind of change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub snapshot_id: Id,
    pub snapshot: Snapshot,
    pub target: PathBuf,
    /// The folders (or single file) of the target that the restore covers:
    /// all that `--delete` may clean and the undo snapshot saves.
    pub covered: Vec<PathBuf>,
    /// Directories, parents before children.
    pub dirs: Vec<Entry>,
    pub files: Vec<Entry>,
    /// Symbolic links, fifos and devices.
    pub others: Vec<Entry>,
    /// With `ID:PATH` of a directory: that directory, whose metadata the
    /// target takes once everything below is in place.
    pub root: Option<Node>,
    /// Deleted after every file is restored (`--delete`).
    pub extras: Vec<Extra>,
    /// Files in the covered part of the target before the restore.
    pub existing_files: u64,
    /// Of those, files the restore deletes, in extras or in directories
    /// that a snapshot entry replaces.
    pub files_deleted: u64,
    /// What cannot be restored as asked; nothing has been touched.
    pub errors: Vec<String>,
    /// What is restored otherwise than recorded: names this system cannot
    /// hold, escaped (Windows).
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.dirs.iter().chain(&self.files).chain(&self.others)
    }

    /// Entries and bytes per change (bytes are file sizes).
    pub(crate) fn tally(&self) -> HashMap<Change, Tally> {
        let mut t: HashMap<Change, Tally> = HashMap::new();
        for e in self.entries() {
            let x = t.entry(e.change).or_default();
            x.entries += 1;
            if e.node.kind == NodeKind::File {
                x.bytes += e.node.size;
            }
        }
        for e in &self.extras {
            let x = t.entry(Change::Delete).or_default();
            x.entries += 1;
            x.bytes += e.bytes;
        }
        t
    }

    /// Whether anything that exists is changed or deleted: only then is an
    /// undo snapshot worth taking.
    pub(crate) fn touches_existing(&self) -> bool {
        !self.extras.is_empty()
            || self
                .entries()
                .any(|e| matches!(e.change, Change::Replace | Change::Update))
    }
}

/// One change of a plan, as `--dry-run --json` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ChangeReport {
    pub change: Change,
    pub path: String,
    pub kind: EntryKind,
    pub bytes: u64,
}

/// A plan as `--dry-run --json` prints it: every path with its change
/// (kept ones too), and entries and bytes per change.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlanReport {
    pub dry_run: bool,
    pub snapshot_id: Id,
    pub target: PathBuf,
    pub changes: Vec<ChangeReport>,
    pub totals: std::collections::BTreeMap<Change, Tally>,
    pub existing_files: u64,
    pub files_deleted: u64,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn report(&self) -> PlanReport {
        let mut changes: Vec<ChangeReport> = self
            .entries()
            .map(|e| ChangeReport {
                change: e.change,
                path: e.path.display().to_string(),
                kind: e.node.kind.into(),
                bytes: e.node.size,
            })
            .chain(self.extras.iter().map(|x| ChangeReport {
                change: Change::Delete,
                path: x.path.display().to_string(),
                kind: if x.dir {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                },
                bytes: x.bytes,
            }))
            .collect();
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        let tally = self.tally();
        let totals = Change::ALL
            .into_iter()
            .map(|c| (c, tally.get(&c).copied().unwrap_or_default()))
            .collect();
        PlanReport {
            dry_run: true,
            snapshot_id: self.snapshot_id,
            target: self.target.clone(),
            changes,
            totals,
            existing_files: self.existing_files,
            files_deleted: self.files_deleted,
            errors: self.errors.clone(),
            warnings: self.warnings.clone(),
        }
    }
}

/// A directory of the snapshot to plan, with its place in the target.
struct Pending {
    /// None: an empty directory (a tree without a subtree id).
    tree: Option<Id>,
    path: PathBuf,
    logical: Vec<u8>,
    /// The target has a real directory here (not a link to one).
    exists: bool,
    /// Inside what the restore covers (`--delete` cleans only there).
    covered: bool,
    /// An include pattern matched it or a directory above it.
    included: bool,
}

/// `/` then `a`: `/a`; a root given as empty.
fn join(logical: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(logical.len() + 1 + name.len());
    out.extend_from_slice(logical.strip_suffix(b"/").unwrap_or(logical));
    out.push(b'/');
    out.extend_from_slice(name);
    out
}

fn at_or_below(path: &[u8], root: &[u8]) -> bool {
    root == b"/" || path == root || (path.starts_with(root) && path.get(root.len()) == Some(&b'/'))
}

fn as_path(logical: &[u8]) -> std::borrow::Cow<'_, Path> {
    sys::bytes_path(logical)
}

/// Files and bytes below `path` (itself included), links not followed.
/// A directory that cannot be listed to the end is an error: what cannot
/// be counted cannot be weighed before deleting, nor saved by the undo
/// snapshot.
fn count_files(path: &Path, is_dir: bool) -> std::io::Result<(u64, u64)> {
    if !is_dir {
        let bytes = std::fs::symlink_metadata(path)?.len();
        return Ok((1, bytes));
    }
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                files += 1;
                bytes += e.metadata()?.len();
            }
        }
    }
    Ok((files, bytes))
}

/// The entries of a directory of the target, links not followed, by the
/// key the file system matches names with ([`sys::name_key`]): on a
/// case-insensitive one, `README.TXT` is what the snapshot's `readme.txt`
/// replaces, not an extra that `--delete` would remove after it.
fn read_target_dir(path: &Path) -> std::io::Result<HashMap<OsString, (OsString, FileType)>> {
    let mut out = HashMap::new();
    for e in std::fs::read_dir(path)? {
        let e = e?;
        let name = e.file_name();
        out.insert(sys::name_key(&name), (name, e.file_type()?));
    }
    Ok(out)
}

/// Permission bits match, and owners too where they are restored (as
/// root).
fn same_mode_and_owners(m: &Metadata, node: &Node, as_root: bool) -> bool {
    let (mode, uid, gid) = sys::mode_and_owners(m);
    mode == node.mode & 0o7777 && (!as_root || (uid == node.uid && gid == node.gid))
}

/// Decides, reading the snapshot's trees and the target, what the restore
/// will do. Touches nothing.
pub fn plan(repo: &Indexed, opts: &RestoreOptions) -> Result<Plan> {
    repo.require_full("restore files")?;
    let (snapshot_id, snapshot) = repo.find_snapshot(&opts.snapshot, &opts.filter)?;
    let target = resolve_target(opts)?;
    let mut planner = Planner {
        opts,
        includes: Patterns::new(&opts.include, "include")?,
        excludes: Patterns::new(&opts.exclude, "exclude")?,
        plan: Plan {
            snapshot_id,
            snapshot: snapshot.clone(),
            target,
            covered: Vec::new(),
            dirs: Vec::new(),
            files: Vec::new(),
            others: Vec::new(),
            root: None,
            extras: Vec::new(),
            existing_files: 0,
            files_deleted: 0,
            errors: Vec::new(),
            warnings: Vec::new(),
        },
        roots: Vec::new(),
        hits: vec![false; opts.include.len()],
        included_dirs: std::collections::HashSet::new(),
    };
    let start: Vec<Pending> = planner.start(repo)?.into_iter().collect();
    spares_the_repository(repo, &planner.plan)?;
    crate::walk::walk_dirs(
        repo,
        start,
        |d| d.tree,
        |dir, tree| match tree {
            Ok(t) => planner.visit(&dir, t),
            Err(e) => {
                planner.plan.errors.push(format!(
                    "{}: directory cannot be read from the repository: {e}",
                    dir.path.display()
                ));
                Vec::new()
            }
        },
    )?;
    planner.finish(repo)
}

/// Refuses a restore that would write into the repository it reads from,
/// or cover its folder (where `--delete` deletes it and a restore without
/// overwrites it with whatever the snapshot held there). A restore of a
/// home folder into its place, with the repository in the home's data
/// folder, once deleted the repository, and its undo snapshot with it.
fn spares_the_repository(repo: &Indexed, plan: &Plan) -> Result<()> {
    let Some(dir) = repo.repository().backend().local_dir() else {
        return Ok(());
    };
    // Into the repository, or over it: the target alone may be above it
    // (a restore of other folders into `/`), what the restore covers not.
    let inside = plan.target.starts_with(dir).then_some(&plan.target);
    let over = || {
        plan.covered
            .iter()
            .find(|p| p.starts_with(dir) || dir.starts_with(p))
    };
    if let Some(p) = inside.or_else(over) {
        return Err(Error::InvalidArgument(format!(
            "this restore would write into {}, where the repository it reads from is ({}): it \
             would overwrite or delete the backups themselves. Nothing was changed; restore \
             into another folder",
            p.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// The target as the kernel will resolve it. `dir/` names what `dir` links
/// to, so it is cleaned first and a link is seen as one, which `--delete`
/// refuses; then links and `..` are resolved, so that the undo snapshot
/// saves, and its command names, the folder written to (`link/../t` once
/// saved another one).
fn resolve_target(opts: &RestoreOptions) -> Result<PathBuf> {
    let target: PathBuf = opts.target.components().collect();
    match std::fs::symlink_metadata(&target) {
        Ok(m) if m.file_type().is_symlink() && opts.delete => {
            let to = std::fs::read_link(&target).unwrap_or_default();
            return Err(Error::InvalidArgument(format!(
                "the target {} is a symbolic link (to {}): with --delete, give the folder \
                 itself, so that what is deleted is plain to see",
                target.display(),
                to.display()
            )));
        }
        Ok(_) if !target.is_dir() => {
            return Err(Error::InvalidArgument(format!(
                "the target {} exists and is not a directory",
                target.display()
            )));
        }
        _ => {}
    }
    match std::fs::canonicalize(&target) {
        Ok(real) => Ok(real),
        Err(_) => std::path::absolute(&target).map_err(|e| Error::io(&target, e)),
    }
}

/// The state of one planning walk.
struct Planner<'a> {
    opts: &'a RestoreOptions,
    includes: Patterns,
    excludes: Patterns,
    plan: Plan,
    /// Snapshot paths under which the target is covered, in absolute mode.
    roots: Vec<Vec<u8>>,
    /// Which include patterns matched something.
    hits: Vec<bool>,
    /// Directories an include pattern matched (or one above them).
    included_dirs: std::collections::HashSet<Vec<u8>>,
}

impl Planner<'_> {
    /// Where the walk starts: with `ID:PATH`, PATH's directory straight in
    /// the target (or its one file, planned here); otherwise the root, with
    /// the snapshot's paths recreated below the target.
    fn start(&mut self, repo: &Indexed) -> Result<Option<Pending>> {
        let snapshot = self.plan.snapshot.clone();
        let target = self.plan.target.clone();
        let exists = target.is_dir();
        let Some(p) = &self.opts.path else {
            self.roots = snapshot.paths.clone();
            for r in &self.roots {
                let rel = r.strip_prefix(b"/").unwrap_or(r);
                self.plan.covered.push(target.join(sys::bytes_path(rel)));
            }
            return Ok(Some(Pending {
                tree: Some(snapshot.tree),
                path: target,
                logical: b"/".to_vec(),
                exists,
                covered: self.roots.iter().any(|r| r.as_slice() == b"/"),
                included: self.includes.is_empty(),
            }));
        };
        let logical = &*sys::path_bytes(p);
        let logical = if logical.len() > 1 {
            logical.strip_suffix(b"/").unwrap_or(logical)
        } else {
            logical
        };
        if logical == b"/" {
            self.plan.covered.push(target.clone());
            return Ok(Some(Pending {
                tree: Some(snapshot.tree),
                path: target,
                logical: b"/".to_vec(),
                exists,
                covered: true,
                included: self.includes.is_empty(),
            }));
        }
        let Some(node) = node_at(repo, snapshot.tree, logical)? else {
            return Err(Error::InvalidArgument(format!(
                "{} is not in snapshot {} (its paths: {})",
                p.display(),
                self.plan.snapshot_id.short(),
                snapshot.paths_lossy().join(", ")
            )));
        };
        let included = self.includes.is_empty() || self.include_hit(logical);
        if node.kind == NodeKind::Dir {
            self.plan.covered.push(target.clone());
            self.plan.root = Some(node.clone());
            return Ok(Some(Pending {
                tree: node.subtree,
                path: target,
                logical: logical.to_vec(),
                exists,
                covered: true,
                included,
            }));
        }
        // A single file: into the target, under its own name.
        let path = target.join(sys::os_name(&node.name));
        self.plan.covered.push(path.clone());
        let existing = if exists {
            read_target_dir(&target)
                .map_err(|e| Error::io(&target, e))?
                .remove(&sys::name_key(&sys::os_name(&node.name)))
                .map(|(_, kind)| kind)
        } else {
            None
        };
        if included {
            self.entry(path, logical.to_vec(), node, existing, false);
        }
        Ok(None)
    }

    /// One directory of the snapshot against the target: its entries
    /// planned, what the target has beside them noted; the directories
    /// below it to visit next.
    fn visit(&mut self, dir: &Pending, tree: crate::tree::Tree) -> Vec<Pending> {
        let mut next = Vec::new();
        let mut existing = if dir.exists {
            match read_target_dir(&dir.path) {
                Ok(m) => m,
                Err(e) => {
                    self.plan
                        .errors
                        .push(format!("{}: cannot be listed: {e}", dir.path.display()));
                    return next;
                }
            }
        } else {
            HashMap::new()
        };
        for node in tree.nodes {
            let os = sys::os_name(&node.name);
            let escaped = matches!(os, std::borrow::Cow::Owned(_));
            let name = os.into_owned();
            if escaped {
                self.plan.warnings.push(format!(
                    "{}: the name {:?} is not allowed here; restored as {:?}",
                    dir.path.display(),
                    String::from_utf8_lossy(&node.name),
                    name
                ));
            }
            let logical = join(&dir.logical, &node.name);
            let path = dir.path.join(&name);
            let in_the_way = existing.remove(&sys::name_key(&name)).map(|(_, kind)| kind);
            // A pattern may name the path in the snapshot or in the target.
            if self.excludes.matches(&as_path(&logical)) || self.excludes.matches(&path) {
                continue;
            }
            let covered = dir.covered || self.roots.iter().any(|r| at_or_below(&logical, r));
            let included = dir.included || self.include_hit(&logical);
            if node.kind == NodeKind::Dir {
                next.extend(self.dir_entry(path, logical, node, in_the_way, covered, included));
            } else if included {
                self.entry(path, logical, node, in_the_way, covered);
            } else if in_the_way.is_some() && covered {
                self.plan.existing_files += 1;
            }
        }
        if dir.covered && dir.exists {
            self.extras(dir, existing);
        }
        next
    }

    /// What is in the target only: counted, and with `--delete` deleted.
    fn extras(&mut self, dir: &Pending, existing: HashMap<OsString, (OsString, FileType)>) {
        for (name, kind) in existing.into_values() {
            let logical = join(&dir.logical, sys::name_bytes(&name));
            let path = dir.path.join(&name);
            if self.excludes.matches(&as_path(&logical)) || self.excludes.matches(&path) {
                continue;
            }
            let (files, bytes) = match count_files(&path, kind.is_dir()) {
                Ok(c) => c,
                Err(e) => {
                    self.plan.errors.push(format!(
                        "{}: cannot be read to the end ({e}), so it is not deleted",
                        path.display()
                    ));
                    continue;
                }
            };
            self.plan.existing_files += files;
            if self.opts.delete && (dir.included || self.include_hit(&logical)) {
                self.plan.files_deleted += files;
                self.plan.extras.push(Extra {
                    path,
                    dir: kind.is_dir(),
                    files,
                    bytes,
                });
            }
        }
    }

    /// After the walk: includes that named nothing are an error; only the
    /// directories needed for what is included stay; contents compared.
    fn finish(self, repo: &Indexed) -> Result<Plan> {
        let mut plan = self.plan;
        if let Some(i) = self.hits.iter().position(|hit| !hit) {
            return Err(Error::InvalidArgument(format!(
                "--include {} names nothing in snapshot {} (its paths: {})",
                self.opts.include[i],
                plan.snapshot_id.short(),
                plan.snapshot.paths_lossy().join(", ")
            )));
        }
        if !self.includes.is_empty() {
            keep_needed_dirs(&mut plan, &self.included_dirs);
        }
        compare_contents(repo, &mut plan);
        plan.extras.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(plan)
    }

    /// Whether an include pattern matches `logical`; notes which did.
    fn include_hit(&mut self, logical: &[u8]) -> bool {
        let m = self.includes.matching(&as_path(logical));
        for &i in &m {
            self.hits[i] = true;
        }
        !m.is_empty()
    }

    /// A directory of the snapshot; what to descend into, if anything.
    fn dir_entry(
        &mut self,
        path: PathBuf,
        logical: Vec<u8>,
        node: Node,
        in_the_way: Option<FileType>,
        covered: bool,
        included: bool,
    ) -> Option<Pending> {
        if included {
            self.included_dirs.insert(logical.clone());
        }
        let change = match in_the_way {
            None => Change::Create,
            Some(t) if t.is_dir() => Change::Keep,
            Some(_) if self.opts.overwrite == Overwrite::Never => {
                if covered {
                    self.plan.existing_files += 1;
                }
                return None;
            }
            // Above what the restore covers, nothing is replaced: it is in
            // no undo snapshot.
            Some(_) if !covered => {
                self.plan.errors.push(format!(
                    "{}: not a directory, where the snapshot has one on the way to what it \
                     restores; move it away first",
                    path.display()
                ));
                return None;
            }
            Some(_) => {
                self.plan.existing_files += 1;
                self.plan.files_deleted += 1;
                Change::Replace
            }
        };
        let pending = Pending {
            tree: node.subtree,
            path: path.clone(),
            logical: logical.clone(),
            exists: change == Change::Keep,
            covered,
            included,
        };
        self.plan.dirs.push(Entry {
            path,
            logical,
            node,
            change,
            dir_in_way: false,
        });
        Some(pending)
    }

    /// A file, link or special file of the snapshot.
    fn entry(
        &mut self,
        path: PathBuf,
        logical: Vec<u8>,
        node: Node,
        in_the_way: Option<FileType>,
        covered: bool,
    ) {
        let mut dir_in_way = false;
        let change = match in_the_way {
            None => Change::Create,
            Some(t) => {
                let inside = if t.is_dir() {
                    match count_files(&path, true) {
                        Ok((n, _)) => n,
                        Err(e) => {
                            self.plan.errors.push(format!(
                                "{}: a directory in the way that cannot be read to the end \
                                 ({e})",
                                path.display()
                            ));
                            return;
                        }
                    }
                } else {
                    1
                };
                if covered {
                    self.plan.existing_files += inside;
                }
                if self.opts.overwrite == Overwrite::Never {
                    Change::Skip
                } else if t.is_dir() {
                    if !self.opts.delete {
                        self.plan.errors.push(format!(
                            "{}: a directory is in the way (--delete replaces it)",
                            path.display()
                        ));
                        return;
                    }
                    dir_in_way = true;
                    if covered {
                        self.plan.files_deleted += inside;
                    }
                    Change::Replace
                } else {
                    let meta = std::fs::symlink_metadata(&path).ok();
                    self.existing_change(&path, &node, meta.as_ref())
                }
            }
        };
        let entry = Entry {
            path,
            logical,
            node,
            change,
            dir_in_way,
        };
        if entry.node.kind == NodeKind::File {
            self.plan.files.push(entry);
        } else {
            self.plan.others.push(entry);
        }
    }

    /// The change for a non-directory in the place of `node`, before any
    /// contents are compared (files of the right size are marked Keep here
    /// and verified by [`compare_contents`]).
    fn existing_change(&self, path: &Path, node: &Node, meta: Option<&Metadata>) -> Change {
        let Some(m) = meta else {
            return Change::Create;
        };
        let t = m.file_type();
        match node.kind {
            NodeKind::File if t.is_file() => {
                if self.opts.overwrite == Overwrite::IfNewer && sys::mtime_ns(m) > node.mtime_ns {
                    Change::Skip
                } else if self.opts.overwrite == Overwrite::Always || m.len() != node.size {
                    Change::Replace
                } else {
                    Change::Keep
                }
            }
            NodeKind::Symlink if t.is_symlink() => match std::fs::read_link(path) {
                Ok(to) if *sys::path_bytes(&to) == node.link_target[..] => {
                    if sys::mtime_ns(m) == node.mtime_ns {
                        Change::Keep
                    } else {
                        Change::Update
                    }
                }
                _ => Change::Replace,
            },
            NodeKind::Fifo if sys::node_kind(m) == Some(NodeKind::Fifo) => Change::Keep,
            NodeKind::CharDevice | NodeKind::BlockDevice
                if sys::node_kind(m) == Some(node.kind) && sys::rdev(m) == node.rdev =>
            {
                Change::Keep
            }
            _ => Change::Replace,
        }
    }
}

/// With include patterns, a directory is restored if it was included
/// itself, or lies on the way to something included.
fn keep_needed_dirs(plan: &mut Plan, included_dirs: &std::collections::HashSet<Vec<u8>>) {
    let mut needed: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    let mut note = |logical: &[u8]| {
        let mut p = logical;
        while let Some(i) = p.iter().rposition(|&b| b == b'/') {
            p = &p[..i];
            if !needed.insert(p.to_vec()) {
                break;
            }
        }
    };
    for e in plan.files.iter().chain(&plan.others) {
        note(&e.logical);
    }
    for d in included_dirs {
        note(d);
    }
    plan.dirs
        .retain(|d| needed.contains(&d.logical) || included_dirs.contains(&d.logical));
}

/// Files of the right size whose contents are the snapshot's are kept (or
/// only their metadata updated); others are replaced. Read in parallel and
/// hashed chunk by chunk against the snapshot's ids: nothing is downloaded.
fn compare_contents(repo: &Indexed, plan: &mut Plan) {
    let index = repo.index();
    let as_root = crate::sys::is_root();
    let trust = super::trust(repo);
    plan.files.par_iter_mut().for_each(|e| {
        if e.change != Change::Keep {
            return;
        }
        let lengths: Option<Vec<(u32, Id)>> = e
            .node
            .content
            .iter()
            .map(|id| index.get(BlobType::Data, id).map(|l| (l.raw_length, *id)))
            .collect();
        // One lstat for the size check and the metadata compare.
        let meta = std::fs::symlink_metadata(&e.path);
        let same = lengths.is_some_and(|blobs| {
            meta.as_ref()
                .is_ok_and(|m| same_content(repo, &e.path, m, &blobs, e.node.size))
        });
        e.change = if !same {
            Change::Replace
        } else {
            match meta {
                // Another name may be outside the target: setting this
                // inode's metadata would change that file too. Written anew,
                // the link is broken instead.
                Ok(m) if sys::links(&m, &e.path) > 1 && e.node.links <= 1 => Change::Replace,
                Ok(m)
                    if sys::mtime_ns(&m) == e.node.mtime_ns
                        && same_mode_and_owners(&m, &e.node, as_root)
                        && crate::sys::xattrs_match(&e.path, &e.node, trust) =>
                {
                    Change::Keep
                }
                _ => Change::Update,
            }
        };
    });
}

/// Whether `path` holds exactly the snapshot's content: same size, and
/// every chunk hashes to its id.
fn same_content(
    repo: &Repository,
    path: &Path,
    meta: &Metadata,
    blobs: &[(u32, Id)],
    size: u64,
) -> bool {
    use std::io::Read;
    if !meta.is_file() || meta.len() != size {
        return false;
    }
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut buf = Vec::new();
    for (len, id) in blobs {
        buf.resize(*len as usize, 0);
        if file.read_exact(&mut buf).is_err() || repo.codec().id(&buf) != *id {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--dry-run --json` names changes and kinds in words, and lists the
    /// totals in the order of those words, as it always has.
    #[test]
    fn reports_name_changes_and_kinds_in_words() {
        for c in Change::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.name());
        }
        let totals: std::collections::BTreeMap<Change, Tally> = Change::ALL
            .into_iter()
            .map(|c| (c, Tally::default()))
            .collect();
        let json = serde_json::to_string(&totals).unwrap();
        let order: Vec<&str> = totals.keys().map(|c| c.name()).collect();
        assert_eq!(
            order,
            ["create", "delete", "keep", "replace", "skip", "update"],
            "{json}"
        );
        assert!(json.starts_with(r#"{"create":"#), "{json}");
        for k in [
            NodeKind::File,
            NodeKind::Dir,
            NodeKind::Symlink,
            NodeKind::Fifo,
            NodeKind::CharDevice,
            NodeKind::BlockDevice,
        ] {
            let k = EntryKind::from(k);
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
    }
}
