//! The platform's operators on the API: `Authorization: Bearer tdo_<id>_<secret>`
//! on the `/admin` routes. An operator is not a tenant and a tenant is never an
//! operator: a valid tenant session or API key gets 403 here (it is who it
//! says, and may not), anything else 401. Tokens are made with
//! `townes operator add` and stored like API keys (sha256 only).

use super::{authenticate, hash_secret, new_secret, same};
use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::store::{NewAuditEntry, Operator as OperatorRow, Store, StoreError};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

/// Operator tokens start with this (tenants' API keys with `tdk_`).
pub const OPERATOR_PREFIX: &str = "tdo_";

/// An operator calling an `/admin` route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    pub id: String,
    pub name: String,
}

impl Operator {
    /// How the audit log names this operator.
    pub fn actor(&self) -> String {
        format!("operator:{}", self.id)
    }

    /// Audits an operator action; the operator's name goes into the details,
    /// so the entry reads on its own even after the operator is revoked.
    pub async fn audit(
        &self,
        store: &Store,
        action: &str,
        guild_id: Option<u64>,
        mut details: serde_json::Value,
    ) -> Result<(), StoreError> {
        if let Some(map) = details.as_object_mut() {
            map.insert("operator".into(), self.name.clone().into());
        }
        store
            .audit(&NewAuditEntry {
                guild_id,
                actor: self.actor(),
                action: action.into(),
                feature_id: None,
                details,
            })
            .await
    }
}

/// Creates an operator; returns it and the token to show once
/// (`tdo_<id>_<secret>`). Only the secret's hash is stored.
pub async fn issue_operator(
    store: &Store,
    name: &str,
) -> Result<(OperatorRow, String), StoreError> {
    let secret = new_secret();
    let operator = store.create_operator(name, &hash_secret(&secret)).await?;
    store
        .audit(&NewAuditEntry {
            guild_id: None,
            actor: "cli".into(),
            action: "operator.created".into(),
            feature_id: None,
            details: serde_json::json!({ "operator_id": operator.id, "name": operator.name }),
        })
        .await?;
    let token = format!("{OPERATOR_PREFIX}{}_{secret}", operator.id);
    Ok((operator, token))
}

const OPERATORS_ONLY: &str =
    "send an operator token (`Authorization: Bearer tdo_…`, from `townes operator add`)";

impl FromRequestParts<ApiState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Operator, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let operator = match bearer {
            Some(token) if token.starts_with(OPERATOR_PREFIX) => verify(token, state).await?,
            _ => return Err(refuse_tenant(parts, state).await),
        };
        state.limiter().check_operator(&operator.id).await?;
        Ok(operator)
    }
}

/// A tenant's session or key is real but not enough (403); anything else is
/// no credential at all (401).
async fn refuse_tenant(parts: &Parts, state: &ApiState) -> ApiError {
    match authenticate(&parts.headers, state).await {
        Ok(_) => ApiError::OperatorsOnly,
        Err(ApiError::Unauthorized { .. }) => ApiError::Unauthorized {
            hint: OPERATORS_ONLY,
        },
        Err(other) => other,
    }
}

async fn verify(presented: &str, state: &ApiState) -> Result<Operator, ApiError> {
    let refused = ApiError::Unauthorized {
        hint: "the operator token is malformed, unknown or revoked; make one with `townes operator add`",
    };
    let Some((id, secret)) = presented
        .strip_prefix(OPERATOR_PREFIX)
        .and_then(|rest| rest.split_once('_'))
    else {
        return Err(refused);
    };
    let Some((operator, stored)) = state.store().live_operator(id).await? else {
        return Err(refused);
    };
    if !same(&hash_secret(secret), &stored) {
        return Err(refused);
    }
    // As for API keys: a minute's precision keeps a write off every request.
    let stale = operator
        .last_used_at
        .is_none_or(|at| chrono::Utc::now() - at > chrono::TimeDelta::minutes(1));
    if stale {
        state.store().touch_operator(&operator.id).await?;
    }
    Ok(Operator {
        id: operator.id,
        name: operator.name,
    })
}
