//! The `snap` command: arguments, passwords, repository location and
//! output. Every decision about data is made by `snap_engine`.

mod args;
mod config;
mod output;
mod password;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use serde_json::json;
use snap_engine::backend::{Backend, StoreBackend};
use snap_engine::commands::{self, check, create, inspect, prune, restore};
use snap_engine::snapshot::{KeepPolicy, Snapshot, SnapshotFilter};
use snap_engine::{Error, Id, InitOptions, Repository};

use args::{Cli, Command, Global};
use config::Profile;
use output::{Ui, out, outln};

/// An engine error with advice that depends on how snap was invoked.
#[derive(Debug)]
struct Hinted(Error, String);

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.0, self.1)
    }
}

impl std::error::Error for Hinted {}

/// The engine's error behind `e`, hinted or not.
fn engine_error(e: &anyhow::Error) -> Option<&Error> {
    e.downcast_ref::<Error>()
        .or_else(|| e.downcast_ref::<Hinted>().map(|h| &h.0))
}

/// A failure that already told the user what went wrong and only needs an
/// exit code (a check that found errors, a restore that skipped files).
#[derive(Debug)]
struct Reported(i32);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Reported {}

/// glibc raises its mmap threshold to the size of each large block freed,
/// so after the first multi-MiB buffers every later one comes from a
/// per-thread heap that keeps what it is given. A restore frees pack ranges
/// on other threads than the I/O threads that read them, and its resident
/// memory grew from 64 to 141 MB that way (local repository, 1.7 GB of
/// files). A fixed 1 MiB threshold hands large buffers back when freed: 88
/// MB, in the same time. Only for restore: a backup allocates a fresh
/// buffer per file and per chunk, and there the page faults cost 0.2 s of
/// 3.2 s; `check --read-data` lost 0.4 s.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_buffers_on_free() {
    // SAFETY: mallopt sets a tunable of the C allocator; it touches no Rust
    // state, and any value is valid for M_MMAP_THRESHOLD up to 32 MiB.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_buffers_on_free() {}

/// What `KdfParams::validate` accepts for a new key's knobs, in the words of the flags.
const KDF_RANGE: &str = "--kdf-memory must be 32 to 1048576 (KiB), --kdf-iterations 1 to 64, \
                         and memory × iterations at most 4194304 (4 GiB-passes)";

/// The filter that `--host`, `--tag` and `--path` ask for.
fn snapshot_filter(a: &args::FilterArgs) -> Result<SnapshotFilter> {
    Ok(SnapshotFilter {
        hosts: a.hosts.clone(),
        tags: split_tags(&a.tags)?,
        paths: a
            .paths
            .iter()
            .map(|p| path_bytes(p))
            .collect::<Result<_>>()?,
        containing: Vec::new(),
    })
}

/// Refuses a repository location that is neither a folder nor s3://: a
/// mistyped `s3:bucket` once made a folder of that name.
fn check_location(location: &str) -> Result<()> {
    if location.starts_with("s3://") {
        snap_engine::backend::S3Options::parse_location(location)?;
        return Ok(());
    }
    if let Some((scheme, _)) = location.split_once("://") {
        return Err(anyhow!(
            "repository {location:?}: unknown scheme {scheme:?}; give a directory or s3://BUCKET[/PATH]"
        ));
    }
    if let Some((scheme, _)) = location.split_once(':')
        && scheme != "local"
        && scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    {
        return Err(anyhow!(
            "repository {location:?} looks like a mistyped URL, not a folder: for a bucket \
             write s3://BUCKET[/PATH]; for a local folder of that name write ./{location}"
        ));
    }
    Ok(())
}

