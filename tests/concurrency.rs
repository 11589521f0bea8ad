//! Several devices at once, and crashes: backups racing prune, locks that
//! expire by themselves, and commands killed at any moment.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::*;
use snap_engine::Repository;
use snap_engine::backend::StoreBackend;
use snap_engine::commands::create::{CreateOptions, create};
use snap_engine::lock::{LockGuard, LockKind};
use snap_engine::progress::Progress;

/// The engine's view of the test's repository, local or on Garage.
fn open(env: &Env) -> Repository {
    let backend = if env.repo.starts_with("s3://") {
        let endpoint = env
            .vars
            .iter()
            .find(|(k, _)| k == "AWS_ENDPOINT_URL")
            .map(|(_, v)| v.as_str())
            .unwrap();
        Arc::new(StoreBackend::s3(&common::garage::options(&env.repo, endpoint)).unwrap())
    } else {
        Arc::new(StoreBackend::local(Path::new(&env.repo), false).unwrap())
    };
    Repository::open(backend, &|| Ok(PASSWORD.to_string())).unwrap()
}

/// Holds a backup at its first file until released.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, bool)>, // (reached, released)
    cv: Condvar,
}

impl Gate {
    fn wait_reached(&self) {
        let mut s = self.state.lock().unwrap();
        while !s.0 {
            s = self.cv.wait(s).unwrap();
        }
    }

    fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

impl Progress for Gate {
    fn item(&self, _: &Path) {
        let mut s = self.state.lock().unwrap();
        s.0 = true;
        self.cv.notify_all();
        while !s.1 {
            s = self.cv.wait(s).unwrap();
        }
    }
}

fn source(env: &Env) -> std::path::PathBuf {
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), random_bytes(1, 6 << 20)).unwrap();
    std::fs::write(src.join("b.bin"), random_bytes(2, 3 << 20)).unwrap();
    std::fs::write(src.join("c.txt"), b"small").unwrap();
    src
}

#[test]
fn a_prune_during_a_backup_loses_nothing_the_backup_needs() {
    prune_during_backup(&Env::new());
}

#[test]
fn a_prune_during_a_backup_on_one_bucket_loses_nothing() {
    prune_during_backup(&Env::s3("race"));
}

/// A backup held at its first file while a prune runs: the prune may not
/// delete what the backup relies on, and the backup's snapshot is whole.
fn prune_during_backup(env: &Env) {
    env.init();
    let src = source(env);
    // The only snapshot is forgotten: all its packs are garbage to prune,
    // yet the backup below deduplicates against exactly those packs.
    let first = env.create(&[&src], &[]);
    env.snap()
        .args(["forget", first["snapshot_id"].as_str().unwrap()])
        .assert()
        .success();

    let gate = Arc::new(Gate::default());
    let backup = {
        let (gate, src) = (gate.clone(), src.clone());
        let repo = open(env);
        std::thread::spawn(move || {
            let opts = CreateOptions {
                paths: vec![src],
                ..Default::default()
            };
            create(&repo, &opts, &*gate).map(|r| r.snapshot_id)
        })
    };
    gate.wait_reached();
    let pruned = env.json(&["prune"]);
    assert_eq!(
        pruned["packs_deleted"], 0,
        "nothing may be deleted while a backup runs: {pruned}"
    );
    assert!(pruned["packs_deferred"].as_u64().unwrap() > 0, "{pruned}");
    gate.release();
    let id = backup.join().unwrap().expect("the backup must succeed");

    env.snap().args(["check", "--read-data"]).assert().success();
    let restored = env.restore(&id.to_hex(), &src, "out");
    assert_same_tree(&src, &restored);
    // With the backup done, a prune keeps what its snapshot needs and the
    // repository stays whole.
    env.json(&["prune"]);
    env.snap().args(["check", "--read-data"]).assert().success();
    let restored = env.restore(&id.to_hex(), &src, "out2");
    assert_same_tree(&src, &restored);
}

