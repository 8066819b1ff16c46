//! What the feature keeps in `storage`, and the only code that touches it.
//!
//! Every invocation is a fresh instance and invocations run concurrently, so
//! nothing here reads, changes and writes back blindly: a poll and a member's
//! vote change only through [`storage::compare_and_swap`] (`storage::set_if`), and the
//! counts only through `storage::increment`, by the difference a vote made.
//! Two members voting at once touch different vote keys and add to the
//! counts atomically; one member clicking twice at once has one click win the
//! compare-and-set and the other redone on top of it. Either way no vote is
//! lost or counted twice.

use crate::pick::now;
use serde::{Deserialize, Serialize};
use townes_sdk::{Error, Snowflake, serde_json, storage};

/// The last poll number handed out.
pub const POLL_COUNTER: &str = "poll:next";
/// Votes [`recount`] lists at most in one call (storage's limit).
const MAX_LIST: u32 = 1000;

pub fn poll_key(number: u64) -> String {
    format!("poll:{number:010}")
}

pub fn vote_key(number: u64, user_id: Snowflake) -> String {
    format!("vote:{number:010}:{user_id}")
}

fn vote_prefix(number: u64) -> String {
    format!("vote:{number:010}:")
}

fn tally_prefix(number: u64) -> String {
    format!("tally:{number:010}:")
}

pub fn count_key(number: u64, index: usize) -> String {
    format!("tally:{number:010}:{index}")
}

pub fn voters_key(number: u64) -> String {
    format!("tally:{number:010}:voters")
}

// ------------------------------------------------------------------ types

/// Who ended a poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closer {
    /// Its time ran out (the job, or a vote that came after `ends_at`).
    Timer,
    /// A member clicked End poll.
    Member(Snowflake),
}

/// One poll, numbered per guild.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Poll {
    pub number: u64,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub channel_id: Snowflake,
    /// None only in the moment between storing the poll and posting it.
    #[serde(with = "townes_sdk::snowflake::opt_string")]
    pub message_id: Option<Snowflake>,
    pub question: String,
    pub options: Vec<String>,
    /// Members may choose several options.
    pub multi: bool,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub creator: Snowflake,
    /// Unix seconds, as every time here.
    pub created_at: u64,
    pub ends_at: u64,
    pub closed: bool,
    pub closed_at: Option<u64>,
    /// Who ended it early; none when its time ran out.
    #[serde(with = "townes_sdk::snowflake::opt_string")]
    pub closed_by: Option<Snowflake>,
    /// The pending `end-poll` job.
    pub job: Option<String>,
}

/// The counts of a poll.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Votes per option, by index.
    pub counts: Vec<u64>,
    /// Members with at least one option chosen.
    pub voters: u64,
}

impl Tally {
    pub fn empty(options: usize) -> Self {
        Tally {
            counts: vec![0; options],
            voters: 0,
        }
    }

    /// The options with the most votes, none when nobody voted.
    pub fn winners(&self) -> Vec<usize> {
        let best = self.counts.iter().copied().max().unwrap_or(0);
        if best == 0 {
            return Vec::new();
        }
        (0..self.counts.len())
            .filter(|&i| self.counts[i] == best)
            .collect()
    }

    /// The share of voters who chose option `index`, in percent.
    pub fn percent(&self, index: usize) -> u64 {
        let count = self.counts.get(index).copied().unwrap_or(0);
        // Counts are kept apart from voters, so a count above the voters is
        // possible for a moment; never show more than 100%.
        (count * 100).checked_div(self.voters).unwrap_or(0).min(100)
    }
}

// ------------------------------------------------------ compare and swap

fn to_json(value: &impl Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Unavailable(format!("encoding: {e}")))
}

// ------------------------------------------------------------------ polls

pub fn next_poll_number() -> Result<u64, Error> {
    Ok(storage::increment(POLL_COUNTER, 1)? as u64)
}

fn parse_poll(number: u64, json: &str) -> Result<Poll, Error> {
    serde_json::from_str(json).map_err(|e| Error::Unavailable(format!("poll #{number}: {e}")))
}

pub fn load_poll(number: u64) -> Result<Poll, Error> {
    let json = storage::get(&poll_key(number))?
        .ok_or_else(|| Error::NotFound(format!("poll #{number}")))?;
    parse_poll(number, &json)
}

/// Stores a new poll (its number is fresh, so nobody else writes it yet).
pub fn insert_poll(poll: &Poll) -> Result<(), Error> {
    storage::set(&poll_key(poll.number), &to_json(poll)?)
}

/// Forgets a poll that could not be posted.
pub fn delete_poll(number: u64) -> Result<(), Error> {
    storage::delete(&poll_key(number)).map(drop)
}

/// Loads poll `number`, lets `change` edit it and stores it unless another
/// invocation stored the poll meanwhile, else starts over (see
/// [`storage::compare_and_swap`]).
pub fn update_poll(
    number: u64,
    mut change: impl FnMut(&mut Poll) -> Result<(), Error>,
) -> Result<Poll, Error> {
    let mut result = None;
    storage::compare_and_swap(&poll_key(number), |old| {
        let old = old.ok_or_else(|| Error::NotFound(format!("poll #{number}")))?;
        let mut poll = parse_poll(number, old)?;
        change(&mut poll)?;
        let new = to_json(&poll)?;
        result = Some(poll);
        Ok((new != old).then_some(new))
    })?;
    result.ok_or_else(|| Error::NotFound(format!("poll #{number}")))
}

