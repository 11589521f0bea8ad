//! A newcomer's wrong turns (issue 13), each one that used to exit 0 or
//! create something nobody asked for.

mod common;

use common::*;

#[test]
fn a_mistyped_bucket_url_is_refused_not_made_a_folder() {
    let env = Env::new();
    for repo in ["s3:bench", "s3:/bench/x", "http:host/x"] {
        let out = env
            .snap()
            .current_dir(env.dir.path())
            .args(["--repo", repo, "init"])
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{repo}");
        let err = stderr(&out);
        assert!(
            err.contains("mistyped URL") && err.contains("s3://BUCKET"),
            "{err}"
        );
        assert!(!env.path(repo).exists(), "{repo} was created as a folder");
    }
    // A folder of that name is still reachable, spelt as a path.
    env.snap()
        .current_dir(env.dir.path())
        .args([
            "--repo",
            "./s3:bench",
            "init",
            "--kdf-memory",
            "1024",
            "--kdf-iterations",
            "1",
        ])
        .assert()
        .success();
}

#[test]
fn s3_flags_beside_a_local_repository_are_refused() {
    let env = Env::new();
    for flags in [
        &["--endpoint", "http://127.0.0.1:9"][..],
        &["--region", "eu-west-1"],
    ] {
        let out = env.snap().args(flags).arg("init").output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{flags:?}");
        let err = stderr(&out);
        assert!(
            err.contains(flags[0]) && err.contains("local folder"),
            "{err}"
        );
    }
    assert!(!std::path::Path::new(&env.repo).exists());
    // The same setting from the environment, as users keep it for other
    // tools, does not stop a local repository.
    env.snap()
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .assert()
        .success();
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..3000 {
        std::fs::write(src.join(format!("f{i:04}")), b"x").unwrap();
    }
    env.create(&[&src], &[]);
    for cmd in ["ls latest", "find 'f*'"] {
        let out = env
            .snap_via(&[
                "bash",
                "-c",
                &format!("set -o pipefail; \"$0\" {cmd} | head -1; echo \"status=${{PIPESTATUS[0]}}\" >&2"),
            ])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{cmd}: {err}"
        );
        assert!(err.contains("status=0"), "{cmd}: {err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    }
}

#[test]
fn forget_needs_four_digits_and_a_host_for_latest() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    let first = env.create(&[&src], &["--host", "laptop"]);
    let id = first["snapshot_id"].as_str().unwrap().to_string();
    let count = || env.json(&["snapshots"]).as_array().unwrap().len();

    let out = env.snap().args(["forget", &id[..1]]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("at least 4 hex digits"),
        "{}",
        stderr(&out)
    );
    let out = env.snap().args(["forget", "latest"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("--host"), "{}", stderr(&out));
    assert_eq!(count(), 1);

    // --dry-run names the snapshot, with its host, and removes nothing.
    let out = env
        .snap()
        .args(["forget", "--dry-run", &id[..4]])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stderr(&out).contains(&format!("would remove snapshot {} of laptop", &id[..8])),
        "{}",
        stderr(&out)
    );
    assert_eq!(count(), 1);

    // --path narrows `latest` to one folder's backups: the newest of the
    // host is another folder's here, and stays.
    let other = env.path("other");
    std::fs::create_dir_all(&other).unwrap();
    env.create(&[&other], &["--host", "laptop"]);
    env.snap()
        .args(["forget", "latest", "--host", "laptop", "--path"])
        .arg(&src)
        .assert()
        .success();
    let left = env.json(&["snapshots"]);
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_ne!(left[0]["id"].as_str().unwrap(), id, "{left}");
}

