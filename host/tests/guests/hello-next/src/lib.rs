//! `hello` 0.2.0, for the host's upgrade and rollback tests. Not shipped.
//!
//! Contract the tests rely on: same id and config as `features/hello`; `/hello`
//! replies `Hello v2, <name>!` and counts in `greetings`; `migrate` stores the
//! version it came from under `migrated-from`, and refuses (invalid-argument)
//! when the guild's greeting count is exactly 13, so tests can see a failed
//! upgrade left alone.

use townes_sdk::{
    Capability, CapabilityRequest, Command, CommandInvocation, Context, Error, EventKind, Feature,
    Manifest, Reply, json, snowflake, storage,
};

pub struct HelloNext;

impl Feature for HelloNext {
    fn describe() -> Manifest {
        Manifest::new("hello", "0.2.0")
            .name("Hello")
            .description("Greets members and counts the greetings (v2).")
            .command(Command::slash_and_prefix("hello", "Say hello"))
            .event(EventKind::MemberJoined)
            .capability(CapabilityRequest::required(
                Capability::Messages,
                "post greetings",
            ))
            .capability(CapabilityRequest::required(
                Capability::Storage,
                "count greetings",
            ))
            .config(
                json!({
                    "type": "object",
                    "properties": {
                        "greeting": {"type": "string", "maxLength": 200},
                        "welcome_channel": snowflake::nullable_schema()
                    },
                    "additionalProperties": false
                }),
                json!({"greeting": "Hello", "welcome_channel": null}),
            )
    }

    fn on_command(_ctx: &Context, invocation: CommandInvocation) -> Result<Reply, Error> {
        storage::increment("greetings", 1)?;
        Ok(Reply::text(format!(
            "Hello v2, {}!",
            invocation.invoker.display_name()
        )))
    }

    fn migrate(_ctx: &Context, from_version: &str) -> Result<(), Error> {
        if storage::get("greetings")?.as_deref() == Some("13") {
            return Err(Error::InvalidArgument(
                "13 greetings: refusing to migrate".into(),
            ));
        }
        storage::set("migrated-from", from_version)
    }
}

townes_sdk::export_feature!(HelloNext);
