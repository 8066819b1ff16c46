//! `welcome`: the built-in welcome feature.
//!
//! - **Member joined**: posts a templated message in the configured channel,
//!   optionally sends the new member a DM, and optionally gives them roles.
//! - **Member left**: optionally posts a goodbye.
//! - **`/welcome-test`** (Manage Server by default): renders the configured welcome
//!   message for the invoker and replies ephemerally, so admins can preview it.
//!
//! Templates understand `{user}` (display name), `{user.mention}` (`<@id>`),
//! `{user.name}` (username), `{server.name}` and `{server.memberCount}`. The
//! server placeholders need `members::guild()`, which is called only when a
//! template uses them; when the `members` capability is denied they render as
//! `this server` and `?`. Unknown placeholders are left as they are. Rendered
//! text is cut to Discord's 2000 characters.
//!
//! Capabilities: `messages` (required), `members` (optional: server info and
//! DMs), `roles` (optional: auto-roles). Every side effect is independent: a
//! refused DM or a denied role is logged as a warning and the others still
//! happen. A handler fails only when nothing could be done because `messages`
//! is denied.
//!
//! With the default config nothing happens: the channel message needs
//! `channel`, the DM needs `dm.enabled`, auto-roles need `auto_roles`, the
//! goodbye needs `leave.enabled` and a channel.

use serde::Deserialize;
use townes_sdk::{
    Capability, CapabilityRequest, Command, CommandInvocation, Context, Embed, Error, Event,
    EventKind, Feature, GuildInfo, Manifest, Member, Reply, Snowflake, User, config, json, limits,
    log, members, messages, roles, snowflake, template,
};

/// The feature.
pub struct Welcome;

/// The default channel message.
pub const DEFAULT_MESSAGE: &str =
    "Welcome {user.mention} to {server.name}! You are member #{server.memberCount}.";
/// The default DM.
pub const DEFAULT_DM_MESSAGE: &str =
    "Welcome to {server.name}, {user}! Have a look around and say hi.";
/// The default goodbye.
pub const DEFAULT_LEAVE_MESSAGE: &str = "{user.name} left {server.name}.";

/// What `{server.name}` renders as when the guild cannot be read.
pub const UNKNOWN_SERVER_NAME: &str = "this server";
/// What `{server.memberCount}` renders as when the guild cannot be read.
pub const UNKNOWN_MEMBER_COUNT: &str = "?";

/// The guild's configuration (see the schema in [`Welcome::describe`]). Ids are
/// read from integers or decimal strings (what dashboards send).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Where new members are welcomed; no channel message when unset.
    #[serde(deserialize_with = "snowflake::de_opt")]
    pub channel: Option<Snowflake>,
    /// The channel message template.
    pub message: String,
    /// The direct message to the new member.
    pub dm: DmConfig,
    /// Roles given to every new member.
    #[serde(deserialize_with = "snowflake::de_vec")]
    pub auto_roles: Vec<Snowflake>,
    /// The goodbye message.
    pub leave: LeaveConfig,
    /// Bots joining or leaving get no message, DM or role.
    pub ignore_bots: bool,
}

/// `dm` in [`Config`].
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct DmConfig {
    /// Whether to DM new members.
    pub enabled: bool,
    /// The DM template.
    pub message: String,
}

/// `leave` in [`Config`].
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct LeaveConfig {
    /// Whether to post a goodbye.
    pub enabled: bool,
    /// Where; `None` means the welcome `channel`.
    #[serde(deserialize_with = "snowflake::de_opt")]
    pub channel: Option<Snowflake>,
    /// The goodbye template.
    pub message: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            channel: None,
            message: DEFAULT_MESSAGE.into(),
            dm: DmConfig::default(),
            auto_roles: Vec::new(),
            leave: LeaveConfig::default(),
            ignore_bots: true,
        }
    }
}

impl Default for DmConfig {
    fn default() -> Self {
        DmConfig {
            enabled: false,
            message: DEFAULT_DM_MESSAGE.into(),
        }
    }
}

impl Default for LeaveConfig {
    fn default() -> Self {
        LeaveConfig {
            enabled: false,
            channel: None,
            message: DEFAULT_LEAVE_MESSAGE.into(),
        }
    }
}

impl Config {
    /// Where goodbyes go: `leave.channel`, else `channel`.
    pub fn leave_channel(&self) -> Option<Snowflake> {
        self.leave.channel.or(self.channel)
    }
}

