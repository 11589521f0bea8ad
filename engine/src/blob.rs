//! The blob encoder: plaintext chunk or tree in, stored bytes out, and back.
//! Decoding verifies the plaintext against its id, so nothing read from
//! storage is used before it is proven to be what was written.

use serde::{Deserialize, Serialize};

use crate::codec::{self, Sealer};
use crate::crypto::IdKey;
use crate::error::{Error, Result};
use crate::id::Id;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum BlobType {
    Data,
    Tree,
}

impl From<BlobType> for u8 {
    fn from(t: BlobType) -> u8 {
        match t {
            BlobType::Data => 0,
            BlobType::Tree => 1,
        }
    }
}

impl TryFrom<u8> for BlobType {
    type Error = String;
    fn try_from(b: u8) -> std::result::Result<Self, String> {
        match b {
            0 => Ok(BlobType::Data),
            1 => Ok(BlobType::Tree),
            _ => Err(format!("unknown blob type {b}")),
        }
    }
}

impl BlobType {
    pub fn name(self) -> &'static str {
        match self {
            BlobType::Data => "data blob",
            BlobType::Tree => "tree blob",
        }
    }
}

const BLOB_AAD_PREFIX: &[u8; 12] = b"snap-blob-v1";

fn blob_aad(ty: BlobType, id: &Id) -> [u8; 45] {
    let mut aad = [0u8; 45];
    aad[..12].copy_from_slice(BLOB_AAD_PREFIX);
    aad[12] = ty.into();
    aad[13..].copy_from_slice(&id.0);
    aad
}

/// Everything needed to turn plaintext into stored blobs and back.
#[derive(Clone)]
pub struct BlobCodec {
    pub sealer: Sealer,
    pub id_key: IdKey,
    pub level: i32,
}

impl BlobCodec {
    pub fn id(&self, plaintext: &[u8]) -> Id {
        self.id_key.blob_id(plaintext)
    }

    pub fn encode(&self, ty: BlobType, id: &Id, plaintext: &[u8]) -> Vec<u8> {
        self.encode_with(ty, id, plaintext, None)
    }

    /// [`BlobCodec::encode`] with a given nonce, for the test vectors only:
    /// a nonce must never repeat under one key, so writers draw a random one.
    #[doc(hidden)]
    pub fn encode_with_nonce(
        &self,
        ty: BlobType,
        id: &Id,
        plaintext: &[u8],
        nonce: &[u8; crate::crypto::NONCE_LEN],
    ) -> Vec<u8> {
        self.encode_with(ty, id, plaintext, Some(nonce))
    }

    fn encode_with(
        &self,
        ty: BlobType,
        id: &Id,
        plaintext: &[u8],
        nonce: Option<&[u8; crate::crypto::NONCE_LEN]>,
    ) -> Vec<u8> {
        let (flag, frame) = codec::compress(plaintext, self.level);
        let data = frame.as_deref().unwrap_or(plaintext);
        match &self.sealer {
            Some(keys) => keys.seal_blob(nonce, &blob_aad(ty, id), flag, data),
            None => {
                let mut out = Vec::with_capacity(data.len() + 1);
                out.push(flag);
                out.extend_from_slice(data);
                out
            }
        }
    }

    /// The codec of this device's own copy of a tree: the stored form,
    /// except on a write-only device, which cannot open what it stored and
    /// so keeps each tree it writes or reuses sealed under its local record
    /// key ([`crate::keys`]). Its next backup compares files with them.
    pub(crate) fn local(&self) -> Option<BlobCodec> {
        let keys = self.sealer.as_ref()?;
        (keys.access() == crate::keys::Access::WriteOnly).then(|| BlobCodec {
            sealer: Some(keys.local_record_key().into()),
            id_key: self.id_key.clone(),
            level: self.level,
        })
    }

    /// Opens, decompresses and verifies a stored blob. `raw_length` comes
    /// from the index and bounds the allocation.
    pub fn decode(&self, ty: BlobType, id: &Id, stored: &[u8], raw_length: u32) -> Result<Vec<u8>> {
        let mut plain = Vec::new();
        self.decode_into(ty, id, stored, raw_length, &mut plain, &mut Vec::new())?;
        Ok(plain)
    }

