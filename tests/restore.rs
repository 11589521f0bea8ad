//! Restore under adversity: resumed after damage or a kill, and a disk that
//! fills up.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

fn leftovers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().ends_with(".partial") {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

#[test]
fn restore_again_keeps_correct_files_and_repairs_the_rest() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..6u64 {
        std::fs::write(src.join(format!("f{i}.bin")), random_bytes(i, 3 << 20)).unwrap();
    }
    env.create(&[&src], &[]);
    let target = env.path("out");
    let first = env.json(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(first["files_kept"], 0);
    let restored = target.join(src.strip_prefix("/").unwrap());

    // Damage one file in place (same size), delete another.
    let damaged = restored.join("f2.bin");
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(&damaged, &bytes).unwrap();
    std::fs::remove_file(restored.join("f4.bin")).unwrap();

    let second = env.json(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(
        second["files_kept"], 4,
        "intact files are verified and kept"
    );
    let fetched = second["bytes_downloaded"].as_u64().unwrap();
    let total = first["bytes_downloaded"].as_u64().unwrap();
    assert!(
        fetched < total / 2,
        "a resumed restore fetched {fetched} of {total} bytes"
    );
    assert_same_tree(&src, &restored);
}

#[test]
fn a_killed_restore_continues_where_it_stopped() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..40u64 {
        std::fs::write(
            src.join(format!("f{i:02}.bin")),
            random_bytes(100 + i, 4 << 20),
        )
        .unwrap();
    }
    env.create(&[&src], &[]);
    let target = env.path("out");
    let restored = target.join(src.strip_prefix("/").unwrap());
    let mut child = env
        .device_std("x")
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some files are complete, or when it has finished.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let complete = std::fs::read_dir(&restored)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".bin"))
                    .count()
            })
            .unwrap_or(0);
        if complete >= 3 || child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    child.wait().unwrap();
    // Whatever has its final name is complete and correct.
    for e in std::fs::read_dir(&restored).unwrap().flatten() {
        let name = e.file_name();
        if name.to_string_lossy().ends_with(".bin") {
            assert!(
                std::fs::read(e.path()).unwrap() == std::fs::read(src.join(&name)).unwrap(),
                "{name:?} incomplete under its final name"
            );
        }
    }
    let again = env.json(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert!(again["files_kept"].as_u64().unwrap() >= 3);
    assert_same_tree(&src, &restored);
    assert!(
        leftovers(&target).is_empty(),
        "partial files left: {:?}",
        leftovers(&target)
    );
}

#[test]
fn a_full_disk_gives_a_clear_error_and_no_file_that_looks_complete() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..3u64 {
        std::fs::write(
            src.join(format!("f{i}.bin")),
            random_bytes(200 + i, 2 << 20),
        )
        .unwrap();
    }
    env.create(&[&src], &[]);
    // A private 5 MiB file system in a mount namespace: room for two of the
    // three files.
    let mnt = env.path("small-disk");
    std::fs::create_dir_all(&mnt).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=5m tmpfs {m} || exit 99; {snap} restore latest --target {m}; echo \"exit=$?\"; \
         find {m} -type f -exec sha256sum {{}} \\;",
        m = mnt.display(),
        snap = env!("CARGO_BIN_EXE_snap"),
    );
    let out = env
        .device_std("x")
        .env_remove("XDG_CACHE_HOME")
        .args(["--version"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-rm", "sh", "-c", &script]);
    for (k, v) in env.device_std("x").get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("exit=0") && stdout.contains("exit="),
        "restore onto a full disk must fail: {stdout} {stderr}"
    );
    assert!(
        stderr.contains("No space left on device"),
        "the error must say the disk is full: {stderr}"
    );
    let restored = mnt.join(src.strip_prefix("/").unwrap());
    let mut complete = 0;
    for line in stdout.lines().filter(|l| !l.starts_with("exit=")) {
        let (hash, path) = line.split_once("  ").unwrap();
        assert!(
            !path.ends_with(".partial"),
            "partial file left behind: {path}"
        );
        let name = Path::new(path).strip_prefix(&restored).unwrap();
        let expected = sha256_hex(&std::fs::read(src.join(name)).unwrap());
        assert_eq!(
            hash, expected,
            "{path} has its final name but not its content"
        );
        complete += 1;
    }
    assert!(complete < 3, "the disk was large enough after all");
}

fn sha256_hex(data: &[u8]) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}
