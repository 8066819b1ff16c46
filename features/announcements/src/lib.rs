//! `announcements`: the built-in scheduled-announcements feature (seed 001).
//!
//! An announcement is a message posted in a channel on a schedule: **once**
//! at a moment, **every** N minutes/hours/days (10 minutes at least),
//! **daily** at a UTC time, or **weekly** on a day at a UTC time (see
//! [`schedule`]; daily and weekly stand in for cron — a full cron parser is
//! not part of this feature). Its text takes template variables, an optional
//! embed (title, description, colour) goes under it, and an optional role is
//! mentioned at its start.
//!
//! # Command (Manage Server by default)
//! - **`/announce create channel message [every] [daily] [weekly] [at] [role]`**
//!   — exactly one schedule: `every: 6h`, `daily: 09:30`, `weekly: mon 09:30`,
//!   `at: 2026-12-07 10:00` (also RFC 3339, Unix seconds or `in 2h`);
//! - **`/announce list`**, **`/announce pause number`**, **`/announce resume
//!   number`**, **`/announce delete number`**, **`/announce send number`** (posts
//!   now; the schedule stays as it is).
//!
//! # Dashboard routes (see [`routes`])
//! `GET /announcements` (`listAnnouncements`), `POST /announcements`
//! (`createAnnouncement`, 201), `GET /announcements/{id}` (`getAnnouncement`),
//! `PATCH /announcements/{id}` (`updateAnnouncement`),
//! `POST /announcements/{id}/pause` (`pauseAnnouncement`),
//! `POST /announcements/{id}/resume` (`resumeAnnouncement`),
//! `POST /announcements/{id}/send` (`sendAnnouncement`),
//! `DELETE /announcements/{id}` (`deleteAnnouncement`). `{id}` is the
//! announcement's number; Discord ids are decimal strings. Refusals are
//! `invalid-argument` (400) with a sentence saying what would work; an unknown
//! number is `not-found` (404).
//!
//! # Template variables
//! `{server.name}`, `{server.memberCount}` (need `members`; without it they
//! read `this server` and `?`), `{date}` (`2026-12-07`), `{time}` (`09:30`)
//! and `{weekday}` (`Monday`) of the moment of posting, in UTC. Unknown
//! placeholders stay as written. `@everyone` and `@here` in the text are
//! defused; they never ping.
//!
//! # Config
//! - `allowed_ping_roles` (role ids, default none): the only roles an
//!   announcement's `ping_role` may ping. A role not listed is still shown at
//!   the start of the message, without the ping: the post goes out, the host
//!   log says why, and the audit log is told once (until the role is pinged
//!   again or changed). `@everyone` (the guild's own id) is never pinged,
//!   whatever the list says; `@here` is not a role and cannot be listed.
//! - `max_announcements` (1-100, default 25).
//!
//! The host notifies a mentioned role only when the admin also listed it
//! in the feature's approval (`mention_roles`); a role allowed here but not
//! there is shown without notifying anyone.
//!
//! # Running
//! Each announcement has at most one pending scheduled job **`announce`**,
//! payload `{"number": n, "due": unix_seconds}`; its id is kept as
//! `pending_job`. A job whose announcement is gone or paused, or whose id is
//! not the stored one (a leftover of a pause, an edit or a retry), does
//! nothing. Otherwise it *claims* its run with a compare-and-set
//! (`storage::set_if`) that records `last_due` and hands the announcement over
//! to the next run, then schedules that run, then posts — so a retried or
//! duplicated job can never post the same due time twice (at most once: a
//! post that fails is recorded as `last_error`, not retried).
//!
//! **The late-run rule**: jobs survive restarts, so after downtime a job runs
//! late. It then posts **once**, late, and the next run is the first
//! occurrence after *now* — every occurrence missed meanwhile is skipped,
//! never posted as a backlog (intervals keep their phase).
//!
//! **Enabling and disabling**: disabling leaves the jobs alone
//! ([`Feature::on_disabled`] does nothing). The host does not cancel a
//! disabled feature's jobs at once: it leaves them pending and cancels each one
//! that comes due while the feature is off (`run_due_jobs` in
//! `host/src/runtime`, "the feature is not enabled"). So
//! [`Feature::on_enabled`] restarts every active (not paused) announcement
//! from now: it cancels the stored job (still pending if it is not due yet, or
//! already cancelled by the host), keeps a next run that still lies ahead and
//! otherwise takes the schedule's next occurrence after now. Runs that fell in
//! the disabled time are not posted — the admins switched them off — and a
//! one-off whose moment passed meanwhile stays unscheduled, with a
//! `last_error` saying so (resume or PATCH gives it a new time).
//!
//! Every change is a live `announcement_update` event (`{"announcement",
//! "action"}`: created, updated, paused, resumed, deleted, sent) and, where
//! `audit` is granted, an audit entry `announcement.{action}` — except
//! scheduled posts, which are routine and would exhaust the audit quota of a
//! busy guild; their trouble is audited instead (`announcement.failed`,
//! `announcement.ping_skipped`).
//!
//! # State (all in `storage`)
//! - `announcement:next`: the last announcement number handed out;
//! - `announcement:{n:010}`: an announcement as JSON ([`store::Announcement`]).

