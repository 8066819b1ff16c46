//! What can happen to an announcement, whoever asks — the command, the
//! dashboard or the lifecycle — and keeping its one job in line with it.
//!
//! Who may ask is the caller's business (Discord holds `/announce` to Manage
//! Server by default; the host lets only the guild's managers reach the
//! routes). What makes sense is checked here, and a refusal is
//! `Error::InvalidArgument` with a sentence saying what would work.
//!
//! Jobs follow one pattern: a change first stores the announcement with *no*
//! job (taking the old job id out in the same compare-and-set), then cancels
//! the old job, then [`arm`]s a new one. A job that fires in between finds
//! another id than its own and does nothing, so no interleaving posts twice.

use crate::Config;
use crate::run::{self, ANNOUNCE_JOB, JobPayload, MAX_EMBED_DESCRIPTION};
use crate::schedule::{self, Schedule, delay_until};
use crate::store::{self, Announcement, EmbedSpec};
use crate::time::{format_unix, now};
use townes_sdk::{Context, Error, Snowflake, audit, json, limits, live, log, scheduler};

/// What a new announcement is made of.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub channel_id: Snowflake,
    pub content: String,
    pub embed: Option<EmbedSpec>,
    pub ping_role: Option<Snowflake>,
    pub schedule: Schedule,
    /// Created paused: stored, not scheduled until resumed.
    pub paused: bool,
}

/// What an edit changes; `None` leaves a field as it is (`Some(None)`
/// removes the embed or the role).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Patch {
    pub channel_id: Option<Snowflake>,
    pub content: Option<String>,
    pub embed: Option<Option<EmbedSpec>>,
    pub ping_role: Option<Option<Snowflake>>,
    pub schedule: Option<Schedule>,
}

impl Patch {
    pub fn is_empty(&self) -> bool {
        *self == Patch::default()
    }
}

// ------------------------------------------------------------- telling

/// `<@id>`, or "the dashboard" when an API key acted.
pub fn who(by: Option<Snowflake>) -> String {
    by.map_or_else(|| "the dashboard".into(), |id| format!("<@{id}>"))
}

/// Writes an audit entry `announcement.{action}`; audit is optional, so a
/// denial is expected and anything else (its hourly quota) only logged.
pub fn audit_entry(action: &str, details: &str) {
    match audit::write(&format!("announcement.{action}"), details) {
        Ok(()) | Err(Error::Denied(_)) => {}
        Err(error) => log::warn(format!("audit announcement.{action}: {error:?}")),
    }
}

/// Tells the dashboard live (`announcement_update`) and, given details, the
/// audit log.
pub fn tell(announcement: &Announcement, action: &str, audit_details: Option<String>) {
    let event = json!({ "announcement": announcement, "action": action });
    if let Err(error) = live::publish("announcement_update", &event) {
        log::warn(format!("live announcement_update: {error:?}"));
    }
    if let Some(details) = audit_details {
        audit_entry(action, &details);
    }
}

/// `#3 (daily at 09:30 UTC in <#300>)`.
fn summary(a: &Announcement) -> String {
    format!(
        "#{} ({} in <#{}>)",
        a.number,
        a.schedule.describe(),
        a.channel_id
    )
}

// ------------------------------------------------------------- checks

fn check_length(what: &str, text: &str, max: usize) -> Result<(), Error> {
    let n = text.chars().count();
    if n > max {
        return Err(Error::invalid(format!(
            "{what} is {n} characters; at most {max}"
        )));
    }
    Ok(())
}

/// The text and embed make a message Discord takes.
pub fn check_message(content: &str, embed: Option<&EmbedSpec>) -> Result<(), Error> {
    check_length("the message", content, limits::CONTENT)?;
    let blank = |t: &Option<String>| t.as_deref().is_none_or(|t| t.trim().is_empty());
    if let Some(embed) = embed {
        if blank(&embed.title) && blank(&embed.description) {
            return Err(Error::invalid(
                "the embed needs a title or a description (or leave the embed out)",
            ));
        }
        check_length(
            "the embed title",
            embed.title.as_deref().unwrap_or(""),
            limits::EMBED_TITLE,
        )?;
        check_length(
            "the embed description",
            embed.description.as_deref().unwrap_or(""),
            MAX_EMBED_DESCRIPTION,
        )?;
        if embed.color.is_some_and(|c| c > 0xff_ffff) {
            return Err(Error::invalid(
                "the embed colour is 0xRRGGBB: 0 to 16777215",
            ));
        }
    } else if content.trim().is_empty() {
        return Err(Error::invalid(
            "an announcement needs a message (or an embed)",
        ));
    }
    Ok(())
}

/// `@everyone` is the guild's own role id: never a role to ping.
pub fn check_ping_role(ctx: &Context, role: Option<Snowflake>) -> Result<(), Error> {
    if role == Some(ctx.guild_id) {
        return Err(Error::invalid(
            "@everyone is never pinged by announcements; pick a role (and list it in \
             allowed_ping_roles)",
        ));
    }
    Ok(())
}

