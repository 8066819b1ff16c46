//! What the feature keeps in `storage`, and the only code that touches it.
//!
//! Commands and auto-responders are JSON values whose Discord ids are
//! decimal strings (what the dashboard reads: a JavaScript number cannot hold
//! a snowflake); reading accepts integers too.

use serde::{Deserialize, Serialize};
use townes_sdk::{Error, Snowflake, serde_json, storage};

/// A command: `cmd:{name}`.
pub const COMMAND_PREFIX: &str = "cmd:";
/// A member's last use of a command with a cooldown: `cd:{name}:{user_id}`.
pub const COOLDOWN_PREFIX: &str = "cd:";
/// An auto-responder: `ar:{id:010}`.
pub const RESPONDER_PREFIX: &str = "ar:";
/// The last auto-responder id handed out.
pub const RESPONDER_COUNTER: &str = "ar-next";
/// How often an auto-responder matched: `ar-count:{id:010}`.
pub const TRIGGER_COUNT_PREFIX: &str = "ar-count:";
/// When an auto-responder last answered in a channel: `ar-last:{channel_id}`.
pub const CHANNEL_LAST_PREFIX: &str = "ar-last:";
/// The largest JSON one command or auto-responder may take in storage (a
/// value may hold 64 KiB; ten embed pages of 6,000 characters would not fit).
pub const MAX_RECORD_BYTES: usize = 60_000;
/// Times a read-modify-write retries when another invocation wrote meanwhile.
const UPDATE_ATTEMPTS: usize = 5;

pub fn command_key(name: &str) -> String {
    format!("{COMMAND_PREFIX}{name}")
}

pub fn cooldown_key(name: &str, user_id: Snowflake) -> String {
    format!("{COOLDOWN_PREFIX}{name}:{user_id}")
}

pub fn responder_key(id: u64) -> String {
    format!("{RESPONDER_PREFIX}{id:010}")
}

pub fn trigger_count_key(id: u64) -> String {
    format!("{TRIGGER_COUNT_PREFIX}{id:010}")
}

pub fn channel_last_key(channel_id: Snowflake) -> String {
    format!("{CHANNEL_LAST_PREFIX}{channel_id}")
}

// ------------------------------------------------------------------ clock

pub use townes_sdk::time::now;

// ------------------------------------------------------------------ types

/// What a command, a menu page or an auto-responder answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Response {
    /// Plain text (variables allowed).
    Text { content: String },
    /// One embed (variables allowed in its texts, not in its URLs).
    Embed(EmbedSpec),
}

/// An embed as admins write it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmbedSpec {
    pub title: Option<String>,
    pub description: Option<String>,
    /// Where the title links to; `https://` only.
    pub url: Option<String>,
    /// 0xRRGGBB.
    pub color: Option<u32>,
    pub fields: Vec<FieldSpec>,
    pub footer: Option<String>,
    /// `https://` only.
    pub thumbnail_url: Option<String>,
    /// `https://` only.
    pub image_url: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldSpec {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub inline: bool,
}

/// A command defined from the dashboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomCommand {
    /// The trigger: `{prefix}{name}`, `/cc name`. `a-z 0-9 - _`, 1-32.
    pub name: String,
    pub description: String,
    pub enabled: bool,
    /// The answer, unless this is a menu.
    pub response: Option<Response>,
    /// A menu's pages (page 1 first); empty: not a menu.
    pub menu_pages: Vec<Response>,
    /// Seconds a member waits between two uses; 0: none.
    pub cooldown_seconds: u32,
    /// A member needs any one of them; empty: everyone may.
    #[serde(with = "townes_sdk::snowflake::vec_string")]
    pub required_roles: Vec<Snowflake>,
    /// Listed by `tags`, shown by `/tag`.
    pub is_tag: bool,
    /// A tag's category (`general` by default); none for other commands.
    pub category: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    pub updated_at: u64,
}

/// How an auto-responder's trigger is compared with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    /// The whole message (spaces around it aside).
    Exact,
    Contains,
    StartsWith,
    EndsWith,
    /// A `regex` crate pattern (linear time, no look-around or back-references).
    Regex,
}

/// A reply the feature gives when a message matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoResponder {
    #[serde(with = "townes_sdk::snowflake::string")]
    pub id: u64,
    pub trigger: String,
    pub match_type: MatchType,
    pub case_sensitive: bool,
    /// Where it answers; empty: every channel.
    #[serde(with = "townes_sdk::snowflake::vec_string")]
    pub channels: Vec<Snowflake>,
    pub response: Response,
    pub enabled: bool,
    /// Higher first; equal priorities in id order.
    pub priority: i32,
    pub created_at: u64,
    pub updated_at: u64,
}

// ------------------------------------------------------------------ helpers

fn to_json(value: &impl Serialize) -> Result<String, Error> {
    let json =
        serde_json::to_string(value).map_err(|e| Error::Unavailable(format!("encoding: {e}")))?;
    if json.len() > MAX_RECORD_BYTES {
        return Err(Error::invalid(format!(
            "this is {} bytes of JSON, more than the {MAX_RECORD_BYTES} one command or \
             auto-responder may take: shorten its texts or use fewer pages",
            json.len()
        )));
    }
    Ok(json)
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, json: &str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|e| Error::Unavailable(format!("{what}: {e}")))
}

// ------------------------------------------------------------------ commands

pub fn load_command(name: &str) -> Result<Option<CustomCommand>, Error> {
    storage::get(&command_key(name))?
        .map(|json| parse(&format!("command {name}"), &json))
        .transpose()
}

