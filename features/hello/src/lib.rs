//! `hello`: the example feature. `/hello` (or the prefix command) greets the
//! invoker and counts greetings per server; new members are welcomed in a
//! configured channel.

use serde::Deserialize;
use townes_sdk::{
    Capability, CapabilityRequest, Command, CommandInvocation, Context, Error, Event, EventKind,
    Feature, Manifest, Reply, Snowflake, config, json, log, messages, snowflake, storage,
};

/// The feature.
pub struct Hello;

/// The guild's configuration (see the schema in [`Hello::describe`]).
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The word of greeting.
    pub greeting: String,
    /// Where new members are welcomed; no welcome when unset. An integer or a
    /// decimal string (what dashboards send: JavaScript numbers cannot hold ids).
    #[serde(deserialize_with = "snowflake::de_opt")]
    pub welcome_channel: Option<Snowflake>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            greeting: "Hello".into(),
            welcome_channel: None,
        }
    }
}

impl Feature for Hello {
    fn describe() -> Manifest {
        Manifest::new("hello", "0.1.0")
            .name("Hello")
            .description("Greets members and counts the greetings.")
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
        if invocation.name != "hello" {
            return Err(Error::invalid("unknown command"));
        }
        let config: Config = config::get_json()?;
        let name = invocation.invoker.display_name();
        // Without storage (quota used up, an outage) still greet, just uncounted.
        match storage::increment("greetings", 1) {
            Ok(n) => Ok(Reply::text(format!(
                "{}, {name}! (greeting #{n} in this server)",
                config.greeting
            ))),
            Err(e) => {
                log::warn(format!("greeting not counted: {e:?}"));
                Ok(Reply::text(format!("{}, {name}!", config.greeting)))
            }
        }
    }

    fn on_event(_ctx: &Context, event: Event) -> Result<(), Error> {
        let Event::MemberJoined(member) = event else {
            return Ok(());
        };
        let config: Config = config::get_json()?;
        if let Some(channel) = config.welcome_channel {
            let text = format!("{}, {}!", config.greeting, member.mention());
            messages::send(channel, text)?;
        }
        Ok(())
    }
}

townes_sdk::export_feature!(Hello);

#[cfg(test)]
mod tests {
    use super::*;
    use townes_sdk::{Member, User, json, testing::MockHost};

    fn ann() -> Member {
        Member::new(User::new(7, "ann").with_global_name("Ann"))
    }

    fn hello(host: &MockHost) -> Result<Reply, Error> {
        Hello::on_command(&host.context(), CommandInvocation::new("hello", ann(), 42))
    }

    #[test]
    fn replies_with_greeting_and_counts_per_server() {
        let host = MockHost::for_feature::<Hello>();
        assert_eq!(
            hello(&host).unwrap().content(),
            Some("Hello, Ann! (greeting #1 in this server)")
        );
        host.set_config(json!({"greeting": "Ahoy", "welcome_channel": null}));
        assert_eq!(
            hello(&host).unwrap().content(),
            Some("Ahoy, Ann! (greeting #2 in this server)")
        );
        assert_eq!(host.storage_value("greetings").as_deref(), Some("2"));
        assert!(host.sent_messages().is_empty(), "the greeting is the reply");
    }

    #[test]
    fn uses_the_nickname() {
        let host = MockHost::for_feature::<Hello>();
        let inv = CommandInvocation::new("hello", ann().with_nick("Annie"), 42);
        let reply = Hello::on_command(&host.context(), inv).unwrap();
        assert_eq!(
            reply.content(),
            Some("Hello, Annie! (greeting #1 in this server)")
        );
    }

    #[test]
    fn welcomes_only_when_a_channel_is_configured() {
        let host = MockHost::for_feature::<Hello>();
        Hello::on_event(&host.context(), Event::MemberJoined(ann())).unwrap();
        assert!(host.sent_messages().is_empty());

        host.set_config(json!({"greeting": "Welcome", "welcome_channel": 99}));
        Hello::on_event(&host.context(), Event::MemberJoined(ann())).unwrap();
        let sent = host.sent_messages();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, 99);
        assert_eq!(sent[0].1.content.as_deref(), Some("Welcome, <@7>!"));
    }

    #[test]
    fn the_welcome_channel_may_be_a_string_or_an_integer() {
        // Above 2^53: dashboards send it as a string, old configs as an integer.
        const BIG: Snowflake = 1_100_000_000_000_000_001;
        for channel in [json!("1100000000000000001"), json!(BIG)] {
            let host = MockHost::for_feature::<Hello>();
            host.set_config(json!({"greeting": "Hi", "welcome_channel": channel}));
            Hello::on_event(&host.context(), Event::MemberJoined(ann())).unwrap();
            let sent = host.sent_messages();
            assert_eq!(sent.len(), 1, "{channel}");
            assert_eq!(sent[0].0, BIG, "{channel}");
        }
        let host = MockHost::for_feature::<Hello>();
        host.set_config(json!({"welcome_channel": "general"}));
        assert!(matches!(
            Hello::on_event(&host.context(), Event::MemberJoined(ann())),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn without_storage_it_still_greets_uncounted() {
        let host = MockHost::for_feature::<Hello>();
        host.deny(Capability::Storage);
        assert_eq!(hello(&host).unwrap().content(), Some("Hello, Ann!"));
        assert_eq!(host.logs().len(), 1);
    }

    #[test]
    fn a_denied_welcome_channel_is_an_error() {
        let host = MockHost::for_feature::<Hello>();
        host.set_config(json!({"greeting": "Hi", "welcome_channel": 99}));
        host.deny(Capability::Messages);
        assert_eq!(
            Hello::on_event(&host.context(), Event::MemberJoined(ann())),
            Err(Error::Denied(Capability::Messages))
        );
    }

    #[test]
    fn unknown_commands_are_rejected() {
        let host = MockHost::for_feature::<Hello>();
        let inv = CommandInvocation::new("bye", ann(), 42);
        assert!(matches!(
            Hello::on_command(&host.context(), inv),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn the_manifest_is_consistent() {
        let m = Hello::describe();
        assert_eq!((m.id.as_str(), m.version.as_str()), ("hello", "0.1.0"));
        let schema: townes_sdk::serde_json::Value = serde_json_parse(&m.config_schema);
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(
            schema["properties"]["welcome_channel"],
            snowflake::nullable_schema()
        );
        let default: townes_sdk::serde_json::Value = serde_json_parse(&m.default_config);
        assert_eq!(
            default,
            json!({"greeting": "Hello", "welcome_channel": null})
        );
        assert!(m.commands[0].slash && m.commands[0].prefix);
    }

    fn serde_json_parse(s: &str) -> townes_sdk::serde_json::Value {
        townes_sdk::serde_json::from_str(s).unwrap()
    }
}
