//! Capabilities: one module per WIT interface, each owning its host trait impl,
//! its grant check and its scope rules. Every call goes through
//! [`HostState::begin`], which spends one unit of host-call fuel and checks the
//! grant, and every effect a call has on the world is recorded as an [`Effect`].

mod audit;
mod channels;
mod config;
mod log;
mod members;
mod messages;
mod moderation;
mod roles;
mod scheduler;
mod storage;

use crate::discord::DiscordError;
use crate::runtime::HostState;
use crate::runtime::wit::{self, Capability, Error, MessageBody};
use crate::store::StoreError;
use serde::Serialize;
use std::fmt;

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
    },
    RoleRemoved {
        user_id: u64,
        role_id: u64,
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
    },
    Banned {
        user_id: u64,
    },
    TimedOut {
        user_id: u64,
        seconds: u32,
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
            Effect::RoleAdded { user_id, role_id } => write!(f, "role {role_id} + {user_id}"),
            Effect::RoleRemoved { user_id, role_id } => write!(f, "role {role_id} − {user_id}"),
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
            Effect::Kicked { user_id } => write!(f, "kick {user_id}"),
            Effect::Banned { user_id } => write!(f, "ban {user_id}"),
            Effect::TimedOut { user_id, seconds } => write!(f, "timeout {user_id} for {seconds}s"),
            Effect::Purged {
                channel_id,
                deleted,
            } => write!(f, "purge {deleted} in #{channel_id}"),
            Effect::StorageSet { key, bytes } => write!(f, "storage {key} = ({bytes} bytes)"),
            Effect::StorageDeleted { key } => write!(f, "storage {key} deleted"),
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
            Effect::Refused { call, error } => write!(f, "REFUSED {call}: {error}"),
        }
    }
}

impl HostState {
    /// Starts a capability call: spends one unit of host-call fuel, then checks
    /// that the grant holds `capability`. A refusal is recorded as an effect.
    fn begin(&mut self, capability: Capability, call: &'static str) -> Result<(), Error> {
        let outcome = if self.calls_left == 0 {
            Err(Error::QuotaExceeded(format!(
                "host calls: the limit of {} calls per invocation is used up",
                self.call_limit
            )))
        } else {
            self.calls_left -= 1;
            self.grant.check(capability)
        };
        outcome.inspect_err(|e| self.refused(call, e))
    }

    /// Records a failed call. The record holds at most the host-call fuel plus
    /// a few entries: a guest that keeps calling after its fuel ran out only
    /// moves a counter.
    fn refused(&mut self, call: &'static str, error: &Error) {
        if self.effects.len() >= self.call_limit as usize + crate::runtime::MAX_EXTRA_EFFECTS {
            self.unrecorded_refusals = self.unrecorded_refusals.saturating_add(1);
            return;
        }
        self.effects.push(Effect::Refused {
            call,
            error: describe_error(error),
        });
    }

    /// Finishes a call: records the effect of a success or the refusal of a failure.
    fn finish<T>(
        &mut self,
        call: &'static str,
        result: Result<T, Error>,
        effect: impl FnOnce(&T) -> Option<Effect>,
    ) -> Result<T, Error> {
        match &result {
            Ok(value) => self.effects.extend(effect(value)),
            Err(error) => self.refused(call, error),
        }
        result
    }
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

/// Discord's message limits, checked before anything is sent and on replies.
pub fn validate_body(body: &MessageBody) -> Result<(), Error> {
    let too_long = |what: &str, len: usize, max: usize| {
        Error::InvalidArgument(format!("{what} is {len} characters; Discord allows {max}"))
    };
    if let Some(content) = &body.content {
        let len = content.chars().count();
        if len > 2000 {
            return Err(too_long("message content", len, 2000));
        }
    }
    if body.embeds.len() > 10 {
        return Err(Error::InvalidArgument(format!(
            "{} embeds; Discord allows 10",
            body.embeds.len()
        )));
    }
    let mut total = 0;
    for embed in &body.embeds {
        total += validate_embed(embed)?;
    }
    if total > 6000 {
        return Err(too_long("embeds in all", total, 6000));
    }
    if body.components.len() > 5 {
        return Err(Error::InvalidArgument(format!(
            "{} action rows; Discord allows 5",
            body.components.len()
        )));
    }
    for row in &body.components {
        let selects = row
            .components
            .iter()
            .filter(|c| matches!(c, wit::UiComponent::SelectMenu(_)))
            .count();
        if row.components.is_empty()
            || row.components.len() > 5
            || (selects > 0 && row.components.len() > 1)
        {
            return Err(Error::InvalidArgument(
                "an action row holds 1 to 5 buttons or exactly one select menu".into(),
            ));
        }
    }
    Ok(())
}

fn validate_embed(embed: &wit::Embed) -> Result<usize, Error> {
    let len = |s: &Option<String>| s.as_deref().map_or(0, |s| s.chars().count());
    let check = |what: &str, n: usize, max: usize| {
        if n > max {
            Err(Error::InvalidArgument(format!(
                "embed {what} is {n} characters; Discord allows {max}"
            )))
        } else {
            Ok(n)
        }
    };
    let mut total = check("title", len(&embed.title), 256)?
        + check("description", len(&embed.description), 4096)?
        + check("footer", len(&embed.footer), 2048)?;
    if embed.fields.len() > 25 {
        return Err(Error::InvalidArgument(format!(
            "{} embed fields; Discord allows 25",
            embed.fields.len()
        )));
    }
    for field in &embed.fields {
        total += check("field name", field.name.chars().count(), 256)?
            + check("field value", field.value.chars().count(), 1024)?;
    }
    Ok(total)
}

impl wit::Host for HostState {}
