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
    let (_, r) = ctx.init(&loc, opts)?;
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
        if r.encrypted {
            ui.say(LOST_PASSWORD);
        } else {
            ui.say("the repository is NOT encrypted: anyone who can read it can read your files");
        }
    }
    Ok(0)
}
