//! Feed continuation tokens: decoded or refused with `InvalidContinuation`, and a decoded
//! token survives re-encoding (`tributary_store::fuzzing::check_continuation`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tributary_store::fuzzing::check_continuation(&String::from_utf8_lossy(data));
});
