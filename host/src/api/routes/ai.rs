//! A guild's AI settings: its own API key for the platform's AI endpoint
//! (set, removed, and whether one is set: never the key or any part of it)
//! and its admins' daily caps. Guild managers only, like every guild route.

use super::guild::audit;
use super::{BodyErrors, CallerErrors, GuildErrors};
use crate::ai::KeyError;
use crate::api::ApiState;
use crate::api::authz::GuildAccess;
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json};
use crate::api::examples;
#[allow(unused_imports)] // Named by the OpenAPI annotations.
use crate::api::snowflake::Snowflake;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// Whether the guild has its own AI key: never the key, nor any part of it.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::ai_key)]
pub struct AiKeyView {
    pub set: bool,
    /// When it was set; `null` when none is.
    pub set_at: Option<DateTime<Utc>>,
    /// Who set it (`user:<id>` or `api-key:<id>`); `null` when none is.
    pub set_by: Option<String>,
}

/// The guild's own key for the platform's AI endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::ai_key_update)]
pub struct AiKeyUpdate {
    /// 8 to 512 printable ASCII characters without spaces. Stored sealed;
    /// no answer ever shows it again.
    #[schema(min_length = 8, max_length = 512)]
    pub key: String,
}

/// The daily AI caps that apply in the guild, and today's use.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::ai_caps)]
pub struct AiCapsView {
    /// Whether the platform has an AI endpoint at all.
    pub available: bool,
    /// The plan's tokens per UTC day (`null`: none); not applied to calls
    /// through the guild's own key.
    pub plan_daily_tokens: Option<u64>,
    /// The admins' cap on the guild's tokens per UTC day (`null`: none).
    pub daily_tokens: Option<u64>,
    /// The admins' cap on one member's tokens per UTC day (`null`: a share of
    /// the guild's cap, `member_share_percent`).
    pub member_daily_tokens: Option<u64>,
    pub member_share_percent: u8,
    /// Tokens used today (UTC), through either key.
    pub used_today: u64,
    /// Of which through the guild's own key.
    pub used_today_own_key: u64,
}

/// The admins' caps; `null` removes one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::ai_caps_update)]
pub struct AiCapsUpdate {
    #[schema(minimum = 0)]
    pub daily_tokens: Option<u64>,
    #[schema(minimum = 0)]
    pub member_daily_tokens: Option<u64>,
}

async fn key_view(state: &ApiState, guild_id: u64) -> ApiResult<AiKeyView> {
    let settings = state.store().guild_ai(guild_id).await?;
    Ok(AiKeyView {
        set: settings.key_sealed.is_some(),
        set_at: settings.key_set_at,
        set_by: settings.key_set_by,
    })
}

async fn caps_view(state: &ApiState, access: &GuildAccess) -> ApiResult<AiCapsView> {
    let guild_id = access.guild.id;
    let settings = state.store().guild_ai(guild_id).await?;
    let (_, plan) = state.runtime().plan_of(&access.guild.plan);
    let today = Utc::now().date_naive();
    let used = state.store().ai_token_use(guild_id, today, None).await?;
    let own = state.store().ai_own_key_tokens(guild_id, today).await?;
    let ai = state.runtime().ai();
    Ok(AiCapsView {
        available: ai.enabled(),
        plan_daily_tokens: plan.ai_tokens_per_day,
        daily_tokens: settings.daily_tokens,
        member_daily_tokens: settings.member_daily_tokens,
        member_share_percent: ai.config().member_share_percent,
        used_today: used.tokens,
        used_today_own_key: own,
    })
}

/// Whether the guild has its own AI key, when and by whom it was set.
#[utoipa::path(get, path = "/api/guild/{guild_id}/ai/key", tag = "ai", operation_id = "getGuildAiKey",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    responses((status = 200, description = "Whether a key is set", body = AiKeyView), CallerErrors, GuildErrors))]
pub async fn key(
    State(state): State<ApiState>,
    access: GuildAccess,
) -> ApiResult<axum::Json<AiKeyView>> {
    Ok(axum::Json(key_view(&state, access.guild.id).await?))
}

