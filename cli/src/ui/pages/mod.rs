//! The pages, rendered on the server, one file a page. Each works with the
//! keyboard alone (real links, buttons and labelled fields), and says what
//! to do when there is nothing to show or something went wrong. What every
//! page shares (the frame, the task box, the problem box) is here.

mod backup;
mod browse;
mod check;
mod manage;
mod schedule;
mod settings;
mod welcome;

pub(crate) use backup::backup;
pub(crate) use browse::{browse, diff};
pub(crate) use check::check;
pub(crate) use manage::{manage, snapshots_part, stats_part};
pub(crate) use schedule::schedule;
pub(crate) use settings::settings;
pub(crate) use welcome::fill_buttons;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use snap_engine::commands::{self, create, inspect};
use snap_engine::snapshot::SnapshotFilter;
use snap_engine::tree::NodeKind;
use snap_engine::{Id, Repository};

use super::actions::PasswordSource;
use super::api::{DiffQuery, PathQuery};
use super::app::{App, Problem, Which, blocking, words};
use super::jobs::TaskKind;
use super::schedule::{INTERVALS, KEEP};
use super::views::{self, bytes, time_ns, time_text};
use crate::config::Profile;

const PER_PAGE: usize = 20;

/// The pages: each has a title, a place in the navigation, and the kind
/// of task whose result it keeps showing once ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// A computer's first visit: no profile, no repository.
    Welcome,
    Manage,
    Backup,
    Browse,
    Compare,
    Schedule,
    Check,
    Settings,
}

/// The navigation, in order.
const NAV: [Room; 5] = [
    Room::Manage,
    Room::Backup,
    Room::Schedule,
    Room::Check,
    Room::Settings,
];

impl Room {
    fn title(self) -> &'static str {
        match self {
            Room::Welcome => "Welcome to snap",
            Room::Manage => "Manage",
            Room::Backup => "Backup",
            Room::Browse => "Browse",
            Room::Compare => "Compare snapshots",
            Room::Schedule => "Schedule",
            Room::Check => "Check",
            Room::Settings => "Settings",
        }
    }

    fn href(self) -> &'static str {
        match self {
            Room::Welcome | Room::Manage => "/manage",
            Room::Backup => "/backup",
            Room::Schedule => "/schedule",
            Room::Check => "/check",
            Room::Settings => "/settings",
            // Reached from Manage, and shown under it.
            Room::Browse | Room::Compare => "/manage",
        }
    }

    /// The kind of task whose result the page keeps showing once ended:
    /// a finished restore's box (and its Undo button) once followed the
    /// user to every page.
    fn shows(self) -> Option<TaskKind> {
        match self {
            Room::Manage => Some(TaskKind::Prune),
            Room::Backup | Room::Schedule => Some(TaskKind::Backup),
            Room::Browse => Some(TaskKind::Restore),
            Room::Check => Some(TaskKind::Check),
            Room::Welcome | Room::Compare | Room::Settings => None,
        }
    }
}

