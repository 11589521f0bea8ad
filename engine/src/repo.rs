//! An open repository: its storage, its unlocked keys, its config,
//! snapshots and locks. Loading the index gives an [`Indexed`] repository,
//! the one that reads blobs. Every object read through either is verified
//! against its name or its id first.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::backend::Backend;
use crate::blob::BlobCodec;
use crate::cache::Cache;
use crate::chunker::{Chunker, ChunkerParams};
use crate::codec::{self, Kind, Mode, Sealer};
use crate::crypto::{self, IdKey, KdfParams, MasterKey};
use crate::error::{Error, Result};
use crate::fetch::Fetcher;
use crate::forgotten::HiddenSnapshot;
use crate::id::Id;
use crate::index::{Index, IndexBuilder, IndexFile};
use crate::indexed::Indexed;
use crate::keys::{Access, Keys, WriteOnlySecrets};
use crate::known::{DeviceState, Seen};
use crate::object::Object;
use crate::packer::{Packer, PackerOptions};
use crate::retention::Retention;
use crate::snapshot::{Snapshot, SnapshotFilter, snapshot_path};

/// Version 3 seals file contents, trees, pack headers and snapshots to a
/// content key pair, so that write-only keys exist ([`crate::keys`]), and
/// may ask for Object Lock; version 2 chunks with a gear table derived
/// from the id key; version 1 (still read) with fastcdc's table XORed with
/// the chunker seed.
pub(crate) const CONFIG_VERSION: u32 = 3;

/// The cache folder of a write-only device's own snapshots.
const LOCAL_SNAPSHOTS: &str = "written-snapshots";
/// The folder of the content public key a write-only device seals to.
const RECORD_PIN: &str = "sealed-to";

/// How often a listing of `index/` is read again because a file in it
/// went before it was read (see [`Repository::read_index_files`]): each
/// time means a prune finished in between, and prunes exclude each other.
const INDEX_RELISTS: usize = 5;

/// The most key files one unlock tries. A repository has one per person
/// or device; more are tried only when named (`--key`).
const MAX_KEYS_TRIED: usize = 16;

/// Which key files an unlock tries, and in which order.
struct KeyChoice<'a> {
    /// Already tried with this password (the remembered key file).
    tried: Option<Id>,
    /// The key that last unlocked the repository on this device: first.
    remembered: Option<Id>,
    /// Only the key file whose id starts with this (`--key`).
    only: Option<String>,
    /// The most Argon2 work (KiB × passes) all tries may cost together.
    budget: u64,
    /// The config the key must open.
    config: Option<&'a [u8]>,
}

/// A repository's settings, fixed at `init` (format-spec.md section 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub version: u32,
    pub id: Id,
    pub id_key: [u8; 32],
    pub chunker: ChunkerParams,
    pub compression_level: i32,
    /// Version 3, encrypted: the public half of the content key pair,
    /// which blobs, pack headers and snapshots are sealed to.
    pub content_public: Option<[u8; 32]>,
    /// Version 3: the S3 Object Lock retention every object is written with.
    pub object_lock: Option<Retention>,
    /// Version 3, encrypted: a keyed hash of the other fields under a key
    /// only full keys derive ([`Keys::config_tag`]). The config is sealed
    /// under the shared key, which write-only keys hold too: without this,
    /// a stolen write-only key could rewrite the config full devices read
    /// (its retention, its id key).
    pub tag: Option<[u8; 32]>,
}

/// The body of a version 1 or 2 config.
#[derive(Serialize, Deserialize)]
struct ConfigV2 {
    version: u32,
    id: Id,
    id_key: [u8; 32],
    chunker: ChunkerParams,
    compression_level: i32,
}

/// The body of a version 3 config: version 2's fields, then the new ones.
#[derive(Serialize, Deserialize)]
struct ConfigV3 {
    version: u32,
    id: Id,
    id_key: [u8; 32],
    chunker: ChunkerParams,
    compression_level: i32,
    content_public: Option<[u8; 32]>,
    object_lock: Option<Retention>,
    tag: Option<[u8; 32]>,
}

/// The wire forms copy the id key and chunker seed: zeroed when dropped,
/// as [`Config`]'s are.
impl Drop for ConfigV2 {
    fn drop(&mut self) {
        self.id_key.zeroize();
        self.chunker.seed.zeroize();
    }
}

impl Drop for ConfigV3 {
    fn drop(&mut self) {
        self.id_key.zeroize();
        self.chunker.seed.zeroize();
    }
}

impl From<&ConfigV2> for ConfigV3 {
    /// A version 1 or 2 config has none of version 3's fields.
    fn from(w: &ConfigV2) -> ConfigV3 {
        ConfigV3 {
            version: w.version,
            id: w.id,
            id_key: w.id_key,
            chunker: w.chunker,
            compression_level: w.compression_level,
            content_public: None,
            object_lock: None,
            tag: None,
        }
    }
}

impl From<&ConfigV3> for ConfigV2 {
    fn from(w: &ConfigV3) -> ConfigV2 {
        ConfigV2 {
            version: w.version,
            id: w.id,
            id_key: w.id_key,
            chunker: w.chunker,
            compression_level: w.compression_level,
        }
    }
}

impl Config {
    /// The config's body: deterministic, so a write-only key can hold the
    /// hash of the one it was made for.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let wire = ConfigV3 {
            version: self.version,
            id: self.id,
            id_key: self.id_key,
            chunker: self.chunker,
            compression_level: self.compression_level,
            content_public: self.content_public,
            object_lock: self.object_lock,
            tag: self.tag,
        };
        Zeroizing::new(if self.version >= 3 {
            codec::encode(&wire)
        } else {
            codec::encode(&ConfigV2::from(&wire))
        })
    }

    /// A config's body, by its version (the first four bytes).
    pub fn decode(body: &[u8]) -> Result<Config> {
        const LIMIT: usize = codec::MAX_SMALL_OBJECT;
        let version = body
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("four bytes")))
            .ok_or_else(|| Error::corrupt("config", "shorter than its version"))?;
        let w: ConfigV3 = if version >= 3 {
            codec::decode::<_, LIMIT>("config", body)?
        } else {
            ConfigV3::from(&codec::decode::<ConfigV2, LIMIT>("config", body)?)
        };
        let config = Config {
            version: w.version,
            id: w.id,
            id_key: w.id_key,
            chunker: w.chunker,
            compression_level: w.compression_level,
            content_public: w.content_public,
            object_lock: w.object_lock,
            tag: w.tag,
        };
        if !(1..=CONFIG_VERSION).contains(&config.version) {
            return Err(Error::corrupt(
                "config",
                format!("unsupported config version {}", config.version),
            ));
        }
        config.chunker.validate()?;
        if !(-7..=22).contains(&config.compression_level) {
            return Err(Error::corrupt("config", "compression level out of range"));
        }
        Ok(config)
    }

    /// The body [`Config::tag`] is computed over: the config without it.
    fn untagged(&self) -> Zeroizing<Vec<u8>> {
        let mut c = self.clone();
        c.tag = None;
        c.encode()
    }

    /// This config with the content public key and tag of a version 3
    /// repository whose full key is `keys`.
    pub fn sealed_by(mut self, keys: &Keys) -> Config {
        self.content_public = keys.public();
        self.tag = None;
        self.tag = keys.config_tag(&self.untagged());
        self
    }
}

/// The id key and chunker seed are secrets: zeroed when a config is
/// dropped, so they do not linger in freed memory.
impl Drop for Config {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.id_key);
        zeroize::Zeroize::zeroize(&mut self.chunker.seed);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    pub created_ns: i64,
    pub host: String,
    pub username: String,
    pub kdf: KdfParams,
    pub nonce: [u8; 24],
    pub wrapped: Vec<u8>,
}

const KEY_AAD: &[u8] = b"snap-key-v1";
/// A write-only key's wrapping is bound to its kind, so a key file's
/// length (which `key list` reads as its kind) cannot be changed to make
/// it wrap something else.
const WRITE_ONLY_KEY_AAD: &[u8] = b"snap-key-v3-write-only";
/// The wrapped bytes of each kind of key: the plaintext and a 16-byte tag.
const FULL_WRAPPED_LEN: usize = 32 + crypto::TAG_LEN;
const WRITE_ONLY_WRAPPED_LEN: usize = WriteOnlySecrets::LEN + crypto::TAG_LEN;

/// What a key file's password unwraps.
pub enum Unwrapped {
    /// The master key: full access.
    Full(MasterKey),
    /// A write-only key's secrets ([`crate::keys`]).
    WriteOnly(WriteOnlySecrets),
}

impl KeyFile {
    /// Wraps `master` under a key derived from `password`.
    pub fn wrap(master: &MasterKey, password: &str, kdf: KdfParams) -> Result<KeyFile> {
        Self::wrap_with_nonce(master, password, kdf, &crypto::random_array())
    }

    /// [`KeyFile::wrap`] with a given nonce, for the test vectors only.
    #[doc(hidden)]
    pub fn wrap_with_nonce(
        master: &MasterKey,
        password: &str,
        kdf: KdfParams,
        nonce: &[u8; crypto::NONCE_LEN],
    ) -> Result<KeyFile> {
        Self::wrap_bytes(master.as_bytes(), KEY_AAD, password, kdf, nonce)
    }

    /// A write-only key wrapping `secrets`; its `host` is the maker's
    /// until the caller names the device ([`Repository::add_write_only_key`]).
    pub fn wrap_write_only(
        secrets: &WriteOnlySecrets,
        password: &str,
        kdf: KdfParams,
        nonce: &[u8; crypto::NONCE_LEN],
    ) -> Result<KeyFile> {
        Self::wrap_bytes(&secrets.encode(), WRITE_ONLY_KEY_AAD, password, kdf, nonce)
    }

