//! When an announcement runs: the schedules, how people write them, and the
//! pure next-run arithmetic (no host calls; `now` is always an argument).
//!
//! - **once** at a moment (`{"at": 1796637600}`, or an RFC 3339 string in the
//!   API);
//! - **every** interval, at least [`MIN_EVERY`] (`{"every": "6h"}`); the
//!   interval keeps its phase from the first run;
//! - **daily** at a UTC time (`{"daily": "09:30"}`);
//! - **weekly** on a day at a UTC time (`{"weekly": {"day": "mon", "time":
//!   "09:30"}}`).
//!
//! Daily and weekly cover what people use cron for in announcements; a full
//! cron parser (several times a day, days of the month, …) is deliberately not
//! here. All times are UTC: the platform has no per-guild time zone.

use crate::time::{self, DAY, HOUR, MINUTE, WEEK};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use townes_sdk::Error;
use townes_sdk::serde_json::{Value, json};

/// The shortest interval: a guild's pending jobs are few, and a channel
/// flooded every minute is not an announcement.
pub const MIN_EVERY: u64 = 10 * MINUTE;
/// The longest interval, and how far ahead a one-off may be: the host takes
/// job delays of at most 366 days, so every run fits one job.
pub const MAX_AHEAD: u64 = 365 * DAY;

/// A day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// 0 for Monday … 6 for Sunday.
    pub fn index(self) -> u64 {
        self as u64
    }

    /// The weekday `unix` falls on (1970-01-01 was a Thursday).
    pub fn of(unix: u64) -> Weekday {
        Self::ALL[((unix / DAY + 3) % 7) as usize]
    }

    /// `mon`, as the API writes it.
    pub fn short(self) -> &'static str {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][self as usize]
    }

    /// `Monday`.
    pub fn name(self) -> &'static str {
        [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ][self as usize]
    }

    /// `mon`, `Mon`, `monday`, `MONDAY`, `mond`: at least three letters of the
    /// English name.
    pub fn parse(text: &str) -> Result<Weekday, Error> {
        let text = text.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|d| text.len() >= 3 && d.name().to_ascii_lowercase().starts_with(&text))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "day `{text}`: use mon, tue, wed, thu, fri, sat or sun"
                ))
            })
    }
}

/// When an announcement runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Once, at Unix seconds `at`.
    Once { at: u64 },
    /// Every `seconds`, counted from the first run.
    Every { seconds: u64 },
    /// Every day at `minute` of the day, UTC.
    Daily { minute: u32 },
    /// Every week on `day` at `minute` of the day, UTC.
    Weekly { day: Weekday, minute: u32 },
}

impl Schedule {
    pub fn is_recurring(&self) -> bool {
        !matches!(self, Schedule::Once { .. })
    }

    /// The first run strictly after `now`, when the schedule starts (created,
    /// resumed, changed, or the feature re-enabled); none for a one-off whose
    /// moment has passed.
    pub fn first_after(&self, now: u64) -> Option<u64> {
        match *self {
            Schedule::Once { at } => (at > now).then_some(at),
            Schedule::Every { seconds } => Some(now + seconds.max(1)),
            Schedule::Daily { minute } => {
                let today = time::day_start(now) + u64::from(minute) * MINUTE;
                Some(if today > now { today } else { today + DAY })
            }
            Schedule::Weekly { day, minute } => {
                let days_ahead = (day.index() + 7 - Weekday::of(now).index()) % 7;
                let that_day = time::day_start(now) + days_ahead * DAY + u64::from(minute) * MINUTE;
                Some(if that_day > now {
                    that_day
                } else {
                    that_day + WEEK
                })
            }
        }
    }

    /// The run after the one that was due at `due`, when it actually happens
    /// at `now`: the first occurrence after both. On time (`now` ≈ `due`) that
    /// is simply the next occurrence; late (after downtime) every occurrence
    /// that passed meanwhile is skipped, so a backlog is never posted.
    /// Intervals keep their phase (`due` + a whole number of intervals).
    pub fn after_run(&self, due: u64, now: u64) -> Option<u64> {
        match *self {
            Schedule::Once { .. } => None,
            Schedule::Every { seconds } => {
                let seconds = seconds.max(1);
                let passed = now.saturating_sub(due) / seconds;
                Some(due + (passed + 1) * seconds)
            }
            Schedule::Daily { .. } | Schedule::Weekly { .. } => self.first_after(now.max(due)),
        }
    }

