//! Panels: the messages members click to open a ticket.

use crate::actions::{BLURPLE, audit_entry, check_length, given};
use crate::store::{self, Panel};
use serde::Deserialize;
use townes_sdk::{
    ActionRow, Button, Context, Embed, Error, MessageBody, Snowflake, log, messages, snowflake,
};

/// The label of a panel's button when none is given.
pub const DEFAULT_BUTTON_LABEL: &str = "Open a ticket";
const DEFAULT_PANEL_TEXT: &str =
    "Need help? Click the button below to open a private ticket with the support team.";
/// Support roles per panel: each is an overwrite on every ticket channel.
pub const MAX_SUPPORT_ROLES: usize = 20;

/// What it takes to post a panel: the command's options or the route's body.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PanelDraft {
    #[serde(deserialize_with = "snowflake::de")]
    pub channel_id: Snowflake,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub button_label: Option<String>,
    #[serde(default)]
    pub button_emoji: Option<String>,
    #[serde(default, deserialize_with = "snowflake::de_opt")]
    pub category_id: Option<Snowflake>,
    #[serde(default, deserialize_with = "snowflake::de_vec")]
    pub support_roles: Vec<Snowflake>,
}

fn panel_body(panel: &Panel) -> MessageBody {
    let embed = Embed::new()
        .title(&panel.title)
        .description(panel.description.as_deref().unwrap_or(DEFAULT_PANEL_TEXT))
        .color(BLURPLE);
    let mut button = Button::primary(format!("open:{}", panel.number), &panel.button_label);
    if let Some(emoji) = &panel.button_emoji {
        button = button.emoji(emoji);
    }
    MessageBody::embed(embed).with_row(ActionRow::new().button(button))
}

/// Checks a draft, posts the panel's message and stores the panel.
pub fn create_panel(ctx: &Context, draft: PanelDraft) -> Result<Panel, Error> {
    let title = draft.title.trim().to_string();
    if title.is_empty() {
        return Err(Error::invalid("give the panel a title"));
    }
    check_length("the title", &title, 256)?;
    let description = given(draft.description);
    if let Some(description) = &description {
        check_length("the description", description, 4000)?;
    }
    let button_label =
        given(draft.button_label).unwrap_or_else(|| DEFAULT_BUTTON_LABEL.to_string());
    check_length("the button label", &button_label, 80)?;
    let button_emoji = given(draft.button_emoji);
    if button_emoji.as_ref().is_some_and(|e| e.len() > 100) {
        return Err(Error::invalid("the emoji is too long: give one emoji"));
    }
    let mut support_roles = draft.support_roles;
    support_roles.dedup();
    if support_roles.contains(&ctx.guild_id) {
        return Err(Error::invalid(
            "@everyone cannot be a support role: every member would see every ticket",
        ));
    }
    if support_roles.len() > MAX_SUPPORT_ROLES {
        return Err(Error::invalid(format!(
            "a panel has at most {MAX_SUPPORT_ROLES} support roles"
        )));
    }
    let mut panel = Panel {
        number: store::next_panel_number()?,
        channel_id: draft.channel_id,
        message_id: 0,
        title,
        description,
        button_label,
        button_emoji,
        category_id: draft.category_id,
        support_roles,
    };
    panel.message_id = messages::send(panel.channel_id, panel_body(&panel))?;
    if let Err(error) = store::save_panel(&panel) {
        // A button that opens nothing would only confuse members.
        let _ = messages::delete(panel.channel_id, panel.message_id);
        return Err(error);
    }
    audit_entry(
        "panel_created",
        &format!("panel #{} in channel {}", panel.number, panel.channel_id),
    );
    Ok(panel)
}

/// Deletes a panel and, when it still can, its message; returns the panel and
/// whether the message went too. Its tickets stay.
pub fn delete_panel(number: u64) -> Result<(Panel, bool), Error> {
    let panel = store::load_panel(number)?;
    let message_deleted = messages::delete(panel.channel_id, panel.message_id)
        .inspect_err(|e| log::info(format!("panel #{number}: message not deleted: {e:?}")))
        .is_ok();
    store::delete_panel(number)?;
    audit_entry(
        "panel_deleted",
        &format!("panel #{number} in channel {}", panel.channel_id),
    );
    Ok((panel, message_deleted))
}
