//! The RESP parser on arbitrary bytes fed in the chunks the input chooses: see
//! `ringdis::fuzzing::resp_parse` for the input layout and the properties checked.
#![no_main]

fn meter(f: &mut dyn FnMut()) -> u64 {
    allocation_counter::measure(f).bytes_total
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringdis::fuzzing::resp_parse(data, meter));
