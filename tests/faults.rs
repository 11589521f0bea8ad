//! Faults on the way to the bucket: a flaky network, a short outage, and the
//! S3 server stopping in the middle of a backup.

mod common;

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::garage::{self, Garage};
use common::proxy::FaultProxy;
use common::*;

#[test]
fn a_flaky_network_is_ridden_out_by_retries() {
    let mut env = Env::s3("flaky");
    let proxy = FaultProxy::start(&Garage::get().endpoint, 3);
    env.set_endpoint(&proxy.endpoint);
    env.init();
    let src = env.path("src");
    make_tree(&src);
    std::fs::write(src.join("big.bin"), random_bytes(9, 20 << 20)).unwrap();
    env.create(&[&src], &[]);
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);
    env.snap().args(["check", "--read-data"]).assert().success();
    let faults = proxy.faults.load(Ordering::SeqCst);
    assert!(faults >= 8, "only {faults} faults were injected");
}

#[test]
fn a_short_outage_during_a_backup_is_ridden_out() {
    let mut env = Env::s3("outage");
    let proxy = FaultProxy::start(&Garage::get().endpoint, 0);
    env.set_endpoint(&proxy.endpoint);
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..4u64 {
        std::fs::write(src.join(format!("f{i}")), random_bytes(40 + i, 10 << 20)).unwrap();
    }
    let child = env
        .device_std("x")
        .args(["--json", "create"])
        .arg(&src)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Go down once the first pack is on its way, so that later uploads
    // write their bodies into connections closed under them: a closed
    // socket raises SIGPIPE, whose default action killed the backup
    // silently instead of letting it retry.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !proxy
        .take_log()
        .iter()
        .any(|l| l.starts_with("PUT") && l.contains("/data/"))
    {
        assert!(Instant::now() < deadline, "no pack was uploaded");
        std::thread::sleep(Duration::from_millis(5));
    }
    proxy.set_down(true);
    std::thread::sleep(Duration::from_millis(1500));
    proxy.set_down(false);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    env.snap().args(["check", "--read-data"]).assert().success();
    assert_same_tree(&src, &env.restore("latest", &src, "out"));
}

#[test]
fn the_server_stopping_mid_backup_fails_cleanly_and_the_next_run_resumes() {
    let g = Garage::private("stopping");
    let mut env = Env::s3("stopping");
    env.repo = format!("s3://{}/stopping", garage::BUCKET);
    env.set_endpoint(&g.endpoint);
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let total: u64 = 12 * (12 << 20);
    for i in 0..12u64 {
        std::fs::write(
            src.join(format!("f{i:02}")),
            random_bytes(700 + i, 12 << 20),
        )
        .unwrap();
    }
    let mut child = env
        .device_std("x")
        .arg("create")
        .arg(&src)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop the server once the first index checkpoint is in the bucket.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if has_index(&env, &g) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup finished before the server could be stopped"
        );
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    g.stop();
    let status = child.wait().unwrap();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        !status.success(),
        "the backup cannot succeed without its server"
    );
    // A request in flight while Garage shuts down may be answered 403
    // instead of refused; either way the message says what happened.
    assert!(
        err.contains("cannot reach the endpoint") || err.contains("access denied"),
        "the error must say the server is unreachable: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    g.restart();
    assert!(
        env.json(&["snapshots"]).as_array().unwrap().is_empty(),
        "no snapshot for the failed run"
    );
    env.snap().args(["check"]).assert().success();
    let v = env.create(&[&src], &[]);
    let added = v["bytes_added"].as_u64().unwrap();
    assert!(
        added < total * 9 / 10,
        "the rerun uploaded {added} of {total} bytes instead of reusing what was there"
    );
    env.snap().args(["check", "--read-data"]).assert().success();
    assert_same_tree(&src, &env.restore("latest", &src, "out"));
}

/// Whether an index file of the test's repository is in the bucket.
fn has_index(env: &Env, g: &Garage) -> bool {
    use snap_engine::backend::{Backend, StoreBackend};
    StoreBackend::s3(&garage::options(&env.repo, &g.endpoint))
        .unwrap()
        .list("index/")
        .map(|l| !l.is_empty())
        .unwrap_or(false)
}
