//! What the gateway's events do: guild rows and command registrations follow the
//! guilds the bot is in, and a guild whose Discord ownership moves follows its
//! new owner's tenant; messages may be prefix commands; every event a feature
//! subscribed to is dispatched to the guild's enabled features. Members'
//! messages, reactions, joins and leaves are counted for the community health
//! score (in memory: [`crate::community_health::ActivityMeter`]).

use super::convert;
use crate::commands::{Answer, CommandCall, Input, prefix, registry};
use crate::discord::custom_id::namespace_body;
use crate::interactions::{self, Responder};
use crate::platform::Platform;
use crate::runtime::Outcome;
use crate::wit::{Event, MessageBody, MessageDeleted};
use serenity::all::{
    AuditLogEntry, ChannelId, Context, EventHandler, GuildId, GuildMemberUpdateEvent, Interaction,
    Member, Message, MessageId, MessageType, MessageUpdateEvent, PartialGuild, RawEventHandler,
    Reaction, Ready, UnavailableGuild, User,
};
use serenity::async_trait;
use serenity::model::event::Event as GatewayEvent;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub struct Handler {
    platform: Arc<Platform>,
}

impl Handler {
    pub fn new(platform: Arc<Platform>) -> Self {
        Handler { platform }
    }

    async fn dispatch(&self, guild_id: u64, event: Event) {
        let outcomes = self.platform.runtime.dispatch_event(guild_id, &event).await;
        log_outcomes(guild_id, "an event", outcomes);
    }

    /// A guild the bot is in: its row, default settings on first sight, and its
    /// slash commands registered if they changed.
    async fn guild_seen(&self, guild_id: u64, name: &str, owner_id: u64) -> anyhow::Result<()> {
        let store = self.platform.runtime.store();
        // Ownership may have moved while the bot was away.
        self.owner_seen(guild_id, owner_id).await?;
        store.record_guild_seen(guild_id, name, owner_id).await?;
        store.ensure_guild_settings(guild_id).await?;
        registry::sync(
            &self.platform.runtime,
            self.platform.discord.as_ref(),
            guild_id,
        )
        .await?;
        Ok(())
    }

    /// GUILD_UPDATE: the name and, when it moved, the ownership.
    async fn guild_changed(&self, guild_id: u64, name: &str, owner_id: u64) -> anyhow::Result<()> {
        self.owner_seen(guild_id, owner_id).await?;
        self.platform
            .runtime
            .store()
            .record_guild_seen(guild_id, name, owner_id)
            .await?;
        Ok(())
    }

    /// Moves a guild whose Discord owner changed to the new owner's tenant.
    async fn owner_seen(&self, guild_id: u64, seen_owner: u64) -> anyhow::Result<()> {
        let store = self.platform.runtime.store();
        match store.guild(guild_id).await? {
            Some(guild) if guild.owner_id != seen_owner => {}
            _ => return Ok(()),
        }
        // Handlers run concurrently, so this event may be older than one
        // already handled (a GUILD_CREATE from the connect handled after a
        // transfer's GUILD_UPDATE would hand the guild back): ask Discord who
        // owns it now. Owners rarely change, so this costs one request per
        // transfer, not one per event.
        let owner_id = match self.platform.discord.current_owner(guild_id).await {
            Ok(owner_id) => owner_id,
            Err(error) => {
                tracing::warn!(guild = guild_id, %error, "could not confirm a new owner; using the event's");
                seen_owner
            }
        };
        if let Some(change) = store.change_guild_owner(guild_id, owner_id).await? {
            tracing::info!(
                guild = guild_id,
                from_owner = change.from_owner,
                to_owner = owner_id,
                tenant_moved = change.to_tenant.is_some(),
                "guild ownership transferred"
            );
        }
        Ok(())
    }

    /// Runs a prefix command if the message is one, and posts the answer.
    async fn prefix_command(&self, message: &Message, guild_id: u64) -> anyhow::Result<()> {
        let policy = self.platform.runtime.store().guild_policy(guild_id).await?;
        let settings = &policy.settings;
        let Some((name, text)) = prefix::split(&settings.prefix, &message.content) else {
            return Ok(());
        };
        let (invoker_permissions, bot_permissions) = self.permissions_in(guild_id, message);
        let call = CommandCall {
            guild_id,
            channel_id: message.channel_id.get(),
            invoker: convert::message_author(message),
            invoker_permissions,
            bot_permissions,
            name,
            input: Input::Prefix {
                prefix: settings.prefix.clone(),
                text: text.to_string(),
            },
        };
        let answer = self.platform.commands.command(call).await;
        let body = match &answer {
            Answer::Silent => return Ok(()),
            Answer::Reply { reply, .. } if reply.modal.is_some() => MessageBody::text(format!(
                "<@{}> this command opens a form, which only works as a slash command: use `/{}`.",
                message.author.id,
                message
                    .content
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches(&settings.prefix)
            )),
            Answer::Reply { feature_id, reply } => match namespace_body(feature_id, &reply.body) {
                Ok(body) => body,
                Err(problem) => {
                    tracing::warn!(feature = %feature_id, problem, "a feature's reply could not be sent");
                    return Ok(());
                }
            },
            other => MessageBody::text(format!(
                "<@{}> {}",
                message.author.id,
                other.notice().unwrap_or_default()
            )),
        };
        if body.content.is_none() && body.embeds.is_empty() {
            return Ok(());
        }
        self.platform
            .discord
            .send_message(guild_id, message.channel_id.get(), &body)
            .await?;
        Ok(())
    }

