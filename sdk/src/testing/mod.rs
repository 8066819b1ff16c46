//! An in-memory host for native unit tests.
//!
//! When your feature runs natively (`cargo test`), every capability function
//! ([`messages::send`](crate::messages::send), [`storage::increment`](crate::storage::increment), …)
//! talks to the [`MockHost`] installed on the current thread instead of the real
//! host. The mock keeps storage and score boards with the real host's semantics,
//! records every effect as a plain [`Effect`] value, and can deny or fail any
//! capability so you can test your degradation paths.
//!
//! ```
//! use townes_sdk::{Capability, Error, messages, storage, testing::MockHost};
//!
//! let host = MockHost::new(); // installed for this thread until dropped
//! messages::send(42, "hi").unwrap();
//! assert_eq!(host.sent_messages()[0].0, 42);
//! assert_eq!(host.sent_messages()[0].1.content.as_deref(), Some("hi"));
//!
//! assert_eq!(storage::increment("n", 2), Ok(2));
//! host.deny(Capability::Storage);
//! assert_eq!(storage::increment("n", 2), Err(Error::Denied(Capability::Storage)));
//! ```
//!
//! On `wasm32` the capability functions always call the real host; `MockHost`
//! still compiles there (so test code type-checks for every target) but has no
//! effect.
//!
//! Calling a capability function natively with no `MockHost` installed panics
//! with a message that says so. Logging without a mock prints to stderr.

#![cfg_attr(target_arch = "wasm32", allow(dead_code, unused_imports))]

mod http;
#[cfg(not(target_arch = "wasm32"))]
mod schema;
#[cfg(test)]
mod tests;

#[cfg(not(target_arch = "wasm32"))]
pub use schema::{call_route, route_problems, schema_problems};

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use http::http_send;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use townes_limits as limits;
use townes_limits::storage;

use crate::{
    Capability, ChannelSpec, Context, Entry, Error, Feature, FileInfo, GuildInfo, LogLevel, Member,
    MessageBody, PastMessage, PermissionOverwrite, ScheduledJob, ScoreEntry, Snowflake,
};

/// The guild id of a fresh [`MockHost`] (see [`MockHost::context`]).
pub const GUILD_ID: Snowflake = 1000;
/// The bot's user id in a fresh [`MockHost`].
pub const BOT_USER_ID: Snowflake = 1;
/// The guild owner's user id in a fresh [`MockHost`].
pub const OWNER_ID: Snowflake = 2;
/// Ids the mock hands out for new messages, channels, … start here.
pub const FIRST_ID: Snowflake = 1_000_000;

/// Something a feature did through a capability, as recorded by [`MockHost`].
///
/// Only successful calls are recorded. Storage is not an effect: inspect it with
/// [`MockHost::storage_value`] and [`MockHost::board`].
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// `messages::send`.
    MessageSent {
        /// The id the mock gave the message.
        id: Snowflake,
        /// Where it was sent.
        channel_id: Snowflake,
        /// What was sent.
        body: MessageBody,
    },
    /// `messages::edit`.
    MessageEdited {
        /// The channel.
        channel_id: Snowflake,
        /// The edited message.
        message_id: Snowflake,
        /// The new body.
        body: MessageBody,
    },
    /// `messages::delete`.
    MessageDeleted {
        /// The channel.
        channel_id: Snowflake,
        /// The deleted message.
        message_id: Snowflake,
    },
    /// `messages::react`.
    Reacted {
        /// The channel.
        channel_id: Snowflake,
        /// The message reacted to.
        message_id: Snowflake,
        /// The emoji.
        emoji: String,
    },
    /// `members::send_dm`.
    DmSent {
        /// The id the mock gave the message.
        id: Snowflake,
        /// The recipient.
        user_id: Snowflake,
        /// What was sent.
        body: MessageBody,
    },
    /// `roles::add`.
    RoleAdded {
        /// The member.
        user_id: Snowflake,
        /// The role.
        role_id: Snowflake,
        /// The audit-log reason.
        reason: Option<String>,
    },
    /// `roles::remove`.
    RoleRemoved {
        /// The member.
        user_id: Snowflake,
        /// The role.
        role_id: Snowflake,
        /// The audit-log reason.
        reason: Option<String>,
    },
    /// `channels::create`.
    ChannelCreated {
        /// The id the mock gave the channel.
        id: Snowflake,
        /// What was asked for.
        spec: ChannelSpec,
    },
    /// `channels::delete`.
    ChannelDeleted {
        /// The channel.
        channel_id: Snowflake,
    },
    /// `channels::set_overwrite`.
    OverwriteSet {
        /// The channel.
        channel_id: Snowflake,
        /// The overwrite.
        overwrite: PermissionOverwrite,
    },
    /// `moderation::kick`.
    Kicked {
        /// The member.
        user_id: Snowflake,
        /// The audit-log reason.
        reason: Option<String>,
    },
    /// `moderation::ban`.
    Banned {
        /// The user.
        user_id: Snowflake,
        /// How much of their history was deleted.
        delete_message_seconds: u32,
        /// The audit-log reason.
        reason: Option<String>,
    },
    /// `moderation::unban`.
    Unbanned {
        /// The user.
        user_id: Snowflake,
        /// The audit-log reason.
        reason: Option<String>,
    },
    /// `moderation::timeout`.
    TimedOut {
        /// The member.
        user_id: Snowflake,
        /// How long; 0 lifts a timeout.
        seconds: u32,
        /// The audit-log reason.
        reason: Option<String>,
    },
    /// `moderation::purge`.
    Purged {
        /// The channel.
        channel_id: Snowflake,
        /// How many messages were asked for (and, in the mock, deleted).
        count: u32,
    },
    /// `audit::write`.
    Audit {
        /// The action.
        action: String,
        /// The details.
        details: String,
    },
    /// `files::put`.
    FileStored {
        /// The file's name.
        name: String,
        /// Its size.
        bytes: u64,
    },
    /// `live::publish`.
    Live {
        /// The event's kind.
        kind: String,
        /// Its data, as JSON.
        data: String,
    },
    /// `log::write` and friends.
    Log {
        /// The level.
        level: LogLevel,
        /// The line.
        message: String,
    },
    /// `scheduler::schedule`.
    JobScheduled {
        /// The job id the mock handed out.
        id: String,
        /// The job name.
        name: String,
        /// The payload.
        payload: String,
        /// The delay asked for.
        delay_seconds: u32,
    },
    /// `scheduler::cancel` of a pending job.
    JobCancelled {
        /// The job id.
        id: String,
    },
}