fn config_schema() -> townes_sdk::serde_json::Value {
    let nullable_snowflake = snowflake::nullable_schema();
    let template = json!({"type": "string", "minLength": 1, "maxLength": limits::CONTENT});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "channel": nullable_snowflake,
            "message": template,
            "dm": {
                "type": "object",
                "properties": {
                    "enabled": {"type": "boolean"},
                    "message": template
                },
                "additionalProperties": false
            },
            "auto_roles": {"type": "array", "items": snowflake::schema(), "maxItems": 10, "uniqueItems": true},
            "leave": {
                "type": "object",
                "properties": {
                    "enabled": {"type": "boolean"},
                    "channel": nullable_snowflake,
                    "message": template
                },
                "additionalProperties": false
            },
            "ignore_bots": {"type": "boolean"}
        },
        "additionalProperties": false
    })
}

fn default_config() -> townes_sdk::serde_json::Value {
    json!({
        "channel": null,
        "message": DEFAULT_MESSAGE,
        "dm": {"enabled": false, "message": DEFAULT_DM_MESSAGE},
        "auto_roles": [],
        "leave": {"enabled": false, "channel": null, "message": DEFAULT_LEAVE_MESSAGE},
        "ignore_bots": true
    })
}

// ------------------------------------------------------------------ templates

/// The values placeholders render to.
#[derive(Clone, Copy, Debug)]
pub struct Vars<'a> {
    /// The member (or former member) the message is about.
    pub user: &'a User,
    /// `{user}`: the nickname, else global name, else username.
    pub display_name: &'a str,
    /// The guild, when it could be read.
    pub guild: Option<&'a GuildInfo>,
}

/// Whether `template` uses a `{server.*}` placeholder (and so needs the guild).
pub fn uses_server(template: &str) -> bool {
    template.contains("{server.name}") || template.contains("{server.memberCount}")
}

/// Renders `template` with `vars`, in one pass: placeholder values are never
/// themselves expanded (a user named `{server.name}` stays that). Unknown
/// placeholders and unmatched braces are kept as they are. The result is cut to
/// Discord's content limit.
pub fn render(template: &str, vars: &Vars) -> String {
    template::render(template, |key| {
        Some(match key {
            "user" => vars.display_name.to_string(),
            "user.mention" => vars.user.mention(),
            "user.name" => vars.user.username.clone(),
            "server.name" => vars
                .guild
                .map_or_else(|| UNKNOWN_SERVER_NAME.to_string(), |g| g.name.clone()),
            "server.memberCount" => vars.guild.map_or_else(
                || UNKNOWN_MEMBER_COUNT.to_string(),
                |g| g.member_count.to_string(),
            ),
            _ => return None,
        })
    })
}

/// The guild info, fetched at most once per invocation and only when a
/// template needs it.
#[derive(Default)]
struct LazyGuild {
    fetched: bool,
    info: Option<GuildInfo>,
}

impl LazyGuild {
    fn get(&mut self) -> Option<&GuildInfo> {
        if !self.fetched {
            self.fetched = true;
            match members::guild() {
                Ok(info) => self.info = Some(info),
                Err(e) => log::warn(format!(
                    "welcome: cannot read the server for {{server.*}} placeholders: {e:?}"
                )),
            }
        }
        self.info.as_ref()
    }

    fn render(&mut self, template: &str, user: &User, display_name: &str) -> String {
        let guild = if uses_server(template) {
            self.get()
        } else {
            None
        };
        render(
            template,
            &Vars {
                user,
                display_name,
                guild,
            },
        )
    }
}

// -------------------------------------------------------------------- handlers

fn load_config() -> Result<Config, Error> {
    config::get_json()
}

/// Tallies the side effects of one event.
#[derive(Default)]
struct Outcome {
    done: u32,
    messages_denied: bool,
}

impl Outcome {
    fn record<T>(&mut self, what: &str, result: Result<T, Error>) {
        match result {
            Ok(_) => self.done += 1,
            Err(e) => {
                if e == Error::Denied(Capability::Messages) {
                    self.messages_denied = true;
                }
                log::warn(format!("welcome: {what} failed: {e:?}"));
            }
        }
    }

    /// Ok unless nothing was done because `messages` is denied.
    fn finish(self) -> Result<(), Error> {
        if self.messages_denied && self.done == 0 {
            Err(Error::Denied(Capability::Messages))
        } else {
            Ok(())
        }
    }
}

