//! Test vectors of format-spec.md section 14. Each value is computed from
//! fixed inputs through the engine's public API; if an encoding drifts (a
//! crate upgrade, a changed field), these fail, and the spec and the code
//! must be changed together.

use snap_engine::blob::{BlobCodec, BlobType};
use snap_engine::chunker::{Chunker, ChunkerParams};
use snap_engine::codec::{self, Kind};
use snap_engine::crypto::{self, IdKey, KdfParams, MasterKey};
use snap_engine::forgotten::ForgetRecord;
use snap_engine::id::Id;
use snap_engine::index::{IndexBlob, IndexFile, IndexPack};
use snap_engine::keys::{Keys, WriteOnlySecrets};
use snap_engine::lock::{Lock, LockKind};
use snap_engine::pack::{self, PackBlob, PackHeader};
use snap_engine::repo::{Config, KeyFile, Unwrapped};
use snap_engine::retention::{LockMode, Retention};
use snap_engine::snapshot::{Snapshot, Summary};
use snap_engine::trash::TrashRecord;
use snap_engine::tree::{self, Node, NodeKind, Tree, Xattr};

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

/// A character device, `/dev/null` of Linux (1, 3).
fn device_node() -> Node {
    let mut n = Node::new(b"null".to_vec(), NodeKind::CharDevice);
    n.mode = 0o666;
    n.user = "root".into();
    n.group = "root".into();
    n.mtime_ns = 1_700_000_000_000_000_000;
    n.ctime_ns = 1_700_000_000_000_000_000;
    n.inode = 5;
    n.device = 5;
    n.links = 1;
    n.rdev = tree::device_number(1, 3);
    n
}

fn nonce() -> [u8; 24] {
    std::array::from_fn(|i| 0x40 + i as u8)
}

fn index_pack() -> IndexPack {
    IndexPack {
        id: Id([0x11; 32]),
        size: 1000,
        blobs: vec![IndexBlob {
            ty: BlobType::Data,
            id: Id([0x22; 32]),
            offset: 0,
            length: 958,
            raw_length: 1200,
        }],
    }
}

fn kdf() -> KdfParams {
    KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        salt: [0x5a; 32],
    }
}

/// The key file of the key unwrap vector: the master key `00..1f` under
/// password "password" with the Argon2 parameters of [`kdf`].
fn key_file() -> KeyFile {
    let master = MasterKey::from_bytes(key32());
    let mut k = KeyFile::wrap_with_nonce(&master, "password", kdf(), &nonce()).unwrap();
    k.created_ns = 1_700_000_000_000_000_000;
    k.host = "host".into();
    k.username = "alice".into();
    k
}

fn blob_codec() -> BlobCodec {
    BlobCodec {
        sealer: Some(MasterKey::from_bytes(key32()).into()),
        id_key: IdKey::from_bytes(key32()),
        level: 3,
    }
}

/// The plaintext of the sealed blob vector: compressible, so its payload
/// is a zstd frame.
/// The keys of a version 3 repository with master key `00..1f`, whose
/// session encapsulation is drawn from the seed `60..7f`.
fn v3_keys() -> Keys {
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = 0x60 + i as u8;
    }
    Keys::full(&MasterKey::from_bytes(key32())).with_session_seed(seed)
}

fn v3_blob_codec() -> BlobCodec {
    BlobCodec {
        sealer: Some(v3_keys()),
        id_key: IdKey::from_bytes(key32()),
        level: 3,
    }
}

fn v3_config() -> Config {
    Config {
        version: 3,
        id: Id([0x11; 32]),
        id_key: key32(),
        chunker: small_chunker(),
        compression_level: 3,
        content_public: None,
        object_lock: Some(Retention {
            days: 30,
            mode: LockMode::Governance,
        }),
        tag: None,
    }
    .sealed_by(&v3_keys())
}

fn write_only_key_file() -> KeyFile {
    let keys = v3_keys();
    let secrets = WriteOnlySecrets {
        shared: zeroize::Zeroizing::new(*keys.shared_bytes()),
        public: keys.public().unwrap(),
        config: *blake3::hash(&v3_config().encode()).as_bytes(),
    };
    let mut k = KeyFile::wrap_write_only(&secrets, "password", kdf(), &nonce()).unwrap();
    k.created_ns = 1_700_000_000_000_000_000;
    k.host = "laptop".into();
    k.username = "alice".into();
    k
}

