//! Fuzz target `grpc_request`: see `punchr_fuzz_entry::grpc_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = punchr_fuzz_entry::grpc_request(data);
});
