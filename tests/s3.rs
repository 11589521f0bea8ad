//! End-to-end tests against a real S3 server (Garage on 127.0.0.1).

mod common;

use std::path::Path;
use std::process::Output;

use common::garage::{self, Garage};
use common::*;

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "snap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn init_create_restore_check_over_s3() {
    let env = Env::s3("basic");
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let v = env.create(&[&src], &[]);
    assert!(v["bytes_added"].as_u64().unwrap() > 3 << 20);
    // A rerun reads nothing and uploads nothing but the snapshot. (Before
    // the restore: restoring next to src changes the parent's mtime, and so
    // the trees above src.)
    let again = env.create(&[&src], &[]);
    assert_eq!(again["bytes_read"], 0);
    assert_eq!(again["bytes_added"], 0);
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);
    env.snap().args(["check", "--read-data"]).assert().success();
}

#[test]
fn two_devices_share_one_bucket() {
    let env = Env::s3("devices");
    env.init();
    let src = env.path("src");
    make_tree(&src);
    std::fs::write(src.join("big.bin"), random_bytes(42, 8 << 20)).unwrap();

    // Device A backs up.
    let a = json_of(
        &env.device("a")
            .args(["--json", "create", "--host", "device-a"])
            .arg(&src)
            .output()
            .unwrap(),
    );

    // Device B, with an empty cache, sees it and restores it bit for bit.
    let list = json_of(
        &env.device("b")
            .args(["--json", "snapshots", "--host", "device-a"])
            .output()
            .unwrap(),
    );
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], a["snapshot_id"]);
    let target = env.path("restored-on-b");
    env.device("b")
        .args(["restore", "latest", "--host", "device-a", "--target"])
        .arg(&target)
        .assert()
        .success();
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    assert!(env.path("cache-b").exists(), "device B keeps a local cache");

    // Device B backing up the same files adds almost nothing: the chunks
    // are already in the bucket.
    let b = json_of(
        &env.device("b")
            .args(["--json", "create", "--host", "device-b"])
            .arg(&src)
            .output()
            .unwrap(),
    );
    assert_eq!(
        b["files_new"], a["files_new"],
        "B has no parent of its own, so it reads every file"
    );
    // A backup's last pack is padded to at least 64 KiB (format-spec.md
    // section 6), and its header to 4 KiB: what remains is trees and index.
    let added = b["bytes_added"].as_u64().unwrap();
    assert!(
        added < 96 * 1024,
        "deduplication across devices failed: {added} bytes added"
    );

    // The management view: filter by host, keep the newest per device.
    env.device("a")
        .args(["create", "--host", "device-a"])
        .arg(&src)
        .assert()
        .success();
    let by_a = json_of(
        &env.device("b")
            .args(["--json", "snapshots", "--host", "device-a"])
            .output()
            .unwrap(),
    );
    assert_eq!(by_a.as_array().unwrap().len(), 2);
    env.device("b")
        .args(["prune", "--keep-last", "1", "--host", "device-a"])
        .assert()
        .success();
    let all = json_of(
        &env.device("a")
            .args(["--json", "snapshots"])
            .output()
            .unwrap(),
    );
    let hosts: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts.iter().filter(|h| **h == "device-a").count(), 1);
    assert_eq!(hosts.iter().filter(|h| **h == "device-b").count(), 1);
    // Device A's cache still knows the pruned snapshot's index; it must
    // follow the bucket, not its cache.
    env.device("a")
        .args(["check", "--read-data"])
        .assert()
        .success();
    let t2 = env.path("restored-on-a");
    env.device("a")
        .args(["restore", "latest", "--host", "device-b", "--target"])
        .arg(&t2)
        .assert()
        .success();
    assert_same_tree(&src, &t2.join(src.strip_prefix("/").unwrap()));
}