/// The mock's state, shared by the [`MockHost`] handle and the thread-local slot.
#[derive(Default)]
pub(crate) struct State {
    config: String,
    members: BTreeMap<Snowflake, Member>,
    guild: Option<GuildInfo>,
    kv: BTreeMap<String, String>,
    history: BTreeMap<Snowflake, Vec<PastMessage>>,
    files: BTreeMap<String, (String, Vec<u8>)>,
    attachment_bytes: BTreeMap<Snowflake, Vec<u8>>,
    member_reactions: BTreeMap<(Snowflake, String), BTreeSet<Snowflake>>,
    now: Option<u64>,
    boards: BTreeMap<String, BTreeMap<Snowflake, i64>>,
    failures: BTreeMap<Capability, Error>,
    blocked_dms: BTreeSet<Snowflake>,
    bans: BTreeSet<Snowflake>,
    quota: Option<(u64, u64)>,
    call_budget: Option<u64>,
    calls: u64,
    invoker_permissions: u64,
    next_id: Snowflake,
    next_job: u64,
    jobs: BTreeMap<String, ScheduledJob>,
    effects: Vec<Effect>,
    http: http::MockHttp,
    ai_denied: bool,
    ai_answers: std::collections::VecDeque<Result<crate::ai::ChatAnswer, crate::ai::AiError>>,
    ai_requests: Vec<crate::ai::ChatRequest>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

/// An in-memory host for the current thread. See the [module docs](self).
///
/// `MockHost::new()` installs it for the current thread (replacing any other);
/// dropping it uninstalls it. Keep it alive for the whole test:
/// `let host = MockHost::new();` — not `let _ = MockHost::new();`, which drops it
/// at once.
///
/// Semantics match the real host: storage `increment` and `board_increment`
/// treat a missing value as 0; board ranks are 1-based with equal scores ordered
/// by subject id ascending; `list_prefix` is in key order and takes a limit of
/// 1-1000, `board_top` one of 1-100; messages are checked against Discord's
/// limits ([`MessageBody::validate`]). A denied or failed capability returns its
/// error without effect.
pub struct MockHost {
    state: Rc<RefCell<State>>,
}

impl Default for MockHost {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for MockHost {
    fn drop(&mut self) {
        // `try_with`: the thread-local may already be gone during thread teardown.
        let _ = CURRENT.try_with(|c| {
            let mut current = c.borrow_mut();
            if current.as_ref().is_some_and(|s| Rc::ptr_eq(s, &self.state)) {
                *current = None;
            }
        });
    }
}

impl MockHost {
    /// A fresh mock with every capability granted, config `{}`, no members,
    /// empty storage, installed for the current thread.
    pub fn new() -> Self {
        let state = Rc::new(RefCell::new(State {
            config: "{}".into(),
            next_id: FIRST_ID,
            ..State::default()
        }));
        CURRENT.with(|c| *c.borrow_mut() = Some(state.clone()));
        MockHost { state }
    }

    /// A mock set up like the host after installing `F` in a guild where the
    /// admin approved everything it asks for: the config is `F`'s default
    /// config, and every capability the manifest does not request is denied
    /// (except `config` and `log`, which are always granted). Deny optional
    /// capabilities with [`deny`](Self::deny) to test how `F` copes.
    pub fn for_feature<F: Feature>() -> Self {
        let manifest = F::describe();
        let host = Self::new();
        host.set_config_text(&manifest.default_config);
        for cap in Capability::ALL {
            if !cap.always_granted() && manifest.request(cap).is_none() {
                host.deny(cap);
            }
        }
        host
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.borrow_mut())
    }

    /// `ai` is not approved: [`crate::ai::chat`] returns `Denied`.
    pub fn deny_ai(&self) {
        self.with(|s| s.ai_denied = true);
    }

    /// What the next [`crate::ai::chat`] returns (answers queue up, oldest
    /// first). With none queued the mock answers `mock answer: <the last
    /// user message>`, counting a token per four characters.
    pub fn queue_ai(&self, result: Result<crate::ai::ChatAnswer, crate::ai::AiError>) {
        self.with(|s| s.ai_answers.push_back(result));
    }

    /// Every request [`crate::ai::chat`] received, oldest first.
    pub fn ai_requests(&self) -> Vec<crate::ai::ChatRequest> {
        self.with(|s| s.ai_requests.clone())
    }

    /// The context handlers get in this mock's guild.
    pub fn context(&self) -> Context {
        Context::new(self.guild_info().id, BOT_USER_ID)
    }

    // ------------------------------------------------------------- set-up

    /// Sets the feature's config (what `config::get` returns).
    pub fn set_config(&self, config: serde_json::Value) {
        self.set_config_text(&config.to_string());
    }

    /// Sets the feature's config as JSON text.
    pub fn set_config_text(&self, config: &str) {
        self.with(|s| s.config = config.to_string());
    }

