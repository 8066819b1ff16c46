//! The store: every durable fact the host keeps, on embedded SQLite or on Postgres.
//!
//! [`Store`] wraps one of two concrete sqlx pools. Each query is written once, with `$1`
//! placeholders, and the `on_db!` macro runs that body against whichever pool is active,
//! so every body is type-checked against both backends while native types (bool, chrono
//! times, JSON) still work. Migrations live in `migrations/sqlite` and
//! `migrations/postgres` (same schema) and run on [`Store::connect`].
//!
//! Conventions:
//! - Discord snowflakes are `u64` here and `BIGINT` in the database (`as i64` / `as u64`,
//!   bit-for-bit).
//! - Times are `DateTime<Utc>`, kept to the microsecond on both backends (Postgres'
//!   resolution): anything finer is truncated when written.
//! - Feature storage (key-value pairs and score boards) is scoped to a (guild, feature)
//!   [`Scope`] and bounded by a [`Quota`](crate::grants::Quota). Its writes are group
//!   committed (`batch.rs`): the writes of concurrent callers share one transaction,
//!   and each call returns after the commit that holds its write. The usage row of the
//!   scope is locked and updated in that transaction, so checks are exact.
//!
//! - Calendar days (usage counters) are UTC [`NaiveDate`]s: `DATE` on Postgres,
//!   `'YYYY-MM-DD'` text on SQLite.
//!
//! The code is split by concern: `catalog.rs` (guilds, the feature catalogue and its
//! versions, guild features), `tenants.rs` (tenants and the guilds they own),
//! `settings.rs` (guild settings, role permissions, command cooldowns), `usage.rs`
//! (daily usage counters), `storage.rs` (key-value, boards, quotas), `audit.rs`,
//! `jobs.rs`, `auth.rs` (dashboard sessions, API keys, OAuth states, the readiness
//! ping), `incidents.rs` (incidents tenants report), `licenses.rs` (self-hosting
//! licences issued, and their activations), `export.rs` (every row of a tenant
//! or guild for an export bundle, one-transaction imports, export jobs),
//! `maintenance.rs` (migration state, backup and restore, without running the
//! platform), `offboarding.rs` (the offboarding flows, the purge and a
//! member's erasure), `operators.rs` (the platform's operators and their
//! tokens), `journal.rs` (the events delivered to features, written in
//! batches, for replay), `admin.rs` (what operators read and do across
//! tenants: figures, anonymization), `community_health.rs` (each guild's
//! activity per day and the daily health scores).

use std::str::FromStr;
use std::time::Duration;

use crate::grants::Approval;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Runs one query body against whichever pool is active.
///
/// `on_db!(&self.db, pool => body)` expands to a `match` with one arm per backend; in
/// each arm `pool` is that backend's concrete pool (`&SqlitePool` or `&PgPool`), so the
/// same body is compiled, and type-checked, twice.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// `SELECT` of every column a [`Guild`] is read from, then `$tail` (a
/// literal, so the SQL stays static): one list for every query that reads
/// guilds.
macro_rules! select_guilds {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, owner_id, plan, created_at, tenant_id, left_at, service
             FROM guilds ",
            $tail
        )
    };
}

mod admin;
mod ai;
pub use admin::{Anonymized, Figures, PlatformStats, STATS_WINDOW_DAYS, TenantSummary};
pub use ai::{GuildAi, TokenCaps, TokenClaim, TokenUse};
mod audit;
mod auth;
mod batch;
pub use batch::StorageCommits;
mod billing;
pub use billing::{
    BillingAccount, BillingChange, BillingOutcome, BillingStatus, MeterReport, SeenEvent,
};
mod catalog;
mod commands;
pub use commands::FeatureCommands;
mod community_health;
pub use community_health::{ActivityBatch, ActivityCounts};
mod control;
pub mod export;
pub use control::{CONTROL_CACHE_GUILDS, GuildPolicy};
mod files;
pub use files::{FileInfo, FileQuota, FileUsage};
mod incidents;
mod jobs;
mod journal;
pub use jobs::JobEnd;
pub use journal::JournalEntry;
mod licenses;
pub use licenses::{LicenseActivation, LicenseRecord, Revocation};
pub mod maintenance;
mod offboarding;
pub use offboarding::{
    Forgotten, NewOffboarding, Offboarding, OffboardingKind, OffboardingState, OffboardingStep,
    Started,
};
mod operators;
pub use operators::Operator;
mod outbox;
mod settings;
mod storage;
mod tenants;
mod usage;

