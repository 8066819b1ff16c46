//! `/guilds/…`: reads, member moderation (roles, timeouts, kicks, bans) and channel
//! creation, with Discord's permission and role-hierarchy rules.

use super::{Params, bot_guild, created, id, json_body, no_content, ok, require};
use crate::Simulator;
use crate::actions::{audit_action, text_channel};
use crate::error::{ApiError, ApiResult};
use crate::gateway::intents;
use crate::ids;
use crate::messages::snowflake_value;
use crate::payloads::{self, sf};
use crate::state::{GuildRec, Overwrite, perms};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

/// The `X-Audit-Log-Reason` header, which clients percent-encode.
fn reason(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("x-audit-log-reason")?.to_str().ok()?;
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// Longest timeout Discord allows.
const MAX_TIMEOUT_MS: u64 = 28 * 86_400_000;

/// 403 50013 unless the bot's top role is strictly above the target's (the owner is
/// above everyone).
fn check_hierarchy(g: &GuildRec, bot: u64, target: u64) -> ApiResult<()> {
    if g.outranks(bot, target) {
        Ok(())
    } else {
        Err(ApiError::missing_permissions())
    }
}

/// `GET /guilds/{id}`.
pub async fn get_guild(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let guild_id = id(&p, "guild_id")?;
    let w = sim.world();
    let g = bot_guild(&w, guild_id)?;
    let mut v = payloads::guild(&w, g, false);
    v["approximate_member_count"] = json!(g.members.len());
    v["approximate_presence_count"] = json!(0);
    Ok(ok(v))
}

/// `GET /guilds/{id}/roles`.
pub async fn roles(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let guild_id = id(&p, "guild_id")?;
    let w = sim.world();
    let g = bot_guild(&w, guild_id)?;
    Ok(ok(g.roles.values().map(payloads::role).collect()))
}

/// `GET /guilds/{id}/channels`.
pub async fn channels(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let guild_id = id(&p, "guild_id")?;
    let w = sim.world();
    let g = bot_guild(&w, guild_id)?;
    let list: Vec<Value> = g
        .channels
        .iter()
        .filter_map(|c| w.channels.get(c))
        .map(|c| payloads::channel(&w, c))
        .collect();
    Ok(ok(Value::Array(list)))
}

/// `GET /guilds/{id}/emojis`: simulated guilds have none.
pub async fn emojis(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let guild_id = id(&p, "guild_id")?;
    let w = sim.world();
    let g = bot_guild(&w, guild_id)?;
    let emojis: Vec<Value> = g
        .emojis
        .iter()
        .map(|(id, name, animated)| {
            json!({ "id": sf(*id), "name": name, "animated": animated, "available": true })
        })
        .collect();
    Ok(ok(Value::Array(emojis)))
}

#[derive(serde::Deserialize)]
pub struct MembersQuery {
    limit: Option<usize>,
    after: Option<u64>,
}

/// `GET /guilds/{id}/members?limit&after`: by user id, `limit` 1–1000 (default 1).
pub async fn members(
    State(sim): State<Simulator>,
    p: Params,
    Query(q): Query<MembersQuery>,
) -> ApiResult<Response> {
    let guild_id = id(&p, "guild_id")?;
    let limit = q.limit.unwrap_or(1);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::form(
            &["limit"],
            "NUMBER_TYPE_MAX",
            "Int value should be less than or equal to 1000.",
        ));
    }
    let w = sim.world();
    let g = bot_guild(&w, guild_id)?;
    let list: Vec<Value> = g
        .members
        .range(q.after.unwrap_or(0).saturating_add(1)..)
        .take(limit)
        .map(|(_, m)| payloads::member(&w, g, m, true))
        .collect();
    Ok(ok(Value::Array(list)))
}

/// `GET /guilds/{g}/members/{u}`.
pub async fn member(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let (guild_id, user_id) = (id(&p, "guild_id")?, id(&p, "user_id")?);
    let w = sim.world();
    let g = bot_guild(&w, guild_id)?;
    let m = g
        .members
        .get(&user_id)
        .ok_or_else(ApiError::unknown_member)?;
    Ok(ok(payloads::member(&w, g, m, true)))
}

