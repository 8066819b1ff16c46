//! In-memory guilds that behave like Discord where the runtime cares: unknown
//! channels and members are not found, the bot needs the right permission, and
//! nobody may manage a role at or above the bot's own top role.

use super::{Discord, DiscordError, Role, permissions};
use crate::wit::townes::feature::channels::{ChannelSpec, PermissionOverwrite};
use crate::wit::townes::feature::history::{Attachment, PastMessage};
use crate::wit::{GuildInfo, Member, MessageBody, User};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct LocalGuild {
    pub id: u64,
    pub name: String,
    pub owner_id: u64,
    pub channels: BTreeMap<u64, String>,
    pub roles: Vec<Role>,
    pub members: BTreeMap<u64, Member>,
    /// Role ids the bot holds; their permissions are the bot's permissions.
    pub bot_roles: Vec<u64>,
    /// Users who refuse direct messages.
    pub dm_closed: Vec<u64>,
    /// The slash commands last registered for the guild (Discord's JSON).
    pub registered_commands: Option<serde_json::Value>,
    /// Users banned from the guild.
    pub bans: std::collections::BTreeSet<u64>,
    /// Past messages by channel, oldest first (what `history.read` reads);
    /// add them with [`LocalGuild::post`].
    pub history: BTreeMap<u64, Vec<PastMessage>>,
    /// What the CDN serves for an attachment of a message in `history`, by
    /// attachment id.
    pub attachment_bytes: BTreeMap<u64, Vec<u8>>,
    /// Who reacted to a message with an emoji (what `messages.reactions`
    /// reads), by (message id, emoji).
    pub reactions: BTreeMap<(u64, String), std::collections::BTreeSet<u64>>,
}

impl LocalGuild {
    /// A guild with a `#general` channel (id `guild_id + 1`), an @everyone role
    /// (id = guild id), a "Bot" role at position 10 with the usual moderation
    /// permissions, a "Member" role at 1, and an "Admin" role at 20 with
    /// Administrator (above the bot).
    pub fn new(id: u64, name: &str) -> Self {
        let bot_role = id + 10;
        LocalGuild {
            id,
            name: name.to_string(),
            owner_id: 1,
            channels: BTreeMap::from([(id + 1, "general".to_string())]),
            roles: vec![
                Role {
                    id,
                    name: "@everyone".into(),
                    position: 0,
                    permissions: permissions::SEND_MESSAGES,
                },
                Role {
                    id: id + 2,
                    name: "Member".into(),
                    position: 1,
                    permissions: permissions::SEND_MESSAGES,
                },
                Role {
                    id: bot_role,
                    name: "Bot".into(),
                    position: 10,
                    permissions: permissions::SEND_MESSAGES
                        | permissions::ADD_REACTIONS
                        | permissions::MANAGE_MESSAGES
                        | permissions::MANAGE_ROLES
                        | permissions::MANAGE_CHANNELS
                        | permissions::KICK_MEMBERS
                        | permissions::BAN_MEMBERS
                        | permissions::MODERATE_MEMBERS,
                },
                Role {
                    id: id + 20,
                    name: "Admin".into(),
                    position: 20,
                    permissions: permissions::ADMINISTRATOR,
                },
            ],
            members: BTreeMap::new(),
            bot_roles: vec![bot_role],
            dm_closed: Vec::new(),
            registered_commands: None,
            history: BTreeMap::new(),
            attachment_bytes: BTreeMap::new(),
            reactions: BTreeMap::new(),
            bans: Default::default(),
        }
    }

    pub fn general_channel(&self) -> u64 {
        self.id + 1
    }

    pub fn add_member(&mut self, user_id: u64, username: &str, roles: Vec<u64>) -> Member {
        let member = Member {
            user: User {
                id: user_id,
                username: username.to_string(),
                global_name: None,
                bot: false,
            },
            nick: None,
            roles,
            joined_at: Some(chrono::Utc::now().to_rfc3339()),
        };
        self.members.insert(user_id, member.clone());
        member
    }