pub use outbox::{DeadLetter, OutboxLease, OutboxRow};
pub use tenants::{GUILD_TRANSFERRED, OwnerChange};

/// Where a database URL points when none is given: `townes.db` in the current directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://townes.db";

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// This installation's schema version: the number of its newest migration.
/// Export bundles carry it, and an import refuses a bundle from a newer one.
pub fn schema_version() -> i64 {
    SQLITE_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write would take a scope past its storage quota; the message names the quota
    /// and the numbers. The write changed nothing.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// An increment found a stored value that is not a 64-bit integer.
    #[error("not an integer: {0}")]
    NotInteger(String),
    /// The caller asked for something the store refuses (bad URL, conflicting build,
    /// unknown row, a key Postgres could not store, an overflowing increment, a setting
    /// out of range: the message names the field).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The transaction of a batch of storage writes (concurrent writes are committed
    /// together, see [`Store::storage_commits`]) could not begin or commit: every
    /// write of the batch reports this one error, and none was applied (unless the
    /// connection broke during the commit itself, which leaves any transaction's
    /// outcome unknown).
    #[error("database error: {0}")]
    Batch(std::sync::Arc<sqlx::Error>),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

async fn migrate(db: &Db) -> Result<(), StoreError> {
    match db {
        Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
        Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
    }
    Ok(())
}

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The active pool. Pools are reference-counted, so cloning is cheap.
#[derive(Clone, Debug)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle on the database. Cheap to clone; all clones share one pool and one
/// in-memory control plane.
#[derive(Clone)]
pub struct Store {
    db: Db,
    control: std::sync::Arc<control::ControlCache>,
    writes: batch::Writer,
    journal: journal::Journal,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// A Discord server the bot is in.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Guild {
    pub id: u64,
    pub name: String,
    pub owner_id: u64,
    /// The tenant's plan; `"free"` unless billing says otherwise.
    pub plan: String,
    pub created_at: DateTime<Utc>,
    /// The [`Tenant`] that claimed this guild, if any.
    pub tenant_id: Option<String>,
    /// When the bot left the guild; `None` while it is in it.
    pub left_at: Option<DateTime<Utc>>,
    /// What the hosted runner does for it (offboarding changes it).
    pub service: GuildService,
}

/// What the hosted runner does for a guild.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuildService {
    /// Everything: events, commands, jobs.
    #[default]
    Active,
    /// A lapsed subscription: commands answer, but nothing is written (no
    /// storage writes, no Discord changes, no jobs) and no event is delivered;
    /// nothing new can be enabled.
    ReadOnly,
    /// Nothing: its commands are unregistered from Discord. Moved to a
    /// self-hosted runner, bot removed, or unpaid past read-only.
    Retired,
}

impl GuildService {
    pub fn as_str(self) -> &'static str {
        match self {
            GuildService::Active => "active",
            GuildService::ReadOnly => "read_only",
            GuildService::Retired => "retired",
        }
    }

    /// The column's value; the CHECK constraint admits only these three.
    pub(crate) fn parse(value: &str) -> GuildService {
        match value {
            "read_only" => GuildService::ReadOnly,
            "retired" => GuildService::Retired,
            _ => GuildService::Active,
        }
    }
}