    fn wrap_bytes(
        secret: &[u8],
        aad: &[u8],
        password: &str,
        kdf: KdfParams,
        nonce: &[u8; crypto::NONCE_LEN],
    ) -> Result<KeyFile> {
        let kek = kdf.derive(password.as_bytes())?;
        let nonce = *nonce;
        let sealed = Zeroizing::new(crypto::seal_with(&kek, &nonce, aad, secret));
        Ok(KeyFile {
            created_ns: now_ns(),
            host: crate::sys::hostname(),
            username: crate::sys::username(),
            kdf,
            nonce,
            // The stored form repeats no nonce: it is the field above.
            wrapped: sealed[crypto::NONCE_LEN..].to_vec(),
        })
    }

    /// What the key allows, told by the length of what it wraps; `None`
    /// for a length no snap writes.
    pub fn access(&self) -> Option<Access> {
        match self.wrapped.len() {
            FULL_WRAPPED_LEN => Some(Access::Full),
            WRITE_ONLY_WRAPPED_LEN => Some(Access::WriteOnly),
            _ => None,
        }
    }

    /// What the key wraps, or `None` if `password` is not this key's.
    pub fn unwrap_key(&self, password: &str) -> Result<Option<Unwrapped>> {
        let Some(access) = self.access() else {
            return Ok(None);
        };
        let kek = self.kdf.derive(password.as_bytes())?;
        let mut sealed = self.nonce.to_vec();
        sealed.extend_from_slice(&self.wrapped);
        Ok(match access {
            Access::Full => crypto::open_with(&kek, KEY_AAD, &sealed).and_then(|k| {
                let bytes: &[u8; 32] = k.as_slice().try_into().ok()?;
                Some(Unwrapped::Full(MasterKey::from_slice(bytes)))
            }),
            Access::WriteOnly => crypto::open_with(&kek, WRITE_ONLY_KEY_AAD, &sealed)
                .and_then(|k| WriteOnlySecrets::decode(&k))
                .map(Unwrapped::WriteOnly),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::seal(Kind::Key, &None, self)
    }

    pub fn decode(bytes: &[u8]) -> Result<KeyFile> {
        codec::open::<KeyFile, { codec::MAX_KEY_OBJECT }>(Kind::Key, &None, bytes)
    }
}

pub(crate) fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Choices made once, at `init`.
#[derive(Clone)]
pub struct InitOptions {
    /// `None` makes an unencrypted repository. Zeroed when dropped.
    pub password: Option<Zeroizing<String>>,
    pub kdf: KdfParams,
    pub chunker: ChunkerParams,
    pub compression_level: i32,
    /// S3 Object Lock retention for every object (format-spec.md section 4).
    pub object_lock: Option<Retention>,
}

impl std::fmt::Debug for InitOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitOptions")
            .field("encrypted", &self.password.is_some())
            .field("kdf", &self.kdf)
            .field("chunker", &self.chunker)
            .field("compression_level", &self.compression_level)
            .field("object_lock", &self.object_lock)
            .finish()
    }
}

impl InitOptions {
    pub fn new(password: Option<String>) -> InitOptions {
        InitOptions {
            password: password.map(Zeroizing::new),
            kdf: KdfParams::new_default(),
            chunker: ChunkerParams::generate(),
            compression_level: 3,
            object_lock: None,
        }
    }
}

pub struct Repository {
    backend: Arc<dyn Backend>,
    config: Config,
    codec: BlobCodec,
    chunker: Arc<Chunker>,
    key_id: Option<Id>,
    cache: Option<Cache>,
    /// What this device remembers of the repository, when it keeps that.
    state: Option<DeviceState>,
    /// A write-only device's record of what it wrote: its snapshots and
    /// their trees, sealed under its local record key, below the device's
    /// state folder (format-spec.md section 5). Its next backup compares
    /// files with them, as no snapshot or tree in storage opens for it.
    record: Option<Cache>,
    transfers: std::sync::OnceLock<rayon::ThreadPool>,
}

/// How a device opens a repository.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// A local cache of index files, snapshots and trees below this folder.
    pub cache: Option<std::path::PathBuf>,
    /// Where this device remembers each repository's id and mode and the
    /// snapshots it has seen ([`crate::known`]). Without it, a device that
    /// opened an encrypted repository before cannot tell when the bucket
    /// serves a plain config in its place.
    pub state: Option<std::path::PathBuf>,
    /// The user asked for an unencrypted repository (`--insecure-no-encryption`).
    pub allow_unencrypted: bool,
    /// A password source is configured: the user believes the repository
    /// is encrypted, so a plain config is refused.
    pub password_configured: bool,
    /// Try only the key file whose id starts with this (`--key`): for a
    /// repository where storage planted key files in front of the owner's.
    pub key: Option<String>,
}

/// Why a plain config is not accepted (see [`Repository::open_with`]).
fn refuse_plain(
    backend: &dyn Backend,
    state: Option<&DeviceState>,
    opts: &OpenOptions,
) -> Result<()> {
    let location = backend.location();
    let removed = |why: String| {
        Err(Error::EncryptionRemoved(format!(
            "the repository at {location} says it is not encrypted, but {why}: its encryption \
             was removed, most likely by whoever controls the storage. Nothing was read or \
             written. Restore the original config from a copy, or ask whoever manages the storage"
        )))
    };
    if let Some(state) = state
        && let Some(known) = state.load()?
        && known.encrypted
    {
        return removed(format!(
            "this device opened it encrypted before (repository {}; if it was deliberately \
             made again without encryption, delete {} to accept that)",
            known.repository.short(),
            state.path().display()
        ));
    }
    if opts.password_configured {
        // Also what a user sees who made it with --no-encryption while a
        // password variable stayed set: say both readings.
        return Err(Error::EncryptionRemoved(format!(
            "the repository at {location} says it is not encrypted, but a password is \
             configured for it (SNAP_PASSWORD, a password file or command, or the profile's). If \
             you made it with `init --no-encryption`, unset the password and pass \
             --insecure-no-encryption. Otherwise its encryption was removed, most likely by \
             whoever controls the storage. Nothing was read or written"
        )));
    }
    let keys = Object::Key.list(backend)?;
    if !keys.is_empty() {
        return removed(format!("it has {} key file(s)", keys.len()));
    }
    if !opts.allow_unencrypted {
        return Err(Error::Unencrypted(location.to_string()));
    }
    Ok(())
}

/// The objects without which a repository does not open: its config and
/// key files, whose Object Lock retention backups and prunes extend as
/// they extend the packs'.
pub(crate) fn lifelines(repo: &Repository) -> Result<Vec<String>> {
    let mut names = vec!["config".to_string()];
    names.extend(
        Object::Key
            .list(&**repo.backend())?
            .iter()
            .map(|(id, _)| Object::Key.name(id)),
    );
    Ok(names)
}

/// Opens a config with what a key unwrapped (or, unencrypted, with
/// nothing), and the keys the session then seals with.
///
/// A version 3 config is sealed under the shared key, which write-only
/// keys hold as well, so its own seal proves little: a full key also
/// checks its tag and that its public key is the master key's, and a
/// write-only key that it is the very config the key was made for.
fn open_config(raw: &[u8], unwrapped: Option<&Unwrapped>) -> Result<(Config, Sealer)> {
    const LIMIT: usize = codec::MAX_SMALL_OBJECT;
    if raw.len() > LIMIT {
        return Err(Error::corrupt("config", "too large"));
    }
    let forged = |why: &str| Err(Error::ConfigForged(why.to_string()));
    match unwrapped {
        None => {
            let config = Config::decode(&codec::open_bytes(Kind::Config, &None, raw, LIMIT)?)?;
            Ok((config, None))
        }
        Some(Unwrapped::Full(master)) => {
            let legacy: Sealer = Some(Keys::from(master.clone()));
            if let Ok(body) = codec::open_bytes(Kind::Config, &legacy, raw, LIMIT) {
                let config = Config::decode(&body)?;
                if config.version >= 3 {
                    return forged("a version 3 config sealed under the master key");
                }
                return Ok((config, legacy));
            }
            let keys = Keys::full(master);
            let sealer = Some(keys.clone());
            let config = Config::decode(&codec::open_bytes(Kind::Config, &sealer, raw, LIMIT)?)?;
            if config.version < 3 || config.content_public != keys.public() {
                return forged("its public key is not this repository's");
            }
            if config.tag.is_none() || config.tag != keys.config_tag(&config.untagged()) {
                return forged(
                    "its tag does not match: it was not written by a full key (a write-only \
                     key's holder or the storage may have rewritten it)",
                );
            }
            Ok((config, sealer))
        }
        Some(Unwrapped::WriteOnly(secrets)) => {
            let sealer = Some(Keys::write_only(secrets)?);
            let body = codec::open_bytes(Kind::Config, &sealer, raw, LIMIT)?;
            if *blake3::hash(&body).as_bytes() != secrets.config {
                return forged("it is not the config this write-only key was made for");
            }
            let config = Config::decode(&body)?;
            if config.version < 3 || config.content_public != Some(secrets.public) {
                return forged("its public key is not the one this write-only key seals to");
            }
            Ok((config, sealer))
        }
    }
}