fn blob_plaintext() -> Vec<u8> {
    b"snap".repeat(32)
}

fn pack_header() -> PackHeader {
    PackHeader {
        blobs: vec![
            PackBlob {
                ty: BlobType::Data,
                id: Id([0x22; 32]),
                length: 958,
                raw_length: 1200,
            },
            PackBlob {
                ty: BlobType::Tree,
                id: Id([0x33; 32]),
                length: 200,
                raw_length: 300,
            },
        ],
        padding: 65536 - 958 - 200,
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        time_ns: 1_700_000_000_123_456_789,
        host: "host".into(),
        username: "alice".into(),
        uid: 1000,
        gid: 100,
        paths: vec![b"/home/alice".to_vec()],
        tags: vec!["daily".into()],
        tree: Id([0x44; 32]),
        parent: Some(Id([0x55; 32])),
        program_version: "snap 0.1.0".into(),
        summary: Summary {
            files_new: 1,
            files_changed: 2,
            files_unmodified: 3,
            dirs: 4,
            files: 6,
            bytes_total: 7,
            bytes_read: 8,
            bytes_added: 9,
            blobs_added: 10,
            duration_ns: 11,
        },
    }
}

fn lock() -> Lock {
    Lock {
        kind: LockKind::Backup,
        host: "host".into(),
        username: "alice".into(),
        pid: 4242,
        created_ns: 1_700_000_000_000_000_000,
        boot_id: "b".into(),
        pid_namespace: "pid:[4026531836]".into(),
        lapsed: true,
    }
}

fn trash_record() -> TrashRecord {
    TrashRecord {
        packs: vec![index_pack()],
        waits_for: vec![Id([0x66; 32])],
    }
}

fn forget_record() -> ForgetRecord {
    ForgetRecord {
        time_ns: 1_700_000_000_000_000_000,
        host: "host".into(),
        snapshots: vec![Id([0x77; 32])],
    }
}

/// The input of the small chunking vector: 3000 bytes of xorshift32 (as
/// below) and 1097 zero bytes, so that its cuts include a cut by the
/// mask, one at `max_size` and an odd last window.
fn small_chunk_input() -> Vec<u8> {
    let mut v = xorshift32(3000);
    v.resize(4097, 0);
    v
}

fn xorshift32(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    let mut x: u32 = 1;
    for b in v.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    v
}

fn small_chunker() -> ChunkerParams {
    ChunkerParams {
        min_size: 64,
        avg_size: 256,
        max_size: 1024,
        seed: 0x0123_4567_89ab_cdef,
    }
}

