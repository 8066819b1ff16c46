//! Posting: an announcement rendered into a message, the `announce` job that
//! posts it on schedule, and the bookkeeping after a post.

use crate::Config;
use crate::actions::{self, audit_entry};
use crate::store::{self, Announcement};
use crate::time::{self, MINUTE, format_unix, now};
use serde::{Deserialize, Serialize};
use townes_sdk::{
    Capability, Context, Embed, Error, GuildInfo, MessageBody, ScheduledJob, Snowflake, limits,
    log, members, messages, serde_json, template,
};

/// The scheduled job that posts an announcement; payload [`JobPayload`].
pub const ANNOUNCE_JOB: &str = "announce";
/// A job running this much after its due time is late (the host was down or
/// busy): it still posts, once, and the missed occurrences are skipped.
pub const LATE_AFTER: u64 = 5 * MINUTE;
/// What `{server.name}` renders as when the guild cannot be read.
pub const UNKNOWN_SERVER_NAME: &str = "this server";
/// What `{server.memberCount}` renders as when the guild cannot be read.
pub const UNKNOWN_MEMBER_COUNT: &str = "?";
/// Characters of an embed description: the SDK's `template::render` cuts
/// everything it renders at Discord's 2000-character message limit.
pub const MAX_EMBED_DESCRIPTION: usize = limits::CONTENT;

/// What an `announce` job carries: which announcement, and which of its runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPayload {
    pub number: u64,
    /// Unix seconds the run was due.
    pub due: u64,
}

impl JobPayload {
    pub fn to_text(self) -> String {
        serde_json::to_string(&self).unwrap_or_default()
    }
}

// ---------------------------------------------------------------- rendering

/// What the template variables stand for in one post.
#[derive(Clone, Copy, Debug)]
pub struct Vars<'a> {
    /// The guild, when it could be read.
    pub guild: Option<&'a GuildInfo>,
    /// The moment of posting.
    pub now: u64,
}

/// Renders `template` in one pass (values are never expanded again, unknown
/// placeholders stay) and defuses `@everyone` and `@here`.
pub fn render(template: &str, vars: Vars) -> String {
    let text = template::render(template, |key| {
        Some(match key {
            "server.name" => vars
                .guild
                .map_or_else(|| UNKNOWN_SERVER_NAME.to_string(), |g| g.name.clone()),
            "server.memberCount" => vars.guild.map_or_else(
                || UNKNOWN_MEMBER_COUNT.to_string(),
                |g| g.member_count.to_string(),
            ),
            "date" => time::format_date(vars.now),
            "time" => time::format_time(vars.now),
            "weekday" => crate::schedule::Weekday::of(vars.now).name().to_string(),
            _ => return None,
        })
    });
    defuse_mass_mentions(&text)
}

/// `@everyone` and `@here` with a zero-width space after the `@`, so they can
/// never ping, whatever the host's mention policy (a guild name may contain
/// them too).
pub fn defuse_mass_mentions(text: &str) -> String {
    text.replace("@everyone", "@\u{200b}everyone")
        .replace("@here", "@\u{200b}here")
}

/// Whether the announcement uses a `{server.*}` variable (and so needs the
/// guild).
pub fn uses_server(announcement: &Announcement) -> bool {
    let embed = announcement.embed.as_ref();
    [
        Some(announcement.content.as_str()),
        embed.and_then(|e| e.title.as_deref()),
        embed.and_then(|e| e.description.as_deref()),
    ]
    .into_iter()
    .flatten()
    .any(|text| text.contains("{server."))
}