    /// A member's guild-wide permissions: @everyone's and their roles'; the
    /// owner and Administrators hold every bit. 0 for a non-member.
    pub fn permissions_of(&self, user_id: u64) -> u64 {
        let Some(member) = self.members.get(&user_id) else {
            return 0;
        };
        let held = self.role_permissions(&member.roles);
        if user_id == self.owner_id || held & permissions::ADMINISTRATOR != 0 {
            permissions::ALL
        } else {
            held
        }
    }

    fn bot_permissions(&self) -> u64 {
        self.role_permissions(&self.bot_roles)
    }

    /// What @everyone and the roles `held` grant together.
    fn role_permissions(&self, held: &[u64]) -> u64 {
        self.roles
            .iter()
            .filter(|r| r.id == self.id || held.contains(&r.id))
            .fold(0, |acc, r| acc | r.permissions)
    }

    fn bot_top(&self) -> u32 {
        self.roles
            .iter()
            .filter(|r| self.bot_roles.contains(&r.id))
            .map(|r| r.position)
            .max()
            .unwrap_or(0)
    }

    fn require(&self, permission: u64, name: &str) -> Result<(), DiscordError> {
        let held = self.bot_permissions();
        if held & (permission | permissions::ADMINISTRATOR) == 0 {
            return Err(DiscordError::Forbidden(format!(
                "the bot lacks the {name} permission"
            )));
        }
        Ok(())
    }

    /// Adds `message` to a channel's history.
    pub fn post(&mut self, channel_id: u64, message: PastMessage) {
        self.history.entry(channel_id).or_default().push(message);
    }

    fn channel(&self, channel_id: u64) -> Result<(), DiscordError> {
        self.channels
            .contains_key(&channel_id)
            .then_some(())
            .ok_or_else(|| DiscordError::NotFound(format!("channel {channel_id}")))
    }

    fn member_top(&self, user_id: u64) -> Result<u32, DiscordError> {
        let member = self
            .members
            .get(&user_id)
            .ok_or_else(|| DiscordError::NotFound(format!("member {user_id}")))?;
        Ok(self
            .roles
            .iter()
            .filter(|r| member.roles.contains(&r.id))
            .map(|r| r.position)
            .max()
            .unwrap_or(0))
    }

    fn check_outranks(&self, user_id: u64) -> Result<(), DiscordError> {
        if user_id == self.owner_id || self.member_top(user_id)? >= self.bot_top() {
            return Err(DiscordError::Forbidden(format!(
                "member {user_id} is at or above the bot in the role hierarchy"
            )));
        }
        Ok(())
    }
}

/// Guilds in memory. Thread-safe; ids for new messages and channels count up from
/// a large base so they never collide with the ids a test chose.
pub struct LocalDiscord {
    guilds: Mutex<HashMap<u64, LocalGuild>>,
    next_id: AtomicU64,
    /// Added before every call, to simulate a slow Discord.
    latency: Mutex<Duration>,
}

impl Default for LocalDiscord {
    fn default() -> Self {
        LocalDiscord {
            guilds: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(900_000_000_000_000_000),
            latency: Mutex::new(Duration::ZERO),
        }
    }
}

