//! `fun`: the built-in fun feature (seed 002's "Fun: 8ball, meme, joke, poll").
//!
//! Nothing is fetched from the network: the feature holds no capability
//! that could, so every answer, joke and meme is bundled in the component
//! ([`data`]).
//!
//! # Commands
//! - **`/8ball question`** (also as a prefix command): one of the classic
//!   twenty answers, with the question quoted back (on one line, cut to 256
//!   characters). The answer is a hash of the question (case and trailing
//!   punctuation aside), the asker and the hour, so asking again within the
//!   hour does not reroll it ([`pick`] says why a hash and not `std`'s RNG).
//! - **`/joke [category]`** (also prefix): a family-friendly joke written for
//!   this feature, the punchline behind a spoiler; categories `animals`,
//!   `food`, `programming`, `puns`, `science`. An unknown category is refused
//!   with the list of those the guild allows.
//! - **`/meme`** (also prefix): a *text* meme. Honest limitation: Discord
//!   shows pictures only from URLs and a feature that fetches nothing has no
//!   pictures to give, so a meme here is a classic format described in
//!   words, with its top and bottom captions, in an embed. Thirty are
//!   bundled, all written for this feature.
//! - **`/poll question options [duration] [multi]`**: `options` is one text,
//!   2 to 10 options separated by `|` (or `;` when there is no `|`), each up
//!   to 80 characters; `duration` like `30m`, `2h`, `1d` (default 24 h, at
//!   most `max_poll_days`); `multi` lets members choose several options. The
//!   poll is an embed with each option's count, share and bar, edited after
//!   every vote; one vote per member, and voting again changes it (on a
//!   `multi` poll a button toggles its option). It ends on time (a job), or
//!   early by its **End poll** button: the message then shows the final
//!   counts and the winner(s) without buttons, and the results are posted
//!   in the channel. A vote on an ended poll is refused politely.
//!
//! # Buttons and menus (custom ids)
//! - `vote:{poll}:{index}`: one button per option (0-based), up to 5 options;
//! - `vote:{poll}`: the select menu that replaces them beyond 5 options
//!   (values: option indexes; several at once on a `multi` poll);
//! - `end:{poll}`: End poll, for the poll's creator or a member with Manage
//!   Messages in the channel.
//!
//! # Scheduled job
//! `end-poll`, payload the poll number, due at the poll's `ends_at`. Ending
//! twice (the job and the button, or a retried job) is harmless: only the
//! call that closes the poll posts the results.
//!
//! # Dashboard routes
//! `GET /polls` (newest first, at most 50, with counts) and `GET /polls/{id}`
//! (see [`routes`]). Live events `poll_update` (`created`, `voted`, `ended`)
//! tell open dashboards.
//!
//! # Config
//! `max_poll_days` (1-30; 7): the longest a poll may run; `joke_categories`
//! (default all five): the categories `/joke` may tell; empty turns jokes off.
//!
//! # State (all in `storage`; ids in JSON as decimal strings)
//! - `poll:next`: the last poll number;
//! - `poll:{n:010}`: a poll as JSON ([`store::Poll`]: number, channel_id,
//!   message_id, question, options, multi, creator, created_at, ends_at,
//!   closed, closed_at, closed_by, job);
//! - `vote:{n:010}:{user_id}`: the options a member chose, as a JSON array of
//!   indexes (`[]` once a `multi` voter took every choice back);
//! - `tally:{n:010}:{index}`: votes per option, and `tally:{n:010}:voters`:
//!   members with a vote — integers moved only by `storage::increment`.
//!
//! Votes and polls change only by compare-and-set (`storage::set_if`), so
//! concurrent clicks cannot lose a vote; see [`store`].

pub mod data;
pub mod pick;
pub mod poll;
pub mod quips;
pub mod render;
pub mod routes;
pub mod store;

use serde::{Deserialize, Serialize};
use townes_sdk::{
    ApiRequest, ApiResponse, Capability, CapabilityRequest, Command, CommandInvocation,
    CommandOption, ComponentInteraction, Context, Error, Feature, Manifest, Reply, Route,
    ScheduledJob, config, json, serde_json,
};

/// The feature.
pub struct Fun;

/// Discord's permission bits the feature checks.
pub mod permissions {
    /// Lets a member end someone else's poll.
    pub const MANAGE_MESSAGES: u64 = 1 << 13;
}

// ------------------------------------------------------------------ config

/// The guild's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The longest a poll may run, in days.
    pub max_poll_days: u32,
    /// The joke categories `/joke` may tell; none: no jokes.
    pub joke_categories: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_poll_days: 7,
            joke_categories: data::CATEGORIES.iter().map(|c| c.to_string()).collect(),
        }
    }
}

