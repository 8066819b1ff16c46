//! Templates: checking one against Discord's limits, turning it into a
//! message (rendering its variables), sending it, `/send-template`, and the
//! slash command a template may have of its own.

use crate::components;
use crate::store::{self, SentMessage, Style, Template, TemplateButton};
use crate::{Config, audit_entry, say};
use townes_sdk::{
    ActionRow, Button, ButtonStyle, Capability, Command, CommandInvocation, Context, Embed,
    EmbedField, Error, GuildInfo, MessageBody, Reply, SelectMenu, SelectOption, Snowflake, limits,
    members, messages, template,
};

/// Characters of a template's name.
pub const MAX_NAME: usize = 100;
/// Characters of a slug.
pub const MAX_SLUG: usize = 32;
/// Characters of a button label (Discord's limit).
pub const MAX_LABEL: usize = 80;
/// Buttons of a template without a menu (5 rows of 5).
pub const MAX_BUTTONS: usize = limits::ACTION_ROWS * limits::BUTTONS_PER_ROW;
/// Options of a select menu, and the most it may choose (Discord's limits).
pub const MAX_MENU_OPTIONS: usize = 25;
/// Characters of a menu option's label and description (Discord's limits).
pub const MAX_OPTION_TEXT: usize = 100;
/// Characters of a menu's placeholder (Discord's limit).
pub const MAX_PLACEHOLDER: usize = 150;
/// Characters of an embed description: the SDK's `template::render` cuts
/// what it renders at the 2000-character content limit.
pub const MAX_EMBED_DESCRIPTION: usize = limits::CONTENT;
/// Characters of a URL.
pub const MAX_URL: usize = 2048;
/// What `{server.name}` reads when the guild cannot be read.
pub const UNKNOWN_SERVER_NAME: &str = "this server";
/// What `{server.memberCount}` reads when the guild cannot be read.
pub const UNKNOWN_MEMBER_COUNT: &str = "?";

// ------------------------------------------------------------- validation

/// Whether `id` is a slug: 1-32 of `a-z 0-9 -`.
pub fn is_slug(id: &str) -> bool {
    (1..=MAX_SLUG).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub fn check_slug(id: &str) -> Result<(), Error> {
    if is_slug(id) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "template id `{id}`: use 1-{MAX_SLUG} lower-case letters, digits and dashes, e.g. `rules` or `role-menu`"
    )))
}

fn check_chars(what: &str, text: &str, min: usize, max: usize) -> Result<(), Error> {
    let n = text.chars().count();
    if n < min || n > max {
        let allowed = if min == 0 {
            format!("at most {max}")
        } else {
            format!("{min} to {max}")
        };
        return Err(Error::invalid(format!(
            "{what} is {n} characters; {allowed} allowed"
        )));
    }
    Ok(())
}

/// `url` must be https (Discord shows images and links only from the web, and
/// the platform sends nobody to plain http).
pub fn check_https(what: &str, url: &str) -> Result<(), Error> {
    let host = url.strip_prefix("https://").unwrap_or("");
    if host.is_empty() || host.starts_with('/') || url.chars().any(char::is_whitespace) {
        return Err(Error::invalid(format!(
            "{what} `{url}` is not an https URL; use one like `https://example.com/page`"
        )));
    }
    check_chars(what, url, 1, MAX_URL)
}

fn check_emoji(what: &str, emoji: &Option<String>) -> Result<(), Error> {
    if let Some(emoji) = emoji {
        limits::check_emoji(emoji).map_err(|e| Error::invalid(format!("{what}: {e}")))?;
    }
    Ok(())
}

