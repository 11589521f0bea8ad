//! `snap ui` in a real browser (Debian's chromium over chromedriver, which
//! `test.sh` installs) against a real Garage on 127.0.0.1, and its guard
//! against requests without the token, for another host, or from another
//! site. Screenshots of every page, at 1280×800 and at a phone's 390 px,
//! go to `target/ui-screenshots/`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::garage::{self, Garage, free_port};
use fantoccini::{Client, ClientBuilder, Locator};

/// `snap ui --no-open` in a home of its own, with nothing from the
/// caller's environment.
struct Server {
    child: Child,
    /// The address it printed, with the token.
    url: String,
    /// `http://HOST:PORT`, HOST being the page's own name.
    base: String,
    /// Where it listens.
    addr: std::net::SocketAddr,
    home: PathBuf,
}

impl Server {
    fn start(home: &Path, extra: &[(&str, &str)]) -> Server {
        Server::start_with(home, extra, &[])
    }

    /// On the repository `repo` of [`world`], its password in the
    /// environment.
    fn on(home: &Path, repo: &Path) -> Server {
        let repo = repo.display().to_string();
        Server::start(home, &[("SNAP_REPOSITORY", &repo), ("SNAP_PASSWORD", "pw")])
    }

    fn start_with(home: &Path, extra: &[(&str, &str)], args: &[&str]) -> Server {
        for d in ["data", "cache", "config"] {
            std::fs::create_dir_all(home.join(d)).unwrap();
        }
        let log = std::fs::File::create(home.join("ui.log")).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_snap"));
        c.args(["ui", "--no-open"])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("SNAP_CONFIG", home.join("config.toml"))
            .stdout(Stdio::piped())
            .stderr(log);
        for (k, v) in extra {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first.trim().to_string();
        let parsed = url::Url::parse(&url).unwrap();
        assert!(
            parsed.query().is_some_and(|q| q.starts_with("token=")),
            "the first line is the URL with its token: {url:?}"
        );
        let base = url.split("/?").next().unwrap().to_string();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], parsed.port().unwrap()));
        Server {
            child,
            url,
            base,
            addr,
            home: home.to_path_buf(),
        }
    }

    /// The page's own host name, without the port.
    fn host(&self) -> String {
        url::Url::parse(&self.url)
            .unwrap()
            .host_str()
            .unwrap()
            .to_string()
    }

    fn token(&self) -> &str {
        self.url.split("token=").nth(1).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("ui.log")).unwrap_or_default()
    }

    /// A client that reaches the page's own name (on loopback, as
    /// Chromium and Firefox resolve any `*.localhost`), and does not follow
    /// redirects.
    fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&self.host(), self.addr)
            .build()
            .unwrap()
    }

    fn cookie(&self) -> String {
        format!("snap_token_{}={}", self.addr.port(), self.token())
    }

    fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.client()
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie())
            .send()
            .unwrap()
    }

    /// The per-session header's value, from a page's meta tag.
    fn session(&self) -> String {
        let page = self.get("/backup").text().unwrap();
        let at = page.find("snap-session\" content=\"").unwrap() + 23;
        page[at..at + 64].to_string()
    }

    fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .client()
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie())
            .header("X-Snap-Session", self.session())
            .json(&body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap())
    }

    /// Waits for the running task to end; its status.
    fn wait_job(&self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s: serde_json::Value = self.get("/api/status").json().unwrap();
            if s["job"]["running"] == false {
                return s["job"].clone();
            }
            assert!(Instant::now() < deadline, "the task did not end: {s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `snap` command line beside a server's home: the repository
/// `repo`, the password `password`, no config file.
fn cli(home: &Path, repo: &Path, password: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_snap"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("SNAP_CONFIG", home.join("none.toml"))
        .env("SNAP_REPOSITORY", repo)
        .env("SNAP_PASSWORD", password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "snap {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository with a cheap key derivation, for the many opens of a test.
fn init(home: &Path, repo: &Path, password: &str) {
    cli(
        home,
        repo,
        password,
        // Tests make repositories side by side on purpose.
        &[
            "init",
            "--yes",
            "--kdf-memory",
            "1024",
            "--kdf-iterations",
            "1",
        ],
    );
}

/// A test's own folder, with a home in it and a repository made with
/// `password`.
fn world(password: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let repo = dir.path().join("repo");
    init(&home, &repo, password);
    (dir, home, repo)
}

/// chromedriver on 127.0.0.1, stopped when dropped.
struct Driver(Child, u16);

impl Driver {
    fn start() -> Driver {
        let bin = ["chromedriver", "/usr/bin/chromedriver"]
            .into_iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok())
            .expect("chromedriver is not installed: run ./test.sh, which installs Debian's chromium and chromium-driver");
        let port = free_port();
        let child = Command::new(bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver(child, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser(driver: &Driver, profile: &Path, downloads: &Path) -> Client {
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,800", "--no-first-run", "--no-default-browser-check",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
            }
        }
    });
    let caps = match caps {
        serde_json::Value::Object(m) => m,
        _ => unreachable!(),
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("cannot start chromium through chromedriver")
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page as it is now: its source must never hold the secret.
struct Page<'a> {
    c: &'a Client,
    secret: &'a str,
}

impl<'a> Page<'a> {
    fn new(c: &'a Client, secret: &'a str) -> Page<'a> {
        Page { c, secret }
    }

    async fn go(&self, url: &str) {
        self.c.goto(url).await.unwrap();
        self.no_secret().await;
    }

    async fn no_secret(&self) {
        let src = self.c.source().await.unwrap();
        assert!(!src.contains(self.secret), "the secret is in a page");
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.c.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn select(&self, css: &str, value: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .select_by_value(value)
            .await
            .unwrap();
    }

    async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Accepts the confirmation the page asks for.
    async fn accept(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.c.accept_alert().await.is_err() {
            assert!(Instant::now() < deadline, "no confirmation was asked");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the element's text holds `want`; its text.
    async fn wait_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut text = String::new();
            for e in self.c.find_all(Locator::Css(css)).await.unwrap() {
                text.push_str(&e.text().await.unwrap_or_default());
                text.push('\n');
            }
            if text.contains(want) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never said {want:?}; it says {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn job_id(&self) -> String {
        self.c
            .find(Locator::Css("#job .job"))
            .await
            .unwrap()
            .attr("data-job")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Waits for a task after `before` to end, and for it to have
    /// succeeded; the task box's text.
    async fn job_done(&self, before: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let e = self.c.find(Locator::Css("#job .job")).await.unwrap();
            let id = e.attr("data-job").await.unwrap().unwrap_or_default();
            let class = e.attr("class").await.unwrap().unwrap_or_default();
            if id != before && (class.contains("ok") || class.contains("bad")) {
                let text = e.text().await.unwrap();
                assert!(class.contains("ok"), "the task failed: {text}");
                return text;
            }
            assert!(Instant::now() < deadline, "the task did not end");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
    }

    async fn rows(&self, css: &str) -> usize {
        self.c.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Waits until `n` elements match: a list loaded again in place.
    async fn wait_rows(&self, css: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.rows(css).await;
            if now == n {
                return;
            }
            assert!(Instant::now() < deadline, "{css}: {now} rows, never {n}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn value(&self, css: &str) -> String {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Marks the page, to tell later whether it was loaded again.
    async fn mark(&self) {
        self.c
            .execute("window.snapMark = 1;", vec![])
            .await
            .unwrap();
    }

    async fn still_marked(&self) -> bool {
        self.c
            .execute("return window.snapMark === 1;", vec![])
            .await
            .unwrap()
            == serde_json::json!(true)
    }
}

fn tree(src: &Path) -> Vec<u8> {
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("docs/report.txt"), b"the quarterly report").unwrap();
    let photo = common::random_bytes(7, 300_000);
    std::fs::write(src.join("docs/photo.bin"), &photo).unwrap();
    std::fs::write(src.join("notes.txt"), b"notes").unwrap();
    filetime::set_file_mtime(
        src.join("docs/report.txt"),
        filetime::FileTime::from_unix_time(1_600_000_000, 0),
    )
    .unwrap();
    photo
}

fn wait_file(p: &Path, len: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(b) = std::fs::read(p)
            && b.len() == len
        {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "{} was not downloaded",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Settings (with a wrong secret first), Initialize, Backup now, Manage,
/// Browse and download, Restore with preview, delete extras and undo,
/// Compare, Delete, Check, and a scheduled run, in chromium.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_backs_up_browses_restores_and_schedules_in_the_browser() {
    let g = Garage::get();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let photo = tree(&src);
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let server = Server::start(&dir.path().join("home"), &[("SNAP_UI_TIME_SCALE", "60")]);
    let driver = Driver::start();
    let c = browser(&driver, &dir.path().join("chromium"), &downloads).await;
    let p = Page {
        c: &c,
        secret: garage::SECRET_KEY,
    };
    let run = async {
        // The token URL lands on Manage, which offers connect and create
        // as equal choices on this first visit.
        p.go(&server.url).await;
        assert!(c.current_url().await.unwrap().path() == "/manage");
        assert!(
            !c.current_url().await.unwrap().as_str().contains("token"),
            "the token leaves the address bar"
        );
        p.wait_text("main", "Connect to an existing repository")
            .await;
        p.wait_text("main", "Create a new repository").await;
        p.shot("manage-empty-desktop").await;

        // Settings: a bucket, with a wrong secret first.
        p.go(&format!("{}/settings", server.base)).await;
        p.fill("#name", "bucket").await;
        p.click("input[name=kind][value=s3]").await;
        p.fill("#endpoint", &g.endpoint).await;
        p.fill("#region", garage::REGION).await;
        p.fill("#bucket", garage::BUCKET).await;
        p.fill("#access_key_id", garage::ACCESS_KEY).await;
        p.fill("#secret_access_key", "not-the-secret-0123456789")
            .await;
        let root = format!("ui-{}", std::process::id());
        p.fill("#root", &root).await;
        p.fill("#password", "a long passphrase for the ui").await;
        p.click("button[formaction='/api/connection']").await;
        let said = p
            .wait_text("form.settings .result", "secret access key")
            .await;
        assert!(said.contains("does not match"), "{said}");
        p.shot("settings-desktop").await;

        // The right secret: nothing there yet, so Initialize appears.
        p.fill("#secret_access_key", garage::SECRET_KEY).await;
        p.click("button[formaction='/api/connection']").await;
        p.wait_text("form.settings .result", "Initialize makes one")
            .await;
        p.fill("#password_again", "a long passphrase for the ui")
            .await;
        p.click("button[formaction='/api/init']").await;
        p.wait_text("form.settings .result", "created repository")
            .await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        p.no_secret().await;
        let config = std::fs::read_to_string(server.home.join("config.toml")).unwrap();
        assert!(
            config.contains(&format!("s3://{}/{root}", garage::BUCKET)),
            "{config}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(server.home.join("config.toml"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // Backup now, with live progress, then the snapshot in Manage.
        p.go(&format!("{}/backup", server.base)).await;
        p.fill("#sources", &src.display().to_string()).await;
        let before = p.job_id().await;
        p.click("form[data-action='/api/backup'] button[type=submit]")
            .await;
        let done = p.job_done(&before).await;
        assert!(done.contains("written: 3 new"), "{done}");
        p.shot("backup-desktop").await;
        p.go(&format!("{}/manage", server.base)).await;
        assert_eq!(p.rows("table.snapshots tbody tr").await, 1);
        let host = snap_engine::commands::create::this_host();
        p.wait_text("table.snapshots", &host).await;
        p.wait_text("#stats", "Deduplication").await;
        p.shot("manage-desktop").await;

        // Browse into it and download a file.
        p.click("table.snapshots a[href^='/browse']").await;
        let browse = c.current_url().await.unwrap();
        let snapshot = browse
            .query_pairs()
            .find(|(k, _)| k == "snapshot")
            .unwrap()
            .1
            .into_owned();
        p.go(&format!(
            "{}/browse?snapshot={snapshot}&path={}",
            server.base,
            src.display()
        ))
        .await;
        p.click("table.files a[href*='docs']").await;
        p.wait_text("table.files", "photo.bin").await;
        p.shot("browse-desktop").await;
        p.click("table.files a[download='photo.bin']").await;
        assert!(
            wait_file(&downloads.join("photo.bin"), photo.len()) == photo,
            "the download differs"
        );

        // Restore the folder over a changed copy: preview, then with
        // delete extras, then undo.
        std::fs::write(src.join("docs/report.txt"), b"changed since").unwrap();
        std::fs::write(src.join("docs/extra.txt"), b"not in the snapshot").unwrap();
        let target = c
            .find(Locator::Css("#target"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            target,
            src.join("docs").display().to_string(),
            "a folder restores to where it was"
        );
        p.click("form[data-action='/api/restore'] input[name=delete]")
            .await;
        p.click("form[data-action='/api/restore'] button[value=true]")
            .await;
        let preview = p
            .wait_text("form[data-action='/api/restore'] .result", "preview")
            .await;
        assert!(
            preview.contains("1 to delete") && preview.contains("1 to replace"),
            "{preview}"
        );
        p.wait_text("form[data-action='/api/restore'] tr.delete", "extra.txt")
            .await;
        assert!(
            src.join("docs/extra.txt").exists(),
            "a preview changes nothing"
        );
        let before = p.job_id().await;
        p.click("form[data-action='/api/restore'] button[value=false]")
            .await;
        p.accept().await;
        p.job_done(&before).await;
        assert_eq!(
            std::fs::read(src.join("docs/report.txt")).unwrap(),
            b"the quarterly report"
        );
        assert_eq!(
            filetime::FileTime::from_last_modification_time(
                &std::fs::metadata(src.join("docs/report.txt")).unwrap()
            ),
            filetime::FileTime::from_unix_time(1_600_000_000, 0)
        );
        assert!(
            !src.join("docs/extra.txt").exists(),
            "delete extras removed it"
        );
        assert_eq!(std::fs::read(src.join("docs/photo.bin")).unwrap(), photo);
        p.shot("restore-desktop").await;
        let before = p.job_id().await;
        p.click("#job form[data-action='/api/undo'] button").await;
        p.accept().await;
        p.job_done(&before).await;
        assert_eq!(
            std::fs::read(src.join("docs/report.txt")).unwrap(),
            b"changed since"
        );
        assert_eq!(
            std::fs::read(src.join("docs/extra.txt")).unwrap(),
            b"not in the snapshot"
        );

        // A second backup, compared with the first, then deleted.
        p.go(&format!("{}/backup", server.base)).await;
        let before = p.job_id().await;
        p.click("form[data-action='/api/backup'] button[type=submit]")
            .await;
        p.job_done(&before).await;
        p.go(&format!("{}/browse?snapshot={snapshot}", server.base))
            .await;
        p.click("form[action='/diff'] button").await;
        let diff = p.wait_text("main", "change").await;
        assert!(
            diff.contains("docs/extra.txt") && diff.contains("docs/report.txt"),
            "{diff}"
        );
        p.shot("diff-desktop").await;
        // Two backups, and the undo snapshots of the restore and of its undo.
        p.go(&format!("{}/manage", server.base)).await;
        assert_eq!(p.rows("table.snapshots tbody tr").await, 4);
        let tags = p.wait_text("table.snapshots", "undo snapshot").await;
        assert_eq!(tags.matches("undo snapshot").count(), 2, "{tags}");
        assert!(
            tags.contains(&format!("before restoring {}", &snapshot[..8])),
            "{tags}"
        );
        p.click("table.snapshots tbody tr:last-child input[type=checkbox]")
            .await;
        p.click("form[data-action='/api/forget'] button.danger")
            .await;
        p.accept().await;
        p.wait_text(
            "form[data-action='/api/forget'] .result",
            &format!("deleted snapshot {}", &snapshot[..8]),
        )
        .await;
        p.wait_rows("table.snapshots tbody tr", 3).await;
        let left = p.wait_text("table.snapshots", "").await;
        assert!(
            !left.contains(&format!("Browse {}", &snapshot[..8])),
            "the oldest is gone: {left}"
        );

        // Check.
        p.go(&format!("{}/check", server.base)).await;
        p.click("input[name=read][value='100']").await;
        let before = p.job_id().await;
        p.click("form[data-action='/api/check'] button").await;
        let checked = p.job_done(&before).await;
        assert!(checked.contains("no errors"), "{checked}");
        p.shot("check-desktop").await;

        // A schedule of "every minute" (a second at this test's scale),
        // keeping 1: a run happens by itself, and thins to one snapshot.
        p.go(&format!("{}/schedule", server.base)).await;
        p.select("#int-bucket", "1m").await;
        p.select("#keep-bucket", "1").await;
        p.click("form[data-action='/api/schedule'] button").await;
        p.wait_text("[data-schedule-result=bucket]", "kept the last 1")
            .await;
        p.go(&format!("{}/schedule", server.base)).await;
        p.shot("schedule-desktop").await;
        p.select("#int-bucket", "off").await;
        p.click("form[data-action='/api/schedule'] button").await;
        p.wait_text("form[data-action='/api/schedule'] .result", "saved")
            .await;
        let config = std::fs::read_to_string(server.home.join("config.toml")).unwrap();
        assert!(config.contains("schedule = \"off\""), "{config}");

        // Every page at a phone's width.
        c.set_window_size(390, 844).await.unwrap();
        for page in ["manage", "backup", "schedule", "check", "settings"] {
            p.go(&format!("{}/{page}", server.base)).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            p.shot(&format!("{page}-phone")).await;
        }
        // At that width nothing is wider than the page but the tables,
        // which scroll in their own box.
        let fits = async || {
            let fits: serde_json::Value = c
                .execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth + 1",
                    vec![],
                )
                .await
                .unwrap();
            let at = c.current_url().await.unwrap();
            assert_eq!(
                fits,
                serde_json::Value::Bool(true),
                "{at} scrolls sideways at 390 px"
            );
        };
        fits().await;
        p.go(&format!("{}/manage", server.base)).await;
        fits().await;
        p.click("table.snapshots a[href^='/browse']").await;
        p.wait_text("main", "Restore").await;
        fits().await;
        p.shot("browse-phone").await;
        // Compare, between the two newest snapshots left.
        p.go(&format!("{}/manage", server.base)).await;
        let mut ids = Vec::new();
        for a in c
            .find_all(Locator::Css("table.snapshots a[href^='/browse']"))
            .await
            .unwrap()
        {
            let href = a.attr("href").await.unwrap().unwrap();
            ids.push(href.split("snapshot=").nth(1).unwrap()[..64].to_string());
        }
        assert!(ids.len() >= 2, "{ids:?}");
        p.go(&format!("{}/diff?a={}&b={}", server.base, ids[0], ids[1]))
            .await;
        p.wait_text("main", "change").await;
        fits().await;
        p.shot("diff-phone").await;
    };
    // The browser is closed whether the steps pass or not.
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run)).await;
    let _ = c.clone().close().await;
    if outcome.is_err() {
        panic!(
            "the steps above failed\n--- snap ui log ---\n{}",
            server.log()
        );
    }
    assert!(!server.log().contains("panicked"), "{}", server.log());
    drop(driver);
}

/// An HTTP server on 127.0.0.1 that answers every request and keeps each
/// request's head: another program on this computer that the user's
/// browser visits (a dev server, a notebook).
struct Neighbour {
    port: u16,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Neighbour {
    fn start() -> Neighbour {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = heads.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Until the head is complete.
                loop {
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    if let Ok(httparse::Status::Complete(_)) =
                        httparse::Request::new(&mut headers).parse(&buf)
                    {
                        break;
                    }
                    match conn.read(&mut chunk) {
                        Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => break,
                    }
                }
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 20\r\nConnection: close\r\n\r\n<p>another server</p",
                );
            }
        });
        Neighbour { port, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// The token's cookie goes to the page alone: after signing in, the same
/// browser visiting other servers on this computer (another port of
/// 127.0.0.1, and `localhost`) sends them no snap token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_reaches_no_other_server_on_this_computer() {
    let (dir, home, repo) = world("pw");
    let s = Server::start(
        &home,
        &[
            ("SNAP_PASSWORD", "pw"),
            ("SNAP_REPOSITORY", repo.to_str().unwrap()),
        ],
    );
    let neighbour = Neighbour::start();
    let driver = Driver::start();
    let c = browser(&driver, &dir.path().join("chromium"), dir.path()).await;
    let p = Page {
        c: &c,
        secret: s.token(),
    };
    let run = async {
        c.goto(&s.url).await.unwrap();
        assert_eq!(c.current_url().await.unwrap().path(), "/manage");
        p.wait_text("main", "No backups yet").await;
        p.no_secret().await;
        for host in ["127.0.0.1", "localhost"] {
            c.goto(&format!("http://{host}:{}/", neighbour.port))
                .await
                .unwrap();
            p.wait_text("body", "another server").await;
        }
        // Still signed in to the page.
        p.go(&format!("{}/backup", s.base)).await;
        p.wait_text("main", "Back up now").await;
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run)).await;
    let _ = c.clone().close().await;
    if outcome.is_err() {
        panic!("the steps above failed\n--- snap ui log ---\n{}", s.log());
    }
    let heads = neighbour.heads();
    for host in ["127.0.0.1", "localhost"] {
        assert!(
            heads
                .iter()
                .any(|h| h.to_lowercase().contains(&format!("host: {host}:"))),
            "the browser did not visit {host}: {heads:?}"
        );
    }
    for h in &heads {
        assert!(
            !h.contains(s.token()) && !h.to_lowercase().contains("snap_token"),
            "another server on this computer got the token:\n{h}"
        );
    }
    drop(driver);
}

/// A task stuck on a password command that never ends is cancelled from
/// the page's Cancel button, and the next task then starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_task_is_cancelled_from_the_page_and_the_next_one_starts() {
    let (dir, home, repo) = world("pw");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "default = \"hang\"\n[profiles.hang]\nrepository = \"{}\"\nsources = [\"{}\"]\n\
             password_command = \"sleep 120; echo pw\"\n",
            repo.display(),
            src.display()
        ),
    )
    .unwrap();
    let s = Server::start(&home, &[]);
    let driver = Driver::start();
    let c = browser(&driver, &dir.path().join("chromium"), dir.path()).await;
    let p = Page {
        c: &c,
        secret: s.token(),
    };
    // The task box's id once it shows a running task other than `before`.
    let running_after = async |before: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let e = c.find(Locator::Css("#job .job")).await.unwrap();
            let id = e.attr("data-job").await.unwrap().unwrap_or_default();
            let class = e.attr("class").await.unwrap().unwrap_or_default();
            let cancel = c
                .find(Locator::Css("#job form.cancel button"))
                .await
                .unwrap();
            if id != before && class.contains("running") && cancel.is_displayed().await.unwrap() {
                return id;
            }
            assert!(Instant::now() < deadline, "no task started");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let run = async {
        // Not Manage, which waits for the repository to open.
        p.go(&format!("{}/backup?token={}", s.base, s.token()))
            .await;
        assert_eq!(c.current_url().await.unwrap().path(), "/backup");
        let before = p.job_id().await;
        p.click("form[data-action='/api/backup'] button[type=submit]")
            .await;
        let stuck = running_after(&before).await;
        p.shot("task-running-desktop").await;
        p.click("#job form.cancel button").await;
        p.wait_text("#job .job", "cancelled").await;
        let e = c.find(Locator::Css("#job .job")).await.unwrap();
        assert!(
            e.attr("class").await.unwrap().unwrap().contains("bad"),
            "a cancelled task shows as failed"
        );
        assert!(
            !c.find(Locator::Css("#job form.cancel button"))
                .await
                .unwrap()
                .is_displayed()
                .await
                .unwrap()
        );
        // The slot is free: Back up now starts a new task.
        p.click("form[data-action='/api/backup'] button[type=submit]")
            .await;
        let next = running_after(&stuck).await;
        assert_ne!(next, stuck);
        p.click("#job form.cancel button").await;
        p.wait_text("#job .job", "cancelled").await;
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run)).await;
    let _ = c.clone().close().await;
    if outcome.is_err() {
        panic!("the steps above failed\n--- snap ui log ---\n{}", s.log());
    }
    assert!(s.log().contains("cancelled"), "{}", s.log());
    drop(driver);
}

/// A server with a profile holding a secret, its repository a local one.
fn secured_server(dir: &Path) -> (Server, &'static str) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let secret = "SECRETsecretSECRET0123456789abcdef";
    std::fs::write(
        home.join("config.toml"),
        format!(
            "default = \"work\"\n[profiles.work]\nrepository = \"{}\"\nsecret_access_key = \"{secret}\"\n",
            dir.join("repo").display()
        ),
    )
    .unwrap();
    (Server::start(&home, &[("SNAP_PASSWORD", "pw")]), secret)
}

#[test]
fn without_the_token_from_another_host_or_site_nothing_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let (s, secret) = secured_server(dir.path());
    let c = s.client();
    // No token: 401 on pages and API, with no data.
    for path in [
        "/",
        "/manage",
        "/settings",
        "/api/profiles",
        "/api/snapshots",
        "/api/status",
    ] {
        let r = c.get(format!("{}{path}", s.base)).send().unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
        let body = r.text().unwrap();
        assert!(
            !body.contains(secret) && !body.contains("work") && !body.contains("<html"),
            "{path}: {body}"
        );
    }
    let r = c
        .get(format!("{}/manage?token=0000", s.base))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "a wrong token");
    // The token is exchanged for an HttpOnly, SameSite=Strict cookie.
    let r = c.get(&s.url).send().unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // Named for this server's port: cookies are not kept apart by port,
    // and one name for all once let a second snap ui (or anything on
    // another port of 127.0.0.1) take or receive the first's token.
    let port = s.base.rsplit(':').next().unwrap();
    assert!(
        cookie.starts_with(&format!("snap_token_{port}=")),
        "{cookie}"
    );
    let r = c
        .get(format!("{}/api/profiles", s.base))
        .header("Cookie", format!("snap_token={}", s.token()))
        .send()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "the token under another cookie name"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // The token address leads to this server only.
    let r = c
        .get(format!("{}//evil.example/?token={}", s.base, s.token()))
        .send()
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    // A foreign Host header (DNS rebinding) is refused, token or not.
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        format!("127.0.0.1.evil.example:{port}"),
    ] {
        let r = c
            .get(format!("{}/api/profiles", s.base))
            .header("Host", &host)
            .header("Cookie", s.cookie())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{host}");
        assert!(!r.text().unwrap().contains("work"));
    }
    let r = c
        .get(format!("{}/api/profiles", s.base))
        .header("Cookie", s.cookie())
        .send()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "the page's own name is this server"
    );
    // Its loopback names are refused, without saying the page's own name
    // (a local server that learnt it could have the browser visit it there
    // and get the cookie); with the token, sent on to that name, and no
    // cookie set for them.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let r = c
            .get(format!("{}/api/profiles", s.base))
            .header("Host", &host)
            .header("Cookie", s.cookie())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{host}");
        assert!(!r.text().unwrap().contains(&s.host()), "{host}");
        let r = c
            .get(format!("{}/?token={}", s.base, s.token()))
            .header("Host", &host)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{host}");
        assert_eq!(r.headers()["location"], s.url.as_str(), "{host}");
        assert!(r.headers().get("set-cookie").is_none(), "{host}");
    }
    // A cross-site POST (a form elsewhere sends the cookie, not the
    // session header) is refused, and so is one from another origin.
    let settings = serde_json::json!({"name": "work", "kind": "local", "folder": "/tmp/elsewhere", "password_source": "keep"});
    let r = c
        .post(format!("{}/api/settings", s.base))
        .header("Cookie", s.cookie())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("name=work&kind=local&folder=/tmp/elsewhere")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = c
        .post(format!("{}/api/settings", s.base))
        .header("Cookie", s.cookie())
        .header("X-Snap-Session", s.session())
        .header("Origin", "http://evil.example")
        .json(&settings)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let config = std::fs::read_to_string(s.home.join("config.toml")).unwrap();
    assert!(
        !config.contains("elsewhere"),
        "a refused request changed the settings"
    );
    // The secret is in no response: every page and API answer.
    for path in [
        "/manage",
        "/backup",
        "/schedule",
        "/check",
        "/settings",
        "/settings?profile=work",
        "/api/profiles",
        "/api/status",
        "/api/snapshots",
        "/part/stats",
        "/assets/app.js",
    ] {
        let body = s.get(path).text().unwrap();
        assert!(!body.contains(secret), "{path} sent the secret");
    }
    let (status, reply) = s.post("/api/connection", serde_json::json!({"name": "work", "kind": "local", "folder": dir.path().join("repo").display().to_string(), "password_source": "keep"}));
    assert!(!reply.to_string().contains(secret), "{status} {reply}");
}