impl Repository {
    /// Creates a repository. Keys are written before the config, so a
    /// config always has a key that opens it.
    pub fn init(backend: Arc<dyn Backend>, opts: InitOptions) -> Result<Repository> {
        opts.chunker.validate()?;
        // Object Lock: every write from the first key file on is retained,
        // and the bucket is asked for Object Lock before that write.
        if let Some(r) = opts.object_lock {
            backend.enable_retention(r)?;
        }
        // A read rather than `exists`: S3 answers a HEAD without a body, so
        // a wrong region or key was only "400 Bad Request"; a GET's error
        // names the fault (and the right region).
        match backend.read("config", codec::MAX_SMALL_OBJECT as u64) {
            Ok(_) => return Err(Error::RepositoryExists(backend.location().to_string())),
            Err(Error::Missing { .. }) => {}
            Err(e) => return Err(e),
        }
        let mut config = Config {
            version: CONFIG_VERSION,
            id: Id::random(),
            id_key: crypto::random_array(),
            chunker: opts.chunker,
            compression_level: opts.compression_level,
            content_public: None,
            object_lock: opts.object_lock,
            tag: None,
        };
        let mut key_id = None;
        let sealer: Sealer = match &opts.password {
            Some(pw) => {
                let master = MasterKey::generate();
                let key = KeyFile::wrap(&master, pw, opts.kdf)?.encode();
                key_id = Some(Object::Key.write(&*backend, key)?);
                let keys = Keys::full(&master);
                config = config.sealed_by(&keys);
                Some(keys)
            }
            None => None,
        };
        let bytes = codec::seal_bytes(Kind::Config, &sealer, &config.encode());
        if !backend.create("config", Bytes::from(bytes))? {
            // Another init won: its key stays, this one goes (it unlocks
            // nothing, and `key list` showed it as a second password).
            if let Some(id) = &key_id {
                let _ = Object::Key.delete(&*backend, id);
            }
            return Err(Error::RepositoryExists(backend.location().to_string()));
        }
        Ok(Repository::from_parts(backend, config, sealer, key_id))
    }

    fn from_parts(
        backend: Arc<dyn Backend>,
        config: Config,
        sealer: Sealer,
        key_id: Option<Id>,
    ) -> Repository {
        let codec = BlobCodec {
            sealer,
            id_key: IdKey::from_bytes(config.id_key),
            level: config.compression_level,
        };
        let chunker = Arc::new(match config.version {
            1 => Chunker::legacy(&config.chunker),
            _ => Chunker::keyed(&config.chunker, &config.id_key),
        });
        Repository {
            backend,
            config,
            codec,
            chunker,
            key_id,
            cache: None,
            state: None,
            record: None,
            transfers: std::sync::OnceLock::new(),
        }
    }

    /// Keeps index files, snapshots and trees below `base`, in a folder of
    /// this repository's own, so later commands read them locally.
    pub(crate) fn use_cache(&mut self, base: &std::path::Path) {
        self.cache = Some(Cache::new(base, &self.config.id));
    }

    /// An object, from the cache when it has it (the cache checks what it
    /// returns against the name as well).
    fn read_verified(&self, kind: Object, id: &Id) -> Result<Vec<u8>> {
        let folder = kind.folder();
        if let Some(bytes) = self.cache.as_ref().and_then(|c| c.get_object(folder, id)) {
            return Ok(bytes);
        }
        let bytes = kind.read(&*self.backend, id)?;
        if let Some(c) = &self.cache {
            c.put_object(folder, id, &bytes);
        }
        Ok(bytes.to_vec())
    }

    /// Every object of a kind, verified against its name, in name order.
    /// Not cached: trash and forget records are read by prune and backups'
    /// checks only.
    pub(crate) fn read_all(&self, kind: Object) -> Result<Vec<(Id, Bytes)>> {
        kind.list(&*self.backend)?
            .into_iter()
            .map(|(id, _)| Ok((id, kind.read(&*self.backend, &id)?)))
            .collect()
    }

    /// Ids of the objects of a kind, sorted.
    pub(crate) fn object_ids(&self, kind: Object) -> Result<Vec<Id>> {
        Ok(kind
            .list(&*self.backend)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Deletes objects of a kind.
    pub(crate) fn delete_objects(&self, kind: Object, ids: &[Id]) -> Result<()> {
        kind.delete_many(&*self.backend, ids)
    }

    /// A packer that writes this repository's packs, deduplicating against
    /// `known` (and the blobs it adds itself).
    pub(crate) fn packer_over<'a>(&self, known: &'a Index, options: PackerOptions) -> Packer<'a> {
        Packer::new(
            self.backend.clone(),
            self.codec.clone(),
            known,
            self.tree_cache().cloned(),
            options,
        )
    }

    /// [`Repository::object_ids`], letting the cache drop what is gone.
    fn list_cached(&self, kind: Object) -> Result<Vec<Id>> {
        let ids = self.object_ids(kind)?;
        if let Some(c) = &self.cache {
            c.retain(kind.folder(), &ids.iter().copied().collect());
        }
        Ok(ids)
    }

    /// Opens and unlocks an encrypted repository, with no cache and no
    /// device state; an unencrypted one is refused (see [`OpenOptions`]).
    pub fn open(
        backend: Arc<dyn Backend>,
        password: &dyn Fn() -> Result<String>,
    ) -> Result<Repository> {
        Self::open_with(backend, password, &OpenOptions::default())
    }

    /// Opens and unlocks a repository. `password` is asked only when the
    /// repository is encrypted, so an unencrypted one never prompts.
    ///
    /// The config's mode byte is not authenticated, so storage could copy
    /// the config of a plain repository over an encrypted one's, and the
    /// next backup would upload files in the clear. A plain config is
    /// therefore refused unless the user asked for an unencrypted
    /// repository, and even then when this device remembers the location
    /// as encrypted, when a password source is configured, or when the
    /// repository has key files.
    ///
    /// A device with a cache also remembers the config and the key file
    /// that last unlocked the repository at this location, and uses them
    /// again while that key file is still listed in the bucket: a key
    /// file's name is its hash, and a repository created anew at the
    /// location would have other keys, so the listing that unlocking needs
    /// anyway proves them current. A removed key (`snap key remove`, `snap
    /// key passwd`) stops working at once.
    pub fn open_with(
        backend: Arc<dyn Backend>,
        password: &dyn Fn() -> Result<String>,
        opts: &OpenOptions,
    ) -> Result<Repository> {
        // Asked at most once, whichever path ends up needing it.
        let asked: std::cell::RefCell<Option<Zeroizing<String>>> = Default::default();
        let password = || -> Result<Zeroizing<String>> {
            if let Some(p) = asked.borrow().as_ref() {
                return Ok(p.clone());
            }
            let p = Zeroizing::new(password()?);
            *asked.borrow_mut() = Some(p.clone());
            Ok(p)
        };
        let cache = opts.cache.as_deref();
        let state = opts
            .state
            .as_deref()
            .map(|base| DeviceState::new(base, backend.location()));
        let remembered = cache
            .and_then(|base| crate::cache::remembered(base, backend.location()))
            .filter(|(_, key)| {
                opts.key
                    .as_ref()
                    .is_none_or(|spec| Id::of_bytes(key).has_prefix(spec))
            });
        let mut tried = None;
        if let Some((raw, key)) = &remembered
            && codec::peek_mode(Kind::Config, raw).ok() == Some(Mode::Encrypted)
        {
            let key_id = Id::of_bytes(key);
            let listed = Object::Key.list(&*backend)?;
            if listed.iter().any(|(id, _)| *id == key_id)
                && let Ok(file) = KeyFile::decode(key)
            {
                tried = Some(key_id);
                if let Ok(Some(unwrapped)) = file.unwrap_key(&password()?)
                    && let Ok(repo) =
                        Self::from_config(&backend, raw, Some(&unwrapped), Some(key_id))
                {
                    return repo
                        .with_cache(cache)
                        .with_record(opts.state.as_deref())?
                        .with_state(state);
                }
            }
        }
        let raw = match backend.read("config", codec::MAX_SMALL_OBJECT as u64) {
            Ok(b) => b,
            Err(Error::Missing { .. }) => {
                return Err(Error::RepositoryNotFound(backend.location().to_string()));
            }
            Err(e) => return Err(e),
        };
        let (unwrapped, key) = match codec::peek_mode(Kind::Config, &raw)? {
            Mode::Plain => {
                refuse_plain(&*backend, state.as_ref(), opts)?;
                (None, None)
            }
            Mode::Encrypted => {
                let choice = KeyChoice {
                    tried,
                    remembered: match &state {
                        Some(s) => s.load().ok().flatten().and_then(|k| k.key),
                        None => None,
                    },
                    only: opts.key.clone(),
                    budget: crypto::UNLOCK_WORK_BUDGET,
                    config: Some(&raw),
                };
                let (unwrapped, id, bytes) = Self::unlock(&*backend, &password()?, &choice)?;
                (Some(unwrapped), Some((id, bytes)))
            }
        };
        let repo = Self::from_config(
            &backend,
            &raw,
            unwrapped.as_ref(),
            key.as_ref().map(|k| k.0),
        )?;
        if let (Some(base), Some((_, bytes))) = (cache, &key) {
            crate::cache::remember(base, backend.location(), &raw, bytes);
        }
        let repo = repo
            .with_cache(cache)
            .with_record(opts.state.as_deref())?
            .with_state(state)?;
        if let (Some(state), Some((id, _))) = (&repo.state, &key) {
            state.remember_key(*id)?;
        }
        Ok(repo)
    }

    /// Starts remembering this repository on this device (see
    /// [`OpenOptions::state`]); `init` calls it for the repository it made.
    pub fn use_state(&mut self, base: &std::path::Path) -> Result<()> {
        let state = DeviceState::new(base, self.backend.location());
        state.pin(self.config.id, self.is_encrypted())?;
        state.forget_other_repositories(self.config.id)?;
        self.state = Some(state);
        Ok(())
    }

    fn with_state(mut self, state: Option<DeviceState>) -> Result<Repository> {
        if let Some(s) = &state {
            s.pin(self.config.id, self.is_encrypted())?;
        }
        self.state = state;
        Ok(self)
    }

    /// Decodes and checks a config read from storage or remembered.
    fn from_config(
        backend: &Arc<dyn Backend>,
        raw: &[u8],
        unwrapped: Option<&Unwrapped>,
        key_id: Option<Id>,
    ) -> Result<Repository> {
        let (config, sealer) = open_config(raw, unwrapped)?;
        if let Some(r) = config.object_lock {
            backend.enable_retention(r)?;
        }
        Ok(Repository::from_parts(
            backend.clone(),
            config,
            sealer,
            key_id,
        ))
    }