/// Global options apart from each command's own; every positional argument
/// described; the profile's short flag is not restic's `-p` (a password
/// file there).
#[test]
fn help_keeps_global_options_apart_and_describes_every_argument() {
    let env = Env::new();
    let help = |args: &[&str]| {
        let out = env.snap().args(args).arg("--help").output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let restore = help(&["restore"]);
    let (own, global) = restore
        .split_once("Global options:")
        .expect("a global heading");
    assert!(
        own.contains("--target") && !own.contains("--repo"),
        "{restore}"
    );
    assert!(
        global.contains("--repo") && global.contains("-P, --profile"),
        "{restore}"
    );
    for cmd in [
        "init", "create", "restore", "forget", "ls", "diff", "find", "config",
    ] {
        let text = help(&[cmd]);
        if let Some((_, args)) = text.split_once("Arguments:") {
            let args = args.split("\n\n").next().unwrap();
            for line in args.lines().filter(|l| l.trim_start().starts_with('<')) {
                let described = line.trim_start().split_once('>').map(|x| x.1.trim());
                assert!(
                    described.is_some_and(|d| !d.is_empty() && d != "..."),
                    "{cmd}: {line:?} has no description"
                );
            }
        }
    }
}

#[test]
fn help_lists_every_exit_code() {
    let out = Env::new().snap().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for (code, what) in [
        ("0", "success"),
        ("1", "error"),
        ("2", "the command line cannot be parsed"),
        ("3", "snapshot written"),
        ("10", "no repository"),
        ("11", "locked"),
        ("12", "wrong password"),
    ] {
        assert!(
            help.lines()
                .any(|l| l.split_whitespace().next() == Some(code) && l.contains(what)),
            "--help lacks {code} {what:?}: {help}"
        );
    }
}

#[test]
fn a_password_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.init();
    let file = env.path("pw");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    for (mode, warned) in [(0o644, true), (0o600, false)] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = env
            .snap()
            .env_remove("SNAP_PASSWORD")
            .arg("--password-file")
            .arg(&file)
            .arg("snapshots")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            stderr(&out).contains("can be read by others"),
            warned,
            "mode {mode:o}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_profile_whose_password_file_does_not_exist_is_warned_about() {
    let env = Env::new();
    let file = env.path("work.pass");
    let config = |args: &[&str]| {
        env.snap()
            .args(["config", "--profile", "work"])
            .args(args)
            .output()
            .unwrap()
    };
    let pw = file.to_str().unwrap();
    for out in [
        config(&["--repo", "s3://bucket/x", "--password-file", pw]),
        config(&[]),
    ] {
        assert!(out.status.success(), "{}", stderr(&out));
        let warned: Vec<&str> = std::str::from_utf8(&out.stderr)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("warning: the password file") && l.contains("umask 077"))
            .collect();
        assert_eq!(warned.len(), 1, "{}", stderr(&out));
    }
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let out = config(&[]);
    assert!(!stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn config_mistakes_are_errors() {
    let env = Env::new();
    // Settings without --profile were ignored, with exit 0.
    let out = env
        .snap()
        .args(["config", "--endpoint", "https://s3.example.com"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("--profile NAME") && stderr(&out).contains("--endpoint"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("config.toml").exists());
    // A profile that does not exist printed an empty section.
    let out = env
        .snap()
        .args(["config", "--profile", "nosuch"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("no profile \"nosuch\""),
        "{}",
        stderr(&out)
    );
    // An empty SNAP_PROFILE was a profile called "".
    for args in [&["config"][..], &["snapshots"]] {
        let out = env
            .snap()
            .env("SNAP_PROFILE", "")
            .args(args)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(
            stderr(&out).contains("profile name is empty"),
            "{}",
            stderr(&out)
        );
    }
    // Giving settings creates the profile, and showing it then works.
    env.snap()
        .args(["config", "--profile", "b2", "--repo", "s3://bucket/x"])
        .assert()
        .success();
    env.snap()
        .args(["config", "--profile", "b2"])
        .assert()
        .success();
}

#[test]
fn an_include_that_names_nothing_is_an_error_and_touches_nothing() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("docs/a.txt"), b"a").unwrap();
    env.create(&[&src], &[]);
    let target = env.path("out");
    let wrong = format!("{}/nodocs", src.display());
    let out = env
        .snap()
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .args(["--include", &wrong])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&wrong) && stderr(&out).contains("names nothing"),
        "{}",
        stderr(&out)
    );
    assert!(!target.exists(), "the target was created");
    // A right one restores just that.
    let right = format!("{}/docs/a.txt", src.display());
    env.snap()
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .args(["--include", &right])
        .assert()
        .success();
    assert!(target.join(right.trim_start_matches('/')).exists());
}

