//! The audit log: who did what, for the dashboard.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{AuditEntry, NewAuditEntry, Store, StoreError, api_id, db_id, db_limit, now};

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
            .bind(now())
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
        let rows: Vec<AuditRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, guild_id, actor, action, feature_id, details, created_at
                 FROM audit_log
                 WHERE guild_id = $1
                 ORDER BY id DESC
                 LIMIT $2",
            )
            .bind(db_id(guild_id))
            .bind(db_limit(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}