    /// A write-only device keeps its record below its state folder.
    ///
    /// The record also pins the content public key the device seals to:
    /// a thief with the device's passphrase and delete rights could replace
    /// its key file with one naming the thief's own public key (and a
    /// config to match), and the device's next backups would be sealed to
    /// the thief. A key that names another public key than the record's is
    /// refused.
    fn with_record(mut self, state: Option<&std::path::Path>) -> Result<Repository> {
        if let Some(base) = state
            && self.access() == Access::WriteOnly
        {
            let record = Cache::new(&base.join("written"), &self.config.id);
            let public = self
                .config
                .content_public
                .expect("a write-only key opens version 3 configs only");
            match record.get_record(RECORD_PIN, &Id::default()) {
                Some(pinned) if pinned != public => {
                    return Err(Error::ConfigForged(
                        "this device's write-only key now seals to another public key than \
                         before: its key file and the config were replaced (by someone with \
                         its passphrase and the storage's delete rights). No backup was made; \
                         ask the owner of a full key to check the repository's keys"
                            .into(),
                    ));
                }
                Some(_) => {}
                None => record.put_record(RECORD_PIN, &Id::default(), &public),
            }
            self.record = Some(record);
        }
        Ok(self)
    }

    /// Keeps in the local record only the newest snapshot of each set of
    /// paths (what a next backup compares with) and the trees they use:
    /// a record that kept every tree would tell the thief of the device
    /// the names of files deleted long ago. Leaves the record alone when a
    /// tree it needs is missing from it.
    pub(crate) fn trim_record(&self, repo: &Indexed) -> Result<()> {
        let Some(record) = &self.record else {
            return Ok(());
        };
        let mut newest: std::collections::HashMap<Vec<Vec<u8>>, (Id, Snapshot)> =
            Default::default();
        for (id, s) in self.snapshots()? {
            // Oldest first: a later one replaces an earlier.
            newest.insert(s.paths.clone(), (id, s));
        }
        let mut trees = HashSet::new();
        let mut missing = false;
        for (_, s) in newest.values() {
            crate::walk::walk(
                repo,
                s.tree,
                Some(&mut trees),
                &mut |_, _| {},
                &mut |_, _| missing = true,
            )?;
        }
        if !missing {
            record.retain("trees", &trees);
            record.retain(
                LOCAL_SNAPSHOTS,
                &newest.values().map(|(id, _)| *id).collect(),
            );
        }
        Ok(())
    }

    fn with_cache(mut self, cache: Option<&std::path::Path>) -> Repository {
        if let Some(base) = cache {
            self.use_cache(base);
        }
        self
    }

    /// What this device remembers of the repository, if it keeps that.
    pub(crate) fn device_state(&self) -> Option<&DeviceState> {
        self.state.as_ref()
    }

    /// Tries the key files but `tried` (already tried with this password)
    /// until one opens: the one this device remembers first, then the
    /// cheapest; with `choice.only`, that one alone. A damaged or oversized
    /// key file is skipped, not fatal, so one bad key cannot lock users out
    /// of a repository that has others.
    ///
    /// Storage may plant key files. Costly ones (a 4 GiB Argon2 cost once
    /// took 4.2 GB and 6 s per unlock) are bounded by the work budget;
    /// cheap ones in numbers (256 at 32 MiB × 1 pass spent the budget in
    /// 9.4 s before the real key was tried) by the count of keys tried as
    /// well. Neither bound can tell a planted key from the owner's, so the
    /// error names the files left untried with what they say of
    /// themselves, and `--key ID` tries one alone. Returns the key file's
    /// bytes too, for the device to remember.
    fn unlock(
        backend: &dyn Backend,
        password: &str,
        choice: &KeyChoice,
    ) -> Result<(Unwrapped, Id, Vec<u8>)> {
        let mut listed = Object::Key.list(backend)?;
        if listed.is_empty() {
            return Err(Error::corrupt(
                "repository",
                "encrypted, but it has no key files",
            ));
        }
        if let Some(spec) = &choice.only {
            listed.retain(|(id, _)| id.has_prefix(spec));
            if listed.len() != 1 {
                return Err(Error::InvalidArgument(format!(
                    "--key {spec:?} names {} of the repository's key files: give a unique prefix \
                     of one",
                    if listed.is_empty() {
                        "none"
                    } else {
                        "more than one"
                    }
                )));
            }
        }
        let mut skipped: Vec<String> = Vec::new();
        let mut candidates: Vec<(u64, Id, Bytes, KeyFile)> = listed
            .par_iter()
            .filter(|(id, size)| Some(*id) != choice.tried && *size <= codec::MAX_KEY_OBJECT as u64)
            .filter_map(|(id, _)| {
                let bytes = Object::Key.read(backend, id).ok()?;
                let key = KeyFile::decode(&bytes).ok()?;
                key.kdf.validate().ok()?;
                Some((key.kdf.work(), *id, bytes, key))
            })
            .collect();
        let usable: HashSet<Id> = candidates.iter().map(|c| c.1).collect();
        for (id, _) in &listed {
            if Some(*id) != choice.tried && !usable.contains(id) {
                skipped.push(format!("{} (unreadable, oversized or damaged)", id.short()));
            }
        }
        candidates.sort_by_key(|c| (Some(c.1) != choice.remembered, c.0, c.1));
        let (mut spent, mut count) = (0u64, 0usize);
        let mut forged = None;
        for (work, id, bytes, key) in candidates {
            let bound = if count >= MAX_KEYS_TRIED {
                Some(format!("over the unlock bound of {MAX_KEYS_TRIED} keys"))
            } else if spent + work > choice.budget {
                Some("over the unlock work bound".to_string())
            } else {
                None
            };
            if let Some(bound) = bound {
                skipped.push(format!(
                    "{} ({bound}; of {}@{}, made {})",
                    id.short(),
                    key.username,
                    key.host,
                    chrono::DateTime::from_timestamp_nanos(key.created_ns).format("%Y-%m-%d")
                ));
                continue;
            }
            spent += work;
            count += 1;
            // A key that opens must open this repository's config too: a
            // key file copied from another repository with the same
            // password once opened first, and the config then failed.
            if let Ok(Some(unwrapped)) = key.unwrap_key(password) {
                match choice.config.map(|raw| open_config(raw, Some(&unwrapped))) {
                    None | Some(Ok(_)) => return Ok((unwrapped, id, bytes.to_vec())),
                    // The key is this repository's, the config is not the
                    // one its keys made: say so rather than "wrong password".
                    Some(Err(e @ Error::ConfigForged(_))) => forged = Some(e),
                    Some(Err(_)) => {}
                }
            }
        }
        if let Some(e) = forged {
            return Err(e);
        }
        if skipped.is_empty() {
            return Err(Error::WrongPassword);
        }
        Err(Error::WrongPasswordSkipped(crate::damage::some_of(
            &skipped, 20,
        )))
    }

    /// Every key file that decodes, with its id.
    pub fn keys(&self) -> Result<Vec<(Id, KeyFile)>> {
        let mut out = Vec::new();
        for (id, _) in Object::Key.list(&*self.backend)? {
            let bytes = Object::Key.read(&*self.backend, &id)?;
            out.push((id, KeyFile::decode(&bytes)?));
        }
        Ok(out)
    }

    /// Adds a passphrase: a new key file wrapping the same master key.
    pub fn add_key(&self, password: &str, kdf: KdfParams) -> Result<Id> {
        let master = self.master("add a full key")?;
        let bytes = KeyFile::wrap(master, password, kdf)?.encode();
        Object::Key.write(&*self.backend, bytes)
    }

    /// The master key, which only a full key unlocks.
    fn master(&self, to: &str) -> Result<&MasterKey> {
        let keys = self.codec.sealer.as_ref().ok_or_else(|| {
            Error::InvalidArgument("the repository is not encrypted: it has no keys".into())
        })?;
        keys.master()
            .ok_or_else(|| Error::WriteOnlyKey(to.to_string()))
    }

