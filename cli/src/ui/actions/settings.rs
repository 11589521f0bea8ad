//! Settings: profiles, Check connection, Initialize, and the password typed
//! into the page.

use super::*;
use crate::ui::app::Session;

#[derive(Deserialize)]
pub(crate) struct UseProfile {
    name: String,
}

pub(crate) async fn use_profile(State(app): State<Arc<App>>, Json(f): Json<UseProfile>) -> Answer {
    let which = Which::from_form(&f.name);
    if which != Which::Given && app.session(&which).is_err() {
        return failed(
            &app,
            StatusCode::NOT_FOUND,
            format!("there is no profile {:?}", f.name),
        );
    }
    app.set_current(which);
    reloading(done(format!("using profile {}", f.name)))
}

/// The Settings form.
#[derive(Clone, Deserialize, Default)]
#[serde(default)]
pub(crate) struct SettingsForm {
    name: String,
    kind: Kind,
    folder: String,
    endpoint: String,
    region: String,
    bucket: String,
    access_key_id: String,
    /// Empty: keep the saved one.
    secret_access_key: String,
    root: String,
    password_source: PasswordSource,
    password_file: String,
    /// Refused: the page never sets a command (see
    /// [`views::password_command_how`]); here to say so, not ignore it.
    password_command: String,
    /// Typed for Initialize and for opening; kept in memory only.
    password: String,
    password_again: String,
    make_default: bool,
    /// The number of repositories near the new one the user agreed to
    /// create it beside (see [`init`]).
    confirmed: Option<u64>,
}

/// Where the repository is, as the Settings form offers it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// A folder on this computer or a mounted drive.
    #[default]
    Local,
    /// An S3-compatible bucket.
    S3,
}

/// Where a profile's password comes from, as the Settings form offers it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PasswordSource {
    /// Typed into the page, kept in memory only.
    #[default]
    Page,
    /// Kept in a file beside the config that snap writes, readable by this
    /// user alone.
    Store,
    /// A file of the user's, named in the form.
    File,
    /// As saved: a command set from the terminal, or a form that shows no
    /// password (Initialize where one is configured).
    Keep,
    /// Refused: the page never sets a command
    /// ([`views::password_command_how`]); named to say so, not to fail
    /// with a parse error.
    Command,
}

impl PasswordSource {
    /// The form's value for it.
    pub(crate) fn value(self) -> &'static str {
        match self {
            PasswordSource::Page => "page",
            PasswordSource::Store => "store",
            PasswordSource::File => "file",
            PasswordSource::Keep => "keep",
            PasswordSource::Command => "command",
        }
    }

    /// Whether the password is the one typed into the form.
    fn typed(self) -> bool {
        matches!(self, PasswordSource::Page | PasswordSource::Store)
    }
}

/// A form refused, with the field at fault when there is one: the page
/// shows the message beside that field, not only under the buttons.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) field: Option<&'static str>,
    pub(crate) message: String,
}

