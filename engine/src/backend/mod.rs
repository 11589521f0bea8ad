//! Storage: the few operations the engine needs from a repository's home,
//! over object_store so the local directory and every S3-compatible bucket
//! behave the same. Blocking on purpose: the engine's parallelism is threads
//! (rayon and uploaders), and each call runs on a shared tokio runtime.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::atomic::Ordering;

/// The fewest keys a provider is known to page listings by; a shorter
/// listing cannot have been cut, and is not asked for more.
const MIN_PAGE: usize = 100;

/// A bound on listing continuations (a hundred million keys at 1,000 a
/// page): a provider that keeps answering cannot hold snap forever.
const MAX_CONTINUATIONS: usize = 100_000;

/// The most objects one listing may hold (format-spec.md section 12). Ten
/// million packs of the default 16 MiB are 160 TB, beyond any repository
/// one device backs up; a listing that grows past it is a provider that
/// never stops (one answering every page with the same continuation token
/// held `snap snapshots` for good, at 2.6 GB and growing 40 MB/s), and it
/// is refused before memory follows it.
pub const MAX_LISTED: usize = 10_000_000;

use crate::error::{Error, Result};

mod as_of;
pub mod nearby;
mod s3;
mod versions;
pub use as_of::AsOf;
pub use versions::ObjectVersion;

use crate::retention::Retention;
/// What a resolver given in [`S3Options::dns_resolver`] implements.
pub use object_store::client::{DnsFuture, DnsResolver};
pub use s3::{Addressing, S3Options};

/// An object as listed: its name relative to the repository root and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
    /// Last modification by the store's clock, in Unix nanoseconds: the one
    /// clock all devices share.
    pub modified_ns: i64,
}

/// What the engine needs from storage. Names are `/`-separated and relative
/// to the repository root (`config`, `data/ab/ab12…`).
pub trait Backend: Send + Sync {
    /// Where the repository is, for messages.
    fn location(&self) -> &str;
    /// Whole object; [`Error::Missing`] when it does not exist. An object
    /// larger than `max` bytes, the limit of its kind (format-spec.md
    /// section 12), is refused before its body is read: storage is
    /// untrusted, and a planted 3 GiB `keys/…` once made `snap snapshots`
    /// hold 3.1 GB.
    fn read(&self, name: &str, max: u64) -> Result<Bytes>;
    fn read_range(&self, name: &str, range: Range<u64>) -> Result<Bytes>;
    /// Writes atomically: readers see the whole object or nothing.
    fn write(&self, name: &str, data: Bytes) -> Result<()>;
    /// Writes an object given in pieces, as a pack is built.
    fn write_parts(&self, name: &str, parts: Vec<Bytes>) -> Result<()> {
        self.write(name, Bytes::from(parts.concat()))
    }
    /// Writes only if no object has the name; false if one does. Atomic
    /// where the store honours conditional writes; elsewhere a check before
    /// the write, which two writers racing within one round trip can defeat.
    fn create(&self, name: &str, data: Bytes) -> Result<bool>;
    /// All objects whose name starts with `prefix` (a folder like `index/`).
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    /// Deleting a missing object is not an error: deletes may be repeated.
    fn delete(&self, name: &str) -> Result<()>;
    /// Deletes many objects, in as few requests as the store allows.
    fn delete_many(&self, names: &[String]) -> Result<()> {
        names.iter().try_for_each(|n| self.delete(n))
    }
    /// The object's size, asked of the object itself (S3's HEAD), or
    /// `None` when it does not exist. Listings can lag behind writes, be
    /// cut short or leave a key out; what matters is asked for by name.
    fn head(&self, name: &str) -> Result<Option<u64>>;
    fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.head(name)?.is_some())
    }
    /// Whether [`Backend::create`] is atomic here: false once the store
    /// has refused conditional writes (B2), and `create` looks first.
    fn create_is_atomic(&self) -> bool {
        true
    }
    /// The folder holding the repository, when it is on this machine: a
    /// restore must not write into it, nor delete it.
    fn local_dir(&self) -> Option<&std::path::Path> {
        None
    }
    /// How many transfers to run at once: more hide latency on a remote
    /// store, and cost nothing but memory.
    fn connections(&self) -> usize {
        2
    }
    /// Repositories near this location, for when it holds none
    /// ([`nearby`]). Advice only: nothing found when the store cannot say.
    fn nearby(&self) -> nearby::Nearby {
        nearby::Nearby::new(self.location(), Vec::new())
    }
    /// Gives every object written from now on this retention (S3 Object
    /// Lock). The bucket is asked whether it has Object Lock before the
    /// first write, whatever it writes: a repository that asks for
    /// retention on a bucket without it stops before anything is written.
    /// Reading asks nothing.
    fn enable_retention(&self, retention: Retention) -> Result<()> {
        let _ = retention;
        Err(Error::ObjectLockUnavailable(format!(
            "{}: the repository asks for Object Lock retention, which only an S3 bucket \
             with Object Lock gives; nothing was written",
            self.location()
        )))
    }
    /// The retention writes get, if any.
    fn retention(&self) -> Option<Retention> {
        None
    }
    /// Extends the retention of `names` to the full term from now where
    /// less than half of it remains; how many were extended.
    fn extend_retention(&self, names: &[String]) -> Result<u64> {
        let _ = names;
        Ok(0)
    }
    /// Every version and delete marker of the objects under `prefix`, in a
    /// versioned bucket, newest first within a name.
    fn list_versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>> {
        let _ = prefix;
        Err(no_versions(self.location()))
    }
    /// One version of an object, bounded as [`Backend::read`].
    fn read_version(&self, name: &str, version: &str, max: u64) -> Result<Bytes> {
        let _ = (name, version, max);
        Err(no_versions(self.location()))
    }
    fn read_version_range(&self, name: &str, version: &str, range: Range<u64>) -> Result<Bytes> {
        let _ = (name, version, range);
        Err(no_versions(self.location()))
    }
    /// Deletes objects for good. Those whose deletion the store refuses
    /// (403: an object under retention, a key that may not delete) are
    /// returned, for a later prune to try again; under Object Lock every
    /// version of each name is deleted, and a version still retained is
    /// refused so (its name is deleted meanwhile, by a delete marker).
    fn purge(&self, names: &[String]) -> Result<Vec<String>> {
        purge_plain(self, names)
    }
}

