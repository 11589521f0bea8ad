//! Walks over snapshot trees, shared by prune, check, ls, find and the
//! parent prefetch of create. (Restore keeps its own loop of the same
//! shape: it carries a target directory per tree and skips excluded ones.)

use std::collections::{HashSet, VecDeque};

use crate::error::Result;
use crate::id::Id;
use crate::indexed::Indexed;
use crate::tree::Node;

/// How many trees a walk loads at once: enough that a wide level costs a
/// few requests, few enough that the decoded trees of a batch stay small.
pub const TREE_BATCH: usize = 1024;

/// Calls `visit(path, node)` for every node below `root`, breadth first,
/// where `path` is the node's absolute path as backed up. With `seen`,
/// trees already in the set are not descended into again (they were
/// walked elsewhere, in this snapshot or another); without it every path is
/// visited, even below two directories with the same content. A tree that
/// cannot be loaded is passed to `on_error` and skipped.
pub fn walk(
    repo: &Indexed,
    root: Id,
    seen: Option<&mut HashSet<Id>>,
    visit: &mut dyn FnMut(&[u8], &Node),
    on_error: &mut dyn FnMut(&[u8], crate::error::Error),
) -> Result<()> {
    let mut seen = seen;
    // Level by level, a batch of trees at a time: see `Indexed::load_trees`.
    let mut queue: VecDeque<(Id, Vec<u8>)> = VecDeque::from([(root, Vec::new())]);
    while !queue.is_empty() {
        let take = queue.len().min(TREE_BATCH);
        let batch: Vec<(Id, Vec<u8>)> = queue
            .drain(..take)
            .filter(|(id, _)| seen.as_mut().is_none_or(|s| s.insert(*id)))
            .collect();
        let ids: Vec<Id> = batch.iter().map(|(id, _)| *id).collect();
        for ((_, prefix), tree) in batch.into_iter().zip(repo.load_trees(&ids)?) {
            let tree = match tree {
                Ok(t) => t,
                Err(e) => {
                    on_error(if prefix.is_empty() { b"/" } else { &prefix }, e);
                    continue;
                }
            };
            for node in &tree.nodes {
                let mut path = prefix.clone();
                path.push(b'/');
                path.extend_from_slice(&node.name);
                visit(&path, node);
                if let Some(sub) = node.subtree {
                    queue.push_back((sub, path));
                }
            }
        }
    }
    Ok(())
}
