//! Reading blobs back out of packs: the one place that fetches pack bytes,
//! cuts blobs out of them and verifies each one. Tree loading, restore,
//! prune's repack and check's read-data all come through here, so a blob
//! is never used before its authentication tag, its length and its id
//! have been checked, whichever command reads it.
//!
//! Two ways in, as restic's `LoadBlobsFromPack` offers them:
//! - [`Fetcher::ranges`] reads only the blobs wanted, in coalesced range
//!   requests ([`runs`]). Restores and tree loads use it.
//! - [`Fetcher::pack`] reads a pack whole and checks its bytes against the
//!   pack's name first. Prune and check use it: they read most of a pack
//!   anyway, and want damage outside the blobs they need found too.

use bytes::Bytes;

use crate::Id;
use crate::backend::Backend;
use crate::blob::{BlobCodec, BlobType};
use crate::codec;
use crate::error::{Error, Result};
use crate::index::{BlobLocation, IndexBlob};
use crate::object::Object;

/// Where a blob lies in its pack, and what it must decode to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub ty: BlobType,
    pub id: Id,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

impl Slot {
    pub fn located(id: Id, loc: &BlobLocation) -> Slot {
        Slot {
            ty: loc.ty,
            id,
            offset: loc.offset,
            length: loc.length,
            raw_length: loc.raw_length,
        }
    }

    pub(crate) fn span(&self) -> (u64, u64) {
        (self.offset as u64, self.length as u64)
    }

    /// Why the format's limits rule this slot out, if they do.
    fn too_long(&self) -> Option<Error> {
        let over = self.length as usize > codec::MAX_STORED_BLOB
            || self.raw_length as usize > codec::MAX_BLOB;
        over.then(|| {
            Error::corrupt(
                format!("{} {}", self.ty.name(), self.id.short()),
                format!(
                    "its index entry claims {} stored and {} plain bytes, over the blob limit",
                    self.length, self.raw_length
                ),
            )
        })
    }
}

impl From<&IndexBlob> for Slot {
    fn from(b: &IndexBlob) -> Slot {
        Slot {
            ty: b.ty,
            id: b.id,
            offset: b.offset,
            length: b.length,
            raw_length: b.raw_length,
        }
    }
}

/// A verified blob: its bytes as stored (what a cache keeps) and its
/// plaintext.
pub struct Blob<'a> {
    pub stored: &'a [u8],
    pub plain: &'a [u8],
}

/// The two buffers one worker decodes into, kept from blob to blob: a
/// restore that allocated them afresh for each blob spent its time
/// faulting in new pages.
#[derive(Default)]
pub struct Buffers {
    plain: Vec<u8>,
    scratch: Vec<u8>,
}

/// Reads and verifies blobs of one repository.
#[derive(Clone, Copy)]
pub struct Fetcher<'a> {
    backend: &'a dyn Backend,
    codec: &'a BlobCodec,
}

impl<'a> Fetcher<'a> {
    pub fn new(backend: &'a dyn Backend, codec: &'a BlobCodec) -> Fetcher<'a> {
        Fetcher { backend, codec }
    }

    /// Reads the blobs `items` of pack `pack`, given in offset order, in
    /// coalesced ranges, and calls `each` once for every item with its
    /// verified blob or the reason it could not be had. A slot longer than
    /// the format allows is refused before anything is requested: an
    /// unauthenticated record could otherwise ask for a 4 GiB range.
    /// Returns the bytes downloaded.
    pub fn ranges<T>(
        &self,
        pack: &Id,
        items: &[T],
        slot: impl Fn(&T) -> Slot,
        buffers: &mut Buffers,
        mut each: impl FnMut(&T, Result<Blob<'_>>),
    ) -> u64 {
        let span = |t: &&T| slot(t).span();
        let mut downloaded = 0;
        let mut wanted = Vec::with_capacity(items.len());
        for t in items {
            match slot(t).too_long() {
                Some(e) => each(t, Err(e)),
                None => wanted.push(t),
            }
        }
        for run in runs(wanted, span) {
            let range = run_range(&run, span);
            match self
                .backend
                .read_range(&Object::Pack.name(pack), range.clone())
            {
                Ok(bytes) => {
                    downloaded += bytes.len() as u64;
                    for t in run {
                        let s = slot(t);
                        // Items out of offset order wrap to a position
                        // outside the bytes: an error, not a panic.
                        let at = (s.offset as u64).wrapping_sub(range.start);
                        each(t, self.decode(&bytes, at, &s, buffers));
                    }
                }
                Err(e) => {
                    for t in run {
                        each(t, Err(unreadable(pack, &e)));
                    }
                }
            }
        }
        downloaded
    }

    /// Reads pack `pack` whole, checked against its name.
    pub fn pack(&self, pack: &Id) -> Result<Pack<'a>> {
        Ok(Pack {
            bytes: Object::Pack.read(self.backend, pack)?,
            fetcher: *self,
        })
    }

    /// Cuts blob `slot` out of `bytes`, which begin `at` bytes before it,
    /// and verifies it. A blob that the bytes do not hold whole is damage,
    /// not a panic: the length came from an index the bucket could forge.
    fn decode<'b>(
        &self,
        bytes: &'b [u8],
        at: u64,
        slot: &Slot,
        buffers: &'b mut Buffers,
    ) -> Result<Blob<'b>> {
        if let Some(e) = slot.too_long() {
            return Err(e);
        }
        let stored = usize::try_from(at)
            .ok()
            .and_then(|s| bytes.get(s..s.checked_add(slot.length as usize)?))
            .ok_or_else(|| {
                Error::corrupt(
                    format!("{} {}", slot.ty.name(), slot.id.short()),
                    "it lies outside the bytes its pack gave",
                )
            })?;
        self.codec.decode_into(
            slot.ty,
            &slot.id,
            stored,
            slot.raw_length,
            &mut buffers.plain,
            &mut buffers.scratch,
        )?;
        Ok(Blob {
            stored,
            plain: &buffers.plain,
        })
    }
}