impl Guild {
    /// A guild on the free plan, created now.
    pub fn new(id: u64, name: impl Into<String>, owner_id: u64) -> Guild {
        Guild {
            id,
            name: name.into(),
            owner_id,
            plan: "free".to_string(),
            created_at: now(),
            tenant_id: None,
            left_at: None,
            service: GuildService::Active,
        }
    }
}

/// A customer account: the Discord user who owns it and the plan it pays for. Owns
/// guilds through [`Guild::tenant_id`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Tenant {
    /// 32 random hex digits.
    pub id: String,
    /// One tenant per Discord user.
    pub owner_discord_id: u64,
    pub name: Option<String>,
    /// `"free"` unless billing says otherwise.
    pub plan: String,
    pub created_at: DateTime<Utc>,
}

/// Per-guild command settings. [`Store::guild_settings`] returns
/// [`GuildSettings::new`] (the defaults) for a guild that has none stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GuildSettings {
    pub guild_id: u64,
    /// 1 to 5 characters, no whitespace; `"!"` by default.
    pub prefix: String,
    pub use_slash_commands: bool,
    /// Whether prefix commands still work while slash commands are on.
    pub allow_prefix_fallback: bool,
    /// 0 (none) to 86,400; used for commands without their own [`CommandCooldown`].
    pub global_cooldown_seconds: u32,
    /// When the settings were last saved; `None` for defaults never saved. Set by
    /// [`Store::set_guild_settings`], which ignores the value passed in.
    pub updated_at: Option<DateTime<Utc>>,
}

impl GuildSettings {
    /// The defaults: prefix `!`, slash commands on, prefix fallback on, no cooldown.
    pub fn new(guild_id: u64) -> GuildSettings {
        GuildSettings {
            guild_id,
            prefix: "!".to_string(),
            use_slash_commands: true,
            allow_prefix_fallback: true,
            global_cooldown_seconds: 0,
            updated_at: None,
        }
    }
}

/// A role allowed to use a command group in a guild.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct RolePermission {
    pub guild_id: u64,
    pub role_id: u64,
    pub command_group: String,
}

/// A command's own cooldown in a guild (configuration, not per-user state).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CommandCooldown {
    pub guild_id: u64,
    pub command: String,
    /// 1 to 86,400.
    pub seconds: u32,
}

/// A catalogue entry: one per feature id; its builds are [`FeatureVersion`]s.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Feature {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Shipped with the platform (as opposed to published by a third party).
    pub builtin: bool,
    pub publisher: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The publisher of the builtin features.
pub const PLATFORM_PUBLISHER: &str = "townes";

impl Feature {
    /// Who may publish versions of this feature: its publisher, or the platform
    /// for builtins recorded before publishers were; `None` while unclaimed.
    pub fn owner(&self) -> Option<&str> {
        self.publisher
            .as_deref()
            .or(self.builtin.then_some(PLATFORM_PUBLISHER))
    }
}

/// What a guild used on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UsageCounter {
    pub guild_id: u64,
    pub day: NaiveDate,
    pub events: u64,
    pub commands: u64,
    pub ai_tokens: u64,
}

/// One installed build of a feature component.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FeatureVersion {
    pub feature_id: String,
    pub version: String,
    /// Hex sha256 of the component bytes.
    pub sha256: String,
    pub manifest: serde_json::Value,
    pub size_bytes: u64,
    pub created_at: DateTime<Utc>,
    /// Offered in the catalogue. Unpublishing hides a build from new installs; guilds
    /// already running it keep it.
    pub published: bool,
}

/// A feature as set up in one guild.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GuildFeature {
    pub guild_id: u64,
    pub feature_id: String,
    pub version: String,
    pub enabled: bool,
    /// What the guild's admin approved, decoded once where the row is read:
    /// an approval that cannot be read approves nothing (and is logged).
    pub grants: Approval,
    pub config: Option<serde_json::Value>,
    pub breaker_strikes: u32,
    pub breaker_open_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The version the guild ran before its last upgrade, for rollback.
    pub previous_version: Option<String>,
    /// Counts admin changes to the row (not breaker updates): what
    /// [`Store::revise_guild_feature`] compares before it writes.
    pub revision: u64,
}

