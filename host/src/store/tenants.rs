//! Tenants (customer accounts) and the guilds they own.

use chrono::{DateTime, Utc};

use super::catalog::GuildRow;
use super::{
    Guild, Store, StoreError, Tenant, api_id, db_id, is_foreign_key_violation, now, random_id, ts,
};

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: String,
    owner_discord_id: i64,
    name: Option<String>,
    plan: String,
    created_at: DateTime<Utc>,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Tenant {
        Tenant {
            id: r.id,
            owner_discord_id: api_id(r.owner_discord_id),
            name: r.name,
            plan: r.plan,
            created_at: r.created_at,
        }
    }
}

impl Store {
    /// The tenant owned by `owner_discord_id`, created now (id: 32 random hex digits,
    /// plan `"free"`) if there is none. Find-or-create: calling it again, even
    /// concurrently, returns the same tenant, with its stored name (`name` is only used
    /// when creating).
    pub async fn create_tenant(
        &self,
        owner_discord_id: u64,
        name: Option<&str>,
    ) -> Result<Tenant, StoreError> {
        let id = random_id();
        let row: TenantRow = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO tenants (id, owner_discord_id, name, plan, created_at)
                 VALUES ($1, $2, $3, 'free', $4)
                 ON CONFLICT (owner_discord_id) DO NOTHING",
            )
            .bind(&id)
            .bind(db_id(owner_discord_id))
            .bind(name)
            .bind(now())
            .execute(pool)
            .await?;
            sqlx::query_as(
                "SELECT id, owner_discord_id, name, plan, created_at
                 FROM tenants WHERE owner_discord_id = $1",
            )
            .bind(db_id(owner_discord_id))
            .fetch_one(pool)
            .await?
        });
        Ok(Tenant::from(row))
    }

    pub async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, owner_discord_id, name, plan, created_at
                 FROM tenants WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Tenant::from))
    }

    pub async fn tenant_by_owner(
        &self,
        owner_discord_id: u64,
    ) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, owner_discord_id, name, plan, created_at
                 FROM tenants WHERE owner_discord_id = $1",
            )
            .bind(db_id(owner_discord_id))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Tenant::from))
    }

    /// Links a guild to a tenant, or unlinks it (`None`). An unknown guild or tenant is
    /// refused with [`StoreError::InvalidArgument`].
    pub async fn set_guild_tenant(
        &self,
        guild_id: u64,
        tenant_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let result = on_db!(&self.db, pool => {
            sqlx::query("UPDATE guilds SET tenant_id = $2 WHERE id = $1")
                .bind(db_id(guild_id))
                .bind(tenant_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        match result {
            Ok(0) => Err(StoreError::InvalidArgument(format!("no guild {guild_id}"))),
            Ok(_) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::InvalidArgument(format!(
                "no tenant {}",
                tenant_id.unwrap_or_default()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Records that the bot left a guild at `at`, or clears it (`None`) when the bot
    /// joins again. The guild's rows are kept either way. An unknown guild is refused
    /// with [`StoreError::InvalidArgument`].
    pub async fn mark_guild_left(
        &self,
        guild_id: u64,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let updated = on_db!(&self.db, pool => {
            sqlx::query("UPDATE guilds SET left_at = $2 WHERE id = $1")
                .bind(db_id(guild_id))
                .bind(at.map(ts))
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::InvalidArgument(format!("no guild {guild_id}")));
        }
        Ok(())
    }

    /// The guilds linked to a tenant, by id, including those the bot left.
    pub async fn guilds_of_tenant(&self, tenant_id: &str) -> Result<Vec<Guild>, StoreError> {
        let rows: Vec<GuildRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, name, owner_id, plan, created_at, tenant_id, left_at
                 FROM guilds WHERE tenant_id = $1 ORDER BY id",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Guild::from).collect())
    }

    /// Links the unclaimed guilds `owner_discord_id` owns on Discord to `tenant_id`
    /// (what their Discord login does) and returns their ids, ascending.
    pub async fn claim_owned_guilds(
        &self,
        owner_discord_id: u64,
        tenant_id: &str,
    ) -> Result<Vec<u64>, StoreError> {
        let ids: Vec<i64> = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "UPDATE guilds SET tenant_id = $2
                 WHERE owner_id = $1 AND tenant_id IS NULL
                 RETURNING id",
            )
            .bind(db_id(owner_discord_id))
            .bind(tenant_id)
            .fetch_all(pool)
            .await?
        });
        let mut ids: Vec<u64> = ids.into_iter().map(api_id).collect();
        ids.sort_unstable();
        Ok(ids)
    }
}
