//! `templates`: the built-in interaction builder (seed 002, module 2) —
//! message templates, reaction roles, button roles and select-menu roles.
//!
//! # Message templates
//! A template has an id the admin picks (a slug: 1-32 of `a-z 0-9 -`, unique
//! in the guild), a name, a text with template variables, an optional embed
//! (title, description, https title link, colour, fields, footer, https
//! thumbnail and image), up to 25 buttons five to a row — **link** buttons
//! (https) and **role** buttons — and one **select menu of roles** in the row
//! after them (then at most 20 buttons). Saving checks Discord's limits with
//! the host's own checks (`MessageBody::validate`) and answers what is wrong
//! as `invalid-argument`. Sending renders the variables and posts the
//! message; a message with role components is remembered (`sent:`), with the
//! roles it offered, so its clicks work and stay limited to those roles.
//!
//! A template may name a **command** (`rules`): the guild then has `/rules`
//! (contract 0.1.3 `guild-commands`), which answers with the template — or,
//! when it offers roles, posts it and says so. This is seed 002's "template"
//! response of a custom command: feature storage is private, so a custom
//! command cannot read a template; the template answers its own command.
//!
//! ## Template variables
//! `{server.name}`, `{server.memberCount}` (need `members`; without it they
//! read `this server` and `?`), `{server.id}`, `{channel}` (a mention of the
//! channel it is sent to) and `{channel.id}`, in the text, the embed's title,
//! description, footer and fields. Unknown placeholders stay as written.
//! Values are not expanded again; an `@everyone` or `@here` inside a value
//! (a server name) is defused. The SDK's renderer cuts what it renders at
//! 2000 characters, so an embed description here is limited to 2000 too.
//!
//! # Reaction roles
//! Any message (the bot's or another's the admin names) may carry up to 20
//! emoji → role pairs (`rr:{message_id}`); creating them adds each emoji as
//! the bot's reaction. Modes: `normal` (add on react, remove on un-react),
//! `unique` (one role of the set: reacting to another swaps the role — best
//! effort: the contract cannot remove a member's reaction, so the old
//! reaction stays visible), `verify` (add only). `limit` (0 = none) caps the
//! roles of one message a member holds (`unique` holds one anyway); a
//! reaction past it is ignored (and, again, cannot be removed). Replacing a
//! message's pairs leaves the bot's reactions of dropped emoji in place. Reactions of the bot itself and of bots (when
//! `members` tells) are ignored, as are messages without a record.
//!
//! # Buttons and menus (custom ids)
//! - `role:{role_id}`: a role button; toggles the role and answers ephemerally
//!   "Added @Role" / "Removed @Role";
//! - `roles:{template_id}`: the role menu; the member's roles among the menu's
//!   options become exactly the chosen ones.
//!
//! A click is honoured only when the message it is on (`message_id`) is a
//! remembered template message offering that role (or that menu): a forged
//! custom id naming another role is refused.
//!
//! # Commands
//! **`/send-template name [channel]`** (also as a prefix command; Manage
//! Server by default): sends a template (by id or name) to `channel`, or to
//! the channel the command ran in.
//!
//! # Events
//! `reaction-added`, `reaction-removed` (reaction roles).
//!
//! # Dashboard routes
//! `GET /templates` (`listTemplates`), `POST /templates` (`createTemplate`,
//! 201), `GET /templates/{id}` (`getTemplate`), `PUT /templates/{id}`
//! (`updateTemplate`), `DELETE /templates/{id}` (`deleteTemplate`),
//! `POST /templates/{id}/send` (`sendTemplate`: `{channel_id}` →
//! `{message_id, channel_id}`), `GET /reaction-roles` (`listReactionRoles`),
//! `POST /reaction-roles` (`setReactionRoles`: 201 new, 200 replaced),
//! `DELETE /reaction-roles/{message_id}` (`deleteReactionRoles`). Ids are
//! decimal strings; an unknown id is `not-found` (404), a refusal
//! `invalid-argument` (400) with a sentence saying what would work.
//!
//! # Config
//! `max_templates` (1-200, 50), `max_reaction_role_messages` (1-200, 50),
//! `assignable_roles` (role ids; default none = any role the bot's grant
//! allows): when set, the only roles templates and reaction roles may hand
//! out.
//!
//! # State (all in `storage`; ids as decimal strings)
//! - `template:{id}`: a template as JSON ([`store::Template`]);
//! - `sent:{message_id}`: a sent template message with role components
//!   ([`store::SentMessage`]: template_id, channel_id, button_roles,
//!   menu_roles);
//! - `rr:{message_id}`: reaction roles of a message ([`store::ReactionRoles`]:
//!   message_id, channel_id, mode, limit, pairs);
//! - `rrm:{message_id}:{user_id}`: the roles of that message the feature gave
//!   the member (used when `members` is denied and the member's roles cannot
//!   be read).
//!
//! # Not done, and why
//! - **Reconciliation on start** (roles of reactions added while the
//!   platform was down): the contract can neither list a message's reactions
//!   nor tell a feature that the platform started, so it is skipped.
//! - Whether a role exists cannot be checked when saving (the contract lists
//!   no roles): ids are checked for shape, `@everyone` and
//!   `assignable_roles`; a role that is gone answers politely on click.
//! - `sent:` and `rr:` records of deleted messages stay until their route
//!   deletes them (`rr:`) — the manifest subscribes to reactions only.

pub mod components;
pub mod reaction_roles;
pub mod routes;
pub mod store;
pub mod templates;