/// Sends `GET target` to the server byte for byte, as a client library
/// would not (it normalises the path first); the status and `Location`.
fn raw_get(s: &Server, target: &[u8]) -> (u16, Option<String>) {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(s.addr).unwrap();
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n",
            s.host(),
            s.addr.port()
        )
        .as_bytes(),
    );
    tcp.write_all(&req).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(&answer).unwrap();
    let location = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("location"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned());
    (resp.code.unwrap(), location)
}

/// The token's address takes the token into the cookie and goes on to a
/// path of this server, never to another: `/\\host/` is `//host/` to a
/// browser, and so is a path with tabs or newlines in its first slashes.
#[test]
fn the_token_address_redirects_to_this_server_only() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = secured_server(dir.path());
    let token = s.token().to_string();
    let here = url::Url::parse(&format!("{}/", s.base)).unwrap();
    let mut redirected = 0;
    for path in [
        &b"/manage"[..],
        b"//evil.example/",
        b"/\\evil.example/",
        b"/\\/evil.example/",
        b"/\\\\evil.example/",
        b"/%5Cevil.example/",
        b"/%5C%5Cevil.example/",
        b"/%2F/evil.example/",
        b"/%2F%2Fevil.example/",
        b"/\t/evil.example/",
        b"/%09/evil.example/",
        b"/\n/evil.example/",
        b"/%0D%0A/evil.example/",
        b"/.//evil.example/",
    ] {
        let mut target = path.to_vec();
        target.extend_from_slice(format!("?token={token}").as_bytes());
        let (status, location) = raw_get(&s, &target);
        let shown = String::from_utf8_lossy(path);
        if let Some(l) = location {
            redirected += 1;
            // Read as the browser reads it.
            let to = here.join(&l).unwrap();
            assert_eq!(
                to.origin(),
                here.origin(),
                "{shown:?} redirects to {l:?}, which is {to}"
            );
        } else {
            assert!(status >= 400, "{shown:?}: {status}");
        }
    }
    assert!(
        redirected >= 10,
        "most of these are redirects: {redirected}"
    );
}

