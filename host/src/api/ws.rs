//! `/api/ws`: live guild events for the dashboard.
//!
//! The client authenticates like any request (session cookie, or an API key in
//! `Authorization`), then sends `{"type": "subscribe_guild", "guild_id": "…"}`
//! (checked like a guild route) and `unsubscribe_guild`. The server sends
//! `{"type": "<event>", "guild_id", "data", "at"}` for `audit_log`,
//! `settings_update`, `feature_toggled`, `command_executed` and `export_progress`, the kinds
//! features publish (`ticket_update`, …, with a `feature` field naming the
//! publisher), plus `subscribed` / `unsubscribed` / `error` replies.
//!
//! Memory per connection is bounded: events come from a bounded broadcast
//! channel, and a client that falls behind it (or takes longer than
//! [`SEND_TIMEOUT`] to accept one frame) is disconnected with close code 1008
//! instead of being buffered for. Every [`ApiConfig::ws_recheck`](super::ApiConfig)
//! the socket checks that its session or key still works (else it closes with
//! 1008) and that the caller may still manage each followed guild (else that
//! guild is dropped with an `unsubscribed` frame carrying a `reason`); when a
//! followed guild moves to another owner's tenant, that guild is re-checked at
//! once.
//!
//! Messages count against the caller's WebSocket allowance (all its sockets
//! together): one over it is answered with a `rate_limited` error frame
//! carrying `retry_after`, and a socket that keeps sending is closed with 1008.
//!
//! Audit-log events come from tailing the `audit_log` table, so entries written
//! by any process (the CLI, the gateway, another API instance) reach every
//! dashboard; the other events are published where they happen (through Redis
//! when it is configured).

use super::ApiState;
use super::auth::Caller;
use super::authz::authorize;
use super::error::ApiError;
use super::routes::guild::AuditEntryView;
use super::snowflake::Snowflake;
use crate::live::{LiveEvent, LiveKind};
use crate::store::GUILD_TRANSFERRED;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How long a closing socket waits for the client's Close.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);
/// The longest one frame may wait for a client to take it.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Guilds one connection may follow at once.
const MAX_SUBSCRIPTIONS: usize = 100;
/// How often the audit log is read for new entries.
const TAIL_EVERY: Duration = Duration::from_millis(300);
/// Close code for a client too slow to keep up, no longer signed in, or sending
/// too much (policy violation).
const CLOSE_POLICY: u16 = 1008;
/// Messages over the rate limit answered with an error frame in a row before
/// the socket is closed: a client that keeps going does not read the replies.
const MAX_REFUSED: u32 = 10;

pub fn router() -> Router<ApiState> {
    Router::new().route("/api/ws", get(upgrade))
}

/// What a client sends.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    SubscribeGuild {
        #[serde(alias = "guildId")]
        guild_id: Snowflake,
    },
    UnsubscribeGuild {
        #[serde(alias = "guildId")]
        guild_id: Snowflake,
    },
}

/// An event as sent to clients.
#[derive(Serialize)]
struct Outgoing<'e> {
    #[serde(rename = "type")]
    kind: &'e str,
    #[serde(skip_serializing_if = "Option::is_none")]
    feature: Option<&'e str>,
    guild_id: Snowflake,
    data: &'e Value,
    at: chrono::DateTime<chrono::Utc>,
}

/// Live guild events (WebSocket). Send `subscribe_guild` / `unsubscribe_guild`.
#[utoipa::path(get, path = "/api/ws", tag = "live", operation_id = "openLiveEvents",
    security(("session" = []), ("api_key" = [])),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        super::routes::CallerErrors))]
pub async fn upgrade(
    State(state): State<ApiState>,
    caller: Caller,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = ws.map_err(|_| {
        ApiError::BadRequest(
            "this is a WebSocket endpoint: connect with `Upgrade: websocket`".into(),
        )
    })?;
    Ok(ws
        .max_message_size(4 * 1024)
        .on_upgrade(move |socket| serve(state, caller, socket)))
}

