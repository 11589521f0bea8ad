//! Content-defined chunking with FastCDC 2020. Cut points depend on content,
//! so an insertion shifts only the chunks around it; the per-repository seed
//! keeps the boundaries of known content secret from storage.

use std::io::Read;

use fastcdc::v2020::{FastCDC, Normalization, StreamCDC};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
    pub seed: u64,
}

impl ChunkerParams {
    pub const DEFAULT_MIN: u32 = 512 * 1024;
    pub const DEFAULT_AVG: u32 = 1024 * 1024;
    pub const DEFAULT_MAX: u32 = 8 * 1024 * 1024;

    /// Default sizes with a fresh random seed.
    pub fn generate() -> ChunkerParams {
        Self::with_sizes(Self::DEFAULT_MIN, Self::DEFAULT_AVG, Self::DEFAULT_MAX)
    }

    pub fn with_sizes(min_size: u32, avg_size: u32, max_size: u32) -> ChunkerParams {
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

    /// Cut points of data in memory, as `(offset, length)`: the same as
    /// [`ChunkerParams::chunks`] gives for the same bytes.
    pub fn cuts(&self, data: &[u8]) -> Vec<(usize, usize)> {
        if data.is_empty() {
            return Vec::new();
        }
        FastCDC::with_level_and_seed(
            data,
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
            Normalization::Level1,
            self.seed,
        )
        .map(|c| (c.offset, c.length))
        .collect()
    }

    /// Chunks of `reader`, each at most `max_size` bytes. Memory is one
    /// buffer of `max_size`, however large the file.
    pub fn chunks<R: Read>(&self, reader: R) -> impl Iterator<Item = std::io::Result<Vec<u8>>> {
        StreamCDC::with_level_and_seed(
            reader,
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
            Normalization::Level1,
            self.seed,
        )
        .map(|r| r.map(|c| c.data).map_err(std::io::Error::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_reassemble_and_respect_bounds() {
        let p = ChunkerParams::with_sizes(1024, 4096, 16384);
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
        let p = ChunkerParams::with_sizes(1024, 4096, 16384);
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
    fn seed_changes_boundaries() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        let a = ChunkerParams {
            seed: 1,
            ..ChunkerParams::with_sizes(1024, 4096, 16384)
        };
        let b = ChunkerParams { seed: 2, ..a };
        let la: Vec<usize> = a.chunks(&data[..]).map(|c| c.unwrap().len()).collect();
        let lb: Vec<usize> = b.chunks(&data[..]).map(|c| c.unwrap().len()).collect();
        assert_ne!(la, lb);
    }
}
