//! The invalid-request governor: Discord bans the bot's IP for about an hour after
//! 10,000 invalid answers (401, 403, 429) in 10 minutes, and then every tenant goes
//! dark. So the platform counts them itself and stops well before:
//!
//! - **Budgets.** Invalid answers are counted in a sliding 10-minute window per
//!   feature in a guild, per guild and for the platform. A feature's call is refused
//!   locally — it costs Discord nothing — once any of its three windows is at its
//!   budget. The host's own calls (interaction answers, command registration) are
//!   never refused for budget: they count, but they are few and the platform needs
//!   them.
//! - **Remembered refusals.** A 403 to a feature's call (a channel the bot may not
//!   post in, a closed DM, a member above the bot) is remembered by what was refused
//!   for a while, and every feature's same call is refused locally until then instead
//!   of being asked again. The host's own calls neither teach nor consult this memory:
//!   the host retries on its own terms, and a call it makes after an admin fixed a
//!   permission must not be refused for what the bot lacked before (a success
//!   forgets the refusal for everyone).
//!
//! Every answer and local refusal is also counted on the caller
//! ([`Caller::invalid_requests`]), so the runtime can treat a feature that keeps
//! provoking them like one that keeps trapping, and exported as metrics.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::rest::RestError;
use super::{Caller, DiscordError};
use crate::metrics::metrics;

/// Discord's window for invalid requests.
const WINDOW: Duration = Duration::from_secs(600);

/// The window is kept in slots of a minute, so a window costs a few bytes and slides
/// minute by minute.
const SLOT: Duration = Duration::from_secs(60);
const SLOTS: usize = (WINDOW.as_secs() / SLOT.as_secs()) as usize;

/// Windows and refusals kept at most; empty or expired ones are dropped past it.
const MAX_TRACKED: usize = 10_000;

/// Why a call was refused without asking Discord (the `reason` label of
/// `townes_discord_refused_total`).
pub mod reason {
    /// A 403 for the same call is remembered.
    pub const REMEMBERED: &str = "remembered_refusal";
    /// The feature in this guild is at its invalid-request budget.
    pub const FEATURE_BUDGET: &str = "feature_budget";
    /// The guild is at its invalid-request budget.
    pub const GUILD_BUDGET: &str = "guild_budget";
    /// The platform is at its invalid-request budget.
    pub const PLATFORM_BUDGET: &str = "platform_budget";
    /// The feature or guild has too many calls queued.
    pub const QUEUE_QUOTA: &str = "queue_quota";
}

/// The governor's limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budgets {
    /// Invalid answers per feature in a guild per 10 minutes.
    pub feature: u32,
    /// Invalid answers per guild (all its features) per 10 minutes.
    pub guild: u32,
    /// Invalid answers for the whole platform per 10 minutes.
    pub platform: u32,
    /// How long a 403 is remembered.
    pub remember: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Scope {
    Feature(u64, String),
    Guild(u64),
    Platform,
}

/// Counts per minute over the last [`SLOTS`] minutes.
#[derive(Debug, Default)]
struct Window {
    slots: [u32; SLOTS],
    /// The minute `slots` was last advanced to.
    minute: u64,
}

impl Window {
    fn advance(&mut self, minute: u64) {
        let behind = minute.saturating_sub(self.minute);
        for step in 1..=behind.min(SLOTS as u64) {
            self.slots[((self.minute + step) % SLOTS as u64) as usize] = 0;
        }
        self.minute = self.minute.max(minute);
    }

    fn total(&mut self, minute: u64) -> u32 {
        self.advance(minute);
        self.slots.iter().sum()
    }

    fn add(&mut self, minute: u64) {
        self.advance(minute);
        let slot = &mut self.slots[(minute % SLOTS as u64) as usize];
        *slot = slot.saturating_add(1);
    }
}

#[derive(Debug, Default)]
struct State {
    windows: HashMap<Scope, Window>,
    /// What was refused, by [`Action::refusal_key`](super::Action::refusal_key), until
    /// when, and how.
    refusals: HashMap<String, (Instant, DiscordError)>,
}

#[derive(Debug)]
pub(crate) struct Governor {
    budgets: Budgets,
    started: Instant,
    state: Mutex<State>,
}

fn feature_label(caller: Option<&Caller>) -> &str {
    caller.map_or("host", |c| c.feature_id.as_str())
}

