//! Snowflakes, timestamps and random tokens.
//!
//! Discord ids are snowflakes: milliseconds since the Discord epoch in the top 42 bits.
//! Real clients derive things from them (creation time, the owning shard
//! `(guild_id >> 22) % shard_count`), so the simulator mints real ones instead of
//! small counters.

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// 2015-01-01T00:00:00Z, Discord's epoch, in Unix milliseconds.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Mints strictly increasing snowflakes.
#[derive(Debug, Default)]
pub struct Snowflakes {
    last: AtomicU64,
    /// Ids to hand out before minting (see `SimConfig::first_ids`).
    first: Mutex<VecDeque<u64>>,
}

impl Snowflakes {
    /// Hands out `first` in order, then mints new ids above all of them.
    pub fn starting_with(first: Vec<u64>) -> Snowflakes {
        Snowflakes {
            last: AtomicU64::new(first.iter().copied().max().unwrap_or(0)),
            first: Mutex::new(first.into()),
        }
    }

    /// The next id; ids minted in the same millisecond share the timestamp part.
    pub fn next(&self) -> u64 {
        if let Some(id) = self.take_first() {
            return id;
        }
        let now = now_ms().saturating_sub(DISCORD_EPOCH_MS) << 22;
        self.bump(|last| now.max(last + 1))
    }

    /// The next id with a timestamp part no other id has. Used for guilds so that
    /// guilds created in a row land on consecutive shards
    /// (`(id >> 22) % shards`), which makes multi-shard tests deterministic.
    pub fn next_unique_ms(&self) -> u64 {
        if let Some(id) = self.take_first() {
            return id;
        }
        let now = now_ms().saturating_sub(DISCORD_EPOCH_MS);
        self.bump(|last| now.max((last >> 22) + 1) << 22)
    }

    fn take_first(&self) -> Option<u64> {
        self.first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    }

    fn bump(&self, f: impl Fn(u64) -> u64) -> u64 {
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let id = f(last);
            match self
                .last
                .compare_exchange(last, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return id,
                Err(actual) => last = actual,
            }
        }
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Unix time in seconds.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// The creation time of a snowflake, as Unix milliseconds.
pub fn snowflake_ms(id: u64) -> u64 {
    (id >> 22) + DISCORD_EPOCH_MS
}

/// Formats Unix milliseconds the way Discord does: `2024-05-01T12:00:00.123000+00:00`.
pub fn iso8601(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let micros = (unix_ms % 1000) * 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses the ISO-8601 timestamps clients send (`communication_disabled_until`) into
/// Unix milliseconds. Accepts `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`.
pub fn parse_iso8601(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        let padded = format!("{digits:0<3}");
        millis = padded[..3].parse().ok()?;
        rest = &frac[digits.len()..];
    }
    let offset_min = match rest {
        "Z" | "z" | "" => 0,
        _ => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let hh: i64 = rest.get(1..3)?.parse().ok()?;
            let mm: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hh * 60 + mm)
        }
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    u64::try_from(secs * 1000 + millis).ok()
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A random u64 without a `rand` dependency: every `RandomState` is seeded from the
/// OS's randomness. Good enough for session ids, interaction tokens and a test key.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u64(now_ms());
    h.finish()
}

/// `n` random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(8) {
        let r = random_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    out
}

/// A random lowercase hex string of `bytes * 2` characters.
pub fn random_hex(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes * 2);
    while s.len() < bytes * 2 {
        s.push_str(&format!("{:016x}", random_u64()));
    }
    s.truncate(bytes * 2);
    s
}

/// Lowercase hex of `data`.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+`, as in paths and headers).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_roundtrip() {
        let ms = 1_714_564_800_123;
        let s = iso8601(ms);
        assert_eq!(s, "2024-05-01T12:00:00.123000+00:00");
        assert_eq!(parse_iso8601(&s), Some(ms));
        assert_eq!(
            parse_iso8601("2024-05-01T14:00:00+02:00"),
            Some(1_714_564_800_000)
        );
        assert_eq!(
            parse_iso8601("2024-05-01T12:00:00Z"),
            Some(1_714_564_800_000)
        );
    }

    #[test]
    fn snowflakes_increase_and_unique_ms_differ() {
        let s = Snowflakes::default();
        let a = s.next();
        let b = s.next();
        assert!(b > a);
        let g1 = s.next_unique_ms();
        let g2 = s.next_unique_ms();
        assert_eq!((g2 >> 22) - (g1 >> 22), 1);
        assert!(s.next() > g2);
    }

    #[test]
    fn first_ids_come_out_in_order_then_new_ones_above_them() {
        let old = Snowflakes::default();
        let earlier: Vec<u64> = (0..3).map(|_| old.next()).collect();
        let s = Snowflakes::starting_with(vec![earlier[1], earlier[0], earlier[2]]);
        assert_eq!(s.next(), earlier[1]);
        assert_eq!(s.next_unique_ms(), earlier[0]);
        assert_eq!(s.next(), earlier[2]);
        assert!(s.next() > earlier[2]);
    }

    #[test]
    fn percent() {
        assert_eq!(percent_decode("%F0%9F%91%8D"), "👍");
        assert_eq!(percent_decode("a%20b%"), "a b%");
        assert_eq!(percent_decode("name:123"), "name:123");
    }
}
