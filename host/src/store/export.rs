//! Every row of one tenant (or one guild), read for an export bundle and
//! written back by an import (issue 15; ADR 0018).
//!
//! Rows are carried as they are stored, column for column, so an export of an
//! import equals the export it came from: times to the microsecond, JSON by
//! value, bytes exact. The one exception is `audit_log.id`, an identity the
//! target assigns: entries are carried in id order and inserted in that order.
//!
//! An import writes everything in one transaction, after checking in it that
//! neither the tenant (for a tenant bundle) nor any guild exists yet: a refusal
//! or a failure leaves the target as it was.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Postgres, Sqlite, Transaction};

use super::{Db, Store, StoreError, api_id, db_id};

/// What an export holds: a whole tenant, or one of its guilds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportScope {
    Tenant(String),
    Guild { tenant_id: String, guild_id: u64 },
}

impl ExportScope {
    pub fn tenant_id(&self) -> &str {
        match self {
            ExportScope::Tenant(t) | ExportScope::Guild { tenant_id: t, .. } => t,
        }
    }
}

/// Serialises bytes as base64 in the bundle's JSON.
pub(crate) mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// One open import transaction, on whichever backend is active.
enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// The value a scoped `SELECT` filters on.
enum Key<'a> {
    Id(i64),
    Text(&'a str),
}

/// Declares a table's row type with the queries that read (by one filter
/// column) and insert it. The column list is written once, here.
macro_rules! table {
    ($(#[$meta:meta])* $name:ident = $table:literal order $order:literal {
        $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty),*
        }

        impl $name {
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];

            async fn fetch(db: &Db, filter: &str, key: &Key<'_>) -> Result<Vec<Self>, sqlx::Error> {
                let sql = format!(
                    "SELECT {} FROM {} WHERE {filter} ORDER BY {}",
                    Self::COLUMNS.join(", "),
                    $table,
                    $order
                );
                on_db!(db, pool => {
                    let query = sqlx::query_as(AssertSqlSafe(sql));
                    let query = match key {
                        Key::Id(id) => query.bind(*id),
                        Key::Text(text) => query.bind(text.to_string()),
                    };
                    query.fetch_all(pool).await
                })
            }

            /// `suffix` follows the VALUES list (an `ON CONFLICT` clause).
            async fn insert(&self, tx: &mut Tx, suffix: &str) -> Result<u64, sqlx::Error> {
                let placeholders: Vec<String> =
                    (1..=Self::COLUMNS.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES ({}) {suffix}",
                    $table,
                    Self::COLUMNS.join(", "),
                    placeholders.join(", ")
                );
                let done = match tx {
                    Tx::Sqlite(tx) => sqlx::query(AssertSqlSafe(sql))
                        $(.bind(&self.$field))*
                        .execute(&mut **tx)
                        .await?
                        .rows_affected(),
                    Tx::Postgres(tx) => sqlx::query(AssertSqlSafe(sql))
                        $(.bind(&self.$field))*
                        .execute(&mut **tx)
                        .await?
                        .rows_affected(),
                };
                Ok(done)
            }
        }
    };
}

table!(TenantRow = "tenants" order "id" {
    id: String,
    owner_discord_id: i64,
    name: Option<String>,
    plan: String,
    created_at: DateTime<Utc>,
});

table!(GuildRow = "guilds" order "id" {
    id: i64,
    name: String,
    owner_id: i64,
    plan: String,
    created_at: DateTime<Utc>,
    tenant_id: Option<String>,
    left_at: Option<DateTime<Utc>>,
});

table!(GuildSettingsRow = "guild_settings" order "guild_id" {
    guild_id: i64,
    prefix: String,
    use_slash_commands: bool,
    allow_prefix_fallback: bool,
    global_cooldown_seconds: i32,
    updated_at: DateTime<Utc>,
});

table!(RolePermissionRow = "role_permissions" order "guild_id, role_id, command_group" {
    guild_id: i64,
    role_id: i64,
    command_group: String,
});

table!(CommandCooldownRow = "command_cooldowns" order "guild_id, command" {
    guild_id: i64,
    command: String,
    seconds: i32,
});

table!(FeatureRow = "features" order "id" {
    id: String,
    name: String,
    description: String,
    builtin: bool,
    publisher: Option<String>,
    created_at: DateTime<Utc>,
});