/// [`Backend::purge`] where the store keeps no versions: the deletes, and
/// the names whose delete was refused.
fn purge_plain<B: Backend + ?Sized>(b: &B, names: &[String]) -> Result<Vec<String>> {
    match b.delete_many(names) {
        Err(Error::DeleteDenied { .. }) => {}
        other => return other.map(|()| Vec::new()),
    }
    let mut refused = Vec::new();
    for n in names {
        match b.delete(n) {
            Ok(()) => {}
            Err(Error::DeleteDenied { .. }) => refused.push(n.clone()),
            Err(e) => return Err(e),
        }
    }
    Ok(refused)
}

/// The longest retention snap asks for: a config from storage is
/// untrusted, and four billion days past now is no date at all.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// A retention snap can give: at least a day, at most
/// [`MAX_RETENTION_DAYS`].
fn check_retention(r: &Retention) -> Result<()> {
    if !(1..=MAX_RETENTION_DAYS).contains(&r.days) {
        return Err(Error::InvalidArgument(format!(
            "an Object Lock retention of {} days: it must be 1 to {MAX_RETENTION_DAYS}",
            r.days
        )));
    }
    Ok(())
}

fn no_versions(location: &str) -> Error {
    Error::InvalidArgument(format!(
        "{location} keeps no versions of its objects: reading the repository as it was \
         (--as-of) needs an S3 bucket with versioning"
    ))
}

/// An object_store behind the [`Backend`] trait.
pub struct StoreBackend {
    store: Arc<dyn ObjectStore>,
    root: StorePath,
    location: String,
    runtime: IoRuntime,
    /// Objects larger than this go up in equal parts of this size.
    multipart: Option<usize>,
    /// Turns a store's error into a message naming the setting at fault.
    explain: Option<Explain>,
    connections: usize,
    /// The same bucket for multi-object deletes (S3 only), without
    /// retries: a pass that fails is finished by single deletes, which
    /// retry. `store` sends single deletes as plain `DELETE`s (object_store
    /// would send even one as a `POST ?delete`, which some providers
    /// lack, and retry a 501 for six seconds).
    bulk_store: Option<Arc<dyn ObjectStore>>,
    /// Whether to try multi-object deletes: S3 with `bulk_delete` on, until
    /// the provider has refused one in this run.
    bulk: std::sync::atomic::AtomicBool,
    /// Whether listings come in pages that a provider may cut (S3).
    paged: bool,
    /// The folder of a local repository.
    local: Option<std::path::PathBuf>,
    /// The bucket of an S3 repository (`location` also names the endpoint).
    bucket: Option<String>,
    /// The same bucket, listed a page at a time (S3 only): the folders near
    /// a repository are read in bounded pages ([`nearby`]).
    folders: Option<Arc<dyn object_store::list::PaginatedListStore>>,
    /// Set once the provider refused a conditional write in this run.
    create_unsupported: std::sync::atomic::AtomicBool,
    /// [`MAX_LISTED`]; lower only in tests.
    max_listed: usize,
    /// Object Lock and versions requests (S3 only).
    extra: Option<versions::S3Extra>,
    /// The retention every write gets, once turned on.
    retention: std::sync::RwLock<Option<Retention>>,
    /// Whether the bucket has Object Lock, once asked (before the first
    /// write under retention).
    lock_checked: std::sync::Mutex<Option<bool>>,
    /// Set once the bucket refused a PUT without Content-MD5 (a bucket
    /// with a default retention set outside snap): every write from then
    /// on is one PUT with it.
    md5_puts: std::sync::atomic::AtomicBool,
}

type Explain = Box<dyn Fn(&object_store::Error) -> Option<String> + Send + Sync>;

/// The backend's own tokio runtime. Dropped, it is shut down without
/// waiting: a plain drop blocks until its threads end, which tokio forbids
/// inside another runtime, and `snap ui` drops a repository (settings
/// saved, a password typed) from a request handler. That panicked, and
/// left every later page broken.
struct IoRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for IoRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0
            .as_ref()
            .expect("the runtime is taken only when dropped")
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn runtime() -> Result<IoRuntime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map(|rt| IoRuntime(Some(rt)))
        .map_err(|e| Error::Other(format!("cannot start I/O runtime: {e}")))
}

