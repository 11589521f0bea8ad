//! Write-only keys (format-spec.md section 5): a device whose passphrase
//! can add backups and read nothing, on a local repository and on S3
//! (Garage), checked through the real binary.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

const DEVICE_PASSWORD: &str = "laptop passphrase, write only";

/// Adds a write-only key for `host` with the full key of `env`.
fn add_write_only_key(env: &Env, host: &str) {
    let pw = env.path("device-password");
    std::fs::write(&pw, format!("{DEVICE_PASSWORD}\n")).unwrap();
    env.snap()
        .args([
            "key",
            "add",
            "--write-only",
            "--host",
            host,
            "--kdf-memory",
            "1024",
            "--kdf-iterations",
            "1",
            "--new-password-file",
        ])
        .arg(&pw)
        .assert()
        .success();
}

/// `snap` on the write-only device `name`: its own password, cache and
/// state (so its own local record).
fn device(env: &Env, name: &str) -> std::process::Command {
    let mut c = env.device_std(name);
    c.env("SNAP_PASSWORD", DEVICE_PASSWORD)
        .env("XDG_DATA_HOME", env.path(&format!("data-{name}")));
    c
}

fn run(mut c: std::process::Command, args: &[&str]) -> Output {
    c.args(args).output().unwrap()
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every command that reads files, trees or snapshots, or removes
/// anything, with what it names.
fn read_commands(snapshot: &str, path: &str) -> Vec<Vec<String>> {
    [
        vec!["ls", snapshot],
        vec!["ls", snapshot, path, "--long"],
        vec![
            "restore",
            snapshot,
            "--target",
            "/tmp/snap-write-only-never",
        ],
        vec![
            "restore",
            "latest",
            "--target",
            "/tmp/snap-write-only-never",
        ],
        vec!["dump", snapshot, path],
        vec!["diff", snapshot, snapshot],
        vec!["find", "*"],
        vec!["stats"],
        vec!["check"],
        vec!["check", "--read-data"],
        vec!["forget", snapshot],
        vec!["prune"],
        vec!["repair", "index"],
        vec!["repair", "snapshots"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect()
}

/// Each read command fails with exit code 1, names the key as
/// write-only, and shows none of `secrets`.
fn assert_reads_nothing(env: &Env, name: &str, snapshot: &str, path: &str, secrets: &[&[u8]]) {
    for args in read_commands(snapshot, path) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(device(env, name), &args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "snap {args:?} with a write-only key: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("write-only key"),
            "snap {args:?} does not name the key's kind: {}",
            stderr(&out)
        );
        for s in secrets {
            for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                assert!(
                    !text.windows(s.len()).any(|w| w == *s),
                    "snap {args:?} showed {:?} on {what}",
                    String::from_utf8_lossy(s)
                );
            }
        }
    }
}

/// Every file below `dir`.
fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn backends() -> Vec<(&'static str, Env)> {
    vec![("local", Env::new()), ("s3", Env::s3("write-only"))]
}

#[test]
fn a_write_only_device_backs_up_and_a_full_key_restores_it_bit_for_bit() {
    for (backend, env) in backends() {
        env.init();
        add_write_only_key(&env, "laptop");
        let keys = env.json(&["key", "list"]);
        let kinds: Vec<(&str, &str)> = keys
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["kind"].as_str().unwrap(), k["host"].as_str().unwrap()))
            .collect();
        assert!(
            kinds.contains(&("write-only", "laptop")),
            "{backend}: {keys}"
        );
        assert_eq!(
            kinds.iter().filter(|k| k.0 == "full").count(),
            1,
            "{backend}"
        );

        let src = env.path("src");
        make_tree(&src);
        let first = json_of(&run(
            device(&env, "laptop"),
            &["--json", "create", src.to_str().unwrap()],
        ));
        let id = first["snapshot_id"].as_str().unwrap().to_string();
        // It names the key's device, and sees its own snapshot only.
        let own = json_of(&run(device(&env, "laptop"), &["--json", "snapshots"]));
        assert_eq!(own.as_array().unwrap().len(), 1, "{backend}: {own}");
        assert_eq!(own[0]["host"], "laptop", "{backend}");

        assert_reads_nothing(&env, "laptop", &id, src.to_str().unwrap(), &[]);

        // The next backup compares with the device's own record: one
        // changed file is read, the others are not.
        std::fs::write(src.join("hello.txt"), b"changed on the laptop\n").unwrap();
        let second = json_of(&run(
            device(&env, "laptop"),
            &["--json", "create", src.to_str().unwrap()],
        ));
        assert_eq!(
            second["parent"].as_str(),
            Some(id.as_str()),
            "{backend}: {second}"
        );
        assert_eq!(second["files_changed"], 1, "{backend}: {second}");
        assert_eq!(
            second["files_unmodified"].as_u64().unwrap() + 1,
            first["files_new"].as_u64().unwrap(),
            "{backend}: {second}"
        );

        // The record keeps the newest backup of these paths only, and the
        // trees it uses: not the history of deleted files.
        let own = json_of(&run(device(&env, "laptop"), &["--json", "snapshots"]));
        assert_eq!(own.as_array().unwrap().len(), 1, "{backend}: {own}");
        assert_eq!(own[0]["id"], second["snapshot_id"], "{backend}: {own}");
        let data = env.path("data-laptop");
        let trees = walk_files(&data)
            .into_iter()
            .filter(|p| p.parent().is_some_and(|d| d.ends_with("trees")))
            .count();
        // Its folders and the folders above it (a tree each), once: 12
        // when the first backup's trees stayed beside the second's.
        let above = src.ancestors().count() - 1;
        assert_eq!(
            trees,
            first["dirs"].as_u64().unwrap() as usize + above,
            "{backend}"
        );

        // A full key sees both and restores the last bit for bit.
        let all = env.json(&["snapshots"]);
        assert_eq!(all.as_array().unwrap().len(), 2, "{backend}: {all}");
        let restored = env.restore("latest", &src, "restored");
        assert_same_tree(&src, &restored);
        env.snap().args(["check", "--read-data"]).assert().success();
    }
}

