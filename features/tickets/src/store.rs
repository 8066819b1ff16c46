//! What the feature keeps in `storage`, and the only code that touches it.
//!
//! Tickets and panels are JSON values whose ids are strings (what the
//! dashboard reads, since a JavaScript number cannot hold a snowflake);
//! reading accepts integers too.

use crate::time::now;
use serde::{Deserialize, Serialize};
use townes_sdk::{Error, Snowflake, serde_json, storage};

/// The last ticket number handed out.
pub const TICKET_COUNTER: &str = "ticket:next";
/// The last panel number handed out.
pub const PANEL_COUNTER: &str = "panel:next";
/// Tickets opened in the guild in the current 30-second window: `opens:{window}`.
const OPENS_PREFIX: &str = "opens:";
/// How long the guild-wide opening window lasts.
pub const OPENS_WINDOW_SECONDS: u64 = 30;
/// A member's opening lock older than this belongs to an invocation that died.
const OPENING_LOCK_SECONDS: u64 = 30;

pub fn ticket_key(number: u64) -> String {
    format!("ticket:{number:010}")
}

pub fn panel_key(number: u64) -> String {
    format!("panel:{number:010}")
}

pub fn channel_key(channel_id: Snowflake) -> String {
    format!("channel:{channel_id}")
}

fn open_prefix(user_id: Snowflake) -> String {
    format!("open:{user_id}:")
}

pub fn open_key(user_id: Snowflake, number: u64) -> String {
    format!("open:{user_id}:{number:010}")
}

fn opening_lock_key(user_id: Snowflake) -> String {
    format!("opening:{user_id}")
}

// ------------------------------------------------------------------ types

/// Where a ticket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Closed,
    /// Its channel is gone; the record and the transcript stay.
    Deleted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Closed => "closed",
            Status::Deleted => "deleted",
        }
    }
}

/// One support ticket, numbered per guild.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub number: u64,
    /// The panel it was opened from.
    pub panel: u64,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub channel_id: Snowflake,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub opener_id: Snowflake,
    /// The opener's display name when they opened it.
    pub opener_name: String,
    /// The panel's support roles when it was opened: the channel's overwrites
    /// were made from them, so they stay with the ticket even if the panel
    /// changes or goes.
    #[serde(with = "townes_sdk::snowflake::vec_string")]
    pub support_roles: Vec<Snowflake>,
    pub status: Status,
    #[serde(with = "townes_sdk::snowflake::opt_string")]
    pub claimed_by: Option<Snowflake>,
    /// Unix seconds, as every time here.
    pub opened_at: u64,
    /// The last message by a human in the channel (or the opening).
    pub last_activity: u64,
    pub closed_at: Option<u64>,
    /// Who closed it; none when the dashboard did with an API key.
    #[serde(with = "townes_sdk::snowflake::opt_string")]
    pub closed_by: Option<Snowflake>,
    pub close_reason: Option<String>,
    /// The transcript's file name, once one was made.
    pub transcript: Option<String>,
    /// When the inactivity warning was posted, until someone writes.
    pub warned_at: Option<u64>,
    /// The pending inactivity job; a job with another id is stale.
    pub inactivity_job: Option<String>,
}

/// A message members click to open a ticket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Panel {
    pub number: u64,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub channel_id: Snowflake,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub message_id: Snowflake,
    pub title: String,
    pub description: Option<String>,
    pub button_label: String,
    pub button_emoji: Option<String>,
    /// The category new ticket channels go in; none: the top of the list.
    #[serde(with = "townes_sdk::snowflake::opt_string")]
    pub category_id: Option<Snowflake>,
    #[serde(with = "townes_sdk::snowflake::vec_string")]
    pub support_roles: Vec<Snowflake>,
}

// ----------------------------------------------------------------- tickets

fn to_json(value: &impl Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Unavailable(format!("encoding: {e}")))
}

fn parse_ticket(number: u64, json: &str) -> Result<Ticket, Error> {
    serde_json::from_str(json).map_err(|e| Error::Unavailable(format!("ticket #{number}: {e}")))
}

pub fn load_ticket(number: u64) -> Result<Ticket, Error> {
    let json = storage::get(&ticket_key(number))?
        .ok_or_else(|| Error::NotFound(format!("ticket #{number}")))?;
    parse_ticket(number, &json)
}

/// The number of the ticket whose channel this is.
pub fn ticket_number_in(channel_id: Snowflake) -> Result<Option<u64>, Error> {
    Ok(storage::get(&channel_key(channel_id))?.and_then(|n| n.parse().ok()))
}

/// Stores a new ticket and its indexes (its channel; the opener's open tickets).
pub fn insert_ticket(ticket: &Ticket) -> Result<(), Error> {
    storage::set(&ticket_key(ticket.number), &to_json(ticket)?)?;
    storage::set(&channel_key(ticket.channel_id), &ticket.number.to_string())?;
    storage::set(
        &open_key(ticket.opener_id, ticket.number),
        &ticket.channel_id.to_string(),
    )
}

/// Loads ticket `number`, lets `change` edit it and stores the result only if
/// no other invocation stored the ticket meanwhile, else starts over (a member
/// writing while a supporter closes must not reopen the ticket by writing back
/// what it read). `change` may run more than once, so it only edits the value;
/// an error from it is returned as is and nothing is stored.
pub fn update_ticket(
    number: u64,
    change: impl FnMut(&mut Ticket) -> Result<(), Error>,
) -> Result<Ticket, Error> {
    storage::update_json(&ticket_key(number), change)?
        .ok_or_else(|| Error::NotFound(format!("ticket #{number}")))
}

