//! The pages, rendered on the server. Each works with the keyboard alone
//! (real links, buttons and labelled fields), and says what to do when
//! there is nothing to show or something went wrong.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use snap_engine::commands::{self, create, inspect};
use snap_engine::snapshot::SnapshotFilter;
use snap_engine::tree::NodeKind;
use snap_engine::{Id, Repository};

use super::api::{DiffQuery, PathQuery};
use super::app::{App, Problem, blocking, words};
use super::schedule::{INTERVALS, KEEP};
use super::views::{self, bytes, time_ns, time_text};
use crate::config::Profile;

const PER_PAGE: usize = 20;

const NAV: &[(&str, &str)] = &[
    ("/manage", "Manage"),
    ("/backup", "Backup"),
    ("/schedule", "Schedule"),
    ("/check", "Check"),
    ("/settings", "Settings"),
];

fn layout(app: &App, title: &str, active: &str, body: Markup) -> Markup {
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
                        @for (href, name) in NAV {
                            @if *href == active {
                                a href=(href) aria-current="page" { (name) }
                            } @else {
                                a href=(href) { (name) }
                            }
                        }
                    }
                    @if !names.is_empty() {
                        form.profile data-action="/api/profile/use" {
                            label for="profile-pick" { "Profile" }
                            select #profile-pick name="name" {
                                // With a default profile, "" is that one: listed once.
                                @if default.is_none() {
                                    option value="" selected[current.is_empty()] { "Default" }
                                }
                                @for n in &names {
                                    option value=(n) selected[*n == current || (current.is_empty() && default.as_deref() == Some(n.as_str()))] {
                                        (n) @if default.as_deref() == Some(n.as_str()) { " (default)" }
                                    }
                                }
                            }
                            button.use type="submit" { "Use" }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
                section #job aria-live="polite" aria-label="Current task" {
                    (job_box(app, title))
                }
            }
        }
    }
}

/// The kinds of task whose result a page keeps showing once ended: a
/// finished restore's box (and its Undo button) followed the user to
/// every page.
fn kinds_shown(title: &str) -> &'static [&'static str] {
    match title {
        "Manage" => &["prune"],
        "Backup" | "Schedule" => &["backup"],
        "Browse" => &["restore"],
        "Check" => &["check"],
        _ => &[],
    }
}

/// The running task, or the last one if this page is where it belongs;
/// the script fills it in live, and shows tasks that start later.
fn job_box(app: &App, title: &str) -> Markup {
    let v = app
        .jobs
        .view()
        .filter(|v| v.running || kinds_shown(title).contains(&v.kind));
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
fn last_task(app: &App, kind: &str, heading: &str) -> Markup {
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
        Problem::NoRepository(_) => {
            let name = app.resolved_name(&app.current());
            let session = app.session(&app.current()).ok();
            let location = session
                .as_ref()
                .and_then(|s| s.ctx().location().ok())
                .map(|(l, _)| l)
                .unwrap_or_default();
            let local = !location.starts_with("s3://");
            let configured = session
                .as_ref()
                .is_some_and(|s| crate::password::is_configured(s.global(), &s.profile));
            html! {
                div.notice {
                    p { "There is no repository yet at " code { (location) } "." }
                    @if local {
                        form data-action="/api/init" data-reload {
                            input type="hidden" name="name" value=(if name.is_empty() { "default" } else { &name });
                            input type="hidden" name="kind" value="local";
                            input type="hidden" name="folder" value=(location);
                            input type="hidden" name="password_source" value=(if configured { "keep" } else { "page" });
                            @if !configured {
                                label for="init-pw" { "New repository password" }
                                input #init-pw type="password" name="password" autocomplete="new-password" required;
                                label for="init-pw2" { "The same password again" }
                                input #init-pw2 type="password" name="password_again" autocomplete="new-password" required;
                            }
                            button type="submit" { "Initialize" }
                            div.result role="status" {}
                        }
                        p { "Or choose another place in " a href="/settings" { "Settings" } "." }
                    } @else {
                        p { "Make one with Initialize in " a href="/settings" { "Settings" } "." }
                    }
                }
            }
        }
        Problem::Failed(msg) => html! {
            (error_box(msg))
            p { "Check the connection in " a href="/settings" { "Settings" } "." }
        },
    }
}

