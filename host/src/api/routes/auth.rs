//! Login with Discord, the current caller, logout, and API keys.
//!
//! The login is OAuth2's authorization-code flow: `/auth/discord/login` sends
//! the browser to Discord with a fresh `state` (kept hashed in the database and
//! in a cookie of the browser that started it); Discord sends the browser back
//! to the dashboard, which posts `code` and `state` to `/auth/discord/callback`.
//! A state is single-use, expires in ten minutes, and must come from the same
//! browser, so a login cannot be replayed or forced on someone else.

use super::{BodyErrors, CallerErrors};
use crate::api::ApiState;
use crate::api::auth::{
    Caller, SESSION_COOKIE, STATE_COOKIE, cookie, hash_secret, issue_api_key, new_secret,
    set_cookie,
};
use crate::api::config::{OAUTH_STATE_TTL, SESSION_TTL};
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::api::examples;
use crate::api::snowflake::Snowflake;
use crate::store::{ApiKey, NewSession, Tenant};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[schema(example = examples::tenant)]
pub struct TenantView {
    /// 32 hex digits.
    pub id: String,
    pub owner_id: Snowflake,
    pub name: Option<String>,
    #[schema(example = "free")]
    pub plan: String,
    pub created_at: DateTime<Utc>,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> TenantView {
        TenantView {
            id: t.id,
            owner_id: Snowflake(t.owner_discord_id),
            name: t.name,
            plan: t.plan,
            created_at: t.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(example = examples::user)]
pub struct UserView {
    pub id: Snowflake,
    pub name: String,
}

/// Who is calling.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::me)]
pub struct Me {
    /// The signed-in Discord user; absent for an API key.
    pub user: Option<UserView>,
    pub tenant: TenantView,
    /// `session` or `api_key`.
    #[schema(example = "session")]
    pub via: &'static str,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = examples::callback)]
pub struct Callback {
    /// The `code` Discord added to the redirect.
    pub code: String,
    /// The `state` Discord echoed back.
    pub state: String,
}

/// Starts a login: redirects to Discord's consent page.
#[utoipa::path(get, path = "/auth/discord/login", tag = "auth", operation_id = "startDiscordLogin", responses(
    (status = 303, description = "To Discord's consent page; sets the state cookie",
        headers(("Location" = String), ("Set-Cookie" = String))),
    (status = 503, description = "Discord login is not configured", body = ErrorBody)))]
pub async fn login(State(state): State<ApiState>) -> ApiResult<Response> {
    let oauth = state.oauth().ok_or_else(login_not_configured)?;
    let login_state = new_secret();
    let expires = chrono::Utc::now() + OAUTH_STATE_TTL;
    state
        .store()
        .put_oauth_state(&hash_secret(&login_state), expires)
        .await?;
    let cookie = set_cookie(
        STATE_COOKIE,
        &login_state,
        "/auth",
        OAUTH_STATE_TTL.as_secs(),
        state.config().cookie_secure,
    );
    let mut response = Redirect::to(&oauth.authorize_url(&login_state)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie.parse().map_err(ApiError::internal)?,
    );
    Ok(response)
}

fn login_not_configured() -> ApiError {
    ApiError::Unavailable {
        message: "Discord login is not configured".into(),
        hint: Some(
            "set DISCORD_CLIENT_ID, DISCORD_CLIENT_SECRET and TOWNES_OAUTH_REDIRECT_URI".into(),
        ),
    }
}

/// Finishes a login: creates (or finds) the user's tenant and a session.
#[utoipa::path(post, path = "/auth/discord/callback", tag = "auth", operation_id = "finishDiscordLogin", request_body = Callback,
    responses(
        (status = 200, description = "Signed in; sets the session cookie", body = Me,
            headers(("Set-Cookie" = String))),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 403, description = "The state is unknown, used, expired or from another browser", body = ErrorBody),
        BodyErrors,
        (status = 503, description = "Login not configured, or Discord unreachable", body = ErrorBody)))]
pub async fn callback(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(body): Json<Callback>,
) -> ApiResult<Response> {
    let oauth = state.oauth().ok_or_else(login_not_configured)?;
    let bad_state = || {
        ApiError::Forbidden(
            "this login's state is unknown, used, expired or was started in another browser; start again at /auth/discord/login".into(),
        )
    };
    if cookie(&headers, STATE_COOKIE) != Some(body.state.as_str()) {
        return Err(bad_state());
    }
    if !state
        .store()
        .take_oauth_state(&hash_secret(&body.state))
        .await?
    {
        return Err(bad_state());
    }
    let user = oauth.login(&body.code).await?;
    let user_id: u64 = user.id.parse().map_err(|_| ApiError::Unavailable {
        message: "Discord answered with an unreadable user id".into(),
        hint: None,
    })?;
    let name = user.global_name.unwrap_or(user.username);
    let tenant = state.store().create_tenant(user_id, Some(&name)).await?;
    state
        .store()
        .claim_owned_guilds(user_id, &tenant.id)
        .await?;
    let token = new_secret();
    state
        .store()
        .create_session(&NewSession {
            token_hash: &hash_secret(&token),
            tenant_id: &tenant.id,
            discord_user_id: user_id,
            user_name: &name,
            expires_at: chrono::Utc::now() + SESSION_TTL,
        })
        .await?;
    let secure = state.config().cookie_secure;
    let me = Me {
        user: Some(UserView {
            id: Snowflake(user_id),
            name,
        }),
        tenant: tenant.into(),
        via: "session",
    };
    let mut response = axum::Json(me).into_response();
    for cookie in [
        set_cookie(SESSION_COOKIE, &token, "/", SESSION_TTL.as_secs(), secure),
        set_cookie(STATE_COOKIE, "", "/auth", 0, secure),
    ] {
        response.headers_mut().append(
            header::SET_COOKIE,
            cookie.parse().map_err(ApiError::internal)?,
        );
    }
    Ok(response)
}

