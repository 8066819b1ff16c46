//! Routes served by features (ADR 0008): `/api/guild/{guild_id}/features/{feature_id}/api/{path}`
//! reaches the `api` export of the feature enabled there, and seed 002's paths
//! (`/api/guild/{guild_id}/tickets…`) are aliases for the feature that owns them.
//!
//! Before the feature runs, the host has done everything a route of its own
//! would: the caller's rights over the guild ([`GuildAccess`]), the rate
//! limits (the `protect` layers), the route's existence and method, the
//! parameters' shape and the body against the route's request schema. After,
//! it holds the answer to the route's contract: a 2xx status and a body that
//! matches the response schema, or 502. Changes (every method but `GET`) are
//! audited with the caller as actor.

use super::guild::audit;
use crate::api::ApiState;
use crate::api::authz::GuildAccess;
use crate::api::error::{ApiError, ApiResult, Problem, refuse_nul};
use crate::marketplace::config::validate;
use crate::runtime::InvokeError;
use crate::runtime::extensions::{match_route, method_name};
use crate::wit::Error as FeatureError;
use crate::wit::extensions::{ApiCaller, ApiRequest, Method};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Seed 002's paths, by first segment, and the feature that serves them:
/// `/api/guild/{id}/tickets/7/claim` is the `tickets` feature's `/tickets/7/claim`.
pub const SEED_ALIASES: [(&str, &str); 3] = [
    ("tickets", "tickets"),
    ("templates", "templates"),
    ("commands", "custom-commands"),
];

/// The largest answer a feature may give, in bytes of JSON: what the API
/// parses and checks against the schema, on its own CPU.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Query parameters one call may carry, and the longest one.
const MAX_QUERY_PAIRS: usize = 32;
const MAX_QUERY_BYTES: usize = 512;

/// `{method} /api/guild/{guild_id}/features/{feature_id}/api/{*path}`.
pub async fn call(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, feature_id, path)): Path<(String, String, String)>,
    method: axum::http::Method,
    uri: Uri,
    body: Bytes,
) -> ApiResult<Response> {
    serve(
        &state,
        &access,
        &feature_id,
        &format!("/{path}"),
        &method,
        &uri,
        body,
    )
    .await
}

/// `{method} /api/guild/{guild_id}/{alias}[/{*rest}]`: the alias's feature
/// with the whole path after the guild (`/tickets/7`).
pub async fn alias(
    State(state): State<ApiState>,
    access: GuildAccess,
    method: axum::http::Method,
    uri: Uri,
    body: Bytes,
) -> ApiResult<Response> {
    let prefix = format!("/api/guild/{}", access.guild.id);
    let path = uri
        .path()
        .strip_prefix(&prefix)
        .ok_or_else(|| ApiError::NotFound("no such route".into()))?;
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let feature = SEED_ALIASES
        .iter()
        .find(|(segment, _)| *segment == first)
        .map(|(_, feature)| *feature)
        .ok_or_else(|| ApiError::NotFound("no such route".into()))?;
    serve(&state, &access, feature, path, &method, &uri, body).await
}

