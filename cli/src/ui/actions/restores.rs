//! Restore (with a preview) and its undo.

use super::*;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RestoreForm {
    snapshot: String,
    /// The folder or file of the snapshot; "/" or empty: all of it.
    path: String,
    target: String,
    delete: bool,
    preview: bool,
    /// The number of files the person agreed to delete when the page
    /// asked (see [`ask_first`]).
    confirmed: Option<u64>,
}

fn restore_options(f: &RestoreForm) -> Result<restore::RestoreOptions, String> {
    let target = some(&f.target).ok_or("choose the folder to restore into")?;
    // `~/restored` is this user's, as on Backup.
    let target = crate::ui::folders::expand_home(&target);
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
    if let Some(ask) = ask_first(&app, &repo, &opts, f.confirmed).await {
        return ask;
    }
    let title = format!("restore into {}", opts.target.display());
    let job = match app.jobs.start(TaskKind::Restore, &name, title) {
        Ok(j) => j,
        Err(b) => return busy(&app, b),
    };
    spawn_restore(app, job, repo, opts, name, f.confirmed);
    started("restore started")
}

/// A restore that deletes more than half of the files its target holds
/// asks first, with the count, by the CLI's rule
/// ([`crate::cmd::restore::deletes_most`]): the answer is the question,
/// which the page asks and sends again with the count agreed to. None:
/// go on.
async fn ask_first(
    app: &App,
    repo: &Arc<snap_engine::Repository>,
    opts: &restore::RestoreOptions,
    confirmed: Option<u64>,
) -> Option<Answer> {
    let (repo, opts) = (repo.clone(), opts.clone());
    let planned = blocking(move || {
        let indexed = repo.indexed()?;
        let plan = restore::plan(&indexed, &opts)?;
        Ok(crate::cmd::restore::deletes_most(&plan).map(|what| (what, plan.files_deleted)))
    })
    .await;
    match planned {
        Err(e) => Some(failed(app, StatusCode::BAD_REQUEST, words(&e))),
        Ok(Some((what, n))) if confirmed != Some(n) => {
            let mut a = failed(
                app,
                StatusCode::CONFLICT,
                format!("{what}, more than half: nothing was changed"),
            );
            a.1.confirm = Some(format!("{what}. Go on?"));
            a.1.confirm_count = Some(n);
            Some(a)
        }
        Ok(_) => None,
    }
}

/// The first path of `plan` that is snap's own config file, or lies in its
/// config or data folder. Restoring a planted `config.toml` over snap's own
/// once made the page run a password command it refuses to take as a
/// setting (a hostile review of the page).
fn writes_snaps_own(plan: &restore::Plan) -> Option<std::path::PathBuf> {
    let mut own: Vec<std::path::PathBuf> = Vec::new();
    if let Ok(config) = crate::config::path() {
        own.extend(config.parent().map(|p| p.to_path_buf()));
        own.push(config);
    }
    own.extend(dirs::data_dir().map(|d| d.join("snap")));
    let own: Vec<std::path::PathBuf> = own
        .into_iter()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect();
    // The configured file may sit directly in the home folder (SNAP_CONFIG):
    // then only the file itself is off limits, not the folder.
    let home = dirs::home_dir().map(|h| std::fs::canonicalize(&h).unwrap_or(h));
    plan.entries()
        .map(|e| e.path.as_path())
        .chain(plan.extras.iter().map(|x| x.path.as_path()))
        .find(|p| {
            own.iter().any(|o| {
                let folder_of_everything = home.as_deref() == Some(o.as_path());
                (*p == o.as_path()) || (!folder_of_everything && p.starts_with(o))
            })
        })
        .map(|p| p.to_path_buf())
}

fn spawn_restore(
    app: Arc<App>,
    job: Arc<Job>,
    repo: Arc<snap_engine::Repository>,
    opts: restore::RestoreOptions,
    name: Which,
    confirmed: Option<u64>,
) {
    spawn_task(&app.clone(), &job.clone(), async move {
        let j = job.clone();
        let r = blocking(move || {
            let indexed = repo.indexed()?;
            let plan = restore::plan(&indexed, &opts)?;
            if let Some(own) = writes_snaps_own(&plan) {
                anyhow::bail!(
                    "this restore would write {}, where snap keeps its own settings and \
                     state: the page does not do that, since settings there can make snap run \
                     commands. Restore it from the terminal (`snap restore`); nothing was changed",
                    own.display()
                );
            }
            // Planned again: the target may have changed since the question.
            if let Some(what) = crate::cmd::restore::deletes_most(&plan)
                && confirmed != Some(plan.files_deleted)
            {
                anyhow::bail!(
                    "{what}, not the number agreed to: the folder changed since; nothing was changed"
                );
            }
            Ok(restore::apply(indexed, &plan, &opts, &*j)?)
        })
        .await;
        let ended = match r {
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
                Ok(Ended {
                    ok,
                    message: msg,
                    html: views::restore_result(&r).into_string(),
                    report: serde_json::to_value(r.report()).ok(),
                })
            }
            Err(e) => Err(words(&e)),
        };
        end_task(&app, &job, ended);
    });
}

/// Puts back what the last restore changed, from its undo snapshot.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct UndoForm {
    /// As [`RestoreForm::confirmed`].
    confirmed: Option<u64>,
}

pub(crate) async fn undo(State(app): State<Arc<App>>, Json(f): Json<UndoForm>) -> Answer {
    let Some((name, u)) = lock(&app.last_undo).clone() else {
        return failed(&app, StatusCode::NOT_FOUND, "there is no restore to undo");
    };
    let repo = match app.open(&name).await {
        Ok(r) => r,
        Err(p) => return problem(&app, p),
    };
    let opts = u.options();
    if let Some(ask) = ask_first(&app, &repo, &opts, f.confirmed).await {
        return ask;
    }
    let job = match app.jobs.start(
        TaskKind::Restore,
        &name,
        format!("undo of the restore into {}", opts.target.display()),
    ) {
        Ok(j) => j,
        Err(b) => return busy(&app, b),
    };
    *lock(&app.last_undo) = None;
    app.jobs.forget_undo();
    spawn_restore(app, job, repo, opts, name, f.confirmed);
    started(format!(
        "putting back what was there, from snapshot {}",
        u.snapshot_id.short()
    ))
}
