//! Seed 001's first stable slice: a tenant's guilds ("assets") with plan and
//! feature flags, one asset in full, feature toggles, daily usage, incidents.

use super::marketplace::{GuildFeatureView, InstallRequest, disable_feature, enable_feature};
use super::{BodyErrors, CallerErrors, GuildErrors};
use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::authz::GuildAccess;
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, MaybeJson, Path, Query};
use crate::api::examples;
use crate::api::routes::guild::SettingsView;
use crate::api::snowflake::Snowflake;
use crate::store::{Guild, Incident, NewIncident, UsageCounter};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
#[schema(example = examples::feature_flag)]
pub struct FeatureFlag {
    pub feature_id: String,
    pub version: String,
    pub enabled: bool,
}

/// A guild with its plan and feature flags.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::asset)]
pub struct Asset {
    pub id: Snowflake,
    pub name: String,
    #[schema(example = "free")]
    pub plan: String,
    pub owner_id: Snowflake,
    pub tenant_id: Option<String>,
    /// When the bot left; `null` while it is in the guild.
    pub left_at: Option<DateTime<Utc>>,
    pub features: Vec<FeatureFlag>,
}

pub(super) async fn asset_of(state: &ApiState, guild: Guild) -> ApiResult<Asset> {
    let features = state.store().guild_features(guild.id).await?;
    Ok(Asset {
        id: Snowflake(guild.id),
        name: guild.name,
        plan: guild.plan,
        owner_id: Snowflake(guild.owner_id),
        tenant_id: guild.tenant_id,
        left_at: guild.left_at,
        features: features
            .into_iter()
            .map(|f| FeatureFlag {
                feature_id: f.feature_id,
                version: f.version,
                enabled: f.enabled,
            })
            .collect(),
    })
}

#[derive(Serialize, ToSchema)]
#[schema(example = examples::usage_day)]
pub struct UsageDay {
    /// A UTC calendar day.
    #[schema(value_type = String, format = Date, example = "2026-11-24")]
    pub day: NaiveDate,
    pub events: u64,
    pub commands: u64,
    pub ai_tokens: u64,
}

impl From<UsageCounter> for UsageDay {
    fn from(u: UsageCounter) -> UsageDay {
        UsageDay {
            day: u.day,
            events: u.events,
            commands: u.commands,
            ai_tokens: u.ai_tokens,
        }
    }
}

/// One guild in full: its flags, settings, features and today's usage.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::asset_detail)]
pub struct AssetDetail {
    pub asset: Asset,
    pub settings: SettingsView,
    pub features: Vec<GuildFeatureView>,
    pub usage_today: UsageDay,
}

/// A tenant's guilds with plan and feature flags.
#[utoipa::path(get, path = "/tenants/{tenant_id}/assets", tag = "tenants", operation_id = "listTenantAssets",
    security(("session" = []), ("api_key" = [])),
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    responses((status = 200, description = "The tenant's guilds", body = [Asset]), CallerErrors,
        (status = 404, description = "Not the caller's tenant", body = ErrorBody)))]
pub async fn tenant_assets(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<Vec<Asset>>> {
    if tenant_id != caller.tenant_id() {
        return Err(ApiError::not_found(format!("tenant {tenant_id}")));
    }
    let mut assets = Vec::new();
    for guild in state.store().guilds_of_tenant(&tenant_id).await? {
        assets.push(asset_of(&state, guild).await?);
    }
    Ok(axum::Json(assets))
}

/// One guild: configuration, features and usage.
#[utoipa::path(get, path = "/assets/{guild_id}", tag = "tenants", operation_id = "getAsset",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    responses((status = 200, description = "The guild", body = AssetDetail), CallerErrors, GuildErrors))]
pub async fn asset(
    State(state): State<ApiState>,
    access: GuildAccess,
) -> ApiResult<axum::Json<AssetDetail>> {
    let guild_id = access.guild.id;
    let today = Utc::now().date_naive();
    let settings = super::guild::settings_view(&state, guild_id).await?;
    let features = state.store().guild_features(guild_id).await?;
    let usage_today = state
        .store()
        .usage(guild_id, today, today)
        .await?
        .pop()
        .map(UsageDay::from)
        .unwrap_or(UsageDay {
            day: today,
            events: 0,
            commands: 0,
            ai_tokens: 0,
        });
    Ok(axum::Json(AssetDetail {
        asset: asset_of(&state, access.guild).await?,
        settings,
        features: features.into_iter().map(Into::into).collect(),
        usage_today,
    }))
}

/// Enables a feature in the guild (seed 001's toggle). Approves what the body
/// lists, or keeps earlier approvals, or on a first install only the required
/// capabilities.
#[utoipa::path(post, path = "/assets/{guild_id}/features/{feature_id}/enable", tag = "tenants", operation_id = "enableAssetFeature",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), ("feature_id" = String, Path)),
    request_body(content = Option<InstallRequest>, description = "Optional approvals",
        example = examples::install_request),
    responses((status = 200, description = "Enabled", body = GuildFeatureView),
        CallerErrors, GuildErrors, BodyErrors))]
