//! The Discord outbox: REST calls the executor accepted and has not finished.
//!
//! A row is written before the call is first attempted and deleted once Discord gave a
//! final answer, so a crash never loses an accepted call: the next start replays the
//! pending rows, oldest first. A row whose retries ran out is dead-lettered (kept with
//! its error and `failed_at`) and never replayed automatically.
//!
//! Each row names who asked for it: the guild and feature of a feature's call, or
//! neither for the host's own calls. That is what per-guild and per-feature quotas
//! count, and what [`Store::outbox_cancel`] drops when a feature is disabled.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{Store, StoreError, api_id, count, db_id, db_limit, now};

/// A pending outbox row.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    /// What the call is ordered by (a channel, user or guild id).
    pub lane_key: u64,
    /// The guild a feature's call was made in; `None` for the host's own calls.
    pub guild_id: Option<u64>,
    /// The feature that made the call; `None` for the host's own calls.
    pub feature_id: Option<String>,
    pub action: serde_json::Value,
    /// Attempts that failed transiently so far.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// A dead-lettered outbox row: its retries ran out.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    pub id: i64,
    pub lane_key: u64,
    pub action: serde_json::Value,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub failed_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: i64,
    lane_key: i64,
    guild_id: Option<i64>,
    feature_id: Option<String>,
    action: Json<serde_json::Value>,
    attempts: i32,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct DeadRow {
    id: i64,
    lane_key: i64,
    action: Json<serde_json::Value>,
    attempts: i32,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    failed_at: DateTime<Utc>,
}

fn attempts(n: i32) -> u32 {
    n.max(0) as u32
}

fn db_attempts(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Store {
    /// Writes a pending row and returns its id (ids only grow and are never reused).
    /// `before_commit` runs with the id inside the transaction, before the row becomes
    /// visible to [`Store::outbox_pending`]: the executor registers the caller's waiter
    /// there, so a worker can never finish the row before someone listens for it.
    pub async fn outbox_insert(
        &self,
        lane_key: u64,
        origin: Option<(u64, &str)>,
        action: &serde_json::Value,
        before_commit: impl FnOnce(i64),
    ) -> Result<i64, StoreError> {
        let id = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO discord_outbox
                     (lane_key, guild_id, feature_id, action, attempts, created_at)
                 VALUES ($1, $2, $3, $4, 0, $5)
                 RETURNING id",
            )
            .bind(db_id(lane_key))
            .bind(origin.map(|(guild_id, _)| db_id(guild_id)))
            .bind(origin.map(|(_, feature_id)| feature_id))
            .bind(Json(action))
            .bind(now())
            .fetch_one(&mut *tx)
            .await?;
            before_commit(id);
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// Up to `limit` pending rows, oldest first.
    pub async fn outbox_pending(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let rows: Vec<PendingRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, lane_key, guild_id, feature_id, action, attempts, created_at
                 FROM discord_outbox
                 WHERE failed_at IS NULL
                 ORDER BY id
                 LIMIT $1",
            )
            .bind(db_limit(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| OutboxRow {
                id: r.id,
                lane_key: api_id(r.lane_key),
                guild_id: r.guild_id.map(api_id),
                feature_id: r.feature_id,
                action: r.action.0,
                attempts: attempts(r.attempts),
                created_at: r.created_at,
            })
            .collect())
    }

    /// How many rows `feature_id` has pending in `guild_id`, and how many all the
    /// features of the guild have: what the executor's quotas compare.
    pub async fn outbox_pending_for(
        &self,
        guild_id: u64,
        feature_id: &str,
    ) -> Result<(u64, u64), StoreError> {
        let (feature, guild): (i64, i64) = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT COALESCE(SUM(CASE WHEN feature_id = $2 THEN 1 ELSE 0 END), 0),
                        COUNT(*)
                 FROM discord_outbox
                 WHERE guild_id = $1 AND failed_at IS NULL",
            )
            .bind(db_id(guild_id))
            .bind(feature_id)
            .fetch_one(pool)
            .await?
        });
        Ok((count(feature), count(guild)))
    }

    /// Whether a row is still pending: false once it was finished, dead-lettered or
    /// cancelled (possibly by another process, e.g. `townes feature disable`).
    pub async fn outbox_is_pending(&self, id: i64) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT id FROM discord_outbox WHERE id = $1 AND failed_at IS NULL")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.is_some())
    }

    /// Drops the pending calls a feature made in a guild (it was disabled there);
    /// returns how many. A call already on its way to Discord still completes; the
    /// executor skips the others when it reaches them.
    pub async fn outbox_cancel(&self, guild_id: u64, feature_id: &str) -> Result<u64, StoreError> {
        let done = on_db!(&self.db, pool => {
            sqlx::query(
                "DELETE FROM discord_outbox
                 WHERE guild_id = $1 AND feature_id = $2 AND failed_at IS NULL",
            )
            .bind(db_id(guild_id))
            .bind(feature_id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done)
    }

    /// How many rows are pending (not dead-lettered).
    pub async fn outbox_pending_count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT COUNT(*) FROM discord_outbox WHERE failed_at IS NULL")
                .fetch_one(pool)
                .await?
        });
        Ok(count(n))
    }

    /// Removes a row: Discord gave its final answer. Removing an unknown row is a no-op.
    pub async fn outbox_delete(&self, id: i64) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query("DELETE FROM discord_outbox WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records a failed attempt of a pending row, so operators see why it waits.
    pub async fn outbox_record_attempt(
        &self,
        id: i64,
        attempts: u32,
        error: &str,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query("UPDATE discord_outbox SET attempts = $2, last_error = $3 WHERE id = $1")
                .bind(id)
                .bind(db_attempts(attempts))
                .bind(error)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Dead-letters a row: kept with its error and `failed_at`, never replayed.
    pub async fn outbox_dead_letter(
        &self,
        id: i64,
        attempts: u32,
        error: &str,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE discord_outbox SET attempts = $2, last_error = $3, failed_at = $4
                 WHERE id = $1",
            )
            .bind(id)
            .bind(db_attempts(attempts))
            .bind(error)
            .bind(now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The latest `limit` dead letters, newest first.
    pub async fn outbox_dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let rows: Vec<DeadRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, lane_key, action, attempts, last_error, created_at, failed_at
                 FROM discord_outbox
                 WHERE failed_at IS NOT NULL
                 ORDER BY failed_at DESC, id DESC
                 LIMIT $1",
            )
            .bind(db_limit(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| DeadLetter {
                id: r.id,
                lane_key: api_id(r.lane_key),
                action: r.action.0,
                attempts: attempts(r.attempts),
                last_error: r.last_error,
                created_at: r.created_at,
                failed_at: r.failed_at,
            })
            .collect())
    }
}