/// Every command, in name order (at most 1000, above the config's 500).
pub fn commands() -> Result<Vec<CustomCommand>, Error> {
    storage::list_prefix(COMMAND_PREFIX, 1000)?
        .iter()
        .map(|e| parse(&e.key, &e.value))
        .collect()
}

/// Stores a new command; `false` when one of that name exists (also one
/// stored by a concurrent invocation a moment ago).
pub fn insert_command(command: &CustomCommand) -> Result<bool, Error> {
    storage::set_if(&command_key(&command.name), None, &to_json(command)?)
}

/// Loads command `name`, lets `change` edit it, and stores it only if no one
/// else stored it meanwhile (else starts over).
pub fn update_command(
    name: &str,
    mut change: impl FnMut(&mut CustomCommand) -> Result<(), Error>,
) -> Result<CustomCommand, Error> {
    let key = command_key(name);
    for _ in 0..UPDATE_ATTEMPTS {
        let old = storage::get(&key)?.ok_or_else(|| command_not_found(name))?;
        let mut command: CustomCommand = parse(&key, &old)?;
        change(&mut command)?;
        let new = to_json(&command)?;
        if new == old || storage::set_if(&key, Some(&old), &new)? {
            return Ok(command);
        }
    }
    Err(Error::Unavailable(format!(
        "command `{name}` is changing too fast; try again"
    )))
}

pub fn delete_command(name: &str) -> Result<CustomCommand, Error> {
    let command = load_command(name)?.ok_or_else(|| command_not_found(name))?;
    storage::delete(&command_key(name))?;
    Ok(command)
}

pub fn command_not_found(name: &str) -> Error {
    Error::not_found(format!(
        "no custom command named `{name}` (GET /commands lists them)"
    ))
}

/// Takes the member's turn at a command with a cooldown: `Ok(None)` when they
/// may go (and the clock restarts), `Ok(Some(seconds left))` when not. Two
/// messages racing cannot both pass: the write is conditional.
pub fn take_cooldown(
    name: &str,
    user_id: Snowflake,
    cooldown: u32,
    now: u64,
) -> Result<Option<u64>, Error> {
    let key = cooldown_key(name, user_id);
    let last = storage::get(&key)?;
    if let Some(last) = last.as_deref().and_then(|t| t.parse::<u64>().ok()) {
        let until = last.saturating_add(u64::from(cooldown));
        if now < until {
            return Ok(Some(until - now));
        }
    }
    if storage::set_if(&key, last.as_deref(), &now.to_string())? {
        Ok(None)
    } else {
        Ok(Some(u64::from(cooldown)))
    }
}

// ------------------------------------------------------------------ responders

pub fn next_responder_id() -> Result<u64, Error> {
    Ok(storage::increment(RESPONDER_COUNTER, 1)? as u64)
}

pub fn load_responder(id: u64) -> Result<Option<AutoResponder>, Error> {
    storage::get(&responder_key(id))?
        .map(|json| parse(&format!("auto-responder {id}"), &json))
        .transpose()
}

/// Every auto-responder in the order they are tried: priority (highest
/// first), then id.
pub fn responders() -> Result<Vec<AutoResponder>, Error> {
    let mut list: Vec<AutoResponder> = storage::list_prefix(RESPONDER_PREFIX, 1000)?
        .iter()
        .map(|e| parse(&e.key, &e.value))
        .collect::<Result<_, _>>()?;
    list.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
    Ok(list)
}

pub fn insert_responder(responder: &AutoResponder) -> Result<(), Error> {
    if storage::set_if(&responder_key(responder.id), None, &to_json(responder)?)? {
        Ok(())
    } else {
        Err(Error::Unavailable(format!(
            "auto-responder {} exists already; try again",
            responder.id
        )))
    }
}

pub fn update_responder(
    id: u64,
    mut change: impl FnMut(&mut AutoResponder) -> Result<(), Error>,
) -> Result<AutoResponder, Error> {
    let key = responder_key(id);
    for _ in 0..UPDATE_ATTEMPTS {
        let old = storage::get(&key)?.ok_or_else(|| responder_not_found(id))?;
        let mut responder: AutoResponder = parse(&key, &old)?;
        change(&mut responder)?;
        let new = to_json(&responder)?;
        if new == old || storage::set_if(&key, Some(&old), &new)? {
            return Ok(responder);
        }
    }
    Err(Error::Unavailable(format!(
        "auto-responder {id} is changing too fast; try again"
    )))
}

pub fn delete_responder(id: u64) -> Result<AutoResponder, Error> {
    let responder = load_responder(id)?.ok_or_else(|| responder_not_found(id))?;
    storage::delete(&responder_key(id))?;
    storage::delete(&trigger_count_key(id))?;
    Ok(responder)
}

pub fn responder_not_found(id: u64) -> Error {
    Error::not_found(format!(
        "no auto-responder {id} (GET /auto-responders lists them)"
    ))
}

pub fn trigger_count(id: u64) -> Result<i64, Error> {
    Ok(storage::get(&trigger_count_key(id))?
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

pub fn count_trigger(id: u64) -> Result<i64, Error> {
    storage::increment(&trigger_count_key(id), 1)
}

/// Takes the channel's auto-response slot: `true` when no auto-response was
/// given there in the last `window` seconds, and records this one. Of two
/// invocations racing, only one gets it (the write is conditional).
pub fn take_channel_slot(channel_id: Snowflake, window: u64, now: u64) -> Result<bool, Error> {
    let key = channel_last_key(channel_id);
    let last = storage::get(&key)?;
    if let Some(last) = last.as_deref().and_then(|t| t.parse::<u64>().ok())
        && now < last.saturating_add(window)
    {
        return Ok(false);
    }
    storage::set_if(&key, last.as_deref(), &now.to_string())
}
