//! What the server keeps: the token, the profile in use, passwords typed
//! into the page (in memory only), the repositories it has opened, the
//! running task and the schedule's board.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow};
use snap_engine::{Error, Repository};
use zeroize::Zeroizing;

use super::config_store::ConfigStore;
use super::{jobs, schedule};
use crate::args::Global;
use crate::config::{self, ConfigFile, Profile};
use crate::ctx::{Ctx, engine_error, nearby_of};
use crate::output::Ui;
use crate::password;
use snap_engine::backend::nearby::Nearby;

pub(crate) struct App {
    global: Global,
    /// In the URL printed at start; exchanged for a cookie.
    pub(crate) token: String,
    /// The page's own host name and port when listening on this computer
    /// (see [`own_name`]); None on another address, which is its own name.
    pub(crate) own_name: Option<String>,
    /// Sent back in a header with every state-changing request: a form on
    /// another site can send the cookie but not this.
    pub(crate) session: String,
    pub(crate) addr: SocketAddr,
    /// The profile the pages show.
    current: Mutex<Which>,
    /// Typed passwords by repository location: a password belongs to a
    /// repository, whichever profile (or none) reaches it.
    passwords: Mutex<HashMap<String, Zeroizing<String>>>,
    /// Opened repositories by profile, so a page does not derive the key
    /// again; dropped when the profile's settings change.
    repos: Mutex<HashMap<Which, Arc<Repository>>>,
    pub(crate) jobs: jobs::Jobs,
    pub(crate) board: schedule::Board,
    /// The config file, kept in memory ([`ConfigStore`]).
    configs: ConfigStore,
    /// The undo snapshot of the last restore, for the Undo button.
    pub(crate) last_undo: Mutex<Option<(Which, snap_engine::commands::restore::Undo)>>,
    /// One opening at a time: a password command waiting for input once
    /// left a thread and a process behind for every page loaded meanwhile.
    opening: tokio::sync::Mutex<()>,
    /// Held while the config file is read, changed and written: saves at
    /// once lost each other's changes.
    pub(crate) config_write: Mutex<()>,
    /// One Initialize at a time.
    pub(crate) initializing: tokio::sync::Mutex<()>,
    /// Set when the server stops: the event streams end, so it can.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
}

/// Which profile a page or a task works with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum Which {
    /// The one the command line, the environment or the default profile
    /// gives: what `snap` alone would use.
    #[default]
    Given,
    /// A profile of the config file, by name.
    Named(String),
}

impl Which {
    /// From a form's value, where "" (the picker's "Default") is
    /// [`Which::Given`].
    pub(crate) fn from_form(name: &str) -> Which {
        match name.trim() {
            "" => Which::Given,
            n => Which::Named(n.to_string()),
        }
    }

    /// The form's value for it: "" for [`Which::Given`].
    pub(crate) fn form_value(&self) -> &str {
        match self {
            Which::Given => "",
            Which::Named(n) => n,
        }
    }
}

impl std::fmt::Display for Which {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Which::Given => f.write_str("(default)"),
            Which::Named(n) => f.write_str(n),
        }
    }
}

/// How long a page waits for the repository to open (a password command,
/// slow storage) before it says so and goes on without it. A bound on
/// work, so the tests' time scale does not shorten it: scaled to a second,
/// a busy machine's honest opening (key derivation, a bucket's first
/// answer) failed a test.
const OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// What keeps a page from showing a repository, in words.
#[derive(Debug)]
pub(crate) enum Problem {
    /// Encrypted, and no password source is set: the page asks for it.
    NeedPassword(String),
    /// Nothing at the location yet: the page offers the repositories
    /// found near it, and Initialize.
    NoRepository {
        message: String,
        nearby: Nearby,
    },
    Failed(String),
}

impl Problem {
    pub(crate) fn message(&self) -> &str {
        match self {
            Problem::NeedPassword(m)
            | Problem::NoRepository { message: m, .. }
            | Problem::Failed(m) => m,
        }
    }
}