/// Checks `t` for guild `guild_id` and tidies it (trims the name, fills in
/// the menu's `max_values`). Every refusal says what would work.
pub fn validate(guild_id: Snowflake, config: &Config, t: &mut Template) -> Result<(), Error> {
    check_slug(&t.id)?;
    if let Some(command) = &t.command {
        check_command_name(command)?;
    }
    t.name = t.name.trim().to_string();
    check_chars("the name", &t.name, 1, MAX_NAME)?;
    if let Some(embed) = &t.embed {
        if let Some(d) = &embed.description {
            check_chars("the embed description", d, 0, MAX_EMBED_DESCRIPTION)?;
        }
        for (what, url) in [
            ("the embed's url", &embed.url),
            ("the embed's thumbnail_url", &embed.thumbnail_url),
            ("the embed's image_url", &embed.image_url),
        ] {
            if let Some(url) = url {
                check_https(what, url)?;
            }
        }
        if embed.color.is_some_and(|c| c > 0xFF_FFFF) {
            return Err(Error::invalid(
                "the embed's color is 0xRRGGBB: at most 16777215",
            ));
        }
        let empty = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        if empty(&embed.title)
            && empty(&embed.description)
            && empty(&embed.footer)
            && embed.fields.is_empty()
            && embed.image_url.is_none()
            && embed.thumbnail_url.is_none()
        {
            return Err(Error::invalid(
                "the embed is empty; give it a title, a description, a field, a footer or an image, or leave it out",
            ));
        }
        for field in &embed.fields {
            if field.name.trim().is_empty() || field.value.trim().is_empty() {
                return Err(Error::invalid(
                    "an embed field needs both a name and a value",
                ));
            }
        }
    }
    let max_buttons = if t.select.is_some() {
        MAX_BUTTONS - limits::BUTTONS_PER_ROW
    } else {
        MAX_BUTTONS
    };
    if t.buttons.len() > max_buttons {
        return Err(Error::invalid(format!(
            "{} buttons: a message holds at most {max_buttons} (five rows of five{})",
            t.buttons.len(),
            if t.select.is_some() {
                ", one row going to the menu"
            } else {
                ""
            }
        )));
    }
    let mut button_roles = Vec::new();
    for (i, button) in t.buttons.iter().enumerate() {
        let what = format!("button {}", i + 1);
        match button {
            TemplateButton::Link { label, url, emoji } => {
                check_chars(&format!("{what}'s label"), label, 1, MAX_LABEL)?;
                check_https(&format!("{what}'s url"), url)?;
                check_emoji(&what, emoji)?;
            }
            TemplateButton::Role {
                label,
                role_id,
                emoji,
                ..
            } => {
                check_chars(&format!("{what}'s label"), label, 1, MAX_LABEL)?;
                check_emoji(&what, emoji)?;
                config.check_role(guild_id, *role_id)?;
                if button_roles.contains(role_id) {
                    return Err(Error::invalid(format!(
                        "{what} repeats role {role_id}; each role gets one button"
                    )));
                }
                button_roles.push(*role_id);
            }
        }
    }
    if let Some(menu) = &mut t.select {
        let n = menu.options.len();
        if !(1..=MAX_MENU_OPTIONS).contains(&n) {
            return Err(Error::invalid(format!(
                "the menu has {n} options; give it 1 to {MAX_MENU_OPTIONS}"
            )));
        }
        if let Some(p) = &menu.placeholder {
            check_chars("the menu's placeholder", p, 0, MAX_PLACEHOLDER)?;
        }
        let mut roles = Vec::new();
        for (i, option) in menu.options.iter().enumerate() {
            let what = format!("menu option {}", i + 1);
            check_chars(
                &format!("{what}'s label"),
                &option.label,
                1,
                MAX_OPTION_TEXT,
            )?;
            if let Some(d) = &option.description {
                check_chars(&format!("{what}'s description"), d, 0, MAX_OPTION_TEXT)?;
            }
            config.check_role(guild_id, option.role_id)?;
            if roles.contains(&option.role_id) {
                return Err(Error::invalid(format!(
                    "{what} repeats role {}; each role is offered once",
                    option.role_id
                )));
            }
            roles.push(option.role_id);
        }
        let max = menu.max_values.unwrap_or(n as u8);
        if max == 0 || usize::from(max) > n || menu.min_values > max {
            return Err(Error::invalid(format!(
                "the menu chooses {} to {max} of {n} options; max_values must be 1 to {n} and at least min_values",
                menu.min_values
            )));
        }
        menu.max_values = Some(max);
    }
    // What the host will check when it is sent, on the text as written
    // (rendering cuts every part to its limit).
    body(t, None).validate()
}

