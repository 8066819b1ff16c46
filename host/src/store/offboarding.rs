//! Offboarding flows (migration 0015): their rows, the guild service each
//! step sets, the purge that deletes a guild's or a tenant's data, and the
//! erasure of one member's data (`forget-user`).
//!
//! Every step is one transaction: the flow's state (moved only from the state
//! the caller saw, so two jobs racing move it once), the service of its
//! guilds and an audit entry in each of them.

use chrono::{DateTime, Utc};
use regex::Regex;
use sqlx::types::Json;

use super::{GuildService, Store, StoreError, api_id, db_id, now, random_id, ts};
use townes_limits::storage::{board_row_bytes, kv_row_bytes};

/// The three ways off the hosted platform (seed 001).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffboardingKind {
    /// Export, a licence for the self-hosted runner, then the hosted runner
    /// retires once that runner activates (or at the scheduled date).
    SelfHost,
    /// Commands unregistered and licences revoked now; data purged after the
    /// retention window.
    RemoveBot,
    /// Started by billing: grace, read-only, retired, purged.
    NonPayment,
}

impl OffboardingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OffboardingKind::SelfHost => "self_host",
            OffboardingKind::RemoveBot => "remove_bot",
            OffboardingKind::NonPayment => "non_payment",
        }
    }

    fn parse(value: &str) -> OffboardingKind {
        match value {
            "self_host" => OffboardingKind::SelfHost,
            "remove_bot" => OffboardingKind::RemoveBot,
            _ => OffboardingKind::NonPayment,
        }
    }
}

/// Where a flow is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffboardingState {
    /// Self-host: the licence is issued; waiting for the self-hosted runner.
    AwaitingActivation,
    /// Non-payment: a payment failed; everything still runs.
    Grace,
    /// Non-payment: the grace period ended; commands answer, nothing changes.
    ReadOnly,
    /// The hosted runner does nothing for the guilds; data kept until `purge_at`.
    Retired,
    /// The data is deleted. Final.
    Purged,
    /// Called off (or paid) before the purge; the guilds run again. Final.
    Canceled,
}

impl OffboardingState {
    pub fn as_str(self) -> &'static str {
        match self {
            OffboardingState::AwaitingActivation => "awaiting_activation",
            OffboardingState::Grace => "grace",
            OffboardingState::ReadOnly => "read_only",
            OffboardingState::Retired => "retired",
            OffboardingState::Purged => "purged",
            OffboardingState::Canceled => "canceled",
        }
    }

    fn parse(value: &str) -> OffboardingState {
        match value {
            "awaiting_activation" => OffboardingState::AwaitingActivation,
            "grace" => OffboardingState::Grace,
            "read_only" => OffboardingState::ReadOnly,
            "retired" => OffboardingState::Retired,
            "purged" => OffboardingState::Purged,
            _ => OffboardingState::Canceled,
        }
    }

    /// Purged and canceled flows are over.
    pub fn is_open(self) -> bool {
        !matches!(self, OffboardingState::Purged | OffboardingState::Canceled)
    }

    /// The service the flow's guilds get in this state.
    pub fn service(self) -> GuildService {
        match self {
            OffboardingState::ReadOnly => GuildService::ReadOnly,
            OffboardingState::Retired | OffboardingState::Purged => GuildService::Retired,
            _ => GuildService::Active,
        }
    }
}

