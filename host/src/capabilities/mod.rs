//! Capabilities: one module per WIT interface, each owning its host trait impl,
//! its context (what it needs and nothing else), its grant check, its scope
//! rules and its limits. A host trait is implemented on [`Cap`]: the shared
//! [`Calls`] record plus the capability's context, so a capability can be
//! called and tested without wasm. Every call goes through [`Calls::begin`],
//! which spends one unit of host-call fuel and checks the grant, and every
//! effect a call has on the world is recorded as an [`Effect`].

pub mod ai;
pub mod audit;
mod channels;
pub mod config;
pub mod files;
mod history;
pub mod http;
pub mod invocation;
pub mod live;
pub mod log;
mod members;
mod messages;
mod moderation;
pub mod rates;
mod roles;
pub mod scheduler;
pub mod storage;
#[cfg(test)]
mod tests;

use crate::discord::{Discord, DiscordError};
use crate::grants::Grant;
use crate::store::StoreError;
use crate::wit::{self, Capability, Error, MessageBody};
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use townes_limits::{Invalid, message};
use wasmtime::component::{HasData, HasSelf, Linker};

/// Something a feature did (or tried to do and was refused), in the order the
/// host executed it. `townes feature run` prints these; tests assert on them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    MessageSent {
        channel_id: u64,
        message_id: u64,
        content: Option<String>,
        embeds: usize,
        components: usize,
    },
    MessageEdited {
        channel_id: u64,
        message_id: u64,
        content: Option<String>,
    },
    MessageDeleted {
        channel_id: u64,
        message_id: u64,
    },
    ReactionAdded {
        channel_id: u64,
        message_id: u64,
        emoji: String,
    },
    DirectMessageSent {
        user_id: u64,
        content: Option<String>,
    },
    RoleAdded {
        user_id: u64,
        role_id: u64,
        reason: Option<String>,
    },
    RoleRemoved {
        user_id: u64,
        role_id: u64,
        reason: Option<String>,
    },
    ChannelCreated {
        channel_id: u64,
        name: String,
    },
    ChannelDeleted {
        channel_id: u64,
    },
    OverwriteSet {
        channel_id: u64,
        target_id: u64,
        allow: u64,
        deny: u64,
    },
    Kicked {
        user_id: u64,
        reason: Option<String>,
    },
    Banned {
        user_id: u64,
        delete_message_seconds: u32,
        reason: Option<String>,
    },
    Unbanned {
        user_id: u64,
        reason: Option<String>,
    },
    TimedOut {
        user_id: u64,
        seconds: u32,
        reason: Option<String>,
    },
    Purged {
        channel_id: u64,
        deleted: u32,
    },
    StorageSet {
        key: String,
        bytes: usize,
    },
    StorageDeleted {
        key: String,
    },
    FileStored {
        name: String,
        bytes: u64,
    },
    FileDeleted {
        name: String,
    },
    StorageIncremented {
        key: String,
        value: i64,
    },
    ScoreChanged {
        board: String,
        subject: u64,
        score: i64,
    },
    ScoreRemoved {
        board: String,
        subject: u64,
    },
    JobScheduled {
        job_id: String,
        name: String,
        delay_seconds: u32,
    },
    JobCancelled {
        job_id: String,
    },
    AuditWritten {
        action: String,
    },
    LivePublished {
        kind: String,
    },
    /// An `http` request that got an answer (any status): the host first
    /// asked, never the path or query, which may carry secrets.
    HttpRequested {
        method: &'static str,
        host: String,
        status: u16,
        bytes: usize,
    },
    /// `ai.chat` answered; the tokens were metered to the guild.
    AiAnswered {
        model: String,
        prompt_tokens: u32,
        completion_tokens: u32,
        /// Through the guild's own key (not the operator's).
        own_key: bool,
        truncated: bool,
    },
    /// A call that failed, with the typed error the feature received.
    Refused {
        call: &'static str,
        error: String,
    },
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::MessageSent {
                channel_id,
                content,
                embeds,
                ..
            } => {
                write!(
                    f,
                    "message → #{channel_id}: {}",
                    content.as_deref().unwrap_or("")
                )?;
                if *embeds > 0 {
                    write!(f, " (+{embeds} embed(s))")?;
                }
                Ok(())
            }
            Effect::MessageEdited {
                channel_id,
                message_id,
                content,
            } => write!(
                f,
                "edit {message_id} in #{channel_id}: {}",
                content.as_deref().unwrap_or("")
            ),
            Effect::MessageDeleted {
                channel_id,
                message_id,
            } => write!(f, "delete {message_id} in #{channel_id}"),
            Effect::ReactionAdded {
                message_id, emoji, ..
            } => write!(f, "react {emoji} on {message_id}"),
            Effect::DirectMessageSent { user_id, content } => {
                write!(f, "DM → {user_id}: {}", content.as_deref().unwrap_or(""))
            }
            Effect::RoleAdded {
                user_id, role_id, ..
            } => write!(f, "role {role_id} + {user_id}"),
            Effect::RoleRemoved {
                user_id, role_id, ..
            } => write!(f, "role {role_id} − {user_id}"),
            Effect::ChannelCreated { channel_id, name } => {
                write!(f, "channel #{name} created ({channel_id})")
            }
            Effect::ChannelDeleted { channel_id } => write!(f, "channel {channel_id} deleted"),
            Effect::OverwriteSet {
                channel_id,
                target_id,
                allow,
                deny,
            } => write!(
                f,
                "overwrite on #{channel_id} for {target_id}: allow {allow:#x} deny {deny:#x}"
            ),
            Effect::Kicked { user_id, .. } => write!(f, "kick {user_id}"),
            Effect::Banned { user_id, .. } => write!(f, "ban {user_id}"),
            Effect::Unbanned { user_id, .. } => write!(f, "unban {user_id}"),
            Effect::TimedOut {
                user_id, seconds, ..
            } => write!(f, "timeout {user_id} for {seconds}s"),
            Effect::Purged {
                channel_id,
                deleted,
            } => write!(f, "purge {deleted} in #{channel_id}"),
            Effect::StorageSet { key, bytes } => write!(f, "storage {key} = ({bytes} bytes)"),
            Effect::StorageDeleted { key } => write!(f, "storage {key} deleted"),
            Effect::FileStored { name, bytes } => write!(f, "file {name} ({bytes} bytes)"),
            Effect::FileDeleted { name } => write!(f, "file {name} deleted"),
            Effect::StorageIncremented { key, value } => write!(f, "storage {key} → {value}"),
            Effect::ScoreChanged {
                board,
                subject,
                score,
            } => write!(f, "board {board}: {subject} → {score}"),
            Effect::ScoreRemoved { board, subject } => {
                write!(f, "board {board}: {subject} removed")
            }
            Effect::JobScheduled {
                job_id,
                name,
                delay_seconds,
            } => write!(f, "job {name} ({job_id}) in {delay_seconds}s"),
            Effect::JobCancelled { job_id } => write!(f, "job {job_id} cancelled"),
            Effect::AuditWritten { action } => write!(f, "audit: {action}"),
            Effect::LivePublished { kind } => write!(f, "live: {kind}"),
            Effect::HttpRequested {
                method,
                host,
                status,
                bytes,
            } => write!(f, "http {method} {host} → {status} ({bytes} bytes)"),
            Effect::AiAnswered {
                model,
                prompt_tokens,
                completion_tokens,
                own_key,
                truncated,
            } => write!(
                f,
                "ai: {model} answered ({prompt_tokens}+{completion_tokens} tokens{}{})",
                if *own_key { ", the guild's key" } else { "" },
                if *truncated { ", truncated" } else { "" }
            ),
            Effect::Refused { call, error } => write!(f, "REFUSED {call}: {error}"),
        }
    }
}

