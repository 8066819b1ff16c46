//! [`RemoteDiscord`]: the [`Discord`] port for real Discord (or a REST proxy, or our
//! simulator). Writes go through the [`Executor`] (durable, ordered, rate-limit aware);
//! reads come from the gateway's serenity cache when the guild is cached, else from
//! REST through [`Executor::direct`].
//!
//! Every channel-scoped call first checks that the channel belongs to the guild the
//! feature runs for: the bot is in many guilds, and Discord would happily let a
//! feature in one guild post to (or delete) a channel of another. A channel Discord
//! refused to show (403) or does not know (404) is remembered for a while, so a
//! feature repeating the call costs Discord nothing.
//!
//! [`Discord::for_caller`] gives a feature its own view of the port: the same state,
//! with its writes and reads held to its quotas and invalid-request budgets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use serenity::cache::Cache;
use serenity::model::id::{ChannelId, GuildId, UserId};

use super::executor::{Action, Executor};
use super::rest::{message_json, snowflake};
use super::{Caller, Discord, DiscordError, Role};
use crate::wit::townes::feature::channels::{
    ChannelKind, ChannelSpec, OverwriteTarget, PermissionOverwrite,
};
use crate::wit::townes::feature::history::{Attachment, PastMessage};
use crate::wit::{Embed, EmbedField, GuildInfo, Member, MessageBody, User};

/// Discord refuses to bulk-delete messages older than 14 days; a minute of margin
/// covers the time the call may wait in the queue.
const BULK_DELETE_MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::days(14);
const BULK_DELETE_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Channel → guild pairs remembered at most (a channel never changes guild).
const MAX_KNOWN_CHANNELS: usize = 10_000;

/// Milliseconds since the Unix epoch at Discord's epoch (2015-01-01).
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// Where the gateway's cache is put once the gateway client exists; readers
/// before that fall back to REST. The gateway puts a new one in when it
/// reconnects with other intents (each serenity client has its own cache).
#[derive(Clone, Default)]
pub struct CacheSlot(Arc<RwLock<Option<Cached>>>);

#[derive(Clone)]
struct Cached {
    cache: Arc<Cache>,
    /// Whether the connection receives member events: without them the
    /// cache's members (their roles) and member counts go stale at once.
    members: bool,
}

impl CacheSlot {
    /// A slot holding a cache kept current with member events.
    pub fn holding(cache: Arc<Cache>) -> CacheSlot {
        let slot = CacheSlot::default();
        slot.set(cache, true);
        slot
    }

    pub fn get(&self) -> Option<Arc<Cache>> {
        self.cached().map(|c| c.cache)
    }

    /// Whether the cache's members and member counts can be trusted.
    pub fn has_members(&self) -> bool {
        self.cached().is_some_and(|c| c.members)
    }

    /// Puts in the cache of a new connection; `members` says whether that
    /// connection receives member events (the `GUILD_MEMBERS` intent).
    pub fn set(&self, cache: Arc<Cache>, members: bool) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(Cached { cache, members });
    }

    fn cached(&self) -> Option<Cached> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The [`Discord`] port over the executor and, optionally, serenity's cache.
pub struct RemoteDiscord {
    shared: Arc<Shared>,
    /// Whom the calls are made for; `None` for the host.
    caller: Option<Caller>,
}

/// What every view of the port shares.
struct Shared {
    executor: Executor,
    /// The gateway's cache, once there is one.
    cache: CacheSlot,
    /// Set by [`RemoteDiscord::with_application_id`]; else the bot's user id (the
    /// same for every bot application).
    application_id: Option<u64>,
    bot_user_id: tokio::sync::OnceCell<u64>,
    /// Channels known to belong to a guild.
    known_channels: Mutex<HashMap<u64, u64>>,
}

