//! moto's S3 server on 127.0.0.1, for what Garage lacks: versioned
//! buckets and Object Lock. One per test process, started on first use on
//! a free port, killed with the process. `test.sh` installs it (PyPI
//! `moto[server]`). moto does not check signatures, so the tests' own
//! requests to it (making buckets, acting as a thief or as the bucket's
//! owner) are plain HTTP with a placeholder signature: without any, moto
//! answers a PUT of an existing key without writing a new version.

#[cfg(target_os = "linux")]
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "moto-test-key";
pub const SECRET_KEY: &str = "moto-test-secret";
pub const REGION: &str = "us-east-1";

pub struct Moto {
    pub endpoint: String,
    http: reqwest::blocking::Client,
}

/// How to run moto's server: `moto_server` where it is on the PATH, else
/// the module through python3.
fn command() -> Command {
    let on_path = Command::new("sh")
        .args(["-c", "command -v moto_server"])
        .output()
        .is_ok_and(|o| o.status.success());
    if on_path {
        Command::new("moto_server")
    } else {
        let mut c = Command::new("python3");
        c.args(["-m", "moto.server"]);
        c
    }
}

impl Moto {
    pub fn get() -> &'static Moto {
        static M: OnceLock<Moto> = OnceLock::new();
        M.get_or_init(Moto::start)
    }

    fn start() -> Moto {
        let port = super::garage::free_port();
        let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("moto-{}.log", std::process::id()));
        let log = std::fs::File::create(&log).unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        // From a thread that lives as long as the process: the
        // parent-death signal fires when the spawning thread ends.
        std::thread::spawn(move || {
            let mut cmd = command();
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            #[cfg(target_os = "linux")]
            // SAFETY: only an async-signal-safe prctl runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                        .map_err(std::io::Error::from)
                });
            }
            let mut child = cmd
                .spawn()
                .expect("cannot start moto's S3 server: run ./test.sh, which installs it");
            started_tx.send(()).unwrap();
            let _ = child.wait();
            loop {
                std::thread::park();
            }
        });
        started_rx.recv().unwrap();
        let m = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            http: reqwest::blocking::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while m.http.get(&m.endpoint).send().is_err() {
            assert!(Instant::now() < deadline, "moto's S3 server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    /// A request as a signed one looks to moto.
    fn req(&self, method: reqwest::Method, url: String) -> reqwest::blocking::RequestBuilder {
        self.http.request(method, url).header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/s3/aws4_request, \
                 SignedHeaders=host, Signature=00"
            ),
        )
    }

    fn unique(name: &str) -> String {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{name}-{}-{n}", std::process::id())
    }

    /// A new bucket: with Object Lock (and so versioning), versioned
    /// only, or plain. Returns its name.
    pub fn bucket(&self, name: &str, kind: Bucket) -> String {
        let bucket = Self::unique(name);
        let mut put = self.req(reqwest::Method::PUT, format!("{}/{bucket}", self.endpoint));
        if kind == Bucket::ObjectLock {
            put = put.header("x-amz-bucket-object-lock-enabled", "true");
        }
        assert!(put.send().unwrap().status().is_success());
        if kind == Bucket::Versioned {
            let r = self
                .req(
                    reqwest::Method::PUT,
                    format!("{}/{bucket}?versioning", self.endpoint),
                )
                .body("<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>")
                .send()
                .unwrap();
            assert!(r.status().is_success());
        }
        bucket
    }

    /// The body of a GET to `url`.
    fn get_text(&self, url: String) -> String {
        self.req(reqwest::Method::GET, url)
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    /// Every key in the bucket (current versions).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let text = self.get_text(format!(
            "{}/{bucket}?list-type=2&max-keys=1000",
            self.endpoint
        ));
        tags(&text, "Key")
    }

    /// `(key, version id)` of every version that is not a delete marker.
    pub fn versions(&self, bucket: &str) -> Vec<(String, String)> {
        let text = self.get_text(format!("{}/{bucket}?versions", self.endpoint));
        text.split("<Version>")
            .skip(1)
            .map(|v| {
                let v = v.split("</Version>").next().unwrap();
                (tags(v, "Key")[0].clone(), tags(v, "VersionId")[0].clone())
            })
            .collect()
    }

    /// The latest LastModified among the bucket's versions, as moto
    /// writes it (RFC 3339, which sorts as text).
    pub fn last_modified(&self, bucket: &str) -> String {
        let text = self.get_text(format!("{}/{bucket}?versions", self.endpoint));
        tags(&text, "LastModified").into_iter().max().unwrap()
    }

    /// Writes a probe object outside any repository until the store's
    /// clock reads past `t`: what is written after this is after `t`.
    pub fn wait_past(&self, bucket: &str, t: &str) {
        for _ in 0..100 {
            self.overwrite(bucket, "clock-probe", b"x");
            if self.last_modified(bucket).as_str() > t {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto's clock does not move past {t}");
    }

    /// Deletes a key as a thief's full key would (a delete marker in a
    /// versioned bucket); the status.
    pub fn delete(&self, bucket: &str, key: &str) -> u16 {
        self.delete_url(format!("{}/{bucket}/{key}", self.endpoint))
    }

    fn delete_url(&self, url: String) -> u16 {
        self.req(reqwest::Method::DELETE, url)
            .send()
            .unwrap()
            .status()
            .as_u16()
    }

    /// Deletes one version for good, as an owner cleaning up would; the
    /// status (403 while it is retained).
    pub fn delete_version(&self, bucket: &str, key: &str, version: &str) -> u16 {
        self.delete_url(format!(
            "{}/{bucket}/{key}?versionId={version}",
            self.endpoint
        ))
    }

    /// A key's bytes (its current version).
    pub fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.req(
            reqwest::Method::GET,
            format!("{}/{bucket}/{key}", self.endpoint),
        )
        .send()
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec()
    }

    /// Overwrites a key with other bytes; the status.
    pub fn overwrite(&self, bucket: &str, key: &str, body: &[u8]) -> u16 {
        self.req(
            reqwest::Method::PUT,
            format!("{}/{bucket}/{key}", self.endpoint),
        )
        .body(body.to_vec())
        .send()
        .unwrap()
        .status()
        .as_u16()
    }

    /// The retain-until date of a key's current version, as S3 writes it.
    pub fn retained_until(&self, bucket: &str, key: &str) -> Option<String> {
        let r = self
            .req(
                reqwest::Method::HEAD,
                format!("{}/{bucket}/{key}", self.endpoint),
            )
            .send()
            .unwrap();
        r.headers()
            .get("x-amz-object-lock-retain-until-date")
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// Shortens a key's retention to `until` in governance mode, as an
    /// owner with s3:BypassGovernanceRetention may; the status.
    pub fn shorten_retention(&self, bucket: &str, key: &str, until: &str) -> u16 {
        let body = format!(
            "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>"
        );
        self.req(
            reqwest::Method::PUT,
            format!("{}/{bucket}/{key}?retention", self.endpoint),
        )
        .header("x-amz-bypass-governance-retention", "true")
        .body(body)
        .send()
        .unwrap()
        .status()
        .as_u16()
    }
}

impl Moto {
    /// The same for one version.
    pub fn shorten_retention_version(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
        until: &str,
    ) -> u16 {
        let body = format!(
            "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>"
        );
        self.req(
            reqwest::Method::PUT,
            format!(
                "{}/{bucket}/{key}?retention&versionId={version}",
                self.endpoint
            ),
        )
        .header("x-amz-bypass-governance-retention", "true")
        .body(body)
        .send()
        .unwrap()
        .status()
        .as_u16()
    }

    /// Sets the bucket's default retention, as its owner would in the
    /// provider's console.
    pub fn default_retention(&self, bucket: &str, days: u32) {
        let body = format!(
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>\
             <DefaultRetention><Mode>GOVERNANCE</Mode><Days>{days}</Days></DefaultRetention>\
             </Rule></ObjectLockConfiguration>"
        );
        let r = self
            .req(
                reqwest::Method::PUT,
                format!("{}/{bucket}?object-lock", self.endpoint),
            )
            .body(body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    ObjectLock,
    Versioned,
    Plain,
}

/// The texts of every `<tag>` element.
fn tags(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split(&format!("</{tag}>")).next())
        .map(str::to_string)
        .collect()
}

/// A test world whose repository is `s3://BUCKET/repo` on moto.
pub fn env(bucket: &str) -> super::Env {
    let m = Moto::get();
    let mut env = super::Env::new();
    env.repo = format!("s3://{bucket}/repo");
    env.vars = vec![
        ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ("AWS_ENDPOINT_URL".into(), m.endpoint.clone()),
        ("AWS_REGION".into(), REGION.into()),
    ];
    env
}