/// A note for whoever set a role that the config does not let ping.
pub fn ping_note(ctx: &Context, config: &Config, a: &Announcement) -> Option<String> {
    let role = a.ping_role?;
    (!config.may_ping(role, ctx.guild_id)).then(|| {
        format!(
            "<@&{role}> is not in the config's `allowed_ping_roles`, so the announcement is \
             posted without pinging it until an admin allows the role."
        )
    })
}

fn no_more_runs(a: &Announcement) -> Error {
    let at = match a.schedule {
        Schedule::Once { at } => format_unix(at),
        _ => "its time".into(),
    };
    let what = if a.last_due.is_some() {
        format!("announcement #{} was already posted at {at}", a.number)
    } else {
        format!("the time of announcement #{} ({at}) has passed", a.number)
    };
    Error::invalid(format!(
        "{what}; give it a new time (PATCH its schedule) or post it now with send"
    ))
}

// ------------------------------------------------------------- jobs

fn cancel(job: Option<String>) {
    if let Some(job) = job
        && let Err(error) = scheduler::cancel(&job)
    {
        // A job left behind is stale when it fires: harmless.
        log::warn(format!("cannot cancel job {job}: {error:?}"));
    }
}

/// Gives a waiting announcement (not paused, a next run, no job) its job,
/// unless something changed it meanwhile: then the new job is cancelled and
/// the other change stands.
pub fn arm(number: u64, now: u64) -> Result<Announcement, Error> {
    let current = store::load(number)?;
    let Some(next) = current
        .next_run
        .filter(|_| !current.paused && current.pending_job.is_none())
    else {
        return Ok(current);
    };
    let payload = JobPayload { number, due: next }.to_text();
    let job = scheduler::schedule(ANNOUNCE_JOB, &payload, delay_until(next, now))?;
    let stored = store::update(number, |a| {
        let waiting = !a.paused && a.pending_job.is_none() && a.next_run == Some(next);
        if waiting {
            a.pending_job = Some(job.clone());
        }
        Ok(waiting)
    });
    match stored {
        Ok((a, true)) => Ok(a),
        Ok((a, false)) => {
            cancel(Some(job));
            Ok(a)
        }
        Err(error) => {
            cancel(Some(job));
            Err(error)
        }
    }
}

// ------------------------------------------------------------- actions

/// Creates an announcement and schedules its first run.
pub fn create(
    ctx: &Context,
    config: &Config,
    draft: Draft,
    by: Option<Snowflake>,
) -> Result<Announcement, Error> {
    let now = now();
    check_message(&draft.content, draft.embed.as_ref())?;
    check_ping_role(ctx, draft.ping_role)?;
    schedule::check_startable(&draft.schedule, now)?;
    let count = store::all()?.len();
    let max = config.max_announcements as usize;
    if count >= max {
        return Err(Error::invalid(format!(
            "this server has {count} announcements, the most `max_announcements` allows ({max}); \
             delete one first, or raise the limit in the feature's config"
        )));
    }
    let number = store::next_number()?;
    let next_run = if draft.paused {
        None
    } else {
        draft.schedule.first_after(now)
    };
    store::insert(&Announcement {
        number,
        channel_id: draft.channel_id,
        content: draft.content,
        embed: draft.embed,
        ping_role: draft.ping_role,
        schedule: draft.schedule,
        paused: draft.paused,
        next_run,
        last_run: None,
        runs: 0,
        created_by: by,
        created_at: now,
        pending_job: None,
        last_due: None,
        ping_skipped: false,
        last_error: None,
    })?;
    // Without its job the announcement would never run: undo it.
    let announcement = arm(number, now).inspect_err(|_| {
        let _ = store::remove(number);
    })?;
    tell(
        &announcement,
        "created",
        Some(format!("{} by {}", summary(&announcement), who(by))),
    );
    Ok(announcement)
}

/// Edits an announcement. A new schedule starts from now (the old job is
/// cancelled); other edits keep the next run, since the job reads the
/// announcement when it fires and so posts the edited version.
pub fn update(
    ctx: &Context,
    number: u64,
    patch: Patch,
    by: Option<Snowflake>,
) -> Result<Announcement, Error> {
    if patch.is_empty() {
        return Err(Error::invalid(
            "nothing to change: give content, embed, ping_role, channel_id or schedule",
        ));
    }
    let now = now();
    if let Some(schedule) = &patch.schedule {
        schedule::check_startable(schedule, now)?;
    }
    if let Some(role) = patch.ping_role {
        check_ping_role(ctx, role)?;
    }
    let (_, old_job) = store::update(number, |a| {
        if let Some(channel_id) = patch.channel_id {
            a.channel_id = channel_id;
        }
        if let Some(content) = &patch.content {
            a.content = content.clone();
        }
        if let Some(embed) = &patch.embed {
            a.embed = embed.clone();
        }
        if let Some(role) = patch.ping_role {
            if role != a.ping_role {
                // A new role gets its own audit note if it goes unpinged.
                a.ping_skipped = false;
            }
            a.ping_role = role;
        }
        check_message(&a.content, a.embed.as_ref())?;
        let Some(schedule) = &patch.schedule else {
            return Ok(None);
        };
        a.schedule = schedule.clone();
        a.next_run = (!a.paused).then(|| schedule.first_after(now)).flatten();
        Ok(a.pending_job.take())
    })?;
    cancel(old_job);
    let announcement = arm(number, now)?;
    let mut changed = Vec::new();
    for (name, given) in [
        ("channel", patch.channel_id.is_some()),
        ("content", patch.content.is_some()),
        ("embed", patch.embed.is_some()),
        ("role", patch.ping_role.is_some()),
        ("schedule", patch.schedule.is_some()),
    ] {
        if given {
            changed.push(name);
        }
    }
    tell(
        &announcement,
        "updated",
        Some(format!(
            "{} by {}: {}",
            summary(&announcement),
            who(by),
            changed.join(", ")
        )),
    );
    Ok(announcement)
}

