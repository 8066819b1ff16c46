//! Time for features: Unix seconds in UTC, the calendar arithmetic that
//! schedules need (Howard Hinnant's civil-date algorithms), and the RFC 3339
//! times Discord writes and people type.
//!
//! [`now`] reads the wall clock (WASI's, in a component). In native tests it
//! reads the [`MockHost`](crate::testing::MockHost)'s clock once the test
//! stopped it with [`MockHost::set_now`](crate::testing::MockHost::set_now).

/// Seconds in a minute.
pub const MINUTE: u64 = 60;
#[doc = "Seconds in an hour."]
pub const HOUR: u64 = 60 * MINUTE;
#[doc = "Seconds in a day (UTC has no leap seconds in Unix time)."]
pub const DAY: u64 = 24 * HOUR;
#[doc = "Seconds in a week."]
pub const WEEK: u64 = 7 * DAY;

/// Unix seconds now.
pub fn now() -> u64 {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(now) = crate::testing::mock_now() {
        return now;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Days from 1970-01-01 to the proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day counted from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Unix seconds of a UTC date and time; none for a date that does not exist
/// (`2026-02-30`) or lies before 1970.
pub fn unix(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<u64> {
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(seconds).ok()
}

/// The start (00:00 UTC) of the day `unix` falls in.
pub fn day_start(unix: u64) -> u64 {
    unix - unix % DAY
}

/// `2026-12-07`.
pub fn format_date(unix: u64) -> String {
    let (year, month, day) = civil_from_days((unix / DAY) as i64);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `09:30`.
pub fn format_time(unix: u64) -> String {
    let minute = unix % DAY / MINUTE;
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// `2026-12-07 09:30 UTC`.
pub fn format_unix(unix: u64) -> String {
    format!("{} {} UTC", format_date(unix), format_time(unix))
}

/// Unix seconds of an RFC 3339 date-time, as Discord writes them
/// (`2026-12-07T10:00:00.123456+00:00`): optional fractional seconds (dropped)
/// and any `±HH:MM` offset. Two relaxations for people typing one into a
/// command: a space may replace the `T` (RFC 3339 allows that too), and the
/// seconds and the zone may be left out (UTC is meant): `2026-12-07 10:00`.
/// None for anything else, or a time before 1970.
pub fn parse_datetime(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = text.get(from..from + len)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let separators = (text.get(4..5)?, text.get(7..8)?, text.get(10..11)?);
    if !matches!(separators, ("-", "-", "T" | "t" | " ")) || text.get(13..14)? != ":" {
        return None;
    }
    let (hour, minute) = (digits(11, 2)?, digits(14, 2)?);
    let mut rest = text.get(16..)?;
    let mut second = 0;
    if let Some(after) = rest.strip_prefix(':') {
        second = after
            .get(..2)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))?
            .parse()
            .ok()?;
        rest = after.get(2..)?;
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            rest = &fraction[digits..];
        }
    }
    let offset: i64 = match rest {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let (h, m) = (zone.get(1..3)?, zone.get(4..6)?);
            if zone.len() != 6 || zone.get(3..4)? != ":" {
                return None;
            }
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let local = unix(i64::from(year), month, day, hour, minute, second)?;
    u64::try_from(local as i64 - offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip_across_leap_years() {
        for days in [-1, 0, 59, 365, 10_956, 11_016, 20_454, 21_184, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(unix(2028, 2, 29, 0, 0, 0), Some(1_835_395_200));
        assert_eq!(unix(2026, 2, 29, 0, 0, 0), None, "2026 is no leap year");
        assert_eq!(unix(2100, 2, 29, 0, 0, 0), None, "nor is 2100");
        assert_eq!(unix(2026, 4, 31, 0, 0, 0), None);
        assert_eq!(unix(1969, 12, 31, 23, 59, 59), None);
    }

    #[test]
    fn date_times_parse_with_offsets_and_the_relaxed_forms() {
        let ten = unix(2026, 12, 7, 10, 0, 0).unwrap();
        for text in [
            "2026-12-07T10:00:00Z",
            "2026-12-07T10:00:00.123456+00:00",
            "2026-12-07T11:30:00+01:30",
            "2026-12-07T05:00:00-05:00",
            "2026-12-07 10:00",
            "2026-12-07t10:00z",
            " 2026-12-07T10:00 ",
        ] {
            assert_eq!(parse_datetime(text), Some(ten), "{text}");
        }
        for bad in [
            "",
            "2026-12-07",
            "2026-12-07T10",
            "2026-13-07T10:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-12-07T24:00:00Z",
            "2026-12-07T10:00:00+2",
            "2026-12-07T10:00:00.Z",
            "2026/12/07 10:00",
            "tomorrow",
            "2026-12-07T10:00:00+0200",
            "2026-12-07T10:00:00Zjunk",
            "2026-12-07T10:00:0xZ",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(format_unix(ten + 570 * 60), "2026-12-07 19:30 UTC");
    }

    #[test]
    fn discords_timestamps_parse_to_unix_seconds() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_datetime("2000-03-01T00:00:00+00:00"),
            Some(951_868_800)
        );
        assert_eq!(parse_datetime("2024-02-29T12:00:00Z"), Some(1_709_208_000));
        assert_eq!(
            parse_datetime("2024-01-01T02:00:00.123456789+02:00"),
            Some(1_704_067_200)
        );
        assert_eq!(
            parse_datetime("2023-12-31T23:30:00-00:30"),
            Some(1_704_067_200)
        );
        assert_eq!(parse_datetime("1969-12-31T23:59:59Z"), None);
    }

    #[test]
    fn tests_stop_the_clock_on_the_mock_host() {
        let host = crate::testing::MockHost::new();
        let real = now();
        assert!(real > 1_700_000_000, "the wall clock without a set time");
        host.set_now(1_000);
        assert_eq!(now(), 1_000);
        drop(host);
        assert!(now() >= real, "no mock, no stopped clock");
    }
}