/// The page cannot set anything that makes snap run a command (a password
/// command, a failure command): sent by hand, with the token and the
/// session header, such a field is refused, nothing saved and nothing run.
/// The page shows the saved ones read-only, with the terminal's way.
#[test]
fn the_page_sets_no_command_even_when_asked_by_hand() {
    let (dir, home, repo) = world("pw");
    let ran = dir.path().join("ran");
    let cmd = format!("touch {}; echo pw", ran.display());
    std::fs::write(
        home.join("config.toml"),
        format!(
            "default = \"p\"\n[profiles.p]\nrepository = \"{}\"\npassword_command = \"echo pw\"\n\
             on_failure = \"echo saved-failure-command\"\n",
            repo.display()
        ),
    )
    .unwrap();
    let s = Server::start(&home, &[]);
    let before = std::fs::read_to_string(home.join("config.toml")).unwrap();
    let folder = repo.display().to_string();
    let other = dir.path().join("new").display().to_string();
    for (path, body) in [
        (
            "/api/settings",
            serde_json::json!({"name": "p", "kind": "local", "folder": folder,
                "password_source": "command", "password_command": cmd}),
        ),
        (
            "/api/settings",
            serde_json::json!({"name": "p", "kind": "local", "folder": folder,
                "password_source": "keep", "password_command": cmd}),
        ),
        (
            "/api/connection",
            serde_json::json!({"name": "p", "kind": "local", "folder": folder,
                "password_source": "command", "password_command": cmd}),
        ),
        (
            "/api/init",
            serde_json::json!({"name": "q", "kind": "local", "folder": other,
                "password_source": "command", "password_command": cmd}),
        ),
        (
            "/api/schedule",
            serde_json::json!({"profile": "p", "interval": "1h", "keep_last": "0", "on_failure": cmd}),
        ),
    ] {
        let (status, r) = s.post(path, body);
        assert_eq!(status, 400, "{path}: {r}");
        let said = r["message"].as_str().unwrap();
        assert!(
            said.contains("from the terminal only") && said.contains("snap config --profile"),
            "{path}: {said}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(home.join("config.toml")).unwrap(),
        before,
        "a refused request changed the settings"
    );
    assert!(!ran.exists(), "a command sent to the page ran");
    // Shown, not editable, with the terminal's way to set them.
    let page = s.get("/schedule").text().unwrap();
    assert!(
        page.contains("echo saved-failure-command")
            && page.contains("snap config --profile p --on-failure")
            && !page.contains("name=\"on_failure\""),
        "{page}"
    );
    let page = s.get("/settings?profile=p").text().unwrap();
    assert!(
        page.contains("echo pw")
            && page.contains("snap config --profile p --password-command")
            && !page.contains("name=\"password_command\""),
        "{page}"
    );
    // Saving the schedule and the settings keeps the commands set there.
    let (status, r) = s.post(
        "/api/schedule",
        serde_json::json!({"profile": "p", "interval": "1h", "keep_last": "0", "on_failure": ""}),
    );
    assert_eq!(status, 200, "{r}");
    let (status, r) = s.post(
        "/api/settings",
        serde_json::json!({"name": "p", "kind": "local", "folder": folder, "password_source": "keep"}),
    );
    assert_eq!(status, 200, "{r}");
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(
        config.contains("saved-failure-command")
            && config.contains("password_command = \"echo pw\""),
        "{config}"
    );
}

/// A restore that deletes more than half of the files in its target asks
/// first, with the count, as `snap restore` does; sent again with that
/// count it runs, with another it asks again.
#[test]
fn a_restore_that_deletes_most_of_its_target_asks_first_with_the_count() {
    let (dir, home, repo) = world("pw");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("kept.txt"), b"kept").unwrap();
    cli(&home, &repo, "pw", &["create", src.to_str().unwrap()]);
    let target = dir.path().join("target");
    std::fs::create_dir_all(&target).unwrap();
    for f in ["kept.txt", "a.txt", "b.txt", "c.txt"] {
        std::fs::write(target.join(f), b"there").unwrap();
    }
    let s = Server::start(
        &home,
        &[
            ("SNAP_PASSWORD", "pw"),
            ("SNAP_REPOSITORY", repo.to_str().unwrap()),
        ],
    );
    let snaps: serde_json::Value = s.get("/api/snapshots").json().unwrap();
    let id = snaps[0]["id"].as_str().unwrap().to_string();
    let form = |confirmed: Option<u64>| {
        serde_json::json!({"snapshot": id, "path": src.display().to_string(),
            "target": target.display().to_string(), "delete": true, "confirmed": confirmed})
    };
    for confirmed in [None, Some(2)] {
        let (status, r) = s.post("/api/restore", form(confirmed));
        assert_eq!(status, 409, "{r}");
        let asked = r["confirm"].as_str().unwrap();
        assert!(
            asked.contains(&format!(
                "this restore deletes 3 of the 4 files in {}",
                target.display()
            )),
            "{asked}"
        );
        assert_eq!(r["confirm_count"], 3, "{r}");
        assert!(target.join("a.txt").exists(), "nothing is deleted before");
    }
    let (status, r) = s.post("/api/restore", form(Some(3)));
    assert_eq!(status, 200, "{r}");
    let job = s.wait_job();
    assert_eq!(job["ok"], true, "{job}");
    assert!(!target.join("a.txt").exists() && target.join("kept.txt").exists());
    // Half or less: no question.
    std::fs::write(target.join("a.txt"), b"there").unwrap();
    let (status, r) = s.post("/api/restore", form(None));
    assert_eq!(status, 200, "{r}");
    assert_eq!(s.wait_job()["ok"], true);
}

