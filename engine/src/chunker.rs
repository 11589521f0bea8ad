//! Content-defined chunking with FastCDC 2020. Cut points depend on content,
//! so an insertion shifts only the chunks around it; a gear table derived
//! from the repository's id key keeps the boundaries of known content from
//! storage.
//!
//! Why a whole table: fastcdc's seed XORs one 64-bit value into the crate's
//! public table, and only about 49 of its bits matter; six chunk lengths of
//! a known 12 MiB file recovered it in 36 s. A table of 256 values drawn
//! from a keyed BLAKE3 stream (as borg 2 does) leaves no such shortcut.
//! It is harder, not proven hard: the gear hash is linear enough that many
//! cut points of known content still constrain the table (IACR eprint
//! 2025/558), so packs and headers also hide blob lengths (`pack`).

use std::io::Read;

use fastcdc::v2020::{Normalization, cut_gear, get_gear_with_seed, select_masks};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
    /// Used by config version 1 only (XORed into fastcdc's table); version
    /// 2 derives the table from the id key. Never 0.
    pub seed: u64,
}

impl ChunkerParams {
    pub(crate) const DEFAULT_MIN: u32 = 512 * 1024;
    pub(crate) const DEFAULT_AVG: u32 = 1024 * 1024;
    pub(crate) const DEFAULT_MAX: u32 = 8 * 1024 * 1024;

    /// Default sizes with a fresh random seed.
    pub fn generate() -> ChunkerParams {
        Self::with_sizes(Self::DEFAULT_MIN, Self::DEFAULT_AVG, Self::DEFAULT_MAX)
    }

    pub(crate) fn with_sizes(min_size: u32, avg_size: u32, max_size: u32) -> ChunkerParams {
        let mut seed = 0;
        while seed == 0 {
            seed = u64::from_le_bytes(crate::crypto::random_array());
        }
        ChunkerParams {
            min_size,
            avg_size,
            max_size,
            seed,
        }
    }

    /// FastCDC 2020's own bounds; outside them the crate's behaviour is not
    /// defined, so a config that asks for them is refused.
    pub fn validate(&self) -> Result<()> {
        use fastcdc::v2020::{
            AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN,
        };
        let (min, avg, max) = (
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
        );
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&max)
            && min <= avg
            && avg <= max
            && min % 2 == 0
            && avg % 2 == 0
            && max % 2 == 0
            && self.seed != 0;
        if ok {
            Ok(())
        } else {
            Err(Error::corrupt(
                "config",
                format!("chunker sizes out of range: min {min}, avg {avg}, max {max}"),
            ))
        }
    }
}

/// The context string of the gear table's key derivation (format-spec.md
/// section 13).
pub(crate) const GEAR_CONTEXT: &str = "snap 2026-11 FastCDC gear table v2";

/// A chunker ready to cut: sizes, masks and the two gear tables.
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    masks: [u64; 4],
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
}

/// The gear table is as secret as the id key it comes from.
impl Drop for Chunker {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.gear[..]);
        zeroize::Zeroize::zeroize(&mut self.gear_ls[..]);
    }
}

impl Chunker {
    /// Config version 2: `gear[i]` is the i-th little-endian u64 of the
    /// BLAKE3 output stream keyed with `derive_key(GEAR_CONTEXT, id_key)`,
    /// and `gear_ls[i] = gear[i] << 1`, as fastcdc builds its own twin.
    pub fn keyed(params: &ChunkerParams, id_key: &[u8; 32]) -> Chunker {
        let key = zeroize::Zeroizing::new(blake3::derive_key(GEAR_CONTEXT, id_key));
        let mut stream = blake3::Hasher::new_keyed(&key).finalize_xof();
        let mut bytes = zeroize::Zeroizing::new([0u8; 256 * 8]);
        stream.fill(&mut bytes[..]);
        let mut gear = Box::new([0u64; 256]);
        for (g, b) in gear.iter_mut().zip(bytes.chunks_exact(8)) {
            *g = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
        let mut gear_ls = Box::new([0u64; 256]);
        for (l, g) in gear_ls.iter_mut().zip(gear.iter()) {
            *l = g << 1;
        }
        Self::with_tables(params, gear, gear_ls)
    }

    /// Config version 1: fastcdc's table with the seed XORed in.
    pub fn legacy(params: &ChunkerParams) -> Chunker {
        let (gear, gear_ls) = get_gear_with_seed(params.seed);
        let table = |t: &[u64]| Box::new(<[u64; 256]>::try_from(t).expect("256 entries"));
        Self::with_tables(params, table(&gear), table(&gear_ls))
    }

    fn with_tables(
        params: &ChunkerParams,
        gear: Box<[u64; 256]>,
        gear_ls: Box<[u64; 256]>,
    ) -> Chunker {
        let (mask_s, mask_l) = select_masks(params.avg_size as usize, Normalization::Level1);
        Chunker {
            min: params.min_size as usize,
            avg: params.avg_size as usize,
            max: params.max_size as usize,
            masks: [mask_s, mask_l, mask_s << 1, mask_l << 1],
            gear,
            gear_ls,
        }
    }

    /// The gear table, for the test vectors (format-spec.md section 14).
    #[doc(hidden)]
    pub fn gear(&self) -> &[u64; 256] {
        &self.gear
    }

    pub fn max_size(&self) -> usize {
        self.max
    }

    /// Length of the chunk at the start of `data` (all of it when short).
    fn cut(&self, data: &[u8]) -> usize {
        let [s, l, s_ls, l_ls] = self.masks;
        cut_gear(
            data,
            self.min,
            self.avg,
            self.max,
            s,
            l,
            s_ls,
            l_ls,
            &self.gear[..],
            &self.gear_ls[..],
        )
        .1
    }

    /// Cut points of data in memory, as `(offset, length)`: the same as
    /// [`Chunker::chunks`] gives for the same bytes.
    pub(crate) fn cuts(&self, data: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(data.len() / self.avg + 1);
        let mut offset = 0;
        while offset < data.len() {
            let n = self.cut(&data[offset..]);
            out.push((offset, n));
            offset += n;
        }
        out
    }

    /// Chunks of `reader`, each at most `max_size` bytes. Memory is one
    /// buffer of `max_size`, however large the file, and what is left after
    /// a cut moves to its front, as fastcdc's `StreamCDC` does. A buffer of
    /// twice that, moved once per `max_size` consumed, was no faster on the
    /// compare data (3.90 s against 3.92 s for a first backup) and raised
    /// the backup's peak memory from 95 to 115 MB, several large files
    /// being read at once.
    pub fn chunks<'a, R: Read + 'a>(
        &'a self,
        reader: R,
    ) -> impl Iterator<Item = std::io::Result<Vec<u8>>> + 'a {
        Stream {
            chunker: self,
            reader,
            buf: vec![0; self.max],
            start: 0,
            end: 0,
            eof: false,
        }
    }
}

