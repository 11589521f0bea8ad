//! The keys an unlocked session seals and opens with, and which key each
//! kind of object is sealed under (format-spec.md section 5).
//!
//! A version 1 or 2 repository seals everything under its master key. A
//! version 3 repository splits what a device may read from what it may
//! only write:
//! - the **shared key**, derived from the master key, seals what every
//!   device reads to add a backup: the config, index files, locks and
//!   trash, forget and pruner records;
//! - the **content key pair**, an X25519 pair also derived from the master
//!   key, seals what only full keys read: blobs (file contents and trees),
//!   pack headers and snapshots. A writer encapsulates a fresh key to the
//!   public half once per session with HPKE (RFC 9180, the `hpke` crate)
//!   and seals under the key HPKE exports; each sealed object begins with
//!   the 32-byte encapsulation, so a reader with the private half derives
//!   the same key once per session it meets.
//!
//! A write-only key holds the shared key and the public half only
//! ([`WriteOnlySecrets`]): it can add blobs, packs and snapshots and read
//! the index to deduplicate, and it cannot open what it or anyone wrote.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::{Zeroize, Zeroizing};

use crate::codec::Kind;
use crate::crypto::{self, MasterKey, NONCE_LEN};
use crate::error::{Error, Result};

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type ExportOnly = hpke::aead::ExportOnlyAead;

/// Bytes of an X25519 encapsulation, which opens every content-sealed
/// object and blob.
pub const ENC_LEN: usize = 32;
/// HPKE's `info` for every session of snap's content key pair.
const HPKE_INFO: &[u8] = b"snap content v3";
/// The exporter context of the session key.
const EXPORT_CONTEXT: &[u8] = b"snap session key";
/// Derivation contexts (BLAKE3 `derive_key`) from the master key.
const SHARED_CONTEXT: &str = "snap 2026-12-03 shared key v3";
const CONTENT_CONTEXT: &str = "snap 2026-12-03 content key pair v3";
/// From the master key: the key of a config's tag.
const CONFIG_TAG_CONTEXT: &str = "snap 2026-12-03 config tag v3";
/// From the master key: the key of forget records, which only full keys
/// write and read (format-spec.md section 10).
const FORGET_CONTEXT: &str = "snap 2026-12-03 forget records v3";
/// From the shared key: the key of a write-only device's local record.
const LOCAL_CONTEXT: &str = "snap 2026-12-03 local record v3";
/// The most sessions one process remembers the keys of. A restore meets
/// one per backup it reads from; a bucket planting a fresh encapsulation
/// in every blob costs a key agreement per blob, not memory.
const MAX_OPENED_SESSIONS: usize = 4096;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads and writes everything.
    Full,
    /// Adds snapshots; reads the config, index, locks and records only.
    WriteOnly,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::Full => "full",
            Access::WriteOnly => "write-only",
        }
    }
}

/// What a write-only key file wraps: the shared key, the content public
/// key, and the hash of the config it was made for, so that a bucket (or
/// the holder of another write-only key, who knows the shared key too)
/// cannot make this device seal its files to another public key or cut
/// them with another chunker.
#[derive(Clone)]
pub struct WriteOnlySecrets {
    pub shared: Zeroizing<[u8; 32]>,
    pub public: [u8; 32],
    pub config: [u8; 32],
}

impl WriteOnlySecrets {
    pub const LEN: usize = 96;

    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(Self::LEN));
        out.extend_from_slice(&self.shared[..]);
        out.extend_from_slice(&self.public);
        out.extend_from_slice(&self.config);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<WriteOnlySecrets> {
        if bytes.len() != Self::LEN {
            return None;
        }
        let mut shared = Zeroizing::new([0u8; 32]);
        shared.copy_from_slice(&bytes[..32]);
        Some(WriteOnlySecrets {
            shared,
            public: bytes[32..64].try_into().ok()?,
            config: bytes[64..96].try_into().ok()?,
        })
    }
}

/// The keys of one session, shared by every thread that seals or opens.
#[derive(Clone)]
pub struct Keys {
    /// The master key, held by full keys only: it wraps new key files.
    master: Option<MasterKey>,
    /// Seals the objects every device reads (all objects before version 3).
    shared: MasterKey,
    /// Version 3, full keys: seals forget records, which tell a snapshot
    /// that snap removed from one that storage hid. Under the shared key a
    /// write-only key's holder could forge them and hide snapshots from
    /// every device that saw them.
    forget: Option<MasterKey>,
    /// Version 3: the content key pair.
    content: Option<Arc<Content>>,
}

