//! Constructors and small builders for the contract's types.
//!
//! The types themselves are generated from the WIT (plain structs and enums with
//! public fields, so struct literals always work); these impls only make the common
//! cases short.

use crate::{
    ActionRow, Button, ButtonStyle, Capability, CapabilityRequest, ChannelKind, ChannelSpec,
    Command, CommandArgument, CommandInvocation, CommandOption, CommandSource,
    ComponentInteraction, Context, Embed, EmbedField, Error, Event, EventKind, GuildInfo,
    InteractionKind, Manifest, Member, Message, MessageBody, MessageDeleted, Modal, OptionKind,
    OptionValue, OverwriteTarget, PermissionOverwrite, Reaction, Reply, ScheduledJob, SelectMenu,
    SelectOption, Snowflake, Subcommand, TextInput, UiComponent, User,
};

/// Discord's limits that the host enforces on outgoing messages: the same
/// constants and checks the host uses (`townes-limits`).
pub use townes_limits::message as limits;

// ---------------------------------------------------------------- capability

impl Capability {
    /// Every capability, in WIT order.
    pub const ALL: [Capability; 11] = [
        Capability::Messages,
        Capability::MessageContent,
        Capability::Members,
        Capability::Roles,
        Capability::Channels,
        Capability::Moderation,
        Capability::Storage,
        Capability::Config,
        Capability::Scheduler,
        Capability::Audit,
        Capability::Log,
    ];

    /// The WIT name, e.g. `"message-content"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Capability::Messages => "messages",
            Capability::MessageContent => "message-content",
            Capability::Members => "members",
            Capability::Roles => "roles",
            Capability::Channels => "channels",
            Capability::Moderation => "moderation",
            Capability::Storage => "storage",
            Capability::Config => "config",
            Capability::Scheduler => "scheduler",
            Capability::Audit => "audit",
            Capability::Log => "log",
        }
    }

    /// `config` and `log`: granted to every feature without asking.
    pub fn always_granted(&self) -> bool {
        matches!(self, Capability::Config | Capability::Log)
    }
}

impl CapabilityRequest {
    /// A capability the feature cannot work without; the admin must approve it
    /// before the feature can be enabled. `reason` is shown to the admin.
    pub fn required(capability: Capability, reason: impl Into<String>) -> Self {
        CapabilityRequest {
            capability,
            required: true,
            reason: reason.into(),
        }
    }

    /// A capability the admin may deny; the feature must cope with
    /// `Error::Denied(capability)`. `reason` is shown to the admin.
    pub fn optional(capability: Capability, reason: impl Into<String>) -> Self {
        CapabilityRequest {
            capability,
            required: false,
            reason: reason.into(),
        }
    }
}

// --------------------------------------------------------------------- error

impl From<townes_limits::Invalid> for Error {
    fn from(e: townes_limits::Invalid) -> Self {
        Error::InvalidArgument(e.0)
    }
}

impl Error {
    /// The denied capability, when this is `Error::Denied`.
    pub fn denied_capability(&self) -> Option<Capability> {
        match self {
            Error::Denied(c) => Some(*c),
            _ => None,
        }
    }

    /// Whether this is `Error::Denied(_)`.
    pub fn is_denied(&self) -> bool {
        matches!(self, Error::Denied(_))
    }

    /// `Error::InvalidArgument(message)`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }

    /// `Error::NotFound(what)`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }
}

// ------------------------------------------------------------------ manifest

impl Manifest {
    /// A manifest with `id` and `version`, the id as its name, no commands,
    /// events or capabilities, the config schema `{"type":"object"}` and the
    /// default config `{}`.
    pub fn new(id: impl Into<String>, version: impl Into<String>) -> Self {
        let id = id.into();
        Manifest {
            name: id.clone(),
            id,
            version: version.into(),
            description: String::new(),
            commands: Vec::new(),
            events: Vec::new(),
            capabilities: Vec::new(),
            config_schema: r#"{"type":"object"}"#.into(),
            default_config: "{}".into(),
        }
    }

    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the description shown in the marketplace.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Adds a command.
    pub fn command(mut self, command: Command) -> Self {
        self.commands.push(command);
        self
    }