/// A flow as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Offboarding {
    pub id: String,
    pub tenant_id: String,
    /// The one guild it concerns; `None`: every guild of the tenant.
    pub guild_id: Option<u64>,
    pub kind: OffboardingKind,
    pub state: OffboardingState,
    pub export_id: Option<String>,
    pub license_id: Option<String>,
    pub started_by: String,
    pub retire_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    pub purge_at: Option<DateTime<Utc>>,
    pub purged_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct OffboardingRow {
    id: String,
    tenant_id: String,
    guild_id: Option<i64>,
    kind: String,
    state: String,
    export_id: Option<String>,
    license_id: Option<String>,
    started_by: String,
    retire_at: Option<DateTime<Utc>>,
    retired_at: Option<DateTime<Utc>>,
    purge_at: Option<DateTime<Utc>>,
    purged_at: Option<DateTime<Utc>>,
    canceled_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<OffboardingRow> for Offboarding {
    fn from(r: OffboardingRow) -> Offboarding {
        Offboarding {
            id: r.id,
            tenant_id: r.tenant_id,
            guild_id: r.guild_id.map(api_id),
            kind: OffboardingKind::parse(&r.kind),
            state: OffboardingState::parse(&r.state),
            export_id: r.export_id,
            license_id: r.license_id,
            started_by: r.started_by,
            retire_at: r.retire_at,
            retired_at: r.retired_at,
            purge_at: r.purge_at,
            purged_at: r.purged_at,
            canceled_at: r.canceled_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `SELECT` of every offboarding column, then `$tail`.
macro_rules! select_offboardings {
    ($tail:literal) => {
        concat!(
            "SELECT id, tenant_id, guild_id, kind, state, export_id, license_id, started_by,
                    retire_at, retired_at, purge_at, purged_at, canceled_at, created_at,
                    updated_at
             FROM offboardings ",
            $tail
        )
    };
}

/// A flow to start.
#[derive(Clone, Debug)]
pub struct NewOffboarding {
    pub tenant_id: String,
    pub guild_id: Option<u64>,
    pub kind: OffboardingKind,
    pub state: OffboardingState,
    pub export_id: Option<String>,
    pub license_id: Option<String>,
    pub started_by: String,
    pub retire_at: Option<DateTime<Utc>>,
    pub purge_at: Option<DateTime<Utc>>,
    /// Revoke the tenant's licences in the same transaction (remove bot).
    pub revoke_licenses: bool,
}

/// A step of a flow: its new state and the times it sets.
#[derive(Clone, Debug)]
pub struct OffboardingStep {
    pub from: OffboardingState,
    pub to: OffboardingState,
    pub retire_at: Option<DateTime<Utc>>,
    pub purge_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    /// Written in the audit entry beside the states.
    pub details: serde_json::Value,
}

/// What [`Store::start_offboarding`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Started {
    Started(Box<Offboarding>),
    /// An open flow already covers these guilds.
    AlreadyOpen(Box<Offboarding>),
}

/// What one member's erasure removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Forgotten {
    pub storage_keys: u64,
    pub scores: u64,
    pub files: u64,
    pub audit_entries: u64,
    pub jobs: u64,
}

/// The guilds of a flow: its one guild, or every guild of its tenant.
macro_rules! flow_guilds {
    ($tx:ident, $tenant:expr, $guild:expr) => {{
        let ids: Vec<i64> = match $guild {
            Some(guild) => vec![db_id(guild)],
            None => {
                sqlx::query_scalar("SELECT id FROM guilds WHERE tenant_id = $1 ORDER BY id")
                    .bind($tenant)
                    .fetch_all(&mut *$tx)
                    .await?
            }
        };
        ids
    }};
}

/// Sets the guilds' service and writes one audit entry in each (and one for
/// the tenant, without a guild).
macro_rules! apply_to_guilds {
    ($tx:ident, $guilds:expr, $service:expr, $action:expr, $details:expr) => {{
        for guild in $guilds {
            sqlx::query(
                "UPDATE guilds SET service = $2, service_since = $3
                 WHERE id = $1 AND service <> $2",
            )
            .bind(*guild)
            .bind($service.as_str())
            .bind(now())
            .execute(&mut *$tx)
            .await?;
        }
        for guild in $guilds.iter().map(|g| Some(*g)).chain([None]) {
            sqlx::query(
                "INSERT INTO audit_log (guild_id, actor, action, feature_id, details, created_at)
                 VALUES ($1, 'offboarding', $2, NULL, $3, $4)",
            )
            .bind(guild)
            .bind($action)
            .bind(Json($details))
            .bind(now())
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

/// Inside transaction `$tx`: the ids of the rows `$select` finds (it reads
/// `id` and a text; `$1` the guild, `$2` a `LIKE` pattern around the member's
/// id) whose text names the member as a whole number (`$token`).
macro_rules! naming {
    ($tx:ident, $select:literal, $guild:expr, $needle:expr, $token:expr) => {{
        let rows: Vec<(_, String)> = sqlx::query_as($select)
            .bind($guild)
            .bind($needle)
            .fetch_all(&mut *$tx)
            .await?;
        rows.into_iter()
            .filter(|(_, text)| $token.is_match(text))
            .map(|(id, _)| id)
            .collect()
    }};
}

impl Store {
    /// Starts a flow: its row, its guilds' service, audit entries, and (remove
    /// bot) the tenant's licences revoked, in one transaction. Refused as
    /// [`Started::AlreadyOpen`] while an open flow of the tenant covers the
    /// same guilds (the tenant's, or the same guild).
    pub async fn start_offboarding(&self, new: &NewOffboarding) -> Result<Started, StoreError> {
        let id = format!("off_{}", &random_id()[..24]);
        let at = now();
        let (started, guilds) = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let open: Option<OffboardingRow> = sqlx::query_as(select_offboardings!(
                "WHERE tenant_id = $1 AND state NOT IN ('purged', 'canceled')
                   AND (guild_id IS NULL OR $2 IS NULL OR guild_id = $2)
                 ORDER BY created_at LIMIT 1"
            ))
            .bind(&new.tenant_id)
            .bind(new.guild_id.map(db_id))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(open) = open {
                return Ok(Started::AlreadyOpen(Box::new(open.into())));
            }
            sqlx::query(
                "INSERT INTO offboardings (id, tenant_id, guild_id, kind, state, export_id,
                     license_id, started_by, retire_at, retired_at, purge_at, created_at,
                     updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
            )
            .bind(&id)
            .bind(&new.tenant_id)
            .bind(new.guild_id.map(db_id))
            .bind(new.kind.as_str())
            .bind(new.state.as_str())
            .bind(new.export_id.as_deref())
            .bind(new.license_id.as_deref())
            .bind(&new.started_by)
            .bind(new.retire_at.map(ts))
            .bind((new.state == OffboardingState::Retired).then_some(at))
            .bind(new.purge_at.map(ts))
            .bind(at)
            .execute(&mut *tx)
            .await?;
            if new.revoke_licenses {
                sqlx::query(
                    "UPDATE licenses SET revoked_at = $2, revoked_reason = 'bot removed'
                     WHERE tenant_id = $1 AND revoked_at IS NULL",
                )
                .bind(&new.tenant_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            let guilds = flow_guilds!(tx, &new.tenant_id, new.guild_id);
            let details = serde_json::json!({
                "offboarding": &id,
                "kind": new.kind.as_str(),
                "state": new.state.as_str(),
                "tenant_id": &new.tenant_id,
                "started_by": &new.started_by,
                "licenses_revoked": new.revoke_licenses,
            });
            apply_to_guilds!(tx, &guilds, new.state.service(), "offboarding.started", &details);
            tx.commit().await?;
            (id.clone(), guilds)
        });
        self.changed_guilds(&guilds);
        let flow = self.offboarding(&started).await?.ok_or_else(|| {
            StoreError::InvalidArgument(format!("offboarding {started} vanished"))
        })?;
        Ok(Started::Started(Box::new(flow)))
    }

    /// Moves a flow from `step.from` to `step.to`, setting its guilds' service
    /// and auditing it. `false` when the flow was no longer in `step.from`
    /// (another job moved it first): nothing changed.
    pub async fn advance_offboarding(
        &self,
        id: &str,
        step: &OffboardingStep,
    ) -> Result<bool, StoreError> {
        let at = ts(step.at);
        let moved = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let row: Option<(String, Option<i64>)> = sqlx::query_as(
                "UPDATE offboardings
                 SET state = $3, updated_at = $4,
                     retire_at = COALESCE($5, retire_at),
                     purge_at = COALESCE($6, purge_at),
                     retired_at = CASE WHEN $3 = 'retired' THEN $4 ELSE retired_at END,
                     purged_at = CASE WHEN $3 = 'purged' THEN $4 ELSE purged_at END,
                     canceled_at = CASE WHEN $3 = 'canceled' THEN $4 ELSE canceled_at END
                 WHERE id = $1 AND state = $2
                 RETURNING tenant_id, guild_id",
            )
            .bind(id)
            .bind(step.from.as_str())
            .bind(step.to.as_str())
            .bind(at)
            .bind(step.retire_at.map(ts))
            .bind(step.purge_at.map(ts))
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                None => None,
                Some((tenant, guild)) => {
                    let guilds = flow_guilds!(tx, &tenant, guild.map(api_id));
                    let details = serde_json::json!({
                        "offboarding": id,
                        "tenant_id": tenant,
                        "from": step.from.as_str(),
                        "to": step.to.as_str(),
                        "more": &step.details,
                    });
                    let action = format!("offboarding.{}", step.to.as_str());
                    apply_to_guilds!(tx, &guilds, step.to.service(), &action, &details);
                    tx.commit().await?;
                    Some(guilds)
                }
            }
        });
        match moved {
            Some(guilds) => {
                self.changed_guilds(&guilds);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub async fn offboarding(&self, id: &str) -> Result<Option<Offboarding>, StoreError> {
        let row: Option<OffboardingRow> = on_db!(&self.db, pool => {
            sqlx::query_as(select_offboardings!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(Offboarding::from))
    }

    /// A tenant's flows, newest first.
    pub async fn offboardings_of_tenant(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<Offboarding>, StoreError> {
        let rows: Vec<OffboardingRow> = on_db!(&self.db, pool => {
            sqlx::query_as(select_offboardings!(
                "WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
            ))
            .bind(tenant_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Offboarding::from).collect())
    }

    /// Every open flow, oldest first, for the offboarding job.
    pub async fn open_offboardings(&self) -> Result<Vec<Offboarding>, StoreError> {
        let rows: Vec<OffboardingRow> = on_db!(&self.db, pool => {
            sqlx::query_as(select_offboardings!(
                "WHERE state NOT IN ('purged', 'canceled') ORDER BY created_at, id"
            ))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Offboarding::from).collect())
    }

    /// Deletes everything kept for the flow's guilds — their features'
    /// storage, scores, files, jobs, usage, audit log, settings and the guild
    /// rows — and, when `tenant` is set, the tenant itself with its sessions,
    /// keys, incidents, billing and licences. Then marks the flow purged (from
    /// `retired`), all in one transaction. `false` when the flow was not
    /// retired any more: nothing was deleted.
    pub async fn purge_offboarding(
        &self,
        flow: &Offboarding,
        tenant: bool,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let at = ts(at);
        let purged = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let moved = sqlx::query(
                "UPDATE offboardings SET state = 'purged', purged_at = $2, updated_at = $2
                 WHERE id = $1 AND state = 'retired'",
            )
            .bind(&flow.id)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 0 {
                None
            } else {
                let guilds = flow_guilds!(tx, &flow.tenant_id, flow.guild_id);
                for guild in &guilds {
                    for statement in GUILD_PURGE {
                        sqlx::query(*statement)
                            .bind(*guild)
                            .execute(&mut *tx)
                            .await?;
                    }
                    sqlx::query("DELETE FROM guilds WHERE id = $1")
                        .bind(*guild)
                        .execute(&mut *tx)
                        .await?;
                }
                if tenant {
                    for statement in [
                        "DELETE FROM license_activations WHERE license_id IN
                             (SELECT id FROM licenses WHERE tenant_id = $1)",
                        "DELETE FROM licenses WHERE tenant_id = $1",
                        "DELETE FROM meter_reports WHERE tenant_id = $1",
                        "DELETE FROM stripe_events WHERE tenant_id = $1",
                        "DELETE FROM tenants WHERE id = $1",
                    ] {
                        sqlx::query(statement)
                            .bind(&flow.tenant_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                // The record that the purge happened, without a guild (its log is gone).
                sqlx::query(
                    "INSERT INTO audit_log (guild_id, actor, action, feature_id, details, created_at)
                     VALUES (NULL, 'offboarding', 'offboarding.purged', NULL, $1, $2)",
                )
                .bind(Json(serde_json::json!({
                    "offboarding": &flow.id,
                    "tenant_id": &flow.tenant_id,
                    "guilds": guilds.iter().map(|g| api_id(*g).to_string()).collect::<Vec<_>>(),
                    "tenant_deleted": tenant,
                })))
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Some(guilds)
            }
        });
        match purged {
            Some(guilds) => {
                self.changed_guilds(&guilds);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Erases what the guilds keep about one member: score-board rows whose
    /// subject is them, storage keys and files that name their id (as a whole
    /// number, in the key or name or in the stored text), pending jobs whose
    /// payload names it; their audit entries keep the action but lose the
    /// actor and the details; the days they were active or joined on
    /// (community health) go, the guild's counts stay. Storage and file usage
    /// shrink to match. One transaction.
    pub async fn forget_user(&self, guilds: &[u64], user_id: u64) -> Result<Forgotten, StoreError> {
        let token = Regex::new(&format!(r"(^|[^0-9]){user_id}([^0-9]|$)"))
            .map_err(|e| StoreError::InvalidArgument(e.to_string()))?;
        let needle = format!("%{user_id}%");
        let actor = format!("user:{user_id}");
        let mut forgotten = Forgotten::default();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for &guild in guilds {
                let guild = db_id(guild);
                let scores: Vec<(String, String)> = sqlx::query_as(
                    "DELETE FROM feature_scores WHERE guild_id = $1 AND subject = $2
                     RETURNING feature_id, board",
                )
                .bind(guild)
                .bind(db_id(user_id))
                .fetch_all(&mut *tx)
                .await?;
                let kv: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT feature_id, key, value FROM feature_kv
                     WHERE guild_id = $1 AND (key LIKE $2 OR value LIKE $2)",
                )
                .bind(guild)
                .bind(&needle)
                .fetch_all(&mut *tx)
                .await?;
                let kv: Vec<_> = kv
                    .into_iter()
                    .filter(|(_, key, value)| token.is_match(key) || token.is_match(value))
                    .collect();
                let mut shrink: std::collections::BTreeMap<String, (u64, u64)> =
                    std::collections::BTreeMap::new();
                for (feature, board) in &scores {
                    let entry = shrink.entry(feature.clone()).or_default();
                    entry.0 += board_row_bytes(board);
                    entry.1 += 1;
                }
                for (feature, key, value) in &kv {
                    sqlx::query(
                        "DELETE FROM feature_kv WHERE guild_id = $1 AND feature_id = $2 AND key = $3",
                    )
                    .bind(guild)
                    .bind(feature)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                    let entry = shrink.entry(feature.clone()).or_default();
                    entry.0 += kv_row_bytes(key, value);
                    entry.1 += 1;
                }
                for (feature, (bytes, rows)) in &shrink {
                    sqlx::query(
                        "UPDATE feature_storage_usage
                         SET bytes = CASE WHEN bytes > $3 THEN bytes - $3 ELSE 0 END,
                             rows = CASE WHEN rows > $4 THEN rows - $4 ELSE 0 END
                         WHERE guild_id = $1 AND feature_id = $2",
                    )
                    .bind(guild)
                    .bind(feature)
                    .bind(i64::try_from(*bytes).unwrap_or(i64::MAX))
                    .bind(i64::try_from(*rows).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
                }
                forgotten.scores += scores.len() as u64;
                forgotten.storage_keys += kv.len() as u64;

                // One file's bytes in memory at a time, not the guild's.
                let files: Vec<(String, String)> = sqlx::query_as(
                    "SELECT feature_id, name FROM feature_files WHERE guild_id = $1",
                )
                .bind(guild)
                .fetch_all(&mut *tx)
                .await?;
                for (feature, name) in files {
                    let data: Vec<u8> = sqlx::query_scalar(
                        "SELECT data FROM feature_files
                         WHERE guild_id = $1 AND feature_id = $2 AND name = $3",
                    )
                    .bind(guild)
                    .bind(&feature)
                    .bind(&name)
                    .fetch_one(&mut *tx)
                    .await?;
                    let text = String::from_utf8_lossy(&data);
                    if !token.is_match(&name) && !token.is_match(&text) {
                        continue;
                    }
                    sqlx::query(
                        "DELETE FROM feature_files WHERE guild_id = $1 AND feature_id = $2 AND name = $3",
                    )
                    .bind(guild)
                    .bind(&feature)
                    .bind(&name)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE feature_files_usage
                         SET bytes = CASE WHEN bytes > $3 THEN bytes - $3 ELSE 0 END,
                             files = CASE WHEN files > 0 THEN files - 1 ELSE 0 END
                         WHERE guild_id = $1 AND feature_id = $2",
                    )
                    .bind(guild)
                    .bind(&feature)
                    .bind(i64::try_from(data.len()).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
                    forgotten.files += 1;
                }

                let jobs: Vec<String> = naming!(
                    tx,
                    "SELECT id, payload FROM scheduled_jobs
                     WHERE guild_id = $1 AND status = 'pending' AND payload LIKE $2",
                    guild,
                    &needle,
                    token
                );
                for job in &jobs {
                    sqlx::query(
                        "UPDATE scheduled_jobs SET status = 'cancelled', payload = '', finished_at = $2
                         WHERE id = $1",
                    )
                    .bind(job)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                    forgotten.jobs += 1;
                }

                // When they were active or joined (community health): the
                // guild's counts keep them, anonymously.
                for sql in [
                    "DELETE FROM guild_active_members WHERE guild_id = $1 AND member_id = $2",
                    "DELETE FROM guild_joins WHERE guild_id = $1 AND member_id = $2",
                ] {
                    sqlx::query(sql)
                        .bind(guild)
                        .bind(db_id(user_id))
                        .execute(&mut *tx)
                        .await?;
                }

                // Events they took part in, kept for replay.
                let journaled: Vec<i64> = naming!(
                    tx,
                    "SELECT id, CAST(payload AS TEXT) FROM event_journal
                     WHERE guild_id = $1 AND CAST(payload AS TEXT) LIKE $2",
                    guild,
                    &needle,
                    token
                );
                for entry in &journaled {
                    sqlx::query("DELETE FROM event_journal WHERE id = $1")
                        .bind(entry)
                        .execute(&mut *tx)
                        .await?;
                }

                forgotten.audit_entries += sqlx::query(
                    "UPDATE audit_log SET actor = 'user:forgotten', details = $3
                     WHERE guild_id = $1 AND actor = $2",
                )
                .bind(guild)
                .bind(&actor)
                .bind(Json(serde_json::json!({ "forgotten": true })))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let mentioned: Vec<i64> = naming!(
                    tx,
                    "SELECT id, CAST(details AS TEXT) FROM audit_log
                     WHERE guild_id = $1 AND CAST(details AS TEXT) LIKE $2",
                    guild,
                    &needle,
                    token
                );
                for entry in &mentioned {
                    sqlx::query("UPDATE audit_log SET details = $2 WHERE id = $1")
                        .bind(entry)
                        .bind(Json(serde_json::json!({ "forgotten": true })))
                        .execute(&mut *tx)
                        .await?;
                    forgotten.audit_entries += 1;
                }
                sqlx::query(
                    "INSERT INTO audit_log (guild_id, actor, action, feature_id, details, created_at)
                     VALUES ($1, 'host', 'member.forgotten', NULL, $2, $3)",
                )
                .bind(guild)
                .bind(Json(serde_json::json!({
                    "storage_keys": forgotten.storage_keys,
                    "scores": forgotten.scores,
                    "files": forgotten.files,
                })))
                .bind(now())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(forgotten)
    }

    /// Records the export taken with a move to self-hosting.
    pub async fn set_offboarding_export(
        &self,
        id: &str,
        export_id: &str,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query("UPDATE offboardings SET export_id = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(export_id)
                .bind(now())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// How many installations activated the licence.
    pub async fn license_activation_count(&self, license_id: &str) -> Result<u64, StoreError> {
        let n: i64 = on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM license_activations WHERE license_id = $1")
                .bind(license_id)
                .fetch_one(pool)
                .await?
        });
        Ok(super::count(n))
    }

    /// Tells this process's control plane (others hear through the triggers).
    fn changed_guilds(&self, guilds: &[i64]) {
        for guild in guilds {
            self.control.changed(api_id(*guild));
        }
    }
}

/// What a purge deletes of a guild (`$1`) before its row (its settings,
/// permissions, cooldowns and command set go with the row, by cascade).
const GUILD_PURGE: &[&str] = &[
    "DELETE FROM feature_kv WHERE guild_id = $1",
    "DELETE FROM feature_scores WHERE guild_id = $1",
    "DELETE FROM feature_storage_usage WHERE guild_id = $1",
    "DELETE FROM feature_files WHERE guild_id = $1",
    "DELETE FROM feature_files_usage WHERE guild_id = $1",
    "DELETE FROM scheduled_jobs WHERE guild_id = $1",
    "DELETE FROM usage_counters WHERE guild_id = $1",
    "DELETE FROM audit_log WHERE guild_id = $1",
    "DELETE FROM incidents WHERE guild_id = $1",
    "DELETE FROM discord_outbox WHERE guild_id = $1",
    "DELETE FROM event_journal WHERE guild_id = $1",
    "DELETE FROM guild_activity WHERE guild_id = $1",
    "DELETE FROM guild_active_members WHERE guild_id = $1",
    "DELETE FROM guild_joins WHERE guild_id = $1",
    "DELETE FROM guild_health WHERE guild_id = $1",
    "DELETE FROM guild_features WHERE guild_id = $1",
];
