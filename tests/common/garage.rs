//! A real Garage S3 server on 127.0.0.1 for the tests: one per test
//! process, started on first use, stopped when the process ends. Each test
//! gets its own root path inside the one bucket.

use std::net::TcpListener;
#[cfg(target_os = "linux")]
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "GK0123456789abcdef01234567";
pub const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const BUCKET: &str = "snap-test";
pub const REGION: &str = "garage";
const RPC_SECRET: &str = "4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6";

pub struct Garage {
    pub endpoint: String,
    pub dir: PathBuf,
    config: PathBuf,
    /// Stops the running server process.
    kill: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

/// A port nothing listens on now, on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn garage_binary() -> PathBuf {
    let candidates = [
        std::env::var_os("GARAGE_BIN").map(PathBuf::from),
        std::env::var_os("CARGO_HOME").map(|h| PathBuf::from(h).join("bin/garage")),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/garage")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.is_file() {
            return c;
        }
    }
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v garage"])
        .output()
        && out.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    }
    panic!(
        "garage is not installed: run ./test.sh, which installs it, or `cargo install garage --locked`"
    );
}

impl Garage {
    /// The shared server, started on first use.
    pub fn get() -> &'static Garage {
        static G: OnceLock<Garage> = OnceLock::new();
        G.get_or_init(|| Garage::start("shared", "s3.garage.localhost"))
    }

    /// A server of the caller's own, to stop and restart.
    pub fn private(name: &str) -> Garage {
        Garage::start(name, "s3.garage.localhost")
    }

    /// A server of the caller's own that answers virtual-hosted requests
    /// for buckets under `domain` (a provider's host name, which the test
    /// resolves to 127.0.0.1).
    pub fn serving_domain(name: &str, domain: &str) -> Garage {
        Garage::start(name, domain)
    }

    /// Runs a garage admin command. A node that has just started may not
    /// answer yet, more so on a loaded machine: retry for a while. A retry
    /// of a step that did take effect says so ("already"), which is success.
    fn cli(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(garage_binary())
                .arg("-c")
                .arg(&self.config)
                .args(args)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.success() || text.contains("already") {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(Instant::now() < deadline, "garage {args:?} failed: {text}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Starts the server process from a thread that lives as long as the
    /// test process: the parent-death signal fires when the spawning thread
    /// ends, and must mean the end of the whole test process.
    fn spawn_server(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let bin = garage_binary();
        let cfg = self.config.clone();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let mut cmd = Command::new(bin);
            cmd.arg("-c")
                .arg(&cfg)
                .arg("server")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            // Linux can kill Garage with the test process; elsewhere the
            // kill below (and the temporary folder's removal) must do.
            #[cfg(target_os = "linux")]
            // SAFETY: only an async-signal-safe prctl runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                        .map_err(std::io::Error::from)
                });
            }
            let mut child = cmd.spawn().expect("cannot start garage");
            started_tx.send(()).unwrap();
            // Until told to stop; if the sender is gone, stay until exit.
            if kill_rx.recv().is_ok() {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            let _ = child.wait();
            loop {
                std::thread::park();
            }
        });
        started_rx.recv().unwrap();
        *self.kill.lock().unwrap() = Some(kill_tx);
    }

    /// Kills the server process, as a crash or power loss would.
    pub fn stop(&self) {
        if let Some(k) = self.kill.lock().unwrap().take() {
            k.send(()).unwrap();
        }
        // Wait until the port refuses connections.
        let addr = self.endpoint.trim_start_matches("http://").to_string();
        while std::net::TcpStream::connect(&addr).is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again on the same data and waits until it answers.
    pub fn restart(&self) {
        self.spawn_server();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = Command::new(garage_binary())
                .arg("-c")
                .arg(&self.config)
                .args(["bucket", "info", BUCKET])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "garage did not come back");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn start(name: &str, root_domain: &str) -> Garage {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Leftovers of earlier runs whose process is gone.
        if let Ok(rd) = std::fs::read_dir(base) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name
                    .strip_prefix("garage-")
                    .and_then(|r| r.split('-').next())
                    && !Path::new("/proc").join(pid).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = base.join(format!("garage-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let config = dir.join("garage.toml");
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{RPC_SECRET}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".{root_domain}"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
                d = dir.display()
            ),
        )
        .unwrap();
        let g = Garage {
            endpoint: format!("http://127.0.0.1:{s3}"),
            dir,
            config,
            kill: std::sync::Mutex::new(None),
        };
        g.spawn_server();
        let deadline = Instant::now() + Duration::from_secs(60);
        let node = loop {
            let out = Command::new(garage_binary())
                .arg("-c")
                .arg(&g.config)
                .args(["node", "id", "-q"])
                .output()
                .unwrap();
            if out.status.success() {
                break String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .split('@')
                    .next()
                    .unwrap()
                    .to_string();
            }
            assert!(
                Instant::now() < deadline,
                "garage did not start; see {}",
                g.dir.join("server.log").display()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&[
            "key",
            "import",
            "--yes",
            ACCESS_KEY,
            SECRET_KEY,
            "-n",
            "snap-test-key",
        ]);
        g.cli(&["bucket", "create", BUCKET]);
        g.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            BUCKET,
            "--key",
            "snap-test-key",
        ]);
        g
    }

    /// A repository location of its own for one test, in a folder of its
    /// own: side by side, the tests' repositories would be near each other,
    /// and `snap init` asks before creating one beside another.
    pub fn repo(&self, test: &str) -> String {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("s3://{BUCKET}/{test}-{}-{n}/repo", std::process::id())
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if let Some(k) = self.kill.lock().unwrap().take() {
            let _ = k.send(());
        }
    }
}

/// Engine-level settings for a test repository on a Garage server, with the
/// test keys: for tests that drive the engine's API directly.
pub fn options(repo: &str, endpoint: &str) -> snap_engine::backend::S3Options {
    let (bucket, root) = snap_engine::backend::S3Options::parse_location(repo).unwrap();
    snap_engine::backend::S3Options {
        bucket,
        root,
        endpoint: Some(endpoint.to_string()),
        region: REGION.into(),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(SECRET_KEY.into()),
        ..Default::default()
    }
}
