//! The marketplace: the catalogue, a feature's manifest and what it asks for,
//! and per-guild install, enable, disable, upgrade and configuration. Approvals
//! travel with the call that needs them, so a feature is never enabled with
//! more (or less) than the admin saw.

use super::{BodyErrors, CallerErrors, GuildErrors};
use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::authz::GuildAccess;
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, MaybeJson, Path, Query};
use crate::api::examples;
use crate::api::snowflake::Snowflake;
use crate::api::ws::announce;
use crate::gateway;
use crate::grants::{ALL_CAPABILITIES, Approval, capability_name, parse_capability};
use crate::live::LiveKind;
use crate::marketplace::Marketplace;
use crate::store::GuildFeature;
use crate::wit::Manifest;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

/// A capability's name as the API spells it (`messages`, `message-content`, …).
/// Only a schema: the values are strings, and an unknown one is refused with
/// 422 naming it.
pub struct CapabilityName;

impl utoipa::PartialSchema for CapabilityName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ALL_CAPABILITIES.map(capability_name)))
            .description(Some("What a feature may do in a guild."))
            .into()
    }
}

impl ToSchema for CapabilityName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Capability")
    }
}

#[derive(Serialize, ToSchema)]
#[schema(example = examples::version)]
pub struct VersionView {
    #[schema(example = "1.2.0")]
    pub version: String,
    /// Offered for new installs.
    pub published: bool,
    /// Hex sha256 of the component.
    pub sha256: String,
    pub size_bytes: u64,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = examples::catalogue_entry)]
pub struct CatalogueEntry {
    #[schema(example = "welcome")]
    pub id: String,
    pub name: String,
    pub description: String,
    /// Shipped with the platform.
    pub builtin: bool,
    pub publisher: Option<String>,
    /// The newest published version; `null` when none is published.
    pub latest_version: Option<String>,
    /// Newest first.
    pub versions: Vec<VersionView>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = examples::capability_request)]
