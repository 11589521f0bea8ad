//! `snap init`.

use anyhow::{Result, anyhow};

use crate::args;
use crate::cmd::*;
use crate::ctx::*;
use crate::output;

/// `snap init`.
pub(crate) fn init(ctx: &Ctx, a: &args::InitArgs) -> Result<u8> {
    let ui = ctx.ui;
    let (loc, is_default) = ctx.location()?;
    if is_default && let Some(hint) = ctx.forgotten_profile() {
        return Err(anyhow!(
            "not creating the local default repository {loc}: {hint}; or give --repo \
             DIR for a local repository"
        ));
    }
    if !a.yes {
        ask_when_others_are_near(ctx, &loc)?;
    }
    let mut opts = ctx.init_options(a.no_encryption)?;
    if let Some(m) = a.kdf_memory {
        opts.kdf.memory_kib = m;
    }
    if let Some(t) = a.kdf_iterations {
        opts.kdf.iterations = t;
    }
    opts.kdf.validate().map_err(|_| anyhow!(KDF_RANGE))?;
    if opts.password.is_some() {
        warn_weak_kdf(ui, &opts.kdf);
    }
    let retention = match a.object_lock_days {
        Some(days) => Some(snap_engine::retention::Retention {
            days,
            mode: a
                .object_lock_mode
                .unwrap_or(args::ObjectLockMode::Governance)
                .into(),
        }),
        None => ctx.profile_retention(),
    };
    let (_, r) = ctx.init_retained(&loc, opts, retention)?;
    if ui.json {
        output::report(&r)?;
    } else {
        ui.say(&format!(
            "created repository {} at {}",
            r.repository_id.short(),
            r.location
        ));
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        if let Some(r) = retention {
            ui.say(&format!(
                "every object snap writes here is kept {} days under S3 Object Lock ({} mode)",
                r.days,
                match r.mode {
                    snap_engine::retention::LockMode::Governance => "governance",
                    snap_engine::retention::LockMode::Compliance => "compliance",
                }
            ));
        }
        if r.encrypted {
            ui.say(LOST_PASSWORD);
        } else {
            ui.say("the repository is NOT encrypted: anyone who can read it can read your files");
        }
    }
    Ok(0)
}

/// A new repository beside others is asked about first: a root path of
/// `famliy` beside `family` is a typo far more often than a wish.
fn ask_when_others_are_near(ctx: &Ctx, loc: &str) -> Result<()> {
    let near = ctx.nearby(loc).beside_or_below();
    let Some(sentence) = near.sentence() else {
        return Ok(());
    };
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(anyhow!(
            "not creating a repository at {loc}: {sentence} To connect to one of those, give its \
             location; to create a new one here anyway, add --yes"
        ));
    }
    let question = format!("{sentence} Create a new, empty repository at {loc} anyway?");
    if !confirm(&question)? {
        return Err(anyhow!(
            "not created: give the location of the repository to use"
        ));
    }
    Ok(())
}
