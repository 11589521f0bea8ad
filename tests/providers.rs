//! Providers' quirks, imitated by the loopback proxy in front of Garage
//! (which has none of them): each test is a provider behaviour users met,
//! and what snap does about it.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::garage::{self, Garage};
use common::proxy::{FaultProxy, Quirk};
use common::*;
use snap_engine::backend::{Backend, StoreBackend};

/// The requests the proxy forwarded or answered that match `pred`.
fn count(log: &[String], pred: impl Fn(&str) -> bool) -> usize {
    log.iter().filter(|l| pred(l)).count()
}

fn is_bulk_delete(l: &str) -> bool {
    l.starts_with("POST ") && l.contains("?delete")
}

/// The repository's objects under `folder`, read straight from Garage.
fn stored(env: &Env, folder: &str) -> Vec<String> {
    let direct = StoreBackend::s3(&garage::options(&env.repo, &Garage::get().endpoint)).unwrap();
    direct
        .list(folder)
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect()
}

/// A provider without the multi-object delete (501 NotImplemented, or 405
/// from a gateway): once made every delete fail after six seconds of
/// retries, the lock after each backup stayed, and prune failed.
#[test]
fn deletes_work_on_a_provider_without_bulk_delete() {
    for status in [501, 405] {
        let mut env = Env::s3(&format!("nobulk{status}"));
        let proxy = FaultProxy::start(&Garage::get().endpoint, 0);
        proxy.set_quirk(Quirk::NoBulkDelete(status));
        env.set_endpoint(&proxy.endpoint);
        env.init();
        let src = env.path("src");
        std::fs::create_dir_all(&src).unwrap();
        for round in 0..3u64 {
            std::fs::write(src.join("f"), random_bytes(round, 300_000)).unwrap();
            env.create(&[&src], &[]);
        }
        // Each backup removed its lock with one plain DELETE.
        assert_eq!(stored(&env, "locks/"), Vec::<String>::new(), "{status}");
        proxy.take_log();
        env.snap()
            .args(["prune", "--keep-last", "1"])
            .assert()
            .success();
        let log = proxy.take_log();
        // Tried once, then single deletes for the rest of the run.
        assert!(count(&log, is_bulk_delete) <= 1, "{status}: {log:?}");
        assert!(
            count(&log, |l| l.starts_with("DELETE ")) >= 2,
            "{status}: {log:?}"
        );
        assert_eq!(stored(&env, "snapshots/").len(), 1, "{status}");
        env.snap().args(["check", "--read-data"]).assert().success();
    }
}

/// Answers that object_store's multi-object delete cannot take, or
/// NoSuchKey for keys already gone: deletes still succeed, snap does not
/// crash, and what was asked is gone.
#[test]
fn odd_bulk_delete_answers_neither_crash_nor_fail() {
    for quirk in [
        Quirk::BulkAnswerNamesAnotherKey,
        Quirk::BulkNoSuchKey,
        Quirk::BulkAnswersNothing,
    ] {
        let env = Env::s3("oddbulk");
        let proxy = FaultProxy::start(&Garage::get().endpoint, 0);
        let opts = garage::options(&env.repo, &proxy.endpoint);
        let backend = StoreBackend::s3(&opts).unwrap();
        let names: Vec<String> = (0..5).map(|i| format!("data/00/junk-{i}")).collect();
        for n in &names {
            backend.write(n, Bytes::from_static(b"x")).unwrap();
        }
        proxy.set_quirk(quirk);
        backend.delete_many(&names).unwrap();
        assert_eq!(stored(&env, "data/"), Vec::<String>::new(), "{quirk:?}");
        // And deleting them again, missing now, is no error either.
        backend.delete_many(&names).unwrap();
    }
}

/// Backblaze B2 answers `If-None-Match: *` with 501: init once failed
/// there. It now looks first, writes, and says init was not atomic.
#[test]
fn init_works_where_conditional_writes_are_refused() {
    let mut env = Env::s3("b2create");
    let proxy = FaultProxy::start(&Garage::get().endpoint, 0);
    proxy.set_quirk(Quirk::NoConditionalCreate);
    env.set_endpoint(&proxy.endpoint);
    let out = env
        .snap()
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("refused a conditional write"), "{err}");
    // A second init finds the repository, atomic or not.
    let again = env
        .snap()
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    let src = env.path("src");
    make_tree(&src);
    env.create(&[&src], &[]);
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);
}

/// Listings in ListObjectsV1's shape come a page of 1,000 at a time with
/// no continuation token, and object_store stopped after the first page:
/// check and prune saw a partial repository. snap continues after the last
/// key; where the provider ignores that too, it stops with an error.
#[test]
fn listings_cut_at_a_thousand_are_continued_or_refused() {
    let mut env = Env::s3("v1list");
    let proxy = FaultProxy::start(&Garage::get().endpoint, 0);
    env.set_endpoint(&proxy.endpoint);
    env.init();
    let src = env.path("src");
    make_tree(&src);
    env.create(&[&src], &[]);
    // 1,100 packs no index names (as an interrupted backup leaves them).
    let direct = StoreBackend::s3(&garage::options(&env.repo, &Garage::get().endpoint)).unwrap();
    let junk = 1100;
    for i in 0..junk {
        let id = format!("{:064x}", 0xabc000 + i);
        direct
            .write(&format!("data/{}/{id}", &id[..2]), Bytes::from_static(b"x"))
            .unwrap();
    }
    let unindexed = |out: &std::process::Output| {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w.as_str().unwrap().contains("not in any index"))
            .count()
    };
    for quirk in [Quirk::ListV1, Quirk::ListV1Page(100)] {
        proxy.set_quirk(quirk);
        let out = env.snap().args(["--json", "check"]).output().unwrap();
        assert_eq!(
            unindexed(&out),
            junk as usize,
            "{quirk:?}: {}",
            stderr(&out)
        );
    }
    proxy.set_quirk(Quirk::ListV1IgnoresStartAfter);
    for args in [&["check"][..], &["prune", "--keep-last", "1"]] {
        let out = env.snap().args(args).output().unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(err.contains("does not continue it"), "{args:?}: {err}");
    }
    // Nothing was deleted from the partial view.
    assert_eq!(stored(&env, "data/").len(), junk as usize + 1);
}

