//! The one long task at a time (a backup, restore, prune or check), what it
//! has done so far, and how it ended. Two backups at once would only
//! compete for the same disk and uplink, and a prune beside a restore is
//! what a person least expects; so a second task waits (the schedule) or
//! is refused with the name of the one running (a button).
//!
//! A task can be cancelled from the page, and a scheduled run that makes
//! no progress for [`STALLED`] is ended as failed. The engine's work runs
//! on a thread of its own that cannot be stopped from outside (the engine
//! takes no cancellation, and killing a thread would leave its locks and
//! files half done), so cancelling ends the *task*: the page and the one
//! slot are free at once, and the work goes on in the background until it
//! ends, its result then only logged ([`Jobs::finish`] discards it). A
//! task started meanwhile may meet that work's repository lock.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde::Serialize;

use super::app::{Which, lock};
use snap_engine::progress::Progress;

/// Warnings kept per task for the page; the log has them all.
const WARNINGS_SHOWN: usize = 50;

/// A scheduled run that reports no progress for this long is stuck (a
/// password command waiting for input, storage that stopped answering):
/// it is ended as failed and the slot freed, so the schedule goes on. No
/// progress rather than a total time: a first backup of a large folder
/// over a slow line rightly runs for days, and reports all along; every
/// engine step reports far more often than this.
pub(crate) const STALLED: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Whether a task last heard from at `heard` is stuck at `now`.
pub(crate) fn stalled(heard: Instant, now: Instant) -> bool {
    now.saturating_duration_since(heard) >= STALLED
}

/// What a task does; a page keeps showing the last task of its own kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TaskKind {
    Backup,
    Restore,
    Prune,
    Check,
}

#[derive(Default)]
pub(crate) struct Jobs {
    current: Mutex<Option<Arc<Job>>>,
    last: Mutex<Option<Arc<Job>>>,
    /// The last task of each kind: a check that ended just before a
    /// scheduled backup began kept its result only in the log.
    last_of: Mutex<std::collections::HashMap<TaskKind, Arc<Job>>>,
    next: AtomicU64,
}

pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) kind: TaskKind,
    pub(crate) profile: Which,
    pub(crate) title: String,
    started: Instant,
    started_at: SystemTime,
    state: Mutex<State>,
}

/// Ends a task early; see the module's doc.
pub(crate) enum Cancel {
    /// From the page's Cancel button.
    Asked,
    /// A scheduled run that made no progress for [`STALLED`].
    Stalled,
}

#[derive(Default)]
struct State {
    phase: String,
    phase_started: Option<Instant>,
    bytes: u64,
    items: u64,
    total_bytes: Option<u64>,
    total_items: Option<u64>,
    warnings: Vec<String>,
    warnings_total: u64,
    /// When the task last reported anything.
    heard: Option<Instant>,
    outcome: Option<Outcome>,
}

struct Outcome {
    ok: bool,
    message: String,
    /// A fragment of HTML the page shows (rendered by `views`, escaped).
    html: String,
    report: Option<serde_json::Value>,
    finished: SystemTime,
}

/// A task as the page and `/api/status` show it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct JobView {
    pub(crate) id: u64,
    pub(crate) kind: TaskKind,
    pub(crate) profile: String,
    pub(crate) title: String,
    pub(crate) running: bool,
    pub(crate) ok: Option<bool>,
    pub(crate) phase: String,
    pub(crate) bytes: u64,
    pub(crate) items: u64,
    pub(crate) total_bytes: Option<u64>,
    pub(crate) total_items: Option<u64>,
    /// Bytes per second in the current phase.
    pub(crate) rate: f64,
    pub(crate) eta_seconds: Option<f64>,
    pub(crate) elapsed_seconds: f64,
    pub(crate) started: String,
    pub(crate) finished: Option<String>,
    pub(crate) warnings: Vec<String>,
    pub(crate) warnings_total: u64,
    pub(crate) message: String,
    pub(crate) html: String,
    pub(crate) report: Option<serde_json::Value>,
    /// The same figures in words, for the page's progress line.
    pub(crate) progress_text: String,
}

/// Another task is running.
#[derive(Debug)]
pub(crate) struct Busy(pub(crate) String);

