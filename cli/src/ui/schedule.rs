//! Automatic backups: each profile with a schedule and folders is backed
//! up every interval, then thinned to its last N snapshots of this device.
//!
//! Time is the wall clock, looked at every second, not a sleep of one
//! interval: a monotonic sleep does not count while the machine sleeps, so
//! a laptop closed through its 12:00 run would wait a whole interval more
//! after waking. Here the first look after waking finds the run due, runs
//! it once, and plans the next one interval from then: one run at wake,
//! however many were slept through.
//!
//! A run that makes no progress for [`jobs::STALLED`] (or is cancelled
//! from the page) is a failed run, and the schedule goes on.
//!
//! A failed run is tried again after about 10 s, 30 s and 90 s, then at
//! the next interval. The profile shows red from the first failure until
//! a run succeeds, and its `on_failure` command runs once per such
//! streak, so an outage sends one notification, not one per retry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::app::{App, Which, lock};
use super::jobs;

/// The intervals offered, as stored in a profile and shown.
pub(crate) const INTERVALS: &[(&str, &str, u64)] = &[
    ("off", "Off", 0),
    ("1m", "Every minute", 60),
    ("5m", "Every 5 minutes", 300),
    ("15m", "Every 15 minutes", 900),
    ("30m", "Every 30 minutes", 1800),
    ("1h", "Every hour", 3600),
    ("2h", "Every 2 hours", 7200),
    ("6h", "Every 6 hours", 21600),
    ("12h", "Every 12 hours", 43200),
    ("24h", "Every 24 hours", 86400),
];

/// The choices of "keep the last N"; 0 keeps all.
pub(crate) const KEEP: &[u32] = &[0, 1, 3, 5, 10, 20, 50];

/// Waits before the retries of a failed run.
const BACKOFF: [u64; 3] = [10, 30, 90];

/// Seconds of an interval named in a profile.
pub(crate) fn interval_seconds(name: &str) -> Option<u64> {
    INTERVALS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, s)| *s)
}

