//! Record values: slices of one 1 MiB pool of word-like text, the same bytes for every client.
//!
//! A constant value would compress to nothing and flatter the codec cases; random bytes would
//! not compress at all. Words drawn from a small vocabulary compress about as well as typical
//! JSON-ish payloads (2-4x), so the codecs do real work.

use bytes::Bytes;

const POOL: usize = 1 << 20;
const WORDS: &[&str] = &[
    "order",
    "id",
    "customer",
    "total",
    "price",
    "sku",
    "status",
    "shipped",
    "pending",
    "user",
    "event",
    "click",
    "view",
    "session",
    "amount",
    "currency",
    "EUR",
    "USD",
    "true",
    "false",
    "null",
    "timestamp",
    "region",
    "eu-west",
    "us-east",
    "item",
    "quantity",
    "warehouse",
];

/// The pool and the value of each record.
#[derive(Debug, Clone)]
pub struct Payload {
    pool: Bytes,
    size: usize,
}

impl Payload {
    /// A pool for values of `size` bytes (at most 512 KiB).
    pub fn new(size: usize) -> Payload {
        assert!(size <= POOL / 2, "value size {size} too large for the pool");
        let mut pool = Vec::with_capacity(POOL + 64);
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut n: u64 = 0;
        while pool.len() < POOL {
            // xorshift64*: deterministic, so every run and client sends the same bytes.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
            pool.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
            if r >> 60 == 0 {
                n += r >> 40 & 0xffff;
                pool.extend_from_slice(n.to_string().as_bytes());
            }
            pool.push(if r >> 58 & 3 == 0 { b',' } else { b' ' });
        }
        pool.truncate(POOL);
        Payload {
            pool: Bytes::from(pool),
            size,
        }
    }

    fn offset(&self, i: u64) -> usize {
        // A stride that is not a multiple of anything small, so consecutive records differ.
        ((i.wrapping_mul(7919)) % (POOL - self.size) as u64) as usize
    }

    /// The value of record `i` as a slice of the pool.
    pub fn slice(&self, i: u64) -> &[u8] {
        let at = self.offset(i);
        &self.pool[at..at + self.size]
    }

    /// The 64-bit FNV-1a hash of the pool: the external workers (`external.rs`) generate
    /// the pool themselves and check it against this.
    pub fn fnv(&self) -> u64 {
        self.pool.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// The value of record `i` sharing the pool's buffer (no copy).
    pub fn bytes(&self, i: u64) -> Bytes {
        let at = self.offset(i);
        self.pool.slice(at..at + self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_size_and_are_deterministic() {
        let a = Payload::new(100);
        let b = Payload::new(100);
        for i in [0, 1, 2, 99_999] {
            assert_eq!(a.slice(i).len(), 100);
            assert_eq!(a.slice(i), b.slice(i));
            assert_eq!(&a.bytes(i)[..], a.slice(i));
        }
        assert_ne!(a.slice(0), a.slice(1));
    }

    #[test]
    fn the_pool_hash_is_the_one_the_go_and_java_workers_compute() {
        // bench/go/payload.go and bench/java/BenchWorker.java generate the pool themselves
        // and printed this hash (`payload pool differs ...: fnv 1fecda39d57cfffc`): a change
        // to the generator here must be made there too.
        assert_eq!(Payload::new(100).fnv(), 0x1fec_da39_d57c_fffc);
        assert_eq!(Payload::new(1024).fnv(), Payload::new(100).fnv());
    }
}
