//! Walks over snapshot trees, breadth first, a batch of directories at a
//! time. [`walk_dirs`] carries a context of the caller's per directory and
//! lets the caller choose which subdirectories to descend into: restore's
//! planner walks with it, carrying a target directory per tree and
//! skipping excluded ones. [`walk`], built on it, visits every node with
//! its path, for prune, check, ls, find and the parent prefetch of create.

use std::collections::{HashSet, VecDeque};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::indexed::Indexed;
use crate::tree::{Node, Tree};

/// How many trees a walk loads at once: enough that a wide level costs a
/// few requests, few enough that the decoded trees of a batch stay small.
pub const TREE_BATCH: usize = 1024;

/// Walks directories level by level from `start`. Each directory is a
/// context `C` whose tree `tree_of` gives (`None`: an empty directory).
/// `visit` gets each context with its tree, or why the tree could not be
/// loaded, and returns the subdirectories to walk next: what it leaves out
/// is not descended into. Trees of a level are loaded together (see
/// `Indexed::load_trees`), so a device with an empty cache makes a few
/// requests per level, not a round trip per directory.
pub fn walk_dirs<C>(
    repo: &Indexed,
    start: Vec<C>,
    tree_of: impl Fn(&C) -> Option<Id>,
    mut visit: impl FnMut(C, Result<Tree>) -> Vec<C>,
) -> Result<()> {
    let mut queue: VecDeque<C> = start.into();
    while !queue.is_empty() {
        let take = queue.len().min(TREE_BATCH);
        let batch: Vec<C> = queue.drain(..take).collect();
        let ids: Vec<Id> = batch.iter().filter_map(&tree_of).collect();
        let mut loaded = repo.load_trees(&ids)?.into_iter();
        for dir in batch {
            let tree = match tree_of(&dir).map(|_| loaded.next()) {
                None => Ok(Tree::default()),
                Some(Some(t)) => t,
                Some(None) => Err(Error::Other("tree batch came back short".into())),
            };
            queue.extend(visit(dir, tree));
        }
    }
    Ok(())
}

/// Calls `visit(path, node)` for every node below `root`, breadth first,
/// where `path` is the node's absolute path as backed up. With `seen`,
/// trees already in the set are not descended into again (they were
/// walked elsewhere, in this snapshot or another); without it every path is
/// visited, even below two directories with the same content. A tree that
/// cannot be loaded is passed to `on_error` and skipped.
pub fn walk(
    repo: &Indexed,
    root: Id,
    mut seen: Option<&mut HashSet<Id>>,
    visit: &mut dyn FnMut(&[u8], &Node),
    on_error: &mut dyn FnMut(&[u8], Error),
) -> Result<()> {
    let mut first = |id: Id| seen.as_mut().is_none_or(|s| s.insert(id));
    let start = if first(root) {
        vec![(root, Vec::new())]
    } else {
        Vec::new()
    };
    walk_dirs(
        repo,
        start,
        |(id, _): &(Id, Vec<u8>)| Some(*id),
        |(_, prefix), tree| {
            let tree = match tree {
                Ok(t) => t,
                Err(e) => {
                    on_error(if prefix.is_empty() { b"/" } else { &prefix }, e);
                    return Vec::new();
                }
            };
            let mut next = Vec::new();
            for node in &tree.nodes {
                let mut path = prefix.clone();
                path.push(b'/');
                path.extend_from_slice(&node.name);
                visit(&path, node);
                if let Some(sub) = node.subtree.filter(|&s| first(s)) {
                    next.push((sub, path));
                }
            }
            next
        },
    )
}

/// The node at `path` (absolute, as backed up) in the tree `root`.
pub(crate) fn node_at(repo: &Indexed, root: Id, path: &[u8]) -> Result<Option<Node>> {
    let mut tree = root;
    let mut parts = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .peekable();
    let mut found = None;
    while let Some(part) = parts.next() {
        let t = repo.load_tree(&tree)?;
        let Some(node) = t.nodes.into_iter().find(|n| n.name == part) else {
            return Ok(None);
        };
        match (node.subtree, parts.peek()) {
            (_, None) => found = Some(node),
            (Some(sub), Some(_)) => tree = sub,
            (None, Some(_)) => return Ok(None),
        }
    }
    Ok(found)
}
