#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bittide_core::fuzzing::listing(data));
