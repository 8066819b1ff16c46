//! `/poll`: creating a poll, voting on it, and ending it — early by its End
//! poll button, or on time by the `end-poll` job.
//!
//! The poll's message is posted with `messages::send` rather than as the
//! command's reply, because the feature needs its id to edit it; the command
//! itself answers the creator with a short note.

use crate::permissions::MANAGE_MESSAGES;
use crate::pick::now;
use crate::render;
use crate::store::{self, Closer, Poll, Tally};
use crate::{Config, say};
use townes_sdk::{
    Capability, CommandInvocation, ComponentInteraction, Context, Error, Member, Reply,
    ScheduledJob, Snowflake, invocation, json, live, log, messages, scheduler,
};

/// The scheduled job that ends a poll on time; its payload is the poll number.
pub const END_POLL_JOB: &str = "end-poll";
pub const MIN_OPTIONS: usize = 2;
pub const MAX_OPTIONS: usize = 10;
/// A button label holds 80 characters.
pub const MAX_OPTION_CHARS: usize = 80;
/// The question is the embed's title (256 characters), after `📊 `.
pub const MAX_QUESTION_CHARS: usize = 240;
/// How long a poll runs when no duration is given.
pub const DEFAULT_SECONDS: u64 = 86_400;
/// The shortest poll: anything less is over before anyone sees it.
pub const MIN_SECONDS: u64 = 10;
/// Edits one vote makes at most to bring the message up to date.
const REFRESH_ATTEMPTS: usize = 3;

const ENDED: &str = "This poll has ended; its results are in the channel.";

// ------------------------------------------------------------------ parsing

/// `text` on one line, runs of spaces made one.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The options of `/poll`: separated by `|`, or by `;` when there is no `|`
/// (so an option may hold a `;`: `Tea; hot | Coffee`). Empty ones (a
/// trailing separator) are dropped.
pub fn parse_options(text: &str) -> Result<Vec<String>, Error> {
    let separator = if text.contains('|') { '|' } else { ';' };
    let options: Vec<String> = text
        .split(separator)
        .map(one_line)
        .filter(|o| !o.is_empty())
        .collect();
    if options.len() < MIN_OPTIONS {
        return Err(Error::invalid(format!(
            "A poll needs {MIN_OPTIONS} to {MAX_OPTIONS} options separated by `|` or `;`, \
             e.g. `Pizza | Pasta | Salad` (I found {}).",
            options.len()
        )));
    }
    if options.len() > MAX_OPTIONS {
        return Err(Error::invalid(format!(
            "A poll has at most {MAX_OPTIONS} options and you gave {}; merge some or run two polls.",
            options.len()
        )));
    }
    for (i, option) in options.iter().enumerate() {
        let n = option.chars().count();
        if n > MAX_OPTION_CHARS {
            return Err(Error::invalid(format!(
                "Option {} is {n} characters long; keep each option to {MAX_OPTION_CHARS}.",
                i + 1
            )));
        }
        let twice = options[..i]
            .iter()
            .any(|o| o.to_lowercase() == option.to_lowercase());
        if twice {
            return Err(Error::invalid(format!(
                "“{option}” is there twice; every option must differ."
            )));
        }
    }
    Ok(options)
}

/// Parses `45s`, `30m`, `2h`, `1d`, `1w`, `1h30m` into seconds, from 10
/// seconds (a quick show of hands) up to `max_days`.
pub fn parse_duration(text: &str, max_days: u32) -> Result<u64, Error> {
    let bad = || {
        Error::invalid(format!(
            "Duration `{}`: use a number with s, m, h, d or w, e.g. `30m`, `2h`, `1d` \
             (from 10 seconds to {max_days} days).",
            crate::quips::truncate(text.trim(), 32)
        ))
    };
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().to_lowercase().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    if total < MIN_SECONDS {
        return Err(Error::invalid(format!(
            "A poll runs for at least 10 seconds; `{}` is shorter.",
            text.trim()
        )));
    }
    if total > u64::from(max_days) * 86_400 {
        return Err(Error::invalid(format!(
            "A poll runs for at most {max_days} days here; `{}` is longer.",
            text.trim()
        )));
    }
    Ok(total)
}

/// What a button or menu of a poll is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Click {
    /// `vote:{poll}:{index}` (a button) or `vote:{poll}` (the menu).
    Vote { poll: u64, option: Option<usize> },
    /// `end:{poll}`.
    End { poll: u64 },
}

/// Reads one of the custom ids this feature sets; `None` for any other.
pub fn parse_custom_id(custom_id: &str) -> Option<Click> {
    let mut parts = custom_id.split(':');
    let kind = parts.next()?;
    let poll = parts.next()?.parse().ok()?;
    let option = parts.next().map(str::parse).transpose().ok()?;
    if parts.next().is_some() {
        return None;
    }
    match (kind, option) {
        ("vote", option) => Some(Click::Vote { poll, option }),
        ("end", None) => Some(Click::End { poll }),
        _ => None,
    }
}

// ------------------------------------------------------------------ create

