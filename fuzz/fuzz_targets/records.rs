//! Stored records read back from a possibly damaged disk: every record decoder and the
//! catalog's container and user records refuse bad bytes as `Corrupt`, and what decodes survives
//! re-encoding (`tributary_store::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tributary_store::fuzzing::check_record_decoders(data);
    tributary_store::fuzzing::check_container_record(data);
    tributary_store::fuzzing::check_user_record(data);
});
