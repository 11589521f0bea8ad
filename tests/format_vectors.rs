//! Test vectors of format-spec.md section 14. Each value is computed from
//! fixed inputs through the engine's public API; if an encoding drifts (a
//! crate upgrade, a changed field), these fail, and the spec and the code
//! must be changed together.

use snap_engine::blob::BlobType;
use snap_engine::chunker::{Chunker, ChunkerParams};
use snap_engine::codec::{self, Kind};
use snap_engine::crypto::{self, IdKey, KdfParams};
use snap_engine::id::Id;
use snap_engine::index::{IndexBlob, IndexFile, IndexPack};
use snap_engine::tree::{Node, NodeKind, Tree, Xattr};

fn key32() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

fn sample_node() -> Node {
    let mut n = Node::new(b"hello.txt".to_vec(), NodeKind::File);
    n.mode = 0o644;
    n.uid = 1000;
    n.gid = 100;
    n.user = "alice".into();
    n.group = "users".into();
    n.mtime_ns = 1_700_000_000_123_456_789;
    n.ctime_ns = 1_700_000_001_000_000_000;
    n.inode = 42;
    n.device = 2049;
    n.links = 1;
    n.size = 13;
    n.content = vec![Id([0xab; 32])];
    n
}

/// Printed with `cargo test --test format_vectors -- --nocapture`.
fn vectors() -> Vec<(&'static str, String)> {
    let id_key = IdKey::from_bytes(key32());
    let nonce: [u8; 24] = std::array::from_fn(|i| 0x40 + i as u8);
    let tree = Tree {
        nodes: vec![sample_node()],
    };
    let tree_bytes = tree.encode();
    let index = IndexFile {
        supersedes: vec![],
        packs: vec![IndexPack {
            id: Id([0x11; 32]),
            size: 1000,
            blobs: vec![IndexBlob {
                ty: BlobType::Data,
                id: Id([0x22; 32]),
                offset: 0,
                length: 958,
                raw_length: 1200,
            }],
        }],
        writer: Some(Id([0x33; 32])),
    };
    let kdf = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        salt: [0x5a; 32],
    };
    let chunker = ChunkerParams {
        min_size: 1024,
        avg_size: 4096,
        max_size: 16384,
        seed: 0x0123_4567_89ab_cdef,
    };
    let data: Vec<u8> = {
        let mut v = vec![0u8; 65536];
        let mut x: u32 = 1;
        for b in v.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        v
    };
    let lengths = |c: Chunker| -> String {
        c.chunks(&data[..])
            .map(|c| c.unwrap().len().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        (
            "blob id of \"snap\" (id key 00..1f)",
            id_key.blob_id(b"snap").to_hex(),
        ),
        ("object id of \"snap\"", Id::of_bytes(b"snap").to_hex()),
        ("tree with one node, encoded", hex(&tree_bytes)),
        ("that tree's blob id", id_key.blob_id(&tree_bytes).to_hex()),
        ("index file body, encoded", hex(&codec::encode(&index))),
        (
            "seal(key 00..1f, nonce 40..57, aad \"snap\", \"hello\")",
            hex(&crypto::seal_with(&key32(), &nonce, b"snap", b"hello")),
        ),
        (
            "plain snapshot-kind envelope of the u64 7",
            hex(&codec::seal(Kind::Snapshot, &None, &7u64)),
        ),
        (
            "Argon2id(\"password\", salt 5a*32, m=64, t=1, p=1)",
            hex(&kdf.derive(b"password").unwrap()[..]),
        ),
        (
            "Argon2id(\"password\", salt 5a*32, m=64, t=1, p=4)",
            hex(&KdfParams {
                parallelism: 4,
                ..kdf
            }
            .derive(b"password")
            .unwrap()[..]),
        ),
        (
            "chunk lengths of the xorshift32 test input, config version 1 (seed)",
            lengths(Chunker::legacy(&chunker)),
        ),
        (
            "chunk lengths of the xorshift32 test input, config version 2 (id key 00..1f)",
            lengths(Chunker::keyed(&chunker, &key32())),
        ),
        (
            "the one-node tree with attribute user.k = \"v\" (tree version 2)",
            hex(&Tree {
                nodes: vec![node_with_xattr()],
            }
            .encode()),
        ),
    ]
}

