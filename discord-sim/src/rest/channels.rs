//! `/channels/…` and DM channels: messages, reactions, overwrites.

use super::{Params, bot_guild, id, json_body, no_content, ok, require};
use crate::Simulator;
use crate::actions::{add_reaction as record_reaction, upsert_overwrite};
use crate::error::{ApiError, ApiResult};
use crate::gateway::intents;
use crate::ids;
use crate::messages::{self, snowflake_value};
use crate::payloads::{self, sf};
use crate::state::{ChannelRec, Overwrite, World, channel_type, perms};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

/// The channel and the bot's permissions in it (everything in a DM).
pub(crate) fn channel_access(w: &World, channel_id: u64) -> ApiResult<(&ChannelRec, u64)> {
    let c = w
        .channels
        .get(&channel_id)
        .ok_or_else(ApiError::unknown_channel)?;
    match c.guild_id {
        None => Ok((
            c,
            perms::VIEW_CHANNEL
                | perms::SEND_MESSAGES
                | perms::EMBED_LINKS
                | perms::ATTACH_FILES
                | perms::READ_MESSAGE_HISTORY
                | perms::ADD_REACTIONS,
        )),
        Some(g) => {
            let g = bot_guild(w, g)?;
            Ok((c, g.channel_permissions(c, w.bot_id)))
        }
    }
}

/// A permission value sent as a string or a number.
fn perm_value(v: Option<&Value>) -> u64 {
    v.and_then(snowflake_value).unwrap_or(0)
}

/// `POST /users/@me/channels {recipient_id}`: the DM channel with that user (one per
/// user, as on Discord).
pub async fn create_dm(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let body = json_body(&headers, &body)?;
    let recipient = body
        .get("recipient_id")
        .and_then(snowflake_value)
        .ok_or_else(|| {
            ApiError::form(
                &["recipient_id"],
                "BASE_TYPE_REQUIRED",
                "This field is required",
            )
        })?;
    let mut w = sim.world();
    if !w.users.contains_key(&recipient) {
        return Err(ApiError::new(400, 50033, "Invalid Recipient(s)"));
    }
    let channel_id = match w.dm_channels.get(&recipient) {
        Some(c) => *c,
        None => {
            let id = sim.next_id();
            w.channels.insert(
                id,
                ChannelRec {
                    id,
                    guild_id: None,
                    kind: channel_type::DM,
                    name: String::new(),
                    topic: None,
                    parent_id: None,
                    position: 0,
                    nsfw: false,
                    overwrites: vec![],
                    recipient: Some(recipient),
                    last_message_id: None,
                },
            );
            w.dm_channels.insert(recipient, id);
            id
        }
    };
    Ok(ok(payloads::channel(&w, &w.channels[&channel_id])))
}

/// `GET /channels/{id}`.
pub async fn get_channel(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let channel_id = id(&p, "channel_id")?;
    let w = sim.world();
    let (c, perms_) = channel_access(&w, channel_id)?;
    if perms_ & perms::VIEW_CHANNEL == 0 {
        return Err(ApiError::missing_access());
    }
    Ok(ok(payloads::channel(&w, c)))
}

/// `DELETE /channels/{id}` (MANAGE_CHANNELS); dispatches CHANNEL_DELETE.
pub async fn delete_channel(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let channel_id = id(&p, "channel_id")?;
    let mut w = sim.world();
    let (c, have) = channel_access(&w, channel_id)?;
    let c = c.clone();
    let Some(guild_id) = c.guild_id else {
        // Closing a DM.
        return Ok(ok(payloads::channel(&w, &c)));
    };
    require(have, perms::VIEW_CHANNEL | perms::MANAGE_CHANNELS)?;
    let d = payloads::channel(&w, &c);
    w.channels.remove(&channel_id);
    if let Some(g) = w.guilds.get_mut(&guild_id) {
        g.channels.retain(|x| *x != channel_id);
        if g.system_channel_id == Some(channel_id) {
            g.system_channel_id = None;
        }
    }
    let _ = sim.emit(Some(guild_id), "CHANNEL_DELETE", d.clone(), intents::GUILDS);
    Ok(ok(d))
}

