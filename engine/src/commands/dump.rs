//! `snap dump`: one file of a snapshot on a writer, or a directory as a tar
//! stream (written by the `tar` crate), without restoring it to disk.

use std::io::{Read, Write};

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::indexed::Indexed;
use crate::repo::Repository;
use crate::snapshot::{Snapshot, SnapshotFilter};
use crate::tree::{Node, NodeKind};

/// What was written.
#[derive(Clone, Debug)]
pub struct DumpResult {
    pub snapshot_id: Id,
    pub snapshot: Snapshot,
    /// A tar stream (of a directory) rather than one file's bytes.
    pub tar: bool,
    /// File content bytes written.
    pub bytes: u64,
}

/// Reads a file's content blob by blob, each verified as it is decoded.
struct Content<'a> {
    repo: &'a Indexed<'a>,
    ids: &'a [Id],
    next: usize,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a> Content<'a> {
    fn new(repo: &'a Indexed<'a>, ids: &'a [Id]) -> Content<'a> {
        Content {
            repo,
            ids,
            next: 0,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for Content<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some(id) = self.ids.get(self.next) else {
                return Ok(0);
            };
            self.buf = self
                .repo
                .read_blob(BlobType::Data, id)
                .map_err(std::io::Error::other)?;
            self.pos = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Writes what `path` (absolute, as backed up) is in the snapshot `spec`
/// to `out`: a file's bytes, or a tar stream of a directory unless
/// `tar_ok` is false (the output is a terminal), which is then an error.
pub fn dump(
    repo: &Repository,
    spec: &str,
    filter: &SnapshotFilter,
    path: &[u8],
    tar_ok: bool,
    out: &mut dyn Write,
) -> Result<DumpResult> {
    repo.require_full("read files from snapshots")?;
    let repo = &repo.indexed()?;
    let (snapshot_id, snapshot) = repo.find_snapshot(spec, filter)?;
    let trimmed = if path.len() > 1 {
        path.strip_suffix(b"/").unwrap_or(path)
    } else {
        path
    };
    let not_there = || {
        Error::InvalidArgument(format!(
            "{} is not in snapshot {} (its paths: {})",
            String::from_utf8_lossy(path),
            snapshot_id.short(),
            snapshot.paths_lossy().join(", ")
        ))
    };
    let written = |e: std::io::Error| Error::Other(format!("cannot write the output: {e}"));
    let (root_name, root_tree, root_node) = if trimmed == b"/" {
        (b"".to_vec(), Some(snapshot.tree), None)
    } else {
        let node = crate::walk::node_at(repo, snapshot.tree, trimmed)?.ok_or_else(not_there)?;
        if node.kind != NodeKind::Dir {
            if node.kind != NodeKind::File {
                return Err(Error::InvalidArgument(format!(
                    "{} is a {:?}, not a file or directory",
                    String::from_utf8_lossy(path),
                    node.kind
                )));
            }
            let mut content = Content::new(repo, &node.content);
            let bytes = std::io::copy(&mut content, out).map_err(written)?;
            out.flush().map_err(written)?;
            if bytes != node.size {
                return Err(Error::Corrupt {
                    what: String::from_utf8_lossy(path).into_owned(),
                    detail: format!("content is {bytes} bytes, the snapshot says {}", node.size),
                });
            }
            return Ok(DumpResult {
                snapshot_id,
                snapshot,
                tar: false,
                bytes,
            });
        }
        (node.name.clone(), node.subtree, Some(node))
    };
    if !tar_ok {
        return Err(Error::InvalidArgument(format!(
            "{} is a directory, written as a tar stream: redirect it to a file or a program \
             (snap dump ... > out.tar)",
            String::from_utf8_lossy(path)
        )));
    }
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Complete);
    let mut bytes = 0u64;
    if let Some(node) = &root_node {
        append(repo, &mut builder, &root_name, node).map_err(written)?;
    }
    if let Some(tree) = root_tree {
        for e in super::inspect::walk_sorted(repo, tree)? {
            let mut name = root_name.clone();
            if !name.is_empty() {
                name.push(b'/');
            }
            name.extend_from_slice(e.path.strip_prefix(b"/").unwrap_or(&e.path));
            bytes += append(repo, &mut builder, &name, &e.node).map_err(written)?;
        }
    }
    builder
        .into_inner()
        .and_then(|o| o.flush())
        .map_err(written)?;
    Ok(DumpResult {
        snapshot_id,
        snapshot,
        tar: true,
        bytes,
    })
}

/// One entry into the tar stream; returns the content bytes written.
fn append(
    repo: &Indexed,
    builder: &mut tar::Builder<&mut dyn Write>,
    name: &[u8],
    node: &Node,
) -> std::io::Result<u64> {
    let path = &*crate::sys::bytes_path(name);
    let mut h = tar::Header::new_gnu();
    h.set_mode(node.mode & 0o7777);
    h.set_uid(node.uid.into());
    h.set_gid(node.gid.into());
    let _ = h.set_username(&node.user);
    let _ = h.set_groupname(&node.group);
    h.set_mtime(node.mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
    h.set_size(0);
    match node.kind {
        NodeKind::File => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(node.size);
            let content = Content::new(repo, &node.content);
            builder.append_data(&mut h, path, content)?;
            return Ok(node.size);
        }
        NodeKind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            builder.append_data(&mut h, path, std::io::empty())?;
        }
        NodeKind::Symlink => {
            h.set_entry_type(tar::EntryType::Symlink);
            let target = &*crate::sys::bytes_path(&node.link_target);
            builder.append_link(&mut h, path, target)?;
        }
        NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
            h.set_entry_type(match node.kind {
                NodeKind::Fifo => tar::EntryType::Fifo,
                NodeKind::CharDevice => tar::EntryType::Char,
                _ => tar::EntryType::Block,
            });
            let (major, minor) = crate::tree::device_numbers(node.rdev);
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
            builder.append_data(&mut h, path, std::io::empty())?;
        }
    }
    Ok(0)
}
