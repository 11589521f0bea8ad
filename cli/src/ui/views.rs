//! Pieces of pages that several pages and replies share: sizes in human
//! units, times in local time, and the results of each task in words.
//! maud escapes every value, so names from a snapshot cannot inject markup.

use maud::{Markup, html};
use snap_engine::commands::check::CheckResult;
use snap_engine::commands::create::CreateResult;
use snap_engine::commands::prune::PruneResult;
use snap_engine::commands::restore::Change;
use snap_engine::commands::restore::RestoreResult;
use snap_engine::commands::restore::plan::PlanReport;

use super::jobs::JobView;

/// Where a restore's Undo button begins in its result, to take it out.
pub(crate) const UNDO_MARK: &str = "<!--undo-->";

/// The terminal command that sets a profile's password command. The page
/// shows it and never sets one itself: a command the page could set is
/// one that whoever holds the page's token could run as you.
pub(crate) fn password_command_how(profile: &str) -> String {
    format!(
        "snap config --profile {} --password-command 'CMD'",
        if profile.is_empty() { "NAME" } else { profile }
    )
}

/// The terminal command that sets a profile's failure command (see
/// [`password_command_how`] for why only there).
pub(crate) fn on_failure_how(profile: &str) -> String {
    format!(
        "snap config --profile {} --on-failure 'CMD'",
        if profile.is_empty() { "NAME" } else { profile }
    )
}

/// "1 file", "2 files".
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(crate) fn bytes(n: u64) -> String {
    crate::output::bytes(n)
}

/// A time as the page shows it: local time on the server (the user's
/// machine), and the script rewrites it in the browser's own locale.
pub(crate) fn time_ns(ns: i64) -> Markup {
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(ns);
    time(t)
}

/// The one way a time reads on every page, `2026-12-03 14:02`, in this
/// computer's time zone (the script writes the same in the browser's:
/// a page once mixed `12/3/2026, 2:02:21 PM` with `2026-12-03 14:02`).
pub(crate) fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

pub(crate) fn time(t: chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) title=(t.to_rfc3339()) {
            (when(t))
        }
    }
}

pub(crate) fn time_text(rfc3339: &str) -> Markup {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => time(t.with_timezone(&chrono::Utc)),
        Err(_) => html! { (rfc3339) },
    }
}

/// `s` with its first letter in upper case, to follow a full stop.
pub(crate) fn sentence_case(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// How much history an interval and keep-last-N leave: every 5 minutes
/// keeping the last 10 is under an hour, which a user choosing "keep 10"
/// did not expect. Unchanged runs add no snapshot, so it is the least.
pub(crate) fn history(interval_secs: u64, keep: u32) -> String {
    if interval_secs == 0 {
        return String::new();
    }
    if keep == 0 {
        return "Every snapshot is kept: the history grows until snapshots are deleted.".into();
    }
    let span = interval_secs * u64::from(keep);
    let days = span / 86_400;
    let spoken = if days >= 2 {
        format!("{days} days")
    } else {
        duration(span as f64)
    };
    format!(
        "This keeps at least {spoken} of history per device ({keep} backups, one per interval; longer when runs find nothing changed, which add no snapshot)."
    )
}

fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// A ratio of before to after, in words: "stored in 40% of the space
/// (2.5 times smaller)", or why there is no saving. "Compression 1.0×
/// smaller" read as nonsense.
pub(crate) fn saving(ratio: f64, none: &str) -> String {
    if !ratio.is_finite() || ratio < 1.05 {
        return none.to_string();
    }
    format!(
        "stored in {:.0}% of the space ({ratio:.1} times smaller)",
        100.0 / ratio
    )
}

/// What a phase counts: a check reading packs once said "0 of 59 files".
/// The engine names its phases (`Progress::start`); a phase not listed
/// here counts "items".
fn unit_of(phase: &str) -> &'static str {
    match phase {
        "backup" | "restore" | "" => "files",
        "reading packs" | "reading pack headers" | "repacking" => "packs",
        "checking snapshots" | "marking used data" => "snapshots",
        _ => "items",
    }
}

