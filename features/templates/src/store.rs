//! What the feature keeps in `storage`, and the only code that touches it.
//!
//! Every value is JSON whose Discord ids are decimal strings (what the
//! dashboard reads: a JavaScript number cannot hold a snowflake); reading
//! accepts integers too. Read-modify-write goes through [`update`], a
//! compare-and-set loop on `storage::set_if`, so two invocations racing on one
//! key cannot lose each other's change.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use townes_sdk::{Error, Snowflake, serde_json, storage};

/// Times [`update`] starts over when another invocation changed the key.
const UPDATE_ATTEMPTS: usize = 5;
/// Keys one `list_prefix` call reads at most.
pub const LIST_LIMIT: u32 = 1000;

pub const TEMPLATE_PREFIX: &str = "template:";
pub const RR_PREFIX: &str = "rr:";
pub const SENT_PREFIX: &str = "sent:";
pub const HELD_PREFIX: &str = "rrm:";

pub fn template_key(id: &str) -> String {
    format!("{TEMPLATE_PREFIX}{id}")
}

pub fn rr_key(message_id: Snowflake) -> String {
    format!("{RR_PREFIX}{message_id}")
}

pub fn sent_key(message_id: Snowflake) -> String {
    format!("{SENT_PREFIX}{message_id}")
}

pub fn held_key(message_id: Snowflake, user_id: Snowflake) -> String {
    format!("{HELD_PREFIX}{message_id}:{user_id}")
}

// ------------------------------------------------------------------ types

/// A message template an admin made (`template:{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The slug the admin picked: 1-32 of `a-z 0-9 -`.
    pub id: String,
    /// A display name (what `/send-template` also accepts).
    pub name: String,
    /// The text, with template variables; empty: none.
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub embed: Option<TemplateEmbed>,
    /// Link and role buttons, five to a row, in this order.
    #[serde(default)]
    pub buttons: Vec<TemplateButton>,
    /// One select menu of roles, in the row after the buttons.
    #[serde(default)]
    pub select: Option<RoleMenu>,
    /// A slash command of the guild that posts it (`rules` makes `/rules`):
    /// 1-32 of `a-z 0-9 - _`, one template per command; none: only
    /// `/send-template` and the dashboard send it.
    #[serde(default)]
    pub command: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateEmbed {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Where the title links to (https).
    #[serde(default)]
    pub url: Option<String>,
    /// 0xRRGGBB.
    #[serde(default)]
    pub color: Option<u32>,
    #[serde(default)]
    pub fields: Vec<TemplateField>,
    #[serde(default)]
    pub footer: Option<String>,
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateField {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub inline: bool,
}

/// The colour of a role button.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    #[default]
    Primary,
    Secondary,
    Success,
    Danger,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TemplateButton {
    /// Opens `url` (https); never reaches the feature.
    Link {
        label: String,
        url: String,
        #[serde(default)]
        emoji: Option<String>,
    },
    /// Toggles `role_id` for whoever clicks (custom id `role:{role_id}`).
    Role {
        label: String,
        #[serde(with = "townes_sdk::snowflake::string")]
        role_id: Snowflake,
        #[serde(default)]
        style: Style,
        #[serde(default)]
        emoji: Option<String>,
    },
}

/// A select menu whose options are roles (custom id `roles:{template_id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMenu {
    #[serde(default)]
    pub placeholder: Option<String>,
    /// 0 lets a member clear their roles from the menu.
    #[serde(default)]
    pub min_values: u8,
    /// None when created: as many as there are options.
    #[serde(default)]
    pub max_values: Option<u8>,
    pub options: Vec<MenuOption>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuOption {
    #[serde(with = "townes_sdk::snowflake::string")]
    pub role_id: Snowflake,
    pub label: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A template message the bot posted with role components (`sent:{message_id}`):
/// the roles it offered when it was sent, so its clicks keep working (and
/// stay limited to those roles) whatever later happens to the template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentMessage {
    pub template_id: String,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub channel_id: Snowflake,
    #[serde(with = "townes_sdk::snowflake::vec_string")]
    pub button_roles: Vec<Snowflake>,
    #[serde(with = "townes_sdk::snowflake::vec_string")]
    pub menu_roles: Vec<Snowflake>,
}

/// What a reaction does on a reaction-role message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Add on react, remove on un-react.
    #[default]
    Normal,
    /// One role of the set: reacting to another swaps the role.
    Unique,
    /// Add only; un-reacting keeps the role.
    Verify,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Unique => "unique",
            Mode::Verify => "verify",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    /// A unicode emoji or `name:id` of a custom one.
    pub emoji: String,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub role_id: Snowflake,
}

