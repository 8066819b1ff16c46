//! Guilds, the feature catalogue and its installed versions, and the per-(guild, feature)
//! state.

use crate::grants::Approval;
use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{
    Feature, FeatureVersion, Guild, GuildFeature, GuildService, Store, StoreError, api_id,
    check_name, count, db_id, is_foreign_key_violation, now, ts,
};

#[derive(sqlx::FromRow)]
pub(super) struct GuildRow {
    id: i64,
    name: String,
    owner_id: i64,
    plan: String,
    created_at: DateTime<Utc>,
    tenant_id: Option<String>,
    left_at: Option<DateTime<Utc>>,
    service: String,
}

impl From<GuildRow> for Guild {
    fn from(r: GuildRow) -> Guild {
        Guild {
            id: api_id(r.id),
            name: r.name,
            owner_id: api_id(r.owner_id),
            plan: r.plan,
            created_at: r.created_at,
            tenant_id: r.tenant_id,
            left_at: r.left_at,
            service: GuildService::parse(&r.service),
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
    published: bool,
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
            published: r.published,
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
    previous_version: Option<String>,
    revision: i64,
}

#[derive(sqlx::FromRow)]
struct FeatureRow {
    id: String,
    name: String,
    description: String,
    builtin: bool,
    publisher: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<FeatureRow> for Feature {
    fn from(r: FeatureRow) -> Feature {
        Feature {
            id: r.id,
            name: r.name,
            description: r.description,
            builtin: r.builtin,
            publisher: r.publisher,
            created_at: r.created_at,
        }
    }
}

/// The stored approval, with one policy for all readers: one that cannot be
/// read approves nothing (the always-granted capabilities stay), and says so.
fn approval(feature_id: &str, stored: serde_json::Value) -> Approval {
    serde_json::from_value(stored).unwrap_or_else(|error| {
        tracing::error!(feature = feature_id, %error, "an unreadable approval approves nothing");
        Approval::default()
    })
}

impl From<GuildFeatureRow> for GuildFeature {
    fn from(r: GuildFeatureRow) -> GuildFeature {
        let grants = approval(&r.feature_id, r.grants.0);
        GuildFeature {
            guild_id: api_id(r.guild_id),
            feature_id: r.feature_id,
            version: r.version,
            enabled: r.enabled,
            grants,
            config: r.config.map(|c| c.0),
            breaker_strikes: u32::try_from(r.breaker_strikes.max(0)).unwrap_or(u32::MAX),
            breaker_open_until: r.breaker_open_until,
            updated_at: r.updated_at,
            previous_version: r.previous_version,
            revision: count(r.revision),
        }
    }
}

impl Store {
    /// Inserts a guild or updates its name, owner and plan. `created_at` and `left_at`
    /// are kept from the first insert (use [`Store::mark_guild_left`] to change
    /// `left_at`); `tenant_id` changes only when `Some`, so re-announcing a guild with
    /// [`Guild::new`] never unlinks it (use [`Store::set_guild_tenant`]). An unknown
    /// tenant is refused with [`StoreError::InvalidArgument`].
    /// Records that the bot is in a guild: a new row on first sight, otherwise
    /// only its name and that it is back (`left_at` cleared). Owner and tenant
    /// are left to [`Store::change_guild_owner`], so a gateway event handled
    /// concurrently with a transfer can never write back the old ones.
    pub async fn record_guild_seen(
        &self,
        guild_id: u64,
        name: &str,
        owner_id: u64,
    ) -> Result<(), StoreError> {
        let new = Guild::new(guild_id, name, owner_id);
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO guilds (id, name, owner_id, plan, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, left_at = NULL",
            )
            .bind(db_id(guild_id))
            .bind(name)
            .bind(db_id(owner_id))
            .bind(&new.plan)
            .bind(ts(new.created_at))
            .execute(pool)
            .await?;
        });
        self.control.changed(guild_id);
        Ok(())
    }

    pub async fn upsert_guild(&self, g: &Guild) -> Result<(), StoreError> {
        let result = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO guilds (id, name, owner_id, plan, created_at, tenant_id, left_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE
                 SET name = excluded.name, owner_id = excluded.owner_id, plan = excluded.plan,
                     tenant_id = COALESCE(excluded.tenant_id, guilds.tenant_id)",
            )
            .bind(db_id(g.id))
            .bind(&g.name)
            .bind(db_id(g.owner_id))
            .bind(&g.plan)
            .bind(ts(g.created_at))
            .bind(g.tenant_id.as_deref())
            .bind(g.left_at.map(ts))
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        });
        self.control.changed(g.id);
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::InvalidArgument(format!(
                "guild {}: no tenant {}",
                g.id,
                g.tenant_id.as_deref().unwrap_or_default()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn guild(&self, id: u64) -> Result<Option<Guild>, StoreError> {
        let row: Option<GuildRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                select_guilds!("WHERE id = $1"),
            )
            .bind(db_id(id))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Guild::from))
    }

    /// All guilds, by id, including those the bot left.
    pub async fn guilds(&self) -> Result<Vec<Guild>, StoreError> {
        let rows: Vec<GuildRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                select_guilds!("ORDER BY id"),
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Guild::from).collect())
    }

    /// Records an installed build. Recording the same (feature, version, sha256) again
    /// is a no-op (`published` included); the same (feature, version) with a different
    /// sha256 is refused with [`StoreError::InvalidArgument`], because a version names
    /// exactly one build.
    ///
    /// A feature without a catalogue entry gets one (not builtin, no publisher), named
    /// and described by the manifest's `name` and `description` (the id and `""` if
    /// missing); an existing entry is left alone.
    pub async fn insert_feature_version(&self, v: &FeatureVersion) -> Result<(), StoreError> {
        let size_bytes = i64::try_from(v.size_bytes).map_err(|_| {
            StoreError::InvalidArgument(format!("size_bytes {} is too large", v.size_bytes))
        })?;
        let manifest_text = |field: &str| v.manifest.get(field).and_then(|f| f.as_str());
        let name = manifest_text("name").unwrap_or(&v.feature_id);
        let description = manifest_text("description").unwrap_or_default();
        let existing: Option<String> = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO features (id, name, description, builtin, publisher, created_at)
                 VALUES ($1, $2, $3, FALSE, NULL, $4)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&v.feature_id)
            .bind(name)
            .bind(description)
            .bind(ts(v.created_at))
            .execute(pool)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO feature_versions
                     (feature_id, version, sha256, manifest, size_bytes, created_at, published)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (feature_id, version) DO NOTHING",
            )
            .bind(&v.feature_id)
            .bind(&v.version)
            .bind(&v.sha256)
            .bind(Json(&v.manifest))
            .bind(size_bytes)
            .bind(ts(v.created_at))
            .bind(v.published)
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

    /// Keeps an installed component's bytes under their sha256 (computed by the
    /// caller), so every process sharing the database can load it; writing the same
    /// sha256 again is a no-op. The size is bounded by the install limit
    /// (`max_component_bytes`, 64 MiB by default), well within one value on either
    /// backend (1 GB).
    pub async fn put_component_blob(&self, sha256: &str, wasm: &[u8]) -> Result<(), StoreError> {
        let size_bytes = i64::try_from(wasm.len()).map_err(|_| {
            StoreError::InvalidArgument(format!("a component of {} bytes", wasm.len()))
        })?;
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO component_blobs (sha256, wasm, size_bytes, created_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256)
            .bind(wasm)
            .bind(size_bytes)
            .bind(now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The stored bytes of component `sha256`, as written: the caller checks them
    /// against the sha256 before trusting them.
    pub async fn component_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let wasm: Option<Vec<u8>> = on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT wasm FROM component_blobs WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(pool)
                .await?
        });
        Ok(wasm)
    }

    /// The sha256 of every installed version whose bytes the database lacks
    /// (installed before migration 0016 kept them in one host's cache only).
    pub async fn unshared_components(&self) -> Result<Vec<String>, StoreError> {
        let shas: Vec<String> = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT DISTINCT v.sha256 FROM feature_versions AS v
                 WHERE NOT EXISTS (SELECT 1 FROM component_blobs AS b WHERE b.sha256 = v.sha256)
                 ORDER BY v.sha256",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(shas)
    }

    pub async fn feature_version(
        &self,
        feature_id: &str,
        version: &str,
    ) -> Result<Option<FeatureVersion>, StoreError> {
        let row: Option<FeatureVersionRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT feature_id, version, sha256, manifest, size_bytes, created_at, published
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

    /// All installed builds, published or not, by feature, then oldest first.
    pub async fn feature_versions(&self) -> Result<Vec<FeatureVersion>, StoreError> {
        let rows: Vec<FeatureVersionRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT feature_id, version, sha256, manifest, size_bytes, created_at, published
                 FROM feature_versions
                 ORDER BY feature_id, created_at, version",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(FeatureVersion::from).collect())
    }

    /// A feature's builds, published or not, newest first (by `created_at`, then
    /// version, descending).
    pub async fn versions_of(&self, feature_id: &str) -> Result<Vec<FeatureVersion>, StoreError> {
        let rows: Vec<FeatureVersionRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT feature_id, version, sha256, manifest, size_bytes, created_at, published
                 FROM feature_versions
                 WHERE feature_id = $1
                 ORDER BY created_at DESC, version DESC",
            )
            .bind(feature_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(FeatureVersion::from).collect())
    }

    /// Publishes or unpublishes a build. Returns false if there is no such build.
    pub async fn set_version_published(
        &self,
        feature_id: &str,
        version: &str,
        published: bool,
    ) -> Result<bool, StoreError> {
        let updated = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE feature_versions SET published = $3
                 WHERE feature_id = $1 AND version = $2",
            )
            .bind(feature_id)
            .bind(version)
            .bind(published)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Claims a feature id for `f.publisher` in one statement: inserts the
    /// catalogue entry, or updates its name and description when the id is
    /// unclaimed or already the publisher's. Returns false, changing nothing,
    /// when another publisher owns it (see [`Feature::owner`]), so two
    /// publishers racing for a new id cannot both get it.
    pub async fn claim_feature(&self, f: &Feature) -> Result<bool, StoreError> {
        check_name("feature id", &f.id)?;
        let claimed = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO features (id, name, description, builtin, publisher, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE
                 SET name = excluded.name, description = excluded.description,
                     builtin = (features.builtin OR excluded.builtin),
                     publisher = excluded.publisher
                 WHERE COALESCE(features.publisher,
                                CASE WHEN features.builtin THEN $7 END,
                                excluded.publisher) = excluded.publisher",
            )
            .bind(&f.id)
            .bind(&f.name)
            .bind(&f.description)
            .bind(f.builtin)
            .bind(f.publisher.as_deref())
            .bind(ts(f.created_at))
            .bind(super::PLATFORM_PUBLISHER)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(claimed == 1)
    }

    pub async fn feature(&self, id: &str) -> Result<Option<Feature>, StoreError> {
        let row: Option<FeatureRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, name, description, builtin, publisher, created_at
                 FROM features WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Feature::from))
    }

    /// The whole catalogue, by id (byte-wise).
    pub async fn features(&self) -> Result<Vec<Feature>, StoreError> {
        let rows: Vec<FeatureRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, name, description, builtin, publisher, created_at
                 FROM features ORDER BY id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Feature::from).collect())
    }

    /// Inserts or replaces the whole (guild, feature) row, breaker fields and
    /// `previous_version` included (the caller decides what the previous version is),
    /// and bumps its revision (`gf.revision` is not read). The guild and the feature
    /// version must exist (foreign keys). Overwrites whatever changed since `gf` was
    /// read: for seeding rows; the marketplace writes with the targeted methods below.
    pub async fn upsert_guild_feature(&self, gf: &GuildFeature) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO guild_features
                     (guild_id, feature_id, version, enabled, grants, config,
                      breaker_strikes, breaker_open_until, updated_at, previous_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (guild_id, feature_id) DO UPDATE
                 SET version = excluded.version,
                     enabled = excluded.enabled,
                     grants = excluded.grants,
                     config = excluded.config,
                     breaker_strikes = excluded.breaker_strikes,
                     breaker_open_until = excluded.breaker_open_until,
                     updated_at = excluded.updated_at,
                     previous_version = excluded.previous_version,
                     revision = guild_features.revision + 1",
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
            .bind(gf.previous_version.as_deref())
            .execute(pool)
            .await?;
        });
        self.control.changed(gf.guild_id);
        Ok(())
    }

    /// Enables a feature in a guild at `version` with `grants`, closing its breaker;
    /// creates the row (no configuration, no previous version) if there is none,
    /// else keeps its configuration and previous version. Returns the row as stored.
    pub async fn enable_guild_feature(
        &self,
        guild_id: u64,
        feature_id: &str,
        version: &str,
        grants: &Approval,
    ) -> Result<GuildFeature, StoreError> {
        let row: GuildFeatureRow = on_db!(&self.db, pool => {
            sqlx::query_as(
                "INSERT INTO guild_features
                     (guild_id, feature_id, version, enabled, grants, config,
                      breaker_strikes, breaker_open_until, updated_at, previous_version)
                 VALUES ($1, $2, $3, TRUE, $4, NULL, 0, NULL, $5, NULL)
                 ON CONFLICT (guild_id, feature_id) DO UPDATE
                 SET version = excluded.version,
                     enabled = TRUE,
                     grants = excluded.grants,
                     breaker_strikes = 0,
                     breaker_open_until = NULL,
                     updated_at = excluded.updated_at,
                     revision = guild_features.revision + 1
                 RETURNING guild_id, feature_id, version, enabled, grants, config,
                           breaker_strikes, breaker_open_until, updated_at,
                           previous_version, revision",
            )
            .bind(db_id(guild_id))
            .bind(feature_id)
            .bind(version)
            .bind(Json(grants))
            .bind(now())
            .fetch_one(pool)
            .await?
        });
        self.control.changed(guild_id);
        Ok(GuildFeature::from(row))
    }

    /// Removes a feature's row from a guild (what undoes a first enable whose
    /// `migrate` failed, so the next enable migrates again). Returns whether
    /// there was one. The feature's storage is not touched.
    pub async fn delete_guild_feature(
        &self,
        guild_id: u64,
        feature_id: &str,
    ) -> Result<bool, StoreError> {
        let deleted = on_db!(&self.db, pool => {
            sqlx::query("DELETE FROM guild_features WHERE guild_id = $1 AND feature_id = $2")
                .bind(db_id(guild_id))
                .bind(feature_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        self.control.changed(guild_id);
        Ok(deleted > 0)
    }

    /// Turns a feature on or off in a guild, touching nothing else. Returns the
    /// row as stored, or `None` if the feature is not set up there.
    pub async fn set_guild_feature_enabled(
        &self,
        guild_id: u64,
        feature_id: &str,
        enabled: bool,
    ) -> Result<Option<GuildFeature>, StoreError> {
        let row: Option<GuildFeatureRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "UPDATE guild_features
                 SET enabled = $3, updated_at = $4, revision = revision + 1
                 WHERE guild_id = $1 AND feature_id = $2
                 RETURNING guild_id, feature_id, version, enabled, grants, config,
                           breaker_strikes, breaker_open_until, updated_at,
                           previous_version, revision",
            )
            .bind(db_id(guild_id))
            .bind(feature_id)
            .bind(enabled)
            .bind(now())
            .fetch_optional(pool)
            .await?
        });
        self.control.changed(guild_id);
        Ok(row.map(GuildFeature::from))
    }

    /// Writes `gf`'s version, grants, configuration and previous version if the
    /// row's revision is still `gf.revision` (compare-and-set), bumping it, and
    /// returns the row as stored. `None`, and nothing written, if another change
    /// landed since `gf` was read, or the row is gone. `enabled` and the breaker
    /// are never written here.
    pub async fn revise_guild_feature(
        &self,
        gf: &GuildFeature,
    ) -> Result<Option<GuildFeature>, StoreError> {
        let revision = i64::try_from(gf.revision)
            .map_err(|_| StoreError::InvalidArgument(format!("revision {}", gf.revision)))?;
        let row: Option<GuildFeatureRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "UPDATE guild_features
                 SET version = $3, grants = $4, config = $5, previous_version = $6,
                     updated_at = $7, revision = revision + 1
                 WHERE guild_id = $1 AND feature_id = $2 AND revision = $8
                 RETURNING guild_id, feature_id, version, enabled, grants, config,
                           breaker_strikes, breaker_open_until, updated_at,
                           previous_version, revision",
            )
            .bind(db_id(gf.guild_id))
            .bind(&gf.feature_id)
            .bind(&gf.version)
            .bind(Json(&gf.grants))
            .bind(gf.config.as_ref().map(Json))
            .bind(gf.previous_version.as_deref())
            .bind(now())
            .bind(revision)
            .fetch_optional(pool)
            .await?
        });
        self.control.changed(gf.guild_id);
        Ok(row.map(GuildFeature::from))
    }

    pub async fn guild_feature(
        &self,
        guild_id: u64,
        feature_id: &str,
    ) -> Result<Option<GuildFeature>, StoreError> {
        let row: Option<GuildFeatureRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT guild_id, feature_id, version, enabled, grants, config,
                        breaker_strikes, breaker_open_until, updated_at, previous_version,
                        revision
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
                        breaker_strikes, breaker_open_until, updated_at, previous_version,
                        revision
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
        self.control.changed(guild_id);
        if updated == 0 {
            return Err(StoreError::InvalidArgument(format!(
                "feature {feature_id} is not set up in guild {guild_id}"
            )));
        }
        Ok(())
    }

    /// Adds one strike to the (guild, feature)'s breaker in one statement (so
    /// concurrent faults are all counted) and returns the new count.
    pub async fn add_breaker_strike(
        &self,
        guild_id: u64,
        feature_id: &str,
    ) -> Result<u32, StoreError> {
        let strikes: Option<i64> = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "UPDATE guild_features SET breaker_strikes = breaker_strikes + 1
                 WHERE guild_id = $1 AND feature_id = $2
                 RETURNING breaker_strikes",
            )
            .bind(db_id(guild_id))
            .bind(feature_id)
            .fetch_optional(pool)
            .await?
        });
        self.control.changed(guild_id);
        let strikes = strikes.ok_or_else(|| {
            StoreError::InvalidArgument(format!(
                "feature {feature_id} is not set up in guild {guild_id}"
            ))
        })?;
        Ok(u32::try_from(strikes).unwrap_or(u32::MAX))
    }
}