    /// [`BlobCodec::decode`] into `plain`, with `scratch` for the opened
    /// payload. Both are the caller's to reuse from blob to blob: a restore
    /// that allocated them afresh spent its time faulting in new pages. On
    /// error `plain` holds nothing that was not verified.
    pub(crate) fn decode_into(
        &self,
        ty: BlobType,
        id: &Id,
        stored: &[u8],
        raw_length: u32,
        plain: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        self.decode_checked(ty, id, stored, Some(raw_length), plain, scratch)
    }

    /// [`BlobCodec::decode`] of a blob whose length no index gives (a
    /// write-only device's own tree, written in this very backup): bounded
    /// by the blob limit, verified against its id.
    pub(crate) fn decode_unindexed(&self, ty: BlobType, id: &Id, stored: &[u8]) -> Result<Vec<u8>> {
        let mut plain = Vec::new();
        self.decode_checked(ty, id, stored, None, &mut plain, &mut Vec::new())?;
        Ok(plain)
    }

    fn decode_checked(
        &self,
        ty: BlobType,
        id: &Id,
        stored: &[u8],
        indexed: Option<u32>,
        plain: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        plain.clear();
        let what = || format!("{} {}", ty.name(), id.short());
        let raw_length = indexed.map_or(codec::MAX_BLOB, |n| n as usize);
        if raw_length > codec::MAX_BLOB {
            return Err(Error::corrupt(
                what(),
                format!("length {raw_length} exceeds the blob limit"),
            ));
        }
        let payload = match &self.sealer {
            Some(keys) => {
                keys.open_blob_into(&blob_aad(ty, id), stored, scratch)
                    .map_err(|e| match e {
                        Error::WriteOnlyKey(_) => e,
                        _ => Error::corrupt(what(), "authentication failed"),
                    })?;
                &scratch[..]
            }
            None => stored,
        };
        codec::decompress_payload_into(&what(), payload, raw_length, plain)?;
        let verdict = if indexed.is_some() && plain.len() != raw_length {
            Some(format!(
                "{} bytes where {raw_length} were indexed",
                plain.len()
            ))
        } else if self.id(plain) != *id {
            Some("content does not match its id".to_string())
        } else {
            None
        };
        match verdict {
            Some(detail) => {
                plain.clear();
                Err(Error::corrupt(what(), detail))
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn codec(encrypted: bool) -> BlobCodec {
        BlobCodec {
            sealer: encrypted.then(|| MasterKey::generate().into()),
            id_key: IdKey::from_bytes([7; 32]),
            level: 3,
        }
    }

    #[test]
    fn round_trip_and_binding() {
        for enc in [true, false] {
            let c = codec(enc);
            let data = b"some file content, some file content".repeat(20);
            let id = c.id(&data);
            let stored = c.encode(BlobType::Data, &id, &data);
            assert_eq!(
                c.decode(BlobType::Data, &id, &stored, data.len() as u32)
                    .unwrap(),
                data
            );
            // Wrong type or id is rejected (AAD when encrypted, id check otherwise).
            assert!(
                c.decode(BlobType::Tree, &id, &stored, data.len() as u32)
                    .is_err()
                    || !enc
            );
            let other = c.id(b"x");
            assert!(
                c.decode(BlobType::Data, &other, &stored, data.len() as u32)
                    .is_err()
            );
            let mut bad = stored.clone();
            let n = bad.len() / 2;
            bad[n] ^= 0x40;
            assert!(
                c.decode(BlobType::Data, &id, &bad, data.len() as u32)
                    .is_err()
            );
        }
    }

    #[test]
    fn decode_into_reuses_buffers_and_leaves_nothing_unverified() {
        for enc in [true, false] {
            let c = codec(enc);
            let (mut plain, mut scratch) = (Vec::new(), Vec::new());
            let big = b"a longer blob, a longer blob".repeat(100);
            let small = b"short".to_vec();
            for data in [&big, &small, &big] {
                let id = c.id(data);
                let stored = c.encode(BlobType::Data, &id, data);
                c.decode_into(
                    BlobType::Data,
                    &id,
                    &stored,
                    data.len() as u32,
                    &mut plain,
                    &mut scratch,
                )
                .unwrap();
                assert_eq!(&plain, data);
            }
            // A failure after a success must not leave the old blob behind.
            let id = c.id(&small);
            let stored = c.encode(BlobType::Data, &id, &small);
            let wrong = c.id(b"other");
            assert!(
                c.decode_into(BlobType::Data, &wrong, &stored, 5, &mut plain, &mut scratch)
                    .is_err()
            );
            assert!(plain.is_empty());
        }
    }
}
