//! `snap restore`: make a folder match a snapshot, in stages.
//!
//! 1. [`plan`] reads the snapshot's trees and the target and decides, for
//!    every path, what happens (create, replace, update, keep, skip,
//!    delete). It touches nothing; `--dry-run` stops here.
//! 2. The undo snapshot: before anything that exists is replaced or
//!    deleted, the folders the restore covers are backed up as they are,
//!    incrementally, as this device, tagged `pre-restore`.
//! 3. [`write`] fetches each pack once and writes files under partial
//!    names, renamed into place when complete.
//! 4. With `--delete`, what the snapshot lacks is deleted, only after
//!    every file is complete, and never when any failed.
//! 5. Metadata: links and special files, then directories deepest first.

pub mod plan;
pub mod write;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::indexed::Indexed;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::SnapshotFilter;
use crate::sys;
use crate::tree::NodeKind;

pub use plan::{Change, Entry, Extra, Plan, Tally, plan};

/// When an existing file is rewritten.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Every file.
    Always,
    /// Unless its size, time and contents are the snapshot's.
    #[default]
    IfChanged,
    /// Unless it is newer than the snapshot's (else as if-changed).
    IfNewer,
    /// Never: only missing files are created.
    Never,
}

impl std::str::FromStr for Overwrite {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Overwrite, String> {
        match s {
            "always" => Ok(Overwrite::Always),
            "if-changed" => Ok(Overwrite::IfChanged),
            "if-newer" => Ok(Overwrite::IfNewer),
            "never" => Ok(Overwrite::Never),
            _ => Err(format!(
                "{s:?} is not always, if-changed, if-newer or never"
            )),
        }
    }
}

use crate::snapshot::UNDO_TAG;

#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// `latest`, an id or an id prefix.
    pub snapshot: String,
    /// Restore the contents of this path of the snapshot straight into the
    /// target (`ID:PATH`); `None` recreates absolute paths below it.
    pub path: Option<PathBuf>,
    pub target: PathBuf,
    pub filter: SnapshotFilter,
    /// Patterns (as `--exclude` takes them) of what to restore, with what
    /// is below; empty: everything.
    pub include: Vec<String>,
    /// Patterns of what neither to restore nor to delete.
    pub exclude: Vec<String>,
    /// Delete what the snapshot lacks, inside what the restore covers.
    pub delete: bool,
    pub overwrite: Overwrite,
    /// Take no undo snapshot.
    pub no_undo: bool,
}

/// The snapshot that can put the target back as it was.
#[derive(Clone, Debug)]
pub struct Undo {
    pub snapshot_id: Id,
    /// What it holds: the folders the restore covered.
    pub paths: Vec<PathBuf>,
    /// It holds one file (a restore of `ID:FILE`), not folders.
    pub file: bool,
    /// Earlier undo snapshots of a restore of the same snapshot into the
    /// same place, newest first: if one was interrupted, the oldest of
    /// these holds what was there before it.
    pub earlier: Vec<Id>,
    taken: bool,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RestoreResult {
    pub snapshot_id: Id,
    /// Files complete under their final name (written, kept or updated).
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub files_written: u64,
    /// Files found already restored and verified, so not downloaded again.
    pub files_kept: u64,
    pub files_updated: u64,
    pub skipped: u64,
    /// Entries deleted (`--delete`), with the files they held.
    pub deleted: u64,
    pub files_deleted: u64,
    /// Bytes of packs fetched from storage.
    pub bytes_downloaded: u64,
    #[serde(skip)]
    pub undo: Option<Undo>,
    /// Entries that could not be restored; non-empty means a non-zero exit.
    pub errors: Vec<String>,
    /// Restored, but not entirely: extended attributes the target's file
    /// system refused (exit code 3).
    pub warnings: Vec<String>,
    /// Device files not created because the repository is not encrypted:
    /// its trees are not authenticated, and the format requires the skip
    /// (format-spec.md section 8), so it is no failure.
    pub devices_withheld: u64,
}

/// A restore as `--json` prints it: the result, and how to undo it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RestoreReport<'a> {
    #[serde(flatten)]
    pub result: &'a RestoreResult,
    pub undo_snapshot_id: Option<Id>,
    pub undo_command: Option<String>,
    /// Undo snapshots of earlier attempts of the same restore, newest first.
    pub undo_earlier: Vec<Id>,
}

