//! The platform operators' routes (seed 001, EPIC 3; ADR 0019), under
//! `/admin`: tenants and guilds across the platform, the incidents feed,
//! migrations, adoption and churn, and the support tools (replay a guild's
//! journaled events, regenerate a licence, anonymize a tenant).
//!
//! Only an [`Operator`] token opens them: a tenant's session or API key gets
//! 403, no or a bad token 401. Every call is audited as `operator:<id>` with
//! the operator's name. Tenant export is a separate slice of issue 15 and is
//! not here.

use super::assets::{Asset, IncidentView, asset_of};
use super::exports::ExportView;
use super::{BodyErrors, CallerErrors};
use crate::api::ApiState;
use crate::api::auth::operator::Operator;
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use crate::api::examples;
use crate::api::snowflake::Snowflake;
use crate::export::{ExportKey, ExportRequest};
use crate::licensing::issuer::{Regen, RegenError};
use crate::store::{Anonymized, PlatformStats, TenantSummary, maintenance};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Most rows one page holds.
const MAX_PAGE: u32 = 100;
/// Most events one replay delivers again.
pub const MAX_REPLAY: u32 = 1000;

/// Errors of every `/admin` route, on top of the route's own.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only read by the OpenAPI generator.
pub enum OperatorErrors {
    /// A tenant's session or API key: operator credentials are needed.
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Rows to return, 1 to 100 (default 50).
    pub limit: Option<u32>,
    /// Rows to skip (default 0).
    pub offset: Option<u32>,
}

impl Page {
    fn bounds(&self) -> ApiResult<(u32, u32)> {
        bounds(self.limit, self.offset)
    }
}

fn bounds(limit: Option<u32>, offset: Option<u32>) -> ApiResult<(u32, u32)> {
    let limit = limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    Ok((limit, offset.unwrap_or(0)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantSearch {
    /// A tenant id prefix, part of its name, or its owner's Discord id.
    pub q: Option<String>,
    /// Rows to return, 1 to 100 (default 50).
    pub limit: Option<u32>,
    /// Rows to skip (default 0).
    pub offset: Option<u32>,
}

/// A tenant as operators see it.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::admin_tenant)]
pub struct AdminTenant {
    pub id: String,
    pub name: Option<String>,
    /// Absent once the tenant was anonymized.
    pub owner_discord_id: Option<Snowflake>,
    /// The plan that applies now.
    #[schema(example = "free")]
    pub plan: String,
    /// `free`, `trialing`, `active`, `past_due` or `canceled`.
    #[schema(example = "trialing")]
    pub billing_status: String,
    /// Guilds of the tenant the bot is in.
    pub guilds: u64,
    pub created_at: DateTime<Utc>,
}

impl From<TenantSummary> for AdminTenant {
    fn from(t: TenantSummary) -> AdminTenant {
        AdminTenant {
            id: t.id,
            name: t.name,
            // Anonymization stores negative pseudonyms: no Discord id.
            owner_discord_id: i64::try_from(t.owner_discord_id)
                .is_ok()
                .then_some(Snowflake(t.owner_discord_id)),
            plan: t.plan,
            billing_status: t.billing_status,
            guilds: t.guilds,
            created_at: t.created_at,
        }
    }
}

/// One tenant and all its guilds.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::admin_tenant_detail)]
pub struct AdminTenantDetail {
    pub tenant: AdminTenant,
    /// Its guilds, the ones the bot left included, with their features.
    pub guilds: Vec<Asset>,
}

/// Tenants, newest first, with their plan, billing status and guild count.
#[utoipa::path(get, path = "/admin/tenants", tag = "admin", operation_id = "adminListTenants",
    security(("operator" = [])),
    params(TenantSearch),
    responses((status = 200, description = "Matching tenants, newest first", body = [AdminTenant]),
        CallerErrors, OperatorErrors))]
pub async fn tenants(
    State(state): State<ApiState>,
    operator: Operator,
    Query(search): Query<TenantSearch>,
) -> ApiResult<axum::Json<Vec<AdminTenant>>> {
    let (limit, offset) = bounds(search.limit, search.offset)?;
    let q = search.q.unwrap_or_default();
    let found = state
        .store()
        .tenant_summaries(q.trim(), limit, offset)
        .await?;
    operator
        .audit(
            state.store(),
            "admin.tenants_listed",
            None,
            json!({ "q": q, "results": found.len() }),
        )
        .await?;
    Ok(axum::Json(found.into_iter().map(Into::into).collect()))
}

/// One tenant with its guilds and their features.
#[utoipa::path(get, path = "/admin/tenants/{tenant_id}", tag = "admin", operation_id = "adminGetTenant",
    security(("operator" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, description = "The tenant", body = AdminTenantDetail),
        CallerErrors, OperatorErrors,
        (status = 404, description = "No such tenant", body = ErrorBody)))]
