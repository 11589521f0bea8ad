//! Stored blobs: decryption, decompression and id verification.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snap_engine::blob::{BlobCodec, BlobType};
use snap_engine::crypto::{IdKey, MasterKey};
use snap_engine::id::Id;

fuzz_target!(|data: &[u8]| {
    let len = data.first().map(|b| *b as u32 * 1024).unwrap_or(0);
    for sealer in [
        None,
        Some(MasterKey::from_bytes([7; 32]).into()),
        Some(snap_engine::keys::Keys::full(&MasterKey::from_bytes([7; 32]))),
    ] {
        let codec = BlobCodec {
            sealer,
            id_key: IdKey::from_bytes([3; 32]),
            level: 3,
        };
        let _ = codec.decode(BlobType::Data, &Id([0; 32]), data, len);
    }
});
