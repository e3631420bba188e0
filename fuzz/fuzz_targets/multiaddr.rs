//! Fuzz target `multiaddr`: see `punchr_fuzz_entry::multiaddr`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = punchr_fuzz_entry::multiaddr(data);
});
