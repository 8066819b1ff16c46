//! The pure next-run arithmetic and how schedules are written.

use super::*;
use crate::schedule::*;
use crate::time::unix;

fn utc(year: i64, month: u32, day: u32, hour: u32, minute: u32) -> u64 {
    unix(year, month, day, hour, minute, 0).unwrap()
}

fn daily(hh_mm: &str) -> Schedule {
    Schedule::Daily {
        minute: parse_time_of_day(hh_mm).unwrap(),
    }
}

fn weekly(day: Weekday, hh_mm: &str) -> Schedule {
    Schedule::Weekly {
        day,
        minute: parse_time_of_day(hh_mm).unwrap(),
    }
}

#[test]
fn weekdays_are_counted_from_a_thursday() {
    assert_eq!(Weekday::of(0), Weekday::Thu, "1970-01-01");
    assert_eq!(Weekday::of(utc(2000, 1, 1, 12, 0)), Weekday::Sat);
    assert_eq!(Weekday::of(utc(2024, 2, 29, 23, 59)), Weekday::Thu);
    assert_eq!(Weekday::of(T0), Weekday::Mon);
    assert_eq!(Weekday::of(utc(2026, 12, 13, 23, 59)), Weekday::Sun);
    assert_eq!(Weekday::of(utc(2026, 12, 14, 0, 0)), Weekday::Mon);
    assert_eq!(MONDAY, utc(2026, 12, 7, 0, 0));
}

#[test]
fn every_starts_from_now_and_keeps_its_phase() {
    let every = Schedule::Every { seconds: 6 * HOUR };
    assert_eq!(every.first_after(T0), Some(T0 + 6 * HOUR));
    let due = T0 + 6 * HOUR;
    // On time, or a little late: the next slot of the grid.
    assert_eq!(every.after_run(due, due), Some(due + 6 * HOUR));
    assert_eq!(every.after_run(due, due + 90), Some(due + 6 * HOUR));
    // Exactly one interval late: that slot is now, so the one after.
    assert_eq!(every.after_run(due, due + 6 * HOUR), Some(due + 12 * HOUR));
    // Three days and an hour late: twelve slots were missed and are skipped.
    let now = due + 3 * DAY + HOUR;
    assert_eq!(every.after_run(due, now), Some(due + 13 * 6 * HOUR));
    assert_eq!(every.after_run(due, now).unwrap() - now, 5 * HOUR);
    // A job early (clock skew): still the next slot, never `due` again.
    assert_eq!(every.after_run(due, due - 5), Some(due + 6 * HOUR));
}

#[test]
fn daily_runs_today_when_still_ahead_else_tomorrow_across_months_and_years() {
    let at_930 = daily("09:30");
    assert_eq!(
        at_930.first_after(T0),
        Some(MONDAY + 9 * HOUR + 30 * MINUTE)
    );
    assert_eq!(
        at_930.first_after(MONDAY + 9 * HOUR + 30 * MINUTE),
        Some(MONDAY + DAY + 9 * HOUR + 30 * MINUTE),
        "exactly at the time: that run is the current one, the next is tomorrow"
    );
    assert_eq!(
        at_930.first_after(utc(2026, 1, 31, 10, 0)),
        Some(utc(2026, 2, 1, 9, 30))
    );
    assert_eq!(
        at_930.first_after(utc(2026, 2, 28, 9, 31)),
        Some(utc(2026, 3, 1, 9, 30)),
        "no 29 February in 2026"
    );
    assert_eq!(
        at_930.first_after(utc(2028, 2, 28, 12, 0)),
        Some(utc(2028, 2, 29, 9, 30)),
        "2028 has one"
    );
    assert_eq!(
        daily("00:00").first_after(utc(2026, 12, 31, 23, 59)),
        Some(utc(2027, 1, 1, 0, 0))
    );
    assert_eq!(
        daily("23:59").first_after(utc(2026, 12, 31, 0, 0)),
        Some(utc(2026, 12, 31, 23, 59))
    );
    // Late after downtime: due Monday 09:30, running Thursday 15:00 → Friday.
    let due = MONDAY + 9 * HOUR + 30 * MINUTE;
    assert_eq!(
        at_930.after_run(due, MONDAY + 3 * DAY + 15 * HOUR),
        Some(MONDAY + 4 * DAY + 9 * HOUR + 30 * MINUTE)
    );
    assert_eq!(at_930.after_run(due, due + 3), Some(due + DAY));
}