use serde::{Deserialize, Serialize};
use townes_sdk::{
    ApiRequest, ApiResponse, Capability, CapabilityRequest, Command, CommandInvocation,
    CommandOption, ComponentInteraction, Context, Error, Event, EventKind, Feature, Manifest,
    Reply, Route, Snowflake, audit, config, json, serde_json, snowflake,
};

/// The feature.
pub struct Templates;

/// Discord's Manage Server bit: who may send templates by default.
pub const MANAGE_GUILD: u64 = 1 << 5;

// ------------------------------------------------------------------ config

/// The guild's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub max_templates: u32,
    pub max_reaction_role_messages: u32,
    /// When not empty, the only roles templates and reaction roles may give.
    #[serde(with = "townes_sdk::snowflake::vec_string")]
    pub assignable_roles: Vec<Snowflake>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_templates: 50,
            max_reaction_role_messages: 50,
            assignable_roles: Vec::new(),
        }
    }
}

impl Config {
    /// The guild's config; the clamps only keep a hand-edited value sane.
    pub fn load() -> Result<Config, Error> {
        let mut config: Config = config::get_json()?;
        config.max_templates = config.max_templates.clamp(1, 200);
        config.max_reaction_role_messages = config.max_reaction_role_messages.clamp(1, 200);
        Ok(config)
    }

    /// Whether `role_id` may be handed out in guild `guild_id`; the error says why not.
    pub fn check_role(&self, guild_id: Snowflake, role_id: Snowflake) -> Result<(), Error> {
        if role_id == 0 || role_id == guild_id {
            return Err(Error::invalid(format!(
                "role {role_id} cannot be given: `@everyone` (the server's own id) and 0 are not roles; pick a real role"
            )));
        }
        if !self.assignable_roles.is_empty() && !self.assignable_roles.contains(&role_id) {
            return Err(Error::invalid(format!(
                "role {role_id} is not in this server's `assignable_roles`; add it there or pick one of those"
            )));
        }
        Ok(())
    }
}

pub fn config_schema() -> serde_json::Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "max_templates": {
                "type": "integer", "minimum": 1, "maximum": 200, "default": 50,
                "description": "Templates the server may keep"
            },
            "max_reaction_role_messages": {
                "type": "integer", "minimum": 1, "maximum": 200, "default": 50,
                "description": "Messages that may carry reaction roles"
            },
            "assignable_roles": {
                "type": "array", "maxItems": 250, "items": snowflake::schema(), "default": [],
                "description": "When set, the only roles templates and reaction roles may give"
            }
        },
        "additionalProperties": false
    })
}

// ------------------------------------------------------------------ helpers

/// Writes an audit entry when `audit` is granted; never fails the action.
pub fn audit_entry(action: &str, details: &str) {
    let _ = audit::write(action, details);
}

/// `<@&id>`: a role mention (ephemeral answers do not ping).
pub fn role_mention(role_id: Snowflake) -> String {
    format!("<@&{role_id}>")
}

/// An ephemeral text answer.
pub fn say(text: impl Into<String>) -> Reply {
    Reply::text(text).ephemeral()
}

// ------------------------------------------------------------------ feature

impl Feature for Templates {
    fn describe() -> Manifest {
        Manifest::new("templates", "0.1.0")
            .name("Templates & role menus")
            .description(
                "Message templates with variables, embeds, link buttons and role buttons or \
                 menus; reaction roles (normal, unique, verify) with a per-message limit",
            )
            .command(
                Command::slash_and_prefix("send-template", "Send a message template")
                    .option(CommandOption::text("name", "The template's id or name").required())
                    .option(CommandOption::channel(
                        "channel",
                        "Where to send it (this channel if left out)",
                    ))
                    .default_permissions(MANAGE_GUILD),
            )
            .event(EventKind::ReactionAdded)
            .event(EventKind::ReactionRemoved)
            .capability(CapabilityRequest::required(
                Capability::Messages,
                "sends templates and adds the reactions of reaction-role messages",
            ))
            .capability(CapabilityRequest::required(
                Capability::Roles,
                "gives and takes the roles of role buttons, role menus and reaction roles",
            ))
            .capability(CapabilityRequest::required(
                Capability::Storage,
                "keeps templates, reaction roles and which messages offer which roles",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Members,
                "fills in {server.name} and {server.memberCount}, and reads a member's roles \
                 and whether they are a bot for reaction roles",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Audit,
                "records template and reaction-role changes in the audit log",
            ))
            .config(
                config_schema(),
                serde_json::to_value(Config::default()).unwrap_or_default(),
            )
    }

    fn on_event(ctx: &Context, event: Event) -> Result<(), Error> {
        match event {
            Event::ReactionAdded(reaction) => reaction_roles::on_reaction(ctx, &reaction, true),
            Event::ReactionRemoved(reaction) => reaction_roles::on_reaction(ctx, &reaction, false),
            _ => Ok(()),
        }
    }

    fn on_guild_ready(ctx: &Context) -> Result<(), Error> {
        reaction_roles::reconcile(ctx)
    }

    fn guild_commands(_ctx: &Context) -> Result<Vec<Command>, Error> {
        templates::guild_commands()
    }

    fn on_command(ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        match invocation.name.as_str() {
            "send-template" => templates::send_command(ctx, &invocation),
            _ => templates::command(ctx, &invocation),
        }
    }

    fn on_component(ctx: &Context, interaction: ComponentInteraction) -> Result<Reply, Error> {
        components::on_component(ctx, &interaction)
    }

    fn routes() -> Vec<Route> {
        routes::routes()
    }

    fn on_api(ctx: &Context, request: ApiRequest) -> Result<ApiResponse, Error> {
        routes::handle(ctx, request)
    }
}

townes_sdk::export_feature!(Templates);

#[cfg(test)]
mod tests;
