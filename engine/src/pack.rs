//! Packs: many stored blobs in one object, so a backup of a million small
//! chunks is a few hundred uploads, with an encrypted header that lets a pack
//! be re-indexed from its own bytes.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::blob::BlobType;
use crate::codec::{self, Kind, Sealer};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::IndexBlob;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackBlob {
    pub ty: BlobType,
    pub id: Id,
    pub length: u32,
    pub raw_length: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackHeader {
    pub blobs: Vec<PackBlob>,
    /// Random bytes after the last blob (format version 2): they pad a
    /// backup's last, small packs, so such a pack does not show the exact
    /// length of the one or few blobs in it.
    pub padding: u32,
}

/// A pack header body of format version 1.
#[derive(Deserialize)]
struct PackHeaderV1 {
    blobs: Vec<PackBlob>,
}

/// The header body is padded to this many bytes at least, and to a power
/// of two beyond: its length, which the pack's last four bytes give away,
/// then tells the blob count of a 16 MiB pack (about 16 blobs of 41 bytes)
/// not at all, and of any pack only to within a factor of two.
pub(crate) const HEADER_PAD_MIN: usize = 4096;

/// The most blobs a writer puts in one pack. A backup's last pack joins a
/// data and a tree pack, so up to twice this: 2^20 blobs of 41 bytes in
/// the header, which pads to 64 MiB, the limit of a header body. Only
/// tiny blobs stored without encryption (a 16 MiB pack of 3-byte files)
/// come near it; a header over the limit would make its pack unreadable.
pub(crate) const MAX_PACK_BLOBS: usize = 1 << 19;

/// Padmé (Nikitin et al., 2019): rounds `len` up so that only
/// O(log log len) bits of it remain, at most 12% more.
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - len.leading_zeros() as u64;
    let s = 64 - e.leading_zeros() as u64;
    let mask = (1u64 << (e - s)) - 1;
    (len + mask) & !mask
}

/// The blob data of a pack that a packer closes early (the last ones of a
/// backup) is padded to this many bytes at least, then by [`padme`]. 64
/// KiB: a one-line change to a file then shows as "under 64 KiB".
pub(crate) const FLUSH_PAD_MIN: u64 = 64 * 1024;

/// Default size at which a pack is closed. Large enough that a terabyte is
/// tens of thousands of objects, small enough to hold in memory while
/// several upload at once.
pub(crate) const DEFAULT_PACK_SIZE: usize = 16 * codec::MIB;

/// Path of a pack object.
pub(crate) fn pack_path(id: &Id) -> String {
    crate::object::Object::Pack.name(id)
}

/// A pack being filled, held in memory until it is closed.
#[derive(Default)]
pub struct PackBuilder {
    blobs: Vec<(PackBlob, Vec<u8>)>,
    size: usize,
}

/// A closed pack: its name, its bytes and where each blob sits in it. The
/// bytes stay in the pieces they were made in; concatenating them would
/// hold every pack in memory twice.
pub struct FinishedPack {
    pub id: Id,
    pub parts: Vec<bytes::Bytes>,
    pub size: usize,
    pub blobs: Vec<IndexBlob>,
}

impl FinishedPack {
    /// The whole pack in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts.concat()
    }
}

impl PackBuilder {
    pub fn add(&mut self, ty: BlobType, id: Id, raw_length: usize, stored: Vec<u8>) {
        self.size += stored.len();
        let blob = PackBlob {
            ty,
            id,
            length: stored.len() as u32,
            raw_length: raw_length as u32,
        };
        self.blobs.push((blob, stored));
    }

