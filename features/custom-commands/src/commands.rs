//! Running custom commands: typed with the prefix (seen through the
//! `message-created` event), with the fixed `/cc name [args]` slash command,
//! or as their own `/name [args]` slash command, registered in the guild.
//!
//! Every refusal is answered: a disabled command, a missing role or a
//! cooldown gets a short reply saying why (ephemeral for slash commands).

use crate::store::{self, CustomCommand};
use crate::variables::{Invoker, Vars};
use crate::{Config, menus, tags};
use townes_sdk::{
    Command, CommandInvocation, CommandOption, Context, Error, Message, MessageBody, Reply,
    Snowflake, messages,
};

/// Names a custom command may not take: the feature's own prefix commands.
pub const RESERVED: &[&str] = &["tags"];
/// The longest name.
pub const MAX_NAME: usize = 32;

/// `a-z 0-9 - _`, 1-32 characters.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// `(name, args)` of a message that starts with `prefix` directly followed by
/// a possible command name (case aside): `!FAQ  a b` is `("faq", ["a", "b"])`.
pub fn parse_prefixed(content: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = content.trim_start().strip_prefix(prefix)?;
    if rest.starts_with(char::is_whitespace) {
        return None;
    }
    let mut words = rest.split_whitespace();
    let name = words.next()?.to_lowercase();
    valid_name(&name).then(|| (name, words.map(String::from).collect()))
}

/// What running a command comes to.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// The command's message.
    Message(MessageBody),
    /// Why the member may not run it now.
    Refused(String),
}