impl Refusal {
    fn at(field: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            field: Some(field),
            message: message.into(),
        }
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Refusal {
        Refusal {
            field: None,
            message,
        }
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Refusal {
        message.to_string().into()
    }
}

/// Answers a refused form, naming the field.
fn refused(app: &App, r: Refusal) -> Answer {
    let mut a = failed(app, StatusCode::BAD_REQUEST, r.message);
    a.1.field = r.field;
    a
}

impl SettingsForm {
    /// The profile's name, made a plain word ([`crate::config::slug`]):
    /// "Bob's laptop" becomes `bob-s-laptop` rather than an error a
    /// desktop user cannot act on.
    fn name(&self) -> String {
        crate::config::slug(&self.name)
    }
}

/// The profile the form describes, on top of the saved one (which keeps
/// the secret when the field is left empty, and the folders, schedule and
/// everything the form does not show).
fn profile_from(f: &SettingsForm, saved: Option<&Profile>) -> Result<Profile, Refusal> {
    let name = &f.name();
    if name.is_empty() {
        return Err(Refusal::at(
            "name",
            if f.name.trim().is_empty() {
                "give the profile a name".to_string()
            } else {
                format!(
                    "the profile name {:?} has no letter or digit to name it by",
                    f.name
                )
            },
        ));
    }
    // Checked first: Check connection would have run it.
    if some(&f.password_command).is_some() || f.password_source == PasswordSource::Command {
        return Err(format!(
            "a password command is set from the terminal only, not from this page: {}",
            views::password_command_how(name)
        )
        .into());
    }
    let mut p = saved.cloned().unwrap_or_default();
    p.name = name.to_string();
    match f.kind {
        Kind::Local => {
            let folder = some(&f.folder)
                .ok_or_else(|| Refusal::at("folder", "give the folder of the repository"))?;
            let folder = crate::ui::folders::expand_home(&folder);
            if !PathBuf::from(&folder).is_absolute() {
                return Err(Refusal::at(
                    "folder",
                    format!(
                        "the folder {folder:?} is not a full path: write it from the root, such as /mnt/backup/snap"
                    ),
                ));
            }
            p.repository = Some(folder);
            p.endpoint = None;
            p.region = None;
            p.access_key_id = None;
            p.secret_access_key = None;
            p.secret_access_key_command = None;
        }
        Kind::S3 => {
            let bucket =
                some(&f.bucket).ok_or_else(|| Refusal::at("bucket", "give the bucket's name"))?;
            let root = f.root.trim().trim_matches('/');
            let location = if root.is_empty() {
                format!("s3://{bucket}")
            } else {
                format!("s3://{bucket}/{root}")
            };
            snap_engine::backend::S3Options::parse_location(&location)
                .map_err(|e| Refusal::at("root", format!("bucket or root path: {e}")))?;
            // A saved secret goes only where it was saved for: a form
            // naming another endpoint or access key once had requests
            // signed with it sent there.
            let moved =
                p.endpoint != some(&f.endpoint) || p.access_key_id != some(&f.access_key_id);
            p.repository = Some(location);
            p.endpoint = some(&f.endpoint);
            p.region = some(&f.region);
            p.access_key_id = some(&f.access_key_id);
            if let Some(secret) = some(&f.secret_access_key) {
                p.secret_access_key = Some(secret);
                p.secret_access_key_command = None;
            } else if moved && p.secret_access_key.is_some() {
                return Err(Refusal::at(
                    "secret_access_key",
                    "type the Secret Access Key again: the saved one belongs to the endpoint and access key this form no longer names",
                ));
            }
        }
    }
    match f.password_source {
        PasswordSource::File => {
            p.password_file =
                Some(PathBuf::from(some(&f.password_file).ok_or_else(|| {
                    Refusal::at("password_file", "give the password file")
                })?));
            p.password_command = None;
        }
        PasswordSource::Page => {
            p.password_file = None;
            p.password_command = None;
        }
        // As saved; or `save_profile` writes the file.
        PasswordSource::Keep | PasswordSource::Store => {}
        PasswordSource::Command => unreachable!("refused above"),
    }
    Ok(p)
}

fn save_profile(app: &App, f: &SettingsForm) -> Result<Profile, Refusal> {
    let _one = lock(&app.config_write);
    let mut file = app.config().map_err(|e| words(&e))?;
    let name = f.name();
    let mut p = profile_from(f, file.profiles.get(&name))?;
    if f.password_source == PasswordSource::Store {
        p.password_file =
            Some(store_password(&name, &f.password).map_err(|e| Refusal::at("password", e))?);
        p.password_command = None;
    }
    file.profiles.insert(name.clone(), p.clone());
    if f.make_default || file.default.is_none() {
        file.default = Some(name.clone());
    }
    app.save_config(&file).map_err(|e| words(&e))?;
    let which = Which::Named(name.clone());
    app.forget_repository(&which);
    app.set_current(which.clone());
    if let Some(pw) = some(&f.password) {
        app.remember_password(&which, Zeroizing::new(pw));
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
        Err(e) => refused(&app, e),
    }
}

/// The settings the form describes, saved or not, on top of the saved
/// profile of that name: what Check connection, Connect and Create try.
fn form_session(app: &App, f: &SettingsForm) -> Result<Session, Box<Answer>> {
    let saved = app
        .config()
        .ok()
        .and_then(|c| c.profiles.get(&f.name()).cloned());
    let p = profile_from(f, saved.as_ref()).map_err(|e| Box::new(refused(app, e)))?;
    app.session(&Which::Given)
        .map(|s| s.with_profile(p))
        .map_err(|e| Box::new(failed(app, StatusCode::BAD_REQUEST, words(&e))))
}

/// Check connection: the CLI's steps for the settings in the form, saved
/// or not.
pub(crate) async fn check_connection(
    State(app): State<Arc<App>>,
    Json(f): Json<SettingsForm>,
) -> Answer {
    let session = match form_session(&app, &f) {
        Ok(s) => s,
        Err(a) => return *a,
    };
    // The password for the form's place: typed in the form (when that is
    // its source), else one typed before for that same place; never one
    // typed for another repository, and never before the form's command.
    let typed = if f.password_source.typed() {
        some(&f.password)
            .map(Zeroizing::new)
            .or_else(|| app.typed_for(&session))
    } else {
        None
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
            let needs_password = is_password_missing(&e);
            app.log(&format!("check connection: {msg}"));
            let near = crate::ctx::nearby_of(&e).cloned();
            let (status, message) = if missing {
                let mut m = "the storage answers, and there is no repository there yet".to_string();
                match near.as_ref().and_then(|n| n.sentence()) {
                    Some(s) => m.push_str(&format!(
                        ". {} To make a new one here instead, Initialize makes one",
                        views::sentence_case(&s)
                    )),
                    None => m.push_str(": Initialize makes one"),
                }
                (StatusCode::NOT_FOUND, m)
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
                // Information, not a failure: the settings work.
                a.1.info = true;
                a.1.show = Some("init");
                if let Some(n) = &near {
                    a.1.html = crate::ui::pages::fill_buttons(n).into_string();
                }
            }
            a
        }
    }
}