impl StoreBackend {
    pub fn new(store: Arc<dyn ObjectStore>, root: &str, location: String) -> Result<StoreBackend> {
        Ok(StoreBackend {
            store,
            root: StorePath::from(root.trim_matches('/')),
            location,
            runtime: runtime()?,
            multipart: None,
            explain: None,
            connections: 2,
            bulk_store: None,
            paged: false,
            local: None,
            bucket: None,
            folders: None,
            bulk: std::sync::atomic::AtomicBool::new(false),
            create_unsupported: std::sync::atomic::AtomicBool::new(false),
            max_listed: MAX_LISTED,
            extra: None,
            retention: std::sync::RwLock::new(None),
            md5_puts: std::sync::atomic::AtomicBool::new(false),
            lock_checked: std::sync::Mutex::new(None),
        })
    }

    /// Before any write under retention: the bucket must have Object
    /// Lock, asked once (GetObjectLockConfiguration).
    fn check_object_lock(&self) -> Result<()> {
        let Some(r) = self.retention() else {
            return Ok(());
        };
        let mut checked = self.lock_checked.lock().unwrap();
        let has = match *checked {
            Some(has) => has,
            None => {
                let has = match &self.extra {
                    Some(extra) => self.runtime.block_on(extra.object_lock_enabled())?,
                    None => false,
                };
                *checked = Some(has);
                has
            }
        };
        if has {
            return Ok(());
        }
        if self.extra.is_none() {
            return Err(Error::ObjectLockUnavailable(format!(
                "{}: the repository asks for Object Lock retention ({} days, {:?}), which only \
                 an S3 bucket with Object Lock gives; it can be read here, and nothing was \
                 written",
                self.location, r.days, r.mode
            )));
        }
        Err(Error::ObjectLockUnavailable(format!(
            "{}: the repository asks that every object be kept {} days (Object Lock, {:?} mode), \
             but the bucket has no Object Lock; nothing was written. Object Lock is turned on \
             when a bucket is created (with versioning): make a new bucket with it",
            self.location, r.days, r.mode
        )))
    }

    /// The S3 requests for writes with a Content-MD5, once the bucket
    /// asked for it.
    fn md5_writer(&self) -> Option<&versions::S3Extra> {
        self.extra
            .as_ref()
            .filter(|_| self.md5_puts.load(Ordering::Relaxed))
    }

    /// Whether a failed write was the bucket asking for a Content-MD5
    /// (its default retention wants one on every PUT); from then on every
    /// write sends one.
    fn wants_md5(&self, e: Option<&object_store::Error>) -> bool {
        let Some(e) = e else { return false };
        let asked = self.extra.is_some() && asks_for_md5(&provider_answer(e));
        if asked {
            self.md5_puts.store(true, Ordering::Relaxed);
        }
        asked
    }

    /// The retention a write of `name` gets: none for locks, which are
    /// rewritten every few minutes and hold nothing a restore needs
    /// (format-spec.md section 4).
    fn retained_for(&self, name: &str) -> Option<(Retention, &versions::S3Extra)> {
        let r = (*self.retention.read().unwrap())?;
        let extra = self.extra.as_ref()?;
        (!name.starts_with(&crate::object::Object::Lock.prefix())).then_some((r, extra))
    }