pub struct CapabilityRequestView {
    #[schema(value_type = CapabilityName)]
    pub capability: String,
    /// Must be approved to enable the feature.
    pub required: bool,
    /// Why the feature asks, for the admin.
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
#[schema(example = examples::command)]
pub struct CommandView {
    pub name: String,
    pub description: String,
}

/// An interface a feature asks for by importing it (contract 0.1.4, ADR
/// 0024): it carries no reason of the feature's own, so the host describes it.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::requested_import)]
pub struct RequestedImportView {
    /// `ai` or `http`.
    pub interface: String,
    /// What approving it allows, in the host's words.
    pub description: String,
}

impl RequestedImportView {
    fn of(interface: String) -> RequestedImportView {
        let description = match interface.as_str() {
            "http" => {
                "send HTTPS requests to the host names you approve (public addresses only; answers up to 1 MiB)"
            }
            "ai" => {
                "ask the platform's AI model for chat completions, metered against this server's caps"
            }
            _ => "an interface this host describes no further",
        };
        RequestedImportView {
            interface,
            description: description.into(),
        }
    }
}

/// One version of a feature as its manifest describes it.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::feature_detail)]
pub struct FeatureDetail {
    pub id: String,
    pub version: String,
    pub name: String,
    pub description: String,
    pub commands: Vec<CommandView>,
    /// The gateway events it handles.
    pub events: Vec<String>,
    /// What it asks to be allowed to do.
    pub capabilities: Vec<CapabilityRequestView>,
    /// What it asks for by importing it (`ai`, `http`): approved with the
    /// approval's `ai` and `http_hosts`.
    pub imports: Vec<RequestedImportView>,
    /// JSON Schema (2020-12) of its configuration.
    #[schema(value_type = Object)]
    pub config_schema: Value,
    #[schema(value_type = Object)]
    pub default_config: Value,
}

impl FeatureDetail {
    fn from_manifest(m: Manifest, imports: Vec<String>) -> FeatureDetail {
        FeatureDetail {
            imports: imports.into_iter().map(RequestedImportView::of).collect(),
            config_schema: serde_json::from_str(&m.config_schema).unwrap_or(Value::Null),
            default_config: serde_json::from_str(&m.default_config).unwrap_or(Value::Null),
            commands: m
                .commands
                .into_iter()
                .map(|c| CommandView {
                    name: c.name,
                    description: c.description,
                })
                .collect(),
            events: m
                .events
                .iter()
                .map(|e| {
                    serde_json::to_value(e)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_else(|| format!("{e:?}"))
                })
                .collect(),
            capabilities: m
                .capabilities
                .iter()
                .map(|r| CapabilityRequestView {
                    capability: capability_name(r.capability).into(),
                    required: r.required,
                    reason: r.reason.clone(),
                })
                .collect(),
            id: m.id,
            version: m.version,
            name: m.name,
            description: m.description,
        }
    }
}

/// A feature as set up in one guild.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::guild_feature)]
pub struct GuildFeatureView {
    pub feature_id: String,
    pub version: String,
    pub enabled: bool,
    /// The approved capabilities.
    #[schema(value_type = Vec<CapabilityName>)]
    pub capabilities: Vec<String>,
    /// Channels it may post in; `null` means every channel.
    pub channels: Option<Vec<Snowflake>>,
    /// It may only manage roles below this one.
    pub role_ceiling: Option<Snowflake>,
    /// Dangerous permission bits it may hand out through roles and overwrites
    /// (Discord's decimal string; `"0"`: none).
    pub elevated_permissions: Snowflake,
    /// Roles whose mentions in its messages notify their members.
    pub mention_roles: Vec<Snowflake>,
    /// It may call `ai` (contract 0.1.4).
    pub ai: bool,
    /// Hosts it may reach with `http` (contract 0.1.4).
    pub http_hosts: Vec<String>,
    /// Its configuration; `null` until one is saved (the default applies).
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// The version before the last upgrade.
    pub previous_version: Option<String>,
    /// Set while the circuit breaker keeps it switched off after repeated faults.
    pub breaker_open_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Why the enabled feature will not receive everything it asked for, with
    /// the fix — for example a privileged gateway intent Discord refused for
    /// this bot; `null` when nothing stands in its way.
    pub notice: Option<String>,
}

impl GuildFeatureView {
    /// The view with its [`GuildFeatureView::notice`], which only a process
    /// running the gateway knows.
    async fn noticed(state: &ApiState, gf: GuildFeature) -> GuildFeatureView {
        let notice = match state.platform() {
            Some(platform) if gf.enabled => state
                .runtime()
                .manifest(&gf.feature_id, &gf.version)
                .await
                .ok()
                .and_then(|manifest| {
                    platform.intents.notice(gateway::feature_intents(
                        &manifest.events,
                        &gf.grants.capabilities,
                    ))
                }),
            _ => None,
        };
        GuildFeatureView {
            notice,
            ..gf.into()
        }
    }
}

impl From<GuildFeature> for GuildFeatureView {
    fn from(gf: GuildFeature) -> GuildFeatureView {
        let approval = gf.grants;
        GuildFeatureView {
            feature_id: gf.feature_id,
            version: gf.version,
            enabled: gf.enabled,
            capabilities: approval.capabilities.into(),
            channels: approval
                .channels
                .map(|c| c.into_iter().map(Snowflake).collect()),
            role_ceiling: approval.role_ceiling.map(Snowflake),
            elevated_permissions: Snowflake(approval.elevated_permissions),
            mention_roles: approval.mention_roles.into_iter().map(Snowflake).collect(),
            ai: approval.ai,
            http_hosts: approval.http_hosts,
            config: gf.config,
            previous_version: gf.previous_version,
            breaker_open_until: gf.breaker_open_until,
            updated_at: gf.updated_at,
            notice: None,
        }
    }
}

/// What the admin approves, with an optional version.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::install_request)]
pub struct InstallRequest {
    /// A version from the catalogue; the newest published one when absent.
    pub version: Option<String>,
    /// Capabilities approved. When absent: the ones already approved in this
    /// guild, or, on a first install, only the required ones.
    #[schema(value_type = Option<Vec<CapabilityName>>)]
    pub capabilities: Option<Vec<String>>,
    /// Channels it may post in; absent or `null`: every channel.
    pub channels: Option<Vec<Snowflake>>,
    /// It may only manage roles strictly below this role.
    pub role_ceiling: Option<Snowflake>,
    /// Dangerous permission bits (Manage Server, Ban, Manage Roles, …; Discord's
    /// decimal string) it may hand out through roles and overwrites anyway.
    /// Administrator is never allowed. Absent: none.
    pub elevated_permissions: Option<Snowflake>,
    /// Roles whose mentions in its messages notify their members (an
    /// announcement's role ping, say); any other role mention shows without
    /// notifying. Never @everyone. Absent: none.
    pub mention_roles: Option<Vec<Snowflake>>,
    /// It may call the `ai` interface (contract 0.1.4), metered against the
    /// guild's daily AI tokens. Absent: no.
    pub ai: Option<bool>,
    /// Host names it may reach with the `http` interface (contract 0.1.4):
    /// lower-case DNS names, no IP addresses, at most 16. Absent: none.
    pub http_hosts: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::upgrade_request)]