    /// Adds (or replaces) a member, so `members::get` finds it.
    pub fn add_member(&self, member: impl Into<Member>) {
        let member = member.into();
        self.with(|s| s.members.insert(member.user.id, member));
    }

    /// Sets what `members::guild` returns (and the guild id of
    /// [`context`](Self::context)). Without it the guild is [`GUILD_ID`], "Test
    /// Guild", owned by [`OWNER_ID`], with as many members as were added.
    pub fn set_guild(&self, guild: GuildInfo) {
        self.with(|s| s.guild = Some(guild));
    }

    /// Denies `capability`: its functions return `Err(Error::Denied(capability))`.
    /// (Logging is never denied.)
    pub fn deny(&self, capability: Capability) {
        self.fail(capability, Error::Denied(capability));
    }

    /// Makes every call of `capability` fail with `error` (for example
    /// `Error::Unavailable` to simulate a Discord outage).
    pub fn fail(&self, capability: Capability, error: Error) {
        self.with(|s| s.failures.insert(capability, error));
    }

    /// Undoes [`deny`](Self::deny) and [`fail`](Self::fail).
    pub fn allow(&self, capability: Capability) {
        self.with(|s| s.failures.remove(&capability));
    }

    /// `user_id` does not accept DMs: `members::send_dm` to them returns
    /// `Error::Unavailable`.
    pub fn block_dms(&self, user_id: Snowflake) {
        self.with(|s| s.blocked_dms.insert(user_id));
    }

    /// Limits storage to `max_bytes` (keys + values; a board entry counts its
    /// board name + 8 bytes, as on the host) and `max_rows` (keys + board entries). A write past
    /// it returns `Error::QuotaExceeded`.
    pub fn set_storage_quota(&self, max_bytes: u64, max_rows: u64) {
        self.with(|s| s.quota = Some((max_bytes, max_rows)));
    }

    /// Allows `calls` more capability calls (logging excluded); after that every
    /// call returns `Error::QuotaExceeded("host calls")`, like the real host's
    /// per-invocation budget.
    pub fn set_call_budget(&self, calls: u64) {
        self.with(|s| s.call_budget = Some(s.calls + calls));
    }

    /// Sets what `invocation::invoker_permissions` answers (0 until set): the
    /// permissions of the member whose command or click is being handled.
    pub fn set_invoker_permissions(&self, permissions: u64) {
        self.with(|s| s.invoker_permissions = permissions);
    }

    /// Removes the call budget.
    pub fn clear_call_budget(&self) {
        self.with(|s| s.call_budget = None);
    }

    /// Adds a message to a channel's history (what `history::read` returns,
    /// newest first).
    pub fn post_history(&self, channel_id: Snowflake, message: PastMessage) {
        self.with(|s| s.history.entry(channel_id).or_default().push(message));
    }

    /// The bytes Discord serves for attachment `attachment_id` (of a message
    /// added with [`post_history`](Self::post_history)), which
    /// `files::copy_attachment` copies.
    pub fn attachment_bytes(&self, attachment_id: Snowflake, data: &[u8]) {
        self.with(|s| s.attachment_bytes.insert(attachment_id, data.to_vec()));
    }

    /// Stops the clock [`time::now`](crate::time::now) reads at `unix`
    /// seconds (it reads the real clock until a test sets one).
    pub fn set_now(&self, unix: u64) {
        self.with(|s| s.now = Some(unix));
    }

    /// Members' reactions on a message: `user_ids` reacted to `message_id`
    /// with `emoji` (what `messages::reactions` reads), replacing any.
    pub fn set_reactions(&self, message_id: Snowflake, emoji: &str, user_ids: &[Snowflake]) {
        self.with(|s| {
            s.member_reactions.insert(
                (message_id, emoji.to_string()),
                user_ids.iter().copied().collect(),
            )
        });
    }

    /// Seeds storage: sets `key` to `value` as if the feature had.
    pub fn set_storage_value(&self, key: &str, value: &str) {
        self.with(|s| s.kv.insert(key.to_string(), value.to_string()));
    }

    /// Seeds a score board.
    pub fn set_score(&self, board: &str, subject: Snowflake, score: i64) {
        self.with(|s| {
            s.boards
                .entry(board.to_string())
                .or_default()
                .insert(subject, score)
        });
    }

    // --------------------------------------------------------- inspection

    /// How many capability calls (logging excluded) were made, including
    /// failed ones.
    pub fn calls(&self) -> u64 {
        self.with(|s| s.calls)
    }

    /// Every effect so far, in order.
    pub fn effects(&self) -> Vec<Effect> {
        self.with(|s| s.effects.clone())
    }

    /// Every effect so far, in order, clearing the record.
    pub fn take_effects(&self) -> Vec<Effect> {
        self.with(|s| std::mem::take(&mut s.effects))
    }

    /// Forgets the effects recorded so far (state such as storage stays).
    pub fn clear_effects(&self) {
        self.with(|s| s.effects.clear());
    }

    fn collect<T>(&self, f: impl FnMut(&Effect) -> Option<T>) -> Vec<T> {
        self.with(|s| s.effects.iter().filter_map(f).collect())
    }

    /// `(channel id, body)` of every message sent.
    pub fn sent_messages(&self) -> Vec<(Snowflake, MessageBody)> {
        self.collect(|e| match e {
            Effect::MessageSent {
                channel_id, body, ..
            } => Some((*channel_id, body.clone())),
            _ => None,
        })
    }

    /// The content of every message sent (`""` for messages without text).
    pub fn sent_texts(&self) -> Vec<String> {
        self.sent_messages()
            .into_iter()
            .map(|(_, b)| b.content.unwrap_or_default())
            .collect()
    }