    /// The author's and the bot's permissions in the message's channel, from the
    /// gateway's cache. Unknown (no cache yet) counts as none for the author and
    /// as unknown for the bot (so the bot check is skipped, not failed).
    fn permissions_in(&self, guild_id: u64, message: &Message) -> (u64, Option<u64>) {
        let Some(cache) = self.platform.cache.get() else {
            return (0, None);
        };
        let Some(guild) = cache.guild(GuildId::new(guild_id)) else {
            return (0, None);
        };
        let Some(channel) = guild.channels.get(&message.channel_id) else {
            return (0, None);
        };
        let author = message
            .member
            .as_ref()
            .map(|m| {
                guild
                    .partial_member_permissions_in(channel, message.author.id, m)
                    .bits()
            })
            .unwrap_or(0);
        let bot = guild
            .members
            .get(&serenity::all::UserId::new(self.platform.bot_user_id))
            .map(|m| guild.user_permissions_in(channel, m).bits());
        (author, bot)
    }
}

/// Logs what features failed on `what`, or that it could not be dispatched.
fn log_outcomes(guild_id: u64, what: &str, outcomes: anyhow::Result<Vec<Outcome>>) {
    match outcomes {
        Ok(outcomes) => {
            for outcome in outcomes {
                if let Err(error) = &outcome.result {
                    tracing::debug!(guild = guild_id, feature = %outcome.feature_id, %error, "a feature failed on {what}");
                }
            }
        }
        Err(error) => tracing::error!(guild = guild_id, %error, "could not dispatch {what}"),
    }
}

impl Handler {
    async fn on_ready(&self, ready: &Ready) {
        self.platform.intents.connected();
        tracing::info!(
            shard = ?ready.shard.map(|s| s.id.0),
            guilds = ready.guilds.len(),
            user = %ready.user.name,
            "gateway ready"
        );
    }

    async fn on_guild_create(&self, guild: &serenity::all::Guild) {
        if let Err(error) = self
            .guild_seen(guild.id.get(), &guild.name, guild.owner_id.get())
            .await
        {
            tracing::error!(guild = guild.id.get(), %error, "could not record a guild");
        }
        // A new session (start, reconnect) or the guild back from an outage:
        // what happened meanwhile was not delivered, so features catch up.
        let outcomes = self
            .platform
            .runtime
            .dispatch_guild_ready(guild.id.get())
            .await;
        log_outcomes(guild.id.get(), "guild-ready", outcomes);
    }

    async fn on_guild_update(&self, guild: &PartialGuild) {
        if let Err(error) = self
            .guild_changed(guild.id.get(), &guild.name, guild.owner_id.get())
            .await
        {
            tracing::error!(guild = guild.id.get(), %error, "could not record a guild update");
        }
    }

    async fn on_guild_delete(&self, incomplete: &UnavailableGuild) {
        // `unavailable` means an outage, not that the bot was removed.
        if incomplete.unavailable {
            return;
        }
        let store = self.platform.runtime.store();
        if let Err(error) = store
            .mark_guild_left(incomplete.id.get(), Some(chrono::Utc::now()))
            .await
        {
            tracing::error!(guild = incomplete.id.get(), %error, "could not record leaving a guild");
        }
    }

    async fn on_message(&self, message: &Message) {
        let Some(guild_id) = message.guild_id.map(GuildId::get) else {
            return;
        };
        // The bot's own messages and other bots' never run commands or features.
        if message.author.bot {
            return;
        }
        self.platform.activity.message(
            guild_id,
            message.author.id.get(),
            message.kind == MessageType::InlineReply,
            today(),
        );
        if let Err(error) = self.prefix_command(message, guild_id).await {
            tracing::error!(guild = guild_id, %error, "could not run a prefix command");
        }
        self.dispatch(guild_id, Event::MessageCreated(convert::message(message)))
            .await;
    }

