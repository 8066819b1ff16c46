//! A feature with components, for the host's end-to-end tests. Not shipped.
//!
//! Contract the tests rely on: `/panel` replies "Pick one" with a button
//! (`yes`), a moderators' button (`sweep`) and a select menu (`flavour`:
//! vanilla, chocolate); a click answers "clicked yes"; `sweep` answers "swept"
//! when the clicker holds Manage Messages and "only moderators may sweep"
//! otherwise; a choice answers "chose <values joined by ,>"; `/form` opens a
//! modal `survey` with a text input `name`; its submit answers "thanks <name>".

use townes_sdk::{
    ActionRow, Button, Command, CommandInvocation, ComponentInteraction, Context, Error, Feature,
    InteractionKind, Manifest, MessageBody, Modal, Reply, SelectMenu, TextInput, invocation, json,
};

const MANAGE_MESSAGES: u64 = 1 << 13;

pub struct Panel;

impl Feature for Panel {
    fn describe() -> Manifest {
        Manifest::new("panel", "0.1.0")
            .name("Panel")
            .description("Buttons, menus and forms, for tests.")
            .command(Command::slash("panel", "Show the panel"))
            .command(Command::slash("form", "Open the form"))
            .config(json!({"type": "object"}), json!({}))
    }

    fn on_command(_ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        match invocation.name.as_str() {
            "panel" => Ok(MessageBody::text("Pick one")
                .with_row(
                    ActionRow::new()
                        .button(Button::primary("yes", "Yes"))
                        .button(Button::danger("sweep", "Sweep")),
                )
                .with_row(
                    ActionRow::new().select(
                        SelectMenu::new("flavour")
                            .option("Vanilla", "vanilla")
                            .option("Chocolate", "chocolate"),
                    ),
                )
                .into()),
            _ => Ok(Reply::modal(
                Modal::new("survey", "Survey").input(TextInput::short("name", "Your name")),
            )),
        }
    }

    fn on_component(_ctx: &Context, interaction: ComponentInteraction) -> Result<Reply, Error> {
        let answer = match interaction.kind {
            InteractionKind::Button if interaction.custom_id == "sweep" => {
                if invocation::invoker_permissions() & MANAGE_MESSAGES != 0 {
                    "swept".to_string()
                } else {
                    "only moderators may sweep".to_string()
                }
            }
            InteractionKind::Button => format!("clicked {}", interaction.custom_id),
            InteractionKind::SelectMenu => format!("chose {}", interaction.values.join(",")),
            InteractionKind::ModalSubmit => {
                let name = interaction
                    .fields
                    .iter()
                    .find(|(id, _)| id == "name")
                    .map_or("nobody", |(_, value)| value.as_str());
                format!("thanks {name}")
            }
        };
        Ok(Reply::text(answer))
    }
}

townes_sdk::export_feature!(Panel);