#[test]
fn concurrent_creates_from_two_devices_both_succeed() {
    let env = Env::s3("concurrent");
    env.init();
    let (s1, s2) = (env.path("one"), env.path("two"));
    for (i, s) in [&s1, &s2].iter().enumerate() {
        std::fs::create_dir_all(s).unwrap();
        std::fs::write(s.join("own.bin"), random_bytes(i as u64, 6 << 20)).unwrap();
        std::fs::write(s.join("shared.bin"), random_bytes(99, 4 << 20)).unwrap();
    }
    let mut c1 = env.device_std("one");
    let mut c2 = env.device_std("two");
    let p1 = c1
        .args(["--json", "create", "--host", "one"])
        .arg(&s1)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let p2 = c2
        .args(["--json", "create", "--host", "two"])
        .arg(&s2)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (o1, o2) = (
        p1.wait_with_output().unwrap(),
        p2.wait_with_output().unwrap(),
    );
    json_of(&o1);
    json_of(&o2);
    env.snap().args(["check", "--read-data"]).assert().success();
    for (host, src) in [("one", &s1), ("two", &s2)] {
        let t = env.path(&format!("out-{host}"));
        env.snap()
            .args(["restore", "latest", "--host", host, "--target"])
            .arg(&t)
            .assert()
            .success();
        assert_same_tree(src, &t.join(src.strip_prefix("/").unwrap()));
    }
}

#[test]
fn wrong_secret_key_names_the_secret() {
    let env = Env::s3("wrong-secret");
    env.init();
    let out = env
        .snap()
        .arg("snapshots")
        .env("AWS_SECRET_ACCESS_KEY", "0".repeat(64))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("secret access key does not match"), "{err}");
    assert!(
        !err.contains("0000000000"),
        "the secret must not be printed: {err}"
    );
}