struct Content {
    public: <Kem as hpke::Kem>::PublicKey,
    secret: Option<<Kem as hpke::Kem>::PrivateKey>,
    /// This session's encapsulation and key, made at the first seal.
    session: OnceLock<([u8; ENC_LEN], MasterKey)>,
    /// Keys of the sessions this one has opened, by encapsulation. Shared
    /// (`Arc`), not cloned per blob: a clone allocates and zeroes a key,
    /// which made opening 4 KiB blobs 23% slower than version 2.
    opened: Mutex<HashMap<[u8; ENC_LEN], Arc<MasterKey>>>,
}

/// A master key as versions 1 and 2 use it: for everything.
impl From<MasterKey> for Keys {
    fn from(master: MasterKey) -> Keys {
        Keys {
            master: Some(master.clone()),
            shared: master,
            forget: None,
            content: None,
        }
    }
}

fn derive(context: &str, key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key(context, key))
}

impl Keys {
    /// A full key of a version 3 repository.
    pub fn full(master: &MasterKey) -> Keys {
        let shared = MasterKey::from_slice(&derive(SHARED_CONTEXT, master.as_bytes()));
        let ikm = derive(CONTENT_CONTEXT, master.as_bytes());
        let (secret, public) = Kem::derive_keypair(&ikm[..]);
        Keys {
            master: Some(master.clone()),
            shared,
            forget: Some(MasterKey::from_slice(&derive(
                FORGET_CONTEXT,
                master.as_bytes(),
            ))),
            content: Some(Arc::new(Content::new(public, Some(secret)))),
        }
    }

    /// A write-only key; an error if the public key is not one HPKE can
    /// encapsulate to.
    pub fn write_only(secrets: &WriteOnlySecrets) -> Result<Keys> {
        let invalid = || Error::corrupt("key file", "the content public key is invalid");
        let public =
            <Kem as hpke::Kem>::PublicKey::from_bytes(&secrets.public).map_err(|_| invalid())?;
        let content = Content::new(public, None);
        // Any 32 bytes decode as an X25519 point, but a low-order one (all
        // zeros, say) makes every encapsulation fail: a key file planted
        // by someone who knows the device's passphrase would otherwise
        // panic its first seal.
        content
            .try_encapsulate(&mut rand::rng())
            .map_err(|_| invalid())?;
        Ok(Keys {
            master: None,
            shared: MasterKey::from_slice(&secrets.shared),
            forget: None,
            content: Some(Arc::new(content)),
        })
    }

    pub fn access(&self) -> Access {
        if self.master.is_some() {
            Access::Full
        } else {
            Access::WriteOnly
        }
    }

    pub fn master(&self) -> Option<&MasterKey> {
        self.master.as_ref()
    }

    /// Whether objects are sealed as version 3 repositories seal them.
    pub fn splits_content(&self) -> bool {
        self.content.is_some()
    }

    /// The content public key (version 3).
    pub fn public(&self) -> Option<[u8; 32]> {
        self.content.as_ref().map(|c| c.public.to_bytes().into())
    }

    /// A keyed hash of a config's untagged body, which only full keys can
    /// make (format-spec.md section 4).
    pub(crate) fn config_tag(&self, untagged: &[u8]) -> Option<[u8; 32]> {
        let key = derive(CONFIG_TAG_CONTEXT, self.master.as_ref()?.as_bytes());
        Some(*blake3::keyed_hash(&key, untagged).as_bytes())
    }

    /// The shared key's bytes, which a write-only key file wraps.
    #[doc(hidden)]
    pub fn shared_bytes(&self) -> &[u8; 32] {
        self.shared.as_bytes()
    }

    /// The key a write-only device seals its local record with.
    pub(crate) fn local_record_key(&self) -> MasterKey {
        MasterKey::from_slice(&derive(LOCAL_CONTEXT, self.shared.as_bytes()))
    }

    /// Whether `kind` is sealed to the content key pair here.
    fn content_for(&self, kind: Kind) -> Option<&Content> {
        match kind {
            Kind::Snapshot | Kind::PackHeader => self.content.as_deref(),
            _ => None,
        }
    }

    /// The key an object of `kind` that is not sealed to the content key
    /// pair is sealed under: the shared key, but for forget records of a
    /// version 3 repository, which need a full key.
    fn symmetric(&self, kind: Kind) -> Result<&MasterKey> {
        match (kind, &self.content, &self.forget) {
            (Kind::Forget, Some(_), Some(key)) => Ok(key),
            (Kind::Forget, Some(_), None) => {
                Err(Error::WriteOnlyKey("read or write forget records".into()))
            }
            _ => Ok(&self.shared),
        }
    }

    /// Bytes sealing adds to an object of `kind`.
    pub fn overhead(&self, kind: Kind) -> usize {
        crypto::SEAL_OVERHEAD + self.content_for(kind).map_or(0, |_| ENC_LEN)
    }