impl RestoreResult {
    pub fn report(&self) -> RestoreReport<'_> {
        RestoreReport {
            result: self,
            undo_snapshot_id: self.undo.as_ref().map(|u| u.snapshot_id),
            undo_command: self.undo.as_ref().map(Undo::command),
            undo_earlier: self
                .undo
                .as_ref()
                .map(|u| u.earlier.clone())
                .unwrap_or_default(),
        }
    }
}

impl Undo {
    /// The restore that puts the target back from this undo snapshot: the
    /// UI runs it, and [`Undo::command`] spells the same for a terminal.
    pub fn options(&self) -> RestoreOptions {
        let snapshot = self.snapshot_id.to_hex();
        match self.paths.as_slice() {
            [one] if self.file => RestoreOptions {
                snapshot,
                path: Some(one.clone()),
                target: one.parent().unwrap_or(Path::new("/")).to_path_buf(),
                ..Default::default()
            },
            [one] => RestoreOptions {
                snapshot,
                path: Some(one.clone()),
                target: one.clone(),
                delete: true,
                ..Default::default()
            },
            _ => RestoreOptions {
                snapshot,
                target: PathBuf::from("/"),
                delete: true,
                ..Default::default()
            },
        }
    }

    /// The command that puts the target back from this undo snapshot.
    pub fn command(&self) -> String {
        let quote = |p: &Path| {
            let s = p.display().to_string();
            if s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@".contains(c))
            {
                s
            } else {
                format!("'{}'", s.replace('\'', "'\\''"))
            }
        };
        let o = self.options();
        let mut cmd = format!("snap restore {}", self.snapshot_id.short());
        if let Some(p) = &o.path {
            cmd.push_str(&format!(":{}", quote(p)));
        }
        cmd.push_str(&format!(" --target {}", quote(&o.target)));
        // Putting back deletes what the restore added, often most of the
        // folder: without --yes, that stops to ask, or fails unattended.
        if o.delete {
            cmd.push_str(" --delete --yes");
        }
        cmd
    }
}