impl Jobs {
    /// Starts a task, unless one is running.
    pub(crate) fn start(
        &self,
        kind: TaskKind,
        profile: &Which,
        title: String,
    ) -> Result<Arc<Job>, Busy> {
        let mut current = lock(&self.current);
        if let Some(j) = &*current {
            return Err(Busy(format!(
                "{} is running; try again when it has finished",
                j.title
            )));
        }
        let job = Arc::new(Job {
            id: self.next.fetch_add(1, Ordering::Relaxed) + 1,
            kind,
            profile: profile.clone(),
            title,
            started: Instant::now(),
            started_at: SystemTime::now(),
            state: Mutex::default(),
        });
        *current = Some(job.clone());
        Ok(job)
    }

    /// Ends `job` with its outcome; it stays on show until the next task.
    /// False, and nothing changed, when it had already ended (cancelled):
    /// the work's late result is then the caller's to log.
    pub(crate) fn finish(
        &self,
        job: &Arc<Job>,
        ok: bool,
        message: String,
        html: String,
        report: Option<serde_json::Value>,
    ) -> bool {
        {
            let mut s = lock(&job.state);
            if s.outcome.is_some() {
                return false;
            }
            s.outcome = Some(Outcome {
                ok,
                message,
                html,
                report,
                finished: SystemTime::now(),
            });
        }
        *lock(&self.last) = Some(job.clone());
        lock(&self.last_of).insert(job.kind, job.clone());
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|c| c.id == job.id) {
            *current = None;
        }
        true
    }

    /// Ends the running task `id` as failed, now (see the module's doc);
    /// the words it ended with. None: it is not the one running.
    pub(crate) fn cancel(&self, id: u64, why: Cancel) -> Option<String> {
        let job = self.running().filter(|j| j.id == id)?;
        let message = match why {
            Cancel::Asked => "cancelled",
            Cancel::Stalled => &format!(
                "stopped: no progress for {} minutes (a password command waiting for input, or \
                 storage that does not answer)",
                STALLED.as_secs() / 60
            ),
        };
        let message = format!(
            "{message}. Work already begun cannot be stopped from outside: it goes on in the \
             background until it ends, and its result is only logged"
        );
        self.finish(&job, false, message.clone(), String::new(), None)
            .then_some(message)
    }

    /// Takes the Undo button out of every restore shown: after an undo,
    /// or once a newer restore is the one to undo, an old button undid the
    /// wrong thing.
    pub(crate) fn forget_undo(&self) {
        let mut jobs: Vec<Arc<Job>> = lock(&self.last_of).values().cloned().collect();
        jobs.extend(lock(&self.last).clone());
        for job in jobs {
            if let Some(o) = &mut lock(&job.state).outcome
                && let Some(at) = o.html.find(super::views::UNDO_MARK)
            {
                o.html.truncate(at);
            }
        }
    }

    /// The id of the newest task, 0 before any.
    pub(crate) fn newest(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// The last task of `kind` that ended.
    pub(crate) fn last_of(&self, kind: TaskKind) -> Option<JobView> {
        lock(&self.last_of).get(&kind).map(|j| j.view())
    }

    pub(crate) fn running(&self) -> Option<Arc<Job>> {
        lock(&self.current).clone()
    }

    /// The running task, else the last one that ended.
    pub(crate) fn view(&self) -> Option<JobView> {
        self.running()
            .or_else(|| lock(&self.last).clone())
            .map(|j| j.view())
    }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Job {
    /// The words it ended with, once ended (by its work or cancelled).
    pub(crate) fn ended(&self) -> Option<String> {
        lock(&self.state)
            .outcome
            .as_ref()
            .map(|o| o.message.clone())
    }

    /// When it last reported anything, or started.
    pub(crate) fn heard(&self) -> Instant {
        lock(&self.state).heard.unwrap_or(self.started)
    }

    pub(crate) fn view(&self) -> JobView {
        let s = lock(&self.state);
        let phase_secs = s
            .phase_started
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or_default();
        let rate = if phase_secs > 0.5 {
            s.bytes as f64 / phase_secs
        } else {
            0.0
        };
        let eta_seconds = match s.total_bytes {
            Some(t) if rate > 0.0 && t >= s.bytes && s.outcome.is_none() => {
                Some((t - s.bytes) as f64 / rate)
            }
            _ => None,
        };
        let mut v = JobView {
            id: self.id,
            kind: self.kind,
            profile: self.profile.form_value().to_string(),
            title: self.title.clone(),
            running: s.outcome.is_none(),
            ok: s.outcome.as_ref().map(|o| o.ok),
            phase: s.phase.clone(),
            bytes: s.bytes,
            items: s.items,
            total_bytes: s.total_bytes,
            total_items: s.total_items,
            rate,
            eta_seconds,
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
            started: rfc3339(self.started_at),
            finished: s.outcome.as_ref().map(|o| rfc3339(o.finished)),
            warnings: s.warnings.clone(),
            warnings_total: s.warnings_total,
            message: s
                .outcome
                .as_ref()
                .map(|o| o.message.clone())
                .unwrap_or_default(),
            html: s
                .outcome
                .as_ref()
                .map(|o| o.html.clone())
                .unwrap_or_default(),
            report: s.outcome.as_ref().and_then(|o| o.report.clone()),
            progress_text: String::new(),
        };
        v.progress_text = super::views::progress_text(&v);
        v
    }
}

impl Progress for Job {
    fn warn(&self, message: &str) {
        let mut s = lock(&self.state);
        s.heard = Some(Instant::now());
        s.warnings_total += 1;
        if s.warnings.len() < WARNINGS_SHOWN {
            s.warnings.push(message.to_string());
        }
        eprintln!(
            "{} {}: warning: {message}",
            chrono::Local::now().format("%Y-%m-%d %H:%M:%S"),
            self.title
        );
    }

    fn start(&self, phase: &str, total_bytes: Option<u64>, total_items: Option<u64>) {
        let mut s = lock(&self.state);
        s.heard = Some(Instant::now());
        s.phase = phase.to_string();
        s.phase_started = Some(Instant::now());
        s.bytes = 0;
        s.items = 0;
        s.total_bytes = total_bytes;
        s.total_items = total_items;
    }

    fn wants_totals(&self) -> bool {
        true
    }

    fn total(&self, bytes: u64, items: u64) {
        let mut s = lock(&self.state);
        s.heard = Some(Instant::now());
        s.total_bytes = Some(bytes);
        s.total_items = Some(items);
    }

    fn bytes(&self, n: u64) {
        let mut s = lock(&self.state);
        s.heard = Some(Instant::now());
        s.bytes += n;
    }

    fn item(&self, _path: &Path) {
        let mut s = lock(&self.state);
        s.heard = Some(Instant::now());
        s.items += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_stalled_after_a_stretch_without_progress_only() {
        let heard = Instant::now();
        assert!(!stalled(heard, heard));
        assert!(!stalled(heard, heard + STALLED / 2));
        assert!(stalled(heard, heard + STALLED));
        // A clock read before `heard` is no stall.
        assert!(!stalled(heard + STALLED, heard));
    }

    #[test]
    fn a_cancelled_task_frees_the_slot_and_its_late_result_is_discarded() {
        let jobs = Jobs::default();
        let job = jobs
            .start(
                TaskKind::Backup,
                &Which::Named("p".into()),
                "backup of profile p".into(),
            )
            .unwrap();
        assert!(
            jobs.start(TaskKind::Check, &Which::Named("p".into()), "check".into())
                .is_err()
        );
        assert!(
            jobs.cancel(job.id + 1, Cancel::Asked).is_none(),
            "not that one"
        );
        let said = jobs.cancel(job.id, Cancel::Asked).unwrap();
        assert!(said.starts_with("cancelled"), "{said}");
        assert!(jobs.running().is_none());
        let next = jobs
            .start(TaskKind::Check, &Which::Named("p".into()), "check".into())
            .unwrap();
        // The cancelled work ends later: its result is not recorded.
        assert!(!jobs.finish(&job, true, "done".into(), String::new(), None));
        assert_eq!(jobs.running().unwrap().id, next.id);
        assert!(!job.view().running && job.view().ok == Some(false));
    }
}
