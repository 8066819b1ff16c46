//! The REST API v10 under `/api/v10`, and the gateway's WebSocket endpoint.
//!
//! One middleware in front of every REST route records the request, checks
//! `Authorization: Bot <token>` (Discord answers 401 before anything else) and
//! applies injected faults (429s, 5xx) — so handlers only implement Discord's
//! semantics: permission math, hierarchy, validation and the dispatches that follow.
//! `Authorization: Bearer <token>` (OAuth2) is accepted on `GET /users/@me` and
//! `GET /users/@me/guilds` only, and reaches them as an [`oauth::Grant`] extension;
//! `POST /oauth2/token[/revoke]` authenticate the client themselves.

mod channels;
mod commands;
mod guilds;
mod meta;

use crate::Simulator;
use crate::error::{ApiError, ApiResult};
use crate::faults::{self, Verdict};
use crate::ids::percent_decode;
use crate::oauth::{self, Grant};
use crate::ratelimits::RouteKey;
use crate::recorder::Recorded;
use crate::state::{GuildRec, World};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Query, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::Value;
use std::collections::HashMap;

/// Path parameters by name.
pub(crate) type Params = axum::extract::Path<HashMap<String, String>>;

pub fn router(sim: Simulator) -> Router {
    use crate::interactions as ix;
    let api = Router::new()
        .route("/gateway", get(meta::gateway))
        .route("/gateway/bot", get(meta::gateway_bot))
        .route("/users/@me", get(users_me))
        .route("/users/@me/guilds", get(users_me_guilds))
        .route("/users/@me/channels", post(channels::create_dm))
        .route("/users/{user_id}", get(meta::user))
        .route("/oauth2/applications/@me", get(meta::application))
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/token/revoke", post(oauth::revoke))
        .route("/applications/@me", get(meta::application))
        .route(
            "/channels/{channel_id}",
            get(channels::get_channel).delete(channels::delete_channel),
        )
        .route(
            "/channels/{channel_id}/messages",
            get(channels::list_messages).post(channels::create_message),
        )
        .route(
            "/channels/{channel_id}/messages/bulk-delete",
            post(channels::bulk_delete),
        )
        .route(
            "/channels/{channel_id}/messages/{message_id}",
            get(channels::get_message)
                .patch(channels::edit_message)
                .delete(channels::delete_message),
        )
        .route(
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            put(channels::add_reaction).delete(channels::remove_reaction),
        )
        .route(
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}",
            get(channels::list_reactions),
        )
        .route(
            "/channels/{channel_id}/permissions/{target_id}",
            put(channels::put_overwrite).delete(channels::delete_overwrite),
        )
        .route("/channels/{channel_id}/typing", post(channels::typing))
        .route("/guilds/{guild_id}", get(guilds::get_guild))
        .route("/guilds/{guild_id}/roles", get(guilds::roles))
        .route(
            "/guilds/{guild_id}/channels",
            get(guilds::channels).post(guilds::create_channel),
        )
        .route("/guilds/{guild_id}/emojis", get(guilds::emojis))
        .route("/guilds/{guild_id}/members", get(guilds::members))
        .route(
            "/guilds/{guild_id}/members/{user_id}",
            get(guilds::member)
                .patch(guilds::edit_member)
                .delete(guilds::kick),
        )
        .route(
            "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
            put(guilds::add_role).delete(guilds::remove_role),
        )
        .route(
            "/guilds/{guild_id}/bans/{user_id}",
            get(guilds::get_ban).put(guilds::ban).delete(guilds::unban),
        )
        .route(
            "/applications/{app_id}/commands",
            get(commands::get_global).put(commands::put_global),
        )
        .route(
            "/applications/{app_id}/guilds/{guild_id}/commands",
            get(commands::get_guild)
                .put(commands::put_guild)
                .post(commands::create_guild_command),
        )
        .route(
            "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}",
            get(commands::get_guild_command).delete(commands::delete_guild_command),
        )
        .route(
            "/interactions/{interaction_id}/{token}/callback",
            post(ix::callback),
        )
        .route("/webhooks/{app_id}/{token}", post(ix::followup))
        .route(
            "/webhooks/{app_id}/{token}/messages/{message_id}",
            get(ix::get_webhook_message)
                .patch(ix::edit_webhook_message)
                .delete(ix::delete_webhook_message),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(sim.clone(), record_and_guard));
    Router::new()
        .nest("/api/v10", api)
        .merge(oauth::web_routes(sim.clone()))
        .route("/gateway", get(gateway_upgrade))
        // Clients that append `/?v=10…` to the gateway URL (twilight does).
        .route("/gateway/", get(gateway_upgrade))
        .route(
            "/attachments/{channel_id}/{attachment_id}/{filename}",
            get(attachment),
        )
        .with_state(sim)
}

