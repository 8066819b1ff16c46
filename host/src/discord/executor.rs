//! The executor: every Discord REST call the platform makes goes through here.
//!
//! A write ([`Action`]) is first recorded in the outbox table, then queued behind the
//! earlier writes of its ordering key and carried out; the caller awaits the result
//! for at most [`ExecutorConfig::max_wait`]. Because the row is written before
//! anything is sent and removed only after Discord's final answer, nothing accepted
//! is lost: a crash or restart replays the pending rows, and message creates carry the
//! row id as their `nonce` (with `enforce_nonce`), so a replay never posts twice.
//!
//! - **Ordering.** Each ordering key (the channel for message actions, the user for a
//!   DM, else the guild; see [`Action::lane_key`]) has its own queue, run by its own
//!   task one action at a time, oldest first, so one channel's messages keep their
//!   order while every other key proceeds independently.
//! - **Rate limits.** A request waits for its turn in the REST client's rate limiter
//!   (`ratelimit`): the buckets Discord's headers describe, and the global limit kept
//!   by us. A used-up or 429'd bucket parks only the queues whose next call needs it;
//!   nothing shared sleeps, so one busy or limited channel never delays another
//!   guild. A 429 is retried without limit: a storm delays, never loses.
//! - **Fairness.** A feature's writes count toward quotas of pending calls per
//!   feature in a guild and per guild ([`ExecutorConfig::feature_quota`],
//!   [`ExecutorConfig::guild_quota`]); over them the call fails with
//!   [`DiscordError::QuotaExceeded`] and nothing is queued. The invalid-request
//!   governor (`governor`) refuses locally what Discord refused lately and what a
//!   feature may no longer risk. Disabling a feature drops its queued rows
//!   ([`Store::outbox_cancel`]); the executor skips them when it reaches them.
//! - **Bounded memory.** At most [`ExecutorConfig::queue_capacity`] actions are held
//!   in memory. Beyond it rows just stay in the database and the executor is
//!   *spilled*: new rows stay there too, and a refill task feeds them in id order as
//!   room frees up, until it has caught up. Nothing is dropped;
//!   [`Executor::queue_depth`] counts everything accepted and not finished.
//! - **Failures.** 5xx and network errors are retried with exponential backoff and
//!   jitter up to [`ExecutorConfig::max_attempts`]; then the row is dead-lettered (kept
//!   with its error, never retried automatically). Any other 4xx is final.
//! - **Shutdown.** [`Executor::shutdown`] stops taking work and drains until a
//!   deadline; what is left stays in the outbox and its leases are released, so the
//!   next executor to look (another process, or the next start) takes it at once.
//! - **Several processes.** Each executor has a random holder id, and every row it
//!   inserts is leased to it ([`ExecutorConfig::lease`]). It only ever sends rows it
//!   holds, renews their leases every [`ExecutorConfig::lease_renew_every`], and
//!   checks (and extends) a row's lease right before each attempt, so a row adopted
//!   by another executor meanwhile is dropped here rather than sent twice. On the
//!   same tick it adopts rows nobody holds: a crashed holder's once their lease ran
//!   out, a stopped one's at once.
//!
//! Delivery is at least once: a call cut off mid-flight by a crash is sent again by
//! whoever adopts it. Message creates are deduplicated by their nonce; the other
//! routes are idempotent on Discord's side (roles, bans, timeouts, overwrites, edits)
//! or fail harmlessly the second time (a delete answers 404), except creating a
//! channel. Ordering per key holds within one executor; rows adopted from another
//! run after what this one already queued for the same key.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::governor::{self, Budgets, Governor};
use super::ratelimit::DEFAULT_GLOBAL_PER_SECOND;
use super::rest::{RestClient, RestError};
use super::{Caller, DiscordError};
use crate::metrics::metrics;
use crate::store::{OutboxLease, Store, StoreError};
use chrono::{DateTime, Utc};

/// How long an outbox row stays with its executor without a renewal. A crashed
/// process's rows wait this long (plus up to one renewal period) before another
/// adopts them, so it is short; it must also outlast a slow database or a paused
/// process by a margin, or a live holder would lose its rows (they are then sent by
/// the adopter, and dropped here at the check before the next attempt).
pub const OUTBOX_LEASE: Duration = Duration::from_secs(15);
/// How often an executor renews its leases and adopts rows nobody holds. A third of
/// the lease: two renewals in a row may fail before the rows can be taken over.
pub const OUTBOX_RENEW_EVERY: Duration = Duration::from_secs(5);

/// How the executor behaves. [`Default`] gives the production values;
/// [`ExecutorConfig::from_env`] reads the operator's overrides.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// Actions held in memory; beyond it they wait in the database. Default 4,096.
    pub queue_capacity: usize,
    /// How long [`Executor::run`] waits for Discord's answer before telling the caller
    /// the action is queued. Default 30 s.
    pub max_wait: Duration,
    /// Attempts (the first included) before a call failing with 5xx or network errors
    /// is dead-lettered. Default 8.
    pub max_attempts: u32,
    /// The first retry delay after a transient failure; it doubles per attempt.
    /// Default 250 ms.
    pub backoff_base: Duration,
    /// The longest retry delay. Default 10 s.
    pub backoff_max: Duration,
    /// How long an interaction callback may keep retrying: Discord only accepts one
    /// within 3 s of the interaction. Default 3 s.
    pub interaction_window: Duration,
    /// Requests per second we allow ourselves under Discord's global limit (50 for
    /// most bots). Default 50.
    pub global_per_second: u32,
    /// Pending writes one feature may have queued in one guild. Default 100.
    pub feature_quota: u64,
    /// Pending writes the features of one guild may have queued together.
    /// Default 500.
    pub guild_quota: u64,
    /// The invalid-request governor's budgets (Discord bans at 10,000 in 10 minutes).
    /// Defaults: 50 per feature in a guild, 200 per guild, 2,500 for the platform;
    /// refusals remembered 5 minutes.
    pub budgets: Budgets,
    /// How long this executor's outbox rows stay its own without a renewal.
    /// Default [`OUTBOX_LEASE`].
    pub lease: Duration,
    /// How often it renews its leases and adopts rows nobody holds; at most a third
    /// of `lease`. Default [`OUTBOX_RENEW_EVERY`].
    pub lease_renew_every: Duration,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            queue_capacity: 4096,
            max_wait: Duration::from_secs(30),
            max_attempts: 8,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            interaction_window: Duration::from_secs(3),
            global_per_second: DEFAULT_GLOBAL_PER_SECOND,
            feature_quota: 100,
            guild_quota: 500,
            budgets: Budgets {
                feature: 50,
                guild: 200,
                platform: 2_500,
                remember: Duration::from_secs(300),
            },
            lease: OUTBOX_LEASE,
            lease_renew_every: OUTBOX_RENEW_EVERY,
        }
    }
}

