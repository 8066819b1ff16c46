//! `moderation`: the built-in moderation feature (seed 002's command module).
//!
//! - **`/ban user [reason] [duration] [delete_days]`** (a duration makes it a
//!   temporary ban, lifted by a scheduled job that survives restarts),
//!   **`/unban user [reason]`**, **`/kick user [reason]`**,
//!   **`/timeout user duration [reason]`** (also **`/mute`**),
//!   **`/warn user [reason] [points]`**, **`/purge count`**.
//! - Every action is a numbered **case** of the guild: who, whom, what, why,
//!   when, how long, with notes added later (**`/case show number`**,
//!   **`/case note number text`**, **`/cases user`**).
//! - **Warnings** carry points; when a member's active points (warnings younger
//!   than `decay_days`) reach a step of `escalation`, that step's action runs
//!   (e.g. 3 points → a 1 h timeout, 5 → a kick) as a case of its own.
//! - An optional **mod-log channel** gets an embed per case.
//! - Dashboard routes: `GET /cases` (`?user=`) and `GET /cases/{number}`.
//!
//! - Bans, unbans, kicks and timeouts done **in Discord's own interface** (or
//!   by another bot) become cases too, marked `external`, from the guild's
//!   audit log (contract 0.1.2's `moderation-events`; the bot needs View Audit
//!   Log).
//!
//! # State (all in `storage`)
//! - `case:next`: the last case number;
//! - `case:{n:010}`: a case as JSON ([`Case`]);
//! - `user:{id}:{n:010}`: an index of each member's cases (value empty).

use serde::{Deserialize, Serialize};
use townes_sdk::{
    ApiRequest, ApiResponse, Capability, CapabilityRequest, Command, CommandInvocation,
    CommandOption, Context, Embed, Error, Feature, Manifest, MessageBody, ModerationAction,
    ModerationEvent, Reply, Route, ScheduledJob, Snowflake, Subcommand, config, json, messages,
    moderation, scheduler, snowflake, storage,
};

/// The feature.
pub struct Moderation;

/// Discord's permission bits the commands ask for by default.
pub mod permissions {
    pub const KICK_MEMBERS: u64 = 1 << 1;
    pub const BAN_MEMBERS: u64 = 1 << 2;
    pub const MANAGE_MESSAGES: u64 = 1 << 13;
    pub const MODERATE_MEMBERS: u64 = 1 << 40;
}

/// The scheduled job that lifts a temporary ban; its payload is the user id.
pub const UNBAN_JOB: &str = "unban";
/// Cases listed by `/cases` and `GET /cases` at most.
pub const LIST_LIMIT: u32 = 100;

fn case_key(number: u64) -> String {
    format!("case:{number:010}")
}

fn user_index_prefix(user_id: Snowflake) -> String {
    format!("user:{user_id}:")
}

// ------------------------------------------------------------------ config

/// The guild's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Where every case is posted; none: nowhere.
    #[serde(deserialize_with = "snowflake::de_opt")]
    pub log_channel: Option<Snowflake>,
    /// Warnings older than this stop counting towards escalation.
    pub decay_days: u32,
    /// Steps taken when a member's active points reach `points`, lowest first.
    pub escalation: Vec<Step>,
}

/// One escalation step.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Step {
    pub points: u32,
    /// `timeout`, `kick` or `ban`.
    pub action: String,
    /// For `timeout` (required) and `ban` (temporary when set), e.g. `1h`.
    pub duration: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log_channel: None,
            decay_days: 30,
            escalation: vec![
                Step {
                    points: 3,
                    action: "timeout".into(),
                    duration: Some("1h".into()),
                },
                Step {
                    points: 5,
                    action: "kick".into(),
                    duration: None,
                },
            ],
        }
    }
}

