//! What can happen to a ticket, whoever asks: a button, a command, the
//! inactivity job or the dashboard — and the helpers the other modules share
//! to tell people about it.
//!
//! Who may ask is the caller's business (see `interactions`; the host lets only
//! the guild's managers reach the routes). What the ticket's state allows is
//! checked here, and a refusal is `Error::InvalidArgument` with a sentence a
//! member can read. Discord and storage are changed in an order that leaves
//! nothing half done when a step fails: Discord first where it can refuse,
//! then the ticket, then the courtesies (notes, DMs, log, live, audit), whose
//! failures are logged and do not undo the action.

use crate::store::{self, Panel, Status, Ticket};
use crate::time::{human_duration, now};
use crate::transcript::{self, why};
use crate::{Config, Naming, permissions::*};
use townes_sdk::{
    ActionRow, Button, ChannelSpec, Context, Embed, Error, Member, MessageBody,
    PermissionOverwrite, Snowflake, audit, channels, files, json, live, log, members, messages,
    scheduler,
};

/// Characters of a close reason.
pub const MAX_REASON: usize = 1000;
const MAX_CHANNEL_NAME: usize = 90;
/// Discord refuses link buttons with longer URLs.
const MAX_BUTTON_URL: usize = 512;
/// Discord's own colours, for embeds.
pub(crate) const BLURPLE: u32 = 0x5865f2;
const RED: u32 = 0xda373c;
const GREEN: u32 = 0x23a55a;

/// `<@id>`, or "the dashboard" when an API key acted.
pub fn who(by: Option<Snowflake>) -> String {
    by.map_or_else(|| "the dashboard".into(), |id| format!("<@{id}>"))
}

/// Posts a note; a note that cannot be posted is logged, not fatal.
pub(crate) fn notify(channel_id: Snowflake, body: impl Into<MessageBody>) -> Option<Snowflake> {
    match messages::send(channel_id, body) {
        Ok(id) => Some(id),
        Err(error) => {
            log::warn(format!("cannot post in channel {channel_id}: {error:?}"));
            None
        }
    }
}

/// Writes an audit entry `ticket.{action}`; audit is optional, so a denial is
/// expected and anything else only logged.
pub(crate) fn audit_entry(action: &str, details: &str) {
    match audit::write(&format!("ticket.{action}"), details) {
        Ok(()) | Err(Error::Denied(_)) => {}
        Err(error) => log::warn(format!("audit ticket.{action}: {error:?}")),
    }
}

/// Tells the dashboard live (`ticket_update`) and the audit log.
pub(crate) fn announce(ticket: &Ticket, action: &str, details: &str) {
    let event = json!({ "ticket": ticket, "action": action });
    if let Err(error) = live::publish("ticket_update", &event) {
        log::warn(format!("live ticket_update: {error:?}"));
    }
    if action != "warned" {
        audit_entry(action, details);
    }
}

pub(crate) fn must_be_open(ticket: &Ticket) -> Result<(), Error> {
    match ticket.status {
        Status::Open => Ok(()),
        status => Err(Error::invalid(format!(
            "Ticket #{} is {}.",
            ticket.number,
            status.as_str()
        ))),
    }
}

pub(crate) fn schedule_inactivity(number: u64, delay_seconds: u64) -> Result<String, Error> {
    let delay = u32::try_from(delay_seconds).unwrap_or(u32::MAX);
    scheduler::schedule(
        crate::inactivity::INACTIVITY_JOB,
        &number.to_string(),
        delay,
    )
}

/// [`schedule_inactivity`] where a ticket can live without it (a guild at its
/// plan's pending-job cap): the next message tries again.
pub(crate) fn try_schedule_inactivity(number: u64, config: &Config) -> Option<String> {
    if config.inactive_seconds == 0 {
        return None;
    }
    schedule_inactivity(number, config.inactive_seconds.into())
        .inspect_err(|e| log::warn(format!("ticket #{number}: no inactivity check: {e:?}")))
        .ok()
}

fn cancel_job(job_id: Option<&str>) {
    if let Some(job_id) = job_id {
        let _ = scheduler::cancel(job_id);
    }
}

