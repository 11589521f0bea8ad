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
/// Runs a backup of a device that may not delete: it succeeds, says so
/// once, and sends the proxy no delete at all.
fn backs_up_without_deleting(mut c: assert_cmd::Command, proxy: &FaultProxy) {
    let out = c.output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("may not delete").count(), 1, "{err}");
    let deletes: Vec<String> = proxy
        .take_log()
        .into_iter()
        .filter(|l| l.starts_with("DELETE ") || l.contains("?delete"))
        .collect();
    assert!(deletes.is_empty(), "{deletes:?}");
}

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
    let mut c = limited();
    c.args(["create", "--no-delete"]).arg(&src);
    backs_up_without_deleting(c, &proxy);
    assert_eq!(lock_names(&*backend).len(), 2);

    // The same from the device's profile.
    std::fs::write(
        env.path("config.toml"),
        "[profiles.laptop]\nno_delete = true\n",
    )
    .unwrap();
    let mut c = limited();
    c.env("SNAP_PROFILE", "laptop").arg("create").arg(&src);
    backs_up_without_deleting(c, &proxy);
    assert_eq!(lock_names(&*backend).len(), 3);
    std::fs::remove_file(env.path("config.toml")).unwrap();

    // The device with full rights tells them from live locks, and clears
    // them.
    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");
    let released = check["released_locks"].as_array().unwrap();
    assert_eq!(released.len(), 3, "{check}");
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

/// Keys of the repository in `bucket` (locks left out), current versions.
fn repo_keys(m: &Moto, bucket: &str) -> Vec<String> {
    m.keys(bucket)
        .into_iter()
        .filter(|k| k.starts_with("repo/") && !k.starts_with("repo/locks/"))
        .collect()
}

/// Days from now until `until`, an S3 date.
fn days_left(until: &str) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(until)
        .or_else(|_| chrono::DateTime::parse_from_rfc2822(until))
        .unwrap_or_else(|e| panic!("{until}: {e}"));
    (t.timestamp() - chrono::Utc::now().timestamp()) as f64 / 86_400.0
}

/// A repository made with `--object-lock-days` on a bucket with Object
/// Lock: every object snap writes is retained, and cannot be deleted
/// through the bucket's API before its time; a prune that forgets a
/// snapshot does not fail on the retained packs but defers and reports
/// them, and a later prune deletes them once their retention is over. The
/// repository checks and restores bit for bit throughout.
#[test]
fn object_lock_retains_everything_and_prune_defers_what_it_cannot_delete() {
    let m = Moto::get();
    let bucket = m.bucket("locked", Bucket::ObjectLock);
    let env = moto::env(&bucket);
    env.snap()
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .args(["--object-lock-days", "10"])
        .assert()
        .success();
    // The first snapshot holds only a file the second lacks, so that
    // forgetting it leaves a whole pack unused.
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("only-in-first"), random_bytes(7, 3 << 20)).unwrap();
    env.create(&[&src], &[]);

    let keys = repo_keys(m, &bucket);
    assert!(keys.iter().any(|k| k.starts_with("repo/data/")), "{keys:?}");
    for k in &keys {
        let until = m
            .retained_until(&bucket, k)
            .unwrap_or_else(|| panic!("{k} has no retention"));
        assert!(days_left(&until) > 9.9, "{k}: {until}");
    }
    // Not before its time, not even by version.
    for (k, v) in m.versions(&bucket) {
        if k.starts_with("repo/") && !k.starts_with("repo/locks/") {
            assert_eq!(m.delete_version(&bucket, &k, &v), 403, "{k}");
        }
    }
    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");

    std::fs::remove_file(src.join("only-in-first")).unwrap();
    make_tree(&src.join("tree"));
    env.create(&[&src], &[]);
    let packs_before: Vec<String> = repo_keys(m, &bucket)
        .into_iter()
        .filter(|k| k.starts_with("repo/data/"))
        .collect();
    let out = env
        .snap()
        .args(["prune", "--keep-last", "1"])
        .output()
        .unwrap();
    let words = stderr(&out);
    assert!(out.status.success(), "{words}");
    assert!(words.contains("refused to delete"), "{words}");
    // The same, as the typed report says it: nothing deleted, the pack
    // retained, and its name gone from the listing (a delete marker).
    let again = env.json(&["prune", "--keep-last", "1"]);
    let retained = again["packs_retained"].as_array().unwrap();
    assert_eq!(retained.len(), 1, "{again}");
    assert_eq!(again["packs_deleted"], 0, "{again}");
    assert!(
        again["bytes_retained"].as_u64().unwrap() > 3 << 20,
        "{again}"
    );
    let packs_after: Vec<String> = repo_keys(m, &bucket)
        .into_iter()
        .filter(|k| k.starts_with("repo/data/"))
        .collect();
    assert_eq!(packs_after.len() + 1, packs_before.len());
    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);

    // Its retention over (its owner shortened it, as governance mode
    // lets an account allowed to), the next prune deletes it for good.
    let id = retained[0].as_str().unwrap();
    let key = format!("repo/data/{}/{id}", &id[..2]);
    let past = "2020-01-01T00:00:00Z";
    for (k, v) in m.versions(&bucket) {
        if k == key {
            assert_eq!(m.shorten_retention_version(&bucket, &k, &v, past), 200);
        }
    }
    let last = env.json(&["prune", "--keep-last", "1"]);
    assert!(
        last["packs_retained"].as_array().unwrap().is_empty(),
        "{last}"
    );
    assert!(!m.versions(&bucket).iter().any(|(k, _)| *k == key));
    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");
}