fn unreadable(pack: &Id, e: &Error) -> Error {
    Error::Other(format!("pack {} cannot be read: {e}", pack.short()))
}

/// A whole pack whose bytes match its name.
pub struct Pack<'a> {
    bytes: Bytes,
    fetcher: Fetcher<'a>,
}

impl Pack<'_> {
    /// The pack's size, as read (not as a listing claims).
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The blobs the pack's own header lists.
    pub fn header(&self) -> Result<Vec<IndexBlob>> {
        crate::pack::read_header(&self.fetcher.codec.sealer, &self.bytes)
    }

    /// Calls `each` for every item with its verified blob, as
    /// [`Fetcher::ranges`] does.
    pub fn blobs<T>(
        &self,
        items: &[T],
        slot: impl Fn(&T) -> Slot,
        buffers: &mut Buffers,
        mut each: impl FnMut(&T, Result<Blob<'_>>),
    ) {
        for t in items {
            let s = slot(t);
            each(
                t,
                self.fetcher
                    .decode(&self.bytes, s.offset as u64, &s, buffers),
            );
        }
    }
}

/// Groups the needed blobs of one pack, given in offset order with `span`
/// telling each one's (offset, length), into runs that are each fetched
/// with one range request. A gap of more than a MiB between two needed
/// blobs costs more to download than a second request does; a run is held
/// in memory while its blobs are decoded, so it stops growing at 8 MiB
/// (one larger blob is a run of its own).
pub fn runs<T>(blobs: impl IntoIterator<Item = T>, span: impl Fn(&T) -> (u64, u64)) -> Vec<Vec<T>> {
    const GAP: u64 = 1 << 20;
    const MAX_RUN: u64 = 8 << 20;
    let mut out: Vec<Vec<T>> = Vec::new();
    let (mut run_start, mut end) = (0u64, 0u64);
    for blob in blobs {
        let (start, length) = span(&blob);
        let blob_end = start + length;
        match out.last_mut() {
            // Saturating: items out of offset order only make more runs.
            Some(run) if start <= end + GAP && blob_end.saturating_sub(run_start) <= MAX_RUN => {
                run.push(blob)
            }
            _ => {
                out.push(vec![blob]);
                run_start = start;
            }
        }
        end = end.max(blob_end);
    }
    out
}