/// A lock that a panic elsewhere poisoned is still usable: what it
/// guards (a map, a status) is never left half-changed, and a poisoned lock
/// once made every later page fail.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An error with its causes, in one line, as the CLI prints it.
pub(crate) fn words(e: &anyhow::Error) -> String {
    super::views::for_the_page(&format!("{e:#}"))
}

/// Everything one engine call needs to make a [`Ctx`], owned, so that it
/// can move to a worker thread.
pub(crate) struct Session {
    global: Global,
    pub(crate) profile: Profile,
    profiles: Vec<String>,
    typed: Option<Zeroizing<String>>,
    ui: Ui,
}

impl Session {
    pub(crate) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            global: &self.global,
            profile: self.profile.clone(),
            profiles: self.profiles.clone(),
            ui: &self.ui,
            typed_password: self.typed.clone(),
            prompt: false,
        }
    }

    pub(crate) fn global(&self) -> &Global {
        &self.global
    }

    /// The same settings with another profile (Check connection of a form
    /// not yet saved).
    pub(crate) fn with_profile(mut self, p: Profile) -> Session {
        self.profile = p;
        self
    }

    /// The password typed into the page for this session's repository.
    pub(crate) fn typed_password(&self) -> Option<Zeroizing<String>> {
        self.typed.clone()
    }

    pub(crate) fn with_password_exactly(mut self, pw: Option<Zeroizing<String>>) -> Session {
        self.typed = pw;
        self
    }
}

/// Runs engine work on a thread of its own: the engine blocks on storage,
/// and its S3 client runs its own runtime. A panic there becomes an error
/// on the page, and the server goes on.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("snap-ui-task".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| anyhow!("cannot start a worker thread: {e}"))?;
    rx.await
        .map_err(|_| anyhow!("the task stopped unexpectedly (a bug in snap; see its log)"))?
}

/// The access token. By default a new one for each run, kept nowhere but
/// in this process: a token that leaked (a browser's cookie sent where it
/// should not have been, a copy of the address) is worth nothing once
/// snap ui stops. With `keep` (`--keep-token`, for a service whose
/// bookmark should survive restarts) it is kept in the data directory,
/// readable by this user alone, and `new` (`--new-token`) replaces the
/// kept one, locking out every browser that had it.
fn token(keep: bool, new: bool) -> Result<String> {
    if !keep {
        return random_hex();
    }
    let Some(dir) = dirs::data_dir().map(|d| d.join("snap")) else {
        return random_hex();
    };
    let file = dir.join("ui-token");
    // A plain file only: a link, folder or pipe put there is replaced.
    let plain = std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file());
    if !new
        && plain
        && let Ok(t) = std::fs::read_to_string(&file)
        && t.trim().len() == 64
        && t.trim().bytes().all(|b| b.is_ascii_hexdigit())
        && crate::config::others_can_read(&file).is_none()
    {
        return Ok(t.trim().to_string());
    }
    let token = random_hex()?;
    // Made anew, so that a file others could read does not keep its mode.
    let _ = std::fs::remove_file(&file).or_else(|_| std::fs::remove_dir(&file));
    std::fs::create_dir_all(&dir).map_err(|e| anyhow!("cannot create {}: {e}", dir.display()))?;
    // A new file, never through a link planted after the removal.
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(&file)
        .map_err(|e| anyhow!("cannot write {}: {e}", file.display()))?;
    std::io::Write::write_all(&mut f, token.as_bytes())
        .map_err(|e| anyhow!("cannot write {}: {e}", file.display()))?;
    Ok(token)
}

