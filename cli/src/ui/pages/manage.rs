//! Manage: the snapshots, by device, with delete, keep-last-N and free space.

use super::*;
use snap_engine::keys::Access;
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
        Err(p) => return problem_page(&app, Room::Manage, &p),
    };
    let r = blocking(move || {
        let (all, hidden) = commands::snapshots_and_hidden(&repo, &SnapshotFilter::default())?;
        // A write-only key sees its own snapshots only: say how many more.
        let sealed = match repo.access() {
            Access::Full => None,
            Access::WriteOnly => Some(repo.snapshot_count()?.saturating_sub(all.len())),
        };
        Ok((all, repo.location().to_string(), hidden, sealed))
    })
    .await;
    let (mut all, location, hidden, sealed) = match r {
        Ok(x) => x,
        Err(e) => return page(&app, Room::Manage, error_box(&words(&e))),
    };
    all.reverse();
    let hosts = hosts(&all);
    let keep_host = if q.host.is_empty() {
        create::this_host()
    } else {
        q.host.clone()
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
        @if let Some(sealed) = sealed {
            div.note #write-only {
                p {
                    strong { "This computer's key is write-only. " }
                    "It backs up, and lists only the newest backup it made of each set of folders"
                    @if sealed > 0 { " (" (sealed) " more in the repository, its own older ones among them, are sealed from it)" }
                    ". Browsing, restoring and deleting need a full key, on another computer."
                }
            }
        } @else {
            div #stats data-fragment="/part/stats" { p.small { "Counting size and savings…" } }
        }
        @if all.is_empty() {
            div.empty {
                p { "No backups yet." }
                p { a.button href="/backup" { "Back up now" } }
            }
        } @else if sealed.is_some() {
            div #snapshot-list data-src=(list_link(&q.host, q.page)) {
                (snapshot_list(&all, &q))
            }
        } @else {
            form #forget data-action="/api/forget" data-needs="ids" data-confirm="Their files stay in other snapshots that have them; Free space then deletes the data no snapshot uses." {
                div #snapshot-list data-src=(list_link(&q.host, q.page)) {
                    (snapshot_list(&all, &q))
                }
                button.danger type="submit" { "Delete selected" }
                div.result role="status" {}
            }
            (keep_form(&hosts, &keep_host))
            (free_space_form())
        }
    };
    page(&app, Room::Manage, body)
}

/// The devices that made the snapshots, each once.
fn hosts(all: &[(Id, snap_engine::snapshot::Snapshot)]) -> Vec<String> {
    let mut hosts: Vec<String> = all.iter().map(|(_, s)| s.host.clone()).collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn query(host: &str, page: usize) -> String {
    let mut s = String::new();
    if !host.is_empty() {
        s.push_str(&format!(
            "host={}&",
            url::form_urlencoded::byte_serialize(host.as_bytes()).collect::<String>()
        ));
    }
    s.push_str(&format!("page={}", page.max(1)));
    s
}

fn list_link(host: &str, page: usize) -> String {
    format!("/part/snapshots?{}", query(host, page))
}

/// The list alone, loaded again after an action changed it: a removed
/// snapshot once stayed listed, and the count unchanged, until a reload.
pub(crate) async fn snapshots_part(
    State(app): State<Arc<App>>,
    Query(q): Query<ManageQuery>,
) -> Response {
    let repo = match app.open(&app.current()).await {
        Ok(r) => r,
        Err(p) => return error_box(p.message()).into_response(),
    };
    match blocking(move || Ok(commands::snapshots(&repo, &SnapshotFilter::default())?)).await {
        Ok(mut all) => {
            all.reverse();
            snapshot_list(&all, &q).into_response()
        }
        Err(e) => error_box(&words(&e)).into_response(),
    }
}

/// The devices to filter by, a page of snapshots, and the pages.
fn snapshot_list(all: &[(Id, snap_engine::snapshot::Snapshot)], q: &ManageQuery) -> Markup {
    let this = create::this_host();
    let hosts = hosts(all);
    let shown: Vec<&(Id, snap_engine::snapshot::Snapshot)> = all
        .iter()
        .filter(|(_, s)| q.host.is_empty() || s.host == q.host)
        .collect();
    let pages = shown.len().div_ceil(PER_PAGE).max(1);
    let pg = q.page.clamp(1, pages);
    let rows = shown.iter().skip((pg - 1) * PER_PAGE).take(PER_PAGE);
    let link = |host: &str, p: usize| format!("/manage?{}", query(host, p));
    html! {
        nav.devices aria-label="Devices" {
            "Device: "
            @if q.host.is_empty() { strong { "all" } } @else { a href=(link("", 1)) { "all" } }
            @for h in &hosts {
                " · "
                @if *h == q.host { strong { (h) } } @else { a href=(link(h, 1)) { (h) } }
                @if *h == this { " (this device)" }
            }
        }
        p.small #snapshot-count { (views::count(shown.len() as u64, "snapshot", "snapshots")) @if !q.host.is_empty() { " of " (q.host) } }
        @if shown.is_empty() { p.empty { "No snapshots here any more." } }
        @else { (snapshot_table(rows)) }
        @if pages > 1 {
            nav.pages aria-label="Pages of snapshots" {
                @if pg > 1 { a href=(link(&q.host, pg - 1)) { "← Newer" } }
                span { "Page " (pg) " of " (pages) }
                @if pg < pages { a href=(link(&q.host, pg + 1)) { "Older →" } }
            }
        }
    }
}

/// Snapshots, newest first, each with a box to choose it for deletion.
fn snapshot_table<'a>(
    rows: impl Iterator<Item = &'a &'a (Id, snap_engine::snapshot::Snapshot)>,
) -> Markup {
    html! {
        div.scroll {
            table.snapshots {
                thead { tr { th { span.sr { "Choose" } } th { "Time" } th { "Device" } th { "Folders" } th { "Tags" } th.num { "Size" } th.num { "Added" } th { "Snapshot" } } }
                tbody {
                    @for (id, s) in rows {
                        tr {
                            td { input type="checkbox" name="ids" value=(id.to_hex()) data-many
                                aria-label=(format!("choose snapshot {}", id.short()))
                                data-describe=(format!("{} of {}, {}", id.short(), s.host, views::when(s.time()))); }
                            td { a href=(views::browse_link(id, s)) { (time_ns(s.time_ns)) } }
                            td { (s.host) }
                            td { @for p in s.paths_lossy() { div { (p) } } }
                            td { @for t in &s.tags { span.tag { (crate::output::tag(t)) } " " } }
                            td.num data-label="Size" { (bytes(s.summary.bytes_total)) }
                            td.num data-label="Added" title="New data this backup stored (after deduplication and compression)" { (bytes(s.summary.bytes_added)) }
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
                button.danger type="submit" name="apply" value="true" data-confirm="Remove the other snapshots of the chosen device and delete the data only they use?" { "Apply" }
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
                dt { "Deduplication" } dd { (views::saving(s.dedup_ratio(), "none yet: nothing is held twice")) }
                dt { "Compression" } dd { (views::saving(s.compression_ratio(), "none: the data does not compress, or there is too little yet")) }
            }
            p.small { "Stored includes what every repository needs beside your files (keys, index, packing), which weighs most while it holds little." }
        }
        .into_response(),
        Err(e) => error_box(&words(&e)).into_response(),
    }
}
