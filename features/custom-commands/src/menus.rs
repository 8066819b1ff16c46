//! Multi-page menus: a command with `menu_pages` answers with page 1 and
//! ◀ Previous / Next ▶ buttons.
//!
//! The buttons carry all their state in their custom ids, `page:{command}:{n}`
//! (`n` from 1), so they keep working after a restart and on any instance.
//! The middle button (`page:{command}:{current}`, disabled) shows `n / total`.
//!
//! A click is answered with the page as a new **ephemeral** reply, for the
//! member who clicked: the contract has no way to answer a click by updating
//! the message it is on (the host answers component replies with a new
//! message, Discord's type 4, or a bare acknowledgement, type 6 — never
//! type 7, "update message"). Editing the original with `messages::edit`
//! would page the menu for everyone at once, so it is not done.

use crate::commands;
use crate::store::{self, CustomCommand};
use crate::variables::{Invoker, Vars};
use townes_sdk::{ActionRow, Button, ComponentInteraction, Context, Error, MessageBody, Reply};

/// The custom ids' prefix.
pub const PAGE_PREFIX: &str = "page:";
/// The most pages a menu may have.
pub const MAX_PAGES: usize = 10;

pub fn custom_id(command: &str, page: usize) -> String {
    format!("{PAGE_PREFIX}{command}:{page}")
}

/// Page `page` (1-based, in range) of a menu command, with its buttons.
pub fn page_body(command: &CustomCommand, page: usize, vars: &mut Vars) -> MessageBody {
    let total = command.menu_pages.len();
    let body = vars.body(&command.menu_pages[page - 1]);
    if total < 2 {
        return body;
    }
    let mut previous = Button::primary(custom_id(&command.name, page - 1), "◀ Previous");
    let mut next = Button::primary(custom_id(&command.name, page + 1), "Next ▶");
    if page == 1 {
        previous = previous.disabled();
    }
    if page == total {
        next = next.disabled();
    }
    let at =
        Button::secondary(custom_id(&command.name, page), format!("{page} / {total}")).disabled();
    body.with_row(ActionRow::new().button(previous).button(at).button(next))
}

/// A click on a page button.
pub fn on_click(ctx: &Context, interaction: ComponentInteraction) -> Result<Reply, Error> {
    let Some(rest) = interaction.custom_id.strip_prefix(PAGE_PREFIX) else {
        return Err(Error::invalid("unknown component"));
    };
    let refuse = |text: String| Ok(Reply::text(text).ephemeral());
    let Some((name, page)) = rest
        .rsplit_once(':')
        .filter(|(name, _)| commands::valid_name(name))
    else {
        return refuse("That button isn't one of my menus.".into());
    };
    let Some(command) = store::load_command(name)? else {
        return refuse(format!("The `{name}` menu doesn't exist any more."));
    };
    let total = command.menu_pages.len();
    if total == 0 {
        return refuse(format!("`{name}` isn't a menu any more."));
    }
    let Some(page) = page
        .parse::<usize>()
        .ok()
        .filter(|p| (1..=total).contains(p))
    else {
        return refuse(format!(
            "That page doesn't exist: `{name}` has pages 1 to {total}."
        ));
    };
    let mut invoker = Invoker::member(interaction.invoker);
    if let Some(why) = commands::refusal(&command, &mut invoker, name) {
        return refuse(why);
    }
    let mut vars = Vars::new(invoker, ctx.guild_id, interaction.channel_id, Vec::new());
    let body = page_body(&command, page, &mut vars);
    if body.validate().is_err() {
        return refuse(format!("Page {page} of `{name}` has nothing I can send."));
    }
    Ok(Reply::from(body).ephemeral())
}