/// The trimmed text, or none when blank.
pub(crate) fn given(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

pub(crate) fn check_length(what: &str, text: &str, max: usize) -> Result<(), Error> {
    let n = text.chars().count();
    if n > max {
        return Err(Error::invalid(format!(
            "{what} is {n} characters; at most {max}"
        )));
    }
    Ok(())
}

// ----------------------------------------------------------------- opening

/// The new channel's name: `ticket-{username}` cut down to `a-z 0-9 -`, or
/// `ticket-{number}` when nothing is left of the name or the guild asks for
/// numbers.
pub fn channel_name(naming: Naming, username: &str, number: u64) -> String {
    if naming == Naming::Username {
        let mut slug = String::new();
        for c in username.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        let mut name = format!("ticket-{slug}");
        name.truncate(MAX_CHANNEL_NAME);
        let name = name.trim_end_matches('-');
        if name.len() > "ticket".len() {
            return name.to_string();
        }
    }
    format!("ticket-{number}")
}

/// The ticket channel: hidden from `@everyone`; the opener, each support role
/// and the bot see it and write in it — and nobody gets more than that.
fn channel_spec(
    ctx: &Context,
    config: &Config,
    panel: &Panel,
    opener: &Member,
    number: u64,
) -> ChannelSpec {
    let name: String = opener.display_name().chars().take(100).collect();
    let mut spec = ChannelSpec::text(channel_name(config.naming, &opener.user.username, number))
        .topic(format!("Ticket #{number}, opened by {name}"))
        .overwrite(PermissionOverwrite::role(ctx.guild_id, 0, VIEW_CHANNEL))
        .overwrite(PermissionOverwrite::member(
            opener.user.id,
            MEMBER_ACCESS,
            0,
        ))
        .overwrite(PermissionOverwrite::member(
            ctx.bot_user_id,
            MEMBER_ACCESS,
            0,
        ));
    for &role in &panel.support_roles {
        if role != ctx.guild_id {
            spec = spec.overwrite(PermissionOverwrite::role(role, MEMBER_ACCESS, 0));
        }
    }
    if let Some(category) = panel.category_id {
        spec = spec.parent(category);
    }
    spec
}

fn welcome_body(ticket: &Ticket) -> MessageBody {
    let n = ticket.number;
    let roles: Vec<String> = ticket
        .support_roles
        .iter()
        .map(|r| format!("<@&{r}>"))
        .collect();
    let team = if roles.is_empty() {
        "the support team".to_string()
    } else {
        roles.join(" ")
    };
    let embed = Embed::new()
        .title(format!("Ticket #{n}"))
        .description(format!(
            "Welcome, <@{}>! Tell us what you need, and {team} will be with you soon.\n\n\
             Support: **Claim** the ticket to take it on, **Close** it when it is done.",
            ticket.opener_id
        ))
        .color(BLURPLE);
    // The mentions in the text are what notify the opener and the team.
    MessageBody::text(format!("<@{}> {}", ticket.opener_id, roles.join(" ")).trim_end())
        .with_embed(embed)
        .with_row(
            ActionRow::new()
                .button(Button::primary(format!("claim:{n}"), "Claim").emoji("🙋"))
                .button(Button::secondary(format!("unclaim:{n}"), "Unclaim"))
                .button(Button::danger(format!("close:{n}"), "Close").emoji("🔒")),
        )
}

/// Opens a ticket for `opener` from `panel`, within the member's and the
/// guild's limits.
pub fn open(
    ctx: &Context,
    config: &Config,
    panel: &Panel,
    opener: &Member,
) -> Result<Ticket, Error> {
    let user_id = opener.user.id;
    if !store::lock_opening(user_id)? {
        return Err(Error::invalid(
            "Your ticket is already being opened; one moment.",
        ));
    }
    let opened = open_locked(ctx, config, panel, opener);
    store::unlock_opening(user_id);
    opened
}

fn open_locked(
    ctx: &Context,
    config: &Config,
    panel: &Panel,
    opener: &Member,
) -> Result<Ticket, Error> {
    let user_id = opener.user.id;
    let max = config.max_open_per_member;
    let open = store::open_tickets_of(user_id, max + 1)?;
    if open.len() >= max as usize {
        let channels: Vec<String> = open.iter().map(|(_, c)| format!("<#{c}>")).collect();
        let (what, which) = if open.len() == 1 {
            ("a ticket", "it")
        } else {
            ("tickets", "one")
        };
        return Err(Error::invalid(format!(
            "You already have {what} open ({}); close {which} before opening another.",
            channels.join(", ")
        )));
    }
    if !store::count_guild_opening(config.max_opens_per_30s)? {
        return Err(Error::invalid(
            "Too many tickets are being opened right now; try again in a few seconds.",
        ));
    }
    let number = store::next_ticket_number()?;
    let channel_id = channels::create(&channel_spec(ctx, config, panel, opener, number))?;
    let now = now();
    let ticket = Ticket {
        number,
        panel: panel.number,
        channel_id,
        opener_id: user_id,
        opener_name: opener.display_name().to_string(),
        support_roles: panel.support_roles.clone(),
        status: Status::Open,
        claimed_by: None,
        opened_at: now,
        last_activity: now,
        closed_at: None,
        closed_by: None,
        close_reason: None,
        transcript: None,
        warned_at: None,
        inactivity_job: try_schedule_inactivity(number, config),
    };
    if let Err(error) = store::insert_ticket(&ticket) {
        // A channel no ticket knows of would stay forever.
        let _ = channels::delete(channel_id);
        return Err(error);
    }
    notify(channel_id, welcome_body(&ticket));
    announce(
        &ticket,
        "opened",
        &format!(
            "ticket #{number} opened by {} ({user_id}) in channel {channel_id}",
            ticket.opener_name
        ),
    );
    Ok(ticket)
}

// ------------------------------------------------------- claiming, members

/// `by` takes the ticket on; refused while someone else holds it.
pub fn claim(number: u64, by: Snowflake) -> Result<Ticket, Error> {
    let current = store::load_ticket(number)?;
    if current.status == Status::Open && current.claimed_by == Some(by) {
        return Ok(current);
    }
    let ticket = store::update_ticket(number, |t| {
        must_be_open(t)?;
        match t.claimed_by {
            Some(holder) if holder != by => Err(Error::invalid(format!(
                "Ticket #{number} is already claimed by <@{holder}>; they (or someone who can manage channels) can unclaim it first."
            ))),
            _ => {
                t.claimed_by = Some(by);
                Ok(())
            }
        }
    })?;
    notify(
        ticket.channel_id,
        format!("🙋 <@{by}> claimed this ticket and will help you from here."),
    );
    announce(
        &ticket,
        "claimed",
        &format!("ticket #{number} claimed by {by}"),
    );
    Ok(ticket)
}

/// Frees a claimed ticket for another supporter.
pub fn unclaim(number: u64, by: Option<Snowflake>) -> Result<Ticket, Error> {
    let mut holder = None;
    let ticket = store::update_ticket(number, |t| {
        must_be_open(t)?;
        holder = t.claimed_by.take();
        match holder {
            Some(_) => Ok(()),
            None => Err(Error::invalid(format!("Ticket #{number} is not claimed."))),
        }
    })?;
    let from = holder
        .filter(|&holder| by != Some(holder))
        .map(|holder| format!(" from <@{holder}>"))
        .unwrap_or_default();
    notify(
        ticket.channel_id,
        format!(
            "{} unclaimed this ticket{from}; another supporter can claim it.",
            who(by)
        ),
    );
    announce(
        &ticket,
        "unclaimed",
        &format!("ticket #{number} unclaimed by {}", who(by)),
    );
    Ok(ticket)
}

/// Lets `user_id` see and write in the ticket.
pub fn add_member(ticket: &Ticket, user_id: Snowflake, by: Snowflake) -> Result<(), Error> {
    channels::set_overwrite(
        ticket.channel_id,
        PermissionOverwrite::member(user_id, MEMBER_ACCESS, 0),
    )?;
    notify(
        ticket.channel_id,
        format!("➕ <@{user_id}> was added to this ticket by <@{by}>."),
    );
    audit_entry(
        "member_added",
        &format!("ticket #{}: {user_id} added by {by}", ticket.number),
    );
    Ok(())
}

/// Hides the ticket from `user_id` again. (The contract cannot delete an
/// overwrite, so this one denies the view instead.)
pub fn remove_member(
    ctx: &Context,
    ticket: &Ticket,
    user_id: Snowflake,
    by: Snowflake,
) -> Result<(), Error> {
    if user_id == ticket.opener_id {
        return Err(Error::invalid(
            "That member opened this ticket; close it instead of removing them.",
        ));
    }
    if user_id == ctx.bot_user_id {
        return Err(Error::invalid("I have to stay in the ticket to run it."));
    }
    channels::set_overwrite(
        ticket.channel_id,
        PermissionOverwrite::member(user_id, 0, VIEW_CHANNEL),
    )?;
    notify(
        ticket.channel_id,
        format!("➖ <@{user_id}> was removed from this ticket by <@{by}>."),
    );
    audit_entry(
        "member_removed",
        &format!("ticket #{}: {user_id} removed by {by}", ticket.number),
    );
    Ok(())
}

// ----------------------------------------------------------------- closing

/// The reason trimmed, none when blank; refused when too long.
pub fn clean_reason(reason: Option<&str>) -> Result<Option<String>, Error> {
    let reason = given(reason.map(str::to_string));
    if let Some(reason) = &reason {
        check_length("the reason", reason, MAX_REASON)?;
    }
    Ok(reason)
}

pub(crate) fn mark_closed(
    ticket: &mut Ticket,
    at: u64,
    by: Option<Snowflake>,
    reason: Option<String>,
) {
    ticket.status = Status::Closed;
    ticket.closed_at = Some(at);
    ticket.closed_by = by;
    ticket.close_reason = reason;
    ticket.warned_at = None;
    ticket.inactivity_job = None;
}

/// "the link works for 7 days".
fn link_life(config: &Config) -> String {
    format!(
        "the link works for {}",
        human_duration(config.link_seconds().into())
    )
}

fn transcript_line(link: &Result<String, Error>, config: &Config) -> String {
    match link {
        Ok(url) => format!("[Open the transcript]({url}) ({})", link_life(config)),
        Err(error) => format!("No transcript: {}", why(error)),
    }
}

fn closed_body(ticket: &Ticket, link: &Result<String, Error>, config: &Config) -> MessageBody {
    let n = ticket.number;
    // The reason goes in the embed: text there mentions nobody.
    let embed = Embed::new()
        .title(format!("Ticket #{n} closed"))
        .description(format!(
            "Ticket closed by {}.\n**Reason:** {}\n\n{}",
            who(ticket.closed_by),
            ticket.close_reason.as_deref().unwrap_or("none given"),
            transcript_line(link, config)
        ))
        .color(RED);
    let mut row = ActionRow::new()
        .button(Button::success(format!("reopen:{n}"), "Reopen").emoji("🔓"))
        .button(Button::danger(format!("delete:{n}"), "Delete").emoji("🗑️"));
    if let Ok(url) = link
        && url.len() <= MAX_BUTTON_URL
    {
        row = row.button(Button::link(url, "Transcript"));
    }
    MessageBody::embed(embed).with_row(row)
}

/// DMs the opener the transcript; when they take no DMs, posts the link in
/// the ticket for them instead.
fn send_transcript_to_opener(ticket: &Ticket, link: &Result<String, Error>, config: &Config) {
    let guild = members::guild().map(|g| g.name).unwrap_or_default();
    let place = if guild.is_empty() {
        String::new()
    } else {
        format!(" in {guild}")
    };
    let embed = Embed::new()
        .title(format!("Your ticket #{}{place} was closed", ticket.number))
        .description(format!(
            "Closed by {}.\n**Reason:** {}\n\n{}",
            who(ticket.closed_by),
            ticket.close_reason.as_deref().unwrap_or("none given"),
            transcript_line(link, config)
        ))
        .color(RED);
    match members::send_dm(ticket.opener_id, embed) {
        Ok(_) => {}
        Err(Error::Unavailable(_)) => {
            if let Ok(url) = link {
                notify(
                    ticket.channel_id,
                    format!(
                        "<@{}> I could not send you a direct message, so here is the transcript of this ticket: <{url}> ({}).",
                        ticket.opener_id,
                        link_life(config)
                    ),
                );
            }
        }
        Err(error) => log::warn(format!(
            "ticket #{}: transcript not sent to the opener: {error:?}",
            ticket.number
        )),
    }
}

fn log_closing(ticket: &Ticket, link: &Result<String, Error>, config: &Config) {
    let Some(log_channel) = config.log_channel else {
        return;
    };
    let embed = Embed::new()
        .title(format!("Ticket #{} closed", ticket.number))
        .field("Opened by", format!("<@{}>", ticket.opener_id), true)
        .field("Closed by", who(ticket.closed_by), true)
        .field(
            "Reason",
            ticket.close_reason.as_deref().unwrap_or("none given"),
            false,
        )
        .field("Transcript", transcript_line(link, config), false)
        .color(RED);
    notify(log_channel, embed);
}

/// Closes an open ticket: the opener can read but no longer write, the
/// transcript is made, and the opener, the channel and the log hear of it.
/// `by` is none when the dashboard closes with an API key.
pub fn close(
    config: &Config,
    number: u64,
    by: Option<Snowflake>,
    reason: Option<String>,
) -> Result<Ticket, Error> {
    let ticket = store::load_ticket(number)?;
    must_be_open(&ticket)?;
    let pending_job = ticket.inactivity_job.clone();
    // First, because Discord may refuse it: then nothing has changed yet.
    // Not found means the opener left the guild (or the channel is gone):
    // there is no one to silence, and the ticket closes all the same.
    let silence_opener = PermissionOverwrite::member(
        ticket.opener_id,
        VIEW_CHANNEL | READ_MESSAGE_HISTORY,
        SEND_MESSAGES,
    );
    match channels::set_overwrite(ticket.channel_id, silence_opener) {
        Ok(()) | Err(Error::NotFound(_)) => {}
        Err(error) => return Err(error),
    }
    let closed_at = now();
    let mut closing = ticket.clone();
    mark_closed(&mut closing, closed_at, by, reason.clone());
    // A ticket closes even when its transcript cannot be made; the closing
    // message says why, and deleting it later tries again.
    let made = transcript::make(&closing, config.link_seconds());
    if let Err(error) = &made {
        log::warn(format!("ticket #{number}: no transcript: {error:?}"));
    }
    let ticket = store::update_ticket(number, |t| {
        must_be_open(t)?;
        mark_closed(t, closed_at, by, reason.clone());
        if let Ok(name) = &made {
            t.transcript = Some(name.clone());
        }
        Ok(())
    })?;
    store::remove_open_index(&ticket)?;
    cancel_job(pending_job.as_deref());
    let link = made.and_then(|name| files::link(&name, config.link_seconds()));
    notify(ticket.channel_id, closed_body(&ticket, &link, config));
    send_transcript_to_opener(&ticket, &link, config);
    log_closing(&ticket, &link, config);
    announce(
        &ticket,
        "closed",
        &format!(
            "ticket #{number} closed by {}; reason: {}",
            by.map_or_else(|| "the dashboard".into(), |id| id.to_string()),
            ticket.close_reason.as_deref().unwrap_or("none")
        ),
    );
    Ok(ticket)
}

/// Reopens a closed ticket: the opener may write again and the inactivity
/// clock starts over.
pub fn reopen(config: &Config, number: u64, by: Option<Snowflake>) -> Result<Ticket, Error> {
    let ticket = store::load_ticket(number)?;
    if ticket.status != Status::Closed {
        return Err(Error::invalid(format!(
            "Ticket #{number} is {}; only a closed ticket can be reopened.",
            ticket.status.as_str()
        )));
    }
    channels::set_overwrite(
        ticket.channel_id,
        PermissionOverwrite::member(ticket.opener_id, MEMBER_ACCESS, 0),
    )?;
    let job = try_schedule_inactivity(number, config);
    let reopened_at = now();
    let ticket = store::update_ticket(number, |t| {
        if t.status != Status::Closed {
            return Err(Error::invalid(format!("Ticket #{number} is not closed.")));
        }
        t.status = Status::Open;
        t.closed_at = None;
        t.closed_by = None;
        t.close_reason = None;
        t.warned_at = None;
        t.last_activity = reopened_at;
        t.inactivity_job = job.clone();
        Ok(())
    })?;
    store::restore_open_index(&ticket)?;
    notify(
        ticket.channel_id,
        Embed::new()
            .title(format!("Ticket #{number} reopened"))
            .description(format!("Reopened by {}.", who(by)))
            .color(GREEN),
    );
    announce(
        &ticket,
        "reopened",
        &format!("ticket #{number} reopened by {}", who(by)),
    );
    Ok(ticket)
}

/// Deletes the ticket's channel, after making the transcript if it has none:
/// when that fails the channel stays, since its history would be lost.
pub fn delete(config: &Config, number: u64, by: Option<Snowflake>) -> Result<Ticket, Error> {
    let ticket = store::load_ticket(number)?;
    if ticket.status == Status::Deleted {
        return Err(Error::invalid(format!(
            "Ticket #{number} is already deleted."
        )));
    }
    let pending_job = ticket.inactivity_job.clone();
    let deleted_at = now();
    let transcript = match &ticket.transcript {
        Some(name) => name.clone(),
        None => {
            let mut closing = ticket.clone();
            if closing.status == Status::Open {
                mark_closed(&mut closing, deleted_at, by, None);
            }
            transcript::make(&closing, config.link_seconds())?
        }
    };
    match channels::delete(ticket.channel_id) {
        // Someone deleted it in Discord already.
        Ok(()) | Err(Error::NotFound(_)) => {}
        Err(error) => return Err(error),
    }
    let ticket = store::update_ticket(number, |t| {
        if t.status == Status::Open {
            mark_closed(t, deleted_at, by, None);
        }
        t.status = Status::Deleted;
        t.transcript = Some(transcript.clone());
        t.warned_at = None;
        t.inactivity_job = None;
        Ok(())
    })?;
    store::remove_indexes(&ticket)?;
    cancel_job(pending_job.as_deref());
    announce(
        &ticket,
        "deleted",
        &format!("ticket #{number} deleted by {}", who(by)),
    );
    Ok(ticket)
}