/// The message for one post; `ping` is the role to mention, if it may be.
pub fn message_body(
    announcement: &Announcement,
    vars: Vars,
    ping: Option<Snowflake>,
) -> MessageBody {
    let text = render(&announcement.content, vars);
    let content = match ping {
        Some(role) if text.trim().is_empty() => format!("<@&{role}>"),
        Some(role) => format!("<@&{role}> {text}"),
        None => text,
    };
    let content = template::truncate(content, limits::CONTENT);
    let mut body = if content.trim().is_empty() {
        MessageBody::default()
    } else {
        MessageBody::text(content)
    };
    if let Some(spec) = &announcement.embed {
        let mut embed = Embed::new();
        embed.title = spec
            .title
            .as_deref()
            .map(|t| template::truncate(render(t, vars), limits::EMBED_TITLE));
        embed.description = spec.description.as_deref().map(|d| render(d, vars));
        embed.color = spec.color;
        body.embeds.push(embed);
    }
    body
}

// ------------------------------------------------------------------ posting

/// A post that went out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Posted {
    pub message_id: Snowflake,
    /// The announcement has a role that the config does not allow to ping.
    pub ping_skipped: bool,
}

/// The guild, for `{server.*}` variables; without `members` (optional) the
/// variables read as placeholders and the post still goes out.
fn guild_for(announcement: &Announcement) -> Option<GuildInfo> {
    if !uses_server(announcement) {
        return None;
    }
    members::guild()
        .inspect_err(|e| {
            if !e.is_denied() {
                log::warn(format!("cannot read the server for {{server.*}}: {e:?}"));
            }
        })
        .ok()
}

/// Posts `announcement` now, pinging its role only if `config` allows it.
pub fn post(
    ctx: &Context,
    config: &Config,
    announcement: &Announcement,
    now: u64,
) -> Result<Posted, Error> {
    let ping = announcement
        .ping_role
        .filter(|&role| config.may_ping(role, ctx.guild_id));
    let ping_skipped = announcement.ping_role.is_some() && ping.is_none();
    let guild = guild_for(announcement);
    let vars = Vars {
        guild: guild.as_ref(),
        now,
    };
    let body = message_body(announcement, vars, ping);
    let message_id = messages::send(announcement.channel_id, body)
        .map_err(|e| explain_post_error(announcement.channel_id, e))?;
    if let (true, Some(role)) = (ping_skipped, announcement.ping_role) {
        log::warn(format!(
            "announcement #{}: posted without pinging role {role}: it is not in allowed_ping_roles",
            announcement.number
        ));
    }
    Ok(Posted {
        message_id,
        ping_skipped,
    })
}

/// A refused post as a sentence an admin can act on. The messages grant may
/// hold a channel allow-list, and the SDK cannot ask it beforehand, so this
/// is where "channel not allowed" surfaces.
pub fn explain_post_error(channel_id: Snowflake, error: Error) -> Error {
    match error {
        Error::Denied(Capability::Messages) => Error::invalid(format!(
            "cannot post in <#{channel_id}>: the channel is not allowed for this feature's \
             messages (the server's channel allow-list for Announcements); allow it there or \
             pick another channel"
        )),
        Error::NotFound(what) => Error::invalid(format!(
            "cannot post in <#{channel_id}> ({what}): the channel is gone or the bot cannot \
             see it; pick another channel"
        )),
        other => other,
    }
}

/// Notes a post on the announcement: its time, the count, the ping state
/// (the audit log hears once when a role starts going unpinged).
pub fn record_post(number: u64, now: u64, posted: Posted) -> Result<Announcement, Error> {
    let (announcement, newly_skipped) = store::update(number, |a| {
        let newly_skipped = posted.ping_skipped && !a.ping_skipped;
        a.last_run = Some(now);
        a.runs += 1;
        a.ping_skipped = posted.ping_skipped;
        a.last_error = None;
        Ok(newly_skipped)
    })?;
    if let (true, Some(role)) = (newly_skipped, announcement.ping_role) {
        audit_entry(
            "ping_skipped",
            &format!(
                "#{} posted without pinging <@&{role}>: allowed_ping_roles does not list it",
                announcement.number
            ),
        );
    }
    Ok(announcement)
}

/// Keeps why a run went wrong on the announcement (if it still exists).
fn record_error(number: u64, why: &str) {
    let stored = store::update(number, |a| {
        a.last_error = Some(why.to_string());
        Ok(())
    });
    if let Err(error) = stored
        && !matches!(error, Error::NotFound(_))
    {
        log::warn(format!(
            "announcement #{number}: cannot record `{why}`: {error:?}"
        ));
    }
}

