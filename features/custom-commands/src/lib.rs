//! `custom-commands`: the built-in "Custom commands & auto-responders"
//! feature (seed 002, modules 2 and 3).
//!
//! # Custom commands
//! Defined from the dashboard: a name (`a-z 0-9 - _`, 1-32), a response
//! (`text`, or an `embed` with title, description, colour, fields, footer
//! and `https://` URLs only), an enabled flag, a per-member cooldown, required
//! roles (any one of them), a description. Responses may use variables
//! ([`variables`]: `{user}`, `{user.mention}`, `{user.name}`, `{user.id}`,
//! `{server.name}`, `{server.memberCount}`, `{server.id}`, `{channel}`,
//! `{channel.mention}`, `{args}`, `{arg1}`…`{arg9}`). Features are not told
//! channel names, so `{channel}` is the channel's **id** and
//! `{channel.mention}` is `<#id>` (Discord shows it as `#name`).
//!
//! They run as **prefix commands**: the feature reads every message through
//! the `message-created` event (`message-content` is required) and answers
//! `{prefix}name [args]`, where `prefix` is the feature's own config (default
//! `!`) because features are not told the guild's prefix. A refusal
//! (disabled, missing role, cooldown) is answered in a short reply, never
//! dropped. They are **slash commands** too: each enabled command that is
//! not a tag is offered to the host as the guild's `/name [args]`
//! (`guild-commands`, [`commands::slash_commands`]; up to 50, re-read after
//! every dashboard change), and **`/cc name [args]`** runs any of them.
//!
//! **Tags** are commands with `is_tag` and a `category` (default
//! `general`): `{prefix}name` or **`/tag name`** shows one,
//! `{prefix}tags [category]` or **`/tags [category]`** lists them by category.
//!
//! **Menus** are commands with `menu_pages` (1-10 pages, each text or embed):
//! page 1 comes with ◀ Previous / n / N / Next ▶ buttons ([`menus`]).
//!
//! # Auto-responders
//! A trigger (`exact`, `contains`, `starts_with`, `ends_with` or `regex`),
//! case sensitivity, a channel scope, a response with the same variables
//! (`{args}` is then the message's words), a priority. At most one
//! auto-response per message, none for a message that ran a command, at most
//! one per channel per 10 seconds, never for bots ([`responders`]).
//!
//! # Commands (slash only; the prefix ones come through events)
//! `/cc name [args]`, `/tag name`, `/tags [category]`, and `/name [args]`
//! per custom command; prefix:
//! `{prefix}{command}` and `{prefix}tags [category]` (`tags` is reserved).
//!
//! # Events
//! `message-created`.
//!
//! # Buttons (custom ids)
//! `page:{command}:{n}` (n from 1): the page to show ([`menus`]).
//!
//! # Dashboard routes
//! `GET|POST /commands`, `GET|PUT|DELETE /commands/{name}`,
//! `GET|POST /auto-responders`, `GET|PUT|DELETE /auto-responders/{id}`
//! ([`routes`]; also under `/api/guild/{guildId}/commands…`).
//!
//! # Config
//! `prefix` (1-5 characters, no spaces; `!`), `max_commands` (1-500; 100),
//! `max_auto_responders` (1-200; 50).
//!
//! # State (all in `storage`; ids in JSON as decimal strings)
//! - `cmd:{name}`: a command as JSON ([`store::CustomCommand`]);
//! - `cd:{name}:{user_id}`: when the member last used a command that has a
//!   cooldown (Unix seconds);
//! - `ar-next`: the last auto-responder id;
//! - `ar:{id:010}`: an auto-responder as JSON ([`store::AutoResponder`]);
//! - `ar-count:{id:010}`: how many messages it matched (`storage::increment`);
//! - `ar-last:{channel_id}`: when the channel last got an auto-response
//!   (Unix seconds; taken with `set_if`).
//!
//! # Capabilities
//! `messages`, `message-content`, `storage` (required); `members` (optional:
//! nicknames for `{user}`, the `server` variables and required roles — a
//! command with required roles is refused, saying why, without it);
//! `audit` (optional: `custom_command.*` / `auto_responder.*` entries).

pub mod commands;
pub mod menus;
pub mod responders;
pub mod routes;
pub mod store;
pub mod tags;
pub mod variables;

use commands::Slash;
use serde::{Deserialize, Serialize};
use townes_sdk::{
    ApiRequest, ApiResponse, Capability, CapabilityRequest, Command, CommandInvocation,
    CommandOption, ComponentInteraction, Context, Error, Event, EventKind, Feature, Manifest,
    Reply, Route, config, json, serde_json,
};

