//! Manage: delete snapshots, keep the last N of a device, free space.

use super::*;

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
    if let Err(e) = repo.require_full("remove snapshots") {
        return failed(&app, StatusCode::BAD_REQUEST, e.to_string());
    }
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
        Ok(ids)
    })
    .await;
    match r {
        Ok(ids) => {
            let names: Vec<String> = ids.iter().map(|i| i.short()).collect();
            app.log(&format!(
                "deleted snapshots {} of profile {}",
                names.join(", "),
                name
            ));
            let mut a = done(format!(
                "deleted {} {}; Free space deletes the data no snapshot uses any more",
                if ids.len() == 1 {
                    "snapshot"
                } else {
                    "snapshots"
                },
                names.join(", ")
            ));
            a.1.refresh = true;
            a
        }
        Err(e) => failed(&app, StatusCode::BAD_REQUEST, words(&e)),
    }
}

pub(super) fn keep_options(host: &str, n: u32, dry_run: bool) -> prune::PruneOptions {
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
                    "keeping the last {n} of {} would remove {} and free {}",
                    f.host.trim(),
                    views::count(r.snapshots_forgotten.len() as u64, "snapshot", "snapshots"),
                    views::bytes(r.bytes_before.saturating_sub(r.bytes_after))
                ));
                if r.claims_pruner {
                    a.1.message.push_str(
                        ". This computer then becomes the one that deletes unused data for this repository; others only remove snapshots",
                    );
                }
                a.1.html = views::prune_preview(&r).into_string();
                a
            }
            Err(e) => failed(&app, StatusCode::BAD_REQUEST, words(&e)),
        };
    }
    let job = match app.jobs.start(
        TaskKind::Prune,
        &name,
        format!(
            "keeping the last {} of {}",
            views::count(u64::from(n), "snapshot", "snapshots"),
            f.host.trim()
        ),
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
        .start(TaskKind::Prune, &name, "freeing unused space".into())
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
        let ended = r.map_err(|e| words(&e)).map(|r| {
            let removed = views::count(r.snapshots_forgotten.len() as u64, "snapshot", "snapshots");
            let kept = r.snapshots_kept.len();
            let mut msg = format!(
                "{removed} removed, {kept} kept; {} deleted from storage",
                views::bytes(r.bytes_deleted),
            );
            if let Some(p) = &r.data_left_to {
                msg = format!(
                    "{removed} removed, {kept} kept; their data is deleted by {}, the device \
                     this repository names for it",
                    p.host
                );
            } else if r.packs_deferred > 0 {
                msg.push_str(&format!(
                    "; {} waits in the trash, because {}: a later run deletes it",
                    views::bytes(r.bytes_deferred),
                    r.deferred_because.join("; ")
                ));
            }
            Ended {
                ok: true,
                message: msg,
                html: String::new(),
                report: serde_json::to_value(&r).ok(),
            }
        });
        end_task(&app, &job, ended);
    });
}