/// `POST /channels/{id}/messages`.
pub async fn create_message(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let channel_id = id(&p, "channel_id")?;
    let raw = json_body(&headers, &body)?;
    let response = {
        let mut w = sim.world();
        let (c, have) = channel_access(&w, channel_id)?;
        let guild_id = c.guild_id;
        let body = messages::parse(&raw, true)?;
        let mut need = perms::VIEW_CHANNEL | perms::SEND_MESSAGES;
        if body.has_embeds() {
            need |= perms::EMBED_LINKS;
        }
        if !body.attachments.is_empty() {
            need |= perms::ATTACH_FILES;
        }
        if body.reply_to.is_some() {
            need |= perms::READ_MESSAGE_HISTORY;
        }
        require(have, need)?;
        if let Some(reply) = body.reply_to
            && body.reply_must_exist
            && w.message(channel_id, reply).is_none()
        {
            return Err(ApiError::form(
                &["message_reference"],
                "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                "Unknown message",
            ));
        }
        // enforce_nonce: the same nonce in the same channel returns the first message.
        let key = body
            .nonce
            .as_ref()
            .filter(|_| body.enforce_nonce)
            .map(|n| (channel_id, messages::nonce_key(n)));
        if let Some(existing) = key
            .as_ref()
            .and_then(|k| w.nonces.get(k))
            .and_then(|m| w.message(channel_id, *m))
        {
            return Ok(ok(payloads::message(&w, existing, false)));
        }
        let m = messages::build(
            &w,
            sim.next_id(),
            channel_id,
            w.bot_id,
            &body,
            ids::now_ms(),
        );
        debug_assert_eq!(m.guild_id, guild_id);
        if let Some(k) = key {
            w.nonces.insert(k, m.id);
        }
        w.push_message(m.clone());
        let _ = sim.emit_message(&w, &m, "MESSAGE_CREATE");
        payloads::message(&w, &m, false)
    };
    sim.notify_changed();
    Ok(ok(response))
}

#[derive(serde::Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
    before: Option<u64>,
    after: Option<u64>,
    around: Option<u64>,
}

/// `GET /channels/{id}/messages?limit&before&after&around`: newest first, as Discord.
pub async fn list_messages(
    State(sim): State<Simulator>,
    p: Params,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let channel_id = id(&p, "channel_id")?;
    let w = sim.world();
    let (_, have) = channel_access(&w, channel_id)?;
    require(have, perms::VIEW_CHANNEL)?;
    if have & perms::READ_MESSAGE_HISTORY == 0 {
        return Ok(ok(json!([])));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::form(
            &["limit"],
            "NUMBER_TYPE_MAX",
            "Int value should be less than or equal to 100.",
        ));
    }
    let all: Vec<_> = w
        .messages
        .get(&channel_id)
        .map(|v| v.iter().filter(|m| !m.ephemeral()).collect())
        .unwrap_or_default();
    let mut picked: Vec<_> = match (q.before, q.after, q.around) {
        (Some(b), _, _) => all.iter().rev().filter(|m| m.id < b).take(limit).collect(),
        (_, Some(a), _) => {
            let mut v: Vec<_> = all.iter().filter(|m| m.id > a).take(limit).collect();
            v.reverse();
            v
        }
        (_, _, Some(c)) => {
            let mut v: Vec<_> = all.iter().collect();
            v.sort_by_key(|m| m.id.abs_diff(c));
            v.truncate(limit);
            v.sort_by_key(|m| std::cmp::Reverse(m.id));
            v
        }
        _ => all.iter().rev().take(limit).collect(),
    };
    picked.dedup_by_key(|m| m.id);
    let out: Vec<Value> = picked
        .into_iter()
        .map(|m| payloads::message(&w, m, false))
        .collect();
    Ok(ok(Value::Array(out)))
}

