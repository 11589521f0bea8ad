//! Pack headers, plain and encrypted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snap_engine::crypto::MasterKey;
use snap_engine::pack;

fuzz_target!(|data: &[u8]| {
    let _ = pack::read_header(&None, data);
    let _ = pack::read_header(&Some(MasterKey::from_bytes([7; 32]).into()), data);
    let _ = pack::read_header(
        &Some(snap_engine::keys::Keys::full(&MasterKey::from_bytes([7; 32]))),
        data,
    );
});
