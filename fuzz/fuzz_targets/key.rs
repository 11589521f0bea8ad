//! Key files: decoding, and the Argon2 parameter bounds checked before any
//! key derivation runs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snap_engine::repo::KeyFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = KeyFile::decode(data) {
        // Only cheap parameters may reach Argon2 in a fuzzer.
        if key.kdf.validate().is_ok() && key.kdf.memory_kib <= 1024 && key.kdf.iterations <= 2 {
            let _ = key.unwrap_key("password");
        }
    }
});
