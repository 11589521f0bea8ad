//! Depth-first walks over snapshot trees, shared by prune, check and the
//! inspection commands.

use std::collections::HashSet;

use crate::error::Result;
use crate::id::Id;
use crate::repo::Repository;
use crate::tree::Node;

/// Calls `visit(path, node)` for every node below `root`, where `path` is
/// the node's absolute path as backed up. With `seen`, trees already in the
/// set are not descended into again (they were walked for another
/// snapshot); a tree that cannot be loaded is passed to `on_error` and
/// skipped.
pub fn walk(
    repo: &Repository,
    root: Id,
    seen: Option<&mut HashSet<Id>>,
    visit: &mut dyn FnMut(&[u8], &Node),
    on_error: &mut dyn FnMut(&[u8], crate::error::Error),
) -> Result<()> {
    let mut local = HashSet::new();
    let seen = match seen {
        Some(s) => s,
        None => &mut local,
    };
    let mut stack: Vec<(Id, Vec<u8>)> = vec![(root, Vec::new())];
    while let Some((id, prefix)) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let tree = match repo.load_tree(&id) {
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
                stack.push((sub, path));
            }
        }
    }
    Ok(())
}