    async fn on_message_update(&self, event: &MessageUpdateEvent) {
        let (Some(guild_id), Some(message)) = (event.guild_id, convert::message_update(event))
        else {
            return;
        };
        if message.author.bot {
            return;
        }
        self.dispatch(guild_id.get(), Event::MessageUpdated(message))
            .await;
    }

    async fn on_message_delete(
        &self,
        channel_id: ChannelId,
        message_id: MessageId,
        guild_id: Option<GuildId>,
    ) {
        let Some(guild_id) = guild_id else { return };
        let deleted = MessageDeleted {
            id: message_id.get(),
            channel_id: channel_id.get(),
        };
        self.dispatch(guild_id.get(), Event::MessageDeleted(deleted))
            .await;
    }

    async fn on_member_add(&self, member: &Member) {
        if member.user.id.get() == self.platform.bot_user_id {
            return;
        }
        if !member.user.bot {
            let guild_id = member.guild_id.get();
            self.platform
                .activity
                .joined(guild_id, member.user.id.get(), today());
        }
        self.dispatch(
            member.guild_id.get(),
            Event::MemberJoined(convert::member(member)),
        )
        .await;
    }

    async fn on_member_remove(&self, guild_id: GuildId, user: &User) {
        if !user.bot {
            self.platform.activity.left(guild_id.get(), today());
        }
        self.dispatch(guild_id.get(), Event::MemberLeft(convert::user(user)))
            .await;
    }

    async fn on_member_update(&self, event: &GuildMemberUpdateEvent) {
        self.dispatch(
            event.guild_id.get(),
            Event::MemberUpdated(convert::updated_member(event)),
        )
        .await;
    }

    /// Bans, kicks and timeouts done outside the platform. The bot's own
    /// entries are the platform's features acting, which the host audited
    /// already.
    async fn on_audit_log_entry(&self, entry: &AuditLogEntry, guild_id: GuildId) {
        if entry.user_id.get() == self.platform.bot_user_id {
            return;
        }
        let Some(event) = convert::moderation(entry) else {
            return;
        };
        let guild_id = guild_id.get();
        let outcomes = self
            .platform
            .runtime
            .dispatch_moderation(guild_id, &event)
            .await;
        log_outcomes(guild_id, "a moderation event", outcomes);
    }
}

/// serenity's callbacks, for the gateway `serve` runs in-process.
#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        self.on_ready(&ready).await;
    }

    async fn guild_create(&self, _ctx: Context, guild: serenity::all::Guild, _new: Option<bool>) {
        self.on_guild_create(&guild).await;
    }

    async fn guild_update(
        &self,
        _ctx: Context,
        _old: Option<serenity::all::Guild>,
        guild: PartialGuild,
    ) {
        self.on_guild_update(&guild).await;
    }

    async fn guild_delete(
        &self,
        _ctx: Context,
        incomplete: UnavailableGuild,
        _full: Option<serenity::all::Guild>,
    ) {
        self.on_guild_delete(&incomplete).await;
    }

    async fn message(&self, _ctx: Context, message: Message) {
        self.on_message(&message).await;
    }

    async fn message_update(
        &self,
        _ctx: Context,
        _old: Option<Message>,
        _new: Option<Message>,
        event: MessageUpdateEvent,
    ) {
        self.on_message_update(&event).await;
    }

    async fn message_delete(
        &self,
        _ctx: Context,
        channel_id: ChannelId,
        message_id: MessageId,
        guild_id: Option<GuildId>,
    ) {
        self.on_message_delete(channel_id, message_id, guild_id)
            .await;
    }

    async fn guild_member_addition(&self, _ctx: Context, member: Member) {
        self.on_member_add(&member).await;
    }

    async fn guild_member_removal(
        &self,
        _ctx: Context,
        guild_id: GuildId,
        user: User,
        _member: Option<Member>,
    ) {
        self.on_member_remove(guild_id, &user).await;
    }

    async fn guild_member_update(
        &self,
        _ctx: Context,
        _old: Option<Member>,
        _new: Option<Member>,
        event: GuildMemberUpdateEvent,
    ) {
        self.on_member_update(&event).await;
    }

    async fn guild_audit_log_entry_create(
        &self,
        _ctx: Context,
        entry: AuditLogEntry,
        guild_id: GuildId,
    ) {
        self.on_audit_log_entry(&entry, guild_id).await;
    }

    async fn reaction_add(&self, _ctx: Context, reaction: Reaction) {
        self.reaction(&reaction, Event::ReactionAdded).await;
    }

    async fn reaction_remove(&self, _ctx: Context, reaction: Reaction) {
        self.reaction(&reaction, Event::ReactionRemoved).await;
    }

    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        interactions::handle(self.platform.clone(), interaction, Responder::Callback).await;
    }
}

