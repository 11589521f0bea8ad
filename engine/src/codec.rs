//! The byte-level encodings of format-spec.md sections 1 and 3: bincode with
//! fixed-width little-endian integers under an explicit byte budget, the
//! compression byte, and the envelope that wraps every object but a pack.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::keys::Keys;

pub const MIB: usize = 1024 * 1024;

/// Limits of format-spec.md section 12.
pub const MAX_SMALL_OBJECT: usize = 16 * MIB;
/// A key file is a few hundred bytes; 64 KiB leaves room for long host
/// names and bounds what planted key files can make an unlock hold.
pub(crate) const MAX_KEY_OBJECT: usize = 64 * 1024;
pub(crate) const MAX_INDEX_OBJECT: usize = 512 * MIB;
pub const MAX_INDEX_BODY: usize = 1024 * MIB;
pub(crate) const MAX_BLOB: usize = 64 * MIB;
/// A stored blob: compression byte, body no longer than the plaintext,
/// the seal's nonce and tag, and (version 3) the session's encapsulation.
pub(crate) const MAX_STORED_BLOB: usize =
    MAX_BLOB + 1 + crate::crypto::SEAL_OVERHEAD + crate::keys::ENC_LEN;
pub(crate) const MAX_PACK: usize = 1024 * MIB;
/// A pack header's body: a `PackHeader` of up to 1636801 blobs, padded
/// to a power of two.
pub(crate) const MAX_PACK_HEADER_BODY: usize = 64 * MIB;
/// A pack header envelope: a body at the limit, its compression byte, the
/// envelope header, the seal's nonce and tag and (version 3) the session's
/// encapsulation, so that the largest padded body is also a readable
/// envelope.
pub(crate) const MAX_PACK_HEADER: usize =
    MAX_PACK_HEADER_BODY + 1 + HEADER_LEN + crate::crypto::SEAL_OVERHEAD + crate::keys::ENC_LEN;

type Config =
    bincode::config::Configuration<bincode::config::LittleEndian, bincode::config::Fixint>;

fn config() -> Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

/// Deterministic encoding: the same value always gives the same bytes, which
/// is what lets an unchanged directory keep its tree id.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, config()).expect("encoding to a Vec cannot fail")
}

/// Decodes `bytes` as exactly one `T`. `LIMIT` bounds what any length field
/// may make the decoder allocate, so hostile bytes cannot exhaust memory.
pub fn decode<T: DeserializeOwned, const LIMIT: usize>(what: &str, bytes: &[u8]) -> Result<T> {
    let (value, used) = decode_prefix::<T, LIMIT>(what, bytes)?;
    if used != bytes.len() {
        return Err(Error::corrupt(
            what,
            format!("{} trailing bytes", bytes.len() - used),
        ));
    }
    Ok(value)
}

/// One `T` from the start of `bytes`, and how many bytes it took.
fn decode_prefix<T: DeserializeOwned, const LIMIT: usize>(
    what: &str,
    bytes: &[u8],
) -> Result<(T, usize)> {
    if bytes.len() > LIMIT {
        return Err(Error::corrupt(
            what,
            format!("{} bytes exceed the {LIMIT}-byte limit", bytes.len()),
        ));
    }
    bincode::serde::decode_from_slice(bytes, config().with_limit::<LIMIT>())
        .map_err(|e| Error::corrupt(what, e))
}