struct Stream<'a, R> {
    chunker: &'a Chunker,
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> Stream<'_, R> {
    /// Fills the buffer until it holds `max` bytes past `start`, or the
    /// file ends: a cut looks at no more than that.
    fn fill(&mut self) -> std::io::Result<()> {
        let max = self.chunker.max;
        if self.end - self.start >= max || self.eof {
            return Ok(());
        }
        if self.start + max > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < max {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: Read> Iterator for Stream<'_, R> {
    type Item = std::io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.fill() {
            return Some(Err(e));
        }
        if self.start == self.end {
            return None;
        }
        let n = self.chunker.cut(&self.buf[self.start..self.end]);
        let chunk = self.buf[self.start..self.start + n].to_vec();
        self.start += n;
        Some(Ok(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_reassemble_and_respect_bounds() {
        let p = Chunker::keyed(&ChunkerParams::with_sizes(1024, 4096, 16384), &[7; 32]);
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        let chunks: Vec<Vec<u8>> = p.chunks(&data[..]).map(|c| c.unwrap()).collect();
        assert!(chunks.len() > 10);
        assert_eq!(chunks.concat(), data);
        for c in &chunks[..chunks.len() - 1] {
            assert!(c.len() >= 1024 && c.len() <= 16384);
        }
    }

    #[test]
    fn in_memory_and_streaming_cut_alike() {
        let p = Chunker::keyed(&ChunkerParams::with_sizes(1024, 4096, 16384), &[7; 32]);
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        for len in [0usize, 10, 1024, 5000, 16384, 16385, 100_000, 200_000] {
            let streamed: Vec<Vec<u8>> = p.chunks(&data[..len]).map(|c| c.unwrap()).collect();
            let cut: Vec<Vec<u8>> = p
                .cuts(&data[..len])
                .into_iter()
                .map(|(o, l)| data[o..o + l].to_vec())
                .collect();
            assert_eq!(streamed, cut, "length {len}");
        }
    }

    #[test]
    fn key_changes_boundaries_and_legacy_matches_fastcdc() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        let params = ChunkerParams {
            seed: 1,
            ..ChunkerParams::with_sizes(1024, 4096, 16384)
        };
        let lens = |c: &Chunker| -> Vec<usize> { c.cuts(&data).iter().map(|c| c.1).collect() };
        let (a, b) = (
            Chunker::keyed(&params, &[1; 32]),
            Chunker::keyed(&params, &[2; 32]),
        );
        assert_ne!(lens(&a), lens(&b));
        // Version 1 cuts exactly where fastcdc's own seeded chunker does.
        let fastcdc: Vec<usize> = fastcdc::v2020::FastCDC::with_level_and_seed(
            &data,
            1024,
            4096,
            16384,
            Normalization::Level1,
            1,
        )
        .map(|c| c.length)
        .collect();
        assert_eq!(lens(&Chunker::legacy(&params)), fastcdc);
        // The keyed table is no XOR of fastcdc's by one value.
        let (fast, _) = get_gear_with_seed(0);
        let xors: std::collections::HashSet<u64> =
            a.gear.iter().zip(fast.iter()).map(|(g, f)| g ^ f).collect();
        assert!(xors.len() > 200, "{} distinct XORs", xors.len());
    }
}
