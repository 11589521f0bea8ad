//! `snap forget`.

use std::io::IsTerminal;

use anyhow::Result;
use snap_engine::Id;
use snap_engine::commands::{self};

use crate::args;
use crate::ctx::*;
use crate::output;

/// `snap forget`.
pub(crate) fn forget(ctx: &Ctx, a: &args::ForgetArgs) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open_full("remove snapshots")?;
    let chosen = commands::resolve_for_removal(&repo, &a.ids, &snapshot_filter(&a.filter)?)?;
    let ids: Vec<Id> = chosen.iter().map(|(id, _)| *id).collect();
    let verb = if a.dry_run {
        "would remove"
    } else {
        "removing"
    };
    for (id, s) in &chosen {
        ui.say(&format!("{verb} snapshot {}", describe(id, s)));
    }
    if !a.dry_run
        && ids.len() > 1
        && !a.yes
        && std::io::stdin().is_terminal()
        && !confirm(&format!("remove these {} snapshots?", ids.len()))?
    {
        anyhow::bail!("nothing was removed");
    }
    if !a.dry_run {
        commands::forget(&repo, &ids)?;
    }
    if ui.json {
        let (removed, would_remove) = if a.dry_run {
            (None, Some(ids.clone()))
        } else {
            (Some(ids.clone()), None)
        };
        output::report(&snap_engine::report::ForgetReport {
            removed,
            would_remove,
        })?;
    } else if !a.dry_run {
        ui.say("run `snap prune` to free the space their data used");
    }
    Ok(0)
}
