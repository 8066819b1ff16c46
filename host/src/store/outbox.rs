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
//!
//! Several processes share one outbox (migration 0016): each row is leased to one
//! executor (`lease_owner`, `lease_until`), the one that inserted or adopted it, and
//! only that holder sends it. The holder renews its leases while it runs and releases
//! them when it stops; a row whose lease ran out (a crashed holder's) or that has none
//! is adopted by whichever executor claims it first, with a compare-and-set.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{Db, Store, StoreError, api_id, count, db_id, db_limit, lease_end, now};

/// The adoption of free rows, `$lock` being how Postgres keeps two adopters off the
/// same candidates (the outer conditions are checked again on the locked rows).
macro_rules! adopt_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE discord_outbox SET lease_owner = $1, lease_until = $2
             WHERE id IN (SELECT id FROM discord_outbox
                          WHERE failed_at IS NULL
                            AND (lease_until IS NULL OR lease_until < $3)
                          ORDER BY id
                          LIMIT $4 ",
            $lock,
            ")
               AND failed_at IS NULL
               AND (lease_until IS NULL OR lease_until < $3)"
        )
    };
}

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

/// Who holds outbox rows, and for how long from now.
#[derive(Clone, Copy, Debug)]
pub struct OutboxLease<'a> {
    /// The executor's random holder id.
    pub holder: &'a str,
    pub duration: std::time::Duration,
}

impl OutboxLease<'_> {
    /// When a lease taken or renewed now runs out, as stored.
    fn until(&self) -> DateTime<Utc> {
        lease_end(now(), self.duration)
    }
}

impl From<PendingRow> for OutboxRow {
    fn from(r: PendingRow) -> OutboxRow {
        OutboxRow {
            id: r.id,
            lane_key: api_id(r.lane_key),
            guild_id: r.guild_id.map(api_id),
            feature_id: r.feature_id,
            action: r.action.0,
            attempts: attempts(r.attempts),
            created_at: r.created_at,
        }
    }
}

impl Store {
    /// Writes a pending row and returns its id (ids only grow and are never reused).
    /// The row is leased to `lease`'s holder; without one it is free for the first
    /// executor that adopts it. `before_commit` runs with the id inside the
    /// transaction, before the row becomes visible to [`Store::outbox_held`]: the
    /// executor registers the caller's waiter there, so a worker can never finish the
    /// row before someone listens for it.
    pub async fn outbox_insert(
        &self,
        lease: Option<OutboxLease<'_>>,
        lane_key: u64,
        origin: Option<(u64, &str)>,
        action: &serde_json::Value,
        before_commit: impl FnOnce(i64),
    ) -> Result<i64, StoreError> {
        let id = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO discord_outbox
                     (lane_key, guild_id, feature_id, action, attempts, created_at,
                      lease_owner, lease_until)
                 VALUES ($1, $2, $3, $4, 0, $5, $6, $7)
                 RETURNING id",
            )
            .bind(db_id(lane_key))
            .bind(origin.map(|(guild_id, _)| db_id(guild_id)))
            .bind(origin.map(|(_, feature_id)| feature_id))
            .bind(Json(action))
            .bind(now())
            .bind(lease.map(|l| l.holder))
            .bind(lease.map(|l| l.until()))
            .fetch_one(&mut *tx)
            .await?;
            before_commit(id);
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// Up to `limit` pending rows, oldest first, whoever holds them.
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
        Ok(rows.into_iter().map(OutboxRow::from).collect())
    }

    /// Up to `limit` pending rows leased to `holder`, oldest first: all an executor
    /// ever sends.
    pub async fn outbox_held(
        &self,
        holder: &str,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows: Vec<PendingRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, lane_key, guild_id, feature_id, action, attempts, created_at
                 FROM discord_outbox
                 WHERE failed_at IS NULL AND lease_owner = $1
                 ORDER BY id
                 LIMIT $2",
            )
            .bind(holder)
            .bind(db_limit(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(OutboxRow::from).collect())
    }

    /// Adopts up to `limit` pending rows nobody holds (no lease, or one that ran
    /// out), oldest first, leasing them to `lease`'s holder; returns how many. A
    /// compare-and-set: two executors adopting at once never take the same row
    /// (Postgres locks the candidates `FOR UPDATE SKIP LOCKED` and checks them
    /// again; SQLite runs one writer at a time). `before_commit` hears the count
    /// inside the transaction, before the rows are visible as the holder's (the
    /// executor counts them there, so a row it finishes was always counted first).
    pub async fn outbox_adopt(
        &self,
        lease: OutboxLease<'_>,
        limit: u32,
        before_commit: impl FnOnce(u64),
    ) -> Result<u64, StoreError> {
        let sql = match &self.db {
            Db::Sqlite(_) => adopt_sql!(""),
            Db::Postgres(_) => adopt_sql!("FOR UPDATE SKIP LOCKED"),
        };
        let at = now();
        let adopted = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let adopted = sqlx::query(sql)
                .bind(lease.holder)
                .bind(lease.until())
                .bind(at)
                .bind(db_limit(limit))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            before_commit(adopted);
            tx.commit().await?;
            adopted
        });
        Ok(adopted)
    }

    /// Extends every lease `lease`'s holder has on pending rows; returns how many.
    /// Rows another executor adopted meanwhile are no longer this holder's and stay
    /// with their new one.
    pub async fn outbox_renew(&self, lease: OutboxLease<'_>) -> Result<u64, StoreError> {
        let renewed = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE discord_outbox SET lease_until = $2
                 WHERE lease_owner = $1 AND failed_at IS NULL",
            )
            .bind(lease.holder)
            .bind(lease.until())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(renewed)
    }

    /// Whether `lease`'s holder still holds row `id` (pending, not cancelled, not
    /// adopted by another executor), extending the lease if so: checked right before
    /// each attempt, so a holder whose lease was taken over does not send too.
    pub async fn outbox_still_held(
        &self,
        id: i64,
        lease: OutboxLease<'_>,
    ) -> Result<bool, StoreError> {
        let held = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE discord_outbox SET lease_until = $3
                 WHERE id = $1 AND lease_owner = $2 AND failed_at IS NULL",
            )
            .bind(id)
            .bind(lease.holder)
            .bind(lease.until())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(held == 1)
    }

    /// Gives up `holder`'s leases on pending rows, so another executor adopts them at
    /// once (a graceful stop); returns how many.
    pub async fn outbox_release(&self, holder: &str) -> Result<u64, StoreError> {
        let released = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE discord_outbox SET lease_owner = NULL, lease_until = NULL
                 WHERE lease_owner = $1 AND failed_at IS NULL",
            )
            .bind(holder)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(released)
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
