//! Shared harness for the integration tests: runs the real `snap` binary
//! in an isolated environment, builds source trees with every kind of file,
//! and compares trees byte for byte and in metadata.

#![allow(dead_code)]

pub mod garage;
pub mod moto;
pub mod proxy;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rand::{RngCore, SeedableRng};

pub const PASSWORD: &str = "correct horse battery staple";

/// One test's world: a temporary HOME, a repository location, sources.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: String,
    /// Extra environment for every command (S3 settings).
    pub vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        // As in a real home directory, these exist before snap runs, so
        // what snap writes into them does not change the home's mtime.
        for d in ["cache", "data"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let repo = dir.path().join("repo").display().to_string();
        Env {
            dir,
            repo,
            vars: Vec::new(),
        }
    }

    /// A repository under its own root path in the shared Garage bucket,
    /// with the keys and endpoint in the environment as users set them.
    pub fn s3(test: &str) -> Env {
        let g = garage::Garage::get();
        let mut env = Env::new();
        env.repo = g.repo(test);
        env.vars = vec![
            ("AWS_ACCESS_KEY_ID".into(), garage::ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), garage::SECRET_KEY.into()),
            ("AWS_ENDPOINT_URL".into(), g.endpoint.clone()),
            ("AWS_REGION".into(), garage::REGION.into()),
        ];
        env
    }

    /// Sends this env's S3 requests to `endpoint` instead (a proxy).
    pub fn set_endpoint(&mut self, endpoint: &str) {
        for (k, v) in self.vars.iter_mut() {
            if k == "AWS_ENDPOINT_URL" {
                *v = endpoint.to_string();
            }
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `snap` as run on another device: same repository and keys, its own
    /// cache directory.
    pub fn device(&self, name: &str) -> Command {
        Command::from_std(self.device_std(name))
    }

    /// The same, as a plain command that can be spawned in the background.
    pub fn device_std(&self, name: &str) -> std::process::Command {
        let mut c = self.base();
        c.env(
            "SNAP_CACHE_DIR",
            self.dir.path().join(format!("cache-{name}")),
        );
        c
    }

    /// `snap` with this env's repository and password, and nothing from the
    /// caller's environment that could point it elsewhere.
    pub fn snap(&self) -> Command {
        Command::from_std(self.base())
    }

    /// `snap` run through a wrapper program (`setpriv ...`), with the same
    /// environment as [`Env::snap`].
    pub fn snap_via(&self, wrapper: &[&str]) -> Command {
        Command::from_std(self.command(wrapper))
    }

    fn base(&self) -> std::process::Command {
        self.command(&[])
    }

    fn command(&self, wrapper: &[&str]) -> std::process::Command {
        let snap = env!("CARGO_BIN_EXE_snap");
        let mut c = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = std::process::Command::new(program);
                c.args(args).arg(snap);
                c
            }
            None => std::process::Command::new(snap),
        };
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("SNAP_PASSWORD", PASSWORD)
            .env("SNAP_REPOSITORY", &self.repo)
            .env("SNAP_CONFIG", self.dir.path().join("config.toml"));
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// A fresh encrypted repository with a cheap key derivation, so the many
    /// commands of a test do not each spend half a second on Argon2.
    pub fn init(&self) {
        self.snap()
            .args(["init", "--kdf-memory", "1024", "--kdf-iterations", "1"])
            .assert()
            .success();
    }

    /// The same at another location, beside others on purpose (`--yes`).
    pub fn init_at(&self, repo: &str) {
        self.snap()
            .env("SNAP_REPOSITORY", repo)
            .args([
                "init",
                "--yes",
                "--kdf-memory",
                "1024",
                "--kdf-iterations",
                "1",
            ])
            .assert()
            .success();
    }

    /// Runs `snap --json ARGS`, asserts success, parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.snap().arg("--json").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "snap {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn create(&self, paths: &[&Path], extra: &[&str]) -> serde_json::Value {
        let mut args: Vec<&str> = vec!["create"];
        args.extend_from_slice(extra);
        let owned: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        args.extend(owned.iter().map(String::as_str));
        self.json(&args)
    }

    /// Restores `snapshot` into a new directory and returns where the
    /// source `src` ended up inside it.
    pub fn restore(&self, snapshot: &str, src: &Path, target: &str) -> PathBuf {
        let t = self.path(target);
        self.snap()
            .args(["restore", snapshot, "--target"])
            .arg(&t)
            .assert()
            .success();
        t.join(src.strip_prefix("/").unwrap())
    }

    /// Total bytes of all files in the repository directory.
    pub fn repo_size(&self) -> u64 {
        dir_size(Path::new(&self.repo))
    }

    pub fn index_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect_files(&Path::new(&self.repo).join("index"), &mut out);
        out.sort();
        out
    }

    pub fn pack_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect_files(&Path::new(&self.repo).join("data"), &mut out);
        out.sort();
        out
    }
}