impl Effect {
    /// The audit-log action and details of an effect that changed the guild:
    /// every moderation, role and channel action (the host writes these for
    /// every feature, whatever it writes itself). Ids are strings, as
    /// everywhere in JSON the dashboard reads.
    pub fn audited(&self) -> Option<(&'static str, serde_json::Value)> {
        use serde_json::json;
        let id = |id: &u64| id.to_string();
        Some(match self {
            Effect::RoleAdded {
                user_id,
                role_id,
                reason,
            } => (
                "role.added",
                json!({ "target": id(user_id), "role_id": id(role_id), "reason": reason }),
            ),
            Effect::RoleRemoved {
                user_id,
                role_id,
                reason,
            } => (
                "role.removed",
                json!({ "target": id(user_id), "role_id": id(role_id), "reason": reason }),
            ),
            Effect::ChannelCreated { channel_id, name } => (
                "channel.created",
                json!({ "target": id(channel_id), "name": name }),
            ),
            Effect::ChannelDeleted { channel_id } => {
                ("channel.deleted", json!({ "target": id(channel_id) }))
            }
            Effect::OverwriteSet {
                channel_id,
                target_id,
                allow,
                deny,
            } => (
                "channel.overwrite_set",
                json!({
                    "target": id(channel_id),
                    "overwrite_for": id(target_id),
                    "allow": allow.to_string(),
                    "deny": deny.to_string(),
                }),
            ),
            Effect::Kicked { user_id, reason } => (
                "moderation.kick",
                json!({ "target": id(user_id), "reason": reason }),
            ),
            Effect::Banned {
                user_id,
                delete_message_seconds,
                reason,
            } => (
                "moderation.ban",
                json!({
                    "target": id(user_id),
                    "reason": reason,
                    "delete_message_seconds": delete_message_seconds,
                }),
            ),
            Effect::Unbanned { user_id, reason } => (
                "moderation.unban",
                json!({ "target": id(user_id), "reason": reason }),
            ),
            Effect::TimedOut {
                user_id,
                seconds,
                reason,
            } => (
                if *seconds == 0 {
                    "moderation.timeout_lifted"
                } else {
                    "moderation.timeout"
                },
                json!({ "target": id(user_id), "seconds": seconds, "reason": reason }),
            ),
            Effect::Purged {
                channel_id,
                deleted,
            } => (
                "moderation.purge",
                json!({ "target": id(channel_id), "deleted": deleted }),
            ),
            _ => return None,
        })
    }
}