/// A profile's settings checked as a command would check them, when they
/// are saved: `snap config` once saved a mistyped `s3:bucket` or an
/// endpoint with a path, found wrong only by the first backup cron ran.
fn check_profile(name: &str, p: &Profile) -> Result<()> {
    if let Some(r) = &p.repository {
        if r.trim().is_empty() {
            return Err(anyhow!("profile {name}: the repository location is empty"));
        }
        check_location(r)?;
    }
    if let Some(e) = &p.endpoint {
        snap_engine::backend::S3Options::check_endpoint(e)?;
    }
    if p.region.as_ref().is_some_and(|r| r.trim().is_empty()) {
        return Err(anyhow!(
            "profile {name}: the region is empty (leave --region out for the default)"
        ));
    }
    let local = p
        .repository
        .as_ref()
        .is_some_and(|r| !r.starts_with("s3://"));
    let s3: Vec<&str> = [
        ("--endpoint", p.endpoint.is_some()),
        ("--region", p.region.is_some()),
        ("--s3-addressing", p.addressing.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect();
    if local && !s3.is_empty() {
        return Err(anyhow!(
            "profile {name}: {} appl{} to S3 repositories only, and its repository {:?} is a \
             local folder; for a bucket write --repo s3://BUCKET[/PATH]",
            s3.join(", "),
            if s3.len() == 1 { "ies" } else { "y" },
            p.repository.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}

/// `--tag a,b` is two tags, as in restic (it was once one tag "a,b" that
/// `--tag a` never found); an empty tag is a mistake.
fn split_tags(given: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for t in given.iter().flat_map(|t| t.split(',')) {
        let t = t.trim();
        if t.is_empty() {
            return Err(anyhow!("--tag {given:?} has an empty tag"));
        }
        out.push(t.to_string());
    }
    Ok(out)
}

/// Why an exclude pattern may have matched nothing, for the patterns
/// newcomers write.
fn exclude_advice(p: &str) -> &'static str {
    if p.starts_with('~') {
        ": the shell expands ~ only outside quotes; write \"$HOME/...\""
    } else if p.starts_with("./") || p.starts_with("../") {
        ": patterns are not relative to the current folder; write an absolute path, or \
         a name alone to match it anywhere"
    } else {
        ""
    }
}

/// `ID:PATH` into the snapshot and the path in it (`latest:/a`).
fn split_snapshot_path(spec: &str) -> (&str, Option<PathBuf>) {
    match spec.split_once(':') {
        Some((id, path)) if !path.is_empty() => {
            let path = if path.starts_with('/') {
                PathBuf::from(path)
            } else {
                PathBuf::from(format!("/{path}"))
            };
            (id, Some(path))
        }
        Some((id, _)) => (id, None),
        None => (spec, None),
    }
}

/// The command that puts the target back from the undo snapshot.
fn undo_command(u: &restore::Undo) -> String {
    let quote = |p: &std::path::Path| {
        let s = p.display().to_string();
        if s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@".contains(c))
        {
            s
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }
    };
    match u.paths.as_slice() {
        [one] if u.file => format!(
            "snap restore {}:{} --target {}",
            u.snapshot_id.short(),
            quote(one),
            quote(one.parent().unwrap_or(std::path::Path::new("/")))
        ),
        [one] => format!(
            "snap restore {}:{} --target {} --delete",
            u.snapshot_id.short(),
            quote(one),
            quote(one)
        ),
        _ => format!("snap restore {} --target / --delete", u.snapshot_id.short()),
    }
}

/// `--dry-run`: every change but the files kept, then the totals.
fn print_restore_plan(ui: &Ui, plan: &restore::Plan) -> Result<u8> {
    use restore::Change;
    let tally = plan.tally();
    let order = [
        Change::Create,
        Change::Replace,
        Change::Update,
        Change::Delete,
        Change::Skip,
        Change::Keep,
    ];
    let mut changes: Vec<(Change, String, &str, u64)> = plan
        .entries()
        .filter(|e| e.change != Change::Keep)
        .map(|e| {
            (
                e.change,
                e.path.display().to_string(),
                kind_name(e.node.kind),
                e.node.size,
            )
        })
        .collect();
    changes.extend(plan.extras.iter().map(|x| {
        (
            Change::Delete,
            x.path.display().to_string(),
            if x.dir { "dir" } else { "file" },
            x.bytes,
        )
    }));
    changes.sort_by(|a, b| a.1.cmp(&b.1));
    if ui.json {
        let totals: serde_json::Map<String, serde_json::Value> = order
            .iter()
            .map(|c| {
                let t = tally.get(c).copied().unwrap_or_default();
                (
                    c.name().to_string(),
                    json!({ "entries": t.entries, "bytes": t.bytes }),
                )
            })
            .collect();
        let list: Vec<_> = changes
            .iter()
            .map(|(c, p, k, b)| json!({ "change": c.name(), "path": p, "kind": k, "bytes": b }))
            .collect();
        output::json(&json!({
            "dry_run": true,
            "snapshot_id": plan.snapshot_id.to_hex(),
            "target": plan.target,
            "changes": list,
            "totals": totals,
            "existing_files": plan.existing_files,
            "files_deleted": plan.files_deleted,
            "errors": plan.errors,
        }))?;
    } else {
        for (c, p, _, _) in &changes {
            let mark = match c {
                Change::Create => "+",
                Change::Replace => "R",
                Change::Update => "U",
                Change::Delete => "-",
                _ => "=",
            };
            outln!("{mark} {p}")?;
        }
        let said: Vec<String> = order
            .iter()
            .map(|c| {
                let t = tally.get(c).copied().unwrap_or_default();
                format!("{} {} ({})", c.name(), t.entries, output::bytes(t.bytes))
            })
            .collect();
        ui.say(&format!(
            "dry run of snapshot {} into {}, nothing changed: {}",
            plan.snapshot_id.short(),
            plan.target.display(),
            said.join(", ")
        ));
        for e in &plan.errors {
            ui.say(&format!("would fail: {e}"));
        }
    }
    Ok(if plan.errors.is_empty() { 0 } else { 1 })
}

/// A restore that deletes more than half of what the target holds is most
/// likely aimed at the wrong folder: it asks on a terminal, and stops
/// without one unless --yes was given.
fn confirm_deletions(plan: &restore::Plan, yes: bool) -> Result<()> {
    let (deleted, existing) = (plan.files_deleted, plan.existing_files);
    if yes || deleted == 0 || deleted * 2 <= existing {
        return Ok(());
    }
    let what = format!(
        "this restore deletes {deleted} of the {existing} files in {}",
        plan.target.display()
    );
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        if confirm(&format!("{what}. Go on?"))? {
            return Ok(());
        }
        return Err(anyhow!("nothing was changed"));
    }
    Err(anyhow!(
        "{what}, more than half: check --target (--dry-run lists them), then add --yes"
    ))
}

/// `snap dump`: to stdout, which must not be a terminal for a tar stream.
fn dump_to_stdout(
    repo: &mut Repository,
    id: &Id,
    filter: &SnapshotFilter,
    path: &[u8],
) -> Result<()> {
    /// Notes whether the reader went away, to exit quietly as `ls | head` does.
    struct Watch<W> {
        inner: W,
        closed: bool,
    }
    impl<W: std::io::Write> std::io::Write for Watch<W> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.inner.write(b).inspect_err(|e| {
                self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe;
            })
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush().inspect_err(|e| {
                self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe;
            })
        }
    }
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = Watch {
        inner: std::io::BufWriter::with_capacity(1 << 20, stdout.lock()),
        closed: false,
    };
    // A file is fine on a terminal; a directory's tar stream is not.
    match commands::dump::dump(repo, &id.to_hex(), filter, path, !terminal, &mut out) {
        Ok(_) => Ok(()),
        Err(_) if out.closed => Err(output::ClosedOutput.into()),
        Err(e) => Err(e.into()),
    }
}

/// A retention group as a person reads it: "host laptop, paths /a, /b".
fn group_name(k: &snap_engine::snapshot::GroupKey) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &k.host {
        parts.push(format!("host {h}"));
    }
    if let Some(p) = &k.paths {
        let shown: Vec<_> = p.iter().map(|p| String::from_utf8_lossy(p)).collect();
        parts.push(format!("paths {}", shown.join(", ")));
    }
    if let Some(t) = &k.tags {
        parts.push(if t.is_empty() {
            "no tags".to_string()
        } else {
            format!("tags {}", t.join(", "))
        });
    }
    if parts.is_empty() {
        "all snapshots".to_string()
    } else {
        parts.join(", ")
    }
}

/// A snapshot as a person recognises it: short id, host, local time, paths.
fn describe(id: &Id, s: &Snapshot) -> String {
    format!(
        "{} of {} ({}, {})",
        id.short(),
        s.host,
        s.time()
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S"),
        s.paths_lossy().join(", ")
    )
}

/// Resolves `latest` or an id prefix among the snapshots `filter` admits,
/// and says which snapshot that is: `restore latest --host A` once picked
/// the snapshot of another folder of A without a word.
fn choose(
    repo: &Repository,
    ui: &Ui,
    spec: &str,
    filter: &SnapshotFilter,
) -> Result<(Id, Snapshot)> {
    let (id, s) = repo.find_snapshot(spec, filter)?;
    if spec != id.to_hex() {
        ui.say(&format!("using snapshot {}", describe(&id, &s)));
    }
    Ok((id, s))
}

/// Said when a repository is made: nothing else can open it.
const LOST_PASSWORD: &str = "keep the password safe: without it nobody, you included, can read \
                             these backups again. `snap key add` adds a second password";

/// Asks a yes/no question on the terminal; only "y" or "yes" is yes.
fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// A key weaker than the defaults costs an attacker less per guess.
fn warn_weak_kdf(ui: &Ui, kdf: &snap_engine::crypto::KdfParams) {
    if kdf.weaker_than_default() {
        snap_engine::progress::Progress::warn(
            ui,
            &format!(
                "the key derivation ({} KiB, {} passes) is weaker than the default (65536 KiB, \
             14 passes): each password guess costs an attacker less",
                kdf.memory_kib, kdf.iterations
            ),
        );
    }
}

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

/// Settings resolved from the command line, the environment and the
/// profile, in that order.
struct Ctx<'a> {
    global: &'a Global,
    profile: Profile,
    /// Every profile in the config file, named when none is in use.
    profiles: Vec<String>,
    ui: &'a Ui,
}

