//! Interactions (slash commands, buttons, select menus, modal submits) however
//! they arrive — over the gateway or at the HTTP interactions endpoint (`http`):
//! turned into a command or component call, run under guild policy, and
//! answered within Discord's 3-second window, deferring when the feature needs
//! longer and editing the deferred answer when it finishes.

pub mod http;

use crate::commands::{Answer, CommandCall, ComponentCall, Input};
use crate::discord::custom_id::{namespace_body, namespace_modal};
use crate::discord::message_json;
use crate::gateway::convert;
use crate::platform::Platform;
use crate::wit::{InteractionKind, Modal};
use serde_json::{Value, json};
use serenity::all::{ActionRowComponent, ComponentInteractionDataKind, Interaction, Member};
use std::sync::Arc;

/// An interaction response that only the invoking member sees.
const EPHEMERAL: u64 = 1 << 6;

/// Where the first response goes.
pub enum Responder {
    /// `POST /interactions/{id}/{token}/callback` (gateway interactions).
    Callback,
    /// The HTTP response to Discord's POST (the interactions endpoint).
    Http(tokio::sync::oneshot::Sender<Value>),
}

enum Call {
    Command(CommandCall),
    Component(ComponentCall),
}

/// Runs an interaction and answers it. Returns when the answer (or the deferred
/// answer's edit) was delivered.
pub async fn handle(platform: Arc<Platform>, interaction: Interaction, responder: Responder) {
    let (id, token) = match &interaction {
        Interaction::Command(i) => (i.id.get(), i.token.clone()),
        Interaction::Component(i) => (i.id.get(), i.token.clone()),
        Interaction::Modal(i) => (i.id.get(), i.token.clone()),
        // Autocomplete is not offered to features; pings only come over HTTP and
        // are answered there.
        _ => return,
    };
    let call = match call(&interaction) {
        Ok(call) => call,
        Err(notice) => {
            let response = notice_response(&notice);
            deliver_first(&platform, id, &token, responder, response).await;
            return;
        }
    };
    let is_component = matches!(call, Call::Component(_));
    let work = async {
        match call {
            Call::Command(call) => platform.commands.command(call).await,
            Call::Component(call) => platform.commands.component(call).await,
        }
    };
    tokio::pin!(work);
    // Zero means always defer: a zero timeout would still race the work
    // against the timer driver's next turn.
    let answer = if platform.defer_after.is_zero() {
        None
    } else {
        tokio::time::timeout(platform.defer_after, &mut work)
            .await
            .ok()
    };
    let Some(answer) = answer else {
        // Not done in time: acknowledge now, edit the answer in when it is.
        let deferred = if is_component {
            json!({"type": 6})
        } else {
            json!({"type": 5})
        };
        deliver_first(&platform, id, &token, responder, deferred).await;
        let body = edit_body(&work.await);
        if let Err(error) = platform
            .executor
            .edit_original(platform.application_id, &token, &body)
            .await
        {
            tracing::warn!(%error, interaction = id, "could not edit a deferred answer");
        }
        return;
    };
    let response = response(&answer, is_component);
    deliver_first(&platform, id, &token, responder, response).await;
}

async fn deliver_first(
    platform: &Platform,
    id: u64,
    token: &str,
    responder: Responder,
    response: Value,
) {
    match responder {
        Responder::Http(reply) => {
            // The endpoint stopped waiting only if Discord hung up; nothing to do.
            let _ = reply.send(response);
        }
        Responder::Callback => {
            if let Err(error) = platform
                .executor
                .interaction_callback(id, token, &response)
                .await
            {
                tracing::warn!(%error, interaction = id, "could not answer an interaction");
            }
        }
    }
}