table!(FeatureVersionRow = "feature_versions" order "feature_id, version" {
    feature_id: String,
    version: String,
    sha256: String,
    manifest: Json<serde_json::Value>,
    size_bytes: i64,
    created_at: DateTime<Utc>,
    published: bool,
});

table!(GuildFeatureRow = "guild_features" order "guild_id, feature_id" {
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
    guild_commands: Option<Json<serde_json::Value>>,
});

table!(KvRow = "feature_kv" order "guild_id, feature_id, key" {
    guild_id: i64,
    feature_id: String,
    key: String,
    value: String,
});

table!(ScoreRow = "feature_scores" order "guild_id, feature_id, board, subject" {
    guild_id: i64,
    feature_id: String,
    board: String,
    subject: i64,
    score: i64,
});

table!(StorageUsageRow = "feature_storage_usage" order "guild_id, feature_id" {
    guild_id: i64,
    feature_id: String,
    bytes: i64,
    rows: i64,
});

table!(FileRow = "feature_files" order "guild_id, feature_id, name" {
    guild_id: i64,
    feature_id: String,
    name: String,
    content_type: String,
    size: i64,
    #[serde(with = "b64")]
    data: Vec<u8>,
    created_at: DateTime<Utc>,
});

table!(FilesUsageRow = "feature_files_usage" order "guild_id, feature_id" {
    guild_id: i64,
    feature_id: String,
    bytes: i64,
    files: i64,
});

table!(
    /// An audit entry without its id (the target assigns one; order is kept).
    AuditRow = "audit_log" order "id" {
    guild_id: Option<i64>,
    actor: String,
    action: String,
    feature_id: Option<String>,
    details: Json<serde_json::Value>,
    created_at: DateTime<Utc>,
});

table!(JobRow = "scheduled_jobs" order "id" {
    id: String,
    guild_id: i64,
    feature_id: String,
    name: String,
    payload: String,
    run_at: DateTime<Utc>,
    status: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    attempts: i32,
    last_error: Option<String>,
});

table!(UsageRow = "usage_counters" order "guild_id, day" {
    guild_id: i64,
    day: NaiveDate,
    events: i64,
    commands: i64,
    ai_tokens: i64,
});

table!(BillingRow = "billing_accounts" order "tenant_id" {
    tenant_id: String,
    plan: String,
    status: String,
    trial_started_at: Option<DateTime<Utc>>,
    trial_ends_at: Option<DateTime<Utc>>,
    current_period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
    grace_until: Option<DateTime<Utc>>,
    stripe_customer_id: Option<String>,
    stripe_subscription_id: Option<String>,
    stripe_event_at: Option<i64>,
    guild_cap: Option<i32>,
    updated_at: DateTime<Utc>,
});

table!(LicenseRow = "licenses" order "id" {
    id: String,
    tenant_id: String,
    plan: String,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    revoked_reason: Option<String>,
    replaced_by: Option<String>,
});

table!(IncidentRow = "incidents" order "id" {
    id: String,
    tenant_id: String,
    guild_id: Option<i64>,
    severity: String,
    title: String,
    description: String,
    status: String,
    created_by: String,
    created_at: DateTime<Utc>,
});

/// Every row of an export, table by table, each in its key's order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportRows {
    pub tenants: Vec<TenantRow>,
    pub guilds: Vec<GuildRow>,
    pub guild_settings: Vec<GuildSettingsRow>,
    pub role_permissions: Vec<RolePermissionRow>,
    pub command_cooldowns: Vec<CommandCooldownRow>,
    pub features: Vec<FeatureRow>,
    pub feature_versions: Vec<FeatureVersionRow>,
    pub guild_features: Vec<GuildFeatureRow>,
    pub feature_kv: Vec<KvRow>,
    pub feature_scores: Vec<ScoreRow>,
    pub feature_storage_usage: Vec<StorageUsageRow>,
    pub feature_files: Vec<FileRow>,
    pub feature_files_usage: Vec<FilesUsageRow>,
    pub audit_log: Vec<AuditRow>,
    pub scheduled_jobs: Vec<JobRow>,
    pub usage_counters: Vec<UsageRow>,
    pub billing_accounts: Vec<BillingRow>,
    pub licenses: Vec<LicenseRow>,
    pub incidents: Vec<IncidentRow>,
}