impl Ctx<'_> {
    /// Where the repository is, and whether it is the built-in default.
    fn location(&self) -> Result<(String, bool)> {
        if let Some(r) = &config::pick(
            self.global,
            "repo",
            &self.global.repo,
            &self.profile.repository,
        ) {
            if r.trim().is_empty() {
                return Err(anyhow!("the repository location is empty"));
            }
            return Ok((r.clone(), false));
        }
        let dir = dirs::data_dir()
            .ok_or_else(|| {
                anyhow!("no --repo given and no data directory to put a default repository in")
            })?
            .join("snap")
            .join("repository");
        Ok((dir.display().to_string(), true))
    }

    fn backend(&self, location: &str, create: bool) -> Result<Arc<dyn Backend>> {
        if location.starts_with("s3://") {
            let opts = config::s3_options(location, self.global, &self.profile)?;
            return Ok(Arc::new(StoreBackend::s3(&opts)?));
        }
        check_location(location)?;
        let s3_flags = self.global.s3_flags_given();
        if !s3_flags.is_empty() {
            return Err(anyhow!(
                "{} appl{} to S3 repositories only, and the repository {location:?} is a local \
                 folder; for a bucket write --repo s3://BUCKET[/PATH]",
                s3_flags.join(", "),
                if s3_flags.len() == 1 { "ies" } else { "y" }
            ));
        }
        let p = &self.profile;
        let unused: Vec<&str> = [
            ("endpoint", p.endpoint.is_some()),
            ("region", p.region.is_some()),
            ("addressing", p.addressing.is_some()),
            ("access_key_id", p.access_key_id.is_some()),
            ("secret_access_key", p.secret_access_key.is_some()),
            (
                "secret_access_key_command",
                p.secret_access_key_command.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if !unused.is_empty() {
            self.ui.say(&format!(
                "warning: profile {} sets {}, but the repository {location:?} is a local folder, \
                 so they are not used; for a bucket write s3://BUCKET[/PATH]",
                p.name,
                unused.join(", ")
            ));
        }
        let path = location.strip_prefix("local:").unwrap_or(location);
        let backend = StoreBackend::local(&PathBuf::from(path), create)
            .map_err(|e| self.hint(e, location))?;
        Ok(Arc::new(backend))
    }

    /// Remote repositories get a local cache of index, snapshots and trees
    /// (and of the config and key file that unlock them).
    fn cache_base(&self, location: &str) -> Result<Option<PathBuf>> {
        if self.global.no_cache || !location.starts_with("s3://") {
            return Ok(None);
        }
        let base = match config::pick(
            self.global,
            "cache_dir",
            &self.global.cache_dir,
            &self.profile.cache_dir,
        ) {
            Some(d) => d,
            None => dirs::cache_dir()
                .ok_or_else(|| anyhow!("no cache directory; use --cache-dir or --no-cache"))?
                .join("snap"),
        };
        Ok(Some(base))
    }

    fn open(&self) -> Result<Repository> {
        self.open_with(true)
    }

    /// The built-in default repository while profiles exist but none is in
    /// use: most likely the user forgot -P, as a newcomer's `snap create`
    /// that went to a local folder instead of their bucket showed.
    fn forgotten_profile(&self) -> Option<String> {
        (self.profile.name.is_empty() && !self.profiles.is_empty()).then(|| {
            format!(
                "no profile is in use, and the config file has {}: choose one with -P NAME, or \
                 make one the default with `snap config --default NAME`",
                self.profiles.join(", ")
            )
        })
    }

    /// `cache: false` reads everything from storage, for a check of what
    /// the bucket holds rather than what this device remembers.
    fn open_with(&self, cache: bool) -> Result<Repository> {
        let (loc, is_default) = self.location()?;
        let backend = self.backend(&loc, false)?;
        let pw = || {
            password::existing(self.global, &self.profile)
                .map_err(|e| Error::Other(format!("{e:#}")))
        };
        let opts = snap_engine::OpenOptions {
            cache: if cache { self.cache_base(&loc)? } else { None },
            state: Some(self.state_base()?),
            allow_unencrypted: self.global.insecure_no_encryption,
            password_configured: password::is_configured(self.global, &self.profile),
        };
        let repo = Repository::open_with(backend, &pw, &opts).map_err(|e| self.hint(e, &loc))?;
        if is_default && let Some(hint) = self.forgotten_profile() {
            self.ui.say(&format!(
                "note: using the local default repository {loc}; {hint}"
            ));
        }
        Ok(repo)
    }

    /// Advice for an engine error that depends on how snap was invoked.
    fn hint(&self, e: Error, location: &str) -> anyhow::Error {
        match e {
            Error::RepositoryNotFound(_) => {
                let hint = match self.forgotten_profile() {
                    Some(h) if self.location().is_ok_and(|(_, default)| default) => h,
                    _ => format!("create one with `{}`", self.init_command(location)),
                };
                anyhow::Error::new(Hinted(e, hint))
            }
            // With several sources, which one won is the question.
            Error::WrongPassword => match password::source(self.global, &self.profile) {
                Some((what, from)) => {
                    let hint = if what.starts_with('(') {
                        format!("the password tried came from {from}")
                    } else {
                        format!("the password tried came from {from}: {what}")
                    };
                    anyhow::Error::new(Hinted(e, hint))
                }
                None => e.into(),
            },
            e => e.into(),
        }
    }

    /// The init command for this location, as the user reaches it: a
    /// newcomer told "run `snap init`" made the local default instead.
    fn init_command(&self, location: &str) -> String {
        if self.global.given_on_command_line("repo") {
            format!("snap --repo {location} init")
        } else if !self.profile.name.is_empty() {
            format!("snap -P {} init", self.profile.name)
        } else {
            "snap init".to_string()
        }
    }

    /// Where this device remembers each repository it opened (its id,
    /// whether it is encrypted, the snapshots seen): not in the cache,
    /// which may be wiped.
    fn state_base(&self) -> Result<PathBuf> {
        Ok(dirs::data_dir()
            .ok_or_else(|| {
                anyhow!("no data directory to keep what this device knows of repositories")
            })?
            .join("snap")
            .join("state"))
    }

    /// A new repository, remembered on this device from the start.
    fn init(
        &self,
        location: &str,
        opts: InitOptions,
    ) -> Result<(Repository, commands::InitResult)> {
        let (mut repo, r) = commands::init(self.backend(location, true)?, opts)?;
        repo.use_state(&self.state_base()?)?;
        Ok((repo, r))
    }

    fn init_options(&self, no_encryption: bool) -> Result<InitOptions> {
        let password = if no_encryption {
            // Every later command would take this repository, with a
            // password configured, for one whose encryption was removed.
            if password::is_configured(self.global, &self.profile) {
                return Err(anyhow!(
                    "--no-encryption, but a password is configured (SNAP_PASSWORD, a password \
                     file or command, or the profile's): unset it, or leave out --no-encryption"
                ));
            }
            None
        } else {
            Some(password::new(self.global, &self.profile)?)
        };
        Ok(InitOptions::new(password))
    }
}

fn run(cli: &Cli, ui: &Ui) -> Result<u8> {
    let g = &cli.global;
    match &cli.command {
        Command::Config(a) if !a.check => return configure(g, a, ui),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "snap", &mut script);
            output::write_all(&script)?;
            return Ok(0);
        }
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
    };
    match &cli.command {
        Command::Init(a) => {
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
                output::json(&json!({
                    "location": r.location,
                    "repository_id": r.repository_id.to_hex(),
                    "encrypted": r.encrypted,
                    "key_id": r.key_id.map(|k| k.to_hex()),
                }))?;
            } else {
                ui.say(&format!(
                    "created repository {} at {}",
                    r.repository_id.short(),
                    r.location
                ));
                if r.encrypted {
                    ui.say(LOST_PASSWORD);
                } else {
                    ui.say("the repository is NOT encrypted: anyone who can read it can read your files");
                }
            }
            Ok(0)
        }
        Command::Create(a) => {
            let (loc, is_default) = ctx.location()?;
            let mut repo = match ctx.open() {
                Err(e)
                    if is_default
                        && matches!(engine_error(&e), Some(Error::RepositoryNotFound(_))) =>
                {
                    if let Some(hint) = ctx.forgotten_profile() {
                        return Err(anyhow!(
                            "not creating the local default repository {loc}: {hint}; or give \
                             --repo DIR for a local repository"
                        ));
                    }
                    let (repo, r) = ctx.init(&loc, ctx.init_options(false)?)?;
                    ui.say(&format!(
                        "created a new repository at {} (the default; use --repo for another)",
                        r.location
                    ));
                    ui.say(LOST_PASSWORD);
                    repo
                }
                other => other?,
            };
            if !repo.is_encrypted() {
                ui.say("note: this repository is not encrypted");
            }
            let opts = create::CreateOptions {
                paths: a.paths.clone(),
                tags: split_tags(&a.tags)?,
                host: match &a.host {
                    Some(h) if h.trim().is_empty() => {
                        return Err(anyhow!(
                            "--host is empty: leave it out for this machine's name"
                        ));
                    }
                    h => h.clone(),
                },
                excludes: a.excludes.clone(),
                parent: a.parent.clone(),
                force: a.force,
                ..Default::default()
            };
            let r = create::create(&mut repo, &opts, ui)?;
            let s = &r.snapshot.summary;
            if ui.json {
                output::json(&json!({
                    "snapshot_id": r.snapshot_id.to_hex(),
                    "short_id": r.snapshot_id.short(),
                    "parent": r.snapshot.parent.map(|p| p.to_hex()),
                    "files_new": s.files_new,
                    "files_changed": s.files_changed,
                    "files_unmodified": s.files_unmodified,
                    "dirs": s.dirs,
                    "files": s.files,
                    "bytes_total": s.bytes_total,
                    "bytes_read": s.bytes_read,
                    "bytes_added": s.bytes_added,
                    "blobs_added": s.blobs_added,
                    "duration_s": s.duration_ns as f64 / 1e9,
                    "warnings": r.warnings,
                    "changed_while_read": r.changed_while_read,
                    "unused_excludes": r.unused_excludes,
                }))?;
            } else {
                ui.say(&format!(
                    "files: {} new, {} changed, {} unmodified; {} read, {} added to the repository in {:.1}s",
                    s.files_new,
                    s.files_changed,
                    s.files_unmodified,
                    output::bytes(s.bytes_read),
                    output::bytes(s.bytes_added),
                    s.duration_ns as f64 / 1e9
                ));
                // The id for scripts; -q means errors only (use --json).
                if ui.level != output::Level::Quiet {
                    outln!("{}", r.snapshot_id)?;
                }
            }
            for p in &r.unused_excludes {
                ui.say(&format!(
                    "note: --exclude {p:?} matched nothing{}",
                    exclude_advice(p)
                ));
            }
            if !r.warnings.is_empty() {
                let unread = r.warnings.len() as u64 - r.changed_while_read;
                let mut parts = Vec::new();
                if unread > 0 {
                    parts.push(format!(
                        "{unread} path(s) could not be read and are not in it"
                    ));
                }
                if r.changed_while_read > 0 {
                    parts.push(format!(
                        "{} file(s) changed while they were read and are stored as read \
                         (the next backup reads them again)",
                        r.changed_while_read
                    ));
                }
                ui.say(&format!(
                    "snapshot {} was written, but {} (listed above)",
                    r.snapshot_id.short(),
                    parts.join(", and ")
                ));
                return Ok(3);
            }
            Ok(0)
        }
        Command::Snapshots(a) => {
            let repo = ctx.open()?;
            let list = commands::snapshots(&repo, &snapshot_filter(&a.filter)?)?;
            if ui.json {
                let arr: Vec<_> = list.iter().map(|(id, s)| snapshot_json(id, s)).collect();
                output::json(&serde_json::Value::Array(arr))?;
            } else {
                print_snapshot_table(&list)?;
            }
            Ok(0)
        }
        Command::Restore(a) => {
            return_large_buffers_on_free();
            let mut repo = ctx.open()?;
            let mut filter = snapshot_filter(&a.filter)?;
            let (spec, path) = split_snapshot_path(&a.snapshot);
            // `latest:PATH` is the newest snapshot that has PATH.
            if let Some(p) = &path {
                filter.containing.push(path_bytes(p)?);
            }
            let (id, _) = choose(&repo, ui, spec, &filter)?;
            let opts = restore::RestoreOptions {
                snapshot: id.to_hex(),
                path,
                target: a.target.clone(),
                filter,
                include: a.include.clone(),
                exclude: a.exclude.clone(),
                delete: a.delete,
                overwrite: a
                    .overwrite
                    .parse()
                    .map_err(|e: String| anyhow!("--overwrite: {e}"))?,
                no_undo: a.no_undo,
            };
            let plan = restore::plan(&mut repo, &opts)?;
            if a.dry_run {
                return print_restore_plan(ui, &plan);
            }
            confirm_deletions(&plan, a.yes)?;
            let r = restore::apply(&mut repo, &plan, &opts, ui)?;
            let undo_command = r.undo.as_ref().map(undo_command);
            if ui.json {
                output::json(&json!({
                    "snapshot_id": r.snapshot_id.to_hex(),
                    "files": r.files,
                    "dirs": r.dirs,
                    "bytes": r.bytes,
                    "files_written": r.files_written,
                    "files_kept": r.files_kept,
                    "files_updated": r.files_updated,
                    "skipped": r.skipped,
                    "deleted": r.deleted,
                    "files_deleted": r.files_deleted,
                    "bytes_downloaded": r.bytes_downloaded,
                    "undo_snapshot_id": r.undo.as_ref().map(|u| u.snapshot_id.to_hex()),
                    "undo_command": undo_command,
                    "errors": r.errors,
                    "warnings": r.warnings,
                }))?;
            } else {
                let mut parts = vec![format!("{} files written", r.files_written)];
                if r.files_kept > 0 {
                    parts.push(format!("{} already right", r.files_kept));
                }
                if r.files_updated > 0 {
                    parts.push(format!("{} with metadata updated", r.files_updated));
                }
                if r.skipped > 0 {
                    parts.push(format!("{} left by --overwrite", r.skipped));
                }
                if a.delete {
                    parts.push(format!("{} deleted ({} files)", r.deleted, r.files_deleted));
                }
                ui.say(&format!(
                    "restored snapshot {} into {}: {}; {} in {} files and {} directories",
                    r.snapshot_id.short(),
                    a.target.display(),
                    parts.join(", "),
                    output::bytes(r.bytes),
                    r.files,
                    r.dirs
                ));
                if let (Some(u), Some(cmd)) = (&r.undo, &undo_command) {
                    ui.say(&format!(
                        "what was there before is in snapshot {}; to put it back: {cmd}",
                        u.snapshot_id.short()
                    ));
                    if let Some(first) = u.earlier.last() {
                        ui.say(&format!(
                            "an earlier restore of this snapshot here took undo snapshot {}: \
                             if it was interrupted, what was there before it is in that one",
                            first.short()
                        ));
                    }
                }
            }
            if !r.errors.is_empty() {
                eprintln!(
                    "error: {} item(s) could not be restored (listed above)",
                    r.errors.len()
                );
                return Err(Reported(1).into());
            }
            if !r.warnings.is_empty() {
                ui.say(&format!(
                    "restored, but {} extended attribute(s) were refused by the target (listed \
                     above)",
                    r.warnings.len()
                ));
                return Ok(3);
            }
            Ok(0)
        }
        Command::Dump(a) => {
            let mut repo = ctx.open()?;
            let filter = snapshot_filter(&a.filter)?;
            let (id, _) = choose(&repo, ui, &a.snapshot, &filter)?;
            let path = path_bytes(&a.path)?;
            dump_to_stdout(&mut repo, &id, &filter, &path)?;
            Ok(0)
        }
        Command::Forget(a) => {
            let repo = ctx.open()?;
            let chosen =
                commands::resolve_for_removal(&repo, &a.ids, &snapshot_filter(&a.filter)?)?;
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
                let key = if a.dry_run { "would_remove" } else { "removed" };
                output::json(&json!({ key: ids.iter().map(Id::to_hex).collect::<Vec<_>>() }))?;
            } else if !a.dry_run {
                ui.say("run `snap prune` to free the space their data used");
            }
            Ok(0)
        }
        Command::Prune(a) => {
            let mut repo = ctx.open()?;
            let opts = prune::PruneOptions {
                policy: KeepPolicy {
                    last: a.keep_last,
                    hourly: a.keep_hourly,
                    daily: a.keep_daily,
                    weekly: a.keep_weekly,
                    monthly: a.keep_monthly,
                    yearly: a.keep_yearly,
                    within: a.keep_within,
                    tags: a.keep_tag.clone(),
                },
                group_by: a.group_by,
                filter: SnapshotFilter {
                    hosts: a.hosts.clone(),
                    ..Default::default()
                },
                dry_run: a.dry_run,
                ..Default::default()
            };
            let r = prune::prune(&mut repo, &opts, ui)?;
            if ui.json {
                output::json(&json!({
                    "dry_run": r.dry_run,
                    "snapshots_forgotten": r.snapshots_forgotten.iter().map(Id::to_hex).collect::<Vec<_>>(),
                    "snapshots_kept": r.snapshots_kept.iter().map(|(id, why)| json!({"id": id.to_hex(), "reasons": why})).collect::<Vec<_>>(),
                    "packs_deleted": r.packs_deleted,
                    "packs_deferred": r.packs_deferred,
                    "packs_restored": r.packs_restored,
                    "packs_repacked": r.packs_repacked,
                    "packs_kept": r.packs_kept,
                    "blobs_removed": r.blobs_removed,
                    "bytes_before": r.bytes_before,
                    "trees_read": r.trees_read,
                    "index_files_kept": r.index_files_kept,
                    "index_files_written": r.index_files_written,
                    "bytes_after": r.bytes_after,
                }))?;
            } else {
                let verb = if r.dry_run { "would remove" } else { "remove" };
                for g in &r.groups {
                    ui.say(&format!("{}:", group_name(&g.key)));
                    for (id, s, why) in &g.snapshots {
                        let time = s
                            .time()
                            .with_timezone(&chrono::Local)
                            .format("%Y-%m-%d %H:%M");
                        if why.is_empty() {
                            ui.say(&format!("  {verb:<12} {}  {time}", id.short()));
                        } else {
                            ui.say(&format!(
                                "  {:<12} {}  {time}  ({})",
                                "keep",
                                id.short(),
                                why.join(", ")
                            ));
                        }
                    }
                }
                let removed = r.snapshots_forgotten.len();
                let kept = r.snapshots_kept.len();
                let freed = r.bytes_before.saturating_sub(r.bytes_after);
                ui.say(&format!(
                    "{kept} snapshot(s) kept, {removed} {}",
                    if r.dry_run {
                        "would be removed"
                    } else {
                        "removed"
                    }
                ));
                if r.blobs_removed == 0 && r.packs_deleted == 0 && r.packs_repacked == 0 {
                    ui.say(&format!(
                        "no unused data: the repository stays at {}",
                        output::bytes(r.bytes_before)
                    ));
                } else if freed == 0 {
                    ui.say(&format!(
                        "{} unused blob(s) stay, in packs still mostly in use (repacking them \
                         would cost more than it frees); the repository stays at {}",
                        r.blobs_removed,
                        output::bytes(r.bytes_before)
                    ));
                } else {
                    ui.say(&format!(
                        "{} {} of unused data ({} blob(s)): {} pack(s) deleted, {} repacked, {} \
                         left as they were; {} -> {}",
                        if r.dry_run { "would free" } else { "freed" },
                        output::bytes(freed),
                        r.blobs_removed,
                        r.packs_deleted,
                        r.packs_repacked,
                        r.packs_kept,
                        output::bytes(r.bytes_before),
                        output::bytes(r.bytes_after)
                    ));
                }
                if r.packs_deferred > 0 {
                    ui.say(&format!(
                        "{} pack(s) wait for backups running on other devices to finish; a later prune deletes them",
                        r.packs_deferred
                    ));
                }
            }
            Ok(0)
        }
        Command::Config(_) => check_connection(&ctx),
        Command::Completions { .. } | Command::Man => {
            unreachable!("handled above")
        }
        Command::Ls(a) => {
            let mut repo = ctx.open()?;
            let filter = snapshot_filter(&a.filter)?;
            let (chosen, _) = choose(&repo, ui, &a.snapshot, &filter)?;
            let under = a.path.as_ref().map(|p| path_bytes(p)).transpose()?;
            let (id, _, entries) =
                inspect::ls(&mut repo, &chosen.to_hex(), &filter, under.as_deref())?;
            if ui.json {
                let arr: Vec<_> = entries
                    .iter()
                    .map(|e| entry_json(&e.path, &e.node))
                    .collect();
                output::json(&json!({ "snapshot_id": id.to_hex(), "entries": arr }))?;
            } else {
                for e in &entries {
                    let path = String::from_utf8_lossy(&e.path);
                    if a.long {
                        outln!("{}", long_line(&e.node, &path))?;
                    } else {
                        outln!("{path}")?;
                    }
                }
            }
            Ok(0)
        }
        Command::Diff(a) => {
            let mut repo = ctx.open()?;
            let filter = snapshot_filter(&a.filter)?;
            let (first, _) = choose(&repo, ui, &a.first, &filter)?;
            let (second, _) = choose(&repo, ui, &a.second, &filter)?;
            let (ia, ib, changes) = inspect::diff(&mut repo, &first.to_hex(), &second.to_hex())?;
            let mark = |k: inspect::ChangeKind| match k {
                inspect::ChangeKind::Added => ("+", "added"),
                inspect::ChangeKind::Removed => ("-", "removed"),
                inspect::ChangeKind::Modified => ("M", "modified"),
                inspect::ChangeKind::Metadata => ("U", "metadata"),
            };
            if ui.json {
                let arr: Vec<_> = changes
                    .iter()
                    .map(|c| json!({ "change": mark(c.kind).1, "path": String::from_utf8_lossy(&c.path) }))
                    .collect();
                output::json(&json!({ "from": ia.to_hex(), "to": ib.to_hex(), "changes": arr }))?;
            } else {
                for c in &changes {
                    outln!("{} {}", mark(c.kind).0, String::from_utf8_lossy(&c.path))?;
                }
                let count = |k| changes.iter().filter(|c| c.kind == k).count();
                ui.say(&format!(
                    "{} added, {} removed, {} modified, {} metadata only",
                    count(inspect::ChangeKind::Added),
                    count(inspect::ChangeKind::Removed),
                    count(inspect::ChangeKind::Modified),
                    count(inspect::ChangeKind::Metadata)
                ));
            }
            Ok(0)
        }
        Command::Find(a) => {
            let mut repo = ctx.open()?;
            let hits = inspect::find(&mut repo, &a.pattern, &snapshot_filter(&a.filter)?)?;
            if ui.json {
                let arr: Vec<_> = hits
                    .iter()
                    .map(|(id, s, e)| {
                        let mut v = entry_json(&e.path, &e.node);
                        v["snapshot_id"] = json!(id.to_hex());
                        v["snapshot_time"] = json!(s.time().to_rfc3339());
                        v
                    })
                    .collect();
                output::json(&serde_json::Value::Array(arr))?;
            } else {
                for (id, _, e) in &hits {
                    outln!(
                        "{}  {}",
                        id.short(),
                        long_line(&e.node, &String::from_utf8_lossy(&e.path))
                    )?;
                }
                ui.say(&format!("{} match(es)", hits.len()));
            }
            Ok(0)
        }
        Command::Stats => {
            let mut repo = ctx.open()?;
            let st = inspect::stats(&mut repo)?;
            if ui.json {
                output::json(&json!({
                    "snapshots": st.snapshots,
                    "packs": st.packs,
                    "stored_bytes": st.stored_bytes,
                    "data_blobs": st.data_blobs,
                    "tree_blobs": st.tree_blobs,
                    "unique_bytes": st.unique_bytes,
                    "restore_bytes": st.restore_bytes,
                    "dedup_ratio": st.dedup_ratio(),
                    "compression_ratio": st.compression_ratio(),
                    "per_snapshot": st.per_snapshot.iter().map(|(id, b)| json!({"id": id.to_hex(), "restore_bytes": b})).collect::<Vec<_>>(),
                }))?;
            } else {
                outln!("snapshots:          {}", st.snapshots)?;
                outln!(
                    "stored:             {} in {} packs",
                    output::bytes(st.stored_bytes),
                    st.packs
                )?;
                outln!(
                    "restore size:       {} (all snapshots)",
                    output::bytes(st.restore_bytes)
                )?;
                outln!(
                    "unique data:        {} in {} chunks",
                    output::bytes(st.unique_bytes),
                    st.data_blobs
                )?;
                outln!("deduplication:      {:.2}x", st.dedup_ratio())?;
                outln!("compression:        {:.2}x", st.compression_ratio())?;
                for (id, b) in &st.per_snapshot {
                    outln!("  {}  {}", id.short(), output::bytes(*b))?;
                }
            }
            Ok(0)
        }
        Command::Key(k) => key_command(&ctx, k, ui),
        Command::Check(a) => {
            let mut repo = ctx.open_with(a.with_cache)?;
            let r = check::check(
                &mut repo,
                &check::CheckOptions {
                    read_data: a.read_data,
                    subset: a.read_data_subset,
                },
                ui,
            )?;
            if ui.json {
                output::json(&json!({
                    "ok": r.ok(),
                    "snapshots": r.snapshots,
                    "trees": r.trees,
                    "packs": r.packs,
                    "packs_read": r.packs_read,
                    "errors": r.errors,
                    "warnings": r.warnings,
                    "damaged_packs": r.damaged_packs.iter().map(Id::to_hex).collect::<Vec<_>>(),
                    "affected": r.affected,
                }))?;
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
    }
}