/// `GET /channels/{id}/messages/{id}`.
pub async fn get_message(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let (channel_id, message_id) = (id(&p, "channel_id")?, id(&p, "message_id")?);
    let w = sim.world();
    let (_, have) = channel_access(&w, channel_id)?;
    require(have, perms::VIEW_CHANNEL | perms::READ_MESSAGE_HISTORY)?;
    let m = w
        .message(channel_id, message_id)
        .filter(|m| !m.ephemeral())
        .ok_or_else(ApiError::unknown_message)?;
    Ok(ok(payloads::message(&w, m, false)))
}

/// `PATCH /channels/{id}/messages/{id}`: only the bot's own messages.
pub async fn edit_message(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (channel_id, message_id) = (id(&p, "channel_id")?, id(&p, "message_id")?);
    let raw = json_body(&headers, &body)?;
    let response = {
        let mut w = sim.world();
        let (_, have) = channel_access(&w, channel_id)?;
        require(have, perms::VIEW_CHANNEL)?;
        let body = messages::parse(&raw, false)?;
        let bot = w.bot_id;
        let m = w
            .message_mut(channel_id, message_id)
            .ok_or_else(ApiError::unknown_message)?;
        if m.author_id != bot {
            return Err(ApiError::new(
                403,
                50005,
                "Cannot edit a message authored by another user",
            ));
        }
        messages::apply_edit(m, &body, ids::now_ms());
        let m = m.clone();
        let _ = sim.emit_message(&w, &m, "MESSAGE_UPDATE");
        payloads::message(&w, &m, false)
    };
    sim.notify_changed();
    Ok(ok(response))
}

/// `DELETE /channels/{id}/messages/{id}`: own messages, or others' with
/// MANAGE_MESSAGES; dispatches MESSAGE_DELETE.
pub async fn delete_message(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let (channel_id, message_id) = (id(&p, "channel_id")?, id(&p, "message_id")?);
    {
        let mut w = sim.world();
        let (c, have) = channel_access(&w, channel_id)?;
        let guild_id = c.guild_id;
        require(have, perms::VIEW_CHANNEL)?;
        let m = w
            .message(channel_id, message_id)
            .ok_or_else(ApiError::unknown_message)?;
        if m.author_id != w.bot_id {
            if guild_id.is_none() {
                return Err(ApiError::dm_channel());
            }
            require(have, perms::MANAGE_MESSAGES)?;
        }
        if let Some(list) = w.messages.get_mut(&channel_id) {
            list.retain(|m| m.id != message_id);
        }
        let mut d = json!({ "id": sf(message_id), "channel_id": sf(channel_id) });
        if let Some(g) = guild_id {
            d["guild_id"] = sf(g);
        }
        let intent = if guild_id.is_some() {
            intents::GUILD_MESSAGES
        } else {
            intents::DIRECT_MESSAGES
        };
        let _ = sim.emit(guild_id, "MESSAGE_DELETE", d, intent);
    }
    sim.notify_changed();
    Ok(no_content())
}