fn config_schema() -> townes_sdk::serde_json::Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "log_channel": snowflake::nullable_schema(),
            "decay_days": { "type": "integer", "minimum": 1, "maximum": 3650 },
            "escalation": {
                "type": "array",
                "maxItems": 10,
                "items": {
                    "type": "object",
                    "required": ["points", "action"],
                    "properties": {
                        "points": { "type": "integer", "minimum": 1, "maximum": 1000 },
                        "action": { "enum": ["timeout", "kick", "ban"] },
                        "duration": { "type": ["string", "null"], "pattern": "^([0-9]+[smhdw])+$" }
                    },
                    "additionalProperties": false
                }
            }
        },
        "additionalProperties": false
    })
}

// ------------------------------------------------------------------- cases

/// One moderation action, numbered per guild.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Case {
    pub number: u64,
    /// `ban`, `unban`, `kick`, `timeout`, `untimeout` (a timeout lifted in
    /// Discord), `warn`, `purge`.
    pub action: String,
    /// The member acted on (the channel for `purge`), as a string.
    pub target: String,
    /// The moderator, or none when an escalation or a job acted.
    pub moderator: Option<String>,
    pub reason: Option<String>,
    /// Unix seconds.
    pub at: u64,
    /// Seconds, for timeouts and temporary bans.
    pub duration: Option<u64>,
    /// Points, for warnings.
    pub points: Option<u32>,
    pub notes: Vec<Note>,
    /// Done outside the platform (in Discord's own interface, by another
    /// bot) and learnt from the audit log.
    #[serde(default)]
    pub external: bool,
}

/// A note added to a case.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Note {
    pub by: String,
    pub at: u64,
    pub text: String,
}

use townes_sdk::time::now;

/// Parses `90s`, `10m`, `1h30m`, `7d`, `2w` into seconds.
pub fn parse_duration(text: &str) -> Result<u64, Error> {
    let bad = || {
        Error::InvalidArgument(format!(
            "duration `{text}`: use numbers with s, m, h, d or w, e.g. `10m`, `1h30m`, `7d`"
        ))
    };
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
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
    Ok(total)
}

/// Stores a new case and posts it to the mod log.
fn open_case(mut case: Case, config: &Config) -> Result<Case, Error> {
    case.number = storage::increment("case:next", 1)? as u64;
    let json =
        townes_sdk::serde_json::to_string(&case).map_err(|e| Error::Unavailable(e.to_string()))?;
    storage::set(&case_key(case.number), &json)?;
    if case.action != "purge" {
        storage::set(
            &format!(
                "{}{:010}",
                user_index_prefix(case.target.parse().unwrap_or(0)),
                case.number
            ),
            "",
        )?;
    }
    if let Some(channel) = config.log_channel {
        // The log is a courtesy: a case stands even when it cannot be posted.
        let _ = messages::send(channel, MessageBody::from(case_embed(&case)));
    }
    Ok(case)
}

fn load_case(number: u64) -> Result<Case, Error> {
    let json = storage::get(&case_key(number))?
        .ok_or_else(|| Error::NotFound(format!("case #{number}")))?;
    townes_sdk::serde_json::from_str(&json)
        .map_err(|e| Error::Unavailable(format!("case #{number}: {e}")))
}

fn cases_of(user_id: Snowflake) -> Result<Vec<Case>, Error> {
    let index = storage::list_prefix(&user_index_prefix(user_id), LIST_LIMIT)?;
    index
        .iter()
        .filter_map(|e| e.key.rsplit(':').next()?.parse().ok())
        .map(load_case)
        .collect()
}

fn case_embed(case: &Case) -> Embed {
    let mut text = format!("**{}** <@{}>", case.action, case.target);
    if case.external {
        text.push_str(" (in Discord)");
    }
    if case.action == "purge" {
        text = format!("**purge** in <#{}>", case.target);
    }
    if let Some(moderator) = &case.moderator {
        text.push_str(&format!(" by <@{moderator}>"));
    }
    if let Some(seconds) = case.duration {
        text.push_str(&format!(" for {}", human(seconds)));
    }
    if let Some(points) = case.points {
        text.push_str(&format!(
            " ({points} point{})",
            if points == 1 { "" } else { "s" }
        ));
    }
    if let Some(reason) = &case.reason {
        text.push_str(&format!("\nReason: {reason}"));
    }
    for note in &case.notes {
        text.push_str(&format!("\nNote by <@{}>: {}", note.by, note.text));
    }
    Embed::new()
        .title(format!("Case #{}", case.number))
        .description(text)
}

