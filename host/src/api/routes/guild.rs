//! Seed 002's guild endpoints: settings, role permissions, the audit log, and
//! the guild's emojis, roles, channels and members as the bot sees them.

use super::{BodyErrors, CallerErrors, GuildErrors};
use crate::api::ApiState;
use crate::api::authz::GuildAccess;
use crate::api::directory::{ChannelView, EmojiView, MemberView, RoleView};
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use crate::api::examples;
use crate::api::snowflake::Snowflake;
use crate::api::ws::announce;
use crate::live::LiveKind;
use crate::store::{AuditEntry, NewAuditEntry, RolePermission};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

/// Seed 002's module switches and the features they switch: a switch reads
/// and writes whether its feature is enabled in the guild. Custom commands
/// and auto-responders are one feature, so their two switches move together.
const MODULES: [(&str, &str); 6] = [
    ("moderation_enabled", "moderation"),
    ("levelling_enabled", "xp"),
    ("fun_enabled", "fun"),
    ("tickets_enabled", "tickets"),
    ("custom_commands_enabled", "custom-commands"),
    ("auto_responders_enabled", "custom-commands"),
];

/// A guild's command settings, and its modules' switches.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::settings)]
pub struct SettingsView {
    /// 1 to 5 characters without whitespace.
    #[schema(example = "!", pattern = r"^\S{1,5}$")]
    pub prefix: String,
    pub use_slash_commands: bool,
    /// Whether prefix commands still work while slash commands are on.
    pub allow_prefix_fallback: bool,
    /// 0 (none) to 86,400.
    pub global_cooldown_seconds: u32,
    /// `null` until saved once (defaults apply).
    pub updated_at: Option<DateTime<Utc>>,
    /// Whether the `moderation` feature is enabled here.
    pub moderation_enabled: bool,
    /// Whether `xp` (levels) is enabled here.
    pub levelling_enabled: bool,
    /// Whether `fun` is enabled here.
    pub fun_enabled: bool,
    /// Whether `tickets` is enabled here.
    pub tickets_enabled: bool,
    /// Whether `custom-commands` is enabled here.
    pub custom_commands_enabled: bool,
    /// Whether `custom-commands` (which holds the auto-responders) is
    /// enabled here: always `custom_commands_enabled`.
    pub auto_responders_enabled: bool,
}

/// The guild's settings with its modules' switches read from its features.
pub(super) async fn settings_view(state: &ApiState, guild_id: u64) -> ApiResult<SettingsView> {
    let s = state.store().guild_settings(guild_id).await?;
    let enabled: Vec<String> = state
        .store()
        .guild_features(guild_id)
        .await?
        .into_iter()
        .filter(|gf| gf.enabled)
        .map(|gf| gf.feature_id)
        .collect();
    let on = |field: &str| {
        MODULES
            .iter()
            .find(|(name, _)| *name == field)
            .is_some_and(|(_, feature)| enabled.iter().any(|e| e == feature))
    };
    Ok(SettingsView {
        prefix: s.prefix,
        use_slash_commands: s.use_slash_commands,
        allow_prefix_fallback: s.allow_prefix_fallback,
        global_cooldown_seconds: s.global_cooldown_seconds,
        updated_at: s.updated_at,
        moderation_enabled: on("moderation_enabled"),
        levelling_enabled: on("levelling_enabled"),
        fun_enabled: on("fun_enabled"),
        tickets_enabled: on("tickets_enabled"),
        custom_commands_enabled: on("custom_commands_enabled"),
        auto_responders_enabled: on("auto_responders_enabled"),
    })
}

/// Fields to change; the others keep their values.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::settings_update)]
pub struct SettingsUpdate {
    /// 1 to 5 characters without whitespace.
    #[schema(min_length = 1, max_length = 5, pattern = r"^\S{1,5}$")]
    pub prefix: Option<String>,
    pub use_slash_commands: Option<bool>,
    pub allow_prefix_fallback: Option<bool>,
    #[schema(minimum = 0, maximum = 86400)]
    pub global_cooldown_seconds: Option<u32>,
    /// Enables or disables `moderation` (a first enable approves what it
    /// requires, as the marketplace's enable does).
    pub moderation_enabled: Option<bool>,
    /// Enables or disables `xp`.
    pub levelling_enabled: Option<bool>,
    /// Enables or disables `fun`.
    pub fun_enabled: Option<bool>,
    /// Enables or disables `tickets`.
    pub tickets_enabled: Option<bool>,
    /// Enables or disables `custom-commands`.
    pub custom_commands_enabled: Option<bool>,
    /// Enables or disables `custom-commands`, as `custom_commands_enabled`
    /// does (one feature holds both); the two may not disagree.
    pub auto_responders_enabled: Option<bool>,
}

