//! Stripe-style ids (`cus_…`, `sub_…`) and the clock.
//!
//! Stripe ids are a type prefix and random base62; hosts store them as opaque
//! strings, so the simulator mints the same shape (not counters, which would hide
//! code that parses or compares them).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Mints random ids; every id comes from its own stream (a seed plus a counter),
/// so two ids never share a sequence.
#[derive(Debug)]
pub struct Ids {
    seed: u64,
    counter: AtomicU64,
}

impl Default for Ids {
    fn default() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        Self {
            seed: h.finish(),
            counter: AtomicU64::new(0),
        }
    }
}

impl Ids {
    /// `prefix` followed by `len` random base62 characters.
    pub fn make(&self, prefix: &str, len: usize) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut x = splitmix(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut id = String::with_capacity(prefix.len() + len);
        id.push_str(prefix);
        for _ in 0..len {
            x = splitmix(x);
            id.push(BASE62[(x % 62) as usize] as char);
        }
        id
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Unix time in seconds, what every Stripe timestamp is.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_prefix_and_differ() {
        let ids = Ids::default();
        let a = ids.make("cus_", 14);
        let b = ids.make("cus_", 14);
        assert!(a.starts_with("cus_") && a.len() == 18, "{a}");
        assert!(a[4..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