    /// What a write-only key of this repository wraps.
    fn write_only_secrets(&self) -> Result<WriteOnlySecrets> {
        let keys = self.codec.sealer.as_ref().ok_or_else(|| {
            Error::InvalidArgument("the repository is not encrypted: it has no keys".into())
        })?;
        let public = keys.public().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "the repository was made by an older snap (format version {}), whose keys \
                 are all full keys; write-only keys need a repository made by `snap init` of \
                 this version",
                self.config.version
            ))
        })?;
        Ok(WriteOnlySecrets {
            shared: Zeroizing::new(*keys.shared_bytes()),
            public,
            config: *blake3::hash(&self.config.encode()).as_bytes(),
        })
    }

    /// Adds a write-only key for the device `host` ([`crate::keys`]): it
    /// can add snapshots and read none. Only a full key makes one.
    pub fn add_write_only_key(
        &self,
        password: &str,
        kdf: KdfParams,
        host: Option<&str>,
    ) -> Result<Id> {
        self.master("add a key")?;
        let mut file = KeyFile::wrap_write_only(
            &self.write_only_secrets()?,
            password,
            kdf,
            &crypto::random_array(),
        )?;
        if let Some(host) = host {
            file.host = host.to_string();
        }
        Object::Key.write(&*self.backend, file.encode())
    }

    /// The host a backup names when none is given: a write-only key's
    /// device (`key add --write-only --host`), else this computer's name.
    pub fn default_host(&self) -> Result<String> {
        if self.access() == Access::WriteOnly
            && let Some(id) = self.key_id
        {
            let bytes = Object::Key.read(&*self.backend, &id)?;
            return Ok(KeyFile::decode(&bytes)?.host);
        }
        Ok(crate::sys::hostname())
    }

    /// What the key this session unlocked with allows; an unencrypted
    /// repository is read and written by anyone.
    pub fn access(&self) -> Access {
        self.codec
            .sealer
            .as_ref()
            .map_or(Access::Full, |k| k.access())
    }

    /// Fails with [`Error::WriteOnlyKey`] unless this session holds a full
    /// key: for every command that reads contents, trees or snapshots, or
    /// removes anything.
    pub fn require_full(&self, to: &str) -> Result<()> {
        match self.access() {
            Access::Full => Ok(()),
            Access::WriteOnly => Err(Error::WriteOnlyKey(to.to_string())),
        }
    }

    /// Removes a key file, but never the last one (the repository would be
    /// lost) nor the one this session unlocked with (use `key passwd`).
    pub fn remove_key(&self, spec: &str) -> Result<Id> {
        let ids: Vec<Id> = Object::Key
            .list(&*self.backend)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let matches: Vec<&Id> = ids.iter().filter(|id| id.has_prefix(spec)).collect();
        let id = match matches.as_slice() {
            [id] => **id,
            [] => return Err(Error::InvalidArgument(format!("no key {spec:?}"))),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "{spec:?} matches more than one key"
                )));
            }
        };
        self.require_full("remove keys")?;
        // Write-only keys read nothing: the last full key is the last way
        // to the files.
        let full: Vec<Id> = self
            .keys()?
            .into_iter()
            .filter(|(_, k)| k.access() == Some(Access::Full))
            .map(|(id, _)| id)
            .collect();
        if ids.len() == 1 || full == [id] {
            return Err(Error::InvalidArgument(
                "refusing to remove the only full key: no one could read the repository's \
                 files again"
                    .into(),
            ));
        }
        if Some(id) == self.key_id {
            return Err(Error::InvalidArgument(
                "refusing to remove the key this command unlocked with; use `snap key passwd` to replace it".into(),
            ));
        }
        Object::Key.delete(&*self.backend, &id)?;
        Ok(id)
    }

    /// Replaces the passphrase this session unlocked with: the new key is
    /// written before the old one is removed, so a crash leaves both.
    pub fn change_password(&mut self, password: &str, kdf: KdfParams) -> Result<Id> {
        let old = self.key_id.ok_or_else(|| {
            Error::InvalidArgument("the repository is not encrypted: it has no keys".into())
        })?;
        let new = match self.access() {
            Access::Full => self.add_key(password, kdf)?,
            Access::WriteOnly => {
                let host = self
                    .keys()?
                    .into_iter()
                    .find(|(id, _)| *id == old)
                    .map(|(_, k)| k.host);
                let mut file = KeyFile::wrap_write_only(
                    &self.write_only_secrets()?,
                    password,
                    kdf,
                    &crypto::random_array(),
                )?;
                if let Some(host) = host {
                    file.host = host;
                }
                Object::Key.write(&*self.backend, file.encode())?
            }
        };
        Object::Key.delete(&*self.backend, &old)?;
        self.key_id = Some(new);
        Ok(new)
    }

    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Where the repository is, as the user named it.
    pub fn location(&self) -> &str {
        self.backend.location()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn codec(&self) -> &BlobCodec {
        &self.codec
    }

    /// The chunker of this repository's config version and key.
    pub(crate) fn chunker(&self) -> &Chunker {
        &self.chunker
    }

    pub(crate) fn sealer(&self) -> &Sealer {
        &self.codec.sealer
    }

    pub fn is_encrypted(&self) -> bool {
        self.codec.sealer.is_some()
    }

    pub fn key_id(&self) -> Option<Id> {
        self.key_id
    }

    /// Every pack on storage, with its size: the truth that the index is
    /// checked against, and the packs of `expected` that are not there.
    ///
    /// A listing is not enough to call a pack gone: it can lag behind a
    /// write, a replica can be behind, a provider can cut it short without
    /// an error, and a hostile bucket can leave one key out once. A prune
    /// that took such a pack out of the index lost its data for good though
    /// every byte was still stored. So each expected pack the listing
    /// lacks is asked for by name (HEAD); one that answers counts as
    /// stored, with the size it gives.
    pub(crate) fn stored_packs(
        &self,
        expected: impl IntoIterator<Item = Id>,
    ) -> Result<(std::collections::HashMap<Id, u64>, Vec<Id>)> {
        let mut stored: std::collections::HashMap<Id, u64> =
            Object::Pack.list(&*self.backend)?.into_iter().collect();
        let mut unlisted: Vec<Id> = expected
            .into_iter()
            .filter(|id| !stored.contains_key(id))
            .collect();
        unlisted.sort();
        unlisted.dedup();
        let asked: Vec<(Id, Option<u64>)> = unlisted
            .par_iter()
            .map(|id| Ok((*id, self.backend.head(&Object::Pack.name(id))?)))
            .collect::<Result<_>>()?;
        let mut gone = Vec::new();
        for (id, size) in asked {
            match size {
                Some(size) => {
                    stored.insert(id, size);
                }
                None => gone.push(id),
            }
        }
        Ok((stored, gone))
    }

    pub(crate) fn list_index_ids(&self) -> Result<Vec<Id>> {
        self.list_cached(Object::Index)
    }

    pub(crate) fn read_index_file(&self, id: &Id) -> Result<IndexFile> {
        let bytes = self.read_verified(Object::Index, id)?;
        let file = IndexFile::open(self.sealer(), &bytes)?;
        file.validate()
            .map_err(|e| Error::corrupt(format!("index file {}", id.short()), e))?;
        Ok(file)
    }

    /// Every index file on storage, read in parallel, sorted by name.
    ///
    /// A prune may replace and delete a listed file before it is read; the
    /// file that replaced it supersedes it, so a listed file that is gone
    /// means the listing is read again (format-spec.md section 10). In 5 of
    /// 13 tries, a backup started beside a prune failed on such a file.
    pub fn read_index_files(&self) -> Result<Vec<(Id, IndexFile)>> {
        let mut tries = 0;
        loop {
            let mut ids = self.list_index_ids()?;
            ids.sort();
            let read: Result<Vec<(Id, IndexFile)>> = ids
                .par_iter()
                .map(|id| Ok((*id, self.read_index_file(id)?)))
                .collect();
            match read {
                Err(Error::Missing { .. }) if tries < INDEX_RELISTS => tries += 1,
                other => return other,
            }
        }
    }

    /// The index files in effect: every one on storage but those another
    /// one supersedes.
    pub fn current_index_files(&self) -> Result<Vec<(Id, IndexFile)>> {
        Ok(crate::index::current(self.read_index_files()?))
    }

    /// The index in effect, built from [`Repository::current_index_files`].
    pub fn read_index(&self) -> Result<Index> {
        let mut builder = IndexBuilder::default();
        // Each file is dropped once added, so the decoded files and the
        // table never both hold the whole index.
        for (_, file) in self.current_index_files()? {
            builder.add_file(&file);
        }
        Ok(builder.build())
    }

    /// Loads the index in effect: the one way to a value that reads blobs
    /// and trees.
    pub fn indexed(&self) -> Result<Indexed<'_>> {
        Ok(self.with_index(self.read_index()?))
    }

    /// Uses an index built elsewhere, such as check's, which skips index
    /// files that fail to decode instead of stopping.
    pub(crate) fn with_index(&self, index: Index) -> Indexed<'_> {
        Indexed { repo: self, index }
    }

    /// Index files naming `packs`, each superseding exactly `supersedes`
    /// (one empty file when no pack is left to name), at most
    /// [`crate::index::PACKS_PER_INDEX`] packs a file: how prune and
    /// repair replace index files. Returns how many were written.
    pub(crate) fn write_superseding(
        &self,
        packs: &[crate::index::IndexPack],
        supersedes: &[Id],
    ) -> Result<u64> {
        let chunks: Vec<&[crate::index::IndexPack]> = if packs.is_empty() {
            vec![&[]]
        } else {
            packs.chunks(crate::index::PACKS_PER_INDEX).collect()
        };
        for chunk in &chunks {
            self.write_index(&IndexFile {
                supersedes: supersedes.to_vec(),
                packs: chunk.to_vec(),
                writer: None,
            })?;
        }
        Ok(chunks.len() as u64)
    }

    /// Writes an index file; called only after its packs are stored.
    pub fn write_index(&self, file: &IndexFile) -> Result<(Id, u64)> {
        write_index(&*self.backend, self.sealer(), self.cache.as_ref(), file)
    }

    /// This device's cache, if it uses one.
    /// Where this device keeps trees: its cache, or on a write-only
    /// device its record ([`Repository::record`]).
    pub(crate) fn tree_cache(&self) -> Option<&Cache> {
        match self.access() {
            Access::Full => self.cache.as_ref(),
            Access::WriteOnly => self.record.as_ref(),
        }
    }

    pub(crate) fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// The way commands read blobs out of packs.
    pub(crate) fn fetcher(&self) -> Fetcher<'_> {
        Fetcher::new(&*self.backend, &self.codec)
    }

    /// Threads for transfers that also decode what they fetch. Remote
    /// stores want as many as the backend has connections, to hide latency;
    /// even a local one wants one more than there are cores, because a
    /// worker also waits in the file system (page cache, directory locks):
    /// on 2 cores a restore took 2.7 s with 2 workers and 2.5 s with 3, and
    /// more than 3 added memory only.
    pub(crate) fn transfer_pool(&self) -> Result<&rayon::ThreadPool> {
        if let Some(pool) = self.transfers.get() {
            return Ok(pool);
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.backend.connections().max(cores + 1))
            .build()
            .map_err(|e| Error::Other(format!("thread pool: {e}")))?;
        Ok(self.transfers.get_or_init(|| pool))
    }

    pub(crate) fn read_snapshot(&self, id: &Id) -> Result<Snapshot> {
        if let Some(local) = self.local_record() {
            return self.read_own_snapshot(&local, id);
        }
        let bytes = self.read_verified(Object::Snapshot, id)?;
        let s = codec::open::<Snapshot, { codec::MAX_SMALL_OBJECT }>(
            Kind::Snapshot,
            self.sealer(),
            &bytes,
        )?;
        s.check_paths()?;
        Ok(s)
    }

    /// On a write-only device, the keys of its local record: the
    /// snapshots it wrote, which it alone can read back (format-spec.md
    /// section 5).
    fn local_record(&self) -> Option<Sealer> {
        let keys = self.sealer().as_ref()?;
        (keys.access() == Access::WriteOnly).then(|| Some(keys.local_record_key().into()))
    }

    /// A snapshot this write-only device wrote, from its local record.
    fn read_own_snapshot(&self, local: &Sealer, id: &Id) -> Result<Snapshot> {
        let bytes = self
            .record
            .as_ref()
            .and_then(|c| c.get_record(LOCAL_SNAPSHOTS, id))
            .ok_or_else(|| Error::WriteOnlyKey("read snapshots it did not write".into()))?;
        let s =
            codec::open::<Snapshot, { codec::MAX_SMALL_OBJECT }>(Kind::Snapshot, local, &bytes)?;
        s.check_paths()?;
        Ok(s)
    }

    /// Writes a snapshot; the caller has stored everything it refers to.
    pub(crate) fn save_snapshot(&self, snapshot: &Snapshot) -> Result<Id> {
        let bytes = codec::seal(Kind::Snapshot, self.sealer(), snapshot);
        let id = Id::of_bytes(&bytes);
        if let (Some(local), Some(c)) = (self.local_record(), &self.record) {
            c.put_record(
                LOCAL_SNAPSHOTS,
                &id,
                &codec::seal(Kind::Snapshot, &local, snapshot),
            );
        } else if let Some(c) = &self.cache {
            c.put_object(Object::Snapshot.folder(), &id, &bytes);
        }
        self.backend
            .write(&snapshot_path(&id), Bytes::from(bytes))?;
        self.saw_snapshots([(&id, snapshot)])?;
        Ok(id)
    }

    /// Remembers snapshots read or written here, so that this device
    /// notices when storage hides one ([`crate::forgotten`]).
    fn saw_snapshots<'a>(
        &self,
        seen: impl IntoIterator<Item = (&'a Id, &'a Snapshot)>,
    ) -> Result<()> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        let seen: Vec<(Id, Seen)> = seen
            .into_iter()
            .map(|(id, s)| {
                (
                    *id,
                    Seen {
                        time_ns: s.time_ns,
                        host: s.host.clone(),
                    },
                )
            })
            .collect();
        state.update_snapshots(self.config.id, &seen, &[])
    }

    /// Snapshots this device saw that are gone without a record that snap
    /// removed them: storage hid them or rolled the repository back
    /// (format-spec.md section 11). Lists the snapshots again; commands
    /// that read them warn, `check` fails, `restore latest` refuses.
    pub fn hidden_snapshots(&self) -> Result<Vec<HiddenSnapshot>> {
        self.hidden_snapshots_in(&self.list_snapshot_ids()?)
    }

    /// [`Repository::hidden_snapshots`] against a listing already read.
    pub fn hidden_snapshots_in(&self, listed: &[Id]) -> Result<Vec<HiddenSnapshot>> {
        crate::forgotten::hidden_snapshots(self, listed)
    }

    /// Deletes snapshots, after writing the authenticated record that says
    /// so: devices that saw them then know they were removed, not hidden.
    pub(crate) fn remove_snapshots(&self, ids: &[Id]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        crate::forgotten::write(self, ids)?;
        for id in ids {
            self.backend.delete(&snapshot_path(id))?;
        }
        if let Some(s) = &self.state {
            s.update_snapshots(self.config.id, &[], ids)?;
        }
        Ok(())
    }

    pub(crate) fn list_snapshot_ids(&self) -> Result<Vec<Id>> {
        let ids = self.list_cached(Object::Snapshot)?;
        if let Some(c) = &self.record {
            c.retain(LOCAL_SNAPSHOTS, &ids.iter().copied().collect());
        }
        Ok(ids)
    }

    /// How many snapshots storage lists, readable or not.
    pub fn snapshot_count(&self) -> Result<usize> {
        Ok(self.list_snapshot_ids()?.len())
    }

    /// All snapshots, oldest first. A write-only key reads only those this
    /// device wrote and still holds in its local record
    /// ([`Repository::snapshot_count`] counts the others).
    pub fn snapshots(&self) -> Result<Vec<(Id, Snapshot)>> {
        let ids = self.list_snapshot_ids()?;
        let mut out: Vec<(Id, Snapshot)> = ids
            .par_iter()
            .filter_map(|id| match self.read_snapshot(id) {
                Err(Error::WriteOnlyKey(_)) => None,
                r => Some(r.map(|s| (*id, s))),
            })
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| a.1.time_ns.cmp(&b.1.time_ns).then(a.0.cmp(&b.0)));
        self.saw_snapshots(out.iter().map(|(id, s)| (id, s)))?;
        Ok(out)
    }

    /// [`Repository::find_snapshot`], and the snapshots storage hid
    /// ([`Repository::hidden_snapshots`]), from one listing: a bucket that
    /// answered two listings differently could show the newest snapshot to
    /// the rollback check and hide it from `latest`.
    pub fn find_snapshot_and_hidden(
        &self,
        spec: &str,
        filter: &SnapshotFilter,
    ) -> Result<((Id, Snapshot), Vec<HiddenSnapshot>)> {
        // An id needs only the listing, not every snapshot read.
        if spec != "latest" {
            let listed = self.list_snapshot_ids()?;
            let hidden = self.hidden_snapshots_in(&listed)?;
            return Ok((self.find_in(spec, listed, filter)?, hidden));
        }
        let all = self.snapshots()?;
        let listed: Vec<Id> = all.iter().map(|(id, _)| *id).collect();
        let hidden = self.hidden_snapshots_in(&listed)?;
        Ok((latest_of(all, filter)?, hidden))
    }

    /// Resolves `latest`, a full id or a unique id prefix.
    pub fn find_snapshot(&self, spec: &str, filter: &SnapshotFilter) -> Result<(Id, Snapshot)> {
        if spec == "latest" {
            return latest_of(self.snapshots()?, filter);
        }
        self.find_in(spec, self.list_snapshot_ids()?, filter)
    }

    /// A full id or unique id prefix among `ids`, read and matched.
    fn find_in(&self, spec: &str, ids: Vec<Id>, filter: &SnapshotFilter) -> Result<(Id, Snapshot)> {
        if spec.is_empty() || spec.len() > 64 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidArgument(format!(
                "{spec:?} is not a snapshot id, an id prefix or \"latest\""
            )));
        }
        let matches: Vec<Id> = ids.into_iter().filter(|id| id.has_prefix(spec)).collect();
        let (id, s) = match matches.as_slice() {
            [] => return Err(Error::SnapshotNotFound(spec.to_string())),
            [id] => (*id, self.read_snapshot(id)?),
            _ => return Err(Error::AmbiguousSnapshot(spec.to_string())),
        };
        // `forget ID --host desktop` once removed a snapshot of another host.
        if !filter.matches(&s) {
            return Err(Error::InvalidArgument(format!(
                "snapshot {} (of host {}, paths {}) does not match {}",
                id.short(),
                s.host,
                s.paths_lossy().join(", "),
                filter.describe()
            )));
        }
        Ok((id, s))
    }
}

