//! Buttons, the close form and the slash commands: who is acting, may they,
//! and what they are told.
//!
//! A refusal — not allowed, a limit reached, a ticket already closed — is an
//! ephemeral sentence to the member, not an error: errors are for what went
//! wrong, and the host counts them against the feature.

use crate::actions;
use crate::panels::{self, PanelDraft};
use crate::store::{self, Status, Ticket};
use crate::{Config, permissions::*};
use townes_sdk::{
    CommandInvocation, ComponentInteraction, Context, Error, Member, Modal, Reply, Snowflake,
    TextInput, invocation,
};

fn say(text: impl Into<String>) -> Reply {
    Reply::text(text).ephemeral()
}

/// Turns a refusal (`InvalidArgument`) or a vanished ticket or panel
/// (`NotFound`) into an ephemeral answer; other errors stay errors.
fn politely(result: Result<Reply, Error>) -> Result<Reply, Error> {
    match result {
        Err(Error::InvalidArgument(why)) => Ok(say(why)),
        Err(Error::NotFound(what)) => Ok(say(format!("That no longer exists ({what})."))),
        other => other,
    }
}

/// The member acting through Discord and their permissions in the channel.
struct Actor<'a> {
    member: &'a Member,
    permissions: u64,
}

impl<'a> Actor<'a> {
    fn new(member: &'a Member) -> Self {
        Actor {
            member,
            permissions: invocation::invoker_permissions(),
        }
    }

    fn id(&self) -> Snowflake {
        self.member.user.id
    }

    fn manages_channels(&self) -> bool {
        self.permissions & (MANAGE_CHANNELS | ADMINISTRATOR) != 0
    }

    /// Holds one of the ticket's support roles, or manages channels anyway.
    fn supports(&self, ticket: &Ticket) -> bool {
        self.manages_channels()
            || ticket
                .support_roles
                .iter()
                .any(|&role| self.member.has_role(role))
    }

    fn may_close(&self, ticket: &Ticket) -> bool {
        self.supports(ticket) || self.id() == ticket.opener_id
    }
}

const SUPPORT_ONLY: &str = "Only the support team can do that.";
const CLOSERS_ONLY: &str =
    "Only the support team or the member who opened this ticket can close it.";

/// `("claim", 7)` from `claim:7`.
pub fn parse_custom_id(custom_id: &str) -> Option<(&str, u64)> {
    let (action, number) = custom_id.split_once(':')?;
    Some((action, number.parse().ok()?))
}

fn close_form(number: u64) -> Modal {
    Modal::new(
        format!("close-form:{number}"),
        format!("Close ticket #{number}"),
    )
    .input(
        TextInput::paragraph("reason", "Reason")
            .optional()
            .placeholder("Why is it closed? The opener sees this.")
            .max_length(actions::MAX_REASON as u16),
    )
}

// -------------------------------------------------------------- components

pub fn on_component(ctx: &Context, interaction: ComponentInteraction) -> Result<Reply, Error> {
    let Some((action, number)) = parse_custom_id(&interaction.custom_id) else {
        return Err(Error::invalid("unknown component"));
    };
    match action {
        "open" => return politely(open(ctx, &interaction.invoker, number)),
        "claim" | "unclaim" | "close" | "close-form" | "reopen" | "delete" => {}
        _ => return Err(Error::invalid("unknown component")),
    }
    let actor = Actor::new(&interaction.invoker);
    politely(ticket_button(
        &actor,
        action,
        number,
        interaction.field("reason"),
    ))
}

/// A button on a ticket (or its close form): `claim`, `unclaim`, `close`,
/// `close-form`, `reopen`, `delete`.
fn ticket_button(
    actor: &Actor,
    action: &str,
    number: u64,
    reason: Option<&str>,
) -> Result<Reply, Error> {
    let ticket = store::load_ticket(number)?;
    match action {
        "claim" => claim(actor, &ticket),
        "unclaim" => unclaim(actor, &ticket),
        "close" if !actor.may_close(&ticket) => Ok(say(CLOSERS_ONLY)),
        "close" if ticket.status != Status::Open => Ok(say(format!(
            "Ticket #{number} is already {}.",
            ticket.status.as_str()
        ))),
        "close" => Ok(Reply::modal(close_form(number))),
        "close-form" => close(actor, &ticket, reason),
        "reopen" if !actor.supports(&ticket) => Ok(say(SUPPORT_ONLY)),
        "reopen" => {
            actions::reopen(&Config::load()?, number, Some(actor.id()))?;
            Ok(say(format!("Ticket #{number} is open again.")))
        }
        "delete" if !actor.supports(&ticket) => Ok(say(SUPPORT_ONLY)),
        "delete" => {
            actions::delete(&Config::load()?, number, Some(actor.id()))?;
            Ok(say(format!(
                "Ticket #{number} is deleted; its transcript is kept."
            )))
        }
        _ => Err(Error::invalid("unknown component")),
    }
}