    /// When retention given now ends.
    fn retain_until(r: Retention) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::days(i64::from(r.days))
    }

    /// The name of a stored key, relative to the root.
    fn relative<'a>(&self, key: &'a str) -> Option<&'a str> {
        if self.root.as_ref().is_empty() {
            return Some(key);
        }
        key.strip_prefix(self.root.as_ref())?.strip_prefix('/')
    }

    /// Deletes every version of `name` under Object Lock. A version still
    /// retained is refused: the name is then hidden by a delete marker,
    /// and `false` says the deletion waits.
    async fn purge_versions(&self, extra: &versions::S3Extra, name: &str) -> Result<bool> {
        let path = self.path(name);
        let key = path.as_ref().to_string();
        let versions: Vec<ObjectVersion> = extra
            .list_versions(&key, self.max_listed)
            .await?
            .into_iter()
            .filter(|v| v.key == key)
            .collect();
        let mut refused = false;
        for v in versions.iter().filter(|v| !v.deleted) {
            if let versions::VersionDelete::Refused(_) =
                extra.delete_version(&path, &v.version).await?
            {
                refused = true;
            }
        }
        if refused {
            let hidden = versions.iter().any(|v| v.deleted && v.latest);
            if !hidden {
                match self.store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.delete_err(name, e)),
                }
            }
            return Ok(false);
        }
        for v in versions.iter().filter(|v| v.deleted) {
            extra.delete_version(&path, &v.version).await?;
        }
        Ok(true)
    }

    /// Deletes `names` one request each, several at a time; a missing
    /// object is not an error.
    fn delete_each(&self, names: &[String]) -> Result<()> {
        let paths: Vec<object_store::Result<StorePath>> =
            names.iter().map(|n| Ok(self.path(n))).collect();
        let results: Vec<object_store::Result<StorePath>> = self.runtime.block_on(
            self.store
                .delete_stream(futures::stream::iter(paths).boxed())
                .collect(),
        );
        for (r, name) in results.into_iter().zip(names) {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.delete_err(name, e)),
            }
        }
        Ok(())
    }

    /// A provider answering in ListObjectsV1's shape gives no
    /// continuation token, and object_store then stops after the first
    /// page, of whatever size the provider pages by: prune or check
    /// working from that view could delete live data or miss damage. So a
    /// listing long enough to have been cut is asked for more after its
    /// last key until nothing comes (one more request where nothing was
    /// cut). What comes must be new keys, in order, under the prefix:
    /// anything else means the provider ignores `start-after`, and the
    /// listing is refused rather than trusted or looped over.
    fn continue_listing(
        &self,
        path: &StorePath,
        prefix: &str,
        metas: &mut Vec<object_store::ObjectMeta>,
    ) -> Result<()> {
        let refuse = |count: usize| {
            Error::Backend(format!(
                "{}: the listing of {prefix} stops at {count} objects and the provider does not \
                 continue it after the last one, so snap cannot see them all; nothing was done \
                 from this partial view",
                self.location,
            ))
        };
        let Some(mut last) = metas.iter().map(|m| m.location.clone()).max() else {
            return Ok(());
        };
        for _ in 0..MAX_CONTINUATIONS {
            let more: Vec<object_store::ObjectMeta> = self
                .runtime
                .block_on(self.store.list_with_offset(Some(path), &last).try_collect())
                .map_err(|e| self.err(prefix, e))?;
            let Some(end) = more.last().map(|m| m.location.clone()) else {
                return Ok(());
            };
            let in_order = more.windows(2).all(|w| w[0].location < w[1].location);
            let under = more.iter().all(|m| m.location.prefix_matches(path));
            if !in_order || !under || more[0].location <= last {
                return Err(refuse(metas.len()));
            }
            last = end;
            metas.extend(more);
            if metas.len() > self.max_listed {
                return Err(refuse(metas.len()));
            }
        }
        Err(refuse(metas.len()))
    }

    /// A listing taken as it streams in, page after page, and stopped as
    /// soon as it cannot be an honest one: on a paged store (S3), whose
    /// listings come in key order, a key that is not after the one before
    /// (a repeated continuation token answers the same page again); on any
    /// store, more than [`MAX_LISTED`] objects.
    async fn bounded_list(
        &self,
        path: &StorePath,
        prefix: &str,
    ) -> Result<Vec<object_store::ObjectMeta>> {
        let mut stream = self.store.list(Some(path));
        let mut metas: Vec<object_store::ObjectMeta> = Vec::new();
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(|e| self.err(prefix, e))?;
            if self.paged
                && let Some(last) = metas.last()
                && meta.location <= last.location
            {
                return Err(Error::Backend(format!(
                    "{}: the listing of {prefix} came back to {} after {} (a key listed \
                     twice, or a continuation that starts over): the storage is not listing \
                     honestly, so nothing was done from it",
                    self.location, meta.location, last.location
                )));
            }
            if metas.len() >= self.max_listed {
                return Err(Error::Backend(format!(
                    "{}: the listing of {prefix} goes on past {} objects, the most a \
                     repository holds in one folder (format-spec.md section 12): the storage \
                     is not listing honestly, so nothing was done from it",
                    self.location, self.max_listed
                )));
            }
            metas.push(meta);
        }
        Ok(metas)
    }

    /// One multi-object delete pass: the names it confirmed deleted. It
    /// runs as a task of its own, so that an answer object_store cannot
    /// take (one naming a key that was not sent once made it panic) is a
    /// failed pass, not a crash.
    fn delete_bulk(&self, names: &[String]) -> std::collections::HashSet<String> {
        let Some(store) = self.bulk_store.clone() else {
            return Default::default();
        };
        let paths: Vec<object_store::Result<StorePath>> =
            names.iter().map(|n| Ok(self.path(n))).collect();
        let task = async move {
            store
                .delete_stream(futures::stream::iter(paths).boxed())
                .collect::<Vec<_>>()
                .await
        };
        let done: Vec<object_store::Result<StorePath>> = self
            .runtime
            .block_on(async { tokio::spawn(task).await })
            .unwrap_or_default();
        let root_len = self.path("").as_ref().len();
        done.into_iter()
            .filter_map(|r| r.ok())
            .map(|p| {
                let full = p.as_ref();
                full.get(root_len..)
                    .unwrap_or(full)
                    .trim_start_matches('/')
                    .to_string()
            })
            .collect()
    }

    /// A repository in a local directory. `create` makes the directory (for
    /// `init`); otherwise a missing directory means no repository.
    pub fn local(dir: &std::path::Path, create: bool) -> Result<StoreBackend> {
        let location = dir.display().to_string();
        if create {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        } else if !dir.is_dir() {
            return Err(Error::RepositoryNotFound(location));
        }
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| Error::Backend(format!("{location}: {e}")))?
            .with_automatic_cleanup(true);
        let mut backend = StoreBackend::new(Arc::new(store), "", location)?;
        backend.local = Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
        Ok(backend)
    }

    /// Root paths within the bucket that hold a repository, near this
    /// one: the folders in it, beside it and at the top of the bucket,
    /// listed one level at a time and at most [`nearby::MAX_PAGES`] pages
    /// each (a bucket of a million loose objects at its top once meant
    /// reading them all), the nearest by name first, each asked for the
    /// head of its `config`.
    ///
    /// Paths are kept as the store lists them and shown decoded: rebuilt
    /// from their text, a name such as `fotos-ü` was encoded again and
    /// never found.
    async fn bucket_repositories(&self) -> Vec<String> {
        let shown = |p: &StorePath| {
            percent_encoding::percent_decode_str(p.as_ref())
                .decode_utf8_lossy()
                .trim_matches('/')
                .to_string()
        };
        let root = shown(&self.root);
        let parts: Vec<_> = self.root.parts().collect();
        let mut places: Vec<Option<StorePath>> = vec![Some(self.root.clone())];
        if parts.len() > 1 {
            places.push(Some(parts[..parts.len() - 1].iter().cloned().collect()));
        }
        if !parts.is_empty() {
            places.push(None);
        }
        let mut candidates: Vec<(String, StorePath)> = Vec::new();
        if !parts.is_empty() {
            candidates.push((String::new(), StorePath::default()));
        }
        let Some(lister) = &self.folders else {
            return Vec::new();
        };
        for place in places {
            let mut folders = Vec::new();
            let mut token = None;
            for _ in 0..nearby::MAX_PAGES {
                let prefix = place.as_ref().map(|p| format!("{}/", p.as_ref()));
                let opts = object_store::list::PaginatedListOptions {
                    delimiter: Some("/".into()),
                    max_keys: Some(1000),
                    page_token: token.take(),
                    ..Default::default()
                };
                let Ok(page) = lister.list_paginated(prefix.as_deref(), opts).await else {
                    break;
                };
                folders.extend(page.result.common_prefixes);
                match page.page_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            for p in folders {
                let name = shown(&p);
                // Names from an untrusted listing are shown in a terminal
                // and a page: none that could steer a terminal or drown
                // the message.
                if !nearby::presentable(&name) {
                    continue;
                }
                if name != root && !candidates.iter().any(|(n, _)| *n == name) {
                    candidates.push((name, p));
                }
            }
        }
        // The nearest first, then cut: in a bucket of many folders, the
        // one a typo meant fell past the cut when taken in listing order.
        candidates.sort_by_key(|(name, _)| nearby::distance(&root, name));
        candidates.truncate(nearby::MAX_CANDIDATES);
        let asks = candidates.into_iter().map(|(name, path)| async move {
            let config = path.join("config");
            let head = self
                .store
                .get_range(&config, 0..crate::codec::HEADER_LEN as u64)
                .await
                .ok()?;
            crate::codec::peek_mode(crate::codec::Kind::Config, &head)
                .is_ok()
                .then_some(name)
        });
        futures::stream::iter(asks)
            .buffer_unordered(8)
            .filter_map(|c| async move { c })
            .collect()
            .await
    }

    fn path(&self, name: &str) -> StorePath {
        let mut p = self.root.clone();
        for part in name.split('/').filter(|s| !s.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }

    fn err(&self, name: &str, e: object_store::Error) -> Error {
        if let Some(msg) = self.explain.as_ref().and_then(|f| f(&e)) {
            return Error::Backend(msg);
        }
        match e {
            object_store::Error::NotFound { .. } => Error::Missing {
                what: "object",
                id: name.to_string(),
            },
            e => Error::Backend(format!("{}: {name}: {e}", self.location)),
        }
    }

    /// A failed delete: a refusal (403) is [`Error::DeleteDenied`], which
    /// a no-delete device and a prune under Object Lock go on from.
    fn delete_err(&self, name: &str, e: object_store::Error) -> Error {
        match e {
            object_store::Error::PermissionDenied { source, .. } => Error::DeleteDenied {
                location: self.location.clone(),
                name: name.to_string(),
                answer: provider_answer(&*source),
            },
            e => self.err(name, e),
        }
    }

    async fn put_multipart(
        &self,
        path: &StorePath,
        data: Bytes,
        part: usize,
    ) -> object_store::Result<()> {
        let upload = self.store.put_multipart(path).await?;
        // Equal parts, the last one shorter: some providers (R2) reject
        // uploads whose parts differ in size.
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, part);
        writer.put(data);
        writer.finish().await.map(|_| ())
    }
}

