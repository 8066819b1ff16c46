//! Who is calling: a dashboard session (a cookie from Discord login) or an API key
//! (`Authorization: Bearer tdk_…`, for the dashboard's server side); on the
//! `/admin` routes, a platform operator ([`operator`], `tdo_…`).
//!
//! Both secrets are random 256-bit values; the database keeps only their sha256,
//! so a leaked database cannot be replayed as logins. Sessions and keys are rows,
//! so revoking one takes effect on the next request.

pub mod oauth;
pub mod operator;

use super::ApiState;
use super::error::ApiError;
use crate::store::{ApiKey, NewAuditEntry, Store, StoreError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "townes_session";
/// The cookie that ties a login's `state` to the browser that started it.
pub const STATE_COOKIE: &str = "townes_oauth_state";
/// API keys start with this, so they are recognisable in secret scanners.
pub const KEY_PREFIX: &str = "tdk_";

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A person signed in with Discord.
    User {
        tenant_id: String,
        user_id: u64,
        user_name: String,
        /// The session token's hash, to log this session out.
        session: String,
    },
    /// A tenant's API key: reaches that tenant's guilds only.
    Key { tenant_id: String, key_id: String },
}

impl Caller {
    pub fn tenant_id(&self) -> &str {
        match self {
            Caller::User { tenant_id, .. } | Caller::Key { tenant_id, .. } => tenant_id,
        }
    }

    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match self {
            Caller::User { user_id, .. } => format!("user:{user_id}"),
            Caller::Key { key_id, .. } => format!("api-key:{key_id}"),
        }
    }
}

/// A fresh random secret, URL-safe.
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// What the database keeps of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two hashes in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Creates an API key for a tenant and audits it; returns the key and the secret
/// to show once (`tdk_<id>_<secret>`). Only the secret's hash is stored.
pub async fn issue_api_key(
    store: &Store,
    tenant_id: &str,
    name: &str,
    actor: String,
) -> Result<(ApiKey, String), StoreError> {
    let secret = new_secret();
    let key = store
        .create_api_key(tenant_id, name, &hash_secret(&secret))
        .await?;
    store
        .audit(&NewAuditEntry {
            guild_id: None,
            actor,
            action: "api_key.created".into(),
            feature_id: None,
            details: serde_json::json!({ "key_id": key.id, "name": key.name }),
        })
        .await?;
    let secret = format!("{KEY_PREFIX}{}_{secret}", key.id);
    Ok((key, secret))
}

/// A cookie's value from the `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: HttpOnly and SameSite=Lax always, Secure unless turned
/// off for plain-HTTP development.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_secs: u64, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

const SIGN_IN: &str = "sign in at /auth/discord/login, or send `Authorization: Bearer <API key>`";

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Caller, ApiError> {
        let caller = authenticate(&parts.headers, state).await?;
        // The request's span (`protect.rs`): every later line of the request
        // names the tenant.
        tracing::Span::current().record("tenant", caller.tenant_id());
        state.limiter().check_caller(&caller).await?;
        Ok(caller)
    }
}

async fn authenticate(headers: &HeaderMap, state: &ApiState) -> Result<Caller, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(presented) = bearer {
        return api_key(presented.trim(), state).await;
    }
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(ApiError::Unauthorized { hint: SIGN_IN });
    };
    let hash = hash_secret(token);
    let session = state
        .store()
        .live_session(&hash)
        .await?
        .ok_or(ApiError::Unauthorized {
            hint: "your session ended or was revoked; sign in again at /auth/discord/login",
        })?;
    Ok(Caller::User {
        tenant_id: session.tenant_id,
        user_id: session.discord_user_id,
        user_name: session.user_name,
        session: hash,
    })
}

async fn api_key(presented: &str, state: &ApiState) -> Result<Caller, ApiError> {
    let refused = ApiError::Unauthorized {
        hint: "the API key is malformed, unknown or revoked; create one with POST /api/keys",
    };
    let Some((id, secret)) = presented
        .strip_prefix(KEY_PREFIX)
        .and_then(|rest| rest.split_once('_'))
    else {
        return Err(refused);
    };
    let Some((key, stored)) = state.store().live_api_key(id).await? else {
        return Err(refused);
    };
    if !same(&hash_secret(secret), &stored) {
        return Err(refused);
    }
    // `last_used_at` is for people spotting unused keys; once a minute is exact enough
    // and keeps a database write off every request.
    let stale = key
        .last_used_at
        .is_none_or(|at| chrono::Utc::now() - at > chrono::TimeDelta::minutes(1));
    if stale {
        state.store().touch_api_key(&key.id).await?;
    }
    Ok(Caller::Key {
        tenant_id: key.tenant_id,
        key_id: key.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_set_with_every_flag() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; townes_session=abc ; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
        let set = set_cookie(SESSION_COOKIE, "v", "/", 60, true);
        for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Max-Age=60", "Path=/"] {
            assert!(set.contains(flag), "{set} lacks {flag}");
        }
        assert!(!set_cookie(SESSION_COOKIE, "v", "/", 60, false).contains("Secure"));
    }

    #[test]
    fn secrets_are_long_random_and_stored_hashed() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.len() >= 43);
        assert_eq!(hash_secret(&a).len(), 64);
        assert!(same(&hash_secret(&a), &hash_secret(&a)));
        assert!(!same(&hash_secret(&a), &hash_secret(&b)));
        assert!(!same(&hash_secret(&a), &hash_secret(&a)[..63]));
    }
}