/// `/poll question options [duration] [multi]`.
pub fn create(invocation: &CommandInvocation, config: &Config) -> Result<Reply, Error> {
    let question = one_line(invocation.text_arg("question").unwrap_or(""));
    if question.is_empty() {
        return Err(Error::invalid(
            "Give the poll a question, e.g. `/poll question: Lunch? options: Pizza | Pasta`.",
        ));
    }
    let n = question.chars().count();
    if n > MAX_QUESTION_CHARS {
        return Err(Error::invalid(format!(
            "The question is {n} characters long; keep it to {MAX_QUESTION_CHARS}."
        )));
    }
    let options = parse_options(invocation.text_arg("options").unwrap_or(""))?;
    let seconds = match invocation.text_arg("duration").map(str::trim) {
        Some(text) if !text.is_empty() => parse_duration(text, config.max_poll_days)?,
        _ => DEFAULT_SECONDS.min(u64::from(config.max_poll_days) * 86_400),
    };
    let number = store::next_poll_number()?;
    let created_at = now();
    let poll = Poll {
        number,
        channel_id: invocation.channel_id,
        message_id: None,
        question,
        multi: invocation.bool_arg("multi").unwrap_or(false),
        creator: invocation.invoker.user.id,
        created_at,
        ends_at: created_at + seconds,
        closed: false,
        closed_at: None,
        closed_by: None,
        job: None,
        options,
    };
    // Stored before it is posted, so that no click can find it missing; a
    // poll that cannot end on time or cannot be posted is removed again.
    store::insert_poll(&poll)?;
    let job = match scheduler::schedule(END_POLL_JOB, &number.to_string(), seconds as u32) {
        Ok(job) => job,
        Err(e) => {
            let _ = store::delete_poll(number);
            return Err(e);
        }
    };
    let body = render::poll_message(&poll, &Tally::empty(poll.options.len()));
    let message_id = match messages::send(poll.channel_id, body) {
        Ok(id) => id,
        Err(e) => {
            let _ = scheduler::cancel(&job);
            let _ = store::delete_poll(number);
            return match e {
                Error::Denied(Capability::Messages) => Ok(say(
                    "I may not post in this channel; ask an admin to allow it for the Fun feature.",
                )),
                e => Err(e),
            };
        }
    };
    let poll = store::update_poll(number, |p| {
        p.message_id = Some(message_id);
        p.job = Some(job.clone());
        Ok(())
    })?;
    publish(&poll, "created", &Tally::empty(poll.options.len()));
    Ok(say(format!(
        "Poll #{number} is up; it ends <t:{}:R>.",
        poll.ends_at
    )))
}

// ------------------------------------------------------------------ clicks

/// A button or the menu of a poll.
pub fn on_component(ctx: &Context, interaction: &ComponentInteraction) -> Result<Reply, Error> {
    let Some(click) = parse_custom_id(&interaction.custom_id) else {
        return Err(Error::invalid("unknown component"));
    };
    let voter = interaction.invoker.user.id;
    let answer = match click {
        Click::Vote {
            poll,
            option: Some(index),
        } => vote(ctx, poll, voter, Choice::Button(index)),
        Click::Vote { poll, option: None } => interaction
            .values
            .iter()
            .map(|v| v.parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::invalid("That option is not on this poll."))
            .and_then(|chosen| vote(ctx, poll, voter, Choice::Menu(chosen))),
        Click::End { poll } => end_button(ctx, poll, &interaction.invoker),
    };
    crate::politely(answer)
}

/// How a member chose.
enum Choice {
    /// Option `index`'s button: that option alone, or on a multiple-choice
    /// poll that option toggled.
    Button(usize),
    /// The menu: exactly these options.
    Menu(Vec<usize>),
}

/// The member's new vote, given their vote `before`.
fn chosen(poll: &Poll, choice: &Choice, before: &[usize]) -> Result<Vec<usize>, Error> {
    let mut after = match choice {
        Choice::Button(index) if poll.multi => {
            let mut after = before.to_vec();
            match after.iter().position(|i| i == index) {
                Some(at) => {
                    after.remove(at);
                }
                None => after.push(*index),
            }
            after
        }
        Choice::Button(index) => vec![*index],
        Choice::Menu(indexes) => indexes.clone(),
    };
    after.sort_unstable();
    after.dedup();
    if after.iter().any(|&i| i >= poll.options.len()) {
        return Err(Error::invalid("That option is not on this poll."));
    }
    if matches!(choice, Choice::Menu(_)) && after.is_empty() {
        return Err(Error::invalid("Choose at least one option."));
    }
    if !poll.multi && after.len() > 1 {
        return Err(Error::invalid("This poll takes one choice per member."));
    }
    Ok(after)
}