#[test]
fn weekly_wraps_around_the_week_and_the_year() {
    let monday_930 = weekly(Weekday::Mon, "09:30");
    assert_eq!(
        monday_930.first_after(T0),
        Some(MONDAY + 9 * HOUR + 30 * MINUTE),
        "Monday 08:00: later today"
    );
    assert_eq!(
        monday_930.first_after(MONDAY + 10 * HOUR),
        Some(MONDAY + 7 * DAY + 9 * HOUR + 30 * MINUTE),
        "Monday 10:00: next week"
    );
    assert_eq!(
        monday_930.first_after(utc(2026, 12, 13, 22, 0)),
        Some(utc(2026, 12, 14, 9, 30)),
        "Sunday evening: the next day"
    );
    assert_eq!(
        weekly(Weekday::Fri, "17:00").first_after(utc(2026, 12, 12, 8, 0)),
        Some(utc(2026, 12, 18, 17, 0)),
        "Saturday to Friday: six days"
    );
    assert_eq!(
        weekly(Weekday::Fri, "09:00").first_after(utc(2026, 12, 31, 12, 0)),
        Some(utc(2027, 1, 1, 9, 0)),
        "Thursday 31 December to Friday 1 January"
    );
    assert_eq!(
        weekly(Weekday::Sun, "09:00").first_after(utc(2028, 2, 27, 9, 0)),
        Some(utc(2028, 3, 5, 9, 0)),
        "across 29 February"
    );
    // Three weeks late, on a Tuesday: the coming Monday, nothing in between.
    let due = MONDAY + 9 * HOUR + 30 * MINUTE;
    assert_eq!(
        monday_930.after_run(due, MONDAY + 22 * DAY),
        Some(MONDAY + 28 * DAY + 9 * HOUR + 30 * MINUTE)
    );
}

#[test]
fn a_one_off_runs_once_and_never_after() {
    let at = T0 + HOUR;
    let once = Schedule::Once { at };
    assert!(!once.is_recurring());
    assert_eq!(once.first_after(T0), Some(at));
    assert_eq!(once.first_after(at), None, "its moment is not after itself");
    assert_eq!(once.first_after(at + 1), None);
    assert_eq!(once.after_run(at, at), None);
    assert_eq!(once.after_run(at, at + 10 * DAY), None);
    assert!(Schedule::Every { seconds: 600 }.is_recurring());
}

