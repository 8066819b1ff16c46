//! The executor: every Discord REST call the platform makes goes through here.
//!
//! A write ([`Action`]) is first recorded in the outbox table, then handed to one of a
//! few lanes and carried out by that lane's worker; the caller awaits the result for
//! at most [`ExecutorConfig::max_wait`]. Because the row is written before anything is
//! sent and removed only after Discord's final answer, nothing accepted is lost: a
//! crash or restart replays the pending rows, and message creates carry the row id as
//! their `nonce` (with `enforce_nonce`), so a replay never posts twice.
//!
//! - **Ordering.** An action goes to the lane of its key (the channel for message
//!   actions, else the guild), and a lane runs one action at a time, oldest first, so
//!   one channel's messages keep their order.
//! - **Bounded memory.** Each lane holds at most [`ExecutorConfig::lane_capacity`]
//!   actions in memory. When it is full the row just stays in the database and the
//!   lane is marked *spilled*: from then on its worker feeds itself from the database,
//!   in id order, until it has caught up. Nothing is dropped; [`Executor::queue_depth`]
//!   counts everything accepted and not finished.
//! - **Rate limits.** A 429 is waited out (`retry_after`; a global one pauses every
//!   lane) and the call retried, without limit: a 429 storm delays, never loses.
//! - **Failures.** 5xx and network errors are retried with exponential backoff and
//!   jitter up to [`ExecutorConfig::max_attempts`]; then the row is dead-lettered (kept
//!   with its error, never retried automatically). Any other 4xx is final.
//! - **Shutdown.** [`Executor::shutdown`] stops taking work and drains until a
//!   deadline; what is left stays in the outbox for the next start.
//!
//! Delivery is at least once: a call cut off mid-flight by a crash is sent again on
//! restart. Message creates are deduplicated by their nonce; the other routes are
//! idempotent on Discord's side (roles, bans, timeouts, overwrites, edits) or fail
//! harmlessly the second time (a delete answers 404), except creating a channel.
//!
//! One executor per database: a second process sharing the outbox would replay the
//! first one's rows.

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
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::DiscordError;
use super::rest::{RestClient, RestError};
use crate::store::{Store, StoreError, outbox_lane};

/// How the executor behaves. [`Default`] gives the production values.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// Independent lanes (workers). Default 4.
    pub lanes: u32,
    /// Actions each lane holds in memory; beyond it they wait in the database.
    /// Default 256.
    pub lane_capacity: usize,
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
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            lanes: 4,
            lane_capacity: 256,
            max_wait: Duration::from_secs(30),
            max_attempts: 8,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            interaction_window: Duration::from_secs(3),
        }
    }
}