fn open(ctx: &Context, opener: &Member, panel_number: u64) -> Result<Reply, Error> {
    if opener.user.bot {
        return Ok(say("Bots cannot open tickets."));
    }
    let panel = match store::load_panel(panel_number) {
        Err(Error::NotFound(_)) => {
            return Ok(say(
                "This panel was removed; ask the staff where to open a ticket now.",
            ));
        }
        panel => panel?,
    };
    let ticket = actions::open(ctx, &Config::load()?, &panel, opener)?;
    Ok(say(format!(
        "Your ticket is open: <#{}>",
        ticket.channel_id
    )))
}

fn claim(actor: &Actor, ticket: &Ticket) -> Result<Reply, Error> {
    if !actor.supports(ticket) {
        return Ok(say("Only the support team can claim tickets."));
    }
    actions::claim(ticket.number, actor.id())?;
    Ok(say(format!("You hold ticket #{} now.", ticket.number)))
}

fn unclaim(actor: &Actor, ticket: &Ticket) -> Result<Reply, Error> {
    match ticket.claimed_by {
        None => return Ok(say(format!("Ticket #{} is not claimed.", ticket.number))),
        Some(holder) if holder != actor.id() && !actor.manages_channels() => {
            return Ok(say(format!(
                "Only <@{holder}>, who claimed it, or someone who can manage channels can unclaim this ticket."
            )));
        }
        Some(_) => {}
    }
    actions::unclaim(ticket.number, Some(actor.id()))?;
    Ok(say(format!(
        "Ticket #{} is free for another supporter.",
        ticket.number
    )))
}

fn close(actor: &Actor, ticket: &Ticket, reason: Option<&str>) -> Result<Reply, Error> {
    if !actor.may_close(ticket) {
        return Ok(say(CLOSERS_ONLY));
    }
    let reason = actions::clean_reason(reason)?;
    actions::close(&Config::load()?, ticket.number, Some(actor.id()), reason)?;
    Ok(say(format!("Ticket #{} is closed.", ticket.number)))
}

// ---------------------------------------------------------------- commands

pub fn on_command(ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
    match invocation.name.as_str() {
        "ticket-panel" => politely(create_panel(ctx, &invocation)),
        "ticket" => politely(ticket_command(ctx, &invocation)),
        _ => Err(Error::invalid("unknown command")),
    }
}

fn create_panel(ctx: &Context, invocation: &CommandInvocation) -> Result<Reply, Error> {
    if invocation.subcommand.as_deref() != Some("create") {
        return Err(Error::invalid("unknown subcommand"));
    }
    let channel_id = invocation
        .channel_arg("channel")
        .ok_or_else(|| Error::invalid("Name the channel to post the panel in."))?;
    let text = |name: &str| invocation.text_arg(name).map(str::to_string);
    let draft = PanelDraft {
        channel_id,
        title: text("title").unwrap_or_default(),
        description: text("description"),
        button_label: text("label"),
        button_emoji: text("emoji"),
        category_id: invocation.channel_arg("category"),
        support_roles: invocation.role_arg("support_role").into_iter().collect(),
    };
    let panel = panels::create_panel(ctx, draft)?;
    Ok(say(format!(
        "Panel #{} is up in <#{}>.",
        panel.number, panel.channel_id
    )))
}

/// `/ticket …`: acts on the ticket of the channel it runs in.
fn ticket_command(ctx: &Context, invocation: &CommandInvocation) -> Result<Reply, Error> {
    let Some(number) = store::ticket_number_in(invocation.channel_id)? else {
        return Ok(say(
            "This is not a ticket channel; run the command inside the ticket.",
        ));
    };
    let ticket = store::load_ticket(number)?;
    let actor = Actor::new(&invocation.invoker);
    let user = || {
        invocation
            .user_arg("user")
            .ok_or_else(|| Error::invalid("Name the member: `user`."))
    };
    match invocation.subcommand.as_deref() {
        Some("close") => close(&actor, &ticket, invocation.text_arg("reason")),
        Some("claim") => claim(&actor, &ticket),
        Some("add") if !actor.supports(&ticket) => Ok(say(SUPPORT_ONLY)),
        Some("add") => {
            let user_id = user()?;
            actions::add_member(&ticket, user_id, actor.id())?;
            Ok(say(format!("<@{user_id}> can see this ticket now.")))
        }
        Some("remove") if !actor.supports(&ticket) => Ok(say(SUPPORT_ONLY)),
        Some("remove") => {
            let user_id = user()?;
            actions::remove_member(ctx, &ticket, user_id, actor.id())?;
            Ok(say(format!("<@{user_id}> no longer sees this ticket.")))
        }
        _ => Err(Error::invalid("unknown subcommand")),
    }
}
