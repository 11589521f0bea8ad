//! Locks with expiry: every backup and prune announces itself with an
//! object under `locks/` that it refreshes while it runs and deletes when it
//! ends. Nothing ever waits on a lock and no one needs to remove one by
//! hand: a lock not refreshed for [`EXPIRY`] is dead. Prune reads them to
//! decide when deleting data is safe (format-spec.md section 10).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::codec::{self, Kind};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;

/// How often a running command rewrites its lock.
pub const HEARTBEAT: Duration = Duration::from_secs(5 * 60);
/// A lock older than this, by the store's clock, belongs to a command that
/// crashed or lost its connection.
pub const EXPIRY: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum LockKind {
    Backup,
    Prune,
}

impl From<LockKind> for u8 {
    fn from(k: LockKind) -> u8 {
        match k {
            LockKind::Backup => 0,
            LockKind::Prune => 1,
        }
    }
}

impl TryFrom<u8> for LockKind {
    type Error = String;
    fn try_from(b: u8) -> std::result::Result<Self, String> {
        match b {
            0 => Ok(LockKind::Backup),
            1 => Ok(LockKind::Prune),
            _ => Err(format!("unknown lock kind {b}")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub kind: LockKind,
    pub host: String,
    pub username: String,
    pub pid: u32,
    pub created_ns: i64,
    /// The kernel's id of the boot the process runs in: with `pid`, lets
    /// the same machine tell that a lock's process has died.
    pub boot_id: String,
}

/// This boot's id, or "" where the system does not say.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl Lock {
    /// True only when this lock's process provably no longer runs: same
    /// boot of this machine, no such process. Anything else is alive.
    fn holder_is_dead(&self) -> bool {
        let boot = boot_id();
        if boot.is_empty() || self.boot_id != boot || self.pid == std::process::id() {
            return false;
        }
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        matches!(
            nix::sys::signal::kill(pid, None),
            Err(nix::errno::Errno::ESRCH)
        )
    }
}

/// A lock found on storage and still live.
#[derive(Clone, Debug)]
pub struct LiveLock {
    pub name: String,
    /// `None` when the lock cannot be decoded; it is then treated as a
    /// backup, the cautious reading.
    pub lock: Option<Lock>,
    pub modified_ns: i64,
}

impl LiveLock {
    pub fn kind(&self) -> LockKind {
        self.lock
            .as_ref()
            .map(|l| l.kind)
            .unwrap_or(LockKind::Backup)
    }

    pub fn describe(&self) -> String {
        match &self.lock {
            Some(l) => format!("{} (pid {}) on {}", l.username, l.pid, l.host),
            None => self.name.clone(),
        }
    }
}

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

struct Heartbeat {
    stop: Mutex<bool>,
    wake: Condvar,
    /// Wall-clock time of the last successful write. Wall clock on purpose:
    /// a laptop that slept does not count the sleep on a monotonic clock.
    last_ok_ns: AtomicI64,
    lapsed: AtomicBool,
}

/// Held while a backup or prune runs; refreshed in the background and
/// deleted on drop.
pub struct LockGuard {
    backend: Arc<dyn Backend>,
    name: String,
    bytes: Bytes,
    beat: Arc<Heartbeat>,
    thread: Option<JoinHandle<()>>,
}

impl LockGuard {
    pub fn acquire(repo: &Repository, kind: LockKind) -> Result<LockGuard> {
        let lock = Lock {
            kind,
            host: crate::sys::hostname(),
            username: crate::sys::username(),
            pid: std::process::id(),
            created_ns: crate::repo::now_ns(),
            boot_id: boot_id(),
        };
        let bytes = Bytes::from(codec::seal(Kind::Lock, repo.sealer(), &lock));
        let name = format!("locks/{}", Id::random());
        let backend = repo.backend().clone();
        backend.write(&name, bytes.clone())?;
        let beat = Arc::new(Heartbeat {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            last_ok_ns: AtomicI64::new(wall_ns()),
            lapsed: AtomicBool::new(false),
        });
        let thread = {
            let (backend, name, bytes, beat) =
                (backend.clone(), name.clone(), bytes.clone(), beat.clone());
            std::thread::spawn(move || {
                let mut stopped = beat.stop.lock().unwrap();
                loop {
                    // Checked before waiting too: a guard dropped before this
                    // thread first took the mutex has already notified, and
                    // waiting then held the command's exit for a heartbeat.
                    if *stopped {
                        return;
                    }
                    stopped = beat.wake.wait_timeout(stopped, HEARTBEAT).unwrap().0;
                    if *stopped {
                        return;
                    }
                    if backend.write(&name, bytes.clone()).is_ok() {
                        let now = wall_ns();
                        if now - beat.last_ok_ns.swap(now, Ordering::Relaxed)
                            > EXPIRY.as_nanos() as i64
                        {
                            beat.lapsed.store(true, Ordering::Relaxed);
                        }
                    }
                }
            })
        };
        Ok(LockGuard {
            backend,
            name,
            bytes,
            beat,
            thread: Some(thread),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the lock may have expired at some point: the heartbeat failed
    /// for too long, or the machine slept. Then others may have treated this
    /// command as dead, and it must verify what it relied on.
    pub fn lapsed(&self) -> bool {
        self.beat.lapsed.load(Ordering::Relaxed)
            || wall_ns() - self.beat.last_ok_ns.load(Ordering::Relaxed)
                > (EXPIRY - HEARTBEAT).as_nanos() as i64
    }

    /// Rewrites the lock now and returns the store's current time, read
    /// from the lock's own modification time.
    pub fn store_now(&self) -> Result<i64> {
        self.backend.write(&self.name, self.bytes.clone())?;
        self.beat.last_ok_ns.store(wall_ns(), Ordering::Relaxed);
        let own = self
            .backend
            .list("locks/")?
            .into_iter()
            .find(|o| o.name == self.name)
            .ok_or_else(|| {
                Error::Backend(format!(
                    "lock {} vanished right after it was written",
                    self.name
                ))
            })?;
        Ok(own.modified_ns)
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        *self.beat.stop.lock().unwrap() = true;
        self.beat.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.backend.delete(&self.name);
    }
}

/// Locks refreshed within [`EXPIRY`] of `now` (the store's clock) whose
/// process is not known to be dead. Dead and expired locks are removed, so
/// nobody ever has to.
pub fn live_locks(repo: &Repository, now: i64) -> Result<Vec<LiveLock>> {
    let mut out = Vec::new();
    for o in repo.backend().list("locks/")? {
        let lock = repo.backend().read(&o.name).ok().and_then(|b| {
            codec::open::<Lock, { codec::MAX_SMALL_OBJECT }>(Kind::Lock, repo.sealer(), &b).ok()
        });
        let expired = o.modified_ns < now - EXPIRY.as_nanos() as i64;
        if expired || lock.as_ref().is_some_and(Lock::holder_is_dead) {
            let _ = repo.backend().delete(&o.name);
            continue;
        }
        out.push(LiveLock {
            name: o.name,
            lock,
            modified_ns: o.modified_ns,
        });
    }
    Ok(out)
}