    /// Subscribes to an event.
    pub fn event(mut self, kind: EventKind) -> Self {
        self.events.push(kind);
        self
    }

    /// Requests a capability.
    pub fn capability(mut self, request: CapabilityRequest) -> Self {
        self.capabilities.push(request);
        self
    }

    /// Sets the JSON Schema of the config and the default config.
    pub fn config(mut self, schema: serde_json::Value, default: serde_json::Value) -> Self {
        self.config_schema = schema.to_string();
        self.default_config = default.to_string();
        self
    }

    /// The request for `capability`, if the manifest makes one.
    pub fn request(&self, capability: Capability) -> Option<&CapabilityRequest> {
        self.capabilities
            .iter()
            .find(|r| r.capability == capability)
    }
}

impl Command {
    fn make(name: impl Into<String>, description: impl Into<String>, slash: bool) -> Self {
        Command {
            name: name.into(),
            description: description.into(),
            options: Vec::new(),
            subcommands: Vec::new(),
            slash,
            prefix: !slash,
            default_permissions: None,
        }
    }

    /// A slash command (`/name`).
    pub fn slash(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::make(name, description, true)
    }

    /// A prefix command (`!name`, with the guild's prefix).
    pub fn prefix(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::make(name, description, false)
    }

    /// A command usable both as slash and as prefix command.
    pub fn slash_and_prefix(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::slash(name, description).also_prefix()
    }

    /// Also offer it as a prefix command.
    pub fn also_prefix(mut self) -> Self {
        self.prefix = true;
        self
    }

    /// Also offer it as a slash command.
    pub fn also_slash(mut self) -> Self {
        self.slash = true;
        self
    }

    /// Adds an option.
    pub fn option(mut self, option: CommandOption) -> Self {
        self.options.push(option);
        self
    }

    /// Adds a subcommand.
    pub fn subcommand(mut self, subcommand: Subcommand) -> Self {
        self.subcommands.push(subcommand);
        self
    }

    /// Only members holding these Discord permission bits may run it by default
    /// (guild admins can change who may).
    pub fn default_permissions(mut self, bits: u64) -> Self {
        self.default_permissions = Some(bits);
        self
    }

    /// Only members with Manage Server may run it by default.
    pub fn admin_only(self) -> Self {
        self.default_permissions(MANAGE_GUILD)
    }
}

/// Discord's Manage Server permission bit.
pub const MANAGE_GUILD: u64 = 1 << 5;

impl Subcommand {
    /// A subcommand without options.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Subcommand {
            name: name.into(),
            description: description.into(),
            options: Vec::new(),
        }
    }

    /// Adds an option.
    pub fn option(mut self, option: CommandOption) -> Self {
        self.options.push(option);
        self
    }
}

impl CommandOption {
    /// An optional option of `kind`.
    pub fn new(name: impl Into<String>, description: impl Into<String>, kind: OptionKind) -> Self {
        CommandOption {
            name: name.into(),
            description: description.into(),
            kind,
            required: false,
            choices: Vec::new(),
        }
    }

    /// A free-text option.
    pub fn text(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, description, OptionKind::Text)
    }

    /// An integer option.
    pub fn integer(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, description, OptionKind::Integer)
    }

    /// A floating-point option.
    pub fn number(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, description, OptionKind::Number)
    }

    /// A true/false option.
    pub fn boolean(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, description, OptionKind::Boolean)
    }

    /// A user option.
    pub fn user(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, description, OptionKind::User)
    }

    /// A channel option.
    pub fn channel(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, description, OptionKind::Channel)
    }

    /// A role option.
    pub fn role(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, description, OptionKind::Role)
    }

    /// Makes the option required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Fixed choices (text options).
    pub fn choices<I, S>(mut self, choices: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.choices = choices.into_iter().map(Into::into).collect();
        self
    }
}

// --------------------------------------------------------------- replies etc.

impl Reply {
    /// A reply with this text as content.
    pub fn text(content: impl Into<String>) -> Self {
        MessageBody::text(content).into()
    }

