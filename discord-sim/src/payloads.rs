//! Discord's JSON objects, built from the world model.
//!
//! One builder per object so REST responses and gateway dispatches carry the same
//! shapes. Every builder emits all fields serenity 0.12.5 requires (and the nullable
//! ones Discord sends), with snowflakes and permissions as strings and ISO-8601
//! timestamps: a missing field would make serenity drop the whole dispatch as
//! `Event::Unknown`.

use crate::ids::iso8601;
use crate::state::{ChannelRec, GuildRec, MemberRec, MessageRec, RoleRec, UserRec, World};
use serde_json::{Map, Value, json};

/// Snowflakes travel as strings.
pub fn sf(id: u64) -> Value {
    Value::String(id.to_string())
}

pub fn opt_sf(id: Option<u64>) -> Value {
    id.map_or(Value::Null, sf)
}

pub fn user(u: &UserRec) -> Value {
    let mut v = json!({
        "id": sf(u.id),
        "username": u.name,
        "discriminator": "0",
        "global_name": if u.bot { Value::Null } else { Value::String(u.name.clone()) },
        "avatar": null,
        "avatar_decoration_data": null,
        "banner": null,
        "accent_color": null,
        "public_flags": 0,
        "flags": 0,
        "primary_guild": null,
        "collectibles": null,
    });
    if u.bot {
        v["bot"] = Value::Bool(true);
    }
    v
}

/// A user by id, or a placeholder for an id the world does not know (Discord would
/// show "Deleted User"), so payloads never lose required fields.
pub fn user_by_id(w: &World, id: u64) -> Value {
    match w.users.get(&id) {
        Some(u) => user(u),
        None => user(&UserRec {
            id,
            name: "deleted_user".into(),
            bot: false,
        }),
    }
}

pub fn role(r: &RoleRec) -> Value {
    let tags = match r.managed_for {
        Some(bot) => json!({ "bot_id": sf(bot) }),
        None => json!({}),
    };
    json!({
        "id": sf(r.id),
        "name": r.name,
        "description": null,
        "color": r.color,
        "colors": { "primary_color": r.color, "secondary_color": null, "tertiary_color": null },
        "hoist": r.hoist,
        "icon": null,
        "unicode_emoji": null,
        "position": r.position,
        "permissions": r.permissions.to_string(),
        "managed": r.managed_for.is_some(),
        "mentionable": r.mentionable,
        "flags": 0,
        "tags": tags,
    })
}

pub fn overwrites(c: &ChannelRec) -> Value {
    Value::Array(
        c.overwrites
            .iter()
            .map(|o| {
                json!({
                    "id": sf(o.id),
                    "type": o.kind,
                    "allow": o.allow.to_string(),
                    "deny": o.deny.to_string(),
                })
            })
            .collect(),
    )
}

pub fn channel(w: &World, c: &ChannelRec) -> Value {
    match c.guild_id {
        Some(g) => json!({
            "id": sf(c.id),
            "type": c.kind,
            "guild_id": sf(g),
            "name": c.name,
            "position": c.position,
            "permission_overwrites": overwrites(c),
            "parent_id": opt_sf(c.parent_id),
            "topic": c.topic,
            "nsfw": c.nsfw,
            "last_message_id": opt_sf(c.last_message_id),
            "rate_limit_per_user": 0,
            "flags": 0,
        }),
        None => json!({
            "id": sf(c.id),
            "type": c.kind,
            "last_message_id": opt_sf(c.last_message_id),
            "flags": 0,
            "recipients": c.recipient.map(|u| vec![user_by_id(w, u)]).unwrap_or_default(),
        }),
    }
}

/// A guild member. `with_user` is false where Discord omits it (MESSAGE_CREATE's
/// `member`, resolved members).
pub fn member(w: &World, g: &GuildRec, m: &MemberRec, with_user: bool) -> Value {
    let mut v = json!({
        "nick": m.nick,
        "avatar": null,
        "banner": null,
        "roles": m.roles.iter().filter(|r| **r != g.id).map(|r| sf(*r)).collect::<Vec<_>>(),
        "joined_at": iso8601(m.joined_at_ms),
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": m.timeout_until_ms.map(iso8601),
        "unusual_dm_activity_until": null,
        "avatar_decoration_data": null,
    });
    if with_user {
        v["user"] = user_by_id(w, m.user_id);
    }
    v
}