#[test]
fn unknown_access_key_is_named() {
    let env = Env::s3("wrong-key");
    env.init();
    let out = env
        .snap()
        .arg("snapshots")
        .env("AWS_ACCESS_KEY_ID", "GK000000000000000000000000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("access key id \"GK000000000000000000000000\" is not known"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_bucket_is_named() {
    let env = Env::s3("no-bucket");
    let out = env
        .snap()
        .args(["--repo", "s3://no-such-bucket/x", "snapshots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bucket \"no-such-bucket\" does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn wrong_region_is_named() {
    let env = Env::s3("wrong-region");
    env.init();
    let out = env
        .snap()
        .args(["snapshots", "--region", "eu-central-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("region \"eu-central-1\" is wrong"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unreachable_endpoint_is_named() {
    let env = Env::s3("unreachable");
    // Port 1, below the ephemeral range: a port freed by a probe listener
    // could be taken meanwhile by another test's proxy.
    let endpoint = "http://127.0.0.1:1".to_string();
    let out = env
        .snap()
        .args(["snapshots", "--endpoint", &endpoint])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the endpoint {endpoint}")),
        "{err}"
    );
}

#[test]
fn tls_to_a_plain_http_server_is_named() {
    let env = Env::s3("tls");
    let https = Garage::get().endpoint.replace("http://", "https://");
    let out = env
        .snap()
        .args(["snapshots", "--endpoint", &https])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("TLS failure"), "{}", stderr(&out));
}

#[test]
fn missing_repository_in_an_existing_bucket_exits_10() {
    let env = Env::s3("empty");
    let out = env.snap().arg("snapshots").output().unwrap();
    assert_eq!(out.status.code(), Some(10));
}

/// A typo in the root path: the message names the repository beside it
/// instead of only offering to create one, and `snap init` there refuses
/// to make a second, empty repository without `--yes`.
#[test]
fn a_typo_in_the_root_path_names_the_repository_beside_it() {
    let env = Env::s3("typo");
    env.init();
    let (folder, _) = env.repo.rsplit_once('/').unwrap();
    let snapshots_at = |repo: &str| {
        env.snap()
            .env("SNAP_REPOSITORY", repo)
            .arg("snapshots")
            .output()
            .unwrap()
    };
    let family = format!("{folder}/family");
    let typo = format!("{folder}/famliy");
    let work = format!("{folder}/work");
    for r in [&family, &work] {
        env.init_at(r);
    }
    let out = snapshots_at(&typo);
    assert_eq!(out.status.code(), Some(10));
    let said = stderr(&out);
    assert!(
        said.contains(&format!("did you mean {family}?")) && said.contains(&work),
        "{said}"
    );

    // A busy bucket: more folders beside it than are asked about, listed
    // before it; a planted config that only starts as snap's objects do;
    // a repository with a name beyond ASCII.
    let g = Garage::get();
    let plant = |at: &str, body: &'static [u8]| {
        use snap_engine::backend::Backend;
        snap_engine::backend::StoreBackend::s3(&garage::options(at, &g.endpoint))
            .unwrap()
            .write("config", bytes::Bytes::from_static(body))
            .unwrap();
    };
    for i in 0..70 {
        plant(&format!("{folder}/a{i:02}"), b"not a repository");
    }
    plant(&format!("{folder}/famlly"), b"snapFAKE-not-a-config");
    let fotos = format!("{folder}/fotos-\u{fc}");
    env.init_at(&fotos);
    let out = snapshots_at(&typo);
    assert_eq!(out.status.code(), Some(10));
    let said = stderr(&out);
    assert!(said.contains(&format!("did you mean {family}?")), "{said}");
    assert!(
        !said.contains("famlly"),
        "a planted config is no repository: {said}"
    );
    let out = env
        .snap()
        .env("SNAP_REPOSITORY", format!("{folder}/fotos-u"))
        .arg("snapshots")
        .output()
        .unwrap();
    let said = stderr(&out);
    assert!(said.contains(&format!("did you mean {fotos}?")), "{said}");

    // Creating beside them asks first; without a terminal to ask on, it
    // refuses and creates nothing.
    let out = env
        .snap()
        .env("SNAP_REPOSITORY", &typo)
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(said.contains("--yes") && said.contains(&family), "{said}");
    let out = snapshots_at(&typo);
    assert_eq!(out.status.code(), Some(10), "nothing was created");
    env.init_at(&typo);
}

#[test]
fn profiles_hold_connection_settings_and_never_show_secrets() {
    let env = Env::s3("profile");
    let g = Garage::get();
    env.snap()
        .args([
            "config",
            "--profile",
            "garage",
            "--save-keys",
            "--repo",
            &env.repo,
        ])
        .args([
            "--endpoint",
            &g.endpoint,
            "--region",
            garage::REGION,
            "--s3-addressing",
            "path",
        ])
        .assert()
        .success();
    let file = env.path("config.toml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains(garage::SECRET_KEY)
    );
    // Shown without the secret.
    let shown = env
        .snap()
        .args(["config", "--profile", "garage"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains(&g.endpoint) && !text.contains(garage::SECRET_KEY),
        "{text}"
    );
    // The profile alone reaches the bucket: no keys or endpoint in the environment.
    let bare = || {
        let mut c = env.snap();
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "SNAP_REPOSITORY",
        ] {
            c.env_remove(k);
        }
        c.args(["--profile", "garage"]);
        c
    };
    bare()
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .assert()
        .success();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"through a profile").unwrap();
    bare().arg("create").arg(&src).assert().success();
    // A secret command instead of a stored secret.
    env.snap()
        .args(["config", "--profile", "garage", "--secret-command"])
        .arg(format!("echo {}", garage::SECRET_KEY))
        .assert()
        .success();
    assert!(
        !std::fs::read_to_string(&file)
            .unwrap()
            .contains(&format!("secret_access_key = \"{}", garage::SECRET_KEY))
    );
    bare().arg("snapshots").assert().success();
    // A loose mode is warned about.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = bare().arg("snapshots").output().unwrap();
    assert!(out.status.success());
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}

#[test]
fn large_objects_go_up_in_equal_parts_and_come_back_whole() {
    use snap_engine::backend::{Backend, S3Options, StoreBackend};
    let g = Garage::get();
    let opts = S3Options {
        multipart_part_size: 5 << 20,
        ..garage::options(&g.repo("multipart"), &g.endpoint)
    };
    let backend = StoreBackend::s3(&opts).unwrap();
    let data = random_bytes(5, (12 << 20) + 12345);
    backend.write("data/ab/large", data.clone().into()).unwrap();
    let back = backend.read("data/ab/large", u64::MAX).unwrap();
    assert!(back[..] == data[..], "multipart object differs");
    let listed = backend.list("data/").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, data.len() as u64);
    assert_eq!(listed[0].name, "data/ab/large");
    // Create refuses to overwrite (Garage ignores If-None-Match, so this
    // checks snap's own guard); delete of a missing object is fine.
    assert!(!backend.create("data/ab/large", vec![1].into()).unwrap());
    assert_eq!(
        backend.read("data/ab/large", u64::MAX).unwrap().len(),
        data.len()
    );
    backend.delete("data/ab/large").unwrap();
    backend.delete("data/ab/large").unwrap();
    assert!(!backend.exists("data/ab/large").unwrap());
}

/// After a device's first backup, a backup of an unchanged tree downloads
/// nothing the device has seen: no pack, index file, tree or snapshot.
/// It lists, reads the small config and key file, and writes its lock,
/// its snapshot and any new tree.
#[test]
fn an_unchanged_rerun_downloads_nothing_it_has_seen() {
    let mut env = Env::s3("rerun-requests");
    let proxy = common::proxy::FaultProxy::start(&Garage::get().endpoint, 0);
    env.set_endpoint(&proxy.endpoint);
    env.init();
    let src = env.path("src");
    make_tree(&src);
    std::fs::write(src.join("big.bin"), random_bytes(5, 6 << 20)).unwrap();
    env.create(&[&src], &[]);
    proxy.take_log();
    let second = env.create(&[&src], &[]);
    // Files are not read again. (A tree may still be new: the mtime of
    // /tmp, an ancestor of the source, changes as other tests run.)
    assert_eq!(second["bytes_read"], 0, "{second}");
    let log = proxy.take_log();
    // Listings only: the config and key file are remembered too, and the
    // key listing that proves them current is one of the listings.
    let gets: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("GET ") && !l.contains("list-type=2"))
        .collect();
    assert!(
        gets.is_empty(),
        "an unchanged rerun downloaded {gets:#?}; all requests: {log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET ") && l.contains("prefix=") && l.contains("snapshots")),
        "the snapshot list is read: {log:#?}"
    );
}

