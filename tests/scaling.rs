//! Prune and check do work in proportion to what changed between
//! snapshots: each distinct tree is read once, and prune rewrites only the
//! index files that name something it removes.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use snap_engine::Repository;
use snap_engine::backend::StoreBackend;
use snap_engine::commands::prune::{PruneOptions, prune};
use snap_engine::progress::Silent;

const DIRS: usize = 40;

fn content(dir: usize, file: usize, version: u64) -> Vec<u8> {
    random_bytes(
        version * 10_000 + (dir * 10 + file) as u64,
        3000 + file * 500,
    )
}

fn index_files(env: &Env) -> BTreeSet<PathBuf> {
    env.index_files().into_iter().collect()
}

/// Every file of the restored tree holds the version the snapshot saw:
/// version 1 in the first `changed` directories' `f0`, 0 elsewhere.
fn assert_restored(root: &Path, changed: usize) {
    for d in 0..DIRS {
        for f in 0..3 {
            let version = if f == 0 && d < changed { 1 } else { 0 };
            let got = std::fs::read(root.join(format!("d{d}/f{f}"))).unwrap();
            assert!(got == content(d, f, version), "d{d}/f{f} differs");
        }
    }
}

#[test]
fn prune_and_check_work_in_proportion_to_change() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    for d in 0..DIRS {
        std::fs::create_dir_all(src.join(format!("d{d}"))).unwrap();
        for f in 0..3 {
            std::fs::write(src.join(format!("d{d}/f{f}")), content(d, f, 0)).unwrap();
        }
    }
    let mut snapshots = vec![env.create(&[&src], &[])["snapshot_id"].clone()];
    let first_trees = env.json(&["check"])["trees"].as_u64().unwrap();
    assert!(first_trees > DIRS as u64, "{first_trees}");

    // Six more snapshots, each changing one file in one directory: each
    // adds the trees from that directory up to the root.
    for d in 0..6 {
        std::fs::write(src.join(format!("d{d}/f0")), content(d, 0, 1)).unwrap();
        snapshots.push(env.create(&[&src], &[])["snapshot_id"].clone());
    }
    let per_change = src.join("d0").components().count() as u64;
    let check = env.json(&["check"]);
    assert_eq!(
        check["trees"].as_u64().unwrap(),
        first_trees + 6 * per_change,
        "check reads each distinct tree once: {check}"
    );

    // Forget the newest snapshot; only its index file names its packs.
    let before = index_files(&env);
    assert_eq!(before.len(), 7, "one index file per backup: {before:?}");
    let newest = snapshots.pop().unwrap();
    env.snap()
        .args(["forget", newest.as_str().unwrap()])
        .assert()
        .success();
    let backend = Arc::new(StoreBackend::local(Path::new(&env.repo), false).unwrap());
    let repo = Repository::open(backend, &|| Ok(PASSWORD.to_string())).unwrap();
    let opts = PruneOptions {
        merge_index_below: 0,
        ..Default::default()
    };
    let r = prune(&repo, &opts, &Silent).unwrap();
    assert_eq!(r.trees_read, first_trees + 5 * per_change);
    assert!(r.packs_deleted >= 1, "{r:?}");
    assert_eq!((r.index_files_kept, r.index_files_written), (6, 1), "{r:?}");
    let after = index_files(&env);
    assert_eq!(
        before.intersection(&after).count(),
        6,
        "index files naming only kept packs stay as they are"
    );

    // By default small index files are merged once, then left alone.
    let merged = env.json(&["prune"]);
    assert_eq!(merged["index_files_written"], 1, "{merged}");
    assert_eq!(merged["packs_deleted"], 0, "{merged}");
    assert_eq!(index_files(&env).len(), 1);
    let again = env.json(&["prune"]);
    assert_eq!(again["index_files_written"], 0, "{again}");
    assert_eq!(again["index_files_kept"], 1, "{again}");

    env.snap().args(["check", "--read-data"]).assert().success();
    let last = snapshots.last().unwrap().as_str().unwrap();
    assert_restored(&env.restore(last, &src, "out"), 5);
    assert_restored(
        &env.restore(snapshots[0].as_str().unwrap(), &src, "first"),
        0,
    );
}