#[test]
fn live_backup_locks_defer_deletion_and_stale_ones_do_not() {
    let env = Env::new();
    env.init();
    let src = source(&env);
    let first = env.create(&[&src], &[]);
    env.snap()
        .args(["forget", first["snapshot_id"].as_str().unwrap()])
        .assert()
        .success();

    let repo = open(&env);
    let lock = LockGuard::acquire(&repo, LockKind::Backup).unwrap();
    let v = env.json(&["prune"]);
    assert_eq!(v["packs_deleted"], 0);
    assert!(v["packs_deferred"].as_u64().unwrap() > 0);
    let size_with_trash = env.repo_size();

    // The backup "crashed" an hour ago: its lock is stale and ignored.
    let lock_file = Path::new(&env.repo).join(lock.name());
    let hour_ago = filetime::FileTime::from_unix_time(chrono::Utc::now().timestamp() - 3600, 0);
    filetime::set_file_mtime(&lock_file, hour_ago).unwrap();
    let v = env.json(&["prune"]);
    assert!(v["packs_deleted"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["packs_deferred"], 0);
    assert!(env.repo_size() < size_with_trash / 2);
    env.snap().args(["check"]).assert().success();
    drop(lock);
}

#[test]
fn a_second_prune_is_refused_while_one_runs() {
    let env = Env::new();
    env.init();
    let repo = open(&env);
    let _running = LockGuard::acquire(&repo, LockKind::Prune).unwrap();
    let out = env.snap().arg("prune").output().unwrap();
    assert_eq!(out.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another prune is running"));
}

#[test]
fn a_killed_backup_leaves_a_sound_repository_and_the_next_one_resumes() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..12u64 {
        std::fs::write(
            src.join(format!("f{i:02}.bin")),
            random_bytes(500 + i, 16 << 20),
        )
        .unwrap();
    }
    let mut child = env
        .device_std("x")
        .arg("create")
        .arg(&src)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once an index checkpoint exists (some packs are safely in).
    let index_dir = Path::new(&env.repo).join("index");
    let deadline = Instant::now() + Duration::from_secs(300);
    while std::fs::read_dir(&index_dir)
        .map(|d| d.count())
        .unwrap_or(0)
        == 0
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup finished before it could be killed"
        );
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        env.json(&["snapshots"]).as_array().unwrap().is_empty(),
        "no snapshot for a killed backup"
    );
    env.snap().args(["check", "--read-data"]).assert().success();
    let total = 12u64 * (16 << 20);
    let v = env.create(&[&src], &[]);
    let added = v["bytes_added"].as_u64().unwrap();
    assert!(
        added < total * 9 / 10,
        "the rerun uploaded {added} of {total} bytes: it did not reuse the checkpointed packs"
    );
    env.snap().args(["check", "--read-data"]).assert().success();
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);
}

#[test]
fn a_prune_killed_at_any_moment_never_loses_needed_data() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("stable.bin"), random_bytes(7, 2 << 20)).unwrap();
    let mut delay_ms = 0u64;
    for round in 0..8u64 {
        // Churn: a new file per round, the oldest snapshots forgotten.
        std::fs::write(src.join("churn.bin"), random_bytes(1000 + round, 3 << 20)).unwrap();
        env.create(&[&src], &[]);
        let mut child = env
            .device_std("x")
            .args(["prune", "--keep-last", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        delay_ms += 15;
        // Whatever the moment, every remaining snapshot is whole.
        let out = env.snap().args(["check", "--read-data"]).output().unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A prune that runs to the end finishes the job.
    prune_check_and_restore(&env, &src);
}

/// Files of fresh random data, `n` of 16 MiB each, so that a backup of
/// them writes several checkpoint index files (one per 64 MiB).
fn fresh_data(env: &Env, name: &str, seed: u64, n: u64) -> std::path::PathBuf {
    let dir = env.path(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("f{i:02}.bin")),
            random_bytes(seed * 100 + i, 16 << 20),
        )
        .unwrap();
    }
    dir
}

fn index_count(env: &Env) -> usize {
    env.index_files().len()
}

/// Starts `snap create` of `paths` in the background and stops it with
/// SIGSTOP once one of its checkpoint index files has landed.
fn backup_paused_after_a_checkpoint(env: &Env, paths: &[&Path]) -> std::process::Child {
    let before = index_count(env);
    let mut child = env
        .device_std("backup")
        .arg("create")
        .args(paths)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while index_count(env) == before {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup finished before a checkpoint could be caught"
        );
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(&child, nix::sys::signal::Signal::SIGSTOP);
    child
}

