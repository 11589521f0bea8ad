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
        let mut repo = open(env);
        std::thread::spawn(move || {
            let opts = CreateOptions {
                paths: vec![src],
                ..Default::default()
            };
            create(&mut repo, &opts, &*gate).map(|r| r.snapshot_id)
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
    env.snap()
        .args(["prune", "--keep-last", "1"])
        .assert()
        .success();
    env.snap().args(["check", "--read-data"]).assert().success();
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);
}
