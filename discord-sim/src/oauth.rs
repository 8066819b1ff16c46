//! OAuth2, authorization-code grant, as Discord serves it
//! (<https://discord.com/developers/docs/topics/oauth2>).
//!
//! The client is the simulated application: `client_id` is the application id and
//! the secret is [`SimConfig::oauth_client_secret`](crate::SimConfig).
//!
//! - `GET /oauth2/authorize` (the web page, outside `/api/v10` and the bot-token
//!   check): with `sim_user=<id>` the user consents at once and the answer is a 302
//!   to `redirect_uri?code=…&state=…`; without it, an HTML page lists every user.
//! - `POST /api/v10/oauth2/token` (form body, client authentication by form fields
//!   or HTTP Basic): `authorization_code` and `refresh_token` grants.
//! - `POST /api/v10/oauth2/token/revoke`: invalidates an access or refresh token
//!   and the one issued with it.
//! - `Authorization: Bearer …` is accepted on `GET /users/@me` (scope `identify`)
//!   and `GET /users/@me/guilds` (scope `guilds`) only; the middleware in `rest`
//!   resolves the token into a [`Grant`] request extension.
//!
//! Codes live 10 minutes and are single-use; access tokens live 7 days. Expiry is
//! measured on an OAuth clock tests can move forward
//! ([`Simulator::advance_oauth_clock`], [`Simulator::expire_oauth_codes`]).

use crate::Simulator;
use crate::error::{ApiError, ApiResult};
use crate::ids::{self, percent_decode};
use crate::payloads::{self, sf};
use crate::recorder::Recorded;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The scopes the simulator grants.
pub const SCOPES: [&str; 4] = ["identify", "email", "guilds", "guilds.members.read"];
/// Authorization codes expire after 10 minutes.
pub const CODE_TTL_MS: u64 = 10 * 60 * 1000;
/// Access tokens expire after 7 days (`expires_in`).
pub const TOKEN_TTL_SECS: u64 = 604_800;

/// Who a Bearer token (or code) speaks for, and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub user_id: u64,
    pub scopes: Vec<String>,
}

impl Grant {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

struct CodeRec {
    grant: Grant,
    redirect_uri: String,
    expires_ms: u64,
}

struct AccessRec {
    grant: Grant,
    expires_ms: u64,
    refresh: String,
}

struct RefreshRec {
    grant: Grant,
    access: String,
}

#[derive(Default)]
struct Tables {
    /// Added to the wall clock when checking expiry.
    clock_offset_ms: u64,
    codes: HashMap<String, CodeRec>,
    access: HashMap<String, AccessRec>,
    refresh: HashMap<String, RefreshRec>,
}

impl Tables {
    fn now(&self) -> u64 {
        ids::now_ms() + self.clock_offset_ms
    }
}

/// Codes and tokens. Its lock is never held together with the world's.
#[derive(Default)]
pub struct Store {
    t: Mutex<Tables>,
}

/// Why a code was refused.
enum CodeRefused {
    /// Unknown, used or expired, or issued for another redirect URI.
    Invalid,
}

impl Store {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.t.lock().expect("oauth lock")
    }

    fn issue_code(&self, grant: Grant, redirect_uri: &str) -> String {
        let code = ids::random_hex(15);
        let mut t = self.tables();
        let now = t.now();
        t.codes.retain(|_, c| c.expires_ms > now);
        t.codes.insert(
            code.clone(),
            CodeRec {
                grant,
                redirect_uri: redirect_uri.to_string(),
                expires_ms: now + CODE_TTL_MS,
            },
        );
        code
    }

    /// Consumes the code if it is valid for `redirect_uri`. A code presented with
    /// the wrong redirect URI stays unused.
    fn redeem_code(&self, code: &str, redirect_uri: Option<&str>) -> Result<Grant, CodeRefused> {
        let mut t = self.tables();
        let now = t.now();
        let Some(c) = t.codes.get(code) else {
            return Err(CodeRefused::Invalid);
        };
        if c.expires_ms <= now {
            t.codes.remove(code);
            return Err(CodeRefused::Invalid);
        }
        if redirect_uri != Some(c.redirect_uri.as_str()) {
            return Err(CodeRefused::Invalid);
        }
        Ok(t.codes.remove(code).expect("checked").grant)
    }

    fn issue_tokens(&self, grant: Grant) -> (String, String) {
        let access = ids::random_hex(15);
        let refresh = ids::random_hex(15);
        let mut t = self.tables();
        let now = t.now();
        t.access.retain(|_, a| a.expires_ms > now);
        t.access.insert(
            access.clone(),
            AccessRec {
                grant: grant.clone(),
                expires_ms: now + TOKEN_TTL_SECS * 1000,
                refresh: refresh.clone(),
            },
        );
        t.refresh.insert(
            refresh.clone(),
            RefreshRec {
                grant,
                access: access.clone(),
            },
        );
        (access, refresh)
    }