/// A wrong password, an unreachable bucket and a source that is gone are
/// each said in words, on the page's answer and in the log; the server
/// goes on.
#[test]
fn bad_input_is_answered_in_words_and_the_server_goes_on() {
    let (dir, home, repo) = world("right");
    let s = Server::start(&home, &[("SNAP_REPOSITORY", repo.to_str().unwrap())]);

    // No password source: the page asks; a wrong one is said, a right one opens.
    let page = s.get("/manage").text().unwrap();
    assert!(page.contains("type its password"), "{page}");
    let (status, r) = s.post("/api/password", serde_json::json!({"password": "wrong"}));
    assert_eq!(status, 401);
    assert!(
        r["message"].as_str().unwrap().contains("does not open"),
        "{r}"
    );
    let (status, r) = s.post("/api/password", serde_json::json!({"password": "right"}));
    assert_eq!(status, 200, "{r}");
    assert!(s.get("/manage").text().unwrap().contains("No backups yet"));

    // Checking another repository uses the form's password source, not
    // the password typed for this one.
    let other = dir.path().join("other");
    init(&home, &other, "other");
    let other_pw = dir.path().join("other-password");
    std::fs::write(&other_pw, "other\n").unwrap();
    let (status, r) = s.post(
        "/api/connection",
        serde_json::json!({"name": "other", "kind": "local", "folder": other.display().to_string(),
            "password_source": "file", "password_file": other_pw.display().to_string()}),
    );
    assert_eq!(status, 200, "{r}");

    // An unreachable bucket: the connection check says which setting.
    let (status, r) = s.post(
        "/api/connection",
        serde_json::json!({"name": "away", "kind": "s3", "endpoint": format!("http://127.0.0.1:{}", free_port()),
            "region": "garage", "bucket": "b", "access_key_id": "k", "secret_access_key": "s", "password_source": "page"}),
    );
    assert_eq!(status, 400, "{r}");
    let said = r["message"].as_str().unwrap();
    assert!(
        said.contains("127.0.0.1") && said.to_lowercase().contains("endpoint"),
        "{said}"
    );

    // Saving settings and typing the password again drop the opened
    // repository inside a request: that once panicked and broke every
    // later page.
    let (status, r) = s.post("/api/password", serde_json::json!({"password": "right"}));
    assert_eq!(status, 200, "{r}");
    let (status, r) = s.post(
        "/api/settings",
        serde_json::json!({"name": "here", "kind": "local", "folder": repo.display().to_string(), "password_source": "page"}),
    );
    assert_eq!(status, 200, "{r}");
    let (status, r) = s.post("/api/password", serde_json::json!({"password": "right"}));
    assert_eq!(status, 200, "{r}");
    assert!(s.get("/manage").text().unwrap().contains("No backups yet"));

    // "Keep it in a file on this computer": a file only its owner reads,
    // which the profile then names, so automatic backups need no typing.
    let (status, r) = s.post(
        "/api/settings",
        serde_json::json!({"name": "here", "kind": "local", "folder": repo.display().to_string(),
            "password_source": "store", "password": "right"}),
    );
    assert_eq!(status, 200, "{r}");
    let kept = home.join("password-here");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "right\n");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(
        config.contains("password_file") && !config.contains("right"),
        "{config}"
    );
    assert!(
        !s.get("/settings?profile=here")
            .text()
            .unwrap()
            .contains("right\n"),
        "the kept password is not sent back"
    );

    // A folder that is gone: refused in words, nothing saved or written.
    let gone = dir.path().join("gone");
    let (status, r) = s.post(
        "/api/backup",
        serde_json::json!({"sources": gone.display().to_string()}),
    );
    assert_eq!(status, 400, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("is not there"),
        "{r}"
    );
    let snaps: serde_json::Value = s.get("/api/snapshots").json().unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 0);
    assert!(
        !std::fs::read_to_string(home.join("config.toml"))
            .unwrap()
            .contains("gone")
    );

    // A relative folder and a bad profile name are refused in words.
    let (status, r) = s.post("/api/backup", serde_json::json!({"sources": "Documents"}));
    assert_eq!(status, 400);
    assert!(
        r["message"].as_str().unwrap().contains("not a full path"),
        "{r}"
    );
    // ("a b" is saved as a-b; a name of no letter is refused.)
    let (status, r) = s.post(
        "/api/settings",
        serde_json::json!({"name": "???", "kind": "local", "folder": "/x"}),
    );
    assert_eq!(status, 400);
    assert!(
        r["message"].as_str().unwrap().contains("profile name"),
        "{r}"
    );

    // Still serving, and it said all that in its log too.
    assert_eq!(s.get("/api/status").status().as_u16(), 200);
    let log = s.log();
    assert!(
        log.contains("is not there") && log.contains("does not open"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// A scheduled backup that fails (its folder is gone) is retried with a
/// back-off, runs the profile's `on_failure` command once for the streak,
/// and shows red until a run succeeds.
#[test]
fn a_failing_schedule_retries_notifies_once_and_stays_red_until_a_success() {
    let (dir, home, repo) = world("pw");
    let src = dir.path().join("src");
    let notes = dir.path().join("notified");
    std::fs::write(
        home.join("config.toml"),
        format!(
            "default = \"laptop\"\n[profiles.laptop]\nrepository = \"{}\"\nsources = [\"{}\"]\nschedule = \"1m\"\n\
             on_failure = \"sleep 6; echo \\\"$SNAP_PROFILE: $SNAP_ERROR\\\" >> {}\"\n",
            repo.display(),
            src.display(),
            notes.display()
        ),
    )
    .unwrap();
    // A minute is a second here, and the waits 10 s, 30 s, 90 s are
    // about 0.17 s, 0.5 s and 1.5 s.
    let s = Server::start(
        &home,
        &[("SNAP_PASSWORD", "pw"), ("SNAP_UI_TIME_SCALE", "60")],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let entry = loop {
        let st: serde_json::Value = s.get("/api/status").json().unwrap();
        let e = st["schedule"]["laptop"].clone();
        if e["runs"].as_u64().unwrap_or(0) >= 4 {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "the schedule did not run and retry: {st}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(entry["failing"], true, "{entry}");
    // The retries did not wait for the (slow) failure command.
    assert!(
        !notes.exists(),
        "the retries waited for the failure command"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !notes.exists() {
        assert!(Instant::now() < deadline, "the failure command never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        entry["last_result"]
            .as_str()
            .unwrap()
            .contains("is not there"),
        "{entry}"
    );
    let page = s.get("/schedule").text().unwrap();
    assert!(
        page.contains("profile-schedule failing"),
        "the profile shows red"
    );
    let said = std::fs::read_to_string(&notes).unwrap();
    assert_eq!(
        said.lines().count(),
        1,
        "one notification for the streak: {said}"
    );
    assert!(
        said.starts_with("laptop: ") && said.contains("is not there"),
        "{said}"
    );

    // The folder appears: the next run succeeds and the red goes.
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st: serde_json::Value = s.get("/api/status").json().unwrap();
        let e = &st["schedule"]["laptop"];
        if e["last_ok"] == true {
            assert_eq!(e["failing"], false);
            break;
        }
        assert!(Instant::now() < deadline, "no run succeeded: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !s.get("/schedule")
            .text()
            .unwrap()
            .contains("profile-schedule failing")
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap().lines().count(), 1);
}

/// Manage lists snapshots per device in pages of 20, and "keep the last N
/// for this device" previews before it removes anything.
#[test]
fn manage_pages_by_twenty_filters_by_device_and_previews_keep_last() {
    let (dir, home, repo) = world("pw");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let snap = |args: &[&str]| cli(&home, &repo, "pw", args);
    for i in 0..23 {
        std::fs::write(src.join("f"), format!("version {i}")).unwrap();
        snap(&["create", "--host", "laptop", src.to_str().unwrap()]);
    }
    // One of them with a tag shaped like an undo snapshot's, but not hex:
    // reading it as one once cut a character in two and broke the page.
    let hostile = format!("restoring:{}é", "a".repeat(62));
    snap(&[
        "create",
        "--host",
        "desktop",
        "--tag",
        &hostile,
        src.to_str().unwrap(),
    ]);
    snap(&["create", "--host", "desktop", src.to_str().unwrap()]);
    let s = Server::start(
        &home,
        &[
            ("SNAP_PASSWORD", "pw"),
            ("SNAP_REPOSITORY", repo.to_str().unwrap()),
        ],
    );
    let rows = |page: &str| {
        let html = s.get(page).text().unwrap();
        html.matches("name=\"ids\"").count()
    };
    assert_eq!(rows("/manage"), 20);
    assert_eq!(rows("/manage?page=2"), 5);
    assert_eq!(rows("/manage?host=desktop"), 2);
    assert_eq!(rows("/manage?host=laptop&page=2"), 3);
    assert!(s.get("/manage").text().unwrap().contains("Page 1 of 2"));
    assert!(
        s.get("/manage?host=desktop")
            .text()
            .unwrap()
            .contains(&hostile)
    );

    let (status, r) = s.post(
        "/api/keep",
        serde_json::json!({"host": "laptop", "keep": "3", "apply": false}),
    );
    assert_eq!(status, 200, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("would remove 20"),
        "{r}"
    );
    // The first prune of this computer makes it the one that deletes data:
    // the preview says so, and once it is, says nothing.
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("becomes the one that deletes unused data"),
        "{r}"
    );
    assert!(
        r["html"].as_str().unwrap().matches(">remove<").count() == 20,
        "{r}"
    );
    assert_eq!(
        rows("/manage?host=laptop&page=2"),
        3,
        "a preview removes nothing"
    );
    let (status, r) = s.post(
        "/api/keep",
        serde_json::json!({"host": "laptop", "keep": "3", "apply": true}),
    );
    assert_eq!(status, 200, "{r}");
    let job = s.wait_job();
    assert_eq!(job["ok"], true, "{job}");
    assert_eq!(rows("/manage?host=laptop"), 3);
    assert_eq!(rows("/manage?host=desktop"), 2, "another device's are kept");
    let snaps: serde_json::Value = s.get("/api/snapshots").json().unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 5);
    let (_, r) = s.post(
        "/api/keep",
        serde_json::json!({"host": "laptop", "keep": "1", "apply": false}),
    );
    assert!(
        !r["message"].as_str().unwrap().contains("becomes the one"),
        "{r}"
    );
}

/// A token lives for one run, written nowhere; `--keep-token` keeps it
/// (and so the page's own name) across starts, readable by this user
/// alone, and `--new-token` replaces the kept one.
#[test]
fn a_token_lives_for_one_run_unless_kept_and_a_new_one_replaces_the_kept() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let first = Server::start(&home, &[]);
    let again = Server::start(&home, &[]);
    assert_ne!(first.token(), again.token());
    assert_ne!(first.host(), again.host());
    let file = home.join("data/snap/ui-token");
    assert!(!file.exists(), "a token not asked to be kept is written");
    drop((first, again));
    let kept = Server::start_with(&home, &[], &["--keep-token"]);
    let (token, host) = (kept.token().to_string(), kept.host());
    drop(kept);
    let again = Server::start_with(&home, &[], &["--keep-token"]);
    assert_eq!(again.token(), token);
    assert_eq!(again.host(), host, "a bookmark keeps working");
    drop(again);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let renewed = Server::start_with(&home, &[], &["--keep-token", "--new-token"]);
    assert_ne!(renewed.token(), token);
    let r = renewed
        .client()
        .get(format!("{}/api/status", renewed.base))
        .header("Cookie", renewed.cookie().replace(renewed.token(), &token))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "the old token no longer opens it");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        renewed.token()
    );
}

/// A task stuck on a password command that never ends (a keyring waiting
/// for input) holds the one task slot until it is cancelled; then the
/// next task starts at once. And Ctrl-C stops the server while a page
/// follows its events.
#[test]
fn a_stuck_task_is_cancelled_and_ctrl_c_leaves_nothing_hanging() {
    let (dir, home, repo) = world("pw");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "default = \"hang\"\n[profiles.hang]\nrepository = \"{}\"\npassword_command = \"sleep 120; echo pw\"\n",
            repo.display()
        ),
    )
    .unwrap();
    let mut s = Server::start(&home, &[]);
    let backup = serde_json::json!({"sources": src.display().to_string()});
    let (status, r) = s.post("/api/backup", backup.clone());
    assert_eq!(status, 200, "{r}");
    // One task at a time: a second backup while this one waits is refused
    // with the name of the one running.
    let (status, r) = s.post("/api/backup", backup.clone());
    assert_eq!(status, 409, "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("backup of profile hang is running"),
        "{r}"
    );
    let st: serde_json::Value = s.get("/api/status").json().unwrap();
    assert_eq!(st["job"]["running"], true, "{st}");
    let id = st["job"]["id"].as_u64().unwrap();
    assert!(
        s.get("/backup")
            .text()
            .unwrap()
            .contains("data-action=\"/api/cancel\"")
    );
    let (status, r) = s.post("/api/cancel", serde_json::json!({"id": id.to_string()}));
    assert_eq!(status, 200, "{r}");
    let job = s.wait_job();
    assert_eq!((job["id"].as_u64(), &job["ok"]), (Some(id), &false.into()));
    assert!(
        job["message"].as_str().unwrap().starts_with("cancelled"),
        "{job}"
    );
    // The slot is free: the next task starts.
    let (status, r) = s.post("/api/backup", backup);
    assert_eq!(status, 200, "{r}");
    let st: serde_json::Value = s.get("/api/status").json().unwrap();
    assert_eq!(st["job"]["running"], true, "{st}");
    assert_eq!(st["job"]["id"].as_u64(), Some(id + 1), "{st}");
    let (status, r) = s.post("/api/cancel", serde_json::json!({"id": id.to_string()}));
    assert_eq!(status, 409, "an ended task: {r}");

    // Ctrl-C while a page follows /api/events: the server ends.
    let mut events = s
        .client()
        .get(format!("{}/api/events", s.base))
        .header("Cookie", s.cookie())
        .send()
        .unwrap();
    let mut first = [0u8; 5];
    std::io::Read::read_exact(&mut events, &mut first).unwrap();
    assert_eq!(&first, b"data:");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if s.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "snap ui did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(events);
}