fn page(app: &App, title: &str, active: &str, body: Markup) -> Response {
    maud::Markup::into_response(layout(app, title, active, body))
}

pub(crate) async fn home() -> Redirect {
    Redirect::to("/manage")
}

// ------------------------------------------------------------------ manage

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ManageQuery {
    host: String,
    page: usize,
}

pub(crate) async fn manage(State(app): State<Arc<App>>, Query(q): Query<ManageQuery>) -> Response {
    let repo = match app.open(&app.current()).await {
        Ok(r) => r,
        Err(p) => return page(&app, "Manage", "/manage", problem_box(&app, &p)),
    };
    let r = blocking(move || {
        let (all, hidden) = commands::snapshots_and_hidden(&repo, &SnapshotFilter::default())?;
        Ok((all, repo.location().to_string(), hidden))
    })
    .await;
    let (mut all, location, hidden) = match r {
        Ok(x) => x,
        Err(e) => return page(&app, "Manage", "/manage", error_box(&words(&e))),
    };
    all.reverse();
    let mut hosts: Vec<String> = all.iter().map(|(_, s)| s.host.clone()).collect();
    hosts.sort();
    hosts.dedup();
    let this = create::this_host();
    let shown: Vec<&(Id, snap_engine::snapshot::Snapshot)> = all
        .iter()
        .filter(|(_, s)| q.host.is_empty() || s.host == q.host)
        .collect();
    let pages = shown.len().div_ceil(PER_PAGE).max(1);
    let pg = q.page.clamp(1, pages);
    let rows = shown.iter().skip((pg - 1) * PER_PAGE).take(PER_PAGE);
    let keep_host = if q.host.is_empty() {
        this.clone()
    } else {
        q.host.clone()
    };
    let link = |host: &str, p: usize| {
        let mut s = String::from("/manage?");
        if !host.is_empty() {
            s.push_str(&format!(
                "host={}&",
                url::form_urlencoded::byte_serialize(host.as_bytes()).collect::<String>()
            ));
        }
        s.push_str(&format!("page={p}"));
        s
    };
    let body = html! {
        p.small { "Repository " code { (location) } }
        @if !hidden.is_empty() {
            div.error role="alert" #rolled-back {
                p {
                    strong { "Snapshots this computer saw are gone. " }
                    "They were not deleted by snap (there is no record of it): the storage hid them, lost them or went back to an older state. "
                    "Restoring the newest snapshot listed here may bring back older files. Run Check, and ask whoever manages the storage."
                }
                ul { @for h in &hidden { li { (h.describe()) } } }
            }
        }
        div #stats data-fragment="/part/stats" { p.small { "Counting size and savings…" } }
        @if all.is_empty() {
            div.empty {
                p { "No backups yet." }
                p { a.button href="/backup" { "Back up now" } }
            }
        } @else {
            nav.devices aria-label="Devices" {
                "Device: "
                @if q.host.is_empty() { strong { "all" } } @else { a href=(link("", 1)) { "all" } }
                @for h in &hosts {
                    " · "
                    @if *h == q.host { strong { (h) } } @else { a href=(link(h, 1)) { (h) } }
                    @if *h == this { " (this device)" }
                }
            }
            form data-action="/api/forget" data-needs="ids" data-confirm="Delete the chosen snapshots? Their files stay in other snapshots that have them; Free space then deletes data no snapshot uses." {
                (snapshot_table(rows))
                @if pages > 1 {
                    nav.pages aria-label="Pages of snapshots" {
                        @if pg > 1 { a href=(link(&q.host, pg - 1)) { "← Newer" } }
                        span { "Page " (pg) " of " (pages) }
                        @if pg < pages { a href=(link(&q.host, pg + 1)) { "Older →" } }
                    }
                }
                button.danger type="submit" { "Delete selected" }
                div.result role="status" {}
            }
            (keep_form(&hosts, &keep_host))
            (free_space_form())
        }
    };
    page(&app, "Manage", "/manage", body)
}