/// The byte range of the pack that a run from [`runs`] covers.
pub fn run_range<T>(run: &[T], span: impl Fn(&T) -> (u64, u64)) -> std::ops::Range<u64> {
    let start = run.first().map_or(0, |b| span(b).0);
    let end = run.iter().map(|b| {
        let (o, l) = span(b);
        o + l
    });
    start..end.max().unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::StoreBackend;
    use crate::crypto::{IdKey, MasterKey};
    use crate::pack::PackBuilder;

    /// A pack of five blobs in an in-memory store, and the slots its
    /// header gives.
    fn stored_pack() -> (StoreBackend, BlobCodec, Id, Vec<Slot>, Vec<Vec<u8>>) {
        let codec = BlobCodec {
            sealer: Some(MasterKey::generate().into()),
            id_key: IdKey::from_bytes([7; 32]),
            level: 3,
        };
        let mut b = PackBuilder::default();
        let mut plains = Vec::new();
        for i in 0..5u8 {
            let plain = vec![i; 1000 + i as usize];
            let id = codec.id(&plain);
            b.add(
                BlobType::Data,
                id,
                plain.len(),
                codec.encode(BlobType::Data, &id, &plain),
            );
            plains.push(plain);
        }
        let pack = b.finish(&codec.sealer);
        let store = std::sync::Arc::new(object_store::memory::InMemory::new());
        let backend = StoreBackend::new(store, "", "memory".into()).unwrap();
        backend
            .write(&Object::Pack.name(&pack.id), pack.to_vec().into())
            .unwrap();
        let mut slots: Vec<Slot> = pack.blobs.iter().map(Slot::from).collect();
        slots.sort_by_key(|s| s.offset);
        (backend, codec, pack.id, slots, plains)
    }

    fn plain_of(plains: &[Vec<u8>], codec: &BlobCodec, id: &Id) -> Vec<u8> {
        plains.iter().find(|p| codec.id(p) == *id).unwrap().clone()
    }

    #[test]
    fn both_ways_give_every_blob_verified() {
        let (backend, codec, pack, slots, plains) = stored_pack();
        let f = Fetcher::new(&backend, &codec);
        let mut got = Vec::new();
        let n = f.ranges(
            &pack,
            &slots,
            |s| *s,
            &mut Buffers::default(),
            |s, b| got.push((s.id, b.unwrap().plain.to_vec())),
        );
        assert!(n > 0);
        let whole = f.pack(&pack).unwrap();
        let header: Vec<Slot> = whole.header().unwrap().iter().map(Slot::from).collect();
        whole.blobs(
            &header,
            |s| *s,
            &mut Buffers::default(),
            |s, b| got.push((s.id, b.unwrap().plain.to_vec())),
        );
        assert_eq!(got.len(), 10);
        for (id, plain) in got {
            assert_eq!(plain, plain_of(&plains, &codec, &id));
        }
    }

    /// An index the bucket forged can name a blob under another's id, put
    /// it past the end of its pack, or claim more than the format allows:
    /// each is an error for that blob, never a panic, and the others still
    /// arrive. The over-limit claim is refused before any request.
    #[test]
    fn forged_locations_are_errors_for_their_blob_only() {
        let (backend, codec, pack, mut slots, _) = stored_pack();
        slots[1].id = slots[2].id;
        slots[3].length += 10_000_000;
        let mut huge = slots[4];
        huge.length = u32::MAX;
        let f = Fetcher::new(&backend, &codec);
        let mut refused = None;
        let n = f.ranges(
            &pack,
            &[huge],
            |s| *s,
            &mut Buffers::default(),
            |_, b| refused = Some(b.err().unwrap().to_string()),
        );
        assert_eq!(n, 0, "nothing is downloaded for an over-limit claim");
        assert!(refused.unwrap().contains("over the blob limit"));
        let mut verdicts = Vec::new();
        f.ranges(
            &pack,
            &slots,
            |s| *s,
            &mut Buffers::default(),
            |_, b| verdicts.push(b.is_ok()),
        );
        // The far-reaching slot joins its neighbours' range, which the
        // store cuts at the pack's end: slots 3 and 4 are lost with it
        // or alone, never read past the end.
        assert_eq!(&verdicts[..3], &[true, false, true]);
        assert!(!verdicts[3]);
        let whole = f.pack(&pack).unwrap();
        let mut verdicts = Vec::new();
        whole.blobs(
            &slots,
            |s| *s,
            &mut Buffers::default(),
            |_, b| verdicts.push(b.is_ok()),
        );
        assert_eq!(verdicts, [true, false, true, false, true]);
    }

    #[test]
    fn a_whole_pack_must_match_its_name() {
        let (backend, codec, pack, _, _) = stored_pack();
        let name = Object::Pack.name(&pack);
        let mut bytes = backend.read(&name, u64::MAX).unwrap().to_vec();
        bytes[0] ^= 1;
        backend.write(&name, bytes.into()).unwrap();
        assert!(Fetcher::new(&backend, &codec).pack(&pack).is_err());
    }

    #[test]
    fn runs_join_near_blobs_and_stop_at_gaps_and_size() {
        let span = |&(o, l): &(u64, u64)| (o, l);
        let mib = 1u64 << 20;
        let blobs = [
            (0, 100),
            (200, 100),
            (300 + 2 * mib, 100),
            (400 + 2 * mib, 7 * mib),
            (500 + 9 * mib, mib),
        ];
        let r = runs(blobs, span);
        assert_eq!(r.len(), 3);
        assert_eq!(run_range(&r[0], span), 0..300);
        assert_eq!(run_range(&r[1], span), 300 + 2 * mib..400 + 9 * mib);
        assert_eq!(r[2], [(500 + 9 * mib, mib)]);
    }
}