/// A backup that reuses packs whose retention runs short extends it to the
/// full term again, and so does a prune for index files.
/// The repository is made with the retention a profile names.
#[test]
fn retention_is_extended_on_reused_packs_index_files_snapshots_config_and_keys() {
    let m = Moto::get();
    let bucket = m.bucket("extend", Bucket::ObjectLock);
    let env = moto::env(&bucket);
    std::fs::write(
        env.path("config.toml"),
        "[profiles.locked]\nobject_lock_days = 10\n",
    )
    .unwrap();
    env.snap()
        .env("SNAP_PROFILE", "locked")
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .assert()
        .success();
    let src = env.path("src");
    make_tree(&src);
    env.create(&[&src], &[]);
    let soon = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let keys = repo_keys(m, &bucket);
    for k in &keys {
        assert_eq!(m.shorten_retention(&bucket, k, &soon), 200, "{k}");
        assert!(days_left(&m.retained_until(&bucket, k).unwrap()) < 2.0);
    }
    // One pack copied over itself without retention, as an upload by
    // another tool would leave it: extended too.
    let bare = keys.iter().find(|k| k.starts_with("repo/data/")).unwrap();
    let bytes = m.object(&bucket, bare);
    assert_eq!(m.overwrite(&bucket, bare, &bytes), 200);
    assert_eq!(m.retained_until(&bucket, bare), None);
    // Read again, every chunk is found in a pack already stored.
    let v = env.create(&[&src], &["--force"]);
    assert!(v["bytes_added"].as_u64().unwrap() < 1 << 20, "{v}");
    assert!(v["retention_extended"].as_u64().unwrap() > 0, "{v}");
    // The backup extends what it reuses and what nothing opens without:
    // the config and the key files.
    let lifelines = |k: &&String| {
        k.starts_with("repo/data/") || k.starts_with("repo/keys/") || *k == "repo/config"
    };
    for k in keys.iter().filter(lifelines) {
        let left = days_left(&m.retained_until(&bucket, k).unwrap());
        assert!(left > 9.9, "{k}: {left} days left");
    }
    let p = env.json(&["prune"]);
    assert!(p["retention_extended"].as_u64().unwrap() > 0, "{p}");
    // The prune, every index file and snapshot it keeps as well.
    for k in keys
        .iter()
        .filter(|k| k.starts_with("repo/index/") || k.starts_with("repo/snapshots/"))
    {
        if m.keys(&bucket).contains(k) {
            let left = days_left(&m.retained_until(&bucket, k).unwrap());
            assert!(left > 9.9, "{k}: {left} days left");
        }
    }
    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");
}

