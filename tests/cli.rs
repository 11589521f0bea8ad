//! End-to-end tests of the `snap` binary on a local repository.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;

fn snapshot_id(v: &serde_json::Value) -> String {
    v["snapshot_id"].as_str().unwrap().to_string()
}

#[test]
fn round_trip_preserves_every_kind_of_entry() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let out = env
        .snap()
        .args(["--json", "create"])
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("socket not backed up"),
        "sockets are skipped with a message: {stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "snapshot_id",
        "files_new",
        "files_changed",
        "files_unmodified",
        "bytes_read",
        "bytes_added",
        "duration_s",
    ] {
        assert!(v.get(key).is_some(), "create --json lacks {key}");
    }
    assert_eq!(v["files_changed"], 0);
    assert!(v["files_new"].as_u64().unwrap() >= 9);
    let restored = env.restore(&snapshot_id(&v), &src, "restored");
    assert_same_tree(&src, &restored);
}

#[test]
fn unencrypted_repository_round_trips_and_never_asks_for_a_password() {
    let env = Env::new();
    env.snap()
        .args(["init", "--no-encryption"])
        .env_remove("SNAP_PASSWORD")
        .assert()
        .success();
    let src = env.path("src");
    make_tree(&src);
    // Device files, owners and set-id bits are not restored from an
    // unauthenticated repository (tests/hostile.rs); the rest round-trips.
    let _ = std::fs::remove_file(src.join("null-device"));
    fn plain_metadata(p: &std::path::Path) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::symlink_metadata(p).unwrap();
        if meta.file_type().is_symlink() {
            return;
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                plain_metadata(&e.unwrap().path());
            }
        }
        if meta.uid() != nix::unistd::geteuid().as_raw() {
            std::os::unix::fs::lchown(p, Some(0), Some(0)).unwrap();
        }
        let mode = meta.mode() & 0o1777;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    plain_metadata(&src);
    let v = env
        .snap()
        .args(["--insecure-no-encryption", "--json", "create"])
        .arg(&src)
        .env_remove("SNAP_PASSWORD")
        .output()
        .unwrap();
    assert!(v.status.success());
    let t = env.path("out");
    env.snap()
        .args(["--insecure-no-encryption", "restore", "latest", "--target"])
        .arg(&t)
        .env_remove("SNAP_PASSWORD")
        .assert()
        .success();
    assert_same_tree(&src, &t.join(src.strip_prefix("/").unwrap()));
}

/// A folder added to a backup set: the folder backed up before is not
/// read again; its earlier snapshot is the new one's parent.
#[test]
fn adding_a_folder_reads_only_the_new_folder() {
    let env = Env::new();
    env.init();
    let a = env.path("a");
    let b = env.path("b");
    for (dir, seed) in [(&a, 1), (&b, 2)] {
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("one"), random_bytes(seed, 300_000)).unwrap();
        std::fs::write(dir.join("sub/two"), random_bytes(seed + 10, 1000)).unwrap();
    }
    let first = env.create(&[&a], &[]);
    let both = env.create(&[&a, &b], &[]);
    assert_eq!(both["parent"], first["snapshot_id"], "{both}");
    assert_eq!(both["bytes_read"], 301_000, "only b is read: {both}");
    assert_eq!(both["files_unmodified"], 2, "{both}");
    assert_eq!(both["files_new"], 2, "{both}");
    // Back to a alone: the parent is still the latest of a alone.
    let again = env.create(&[&a], &[]);
    assert_eq!(again["bytes_read"], 0, "{again}");
    assert_eq!(again["parent"], first["snapshot_id"], "{again}");
}