pub async fn tenant(
    State(state): State<ApiState>,
    operator: Operator,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<AdminTenantDetail>> {
    let summary = state
        .store()
        .tenant_summaries(&tenant_id, 1, 0)
        .await?
        .into_iter()
        .find(|t| t.id == tenant_id)
        .ok_or_else(|| ApiError::not_found(format!("tenant {tenant_id}")))?;
    let mut guilds = Vec::new();
    for guild in state.store().guilds_of_tenant(&tenant_id).await? {
        guilds.push(asset_of(&state, guild).await?);
    }
    operator
        .audit(
            state.store(),
            "admin.tenant_viewed",
            None,
            json!({ "tenant_id": tenant_id }),
        )
        .await?;
    Ok(axum::Json(AdminTenantDetail {
        tenant: summary.into(),
        guilds,
    }))
}

/// Every guild, newest first, the ones the bot left included.
#[utoipa::path(get, path = "/admin/guilds", tag = "admin", operation_id = "adminListGuilds",
    security(("operator" = [])),
    params(Page),
    responses((status = 200, description = "Guilds, newest first", body = [Asset]),
        CallerErrors, OperatorErrors))]
pub async fn guilds(
    State(state): State<ApiState>,
    operator: Operator,
    Query(page): Query<Page>,
) -> ApiResult<axum::Json<Vec<Asset>>> {
    let (limit, offset) = page.bounds()?;
    let mut guilds = Vec::new();
    for guild in state.store().guilds_page(limit, offset).await? {
        guilds.push(asset_of(&state, guild).await?);
    }
    operator
        .audit(
            state.store(),
            "admin.guilds_listed",
            None,
            json!({ "results": guilds.len() }),
        )
        .await?;
    Ok(axum::Json(guilds))
}

/// Every tenant's incidents, newest first.
#[utoipa::path(get, path = "/admin/incidents", tag = "admin", operation_id = "adminListIncidents",
    security(("operator" = [])),
    params(Page),
    responses((status = 200, description = "Incidents, newest first", body = [IncidentView]),
        CallerErrors, OperatorErrors))]
pub async fn incidents(
    State(state): State<ApiState>,
    operator: Operator,
    Query(page): Query<Page>,
) -> ApiResult<axum::Json<Vec<IncidentView>>> {
    let (limit, offset) = page.bounds()?;
    let feed = state.store().incidents_feed(limit, offset).await?;
    operator
        .audit(
            state.store(),
            "admin.incidents_listed",
            None,
            json!({ "results": feed.len() }),
        )
        .await?;
    Ok(axum::Json(feed.into_iter().map(Into::into).collect()))
}

/// A migration, by version.
#[derive(Serialize, ToSchema)]
pub struct MigrationView {
    pub version: i64,
    pub description: String,
    pub applied: bool,
}

/// The database against the migrations this build carries.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::admin_migrations)]
pub struct MigrationsView {
    /// `sqlite` or `postgres`.
    #[schema(example = "sqlite")]
    pub backend: &'static str,
    /// Every migration this build knows, oldest first, and whether it is applied.
    pub known: Vec<MigrationView>,
    /// Applied but unknown to this build: a newer townes migrated the database.
    pub unknown: Vec<i64>,
    /// Applied from other SQL than this build's.
    pub changed: Vec<i64>,
    /// Started and never finished.
    pub failed: Vec<i64>,
    /// Every known migration applied, and nothing unknown, changed or failed.
    pub up_to_date: bool,
}

/// Which migrations the database has, against the ones this build knows.
#[utoipa::path(get, path = "/admin/migrations", tag = "admin", operation_id = "adminGetMigrations",
    security(("operator" = [])),
    responses((status = 200, description = "The migrations", body = MigrationsView),
        CallerErrors, OperatorErrors))]