    /// `every 6 hours`, `daily at 09:30 UTC`, `every Monday at 09:30 UTC`,
    /// `once, at 2026-12-07 10:00 UTC`.
    pub fn describe(&self) -> String {
        match *self {
            Schedule::Once { at } => format!("once, at {}", time::format_unix(at)),
            Schedule::Every { seconds } => format!("every {}", human_interval(seconds)),
            Schedule::Daily { minute } => {
                format!("daily at {} UTC", time::format_minute_of_day(minute))
            }
            Schedule::Weekly { day, minute } => format!(
                "every {} at {} UTC",
                day.name(),
                time::format_minute_of_day(minute)
            ),
        }
    }

    /// The JSON form (what the API answers and storage keeps).
    pub fn to_json(&self) -> Value {
        match *self {
            Schedule::Once { at } => json!({ "at": at }),
            Schedule::Every { seconds } => json!({ "every": compact_interval(seconds) }),
            Schedule::Daily { minute } => json!({ "daily": time::format_minute_of_day(minute) }),
            Schedule::Weekly { day, minute } => json!({
                "weekly": { "day": day.short(), "time": time::format_minute_of_day(minute) }
            }),
        }
    }

    /// Reads the JSON form; `at` may also be an RFC 3339 string. Refusals say
    /// what a good value looks like.
    pub fn from_json(value: &Value) -> Result<Schedule, Error> {
        let shapes = "a schedule is one of {\"at\": \"2026-12-07T10:00:00Z\"}, {\"every\": \"6h\"}, \
                      {\"daily\": \"09:30\"} or {\"weekly\": {\"day\": \"mon\", \"time\": \"09:30\"}} (UTC)";
        let Some(object) = value.as_object().filter(|o| o.len() == 1) else {
            return Err(Error::invalid(shapes));
        };
        let (kind, value) = object.iter().next().ok_or_else(|| Error::invalid(shapes))?;
        match (kind.as_str(), value) {
            ("at", Value::Number(n)) => n
                .as_u64()
                .map(|at| Schedule::Once { at })
                .ok_or_else(|| Error::invalid("at: Unix seconds, e.g. 1796637600")),
            ("at", Value::String(text)) => time::parse_datetime(text)
                .map(|at| Schedule::Once { at })
                .ok_or_else(|| bad_at(text)),
            ("every", Value::String(text)) => Ok(Schedule::Every {
                seconds: parse_every(text)?,
            }),
            ("daily", Value::String(text)) => Ok(Schedule::Daily {
                minute: parse_time_of_day(text)?,
            }),
            ("weekly", Value::String(text)) => parse_weekly(text),
            ("weekly", Value::Object(weekly)) => {
                let field = |name: &str| weekly.get(name).and_then(Value::as_str);
                match (field("day"), field("time"), weekly.len()) {
                    (Some(day), Some(time), 2) => Ok(Schedule::Weekly {
                        day: Weekday::parse(day)?,
                        minute: parse_time_of_day(time)?,
                    }),
                    _ => Err(Error::invalid(
                        "weekly: {\"day\": \"mon\", \"time\": \"09:30\"} (UTC)",
                    )),
                }
            }
            _ => Err(Error::invalid(shapes)),
        }
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Schedule::from_json(&value).map_err(|e| match e {
            Error::InvalidArgument(why) => serde::de::Error::custom(why),
            other => serde::de::Error::custom(format!("{other:?}")),
        })
    }
}

fn bad_at(text: &str) -> Error {
    Error::invalid(format!(
        "at `{text}`: give a UTC time like 2026-12-07T10:00:00Z (or 2026-12-07 10:00), \
         Unix seconds, or `in 2h`"
    ))
}

/// Seconds of `text`: numbers with units, spaces allowed — `90s`, `10m`,
/// `1h30m`, `6 hours`, `2d`, `1w`.
pub fn parse_duration(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number: u64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match rest[..letters].to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => MINUTE,
            "h" | "hr" | "hrs" | "hour" | "hours" => HOUR,
            "d" | "day" | "days" => DAY,
            "w" | "wk" | "week" | "weeks" => WEEK,
            _ => return None,
        };
        rest = rest[letters..].trim_start();
        total = total.checked_add(number.checked_mul(unit)?)?;
    }
    Some(total)
}

