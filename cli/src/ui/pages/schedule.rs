//! Schedule: automatic backups and keep-last-N, per profile.

use super::*;
// ---------------------------------------------------------------- schedule

pub(crate) async fn schedule(State(app): State<Arc<App>>) -> Response {
    let file = match app.config() {
        Ok(f) => f,
        Err(e) => return page(&app, Room::Schedule, error_box(&words(&e))),
    };
    let scale = crate::ui::schedule::time_scale();
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
                    label.check {
                        input type="checkbox" name="skip_unchanged" checked[p.skip_if_unchanged.unwrap_or(true)];
                        " Skip when nothing changed (no snapshot is written, so keeping the last N keeps history, not copies)"
                    }
                    @let history: std::collections::BTreeMap<String, String> = INTERVALS.iter()
                        .flat_map(|(v, _, secs)| KEEP.iter().map(move |k| (format!("{v}:{k}"), views::history(*secs, *k))))
                        .collect();
                    p.small.history data-history=(serde_json::to_string(&history).unwrap_or_default()) aria-live="polite" {
                        (history.get(&format!("{}:{}", p.schedule.as_deref().unwrap_or("off"), p.keep_last.unwrap_or(0))).cloned().unwrap_or_default())
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
    page(&app, Room::Schedule, body)
}

/// Whether snap ui finds the profile's password by itself after a
/// restart (a file, a command, the environment).
fn unattended(app: &App, name: &str) -> bool {
    app.session(&Which::Named(name.to_string()))
        .is_ok_and(|s| crate::password::is_configured(s.global(), &s.profile))
}
