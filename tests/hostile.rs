//! The bucket as an attacker: it may swap, hide, replay or plant any
//! object. Each test is one reproduction from the trust review, run
//! against the real binary on a local repository (whose files the test
//! edits as a hostile store would).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use snap_engine::crypto::KdfParams;
use snap_engine::id::Id;
use snap_engine::repo::KeyFile;

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(files_below(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// Everything in the repository but locks, which come and go.
fn snapshot_of_repo(env: &Env) -> Vec<(PathBuf, Vec<u8>)> {
    files_below(Path::new(&env.repo))
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("/locks/"))
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

/// `snap snapshots` with a wrong password: must exit 12.
fn wrong_password(env: &Env) -> String {
    let out = env
        .snap()
        .env("SNAP_PASSWORD", "wrong")
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    stderr(&out)
}

/// Swaps an unencrypted repository's config in over an encrypted one's and
/// moves keys, index and snapshots aside: the repository now "says" it is
/// plain.
fn downgrade(env: &Env) {
    let plain = Env::new();
    plain
        .snap()
        .env_remove("SNAP_PASSWORD")
        .args(["init", "--no-encryption"])
        .assert()
        .success();
    let repo = Path::new(&env.repo);
    std::fs::copy(Path::new(&plain.repo).join("config"), repo.join("config")).unwrap();
    let aside = env.path("aside");
    std::fs::create_dir_all(&aside).unwrap();
    for d in ["keys", "index", "snapshots"] {
        std::fs::rename(repo.join(d), aside.join(d)).unwrap();
    }
}

#[test]
fn storage_cannot_switch_encryption_off() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("secret.txt"), b"the plans").unwrap();
    env.create(&[&src], &[]);
    downgrade(&env);
    let before = snapshot_of_repo(&env);

    // 1. This device opened the repository encrypted: refused, even with
    // the flag and no password.
    let out = env
        .snap()
        .env_remove("SNAP_PASSWORD")
        .args(["--insecure-no-encryption", "create"])
        .arg(&src)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("encryption was removed")
            && stderr(&out).contains("opened it encrypted before"),
        "{}",
        stderr(&out)
    );

    // 2. A device that never saw it, with a password configured: refused.
    let fresh = |name: &str| {
        let mut c = env.snap();
        c.env("XDG_DATA_HOME", env.path(name));
        c
    };
    let out = fresh("device-b")
        .args(["--insecure-no-encryption", "create"])
        .arg(&src)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("a password is configured"),
        "{}",
        stderr(&out)
    );

    // 3. No password, but key files are there: refused.
    std::fs::rename(env.path("aside/keys"), Path::new(&env.repo).join("keys")).unwrap();
    let out = fresh("device-c")
        .env_remove("SNAP_PASSWORD")
        .args(["--insecure-no-encryption", "create"])
        .arg(&src)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("key file"), "{}", stderr(&out));
    std::fs::rename(Path::new(&env.repo).join("keys"), env.path("aside/keys")).unwrap();

    // 4. Nothing tells a new device: without the flag it is still refused.
    let out = fresh("device-d")
        .env_remove("SNAP_PASSWORD")
        .arg("create")
        .arg(&src)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("--insecure-no-encryption"),
        "{}",
        stderr(&out)
    );

    // Nothing was written by any of them.
    assert_eq!(snapshot_of_repo(&env), before);
}

#[test]
fn an_unencrypted_repository_needs_the_flag_on_every_command() {
    let env = Env::new();
    let plain = |args: &[&str]| {
        let mut c = env.snap();
        c.env_remove("SNAP_PASSWORD").args(args);
        c
    };
    plain(&["init", "--no-encryption"]).assert().success();
    for args in [&["snapshots"][..], &["check"], &["prune"]] {
        let out = plain(args).output().unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(stderr(&out).contains("not encrypted"), "{}", stderr(&out));
        let mut with_flag = vec!["--insecure-no-encryption"];
        with_flag.extend_from_slice(args);
        plain(&with_flag).assert().success();
    }
    let help = env.snap().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--insecure-no-encryption"));
}

/// Tests run as root: a restore from an unauthenticated repository must
/// not create a set-uid file, chown anything or make device nodes.
#[test]
fn restore_from_an_unencrypted_repository_applies_no_set_id_bits_or_owners() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let plain = |args: &[&str]| {
        let mut c = env.snap();
        c.env_remove("SNAP_PASSWORD")
            .arg("--insecure-no-encryption")
            .args(args);
        c
    };
    plain(&["init", "--no-encryption"]).assert().success();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let shell = src.join("shell");
    std::fs::write(&shell, b"#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(&shell, Some(1234), Some(1234)).unwrap();
    std::fs::set_permissions(&shell, std::fs::Permissions::from_mode(0o6755)).unwrap();
    nix::sys::stat::mknod(
        &src.join("disk"),
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        common::makedev(7, 0),
    )
    .unwrap();
    plain(&["create"]).arg(&src).assert().success();
    let target = env.path("out");
    let out = plain(&["restore", "latest", "--target"])
        .arg(&target)
        .output()
        .unwrap();
    let restored = target.join(src.strip_prefix("/").unwrap());
    let meta = std::fs::metadata(restored.join("shell")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o755, "set-id bits were applied");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "owner was applied");
    assert!(
        std::fs::symlink_metadata(restored.join("disk")).is_err(),
        "a device node was created"
    );
    assert!(
        stderr(&out).contains("device file not created"),
        "{}",
        stderr(&out)
    );

    // The same from an encrypted repository keeps them.
    let enc = Env::new();
    enc.init();
    enc.create(&[&src], &[]);
    let back = enc.restore("latest", &src, "out");
    let meta = std::fs::metadata(back.join("shell")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o6755);
    assert_eq!(meta.uid(), 1234);
}

