//! Consumer-protocol group metadata: first byte's low bit picks assignment (1) or
//! subscription (0), the rest is the version-prefixed bytes as JoinGroup/SyncGroup carry them.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::bounded("consumer_protocol", data, 0));