    /// A reply with one embed.
    pub fn embed(embed: Embed) -> Self {
        MessageBody::embed(embed).into()
    }

    /// A reply that opens a modal instead of posting a message.
    pub fn modal(modal: Modal) -> Self {
        Reply {
            body: MessageBody::default(),
            ephemeral: true,
            modal: Some(modal),
        }
    }

    /// Only the invoking user sees the reply (slash commands and components).
    pub fn ephemeral(mut self) -> Self {
        self.ephemeral = true;
        self
    }

    /// Adds an embed.
    pub fn with_embed(mut self, embed: Embed) -> Self {
        self.body.embeds.push(embed);
        self
    }

    /// Adds a row of components.
    pub fn with_row(mut self, row: ActionRow) -> Self {
        self.body.components.push(row);
        self
    }

    /// The reply's text, if any.
    pub fn content(&self) -> Option<&str> {
        self.body.content.as_deref()
    }
}

impl From<MessageBody> for Reply {
    fn from(body: MessageBody) -> Self {
        Reply {
            body,
            ephemeral: false,
            modal: None,
        }
    }
}

impl From<&str> for Reply {
    fn from(content: &str) -> Self {
        Reply::text(content)
    }
}

impl From<String> for Reply {
    fn from(content: String) -> Self {
        Reply::text(content)
    }
}

// The type is generated, so it cannot be derived here.
#[allow(clippy::derivable_impls)]
impl Default for MessageBody {
    fn default() -> Self {
        MessageBody {
            content: None,
            embeds: Vec::new(),
            components: Vec::new(),
        }
    }
}

impl MessageBody {
    /// A message with this text as content.
    pub fn text(content: impl Into<String>) -> Self {
        MessageBody {
            content: Some(content.into()),
            ..Default::default()
        }
    }

    /// A message with one embed and no text.
    pub fn embed(embed: Embed) -> Self {
        MessageBody {
            embeds: vec![embed],
            ..Default::default()
        }
    }

    /// Adds an embed.
    pub fn with_embed(mut self, embed: Embed) -> Self {
        self.embeds.push(embed);
        self
    }

    /// Adds a row of components.
    pub fn with_row(mut self, row: ActionRow) -> Self {
        self.components.push(row);
        self
    }

    /// Checks Discord's limits (see [`limits`]) with the host's own checks:
    /// content length, embed count and sizes, row counts, and that the
    /// message is not empty.
    pub fn validate(&self) -> Result<(), Error> {
        Ok(limits::check(&self.shape())?)
    }

    /// What the shared limits know of this body.
    pub(crate) fn shape(&self) -> limits::Shape<'_> {
        limits::Shape {
            content: self.content.as_deref(),
            embeds: self.embeds.iter().map(Embed::shape).collect(),
            rows: self
                .components
                .iter()
                .map(|row| {
                    let selects = row
                        .components
                        .iter()
                        .filter(|c| matches!(c, UiComponent::SelectMenu(_)))
                        .count();
                    limits::RowShape {
                        buttons: row.components.len() - selects,
                        selects,
                    }
                })
                .collect(),
        }
    }
}

impl From<&str> for MessageBody {
    fn from(content: &str) -> Self {
        MessageBody::text(content)
    }
}

impl From<String> for MessageBody {
    fn from(content: String) -> Self {
        MessageBody::text(content)
    }
}

impl From<&String> for MessageBody {
    fn from(content: &String) -> Self {
        MessageBody::text(content.as_str())
    }
}

impl From<Embed> for MessageBody {
    fn from(embed: Embed) -> Self {
        MessageBody::embed(embed)
    }
}

// The type is generated, so it cannot be derived here.
#[allow(clippy::derivable_impls)]
impl Default for Embed {
    fn default() -> Self {
        Embed {
            title: None,
            description: None,
            url: None,
            color: None,
            fields: Vec::new(),
            footer: None,
            thumbnail_url: None,
            image_url: None,
        }
    }
}

impl Embed {
    /// An empty embed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the URL the title links to.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the colour (0xRRGGBB).
    pub fn color(mut self, rgb: u32) -> Self {
        self.color = Some(rgb);
        self
    }