/// 16 directories of 8 directories of one small file each; returns the
/// number of directories (144).
fn make_wide_tree(src: &Path) -> usize {
    for a in 0..16 {
        for b in 0..8 {
            let d = src.join(format!("a{a}")).join(format!("b{b}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("f"), format!("{a} {b}")).unwrap();
        }
    }
    16 * 8 + 16
}

/// Range reads of packs in a request log.
fn pack_reads(log: &[String]) -> usize {
    log.iter()
        .filter(|l| l.starts_with("GET ") && l.contains("/data/"))
        .count()
}

/// Device B restores what device A backed up, with an empty cache: the
/// directories of a level are fetched together, in a few range requests,
/// not one round trip per directory.
#[test]
fn a_cold_restore_fetches_trees_a_level_at_a_time() {
    let mut env = Env::s3("cold-restore");
    let proxy = common::proxy::FaultProxy::start(&Garage::get().endpoint, 0);
    env.set_endpoint(&proxy.endpoint);
    env.init();
    let src = env.path("src");
    let dirs = make_wide_tree(&src);
    env.create(&[&src], &[]);
    proxy.take_log();
    let target = env.path("restored");
    env.device("b")
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .assert()
        .success();
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    let log = proxy.take_log();
    let reads = pack_reads(&log);
    // One request per level (the source's own path is a few levels deep)
    // and a few for the file contents; one per directory made 149.
    let depth = src.components().count() + 2;
    assert!(
        reads <= depth + 4,
        "{reads} pack reads for {dirs} directories {depth} levels deep: {log:#?}"
    );
}

/// A device with an empty cache whose parent snapshot is in the bucket (a
/// wiped cache, or a second device with the same host name) fetches the
/// parent's trees a level at a time, then reads no unchanged file.
#[test]
fn a_backup_with_an_empty_cache_fetches_the_parent_trees_a_level_at_a_time() {
    let mut env = Env::s3("cold-parent");
    let proxy = common::proxy::FaultProxy::start(&Garage::get().endpoint, 0);
    env.set_endpoint(&proxy.endpoint);
    env.init();
    let src = env.path("src");
    make_wide_tree(&src);
    env.create(&[&src], &[]);
    proxy.take_log();
    let out = env
        .device("wiped")
        .args(["--json", "create"])
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bytes_read"], 0, "{v}");
    let log = proxy.take_log();
    let reads = pack_reads(&log);
    // One request per level; one per directory made 148.
    let depth = src.components().count() + 2;
    assert!(
        reads <= depth + 2,
        "{reads} pack reads, {depth} levels deep: {log:#?}"
    );
}

/// The config and key file a device remembers stop working the moment the
/// key leaves the bucket: a changed passphrase is asked for at once, and a
/// repository created anew at the same place is never opened with the old
/// one's keys.
#[test]
fn a_remembered_key_is_dropped_once_the_bucket_no_longer_lists_it() {
    let env = Env::s3("remembered-key");
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"one").unwrap();
    env.device("a").arg("create").arg(&src).assert().success();
    // Another device changes the passphrase: the old key file is removed.
    let new_pw = env.path("new-password");
    std::fs::write(&new_pw, "a new passphrase\n").unwrap();
    env.device("b")
        .args(["key", "passwd", "--new-password-file"])
        .arg(&new_pw)
        .assert()
        .success();
    let out = env.device("a").arg("snapshots").output().unwrap();
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    env.device("a")
        .env("SNAP_PASSWORD", "a new passphrase")
        .arg("snapshots")
        .assert()
        .success();
    // The repository is deleted and created again at the same place, with
    // the same passphrase: device a must read the new one's config.
    let g = Garage::get();
    use snap_engine::backend::{Backend, StoreBackend};
    let backend = StoreBackend::s3(&garage::options(&env.repo, &g.endpoint)).unwrap();
    let all: Vec<String> = backend
        .list("")
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    backend.delete_many(&all).unwrap();
    env.snap()
        .env("SNAP_PASSWORD", "a new passphrase")
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .assert()
        .success();
    let out = env
        .device("a")
        .env("SNAP_PASSWORD", "a new passphrase")
        .args(["--json", "snapshots"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    env.device("a")
        .env("SNAP_PASSWORD", "a new passphrase")
        .arg("create")
        .arg(&src)
        .assert()
        .success();
    env.snap()
        .env("SNAP_PASSWORD", "a new passphrase")
        .args(["check", "--read-data"])
        .assert()
        .success();
}

/// check verifies what the bucket holds, not what this device cached: an
/// index file damaged in the bucket is found although the device's cached
/// copy is intact. `--with-cache` trusts the cache and skips that download.
#[test]
fn check_reads_the_bucket_not_the_device_cache() {
    use snap_engine::backend::{Backend, StoreBackend};
    let env = Env::s3("check-no-cache");
    env.init();
    let src = env.path("src");
    make_tree(&src);
    env.create(&[&src], &[]);
    env.snap().arg("check").assert().success();

    let g = Garage::get();
    let backend = StoreBackend::s3(&garage::options(&env.repo, &g.endpoint)).unwrap();
    let index = backend.list("index/").unwrap();
    assert_eq!(index.len(), 1, "{index:?}");
    let mut bytes = backend.read(&index[0].name, u64::MAX).unwrap().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    backend.write(&index[0].name, bytes.into()).unwrap();

    let out = env.snap().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let name = index[0].name.trim_start_matches("index/");
    assert!(
        stderr(&out).contains(&name[..8]),
        "the damaged index file is named: {}",
        stderr(&out)
    );
    env.snap()
        .args(["check", "--with-cache"])
        .assert()
        .success();
}