/// The status an answer counts as toward Discord's invalid-request limit, if any.
fn invalid_status(result: &Result<(), &RestError>) -> Option<u16> {
    match result {
        Err(RestError::Unauthorized(_)) => Some(401),
        Err(RestError::Final(DiscordError::Forbidden(_))) => Some(403),
        Err(RestError::RateLimited { scope, .. }) if *scope != super::ratelimit::Scope::Shared => {
            Some(429)
        }
        _ => None,
    }
}

impl Governor {
    pub(crate) fn new(budgets: Budgets) -> Governor {
        Governor {
            budgets,
            started: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Each critical section is a few map updates: a panic leaves the data usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn minute(&self) -> u64 {
        self.started.elapsed().as_secs() / SLOT.as_secs()
    }

    /// Refuses a call Discord would refuse anyway (a remembered 403 for `key`) or
    /// that a feature may not make now (a budget is used up).
    pub(crate) fn admit(
        &self,
        caller: Option<&Caller>,
        key: Option<&str>,
    ) -> Result<(), DiscordError> {
        let refused = self.check(caller, key);
        if let Err((reason, _)) = &refused {
            self.refused(caller, reason);
        }
        refused.map_err(|(_, error)| error)
    }

    fn check(
        &self,
        caller: Option<&Caller>,
        key: Option<&str>,
    ) -> Result<(), (&'static str, DiscordError)> {
        let now = Instant::now();
        let minute = self.minute();
        let mut state = self.state();
        if caller.is_some()
            && let Some(key) = key
            && let Some((until, error)) = state.refusals.get(key)
        {
            if *until > now {
                return Err((reason::REMEMBERED, remembered(error, *until - now)));
            }
            state.refusals.remove(key);
        }
        let Some(caller) = caller else {
            return Ok(());
        };
        let scopes = [
            (
                Scope::Feature(caller.guild_id, caller.feature_id.clone()),
                self.budgets.feature,
                reason::FEATURE_BUDGET,
                "this feature in this guild",
            ),
            (
                Scope::Guild(caller.guild_id),
                self.budgets.guild,
                reason::GUILD_BUDGET,
                "this guild",
            ),
            (
                Scope::Platform,
                self.budgets.platform,
                reason::PLATFORM_BUDGET,
                "the platform",
            ),
        ];
        for (scope, budget, reason, whose) in scopes {
            let used = state.windows.get_mut(&scope).map_or(0, |w| w.total(minute));
            if used >= budget {
                return Err((
                    reason,
                    DiscordError::QuotaExceeded(format!(
                        "Discord refused {used} calls of {whose} in the last 10 minutes \
                         (budget {budget}); calls are refused locally until that falls, so \
                         Discord does not ban the bot — check the bot's permissions and the \
                         channels and members the feature acts on"
                    )),
                ));
            }
        }
        Ok(())
    }

    /// Counts a local refusal of the caller's call (any reason; see [`reason`]).
    pub(crate) fn refused(&self, caller: Option<&Caller>, reason: &str) {
        if let Some(caller) = caller {
            caller.count_invalid();
        }
        metrics().record_discord_refused(feature_label(caller), reason);
    }

    /// Learns from Discord's answer to a call made for `caller`: counts an invalid
    /// one, remembers a 403 to a feature's call under `key`, forgets a refusal the call
    /// got past.
    pub(crate) fn record(
        &self,
        caller: Option<&Caller>,
        key: Option<&str>,
        result: Result<(), &RestError>,
    ) {
        match (key, &result) {
            (Some(key), Err(RestError::Final(error @ DiscordError::Forbidden(_))))
                if caller.is_some() =>
            {
                self.remember(key, error);
            }
            (Some(key), Ok(())) => {
                self.state().refusals.remove(key);
            }
            _ => {}
        }
        let Some(status) = invalid_status(&result) else {
            return;
        };
        let minute = self.minute();
        let mut state = self.state();
        let mut count = |scope: Scope| state.windows.entry(scope).or_default().add(minute);
        count(Scope::Platform);
        if let Some(caller) = caller {
            count(Scope::Guild(caller.guild_id));
            count(Scope::Feature(caller.guild_id, caller.feature_id.clone()));
            caller.count_invalid();
        }
        if state.windows.len() > MAX_TRACKED {
            state.windows.retain(|_, w| w.total(minute) > 0);
        }
        drop(state);
        metrics().record_discord_invalid(feature_label(caller), status);
    }

    /// Refuses calls under `key` locally for a while with `error`.
    pub(crate) fn remember(&self, key: &str, error: &DiscordError) {
        let now = Instant::now();
        let mut state = self.state();
        if state.refusals.len() >= MAX_TRACKED {
            state.refusals.retain(|_, (until, _)| *until > now);
        }
        state.refusals.insert(
            key.to_string(),
            (now + self.budgets.remember, error.clone()),
        );
    }
}

/// A remembered refusal as the caller sees it: Discord's own words, and for how long
/// it stands.
fn remembered(error: &DiscordError, left: Duration) -> DiscordError {
    let note = format!(
        " (Discord refused this lately; not asked again for {} s)",
        left.as_secs().max(1)
    );
    match error {
        DiscordError::NotFound(m) => DiscordError::NotFound(format!("{m}{note}")),
        DiscordError::Forbidden(m) => DiscordError::Forbidden(format!("{m}{note}")),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discord::ratelimit::Scope as RateScope;

    fn budgets() -> Budgets {
        Budgets {
            feature: 3,
            guild: 5,
            platform: 100,
            remember: Duration::from_secs(300),
        }
    }

    fn forbidden() -> RestError {
        RestError::Final(DiscordError::Forbidden("Missing Access".into()))
    }

    #[tokio::test(start_paused = true)]
    async fn budgets_refuse_locally_and_recover_as_the_window_slides() {
        let g = Governor::new(budgets());
        let (xp, tickets) = (Caller::new(1, "xp"), Caller::new(1, "tickets"));
        for _ in 0..3 {
            g.admit(Some(&xp), None).unwrap();
            g.record(Some(&xp), None, Err(&forbidden()));
        }
        assert!(matches!(
            g.admit(Some(&xp), None),
            Err(DiscordError::QuotaExceeded(m)) if m.contains("this feature in this guild")
        ));
        assert_eq!(xp.invalid_requests(), 4, "3 answers and 1 local refusal");
        // Another feature of the guild still has room, until the guild's budget is used.
        g.admit(Some(&tickets), None).unwrap();
        let shared = RestError::RateLimited {
            retry_after: Duration::from_secs(1),
            scope: RateScope::Shared,
        };
        g.record(Some(&tickets), None, Err(&shared));
        g.admit(Some(&tickets), None).unwrap();
        for _ in 0..2 {
            g.record(Some(&tickets), None, Err(&forbidden()));
        }
        assert!(matches!(
            g.admit(Some(&tickets), None),
            Err(DiscordError::QuotaExceeded(m)) if m.contains("calls of this guild")
        ));
        // Another guild, and the host, are untouched.
        g.admit(Some(&Caller::new(2, "xp")), None).unwrap();
        g.admit(None, None).unwrap();
        // Ten minutes later the window has slid past every refusal.
        tokio::time::advance(WINDOW + SLOT).await;
        g.admit(Some(&xp), None).unwrap();
        g.admit(Some(&tickets), None).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_platform_budget_stops_every_feature_but_never_the_host() {
        let g = Governor::new(Budgets {
            platform: 4,
            ..budgets()
        });
        // Spread over guilds, so no feature or guild budget is reached.
        for guild in 1..=4 {
            g.record(Some(&Caller::new(guild, "xp")), None, Err(&forbidden()));
        }
        assert!(matches!(
            g.admit(Some(&Caller::new(9, "welcome")), None),
            Err(DiscordError::QuotaExceeded(m)) if m.contains("calls of the platform")
        ));
        g.admit(None, None).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_403_is_remembered_by_its_key_until_it_expires_or_succeeds() {
        let g = Governor::new(budgets());
        let xp = Caller::new(1, "xp");
        let key = "send_message channel 5";
        g.record(Some(&xp), Some(key), Err(&forbidden()));
        for caller in [&xp, &Caller::new(1, "tickets")] {
            assert!(matches!(
                g.admit(Some(caller), Some(key)),
                Err(DiscordError::Forbidden(m)) if m.starts_with("Missing Access (Discord refused")
            ));
        }
        // The host neither consults nor teaches the memory.
        g.admit(None, Some(key)).unwrap();
        g.record(None, Some("send_message channel 6"), Err(&forbidden()));
        g.admit(Some(&xp), Some("send_message channel 6")).unwrap();
        tokio::time::advance(Duration::from_secs(301)).await;
        g.admit(Some(&xp), Some(key)).unwrap();
        g.remember(key, &DiscordError::Forbidden("x".into()));
        g.record(None, Some(key), Ok(()));
        g.admit(Some(&xp), Some(key)).unwrap();
    }
}