/// `PATCH /guilds/{g}/members/{u}`: `communication_disabled_until` (MODERATE_MEMBERS,
/// hierarchy, never an administrator or the owner), `nick` (MANAGE_NICKNAMES),
/// `roles` (MANAGE_ROLES, every changed role below the bot).
pub async fn edit_member(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (guild_id, user_id) = (id(&p, "guild_id")?, id(&p, "user_id")?);
    let body = json_body(&headers, &body)?;
    let mut w = sim.world();
    let bot = w.bot_id;
    let g = bot_guild(&w, guild_id)?;
    let have = g.base_permissions(bot);
    let current = g
        .members
        .get(&user_id)
        .ok_or_else(ApiError::unknown_member)?;
    let mut timeout = current.timeout_until_ms;
    let mut nick = current.nick.clone();
    let mut roles = current.roles.clone();
    if let Some(v) = body.get("communication_disabled_until") {
        require(have, perms::MODERATE_MEMBERS)?;
        check_hierarchy(g, bot, user_id)?;
        if g.base_permissions(user_id) & perms::ADMINISTRATOR != 0 {
            return Err(ApiError::missing_permissions());
        }
        timeout = match v {
            Value::Null => None,
            Value::String(s) => {
                let until = ids::parse_iso8601(s).ok_or_else(|| {
                    ApiError::form(
                        &["communication_disabled_until"],
                        "DATE_TIME_TYPE_PARSE",
                        "Could not parse the date.",
                    )
                })?;
                if until > ids::now_ms() + MAX_TIMEOUT_MS {
                    return Err(ApiError::form(
                        &["communication_disabled_until"],
                        "COMMUNICATION_DISABLED_TIMESTAMP_TOO_LONG",
                        "Timeout duration exceeds the maximum of 28 days.",
                    ));
                }
                Some(until)
            }
            _ => {
                return Err(ApiError::form(
                    &["communication_disabled_until"],
                    "DATE_TIME_TYPE_PARSE",
                    "Could not parse the date.",
                ));
            }
        };
    }
    if let Some(v) = body.get("nick") {
        require(have, perms::MANAGE_NICKNAMES)?;
        if user_id != bot {
            check_hierarchy(g, bot, user_id)?;
        }
        nick = v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    }
    if let Some(list) = body.get("roles").and_then(Value::as_array) {
        require(have, perms::MANAGE_ROLES)?;
        let wanted: Vec<u64> = list.iter().filter_map(snowflake_value).collect();
        let top = g.highest_position(bot);
        for r in wanted
            .iter()
            .filter(|r| !roles.contains(r))
            .chain(roles.iter().filter(|r| !wanted.contains(r)))
        {
            let role = g.roles.get(r).ok_or_else(ApiError::unknown_role)?;
            if role.position >= top && bot != g.owner_id {
                return Err(ApiError::missing_permissions());
            }
        }
        roles = wanted;
    }
    let g = w.guilds.get_mut(&guild_id).expect("checked above");
    let m = g.members.get_mut(&user_id).expect("checked above");
    let timeout_change = (m.timeout_until_ms != timeout).then(|| {
        json!([{
            "key": "communication_disabled_until",
            "old_value": m.timeout_until_ms.map(ids::iso8601),
            "new_value": timeout.map(ids::iso8601),
        }])
    });
    m.timeout_until_ms = timeout;
    m.nick = nick;
    m.roles = roles;
    let _ = sim.emit_member_update(&w, guild_id, user_id);
    if let Some(changes) = timeout_change {
        let why = reason(&headers);
        let action = audit_action::MEMBER_UPDATE;
        let _ = sim.audit_entry(&w, guild_id, bot, user_id, action, why.as_deref(), changes);
    }
    let g = &w.guilds[&guild_id];
    Ok(ok(payloads::member(&w, g, &g.members[&user_id], true)))
}

/// `DELETE /guilds/{g}/members/{u}`: kick (KICK_MEMBERS + hierarchy; never the owner).
pub async fn kick(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (guild_id, user_id) = (id(&p, "guild_id")?, id(&p, "user_id")?);
    let mut w = sim.world();
    let bot = w.bot_id;
    let g = bot_guild(&w, guild_id)?;
    require(g.base_permissions(bot), perms::KICK_MEMBERS)?;
    if !g.members.contains_key(&user_id) {
        return Err(ApiError::unknown_member());
    }
    check_hierarchy(g, bot, user_id)?;
    w.guilds
        .get_mut(&guild_id)
        .expect("checked above")
        .members
        .remove(&user_id);
    let _ = sim.member_removed(&w, guild_id, user_id);
    let why = reason(&headers);
    let _ = sim.audit_entry(
        &w,
        guild_id,
        bot,
        user_id,
        audit_action::KICK,
        why.as_deref(),
        json!([]),
    );
    Ok(no_content())
}

