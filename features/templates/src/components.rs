//! Role buttons (`role:{role_id}`) and role menus (`roles:{template_id}`)
//! on sent template messages.
//!
//! A custom id is only a claim: anyone can click a button whose id they
//! forged. So a click counts only when the message it is on is a remembered
//! template message (`sent:{message_id}`) that offers that very role (or
//! that menu), and a menu only moves the roles that message offers.

use crate::store::{self, SentMessage};
use crate::{role_mention, say};
use townes_sdk::{
    Capability, ComponentInteraction, Context, Error, InteractionKind, Reply, Snowflake, roles,
};

/// What a component of this feature is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Click {
    /// `role:{role_id}`.
    Role(Snowflake),
    /// `roles:{template_id}`.
    Menu(String),
}

pub fn role_button_id(role_id: Snowflake) -> String {
    format!("role:{role_id}")
}

pub fn menu_id(template_id: &str) -> String {
    format!("roles:{template_id}")
}

/// Reads one of the custom ids this feature sets; `None` for any other.
pub fn parse_custom_id(custom_id: &str) -> Option<Click> {
    let (kind, rest) = custom_id.split_once(':')?;
    match kind {
        "role" => rest
            .parse()
            .ok()
            .filter(|&id| id > 0 && !rest.starts_with(['0', '+']))
            .map(Click::Role),
        "roles" if crate::templates::is_slug(rest) => Some(Click::Menu(rest.to_string())),
        _ => None,
    }
}

const NOT_OURS: &str =
    "This button is not on a role message I made, so I cannot give roles from it.";
const NOT_OFFERED: &str = "That role is not offered on this message.";

/// The remembered template message a click is on.
fn sent_message(interaction: &ComponentInteraction) -> Result<SentMessage, Error> {
    let message_id = interaction
        .message_id
        .ok_or_else(|| Error::invalid(NOT_OURS))?;
    store::get::<SentMessage>(&store::sent_key(message_id))?.ok_or_else(|| Error::invalid(NOT_OURS))
}

/// A button or menu of a template message.
pub fn on_component(ctx: &Context, interaction: &ComponentInteraction) -> Result<Reply, Error> {
    let _ = ctx;
    let answer = match (interaction.kind, parse_custom_id(&interaction.custom_id)) {
        (InteractionKind::Button, Some(Click::Role(role_id))) => toggle(interaction, role_id),
        (InteractionKind::SelectMenu, Some(Click::Menu(template_id))) => {
            choose(interaction, &template_id)
        }
        _ => return Err(Error::invalid("unknown component")),
    };
    match answer {
        Err(Error::InvalidArgument(why)) => Ok(say(why)),
        other => other,
    }
}

/// Why a role could not be given or taken, for the member.
fn role_failure(role_id: Snowflake, error: &Error) -> Option<String> {
    let role = role_mention(role_id);
    match error {
        Error::Denied(Capability::Roles) => Some(format!(
            "I may not manage {role}: it is above my own role or outside what this server lets me give."
        )),
        Error::NotFound(_) => Some(format!("{role} no longer exists.")),
        _ => None,
    }
}

/// `role:{role_id}`: toggles the role.
fn toggle(interaction: &ComponentInteraction, role_id: Snowflake) -> Result<Reply, Error> {
    let sent = sent_message(interaction)?;
    if !sent.button_roles.contains(&role_id) {
        return Err(Error::invalid(NOT_OFFERED));
    }
    let user = interaction.invoker.user.id;
    let reason = Some("role button");
    let (result, done) = if interaction.invoker.has_role(role_id) {
        (roles::remove(user, role_id, reason), "Removed")
    } else {
        (roles::add(user, role_id, reason), "Added")
    };
    match result {
        Ok(()) => Ok(say(format!("{done} {}", role_mention(role_id)))),
        Err(e) => role_failure(role_id, &e).map(say).ok_or(e),
    }
}

/// `roles:{template_id}`: the member's roles among the menu's become exactly
/// the chosen ones.
fn choose(interaction: &ComponentInteraction, template_id: &str) -> Result<Reply, Error> {
    let sent = sent_message(interaction)?;
    if sent.template_id != template_id || sent.menu_roles.is_empty() {
        return Err(Error::invalid(NOT_OURS));
    }
    let mut chosen = Vec::new();
    for value in &interaction.values {
        match value.parse::<Snowflake>() {
            Ok(role) if sent.menu_roles.contains(&role) => chosen.push(role),
            _ => return Err(Error::invalid(NOT_OFFERED)),
        }
    }
    let user = interaction.invoker.user.id;
    let reason = Some("role menu");
    let (mut added, mut removed, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for &role in &sent.menu_roles {
        let has = interaction.invoker.has_role(role);
        let wants = chosen.contains(&role);
        let result = match (has, wants) {
            (false, true) => roles::add(user, role, reason).map(|()| added.push(role)),
            (true, false) => roles::remove(user, role, reason).map(|()| removed.push(role)),
            _ => Ok(()),
        };
        if let Err(e) = result {
            failures.push(role_failure(role, &e).ok_or(e)?);
        }
    }
    let list = |roles: &[Snowflake]| {
        roles
            .iter()
            .map(|&r| role_mention(r))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = Vec::new();
    if !added.is_empty() {
        lines.push(format!("Added {}", list(&added)));
    }
    if !removed.is_empty() {
        lines.push(format!("Removed {}", list(&removed)));
    }
    if lines.is_empty() && failures.is_empty() {
        lines.push("Your roles already match your choice.".into());
    }
    lines.extend(failures);
    Ok(say(lines.join("\n")))
}
