//! Usage metering: events and commands per guild per UTC day.
//!
//! Counted in memory and written to the store's usage counters by
//! [`Runtime::flush_usage`] (one upsert per guild and day), so metering adds no
//! database write to the dispatch path. Whoever runs the runtime flushes it
//! periodically and on shutdown; counts not yet flushed when the process dies are
//! lost.

use super::Runtime;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    events: u64,
    commands: u64,
}

#[derive(Default)]
pub(super) struct UsageMeter(Mutex<HashMap<(u64, NaiveDate), Tally>>);

impl UsageMeter {
    fn today() -> NaiveDate {
        chrono::Utc::now().date_naive()
    }

    pub(super) fn event(&self, guild_id: u64) {
        self.0
            .lock()
            .unwrap()
            .entry((guild_id, Self::today()))
            .or_default()
            .events += 1;
    }

    pub(super) fn command(&self, guild_id: u64) {
        self.0
            .lock()
            .unwrap()
            .entry((guild_id, Self::today()))
            .or_default()
            .commands += 1;
    }

    fn take(&self) -> Vec<((u64, NaiveDate), Tally)> {
        self.0.lock().unwrap().drain().collect()
    }

    fn give_back(&self, key: (u64, NaiveDate), tally: Tally) {
        let mut counts = self.0.lock().unwrap();
        let entry = counts.entry(key).or_default();
        entry.events += tally.events;
        entry.commands += tally.commands;
    }
}

impl Runtime {
    /// Writes the usage counted since the last flush; returns how many
    /// guild-days were written. On a store error the unwritten counts are kept
    /// for the next flush.
    pub async fn flush_usage(&self) -> anyhow::Result<usize> {
        let pending = self.usage.take();
        let mut written = 0;
        let mut pending = pending.into_iter();
        while let Some(((guild_id, day), tally)) = pending.next() {
            if let Err(error) = self
                .store
                .add_usage(guild_id, day, tally.events, tally.commands, 0)
                .await
            {
                self.usage.give_back((guild_id, day), tally);
                pending.for_each(|(key, tally)| self.usage.give_back(key, tally));
                return Err(error.into());
            }
            written += 1;
        }
        Ok(written)
    }
}
