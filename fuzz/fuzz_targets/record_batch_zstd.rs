//! A Fetch response's record set, with the first batch forced to codec `zstd` and given a
//! correct CRC (see `ferrokafka::fuzzing::record_batches`).
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::bounded(
    "record_batch_zstd",
    data,
    ferrokafka::fuzzing::MAX_DECOMPRESSED * common::FACTOR
));
