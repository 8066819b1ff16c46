//! The `ai` capability's rows: a guild's AI settings (its own API key, sealed,
//! and its admins' daily caps) and the daily token ledger the caps are
//! enforced on (migration 0018).
//!
//! The store never sees a key in the clear: [`crate::ai::keys`] seals it
//! before it is written and opens it after it is read.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Store, StoreError, count, db_id, now};

/// A guild's AI settings as stored.
#[derive(Clone, Default, PartialEq)]
pub struct GuildAi {
    /// The guild's own key, sealed (nonce then ciphertext); `None`: the operator's.
    pub key_sealed: Option<Vec<u8>>,
    pub key_set_at: Option<DateTime<Utc>>,
    pub key_set_by: Option<String>,
    /// The admins' cap on the guild's tokens per UTC day.
    pub daily_tokens: Option<u64>,
    /// The admins' cap on one member's tokens per UTC day.
    pub member_daily_tokens: Option<u64>,
}

impl std::fmt::Debug for GuildAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuildAi")
            .field("key_sealed", &self.key_sealed.as_ref().map(|_| "<sealed>"))
            .field("key_set_at", &self.key_set_at)
            .field("key_set_by", &self.key_set_by)
            .field("daily_tokens", &self.daily_tokens)
            .field("member_daily_tokens", &self.member_daily_tokens)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct GuildAiRow {
    key_sealed: Option<Vec<u8>>,
    key_set_at: Option<DateTime<Utc>>,
    key_set_by: Option<String>,
    daily_tokens: Option<i64>,
    member_daily_tokens: Option<i64>,
}

/// Tokens of one ledger row: all of them, and those spent through the
/// operator's key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenUse {
    pub tokens: u64,
    pub plan_tokens: u64,
}

/// What one call reserves or settles in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenClaim {
    pub guild_id: u64,
    pub day: NaiveDate,
    /// The member's row besides the guild's; `None`: the guild's only.
    pub member_id: Option<u64>,
    /// Whether the tokens go through the operator's key (and so count against
    /// the plan's cap).
    pub plan: bool,
}

/// The caps a reservation must stay within (`None`: no such cap).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCaps {
    pub guild: Option<u64>,
    pub plan: Option<u64>,
    pub member: Option<u64>,
}

fn cap(limit: Option<u64>) -> i64 {
    limit.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn tokens(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::InvalidArgument(format!("{n} tokens is too many")))
}