/// The reaction roles of one message (`rr:{message_id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReactionRoles {
    #[serde(with = "townes_sdk::snowflake::string")]
    pub message_id: Snowflake,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub channel_id: Snowflake,
    pub mode: Mode,
    /// Roles of this message one member may hold at once; 0: no limit.
    pub limit: u8,
    pub pairs: Vec<Pair>,
}

impl ReactionRoles {
    pub fn roles(&self) -> Vec<Snowflake> {
        self.pairs.iter().map(|p| p.role_id).collect()
    }
}

// ------------------------------------------------------------------ generic

fn to_json(value: &impl Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Unavailable(format!("encoding: {e}")))
}

fn parse<T: DeserializeOwned>(key: &str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Unavailable(format!("stored `{key}`: {e}")))
}

pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    storage::get(key)?.map(|t| parse(key, &t)).transpose()
}

/// Stores `value` at `key` only if the key is free; returns whether it was.
pub fn insert<T: Serialize>(key: &str, value: &T) -> Result<bool, Error> {
    storage::set_if(key, None, &to_json(value)?)
}

/// Reads `key`, lets `change` compute its new value (`None`: delete it) and
/// stores it only if nobody stored the key meanwhile, else starts over.
/// `change` may run more than once; an error from it is returned as is.
///
/// Deleting is not a compare-and-set (the contract has no `delete-if`): a
/// write racing the deletion of the same key may be lost. Deletion is only
/// used where that cannot matter (see callers).
pub fn update<T: Serialize + DeserializeOwned>(
    key: &str,
    mut change: impl FnMut(Option<T>) -> Result<Option<T>, Error>,
) -> Result<Option<T>, Error> {
    for _ in 0..UPDATE_ATTEMPTS {
        let old = storage::get(key)?;
        let current = old.as_deref().map(|t| parse::<T>(key, t)).transpose()?;
        let Some(new) = change(current)? else {
            if old.is_some() {
                storage::delete(key)?;
            }
            return Ok(None);
        };
        let text = to_json(&new)?;
        if old.as_deref() == Some(text.as_str()) || storage::set_if(key, old.as_deref(), &text)? {
            return Ok(Some(new));
        }
    }
    Err(Error::Unavailable(format!(
        "`{key}` is changing too fast; try again"
    )))
}

/// Every value under `prefix`, in key order (at most [`LIST_LIMIT`]).
pub fn list<T: DeserializeOwned>(prefix: &str) -> Result<Vec<T>, Error> {
    storage::list_prefix(prefix, LIST_LIMIT)?
        .into_iter()
        .map(|e| parse(&e.key, &e.value))
        .collect()
}

/// How many keys start with `prefix`, counting up to `max`.
pub fn count(prefix: &str, max: u32) -> Result<usize, Error> {
    Ok(storage::list_prefix(prefix, max.clamp(1, LIST_LIMIT))?.len())
}

// ------------------------------------------------------------------ typed

pub fn load_template(id: &str) -> Result<Template, Error> {
    get(&template_key(id))?.ok_or_else(|| Error::not_found(format!("template `{id}`")))
}

pub fn load_reaction_roles(message_id: Snowflake) -> Result<ReactionRoles, Error> {
    get(&rr_key(message_id))?
        .ok_or_else(|| Error::not_found(format!("reaction roles on message {message_id}")))
}

/// The roles of reaction-role message `message_id` this feature gave
/// `user_id` (its own record, for when it cannot read the member).
pub fn held(message_id: Snowflake, user_id: Snowflake) -> Result<Vec<Snowflake>, Error> {
    Ok(get::<Vec<String>>(&held_key(message_id, user_id))?
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.parse().ok())
        .collect())
}

/// Records that `user_id` gained `added` and lost `removed` of message
/// `message_id`'s roles. The key goes when the list empties: only that
/// member's own reactions write it, so a lost race needs two of their
/// reactions on one message at the same instant.
pub fn note_held(
    message_id: Snowflake,
    user_id: Snowflake,
    added: &[Snowflake],
    removed: &[Snowflake],
) -> Result<(), Error> {
    update::<Vec<String>>(&held_key(message_id, user_id), |old| {
        let mut roles: Vec<String> = old.unwrap_or_default();
        roles.retain(|r| !removed.iter().any(|x| x.to_string() == *r));
        for role in added {
            let role = role.to_string();
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        Ok((!roles.is_empty()).then_some(roles))
    })
    .map(drop)
}