/// `POST /channels/{id}/messages/bulk-delete {messages}`: 2–100 ids,
/// MANAGE_MESSAGES; dispatches MESSAGE_DELETE_BULK.
pub async fn bulk_delete(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let channel_id = id(&p, "channel_id")?;
    let body = json_body(&headers, &body)?;
    let ids: Vec<u64> = body
        .get("messages")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(snowflake_value).collect())
        .unwrap_or_default();
    if ids.len() < 2 {
        return Err(ApiError::form(
            &["messages"],
            "BASE_TYPE_MIN_LENGTH",
            "Must be 2 or more in length.",
        ));
    }
    if ids.len() > 100 {
        return Err(ApiError::form(
            &["messages"],
            "BASE_TYPE_MAX_LENGTH",
            "Must be 100 or fewer in length.",
        ));
    }
    {
        let mut w = sim.world();
        let (c, have) = channel_access(&w, channel_id)?;
        let guild_id = c.guild_id.ok_or_else(ApiError::dm_channel)?;
        require(have, perms::VIEW_CHANNEL | perms::MANAGE_MESSAGES)?;
        let two_weeks_ago = ids::now_ms().saturating_sub(14 * 86_400_000);
        if ids
            .iter()
            .any(|m| ids::snowflake_ms(*m) < two_weeks_ago && w.message(channel_id, *m).is_some())
        {
            return Err(ApiError::new(
                400,
                50034,
                "You can only bulk delete messages that are under 14 days old.",
            ));
        }
        if let Some(list) = w.messages.get_mut(&channel_id) {
            list.retain(|m| !ids.contains(&m.id));
        }
        let d = json!({
            "ids": ids.iter().map(|i| sf(*i)).collect::<Vec<_>>(),
            "channel_id": sf(channel_id),
            "guild_id": sf(guild_id),
        });
        let _ = sim.emit(
            Some(guild_id),
            "MESSAGE_DELETE_BULK",
            d,
            intents::GUILD_MESSAGES,
        );
    }
    sim.notify_changed();
    Ok(no_content())
}

/// Validates a reaction emoji: unicode, or `name:id` of a guild emoji (there are none
/// in the simulator, so custom ones are unknown).
fn check_emoji(emoji: &str) -> ApiResult<()> {
    match emoji.rsplit_once(':') {
        Some((_, id)) if id.parse::<u64>().is_ok() => {
            Err(ApiError::new(400, 10014, "Unknown Emoji"))
        }
        _ if emoji.is_empty() || emoji.is_ascii() => {
            Err(ApiError::new(400, 10014, "Unknown Emoji"))
        }
        _ => Ok(()),
    }
}

/// `PUT /channels/{c}/messages/{m}/reactions/{emoji}/@me` (ADD_REACTIONS and
/// READ_MESSAGE_HISTORY); dispatches MESSAGE_REACTION_ADD.
pub async fn add_reaction(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let (channel_id, message_id) = (id(&p, "channel_id")?, id(&p, "message_id")?);
    let emoji = p.get("emoji").cloned().unwrap_or_default();
    {
        let mut w = sim.world();
        let (c, have) = channel_access(&w, channel_id)?;
        let guild_id = c.guild_id;
        require(
            have,
            perms::VIEW_CHANNEL | perms::READ_MESSAGE_HISTORY | perms::ADD_REACTIONS,
        )?;
        check_emoji(&emoji)?;
        let bot = w.bot_id;
        let author = record_reaction(&mut w, channel_id, message_id, bot, &emoji)
            .ok_or_else(ApiError::unknown_message)?;
        if let Some(g) = guild_id {
            let _ = sim.reaction_event(&w, g, channel_id, message_id, bot, &emoji, Some(author));
        }
    }
    sim.notify_changed();
    Ok(no_content())
}

/// `GET /channels/{c}/messages/{m}/reactions/{emoji}?after&limit` (1-100,
/// default 25): the users who reacted with `emoji`, in id order.
pub async fn list_reactions(
    State(sim): State<Simulator>,
    p: Params,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let (channel_id, message_id) = (id(&p, "channel_id")?, id(&p, "message_id")?);
    let emoji = p.get("emoji").cloned().unwrap_or_default();
    let w = sim.world();
    let (_, have) = channel_access(&w, channel_id)?;
    require(have, perms::VIEW_CHANNEL | perms::READ_MESSAGE_HISTORY)?;
    let limit = q.limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::form(
            &["limit"],
            "NUMBER_TYPE_MAX",
            "Int value should be less than or equal to 100.",
        ));
    }
    let m = w
        .message(channel_id, message_id)
        .ok_or_else(ApiError::unknown_message)?;
    let mut users: Vec<u64> = m
        .reactions
        .iter()
        .filter(|r| r.emoji == emoji)
        .flat_map(|r| r.users.iter().copied())
        .filter(|u| q.after.is_none_or(|a| *u > a))
        .collect();
    users.sort_unstable();
    users.truncate(limit);
    let users: Vec<Value> = users
        .into_iter()
        .filter_map(|u| w.users.get(&u).map(payloads::user))
        .collect();
    Ok(ok(json!(users)))
}

