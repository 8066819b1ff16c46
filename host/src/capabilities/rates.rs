//! Allowances per (guild, feature) that outlive one invocation: audit entries
//! per hour, host log lines, failure reports, live events and `http` requests per
//! minute. Per-invocation caps
//! alone would let a feature invoked a thousand times a second flood the audit
//! log or the operator's logs.
//!
//! Fixed windows, counted in memory per process: a restart forgives, which is
//! fine for a flood guard. The map holds one entry per scope active within the
//! window, and idle ones are dropped as it grows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

const PRUNE_AT: usize = 8_192;

pub struct Allowance {
    window: Duration,
    used: Mutex<HashMap<(u64, String), (Instant, u32)>>,
}

impl Allowance {
    pub fn per(window: Duration) -> Self {
        Allowance {
            window,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one from the scope's `limit` for the current window; false when
    /// the window's allowance is spent.
    pub fn take(&self, guild_id: u64, feature_id: &str, limit: u32) -> bool {
        let now = Instant::now();
        let mut used = self.used.lock().unwrap();
        if used.len() >= PRUNE_AT {
            used.retain(|_, (since, _)| now.duration_since(*since) < self.window);
        }
        let key = (guild_id, feature_id.to_string());
        let (since, count) = used.entry(key).or_insert((now, 0));
        if now.duration_since(*since) >= self.window {
            *since = now;
            *count = 0;
        }
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }
}

/// The allowances kept per process, shared by every invocation.
pub struct Rates {
    pub audit: Allowance,
    pub log: Allowance,
    pub failure_reports: Allowance,
    pub live: Allowance,
    /// `http` requests.
    pub http: Allowance,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            audit: Allowance::per(Duration::from_secs(3600)),
            log: Allowance::per(Duration::from_secs(60)),
            failure_reports: Allowance::per(Duration::from_secs(60)),
            live: Allowance::per(Duration::from_secs(60)),
            http: Allowance::per(Duration::from_secs(60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_scope_has_its_own_allowance_per_window() {
        let allowance = Allowance::per(Duration::from_secs(60));
        assert!((0..3).all(|_| allowance.take(1, "a", 3)));
        assert!(!allowance.take(1, "a", 3));
        assert!(
            allowance.take(1, "b", 3),
            "another feature shares the limit"
        );
        assert!(allowance.take(2, "a", 3), "another guild shares the limit");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(allowance.take(1, "a", 3), "the window did not reset");
    }
}