/// Sets the guild's own key: the guild's AI calls go through it from now on
/// (metered and capped by the guild's caps; the plan's cap does not apply).
/// Stored sealed; audited without the key.
#[utoipa::path(put, path = "/api/guild/{guild_id}/ai/key", tag = "ai", operation_id = "setGuildAiKey",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    request_body = AiKeyUpdate,
    responses((status = 200, description = "Set", body = AiKeyView),
        (status = 409, description = "The platform cannot keep guilds' keys (no sealing secret configured)", body = ErrorBody),
        CallerErrors, GuildErrors, BodyErrors))]
pub async fn set_key(
    State(state): State<ApiState>,
    access: GuildAccess,
    Json(update): Json<AiKeyUpdate>,
) -> ApiResult<axum::Json<AiKeyView>> {
    let guild_id = access.guild.id;
    state
        .runtime()
        .ai()
        .set_key(guild_id, &update.key, &access.caller.actor())
        .await
        .map_err(|e| match e {
            KeyError::NoSecret => ApiError::Conflict {
                message: e.to_string(),
                hint: Some(
                    "the platform's operator sets TOWNES_AI_KEY_SECRET (32 or more characters) to let guilds use their own keys".into(),
                ),
            },
            KeyError::Invalid(why) => ApiError::invalid("/key", why),
            KeyError::Store(e) => e.into(),
        })?;
    audit(&state, &access, "ai.key_set", None, json!({})).await?;
    Ok(axum::Json(key_view(&state, guild_id).await?))
}

/// Removes the guild's own key: its AI calls go through the platform's key
/// again, under the plan's cap.
#[utoipa::path(delete, path = "/api/guild/{guild_id}/ai/key", tag = "ai", operation_id = "deleteGuildAiKey",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    responses((status = 204, description = "Removed (or there was none)"), CallerErrors, GuildErrors))]
pub async fn delete_key(
    State(state): State<ApiState>,
    access: GuildAccess,
) -> ApiResult<StatusCode> {
    if state.store().delete_guild_ai_key(access.guild.id).await? {
        audit(&state, &access, "ai.key_removed", None, json!({})).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The daily AI caps in the guild and today's use.
#[utoipa::path(get, path = "/api/guild/{guild_id}/ai/caps", tag = "ai", operation_id = "getGuildAiCaps",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    responses((status = 200, description = "The caps", body = AiCapsView), CallerErrors, GuildErrors))]
pub async fn caps(
    State(state): State<ApiState>,
    access: GuildAccess,
) -> ApiResult<axum::Json<AiCapsView>> {
    Ok(axum::Json(caps_view(&state, &access).await?))
}

/// Sets the admins' daily caps (audited). They apply to calls through either
/// key; the plan's cap still applies to the platform's key.
#[utoipa::path(put, path = "/api/guild/{guild_id}/ai/caps", tag = "ai", operation_id = "setGuildAiCaps",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    request_body = AiCapsUpdate,
    responses((status = 200, description = "Saved", body = AiCapsView), CallerErrors, GuildErrors, BodyErrors))]
pub async fn set_caps(
    State(state): State<ApiState>,
    access: GuildAccess,
    Json(update): Json<AiCapsUpdate>,
) -> ApiResult<axum::Json<AiCapsView>> {
    state
        .store()
        .set_guild_ai_caps(
            access.guild.id,
            update.daily_tokens,
            update.member_daily_tokens,
        )
        .await?;
    let details = json!({
        "daily_tokens": update.daily_tokens,
        "member_daily_tokens": update.member_daily_tokens,
    });
    audit(&state, &access, "ai.caps_updated", None, details).await?;
    Ok(axum::Json(caps_view(&state, &access).await?))
}