    /// Consumes a refresh token.
    fn take_refresh(&self, refresh: &str) -> Option<Grant> {
        self.tables().refresh.remove(refresh).map(|r| r.grant)
    }

    /// The grant behind a live access token.
    pub fn bearer(&self, token: &str) -> Option<Grant> {
        let t = self.tables();
        let now = t.now();
        t.access
            .get(token)
            .filter(|a| a.expires_ms > now)
            .map(|a| a.grant.clone())
    }

    /// Revokes an access or refresh token and its partner.
    fn revoke(&self, token: &str) {
        let mut t = self.tables();
        if let Some(a) = t.access.remove(token) {
            t.refresh.remove(&a.refresh);
        }
        if let Some(r) = t.refresh.remove(token) {
            t.access.remove(&r.access);
        }
    }
}

// ----- the test-facing API -----

impl Simulator {
    /// The OAuth2 client id: the application id in decimal.
    pub fn client_id(&self) -> String {
        self.0.config.application_id.to_string()
    }

    /// The OAuth2 client secret ([`SimConfig::oauth_client_secret`](crate::SimConfig)).
    pub fn client_secret(&self) -> String {
        self.0.config.oauth_client_secret.clone()
    }

    /// Authorizes the application for `user_id` as if they had consented on the
    /// authorize page; returns a fresh code for `POST /oauth2/token` (valid 10
    /// minutes, once, with exactly this `redirect_uri`). Nothing is validated.
    pub fn authorize(&self, user_id: u64, scopes: &[&str], redirect_uri: &str) -> String {
        let grant = Grant {
            user_id,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        };
        self.0.oauth.issue_code(grant, redirect_uri)
    }

    /// Every authorization code issued so far expires now.
    pub fn expire_oauth_codes(&self) {
        let mut t = self.0.oauth.tables();
        let now = t.now();
        for c in t.codes.values_mut() {
            c.expires_ms = now;
        }
    }

    /// Moves the clock OAuth expiry is measured on forward (codes live 10 minutes,
    /// access tokens 7 days).
    pub fn advance_oauth_clock(&self, by: Duration) {
        self.0.oauth.tables().clock_offset_ms += by.as_millis() as u64;
    }
}

// ----- GET /oauth2/authorize -----

/// The authorize page at `{base}/oauth2/authorize`, recorded but outside the REST
/// middleware (no bot token, no injected faults).
pub fn web_routes(sim: Simulator) -> Router<Simulator> {
    Router::new()
        .route("/oauth2/authorize", get(authorize))
        .layer(from_fn_with_state(sim, record_web))
}

async fn record_web(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let index = sim.0.recorder.start(Recorded {
        method: req.method().as_str().to_string(),
        path: percent_decode(req.uri().path()),
        body: None,
        audit_reason: None,
        status: 0,
        at: std::time::Instant::now(),
    });
    let response = next.run(req).await;
    sim.0.recorder.finish(index, response.status().as_u16());
    response
}

async fn authorize(
    State(sim): State<Simulator>,
    RawQuery(raw): RawQuery,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let client_id = sim.client_id();
    match q.get("client_id").map(String::as_str) {
        Some(c) if c == client_id => {}
        Some(c) => {
            return page_error(&format!(
                "Unknown client_id {c:?}: the simulated application's client_id is {client_id}."
            ));
        }
        None => {
            return page_error(&format!(
                "Missing client_id (the simulated application's client_id is {client_id})."
            ));
        }
    }
    match q.get("response_type").map(String::as_str) {
        Some("code") => {}
        Some(other) => {
            return page_error(&format!(
                "Unsupported response_type {other:?}: only \"code\" (the authorization-code grant) is simulated."
            ));
        }
        None => return page_error("Missing response_type (use response_type=code)."),
    }
    let Some(redirect_uri) = q.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return page_error("Missing redirect_uri.");
    };
    let scopes = match parse_scopes(q.get("scope").map(String::as_str).unwrap_or("")) {
        Ok(s) => s,
        Err(msg) => return page_error(&msg),
    };
    let state = q.get("state");
    let Some(sim_user) = q.get("sim_user") else {
        return consent_page(&sim, raw.as_deref().unwrap_or(""), &scopes);
    };
    let user = sim_user
        .parse::<u64>()
        .ok()
        .filter(|id| sim.world().users.get(id).is_some_and(|u| !u.bot));
    let Some(user_id) = user else {
        return page_error(&format!(
            "Unknown sim_user {sim_user:?}: no simulated user has that id."
        ));
    };
    let code = sim
        .0
        .oauth
        .issue_code(Grant { user_id, scopes }, redirect_uri);
    let mut location = redirect_uri.clone();
    location.push(if redirect_uri.contains('?') { '&' } else { '?' });
    location.push_str("code=");
    location.push_str(&code);
    if let Some(s) = state {
        location.push_str("&state=");
        location.push_str(&percent_encode(s));
    }
    match HeaderValue::try_from(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => page_error("Invalid redirect_uri: it cannot be sent in a Location header."),
    }
}