async fn serve(state: ApiState, caller: Caller, mut socket: WebSocket) {
    let mut events = state.live().subscribe();
    let mut guilds: HashSet<u64> = HashSet::new();
    let mut recheck = tokio::time::interval(state.config().ws_recheck);
    recheck.tick().await;
    let mut refused = 0;
    loop {
        tokio::select! {
            _ = recheck.tick() => {
                if !still_signed_in(&state, &caller).await {
                    close(&mut socket, "your session ended or the API key was revoked").await;
                    return;
                }
                let all: Vec<u64> = guilds.iter().copied().collect();
                for reply in recheck_guilds(&state, &caller, &mut guilds, all, false).await {
                    if !send(&mut socket, reply).await {
                        return;
                    }
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { return };
                let reply = match message {
                    Message::Text(text) => match state.limiter().check_frame(&caller).await {
                        Ok(()) => {
                            refused = 0;
                            handle(&state, &caller, &mut guilds, text.as_str()).await
                        }
                        Err(limited) => {
                            refused += 1;
                            if refused > MAX_REFUSED {
                                close(&mut socket, "too many messages; reconnect later").await;
                                return;
                            }
                            rate_limited_frame(&limited)
                        }
                    },
                    Message::Close(_) => return,
                    _ => continue,
                };
                if !send(&mut socket, reply).await {
                    return;
                }
            }
            event = events.recv() => {
                let event = match event {
                    Ok(event) => event,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "closing a WebSocket that fell behind");
                        close(&mut socket, "too slow: events were dropped; reconnect and resubscribe").await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                };
                if !guilds.contains(&event.guild_id) {
                    continue;
                }
                // The guild moved to its new owner's tenant: the caller may have
                // lost it now, not at the next periodic re-check, and then must
                // not read the news either.
                if is_transfer(&event) {
                    let moved = vec![event.guild_id];
                    // Fail closed: rights that cannot be checked right after a
                    // transfer (Discord busy) do not get the news either.
                    for reply in recheck_guilds(&state, &caller, &mut guilds, moved, true).await {
                        if !send(&mut socket, reply).await {
                            return;
                        }
                    }
                    if !guilds.contains(&event.guild_id) {
                        continue;
                    }
                }
                let frame = json!(Outgoing {
                    kind: event.kind.as_str(),
                    feature: event.kind.feature(),
                    guild_id: Snowflake(event.guild_id),
                    data: &event.data,
                    at: event.at,
                });
                if !send(&mut socket, frame).await {
                    tracing::info!("closing a WebSocket that does not read");
                    return;
                }
            }
        }
    }
}

