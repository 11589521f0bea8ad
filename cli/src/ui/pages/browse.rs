//! Browse a snapshot, restore from it, and compare two snapshots.

use super::*;
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
        Err(p) => return problem_page(&app, Room::Browse, &p),
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
                Room::Browse,
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
    let sources = app
        .session(&app.current())
        .map(|s| s.profile.sources)
        .unwrap_or_default();
    let target = default_target(
        &dir,
        &snap.host,
        &create::this_host(),
        &sources,
        dirs::home_dir(),
    );
    let body = html! {
        p { "Snapshot " code { (id.short()) } " of " strong { (snap.host) } ", " (time_ns(snap.time_ns)) }
        nav.crumbs aria-label="Folder" {
            @for (i, (p, name)) in crumbs.iter().enumerate() {
                @if i > 1 { " / " }
                @if i + 1 == crumbs.len() { strong { (name) } } @else { a href=(browse_link(p)) { (name) } }
            }
        }
        p {
            @if !whole { a href=(browse_link(&parent_of(&dir))) { "↑ Up" } " · " }
            a href=(download_link(&hex, &dir)) download { @if whole { "Download the whole snapshot as .tar" } @else { "Download this folder as .tar" } }
        }
        @if entries.is_empty() {
            p.empty { "This folder is empty in the snapshot." }
        } @else {
            (file_table(&hex, &entries))
        }
        (restore_form(&hex, &dir, &target, snap.host != create::this_host()))
        (compare_form(&id, &snap, &others))
    };
    page(&app, Room::Browse, body)
}

/// The download of `path` in snapshot `hex`: a file, or a folder as tar.
fn download_link(hex: &str, path: &str) -> String {
    format!(
        "/api/download?snapshot={hex}&path={}",
        url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
    )
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
                            td {
                                @if e.node.kind == NodeKind::File {
                                    a href=(download_link(hex, &path)) download=(name) { "Download" }
                                } @else if e.node.kind == NodeKind::Dir {
                                    a href=(download_link(hex, &path)) download=(format!("{name}.tar")) { "Download as .tar" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Restore this folder (or the whole snapshot at `/`), with a preview.
fn restore_form(hex: &str, dir: &str, target: &str, other_device: bool) -> Markup {
    let whole = dir == "/";
    html! {
        section {
            h2 { @if whole { "Restore the whole snapshot" } @else { "Restore this folder" } }
            form data-action="/api/restore" {
                input type="hidden" name="snapshot" value=(hex);
                input type="hidden" name="path" value=(dir);
                label for="target" { "Into the folder" }
                input #target type="text" name="target" value=(target) placeholder=(if other_device { "a folder of this computer" } else { "/home/me/restored" }) required;
                @if other_device && !whole {
                    p.small { "This snapshot comes from another device: " code { (dir) } " is its path there. "
                        @if target.is_empty() { "Name the folder of this computer to restore into." }
                        @else { "The folder offered is this computer's own equivalent." } }
                }
                p.small {
                    @if whole { "Each folder of the snapshot is recreated below this one with its full path." }
                    @else if other_device { "What this folder held goes into the folder you name (" code { "~" } " is your home)." }
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
                                        (oid.short()) " · " (o.host) " · " (views::when(o.time())) " · " (o.paths_lossy().join(", "))
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
        Err(p) => return problem_page(&app, Room::Compare, &p),
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
    page(&app, Room::Compare, body)
}

fn change_word(k: inspect::ChangeKind) -> &'static str {
    match k {
        inspect::ChangeKind::Added => "added",
        inspect::ChangeKind::Removed => "removed",
        inspect::ChangeKind::Modified => "changed",
        inspect::ChangeKind::Metadata => "permissions or times changed",
    }
}

/// Where a restore of `dir` goes unless the user says otherwise. This
/// computer's own snapshot: back where it was. Another device's: the same
/// path under this user's home, else the folder of the profile's that has
/// the same name, else nothing (the field must be filled). Never a path
/// that belongs to another computer: `/home/alice/…` was once offered on
/// Bob's.
fn default_target(
    dir: &str,
    host: &str,
    this_host: &str,
    sources: &[String],
    home: Option<std::path::PathBuf>,
) -> String {
    if dir == "/" {
        return String::new();
    }
    if host == this_host {
        return dir.to_string();
    }
    let parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    let under_home = match parts.as_slice() {
        ["home" | "Users", _user, rest @ ..] => Some(rest),
        ["root", rest @ ..] => Some(rest),
        _ => None,
    };
    if let (Some(rest), Some(home)) = (under_home, home) {
        return rest
            .iter()
            .fold(home, |p, part| p.join(part))
            .display()
            .to_string();
    }
    let name = parts.last().copied().unwrap_or_default();
    sources
        .iter()
        .find(|s| {
            std::path::Path::new(s)
                .file_name()
                .is_some_and(|n| n == name)
        })
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_devices_path_becomes_this_computers_own() {
        let home = Some(std::path::PathBuf::from("/home/bob"));
        let t = |dir: &str, host: &str, sources: &[String]| {
            default_target(dir, host, "bob-desktop", sources, home.clone())
        };
        let alice = "alice-laptop";
        assert_eq!(
            t("/home/alice/Documents/app", alice, &[]),
            "/home/bob/Documents/app"
        );
        assert_eq!(t("/Users/alice", alice, &[]), "/home/bob");
        assert_eq!(t("/srv/data/app", alice, &["/opt/app".into()]), "/opt/app");
        assert_eq!(t("/srv/data/app", alice, &["/opt/other".into()]), "");
        assert_eq!(t("/", alice, &[]), "");
        assert_eq!(t("/srv/data/app", "bob-desktop", &[]), "/srv/data/app");
    }
}