/// Marks poll `number` closed; returns it when this call closed it, `None`
/// when it was closed already (by the job, a click or a late vote), so that
/// exactly one closer posts the results.
pub fn close_poll(number: u64, closer: Closer) -> Result<Option<Poll>, Error> {
    let mut closed_here = false;
    let poll = update_poll(number, |poll| {
        closed_here = !poll.closed;
        if closed_here {
            poll.closed = true;
            poll.closed_at = Some(now());
            poll.closed_by = match closer {
                Closer::Timer => None,
                Closer::Member(id) => Some(id),
            };
        }
        Ok(())
    })?;
    Ok(closed_here.then_some(poll))
}

/// The newest polls, newest first, at most `limit`.
///
/// Reads whole blocks of a thousand numbers (`poll:{first 7 digits}`) from
/// the newest down: one storage call per thousand polls, not one per poll.
pub fn recent_polls(limit: usize) -> Result<Vec<Poll>, Error> {
    let last = storage::get(POLL_COUNTER)?
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let mut found = Vec::new();
    let mut block = last / 1000;
    loop {
        let entries = storage::list_prefix(&format!("poll:{block:07}"), 1000)?;
        for entry in entries.iter().rev() {
            if let Ok(poll) = serde_json::from_str::<Poll>(&entry.value) {
                found.push(poll);
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

// ------------------------------------------------------------------ votes

fn parse_vote(json: Option<&str>) -> Result<Vec<usize>, Error> {
    json.map_or(Ok(Vec::new()), |json| {
        serde_json::from_str(json).map_err(|e| Error::Unavailable(format!("a vote: {e}")))
    })
}

/// The options `user_id` chose on poll `number` (none when they did not vote).
pub fn vote_of(number: u64, user_id: Snowflake) -> Result<Vec<usize>, Error> {
    parse_vote(storage::get(&vote_key(number, user_id))?.as_deref())
}

/// Changes `user_id`'s vote on poll `number` from what it is to what
/// `change` makes of it, atomically; returns `(before, after)`. The pair is
/// what this call changed, and no other call can have changed the same: the
/// counts follow from it.
pub fn update_vote(
    number: u64,
    user_id: Snowflake,
    mut change: impl FnMut(&[usize]) -> Result<Vec<usize>, Error>,
) -> Result<(Vec<usize>, Vec<usize>), Error> {
    let mut result = (Vec::new(), Vec::new());
    storage::compare_and_swap(&vote_key(number, user_id), |old| {
        let before = parse_vote(old)?;
        let after = change(&before)?;
        let write = (after != before).then(|| to_json(&after)).transpose()?;
        result = (before, after);
        Ok(write)
    })?;
    Ok(result)
}

/// Moves the counts by what one vote changed (`before` → `after`).
pub fn apply_to_tally(number: u64, before: &[usize], after: &[usize]) -> Result<(), Error> {
    for &index in before.iter().filter(|i| !after.contains(i)) {
        storage::increment(&count_key(number, index), -1)?;
    }
    for &index in after.iter().filter(|i| !before.contains(i)) {
        storage::increment(&count_key(number, index), 1)?;
    }
    match (before.is_empty(), after.is_empty()) {
        (true, false) => storage::increment(&voters_key(number), 1).map(drop),
        (false, true) => storage::increment(&voters_key(number), -1).map(drop),
        _ => Ok(()),
    }
}

/// The counts as they stand (one storage call).
pub fn tally(number: u64, options: usize) -> Result<Tally, Error> {
    let mut tally = Tally::empty(options);
    for entry in storage::list_prefix(&tally_prefix(number), 20)? {
        let value = entry.value.trim().parse::<i64>().unwrap_or(0).max(0) as u64;
        match entry.key.rsplit(':').next() {
            Some("voters") => tally.voters = value,
            Some(index) => {
                if let Some(count) = index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| tally.counts.get_mut(i))
                {
                    *count = value;
                }
            }
            None => {}
        }
    }
    Ok(tally)
}

/// The votes counted afresh from the members' vote keys, or `None` when
/// there are too many to list in one call.
pub fn recount(number: u64, options: usize) -> Result<Option<Tally>, Error> {
    let votes = storage::list_prefix(&vote_prefix(number), MAX_LIST)?;
    if votes.len() >= MAX_LIST as usize {
        return Ok(None);
    }
    let mut tally = Tally::empty(options);
    for entry in votes {
        let chosen = parse_vote(Some(&entry.value)).unwrap_or_default();
        let mut counted = false;
        for index in chosen {
            if let Some(count) = tally.counts.get_mut(index) {
                *count += 1;
                counted = true;
            }
        }
        tally.voters += u64::from(counted);
    }
    Ok(Some(tally))
}

/// The final counts of a closed poll. An invocation that stopped between
/// recording a vote and counting it (out of time, say) leaves the counts a
/// vote off; the members' votes are the truth, so a closing poll is counted
/// afresh from them and the counts are corrected to match.
pub fn settle_tally(number: u64, options: usize) -> Result<Tally, Error> {
    let counted = tally(number, options)?;
    let Some(fresh) = recount(number, options)? else {
        return Ok(counted);
    };
    for (index, (&was, &is)) in counted.counts.iter().zip(&fresh.counts).enumerate() {
        if was != is {
            storage::set(&count_key(number, index), &is.to_string())?;
        }
    }
    if counted.voters != fresh.voters {
        storage::set(&voters_key(number), &fresh.voters.to_string())?;
    }
    Ok(fresh)
}