/// Ends the caller's session (the cookie stops working everywhere at once).
#[utoipa::path(post, path = "/auth/logout", tag = "auth", operation_id = "logout",
    security(("session" = [])),
    responses((status = 204, description = "Signed out; clears the cookie"), CallerErrors,
        (status = 403, description = "An API key cannot log out; revoke it instead", body = ErrorBody)))]
pub async fn logout(State(state): State<ApiState>, caller: Caller) -> ApiResult<Response> {
    let Caller::User { session, .. } = caller else {
        return Err(ApiError::Forbidden(
            "an API key has no session; revoke the key with DELETE /api/keys/{key_id}".into(),
        ));
    };
    state.store().revoke_session(&session).await?;
    let clear = set_cookie(SESSION_COOKIE, "", "/", 0, state.config().cookie_secure);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

/// The caller: the signed-in user and their tenant, or the API key's tenant.
#[utoipa::path(get, path = "/me", tag = "auth", operation_id = "getMe",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "The caller", body = Me), CallerErrors))]
pub async fn me(State(state): State<ApiState>, caller: Caller) -> ApiResult<axum::Json<Me>> {
    let tenant = state
        .store()
        .tenant(caller.tenant_id())
        .await?
        .ok_or_else(|| ApiError::Unauthorized {
            hint: "your tenant no longer exists; sign in again",
        })?;
    let (user, via) = match caller {
        Caller::User {
            user_id, user_name, ..
        } => (
            Some(UserView {
                id: Snowflake(user_id),
                name: user_name,
            }),
            "session",
        ),
        Caller::Key { .. } => (None, "api_key"),
    };
    Ok(axum::Json(Me {
        user,
        tenant: tenant.into(),
        via,
    }))
}

#[derive(Serialize, ToSchema)]
#[schema(example = examples::api_key)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> ApiKeyView {
        ApiKeyView {
            id: k.id,
            name: k.name,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(example = examples::new_key)]
pub struct NewKey {
    /// What the key is for, e.g. `dashboard server`. 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

/// A new key. `secret` is shown this once: only its hash is kept.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::created_key)]
pub struct CreatedKey {
    pub key: ApiKeyView,
    /// Send as `Authorization: Bearer <secret>`.
    #[schema(example = "tdk_0123456789abcdef0123456789abcdef_…")]
    pub secret: String,
}

/// Only a signed-in person manages keys: a key cannot mint or revoke keys.
fn session_only(caller: &Caller) -> ApiResult<()> {
    match caller {
        Caller::User { .. } => Ok(()),
        Caller::Key { .. } => Err(ApiError::Forbidden(
            "API keys are managed by a signed-in user, not by another key".into(),
        )),
    }
}

/// The tenant's API keys, revoked ones included, newest first.
#[utoipa::path(get, path = "/api/keys", tag = "auth", operation_id = "listApiKeys", security(("session" = [])),
    responses((status = 200, description = "Keys", body = [ApiKeyView]), CallerErrors,
        (status = 403, description = "Called with an API key", body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<ApiKeyView>>> {
    session_only(&caller)?;
    let keys = state.store().api_keys(caller.tenant_id()).await?;
    Ok(axum::Json(keys.into_iter().map(Into::into).collect()))
}

/// Creates an API key for the caller's tenant.
#[utoipa::path(post, path = "/api/keys", tag = "auth", operation_id = "createApiKey", security(("session" = [])),
    request_body = NewKey,
    responses((status = 201, description = "Created; the secret is shown once", body = CreatedKey),
        CallerErrors, BodyErrors,
        (status = 403, description = "Called with an API key", body = ErrorBody)))]
pub async fn create_key(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<NewKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedKey>)> {
    session_only(&caller)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "/name",
            "name must be 1 to 100 characters",
        ));
    }
    let (key, secret) =
        issue_api_key(state.store(), caller.tenant_id(), name, caller.actor()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedKey {
            key: key.into(),
            secret,
        }),
    ))
}

/// Revokes a key: it stops working on the next request.
#[utoipa::path(delete, path = "/api/keys/{key_id}", tag = "auth", operation_id = "revokeApiKey", security(("session" = [])),
    params(("key_id" = String, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked"), CallerErrors,
        (status = 403, description = "Called with an API key", body = ErrorBody),
        (status = 404, description = "No live key with that id in the caller's tenant", body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<ApiState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> ApiResult<StatusCode> {
    session_only(&caller)?;
    if !state
        .store()
        .revoke_api_key(caller.tenant_id(), &key_id)
        .await?
    {
        return Err(ApiError::not_found(format!("API key {key_id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}
