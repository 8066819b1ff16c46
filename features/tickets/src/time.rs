//! Time as the feature counts it: Unix seconds, shown in UTC.

pub use townes_sdk::time::{format_unix, now};

/// An RFC 3339 timestamp from Discord (`2024-01-01T00:00:00.000000+00:00`)
/// as `2024-01-01 00:00:00 UTC`; anything else as it is.
pub fn format_rfc3339(timestamp: &str) -> String {
    match (
        timestamp.get(..10),
        timestamp.get(10..11),
        timestamp.get(11..19),
    ) {
        (Some(date), Some("T"), Some(time)) => format!("{date} {time} UTC"),
        _ => timestamp.to_string(),
    }
}

/// `1 hour`, `90 minutes`, `2 days`: the largest unit that divides evenly.
pub fn human_duration(seconds: u64) -> String {
    let (n, unit) = match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}