impl Backend for StoreBackend {
    fn location(&self) -> &str {
        &self.location
    }

    fn read(&self, name: &str, max: u64) -> Result<Bytes> {
        let path = self.path(name);
        let too_large = |size: u64| {
            Error::corrupt(
                name,
                format!("{size} bytes, over the {max}-byte limit for its kind"),
            )
        };
        let bytes = self
            .runtime
            .block_on(async {
                let got = self.store.get(&path).await?;
                if got.meta.size > max {
                    return Ok(Err(got.meta.size));
                }
                got.bytes().await.map(Ok)
            })
            .map_err(|e| self.err(name, e))?
            .map_err(too_large)?;
        // A server may send more than it announced.
        if bytes.len() as u64 > max {
            return Err(too_large(bytes.len() as u64));
        }
        Ok(bytes)
    }

    fn read_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(name);
        self.runtime
            .block_on(self.store.get_range(&path, range))
            .map_err(|e| self.err(name, e))
    }

    fn write(&self, name: &str, data: Bytes) -> Result<()> {
        self.check_object_lock()?;
        let path = self.path(name);
        if let Some((r, extra)) = self.retained_for(name) {
            // One PUT, whatever the size (S3 takes 5 GiB, past any pack):
            // the retention headers and Content-MD5 go with it.
            let until = Self::retain_until(r);
            self.runtime
                .block_on(extra.put(&path, data, Some((r, until)), false))?;
            return Ok(());
        }
        if let Some(extra) = self.md5_writer() {
            self.runtime.block_on(extra.put(&path, data, None, false))?;
            return Ok(());
        }
        let again = data.clone();
        let result = match self.multipart {
            Some(part) if data.len() > part => {
                self.runtime.block_on(self.put_multipart(&path, data, part))
            }
            _ => self
                .runtime
                .block_on(self.store.put(&path, PutPayload::from(data)))
                .map(|_| ()),
        };
        if self.wants_md5(result.as_ref().err()) {
            return self.write(name, again);
        }
        result.map_err(|e| self.err(name, e))
    }

    fn write_parts(&self, name: &str, parts: Vec<Bytes>) -> Result<()> {
        self.check_object_lock()?;
        let size: usize = parts.iter().map(Bytes::len).sum();
        if self.multipart.is_some_and(|part| size > part)
            || self.retained_for(name).is_some()
            || self.md5_writer().is_some()
        {
            return self.write(name, Bytes::from(parts.concat()));
        }
        let path = self.path(name);
        let again = parts.clone();
        let result = self
            .runtime
            .block_on(self.store.put(&path, PutPayload::from_iter(parts)))
            .map(|_| ());
        if self.wants_md5(result.as_ref().err()) {
            return self.write(name, Bytes::from(again.concat()));
        }
        result.map_err(|e| self.err(name, e))
    }

    fn create(&self, name: &str, data: Bytes) -> Result<bool> {
        // Some S3 servers (Garage among them) ignore If-None-Match and
        // overwrite; looking first keeps them from replacing an object, short
        // of two writers racing within one round trip.
        self.check_object_lock()?;
        if self.exists(name)? {
            return Ok(false);
        }
        let path = self.path(name);
        let locked = self
            .retained_for(name)
            .map(|(r, extra)| (Some((r, Self::retain_until(r))), extra));
        if let Some((lock, extra)) = locked.or_else(|| self.md5_writer().map(|e| (None, e))) {
            // B2 answers the condition with 501, as on plain writes: then
            // the look above is all it allows.
            let conditional = !self.create_unsupported.load(Ordering::Relaxed);
            let mut put =
                self.runtime
                    .block_on(extra.put(&path, data.clone(), lock, conditional))?;
            if put == versions::LockedPut::ConditionRefused {
                self.create_unsupported.store(true, Ordering::Relaxed);
                if self.exists(name)? {
                    return Ok(false);
                }
                put = self.runtime.block_on(extra.put(&path, data, lock, false))?;
            }
            return Ok(put == versions::LockedPut::Written);
        }
        if self.create_unsupported.load(Ordering::Relaxed) {
            self.write(name, data)?;
            return Ok(true);
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        // Without retries where there is a store for that (S3): a 501 is
        // retried for seconds otherwise, and the look before the plain
        // write below would be that much older.
        let quick = self.bulk_store.as_ref().unwrap_or(&self.store);
        let put = |store: &Arc<dyn ObjectStore>| {
            self.runtime.block_on(store.put_opts(
                &path,
                PutPayload::from(data.clone()),
                opts.clone(),
            ))
        };
        let first = put(quick);
        if self.wants_md5(first.as_ref().err()) {
            return self.create(name, data);
        }
        let result = match first {
            // A transient failure: again, with the store's retries.
            Err(e)
                if !matches!(e, object_store::Error::AlreadyExists { .. })
                    && !refuses_conditional_writes(&e) =>
            {
                put(&self.store)
            }
            other => other,
        };
        match result {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            // B2 answers If-None-Match with 501: looking again right before
            // the write is all the provider allows, and the caller says so.
            Err(e) if refuses_conditional_writes(&e) => {
                self.create_unsupported.store(true, Ordering::Relaxed);
                if self.exists(name)? {
                    return Ok(false);
                }
                self.write(name, data)?;
                Ok(true)
            }
            Err(e) => Err(self.err(name, e)),
        }
    }

    fn local_dir(&self) -> Option<&std::path::Path> {
        self.local.as_deref()
    }

    fn nearby(&self) -> nearby::Nearby {
        if let Some(dir) = &self.local {
            return nearby::local(dir);
        }
        let Some(bucket) = &self.bucket else {
            return nearby::Nearby::new(&self.location, Vec::new());
        };
        let root = percent_encoding::percent_decode_str(self.root.as_ref())
            .decode_utf8_lossy()
            .to_string();
        let at = |p: &str| match p {
            "" => format!("s3://{bucket}"),
            p => format!("s3://{bucket}/{p}"),
        };
        let search = self.bucket_repositories();
        let found = self
            .runtime
            .block_on(async { tokio::time::timeout(nearby::PATIENCE, search).await })
            .unwrap_or_default();
        let found = found.iter().map(|p| at(p)).collect();
        nearby::Nearby::new(&at(&root), found)
    }

    fn create_is_atomic(&self) -> bool {
        !self.create_unsupported.load(Ordering::Relaxed)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let path = self.path(prefix);
        let root_len = if self.root.as_ref().is_empty() {
            0
        } else {
            self.root.as_ref().len() + 1
        };
        let mut metas = self.runtime.block_on(self.bounded_list(&path, prefix))?;
        if self.paged && metas.len() >= MIN_PAGE {
            self.continue_listing(&path, prefix, &mut metas)?;
        }
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let full = m.location.as_ref();
                full.get(root_len..).map(|name| ObjectInfo {
                    name: name.to_string(),
                    size: m.size,
                    modified_ns: m.last_modified.timestamp_nanos_opt().unwrap_or(0),
                })
            })
            .collect())
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        match self.runtime.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.delete_err(name, e)),
        }
    }

    fn connections(&self) -> usize {
        self.connections
    }

    /// S3's multi-object delete (1,000 a request) where the provider has
    /// it; what it did not confirm (a provider without it: 501, 405,
    /// NotImplemented, MissingContentMD5; a per-key NoSuchKey; an answer
    /// that cannot be read) is deleted one by one. A pass that deleted
    /// nothing while the single deletes worked means the provider lacks
    /// it: the rest of the run deletes one by one.
    fn delete_many(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        if !self.bulk.load(Ordering::Relaxed) {
            return self.delete_each(names);
        }
        let mut done = self.delete_bulk(names);
        // object_store counts every key as deleted that the answer does not
        // name as an error: an empty answer, or one about fewer keys than
        // were sent, would pass. A few of the keys are looked for; if one
        // is still there, nothing of the pass is believed.
        let confirmed: Vec<&String> = names.iter().filter(|n| done.contains(*n)).collect();
        let sample = [0, confirmed.len() / 2, confirmed.len().saturating_sub(1)];
        let mut still_there = false;
        for &i in sample.iter().filter(|&&i| i < confirmed.len()) {
            still_there |= self.exists(confirmed[i])?;
        }
        if still_there {
            done.clear();
        }
        let rest: Vec<String> = names
            .iter()
            .filter(|n| !done.contains(*n))
            .cloned()
            .collect();
        if rest.is_empty() {
            return Ok(());
        }
        self.delete_each(&rest)?;
        if done.is_empty() {
            self.bulk.store(false, Ordering::Relaxed);
        }
        Ok(())
    }

    fn head(&self, name: &str) -> Result<Option<u64>> {
        let path = self.path(name);
        match self.runtime.block_on(self.store.head(&path)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(name, e)),
        }
    }

    /// Where no Object Lock can be had (a folder, a copy of a bucket's
    /// repository on disk), reading still works and the first write is
    /// refused ([`StoreBackend::check_object_lock`]): a copy made to
    /// restore from must open.
    fn enable_retention(&self, retention: Retention) -> Result<()> {
        check_retention(&retention)?;
        *self.retention.write().unwrap() = Some(retention);
        Ok(())
    }

    fn retention(&self) -> Option<Retention> {
        *self.retention.read().unwrap()
    }

    fn extend_retention(&self, names: &[String]) -> Result<u64> {
        let (Some(r), Some(extra)) = (self.retention(), &self.extra) else {
            return Ok(0);
        };
        let half = i64::from(r.days) * 86_400 * 1_000_000_000 / 2;
        let asks = names.iter().map(|name| async move {
            let path = self.path(name);
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
            match extra.retained_until(&path).await? {
                Some(until) if until.saturating_sub(now) >= half => Ok(0u64),
                // Gone (a prune deleted it meanwhile): nothing to keep.
                None if matches!(
                    self.store.head(&path).await,
                    Err(object_store::Error::NotFound { .. })
                ) =>
                {
                    Ok(0)
                }
                _ => {
                    extra
                        .put_retention(&path, r.mode, Self::retain_until(r))
                        .await?;
                    Ok(1)
                }
            }
        });
        let counts: Vec<Result<u64>> = self.runtime.block_on(
            futures::stream::iter(asks)
                .buffer_unordered(self.connections)
                .collect(),
        );
        counts.into_iter().sum()
    }

    fn list_versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>> {
        let Some(extra) = &self.extra else {
            return Err(no_versions(&self.location));
        };
        let path = self.path(prefix);
        let mut key = path.as_ref().to_string();
        if prefix.ends_with('/') || prefix.is_empty() {
            key.push('/');
        }
        if key == "/" {
            key.clear();
        }
        let listed = self
            .runtime
            .block_on(extra.list_versions(&key, self.max_listed))?;
        Ok(listed
            .into_iter()
            .filter_map(|mut v| {
                v.key = self.relative(&v.key)?.to_string();
                Some(v)
            })
            .collect())
    }

    fn read_version(&self, name: &str, version: &str, max: u64) -> Result<Bytes> {
        let path = self.path(name);
        let opts = object_store::GetOptions {
            version: Some(version.to_string()),
            ..Default::default()
        };
        let bytes = self
            .runtime
            .block_on(async {
                let got = self.store.get_opts(&path, opts).await?;
                if got.meta.size > max {
                    return Ok(Err(got.meta.size));
                }
                got.bytes().await.map(Ok)
            })
            .map_err(|e| self.err(name, e))?
            .map_err(|size| {
                Error::corrupt(
                    name,
                    format!("{size} bytes, over the {max}-byte limit for its kind"),
                )
            })?;
        if bytes.len() as u64 > max {
            return Err(Error::corrupt(name, "longer than its kind allows"));
        }
        Ok(bytes)
    }

    fn read_version_range(&self, name: &str, version: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(name);
        let opts = object_store::GetOptions {
            version: Some(version.to_string()),
            range: Some(range.clone().into()),
            ..Default::default()
        };
        let bytes = self
            .runtime
            .block_on(async { self.store.get_opts(&path, opts).await?.bytes().await })
            .map_err(|e| self.err(name, e))?;
        if bytes.len() as u64 != range.end - range.start {
            return Err(Error::corrupt(name, "a range came back of another length"));
        }
        Ok(bytes)
    }

    fn purge(&self, names: &[String]) -> Result<Vec<String>> {
        let Some(extra) = self.extra.as_ref().filter(|_| self.retention().is_some()) else {
            return purge_plain(self, names);
        };
        let asks = names.iter().map(|name| async move {
            let done = self.purge_versions(extra, name).await?;
            Ok::<_, Error>((!done).then(|| name.clone()))
        });
        let results: Vec<Result<Option<String>>> = self.runtime.block_on(
            futures::stream::iter(asks)
                .buffer_unordered(self.connections)
                .collect(),
        );
        let mut refused = Vec::new();
        for r in results {
            refused.extend(r?);
        }
        refused.sort();
        Ok(refused)
    }
}