/// Plans and carries out a restore.
pub fn restore(
    repo: &Repository,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreResult> {
    repo.require_full("restore files")?;
    let repo = repo.indexed()?;
    let plan = plan(&repo, opts)?;
    apply(repo, &plan, opts, progress)
}

/// Carries out `plan` (from [`plan`] with the same options and index).
/// Takes the index: after an undo snapshot it is replaced by a fresh one,
/// and only one is held while files are written.
pub fn apply(
    repo: Indexed<'_>,
    plan: &Plan,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreResult> {
    repo.require_full("restore files")?;
    let mut result = RestoreResult {
        snapshot_id: plan.snapshot_id,
        ..Default::default()
    };
    // One restore at a time into a target: two once shared partial names
    // and corrupted each other's files.
    std::fs::create_dir_all(&plan.target).map_err(|e| Error::io(&plan.target, e))?;
    let _target_lock = lock_target(&plan.target)?;
    let mut repo = repo;
    let replanned;
    let plan = if !opts.no_undo && plan.touches_existing() {
        let undo = take_undo(&repo, plan, progress)?;
        // The undo snapshot may take long, and a confirmation before it
        // longer: a prune meanwhile may have moved blobs to new packs, so
        // the rest reads a fresh index. And what the undo saved must still
        // be what the plan changes (a directory swapped for a link
        // meanwhile would send writes and deletions elsewhere).
        repo = repo.repository().indexed()?;
        replanned = self::plan(&repo, opts)?;
        if summary(&replanned) != summary(plan) {
            return Err(Error::Other(format!(
                "{} changed while its undo snapshot {} was taken; nothing was restored. Run the \
                 restore again",
                plan.target.display(),
                undo.snapshot_id.short()
            )));
        }
        result.undo = undo.taken.then_some(undo);
        &replanned
    } else {
        plan
    };
    let repo = &repo;
    let run = Apply {
        plan,
        trust: trust(repo),
        progress,
        errors: Mutex::new(Vec::new()),
        skipped: Mutex::new(Vec::new()),
        bad_dirs: Default::default(),
    };
    for e in &plan.errors {
        run.fail(e.clone());
    }
    for w in &plan.warnings {
        progress.warn(w);
    }
    run.make_dirs();
    run.make_links_and_specials();
    run.write_files(repo, &mut result)?;
    run.delete(&mut result);
    run.set_dir_metadata();
    result.warnings = plan.warnings.clone();
    result.warnings.extend(run.set_xattrs());
    result
        .warnings
        .extend(run.skipped.lock().unwrap().drain(..));
    result.dirs = plan.dirs.len() as u64;
    progress.finish();
    result.errors = run.errors.into_inner().unwrap();
    Ok(result)
}

/// One restore being carried out, phase by phase: the plan, how far its
/// trees are trusted, and the failures so far (any failure stops the
/// deletions).
struct Apply<'a> {
    plan: &'a Plan,
    trust: sys::Trust,
    progress: &'a dyn Progress,
    errors: Mutex<Vec<String>>,
    /// What this system cannot make (a fifo on Windows, a link without
    /// the privilege): warnings, which do not stop the deletions.
    skipped: Mutex<Vec<String>>,
    /// Directories of the plan that are not real directories once made
    /// (one could not be made, or a link was in its way and stayed):
    /// nothing is written, linked or changed below them.
    bad_dirs: std::sync::RwLock<std::collections::HashSet<PathBuf>>,
}

impl Apply<'_> {
    fn fail(&self, msg: String) {
        self.progress.warn(&msg);
        self.errors.lock().unwrap().push(msg);
    }

    fn skip(&self, msg: String) {
        self.progress.warn(&msg);
        self.skipped.lock().unwrap().push(msg);
    }

    /// Directories, parents first; a file or link in the way of one goes.
    fn make_dirs(&self) {
        let mut bad = self.bad_dirs.write().unwrap();
        for d in &self.plan.dirs {
            let r = match d.change {
                Change::Create => std::fs::create_dir(&d.path),
                Change::Replace => {
                    sys::remove_link(&d.path).and_then(|_| std::fs::create_dir(&d.path))
                }
                _ => Ok(()),
            };
            if let Err(e) = r {
                self.fail(format!("{}: {e}", d.path.display()));
            }
            // Whatever happened, only a real directory is written into: a
            // link left in the way (one Windows would not remove, or one
            // whose name differs only in case) would lead the writes
            // below it out of the target.
            if !std::fs::symlink_metadata(&d.path).is_ok_and(|m| m.is_dir()) {
                self.fail(format!(
                    "{}: not a directory after restoring it, so nothing below it is restored",
                    d.path.display()
                ));
                bad.insert(d.path.clone());
            }
        }
    }

    /// A device file from trees that are not authenticated: not made,
    /// as the format requires, and then not touched again.
    fn withheld(&self, e: &Entry) -> bool {
        self.trust == sys::Trust::Unauthenticated
            && matches!(e.node.kind, NodeKind::CharDevice | NodeKind::BlockDevice)
    }

    /// Whether `path` lies below a directory that [`Apply::make_dirs`]
    /// found is not one (the path itself included).
    fn blocked(&self, path: &Path) -> bool {
        let bad = self.bad_dirs.read().unwrap();
        !bad.is_empty()
            && path
                .ancestors()
                .take_while(|a| *a != self.plan.target)
                .any(|a| bad.contains(a))
    }

    /// Links and special files; those with a directory in their way wait
    /// until deleting is known to be safe (see [`Apply::delete`]).
    fn make_links_and_specials(&self) {
        for o in &self.plan.others {
            if !matches!(o.change, Change::Create | Change::Replace)
                || o.dir_in_way
                || self.blocked(&o.path)
                || self.withheld(o)
            {
                continue;
            }
            let r = remove_existing(&o.path).and_then(|_| make_other(o, self.trust));
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                    self.skip(format!("{}: skipped: {e}", o.path.display()))
                }
                Err(e) => self.fail(format!(
                    "{}: cannot create {:?}: {e}",
                    o.path.display(),
                    o.node.kind
                )),
            }
        }
    }

    /// File contents, through [`write::write_files`]; then hardlinks (the
    /// first path of each (device, inode) gets the content, the others are
    /// linked to it once it is complete), the metadata of files whose
    /// content was right already, and of links and special files.
    fn write_files(&self, repo: &Indexed, result: &mut RestoreResult) -> Result<()> {
        let plan = self.plan;
        let mut first_of: std::collections::HashMap<(u64, u64), usize> = Default::default();
        let mut links: Vec<(usize, usize)> = Vec::new();
        let mut jobs: Vec<write::FileJob> = Vec::new();
        let mut job_of: Vec<Option<usize>> = vec![None; plan.files.len()];
        for (i, f) in plan.files.iter().enumerate() {
            if f.change == Change::Skip || self.blocked(&f.path) {
                continue;
            }
            if f.node.links > 1 {
                if let Some(&first) = first_of.get(&(f.node.device, f.node.inode)) {
                    links.push((first, i));
                    continue;
                }
                first_of.insert((f.node.device, f.node.inode), i);
            }
            if matches!(f.change, Change::Create | Change::Replace) {
                job_of[i] = Some(jobs.len());
                jobs.push(write::FileJob {
                    path: &f.path,
                    node: &f.node,
                    defer: f.dir_in_way,
                });
            }
        }
        let fail = |msg: String| self.fail(msg);
        // Every file of the plan is counted once: the ones written as they
        // are completed, the others below.
        let items = plan.files.len() as u64;
        let written = write::write_files(repo, &jobs, items, self.trust, self.progress, &fail)?;
        result.bytes_downloaded = written.bytes_downloaded;
        let complete = |i: usize| {
            !self.blocked(&plan.files[i].path) && job_of[i].is_none_or(|j| written.complete[j])
        };
        for (first, other) in &links {
            let (src, dst) = (&plan.files[*first].path, &plan.files[*other].path);
            if !complete(*first) || self.blocked(dst) || sys::same_file(src, dst) {
                continue;
            }
            let r = remove_existing(dst).and_then(|_| std::fs::hard_link(src, dst));
            if let Err(e) = r {
                self.fail(format!(
                    "{}: cannot link to {}: {e}",
                    dst.display(),
                    src.display()
                ));
            }
        }
        plan.files.par_iter().enumerate().for_each(|(i, f)| {
            if f.change == Change::Update
                && job_of[i].is_none()
                && !self.blocked(&f.path)
                && let Err(e) = sys::restore_metadata(&f.path, &f.node, self.trust)
            {
                self.fail(format!("{}: metadata: {e}", f.path.display()));
            }
            if job_of[i].is_none() {
                self.progress.item(&f.path);
            }
        });
        for (i, f) in plan.files.iter().enumerate() {
            match f.change {
                Change::Skip => result.skipped += 1,
                _ if !complete(i) => {}
                change => {
                    result.files += 1;
                    result.bytes += f.node.size;
                    match change {
                        Change::Keep => result.files_kept += 1,
                        Change::Update => result.files_updated += 1,
                        _ => result.files_written += 1,
                    }
                }
            }
        }
        for o in &plan.others {
            if self.withheld(o) {
                result.devices_withheld += 1;
                continue;
            }
            if matches!(o.change, Change::Create | Change::Replace | Change::Update)
                && !o.dir_in_way
                && let Err(e) = sys::restore_metadata(&o.path, &o.node, self.trust)
            {
                self.fail(format!("{}: metadata: {e}", o.path.display()));
            }
        }
        Ok(())
    }

    /// Deletions come after every file is complete, and not at all when
    /// something failed: a target half restored keeps what it had. That
    /// includes directories in the way of a file, which waits for them
    /// under its partial name.
    fn delete(&self, result: &mut RestoreResult) {
        let plan = self.plan;
        let safe = self.errors.lock().unwrap().is_empty();
        for e in plan
            .files
            .iter()
            .chain(&plan.others)
            .filter(|e| e.dir_in_way)
        {
            let partial = write::partial_path(&e.path);
            if !safe {
                let _ = std::fs::remove_file(&partial);
                continue;
            }
            let r = inside(&plan.target, &e.path)
                .and_then(|_| std::fs::remove_dir_all(&e.path))
                .and_then(|_| match e.node.kind {
                    NodeKind::File => std::fs::rename(&partial, &e.path),
                    _ => make_other(e, self.trust)
                        .and_then(|_| sys::restore_metadata(&e.path, &e.node, self.trust)),
                });
            if let Err(err) = r {
                self.fail(format!("{}: {err}", e.path.display()));
            }
        }
        if plan.extras.is_empty() {
            return;
        }
        if !safe {
            self.fail(format!(
                "{} entries the snapshot lacks were not deleted, because not everything was \
                 restored",
                plan.extras.len()
            ));
            return;
        }
        for x in &plan.extras {
            let r = inside(&plan.target, &x.path).and_then(|_| {
                if x.dir {
                    std::fs::remove_dir_all(&x.path)
                } else {
                    std::fs::remove_file(&x.path)
                }
            });
            match r {
                Ok(()) => {
                    result.deleted += 1;
                    result.files_deleted += x.files;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => self.fail(format!("{}: cannot delete: {e}", x.path.display())),
            }
        }
    }

    /// Deepest directories first, so setting a child's times does not
    /// touch its parent's after the parent was set; the target last.
    fn set_dir_metadata(&self) {
        let plan = self.plan;
        let mut dirs: Vec<&Entry> = plan.dirs.iter().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
        for d in dirs {
            if self.blocked(&d.path) {
                continue;
            }
            if let Err(e) = sys::restore_metadata(&d.path, &d.node, self.trust) {
                self.fail(format!("{}: metadata: {e}", d.path.display()));
            }
        }
        if let Some(root) = &plan.root
            && let Err(e) = sys::restore_metadata(&plan.target, root, self.trust)
        {
            self.fail(format!("{}: metadata: {e}", plan.target.display()));
        }
    }

    /// Extended attributes last: chown clears file capabilities, and
    /// setting them changes no time that was set before. Returns what the
    /// target refused, as warnings.
    fn set_xattrs(&self) -> Vec<String> {
        let plan = self.plan;
        let targets: Vec<(&PathBuf, &crate::tree::Node)> = plan
            .entries()
            .filter(|e| match e.change {
                Change::Skip => false,
                Change::Keep => e.node.kind == NodeKind::Dir,
                _ => true,
            })
            .filter(|e| !self.blocked(&e.path))
            .map(|e| (&e.path, &e.node))
            .chain(plan.root.as_ref().map(|r| (&plan.target, r)))
            .collect();
        let refused: Vec<String> = targets
            .par_iter()
            .flat_map_iter(|(path, node)| sys::restore_xattrs(path, node, self.trust))
            .collect();
        for w in &refused {
            self.progress.warn(w);
        }
        refused
    }
}