/// The (guild, feature) pair that owns a piece of feature storage or a job.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    pub guild_id: u64,
    pub feature_id: String,
}

impl Scope {
    pub fn new(guild_id: u64, feature_id: impl Into<String>) -> Scope {
        Scope {
            guild_id,
            feature_id: feature_id.into(),
        }
    }
}

/// What a scope stores now, counted as [`Quota`](crate::grants::Quota) describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Usage {
    pub bytes: u64,
    pub rows: u64,
}

/// A subject's place on a score board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreEntry {
    pub subject: u64,
    pub score: i64,
    /// 1-based; ties are broken by subject, ascending.
    pub rank: u32,
}

/// An audit entry to write.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAuditEntry {
    pub guild_id: Option<u64>,
    pub actor: String,
    pub action: String,
    pub feature_id: Option<String>,
    pub details: serde_json::Value,
}

/// An audit entry as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub guild_id: Option<u64>,
    pub actor: String,
    pub action: String,
    pub feature_id: Option<String>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A pending job a feature scheduled.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledJob {
    pub id: String,
    pub scope: Scope,
    pub name: String,
    pub payload: String,
    pub run_at: DateTime<Utc>,
    /// Earlier runs the host could not complete (the feature was paused, the
    /// host was busy or failed).
    pub attempts: u32,
    /// Times a runner claimed it (this claim included, for a claimed job): more
    /// than `attempts + 1` means runners died while running it.
    pub claims: u32,
}

/// A dashboard login. The cookie carries a random token; only its sha256 is stored, so
/// the database never holds anything a browser could present. Returned by
/// [`Store::live_session`] only while neither revoked nor expired.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Session {
    /// The tenant the login acts for.
    pub tenant_id: String,
    /// The Discord user who logged in (through OAuth).
    pub discord_user_id: u64,
    /// Their Discord name when they logged in, for display.
    pub user_name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A session to create ([`Store::create_session`]); borrowed, since the API builds it
/// from values it already holds. `created_at` is stamped by the store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSession<'a> {
    /// Hex sha256 of the cookie's token (the token itself is never stored).
    pub token_hash: &'a str,
    pub tenant_id: &'a str,
    pub discord_user_id: u64,
    pub user_name: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// An API key for a tenant's servers; the secret is shown once and stored as its sha256,
/// so this type has no secret to leak when listed or serialised.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ApiKey {
    /// 32 random hex digits; the public half of a presented key.
    pub id: String,
    pub tenant_id: String,
    /// The tenant's label for the key.
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Set by [`Store::touch_api_key`] when the key is used; `None` if never used.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key is listed but never accepted.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An incident to report ([`Store::create_incident`] validates it).
#[derive(Clone, Debug, PartialEq)]
pub struct NewIncident {
    pub tenant_id: String,
    /// The guild it concerns, if any (not checked against the tenant's guilds here).
    pub guild_id: Option<u64>,
    /// One of `low`, `medium`, `high`, `critical`.
    pub severity: String,
    /// 1 to 200 characters.
    pub title: String,
    /// At most 10,000 characters.
    pub description: String,
    /// Who reported it, written like an audit entry's `actor`.
    pub created_by: String,
}

/// An incident as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Incident {
    /// 32 random hex digits.
    pub id: String,
    pub tenant_id: String,
    pub guild_id: Option<u64>,
    pub severity: String,
    pub title: String,
    pub description: String,
    /// `"open"` when created.
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// What a database URL resolved to.
enum Target {
    Sqlite(SqliteConnectOptions, bool /* in memory */),
    Postgres(PgConnectOptions),
}