/// The progress line: phase, bytes of total, files, rate, time left.
pub(crate) fn progress_text(v: &JobView) -> String {
    if !v.running {
        return v.message.clone();
    }
    let mut parts = vec![if v.phase.is_empty() {
        "starting".to_string()
    } else {
        v.phase.clone()
    }];
    match v.total_bytes {
        Some(t) if t > 0 => parts.push(format!(
            "{} of {} ({:.0}%)",
            bytes(v.bytes),
            bytes(t),
            v.bytes as f64 * 100.0 / t as f64
        )),
        _ => parts.push(bytes(v.bytes)),
    }
    let unit = unit_of(&v.phase);
    match v.total_items {
        Some(t) => parts.push(format!("{} of {t} {unit}", v.items)),
        None => parts.push(format!("{} {unit}", v.items)),
    }
    if v.rate > 0.0 {
        parts.push(format!("{}/s", bytes(v.rate as u64)));
    }
    if let Some(eta) = v.eta_seconds {
        parts.push(format!("{} left", duration(eta)));
    }
    parts.join(" · ")
}

/// Browse opens at the snapshot's backed-up folder, or at the deepest
/// folder holding all of them: at `/`, a snapshot of two folders of a
/// home opened three levels above either.
pub(crate) fn browse_link(id: &snap_engine::Id, s: &snap_engine::snapshot::Snapshot) -> String {
    let mut link = format!("/browse?snapshot={}", id.to_hex());
    let at = common_folder(&s.paths);
    if at != b"/" {
        link.push_str("&path=");
        link.extend(url::form_urlencoded::byte_serialize(&at));
    }
    link
}

