//! What a page shows where there is no repository: on a computer's first
//! visit, two equal choices (connect to the repository another computer
//! already uses, or create a new one); on a profile whose location holds
//! none, the repositories found near it first, then Initialize.
//!
//! Why two equal choices: the first screen once offered only Initialize,
//! with the way to an existing bucket a small link to Settings, and on a
//! second computer, where the user came to restore, one click made an
//! unrelated local repository.

use super::settings::where_fields;
use super::*;
use crate::ui::actions::PasswordSource;
use snap_engine::backend::nearby::Nearby;

/// The first visit: no profile saved, and nothing at the default place.
pub(super) fn first_visit(default_location: &str) -> Markup {
    let none = Profile::default();
    html! {
        div.welcome {
            p.lead { "Is there a repository already (made by another computer, in a bucket or a folder), or is this the first one?" }
            nav.jump aria-label="Choices" {
                a.button href="#connect" { "Connect to an existing repository" }
                a.button href="#create" { "Create a new repository" }
            }
            div.choices {
                section.choice #connect {
                    h2 { "Connect to an existing repository" }
                    p.small { "Your backups from another computer: give the same settings it uses, and its password. Its snapshots then appear under Manage, ready to restore here." }
                    form.settings data-action="/api/connect" data-fill-submits autocomplete="off" {
                        input type="hidden" name="name" value="default";
                        (where_fields("c-", "s3", "", &none, "", "", default_location))
                        (password_choice("c-", false))
                        button type="submit" { "Connect" }
                        div.result role="status" {}
                    }
                }
                section.choice #create {
                    h2 { "Create a new repository" }
                    p.small { "The first backups of this computer, in a folder here (the default) or in a bucket." }
                    form.settings data-action="/api/init" autocomplete="off" {
                        input type="hidden" name="name" value="default";
                        (where_fields("n-", "local", default_location, &none, "", "", default_location))
                        (password_choice("n-", true))
                        button type="submit" { "Create" }
                        div.result role="status" {}
                    }
                }
            }
        }
    }
}

/// The password, and whether this computer keeps it (so automatic
/// backups run by themselves) or the page asks after each restart.
fn password_choice(pre: &str, new: bool) -> Markup {
    let id = |name: &str| format!("{pre}{name}");
    html! {
        fieldset {
            legend { "Repository password" }
            label for=(id("password")) { @if new { "A new password" } @else { "Its password" } }
            input id=(id("password")) type="password" name="password" autocomplete=(if new { "new-password" } else { "current-password" }) required;
            @if new {
                label for=(id("password_again")) { "The same password again" }
                input id=(id("password_again")) type="password" name="password_again" autocomplete="new-password" required;
            }
            label.check { input type="radio" name="password_source" value=(PasswordSource::Store.value()) checked; " Remember it on this computer, in a file only you can read (automatic backups then run by themselves)" }
            label.check { input type="radio" name="password_source" value=(PasswordSource::Page.value()); " Ask for it again after each restart of snap ui" }
        }
    }
}

/// A profile's location holds no repository: those near it, each to use
/// at a click, then how to make one here.
pub(super) fn not_here(name: &str, location: &str, nearby: &Nearby, create: Markup) -> Markup {
    html! {
        div.notice #not-here {
            p { "There is no repository at " code { (location) } "." }
            @if let Some(sentence) = nearby.sentence() {
                div.nearby {
                    p { strong { (views::sentence_case(&sentence)) } }
                    @if name.is_empty() {
                        p { "The place comes from the command line or the environment: to use one of those, name it there, or save a profile in " a href="/settings" { "Settings" } "." }
                    }
                    @for found in nearby.found.iter().filter(|_| !name.is_empty()) {
                        form data-action="/api/relocate" {
                            input type="hidden" name="profile" value=(name);
                            input type="hidden" name="location" value=(found);
                            button type="submit" { "Use " (found) }
                            div.result role="status" {}
                        }
                    }
                }
            }
            (create)
        }
    }
}

/// The buttons under a failed Connect that put a repository found nearby
/// into the form: the root path for a bucket, the folder otherwise.
pub(crate) fn fill_buttons(nearby: &Nearby) -> Markup {
    html! {
        @for found in nearby.found.iter().take(5) {
            @let (field, value) = match snap_engine::backend::S3Options::parse_location(found) {
                Ok((_, root)) => ("root", root),
                Err(_) => ("folder", found.clone()),
            };
            button type="button" data-fill=(field) data-value=(value) { "Use " (found) }
            " "
        }
    }
}
