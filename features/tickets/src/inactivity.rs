//! Auto-close: a ticket nobody writes in is warned, then closed.
//!
//! Each open ticket has at most one pending `inactivity` job, whose id the
//! ticket keeps; a job that finds another id there is a leftover (of a
//! reopening, a close or a retry) and does nothing. Messages only move the
//! ticket's clock; the job works out when to look again.

use crate::Config;
use crate::actions::{announce, close, schedule_inactivity, try_schedule_inactivity};
use crate::store::{self, Status, Ticket};
use crate::time::{human_duration, now};
use townes_sdk::{Context, Error, Message, ScheduledJob, messages};

/// The scheduled job that checks a ticket for inactivity; its payload is the
/// ticket number.
pub const INACTIVITY_JOB: &str = "inactivity";
/// The reason the inactivity job closes with.
pub const INACTIVITY_REASON: &str = "No activity";

/// A human wrote in a channel: when it is an open ticket's, its inactivity
/// clock starts over and a pending warning is void.
pub fn note_activity(ctx: &Context, message: &Message) -> Result<(), Error> {
    if message.author.bot || message.author.id == ctx.bot_user_id {
        return Ok(());
    }
    // Most messages are not in a ticket: one lookup, and done.
    let Some(number) = store::ticket_number_in(message.channel_id)? else {
        return Ok(());
    };
    let config = Config::load()?;
    let now = now();
    // A busy ticket need not be written on every message: the clock may lag
    // by a twentieth of the inactivity time, a minute at most.
    let granularity = match config.inactive_seconds {
        0 => 60,
        seconds => (u64::from(seconds) / 20).min(60),
    };
    let ticket = store::update_ticket(number, |t| {
        let stale = now.saturating_sub(t.last_activity) >= granularity;
        if t.status == Status::Open && (stale || t.warned_at.is_some()) {
            t.last_activity = now;
            t.warned_at = None;
        }
        Ok(())
    })?;
    // A ticket opened while auto-close was off (or at the job cap) has no
    // check yet: start one now.
    if ticket.status == Status::Open
        && ticket.inactivity_job.is_none()
        && let Some(job) = try_schedule_inactivity(number, &config)
    {
        store::update_ticket(number, |t| {
            if t.inactivity_job.is_none() {
                t.inactivity_job = Some(job.clone());
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Replaces the ticket's pending job `current` by `next`, unless the ticket
/// moved on meanwhile (then `next` finds itself stale and does nothing).
fn hand_over_job(
    number: u64,
    current: &str,
    next: String,
    warned_at: Option<u64>,
) -> Result<Ticket, Error> {
    store::update_ticket(number, |t| {
        if t.status == Status::Open && t.inactivity_job.as_deref() == Some(current) {
            t.inactivity_job = Some(next.clone());
            if warned_at.is_some() {
                t.warned_at = warned_at;
            }
        }
        Ok(())
    })
}

/// The inactivity job: waits while someone writes, warns once the ticket has
/// been quiet for `inactive_seconds`, and closes it when the warning went
/// unanswered for `warning_seconds`.
pub fn check_inactivity(ctx: &Context, config: &Config, job: &ScheduledJob) -> Result<(), Error> {
    let number: u64 = job
        .payload
        .parse()
        .map_err(|_| Error::invalid(format!("inactivity job payload `{}`", job.payload)))?;
    let ticket = match store::load_ticket(number) {
        Err(Error::NotFound(_)) => return Ok(()),
        other => other?,
    };
    // Each ticket has one live job; any other is a leftover of a reopening,
    // a close or a retry.
    if ticket.inactivity_job.as_deref() != Some(job.id.as_str()) {
        return Ok(());
    }
    if ticket.status != Status::Open || config.inactive_seconds == 0 {
        store::update_ticket(number, |t| {
            if t.inactivity_job.as_deref() == Some(job.id.as_str()) {
                t.inactivity_job = None;
            }
            Ok(())
        })?;
        return Ok(());
    }
    let now = now();
    let inactive = u64::from(config.inactive_seconds);
    let warning = u64::from(config.warning_seconds);
    let quiet = now.saturating_sub(ticket.last_activity);
    match ticket.warned_at {
        // Warned, and nobody wrote since.
        Some(warned_at) if ticket.last_activity <= warned_at => {
            let waited = now.saturating_sub(warned_at);
            if waited < warning {
                let next = schedule_inactivity(number, warning - waited)?;
                hand_over_job(number, &job.id, next, None)?;
                return Ok(());
            }
            close(
                config,
                number,
                Some(ctx.bot_user_id),
                Some(INACTIVITY_REASON.to_string()),
            )
            .map(drop)
        }
        _ if quiet < inactive => {
            let next = schedule_inactivity(number, inactive - quiet)?;
            hand_over_job(number, &job.id, next, None)?;
            Ok(())
        }
        _ => {
            let warning_text = format!(
                "⏰ This ticket has been quiet for a while. It will close in {} if nobody writes.",
                human_duration(warning)
            );
            // Where a message cannot be posted because the channel is not
            // found, someone deleted it in Discord.
            if let Err(error) = messages::send(ticket.channel_id, warning_text) {
                return match error {
                    Error::NotFound(_) => forget_vanished_channel(number),
                    error => Err(error),
                };
            }
            let next = schedule_inactivity(number, warning)?;
            let ticket = hand_over_job(number, &job.id, next, Some(now))?;
            announce(&ticket, "warned", "");
            Ok(())
        }
    }
}

/// The ticket's channel was deleted in Discord: the ticket is deleted too.
fn forget_vanished_channel(number: u64) -> Result<(), Error> {
    let ticket = store::update_ticket(number, |t| {
        t.status = Status::Deleted;
        t.inactivity_job = None;
        t.warned_at = None;
        Ok(())
    })?;
    store::remove_indexes(&ticket)?;
    announce(
        &ticket,
        "deleted",
        &format!("ticket #{number}: its channel is gone"),
    );
    Ok(())
}
