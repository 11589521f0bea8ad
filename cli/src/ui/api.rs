//! The JSON API: the same report types the CLI prints with `--json`, the
//! task and schedule status (also as server-sent events, which the page
//! follows), and file downloads from a snapshot. Nothing here returns a
//! secret: profiles go out as [`ProfileView`], which has no field for one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::{Deserialize, Serialize};
use snap_engine::commands::{self, dump, inspect};
use snap_engine::report::{DiffReport, EntryReport, LsReport, SnapshotReport};
use snap_engine::snapshot::SnapshotFilter;
use snap_engine::tree::NodeKind;

use super::app::{App, Problem, blocking, words};
use super::jobs::JobView;
use super::schedule::Entry;

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
}

fn problem(p: Problem) -> Response {
    let status = match p {
        Problem::NeedPassword(_) => StatusCode::UNAUTHORIZED,
        Problem::NoRepository { .. } => StatusCode::NOT_FOUND,
        Problem::Failed(_) => StatusCode::BAD_GATEWAY,
    };
    error(status, p.message().to_string())
}

macro_rules! repo_or_answer {
    ($app:expr) => {
        match $app.open(&$app.current()).await {
            Ok(r) => r,
            Err(p) => return problem(p),
        }
    };
}

pub(crate) async fn snapshots(State(app): State<Arc<App>>) -> Response {
    let repo = repo_or_answer!(app);
    match blocking(move || Ok(commands::snapshots(&repo, &SnapshotFilter::default())?)).await {
        Ok(all) => Json(
            all.iter()
                .map(|(id, s)| SnapshotReport::new(id, s))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => error(StatusCode::BAD_GATEWAY, words(&e)),
    }
}

pub(crate) async fn stats(State(app): State<Arc<App>>) -> Response {
    let repo = repo_or_answer!(app);
    match blocking(move || Ok(inspect::stats(&repo)?)).await {
        Ok(s) => Json(s.report()).into_response(),
        Err(e) => error(StatusCode::BAD_GATEWAY, words(&e)),
    }
}

/// A place in a snapshot, as Browse, `/api/ls` and downloads name it.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct PathQuery {
    pub(crate) snapshot: String,
    pub(crate) path: String,
}

/// One directory of a snapshot, as `ls --json` prints entries.
pub(crate) async fn ls(State(app): State<Arc<App>>, Query(q): Query<PathQuery>) -> Response {
    let repo = repo_or_answer!(app);
    let dir = if q.path.is_empty() {
        "/".to_string()
    } else {
        q.path
    };
    match blocking(move || Ok(inspect::list_dir(&repo, &q.snapshot, dir.as_bytes())?)).await {
        Ok((id, _, entries)) => Json(LsReport {
            snapshot_id: id,
            entries: entries
                .iter()
                .map(|e| EntryReport::new(&e.path, &e.node))
                .collect(),
        })
        .into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, words(&e)),
    }
}

/// Two snapshots to compare.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct DiffQuery {
    pub(crate) a: String,
    pub(crate) b: String,
}

pub(crate) async fn diff(State(app): State<Arc<App>>, Query(q): Query<DiffQuery>) -> Response {
    let repo = repo_or_answer!(app);
    match blocking(move || Ok(inspect::diff(&repo, &q.a, &q.b)?)).await {
        Ok((a, b, changes)) => Json(DiffReport::new(a, b, &changes)).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, words(&e)),
    }
}

/// A profile without its secrets: what `/api/profiles` returns.
#[derive(Serialize)]
pub(crate) struct ProfileView {
    name: String,
    default: bool,
    repository: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key_set: bool,
    password: &'static str,
    sources: Vec<String>,
    excludes: Vec<String>,
    schedule: Option<String>,
    keep_last: Option<u32>,
}

pub(crate) async fn profiles(State(app): State<Arc<App>>) -> Response {
    let file = match app.config() {
        Ok(f) => f,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, words(&e)),
    };
    let views: Vec<ProfileView> = file
        .profiles
        .iter()
        .map(|(name, p)| ProfileView {
            name: name.clone(),
            default: file.default.as_deref() == Some(name),
            repository: p.repository.clone(),
            endpoint: p.endpoint.clone(),
            region: p.region.clone(),
            access_key_id: p.access_key_id.clone(),
            secret_access_key_set: p.secret_access_key.is_some()
                || p.secret_access_key_command.is_some(),
            password: if p.password_file.is_some() {
                "file"
            } else if p.password_command.is_some() {
                "command"
            } else {
                "page or environment"
            },
            sources: p.sources.clone(),
            excludes: p.excludes.clone(),
            schedule: p.schedule.clone(),
            keep_last: p.keep_last,
        })
        .collect();
    Json(views).into_response()
}