fn human(seconds: u64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

// ------------------------------------------------------------------ actions

fn new_case(
    action: &str,
    target: Snowflake,
    moderator: Option<Snowflake>,
    reason: Option<&str>,
) -> Case {
    Case {
        number: 0,
        action: action.into(),
        target: target.to_string(),
        moderator: moderator.map(|m| m.to_string()),
        reason: reason.map(str::to_string),
        at: now(),
        duration: None,
        points: None,
        notes: Vec::new(),
        external: false,
    }
}

/// Bans, temporarily when `duration` is given (a job lifts it).
fn ban(
    config: &Config,
    target: Snowflake,
    moderator: Option<Snowflake>,
    reason: Option<&str>,
    duration: Option<u64>,
    delete_seconds: u32,
) -> Result<Case, Error> {
    moderation::ban(target, delete_seconds, reason)?;
    if let Some(seconds) = duration {
        let delay = u32::try_from(seconds).unwrap_or(u32::MAX);
        scheduler::schedule(UNBAN_JOB, &target.to_string(), delay)?;
    }
    open_case(
        Case {
            duration,
            ..new_case("ban", target, moderator, reason)
        },
        config,
    )
}

/// Active warning points of a member: warnings younger than `decay_days`.
fn active_points(config: &Config, user_id: Snowflake) -> Result<u32, Error> {
    let since = now().saturating_sub(u64::from(config.decay_days) * 86_400);
    Ok(cases_of(user_id)?
        .iter()
        .filter(|c| c.action == "warn" && c.at >= since)
        .map(|c| c.points.unwrap_or(1))
        .sum())
}

/// Warns, then takes the highest escalation step the new total just reached.
fn warn(
    config: &Config,
    target: Snowflake,
    moderator: Snowflake,
    reason: Option<&str>,
    points: u32,
) -> Result<(Case, Option<Case>), Error> {
    let before = active_points(config, target)?;
    let warned = open_case(
        Case {
            points: Some(points),
            ..new_case("warn", target, Some(moderator), reason)
        },
        config,
    )?;
    let after = before + points;
    let step = config
        .escalation
        .iter()
        .filter(|s| before < s.points && s.points <= after)
        .max_by_key(|s| s.points);
    let Some(step) = step else {
        return Ok((warned, None));
    };
    let why = format!("{after} warning points (case #{})", warned.number);
    let duration = step.duration.as_deref().map(parse_duration).transpose()?;
    let escalated = match step.action.as_str() {
        "timeout" => {
            let seconds = duration.unwrap_or(3600);
            moderation::timeout(target, seconds.min(28 * 86_400) as u32, Some(&why))?;
            open_case(
                Case {
                    duration: Some(seconds),
                    ..new_case("timeout", target, None, Some(&why))
                },
                config,
            )?
        }
        "kick" => {
            moderation::kick(target, Some(&why))?;
            open_case(new_case("kick", target, None, Some(&why)), config)?
        }
        "ban" => ban(config, target, None, Some(&why), duration, 0)?,
        other => {
            return Err(Error::InvalidArgument(format!(
                "escalation action `{other}`: use timeout, kick or ban"
            )));
        }
    };
    Ok((warned, Some(escalated)))
}

fn target_arg(invocation: &CommandInvocation) -> Result<Snowflake, Error> {
    invocation
        .user_arg("user")
        .ok_or_else(|| Error::InvalidArgument("name the member: `user`".into()))
}

fn done(case: &Case) -> Reply {
    Reply::from(MessageBody::from(case_embed(case)))
}

impl Feature for Moderation {
    fn describe() -> Manifest {
        use permissions::*;
        let user = || CommandOption::user("user", "The member").required();
        let reason =
            || CommandOption::text("reason", "Why (kept in the case and Discord's audit log)");
        Manifest::new("moderation", "0.1.0")
            .name("Moderation")
            .description("Ban, kick, time out, warn and purge, with numbered cases, escalation and a mod log")
            .command(
                Command::slash_and_prefix("ban", "Ban a member, for a while when a duration is given")
                    .option(user())
                    .option(reason())
                    .option(CommandOption::text("duration", "How long, e.g. 7d; forever when absent"))
                    .option(CommandOption::integer("delete_days", "Days of their messages to delete (0-7)"))
                    .default_permissions(BAN_MEMBERS),
            )
            .command(
                Command::slash_and_prefix("unban", "Lift a member's ban")
                    .option(user())
                    .option(reason())
                    .default_permissions(BAN_MEMBERS),
            )
            .command(
                Command::slash_and_prefix("kick", "Kick a member")
                    .option(user())
                    .option(reason())
                    .default_permissions(KICK_MEMBERS),
            )
            .command(
                Command::slash_and_prefix("timeout", "Time a member out")
                    .option(user())
                    .option(CommandOption::text("duration", "How long, e.g. 10m or 1h").required())
                    .option(reason())
                    .default_permissions(MODERATE_MEMBERS),
            )
            .command(
                Command::slash_and_prefix("mute", "Time a member out (same as /timeout)")
                    .option(user())
                    .option(CommandOption::text("duration", "How long, e.g. 10m or 1h").required())
                    .option(reason())
                    .default_permissions(MODERATE_MEMBERS),
            )
            .command(
                Command::slash_and_prefix("warn", "Warn a member; enough points escalate")
                    .option(user())
                    .option(reason())
                    .option(CommandOption::integer("points", "Points (1 when absent)"))
                    .default_permissions(MODERATE_MEMBERS),
            )
            .command(
                Command::slash_and_prefix("purge", "Delete recent messages in this channel")
                    .option(CommandOption::integer("count", "How many (1-100)").required())
                    .default_permissions(MANAGE_MESSAGES),
            )
            .command(
                Command::slash("case", "A moderation case")
                    .subcommand(
                        Subcommand::new("show", "Show a case")
                            .option(CommandOption::integer("number", "The case number").required()),
                    )
                    .subcommand(
                        Subcommand::new("note", "Add a note to a case")
                            .option(CommandOption::integer("number", "The case number").required())
                            .option(CommandOption::text("text", "The note").required()),
                    )
                    .default_permissions(MODERATE_MEMBERS),
            )
            .command(
                Command::slash_and_prefix("cases", "A member's cases")
                    .option(user())
                    .default_permissions(MODERATE_MEMBERS),
            )
            .capability(CapabilityRequest::required(Capability::Moderation, "ban, kick, time out and purge"))
            .capability(CapabilityRequest::required(Capability::Storage, "keeps the cases"))
            .capability(CapabilityRequest::required(Capability::Scheduler, "lifts temporary bans on time"))
            .capability(CapabilityRequest::optional(Capability::Messages, "posts cases to the mod-log channel"))
            .config(config_schema(), json!({ "log_channel": null, "decay_days": 30, "escalation": [
                { "points": 3, "action": "timeout", "duration": "1h" },
                { "points": 5, "action": "kick" }
            ] }))
    }

    fn on_command(_ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        let config: Config = config::get_json()?;
        let moderator = invocation.invoker.user.id;
        let reason = invocation.text_arg("reason");
        let case = match invocation.name.as_str() {
            "ban" => {
                let duration = invocation
                    .text_arg("duration")
                    .map(parse_duration)
                    .transpose()?;
                let days = invocation
                    .integer_arg("delete_days")
                    .unwrap_or(0)
                    .clamp(0, 7) as u32;
                ban(
                    &config,
                    target_arg(&invocation)?,
                    Some(moderator),
                    reason,
                    duration,
                    days * 86_400,
                )?
            }
            "unban" => {
                let target = target_arg(&invocation)?;
                moderation::unban(target, reason)?;
                open_case(new_case("unban", target, Some(moderator), reason), &config)?
            }
            "kick" => {
                let target = target_arg(&invocation)?;
                moderation::kick(target, reason)?;
                open_case(new_case("kick", target, Some(moderator), reason), &config)?
            }
            "timeout" | "mute" => {
                let target = target_arg(&invocation)?;
                let text = invocation
                    .text_arg("duration")
                    .ok_or_else(|| Error::InvalidArgument("give a duration, e.g. 10m".into()))?;
                let seconds = parse_duration(text)?;
                if seconds > u64::from(moderation::MAX_TIMEOUT_SECONDS) {
                    return Err(Error::InvalidArgument(
                        "a timeout lasts at most 28 days".into(),
                    ));
                }
                moderation::timeout(target, seconds as u32, reason)?;
                open_case(
                    Case {
                        duration: Some(seconds),
                        ..new_case("timeout", target, Some(moderator), reason)
                    },
                    &config,
                )?
            }
            "warn" => {
                let points = invocation.integer_arg("points").unwrap_or(1).clamp(1, 100) as u32;
                let (warned, escalated) =
                    warn(&config, target_arg(&invocation)?, moderator, reason, points)?;
                let mut body = MessageBody::from(case_embed(&warned));
                if let Some(escalated) = escalated {
                    body.embeds.push(case_embed(&escalated));
                }
                return Ok(Reply::from(body));
            }
            "purge" => {
                let count = invocation.integer_arg("count").unwrap_or(0);
                if !(1..=100).contains(&count) {
                    return Err(Error::InvalidArgument("purge 1 to 100 messages".into()));
                }
                let deleted = moderation::purge(invocation.channel_id, count as u32)?;
                open_case(
                    Case {
                        reason: Some(format!("{deleted} messages")),
                        ..new_case("purge", invocation.channel_id, Some(moderator), None)
                    },
                    &config,
                )?
            }
            "case" => {
                let number = invocation.integer_arg("number").unwrap_or(0).max(0) as u64;
                let mut case = load_case(number)?;
                if invocation.subcommand.as_deref() == Some("note") {
                    let text = invocation.text_arg("text").unwrap_or_default();
                    if text.is_empty() || text.chars().count() > 1000 {
                        return Err(Error::InvalidArgument(
                            "a note is 1 to 1000 characters".into(),
                        ));
                    }
                    case.notes.push(Note {
                        by: moderator.to_string(),
                        at: now(),
                        text: text.to_string(),
                    });
                    let json = townes_sdk::serde_json::to_string(&case)
                        .map_err(|e| Error::Unavailable(e.to_string()))?;
                    storage::set(&case_key(number), &json)?;
                }
                case
            }
            "cases" => {
                let target = target_arg(&invocation)?;
                let cases = cases_of(target)?;
                let lines: Vec<String> = cases
                    .iter()
                    .rev()
                    .take(20)
                    .map(|c| {
                        format!(
                            "#{} {} {}",
                            c.number,
                            c.action,
                            c.reason.as_deref().unwrap_or("")
                        )
                    })
                    .collect();
                let text = if lines.is_empty() {
                    format!("<@{target}> has no cases.")
                } else {
                    format!("Cases of <@{target}>, newest first:\n{}", lines.join("\n"))
                };
                return Ok(Reply::text(text).ephemeral());
            }
            _ => return Err(Error::InvalidArgument("unknown command".into())),
        };
        Ok(done(&case))
    }

    fn on_schedule(_ctx: &Context, job: ScheduledJob) -> Result<(), Error> {
        if job.name != UNBAN_JOB {
            return Ok(());
        }
        let target: Snowflake = job
            .payload
            .parse()
            .map_err(|_| Error::InvalidArgument(format!("unban job payload `{}`", job.payload)))?;
        let config: Config = config::get_json()?;
        match moderation::unban(target, Some("temporary ban ended")) {
            // Lifted by hand meanwhile: nothing left to do.
            Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
            Ok(()) => open_case(
                new_case("unban", target, None, Some("temporary ban ended")),
                &config,
            )
            .map(drop),
        }
    }

    fn on_moderation(_ctx: &Context, event: ModerationEvent) -> Result<(), Error> {
        let config: Config = config::get_json()?;
        let (action, duration) = match event.action {
            ModerationAction::Ban => ("ban", None),
            ModerationAction::Unban => ("unban", None),
            ModerationAction::Kick => ("kick", None),
            ModerationAction::Timeout => (
                "timeout",
                event
                    .until
                    .as_deref()
                    .and_then(townes_sdk::time::parse_datetime)
                    .map(|until| until.saturating_sub(now())),
            ),
            ModerationAction::TimeoutLifted => ("untimeout", None),
        };
        open_case(
            Case {
                duration,
                external: true,
                ..new_case(
                    action,
                    event.target_id,
                    event.moderator_id,
                    event.reason.as_deref(),
                )
            },
            &config,
        )
        .map(drop)
    }

    fn routes() -> Vec<Route> {
        let case = json!({
            "type": "object",
            "required": ["number", "action", "target", "at", "notes"],
            "properties": {
                "number": { "type": "integer" },
                "action": { "type": "string" },
                "target": { "type": "string" },
                "moderator": { "type": ["string", "null"] },
                "reason": { "type": ["string", "null"] },
                "at": { "type": "integer" },
                "duration": { "type": ["integer", "null"] },
                "points": { "type": ["integer", "null"] },
                "notes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["by", "at", "text"],
                        "properties": {
                            "by": { "type": "string" },
                            "at": { "type": "integer" },
                            "text": { "type": "string" }
                        }
                    }
                },
                "external": { "type": "boolean" }
            }
        });
        // A made-up case, shown as the routes' example in the API document.
        let example = json!({
            "number": 7,
            "action": "timeout",
            "target": "1150011223344556677",
            "moderator": "1098765432109876543",
            "reason": "spamming invites",
            "at": 1796600000,
            "duration": 3600,
            "points": null,
            "notes": [{ "by": "1098765432109876543", "at": 1796600300, "text": "apologised in DMs" }],
            "external": false
        });
        let mut one = case.clone();
        one["examples"] = json!([example.clone()]);
        vec![
            Route::get(
                "/cases",
                "listCases",
                "The guild's cases, newest first (`?user=` for one member's)",
            )
            .response(json!({
                "type": "object",
                "required": ["cases"],
                "properties": { "cases": { "type": "array", "items": case } },
                "examples": [{ "cases": [example] }]
            })),
            Route::get("/cases/{number}", "getCase", "One case").response(one),
        ]
    }

    fn on_api(_ctx: &Context, request: ApiRequest) -> Result<ApiResponse, Error> {
        match request.route.as_str() {
            "/cases" => {
                let cases = match request.query("user") {
                    Some(user) => {
                        let user = user
                            .parse()
                            .map_err(|_| Error::InvalidArgument("user: a Discord id".into()))?;
                        let mut cases = cases_of(user)?;
                        cases.reverse();
                        cases
                    }
                    None => {
                        let last = storage::get("case:next")?
                            .and_then(|n| n.parse::<u64>().ok())
                            .unwrap_or(0);
                        (1..=last)
                            .rev()
                            .take(LIST_LIMIT as usize)
                            .filter_map(|n| load_case(n).ok())
                            .collect()
                    }
                };
                Ok(ApiResponse::json(&json!({ "cases": cases })))
            }
            "/cases/{number}" => {
                let number = request
                    .param("number")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| Error::InvalidArgument("number: a case number".into()))?;
                Ok(ApiResponse::json(&load_case(number)?))
            }
            _ => Err(Error::NotFound("no such route".into())),
        }
    }
}

townes_sdk::export_feature!(Moderation);

#[cfg(test)]
mod tests;
