#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bittide_core::fuzzing::torrent_swarm(data));