impl ExecutorConfig {
    /// The defaults with the operator's overrides from the environment
    /// (`TOWNES_DISCORD_*`, listed in `docs/OPERATIONS.md`).
    pub fn from_env() -> anyhow::Result<ExecutorConfig> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<ExecutorConfig> {
        fn read<T: std::str::FromStr>(
            var: &impl Fn(&str) -> Option<String>,
            name: &str,
            value: &mut T,
        ) -> anyhow::Result<()>
        where
            T::Err: std::fmt::Display,
        {
            if let Some(text) = var(name).filter(|t| !t.trim().is_empty()) {
                *value = text
                    .trim()
                    .parse()
                    .map_err(|e| anyhow::anyhow!("{name}={text:?}: {e}"))?;
            }
            Ok(())
        }
        let mut config = ExecutorConfig::default();
        let mut remember = config.budgets.remember.as_secs();
        read(
            &var,
            "TOWNES_DISCORD_GLOBAL_PER_SECOND",
            &mut config.global_per_second,
        )?;
        read(
            &var,
            "TOWNES_DISCORD_FEATURE_QUOTA",
            &mut config.feature_quota,
        )?;
        read(&var, "TOWNES_DISCORD_GUILD_QUOTA", &mut config.guild_quota)?;
        read(
            &var,
            "TOWNES_DISCORD_FEATURE_INVALID_BUDGET",
            &mut config.budgets.feature,
        )?;
        read(
            &var,
            "TOWNES_DISCORD_GUILD_INVALID_BUDGET",
            &mut config.budgets.guild,
        )?;
        read(
            &var,
            "TOWNES_DISCORD_PLATFORM_INVALID_BUDGET",
            &mut config.budgets.platform,
        )?;
        read(&var, "TOWNES_DISCORD_REMEMBER_REFUSALS_SECS", &mut remember)?;
        config.budgets.remember = Duration::from_secs(remember);
        let mut lease = config.lease.as_secs();
        read(&var, "TOWNES_DISCORD_LEASE_SECS", &mut lease)?;
        if lease == 0 {
            anyhow::bail!("TOWNES_DISCORD_LEASE_SECS must be at least 1");
        }
        if lease != config.lease.as_secs() {
            // Renewed three times per lease, as with the defaults.
            config.lease = Duration::from_secs(lease);
            config.lease_renew_every = config.lease / 3;
        }
        if config.budgets.platform >= 10_000 {
            anyhow::bail!(
                "TOWNES_DISCORD_PLATFORM_INVALID_BUDGET must stay below Discord's ban at \
                 10,000 invalid requests in 10 minutes"
            );
        }
        Ok(config)
    }

    /// The config with every count at least 1.
    fn normalized(mut self) -> Self {
        self.queue_capacity = self.queue_capacity.max(2);
        self.max_attempts = self.max_attempts.max(1);
        self.backoff_max = self.backoff_max.max(self.backoff_base);
        self.global_per_second = self.global_per_second.max(1);
        self.lease = self.lease.max(Duration::from_millis(30));
        self.lease_renew_every = self
            .lease_renew_every
            .clamp(Duration::from_millis(10), self.lease / 3);
        self
    }
}

/// A secret (an interaction token): stored and sent as is, never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where an outbox row's action keeps its message nonce, beside the action's
/// own fields (serde ignores it when reading the action back).
const NONCE_FIELD: &str = "nonce";

/// A Discord write, with everything needed to carry it out after a restart. Stored in
/// the outbox as JSON (`{"kind": "send_message", …}`); message and channel bodies are
/// Discord's JSON already (see `message_json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    SendMessage {
        guild_id: u64,
        channel_id: u64,
        body: Value,
    },
    EditMessage {
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        body: Value,
    },
    DeleteMessage {
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        reason: Option<String>,
    },
    AddReaction {
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        emoji: String,
    },
    /// 2 to 100 messages younger than 14 days.
    BulkDelete {
        guild_id: u64,
        channel_id: u64,
        message_ids: Vec<u64>,
        reason: Option<String>,
    },
    /// Opens (or reuses) the DM channel, then sends.
    SendDm { user_id: u64, body: Value },
    AddRole {
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        reason: Option<String>,
    },
    RemoveRole {
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        reason: Option<String>,
    },
    /// `body` is Discord's channel object (name, type, parent, topic, overwrites).
    CreateChannel {
        guild_id: u64,
        body: Value,
        reason: Option<String>,
    },
    DeleteChannel {
        guild_id: u64,
        channel_id: u64,
        reason: Option<String>,
    },
    /// `target_kind` 0 is a role, 1 a member.
    SetOverwrite {
        guild_id: u64,
        channel_id: u64,
        target_id: u64,
        target_kind: u8,
        allow: u64,
        deny: u64,
        reason: Option<String>,
    },
    Kick {
        guild_id: u64,
        user_id: u64,
        reason: Option<String>,
    },
    Ban {
        guild_id: u64,
        user_id: u64,
        delete_message_seconds: u32,
        reason: Option<String>,
    },
    Unban {
        guild_id: u64,
        user_id: u64,
        reason: Option<String>,
    },
    /// `seconds` from when the call is carried out (0 lifts a timeout), so a call
    /// delayed by a rate limit still times out for the full length.
    Timeout {
        guild_id: u64,
        user_id: u64,
        seconds: u32,
        reason: Option<String>,
    },
    /// Replaces the guild's slash commands (Discord's bulk overwrite; idempotent).
    OverwriteGuildCommands {
        application_id: u64,
        guild_id: u64,
        commands: Value,
    },
    /// Edits the answer to an interaction (the token lives 15 minutes).
    EditOriginal {
        application_id: u64,
        token: Secret,
        body: Value,
    },
    /// A follow-up message to an interaction.
    Followup {
        application_id: u64,
        token: Secret,
        body: Value,
    },
}

