//! `tickets`: the built-in support-ticket feature (seed 002's tickets).
//!
//! - **Panels**: a message with a button members click to open a ticket;
//!   several per guild, each with its own category and support roles.
//!   **`/ticket-panel create channel title [description] [label] [emoji]
//!   [category] [support_role]`** (Manage Server by default) or the dashboard.
//! - **Opening** makes a private text channel: hidden from `@everyone`,
//!   visible to the opener, the panel's support roles and the bot (view, send,
//!   history, attach, embed; never anything that manages). A member has at
//!   most `max_open_per_member` open tickets, the guild opens at most
//!   `max_opens_per_30s` per 30 seconds.
//! - In the ticket: **Claim** / **Unclaim** / **Close** buttons, and
//!   **`/ticket close [reason]`**, **`/ticket claim`**, **`/ticket add user`**,
//!   **`/ticket remove user`**. Support (a support role, or Manage Channels)
//!   claims, reopens and deletes; the opener may close too; only the claimer
//!   or a channel manager unclaims.
//! - **Closing** (a form asks for a reason) takes the opener's right to write,
//!   makes a **transcript** — the channel's history as one self-contained HTML
//!   page with the attachments copied beside it — and sends its link to the
//!   opener by DM (in the channel when their DMs are closed), to the channel
//!   and to the log channel. **Reopen** and **Delete** buttons follow.
//! - **Inactivity**: a ticket nobody writes in for `inactive_seconds` gets a
//!   warning, and closes `warning_seconds` later if still nobody writes.
//! - Every change is a live `ticket_update` event (`{"ticket", "action"}`:
//!   opened, claimed, unclaimed, warned, closed, reopened, deleted) and, where
//!   `audit` is granted, an audit entry `ticket.{action}` (warnings excepted;
//!   also `ticket.member_added`, `ticket.member_removed`,
//!   `ticket.panel_created`, `ticket.panel_deleted`).
//!
//! # Buttons and forms (custom ids)
//! `open:{panel}` (on a panel); `claim:{n}`, `unclaim:{n}`, `close:{n}` (on the
//! welcome message); the form `close-form:{n}` with the input `reason`;
//! `reopen:{n}`, `delete:{n}` (on the closing message).
//!
//! # Dashboard routes
//! `GET /tickets` (`?status=open|closed|deleted|all`, `?user=`),
//! `GET /tickets/{id}`, `POST /tickets/{id}/claim|unclaim|close|reopen|delete`,
//! `GET /tickets/{id}/transcript`, `GET /panels`, `POST /panels`,
//! `DELETE /panels/{id}` (see [`routes`]).
//!
//! # Config
//! `max_open_per_member` (1-10, 1), `max_opens_per_30s` (1-100, 5),
//! `naming` (`username`: `ticket-{username}`, or `number`: `ticket-{n}`),
//! `inactive_seconds` (0 = off, else 10-2592000; 172800),
//! `warning_seconds` (5-86400; 3600), `transcript_link_days` (1-7; 7),
//! `log_channel` (an id or null).
//!
//! # State (all in `storage`; ids as decimal strings)
//! - `ticket:next`: the last ticket number;
//! - `ticket:{n:010}`: a ticket as JSON ([`store::Ticket`]);
//! - `channel:{channel_id}`: the number of the ticket in that channel (until
//!   it is deleted);
//! - `open:{user_id}:{n:010}`: the opener's open tickets (value: the channel),
//!   for the per-member limit;
//! - `opening:{user_id}`: held for the moment a ticket is being opened, so a
//!   double click cannot pass the limit twice;
//! - `opens:{unix_seconds / 30}`: tickets opened in the current 30-second
//!   window (older windows are removed);
//! - `panel:next`, `panel:{n:010}`: panels as JSON ([`store::Panel`]).
//!
//! Files: `tickets/{n}/transcript.html`, and `tickets/{n}/{attachment_id}-{filename}`
//! for each attachment copied. Scheduled job: `inactivity` (payload: the
//! ticket number), at most one live per ticket.

