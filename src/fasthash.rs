//! A fast, non-cryptographic hasher for maps keyed by topic name on the produce hot path.
//!
//! Every `send` looks its topic up (and the default partitioner does too); std's SipHash made
//! those lookups about a fifth of the producer's per-record instructions. Topic names come from
//! the application, not from the network, so HashDoS resistance buys nothing here. The mixing
//! step is the well-known "Fx" multiply-rotate (as used by rustc), written out here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` using [`FxHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Multiply-rotate hasher over 8-byte words.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn h(s: &str) -> u64 {
        BuildHasherDefault::<FxHasher>::default().hash_one(s)
    }

    #[test]
    fn distinguishes_names_that_share_prefixes_and_lengths() {
        let names = [
            "orders",
            "orders-v2",
            "orders-v3",
            "a",
            "b",
            "abcdefgh",
            "abcdefgi",
            "",
        ];
        let hashes: std::collections::HashSet<u64> = names.iter().map(|n| h(n)).collect();
        assert_eq!(hashes.len(), names.len());
        let mut m: FastMap<String, usize> = FastMap::default();
        for (i, n) in names.iter().enumerate() {
            m.insert(n.to_string(), i);
        }
        assert_eq!(m["orders-v2"], 1);
        assert_eq!(m.get("orders-v4"), None);
    }
}