/// A finished command's standard error, as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn dir_size(p: &Path) -> u64 {
    let mut files = Vec::new();
    collect_files(p, &mut files);
    files.iter().map(|f| f.metadata().unwrap().len()).sum()
}

fn collect_files(p: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(p) else { return };
    for e in rd {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            collect_files(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// Deterministic incompressible bytes.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

fn set_mtime(p: &Path, secs: i64, nanos: u32) {
    let t = filetime::FileTime::from_unix_time(secs, nanos);
    filetime::set_symlink_file_times(p, t, t).unwrap();
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A device number from its major and minor numbers, as `mknod` takes it.
#[cfg(not(target_vendor = "apple"))]
pub fn makedev(major: u64, minor: u64) -> nix::libc::dev_t {
    nix::sys::stat::makedev(major, minor)
}

/// A device number from its major and minor numbers: Darwin packs them
/// as 8 and 24 bits.
#[cfg(target_vendor = "apple")]
pub fn makedev(major: u64, minor: u64) -> nix::libc::dev_t {
    ((major << 24) | minor) as nix::libc::dev_t
}

/// A tree with every kind of entry the issue lists.
pub fn make_tree(root: &Path) {
    use std::fs;
    fs::create_dir_all(root.join("dir/nested/deeper")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::write(root.join("hello.txt"), b"hello, world\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("dir/text.md"), "# notes\n".repeat(5000)).unwrap();
    fs::write(
        root.join("dir/nested/multi-chunk.bin"),
        random_bytes(1, 3 * 1024 * 1024 + 17),
    )
    .unwrap();
    fs::write(root.join("dir/nested/deeper/small"), b"x").unwrap();
    // A name that is not UTF-8.
    fs::write(
        root.join(OsStr::from_bytes(b"caf\xe9-latin1")),
        b"bytes in a latin-1 name",
    )
    .unwrap();
    // Symlinks: relative, dangling, to a directory.
    std::os::unix::fs::symlink("hello.txt", root.join("link-to-hello")).unwrap();
    std::os::unix::fs::symlink("../nowhere/at/all", root.join("dangling")).unwrap();
    std::os::unix::fs::symlink("dir/nested", root.join("link-to-dir")).unwrap();
    // Hardlinks: three names, one inode.
    fs::write(root.join("dir/hard-a"), b"one inode, three names").unwrap();
    fs::hard_link(root.join("dir/hard-a"), root.join("dir/hard-b")).unwrap();
    fs::hard_link(root.join("dir/hard-a"), root.join("hard-c")).unwrap();
    // A sparse file: 40 MiB with 4 KiB of data in the middle.
    let f = fs::File::create(root.join("sparse.img")).unwrap();
    f.set_len(40 * 1024 * 1024).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &random_bytes(2, 4096), 20 * 1024 * 1024).unwrap();
    drop(f);
    // A fifo, and a character device when we may create one.
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    if is_root() {
        nix::sys::stat::mknod(
            &root.join("null-device"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .unwrap();
        std::os::unix::fs::lchown(root.join("hello.txt"), Some(1234), Some(5678)).unwrap();
    }
    // A socket: skipped with a message, not an error.
    drop(std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap());
    // Mode bits, including set-uid and sticky.
    fs::set_permissions(root.join("hello.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(
        root.join("dir/nested/deeper/small"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::set_permissions(root.join("empty-dir"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(root.join("dir/text.md"), fs::Permissions::from_mode(0o444)).unwrap();
    // Distinct mtimes with nanoseconds on files, links and directories,
    // deepest first so parents keep theirs.
    let mut all = Vec::new();
    walk(root, &mut all);
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in all.iter().enumerate() {
        set_mtime(p, 1_600_000_000 + i as i64 * 3607, 123_456_789 + i as u32);
    }
    set_mtime(root, 1_500_000_000, 987_654_321);
}

/// Extended attributes on a tree made by [`make_tree`]: `user.*` ones, and
/// as root a file capability and a POSIX ACL.
pub fn add_xattrs(root: &Path) {
    xattr::set(root.join("hello.txt"), "user.comment", b"greeting").unwrap();
    xattr::set(root.join("dir"), "user.origin", b"device A").unwrap();
    xattr::set(root.join("dir/text.md"), "user.empty", b"").unwrap();
    xattr::set(
        root.join("dir/nested/multi-chunk.bin"),
        "user.big",
        &random_bytes(7, 4000),
    )
    .unwrap();
    if is_root() {
        // CAP_NET_BIND_SERVICE, permitted and effective (vfs_cap_data v2).
        let mut cap = Vec::new();
        for w in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
            cap.extend_from_slice(&w.to_le_bytes());
        }
        xattr::set(root.join("sparse.img"), "security.capability", &cap).unwrap();
        // user::rw-, user:1234:r--, group::r--, mask::r--, other::---
        let mut acl = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (0x01u16, 6u16, u32::MAX),
            (0x02, 4, 1234),
            (0x04, 4, u32::MAX),
            (0x10, 4, u32::MAX),
            (0x20, 0, u32::MAX),
        ] {
            acl.extend_from_slice(&tag.to_le_bytes());
            acl.extend_from_slice(&perm.to_le_bytes());
            acl.extend_from_slice(&id.to_le_bytes());
        }
        xattr::set(root.join("empty"), "system.posix_acl_access", &acl).unwrap();
    }
}

/// A path's extended attributes that a restore brings back: `user.*`, and
/// all of them as root.
pub fn xattrs_of(p: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut out: Vec<_> = xattr::list(p)
        .unwrap()
        .filter(|n| is_root() || n.as_bytes().starts_with(b"user."))
        .map(|n| {
            let v = xattr::get(p, &n).unwrap().unwrap_or_default();
            (n, v)
        })
        .collect();
    out.sort();
    out
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        out.push(e.path());
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), out);
        }
    }
}

/// Asserts that `b` is a faithful copy of `a`: same entries, kinds, bytes,
/// link targets, modes, owners, mtimes (to the nanosecond), the same
/// hardlink groups, and holes where `a` has them.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let mut ea = Vec::new();
    walk(a, &mut ea);
    let mut eb = Vec::new();
    walk(b, &mut eb);
    let rel = |root: &Path, v: &[PathBuf]| {
        let mut r: Vec<PathBuf> = v
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        r.sort();
        r
    };
    let (ra, rb) = (rel(a, &ea), rel(b, &eb));
    let missing: Vec<_> = ra
        .iter()
        .filter(|p| !rb.contains(p) && !is_socket(&a.join(p)))
        .collect();
    let extra: Vec<_> = rb.iter().filter(|p| !ra.contains(p)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    let mut groups_a: HashMap<u64, Vec<PathBuf>> = HashMap::new();
    let mut groups_b: HashMap<u64, Vec<PathBuf>> = HashMap::new();
    for r in std::iter::once(PathBuf::new()).chain(rb.iter().cloned()) {
        let (pa, pb) = (a.join(&r), b.join(&r));
        let (ma, mb) = (
            pa.symlink_metadata().unwrap(),
            pb.symlink_metadata().unwrap(),
        );
        let what = r.display();
        assert_eq!(ma.file_type(), mb.file_type(), "{what}: kind");
        if !ma.file_type().is_symlink() {
            assert_eq!(ma.mode() & 0o7777, mb.mode() & 0o7777, "{what}: mode");
        }
        assert_eq!(ma.mtime(), mb.mtime(), "{what}: mtime seconds");
        assert_eq!(
            ma.mtime_nsec(),
            mb.mtime_nsec(),
            "{what}: mtime nanoseconds"
        );
        if is_root() {
            assert_eq!((ma.uid(), ma.gid()), (mb.uid(), mb.gid()), "{what}: owner");
        }
        if !ma.file_type().is_symlink() {
            assert_eq!(
                xattrs_of(&pa),
                xattrs_of(&pb),
                "{what}: extended attributes"
            );
        }
        if ma.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&pa).unwrap(),
                std::fs::read_link(&pb).unwrap(),
                "{what}: target"
            );
        } else if ma.is_file() {
            assert_eq!(ma.len(), mb.len(), "{what}: size");
            assert!(
                std::fs::read(&pa).unwrap() == std::fs::read(&pb).unwrap(),
                "{what}: content differs"
            );
            if ma.nlink() > 1 {
                groups_a.entry(ma.ino()).or_default().push(r.clone());
                groups_b.entry(mb.ino()).or_default().push(r.clone());
            }
            if ma.blocks() * 512 < ma.len() / 2 {
                assert!(
                    mb.blocks() * 512 < mb.len() / 2,
                    "{what}: sparse file restored without holes"
                );
            }
        } else if ma.file_type().is_char_device() || ma.file_type().is_block_device() {
            assert_eq!(ma.rdev(), mb.rdev(), "{what}: device number");
        }
    }
    let norm = |g: HashMap<u64, Vec<PathBuf>>| {
        let mut v: Vec<Vec<PathBuf>> = g
            .into_values()
            .map(|mut x| {
                x.sort();
                x
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(norm(groups_a), norm(groups_b), "hardlink groups differ");
}

use std::os::unix::fs::FileTypeExt;

fn is_socket(p: &Path) -> bool {
    p.symlink_metadata()
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false)
}

/// The end of a story: a prune keeping the last snapshot, a check that
/// reads every pack, and a restore identical to `src`.
pub fn prune_check_and_restore(env: &Env, src: &Path) {
    env.snap()
        .args(["prune", "--keep-last", "1"])
        .assert()
        .success();
    env.snap().args(["check", "--read-data"]).assert().success();
    let restored = env.restore("latest", src, "out");
    assert_same_tree(src, &restored);
}