    /// Seals an envelope's payload (`aad` is its header).
    pub(crate) fn seal(
        &self,
        kind: Kind,
        aad: &[u8],
        payload: &[u8],
        nonce: Option<&[u8; NONCE_LEN]>,
    ) -> Vec<u8> {
        let nonce = nonce.copied().unwrap_or_else(crypto::random_array);
        match self.content_for(kind) {
            Some(c) => {
                let (enc, key) = c.session();
                let mut out = enc.to_vec();
                out.extend_from_slice(&crypto::seal_with(key.as_bytes(), &nonce, aad, payload));
                out
            }
            // A write-only key writes no forget record
            // (`forgotten::write` refuses): were it to, under the shared
            // key, no full device would open it.
            None => crypto::seal_with(
                self.symmetric(kind).unwrap_or(&self.shared).as_bytes(),
                &nonce,
                aad,
                payload,
            ),
        }
    }

    /// Opens what [`Keys::seal`] sealed.
    pub(crate) fn open(&self, kind: Kind, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        match self.content_for(kind) {
            Some(c) => {
                let (key, rest) = c.open_session(kind.name(), sealed)?;
                key.open_into(aad, rest, &mut out)?;
            }
            None => self.symmetric(kind)?.open_into(aad, sealed, &mut out)?,
        }
        Ok(out)
    }

    /// Seals a blob's `first || rest` (its compression byte and body).
    pub(crate) fn seal_blob(
        &self,
        nonce: Option<&[u8; NONCE_LEN]>,
        aad: &[u8],
        first: u8,
        rest: &[u8],
    ) -> Vec<u8> {
        let nonce = nonce.copied().unwrap_or_else(crypto::random_array);
        match &self.content {
            Some(c) => {
                let (enc, key) = c.session();
                key.seal_parts_after(enc, &nonce, aad, first, rest)
            }
            None => self.shared.seal_parts_with(&nonce, aad, first, rest),
        }
    }

    /// Opens a blob into `out`.
    pub(crate) fn open_blob_into(
        &self,
        aad: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        match &self.content {
            Some(c) => {
                let (key, rest) = c.open_session("blob", sealed)?;
                key.open_into(aad, rest, out)
            }
            None => self.shared.open_into(aad, sealed, out),
        }
    }

    /// Fixes this session's encapsulation from `seed`, for the test
    /// vectors only: writers draw a fresh one per session.
    #[doc(hidden)]
    pub fn with_session_seed(self, seed: [u8; 32]) -> Keys {
        if let Some(c) = &self.content {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_seed(seed);
            let _ = c.session.set(c.encapsulate(&mut rng));
        }
        self
    }
}

impl Content {
    fn new(
        public: <Kem as hpke::Kem>::PublicKey,
        secret: Option<<Kem as hpke::Kem>::PrivateKey>,
    ) -> Content {
        Content {
            public,
            secret,
            session: OnceLock::new(),
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// A session's encapsulation and key; fails only for a low-order
    /// public key, which [`Keys::write_only`] refuses and
    /// [`Keys::full`] never derives.
    fn try_encapsulate(
        &self,
        rng: &mut impl rand::CryptoRng,
    ) -> std::result::Result<([u8; ENC_LEN], MasterKey), hpke::HpkeError> {
        let (enc, ctx) = hpke::setup_sender::<ExportOnly, Kdf, Kem, _>(
            &OpModeS::Base,
            &self.public,
            HPKE_INFO,
            rng,
        )?;
        let mut key = Zeroizing::new([0u8; 32]);
        ctx.export(EXPORT_CONTEXT, &mut key[..])?;
        Ok((enc.to_bytes().into(), MasterKey::from_slice(&key)))
    }

    fn encapsulate(&self, rng: &mut impl rand::CryptoRng) -> ([u8; ENC_LEN], MasterKey) {
        self.try_encapsulate(rng)
            .expect("a public key that Keys::full derived or Keys::write_only checked")
    }

    fn session(&self) -> &([u8; ENC_LEN], MasterKey) {
        self.session
            .get_or_init(|| self.encapsulate(&mut rand::rng()))
    }

    /// The session key an object begins with the encapsulation of, and the
    /// rest of the object.
    fn open_session<'s>(&self, what: &str, sealed: &'s [u8]) -> Result<(Arc<MasterKey>, &'s [u8])> {
        let Some(secret) = &self.secret else {
            return Err(Error::WriteOnlyKey(format!("open a {what}")));
        };
        if sealed.len() < ENC_LEN {
            return Err(Error::corrupt(what, "shorter than its encapsulated key"));
        }
        let (enc, rest) = sealed.split_at(ENC_LEN);
        let enc: [u8; ENC_LEN] = enc.try_into().expect("split at ENC_LEN");
        if let Some(key) = self.opened.lock().unwrap().get(&enc) {
            return Ok((Arc::clone(key), rest));
        }
        let failed = || Error::corrupt(what, "its encapsulated key does not open");
        let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc).map_err(|_| failed())?;
        let ctx = hpke::setup_receiver::<ExportOnly, Kdf, Kem>(
            &OpModeR::Base,
            secret,
            &encapped,
            HPKE_INFO,
        )
        .map_err(|_| failed())?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        ctx.export(EXPORT_CONTEXT, &mut bytes[..])
            .map_err(|_| failed())?;
        let key = Arc::new(MasterKey::from_slice(&bytes));
        let mut opened = self.opened.lock().unwrap();
        if opened.len() < MAX_OPENED_SESSIONS {
            opened.insert(enc, Arc::clone(&key));
        }
        Ok((key, rest))
    }
}