    /// `(channel id, message id, new body)` of every edit.
    pub fn edited_messages(&self) -> Vec<(Snowflake, Snowflake, MessageBody)> {
        self.collect(|e| match e {
            Effect::MessageEdited {
                channel_id,
                message_id,
                body,
            } => Some((*channel_id, *message_id, body.clone())),
            _ => None,
        })
    }

    /// `(channel id, message id)` of every deleted message.
    pub fn deleted_messages(&self) -> Vec<(Snowflake, Snowflake)> {
        self.collect(|e| match e {
            Effect::MessageDeleted {
                channel_id,
                message_id,
            } => Some((*channel_id, *message_id)),
            _ => None,
        })
    }

    /// `(channel id, message id, emoji)` of every reaction the bot added.
    pub fn reactions(&self) -> Vec<(Snowflake, Snowflake, String)> {
        self.collect(|e| match e {
            Effect::Reacted {
                channel_id,
                message_id,
                emoji,
            } => Some((*channel_id, *message_id, emoji.clone())),
            _ => None,
        })
    }

    /// `(user id, body)` of every DM sent.
    pub fn dms(&self) -> Vec<(Snowflake, MessageBody)> {
        self.collect(|e| match e {
            Effect::DmSent { user_id, body, .. } => Some((*user_id, body.clone())),
            _ => None,
        })
    }

    /// `(user id, role id)` of every role given.
    pub fn roles_added(&self) -> Vec<(Snowflake, Snowflake)> {
        self.collect(|e| match e {
            Effect::RoleAdded {
                user_id, role_id, ..
            } => Some((*user_id, *role_id)),
            _ => None,
        })
    }

    /// `(user id, role id)` of every role taken.
    pub fn roles_removed(&self) -> Vec<(Snowflake, Snowflake)> {
        self.collect(|e| match e {
            Effect::RoleRemoved {
                user_id, role_id, ..
            } => Some((*user_id, *role_id)),
            _ => None,
        })
    }

    /// `(channel id, spec)` of every channel created.
    pub fn channels_created(&self) -> Vec<(Snowflake, ChannelSpec)> {
        self.collect(|e| match e {
            Effect::ChannelCreated { id, spec } => Some((*id, spec.clone())),
            _ => None,
        })
    }

    /// Every kick, ban, timeout and purge, in order.
    pub fn moderation_actions(&self) -> Vec<Effect> {
        self.collect(|e| match e {
            Effect::Kicked { .. }
            | Effect::Banned { .. }
            | Effect::Unbanned { .. }
            | Effect::TimedOut { .. }
            | Effect::Purged { .. } => Some(e.clone()),
            _ => None,
        })
    }

    /// `(action, details)` of every audit entry.
    pub fn audit_entries(&self) -> Vec<(String, String)> {
        self.collect(|e| match e {
            Effect::Audit { action, details } => Some((action.clone(), details.clone())),
            _ => None,
        })
    }

    /// A file the feature stored: `(content type, bytes)`.
    pub fn file(&self, name: &str) -> Option<(String, Vec<u8>)> {
        self.with(|s| s.files.get(name).cloned())
    }

    /// `(kind, data)` of every live event published.
    pub fn live_events(&self) -> Vec<(String, serde_json::Value)> {
        self.collect(|e| match e {
            Effect::Live { kind, data } => {
                Some((kind.clone(), serde_json::from_str(data).unwrap_or_default()))
            }
            _ => None,
        })
    }

