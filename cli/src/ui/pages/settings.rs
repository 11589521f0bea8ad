//! Settings: profiles, where backups go, and the password's source.

use super::*;
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
    use crate::ui::actions::PasswordSource as Source;
    let pw_source = if p.password_file.is_some() {
        Source::File
    } else if p.password_command.is_some() {
        Source::Keep
    } else {
        Source::Page
    };
    html! {
        fieldset {
            legend { "Repository password" }
            label.check { input type="radio" name="password_source" value=(Source::Page.value()) checked[pw_source == Source::Page]; " Type it in this page (kept in memory only, asked again after a restart; SNAP_PASSWORD works too)" }
            label.check { input type="radio" name="password_source" value=(Source::Store.value()); " Keep it in a file on this computer, readable by you alone (automatic backups then run without you)" }
            label.check { input type="radio" name="password_source" value=(Source::File.value()) checked[pw_source == Source::File]; " Read it from a file" }
            @if let Some(cmd) = &p.password_command {
                label.check { input type="radio" name="password_source" value=(Source::Keep.value()) checked[pw_source == Source::Keep]; " Print it with the command set from the terminal: " code { (cmd) } }
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

/// Where the backups go: a bucket's six settings or a folder. `pre`
/// keeps the ids apart when two such forms share a page (connect and
/// create).
pub(super) fn where_fields(
    pre: &str,
    kind: &str,
    repo: &str,
    p: &Profile,
    bucket: &str,
    root: &str,
    default_location: &str,
) -> Markup {
    let id = |name: &str| format!("{pre}{name}");
    html! {
        fieldset {
            legend { "Where the backups go" }
            label.check { input type="radio" name="kind" value="s3" checked[kind == "s3"]; " An S3-compatible bucket" }
            label.check { input type="radio" name="kind" value="local" checked[kind == "local"]; " A folder on this computer or a mounted drive" }
        }
        fieldset.local {
            legend { "Folder" }
            label for=(id("folder")) { "Repository folder" }
            input id=(id("folder")) type="text" name="folder" value=(if kind == "local" { repo } else { "" }) placeholder=(default_location);
        }
        fieldset.s3 {
            legend { "Bucket" }
            label for=(id("endpoint")) { "Endpoint" }
            input id=(id("endpoint")) type="text" inputmode="url" name="endpoint" value=(p.endpoint.clone().unwrap_or_default()) placeholder="https://s3.us-east-1.amazonaws.com";
            label for=(id("region")) { "Region" }
            input id=(id("region")) type="text" name="region" value=(p.region.clone().unwrap_or_default()) placeholder="us-east-1 (auto for Cloudflare R2)";
            label for=(id("bucket")) { "Bucket" }
            input id=(id("bucket")) type="text" name="bucket" value=(bucket);
            label for=(id("access_key_id")) { "Access Key ID" }
            input id=(id("access_key_id")) type="text" name="access_key_id" value=(p.access_key_id.clone().unwrap_or_default()) spellcheck="false";
            label for=(id("secret_access_key")) { "Secret Access Key" }
            input id=(id("secret_access_key")) type="password" name="secret_access_key" autocomplete="new-password"
                placeholder=(if p.secret_access_key.is_some() || p.secret_access_key_command.is_some() { "saved; leave empty to keep it" } else { "" });
            label for=(id("root")) { "Root path (optional)" }
            input id=(id("root")) type="text" name="root" value=(root) placeholder="backups/snap";
        }
    }
}

pub(crate) async fn settings(
    State(app): State<Arc<App>>,
    Query(q): Query<SettingsQuery>,
) -> Response {
    let file = match app.config() {
        Ok(f) => f,
        Err(e) => return page(&app, Room::Settings, error_box(&words(&e))),
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
    let s3 = snap_engine::backend::S3Options::parse_location(&repo).ok();
    let kind = if s3.is_some() || (p.repository.is_none() && !editing.is_empty()) {
        "s3"
    } else {
        "local"
    };
    let (bucket, root) = s3.unwrap_or_default();
    let default_location = app
        .session(&Which::Given)
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
                input #name type="text" name="name" value=(if editing.is_empty() { if file.profiles.is_empty() { "default" } else { "" } } else { &editing }) required aria-describedby="name-hint";
                p.small #name-hint { "Letters, digits, '.', '_' and '-'; spaces and other characters become '-'." }
                (where_fields("", kind, &repo, &p, &bucket, &root, &default_location))
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
    page(&app, Room::Settings, body)
}
