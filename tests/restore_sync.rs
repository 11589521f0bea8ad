//! Device B becomes device A: `restore ID:PATH --target DIR --delete` makes
//! a folder match a snapshot, previews with --dry-run, and can be undone;
//! `--overwrite` modes; `dump`; the safety nets. Against a local
//! repository and against Garage.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

/// Every entry below `root`, with what a restore could change: kind, mode,
/// size, mtime, content or link target.
fn listing(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = p.symlink_metadata().unwrap();
            let what = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_file() {
                format!("{}", blake3::hash(&std::fs::read(&p).unwrap()))
            } else {
                "special".to_string()
            };
            let xattrs = if m.file_type().is_symlink() {
                Vec::new()
            } else {
                xattrs_of(&p)
            };
            out.push((
                p.strip_prefix(root).unwrap().to_path_buf(),
                format!(
                    "{what} {:o} {} {}.{} {xattrs:?}",
                    m.mode(),
                    m.len(),
                    m.mtime(),
                    m.mtime_nsec()
                ),
            ));
        }
    }
    out.sort();
    out
}

/// B's folder: A's tree, then changed as a second device's copy drifts:
/// an extra file and directory, a changed file, a missing one, a directory
/// where A has a file, a link pointing elsewhere.
fn drifted_copy(b: &Path) {
    make_tree(b);
    add_xattrs(b);
    let _ = std::fs::remove_file(b.join("socket"));
    xattr::remove(b.join("hello.txt"), "user.comment").unwrap();
    xattr::set(b.join("dir/text.md"), "user.only-on-b", b"B").unwrap();
    xattr::set(b.join("dir"), "user.origin", b"device B").unwrap();
    std::fs::write(b.join("only-on-b.txt"), b"B's own file").unwrap();
    std::fs::create_dir_all(b.join("b-cache/sub")).unwrap();
    std::fs::write(b.join("b-cache/sub/blob"), random_bytes(50, 10_000)).unwrap();
    std::fs::set_permissions(
        b.join("dir/text.md"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(b.join("dir/text.md"), "# other notes\n".repeat(10)).unwrap();
    std::fs::remove_file(b.join("dir/nested/deeper/small")).unwrap();
    std::fs::remove_file(b.join("empty")).unwrap();
    std::fs::create_dir_all(b.join("empty/was-a-file")).unwrap();
    std::fs::write(b.join("empty/was-a-file/x"), b"x").unwrap();
    std::fs::remove_file(b.join("link-to-hello")).unwrap();
    std::os::unix::fs::symlink("somewhere-else", b.join("link-to-hello")).unwrap();
}

use std::os::unix::fs::PermissionsExt;

fn b_becomes_a(env: &Env) {
    env.init();
    let a = env.path("home/alice/App");
    make_tree(&a);
    add_xattrs(&a);
    let id = env.create(&[&a], &["--host", "A"])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = env.path("home/bob/App");
    drifted_copy(&b);
    let before = listing(&b);
    let spec = format!("{id}:{}", a.display());

    // The preview changes nothing and lists the extra file as a deletion.
    let preview = env.json(&[
        "restore",
        &spec,
        "--target",
        b.to_str().unwrap(),
        "--delete",
        "--dry-run",
    ]);
    assert_eq!(listing(&b), before, "--dry-run changed the target");
    let changes = preview["changes"].as_array().unwrap();
    let has = |change: &str, path: &Path| {
        changes
            .iter()
            .any(|c| c["change"] == change && c["path"].as_str() == Some(path.to_str().unwrap()))
    };
    assert!(has("delete", &b.join("only-on-b.txt")), "{preview}");
    assert!(has("delete", &b.join("b-cache")), "{preview}");
    assert!(has("replace", &b.join("dir/text.md")), "{preview}");
    assert!(
        has("create", &b.join("dir/nested/deeper/small")),
        "{preview}"
    );
    assert!(has("replace", &b.join("empty")), "{preview}");
    assert!(has("replace", &b.join("link-to-hello")), "{preview}");
    assert!(!has("replace", &b.join("hello.txt")), "{preview}");
    assert_eq!(preview["totals"]["delete"]["entries"], 2, "{preview}");

    // The restore: B's folder becomes A's, byte for byte and in metadata.
    let r = env.json(&[
        "restore",
        &spec,
        "--target",
        b.to_str().unwrap(),
        "--delete",
    ]);
    assert_same_tree(&a, &b);
    assert!(r["files_kept"].as_u64().unwrap() > 0, "{r}");
    let undo = r["undo_snapshot_id"]
        .as_str()
        .expect("no undo snapshot")
        .to_string();
    assert!(
        r["undo_command"]
            .as_str()
            .unwrap()
            .contains(&format!("--target {} --delete", b.display())),
        "{r}"
    );
    let undo_snapshot = env
        .json(&["snapshots", "--tag", "pre-restore"])
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(undo_snapshot.len(), 1);
    assert!(
        undo_snapshot[0]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str() == Some(&format!("restoring:{id}"))),
        "{undo_snapshot:?}"
    );

    // A second run finds nothing to do.
    let again = env.json(&[
        "restore",
        &spec,
        "--target",
        b.to_str().unwrap(),
        "--delete",
    ]);
    assert_eq!(again["files_written"], 0, "{again}");
    assert_eq!(again["deleted"], 0, "{again}");
    assert!(again["undo_snapshot_id"].is_null(), "{again}");

    // Undo brings B's folder back exactly.
    env.snap()
        .args(["restore", &format!("{undo}:{}", b.display()), "--target"])
        .arg(&b)
        .args(["--delete", "--no-undo"])
        .assert()
        .success();
    assert_eq!(listing(&b), before, "undo did not bring B's folder back");
}

#[test]
fn device_b_becomes_device_a_and_back_locally() {
    b_becomes_a(&Env::new());
}

#[test]
fn device_b_becomes_device_a_and_back_on_s3() {
    b_becomes_a(&Env::s3("sync"));
}

#[test]
fn each_overwrite_mode() {
    overwrite_modes(&Env::new());
}

#[test]
fn each_overwrite_mode_from_s3() {
    overwrite_modes(&Env::s3("overwrite"));
}

fn overwrite_modes(env: &Env) {
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for name in ["same", "older", "newer"] {
        std::fs::write(src.join(name), format!("snapshot's {name}")).unwrap();
        filetime::set_file_mtime(
            src.join(name),
            filetime::FileTime::from_unix_time(1_700_000_000, 0),
        )
        .unwrap();
    }
    std::fs::write(src.join("missing"), b"snapshot's missing").unwrap();
    let id = env.create(&[&src], &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let spec = format!("{id}:{}", src.display());
    let setup = |t: &Path| {
        let _ = std::fs::remove_dir_all(t);
        std::fs::create_dir_all(t).unwrap();
        std::fs::copy(src.join("same"), t.join("same")).unwrap();
        filetime::set_file_mtime(
            t.join("same"),
            filetime::FileTime::from_unix_time(1_700_000_000, 0),
        )
        .unwrap();
        std::fs::write(t.join("older"), b"target's older, longer").unwrap();
        filetime::set_file_mtime(
            t.join("older"),
            filetime::FileTime::from_unix_time(1_600_000_000, 0),
        )
        .unwrap();
        std::fs::write(t.join("newer"), b"target's newer, longer").unwrap();
        filetime::set_file_mtime(
            t.join("newer"),
            filetime::FileTime::from_unix_time(1_800_000_000, 0),
        )
        .unwrap();
    };
    let t = env.path("t");
    let read = |n: &str| std::fs::read_to_string(t.join(n)).unwrap();
    let ino = |n: &str| std::fs::metadata(t.join(n)).unwrap().ino();
    for (mode, same_rewritten, older, newer) in [
        ("if-changed", false, "snapshot's older", "snapshot's newer"),
        ("always", true, "snapshot's older", "snapshot's newer"),
        (
            "if-newer",
            false,
            "snapshot's older",
            "target's newer, longer",
        ),
        (
            "never",
            false,
            "target's older, longer",
            "target's newer, longer",
        ),
    ] {
        setup(&t);
        let same_ino = ino("same");
        env.snap()
            .args(["restore", &spec, "--target"])
            .arg(&t)
            .args(["--overwrite", mode, "--no-undo"])
            .assert()
            .success();
        assert_eq!(read("missing"), "snapshot's missing", "{mode}");
        assert_eq!(read("same"), "snapshot's same", "{mode}");
        assert_eq!(
            ino("same") != same_ino,
            same_rewritten,
            "{mode}: same file rewritten?"
        );
        assert_eq!(read("older"), older, "{mode}");
        assert_eq!(read("newer"), newer, "{mode}");
    }
    let out = env
        .snap()
        .args(["restore", &spec, "--target"])
        .arg(&t)
        .args(["--overwrite", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--overwrite"), "{}", stderr(&out));
}

#[test]
fn delete_never_reaches_outside_what_the_restore_covers() {
    delete_stays_inside(&Env::new());
}

#[test]
fn delete_from_s3_never_reaches_outside_what_the_restore_covers() {
    delete_stays_inside(&Env::s3("delete-inside"));
}

fn delete_stays_inside(env: &Env) {
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/keep"), b"k").unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    let id = env.create(&[&src], &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let spec = format!("{id}:{}", src.display());
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    for i in 0..5 {
        std::fs::write(outside.join(format!("precious{i}")), b"not yours").unwrap();
    }
    let t = env.path("t");
    std::fs::create_dir_all(&t).unwrap();
    // A link the snapshot lacks, pointing out: the link goes, not what it points to.
    std::os::unix::fs::symlink(&outside, t.join("escape")).unwrap();
    // A link where the snapshot has a directory: replaced by a real one.
    std::os::unix::fs::symlink(&outside, t.join("sub")).unwrap();
    env.snap()
        .args(["restore", &spec, "--target"])
        .arg(&t)
        .args(["--delete", "--yes"])
        .assert()
        .success();
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 5);
    assert!(t.join("escape").symlink_metadata().is_err());
    assert!(t.join("sub").symlink_metadata().unwrap().is_dir());
    assert_same_tree(&src, &t);

    // A target that is itself a link, with --delete: refused, nothing touched.
    let via = env.path("via-link");
    std::os::unix::fs::symlink(&outside, &via).unwrap();
    let out = env
        .snap()
        .args(["restore", &spec, "--target"])
        .arg(&via)
        .args(["--delete", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 5);

    // An absolute-path restore covers the backed-up folder only: a sibling
    // of it in the target is not deleted.
    let t2 = env.path("t2");
    let sibling = t2.join(env.path("sibling").strip_prefix("/").unwrap());
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(sibling.join("f"), b"sibling").unwrap();
    env.snap()
        .args(["restore", &id, "--target"])
        .arg(&t2)
        .args(["--delete", "--yes"])
        .assert()
        .success();
    assert!(sibling.join("f").exists());
}

/// A repository with one backup of a folder holding one file: the folder
/// and the snapshot's id.
fn one_file_backed_up() -> (Env, PathBuf, String) {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("one"), b"1").unwrap();
    let id = env.create(&[&src], &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    (env, src, id)
}

/// An undo snapshot of a restore in place has the backups' host and
/// folder; retention keeps it apart, so "keep the last 1" once kept it and
/// removed the only backup.
#[test]
fn keep_last_never_trades_a_backup_for_an_undo_snapshot() {
    let (env, src, backup) = one_file_backed_up();
    std::fs::write(src.join("one"), b"changed").unwrap();
    env.snap()
        .args([
            "restore",
            &format!("{backup}:{}", src.display()),
            "--target",
        ])
        .arg(&src)
        .assert()
        .success();
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 2);
    let r = env.json(&["prune", "--keep-last", "1"]);
    let removed = r["snapshots_forgotten"].as_array().unwrap();
    assert!(removed.is_empty(), "{r}");
    let left: Vec<String> = env
        .json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(left.contains(&backup), "{left:?}");
}

/// A restore into the repository's folder, or over a folder that holds
/// it, is refused before anything is touched: with --delete it deleted
/// the repository, and the undo snapshot it had just written there.
#[test]
fn a_restore_never_writes_into_or_over_its_own_repository() {
    let (env, src, id) = one_file_backed_up();
    let repo = PathBuf::from(&env.repo);
    let before = listing(&repo);
    // The repository itself, a folder inside it, and the folder above it.
    for target in [
        repo.clone(),
        repo.join("data"),
        env.dir.path().to_path_buf(),
    ] {
        let out = env
            .snap()
            .args(["restore", &format!("{id}:{}", src.display()), "--target"])
            .arg(&target)
            .args(["--delete", "--yes"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", target.display());
        assert!(
            stderr(&out).contains("where the repository it reads from is"),
            "{}",
            stderr(&out)
        );
        assert_eq!(listing(&repo), before, "{}", target.display());
    }
    env.snap().args(["check", "--read-data"]).assert().success();
}

#[test]
fn deleting_most_of_a_folder_needs_yes_and_bad_paths_touch_nothing() {
    let (env, src, id) = one_file_backed_up();
    let t = env.path("home");
    std::fs::create_dir_all(&t).unwrap();
    for i in 0..10 {
        std::fs::write(t.join(format!("doc{i}")), b"mine").unwrap();
    }
    let before = listing(&t);
    let out = env
        .snap()
        .args(["restore", &format!("{id}:{}", src.display()), "--target"])
        .arg(&t)
        .arg("--delete")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("deletes 10 of the 10 files") && stderr(&out).contains("--yes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(listing(&t), before);
    for bad in [format!("{id}:/no/such/path"), "0000beef".to_string()] {
        let out = env
            .snap()
            .args(["restore", &bad, "--target"])
            .arg(&t)
            .args(["--delete", "--yes"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", stderr(&out));
        assert_eq!(listing(&t), before, "{bad}");
    }
    env.snap()
        .args(["restore", &format!("{id}:{}", src.display()), "--target"])
        .arg(&t)
        .args(["--delete", "--yes"])
        .assert()
        .success();
    assert_same_tree(&src, &t);
}

#[test]
fn a_killed_restore_leaves_no_torn_file_and_a_rerun_finishes() {
    killed_restore(&Env::new());
}

#[test]
fn a_killed_restore_from_s3_leaves_no_torn_file_and_a_rerun_finishes() {
    killed_restore(&Env::s3("killed-restore"));
}

fn killed_restore(env: &Env) {
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..12u64 {
        std::fs::write(src.join(format!("f{i:02}")), random_bytes(900 + i, 6 << 20)).unwrap();
    }
    let id = env.create(&[&src], &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let spec = format!("{id}:{}", src.display());
    let t = env.path("t");
    let mut child = env
        .device_std("x")
        .args(["restore", &spec, "--target"])
        .arg(&t)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once something is being written.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let started = std::fs::read_dir(&t)
            .map(|d| d.count() > 0)
            .unwrap_or(false);
        if started || child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    for e in std::fs::read_dir(&t).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with(".snap-") {
            assert_eq!(
                std::fs::read(&p).unwrap(),
                std::fs::read(src.join(&name)).unwrap(),
                "{name} is under its final name but not complete"
            );
        }
    }
    env.snap()
        .args(["restore", &spec, "--target"])
        .arg(&t)
        .args(["--delete", "--yes"])
        .assert()
        .success();
    assert_same_tree(&src, &t);
}

#[test]
fn includes_and_excludes_select_what_is_restored_and_deleted() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::create_dir_all(src.join("cache")).unwrap();
    std::fs::write(src.join("docs/a.txt"), b"a").unwrap();
    std::fs::write(src.join("docs/b.pdf"), b"b").unwrap();
    std::fs::write(src.join("cache/c"), b"c").unwrap();
    let id = env.create(&[&src], &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let spec = format!("{id}:{}", src.display());
    let t = env.path("t");
    std::fs::create_dir_all(t.join("cache")).unwrap();
    std::fs::create_dir_all(t.join("docs")).unwrap();
    std::fs::write(t.join("cache/local-only"), b"keep me").unwrap();
    std::fs::write(t.join("docs/old.txt"), b"extra").unwrap();
    env.snap()
        .args(["restore", &spec, "--target"])
        .arg(&t)
        .args([
            "--include",
            "*.txt",
            "--exclude",
            "cache",
            "--delete",
            "--yes",
        ])
        .assert()
        .success();
    assert_eq!(std::fs::read(t.join("docs/a.txt")).unwrap(), b"a");
    assert!(!t.join("docs/b.pdf").exists(), "not included");
    assert!(
        !t.join("docs/old.txt").exists(),
        "an included extra is deleted"
    );
    assert_eq!(
        std::fs::read(t.join("cache/local-only")).unwrap(),
        b"keep me"
    );
    assert!(!t.join("cache/c").exists());
}

#[test]
fn dump_writes_a_file_or_a_directory_as_tar() {
    dump_file_and_dir(&Env::new());
}

#[test]
fn dump_from_s3_writes_a_file_or_a_directory_as_tar() {
    dump_file_and_dir(&Env::s3("dump"));
}

fn dump_file_and_dir(env: &Env) {
    env.init();
    let src = env.path("src");
    make_tree(&src);
    env.create(&[&src], &[]);
    let file = src.join("dir/nested/multi-chunk.bin");
    let out = env
        .snap()
        .args(["dump", "latest"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout == std::fs::read(&file).unwrap());

    let out = env
        .snap()
        .args(["dump", "latest"])
        .arg(src.join("dir"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let tarball = env.path("dir.tar");
    std::fs::write(&tarball, &out.stdout).unwrap();
    let x = env.path("x");
    std::fs::create_dir_all(&x).unwrap();
    let untar = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(untar.success());
    let mut stack = vec![PathBuf::from("dir")];
    let mut seen = 0;
    while let Some(rel) = stack.pop() {
        let (a, b) = (src.join(&rel), x.join(&rel));
        let (ma, mb) = (a.symlink_metadata().unwrap(), b.symlink_metadata().unwrap());
        assert_eq!(ma.file_type(), mb.file_type(), "{}", rel.display());
        assert_eq!(ma.mtime(), mb.mtime(), "{}", rel.display());
        if ma.is_dir() {
            for e in std::fs::read_dir(&a).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
        } else if ma.is_file() {
            assert_eq!(ma.mode() & 0o7777, mb.mode() & 0o7777, "{}", rel.display());
            assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "{}",
                rel.display()
            );
        }
        seen += 1;
    }
    assert!(seen >= 8, "{seen}");
    let out = env
        .snap()
        .args(["dump", "latest"])
        .arg(src.join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not in snapshot"),
        "{}",
        stderr(&out)
    );
}

/// A target whose file system refuses extended attributes (ramfs) gets
/// the files, a warning naming each attribute, and exit code 3.
#[test]
fn refused_extended_attributes_are_warnings_with_exit_code_3() {
    if !is_root() {
        eprintln!("skipped: mounting ramfs needs root");
        return;
    }
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("tagged"), b"content").unwrap();
    xattr::set(src.join("tagged"), "user.tag", b"v").unwrap();
    let id = env.create(&[&src], &[])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mnt = env.path("ramfs");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "ramfs", "ramfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(mounted.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let out = env
        .snap()
        .args(["restore", &format!("{id}:{}", src.display()), "--target"])
        .arg(&mnt)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tagged: extended attribute user.tag not restored"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(mnt.join("tagged")).unwrap(), b"content");
}

/// An attribute set on an unchanged file is in the next backup: the
/// backup reuses the parent's attributes only while the ctime is the same.
#[test]
fn a_changed_attribute_alone_is_backed_up() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"same content").unwrap();
    env.create(&[&src], &[]);
    xattr::set(src.join("f"), "user.added", b"later").unwrap();
    env.create(&[&src], &[]);
    let t = env.path("t");
    env.snap()
        .args(["restore", &format!("latest:{}", src.display()), "--target"])
        .arg(&t)
        .assert()
        .success();
    assert_eq!(
        xattr::get(t.join("f"), "user.added").unwrap().as_deref(),
        Some(&b"later"[..])
    );
}

/// Found by attacking the restore: what the target holds must not lead
/// a restore to write, change or delete anything elsewhere.
mod attacks {
    use super::*;

    fn snapshot_of(env: &Env, files: &[(&str, &[u8])]) -> (PathBuf, String) {
        env.init();
        let src = env.path("src");
        for (name, content) in files {
            let p = src.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        }
        let id = env.create(&[&src], &[])["snapshot_id"]
            .as_str()
            .unwrap()
            .to_string();
        let spec = format!("{id}:{}", src.display());
        (src, spec)
    }

    fn restore(env: &Env, spec: &str, target: &Path, extra: &[&str]) -> std::process::Output {
        env.snap()
            .args(["restore", spec, "--target"])
            .arg(target)
            .args(extra)
            .output()
            .unwrap()
    }

    #[test]
    fn a_planted_partial_name_does_not_lead_the_write_elsewhere() {
        let env = Env::new();
        let (_, spec) = snapshot_of(&env, &[("a.txt", b"hello")]);
        let victim = env.path("outside/victim");
        std::fs::create_dir_all(victim.parent().unwrap()).unwrap();
        std::fs::write(&victim, b"PRECIOUS").unwrap();
        let t = env.path("t");
        std::fs::create_dir_all(&t).unwrap();
        let tag = &blake3::hash(b"a.txt").to_hex()[..16];
        let partial = t.join(format!(".snap-{tag}.partial"));
        std::os::unix::fs::symlink(&victim, &partial).unwrap();
        let out = restore(&env, &spec, &t, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(std::fs::read(&victim).unwrap(), b"PRECIOUS");
        assert!(t.join("a.txt").symlink_metadata().unwrap().is_file());
        assert_eq!(std::fs::read(t.join("a.txt")).unwrap(), b"hello");
        // A hard link planted there neither.
        std::fs::remove_file(t.join("a.txt")).unwrap();
        std::fs::hard_link(&victim, &partial).unwrap();
        assert!(restore(&env, &spec, &t, &[]).status.success());
        assert_eq!(std::fs::read(&victim).unwrap(), b"PRECIOUS");
    }

    #[test]
    fn a_hard_link_to_a_file_outside_keeps_that_file_as_it_was() {
        let env = Env::new();
        let (src, spec) = snapshot_of(&env, &[("a.txt", b"hello")]);
        let victim = env.path("outside/victim");
        std::fs::create_dir_all(victim.parent().unwrap()).unwrap();
        std::fs::write(&victim, b"hello").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        filetime::set_file_mtime(&victim, filetime::FileTime::from_unix_time(946_684_800, 0))
            .unwrap();
        let t = env.path("t");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::hard_link(&victim, t.join("a.txt")).unwrap();
        let before = std::fs::metadata(&victim).unwrap();
        let out = restore(&env, &spec, &t, &["--no-undo"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let after = std::fs::metadata(&victim).unwrap();
        assert_eq!(after.mode(), before.mode());
        assert_eq!(after.mtime(), before.mtime());
        assert_same_tree(&src, &t);
    }

    #[test]
    fn a_link_as_target_is_saved_by_what_it_points_to() {
        let env = Env::new();
        let (src, spec) = snapshot_of(&env, &[("a.txt", b"hello")]);
        let real = env.path("real");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("a.txt"), b"mine, and different").unwrap();
        let link = env.path("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        // With --delete, `link/` is a link all the same.
        let out = restore(&env, &spec, &env.path("link/"), &["--delete", "--yes"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
        let r = env.json(&["restore", &spec, "--target", link.to_str().unwrap()]);
        let undo = r["undo_command"].as_str().unwrap();
        assert!(
            undo.contains(&format!("--target {}", real.display())),
            "{undo}"
        );
        assert_same_tree(&src, &real);
        let undo_id = r["undo_snapshot_id"].as_str().unwrap();
        env.snap()
            .args([
                "restore",
                &format!("{undo_id}:{}", real.display()),
                "--target",
            ])
            .arg(&real)
            .args(["--delete", "--no-undo"])
            .assert()
            .success();
        assert_eq!(
            std::fs::read(real.join("a.txt")).unwrap(),
            b"mine, and different"
        );
    }

    #[test]
    fn a_directory_in_the_way_survives_a_failed_restore() {
        let env = Env::new();
        let (_, spec) = snapshot_of(&env, &[("d", b""), ("f", &random_bytes(3, 100_000))]);
        // Damage every pack: f cannot be restored.
        for p in env.pack_files() {
            let mut bytes = std::fs::read(&p).unwrap();
            let n = bytes.len();
            for b in &mut bytes[n / 3..n / 3 + 64] {
                *b ^= 0xff;
            }
            std::fs::write(&p, bytes).unwrap();
        }
        let t = env.path("t");
        std::fs::create_dir_all(t.join("d/precious")).unwrap();
        std::fs::write(t.join("d/precious/file"), b"keep").unwrap();
        let out = restore(&env, &spec, &t, &["--delete", "--yes", "--no-undo"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(std::fs::read(t.join("d/precious/file")).unwrap(), b"keep");
    }

    #[test]
    fn a_file_above_what_is_restored_is_not_replaced() {
        let env = Env::new();
        let (src, _) = snapshot_of(&env, &[("a.txt", b"hello")]);
        let t = env.path("t");
        // Where the snapshot has the directory above src, a file.
        let above = t.join(src.parent().unwrap().strip_prefix("/").unwrap());
        std::fs::create_dir_all(above.parent().unwrap()).unwrap();
        std::fs::write(&above, b"not a directory, and not yours").unwrap();
        let out = restore(&env, "latest", &t, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("move it away"), "{}", stderr(&out));
        assert_eq!(
            std::fs::read(&above).unwrap(),
            b"not a directory, and not yours"
        );
    }

    #[test]
    fn two_restores_into_one_target_do_not_run_at_once() {
        let env = Env::new();
        let (_, spec) = snapshot_of(&env, &[("a.txt", b"hello")]);
        let t = env.path("t");
        std::fs::create_dir_all(&t).unwrap();
        let held = nix::fcntl::Flock::lock(
            std::fs::File::open(&t).unwrap(),
            nix::fcntl::FlockArg::LockExclusiveNonblock,
        )
        .unwrap();
        let out = restore(&env, &spec, &t, &[]);
        assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
        assert!(stderr(&out).contains("another restore"), "{}", stderr(&out));
        assert!(!t.join("a.txt").exists());
        drop(held);
        assert!(restore(&env, &spec, &t, &[]).status.success());
    }

    /// The undo of a restore that added most of a folder's files deletes
    /// most of them: the printed command says --yes, or it would stop
    /// without a terminal to ask on.
    #[test]
    fn the_printed_undo_runs_unattended() {
        let env = Env::new();
        let (_, spec) = snapshot_of(
            &env,
            &[("a.txt", b"hello"), ("b", b"b"), ("c", b"c"), ("d", b"d")],
        );
        let t = env.path("t");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("a.txt"), b"before").unwrap();
        let r = env.json(&["restore", &spec, "--target", t.to_str().unwrap()]);
        let cmd = r["undo_command"].as_str().unwrap().to_string();
        let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
        // Its stderr is not a terminal, so nothing can be asked.
        let out = env.snap().args(&args).output().unwrap();
        assert!(out.status.success(), "{cmd}: {}", stderr(&out));
        let left: Vec<_> = std::fs::read_dir(&t)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["a.txt"]);
        assert_eq!(std::fs::read(t.join("a.txt")).unwrap(), b"before");
    }

    #[test]
    fn the_undo_of_a_single_file_restore_works() {
        let env = Env::new();
        let (src, _) = snapshot_of(&env, &[("a.txt", b"hello")]);
        let t = env.path("t");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("a.txt"), b"before").unwrap();
        let spec = format!("latest:{}", src.join("a.txt").display());
        let r = env.json(&["restore", &spec, "--target", t.to_str().unwrap()]);
        assert_eq!(std::fs::read(t.join("a.txt")).unwrap(), b"hello");
        let cmd = r["undo_command"].as_str().unwrap().to_string();
        let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
        env.snap().args(&args).arg("--no-undo").assert().success();
        assert_eq!(std::fs::read(t.join("a.txt")).unwrap(), b"before");
        // `latest:PATH` passed over that undo snapshot, and does again.
        let again = env.json(&["restore", &spec, "--target", t.to_str().unwrap()]);
        assert_ne!(again["snapshot_id"], r["undo_snapshot_id"]);
    }
}

/// The target changing while the undo snapshot is taken (a directory
/// swapped for a link to elsewhere) stops the restore before it writes.
#[test]
fn a_target_that_changes_during_the_undo_snapshot_is_left_alone() {
    use snap_engine::commands::restore::{self, RestoreOptions};
    use snap_engine::progress::Progress;

    struct SwapOnFinish {
        dir: PathBuf,
        elsewhere: PathBuf,
        done: std::sync::atomic::AtomicBool,
    }
    impl Progress for SwapOnFinish {
        fn finish(&self) {
            if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::fs::rename(&self.dir, self.dir.with_extension("real")).unwrap();
                std::os::unix::fs::symlink(&self.elsewhere, &self.dir).unwrap();
            }
        }
    }
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/b.txt"), b"b").unwrap();
    env.create(&[&src], &[]);
    let t = env.path("t");
    std::fs::create_dir_all(t.join("sub")).unwrap();
    std::fs::write(t.join("sub/junk"), b"junk").unwrap();
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("junk"), b"not yours").unwrap();
    let repo = open_local(&env);
    let opts = RestoreOptions {
        snapshot: "latest".into(),
        path: Some(src.clone()),
        target: t.clone(),
        delete: true,
        ..Default::default()
    };
    let p = SwapOnFinish {
        dir: t.join("sub"),
        elsewhere: elsewhere.clone(),
        done: Default::default(),
    };
    let err = restore::restore(&repo, &opts, &p).unwrap_err().to_string();
    assert!(err.contains("changed while its undo snapshot"), "{err}");
    assert_eq!(std::fs::read(elsewhere.join("junk")).unwrap(), b"not yours");
    assert!(!elsewhere.join("b.txt").exists());
}

/// A directory of the target swapped for a link to elsewhere between the
/// plan and the writes: nothing is written through the link. (On Windows
/// the same happens without a race, when a link in the way cannot be
/// removed or differs from the snapshot's name only in case: the restore
/// writes only into real directories.)
#[test]
fn a_directory_swapped_for_a_link_after_the_plan_is_not_written_through() {
    use snap_engine::commands::restore::{self, RestoreOptions};
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/file.txt"), b"restored").unwrap();
    env.create(&[&src], &[]);
    let t = env.path("t");
    env.snap()
        .args(["restore", "--no-undo", &format!("latest:{}", src.display())])
        .arg("--target")
        .arg(&t)
        .assert()
        .success();
    std::fs::remove_file(t.join("d/file.txt")).unwrap();
    let repo = open_local(&env);
    let opts = RestoreOptions {
        snapshot: "latest".into(),
        path: Some(src.clone()),
        target: t.clone(),
        no_undo: true,
        ..Default::default()
    };
    let indexed = repo.indexed().unwrap();
    let plan = restore::plan(&indexed, &opts).unwrap();
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::remove_dir(t.join("d")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, t.join("d")).unwrap();
    let r = restore::apply(indexed, &plan, &opts, &snap_engine::progress::Silent).unwrap();
    assert!(
        r.errors.iter().any(|e| e.contains("not a directory")),
        "{:?}",
        r.errors
    );
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "written through the link"
    );
}

use snap_engine::Repository;
use snap_engine::backend::StoreBackend;
use std::sync::Arc;

/// The env's local repository, opened through the engine's API.
fn open_local(env: &Env) -> Repository {
    let backend = Arc::new(StoreBackend::local(Path::new(&env.repo), false).unwrap());
    Repository::open(backend, &|| Ok(PASSWORD.to_string())).unwrap()
}