fn layout(app: &App, room: Room, body: Markup) -> Markup {
    let (title, active) = (room.title(), room.href());
    let current = app.current();
    let file = app.config().ok();
    let names: Vec<String> = file
        .as_ref()
        .map(|f| f.profiles.keys().cloned().collect())
        .unwrap_or_default();
    let default = file.as_ref().and_then(|f| f.default.clone());
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="snap-session" content=(app.session);
                title { (title) " · snap" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to the page" }
                header {
                    a.brand href="/manage" { "snap" }
                    nav aria-label="Pages" {
                        @for r in NAV {
                            @if r.href() == active {
                                a href=(r.href()) aria-current="page" { (r.title()) }
                            } @else {
                                a href=(r.href()) { (r.title()) }
                            }
                        }
                    }
                    @if !names.is_empty() {
                        form.profile data-action="/api/profile/use" {
                            label for="profile-pick" { "Profile" }
                            select #profile-pick name="name" {
                                // With a default profile, the given one is that one: listed once.
                                @if default.is_none() {
                                    option value=(Which::Given.form_value()) selected[current == Which::Given] { "Default" }
                                }
                                @for n in &names {
                                    option value=(n) selected[current == Which::Named(n.clone()) || (current == Which::Given && default.as_deref() == Some(n.as_str()))] {
                                        (n) @if default.as_deref() == Some(n.as_str()) { " (default)" }
                                    }
                                }
                            }
                            button.use type="submit" { "Use" }
                        }
                    }
                }
                // The task at the top, above the page and older results: a
                // result once landed at the bottom, below a list it had
                // changed.
                section #job aria-live="polite" aria-label="Current task" {
                    (job_box(app, room))
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The running task, or the last one if this page is where it belongs;
/// the script fills it in live, and shows tasks that start later.
fn job_box(app: &App, room: Room) -> Markup {
    let v = app
        .jobs
        .view()
        .filter(|v| v.running || room.shows() == Some(v.kind));
    let since = app.jobs.newest();
    html! {
        @if let Some(v) = v {
            div.job.(if v.running { "running" } else if v.ok == Some(true) { "ok" } else { "bad" }) data-job=(v.id) data-since=(since) {
                h2 { span.title { (v.title) } }
                progress max="100" value=[v.total_bytes.filter(|&t| t > 0).map(|t| (v.bytes * 100 / t).min(100))] hidden[!v.running] {}
                p.text { (v.progress_text) }
                div.html { (maud::PreEscaped(v.html.clone())) }
                @if !v.warnings.is_empty() {
                    details.note { summary { "Warnings (" (v.warnings_total) ")" } ul { @for w in &v.warnings { li { (w) } } } }
                }
                (cancel_form(v.id, v.running))
            }
        } @else {
            div.job.idle data-job="0" data-since=(since) {
                h2 { span.title {} }
                progress max="100" hidden {}
                p.text {}
                div.html {}
                (cancel_form(0, false))
            }
        }
    }
}

/// The running task's Cancel button; the script shows it and sets its id
/// while a task runs.
fn cancel_form(id: u64, running: bool) -> Markup {
    html! {
        form.cancel data-action="/api/cancel" hidden[!running] {
            input type="hidden" name="id" value=(id);
            button.danger type="submit" { "Cancel" }
            div.result role="status" {}
        }
    }
}

/// The last task of a kind, kept on its page when another task followed.
fn last_task(app: &App, kind: TaskKind, heading: &str) -> Markup {
    let Some(v) = app.jobs.last_of(kind) else {
        return html! {};
    };
    // Already in the task box below.
    if app.jobs.view().is_some_and(|shown| shown.id == v.id) {
        return html! {};
    }
    html! {
        section.last.(if v.ok == Some(true) { "ok" } else { "bad" }) {
            h2 { (heading) }
            p {
                (v.title)
                @if let Some(t) = &v.finished { ", ended " (time_text(t)) }
                ": " span.(if v.ok == Some(true) { "ok" } else { "bad" }) { (v.message) }
            }
            div { (maud::PreEscaped(v.html.clone())) }
        }
    }
}

fn error_box(msg: &str) -> Markup {
    html! { div.error role="alert" { p { (msg) } } }
}

/// What a page shows instead of the repository: the password form, the
/// Initialize form, or the error in words with where to fix it.
fn problem_box(app: &App, p: &Problem) -> Markup {
    match p {
        Problem::NeedPassword(msg) => html! {
            div.notice {
                p { (msg) }
                form data-action="/api/password" {
                    label for="unlock-pw" { "Repository password" }
                    input #unlock-pw type="password" name="password" autocomplete="current-password" required autofocus;
                    button type="submit" { "Unlock" }
                    div.result role="status" {}
                }
            }
        },
        Problem::NoRepository { nearby, .. } => {
            if let Some(location) = first_visit(app) {
                return welcome::first_visit(&location);
            }
            let current = app.current();
            let name = app.resolved_name(&current);
            let session = app.session(&current).ok();
            let location = session
                .as_ref()
                .and_then(|s| s.ctx().location().ok())
                .map(|(l, _)| l)
                .unwrap_or_default();
            let local = !location.starts_with("s3://");
            let configured = session
                .as_ref()
                .is_some_and(|s| crate::password::is_configured(s.global(), &s.profile));
            let create = html! {
                @if local {
                    form data-action="/api/init" data-reload {
                        input type="hidden" name="name" value=(if name.is_empty() { "default" } else { &name });
                        input type="hidden" name="kind" value="local";
                        input type="hidden" name="folder" value=(location);
                        input type="hidden" name="password_source" value=(if configured { PasswordSource::Keep } else { PasswordSource::Page }.value());
                        @if !configured {
                            label for="init-pw" { "New repository password" }
                            input #init-pw type="password" name="password" autocomplete="new-password" required;
                            label for="init-pw2" { "The same password again" }
                            input #init-pw2 type="password" name="password_again" autocomplete="new-password" required;
                        }
                        button type="submit" { "Initialize a new repository here" }
                        div.result role="status" {}
                    }
                    p { "Or choose another place in " a href="/settings" { "Settings" } "." }
                } @else {
                    p { "To make a new one there, use Initialize in " a href=(format!("/settings?profile={name}")) { "Settings" } "; or correct the bucket or root path there." }
                }
            };
            welcome::not_here(&name, &location, nearby, create)
        }
        Problem::Failed(msg) => html! {
            (error_box(msg))
            p { "Check the connection in " a href="/settings" { "Settings" } "." }
        },
    }
}

/// The default place, when this is a computer's first visit: no profile
/// saved, and no place named on the command line or in the environment.
fn first_visit(app: &App) -> Option<String> {
    if !app.config().is_ok_and(|f| f.profiles.is_empty()) {
        return None;
    }
    let (location, default) = app.session(&app.current()).ok()?.ctx().location().ok()?;
    default.then_some(location)
}

/// A page that shows `p` instead of its repository; on a first visit it is
/// the welcome, not "Manage".
fn problem_page(app: &App, room: Room, p: &Problem) -> Response {
    let room = match p {
        Problem::NoRepository { .. } if first_visit(app).is_some() => Room::Welcome,
        _ => room,
    };
    page(app, room, problem_box(app, p))
}

fn page(app: &App, room: Room, body: Markup) -> Response {
    maud::Markup::into_response(layout(app, room, body))
}

pub(crate) async fn home() -> Redirect {
    Redirect::to("/manage")
}
