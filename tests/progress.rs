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