impl Action {
    /// A short name for logs and metrics (never the parameters: they may hold tokens).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::SendMessage { .. } => "send_message",
            Action::EditMessage { .. } => "edit_message",
            Action::DeleteMessage { .. } => "delete_message",
            Action::AddReaction { .. } => "add_reaction",
            Action::BulkDelete { .. } => "bulk_delete",
            Action::SendDm { .. } => "send_dm",
            Action::AddRole { .. } => "add_role",
            Action::RemoveRole { .. } => "remove_role",
            Action::CreateChannel { .. } => "create_channel",
            Action::DeleteChannel { .. } => "delete_channel",
            Action::SetOverwrite { .. } => "set_overwrite",
            Action::Kick { .. } => "kick",
            Action::Ban { .. } => "ban",
            Action::Unban { .. } => "unban",
            Action::Timeout { .. } => "timeout",
            Action::OverwriteGuildCommands { .. } => "overwrite_guild_commands",
            Action::EditOriginal { .. } => "edit_original",
            Action::Followup { .. } => "followup",
        }
    }

    /// What the action is ordered by: its channel for message actions, the user for a
    /// DM, the interaction (token) for interaction edits, else its guild.
    pub fn lane_key(&self) -> u64 {
        match self {
            Action::SendMessage { channel_id, .. }
            | Action::EditMessage { channel_id, .. }
            | Action::DeleteMessage { channel_id, .. }
            | Action::AddReaction { channel_id, .. }
            | Action::BulkDelete { channel_id, .. } => *channel_id,
            Action::SendDm { user_id, .. } => *user_id,
            Action::AddRole { guild_id, .. }
            | Action::RemoveRole { guild_id, .. }
            | Action::CreateChannel { guild_id, .. }
            | Action::DeleteChannel { guild_id, .. }
            | Action::SetOverwrite { guild_id, .. }
            | Action::Kick { guild_id, .. }
            | Action::Ban { guild_id, .. }
            | Action::Unban { guild_id, .. }
            | Action::Timeout { guild_id, .. }
            | Action::OverwriteGuildCommands { guild_id, .. } => *guild_id,
            Action::EditOriginal { token, .. } | Action::Followup { token, .. } => {
                let mut hasher = DefaultHasher::new();
                token.expose().hash(&mut hasher);
                hasher.finish() & (i64::MAX as u64)
            }
        }
    }

    /// What a refusal of this action is remembered by (see `governor`): the same
    /// call to the same target. A 403 there is not asked again for a while — it would
    /// only add to Discord's invalid-request count. Interaction answers have none:
    /// their token is theirs alone.
    pub fn refusal_key(&self) -> Option<String> {
        let kind = self.kind();
        match self {
            Action::SendMessage { channel_id, .. }
            | Action::EditMessage { channel_id, .. }
            | Action::DeleteMessage { channel_id, .. }
            | Action::AddReaction { channel_id, .. }
            | Action::BulkDelete { channel_id, .. }
            | Action::DeleteChannel { channel_id, .. }
            | Action::SetOverwrite { channel_id, .. } => {
                Some(format!("{kind} channel {channel_id}"))
            }
            Action::SendDm { user_id, .. } => Some(format!("{kind} user {user_id}")),
            Action::AddRole {
                guild_id, role_id, ..
            }
            | Action::RemoveRole {
                guild_id, role_id, ..
            } => Some(format!("{kind} guild {guild_id} role {role_id}")),
            Action::Kick {
                guild_id, user_id, ..
            }
            | Action::Ban {
                guild_id, user_id, ..
            }
            | Action::Unban {
                guild_id, user_id, ..
            }
            | Action::Timeout {
                guild_id, user_id, ..
            } => Some(format!("{kind} guild {guild_id} user {user_id}")),
            Action::CreateChannel { guild_id, .. }
            | Action::OverwriteGuildCommands { guild_id, .. } => {
                Some(format!("{kind} guild {guild_id}"))
            }
            Action::EditOriginal { .. } | Action::Followup { .. } => None,
        }
    }

    /// Carries the action out once. `nonce` (the outbox row id) goes on message
    /// creates.
    async fn perform(&self, rest: &RestClient, nonce: &str) -> Result<ActionOutput, RestError> {
        use ActionOutput::{Channel, Done, Message};
        match self {
            Action::SendMessage {
                channel_id, body, ..
            } => rest
                .create_message(*channel_id, body, Some(nonce))
                .await
                .map(Message),
            Action::EditMessage {
                channel_id,
                message_id,
                body,
                ..
            } => rest
                .edit_message(*channel_id, *message_id, body)
                .await
                .map(|()| Done),
            Action::DeleteMessage {
                channel_id,
                message_id,
                reason,
                ..
            } => rest
                .delete_message(*channel_id, *message_id, reason.as_deref())
                .await
                .map(|()| Done),
            Action::AddReaction {
                channel_id,
                message_id,
                emoji,
                ..
            } => rest
                .add_reaction(*channel_id, *message_id, emoji)
                .await
                .map(|()| Done),
            Action::BulkDelete {
                channel_id,
                message_ids,
                reason,
                ..
            } => rest
                .bulk_delete(*channel_id, message_ids, reason.as_deref())
                .await
                .map(|()| Done),
            Action::SendDm { user_id, body } => {
                let channel_id = rest.create_dm(*user_id).await?;
                rest.create_message(channel_id, body, Some(nonce))
                    .await
                    .map(Message)
            }
            Action::AddRole {
                guild_id,
                user_id,
                role_id,
                reason,
            } => rest
                .add_member_role(*guild_id, *user_id, *role_id, reason.as_deref())
                .await
                .map(|()| Done),
            Action::RemoveRole {
                guild_id,
                user_id,
                role_id,
                reason,
            } => rest
                .remove_member_role(*guild_id, *user_id, *role_id, reason.as_deref())
                .await
                .map(|()| Done),
            Action::CreateChannel {
                guild_id,
                body,
                reason,
            } => rest
                .create_channel(*guild_id, body, reason.as_deref())
                .await
                .map(Channel),
            Action::DeleteChannel {
                channel_id, reason, ..
            } => rest
                .delete_channel(*channel_id, reason.as_deref())
                .await
                .map(|()| Done),
            Action::SetOverwrite {
                channel_id,
                target_id,
                target_kind,
                allow,
                deny,
                reason,
                ..
            } => rest
                .set_overwrite(
                    *channel_id,
                    *target_id,
                    *target_kind,
                    *allow,
                    *deny,
                    reason.as_deref(),
                )
                .await
                .map(|()| Done),
            Action::Kick {
                guild_id,
                user_id,
                reason,
            } => rest
                .kick(*guild_id, *user_id, reason.as_deref())
                .await
                .map(|()| Done),
            Action::Ban {
                guild_id,
                user_id,
                delete_message_seconds,
                reason,
            } => rest
                .ban(
                    *guild_id,
                    *user_id,
                    *delete_message_seconds,
                    reason.as_deref(),
                )
                .await
                .map(|()| Done),
            Action::Unban {
                guild_id,
                user_id,
                reason,
            } => rest
                .unban(*guild_id, *user_id, reason.as_deref())
                .await
                .map(|()| Done),
            Action::Timeout {
                guild_id,
                user_id,
                seconds,
                reason,
            } => {
                let until = (*seconds > 0)
                    .then(|| chrono::Utc::now() + chrono::Duration::seconds(i64::from(*seconds)));
                rest.timeout(*guild_id, *user_id, until, reason.as_deref())
                    .await
                    .map(|()| Done)
            }
            Action::OverwriteGuildCommands {
                application_id,
                guild_id,
                commands,
            } => rest
                .overwrite_guild_commands(*application_id, *guild_id, commands)
                .await
                .map(|()| Done),
            Action::EditOriginal {
                application_id,
                token,
                body,
            } => rest
                .edit_original(*application_id, token.expose(), body)
                .await
                .map(|()| Done),
            Action::Followup {
                application_id,
                token,
                body,
            } => rest
                .followup(*application_id, token.expose(), body)
                .await
                .map(Message),
        }
    }
}

/// What a finished action produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionOutput {
    /// Done; nothing to report.
    Done,
    /// The id of the message created.
    Message(u64),
    /// The id of the channel created.
    Channel(u64),
}

impl ActionOutput {
    /// The id of what was created, if anything was.
    pub fn id(self) -> Option<u64> {
        match self {
            ActionOutput::Done => None,
            ActionOutput::Message(id) | ActionOutput::Channel(id) => Some(id),
        }
    }
}

/// Counters since start, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExecutorStats {
    /// Actions Discord carried out.
    pub completed: u64,
    /// Actions that ended in an error: refused by Discord or locally, or
    /// dead-lettered.
    pub failed: u64,
    /// Of `failed`, those dead-lettered after `max_attempts` transient failures.
    pub dead_lettered: u64,
    /// Queued actions dropped because their feature was disabled in the guild.
    pub cancelled: u64,
    /// 429 answers seen (each is waited out and retried).
    pub rate_limited: u64,
    /// Retries after a 5xx or network error.
    pub retried: u64,
    /// Actions accepted and not finished, including those waiting in the database.
    pub queue_depth: usize,
}

const SHUTTING_DOWN: &str = "shutting down";
const QUEUED: &str = "queued; Discord is rate limiting, it will be delivered";
const STOPPED: &str =
    "the executor stopped before Discord answered; the call stays queued for the next start";
const CANCELLED: &str =
    "cancelled: the feature was disabled in this guild before Discord was asked";
const HANDED_OVER: &str = "queued; another process took the call over and will deliver it";

/// Attempts of a direct (unpersisted) call before a transient failure is final.
const DIRECT_ATTEMPTS: u32 = 3;