/// Space-separated scopes (the query decoder already turned `+` and `%20` into
/// spaces); duplicates dropped, order kept.
fn parse_scopes(raw: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.split_whitespace() {
        if !SCOPES.contains(&s) {
            return Err(format!(
                "Invalid scope {s:?}: the simulator grants only {}.",
                SCOPES.join(", ")
            ));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    if out.is_empty() {
        return Err("Missing scope (e.g. scope=identify%20guilds).".into());
    }
    Ok(out)
}

fn page_error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("Discord simulator OAuth2 error: {message}\n"),
    )
        .into_response()
}

/// The "log in as" page: one link per simulated (non-bot) user.
fn consent_page(sim: &Simulator, raw_query: &str, scopes: &[String]) -> Response {
    let users: Vec<(u64, String)> = sim
        .world()
        .users
        .values()
        .filter(|u| !u.bot)
        .map(|u| (u.id, u.name.clone()))
        .collect();
    let mut items = String::new();
    for (id, name) in &users {
        let href = format!("/oauth2/authorize?{raw_query}&sim_user={id}");
        items.push_str(&format!(
            "<li><a href=\"{}\">{}</a> <small>({id})</small></li>\n",
            html_escape(&href),
            html_escape(name)
        ));
    }
    if users.is_empty() {
        items.push_str("<li>No simulated users yet (Simulator::create_user).</li>\n");
    }
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Authorize {app}</title></head>\n\
         <body>\n<h1>{app} wants to access your account</h1>\n\
         <p>Scopes: {scopes}</p>\n<p>Continue as:</p>\n<ul>\n{items}</ul>\n</body></html>\n",
        app = html_escape(&sim.0.config.bot_name),
        scopes = html_escape(&scopes.join(" ")),
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ----- POST /oauth2/token, /oauth2/token/revoke -----

/// `application/x-www-form-urlencoded` pairs; later duplicates win.
pub fn parse_form(bytes: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(bytes);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// What the recorder keeps of a form body: the fields, with secrets, codes and
/// tokens replaced by `"[redacted]"`.
pub fn recorded_form(headers: &HeaderMap, bytes: &[u8]) -> Option<Value> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !form || bytes.is_empty() {
        return None;
    }
    const SECRET: [&str; 6] = [
        "client_secret",
        "code",
        "refresh_token",
        "token",
        "access_token",
        "password",
    ];
    let fields = parse_form(bytes)
        .into_iter()
        .map(|(k, v)| {
            let v = if SECRET.contains(&k.as_str()) {
                "[redacted]".to_string()
            } else {
                v
            };
            (k, Value::String(v))
        })
        .collect();
    Some(Value::Object(fields))
}

fn oauth_error(status: u16, error: &str, description: Option<&str>) -> Response {
    let mut body = json!({ "error": error });
    if let Some(d) = description {
        body["error_description"] = json!(d);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(body)).into_response()
}

/// The client's credentials: HTTP Basic if given, else `client_id` and
/// `client_secret` form fields. Must be the simulated application's.
fn client_authenticated(
    sim: &Simulator,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    let (id, secret) = match basic {
        Some(b64) => {
            let Some(decoded) = base64_decode(b64.trim()) else {
                return false;
            };
            let decoded = String::from_utf8_lossy(&decoded).into_owned();
            let Some((id, secret)) = decoded.split_once(':') else {
                return false;
            };
            // RFC 6749 2.3.1: both are form-encoded before Basic encoding.
            (form_decode(id), form_decode(secret))
        }
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => return false,
        },
    };
    id == sim.client_id() && secret == sim.0.config.oauth_client_secret
}

/// `POST /oauth2/token`.
pub async fn token(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_form(&body);
    if !client_authenticated(&sim, &headers, &form) {
        return oauth_error(401, "invalid_client", None);
    }
    let grant = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(code) = form.get("code") else {
                return oauth_error(400, "invalid_request", Some("Missing \"code\" in request."));
            };
            match sim
                .0
                .oauth
                .redeem_code(code, form.get("redirect_uri").map(String::as_str))
            {
                Ok(g) => g,
                Err(CodeRefused::Invalid) => {
                    return oauth_error(400, "invalid_grant", Some("Invalid \"code\" in request."));
                }
            }
        }
        Some("refresh_token") => {
            let Some(refresh) = form.get("refresh_token") else {
                return oauth_error(
                    400,
                    "invalid_request",
                    Some("Missing \"refresh_token\" in request."),
                );
            };
            match sim.0.oauth.take_refresh(refresh) {
                Some(g) => g,
                None => {
                    return oauth_error(
                        400,
                        "invalid_grant",
                        Some("Invalid \"refresh_token\" in request."),
                    );
                }
            }
        }
        _ => return oauth_error(400, "unsupported_grant_type", None),
    };
    let scope = grant.scopes.join(" ");
    let (access, refresh) = sim.0.oauth.issue_tokens(grant);
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_SECS,
            "refresh_token": refresh,
            "scope": scope,
        })),
    )
        .into_response()
}

