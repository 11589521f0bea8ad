//! `snap check`.

use anyhow::Result;
use snap_engine::commands::check;

use crate::args;
use crate::ctx::*;
use crate::output;

/// `snap check`.
pub(crate) fn check(ctx: &Ctx, a: &args::CheckArgs) -> Result<u8> {
    let ui = ctx.ui;
    let repo = ctx.open_with(a.with_cache)?;
    repo.require_full("check the repository (it reads packs and snapshots)")?;
    let r = check::check(
        &repo,
        &check::CheckOptions {
            read_data: a.read_data,
            subset: a.read_data_subset,
        },
        ui,
    )?;
    if ui.json {
        output::report(&r.report())?;
    } else {
        for w in &r.warnings {
            ui.say(&format!("warning: {w}"));
        }
        for e in &r.errors {
            eprintln!("error: {e}");
        }
        for a in &r.affected {
            eprintln!("affected: {a}");
        }
        if r.ok() {
            ui.say(&format!(
                "no errors: {} snapshot(s), {} tree(s), {} pack(s){}",
                r.snapshots,
                r.trees,
                r.packs,
                if r.packs_read > 0 {
                    format!(", {} read and verified", r.packs_read)
                } else {
                    String::new()
                }
            ));
        }
    }
    if !r.ok() {
        if !ui.json {
            eprintln!("{}", check::failed(&r));
        }
        return Err(Reported(1).into());
    }
    Ok(0)
}
