//! The `snap` command: arguments, passwords, repository location and
//! output. Every decision about data is made by `snap_engine`; each command
//! lives in its own file under `cmd/`, and this file only dispatches.

mod args;
mod cmd;
mod config;
mod ctx;
mod output;
mod password;
mod ui;

use std::process::ExitCode;

use anyhow::Result;
use snap_engine::Error;

use args::{Cli, Command};
use ctx::{Ctx, Reported, engine_error};
use output::Ui;

fn main() -> ExitCode {
    let cli = Cli::parse_noting_sources();
    let ui = Ui::new(cli.global.quiet, cli.global.verbose, cli.global.json);
    match run(&cli, &ui) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            ui.finish_progress();
            if e.downcast_ref::<output::ClosedOutput>().is_some() {
                return ExitCode::SUCCESS;
            }
            if let Some(Reported(code)) = e.downcast_ref::<Reported>() {
                return ExitCode::from(*code as u8);
            }
            let code = engine_error(&e).map(Error::exit_code).unwrap_or(1);
            let mut msg = format!("error: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("{msg}");
            ExitCode::from(code as u8)
        }
    }
}

impl Ui {
    fn finish_progress(&self) {
        snap_engine::progress::Progress::finish(self);
    }
}

fn run(cli: &Cli, ui: &Ui) -> Result<u8> {
    let g = &cli.global;
    match &cli.command {
        Command::Config(a) if !a.check => return cmd::configure(g, a, ui),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "snap", &mut script);
            output::write_all(&script)?;
            return Ok(0);
        }
        Command::Ui(a) => return ui::serve(g, a),
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut page)?;
            output::write_all(&page)?;
            return Ok(0);
        }
        _ => {}
    }
    let chosen = config::choose(g, &|w| ui.say(w))?;
    let ctx = Ctx {
        global: g,
        profile: chosen.profile,
        profiles: chosen.all,
        ui,
        typed_password: None,
        prompt: true,
    };
    match &cli.command {
        Command::Init(a) => cmd::init(&ctx, a),
        Command::Create(a) => cmd::create(&ctx, a),
        Command::Snapshots(a) => cmd::snapshots(&ctx, a),
        Command::Restore(a) => cmd::restore(&ctx, a),
        Command::Dump(a) => cmd::dump(&ctx, a),
        Command::Forget(a) => cmd::forget(&ctx, a),
        Command::Prune(a) => cmd::prune(&ctx, a),
        Command::Check(a) => cmd::check(&ctx, a),
        Command::Repair(r) => cmd::repair(&ctx, r),
        Command::Config(_) => cmd::check_connection(&ctx),
        Command::Key(k) => cmd::key_command(&ctx, k, ui),
        Command::Ls(a) => cmd::ls(&ctx, a),
        Command::Diff(a) => cmd::diff(&ctx, a),
        Command::Find(a) => cmd::find(&ctx, a),
        Command::Stats => cmd::stats(&ctx),
        Command::Completions { .. } | Command::Man | Command::Ui(_) => {
            unreachable!("handled above")
        }
    }
}