fn vote(ctx: &Context, number: u64, voter: Snowflake, choice: Choice) -> Result<Reply, Error> {
    let poll = store::load_poll(number)?;
    if poll.closed {
        return Ok(say(ENDED));
    }
    if now() >= poll.ends_at {
        // Its job is late (or was lost): end it here; the job will find it
        // ended and do nothing.
        end(ctx, number, Closer::Timer)?;
        return Ok(say(ENDED));
    }
    // Checked before the compare-and-set, so a bad click writes nothing.
    chosen(&poll, &choice, &[])?;
    let (before, after) =
        store::update_vote(number, voter, |before| chosen(&poll, &choice, before))?;
    if before != after {
        store::apply_to_tally(number, &before, &after)?;
        // The vote is in; a message that cannot be edited (deleted, say)
        // does not undo it.
        match refresh(number) {
            Ok((poll, tally)) => publish(&poll, "voted", &tally),
            Err(e) => log::warn(format!(
                "poll #{number}: the message was not updated: {e:?}"
            )),
        }
    }
    Ok(say(render::vote_answer(&poll, &before, &after)))
}

/// Edits the poll's message to show what storage holds, and checks again
/// after each edit: two votes at once may edit in the other order than they
/// counted, and the one that edits last must not leave the older counts
/// showing. Likewise a vote that edits after the poll ended shows it ended.
/// Returns the poll and counts last shown.
pub fn refresh(number: u64) -> Result<(Poll, Tally), Error> {
    refresh_then(number, || {})
}

/// [`refresh`], calling `after_edit` after each edit: the moment another
/// invocation's write would make the edit stale (tests write there).
pub fn refresh_then(number: u64, mut after_edit: impl FnMut()) -> Result<(Poll, Tally), Error> {
    let mut shown: Option<(Poll, Tally)> = None;
    for _ in 0..REFRESH_ATTEMPTS {
        let poll = store::load_poll(number)?;
        let tally = store::tally(number, poll.options.len())?;
        if let Some((p, t)) = &shown
            && p.closed == poll.closed
            && *t == tally
        {
            break;
        }
        if let Some(message_id) = poll.message_id {
            messages::edit(
                poll.channel_id,
                message_id,
                render::poll_message(&poll, &tally),
            )?;
            after_edit();
        }
        shown = Some((poll, tally));
    }
    shown.ok_or_else(|| Error::NotFound(format!("poll #{number}")))
}

// ------------------------------------------------------------------ ending

fn end_button(ctx: &Context, number: u64, member: &Member) -> Result<Reply, Error> {
    let poll = store::load_poll(number)?;
    if poll.closed {
        return Ok(say("This poll has already ended."));
    }
    // The creator may always; anyone else needs Manage Messages (one host
    // call, spent only when it matters).
    let allowed =
        poll.creator == member.user.id || invocation::invoker_permissions() & MANAGE_MESSAGES != 0;
    if !allowed {
        return Ok(say(
            "Only the member who started this poll, or someone with Manage Messages, can end it early.",
        ));
    }
    Ok(say(
        match end(ctx, number, Closer::Member(member.user.id))? {
            Some(_) => format!("You ended poll #{number}; the results are posted in the channel."),
            None => "This poll has already ended.".to_string(),
        },
    ))
}

/// Ends poll `number`: marks it closed, settles the counts, shows the final
/// message and posts the results. Returns the poll when this call ended it,
/// `None` when it had ended already — so ending twice (the job and a click,
/// or a retried job) posts the results once and changes nothing else.
pub fn end(ctx: &Context, number: u64, closer: Closer) -> Result<Option<Poll>, Error> {
    let Some(poll) = store::close_poll(number, closer)? else {
        return Ok(None);
    };
    if let (Closer::Member(_), Some(job)) = (closer, &poll.job) {
        // Nothing left for the job to do (were it to run anyway, it would
        // find the poll ended).
        let _ = scheduler::cancel(job);
    }
    let tally = store::settle_tally(number, poll.options.len())?;
    if let Err(e) = refresh(number) {
        log::warn(format!(
            "poll #{number}: the ended poll's message was not updated: {e:?}"
        ));
    }
    messages::send(
        poll.channel_id,
        render::results_message(ctx.guild_id, &poll, &tally),
    )?;
    publish(&poll, "ended", &tally);
    Ok(Some(poll))
}

/// The `end-poll` job.
pub fn on_end_job(ctx: &Context, job: &ScheduledJob) -> Result<(), Error> {
    let number = job
        .payload
        .trim()
        .parse::<u64>()
        .map_err(|_| Error::invalid(format!("end-poll job payload `{}`", job.payload)))?;
    match end(ctx, number, Closer::Timer) {
        // The poll's record is gone: nothing to end.
        Err(Error::NotFound(_)) => Ok(()),
        other => other.map(drop),
    }
}

/// Tells open dashboards (`poll_update`: `{"poll", "action", "counts",
/// "voters", "closed"}`). A notification, not a record: when it cannot be
/// sent (the guild's live rate, say), nothing else is held up.
fn publish(poll: &Poll, action: &str, tally: &Tally) {
    let _ = live::publish(
        "poll_update",
        &json!({
            "poll": poll.number,
            "action": action,
            "counts": tally.counts,
            "voters": tally.voters,
            "closed": poll.closed,
        }),
    );
}