/// The record of one invocation's capability calls: the grant every call is
/// checked against, the host-call fuel, and what the calls did. Every
/// capability shares it; the rest of what a capability needs is its own
/// context.
pub struct Calls {
    pub grant: Grant,
    /// The guild is read-only (a lapsed subscription): only [`READ_CALLS`] run.
    read_only: bool,
    left: u32,
    limit: u32,
    effects: Vec<Effect>,
    /// Calls refused after the effects record was full.
    unrecorded_refusals: u32,
}

/// The calls that change nothing, in the guild or on Discord: all a read-only
/// guild's features may make.
pub const READ_CALLS: &[&str] = &[
    "config.get",
    "log.write",
    "storage.get",
    "storage.list-prefix",
    "storage.board-top",
    "storage.board-rank",
    "files.get",
    "files.list-prefix",
    "files.link",
    "members.get",
    "members.guild",
    "messages.reactions",
    "history.read",
];

/// Why a read-only guild's feature was refused a call.
const READ_ONLY: &str = "read-only: this server's subscription lapsed, so features answer but change nothing; the server's owner can renew it in the dashboard";

impl Calls {
    pub fn new(grant: Grant, host_calls: u32) -> Self {
        Calls {
            grant,
            read_only: false,
            left: host_calls,
            limit: host_calls,
            effects: Vec::new(),
            unrecorded_refusals: 0,
        }
    }

    /// What the calls did, in order.
    pub fn effects(&self) -> &[Effect] {
        &self.effects
    }

    pub fn into_effects(self) -> Vec<Effect> {
        self.effects
    }

    /// Refuses every call that changes something (see [`READ_CALLS`]).
    pub fn set_read_only(&mut self) {
        self.read_only = true;
    }

    /// Starts a capability call: spends one unit of host-call fuel, then checks
    /// that the grant holds `capability` (and, in a read-only guild, that the
    /// call changes nothing). A refusal is recorded as an effect.
    fn begin(&mut self, capability: Capability, call: &'static str) -> Result<(), Error> {
        self.begin_imported(call)?;
        self.grant
            .check(capability)
            .inspect_err(|e| self.refused(call, e))
    }

    /// Spends one unit of host-call fuel (calls of interfaces every feature
    /// holds spend it too). Running out is recorded as a refusal.
    fn spend(&mut self, call: &'static str) -> Result<(), Error> {
        if self.left == 0 {
            let error = Error::QuotaExceeded(format!(
                "host calls: the limit of {} calls per invocation is used up",
                self.limit
            ));
            self.refused(call, &error);
            return Err(error);
        }
        self.left -= 1;
        Ok(())
    }