impl LocalDiscord {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call take at least `latency`.
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    async fn lag(&self) {
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    pub fn add_guild(&self, guild: LocalGuild) {
        self.guilds.lock().unwrap().insert(guild.id, guild);
    }

    /// Changes a guild in place (add members, channels, roles).
    pub fn with_guild<R>(&self, guild_id: u64, f: impl FnOnce(&mut LocalGuild) -> R) -> Option<R> {
        self.guilds.lock().unwrap().get_mut(&guild_id).map(f)
    }

    /// See [`LocalGuild::permissions_of`].
    pub fn permissions_of(&self, guild_id: u64, user_id: u64) -> u64 {
        self.with_guild(guild_id, |g| g.permissions_of(user_id))
            .unwrap_or(0)
    }

    pub fn member_of(&self, guild_id: u64, user_id: u64) -> Option<Member> {
        self.with_guild(guild_id, |g| g.members.get(&user_id).cloned())
            .flatten()
    }

    fn guild<R>(
        &self,
        guild_id: u64,
        f: impl FnOnce(&mut LocalGuild) -> Result<R, DiscordError>,
    ) -> Result<R, DiscordError> {
        let mut guilds = self.guilds.lock().unwrap();
        let guild = guilds
            .get_mut(&guild_id)
            .ok_or_else(|| DiscordError::NotFound(format!("guild {guild_id}")))?;
        f(guild)
    }

    fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

#[async_trait]
impl Discord for LocalDiscord {
    async fn send_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        _body: &MessageBody,
    ) -> Result<u64, DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.channel(channel_id)?;
            g.require(permissions::SEND_MESSAGES, "Send Messages")
        })?;
        Ok(self.new_id())
    }

    async fn edit_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        _message_id: u64,
        _body: &MessageBody,
    ) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| g.channel(channel_id))
    }

    async fn delete_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        _message_id: u64,
    ) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.channel(channel_id)?;
            g.require(permissions::MANAGE_MESSAGES, "Manage Messages")
        })
    }

    async fn add_reaction(
        &self,
        guild_id: u64,
        channel_id: u64,
        _message_id: u64,
        _emoji: &str,
    ) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.channel(channel_id)?;
            g.require(permissions::ADD_REACTIONS, "Add Reactions")
        })
    }

    async fn member(&self, guild_id: u64, user_id: u64) -> Result<Member, DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.members
                .get(&user_id)
                .cloned()
                .ok_or_else(|| DiscordError::NotFound(format!("member {user_id}")))
        })
    }

    async fn guild_info(&self, guild_id: u64) -> Result<GuildInfo, DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            Ok(GuildInfo {
                id: g.id,
                name: g.name.clone(),
                member_count: g.members.len() as u32,
                owner_id: g.owner_id,
            })
        })
    }

    async fn send_dm(&self, user_id: u64, _body: &MessageBody) -> Result<u64, DiscordError> {
        self.lag().await;
        let guilds = self.guilds.lock().unwrap();
        if guilds.values().any(|g| g.dm_closed.contains(&user_id)) {
            return Err(DiscordError::Forbidden(format!(
                "user {user_id} does not accept direct messages"
            )));
        }
        drop(guilds);
        Ok(self.new_id())
    }

    async fn roles(&self, guild_id: u64) -> Result<Vec<Role>, DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| Ok(g.roles.clone()))
    }

    async fn bot_top_position(&self, guild_id: u64) -> Result<u32, DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| Ok(g.bot_top()))
    }

    async fn add_role(
        &self,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        _reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.require(permissions::MANAGE_ROLES, "Manage Roles")?;
            let role = g
                .roles
                .iter()
                .find(|r| r.id == role_id)
                .ok_or_else(|| DiscordError::NotFound(format!("role {role_id}")))?;
            if role.position >= g.bot_top() {
                return Err(DiscordError::Forbidden(format!(
                    "role {role_id} is at or above the bot's top role"
                )));
            }
            let member = g
                .members
                .get_mut(&user_id)
                .ok_or_else(|| DiscordError::NotFound(format!("member {user_id}")))?;
            if !member.roles.contains(&role_id) {
                member.roles.push(role_id);
            }
            Ok(())
        })
    }

    async fn remove_role(
        &self,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        _reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.require(permissions::MANAGE_ROLES, "Manage Roles")?;
            let member = g
                .members
                .get_mut(&user_id)
                .ok_or_else(|| DiscordError::NotFound(format!("member {user_id}")))?;
            member.roles.retain(|r| *r != role_id);
            Ok(())
        })
    }

    async fn create_channel(&self, guild_id: u64, spec: &ChannelSpec) -> Result<u64, DiscordError> {
        self.lag().await;
        let id = self.new_id();
        self.guild(guild_id, |g| {
            g.require(permissions::MANAGE_CHANNELS, "Manage Channels")?;
            g.channels.insert(id, spec.name.clone());
            Ok(id)
        })
    }

    async fn delete_channel(&self, guild_id: u64, channel_id: u64) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.require(permissions::MANAGE_CHANNELS, "Manage Channels")?;
            g.channels
                .remove(&channel_id)
                .map(|_| ())
                .ok_or_else(|| DiscordError::NotFound(format!("channel {channel_id}")))
        })
    }

    async fn set_overwrite(
        &self,
        guild_id: u64,
        channel_id: u64,
        _overwrite: &PermissionOverwrite,
    ) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.channel(channel_id)?;
            g.require(permissions::MANAGE_ROLES, "Manage Roles")
        })
    }

    async fn kick(
        &self,
        guild_id: u64,
        user_id: u64,
        _reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.require(permissions::KICK_MEMBERS, "Kick Members")?;
            g.check_outranks(user_id)?;
            g.members.remove(&user_id);
            Ok(())
        })
    }

    async fn ban(
        &self,
        guild_id: u64,
        user_id: u64,
        _delete_message_seconds: u32,
        _reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.require(permissions::BAN_MEMBERS, "Ban Members")?;
            if g.members.contains_key(&user_id) {
                g.check_outranks(user_id)?;
            }
            g.members.remove(&user_id);
            g.bans.insert(user_id);
            Ok(())
        })
    }

    async fn unban(
        &self,
        guild_id: u64,
        user_id: u64,
        _reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.require(permissions::BAN_MEMBERS, "Ban Members")?;
            if g.bans.remove(&user_id) {
                Ok(())
            } else {
                Err(DiscordError::NotFound(format!("ban of user {user_id}")))
            }
        })
    }

    async fn timeout(
        &self,
        guild_id: u64,
        user_id: u64,
        _seconds: u32,
        _reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.require(permissions::MODERATE_MEMBERS, "Moderate Members")?;
            g.check_outranks(user_id)
        })
    }

    async fn overwrite_guild_commands(
        &self,
        guild_id: u64,
        commands: &serde_json::Value,
    ) -> Result<(), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.registered_commands = Some(commands.clone());
            Ok(())
        })
    }

    async fn purge(&self, guild_id: u64, channel_id: u64, count: u32) -> Result<u32, DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.channel(channel_id)?;
            g.require(permissions::MANAGE_MESSAGES, "Manage Messages")?;
            Ok(count)
        })
    }

    async fn reactions(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        emoji: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<u64>, DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.channel(channel_id)?;
            Ok(g.reactions
                .get(&(message_id, emoji.to_string()))
                .into_iter()
                .flatten()
                .copied()
                .filter(|user| after.is_none_or(|a| *user > a))
                .take(limit.clamp(1, 100) as usize)
                .collect())
        })
    }

    async fn channel_messages(
        &self,
        guild_id: u64,
        channel_id: u64,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<PastMessage>, DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.channel(channel_id)?;
            Ok(g.history
                .get(&channel_id)
                .into_iter()
                .flatten()
                .rev()
                .filter(|m| before.is_none_or(|b| m.id < b))
                .take(limit.clamp(1, 100) as usize)
                .cloned()
                .collect())
        })
    }

    async fn attachment(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        attachment_id: u64,
        max_bytes: u64,
    ) -> Result<(Attachment, Vec<u8>), DiscordError> {
        self.lag().await;
        self.guild(guild_id, |g| {
            g.channel(channel_id)?;
            let attachment = g
                .history
                .get(&channel_id)
                .into_iter()
                .flatten()
                .find(|m| m.id == message_id)
                .ok_or_else(|| DiscordError::NotFound(format!("message {message_id}")))?
                .attachments
                .iter()
                .find(|a| a.id == attachment_id)
                .ok_or_else(|| DiscordError::NotFound(format!("attachment {attachment_id}")))?
                .clone();
            let data = g
                .attachment_bytes
                .get(&attachment_id)
                .ok_or_else(|| DiscordError::NotFound(format!("attachment {attachment_id}")))?;
            if data.len() as u64 > max_bytes {
                return Err(super::attachment_too_large(max_bytes));
            }
            Ok((attachment, data.clone()))
        })
    }
}
