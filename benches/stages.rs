//! Throughput of each stage of the backup pipeline, in isolation, through
//! the engine's public API: chunker, blob ids, blob encoding (zstd +
//! XChaCha20-Poly1305), pack building, index lookup.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use snap_engine::blob::{BlobCodec, BlobType};
use snap_engine::chunker::{Chunker, ChunkerParams};
use snap_engine::crypto::{IdKey, MasterKey};
use snap_engine::id::Id;
use snap_engine::index::{Index, IndexBlob, IndexBuilder, IndexPack};
use snap_engine::pack::PackBuilder;

const MIB: usize = 1 << 20;

/// Counts live heap bytes, so the index bench can report what one blob
/// costs in memory next to how fast it is found.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Half random, half repetitive text: roughly what a home directory mixes.
fn sample(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    blake3::Hasher::new().finalize_xof().fill(&mut v[..len / 2]);
    let text = b"fn main() { println!(\"hello, world\"); } // a line of source code\n";
    for (i, b) in v[len / 2..].iter_mut().enumerate() {
        *b = text[i % text.len()];
    }
    v
}

fn codec(encrypted: bool) -> BlobCodec {
    BlobCodec {
        sealer: encrypted.then(|| snap_engine::keys::Keys::full(&MasterKey::from_bytes([1; 32]))),
        id_key: IdKey::from_bytes([2; 32]),
        level: 3,
    }
}

fn stages(c: &mut Criterion) {
    let data = sample(64 * MIB);
    let mut g = c.benchmark_group("stages");
    g.sample_size(10);

    g.throughput(Throughput::Bytes(data.len() as u64));
    // Today's keyed table beside the seeded fastcdc table that config
    // version 1 used: the same cut loop, so the same speed is expected.
    let p = ChunkerParams::generate();
    for (name, chunker) in [
        ("chunker_fastcdc_seeded_v1", Chunker::legacy(&p)),
        (
            "chunker_fastcdc_keyed_table_v2",
            Chunker::keyed(&p, &[3; 32]),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                chunker
                    .chunks(&data[..])
                    .map(|c| c.unwrap().len())
                    .sum::<usize>()
            })
        });
    }
    g.bench_function("blob_id_keyed_blake3", |b| {
        let c = codec(true);
        b.iter(|| {
            for chunk in data.chunks(MIB) {
                black_box(c.id(chunk));
            }
        })
    });
    for encrypted in [false, true] {
        let c = codec(encrypted);
        g.bench_with_input(
            BenchmarkId::new(
                "blob_encode_zstd3",
                if encrypted {
                    "xchacha20poly1305"
                } else {
                    "plain"
                },
            ),
            &c,
            |b, c| {
                b.iter(|| {
                    for chunk in data.chunks(MIB) {
                        black_box(c.encode(BlobType::Data, &Id([0; 32]), chunk));
                    }
                })
            },
        );
    }
    let codec = codec(true);
    let encoded: Vec<(Id, Vec<u8>, usize)> = data
        .chunks(MIB)
        .map(|ch| {
            let id = codec.id(ch);
            (id, codec.encode(BlobType::Data, &id, ch), ch.len())
        })
        .collect();
    g.bench_function("blob_decode_and_verify", |b| {
        b.iter(|| {
            for (id, stored, len) in &encoded {
                black_box(
                    codec
                        .decode(BlobType::Data, id, stored, *len as u32)
                        .unwrap(),
                );
            }
        })
    });
    // Small files are where a per-blob cost of the version 3 seal (the
    // session key looked up by its encapsulation) would show: 4 KiB blobs
    // opened under the master key (version 2) and a content key pair.
    let legacy = BlobCodec {
        sealer: Some(MasterKey::from_bytes([1; 32]).into()),
        ..codec.clone()
    };
    for (name, c) in [
        ("blob_decode_4KiB_version_2", &legacy),
        ("blob_decode_4KiB_version_3", &codec),
    ] {
        let small: Vec<(Id, Vec<u8>)> = data
            .chunks(4096)
            .take(4096)
            .map(|ch| {
                let id = c.id(ch);
                (id, c.encode(BlobType::Data, &id, ch))
            })
            .collect();
        g.bench_function(name, |b| {
            b.iter(|| {
                for (id, stored) in &small {
                    black_box(c.decode(BlobType::Data, id, stored, 4096).unwrap());
                }
            })
        });
    }
    g.bench_function("pack_build_16MiB", |b| {
        b.iter(|| {
            let mut p = PackBuilder::default();
            for (id, stored, len) in encoded.iter().take(16) {
                p.add(BlobType::Data, *id, *len, stored.clone());
            }
            black_box(p.finish(&codec.sealer).id)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("index");
    let n = 1_000_000u32;
    let ids: Vec<Id> = (0..n)
        .map(|i| Id(*blake3::hash(&i.to_le_bytes()).as_bytes()))
        .collect();
    let packs: Vec<IndexPack> = ids
        .chunks(1000)
        .enumerate()
        .map(|(p, chunk)| IndexPack {
            id: Id(*blake3::hash(&(p as u64).to_le_bytes()).as_bytes()),
            size: 0,
            blobs: chunk
                .iter()
                .map(|id| IndexBlob {
                    ty: BlobType::Data,
                    id: *id,
                    offset: 0,
                    length: 1,
                    raw_length: 1,
                })
                .collect(),
        })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let index = build_index(&packs);
    let retained = LIVE.load(Ordering::Relaxed) - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    eprintln!(
        "index of {n} blobs: {:.1} bytes per blob retained, {:.1} at peak while built",
        retained as f64 / n as f64,
        peak as f64 / n as f64
    );
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.sample_size(10);
    g.bench_function("build_1M_entries", |b| {
        b.iter(|| black_box(build_index(&packs)).pack_count())
    });
    g.bench_function("lookup_1M_entries", |b| {
        b.iter(|| {
            ids.iter()
                .filter(|id| index.contains(BlobType::Data, id))
                .count()
        })
    });
    g.finish();
}

fn build_index(packs: &[IndexPack]) -> Index {
    let mut index = IndexBuilder::default();
    for p in packs {
        index.add_pack(p);
    }
    index.build()
}

criterion_group!(benches, stages);
criterion_main!(benches);
