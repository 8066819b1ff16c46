//! World building and user actions: what admins and users do on Discord, applied to
//! the world and dispatched to the bot like Discord would.

use crate::gateway::{Delivery, Dispatch, intents};
use crate::payloads::{self, sf};
use crate::state::{
    ChannelRec, GuildRec, MemberRec, MessageRec, Overwrite, ReactionRec, RoleRec, UserRec, World,
    channel_type, perms,
};
use crate::{GuildSetup, Simulator, ids, messages};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Audit-log action types (Discord's numbers) the simulator records.
pub(crate) mod audit_action {
    pub const KICK: u8 = 20;
    pub const BAN_ADD: u8 = 22;
    pub const BAN_REMOVE: u8 = 23;
    pub const MEMBER_UPDATE: u8 = 24;
}

impl Simulator {
    /// Queues a dispatch. Call with the world lock held when the event must be
    /// ordered against READY (see `gateway`'s lock order).
    pub(crate) fn emit(
        &self,
        guild_id: Option<u64>,
        t: &'static str,
        d: Value,
        intent: u64,
    ) -> Delivery {
        self.0.gateway.dispatch(Dispatch {
            guild_id,
            t,
            d,
            intent,
            d_without_content: None,
        })
    }

    /// MESSAGE_CREATE / MESSAGE_UPDATE for `m`: sessions without the MESSAGE_CONTENT
    /// intent get empty content, embeds, attachments and components unless the bot
    /// is mentioned, wrote it, or it is a DM — as on Discord.
    pub(crate) fn emit_message(&self, w: &World, m: &MessageRec, t: &'static str) -> Delivery {
        let d = payloads::message(w, m, true);
        let exempt = m.guild_id.is_none()
            || m.author_id == w.bot_id
            || m.mentions.contains(&w.bot_id)
            || m.content.contains(&format!("<@{}>", w.bot_id))
            || m.content.contains(&format!("<@!{}>", w.bot_id));
        let d_without_content = (!exempt).then(|| {
            let mut d = d.clone();
            d["content"] = json!("");
            d["embeds"] = json!([]);
            d["attachments"] = json!([]);
            d["components"] = json!([]);
            d
        });
        let intent = if m.guild_id.is_some() {
            intents::GUILD_MESSAGES
        } else {
            intents::DIRECT_MESSAGES
        };
        self.0.gateway.dispatch(Dispatch {
            guild_id: m.guild_id,
            t,
            d,
            intent,
            d_without_content,
        })
    }

    /// GUILD_MEMBER_UPDATE for a member. Sent without GUILD_MEMBERS when it is about
    /// the bot itself, as on Discord.
    pub(crate) fn emit_member_update(&self, w: &World, guild_id: u64, user_id: u64) -> Delivery {
        let Some(g) = w.guilds.get(&guild_id) else {
            return Delivery::none();
        };
        let Some(m) = g.members.get(&user_id) else {
            return Delivery::none();
        };
        let mut d = payloads::member(w, g, m, true);
        d["guild_id"] = sf(guild_id);
        let intent = if user_id == w.bot_id {
            0
        } else {
            intents::GUILD_MEMBERS
        };
        self.emit(Some(guild_id), "GUILD_MEMBER_UPDATE", d, intent)
    }

    pub(crate) fn add_bot_user(&self) {
        let cfg = &self.0.config;
        self.world().users.insert(
            cfg.bot_user_id,
            UserRec {
                id: cfg.bot_user_id,
                name: cfg.bot_name.clone(),
                bot: true,
            },
        );
    }

    /// A new user (not in any guild yet).
    pub fn create_user(&self, name: &str) -> u64 {
        let id = self.next_id();
        self.world().users.insert(
            id,
            UserRec {
                id,
                name: name.to_string(),
                bot: false,
            },
        );
        id
    }

    /// A guild as Discord makes one, with the bot invited: @everyone (id = guild
    /// id) with Discord's default permissions, a `general` text channel, the bot's
    /// managed "Bot" role at position 1, and the owner and the bot as members.
    /// Dispatches GUILD_CREATE to the owning shard if it has a session; otherwise
    /// the guild is in the next READY.
    pub fn create_guild(&self, name: &str, owner_id: u64) -> GuildSetup {
        let guild_id = self.0.ids.next_unique_ms();
        let general = self.next_id();
        let bot_role = self.next_id();
        let bot_id = self.bot_user_id();
        let now = ids::now_ms();
        let mut roles = BTreeMap::new();
        roles.insert(
            guild_id,
            RoleRec {
                id: guild_id,
                name: "@everyone".into(),
                permissions: perms::EVERYONE_DEFAULT,
                position: 0,
                color: 0,
                hoist: false,
                mentionable: false,
                managed_for: None,
            },
        );
        roles.insert(
            bot_role,
            RoleRec {
                id: bot_role,
                name: self.0.config.bot_name.clone(),
                permissions: perms::BOT_ROLE_DEFAULT,
                position: 1,
                color: 0,
                hoist: false,
                mentionable: false,
                managed_for: Some(bot_id),
            },
        );
        let mut members = BTreeMap::new();
        let member = |user_id, roles| MemberRec {
            user_id,
            roles,
            joined_at_ms: now,
            nick: None,
            timeout_until_ms: None,
        };
        members.insert(owner_id, member(owner_id, vec![]));
        members.insert(bot_id, member(bot_id, vec![bot_role]));
        let guild = GuildRec {
            id: guild_id,
            name: name.to_string(),
            owner_id,
            roles,
            channels: vec![general],
            members,
            bans: BTreeSet::new(),
            bot_joined_ms: now,
            system_channel_id: Some(general),
            emojis: Vec::new(),
        };
        let mut w = self.world();
        w.users.entry(owner_id).or_insert_with(|| UserRec {
            id: owner_id,
            name: format!("user{owner_id}"),
            bot: false,
        });
        w.channels
            .insert(general, text_channel(general, guild_id, "general", 0));
        w.guilds.insert(guild_id, guild);
        let d = payloads::guild(&w, &w.guilds[&guild_id], true);
        let _ = self.emit(Some(guild_id), "GUILD_CREATE", d, intents::GUILDS);
        GuildSetup {
            guild_id,
            everyone_role_id: guild_id,
            general_channel_id: general,
            bot_role_id: bot_role,
        }
    }

    /// A role at `position` (positions are taken as given; nothing shifts).
    /// Dispatches GUILD_ROLE_CREATE.
    pub fn create_role(&self, guild_id: u64, name: &str, permissions: u64, position: u32) -> u64 {
        let id = self.next_id();
        let mut w = self.world();
        let Some(g) = w.guilds.get_mut(&guild_id) else {
            tracing::warn!(guild_id, "create_role: unknown guild");
            return id;
        };
        let role = RoleRec {
            id,
            name: name.to_string(),
            permissions,
            position,
            color: 0,
            hoist: false,
            mentionable: false,
            managed_for: None,
        };
        let d = json!({ "guild_id": sf(guild_id), "role": payloads::role(&role) });
        g.roles.insert(id, role);
        let _ = self.emit(Some(guild_id), "GUILD_ROLE_CREATE", d, intents::GUILDS);
        id
    }

    /// Changes a role's permissions; dispatches GUILD_ROLE_UPDATE.
    pub fn set_role_permissions(&self, guild_id: u64, role_id: u64, permissions: u64) {
        let mut w = self.world();
        let Some(role) = w
            .guilds
            .get_mut(&guild_id)
            .and_then(|g| g.roles.get_mut(&role_id))
        else {
            tracing::warn!(guild_id, role_id, "set_role_permissions: unknown role");
            return;
        };
        role.permissions = permissions;
        let d = json!({ "guild_id": sf(guild_id), "role": payloads::role(role) });
        let _ = self.emit(Some(guild_id), "GUILD_ROLE_UPDATE", d, intents::GUILDS);
    }

    /// A text channel; dispatches CHANNEL_CREATE.
    pub fn create_channel(&self, guild_id: u64, name: &str) -> u64 {
        let id = self.next_id();
        let mut w = self.world();
        let Some(g) = w.guilds.get_mut(&guild_id) else {
            tracing::warn!(guild_id, "create_channel: unknown guild");
            return id;
        };
        let position = g.channels.len() as u32;
        g.channels.push(id);
        let c = text_channel(id, guild_id, name, position);
        let d = payloads::channel(&w, &c);
        w.channels.insert(id, c);
        let _ = self.emit(Some(guild_id), "CHANNEL_CREATE", d, intents::GUILDS);
        id
    }

    /// Sets (replaces) a permission overwrite; dispatches CHANNEL_UPDATE.
    pub fn set_overwrite(
        &self,
        guild_id: u64,
        channel_id: u64,
        target_id: u64,
        target_is_role: bool,
        allow: u64,
        deny: u64,
    ) {
        let mut w = self.world();
        let Some(c) = w
            .channels
            .get_mut(&channel_id)
            .filter(|c| c.guild_id == Some(guild_id))
        else {
            tracing::warn!(guild_id, channel_id, "set_overwrite: unknown channel");
            return;
        };
        upsert_overwrite(
            c,
            Overwrite {
                id: target_id,
                kind: if target_is_role { 0 } else { 1 },
                allow,
                deny,
            },
        );
        let c = c.clone();
        let d = payloads::channel(&w, &c);
        let _ = self.emit(Some(guild_id), "CHANNEL_UPDATE", d, intents::GUILDS);
    }

    /// Gives a member a role, as an admin would (no hierarchy checks); dispatches
    /// GUILD_MEMBER_UPDATE.
    pub fn give_role(&self, guild_id: u64, user_id: u64, role_id: u64) {
        let mut w = self.world();
        let Some(m) = w
            .guilds
            .get_mut(&guild_id)
            .and_then(|g| g.members.get_mut(&user_id))
        else {
            tracing::warn!(guild_id, user_id, "give_role: not a member");
            return;
        };
        if !m.roles.contains(&role_id) {
            m.roles.push(role_id);
        }
        let _ = self.emit_member_update(&w, guild_id, user_id);
    }

    /// The owner hands the guild to `new_owner` (a member, as Discord requires);
    /// dispatches GUILD_UPDATE.
    pub async fn transfer_ownership(&self, guild_id: u64, new_owner: u64) {
        let delivery = {
            let mut w = self.world();
            let Some(g) = w
                .guilds
                .get_mut(&guild_id)
                .filter(|g| g.members.contains_key(&new_owner))
            else {
                tracing::warn!(guild_id, new_owner, "transfer_ownership: not a member");
                return;
            };
            g.owner_id = new_owner;
            let d = payloads::guild(&w, &w.guilds[&guild_id], false);
            self.emit(Some(guild_id), "GUILD_UPDATE", d, intents::GUILDS)
        };
        delivery.written().await;
    }

    /// The user joins the guild; dispatches GUILD_MEMBER_ADD (with `guild_id`).
    pub async fn member_join(&self, guild_id: u64, user_id: u64) {
        let delivery = {
            let mut w = self.world();
            w.users.entry(user_id).or_insert_with(|| UserRec {
                id: user_id,
                name: format!("user{user_id}"),
                bot: false,
            });
            let Some(g) = w.guilds.get_mut(&guild_id) else {
                tracing::warn!(guild_id, "member_join: unknown guild");
                return;
            };
            g.members.insert(
                user_id,
                MemberRec {
                    user_id,
                    roles: vec![],
                    joined_at_ms: ids::now_ms(),
                    nick: None,
                    timeout_until_ms: None,
                },
            );
            let g = &w.guilds[&guild_id];
            let mut d = payloads::member(&w, g, &g.members[&user_id], true);
            d["guild_id"] = sf(guild_id);
            self.emit(
                Some(guild_id),
                "GUILD_MEMBER_ADD",
                d,
                intents::GUILD_MEMBERS,
            )
        };
        delivery.written().await;
    }

    /// The user leaves the guild; dispatches GUILD_MEMBER_REMOVE.
    pub async fn member_leave(&self, guild_id: u64, user_id: u64) {
        let delivery = {
            let mut w = self.world();
            let removed = w
                .guilds
                .get_mut(&guild_id)
                .and_then(|g| g.members.remove(&user_id));
            if removed.is_none() {
                tracing::warn!(guild_id, user_id, "member_leave: not a member");
                return;
            }
            self.member_removed(&w, guild_id, user_id)
        };
        delivery.written().await;
    }

    pub(crate) fn member_removed(&self, w: &World, guild_id: u64, user_id: u64) -> Delivery {
        let d = json!({ "guild_id": sf(guild_id), "user": payloads::user_by_id(w, user_id) });
        self.emit(
            Some(guild_id),
            "GUILD_MEMBER_REMOVE",
            d,
            intents::GUILD_MEMBERS,
        )
    }

    /// The bot is removed from the guild; dispatches GUILD_DELETE without
    /// `unavailable` (which would mean an outage, not a removal).
    pub async fn remove_bot(&self, guild_id: u64) {
        let bot = self.bot_user_id();
        let delivery = {
            let mut w = self.world();
            if let Some(g) = w.guilds.get_mut(&guild_id) {
                g.members.remove(&bot);
            }
            self.emit(
                Some(guild_id),
                "GUILD_DELETE",
                json!({ "id": sf(guild_id) }),
                intents::GUILDS,
            )
        };
        delivery.written().await;
    }

    /// The user posts `content`; dispatches MESSAGE_CREATE and returns the message id.
    pub async fn say(&self, guild_id: u64, channel_id: u64, user_id: u64, content: &str) -> u64 {
        let id = self.next_id();
        let delivery = {
            let mut w = self.world();
            if w.channels.get(&channel_id).and_then(|c| c.guild_id) != Some(guild_id) {
                tracing::warn!(guild_id, channel_id, "say: channel not in guild");
            }
            let body = messages::Body {
                content: Some(content.to_string()),
                ..messages::Body::default()
            };
            let mut m = messages::build(&w, id, channel_id, user_id, &body, ids::now_ms());
            m.guild_id = Some(guild_id);
            w.push_message(m.clone());
            self.emit_message(&w, &m, "MESSAGE_CREATE")
        };
        self.notify_changed();
        delivery.written().await;
        id
    }

    /// The user posts `content` with one attached file, which the simulator's
    /// CDN (`{base_url}/attachments/…`, no token needed) then serves;
    /// dispatches MESSAGE_CREATE. Returns the message and attachment ids.
    #[allow(clippy::too_many_arguments)]
    pub async fn say_with_attachment(
        &self,
        guild_id: u64,
        channel_id: u64,
        user_id: u64,
        content: &str,
        filename: &str,
        content_type: &str,
        data: &[u8],
    ) -> (u64, u64) {
        let (id, attachment_id) = (self.next_id(), self.next_id());
        // The CDN path keeps only characters no URL needs to escape.
        let path_name: String = filename
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let url = format!(
            "{}/attachments/{channel_id}/{attachment_id}/{path_name}",
            self.base_url()
        );
        let delivery = {
            let mut w = self.world();
            let body = messages::Body {
                content: Some(content.to_string()),
                ..messages::Body::default()
            };
            let mut m = messages::build(&w, id, channel_id, user_id, &body, ids::now_ms());
            m.guild_id = Some(guild_id);
            m.attachments = vec![json!({
                "id": sf(attachment_id),
                "filename": filename,
                "content_type": content_type,
                "size": data.len(),
                "url": url,
                "proxy_url": url,
            })];
            w.attachment_bytes
                .insert(attachment_id, (content_type.to_string(), data.to_vec()));
            w.push_message(m.clone());
            self.emit_message(&w, &m, "MESSAGE_CREATE")
        };
        self.notify_changed();
        delivery.written().await;
        (id, attachment_id)
    }

    /// `moderator` bans `user_id` in Discord's own interface (not through the
    /// API): as a REST ban does, plus the audit-log entry naming them.
    pub async fn ban_as(&self, guild_id: u64, moderator: u64, user_id: u64, reason: Option<&str>) {
        let delivery = {
            let mut w = self.world();
            self.banned(&mut w, guild_id, moderator, user_id, reason)
        };
        self.notify_changed();
        delivery.written().await;
    }

    /// Records a ban by `actor`: the ban, the member gone, GUILD_BAN_ADD,
    /// GUILD_MEMBER_REMOVE and the audit-log entry. Returns the last
    /// dispatch's delivery.
    pub(crate) fn banned(
        &self,
        w: &mut World,
        guild_id: u64,
        actor: u64,
        user_id: u64,
        reason: Option<&str>,
    ) -> Delivery {
        let Some(g) = w.guilds.get_mut(&guild_id) else {
            return Delivery::none();
        };
        g.bans.insert(user_id);
        let was_member = g.members.remove(&user_id).is_some();
        let d = json!({ "guild_id": sf(guild_id), "user": payloads::user_by_id(w, user_id) });
        let _ = self.emit(
            Some(guild_id),
            "GUILD_BAN_ADD",
            d,
            intents::GUILD_MODERATION,
        );
        if was_member {
            let _ = self.member_removed(w, guild_id, user_id);
        }
        self.audit_entry(
            w,
            guild_id,
            actor,
            user_id,
            audit_action::BAN_ADD,
            reason,
            json!([]),
        )
    }

    /// GUILD_AUDIT_LOG_ENTRY_CREATE, which Discord sends only to bots that
    /// may View Audit Log in the guild (and asked for GUILD_MODERATION).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn audit_entry(
        &self,
        w: &World,
        guild_id: u64,
        actor: u64,
        target: u64,
        action_type: u8,
        reason: Option<&str>,
        changes: Value,
    ) -> Delivery {
        let Some(g) = w.guilds.get(&guild_id) else {
            return Delivery::none();
        };
        let may_view = perms::VIEW_AUDIT_LOG | perms::ADMINISTRATOR;
        if g.base_permissions(w.bot_id) & may_view == 0 {
            return Delivery::none();
        }
        let d = json!({
            "id": sf(self.next_id()),
            "guild_id": sf(guild_id),
            "action_type": action_type,
            "user_id": sf(actor),
            "target_id": sf(target),
            "reason": reason,
            "changes": changes,
        });
        self.emit(
            Some(guild_id),
            "GUILD_AUDIT_LOG_ENTRY_CREATE",
            d,
            intents::GUILD_MODERATION,
        )
    }

    /// An admin uploads a custom emoji; returns its id.
    pub fn create_emoji(&self, guild_id: u64, name: &str, animated: bool) -> u64 {
        let id = self.next_id();
        if let Some(g) = self.world().guilds.get_mut(&guild_id) {
            g.emojis.push((id, name.to_string(), animated));
        }
        id
    }

    /// The user reacts with a unicode emoji; dispatches MESSAGE_REACTION_ADD.
    pub async fn react(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        user_id: u64,
        emoji: &str,
    ) {
        let delivery = {
            let mut w = self.world();
            let author = add_reaction(&mut w, channel_id, message_id, user_id, emoji);
            self.reaction_event(&w, guild_id, channel_id, message_id, user_id, emoji, author)
        };
        self.notify_changed();
        delivery.written().await;
    }

    /// The user takes back their reaction with a unicode emoji; dispatches
    /// MESSAGE_REACTION_REMOVE (as on Discord, without `member`).
    pub async fn unreact(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        user_id: u64,
        emoji: &str,
    ) {
        let delivery = {
            let mut w = self.world();
            remove_reaction(&mut w, channel_id, message_id, user_id, emoji);
            self.reaction_remove_event(guild_id, channel_id, message_id, user_id, emoji)
        };
        self.notify_changed();
        delivery.written().await;
    }

    /// MESSAGE_REACTION_REMOVE: Discord's payload has no `member` and no
    /// `message_author_id`.
    pub(crate) fn reaction_remove_event(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        user_id: u64,
        emoji: &str,
    ) -> Delivery {
        let d = json!({
            "user_id": sf(user_id),
            "channel_id": sf(channel_id),
            "message_id": sf(message_id),
            "guild_id": sf(guild_id),
            "emoji": payloads::emoji(emoji),
            "burst": false,
            "type": 0,
        });
        self.emit(
            Some(guild_id),
            "MESSAGE_REACTION_REMOVE",
            d,
            intents::GUILD_MESSAGE_REACTIONS,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reaction_event(
        &self,
        w: &World,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        user_id: u64,
        emoji: &str,
        message_author: Option<u64>,
    ) -> Delivery {
        let mut d = json!({
            "user_id": sf(user_id),
            "channel_id": sf(channel_id),
            "message_id": sf(message_id),
            "guild_id": sf(guild_id),
            "emoji": payloads::emoji(emoji),
            "burst": false,
            "burst_colors": [],
            "type": 0,
        });
        if let Some(a) = message_author {
            d["message_author_id"] = sf(a);
        }
        if let Some(g) = w.guilds.get(&guild_id)
            && let Some(m) = g.members.get(&user_id)
        {
            d["member"] = payloads::member(w, g, m, true);
        }
        self.emit(
            Some(guild_id),
            "MESSAGE_REACTION_ADD",
            d,
            intents::GUILD_MESSAGE_REACTIONS,
        )
    }
}

/// Records a reaction; returns the message's author if the message exists.
pub(crate) fn add_reaction(
    w: &mut World,
    channel_id: u64,
    message_id: u64,
    user_id: u64,
    emoji: &str,
) -> Option<u64> {
    let m = w.message_mut(channel_id, message_id)?;
    match m.reactions.iter_mut().find(|r| r.emoji == emoji) {
        Some(r) if !r.users.contains(&user_id) => r.users.push(user_id),
        Some(_) => {}
        None => m.reactions.push(ReactionRec {
            emoji: emoji.to_string(),
            users: vec![user_id],
        }),
    }
    Some(m.author_id)
}

/// Forgets a user's reaction; an emoji nobody reacts with any more goes.
pub(crate) fn remove_reaction(
    w: &mut World,
    channel_id: u64,
    message_id: u64,
    user_id: u64,
    emoji: &str,
) {
    let Some(m) = w.message_mut(channel_id, message_id) else {
        return;
    };
    for r in m.reactions.iter_mut().filter(|r| r.emoji == emoji) {
        r.users.retain(|u| *u != user_id);
    }
    m.reactions.retain(|r| !r.users.is_empty());
}

pub(crate) fn text_channel(id: u64, guild_id: u64, name: &str, position: u32) -> ChannelRec {
    ChannelRec {
        id,
        guild_id: Some(guild_id),
        kind: channel_type::GUILD_TEXT,
        name: name.to_string(),
        topic: None,
        parent_id: None,
        position,
        nsfw: false,
        overwrites: vec![],
        recipient: None,
        last_message_id: None,
    }
}

pub(crate) fn upsert_overwrite(c: &mut ChannelRec, o: Overwrite) {
    match c.overwrites.iter_mut().find(|x| x.id == o.id) {
        Some(x) => *x = o,
        None => c.overwrites.push(o),
    }
}