/// The deepest folder that holds every one of `paths` (itself, for one).
fn common_folder(paths: &[Vec<u8>]) -> Vec<u8> {
    let Some((first, rest)) = paths.split_first() else {
        return b"/".to_vec();
    };
    let parts = |p: &[u8]| -> Vec<Vec<u8>> {
        p.split(|b| *b == b'/')
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    };
    let mut common = parts(first);
    for p in rest {
        let other = parts(p);
        let same = common
            .iter()
            .zip(&other)
            .take_while(|(a, b)| a == b)
            .count();
        common.truncate(same);
    }
    let mut out = Vec::new();
    for c in &common {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// A message written for the command line, in the page's words: its
/// fields for the flags and variables the CLI names.
pub(crate) fn for_the_page(msg: &str) -> String {
    const WORDS: &[(&str, &str)] = &[
        ("the settings are not usable: ", ""),
        ("cannot list the repository's keys: ", ""),
        ("storage backend: ", ""),
        (
            "(check AWS_ACCESS_KEY_ID or the profile's access_key_id)",
            "(check the Access Key ID)",
        ),
        (
            "(check AWS_SECRET_ACCESS_KEY or the profile's secret)",
            "(check the Secret Access Key)",
        ),
        ("(check --region)", "(check the Region)"),
        ("(use --region ", "(set the Region to "),
        ("(check --endpoint:", "(check the Endpoint:"),
        ("(check the bucket name in --repo)", "(check the Bucket)"),
        (
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or keys in a profile",
            "fill in the Access Key ID and the Secret Access Key",
        ),
    ];
    let mut out = msg.to_string();
    for (cli, page) in WORDS {
        out = out.replace(cli, page);
    }
    // "(create one with `snap -P x init`)": the page has a button for that.
    if let Some(at) = out.find(" (create one with `")
        && let Some(end) = out[at..].find("`)")
    {
        out.replace_range(at..at + end + 2, ": Initialize makes one");
    }
    out
}

/// The steps of Check connection that passed (the reply's message says
/// what failed).
pub(crate) fn steps(steps: &[String]) -> Markup {
    html! {
        ul.steps {
            @for s in steps { li.ok { (s) } }
        }
    }
}

fn list(title: &str, items: &[String], class: &str) -> Markup {
    html! {
        @if !items.is_empty() {
            details.(class) open {
                summary { (title) " (" (items.len()) ")" }
                ul { @for i in items.iter().take(200) { li { (i) } } }
                @if items.len() > 200 { p { "… and " (items.len() - 200) " more (the log has them all)" } }
            }
        }
    }
}

pub(crate) fn backup_result(r: &CreateResult) -> Markup {
    let s = &r.snapshot.summary;
    html! {
        dl.summary {
            dt { "Snapshot" } dd { a href=(browse_link(&r.snapshot_id, &r.snapshot)) { code { (r.snapshot_id.short()) } } }
            dt { "Files" } dd { (s.files_new) " new, " (s.files_changed) " changed, " (s.files_unmodified) " unmodified" }
            dt { "Read" } dd { (bytes(s.bytes_read)) }
            dt { "Added to the repository" } dd { (bytes(s.bytes_added)) }
            dt { "Took" } dd { (duration(s.duration_ns as f64 / 1e9)) }
        }
        (list("Not backed up or changed while read", &r.warnings, "bad"))
        @if !r.unused_excludes.is_empty() {
            (list("Excludes that matched nothing", &r.unused_excludes, "note"))
        }
    }
}

pub(crate) fn prune_preview(r: &PruneResult) -> Markup {
    html! {
        @for g in &r.groups {
            h4 { (group(&g.key)) }
            table {
                thead { tr { th { "Snapshot" } th { "Time" } th { "Decision" } } }
                tbody {
                    @for (id, s, why) in &g.snapshots {
                        tr.(if why.is_empty() { "remove" } else { "keep" }) {
                            td { code { (id.short()) } }
                            td { (time_ns(s.time_ns)) }
                            td { @if why.is_empty() { "remove" } @else { "keep (" (why.join(", ")) ")" } }
                        }
                    }
                }
            }
        }
        p { "Frees about " (bytes(r.bytes_before.saturating_sub(r.bytes_after))) "." }
    }
}

/// A retention group in the page's words.
fn group(k: &snap_engine::snapshot::GroupKey) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &k.host {
        parts.push(format!("Device {h}"));
    }
    if let Some(p) = &k.paths {
        let shown: Vec<_> = p.iter().map(|p| String::from_utf8_lossy(p)).collect();
        parts.push(format!("folders {}", shown.join(", ")));
    }
    if k.tags
        .as_ref()
        .is_some_and(|t| t.iter().any(|t| t == "pre-restore"))
    {
        parts.push("undo snapshots (kept apart from backups)".into());
    }
    parts.join(" · ")
}

/// The preview in one line. Its unit is the plan's: entries (files,
/// folders, links), as the CLI's dry run counts them; the deletions also
/// say how many files they take with them, the number the warning and
/// the question use. "2 to delete" once stood beside "this deletes 4 of
/// the 124 files there", two folders holding four files.
pub(crate) fn plan_summary(p: &PlanReport) -> String {
    let t = |c: Change| p.totals.get(&c).map(|t| t.entries).unwrap_or(0);
    let mut delete = format!("{} to delete", t(Change::Delete));
    if p.files_deleted != t(Change::Delete) {
        delete.push_str(&format!(" ({})", count(p.files_deleted, "file", "files")));
    }
    format!(
        "preview, nothing changed yet: {} to create, {} to replace, {} with only permissions or times to set, {delete}, {} already right",
        t(Change::Create),
        t(Change::Replace),
        t(Change::Update),
        t(Change::Keep)
    )
}

/// What the preview lists first: deletions, which are what cannot be
/// taken back by writing again, then the rest in the CLI's order.
fn preview_order(c: Change) -> usize {
    match c {
        Change::Delete => 0,
        other => 1 + Change::ALL.iter().position(|x| *x == other).unwrap_or(0),
    }
}

pub(crate) fn plan(p: &PlanReport) -> Markup {
    let mut changes: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.change != Change::Keep)
        .collect();
    changes.sort_by_key(|c| preview_order(c.change));
    let deletions = p.totals.get(&Change::Delete).map_or(0, |t| t.entries);
    html! {
        p { "Into " code { (p.target.display()) } ", from snapshot " code { (p.snapshot_id.short()) } "." }
        @if p.files_deleted > 0 {
            p.warn { "This deletes " (p.files_deleted) " of the " (p.existing_files) " files there." }
        }
        @if changes.is_empty() {
            p { "Nothing to change: the folder already matches the snapshot." }
        } @else {
            p.small { "create: not there yet · replace: its contents differ · update: only its permissions or times differ · delete: not in the snapshot" }
            div.plan-box {
                @if deletions > 0 && deletions < changes.len() as u64 {
                    label.check { input.only-deletions type="checkbox"; " Show only what is deleted" }
                }
                table.plan {
                    thead { tr { th { "Change" } th { "Path" } th.num { "Size" } } }
                    tbody {
                        @for c in changes.iter().take(500) {
                            tr.(c.change.name()) { td { (c.change.name()) } td { (c.path) } td.num { (bytes(c.bytes)) } }
                        }
                    }
                }
            }
            @if changes.len() > 500 { p { "… and " (changes.len() - 500) " more." } }
        }
        (list("Cannot be restored", &p.errors, "bad"))
        (list("Restored otherwise than recorded", &p.warnings, "note"))
    }
}