fn node_with_xattr() -> Node {
    let mut n = sample_node();
    n.xattrs = vec![Xattr {
        name: b"user.k".to_vec(),
        value: b"v".to_vec(),
    }];
    n
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The same values as format-spec.md section 14.
const EXPECTED: &[&str] = &[
    "dcab457ee963bf33f78b064bc3c3af81397af227fa3b499cef51ffbac54714e3",
    "2f5b407e91c2a8ff26000275c525a70dc7c25c9e6c60d2549310eacdedb8559a",
    "0100000000000000090000000000000068656c6c6f2e74787400a4010000e8030000640000000500000000000000616c6963650500000000000000757365727315cd853dfe9c971700cac471fe9c97172a00000000000000010800000000000001000000000000000d00000000000000000000000000000000000000000000000100000000000000abababababababababababababababababababababababababababababababab00",
    "6579908b9e8ad46704d575619e1c68e60a6fa773d3e93ffeef1abd2ca29b45ea",
    "000000000000000001000000000000001111111111111111111111111111111111111111111111111111111111111111e803000000000000010000000000000000222222222222222222222222222222222222222222222222222222222222222200000000be030000b0040000013333333333333333333333333333333333333333333333333333333333333333",
    "404142434445464748494a4b4c4d4e4f5051525354555657bc5c691cbf535873c18dacc900371f2d0480c4dbba",
    "736e617004020000000700000000000000",
    "dff64cbd69fade35973ad3505fd6f2c7362e71badfb16b4afb439eb3c59f4b1b",
    "36a3bb02583b8387046dd9130566b0669012ca0823fb80839edd850bd04bf9b6",
    "5020,4881,3282,4572,8211,2993,10756,1428,5438,1136,4850,4335,5718,2916",
    "4131,6196,6324,1699,3636,5121,7206,6062,5871,4672,5077,2480,6885,176",
    "ffffffffffffffff02000000000000000100000000000000090000000000000068656c6c6f2e74787400a4010000e8030000640000000500000000000000616c6963650500000000000000757365727315cd853dfe9c971700cac471fe9c97172a00000000000000010800000000000001000000000000000d00000000000000000000000000000000000000000000000100000000000000abababababababababababababababababababababababababababababababab0001000000000000000600000000000000757365722e6b010000000000000076",
];

/// The index body of format version 1 (section 14): no writer field.
const INDEX_V1: &str = "000000000000000001000000000000001111111111111111111111111111111111111111111111111111111111111111e803000000000000010000000000000000222222222222222222222222222222222222222222222222222222222222222200000000be030000b0040000";

#[test]
fn encodings_match_the_spec() {
    let got = vectors();
    for (name, value) in &got {
        println!("{name}:\n    {value}");
    }
    assert_eq!(got.len(), EXPECTED.len());
    for ((name, value), expected) in got.iter().zip(EXPECTED) {
        assert_eq!(
            value, expected,
            "test vector {name:?} drifted from format-spec.md"
        );
    }
}

#[test]
fn the_spec_lists_the_same_vectors() {
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/format-spec.md")).unwrap();
    for v in EXPECTED {
        assert!(spec.contains(v), "format-spec.md lacks the vector {v}");
    }
}

#[test]
fn decoding_the_vectors_gives_the_values_back() {
    let tree = Tree::decode(&hex_decode(EXPECTED[2])).unwrap();
    assert_eq!(tree.nodes, vec![sample_node()]);
    let index: IndexFile =
        codec::decode::<IndexFile, 4096>("index", &hex_decode(EXPECTED[4])).unwrap();
    assert_eq!(index.packs[0].blobs[0].raw_length, 1200);
    assert_eq!(index.writer, Some(Id([0x33; 32])));
    // A version 1 envelope of the version 1 body still opens, without a
    // writer: repositories made before format version 2 stay readable.
    let mut v1 = b"snap\x03\x01\x00\x00\x00".to_vec();
    v1.extend(hex_decode(INDEX_V1));
    let old = IndexFile::open(&None, &v1).unwrap();
    assert_eq!(old.packs, index.packs);
    assert_eq!(old.writer, None);
    // The same body in a version 2 envelope is refused: it lacks a field.
    v1[5] = 2;
    assert!(IndexFile::open(&None, &v1).is_err());
    let v2 = Tree::decode(&hex_decode(EXPECTED[11])).unwrap();
    assert_eq!(v2.nodes, vec![node_with_xattr()]);
    let opened = crypto::open_with(&key32(), b"snap", &hex_decode(EXPECTED[5])).unwrap();
    assert_eq!(opened, b"hello");
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