/// Creates a link or special file.
fn make_other(e: &Entry, trust: sys::Trust) -> std::io::Result<()> {
    match e.node.kind {
        NodeKind::Symlink => sys::symlink(
            &e.node.link_target,
            &e.path,
            e.node.mode & crate::tree::LINK_TO_DIR != 0,
        ),
        _ => sys::make_special(&e.path, &e.node, trust),
    }
}

/// What a plan does, to tell whether the target changed between two plans.
fn summary(plan: &Plan) -> Vec<(PathBuf, Change)> {
    let mut out: Vec<(PathBuf, Change)> = plan
        .entries()
        .map(|e| (e.path.clone(), e.change))
        .chain(plan.extras.iter().map(|x| (x.path.clone(), Change::Delete)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Checks that no directory between `target` and `path` is a link, right
/// before deleting: a directory swapped for a link to elsewhere after the
/// plan must not lead a deletion out of the target.
fn inside(target: &Path, path: &Path) -> std::io::Result<()> {
    let rel = path
        .strip_prefix(target)
        .map_err(|_| std::io::Error::other("outside the target"))?;
    let mut at = target.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        at.push(part);
        if !std::fs::symlink_metadata(&at)?.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is no longer a directory; not deleting below it",
                at.display()
            )));
        }
    }
    Ok(())
}