/// `SNAP_UI_TIME_SCALE=N` makes every interval and wait N times shorter,
/// for tests that must see a scheduled run happen; unset it is 1. Only
/// what snap waits for (an interval, a retry, a look at the clock), never
/// a bound on work: a run's or an opening's time limit stays as it is,
/// since a busy machine's work does not go faster under a test.
pub(crate) fn time_scale() -> u64 {
    std::env::var("SNAP_UI_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

fn scaled(seconds: u64, scale: u64) -> Duration {
    Duration::from_millis(seconds * 1000 / scale)
}

/// One profile's schedule as the page shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Entry {
    pub(crate) interval: String,
    #[serde(skip)]
    pub(crate) next: Option<SystemTime>,
    #[serde(skip)]
    pub(crate) last: Option<SystemTime>,
    pub(crate) next_run: Option<String>,
    pub(crate) last_run: Option<String>,
    pub(crate) last_ok: Option<bool>,
    pub(crate) last_result: Option<String>,
    /// Red from a failure until the next success.
    pub(crate) failing: bool,
    /// Retries made of the failing run.
    pub(crate) retries: u32,
    pub(crate) runs: u64,
}

impl Entry {
    /// Due now: the planned time has come (or passed during sleep).
    pub(crate) fn due(&self, now: SystemTime) -> bool {
        self.next.is_some_and(|n| now >= n)
    }

    /// After a run at `now`: the next one an interval later, or a retry
    /// soon after a failure. Returns whether this failure starts a streak
    /// (the notification is sent then).
    pub(crate) fn ran(
        &mut self,
        now: SystemTime,
        result: Result<String, String>,
        interval: u64,
        scale: u64,
    ) -> bool {
        self.last = Some(now);
        self.runs += 1;
        let mut new_streak = false;
        match result {
            Ok(msg) => {
                self.last_ok = Some(true);
                self.last_result = Some(msg);
                self.failing = false;
                self.retries = 0;
                self.next = Some(now + scaled(interval, scale));
            }
            Err(msg) => {
                new_streak = !self.failing;
                self.last_ok = Some(false);
                self.last_result = Some(msg);
                self.failing = true;
                match BACKOFF.get(self.retries as usize) {
                    Some(&wait) => {
                        self.retries += 1;
                        self.next = Some(now + scaled(wait, scale));
                    }
                    None => {
                        self.retries = 0;
                        self.next = Some(now + scaled(interval, scale));
                    }
                }
            }
        }
        self.stamp();
        new_streak
    }

    fn stamp(&mut self) {
        let show = |t: SystemTime| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        self.next_run = self.next.map(show);
        self.last_run = self.last.map(show);
    }
}

#[derive(Default)]
pub(crate) struct Board {
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl Board {
    pub(crate) fn get(&self, profile: &str) -> Option<Entry> {
        lock(&self.entries).get(profile).cloned()
    }

    pub(crate) fn all(&self) -> BTreeMap<String, Entry> {
        lock(&self.entries).clone()
    }

    /// Brings the board in line with the profiles' settings: a new or
    /// changed interval plans a run one interval from now.
    fn sync(&self, wanted: &BTreeMap<String, u64>, now: SystemTime, scale: u64) {
        let mut entries = lock(&self.entries);
        entries.retain(|name, _| wanted.contains_key(name));
        for (name, &secs) in wanted {
            let label = INTERVALS
                .iter()
                .find(|(_, _, s)| *s == secs)
                .map(|(n, _, _)| n.to_string())
                .unwrap_or_default();
            let e = entries.entry(name.clone()).or_default();
            if e.interval != label {
                e.interval = label;
                e.next = Some(now + scaled(secs, scale));
                e.retries = 0;
                e.stamp();
            }
        }
    }

    fn update(&self, profile: &str, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = lock(&self.entries).get_mut(profile) {
            f(e);
        }
    }
}

/// The profiles to back up by themselves, and their intervals in seconds.
fn scheduled(app: &App) -> BTreeMap<String, u64> {
    let Ok(file) = app.config() else {
        return BTreeMap::new();
    };
    file.profiles
        .iter()
        .filter(|(_, p)| !p.sources.is_empty())
        .filter_map(|(name, p)| {
            let secs = interval_seconds(p.schedule.as_deref()?)?;
            (secs > 0).then(|| (name.clone(), secs))
        })
        .collect()
}

/// Brings the board in line with the config now, so a page loaded right
/// after a change shows the new next run.
pub(crate) fn refresh(app: &App) {
    app.board
        .sync(&scheduled(app), SystemTime::now(), time_scale());
}

/// Runs the schedule beside the server, and again should it panic: the
/// automatic backups must not stop silently while the page still serves.
pub(crate) async fn supervise(app: Arc<App>) {
    loop {
        let run = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run(app.clone())));
        if run.await.is_err() {
            app.log("the schedule stopped unexpectedly (a bug in snap); it starts again in 10 s");
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }
}

async fn run(app: Arc<App>) {
    let scale = time_scale();
    let tick = Duration::from_millis((1000 / scale).clamp(50, 1000));
    loop {
        let wanted = scheduled(&app);
        app.board.sync(&wanted, SystemTime::now(), scale);
        for (name, &secs) in &wanted {
            let due = app
                .board
                .get(name)
                .is_some_and(|e| e.due(SystemTime::now()));
            if !due {
                continue;
            }
            // One task at a time: wait for a running one to end.
            let job = loop {
                match super::actions::start_backup_job(
                    &app,
                    &Which::Named(name.clone()),
                    "automatic backup",
                ) {
                    Ok(job) => break job,
                    Err(_) => tokio::time::sleep(tick).await,
                }
            };
            let result = wait_for_run(&app, name, &job, tick).await;
            let mut notify = false;
            app.board.update(name, |e| {
                notify = e.ran(SystemTime::now(), result.clone(), secs, scale);
            });
            // `run_backup` logged the failure.
            if let Err(msg) = &result {
                // Beside the schedule: a slow command once held every
                // other profile's backups.
                if notify {
                    tokio::spawn(notify_failure(app.clone(), name.clone(), msg.clone()));
                }
            }
        }
        tokio::time::sleep(tick).await;
    }
}

/// Runs the scheduled backup of profile `name` as task `job`, and waits
/// for its outcome; or, should it be cancelled from the page or stall
/// ([`jobs::STALLED`]), ends there as failed, the run left to end in the
/// background (see [`jobs`]): a stuck run once held the schedule of every
/// profile.
async fn wait_for_run(
    app: &Arc<App>,
    name: &str,
    job: &Arc<jobs::Job>,
    tick: Duration,
) -> Result<String, String> {
    let mut run = tokio::spawn({
        let (app, name, job) = (app.clone(), name.to_string(), job.clone());
        async move { super::actions::run_backup(&app, &Which::Named(name), &job, true).await }
    });
    loop {
        tokio::select! {
            r = &mut run => {
                return r.unwrap_or_else(|_| {
                    let why = "stopped unexpectedly (a bug in snap; its log has the details)";
                    super::actions::end_task(app, job, Err(why.into()));
                    Err(why.into())
                });
            }
            _ = tokio::time::sleep(tick) => {}
        }
        if let Some(said) = job.ended() {
            return Err(said);
        }
        if jobs::stalled(job.heard(), Instant::now())
            && let Some(said) = app.jobs.cancel(job.id, jobs::Cancel::Stalled)
        {
            app.log(&format!("{}: {said}", job.title));
            return Err(said);
        }
    }
}

/// Runs the profile's `on_failure` command with the shell, with the
/// profile and the error in its environment.
async fn notify_failure(app: Arc<App>, name: String, error: String) {
    let Some(cmd) = app
        .config()
        .ok()
        .and_then(|f| f.profiles.get(&name).and_then(|p| p.on_failure.clone()))
    else {
        return;
    };
    let mut c = crate::password::shell(&cmd);
    c.env("SNAP_PROFILE", &name).env("SNAP_ERROR", &error);
    let app2 = app.clone();
    let _ = super::app::blocking(move || {
        match c.status() {
            Ok(s) if s.success() => {}
            Ok(s) => app2.log(&format!(
                "the on_failure command of profile {name} failed ({s})"
            )),
            Err(e) => app2.log(&format!(
                "cannot run the on_failure command of profile {name}: {e}"
            )),
        }
        Ok(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
    }

    #[test]
    fn a_machine_that_slept_through_runs_runs_once_at_wake() {
        let mut e = Entry {
            next: Some(at(60)),
            ..Default::default()
        };
        // Asleep from 30 s to 3 h: the first look after waking finds it due.
        assert!(!e.due(at(30)));
        let wake = at(3 * 3600);
        assert!(e.due(wake));
        e.ran(wake, Ok("done".into()), 60, 1);
        // The runs slept through are not made up one by one.
        assert!(!e.due(wake));
        assert!(!e.due(wake + Duration::from_secs(59)));
        assert!(e.due(wake + Duration::from_secs(60)));
        assert_eq!(e.runs, 1);
    }

    #[test]
    fn failures_back_off_then_wait_an_interval_and_stay_red_until_a_success() {
        let mut e = Entry::default();
        let mut now = at(0);
        let mut waits = Vec::new();
        let mut streaks = 0;
        for _ in 0..5 {
            if e.ran(now, Err("bucket unreachable".into()), 3600, 1) {
                streaks += 1;
            }
            assert!(e.failing);
            let next = e.next.unwrap();
            waits.push(next.duration_since(now).unwrap().as_secs());
            now = next;
        }
        assert_eq!(waits, [10, 30, 90, 3600, 10]);
        assert_eq!(streaks, 1, "one notification per streak of failures");
        e.ran(now, Ok("ok".into()), 3600, 1);
        assert!(!e.failing);
        assert!(
            e.ran(now, Err("again".into()), 3600, 1),
            "a new streak notifies"
        );
    }

    #[test]
    fn the_test_scale_shortens_intervals_and_waits() {
        let mut e = Entry::default();
        e.ran(at(0), Err("x".into()), 60, 60);
        assert_eq!(
            e.next.unwrap().duration_since(at(0)).unwrap(),
            Duration::from_millis(166)
        );
        e.ran(at(0), Ok("y".into()), 60, 60);
        assert_eq!(
            e.next.unwrap().duration_since(at(0)).unwrap(),
            Duration::from_secs(1)
        );
    }
}