pub(crate) fn restore_result(r: &RestoreResult) -> Markup {
    html! {
        // The files add up to their total, in the CLI's words: 320
        // written + 79 right + 2 deleted once stood beside 439, the 40
        // whose metadata was set again left out.
        dl.summary {
            dt { "Files" } dd { (r.files) " (" (bytes(r.bytes)) ")" @if r.dirs > 0 { ", in " (count(r.dirs, "folder", "folders")) } }
            dt { "Written" } dd { (r.files_written) }
            dt { "Already right" } dd { (r.files_kept) }
            dt { "With metadata updated" } dd { (r.files_updated) }
            @if r.skipped > 0 { dt { "Left as they were" } dd { (r.skipped) } }
            dt { "Deleted" } dd { (r.deleted) @if r.files_deleted != r.deleted { " (" (count(r.files_deleted, "file", "files")) ")" } }
            dt { "Read from the repository" } dd { (bytes(r.bytes_downloaded)) }
        }
        @if r.undo.is_none() {
            p.small { "Nothing that was there was changed, so there is nothing to undo." }
        }
        @if let Some(u) = &r.undo {
            (maud::PreEscaped(UNDO_MARK))
            form data-action="/api/undo" {
                p { "What was there before is kept in snapshot " code { (u.snapshot_id.short()) } "." }
                button type="submit" data-confirm="Put back what was there before this restore?" { "Undo this restore" }
                div.result role="status" {}
            }
        }
        (list("Could not be restored", &r.errors, "bad"))
        (list("Warnings", &r.warnings, "note"))
    }
}

