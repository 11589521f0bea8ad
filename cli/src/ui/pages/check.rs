//! Check: the repository's structure and, if asked, its data.

use super::*;
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
        (last_task(&app, TaskKind::Check, "The last check"))
    };
    page(&app, Room::Check, body)
}
