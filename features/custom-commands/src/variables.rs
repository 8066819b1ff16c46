//! `{placeholders}` in responses, and turning a [`Response`] into a message.
//!
//! | variable | becomes |
//! |---|---|
//! | `{user}` | the member's display name (nickname, else global name, else username) |
//! | `{user.mention}` | `<@id>` |
//! | `{user.name}` | the username |
//! | `{user.id}` | the user id |
//! | `{server.name}` | the server's name (needs `members`) |
//! | `{server.memberCount}` | its member count (needs `members`) |
//! | `{server.id}` | its id |
//! | `{channel}` | the channel's **id** — features are not told channel names |
//! | `{channel.mention}` | `<#id>`, which Discord shows as `#name` |
//! | `{args}` | everything after the command's name |
//! | `{arg1}` … `{arg9}` | the words after it, one by one (empty when missing) |
//!
//! Unknown placeholders stay as written, as do the `server` ones where
//! `members` is not granted. Values are never expanded again: a member named
//! `{server.name}` stays that.

use crate::store::{EmbedSpec, Response};
use townes_sdk::{
    Embed, Error, GuildInfo, Member, MessageBody, Snowflake, User, limits, members, template,
};

/// Who invoked, with their guild membership looked up at most once, and only
/// when needed (a message event carries the user, not the member).
pub struct Invoker {
    pub user: User,
    member: Option<Result<Member, Error>>,
}

impl Invoker {
    /// A member the host described (slash commands, buttons).
    pub fn member(member: Member) -> Self {
        Invoker {
            user: member.user.clone(),
            member: Some(Ok(member)),
        }
    }

    /// The author of a message; `members::get` is asked when needed.
    pub fn user(user: User) -> Self {
        Invoker { user, member: None }
    }

    /// The member, or why it is not known (`Denied(Members)` without the grant).
    pub fn resolve(&mut self) -> Result<&Member, &Error> {
        let id = self.user.id;
        self.member.get_or_insert_with(|| members::get(id)).as_ref()
    }

    /// What Discord shows for them: the nickname when it can be known.
    pub fn display_name(&mut self) -> String {
        let fallback = self.user.display_name().to_string();
        self.resolve()
            .map_or(fallback, |m| m.display_name().to_string())
    }
}

/// What the variables of one invocation stand for.
pub struct Vars {
    pub invoker: Invoker,
    pub guild_id: Snowflake,
    pub channel_id: Snowflake,
    pub args: Vec<String>,
    guild: Option<Option<GuildInfo>>,
}

impl Vars {
    pub fn new(
        invoker: Invoker,
        guild_id: Snowflake,
        channel_id: Snowflake,
        args: Vec<String>,
    ) -> Self {
        Vars {
            invoker,
            guild_id,
            channel_id,
            args,
            guild: None,
        }
    }

    fn guild(&mut self) -> Option<&GuildInfo> {
        self.guild
            .get_or_insert_with(|| members::guild().ok())
            .as_ref()
    }

    /// The value of one placeholder, `None` when it is not one of ours.
    pub fn value(&mut self, name: &str) -> Option<String> {
        Some(match name {
            "user" => self.invoker.display_name(),
            "user.mention" => format!("<@{}>", self.invoker.user.id),
            "user.name" => self.invoker.user.username.clone(),
            "user.id" => self.invoker.user.id.to_string(),
            "server.name" => self.guild()?.name.clone(),
            "server.memberCount" => self.guild()?.member_count.to_string(),
            "server.id" => self.guild_id.to_string(),
            "channel" => self.channel_id.to_string(),
            "channel.mention" => format!("<#{}>", self.channel_id),
            "args" => self.args.join(" "),
            _ => {
                let n = name.strip_prefix("arg")?;
                let n: usize = (n.len() == 1).then(|| n.parse().ok()).flatten()?;
                if n == 0 {
                    return None;
                }
                self.args.get(n - 1).cloned().unwrap_or_default()
            }
        })
    }

    /// `text` with the variables filled in and cut to `max` characters.
    pub fn render(&mut self, text: &str, max: usize) -> String {
        let out = template::render(text, |name| self.value(name));
        template::truncate(out, max)
    }

    /// The message a response makes, variables filled in, each text cut to
    /// Discord's limit.
    pub fn body(&mut self, response: &Response) -> MessageBody {
        build(response, &mut |text, max| self.render(text, max))
    }
}

/// The message a response makes as written, placeholders and all, nothing
/// cut: what is checked against Discord's limits when it is saved.
pub fn raw_body(response: &Response) -> MessageBody {
    build(response, &mut |text, _| text.to_string())
}

fn build(response: &Response, render: &mut dyn FnMut(&str, usize) -> String) -> MessageBody {
    match response {
        Response::Text { content } => MessageBody::text(render(content, limits::CONTENT)),
        Response::Embed(spec) => MessageBody::embed(embed(spec, render)),
    }
}

fn embed(spec: &EmbedSpec, render: &mut dyn FnMut(&str, usize) -> String) -> Embed {
    let mut embed = Embed::new();
    embed.title = spec
        .title
        .as_deref()
        .map(|t| render(t, limits::EMBED_TITLE));
    embed.description = spec
        .description
        .as_deref()
        .map(|t| render(t, limits::EMBED_DESCRIPTION));
    embed.footer = spec
        .footer
        .as_deref()
        .map(|t| render(t, limits::EMBED_FOOTER));
    embed.url = spec.url.clone();
    embed.color = spec.color;
    embed.thumbnail_url = spec.thumbnail_url.clone();
    embed.image_url = spec.image_url.clone();
    for field in &spec.fields {
        // Discord refuses an empty field: `{arg1}` with no argument becomes
        // a zero-width space.
        let blank = |s: String| {
            if s.trim().is_empty() {
                "\u{200B}".to_string()
            } else {
                s
            }
        };
        let name = blank(render(&field.name, limits::EMBED_FIELD_NAME));
        let value = blank(render(&field.value, limits::EMBED_FIELD_VALUE));
        embed = embed.field(name, value, field.inline);
    }
    embed
}
