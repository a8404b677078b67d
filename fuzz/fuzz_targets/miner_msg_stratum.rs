#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fastproxy_fuzz::miner_msg_stratum(data));