pub mod actions;
pub mod inactivity;
pub mod interactions;
pub mod panels;
pub mod routes;
pub mod store;
pub mod time;
pub mod transcript;

use serde::{Deserialize, Serialize};
use townes_sdk::{
    ApiRequest, ApiResponse, Capability, CapabilityRequest, Command, CommandInvocation,
    CommandOption, ComponentInteraction, Context, Error, Event, EventKind, Feature, Manifest,
    Reply, Route, ScheduledJob, Snowflake, Subcommand, config, json, serde_json, snowflake,
};

/// The feature.
pub struct Tickets;

/// Discord's permission bits the feature grants and checks.
pub mod permissions {
    pub const ADMINISTRATOR: u64 = 1 << 3;
    pub const MANAGE_CHANNELS: u64 = 1 << 4;
    pub const MANAGE_GUILD: u64 = 1 << 5;
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    pub const SEND_MESSAGES: u64 = 1 << 11;
    pub const EMBED_LINKS: u64 = 1 << 14;
    pub const ATTACH_FILES: u64 = 1 << 15;
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    /// What the opener, the support roles and the bot get in a ticket channel.
    pub const MEMBER_ACCESS: u64 =
        VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ATTACH_FILES | EMBED_LINKS;
}

// ------------------------------------------------------------------ config

/// How ticket channels are named.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Naming {
    /// `ticket-{username}`.
    #[default]
    Username,
    /// `ticket-{number}`.
    Number,
}

/// The guild's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub max_open_per_member: u32,
    pub max_opens_per_30s: u32,
    pub naming: Naming,
    /// Quiet seconds before the warning; 0: tickets never close by themselves.
    pub inactive_seconds: u32,
    /// Seconds between the warning and the closing.
    pub warning_seconds: u32,
    pub transcript_link_days: u32,
    /// Where closings are posted with their transcript; none: nowhere.
    #[serde(with = "townes_sdk::snowflake::opt_string")]
    pub log_channel: Option<Snowflake>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_open_per_member: 1,
            max_opens_per_30s: 5,
            naming: Naming::Username,
            inactive_seconds: 2 * 86_400,
            warning_seconds: 3600,
            transcript_link_days: 7,
            log_channel: None,
        }
    }
}

impl Config {
    /// The guild's config. The host has checked it against the schema; the
    /// clamps only keep a hand-edited value from breaking a close.
    pub fn load() -> Result<Config, Error> {
        let mut config: Config = config::get_json()?;
        config.max_open_per_member = config.max_open_per_member.clamp(1, 10);
        config.max_opens_per_30s = config.max_opens_per_30s.clamp(1, 100);
        if config.inactive_seconds != 0 {
            config.inactive_seconds = config.inactive_seconds.clamp(10, 2_592_000);
        }
        config.warning_seconds = config.warning_seconds.clamp(5, 86_400);
        config.transcript_link_days = config.transcript_link_days.clamp(1, 7);
        Ok(config)
    }

    /// How long transcript links work (files links last a week at most).
    pub fn link_seconds(&self) -> u32 {
        self.transcript_link_days.clamp(1, 7) * 86_400
    }
}

pub fn config_schema() -> serde_json::Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "max_open_per_member": {
                "type": "integer", "minimum": 1, "maximum": 10,
                "description": "Open tickets one member may have at once"
            },
            "max_opens_per_30s": {
                "type": "integer", "minimum": 1, "maximum": 100,
                "description": "Tickets the whole server may open per 30 seconds"
            },
            "naming": {
                "enum": ["username", "number"],
                "description": "Ticket channels are called ticket-{username} or ticket-{number}"
            },
            "inactive_seconds": {
                "anyOf": [
                    { "const": 0 },
                    { "type": "integer", "minimum": 10, "maximum": 2_592_000 }
                ],
                "description": "Quiet seconds before a ticket is warned and then closed; 0: never"
            },
            "warning_seconds": {
                "type": "integer", "minimum": 5, "maximum": 86_400,
                "description": "Seconds between the inactivity warning and the closing"
            },
            "transcript_link_days": {
                "type": "integer", "minimum": 1, "maximum": 7,
                "description": "Days a transcript link works"
            },
            "log_channel": snowflake::nullable_schema()
        },
        "additionalProperties": false
    })
}