/// An `every` interval: [`parse_duration`], at least [`MIN_EVERY`], at most
/// [`MAX_AHEAD`].
pub fn parse_every(text: &str) -> Result<u64, Error> {
    let seconds = parse_duration(text).ok_or_else(|| {
        Error::invalid(format!(
            "every `{text}`: a number with a unit, e.g. 30m, 6h, 1h30m, 2d or 1w"
        ))
    })?;
    if seconds < MIN_EVERY {
        return Err(Error::invalid(format!(
            "every `{text}` is too often: at least every 10 minutes (10m)"
        )));
    }
    if seconds > MAX_AHEAD {
        return Err(Error::invalid(format!(
            "every `{text}` is too long: at most every 365 days (365d)"
        )));
    }
    Ok(seconds)
}

/// Minute of the day of `HH:MM` (24-hour, UTC); `9:30` is fine too.
pub fn parse_time_of_day(text: &str) -> Result<u32, Error> {
    let bad = || {
        Error::invalid(format!(
            "time `{text}`: a 24-hour UTC time as HH:MM, e.g. 09:30 or 21:00"
        ))
    };
    let (hours, minutes) = text.trim().split_once(':').ok_or_else(bad)?;
    let number = |part: &str, len: std::ops::RangeInclusive<usize>, max: u32| {
        let ok = len.contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| part.parse::<u32>().ok())
            .flatten()
            .filter(|&n| n <= max)
    };
    match (number(hours, 1..=2, 23), number(minutes, 2..=2, 59)) {
        (Some(h), Some(m)) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

/// `mon 09:30` (or `monday 9:30`, `Mon,09:30`) as a weekly schedule.
pub fn parse_weekly(text: &str) -> Result<Schedule, Error> {
    let mut parts = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|p| !p.is_empty());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(day), Some(time), None) => Ok(Schedule::Weekly {
            day: Weekday::parse(day)?,
            minute: parse_time_of_day(time)?,
        }),
        _ => Err(Error::invalid(format!(
            "weekly `{text}`: a day and a UTC time, e.g. `mon 09:30`"
        ))),
    }
}

/// A one-off's moment as people type it: an RFC 3339 time (see
/// [`time::parse_datetime`]), Unix seconds, or `in 2h` from `now`.
pub fn parse_at(text: &str, now: u64) -> Result<u64, Error> {
    let trimmed = text.trim();
    if let Some(after) = trimmed.strip_prefix("in ") {
        return parse_duration(after)
            .and_then(|d| now.checked_add(d))
            .ok_or_else(|| bad_at(text));
    }
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed.parse().map_err(|_| bad_at(text));
    }
    time::parse_datetime(trimmed).ok_or_else(|| bad_at(text))
}

/// A new schedule must be able to run: a one-off lies ahead, but not more than
/// [`MAX_AHEAD`].
pub fn check_startable(schedule: &Schedule, now: u64) -> Result<(), Error> {
    if let Schedule::Once { at } = *schedule {
        if at <= now {
            return Err(Error::invalid(format!(
                "at {} has already passed (it is {} now); pick a later time",
                time::format_unix(at),
                time::format_unix(now)
            )));
        }
        if at - now > MAX_AHEAD {
            return Err(Error::invalid(format!(
                "at {} is too far ahead: at most 365 days from now",
                time::format_unix(at)
            )));
        }
    }
    Ok(())
}

/// `1h30m`, `6h`, `2d`: the compact form the API writes.
pub fn compact_interval(seconds: u64) -> String {
    let mut out = String::new();
    let mut rest = seconds;
    for (unit, letter) in [(DAY, 'd'), (HOUR, 'h'), (MINUTE, 'm'), (1, 's')] {
        if rest >= unit {
            out.push_str(&format!("{}{letter}", rest / unit));
            rest %= unit;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// `6 hours`, `90 minutes`, `2 weeks`: the largest unit that divides evenly.
pub fn human_interval(seconds: u64) -> String {
    let (n, unit) = match seconds {
        s if s >= WEEK && s % WEEK == 0 => (s / WEEK, "week"),
        s if s >= DAY && s % DAY == 0 => (s / DAY, "day"),
        s if s >= HOUR && s % HOUR == 0 => (s / HOUR, "hour"),
        s if s >= MINUTE && s % MINUTE == 0 => (s / MINUTE, "minute"),
        s => (s, "second"),
    };
    if n == 1 {
        unit.to_string()
    } else {
        format!("{n} {unit}s")
    }
}

/// The delay of a job that should run at `at`, scheduled at `now` (the host
/// rounds 0 up to a second).
pub fn delay_until(at: u64, now: u64) -> u32 {
    u32::try_from(at.saturating_sub(now)).unwrap_or(u32::MAX)
}
