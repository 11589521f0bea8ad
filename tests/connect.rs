//! Connecting to a bucket for the first time: every wrong setting a
//! newcomer types is named, by the commands and by `snap config --check`,
//! against a real Garage server.

mod common;

use common::garage::{self, Garage};
use common::*;

/// Runs `snap ARGS` in `env` with `vars` changed; returns exit code and stderr.
fn run(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let mut c = env.snap();
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c.args(args).output().unwrap();
    (out.status.code(), stderr(&out))
}

/// A mistake: what it is, the variables that make it, what the error says.
type Case = (&'static str, Vec<(&'static str, String)>, Vec<String>);

#[test]
fn each_wrong_setting_is_named_by_commands_and_by_config_check() {
    let env = Env::s3("connect");
    let g = Garage::get();
    let bare_host = g.endpoint.trim_start_matches("http://").to_string();
    let cases: Vec<Case> = vec![
        (
            // A path that is not the bucket is a mistake (the bucket
            // itself is taken off: see below).
            "an endpoint with a path in it",
            vec![(
                "AWS_ENDPOINT_URL",
                format!("{}/not-{}", g.endpoint, garage::BUCKET),
            )],
            vec![
                "has a path".into(),
                "s3://BUCKET/FOLDER".into(),
                format!("such as {}", g.endpoint),
            ],
        ),
        (
            // Once only "TLS ... InvalidContentType".
            "an endpoint without a scheme",
            vec![("AWS_ENDPOINT_URL", bare_host.clone())],
            vec!["no scheme".into(), format!("write http://{bare_host}")],
        ),
        (
            "the wrong region",
            vec![("AWS_REGION", "eu-west-3".into())],
            vec![
                "region \"eu-west-3\" is wrong".into(),
                format!("--region {}", garage::REGION),
            ],
        ),
        (
            "an unknown access key id",
            vec![("AWS_ACCESS_KEY_ID", "GKffffffffffffffffffffffff".into())],
            vec!["access key id \"GKffffffffffffffffffffffff\" is not known".into()],
        ),
        (
            "the wrong secret",
            vec![("AWS_SECRET_ACCESS_KEY", "f".repeat(64))],
            vec!["secret access key does not match".into()],
        ),
        (
            "a bucket that does not exist",
            vec![("SNAP_REPOSITORY", "s3://no-such-bucket/x".into())],
            vec!["bucket \"no-such-bucket\" does not exist".into()],
        ),
    ];
    for (what, vars, says) in &cases {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for args in [
            &["init", "--kdf-memory", "1024", "--kdf-iterations", "1"][..],
            &["config", "--check"],
        ] {
            let (code, err) = run(&env, &vars, args);
            assert!(code.is_some_and(|c| c != 0), "{what}, {args:?}: {err}");
            for s in says {
                assert!(
                    err.contains(s.as_str()),
                    "{what}, {args:?}: no {s:?} in {err}"
                );
            }
        }
    }
    // Nothing was made anywhere by those attempts: the right settings find
    // no repository, and --check says so and what to do.
    let (code, err) = run(&env, &[], &["config", "--check"]);
    assert_eq!(code, Some(10), "{err}");
    assert!(
        err.contains("storage: ok") && err.contains("snap init"),
        "{err}"
    );
    // The endpoint as R2's dashboard shows it, the bucket after the host,
    // once made init put the repository at snap-test/snap-test/…. Now the
    // bucket is taken off, and the repository is where the plain endpoint
    // finds it.
    let with_bucket = format!("{}/{}", g.endpoint, garage::BUCKET);
    let (code, err) = run(
        &env,
        &[("AWS_ENDPOINT_URL", with_bucket.as_str())],
        &["init", "--kdf-memory", "1024", "--kdf-iterations", "1"],
    );
    assert_eq!(code, Some(0), "{err}");
    let out = env.snap().args(["config", "--check"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    for step in [
        "settings: ok",
        "storage: ok",
        "repository: ok",
        "the password opens it",
    ] {
        assert!(err.contains(step), "{step}: {err}");
    }
    // The wrong password is named too, with its own exit code.
    let (code, err) = run(&env, &[("SNAP_PASSWORD", "not it")], &["config", "--check"]);
    assert_eq!(code, Some(12), "{err}");
    // The profile's settings are what --check tests.
    env.snap()
        .args(["config", "--profile", "work", "--region", "eu-west-3"])
        .assert()
        .success();
    let (code, err) = run(&env, &[], &["-P", "work", "config", "--check"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("eu-west-3"), "{err}");
}
