//! The requests that change something: each takes the page's form as JSON
//! and answers with a [`Reply`] the script shows. Long work starts a task
//! ([`super::jobs`]) and answers at once; the page follows its progress.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use snap_engine::commands::{self, check, create, prune, restore};
use snap_engine::snapshot::{KeepPolicy, SnapshotFilter};
use snap_engine::{Error, Id};
use zeroize::Zeroizing;

use super::app::{App, Problem, blocking, lock, words};
use super::jobs::{Busy, Job};
use super::{schedule, views};
use crate::config::{ConfigFile, Profile};
use crate::ctx::engine_error;

/// What the page's script shows after a request.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Reply {
    pub(crate) ok: bool,
    pub(crate) message: String,
    /// A fragment to show under the form (escaped when rendered).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) html: String,
    /// Load the page again (what it shows changed).
    pub(crate) reload: bool,
    /// Elements marked `data-show=NAME` to reveal (Initialize).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) show: Option<&'static str>,
    /// A task started: the page follows its progress.
    pub(crate) job: bool,
    /// A page to go to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redirect: Option<String>,
}

pub(crate) type Answer = (StatusCode, Json<Reply>);

fn done(message: impl Into<String>) -> Answer {
    (
        StatusCode::OK,
        Json(Reply {
            ok: true,
            message: message.into(),
            ..Default::default()
        }),
    )
}

fn failed(app: &App, status: StatusCode, message: impl Into<String>) -> Answer {
    let message = message.into();
    app.log(&message);
    (
        status,
        Json(Reply {
            ok: false,
            message,
            ..Default::default()
        }),
    )
}

fn reloading(mut a: Answer) -> Answer {
    a.1.reload = true;
    a
}

fn started(message: impl Into<String>) -> Answer {
    let mut a = done(message);
    a.1.job = true;
    a
}

fn problem(app: &App, p: Problem) -> Answer {
    let status = match p {
        Problem::NeedPassword(_) => StatusCode::UNAUTHORIZED,
        Problem::NoRepository(_) => StatusCode::NOT_FOUND,
        Problem::Failed(_) => StatusCode::BAD_GATEWAY,
    };
    failed(app, status, p.message())
}

fn busy(app: &App, b: Busy) -> Answer {
    failed(app, StatusCode::CONFLICT, b.0)
}

/// Runs a task in the background. Should it panic, the task still ends,
/// as failed and said in words, so the next one can start: a task left
/// "running" once refused every later one until a restart.
pub(crate) fn spawn_task(
    app: &Arc<App>,
    job: &Arc<Job>,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (app, job) = (app.clone(), job.clone());
    tokio::spawn(async move {
        let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(task)).await;
        if outcome.is_err() {
            let msg = "stopped unexpectedly (a bug in snap; its log has the details)".to_string();
            app.log(&format!("{}: {msg}", job.title));
            app.jobs.finish(&job, false, msg, String::new(), None);
        }
    });
}

// ---------------------------------------------------------------- profiles

#[derive(Deserialize)]
pub(crate) struct UseProfile {
    name: String,
}

pub(crate) async fn use_profile(State(app): State<Arc<App>>, Json(f): Json<UseProfile>) -> Answer {
    if !f.name.is_empty() && app.session(&f.name).is_err() {
        return failed(
            &app,
            StatusCode::NOT_FOUND,
            format!("there is no profile {:?}", f.name),
        );
    }
    app.set_current(&f.name);
    reloading(done(format!("using profile {}", f.name)))
}

