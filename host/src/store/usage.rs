//! Daily usage counters per guild (events, commands, AI tokens), for metering and caps.
//!
//! Days are UTC calendar days. Rows carry a guild id without a foreign key, like audit
//! entries, so metering never fails to write and outlives the guild's row.

use chrono::NaiveDate;

use super::{Store, StoreError, UsageCounter, api_id, count, db_id};

#[derive(sqlx::FromRow)]
struct UsageRow {
    guild_id: i64,
    day: NaiveDate,
    events: i64,
    commands: i64,
    ai_tokens: i64,
}

impl From<UsageRow> for UsageCounter {
    fn from(r: UsageRow) -> UsageCounter {
        UsageCounter {
            guild_id: api_id(r.guild_id),
            day: r.day,
            events: count(r.events),
            commands: count(r.commands),
            ai_tokens: count(r.ai_tokens),
        }
    }
}

/// An amount to add, as the database holds it.
fn amount(field: &str, n: u64) -> Result<i64, StoreError> {
    i64::try_from(n)
        .map_err(|_| StoreError::InvalidArgument(format!("{field} {n} is too large to count")))
}

impl Store {
    /// Adds to a guild's counters for `day`, creating the day's row at zero first. One
    /// atomic statement, so concurrent callers never lose an increment.
    pub async fn add_usage(
        &self,
        guild_id: u64,
        day: NaiveDate,
        events: u64,
        commands: u64,
        ai_tokens: u64,
    ) -> Result<(), StoreError> {
        let events = amount("events", events)?;
        let commands = amount("commands", commands)?;
        let ai_tokens = amount("ai_tokens", ai_tokens)?;
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO usage_counters (guild_id, day, events, commands, ai_tokens)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (guild_id, day) DO UPDATE
                 SET events = usage_counters.events + excluded.events,
                     commands = usage_counters.commands + excluded.commands,
                     ai_tokens = usage_counters.ai_tokens + excluded.ai_tokens",
            )
            .bind(db_id(guild_id))
            .bind(day)
            .bind(events)
            .bind(commands)
            .bind(ai_tokens)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A guild's counters from `from` to `to` (both included), by day. Days without
    /// usage have no row; `from > to` gives nothing.
    pub async fn usage(
        &self,
        guild_id: u64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<UsageCounter>, StoreError> {
        let rows: Vec<UsageRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT guild_id, day, events, commands, ai_tokens
                 FROM usage_counters
                 WHERE guild_id = $1 AND day >= $2 AND day <= $3
                 ORDER BY day",
            )
            .bind(db_id(guild_id))
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(UsageCounter::from).collect())
    }

    /// The AI tokens every guild used on `day`.
    pub async fn ai_tokens_on(&self, day: NaiveDate) -> Result<u64, StoreError> {
        let tokens: i64 = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(ai_tokens), 0) AS BIGINT) FROM usage_counters WHERE day = $1",
            )
            .bind(day)
            .fetch_one(pool)
            .await?
        });
        Ok(u64::try_from(tokens).unwrap_or(0))
    }
}