/// Closes with 1008 (policy violation) and a reason for the client.
async fn close(socket: &mut WebSocket, reason: &'static str) {
    let frame = Message::Close(Some(CloseFrame {
        code: CLOSE_POLICY,
        reason: reason.into(),
    }));
    if !matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(frame)).await,
        Ok(Ok(()))
    ) {
        return;
    }
    // Finish the closing handshake: take (and drop) what the client still sends
    // until its own Close, for at most CLOSE_DRAIN. Dropping the connection with
    // its frames unread makes the kernel reset it, and the client may then never
    // read the Close frame and its reason.
    let _ = tokio::time::timeout(CLOSE_DRAIN, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Whether the session or key the socket was opened with still works.
async fn still_signed_in(state: &ApiState, caller: &Caller) -> bool {
    let live = match caller {
        Caller::User { session, .. } => state
            .store()
            .live_session(session)
            .await
            .map(|s| s.is_some()),
        Caller::Key { key_id, .. } => state
            .store()
            .live_api_key(key_id)
            .await
            .map(|k| k.is_some()),
    };
    // A database hiccup is not a reason to drop a dashboard; the next check decides.
    live.unwrap_or(true)
}

/// Drops those of `which` the caller may no longer manage from `guilds`, with an
/// `unsubscribed` frame saying why for each. When the rights cannot be checked
/// (Discord or the database unavailable) the guild is kept, unless
/// `fail_closed`.
async fn recheck_guilds(
    state: &ApiState,
    caller: &Caller,
    guilds: &mut HashSet<u64>,
    which: Vec<u64>,
    fail_closed: bool,
) -> Vec<Value> {
    let mut replies = Vec::new();
    for guild_id in which {
        match authorize(state, caller, guild_id).await {
            Ok(_) => {}
            Err(ApiError::Unavailable { .. } | ApiError::Internal(_)) if !fail_closed => {}
            Err(e) => {
                guilds.remove(&guild_id);
                replies.push(json!({ "type": "unsubscribed", "guild_id": Snowflake(guild_id), "reason": e.to_string() }));
            }
        }
    }
    replies
}

/// Sends one frame; false when the client is gone or too slow to take it.
async fn send(socket: &mut WebSocket, frame: Value) -> bool {
    let text = frame.to_string();
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

async fn handle(state: &ApiState, caller: &Caller, guilds: &mut HashSet<u64>, text: &str) -> Value {
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            return error_frame(
                "bad_request",
                &format!("{e}; send {{\"type\": \"subscribe_guild\", \"guild_id\": \"<id>\"}}"),
            );
        }
    };
    match message {
        ClientMessage::SubscribeGuild { guild_id } => {
            if !guilds.contains(&guild_id.0) && guilds.len() >= MAX_SUBSCRIPTIONS {
                return error_frame(
                    "invalid",
                    &format!("at most {MAX_SUBSCRIPTIONS} guilds per connection"),
                );
            }
            match authorize(state, caller, guild_id.0).await {
                Ok(_) => {
                    guilds.insert(guild_id.0);
                    json!({ "type": "subscribed", "guild_id": guild_id })
                }
                Err(e) => {
                    let code = match e {
                        ApiError::Forbidden(_) => "forbidden",
                        ApiError::NotFound(_) => "not_found",
                        _ => "unavailable",
                    };
                    json!({ "type": "error", "guild_id": guild_id, "error": { "code": code, "message": e.to_string() } })
                }
            }
        }
        ClientMessage::UnsubscribeGuild { guild_id } => {
            guilds.remove(&guild_id.0);
            json!({ "type": "unsubscribed", "guild_id": guild_id })
        }
    }
}

fn error_frame(code: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "code": code, "message": message } })
}

/// The refusal of a message over the rate limit, with the seconds to wait.
fn rate_limited_frame(limited: &ApiError) -> Value {
    let mut frame = error_frame("rate_limited", &limited.to_string());
    if let ApiError::RateLimited { retry_after } = limited {
        frame["error"]["retry_after"] = json!(retry_after);
    }
    frame
}

/// Whether a live event says a guild moved to another tenant.
fn is_transfer(event: &LiveEvent) -> bool {
    event.kind == LiveKind::AuditLog && event.data["action"] == GUILD_TRANSFERRED
}

/// Publishes an event about a guild to every dashboard following it.
pub fn announce(state: &ApiState, guild_id: u64, kind: LiveKind, data: Value) {
    state.live().publish(LiveEvent {
        guild_id,
        kind,
        data,
        at: chrono::Utc::now(),
    });
}

/// Turns new audit-log rows into `audit_log` events, for this process's clients.
pub async fn tail_audit_log(state: ApiState) {
    let mut last = loop {
        match state.store().audit_head().await {
            Ok(head) => break head,
            Err(e) => {
                tracing::warn!(error = %e, "audit tail: cannot read the log's head; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut tick = tokio::time::interval(TAIL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let entries = match state.store().audit_since(last, 500).await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "audit tail: read failed; retrying");
                continue;
            }
        };
        for entry in entries {
            last = last.max(entry.id);
            let Some(guild_id) = entry.guild_id else {
                continue;
            };
            if entry.action == GUILD_TRANSFERRED {
                state.rights().forget_guild(guild_id);
            }
            let at = entry.created_at;
            let data = serde_json::to_value(AuditEntryView::from(entry)).unwrap_or(Value::Null);
            state.live().publish_local(LiveEvent {
                guild_id,
                kind: LiveKind::AuditLog,
                data,
                at,
            });
        }
    }
}