fn signal(child: &std::process::Child, s: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), s).unwrap();
}

/// Resumes a paused backup and returns whether it succeeded, and its stderr.
fn resume(mut child: std::process::Child) -> (bool, String) {
    signal(&child, nix::sys::signal::Signal::SIGCONT);
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    (child.wait().unwrap().success(), err)
}

/// The old data forgotten (its packs are garbage to prune, though the next
/// backup deduplicates against them), and a paused backup of it and new
/// data: what any prune now does must leave that backup whole.
fn garbage_and_a_paused_backup(env: &Env) -> (std::process::Child, Vec<std::path::PathBuf>) {
    env.init();
    let old = source(env);
    let first = env.create(&[&old], &[]);
    env.snap()
        .args(["forget", first["snapshot_id"].as_str().unwrap()])
        .assert()
        .success();
    let new = fresh_data(env, "new", 1, 8);
    let child = backup_paused_after_a_checkpoint(env, &[&old, &new]);
    (child, vec![old, new])
}

fn assert_backup_whole(env: &Env, sources: &[std::path::PathBuf]) {
    let out = env.snap().args(["check", "--read-data"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (i, src) in sources.iter().enumerate() {
        let restored = env.restore("latest", src, &format!("out{i}"));
        assert_same_tree(src, &restored);
    }
}

/// Reproduction (0): `snap create` of new data, `snap prune --keep-last 1`
/// started at a delay swept across the backup's first second. The prune
/// once rewrote the backup's checkpoint index without its blobs, and the
/// backup then exited 0 with a snapshot whose blobs were unindexed.
#[test]
fn a_prune_racing_a_large_backup_never_leaves_its_snapshot_incomplete() {
    let env = Env::new();
    env.init();
    for (round, delay_ms) in [0u64, 150, 300, 450, 600, 800, 1000]
        .into_iter()
        .enumerate()
    {
        let src = fresh_data(&env, "src", 10 + round as u64, 12);
        let mut backup = env
            .device_std("a")
            .arg("create")
            .arg(&src)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let pruned = env.json(&["prune", "--keep-last", "1"]);
        let mut err = String::new();
        std::io::Read::read_to_string(backup.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(
            backup.wait().unwrap().success(),
            "round {round}: the backup failed: {err}"
        );
        let out = env.snap().args(["check", "--read-data"]).output().unwrap();
        assert!(
            out.status.success(),
            "round {round} (prune after {delay_ms} ms: {pruned}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let src = env.path("src");
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);
}

/// Reproduction (a): a prune in another PID namespace found the paused
/// backup's pid missing, took its lock for dead, and deleted its packs.
#[test]
fn a_prune_in_another_pid_namespace_spares_a_paused_backup() {
    let env = Env::new();
    let (backup, sources) = garbage_and_a_paused_backup(&env);
    let out = env
        .snap_via(&["unshare", "-p", "-f", "--mount-proc"])
        .args(["--json", "prune"])
        .output()
        .unwrap();
    let (ok, err) = resume(backup);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pruned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pruned["packs_deleted"], 0, "{pruned}");
    assert!(ok, "the backup failed: {err}");
    assert_backup_whole(&env, &sources);
}

/// Reproduction (b): trash records older than 24 hours were emptied while
/// the backup that needed their packs was live.
#[test]
fn old_trash_waits_for_the_backups_it_names() {
    let env = Env::new();
    let (backup, sources) = garbage_and_a_paused_backup(&env);
    let first = env.json(&["prune"]);
    assert!(first["packs_deferred"].as_u64().unwrap() > 0, "{first}");
    let day_ago = filetime::FileTime::from_unix_time(chrono::Utc::now().timestamp() - 25 * 3600, 0);
    for f in std::fs::read_dir(Path::new(&env.repo).join("trash")).unwrap() {
        filetime::set_file_mtime(f.unwrap().path(), day_ago).unwrap();
    }
    let second = env.json(&["prune"]);
    assert_eq!(second["packs_deleted"], 0, "{second}");
    let (ok, err) = resume(backup);
    assert!(ok, "the backup failed: {err}");
    assert_backup_whole(&env, &sources);
    // Once the backup has ended, the trash empties: the packs it reused
    // were put back, so none is deleted.
    let third = env.json(&["prune"]);
    assert_eq!(third["packs_deferred"], 0, "{third}");
    // (The local store removes a folder once it is empty.)
    let trash = std::fs::read_dir(Path::new(&env.repo).join("trash"));
    assert_eq!(trash.map(|d| d.count()).unwrap_or(0), 0, "{third}");
    assert_backup_whole(&env, &sources);
}

/// A backup paused for longer than its lock lives (simulated by ageing
/// its lock): a prune rightly treats it as dead and deletes its packs. The
/// backup, resumed, must fail with no snapshot rather than write one with
/// holes.
#[test]
fn a_backup_whose_lock_expired_across_a_prune_fails_cleanly() {
    let env = Env::new();
    let (backup, _) = garbage_and_a_paused_backup(&env);
    let hour_ago = filetime::FileTime::from_unix_time(chrono::Utc::now().timestamp() - 3600, 0);
    for f in std::fs::read_dir(Path::new(&env.repo).join("locks")).unwrap() {
        filetime::set_file_mtime(f.unwrap().path(), hour_ago).unwrap();
    }
    let pruned = env.json(&["prune"]);
    assert!(pruned["packs_deleted"].as_u64().unwrap() > 0, "{pruned}");
    let (ok, err) = resume(backup);
    assert!(!ok, "the backup claimed success over deleted packs");
    assert!(err.contains("no snapshot was written"), "{err}");
    assert!(env.json(&["snapshots"]).as_array().unwrap().is_empty());
    env.snap().args(["check"]).assert().success();
}

/// A snapshot needs a pack that left the index and waits in the trash (a
/// backup wrote the snapshot after a prune took the pack out). The next
/// prune must keep that data, and keep it under a new pack id: another
/// prune, paused after deciding to delete the old pack, may still do so.
#[test]
fn phase_two_copies_needed_blobs_out_of_trashed_packs() {
    needed_data_in_the_trash_is_copied(true);
}

/// The same, after a prune that crashed between writing the replacement
/// index files and deleting the old ones: the old files still name the
/// trashed packs, and must not bring them back under their old ids.
#[test]
fn a_trashed_pack_named_only_by_a_superseded_file_is_not_revived() {
    needed_data_in_the_trash_is_copied(false);
}

fn needed_data_in_the_trash_is_copied(old_files_deleted: bool) {
    use snap_engine::index::IndexFile;
    use snap_engine::trash::{self, TrashRecord};
    let env = Env::new();
    env.init();
    let src = source(&env);
    env.create(&[&src], &[]);
    let repo = open(&env);
    let files = repo.read_index_files().unwrap();
    let packs: Vec<_> = files.iter().flat_map(|(_, f)| f.packs.clone()).collect();
    let old_ids: Vec<_> = packs.iter().map(|p| p.id).collect();
    // The packs leave the index, as phase 1 of a prune leaves them (the
    // files that named them replaced, then deleted), and wait in a trash
    // record that waits for no lock.
    repo.write_index(&IndexFile {
        supersedes: files.iter().map(|(id, _)| *id).collect(),
        packs: vec![],
        writer: None,
    })
    .unwrap();
    for (id, _) in files.iter().filter(|_| old_files_deleted) {
        std::fs::remove_file(Path::new(&env.repo).join("index").join(id.to_hex())).unwrap();
    }
    trash::write(
        &repo,
        &TrashRecord {
            packs,
            waits_for: vec![],
        },
    )
    .unwrap();
    let v = env.json(&["prune"]);
    assert!(v["packs_restored"].as_u64().unwrap() > 0, "{v}");
    let now: std::collections::HashSet<_> = env
        .pack_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for id in &old_ids {
        assert!(
            !now.contains(&id.to_hex()),
            "pack {id:?} came back under its old id"
        );
    }
    assert_backup_whole(&env, &[src]);
}
