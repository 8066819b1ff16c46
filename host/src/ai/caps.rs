//! The daily caps one call must stay within, and the words that tell a
//! member which one stopped them and when it resets (UTC midnight).
//!
//! - **plan**: the plan's `ai_tokens_per_day`, on the tokens spent through
//!   the operator's key (a guild's own key is not held to it);
//! - **guild**: the cap the guild's admins set (`PUT /api/guild/{id}/ai/caps`);
//! - **member**: the admins' member cap, else a share of the guild's cap
//!   (`TOWNES_AI_MEMBER_SHARE_PERCENT`), on the tokens spent for one member.

use crate::store::{GuildAi, Store, StoreError, TokenCaps, TokenClaim};
use chrono::{DateTime, Utc};

use super::AiPlan;

/// Which cap refused a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    Plan {
        cap: u64,
        used: u64,
    },
    Guild {
        cap: u64,
        used: u64,
    },
    Member {
        cap: u64,
        used: u64,
    },
    /// Concurrent calls hold what is left (the ledger refused what `fit` allowed).
    Busy,
}

/// The fewest tokens an answer may be lowered to; less is refused.
pub const MIN_ANSWER_TOKENS: u32 = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    pub plan: Option<u64>,
    pub guild: Option<u64>,
    pub member: Option<u64>,
    /// Whether the member's cap is the admins' own (else a share).
    member_set: bool,
}

impl Caps {
    pub fn new(plan: &AiPlan, settings: &GuildAi, share_percent: u8, claim: &TokenClaim) -> Caps {
        let plan_cap = plan.tokens_per_day;
        let guild = settings.daily_tokens;
        let base = match (plan_cap, guild) {
            (Some(p), Some(g)) => Some(p.min(g)),
            (p, g) => p.or(g),
        };
        let member = claim.member_id.and(
            settings
                .member_daily_tokens
                .or(base.map(|b| b * u64::from(share_percent) / 100)),
        );
        Caps {
            plan: plan_cap.filter(|_| claim.plan),
            guild,
            member,
            member_set: settings.member_daily_tokens.is_some(),
        }
    }

    pub fn limits(&self) -> TokenCaps {
        TokenCaps {
            guild: self.guild,
            plan: self.plan,
            member: self.member,
        }
    }

    /// The answer's `max-tokens`: `ceiling` lowered to what the caps leave
    /// after `prompt` tokens; refused when that is under
    /// [`MIN_ANSWER_TOKENS`] (and under `ceiling`).
    pub async fn fit(
        &self,
        store: &Store,
        claim: &TokenClaim,
        prompt: u64,
        ceiling: u32,
    ) -> Result<u32, Refusal> {
        let guild = store
            .ai_token_use(claim.guild_id, claim.day, None)
            .await
            .map_err(busy)?;
        let member = match claim.member_id {
            Some(m) if self.member.is_some() => {
                store
                    .ai_token_use(claim.guild_id, claim.day, Some(m))
                    .await
                    .map_err(busy)?
                    .tokens
            }
            _ => 0,
        };
        let mut room = u64::MAX;
        let mut tightest = Refusal::Busy;
        let mut consider = |cap: Option<u64>, used: u64, why: fn(u64, u64) -> Refusal| {
            if let Some(cap) = cap {
                let left = cap.saturating_sub(used);
                if left < room {
                    room = left;
                    tightest = why(cap, used);
                }
            }
        };
        consider(self.plan, guild.plan_tokens, |cap, used| Refusal::Plan {
            cap,
            used,
        });
        consider(self.guild, guild.tokens, |cap, used| Refusal::Guild {
            cap,
            used,
        });
        consider(self.member, member, |cap, used| Refusal::Member {
            cap,
            used,
        });
        let answer = room.saturating_sub(prompt);
        let fits = u32::try_from(answer).unwrap_or(u32::MAX).min(ceiling);
        if fits >= ceiling.min(MIN_ANSWER_TOKENS) && fits > 0 {
            Ok(fits)
        } else {
            Err(tightest)
        }
    }

    /// The `quota-exceeded` text: which cap, its numbers, when it resets.
    pub fn describe(&self, why: &Refusal, now: DateTime<Utc>) -> String {
        let resets = resets_in(now);
        match why {
            Refusal::Plan { cap, used } => format!(
                "the plan's daily AI limit of {cap} tokens is used up ({used} used today); it resets at 00:00 UTC, in {resets}"
            ),
            Refusal::Guild { cap, used } => format!(
                "this server's daily AI limit of {cap} tokens (set by its admins) is used up ({used} used today); it resets at 00:00 UTC, in {resets}"
            ),
            Refusal::Member { cap, used } => format!(
                "your daily AI limit on this server of {cap} tokens{} is used up ({used} used today); it resets at 00:00 UTC, in {resets}",
                if self.member_set {
                    ""
                } else {
                    " (a share of the server's)"
                }
            ),
            Refusal::Busy => "other AI calls hold what is left of today's tokens".to_string(),
        }
    }
}

fn busy(e: StoreError) -> Refusal {
    tracing::error!(error = %e, "the AI token ledger could not be read");
    Refusal::Busy
}

/// How long until the next UTC midnight, as "3 h 12 min".
pub fn resets_in(now: DateTime<Utc>) -> String {
    let tomorrow = now.date_naive().succ_opt().unwrap_or(now.date_naive());
    let midnight = tomorrow
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let minutes = (midnight - now).num_minutes().max(1);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, m) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(member: Option<u64>, plan: bool) -> TokenClaim {
        TokenClaim {
            guild_id: 1,
            day: chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
            member_id: member,
            plan,
        }
    }

    #[test]
    fn the_member_cap_is_a_share_of_the_tightest_guild_cap_and_own_keys_skip_the_plan() {
        let plan = AiPlan {
            tokens_per_day: Some(1000),
            model: None,
        };
        let settings = GuildAi {
            daily_tokens: Some(400),
            ..GuildAi::default()
        };
        let caps = Caps::new(&plan, &settings, 25, &claim(Some(5), true));
        assert_eq!(
            (caps.plan, caps.guild, caps.member),
            (Some(1000), Some(400), Some(100))
        );
        let own = Caps::new(&plan, &settings, 25, &claim(Some(5), false));
        assert_eq!(own.plan, None);
        let set = GuildAi {
            member_daily_tokens: Some(7),
            ..GuildAi::default()
        };
        assert_eq!(
            Caps::new(&plan, &set, 25, &claim(Some(5), true)).member,
            Some(7)
        );
        assert_eq!(Caps::new(&plan, &set, 25, &claim(None, true)).member, None);
    }

    #[test]
    fn a_refusal_names_its_cap_and_the_reset() {
        let caps = Caps::new(
            &AiPlan::default(),
            &GuildAi::default(),
            25,
            &claim(None, true),
        );
        let now = DateTime::parse_from_rfc3339("2030-01-01T21:30:00Z")
            .unwrap()
            .to_utc();
        let text = caps.describe(&Refusal::Plan { cap: 10, used: 12 }, now);
        assert!(
            text.contains("plan's daily AI limit of 10 tokens"),
            "{text}"
        );
        assert!(text.ends_with("in 2 h 30 min"), "{text}");
    }
}
