//! `Config::from_url` on arbitrary text: see `ringdis::fuzzing::config_url`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringdis::fuzzing::config_url(data));
