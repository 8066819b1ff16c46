//! Choosing without a random number generator, and the clock.
//!
//! `std`'s randomness does work in `wasm32-wasip2` (through `wasi:random`,
//! which the host caps), but a hash of what is known is enough here and
//! better in two ways: the 8-ball can give the same answer to the same
//! question (asking again does not reroll it), and the hash is the same on
//! every platform and Rust version (`std`'s `DefaultHasher` promises
//! neither), so what a test sees natively is what the component does.

use townes_sdk::Snowflake;

/// FNV-1a over the parts (each followed by a separator byte, so `["ab", "c"]`
/// and `["a", "bc"]` differ), finished with SplitMix64 so that seeds a unit
/// apart land far apart.
pub fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in part.iter().chain(&[0xff]) {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The item `seed` lands on; `None` only when `items` is empty.
pub fn pick<T>(items: &[T], seed: u64) -> Option<&T> {
    if items.is_empty() {
        return None;
    }
    items.get((seed % items.len() as u64) as usize)
}

/// A seed that changes from one call to the next: who asks, where, and the
/// clock's nanoseconds.
pub fn fresh_seed(user_id: Snowflake, channel_id: Snowflake) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hash(&[
        &user_id.to_le_bytes(),
        &channel_id.to_le_bytes(),
        &nanos.to_le_bytes(),
    ])
}

pub use townes_sdk::time::now;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_and_separates_its_parts() {
        assert_eq!(hash(&[b"ab", b"c"]), hash(&[b"ab", b"c"]));
        assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"a", b"bc"]));
        assert_ne!(hash(&[b"1"]), hash(&[b"2"]));
        // Pinned: a change here changes every 8-ball answer ever given.
        assert_eq!(hash(&[]), 0xf52a_15e9_a9b5_e89b);
    }

    #[test]
    fn picks_cover_the_list_and_an_empty_list_has_none() {
        let items = [1, 2, 3, 4, 5];
        let mut seen: Vec<i32> = (0..200u64)
            .map(|n| *pick(&items, hash(&[&n.to_le_bytes()])).unwrap())
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, items);
        assert_eq!(pick::<i32>(&[], 7), None);
    }
}