/// The task and the schedule, as the page follows them.
#[derive(Serialize)]
pub(crate) struct Status {
    job: Option<JobView>,
    schedule: std::collections::BTreeMap<String, Entry>,
}

fn status_now(app: &App) -> Status {
    Status {
        job: app.jobs.view(),
        schedule: app.board.all(),
    }
}

pub(crate) async fn status(State(app): State<Arc<App>>) -> Json<Status> {
    Json(status_now(&app))
}

/// The status twice a second while anything changes, as server-sent
/// events: the page's progress line follows a backup without polling.
pub(crate) async fn events(
    State(app): State<Arc<App>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold((app, String::new()), |(app, last)| async move {
        loop {
            // Ends when the server stops, which waits for open streams.
            if *app.stopping.borrow() {
                return None;
            }
            let now = serde_json::to_string(&status_now(&app)).unwrap_or_default();
            if now != last {
                let event = Event::default().data(now.clone());
                return Some((Ok(event), (app, now)));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Writes into the response body as the engine produces the file.
struct Sink(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the browser went away")
            })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One file of a snapshot, streamed as it is read from the repository.
pub(crate) async fn download(State(app): State<Arc<App>>, Query(q): Query<PathQuery>) -> Response {
    let repo = repo_or_answer!(app);
    let path = q.path.trim_end_matches('/').to_string();
    // A file as itself; a folder (the whole snapshot too) as a tar stream.
    let (id, name, size) = if path.is_empty() {
        let (r2, spec) = (repo.clone(), q.snapshot.clone());
        match blocking(move || Ok(r2.find_snapshot(&spec, &SnapshotFilter::default())?)).await {
            Ok((id, _)) => (id, format!("snapshot-{}.tar", id.short()), None),
            Err(e) => return error(StatusCode::BAD_REQUEST, words(&e)),
        }
    } else {
        let Some((parent, name)) = path.rsplit_once('/').filter(|(_, n)| !n.is_empty()) else {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{:?} is not a path of the snapshot", q.path),
            );
        };
        let parent = if parent.is_empty() { "/" } else { parent }.to_string();
        let name = name.to_string();
        // Looked up first, so a wrong path is an error page, not a broken file.
        let (r2, spec, n2) = (repo.clone(), q.snapshot.clone(), name.clone());
        let found = blocking(move || {
            let (id, _, entries) = inspect::list_dir(&r2, &spec, parent.as_bytes())?;
            let node = entries
                .into_iter()
                .find(|e| e.node.name == n2.as_bytes())
                .map(|e| e.node);
            Ok((id, node))
        })
        .await;
        match found {
            Ok((id, Some(n))) if n.kind == NodeKind::File => (id, name, Some(n.size)),
            Ok((id, Some(n))) if n.kind == NodeKind::Dir => (id, format!("{name}.tar"), None),
            Ok((_, Some(_))) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("{path} is neither a file nor a folder"),
                );
            }
            Ok((id, None)) => {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("{path} is not in snapshot {}", id.short()),
                );
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, words(&e)),
        }
    };
    let tar = size.is_none();
    let whole = if path.is_empty() {
        "/".to_string()
    } else {
        path.clone()
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let app2 = app.clone();
    std::thread::spawn(move || {
        let mut sink = Sink(tx.clone());
        let r = dump::dump(
            &repo,
            &id.to_hex(),
            &SnapshotFilter::default(),
            whole.as_bytes(),
            tar,
            &mut sink,
        );
        if let Err(e) = r {
            app2.log(&format!("download of {path} failed: {e}"));
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            })
            .collect::<String>(),
        percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
    );
    let kind = if tar {
        "application/x-tar"
    } else {
        "application/octet-stream"
    };
    let mut r = (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response();
    // A tar stream's length is known only once written.
    if let Some(size) = size {
        r.headers_mut().insert(header::CONTENT_LENGTH, size.into());
    }
    r
}