pub(crate) async fn init(State(app): State<Arc<App>>, Json(f): Json<SettingsForm>) -> Answer {
    let _one = app.initializing.lock().await;
    if let Some(ask) = ask_when_others_are_near(&app, &f).await {
        return ask;
    }
    if f.password_source.typed() {
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
    // Saved only once the repository exists: a Create that failed (a
    // repository already there) once left the profile pointing at another
    // computer's repository with this password kept beside it.
    let session = match form_session(&app, &f) {
        Ok(s) => s,
        Err(a) => return *a,
    };
    let typed = f
        .password_source
        .typed()
        .then(|| Zeroizing::new(f.password.clone()));
    let session = session.with_password_exactly(typed);
    let r = blocking(move || {
        let ctx = session.ctx();
        let (loc, _) = ctx.location()?;
        let (_, r) = ctx.init(&loc, ctx.init_options(false)?)?;
        Ok(r)
    })
    .await;
    match r {
        Ok(r) => {
            if let Err(e) = save_profile(&app, &f) {
                return refused(
                    &app,
                    format!(
                        "created repository {} at {}, but its settings could not be saved: {}",
                        r.repository_id.short(),
                        r.location,
                        e.message
                    )
                    .into(),
                );
            }
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

/// A new repository beside others asks first: a root path of `famliy`
/// beside `family` is a typo far more often than a wish (the terminal's
/// `snap init` asks the same).
async fn ask_when_others_are_near(app: &App, f: &SettingsForm) -> Option<Answer> {
    let session = form_session(app, f).ok()?;
    let near = blocking(move || {
        let ctx = session.ctx();
        let (loc, _) = ctx.location()?;
        Ok(ctx.nearby(&loc).beside_or_below())
    })
    .await
    .ok()?;
    let sentence = near.sentence()?;
    if f.confirmed == Some(near.found.len() as u64) {
        return None;
    }
    let mut a = failed(
        app,
        StatusCode::CONFLICT,
        format!(
            "not created: {} To use one of those, connect to it instead",
            views::sentence_case(&sentence)
        ),
    );
    a.1.confirm = Some(format!(
        "{} Create another repository at {} anyway?",
        views::sentence_case(&sentence),
        near.missing
    ));
    a.1.confirm_count = Some(near.found.len() as u64);
    Some(a)
}

/// Connect: the settings of a repository that exists (made by another
/// computer), checked before anything is saved. Found and opened with the
/// password, it becomes the profile, and the page goes to Manage with its
/// snapshots. Not found, it names the repositories near the place given
/// (a typo in a root path); found but locked, it asks for the password.
pub(crate) async fn connect(State(app): State<Arc<App>>, Json(f): Json<SettingsForm>) -> Answer {
    let session = match form_session(&app, &f) {
        Ok(s) => s,
        Err(a) => return *a,
    };
    let session = session.with_password_exactly(some(&f.password).map(Zeroizing::new));
    let opened = blocking(move || {
        let ctx = session.ctx();
        let (loc, _) = ctx.location()?;
        Ok((loc, ctx.open()))
    })
    .await;
    let (location, opened) = match opened {
        Ok(x) => x,
        Err(e) => return failed(&app, StatusCode::INTERNAL_SERVER_ERROR, words(&e)),
    };
    match opened {
        Ok(_) => match save_profile(&app, &f) {
            Ok(p) => {
                app.log(&format!("connected profile {} to {location}", p.name));
                let mut a = done(format!("connected to {location}"));
                a.1.redirect = Some("/manage".into());
                a
            }
            Err(e) => refused(&app, e),
        },
        Err(e) => match engine_error(&e) {
            Some(Error::RepositoryNotFound(_)) => {
                let near = crate::ctx::nearby_of(&e);
                let mut msg = format!("there is no repository at {location}");
                if let Some(s) = near.and_then(|n| n.sentence()) {
                    msg.push_str(&format!(". {}", views::sentence_case(&s)));
                }
                let mut a = failed(&app, StatusCode::NOT_FOUND, msg);
                if let Some(n) = near {
                    a.1.html = crate::ui::pages::fill_buttons(n).into_string();
                }
                a
            }
            Some(Error::WrongPassword | Error::WrongPasswordSkipped(_)) => failed(
                &app,
                StatusCode::UNAUTHORIZED,
                format!("found the repository at {location}, but that password does not open it"),
            ),
            _ if is_password_missing(&e) => failed(
                &app,
                StatusCode::UNAUTHORIZED,
                format!("found the repository at {location}: type its password"),
            ),
            _ => failed(&app, StatusCode::BAD_REQUEST, words(&e)),
        },
    }
}

/// Whether `e` says that no password was given.
fn is_password_missing(e: &anyhow::Error) -> bool {
    matches!(engine_error(e), Some(Error::PasswordRequired))
}

#[derive(Deserialize)]
pub(crate) struct RelocateForm {
    profile: String,
    location: String,
}

/// "Use s3://bucket/family": a profile whose location holds no repository
/// is pointed at one found near it, once that one opens with the profile's
/// password. Only a place the search finds now is taken, and only for a
/// profile whose own place holds nothing: a planted look-alike once took a
/// profile at one click, and the page then said only "corrupt config".
pub(crate) async fn relocate(State(app): State<Arc<App>>, Json(f): Json<RelocateForm>) -> Answer {
    let name = f.profile.trim().to_string();
    let which = Which::Named(name.clone());
    let session = match app.session(&which) {
        Ok(s) => s,
        Err(e) => return failed(&app, StatusCode::NOT_FOUND, words(&e)),
    };
    let typed = session.typed_password();
    let keep_typed = typed.clone();
    let wanted = f.location.clone();
    let checked = blocking(move || {
        let ctx = session.ctx();
        let (old, _) = ctx.location()?;
        // Opening the old place searched near it already.
        let found_near = match ctx.open() {
            Ok(_) => anyhow::bail!(
                "profile {} already has its repository at {old}: change it in Settings",
                session.profile.name
            ),
            Err(e) if !matches!(engine_error(&e), Some(Error::RepositoryNotFound(_))) => {
                return Err(e);
            }
            Err(e) => crate::ctx::nearby_of(&e).is_some_and(|n| n.found.contains(&wanted)),
        };
        if !found_near {
            anyhow::bail!("{wanted} is not a repository found near {old}: choose it in Settings");
        }
        let mut p = session.profile.clone();
        p.repository = Some(wanted.clone());
        let moved = session.with_profile(p).with_password_exactly(typed);
        moved.ctx().open()?;
        Ok(())
    })
    .await;
    if let Err(e) = checked {
        let msg = if matches!(engine_error(&e), Some(Error::PasswordRequired)) {
            format!(
                "{} is encrypted, and this profile's password is not known yet: type it on Manage, or choose it in Settings",
                f.location
            )
        } else {
            format!("not changed: {}", words(&e))
        };
        return failed(&app, StatusCode::BAD_REQUEST, msg);
    }
    let _one = lock(&app.config_write);
    let mut file = match app.config() {
        Ok(c) => c,
        Err(e) => return failed(&app, StatusCode::BAD_REQUEST, words(&e)),
    };
    let Some(p) = file.profiles.get_mut(&name) else {
        return failed(
            &app,
            StatusCode::NOT_FOUND,
            format!("there is no profile {name:?}"),
        );
    };
    p.repository = Some(f.location.clone());
    if let Err(e) = app.save_config(&file) {
        return failed(&app, StatusCode::BAD_REQUEST, words(&e));
    }
    drop(_one);
    app.forget_repository(&which);
    // The password typed for the old place opened the new one.
    if let Some(pw) = keep_typed {
        app.remember_password(&which, pw);
    }
    app.log(&format!("profile {name} now uses {}", f.location));
    reloading(done(format!("profile {name} now uses {}", f.location)))
}