/// The feature.
pub struct CustomCommands;

/// The guild's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// What prefix commands start with.
    pub prefix: String,
    pub max_commands: u32,
    pub max_auto_responders: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            prefix: "!".into(),
            max_commands: 100,
            max_auto_responders: 50,
        }
    }
}

impl Config {
    /// The guild's config. The host has checked it against the schema; the
    /// clamps only keep a hand-edited value from breaking the feature.
    pub fn load() -> Result<Config, Error> {
        let mut config: Config = config::get_json()?;
        let prefix_ok = (1..=5).contains(&config.prefix.chars().count())
            && !config.prefix.contains(char::is_whitespace);
        if !prefix_ok {
            config.prefix = "!".into();
        }
        config.max_commands = config.max_commands.clamp(1, 500);
        config.max_auto_responders = config.max_auto_responders.clamp(1, 200);
        Ok(config)
    }
}

pub fn config_schema() -> serde_json::Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "prefix": {
                "type": "string", "minLength": 1, "maxLength": 5, "pattern": "^\\S{1,5}$",
                "default": "!",
                "description": "What custom prefix commands start with (the feature is not told the server's own prefix)"
            },
            "max_commands": {
                "type": "integer", "minimum": 1, "maximum": 500, "default": 100,
                "description": "Custom commands and tags the server may have"
            },
            "max_auto_responders": {
                "type": "integer", "minimum": 1, "maximum": 200, "default": 50,
                "description": "Auto-responders the server may have"
            }
        },
        "additionalProperties": false
    })
}

impl Feature for CustomCommands {
    fn describe() -> Manifest {
        Manifest::new("custom-commands", "0.1.0")
            .name("Custom commands & auto-responders")
            .description(
                "Custom prefix commands with variables, cooldowns and required roles; tags by \
                 category; multi-page menus; /cc to run any of them; auto-responders with \
                 exact, contains, starts/ends-with and regex triggers",
            )
            .command(
                Command::slash("cc", "Run a custom command")
                    .option(CommandOption::text("name", "The command's name").required())
                    .option(CommandOption::text(
                        "args",
                        "What the command's {args} and {arg1}… stand for",
                    )),
            )
            .command(
                Command::slash("tag", "Show a tag")
                    .option(CommandOption::text("name", "The tag's name").required()),
            )
            .command(
                Command::slash("tags", "List the tags by category")
                    .option(CommandOption::text("category", "Only this category")),
            )
            .event(EventKind::MessageCreated)
            .capability(CapabilityRequest::required(
                Capability::Messages,
                "answers custom commands and auto-responder triggers",
            ))
            .capability(CapabilityRequest::required(
                Capability::MessageContent,
                "reads messages to find commands and auto-responder triggers",
            ))
            .capability(CapabilityRequest::required(
                Capability::Storage,
                "keeps the commands, auto-responders, cooldowns and trigger counts",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Members,
                "fills in {user} with nicknames and the {server.*} variables, checks required roles",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Audit,
                "records dashboard changes to commands and auto-responders",
            ))
            .config(
                config_schema(),
                serde_json::to_value(Config::default()).unwrap_or_default(),
            )
    }

    fn on_event(ctx: &Context, event: Event) -> Result<(), Error> {
        let Event::MessageCreated(message) = event else {
            return Ok(());
        };
        if message.author.bot || message.author.id == ctx.bot_user_id || message.content.is_empty()
        {
            return Ok(());
        }
        let config = Config::load()?;
        if commands::on_message(ctx, &message, &config)? {
            return Ok(());
        }
        responders::on_message(ctx, &message)
    }

    fn on_command(ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        match invocation.name.as_str() {
            "cc" => commands::on_slash(ctx, invocation, Slash::Cc),
            "tag" => commands::on_slash(ctx, invocation, Slash::Tag),
            "tags" => tags::on_slash(&invocation, &Config::load()?.prefix),
            _ => commands::on_slash(ctx, invocation, Slash::Own),
        }
    }

    fn guild_commands(_ctx: &Context) -> Result<Vec<Command>, Error> {
        commands::slash_commands()
    }

    fn on_component(ctx: &Context, interaction: ComponentInteraction) -> Result<Reply, Error> {
        menus::on_click(ctx, interaction)
    }

    fn routes() -> Vec<Route> {
        routes::routes()
    }

    fn on_api(_ctx: &Context, request: ApiRequest) -> Result<ApiResponse, Error> {
        routes::handle(request)
    }
}

townes_sdk::export_feature!(CustomCommands);

#[cfg(test)]
mod tests;