    /// `(level, line)` of every log line.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.collect(|e| match e {
            Effect::Log { level, message } => Some((*level, message.clone())),
            _ => None,
        })
    }

    /// Jobs scheduled and not cancelled, as `on_schedule` would receive them, in
    /// job id order. (Delays are in [`Effect::JobScheduled`].)
    pub fn pending_jobs(&self) -> Vec<ScheduledJob> {
        self.with(|s| s.jobs.values().cloned().collect())
    }

    /// Removes a pending job, as the host does when it runs it.
    pub fn take_job(&self, id: &str) -> Option<ScheduledJob> {
        self.with(|s| s.jobs.remove(id))
    }

    /// The member `user_id` as the mock has it now (roles follow `roles::add`
    /// and `roles::remove`; kicked and banned members are gone).
    pub fn member(&self, user_id: Snowflake) -> Option<Member> {
        self.with(|s| s.members.get(&user_id).cloned())
    }

    /// The stored value of `key`.
    pub fn storage_value(&self, key: &str) -> Option<String> {
        self.with(|s| s.kv.get(key).cloned())
    }

    /// Every stored `(key, value)`, in key order.
    pub fn storage_entries(&self) -> Vec<(String, String)> {
        self.with(|s| s.kv.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// A whole score board, best first, with ranks.
    pub fn board(&self, board: &str) -> Vec<ScoreEntry> {
        self.with(|s| s.ranked(board))
    }

    /// The guild as `members::guild` returns it.
    pub fn guild_info(&self) -> GuildInfo {
        self.with(|s| s.guild_info())
    }
}

impl State {
    pub(crate) fn guild_info(&self) -> GuildInfo {
        self.guild.clone().unwrap_or_else(|| GuildInfo {
            id: GUILD_ID,
            name: "Test Guild".into(),
            member_count: self.members.len() as u32,
            owner_id: OWNER_ID,
        })
    }

    fn ranked(&self, board: &str) -> Vec<ScoreEntry> {
        let mut entries: Vec<(Snowflake, i64)> = self
            .boards
            .get(board)
            .map(|b| b.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        entries
            .into_iter()
            .enumerate()
            .map(|(i, (subject, score))| ScoreEntry {
                subject,
                score,
                rank: i as u32 + 1,
            })
            .collect()
    }
}

/// The capability implementations behind the mock (native targets only).
#[cfg(not(target_arch = "wasm32"))]
impl State {
    fn new_id(&mut self) -> Snowflake {
        self.next_id += 1;
        self.next_id
    }

    fn usage(&self) -> (u64, u64) {
        let mut bytes = 0u64;
        let mut rows = 0u64;
        for (k, v) in &self.kv {
            bytes += storage::kv_row_bytes(k, v);
            rows += 1;
        }
        for (name, board) in &self.boards {
            bytes += storage::board_row_bytes(name) * board.len() as u64;
            rows += board.len() as u64;
        }
        (bytes, rows)
    }

    /// Checks that growing storage by `bytes` and `rows` stays within the quota.
    fn check_quota(&self, bytes: i64, rows: i64) -> Result<(), Error> {
        let Some((max_bytes, max_rows)) = self.quota else {
            return Ok(());
        };
        let (used_bytes, used_rows) = self.usage();
        if rows > 0 && used_rows as i64 + rows > max_rows as i64 {
            return Err(Error::QuotaExceeded(format!(
                "storage rows: {max_rows} allowed"
            )));
        }
        if bytes > 0 && used_bytes as i64 + bytes > max_bytes as i64 {
            return Err(Error::QuotaExceeded(format!(
                "storage bytes: {max_bytes} allowed"
            )));
        }
        Ok(())
    }

    // messages

    pub(crate) fn send_message(
        &mut self,
        channel_id: Snowflake,
        body: MessageBody,
    ) -> Result<Snowflake, Error> {
        body.validate()?;
        let id = self.new_id();
        self.effects.push(Effect::MessageSent {
            id,
            channel_id,
            body,
        });
        Ok(id)
    }

    pub(crate) fn edit_message(
        &mut self,
        channel_id: Snowflake,
        message_id: Snowflake,
        body: MessageBody,
    ) -> Result<(), Error> {
        body.validate()?;
        self.effects.push(Effect::MessageEdited {
            channel_id,
            message_id,
            body,
        });
        Ok(())
    }

    pub(crate) fn delete_message(
        &mut self,
        channel_id: Snowflake,
        message_id: Snowflake,
    ) -> Result<(), Error> {
        self.effects.push(Effect::MessageDeleted {
            channel_id,
            message_id,
        });
        Ok(())
    }

    pub(crate) fn react(
        &mut self,
        channel_id: Snowflake,
        message_id: Snowflake,
        emoji: &str,
    ) -> Result<(), Error> {
        limits::message::check_emoji(emoji)?;
        self.effects.push(Effect::Reacted {
            channel_id,
            message_id,
            emoji: emoji.to_string(),
        });
        Ok(())
    }

    /// Reactions are kept by message id alone (ids are unique across channels).
    pub(crate) fn list_reactions(
        &mut self,
        _channel_id: Snowflake,
        message_id: Snowflake,
        emoji: &str,
        after: Option<Snowflake>,
        limit: u32,
    ) -> Result<Vec<Snowflake>, Error> {
        limits::message::check_emoji(emoji)?;
        if !(1..=100).contains(&limit) {
            return Err(Error::InvalidArgument(format!(
                "messages.reactions: limit {limit}; read 1 to 100 at a time and page with `after`"
            )));
        }
        Ok(self
            .member_reactions
            .get(&(message_id, emoji.to_string()))
            .into_iter()
            .flatten()
            .copied()
            .filter(|user| after.is_none_or(|a| *user > a))
            .take(limit as usize)
            .collect())
    }

    // members

    pub(crate) fn get_member(&mut self, user_id: Snowflake) -> Result<Member, Error> {
        self.members
            .get(&user_id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("member {user_id}")))
    }

    pub(crate) fn send_dm(
        &mut self,
        user_id: Snowflake,
        body: MessageBody,
    ) -> Result<Snowflake, Error> {
        if self.blocked_dms.contains(&user_id) {
            return Err(Error::Unavailable(format!(
                "user {user_id} does not accept direct messages"
            )));
        }
        body.validate()?;
        let id = self.new_id();
        self.effects.push(Effect::DmSent { id, user_id, body });
        Ok(id)
    }

    // roles

    pub(crate) fn add_role(
        &mut self,
        user_id: Snowflake,
        role_id: Snowflake,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        if let Some(m) = self.members.get_mut(&user_id)
            && !m.roles.contains(&role_id)
        {
            m.roles.push(role_id);
        }
        self.effects.push(Effect::RoleAdded {
            user_id,
            role_id,
            reason: reason.map(str::to_string),
        });
        Ok(())
    }

    pub(crate) fn remove_role(
        &mut self,
        user_id: Snowflake,
        role_id: Snowflake,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        if let Some(m) = self.members.get_mut(&user_id) {
            m.roles.retain(|r| *r != role_id);
        }
        self.effects.push(Effect::RoleRemoved {
            user_id,
            role_id,
            reason: reason.map(str::to_string),
        });
        Ok(())
    }

    // channels

    pub(crate) fn create_channel(&mut self, spec: &ChannelSpec) -> Result<Snowflake, Error> {
        limits::channels::check_spec(&spec.name, spec.topic.as_deref(), spec.overwrites.len())?;
        let id = self.new_id();
        self.effects.push(Effect::ChannelCreated {
            id,
            spec: spec.clone(),
        });
        Ok(id)
    }

    pub(crate) fn delete_channel(&mut self, channel_id: Snowflake) -> Result<(), Error> {
        self.effects.push(Effect::ChannelDeleted { channel_id });
        Ok(())
    }

    pub(crate) fn set_overwrite(
        &mut self,
        channel_id: Snowflake,
        overwrite: PermissionOverwrite,
    ) -> Result<(), Error> {
        self.effects.push(Effect::OverwriteSet {
            channel_id,
            overwrite,
        });
        Ok(())
    }

    // moderation

    pub(crate) fn kick(&mut self, user_id: Snowflake, reason: Option<&str>) -> Result<(), Error> {
        limits::moderation::check_reason(reason)?;
        self.members.remove(&user_id);
        self.effects.push(Effect::Kicked {
            user_id,
            reason: reason.map(str::to_string),
        });
        Ok(())
    }

    pub(crate) fn ban(
        &mut self,
        user_id: Snowflake,
        delete_message_seconds: u32,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        limits::moderation::check_ban_delete(delete_message_seconds)?;
        limits::moderation::check_reason(reason)?;
        self.members.remove(&user_id);
        self.bans.insert(user_id);
        self.effects.push(Effect::Banned {
            user_id,
            delete_message_seconds,
            reason: reason.map(str::to_string),
        });
        Ok(())
    }

    pub(crate) fn unban(&mut self, user_id: Snowflake, reason: Option<&str>) -> Result<(), Error> {
        limits::moderation::check_reason(reason)?;
        if !self.bans.remove(&user_id) {
            return Err(Error::NotFound(format!("ban of user {user_id}")));
        }
        self.effects.push(Effect::Unbanned {
            user_id,
            reason: reason.map(str::to_string),
        });
        Ok(())
    }

    pub(crate) fn timeout(
        &mut self,
        user_id: Snowflake,
        seconds: u32,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        limits::moderation::check_timeout(seconds)?;
        limits::moderation::check_reason(reason)?;
        self.effects.push(Effect::TimedOut {
            user_id,
            seconds,
            reason: reason.map(str::to_string),
        });
        Ok(())
    }

    pub(crate) fn purge(&mut self, channel_id: Snowflake, count: u32) -> Result<u32, Error> {
        limits::moderation::check_purge(count)?;
        self.effects.push(Effect::Purged { channel_id, count });
        Ok(count)
    }

    // storage

    pub(crate) fn kv_get(&mut self, key: &str) -> Result<Option<String>, Error> {
        storage::check_key(key)?;
        Ok(self.kv.get(key).cloned())
    }

    pub(crate) fn kv_set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        storage::check_key(key)?;
        storage::check_value(value)?;
        let new = storage::kv_row_bytes(key, value) as i64;
        let (bytes, rows) = match self.kv.get(key) {
            Some(old) => (new - storage::kv_row_bytes(key, old) as i64, 0),
            None => (new, 1),
        };
        self.check_quota(bytes, rows)?;
        self.kv.insert(key.to_string(), value.to_string());
        Ok(())
    }

    pub(crate) fn kv_set_if(
        &mut self,
        key: &str,
        expected: Option<&str>,
        value: &str,
    ) -> Result<bool, Error> {
        storage::check_key(key)?;
        if self.kv.get(key).map(String::as_str) != expected {
            return Ok(false);
        }
        self.kv_set(key, value)?;
        Ok(true)
    }

    pub(crate) fn kv_delete(&mut self, key: &str) -> Result<bool, Error> {
        storage::check_key(key)?;
        Ok(self.kv.remove(key).is_some())
    }

    pub(crate) fn kv_increment(&mut self, key: &str, delta: i64) -> Result<i64, Error> {
        storage::check_key(key)?;
        let current = match self.kv.get(key) {
            None => 0,
            Some(v) => v.trim().parse::<i64>().map_err(|_| {
                Error::InvalidArgument(format!("value of {key:?} is not an integer"))
            })?,
        };
        let new = current
            .checked_add(delta)
            .ok_or_else(|| Error::InvalidArgument(format!("increment of {key:?} overflows")))?;
        self.kv_set(key, &new.to_string())?;
        Ok(new)
    }

    pub(crate) fn kv_list_prefix(&mut self, prefix: &str, limit: u32) -> Result<Vec<Entry>, Error> {
        storage::check_limit(limit, storage::MAX_LIST)?;
        Ok(self
            .kv
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit as usize)
            .map(|(k, v)| Entry {
                key: k.clone(),
                value: v.clone(),
            })
            .collect())
    }

    fn board_write(&mut self, board: &str, subject: Snowflake, score: i64) -> Result<(), Error> {
        storage::check_board(board)?;
        let exists = self
            .boards
            .get(board)
            .is_some_and(|b| b.contains_key(&subject));
        if !exists {
            self.check_quota(storage::board_row_bytes(board) as i64, 1)?;
        }
        self.boards
            .entry(board.to_string())
            .or_default()
            .insert(subject, score);
        Ok(())
    }

    pub(crate) fn board_increment(
        &mut self,
        board: &str,
        subject: Snowflake,
        delta: i64,
    ) -> Result<i64, Error> {
        let current = self
            .boards
            .get(board)
            .and_then(|b| b.get(&subject))
            .copied()
            .unwrap_or(0);
        let new = current
            .checked_add(delta)
            .ok_or_else(|| Error::invalid(format!("score of {subject} on {board:?} overflows")))?;
        self.board_write(board, subject, new)?;
        Ok(new)
    }

    pub(crate) fn board_set(
        &mut self,
        board: &str,
        subject: Snowflake,
        score: i64,
    ) -> Result<(), Error> {
        self.board_write(board, subject, score)
    }

    pub(crate) fn board_remove(&mut self, board: &str, subject: Snowflake) -> Result<bool, Error> {
        storage::check_board(board)?;
        let Some(b) = self.boards.get_mut(board) else {
            return Ok(false);
        };
        let existed = b.remove(&subject).is_some();
        if b.is_empty() {
            self.boards.remove(board);
        }
        Ok(existed)
    }

    pub(crate) fn board_top(&mut self, board: &str, limit: u32) -> Result<Vec<ScoreEntry>, Error> {
        storage::check_board(board)?;
        storage::check_limit(limit, storage::MAX_TOP)?;
        let mut ranked = self.ranked(board);
        ranked.truncate(limit as usize);
        Ok(ranked)
    }

    pub(crate) fn board_rank(
        &mut self,
        board: &str,
        subject: Snowflake,
    ) -> Result<Option<ScoreEntry>, Error> {
        storage::check_board(board)?;
        Ok(self
            .ranked(board)
            .into_iter()
            .find(|e| e.subject == subject))
    }

    // config, scheduler, audit

    pub(crate) fn config_text(&mut self) -> String {
        self.config.clone()
    }

    pub(crate) fn schedule(
        &mut self,
        name: &str,
        payload: &str,
        delay_seconds: u32,
    ) -> Result<String, Error> {
        limits::scheduler::check_job(name, payload, delay_seconds)?;
        let delay_seconds = limits::scheduler::effective_delay(delay_seconds);
        self.next_job += 1;
        let id = format!("job-{}", self.next_job);
        self.jobs
            .insert(id.clone(), ScheduledJob::new(id.clone(), name, payload));
        self.effects.push(Effect::JobScheduled {
            id: id.clone(),
            name: name.to_string(),
            payload: payload.to_string(),
            delay_seconds,
        });
        Ok(id)
    }

    pub(crate) fn cancel(&mut self, job_id: &str) -> Result<bool, Error> {
        let existed = self.jobs.remove(job_id).is_some();
        if existed {
            self.effects.push(Effect::JobCancelled {
                id: job_id.to_string(),
            });
        }
        Ok(existed)
    }

    pub(crate) fn put_file(
        &mut self,
        name: &str,
        content_type: &str,
        data: &[u8],
    ) -> Result<FileInfo, Error> {
        limits::files::check_name(name)?;
        limits::files::check_content_type(content_type)?;
        self.files
            .insert(name.to_string(), (content_type.to_string(), data.to_vec()));
        self.effects.push(Effect::FileStored {
            name: name.to_string(),
            bytes: data.len() as u64,
        });
        Ok(mock_file_info(name, content_type, data.len()))
    }

    pub(crate) fn get_file(&mut self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        limits::files::check_name(name)?;
        Ok(self.files.get(name).map(|(_, data)| data.clone()))
    }

    pub(crate) fn delete_file(&mut self, name: &str) -> Result<bool, Error> {
        limits::files::check_name(name)?;
        Ok(self.files.remove(name).is_some())
    }

    pub(crate) fn list_files(&mut self, prefix: &str, limit: u32) -> Result<Vec<FileInfo>, Error> {
        if !(1..=limits::files::MAX_LIST).contains(&limit) {
            return Err(Error::InvalidArgument(format!(
                "files.list-prefix: limit {limit}; list 1 to {} at a time",
                limits::files::MAX_LIST
            )));
        }
        Ok(self
            .files
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .take(limit as usize)
            .map(|(name, (content_type, data))| mock_file_info(name, content_type, data.len()))
            .collect())
    }

    pub(crate) fn link_file(
        &mut self,
        name: &str,
        expires_in_seconds: u32,
    ) -> Result<String, Error> {
        limits::files::check_name(name)?;
        limits::files::check_link_seconds(expires_in_seconds)?;
        if !self.files.contains_key(name) {
            return Err(Error::NotFound(format!("file `{name}`")));
        }
        Ok(format!(
            "https://files.mock.invalid/{name}?expires_in={expires_in_seconds}"
        ))
    }

    pub(crate) fn copy_attachment(
        &mut self,
        name: &str,
        channel_id: Snowflake,
        message_id: Snowflake,
        attachment_id: Snowflake,
    ) -> Result<FileInfo, Error> {
        for needed in [Capability::Messages, Capability::MessageContent] {
            if let Some(error) = self.failures.get(&needed) {
                return Err(error.clone());
            }
        }
        let attachment = self
            .history
            .get(&channel_id)
            .into_iter()
            .flatten()
            .find(|m| m.id == message_id)
            .ok_or_else(|| Error::NotFound(format!("message {message_id}")))?
            .attachments
            .iter()
            .find(|a| a.id == attachment_id)
            .ok_or_else(|| Error::NotFound(format!("attachment {attachment_id}")))?
            .clone();
        let data = self
            .attachment_bytes
            .get(&attachment_id)
            .cloned()
            .ok_or_else(|| Error::Unavailable(format!("attachment {attachment_id}: no bytes")))?;
        let content_type = attachment
            .content_type
            .unwrap_or_else(|| "application/octet-stream".into());
        self.put_file(name, &content_type, &data)
    }

    pub(crate) fn history(
        &mut self,
        channel_id: Snowflake,
        before: Option<Snowflake>,
        limit: u32,
    ) -> Result<Vec<PastMessage>, Error> {
        if !(1..=100).contains(&limit) {
            return Err(Error::InvalidArgument(format!(
                "history.read: limit {limit}; read 1 to 100 at a time and page with `before`"
            )));
        }
        let content = !self.failures.contains_key(&Capability::MessageContent);
        Ok(self
            .history
            .get(&channel_id)
            .into_iter()
            .flatten()
            .rev()
            .filter(|m| before.is_none_or(|b| m.id < b))
            .take(limit as usize)
            .map(|m| {
                let mut m = m.clone();
                if !content {
                    m.content.clear();
                    m.embeds.clear();
                    m.attachments.clear();
                }
                m
            })
            .collect())
    }

    pub(crate) fn audit(&mut self, action: &str, details: &str) -> Result<(), Error> {
        limits::audit::check_entry(action, details)?;
        self.effects.push(Effect::Audit {
            action: action.to_string(),
            details: details.to_string(),
        });
        Ok(())
    }
}