async fn serve(
    state: &ApiState,
    access: &GuildAccess,
    feature_id: &str,
    path: &str,
    http_method: &axum::http::Method,
    uri: &Uri,
    body: Bytes,
) -> ApiResult<Response> {
    let guild_id = access.guild.id;
    let method = method_of(http_method).ok_or(ApiError::MethodNotAllowed)?;
    let policy = state.store().guild_policy(guild_id).await?;
    let gf = policy
        .feature(feature_id)
        .filter(|gf| gf.enabled)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "feature `{feature_id}` is not enabled in guild {guild_id}; enable it from the marketplace first"
            ))
        })?;
    let routes = state
        .runtime()
        .routes(feature_id, &gf.version)
        .await
        .map_err(ApiError::internal)?;
    let Some((route, params)) = match_route(&routes, method, path) else {
        let other_method = [
            Method::Get,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
        ]
        .into_iter()
        .any(|m| match_route(&routes, m, path).is_some());
        return Err(if other_method {
            ApiError::MethodNotAllowed
        } else {
            ApiError::NotFound(format!(
                "feature `{feature_id}` serves no route {} {path}; its routes are in the OpenAPI document (GET /api/openapi.json)",
                method_name(method)
            ))
        });
    };
    let query = query_pairs(uri)?;
    let body = match &route.request_schema {
        Some(schema) => Some(checked_body(schema, &body)?),
        None if body.is_empty() => None,
        None => {
            return Err(ApiError::BadRequest(format!(
                "{} {} takes no body",
                method_name(method),
                route.path
            )));
        }
    };
    let request = ApiRequest {
        method,
        route: route.path.clone(),
        params,
        query,
        body: body.map(|b| b.to_string()),
        caller: ApiCaller {
            user_id: match &access.caller {
                crate::api::auth::Caller::User { user_id, .. } => Some(*user_id),
                crate::api::auth::Caller::Key { .. } => None,
            },
            owner: matches!(access.rights, crate::api::authz::Manages::AsOwner),
            permissions: access.rights.permissions(),
        },
    };
    let outcome = state.runtime().api(guild_id, feature_id, request).await;
    let answer = match outcome.result {
        Ok(_) => outcome.response.ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("a route call returned no response"))
        })?,
        Err(e) => return Err(invoke_error(feature_id, e)),
    };
    let out_of_contract = |why: String| {
        tracing::warn!(guild = guild_id, feature = feature_id, route = %route.path, %why, "a feature route answered outside its contract");
        ApiError::FeatureFailed(format!(
            "feature `{feature_id}` answered {} {} outside its contract: {why}",
            method_name(method),
            route.path
        ))
    };
    if !(200..300).contains(&answer.status) {
        return Err(out_of_contract(format!(
            "status {} (errors are returned as error values, not statuses)",
            answer.status
        )));
    }
    if answer.body.len() > MAX_RESPONSE_BYTES {
        return Err(out_of_contract(format!(
            "the body is {} bytes; at most {MAX_RESPONSE_BYTES}",
            answer.body.len()
        )));
    }
    let value: Value = serde_json::from_str(&answer.body)
        .map_err(|e| out_of_contract(format!("the body is not JSON ({e})")))?;
    validate(&route.response_schema, &value).map_err(|problems| {
        let described: Vec<String> = problems
            .iter()
            .map(|p| {
                let at = if p.path.is_empty() {
                    "the body"
                } else {
                    &p.path
                };
                format!("{at}: {}", p.message)
            })
            .collect();
        out_of_contract(described.join("; "))
    })?;
    if method != Method::Get {
        let details = json!({
            "method": method_name(method),
            "route": route.path,
            "operation": route.operation_id,
            "status": answer.status,
        });
        audit(state, access, "feature.api_call", Some(feature_id), details).await?;
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    Ok((
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response())
}

/// The contract's method for an HTTP one (`None` for HEAD, OPTIONS, …).
fn method_of(method: &axum::http::Method) -> Option<Method> {
    use axum::http::Method as Http;
    Some(match *method {
        Http::GET => Method::Get,
        Http::POST => Method::Post,
        Http::PUT => Method::Put,
        Http::PATCH => Method::Patch,
        Http::DELETE => Method::Delete,
        _ => return None,
    })
}

fn query_pairs(uri: &Uri) -> ApiResult<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    if pairs.len() > MAX_QUERY_PAIRS {
        return Err(ApiError::BadRequest(format!(
            "{} query parameters; at most {MAX_QUERY_PAIRS}",
            pairs.len()
        )));
    }
    if let Some((k, _)) = pairs
        .iter()
        .find(|(k, v)| k.len() + v.len() > MAX_QUERY_BYTES || k.contains('\0') || v.contains('\0'))
    {
        return Err(ApiError::BadRequest(format!(
            "query parameter `{}` is over {MAX_QUERY_BYTES} bytes or holds NUL",
            k.escape_debug()
        )));
    }
    Ok(pairs)
}

/// The body as JSON, matching `schema`; every mismatch is a problem (422).
fn checked_body(schema: &str, body: &[u8]) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(ApiError::invalid("", "this route needs a JSON body"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    refuse_nul(body)?;
    validate(schema, &value).map_err(|problems| ApiError::Invalid {
        message: "the body does not match the route's schema".into(),
        problems: problems
            .into_iter()
            .map(|p| Problem {
                path: p.path,
                message: p.message,
            })
            .collect(),
    })?;
    Ok(value)
}

/// How a failed route call reaches the client: the feature's own error
/// values as the statuses the contract names, the host's as its own.
fn invoke_error(feature_id: &str, e: InvokeError) -> ApiError {
    match e {
        InvokeError::Feature(error) => match error {
            FeatureError::Denied(capability) => ApiError::Forbidden(format!(
                "feature `{feature_id}` refused: it needs `{}`, which this guild has not granted",
                crate::grants::capability_name(capability)
            )),
            FeatureError::NotFound(what) => ApiError::NotFound(what),
            FeatureError::InvalidArgument(why) => ApiError::BadRequest(why),
            FeatureError::QuotaExceeded(why) => ApiError::Conflict {
                message: why,
                hint: Some("a quota of this guild's plan is used up".into()),
            },
            FeatureError::Unavailable(why) => ApiError::Unavailable {
                message: why,
                hint: None,
            },
        },
        InvokeError::NotEnabled(_) => ApiError::NotFound(format!(
            "feature `{feature_id}` is not enabled in this guild"
        )),
        InvokeError::Busy(_) | InvokeError::BreakerOpen { .. } => ApiError::Unavailable {
            message: e.to_string(),
            hint: Some("retry in a little while".into()),
        },
        InvokeError::Host(e) => ApiError::internal(e),
        other => ApiError::FeatureFailed(format!("feature `{feature_id}` failed: {other}")),
    }
}

/// The API's OpenAPI document with the routes of every published feature
/// version in the catalogue (each feature's newest), as JSON.
#[utoipa::path(get, path = "/api/openapi.json", tag = "marketplace", operation_id = "getOpenApiDocument",
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, description = "The OpenAPI 3.1 document, with the features' routes", body = Object,
            example = crate::api::examples::openapi_document),
        super::CallerErrors))]
pub async fn document(
    State(state): State<ApiState>,
    _caller: crate::api::auth::Caller,
) -> ApiResult<axum::Json<Value>> {
    let mut features = Vec::new();
    for feature in state.store().features().await? {
        let versions = state.store().versions_of(&feature.id).await?;
        let Some(newest) = versions.into_iter().find(|v| v.published) else {
            continue;
        };
        let routes = crate::runtime::extensions::stored_routes(&newest.manifest)
            .map_err(ApiError::internal)?;
        if !routes.is_empty() {
            features.push(crate::api::openapi::FeatureRoutes {
                feature_id: newest.feature_id,
                version: newest.version,
                routes,
            });
        }
    }
    Ok(axum::Json(crate::api::openapi::with_features(&features)))
}