    /// Adds a field.
    pub fn field(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        inline: bool,
    ) -> Self {
        self.fields.push(EmbedField {
            name: name.into(),
            value: value.into(),
            inline,
        });
        self
    }

    /// Sets the footer text.
    pub fn footer(mut self, footer: impl Into<String>) -> Self {
        self.footer = Some(footer.into());
        self
    }

    /// Sets the thumbnail image URL.
    pub fn thumbnail(mut self, url: impl Into<String>) -> Self {
        self.thumbnail_url = Some(url.into());
        self
    }

    /// Sets the large image URL.
    pub fn image(mut self, url: impl Into<String>) -> Self {
        self.image_url = Some(url.into());
        self
    }

    fn shape(&self) -> limits::EmbedShape<'_> {
        limits::EmbedShape {
            title: self.title.as_deref(),
            description: self.description.as_deref(),
            footer: self.footer.as_deref(),
            fields: self
                .fields
                .iter()
                .map(|f| (f.name.as_str(), f.value.as_str()))
                .collect(),
        }
    }
}

impl Button {
    fn make(style: ButtonStyle, custom_id: Option<String>, label: impl Into<String>) -> Self {
        Button {
            custom_id,
            label: label.into(),
            style,
            url: None,
            emoji: None,
            disabled: false,
        }
    }

    /// A primary (blurple) button; clicks arrive in `on_component` with `custom_id`.
    pub fn primary(custom_id: impl Into<String>, label: impl Into<String>) -> Self {
        Self::make(ButtonStyle::Primary, Some(custom_id.into()), label)
    }

    /// A secondary (grey) button.
    pub fn secondary(custom_id: impl Into<String>, label: impl Into<String>) -> Self {
        Self::make(ButtonStyle::Secondary, Some(custom_id.into()), label)
    }

    /// A success (green) button.
    pub fn success(custom_id: impl Into<String>, label: impl Into<String>) -> Self {
        Self::make(ButtonStyle::Success, Some(custom_id.into()), label)
    }

    /// A danger (red) button.
    pub fn danger(custom_id: impl Into<String>, label: impl Into<String>) -> Self {
        Self::make(ButtonStyle::Danger, Some(custom_id.into()), label)
    }

    /// A link button: opens `url`, never reaches the feature.
    pub fn link(url: impl Into<String>, label: impl Into<String>) -> Self {
        let mut b = Self::make(ButtonStyle::Link, None, label);
        b.url = Some(url.into());
        b
    }

    /// Sets an emoji.
    pub fn emoji(mut self, emoji: impl Into<String>) -> Self {
        self.emoji = Some(emoji.into());
        self
    }

    /// Shows the button greyed out.
    pub fn disabled(mut self) -> Self {
        self.disabled = true;
        self
    }
}

impl SelectMenu {
    /// A select menu choosing exactly one option.
    pub fn new(custom_id: impl Into<String>) -> Self {
        SelectMenu {
            custom_id: custom_id.into(),
            placeholder: None,
            options: Vec::new(),
            min_values: 1,
            max_values: 1,
        }
    }

    /// Adds an option with this label and value.
    pub fn option(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push(SelectOption {
            label: label.into(),
            value: value.into(),
            description: None,
            default: false,
        });
        self
    }

    /// Sets the placeholder text.
    pub fn placeholder(mut self, placeholder: impl Into<String>) -> Self {
        self.placeholder = Some(placeholder.into());
        self
    }

    /// How many options may be selected.
    pub fn range(mut self, min: u8, max: u8) -> Self {
        self.min_values = min;
        self.max_values = max;
        self
    }
}

// The type is generated, so it cannot be derived here.
#[allow(clippy::derivable_impls)]
impl Default for ActionRow {
    fn default() -> Self {
        ActionRow {
            components: Vec::new(),
        }
    }
}

impl ActionRow {
    /// An empty row.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a button (up to 5 per row).
    pub fn button(mut self, button: Button) -> Self {
        self.components.push(UiComponent::Button(button));
        self
    }