/// Runs one capability call against the thread's mock: counts it, applies a
/// denial or injected failure, then the call budget, then `f`.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn call<R>(
    capability: Capability,
    f: impl FnOnce(&mut State) -> Result<R, Error>,
) -> Result<R, Error> {
    let Some(state) = CURRENT.with(|c| c.borrow().clone()) else {
        panic!(
            "townes_sdk: a `{}` capability function was called outside wasm with no MockHost \
             installed on this thread; start the test with \
             `let host = townes_sdk::testing::MockHost::new();`",
            capability.as_str()
        );
    };
    let mut s = state.borrow_mut();
    s.calls += 1;
    if let Some(error) = s.failures.get(&capability) {
        return Err(error.clone());
    }
    if s.call_budget.is_some_and(|budget| s.calls > budget) {
        return Err(Error::QuotaExceeded("host calls".into()));
    }
    f(&mut s)
}

/// `ai.chat` against the thread's mock: counts the call, then the denial, the
/// call budget, the contract's bounds, and the queued (or echoed) answer.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn ai_chat(
    request: &crate::ai::ChatRequest,
) -> Result<crate::ai::ChatAnswer, crate::ai::AiError> {
    use crate::ai::{AiError, ChatAnswer, ChatRole};
    let Some(state) = CURRENT.with(|c| c.borrow().clone()) else {
        panic!(
            "townes_sdk: `ai::chat` was called outside wasm with no MockHost installed on this \
             thread; start the test with `let host = townes_sdk::testing::MockHost::new();`"
        );
    };
    let mut s = state.borrow_mut();
    s.calls += 1;
    if s.ai_denied {
        return Err(AiError::Denied);
    }
    if s.call_budget.is_some_and(|budget| s.calls > budget) {
        return Err(AiError::QuotaExceeded("host calls".into()));
    }
    let total: usize = request
        .messages
        .iter()
        .map(|m| m.content.chars().count())
        .sum();
    if request.messages.is_empty()
        || request.messages.len() > crate::ai::MAX_MESSAGES
        || request
            .messages
            .iter()
            .any(|m| m.content.chars().count() > crate::ai::MAX_MESSAGE_CHARS)
        || total > crate::ai::MAX_TOTAL_CHARS
    {
        return Err(AiError::InvalidArgument(
            "messages: 1-64, at most 16,000 characters each and 64,000 in all".into(),
        ));
    }
    s.ai_requests.push(request.clone());
    if let Some(result) = s.ai_answers.pop_front() {
        return result;
    }
    let last = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == ChatRole::User)
        .map_or("", |m| m.content.as_str());
    let content = format!("mock answer: {last}");
    Ok(ChatAnswer {
        prompt_tokens: total.div_ceil(4) as u32,
        completion_tokens: content.chars().count().div_ceil(4) as u32,
        content,
        model: "mock".into(),
        truncated: false,
    })
}