/// A repository that asks for Object Lock on a bucket without it stops at
/// once, before anything is written.
#[test]
fn a_bucket_without_object_lock_stops_init_before_anything_is_written() {
    let m = Moto::get();
    let bucket = m.bucket("unlocked", Bucket::Plain);
    let env = moto::env(&bucket);
    let out = env
        .snap()
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .args([
            "--object-lock-days",
            "5",
            "--object-lock-mode",
            "compliance",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let words = stderr(&out);
    assert!(words.contains("has no Object Lock"), "{words}");
    assert!(m.keys(&bucket).is_empty(), "{:?}", m.keys(&bucket));
    // A local folder has none either.
    let local = Env::new();
    let out = local
        .snap()
        .args(["init", "--object-lock-days", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!std::path::Path::new(&local.repo).join("config").exists());
}

/// A bucket whose default retention was set outside snap: the repository
/// asks for none, and a prune's deletes become delete markers; nothing
/// fails, and the data stays checkable and restorable.
#[test]
fn a_bucket_with_default_retention_set_outside_snap_works() {
    let m = Moto::get();
    let bucket = m.bucket("default", Bucket::ObjectLock);
    m.default_retention(&bucket, 1);
    let env = moto::env(&bucket);
    env.init();
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("gone-later"), random_bytes(9, 2 << 20)).unwrap();
    env.create(&[&src], &[]);
    std::fs::remove_file(src.join("gone-later")).unwrap();
    make_tree(&src.join("tree"));
    env.create(&[&src], &[]);
    let p = env.json(&["prune", "--keep-last", "1"]);
    assert_eq!(p["packs_deleted"], 1, "{p}");
    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);
}

/// A provider that refuses the retention headers stops the write with an
/// error that names its answer (Garage behind a proxy that says the bucket
/// has Object Lock and then refuses the headers).
#[test]
fn lock_headers_a_provider_refuses_name_its_answer() {
    let mut env = Env::s3("refused");
    let proxy = FaultProxy::start(&Garage::get().endpoint, 0);
    proxy.set_quirk(Quirk::RefusesLockHeaders);
    env.set_endpoint(&proxy.endpoint);
    let out = env
        .snap()
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .args(["--object-lock-days", "7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let words = stderr(&out);
    assert!(
        words.contains("InvalidRequest: Object Lock headers are not supported"),
        "{words}"
    );
    assert!(
        words.contains("Object Lock retention (GOVERNANCE until"),
        "{words}"
    );
}

/// The Object Lock requests object_store does not make (retention, its
/// check, version listings and deletes) are sent again after a 503, a 500
/// or a dropped connection, as object_store's own are: through a proxy
/// that fails every 5th request, a locked repository is made, backed up,
/// pruned and read back whole. Without the retries `init` fails.
#[test]
fn object_lock_requests_are_sent_again_after_a_server_error() {
    let m = Moto::get();
    let bucket = m.bucket("flaky", Bucket::ObjectLock);
    let mut env = moto::env(&bucket);
    let proxy = FaultProxy::start(&m.endpoint, 5);
    env.set_endpoint(&proxy.endpoint);
    env.snap()
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .args(["--object-lock-days", "3"])
        .assert()
        .success();
    let src = env.path("src");
    make_tree(&src);
    env.create(&[&src], &[]);
    std::fs::write(src.join("hello.txt"), b"again\n").unwrap();
    env.create(&[&src], &[]);
    let p = env.json(&["prune", "--keep-last", "1"]);
    assert!(p["retention_extended"].as_u64().is_some(), "{p}");
    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["ok"], true, "{check}");
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);
    assert!(proxy.faults.load(std::sync::atomic::Ordering::SeqCst) > 0);
}

/// B2 answers `If-None-Match` with 501: under Object Lock too, `create`
/// then looks first and writes, as it does without (the config of `init`
/// is such a create).
#[test]
fn object_lock_on_a_store_without_conditional_writes() {
    let m = Moto::get();
    let bucket = m.bucket("b2-like", Bucket::ObjectLock);
    let mut env = moto::env(&bucket);
    let proxy = FaultProxy::start(&m.endpoint, 0);
    proxy.set_quirk(Quirk::NoConditionalCreate);
    env.set_endpoint(&proxy.endpoint);
    env.snap()
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .args(["--object-lock-days", "3"])
        .assert()
        .success();
    let src = env.path("src");
    make_tree(&src);
    env.create(&[&src], &[]);
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);
    assert!(m.retained_until(&bucket, "repo/config").is_some());
}
