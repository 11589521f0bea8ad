//! What every command needs: the settings resolved into a repository
//! location, backend and open repository (`Ctx`), the errors that carry an
//! exit code or advice, and the small helpers that turn arguments into
//! engine values.

use std::path::PathBuf;

use zeroize::Zeroizing;

use anyhow::{Result, anyhow};
use snap_engine::commands::{self, create};
use snap_engine::snapshot::{Snapshot, SnapshotFilter};
use snap_engine::{Error, Id, Repository};

use crate::args;
use crate::output::Ui;
use std::sync::Arc;

use snap_engine::InitOptions;
use snap_engine::backend::nearby::{self, Nearby};
use snap_engine::backend::{Backend, StoreBackend};

use crate::args::Global;
use crate::config::{self, Profile};
use crate::password;

/// An engine error with advice that depends on how snap was invoked.
#[derive(Debug)]
pub(crate) struct Hinted {
    pub(crate) error: Error,
    pub(crate) hint: String,
    /// For a location that holds no repository: those found near it, which
    /// the page offers to connect to.
    pub(crate) nearby: Option<Nearby>,
}

impl Hinted {
    fn error(error: Error, hint: String) -> anyhow::Error {
        anyhow::Error::new(Hinted {
            error,
            hint,
            nearby: None,
        })
    }
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.error, self.hint)
    }
}

/// The repositories found near a location that holds none, if `e` says so.
pub(crate) fn nearby_of(e: &anyhow::Error) -> Option<&Nearby> {
    e.downcast_ref::<Hinted>().and_then(|h| h.nearby.as_ref())
}

impl std::error::Error for Hinted {}

/// The folder a local location names (`local:DIR` or `DIR`).
fn local_folder(location: &str) -> PathBuf {
    PathBuf::from(location.strip_prefix("local:").unwrap_or(location))
}

/// The engine's error behind `e`, hinted or not.
pub(crate) fn engine_error(e: &anyhow::Error) -> Option<&Error> {
    e.downcast_ref::<Error>()
        .or_else(|| e.downcast_ref::<Hinted>().map(|h| &h.error))
}

/// A failure that already told the user what went wrong and only needs an
/// exit code (a check that found errors, a restore that skipped files).
#[derive(Debug)]
pub(crate) struct Reported(pub(crate) i32);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Reported {}

