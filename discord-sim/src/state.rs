//! The simulated world — users, guilds, roles, channels, members, messages, commands,
//! interactions — and Discord's permission math over it.
//!
//! Everything lives behind one `std::sync::Mutex` in the simulator and is never held
//! across an `.await`: REST handlers, gateway sessions and the test-facing API all
//! read and write this one model, so what the bot sees over the gateway and what it
//! gets back from REST always agree.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// Discord permission bits (<https://discord.com/developers/docs/topics/permissions>).
pub mod perms {
    pub const CREATE_INSTANT_INVITE: u64 = 1 << 0;
    pub const KICK_MEMBERS: u64 = 1 << 1;
    pub const BAN_MEMBERS: u64 = 1 << 2;
    pub const ADMINISTRATOR: u64 = 1 << 3;
    pub const MANAGE_CHANNELS: u64 = 1 << 4;
    pub const MANAGE_GUILD: u64 = 1 << 5;
    pub const ADD_REACTIONS: u64 = 1 << 6;
    pub const VIEW_AUDIT_LOG: u64 = 1 << 7;
    pub const STREAM: u64 = 1 << 9;
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    pub const SEND_MESSAGES: u64 = 1 << 11;
    pub const MANAGE_MESSAGES: u64 = 1 << 13;
    pub const EMBED_LINKS: u64 = 1 << 14;
    pub const ATTACH_FILES: u64 = 1 << 15;
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    pub const MENTION_EVERYONE: u64 = 1 << 17;
    pub const USE_EXTERNAL_EMOJIS: u64 = 1 << 18;
    pub const CONNECT: u64 = 1 << 20;
    pub const SPEAK: u64 = 1 << 21;
    pub const USE_VAD: u64 = 1 << 25;
    pub const CHANGE_NICKNAME: u64 = 1 << 26;
    pub const MANAGE_NICKNAMES: u64 = 1 << 27;
    pub const MANAGE_ROLES: u64 = 1 << 28;
    pub const USE_APPLICATION_COMMANDS: u64 = 1 << 31;
    pub const REQUEST_TO_SPEAK: u64 = 1 << 32;
    pub const CREATE_PUBLIC_THREADS: u64 = 1 << 35;
    pub const CREATE_PRIVATE_THREADS: u64 = 1 << 36;
    pub const USE_EXTERNAL_STICKERS: u64 = 1 << 37;
    pub const SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;
    pub const USE_EMBEDDED_ACTIVITIES: u64 = 1 << 39;
    pub const MODERATE_MEMBERS: u64 = 1 << 40;
    pub const USE_SOUNDBOARD: u64 = 1 << 42;
    pub const USE_EXTERNAL_SOUNDS: u64 = 1 << 45;
    pub const SEND_VOICE_MESSAGES: u64 = 1 << 46;
    pub const SEND_POLLS: u64 = 1 << 49;
    pub const USE_EXTERNAL_APPS: u64 = 1 << 50;
    /// Every permission bit Discord defines today (owners and administrators get these).
    pub const ALL: u64 = (1 << 51) - 1;

    /// What a new guild's @everyone role gets on Discord.
    pub const EVERYONE_DEFAULT: u64 = CREATE_INSTANT_INVITE
        | ADD_REACTIONS
        | STREAM
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | MENTION_EVERYONE
        | USE_EXTERNAL_EMOJIS
        | CONNECT
        | SPEAK
        | USE_VAD
        | CHANGE_NICKNAME
        | USE_APPLICATION_COMMANDS
        | REQUEST_TO_SPEAK
        | CREATE_PUBLIC_THREADS
        | CREATE_PRIVATE_THREADS
        | USE_EXTERNAL_STICKERS
        | SEND_MESSAGES_IN_THREADS
        | USE_EMBEDDED_ACTIVITIES
        | USE_SOUNDBOARD
        | USE_EXTERNAL_SOUNDS
        | SEND_VOICE_MESSAGES
        | SEND_POLLS
        | USE_EXTERNAL_APPS;

    /// The bot's managed role in every simulated guild, as its invite link asked for.
    pub const BOT_ROLE_DEFAULT: u64 = SEND_MESSAGES
        | VIEW_CHANNEL
        | EMBED_LINKS
        | ADD_REACTIONS
        | MANAGE_ROLES
        | MANAGE_MESSAGES
        | KICK_MEMBERS
        | BAN_MEMBERS
        | MODERATE_MEMBERS
        | MANAGE_CHANNELS;

