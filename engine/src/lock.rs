//! Locks with expiry: every backup and prune announces itself with an
//! object under `locks/` that it refreshes while it runs and deletes when it
//! ends. Nothing ever waits on a lock and no one needs to remove one by
//! hand: a lock not refreshed for [`EXPIRY`] is dead. Prune reads them to
//! decide when deleting data is safe (format-spec.md section 10).
//!
//! A device that may not delete (`--no-delete`, a profile's `no_delete`,
//! or a store that answers the delete of its own lock with 403) cannot
//! remove its lock when it ends. It overwrites it with a released lock
//! instead ([`LockKind::Released`]): nobody waits for it, `check` names it
//! as left by a no-delete device, and the next device that may delete
//! removes it.

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
use crate::object::Object;
use crate::repo::Repository;

/// How often a running command rewrites its lock.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(5 * 60);
/// A lock older than this, by the store's clock, belongs to a command that
/// crashed or lost its connection.
pub(crate) const EXPIRY: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum LockKind {
    Backup,
    Prune,
    /// The command ended on a device that may not delete: the lock is
    /// left for a device with full rights to remove, and holds back no one.
    Released,
}

impl From<LockKind> for u8 {
    fn from(k: LockKind) -> u8 {
        match k {
            LockKind::Backup => 0,
            LockKind::Prune => 1,
            LockKind::Released => 2,
        }
    }
}

