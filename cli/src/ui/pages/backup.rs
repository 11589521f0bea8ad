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
