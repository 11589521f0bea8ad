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

use super::app::{App, Problem, Which, blocking, lock, words};

mod backup;
mod checks;
mod manage;
mod restores;
mod schedules;
mod settings;
mod tasks;

use super::jobs::{Busy, Job, TaskKind};
use super::{schedule, views};
use crate::config::{ConfigFile, Profile};
use crate::ctx::engine_error;
pub(crate) use backup::{backup, run_backup, start_backup_job};
pub(crate) use checks::check;
use manage::keep_options;
pub(crate) use manage::{forget, keep, prune};
pub(crate) use restores::{restore, undo};
pub(crate) use schedules::schedule;
pub(crate) use settings::{
    PasswordSource, check_connection, connect, init, password, relocate, save_settings, use_profile,
};
pub(crate) use tasks::cancel;

/// What the page's script shows after a request.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Reply {
    pub(crate) ok: bool,
    /// Not done, and nothing wrong either (nothing there yet): shown
    /// plainly, not in the colour of a failure.
    pub(crate) info: bool,
    pub(crate) message: String,
    /// A fragment to show under the form (escaped when rendered).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) html: String,
    /// Load the page again (what it shows changed).
    pub(crate) reload: bool,
    /// Load the page's lists and counts again, keeping the result shown.
    pub(crate) refresh: bool,
    /// Elements marked `data-show=NAME` to reveal (Initialize).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) show: Option<&'static str>,
    /// A task started: the page follows its progress.
    pub(crate) job: bool,
    /// The form field the message is about: shown beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) field: Option<&'static str>,
    /// A page to go to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redirect: Option<String>,
    /// A question to ask before the request is sent again with
    /// `confirmed` set to `confirm_count` (a restore that deletes most of
    /// its target, a repository made beside others).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) confirm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) confirm_count: Option<u64>,
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
        Problem::NoRepository { .. } => StatusCode::NOT_FOUND,
        Problem::Failed(_) => StatusCode::BAD_GATEWAY,
    };
    failed(app, status, p.message())
}

fn busy(app: &App, b: Busy) -> Answer {
    failed(app, StatusCode::CONFLICT, b.0)
}

/// How a task ended, for its box and the log.
pub(crate) struct Ended {
    pub(crate) ok: bool,
    pub(crate) message: String,
    /// The result fragment (rendered and escaped by `views`).
    pub(crate) html: String,
    pub(crate) report: Option<serde_json::Value>,
}

/// Ends `job`: said in the log, and shown until the next task; or, when
/// it was cancelled meanwhile, only logged.
pub(crate) fn end_task(app: &App, job: &Arc<Job>, outcome: Result<Ended, String>) {
    let (e, said) = match outcome {
        Ok(e) => {
            let said = format!("{}: {}", job.title, e.message);
            (e, said)
        }
        Err(message) => {
            let said = format!("{} failed: {message}", job.title);
            let e = Ended {
                ok: false,
                message,
                html: String::new(),
                report: None,
            };
            (e, said)
        }
    };
    if app.jobs.finish(job, e.ok, e.message, e.html, e.report) {
        app.log(&said);
    } else {
        app.log(&format!(
            "the cancelled {said} (the page no longer shows this result)"
        ));
    }
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
            end_task(
                &app,
                &job,
                Err("stopped unexpectedly (a bug in snap; its log has the details)".into()),
            );
        }
    });
}

/// A form field, trimmed; empty is none.
fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}
