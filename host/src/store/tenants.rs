//! Tenants (customer accounts) and the guilds they own.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::catalog::GuildRow;
use super::{
    Guild, Store, StoreError, Tenant, api_id, db_id, is_foreign_key_violation, now, random_id, ts,
};

/// The audit action of a guild moving to its new Discord owner's tenant.
pub const GUILD_TRANSFERRED: &str = "guild.transferred";

/// What [`Store::change_guild_owner`] changed.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnerChange {
    pub from_owner: u64,
    pub from_tenant: Option<String>,
    /// The new owner's tenant, created if they had none; `None` when the guild
    /// was unclaimed (it stays so until its new owner logs in).
    pub to_tenant: Option<String>,
}

/// Sets the plan of guild `$1` to its tenant's, while the tenant's plan covers
/// another guild (`billing_accounts.guild_cap`), else `free`: a guild linked to
/// a paying tenant runs on its plan at once, within the plan's guild count.
const FOLLOW_TENANT_PLAN: &str = "UPDATE guilds SET plan = COALESCE((
        SELECT t.plan FROM tenants t LEFT JOIN billing_accounts b ON b.tenant_id = t.id
        WHERE t.id = guilds.tenant_id
          AND (b.guild_cap IS NULL OR b.guild_cap > (
                SELECT COUNT(*) FROM guilds o
                WHERE o.tenant_id = t.id AND o.id <> guilds.id
                  AND o.left_at IS NULL AND o.plan = t.plan))
    ), 'free')
    WHERE id = $1";

/// Find-or-create of the tenant owned by `$owner` on executor `$on`, evaluating
/// to its row. `$id` and `$name` are only used when creating.
macro_rules! tenant_of_owner {
    ($on:expr, $id:expr, $owner:expr, $name:expr) => {{
        sqlx::query(
            "INSERT INTO tenants (id, owner_discord_id, name, plan, created_at)
             VALUES ($1, $2, $3, 'free', $4)
             ON CONFLICT (owner_discord_id) DO NOTHING",
        )
        .bind($id)
        .bind(db_id($owner))
        .bind($name)
        .bind(now())
        .execute(&mut *$on)
        .await?;
        let row: TenantRow = sqlx::query_as(
            "SELECT id, owner_discord_id, name, plan, created_at
             FROM tenants WHERE owner_discord_id = $1",
        )
        .bind(db_id($owner))
        .fetch_one(&mut *$on)
        .await?;
        row
    }};
}

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
        let row = on_db!(&self.db, pool => {
            let mut conn = pool.acquire().await?;
            tenant_of_owner!(conn, &id, owner_discord_id, name)
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
            let linked = sqlx::query("UPDATE guilds SET tenant_id = $2 WHERE id = $1")
                .bind(db_id(guild_id))
                .bind(tenant_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected());
            if let Ok(1) = linked {
                sqlx::query(FOLLOW_TENANT_PLAN).bind(db_id(guild_id)).execute(pool).await?;
            }
            linked
        });
        self.control.changed(guild_id);
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
        self.control.changed(guild_id);
        if updated == 0 {
            return Err(StoreError::InvalidArgument(format!("no guild {guild_id}")));
        }
        Ok(())
    }

    /// The guilds linked to a tenant, by id, including those the bot left.
    pub async fn guilds_of_tenant(&self, tenant_id: &str) -> Result<Vec<Guild>, StoreError> {
        let rows: Vec<GuildRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                select_guilds!("WHERE tenant_id = $1 ORDER BY id"),
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Guild::from).collect())
    }

    /// Records that Discord says `new_owner` owns the guild now. A claimed guild
    /// moves to the new owner's tenant (created if they have none, as their login
    /// would), so the previous owner's tenant loses it at once: its sessions and
    /// API keys are checked against the guild's tenant on every request. An
    /// unclaimed guild stays unclaimed. The change and an audit entry
    /// ([`GUILD_TRANSFERRED`], by `discord`) are written in one transaction.
    /// `None` if the guild is unknown or already owned by `new_owner`.
    pub async fn change_guild_owner(
        &self,
        guild_id: u64,
        new_owner: u64,
    ) -> Result<Option<OwnerChange>, StoreError> {
        let new_tenant_id = random_id();
        let change = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            // A write first, so the row is locked (Postgres) or the database
            // reserved (SQLite) before anything is read: no concurrent change
            // slips in between, and SQLite never has to upgrade a read lock.
            let current: Option<(i64, Option<String>)> = sqlx::query_as(
                "UPDATE guilds SET owner_id = owner_id WHERE id = $1
                 RETURNING owner_id, tenant_id",
            )
            .bind(db_id(guild_id))
            .fetch_optional(&mut *tx)
            .await?;
            let Some((from_owner, from_tenant)) =
                current.filter(|(owner, _)| api_id(*owner) != new_owner)
            else {
                tx.rollback().await?;
                return Ok(None);
            };
            let to_tenant = match from_tenant {
                Some(_) => Some(tenant_of_owner!(tx, &new_tenant_id, new_owner, None::<&str>).id),
                None => None,
            };
            sqlx::query("UPDATE guilds SET owner_id = $2, tenant_id = $3 WHERE id = $1")
                .bind(db_id(guild_id))
                .bind(db_id(new_owner))
                .bind(to_tenant.as_deref())
                .execute(&mut *tx)
                .await?;
            sqlx::query(FOLLOW_TENANT_PLAN)
                .bind(db_id(guild_id))
                .execute(&mut *tx)
                .await?;
            let change = OwnerChange {
                from_owner: api_id(from_owner),
                from_tenant,
                to_tenant,
            };
            // Snowflakes as strings, like everywhere JSON leaves the platform. No
            // tenant ids: each owner's tenant follows from the owner, and the
            // entry is shown to whoever manages the guild.
            let details = serde_json::json!({
                "from_owner": change.from_owner.to_string(),
                "to_owner": new_owner.to_string(),
                "tenant_moved": change.to_tenant.is_some(),
            });
            sqlx::query(
                "INSERT INTO audit_log (guild_id, actor, action, feature_id, details, created_at)
                 VALUES ($1, 'discord', $2, NULL, $3, $4)",
            )
            .bind(db_id(guild_id))
            .bind(GUILD_TRANSFERRED)
            .bind(Json(&details))
            .bind(now())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            change
        });
        self.control.changed(guild_id);
        Ok(Some(change))
    }

    /// Links the unclaimed guilds `owner_discord_id` owns on Discord to `tenant_id`
    /// (what their Discord login does) and returns their ids, ascending.
    pub async fn claim_owned_guilds(
        &self,
        owner_discord_id: u64,
        tenant_id: &str,
    ) -> Result<Vec<u64>, StoreError> {
        let ids: Vec<i64> = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let ids: Vec<i64> = sqlx::query_scalar(
                "UPDATE guilds SET tenant_id = $2
                 WHERE owner_id = $1 AND tenant_id IS NULL
                 RETURNING id",
            )
            .bind(db_id(owner_discord_id))
            .bind(tenant_id)
            .fetch_all(&mut *tx)
            .await?;
            // Snowflakes grow with time: the oldest guilds first, as the cap counts.
            let mut oldest_first = ids.clone();
            oldest_first.sort_unstable();
            for id in &oldest_first {
                sqlx::query(FOLLOW_TENANT_PLAN).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            ids
        });
        let mut ids: Vec<u64> = ids.into_iter().map(api_id).collect();
        for id in &ids {
            self.control.changed(*id);
        }
        ids.sort_unstable();
        Ok(ids)
    }
}
