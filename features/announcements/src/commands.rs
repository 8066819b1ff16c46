//! `/announce`: create, list, pause, resume, delete and send announcements
//! from Discord. Replies are ephemeral: they are for the admin, not the
//! channel.

use crate::actions::{self, Draft};
use crate::run;
use crate::schedule::{self, Schedule};
use crate::store::{self, Announcement};
use crate::time::now;
use crate::{Config, MANAGE_GUILD};
use townes_sdk::{
    Command, CommandInvocation, CommandOption, Context, Error, Reply, Subcommand, limits,
};

/// The command as the manifest declares it.
pub fn command() -> Command {
    let number = || CommandOption::integer("number", "The announcement's number").required();
    Command::slash("announce", "Scheduled announcements")
        .subcommand(
            Subcommand::new("create", "Schedule an announcement (times are UTC)")
                .option(CommandOption::channel("channel", "Where to post it").required())
                .option(
                    CommandOption::text(
                        "message",
                        "The text; {server.name}, {server.memberCount}, {date}, {time}, {weekday} are filled in",
                    )
                    .required(),
                )
                .option(CommandOption::text(
                    "every",
                    "Repeat every interval, e.g. 6h, 30m, 1d (10m at least)",
                ))
                .option(CommandOption::text("daily", "Every day at a UTC time, e.g. 09:30"))
                .option(CommandOption::text(
                    "weekly",
                    "Every week on a day at a UTC time, e.g. mon 09:30",
                ))
                .option(CommandOption::text(
                    "at",
                    "Once, e.g. 2026-12-07 10:00 (UTC) or in 2h",
                ))
                .option(CommandOption::role(
                    "role",
                    "A role to ping (if the config allows it)",
                )),
        )
        .subcommand(Subcommand::new("list", "The server's announcements"))
        .subcommand(Subcommand::new("pause", "Stop an announcement until resumed").option(number()))
        .subcommand(
            Subcommand::new("resume", "Schedule a paused announcement again, from now")
                .option(number()),
        )
        .subcommand(Subcommand::new("delete", "Delete an announcement").option(number()))
        .subcommand(
            Subcommand::new("send", "Post an announcement now (its schedule stays)")
                .option(number()),
        )
        .default_permissions(MANAGE_GUILD)
}

pub fn on_command(ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
    if invocation.name != "announce" {
        return Err(Error::invalid("unknown command"));
    }
    let by = Some(invocation.invoker.user.id);
    let text = match invocation.subcommand.as_deref() {
        Some("create") => create(ctx, &invocation)?,
        Some("list") => list(&store::all()?),
        Some("pause") => {
            let (a, changed) = actions::pause(number_arg(&invocation)?, by).map_err(hint)?;
            if changed {
                format!("⏸️ Announcement #{} is paused.", a.number)
            } else {
                format!("Announcement #{} was paused already.", a.number)
            }
        }
        Some("resume") => {
            let (a, changed) = actions::resume(number_arg(&invocation)?, by).map_err(hint)?;
            let next = next_text(&a);
            if changed {
                format!("▶️ Announcement #{} is back on schedule: {next}.", a.number)
            } else {
                format!("Announcement #{} is not paused: {next}.", a.number)
            }
        }
        Some("delete") => {
            let a = actions::delete(number_arg(&invocation)?, by).map_err(hint)?;
            format!("🗑️ Announcement #{} is deleted.", a.number)
        }
        Some("send") => {
            let config = Config::load()?;
            let (a, _) =
                actions::send_now(ctx, &config, number_arg(&invocation)?, by).map_err(hint)?;
            let mut text = format!(
                "📣 Announcement #{} is posted in <#{}>; its schedule is unchanged.",
                a.number, a.channel_id
            );
            if let Some(note) = actions::ping_note(ctx, &config, &a) {
                text.push_str(&format!("\n{note}"));
            }
            text
        }
        _ => {
            return Err(Error::invalid(
                "use /announce create, list, pause, resume, delete or send",
            ));
        }
    };
    Ok(Reply::text(text).ephemeral())
}