pub struct UpgradeRequest {
    /// The version to move to.
    pub version: String,
    /// New approvals, for a version that asks for more; absent keeps the current ones.
    #[schema(value_type = Option<Vec<CapabilityName>>)]
    pub capabilities: Option<Vec<String>>,
    pub channels: Option<Vec<Snowflake>>,
    pub role_ceiling: Option<Snowflake>,
    pub elevated_permissions: Option<Snowflake>,
    pub mention_roles: Option<Vec<Snowflake>>,
    pub ai: Option<bool>,
    pub http_hosts: Option<Vec<String>>,
}

/// The scopes a request sets beside its capabilities.
struct Scopes {
    channels: Option<Vec<Snowflake>>,
    role_ceiling: Option<Snowflake>,
    elevated_permissions: Option<Snowflake>,
    mention_roles: Option<Vec<Snowflake>>,
    ai: Option<bool>,
    http_hosts: Option<Vec<String>>,
}

/// Generates `scopes()` for a request type with the scope fields.
macro_rules! scopes_of {
    ($request:ty) => {
        impl $request {
            fn scopes(&mut self) -> Scopes {
                Scopes {
                    channels: self.channels.take(),
                    role_ceiling: self.role_ceiling.take(),
                    elevated_permissions: self.elevated_permissions.take(),
                    mention_roles: self.mention_roles.take(),
                    ai: self.ai.take(),
                    http_hosts: self.http_hosts.take(),
                }
            }
        }
    };
}
scopes_of!(InstallRequest);
scopes_of!(UpgradeRequest);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// A version; the newest published one when absent.
    pub version: Option<String>,
}

/// The approval a request describes for a feature in `guild_id`.
fn approval(guild_id: u64, capabilities: Vec<String>, scopes: Scopes) -> ApiResult<Approval> {
    let Scopes {
        channels,
        role_ceiling,
        elevated_permissions,
        mention_roles,
        ai,
        http_hosts,
    } = scopes;
    let http_hosts = http_hosts_approved(http_hosts.unwrap_or_default())?;
    let mention_roles: Vec<u64> = mention_roles
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.0)
        .collect();
    if let Some(i) = mention_roles.iter().position(|r| *r == guild_id) {
        return Err(ApiError::Invalid {
            message: "a feature may never notify @everyone".into(),
            problems: vec![crate::api::error::Problem {
                path: format!("/mention_roles/{i}"),
                message: "this is the guild's @everyone role; list the roles to notify instead"
                    .into(),
            }],
        });
    }
    let mut problems = Vec::new();
    let mut parsed = Vec::new();
    for (i, name) in capabilities.iter().enumerate() {
        match parse_capability(name) {
            Ok(c) => parsed.push(c),
            Err(why) => problems.push(crate::api::error::Problem {
                path: format!("/capabilities/{i}"),
                message: why,
            }),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Invalid {
            message: "unknown capabilities".into(),
            problems,
        });
    }
    Ok(Approval {
        capabilities: parsed.into_iter().collect(),
        channels: channels.map(|c| c.into_iter().map(|s| s.0).collect()),
        role_ceiling: role_ceiling.map(|s| s.0),
        // Administrator is never allowed; the grant drops it too.
        elevated_permissions: elevated_permissions.map_or(0, |s| s.0)
            & !crate::discord::permissions::ADMINISTRATOR,
        mention_roles,
        ai: ai.unwrap_or(false),
        http_hosts,
    })
}

