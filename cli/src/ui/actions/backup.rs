//! Backup now, and the backup the schedule runs: the same steps.

use super::*;

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
    // `~/Documents` is this user's Documents.
    let sources: Vec<String> = lines(&f.sources)
        .iter()
        .map(|s| crate::ui::folders::expand_home(s))
        .collect();
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
        let session = app.session(&Which::Given).map_err(|e| words(&e))?;
        let (loc, _) = session.ctx().location().map_err(|e| words(&e))?;
        name = "default".into();
        let p = file.profiles.entry(name.clone()).or_default();
        if p.repository.is_none() {
            p.repository = Some(loc);
        }
        file.default.get_or_insert(name.clone());
        app.set_current(Which::Named(name.clone()));
    }
    let p = file
        .profiles
        .get_mut(&name)
        .ok_or_else(|| format!("there is no profile {name:?}"))?;
    p.sources = sources;
    p.excludes = lines(&f.excludes);
    app.save_config(&file).map_err(|e| words(&e))?;
    Ok(name)
}

pub(crate) fn start_backup_job(app: &App, name: &Which, what: &str) -> Result<Arc<Job>, Busy> {
    app.jobs
        .start(TaskKind::Backup, name, format!("{what} of profile {name}"))
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
    let name = Which::Named(name);
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
    name: &Which,
    job: &Arc<Job>,
    automatic: bool,
) -> Result<String, String> {
    let r = backup_steps(app, name, job, automatic).await;
    let said = r.as_ref().map(|(m, _, _)| m.clone()).map_err(Clone::clone);
    end_task(
        app,
        job,
        r.map(|(message, html, report)| Ended {
            ok: true,
            message,
            html,
            report,
        }),
    );
    said
}

type Outcome = (String, String, Option<serde_json::Value>);

async fn backup_steps(
    app: &Arc<App>,
    name: &Which,
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
    // Automatic runs skip a snapshot when nothing changed (the profile
    // may say otherwise), so that keep-last-N keeps history, not copies;
    // Back up now writes the snapshot it was asked for.
    let opts = create::CreateOptions {
        paths: p.sources.iter().map(PathBuf::from).collect(),
        excludes: p.excludes.clone(),
        skip_if_unchanged: automatic && p.skip_if_unchanged.unwrap_or(true),
        no_delete: p.no_delete.unwrap_or(false),
        ..Default::default()
    };
    // A write-only key removes nothing: its device's old snapshots are
    // kept to the last N by a full device's prune.
    let keep = if automatic && repo.access() == snap_engine::keys::Access::Full {
        p.keep_last.unwrap_or(0)
    } else {
        0
    };
    let job2 = job.clone();
    let repo2 = repo.clone();
    let (r, pruned) = blocking(move || {
        let r = create::create(&repo2, &opts, &*job2)?;
        // After a skipped run, retention runs only while this device has
        // more than it keeps (the schedule was just made shorter): a prune
        // every minute that finds nothing to do would read the whole
        // index each time.
        let host = create::this_host();
        let over = || -> anyhow::Result<bool> {
            let filter = SnapshotFilter {
                hosts: vec![host.clone()],
                ..Default::default()
            };
            Ok(commands::snapshots(&repo2, &filter)?.len() > keep as usize)
        };
        let pruned = if keep > 0 && (!r.skipped_unchanged || over()?) {
            Some(prune::prune(
                &repo2,
                &keep_options(&host, keep, false),
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
    let mut msg = if r.skipped_unchanged {
        format!(
            "{}: no snapshot written",
            crate::output::unchanged_since(&r.snapshot_id)
        )
    } else {
        format!(
            "snapshot {} written: {} new, {} changed, {} unmodified files; {} read, {} added",
            r.snapshot_id.short(),
            s.files_new,
            s.files_changed,
            s.files_unmodified,
            views::bytes(s.bytes_read),
            views::bytes(s.bytes_added)
        )
    };
    if !r.warnings.is_empty() {
        msg.push_str(&format!(
            "; {} path(s) could not be read or changed while read (listed below)",
            r.warnings.len()
        ));
    }
    if let Some(lock) = &r.lock_left {
        msg.push_str(&format!("; {}", crate::output::lock_left(lock)));
    }
    if let Some(pr) = &pruned {
        msg.push_str(&format!(
            "; kept the last {keep} of this device, removed {}",
            pr.snapshots_forgotten.len()
        ));
    } else if keep > 0 && r.skipped_unchanged {
        // Retention holds without a prune: the words say so every run, not
        // only on the run that removed something.
        msg.push_str(&format!("; kept the last {keep} of this device"));
    }
    let html = if r.skipped_unchanged {
        String::new()
    } else {
        views::backup_result(&r).into_string()
    };
    let report = serde_json::to_value(r.report()).ok();
    Ok((msg, html, report))
}