pub(crate) const STORED: u8 = 0;
pub const ZSTD: u8 = 1;
/// The first four bytes of a zstd frame (RFC 8878 section 3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The compression byte for `body` and, when zstd makes it shorter, the
/// frame; `None` means `body` is stored as is. Incompressible data costs
/// one byte and no decompression on restore.
pub fn compress(body: &[u8], level: i32) -> (u8, Option<Vec<u8>>) {
    if level == 0 || body.len() <= 64 {
        return (STORED, None);
    }
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    let frame = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            *slot = zstd::bulk::Compressor::new(level).ok().map(|c| (level, c));
        }
        let (_, c) = slot.as_mut()?;
        // Room for a frame one byte shorter than the body: a longer one is
        // not worth keeping, and zstd reports that it does not fit.
        let mut out = Vec::with_capacity(body.len() - 1);
        c.compress_to_buffer(body, &mut out).ok()?;
        Some(out)
    });
    match frame {
        Some(f) if f.len() < body.len() => (ZSTD, Some(f)),
        _ => (STORED, None),
    }
}

/// Compression byte plus body (format-spec.md section 3).
pub(crate) fn compress_payload(body: &[u8], level: i32) -> Vec<u8> {
    let (flag, frame) = compress(body, level);
    let data = frame.as_deref().unwrap_or(body);
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(flag);
    out.extend_from_slice(data);
    out
}

/// Inverse of [`compress_payload`]. `max_len` bounds the output; a frame
/// that would decompress to more is rejected rather than allocated.
pub fn decompress_payload(what: &str, payload: &[u8], max_len: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress_payload_into(what, payload, max_len, &mut out)?;
    Ok(out)
}

/// [`decompress_payload`] into a buffer the caller reuses; its old content
/// is replaced.
pub(crate) fn decompress_payload_into(
    what: &str,
    payload: &[u8],
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.clear();
    match payload.split_first() {
        Some((&STORED, body)) if body.len() <= max_len => {
            out.extend_from_slice(body);
            Ok(())
        }
        Some((&STORED, body)) => Err(Error::corrupt(
            what,
            format!("{} bytes exceed the limit", body.len()),
        )),
        Some((&ZSTD, frame)) => {
            // Exactly one frame, and a real one: zstd would also decompress
            // a second frame after it, or skip a skippable frame, so bytes
            // the writer never wrote could still be accepted.
            if !frame.starts_with(&ZSTD_MAGIC)
                || zstd::zstd_safe::find_frame_compressed_size(frame) != Ok(frame.len())
            {
                return Err(Error::corrupt(
                    what,
                    "payload is not exactly one zstd frame",
                ));
            }
            // The frame header may announce its size; trust it only as far as the limit.
            let cap = match zstd::zstd_safe::get_frame_content_size(frame) {
                Ok(Some(n)) if n as usize <= max_len => n as usize,
                Ok(Some(n)) => {
                    return Err(Error::corrupt(
                        what,
                        format!("frame claims {n} bytes, over the limit"),
                    ));
                }
                _ => max_len,
            };
            thread_local! {
                static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                    const { std::cell::RefCell::new(None) };
            }
            // One context per thread: creating one per blob costs more than
            // decompressing a small blob.
            DECOMPRESSOR.with(|cell| {
                let mut slot = cell.borrow_mut();
                if slot.is_none() {
                    *slot = Some(
                        zstd::bulk::Decompressor::new()
                            .map_err(|e| Error::Other(format!("zstd: {e}")))?,
                    );
                }
                let d = slot.as_mut().expect("set above");
                out.reserve(cap);
                d.decompress_to_buffer(frame, out)
                    .map_err(|e| Error::corrupt(what, format!("zstd: {e}")))?;
                // A reused buffer may hold more than `cap`: zstd fills what
                // it is given, so the limit is enforced here.
                if out.len() > max_len {
                    out.clear();
                    return Err(Error::corrupt(what, "frame decompresses past the limit"));
                }
                Ok(())
            })
        }
        Some((b, _)) => Err(Error::corrupt(
            what,
            format!("unknown compression byte {b}"),
        )),
        None => Err(Error::corrupt(what, "empty payload")),
    }
}