/// Snapshots, newest first, each with a box to choose it for deletion.
fn snapshot_table<'a>(
    rows: impl Iterator<Item = &'a &'a (Id, snap_engine::snapshot::Snapshot)>,
) -> Markup {
    html! {
        div.scroll {
            table.snapshots {
                thead { tr { th { span.sr { "Choose" } } th { "Time" } th { "Device" } th { "Folders" } th { "Tags" } th { "Size" } th { "Snapshot" } } }
                tbody {
                    @for (id, s) in rows {
                        tr {
                            td { input type="checkbox" name="ids" value=(id.to_hex()) data-many aria-label=(format!("choose snapshot {}", id.short())); }
                            td { a href=(views::browse_link(id, s)) { (time_ns(s.time_ns)) } }
                            td { (s.host) }
                            td { @for p in s.paths_lossy() { div { (p) } } }
                            td { @for t in &s.tags { span.tag { (views::tag(t)) } " " } }
                            td { (bytes(s.summary.bytes_total)) }
                            td { a href=(views::browse_link(id, s)) { "Browse " code { (id.short()) } } }
                        }
                    }
                }
            }
        }
    }
}

/// "Keep the last N for a device", with a preview before it removes.
fn keep_form(hosts: &[String], keep_host: &str) -> Markup {
    html! {
        section {
            h2 { "Keep the last N for a device" }
            form data-action="/api/keep" {
                label for="keep-host" { "Device" }
                select #keep-host name="host" {
                    @for h in hosts { option value=(h) selected[*h == keep_host] { (h) } }
                }
                label for="keep-n" { "Keep the last" }
                select #keep-n name="keep" {
                    @for n in KEEP.iter().filter(|&&n| n > 0) { option value=(n) selected[*n == 10] { (n) } }
                }
                button type="submit" name="apply" value="false" { "Preview" }
                button.danger type="submit" name="apply" value="true" data-confirm="Remove the other snapshots of this device and delete the data only they use?" { "Apply" }
                div.result role="status" {}
            }
        }
    }
}

fn free_space_form() -> Markup {
    html! {
        section {
            h2 { "Free space" }
            form data-action="/api/prune" data-confirm="Delete the data that no snapshot uses any more?" {
                p.small { "Deleting snapshots frees nothing by itself; this deletes the data no remaining snapshot uses." }
                button type="submit" { "Free space" }
                div.result role="status" {}
            }
        }
    }
}

pub(crate) async fn stats_part(State(app): State<Arc<App>>) -> Response {
    let repo = match app.open(&app.current()).await {
        Ok(r) => r,
        Err(p) => return error_box(p.message()).into_response(),
    };
    match blocking(move || Ok(commands::inspect::stats(&repo)?)).await {
        Ok(s) => html! {
            dl.stats {
                dt { "Stored in the repository" } dd { (bytes(s.stored_bytes)) }
                dt { "Snapshots" } dd { (s.snapshots) }
                dt { "Size of all snapshots together" } dd { (bytes(s.restore_bytes)) }
                dt { "Deduplication" } dd { (format!("{:.1}×", s.dedup_ratio())) }
                dt { "Compression" } dd {
                    @if s.compression_ratio() >= 1.0 { (format!("{:.1}× smaller", s.compression_ratio())) }
                    @else { "none yet (too little data)" }
                }
            }
            p.small { "Stored includes what every repository needs beside your files (keys, index, packing), which weighs most while it holds little." }
        }
        .into_response(),
        Err(e) => error_box(&words(&e)).into_response(),
    }
}

// ------------------------------------------------------------------ backup

pub(crate) async fn backup(State(app): State<Arc<App>>) -> Response {
    let profile = app
        .session(&app.current())
        .map(|s| s.profile)
        .unwrap_or_default();
    let body = html! {
        form data-action="/api/backup" {
            label for="sources" { "Folders to back up, one per line" }
            textarea #sources name="sources" rows="4" placeholder="/home/me/Documents" required { (profile.sources.join("\n")) }
            label for="excludes" { "Leave out (patterns, one per line; a name alone matches it anywhere)" }
            textarea #excludes name="excludes" rows="3" placeholder="node_modules\n*.tmp" { (profile.excludes.join("\n")) }
            p.small { "Folders and patterns are saved in the profile, for the schedule and the command line." }
            button type="submit" { "Back up now" }
            div.result role="status" {}
        }
        (last_task(&app, "backup", "The last backup"))
    };
    page(&app, "Backup", "/backup", body)
}

