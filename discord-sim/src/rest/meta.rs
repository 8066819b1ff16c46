//! Gateway discovery, the current user and the application.

use super::{Params, id, ok};
use crate::Simulator;
use crate::error::{ApiError, ApiResult};
use crate::payloads::{self, sf};
use crate::state::UserRec;
use axum::extract::State;
use axum::response::Response;
use serde_json::json;

/// `GET /gateway`: where to connect.
pub async fn gateway(State(sim): State<Simulator>) -> Response {
    ok(json!({ "url": sim.0.gateway.url() }))
}

/// `GET /gateway/bot`: the URL, the recommended shard count and the session start
/// limit (Discord's 1000 per day, concurrency 1).
pub async fn gateway_bot(State(sim): State<Simulator>) -> Response {
    let used = sim.0.gateway.stats().identifies;
    ok(json!({
        "url": sim.0.gateway.url(),
        "shards": sim.0.config.shards,
        "session_start_limit": {
            "total": 1000,
            "remaining": 1000u32.saturating_sub(used),
            "reset_after": 86_400_000,
            "max_concurrency": 1,
        },
    }))
}

/// `GET /users/@me`: the bot user.
pub async fn me(State(sim): State<Simulator>) -> Response {
    let w = sim.world();
    let mut u = payloads::user_by_id(&w, w.bot_id);
    payloads::merge(
        &mut u,
        json!({ "verified": true, "mfa_enabled": false, "email": null, "locale": "en-US", "premium_type": 0 }),
    );
    ok(u)
}

/// `GET /users/{id}`.
pub async fn user(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let user_id = id(&p, "user_id")?;
    let w = sim.world();
    let u = w.users.get(&user_id).ok_or_else(ApiError::unknown_user)?;
    Ok(ok(payloads::user(u)))
}

/// `GET /oauth2/applications/@me`: serenity's `CurrentApplicationInfo` needs `id,
/// name, description, bot_public, bot_require_code_grant, verify_key`.
pub async fn application(State(sim): State<Simulator>) -> Response {
    let cfg = &sim.0.config;
    let w = sim.world();
    let owner = payloads::user(&UserRec {
        id: cfg.application_id.saturating_sub(1),
        name: "sim-developer".into(),
        bot: false,
    });
    let endpoint = sim.0.interactions_url.lock().expect("url").clone();
    ok(json!({
        "id": sf(cfg.application_id),
        "name": cfg.bot_name,
        "icon": null,
        "description": "",
        "summary": "",
        "type": null,
        "hook": true,
        "bot_public": true,
        "bot_require_code_grant": false,
        "verify_key": crate::ids::hex(sim.0.signing_key.verifying_key().as_bytes()),
        "flags": crate::APPLICATION_FLAGS,
        "owner": owner,
        "team": null,
        "bot": payloads::user_by_id(&w, cfg.bot_user_id),
        "rpc_origins": [],
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": endpoint,
        "role_connections_verification_url": null,
        "approximate_guild_count": w.bot_guilds(cfg.bot_user_id).len(),
        "approximate_user_install_count": 0,
    }))
}