pub async fn enable_feature_route(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, feature_id)): Path<(String, String)>,
    MaybeJson(body): MaybeJson<InstallRequest>,
) -> ApiResult<axum::Json<GuildFeatureView>> {
    let request = body.unwrap_or_default();
    Ok(axum::Json(
        enable_feature(&state, &access, &feature_id, request).await?,
    ))
}

/// Disables a feature in the guild (seed 001's toggle).
#[utoipa::path(post, path = "/assets/{guild_id}/features/{feature_id}/disable", tag = "tenants", operation_id = "disableAssetFeature",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), ("feature_id" = String, Path)),
    responses((status = 200, description = "Disabled", body = GuildFeatureView),
        CallerErrors, GuildErrors,
        (status = 409, description = "Not installed in this guild", body = ErrorBody)))]
pub async fn disable_feature_route(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, feature_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<GuildFeatureView>> {
    Ok(axum::Json(
        disable_feature(&state, &access, &feature_id).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayRange {
    /// First day (UTC, included); 29 days before `to` when absent.
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<NaiveDate>,
    /// Last day (UTC, included); today when absent.
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<NaiveDate>,
}

/// The longest range one request may ask for.
const MAX_DAYS: u64 = 366;

/// Daily counters (events, commands, AI tokens); days without usage are absent.
#[utoipa::path(get, path = "/usage/{guild_id}/daily", tag = "tenants", operation_id = "getDailyUsage",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), DayRange),
    responses((status = 200, description = "One entry per day with usage, oldest first", body = [UsageDay]),
        CallerErrors, GuildErrors,
        (status = 422, description = "`from` after `to`, or more than 366 days", body = ErrorBody)))]
pub async fn daily_usage(
    State(state): State<ApiState>,
    access: GuildAccess,
    Query(range): Query<DayRange>,
) -> ApiResult<axum::Json<Vec<UsageDay>>> {
    let to = range.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = range
        .from
        .unwrap_or_else(|| to.checked_sub_days(Days::new(29)).unwrap_or(to));
    if from > to {
        return Err(ApiError::invalid("from", "`from` must not be after `to`"));
    }
    if (to - from).num_days() >= MAX_DAYS as i64 {
        return Err(ApiError::invalid(
            "from",
            format!("ask for at most {MAX_DAYS} days at a time"),
        ));
    }
    let days = state.store().usage(access.guild.id, from, to).await?;
    Ok(axum::Json(days.into_iter().map(Into::into).collect()))
}

#[derive(Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = examples::new_incident)]
pub struct NewIncidentRequest {
    /// Must be the caller's tenant.
    pub tenant_id: String,
    /// The guild concerned, if any; the caller must be allowed to manage it.
    pub guild_id: Option<Snowflake>,
    pub severity: Severity,
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// Up to 10,000 characters.
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: String,
}

#[derive(Serialize, ToSchema)]
#[schema(example = examples::incident)]
pub struct IncidentView {
    pub id: String,
    pub tenant_id: String,
    pub guild_id: Option<Snowflake>,
    #[schema(example = "high")]
    pub severity: String,
    pub title: String,
    pub description: String,
    #[schema(example = "open")]
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl From<Incident> for IncidentView {
    fn from(i: Incident) -> IncidentView {
        IncidentView {
            id: i.id,
            tenant_id: i.tenant_id,
            guild_id: i.guild_id.map(Snowflake),
            severity: i.severity,
            title: i.title,
            description: i.description,
            status: i.status,
            created_by: i.created_by,
            created_at: i.created_at,
        }
    }
}

/// Reports an incident for the caller's tenant (and optionally one of its guilds).
#[utoipa::path(post, path = "/incidents", tag = "tenants", operation_id = "createIncident",
    security(("session" = []), ("api_key" = [])),
    request_body = NewIncidentRequest,
    responses((status = 201, description = "Recorded", body = IncidentView),
        CallerErrors, GuildErrors, BodyErrors))]
pub async fn create_incident(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<NewIncidentRequest>,
) -> ApiResult<(StatusCode, axum::Json<IncidentView>)> {
    if body.tenant_id != caller.tenant_id() {
        return Err(ApiError::Forbidden(
            "incidents can only be reported for your own tenant (see GET /me)".into(),
        ));
    }
    if let Some(guild) = body.guild_id {
        crate::api::authz::authorize(&state, &caller, guild.0).await?;
    }
    let incident = state
        .store()
        .create_incident(&NewIncident {
            tenant_id: body.tenant_id,
            guild_id: body.guild_id.map(|g| g.0),
            severity: body.severity.as_str().into(),
            title: body.title,
            description: body.description,
            created_by: caller.actor(),
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(incident.into())))
}

/// The caller's tenant's incidents, newest first (at most 100).
#[utoipa::path(get, path = "/incidents", tag = "tenants", operation_id = "listIncidents",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "Incidents", body = [IncidentView]), CallerErrors))]
pub async fn list_incidents(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<IncidentView>>> {
    let incidents = state.store().incidents(caller.tenant_id(), 100).await?;
    Ok(axum::Json(incidents.into_iter().map(Into::into).collect()))
}
