//! How many invocations run at once: at most one per pool slot in all, and at
//! most a plan's share per guild, so one guild flooding events waits on its own
//! allowance while every other guild's invocations go ahead.
//!
//! Waiting is bounded. A guild whose queue is full, or an invocation that
//! waited too long, is turned away as [`Busy`]: the host's condition, which
//! never counts against the feature's circuit breaker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why an invocation was not started.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Busy(pub String);

/// Guilds whose idle entries are dropped once the map holds this many.
const PRUNE_AT: usize = 4_096;

pub(crate) struct Slots {
    global: Arc<Semaphore>,
    guilds: Mutex<HashMap<u64, Guild>>,
    /// The longest an invocation waits for a slot.
    max_wait: Duration,
}

struct Guild {
    running: Arc<Semaphore>,
    /// Invocations waiting or running; bounded by `max_queued`.
    queued: Arc<()>,
}

/// Held while an invocation runs.
pub(crate) struct Permit {
    _guild: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
    _queued: Arc<()>,
}

impl Slots {
    pub(crate) fn new(global: u32, max_wait: Duration) -> Self {
        Slots {
            global: Arc::new(Semaphore::new(global as usize)),
            guilds: Mutex::new(HashMap::new()),
            max_wait,
        }
    }

    /// Waits for a slot of the guild (which runs at most `per_guild` at once and
    /// queues at most `max_queued`) and then for one of the platform's.
    pub(crate) async fn acquire(
        &self,
        guild_id: u64,
        per_guild: u32,
        max_queued: u32,
    ) -> Result<Permit, Busy> {
        let (running, queued) = {
            let mut guilds = self.guilds.lock().unwrap();
            if guilds.len() >= PRUNE_AT {
                guilds.retain(|_, g| Arc::strong_count(&g.queued) > 1);
            }
            let guild = guilds.entry(guild_id).or_insert_with(|| Guild {
                running: Arc::new(Semaphore::new(per_guild.max(1) as usize)),
                queued: Arc::new(()),
            });
            // One reference is the map's own.
            if Arc::strong_count(&guild.queued) > max_queued as usize {
                return Err(Busy(format!(
                    "guild {guild_id} already has {max_queued} invocations waiting or running"
                )));
            }
            (guild.running.clone(), guild.queued.clone())
        };
        let wait = async {
            let guild = running.acquire_owned().await.ok()?;
            let global = self.global.clone().acquire_owned().await.ok()?;
            Some((guild, global))
        };
        match tokio::time::timeout(self.max_wait, wait).await {
            Ok(Some((guild, global))) => Ok(Permit {
                _guild: guild,
                _global: global,
                _queued: queued,
            }),
            _ => Err(Busy(format!(
                "no invocation slot within {:?}; the host is busy",
                self.max_wait
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_flooding_guild_waits_on_its_own_share() {
        let slots = Slots::new(4, Duration::from_secs(1));
        let _held = [
            slots.acquire(1, 2, 8).await.unwrap(),
            slots.acquire(1, 2, 8).await.unwrap(),
        ];
        // Guild 1 has used its share: its third waits and then gives up ...
        let started = tokio::time::Instant::now();
        assert!(slots.acquire(1, 2, 8).await.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        // ... while another guild gets both of its slots at once.
        let started = tokio::time::Instant::now();
        let _other = [
            slots.acquire(2, 2, 8).await.unwrap(),
            slots.acquire(2, 2, 8).await.unwrap(),
        ];
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_is_refused_without_waiting() {
        let slots = Arc::new(Slots::new(1, Duration::from_secs(60)));
        let first = slots.acquire(7, 1, 2).await.unwrap();
        let s = slots.clone();
        let second = tokio::spawn(async move { s.acquire(7, 1, 2).await.is_ok() });
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        assert!(slots.acquire(7, 1, 2).await.is_err());
        assert_eq!(started.elapsed(), Duration::ZERO);
        drop(first);
        assert!(second.await.unwrap(), "the queued one never ran");
    }
}