/// `DELETE …/reactions/{emoji}/@me`; dispatches MESSAGE_REACTION_REMOVE.
pub async fn remove_reaction(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let (channel_id, message_id) = (id(&p, "channel_id")?, id(&p, "message_id")?);
    let emoji = p.get("emoji").cloned().unwrap_or_default();
    let mut w = sim.world();
    let (c, have) = channel_access(&w, channel_id)?;
    let guild_id = c.guild_id;
    require(have, perms::VIEW_CHANNEL | perms::READ_MESSAGE_HISTORY)?;
    let bot = w.bot_id;
    let m = w
        .message_mut(channel_id, message_id)
        .ok_or_else(ApiError::unknown_message)?;
    for r in &mut m.reactions {
        if r.emoji == emoji {
            r.users.retain(|u| *u != bot);
        }
    }
    m.reactions.retain(|r| !r.users.is_empty());
    if let Some(g) = guild_id {
        let d = json!({
            "user_id": sf(bot),
            "channel_id": sf(channel_id),
            "message_id": sf(message_id),
            "guild_id": sf(g),
            "emoji": payloads::emoji(&emoji),
            "burst": false,
            "type": 0,
        });
        let _ = sim.emit(
            Some(g),
            "MESSAGE_REACTION_REMOVE",
            d,
            intents::GUILD_MESSAGE_REACTIONS,
        );
    }
    Ok(no_content())
}

/// `PUT /channels/{c}/permissions/{id} {allow, deny, type}` (MANAGE_ROLES);
/// dispatches CHANNEL_UPDATE.
pub async fn put_overwrite(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (channel_id, target) = (id(&p, "channel_id")?, id(&p, "target_id")?);
    let body = json_body(&headers, &body)?;
    let kind = match body.get("type").and_then(snowflake_value) {
        Some(k @ (0 | 1)) => k as u8,
        _ => {
            return Err(ApiError::form(
                &["type"],
                "BASE_TYPE_CHOICES",
                "Value must be one of {0, 1}.",
            ));
        }
    };
    let overwrite = Overwrite {
        id: target,
        kind,
        allow: perm_value(body.get("allow")),
        deny: perm_value(body.get("deny")),
    };
    change_overwrites(&sim, channel_id, |c| upsert_overwrite(c, overwrite))
}

/// `DELETE /channels/{c}/permissions/{id}`.
pub async fn delete_overwrite(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let (channel_id, target) = (id(&p, "channel_id")?, id(&p, "target_id")?);
    change_overwrites(&sim, channel_id, |c| {
        c.overwrites.retain(|o| o.id != target)
    })
}

fn change_overwrites(
    sim: &Simulator,
    channel_id: u64,
    f: impl FnOnce(&mut ChannelRec),
) -> ApiResult<Response> {
    let mut w = sim.world();
    let (c, have) = channel_access(&w, channel_id)?;
    let guild_id = c.guild_id.ok_or_else(ApiError::dm_channel)?;
    require(have, perms::VIEW_CHANNEL | perms::MANAGE_ROLES)?;
    let c = w.channels.get_mut(&channel_id).expect("checked above");
    f(c);
    let c = c.clone();
    let d = payloads::channel(&w, &c);
    let _ = sim.emit(Some(guild_id), "CHANNEL_UPDATE", d, intents::GUILDS);
    Ok(no_content())
}

/// `POST /channels/{id}/typing`.
pub async fn typing(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let channel_id = id(&p, "channel_id")?;
    let w = sim.world();
    let (_, have) = channel_access(&w, channel_id)?;
    require(have, perms::VIEW_CHANNEL | perms::SEND_MESSAGES)?;
    Ok(no_content())
}