/// Object kinds in an envelope header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Config = 1,
    Key = 2,
    Index = 3,
    Snapshot = 4,
    PackHeader = 5,
    Lock = 6,
    Trash = 7,
    Forget = 8,
    Pruner = 9,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::Key => "key file",
            Kind::Index => "index file",
            Kind::Snapshot => "snapshot",
            Kind::PackHeader => "pack header",
            Kind::Lock => "lock",
            Kind::Trash => "trash record",
            Kind::Forget => "forget record",
            Kind::Pruner => "pruner record",
        }
    }
}

pub(crate) const MAGIC: &[u8; 4] = b"snap";
/// The envelope version writers use. Version 2 changed the bodies of index
/// files (their writer), trash records (the locks they wait for), locks
/// and pack headers (padding); every other body is the same in both.
pub(crate) const FORMAT_VERSION: u8 = 2;
/// The oldest envelope version readers still accept.
pub(crate) const OLDEST_FORMAT_VERSION: u8 = 1;
pub(crate) const HEADER_LEN: usize = 8;

/// Mode of an envelope: how its payload is sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Encrypted,
}

impl Mode {
    fn byte(self) -> u8 {
        match self {
            Mode::Plain => 0,
            Mode::Encrypted => 1,
        }
    }
}

/// The keys a repository seals with ([`Keys`]), or none in an
/// unencrypted repository.
pub type Sealer = Option<Keys>;

/// What an envelope's 8 header bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub mode: Mode,
    pub version: u8,
}

pub(crate) fn header(kind: Kind, mode: Mode) -> [u8; HEADER_LEN] {
    [
        MAGIC[0],
        MAGIC[1],
        MAGIC[2],
        MAGIC[3],
        kind as u8,
        FORMAT_VERSION,
        mode.byte(),
        0,
    ]
}

/// Reads only the 8-byte header: the mode of a config must be known before
/// a key is unlocked. The mode byte is not authenticated until the payload
/// is opened, so a plain mode is a claim, never a proof (see `repo`).
pub(crate) fn peek_mode(kind: Kind, bytes: &[u8]) -> Result<Mode> {
    Ok(peek(kind, bytes)?.mode)
}

pub(crate) fn peek(kind: Kind, bytes: &[u8]) -> Result<Header> {
    let what = kind.name();
    if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
        return Err(Error::corrupt(what, "not a snap object (bad magic)"));
    }
    if bytes[4] != kind as u8 {
        return Err(Error::corrupt(
            what,
            format!("object kind {} where {} was expected", bytes[4], kind as u8),
        ));
    }
    let version = bytes[5];
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(Error::corrupt(
            what,
            format!(
                "format version {version} is not supported by this snap (it reads versions \
                 {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"
            ),
        ));
    }
    if bytes[7] != 0 {
        return Err(Error::corrupt(what, "reserved header byte is not zero"));
    }
    let mode = match bytes[6] {
        0 => Mode::Plain,
        1 => Mode::Encrypted,
        m => return Err(Error::corrupt(what, format!("unknown mode {m}"))),
    };
    Ok(Header { mode, version })
}

/// Encodes, compresses and (with a key) seals `value` as an envelope.
pub fn seal<T: Serialize>(kind: Kind, sealer: &Sealer, value: &T) -> Vec<u8> {
    seal_bytes(kind, sealer, &encode(value))
}

pub fn seal_bytes(kind: Kind, sealer: &Sealer, body: &[u8]) -> Vec<u8> {
    seal_payload(kind, sealer, compress_payload(body, 3))
}

/// Seals `body` stored (not compressed) and followed by zero bytes up to
/// `padded_len`, so the envelope's length tells no more than `padded_len`:
/// compression would squeeze the padding out again. A reader decodes the
/// value from the start of the body and checks that only zeros follow
/// ([`decode_padded`]).
pub(crate) fn seal_padded(kind: Kind, sealer: &Sealer, body: &[u8], padded_len: usize) -> Vec<u8> {
    let mut payload = Vec::with_capacity(1 + body.len().max(padded_len));
    payload.push(STORED);
    payload.extend_from_slice(body);
    payload.resize(1 + body.len().max(padded_len), 0);
    seal_payload(kind, sealer, payload)
}