impl SettingsUpdate {
    /// The module switches this update sets, with their features.
    fn switches(&self) -> Vec<(&'static str, &'static str, bool)> {
        let values = [
            self.moderation_enabled,
            self.levelling_enabled,
            self.fun_enabled,
            self.tickets_enabled,
            self.custom_commands_enabled,
            self.auto_responders_enabled,
        ];
        MODULES
            .iter()
            .zip(values)
            .filter_map(|((field, feature), value)| Some((*field, *feature, value?)))
            .collect()
    }
}

/// The guild's command settings.
#[utoipa::path(get, path = "/api/guild/{guild_id}/settings", tag = "guild settings", operation_id = "getGuildSettings",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    responses((status = 200, description = "Settings", body = SettingsView), CallerErrors, GuildErrors))]
pub async fn settings(
    State(state): State<ApiState>,
    access: GuildAccess,
) -> ApiResult<axum::Json<SettingsView>> {
    Ok(axum::Json(settings_view(&state, access.guild.id).await?))
}

/// Changes the guild's command settings and switches its modules (audited,
/// and announced live). A module switch enables or disables its feature
/// exactly as the marketplace routes do; one that cannot (the feature is not
/// on this platform, or refuses to start) answers 409 naming it, after the
/// command settings and the switches before it were saved.
#[utoipa::path(put, path = "/api/guild/{guild_id}/settings", tag = "guild settings", operation_id = "updateGuildSettings",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    request_body = SettingsUpdate,
    responses((status = 200, description = "Saved", body = SettingsView), CallerErrors, GuildErrors, BodyErrors))]
pub async fn update_settings(
    State(state): State<ApiState>,
    access: GuildAccess,
    Json(update): Json<SettingsUpdate>,
) -> ApiResult<axum::Json<SettingsView>> {
    let guild_id = access.guild.id;
    let switches = update.switches();
    if let (Some(commands), Some(responders)) = (
        update.custom_commands_enabled,
        update.auto_responders_enabled,
    ) && commands != responders
    {
        return Err(ApiError::invalid(
            "/auto_responders_enabled",
            "custom commands and auto-responders are one feature (`custom-commands`): \
             switch them together",
        ));
    }
    let mut settings = state.store().guild_settings(guild_id).await?;
    if let Some(prefix) = update.prefix {
        settings.prefix = prefix;
    }
    if let Some(v) = update.use_slash_commands {
        settings.use_slash_commands = v;
    }
    if let Some(v) = update.allow_prefix_fallback {
        settings.allow_prefix_fallback = v;
    }
    if let Some(v) = update.global_cooldown_seconds {
        settings.global_cooldown_seconds = v;
    }
    state
        .store()
        .set_guild_settings(&settings)
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Invalid { message, .. } => {
                let field = ["prefix", "global_cooldown_seconds"]
                    .into_iter()
                    .find(|f| message.starts_with(f))
                    .unwrap_or("");
                ApiError::invalid(format!("/{field}"), message)
            }
            other => other,
        })?;
    for (field, feature, on) in switches {
        let enabled = state
            .store()
            .guild_feature(guild_id, feature)
            .await?
            .is_some_and(|gf| gf.enabled);
        let switched = match (on, enabled) {
            (true, false) => {
                super::marketplace::enable_feature(&state, &access, feature, Default::default())
                    .await
                    .map(drop)
            }
            (false, true) => super::marketplace::disable_feature(&state, &access, feature)
                .await
                .map(drop),
            _ => Ok(()),
        };
        switched.map_err(|error| match error {
            ApiError::Internal(e) => ApiError::Internal(e),
            refused => ApiError::Conflict {
                message: format!("{field}: {refused}"),
                hint: Some(format!(
                    "`{field}` switches the `{feature}` feature; see it in the marketplace"
                )),
            },
        })?;
    }
    let saved = settings_view(&state, guild_id).await?;
    let as_json = serde_json::to_value(&saved).map_err(ApiError::internal)?;
    audit(&state, &access, "settings.updated", None, as_json.clone()).await?;
    announce(
        &state,
        guild_id,
        LiveKind::SettingsUpdate,
        json!({ "settings": as_json }),
    );
    Ok(axum::Json(saved))
}