/// An unknown number, with where to find the right one.
fn hint(error: Error) -> Error {
    match error {
        Error::NotFound(what) => Error::not_found(format!(
            "there is no {what}; `/announce list` shows the numbers"
        )),
        other => other,
    }
}

fn number_arg(invocation: &CommandInvocation) -> Result<u64, Error> {
    invocation
        .integer_arg("number")
        .and_then(|n| u64::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| Error::invalid("give the announcement's number (see `/announce list`)"))
}

/// The one schedule among `every`, `daily`, `weekly` and `at`.
fn schedule_arg(invocation: &CommandInvocation, now: u64) -> Result<Schedule, Error> {
    let given: Vec<(&str, &str)> = ["every", "daily", "weekly", "at"]
        .into_iter()
        .filter_map(|name| Some((name, invocation.text_arg(name)?)))
        .collect();
    match given[..] {
        [("every", text)] => Ok(Schedule::Every {
            seconds: schedule::parse_every(text)?,
        }),
        [("daily", text)] => Ok(Schedule::Daily {
            minute: schedule::parse_time_of_day(text)?,
        }),
        [("weekly", text)] => schedule::parse_weekly(text),
        // `at`, the one left.
        [(_, text)] => Ok(Schedule::Once {
            at: schedule::parse_at(text, now)?,
        }),
        [] => Err(Error::invalid(
            "say when: every (e.g. 6h), daily (09:30), weekly (mon 09:30) or at \
             (2026-12-07 10:00); times are UTC",
        )),
        _ => Err(Error::invalid(format!(
            "give one schedule, not {}: every, daily, weekly or at",
            given
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(" and ")
        ))),
    }
}

fn create(ctx: &Context, invocation: &CommandInvocation) -> Result<String, Error> {
    let config = Config::load()?;
    let channel_id = invocation
        .channel_arg("channel")
        .ok_or_else(|| Error::invalid("name the channel to post in: `channel`"))?;
    let content = invocation.text_arg("message").unwrap_or_default();
    let draft = Draft {
        channel_id,
        content: content.to_string(),
        embed: None,
        ping_role: invocation.role_arg("role"),
        schedule: schedule_arg(invocation, now())?,
        paused: false,
    };
    let a = actions::create(ctx, &config, draft, Some(invocation.invoker.user.id))?;
    let mut text = format!(
        "📣 Announcement #{} posts in <#{}> {}: {}.",
        a.number,
        a.channel_id,
        a.schedule.describe(),
        next_text(&a)
    );
    if let Some(note) = actions::ping_note(ctx, &config, &a) {
        text.push_str(&format!("\n{note}"));
    }
    Ok(text)
}

/// `next <t:…:f> (<t:…:R>)`, or why there is none. Discord shows `<t:…>` in
/// each reader's own time zone.
pub fn next_text(a: &Announcement) -> String {
    match (a.next_run, a.paused) {
        (_, true) => "paused".into(),
        (Some(t), false) if a.pending_job.is_some() => format!("next <t:{t}:f> (<t:{t}:R>)"),
        (Some(_), false) => "⚠️ not scheduled (resume it to retry)".into(),
        (None, false) if a.last_due.is_some() => "done".into(),
        (None, false) => "⚠️ not scheduled (its time passed; give it a new one)".into(),
    }
}

/// One line per announcement, as many as fit a message.
pub fn list(announcements: &[Announcement]) -> String {
    if announcements.is_empty() {
        return "No announcements yet: `/announce create` schedules one.".into();
    }
    let mut text = String::from("Announcements (times in UTC):");
    for (shown, a) in announcements.iter().enumerate() {
        let flat = a.content.replace('\n', " ");
        let preview = run::defuse_mass_mentions(&flat.chars().take(40).collect::<String>());
        let ellipsis = if flat.chars().count() > 40 { "…" } else { "" };
        let line = format!(
            "\n**#{}** <#{}> {} · {} · {preview}{ellipsis}",
            a.number,
            a.channel_id,
            a.schedule.describe(),
            next_text(a)
        );
        let more = format!("\n… and {} more", announcements.len() - shown);
        if text.chars().count() + line.chars().count() + more.chars().count() > limits::CONTENT {
            text.push_str(&more);
            break;
        }
        text.push_str(&line);
    }
    text
}
