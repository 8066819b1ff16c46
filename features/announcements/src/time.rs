//! Time as the feature counts it: the SDK's ([`townes_sdk::time`]: Unix
//! seconds in UTC and the calendar arithmetic the schedules need), and how a
//! minute of the day is shown.

pub use townes_sdk::time::*;

/// `09:30` for minute 570 of the day.
pub fn format_minute_of_day(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}