pub(super) async fn audit(
    state: &ApiState,
    access: &GuildAccess,
    action: &str,
    feature_id: Option<&str>,
    details: Value,
) -> ApiResult<()> {
    state
        .store()
        .audit(&NewAuditEntry {
            guild_id: Some(access.guild.id),
            actor: access.caller.actor(),
            action: action.into(),
            feature_id: feature_id.map(str::to_string),
            details,
        })
        .await?;
    Ok(())
}

/// A role allowed to use a command group (a feature id or a command name).
#[derive(Serialize, ToSchema)]
#[schema(example = examples::permission)]
pub struct PermissionView {
    /// `<role id>:<command group>`; use it to delete the permission.
    #[schema(example = "1100000000000000002:moderation")]
    pub id: String,
    pub role_id: Snowflake,
    pub command_group: String,
}

impl From<RolePermission> for PermissionView {
    fn from(p: RolePermission) -> PermissionView {
        PermissionView {
            id: format!("{}:{}", p.role_id, p.command_group),
            role_id: Snowflake(p.role_id),
            command_group: p.command_group,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::new_permission)]
pub struct NewPermission {
    pub role_id: Snowflake,
    /// A feature id or a command name; 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub command_group: String,
}

/// Which roles may use which command groups.
#[utoipa::path(get, path = "/api/guild/{guild_id}/permissions", tag = "guild settings", operation_id = "listPermissions",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    responses((status = 200, description = "Role permissions", body = [PermissionView]), CallerErrors, GuildErrors))]
pub async fn permissions(
    State(state): State<ApiState>,
    access: GuildAccess,
) -> ApiResult<axum::Json<Vec<PermissionView>>> {
    let permissions = state.store().role_permissions(access.guild.id).await?;
    Ok(axum::Json(
        permissions.into_iter().map(Into::into).collect(),
    ))
}

/// Lets a role use a command group (granting it again changes nothing).
#[utoipa::path(post, path = "/api/guild/{guild_id}/permissions", tag = "guild settings", operation_id = "grantPermission",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    request_body = NewPermission,
    responses((status = 201, description = "Granted", body = PermissionView), CallerErrors, GuildErrors, BodyErrors))]
pub async fn grant_permission(
    State(state): State<ApiState>,
    access: GuildAccess,
    Json(body): Json<NewPermission>,
) -> ApiResult<(StatusCode, axum::Json<PermissionView>)> {
    let guild_id = access.guild.id;
    state
        .store()
        .grant_role_permission(guild_id, body.role_id.0, &body.command_group)
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Invalid { message, .. } => ApiError::invalid("/command_group", message),
            other => other,
        })?;
    let view = PermissionView::from(RolePermission {
        guild_id,
        role_id: body.role_id.0,
        command_group: body.command_group,
    });
    audit(
        &state,
        &access,
        "permission.granted",
        None,
        json!({ "role_id": view.role_id, "command_group": view.command_group }),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// Takes a command group away from a role.
#[utoipa::path(delete, path = "/api/guild/{guild_id}/permissions/{permission_id}", tag = "guild settings", operation_id = "revokePermission",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path),
        ("permission_id" = String, Path, description = "`<role id>:<command group>`")),
    responses((status = 204, description = "Revoked"), CallerErrors, GuildErrors))]