pub async fn migrations(
    State(state): State<ApiState>,
    operator: Operator,
) -> ApiResult<axum::Json<MigrationsView>> {
    let store = state.store();
    let report = store.migration_status().await?;
    let known = maintenance::known_migrations(store.backend())
        .into_iter()
        .map(|(version, description)| MigrationView {
            applied: !report.pending.iter().any(|(v, _)| *v == version)
                && !report.failed.contains(&version),
            version,
            description,
        })
        .collect();
    let up_to_date = report.pending.is_empty() && report.refusal().is_none();
    operator
        .audit(store, "admin.migrations_viewed", None, json!({}))
        .await?;
    Ok(axum::Json(MigrationsView {
        backend: match store.backend() {
            crate::store::Backend::Sqlite => "sqlite",
            crate::store::Backend::Postgres => "postgres",
        },
        known,
        unknown: report.unknown,
        changed: report.changed,
        failed: report.failed,
        up_to_date,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::admin_replay_request)]
pub struct ReplayRequest {
    /// How many of the guild's last journaled events to deliver again, 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub last: u32,
}

/// What a replay delivered.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::admin_replayed)]
pub struct Replayed {
    pub guild_id: Snowflake,
    /// Journaled events delivered again (fewer than asked when the journal
    /// holds fewer).
    pub events: usize,
    /// Feature invocations they caused.
    pub invocations: usize,
    /// Of those, the ones that failed (trap, timeout, error).
    pub failed: usize,
}

/// Delivers a guild's last journaled events again to the features enabled in
/// it now, oldest first, through the same path as live events. The journal
/// keeps `TOWNES_JOURNAL_RETENTION` (7 days by default), at most
/// `TOWNES_JOURNAL_CAP` events per guild.
#[utoipa::path(post, path = "/admin/guilds/{guild_id}/replay", tag = "admin", operation_id = "adminReplayGuild",
    security(("operator" = [])),
    params(("guild_id" = Snowflake, Path)),
    request_body = ReplayRequest,
    responses((status = 200, description = "Delivered again", body = Replayed),
        CallerErrors, OperatorErrors, BodyErrors,
        (status = 404, description = "No such guild", body = ErrorBody)))]
pub async fn replay(
    State(state): State<ApiState>,
    operator: Operator,
    Path(guild_id): Path<Snowflake>,
    Json(body): Json<ReplayRequest>,
) -> ApiResult<axum::Json<Replayed>> {
    if !(1..=MAX_REPLAY).contains(&body.last) {
        return Err(ApiError::invalid(
            "/last",
            format!("must be 1 to {MAX_REPLAY}, got {}", body.last),
        ));
    }
    let guild_id = guild_id.0;
    if state.store().guild(guild_id).await?.is_none() {
        return Err(ApiError::not_found(format!("guild {guild_id}")));
    }
    // Audited first: the features' effects that follow are attributable to it.
    operator
        .audit(
            state.store(),
            "admin.replay",
            Some(guild_id),
            json!({ "last": body.last }),
        )
        .await?;
    let replayed = state
        .runtime()
        .replay(guild_id, body.last)
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(Replayed {
        guild_id: Snowflake(guild_id),
        events: replayed.events,
        invocations: replayed.outcomes.len(),
        failed: replayed
            .outcomes
            .iter()
            .filter(|o| o.result.is_err())
            .count(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::admin_regen_request)]
pub struct RegenRequest {
    /// Why, as the old licence's installations will read it.
    pub reason: Option<String>,
    /// Days the new licence is valid; the old one's length when absent.
    #[schema(minimum = 1)]
    pub days: Option<u32>,
    /// The old licence's key, needed when no installation ever activated it
    /// (its features and limits are read from it).
    pub license: Option<String>,
}

/// A licence issued in place of another.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::admin_regenerated)]
pub struct Regenerated {
    /// The new licence's id.
    pub id: String,
    /// The licence it replaces, now revoked.
    pub replaces: String,
    pub tenant_id: String,
    pub plan: String,
    /// The new licence key (`tdl1.…`), for the tenant's `TOWNESDEV_LICENSE`;
    /// shown in this answer only.
    pub license: String,
    pub expires_at: DateTime<Utc>,
}

/// Issues a licence in place of another (same tenant, plan, features and
/// limits; new id and dates) and revokes the old one, as `townes license
/// regen` does.
#[utoipa::path(post, path = "/admin/licenses/{license_id}/regen", tag = "admin", operation_id = "adminRegenLicense",
    security(("operator" = [])),
    params(("license_id" = String, Path)),
    request_body = RegenRequest,
    responses((status = 200, description = "The new licence", body = Regenerated),
        CallerErrors, OperatorErrors, BodyErrors,
        (status = 404, description = "No such licence", body = ErrorBody),
        (status = 409, description = "Already replaced (regenerate its successor), or its features and limits are unknown here (send its key as `license`)", body = ErrorBody),
        (status = 503, description = "Licensing is off on this platform", body = ErrorBody)))]