/// The newest of `all` (oldest first) that `filter` admits. An undo
/// snapshot is what a folder held before a restore, not a backup: `latest`
/// passes over them unless asked for by tag.
fn latest_of(all: Vec<(Id, Snapshot)>, filter: &SnapshotFilter) -> Result<(Id, Snapshot)> {
    if all.is_empty() {
        return Err(Error::InvalidArgument(
            "the repository has no snapshots yet".into(),
        ));
    }
    let undo = crate::snapshot::UNDO_TAG;
    let undo_wanted = filter.tags.iter().any(|t| t == undo);
    all.into_iter()
        .rev()
        .filter(|(_, s)| undo_wanted || !s.tags.iter().any(|t| t == undo))
        .find(|(_, s)| filter.matches(s))
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "no snapshot matches \"latest\" with {}",
                filter.describe()
            ))
        })
}

pub(crate) fn write_index(
    backend: &dyn Backend,
    sealer: &Sealer,
    cache: Option<&Cache>,
    file: &IndexFile,
) -> Result<(Id, u64)> {
    let bytes = codec::seal(Kind::Index, sealer, file);
    let id = Id::of_bytes(&bytes);
    let len = bytes.len() as u64;
    if let Some(c) = cache {
        c.put_object(Object::Index.folder(), &id, &bytes);
    }
    backend.write(&Object::Index.name(&id), Bytes::from(bytes))?;
    Ok((id, len))
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;
    use crate::backend::{ObjectInfo, StoreBackend};

    /// A new encrypted repository in `dir` with the full key "pw", cheap
    /// to unlock.
    fn cheap_repository(dir: &std::path::Path) -> (Arc<dyn Backend>, Repository) {
        let backend: Arc<dyn Backend> = Arc::new(StoreBackend::local(dir, true).unwrap());
        let mut o = InitOptions::new(Some("pw".into()));
        o.kdf = KdfParams::new(1024, 1, 1);
        let repo = Repository::init(backend.clone(), o).unwrap();
        (backend, repo)
    }

    /// A cheap-to-unlock encrypted repository in `dir`, with a write-only
    /// key "wo" beside the full key "pw".
    fn with_write_only_key(dir: &std::path::Path) -> (Arc<dyn Backend>, Repository) {
        let (backend, repo) = cheap_repository(dir);
        repo.add_write_only_key("wo", KdfParams::new(1024, 1, 1), Some("laptop"))
            .unwrap();
        (backend, repo)
    }

    /// The config is sealed under the shared key, which write-only keys
    /// hold: one rewritten with it (here with another Object Lock, id key
    /// or level) is refused by full keys for its tag, and by the
    /// write-only key for its hash.
    #[test]
    fn a_config_rewritten_with_the_shared_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, repo) = with_write_only_key(dir.path());
        let writer: Sealer = Some(Keys::write_only(&repo.write_only_secrets().unwrap()).unwrap());
        for change in [
            (|_: &mut Config| {}) as fn(&mut Config),
            |c: &mut Config| c.id_key = [7; 32],
            |c: &mut Config| c.compression_level = 19,
        ] {
            let mut forged = repo.config().clone();
            forged.object_lock = Some(Retention {
                days: 30,
                mode: crate::retention::LockMode::Compliance,
            });
            change(&mut forged);
            let bytes = codec::seal_bytes(Kind::Config, &writer, &forged.encode());
            backend.write("config", Bytes::from(bytes)).unwrap();
            for pw in ["pw", "wo"] {
                let err = Repository::open(backend.clone(), &|| Ok(pw.to_string()))
                    .err()
                    .unwrap();
                assert!(matches!(err, Error::ConfigForged(_)), "{pw}: {err}");
            }
        }
        // The original still opens with both.
        let bytes = codec::seal_bytes(Kind::Config, repo.sealer(), &repo.config().encode());
        backend.write("config", Bytes::from(bytes)).unwrap();
        for (pw, access) in [("pw", Access::Full), ("wo", Access::WriteOnly)] {
            let r = Repository::open(backend.clone(), &|| Ok(pw.to_string())).unwrap();
            assert_eq!(r.access(), access);
        }
    }

    /// A repository made before version 3 (config version 2 under the
    /// master key) is read and written as before: its backups seal blobs
    /// and snapshots under the master key, without encapsulations, and
    /// write-only keys are refused with the reason.
    #[test]
    fn a_version_2_repository_stays_version_2() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, made) = cheap_repository(&dir.path().join("repo"));
        // The config as version 2 wrote it: no new fields, the master key.
        let mut old = made.config().clone();
        old.version = 2;
        old.content_public = None;
        old.tag = None;
        let master = made.sealer().as_ref().unwrap().master().unwrap().clone();
        let legacy: Sealer = Some(Keys::from(master.clone()));
        let bytes = codec::seal_bytes(Kind::Config, &legacy, &old.encode());
        backend.write("config", Bytes::from(bytes)).unwrap();
        drop(made);

        let repo = Repository::open(backend.clone(), &|| Ok("pw".to_string())).unwrap();
        assert_eq!(repo.config().version, 2);
        assert!(!repo.sealer().as_ref().unwrap().splits_content());
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("f"), b"written by a version 2 repository").unwrap();
        let made = crate::commands::create::create(
            &repo,
            &crate::commands::create::CreateOptions {
                paths: vec![src.clone()],
                ..Default::default()
            },
            &crate::progress::Silent,
        )
        .unwrap();
        // The snapshot opens under the master key alone, as version 2 reads.
        let raw = Object::Snapshot.read(&*backend, &made.snapshot_id).unwrap();
        codec::open::<Snapshot, { codec::MAX_SMALL_OBJECT }>(Kind::Snapshot, &legacy, &raw)
            .unwrap();
        let target = dir.path().join("out");
        crate::commands::restore::restore(
            &repo,
            &crate::commands::restore::RestoreOptions {
                snapshot: "latest".into(),
                target: target.clone(),
                ..Default::default()
            },
            &crate::progress::Silent,
        )
        .unwrap();
        let back = target.join(src.strip_prefix("/").unwrap()).join("f");
        assert_eq!(
            std::fs::read(back).unwrap(),
            b"written by a version 2 repository"
        );
        let err = repo
            .add_write_only_key("wo", KdfParams::new(1024, 1, 1), None)
            .unwrap_err();
        assert!(err.to_string().contains("older snap"), "{err}");
    }

    /// A forget record is what tells a full device that a snapshot it saw
    /// was removed by snap rather than hidden by storage. A write-only
    /// key's holder must not be able to write one that a full device
    /// accepts: with it, storage (or the holder, with delete rights) hides
    /// a snapshot and no device notices, and the pruner then deletes its
    /// data.
    #[test]
    fn a_write_only_key_cannot_forge_a_forget_record() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let (backend, _) = with_write_only_key(dir.path());
        let opts = OpenOptions {
            state: Some(state.path().to_path_buf()),
            ..Default::default()
        };
        let full = Repository::open_with(backend.clone(), &|| Ok("pw".to_string()), &opts).unwrap();
        let id = full
            .save_snapshot(&Snapshot {
                time_ns: 1,
                host: "desktop".into(),
                username: "u".into(),
                uid: 0,
                gid: 0,
                paths: vec![b"/home".to_vec()],
                tags: Vec::new(),
                tree: Id::default(),
                parent: None,
                program_version: String::new(),
                summary: Default::default(),
            })
            .unwrap();
        let wo = Repository::open(backend.clone(), &|| Ok("wo".to_string())).unwrap();
        // Refused outright...
        assert!(matches!(
            crate::forgotten::write(&wo, &[id]),
            Err(Error::WriteOnlyKey(_))
        ));
        // ...and one sealed by hand with what the key holds proves nothing.
        let record = crate::forgotten::ForgetRecord {
            time_ns: 2,
            host: "desktop".into(),
            snapshots: vec![id],
        };
        let bytes = codec::seal(Kind::Forget, wo.sealer(), &record);
        Object::Forgotten.write(&*backend, bytes).unwrap();
        backend.delete(&snapshot_path(&id)).unwrap();
        let hidden = full.hidden_snapshots().unwrap();
        assert_eq!(
            hidden.iter().map(|h| h.id).collect::<Vec<_>>(),
            vec![id],
            "a forget record forged with a write-only key hid a snapshot"
        );
        // A full key's own record still counts.
        crate::forgotten::write(&full, &[id]).unwrap();
        assert!(full.hidden_snapshots().unwrap().is_empty());
    }

    /// A thief with the device's passphrase and delete rights replaces
    /// its write-only key with one that seals to the thief's public key,
    /// and the config to match: the device, which pinned the public key in
    /// its record, refuses to back up to it.
    #[test]
    fn a_write_only_device_refuses_a_key_that_seals_to_another_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, repo) = with_write_only_key(&dir.path().join("repo"));
        let opts = OpenOptions {
            state: Some(dir.path().join("state")),
            ..Default::default()
        };
        let device = Repository::open_with(backend.clone(), &|| Ok("wo".into()), &opts).unwrap();
        let secrets = device.write_only_secrets().unwrap();
        let own_key = device.key_id().unwrap();
        drop(device);
        // The thief's own repository gives it a key pair whose private half
        // it holds.
        let thief = Keys::full(&MasterKey::generate());
        let mut config = repo.config().clone();
        config.content_public = thief.public();
        let body = config.encode();
        let planted = WriteOnlySecrets {
            shared: secrets.shared.clone(),
            public: thief.public().unwrap(),
            config: *blake3::hash(&body).as_bytes(),
        };
        let file = KeyFile::wrap_write_only(
            &planted,
            "wo",
            KdfParams::new(1024, 1, 1),
            &crypto::random_array(),
        )
        .unwrap();
        Object::Key.delete(&*backend, &own_key).unwrap();
        Object::Key.write(&*backend, file.encode()).unwrap();
        let shared: Sealer = Some(Keys::write_only(&secrets).unwrap());
        backend
            .write(
                "config",
                Bytes::from(codec::seal_bytes(Kind::Config, &shared, &body)),
            )
            .unwrap();
        let err = Repository::open_with(backend.clone(), &|| Ok("wo".into()), &opts)
            .err()
            .unwrap();
        assert!(matches!(err, Error::ConfigForged(_)), "{err}");
        // A device without the record would be fooled: the pin is what
        // stops it (this is why the test must be able to fail).
        let fresh = OpenOptions {
            state: Some(dir.path().join("other-state")),
            ..Default::default()
        };
        assert!(Repository::open_with(backend, &|| Ok("wo".into()), &fresh).is_ok());
    }

    /// A repository that asks for Object Lock, copied to a folder (to
    /// restore from it elsewhere), opens and reads there; the first write
    /// is refused, since no folder can retain anything.
    #[test]
    fn a_locked_repository_copied_to_a_folder_opens_to_read_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, made) = cheap_repository(&dir.path().join("repo"));
        let mut config = made.config().clone();
        config.object_lock = Some(Retention {
            days: 30,
            mode: crate::retention::LockMode::Governance,
        });
        let config = config.sealed_by(made.sealer().as_ref().unwrap());
        let bytes = codec::seal_bytes(Kind::Config, made.sealer(), &config.encode());
        backend.write("config", Bytes::from(bytes)).unwrap();
        let repo = Repository::open(backend.clone(), &|| Ok("pw".to_string())).unwrap();
        assert_eq!(repo.config().object_lock.map(|r| r.days), Some(30));
        assert!(repo.snapshots().unwrap().is_empty());
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("f"), b"x").unwrap();
        let err = crate::commands::create::create(
            &repo,
            &crate::commands::create::CreateOptions {
                paths: vec![src],
                ..Default::default()
            },
            &crate::progress::Silent,
        )
        .err()
        .unwrap();
        assert!(matches!(err, Error::ObjectLockUnavailable(_)), "{err}");
    }

    /// The last full key cannot go while write-only keys remain: they read
    /// nothing. A write-only session removes and adds no key.
    #[test]
    fn write_only_keys_never_replace_the_last_full_key() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, repo) = with_write_only_key(dir.path());
        let wo = Repository::open(backend.clone(), &|| Ok("wo".to_string())).unwrap();
        let full_id = repo.key_id().unwrap();
        assert!(matches!(
            wo.remove_key(&full_id.to_hex()),
            Err(Error::WriteOnlyKey(_))
        ));
        assert!(matches!(
            wo.add_key("x", KdfParams::new(1024, 1, 1)),
            Err(Error::WriteOnlyKey(_))
        ));
        // A second full key, so the session's own key is not the one removed.
        let other = repo.add_key("pw2", KdfParams::new(1024, 1, 1)).unwrap();
        let r2 = Repository::open(backend.clone(), &|| Ok("pw2".to_string())).unwrap();
        assert_eq!(r2.key_id(), Some(other));
        r2.remove_key(&full_id.to_hex()).unwrap();
        let err = r2.remove_key(&other.to_hex()).unwrap_err();
        assert!(
            err.to_string().contains("only full key") || err.to_string().contains("unlocked with"),
            "{err}"
        );
        // The write-only key's passphrase changes, and stays write-only.
        let mut wo = wo;
        wo.change_password("wo2", KdfParams::new(1024, 1, 1))
            .unwrap();
        let again = Repository::open(backend.clone(), &|| Ok("wo2".to_string())).unwrap();
        assert_eq!(again.access(), Access::WriteOnly);
        assert_eq!(again.default_host().unwrap(), "laptop");
    }

    /// A store where another device's init lands between this init's look
    /// for a config and its write of one.
    struct RacedInit(StoreBackend);

    impl Backend for RacedInit {
        fn location(&self) -> &str {
            self.0.location()
        }
        fn read(&self, name: &str, max: u64) -> Result<Bytes> {
            if name == "config" {
                return Err(Error::Missing {
                    what: "config",
                    id: String::new(),
                });
            }
            self.0.read(name, max)
        }
        fn read_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
            self.0.read_range(name, range)
        }
        fn write(&self, name: &str, data: Bytes) -> Result<()> {
            self.0.write(name, data)
        }
        fn create(&self, name: &str, data: Bytes) -> Result<bool> {
            self.0.create(name, data)
        }
        fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
            self.0.list(prefix)
        }
        fn delete(&self, name: &str) -> Result<()> {
            self.0.delete(name)
        }
        fn head(&self, name: &str) -> Result<Option<u64>> {
            self.0.head(name)
        }
    }

    /// A store where a prune replaces an index file between a listing and
    /// the read of that file: the first read of an index file finds it
    /// gone, a file superseding it in its place.
    struct PruneBetween {
        inner: StoreBackend,
        done: std::sync::atomic::AtomicBool,
        sealer: Sealer,
    }

    impl Backend for PruneBetween {
        fn location(&self) -> &str {
            self.inner.location()
        }
        fn read(&self, name: &str, max: u64) -> Result<Bytes> {
            if name.starts_with("index/")
                && !self.done.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                let bytes = self.inner.read(name, max)?;
                let old = IndexFile::open(&self.sealer, &bytes)?;
                let id = Id::from_hex(name.rsplit('/').next().unwrap()).unwrap();
                write_index(
                    &self.inner,
                    &self.sealer,
                    None,
                    &IndexFile {
                        supersedes: vec![id],
                        packs: old.packs,
                        writer: None,
                    },
                )?;
                self.inner.delete(name)?;
            }
            self.inner.read(name, max)
        }
        fn read_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
            self.inner.read_range(name, range)
        }
        fn write(&self, name: &str, data: Bytes) -> Result<()> {
            self.inner.write(name, data)
        }
        fn create(&self, name: &str, data: Bytes) -> Result<bool> {
            self.inner.create(name, data)
        }
        fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
            self.inner.list(prefix)
        }
        fn delete(&self, name: &str) -> Result<()> {
            self.inner.delete(name)
        }
        fn head(&self, name: &str) -> Result<Option<u64>> {
            self.inner.head(name)
        }
    }

    /// A backup beside a prune failed with "object index/… is missing"
    /// in 5 of 13 tries: a listed index file that is gone now means the
    /// listing is read again, and the file that replaced it is used.
    #[test]
    fn an_index_file_replaced_after_the_listing_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("f"), b"data").unwrap();
        let store = dir.path().join("repo");
        let mut o = InitOptions::new(Some("pw".into()));
        o.kdf = KdfParams {
            memory_kib: 1024,
            iterations: 1,
            ..o.kdf
        };
        let repo =
            Repository::init(Arc::new(StoreBackend::local(&store, true).unwrap()), o).unwrap();
        crate::commands::create::create(
            &repo,
            &crate::commands::create::CreateOptions {
                paths: vec![src],
                ..Default::default()
            },
            &crate::progress::Silent,
        )
        .unwrap();
        let blobs = repo.indexed().unwrap().index().len();
        let racing = Arc::new(PruneBetween {
            inner: StoreBackend::local(&store, false).unwrap(),
            done: Default::default(),
            sealer: repo.sealer().clone(),
        });
        let seen = Repository::open(racing.clone(), &|| Ok("pw".to_string())).unwrap();
        let indexed = seen.indexed().expect("the listing is read again");
        assert!(racing.done.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(indexed.index().len(), blobs);
    }

    /// Where `needle` stands in this process's readable memory, but at
    /// `own` (the needle itself) and in the buffer that reads it: read from
    /// `/proc/self/mem` a MiB at a time, region by region as
    /// `/proc/self/maps` lists them.
    #[cfg(target_os = "linux")]
    fn copies_in_memory(needle: &[u8], own: usize) -> usize {
        use std::io::{Read, Seek, SeekFrom};
        const CHUNK: usize = 1 << 20;
        let mut buf = vec![0u8; CHUNK];
        let mine = buf.as_ptr() as usize..buf.as_ptr() as usize + CHUNK;
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mut mem = std::fs::File::open("/proc/self/mem").unwrap();
        let mut found = 0;
        for line in maps.lines() {
            let mut parts = line.split_whitespace();
            let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
                continue;
            };
            if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
                continue;
            }
            let (a, b) = range.split_once('-').unwrap();
            let (a, b) = (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
            );
            let mut at = a;
            while at < b {
                let len = CHUNK.min(b - at);
                if mem.seek(SeekFrom::Start(at as u64)).is_err()
                    || mem.read_exact(&mut buf[..len]).is_err()
                {
                    break;
                }
                let mut i = 0;
                while let Some(p) = buf[i..len].iter().position(|&x| x == needle[0]) {
                    let start = i + p;
                    let addr = at + start;
                    if start + needle.len() <= len
                        && &buf[start..start + needle.len()] == needle
                        && addr != own
                        && !mine.contains(&addr)
                    {
                        found += 1;
                    }
                    i = start + 1;
                }
                // Overlap, so that a copy across two chunks is seen.
                at += if len == CHUNK {
                    len - needle.len()
                } else {
                    len
                };
            }
        }
        zeroize::Zeroize::zeroize(&mut buf);
        found
    }

    /// Secrets are zeroed when dropped: after an unlock no copy of the
    /// password is left in memory, and once the repository is dropped no
    /// copy of the master key either (read from the process's own
    /// memory).
    #[cfg(target_os = "linux")]
    #[test]
    fn no_copy_of_the_password_or_master_key_stays_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut canary = Zeroizing::new(hex::encode(crypto::random_array::<16>()));
        canary.insert_str(0, "pw-");
        let mut o = InitOptions::new(Some(canary.to_string()));
        o.kdf = KdfParams {
            memory_kib: 1024,
            iterations: 1,
            ..o.kdf
        };
        let backend = Arc::new(StoreBackend::local(dir.path(), true).unwrap());
        drop(Repository::init(backend.clone(), o).unwrap());
        let repo = Repository::open(backend.clone(), &|| Ok(canary.to_string())).unwrap();
        let password = canary.as_bytes();
        assert_eq!(
            copies_in_memory(password, password.as_ptr() as usize),
            0,
            "the password stayed in memory after the unlock"
        );
        let keys = repo.sealer().as_ref().unwrap();
        let key = Zeroizing::new(keys.master().unwrap().as_bytes().to_vec());
        let shared = Zeroizing::new(keys.shared_bytes().to_vec());
        // Used, as a backup would: sealing an object.
        let _ = repo.save_snapshot(&Snapshot {
            time_ns: 1,
            host: "h".into(),
            username: "u".into(),
            uid: 0,
            gid: 0,
            paths: vec![b"/".to_vec()],
            tags: Vec::new(),
            tree: Id::default(),
            parent: None,
            program_version: String::new(),
            summary: Default::default(),
        });
        drop(repo);
        assert_eq!(
            copies_in_memory(&key[..], key.as_ptr() as usize),
            0,
            "the master key stayed in memory after the repository was dropped"
        );
        assert_eq!(
            copies_in_memory(&shared[..], shared.as_ptr() as usize),
            0,
            "the shared key stayed in memory after the repository was dropped"
        );
        assert_eq!(copies_in_memory(password, password.as_ptr() as usize), 0);
    }

    /// The init that loses the race for the config leaves no key behind:
    /// six parallel Initialize clicks once left three keys.
    #[test]
    fn an_init_that_loses_the_race_takes_its_key_back() {
        let dir = tempfile::tempdir().unwrap();
        let fast = |pw: &str| {
            let mut o = InitOptions::new(Some(pw.to_string()));
            o.kdf = KdfParams {
                memory_kib: 1024,
                iterations: 1,
                ..o.kdf
            };
            o
        };
        let first = Arc::new(StoreBackend::local(dir.path(), true).unwrap());
        Repository::init(first.clone(), fast("one")).unwrap();
        let raced = Arc::new(RacedInit(StoreBackend::local(dir.path(), false).unwrap()));
        let lost = Repository::init(raced, fast("two"));
        assert!(matches!(lost, Err(Error::RepositoryExists(_))));
        assert_eq!(Object::Key.list(&*first).unwrap().len(), 1);
    }
}