/// Saves at once each land: they once read, changed and wrote the config
/// over each other, and profiles answered "saved" went missing.
#[test]
fn settings_saved_at_once_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let s = Server::start(&home, &[("SNAP_PASSWORD", "pw")]);
    let session = s.session();
    std::thread::scope(|scope| {
        for i in 0..16 {
            let (s, session) = (&s, &session);
            scope.spawn(move || {
                let r = s
                    .client()
                    .post(format!("{}/api/settings", s.base))
                    .header("Cookie", s.cookie())
                    .header("X-Snap-Session", session)
                    .json(
                        &serde_json::json!({"name": format!("p{i}"), "kind": "local",
                        "folder": format!("/tmp/nowhere-{i}"), "password_source": "keep"}),
                    )
                    .send()
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
            });
        }
    });
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    for i in 0..16 {
        assert!(
            config.contains(&format!("[profiles.p{i}]")),
            "p{i} is missing:\n{config}"
        );
    }
}

/// A snapshot this computer saw that storage hid is named on Manage, above
/// the list whose newest entry is now an older one (issue 22, part 4).
#[test]
fn manage_warns_of_a_snapshot_the_storage_hid() {
    let (dir, home, repo) = world("pw");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let snap = |args: &[&str]| cli(&home, &repo, "pw", args);
    std::fs::write(src.join("doc.txt"), "balance: 100").unwrap();
    snap(&["create", src.to_str().unwrap()]);
    std::fs::write(src.join("doc.txt"), "balance: 999").unwrap();
    snap(&["create", src.to_str().unwrap()]);
    // This device lists (and so remembers) both; then storage hides one.
    snap(&["snapshots"]);
    let mut newest: Vec<PathBuf> = std::fs::read_dir(repo.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    newest.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let hidden = newest.pop().unwrap();
    let short = hidden.file_name().unwrap().to_str().unwrap()[..8].to_string();
    std::fs::rename(&hidden, dir.path().join("aside")).unwrap();
    let s = Server::start(
        &home,
        &[
            ("SNAP_PASSWORD", "pw"),
            ("SNAP_REPOSITORY", repo.to_str().unwrap()),
        ],
    );
    let html = s.get("/manage").text().unwrap();
    assert!(
        html.contains("rolled-back") && html.contains(&short),
        "no warning of {short} on Manage"
    );
}

/// The page refuses a restore that would write snap's own settings: a
/// planted `config.toml` restored over snap's once made it run a password
/// command the page refuses to take as a setting (a hostile review).
#[test]
fn the_page_restores_nothing_over_snaps_own_settings() {
    let (dir, home, repo) = world("pw");
    let src = dir.path().join("planted");
    std::fs::create_dir_all(&src).unwrap();
    let marker = dir.path().join("pwned");
    std::fs::write(
        src.join("config.toml"),
        format!(
            "[profiles.p]\npassword_command = \"touch {}; echo pw\"\n",
            marker.display()
        ),
    )
    .unwrap();
    cli(&home, &repo, "pw", &["create", src.to_str().unwrap()]);
    let s = Server::start(
        &home,
        &[
            ("SNAP_PASSWORD", "pw"),
            ("SNAP_REPOSITORY", repo.to_str().unwrap()),
        ],
    );
    let own = home.join("config.toml");
    let before = std::fs::read(&own).ok();
    let snaps: serde_json::Value = s.get("/api/snapshots").json().unwrap();
    let id = snaps[0]["id"].as_str().unwrap().to_string();
    let (status, r) = s.post(
        "/api/restore",
        serde_json::json!({"snapshot": id, "path": src.join("config.toml").display().to_string(),
            "target": home.display().to_string(), "delete": false}),
    );
    if status == 200 {
        let job = s.wait_job();
        assert_eq!(job["ok"], false, "{job}");
        assert!(job.to_string().contains("own settings"), "{job}");
    } else {
        assert!(r.to_string().contains("own settings"), "{status} {r}");
    }
    assert_eq!(
        std::fs::read(&own).ok(),
        before,
        "snap's config was replaced"
    );
    assert!(!marker.exists());
}

/// Runs a browser scenario, closing the browser whatever happens, then
/// fails with the scenario's failure and the server's log.
async fn in_browser<F: std::future::Future<Output = ()>>(c: &Client, server: &Server, run: F) {
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run)).await;
    let _ = c.clone().close().await;
    if let Err(e) = outcome {
        eprintln!("snap ui's log:\n{}", server.log());
        std::panic::resume_unwind(e);
    }
}

