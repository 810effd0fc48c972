#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bittide_driver::fuzzing::receive_buffer(data));