/// The filter that `--host`, `--tag` and `--path` ask for.
pub(crate) fn snapshot_filter(a: &args::FilterArgs) -> Result<SnapshotFilter> {
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
pub(crate) fn check_location(location: &str) -> Result<()> {
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

/// `--tag a,b` is two tags, as in restic (it was once one tag "a,b" that
/// `--tag a` never found); an empty tag is a mistake.
pub(crate) fn split_tags(given: &[String]) -> Result<Vec<String>> {
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

/// A path as snapshots record it: absolute and lexically cleaned, as
/// `create` cleans its sources, so `--path ~/Documents/` finds them.
pub(crate) fn path_bytes(p: &std::path::Path) -> Result<Vec<u8>> {
    Ok(create::recorded_path(p)?)
}

/// A snapshot as a person recognises it: short id, host, local time, paths.
pub(crate) fn describe(id: &Id, s: &Snapshot) -> String {
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
///
/// Snapshots this device saw that storage no longer shows are warned of;
/// with `rollback` refused, `latest` that would have been one of them
/// stops the command (exit code 13).
pub(crate) fn choose(
    repo: &Repository,
    ui: &Ui,
    spec: &str,
    filter: &SnapshotFilter,
    rollback: Rollback,
) -> Result<(Id, Snapshot)> {
    let ((id, s), hidden) = repo.find_snapshot_and_hidden(spec, filter)?;
    warn_of(&hidden, ui);
    let newer = snap_engine::forgotten::newer_than(&hidden, &s, filter);
    if spec == "latest" && rollback == Rollback::Refuse && !newer.is_empty() {
        let names: Vec<String> = newer.iter().map(|h| h.describe()).collect();
        return Err(Error::RolledBack(format!(
            "\"latest\" is {}, but this device saw a newer snapshot that is now gone without a \
             record that snap removed it: {}. Storage may have rolled the repository back, and \
             this would restore older data. Nothing was restored. Run `snap check`; to restore \
             the older snapshot anyway, add --allow-rollback",
            describe(&id, &s),
            names.join(", ")
        ))
        .into());
    }
    if spec != id.to_hex() {
        ui.say(&format!("using snapshot {}", describe(&id, &s)));
    }
    Ok((id, s))
}

/// Whether `latest` may be a snapshot older than one storage hid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rollback {
    /// Warn only (listing, comparing).
    Warn,
    /// Refuse (a restore, without --allow-rollback).
    Refuse,
}

/// Warns of every snapshot this device saw that is gone without a forget
/// record (format-spec.md section 11).
pub(crate) fn warn_of(hidden: &[snap_engine::forgotten::HiddenSnapshot], ui: &Ui) {
    for h in hidden {
        snap_engine::progress::Progress::warn(
            ui,
            &format!(
                "snapshot {} that this device saw is gone from the repository without a record \
                 that snap removed it: storage hid it, lost it or rolled the repository back \
                 (`snap check` says more)",
                h.describe()
            ),
        );
    }
}

/// Said when a repository is made: nothing else can open it.
pub(crate) const LOST_PASSWORD: &str = "keep the password safe: without it nobody, you included, can read \
                             these backups again. `snap key add` adds a second password";

/// Asks a yes/no question on the terminal; only "y" or "yes" is yes.
pub(crate) fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Settings resolved from the command line, the environment and the
/// profile, in that order.
pub(crate) struct Ctx<'a> {
    pub(crate) global: &'a Global,
    pub(crate) profile: Profile,
    /// Every profile in the config file, named when none is in use.
    pub(crate) profiles: Vec<String>,
    pub(crate) ui: &'a Ui,
    /// The repository password typed into `snap ui`, kept only in memory:
    /// it comes before every other source.
    pub(crate) typed_password: Option<Zeroizing<String>>,
    /// Whether a missing password may be asked for on the terminal (not
    /// from `snap ui`, whose terminal nobody watches).
    pub(crate) prompt: bool,
}

impl Ctx<'_> {
    /// Where the repository is, and whether it is the built-in default.
    pub(crate) fn location(&self) -> Result<(String, bool)> {
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

    pub(crate) fn backend(&self, location: &str, create: bool) -> Result<Arc<dyn Backend>> {
        let plain = self.plain_backend(location, create)?;
        Ok(match self.global.as_of {
            Some(at) => Arc::new(snap_engine::backend::AsOf::new(plain, at)),
            None => plain,
        })
    }

    fn plain_backend(&self, location: &str, create: bool) -> Result<Arc<dyn Backend>> {
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
        let backend = StoreBackend::local(&local_folder(location), create)
            .map_err(|e| self.hint(e, location))?;
        Ok(Arc::new(backend))
    }

    /// Remote repositories get a local cache of index, snapshots and trees
    /// (and of the config and key file that unlock them).
    pub(crate) fn cache_base(&self, location: &str) -> Result<Option<PathBuf>> {
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

    pub(crate) fn open(&self) -> Result<Repository> {
        self.open_with(true)
    }

    /// [`Ctx::open`] for a command that reads what only a full key opens
    /// (files, trees, snapshots) or removes anything: a write-only key is
    /// refused at once, before the command resolves a snapshot.
    pub(crate) fn open_full(&self, to: &str) -> Result<Repository> {
        let repo = self.open()?;
        repo.require_full(to)?;
        Ok(repo)
    }

    /// The built-in default repository while profiles exist but none is in
    /// use: most likely the user forgot -P, as a newcomer's `snap create`
    /// that went to a local folder instead of their bucket showed.
    pub(crate) fn forgotten_profile(&self) -> Option<String> {
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
    pub(crate) fn open_with(&self, cache: bool) -> Result<Repository> {
        let (loc, _) = self.location()?;
        let backend = self.backend(&loc, false)?;
        self.open_on(backend, cache)
    }

    /// Opens the repository on a backend already made for this command's
    /// location (`config --check` makes it first, to test it alone).
    pub(crate) fn open_on(&self, backend: Arc<dyn Backend>, cache: bool) -> Result<Repository> {
        let (loc, is_default) = self.location()?;
        let pw = || match &self.typed_password {
            Some(typed) => Ok(typed.to_string()),
            // An engine error (no password given) stays itself, so that the
            // page recognises it by type.
            None => password::existing(self.global, &self.profile, self.prompt).map_err(|e| {
                e.downcast::<Error>()
                    .unwrap_or_else(|e| Error::Other(format!("{e:#}")))
            }),
        };
        // The past is read whole from storage and remembered nowhere: this
        // device's record of snapshots seen since would call them hidden.
        let now = self.global.as_of.is_none();
        let opts = snap_engine::OpenOptions {
            cache: if cache && now {
                self.cache_base(&loc)?
            } else {
                None
            },
            state: if now { Some(self.state_base()?) } else { None },
            allow_unencrypted: self.global.insecure_no_encryption,
            key: self.global.key.clone(),
            password_configured: self.typed_password.is_some()
                || password::is_configured(self.global, &self.profile),
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
    pub(crate) fn hint(&self, e: Error, location: &str) -> anyhow::Error {
        match e {
            Error::RepositoryNotFound(_) => {
                // A forgotten profile is the likelier mistake, and is said
                // without a search of the storage.
                if let Some(h) = self.forgotten_profile()
                    && self.location().is_ok_and(|(_, default)| default)
                {
                    return Hinted::error(e, h);
                }
                let nearby = self.nearby(location);
                let make = format!("create one with `{}`", self.init_command(location));
                let hint = match nearby.sentence() {
                    Some(near) => format!("{near} To start a new repository here instead, {make}"),
                    None => make,
                };
                anyhow::Error::new(Hinted {
                    error: e,
                    hint,
                    nearby: Some(nearby),
                })
            }
            // With several sources, which one won is the question.
            Error::WrongPassword if self.typed_password.is_some() => Hinted::error(
                e,
                "the password tried is the one typed into the page".into(),
            ),
            Error::WrongPassword => match password::source(self.global, &self.profile) {
                Some((what, from)) => {
                    let hint = if what.starts_with('(') {
                        format!("the password tried came from {from}")
                    } else {
                        format!("the password tried came from {from}: {what}")
                    };
                    Hinted::error(e, hint)
                }
                None => e.into(),
            },
            e => e.into(),
        }
    }

    /// The repositories near `location`, which holds none
    /// ([`snap_engine::backend::nearby`]).
    pub(crate) fn nearby(&self, location: &str) -> Nearby {
        if location.starts_with("s3://") {
            return match self.backend(location, false) {
                Ok(b) => b.nearby(),
                Err(_) => Nearby::new(location, Vec::new()),
            };
        }
        nearby::local(&local_folder(location))
    }

    /// The init command for this location, as the user reaches it: a
    /// newcomer told "run `snap init`" made the local default instead.
    pub(crate) fn init_command(&self, location: &str) -> String {
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
    pub(crate) fn state_base(&self) -> Result<PathBuf> {
        Ok(dirs::data_dir()
            .ok_or_else(|| {
                anyhow!("no data directory to keep what this device knows of repositories")
            })?
            .join("snap")
            .join("state"))
    }

    /// A new repository, remembered on this device from the start.
    pub(crate) fn init(
        &self,
        location: &str,
        opts: InitOptions,
    ) -> Result<(Repository, commands::InitResult)> {
        self.init_retained(location, opts, self.profile_retention())
    }

    /// The Object Lock retention the profile asks new repositories for.
    pub(crate) fn profile_retention(&self) -> Option<snap_engine::retention::Retention> {
        let days = self.profile.object_lock_days?;
        Some(snap_engine::retention::Retention {
            days,
            mode: self
                .profile
                .object_lock_mode
                .unwrap_or(crate::args::ObjectLockMode::Governance)
                .into(),
        })
    }

    /// [`Ctx::init`] with Object Lock retention for every object written,
    /// kept in the config for every device: a bucket without Object Lock
    /// stops it before anything is written.
    pub(crate) fn init_retained(
        &self,
        location: &str,
        opts: InitOptions,
        retention: Option<snap_engine::retention::Retention>,
    ) -> Result<(Repository, commands::InitResult)> {
        let mut opts = opts;
        opts.object_lock = retention;
        let (mut repo, r) = commands::init(self.backend(location, true)?, opts)?;
        repo.use_state(&self.state_base()?)?;
        Ok((repo, r))
    }

    pub(crate) fn init_options(&self, no_encryption: bool) -> Result<InitOptions> {
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
        } else if let Some(typed) = &self.typed_password {
            if typed.is_empty() {
                return Err(anyhow!("the password is empty"));
            }
            Some(typed.to_string())
        } else {
            Some(password::new(self.global, &self.profile, self.prompt)?)
        };
        Ok(InitOptions::new(password))
    }
}