type Outcome = Result<ActionOutput, DiscordError>;

/// A handle on the executor. Cheap to clone; clones share the workers.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("rest", &self.inner.rest)
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

struct Inner {
    store: Store,
    rest: RestClient,
    config: ExecutorConfig,
    /// This executor's random id: the `lease_owner` of the rows it holds.
    holder: String,
    /// When the last renewal that succeeded started: every row held is leased at
    /// least `lease` past it.
    renewed: Mutex<Instant>,
    governor: Governor,
    queues: Mutex<Queues>,
    /// Wakes the refill task: the executor spilled, or room freed up while spilled.
    refill_wake: Notify,
    /// The callers waiting for a row's outcome, by row id.
    waiters: Mutex<HashMap<i64, Waiter>>,
    /// Actions accepted and not finished (in memory or waiting in the database).
    depth: AtomicUsize,
    /// Signalled when `depth` drops to 0.
    idle: Notify,
    closing: AtomicBool,
    /// Set once the tasks were stopped: no new ones start.
    stopped: AtomicBool,
    /// One task per ordering key with work, and the refill task.
    tasks: Mutex<JoinSet<()>>,
    completed: AtomicU64,
    failed: AtomicU64,
    dead_lettered: AtomicU64,
    cancelled: AtomicU64,
    rate_limited: AtomicU64,
    retried: AtomicU64,
}

#[derive(Default)]
struct Queues {
    /// Ordering key → its actions not yet started. A key is present exactly while a
    /// task runs its queue.
    keys: HashMap<u64, VecDeque<Job>>,
    /// Row ids held in memory (queued or running), so a refill does not feed them
    /// twice.
    held: HashSet<i64>,
    /// Some rows wait in the database: the refill task feeds them (in id order) and
    /// `accept` leaves new rows there too, until caught up.
    spilled: bool,
    /// Bumped whenever `accept` leaves a row in the database, so the refill task
    /// knows whether its last look at the database can have missed one.
    generation: u64,
    /// `accept`s between starting their insert and deciding where the row goes. The
    /// executor never stops being spilled while one is under way: that row may already
    /// have been fed from the database.
    inserting: u32,
    /// Rows finished whose final database write failed: not fed again by this
    /// process (the next start replays them).
    unsettled: HashSet<i64>,
    /// Rows finished while a refill's query was under way: it may have read them
    /// before they were removed, and must not feed them again.
    finished_during_refill: Option<HashSet<i64>>,
}

/// A caller waiting for its row's outcome.
struct Waiter {
    sender: oneshot::Sender<Outcome>,
    /// Who asked: a row that waited in the database is run for this same caller, so
    /// its invalid answers still count for the invocation that made it.
    caller: Option<Caller>,
}

struct Job {
    id: i64,
    action: Action,
    /// Transient failures so far.
    attempts: u32,
    /// The feature that asked; `None` for the host's own calls.
    caller: Option<Caller>,
    /// A message create's nonce when the call was made handling redeliverable
    /// work (see `delivery`); otherwise the row id is.
    nonce: Option<String>,
    /// When the executor accepted it (its outbox row's creation), for the queue
    /// latency metric.
    accepted_at: DateTime<Utc>,
}

/// How a job ended.
enum Finish {
    /// Discord's final answer (or a local refusal): the row is removed.
    Answered(Outcome),
    /// Out of attempts: the row is dead-lettered.
    DeadLetter { attempts: u32, reason: String },
    /// The row was cancelled meanwhile: nothing to write.
    Cancelled,
    /// Another executor adopted the row (this one's lease ran out): it sends it.
    HandedOver,
}

/// What the check before an attempt found.
enum Hold {
    Held,
    Cancelled,
    HandedOver,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data (each critical
    // section is a few assignments), so poisoning is not a reason to stop.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A delay between `base / 2` and `base`, so retries of many callers spread out.
fn jitter(base: Duration) -> Duration {
    let ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::random_range(ms / 2..=ms))
}

impl Executor {
    /// Starts the executor. Every pending outbox row nobody holds (left by a
    /// graceful stop, or by a crash whose leases ran out) is adopted and queued
    /// again, oldest first per ordering key: that is how a restart resumes queued
    /// work. Rows of a crashed process whose leases still run are adopted once
    /// they run out, by the renewal task.
    pub async fn start(
        store: Store,
        rest: RestClient,
        config: ExecutorConfig,
    ) -> anyhow::Result<Executor> {
        let config = config.normalized();
        let holder = format!("{:032x}", rand::random::<u128>());
        let renewed = Instant::now();
        let lease = OutboxLease {
            holder: &holder,
            duration: config.lease,
        };
        let pending = store
            .outbox_adopt(lease, u32::MAX, |_| {})
            .await
            .context("reading the Discord outbox")?;
        rest.limiter()
            .set_global_per_second(config.global_per_second);
        let inner = Arc::new(Inner {
            store,
            rest,
            governor: Governor::new(config.budgets.clone()),
            config,
            holder,
            renewed: Mutex::new(renewed),
            // Spilled, so the refill task first looks for rows in the database.
            queues: Mutex::new(Queues {
                spilled: true,
                ..Queues::default()
            }),
            refill_wake: Notify::new(),
            waiters: Mutex::new(HashMap::new()),
            depth: AtomicUsize::new(usize::try_from(pending).unwrap_or(usize::MAX)),
            idle: Notify::new(),
            closing: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            tasks: Mutex::new(JoinSet::new()),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            retried: AtomicU64::new(0),
        });
        {
            let mut tasks = lock(&inner.tasks);
            tasks.spawn(Arc::clone(&inner).refill_loop());
            tasks.spawn(Arc::clone(&inner).lease_loop());
        }
        if pending > 0 {
            tracing::info!(pending, "resuming queued Discord calls");
        }
        Ok(Executor { inner })
    }

    /// Carries out `action` for the host: records it in the outbox, queues it, and
    /// waits for Discord's answer at most `max_wait`. Past that the caller gets
    /// `Unavailable("queued; …")` while the action stays queued and still runs.
    pub async fn run(&self, action: Action) -> Result<ActionOutput, DiscordError> {
        self.run_as(None, action).await
    }

    /// [`Executor::run`] for `caller`: held to its quotas and budgets.
    pub async fn run_as(
        &self,
        caller: Option<&Caller>,
        action: Action,
    ) -> Result<ActionOutput, DiscordError> {
        self.submit_as(caller, action).await?.wait().await
    }

    /// Records `action` in the outbox and queues it for the host, without waiting for
    /// Discord: when this returns, the action is durable and ordered after every action
    /// submitted before it with the same ordering key. [`Pending::wait`] then waits for
    /// the answer.
    pub async fn submit(&self, action: Action) -> Result<Pending, DiscordError> {
        self.submit_as(None, action).await
    }