impl ExecutorConfig {
    /// The config with every count at least 1.
    fn normalized(mut self) -> Self {
        self.lanes = self.lanes.max(1);
        self.lane_capacity = self.lane_capacity.max(1);
        self.max_attempts = self.max_attempts.max(1);
        self.backoff_max = self.backoff_max.max(self.backoff_base);
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
            | Action::Timeout { guild_id, .. }
            | Action::OverwriteGuildCommands { guild_id, .. } => *guild_id,
            Action::EditOriginal { token, .. } | Action::Followup { token, .. } => {
                let mut hasher = DefaultHasher::new();
                token.expose().hash(&mut hasher);
                hasher.finish() & (i64::MAX as u64)
            }
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
    /// Actions that ended in an error: refused by Discord, or dead-lettered.
    pub failed: u64,
    /// Of `failed`, those dead-lettered after `max_attempts` transient failures.
    pub dead_lettered: u64,
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
    lanes: Vec<Lane>,
    /// The callers waiting for a row's outcome, by row id.
    waiters: Mutex<HashMap<i64, oneshot::Sender<Outcome>>>,
    /// Actions accepted and not finished (in memory or waiting in the database).
    depth: AtomicUsize,
    /// Signalled when `depth` drops to 0.
    idle: Notify,
    /// Until when a global 429 pauses every lane.
    paused_until: Mutex<Option<Instant>>,
    closing: AtomicBool,
    workers: Mutex<Vec<JoinHandle<()>>>,
    completed: AtomicU64,
    failed: AtomicU64,
    dead_lettered: AtomicU64,
    rate_limited: AtomicU64,
    retried: AtomicU64,
}

struct Lane {
    state: Mutex<LaneState>,
    /// Wakes the lane's worker: new work, or a spill to look at.
    wake: Notify,
}

#[derive(Default)]
struct LaneState {
    queue: VecDeque<Job>,
    /// Some of this lane's rows wait in the database: the worker feeds itself from
    /// there (in id order) and `submit` leaves new rows there too, until caught up.
    spilled: bool,
    /// Bumped whenever `submit` leaves a row in the database, so the worker knows
    /// whether its last look at the database can have missed one.
    generation: u64,
    /// `submit`s between starting their insert and deciding where the row goes. The
    /// lane never stops being spilled while one is under way: that row may already
    /// have been fed from the database.
    inserting: u32,
    /// Rows finished whose final database write failed: not fed again by this
    /// process (the next start replays them).
    unsettled: HashSet<i64>,
}

struct Job {
    id: i64,
    action: Action,
    /// Transient failures so far.
    attempts: u32,
}

/// How a job ended.
enum Finish {
    /// Discord's final answer: the row is removed.
    Answered(Outcome),
    /// Out of attempts: the row is dead-lettered.
    DeadLetter { attempts: u32, reason: String },
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
    /// Starts the lane workers. Every pending outbox row (left by a crash or a
    /// shutdown) is queued again, oldest first within its lane: that is how a restart
    /// resumes queued work.
    pub async fn start(
        store: Store,
        rest: RestClient,
        config: ExecutorConfig,
    ) -> anyhow::Result<Executor> {
        let config = config.normalized();
        let pending = store
            .outbox_pending_count()
            .await
            .context("reading the Discord outbox")?;
        let lanes = (0..config.lanes)
            .map(|_| Lane {
                // Spilled, so each worker first looks for its rows in the database.
                state: Mutex::new(LaneState {
                    spilled: true,
                    ..LaneState::default()
                }),
                wake: Notify::new(),
            })
            .collect();
        let inner = Arc::new(Inner {
            store,
            rest,
            config,
            lanes,
            waiters: Mutex::new(HashMap::new()),
            depth: AtomicUsize::new(usize::try_from(pending).unwrap_or(usize::MAX)),
            idle: Notify::new(),
            paused_until: Mutex::new(None),
            closing: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            retried: AtomicU64::new(0),
        });
        let workers = (0..inner.lanes.len())
            .map(|lane| tokio::spawn(Arc::clone(&inner).work(lane)))
            .collect();
        *lock(&inner.workers) = workers;
        if pending > 0 {
            tracing::info!(pending, "resuming queued Discord calls");
        }
        Ok(Executor { inner })
    }

    /// Carries out `action`: records it in the outbox, queues it, and waits for
    /// Discord's answer at most `max_wait`. Past that the caller gets
    /// `Unavailable("queued; …")` while the action stays queued and still runs.
    pub async fn run(&self, action: Action) -> Result<ActionOutput, DiscordError> {
        self.submit(action).await?.wait().await
    }