    /// Adds a select menu (alone in its row).
    pub fn select(mut self, menu: SelectMenu) -> Self {
        self.components.push(UiComponent::SelectMenu(menu));
        self
    }
}

impl Modal {
    /// A modal without inputs.
    pub fn new(custom_id: impl Into<String>, title: impl Into<String>) -> Self {
        Modal {
            custom_id: custom_id.into(),
            title: title.into(),
            inputs: Vec::new(),
        }
    }

    /// Adds an input.
    pub fn input(mut self, input: TextInput) -> Self {
        self.inputs.push(input);
        self
    }
}

impl TextInput {
    /// A required single-line input.
    pub fn short(custom_id: impl Into<String>, label: impl Into<String>) -> Self {
        TextInput {
            custom_id: custom_id.into(),
            label: label.into(),
            paragraph: false,
            required: true,
            placeholder: None,
            max_length: None,
        }
    }

    /// A required multi-line input.
    pub fn paragraph(custom_id: impl Into<String>, label: impl Into<String>) -> Self {
        let mut t = Self::short(custom_id, label);
        t.paragraph = true;
        t
    }

    /// Makes the input optional.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Sets the placeholder.
    pub fn placeholder(mut self, placeholder: impl Into<String>) -> Self {
        self.placeholder = Some(placeholder.into());
        self
    }

    /// Sets the maximum length.
    pub fn max_length(mut self, max: u16) -> Self {
        self.max_length = Some(max);
        self
    }
}

impl ChannelSpec {
    /// A channel of `kind` without parent, topic or overwrites.
    pub fn new(name: impl Into<String>, kind: ChannelKind) -> Self {
        ChannelSpec {
            name: name.into(),
            kind,
            parent_id: None,
            topic: None,
            overwrites: Vec::new(),
        }
    }

    /// A text channel.
    pub fn text(name: impl Into<String>) -> Self {
        Self::new(name, ChannelKind::Text)
    }

    /// A voice channel.
    pub fn voice(name: impl Into<String>) -> Self {
        Self::new(name, ChannelKind::Voice)
    }

    /// A category.
    pub fn category(name: impl Into<String>) -> Self {
        Self::new(name, ChannelKind::Category)
    }

    /// Puts the channel in a category.
    pub fn parent(mut self, category_id: Snowflake) -> Self {
        self.parent_id = Some(category_id);
        self
    }

    /// Sets the topic.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// Adds a permission overwrite.
    pub fn overwrite(mut self, overwrite: PermissionOverwrite) -> Self {
        self.overwrites.push(overwrite);
        self
    }
}

impl PermissionOverwrite {
    /// An overwrite for a role (`@everyone` is the guild id).
    pub fn role(role_id: Snowflake, allow: u64, deny: u64) -> Self {
        PermissionOverwrite {
            id: role_id,
            target: OverwriteTarget::Role,
            allow,
            deny,
        }
    }

    /// An overwrite for one member.
    pub fn member(user_id: Snowflake, allow: u64, deny: u64) -> Self {
        PermissionOverwrite {
            id: user_id,
            target: OverwriteTarget::Member,
            allow,
            deny,
        }
    }
}

// ------------------------------------------------- inputs (mostly for tests)

impl Context {
    /// The context of an invocation in `guild_id`, where the bot is `bot_user_id`.
    pub fn new(guild_id: Snowflake, bot_user_id: Snowflake) -> Self {
        Context {
            guild_id,
            bot_user_id,
        }
    }
}

impl User {
    /// A human user without a global display name.
    pub fn new(id: Snowflake, username: impl Into<String>) -> Self {
        User {
            id,
            username: username.into(),
            global_name: None,
            bot: false,
        }
    }

    /// Sets the global display name.
    pub fn with_global_name(mut self, name: impl Into<String>) -> Self {
        self.global_name = Some(name.into());
        self
    }

    /// Marks the user as a bot.
    pub fn as_bot(mut self) -> Self {
        self.bot = true;
        self
    }

    /// The global display name, else the username.
    pub fn display_name(&self) -> &str {
        self.global_name.as_deref().unwrap_or(&self.username)
    }