/// Computer B's first visit to a bucket that computer A backs up to: the
/// first screen offers connect and create as equals; a typo in the root
/// path names the repository beside it, and one click connects to it;
/// Manage shows A's snapshot; a restore of A's folder offers no path of
/// A's computer, and lands in B's own folder, every byte as A had it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn computer_b_connects_on_its_first_visit_and_restores_into_its_own_folder() {
    let g = Garage::get();
    let a = common::Env::s3("first-visit");
    a.init();
    let src = a.path("alice/Documents/app");
    tree(&src);
    a.create(&[&src], &["--host", "alice-laptop"]);
    let (folder, _) = a.repo.rsplit_once('/').unwrap();
    a.init_at(&format!("{folder}/work"));
    let root = a
        .repo
        .strip_prefix(&format!("s3://{}/", garage::BUCKET))
        .unwrap()
        .to_string();
    let typo = root.replace("/repo", "/rpeo");

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let server = Server::start(&home, &[]);
    let driver = Driver::start();
    let c = browser(&driver, &dir.path().join("chromium"), dir.path()).await;
    let p = Page {
        c: &c,
        secret: garage::SECRET_KEY,
    };
    let mine = home.join("app");
    let run = async {
        p.go(&server.url).await;
        p.wait_text("#connect h2", "Connect to an existing repository")
            .await;
        p.wait_text("#create h2", "Create a new repository").await;
        p.shot("first-visit-desktop").await;
        p.fill("#c-endpoint", &g.endpoint).await;
        p.fill("#c-region", garage::REGION).await;
        p.fill("#c-bucket", garage::BUCKET).await;
        p.fill("#c-access_key_id", garage::ACCESS_KEY).await;
        p.fill("#c-secret_access_key", garage::SECRET_KEY).await;
        p.fill("#c-root", &typo).await;
        p.fill("#c-password", common::PASSWORD).await;
        p.click("#connect button[type=submit]").await;
        let said = p.wait_text("#connect .result", "did you mean").await;
        assert!(
            said.contains(&format!("did you mean {}?", a.repo)) && said.contains("/work"),
            "{said}"
        );
        assert!(
            !said.contains("Initialize"),
            "no invitation to make another: {said}"
        );
        p.shot("first-visit-typo-desktop").await;
        // The likeliest comes first; one click connects.
        p.click("#connect button[data-fill]").await;
        p.wait_text("main", "alice-laptop").await;
        assert_eq!(c.current_url().await.unwrap().path(), "/manage");
        assert_eq!(p.rows("table.snapshots tbody tr").await, 1);
        p.shot("first-visit-connected-desktop").await;

        // Browse A's snapshot: its folder is A's path, which B does not
        // have; the restore offers none of A's paths.
        p.click("table.snapshots tbody tr a").await;
        p.wait_text("main", "Restore this folder").await;
        let offered = p.value("#target").await;
        assert!(
            !offered.contains("alice"),
            "a path of A's computer is offered: {offered:?}"
        );
        p.wait_text("main", "comes from another device").await;
        p.fill("#target", &mine.display().to_string()).await;
        let before = p.job_id().await;
        p.click("form[data-action='/api/restore'] button[value=false]")
            .await;
        p.accept().await;
        p.job_done(&before).await;
    };
    in_browser(&c, &server, run).await;
    common::assert_same_tree(&src, &mine);
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(
        config.contains(&a.repo),
        "the profile names A's repository: {config}"
    );
    assert!(!config.contains("rpeo"), "{config}");
}

