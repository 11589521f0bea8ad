//! Every cryptographic operation snap performs, in one place, on top of
//! audited crates: XChaCha20-Poly1305 for confidentiality and integrity,
//! Argon2id to turn a passphrase into a key-encryption key, keyed BLAKE3 for
//! blob ids. Nothing here is hand-rolled.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::id::Id;

pub const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;
/// Bytes that sealing adds to a message.
pub(crate) const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Bytes from the operating system's CSPRNG. A failure here means the
/// platform cannot give randomness, and writing with a predictable nonce or
/// key would be worse than stopping.
pub(crate) fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the operating system random number generator failed");
    out
}

/// The repository's 256-bit master key. Zeroed on drop so it does not
/// linger in freed memory, and kept in one heap allocation: a key held by
/// value leaves a copy behind at every move (a test reading the process's
/// memory found four after the repository was dropped).
#[derive(Clone)]
pub struct MasterKey(Box<Zeroizing<[u8; 32]>>);

impl MasterKey {
    pub fn generate() -> MasterKey {
        let mut key = Box::new(Zeroizing::new([0u8; 32]));
        getrandom::fill(&mut key[..]).expect("the operating system random number generator failed");
        MasterKey(key)
    }

    /// A key from bytes the caller holds; they are copied, and the
    /// caller's copy is the caller's to zero.
    pub fn from_slice(bytes: &[u8; 32]) -> MasterKey {
        let mut key = Box::new(Zeroizing::new([0u8; 32]));
        key.copy_from_slice(bytes);
        MasterKey(key)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        Self::from_slice(&bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `nonce || ciphertext || tag` of `plaintext` with associated data `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal_with(self.as_bytes(), &random_array(), aad, plaintext)
    }

    /// Seals `first || rest` with `nonce` without assembling the plaintext
    /// first: the ciphertext buffer is the only copy.
    pub(crate) fn seal_parts_with(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        first: u8,
        rest: &[u8],
    ) -> Vec<u8> {
        self.seal_parts_after(&[], nonce, aad, first, rest)
    }

    /// `prefix || nonce || ciphertext of (first || rest) || tag`: the
    /// prefix (a session's encapsulated key) is not sealed, and is
    /// authenticated by being what derives the key.
    pub(crate) fn seal_parts_after(
        &self,
        prefix: &[u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        first: u8,
        rest: &[u8],
    ) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(self.as_bytes().into());
        let mut out = Vec::with_capacity(prefix.len() + rest.len() + 1 + SEAL_OVERHEAD);
        out.extend_from_slice(prefix);
        out.extend_from_slice(nonce);
        let start = out.len();
        out.push(first);
        out.extend_from_slice(rest);
        let tag = cipher
            .encrypt_inout_detached(&XNonce::from(*nonce), aad, (&mut out[start..]).into())
            .expect("XChaCha20-Poly1305 accepts any message below 256 GiB");
        out.extend_from_slice(&tag);
        out
    }

    /// Inverse of [`MasterKey::seal`]; fails on any modification of the
    /// sealed bytes or the associated data.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open_into(aad, sealed, &mut out)?;
        Ok(out)
    }

    /// [`MasterKey::open`] into a buffer the caller reuses, so a restore
    /// does not allocate (and page-fault) a fresh buffer per blob.
    pub(crate) fn open_into(&self, aad: &[u8], sealed: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if open_with_into(self.as_bytes(), aad, sealed, out) {
            Ok(())
        } else {
            Err(Error::Corrupt {
                what: "ciphertext".into(),
                detail: "authentication failed (wrong key, or the data was modified)".into(),
            })
        }
    }
}

/// Seal with an explicit nonce. Only [`MasterKey::seal`], key wrapping and
/// the test vectors call it; fresh random nonces are the rule.
pub fn seal_with(key: &[u8; 32], nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_inout_detached(&XNonce::from(*nonce), aad, (&mut out[NONCE_LEN..]).into())
        .expect("XChaCha20-Poly1305 accepts any message below 256 GiB");
    out.extend_from_slice(&tag);
    out
}

/// Returns `None` when authentication fails. The plaintext is zeroed when
/// dropped: this opens key files, whose plaintext is the master key.
pub fn open_with(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    open_with_into(key, aad, sealed, &mut out).then_some(out)
}

/// Replaces `out` with the plaintext; false (and `out` cleared) when
/// authentication fails, so unauthenticated bytes never reach the caller.
fn open_with_into(key: &[u8; 32], aad: &[u8], sealed: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    if sealed.len() < SEAL_OVERHEAD {
        return false;
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    let body_end = sealed.len() - TAG_LEN;
    let (Ok(nonce), Ok(tag)) = (
        XNonce::try_from(&sealed[..NONCE_LEN]),
        Tag::try_from(&sealed[body_end..]),
    ) else {
        return false;
    };
    out.extend_from_slice(&sealed[NONCE_LEN..body_end]);
    let ok = cipher
        .decrypt_inout_detached(&nonce, aad, out.as_mut_slice().into(), &tag)
        .is_ok();
    if !ok {
        out.clear();
    }
    ok
}

/// Argon2id parameters as stored in a key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub salt: [u8; 32],
}

/// Upper bounds a reader enforces before running Argon2, and the most that
/// `snap init` and `snap key add` create, so a hostile key file cannot make
/// an unlock allocate more than 1 GiB. The old bound of 4 GiB let a planted
/// key file take 4.2 GB and 6 s per unlock.
pub(crate) const KDF_MAX_MEMORY_KIB: u32 = 1024 * 1024;
pub(crate) const KDF_MAX_ITERATIONS: u32 = 64;
pub(crate) const KDF_MAX_PARALLELISM: u32 = 16;
/// The most work one key may ask for, in KiB-passes (memory × iterations):
/// 4 GiB-passes, 4.6 times the default's 896 MiB-passes, about 1.2 s on
/// two 2026 cores.
pub(crate) const KDF_MAX_WORK: u64 = 4 * 1024 * 1024;
/// The most Argon2 work one unlock spends across the key files it tries:
/// two keys at the maximum, or a hundred at the test suite's 1 MiB × 1.
pub(crate) const UNLOCK_WORK_BUDGET: u64 = 2 * KDF_MAX_WORK;
/// The least a key file is counted at, so that many tiny planted keys
/// also exhaust the budget rather than unlock attempts without end.
const KDF_MIN_WORK: u64 = 64 * 1024 / 2;

impl KdfParams {
    /// Defaults: 64 MiB and 14 passes, about 0.45 s of CPU per guess on a
    /// 2026 core, so each passphrase guess costs an attacker as much. 64 MiB
    /// is RFC 9106's memory-constrained choice and keeps an unlock from
    /// setting a backup's peak memory. Four lanes, as RFC 9106 recommends:
    /// an attacker guessing many passphrases gains nothing from lanes, but
    /// the user's unlock runs them on separate cores, which halves the wait
    /// on two (0.43 s to 0.25 s measured) and counts on every command.
    pub fn new_default() -> KdfParams {
        KdfParams::new(64 * 1024, 14, 4)
    }

    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> KdfParams {
        KdfParams {
            memory_kib,
            iterations,
            parallelism,
            salt: random_array(),
        }
    }

    /// What trying this key costs, in KiB-passes, as the unlock budget
    /// counts it.
    pub fn work(&self) -> u64 {
        (self.memory_kib as u64 * self.iterations as u64).max(KDF_MIN_WORK)
    }

    /// Whether these are weaker than the defaults: a key that costs an
    /// attacker less per guess than snap's own choice deserves a warning.
    pub fn weaker_than_default(&self) -> bool {
        let d = KdfParams::new_default();
        self.memory_kib < d.memory_kib || self.iterations < d.iterations
    }

    pub fn validate(&self) -> Result<()> {
        let p = self.parallelism;
        if self.memory_kib > KDF_MAX_MEMORY_KIB
            || self.memory_kib as u64 * self.iterations as u64 > KDF_MAX_WORK
            || self.iterations == 0
            || self.iterations > KDF_MAX_ITERATIONS
            || p == 0
            || p > KDF_MAX_PARALLELISM
            || self.memory_kib < 8 * p
        {
            return Err(Error::corrupt(
                "key file",
                format!(
                    "Argon2 parameters out of range (memory {} KiB, iterations {}, parallelism {p})",
                    self.memory_kib, self.iterations
                ),
            ));
        }
        Ok(())
    }

    /// The key-encryption key for `password`.
    pub fn derive(&self, password: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        self.validate()?;
        let params =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
                .map_err(|e| Error::corrupt("key file", format!("Argon2 parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(password, &self.salt, out.as_mut())
            .map_err(|e| Error::Other(format!("Argon2: {e}")))?;
        Ok(out)
    }
}

/// The secret that names blobs. Keyed, so storage cannot tell whether it
/// holds a chunk of a file it already knows.
#[derive(Clone)]
pub struct IdKey(Zeroizing<[u8; 32]>);

impl IdKey {
    pub fn from_bytes(bytes: [u8; 32]) -> IdKey {
        IdKey(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn blob_id(&self, plaintext: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.0, plaintext).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"aad", b"hello");
        assert_eq!(key.open(b"aad", &sealed).unwrap(), b"hello");
        assert!(key.open(b"other", &sealed).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(key.open(b"aad", &bad).is_err(), "flip at {i} not detected");
        }
        assert!(key.open(b"aad", &sealed[..10]).is_err());
    }

    #[test]
    fn kdf_rejects_hostile_parameters() {
        let mut p = KdfParams::new(8, 1, 1);
        assert!(p.derive(b"x").is_ok());
        p.memory_kib = u32::MAX;
        assert!(p.derive(b"x").is_err());
        p.memory_kib = 8;
        p.iterations = 1000;
        assert!(p.derive(b"x").is_err());
        // The lower bounds: at least one pass and one lane, 8 KiB a lane.
        for (m, t, par) in [(64, 0, 1), (64, 1, 0), (31, 1, 4)] {
            assert!(
                KdfParams::new(m, t, par).validate().is_err(),
                "{m} {t} {par}"
            );
        }
        assert!(KdfParams::new(32, 1, 4).validate().is_ok());
        // Each bound alone is met, the product is not.
        let p = KdfParams::new(KDF_MAX_MEMORY_KIB, 8, 1);
        assert!(p.validate().is_err());
        assert!(KdfParams::new_default().validate().is_ok());
        assert!(KdfParams::new_default().work() * 4 < KDF_MAX_WORK);
    }
}
