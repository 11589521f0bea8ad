//! Everything the user sees: progress bars on a terminal, warnings on
//! stderr, results on stdout as text or JSON.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use snap_engine::progress::Progress;

/// Verbosity chosen on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Quiet,
    Normal,
    Verbose,
}

pub struct Ui {
    pub level: Level,
    pub json: bool,
    bar: Mutex<Option<ProgressBar>>,
    bars: bool,
    /// Items (files, packs) done in the current phase, shown in the bar.
    items: std::sync::atomic::AtomicU64,
    phase: Mutex<(String, Option<u64>)>,
}

impl Ui {
    pub fn new(quiet: bool, verbose: u8, json: bool) -> Ui {
        let level = if quiet {
            Level::Quiet
        } else if verbose > 0 {
            Level::Verbose
        } else {
            Level::Normal
        };
        Ui {
            level,
            json,
            bar: Mutex::new(None),
            bars: level != Level::Quiet && std::io::stderr().is_terminal(),
            items: std::sync::atomic::AtomicU64::new(0),
            phase: Mutex::new((String::new(), None)),
        }
    }

    /// A message for people, on stderr, unless --quiet.
    pub fn say(&self, msg: &str) {
        if self.level != Level::Quiet {
            self.print_err(msg);
        }
    }

    fn print_err(&self, msg: &str) {
        match &*self.bar.lock().unwrap() {
            Some(bar) => bar.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        }
    }
}

impl Progress for Ui {
    fn warn(&self, message: &str) {
        // Warnings are shown even with --quiet: they change the exit code.
        self.print_err(&format!("warning: {message}"));
    }

    fn start(&self, phase: &str, total_bytes: Option<u64>, total_items: Option<u64>) {
        if !self.bars {
            return;
        }
        // The old bar goes first: drawn while it was still on screen, the
        // new one was appended to its line, and on a narrow terminal the
        // old phase's spinner stayed behind (check's "checking snapshots").
        if let Some(old) = self.bar.lock().unwrap().take() {
            old.finish_and_clear();
        }
        let bar = match (total_bytes, total_items) {
            (Some(total), _) => ProgressBar::new(total).with_style(bytes_bar()),
            (None, Some(_)) => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg:>12} {elapsed}")
                    .expect("static template"),
            ),
            (None, None) => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template(
                    "{spinner} {msg:>12} {bytes} {binary_bytes_per_sec} {elapsed}",
                )
                .expect("static template"),
            ),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_message(phase.to_string());
        self.items.store(0, std::sync::atomic::Ordering::Relaxed);
        *self.phase.lock().unwrap() = (phase.to_string(), total_items);
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar.lock().unwrap() = Some(bar);
    }

    fn wants_totals(&self) -> bool {
        self.bars
    }

    fn total(&self, bytes: u64, items: u64) {
        if let Some(bar) = &*self.bar.lock().unwrap() {
            bar.set_length(bytes);
            bar.set_style(bytes_bar());
        }
        self.phase.lock().unwrap().1 = Some(items);
    }

    fn bytes(&self, n: u64) {
        if let Some(bar) = &*self.bar.lock().unwrap() {
            bar.inc(n);
        }
    }

    fn item(&self, path: &Path) {
        let n = self
            .items
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if let Some(bar) = &*self.bar.lock().unwrap()
            && n.is_multiple_of(64)
        {
            let (phase, total) = &*self.phase.lock().unwrap();
            bar.set_message(match total {
                Some(t) => format!("{phase}: {n}/{t}"),
                None => format!("{phase}: {n} done"),
            });
        }
        if self.level == Level::Verbose {
            self.print_err(&path.display().to_string());
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap().take() {
            bar.finish_and_clear();
        }
    }
}

/// A bar over bytes, with percent and time left.
fn bytes_bar() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:>12} [{wide_bar}] {percent:>3}% {bytes}/{total_bytes} eta {eta}",
    )
    .expect("static template")
    .progress_chars("=> ")
}

/// A snapshot's tag in words, in the table and on the page: a restore's
/// undo snapshot is tagged `pre-restore` and `restoring:<64 hex>`, read as
/// "undo snapshot" and "before restoring a4b8312e"; other tags as they are.
pub fn tag(t: &str) -> String {
    match t.strip_prefix("restoring:") {
        Some(id) if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("before restoring {}", &id[..8])
        }
        _ if t == "pre-restore" => "undo snapshot".into(),
        _ => t.to_string(),
    }
}

/// A backup that wrote no snapshot because nothing changed since `parent`,
/// in the terminal's words and the page's.
pub fn unchanged_since(parent: &snap_engine::Id) -> String {
    format!("nothing changed since snapshot {}", parent.short())
}

/// What a backup on a device that may not delete says, once, about the
/// lock it could not remove.
pub fn lock_left(lock: &str) -> String {
    format!(
        "this device may not delete: its lock {lock} stays, marked released, for a device \
         with full rights to clear (its next `snap prune` does)"
    )
}

pub fn bytes(n: u64) -> String {
    HumanBytes(n).to_string()
}

/// Prints a report as one line of JSON on stdout: every `--json` output
/// is a serialized report type, never a hand-built value.
pub fn report<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string(value)?)
}

/// The reader of stdout went away (`snap ls | head`): the command stops
/// there and `main` exits 0 without a word, as `cat` would.
///
/// SIGPIPE stays ignored, as Rust sets it up, rather than restored to its
/// default: the default action also killed a backup, silently, when an S3
/// connection closed in the middle of an upload (hyper writes request bodies
/// with writev, which raises the signal), where an error lets it retry.
#[derive(Debug)]
pub struct ClosedOutput;

impl std::fmt::Display for ClosedOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the output was closed")
    }
}

impl std::error::Error for ClosedOutput {}

/// Writes to stdout, telling a closed pipe from other write errors.
pub fn write_fmt(args: std::fmt::Arguments) -> anyhow::Result<()> {
    write_all(args.to_string().as_bytes())
}

/// Writes bytes to stdout, telling a closed pipe from other write errors.
pub fn write_all(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ClosedOutput.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// `print!` that returns an error instead of panicking on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_fmt(format_args!($($arg)*))
    };
}

/// `println!` that returns an error instead of panicking on a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};

#[cfg(test)]
mod tests {
    use super::tag;

    #[test]
    fn an_undo_snapshot_s_tags_read_short() {
        let id = "a4b8312e".to_string() + &"0".repeat(56);
        assert_eq!(tag(&format!("restoring:{id}")), "before restoring a4b8312e");
        assert_eq!(tag("pre-restore"), "undo snapshot");
        assert_eq!(tag("restoring:a4b8"), "restoring:a4b8");
        assert_eq!(tag("daily"), "daily");
    }
}