    /// [`Executor::submit`] for `caller`: refused with
    /// [`DiscordError::QuotaExceeded`] when it has too many calls pending (or Discord
    /// refused too many of its calls lately), and locally when Discord refused the same
    /// call lately.
    pub async fn submit_as(
        &self,
        caller: Option<&Caller>,
        action: Action,
    ) -> Result<Pending, DiscordError> {
        if self.inner.closing.load(Ordering::SeqCst) {
            return Err(DiscordError::Unavailable(SHUTTING_DOWN.into()));
        }
        let key = action.refusal_key();
        self.inner.governor.admit(caller, key.as_deref())?;
        if let Some(caller) = caller {
            self.inner.check_quota(caller).await?;
        }
        let (sender, receiver) = oneshot::channel();
        // Here, not in `accept`: the handled work is this task's.
        let nonce = match action {
            Action::SendMessage { .. } | Action::SendDm { .. } => {
                super::delivery::next_nonce(caller.map(|c| (c.guild_id, c.feature_id.as_str())))
            }
            _ => None,
        };
        // On its own task, so a caller that gives up mid-insert cannot leave the
        // bookkeeping half done.
        let inner = Arc::clone(&self.inner);
        let caller = caller.cloned();
        let id = tokio::spawn(async move { inner.accept(action, nonce, caller, sender).await })
            .await
            .map_err(|e| DiscordError::Unavailable(format!("queueing the call failed: {e}")))??;
        Ok(Pending {
            id,
            receiver,
            max_wait: self.inner.config.max_wait,
            executor: self.clone(),
        })
    }