pub async fn regen_license(
    State(state): State<ApiState>,
    operator: Operator,
    Path(license_id): Path<String>,
    Json(body): Json<RegenRequest>,
) -> ApiResult<axum::Json<Regenerated>> {
    let server = state.license_server().ok_or_else(|| ApiError::Unavailable {
        message: "self-hosting licences are off on this platform".into(),
        hint: Some("set TOWNES_LICENSE_SIGNING_KEY to the file `townes license keygen` wrote, and restart".into()),
    })?;
    let reason = body
        .reason
        .as_deref()
        .unwrap_or("replaced by a new licence");
    let request = Regen {
        id: &license_id,
        old_key: body.license.as_deref(),
        days: body.days,
        reason,
    };
    let regenerated = server
        .regenerate(state.store(), state.runtime().plans(), &request, Utc::now())
        .await
        .map_err(|e| match e {
            RegenError::Unknown(_) => ApiError::NotFound(e.to_string()),
            RegenError::Replaced { .. }
            | RegenError::ReplacedMeanwhile { .. }
            | RegenError::GrantUnknown(_) => ApiError::Conflict {
                message: e.to_string(),
                hint: None,
            },
            RegenError::Invalid(message) => ApiError::Invalid {
                message,
                problems: Vec::new(),
            },
            RegenError::Store(e) => e.into(),
        })?;
    let claims = regenerated.claims;
    operator
        .audit(
            state.store(),
            "admin.license_regenerated",
            None,
            json!({ "license_id": license_id, "new_license_id": claims.id, "tenant_id": claims.tenant, "reason": reason }),
        )
        .await?;
    Ok(axum::Json(Regenerated {
        id: claims.id,
        replaces: license_id,
        tenant_id: claims.tenant,
        plan: claims.plan,
        license: regenerated.key,
        expires_at: claims.expires_at,
    }))
}

/// What an anonymization changed.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::admin_anonymized)]
pub struct AnonymizedView {
    pub tenant_id: String,
    pub guilds: u64,
    /// Discord user ids replaced by pseudonyms.
    pub user_ids: u64,
    pub sessions_deleted: u64,
    pub api_keys_deleted: u64,
    pub storage_rows_emptied: u64,
    pub files_emptied: u64,
    pub audit_entries_scrubbed: u64,
    pub incidents_scrubbed: u64,
    pub journal_entries_deleted: u64,
}

/// Anonymizes a tenant, in one transaction: Discord user ids are replaced by
/// pseudonyms, content (stored values, files, audit details, incident texts,
/// journaled events, names) is removed, sessions and API keys are deleted;
/// counts (usage, storage rows, scores, billing) are kept. It cannot be
/// undone. A guild the bot is still in gets its owner back from Discord on
/// its next update.
#[utoipa::path(post, path = "/admin/tenants/{tenant_id}/anonymize", tag = "admin", operation_id = "adminAnonymizeTenant",
    security(("operator" = [])),
    params(("tenant_id" = String, Path)),
    responses((status = 200, description = "Anonymized", body = AnonymizedView),
        CallerErrors, OperatorErrors,
        (status = 404, description = "No such tenant", body = ErrorBody)))]
pub async fn anonymize(
    State(state): State<ApiState>,
    operator: Operator,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<AnonymizedView>> {
    let Anonymized {
        guilds,
        user_ids,
        sessions_deleted,
        api_keys_deleted,
        storage_rows_emptied,
        files_emptied,
        audit_entries_scrubbed,
        incidents_scrubbed,
        journal_entries_deleted,
    } = state
        .store()
        .anonymize_tenant(&tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tenant {tenant_id}")))?;
    let view = AnonymizedView {
        tenant_id,
        guilds,
        user_ids,
        sessions_deleted,
        api_keys_deleted,
        storage_rows_emptied,
        files_emptied,
        audit_entries_scrubbed,
        incidents_scrubbed,
        journal_entries_deleted,
    };
    operator
        .audit(
            state.store(),
            "admin.tenant_anonymized",
            None,
            serde_json::to_value(&view).map_err(ApiError::internal)?,
        )
        .await?;
    Ok(axum::Json(view))
}

/// Totals of one kind of thing.
#[derive(Serialize, ToSchema)]
pub struct FiguresView {
    pub total: u64,
    /// A guild the bot is in with a feature enabled; a tenant owning one.
    pub active: u64,
    /// Created in the last 30 days.
    pub new: u64,
}

/// Adoption and churn.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::admin_stats)]
pub struct StatsView {
    pub tenants: FiguresView,
    pub guilds: FiguresView,
    /// Active guilds with each feature enabled, by feature id.
    pub features_enabled: BTreeMap<String, u64>,
    /// Paying tenants (`active` or `past_due`), by plan.
    pub paying_by_plan: BTreeMap<String, u64>,
    /// Tenants on a trial now.
    pub trialing: u64,
    /// Subscriptions that ended in the last 30 days.
    pub canceled: u64,
    /// Guilds the bot left in the last 30 days.
    pub guilds_left: u64,
    /// The start of the 30-day window.
    pub since: DateTime<Utc>,
}

/// Adoption and churn: tenants and guilds (total, active, new in 30 days),
/// features enabled, paying tenants by plan, churn in 30 days.
#[utoipa::path(get, path = "/admin/stats", tag = "admin", operation_id = "adminGetStats",
    security(("operator" = [])),
    responses((status = 200, description = "The figures", body = StatsView),
        CallerErrors, OperatorErrors))]