#[test]
fn a_second_devices_backup_of_the_same_files_adds_almost_nothing() {
    for (backend, env) in backends() {
        env.init();
        add_write_only_key(&env, "laptop");
        let a = env.path("a/photos");
        std::fs::create_dir_all(&a).unwrap();
        for i in 0..4 {
            std::fs::write(a.join(format!("p{i}.jpg")), random_bytes(i, 3 << 20)).unwrap();
        }
        let first = env.create(&[&a], &[]);
        let data = first["bytes_added"].as_u64().unwrap();
        // The laptop has the same photos under another folder.
        let b = env.path("b/pictures");
        std::fs::create_dir_all(&b).unwrap();
        for i in 0..4 {
            std::fs::copy(a.join(format!("p{i}.jpg")), b.join(format!("p{i}.jpg"))).unwrap();
        }
        let second = json_of(&run(
            device(&env, "laptop"),
            &["--json", "create", b.to_str().unwrap()],
        ));
        let added = second["bytes_added"].as_u64().unwrap();
        assert!(
            added * 100 < data,
            "{backend}: the laptop added {added} bytes for {data} already stored"
        );
        let restored = env.restore("latest", &b, "restored");
        assert_same_tree(&b, &restored);
    }
}

#[test]
fn a_stolen_write_only_passphrase_reads_nothing_of_device_a() {
    for (backend, env) in backends() {
        env.init();
        add_write_only_key(&env, "laptop");
        let src = env.path("home/ada");
        std::fs::create_dir_all(src.join("taxes-2026")).unwrap();
        let name: &[u8] = b"offshore-accounts.txt";
        let content: &[u8] = b"the secret contents of device A, not for the thief";
        std::fs::write(src.join("taxes-2026/offshore-accounts.txt"), content).unwrap();
        let a = env.create(&[&src], &[]);
        let id = a["snapshot_id"].as_str().unwrap().to_string();

        // The thief's device: the passphrase, the bucket, nothing else.
        let secrets = [name, content, b"taxes-2026", b"home/ada"];
        assert_reads_nothing(&env, "thief", &id, src.to_str().unwrap(), &secrets);
        let listed = run(device(&env, "thief"), &["--json", "snapshots"]);
        assert_eq!(json_of(&listed), serde_json::json!([]), "{backend}");
        assert!(
            stderr(&listed).contains("1 more snapshot(s) are sealed"),
            "{backend}: {}",
            stderr(&listed)
        );
        // Nor can it make a key that reads more.
        let out = run(
            device(&env, "thief"),
            &["key", "add", "--new-password-file", "/dev/null"],
        );
        assert_eq!(out.status.code(), Some(1), "{backend}");
        assert!(stderr(&out).contains("write-only key"), "{}", stderr(&out));

        // Its backups still work, and A's snapshot is untouched.
        let loot = env.path("loot");
        std::fs::create_dir_all(&loot).unwrap();
        std::fs::write(loot.join("x"), b"x").unwrap();
        json_of(&run(
            device(&env, "thief"),
            &["--json", "create", loot.to_str().unwrap()],
        ));
        let restored = env.restore(&id, &src, "restored");
        assert_same_tree(&src, &restored);
        assert!(Path::new(&restored).join("taxes-2026").exists());
    }
}

#[test]
fn a_repository_without_write_only_keys_says_why_and_host_needs_write_only() {
    let env = Env::new();
    env.init();
    let out = env
        .snap()
        .args([
            "key",
            "add",
            "--host",
            "laptop",
            "--new-password-file",
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--write-only"), "{}", stderr(&out));
}