// --------------------------------------------------------------- the job

/// Takes the run due at `due` for job `job_id`: `Err(why not)` when the job
/// must not post, else the announcement moves on to its next run (after
/// `now`: a late run skips what it missed) with no job yet.
pub fn claim(a: &mut Announcement, job_id: &str, due: u64, now: u64) -> Result<(), &'static str> {
    if a.paused {
        return Err("the announcement is paused");
    }
    if a.pending_job.as_deref() != Some(job_id) {
        return Err("stale: the announcement has another job");
    }
    if a.last_due.is_some_and(|last| last >= due) {
        return Err("that run was claimed already");
    }
    a.last_due = Some(due);
    a.pending_job = None;
    a.next_run = a.schedule.after_run(due, now);
    Ok(())
}

/// The `announce` job: claims its run, schedules the next one, posts.
pub fn on_job(ctx: &Context, job: &ScheduledJob) -> Result<(), Error> {
    let JobPayload { number, due } = serde_json::from_str(&job.payload)
        .map_err(|_| Error::invalid(format!("announce job payload `{}`", job.payload)))?;
    // A config that cannot be read must not cost a run: the default pings
    // nobody, which is the safe side.
    let config = Config::load().unwrap_or_else(|e| {
        log::warn(format!("config unreadable, posting with defaults: {e:?}"));
        Config::default()
    });
    let now = now();
    let claimed = store::update(number, |a| Ok(claim(a, &job.id, due, now)));
    let announcement = match claimed {
        Err(Error::NotFound(_)) => {
            log::debug(format!(
                "announcement #{number} is gone; job {} ends",
                job.id
            ));
            return Ok(());
        }
        Err(error) => return Err(error),
        Ok((_, Err(why))) => {
            log::debug(format!(
                "announcement #{number}: job {} for {}: {why}; nothing posted",
                job.id,
                format_unix(due)
            ));
            return Ok(());
        }
        Ok((announcement, Ok(()))) => announcement,
    };
    if now > due + LATE_AFTER {
        log::info(format!(
            "announcement #{number} was due at {} and runs {} minutes late: posting it once; \
             the next run is {}",
            format_unix(due),
            (now - due) / 60,
            announcement.next_run.map_or("none".into(), format_unix)
        ));
    }
    // The next run is scheduled before posting, so a post that fails (or an
    // invocation cut short) never ends a recurring announcement.
    let armed = actions::arm(number, now);
    let mut problems = Vec::new();
    let mut failure = None;
    match post(ctx, &config, &announcement, now) {
        Ok(posted) => match record_post(number, now, posted) {
            Ok(announcement) => actions::tell(&announcement, "sent", None),
            // Deleted while posting: nothing left to note it on.
            Err(Error::NotFound(_)) => {}
            Err(error) => failure = Some(error),
        },
        Err(error) => {
            problems.push(error_text(&error));
            failure = Some(error);
        }
    }
    if let Err(error) = armed {
        problems.push(format!(
            "the next run could not be scheduled: {}",
            error_text(&error)
        ));
        failure.get_or_insert(error);
    }
    if !problems.is_empty() {
        let why = problems.join("; ");
        record_error(number, &why);
        audit_entry(
            "failed",
            &format!("#{number} due at {}: {why}", format_unix(due)),
        );
        log::warn(format!("announcement #{number}: {why}"));
    }
    // The host records a failed job with its reason; the run is spent either
    // way (claimed), so a retry could not post it twice.
    failure.map_or(Ok(()), Err)
}

/// The sentence inside an error.
pub fn error_text(error: &Error) -> String {
    match error {
        Error::InvalidArgument(s)
        | Error::NotFound(s)
        | Error::QuotaExceeded(s)
        | Error::Unavailable(s) => s.clone(),
        Error::Denied(capability) => format!("the `{}` capability is denied", capability.as_str()),
    }
}