// ------------------------------------------------------------------ browse

fn parent_of(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((p, _)) => p.into(),
    }
}

pub(crate) async fn browse(State(app): State<Arc<App>>, Query(q): Query<PathQuery>) -> Response {
    let repo: Arc<Repository> = match app.open(&app.current()).await {
        Ok(r) => r,
        Err(p) => return page(&app, "Browse", "/manage", problem_box(&app, &p)),
    };
    let dir = if q.path.is_empty() {
        "/".to_string()
    } else {
        q.path.clone()
    };
    let spec = q.snapshot.clone();
    let d = dir.clone();
    let r = blocking(move || {
        let listing = inspect::list_dir(&repo, &spec, d.as_bytes())?;
        let others = commands::snapshots(&repo, &SnapshotFilter::default())?;
        Ok((listing, others))
    })
    .await;
    let ((id, snap, entries), others) = match r {
        Ok(x) => x,
        Err(e) => {
            return page(
                &app,
                "Browse",
                "/manage",
                html! { (error_box(&words(&e))) p { a href="/manage" { "Back to the snapshots" } } },
            );
        }
    };
    let hex = id.to_hex();
    let browse_link = |p: &str| {
        format!(
            "/browse?snapshot={hex}&path={}",
            url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>()
        )
    };
    let mut crumbs = vec![("/".to_string(), "/".to_string())];
    let mut acc = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        acc.push('/');
        acc.push_str(part);
        crumbs.push((acc.clone(), part.to_string()));
    }
    let whole = dir == "/";
    let body = html! {
        p { "Snapshot " code { (id.short()) } " of " strong { (snap.host) } ", " (time_ns(snap.time_ns)) }
        nav.crumbs aria-label="Folder" {
            @for (i, (p, name)) in crumbs.iter().enumerate() {
                @if i > 1 { " / " }
                @if i + 1 == crumbs.len() { strong { (name) } } @else { a href=(browse_link(p)) { (name) } }
            }
        }
        @if !whole { p { a href=(browse_link(&parent_of(&dir))) { "↑ Up" } } }
        @if entries.is_empty() {
            p.empty { "This folder is empty in the snapshot." }
        } @else {
            (file_table(&hex, &entries))
        }
        (restore_form(&hex, &dir))
        (compare_form(&id, &snap, &others))
    };
    page(&app, "Browse", "/manage", body)
}

/// Browse at `path` of snapshot `hex`.
fn browse_at(hex: &str, path: &str) -> String {
    format!(
        "/browse?snapshot={hex}&path={}",
        url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
    )
}

/// One folder of a snapshot: its entries, folders to open, files to
/// download.
fn file_table(hex: &str, entries: &[inspect::Entry]) -> Markup {
    html! {
        div.scroll {
            table.files {
                thead { tr { th { "Name" } th { "Size" } th { "Modified" } th { span.sr { "Download" } } } }
                tbody {
                    @for e in entries {
                        @let path = String::from_utf8_lossy(&e.path).into_owned();
                        @let name = String::from_utf8_lossy(&e.node.name).into_owned();
                        tr {
                            td {
                                @if e.node.kind == NodeKind::Dir { a href=(browse_at(hex, &path)) { (name) "/" } }
                                @else { (name) }
                                @if e.node.kind == NodeKind::Symlink { " → " (String::from_utf8_lossy(&e.node.link_target)) }
                            }
                            td { @if e.node.kind == NodeKind::File { (bytes(e.node.size)) } }
                            td { (time_ns(e.node.mtime_ns)) }
                            td { @if e.node.kind == NodeKind::File {
                                a href=(format!("/api/download?snapshot={hex}&path={}", url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>())) download=(name) { "Download" }
                            } }
                        }
                    }
                }
            }
        }
    }
}