/// Takes a ticket off its opener's count of open tickets.
pub fn remove_open_index(ticket: &Ticket) -> Result<(), Error> {
    storage::delete(&open_key(ticket.opener_id, ticket.number)).map(drop)
}

/// Puts a reopened ticket back on its opener's count.
pub fn restore_open_index(ticket: &Ticket) -> Result<(), Error> {
    storage::set(
        &open_key(ticket.opener_id, ticket.number),
        &ticket.channel_id.to_string(),
    )
}

/// Forgets a deleted ticket's channel and open-ticket indexes (the ticket stays).
pub fn remove_indexes(ticket: &Ticket) -> Result<(), Error> {
    storage::delete(&channel_key(ticket.channel_id))?;
    remove_open_index(ticket)
}

/// `(number, channel)` of `user_id`'s open tickets, at most `limit`.
pub fn open_tickets_of(user_id: Snowflake, limit: u32) -> Result<Vec<(u64, Snowflake)>, Error> {
    Ok(storage::list_prefix(&open_prefix(user_id), limit)?
        .into_iter()
        .filter_map(|e| {
            let number = e.key.rsplit(':').next()?.parse().ok()?;
            Some((number, e.value.parse().ok()?))
        })
        .collect())
}

/// The newest tickets `keep` accepts, newest first, at most `limit`.
///
/// Reads whole blocks of a thousand numbers (`ticket:{first 7 digits}`) from
/// the newest down, so a filter that matches little costs one storage call
/// per thousand tickets, not one per ticket.
pub fn recent_tickets(limit: usize, keep: impl Fn(&Ticket) -> bool) -> Result<Vec<Ticket>, Error> {
    let last = storage::get(TICKET_COUNTER)?
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let mut found = Vec::new();
    let mut block = last / 1000;
    loop {
        let entries = storage::list_prefix(&format!("ticket:{block:07}"), 1000)?;
        for entry in entries.iter().rev() {
            let Ok(ticket) = serde_json::from_str::<Ticket>(&entry.value) else {
                continue;
            };
            if keep(&ticket) {
                found.push(ticket);
                if found.len() == limit {
                    return Ok(found);
                }
            }
        }
        if block == 0 {
            return Ok(found);
        }
        block -= 1;
    }
}

// ------------------------------------------------------------------ limits

/// Counts one more opening in the guild's current 30-second window; false
/// when the window already holds `max`. Keys of past windows are removed when
/// a new window starts, so they never pile up.
pub fn count_guild_opening(max: u32) -> Result<bool, Error> {
    let window = now() / OPENS_WINDOW_SECONDS;
    let key = format!("{OPENS_PREFIX}{window}");
    let count = storage::increment(&key, 1)?;
    if count == 1 {
        for old in storage::list_prefix(OPENS_PREFIX, 20)? {
            if old.key != key {
                storage::delete(&old.key)?;
            }
        }
    }
    Ok(count <= i64::from(max))
}

/// Takes the member's opening lock, so two quick clicks cannot both pass the
/// open-ticket limit; false when another click holds it. A lock left by an
/// invocation that died is taken over once it is old.
pub fn lock_opening(user_id: Snowflake) -> Result<bool, Error> {
    let key = opening_lock_key(user_id);
    let now = now();
    match storage::get(&key)? {
        None => storage::set_if(&key, None, &now.to_string()),
        Some(since)
            if since
                .parse::<u64>()
                .map_or(true, |t| now.saturating_sub(t) > OPENING_LOCK_SECONDS) =>
        {
            storage::set_if(&key, Some(&since), &now.to_string())
        }
        Some(_) => Ok(false),
    }
}

pub fn unlock_opening(user_id: Snowflake) {
    // A lock that stays is taken over after OPENING_LOCK_SECONDS anyway.
    let _ = storage::delete(&opening_lock_key(user_id));
}

// ------------------------------------------------------------------ panels

pub fn next_panel_number() -> Result<u64, Error> {
    Ok(storage::increment(PANEL_COUNTER, 1)? as u64)
}

pub fn next_ticket_number() -> Result<u64, Error> {
    Ok(storage::increment(TICKET_COUNTER, 1)? as u64)
}

pub fn save_panel(panel: &Panel) -> Result<(), Error> {
    storage::set(&panel_key(panel.number), &to_json(panel)?)
}

pub fn load_panel(number: u64) -> Result<Panel, Error> {
    let json = storage::get(&panel_key(number))?
        .ok_or_else(|| Error::NotFound(format!("panel #{number}")))?;
    serde_json::from_str(&json).map_err(|e| Error::Unavailable(format!("panel #{number}: {e}")))
}

pub fn delete_panel(number: u64) -> Result<bool, Error> {
    storage::delete(&panel_key(number))
}

/// Every panel, oldest first (a guild has a handful).
pub fn panels() -> Result<Vec<Panel>, Error> {
    Ok(storage::list_prefix("panel:", 1000)?
        .iter()
        .filter_map(|e| serde_json::from_str(&e.value).ok())
        .collect())
}