/// The Settings form.
#[derive(Clone, Deserialize, Default)]
#[serde(default)]
pub(crate) struct SettingsForm {
    name: String,
    /// "local" or "s3".
    kind: String,
    folder: String,
    endpoint: String,
    region: String,
    bucket: String,
    access_key_id: String,
    /// Empty: keep the saved one.
    secret_access_key: String,
    root: String,
    /// "page", "file" or "command".
    password_source: String,
    password_file: String,
    password_command: String,
    /// Typed for Initialize and for opening; kept in memory only.
    password: String,
    password_again: String,
    make_default: bool,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A profile name that is a plain word: it is a TOML key and a CLI flag.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("give the profile a name".into());
    }
    if name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(format!(
            "the profile name {name:?} may hold only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// The profile the form describes, on top of the saved one (which keeps
/// the secret when the field is left empty, and the folders, schedule and
/// everything the form does not show).
fn profile_from(f: &SettingsForm, saved: Option<&Profile>) -> Result<Profile, String> {
    let name = f.name.trim();
    check_name(name)?;
    let mut p = saved.cloned().unwrap_or_default();
    p.name = name.to_string();
    match f.kind.as_str() {
        "local" => {
            let folder = some(&f.folder).ok_or("give the folder of the repository")?;
            if !PathBuf::from(&folder).is_absolute() {
                return Err(format!(
                    "the folder {folder:?} is not a full path: write it from the root, such as /mnt/backup/snap"
                ));
            }
            p.repository = Some(folder);
            p.endpoint = None;
            p.region = None;
            p.access_key_id = None;
            p.secret_access_key = None;
            p.secret_access_key_command = None;
        }
        "s3" => {
            let bucket = some(&f.bucket).ok_or("give the bucket's name")?;
            let root = f.root.trim().trim_matches('/');
            let location = if root.is_empty() {
                format!("s3://{bucket}")
            } else {
                format!("s3://{bucket}/{root}")
            };
            snap_engine::backend::S3Options::parse_location(&location)
                .map_err(|e| format!("bucket or root path: {e}"))?;
            p.repository = Some(location);
            p.endpoint = some(&f.endpoint);
            p.region = some(&f.region);
            p.access_key_id = some(&f.access_key_id);
            if let Some(secret) = some(&f.secret_access_key) {
                p.secret_access_key = Some(secret);
                p.secret_access_key_command = None;
            }
        }
        other => return Err(format!("unknown repository kind {other:?}")),
    }
    match f.password_source.as_str() {
        "file" => {
            p.password_file = Some(PathBuf::from(
                some(&f.password_file).ok_or("give the password file")?,
            ));
            p.password_command = None;
        }
        "command" => {
            p.password_command =
                Some(some(&f.password_command).ok_or("give the password command")?);
            p.password_file = None;
        }
        "page" => {
            p.password_file = None;
            p.password_command = None;
        }
        // "keep": as saved (an Initialize form that shows no password);
        // "store": `save_profile` writes the file.
        _ => {}
    }
    Ok(p)
}

fn save_profile(app: &App, f: &SettingsForm) -> Result<Profile, String> {
    let _one = lock(&app.config_write);
    let mut file = app.config().map_err(|e| words(&e))?;
    let name = f.name.trim().to_string();
    let mut p = profile_from(f, file.profiles.get(&name))?;
    if f.password_source == "store" {
        p.password_file = Some(store_password(&name, &f.password)?);
        p.password_command = None;
    }
    file.profiles.insert(name.clone(), p.clone());
    if f.make_default || file.default.is_none() {
        file.default = Some(name.clone());
    }
    file.save().map_err(|e| words(&e))?;
    app.forget_repository(&name);
    app.set_current(&name);
    if let Some(pw) = some(&f.password) {
        app.remember_password(&name, Zeroizing::new(pw));
    }
    app.log(&format!("saved profile {name}"));
    Ok(p)
}

/// "Keep it in a file on this computer": the password in a file beside
/// the config, readable by this user alone, so automatic backups run
/// after a restart without anyone typing it (a desktop user cannot be
/// asked to make a password file in a terminal).
fn store_password(name: &str, password: &str) -> Result<PathBuf, String> {
    if password.is_empty() {
        return Err("type the password to keep in the file".into());
    }
    let dir = crate::config::path()
        .map_err(|e| words(&e))?
        .parent()
        .map(|d| d.to_path_buf())
        .ok_or("the config file has no folder")?;
    let file = dir.join(format!("password-{name}"));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let _ = std::fs::remove_file(&file);
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        std::io::Write::write_all(&mut o.open(&file)?, format!("{password}\n").as_bytes())
    };
    write().map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(file)
}

pub(crate) async fn save_settings(
    State(app): State<Arc<App>>,
    Json(f): Json<SettingsForm>,
) -> Answer {
    match save_profile(&app, &f) {
        Ok(p) => {
            let mut a = done(format!("saved profile {}; the pages now use it", p.name));
            a.1.redirect = Some(format!("/settings?profile={}&saved=true", p.name));
            a
        }
        Err(e) => failed(&app, StatusCode::BAD_REQUEST, e),
    }
}

/// Check connection: the CLI's steps for the settings in the form, saved
/// or not.
pub(crate) async fn check_connection(
    State(app): State<Arc<App>>,
    Json(f): Json<SettingsForm>,
) -> Answer {
    let saved = app
        .config()
        .ok()
        .and_then(|c| c.profiles.get(f.name.trim()).cloned());
    let p = match profile_from(&f, saved.as_ref()) {
        Ok(p) => p,
        Err(e) => return failed(&app, StatusCode::BAD_REQUEST, e),
    };
    let session = match app.session("") {
        Ok(s) => s,
        Err(e) => return failed(&app, StatusCode::BAD_REQUEST, words(&e)),
    };
    // The password for the form's place: typed in the form (when that is
    // its source), else one typed before for that same place; never one
    // typed for another repository, and never before the form's command.
    let session = session.with_profile(p);
    let typed = match f.password_source.as_str() {
        "page" | "store" | "" => some(&f.password)
            .map(Zeroizing::new)
            .or_else(|| app.typed_for(&session)),
        _ => None,
    };
    let session = session.with_password_exactly(typed);
    let outcome = blocking(move || {
        let mut steps = Vec::new();
        let r = crate::cmd::diagnose(&session.ctx(), &mut |s| steps.push(s.to_string()));
        Ok((steps, r))
    })
    .await;
    let (steps, r) = match outcome {
        Ok(x) => x,
        Err(e) => return failed(&app, StatusCode::INTERNAL_SERVER_ERROR, words(&e)),
    };
    match r {
        Ok(c) => {
            let mut a = done(format!("connection ok: {}", c.location));
            a.1.html = views::steps(&steps).into_string();
            a
        }
        Err(e) => {
            let msg = words(&e);
            let missing = matches!(engine_error(&e), Some(Error::RepositoryNotFound(_)));
            let needs_password = msg.contains(crate::password::NONE_GIVEN);
            app.log(&format!("check connection: {msg}"));
            let (status, message) = if missing {
                (
                    StatusCode::NOT_FOUND,
                    "there is no repository there yet: Initialize makes one".to_string(),
                )
            } else if needs_password {
                (
                    StatusCode::UNAUTHORIZED,
                    "the storage answers, and the repository is encrypted: type its password"
                        .to_string(),
                )
            } else {
                (StatusCode::BAD_REQUEST, msg.clone())
            };
            let _ = steps;
            let mut a = failed(&app, status, message);
            if missing {
                a.1.show = Some("init");
            }
            a
        }
    }
}

pub(crate) async fn init(State(app): State<Arc<App>>, Json(f): Json<SettingsForm>) -> Answer {
    let _one = app.initializing.lock().await;
    if matches!(f.password_source.as_str(), "page" | "store" | "") {
        if f.password.is_empty() {
            return failed(
                &app,
                StatusCode::BAD_REQUEST,
                "type a password for the new repository (twice)",
            );
        }
        if f.password != f.password_again {
            return failed(&app, StatusCode::BAD_REQUEST, "the two passwords differ");
        }
    }
    let p = match save_profile(&app, &f) {
        Ok(p) => p,
        Err(e) => return failed(&app, StatusCode::BAD_REQUEST, e),
    };
    let session = match app.session(&p.name) {
        Ok(s) => s,
        Err(e) => return failed(&app, StatusCode::BAD_REQUEST, words(&e)),
    };
    let r = blocking(move || {
        let ctx = session.ctx();
        let (loc, _) = ctx.location()?;
        let (_, r) = ctx.init(&loc, ctx.init_options(false)?)?;
        Ok(r)
    })
    .await;
    match r {
        Ok(r) => {
            app.forget_repository(&p.name);
            let mut msg = format!(
                "created repository {} at {}. Keep the password safe: without it nobody, you included, can read these backups",
                r.repository_id.short(),
                r.location
            );
            for w in &r.warnings {
                msg.push_str(&format!(". Note: {w}"));
            }
            app.log(&msg);
            let mut a = done(msg);
            a.1.html = maud::html! { p { a.button href="/backup" { "Choose what to back up" } } }
                .into_string();
            a
        }
        Err(e) => failed(
            &app,
            StatusCode::BAD_REQUEST,
            format!("cannot initialize: {}", words(&e)),
        ),
    }
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    password: String,
}

/// The password typed into the page: kept in memory if it opens the
/// repository.
pub(crate) async fn password(State(app): State<Arc<App>>, Json(f): Json<PasswordForm>) -> Answer {
    let name = app.current();
    if f.password.is_empty() {
        return failed(&app, StatusCode::BAD_REQUEST, "type the password");
    }
    app.remember_password(&name, Zeroizing::new(f.password));
    match app.open(&name).await {
        Ok(_) => reloading(done("unlocked")),
        Err(p) => problem(&app, p),
    }
}

// ------------------------------------------------------------------ backup

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct BackupForm {
    sources: String,
    excludes: String,
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Saves the folders and excludes into the profile in use; with none in
/// use, into a profile "default" for the repository in use, made the
/// default, so the schedule and the CLI find them.
fn save_sources(app: &App, f: &BackupForm) -> Result<String, String> {
    let sources = lines(&f.sources);
    if sources.is_empty() {
        return Err("choose at least one folder to back up".into());
    }
    if let Some(rel) = sources.iter().find(|s| !PathBuf::from(s).is_absolute()) {
        return Err(format!(
            "{rel:?} is not a full path: write it from the root, such as /home/me/Documents"
        ));
    }
    if let Some(gone) = sources
        .iter()
        .find(|s| std::fs::symlink_metadata(s).is_err())
    {
        return Err(format!(
            "the folder {gone} is not there: check the path (or mount its drive)"
        ));
    }
    let _one = lock(&app.config_write);
    let mut name = app.resolved_name(&app.current());
    let mut file = app.config().map_err(|e| words(&e))?;
    if name.is_empty() {
        let session = app.session("").map_err(|e| words(&e))?;
        let (loc, _) = session.ctx().location().map_err(|e| words(&e))?;
        name = "default".into();
        let p = file.profiles.entry(name.clone()).or_default();
        if p.repository.is_none() {
            p.repository = Some(loc);
        }
        file.default.get_or_insert(name.clone());
        app.set_current(&name);
    }
    let p = file
        .profiles
        .get_mut(&name)
        .ok_or_else(|| format!("there is no profile {name:?}"))?;
    p.sources = sources;
    p.excludes = lines(&f.excludes);
    file.save().map_err(|e| words(&e))?;
    Ok(name)
}

pub(crate) fn start_backup_job(app: &App, name: &str, what: &str) -> Result<Arc<Job>, Busy> {
    app.jobs
        .start("backup", name, format!("{what} of profile {}", shown(name)))
}

fn shown(name: &str) -> &str {
    if name.is_empty() { "(default)" } else { name }
}

pub(crate) async fn backup(State(app): State<Arc<App>>, Json(f): Json<BackupForm>) -> Answer {
    // Refused before anything is saved when a task runs.
    if let Some(j) = app.jobs.running() {
        return busy(
            &app,
            Busy(format!(
                "{} is running; try again when it has finished",
                j.title
            )),
        );
    }
    let name = match save_sources(&app, &f) {
        Ok(n) => n,
        Err(e) => return failed(&app, StatusCode::BAD_REQUEST, e),
    };
    let job = match start_backup_job(&app, &name, "backup") {
        Ok(j) => j,
        Err(b) => return busy(&app, b),
    };
    let (app2, job2) = (app.clone(), job.clone());
    spawn_task(&app, &job, async move {
        let _ = run_backup(&app2, &name, &job2, false).await;
    });
    started("backup started")
}

/// A backup of the profile's folders as task `job`, then (automatic runs)
/// its retention; the outcome in words.
pub(crate) async fn run_backup(
    app: &Arc<App>,
    name: &str,
    job: &Arc<Job>,
    automatic: bool,
) -> Result<String, String> {
    let r = backup_steps(app, name, job, automatic).await;
    match &r {
        Ok((msg, html, report)) => {
            app.log(&format!("{}: {msg}", job.title));
            app.jobs
                .finish(job, true, msg.clone(), html.clone(), report.clone());
        }
        Err(msg) => {
            app.log(&format!("{} failed: {msg}", job.title));
            app.jobs
                .finish(job, false, msg.clone(), String::new(), None);
        }
    }
    r.map(|(m, _, _)| m)
}

type Outcome = (String, String, Option<serde_json::Value>);

async fn backup_steps(
    app: &Arc<App>,
    name: &str,
    job: &Arc<Job>,
    automatic: bool,
) -> Result<Outcome, String> {
    let repo = app.open(name).await.map_err(|p| match p {
        Problem::NeedPassword(_) if automatic => "the repository password is not known: a \
            password typed into the page is forgotten when snap ui stops. Type it on Manage, or \
            choose a password file or command in Settings so automatic backups run by themselves"
            .to_string(),
        p => p.message().to_string(),
    })?;
    let session = app.session(name).map_err(|e| words(&e))?;
    let p = session.profile.clone();
    if p.sources.is_empty() {
        return Err(
            "no folders are chosen for this profile: choose them on the Backup page".into(),
        );
    }
    if let Some(gone) = p
        .sources
        .iter()
        .find(|s| std::fs::symlink_metadata(s).is_err())
    {
        return Err(format!(
            "the folder {gone} is not there (moved, deleted, or a drive not mounted); nothing was backed up"
        ));
    }
    let opts = create::CreateOptions {
        paths: p.sources.iter().map(PathBuf::from).collect(),
        excludes: p.excludes.clone(),
        ..Default::default()
    };
    let keep = if automatic {
        p.keep_last.unwrap_or(0)
    } else {
        0
    };
    let job2 = job.clone();
    let repo2 = repo.clone();
    let (r, pruned) = blocking(move || {
        let r = create::create(&repo2, &opts, &*job2)?;
        let pruned = if keep > 0 {
            Some(prune::prune(
                &repo2,
                &keep_options(&create::this_host(), keep, false),
                &*job2,
            )?)
        } else {
            None
        };
        Ok((r, pruned))
    })
    .await
    .map_err(|e| words(&e))?;
    let s = &r.snapshot.summary;
    let mut msg = format!(
        "snapshot {} written: {} new, {} changed, {} unmodified files; {} read, {} added",
        r.snapshot_id.short(),
        s.files_new,
        s.files_changed,
        s.files_unmodified,
        views::bytes(s.bytes_read),
        views::bytes(s.bytes_added)
    );
    if !r.warnings.is_empty() {
        msg.push_str(&format!(
            "; {} path(s) could not be read or changed while read (listed below)",
            r.warnings.len()
        ));
    }
    if let Some(pr) = &pruned {
        msg.push_str(&format!(
            "; kept the last {keep} of this device, removed {}",
            pr.snapshots_forgotten.len()
        ));
    }
    let html = views::backup_result(&r).into_string();
    let report = serde_json::to_value(r.report()).ok();
    Ok((msg, html, report))
}

// ------------------------------------------------------------------ manage

#[derive(Deserialize)]
pub(crate) struct ForgetForm {
    #[serde(default)]
    ids: Vec<String>,
}

pub(crate) async fn forget(State(app): State<Arc<App>>, Json(f): Json<ForgetForm>) -> Answer {
    if f.ids.is_empty() {
        return failed(
            &app,
            StatusCode::BAD_REQUEST,
            "choose the snapshots to delete",
        );
    }
    let name = app.current();
    let repo = match app.open(&name).await {
        Ok(r) => r,
        Err(p) => return problem(&app, p),
    };
    let ids = f.ids.clone();
    let r = blocking(move || {
        // Full ids only: the page sends them, and a prefix could name another.
        let ids: Vec<Id> = ids
            .iter()
            .map(|s| s.parse::<Id>().map_err(|e| anyhow::anyhow!("{s:?}: {e}")))
            .collect::<anyhow::Result<_>>()?;
        let chosen = commands::resolve_for_removal(
            &repo,
            &ids.iter().map(Id::to_hex).collect::<Vec<_>>(),
            &SnapshotFilter::default(),
        )?;
        let ids: Vec<Id> = chosen.iter().map(|(id, _)| *id).collect();
        commands::forget(&repo, &ids)?;
        Ok(ids.len())
    })
    .await;
    match r {
        Ok(n) => {
            app.log(&format!(
                "deleted {n} snapshot(s) of profile {}",
                shown(&name)
            ));
            reloading(done(format!(
                "deleted {n} snapshot(s); \"Free space\" deletes the data no snapshot uses any more"
            )))
        }
        Err(e) => failed(&app, StatusCode::BAD_REQUEST, words(&e)),
    }
}

fn keep_options(host: &str, n: u32, dry_run: bool) -> prune::PruneOptions {
    prune::PruneOptions {
        policy: KeepPolicy {
            last: n,
            ..Default::default()
        },
        filter: SnapshotFilter {
            hosts: vec![host.to_string()],
            ..Default::default()
        },
        dry_run,
        ..Default::default()
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct KeepForm {
    host: String,
    keep: String,
    /// Carry it out; else only show what would go.
    apply: bool,
}

/// "Keep the last N for this device": a preview, then the prune.
pub(crate) async fn keep(State(app): State<Arc<App>>, Json(f): Json<KeepForm>) -> Answer {
    let n: u32 = match f.keep.parse() {
        Ok(n) if n >= 1 => n,
        _ => {
            return failed(
                &app,
                StatusCode::BAD_REQUEST,
                "choose how many snapshots to keep (at least 1)",
            );
        }
    };
    if f.host.trim().is_empty() {
        return failed(&app, StatusCode::BAD_REQUEST, "choose the device");
    }
    let name = app.current();
    let repo = match app.open(&name).await {
        Ok(r) => r,
        Err(p) => return problem(&app, p),
    };
    let opts = keep_options(f.host.trim(), n, !f.apply);
    if !f.apply {
        let r =
            blocking(move || Ok(prune::prune(&repo, &opts, &snap_engine::progress::Silent)?)).await;
        return match r {
            Ok(r) => {
                let mut a = done(format!(
                    "keeping the last {n} of {} would remove {} snapshot(s) and free {}",
                    f.host.trim(),
                    r.snapshots_forgotten.len(),
                    views::bytes(r.bytes_before.saturating_sub(r.bytes_after))
                ));
                a.1.html = views::prune_preview(&r).into_string();
                a
            }
            Err(e) => failed(&app, StatusCode::BAD_REQUEST, words(&e)),
        };
    }
    let job = match app.jobs.start(
        "prune",
        &name,
        format!("keeping the last {n} snapshots of {}", f.host.trim()),
    ) {
        Ok(j) => j,
        Err(b) => return busy(&app, b),
    };
    spawn_prune(app, job, repo, opts);
    started("removing the other snapshots and their data")
}

/// "Free space": deletes the data no snapshot uses.
pub(crate) async fn prune(State(app): State<Arc<App>>) -> Answer {
    let name = app.current();
    let repo = match app.open(&name).await {
        Ok(r) => r,
        Err(p) => return problem(&app, p),
    };
    let job = match app
        .jobs
        .start("prune", &name, "freeing unused space".into())
    {
        Ok(j) => j,
        Err(b) => return busy(&app, b),
    };
    spawn_prune(app, job, repo, prune::PruneOptions::default());
    started("freeing the space of deleted snapshots")
}

fn spawn_prune(
    app: Arc<App>,
    job: Arc<Job>,
    repo: Arc<snap_engine::Repository>,
    opts: prune::PruneOptions,
) {
    spawn_task(&app.clone(), &job.clone(), async move {
        let j = job.clone();
        let r = blocking(move || Ok(prune::prune(&repo, &opts, &*j)?)).await;
        match r {
            Ok(r) => {
                let msg = format!(
                    "{} snapshot(s) removed, {} kept; {} freed ({} -> {})",
                    r.snapshots_forgotten.len(),
                    r.snapshots_kept.len(),
                    views::bytes(r.bytes_before.saturating_sub(r.bytes_after)),
                    views::bytes(r.bytes_before),
                    views::bytes(r.bytes_after)
                );
                app.log(&format!("{}: {msg}", job.title));
                let report = serde_json::to_value(&r).ok();
                app.jobs.finish(&job, true, msg, String::new(), report);
            }
            Err(e) => {
                let msg = words(&e);
                app.log(&format!("{} failed: {msg}", job.title));
                app.jobs.finish(&job, false, msg, String::new(), None);
            }
        }
    });
}

// ----------------------------------------------------------------- restore

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RestoreForm {
    snapshot: String,
    /// The folder or file of the snapshot; "/" or empty: all of it.
    path: String,
    target: String,
    delete: bool,
    preview: bool,
}

fn restore_options(f: &RestoreForm) -> Result<restore::RestoreOptions, String> {
    let target = some(&f.target).ok_or("choose the folder to restore into")?;
    if !PathBuf::from(&target).is_absolute() {
        return Err(format!(
            "{target:?} is not a full path: write it from the root"
        ));
    }
    let id: Id = f
        .snapshot
        .parse()
        .map_err(|e| format!("snapshot {:?}: {e}", f.snapshot))?;
    let path = f.path.trim();
    Ok(restore::RestoreOptions {
        snapshot: id.to_hex(),
        path: (!path.is_empty() && path != "/").then(|| PathBuf::from(path)),
        target: PathBuf::from(target),
        delete: f.delete,
        ..Default::default()
    })
}

pub(crate) async fn restore(State(app): State<Arc<App>>, Json(f): Json<RestoreForm>) -> Answer {
    let opts = match restore_options(&f) {
        Ok(o) => o,
        Err(e) => return failed(&app, StatusCode::BAD_REQUEST, e),
    };
    let name = app.current();
    let repo = match app.open(&name).await {
        Ok(r) => r,
        Err(p) => return problem(&app, p),
    };
    if f.preview {
        let r = blocking(move || {
            let indexed = repo.indexed()?;
            Ok(restore::plan(&indexed, &opts)?.report())
        })
        .await;
        return match r {
            Ok(plan) => {
                let mut a = done(views::plan_summary(&plan));
                a.1.html = views::plan(&plan).into_string();
                a
            }
            Err(e) => failed(&app, StatusCode::BAD_REQUEST, words(&e)),
        };
    }
    let title = format!("restore into {}", opts.target.display());
    let job = match app.jobs.start("restore", &name, title) {
        Ok(j) => j,
        Err(b) => return busy(&app, b),
    };
    spawn_restore(app, job, repo, opts, name);
    started("restore started")
}

fn spawn_restore(
    app: Arc<App>,
    job: Arc<Job>,
    repo: Arc<snap_engine::Repository>,
    opts: restore::RestoreOptions,
    name: String,
) {
    spawn_task(&app.clone(), &job.clone(), async move {
        let j = job.clone();
        let r = blocking(move || Ok(restore::restore(&repo, &opts, &*j)?)).await;
        match r {
            Ok(r) => {
                let ok = r.errors.is_empty();
                let mut msg = format!(
                    "restored {} files ({}): {} written, {} already right, {} deleted",
                    r.files,
                    views::bytes(r.bytes),
                    r.files_written,
                    r.files_kept,
                    r.deleted
                );
                if !ok {
                    msg.push_str(&format!(
                        "; {} item(s) could not be restored (listed below)",
                        r.errors.len()
                    ));
                }
                if let Some(u) = &r.undo {
                    msg.push_str(&format!(
                        "; what was there before is in snapshot {}",
                        u.snapshot_id.short()
                    ));
                    // Only the newest restore can be undone from the page.
                    app.jobs.forget_undo();
                    *lock(&app.last_undo) = Some((name, u.clone()));
                }
                app.log(&format!("{}: {msg}", job.title));
                let html = views::restore_result(&r).into_string();
                let report = serde_json::to_value(r.report()).ok();
                app.jobs.finish(&job, ok, msg, html, report);
            }
            Err(e) => {
                let msg = words(&e);
                app.log(&format!("{} failed: {msg}", job.title));
                app.jobs.finish(&job, false, msg, String::new(), None);
            }
        }
    });
}

/// Puts back what the last restore changed, from its undo snapshot.
pub(crate) async fn undo(State(app): State<Arc<App>>) -> Answer {
    let Some((name, u)) = lock(&app.last_undo).clone() else {
        return failed(&app, StatusCode::NOT_FOUND, "there is no restore to undo");
    };
    let repo = match app.open(&name).await {
        Ok(r) => r,
        Err(p) => return problem(&app, p),
    };
    let opts = u.options();
    let job = match app.jobs.start(
        "restore",
        &name,
        format!("undo of the restore into {}", opts.target.display()),
    ) {
        Ok(j) => j,
        Err(b) => return busy(&app, b),
    };
    *lock(&app.last_undo) = None;
    app.jobs.forget_undo();
    spawn_restore(app, job, repo, opts, name);
    started(format!(
        "putting back what was there, from snapshot {}",
        u.snapshot_id.short()
    ))
}

// ---------------------------------------------------------------- schedule

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ScheduleForm {
    profile: String,
    interval: String,
    keep_last: String,
    on_failure: String,
}

pub(crate) async fn schedule(State(app): State<Arc<App>>, Json(f): Json<ScheduleForm>) -> Answer {
    if schedule::interval_seconds(&f.interval).is_none() {
        return failed(
            &app,
            StatusCode::BAD_REQUEST,
            format!("{:?} is not one of the intervals offered", f.interval),
        );
    }
    let keep: u32 = match f.keep_last.parse() {
        Ok(k) if schedule::KEEP.contains(&k) => k,
        _ => {
            return failed(
                &app,
                StatusCode::BAD_REQUEST,
                format!("{:?} is not one of the numbers offered", f.keep_last),
            );
        }
    };
    let r = (|| -> anyhow::Result<()> {
        let _one = lock(&app.config_write);
        let mut file: ConfigFile = app.config()?;
        let p = file
            .profiles
            .get_mut(&f.profile)
            .ok_or_else(|| anyhow::anyhow!("there is no profile {:?}", f.profile))?;
        p.schedule = Some(f.interval.clone());
        p.keep_last = (keep > 0).then_some(keep);
        p.on_failure = some(&f.on_failure);
        file.save()?;
        Ok(())
    })();
    match r {
        Ok(()) => {
            app.log(&format!(
                "profile {}: schedule {}, keep {}",
                f.profile, f.interval, keep
            ));
            schedule::refresh(&app);
            let mut msg = format!("saved the schedule of profile {}", f.profile);
            let unattended = app
                .session(&f.profile)
                .is_ok_and(|s| crate::password::is_configured(s.global(), &s.profile));
            if f.interval != "off" && !unattended {
                msg.push_str(
                    ". Note: its repository password is only typed into this page, which forgets \
                     it when snap ui stops; until it is typed again, automatic backups cannot \
                     run. To have them run by themselves, choose a password file or command in \
                     Settings",
                );
            }
            reloading(done(msg))
        }
        Err(e) => failed(&app, StatusCode::BAD_REQUEST, words(&e)),
    }
}

// ------------------------------------------------------------------- check

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CheckForm {
    /// "structure", or a percentage of the data to read ("10", "100").
    read: String,
}

pub(crate) async fn check(State(app): State<Arc<App>>, Json(f): Json<CheckForm>) -> Answer {
    let opts = match f.read.as_str() {
        "structure" | "" => check::CheckOptions::default(),
        pct => match format!("{pct}%").parse::<check::Subset>() {
            Ok(s) => check::CheckOptions {
                read_data: true,
                subset: (pct != "100").then_some(s),
            },
            Err(e) => return failed(&app, StatusCode::BAD_REQUEST, e),
        },
    };
    let name = app.current();
    let repo = match app.open(&name).await {
        Ok(r) => r,
        Err(p) => return problem(&app, p),
    };
    let what = if opts.read_data {
        format!("check reading {}% of the data", f.read)
    } else {
        "structure check".into()
    };
    let job = match app.jobs.start("check", &name, what) {
        Ok(j) => j,
        Err(b) => return busy(&app, b),
    };
    spawn_task(&app.clone(), &job.clone(), async move {
        let j = job.clone();
        let r = blocking(move || Ok(check::check(&repo, &opts, &*j)?)).await;
        match r {
            Ok(r) => {
                let msg = if r.ok() {
                    format!(
                        "no errors: {} snapshots, {} trees, {} packs ({} read)",
                        r.snapshots, r.trees, r.packs, r.packs_read
                    )
                } else {
                    format!(
                        "{} error(s) found: the files listed below cannot all be restored",
                        r.errors.len()
                    )
                };
                app.log(&format!("{}: {msg}", job.title));
                let html = views::check_result(&r).into_string();
                let report = serde_json::to_value(r.report()).ok();
                app.jobs.finish(&job, r.ok(), msg, html, report);
            }
            Err(e) => {
                let msg = words(&e);
                app.log(&format!("{} failed: {msg}", job.title));
                app.jobs.finish(&job, false, msg, String::new(), None);
            }
        }
    });
    started("check started")
}
