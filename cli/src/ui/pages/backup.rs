//! Backup: the folders of the profile, and Back up now.

use super::*;
// ------------------------------------------------------------------ backup

pub(crate) async fn backup(State(app): State<Arc<App>>) -> Response {
    let profile = app
        .session(&app.current())
        .map(|s| s.profile)
        .unwrap_or_default();
    let body = html! {
        form data-action="/api/backup" {
            label for="sources" { "Folders to back up, one per line" }
            textarea #sources name="sources" rows="4" placeholder="~/Documents" required { (profile.sources.join("\n")) }
            button type="button" data-picker="sources" { "Choose a folder…" }
            p.small { "Choose folders of this computer, or type their paths (" code { "~" } " is your home folder)." }
            label for="excludes" { "Leave out (patterns, one per line; a name alone matches it anywhere)" }
            textarea #excludes name="excludes" rows="3" placeholder="node_modules\n*.tmp" { (profile.excludes.join("\n")) }
            p.small { "Folders and patterns are saved in the profile, for the schedule and the command line." }
            button type="submit" { "Back up now" }
            div.result role="status" {}
        }
        (last_task(&app, TaskKind::Backup, "The last backup"))
        (picker())
    };
    page(&app, Room::Backup, body)
}

/// The folder picker, filled and driven by the script from
/// `/api/folders`.
fn picker() -> Markup {
    html! {
        dialog.picker #picker aria-labelledby="picker-title" {
            h2 #picker-title { "Choose a folder to back up" }
            div.places aria-label="Places" {}
            p { strong.where {} }
            p.small.note hidden {}
            ul.folders aria-label="Folders here" {}
            div.buttons {
                button type="button" data-pick { "Add this folder" }
                button type="button" data-close { "Close" }
            }
        }
    }
}