    /// Bytes of blob data so far.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the pack should be closed: it holds `target` bytes of blob
    /// data, or [`MAX_PACK_BLOBS`] blobs.
    pub(crate) fn is_full(&self, target: usize) -> bool {
        self.size >= target || self.blobs.len() >= MAX_PACK_BLOBS
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Takes in the blobs of another builder: a backup's last data and tree
    /// blobs go into one pack rather than two small ones.
    pub(crate) fn absorb(&mut self, other: PackBuilder) {
        self.size += other.size;
        self.blobs.extend(other.blobs);
    }

    /// [`PackBuilder::finish`] for a pack closed before it is full: its blob
    /// data is padded with random bytes to [`FLUSH_PAD_MIN`], then to its
    /// [`padme`] size.
    pub(crate) fn finish_padded(self, sealer: &Sealer) -> FinishedPack {
        let size = self.size as u64;
        let padding = padme(size.max(FLUSH_PAD_MIN)) - size;
        self.finish_with(sealer, padding as usize)
    }

    /// Lays the blobs out in random order, so the pack does not reveal the
    /// order in which files were read, and appends the sealed header.
    pub fn finish(self, sealer: &Sealer) -> FinishedPack {
        self.finish_with(sealer, 0)
    }

    fn finish_with(mut self, sealer: &Sealer, padding: usize) -> FinishedPack {
        self.blobs.shuffle(&mut rand::rng());
        let header = PackHeader {
            blobs: self.blobs.iter().map(|(b, _)| b.clone()).collect(),
            padding: padding as u32,
        };
        let header_bytes = seal_header(sealer, &header);
        let mut parts = Vec::with_capacity(self.blobs.len() + 2);
        let mut blobs = Vec::with_capacity(self.blobs.len());
        let mut offset = 0usize;
        let mut hasher = blake3::Hasher::new();
        for (b, stored) in self.blobs {
            blobs.push(IndexBlob {
                ty: b.ty,
                id: b.id,
                offset: offset as u32,
                length: b.length,
                raw_length: b.raw_length,
            });
            offset += stored.len();
            hasher.update(&stored);
            parts.push(bytes::Bytes::from(stored));
        }
        if padding > 0 {
            // Random, like the ciphertext around it: zeros would show where
            // the blobs end.
            let mut fill = vec![0u8; padding];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut fill);
            offset += fill.len();
            hasher.update(&fill);
            parts.push(bytes::Bytes::from(fill));
        }
        let trailer = (header_bytes.len() as u32).to_le_bytes();
        hasher.update(&header_bytes);
        hasher.update(&trailer);
        let size = offset + header_bytes.len() + trailer.len();
        parts.push(bytes::Bytes::from(header_bytes));
        parts.push(bytes::Bytes::copy_from_slice(&trailer));
        FinishedPack {
            id: Id(*hasher.finalize().as_bytes()),
            parts,
            size,
            blobs,
        }
    }
}

/// The header envelope of a pack: stored, not compressed, and padded with
/// zeros to [`HEADER_PAD_MIN`] bytes or the next power of two.
pub fn seal_header(sealer: &Sealer, header: &PackHeader) -> Vec<u8> {
    let body = codec::encode(header);
    let padded = body.len().max(HEADER_PAD_MIN).next_power_of_two();
    codec::seal_padded(Kind::PackHeader, sealer, &body, padded)
}