#[test]
fn intervals_parse_with_units_and_stay_within_bounds() {
    assert_eq!(parse_every("10m"), Ok(600));
    assert_eq!(parse_every("6h"), Ok(6 * HOUR));
    assert_eq!(parse_every("1h30m"), Ok(90 * MINUTE));
    assert_eq!(parse_every("6 hours"), Ok(6 * HOUR));
    assert_eq!(parse_every(" 2 days 12h "), Ok(60 * HOUR));
    assert_eq!(parse_every("1w"), Ok(7 * DAY));
    assert_eq!(parse_every("600s"), Ok(600));
    assert_eq!(parse_every("365d"), Ok(365 * DAY));
    for (bad, hint) in [
        ("5m", "at least every 10 minutes"),
        ("599s", "at least every 10 minutes"),
        ("366d", "at most every 365 days"),
        ("", "e.g. 30m"),
        ("6", "e.g. 30m"),
        ("h", "e.g. 30m"),
        ("6 fortnights", "e.g. 30m"),
        ("-6h", "e.g. 30m"),
        ("99999999999999999999w", "e.g. 30m"),
    ] {
        match parse_every(bad) {
            Err(Error::InvalidArgument(why)) => assert!(why.contains(hint), "{bad}: {why}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert_eq!(compact_interval(90 * MINUTE), "1h30m");
    assert_eq!(compact_interval(7 * DAY), "7d");
    assert_eq!(compact_interval(DAY + 61), "1d1m1s");
    assert_eq!(human_interval(6 * HOUR), "6 hours");
    assert_eq!(human_interval(HOUR), "hour");
    assert_eq!(human_interval(90 * MINUTE), "90 minutes");
    assert_eq!(human_interval(14 * DAY), "2 weeks");
}

#[test]
fn times_days_and_moments_parse_or_say_what_works() {
    assert_eq!(parse_time_of_day("09:30"), Ok(570));
    assert_eq!(parse_time_of_day("9:30"), Ok(570));
    assert_eq!(parse_time_of_day("00:00"), Ok(0));
    assert_eq!(parse_time_of_day("23:59"), Ok(1439));
    for bad in [
        "24:00", "09:60", "0930", "9:5", "nine", "", "-1:30", "09:30:00",
    ] {
        match parse_time_of_day(bad) {
            Err(Error::InvalidArgument(why)) => assert!(why.contains("HH:MM"), "{bad}: {why}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert_eq!(Weekday::parse("Mon"), Ok(Weekday::Mon));
    assert_eq!(Weekday::parse("thursday"), Ok(Weekday::Thu));
    assert_eq!(Weekday::parse("SUN"), Ok(Weekday::Sun));
    assert!(Weekday::parse("mo").is_err(), "two letters are ambiguous");
    assert!(Weekday::parse("someday").is_err());
    assert_eq!(parse_weekly("fri 17:00"), Ok(weekly(Weekday::Fri, "17:00")));
    assert_eq!(
        parse_weekly("Monday, 9:30"),
        Ok(weekly(Weekday::Mon, "09:30"))
    );
    assert!(parse_weekly("friday").is_err());
    assert!(parse_weekly("fri 17:00 utc").is_err());

    let ten = utc(2026, 12, 7, 10, 0);
    assert_eq!(parse_at("2026-12-07T10:00:00Z", T0), Ok(ten));
    assert_eq!(parse_at("2026-12-07 10:00", T0), Ok(ten));
    assert_eq!(parse_at("1796637600", T0), Ok(ten));
    assert_eq!(parse_at("in 2h", T0), Ok(ten));
    assert_eq!(parse_at("in 90 minutes", T0), Ok(T0 + 90 * MINUTE));
    for bad in ["tomorrow", "in a while", "2026-12-07", ""] {
        match parse_at(bad, T0) {
            Err(Error::InvalidArgument(why)) => assert!(why.contains("in 2h"), "{bad}: {why}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn only_a_one_off_ahead_within_a_year_can_start() {
    assert_eq!(check_startable(&Schedule::Once { at: T0 + 1 }, T0), Ok(()));
    assert_eq!(
        check_startable(&Schedule::Once { at: T0 + MAX_AHEAD }, T0),
        Ok(())
    );
    let past = check_startable(&Schedule::Once { at: T0 }, T0).unwrap_err();
    assert!(
        matches!(&past, Error::InvalidArgument(why) if why.contains("already passed")),
        "{past:?}"
    );
    let far = check_startable(
        &Schedule::Once {
            at: T0 + MAX_AHEAD + 1,
        },
        T0,
    )
    .unwrap_err();
    assert!(matches!(&far, Error::InvalidArgument(why) if why.contains("365 days")));
    assert_eq!(check_startable(&daily("09:30"), T0), Ok(()));
}

#[test]
fn schedules_read_and_write_their_json_forms() {
    let forms = [
        (
            json!({ "at": 1_796_637_600u64 }),
            Schedule::Once { at: 1_796_637_600 },
        ),
        (
            json!({ "every": "1h30m" }),
            Schedule::Every { seconds: 5400 },
        ),
        (json!({ "daily": "09:30" }), daily("09:30")),
        (
            json!({ "weekly": { "day": "sun", "time": "18:05" } }),
            weekly(Weekday::Sun, "18:05"),
        ),
    ];
    for (json, schedule) in forms {
        assert_eq!(Schedule::from_json(&json), Ok(schedule.clone()), "{json}");
        assert_eq!(schedule.to_json(), json);
        let through_serde: Schedule = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&through_serde).unwrap(), json);
    }
    // What people send that is not the written form.
    assert_eq!(
        Schedule::from_json(&json!({ "at": "2026-12-07T10:00:00Z" })),
        Ok(Schedule::Once { at: 1_796_637_600 })
    );
    assert_eq!(
        Schedule::from_json(&json!({ "every": "90 minutes" })),
        Ok(Schedule::Every { seconds: 5400 })
    );
    assert_eq!(
        Schedule::from_json(&json!({ "weekly": { "day": "Sunday", "time": "9:00" } })),
        Ok(weekly(Weekday::Sun, "09:00"))
    );
    for bad in [
        json!({}),
        json!("daily"),
        json!({ "daily": "09:30", "every": "6h" }),
        json!({ "hourly": "30" }),
        json!({ "at": -5 }),
        json!({ "at": "next week" }),
        json!({ "every": 3600 }),
        json!({ "weekly": { "day": "mon" } }),
        json!({ "weekly": { "day": "mon", "time": "09:30", "tz": "CET" } }),
    ] {
        assert!(
            matches!(Schedule::from_json(&bad), Err(Error::InvalidArgument(_))),
            "{bad}"
        );
    }
    assert_eq!(
        daily("09:30").describe(),
        "daily at 09:30 UTC",
        "descriptions say UTC"
    );
    assert_eq!(
        weekly(Weekday::Mon, "09:30").describe(),
        "every Monday at 09:30 UTC"
    );
    assert_eq!(
        Schedule::Every { seconds: 6 * HOUR }.describe(),
        "every 6 hours"
    );
    assert_eq!(
        Schedule::Once { at: 1_796_637_600 }.describe(),
        "once, at 2026-12-07 10:00 UTC"
    );
}
