//! `frozen_v0_1`: a feature built against `townes:feature@0.1.0` exactly as it
//! was released (its own copy in `wit/`, never to be edited). It proves that
//! the host's later contract versions keep every 0.1.0 component running:
//! it uses the handlers, `storage`, `messages`, `invocation`, `config` and
//! `log`, and exports neither `api` nor `lifecycle`. Not shipped. Uses
//! wit-bindgen directly, not the SDK, which moves on with the contract.

#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({
        world: "feature",
        path: "wit",
    });
}

use bindings::townes::feature::log::Level;
use bindings::townes::feature::types::{
    Capability, CapabilityRequest, Command, CommandInvocation, ComponentInteraction, Context,
    Error, Event, EventKind, Manifest, MessageBody, Reply, ScheduledJob,
};
use bindings::townes::feature::{config, invocation, log, messages, storage};

struct Frozen;

fn text(content: String) -> MessageBody {
    MessageBody {
        content: Some(content),
        embeds: Vec::new(),
        components: Vec::new(),
    }
}

impl bindings::Guest for Frozen {
    fn describe() -> Manifest {
        let request = |capability, reason: &str| CapabilityRequest {
            capability,
            required: true,
            reason: reason.into(),
        };
        Manifest {
            id: "frozen".into(),
            version: "0.1.0".into(),
            name: "Frozen 0.1.0".into(),
            description: "Built against townes:feature@0.1.0 and never rebuilt.".into(),
            commands: vec![Command {
                name: "frozen".into(),
                description: "Counts, and tells what it was shown".into(),
                options: Vec::new(),
                subcommands: Vec::new(),
                slash: true,
                prefix: true,
                default_permissions: None,
            }],
            events: vec![EventKind::MessageCreated],
            capabilities: vec![
                request(Capability::Storage, "counts its runs"),
                request(Capability::Messages, "echoes messages"),
                request(Capability::MessageContent, "reads what it echoes"),
            ],
            config_schema: r#"{"type":"object","properties":{"prefix":{"type":"string"}}}"#.into(),
            default_config: r#"{"prefix":"frozen"}"#.into(),
        }
    }

    fn on_event(_ctx: Context, event: Event) -> Result<(), Error> {
        let Event::MessageCreated(message) = event else {
            return Ok(());
        };
        if message.author.bot || !message.content.starts_with("!echo ") {
            return Ok(());
        }
        // The configuration is read, as 0.1.0 features do, before acting.
        config::get()?;
        let echoed = format!("frozen echo: {}", &message.content["!echo ".len()..]);
        messages::send(message.channel_id, &text(echoed))?;
        storage::increment("echoes", 1)?;
        Ok(())
    }

    fn on_command(_ctx: Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        let runs = storage::increment("runs", 1)?;
        let permissions = invocation::invoker_permissions();
        log::write(Level::Info, &format!("frozen ran {runs} times"));
        Ok(Reply {
            body: text(format!(
                "frozen #{runs} for {} with permissions {permissions}",
                invocation.invoker.user.username
            )),
            ephemeral: false,
            modal: None,
        })
    }

    fn on_component(_ctx: Context, _interaction: ComponentInteraction) -> Result<Reply, Error> {
        Err(Error::InvalidArgument("frozen has no components".into()))
    }

    fn on_schedule(_ctx: Context, _job: ScheduledJob) -> Result<(), Error> {
        Ok(())
    }

    fn migrate(_ctx: Context, from_version: String) -> Result<(), Error> {
        storage::set("migrated-from", &from_version)
    }
}

bindings::export!(Frozen with_types_in bindings);