impl ExportRows {
    /// Rows per table, for the bundle's header and the job's progress.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let n = |v: usize| v as u64;
        BTreeMap::from([
            ("tenants".into(), n(self.tenants.len())),
            ("guilds".into(), n(self.guilds.len())),
            ("guild_settings".into(), n(self.guild_settings.len())),
            ("role_permissions".into(), n(self.role_permissions.len())),
            ("command_cooldowns".into(), n(self.command_cooldowns.len())),
            ("features".into(), n(self.features.len())),
            ("feature_versions".into(), n(self.feature_versions.len())),
            ("guild_features".into(), n(self.guild_features.len())),
            ("feature_kv".into(), n(self.feature_kv.len())),
            ("feature_scores".into(), n(self.feature_scores.len())),
            (
                "feature_storage_usage".into(),
                n(self.feature_storage_usage.len()),
            ),
            ("feature_files".into(), n(self.feature_files.len())),
            (
                "feature_files_usage".into(),
                n(self.feature_files_usage.len()),
            ),
            ("audit_log".into(), n(self.audit_log.len())),
            ("scheduled_jobs".into(), n(self.scheduled_jobs.len())),
            ("usage_counters".into(), n(self.usage_counters.len())),
            ("billing_accounts".into(), n(self.billing_accounts.len())),
            ("licenses".into(), n(self.licenses.len())),
            ("incidents".into(), n(self.incidents.len())),
        ])
    }

    /// The guild ids the rows hold, as snowflakes.
    pub fn guild_ids(&self) -> Vec<u64> {
        self.guilds.iter().map(|g| api_id(g.id)).collect()
    }
}

/// Why an import was refused; the target is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Something in the bundle already exists here; the message names it and
    /// what to do.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> ImportError {
        ImportError::Store(e.into())
    }
}