impl TryFrom<u8> for LockKind {
    type Error = String;
    fn try_from(b: u8) -> std::result::Result<Self, String> {
        match b {
            0 => Ok(LockKind::Backup),
            1 => Ok(LockKind::Prune),
            2 => Ok(LockKind::Released),
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
    /// The kernel's id of the boot the process runs in.
    pub boot_id: String,
    /// The PID namespace the process runs in (`/proc/self/ns/pid`), "" if
    /// unknown. Containers and `unshare -p` share the boot id but not the
    /// namespace: a pid is only meaningful inside its own.
    pub pid_namespace: String,
    /// The holder's heartbeat lapsed (it failed for too long, or the machine
    /// slept or the process was stopped), so others may have treated it as
    /// dead. Prune then empties no trash record while this lock is live,
    /// whatever locks the record names.
    pub lapsed: bool,
}

/// A lock body of format version 1, written by an older snap.
#[derive(Deserialize)]
struct LockV1 {
    kind: LockKind,
    host: String,
    username: String,
    pid: u32,
    created_ns: i64,
    boot_id: String,
}

impl Lock {
    /// Opens a lock envelope of either format version; the version too.
    pub fn open(sealer: &codec::Sealer, bytes: &[u8]) -> Result<(u8, Lock)> {
        const LIMIT: usize = codec::MAX_SMALL_OBJECT;
        let (version, body) = codec::open_versioned(Kind::Lock, sealer, bytes, LIMIT)?;
        if version == 1 {
            let v1: LockV1 = codec::decode::<_, LIMIT>("lock", &body)?;
            return Ok((
                1,
                Lock {
                    kind: v1.kind,
                    host: v1.host,
                    username: v1.username,
                    pid: v1.pid,
                    created_ns: v1.created_ns,
                    boot_id: v1.boot_id,
                    pid_namespace: String::new(),
                    lapsed: false,
                },
            ));
        }
        Ok((version, codec::decode::<Lock, LIMIT>("lock", &body)?))
    }

    /// True only when this lock's process provably no longer runs: same
    /// host, same boot, same PID namespace, and no such process there.
    /// Anything else is alive until it expires. Comparing the boot id alone
    /// let a prune in another PID namespace (`unshare -p`) find a paused
    /// backup's pid missing, delete its lock and then its packs.
    fn holder_is_dead(&self) -> bool {
        let here = crate::sys::ProcessPlace::current();
        if here.boot_id.is_empty()
            || here.pid_namespace.is_empty()
            || self.boot_id != here.boot_id
            || self.pid_namespace != here.pid_namespace
            || self.host != crate::sys::hostname()
            || self.pid == std::process::id()
        {
            return false;
        }
        !crate::sys::process_exists(self.pid)
    }
}

/// A lock found on storage and still live.
#[derive(Clone, Debug)]
pub(crate) struct LiveLock {
    pub name: String,
    /// The lock's id, from its name (`locks/<id>`), if the name is one.
    pub id: Option<Id>,
    /// `None` when the lock cannot be decoded; it is then treated as a
    /// backup, the cautious reading.
    pub lock: Option<Lock>,
    /// The lock's format version (0 when it cannot be decoded).
    pub version: u8,
}

impl LiveLock {
    pub fn kind(&self) -> LockKind {
        self.lock
            .as_ref()
            .map(|l| l.kind)
            .unwrap_or(LockKind::Backup)
    }

    /// A backup whose index files prune cannot tell apart: one that cannot
    /// be decoded, or one by an older snap, whose index files do not name
    /// their writer.
    pub(crate) fn is_unknown_backup(&self) -> bool {
        self.kind() == LockKind::Backup && self.version < codec::FORMAT_VERSION
    }

    /// Whether its holder may rely on data that prune treated as free: a
    /// lapsed backup, or a backup prune cannot read.
    pub(crate) fn blocks_all_trash(&self) -> bool {
        self.is_unknown_backup()
            || (self.kind() == LockKind::Backup && self.lock.as_ref().is_some_and(|l| l.lapsed))
    }

    pub fn describe(&self) -> String {
        match &self.lock {
            Some(l) => format!("{} (pid {}) on {}", l.username, l.pid, l.host),
            None => self.name.clone(),
        }
    }
}

/// What happened to a lock when its command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Deleted, as every command's lock is where the key may delete.
    Deleted,
    /// Overwritten with a released lock, named here, that a device with
    /// full rights removes: this device may not delete.
    LeftReleased(String),
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

impl Heartbeat {
    /// No write for long enough that the lock may have expired before the
    /// next one lands.
    fn may_have_expired(&self) -> bool {
        self.gap_may_expire(wall_ns())
    }

    /// Whether, at `now`, the last successful write is old enough that the
    /// lock may expire before the next one lands.
    fn gap_may_expire(&self, now: i64) -> bool {
        now - self.last_ok_ns.load(Ordering::Relaxed) > (EXPIRY - HEARTBEAT).as_nanos() as i64
    }
}

/// Held while a backup or prune runs; refreshed in the background and
/// deleted on drop.
pub struct LockGuard {
    backend: Arc<dyn Backend>,
    id: Id,
    name: String,
    /// The lock as written now, and as written once the heartbeat lapsed.
    bytes: Arc<Mutex<Bytes>>,
    lapsed_bytes: Bytes,
    beat: Arc<Heartbeat>,
    thread: Option<JoinHandle<()>>,
    /// The lock as released by a device that may not delete.
    released_bytes: Bytes,
    /// This device may not delete: the lock is released, not deleted, and
    /// dead locks of others are left for a device that may.
    no_delete: bool,
    /// Set once [`LockGuard::release`] has ended the lock.
    ended: bool,
}

impl LockGuard {
    pub fn acquire(repo: &Repository, kind: LockKind) -> Result<LockGuard> {
        Self::acquire_as(repo, kind, false)
    }

    /// A lock for a device that may not delete (`no_delete`), or may.
    pub fn acquire_as(repo: &Repository, kind: LockKind, no_delete: bool) -> Result<LockGuard> {
        let place = crate::sys::ProcessPlace::current();
        let mut lock = Lock {
            kind,
            host: crate::sys::hostname(),
            username: crate::sys::username(),
            pid: std::process::id(),
            created_ns: crate::repo::now_ns(),
            boot_id: place.boot_id,
            pid_namespace: place.pid_namespace,
            lapsed: false,
        };
        let bytes = Bytes::from(codec::seal(Kind::Lock, repo.sealer(), &lock));
        lock.lapsed = true;
        let lapsed_bytes = Bytes::from(codec::seal(Kind::Lock, repo.sealer(), &lock));
        let released_bytes = Bytes::from(codec::seal(
            Kind::Lock,
            repo.sealer(),
            &Lock {
                kind: LockKind::Released,
                ..lock.clone()
            },
        ));
        let id = Id::random();
        let name = Object::Lock.name(&id);
        let backend = repo.backend().clone();
        let started = wall_ns();
        backend.write(&name, bytes.clone())?;
        let bytes = Arc::new(Mutex::new(bytes));
        let beat = Arc::new(Heartbeat {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            last_ok_ns: AtomicI64::new(started),
            lapsed: AtomicBool::new(false),
        });
        let thread = {
            let (backend, name, bytes, lapsed_bytes, beat) = (
                backend.clone(),
                name.clone(),
                bytes.clone(),
                lapsed_bytes.clone(),
                beat.clone(),
            );
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
                    // One reading of the clock serves both the lapse test
                    // and the write's time: a pause between two readings
                    // would hide the gap behind a fresh write. It is taken
                    // before the write, since a slow write may land with
                    // the store's time of its start.
                    let started = wall_ns();
                    if beat.gap_may_expire(started) {
                        // Say so in the lock from now on, before anyone
                        // relies on it.
                        beat.lapsed.store(true, Ordering::Relaxed);
                        *bytes.lock().unwrap() = lapsed_bytes.clone();
                    }
                    let current = bytes.lock().unwrap().clone();
                    if backend.write(&name, current).is_ok() {
                        beat.last_ok_ns.store(started, Ordering::Relaxed);
                    }
                }
            })
        };
        Ok(LockGuard {
            backend,
            id,
            name,
            bytes,
            lapsed_bytes,
            beat,
            thread: Some(thread),
            released_bytes,
            no_delete,
            ended: false,
        })
    }

    /// Whether this device may not delete: it said so, or the store
    /// refused to delete its lock.
    pub(crate) fn no_delete(&self) -> bool {
        self.no_delete
    }

    /// Ends the lock: deletes it, or, where this device may not delete
    /// (asked for, or a 403 answer to the delete), overwrites it with a
    /// released lock for a device with full rights to remove. Any other
    /// failure to delete is left to expiry, as before.
    pub fn release(mut self) -> Result<Ending> {
        self.stop_heartbeat();
        self.ended = true;
        if !self.no_delete {
            match self.backend.delete(&self.name) {
                Err(Error::DeleteDenied { .. }) => self.no_delete = true,
                _ => return Ok(Ending::Deleted),
            }
        }
        self.backend
            .write(&self.name, self.released_bytes.clone())?;
        Ok(Ending::LeftReleased(self.name.clone()))
    }

    fn stop_heartbeat(&mut self) {
        *self.beat.stop.lock().unwrap() = true;
        self.beat.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lock's id: index files a backup writes name it as their writer,
    /// and trash records name the backup locks they wait for.
    pub fn id(&self) -> Id {
        self.id
    }

    /// Whether the lock may have expired at some point: the heartbeat failed
    /// for too long, or the machine slept. Then others may have treated this
    /// command as dead, and it must verify what it relied on.
    pub(crate) fn lapsed(&self) -> bool {
        self.beat.lapsed.load(Ordering::Relaxed) || self.beat.may_have_expired()
    }

    /// Marks the lock lapsed on storage now (see [`Lock::lapsed`]).
    pub(crate) fn mark_lapsed(&self) -> Result<()> {
        self.beat.lapsed.store(true, Ordering::Relaxed);
        *self.bytes.lock().unwrap() = self.lapsed_bytes.clone();
        self.store_now().map(|_| ())
    }

    /// Rewrites the lock now and returns the store's current time, read
    /// from the lock's own modification time.
    pub(crate) fn store_now(&self) -> Result<i64> {
        let current = self.bytes.lock().unwrap().clone();
        let started = wall_ns();
        self.backend.write(&self.name, current)?;
        self.beat.last_ok_ns.store(started, Ordering::Relaxed);
        let own = self
            .backend
            .list(&Object::Lock.prefix())?
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
        self.stop_heartbeat();
        if self.ended {
            return;
        }
        if self.no_delete {
            let _ = self.backend.write(&self.name, self.released_bytes.clone());
        } else if let Err(Error::DeleteDenied { .. }) = self.backend.delete(&self.name) {
            let _ = self.backend.write(&self.name, self.released_bytes.clone());
        }
    }
}