    /// `<@id>`: mentions the user in a message.
    pub fn mention(&self) -> String {
        format!("<@{}>", self.id)
    }
}

impl Member {
    /// A member without nickname or roles.
    pub fn new(user: User) -> Self {
        Member {
            user,
            nick: None,
            roles: Vec::new(),
            joined_at: None,
        }
    }

    /// Sets the guild nickname.
    pub fn with_nick(mut self, nick: impl Into<String>) -> Self {
        self.nick = Some(nick.into());
        self
    }

    /// Adds a role.
    pub fn with_role(mut self, role_id: Snowflake) -> Self {
        self.roles.push(role_id);
        self
    }

    /// Sets when the member joined (RFC 3339, UTC).
    pub fn with_joined_at(mut self, joined_at: impl Into<String>) -> Self {
        self.joined_at = Some(joined_at.into());
        self
    }

    /// The guild nickname, else the global display name, else the username —
    /// what Discord shows.
    pub fn display_name(&self) -> &str {
        self.nick
            .as_deref()
            .unwrap_or_else(|| self.user.display_name())
    }

    /// Whether the member has `role_id`.
    pub fn has_role(&self, role_id: Snowflake) -> bool {
        self.roles.contains(&role_id)
    }

    /// `<@id>`: mentions the member in a message.
    pub fn mention(&self) -> String {
        self.user.mention()
    }
}

impl From<User> for Member {
    fn from(user: User) -> Self {
        Member::new(user)
    }
}

impl GuildInfo {
    /// A guild with this id and name, no members counted, owned by `owner_id`.
    pub fn new(id: Snowflake, name: impl Into<String>, owner_id: Snowflake) -> Self {
        GuildInfo {
            id,
            name: name.into(),
            member_count: 0,
            owner_id,
        }
    }
}

/// The timestamp test constructors use: `2024-01-01T00:00:00Z`.
const TEST_TIMESTAMP: &str = "2024-01-01T00:00:00Z";

impl Message {
    /// A message by `author` in `channel_id`, without mentions, timestamped
    /// 2024-01-01T00:00:00Z.
    pub fn new(
        id: Snowflake,
        channel_id: Snowflake,
        author: User,
        content: impl Into<String>,
    ) -> Self {
        Message {
            id,
            channel_id,
            author,
            content: content.into(),
            mentions: Vec::new(),
            timestamp: TEST_TIMESTAMP.into(),
        }
    }

    /// Adds a mentioned user.
    pub fn with_mention(mut self, user_id: Snowflake) -> Self {
        self.mentions.push(user_id);
        self
    }
}

impl Reaction {
    /// `user_id` reacted with `emoji` on a message.
    pub fn new(
        user_id: Snowflake,
        channel_id: Snowflake,
        message_id: Snowflake,
        emoji: impl Into<String>,
    ) -> Self {
        Reaction {
            user_id,
            channel_id,
            message_id,
            emoji: emoji.into(),
        }
    }
}

impl Event {
    /// The kind of this event, as used in [`Manifest::events`].
    pub fn kind(&self) -> EventKind {
        match self {
            Event::MessageCreated(_) => EventKind::MessageCreated,
            Event::MessageUpdated(_) => EventKind::MessageUpdated,
            Event::MessageDeleted(_) => EventKind::MessageDeleted,
            Event::MemberJoined(_) => EventKind::MemberJoined,
            Event::MemberLeft(_) => EventKind::MemberLeft,
            Event::MemberUpdated(_) => EventKind::MemberUpdated,
            Event::ReactionAdded(_) => EventKind::ReactionAdded,
            Event::ReactionRemoved(_) => EventKind::ReactionRemoved,
        }
    }

    /// `Event::MessageDeleted` for a message id in a channel.
    pub fn message_deleted(id: Snowflake, channel_id: Snowflake) -> Self {
        Event::MessageDeleted(MessageDeleted { id, channel_id })
    }
}