    /// All a timed-out member keeps in a channel.
    pub const TIMED_OUT_ALLOWED: u64 = VIEW_CHANNEL | READ_MESSAGE_HISTORY;
}

/// Channel types used here.
pub mod channel_type {
    pub const GUILD_TEXT: u8 = 0;
    pub const DM: u8 = 1;
}

#[derive(Clone, Debug)]
pub struct UserRec {
    pub id: u64,
    pub name: String,
    pub bot: bool,
}

#[derive(Clone, Debug)]
pub struct RoleRec {
    pub id: u64,
    pub name: String,
    pub permissions: u64,
    pub position: u32,
    pub color: u32,
    pub hoist: bool,
    pub mentionable: bool,
    /// `Some(bot)` for the bot's integration role: it cannot be given to anyone else.
    pub managed_for: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overwrite {
    pub id: u64,
    /// 0 = role, 1 = member.
    pub kind: u8,
    pub allow: u64,
    pub deny: u64,
}

#[derive(Clone, Debug)]
pub struct ChannelRec {
    pub id: u64,
    /// `None` for DM channels.
    pub guild_id: Option<u64>,
    pub kind: u8,
    pub name: String,
    pub topic: Option<String>,
    pub parent_id: Option<u64>,
    pub position: u32,
    pub nsfw: bool,
    pub overwrites: Vec<Overwrite>,
    /// The other side of a DM channel.
    pub recipient: Option<u64>,
    pub last_message_id: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct MemberRec {
    pub user_id: u64,
    pub roles: Vec<u64>,
    pub joined_at_ms: u64,
    pub nick: Option<String>,
    /// Unix ms; a timeout is active while this is in the future.
    pub timeout_until_ms: Option<u64>,
}

impl MemberRec {
    pub fn timed_out(&self, now_ms: u64) -> bool {
        self.timeout_until_ms.is_some_and(|t| t > now_ms)
    }
}

#[derive(Clone, Debug)]
pub struct GuildRec {
    pub id: u64,
    pub name: String,
    pub owner_id: u64,
    pub roles: BTreeMap<u64, RoleRec>,
    /// Guild channels in creation order.
    pub channels: Vec<u64>,
    pub members: BTreeMap<u64, MemberRec>,
    pub bans: BTreeSet<u64>,
    /// When the bot joined (GUILD_CREATE's `joined_at`).
    pub bot_joined_ms: u64,
    pub system_channel_id: Option<u64>,
    /// Custom emojis: (id, name, animated).
    pub emojis: Vec<(u64, String, bool)>,
}

impl GuildRec {
    /// Highest role position among the member's roles; @everyone is 0.
    pub fn highest_position(&self, user_id: u64) -> u32 {
        self.members
            .get(&user_id)
            .map(|m| {
                m.roles
                    .iter()
                    .filter_map(|r| self.roles.get(r))
                    .map(|r| r.position)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Guild-level permissions: @everyone | the member's roles; owner and
    /// ADMINISTRATOR get everything.
    pub fn base_permissions(&self, user_id: u64) -> u64 {
        if user_id == self.owner_id {
            return perms::ALL;
        }
        let Some(member) = self.members.get(&user_id) else {
            return 0;
        };
        let mut p = self.roles.get(&self.id).map_or(0, |r| r.permissions);
        for role in member.roles.iter().filter_map(|r| self.roles.get(r)) {
            p |= role.permissions;
        }
        if p & perms::ADMINISTRATOR != 0 {
            return perms::ALL;
        }
        if member.timed_out(crate::ids::now_ms()) {
            p &= perms::TIMED_OUT_ALLOWED;
        }
        p
    }

    /// Channel permissions, computed Discord's way: base, then the @everyone
    /// overwrite, then all role overwrites OR'd together (deny, then allow), then the
    /// member overwrite; no VIEW_CHANNEL means nothing at all.
    pub fn channel_permissions(&self, channel: &ChannelRec, user_id: u64) -> u64 {
        let base = self.base_permissions(user_id);
        if base & perms::ADMINISTRATOR != 0 || user_id == self.owner_id {
            return perms::ALL;
        }
        let Some(member) = self.members.get(&user_id) else {
            return 0;
        };
        let mut p = base;
        if let Some(o) = channel.overwrites.iter().find(|o| o.id == self.id) {
            p = (p & !o.deny) | o.allow;
        }
        let (mut allow, mut deny) = (0, 0);
        for o in &channel.overwrites {
            if o.kind == 0 && o.id != self.id && member.roles.contains(&o.id) {
                allow |= o.allow;
                deny |= o.deny;
            }
        }
        p = (p & !deny) | allow;
        if let Some(o) = channel
            .overwrites
            .iter()
            .find(|o| o.kind == 1 && o.id == user_id)
        {
            p = (p & !o.deny) | o.allow;
        }
        if member.timed_out(crate::ids::now_ms()) {
            p &= perms::TIMED_OUT_ALLOWED;
        }
        if p & perms::VIEW_CHANNEL == 0 { 0 } else { p }
    }

    /// Whether `actor` outranks `target` (strictly higher top role; the owner
    /// outranks everyone and is outranked by no one).
    pub fn outranks(&self, actor: u64, target: u64) -> bool {
        if target == self.owner_id {
            return false;
        }
        if actor == self.owner_id {
            return true;
        }
        self.highest_position(actor) > self.highest_position(target)
    }
}

#[derive(Clone, Debug, Default)]
pub struct ReactionRec {
    /// `👍` or `name:id` for custom emoji.
    pub emoji: String,
    pub users: Vec<u64>,
}

#[derive(Clone, Debug)]
pub struct MessageRec {
    pub id: u64,
    pub channel_id: u64,
    pub guild_id: Option<u64>,
    pub author_id: u64,
    pub content: String,
    pub embeds: Vec<Value>,
    pub components: Vec<Value>,
    pub attachments: Vec<Value>,
    /// The nonce as sent (string or integer).
    pub nonce: Option<Value>,
    pub reply_to: Option<u64>,
    pub allowed_mentions: Option<Value>,
    pub timestamp_ms: u64,
    pub edited_ms: Option<u64>,
    pub flags: u64,
    /// 0 default, 19 reply, 20 chat-input command response, 0 for components.
    pub kind: u8,
    /// Set for interaction responses and followups: the application id.
    pub webhook_id: Option<u64>,
    /// `interaction_metadata` for interaction responses.
    pub interaction: Option<Value>,
    pub mentions: Vec<u64>,
    pub mention_roles: Vec<u64>,
    pub mention_everyone: bool,
    pub reactions: Vec<ReactionRec>,
    pub pinned: bool,
}

impl MessageRec {
    pub fn ephemeral(&self) -> bool {
        self.flags & 64 != 0
    }
}

/// What the bot answered to one interaction, and what it did with it afterwards.
#[derive(Clone, Debug)]
pub struct InteractionRec {
    pub id: u64,
    pub token: String,
    /// 2 command, 3 component, 5 modal submit.
    pub kind: u8,
    pub guild_id: u64,
    pub channel_id: u64,
    pub user_id: u64,
    /// The message a component sits on.
    pub message_id: Option<u64>,
    pub created: Instant,
    /// `(type, data)` of the first callback.
    pub response: Option<(u8, Value)>,
    /// The message `@original` designates once there is one.
    pub original_message_id: Option<u64>,
    pub edits: Vec<Value>,
    pub followups: Vec<Value>,
    /// Messages created by followups, which `/webhooks/…/messages/{id}` may edit.
    pub followup_message_ids: Vec<u64>,
    /// The command's name, for `interaction_metadata`.
    pub command_name: Option<String>,
}

#[derive(Debug, Default)]
pub struct World {
    /// The bot's user id (REST calls act as this user).
    pub bot_id: u64,
    pub application_id: u64,
    pub users: BTreeMap<u64, UserRec>,
    pub guilds: BTreeMap<u64, GuildRec>,
    pub channels: HashMap<u64, ChannelRec>,
    pub messages: HashMap<u64, Vec<MessageRec>>,
    /// user id → DM channel id.
    pub dm_channels: HashMap<u64, u64>,
    /// (channel, nonce) → message, for `enforce_nonce`.
    pub nonces: HashMap<(u64, String), u64>,
    /// guild → current registration (command objects as returned).
    pub guild_commands: HashMap<u64, Vec<Value>>,
    pub global_commands: Vec<Value>,
    /// (guild or 0, type, name) → command id, so ids survive re-registration as on Discord.
    pub command_ids: HashMap<(u64, u64, String), u64>,
    pub command_overwrites: HashMap<u64, usize>,
    pub interactions: HashMap<u64, InteractionRec>,
    /// interaction token → interaction id.
    pub interaction_tokens: HashMap<String, u64>,
    /// What the CDN serves for an attachment: id → (content type, bytes).
    pub attachment_bytes: HashMap<u64, (String, Vec<u8>)>,
}

impl World {
    /// The message with `id` in `channel_id`.
    pub fn message(&self, channel_id: u64, id: u64) -> Option<&MessageRec> {
        self.messages.get(&channel_id)?.iter().find(|m| m.id == id)
    }

    pub fn message_mut(&mut self, channel_id: u64, id: u64) -> Option<&mut MessageRec> {
        self.messages
            .get_mut(&channel_id)?
            .iter_mut()
            .find(|m| m.id == id)
    }

    /// Stores a message and bumps the channel's `last_message_id`.
    pub fn push_message(&mut self, m: MessageRec) {
        if let Some(c) = self.channels.get_mut(&m.channel_id) {
            c.last_message_id = Some(m.id);
        }
        self.messages.entry(m.channel_id).or_default().push(m);
    }

    /// The guild ids the bot is in.
    pub fn bot_guilds(&self, bot_id: u64) -> Vec<u64> {
        self.guilds
            .values()
            .filter(|g| g.members.contains_key(&bot_id))
            .map(|g| g.id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guild() -> GuildRec {
        let mut roles = BTreeMap::new();
        let role = |id, permissions, position| RoleRec {
            id,
            name: format!("r{id}"),
            permissions,
            position,
            color: 0,
            hoist: false,
            mentionable: false,
            managed_for: None,
        };
        roles.insert(1, role(1, perms::EVERYONE_DEFAULT, 0));
        roles.insert(2, role(2, perms::BOT_ROLE_DEFAULT, 1));
        roles.insert(3, role(3, perms::ADMINISTRATOR, 5));
        roles.insert(4, role(4, 0, 2));
        let mut members = BTreeMap::new();
        for (u, r) in [(10, vec![]), (11, vec![2]), (12, vec![3]), (13, vec![4])] {
            members.insert(
                u,
                MemberRec {
                    user_id: u,
                    roles: r,
                    joined_at_ms: 0,
                    nick: None,
                    timeout_until_ms: None,
                },
            );
        }
        GuildRec {
            id: 1,
            name: "g".into(),
            owner_id: 10,
            roles,
            channels: vec![],
            members,
            bans: BTreeSet::new(),
            bot_joined_ms: 0,
            system_channel_id: None,
            emojis: vec![],
        }
    }

    fn channel(overwrites: Vec<Overwrite>) -> ChannelRec {
        ChannelRec {
            id: 100,
            guild_id: Some(1),
            kind: 0,
            name: "c".into(),
            topic: None,
            parent_id: None,
            position: 0,
            nsfw: false,
            overwrites,
            recipient: None,
            last_message_id: None,
        }
    }

    #[test]
    fn owner_and_admin_get_everything() {
        let g = guild();
        assert_eq!(g.base_permissions(10), perms::ALL);
        assert_eq!(g.base_permissions(12), perms::ALL);
        let c = channel(vec![Overwrite {
            id: 1,
            kind: 0,
            allow: 0,
            deny: perms::VIEW_CHANNEL,
        }]);
        assert_eq!(g.channel_permissions(&c, 12), perms::ALL);
    }

    #[test]
    fn overwrites_apply_in_order() {
        let g = guild();
        let deny_everyone = Overwrite {
            id: 1,
            kind: 0,
            allow: 0,
            deny: perms::SEND_MESSAGES,
        };
        let c = channel(vec![deny_everyone.clone()]);
        // The bot role grants SEND_MESSAGES at guild level, but the @everyone
        // overwrite removes it (role permissions are not overwrites).
        assert_eq!(g.channel_permissions(&c, 11) & perms::SEND_MESSAGES, 0);
        let c = channel(vec![
            deny_everyone,
            Overwrite {
                id: 2,
                kind: 0,
                allow: perms::SEND_MESSAGES,
                deny: 0,
            },
        ]);
        assert_ne!(g.channel_permissions(&c, 11) & perms::SEND_MESSAGES, 0);
        let c = channel(vec![Overwrite {
            id: 11,
            kind: 1,
            allow: 0,
            deny: perms::VIEW_CHANNEL,
        }]);
        assert_eq!(g.channel_permissions(&c, 11), 0);
    }

    #[test]
    fn hierarchy() {
        let g = guild();
        assert!(!g.outranks(11, 10));
        assert!(g.outranks(12, 11));
        assert!(!g.outranks(11, 12));
        assert!(!g.outranks(13, 13));
        assert!(g.outranks(10, 12));
    }
}