impl Handler {
    /// One dispatch read from the event stream (`townes worker`): the same
    /// handling serenity's callbacks get in `serve`. Events no feature or
    /// guild row cares about are ignored.
    pub async fn handle(&self, event: GatewayEvent) {
        match event {
            GatewayEvent::Ready(e) => self.on_ready(&e.ready).await,
            GatewayEvent::GuildCreate(e) => self.on_guild_create(&e.guild).await,
            GatewayEvent::GuildUpdate(e) => self.on_guild_update(&e.guild).await,
            GatewayEvent::GuildDelete(e) => self.on_guild_delete(&e.guild).await,
            GatewayEvent::MessageCreate(e) => self.on_message(&e.message).await,
            GatewayEvent::MessageUpdate(e) => self.on_message_update(&e).await,
            GatewayEvent::MessageDelete(e) => {
                self.on_message_delete(e.channel_id, e.message_id, e.guild_id)
                    .await
            }
            GatewayEvent::GuildMemberAdd(e) => self.on_member_add(&e.member).await,
            GatewayEvent::GuildMemberRemove(e) => self.on_member_remove(e.guild_id, &e.user).await,
            GatewayEvent::GuildMemberUpdate(e) => self.on_member_update(&e).await,
            GatewayEvent::GuildAuditLogEntryCreate(e) => {
                self.on_audit_log_entry(&e.entry, e.guild_id).await
            }
            GatewayEvent::ReactionAdd(e) => self.reaction(&e.reaction, Event::ReactionAdded).await,
            GatewayEvent::ReactionRemove(e) => {
                self.reaction(&e.reaction, Event::ReactionRemoved).await
            }
            GatewayEvent::InteractionCreate(e) => {
                interactions::handle(self.platform.clone(), e.interaction, Responder::Callback)
                    .await
            }
            _ => {}
        }
    }

    async fn reaction(&self, reaction: &Reaction, event: fn(crate::wit::Reaction) -> Event) {
        let (Some(guild_id), Some(converted)) = (reaction.guild_id, convert::reaction(reaction))
        else {
            return;
        };
        if converted.user_id == self.platform.bot_user_id {
            return;
        }
        let event = event(converted);
        let by_bot = reaction.member.as_ref().is_some_and(|m| m.user.bot);
        if let Event::ReactionAdded(added) = &event
            && !by_bot
        {
            self.platform
                .activity
                .reaction(guild_id.get(), added.user_id, today());
        }
        self.dispatch(guild_id.get(), event).await;
    }
}

/// The UTC day activity is counted in.
fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Counts dispatches serenity could not parse: it turns a payload missing a
/// field it requires into `Event::Unknown`, which no handler ever sees.
pub struct UnknownDispatches {
    platform: Arc<Platform>,
}

impl UnknownDispatches {
    pub fn new(platform: Arc<Platform>) -> Self {
        UnknownDispatches { platform }
    }
}

#[async_trait]
impl RawEventHandler for UnknownDispatches {
    async fn raw_event(&self, _ctx: Context, event: GatewayEvent) {
        if let GatewayEvent::Unknown(unknown) = event {
            self.platform
                .unknown_dispatches
                .fetch_add(1, Ordering::Relaxed);
            crate::metrics::metrics().record_unknown_dispatch();
            tracing::debug!(kind = %unknown.kind, payload = %unknown.value, "unreadable dispatch");
            let why = why_unreadable(&unknown.kind, unknown.value).unwrap_or_default();
            tracing::warn!(kind = %unknown.kind, %why, "a gateway dispatch could not be read");
        }
    }
}

/// What serenity objects to in a dispatch we handle (a missing or mistyped
/// field), so the warning says what to fix.
fn why_unreadable(kind: &str, value: serde_json::Value) -> Option<String> {
    fn error<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Option<String> {
        serde_json::from_value::<T>(value)
            .err()
            .map(|e| e.to_string())
    }
    match kind {
        "MESSAGE_CREATE" => error::<Message>(value),
        "MESSAGE_UPDATE" => error::<MessageUpdateEvent>(value),
        "GUILD_CREATE" => error::<serenity::all::Guild>(value),
        "GUILD_UPDATE" => error::<PartialGuild>(value),
        "GUILD_MEMBER_ADD" => error::<Member>(value),
        "GUILD_MEMBER_UPDATE" => error::<GuildMemberUpdateEvent>(value),
        "MESSAGE_REACTION_ADD" | "MESSAGE_REACTION_REMOVE" => error::<Reaction>(value),
        "INTERACTION_CREATE" => error::<Interaction>(value),
        "GUILD_AUDIT_LOG_ENTRY_CREATE" => error::<AuditLogEntry>(value),
        "READY" => error::<Ready>(value),
        _ => None,
    }
}