/// Reads a database URL: `sqlite://path`, `sqlite:path`, `sqlite::memory:`, a plain
/// file path, or a `postgres://` / `postgresql://` URL.
fn parse_url(url: &str) -> Result<Target, StoreError> {
    const ACCEPTED: &str = "accepted are sqlite://PATH, sqlite:PATH, a plain file path, \
                            postgres://... and postgresql://...";
    let url = url.trim();
    if url.is_empty() {
        return Err(StoreError::InvalidArgument(format!(
            "empty database URL; {ACCEPTED}"
        )));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(PgConnectOptions::from_str(url)?));
    }
    let sqlite = if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)?
    } else if let Some(scheme) = url_scheme(url) {
        // Name only the scheme: the rest may hold a password.
        return Err(StoreError::InvalidArgument(format!(
            "unsupported database URL scheme `{scheme}:`; {ACCEPTED}"
        )));
    } else {
        SqliteConnectOptions::new().filename(url)
    };
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    Ok(Target::Sqlite(sqlite, in_memory))
}

/// The scheme of `url` if it starts with one (`name:`, two characters or more, so a
/// Windows drive letter such as `C:` still reads as a path).
fn url_scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && scheme.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

impl Store {
    /// Opens the database at `url` (see [`DEFAULT_DATABASE_URL`]) and applies any
    /// pending migrations.
    ///
    /// Accepted: `sqlite://path`, `sqlite:path`, `sqlite::memory:`, a plain file path,
    /// `postgres://…` and `postgresql://…`. A SQLite file is created if missing and
    /// opened with WAL, `synchronous=NORMAL`, a 5 s busy timeout and foreign keys on.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let db = match parse_url(url)? {
            Target::Sqlite(options, in_memory) => {
                let options = options
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true);
                let pool = if in_memory {
                    // An in-memory database lives as long as a connection to it: keep
                    // exactly one, forever.
                    SqlitePoolOptions::new()
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    SqlitePoolOptions::new()
                };
                Db::Sqlite(pool.connect_with(options).await?)
            }
            Target::Postgres(options) => {
                Db::Postgres(PgPoolOptions::new().connect_with(options).await?)
            }
        };
        migrate(&db).await?;
        let control = control::ControlCache::start(&db).await?;
        let writes = batch::Writer::spawn(&db);
        let journal = journal::Journal::spawn(&db);
        Ok(Store {
            db,
            control,
            writes,
            journal,
        })
    }

    /// Applies the migrations not yet applied; running it again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.db).await
    }

    /// The migrations applied to this database, as (version, description), oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let applied = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT version, description FROM _sqlx_migrations
                 WHERE success
                 ORDER BY version",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(applied)
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        on_db!(&self.db, pool => pool.close().await)
    }
}

/// Times are stored to the microsecond on both backends.
fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// The current time, as it will be stored.
fn now() -> DateTime<Utc> {
    ts(Utc::now())
}

/// When a lease of `duration` taken at `from` runs out (the end of time for one too
/// long to add).
pub(crate) fn lease_end(from: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|d| from.checked_add_signed(d))
        .map_or(DateTime::<Utc>::MAX_UTC, ts)
}

/// A snowflake as the database holds it (bit-for-bit).
fn db_id(id: u64) -> i64 {
    id as i64
}

/// A snowflake as the API returns it (bit-for-bit).
fn api_id(id: i64) -> u64 {
    id as u64
}

/// A database count as a `u64` (counts are never negative).
fn count(n: i64) -> u64 {
    n.max(0) as u64
}

/// A `u32` limit as the database wants it.
fn db_limit(n: u32) -> i64 {
    i64::from(n)
}

/// A random id: 32 hex digits.
pub fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Whether a database error is a foreign-key violation (e.g. an unknown guild).
fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_foreign_key_violation())
}

/// Refuses an empty name or one longer than 100 characters.
fn check_name(field: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() || value.chars().count() > 100 {
        return Err(StoreError::InvalidArgument(format!(
            "{field} must be 1 to 100 characters, got {}",
            value.chars().count()
        )));
    }
    Ok(())
}
