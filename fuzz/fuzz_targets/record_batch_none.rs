//! A Fetch response's record set, with the first batch forced to codec `none` and given a
//! correct CRC (see `ferrokafka::fuzzing::record_batches`).
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::bounded(
    "record_batch_none",
    data,
    0
));
