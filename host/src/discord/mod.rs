//! The host's port to Discord: every Discord call a capability makes goes through
//! [`Discord`]. The gateway-backed implementation talks to Discord (or the
//! simulator); [`LocalDiscord`] keeps guilds in memory for `townes feature run` and
//! the runtime's tests.

pub mod custom_id;
pub mod delivery;
mod executor;
mod governor;
mod local;
mod ratelimit;
mod remote;
mod rest;

pub use executor::{
    Action, ActionOutput, Executor, ExecutorConfig, ExecutorStats, OUTBOX_LEASE,
    OUTBOX_RENEW_EVERY, Pending, Secret,
};
pub use governor::Budgets;
pub use local::{LocalDiscord, LocalGuild};
pub use ratelimit::{DEFAULT_GLOBAL_PER_SECOND, RateLimiter, Scope as RateLimitScope};
pub use remote::{CacheSlot, RemoteDiscord};
pub(crate) use remote::{member_from_json, role_from_json};
pub use rest::{DEFAULT_BASE_URL, RestClient, RestConfigError, RestError};
pub(crate) use rest::{message_json, snowflake};

use crate::wit::townes::feature::channels::{ChannelSpec, PermissionOverwrite};
use crate::wit::townes::feature::history::{Attachment, PastMessage};
use crate::wit::{GuildInfo, Member, MessageBody};
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Discord permission bits the host reasons about, and their names as Discord's
/// client shows them (for remediation hints).
pub mod permissions {
    /// What the guild's owner and an Administrator hold: every bit.
    pub const ALL: u64 = u64::MAX;
    pub const KICK_MEMBERS: u64 = 1 << 1;
    pub const BAN_MEMBERS: u64 = 1 << 2;
    pub const ADMINISTRATOR: u64 = 1 << 3;
    pub const MANAGE_CHANNELS: u64 = 1 << 4;
    pub const MANAGE_GUILD: u64 = 1 << 5;
    pub const ADD_REACTIONS: u64 = 1 << 6;
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    pub const SEND_MESSAGES: u64 = 1 << 11;
    pub const MANAGE_MESSAGES: u64 = 1 << 13;
    pub const EMBED_LINKS: u64 = 1 << 14;
    pub const MANAGE_ROLES: u64 = 1 << 28;
    pub const MODERATE_MEMBERS: u64 = 1 << 40;
    pub const VIEW_AUDIT_LOG: u64 = 1 << 7;
    pub const MENTION_EVERYONE: u64 = 1 << 17;
    pub const MANAGE_NICKNAMES: u64 = 1 << 27;
    pub const MANAGE_WEBHOOKS: u64 = 1 << 29;
    pub const MANAGE_GUILD_EXPRESSIONS: u64 = 1 << 30;
    pub const MANAGE_EVENTS: u64 = 1 << 33;
    pub const MANAGE_THREADS: u64 = 1 << 34;

    /// Permissions a feature may not hand out (through a role it assigns or an
    /// overwrite it sets) unless the guild's admin allowed that bit for it:
    /// each lets its holder run the server, moderate members or reach everyone.
    /// Administrator is never allowed.
    pub const DANGEROUS: u64 = ADMINISTRATOR
        | MANAGE_GUILD
        | MANAGE_ROLES
        | MANAGE_CHANNELS
        | KICK_MEMBERS
        | BAN_MEMBERS
        | MODERATE_MEMBERS
        | MANAGE_MESSAGES
        | MANAGE_WEBHOOKS
        | MENTION_EVERYONE
        | MANAGE_NICKNAMES
        | MANAGE_GUILD_EXPRESSIONS
        | MANAGE_EVENTS
        | MANAGE_THREADS
        | VIEW_AUDIT_LOG;