impl Drop for WriteOnlySecrets {
    fn drop(&mut self) {
        self.config.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_keys_open_what_write_only_keys_seal_and_not_the_reverse() {
        let master = MasterKey::generate();
        let full = Keys::full(&master);
        let secrets = WriteOnlySecrets {
            shared: Zeroizing::new(*full.shared_bytes()),
            public: full.public().unwrap(),
            config: [0; 32],
        };
        let writer = Keys::write_only(&secrets).unwrap();
        let blob = writer.seal_blob(None, b"aad", 1, b"file contents");
        let mut out = Vec::new();
        full.open_blob_into(b"aad", &blob, &mut out).unwrap();
        assert_eq!(out, b"\x01file contents");
        // The writer cannot open its own blob, nor one a full key sealed.
        let err = writer.open_blob_into(b"aad", &blob, &mut out).unwrap_err();
        assert!(matches!(err, Error::WriteOnlyKey(_)), "{err}");
        let other = full.seal_blob(None, b"aad", 0, b"x");
        assert!(writer.open_blob_into(b"aad", &other, &mut out).is_err());
        // Snapshots too; index files stay readable by both.
        let snap = writer.seal(Kind::Snapshot, b"h", b"snapshot", None);
        assert_eq!(full.open(Kind::Snapshot, b"h", &snap).unwrap(), b"snapshot");
        assert!(writer.open(Kind::Snapshot, b"h", &snap).is_err());
        let index = writer.seal(Kind::Index, b"h", b"index", None);
        assert_eq!(writer.open(Kind::Index, b"h", &index).unwrap(), b"index");
        assert_eq!(full.open(Kind::Index, b"h", &index).unwrap(), b"index");
        // Forget records are the full keys' own: a write-only key neither
        // opens one nor seals one that a full key opens.
        let forget = full.seal(Kind::Forget, b"h", b"forget", None);
        assert_eq!(full.open(Kind::Forget, b"h", &forget).unwrap(), b"forget");
        assert!(matches!(
            writer.open(Kind::Forget, b"h", &forget),
            Err(Error::WriteOnlyKey(_))
        ));
        let forged = writer.seal(Kind::Forget, b"h", b"forget", None);
        assert!(full.open(Kind::Forget, b"h", &forged).is_err());
        // A changed encapsulation or body fails.
        for i in [0, ENC_LEN, blob.len() - 1] {
            let mut bad = blob.clone();
            bad[i] ^= 1;
            assert!(
                full.open_blob_into(b"aad", &bad, &mut out).is_err(),
                "flip at {i}"
            );
        }
        assert!(full.open_blob_into(b"aad", &blob[..20], &mut out).is_err());
    }

    /// A write-only key file (planted by whoever knows the device's
    /// passphrase) may wrap a low-order point: refused when the key is
    /// made, not a panic at the first seal.
    #[test]
    fn a_low_order_public_key_is_refused_not_a_panic() {
        for public in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            let secrets = WriteOnlySecrets {
                shared: Zeroizing::new([1; 32]),
                public,
                config: [0; 32],
            };
            let keys = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                Keys::write_only(&secrets).map(|k| k.seal_blob(None, b"aad", 0, b"x"))
            }));
            assert!(matches!(keys, Ok(Err(Error::Corrupt { .. }))), "{public:?}");
        }
    }

    #[test]
    fn another_repositorys_full_key_opens_nothing() {
        let a = Keys::full(&MasterKey::generate());
        let b = Keys::full(&MasterKey::generate());
        let blob = a.seal_blob(None, b"aad", 0, b"x");
        assert!(b.open_blob_into(b"aad", &blob, &mut Vec::new()).is_err());
        assert_ne!(a.public(), b.public());
    }

    #[test]
    fn secrets_round_trip_by_length() {
        let s = WriteOnlySecrets {
            shared: Zeroizing::new([1; 32]),
            public: [2; 32],
            config: [3; 32],
        };
        let bytes = s.encode();
        let back = WriteOnlySecrets::decode(&bytes).unwrap();
        assert_eq!(
            (*back.shared, back.public, back.config),
            ([1; 32], [2; 32], [3; 32])
        );
        assert!(WriteOnlySecrets::decode(&bytes[1..]).is_none());
    }
}
