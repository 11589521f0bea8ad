//! Keys that can only add (issue 24): a device whose key may not delete,
//! point-in-time reads of a versioned bucket (`--as-of`), and S3 Object
//! Lock retention. The first run against Garage through a proxy that
//! refuses deletes; the others against moto's S3 server, which has
//! versioning and Object Lock (Garage has neither).

mod common;

use std::sync::Arc;

use common::garage::{self, Garage};
use common::moto::{self, Bucket, Moto};
use common::proxy::{FaultProxy, Quirk};
use common::*;
use snap_engine::backend::{Backend, StoreBackend};

fn lock_names(backend: &dyn Backend) -> Vec<String> {
    backend
        .list("locks/")
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect()
}

/// A backup with a key whose deletes are refused succeeds, says once that
/// its lock stays, and leaves it released; with `--no-delete` it sends no
/// delete at all. `check` on a device with full rights names the released
/// locks, and its prune removes them.
#[test]
fn a_key_that_cannot_delete_backs_up_and_a_full_device_cleans_up() {
    let env = Env::s3("nodelete");
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let g = Garage::get();
    let backend: Arc<dyn Backend> =
        Arc::new(StoreBackend::s3(&garage::options(&env.repo, &g.endpoint)).unwrap());
    let proxy = FaultProxy::start(&g.endpoint, 0);
    proxy.set_quirk(Quirk::DenyDelete);
    let limited = || {
        let mut c = env.device("laptop");
        c.env("AWS_ENDPOINT_URL", &proxy.endpoint);
        c
    };

    // Found out: the delete of its own lock is refused.
    let out = limited().arg("create").arg(&src).output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("may not delete").count(), 1, "{err}");
    assert_eq!(lock_names(&*backend).len(), 1);

    // Stated: no delete is even tried.
    proxy.take_log();
    let out = limited()
        .args(["create", "--no-delete"])
        .arg(&src)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("may not delete").count(), 1, "{err}");
    let deletes: Vec<String> = proxy
        .take_log()
        .into_iter()
        .filter(|l| l.starts_with("DELETE ") || l.contains("?delete"))
        .collect();
    assert!(deletes.is_empty(), "{deletes:?}");
    assert_eq!(lock_names(&*backend).len(), 2);

    // The device with full rights tells them from live locks, and clears
    // them.
    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");
    let released = check["released_locks"].as_array().unwrap();
    assert_eq!(released.len(), 2, "{check}");
    let words = stderr(&env.snap().arg("check").output().unwrap());
    assert!(
        words.contains("left by a device that may not delete"),
        "{words}"
    );
    env.json(&["prune", "--keep-last", "1"]);
    assert!(lock_names(&*backend).is_empty());
    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");
    assert!(check["released_locks"].as_array().unwrap().is_empty());
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);
}

/// After a thief's full key deleted every object of a versioned bucket's
/// repository and wrote garbage over its config, `--as-of` the time of
/// the backup reads the repository as it was: the snapshot is listed, its
/// files listed and restored bit for bit, and `check --read-data` passes.
/// Writing to the past is refused.
#[test]
fn as_of_restores_what_a_thief_deleted_and_overwrote() {
    let m = Moto::get();
    let bucket = m.bucket("asof", Bucket::Versioned);
    let env = moto::env(&bucket);
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let first = env.create(&[&src], &[]);
    let id = first["snapshot_id"].as_str().unwrap().to_string();
    let then = m.last_modified(&bucket);
    m.wait_past(&bucket, &then);

    let keys: Vec<String> = m
        .keys(&bucket)
        .into_iter()
        .filter(|k| k.starts_with("repo/"))
        .collect();
    assert!(keys.len() >= 5, "{keys:?}");
    for k in &keys {
        assert_eq!(m.delete(&bucket, k), 204, "{k}");
    }
    assert_eq!(m.overwrite(&bucket, "repo/config", b"ransom note"), 200);
    let now = env.snap().arg("snapshots").output().unwrap();
    assert!(!now.status.success());

    let listed = env.json(&["--as-of", &then, "snapshots"]);
    let text = listed.to_string();
    assert!(text.contains(&id), "{text}");
    let ls = env
        .snap()
        .args(["--as-of", &then, "ls", &id])
        .output()
        .unwrap();
    assert!(ls.status.success(), "{}", stderr(&ls));
    assert!(String::from_utf8_lossy(&ls.stdout).contains("src"));
    let out = env.path("out");
    env.snap()
        .args(["--as-of", &then, "restore", &id, "--target"])
        .arg(&out)
        .assert()
        .success();
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
    let check = env.json(&["--as-of", &then, "check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");

    let write = env
        .snap()
        .args(["--as-of", &then, "create"])
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(write.status.code(), Some(1));
    assert!(stderr(&write).contains("read only"), "{}", stderr(&write));
}