/// The call an interaction makes, or a notice when it cannot be made here.
fn call(interaction: &Interaction) -> Result<Call, String> {
    const GUILDS_ONLY: &str = "Commands work in servers only.";
    match interaction {
        Interaction::Command(i) => {
            let (guild_id, member) = i.guild_id.zip(i.member.as_deref()).ok_or(GUILDS_ONLY)?;
            let (subcommand, arguments) = convert::command_options(&i.data.options);
            Ok(Call::Command(CommandCall {
                guild_id: guild_id.get(),
                channel_id: i.channel_id.get(),
                invoker: convert::member(member),
                invoker_permissions: permissions(member),
                bot_permissions: i.app_permissions.map(|p| p.bits()),
                name: i.data.name.clone(),
                input: Input::Slash {
                    subcommand,
                    arguments,
                },
            }))
        }
        Interaction::Component(i) => {
            let (guild_id, member) = i.guild_id.zip(i.member.as_ref()).ok_or(GUILDS_ONLY)?;
            let (kind, values) = match &i.data.kind {
                ComponentInteractionDataKind::Button => (InteractionKind::Button, vec![]),
                ComponentInteractionDataKind::StringSelect { values } => {
                    (InteractionKind::SelectMenu, values.clone())
                }
                _ => return Err("This kind of menu is not supported.".into()),
            };
            Ok(Call::Component(ComponentCall {
                guild_id: guild_id.get(),
                channel_id: i.channel_id.get(),
                invoker: convert::member(member),
                invoker_permissions: permissions(member),
                kind,
                custom_id: i.data.custom_id.clone(),
                values,
                fields: vec![],
                message_id: Some(i.message.id.get()),
            }))
        }
        Interaction::Modal(i) => {
            let (guild_id, member) = i.guild_id.zip(i.member.as_ref()).ok_or(GUILDS_ONLY)?;
            let fields = i
                .data
                .components
                .iter()
                .flat_map(|row| &row.components)
                .filter_map(|c| match c {
                    ActionRowComponent::InputText(input) => Some((
                        input.custom_id.clone(),
                        input.value.clone().unwrap_or_default(),
                    )),
                    _ => None,
                })
                .collect();
            Ok(Call::Component(ComponentCall {
                guild_id: guild_id.get(),
                channel_id: i.channel_id.get(),
                invoker: convert::member(member),
                invoker_permissions: permissions(member),
                kind: InteractionKind::ModalSubmit,
                custom_id: i.data.custom_id.clone(),
                values: vec![],
                fields,
                message_id: i.message.as_ref().map(|m| m.id.get()),
            }))
        }
        _ => Err("This interaction is not supported.".into()),
    }
}

/// The member's permissions in the channel, as Discord computed them for the
/// interaction.
fn permissions(member: &Member) -> u64 {
    member.permissions.map_or(0, |p| p.bits())
}

fn notice_response(notice: &str) -> Value {
    let mut data = text_data(notice);
    data["flags"] = json!(EPHEMERAL);
    json!({"type": 4, "data": data})
}

/// A message of plain host text, pinging nobody.
fn text_data(text: &str) -> Value {
    json!({"content": text, "allowed_mentions": {"parse": []}})
}

/// The first (and only) response to an interaction answered in time.
pub fn response(answer: &Answer, is_component: bool) -> Value {
    match answer {
        Answer::Reply { feature_id, reply } => {
            if let Some(modal) = &reply.modal {
                return match namespace_modal(feature_id, modal) {
                    Ok(modal) => json!({"type": 9, "data": modal_json(&modal)}),
                    Err(problem) => invalid_reply(feature_id, &problem),
                };
            }
            if reply.body.content.is_none() && reply.body.embeds.is_empty() {
                // Nothing to say: acknowledge (a click that only changed state).
                return if is_component {
                    json!({"type": 6})
                } else {
                    notice_response("Done.")
                };
            }
            match namespace_body(feature_id, &reply.body) {
                Ok(body) => {
                    let mut data = message_json(&body);
                    if reply.ephemeral {
                        data["flags"] = json!(EPHEMERAL);
                    }
                    json!({"type": 4, "data": data})
                }
                Err(problem) => invalid_reply(feature_id, &problem),
            }
        }
        Answer::Silent if is_component => json!({"type": 6}),
        other => notice_response(&other.notice().unwrap_or_else(|| "Done.".into())),
    }
}

/// The edit that replaces a deferred response.
fn edit_body(answer: &Answer) -> Value {
    match answer {
        Answer::Reply { feature_id, reply } if reply.modal.is_none() => {
            match namespace_body(feature_id, &reply.body) {
                Ok(body) => message_json(&body),
                Err(problem) => text_data(&problem),
            }
        }
        Answer::Reply { .. } => text_data("This form took too long to open; please try again."),
        other => text_data(&other.notice().unwrap_or_else(|| "Done.".into())),
    }
}

fn invalid_reply(feature_id: &str, problem: &str) -> Value {
    tracing::warn!(
        feature = feature_id,
        problem,
        "a feature's reply could not be sent"
    );
    notice_response(
        "This feature gave an answer Discord would not accept; its author has to fix it.",
    )
}

fn modal_json(modal: &Modal) -> Value {
    let rows: Vec<Value> = modal
        .inputs
        .iter()
        .map(|input| {
            let mut text = json!({
                "type": 4,
                "custom_id": input.custom_id,
                "label": input.label,
                "style": if input.paragraph { 2 } else { 1 },
                "required": input.required,
            });
            if let Some(placeholder) = &input.placeholder {
                text["placeholder"] = json!(placeholder);
            }
            if let Some(max) = input.max_length {
                text["max_length"] = json!(max);
            }
            json!({"type": 1, "components": [text]})
        })
        .collect();
    json!({"custom_id": modal.custom_id, "title": modal.title, "components": rows})
}