pub mod actions;
pub mod commands;
pub mod routes;
pub mod run;
pub mod schedule;
pub mod store;
pub mod time;

use serde::{Deserialize, Serialize};
use townes_sdk::{
    ApiRequest, ApiResponse, Capability, CapabilityRequest, CommandInvocation, Context, Error,
    Feature, Manifest, Reply, Route, ScheduledJob, Snowflake, config, json, log, serde_json,
    snowflake,
};

/// The feature.
pub struct Announcements;

/// Discord's Manage Server permission bit: who may use `/announce` by default.
pub const MANAGE_GUILD: u64 = 1 << 5;

// ------------------------------------------------------------------ config

/// The guild's configuration.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// The roles announcements may ping.
    #[serde(
        deserialize_with = "snowflake::de_vec",
        serialize_with = "ids_as_strings"
    )]
    pub allowed_ping_roles: Vec<Snowflake>,
    /// Announcements a guild may have.
    pub max_announcements: u32,
}

fn ids_as_strings<S: serde::Serializer>(ids: &[Snowflake], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ids.iter().map(Snowflake::to_string))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allowed_ping_roles: Vec::new(),
            max_announcements: 25,
        }
    }
}

impl Config {
    /// The guild's config. The host has checked it against the schema; the
    /// clamp only keeps a hand-edited value sane.
    pub fn load() -> Result<Config, Error> {
        let mut config: Config = config::get_json()?;
        config.max_announcements = config.max_announcements.clamp(1, 100);
        Ok(config)
    }

    /// Whether a post may ping `role` in guild `guild_id`: listed, and not
    /// `@everyone` (whose role id is the guild's id).
    pub fn may_ping(&self, role: Snowflake, guild_id: Snowflake) -> bool {
        role != guild_id && self.allowed_ping_roles.contains(&role)
    }
}

pub fn config_schema() -> serde_json::Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "allowed_ping_roles": {
                "type": "array",
                "maxItems": 50,
                "items": snowflake::schema(),
                "description": "Roles announcements may ping; a role not listed is shown without the ping. @everyone and @here are never pinged."
            },
            "max_announcements": {
                "type": "integer", "minimum": 1, "maximum": 100,
                "description": "Announcements this server may have"
            }
        },
        "additionalProperties": false
    })
}

// ------------------------------------------------------------------ feature

impl Feature for Announcements {
    fn describe() -> Manifest {
        Manifest::new("announcements", "0.1.0")
            .name("Announcements")
            .description(
                "Scheduled announcements: once, every few hours or days, daily or weekly at a \
                 UTC time; template variables, an embed and an allow-listed role ping; pause, \
                 resume or send now",
            )
            .command(commands::command())
            .capability(CapabilityRequest::required(
                Capability::Messages,
                "posts the announcements",
            ))
            .capability(CapabilityRequest::required(
                Capability::Storage,
                "keeps the announcements and their schedules",
            ))
            .capability(CapabilityRequest::required(
                Capability::Scheduler,
                "posts each announcement on time, across restarts",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Members,
                "reads the server's name and member count for {server.*} variables",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Audit,
                "records changes to announcements in the audit log",
            ))
            .config(
                config_schema(),
                serde_json::to_value(Config::default()).unwrap_or_default(),
            )
    }

    fn on_command(ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        commands::on_command(ctx, invocation)
    }

    fn on_schedule(ctx: &Context, job: ScheduledJob) -> Result<(), Error> {
        match job.name.as_str() {
            run::ANNOUNCE_JOB => run::on_job(ctx, &job),
            _ => Ok(()),
        }
    }

    fn routes() -> Vec<Route> {
        routes::routes()
    }

    fn on_api(ctx: &Context, request: ApiRequest) -> Result<ApiResponse, Error> {
        routes::handle(ctx, request)
    }

    /// Restarts every active announcement from now (see the module docs:
    /// the host cancelled whatever came due while the feature was off). An
    /// error here would switch the feature off again, so trouble with one
    /// announcement is logged and recorded on it instead.
    fn on_enabled(_ctx: &Context) -> Result<(), Error> {
        let restarted = actions::restart_all(time::now())?;
        log::info(format!("enabled: {restarted} announcement(s) scheduled"));
        Ok(())
    }

    /// Nothing to do: the jobs stay, and the host cancels those that come due
    /// while the feature is off; [`on_enabled`](Feature::on_enabled) puts the
    /// announcements back on schedule.
    fn on_disabled(_ctx: &Context) -> Result<(), Error> {
        Ok(())
    }
}

townes_sdk::export_feature!(Announcements);

#[cfg(test)]
mod tests;