impl RemoteDiscord {
    /// Reads go to REST; see [`RemoteDiscord::with_cache`].
    pub fn new(executor: Executor) -> Self {
        RemoteDiscord {
            shared: Arc::new(Shared {
                executor,
                cache: CacheSlot::default(),
                application_id: None,
                bot_user_id: tokio::sync::OnceCell::new(),
                known_channels: Mutex::new(HashMap::new()),
            }),
            caller: None,
        }
    }

    /// The shared state, to configure while building the port.
    fn configure(&mut self) -> &mut Shared {
        Arc::get_mut(&mut self.shared)
            .expect("RemoteDiscord is configured before any view of it is handed out")
    }

    /// Reads members, roles and guild info from the gateway's cache when the guild is
    /// in it (falling back to REST for members the cache does not hold).
    pub fn with_cache(self, cache: Arc<Cache>) -> Self {
        self.with_cache_slot(CacheSlot::holding(cache))
    }

    /// Like [`RemoteDiscord::with_cache`], for a cache that arrives later (the
    /// gateway client is built after the port): reads use REST until the slot is set.
    pub fn with_cache_slot(mut self, slot: CacheSlot) -> Self {
        self.configure().cache = slot;
        self
    }

    /// The application whose commands [`Discord::overwrite_guild_commands`] sets.
    pub fn with_application_id(mut self, application_id: u64) -> Self {
        self.configure().application_id = Some(application_id);
        self
    }

    fn cache(&self) -> Option<Arc<Cache>> {
        self.shared.cache.get()
    }

    /// The guild as Discord's REST API describes it now.
    async fn fetch_guild(&self, guild_id: u64) -> Result<Value, DiscordError> {
        self.executor()
            .direct_as(self.caller.as_ref(), None, |rest| async move {
                rest.guild(guild_id).await
            })
            .await
    }

    /// `read` applied to the guild as the gateway's cache holds it, if it does.
    fn with_cached_guild<R>(
        &self,
        guild_id: u64,
        read: impl FnOnce(&serenity::model::guild::Guild) -> R,
    ) -> Option<R> {
        if guild_id == 0 {
            return None;
        }
        let cache = self.cache()?;
        let guild = cache.guild(GuildId::new(guild_id))?;
        Some(read(&guild))
    }

    pub fn executor(&self) -> &Executor {
        &self.shared.executor
    }

    /// Runs a write through the executor for this view's caller; its output is not
    /// needed.
    async fn write(&self, action: Action) -> Result<(), DiscordError> {
        self.executor()
            .run_as(self.caller.as_ref(), action)
            .await
            .map(drop)
    }

    /// Runs a write that creates a `what` (message, channel) and returns its id.
    async fn create(&self, action: Action, what: &str) -> Result<u64, DiscordError> {
        let output = self.executor().run_as(self.caller.as_ref(), action).await?;
        output.id().ok_or_else(|| {
            DiscordError::Unavailable(format!("Discord did not return the {what} id"))
        })
    }

    /// The bot's own user id: from the cache once READY filled it, else `GET /users/@me`.
    async fn bot_user_id(&self) -> Result<u64, DiscordError> {
        if let Some(cache) = self.cache() {
            // Before READY the cache holds a default user whose id is 1.
            let id = cache.current_user().id.get();
            if id > 1 {
                return Ok(id);
            }
        }
        self.shared
            .bot_user_id
            .get_or_try_init(|| async {
                let me = self
                    .executor()
                    .direct(|rest| async move { rest.current_user().await })
                    .await?;
                snowflake(&me["id"]).ok_or_else(|| {
                    DiscordError::Unavailable("Discord did not say who the bot is".into())
                })
            })
            .await
            .copied()
    }

