//! What the feature keeps in `storage`, and the only code that touches it.
//!
//! Announcements are JSON whose Discord ids are strings (what the dashboard
//! reads, since a JavaScript number cannot hold a snowflake); reading accepts
//! integers too.

use crate::schedule::Schedule;
use serde::{Deserialize, Serialize};
use townes_sdk::{Error, Snowflake, serde_json, storage};

/// The last announcement number handed out.
pub const COUNTER: &str = "announcement:next";
/// Every announcement's key starts with this.
const PREFIX: &str = "announcement:";

pub fn key(number: u64) -> String {
    format!("{PREFIX}{number:010}")
}

/// One scheduled announcement, numbered per guild.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    pub number: u64,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub channel_id: Snowflake,
    /// The text, with template variables (`{server.name}`, `{date}`, …);
    /// may be empty when there is an embed.
    pub content: String,
    pub embed: Option<EmbedSpec>,
    /// The role mentioned at the start of the message; pinged only while the
    /// config's `allowed_ping_roles` lists it.
    #[serde(with = "townes_sdk::snowflake::opt_string")]
    pub ping_role: Option<Snowflake>,
    pub schedule: Schedule,
    pub paused: bool,
    /// Unix seconds of the next run; none while paused, once a one-off ran,
    /// or when a one-off's time passed while the feature was disabled.
    pub next_run: Option<u64>,
    /// Unix seconds of the last post (scheduled or sent by hand).
    pub last_run: Option<u64>,
    /// Posts so far.
    pub runs: u64,
    /// Who created it; none when the dashboard did with an API key.
    #[serde(with = "townes_sdk::snowflake::opt_string")]
    pub created_by: Option<Snowflake>,
    pub created_at: u64,
    /// The one live `announce` job; a job with another id is stale.
    pub pending_job: Option<String>,
    /// The due time of the last scheduled run a job claimed: a job for this
    /// time or an earlier one never posts again.
    pub last_due: Option<u64>,
    /// The last post left the role unpinged because `allowed_ping_roles`
    /// does not list it (the audit log is told once, when this turns on).
    #[serde(default)]
    pub ping_skipped: bool,
    /// Why the last run could not post or schedule the next one; cleared by
    /// the next post.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// The optional embed under the text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedSpec {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `0xRRGGBB`.
    #[serde(default)]
    pub color: Option<u32>,
}

// ------------------------------------------------------------ announcements

fn to_json(value: &impl Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Unavailable(format!("encoding: {e}")))
}

fn parse(number: u64, json: &str) -> Result<Announcement, Error> {
    serde_json::from_str(json)
        .map_err(|e| Error::Unavailable(format!("announcement #{number}: {e}")))
}

fn not_found(number: u64) -> Error {
    Error::not_found(format!("announcement #{number}"))
}

pub fn load(number: u64) -> Result<Announcement, Error> {
    let json = storage::get(&key(number))?.ok_or_else(|| not_found(number))?;
    parse(number, &json)
}

pub fn next_number() -> Result<u64, Error> {
    Ok(storage::increment(COUNTER, 1)? as u64)
}

/// Stores a new announcement (or overwrites one: only for creation).
pub fn insert(announcement: &Announcement) -> Result<(), Error> {
    storage::set(&key(announcement.number), &to_json(announcement)?)
}

/// Loads announcement `number`, lets `change` edit it and stores the result
/// only if no other invocation stored it meanwhile, else starts over — a job
/// claiming its run and an admin pausing must not both win. `change` may run
/// more than once, so it only edits the value; what it returns comes back
/// with the stored announcement. An error from it is returned as is and
/// nothing is stored; a change that changes nothing writes nothing.
pub fn update<T>(
    number: u64,
    mut change: impl FnMut(&mut Announcement) -> Result<T, Error>,
) -> Result<(Announcement, T), Error> {
    let mut answer = None;
    let stored = storage::update_json(&key(number), |announcement| {
        answer = Some(change(announcement)?);
        Ok(())
    })?
    .ok_or_else(|| not_found(number))?;
    Ok((
        stored,
        answer.expect("the change ran for the stored announcement"),
    ))
}

/// Deletes announcement `number`; returns it.
pub fn remove(number: u64) -> Result<Announcement, Error> {
    let announcement = load(number)?;
    storage::delete(&key(number))?;
    Ok(announcement)
}

/// Every announcement, by number. A guild has at most `max_announcements`
/// (100 at most), so one listing holds them all.
pub fn all() -> Result<Vec<Announcement>, Error> {
    Ok(storage::list_prefix(PREFIX, 1000)?
        .iter()
        .filter_map(|entry| {
            let number: u64 = entry.key.strip_prefix(PREFIX)?.parse().ok()?;
            match parse(number, &entry.value) {
                Ok(announcement) => Some(announcement),
                Err(error) => {
                    townes_sdk::log::warn(format!("skipping a broken record: {error:?}"));
                    None
                }
            }
        })
        .collect())
}
