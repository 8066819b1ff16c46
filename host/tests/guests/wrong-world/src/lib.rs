//! `wrong_world`: a component built against `townes:feature@1.0.0` (see its own
//! `wit/`), a major version this host does not speak. The host must refuse to
//! install it. Not shipped. Uses wit-bindgen directly, not the SDK.

#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({
        world: "feature",
        path: "wit",
    });
}

use bindings::townes::feature::log::Level;
use bindings::townes::feature::types::{
    CommandInvocation, ComponentInteraction, Context, Error, Event, Manifest, Reply, ScheduledJob,
};

struct WrongWorld;

fn unsupported() -> Error {
    Error::InvalidArgument("wrong_world does nothing".into())
}

impl bindings::Guest for WrongWorld {
    fn describe() -> Manifest {
        Manifest {
            id: "wrong-world".into(),
            version: "1.0.0".into(),
            name: "Wrong world".into(),
            description: "Built for townes:feature@1.0.0.".into(),
            commands: Vec::new(),
            events: Vec::new(),
            capabilities: Vec::new(),
            config_schema: r#"{"type":"object"}"#.into(),
            default_config: "{}".into(),
        }
    }

    fn on_event(_ctx: Context, _event: Event) -> Result<(), Error> {
        // Links a 1.0.0 capability import too, not only the types interface.
        bindings::townes::feature::log::write(Level::Info, "wrong_world got an event");
        Ok(())
    }

    fn on_command(_ctx: Context, _invocation: CommandInvocation) -> Result<Reply, Error> {
        Err(unsupported())
    }

    fn on_component(_ctx: Context, _interaction: ComponentInteraction) -> Result<Reply, Error> {
        Err(unsupported())
    }

    fn on_schedule(_ctx: Context, _job: ScheduledJob) -> Result<(), Error> {
        Ok(())
    }

    fn migrate(_ctx: Context, _from_version: String) -> Result<(), Error> {
        Ok(())
    }
}

bindings::export!(WrongWorld with_types_in bindings);