/// `POST /oauth2/token/revoke`: 200 `{}` whether or not the token was live
/// (RFC 7009).
pub async fn revoke(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_form(&body);
    if !client_authenticated(&sim, &headers, &form) {
        return oauth_error(401, "invalid_client", None);
    }
    let Some(token) = form.get("token") else {
        return oauth_error(
            400,
            "invalid_request",
            Some("Missing \"token\" in request."),
        );
    };
    sim.0.oauth.revoke(token);
    (StatusCode::OK, axum::Json(json!({}))).into_response()
}

// ----- Bearer endpoints -----

/// `GET /users/@me` for a Bearer token: needs `identify`; `email` adds the email.
pub fn me(sim: &Simulator, grant: &Grant) -> ApiResult<Response> {
    if !grant.has("identify") {
        return Err(ApiError::unauthorized());
    }
    let w = sim.world();
    let mut u = payloads::user_by_id(&w, grant.user_id);
    payloads::merge(
        &mut u,
        json!({ "mfa_enabled": false, "locale": "en-US", "premium_type": 0 }),
    );
    if grant.has("email") {
        payloads::merge(
            &mut u,
            json!({
                "email": format!("user{}@discord-sim.invalid", grant.user_id),
                "verified": true,
            }),
        );
    }
    Ok(crate::rest::ok(u))
}

/// `GET /users/@me/guilds`: the partial guilds `user_id` is a member of, by id,
/// with their guild-level permissions. `before`, `after` and `limit` (1–200,
/// default 200) as on Discord.
pub fn my_guilds(
    sim: &Simulator,
    user_id: u64,
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    let limit = match q.get("limit") {
        None => 200,
        Some(l) => match l.parse::<u64>() {
            Ok(n) if (1..=200).contains(&n) => n as usize,
            Ok(0) => {
                return Err(ApiError::form(
                    &["limit"],
                    "NUMBER_TYPE_MIN",
                    "int value should be greater than or equal to 1.",
                ));
            }
            Ok(_) => {
                return Err(ApiError::form(
                    &["limit"],
                    "NUMBER_TYPE_MAX",
                    "int value should be less than or equal to 200.",
                ));
            }
            Err(_) => {
                return Err(ApiError::form(
                    &["limit"],
                    "NUMBER_TYPE_COERCE",
                    &format!("Value \"{l}\" is not int."),
                ));
            }
        },
    };
    let bound = |key: &str| q.get(key).and_then(|v| v.parse::<u64>().ok());
    let (before, after) = (bound("before"), bound("after"));
    let w = sim.world();
    let mut guilds: Vec<Value> = w
        .guilds
        .values()
        .filter(|g| g.members.contains_key(&user_id))
        .filter(|g| before.is_none_or(|b| g.id < b) && after.is_none_or(|a| g.id > a))
        .map(|g| {
            json!({
                "id": sf(g.id),
                "name": g.name,
                "icon": null,
                "banner": null,
                "owner": g.owner_id == user_id,
                "permissions": g.base_permissions(user_id).to_string(),
                "features": [],
            })
        })
        .collect();
    // With only `before`, Discord gives the page just below it.
    if before.is_some() && after.is_none() && guilds.len() > limit {
        guilds.drain(..guilds.len() - limit);
    }
    guilds.truncate(limit);
    Ok(crate::rest::ok(Value::Array(guilds)))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_forms() {
        assert_eq!(base64_decode("YWJjOmRlZg==").unwrap(), b"abc:def");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert!(base64_decode("a b").is_none());
        let f = parse_form(b"a=1+2&b=%26x%3D&c");
        assert_eq!(f["a"], "1 2");
        assert_eq!(f["b"], "&x=");
        assert_eq!(f["c"], "");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html_escape("<b>x</b> & \"'"),
            "&lt;b&gt;x&lt;/b&gt; &amp; &quot;&#39;"
        );
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn scopes() {
        assert_eq!(
            parse_scopes("identify guilds identify").unwrap(),
            vec!["identify", "guilds"]
        );
        assert!(
            parse_scopes("identify bot")
                .unwrap_err()
                .contains("\"bot\"")
        );
        assert!(parse_scopes("").is_err());
    }
}
