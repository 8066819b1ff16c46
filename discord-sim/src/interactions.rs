//! Interactions: users running slash commands, clicking buttons, choosing from
//! selects and submitting modals; the bot answering through the callback endpoint
//! (or, with an interactions endpoint URL, in the HTTP response), editing
//! `@original` and sending followups — with Discord's rules: 3 s to answer, one
//! answer only, webhooks valid for 15 minutes.
//!
//! HTTP delivery signs each POST like Discord: Ed25519 over the `X-Signature-Timestamp`
//! bytes followed by the raw body, hex in `X-Signature-Ed25519`.

use crate::error::{ApiError, ApiResult};
use crate::messages::{self, snowflake_value};
use crate::payloads::{self, sf};
use crate::rest::{Params, id, json_body, no_content, ok};
use crate::state::{InteractionRec, MessageRec, World};
use crate::{Interaction, InteractionResponse, Simulator, ids};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use ed25519_dalek::Signer;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long interaction webhooks (`@original`, followups) stay valid.
const WEBHOOK_VALIDITY: Duration = Duration::from_secs(15 * 60);

/// Discord's default upload limit, sent as `attachment_size_limit`.
const ATTACHMENT_SIZE_LIMIT: u64 = 10 * 1024 * 1024;

/// Broken requests for negative tests of an interactions endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgery {
    /// A signature that does not verify.
    BadSignature,
    /// Validly signed, but with a timestamp 10 minutes old (a replay).
    StaleTimestamp,
    /// No `X-Signature-*` headers at all.
    MissingHeaders,
}

/// What kind of interaction a user starts.
enum Start {
    Command { name: String, options: Value },
    Component { message_id: u64, data: Value },
    Modal { data: Value },
}

impl Simulator {
    /// The user runs `/command` with Discord's `data.options` array; any name is
    /// accepted (stale registrations happen on Discord too), and `data.id` is the
    /// registered command's id when there is one. USER/ROLE/CHANNEL/MENTIONABLE
    /// options get their `resolved` entries.
    pub async fn slash(
        &self,
        guild_id: u64,
        channel_id: u64,
        user_id: u64,
        command: &str,
        options: Value,
    ) -> Interaction {
        let start = Start::Command {
            name: command.to_string(),
            options,
        };
        self.start_interaction(guild_id, channel_id, user_id, start)
            .await
    }

    /// The user clicks the button `custom_id` on `message_id`.
    pub async fn click(
        &self,
        guild_id: u64,
        channel_id: u64,
        user_id: u64,
        message_id: u64,
        custom_id: &str,
    ) -> Interaction {
        let data = json!({ "custom_id": custom_id, "component_type": 2 });
        let start = Start::Component { message_id, data };
        self.start_interaction(guild_id, channel_id, user_id, start)
            .await
    }

    /// The user picks `values` in the string select `custom_id` on `message_id`.
    pub async fn choose(
        &self,
        guild_id: u64,
        channel_id: u64,
        user_id: u64,
        message_id: u64,
        custom_id: &str,
        values: &[&str],
    ) -> Interaction {
        let data = json!({ "custom_id": custom_id, "component_type": 3, "values": values });
        let start = Start::Component { message_id, data };
        self.start_interaction(guild_id, channel_id, user_id, start)
            .await
    }

    /// The user submits the modal `custom_id` with `(field custom_id, value)` pairs.
    pub async fn submit_modal(
        &self,
        guild_id: u64,
        channel_id: u64,
        user_id: u64,
        custom_id: &str,
        fields: &[(&str, &str)],
    ) -> Interaction {
        let rows: Vec<Value> = fields
            .iter()
            .map(|(id, value)| {
                json!({ "type": 1, "components": [{ "type": 4, "custom_id": id, "value": value }] })
            })
            .collect();
        let data = json!({ "custom_id": custom_id, "components": rows });
        self.start_interaction(guild_id, channel_id, user_id, Start::Modal { data })
            .await
    }

