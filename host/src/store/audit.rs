//! The audit log: who did what, for the dashboard.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{AuditEntry, NewAuditEntry, Store, StoreError, api_id, db_id, db_limit, now, ts};

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    guild_id: Option<i64>,
    actor: String,
    action: String,
    feature_id: Option<String>,
    details: Json<serde_json::Value>,
    created_at: DateTime<Utc>,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> AuditEntry {
        AuditEntry {
            id: r.id,
            guild_id: r.guild_id.map(api_id),
            actor: r.actor,
            action: r.action,
            feature_id: r.feature_id,
            details: r.details.0,
            created_at: r.created_at,
        }
    }
}

impl Store {
    /// Appends an entry, stamped now.
    pub async fn audit(&self, e: &NewAuditEntry) -> Result<(), StoreError> {
        self.audit_at(e, now()).await
    }

    /// Appends an entry stamped `at`: what happened at a known time (a
    /// simulation, a replayed history).
    pub async fn audit_at(&self, e: &NewAuditEntry, at: DateTime<Utc>) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO audit_log (guild_id, actor, action, feature_id, details, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(e.guild_id.map(db_id))
            .bind(&e.actor)
            .bind(&e.action)
            .bind(e.feature_id.as_deref())
            .bind(Json(&e.details))
            .bind(ts(at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A guild's latest `limit` entries, newest first (in the order they were written).
    pub async fn audit_entries(
        &self,
        guild_id: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_page(guild_id, None, limit).await
    }

    /// One entry of a guild by id; `None` if there is none, or it belongs to another
    /// guild (or none), so a guild's dashboard cannot read other guilds' entries by id.
    pub async fn audit_entry(
        &self,
        guild_id: u64,
        id: i64,
    ) -> Result<Option<AuditEntry>, StoreError> {
        let row: Option<AuditRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, guild_id, actor, action, feature_id, details, created_at
                 FROM audit_log
                 WHERE id = $1 AND guild_id = $2",
            )
            .bind(id)
            .bind(db_id(guild_id))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(AuditEntry::from))
    }

    /// A guild's entries, newest first, entries with id < before when given (keyset
    /// pagination: pass the last id of a page to get the next one; unlike an offset, it
    /// neither skips nor repeats entries when new ones are written meanwhile). Served by
    /// `audit_log_by_guild`.
    pub async fn audit_page(
        &self,
        guild_id: u64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, guild_id, actor, action, feature_id, details, created_at
                 FROM audit_log
                 WHERE guild_id = $1 AND id < $2
                 ORDER BY id DESC
                 LIMIT $3",
            )
            .bind(db_id(guild_id))
            .bind(before.unwrap_or(i64::MAX))
            .bind(db_limit(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// Every entry (any guild, and platform-wide ones) with id > after, oldest first, at
    /// most limit: for live tailing, starting from [`Store::audit_head`] and passing the
    /// last id seen. Ids grow with every write; on Postgres an id is taken when the insert
    /// starts, so a slow insert can commit after a later id is already visible. Each
    /// entry is written by a single-statement insert, so that window is short; a tailer
    /// that must never miss one can re-read a little behind its cursor.
    pub async fn audit_since(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, guild_id, actor, action, feature_id, details, created_at
                 FROM audit_log
                 WHERE id > $1
                 ORDER BY id
                 LIMIT $2",
            )
            .bind(after)
            .bind(db_limit(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// The highest audit id so far (0 when empty): where a live tail starts, so it only
    /// sends what is written after it connected.
    pub async fn audit_head(&self) -> Result<i64, StoreError> {
        let head: i64 = on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM audit_log")
                .fetch_one(pool)
                .await?
        });
        Ok(head)
    }
}
