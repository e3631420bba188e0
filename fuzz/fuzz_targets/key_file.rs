//! Fuzz target `key_file`: see `punchr_fuzz_entry::key_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = punchr_fuzz_entry::key_file(data);
});