/// Locks refreshed within [`EXPIRY`] of `now` (the store's clock) whose
/// process is not known to be dead. Dead and expired locks are removed, so
/// nobody ever has to, unless `own` is held by a device that may not
/// delete: it leaves them for one that may.
///
/// A released lock counts as live until it expires like any other: its
/// body does not name the lock it was written as, so whoever may write to
/// `locks/` (a no-delete key, the storage) could copy one over a running
/// backup's lock, and a prune that believed it would overlook that backup.
pub(crate) fn live_locks(repo: &Repository, now: i64, own: &LockGuard) -> Result<Vec<LiveLock>> {
    let mut out = Vec::new();
    for o in repo.backend().list(&Object::Lock.prefix())? {
        let opened = repo
            .backend()
            .read(&o.name, codec::MAX_SMALL_OBJECT as u64)
            .ok()
            .and_then(|b| Lock::open(repo.sealer(), &b).ok());
        let expired = o.modified_ns < now - EXPIRY.as_nanos() as i64;
        if expired || opened.as_ref().is_some_and(|(_, l)| l.holder_is_dead()) {
            if !own.no_delete() {
                let _ = repo.backend().delete(&o.name);
            }
            continue;
        }
        let (version, lock) = match opened {
            Some((v, l)) => (v, Some(l)),
            None => (0, None),
        };
        out.push(LiveLock {
            id: o
                .name
                .strip_prefix(&Object::Lock.prefix())
                .and_then(|n| Id::from_hex(n).ok()),
            name: o.name,
            lock,
            version,
        });
    }
    Ok(out)
}

