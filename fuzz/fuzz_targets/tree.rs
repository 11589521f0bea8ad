//! Tree blobs: decoding and name validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snap_engine::tree::Tree;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = Tree::decode(data) {
        // A tree that decodes re-encodes to the same bytes: the encoding is
        // canonical.
        assert_eq!(tree.encode(), data);
    }
});
