//! Counting what members do, on the gateway's hot path: in memory, written
//! in batches.
//!
//! Each gateway event costs one lock of a mutex and a hash lookup or two;
//! [`ActivityMeter::flush`] writes what was counted since the last flush in
//! one transaction (one upsert per guild and day, and multi-row inserts of
//! the members seen), never one write per event. `townes serve` and `townes
//! worker` flush every minute with the usage counters, and on shutdown;
//! counts not yet flushed when a process dies are lost.
//!
//! # Memory bounds
//!
//! Counters are a few integers per guild and day. Active members are a set
//! per guild and day of the ids this process saw, so a member who writes a
//! thousand times a day is written once; the set lives until the day is over
//! and flushed. A hostile or simply huge guild cannot grow it without bound:
//! - at most [`MEMBERS_PER_GUILD_DAY`] members per guild and day are tracked
//!   by one process (about 1.5 MiB at worst): past it the day's further
//!   members are not recorded (activity saturates at 25 a day anyway; such a
//!   guild's retention may read a little low);
//! - at most [`MAX_TRACKED`] member ids across all guilds (about 30 MiB at
//!   worst): past it no new member is tracked until a day rolls over.
//!
//! What was refused is counted ([`ActivityMeter::untracked`]) and logged at
//! the next flush. Several processes (workers) each keep their own sets: a
//! member seen by two is inserted twice, and the database keeps one row.

use crate::store::{ActivityBatch, ActivityCounts, Store, StoreError};
use chrono::NaiveDate;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Most members one process tracks per guild and day.
pub const MEMBERS_PER_GUILD_DAY: usize = 50_000;
/// Most member ids one process tracks in all (active members of the days not
/// over yet, and joins waiting for the flush).
pub const MAX_TRACKED: usize = 1_000_000;

#[derive(Default)]
struct DayTally {
    counts: ActivityCounts,
    /// Members seen active this day by this process.
    seen: HashSet<u64>,
    /// Of them, those not written yet.
    unwritten: Vec<u64>,
    /// Members who joined, not written yet.
    joined: Vec<u64>,
}

#[derive(Default)]
struct Tallies {
    days: HashMap<(u64, NaiveDate), DayTally>,
    /// Member ids held in `seen` and `joined` sets of every day.
    tracked: usize,
    /// Members not recorded because of the bounds, since the last flush.
    untracked: u64,
}

impl Tallies {
    fn day(&mut self, guild_id: u64, day: NaiveDate) -> &mut DayTally {
        self.days.entry((guild_id, day)).or_default()
    }

    /// Records `member` as active, within the bounds.
    fn active(&mut self, guild_id: u64, day: NaiveDate, member: u64) {
        let full = self.tracked >= MAX_TRACKED;
        let tally = self.days.entry((guild_id, day)).or_default();
        if tally.seen.contains(&member) {
            return;
        }
        if full || tally.seen.len() >= MEMBERS_PER_GUILD_DAY {
            self.untracked += 1;
            return;
        }
        tally.seen.insert(member);
        tally.unwritten.push(member);
        self.tracked += 1;
    }
}

/// Activity counted since the last flush. See the module documentation.
#[derive(Default)]
pub struct ActivityMeter(Mutex<Tallies>);

impl ActivityMeter {
    fn tallies(&self) -> std::sync::MutexGuard<'_, Tallies> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A member's message (`reply`: an inline reply to another message).
    pub fn message(&self, guild_id: u64, author_id: u64, reply: bool, day: NaiveDate) {
        let mut tallies = self.tallies();
        let counts = &mut tallies.day(guild_id, day).counts;
        counts.messages += 1;
        counts.replies += u64::from(reply);
        tallies.active(guild_id, day, author_id);
    }

    /// A member's reaction added to a message.
    pub fn reaction(&self, guild_id: u64, user_id: u64, day: NaiveDate) {
        let mut tallies = self.tallies();
        tallies.day(guild_id, day).counts.reactions += 1;
        tallies.active(guild_id, day, user_id);
    }

    /// A member joined.
    pub fn joined(&self, guild_id: u64, member_id: u64, day: NaiveDate) {
        let mut tallies = self.tallies();
        tallies.day(guild_id, day).counts.joins += 1;
        if tallies.tracked >= MAX_TRACKED {
            tallies.untracked += 1;
            return;
        }
        tallies.day(guild_id, day).joined.push(member_id);
        tallies.tracked += 1;
    }

    /// A member left (or was kicked or banned).
    pub fn left(&self, guild_id: u64, day: NaiveDate) {
        self.tallies().day(guild_id, day).counts.leaves += 1;
    }

    /// Members not recorded because of the memory bounds since the last flush.
    pub fn untracked(&self) -> u64 {
        self.tallies().untracked
    }