    /// Refuses a channel that is not in `guild_id` as not found (without saying
    /// whether it exists elsewhere).
    async fn check_channel(&self, guild_id: u64, channel_id: u64) -> Result<(), DiscordError> {
        let not_found = || DiscordError::NotFound(format!("channel {channel_id}"));
        if guild_id == 0 || channel_id == 0 {
            return Err(not_found());
        }
        let id = ChannelId::new(channel_id);
        let cached = self.with_cached_guild(guild_id, |guild| {
            guild.channels.contains_key(&id) || guild.threads.iter().any(|t| t.id == id)
        });
        if cached == Some(true) {
            return Ok(());
        }
        // Not cached (yet): ask Discord.
        let known = self
            .shared
            .known_channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&channel_id)
            .copied();
        if let Some(owner) = known {
            return if owner == guild_id {
                Ok(())
            } else {
                Err(not_found())
            };
        }
        let refusal_key = format!("channel {channel_id}");
        let channel = self
            .executor()
            .direct_as(
                self.caller.as_ref(),
                Some(&refusal_key),
                |rest| async move { rest.channel(channel_id).await },
            )
            .await
            .inspect_err(|error| {
                // A 403 is remembered by the executor; an unknown channel is as final.
                if self.caller.is_some() && matches!(error, DiscordError::NotFound(_)) {
                    self.executor().remember_refusal(&refusal_key, error);
                }
            })?;
        let owner = snowflake(&channel["guild_id"]).ok_or_else(not_found)?;
        let mut known = self
            .shared
            .known_channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if known.len() >= MAX_KNOWN_CHANNELS {
            known.clear();
        }
        known.insert(channel_id, owner);
        if owner == guild_id {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// The member as the cache holds them, when the cache follows members.
    fn cached_member(&self, guild_id: u64, user_id: u64) -> Option<Member> {
        if user_id == 0 || !self.shared.cache.has_members() {
            return None;
        }
        self.with_cached_guild(guild_id, |guild| {
            let member = guild.members.get(&UserId::new(user_id))?;
            Some(Member {
                user: User {
                    id: member.user.id.get(),
                    username: member.user.name.clone(),
                    global_name: member.user.global_name.clone(),
                    bot: member.user.bot,
                },
                nick: member.nick.clone(),
                roles: member.roles.iter().map(|r| r.get()).collect(),
                joined_at: member.joined_at.and_then(|t| t.to_rfc3339()),
            })
        })
        .flatten()
    }
}

/// A user from Discord's JSON.
fn user_from_json(user: &Value) -> Option<User> {
    Some(User {
        id: snowflake(&user["id"])?,
        username: user["username"].as_str()?.to_string(),
        global_name: user["global_name"].as_str().map(str::to_string),
        bot: user["bot"].as_bool().unwrap_or(false),
    })
}

/// A member from Discord's JSON.
pub(crate) fn member_from_json(json: &Value) -> Option<Member> {
    Some(Member {
        user: user_from_json(&json["user"])?,
        nick: json["nick"].as_str().map(str::to_string),
        roles: json["roles"]
            .as_array()
            .map(|roles| roles.iter().filter_map(snowflake).collect())
            .unwrap_or_default(),
        joined_at: json["joined_at"].as_str().map(str::to_string),
    })
}

/// A channel's past message from Discord's JSON.
fn past_message_from_json(json: &Value) -> Option<PastMessage> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let embeds = json["embeds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Embed {
            title: text(&e["title"]),
            description: text(&e["description"]),
            url: text(&e["url"]),
            color: e["color"].as_u64().and_then(|c| u32::try_from(c).ok()),
            fields: e["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| EmbedField {
                    name: text(&f["name"]).unwrap_or_default(),
                    value: text(&f["value"]).unwrap_or_default(),
                    inline: f["inline"].as_bool().unwrap_or(false),
                })
                .collect(),
            footer: text(&e["footer"]["text"]),
            thumbnail_url: text(&e["thumbnail"]["url"]),
            image_url: text(&e["image"]["url"]),
        });
    let attachments = json["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some(Attachment {
                id: snowflake(&a["id"])?,
                filename: text(&a["filename"]).unwrap_or_default(),
                content_type: text(&a["content_type"]),
                size: a["size"]
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0),
                url: text(&a["url"]).unwrap_or_default(),
            })
        });
    Some(PastMessage {
        id: snowflake(&json["id"])?,
        author: user_from_json(&json["author"])?,
        avatar: text(&json["author"]["avatar"]),
        content: text(&json["content"]).unwrap_or_default(),
        timestamp: text(&json["timestamp"]).unwrap_or_default(),
        edited_timestamp: text(&json["edited_timestamp"]),
        embeds: embeds.collect(),
        attachments: attachments.collect(),
    })
}