/// A prune that cannot see a snapshot would delete its data as unused.
#[test]
fn a_hidden_snapshot_stops_prune_before_anything_is_deleted() {
    let env = Env::new();
    env.init();
    let (a, b) = (env.path("a"), env.path("b"));
    for (d, seed) in [(&a, 1), (&b, 2)] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("f.bin"), random_bytes(seed, 1 << 20)).unwrap();
    }
    env.create(&[&a], &[]);
    let hidden = env.create(&[&b], &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.json(&["snapshots"]);
    let path = Path::new(&env.repo).join("snapshots").join(&hidden);
    let aside = env.path("hidden-snapshot");
    std::fs::rename(&path, &aside).unwrap();
    let before = snapshot_of_repo(&env);
    let out = env
        .snap()
        .args(["prune", "--keep-last", "1"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains(&hidden[..8]), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing was deleted"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot_of_repo(&env), before);

    // Back in place, prune runs; a snapshot removed by `forget` has a
    // record and does not stop it.
    std::fs::rename(&aside, &path).unwrap();
    env.snap().args(["forget", &hidden]).assert().success();
    env.snap()
        .args(["prune", "--keep-last", "1"])
        .assert()
        .success();
    env.snap().args(["check", "--read-data"]).assert().success();
}

/// Storage replays an old index file and hides the one that superseded it:
/// the next backup must not write a snapshot over deleted data.
#[test]
fn a_replayed_index_cannot_make_a_backup_refer_to_deleted_packs() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f.bin"), random_bytes(9, 3 << 20)).unwrap();
    let first = env.create(&[&src], &[]);
    let old_index: Vec<(PathBuf, Vec<u8>)> = env
        .index_files()
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    env.snap()
        .args(["forget", first["snapshot_id"].as_str().unwrap()])
        .assert()
        .success();
    let v = env.json(&["prune"]);
    assert!(v["packs_deleted"].as_u64().unwrap() > 0, "{v}");
    for p in env.index_files() {
        std::fs::remove_file(p).unwrap();
    }
    for (p, b) in &old_index {
        std::fs::write(p, b).unwrap();
    }
    let out = env.snap().arg("create").arg(&src).output().unwrap();
    assert_ne!(out.status.code(), Some(0), "the backup claimed success");
    assert!(
        stderr(&out).contains("missing from the repository"),
        "{}",
        stderr(&out)
    );
    assert!(env.json(&["snapshots"]).as_array().unwrap().is_empty());
}

#[test]
fn an_oversized_key_file_is_not_read() {
    let env = Env::new();
    env.init();
    // A 3 GiB sparse file: reading it whole took 3.1 GB of memory.
    let planted = Path::new(&env.repo).join("keys").join("0".repeat(64));
    std::fs::File::create(&planted)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    // Under a 1.5 GB address-space limit a whole read would fail.
    let limited = |extra: &[&str]| {
        env.snap_via(&["sh", "-c", "ulimit -v 1500000; exec \"$0\" \"$@\""])
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = limited(&["snapshots"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let wrong = wrong_password(&env);
    assert!(
        wrong.contains("00000000 (unreadable, oversized or damaged)"),
        "{wrong}"
    );
}

fn plant_key(env: &Env, kdf: KdfParams) -> Id {
    let master = snap_engine::crypto::MasterKey::generate();
    // Written as a hostile store would: any key file it likes.
    let key = KeyFile {
        created_ns: 0,
        host: "attacker".into(),
        username: "x".into(),
        kdf,
        nonce: [0; 24],
        wrapped: master.as_bytes().to_vec(),
    };
    let bytes = key.encode();
    let id = Id::of_bytes(&bytes);
    std::fs::write(Path::new(&env.repo).join("keys").join(id.to_hex()), bytes).unwrap();
    id
}

#[test]
fn costly_and_numerous_planted_keys_bound_the_unlock() {
    let env = Env::new();
    env.init();
    // 4 GiB of Argon2 memory: once 4.2 GB and 6 s per unlock.
    let huge = plant_key(&env, KdfParams::new(4 << 20, 1, 1));
    let ok = env.snap().arg("snapshots").output().unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
    let wrong = wrong_password(&env);
    assert!(wrong.contains(&huge.short()), "{wrong}");

    // Many cheap keys: the unlock stops at its bound (16 keys) and names,
    // a few at a time, those it did not try.
    for _ in 0..300 {
        plant_key(&env, KdfParams::new(32, 1, 1));
    }
    let wrong = wrong_password(&env);
    assert!(
        wrong.contains("over the unlock bound of 16 keys"),
        "{wrong}"
    );
    assert!(wrong.contains(" more") && wrong.len() < 4000, "{wrong}");
}

#[test]
fn key_derivation_help_is_true_and_weak_keys_are_warned_about() {
    let env = Env::new();
    let help = env.snap().args(["init", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("default 14"), "{help}");
    assert!(!help.contains("default 3)"), "{help}");
    let out = env
        .snap()
        .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("weaker than the default"),
        "{}",
        stderr(&out)
    );
    let out = env
        .snap()
        .args(["key", "add", "--kdf-memory", "2097152"])
        .env("SNAP_NEW_PASSWORD", "another")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("--kdf-memory"), "{}", stderr(&out));
}
