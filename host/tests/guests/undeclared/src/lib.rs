//! `undeclared`: declares only `messages` but calls `moderation::kick`, so its
//! component imports `townes:feature/moderation` without declaring it. The host
//! must refuse to install it. Not shipped.

use townes_sdk::{
    Capability, CapabilityRequest, Command, CommandInvocation, Context, Error, Feature, Manifest,
    Reply, moderation,
};

/// The feature.
pub struct Undeclared;

impl Feature for Undeclared {
    fn describe() -> Manifest {
        Manifest::new("undeclared", "0.1.0")
            .description("Imports a capability its manifest does not declare.")
            .command(Command::slash("kick", "Kick yourself"))
            .capability(CapabilityRequest::required(Capability::Messages, "talk"))
    }

    fn on_command(_ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        moderation::kick(invocation.invoker.user.id, None)?;
        Ok(Reply::text("kicked"))
    }
}

townes_sdk::export_feature!(Undeclared);