/// A role from Discord's JSON (`permissions` is a string of the bit set).
pub(crate) fn role_from_json(json: &Value) -> Option<Role> {
    Some(Role {
        id: snowflake(&json["id"])?,
        name: json["name"].as_str().unwrap_or_default().to_string(),
        position: json["position"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0),
        permissions: snowflake(&json["permissions"]).unwrap_or(0),
    })
}

fn unreadable(what: &str) -> DiscordError {
    DiscordError::Unavailable(format!("Discord's answer did not describe the {what}"))
}

/// A channel spec as Discord's channel object.
pub(crate) fn channel_json(spec: &ChannelSpec) -> Value {
    let kind = match spec.kind {
        ChannelKind::Text => 0,
        ChannelKind::Voice => 2,
        ChannelKind::Category => 4,
    };
    let mut channel = json!({
        "name": spec.name,
        "type": kind,
        "permission_overwrites": spec.overwrites.iter().map(overwrite_json).collect::<Vec<_>>(),
    });
    if let Some(parent) = spec.parent_id {
        channel["parent_id"] = json!(parent.to_string());
    }
    if let Some(topic) = &spec.topic {
        channel["topic"] = json!(topic);
    }
    channel
}

/// A permission overwrite as Discord's JSON: `type` 0 for a role, 1 for a member;
/// the bit sets as strings.
pub(crate) fn overwrite_json(overwrite: &PermissionOverwrite) -> Value {
    json!({
        "id": overwrite.id.to_string(),
        "type": overwrite_kind(&overwrite.target),
        "allow": overwrite.allow.to_string(),
        "deny": overwrite.deny.to_string(),
    })
}

fn overwrite_kind(target: &OverwriteTarget) -> u8 {
    match target {
        OverwriteTarget::Role => 0,
        OverwriteTarget::Member => 1,
    }
}

/// When a message was created: its `timestamp`, else the time in its snowflake.
fn created_at(message: &Value, id: u64) -> DateTime<Utc> {
    message["timestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            let ms = i64::try_from(id >> 22).ok()? + DISCORD_EPOCH_MS;
            DateTime::from_timestamp_millis(ms)
        })
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[async_trait]
impl Discord for RemoteDiscord {
    fn for_caller(&self, caller: &Caller) -> Option<Arc<dyn Discord>> {
        Some(Arc::new(RemoteDiscord {
            shared: Arc::clone(&self.shared),
            caller: Some(caller.clone()),
        }))
    }