    /// Starts a call without the grant check: spends fuel and, in a
    /// read-only guild, refuses a call that changes something. [`Calls::begin`]
    /// adds the check; `ai` and `http`, requested by importing them, check
    /// their own approval, which is not a WIT `capability`.
    fn begin_imported(&mut self, call: &'static str) -> Result<(), Error> {
        self.spend(call)?;
        if self.read_only && !READ_CALLS.contains(&call) {
            let error = Error::Unavailable(READ_ONLY.to_string());
            self.refused(call, &error);
            return Err(error);
        }
        Ok(())
    }

    fn refused(&mut self, call: &'static str, error: &Error) {
        self.refused_because(call, describe_error(error));
    }

    /// Records a failed call. The record holds at most the host-call fuel plus
    /// a few entries: a guest that keeps calling after its fuel ran out only
    /// moves a counter.
    fn refused_because(&mut self, call: &'static str, error: String) {
        if self.effects.len() >= self.limit as usize + MAX_EXTRA_EFFECTS {
            self.unrecorded_refusals = self.unrecorded_refusals.saturating_add(1);
            return;
        }
        self.effects.push(Effect::Refused { call, error });
    }

    /// Finishes a call: records the effect of a success or the refusal of a
    /// failure (of `error` or of an interface's own error type).
    fn finish<T, E: Refusal>(
        &mut self,
        call: &'static str,
        result: Result<T, E>,
        effect: impl FnOnce(&T) -> Option<Effect>,
    ) -> Result<T, E> {
        match &result {
            Ok(value) => self.effects.extend(effect(value)),
            Err(error) => self.refused_because(call, error.describe()),
        }
        result
    }
}

/// How a call's error reads in an [`Effect::Refused`].
pub trait Refusal {
    fn describe(&self) -> String;
}

impl Refusal for Error {
    fn describe(&self) -> String {
        describe_error(self)
    }
}

/// Effects recorded per invocation beyond its host-call fuel: the refusals
/// after the fuel ran out are counted, not recorded one by one.
pub const MAX_EXTRA_EFFECTS: usize = 16;

/// What a capability's host trait is implemented on: the shared call record
/// and the capability's own context.
pub struct Cap<'a, C> {
    pub calls: &'a mut Calls,
    pub ctx: &'a mut C,
}

impl<'a, C> Cap<'a, C> {
    pub fn new(calls: &'a mut Calls, ctx: &'a mut C) -> Self {
        Cap { calls, ctx }
    }
}

/// Tells the generated `add_to_linker` functions that a capability's host
/// trait lives on [`Cap`] with context `C`.
pub struct With<C>(PhantomData<C>);

impl<C: 'static> HasData for With<C> {
    type Data<'a> = Cap<'a, C>;
}

/// Every capability context of one invocation.
pub struct Capabilities {
    pub calls: Calls,
    pub config: config::ConfigCtx,
    pub log: log::LogCtx,
    pub storage: storage::StorageCtx,
    pub discord: DiscordCtx,
    pub scheduler: scheduler::SchedulerCtx,
    pub audit: audit::AuditCtx,
    pub invocation: invocation::InvocationCtx,
    pub live: live::LiveCtx,
    pub files: files::FilesCtx,
    pub ai: ai::AiCtx,
    pub http: http::HttpCtx,
}

/// A store whose data holds the capabilities of an invocation.
pub trait HasCapabilities: Send + 'static {
    fn capabilities(&mut self) -> &mut Capabilities;
}

/// The getter the generated `add_to_linker` of one interface takes: the
/// shared call record and the store's `$field` context.
macro_rules! view {
    ($field:ident) => {
        |t| {
            let c = t.capabilities();
            Cap::new(&mut c.calls, &mut c.$field)
        }
    };
}