/// Printed with `cargo test --test format_vectors -- --nocapture`.
fn vectors() -> Vec<(&'static str, String)> {
    let id_key = IdKey::from_bytes(key32());
    let nonce = nonce();
    let tree = Tree {
        nodes: vec![sample_node()],
    };
    let tree_bytes = tree.encode();
    let index = IndexFile {
        supersedes: vec![],
        packs: vec![index_pack()],
        writer: Some(Id([0x33; 32])),
    };
    let kdf = kdf();
    let chunker = ChunkerParams {
        min_size: 1024,
        avg_size: 4096,
        max_size: 16384,
        seed: 0x0123_4567_89ab_cdef,
    };
    let data = xorshift32(65536);
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
        (
            "a tree with the device 1:3 (tree version 3)",
            hex(&Tree {
                nodes: vec![device_node()],
            }
            .encode()),
        ),
        (
            "sealed snapshot-kind envelope of the u64 7 (key 00..1f, nonce 40..57)",
            hex(&codec::seal_with_nonce(
                Kind::Snapshot,
                &MasterKey::from_bytes(key32()),
                &nonce,
                &7u64,
            )),
        ),
        (
            "sealed data blob of \"snap\" x 32 (keys 00..1f, nonce 40..57)",
            {
                let c = blob_codec();
                let plain = blob_plaintext();
                hex(&c.encode_with_nonce(BlobType::Data, &c.id(&plain), &plain, &nonce))
            },
        ),
        (
            "key file wrapping master key 00..1f under \"password\"",
            hex(&key_file().encode()),
        ),
        ("that key file's body", hex(&codec::encode(&key_file()))),
        (
            "pack header envelope (plain), up to its zero fill",
            hex(&pack_header_envelope().0),
        ),
        ("snapshot body", hex(&codec::encode(&snapshot()))),
        ("lock body", hex(&codec::encode(&lock()))),
        ("trash record body", hex(&codec::encode(&trash_record()))),
        ("forget record body", hex(&codec::encode(&forget_record()))),
        (
            "shared key of master key 00..1f (version 3)",
            hex(Keys::full(&MasterKey::from_bytes(key32())).shared_bytes()),
        ),
        (
            "content public key of master key 00..1f (version 3)",
            hex(&Keys::full(&MasterKey::from_bytes(key32()))
                .public()
                .unwrap()),
        ),
        (
            "version 3 sealed data blob of \"snap\" x 32 (master key 00..1f, session seed 60..7f, nonce 40..57)",
            {
                let c = v3_blob_codec();
                let plain = blob_plaintext();
                hex(&c.encode_with_nonce(BlobType::Data, &c.id(&plain), &plain, &nonce))
            },
        ),
        (
            "version 3 config body (id 11.., id key 00..1f, small chunker, level 3, governance 30 days, master key 00..1f)",
            hex(&v3_config().encode()),
        ),
        (
            "write-only key file for that config under \"password\"",
            hex(&write_only_key_file().encode()),
        ),
        (
            "gear[0..4] of config version 2, id key 00..1f",
            Chunker::keyed(&chunker, &key32()).gear()[..4]
                .iter()
                .map(|g| format!("{g:016x}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        (
            "padme of 65536, 65537, 70000, 1000000, 16777217",
            [65536, 65537, 70000, 1_000_000, 16_777_217]
                .map(|n| pack::padme(n).to_string())
                .join(","),
        ),
        (
            "cut points of the small input, min 64, avg 256, max 1024, config version 2",
            Chunker::keyed(&small_chunker(), &key32())
                .chunks(&small_chunk_input()[..])
                .scan(0, |end, c| {
                    *end += c.unwrap().len();
                    Some(end.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]
}

/// The plain pack header envelope of [`pack_header`], split into its bytes
/// up to the end of the encoded `PackHeader` and the zeros after them.
fn pack_header_envelope() -> (Vec<u8>, Vec<u8>) {
    let mut env = pack::seal_header(&None, &pack_header());
    let body_end = 8 + 1 + codec::encode(&pack_header()).len();
    let zeros = env.split_off(body_end);
    (env, zeros)
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
    "ffffffffffffffff0300000000000000010000000000000004000000000000006e756c6c04b601000000000000000000000400000000000000726f6f740400000000000000726f6f7400002a36fe9c971700002a36fe9c97170500000000000000050000000000000001000000000000000000000000000000030000000100000000000000000000000000000000000000000000000000000000",
    "736e617004020100404142434445464748494a4b4c4d4e4f5051525354555657d43e0570d0e079168f21b98c1acc055ca25ab56cc0fbfa2d4c",
    "404142434445464748494a4b4c4d4e4f5051525354555657d511b05f2dc0f94b8ff4a7cdc1fd1593924379d5121af721428178832b4c39354804a982ec",
    "736e6170020200000128b52ffd209da50300540600002a36fe9c97170400686f73740500616c69636540000000015a404142434445464748494a4b4c4d4e4f505152535455565730004d439aa1f21ba8b6d3f05d49b88c752cf53c1e6735958ec3cfb9bf31e7906c925bed21de629a1c959ac07fdde86a27ab05008261e09ad8650446190012",
    "00002a36fe9c97170400000000000000686f73740500000000000000616c6963654000000001000000010000005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a404142434445464748494a4b4c4d4e4f505152535455565730000000000000004d439aa1f21ba8b6d3f05d49b88c752cf53c1e6735958ec3cfb9bf31e7906c925bed21de629a1c959ac07fdde86a27ab",
    "736e617005020000000200000000000000002222222222222222222222222222222222222222222222222222222222222222be030000b0040000013333333333333333333333333333333333333333333333333333333333333333c80000002c0100007afb0000",
    "15cd853dfe9c97170400000000000000686f73740500000000000000616c696365e80300006400000001000000000000000b000000000000002f686f6d652f616c696365010000000000000005000000000000006461696c7944444444444444444444444444444444444444444444444444444444444444440155555555555555555555555555555555555555555555555555555555555555550a00000000000000736e617020302e312e30010000000000000002000000000000000300000000000000040000000000000006000000000000000700000000000000080000000000000009000000000000000a000000000000000b00000000000000",
    "000400000000000000686f73740500000000000000616c6963659210000000002a36fe9c971701000000000000006210000000000000007069643a5b343032363533313833365d01",
    "01000000000000001111111111111111111111111111111111111111111111111111111111111111e803000000000000010000000000000000222222222222222222222222222222222222222222222222222222222222222200000000be030000b004000001000000000000006666666666666666666666666666666666666666666666666666666666666666",
    "00002a36fe9c97170400000000000000686f737401000000000000007777777777777777777777777777777777777777777777777777777777777777",
    "cb5555b0667321f5ea98261477b9d8d3e92c9c6567361546ca9dba6ed24a25d0",
    "f46e5f1860c51599ff396511ab606f2c336fe5c489889c762be49bf049b25e55",
    "dd701d6c807f893514d7c0130011401c2a8939d5c7c97e8773f204cf032a8d20404142434445464748494a4b4c4d4e4f5051525354555657839f197983869c11a1ea7d31acd64d20e8486d3872336c8627375c649d2e59aed339119d03",
    "030000001111111111111111111111111111111111111111111111111111111111111111000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f400000000001000000040000efcdab89674523010300000001f46e5f1860c51599ff396511ab606f2c336fe5c489889c762be49bf049b25e55011e000000000000000106779c9aa9e3ed9868a116241afd85a459b69eb2156445cee0ea816b22b71545",
    "736e6170020200000128b52ffd20dfb50500740a00002a36fe9c971706006c6170746f700500616c69636540000000015a404142434445464748494a4b4c4d4e4f505152535455565770008617cd12906d8f4431617156c338a3f00c01901146b68d921d3d1f4429c7575d85cec7aaa752b4935350a72a506b7487e9c0280c6db86b149ae29b8762aaab831ce16c00f38fb4fb428278224d307aec88e2bddba8437d6e4d1383219475e0fd3935c635cc0ceafce0db9b0490a7dd3005008261e09ad86504061f0012",
    "b3451c2ea8909272,f8b59a7d6c0d739c,09035b015ec0f67d,6c51a79ed0cc95f8",
    "65536,67584,71680,1015808,17301504",
    "294,439,510,649,798,1052,1522,1738,2053,2594,2674,2942,3966,4097",
];

/// The expected value of the vector called `name`.
fn expected(name: &str) -> String {
    let i = vectors()
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no vector {name:?}"));
    EXPECTED[i].to_string()
}

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
    assert_eq!(opened.as_slice(), b"hello");
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn the_pack_header_is_zero_filled_to_4096_bytes() {
    let (head, zeros) = pack_header_envelope();
    // Header, compression byte, then a body of 4096 bytes.
    assert_eq!(head.len() + zeros.len(), 8 + 1 + 4096);
    assert!(zeros.iter().all(|&b| b == 0));
    let spec = spec();
    assert!(spec.contains(&format!("{} zero bytes", zeros.len())));
    // A whole pack around it: the two blobs, the padding, the header.
    let mut bytes = vec![0xc5; 65536];
    bytes.extend(&head);
    bytes.extend(&zeros);
    bytes.extend(((head.len() + zeros.len()) as u32).to_le_bytes());
    let blobs = pack::read_header(&None, &bytes).unwrap();
    assert_eq!((blobs[1].offset, blobs[1].length), (958, 200));
}

#[test]
fn the_new_vectors_decode_to_their_values() {
    let key: codec::Sealer = Some(MasterKey::from_bytes(key32()).into());
    let v = |name: &str| hex_decode(&expected(name));
    let tree = Tree::decode(&v("a tree with the device 1:3 (tree version 3)")).unwrap();
    assert_eq!(tree.nodes, vec![device_node()]);
    assert_eq!(tree::device_numbers(tree.nodes[0].rdev), (1, 3));
    let sealed = v("sealed snapshot-kind envelope of the u64 7 (key 00..1f, nonce 40..57)");
    assert_eq!(
        codec::open::<u64, 64>(Kind::Snapshot, &key, &sealed).unwrap(),
        7
    );
    let c = blob_codec();
    let plain = blob_plaintext();
    let stored = v("sealed data blob of \"snap\" x 32 (keys 00..1f, nonce 40..57)");
    let id = c.id(&plain);
    assert_eq!(c.decode(BlobType::Data, &id, &stored, 128).unwrap(), plain);
    let k = KeyFile::decode(&v("key file wrapping master key 00..1f under \"password\"")).unwrap();
    assert_eq!(k, key_file());
    let Some(Unwrapped::Full(master)) = k.unwrap_key("password").unwrap() else {
        panic!("the vector's key file is a full key");
    };
    assert_eq!(master.as_bytes(), &key32());
    assert!(k.unwrap_key("passwore").unwrap().is_none());
    // Version 3: a full key without the vector's session seed opens the
    // blob; the write-only key unwraps what it says and opens nothing.
    let full = Keys::full(&MasterKey::from_bytes(key32()));
    let stored = v(
        "version 3 sealed data blob of \"snap\" x 32 (master key 00..1f, session seed 60..7f, nonce 40..57)",
    );
    let c3 = BlobCodec {
        sealer: Some(full.clone()),
        id_key: IdKey::from_bytes(key32()),
        level: 3,
    };
    assert_eq!(c3.decode(BlobType::Data, &id, &stored, 128).unwrap(), plain);
    let config = v(
        "version 3 config body (id 11.., id key 00..1f, small chunker, level 3, governance 30 days, master key 00..1f)",
    );
    assert_eq!(Config::decode(&config).unwrap(), v3_config());
    let w = KeyFile::decode(&v("write-only key file for that config under \"password\"")).unwrap();
    assert_eq!(w.access(), Some(snap_engine::keys::Access::WriteOnly));
    assert_eq!(k.access(), Some(snap_engine::keys::Access::Full));
    let Some(Unwrapped::WriteOnly(secrets)) = w.unwrap_key("password").unwrap() else {
        panic!("the vector's key file is write-only");
    };
    assert_eq!(&*secrets.shared, full.shared_bytes());
    assert_eq!(Some(secrets.public), full.public());
    assert_eq!(secrets.config, *blake3::hash(&config).as_bytes());
    let writer = BlobCodec {
        sealer: Some(Keys::write_only(&secrets).unwrap()),
        id_key: IdKey::from_bytes(key32()),
        level: 3,
    };
    assert!(writer.decode(BlobType::Data, &id, &stored, 128).is_err());
    let body = |name: &str| v(name);
    assert_eq!(
        codec::decode::<Snapshot, 4096>("s", &body("snapshot body")).unwrap(),
        snapshot()
    );
    let mut lock_env = b"snap\x06\x02\x00\x00\x00".to_vec();
    lock_env.extend(body("lock body"));
    assert_eq!(Lock::open(&None, &lock_env).unwrap(), (2, lock()));
    let mut trash_env = b"snap\x07\x02\x00\x00\x00".to_vec();
    trash_env.extend(body("trash record body"));
    let (packs, waits) = snap_engine::trash::open(&None, &trash_env).unwrap();
    assert_eq!(packs, trash_record().packs);
    assert_eq!(
        waits,
        snap_engine::trash::Waits::Locks(trash_record().waits_for)
    );
    assert_eq!(
        codec::decode::<ForgetRecord, 4096>("f", &body("forget record body")).unwrap(),
        forget_record()
    );
}

/// format-spec.md, read as a second implementation would read it.
fn spec() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/format-spec.md")).unwrap()
}

/// Section 13's table `G`: the lines of four 16-digit hex numbers.
fn spec_gear_table() -> [u64; 256] {
    let spec = spec();
    let table = &spec[spec.find("`G` row by row").expect("section 13's table")..];
    let values: Vec<u64> = table
        .lines()
        .take(70)
        .map(str::split_whitespace)
        .map(|w| w.collect::<Vec<_>>())
        .filter(|w| w.len() == 4 && w.iter().all(|x| x.len() == 16))
        .flat_map(|w| w.into_iter().map(|x| u64::from_str_radix(x, 16).unwrap()))
        .collect();
    values
        .try_into()
        .expect("256 gear values in format-spec.md")
}

/// Section 13's mask table `M`, by index.
fn spec_masks() -> std::collections::HashMap<u32, u64> {
    let mut out = std::collections::HashMap::new();
    for line in spec().lines().filter(|l| l.contains("| 0x")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        for pair in cells[1..].chunks(2) {
            if let [i, m] = pair
                && let Some(hex) = m.strip_prefix("0x")
            {
                out.insert(i.parse().unwrap(), u64::from_str_radix(hex, 16).unwrap());
            }
        }
    }
    out
}

/// One cut as section 13 describes it, step by step.
fn spec_cut(d: &[u8], min: usize, avg: usize, max: usize, gear: &[u64; 256]) -> usize {
    if d.len() <= min {
        return d.len();
    }
    let masks = spec_masks();
    let b = (avg as f64).log2().round() as u32;
    let (mask_s, mask_l) = (masks[&(b + 1)], masks[&(b - 1)]);
    let gear_ls = gear.map(|g| g << 1);
    let r = d.len().min(max);
    let c = avg.min(r);
    let mut h: u64 = 0;
    let mut i = min / 2;
    while i < r / 2 {
        let a = 2 * i;
        let m = if i < c / 2 { mask_s } else { mask_l };
        h = (h << 2).wrapping_add(gear_ls[d[a] as usize]);
        if h & (m << 1) == 0 {
            return a;
        }
        h = h.wrapping_add(gear[d[a + 1] as usize]);
        if h & m == 0 {
            return a + 1;
        }
        i += 1;
    }
    r
}

fn spec_chunks(d: &[u8], p: &ChunkerParams, gear: &[u64; 256]) -> Vec<usize> {
    let (min, avg, max) = (
        p.min_size as usize,
        p.avg_size as usize,
        p.max_size as usize,
    );
    let mut out = Vec::new();
    let mut at = 0;
    while at < d.len() {
        let n = spec_cut(&d[at..], min, avg, max, gear);
        out.push(n);
        at += n;
    }
    out
}

#[test]
fn chunking_as_the_spec_describes_it_cuts_where_snap_does() {
    let g = spec_gear_table();
    let seed = 0x0123_4567_89ab_cdef_u64;
    let legacy = Chunker::legacy(&small_chunker());
    let xored: Vec<u64> = g.iter().map(|x| x ^ seed).collect();
    assert_eq!(&legacy.gear()[..], &xored[..], "section 13's table G");
    let mut inputs = vec![small_chunk_input(), xorshift32(300_000), vec![7; 5000]];
    inputs.push(b"abc".repeat(70_001));
    let configs = [
        (64, 256, 1024),
        (1024, 4096, 16384),
        (2000, 3000, 9000),
        (4096, 65536, 262_144),
    ];
    for (min_size, avg_size, max_size) in configs {
        let p = ChunkerParams {
            min_size,
            avg_size,
            max_size,
            seed,
        };
        p.validate().unwrap();
        let v1 = Chunker::legacy(&p);
        let v2 = Chunker::keyed(&p, &key32());
        let v1_gear: [u64; 256] = g.map(|x| x ^ seed);
        for d in &inputs {
            for (c, gear) in [(&v1, &v1_gear), (&v2, v2.gear())] {
                let snap: Vec<usize> = c.chunks(&d[..]).map(|c| c.unwrap().len()).collect();
                assert_eq!(
                    spec_chunks(d, &p, gear),
                    snap,
                    "sizes {min_size}/{avg_size}/{max_size}, {} bytes",
                    d.len()
                );
            }
        }
    }
}