/// --skip-if-unchanged, or a profile's skip_if_unchanged, writes no
/// snapshot when nothing changed; a change, or the flag's opposite, writes
/// one.
#[test]
fn an_unchanged_backup_can_be_skipped() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"one").unwrap();
    let first = env.create(&[&src], &[]);
    let count = || env.json(&["snapshots"]).as_array().unwrap().len();
    let skipped = env.create(&[&src], &["--skip-if-unchanged"]);
    assert_eq!(skipped["skipped_unchanged"], true, "{skipped}");
    assert_eq!(skipped["snapshot_id"], first["snapshot_id"], "{skipped}");
    assert_eq!(count(), 1);
    let out = env
        .snap()
        .args(["create", "--skip-if-unchanged"])
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "nothing changed since snapshot {}: no snapshot written",
            &first["snapshot_id"].as_str().unwrap()[..8]
        )),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    // Other tags are a change.
    let tagged = env.create(&[&src], &["--skip-if-unchanged", "--tag", "t"]);
    assert_eq!(tagged["skipped_unchanged"], false, "{tagged}");
    assert_eq!(count(), 2);
    std::fs::write(src.join("a"), b"two").unwrap();
    let changed = env.create(&[&src], &["--skip-if-unchanged"]);
    assert_eq!(changed["skipped_unchanged"], false, "{changed}");
    assert_eq!(count(), 3);
    // A profile's setting, and the flag that overrides it.
    std::fs::write(
        env.path("config.toml"),
        format!(
            "[profiles.p]\nrepository = {:?}\nskip_if_unchanged = true\n",
            env.repo
        ),
    )
    .unwrap();
    // Writing it changed the time of the folder above src: a change.
    env.create(&[&src], &[]);
    let by_profile = env.create(&[&src], &["-P", "p"]);
    assert_eq!(by_profile["skipped_unchanged"], true, "{by_profile}");
    let overridden = env.create(&[&src], &["-P", "p", "--no-skip-if-unchanged"]);
    assert_eq!(overridden["skipped_unchanged"], false, "{overridden}");
    assert_eq!(count(), 5);
}

#[test]
fn unchanged_rerun_reads_nothing_and_adds_almost_nothing() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let first = env.create(&[&src], &[]);
    let size_before = env.repo_size();
    let second = env.create(&[&src], &[]);
    assert_eq!(second["parent"], first["snapshot_id"]);
    assert_eq!(
        second["bytes_read"], 0,
        "unchanged files must not be read again"
    );
    assert_eq!(second["files_new"], 0);
    assert_eq!(second["files_changed"], 0);
    assert_eq!(second["files_unmodified"], first["files_new"]);
    // An ancestor's mtime (/tmp, which other tests touch) may change the
    // trees above the source: at most the three of /, /tmp and the test's
    // folder. They go in one last pack, padded to 64 KiB (format-spec.md
    // section 6); without them the snapshot alone is written.
    let growth = env.repo_size() - size_before;
    let trees = second["blobs_added"].as_u64().unwrap();
    assert!(trees <= 3, "an unchanged rerun stored {trees} blobs");
    let bound = if trees == 0 { 4096 } else { 80 * 1024 };
    assert!(
        growth < bound,
        "an unchanged rerun grew the repository by {growth} bytes ({trees} trees)"
    );
}

#[test]
fn one_byte_edit_in_a_100_mib_file_adds_about_one_chunk() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join("large.bin");
    std::fs::write(&file, random_bytes(7, 100 * 1024 * 1024)).unwrap();
    let first = env.create(&[&src], &[]);
    assert!(first["bytes_added"].as_u64().unwrap() > 100 * 1024 * 1024);

    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 50 * 1024 * 1024).unwrap();
    f.write_all_at(&[b[0] ^ 0xff], 50 * 1024 * 1024).unwrap();
    drop(f);
    let second = env.create(&[&src], &[]);
    assert_eq!(second["files_changed"], 1);
    // One data chunk (at most 8 MiB), a second only if the edit moved a
    // boundary, plus one new tree per directory from the root down to src.
    let trees = 1 + src.components().count() as u64 - 1;
    let data_blobs = second["blobs_added"].as_u64().unwrap() - trees;
    assert!(
        (1..=2).contains(&data_blobs),
        "{data_blobs} data blobs added"
    );
    let added = second["bytes_added"].as_u64().unwrap();
    assert!(
        added <= 16 * 1024 * 1024 + 64 * 1024,
        "{added} bytes added for a one-byte edit"
    );
    let restored = env.restore(&snapshot_id(&second), &src, "out");
    assert!(std::fs::read(restored.join("large.bin")).unwrap() == std::fs::read(&file).unwrap());
}