impl Config {
    /// The guild's config. The host has checked it against the schema; the
    /// clamp only keeps a hand-edited value from making a poll that never
    /// ends or ends at once.
    pub fn load() -> Result<Config, Error> {
        let mut config: Config = config::get_json()?;
        config.max_poll_days = config.max_poll_days.clamp(1, 30);
        Ok(config)
    }
}

pub fn config_schema() -> serde_json::Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "max_poll_days": {
                "type": "integer", "minimum": 1, "maximum": 30, "default": 7,
                "description": "The longest a poll may run, in days"
            },
            "joke_categories": {
                "type": "array",
                "items": { "enum": data::CATEGORIES },
                "uniqueItems": true,
                "default": data::CATEGORIES,
                "description": "The joke categories /joke may tell; empty turns jokes off"
            }
        },
        "additionalProperties": false
    })
}

// ------------------------------------------------------------------ replies

/// An answer only the member who clicked or ran the command sees.
pub fn say(text: impl Into<String>) -> Reply {
    Reply::text(text).ephemeral()
}

/// Turns a refusal (`InvalidArgument`: a bad option, a too-long question)
/// and a vanished poll (`NotFound`) into an answer to the member; other
/// errors stay errors. Errors are for what went wrong: the host counts them
/// against the feature, and a typo is not the feature's fault.
pub fn politely(result: Result<Reply, Error>) -> Result<Reply, Error> {
    match result {
        Err(Error::InvalidArgument(why)) => Ok(say(why)),
        Err(Error::NotFound(_)) => Ok(say("That poll no longer exists.")),
        other => other,
    }
}

// ------------------------------------------------------------------ feature

impl Feature for Fun {
    fn describe() -> Manifest {
        Manifest::new("fun", "0.1.0")
            .name("Fun")
            .description(
                "The Magic 8-Ball, jokes, text memes and polls with live counts; \
                 everything is bundled, nothing is fetched",
            )
            .command(
                Command::slash_and_prefix("8ball", "Ask the Magic 8-Ball a yes-or-no question")
                    .option(CommandOption::text("question", "Your yes-or-no question").required()),
            )
            .command(
                Command::slash_and_prefix("joke", "Hear a family-friendly joke").option(
                    CommandOption::text("category", "What about (any when absent)")
                        .choices(data::CATEGORIES),
                ),
            )
            .command(Command::slash_and_prefix(
                "meme",
                "A text meme: a classic format in words, no picture",
            ))
            .command(
                Command::slash("poll", "Start a poll members answer with buttons")
                    .option(CommandOption::text("question", "What to ask").required())
                    .option(
                        CommandOption::text(
                            "options",
                            "2 to 10 options separated by | or ;, e.g. Pizza | Pasta | Salad",
                        )
                        .required(),
                    )
                    .option(CommandOption::text(
                        "duration",
                        "How long, e.g. 30m, 2h, 1d (24h when absent)",
                    ))
                    .option(CommandOption::boolean(
                        "multi",
                        "Let members choose several options",
                    )),
            )
            .capability(CapabilityRequest::required(
                Capability::Messages,
                "posts polls, edits them as votes come in and posts their results",
            ))
            .capability(CapabilityRequest::required(
                Capability::Storage,
                "keeps polls and votes",
            ))
            .capability(CapabilityRequest::required(
                Capability::Scheduler,
                "ends polls on time",
            ))
            .config(
                config_schema(),
                serde_json::to_value(Config::default()).unwrap_or_default(),
            )
    }

    fn on_command(_ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        let answer = match invocation.name.as_str() {
            "8ball" => quips::eight_ball(&invocation),
            "joke" => Config::load().and_then(|config| quips::joke(&invocation, &config)),
            "meme" => Ok(quips::meme(&invocation)),
            "poll" => Config::load().and_then(|config| poll::create(&invocation, &config)),
            _ => return Err(Error::invalid("unknown command")),
        };
        politely(answer)
    }

    fn on_component(ctx: &Context, interaction: ComponentInteraction) -> Result<Reply, Error> {
        poll::on_component(ctx, &interaction)
    }

    fn on_schedule(ctx: &Context, job: ScheduledJob) -> Result<(), Error> {
        match job.name.as_str() {
            poll::END_POLL_JOB => poll::on_end_job(ctx, &job),
            _ => Ok(()),
        }
    }

    fn routes() -> Vec<Route> {
        routes::routes()
    }

    fn on_api(_ctx: &Context, request: ApiRequest) -> Result<ApiResponse, Error> {
        routes::handle(request)
    }
}

townes_sdk::export_feature!(Fun);

#[cfg(test)]
mod tests;