pub(crate) fn check_result(r: &CheckResult) -> Markup {
    html! {
        dl.summary {
            dt { "Snapshots" } dd { (r.snapshots) }
            dt { "Trees" } dd { (r.trees) }
            dt { "Packs" } dd { (r.packs) ", " (r.packs_read) " read" }
        }
        (list("Errors", &r.errors, "bad"))
        (list("Files that need damaged data", &r.affected, "bad"))
        (list("Warnings", &r.warnings, "note"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The progress line says bytes of total, files, rate and time left.
    #[test]
    fn progress_says_how_far_how_fast_and_how_long() {
        let v = JobView {
            id: 1,
            kind: crate::ui::jobs::TaskKind::Backup,
            profile: "p".into(),
            title: "backup".into(),
            running: true,
            ok: None,
            phase: "backup".into(),
            bytes: 512 << 20,
            items: 10,
            total_bytes: Some(2048 << 20),
            total_items: Some(40),
            rate: (64 << 20) as f64,
            eta_seconds: Some(96.0),
            elapsed_seconds: 8.0,
            started: String::new(),
            finished: None,
            warnings: Vec::new(),
            warnings_total: 0,
            message: String::new(),
            html: String::new(),
            report: None,
            progress_text: String::new(),
        };
        assert_eq!(
            progress_text(&v),
            "backup · 512.00 MiB of 2.00 GiB (25%) · 10 of 40 files · 64.00 MiB/s · 1 min 36 s left"
        );
        let done = JobView {
            running: false,
            message: "snapshot written".into(),
            ..v
        };
        assert_eq!(progress_text(&done), "snapshot written");
    }

    #[test]
    fn undo_tags_read_as_words_only_when_they_are_ids() {
        assert_eq!(
            crate::output::tag(&format!("restoring:{}", "ab".repeat(32))),
            "before restoring abababab"
        );
        let odd = format!("restoring:{}é", "a".repeat(62));
        assert_eq!(crate::output::tag(&odd), odd);
        assert_eq!(crate::output::tag("pre-restore"), "undo snapshot");
    }

    /// The preview's counts tie to the warning's: two folders to delete
    /// that hold four files say so, and deletions come first.
    #[test]
    fn the_preview_counts_add_up_and_deletions_come_first() {
        use snap_engine::commands::restore::plan::{ChangeReport, Tally};
        use snap_engine::report::EntryKind;
        let change = |change, path: &str, kind| ChangeReport {
            change,
            path: path.into(),
            kind,
            bytes: 1,
        };
        let p = PlanReport {
            dry_run: true,
            snapshot_id: snap_engine::Id::of_bytes(b"s"),
            target: "/t".into(),
            changes: vec![
                change(Change::Create, "/t/new", EntryKind::File),
                change(Change::Delete, "/t/old", EntryKind::Dir),
                change(Change::Delete, "/t/older", EntryKind::Dir),
            ],
            totals: [
                (
                    Change::Create,
                    Tally {
                        entries: 1,
                        bytes: 1,
                    },
                ),
                (
                    Change::Delete,
                    Tally {
                        entries: 2,
                        bytes: 2,
                    },
                ),
            ]
            .into_iter()
            .collect(),
            existing_files: 124,
            files_deleted: 4,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let said = plan_summary(&p);
        assert!(said.contains("2 to delete (4 files)"), "{said}");
        let html = plan(&p).into_string();
        assert!(
            html.contains("This deletes 4 of the 124 files there"),
            "{html}"
        );
        let first_delete = html.find("/t/old").unwrap();
        assert!(first_delete < html.find("/t/new").unwrap(), "{html}");
        assert!(html.contains("Show only what is deleted"), "{html}");
    }

    #[test]
    fn browse_opens_at_the_folder_holding_every_backed_up_path() {
        let c = |ps: &[&str]| {
            String::from_utf8(common_folder(
                &ps.iter().map(|p| p.as_bytes().to_vec()).collect::<Vec<_>>(),
            ))
            .unwrap()
        };
        assert_eq!(c(&["/home/a/Documents"]), "/home/a/Documents");
        assert_eq!(c(&["/home/a/Documents", "/home/a/Pictures"]), "/home/a");
        assert_eq!(c(&["/home/a/Doc", "/home/a/Documents"]), "/home/a");
        assert_eq!(c(&["/etc", "/home"]), "/");
        assert_eq!(c(&[]), "/");
    }

    #[test]
    fn the_history_a_schedule_keeps_is_said() {
        assert!(history(300, 10).contains("50 min"), "{}", history(300, 10));
        assert!(history(86_400, 10).contains("10 days"));
        assert!(history(3600, 0).contains("Every snapshot is kept"));
        assert_eq!(history(0, 10), "");
    }
}