#[test]
fn prune_then_check_then_restore() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("keep.bin"), random_bytes(10, 2 << 20)).unwrap();
    for i in 0..3u64 {
        std::fs::write(src.join("churn.bin"), random_bytes(100 + i, 3 << 20)).unwrap();
        env.create(&[&src], &["--tag", &format!("run{i}")]);
    }
    let before = env.repo_size();
    let v = env.json(&["prune", "--keep-last", "1"]);
    assert_eq!(v["snapshots_forgotten"].as_array().unwrap().len(), 2);
    let after = env.repo_size();
    assert!(
        before - after > 5 << 20,
        "prune freed only {} bytes of the ~6 MiB the forgotten snapshots used alone",
        before - after
    );
    env.snap().args(["check", "--read-data"]).assert().success();
    let list = env.json(&["snapshots"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["tags"][0], "run2");
    let restored = env.restore("latest", &src, "out");
    assert_same_tree(&src, &restored);
    // Nothing left to collect: a second prune changes nothing.
    let again = env.json(&["prune"]);
    assert_eq!(again["packs_deleted"], 0);
    assert_eq!(again["packs_repacked"], 0);
    assert!(again["snapshots_forgotten"].as_array().unwrap().is_empty());
}

#[test]
fn prune_dry_run_changes_nothing() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..2u64 {
        std::fs::write(src.join("f"), random_bytes(i, 1 << 20)).unwrap();
        env.create(&[&src], &[]);
    }
    let before = env.repo_size();
    let v = env.json(&["prune", "--keep-last", "1", "--dry-run"]);
    assert_eq!(v["snapshots_forgotten"].as_array().unwrap().len(), 1);
    assert_eq!(env.repo_size(), before);
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 2);
}

#[test]
fn wrong_password_exits_12() {
    let env = Env::new();
    env.init();
    let out = env
        .snap()
        .arg("snapshots")
        .env("SNAP_PASSWORD", "not it")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));
}

#[test]
fn missing_repository_exits_10() {
    let env = Env::new();
    let out = env.snap().arg("snapshots").output().unwrap();
    assert_eq!(out.status.code(), Some(10));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no repository"));
}

#[test]
fn no_password_and_no_terminal_is_a_clear_error() {
    let env = Env::new();
    env.init();
    let out = env
        .snap()
        .arg("snapshots")
        .env_remove("SNAP_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no password given") && err.contains("SNAP_PASSWORD"),
        "{err}"
    );
}

#[test]
fn password_file_and_command_are_accepted() {
    let env = Env::new();
    env.init();
    let pwfile = env.path("pw");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    env.snap()
        .env_remove("SNAP_PASSWORD")
        .args(["snapshots", "--password-file"])
        .arg(&pwfile)
        .assert()
        .success();
    env.snap()
        .env_remove("SNAP_PASSWORD")
        .args(["snapshots", "--password-command"])
        .arg(format!("cat {}", pwfile.display()))
        .assert()
        .success();
}