/// The folder picker: the usual places, folders one click at a time, "Add
/// this folder" into the field; and `~/…` typed by hand is the home's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_to_back_up_are_chosen_with_the_picker_or_with_a_tilde() {
    let (dir, home, repo) = world("pw");
    std::fs::create_dir_all(home.join("Documents/taxes")).unwrap();
    std::fs::write(home.join("Documents/taxes/2026.txt"), b"numbers").unwrap();
    std::fs::create_dir_all(home.join("Pictures")).unwrap();
    std::fs::write(home.join("Pictures/cat.jpg"), b"a cat").unwrap();
    let server = Server::on(&home, &repo);
    let driver = Driver::start();
    let c = browser(&driver, &dir.path().join("chromium"), dir.path()).await;
    let p = Page::new(&c, "pw-not-shown");
    let docs = home.join("Documents").display().to_string();
    let run = async {
        p.go(&server.url).await;
        p.go(&format!("{}/backup", server.base)).await;
        p.click("button[data-picker]").await;
        p.wait_text("#picker .where", &home.display().to_string())
            .await;
        p.wait_text("#picker .places", "Documents").await;
        p.shot("picker-desktop").await;
        p.click(&format!("#picker .places button[data-go='{docs}']"))
            .await;
        p.wait_text("#picker .where", &docs).await;
        p.wait_text("#picker ul.folders", "taxes").await;
        p.click("#picker button[data-pick]").await;
        let chosen = p.value("#sources").await;
        assert_eq!(chosen.trim(), docs, "{chosen:?}");
        p.fill("#sources", &format!("{docs}\n~/Pictures")).await;
        let before = p.job_id().await;
        p.click("form[data-action='/api/backup'] button[type=submit]")
            .await;
        p.job_done(&before).await;
    };
    in_browser(&c, &server, run).await;
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    let pictures = home.join("Pictures").display().to_string();
    assert!(config.contains(&pictures), "~ is the home: {config}");
    assert!(!config.contains('~'), "{config}");
}

/// After Delete selected and after keep-last-N, the list and its count
/// change in place, without a reload, and the result stays where the user
/// clicked; the question names the snapshots it deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_refresh_in_place_after_delete_and_keep_last() {
    let (dir, home, repo) = world("pw");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..4 {
        std::fs::write(src.join("f"), format!("version {i}")).unwrap();
        cli(
            &home,
            &repo,
            "pw",
            &["create", "--host", "laptop", src.to_str().unwrap()],
        );
    }
    let server = Server::on(&home, &repo);
    let driver = Driver::start();
    let c = browser(&driver, &dir.path().join("chromium"), dir.path()).await;
    let p = Page::new(&c, "pw-not-shown");
    let run = async {
        p.go(&server.url).await;
        p.wait_rows("table.snapshots tbody tr", 4).await;
        p.wait_text("#stats", "Snapshots").await;
        p.mark().await;
        p.click("table.snapshots tbody tr:first-child input[type=checkbox]")
            .await;
        let newest =
            p.c.find(Locator::Css(
                "table.snapshots tbody tr:first-child input[type=checkbox]",
            ))
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap()
            .unwrap();
        p.click("form[data-action='/api/forget'] button.danger")
            .await;
        let question = c.get_alert_text().await.unwrap();
        assert!(question.contains(&newest[..8]), "{question}");
        p.accept().await;
        p.wait_text(
            "form[data-action='/api/forget'] .result",
            &format!("deleted snapshot {}", &newest[..8]),
        )
        .await;
        p.wait_rows("table.snapshots tbody tr", 3).await;
        p.wait_text("#snapshot-count", "3 snapshots").await;

        p.select("#keep-host", "laptop").await;
        p.select("#keep-n", "1").await;
        p.click("form[data-action='/api/keep'] button[value=true]")
            .await;
        p.accept().await;
        p.wait_text("form[data-action='/api/keep'] .result", "Done")
            .await;
        p.wait_rows("table.snapshots tbody tr", 1).await;
        p.wait_text("#snapshot-count", "1 snapshot").await;
        p.wait_text("#stats", "Snapshots\n1").await;
        assert!(p.still_marked().await, "the page was loaded again");
        p.shot("manage-refreshed-desktop").await;
    };
    in_browser(&c, &server, run).await;
}

/// A profile name with spaces is made a plain word, not refused; a
/// refusal names the field it is about, which the page shows beside it.
#[test]
fn a_name_with_spaces_is_saved_as_a_slug_and_refusals_name_their_field() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let s = Server::start(&home, &[("SNAP_PASSWORD", "pw")]);
    let (status, r) = s.post(
        "/api/settings",
        serde_json::json!({"name": "Bob's Laptop", "kind": "local",
            "folder": "/tmp/somewhere", "password_source": "keep"}),
    );
    assert_eq!(status, 200, "{r}");
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(config.contains("[profiles.bob-s-laptop]"), "{config}");
    let (status, r) = s.post(
        "/api/settings",
        serde_json::json!({"name": "x", "kind": "local", "folder": "relative/place",
            "password_source": "keep"}),
    );
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["field"], "folder", "{r}");
    let (_, r) = s.post(
        "/api/settings",
        serde_json::json!({"name": "x", "kind": "s3", "bucket": "", "password_source": "keep"}),
    );
    assert_eq!(r["field"], "bucket", "{r}");
}

