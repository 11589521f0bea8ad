//! Every decoder of bytes read from storage, fed arbitrary and mutated
//! input: it must return an error or a value, never panic, hang or allocate
//! beyond the format's limits.

use proptest::prelude::*;
use snap_engine::blob::{BlobCodec, BlobType};
use snap_engine::codec::{self, Kind};
use snap_engine::crypto::{IdKey, MasterKey};
use snap_engine::id::Id;
use snap_engine::index::IndexFile;
use snap_engine::lock::Lock;
use snap_engine::pack::{self, PackBuilder};
use snap_engine::repo::{Config, KeyFile};
use snap_engine::snapshot::Snapshot;
use snap_engine::trash::TrashRecord;
use snap_engine::tree::{Node, NodeKind, Tree};

fn master() -> MasterKey {
    MasterKey::from_bytes([9; 32])
}

fn decode_all(bytes: &[u8]) {
    let legacy: codec::Sealer = Some(master().into());
    let split: codec::Sealer = Some(snap_engine::keys::Keys::full(&master()));
    for sealer in [&None, &legacy, &split] {
        if let Ok(body) = codec::open_bytes(Kind::Config, sealer, bytes, codec::MAX_SMALL_OBJECT) {
            let _ = Config::decode(&body);
        }
        let _ = codec::open::<IndexFile, { codec::MAX_INDEX_BODY }>(Kind::Index, sealer, bytes);
        let _ = codec::open::<Snapshot, { codec::MAX_SMALL_OBJECT }>(Kind::Snapshot, sealer, bytes);
        let _ = codec::open::<Lock, { codec::MAX_SMALL_OBJECT }>(Kind::Lock, sealer, bytes);
        let _ = codec::open::<TrashRecord, { codec::MAX_INDEX_BODY }>(Kind::Trash, sealer, bytes);
        // The versioned openers that readers use.
        let _ = IndexFile::open(sealer, bytes);
        let _ = Lock::open(sealer, bytes);
        let _ = snap_engine::trash::open(sealer, bytes);
        let _ = codec::open::<snap_engine::forgotten::ForgetRecord, { codec::MAX_SMALL_OBJECT }>(
            Kind::Forget,
            sealer,
            bytes,
        );
        let _ = pack::read_header(sealer, bytes);
        let codec = BlobCodec {
            sealer: sealer.clone(),
            id_key: IdKey::from_bytes([1; 32]),
            level: 3,
        };
        let _ = codec.decode(BlobType::Data, &Id([0; 32]), bytes, 1 << 20);
    }
    let _ = KeyFile::decode(bytes);
    let _ = Config::decode(bytes);
    let _ = Tree::decode(bytes);
    let _ = codec::decode::<IndexFile, { codec::MAX_INDEX_BODY }>("index", bytes);
    let _ = codec::decompress_payload("payload", bytes, 1 << 20);
}