    async fn send_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        body: &MessageBody,
    ) -> Result<u64, DiscordError> {
        self.send_message_pinging(guild_id, channel_id, body, &[])
            .await
    }

    async fn send_message_pinging(
        &self,
        guild_id: u64,
        channel_id: u64,
        body: &MessageBody,
        roles: &[u64],
    ) -> Result<u64, DiscordError> {
        self.check_channel(guild_id, channel_id).await?;
        let mut body = message_json(body);
        if !roles.is_empty() {
            body["allowed_mentions"]["roles"] =
                roles.iter().map(|r| json!(r.to_string())).collect();
        }
        self.create(
            Action::SendMessage {
                guild_id,
                channel_id,
                body,
            },
            "message",
        )
        .await
    }

    async fn edit_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        body: &MessageBody,
    ) -> Result<(), DiscordError> {
        self.check_channel(guild_id, channel_id).await?;
        self.write(Action::EditMessage {
            guild_id,
            channel_id,
            message_id,
            body: message_json(body),
        })
        .await
    }

    async fn delete_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
    ) -> Result<(), DiscordError> {
        self.check_channel(guild_id, channel_id).await?;
        self.write(Action::DeleteMessage {
            guild_id,
            channel_id,
            message_id,
            reason: None,
        })
        .await
    }

    async fn add_reaction(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        emoji: &str,
    ) -> Result<(), DiscordError> {
        self.check_channel(guild_id, channel_id).await?;
        self.write(Action::AddReaction {
            guild_id,
            channel_id,
            message_id,
            emoji: emoji.to_string(),
        })
        .await
    }

    async fn member(&self, guild_id: u64, user_id: u64) -> Result<Member, DiscordError> {
        if let Some(member) = self.cached_member(guild_id, user_id) {
            return Ok(member);
        }
        let json = self
            .executor()
            .direct_as(self.caller.as_ref(), None, |rest| async move {
                rest.member(guild_id, user_id).await
            })
            .await?;
        member_from_json(&json).ok_or_else(|| unreadable("member"))
    }

    async fn guild_info(&self, guild_id: u64) -> Result<GuildInfo, DiscordError> {
        let cached = self
            .with_cached_guild(guild_id, |guild| GuildInfo {
                id: guild_id,
                name: guild.name.clone(),
                member_count: u32::try_from(guild.member_count).unwrap_or(u32::MAX),
                owner_id: guild.owner_id.get(),
            })
            // The count only follows joins and leaves with member events.
            .filter(|_| self.shared.cache.has_members());
        if let Some(info) = cached {
            return Ok(info);
        }
        let json = self.fetch_guild(guild_id).await?;
        Ok(GuildInfo {
            id: guild_id,
            name: json["name"]
                .as_str()
                .ok_or_else(|| unreadable("guild"))?
                .to_string(),
            member_count: json["approximate_member_count"]
                .as_u64()
                .or_else(|| json["member_count"].as_u64())
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            owner_id: snowflake(&json["owner_id"]).ok_or_else(|| unreadable("guild"))?,
        })
    }

    async fn current_owner(&self, guild_id: u64) -> Result<u64, DiscordError> {
        let json = self.fetch_guild(guild_id).await?;
        snowflake(&json["owner_id"]).ok_or_else(|| unreadable("guild"))
    }

    async fn send_dm(&self, user_id: u64, body: &MessageBody) -> Result<u64, DiscordError> {
        self.create(
            Action::SendDm {
                user_id,
                body: message_json(body),
            },
            "message",
        )
        .await
    }

    async fn roles(&self, guild_id: u64) -> Result<Vec<Role>, DiscordError> {
        let cached = self.with_cached_guild(guild_id, |guild| {
            guild
                .roles
                .values()
                .map(|r| Role {
                    id: r.id.get(),
                    name: r.name.clone(),
                    position: u32::from(r.position),
                    permissions: r.permissions.bits(),
                })
                .collect()
        });
        if let Some(roles) = cached {
            return Ok(roles);
        }
        let json = self
            .executor()
            .direct_as(self.caller.as_ref(), None, |rest| async move {
                rest.roles(guild_id).await
            })
            .await?;
        let roles = json.as_array().ok_or_else(|| unreadable("roles"))?;
        Ok(roles.iter().filter_map(role_from_json).collect())
    }

    async fn bot_top_position(&self, guild_id: u64) -> Result<u32, DiscordError> {
        let bot = self.bot_user_id().await?;
        let member = self.member(guild_id, bot).await?;
        let roles = self.roles(guild_id).await?;
        Ok(roles
            .iter()
            .filter(|r| member.roles.contains(&r.id))
            .map(|r| r.position)
            .max()
            .unwrap_or(0))
    }

    async fn add_role(
        &self,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.write(Action::AddRole {
            guild_id,
            user_id,
            role_id,
            reason: reason.map(str::to_string),
        })
        .await
    }

    async fn remove_role(
        &self,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.write(Action::RemoveRole {
            guild_id,
            user_id,
            role_id,
            reason: reason.map(str::to_string),
        })
        .await
    }

    async fn create_channel(&self, guild_id: u64, spec: &ChannelSpec) -> Result<u64, DiscordError> {
        if let Some(parent) = spec.parent_id {
            self.check_channel(guild_id, parent).await?;
        }
        self.create(
            Action::CreateChannel {
                guild_id,
                body: channel_json(spec),
                reason: None,
            },
            "channel",
        )
        .await
    }

    async fn delete_channel(&self, guild_id: u64, channel_id: u64) -> Result<(), DiscordError> {
        self.check_channel(guild_id, channel_id).await?;
        self.write(Action::DeleteChannel {
            guild_id,
            channel_id,
            reason: None,
        })
        .await
    }

    async fn set_overwrite(
        &self,
        guild_id: u64,
        channel_id: u64,
        overwrite: &PermissionOverwrite,
    ) -> Result<(), DiscordError> {
        self.check_channel(guild_id, channel_id).await?;
        self.write(Action::SetOverwrite {
            guild_id,
            channel_id,
            target_id: overwrite.id,
            target_kind: overwrite_kind(&overwrite.target),
            allow: overwrite.allow,
            deny: overwrite.deny,
            reason: None,
        })
        .await
    }

    async fn kick(
        &self,
        guild_id: u64,
        user_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.write(Action::Kick {
            guild_id,
            user_id,
            reason: reason.map(str::to_string),
        })
        .await
    }

    async fn ban(
        &self,
        guild_id: u64,
        user_id: u64,
        delete_message_seconds: u32,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.write(Action::Ban {
            guild_id,
            user_id,
            delete_message_seconds,
            reason: reason.map(str::to_string),
        })
        .await
    }

    async fn unban(
        &self,
        guild_id: u64,
        user_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.write(Action::Unban {
            guild_id,
            user_id,
            reason: reason.map(str::to_string),
        })
        .await
    }

    async fn timeout(
        &self,
        guild_id: u64,
        user_id: u64,
        seconds: u32,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.write(Action::Timeout {
            guild_id,
            user_id,
            seconds,
            reason: reason.map(str::to_string),
        })
        .await
    }

    async fn overwrite_guild_commands(
        &self,
        guild_id: u64,
        commands: &Value,
    ) -> Result<(), DiscordError> {
        let application_id = match self.shared.application_id {
            Some(id) => id,
            None => self.bot_user_id().await?,
        };
        self.write(Action::OverwriteGuildCommands {
            application_id,
            guild_id,
            commands: commands.clone(),
        })
        .await
    }

    /// Deletes up to `count` of the channel's latest messages that are younger than
    /// 14 days (Discord refuses older ones in a bulk delete): one delete for a single
    /// message, a bulk delete for 2 to 100.
    async fn purge(&self, guild_id: u64, channel_id: u64, count: u32) -> Result<u32, DiscordError> {
        self.check_channel(guild_id, channel_id).await?;
        let count = count.clamp(1, 100);
        let messages = self
            .executor()
            .direct_as(self.caller.as_ref(), None, |rest| async move {
                rest.messages(channel_id, None, count).await
            })
            .await?;
        let cutoff = Utc::now() - BULK_DELETE_MAX_AGE + BULK_DELETE_MARGIN;
        let ids: Vec<u64> = messages
            .as_array()
            .ok_or_else(|| unreadable("messages"))?
            .iter()
            .filter_map(|m| {
                let id = snowflake(&m["id"])?;
                (created_at(m, id) > cutoff).then_some(id)
            })
            .take(count as usize)
            .collect();
        let action = match ids.as_slice() {
            [] => return Ok(0),
            [message_id] => Action::DeleteMessage {
                guild_id,
                channel_id,
                message_id: *message_id,
                reason: None,
            },
            _ => Action::BulkDelete {
                guild_id,
                channel_id,
                message_ids: ids.clone(),
                reason: None,
            },
        };
        self.write(action).await?;
        Ok(ids.len() as u32)
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
        self.check_channel(guild_id, channel_id).await?;
        let users = self
            .executor()
            .direct_as(self.caller.as_ref(), None, |rest| async move {
                rest.reactions(channel_id, message_id, emoji, after, limit)
                    .await
            })
            .await?;
        Ok(users
            .as_array()
            .ok_or_else(|| unreadable("reactions"))?
            .iter()
            .filter_map(|user| snowflake(&user["id"]))
            .collect())
    }

    async fn channel_messages(
        &self,
        guild_id: u64,
        channel_id: u64,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<PastMessage>, DiscordError> {
        self.check_channel(guild_id, channel_id).await?;
        let messages = self
            .executor()
            .direct_as(self.caller.as_ref(), None, |rest| async move {
                rest.messages(channel_id, before, limit).await
            })
            .await?;
        Ok(messages
            .as_array()
            .ok_or_else(|| unreadable("messages"))?
            .iter()
            .filter_map(past_message_from_json)
            .collect())
    }

    async fn attachment(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        attachment_id: u64,
        max_bytes: u64,
    ) -> Result<(Attachment, Vec<u8>), DiscordError> {
        self.check_channel(guild_id, channel_id).await?;
        let message = self
            .executor()
            .direct_as(self.caller.as_ref(), None, |rest| async move {
                rest.message(channel_id, message_id).await
            })
            .await?;
        let attachment = past_message_from_json(&message)
            .ok_or_else(|| unreadable("message"))?
            .attachments
            .into_iter()
            .find(|a| a.id == attachment_id)
            .ok_or_else(|| DiscordError::NotFound(format!("attachment {attachment_id}")))?;
        if u64::from(attachment.size) > max_bytes {
            return Err(super::attachment_too_large(max_bytes));
        }
        let data = self
            .executor()
            .rest()
            .download(&attachment.url, max_bytes)
            .await?;
        Ok((attachment, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_specs_map_to_discord_json() {
        let spec = ChannelSpec {
            name: "ticket-1".into(),
            kind: ChannelKind::Text,
            parent_id: Some(77),
            topic: Some("help".into()),
            overwrites: vec![
                PermissionOverwrite {
                    id: 5,
                    target: OverwriteTarget::Role,
                    allow: 0,
                    deny: 1 << 10,
                },
                PermissionOverwrite {
                    id: 9,
                    target: OverwriteTarget::Member,
                    allow: (1 << 10) | (1 << 11),
                    deny: 0,
                },
            ],
        };
        assert_eq!(
            channel_json(&spec),
            json!({
                "name": "ticket-1",
                "type": 0,
                "parent_id": "77",
                "topic": "help",
                "permission_overwrites": [
                    { "id": "5", "type": 0, "allow": "0", "deny": "1024" },
                    { "id": "9", "type": 1, "allow": "3072", "deny": "0" },
                ],
            })
        );
    }

    #[test]
    fn message_age_comes_from_the_timestamp_or_the_snowflake() {
        let at = created_at(
            &json!({ "timestamp": "2024-05-01T10:00:00.000000+00:00" }),
            1,
        );
        assert_eq!(at.to_rfc3339(), "2024-05-01T10:00:00+00:00");
        // 2015-01-01T00:00:01Z as a snowflake.
        let from_id = created_at(&json!({}), 1000 << 22);
        assert_eq!(from_id.timestamp_millis(), DISCORD_EPOCH_MS + 1000);
    }

    #[test]
    fn members_and_roles_parse_from_discord_json() {
        let member = member_from_json(&json!({
            "user": { "id": "42", "username": "ada", "global_name": "Ada" },
            "nick": null, "roles": ["7", "8"], "joined_at": "2024-01-01T00:00:00+00:00",
        }))
        .unwrap();
        assert_eq!(member.user.id, 42);
        assert_eq!(member.roles, vec![7, 8]);
        assert!(!member.user.bot);
        let role = role_from_json(&json!({
            "id": "7", "name": "Mod", "position": 3, "permissions": "268435456",
        }))
        .unwrap();
        assert_eq!(role.permissions, 1 << 28);
        assert_eq!(role.position, 3);
    }
}
