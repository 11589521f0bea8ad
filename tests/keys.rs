//! Several passphrases for one repository: `snap key list|add|remove|passwd`.

mod common;

use common::*;

fn key_ids(env: &Env, password: &str) -> Vec<(String, bool)> {
    let out = env
        .snap()
        .args(["--json", "key", "list"])
        .env("SNAP_PASSWORD", password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_string(),
                k["current"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn several_passphrases_unlock_one_repository() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"shared by two passphrases").unwrap();
    env.create(&[&src], &[]);

    let newpw = env.path("new-password");
    std::fs::write(&newpw, "second passphrase\n").unwrap();
    env.snap()
        .args([
            "key",
            "add",
            "--kdf-memory",
            "1024",
            "--kdf-iterations",
            "1",
            "--new-password-file",
        ])
        .arg(&newpw)
        .assert()
        .success();
    let keys = key_ids(&env, PASSWORD);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|(_, cur)| *cur).count(), 1);

    // Both passphrases open the repository and see the same snapshot.
    let first = env.json(&["snapshots"]);
    let out = env
        .snap()
        .args(["--json", "snapshots"])
        .env("SNAP_PASSWORD", "second passphrase")
        .output()
        .unwrap();
    assert!(out.status.success());
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first, second);

    // The key in use cannot be removed; the other one can, from here.
    let (mine, _) = keys.iter().find(|(_, cur)| *cur).unwrap().clone();
    let (other, _) = keys.iter().find(|(_, cur)| !*cur).unwrap().clone();
    let out = env
        .snap()
        .args(["key", "remove", &mine[..8]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unlocked with"));
    env.snap()
        .args(["key", "remove", &other[..8]])
        .assert()
        .success();
    let out = env
        .snap()
        .arg("snapshots")
        .env("SNAP_PASSWORD", "second passphrase")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(12),
        "a removed passphrase must no longer open the repository"
    );

    // The last key is never removed, even from another session's view.
    let out = env
        .snap()
        .args(["key", "remove", &mine[..8]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(key_ids(&env, PASSWORD).len(), 1);
}

#[test]
fn passwd_replaces_the_passphrase_in_use() {
    let env = Env::new();
    env.init();
    env.snap()
        .args([
            "key",
            "passwd",
            "--kdf-memory",
            "1024",
            "--kdf-iterations",
            "1",
        ])
        .env("SNAP_NEW_PASSWORD", "the new one")
        .assert()
        .success();
    let out = env.snap().arg("snapshots").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(12),
        "the old passphrase must stop working"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));
    env.snap()
        .arg("snapshots")
        .env("SNAP_PASSWORD", "the new one")
        .assert()
        .success();
    assert_eq!(key_ids(&env, "the new one").len(), 1);
}

#[test]
fn key_add_without_a_new_password_source_is_a_clear_error() {
    let env = Env::new();
    env.init();
    let out = env.snap().args(["key", "add"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no new password given"));
}

#[test]
fn keys_of_an_unencrypted_repository_are_refused_clearly() {
    let env = Env::new();
    env.snap()
        .args(["init", "--no-encryption"])
        .env_remove("SNAP_PASSWORD")
        .assert()
        .success();
    let out = env
        .snap()
        .args(["--insecure-no-encryption", "key", "add"])
        .env_remove("SNAP_PASSWORD")
        .env("SNAP_NEW_PASSWORD", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not encrypted"));
}
