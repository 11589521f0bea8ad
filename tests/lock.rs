//! Keys that can only add (issue 24): a device whose key may not delete,
//! point-in-time reads of a versioned bucket (`--as-of`), and S3 Object
//! Lock retention. The first run against Garage through a proxy that
//! refuses deletes; the others against moto's S3 server, which has
//! versioning and Object Lock (Garage has neither).

mod common;

use std::sync::Arc;

use common::garage::{self, Garage};
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