// ------------------------------------------------------------------ feature

impl Feature for Tickets {
    fn describe() -> Manifest {
        let user = || CommandOption::user("user", "The member").required();
        Manifest::new("tickets", "0.1.0")
            .name("Tickets")
            .description(
                "Support tickets: panels open private channels; claim, close with a reason, \
                 HTML transcripts with attachments, reopen, delete, auto-close when quiet",
            )
            .command(
                Command::slash("ticket-panel", "Ticket panels")
                    .subcommand(
                        Subcommand::new("create", "Post a panel members click to open a ticket")
                            .option(
                                CommandOption::channel("channel", "Where to post it").required(),
                            )
                            .option(CommandOption::text("title", "The panel's title").required())
                            .option(CommandOption::text("description", "The panel's text"))
                            .option(CommandOption::text(
                                "label",
                                "The button's label (Open a ticket)",
                            ))
                            .option(CommandOption::text("emoji", "An emoji on the button"))
                            .option(CommandOption::channel(
                                "category",
                                "The category ticket channels go in",
                            ))
                            .option(CommandOption::role(
                                "support_role",
                                "The role that handles these tickets",
                            )),
                    )
                    .default_permissions(permissions::MANAGE_GUILD),
            )
            .command(
                Command::slash("ticket", "Act on this ticket")
                    .subcommand(
                        Subcommand::new("close", "Close this ticket")
                            .option(CommandOption::text("reason", "Why (the opener sees it)")),
                    )
                    .subcommand(Subcommand::new("claim", "Take this ticket on"))
                    .subcommand(
                        Subcommand::new("add", "Let a member see this ticket").option(user()),
                    )
                    .subcommand(
                        Subcommand::new("remove", "Hide this ticket from a member").option(user()),
                    ),
            )
            .event(EventKind::MessageCreated)
            .capability(CapabilityRequest::required(
                Capability::Messages,
                "posts panels and notes in tickets, reads a ticket's history for its transcript",
            ))
            .capability(CapabilityRequest::required(
                Capability::MessageContent,
                "puts what was said, and the attachments, in transcripts",
            ))
            .capability(CapabilityRequest::required(
                Capability::Members,
                "sends openers their transcript by DM",
            ))
            .capability(CapabilityRequest::required(
                Capability::Channels,
                "creates and deletes ticket channels and sets who sees them",
            ))
            .capability(CapabilityRequest::required(
                Capability::Storage,
                "keeps tickets, panels and transcripts",
            ))
            .capability(CapabilityRequest::required(
                Capability::Scheduler,
                "closes quiet tickets",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Audit,
                "records ticket actions in the audit log",
            ))
            .config(
                config_schema(),
                serde_json::to_value(Config::default()).unwrap_or_default(),
            )
    }

    fn on_event(ctx: &Context, event: Event) -> Result<(), Error> {
        match event {
            Event::MessageCreated(message) => inactivity::note_activity(ctx, &message),
            _ => Ok(()),
        }
    }

    fn on_command(ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        interactions::on_command(ctx, invocation)
    }

    fn on_component(ctx: &Context, interaction: ComponentInteraction) -> Result<Reply, Error> {
        interactions::on_component(ctx, interaction)
    }

    fn on_schedule(ctx: &Context, job: ScheduledJob) -> Result<(), Error> {
        match job.name.as_str() {
            inactivity::INACTIVITY_JOB => inactivity::check_inactivity(ctx, &Config::load()?, &job),
            _ => Ok(()),
        }
    }

    fn routes() -> Vec<Route> {
        routes::routes()
    }

    fn on_api(ctx: &Context, request: ApiRequest) -> Result<ApiResponse, Error> {
        routes::handle(ctx, request)
    }
}

townes_sdk::export_feature!(Tickets);

#[cfg(test)]
mod tests;