fn new_kdf(a: &args::NewPasswordArgs) -> Result<snap_engine::crypto::KdfParams> {
    let mut kdf = snap_engine::crypto::KdfParams::new_default();
    if let Some(m) = a.kdf_memory {
        kdf.memory_kib = m;
    }
    if let Some(t) = a.kdf_iterations {
        kdf.iterations = t;
    }
    kdf.validate().map_err(|_| anyhow!(KDF_RANGE))?;
    Ok(kdf)
}

fn key_command(ctx: &Ctx, cmd: &args::KeyCommand, ui: &Ui) -> Result<u8> {
    use args::KeyCommand;
    let mut repo = ctx.open()?;
    match cmd {
        KeyCommand::List => {
            let keys = repo.keys()?;
            let current = repo.key_id();
            if ui.json {
                let arr: Vec<_> = keys
                    .iter()
                    .map(|(id, k)| {
                        json!({
                            "id": id.to_hex(),
                            "current": Some(*id) == current,
                            "created": chrono::DateTime::from_timestamp_nanos(k.created_ns).to_rfc3339(),
                            "host": k.host,
                            "username": k.username,
                            "kdf_memory_kib": k.kdf.memory_kib,
                            "kdf_iterations": k.kdf.iterations,
                        })
                    })
                    .collect();
                output::json(&serde_json::Value::Array(arr))?;
            } else {
                outln!("  {:<8}  {:<19}  {:<16}  User", "ID", "Created", "Host")?;
                for (id, k) in &keys {
                    let mark = if Some(*id) == current { "*" } else { " " };
                    let created = chrono::DateTime::from_timestamp_nanos(k.created_ns)
                        .with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M:%S");
                    outln!(
                        "{mark} {:<8}  {created}  {:<16}  {}",
                        id.short(),
                        k.host,
                        k.username
                    )?;
                }
            }
        }
        KeyCommand::Add(a) => {
            let pw = password::new_key(a.new_password_file.as_deref())?;
            let kdf = new_kdf(a)?;
            warn_weak_kdf(ui, &kdf);
            let id = repo.add_key(&pw, kdf)?;
            if ui.json {
                output::json(&json!({ "added": id.to_hex() }))?;
            } else {
                ui.say(&format!("added key {}", id.short()));
            }
        }
        KeyCommand::Remove { id } => {
            let removed = repo.remove_key(id)?;
            if ui.json {
                output::json(&json!({ "removed": removed.to_hex() }))?;
            } else {
                ui.say(&format!("removed key {}", removed.short()));
            }
        }
        KeyCommand::Passwd(a) => {
            let pw = password::new_key(a.new_password_file.as_deref())?;
            let kdf = new_kdf(a)?;
            warn_weak_kdf(ui, &kdf);
            let id = repo.change_password(&pw, kdf)?;
            if ui.json {
                output::json(&json!({ "key": id.to_hex() }))?;
            } else {
                ui.say(&format!("password changed; the key is now {}", id.short()));
            }
        }
    }
    Ok(0)
}

