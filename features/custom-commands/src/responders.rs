//! Auto-responders: a reply when a message matches a trigger.
//!
//! - Match types `exact` (the whole message, spaces around it aside),
//!   `contains`, `starts_with`, `ends_with` and `regex`; case-insensitive
//!   unless `case_sensitive`.
//! - Regexes use the `regex` crate, which runs in time linear in the message
//!   (no back-references or look-around, so no catastrophic backtracking).
//!   A pattern is at most [`MAX_PATTERN`] characters and compiles within
//!   [`REGEX_SIZE_LIMIT`] / [`REGEX_DFA_SIZE_LIMIT`] bytes; one that does not
//!   is refused when saved, with the reason.
//! - `channels` limits where it answers (empty: everywhere).
//! - Tried in order (priority, highest first, then id): only the first that
//!   matches counts (`trigger_count` + 1) and answers, so a message gets at
//!   most one auto-response — and none when it ran a custom command.
//! - At most one auto-response per channel per [`CHANNEL_WINDOW_SECONDS`]:
//!   the last one's time is kept in storage and taken with `set_if`, so two
//!   invocations handling messages at once cannot both answer. A match held
//!   back by this limit still counts.
//! - Messages by bots, the bot itself included, are ignored.

use crate::store::{self, AutoResponder, MatchType};
use crate::variables::{Invoker, Vars};
use regex::{Regex, RegexBuilder};
use townes_sdk::{Context, Error, Message, log, messages};

/// The longest trigger, regex or not (characters).
pub const MAX_PATTERN: usize = 200;
/// The compiled program's size limit (the crate's default is 10 MiB).
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// The lazy DFA's cache limit (the crate's default is 2 MiB).
pub const REGEX_DFA_SIZE_LIMIT: usize = 256 * 1024;
/// At most one auto-response per channel within this many seconds.
pub const CHANNEL_WINDOW_SECONDS: u64 = 10;

/// Compiles a trigger pattern within the limits; the error says why not.
pub fn compile(pattern: &str, case_sensitive: bool) -> Result<Regex, String> {
    let length = pattern.chars().count();
    if length > MAX_PATTERN {
        return Err(format!(
            "the pattern is {length} characters long; at most {MAX_PATTERN}"
        ));
    }
    RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "the pattern compiles to more than {limit} bytes; make it simpler \
                 (fewer or smaller repetitions like {{1000}})"
            ),
            regex::Error::Syntax(text) => format!("the pattern is not a valid regex: {text}"),
            other => format!("the pattern is refused: {other}"),
        })
}

/// Checks a trigger before it is saved: not blank, not too long, and for
/// `regex` a pattern that compiles within the limits.
pub fn check_trigger(
    trigger: &str,
    match_type: MatchType,
    case_sensitive: bool,
) -> Result<(), Error> {
    if trigger.trim().is_empty() {
        return Err(Error::invalid("trigger: must not be blank"));
    }
    let length = trigger.chars().count();
    if length > MAX_PATTERN {
        return Err(Error::invalid(format!(
            "trigger: {length} characters; at most {MAX_PATTERN}"
        )));
    }
    if match_type == MatchType::Regex {
        compile(trigger, case_sensitive)
            .map_err(|why| Error::invalid(format!("trigger: {why}")))?;
    }
    Ok(())
}

/// Whether `content` matches the responder's trigger. A stored regex that no
/// longer compiles (it cannot: it was checked when saved) matches nothing.
pub fn matches(responder: &AutoResponder, content: &str) -> bool {
    let (trigger, text) = if responder.case_sensitive || responder.match_type == MatchType::Regex {
        (responder.trigger.clone(), content.to_string())
    } else {
        (responder.trigger.to_lowercase(), content.to_lowercase())
    };
    match responder.match_type {
        MatchType::Exact => text.trim() == trigger.trim(),
        MatchType::Contains => text.contains(&trigger),
        MatchType::StartsWith => text.trim_start().starts_with(trigger.trim_start()),
        MatchType::EndsWith => text.trim_end().ends_with(trigger.trim_end()),
        MatchType::Regex => match compile(&trigger, responder.case_sensitive) {
            Ok(regex) => regex.is_match(&text),
            Err(why) => {
                log::warn(format!("auto-responder {}: {why}", responder.id));
                false
            }
        },
    }
}

/// The first auto-responder for a message in `channel_id`, in trying order.
pub fn first_match(
    responders: &[AutoResponder],
    channel_id: u64,
    content: &str,
) -> Option<AutoResponder> {
    responders
        .iter()
        .filter(|r| r.enabled)
        .filter(|r| r.channels.is_empty() || r.channels.contains(&channel_id))
        .find(|r| matches(r, content))
        .cloned()
}

/// A message that ran no custom command: the first matching auto-responder
/// counts it and answers, unless the channel had an auto-response in the
/// last ten seconds.
pub fn on_message(ctx: &Context, message: &Message) -> Result<(), Error> {
    let responders = store::responders()?;
    let Some(responder) = first_match(&responders, message.channel_id, &message.content) else {
        return Ok(());
    };
    store::count_trigger(responder.id)?;
    if !store::take_channel_slot(message.channel_id, CHANNEL_WINDOW_SECONDS, store::now())? {
        return Ok(());
    }
    let invoker = Invoker::user(message.author.clone());
    let words = message
        .content
        .split_whitespace()
        .map(String::from)
        .collect();
    let mut vars = Vars::new(invoker, ctx.guild_id, message.channel_id, words);
    let body = vars.body(&responder.response);
    if let Err(e) = body.validate() {
        log::warn(format!(
            "auto-responder {} has nothing it can send: {e:?}",
            responder.id
        ));
        return Ok(());
    }
    messages::send(message.channel_id, body).map(drop)
}