/// A lock a device that may not delete left released, as `check`
/// reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReleasedLock {
    pub name: String,
    pub host: String,
    pub username: String,
    /// When the command that held it started (Unix nanoseconds).
    pub created_ns: i64,
}

/// The released locks on storage, read without deleting anything: `check`
/// tells them from live ones.
pub(crate) fn released_locks(repo: &Repository) -> Result<Vec<ReleasedLock>> {
    let mut out = Vec::new();
    for o in repo.backend().list(&Object::Lock.prefix())? {
        let Ok(bytes) = repo.backend().read(&o.name, codec::MAX_SMALL_OBJECT as u64) else {
            continue;
        };
        if let Ok((_, l)) = Lock::open(repo.sealer(), &bytes)
            && l.kind == LockKind::Released
        {
            out.push(ReleasedLock {
                name: o.name,
                host: l.host,
                username: l.username,
                created_ns: l.created_ns,
            });
        }
    }
    Ok(out)
}

/// A prune lock, held by no one else: `prune` and `repair` each decide
/// from one view of the index, and two at once would undo each other.
pub(crate) fn acquire_sole_prune(repo: &Repository) -> Result<LockGuard> {
    let lock = LockGuard::acquire(repo, LockKind::Prune)?;
    let now = lock.store_now()?;
    if let Some(other) = live_locks(repo, now, &lock)?
        .into_iter()
        .find(|l| l.kind() == LockKind::Prune && l.name != lock.name())
    {
        return Err(Error::Locked(format!(
            "another prune is running, or a repair ({}); try again when it has finished \
             (its lock expires by itself within {} minutes if it crashed)",
            other.describe(),
            EXPIRY.as_secs() / 60
        )));
    }
    Ok(lock)
}

/// Waits until no prune other than `own` holds a live lock, for at most
/// `limit`: a backup whose lock lapsed must not write a snapshot while a
/// prune that may have read the repository before the lapse was marked is
/// still deciding what to delete.
pub(crate) fn wait_for_prunes(repo: &Repository, own: &LockGuard, limit: Duration) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        let now = own.store_now()?;
        let prune = live_locks(repo, now, own)?
            .into_iter()
            .find(|l| l.kind() == LockKind::Prune && l.name != own.name());
        let Some(prune) = prune else {
            return Ok(());
        };
        if start.elapsed() >= limit {
            return Err(Error::Locked(format!(
                "this backup's lock lapsed and a prune ({}) is still running; no snapshot was \
                 written, run the backup again",
                prune.describe()
            )));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::StoreBackend;
    use crate::crypto::KdfParams;
    use crate::repo::InitOptions;

    /// A released lock's body does not name its lock: copied over a
    /// running backup's lock (by a no-delete key or the storage), it must
    /// not make a prune overlook that backup.
    #[test]
    fn a_released_lock_copied_over_a_running_backups_lock_keeps_it_live() {
        let dir = tempfile::tempdir().unwrap();
        let backend: Arc<dyn crate::backend::Backend> =
            Arc::new(StoreBackend::local(dir.path(), true).unwrap());
        let mut o = InitOptions::new(Some("pw".into()));
        o.kdf = KdfParams::new(1024, 1, 1);
        let repo = Repository::init(backend.clone(), o).unwrap();
        let running = LockGuard::acquire(&repo, LockKind::Backup).unwrap();
        let done = LockGuard::acquire_as(&repo, LockKind::Backup, true).unwrap();
        let done_name = done.name().to_string();
        done.release().unwrap();
        let released = backend.read(&done_name, 1 << 20).unwrap();
        backend.write(running.name(), released).unwrap();
        let prune = LockGuard::acquire(&repo, LockKind::Prune).unwrap();
        let live: Vec<String> = live_locks(&repo, crate::repo::now_ns(), &prune)
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert!(live.contains(&running.name().to_string()), "{live:?}");
    }
}