/// `snap config`: saves the connection settings given on the command line
/// (and, with --save-keys, the keys in the environment) into a profile,
/// then shows it without secrets.
fn configure(g: &Global, a: &args::ConfigArgs, ui: &Ui) -> Result<u8> {
    let mut file = config::ConfigFile::load(&|w| ui.say(w))?;
    const SETTINGS: [&str; 11] = [
        "repo",
        "endpoint",
        "region",
        "s3_addressing",
        "access_key_id",
        "secret_access_key",
        "connections",
        "password_file",
        "password_command",
        "cache_dir",
        "no_bulk_delete",
    ];
    let given: Vec<&str> = SETTINGS
        .into_iter()
        .filter(|id| g.given_on_command_line(id))
        .collect();
    let profile = config::profile_name(g)?;
    if let Some(name) = &a.default {
        if !file.profiles.contains_key(name) {
            return Err(anyhow!(
                "no profile {name:?} to make the default (create it with `snap config --profile \
                 {name} --repo ...`)"
            ));
        }
        file.default = Some(name.clone());
        let path = file.save()?;
        ui.say(&format!(
            "profile {name} is now the default (in {})",
            path.display()
        ));
        return Ok(0);
    }
    if a.no_default {
        file.default = None;
        file.save()?;
        ui.say("no profile is the default now");
        return Ok(0);
    }
    if profile.is_none()
        && (!given.is_empty() || a.save_keys || a.secret_command.is_some() || a.remove)
    {
        return Err(anyhow!(
            "settings are saved in a profile: add --profile NAME (given: {})",
            given
                .iter()
                .map(|id| format!("--{}", id.replace('_', "-")))
                .chain(a.save_keys.then(|| "--save-keys".to_string()))
                .chain(
                    a.secret_command
                        .as_ref()
                        .map(|_| "--secret-command".to_string())
                )
                .chain(a.remove.then(|| "--remove".to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let Some(name) = profile else {
        let names: Vec<&String> = file.profiles.keys().collect();
        if ui.json {
            output::json(&json!({
                "path": config::path()?,
                "profiles": names,
                "default": file.default,
            }))?;
        } else {
            outln!("config file: {}", config::path()?.display())?;
            for n in names {
                let mark = if file.default.as_ref() == Some(n) {
                    " (default)"
                } else {
                    ""
                };
                outln!("profile {n}{mark}")?;
            }
        }
        return Ok(0);
    };
    if a.remove {
        if file.profiles.remove(name).is_none() {
            return Err(anyhow!("no profile {name:?}"));
        }
        if file.default.as_ref() == Some(name) {
            file.default = None;
        }
        file.save()?;
        ui.say(&format!("removed profile {name}"));
        return Ok(0);
    }
    let from_cli = |id: &str| g.given_on_command_line(id);
    let existed = file.profiles.contains_key(name);
    let p = file.profiles.entry(name.clone()).or_default();
    let mut changed = false;
    macro_rules! take {
        ($id:literal, $field:expr, $value:expr) => {
            if from_cli($id) {
                $field = $value;
                changed = true;
            }
        };
    }
    take!("repo", p.repository, g.repo.clone());
    take!("endpoint", p.endpoint, g.endpoint.clone());
    take!("region", p.region, g.region.clone());
    take!("s3_addressing", p.addressing, g.s3_addressing.clone());
    take!("access_key_id", p.access_key_id, g.access_key_id.clone());
    take!(
        "secret_access_key",
        p.secret_access_key,
        g.secret_access_key.clone()
    );
    take!("connections", p.connections, g.connections);
    take!("password_file", p.password_file, g.password_file.clone());
    take!(
        "password_command",
        p.password_command,
        g.password_command.clone()
    );
    take!("cache_dir", p.cache_dir, g.cache_dir.clone());
    if g.no_bulk_delete {
        p.bulk_delete = Some(false);
        changed = true;
    }
    if let Some(cmd) = &a.secret_command {
        p.secret_access_key_command = Some(cmd.clone());
        p.secret_access_key = None;
        changed = true;
    }
    if a.save_keys {
        let id = std::env::var("AWS_ACCESS_KEY_ID")
            .map_err(|_| anyhow!("--save-keys: AWS_ACCESS_KEY_ID is not set"))?;
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
            .map_err(|_| anyhow!("--save-keys: AWS_SECRET_ACCESS_KEY is not set"))?;
        p.access_key_id = Some(id);
        p.secret_access_key = Some(secret);
        p.secret_access_key_command = None;
        changed = true;
    }
    if let Some(style) = &p.addressing {
        style
            .parse::<snap_engine::backend::Addressing>()
            .map_err(|e| anyhow!("--s3-addressing: {e}"))?;
    }
    if changed {
        check_profile(name, p)?;
    }
    if !changed && !existed {
        file.profiles.remove(name);
        return Err(anyhow!(
            "no profile {name:?} in {} (create it by giving settings, e.g. `snap config --profile \
             {name} --repo s3://BUCKET/PATH`)",
            config::path()?.display()
        ));
    }
    let mut shown = config::redacted(p);
    shown.name = name.clone();
    let is_default = file.default.as_ref() == Some(name);
    if changed {
        let path = file.save()?;
        ui.say(&format!("saved profile {name} in {}", path.display()));
    }
    let effective = config::effective(g, &shown);
    if ui.json {
        let rows: Vec<_> = effective
            .iter()
            .map(|e| json!({ "setting": e.setting, "value": e.value, "source": e.source.to_string() }))
            .collect();
        output::json(&json!({
            "name": name,
            "default": is_default,
            "settings": serde_json::to_value(&shown)?,
            "in_effect": rows,
        }))?;
    } else {
        out!("[profiles.{name}]\n{}", toml::to_string_pretty(&shown)?)?;
        outln!(
            "\nin effect with this profile{} (the command line, then the profile, then the \
             environment):",
            if is_default { ", the default" } else { "" }
        )?;
        for e in &effective {
            outln!(
                "  {:<18} {:<34} {}",
                e.setting,
                format!("from {}", e.source),
                e.value
            )?;
        }
    }
    Ok(0)
}

/// `snap config --check`: each step of reaching the repository in turn,
/// stopping at the first that fails with the setting it points at, as the
/// "Check connection" button of backup apps does.
fn check_connection(ctx: &Ctx) -> Result<u8> {
    let ui = ctx.ui;
    let (loc, is_default) = ctx.location()?;
    if is_default && let Some(hint) = ctx.forgotten_profile() {
        ui.say(&format!("note: {hint}"));
    }
    let backend = match ctx.backend(&loc, false) {
        Ok(b) => b,
        // A local folder without a repository yet: the settings are fine.
        Err(e) if matches!(engine_error(&e), Some(Error::RepositoryNotFound(_))) => {
            ui.say("settings: ok");
            return Err(e);
        }
        Err(e) => return Err(e.context("the settings are not usable")),
    };
    ui.say(&format!("settings: ok ({})", backend.location()));
    let keys = backend
        .list("keys/")
        .context("cannot list the repository's keys")?;
    ui.say(&format!(
        "storage: ok (reached and listed; {} key file(s))",
        keys.len()
    ));
    let repo = ctx.open_with(false)?;
    let what = if repo.is_encrypted() {
        "encrypted, and the password opens it"
    } else {
        "NOT encrypted"
    };
    ui.say(&format!(
        "repository: ok ({}, {what})",
        repo.config().id.short()
    ));
    if ui.json {
        output::json(&json!({
            "location": backend.location(),
            "repository_id": repo.config().id.to_hex(),
            "encrypted": repo.is_encrypted(),
        }))?;
    }
    Ok(0)
}

/// A path as snapshots record it: absolute and lexically cleaned, as
/// `create` cleans its sources, so `--path ~/Documents/` finds them.
fn path_bytes(p: &std::path::Path) -> Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let clean = create::clean_path(p)?;
    Ok(clean.as_os_str().as_bytes().to_vec())
}

fn kind_name(k: snap_engine::tree::NodeKind) -> &'static str {
    use snap_engine::tree::NodeKind::*;
    match k {
        File => "file",
        Dir => "dir",
        Symlink => "symlink",
        Fifo => "fifo",
        CharDevice => "chardev",
        BlockDevice => "blockdev",
    }
}

fn entry_json(path: &[u8], n: &snap_engine::tree::Node) -> serde_json::Value {
    json!({
        "path": String::from_utf8_lossy(path),
        "type": kind_name(n.kind),
        "mode": n.mode,
        "uid": n.uid,
        "gid": n.gid,
        "user": n.user,
        "group": n.group,
        "size": n.size,
        "mtime": chrono::DateTime::from_timestamp_nanos(n.mtime_ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "link_target": (!n.link_target.is_empty()).then(|| String::from_utf8_lossy(&n.link_target).into_owned()),
    })
}

/// `ls -l`-like: type and mode, owner, size, time, path.
/// `rwsr-xr-t`, as `ls -l` writes the mode: set-id and sticky bits show
/// in the execute places (they were dropped, hiding a set-uid file).
fn permissions(mode: u32) -> String {
    let mut perms: Vec<char> = "rwxrwxrwx"
        .chars()
        .enumerate()
        .map(|(i, c)| if mode & (0o400 >> i) != 0 { c } else { '-' })
        .collect();
    for (bit, place, set) in [(0o4000, 2, 's'), (0o2000, 5, 's'), (0o1000, 8, 't')] {
        if mode & bit != 0 {
            perms[place] = if perms[place] == 'x' {
                set
            } else {
                set.to_ascii_uppercase()
            };
        }
    }
    perms.into_iter().collect()
}

fn long_line(n: &snap_engine::tree::Node, path: &str) -> String {
    use snap_engine::tree::NodeKind::*;
    let t = match n.kind {
        File => '-',
        Dir => 'd',
        Symlink => 'l',
        Fifo => 'p',
        CharDevice => 'c',
        BlockDevice => 'b',
    };
    let perms = permissions(n.mode);
    let owner = if n.user.is_empty() {
        n.uid.to_string()
    } else {
        n.user.clone()
    };
    let group = if n.group.is_empty() {
        n.gid.to_string()
    } else {
        n.group.clone()
    };
    let time = chrono::DateTime::from_timestamp_nanos(n.mtime_ns)
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S");
    let target = if n.kind == Symlink {
        format!(" -> {}", String::from_utf8_lossy(&n.link_target))
    } else {
        String::new()
    };
    format!(
        "{t}{perms} {owner:>8} {group:>8} {:>12} {time} {path}{target}",
        n.size
    )
}

fn snapshot_json(id: &Id, s: &Snapshot) -> serde_json::Value {
    let m = &s.summary;
    json!({
        "id": id.to_hex(),
        "short_id": id.short(),
        "time": s.time().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "host": s.host,
        "username": s.username,
        "paths": s.paths_lossy(),
        "tags": s.tags,
        "parent": s.parent.map(|p| p.to_hex()),
        "tree": s.tree.to_hex(),
        "program_version": s.program_version,
        "summary": {
            "files_new": m.files_new,
            "files_changed": m.files_changed,
            "files_unmodified": m.files_unmodified,
            "dirs": m.dirs,
            "files": m.files,
            "bytes_total": m.bytes_total,
            "bytes_read": m.bytes_read,
            "bytes_added": m.bytes_added,
            "blobs_added": m.blobs_added,
            "duration_s": m.duration_ns as f64 / 1e9,
        },
    })
}

fn print_snapshot_table(list: &[(Id, Snapshot)]) -> Result<()> {
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|(id, s)| {
            [
                id.short(),
                s.time()
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                s.host.clone(),
                s.tags.join(","),
                s.paths_lossy().join(" "),
                output::bytes(s.summary.bytes_total),
            ]
        })
        .collect();
    let head = ["ID", "Time", "Host", "Tags", "Paths", "Size"];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 5 {
                s.push_str(&format!("{c:>w$}", w = width[i]));
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string()
    };
    outln!("{}", line(head))?;
    outln!("{}", "-".repeat(width.iter().sum::<usize>() + 10))?;
    for r in &rows {
        outln!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]))?;
    }
    outln!("{} snapshot(s)", rows.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn permissions_show_set_id_and_sticky_bits_as_ls_does() {
        assert_eq!(super::permissions(0o755), "rwxr-xr-x");
        assert_eq!(super::permissions(0o4755), "rwsr-xr-x");
        assert_eq!(super::permissions(0o2750), "rwxr-s---");
        assert_eq!(super::permissions(0o1777), "rwxrwxrwt");
        assert_eq!(super::permissions(0o7644), "rwSr-Sr-T");
    }
}
