//! What lost packs cost: every file and folder of every snapshot that
//! needs one of them. `check` names them after it finds damage, `prune`
//! before it refuses to go on, and `repair snapshots` writes snapshots
//! without them.

use std::collections::HashSet;

use crate::blob::BlobType;
use crate::error::Result;
use crate::id::Id;
use crate::indexed::Indexed;
use crate::snapshot::Snapshot;

/// `snapshot-short-id:path` of every entry that needs a blob located in
/// one of the `damaged` packs (by the index of `repo`), the root as `/`.
pub(crate) fn affected(
    repo: &Indexed,
    snapshots: &[(Id, Snapshot)],
    damaged: &HashSet<Id>,
) -> Result<Vec<String>> {
    let index = repo.index();
    let in_damaged = |ty: BlobType, id: &Id| {
        index
            .get(ty, id)
            .is_some_and(|loc| damaged.contains(&index.pack_id(loc.pack)))
    };
    let mut out = Vec::new();
    for (sid, s) in snapshots {
        // The root's pack may be damaged elsewhere than in the root: the
        // walk goes on, and names what it can still reach.
        if in_damaged(BlobType::Tree, &s.tree) {
            out.push(format!("{}:/", sid.short()));
        }
        crate::walk::walk(
            repo,
            s.tree,
            None,
            &mut |path, node| {
                let hit = node.content.iter().any(|c| in_damaged(BlobType::Data, c))
                    || node.subtree.is_some_and(|t| in_damaged(BlobType::Tree, &t));
                if hit {
                    out.push(format!("{}:{}", sid.short(), String::from_utf8_lossy(path)));
                }
            },
            &mut |_, _| {},
        )?;
    }
    Ok(out)
}

/// The first of `items`, joined, and how many more there are: a message
/// names what matters without growing with the damage.
pub(crate) fn some_of(items: &[String], shown: usize) -> String {
    let mut text = items
        .iter()
        .take(shown)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > shown {
        text.push_str(&format!(" and {} more", items.len() - shown));
    }
    text
}