/// The most hosts one approval may list for `http`.
const MAX_HTTP_HOSTS: usize = 16;

/// The approved `http` hosts, lower-cased: DNS names only, so the address
/// checks after resolution always run (an IP literal would skip DNS).
fn http_hosts_approved(hosts: Vec<String>) -> ApiResult<Vec<String>> {
    if hosts.len() > MAX_HTTP_HOSTS {
        return Err(ApiError::Invalid {
            message: format!("at most {MAX_HTTP_HOSTS} http hosts may be approved"),
            problems: Vec::new(),
        });
    }
    let mut problems = Vec::new();
    let mut approved = Vec::new();
    for (i, host) in hosts.into_iter().enumerate() {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        match townes_limits::http::check_host_name(&host) {
            Ok(()) if !approved.contains(&host) => approved.push(host),
            Ok(()) => {}
            Err(why) => problems.push(crate::api::error::Problem {
                path: format!("/http_hosts/{i}"),
                message: why.0,
            }),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Invalid {
            message: "invalid http hosts".into(),
            problems,
        });
    }
    Ok(approved)
}

fn market<'s>(state: &'s ApiState, caller: &Caller) -> Marketplace<'s> {
    Marketplace::new(state.runtime(), caller.actor())
}

/// The catalogue: every feature and its versions.
#[utoipa::path(get, path = "/api/marketplace/features", tag = "marketplace", operation_id = "listCatalogue",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "The catalogue", body = [CatalogueEntry]), CallerErrors))]
pub async fn catalogue(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<CatalogueEntry>>> {
    let entries = market(&state, &caller).catalogue().await?;
    Ok(axum::Json(
        entries
            .into_iter()
            .map(|e| CatalogueEntry {
                latest_version: e
                    .versions
                    .iter()
                    .find(|v| v.published)
                    .map(|v| v.version.clone()),
                versions: e
                    .versions
                    .into_iter()
                    .map(|v| VersionView {
                        version: v.version,
                        published: v.published,
                        sha256: v.sha256,
                        size_bytes: v.size_bytes,
                        created_at: v.created_at,
                    })
                    .collect(),
                id: e.feature.id,
                name: e.feature.name,
                description: e.feature.description,
                builtin: e.feature.builtin,
                publisher: e.feature.publisher,
            })
            .collect(),
    ))
}

/// A feature's manifest: commands, events, the capabilities it requests and why,
/// and its configuration schema.
#[utoipa::path(get, path = "/api/marketplace/features/{feature_id}", tag = "marketplace", operation_id = "getCatalogueFeature",
    security(("session" = []), ("api_key" = [])),
    params(("feature_id" = String, Path, description = "The feature's id"), VersionQuery),
    responses((status = 200, description = "The manifest", body = FeatureDetail), CallerErrors,
        (status = 404, description = "No such feature or version", body = ErrorBody)))]
pub async fn feature(
    State(state): State<ApiState>,
    caller: Caller,
    Path(feature_id): Path<String>,
    Query(query): Query<VersionQuery>,
) -> ApiResult<axum::Json<FeatureDetail>> {
    let (version, _) = market(&state, &caller)
        .requests(&feature_id, query.version.as_deref())
        .await?;
    let manifest = state
        .runtime()
        .manifest(&feature_id, &version)
        .await
        .map_err(ApiError::Internal)?;
    let imports = state
        .runtime()
        .requested_imports(&feature_id, &version)
        .await
        .map_err(ApiError::Internal)?;
    Ok(axum::Json(FeatureDetail::from_manifest(manifest, imports)))
}