#[test]
fn a_new_repository_warns_that_a_lost_password_loses_the_backups() {
    let env = Env::new();
    let out = env
        .snap()
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stderr(&out).contains("snap key add"), "{}", stderr(&out));
}

/// `restore latest --host A` picked the newest snapshot of A, which was of
/// another folder, and said nothing.
#[test]
fn latest_can_be_narrowed_to_a_folder_and_the_choice_is_shown() {
    let env = Env::new();
    env.init();
    let (app, other) = (env.path("app"), env.path("other"));
    for (d, name) in [(&app, "data.db"), (&other, "notes.txt")] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join(name), name).unwrap();
    }
    let app_snap = env.create(&[&app], &["--host", "a"])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.create(&[&other], &["--host", "a"]);
    let target = env.path("out");
    let out = env
        .snap()
        .args(["restore", "latest", "--host", "a", "--path"])
        .arg(&app)
        .arg("--target")
        .arg(&target)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("using snapshot {} of a", &app_snap[..8]))
            && stderr(&out).contains(&app.display().to_string()),
        "{}",
        stderr(&out)
    );
    assert!(
        target
            .join(app.strip_prefix("/").unwrap())
            .join("data.db")
            .exists()
    );
    assert!(!target.join(other.strip_prefix("/").unwrap()).exists());
    // ls and diff take the same narrowing, and say what they chose.
    let out = env
        .snap()
        .args(["ls", "latest", "--path"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("notes.txt"));
    assert!(stderr(&out).contains("using snapshot"), "{}", stderr(&out));
    let out = env
        .snap()
        .args(["diff", &app_snap[..8], "latest"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).matches("using snapshot").count(),
        2,
        "{}",
        stderr(&out)
    );
}