/// `12s`, `4m 10s`, `2h 5m`.
pub fn human_seconds(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

fn role_mentions(roles: &[Snowflake]) -> String {
    roles
        .iter()
        .map(|r| format!("<@&{r}>"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why `invoker` may not use `command` at all (disabled, missing role), or
/// `None` when they may. `shown` is how they typed it (`!faq`, `/cc faq`).
pub fn refusal(command: &CustomCommand, invoker: &mut Invoker, shown: &str) -> Option<String> {
    if !command.enabled {
        return Some(format!("`{shown}` is turned off right now."));
    }
    if command.required_roles.is_empty() {
        return None;
    }
    match invoker.resolve() {
        Ok(member) if command.required_roles.iter().any(|&r| member.has_role(r)) => None,
        Ok(_) | Err(Error::NotFound(_)) => Some(format!(
            "You need one of these roles to use `{shown}`: {}.",
            role_mentions(&command.required_roles)
        )),
        Err(Error::Denied(_)) => Some(format!(
            "`{shown}` is for some roles only, and I can't check yours: this server has not \
             granted me `members`."
        )),
        Err(_) => Some("I couldn't check your roles just now; please try again.".into()),
    }
}

/// Runs `command` for `vars.invoker`: the checks, then the message (page 1
/// of a menu), then the cooldown, which only a use that answers starts.
pub fn run(command: &CustomCommand, vars: &mut Vars, shown: &str) -> Result<Answer, Error> {
    if let Some(why) = refusal(command, &mut vars.invoker, shown) {
        return Ok(Answer::Refused(why));
    }
    let body = match (&command.response, command.menu_pages.is_empty()) {
        (_, false) => menus::page_body(command, 1, vars),
        (Some(response), true) => vars.body(response),
        (None, true) => return Ok(Answer::Refused(format!("`{shown}` has no response set."))),
    };
    if let Err(e) = body.validate() {
        return Ok(Answer::Refused(format!(
            "`{shown}` has nothing it can send with these arguments ({}).",
            error_text(&e)
        )));
    }
    if command.cooldown_seconds > 0
        && let Some(left) = store::take_cooldown(
            &command.name,
            vars.invoker.user.id,
            command.cooldown_seconds,
            store::now(),
        )?
    {
        return Ok(Answer::Refused(format!(
            "`{shown}` is on cooldown for you: try again in {}.",
            human_seconds(left)
        )));
    }
    Ok(Answer::Message(body))
}

fn error_text(e: &Error) -> String {
    match e {
        Error::InvalidArgument(s)
        | Error::NotFound(s)
        | Error::Unavailable(s)
        | Error::QuotaExceeded(s) => s.clone(),
        Error::Denied(c) => format!("{} is not granted", c.as_str()),
    }
}

/// A message in the guild: a prefix command of ours gets its answer (or the
/// reason it is refused) in the channel. Returns whether it was one, so the
/// auto-responders leave it alone.
pub fn on_message(ctx: &Context, message: &Message, config: &Config) -> Result<bool, Error> {
    let Some((name, args)) = parse_prefixed(&message.content, &config.prefix) else {
        return Ok(false);
    };
    if name == "tags" {
        let body = tags::list(args.first().map(String::as_str), &config.prefix)?;
        messages::send(message.channel_id, body)?;
        return Ok(true);
    }
    let Some(command) = store::load_command(&name)? else {
        // Not ours: maybe another bot's command. Stay quiet.
        return Ok(false);
    };
    let shown = format!("{}{name}", config.prefix);
    let invoker = Invoker::user(message.author.clone());
    let mut vars = Vars::new(invoker, ctx.guild_id, message.channel_id, args);
    let body = match run(&command, &mut vars, &shown)? {
        Answer::Message(body) => body,
        Answer::Refused(why) => MessageBody::text(format!("{} {why}", vars.invoker.user.mention())),
    };
    messages::send(message.channel_id, body)?;
    Ok(true)
}

/// How a slash command names the custom command it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Slash {
    /// `/cc name [args]`: any command.
    Cc,
    /// `/tag name`: only a tag.
    Tag,
    /// `/name [args]`: the command's own slash command ([`slash_commands`]).
    Own,
}

/// `/cc name [args]`, `/tag name` and `/name [args]`: the named command for
/// the member who asked. Refusals are ephemeral.
pub fn on_slash(
    ctx: &Context,
    invocation: CommandInvocation,
    slash: Slash,
) -> Result<Reply, Error> {
    let name = match slash {
        Slash::Own => invocation.name.clone(),
        Slash::Cc | Slash::Tag => invocation
            .text_arg("name")
            .unwrap_or("")
            .trim()
            .trim_start_matches('!')
            .to_lowercase(),
    };
    let args: Vec<String> = invocation
        .text_arg("args")
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect();
    let command = if valid_name(&name) {
        store::load_command(&name)?
    } else {
        None
    };
    let command = match command {
        Some(c) if c.is_tag || slash != Slash::Tag => c,
        _ => {
            let what = if slash == Slash::Tag {
                "tag"
            } else {
                "custom command"
            };
            return Ok(Reply::text(format!(
                "There is no {what} named `{name}`. `/tags` lists the tags."
            ))
            .ephemeral());
        }
    };
    let shown = match slash {
        Slash::Cc => format!("/cc {name}"),
        Slash::Tag => format!("/tag {name}"),
        Slash::Own => format!("/{name}"),
    };
    let invoker = Invoker::member(invocation.invoker);
    let mut vars = Vars::new(invoker, ctx.guild_id, invocation.channel_id, args);
    Ok(match run(&command, &mut vars, &shown)? {
        Answer::Message(body) => Reply::from(body),
        Answer::Refused(why) => Reply::text(why).ephemeral(),
    })
}

/// The feature's own slash commands, which a custom command cannot shadow.
const OWN_SLASH: &[&str] = &["cc", "tag", "tags"];

/// Slash commands the guild's custom commands get of their own (contract
/// 0.1.3 `guild-commands`): `/name [args]` for each enabled command that is
/// not a tag, in name order, at most [`MAX_SLASH`] (the rest stay reachable
/// through `/cc` and the prefix). Prefix forms come through messages, so
/// these are slash only.
pub fn slash_commands() -> Result<Vec<Command>, Error> {
    Ok(store::commands()?
        .into_iter()
        .filter(|c| c.enabled && !c.is_tag && !OWN_SLASH.contains(&c.name.as_str()))
        .take(MAX_SLASH)
        .map(|c| {
            let description = match c.description.trim() {
                "" => "A custom command of this server".to_string(),
                text => text.chars().take(100).collect(),
            };
            Command::slash(c.name, description).option(CommandOption::text(
                "args",
                "What the command's {args} and {arg1}… stand for",
            ))
        })
        .collect())
}

/// Custom commands that become slash commands of their own at most (the
/// host allows a feature 50).
pub const MAX_SLASH: usize = 50;