/// The features installed in a guild.
#[utoipa::path(get, path = "/api/guild/{guild_id}/features", tag = "marketplace", operation_id = "listGuildFeatures",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    responses((status = 200, description = "Installed features", body = [GuildFeatureView]),
        CallerErrors, GuildErrors))]
pub async fn guild_features(
    State(state): State<ApiState>,
    access: GuildAccess,
) -> ApiResult<axum::Json<Vec<GuildFeatureView>>> {
    let mut views = Vec::new();
    for gf in state.store().guild_features(access.guild.id).await? {
        views.push(GuildFeatureView::noticed(&state, gf).await);
    }
    Ok(axum::Json(views))
}

/// Installs (or re-enables) a feature in the guild with the approvals given.
pub async fn enable_feature(
    state: &ApiState,
    access: &GuildAccess,
    feature_id: &str,
    mut request: InstallRequest,
) -> ApiResult<GuildFeatureView> {
    let guild_id = access.guild.id;
    let market = market(state, &access.caller);
    let existing = state.store().guild_feature(guild_id, feature_id).await?;
    let scopes = request.scopes();
    let approval = match (request.capabilities, &existing) {
        (Some(capabilities), _) => approval(guild_id, capabilities, scopes)?,
        (None, Some(existing)) => existing.grants.clone(),
        (None, None) => {
            let (_, requests) = market
                .requests(feature_id, request.version.as_deref())
                .await?;
            Approval {
                capabilities: requests
                    .iter()
                    .filter(|r| r.required)
                    .map(|r| r.capability)
                    .collect(),
                ..approval(guild_id, Vec::new(), scopes)?
            }
        }
    };
    let version = request
        .version
        .or_else(|| existing.as_ref().map(|e| e.version.clone()));
    let enabled = market
        .enable(guild_id, feature_id, version.as_deref(), approval)
        .await?;
    announce(
        state,
        guild_id,
        LiveKind::FeatureToggled,
        json!({ "feature_id": feature_id, "enabled": true, "version": enabled.version }),
    );
    Ok(GuildFeatureView::noticed(state, enabled).await)
}

pub async fn disable_feature(
    state: &ApiState,
    access: &GuildAccess,
    feature_id: &str,
) -> ApiResult<GuildFeatureView> {
    let guild_id = access.guild.id;
    market(state, &access.caller)
        .disable(guild_id, feature_id)
        .await?;
    let disabled = state
        .store()
        .guild_feature(guild_id, feature_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("feature {feature_id} in this guild")))?;
    announce(
        state,
        guild_id,
        LiveKind::FeatureToggled,
        json!({ "feature_id": feature_id, "enabled": false, "version": disabled.version }),
    );
    Ok(disabled.into())
}

/// Installs a feature in the guild, approving its capabilities in the same call.
#[utoipa::path(post, path = "/api/guild/{guild_id}/features/{feature_id}/install", tag = "marketplace", operation_id = "installFeature",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), ("feature_id" = String, Path)),
    request_body = InstallRequest,
    responses((status = 200, description = "Installed and enabled", body = GuildFeatureView),
        CallerErrors, GuildErrors, BodyErrors))]
pub async fn install(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, feature_id)): Path<(String, String)>,
    Json(request): Json<InstallRequest>,
) -> ApiResult<axum::Json<GuildFeatureView>> {
    Ok(axum::Json(
        enable_feature(&state, &access, &feature_id, request).await?,
    ))
}

/// Enables a feature; with a body, replaces its approvals in the same step.
#[utoipa::path(post, path = "/api/guild/{guild_id}/features/{feature_id}/enable", tag = "marketplace", operation_id = "enableFeature",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), ("feature_id" = String, Path)),
    request_body(content = Option<InstallRequest>, description = "Optional approvals",
        example = examples::install_request),
    responses((status = 200, description = "Enabled", body = GuildFeatureView),
        CallerErrors, GuildErrors, BodyErrors))]