/// Browse opens at the folder holding a snapshot's backed-up folders, not
/// at `/`; a folder downloads as a tar of what it held.
#[test]
fn a_folder_downloads_as_tar_and_browse_opens_at_the_backed_up_folders() {
    let (dir, home, repo) = world("pw");
    let src = dir.path().join("src");
    for (f, body) in [
        ("a/x.txt", "the x"),
        ("a/deep/y.txt", "the y"),
        ("b/z.txt", "z"),
    ] {
        let p = src.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let (a, b) = (src.join("a"), src.join("b"));
    cli(
        &home,
        &repo,
        "pw",
        &["create", a.to_str().unwrap(), b.to_str().unwrap()],
    );
    let s = Server::on(&home, &repo);
    let snaps: serde_json::Value = s.get("/api/snapshots").json().unwrap();
    let id = snaps[0]["id"].as_str().unwrap().to_string();
    let manage = s.get("/manage").text().unwrap();
    let at =
        url::form_urlencoded::byte_serialize(src.to_str().unwrap().as_bytes()).collect::<String>();
    assert!(
        manage.contains(&format!("/browse?snapshot={id}&amp;path={at}\"")),
        "Browse opens at {}: {manage}",
        src.display()
    );
    let path =
        url::form_urlencoded::byte_serialize(a.to_str().unwrap().as_bytes()).collect::<String>();
    let r = s.get(&format!("/api/download?snapshot={id}&path={path}"));
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-tar");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("a.tar")
    );
    let body = r.bytes().unwrap();
    let mut files = std::collections::BTreeMap::new();
    for e in tar::Archive::new(&body[..]).entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_file() {
            let name = e.path().unwrap().display().to_string();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            files.insert(name, text);
        }
    }
    let names: Vec<&String> = files.keys().collect();
    assert_eq!(files.len(), 2, "{names:?}");
    assert!(
        files
            .iter()
            .any(|(n, t)| n.ends_with("a/x.txt") && t == "the x"),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|(n, t)| n.ends_with("a/deep/y.txt") && t == "the y"),
        "{files:?}"
    );
}

/// "Use X" on a profile whose place holds nothing takes only a repository
/// the search finds near it now, that opens with the profile's password;
/// a saved secret is not reused for another endpoint.
#[test]
fn a_profile_moves_only_to_a_repository_found_near_it_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let family = dir.path().join("family");
    init(&home, &family, "pw");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "pw\n").unwrap();
    let s = Server::start(&home, &[]);
    let typo = dir.path().join("famliy");
    let (status, r) = s.post(
        "/api/settings",
        serde_json::json!({"name": "p", "kind": "local", "folder": typo.display().to_string(),
            "password_source": "file", "password_file": pw.display().to_string()}),
    );
    assert_eq!(status, 200, "{r}");
    let manage = s.get("/manage").text().unwrap();
    assert!(
        manage.contains(&format!("Use {}", family.display())),
        "{manage}"
    );
    let config = || std::fs::read_to_string(home.join("config.toml")).unwrap();
    for elsewhere in ["/tmp", "relative", "/nonexistent/x"] {
        let (status, r) = s.post(
            "/api/relocate",
            serde_json::json!({"profile": "p", "location": elsewhere}),
        );
        assert_eq!(status, 400, "{elsewhere}: {r}");
        assert!(config().contains("famliy"), "{elsewhere}: {}", config());
    }
    let (status, r) = s.post(
        "/api/relocate",
        serde_json::json!({"profile": "p", "location": family.display().to_string()}),
    );
    assert_eq!(status, 200, "{r}");
    assert!(!config().contains("famliy"), "{}", config());
    // Its place holds a repository now: it is not moved again.
    let other = dir.path().join("familz");
    init(&home, &other, "pw");
    let (status, r) = s.post(
        "/api/relocate",
        serde_json::json!({"profile": "p", "location": other.display().to_string()}),
    );
    assert_eq!(status, 400, "{r}");

    // A bucket profile with a saved secret, then another endpoint.
    let (status, r) = s.post(
        "/api/settings",
        serde_json::json!({"name": "b", "kind": "s3", "endpoint": "http://127.0.0.1:9",
            "region": "r", "bucket": "bk", "access_key_id": "AK", "secret_access_key": "SK-saved",
            "password_source": "keep"}),
    );
    assert_eq!(status, 200, "{r}");
    let (status, r) = s.post(
        "/api/connection",
        serde_json::json!({"name": "b", "kind": "s3", "endpoint": "http://127.0.0.1:10",
            "region": "r", "bucket": "bk", "access_key_id": "AK", "secret_access_key": "",
            "password_source": "keep"}),
    );
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["field"], "secret_access_key", "{r}");
}

/// Scheduled backups skip a snapshot when nothing changed (on unless the
/// profile says otherwise), so keep-last-N keeps history, not copies; off,
/// every run writes one.
#[test]
fn a_schedule_skips_a_snapshot_when_nothing_changed() {
    let (dir, home, repo) = world("pw");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "unchanging").unwrap();
    let profile = |skip: &str| {
        std::fs::write(
            home.join("config.toml"),
            format!(
                "default = \"laptop\"\n[profiles.laptop]\nrepository = \"{}\"\nsources = [\"{}\"]\n\
                 schedule = \"1m\"\nkeep_last = 3\n{skip}",
                repo.display(),
                src.display(),
            ),
        )
        .unwrap();
    };
    let runs = |s: &Server, at_least: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st: serde_json::Value = s.get("/api/status").json().unwrap();
            let e = st["schedule"]["laptop"].clone();
            if e["runs"].as_u64().unwrap_or(0) >= at_least {
                return e;
            }
            assert!(Instant::now() < deadline, "the schedule did not run: {st}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let snapshots = |s: &Server| {
        let all: serde_json::Value = s.get("/api/snapshots").json().unwrap();
        all.as_array().unwrap().len()
    };
    profile("");
    let s = Server::start(
        &home,
        &[("SNAP_PASSWORD", "pw"), ("SNAP_UI_TIME_SCALE", "60")],
    );
    // The folder above the backup changes meanwhile, as a home folder or
    // /tmp does: that is no change to what is backed up.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let toucher = {
        let (stop, above) = (stop.clone(), dir.path().to_path_buf());
        std::thread::spawn(move || {
            let mut t = 1_700_000_000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                t += 1;
                filetime::set_file_mtime(&above, filetime::FileTime::from_unix_time(t, 0)).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let e = runs(&s, 4);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    toucher.join().unwrap();
    assert!(
        e["last_result"]
            .as_str()
            .unwrap()
            .contains("nothing changed since snapshot"),
        "{e}"
    );
    assert_eq!(
        snapshots(&s),
        1,
        "one snapshot, then runs that found nothing new"
    );
    drop(s);

    profile("skip_if_unchanged = false\n");
    let s = Server::start(
        &home,
        &[("SNAP_PASSWORD", "pw"), ("SNAP_UI_TIME_SCALE", "60")],
    );
    runs(&s, 3);
    assert!(
        snapshots(&s) >= 3,
        "every run writes a snapshot when asked to"
    );
}

/// A computer whose key is write-only sees its own backups on Manage, is
/// told why there is no more, and gets no Delete, keep-last-N or Free
/// space (which it could only fail at); Browse says the key's kind.
#[test]
fn manage_on_a_write_only_key_lists_its_own_backups_and_offers_no_deletion() {
    let (dir, home, repo) = world("pw");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("doc.txt"), "from the desktop").unwrap();
    cli(&home, &repo, "pw", &["create", src.to_str().unwrap()]);
    let pw = dir.path().join("laptop.pass");
    std::fs::write(&pw, "laptop\n").unwrap();
    cli(
        &home,
        &repo,
        "pw",
        &[
            "key",
            "add",
            "--write-only",
            "--host",
            "laptop",
            "--kdf-memory",
            "1024",
            "--kdf-iterations",
            "1",
            "--new-password-file",
            pw.to_str().unwrap(),
        ],
    );
    let laptop = dir.path().join("laptop-home");
    std::fs::create_dir_all(&laptop).unwrap();
    cli(&laptop, &repo, "laptop", &["create", src.to_str().unwrap()]);
    let s = Server::start(
        &laptop,
        &[
            ("SNAP_PASSWORD", "laptop"),
            ("SNAP_REPOSITORY", repo.to_str().unwrap()),
        ],
    );
    let html = s.get("/manage").text().unwrap();
    assert!(html.contains("write-only"), "{html}");
    assert!(
        html.contains("1 more in the repository, its own older ones among them, are sealed"),
        "{html}"
    );
    assert!(html.contains("laptop"), "{html}");
    assert!(
        !html.contains("/api/forget") && !html.contains("/api/prune"),
        "{html}"
    );
    let browse = s.get("/browse?snapshot=latest").text().unwrap();
    assert!(browse.contains("write-only key"), "{browse}");
    assert!(!browse.contains("doc.txt"), "{browse}");
}
