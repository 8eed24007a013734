//! `FromRedis` into the common and derived types from arbitrary values: see
//! `ringdis::fuzzing::decode_value`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringdis::fuzzing::decode_value(data));