/// Retention was per host and paths while --help said only "Keep the N
/// newest snapshots"; now the help says so, --group-by changes it, and the
/// text output says what is kept and why.
#[test]
fn prune_retention_is_per_group_and_says_what_it_keeps() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    for host in ["a", "a", "b", "b"] {
        env.create(&[&src], &["--host", host]);
    }
    let help = env.snap().args(["prune", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("of each group") && help.contains("--group-by"),
        "{help}"
    );

    let out = env
        .snap()
        .args(["prune", "--keep-last", "1", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = stderr(&out);
    assert_eq!(err.matches("  keep ").count(), 2, "{err}");
    assert_eq!(err.matches("  would remove ").count(), 2, "{err}");
    assert!(err.contains("(last"), "{err}");
    // Each group is named, above what is kept and removed in it.
    let paths = src.display().to_string();
    for host in ["a", "b"] {
        assert!(
            err.contains(&format!("host {host}, paths {paths}:")),
            "{err}"
        );
    }
    assert!(
        err.contains("2 snapshot(s) kept, 2 would be removed"),
        "{err}"
    );
    // All four snapshots share their data: nothing is freed, and prune
    // says so rather than "would remove 0 blobs".
    assert!(err.contains("no unused data"), "{err}");

    let v = env.json(&["prune", "--keep-last", "1", "--group-by", ""]);
    assert_eq!(v["snapshots_kept"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["snapshots_forgotten"].as_array().unwrap().len(), 3, "{v}");
    let bad = env
        .snap()
        .args(["prune", "--group-by", "hosts"])
        .output()
        .unwrap();
    assert_ne!(bad.status.code(), Some(0));
    assert!(
        stderr(&bad).contains("not host, paths or tags"),
        "{}",
        stderr(&bad)
    );
}

/// Settings come from the command line, then the chosen profile, then the
/// environment: AWS_ENDPOINT_URL, set for another tool, overrode a profile
/// chosen with -P.
#[test]
fn a_chosen_profile_wins_over_the_environment_and_flags_win_over_both() {
    let env = Env::new();
    env.snap()
        .args([
            "config",
            "--profile",
            "work",
            "--repo",
            "s3://bucket/x",
            "--endpoint",
            "http://127.0.0.1:1",
        ])
        .assert()
        .success();
    let endpoint_used = |extra: &[&str]| {
        let out = env
            .snap()
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:2")
            .env("AWS_ACCESS_KEY_ID", "id")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env_remove("SNAP_REPOSITORY")
            .args(["-P", "work"])
            .args(extra)
            .arg("snapshots")
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0));
        stderr(&out)
    };
    let err = endpoint_used(&[]);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    let err = endpoint_used(&["--endpoint", "http://127.0.0.1:3"]);
    assert!(err.contains("127.0.0.1:3"), "{err}");
}

/// Found by a newcomer's run of the README: a profile's password file lost
/// to a SNAP_PASSWORD kept for something else; `init --no-encryption` with
/// a password configured made every later command cry "encryption
/// removed"; `--path dir/` found nothing; a missing source was reported
/// twice; `-q create` printed the snapshot id.
#[test]
fn newcomer_review_findings() {
    let env = Env::new();
    env.init();
    let pass = env.path("pass");
    std::fs::write(&pass, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    env.snap()
        .args([
            "config",
            "--profile",
            "home",
            "--repo",
            &env.repo,
            "--password-file",
        ])
        .arg(&pass)
        .assert()
        .success();
    let out = env
        .snap()
        .env("SNAP_PASSWORD", "kept for another repository")
        .env_remove("SNAP_REPOSITORY")
        .args(["-P", "home", "snapshots"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let plain = Env::new();
    let out = plain
        .snap()
        .args(["init", "--no-encryption"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("unset it"), "{}", stderr(&out));

    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    let gone = env.path("gone");
    let out = env
        .snap()
        .args(["-q", "create"])
        .arg(&gone)
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "-q printed {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        stderr(&out).matches(&gone.display().to_string()).count(),
        1,
        "{}",
        stderr(&out)
    );

    let with_slash = format!("{}/", src.display());
    let list = env.json(&["snapshots", "--path", &with_slash]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

/// Profiles exist, but none was chosen: `snap create DIR` made the local
/// default repository. A default profile, and where every setting in
/// effect comes from.
#[test]
fn a_default_profile_and_the_source_of_each_setting() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    env.snap()
        .args(["config", "--profile", "work", "--repo", &env.repo])
        .assert()
        .success();
    env.snap()
        .env_remove("SNAP_REPOSITORY")
        .args([
            "-P",
            "work",
            "init",
            "--kdf-memory",
            "1024",
            "--kdf-iterations",
            "1",
        ])
        .assert()
        .success();
    let bare = || {
        let mut c = env.snap();
        c.env_remove("SNAP_REPOSITORY");
        c
    };
    let local_default = env.path("data/snap/repository");
    let out = bare().arg("create").arg(&src).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("not creating the local default repository")
            && err.contains("work")
            && err.contains("snap config --default NAME"),
        "{err}"
    );
    assert!(!local_default.exists());
    let out = bare().arg("snapshots").output().unwrap();
    assert!(
        stderr(&out).contains("no profile is in use"),
        "{}",
        stderr(&out)
    );

    let out = bare()
        .args(["config", "--default", "nosuch"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("no profile \"nosuch\""),
        "{}",
        stderr(&out)
    );
    bare()
        .args(["config", "--default", "work"])
        .assert()
        .success();
    let out = bare().arg("config").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("profile work (default)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    bare().arg("create").arg(&src).assert().success();
    assert!(!local_default.exists());
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 1);

    // Where each setting comes from, for a profile of a bucket.
    bare()
        .args([
            "config",
            "--profile",
            "cloud",
            "--repo",
            "s3://bucket/x",
            "--region",
            "eu-west-1",
        ])
        .assert()
        .success();
    let shown = |extra: &[&str]| {
        let out = bare()
            .env("AWS_ACCESS_KEY_ID", "GKfromtheenvironment")
            .env("AWS_REGION", "us-west-2")
            .args(extra)
            .args(["config", "--profile", "cloud"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = shown(&[]);
    let line = |text: &str, setting: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("  {setting} ")))
            .unwrap_or_else(|| panic!("no {setting} in {text}"))
            .to_string()
    };
    let says = |text: &str, setting: &str, from: &str, value: &str| {
        let l = line(text, setting);
        assert!(
            l.contains(&format!("from {from}")) && l.trim_end().ends_with(value),
            "{setting}: {text}"
        );
    };
    says(&text, "region", "profile cloud", "eu-west-1");
    says(&text, "repository", "profile cloud", "s3://bucket/x");
    says(
        &text,
        "access_key_id",
        "environment AWS_ACCESS_KEY_ID",
        "GKfromtheenvironment",
    );
    says(
        &text,
        "password",
        "environment SNAP_PASSWORD",
        "(set, hidden)",
    );
    assert!(!text.contains(PASSWORD), "{text}");
    let text = shown(&["--region", "ap-east-1"]);
    says(&text, "region", "command line", "ap-east-1");

    // Settings that can never work are refused when saved, not at the
    // first backup: S3 settings for a local folder, a mistyped URL, an
    // endpoint with a path, an empty region.
    for (args, says) in [
        (
            &["--profile", "work", "--region", "eu-west-1"][..],
            "local folder",
        ),
        (&["--profile", "t2", "--repo", "s3:bucket"], "mistyped URL"),
        (
            &[
                "--profile",
                "t3",
                "--repo",
                "s3://b",
                "--endpoint",
                "http://127.0.0.1:9/folder",
            ],
            "has a path",
        ),
        (
            &["--profile", "t4", "--repo", "s3://b", "--region", ""],
            "region is empty",
        ),
    ] {
        let out = bare().arg("config").args(args).output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let listed = bare().arg("config").output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    // (Not a substring test: the temporary config path may contain "t2".)
    let profiles: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("profile "))
        .collect();
    assert_eq!(profiles, ["cloud", "work (default)"], "{listed}");

    // SNAP_REPOSITORY names the repository: the default profile steps aside.
    let other = env.path("other-repo");
    let out = bare()
        .env("SNAP_REPOSITORY", &other)
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&other.display().to_string()),
        "{}",
        stderr(&out)
    );

    bare().args(["config", "--no-default"]).assert().success();
    let out = bare().arg("create").arg(&src).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(!local_default.exists());
}

/// Smaller findings of a newcomer's session.
#[test]
fn small_wrong_turns() {
    let env = Env::new();
    // "run `snap init`" sent a user who had typed --repo to the default.
    let out = env
        .snap()
        .env_remove("SNAP_REPOSITORY")
        .args(["--repo", &env.repo, "snapshots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10));
    assert!(
        stderr(&out).contains(&format!("snap --repo {} init", env.repo)),
        "{}",
        stderr(&out)
    );
    env.init();

    // An empty password file read as the wrong password.
    let empty = env.path("empty-password");
    std::fs::write(&empty, b"").unwrap();
    std::fs::set_permissions(&empty, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = env
        .snap()
        .env_remove("SNAP_PASSWORD")
        .arg("--password-file")
        .arg(&empty)
        .arg("snapshots")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("is empty"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("wrong password"), "{}", stderr(&out));

    // With the AWS variables set, clap's usage line listed the key options
    // as if they were required.
    let out = env
        .snap()
        .env("AWS_ACCESS_KEY_ID", "id")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .arg("restore")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Usage: snap restore"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("--access-key-id"),
        "{}",
        stderr(&out)
    );

    // `ls ID /mistyped` listed nothing, exit 0; `ls -l` hid set-id bits.
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let tool = src.join("tool");
    std::fs::write(&tool, b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
    env.create(&[&src], &[]);
    let out = env
        .snap()
        .args(["ls", "latest"])
        .arg(src.join("nosuch"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("is not in snapshot"),
        "{}",
        stderr(&out)
    );
    let out = env
        .snap()
        .args(["ls", "-l", "latest"])
        .arg(&tool)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("-rwsr-xr-x"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Found by a second newcomer's run: an id with a --host of another device
/// was forgotten anyway; a mistyped --host made prune keep everything in
/// silence; `--tag a,b` was one tag; an exclude that matched nothing said
/// nothing; a wrong password did not say where it came from; `init` made
/// the local default repository while profiles existed.
#[test]
fn second_newcomer_review_findings() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/f"), b"f").unwrap();
    let laptop = env.create(&[&src], &["--host", "laptop", "--tag", "a,b"]);
    let id = laptop["snapshot_id"].as_str().unwrap().to_string();
    env.create(&[&src], &["--host", "desktop"]);

    let out = env
        .snap()
        .args(["forget", &id[..8], "--host", "desktop", "--yes"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("of host laptop") && stderr(&out).contains("--host desktop"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 2);

    let out = env
        .snap()
        .args(["prune", "--keep-last", "1", "--host", "lapt0p"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("no snapshot matches --host lapt0p")
            && stderr(&out).contains("desktop, laptop"),
        "{}",
        stderr(&out)
    );

    assert_eq!(
        env.json(&["snapshots", "--tag", "a"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let out = env
        .snap()
        .args(["create", "--exclude", "~/src/sub", "--exclude", "sub/"])
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--exclude \"~/src/sub\" matched nothing") && err.contains("$HOME"),
        "{err}"
    );
    assert!(!err.contains("\"sub/\" matched nothing"), "{err}");

    let pass = env.path("wrong.pass");
    std::fs::write(&pass, b"not the password\n").unwrap();
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = env
        .snap()
        .env_remove("SNAP_PASSWORD")
        .arg("--password-file")
        .arg(&pass)
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12));
    assert!(
        stderr(&out).contains(&format!("from command line: file {}", pass.display())),
        "{}",
        stderr(&out)
    );

    env.snap()
        .args(["config", "--profile", "nas", "--repo", &env.repo])
        .assert()
        .success();
    let out = env
        .snap()
        .env_remove("SNAP_REPOSITORY")
        .arg("init")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("not creating the local default repository"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("data/snap/repository").exists());
}

/// A Ctrl-C during a backup says so in one line, and the packs it had
/// indexed by then are not uploaded again by the next backup.
#[test]
fn ctrl_c_during_a_backup_says_one_line_and_the_next_backup_reuses_the_upload() {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let files = 12u64;
    for i in 0..files {
        std::fs::write(src.join(format!("f{i}")), random_bytes(900 + i, 16 << 20)).unwrap();
    }
    let mut child = env
        .device_std("a")
        .arg("create")
        .arg(&src)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once its first checkpoint index has landed.
    let deadline = Instant::now() + Duration::from_secs(300);
    while env.index_files().is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup finished before it could be interrupted"
        );
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(2));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines,
        ["interrupted: what was uploaded is reused by the next backup"],
        "{err}"
    );
    let r = env.json(&["create", src.to_str().unwrap()]);
    let added = r["bytes_added"].as_u64().unwrap();
    assert!(added < files * (16 << 20) * 3 / 4, "{r}");
}