pub async fn enable(
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

/// Disables a feature; its approvals and configuration are kept.
#[utoipa::path(post, path = "/api/guild/{guild_id}/features/{feature_id}/disable", tag = "marketplace", operation_id = "disableFeature",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), ("feature_id" = String, Path)),
    responses((status = 200, description = "Disabled", body = GuildFeatureView),
        CallerErrors, GuildErrors,
        (status = 409, description = "Not installed in this guild", body = ErrorBody)))]
pub async fn disable(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, feature_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<GuildFeatureView>> {
    Ok(axum::Json(
        disable_feature(&state, &access, &feature_id).await?,
    ))
}

/// Moves the guild to another version (running its `migrate`), optionally
/// approving what the new version asks for in the same step.
#[utoipa::path(post, path = "/api/guild/{guild_id}/features/{feature_id}/upgrade", tag = "marketplace", operation_id = "upgradeFeature",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), ("feature_id" = String, Path)),
    request_body = UpgradeRequest,
    responses((status = 200, description = "Upgraded", body = GuildFeatureView),
        CallerErrors, GuildErrors, BodyErrors,
        (status = 409, description = "Not installed, already on that version, migrate failed, or changed by others throughout", body = ErrorBody)))]
pub async fn upgrade(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, feature_id)): Path<(String, String)>,
    Json(mut request): Json<UpgradeRequest>,
) -> ApiResult<axum::Json<GuildFeatureView>> {
    let guild_id = access.guild.id;
    let scopes = request.scopes();
    let approval = match request.capabilities.take() {
        Some(capabilities) => Some(approval(guild_id, capabilities, scopes)?),
        None => None,
    };
    let upgraded = market(&state, &access.caller)
        .upgrade_with(guild_id, &feature_id, &request.version, approval)
        .await?;
    announce(
        &state,
        guild_id,
        LiveKind::FeatureToggled,
        json!({ "feature_id": feature_id, "enabled": upgraded.enabled, "version": upgraded.version }),
    );
    Ok(axum::Json(upgraded.into()))
}

/// The feature's configuration in this guild (its default until one is saved).
#[utoipa::path(get, path = "/api/guild/{guild_id}/features/{feature_id}/config", tag = "marketplace", operation_id = "getFeatureConfig",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), ("feature_id" = String, Path)),
    responses((status = 200, description = "The configuration", body = Object,
            example = examples::welcome_config),
        CallerErrors, GuildErrors,
        (status = 409, description = "Not installed in this guild", body = ErrorBody)))]
pub async fn config(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, feature_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let gf = state
        .store()
        .guild_feature(access.guild.id, &feature_id)
        .await?
        .ok_or_else(|| ApiError::Conflict {
            message: format!("feature `{feature_id}` is not installed in this guild"),
            hint: Some("install it first".into()),
        })?;
    if let Some(config) = gf.config {
        return Ok(axum::Json(config));
    }
    let manifest = state
        .runtime()
        .manifest(&feature_id, &gf.version)
        .await
        .map_err(ApiError::Internal)?;
    Ok(axum::Json(
        serde_json::from_str(&manifest.default_config).unwrap_or(Value::Null),
    ))
}

/// Replaces the feature's configuration after checking it against the
/// feature's schema; each refused value is named by its JSON pointer.
#[utoipa::path(put, path = "/api/guild/{guild_id}/features/{feature_id}/config", tag = "marketplace", operation_id = "setFeatureConfig",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), ("feature_id" = String, Path)),
    request_body(content = Object, description = "The whole configuration",
        example = examples::welcome_config),
    responses((status = 200, description = "Saved", body = Object, example = examples::welcome_config),
        CallerErrors, GuildErrors, BodyErrors,
        (status = 409, description = "Not installed in this guild, or changed by others throughout", body = ErrorBody)))]
pub async fn set_config(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, feature_id)): Path<(String, String)>,
    Json(config): Json<Value>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let guild_id = access.guild.id;
    market(&state, &access.caller)
        .set_config(guild_id, &feature_id, config.clone())
        .await?;
    announce(
        &state,
        guild_id,
        LiveKind::SettingsUpdate,
        json!({ "feature_id": feature_id, "config": config }),
    );
    Ok((StatusCode::OK, axum::Json(config)))
}