/// Restore this folder (or the whole snapshot at `/`), with a preview.
fn restore_form(hex: &str, dir: &str) -> Markup {
    let whole = dir == "/";
    html! {
        section {
            h2 { @if whole { "Restore the whole snapshot" } @else { "Restore this folder" } }
            form data-action="/api/restore" {
                input type="hidden" name="snapshot" value=(hex);
                input type="hidden" name="path" value=(dir);
                label for="target" { "Into the folder" }
                input #target type="text" name="target" value=(if whole { "" } else { &dir }) placeholder="/home/me/restored" required;
                p.small {
                    @if whole { "Each folder of the snapshot is recreated below this one with its full path." }
                    @else { "What this folder held goes into the folder you name. Its own place (the default) puts it back as it was in the snapshot." }
                    " What is changed is first saved in an undo snapshot."
                }
                label.check { input type="checkbox" name="delete"; " Delete files there that the snapshot does not have" }
                button type="submit" name="preview" value="true" { "Preview" }
                button type="submit" name="preview" value="false" data-confirm="Restore now? Files there that differ from the snapshot are replaced, and with “Delete files there…” ticked, files the snapshot does not have are deleted. An undo snapshot keeps what was there first." { "Restore" }
                div.result role="status" {}
            }
        }
    }
}

/// Compare with another snapshot, the previous one of the same folder
/// offered first.
fn compare_form(
    id: &Id,
    snap: &snap_engine::snapshot::Snapshot,
    others: &[(Id, snap_engine::snapshot::Snapshot)],
) -> Markup {
    let hex = id.to_hex();
    let id = *id;
    html! {
                @if others.len() > 1 {
                    section {
                        h2 { "Compare with another snapshot" }
                        form method="get" action="/diff" {
                            input type="hidden" name="a" value=(hex);
                            label for="other" { "Snapshot" }
                            @let previous = others.iter().rev().find(|(oid, o)| *oid != id && o.time_ns <= snap.time_ns && o.host == snap.host && o.paths == snap.paths).map(|(oid, _)| *oid);
                            select #other name="b" {
                                @for (oid, o) in others.iter().rev().filter(|(oid, _)| *oid != id) {
                                    option value=(oid.to_hex()) selected[Some(*oid) == previous] {
                                        (oid.short()) " · " (o.host) " · " (o.time().with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M")) " · " (o.paths_lossy().join(", "))
        @if o.tags.iter().any(|t| t == "pre-restore") { " · undo snapshot" }
                                    }
                                }
                            }
                            button type="submit" { "Compare" }
                        }
                    }
                }
    }
}

pub(crate) async fn diff(State(app): State<Arc<App>>, Query(q): Query<DiffQuery>) -> Response {
    let repo = match app.open(&app.current()).await {
        Ok(r) => r,
        Err(p) => return page(&app, "Compare", "/manage", problem_box(&app, &p)),
    };
    let (a, b) = (q.a.clone(), q.b.clone());
    // Older to newer, whichever was browsed: from the newest, a file added
    // since once read as removed.
    let r = blocking(move || {
        let any = SnapshotFilter::default();
        let (ia, sa) = repo.find_snapshot(&a, &any)?;
        let (ib, sb) = repo.find_snapshot(&b, &any)?;
        let (from, to) = if (sa.time_ns, ia) <= (sb.time_ns, ib) {
            (ia, ib)
        } else {
            (ib, ia)
        };
        let (a, b, mut changes) = inspect::diff(&repo, &from.to_hex(), &to.to_hex())?;
        // The folders above what was backed up are recorded for their
        // metadata only; their times changing is noise here.
        let roots: Vec<&Vec<u8>> = sa.paths.iter().chain(&sb.paths).collect();
        let above = |p: &[u8]| {
            roots
                .iter()
                .any(|r| r.len() > p.len() && r.starts_with(p) && (p == b"/" || r[p.len()] == b'/'))
        };
        changes.retain(|c| c.kind != inspect::ChangeKind::Metadata || !above(&c.path));
        Ok((a, b, changes))
    })
    .await;
    let body = match r {
        Ok((ia, ib, changes)) => html! {
            p {
                "From the older " a href=(format!("/browse?snapshot={}", ia.to_hex())) { code { (ia.short()) } }
                " to the newer " a href=(format!("/browse?snapshot={}", ib.to_hex())) { code { (ib.short()) } } ": "
                (views::count(changes.len() as u64, "change", "changes")) ". "
                a href="/manage" { "Back to the snapshots" }
            }
            @if changes.is_empty() { p.empty { "The two snapshots hold the same files." } }
            @else {
                div.scroll { table.plan {
                    thead { tr { th { "Change" } th { "Path" } } }
                    tbody { @for c in changes.iter().take(1000) {
                        tr.(c.kind.name()) { td { (change_word(c.kind)) } td { (String::from_utf8_lossy(&c.path)) } }
                    } }
                } }
                @if changes.len() > 1000 { p { "… and " (changes.len() - 1000) " more." } }
            }
        },
        Err(e) => error_box(&words(&e)),
    };
    page(&app, "Compare snapshots", "/manage", body)
}

