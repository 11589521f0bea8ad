//! Where the password comes from, in restic's order: the environment, a
//! file, a command, else a prompt on a terminal.

use std::io::IsTerminal;
use std::process::Command;

use anyhow::{Context, Result, bail};
use snap_engine::Error;
use zeroize::Zeroizing;

use crate::args::{Global, Source};
use crate::config::Profile;

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// A password file others can read is a password others know: said as the
/// config file's mode is.
fn warn_if_others_can_read(file: &std::path::Path) {
    if let Some(mode) = crate::config::others_can_read(file) {
        eprintln!(
            "warning: the password file {} can be read by others (mode {mode:o}); run chmod 600 on it",
            file.display(),
        );
    }
}

/// Whether a non-interactive password source is set: the user then
/// believes the repository is encrypted, and a plain config is refused.
pub fn is_configured(global: &Global, profile: &Profile) -> bool {
    std::env::var_os("SNAP_PASSWORD").is_some()
        || global.password_file.is_some()
        || profile.password_file.is_some()
        || global.password_command.is_some()
        || profile.password_command.is_some()
}

/// A password from a non-interactive source, if one is configured, in the
/// order every setting follows: the command line, then the chosen profile,
/// then the environment (`SNAP_PASSWORD` first, then `SNAP_PASSWORD_FILE`
/// and `SNAP_PASSWORD_COMMAND`). A `SNAP_PASSWORD` kept for another
/// repository used to win over the profile's password file.
fn configured(global: &Global, profile: &Profile) -> Result<Option<String>> {
    let line = |id: &str| global.given_on_command_line(id);
    if line("password_file")
        && let Some(f) = &global.password_file
    {
        return read_file(f).map(Some);
    }
    if line("password_command")
        && let Some(c) = &global.password_command
    {
        return run_command(c).map(Some);
    }
    if let Some(f) = &profile.password_file {
        return read_file(f).map(Some);
    }
    if let Some(c) = &profile.password_command {
        return run_command(c).map(Some);
    }
    if let Ok(pw) = std::env::var("SNAP_PASSWORD") {
        return Ok(Some(pw));
    }
    if let Some(f) = &global.password_file {
        return read_file(f).map(Some);
    }
    if let Some(c) = &global.password_command {
        return run_command(c).map(Some);
    }
    Ok(None)
}

/// Where `configured` takes the password from, as `snap config` shows it.
pub fn source(global: &Global, profile: &Profile) -> Option<(String, Source)> {
    let line = |id: &str| global.given_on_command_line(id);
    let file = |f: &std::path::Path| format!("file {}", f.display());
    let command = |c: &str| format!("command {c:?}");
    if line("password_file") {
        return global
            .password_file
            .as_deref()
            .map(|f| (file(f), Source::CommandLine));
    }
    if line("password_command") {
        return global
            .password_command
            .as_deref()
            .map(|c| (command(c), Source::CommandLine));
    }
    let from_profile = Source::Profile(profile.name.clone());
    if let Some(f) = &profile.password_file {
        return Some((file(f), from_profile));
    }
    if let Some(c) = &profile.password_command {
        return Some((command(c), from_profile));
    }
    if std::env::var_os("SNAP_PASSWORD").is_some() {
        return Some(("(set, hidden)".into(), Source::Environment("SNAP_PASSWORD")));
    }
    if let Some(f) = &global.password_file {
        return Some((file(f), Source::Environment("SNAP_PASSWORD_FILE")));
    }
    if let Some(c) = &global.password_command {
        return Some((command(c), Source::Environment("SNAP_PASSWORD_COMMAND")));
    }
    None
}

fn read_file(file: &std::path::Path) -> Result<String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the password file {}", file.display()))?,
    );
    warn_if_others_can_read(file);
    let pw = first_line(&text);
    // An empty file read as an empty password, which then failed as the
    // wrong password, sending the user after the wrong problem.
    if pw.is_empty() {
        bail!(
            "the password file {} is empty: its first line is the password",
            file.display()
        );
    }
    Ok(pw)
}