    /// Writes what was counted since the last flush, in one transaction;
    /// forgets the member sets of days before `today`. Returns how many
    /// guild-days had something to write. On a store error nothing is lost:
    /// what was taken is kept for the next flush.
    pub async fn flush(&self, store: &Store, today: NaiveDate) -> Result<usize, StoreError> {
        let (batch, untracked) = self.take(today);
        if untracked > 0 {
            tracing::warn!(
                untracked,
                "community health: members not recorded, past the meter's bounds (MEMBERS_PER_GUILD_DAY, MAX_TRACKED)"
            );
        }
        if batch.is_empty() {
            return Ok(0);
        }
        let written = batch.counts.len();
        if let Err(error) = store.record_activity(&batch).await {
            self.give_back(batch);
            return Err(error);
        }
        Ok(written)
    }

    fn take(&self, today: NaiveDate) -> (ActivityBatch, u64) {
        let mut tallies = self.tallies();
        let mut batch = ActivityBatch::default();
        let mut released = 0;
        tallies.days.retain(|&(guild_id, day), tally| {
            let counts = std::mem::take(&mut tally.counts);
            if counts != ActivityCounts::default() {
                batch.counts.push((guild_id, day, counts));
            }
            batch
                .active
                .extend(tally.unwritten.drain(..).map(|m| (guild_id, day, m)));
            released += tally.joined.len();
            batch
                .joins
                .extend(tally.joined.drain(..).map(|m| (guild_id, day, m)));
            let current = day >= today;
            if !current {
                released += tally.seen.len();
            }
            current
        });
        tallies.tracked = tallies.tracked.saturating_sub(released);
        (batch, std::mem::take(&mut tallies.untracked))
    }

    /// Puts back what a failed flush took (past the bounds if need be: it was
    /// admitted once).
    fn give_back(&self, batch: ActivityBatch) {
        let mut tallies = self.tallies();
        for (guild_id, day, counts) in batch.counts {
            tallies.day(guild_id, day).counts.add(&counts);
        }
        for (guild_id, day, member) in batch.active {
            let tally = tallies.day(guild_id, day);
            let new = tally.seen.insert(member);
            tally.unwritten.push(member);
            tallies.tracked += usize::from(new);
        }
        for (guild_id, day, member) in batch.joins {
            tallies.day(guild_id, day).joined.push(member);
            tallies.tracked += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, n).unwrap()
    }

    #[test]
    fn a_member_is_written_once_a_day_and_forgotten_when_the_day_is_over() {
        let meter = ActivityMeter::default();
        meter.message(1, 10, false, day(1));
        meter.message(1, 10, true, day(1));
        meter.reaction(1, 10, day(1));
        meter.joined(1, 11, day(1));
        meter.left(1, day(1));
        let (batch, untracked) = meter.take(day(1));
        assert_eq!(untracked, 0);
        assert_eq!(
            batch.counts,
            vec![(
                1,
                day(1),
                ActivityCounts {
                    messages: 2,
                    replies: 1,
                    reactions: 1,
                    joins: 1,
                    leaves: 1,
                }
            )]
        );
        assert_eq!(batch.active, vec![(1, day(1), 10)]);
        assert_eq!(batch.joins, vec![(1, day(1), 11)]);
        // Seen again the same day: counted, not written again.
        meter.message(1, 10, false, day(1));
        let (batch, _) = meter.take(day(1));
        assert!(batch.active.is_empty());
        assert_eq!(batch.counts[0].2.messages, 1);
        assert_eq!(meter.tallies().tracked, 1);
        // The day is over: its set goes.
        let (batch, _) = meter.take(day(2));
        assert!(batch.is_empty());
        assert!(meter.tallies().days.is_empty());
        assert_eq!(meter.tallies().tracked, 0);
    }

    #[test]
    fn a_huge_guild_is_tracked_up_to_the_bound_and_counted_past_it() {
        let meter = ActivityMeter::default();
        for member in 0..MEMBERS_PER_GUILD_DAY as u64 + 10 {
            meter.message(1, member, false, day(1));
        }
        meter.message(2, 7, false, day(1));
        assert_eq!(meter.untracked(), 10);
        let (batch, untracked) = meter.take(day(1));
        assert_eq!(untracked, 10);
        assert_eq!(batch.active.len(), MEMBERS_PER_GUILD_DAY + 1);
        let messages: u64 = batch.counts.iter().map(|c| c.2.messages).sum();
        assert_eq!(messages, MEMBERS_PER_GUILD_DAY as u64 + 11);
    }

    #[test]
    fn a_failed_flush_keeps_everything_for_the_next() {
        let meter = ActivityMeter::default();
        meter.message(1, 10, true, day(1));
        meter.joined(1, 11, day(1));
        let (batch, _) = meter.take(day(2));
        meter.give_back(batch.clone());
        let (again, _) = meter.take(day(2));
        assert_eq!(again, batch);
    }
}