/// Adds every capability interface to `linker`, each reaching its own context.
pub fn add_to_linker<T: HasCapabilities>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    use crate::wit::townes::feature as wit_if;
    wit_if::types::add_to_linker::<T, HasSelf<Calls>>(linker, |t| &mut t.capabilities().calls)?;
    wit_if::config::add_to_linker::<T, With<config::ConfigCtx>>(linker, view!(config))?;
    wit_if::log::add_to_linker::<T, With<log::LogCtx>>(linker, view!(log))?;
    wit_if::storage::add_to_linker::<T, With<storage::StorageCtx>>(linker, view!(storage))?;
    wit_if::scheduler::add_to_linker::<T, With<scheduler::SchedulerCtx>>(linker, view!(scheduler))?;
    wit_if::audit::add_to_linker::<T, With<audit::AuditCtx>>(linker, view!(audit))?;
    wit_if::invocation::add_to_linker::<T, With<invocation::InvocationCtx>>(
        linker,
        view!(invocation),
    )?;
    wit_if::live::add_to_linker::<T, With<live::LiveCtx>>(linker, view!(live))?;
    wit_if::files::add_to_linker::<T, With<files::FilesCtx>>(linker, view!(files))?;
    wit_if::ai::add_to_linker::<T, With<ai::AiCtx>>(linker, view!(ai))?;
    wit_if::http::add_to_linker::<T, With<http::HttpCtx>>(linker, view!(http))?;
    wit_if::messages::add_to_linker::<T, With<DiscordCtx>>(linker, view!(discord))?;
    wit_if::history::add_to_linker::<T, With<DiscordCtx>>(linker, view!(discord))?;
    wit_if::members::add_to_linker::<T, With<DiscordCtx>>(linker, view!(discord))?;
    wit_if::roles::add_to_linker::<T, With<DiscordCtx>>(linker, view!(discord))?;
    wit_if::channels::add_to_linker::<T, With<DiscordCtx>>(linker, view!(discord))?;
    wit_if::moderation::add_to_linker::<T, With<DiscordCtx>>(linker, view!(discord))?;
    Ok(())
}

/// What the Discord capabilities (`messages`, `members`, `roles`, `channels`,
/// `moderation`) act through: the invocation's guild and its Discord port,
/// which the runtime has already bound to the caller's budgets.
pub struct DiscordCtx {
    pub guild_id: u64,
    pub discord: Arc<dyn Discord>,
}

pub fn describe_error(error: &Error) -> String {
    match error {
        Error::Denied(c) => format!("denied({})", crate::grants::capability_name(*c)),
        Error::QuotaExceeded(s) => format!("quota-exceeded: {s}"),
        Error::NotFound(s) => format!("not-found: {s}"),
        Error::InvalidArgument(s) => format!("invalid-argument: {s}"),
        Error::Unavailable(s) => format!("unavailable: {s}"),
    }
}

impl From<DiscordError> for Error {
    fn from(e: DiscordError) -> Self {
        match e {
            DiscordError::NotFound(what) => Error::NotFound(what),
            DiscordError::Invalid(why) => Error::InvalidArgument(why),
            DiscordError::QuotaExceeded(why) => Error::QuotaExceeded(why),
            DiscordError::Forbidden(_) | DiscordError::Unavailable(_) => {
                Error::Unavailable(e.to_string())
            }
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::QuotaExceeded(s) => Error::QuotaExceeded(s),
            StoreError::NotInteger(s) | StoreError::InvalidArgument(s) => Error::InvalidArgument(s),
            other => {
                tracing::error!(error = %other, "feature storage failed");
                Error::Unavailable("storage is unavailable; try again later".into())
            }
        }
    }
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::InvalidArgument(e.0)
    }
}

/// What the shared limits know of a message body.
pub fn shape(body: &MessageBody) -> message::Shape<'_> {
    message::Shape {
        content: body.content.as_deref(),
        embeds: body
            .embeds
            .iter()
            .map(|e| message::EmbedShape {
                title: e.title.as_deref(),
                description: e.description.as_deref(),
                footer: e.footer.as_deref(),
                fields: e
                    .fields
                    .iter()
                    .map(|f| (f.name.as_str(), f.value.as_str()))
                    .collect(),
            })
            .collect(),
        rows: body
            .components
            .iter()
            .map(|row| {
                let selects = row
                    .components
                    .iter()
                    .filter(|c| matches!(c, wit::UiComponent::SelectMenu(_)))
                    .count();
                message::RowShape {
                    buttons: row.components.len() - selects,
                    selects,
                }
            })
            .collect(),
    }
}

/// A message to send or edit: within Discord's limits and not empty.
pub fn validate_body(body: &MessageBody) -> Result<(), Error> {
    Ok(message::check(&shape(body))?)
}

impl wit::Host for Calls {}