    /// Answers an interaction (`POST /interactions/{id}/{token}/callback`) on the
    /// priority path: straight to Discord, past the queues, retrying a 429 or a
    /// transient failure only within [`ExecutorConfig::interaction_window`]. Not
    /// persisted: Discord accepts a callback only within 3 s of the interaction, so
    /// replaying one after a restart could never succeed. Interaction endpoints are
    /// not subject to the global rate limit, so a global pause does not hold it up.
    pub async fn interaction_callback(
        &self,
        interaction_id: u64,
        token: &str,
        response: &Value,
    ) -> Result<(), DiscordError> {
        let deadline = Instant::now() + self.inner.config.interaction_window;
        let mut backoff = Duration::from_millis(50);
        loop {
            let result = self
                .inner
                .rest
                .interaction_callback(interaction_id, token, response)
                .await;
            self.inner
                .governor
                .record(None, None, result.as_ref().map(drop));
            let delay = match result {
                Ok(()) => return Ok(()),
                Err(RestError::RateLimited { retry_after, .. }) => {
                    self.inner.rate_limited.fetch_add(1, Ordering::Relaxed);
                    // The limiter holds the retry that long.
                    if Instant::now() + retry_after >= deadline {
                        return Err(DiscordError::Unavailable(
                            "Discord is rate limiting past the interaction's 3-second window"
                                .into(),
                        ));
                    }
                    continue;
                }
                Err(RestError::Transient(reason)) => {
                    let delay = jitter(backoff);
                    if Instant::now() + delay >= deadline {
                        return Err(DiscordError::Unavailable(reason));
                    }
                    self.inner.retried.fetch_add(1, Ordering::Relaxed);
                    backoff *= 2;
                    delay
                }
                Err(final_error) => return Err(final_error.into_discord()),
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// Edits the answer to an interaction (after a deferred response). Persisted like
    /// any action: the token lives 15 minutes, long enough to survive a restart.
    pub async fn edit_original(
        &self,
        application_id: u64,
        token: &str,
        body: &Value,
    ) -> Result<(), DiscordError> {
        self.run(Action::EditOriginal {
            application_id,
            token: Secret::new(token),
            body: body.clone(),
        })
        .await
        .map(drop)
    }

    /// Sends a follow-up message to an interaction; returns its id. Persisted like
    /// [`Executor::edit_original`].
    pub async fn followup(
        &self,
        application_id: u64,
        token: &str,
        body: &Value,
    ) -> Result<u64, DiscordError> {
        let output = self
            .run(Action::Followup {
                application_id,
                token: Secret::new(token),
                body: body.clone(),
            })
            .await?;
        output.id().ok_or_else(|| {
            DiscordError::Unavailable("Discord did not return the follow-up's id".into())
        })
    }

    /// A call for the host that is not persisted — a read, or anything the caller
    /// waits for and can repeat — with the executor's rate-limit handling: it waits
    /// out 429s while the total stays within `max_wait`, and retries a transient
    /// failure up to 3 attempts.
    ///
    /// ```ignore
    /// let roles = executor.direct(|rest| async move { rest.roles(guild_id).await }).await?;
    /// ```
    pub async fn direct<T, F, Fut>(&self, call: F) -> Result<T, DiscordError>
    where
        F: Fn(RestClient) -> Fut,
        Fut: Future<Output = Result<T, RestError>>,
    {
        self.direct_as(None, None, call).await
    }

    /// [`Executor::direct`] for `caller`, refused locally like a write when the
    /// governor says so; a 403 is remembered under `refusal_key`.
    pub async fn direct_as<T, F, Fut>(
        &self,
        caller: Option<&Caller>,
        refusal_key: Option<&str>,
        call: F,
    ) -> Result<T, DiscordError>
    where
        F: Fn(RestClient) -> Fut,
        Fut: Future<Output = Result<T, RestError>>,
    {
        let started = Instant::now();
        let mut attempts = 0;
        let mut backoff = self.inner.config.backoff_base;
        loop {
            self.inner.governor.admit(caller, refusal_key)?;
            let result = call(self.inner.rest.clone()).await;
            self.inner
                .governor
                .record(caller, refusal_key, result.as_ref().map(drop));
            let delay = match result {
                Ok(value) => return Ok(value),
                Err(RestError::RateLimited { retry_after, .. }) => {
                    self.inner.rate_limited.fetch_add(1, Ordering::SeqCst);
                    if started.elapsed() + retry_after > self.inner.config.max_wait {
                        return Err(DiscordError::Unavailable(
                            "Discord is rate limiting; try again later".into(),
                        ));
                    }
                    // The limiter holds the retry until the bucket allows it.
                    continue;
                }
                Err(RestError::Transient(reason)) => {
                    attempts += 1;
                    if attempts >= DIRECT_ATTEMPTS {
                        return Err(DiscordError::Unavailable(reason));
                    }
                    self.inner.retried.fetch_add(1, Ordering::Relaxed);
                    let delay = jitter(backoff);
                    backoff = (backoff * 2).min(self.inner.config.backoff_max);
                    delay
                }
                Err(final_error) => return Err(final_error.into_discord()),
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// Refuses calls under `refusal_key` locally for a while (see
    /// [`Action::refusal_key`]), e.g. a channel Discord said does not exist.
    pub(crate) fn remember_refusal(&self, refusal_key: &str, error: &DiscordError) {
        self.inner.governor.remember(refusal_key, error);
    }

    /// Actions accepted and not finished, including those waiting in the database.
    pub fn queue_depth(&self) -> usize {
        self.inner.depth.load(Ordering::SeqCst)
    }

    /// Whether it still accepts actions (false once shutting down).
    pub fn accepting(&self) -> bool {
        !self.inner.closing.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> ExecutorStats {
        let inner = &self.inner;
        ExecutorStats {
            completed: inner.completed.load(Ordering::Relaxed),
            failed: inner.failed.load(Ordering::Relaxed),
            dead_lettered: inner.dead_lettered.load(Ordering::Relaxed),
            cancelled: inner.cancelled.load(Ordering::Relaxed),
            rate_limited: inner.rate_limited.load(Ordering::SeqCst),
            retried: inner.retried.load(Ordering::Relaxed),
            queue_depth: self.queue_depth(),
        }
    }

    /// The REST client, for calls outside the executor's routes.
    pub fn rest(&self) -> &RestClient {
        &self.inner.rest
    }

    /// Stops taking new work (later calls fail with `Unavailable("shutting down")`)
    /// and lets the workers drain what was accepted, in memory and in the database,
    /// until nothing is left or `deadline` passes. Whatever is left (including a call
    /// cut off mid-flight) stays in the outbox with its leases released, so another
    /// executor (or the next start) takes it at once. Callers still waiting are told
    /// so.
    pub async fn shutdown(&self, deadline: Duration) {
        self.inner.closing.store(true, Ordering::SeqCst);
        let before = self.queue_depth();
        let all_done = tokio::time::timeout(deadline, self.inner.until_idle())
            .await
            .is_ok();
        self.stop_workers().await;
        self.release().await;
        let remaining = self.queue_depth();
        tracing::info!(
            drained = before.saturating_sub(remaining),
            remaining,
            all_done,
            "Discord executor stopped; what remains stays queued for the next start"
        );
    }

    /// Stops at once: workers are aborted wherever they are and nothing is drained;
    /// pending rows stay in the outbox, their leases released so another executor
    /// takes them at once (a call cut off mid-flight is sent again). For tests of
    /// recovery, and for a hard stop when even a short drain is not wanted. A process
    /// killed outright releases nothing: its rows wait for their leases to run out.
    pub async fn abandon(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        self.stop_workers().await;
        self.release().await;
        tracing::warn!(
            remaining = self.queue_depth(),
            "Discord executor abandoned without draining"
        );
    }

    /// Gives up the leases of the rows still pending, once the workers stopped. If
    /// the database cannot be reached they run out by themselves.
    async fn release(&self) {
        match self.inner.store.outbox_release(&self.inner.holder).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "released the leases of queued Discord calls"),
            Err(error) => tracing::warn!(
                %error,
                "cannot release the leases of queued Discord calls; other processes take them once they run out"
            ),
        }
    }

    async fn stop_workers(&self) {
        let mut tasks = {
            let mut tasks = lock(&self.inner.tasks);
            self.inner.stopped.store(true, Ordering::SeqCst);
            std::mem::take(&mut *tasks)
        };
        tasks.abort_all();
        // Cancelled (or, if one had panicked, already gone): either way it is done.
        while tasks.join_next().await.is_some() {}
        // Dropping the senders tells the remaining callers the executor stopped.
        lock(&self.inner.waiters).clear();
    }
}

/// An action accepted into the outbox; [`Pending::wait`] waits for Discord's answer.
/// Dropping it stops listening; the action still runs.
pub struct Pending {
    id: i64,
    receiver: oneshot::Receiver<Outcome>,
    max_wait: Duration,
    executor: Executor,
}

impl Pending {
    /// The outbox row id (also the nonce of a message create).
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Discord's answer, or `Unavailable("queued; …")` after `max_wait` (the action
    /// stays queued and still runs).
    pub async fn wait(mut self) -> Result<ActionOutput, DiscordError> {
        match tokio::time::timeout(self.max_wait, &mut self.receiver).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(DiscordError::Unavailable(STOPPED.into())),
            Err(_) => Err(DiscordError::Unavailable(QUEUED.into())),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        lock(&self.executor.inner.waiters).remove(&self.id);
    }
}

impl Inner {
    /// Refuses a feature's write when it, or its guild, has too many pending. Counted
    /// in the database, so rows cancelled or left by another process count right; two
    /// writes racing may both pass at the edge, which a quota can afford.
    async fn check_quota(&self, caller: &Caller) -> Result<(), DiscordError> {
        let (feature, guild) = self
            .store
            .outbox_pending_for(caller.guild_id, &caller.feature_id)
            .await
            .map_err(|error| {
                tracing::error!(%error, "cannot count a feature's queued Discord calls");
                DiscordError::Unavailable(
                    "cannot queue the Discord call: the database is unavailable".into(),
                )
            })?;
        let over = if feature >= self.config.feature_quota {
            Some(format!(
                "this feature already has {feature} Discord calls queued in this guild \
                 (quota {}); wait for them to be delivered",
                self.config.feature_quota
            ))
        } else if guild >= self.config.guild_quota {
            Some(format!(
                "this guild's features already have {guild} Discord calls queued (quota {}); \
                 wait for them to be delivered",
                self.config.guild_quota
            ))
        } else {
            None
        };
        match over {
            Some(why) => {
                self.governor
                    .refused(Some(caller), governor::reason::QUEUE_QUOTA);
                Err(DiscordError::QuotaExceeded(why))
            }
            None => Ok(()),
        }
    }

    /// Writes the row and queues it (or leaves it in the database when memory is full
    /// or the executor is spilled). Returns the row id.
    async fn accept(
        self: Arc<Self>,
        action: Action,
        nonce: Option<String>,
        caller: Option<Caller>,
        sender: oneshot::Sender<Outcome>,
    ) -> Result<i64, DiscordError> {
        let mut json = serde_json::to_value(&action)
            .map_err(|e| DiscordError::Invalid(format!("cannot record the call: {e}")))?;
        if let (Some(nonce), Some(object)) = (&nonce, json.as_object_mut()) {
            object.insert(NONCE_FIELD.into(), nonce.clone().into());
        }
        lock(&self.queues).inserting += 1;
        let mut registered = None;
        let origin = caller.as_ref().map(|c| (c.guild_id, c.feature_id.as_str()));
        let waiter = Waiter {
            sender,
            caller: caller.clone(),
        };
        let inserted = self
            .store
            .outbox_insert(Some(self.lease()), action.lane_key(), origin, &json, |id| {
                // Before the commit: no worker can see the row before its waiter exists.
                lock(&self.waiters).insert(id, waiter);
                self.depth.fetch_add(1, Ordering::SeqCst);
                registered = Some(id);
            })
            .await;
        let mut queues = lock(&self.queues);
        queues.inserting -= 1;
        match inserted {
            Ok(id) => {
                if !queues.spilled && queues.held.len() < self.config.queue_capacity {
                    let job = Job {
                        id,
                        action,
                        attempts: 0,
                        caller,
                        nonce,
                        accepted_at: Utc::now(),
                    };
                    self.hold(&mut queues, job);
                } else {
                    queues.spilled = true;
                    queues.generation += 1;
                    self.refill_wake.notify_one();
                }
                Ok(id)
            }
            Err(error) => {
                if let Some(id) = registered {
                    lock(&self.waiters).remove(&id);
                    self.finished_one();
                }
                // A failed commit may still have written the row; a refill looks.
                queues.spilled = true;
                queues.generation += 1;
                self.refill_wake.notify_one();
                tracing::error!(%error, "cannot write a Discord call to the outbox");
                Err(DiscordError::Unavailable(
                    "cannot queue the Discord call: the database is unavailable".into(),
                ))
            }
        }
    }

    /// Queues a job behind its key's earlier ones, starting the key's task if it has
    /// none.
    fn hold(self: &Arc<Self>, queues: &mut Queues, job: Job) {
        queues.held.insert(job.id);
        let key = job.action.lane_key();
        match queues.keys.get_mut(&key) {
            Some(queue) => queue.push_back(job),
            None => {
                queues.keys.insert(key, VecDeque::from([job]));
                let mut tasks = lock(&self.tasks);
                // Reap finished key tasks so the set stays as small as the work.
                while tasks.try_join_next().is_some() {}
                if !self.stopped.load(Ordering::SeqCst) {
                    tasks.spawn(Arc::clone(self).drive(key));
                }
            }
        }
    }

    /// A key's task: runs its queue, oldest first, and ends when it is empty.
    async fn drive(self: Arc<Self>, key: u64) {
        loop {
            let job = {
                let mut queues = lock(&self.queues);
                match queues.keys.get_mut(&key).and_then(VecDeque::pop_front) {
                    Some(job) => job,
                    None => {
                        queues.keys.remove(&key);
                        return;
                    }
                }
            };
            self.process(job).await;
        }
    }

    /// Feeds spilled rows from the database whenever memory is at most half full.
    async fn refill_loop(self: Arc<Self>) {
        loop {
            let ready = {
                let queues = lock(&self.queues);
                queues.spilled && queues.held.len() <= self.config.queue_capacity / 2
            };
            if ready {
                self.refill().await;
            } else {
                // notify_one stores a permit, so a wake between the check and here is
                // not lost.
                self.refill_wake.notified().await;
            }
        }
    }

    /// Feeds rows from the database, oldest first, and ends the spill once the
    /// database holds nothing more that is not in memory.
    async fn refill(self: &Arc<Self>) {
        let (generation, limit) = {
            let mut queues = lock(&self.queues);
            queues.finished_during_refill = Some(HashSet::new());
            let limit = self.config.queue_capacity + queues.unsettled.len();
            (queues.generation, limit)
        };
        let limit_u32 = u32::try_from(limit).unwrap_or(u32::MAX);
        let rows = match self.store.outbox_held(&self.holder, limit_u32).await {
            Ok(rows) => rows,
            Err(error) => {
                lock(&self.queues).finished_during_refill = None;
                tracing::error!(%error, "cannot read the Discord outbox; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return;
            }
        };
        let complete = rows.len() < limit;
        let (stalled, unreadable) = {
            let mut queues = lock(&self.queues);
            let mut unreadable = Vec::new();
            let mut fed = 0;
            let mut left_behind = false;
            let finished = queues.finished_during_refill.take().unwrap_or_default();
            for row in rows {
                if queues.held.contains(&row.id)
                    || queues.unsettled.contains(&row.id)
                    || finished.contains(&row.id)
                {
                    continue;
                }
                if queues.held.len() >= self.config.queue_capacity {
                    left_behind = true;
                    break;
                }
                let waiting = lock(&self.waiters)
                    .get(&row.id)
                    .and_then(|w| w.caller.clone());
                let caller = waiting.or_else(|| {
                    let (guild_id, feature_id) = row.guild_id.zip(row.feature_id)?;
                    Some(Caller::new(guild_id, feature_id))
                });
                let nonce = row
                    .action
                    .get(NONCE_FIELD)
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match serde_json::from_value::<Action>(row.action) {
                    Ok(action) => {
                        let job = Job {
                            id: row.id,
                            action,
                            attempts: row.attempts,
                            caller,
                            nonce,
                            accepted_at: row.created_at,
                        };
                        self.hold(&mut queues, job);
                        fed += 1;
                    }
                    Err(error) => {
                        queues.held.insert(row.id);
                        unreadable.push((row.id, row.attempts, error.to_string()));
                    }
                }
            }
            // Caught up when the query saw every pending row, no row was left in the
            // database since it started, and no insert is still deciding.
            if complete && !left_behind && queues.generation == generation && queues.inserting == 0
            {
                queues.spilled = false;
            }
            let stalled = fed == 0 && unreadable.is_empty() && queues.spilled;
            (stalled, unreadable)
        };
        for (id, attempts, error) in unreadable {
            let reason = format!("unreadable outbox row: {error}");
            self.finish(id, "unknown", None, Finish::DeadLetter { attempts, reason })
                .await;
        }
        if stalled {
            // An insert is still deciding, or a row arrived after the query: wait for
            // its wake-up (or a moment) rather than spin on the database.
            let _ =
                tokio::time::timeout(Duration::from_millis(50), self.refill_wake.notified()).await;
        }
    }

    /// This executor's lease, taken or renewed now.
    fn lease(&self) -> OutboxLease<'_> {
        OutboxLease {
            holder: &self.holder,
            duration: self.config.lease,
        }
    }

    /// Renews this executor's leases and adopts rows nobody holds, every
    /// `lease_renew_every`.
    async fn lease_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.lease_renew_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let started = Instant::now();
            match self.store.outbox_renew(self.lease()).await {
                Ok(_) => *lock(&self.renewed) = started,
                Err(error) => {
                    tracing::warn!(%error, "cannot renew the leases of queued Discord calls")
                }
            }
            // A stopping executor drains what it has; what nobody holds is for others.
            if !self.closing.load(Ordering::SeqCst) {
                self.adopt().await;
            }
        }
    }

    /// Takes over rows nobody holds: counted before they are visible as this
    /// executor's, then fed by the refill task in id order.
    async fn adopt(self: &Arc<Self>) {
        let limit = u32::try_from(self.config.queue_capacity).unwrap_or(u32::MAX);
        let mut counted = 0;
        let adopted = self
            .store
            .outbox_adopt(self.lease(), limit, |n| {
                counted = usize::try_from(n).unwrap_or(usize::MAX);
                self.depth.fetch_add(counted, Ordering::SeqCst);
            })
            .await;
        match adopted {
            Ok(0) => {}
            Ok(adopted) => {
                tracing::info!(adopted, "took over queued Discord calls nobody held");
                let mut queues = lock(&self.queues);
                queues.spilled = true;
                queues.generation += 1;
                self.refill_wake.notify_one();
            }
            Err(error) => {
                // Counted before a commit that failed: take the count back.
                let _ = self
                    .depth
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| {
                        Some(d.saturating_sub(counted))
                    });
                tracing::warn!(%error, "cannot adopt queued Discord calls");
            }
        }
    }

    /// Whether the row is still this executor's to send, extending its lease: not
    /// cancelled (`Store::outbox_cancel` from any process drops a disabled feature's
    /// rows) and not adopted by another executor after this one's lease ran out.
    async fn hold_before_attempt(&self, job: &Job) -> Hold {
        loop {
            let checked = match self.store.outbox_still_held(job.id, self.lease()).await {
                Ok(true) => return Hold::Held,
                Ok(false) => self.store.outbox_is_pending(job.id).await,
                Err(error) => Err(error),
            };
            match checked {
                Ok(true) => return Hold::HandedOver,
                Ok(false) => return Hold::Cancelled,
                Err(error) => {
                    // Every row held is leased at least `lease` past the last renewal
                    // that succeeded: until then nobody else can have it, and sending
                    // is what was asked.
                    let renewed = lock(&self.renewed).elapsed();
                    if renewed + self.config.lease_renew_every < self.config.lease {
                        tracing::warn!(%error, id = job.id, "cannot check a queued Discord call; sending it");
                        return Hold::Held;
                    }
                    tracing::warn!(%error, id = job.id, "cannot check a queued Discord call; waiting");
                    tokio::time::sleep(self.config.lease_renew_every).await;
                }
            }
        }
    }

    /// Carries out one job to its end: success, final refusal, cancellation or dead
    /// letter.
    async fn process(&self, job: Job) {
        let nonce = job.nonce.clone().unwrap_or_else(|| job.id.to_string());
        let kind = job.action.kind();
        let caller = job.caller.as_ref();
        let refusal_key = job.action.refusal_key();
        let mut attempts = job.attempts;
        let mut backoff = self.config.backoff_base;
        let finish = loop {
            match self.hold_before_attempt(&job).await {
                Hold::Held => {}
                Hold::Cancelled => break Finish::Cancelled,
                Hold::HandedOver => break Finish::HandedOver,
            }
            // Again here: a refusal or budget learned while this waited in its queue.
            if let Err(refused) = self.governor.admit(caller, refusal_key.as_deref()) {
                break Finish::Answered(Err(refused));
            }
            let result = job.action.perform(&self.rest, &nonce).await;
            self.governor
                .record(caller, refusal_key.as_deref(), result.as_ref().map(drop));
            match result {
                Ok(output) => break Finish::Answered(Ok(output)),
                Err(RestError::RateLimited { retry_after, scope }) => {
                    self.rate_limited.fetch_add(1, Ordering::SeqCst);
                    tracing::debug!(
                        kind,
                        id = job.id,
                        retry_after_ms = retry_after.as_millis() as u64,
                        ?scope,
                        "Discord rate limit; waiting"
                    );
                    // Only this key's task waits (the limiter would hold the retry as
                    // long); waiting here lets the next look at the row see a cancel
                    // made meanwhile.
                    tokio::time::sleep(retry_after).await;
                }
                Err(RestError::Transient(reason)) => {
                    attempts += 1;
                    if attempts >= self.config.max_attempts {
                        break Finish::DeadLetter { attempts, reason };
                    }
                    self.retried.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(kind, id = job.id, attempts, %reason, "Discord call failed; retrying");
                    if let Err(error) = self
                        .store
                        .outbox_record_attempt(job.id, attempts, &reason)
                        .await
                    {
                        tracing::warn!(%error, id = job.id, "cannot record a failed attempt");
                    }
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(self.config.backoff_max);
                }
                Err(final_error) => break Finish::Answered(Err(final_error.into_discord())),
            }
        };
        if !matches!(finish, Finish::Cancelled | Finish::HandedOver) {
            let waited = (Utc::now() - job.accepted_at).to_std().unwrap_or_default();
            metrics().record_queue_latency(waited);
        }
        self.finish(job.id, kind, caller, finish).await;
    }

    /// Settles a finished row in the database, then tells its caller. The caller hears
    /// only after the row is removed (or dead-lettered), so an answered call is never
    /// replayed.
    async fn finish(&self, id: i64, kind: &'static str, caller: Option<&Caller>, finish: Finish) {
        let feature = caller.map_or("host", |c| c.feature_id.as_str());
        let (settled, outcome) = match finish {
            Finish::Answered(outcome) => {
                match &outcome {
                    Ok(_) => self.completed.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        tracing::info!(kind, id, feature, %error, "Discord call refused");
                        self.failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                let settled = self.settle("remove", || self.store.outbox_delete(id)).await;
                (settled, outcome)
            }
            Finish::DeadLetter { attempts, reason } => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.dead_lettered.fetch_add(1, Ordering::Relaxed);
                tracing::error!(kind, id, attempts, %reason, "Discord call dead-lettered");
                let settled = self
                    .settle("dead-letter", || {
                        self.store.outbox_dead_letter(id, attempts, &reason)
                    })
                    .await;
                let error = DiscordError::Unavailable(format!(
                    "Discord did not answer after {attempts} attempts ({reason}); the call was set aside"
                ));
                (settled, Err(error))
            }
            Finish::Cancelled => {
                self.cancelled.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(kind, id, feature, "queued Discord call cancelled");
                (true, Err(DiscordError::Unavailable(CANCELLED.into())))
            }
            Finish::HandedOver => {
                tracing::info!(
                    kind,
                    id,
                    "queued Discord call taken over by another process"
                );
                (true, Err(DiscordError::Unavailable(HANDED_OVER.into())))
            }
        };
        {
            let mut queues = lock(&self.queues);
            queues.held.remove(&id);
            if let Some(finished) = &mut queues.finished_during_refill {
                finished.insert(id);
            }
            if !settled {
                tracing::error!(
                    kind,
                    id,
                    "cannot settle a finished Discord call in the outbox; it runs again after a restart"
                );
                queues.unsettled.insert(id);
            }
            if queues.spilled && queues.held.len() <= self.config.queue_capacity / 2 {
                self.refill_wake.notify_one();
            }
        }
        self.finished_one();
        if let Some(waiter) = lock(&self.waiters).remove(&id) {
            // The caller may have stopped listening; the call is done either way.
            let _ = waiter.sender.send(outcome);
        }
    }

    /// Runs a database write, retrying a few times over about 3 s. False if it never
    /// succeeded.
    async fn settle<F, Fut>(&self, what: &str, mut write: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=5 {
            match write().await {
                Ok(()) => return true,
                Err(error) => {
                    tracing::warn!(%error, attempt, "cannot {what} an outbox row");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        false
    }

    fn finished_one(&self) {
        let previous = self
            .depth
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| {
                Some(d.saturating_sub(1))
            })
            .unwrap_or(0);
        if previous <= 1 {
            self.idle.notify_waiters();
        }
    }

    /// Returns once `depth` is 0.
    async fn until_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a notification in between is not lost.
            notified.as_mut().enable();
            if self.depth.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_as_json_and_hide_tokens() {
        let action = Action::Followup {
            application_id: 5,
            token: Secret::new("tok-123"),
            body: serde_json::json!({ "content": "x" }),
        };
        let json = serde_json::to_value(&action).unwrap();
        assert_eq!(json["kind"], "followup");
        assert_eq!(json["token"], "tok-123");
        assert_eq!(serde_json::from_value::<Action>(json).unwrap(), action);
        assert!(!format!("{action:?}").contains("tok-123"));
        assert_eq!(action.refusal_key(), None);

        let big = Action::SendMessage {
            guild_id: u64::MAX,
            channel_id: 1 << 63,
            body: serde_json::json!({}),
        };
        let json = serde_json::to_value(&big).unwrap();
        assert_eq!(serde_json::from_value::<Action>(json).unwrap(), big);
        assert_eq!(big.lane_key(), 1 << 63);
        assert_eq!(
            big.refusal_key().unwrap(),
            format!("send_message channel {}", 1u64 << 63)
        );
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(200));
            assert!((100..=200).contains(&d.as_millis()), "{d:?}");
        }
    }

    #[test]
    fn the_environment_overrides_the_defaults_and_bad_values_are_refused() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let config = ExecutorConfig::from_vars(vars(&[
            ("TOWNES_DISCORD_GLOBAL_PER_SECOND", "40"),
            ("TOWNES_DISCORD_FEATURE_QUOTA", " 7 "),
            ("TOWNES_DISCORD_REMEMBER_REFUSALS_SECS", "60"),
            ("TOWNES_DISCORD_GUILD_QUOTA", ""),
            ("TOWNES_DISCORD_LEASE_SECS", "3"),
        ]))
        .unwrap();
        assert_eq!(
            (config.lease, config.lease_renew_every),
            (Duration::from_secs(3), Duration::from_secs(1))
        );
        assert_eq!(config.global_per_second, 40);
        assert_eq!(config.feature_quota, 7);
        assert_eq!(config.guild_quota, ExecutorConfig::default().guild_quota);
        assert_eq!(config.budgets.remember, Duration::from_secs(60));
        let bad = ExecutorConfig::from_vars(vars(&[("TOWNES_DISCORD_GUILD_QUOTA", "lots")]));
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("TOWNES_DISCORD_GUILD_QUOTA")
        );
        let reckless =
            ExecutorConfig::from_vars(vars(&[("TOWNES_DISCORD_PLATFORM_INVALID_BUDGET", "10000")]));
        assert!(reckless.is_err());
    }
}
