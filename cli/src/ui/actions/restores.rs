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