/// `GET /users/@me`: the bot, or with a Bearer token the token's user.
async fn users_me(
    State(sim): State<Simulator>,
    grant: Option<Extension<Grant>>,
) -> ApiResult<Response> {
    match grant {
        Some(Extension(g)) => oauth::me(&sim, &g),
        None => Ok(meta::me(State(sim)).await),
    }
}

/// `GET /users/@me/guilds`: the bot's guilds, or with a Bearer token (scope
/// `guilds`) the token's user's.
async fn users_me_guilds(
    State(sim): State<Simulator>,
    grant: Option<Extension<Grant>>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let user_id = match grant {
        Some(Extension(g)) if !g.has("guilds") => return Err(ApiError::missing_access()),
        Some(Extension(g)) => g.user_id,
        None => sim.bot_user_id(),
    };
    oauth::my_guilds(&sim, user_id, &q)
}

/// The CDN: an attachment's bytes, to anyone holding its link.
async fn attachment(State(sim): State<Simulator>, p: Params) -> Response {
    let found = id(&p, "attachment_id")
        .ok()
        .and_then(|attachment_id| sim.world().attachment_bytes.get(&attachment_id).cloned());
    match found {
        Some((content_type, data)) => {
            ([(axum::http::header::CONTENT_TYPE, content_type)], data).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found_route()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(405, 0, "405: Method Not Allowed")
}

/// `ws://…/gateway?v=10&encoding=json`.
async fn gateway_upgrade(
    State(sim): State<Simulator>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    if q.get("encoding").is_some_and(|e| e != "json") {
        return (StatusCode::BAD_REQUEST, "only encoding=json is simulated").into_response();
    }
    if q.get("v").is_some_and(|v| v != "10") {
        tracing::warn!(v = ?q.get("v"), "gateway client asked for another version; speaking v10");
    }
    ws.on_upgrade(move |socket| crate::gateway::serve(sim, socket))
}

/// Records, authenticates and applies faults, in that order.
async fn record_and_guard(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let method = parts.method.as_str().to_string();
    let raw = parts.uri.path();
    let path = percent_decode(raw.strip_prefix("/api/v10").unwrap_or(raw));
    let audit_reason = parts
        .headers
        .get("x-audit-log-reason")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode);
    let index = sim.0.recorder.start(Recorded {
        method: method.clone(),
        path: path.clone(),
        // Form bodies (OAuth2) are kept with their secrets redacted; headers
        // (and so tokens) are never recorded.
        body: body_value(&parts.headers, &bytes)
            .or_else(|| oauth::recorded_form(&parts.headers, &bytes)),
        audit_reason,
        status: 0,
        at: std::time::Instant::now(),
    });
    let response = match guard(&sim, &parts.headers, &method, &path) {
        Err(refused) => *refused,
        Ok((grant, limits)) => {
            let mut parts = parts;
            if let Some(g) = grant {
                parts.extensions.insert(g);
            }
            let mut response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            response.headers_mut().extend(limits);
            response
        }
    };
    sim.0.recorder.finish(index, response.status().as_u16());
    response
}

/// Authenticates, applies faults and rate limits: `Err` is the refusal; `Ok` has a
/// valid Bearer token on a route that takes one, and the rate-limit headers for the
/// answer.
fn guard(
    sim: &Simulator,
    headers: &HeaderMap,
    method: &str,
    path: &str,
) -> Result<(Option<Grant>, HeaderMap), Box<Response>> {
    let gateway = method == "GET" && (path == "/gateway" || path == "/gateway/bot");
    // Interaction callbacks and webhooks authenticate by their token, the OAuth2
    // token endpoints by the client's credentials, and `GET /gateway` needs no
    // auth on Discord.
    let token_auth = path.starts_with("/interactions/")
        || path.starts_with("/webhooks/")
        || path == "/oauth2/token"
        || path == "/oauth2/token/revoke";
    let mut grant = None;
    if !token_auth && path != "/gateway" {
        let expected = format!("Bot {}", sim.0.config.token);
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            let bearer_route =
                method == "GET" && (path == "/users/@me" || path == "/users/@me/guilds");
            grant = given
                .and_then(|g| g.strip_prefix("Bearer "))
                .filter(|_| bearer_route)
                .and_then(|t| sim.0.oauth.bearer(t));
            if grant.is_none() {
                return Err(Box::new(ApiError::unauthorized().into_response()));
            }
        }
    }
    if gateway {
        return Ok((grant, HeaderMap::new()));
    }
    let key = RouteKey::of(method, path);
    match sim.0.faults.check(&format!("{method} {path}")) {
        Verdict::Pass => {}
        Verdict::RateLimited {
            retry_after,
            global,
        } => {
            let refused = faults::too_many_requests(retry_after, global, &key.hash);
            return Err(Box::new(refused));
        }
        Verdict::Fail(status) => return Err(Box::new(faults::server_error(status))),
    }
    match sim.0.limits.take(&key) {
        Ok(limits) => Ok((grant, limits)),
        Err(limited) => Err(Box::new(faults::too_many_requests(
            limited.retry_after,
            limited.global,
            &key.hash,
        ))),
    }
}

