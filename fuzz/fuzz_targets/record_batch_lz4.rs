//! A Fetch response's record set, with the first batch forced to codec `lz4` and given a
//! correct CRC (see `ferrokafka::fuzzing::record_batches`).
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::bounded(
    "record_batch_lz4",
    data,
    ferrokafka::fuzzing::MAX_DECOMPRESSED * common::FACTOR
));