fn valid_samples() -> Vec<Vec<u8>> {
    let mut node = Node::new(b"file".to_vec(), NodeKind::File);
    node.content = vec![Id([3; 32])];
    let tree = Tree { nodes: vec![node] }.encode();
    let mut b = PackBuilder::default();
    b.add(BlobType::Data, Id([4; 32]), 10, vec![5; 30]);
    let plain_pack = b.finish(&None).to_vec();
    let mut b = PackBuilder::default();
    b.add(BlobType::Tree, Id([6; 32]), 10, vec![7; 30]);
    let sealed_pack = b.finish(&Some(master().into())).to_vec();
    let split = Some(snap_engine::keys::Keys::full(&master()));
    let mut b = PackBuilder::default();
    b.add(BlobType::Tree, Id([6; 32]), 10, vec![7; 30]);
    let split_pack = b.finish(&split).to_vec();
    vec![
        tree.clone(),
        codec::seal_bytes(Kind::Snapshot, &Some(master().into()), &tree),
        codec::seal_bytes(Kind::Snapshot, &split, &tree),
        split_pack,
        codec::seal(Kind::Index, &None, &IndexFile::default()),
        plain_pack,
        sealed_pack,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_all(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_never_panic(kind in 1u8..=7, mode in 0u8..=1, body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = b"snap".to_vec();
        bytes.extend_from_slice(&[kind, 1, mode, 0]);
        bytes.extend_from_slice(&body);
        decode_all(&bytes);
    }

    #[test]
    fn mutated_valid_objects_never_panic(which in 0usize..5, pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut v = valid_samples().swap_remove(which);
        let i = pos.index(v.len());
        v[i] = byte;
        decode_all(&v);
        let n = cut.index(v.len());
        decode_all(&v[..n]);
    }
}

#[test]
fn huge_length_claims_fail_fast_without_allocating() {
    // A tree claiming 2^62 nodes, and a node whose name claims 2^62 bytes.
    let mut bytes = (1u64 << 62).to_le_bytes().to_vec();
    assert!(Tree::decode(&bytes).is_err());
    bytes = 1u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(Tree::decode(&bytes).is_err());
    // A zstd frame that claims to decompress to 1 TiB.
    let frame = zstd::bulk::compress(&[0u8; 100], 3).unwrap();
    let mut payload = vec![codec::ZSTD];
    payload.extend_from_slice(&frame);
    assert!(codec::decompress_payload("t", &payload, 50).is_err());
}

#[test]
fn hostile_tree_names_are_rejected() {
    for bad in [&b".."[..], b".", b"", b"a/b", b"nul\0"] {
        let t = Tree {
            nodes: vec![Node::new(bad.to_vec(), NodeKind::File)],
        };
        assert!(Tree::decode(&t.encode()).is_err(), "{bad:?} accepted");
    }
    let t = Tree {
        nodes: vec![
            Node::new(b"b".to_vec(), NodeKind::File),
            Node::new(b"a".to_vec(), NodeKind::File),
        ],
    };
    assert!(Tree::decode(&t.encode()).is_err(), "unsorted tree accepted");
}

#[test]
fn hostile_extended_attributes_are_rejected() {
    use snap_engine::tree::Xattr;
    let with = |xattrs: Vec<(&[u8], Vec<u8>)>| {
        let mut n = Node::new(b"f".to_vec(), NodeKind::File);
        n.xattrs = xattrs
            .into_iter()
            .map(|(name, value)| Xattr {
                name: name.to_vec(),
                value,
            })
            .collect();
        Tree { nodes: vec![n] }.encode()
    };
    let good = with(vec![(b"user.a", b"1".to_vec())]);
    assert_eq!(Tree::decode(&good).unwrap().nodes[0].xattrs.len(), 1);
    let long_name = [b"user.".to_vec(), vec![b'x'; 251]].concat();
    for (what, bytes) in [
        ("no namespace", with(vec![(b"comment", vec![])])),
        ("bare namespace", with(vec![(b"user.", vec![])])),
        ("unknown namespace", with(vec![(b"evil.x", vec![])])),
        ("NUL in name", with(vec![(b"user.a\0b", vec![])])),
        ("name over 255 bytes", with(vec![(&long_name, vec![])])),
        ("value over 64 KiB", with(vec![(b"user.a", vec![0; 65537])])),
        (
            "unsorted",
            with(vec![(b"user.b", vec![]), (b"user.a", vec![])]),
        ),
        (
            "repeated",
            with(vec![(b"user.a", vec![]), (b"user.a", vec![])]),
        ),
    ] {
        assert!(Tree::decode(&bytes).is_err(), "{what} accepted");
    }
    // An unknown tree version, and a version-2 mark with a huge count.
    let mut v4 = good.clone();
    v4[8] = 4;
    assert!(Tree::decode(&v4).is_err());
    let mut huge = good;
    huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(Tree::decode(&huge).is_err());
}

#[test]
fn a_key_file_with_hostile_argon2_parameters_is_refused_before_deriving() {
    let mut key = KeyFile::wrap(
        &master(),
        "pw",
        snap_engine::crypto::KdfParams::new(8, 1, 1),
    )
    .unwrap();
    key.kdf.memory_kib = u32::MAX;
    let bytes = key.encode();
    let decoded = KeyFile::decode(&bytes).unwrap();
    assert!(decoded.unwrap_key("pw").is_err());
}