    /// Waits for the bot's answer to the interaction; edits and followups are those
    /// received by the time it returns.
    pub async fn interaction_response(
        &self,
        interaction_id: u64,
        timeout: Duration,
    ) -> Option<InteractionResponse> {
        self.wait_until(timeout, || {
            let w = self.world();
            let rec = w.interactions.get(&interaction_id)?;
            let (kind, data) = rec.response.clone()?;
            Some(InteractionResponse {
                kind,
                data,
                edits: rec.edits.clone(),
                followups: rec.followups.clone(),
            })
        })
        .await
    }

    /// Waits for the first `PATCH …/messages/@original` (typically after a deferral).
    pub async fn wait_for_edit(&self, interaction_id: u64, timeout: Duration) -> Option<Value> {
        self.wait_until(timeout, || {
            self.world()
                .interactions
                .get(&interaction_id)?
                .edits
                .first()
                .cloned()
        })
        .await
    }

    /// From now on interactions are POSTed to `url`, signed, instead of sent over the
    /// gateway; the POST's response is the interaction response. Returns the
    /// application's public key (hex) to verify them with.
    pub fn deliver_interactions_to(&self, url: &str) -> String {
        *self.0.interactions_url.lock().expect("url") = Some(url.to_string());
        self.public_key_hex()
    }

    /// Sends a signed PING (type 1), as Discord does when the endpoint URL is saved;
    /// returns the status and JSON body (status 0 and `null` if unreachable).
    pub async fn ping_interactions_endpoint(&self) -> (u16, Value) {
        let body = self.ping_body();
        match self.post_signed(&body, None).await {
            Ok((status, v)) => (status, v),
            Err(e) => {
                tracing::warn!(error = %e, "interactions endpoint unreachable");
                (0, Value::Null)
            }
        }
    }

    /// Sends a PING that must be refused (401): forged, replayed or unsigned.
    /// Returns the status (0 if unreachable).
    pub async fn post_interaction_unsigned_or_forged(&self, forge: Forgery) -> u16 {
        let body = self.ping_body();
        self.post_signed(&body, Some(forge))
            .await
            .map_or(0, |(s, _)| s)
    }

    fn public_key_hex(&self) -> String {
        ids::hex(self.0.signing_key.verifying_key().as_bytes())
    }

    fn ping_body(&self) -> Vec<u8> {
        json!({
            "id": sf(self.next_id()),
            "application_id": sf(self.application_id()),
            "type": 1,
            "token": new_token(self.next_id()),
            "version": 1,
            "user": payloads::user_by_id(&self.world(), self.bot_user_id()),
            "entitlements": [],
            "authorizing_integration_owners": {},
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        })
        .to_string()
        .into_bytes()
    }