/// The page's own host name on this computer, `snap-<label>.localhost`
/// with the port: the token's cookie is set for that host alone.
///
/// Why a name: browsers keep cookies apart by host, not by port, and
/// every port of 127.0.0.1 (and of `localhost`) is one site for SameSite.
/// A cookie set for 127.0.0.1 went with every request the browser made to
/// any other server on this computer (a dev server, a notebook, another
/// user's program), and with it the power to run commands as the user.
/// Chromium and Firefox resolve every `*.localhost` name to loopback
/// without asking DNS, and each such name is a site of its own, so a
/// host-only cookie of this name stays here. Keeping the token out of
/// cookies instead (in the page, sent in a header) would have lost plain
/// links, downloads and the event stream, which a browser sends with
/// cookies only.
///
/// The label is derived from the token, so a kept token keeps the address
/// of a bookmark, and cannot be guessed without it: a server on another
/// port that knew the name could have the browser visit it there (cookies
/// ignore ports) and receive the cookie. It is never shown to a request
/// without the token.
fn own_name(token: &str, port: u16) -> String {
    let key = blake3::derive_key("snap ui 2025-06 own host name", token.as_bytes());
    let label: String = key[..12].iter().map(|x| format!("{x:02x}")).collect();
    format!("snap-{label}.localhost:{port}")
}

