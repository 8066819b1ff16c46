//! The circuit breaker: a feature that keeps trapping or timing out in a guild
//! is paused there, with growing backoff, and the audit log says why.
//!
//! Strikes are consecutive faults of one (guild, feature), persisted with the
//! guild's feature row so a restart does not forgive them. At `threshold` strikes
//! the feature pauses for `base`; each further fault after a pause doubles it, up
//! to `max`. One successful invocation clears the strikes.
//!
//! Besides traps and timeouts, an invocation whose Discord calls were refused
//! [`INVALID_REQUESTS_STRIKE`] times or more (by Discord with 401/403/429, or
//! locally by the invalid-request governor) is a fault: a feature that keeps
//! knocking on doors it may not open is paused before it costs the platform
//! its standing with Discord.

use super::{InvokeError, Runtime};
use crate::store::{GuildFeature, NewAuditEntry};
use std::time::Duration;

/// Refused Discord calls in one invocation that count as a fault.
pub const INVALID_REQUESTS_STRIKE: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    pub threshold: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            threshold: 3,
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        }
    }
}

impl BreakerPolicy {
    /// How long to pause after the `strikes`-th consecutive fault, if at all.
    pub fn pause_for(&self, strikes: u32) -> Option<Duration> {
        let over = strikes.checked_sub(self.threshold)?;
        let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
        Some(self.base.saturating_mul(factor).min(self.max))
    }
}

impl Runtime {
    pub(super) async fn update_breaker<T>(
        &self,
        gf: &GuildFeature,
        result: &Result<T, InvokeError>,
        invalid_requests: u32,
    ) -> anyhow::Result<()> {
        let store = &self.store;
        let fault = match result {
            Err(error) if error.is_fault() => Some(error.to_string()),
            _ if invalid_requests >= INVALID_REQUESTS_STRIKE => Some(format!(
                "{invalid_requests} of its Discord requests were refused in one invocation"
            )),
            _ => None,
        };
        match (result, fault) {
            (_, Some(reason)) => {
                // Counted in the database: concurrent faults each add one.
                let strikes = store
                    .add_breaker_strike(gf.guild_id, &gf.feature_id)
                    .await?;
                let pause = self.config.breaker.pause_for(strikes);
                let until = pause.map(|p| {
                    chrono::Utc::now()
                        + chrono::Duration::from_std(p).unwrap_or(chrono::Duration::MAX)
                });
                if let (Some(pause), Some(until)) = (pause, until) {
                    store
                        .set_breaker(gf.guild_id, &gf.feature_id, strikes, Some(until))
                        .await?;
                    tracing::warn!(guild = gf.guild_id, feature = %gf.feature_id, strikes, ?pause, "circuit breaker opened");
                    let entry = NewAuditEntry {
                        guild_id: Some(gf.guild_id),
                        actor: "host".into(),
                        action: "feature.paused".into(),
                        feature_id: Some(gf.feature_id.clone()),
                        details: serde_json::json!({
                            "reason": reason,
                            "consecutive_failures": strikes,
                            "paused_seconds": pause.as_secs(),
                            "until": until.to_rfc3339(),
                        }),
                    };
                    store.audit(&entry).await?;
                }
            }
            (Ok(_), None) if gf.breaker_strikes > 0 => {
                store
                    .set_breaker(gf.guild_id, &gf.feature_id, 0, None)
                    .await?
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_start_at_the_threshold_and_double_up_to_the_cap() {
        let policy = BreakerPolicy {
            threshold: 3,
            base: Duration::from_secs(60),
            max: Duration::from_secs(300),
        };
        assert_eq!(policy.pause_for(2), None);
        assert_eq!(policy.pause_for(3), Some(Duration::from_secs(60)));
        assert_eq!(policy.pause_for(4), Some(Duration::from_secs(120)));
        assert_eq!(policy.pause_for(5), Some(Duration::from_secs(240)));
        assert_eq!(policy.pause_for(6), Some(Duration::from_secs(300)));
        assert_eq!(policy.pause_for(100), Some(Duration::from_secs(300)));
    }
}