/// What a provider said, for a message: its error code and message when
/// the answer is S3's XML, else the error's last cause; bounded, since the
/// answer comes from storage.
pub(crate) fn provider_answer(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    let said = s3_error_words(&text).unwrap_or_else(|| shown(&text));
    if said.is_empty() {
        "no reason given".into()
    } else {
        said
    }
}

/// Whether a store's answer to a PUT asks for a Content-MD5, as a bucket
/// with a default retention does. moto names the fault with a code of its
/// own; AWS answers `InvalidRequest: Content-MD5 OR x-amz-checksum- HTTP
/// header is required for Put Object requests with Object Lock
/// parameters` ("Put Part" for multipart parts).
fn asks_for_md5(answer: &str) -> bool {
    answer.contains("MissingUploadObjectWithObjectLockHeaders")
        || (answer.starts_with("InvalidRequest") && answer.contains("Content-MD5"))
}

/// `Code: Message` of an S3 error body, if it has a code; shown bounded.
pub(crate) fn s3_error_words(text: &str) -> Option<String> {
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&format!("</{t}>"))?;
        Some(text[start..start + len].to_string())
    };
    let code = tag("Code")?;
    Some(shown(&match tag("Message") {
        Some(m) => format!("{code}: {m}"),
        None => code,
    }))
}