fn member_joined(member: Member) -> Result<(), Error> {
    let config = load_config()?;
    if config.ignore_bots && member.user.bot {
        return Ok(());
    }
    let user = &member.user;
    let name = member.display_name();
    let mut guild = LazyGuild::default();
    let mut outcome = Outcome::default();

    if let Some(channel) = config.channel {
        let text = guild.render(&config.message, user, name);
        outcome.record("the welcome message", messages::send(channel, text));
    }
    if config.dm.enabled {
        let text = guild.render(&config.dm.message, user, name);
        outcome.record(
            &format!("the welcome DM to {}", user.id),
            members::send_dm(user.id, text),
        );
    }
    for &role in &config.auto_roles {
        outcome.record(
            &format!("auto-role {role} for {}", user.id),
            roles::add(user.id, role, Some("welcome: auto-role")),
        );
    }
    outcome.finish()
}

fn member_left(user: User) -> Result<(), Error> {
    let config = load_config()?;
    if !config.leave.enabled || (config.ignore_bots && user.bot) {
        return Ok(());
    }
    let Some(channel) = config.leave_channel() else {
        return Ok(());
    };
    let mut guild = LazyGuild::default();
    let text = guild.render(&config.leave.message, &user, user.display_name());
    let mut outcome = Outcome::default();
    outcome.record("the leave message", messages::send(channel, text));
    outcome.finish()
}

/// `/welcome-test`: the welcome message as the invoker would get it, plus a
/// summary of the other settings, ephemerally.
fn welcome_test(invocation: &CommandInvocation) -> Result<Reply, Error> {
    let config = load_config()?;
    let member = &invocation.invoker;
    let mut guild = LazyGuild::default();
    let text = guild.render(&config.message, &member.user, member.display_name());

    let channel = match config.channel {
        Some(c) => format!("<#{c}>"),
        None => "not set — nothing is posted until you set one".into(),
    };
    let dm = if config.dm.enabled {
        let dm = guild.render(&config.dm.message, &member.user, member.display_name());
        template::truncate(dm, limits::EMBED_FIELD_VALUE)
    } else {
        "off".into()
    };
    let auto_roles = if config.auto_roles.is_empty() {
        "none".into()
    } else {
        let list: Vec<String> = config
            .auto_roles
            .iter()
            .map(|r| format!("<@&{r}>"))
            .collect();
        list.join(" ")
    };
    let leave = match (config.leave.enabled, config.leave_channel()) {
        (false, _) => "off".to_string(),
        (true, None) => "on, but no channel is set".to_string(),
        (true, Some(c)) => format!("on, in <#{c}>"),
    };
    let summary = Embed::new()
        .title("Welcome settings")
        .field("Channel", channel, true)
        .field("Auto-roles", auto_roles, true)
        .field("Leave message", leave, true)
        .field("DM", dm, false)
        .footer("Preview: only you can see this.");
    Ok(Reply::text(text).with_embed(summary).ephemeral())
}

impl Feature for Welcome {
    fn describe() -> Manifest {
        Manifest::new("welcome", "0.1.0")
            .name("Welcome")
            .description(
                "Welcomes new members with a message in a channel, an optional DM and \
                 optional auto-roles, and can say goodbye when members leave. Templates: \
                 {user}, {user.mention}, {user.name}, {server.name}, {server.memberCount}.",
            )
            .command(
                Command::slash(
                    "welcome-test",
                    "Preview the welcome message as a new member would see it",
                )
                .admin_only(),
            )
            .event(EventKind::MemberJoined)
            .event(EventKind::MemberLeft)
            .capability(CapabilityRequest::required(
                Capability::Messages,
                "post welcome and leave messages in the configured channels",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Members,
                "read the server's name and member count for {server.*} placeholders, \
                 and DM new members when enabled",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Roles,
                "give new members the configured auto-roles",
            ))
            .config(config_schema(), default_config())
    }

    fn on_event(_ctx: &Context, event: Event) -> Result<(), Error> {
        match event {
            Event::MemberJoined(member) => member_joined(member),
            Event::MemberLeft(user) => member_left(user),
            _ => Ok(()),
        }
    }

    fn on_command(_ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        match invocation.name.as_str() {
            "welcome-test" => welcome_test(&invocation),
            _ => Err(Error::invalid("unknown command")),
        }
    }
}

townes_sdk::export_feature!(Welcome);

#[cfg(test)]
mod tests;