/// A command line run as the user's shell would: `sh -c` on Unix, `cmd /C`
/// on Windows.
pub(crate) fn shell(cmd: &str) -> Command {
    let (shell, flag) = if cfg!(windows) {
        ("cmd", "/C")
    } else {
        ("sh", "-c")
    };
    let mut c = Command::new(shell);
    c.arg(flag).arg(cmd);
    c
}

fn run_command(cmd: &str) -> Result<String> {
    let out = shell(cmd)
        .output()
        .with_context(|| format!("cannot run the password command {cmd:?}"))?;
    if !out.status.success() {
        bail!("the password command {cmd:?} failed ({})", out.status);
    }
    let stdout = Zeroizing::new(out.stdout);
    Ok(first_line(&String::from_utf8_lossy(&stdout)))
}

const NO_SOURCE: &str = "no password given and no terminal to ask on: set SNAP_PASSWORD, \
                         --password-file or --password-command";

/// The password of an existing repository; asked on the terminal only
/// when `prompt`.
pub fn existing(global: &Global, profile: &Profile, prompt: bool) -> Result<String> {
    if let Some(pw) = configured(global, profile)? {
        return Ok(pw);
    }
    if !prompt {
        return Err(Error::PasswordRequired.into());
    }
    if !std::io::stdin().is_terminal() {
        bail!(NO_SOURCE);
    }
    rpassword::prompt_password("Password: ").context("cannot read the password from the terminal")
}

/// The password for a new repository: asked twice on a terminal.
pub fn new(global: &Global, profile: &Profile, prompt: bool) -> Result<String> {
    let pw = match configured(global, profile)? {
        Some(pw) => pw,
        None if !prompt => return Err(Error::PasswordRequired.into()),
        None => {
            if !std::io::stdin().is_terminal() {
                bail!(NO_SOURCE);
            }
            let a = rpassword::prompt_password("New repository password: ")?;
            let b = rpassword::prompt_password("Enter it again: ")?;
            if a != b {
                bail!("the passwords do not match");
            }
            a
        }
    };
    if pw.is_empty() {
        bail!(
            "the password is empty; use `snap init --no-encryption` for an unencrypted repository"
        );
    }
    Ok(pw)
}

/// A new passphrase for `key add` and `key passwd`.
pub fn new_key(file: Option<&std::path::Path>) -> Result<Zeroizing<String>> {
    let pw = Zeroizing::new(if let Some(f) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the new password file {}", f.display()))?,
        );
        first_line(&text)
    } else if let Ok(pw) = std::env::var("SNAP_NEW_PASSWORD") {
        pw
    } else {
        if !std::io::stdin().is_terminal() {
            bail!(
                "no new password given and no terminal to ask on: use --new-password-file or SNAP_NEW_PASSWORD"
            );
        }
        let a = Zeroizing::new(rpassword::prompt_password("New password: ")?);
        let b = Zeroizing::new(rpassword::prompt_password("Enter it again: ")?);
        if a != b {
            bail!("the passwords do not match");
        }
        (*a).clone()
    });
    if pw.is_empty() {
        bail!("the new password is empty");
    }
    Ok(pw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The page asks for the password when none is given, and knows that
    /// case by the error's type, not by its words.
    #[test]
    fn no_password_given_is_an_error_of_its_own() {
        let cli = crate::args::Cli::try_parse_from(["snap", "snapshots"]).unwrap();
        let profile = Profile::default();
        if std::env::var_os("SNAP_PASSWORD").is_some() {
            panic!("this test needs SNAP_PASSWORD unset");
        }
        for e in [
            existing(&cli.global, &profile, false).unwrap_err(),
            new(&cli.global, &profile, false).unwrap_err(),
        ] {
            assert!(
                matches!(crate::ctx::engine_error(&e), Some(Error::PasswordRequired)),
                "{e:#}"
            );
            assert_eq!(e.to_string(), "no password given");
        }
    }
}