// -------------------------------------------------------------- rendering

/// What the variables stand for in one send.
#[derive(Clone, Debug)]
pub struct Vars {
    pub guild_id: Snowflake,
    /// The guild, when it could be read.
    pub guild: Option<GuildInfo>,
    pub channel_id: Snowflake,
}

impl Vars {
    /// The variables for sending `t` to `channel_id`: reads the guild only
    /// when a `{server.name}` or `{server.memberCount}` needs it, and copes
    /// without `members`.
    pub fn for_send(ctx: &Context, t: &Template, channel_id: Snowflake) -> Result<Vars, Error> {
        let guild = if texts(t)
            .iter()
            .any(|s| s.contains("{server.name}") || s.contains("{server.memberCount}"))
        {
            match members::guild() {
                Ok(guild) => Some(guild),
                Err(Error::Denied(Capability::Members)) | Err(Error::Unavailable(_)) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        Ok(Vars {
            guild_id: ctx.guild_id,
            guild,
            channel_id,
        })
    }
}

/// Every text of `t` that variables are rendered in.
fn texts(t: &Template) -> Vec<&str> {
    let mut out = vec![t.content.as_str()];
    if let Some(e) = &t.embed {
        out.extend(
            [&e.title, &e.description, &e.footer]
                .into_iter()
                .flatten()
                .map(String::as_str),
        );
        for f in &e.fields {
            out.push(&f.name);
            out.push(&f.value);
        }
    }
    out
}

/// `@everyone` and `@here` with a zero-width space after the `@`.
fn defuse(text: &str) -> String {
    text.replace("@everyone", "@\u{200b}everyone")
        .replace("@here", "@\u{200b}here")
}

/// Renders `text` in one pass and cuts it to `max` characters; `None`:
/// leaves it as written.
pub fn render(text: &str, vars: Option<&Vars>, max: usize) -> String {
    let Some(vars) = vars else {
        return text.to_string();
    };
    let out = template::render(text, |key| {
        Some(match key {
            "server.name" => defuse(
                vars.guild
                    .as_ref()
                    .map_or(UNKNOWN_SERVER_NAME, |g| g.name.as_str()),
            ),
            "server.memberCount" => vars.guild.as_ref().map_or_else(
                || UNKNOWN_MEMBER_COUNT.into(),
                |g| g.member_count.to_string(),
            ),
            "server.id" => vars.guild_id.to_string(),
            "channel" => format!("<#{}>", vars.channel_id),
            "channel.id" => vars.channel_id.to_string(),
            _ => return None,
        })
    });
    template::truncate(out, max)
}

fn style(style: Style) -> ButtonStyle {
    match style {
        Style::Primary => ButtonStyle::Primary,
        Style::Secondary => ButtonStyle::Secondary,
        Style::Success => ButtonStyle::Success,
        Style::Danger => ButtonStyle::Danger,
    }
}

/// The message `t` makes; with `vars`, its variables rendered.
pub fn body(t: &Template, vars: Option<&Vars>) -> MessageBody {
    let r = |text: &str, max: usize| render(text, vars, max);
    let content = r(&t.content, limits::CONTENT);
    let mut body = MessageBody {
        content: (!content.is_empty()).then_some(content),
        ..MessageBody::default()
    };
    if let Some(e) = &t.embed {
        body.embeds.push(Embed {
            title: e.title.as_deref().map(|s| r(s, limits::EMBED_TITLE)),
            description: e
                .description
                .as_deref()
                .map(|s| r(s, MAX_EMBED_DESCRIPTION)),
            url: e.url.clone(),
            color: e.color,
            fields: e
                .fields
                .iter()
                .map(|f| EmbedField {
                    name: r(&f.name, limits::EMBED_FIELD_NAME),
                    value: r(&f.value, limits::EMBED_FIELD_VALUE),
                    inline: f.inline,
                })
                .collect(),
            footer: e.footer.as_deref().map(|s| r(s, limits::EMBED_FOOTER)),
            thumbnail_url: e.thumbnail_url.clone(),
            image_url: e.image_url.clone(),
        });
    }
    for chunk in t.buttons.chunks(limits::BUTTONS_PER_ROW) {
        let mut row = ActionRow::new();
        for button in chunk {
            let (mut b, emoji) = match button {
                TemplateButton::Link { label, url, emoji } => {
                    (Button::link(url.clone(), label.clone()), emoji)
                }
                TemplateButton::Role {
                    label,
                    role_id,
                    style: s,
                    emoji,
                } => {
                    let mut b =
                        Button::primary(components::role_button_id(*role_id), label.clone());
                    b.style = style(*s);
                    (b, emoji)
                }
            };
            b.emoji = emoji.clone();
            row = row.button(b);
        }
        body.components.push(row);
    }
    if let Some(menu) = &t.select {
        let n = menu.options.len() as u8;
        body.components.push(
            ActionRow::new().select(SelectMenu {
                custom_id: components::menu_id(&t.id),
                placeholder: menu.placeholder.clone(),
                options: menu
                    .options
                    .iter()
                    .map(|o| SelectOption {
                        label: o.label.clone(),
                        value: o.role_id.to_string(),
                        description: o.description.clone(),
                        default: false,
                    })
                    .collect(),
                min_values: menu.min_values,
                max_values: menu.max_values.unwrap_or(n).min(n),
            }),
        );
    }
    body
}

// ----------------------------------------------------------------- sending

/// The roles `t`'s buttons and menu offer.
pub fn offered_roles(t: &Template) -> (Vec<Snowflake>, Vec<Snowflake>) {
    let buttons = t
        .buttons
        .iter()
        .filter_map(|b| match b {
            TemplateButton::Role { role_id, .. } => Some(*role_id),
            TemplateButton::Link { .. } => None,
        })
        .collect();
    let menu = t
        .select
        .iter()
        .flat_map(|m| m.options.iter().map(|o| o.role_id))
        .collect();
    (buttons, menu)
}

/// Renders and posts template `t` in `channel_id`; remembers the message
/// when it offers roles. Returns the message id.
pub fn send(ctx: &Context, t: &Template, channel_id: Snowflake) -> Result<Snowflake, Error> {
    let vars = Vars::for_send(ctx, t, channel_id)?;
    let message_id = messages::send(channel_id, body(t, Some(&vars)))?;
    let (button_roles, menu_roles) = offered_roles(t);
    if !button_roles.is_empty() || !menu_roles.is_empty() {
        let sent = SentMessage {
            template_id: t.id.clone(),
            channel_id,
            button_roles,
            menu_roles,
        };
        if let Err(e) = store::insert(&store::sent_key(message_id), &sent) {
            // Without the record its role components would refuse every
            // click: take the message back rather than leave it broken.
            let _ = messages::delete(channel_id, message_id);
            return Err(e);
        }
    }
    audit_entry(
        "template.sent",
        &format!(
            "template `{}` sent to <#{channel_id}> (message {message_id})",
            t.id
        ),
    );
    Ok(message_id)
}

/// The feature's own command, which no template may take.
const SEND_TEMPLATE: &str = "send-template";

/// A template's `command`: a slash command name that is not ours.
fn check_command_name(command: &str) -> Result<(), Error> {
    let valid = (1..=32).contains(&command.len())
        && command
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        return Err(Error::invalid(format!(
            "command `{command}`: 1 to 32 of a-z, 0-9, `-` and `_`, e.g. `rules`"
        )));
    }
    if command == SEND_TEMPLATE {
        return Err(Error::invalid(
            "command `send-template` is this feature's own; pick another name",
        ));
    }
    Ok(())
}

/// Refuses `t.command` when another template has it already.
pub fn check_command_free(t: &Template) -> Result<(), Error> {
    let Some(command) = &t.command else {
        return Ok(());
    };
    let taken = store::list::<Template>(store::TEMPLATE_PREFIX)?
        .into_iter()
        .find(|other| other.id != t.id && other.command.as_ref() == Some(command));
    match taken {
        Some(other) => Err(Error::invalid(format!(
            "template `{}` answers `/{command}` already; pick another command or clear it there",
            other.id
        ))),
        None => Ok(()),
    }
}

/// The guild's template commands (contract 0.1.3 `guild-commands`): one
/// slash command per template that names one, in template order.
pub fn guild_commands() -> Result<Vec<Command>, Error> {
    Ok(store::list::<Template>(store::TEMPLATE_PREFIX)?
        .into_iter()
        .filter_map(|t| {
            let command = t.command?;
            let description: String = format!("Posts “{}”", t.name).chars().take(100).collect();
            Some(Command::slash(command, description))
        })
        .collect())
}

/// `/command` of a template: the template itself, as the answer. One that
/// offers roles is posted as a message of its own (its clicks need the
/// message it is on), answered with a short note.
pub fn command(ctx: &Context, invocation: &CommandInvocation) -> Result<Reply, Error> {
    let name = invocation.name.as_str();
    let found = store::list::<Template>(store::TEMPLATE_PREFIX)?
        .into_iter()
        .find(|t| t.command.as_deref() == Some(name));
    let Some(t) = found else {
        return Ok(say(format!(
            "`/{name}` no longer posts a template; the server's admins removed it."
        )));
    };
    let channel_id = invocation.channel_id;
    let (button_roles, menu_roles) = offered_roles(&t);
    if button_roles.is_empty() && menu_roles.is_empty() {
        let vars = Vars::for_send(ctx, &t, channel_id)?;
        return Ok(Reply::from(body(&t, Some(&vars))));
    }
    match send(ctx, &t, channel_id) {
        Ok(_) => Ok(say(format!("Posted **{}** here.", t.name))),
        Err(Error::Denied(Capability::Messages)) => Ok(say(format!(
            "I may not post in <#{channel_id}>; ask an admin to allow it for this feature."
        ))),
        Err(e) => Err(e),
    }
}

/// The template `name` names: its id, else its name (any case).
pub fn find(name: &str) -> Result<Template, Error> {
    let name = name.trim();
    if is_slug(name)
        && let Some(t) = store::get::<Template>(&store::template_key(name))?
    {
        return Ok(t);
    }
    store::list::<Template>(store::TEMPLATE_PREFIX)?
        .into_iter()
        .find(|t| t.name.eq_ignore_ascii_case(name) || t.id.eq_ignore_ascii_case(name))
        .ok_or_else(|| Error::not_found(format!("template `{name}`")))
}

/// `/send-template name [channel]` (or its prefix form).
pub fn send_command(ctx: &Context, invocation: &CommandInvocation) -> Result<Reply, Error> {
    let name = invocation.text_arg("name").unwrap_or("").trim();
    if name.is_empty() {
        return Ok(say(
            "Name the template to send, e.g. `/send-template name: rules`.",
        ));
    }
    let channel_id = invocation
        .channel_arg("channel")
        .unwrap_or(invocation.channel_id);
    let t = match find(name) {
        Ok(t) => t,
        Err(Error::NotFound(_)) => {
            let known: Vec<String> = store::list::<Template>(store::TEMPLATE_PREFIX)?
                .into_iter()
                .map(|t| format!("`{}`", t.id))
                .collect();
            return Ok(say(if known.is_empty() {
                format!("There is no template `{name}`; make one in the dashboard first.")
            } else {
                format!(
                    "There is no template `{name}`. Templates: {}.",
                    known.join(", ")
                )
            }));
        }
        Err(e) => return Err(e),
    };
    match send(ctx, &t, channel_id) {
        Ok(_) => Ok(say(format!("Sent **{}** to <#{channel_id}>.", t.name))),
        Err(Error::Denied(Capability::Messages)) => Ok(say(format!(
            "I may not post in <#{channel_id}>; ask an admin to allow it for this feature."
        ))),
        Err(Error::InvalidArgument(why)) => {
            Ok(say(format!("Discord would refuse this template: {why}")))
        }
        Err(e) => Err(e),
    }
}