/// Holds an exclusive lock on the target directory for the restore's
/// length; a second restore into it stops at once.
fn lock_target(target: &Path) -> Result<sys::DirLock> {
    sys::lock_dir(target)
        .map_err(|e| Error::io(target, e))?
        .ok_or_else(|| {
            Error::Locked(format!(
                "another restore into {} is running; try again when it is done",
                target.display()
            ))
        })
}

/// How far the repository's trees are believed: see [`sys::Trust`].
fn trust(repo: &Repository) -> sys::Trust {
    if repo.is_encrypted() {
        sys::Trust::Authenticated
    } else {
        sys::Trust::Unauthenticated
    }
}

/// Backs up what the restore covers, as it is now: the undo snapshot.
fn take_undo(repo: &Repository, plan: &Plan, progress: &dyn Progress) -> Result<Undo> {
    let paths: Vec<PathBuf> = plan
        .covered
        .iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .cloned()
        .collect();
    let file = paths.len() == 1 && !paths[0].is_dir();
    if paths.is_empty() {
        // Nothing covered exists yet: nothing to put back.
        return Ok(Undo {
            snapshot_id: Id::default(),
            paths,
            file,
            earlier: Vec::new(),
            taken: false,
        });
    }
    let restoring = format!("restoring:{}", plan.snapshot_id.to_hex());
    let wanted: Vec<Vec<u8>> = {
        let mut v: Vec<Vec<u8>> = paths
            .iter()
            .map(|p| sys::path_bytes(p).into_owned())
            .collect();
        v.sort();
        v
    };
    let earlier: Vec<Id> = repo
        .snapshots()?
        .into_iter()
        .rev()
        .filter(|(_, s)| s.tags.contains(&restoring) && s.paths == wanted)
        .map(|(id, _)| id)
        .collect();
    let opts = crate::commands::create::CreateOptions {
        paths: paths.clone(),
        tags: vec![
            UNDO_TAG.to_string(),
            format!("restoring:{}", plan.snapshot_id.to_hex()),
        ],
        ..Default::default()
    };
    let r = crate::commands::create::create(repo, &opts, progress).map_err(|e| {
        Error::Other(format!(
            "the undo snapshot could not be taken, so nothing was restored: {e} (--no-undo \
             restores without one)"
        ))
    })?;
    // What the undo snapshot could not read, the restore could replace or
    // delete beyond recovery.
    if !r.warnings.is_empty() {
        repo.remove_snapshots(&[r.snapshot_id])?;
        return Err(Error::Other(format!(
            "the undo snapshot could not save {} path(s) (listed above), so nothing was \
             restored: make them readable, or pass --no-undo to restore without an undo",
            r.warnings.len()
        )));
    }
    let paths = r
        .snapshot
        .paths
        .iter()
        .map(|p| sys::bytes_path(p).into_owned())
        .collect();
    Ok(Undo {
        snapshot_id: r.snapshot_id,
        paths,
        file,
        earlier,
        taken: true,
    })
}

/// Makes room for a new entry: an existing file or link is replaced, an
/// existing directory is an error (its contents are not ours to delete).
fn remove_existing(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(std::io::Error::other("a directory is in the way")),
        Ok(_) => sys::remove_link(path),
        Err(_) => Ok(()),
    }
}
