//! Fuzz target `outbox_file`: see `punchr_fuzz_entry::outbox_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = punchr_fuzz_entry::outbox_file(data);
});