/// [`seal`] under `key` with a given nonce, for the test vectors only:
/// a nonce must never repeat under one key, so writers draw a random one.
#[doc(hidden)]
pub fn seal_with_nonce<T: Serialize>(
    kind: Kind,
    key: &MasterKey,
    nonce: &[u8; crate::crypto::NONCE_LEN],
    value: &T,
) -> Vec<u8> {
    let payload = compress_payload(&encode(value), 3);
    seal_payload_with(kind, &Some(Keys::from(key.clone())), payload, Some(nonce))
}

fn seal_payload(kind: Kind, sealer: &Sealer, payload: Vec<u8>) -> Vec<u8> {
    seal_payload_with(kind, sealer, payload, None)
}

/// The envelope of `payload`, sealed with `nonce` or, as writers do, a
/// random one.
fn seal_payload_with(
    kind: Kind,
    sealer: &Sealer,
    payload: Vec<u8>,
    nonce: Option<&[u8; crate::crypto::NONCE_LEN]>,
) -> Vec<u8> {
    let mode = if sealer.is_some() {
        Mode::Encrypted
    } else {
        Mode::Plain
    };
    let head = header(kind, mode);
    let overhead = sealer.as_ref().map_or(0, |k| k.overhead(kind));
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + overhead);
    out.extend_from_slice(&head);
    match sealer {
        Some(keys) => out.extend_from_slice(&keys.seal(kind, &head, &payload, nonce)),
        None => out.extend_from_slice(&payload),
    }
    out
}

/// Verifies, opens, decompresses and decodes an envelope. The envelope's
/// mode must match the repository's: storage cannot downgrade an encrypted
/// repository by planting plain objects.
///
/// For kinds whose body is the same in every format version; the others go
/// through [`open_versioned`].
pub fn open<T: DeserializeOwned, const LIMIT: usize>(
    kind: Kind,
    sealer: &Sealer,
    bytes: &[u8],
) -> Result<T> {
    let body = open_bytes(kind, sealer, bytes, LIMIT)?;
    decode::<T, LIMIT>(kind.name(), &body)
}

pub fn open_bytes(kind: Kind, sealer: &Sealer, bytes: &[u8], limit: usize) -> Result<Vec<u8>> {
    Ok(open_versioned(kind, sealer, bytes, limit)?.1)
}

/// The envelope's format version and its opened, decompressed body.
pub(crate) fn open_versioned(
    kind: Kind,
    sealer: &Sealer,
    bytes: &[u8],
    limit: usize,
) -> Result<(u8, Vec<u8>)> {
    let what = kind.name();
    let Header { mode, version } = peek(kind, bytes)?;
    let payload = match (mode, sealer) {
        (Mode::Encrypted, Some(keys)) => keys
            .open(kind, &bytes[..HEADER_LEN], &bytes[HEADER_LEN..])
            .map_err(|e| match e {
                Error::WriteOnlyKey(_) => e,
                _ => Error::corrupt(
                    what,
                    "authentication failed (modified, or written with another key)",
                ),
            })?,
        (Mode::Plain, None) => bytes[HEADER_LEN..].to_vec(),
        (Mode::Plain, Some(_)) => {
            return Err(Error::corrupt(
                what,
                "unencrypted object in an encrypted repository",
            ));
        }
        (Mode::Encrypted, None) => {
            return Err(Error::corrupt(
                what,
                "encrypted object in an unencrypted repository",
            ));
        }
    };
    Ok((version, decompress_payload(what, &payload, limit)?))
}

