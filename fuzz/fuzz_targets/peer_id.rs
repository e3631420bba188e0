//! Fuzz target `peer_id`: see `punchr_fuzz_entry::peer_id`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = punchr_fuzz_entry::peer_id(data);
});