/// Text from storage as a message may show it: no control characters,
/// at most 300 of the others.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// Whether a store's answer to a conditional write says it has none: 501,
/// NotImplemented, or InvalidArgument about the header (B2, some gateways).
fn refuses_conditional_writes(e: &object_store::Error) -> bool {
    if matches!(e, object_store::Error::NotImplemented { .. }) {
        return true;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&s.to_string());
        source = s.source();
    }
    [
        "501 Not Implemented",
        "<Code>NotImplemented</Code>",
        "<Code>InvalidArgument</Code>",
    ]
    .iter()
    .any(|w| text.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_asking_for_a_content_md5_is_understood_as_aws_and_moto_ask() {
        let aws = "<Error><Code>InvalidRequest</Code><Message>Content-MD5 OR x-amz-checksum- \
                   HTTP header is required for Put Object requests with Object Lock \
                   parameters</Message></Error>";
        let moto = "<Error><Code>MissingUploadObjectWithObjectLockHeaders</Code><Message>\
                    Content-MD5 HTTP header is required</Message></Error>";
        for body in [aws, moto] {
            assert!(asks_for_md5(&s3_error_words(body).unwrap()), "{body}");
        }
        let other = "<Error><Code>InvalidRequest</Code><Message>Bucket is missing Object \
                     Lock Configuration</Message></Error>";
        assert!(!asks_for_md5(&s3_error_words(other).unwrap()));
        assert!(!asks_for_md5("AccessDenied: Content-MD5"));
    }

    /// `snap ui` drops repositories from request handlers; a runtime
    /// dropped there once panicked ("Cannot drop a runtime in a context
    /// where blocking is not allowed").
    #[test]
    fn a_backend_dropped_inside_an_async_runtime_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let backend = StoreBackend::local(dir.path(), true).unwrap();
        backend.write("probe", Bytes::from_static(b"x")).unwrap();
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        outer.block_on(async move { drop(backend) });
    }

    /// A listing that goes on past the bound stops with an error naming
    /// the storage, rather than following a server that never ends.
    #[test]
    fn a_listing_past_its_bound_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut backend = StoreBackend::local(dir.path(), true).unwrap();
        for i in 0..5 {
            backend
                .write(&format!("data/{i}"), Bytes::from_static(b"x"))
                .unwrap();
        }
        assert_eq!(backend.list("data/").unwrap().len(), 5);
        backend.max_listed = 4;
        let e = backend.list("data/").unwrap_err().to_string();
        assert!(
            e.contains("past 4 objects") && e.contains(&dir.path().display().to_string()),
            "{e}"
        );
    }
}