fn random_hex() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow!("no random numbers for the token: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl App {
    /// `keep_token` and `new_token`: see [`token`].
    pub(crate) fn new(
        global: Global,
        addr: SocketAddr,
        keep_token: bool,
        new_token: bool,
    ) -> Result<App> {
        let token = token(keep_token, new_token)?;
        let on_this_computer = addr.ip().is_loopback() || addr.ip().is_unspecified();
        Ok(App {
            global,
            own_name: on_this_computer.then(|| own_name(&token, addr.port())),
            token,
            session: random_hex()?,
            addr,
            current: Mutex::new(Which::Given),
            passwords: Mutex::default(),
            repos: Mutex::default(),
            jobs: jobs::Jobs::default(),
            board: schedule::Board::default(),
            configs: ConfigStore::default(),
            last_undo: Mutex::default(),
            opening: tokio::sync::Mutex::new(()),
            config_write: Mutex::new(()),
            initializing: tokio::sync::Mutex::new(()),
            stopping: tokio::sync::watch::Sender::new(false),
        })
    }

    /// The address to open, with the token: the page's own name on this
    /// computer, else the address it listens on.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/?token={}", self.host(), self.token)
    }

    /// The host (with its port) the page is served under.
    pub(crate) fn host(&self) -> String {
        self.own_name
            .clone()
            .unwrap_or_else(|| self.addr.to_string())
    }

    /// A line in the log (stderr), with the local time.
    pub(crate) fn log(&self, msg: &str) {
        eprintln!("{} {msg}", chrono::Local::now().format("%Y-%m-%d %H:%M:%S"));
    }

    pub(crate) fn current(&self) -> Which {
        lock(&self.current).clone()
    }

    pub(crate) fn set_current(&self, which: Which) {
        *lock(&self.current) = which;
    }

    pub(crate) fn config(&self) -> Result<ConfigFile> {
        self.configs.get(&|w| self.log(w))
    }

    /// Writes the config file, and keeps what was written.
    pub(crate) fn save_config(&self, file: &ConfigFile) -> Result<()> {
        self.configs.save(file)
    }

    /// The settings of a profile.
    pub(crate) fn session(&self, which: &Which) -> Result<Session> {
        let (profile, profiles) = if let Which::Named(name) = which {
            let file = self.config()?;
            let mut p = file
                .profiles
                .get(name)
                .cloned()
                .ok_or_else(|| anyhow!("there is no profile {name:?} in the config file"))?;
            p.name = name.to_string();
            (p, file.profiles.keys().cloned().collect())
        } else {
            let chosen = config::choose_in(&self.global, &self.config()?)?;
            (chosen.profile, chosen.all)
        };
        let mut session = Session {
            global: self.global.clone(),
            profile,
            profiles,
            typed: None,
            ui: Ui::new(true, 0, false),
        };
        session.typed = self.typed_for(&session);
        Ok(session)
    }

    pub(crate) fn typed_for(&self, session: &Session) -> Option<Zeroizing<String>> {
        let (location, _) = session.ctx().location().ok()?;
        lock(&self.passwords).get(&location).cloned()
    }

    /// The profile's name in the config file: what [`Which::Given`] stands
    /// for when a default profile exists; "" when no profile is in use.
    pub(crate) fn resolved_name(&self, which: &Which) -> String {
        if let Which::Named(name) = which {
            return name.clone();
        }
        self.session(which)
            .map(|s| s.profile.name)
            .unwrap_or_default()
    }

    pub(crate) fn remember_password(&self, name: &Which, pw: Zeroizing<String>) {
        if let Some((location, _)) = self
            .session(name)
            .ok()
            .and_then(|s| s.ctx().location().ok())
        {
            lock(&self.passwords).insert(location, pw);
        }
        self.forget_repository(name);
    }

    pub(crate) fn forget_password(&self, name: &Which) {
        if let Some((location, _)) = self
            .session(name)
            .ok()
            .and_then(|s| s.ctx().location().ok())
        {
            lock(&self.passwords).remove(&location);
        }
    }

    /// Settings changed: the next page opens the repository again.
    pub(crate) fn forget_repository(&self, name: &Which) {
        let mut repos = lock(&self.repos);
        repos.remove(name);
        // The given profile may be this one.
        repos.remove(&Which::Given);
    }

    /// The repository of profile `name`, opened once and kept.
    pub(crate) async fn open(self: &Arc<App>, name: &Which) -> Result<Arc<Repository>, Problem> {
        if let Some(r) = lock(&self.repos).get(name) {
            return Ok(r.clone());
        }
        let wait = OPEN_WAIT;
        let slow = || {
            Problem::Failed(format!(
                "opening the repository takes longer than {} s: a password command waiting \
                 for input, or storage that does not answer. Try again later, or check the \
                 settings",
                wait.as_secs_f64()
            ))
        };
        let started = tokio::time::Instant::now();
        let _one = tokio::time::timeout(wait, self.opening.lock())
            .await
            .map_err(|_| slow())?;
        // Opened by the page that held the lock.
        if let Some(r) = lock(&self.repos).get(name) {
            return Ok(r.clone());
        }
        let session = self.session(name).map_err(|e| Problem::Failed(words(&e)))?;
        let typed = session.typed.is_some();
        let configured = password::is_configured(&session.global, &session.profile);
        let opened =
            tokio::time::timeout_at(started + wait, blocking(move || session.ctx().open()))
                .await
                .map_err(|_| slow())?;
        match opened {
            // Two pages opening it at once keep the first.
            Ok(repo) => Ok(lock(&self.repos)
                .entry(name.clone())
                .or_insert_with(|| Arc::new(repo))
                .clone()),
            Err(e) => {
                let msg = words(&e);
                if matches!(engine_error(&e), Some(Error::RepositoryNotFound(_))) {
                    let nearby = nearby_of(&e)
                        .cloned()
                        .unwrap_or_else(|| Nearby::new("", Vec::new()));
                    return Err(Problem::NoRepository {
                        message: msg,
                        nearby,
                    });
                }
                if matches!(engine_error(&e), Some(Error::WrongPassword)) && typed {
                    self.forget_password(name);
                    return Err(Problem::NeedPassword(
                        "that password does not open this repository".into(),
                    ));
                }
                if !typed
                    && !configured
                    && matches!(engine_error(&e), Some(Error::PasswordRequired))
                {
                    return Err(Problem::NeedPassword(
                        "this repository is encrypted: type its password to open it (it is \
                         kept in memory only, until snap ui stops)"
                            .into(),
                    ));
                }
                self.log(&format!("cannot open the repository: {msg}"));
                Err(Problem::Failed(msg))
            }
        }
    }
}
