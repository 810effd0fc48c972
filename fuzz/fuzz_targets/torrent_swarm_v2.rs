#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bittide_core::fuzzing::torrent_swarm_v2(data));