/// Everything snap sends passes a provider that refuses checksum headers,
/// aws-chunked bodies and multi-object deletes without Content-MD5: a
/// backup, a restore, a prune and a check.
#[test]
fn a_strict_provider_takes_every_request() {
    let mut env = Env::s3("strict");
    let proxy = FaultProxy::start(&Garage::get().endpoint, 0);
    proxy.set_quirk(Quirk::Strict);
    env.set_endpoint(&proxy.endpoint);
    env.init();
    let src = env.path("src");
    make_tree(&src);
    env.create(&[&src], &[]);
    std::fs::write(src.join("hello.txt"), b"changed").unwrap();
    env.create(&[&src], &[]);
    prune_check_and_restore(&env, &src);
    let log = proxy.take_log();
    assert!(
        log.iter().any(|l| is_bulk_delete(l)),
        "no multi-object delete was tried: {log:?}"
    );
}

/// R2 refuses a multipart upload whose parts are not all one size but the
/// last: snap's parts are equal.
#[test]
fn multipart_parts_are_equal_as_r2_requires() {
    let env = Env::s3("r2parts");
    let proxy = FaultProxy::start(&Garage::get().endpoint, 0);
    proxy.set_quirk(Quirk::EqualParts);
    let opts = snap_engine::backend::S3Options {
        multipart_part_size: 5 << 20,
        ..garage::options(&env.repo, &proxy.endpoint)
    };
    let backend = StoreBackend::s3(&opts).unwrap();
    let data = random_bytes(3, (12 << 20) + 12_345);
    backend.write("big", Bytes::from(data.clone())).unwrap();
    assert!(backend.read("big", u64::MAX).unwrap() == data[..]);
    let log = proxy.take_log();
    assert!(
        log.iter().filter(|l| l.contains("partNumber=")).count() >= 3,
        "{log:?}"
    );
}

/// Sends every host name to 127.0.0.1, so that a provider's real host
/// names reach the test server.
#[derive(Debug)]
struct Loopback;

impl snap_engine::backend::DnsResolver for Loopback {
    fn resolve(&self, _host: &str) -> snap_engine::backend::DnsFuture {
        Box::pin(async { Ok(vec![std::net::IpAddr::from([127, 0, 0, 1])]) })
    }
}

/// Huawei OBS refuses path style, and answered a path-style PUT with a
/// misleading 404 while HEAD succeeded. With its real host name (resolved
/// to a Garage that serves that domain, behind a proxy refusing path
/// style), snap goes virtual-hosted by itself and reads the region from
/// the host; forced to path style, it is told why it fails.
#[test]
fn a_virtual_only_provider_by_its_real_host_name() {
    let domain = "obs.cn-north-4.myhuaweicloud.com";
    let g = Garage::serving_domain("obs", domain);
    let proxy = FaultProxy::start(&g.endpoint, 0);
    proxy.set_quirk(Quirk::VirtualOnly);
    let port = proxy.endpoint.rsplit(':').next().unwrap().to_string();
    let opts = snap_engine::backend::S3Options {
        dns_resolver: Some(Arc::new(Loopback)),
        ..garage::options(&g.repo("obs"), &format!("http://{domain}:{port}"))
    };
    let auto = snap_engine::backend::S3Options {
        region: String::new(),
        ..opts.clone()
    };
    assert_eq!(auto.region(), "cn-north-4", "read from the host");
    let backend = StoreBackend::s3(&opts).unwrap();
    backend.write("config", Bytes::from_static(b"c")).unwrap();
    assert_eq!(&backend.read("config", 10).unwrap()[..], b"c");
    assert_eq!(backend.list("").unwrap().len(), 1);
    backend.delete_many(&["config".to_string()]).unwrap();
    assert!(backend.list("").unwrap().is_empty());
    assert!(
        proxy.take_log().iter().all(|l| !l.contains(garage::BUCKET)),
        "path style was used"
    );
    let path = snap_engine::backend::S3Options {
        addressing: snap_engine::backend::Addressing::Path,
        ..opts
    };
    let err = StoreBackend::s3(&path)
        .unwrap()
        .write("x", Bytes::from_static(b"x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bucket in the host name"), "{err}");
}

/// A server whose every listing page says "more, with the same token"
/// once held `snap snapshots` for good, at 2.6 GB and growing: the listing
/// now stops at the first key that comes again, with an error that names
/// the storage, and memory never follows it.
#[test]
fn a_listing_that_never_ends_is_refused() {
    let mut env = Env::s3("endless");
    let proxy = FaultProxy::start(&Garage::get().endpoint, 0);
    env.set_endpoint(&proxy.endpoint);
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    env.create(&[&src], &[]);
    proxy.set_quirk(Quirk::ListRepeatsToken);
    proxy.take_log();
    let out = env
        .snap()
        .args(["--no-cache", "snapshots"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("not listing honestly") && err.contains("s3://"),
        "{err}"
    );
    let lists = count(&proxy.take_log(), |l| l.contains("list-type=2"));
    assert!(lists < 20, "{lists} listing requests");
}
