//! Config, index, snapshot, lock and trash envelopes, plain and encrypted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snap_engine::codec::{self, Kind};
use snap_engine::crypto::MasterKey;
use snap_engine::index::IndexFile;
use snap_engine::lock::Lock;
use snap_engine::repo::Config;
use snap_engine::snapshot::Snapshot;
use snap_engine::trash::TrashRecord;

fuzz_target!(|data: &[u8]| {
    for sealer in [
        None,
        Some(MasterKey::from_bytes([7; 32]).into()),
        Some(snap_engine::keys::Keys::full(&MasterKey::from_bytes([7; 32]))),
    ] {
        if let Ok(body) = codec::open_bytes(Kind::Config, &sealer, data, codec::MAX_SMALL_OBJECT) {
            let _ = Config::decode(&body);
        }
        let _ = codec::open::<IndexFile, { codec::MAX_INDEX_BODY }>(Kind::Index, &sealer, data);
        let _ = codec::open::<Snapshot, { codec::MAX_SMALL_OBJECT }>(Kind::Snapshot, &sealer, data);
        let _ = codec::open::<Lock, { codec::MAX_SMALL_OBJECT }>(Kind::Lock, &sealer, data);
        let _ = codec::open::<TrashRecord, { codec::MAX_INDEX_BODY }>(Kind::Trash, &sealer, data);
        // The versioned openers that readers use.
        let _ = IndexFile::open(&sealer, data);
        let _ = Lock::open(&sealer, data);
        let _ = snap_engine::trash::open(&sealer, data);
    }
    // Bodies without an envelope, as an attacker-chosen plaintext would be.
    let _ = codec::decode::<IndexFile, { codec::MAX_INDEX_BODY }>("index", data);
    let _ = codec::decode::<Snapshot, { codec::MAX_SMALL_OBJECT }>("snapshot", data);
});
