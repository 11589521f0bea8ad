//! The running task's Cancel button.

use super::*;
use crate::ui::jobs::Cancel;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CancelForm {
    /// The task's id, as the page's hidden field sends it.
    id: String,
}

/// Ends the running task now (see [`super::super::jobs`] for what that
/// can and cannot stop).
pub(crate) async fn cancel(State(app): State<Arc<App>>, Json(f): Json<CancelForm>) -> Answer {
    let Some(job) = app
        .jobs
        .running()
        .filter(|j| f.id.trim() == j.id.to_string())
    else {
        return failed(&app, StatusCode::CONFLICT, "that task is no longer running");
    };
    match app.jobs.cancel(job.id, Cancel::Asked) {
        Some(said) => {
            app.log(&format!("{}: {said}", job.title));
            done(format!("{}: {said}", job.title))
        }
        None => failed(&app, StatusCode::CONFLICT, "that task is no longer running"),
    }
}