fn change_word(k: inspect::ChangeKind) -> &'static str {
    match k {
        inspect::ChangeKind::Added => "added",
        inspect::ChangeKind::Removed => "removed",
        inspect::ChangeKind::Modified => "changed",
        inspect::ChangeKind::Metadata => "permissions or times changed",
    }
}

// ---------------------------------------------------------------- schedule

pub(crate) async fn schedule(State(app): State<Arc<App>>) -> Response {
    let file = match app.config() {
        Ok(f) => f,
        Err(e) => return page(&app, "Schedule", "/schedule", error_box(&words(&e))),
    };
    let scale = super::schedule::time_scale();
    let body = html! {
        @if file.profiles.is_empty() {
            div.empty { p { "Automatic backups belong to a profile: make one in " a href="/settings" { "Settings" } ", choose its folders on " a href="/backup" { "Backup" } ", then come back." } }
        }
        @if scale > 1 { p.warn { "Test mode: every interval is " (scale) " times shorter (SNAP_UI_TIME_SCALE)." } }
        @for (name, p) in &file.profiles {
            @let entry = app.board.get(name);
            section.profile-schedule.(if entry.as_ref().is_some_and(|e| e.failing) { "failing" } else { "" }) {
                h2 { "Profile " (name) }
                @if p.sources.is_empty() {
                    p.note { "No folders chosen yet: choose them on " a href="/backup" { "Backup" } " (with this profile in use)." }
                } @else {
                    p.small { "Backs up " (p.sources.join(", ")) }
                }
                @if p.schedule.as_deref().is_some_and(|s| s != "off") && !unattended(&app, name) {
                    p.warn role="note" {
                        "Its password is only typed into the page, which forgets it when snap ui stops: after a restart, automatic backups wait until it is typed again. To have them run by themselves, choose “Keep it in a file on this computer” in "
                        a href=(format!("/settings?profile={name}")) { "Settings" } "."
                    }
                }
                form data-action="/api/schedule" {
                    input type="hidden" name="profile" value=(name);
                    label for=(format!("int-{name}")) { "Back up automatically" }
                    select id=(format!("int-{name}")) name="interval" {
                        @for (v, label, _) in INTERVALS { option value=(v) selected[p.schedule.as_deref().unwrap_or("off") == *v] { (label) } }
                    }
                    label for=(format!("keep-{name}")) { "Keep per device" }
                    select id=(format!("keep-{name}")) name="keep_last" {
                        @for k in KEEP { option value=(k) selected[p.keep_last.unwrap_or(0) == *k] { @if *k == 0 { "All (unlimited)" } @else { "The last " (k) } } }
                    }
                    p.small {
                        @if let Some(cmd) = &p.on_failure {
                            "When an automatic backup fails, it runs " code { (cmd) } ". "
                        } @else {
                            "No command runs when an automatic backup fails. "
                        }
                        "Such a command is set from the terminal only: " code { (views::on_failure_how(name)) }
                    }
                    button type="submit" { "Save" }
                    div.result role="status" {}
                }
                dl.status {
                    dt { "Last run" }
                    dd { @match entry.as_ref().and_then(|e| e.last_run.clone()) { Some(t) => (time_text(&t)), None => "not yet, since snap ui started" } }
                    dt { "Result" }
                    dd.(if entry.as_ref().is_some_and(|e| e.failing) { "bad" } else { "" }) data-schedule-result=(name) {
                        @match entry.as_ref().and_then(|e| e.last_result.clone()) { Some(r) => (r), None => "—" }
                    }
                    dt { "Next run" }
                    dd { @match entry.as_ref().and_then(|e| e.next_run.clone()) { Some(t) => (time_text(&t)), None => "none (off, or no folders)" } }
                }
            }
        }
    };
    page(&app, "Schedule", "/schedule", body)
}