/// `PUT /guilds/{g}/bans/{u} {delete_message_seconds}` (BAN_MEMBERS + hierarchy):
/// removes the member and their recent messages; dispatches GUILD_BAN_ADD,
/// GUILD_MEMBER_REMOVE and MESSAGE_DELETE_BULK.
pub async fn ban(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (guild_id, user_id) = (id(&p, "guild_id")?, id(&p, "user_id")?);
    let body = json_body(&headers, &body)?;
    let seconds = body
        .get("delete_message_seconds")
        .and_then(Value::as_u64)
        .or_else(|| {
            body.get("delete_message_days")
                .and_then(Value::as_u64)
                .map(|d| d * 86_400)
        })
        .unwrap_or(0);
    if seconds > 604_800 {
        return Err(ApiError::form(
            &["delete_message_seconds"],
            "NUMBER_TYPE_MAX",
            "int value should be less than or equal to 604800.",
        ));
    }
    let mut w = sim.world();
    let bot = w.bot_id;
    let g = bot_guild(&w, guild_id)?;
    require(g.base_permissions(bot), perms::BAN_MEMBERS)?;
    if !w.users.contains_key(&user_id) {
        return Err(ApiError::unknown_user());
    }
    let was_member = g.members.contains_key(&user_id);
    if was_member || user_id == g.owner_id {
        check_hierarchy(g, bot, user_id)?;
    }
    let channels = g.channels.clone();
    let _ = sim.banned(&mut w, guild_id, bot, user_id, reason(&headers).as_deref());
    let since = ids::now_ms().saturating_sub(seconds * 1000);
    for c in channels {
        let Some(list) = w.messages.get_mut(&c) else {
            continue;
        };
        let gone: Vec<u64> = list
            .iter()
            .filter(|m| seconds > 0 && m.author_id == user_id && m.timestamp_ms >= since)
            .map(|m| m.id)
            .collect();
        if gone.is_empty() {
            continue;
        }
        list.retain(|m| !gone.contains(&m.id));
        let d = json!({
            "ids": gone.iter().map(|i| sf(*i)).collect::<Vec<_>>(),
            "channel_id": sf(c),
            "guild_id": sf(guild_id),
        });
        let _ = sim.emit(
            Some(guild_id),
            "MESSAGE_DELETE_BULK",
            d,
            intents::GUILD_MESSAGES,
        );
    }
    drop(w);
    sim.notify_changed();
    Ok(no_content())
}

/// `DELETE /guilds/{g}/bans/{u}`.
pub async fn unban(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (guild_id, user_id) = (id(&p, "guild_id")?, id(&p, "user_id")?);
    let mut w = sim.world();
    let g = bot_guild(&w, guild_id)?;
    require(g.base_permissions(w.bot_id), perms::BAN_MEMBERS)?;
    if !w
        .guilds
        .get_mut(&guild_id)
        .expect("checked above")
        .bans
        .remove(&user_id)
    {
        return Err(ApiError::new(404, 10026, "Unknown Ban"));
    }
    let d = json!({ "guild_id": sf(guild_id), "user": payloads::user_by_id(&w, user_id) });
    let _ = sim.emit(
        Some(guild_id),
        "GUILD_BAN_REMOVE",
        d,
        intents::GUILD_MODERATION,
    );
    let why = reason(&headers);
    let bot = w.bot_id;
    let _ = sim.audit_entry(
        &w,
        guild_id,
        bot,
        user_id,
        audit_action::BAN_REMOVE,
        why.as_deref(),
        json!([]),
    );
    Ok(no_content())
}

/// `GET /guilds/{g}/bans/{u}`.
pub async fn get_ban(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    let (guild_id, user_id) = (id(&p, "guild_id")?, id(&p, "user_id")?);
    let w = sim.world();
    let g = bot_guild(&w, guild_id)?;
    require(g.base_permissions(w.bot_id), perms::BAN_MEMBERS)?;
    if !g.bans.contains(&user_id) {
        return Err(ApiError::new(404, 10026, "Unknown Ban"));
    }
    Ok(ok(
        json!({ "reason": null, "user": payloads::user_by_id(&w, user_id) }),
    ))
}

/// `PUT /guilds/{g}/members/{u}/roles/{r}`.
pub async fn add_role(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    change_role(&sim, &p, true)
}

/// `DELETE /guilds/{g}/members/{u}/roles/{r}`.
pub async fn remove_role(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    change_role(&sim, &p, false)
}