/// Decodes one `T` from the start of `body`, which may go on with zero
/// bytes only (the padding of [`seal_padded`]).
pub(crate) fn decode_padded<T: DeserializeOwned, const LIMIT: usize>(
    what: &str,
    body: &[u8],
) -> Result<T> {
    let (value, used) = decode_prefix::<T, LIMIT>(what, body)?;
    if body[used..].iter().any(|&b| b != 0) {
        return Err(Error::corrupt(what, "padding is not all zero"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let text =
            b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc"
                .repeat(10);
        let c = compress_payload(&text, 3);
        assert_eq!(c[0], ZSTD);
        assert!(c.len() < text.len());
        assert_eq!(decompress_payload("t", &c, text.len()).unwrap(), text);
        assert!(decompress_payload("t", &c, text.len() - 1).is_err());
        let mut random = vec![0u8; 1000];
        blake3::Hasher::new().finalize_xof().fill(&mut random);
        let c = compress_payload(&random, 3);
        assert_eq!(c[0], STORED);
        assert_eq!(c.len(), random.len() + 1);
    }

    #[test]
    fn a_zstd_payload_is_one_frame_and_nothing_else() {
        let text = b"one frame, one frame, one frame, one frame, one frame".repeat(20);
        let c = compress_payload(&text, 3);
        assert_eq!(c[0], ZSTD);
        let max = 2 * text.len();
        // zstd itself reads a second frame and a skippable frame happily.
        let mut two = c.clone();
        two.extend_from_slice(&c[1..]);
        let mut skippable = c.clone();
        skippable.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 1, 0, 0, 0, 7]);
        let mut junk = c.clone();
        junk.push(0);
        let mut skip_first = vec![ZSTD, 0x50, 0x2a, 0x4d, 0x18, 1, 0, 0, 0, 7];
        skip_first.extend_from_slice(&c[1..]);
        for bad in [&two, &skippable, &junk, &skip_first] {
            let err = decompress_payload("t", bad, max).unwrap_err();
            assert!(err.to_string().contains("exactly one zstd frame"), "{err}");
        }
        assert_eq!(decompress_payload("t", &c, max).unwrap(), text);
    }

    #[test]
    fn a_reused_buffer_does_not_lift_the_limit() {
        // A frame that does not announce its size, into a buffer already
        // larger than the limit: zstd would fill all of it.
        let text = vec![b'a'; 4000];
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        c.include_contentsize(false).unwrap();
        let mut payload = vec![ZSTD];
        payload.extend(c.compress(&text).unwrap());
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(b"left over");
        let err = decompress_payload_into("t", &payload, 1000, &mut out).unwrap_err();
        assert!(err.to_string().contains("past the limit"), "{err}");
        assert!(out.is_empty());
        decompress_payload_into("t", &payload, 4000, &mut out).unwrap();
        assert_eq!(out, text);
    }

    #[test]
    fn envelope_rejects_downgrade_and_kind_swap() {
        let key: Sealer = Some(MasterKey::generate().into());
        let sealed = seal(Kind::Snapshot, &key, &42u64);
        assert_eq!(open::<u64, 100>(Kind::Snapshot, &key, &sealed).unwrap(), 42);
        assert!(open::<u64, 100>(Kind::Index, &key, &sealed).is_err());
        let mut swapped = sealed.clone();
        swapped[4] = Kind::Index as u8;
        assert!(open::<u64, 100>(Kind::Index, &key, &swapped).is_err());
        let plain = seal(Kind::Snapshot, &None, &42u64);
        assert!(open::<u64, 100>(Kind::Snapshot, &key, &plain).is_err());
    }

    #[test]
    fn decode_bounds_allocation() {
        // A vec claiming 2^60 elements must fail without allocating.
        let mut bytes = vec![0u8; 8];
        bytes[7] = 0x10;
        assert!(decode::<Vec<u64>, 1024>("t", &bytes).is_err());
        assert!(decode::<String, 1024>("t", &bytes).is_err());
        // Trailing bytes are rejected.
        assert!(decode::<u8, 16>("t", &[1, 2]).is_err());
    }
}