pub async fn stats(
    State(state): State<ApiState>,
    operator: Operator,
) -> ApiResult<axum::Json<StatsView>> {
    let PlatformStats {
        tenants,
        guilds,
        features_enabled,
        paying_by_plan,
        trialing,
        canceled,
        guilds_left,
        since,
    } = state.store().platform_stats(Utc::now()).await?;
    let figures = |f: crate::store::Figures| FiguresView {
        total: f.total,
        active: f.active,
        new: f.new,
    };
    operator
        .audit(state.store(), "admin.stats_viewed", None, json!({}))
        .await?;
    Ok(axum::Json(StatsView {
        tenants: figures(tenants),
        guilds: figures(guilds),
        features_enabled,
        paying_by_plan,
        trialing,
        canceled,
        guilds_left,
        since,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::admin_export_request)]
pub struct AdminExportStart {
    /// At least 12 characters; hand it to the tenant apart from the link.
    /// Never stored.
    pub passphrase: String,
}

/// Exports a tenant for support (the same bundle as `POST /exports`, under a
/// passphrase the operator chooses); follow it with `GET /admin/exports/{id}`.
#[utoipa::path(post, path = "/admin/tenants/{tenant_id}/export", tag = "admin", operation_id = "adminExportTenant",
    security(("operator" = [])),
    params(("tenant_id" = String, Path)),
    request_body(content = AdminExportStart, example = examples::admin_export_request),
    responses((status = 202, description = "The export is queued", body = ExportView),
        CallerErrors, BodyErrors, OperatorErrors,
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "Another export of the tenant is queued or running", body = ErrorBody)))]
pub async fn export_tenant(
    State(state): State<ApiState>,
    operator: Operator,
    Path(tenant_id): Path<String>,
    Json(body): Json<AdminExportStart>,
) -> ApiResult<(StatusCode, axum::Json<ExportView>)> {
    let key = ExportKey::passphrase(body.passphrase)?;
    if state.store().tenant(&tenant_id).await?.is_none() {
        return Err(ApiError::not_found(format!("tenant {tenant_id}")));
    }
    let job = state
        .exports()
        .start(ExportRequest {
            tenant_id: tenant_id.clone(),
            guild_id: None,
            key,
            requested_by: operator.actor(),
        })
        .await?;
    operator
        .audit(
            state.store(),
            "admin.tenant_exported",
            None,
            json!({ "tenant_id": tenant_id, "export": &job.id }),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(ExportView::new(job, None))))
}

/// An export job of any tenant, with its signed download link once done.
#[utoipa::path(get, path = "/admin/exports/{export_id}", tag = "admin", operation_id = "adminGetExport",
    security(("operator" = [])),
    params(("export_id" = String, Path)),
    responses((status = 200, description = "The export", body = ExportView),
        CallerErrors, OperatorErrors,
        (status = 404, description = "No such export", body = ErrorBody)))]
pub async fn export(
    State(state): State<ApiState>,
    operator: Operator,
    Path(export_id): Path<String>,
) -> ApiResult<axum::Json<ExportView>> {
    let job = state
        .exports()
        .job(&export_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("export {export_id}")))?;
    operator
        .audit(
            state.store(),
            "admin.export_read",
            None,
            json!({ "export": &export_id }),
        )
        .await?;
    Ok(axum::Json(ExportView::with_link(&state, job).await?))
}