/// MANAGE_ROLES, and the role strictly below the bot's highest role; managed roles
/// and @everyone cannot be assigned. Dispatches GUILD_MEMBER_UPDATE on a change.
fn change_role(sim: &Simulator, p: &Params, add: bool) -> ApiResult<Response> {
    let (guild_id, user_id, role_id) = (id(p, "guild_id")?, id(p, "user_id")?, id(p, "role_id")?);
    let mut w = sim.world();
    let bot = w.bot_id;
    let g = bot_guild(&w, guild_id)?;
    require(g.base_permissions(bot), perms::MANAGE_ROLES)?;
    let role = g.roles.get(&role_id).ok_or_else(ApiError::unknown_role)?;
    if !g.members.contains_key(&user_id) {
        return Err(ApiError::unknown_member());
    }
    if bot != g.owner_id && role.position >= g.highest_position(bot) {
        return Err(ApiError::missing_permissions());
    }
    if role.managed_for.is_some() || role_id == guild_id {
        return Err(ApiError::new(400, 50028, "Invalid Role"));
    }
    let m = w
        .guilds
        .get_mut(&guild_id)
        .and_then(|g| g.members.get_mut(&user_id))
        .expect("checked above");
    let had = m.roles.contains(&role_id);
    if add && !had {
        m.roles.push(role_id);
    } else if !add && had {
        m.roles.retain(|r| *r != role_id);
    }
    if add != had {
        let _ = sim.emit_member_update(&w, guild_id, user_id);
    }
    Ok(no_content())
}

/// `POST /guilds/{g}/channels {name, type, parent_id, topic, permission_overwrites,
/// position, nsfw}` (MANAGE_CHANNELS; overwrites also need MANAGE_ROLES and may only
/// grant or deny what the bot has). Answers 201 and dispatches CHANNEL_CREATE.
pub async fn create_channel(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let guild_id = id(&p, "guild_id")?;
    let body = json_body(&headers, &body)?;
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::form(
            &["name"],
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        ));
    }
    let kind = body.get("type").and_then(Value::as_u64).unwrap_or(0);
    if ![0, 2, 4, 5, 13, 15].contains(&kind) {
        return Err(ApiError::form(
            &["type"],
            "BASE_TYPE_CHOICES",
            "Value must be one of {0, 2, 4, 5, 13, 15}.",
        ));
    }
    let mut overwrites = Vec::new();
    for (i, o) in body
        .get("permission_overwrites")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let target = o.get("id").and_then(snowflake_value).ok_or_else(|| {
            ApiError::form(
                &["permission_overwrites", &i.to_string(), "id"],
                "BASE_TYPE_REQUIRED",
                "This field is required",
            )
        })?;
        let perm = |k: &str| o.get(k).and_then(snowflake_value).unwrap_or(0);
        overwrites.push(Overwrite {
            id: target,
            kind: o.get("type").and_then(snowflake_value).unwrap_or(0) as u8,
            allow: perm("allow"),
            deny: perm("deny"),
        });
    }
    let mut w = sim.world();
    let bot = w.bot_id;
    let g = bot_guild(&w, guild_id)?;
    let have = g.base_permissions(bot);
    require(have, perms::MANAGE_CHANNELS)?;
    if !overwrites.is_empty() {
        require(have, perms::MANAGE_ROLES)?;
        for o in &overwrites {
            require(have, o.allow | o.deny)?;
        }
    }
    let parent_id = body.get("parent_id").and_then(snowflake_value);
    if let Some(parent) = parent_id
        && !w
            .channels
            .get(&parent)
            .is_some_and(|c| c.guild_id == Some(guild_id) && c.kind == 4)
    {
        return Err(ApiError::form(
            &["parent_id"],
            "CHANNEL_PARENT_INVALID",
            "Category does not exist",
        ));
    }
    let channel_id = sim.next_id();
    let position = body
        .get("position")
        .and_then(Value::as_u64)
        .map_or(g.channels.len() as u32, |p| p as u32);
    let mut c = text_channel(channel_id, guild_id, name, position);
    c.kind = kind as u8;
    c.parent_id = parent_id;
    c.topic = body
        .get("topic")
        .and_then(Value::as_str)
        .map(str::to_string);
    c.nsfw = body.get("nsfw").and_then(Value::as_bool).unwrap_or(false);
    c.overwrites = overwrites;
    let d = payloads::channel(&w, &c);
    w.channels.insert(channel_id, c);
    w.guilds
        .get_mut(&guild_id)
        .expect("checked above")
        .channels
        .push(channel_id);
    let _ = sim.emit(Some(guild_id), "CHANNEL_CREATE", d.clone(), intents::GUILDS);
    Ok(created(d))
}
