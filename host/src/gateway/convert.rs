//! Discord's model (as serenity parses it) to the WIT types features see.

use crate::wit::extensions::{ModerationAction, ModerationEvent};
use crate::wit::{self, CommandArgument, OptionValue, Reaction as WitReaction};
use serenity::all::{
    AuditLogEntry, CommandDataOption, CommandDataOptionValue, GuildMemberUpdateEvent, Member,
    Message, MessageUpdateEvent, Reaction, ReactionType, Timestamp, User,
};
use serenity::model::guild::audit_log::{Action, Change, MemberAction};

pub fn user(u: &User) -> wit::User {
    wit::User {
        id: u.id.get(),
        username: u.name.clone(),
        global_name: u.global_name.clone(),
        bot: u.bot,
    }
}

fn rfc3339(t: &Timestamp) -> String {
    t.to_rfc3339().unwrap_or_else(|| t.to_string())
}

pub fn member(m: &Member) -> wit::Member {
    wit::Member {
        user: user(&m.user),
        nick: m.nick.clone(),
        roles: m.roles.iter().map(|r| r.get()).collect(),
        joined_at: m.joined_at.as_ref().map(rfc3339),
    }
}

/// A ban, unban, kick or timeout from the guild's audit log, or `None` for
/// every other entry (and for a member update that did not touch a timeout).
pub fn moderation(entry: &AuditLogEntry) -> Option<ModerationEvent> {
    let target_id = entry.target_id?.get();
    let timeout = || {
        entry
            .changes
            .iter()
            .flatten()
            .find_map(|change| match change {
                Change::CommunicationDisabledUntil { new, .. } => Some(new.as_ref().map(rfc3339)),
                _ => None,
            })
    };
    let (action, until) = match entry.action {
        Action::Member(MemberAction::BanAdd) => (ModerationAction::Ban, None),
        Action::Member(MemberAction::BanRemove) => (ModerationAction::Unban, None),
        Action::Member(MemberAction::Kick) => (ModerationAction::Kick, None),
        Action::Member(MemberAction::Update) => match timeout()? {
            Some(until) => (ModerationAction::Timeout, Some(until)),
            None => (ModerationAction::TimeoutLifted, None),
        },
        _ => return None,
    };
    Some(ModerationEvent {
        action,
        target_id,
        moderator_id: Some(entry.user_id.get()),
        reason: entry.reason.clone(),
        until,
    })
}

/// A member as the gateway's member-update carries it.
pub fn updated_member(e: &GuildMemberUpdateEvent) -> wit::Member {
    wit::Member {
        user: user(&e.user),
        nick: e.nick.clone(),
        roles: e.roles.iter().map(|r| r.get()).collect(),
        joined_at: Some(rfc3339(&e.joined_at)),
    }
}

/// The member behind a message, built from what the gateway sends with it.
pub fn message_author(m: &Message) -> wit::Member {
    wit::Member {
        user: user(&m.author),
        nick: m.member.as_ref().and_then(|p| p.nick.clone()),
        roles: m
            .member
            .as_ref()
            .map(|p| p.roles.iter().map(|r| r.get()).collect())
            .unwrap_or_default(),
        joined_at: m
            .member
            .as_ref()
            .and_then(|p| p.joined_at.as_ref())
            .map(rfc3339),
    }
}

pub fn message(m: &Message) -> wit::Message {
    wit::Message {
        id: m.id.get(),
        channel_id: m.channel_id.get(),
        author: user(&m.author),
        content: m.content.clone(),
        mentions: m.mentions.iter().map(|u| u.id.get()).collect(),
        timestamp: rfc3339(&m.timestamp),
    }
}

/// An edit, when the update carries the message's author (Discord omits it for
/// embed-only unfurls, which are not edits anyone made).
pub fn message_update(e: &MessageUpdateEvent) -> Option<wit::Message> {
    let author = e.author.as_ref()?;
    Some(wit::Message {
        id: e.id.get(),
        channel_id: e.channel_id.get(),
        author: user(author),
        content: e.content.clone().unwrap_or_default(),
        mentions: e
            .mentions
            .as_ref()
            .map(|m| m.iter().map(|u| u.id.get()).collect())
            .unwrap_or_default(),
        timestamp: e
            .edited_timestamp
            .or(e.timestamp)
            .as_ref()
            .map(rfc3339)
            .unwrap_or_default(),
    })
}

/// A unicode emoji as is, a custom one as `name:id`.
pub fn emoji(e: &ReactionType) -> String {
    match e {
        ReactionType::Unicode(s) => s.clone(),
        ReactionType::Custom { id, name, .. } => {
            format!("{}:{}", name.as_deref().unwrap_or("_"), id.get())
        }
        other => other.to_string(),
    }
}

pub fn reaction(r: &Reaction) -> Option<WitReaction> {
    Some(WitReaction {
        user_id: r.user_id?.get(),
        channel_id: r.channel_id.get(),
        message_id: r.message_id.get(),
        emoji: emoji(&r.emoji),
    })
}

/// The subcommand (if any) and the arguments of a slash command's options.
pub fn command_options(options: &[CommandDataOption]) -> (Option<String>, Vec<CommandArgument>) {
    if let [single] = options
        && let CommandDataOptionValue::SubCommand(inner) = &single.value
    {
        return (Some(single.name.clone()), arguments(inner));
    }
    (None, arguments(options))
}

fn arguments(options: &[CommandDataOption]) -> Vec<CommandArgument> {
    options
        .iter()
        .filter_map(|o| {
            let value = match &o.value {
                CommandDataOptionValue::String(s) => OptionValue::Text(s.clone()),
                CommandDataOptionValue::Integer(i) => OptionValue::Integer(*i),
                CommandDataOptionValue::Number(n) => OptionValue::Number(*n),
                CommandDataOptionValue::Boolean(b) => OptionValue::Boolean(*b),
                CommandDataOptionValue::User(u) => OptionValue::User(u.get()),
                CommandDataOptionValue::Channel(c) => OptionValue::Channel(c.get()),
                CommandDataOptionValue::Role(r) => OptionValue::Role(r.get()),
                // Kinds our WIT does not offer never reach a feature.
                _ => return None,
            };
            Some(CommandArgument {
                name: o.name.clone(),
                value,
            })
        })
        .collect()
}
