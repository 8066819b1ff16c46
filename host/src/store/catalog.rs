//! Guilds, installed feature versions, and the per-(guild, feature) state.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{FeatureVersion, Guild, GuildFeature, Store, StoreError, api_id, count, db_id, ts};

#[derive(sqlx::FromRow)]
struct GuildRow {
    id: i64,
    name: String,
    owner_id: i64,
    plan: String,
    created_at: DateTime<Utc>,
}

impl From<GuildRow> for Guild {
    fn from(r: GuildRow) -> Guild {
        Guild {
            id: api_id(r.id),
            name: r.name,
            owner_id: api_id(r.owner_id),
            plan: r.plan,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct FeatureVersionRow {
    feature_id: String,
    version: String,
    sha256: String,
    manifest: Json<serde_json::Value>,
    size_bytes: i64,
    created_at: DateTime<Utc>,
}

impl From<FeatureVersionRow> for FeatureVersion {
    fn from(r: FeatureVersionRow) -> FeatureVersion {
        FeatureVersion {
            feature_id: r.feature_id,
            version: r.version,
            sha256: r.sha256,
            manifest: r.manifest.0,
            size_bytes: count(r.size_bytes),
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct GuildFeatureRow {
    guild_id: i64,
    feature_id: String,
    version: String,
    enabled: bool,
    grants: Json<serde_json::Value>,
    config: Option<Json<serde_json::Value>>,
    breaker_strikes: i64,
    breaker_open_until: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl From<GuildFeatureRow> for GuildFeature {
    fn from(r: GuildFeatureRow) -> GuildFeature {
        GuildFeature {
            guild_id: api_id(r.guild_id),
            feature_id: r.feature_id,
            version: r.version,
            enabled: r.enabled,
            grants: r.grants.0,
            config: r.config.map(|c| c.0),
            breaker_strikes: u32::try_from(r.breaker_strikes.max(0)).unwrap_or(u32::MAX),
            breaker_open_until: r.breaker_open_until,
            updated_at: r.updated_at,
        }
    }
}

impl Store {
    /// Inserts a guild or updates its name, owner and plan. `created_at` is kept from
    /// the first insert.
    pub async fn upsert_guild(&self, g: &Guild) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO guilds (id, name, owner_id, plan, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE
                 SET name = excluded.name, owner_id = excluded.owner_id, plan = excluded.plan",
            )
            .bind(db_id(g.id))
            .bind(&g.name)
            .bind(db_id(g.owner_id))
            .bind(&g.plan)
            .bind(ts(g.created_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn guild(&self, id: u64) -> Result<Option<Guild>, StoreError> {
        let row: Option<GuildRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, name, owner_id, plan, created_at FROM guilds WHERE id = $1",
            )
            .bind(db_id(id))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Guild::from))
    }

    /// All guilds, by id.
    pub async fn guilds(&self) -> Result<Vec<Guild>, StoreError> {
        let rows: Vec<GuildRow> = on_db!(&self.db, pool => {
            sqlx::query_as("SELECT id, name, owner_id, plan, created_at FROM guilds ORDER BY id")
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(Guild::from).collect())
    }

    /// Records an installed build. Recording the same (feature, version, sha256) again
    /// is a no-op; the same (feature, version) with a different sha256 is refused with
    /// [`StoreError::InvalidArgument`], because a version names exactly one build.
    pub async fn insert_feature_version(&self, v: &FeatureVersion) -> Result<(), StoreError> {
        let size_bytes = i64::try_from(v.size_bytes).map_err(|_| {
            StoreError::InvalidArgument(format!("size_bytes {} is too large", v.size_bytes))
        })?;
        let existing: Option<String> = on_db!(&self.db, pool => {
            let inserted = sqlx::query(
                "INSERT INTO feature_versions
                     (feature_id, version, sha256, manifest, size_bytes, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (feature_id, version) DO NOTHING",
            )
            .bind(&v.feature_id)
            .bind(&v.version)
            .bind(&v.sha256)
            .bind(Json(&v.manifest))
            .bind(size_bytes)
            .bind(ts(v.created_at))
            .execute(pool)
            .await?
            .rows_affected();
            if inserted == 1 {
                None
            } else {
                sqlx::query_scalar(
                    "SELECT sha256 FROM feature_versions WHERE feature_id = $1 AND version = $2",
                )
                .bind(&v.feature_id)
                .bind(&v.version)
                .fetch_optional(pool)
                .await?
            }
        });
        match existing {
            Some(sha256) if sha256 != v.sha256 => Err(StoreError::InvalidArgument(format!(
                "feature {} version {} is already installed with sha256 {sha256}; \
                 a different build ({}) needs a new version",
                v.feature_id, v.version, v.sha256
            ))),
            _ => Ok(()),
        }
    }

    pub async fn feature_version(
        &self,
        feature_id: &str,
        version: &str,
    ) -> Result<Option<FeatureVersion>, StoreError> {
        let row: Option<FeatureVersionRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT feature_id, version, sha256, manifest, size_bytes, created_at
                 FROM feature_versions
                 WHERE feature_id = $1 AND version = $2",
            )
            .bind(feature_id)
            .bind(version)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(FeatureVersion::from))
    }

    /// All installed builds, by feature, then oldest first.
    pub async fn feature_versions(&self) -> Result<Vec<FeatureVersion>, StoreError> {
        let rows: Vec<FeatureVersionRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT feature_id, version, sha256, manifest, size_bytes, created_at
                 FROM feature_versions
                 ORDER BY feature_id, created_at, version",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(FeatureVersion::from).collect())
    }

    /// Inserts or replaces the whole (guild, feature) row, breaker fields included. The
    /// guild and the feature version must exist (foreign keys).
    pub async fn upsert_guild_feature(&self, gf: &GuildFeature) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO guild_features
                     (guild_id, feature_id, version, enabled, grants, config,
                      breaker_strikes, breaker_open_until, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (guild_id, feature_id) DO UPDATE
                 SET version = excluded.version,
                     enabled = excluded.enabled,
                     grants = excluded.grants,
                     config = excluded.config,
                     breaker_strikes = excluded.breaker_strikes,
                     breaker_open_until = excluded.breaker_open_until,
                     updated_at = excluded.updated_at",
            )
            .bind(db_id(gf.guild_id))
            .bind(&gf.feature_id)
            .bind(&gf.version)
            .bind(gf.enabled)
            .bind(Json(&gf.grants))
            .bind(gf.config.as_ref().map(Json))
            .bind(i64::from(gf.breaker_strikes))
            .bind(gf.breaker_open_until.map(ts))
            .bind(ts(gf.updated_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn guild_feature(
        &self,
        guild_id: u64,
        feature_id: &str,
    ) -> Result<Option<GuildFeature>, StoreError> {
        let row: Option<GuildFeatureRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT guild_id, feature_id, version, enabled, grants, config,
                        breaker_strikes, breaker_open_until, updated_at
                 FROM guild_features
                 WHERE guild_id = $1 AND feature_id = $2",
            )
                .bind(db_id(guild_id))
                .bind(feature_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(GuildFeature::from))
    }

    /// The features set up in a guild, by feature id.
    pub async fn guild_features(&self, guild_id: u64) -> Result<Vec<GuildFeature>, StoreError> {
        let rows: Vec<GuildFeatureRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT guild_id, feature_id, version, enabled, grants, config,
                        breaker_strikes, breaker_open_until, updated_at
                 FROM guild_features
                 WHERE guild_id = $1
                 ORDER BY feature_id",
            )
                .bind(db_id(guild_id))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(GuildFeature::from).collect())
    }

    /// Records the circuit breaker's state for a (guild, feature). Leaves `updated_at`
    /// alone (it tracks admin changes, not runtime state). The row must exist.
    pub async fn set_breaker(
        &self,
        guild_id: u64,
        feature_id: &str,
        strikes: u32,
        open_until: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let updated = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE guild_features
                 SET breaker_strikes = $3, breaker_open_until = $4
                 WHERE guild_id = $1 AND feature_id = $2",
            )
            .bind(db_id(guild_id))
            .bind(feature_id)
            .bind(i64::from(strikes))
            .bind(open_until.map(ts))
            .execute(pool)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::InvalidArgument(format!(
                "feature {feature_id} is not set up in guild {guild_id}"
            )));
        }
        Ok(())
    }
}