/// The request's JSON: the body itself, or a multipart request's `payload_json`
/// (with `attachments` filled from the file parts when the payload lacks them).
pub(crate) fn body_value(headers: &HeaderMap, bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(boundary) = ct
        .strip_prefix("multipart/form-data")
        .and_then(|rest| rest.split("boundary=").nth(1))
    {
        return multipart_payload(bytes, boundary.trim_matches('"'));
    }
    serde_json::from_slice(bytes).ok()
}

/// Parses the JSON a handler needs: empty bodies are `{}`; unparsable ones are
/// Discord's 50109.
pub(crate) fn json_body(headers: &HeaderMap, bytes: &Bytes) -> ApiResult<Value> {
    if bytes.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    body_value(headers, bytes).ok_or_else(ApiError::invalid_json)
}

fn multipart_payload(bytes: &[u8], boundary: &str) -> Option<Value> {
    let delimiter = format!("--{boundary}");
    let mut payload: Option<Value> = None;
    let mut files = Vec::new();
    for part in split_bytes(bytes, delimiter.as_bytes()).into_iter().skip(1) {
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        if part.starts_with(b"--") {
            break;
        }
        let Some(split) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let mut body = &part[split + 4..];
        body = body.strip_suffix(b"\r\n").unwrap_or(body);
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            let start = head.find(&key)? + key.len();
            let end = head[start..].find('"')? + start;
            Some(head[start..end].to_string())
        };
        match (attr("name"), attr("filename")) {
            (Some(n), None) if n == "payload_json" => payload = serde_json::from_slice(body).ok(),
            (_, Some(filename)) => files.push((filename, body.len())),
            _ => {}
        }
    }
    let mut payload = payload.unwrap_or_else(|| Value::Object(Default::default()));
    if !files.is_empty() && payload.get("attachments").is_none() {
        payload["attachments"] = files
            .iter()
            .enumerate()
            .map(|(i, (f, size))| serde_json::json!({ "id": i, "filename": f, "size": size }))
            .collect();
    } else if let Some(list) = payload.get_mut("attachments").and_then(Value::as_array_mut) {
        for (i, a) in list.iter_mut().enumerate() {
            if let Some((_, size)) = files.get(i) {
                a["size"] = (*size).into();
            }
        }
    }
    Some(payload)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut hay: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, delimiter) {
        out.push(&hay[..i]);
        hay = &hay[i + delimiter.len()..];
    }
    out.push(hay);
    out
}

/// A snowflake path parameter; Discord answers 404 for a non-numeric one.
pub(crate) fn id(p: &HashMap<String, String>, key: &str) -> ApiResult<u64> {
    p.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(ApiError::not_found_route)
}

/// The guild, if it exists and the bot is in it.
pub(crate) fn bot_guild(w: &World, guild_id: u64) -> ApiResult<&GuildRec> {
    let g = w
        .guilds
        .get(&guild_id)
        .ok_or_else(ApiError::unknown_guild)?;
    if !g.members.contains_key(&w.bot_id) {
        return Err(ApiError::missing_access());
    }
    Ok(g)
}

/// 403 50013 unless `have` contains all of `need`.
pub(crate) fn require(have: u64, need: u64) -> ApiResult<()> {
    if have & need == need {
        Ok(())
    } else {
        Err(ApiError::missing_permissions())
    }
}

pub(crate) fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

pub(crate) fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_payload_json_and_files() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{\"content\":\"hi\"}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.txt\"\r\n\r\nabc\r\n--XyZ--\r\n";
        let v = multipart_payload(body, "XyZ").unwrap();
        assert_eq!(v["content"], "hi");
        assert_eq!(v["attachments"][0]["filename"], "a.txt");
        assert_eq!(v["attachments"][0]["size"], 3);
    }
}