/// Reads a whole pack's header and checks that its blobs tile the pack.
/// The caller verifies the pack's hash against its name.
pub fn read_header(sealer: &Sealer, pack: &[u8]) -> Result<Vec<IndexBlob>> {
    let what = "pack";
    if pack.len() < 4 || pack.len() > codec::MAX_PACK {
        return Err(Error::corrupt(
            what,
            format!("size {} out of range", pack.len()),
        ));
    }
    let header_len = u32::from_le_bytes(pack[pack.len() - 4..].try_into().unwrap()) as usize;
    if header_len > codec::MAX_PACK_HEADER || header_len > pack.len() - 4 {
        return Err(Error::corrupt(
            what,
            format!("header length {header_len} out of range"),
        ));
    }
    let data_len = pack.len() - 4 - header_len;
    const LIMIT: usize = codec::MAX_PACK_HEADER_BODY;
    let (version, body) = codec::open_versioned(
        Kind::PackHeader,
        sealer,
        &pack[data_len..pack.len() - 4],
        LIMIT,
    )?;
    let header = if version == 1 {
        let v1: PackHeaderV1 = codec::decode::<_, LIMIT>("pack header", &body)?;
        PackHeader {
            blobs: v1.blobs,
            padding: 0,
        }
    } else {
        codec::decode_padded::<PackHeader, LIMIT>("pack header", &body)?
    };
    let mut offset: u64 = 0;
    let mut out = Vec::with_capacity(header.blobs.len());
    for b in header.blobs {
        out.push(IndexBlob {
            ty: b.ty,
            id: b.id,
            offset: offset as u32,
            length: b.length,
            raw_length: b.raw_length,
        });
        offset += b.length as u64;
    }
    if offset + header.padding as u64 != data_len as u64 {
        return Err(Error::corrupt(
            what,
            format!(
                "header lists {offset} bytes of blobs and {} of padding, pack holds {data_len}",
                header.padding
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_read_back() {
        for sealer in [None, Some(crate::crypto::MasterKey::generate().into())] {
            let mut b = PackBuilder::default();
            for i in 0..20u8 {
                b.add(BlobType::Data, Id([i; 32]), 100, vec![i; 50 + i as usize]);
            }
            let p = b.finish(&sealer);
            let bytes = p.to_vec();
            assert_eq!(bytes.len(), p.size);
            assert_eq!(p.id, Id::of_bytes(&bytes));
            let blobs = read_header(&sealer, &bytes).unwrap();
            assert_eq!(blobs, p.blobs);
            for ib in &blobs {
                let s = &bytes[ib.offset as usize..(ib.offset + ib.length) as usize];
                assert!(s.iter().all(|&x| x == ib.id.0[0]));
            }
            // Order is shuffled, not insertion order (20! orders; equal by chance ~never).
            let order: Vec<u8> = blobs.iter().map(|b| b.id.0[0]).collect();
            assert_ne!(order, (0..20).collect::<Vec<u8>>());
            let mut cut = bytes.clone();
            let n = cut.len();
            cut[n - 1] = 0xff;
            assert!(read_header(&sealer, &cut).is_err());
        }
    }

    #[test]
    fn header_length_hides_the_blob_count_and_padding_hides_a_small_blob() {
        let sealer = Some(crate::crypto::MasterKey::generate().into());
        let pack = |blobs: &[usize], padded: bool| {
            let mut b = PackBuilder::default();
            for (i, &len) in blobs.iter().enumerate() {
                b.add(BlobType::Data, Id([i as u8; 32]), len, vec![1; len]);
            }
            let p = if padded {
                b.finish_padded(&sealer)
            } else {
                b.finish(&sealer)
            };
            let bytes = p.to_vec();
            assert_eq!(read_header(&sealer, &bytes).unwrap(), p.blobs);
            let header_len = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
            (bytes.len(), header_len)
        };
        // One blob or sixty: the same header length.
        assert_eq!(pack(&[6000], false).1, pack(&[100; 60], false).1);
        // A 100-byte and a 5000-byte last pack look alike.
        assert_eq!(pack(&[100], true), pack(&[5000], true));
        // Padding is rejected where the header does not account for it.
        let mut b = PackBuilder::default();
        b.add(BlobType::Data, Id([1; 32]), 10, vec![1; 10]);
        let mut bytes = b.finish_padded(&sealer).to_vec();
        bytes.insert(0, 0);
        assert!(read_header(&sealer, &bytes).is_err());
    }

    #[test]
    fn the_largest_header_a_writer_makes_is_readable() {
        // The smallest blobs there are, one stored byte each, without
        // encryption (encrypted blobs are 41 bytes at least).
        let fill = |n: usize| {
            let mut b = PackBuilder::default();
            for i in 0..n {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&(i as u64).to_le_bytes());
                b.add(BlobType::Data, Id(id), 0, vec![0]);
            }
            b
        };
        let mut b = fill(MAX_PACK_BLOBS - 1);
        assert!(!b.is_full(DEFAULT_PACK_SIZE));
        // A data and a tree builder just short of full, joined as at the
        // end of a backup.
        b.absorb(fill(MAX_PACK_BLOBS - 1));
        let p = b.finish_padded(&None);
        let bytes = p.to_vec();
        let header_len = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
        // Sealed to a content key (version 3), it would be 72 bytes
        // longer: exactly the limit.
        let sealed = header_len as usize + crate::crypto::SEAL_OVERHEAD + crate::keys::ENC_LEN;
        assert_eq!(sealed, codec::MAX_PACK_HEADER);
        assert_eq!(read_header(&None, &bytes).unwrap().len(), p.blobs.len());
        let mut one_more = fill(MAX_PACK_BLOBS - 1);
        one_more.add(BlobType::Data, Id([0xff; 32]), 0, vec![0]);
        assert!(one_more.is_full(DEFAULT_PACK_SIZE));
    }

    #[test]
    fn padme_rounds_up_by_at_most_twelve_percent() {
        for len in [2u64, 3, 100, 4097, 65536, 70000, 1 << 24, (1 << 24) + 12345] {
            let p = padme(len);
            assert!(
                p >= len && (p - len) as f64 <= 0.12 * len as f64,
                "{len} -> {p}"
            );
        }
        assert_eq!(padme(1 << 20), 1 << 20);
    }
}