/// Stops the clock of the thread's mock host at `unix` seconds, like
/// [`MockHost::set_now`], for helpers that do not hold the host.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_now(unix: u64) {
    let Some(state) = CURRENT.with(|c| c.borrow().clone()) else {
        panic!("townes_sdk: set_now needs a MockHost installed on this thread");
    };
    state.borrow_mut().now = Some(unix);
}

/// The clock the thread's mock was stopped at, if a test stopped it.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn mock_now() -> Option<u64> {
    CURRENT.with(|c| c.borrow().as_ref().and_then(|state| state.borrow().now))
}

/// What `invocation::invoker_permissions` answers on the thread's mock. Like
/// the host, it spends a host call and answers 0 once they are used up.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn invoker_permissions() -> u64 {
    let Some(state) = CURRENT.with(|c| c.borrow().clone()) else {
        panic!(
            "townes_sdk: `invocation::invoker_permissions` was called outside wasm with no \
             MockHost installed on this thread"
        );
    };
    let mut s = state.borrow_mut();
    s.calls += 1;
    if s.call_budget.is_some_and(|budget| s.calls > budget) {
        return 0;
    }
    s.invoker_permissions
}

/// Records a log line on the thread's mock, or prints it to stderr without one.
#[cfg(not(target_arch = "wasm32"))]
fn mock_file_info(name: &str, content_type: &str, size: usize) -> FileInfo {
    FileInfo {
        name: name.to_string(),
        content_type: content_type.to_string(),
        size: size as u64,
        created_at: "2026-01-01T00:00:00Z".into(),
    }
}

/// `live::publish` in the mock: free like `invocation` (no capability to
/// deny), but it spends the call budget as on the host.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn live(kind: &str, data: &str) -> Result<(), Error> {
    let Some(state) = CURRENT.with(|c| c.borrow().clone()) else {
        panic!(
            "townes_sdk: `live::publish` was called outside wasm with no MockHost installed \
             on this thread"
        );
    };
    let mut s = state.borrow_mut();
    s.calls += 1;
    if s.call_budget.is_some_and(|budget| s.calls > budget) {
        return Err(Error::QuotaExceeded("host calls".into()));
    }
    s.effects.push(Effect::Live {
        kind: kind.to_string(),
        data: data.to_string(),
    });
    Ok(())
}

pub(crate) fn log_line(level: LogLevel, message: &str) {
    match CURRENT.with(|c| c.borrow().clone()) {
        Some(state) => state.borrow_mut().effects.push(Effect::Log {
            level,
            message: message.to_string(),
        }),
        None => eprintln!("[{level:?}] {message}"),
    }
}