/// Pauses: cancels the pending job. Answers whether it was running.
pub fn pause(number: u64, by: Option<Snowflake>) -> Result<(Announcement, bool), Error> {
    let (announcement, old_job) = store::update(number, |a| {
        if a.paused {
            return Ok(None);
        }
        a.paused = true;
        a.next_run = None;
        Ok(Some(a.pending_job.take()))
    })?;
    let Some(old_job) = old_job else {
        return Ok((announcement, false));
    };
    cancel(old_job);
    tell(
        &announcement,
        "paused",
        Some(format!("{} by {}", summary(&announcement), who(by))),
    );
    Ok((announcement, true))
}

/// Resumes: schedules the next run from now. Also puts an active
/// announcement that lost its job (one could not be scheduled) back on
/// schedule. Answers whether anything changed.
pub fn resume(number: u64, by: Option<Snowflake>) -> Result<(Announcement, bool), Error> {
    let now = now();
    let current = store::load(number)?;
    if !current.paused && current.pending_job.is_some() {
        return Ok((current, false));
    }
    // A paused one starts over from now; an active one that lost its job
    // keeps a next run that still lies ahead.
    let next = match current.next_run {
        Some(t) if t > now && !current.paused => Some(t),
        _ => current.schedule.first_after(now),
    }
    .ok_or_else(|| no_more_runs(&current))?;
    let (_, old_job) = store::update(number, |a| {
        a.paused = false;
        a.next_run = Some(next);
        Ok(a.pending_job.take())
    })?;
    cancel(old_job);
    let announcement = arm(number, now)?;
    tell(
        &announcement,
        "resumed",
        Some(format!("{} by {}", summary(&announcement), who(by))),
    );
    Ok((announcement, true))
}

/// Deletes: the record and its job.
pub fn delete(number: u64, by: Option<Snowflake>) -> Result<Announcement, Error> {
    let announcement = store::remove(number)?;
    cancel(announcement.pending_job.clone());
    tell(
        &announcement,
        "deleted",
        Some(format!("{} by {}", summary(&announcement), who(by))),
    );
    Ok(announcement)
}

/// Posts now; the schedule stays as it is (paused ones too).
pub fn send_now(
    ctx: &Context,
    config: &Config,
    number: u64,
    by: Option<Snowflake>,
) -> Result<(Announcement, Snowflake), Error> {
    let now = now();
    let announcement = store::load(number)?;
    let posted = run::post(ctx, config, &announcement, now)?;
    let announcement = run::record_post(number, now, posted)?;
    tell(
        &announcement,
        "sent",
        Some(format!(
            "{} sent now by {}",
            summary(&announcement),
            who(by)
        )),
    );
    Ok((announcement, posted.message_id))
}

/// After the feature is enabled again: every active announcement gets a job
/// for its next run — the stored one while it lies ahead, else the
/// schedule's next occurrence after now. Trouble with one is logged and
/// recorded on it, and the others still restart. Answers how many are
/// scheduled.
pub fn restart_all(now: u64) -> Result<usize, Error> {
    let mut scheduled = 0;
    for announcement in store::all()? {
        if announcement.paused {
            continue;
        }
        let number = announcement.number;
        let restarted = store::update(number, |a| {
            let missed = a.next_run.filter(|&t| t <= now);
            a.next_run = match a.next_run {
                Some(t) if t > now => Some(t),
                _ => a.schedule.first_after(now),
            };
            if let (Some(missed), None) = (missed, a.next_run) {
                a.last_error = Some(format!(
                    "its time ({}) passed while the feature was disabled; give it a new time",
                    format_unix(missed)
                ));
            }
            Ok(a.pending_job.take())
        })
        .and_then(|(_, old_job)| {
            cancel(old_job);
            arm(number, now)
        });
        match restarted {
            Ok(a) if a.pending_job.is_some() => scheduled += 1,
            Ok(_) => {}
            Err(error) => {
                log::warn(format!(
                    "announcement #{number}: cannot schedule it: {error:?}"
                ));
                let why = format!("cannot be scheduled: {}", run::error_text(&error));
                let _ = store::update(number, |a| {
                    a.last_error = Some(why.clone());
                    Ok(())
                });
            }
        }
    }
    Ok(scheduled)
}