/// Whether snap ui finds the profile's password by itself after a
/// restart (a file, a command, the environment).
fn unattended(app: &App, name: &str) -> bool {
    app.session(name)
        .is_ok_and(|s| crate::password::is_configured(s.global(), &s.profile))
}

// ------------------------------------------------------------------- check

pub(crate) async fn check(State(app): State<Arc<App>>) -> Response {
    let body = html! {
        form data-action="/api/check" {
            fieldset {
                legend { "What to check" }
                label.check { input type="radio" name="read" value="structure" checked; " Structure: every snapshot, tree and index entry (fast)" }
                label.check { input type="radio" name="read" value="10"; " Also read a random 10% of the data" }
                label.check { input type="radio" name="read" value="100"; " Also read all the data (downloads the whole repository)" }
            }
            button type="submit" { "Run the check" }
            div.result role="status" {}
        }
        p.small { "What the check finds appears below when it ends." }
        (last_task(&app, "check", "The last check"))
    };
    page(&app, "Check", "/check", body)
}

// ---------------------------------------------------------------- settings

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct SettingsQuery {
    profile: Option<String>,
    new: bool,
    /// Just saved: say so.
    saved: bool,
}

/// The profiles saved, to edit; or where snap goes without one.
fn profile_list(file: &crate::config::ConfigFile, default_location: &str) -> Markup {
    html! {
        @if !file.profiles.is_empty() {
            section {
                h2 { "Profiles" }
                div.scroll { table {
                    thead { tr { th { "Name" } th { "Repository" } th { span.sr { "Actions" } } } }
                    tbody { @for (n, pr) in &file.profiles {
                        tr {
                            td { (n) @if file.default.as_deref() == Some(n.as_str()) { " (default)" } }
                            td { code { (pr.repository.clone().unwrap_or_default()) } }
                            td { a href=(format!("/settings?profile={n}")) { "Edit" } }
                        }
                    } }
                } }
                p { a href="/settings?new=true" { "New profile" } }
            }
        } @else {
            p { "Without a profile, snap uses the repository at " code { (default_location) } ". Save a profile to use a bucket or another folder." }
        }
    }
}

/// Where the repository password comes from: typed (memory only), kept
/// in a file snap writes, a file of the user's, or a command set from the
/// terminal, which the page shows and keeps but cannot set.
fn password_fieldset(name: &str, p: &Profile) -> Markup {
    let pw_source = if p.password_file.is_some() {
        "file"
    } else if p.password_command.is_some() {
        "keep"
    } else {
        "page"
    };
    html! {
        fieldset {
            legend { "Repository password" }
            label.check { input type="radio" name="password_source" value="page" checked[pw_source == "page"]; " Type it in this page (kept in memory only, asked again after a restart; SNAP_PASSWORD works too)" }
            label.check { input type="radio" name="password_source" value="store"; " Keep it in a file on this computer, readable by you alone (automatic backups then run without you)" }
            label.check { input type="radio" name="password_source" value="file" checked[pw_source == "file"]; " Read it from a file" }
            @if let Some(cmd) = &p.password_command {
                label.check { input type="radio" name="password_source" value="keep" checked[pw_source == "keep"]; " Print it with the command set from the terminal: " code { (cmd) } }
            }
            div.pw-file {
                label for="password_file" { "Password file" }
                input #password_file type="text" name="password_file" value=(p.password_file.as_ref().map(|f| f.display().to_string()).unwrap_or_default()) placeholder="/home/me/.config/snap/password";
            }
            p.small { "A password command (a keychain) is set from the terminal only: " code { (views::password_command_how(name)) } }
            div.pw-page {
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="new-password";
                div data-show="init" hidden {
                    label for="password_again" { "The same password again (for a new repository)" }
                    input #password_again type="password" name="password_again" autocomplete="new-password";
                }
            }
        }
    }
}

