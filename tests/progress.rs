//! What a backup tells its progress display: the scanner's total, and
//! bytes that add up to it, on a first backup and on an unchanged rerun.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::*;
use snap_engine::Repository;
use snap_engine::backend::StoreBackend;
use snap_engine::commands::create::{CreateOptions, create};
use snap_engine::progress::Progress;

/// Records totals and bytes. Its first `bytes` call waits (up to a
/// minute) for the scanner's total, so that a small tree cannot be backed
/// up before the scan ends and the assertions stay deterministic.
struct Recorder {
    watched: bool,
    total: Mutex<Option<(u64, u64)>>,
    seen: Condvar,
    bytes: AtomicU64,
}

impl Recorder {
    fn new(watched: bool) -> Recorder {
        Recorder {
            watched,
            total: Mutex::new(None),
            seen: Condvar::new(),
            bytes: AtomicU64::new(0),
        }
    }
}

impl Progress for Recorder {
    fn wants_totals(&self) -> bool {
        self.watched
    }

    fn total(&self, bytes: u64, items: u64) {
        *self.total.lock().unwrap() = Some((bytes, items));
        self.seen.notify_all();
    }

    fn bytes(&self, n: u64) {
        if self.watched {
            let guard = self.total.lock().unwrap();
            let _ = self
                .seen
                .wait_timeout_while(guard, Duration::from_secs(60), |t| t.is_none())
                .unwrap();
        }
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

fn open(env: &Env) -> Repository {
    let backend = Arc::new(StoreBackend::local(Path::new(&env.repo), false).unwrap());
    Repository::open(backend, &|| Ok(PASSWORD.to_string())).unwrap()
}

#[test]
fn a_backup_counts_its_work_ahead_and_its_progress_reaches_it() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("docs/deep")).unwrap();
    std::fs::write(src.join("docs/a.txt"), random_bytes(1, 1000)).unwrap();
    std::fs::write(src.join("docs/deep/b.bin"), random_bytes(2, 3 << 20)).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("skip.tmp"), random_bytes(3, 77_777)).unwrap();
    std::os::unix::fs::symlink("docs/a.txt", src.join("link")).unwrap();
    let expected_bytes = 1000 + (3 << 20);
    let opts = CreateOptions {
        paths: vec![src.clone()],
        excludes: vec!["*.tmp".into()],
        ..Default::default()
    };
    for run in ["first", "unchanged rerun"] {
        let repo = open(&env);
        let p = Recorder::new(true);
        create(&repo, &opts, &p).unwrap();
        let (bytes, items) = p.total.lock().unwrap().expect("no total was reported");
        assert_eq!(bytes, expected_bytes, "{run}");
        // src, docs, deep, a.txt, b.bin, empty, link; not skip.tmp
        assert_eq!(items, 7, "{run}");
        assert_eq!(p.bytes.load(Ordering::Relaxed), bytes, "{run}");
    }
    // Nobody watching: no scan.
    let repo = open(&env);
    let p = Recorder::new(false);
    create(&repo, &opts, &p).unwrap();
    assert_eq!(*p.total.lock().unwrap(), None);
}

/// Records the restore phase's totals and what is counted against them.
#[derive(Default)]
struct Phases {
    restore: Mutex<Option<(Option<u64>, Option<u64>)>>,
    items: AtomicU64,
    bytes: AtomicU64,
}

impl Progress for Phases {
    fn start(&self, phase: &str, total_bytes: Option<u64>, total_items: Option<u64>) {
        if phase == "restore" {
            *self.restore.lock().unwrap() = Some((total_bytes, total_items));
        }
    }

    fn bytes(&self, n: u64) {
        if self.restore.lock().unwrap().is_some() {
            self.bytes.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn item(&self, _path: &Path) {
        if self.restore.lock().unwrap().is_some() {
            self.items.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A restore over a folder that already holds some of the files counted
/// every file, kept ones too, against a total of the files it wrote (384
/// of 316 was seen).
#[test]
fn a_restore_counts_up_to_its_total() {
    use snap_engine::commands::restore::{self, RestoreOptions};
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..5u64 {
        std::fs::write(src.join(format!("f{i}")), random_bytes(i, 5000)).unwrap();
    }
    let id = env.create(&[&src], &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let target = env.path("target");
    let opts = RestoreOptions {
        snapshot: id,
        path: Some(src.clone()),
        target: target.clone(),
        no_undo: true,
        ..Default::default()
    };
    for run in ["into an empty folder", "over two changed files"] {
        if run != "into an empty folder" {
            std::fs::write(target.join("f1"), b"changed").unwrap();
            std::fs::write(target.join("f3"), b"changed too").unwrap();
        }
        let repo = open(&env);
        let repo = repo.indexed().unwrap();
        let plan = restore::plan(&repo, &opts).unwrap();
        let p = Phases::default();
        restore::apply(repo, &plan, &opts, &p).unwrap();
        let (bytes, items) = p.restore.lock().unwrap().expect("a restore phase");
        assert_eq!(items, Some(5), "{run}");
        assert_eq!(p.items.load(Ordering::Relaxed), 5, "{run}");
        assert_eq!(Some(p.bytes.load(Ordering::Relaxed)), bytes, "{run}");
    }
}