impl OptionValue {
    /// The text, for `OptionValue::Text`.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            OptionValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, for `OptionValue::Integer`.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            OptionValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The number, for `OptionValue::Number` (and `Integer`, converted).
    pub fn as_number(&self) -> Option<f64> {
        match self {
            OptionValue::Number(n) => Some(*n),
            OptionValue::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The flag, for `OptionValue::Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            OptionValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The user id, for `OptionValue::User`.
    pub fn as_user(&self) -> Option<Snowflake> {
        match self {
            OptionValue::User(id) => Some(*id),
            _ => None,
        }
    }

    /// The channel id, for `OptionValue::Channel`.
    pub fn as_channel(&self) -> Option<Snowflake> {
        match self {
            OptionValue::Channel(id) => Some(*id),
            _ => None,
        }
    }

    /// The role id, for `OptionValue::Role`.
    pub fn as_role(&self) -> Option<Snowflake> {
        match self {
            OptionValue::Role(id) => Some(*id),
            _ => None,
        }
    }
}

impl CommandInvocation {
    /// `invoker` ran slash command `name` in `channel_id`, without arguments.
    pub fn new(name: impl Into<String>, invoker: impl Into<Member>, channel_id: Snowflake) -> Self {
        CommandInvocation {
            name: name.into(),
            source: CommandSource::Slash,
            subcommand: None,
            arguments: Vec::new(),
            invoker: invoker.into(),
            channel_id,
        }
    }

    /// Marks it as typed with the guild's prefix rather than as a slash command.
    pub fn via_prefix(mut self) -> Self {
        self.source = CommandSource::Prefix;
        self
    }

    /// Sets the subcommand.
    pub fn with_subcommand(mut self, subcommand: impl Into<String>) -> Self {
        self.subcommand = Some(subcommand.into());
        self
    }

    /// Adds an argument.
    pub fn with_arg(mut self, name: impl Into<String>, value: OptionValue) -> Self {
        self.arguments.push(CommandArgument {
            name: name.into(),
            value,
        });
        self
    }

    /// The value of argument `name`, when given.
    pub fn arg(&self, name: &str) -> Option<&OptionValue> {
        self.arguments
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.value)
    }

    /// Argument `name` as text.
    pub fn text_arg(&self, name: &str) -> Option<&str> {
        self.arg(name).and_then(OptionValue::as_text)
    }

    /// Argument `name` as an integer.
    pub fn integer_arg(&self, name: &str) -> Option<i64> {
        self.arg(name).and_then(OptionValue::as_integer)
    }

    /// Argument `name` as a number.
    pub fn number_arg(&self, name: &str) -> Option<f64> {
        self.arg(name).and_then(OptionValue::as_number)
    }

    /// Argument `name` as a flag.
    pub fn bool_arg(&self, name: &str) -> Option<bool> {
        self.arg(name).and_then(OptionValue::as_bool)
    }

    /// Argument `name` as a user id.
    pub fn user_arg(&self, name: &str) -> Option<Snowflake> {
        self.arg(name).and_then(OptionValue::as_user)
    }

    /// Argument `name` as a channel id.
    pub fn channel_arg(&self, name: &str) -> Option<Snowflake> {
        self.arg(name).and_then(OptionValue::as_channel)
    }

    /// Argument `name` as a role id.
    pub fn role_arg(&self, name: &str) -> Option<Snowflake> {
        self.arg(name).and_then(OptionValue::as_role)
    }
}

impl ComponentInteraction {
    fn make(
        kind: InteractionKind,
        custom_id: impl Into<String>,
        invoker: impl Into<Member>,
        channel_id: Snowflake,
    ) -> Self {
        ComponentInteraction {
            kind,
            custom_id: custom_id.into(),
            values: Vec::new(),
            fields: Vec::new(),
            invoker: invoker.into(),
            channel_id,
            message_id: None,
        }
    }

    /// `invoker` clicked button `custom_id`.
    pub fn button(
        custom_id: impl Into<String>,
        invoker: impl Into<Member>,
        channel_id: Snowflake,
    ) -> Self {
        Self::make(InteractionKind::Button, custom_id, invoker, channel_id)
    }

    /// `invoker` chose `values` in select menu `custom_id`.
    pub fn select<I, S>(
        custom_id: impl Into<String>,
        values: I,
        invoker: impl Into<Member>,
        channel_id: Snowflake,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut i = Self::make(InteractionKind::SelectMenu, custom_id, invoker, channel_id);
        i.values = values.into_iter().map(Into::into).collect();
        i
    }

    /// `invoker` submitted modal `custom_id` with `(input id, value)` fields.
    pub fn modal_submit<I, K, V>(
        custom_id: impl Into<String>,
        fields: I,
        invoker: impl Into<Member>,
        channel_id: Snowflake,
    ) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut i = Self::make(InteractionKind::ModalSubmit, custom_id, invoker, channel_id);
        i.fields = fields
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        i
    }

    /// Sets the message the component is on.
    pub fn on_message(mut self, message_id: Snowflake) -> Self {
        self.message_id = Some(message_id);
        self
    }

    /// The submitted value of modal input `custom_id`.
    pub fn field(&self, custom_id: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == custom_id)
            .map(|(_, v)| v.as_str())
    }
}

impl ScheduledJob {
    /// A job as the host delivers it to `on_schedule`.
    pub fn new(id: impl Into<String>, name: impl Into<String>, payload: impl Into<String>) -> Self {
        ScheduledJob {
            id: id.into(),
            name: name.into(),
            payload: payload.into(),
        }
    }
}

// ----------------------------------------------------------------- api routes

impl crate::Route {
    /// A route: `path` under the feature's root (`/tickets/{id}`), a camelCase
    /// `operation_id` (`getTicket`) and a one-line `summary`. Its response
    /// schema starts as "any JSON object"; set it with
    /// [`response`](Self::response), and a body with [`request`](Self::request).
    pub fn new(
        method: crate::Method,
        path: impl Into<String>,
        operation_id: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        crate::Route {
            method,
            path: path.into(),
            operation_id: operation_id.into(),
            summary: summary.into(),
            request_schema: None,
            response_schema: r#"{"type":"object"}"#.into(),
        }
    }

    /// A `GET` route.
    pub fn get(path: &str, operation_id: &str, summary: &str) -> Self {
        Self::new(crate::Method::Get, path, operation_id, summary)
    }

    /// A `POST` route.
    pub fn post(path: &str, operation_id: &str, summary: &str) -> Self {
        Self::new(crate::Method::Post, path, operation_id, summary)
    }

    /// A `PUT` route.
    pub fn put(path: &str, operation_id: &str, summary: &str) -> Self {
        Self::new(crate::Method::Put, path, operation_id, summary)
    }

    /// A `PATCH` route.
    pub fn patch(path: &str, operation_id: &str, summary: &str) -> Self {
        Self::new(crate::Method::Patch, path, operation_id, summary)
    }

    /// A `DELETE` route.
    pub fn delete(path: &str, operation_id: &str, summary: &str) -> Self {
        Self::new(crate::Method::Delete, path, operation_id, summary)
    }

    /// The JSON Schema of the request body (`POST`, `PUT` and `PATCH` only).
    pub fn request(mut self, schema: serde_json::Value) -> Self {
        self.request_schema = Some(schema.to_string());
        self
    }

    /// The JSON Schema of a successful answer's body.
    pub fn response(mut self, schema: serde_json::Value) -> Self {
        self.response_schema = schema.to_string();
        self
    }
}

impl crate::ApiRequest {
    /// A path parameter by name (`"id"` of `/tickets/{id}`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter by name (the first, if repeated).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body, decoded (the host has checked it against the route's schema).
    pub fn body<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        let body = self.body.as_deref().unwrap_or("null");
        serde_json::from_str(body).map_err(|e| Error::InvalidArgument(format!("body: {e}")))
    }
}

impl crate::ApiResponse {
    /// A `200 OK` answer with `body` as JSON.
    pub fn json(body: &impl serde::Serialize) -> Self {
        Self::with_status(200, body)
    }

    /// An answer with a 2xx `status` and `body` as JSON.
    pub fn with_status(status: u16, body: &impl serde::Serialize) -> Self {
        crate::ApiResponse {
            status,
            body: serde_json::to_string(body).unwrap_or_else(|_| "null".into()),
        }
    }
}