/// The guild object. `create` adds GUILD_CREATE's extra fields (members, channels,
/// presences, …); without it this is what `GET /guilds/{id}` answers.
pub fn guild(w: &World, g: &GuildRec, create: bool) -> Value {
    let roles: Vec<Value> = g.roles.values().map(role).collect();
    let mut v = json!({
        "id": sf(g.id),
        "name": g.name,
        "icon": null,
        "icon_hash": null,
        "splash": null,
        "discovery_splash": null,
        "owner_id": sf(g.owner_id),
        "region": "deprecated",
        "afk_channel_id": null,
        "afk_timeout": 300,
        "widget_enabled": false,
        "widget_channel_id": null,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": roles,
        "emojis": [],
        "features": [],
        "mfa_level": 0,
        "application_id": null,
        "system_channel_id": opt_sf(g.system_channel_id),
        "system_channel_flags": 0,
        "rules_channel_id": null,
        "max_presences": null,
        "max_members": 500000,
        "vanity_url_code": null,
        "description": null,
        "banner": null,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": null,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "nsfw_level": 0,
        "nsfw": false,
        "stickers": [],
        "premium_progress_bar_enabled": false,
        "safety_alerts_channel_id": null,
        "incidents_data": null,
        "hub_type": null,
        "latest_onboarding_question_id": null,
    });
    if create {
        let members: Vec<Value> = g.members.values().map(|m| member(w, g, m, true)).collect();
        let channels: Vec<Value> = g
            .channels
            .iter()
            .filter_map(|c| w.channels.get(c))
            .map(|c| {
                let mut v = channel(w, c);
                // GUILD_CREATE's channels carry no guild_id on Discord.
                v.as_object_mut().map(|o| o.remove("guild_id"));
                v
            })
            .collect();
        let extra = json!({
            "joined_at": iso8601(g.bot_joined_ms),
            "large": false,
            "unavailable": false,
            "lazy": true,
            "member_count": g.members.len(),
            "voice_states": [],
            "members": members,
            "channels": channels,
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "application_command_counts": {},
        });
        merge(&mut v, extra);
    }
    v
}

/// Adds `extra`'s keys to the object `v`.
pub fn merge(v: &mut Value, extra: Value) {
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
}

/// The message object. `gateway` adds what MESSAGE_CREATE has and REST responses do
/// not: `guild_id` and the author's partial `member`.
pub fn message(w: &World, m: &MessageRec, gateway: bool) -> Value {
    let guild = m.guild_id.and_then(|g| w.guilds.get(&g));
    let mention_users: Vec<Value> = m
        .mentions
        .iter()
        .map(|u| {
            let mut v = user_by_id(w, *u);
            if gateway && let Some(mem) = guild.and_then(|g| g.members.get(u).map(|mm| (g, mm))) {
                v["member"] = member(w, mem.0, mem.1, false);
            }
            v
        })
        .collect();
    let reactions: Vec<Value> = m
        .reactions
        .iter()
        .map(|r| {
            json!({
                "emoji": emoji(&r.emoji),
                "count": r.users.len(),
                "count_details": { "burst": 0, "normal": r.users.len() },
                "burst_colors": [],
                "me": r.users.contains(&w.bot_id),
                "me_burst": false,
            })
        })
        .collect();
    let mut v = json!({
        "id": sf(m.id),
        "type": m.kind,
        "channel_id": sf(m.channel_id),
        "author": user_by_id(w, m.author_id),
        "content": m.content,
        "timestamp": iso8601(m.timestamp_ms),
        "edited_timestamp": m.edited_ms.map(iso8601),
        "tts": false,
        "mention_everyone": m.mention_everyone,
        "mentions": mention_users,
        "mention_roles": m.mention_roles.iter().map(|r| sf(*r)).collect::<Vec<_>>(),
        "mention_channels": [],
        "attachments": m.attachments,
        "embeds": m.embeds,
        "components": m.components,
        "pinned": m.pinned,
        "flags": m.flags,
    });
    let o = v.as_object_mut().expect("object");
    if !reactions.is_empty() {
        o.insert("reactions".into(), Value::Array(reactions));
    }
    if let Some(n) = &m.nonce {
        o.insert("nonce".into(), n.clone());
    }
    if let Some(id) = m.webhook_id {
        o.insert("webhook_id".into(), sf(id));
        o.insert("application_id".into(), sf(id));
    }
    if let Some(meta) = &m.interaction {
        o.insert("interaction_metadata".into(), meta.clone());
    }
    if let Some(reply) = m.reply_to {
        let mut reference = Map::new();
        reference.insert("type".into(), json!(0));
        reference.insert("message_id".into(), sf(reply));
        reference.insert("channel_id".into(), sf(m.channel_id));
        if let Some(g) = m.guild_id {
            reference.insert("guild_id".into(), sf(g));
        }
        o.insert("message_reference".into(), Value::Object(reference));
        let referenced = w
            .message(m.channel_id, reply)
            .map(|r| message_shallow(w, r))
            .unwrap_or(Value::Null);
        o.insert("referenced_message".into(), referenced);
    }
    if gateway && let Some(g) = guild {
        o.insert("guild_id".into(), sf(g.id));
        if let Some(mem) = g.members.get(&m.author_id) {
            o.insert("member".into(), member(w, g, mem, false));
        }
    }
    v
}

/// A referenced message: the same object without its own `referenced_message`.
fn message_shallow(w: &World, m: &MessageRec) -> Value {
    let mut copy = m.clone();
    copy.reply_to = None;
    message(w, &copy, false)
}

/// `👍` → `{"id":null,"name":"👍"}`; `name:123` → a custom emoji.
pub fn emoji(e: &str) -> Value {
    match e.rsplit_once(':') {
        Some((name, id)) if id.parse::<u64>().is_ok() => json!({
            "id": id,
            "name": name.trim_start_matches("a:"),
            "animated": name.starts_with("a:"),
        }),
        _ => json!({ "id": null, "name": e }),
    }
}