impl Store {
    /// Every row of `scope`, or `None` when the tenant (or the tenant's guild)
    /// does not exist. `progress(guilds done, guilds)` is told after each guild.
    pub async fn export_rows(
        &self,
        scope: &ExportScope,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Option<ExportRows>, StoreError> {
        let tenant_id = scope.tenant_id();
        let mut rows = ExportRows {
            tenants: TenantRow::fetch(&self.db, "id = $1", &Key::Text(tenant_id)).await?,
            ..ExportRows::default()
        };
        if rows.tenants.is_empty() {
            return Ok(None);
        }
        rows.guilds = GuildRow::fetch(&self.db, "tenant_id = $1", &Key::Text(tenant_id)).await?;
        if let ExportScope::Guild { guild_id, .. } = scope {
            rows.guilds.retain(|g| g.id == db_id(*guild_id));
            if rows.guilds.is_empty() {
                return Ok(None);
            }
        }
        let db = &self.db;
        let ids: Vec<i64> = rows.guilds.iter().map(|g| g.id).collect();
        for (done, id) in ids.iter().enumerate() {
            let guild = Key::Id(*id);
            let by_guild = "guild_id = $1";
            rows.guild_settings
                .extend(GuildSettingsRow::fetch(db, by_guild, &guild).await?);
            rows.role_permissions
                .extend(RolePermissionRow::fetch(db, by_guild, &guild).await?);
            rows.command_cooldowns
                .extend(CommandCooldownRow::fetch(db, by_guild, &guild).await?);
            rows.guild_features
                .extend(GuildFeatureRow::fetch(db, by_guild, &guild).await?);
            rows.feature_kv
                .extend(KvRow::fetch(db, by_guild, &guild).await?);
            rows.feature_scores
                .extend(ScoreRow::fetch(db, by_guild, &guild).await?);
            rows.feature_storage_usage
                .extend(StorageUsageRow::fetch(db, by_guild, &guild).await?);
            rows.feature_files
                .extend(FileRow::fetch(db, by_guild, &guild).await?);
            rows.feature_files_usage
                .extend(FilesUsageRow::fetch(db, by_guild, &guild).await?);
            rows.audit_log
                .extend(AuditRow::fetch(db, by_guild, &guild).await?);
            rows.scheduled_jobs
                .extend(JobRow::fetch(db, by_guild, &guild).await?);
            rows.usage_counters
                .extend(UsageRow::fetch(db, by_guild, &guild).await?);
            if matches!(scope, ExportScope::Guild { .. }) {
                rows.incidents
                    .extend(IncidentRow::fetch(db, by_guild, &guild).await?);
            }
            progress(done as u64 + 1, ids.len() as u64);
        }
        if let ExportScope::Tenant(_) = scope {
            let by_tenant = Key::Text(tenant_id);
            rows.billing_accounts = BillingRow::fetch(db, "tenant_id = $1", &by_tenant).await?;
            rows.licenses = LicenseRow::fetch(db, "tenant_id = $1", &by_tenant).await?;
            rows.incidents = IncidentRow::fetch(db, "tenant_id = $1", &by_tenant).await?;
        }
        // The builds the guilds run or may roll back to, and their catalogue entries.
        let mut versions: Vec<(&str, &str)> = Vec::new();
        for gf in &rows.guild_features {
            versions.push((&gf.feature_id, &gf.version));
            if let Some(previous) = &gf.previous_version {
                versions.push((&gf.feature_id, previous));
            }
        }
        versions.sort_unstable();
        versions.dedup();
        let mut feature_versions = Vec::new();
        let mut ids: Vec<&str> = versions.iter().map(|(id, _)| *id).collect();
        ids.dedup();
        for id in ids {
            let mut builds =
                FeatureVersionRow::fetch(db, "feature_id = $1", &Key::Text(id)).await?;
            builds.retain(|b| versions.contains(&(b.feature_id.as_str(), b.version.as_str())));
            feature_versions.extend(builds);
        }
        let mut features = Vec::new();
        let mut ids: Vec<&str> = feature_versions
            .iter()
            .map(|v| v.feature_id.as_str())
            .collect();
        ids.dedup();
        for id in ids {
            features.extend(FeatureRow::fetch(db, "id = $1", &Key::Text(id)).await?);
        }
        rows.features = features;
        rows.feature_versions = feature_versions;
        Ok(Some(rows))
    }

    /// Writes `rows` in one transaction. Refused, writing nothing, when a
    /// guild already exists, when `whole_tenant` and the tenant exists, or
    /// when a feature version exists with other contents. For a guild bundle
    /// an existing tenant is kept as it is and the guild joins it.
    pub async fn import_rows(
        &self,
        rows: &ExportRows,
        whole_tenant: bool,
    ) -> Result<(), ImportError> {
        let mut tx = match &self.db {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        };
        for tenant in &rows.tenants {
            let exists: Option<(String,)> = match &mut tx {
                Tx::Sqlite(tx) => {
                    sqlx::query_as("SELECT id FROM tenants WHERE id = $1")
                        .bind(&tenant.id)
                        .fetch_optional(&mut **tx)
                        .await?
                }
                Tx::Postgres(tx) => {
                    sqlx::query_as("SELECT id FROM tenants WHERE id = $1")
                        .bind(&tenant.id)
                        .fetch_optional(&mut **tx)
                        .await?
                }
            };
            if exists.is_some() && whole_tenant {
                return Err(ImportError::Conflict(format!(
                    "tenant {} already exists in this installation; import the bundle into one without it (or export and delete the tenant here first)",
                    tenant.id
                )));
            }
            if exists.is_none() {
                tenant.insert(&mut tx, "").await?;
            }
        }
        let mut existing = Vec::new();
        for guild in &rows.guilds {
            let found: Option<(i64,)> = match &mut tx {
                Tx::Sqlite(tx) => {
                    sqlx::query_as("SELECT id FROM guilds WHERE id = $1")
                        .bind(guild.id)
                        .fetch_optional(&mut **tx)
                        .await?
                }
                Tx::Postgres(tx) => {
                    sqlx::query_as("SELECT id FROM guilds WHERE id = $1")
                        .bind(guild.id)
                        .fetch_optional(&mut **tx)
                        .await?
                }
            };
            if found.is_some() {
                existing.push(api_id(guild.id).to_string());
            }
        }
        if !existing.is_empty() {
            return Err(ImportError::Conflict(format!(
                "guild {} already exists in this installation; a guild lives in one tenant of one installation: remove it here first, or import elsewhere",
                existing.join(", ")
            )));
        }
        for feature in &rows.features {
            feature
                .insert(&mut tx, "ON CONFLICT (id) DO NOTHING")
                .await?;
        }
        for v in &rows.feature_versions {
            let found: Option<(String,)> = match &mut tx {
                Tx::Sqlite(tx) => sqlx::query_as(
                    "SELECT sha256 FROM feature_versions WHERE feature_id = $1 AND version = $2",
                )
                .bind(&v.feature_id)
                .bind(&v.version)
                .fetch_optional(&mut **tx)
                .await?,
                Tx::Postgres(tx) => sqlx::query_as(
                    "SELECT sha256 FROM feature_versions WHERE feature_id = $1 AND version = $2",
                )
                .bind(&v.feature_id)
                .bind(&v.version)
                .fetch_optional(&mut **tx)
                .await?,
            };
            match found {
                None => {
                    v.insert(&mut tx, "").await?;
                }
                Some((sha,)) if sha == v.sha256 => {}
                Some((sha,)) => {
                    return Err(ImportError::Conflict(format!(
                        "{} {} is installed here with other contents (sha256 {sha}, the bundle's is {}); two builds cannot share a version",
                        v.feature_id, v.version, v.sha256
                    )));
                }
            }
        }
        for r in &rows.guilds {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.guild_settings {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.role_permissions {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.command_cooldowns {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.guild_features {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.feature_kv {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.feature_scores {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.feature_storage_usage {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.feature_files {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.feature_files_usage {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.audit_log {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.scheduled_jobs {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.usage_counters {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.billing_accounts {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.licenses {
            r.insert(&mut tx, "").await?;
        }
        for r in &rows.incidents {
            r.insert(&mut tx, "").await?;
        }
        match tx {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        for guild in rows.guild_ids() {
            self.control.changed(guild);
        }
        Ok(())
    }

    /// How many rows of the tables an import writes exist in total: what a
    /// refused import must leave as it found.
    pub async fn export_table_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut counts = BTreeMap::new();
        for table in [
            "tenants",
            "guilds",
            "guild_settings",
            "role_permissions",
            "command_cooldowns",
            "features",
            "feature_versions",
            "guild_features",
            "feature_kv",
            "feature_scores",
            "feature_storage_usage",
            "feature_files",
            "feature_files_usage",
            "audit_log",
            "scheduled_jobs",
            "usage_counters",
            "billing_accounts",
            "licenses",
            "incidents",
        ] {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let (n,): (i64,) = on_db!(&self.db, pool => {
                sqlx::query_as(AssertSqlSafe(sql)).fetch_one(pool).await?
            });
            counts.insert(table.to_string(), super::count(n));
        }
        Ok(counts)
    }
}

/// Where an export job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Queued,
    Running,
    Done,
    Failed,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Queued => "queued",
            ExportStatus::Running => "running",
            ExportStatus::Done => "done",
            ExportStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> ExportStatus {
        match text {
            "queued" => ExportStatus::Queued,
            "running" => ExportStatus::Running,
            "done" => ExportStatus::Done,
            _ => ExportStatus::Failed,
        }
    }
}

/// An export job as stored (migration 0013). The bundle itself is a file in
/// the data directory, never in the database.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportJob {
    /// 32 random hex digits.
    pub id: String,
    pub tenant_id: String,
    /// Set for a one-guild export.
    pub guild_id: Option<u64>,
    pub status: ExportStatus,
    /// What the job does now (`reading`, `components`, `encrypting`, …).
    pub step: String,
    /// Progress within the step.
    pub done: u64,
    pub total: u64,
    /// Why it failed, with what to do.
    pub error: Option<String>,
    /// The bundle's size and hex sha256 (of the encrypted file), once done.
    pub size_bytes: Option<u64>,
    pub sha256: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    /// Moves with every step and heartbeat: a running job whose row stopped
    /// moving was interrupted.
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the download link stops working and the bundle is deleted.
    pub expires_at: Option<DateTime<Utc>>,
}

type JobTuple = (
    String,
    String,
    Option<i64>,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

const JOB_COLUMNS: &str = "id, tenant_id, guild_id, status, step, rows_done, rows_total, error, \
    size_bytes, sha256, requested_by, created_at, updated_at, finished_at, expires_at";

fn job(t: JobTuple) -> ExportJob {
    ExportJob {
        id: t.0,
        tenant_id: t.1,
        guild_id: t.2.map(api_id),
        status: ExportStatus::parse(&t.3),
        step: t.4,
        done: super::count(t.5),
        total: super::count(t.6),
        error: t.7,
        size_bytes: t.8.map(super::count),
        sha256: t.9,
        requested_by: t.10,
        created_at: t.11,
        updated_at: t.12,
        finished_at: t.13,
        expires_at: t.14,
    }
}

impl Store {
    /// Records a queued export of `scope`; `None` while another export of the
    /// tenant is queued or running (one at a time per tenant).
    pub async fn create_export_job(
        &self,
        scope: &ExportScope,
        requested_by: &str,
    ) -> Result<Option<ExportJob>, StoreError> {
        let id = super::random_id();
        let now = super::now();
        let guild_id = match scope {
            ExportScope::Tenant(_) => None,
            ExportScope::Guild { guild_id, .. } => Some(db_id(*guild_id)),
        };
        let written = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO exports (id, tenant_id, guild_id, status, step, rows_done, rows_total,
                                      requested_by, created_at, updated_at)
                 VALUES ($1, $2, $3, 'queued', 'queued', 0, 0, $4, $5, $5)",
            )
            .bind(&id)
            .bind(scope.tenant_id())
            .bind(guild_id)
            .bind(requested_by)
            .bind(now)
            .execute(pool)
            .await
            .map(drop)
        });
        match written {
            Ok(()) => self.export_job(&id).await,
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn export_job(&self, id: &str) -> Result<Option<ExportJob>, StoreError> {
        let row: Option<JobTuple> = on_db!(&self.db, pool => {
            sqlx::query_as(AssertSqlSafe(format!(
                "SELECT {JOB_COLUMNS} FROM exports WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(job))
    }

    /// Moves a queued or running job to `step` (it runs) and stamps it.
    pub async fn set_export_progress(
        &self,
        id: &str,
        step: &str,
        done: u64,
        total: u64,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE exports SET status = 'running', step = $2, rows_done = $3, rows_total = $4,
                        updated_at = $5
                 WHERE id = $1 AND status IN ('queued', 'running')",
            )
            .bind(id)
            .bind(step)
            .bind(done as i64)
            .bind(total as i64)
            .bind(super::now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Ends a job: `Ok((size, sha256, expires_at))` done, `Err(why)` failed.
    pub async fn finish_export_job(
        &self,
        id: &str,
        outcome: Result<(u64, &str, DateTime<Utc>), &str>,
    ) -> Result<(), StoreError> {
        let now = super::now();
        on_db!(&self.db, pool => {
            match outcome {
                Ok((size, sha256, expires_at)) => sqlx::query(
                    "UPDATE exports SET status = 'done', step = 'done', size_bytes = $2,
                            sha256 = $3, expires_at = $4, finished_at = $5, updated_at = $5
                     WHERE id = $1",
                )
                .bind(id)
                .bind(size as i64)
                .bind(sha256)
                .bind(super::ts(expires_at))
                .bind(now)
                .execute(pool)
                .await
                .map(drop)?,
                Err(why) => sqlx::query(
                    "UPDATE exports SET status = 'failed', error = $2, finished_at = $3,
                            updated_at = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(why)
                .bind(now)
                .execute(pool)
                .await
                .map(drop)?,
            }
        });
        Ok(())
    }

    /// Fails every queued or running job whose row has not moved since
    /// `before` (its process stopped), saying `why`; returns their ids.
    pub async fn fail_stale_export_jobs(
        &self,
        before: DateTime<Utc>,
        why: &str,
    ) -> Result<Vec<String>, StoreError> {
        let ids: Vec<(String,)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "UPDATE exports SET status = 'failed', error = $2, finished_at = $3, updated_at = $3
                 WHERE status IN ('queued', 'running') AND updated_at < $1
                 RETURNING id",
            )
            .bind(super::ts(before))
            .bind(why)
            .bind(super::now())
            .fetch_all(pool)
            .await?
        });
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }
}
