//! Check: structure, or some or all of the data.

use super::*;

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
    let job = match app.jobs.start(TaskKind::Check, &name, what) {
        Ok(j) => j,
        Err(b) => return busy(&app, b),
    };
    spawn_task(&app.clone(), &job.clone(), async move {
        let j = job.clone();
        let r = blocking(move || Ok(check::check(&repo, &opts, &*j)?)).await;
        let ended = r.map_err(|e| words(&e)).map(|r| {
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
            Ended {
                ok: r.ok(),
                message: msg,
                html: views::check_result(&r).into_string(),
                report: serde_json::to_value(r.report()).ok(),
            }
        });
        end_task(&app, &job, ended);
    });
    started("check started")
}
