#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fastproxy_fuzz::sv2_session(data));
