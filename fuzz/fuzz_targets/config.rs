//! Fuzz target `config`: see `punchr_fuzz_entry::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = punchr_fuzz_entry::config(data);
});