/// A damaged index file is one finding among others: check goes on, and
/// names the snapshots that needed it while passing the ones that did not.
#[test]
fn a_damaged_index_file_does_not_stop_check() {
    let env = Env::new();
    env.init();
    let listing = || -> BTreeSet<PathBuf> { env.index_files().into_iter().collect() };
    let (a, b) = (env.path("a"), env.path("b"));
    for (dir, seed) in [(&a, 1), (&b, 2)] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("f.bin"), random_bytes(seed, 100_000)).unwrap();
    }
    let first = snapshot_id(&env.create(&[&a], &[]));
    let before = listing();
    let second = snapshot_id(&env.create(&[&b], &[]));
    let added: Vec<PathBuf> = listing().difference(&before).cloned().collect();
    assert_eq!(added.len(), 1, "{added:?}");
    let mut bytes = std::fs::read(&added[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    std::fs::write(&added[0], bytes).unwrap();

    let out = env.snap().args(["--json", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let short = |id: &str| id[..8].to_string();
    let name = added[0].file_name().unwrap().to_str().unwrap();
    assert!(
        errors.iter().any(|e| e.contains(&short(name))),
        "names the index file: {errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains(&short(&second))),
        "names the snapshot that needed it: {errors:?}"
    );
    assert!(
        !errors.iter().any(|e| e.contains(&short(&first))),
        "the other snapshot is whole: {errors:?}"
    );
    assert_eq!(v["snapshots"], 2);
}

#[test]
fn flipped_byte_in_a_pack_is_found_by_check_read_data() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.bin"), random_bytes(3, 4 << 20)).unwrap();
    env.create(&[&src], &[]);
    env.snap().args(["check", "--read-data"]).assert().success();
    let packs = env.pack_files();
    let biggest = packs
        .iter()
        .max_by_key(|p| p.metadata().unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(biggest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(biggest, bytes).unwrap();
    let name = biggest.file_name().unwrap().to_str().unwrap();
    let out = env.snap().args(["check", "--read-data"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(name),
        "check must name the damaged pack {name}: {err}"
    );
    assert!(
        err.contains("data.bin"),
        "check must name the affected file: {err}"
    );
    // Restore of the damaged snapshot names the file and fails.
    let out = env
        .snap()
        .args(["restore", "latest", "--target"])
        .arg(env.path("out"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("data.bin"));
}

#[test]
fn excludes_leave_out_matching_paths() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("cache")).unwrap();
    std::fs::create_dir_all(src.join("keep")).unwrap();
    std::fs::write(src.join("a.log"), b"log").unwrap();
    std::fs::write(src.join("keep/b.txt"), b"keep").unwrap();
    std::fs::write(src.join("keep/c.log"), b"log").unwrap();
    std::fs::write(src.join("cache/d"), b"cache").unwrap();
    let cache_pattern = format!("{}/cache", src.display());
    env.create(
        &[&src],
        &["--exclude", "*.log", "--exclude", &cache_pattern],
    );
    let restored = env.restore("latest", &src, "out");
    assert!(restored.join("keep/b.txt").exists());
    assert!(!restored.join("a.log").exists());
    assert!(!restored.join("keep/c.log").exists());
    assert!(!restored.join("cache").exists());
}

#[test]
fn restore_include_selects_a_subtree() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    env.create(&[&src], &[]);
    let t = env.path("out");
    env.snap()
        .args(["restore", "latest", "--target"])
        .arg(&t)
        .arg("--include")
        .arg(src.join("dir/nested"))
        .assert()
        .success();
    let base = t.join(src.strip_prefix("/").unwrap());
    assert!(base.join("dir/nested/multi-chunk.bin").exists());
    assert!(!base.join("hello.txt").exists());
    assert!(!base.join("dir/text.md").exists());
    assert!(
        std::fs::read(base.join("dir/nested/multi-chunk.bin")).unwrap()
            == std::fs::read(src.join("dir/nested/multi-chunk.bin")).unwrap()
    );
}

#[test]
fn snapshots_filter_and_forget() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let a = env.create(&[&src], &["--host", "laptop", "--tag", "daily"]);
    env.create(&[&src], &["--host", "desktop"]);
    let all = env.json(&["snapshots"]);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let s = &all[0];
    for key in [
        "id", "short_id", "time", "host", "username", "paths", "tags", "parent", "summary",
    ] {
        assert!(s.get(key).is_some(), "snapshots --json lacks {key}");
    }
    chrono::DateTime::parse_from_rfc3339(s["time"].as_str().unwrap()).unwrap();
    assert_eq!(
        env.json(&["snapshots", "--host", "laptop"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        env.json(&["snapshots", "--tag", "daily"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A prefix of the id works, and global options after the command too.
    let prefix = &snapshot_id(&a)[..10];
    env.snap()
        .args(["forget", prefix, "--repo", &env.repo])
        .assert()
        .success();
    let left = env.json(&["snapshots"]);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["host"], "desktop");
    // The human table names the host.
    let out = env.snap().arg("snapshots").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("desktop"));
}

#[test]
fn default_repository_is_created_on_first_backup() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"first backup").unwrap();
    let out = env
        .snap()
        .env_remove("SNAP_REPOSITORY")
        .arg("create")
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let default = env.path("data/snap/repository");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&default.display().to_string()));
    assert!(default.join("config").exists());
    let out = env
        .snap()
        .env_remove("SNAP_REPOSITORY")
        .args(["--json", "snapshots"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn init_twice_is_refused_and_keeps_the_first() {
    let env = Env::new();
    env.init();
    let config = std::fs::read(Path::new(&env.repo).join("config")).unwrap();
    let out = env
        .snap()
        .args(["init", "--kdf-memory", "1024"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read(Path::new(&env.repo).join("config")).unwrap(),
        config
    );
}

#[test]
fn init_names_the_kdf_flag_that_is_out_of_range() {
    let env = Env::new();
    // Four lanes of at least 8 KiB each: 31 KiB is one short.
    for args in [["--kdf-memory", "31"], ["--kdf-iterations", "65"]] {
        let out = env.snap().arg("init").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{args:?}: {err}");
        assert!(!Path::new(&env.repo).join("config").exists());
    }
    let out = env
        .snap()
        .args(["init", "--kdf-memory", "32", "--kdf-iterations", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn missing_source_paths_are_reported() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    // Some missing: snapshot written, exit code 3.
    let out = env
        .snap()
        .arg("create")
        .arg(&src)
        .arg(env.path("does-not-exist"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does-not-exist"));
    // All missing: nothing to do, an error.
    let out = env
        .snap()
        .arg("create")
        .arg(env.path("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn check_read_data_subset_reads_part_of_the_packs_and_finds_damage_in_it() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..6u64 {
        std::fs::write(src.join(format!("f{i}")), random_bytes(300 + i, 12 << 20)).unwrap();
    }
    env.create(&[&src], &[]);
    let packs = env.pack_files().len() as u64;
    assert!(packs >= 4);
    // The slices 1/2 and 2/2 together read every pack exactly once.
    let a = env.json(&["check", "--read-data-subset", "1/2"]);
    let b = env.json(&["check", "--read-data-subset", "2/2"]);
    assert_eq!(
        a["packs_read"].as_u64().unwrap() + b["packs_read"].as_u64().unwrap(),
        packs
    );
    assert_eq!(
        env.json(&["check", "--read-data-subset", "100%"])["packs_read"],
        packs
    );
    // Damage is found by the slice that holds it.
    let victim = &env.pack_files()[0];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[100] ^= 0x80;
    std::fs::write(victim, bytes).unwrap();
    let name = victim.file_name().unwrap().to_str().unwrap().to_string();
    let failed: Vec<bool> = ["1/2", "2/2"]
        .iter()
        .map(|s| {
            let out = env
                .snap()
                .args(["check", "--read-data-subset", s])
                .output()
                .unwrap();
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains(&name)
        })
        .collect();
    assert_eq!(
        failed.iter().filter(|f| **f).count(),
        1,
        "exactly one slice holds the damaged pack"
    );
    let out = env
        .snap()
        .args(["check", "--read-data-subset", "150%"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad subset is a usage error");
}

#[test]
fn unreadable_files_are_named_the_rest_is_saved_and_the_exit_code_is_3() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("locked-dir")).unwrap();
    std::fs::write(src.join("fine.txt"), b"readable").unwrap();
    std::fs::write(src.join("secret.txt"), b"unreadable").unwrap();
    std::fs::write(src.join("locked-dir/inner"), b"x").unwrap();
    std::fs::set_permissions(
        src.join("secret.txt"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    std::fs::set_permissions(
        src.join("locked-dir"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    // Root reads anything: run snap as an unprivileged user then.
    let as_user = |args: &[&str]| {
        let mut c = env.snap();
        if is_root() {
            for d in [env.dir.path(), &env.path("cache"), &env.path("data"), &src] {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
            }
            c = env.snap_via(&[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ]);
        }
        c.args(args).output().unwrap()
    };
    let out = as_user(&["init", "--kdf-memory", "1024", "--kdf-iterations", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_user(&["--json", "create", src.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret.txt") && err.contains("locked-dir"),
        "each unreadable path is named: {err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["warnings"].as_array().unwrap().len(), 2);
    let t = env.path("out");
    let out = as_user(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = t.join(src.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read(restored.join("fine.txt")).unwrap(),
        b"readable"
    );
    assert!(!restored.join("secret.txt").exists());
}

#[test]
fn a_file_written_while_it_is_read_is_named_and_the_exit_code_is_3() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("steady.txt"), b"unchanged").unwrap();
    let busy = src.join("growing.log");
    std::fs::write(&busy, random_bytes(11, 64 << 20)).unwrap();
    // A writer that appends for as long as the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, busy) = (stop.clone(), busy.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&busy)
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                f.write_all(&[b'x'; 4096]).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let out = env
        .snap()
        .args(["--json", "create"])
        .arg(&src)
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("growing.log") && err.contains("changed while it was read"),
        "{err}"
    );
    // Said as what happened: read, changed, stored as read; not "could not
    // be read", which is what the summary used to say of it.
    assert!(!err.contains("could not be read"), "{err}");
    assert!(
        err.contains("1 file(s) changed while they were read"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["changed_while_read"], 1, "{v}");
    // The rest of the snapshot is there, and the next backup reads the file again.
    let restored = env.restore("latest", &src, "out");
    assert_eq!(
        std::fs::read(restored.join("steady.txt")).unwrap(),
        b"unchanged"
    );
    let again = env.create(&[&src], &[]);
    assert_eq!(
        again["files_changed"], 1,
        "the torn file must be read again: {again}"
    );
}
