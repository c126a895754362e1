//! A response frame for every API the client decodes: first byte picks the API, second the
//! version within the client's range, the rest is the frame after its length prefix.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::bounded("response_frame", data, 0));