    /// POSTs `body` to the interactions endpoint, signed (or forged).
    async fn post_signed(
        &self,
        body: &[u8],
        forge: Option<Forgery>,
    ) -> Result<(u16, Value), String> {
        let url = self
            .0
            .interactions_url
            .lock()
            .expect("url")
            .clone()
            .ok_or("no interactions endpoint configured (call deliver_interactions_to)")?;
        let mut ts = ids::now_secs();
        if forge == Some(Forgery::StaleTimestamp) {
            ts -= 600;
        }
        let ts = ts.to_string();
        let mut signed = ts.as_bytes().to_vec();
        signed.extend_from_slice(body);
        let mut signature = self.0.signing_key.sign(&signed).to_bytes();
        if forge == Some(Forgery::BadSignature) {
            signature[0] ^= 0x55;
        }
        let mut req = self
            .0
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                "Discord-Interactions/1.0 (+https://discord.com)",
            )
            .body(body.to_vec());
        if forge != Some(Forgery::MissingHeaders) {
            req = req
                .header("x-signature-ed25519", ids::hex(&signature))
                .header("x-signature-timestamp", ts);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn start_interaction(
        &self,
        guild_id: u64,
        channel_id: u64,
        user_id: u64,
        start: Start,
    ) -> Interaction {
        let id = self.next_id();
        let token = new_token(id);
        let http_url = self.0.interactions_url.lock().expect("url").clone();
        let (payload, delivery) = {
            let mut w = self.world();
            let (kind, message_id, command_name) = match &start {
                Start::Command { name, .. } => (2, None, Some(name.clone())),
                Start::Component { message_id, .. } => (3, Some(*message_id), None),
                Start::Modal { .. } => (5, None, None),
            };
            let rec = InteractionRec {
                id,
                token: token.clone(),
                kind,
                guild_id,
                channel_id,
                user_id,
                message_id,
                created: Instant::now(),
                response: None,
                original_message_id: None,
                edits: vec![],
                followups: vec![],
                followup_message_ids: vec![],
                command_name,
            };
            let payload = build_payload(&w, &rec, &start, self.next_id());
            w.interactions.insert(id, rec);
            w.interaction_tokens.insert(token.clone(), id);
            let delivery = http_url
                .is_none()
                .then(|| self.emit(Some(guild_id), "INTERACTION_CREATE", payload.clone(), 0));
            (payload, delivery)
        };
        match delivery {
            Some(d) => d.written().await,
            None => {
                let sim = self.clone();
                let (iid, tok) = (id, token.clone());
                tokio::spawn(async move {
                    let body = payload.to_string().into_bytes();
                    match sim.post_signed(&body, None).await {
                        Ok((status, response)) if (200..300).contains(&status) => {
                            if let Err(e) = apply_callback(&sim, iid, &tok, &response) {
                                tracing::warn!(status = e.status, body = %e.body, "endpoint's interaction response refused");
                            }
                        }
                        Ok((status, body)) => {
                            tracing::warn!(status, %body, "interactions endpoint answered an error")
                        }
                        Err(e) => tracing::warn!(error = %e, "interactions endpoint unreachable"),
                    }
                });
            }
        }
        Interaction { id, token }
    }
}

/// Discord's tokens are long opaque URL-safe strings.
fn new_token(id: u64) -> String {
    format!("aW50ZXJhY3Rpb246{id}{}", ids::random_hex(48))
}

/// INTERACTION_CREATE's `d` (and the HTTP POST body).
fn build_payload(w: &World, rec: &InteractionRec, start: &Start, fresh_id: u64) -> Value {
    let guild = w.guilds.get(&rec.guild_id);
    let channel = w.channels.get(&rec.channel_id);
    let member_perms = match (guild, channel) {
        (Some(g), Some(c)) => g.channel_permissions(c, rec.user_id),
        (Some(g), None) => g.base_permissions(rec.user_id),
        _ => 0,
    };
    let app_perms = match (guild, channel) {
        (Some(g), Some(c)) => g.channel_permissions(c, w.bot_id),
        _ => 0,
    };
    let member = match guild.and_then(|g| g.members.get(&rec.user_id).map(|m| (g, m))) {
        Some((g, m)) => {
            let mut v = payloads::member(w, g, m, true);
            v["permissions"] = json!(member_perms.to_string());
            v
        }
        None => {
            tracing::warn!(
                user = rec.user_id,
                guild = rec.guild_id,
                "interaction from a non-member"
            );
            json!({
                "user": payloads::user_by_id(w, rec.user_id),
                "roles": [], "joined_at": ids::iso8601(ids::now_ms()), "deaf": false,
                "mute": false, "flags": 0, "pending": false, "permissions": member_perms.to_string(),
                "nick": null, "avatar": null, "premium_since": null, "communication_disabled_until": null,
            })
        }
    };
    let channel_v = match channel {
        Some(c) => {
            let mut v = payloads::channel(w, c);
            v["permissions"] = json!(member_perms.to_string());
            v
        }
        None => json!({ "id": sf(rec.channel_id), "type": 0 }),
    };
    let mut v = json!({
        "id": sf(rec.id),
        "application_id": sf(w.application_id),
        "type": rec.kind,
        "token": rec.token,
        "version": 1,
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        "channel_id": sf(rec.channel_id),
        "channel": channel_v,
        "guild_id": sf(rec.guild_id),
        "guild": { "id": sf(rec.guild_id), "locale": "en-US", "features": [] },
        "member": member,
        "app_permissions": app_perms.to_string(),
        "authorizing_integration_owners": { "0": sf(rec.guild_id) },
        "context": 0,
    });
    match start {
        Start::Command { name, options } => {
            let command_id = w
                .guild_commands
                .get(&rec.guild_id)
                .into_iter()
                .flatten()
                .chain(&w.global_commands)
                .find(|c| c["name"] == json!(name) && c["type"] == json!(1))
                .and_then(|c| c["id"].as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(fresh_id);
            let options = if options.is_null() {
                json!([])
            } else {
                options.clone()
            };
            v["data"] = json!({
                "id": sf(command_id),
                "name": name,
                "type": 1,
                "options": options,
                "resolved": resolve(w, rec.guild_id, &options),
                "guild_id": sf(rec.guild_id),
            });
        }
        Start::Component { message_id, data } => {
            v["data"] = data.clone();
            v["message"] = component_message(w, rec, *message_id);
        }
        Start::Modal { data } => v["data"] = data.clone(),
    }
    v
}

/// The message a component sits on. A test may click on a message the simulator
/// never saw; it then gets a minimal message from the bot with that id.
fn component_message(w: &World, rec: &InteractionRec, message_id: u64) -> Value {
    let found = w.messages.values().flatten().find(|m| m.id == message_id);
    match found {
        Some(m) => payloads::message(w, m, false),
        None => {
            let m = MessageRec {
                id: message_id,
                channel_id: rec.channel_id,
                guild_id: Some(rec.guild_id),
                author_id: w.bot_id,
                content: String::new(),
                embeds: vec![],
                components: vec![],
                attachments: vec![],
                nonce: None,
                reply_to: None,
                allowed_mentions: None,
                timestamp_ms: ids::snowflake_ms(message_id),
                edited_ms: None,
                flags: 0,
                kind: 0,
                webhook_id: None,
                interaction: None,
                mentions: vec![],
                mention_roles: vec![],
                mention_everyone: false,
                reactions: vec![],
                pinned: false,
            };
            payloads::message(w, &m, false)
        }
    }
}

/// `data.resolved` for the options' users, members, roles and channels (recursing
/// into subcommands).
fn resolve(w: &World, guild_id: u64, options: &Value) -> Value {
    let mut users = serde_json::Map::new();
    let mut members = serde_json::Map::new();
    let mut roles = serde_json::Map::new();
    let mut channels = serde_json::Map::new();
    let guild = w.guilds.get(&guild_id);
    let mut stack: Vec<&Value> = options
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    while let Some(o) = stack.pop() {
        if let Some(sub) = o.get("options").and_then(Value::as_array) {
            stack.extend(sub);
        }
        let kind = o.get("type").and_then(Value::as_u64).unwrap_or(0);
        let Some(target) = o.get("value").and_then(snowflake_value) else {
            continue;
        };
        let key = target.to_string();
        let is_user = kind == 6 || (kind == 9 && w.users.contains_key(&target));
        let is_role = kind == 8 || (kind == 9 && !is_user);
        if is_user {
            users.insert(key.clone(), payloads::user_by_id(w, target));
            if let Some(g) = guild
                && let Some(m) = g.members.get(&target)
            {
                let mut mv = payloads::member(w, g, m, false);
                mv["permissions"] = json!(g.base_permissions(target).to_string());
                members.insert(key, mv);
            }
        } else if is_role {
            if let Some(r) = guild.and_then(|g| g.roles.get(&target)) {
                roles.insert(key, payloads::role(r));
            }
        } else if kind == 7
            && let Some(c) = w.channels.get(&target)
        {
            let perms = guild.map_or(0, |g| g.channel_permissions(c, w.bot_id));
            channels.insert(
                key,
                json!({ "id": sf(c.id), "name": c.name, "type": c.kind, "permissions": perms.to_string(),
                        "parent_id": payloads::opt_sf(c.parent_id), "guild_id": sf(guild_id) }),
            );
        }
    }
    let mut out = serde_json::Map::new();
    for (k, m) in [
        ("users", users),
        ("members", members),
        ("roles", roles),
        ("channels", channels),
    ] {
        if !m.is_empty() {
            out.insert(k.into(), Value::Object(m));
        }
    }
    Value::Object(out)
}

/// Applies the bot's answer (from the callback endpoint or an HTTP response).
fn apply_callback(
    sim: &Simulator,
    interaction_id: u64,
    token: &str,
    body: &Value,
) -> ApiResult<()> {
    let window = sim.0.config.interaction_window;
    {
        let mut w = sim.world();
        let rec = w
            .interactions
            .get(&interaction_id)
            .filter(|r| r.token == token)
            .ok_or_else(ApiError::unknown_interaction)?;
        if rec.response.is_some() {
            return Err(ApiError::already_acknowledged());
        }
        if rec.created.elapsed() > window {
            return Err(ApiError::unknown_interaction());
        }
        let rec = rec.clone();
        let kind = body.get("type").and_then(Value::as_u64).unwrap_or(0);
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        let on_message = rec.message_id.is_some();
        match kind {
            4 | 5 => {}
            6 | 7 if on_message => {}
            9 if rec.kind != 5 => validate_modal(&data)?,
            _ => {
                return Err(ApiError::form(
                    &["type"],
                    "INTERACTION_RESPONSE_TYPE_INVALID",
                    "Invalid interaction response type",
                ));
            }
        }
        let mut original = None;
        if kind == 4 {
            let parsed = messages::parse(&data, true).map_err(nest_under_data)?;
            let mut m = messages::build(
                &w,
                sim.next_id(),
                rec.channel_id,
                w.bot_id,
                &parsed,
                ids::now_ms(),
            );
            m.guild_id = Some(rec.guild_id);
            m.webhook_id = Some(w.application_id);
            m.kind = if rec.kind == 2 { 20 } else { 0 };
            m.interaction = Some(interaction_metadata(&w, &rec));
            original = Some(m.id);
            w.push_message(m.clone());
            if !m.ephemeral() {
                let _ = sim.emit_message(&w, &m, "MESSAGE_CREATE");
            }
        } else if kind == 7 {
            let parsed = messages::parse(&data, false).map_err(nest_under_data)?;
            if let Some(mid) = rec.message_id {
                let channel = w
                    .messages
                    .iter()
                    .find(|(_, ms)| ms.iter().any(|m| m.id == mid))
                    .map(|(c, _)| *c);
                if let Some(m) = channel.and_then(|c| w.message_mut(c, mid)) {
                    messages::apply_edit(m, &parsed, ids::now_ms());
                    let m = m.clone();
                    let _ = sim.emit_message(&w, &m, "MESSAGE_UPDATE");
                }
            }
            original = rec.message_id;
        } else if kind == 6 {
            original = rec.message_id;
        }
        let rec = w.interactions.get_mut(&interaction_id).expect("checked");
        rec.response = Some((kind as u8, data));
        rec.original_message_id = original;
    }
    sim.notify_changed();
    Ok(())
}

/// Moves a message body's form errors under `data`, where they are in a callback.
fn nest_under_data(mut e: ApiError) -> ApiError {
    if let Some(errors) = e.body.get_mut("errors") {
        *errors = json!({ "data": errors.take() });
    }
    e
}

fn validate_modal(data: &Value) -> ApiResult<()> {
    let field = |f: &str, code: &str, msg: &str| ApiError::form(&["data", f], code, msg);
    if data
        .get("custom_id")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(field(
            "custom_id",
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    }
    let title = data.get("title").and_then(Value::as_str).unwrap_or("");
    if !(1..=45).contains(&title.chars().count()) {
        return Err(field(
            "title",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 45 in length.",
        ));
    }
    let rows = data
        .get("components")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if !(1..=5).contains(&rows) {
        return Err(field(
            "components",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 5 in length.",
        ));
    }
    Ok(())
}

fn interaction_metadata(w: &World, rec: &InteractionRec) -> Value {
    let mut v = json!({
        "id": sf(rec.id),
        "type": rec.kind,
        "user": payloads::user_by_id(w, rec.user_id),
        "authorizing_integration_owners": { "0": sf(rec.guild_id) },
    });
    if let Some(name) = &rec.command_name {
        v["name"] = json!(name);
        v["command_type"] = json!(1);
    }
    if let Some(m) = rec.message_id {
        v["interacted_message_id"] = sf(m);
    }
    if rec.kind == 5 {
        // A modal submit names the interaction that opened the modal: the user's
        // latest one answered with a modal (type 9) before this one.
        let opener = w
            .interactions
            .values()
            .filter(|o| o.user_id == rec.user_id && o.created <= rec.created && o.id != rec.id)
            .filter(|o| matches!(o.response, Some((9, _))))
            .max_by_key(|o| o.created);
        v["triggering_interaction_metadata"] = match opener {
            Some(o) => interaction_metadata(w, o),
            None => json!({
                "id": sf(rec.id),
                "type": 2,
                "user": payloads::user_by_id(w, rec.user_id),
                "authorizing_integration_owners": { "0": sf(rec.guild_id) },
            }),
        };
    }
    v
}

/// `POST /interactions/{id}/{token}/callback` → 204.
pub async fn callback(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let interaction_id = id(&p, "interaction_id")?;
    let token = p.get("token").cloned().unwrap_or_default();
    let body = json_body(&headers, &body)?;
    apply_callback(&sim, interaction_id, &token, &body)?;
    Ok(no_content())
}

/// The interaction behind `/webhooks/{app}/{token}`, if still valid.
fn webhook_interaction(w: &World, p: &Params) -> ApiResult<InteractionRec> {
    if id(p, "app_id")? != w.application_id {
        return Err(ApiError::unknown_webhook());
    }
    let token = p.get("token").map(String::as_str).unwrap_or("");
    let rec = w
        .interaction_tokens
        .get(token)
        .and_then(|i| w.interactions.get(i))
        .ok_or_else(ApiError::unknown_webhook)?;
    if rec.created.elapsed() > WEBHOOK_VALIDITY {
        return Err(ApiError::new(401, 50027, "Invalid Webhook Token"));
    }
    if rec.response.is_none() {
        return Err(ApiError::unknown_webhook());
    }
    Ok(rec.clone())
}

/// Which message `{message_id}` (`@original` or a followup's id) designates.
fn target_message(rec: &InteractionRec, p: &Params) -> ApiResult<Option<u64>> {
    match p.get("message_id").map(String::as_str) {
        Some("@original") => Ok(rec.original_message_id),
        _ => {
            let mid = id(p, "message_id")?;
            if rec.followup_message_ids.contains(&mid) || rec.original_message_id == Some(mid) {
                Ok(Some(mid))
            } else {
                Err(ApiError::unknown_message())
            }
        }
    }
}

fn find_channel(w: &World, message_id: u64) -> Option<u64> {
    w.messages
        .iter()
        .find(|(_, ms)| ms.iter().any(|m| m.id == message_id))
        .map(|(c, _)| *c)
}

/// `POST /webhooks/{app}/{token}`: a followup message. After a deferral the first
/// followup becomes the original response, as on Discord.
pub async fn followup(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let raw = json_body(&headers, &body)?;
    let response = {
        let mut w = sim.world();
        let rec = webhook_interaction(&w, &p)?;
        let parsed = messages::parse(&raw, true)?;
        let mut m = messages::build(
            &w,
            sim.next_id(),
            rec.channel_id,
            w.bot_id,
            &parsed,
            ids::now_ms(),
        );
        m.guild_id = Some(rec.guild_id);
        m.webhook_id = Some(w.application_id);
        m.interaction = Some(interaction_metadata(&w, &rec));
        w.push_message(m.clone());
        if !m.ephemeral() {
            let _ = sim.emit_message(&w, &m, "MESSAGE_CREATE");
        }
        let out = payloads::message(&w, &m, false);
        let r = w.interactions.get_mut(&rec.id).expect("exists");
        r.followups.push(raw);
        r.followup_message_ids.push(m.id);
        if r.response.as_ref().is_some_and(|(k, _)| *k == 5) && r.original_message_id.is_none() {
            r.original_message_id = Some(m.id);
        }
        out
    };
    sim.notify_changed();
    Ok(ok(response))
}

/// `PATCH /webhooks/{app}/{token}/messages/{@original|id}`. Editing `@original`
/// after a deferral posts the deferred message.
pub async fn edit_webhook_message(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let raw = json_body(&headers, &body)?;
    let response = {
        let mut w = sim.world();
        let rec = webhook_interaction(&w, &p)?;
        let is_original = p.get("message_id").map(String::as_str) == Some("@original");
        let target = target_message(&rec, &p)?;
        let kind = rec.response.as_ref().map_or(0, |(k, _)| *k);
        let out = match target {
            Some(mid) => {
                let parsed = messages::parse(&raw, false)?;
                let channel = find_channel(&w, mid).ok_or_else(ApiError::unknown_message)?;
                let m = w
                    .message_mut(channel, mid)
                    .ok_or_else(ApiError::unknown_message)?;
                messages::apply_edit(m, &parsed, ids::now_ms());
                let m = m.clone();
                let _ = sim.emit_message(&w, &m, "MESSAGE_UPDATE");
                payloads::message(&w, &m, false)
            }
            None if is_original && kind == 5 => {
                // The deferred ("thinking") response becomes a message now.
                let parsed = messages::parse(&raw, true)?;
                let mut m = messages::build(
                    &w,
                    sim.next_id(),
                    rec.channel_id,
                    w.bot_id,
                    &parsed,
                    ids::now_ms(),
                );
                m.guild_id = Some(rec.guild_id);
                m.webhook_id = Some(w.application_id);
                m.kind = if rec.kind == 2 { 20 } else { 0 };
                m.interaction = Some(interaction_metadata(&w, &rec));
                if let Some((_, d)) = &rec.response {
                    m.flags |= d.get("flags").and_then(Value::as_u64).unwrap_or(0) & 64;
                }
                w.push_message(m.clone());
                if !m.ephemeral() {
                    let _ = sim.emit_message(&w, &m, "MESSAGE_CREATE");
                }
                w.interactions
                    .get_mut(&rec.id)
                    .expect("exists")
                    .original_message_id = Some(m.id);
                payloads::message(&w, &m, false)
            }
            None => return Err(ApiError::unknown_message()),
        };
        if is_original {
            w.interactions
                .get_mut(&rec.id)
                .expect("exists")
                .edits
                .push(raw);
        }
        out
    };
    sim.notify_changed();
    Ok(ok(response))
}

/// `GET /webhooks/{app}/{token}/messages/{@original|id}`.
pub async fn get_webhook_message(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let w = sim.world();
    let rec = webhook_interaction(&w, &p)?;
    let mid = target_message(&rec, &p)?.ok_or_else(ApiError::unknown_message)?;
    let channel = find_channel(&w, mid).ok_or_else(ApiError::unknown_message)?;
    let m = w
        .message(channel, mid)
        .ok_or_else(ApiError::unknown_message)?;
    Ok(ok(payloads::message(&w, m, false)))
}

/// `DELETE /webhooks/{app}/{token}/messages/{@original|id}`.
pub async fn delete_webhook_message(
    State(sim): State<Simulator>,
    p: Params,
) -> ApiResult<Response> {
    {
        let mut w = sim.world();
        let rec = webhook_interaction(&w, &p)?;
        let mid = target_message(&rec, &p)?.ok_or_else(ApiError::unknown_message)?;
        let channel = find_channel(&w, mid).ok_or_else(ApiError::unknown_message)?;
        if let Some(list) = w.messages.get_mut(&channel) {
            list.retain(|m| m.id != mid);
        }
        let d = json!({ "id": sf(mid), "channel_id": sf(channel), "guild_id": sf(rec.guild_id) });
        let _ = sim.emit(
            Some(rec.guild_id),
            "MESSAGE_DELETE",
            d,
            crate::gateway::intents::GUILD_MESSAGES,
        );
    }
    sim.notify_changed();
    Ok(no_content())
}