    /// Records `action` in the outbox and queues it, without waiting for Discord: when
    /// this returns, the action is durable and ordered after every action submitted
    /// before it in its lane. [`Pending::wait`] then waits for the answer.
    pub async fn submit(&self, action: Action) -> Result<Pending, DiscordError> {
        if self.inner.closing.load(Ordering::SeqCst) {
            return Err(DiscordError::Unavailable(SHUTTING_DOWN.into()));
        }
        let (sender, receiver) = oneshot::channel();
        // On its own task, so a caller that gives up mid-insert cannot leave the lane's
        // bookkeeping half done.
        let inner = Arc::clone(&self.inner);
        let id = tokio::spawn(async move { inner.accept(action, sender).await })
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
    /// priority path: straight to Discord, past the lanes, retrying a 429 or a
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
            let delay = match self
                .inner
                .rest
                .interaction_callback(interaction_id, token, response)
                .await
            {
                Ok(()) => return Ok(()),
                Err(RestError::RateLimited { retry_after, .. }) => {
                    self.inner.rate_limited.fetch_add(1, Ordering::Relaxed);
                    retry_after
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
                Err(RestError::Final(error)) => return Err(error),
            };
            if Instant::now() + delay >= deadline {
                return Err(DiscordError::Unavailable(
                    "Discord is rate limiting past the interaction's 3-second window".into(),
                ));
            }
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

    /// A call that is not persisted — a read, or anything the caller waits for and can
    /// repeat — with the executor's rate-limit handling: it waits out a global pause,
    /// waits out 429s while the total stays within `max_wait`, and retries a transient
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
        let started = Instant::now();
        let mut attempts = 0;
        let mut backoff = self.inner.config.backoff_base;
        loop {
            self.inner.wait_for_global_limit().await;
            let delay = match call(self.inner.rest.clone()).await {
                Ok(value) => return Ok(value),
                Err(RestError::RateLimited {
                    retry_after,
                    global,
                }) => {
                    self.inner.note_rate_limit(retry_after, global);
                    if started.elapsed() + retry_after > self.inner.config.max_wait {
                        return Err(DiscordError::Unavailable(
                            "Discord is rate limiting; try again later".into(),
                        ));
                    }
                    retry_after
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
                Err(RestError::Final(error)) => return Err(error),
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// Actions accepted and not finished, including those waiting in the database.
    pub fn queue_depth(&self) -> usize {
        self.inner.depth.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> ExecutorStats {
        let inner = &self.inner;
        ExecutorStats {
            completed: inner.completed.load(Ordering::Relaxed),
            failed: inner.failed.load(Ordering::Relaxed),
            dead_lettered: inner.dead_lettered.load(Ordering::Relaxed),
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
    /// cut off mid-flight) stays in the outbox for the next start. Callers still
    /// waiting are told so.
    pub async fn shutdown(&self, deadline: Duration) {
        self.inner.closing.store(true, Ordering::SeqCst);
        let before = self.queue_depth();
        let all_done = tokio::time::timeout(deadline, self.inner.until_idle())
            .await
            .is_ok();
        self.stop_workers().await;
        let remaining = self.queue_depth();
        tracing::info!(
            drained = before.saturating_sub(remaining),
            remaining,
            all_done,
            "Discord executor stopped; what remains stays queued for the next start"
        );
    }

    /// Stops at once, as a crash would: workers are aborted wherever they are, nothing
    /// is drained and nothing is written; pending rows stay in the outbox for the next
    /// start. For tests of crash recovery, and for a hard stop when even a short drain
    /// is not wanted.
    pub async fn abandon(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        self.stop_workers().await;
        tracing::warn!(
            remaining = self.queue_depth(),
            "Discord executor abandoned without draining"
        );
    }

    async fn stop_workers(&self) {
        let workers = std::mem::take(&mut *lock(&self.inner.workers));
        for worker in &workers {
            worker.abort();
        }
        for worker in workers {
            // Cancelled (or, if it had panicked, already gone): either way it is done.
            let _ = worker.await;
        }
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
    /// Writes the row and hands it to its lane (or leaves it in the database when the
    /// lane is full or spilled). Returns the row id.
    async fn accept(
        &self,
        action: Action,
        sender: oneshot::Sender<Outcome>,
    ) -> Result<i64, DiscordError> {
        let key = action.lane_key();
        let lane = &self.lanes[outbox_lane(key, self.config.lanes) as usize];
        let json = serde_json::to_value(&action)
            .map_err(|e| DiscordError::Invalid(format!("cannot record the call: {e}")))?;
        lock(&lane.state).inserting += 1;
        let mut registered = None;
        let inserted = self
            .store
            .outbox_insert(key, &json, |id| {
                // Before the commit: no worker can see the row before its waiter exists.
                lock(&self.waiters).insert(id, sender);
                self.depth.fetch_add(1, Ordering::SeqCst);
                registered = Some(id);
            })
            .await;
        let mut state = lock(&lane.state);
        state.inserting -= 1;
        let result = match inserted {
            Ok(id) => {
                if !state.spilled && state.queue.len() < self.config.lane_capacity {
                    state.queue.push_back(Job {
                        id,
                        action,
                        attempts: 0,
                    });
                } else {
                    state.spilled = true;
                    state.generation += 1;
                }
                Ok(id)
            }
            Err(error) => {
                if let Some(id) = registered {
                    lock(&self.waiters).remove(&id);
                    self.finished_one();
                }
                // A failed commit may still have written the row; a spilled lane looks.
                state.spilled = true;
                state.generation += 1;
                tracing::error!(%error, "cannot write a Discord call to the outbox");
                Err(DiscordError::Unavailable(
                    "cannot queue the Discord call: the database is unavailable".into(),
                ))
            }
        };
        drop(state);
        lane.wake.notify_one();
        result
    }

    /// A lane's worker: runs its queue, feeds it from the database while spilled,
    /// sleeps otherwise.
    async fn work(self: Arc<Self>, index: usize) {
        enum Step {
            Run(Job),
            Refill,
            Sleep,
        }
        let lane = &self.lanes[index];
        loop {
            let step = {
                let mut state = lock(&lane.state);
                match state.queue.pop_front() {
                    Some(job) => Step::Run(job),
                    None if state.spilled => Step::Refill,
                    None => Step::Sleep,
                }
            };
            match step {
                Step::Run(job) => self.process(index, job).await,
                Step::Refill => self.refill(index).await,
                // notify_one stores a permit, so a wake between the check and here is
                // not lost.
                Step::Sleep => lane.wake.notified().await,
            }
        }
    }

    /// Feeds an empty, spilled lane from the database, oldest first, and ends the
    /// spill once the database holds nothing more for it.
    async fn refill(&self, index: usize) {
        let lane = &self.lanes[index];
        let (generation, unsettled) = {
            let state = lock(&lane.state);
            (state.generation, state.unsettled.len())
        };
        let limit = self.config.lane_capacity + unsettled;
        let limit_u32 = u32::try_from(limit).unwrap_or(u32::MAX);
        let rows = match self
            .store
            .outbox_pending(self.config.lanes, index as u32, limit_u32)
            .await
        {
            Ok(rows) => rows,
            Err(error) => {
                tracing::error!(%error, lane = index, "cannot read the Discord outbox; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return;
            }
        };
        let complete = rows.len() < limit;
        let (stalled, unreadable) = {
            let mut state = lock(&lane.state);
            let mut unreadable = Vec::new();
            let mut fed = 0;
            for row in rows {
                if state.unsettled.contains(&row.id) {
                    continue;
                }
                match serde_json::from_value::<Action>(row.action) {
                    Ok(action) => {
                        state.queue.push_back(Job {
                            id: row.id,
                            action,
                            attempts: row.attempts,
                        });
                        fed += 1;
                    }
                    Err(error) => unreadable.push((row.id, row.attempts, error.to_string())),
                }
            }
            // Caught up when the query saw every row of the lane, no row was left in
            // the database since it started, and no insert is still deciding.
            if complete && state.generation == generation && state.inserting == 0 {
                state.spilled = false;
            }
            let stalled = fed == 0 && unreadable.is_empty() && state.spilled;
            (stalled, unreadable)
        };
        for (id, attempts, error) in unreadable {
            let reason = format!("unreadable outbox row: {error}");
            self.finish(
                index,
                id,
                "unknown",
                Finish::DeadLetter { attempts, reason },
            )
            .await;
        }
        if stalled {
            // An insert is still deciding, or a row arrived after the query: wait for
            // its wake-up (or a moment) rather than spin on the database.
            let _ = tokio::time::timeout(Duration::from_millis(50), lane.wake.notified()).await;
        }
    }

    /// Carries out one job to its end: success, final refusal, or dead letter.
    async fn process(&self, lane: usize, job: Job) {
        let nonce = job.id.to_string();
        let kind = job.action.kind();
        let mut attempts = job.attempts;
        let mut backoff = self.config.backoff_base;
        let finish = loop {
            self.wait_for_global_limit().await;
            match job.action.perform(&self.rest, &nonce).await {
                Ok(output) => break Finish::Answered(Ok(output)),
                Err(RestError::Final(error)) => break Finish::Answered(Err(error)),
                Err(RestError::RateLimited {
                    retry_after,
                    global,
                }) => {
                    self.note_rate_limit(retry_after, global);
                    tracing::debug!(
                        kind,
                        id = job.id,
                        retry_after_ms = retry_after.as_millis() as u64,
                        global,
                        "Discord rate limit; waiting"
                    );
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
            }
        };
        self.finish(lane, job.id, kind, finish).await;
    }

    /// Settles a finished row in the database, then tells its caller. The caller hears
    /// only after the row is removed (or dead-lettered), so an answered call is never
    /// replayed.
    async fn finish(&self, lane: usize, id: i64, kind: &'static str, finish: Finish) {
        let (settled, outcome) = match finish {
            Finish::Answered(outcome) => {
                match &outcome {
                    Ok(_) => self.completed.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        tracing::info!(kind, id, %error, "Discord refused a call");
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
        };
        if !settled {
            tracing::error!(
                kind,
                id,
                "cannot settle a finished Discord call in the outbox; it runs again after a restart"
            );
            lock(&self.lanes[lane].state).unsettled.insert(id);
        }
        self.finished_one();
        if let Some(sender) = lock(&self.waiters).remove(&id) {
            // The caller may have stopped listening; the call is done either way.
            let _ = sender.send(outcome);
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

    fn note_rate_limit(&self, retry_after: Duration, global: bool) {
        if global {
            let until = Instant::now() + retry_after;
            let mut paused = lock(&self.paused_until);
            if paused.is_none_or(|p| p < until) {
                *paused = Some(until);
            }
            tracing::warn!(
                retry_after_ms = retry_after.as_millis() as u64,
                "Discord global rate limit; pausing every lane"
            );
        }
        // Counted after the pause is in place, so whoever sees the count sees the pause.
        self.rate_limited.fetch_add(1, Ordering::SeqCst);
    }

    async fn wait_for_global_limit(&self) {
        loop {
            let until = *lock(&self.paused_until);
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
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

        let big = Action::SendMessage {
            guild_id: u64::MAX,
            channel_id: 1 << 63,
            body: serde_json::json!({}),
        };
        let json = serde_json::to_value(&big).unwrap();
        assert_eq!(serde_json::from_value::<Action>(json).unwrap(), big);
        assert_eq!(big.lane_key(), 1 << 63);
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(200));
            assert!((100..=200).contains(&d.as_millis()), "{d:?}");
        }
    }
}