    const NAMES: [(u64, &str); 19] = [
        (ADMINISTRATOR, "Administrator"),
        (MANAGE_GUILD, "Manage Server"),
        (MANAGE_ROLES, "Manage Roles"),
        (MANAGE_CHANNELS, "Manage Channels"),
        (KICK_MEMBERS, "Kick Members"),
        (BAN_MEMBERS, "Ban Members"),
        (MODERATE_MEMBERS, "Timeout Members"),
        (MANAGE_MESSAGES, "Manage Messages"),
        (VIEW_CHANNEL, "View Channel"),
        (SEND_MESSAGES, "Send Messages"),
        (EMBED_LINKS, "Embed Links"),
        (ADD_REACTIONS, "Add Reactions"),
        (MANAGE_WEBHOOKS, "Manage Webhooks"),
        (MENTION_EVERYONE, "Mention @everyone, @here and All Roles"),
        (MANAGE_NICKNAMES, "Manage Nicknames"),
        (MANAGE_GUILD_EXPRESSIONS, "Manage Expressions"),
        (MANAGE_EVENTS, "Manage Events"),
        (MANAGE_THREADS, "Manage Threads"),
        (VIEW_AUDIT_LOG, "View Audit Log"),
    ];

    /// The bit of a permission named as Discord's client shows it, case and
    /// `-`/`_` for spaces aside (`manage-server`, `Ban Members`).
    pub fn parse(name: &str) -> Option<u64> {
        let wanted = name.trim().to_lowercase().replace(['-', '_'], " ");
        NAMES
            .iter()
            .find(|(_, known)| known.to_lowercase() == wanted)
            .map(|(bit, _)| *bit)
    }

    /// The names of the known permissions in `bits`, most powerful first; unknown
    /// bits are shown as hex.
    pub fn names(bits: u64) -> Vec<String> {
        let mut names: Vec<String> = NAMES
            .iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|(_, name)| name.to_string())
            .collect();
        let known = NAMES.iter().fold(0, |all, (bit, _)| all | bit);
        if bits & !known != 0 {
            names.push(format!("{:#x}", bits & !known));
        }
        names
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn names_are_listed_most_powerful_first() {
            use super::*;
            assert_eq!(
                names(SEND_MESSAGES | MANAGE_ROLES),
                ["Manage Roles", "Send Messages"]
            );
            assert_eq!(names(1 << 50), ["0x4000000000000"]);
        }
    }
}

/// A guild role as the role-ceiling check needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub id: u64,
    pub name: String,
    /// Higher is more powerful; the @everyone role is 0.
    pub position: u32,
    pub permissions: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscordError {
    #[error("{0} not found")]
    NotFound(String),
    /// Discord refused: the bot lacks a permission or the hierarchy forbids it.
    #[error("Discord refused: {0}")]
    Forbidden(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("Discord unavailable: {0}")]
    Unavailable(String),
    /// Refused locally: the caller has too many calls queued, or Discord refused too
    /// many of its calls lately (see `governor`).
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
}

/// An attachment larger than a feature may copy.
pub(crate) fn attachment_too_large(max_bytes: u64) -> DiscordError {
    DiscordError::QuotaExceeded(format!(
        "attachment: larger than {max_bytes} bytes, the plan's bytes per file"
    ))
}

/// Whom a Discord call is made for: a feature running in a guild. Calls made without
/// one are the host's own (interaction answers, command registration, the
/// playground) and are held to no feature's quota or budget.
#[derive(Clone, Debug)]
pub struct Caller {
    pub guild_id: u64,
    pub feature_id: String,
    /// Invalid answers and local refusals of this caller's calls; shared by clones, so
    /// a call finishing after the invocation still counts for it.
    invalid: Arc<AtomicU32>,
}

impl Caller {
    pub fn new(guild_id: u64, feature_id: impl Into<String>) -> Caller {
        Caller {
            guild_id,
            feature_id: feature_id.into(),
            invalid: Arc::default(),
        }
    }

    /// Calls Discord answered 401, 403 or 429, plus calls refused locally (remembered
    /// refusals, budgets, quotas).
    pub fn invalid_requests(&self) -> u32 {
        self.invalid.load(Ordering::Relaxed)
    }