pub(crate) async fn settings(
    State(app): State<Arc<App>>,
    Query(q): Query<SettingsQuery>,
) -> Response {
    let file = match app.config() {
        Ok(f) => f,
        Err(e) => return page(&app, "Settings", "/settings", error_box(&words(&e))),
    };
    let editing = if q.new {
        String::new()
    } else {
        q.profile
            .clone()
            .unwrap_or_else(|| app.resolved_name(&app.current()))
    };
    let p: Profile = file.profiles.get(&editing).cloned().unwrap_or_default();
    let repo = p.repository.clone().unwrap_or_default();
    let s3 = repo.strip_prefix("s3://").map(|r| {
        r.split_once('/')
            .map(|(b, r)| (b.to_string(), r.to_string()))
            .unwrap_or((r.to_string(), String::new()))
    });
    let kind = if s3.is_some() || (p.repository.is_none() && !editing.is_empty()) {
        "s3"
    } else {
        "local"
    };
    let (bucket, root) = s3.unwrap_or_default();
    let default_location = app
        .session("")
        .ok()
        .and_then(|s| s.ctx().location().ok())
        .map(|(l, _)| l)
        .unwrap_or_default();
    let body = html! {
        @if q.saved && !editing.is_empty() {
            p.notice.ok role="status" { "Saved profile " strong { (editing) } ". The pages now use it." }
        }
        (profile_list(&file, &default_location))
        section {
            h2 { @if editing.is_empty() { "New profile" } @else { "Profile " (editing) } }
            form.settings data-action="/api/settings" autocomplete="off" {
                label for="name" { "Profile name" }
                input #name type="text" name="name" value=(if editing.is_empty() { if file.profiles.is_empty() { "default" } else { "" } } else { &editing }) required pattern="[A-Za-z0-9._-]+";
                fieldset {
                    legend { "Where the backups go" }
                    label.check { input type="radio" name="kind" value="s3" checked[kind == "s3"]; " An S3-compatible bucket" }
                    label.check { input type="radio" name="kind" value="local" checked[kind == "local"]; " A folder on this computer or a mounted drive" }
                }
                fieldset.local {
                    legend { "Folder" }
                    label for="folder" { "Repository folder" }
                    input #folder type="text" name="folder" value=(if kind == "local" { repo.clone() } else { String::new() }) placeholder=(default_location);
                }
                fieldset.s3 {
                    legend { "Bucket" }
                    label for="endpoint" { "Endpoint" }
                    input #endpoint type="text" inputmode="url" name="endpoint" value=(p.endpoint.clone().unwrap_or_default()) placeholder="https://s3.us-east-1.amazonaws.com";
                    label for="region" { "Region" }
                    input #region type="text" name="region" value=(p.region.clone().unwrap_or_default()) placeholder="us-east-1 (auto for Cloudflare R2)";
                    label for="bucket" { "Bucket" }
                    input #bucket type="text" name="bucket" value=(bucket);
                    label for="access_key_id" { "Access Key ID" }
                    input #access_key_id type="text" name="access_key_id" value=(p.access_key_id.clone().unwrap_or_default()) spellcheck="false";
                    label for="secret_access_key" { "Secret Access Key" }
                    input #secret_access_key type="password" name="secret_access_key" autocomplete="new-password"
                        placeholder=(if p.secret_access_key.is_some() || p.secret_access_key_command.is_some() { "saved; leave empty to keep it" } else { "" });
                    label for="root" { "Root path (optional)" }
                    input #root type="text" name="root" value=(root) placeholder="backups/snap";
                }
                (password_fieldset(&editing, &p))
                label.check { input type="checkbox" name="make_default" checked[file.default.as_deref() == Some(editing.as_str()) || file.profiles.is_empty()]; " Use this profile by default (also for the command line)" }
                div.buttons {
                    button type="submit" { "Save" }
                    button type="submit" formaction="/api/connection" { "Check connection" }
                    button type="submit" formaction="/api/init" data-show="init" hidden { "Initialize" }
                }
                div.result role="status" {}
            }
        }
    };
    page(&app, "Settings", "/settings", body)
}