pub async fn revoke_permission(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, permission_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let not_found = || ApiError::not_found(format!("permission {permission_id}"));
    let (role, group) = permission_id.split_once(':').ok_or_else(not_found)?;
    let role: u64 = role.parse().map_err(|_| not_found())?;
    if !state
        .store()
        .revoke_role_permission(access.guild.id, role, group)
        .await?
    {
        return Err(not_found());
    }
    audit(
        &state,
        &access,
        "permission.revoked",
        None,
        json!({ "role_id": Snowflake(role), "command_group": group }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One audit-log entry.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::audit_entry)]
pub struct AuditEntryView {
    pub id: i64,
    pub guild_id: Option<Snowflake>,
    /// Who did it: `user:<id>`, `api-key:<id>`, `cli`, `feature:<id>`, `host`.
    pub actor: String,
    #[schema(example = "feature.enabled")]
    pub action: String,
    pub feature_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
    pub created_at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> AuditEntryView {
        AuditEntryView {
            id: e.id,
            guild_id: e.guild_id.map(Snowflake),
            actor: e.actor,
            action: e.action,
            feature_id: e.feature_id,
            details: e.details,
            created_at: e.created_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditPage {
    /// Only entries older than this id (the last id of the previous page).
    pub before: Option<i64>,
    /// 1 to 100; 50 when absent.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// The guild's audit log, newest first, a page at a time.
#[utoipa::path(get, path = "/api/guild/{guild_id}/audit-logs", tag = "guild settings", operation_id = "listAuditLogs",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), AuditPage),
    responses((status = 200, description = "Entries", body = [AuditEntryView]), CallerErrors, GuildErrors,
        (status = 422, description = "`limit` out of range", body = ErrorBody)))]
pub async fn audit_logs(
    State(state): State<ApiState>,
    access: GuildAccess,
    Query(page): Query<AuditPage>,
) -> ApiResult<axum::Json<Vec<AuditEntryView>>> {
    let limit = page.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "`limit` must be 1 to 100"));
    }
    let entries = state
        .store()
        .audit_page(access.guild.id, page.before, limit)
        .await?;
    Ok(axum::Json(entries.into_iter().map(Into::into).collect()))
}

/// One audit-log entry of the guild.
#[utoipa::path(get, path = "/api/guild/{guild_id}/audit-logs/{entry_id}", tag = "guild settings", operation_id = "getAuditLogEntry",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), ("entry_id" = i64, Path)),
    responses((status = 200, description = "The entry", body = AuditEntryView), CallerErrors, GuildErrors))]
pub async fn audit_log(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, entry_id)): Path<(String, i64)>,
) -> ApiResult<axum::Json<AuditEntryView>> {
    let entry = state
        .store()
        .audit_entry(access.guild.id, entry_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("audit entry {entry_id}")))?;
    Ok(axum::Json(entry.into()))
}

/// The guild's custom emojis.
#[utoipa::path(get, path = "/api/guild/{guild_id}/emojis", tag = "guild data", operation_id = "listGuildEmojis",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    responses((status = 200, description = "Emojis", body = [EmojiView]), CallerErrors, GuildErrors))]
pub async fn emojis(
    State(state): State<ApiState>,
    access: GuildAccess,
) -> ApiResult<axum::Json<Vec<EmojiView>>> {
    Ok(axum::Json(state.directory().emojis(access.guild.id).await?))
}

/// The guild's roles, most powerful first.
#[utoipa::path(get, path = "/api/guild/{guild_id}/roles", tag = "guild data", operation_id = "listGuildRoles",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    responses((status = 200, description = "Roles", body = [RoleView], example = examples::roles),
        CallerErrors, GuildErrors))]
pub async fn roles(
    State(state): State<ApiState>,
    access: GuildAccess,
) -> ApiResult<axum::Json<Vec<RoleView>>> {
    Ok(axum::Json(state.directory().roles(access.guild.id).await?))
}

/// The guild's channels, in Discord's order.
#[utoipa::path(get, path = "/api/guild/{guild_id}/channels", tag = "guild data", operation_id = "listGuildChannels",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    responses((status = 200, description = "Channels", body = [ChannelView], example = examples::channels),
        CallerErrors, GuildErrors))]
pub async fn channels(
    State(state): State<ApiState>,
    access: GuildAccess,
) -> ApiResult<axum::Json<Vec<ChannelView>>> {
    Ok(axum::Json(
        state.directory().channels(access.guild.id).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberPage {
    /// 1 to 1,000; 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only members with a user id above this (the last id of the previous page).
    #[param(value_type = Option<String>, pattern = "^[0-9]{1,19}$")]
    pub after: Option<Snowflake>,
}

/// The guild's members by user id, a page at a time.
#[utoipa::path(get, path = "/api/guild/{guild_id}/members", tag = "guild data", operation_id = "listGuildMembers",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), MemberPage),
    responses((status = 200, description = "Members", body = [MemberView], example = examples::members),
        CallerErrors, GuildErrors,
        (status = 422, description = "`limit` out of range", body = ErrorBody)))]
pub async fn members(
    State(state): State<ApiState>,
    access: GuildAccess,
    Query(page): Query<MemberPage>,
) -> ApiResult<axum::Json<Vec<MemberView>>> {
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "`limit` must be 1 to 1000"));
    }
    let after = page.after.map_or(0, |a| a.0);
    Ok(axum::Json(
        state
            .directory()
            .members(access.guild.id, limit, after)
            .await?,
    ))
}