    fn count_invalid(&self) {
        self.invalid.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
pub trait Discord: Send + Sync {
    /// This port as `caller` uses it: its writes count toward its quotas, its invalid
    /// answers toward its budgets and `caller.invalid_requests()`. `None` when the port
    /// keeps no such accounting (the local fake); the caller then uses it as it is.
    fn for_caller(&self, _caller: &Caller) -> Option<Arc<dyn Discord>> {
        None
    }

    async fn send_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        body: &MessageBody,
    ) -> Result<u64, DiscordError>;
    /// Like [`Discord::send_message`], letting the role mentions of `roles`
    /// notify their members (every other message notifies mentioned users
    /// only). Ports that cannot notify anyone send it plainly.
    async fn send_message_pinging(
        &self,
        guild_id: u64,
        channel_id: u64,
        body: &MessageBody,
        roles: &[u64],
    ) -> Result<u64, DiscordError> {
        let _ = roles;
        self.send_message(guild_id, channel_id, body).await
    }
    async fn edit_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        body: &MessageBody,
    ) -> Result<(), DiscordError>;
    async fn delete_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
    ) -> Result<(), DiscordError>;
    async fn add_reaction(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        emoji: &str,
    ) -> Result<(), DiscordError>;

    /// Up to `limit` (1-100) users who reacted to a message of the guild with
    /// `emoji`, ids above `after`, in id order.
    async fn reactions(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        emoji: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<u64>, DiscordError>;

    async fn member(&self, guild_id: u64, user_id: u64) -> Result<Member, DiscordError>;
    async fn guild_info(&self, guild_id: u64) -> Result<GuildInfo, DiscordError>;
    /// Who owns the guild now, asked of Discord itself: a cache, and gateway
    /// events handled out of order, may both lag behind a transfer.
    async fn current_owner(&self, guild_id: u64) -> Result<u64, DiscordError> {
        Ok(self.guild_info(guild_id).await?.owner_id)
    }
    async fn send_dm(&self, user_id: u64, body: &MessageBody) -> Result<u64, DiscordError>;

    /// The guild's roles, for hierarchy checks.
    async fn roles(&self, guild_id: u64) -> Result<Vec<Role>, DiscordError>;
    /// The position of the bot's highest role in the guild.
    async fn bot_top_position(&self, guild_id: u64) -> Result<u32, DiscordError>;
    async fn add_role(
        &self,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError>;
    async fn remove_role(
        &self,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError>;

    async fn create_channel(&self, guild_id: u64, spec: &ChannelSpec) -> Result<u64, DiscordError>;
    async fn delete_channel(&self, guild_id: u64, channel_id: u64) -> Result<(), DiscordError>;
    async fn set_overwrite(
        &self,
        guild_id: u64,
        channel_id: u64,
        overwrite: &PermissionOverwrite,
    ) -> Result<(), DiscordError>;

    async fn kick(
        &self,
        guild_id: u64,
        user_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError>;
    async fn ban(
        &self,
        guild_id: u64,
        user_id: u64,
        delete_message_seconds: u32,
        reason: Option<&str>,
    ) -> Result<(), DiscordError>;
    async fn timeout(
        &self,
        guild_id: u64,
        user_id: u64,
        seconds: u32,
        reason: Option<&str>,
    ) -> Result<(), DiscordError>;
    async fn unban(
        &self,
        guild_id: u64,
        user_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError>;
    async fn purge(&self, guild_id: u64, channel_id: u64, count: u32) -> Result<u32, DiscordError>;
    /// Up to `limit` (1-100) messages of a channel of the guild older than
    /// `before` (none: the newest), newest first.
    async fn channel_messages(
        &self,
        guild_id: u64,
        channel_id: u64,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<PastMessage>, DiscordError>;

    /// Attachment `attachment_id` of a message of the guild and its bytes, at
    /// most `max_bytes` (a larger one is `QuotaExceeded`).
    async fn attachment(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        attachment_id: u64,
        max_bytes: u64,
    ) -> Result<(Attachment, Vec<u8>), DiscordError>;

    /// Replaces the guild's slash commands with `commands` (Discord's bulk
    /// overwrite body). Called by the host, never by a feature.
    async fn overwrite_guild_commands(
        &self,
        guild_id: u64,
        commands: &serde_json::Value,
    ) -> Result<(), DiscordError>;
}