impl Store {
    /// A guild's AI settings (all empty when its admins never set any).
    pub async fn guild_ai(&self, guild_id: u64) -> Result<GuildAi, StoreError> {
        let row: Option<GuildAiRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT key_sealed, key_set_at, key_set_by, daily_tokens, member_daily_tokens
                 FROM guild_ai WHERE guild_id = $1",
            )
            .bind(db_id(guild_id))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map_or_else(GuildAi::default, |r| GuildAi {
            key_sealed: r.key_sealed,
            key_set_at: r.key_set_at,
            key_set_by: r.key_set_by,
            daily_tokens: r.daily_tokens.map(count),
            member_daily_tokens: r.member_daily_tokens.map(count),
        }))
    }

    /// Stores a guild's own key, sealed, with who set it and when. Fails with
    /// `InvalidArgument` for a guild the platform does not know.
    pub async fn set_guild_ai_key(
        &self,
        guild_id: u64,
        sealed: &[u8],
        set_by: &str,
    ) -> Result<DateTime<Utc>, StoreError> {
        let at = now();
        let written = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO guild_ai (guild_id, key_sealed, key_set_at, key_set_by, updated_at)
                 VALUES ($1, $2, $3, $4, $3)
                 ON CONFLICT (guild_id) DO UPDATE
                 SET key_sealed = excluded.key_sealed, key_set_at = excluded.key_set_at,
                     key_set_by = excluded.key_set_by, updated_at = excluded.updated_at",
            )
            .bind(db_id(guild_id))
            .bind(sealed)
            .bind(at)
            .bind(set_by)
            .execute(pool)
            .await
            .map(drop)
        });
        match written {
            Ok(_) => Ok(at),
            Err(e) if super::is_foreign_key_violation(&e) => Err(StoreError::InvalidArgument(
                format!("guild {guild_id} is not known to the platform"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets a guild's own key; returns whether one was set.
    pub async fn delete_guild_ai_key(&self, guild_id: u64) -> Result<bool, StoreError> {
        let done = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE guild_ai
                 SET key_sealed = NULL, key_set_at = NULL, key_set_by = NULL, updated_at = $2
                 WHERE guild_id = $1 AND key_sealed IS NOT NULL",
            )
            .bind(db_id(guild_id))
            .bind(now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Sets the admins' daily caps of a guild (`None`: none of their own).
    pub async fn set_guild_ai_caps(
        &self,
        guild_id: u64,
        daily_tokens: Option<u64>,
        member_daily_tokens: Option<u64>,
    ) -> Result<(), StoreError> {
        let daily = daily_tokens.map(tokens).transpose()?;
        let member = member_daily_tokens.map(tokens).transpose()?;
        let written = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO guild_ai (guild_id, daily_tokens, member_daily_tokens, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (guild_id) DO UPDATE
                 SET daily_tokens = excluded.daily_tokens,
                     member_daily_tokens = excluded.member_daily_tokens,
                     updated_at = excluded.updated_at",
            )
            .bind(db_id(guild_id))
            .bind(daily)
            .bind(member)
            .bind(now())
            .execute(pool)
            .await
            .map(drop)
        });
        match written {
            Ok(_) => Ok(()),
            Err(e) if super::is_foreign_key_violation(&e) => Err(StoreError::InvalidArgument(
                format!("guild {guild_id} is not known to the platform"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The tokens used (and reserved) on `day` by the guild as a whole
    /// (`member_id` `None`) or for one member.
    pub async fn ai_token_use(
        &self,
        guild_id: u64,
        day: NaiveDate,
        member_id: Option<u64>,
    ) -> Result<TokenUse, StoreError> {
        let row: Option<(i64, i64)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT tokens, plan_tokens FROM ai_token_use
                 WHERE guild_id = $1 AND day = $2 AND member_id = $3",
            )
            .bind(db_id(guild_id))
            .bind(day)
            .bind(db_id(member_id.unwrap_or(0)))
            .fetch_optional(pool)
            .await?
        });
        Ok(
            row.map_or_else(TokenUse::default, |(tokens, plan_tokens)| TokenUse {
                tokens: count(tokens),
                plan_tokens: count(plan_tokens),
            }),
        )
    }

    /// Reserves `amount` tokens for a call, in the guild's row and the
    /// member's, each only if it stays within its caps: one conditional upsert
    /// per row, so concurrent calls (of any process) never reserve past a cap.
    /// Returns whether both rows took it; when the member's row refuses, the
    /// guild's is given back.
    pub async fn reserve_ai_tokens(
        &self,
        claim: &TokenClaim,
        amount: u64,
        caps: &TokenCaps,
    ) -> Result<bool, StoreError> {
        let amount = tokens(amount)?;
        let plan_amount = if claim.plan { amount } else { 0 };
        let plan_cap = if claim.plan { cap(caps.plan) } else { i64::MAX };
        if !self
            .reserve_row(claim, 0, amount, plan_amount, cap(caps.guild), plan_cap)
            .await?
        {
            return Ok(false);
        }
        if let Some(member) = claim.member_id
            && !self
                .reserve_row(
                    claim,
                    member,
                    amount,
                    plan_amount,
                    cap(caps.member),
                    i64::MAX,
                )
                .await?
        {
            self.adjust_rows(claim, -amount, -plan_amount, false)
                .await?;
            return Ok(false);
        }
        Ok(true)
    }

    async fn reserve_row(
        &self,
        claim: &TokenClaim,
        member_id: u64,
        amount: i64,
        plan_amount: i64,
        cap: i64,
        plan_cap: i64,
    ) -> Result<bool, StoreError> {
        if amount > cap || plan_amount > plan_cap {
            return Ok(false);
        }
        let taken: Option<i64> = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "INSERT INTO ai_token_use (guild_id, day, member_id, tokens, plan_tokens)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (guild_id, day, member_id) DO UPDATE
                 SET tokens = ai_token_use.tokens + excluded.tokens,
                     plan_tokens = ai_token_use.plan_tokens + excluded.plan_tokens
                 WHERE ai_token_use.tokens + excluded.tokens <= $6
                   AND ai_token_use.plan_tokens + excluded.plan_tokens <= $7
                 RETURNING tokens",
            )
            .bind(db_id(claim.guild_id))
            .bind(claim.day)
            .bind(db_id(member_id))
            .bind(amount)
            .bind(plan_amount)
            .bind(cap)
            .bind(plan_cap)
            .fetch_optional(pool)
            .await?
        });
        Ok(taken.is_some())
    }

    /// Settles a reservation of `reserved` tokens to the `used` ones: the
    /// ledger rows move by the difference, and the guild's usage counter for
    /// the day (what `/usage/{guildId}/daily` shows and billing reports) gains
    /// `used` (as own-key tokens too when the call used the guild's key).
    pub async fn settle_ai_tokens(
        &self,
        claim: &TokenClaim,
        reserved: u64,
        used: u64,
    ) -> Result<(), StoreError> {
        let delta = tokens(used)? - tokens(reserved)?;
        let plan_delta = if claim.plan { delta } else { 0 };
        self.adjust_rows(claim, delta, plan_delta, true).await?;
        if used > 0 {
            let used = tokens(used)?;
            let own = if claim.plan { 0 } else { used };
            on_db!(&self.db, pool => {
                sqlx::query(
                    "INSERT INTO usage_counters (guild_id, day, ai_tokens, ai_own_key_tokens)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (guild_id, day) DO UPDATE
                     SET ai_tokens = usage_counters.ai_tokens + excluded.ai_tokens,
                         ai_own_key_tokens = usage_counters.ai_own_key_tokens
                                             + excluded.ai_own_key_tokens",
                )
                .bind(db_id(claim.guild_id))
                .bind(claim.day)
                .bind(used)
                .bind(own)
                .execute(pool)
                .await?;
            });
        }
        Ok(())
    }

    /// Moves the claim's rows by `delta` tokens (`plan_delta` of them the
    /// plan's), never below zero.
    async fn adjust_rows(
        &self,
        claim: &TokenClaim,
        delta: i64,
        plan_delta: i64,
        member_too: bool,
    ) -> Result<(), StoreError> {
        let mut rows = vec![0];
        if member_too && let Some(member) = claim.member_id {
            rows.push(member);
        }
        for member_id in rows {
            on_db!(&self.db, pool => {
                sqlx::query(
                    "UPDATE ai_token_use
                     SET tokens = CASE WHEN tokens + $4 < 0 THEN 0 ELSE tokens + $4 END,
                         plan_tokens = CASE WHEN plan_tokens + $5 < 0 THEN 0 ELSE plan_tokens + $5 END
                     WHERE guild_id = $1 AND day = $2 AND member_id = $3",
                )
                .bind(db_id(claim.guild_id))
                .bind(claim.day)
                .bind(db_id(member_id))
                .bind(delta)
                .bind(plan_delta)
                .execute(pool)
                .await?;
            });
        }
        Ok(())
    }

    /// A guild's AI tokens on `day` that went through its own key.
    pub async fn ai_own_key_tokens(
        &self,
        guild_id: u64,
        day: NaiveDate,
    ) -> Result<u64, StoreError> {
        let n: Option<i64> = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT ai_own_key_tokens FROM usage_counters WHERE guild_id = $1 AND day = $2",
            )
            .bind(db_id(guild_id))
            .bind(day)
            .fetch_optional(pool)
            .await?
        });
        Ok(n.map_or(0, count))
    }
}
