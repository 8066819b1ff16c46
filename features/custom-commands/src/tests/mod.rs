//! The feature against the SDK's mock host: no host, no wasm.
//!
//! Besides helpers that type messages, run slash commands, click and call
//! routes as the host would, this module has a small JSON Schema checker
//! ([`schema_problems`]) for the keywords the feature uses, so the default
//! config, every route's examples and every route call's request and answer
//! are checked against what the manifest and routes declare.

mod commands;
mod menus;
mod responders;
mod routes;
mod tags;

use crate::*;
use townes_sdk::serde_json::Value;
use townes_sdk::testing::{BOT_USER_ID, GUILD_ID, MockHost};
use townes_sdk::{
    ApiCaller, CommandArgument, GuildInfo, Member, Message, MessageBody, Method, OptionValue,
    Snowflake, UiComponent, User,
};

pub const ANN: Snowflake = 42;
pub const BOB: Snowflake = 43;
/// A user who left: `members::get` does not find them.
pub const GHOST: Snowflake = 44;
pub const HELPER_ROLE: Snowflake = 500;
pub const VIP_ROLE: Snowflake = 501;
pub const GENERAL: Snowflake = 300;
pub const MEMES: Snowflake = 301;
/// The clock tests start at.
pub const T0: u64 = 1_800_000_000;

pub fn member(id: Snowflake) -> Member {
    match id {
        ANN => Member::new(User::new(ANN, "ann").with_global_name("Ann A."))
            .with_nick("Annie")
            .with_role(HELPER_ROLE),
        BOB => Member::new(User::new(BOB, "bob")),
        _ => Member::new(User::new(id, "ghost")),
    }
}

/// The mock as the host sets it up after an install that grants everything.
pub fn host() -> MockHost {
    let host = MockHost::for_feature::<CustomCommands>();
    host.add_member(member(ANN));
    host.add_member(member(BOB));
    let mut guild = GuildInfo::new(GUILD_ID, "Rust Town", 2);
    guild.member_count = 1234;
    host.set_guild(guild);
    townes_sdk::testing::set_now(T0);
    host
}

/// `by` writes `content` in `channel`; answers what the feature sent.
pub fn say(host: &MockHost, by: Snowflake, channel: Snowflake, content: &str) -> Vec<MessageBody> {
    say_as(host, member(by).user, channel, content)
}

pub fn say_as(
    host: &MockHost,
    author: User,
    channel: Snowflake,
    content: &str,
) -> Vec<MessageBody> {
    host.clear_effects();
    let message = Message::new(9_000, channel, author, content);
    CustomCommands::on_event(&host.context(), Event::MessageCreated(message))
        .unwrap_or_else(|e| panic!("{content:?}: {e:?}"));
    host.sent_messages()
        .into_iter()
        .map(|(c, body)| {
            assert_eq!(c, channel, "answers go to the message's channel");
            body
        })
        .collect()
}

/// The one text the feature answered with.
pub fn said(host: &MockHost, by: Snowflake, channel: Snowflake, content: &str) -> String {
    let sent = say(host, by, channel, content);
    assert_eq!(sent.len(), 1, "{content:?} → {sent:?}");
    sent[0].content.clone().unwrap_or_default()
}

pub fn slash(host: &MockHost, name: &str, args: &[(&str, &str)], by: Snowflake) -> Reply {
    let mut invocation = CommandInvocation::new(name, member(by), GENERAL);
    invocation.arguments = args
        .iter()
        .map(|(n, v)| CommandArgument {
            name: n.to_string(),
            value: OptionValue::Text(v.to_string()),
        })
        .collect();
    CustomCommands::on_command(&host.context(), invocation)
        .unwrap_or_else(|e| panic!("/{name}: {e:?}"))
}

pub fn click(host: &MockHost, custom_id: &str, by: Snowflake) -> Reply {
    let interaction = ComponentInteraction::button(custom_id, member(by), GENERAL).on_message(77);
    CustomCommands::on_component(&host.context(), interaction)
        .unwrap_or_else(|e| panic!("{custom_id}: {e:?}"))
}

/// `(custom id, label, disabled)` of a message's buttons.
pub fn buttons(body: &MessageBody) -> Vec<(String, String, bool)> {
    body.components
        .iter()
        .flat_map(|row| &row.components)
        .filter_map(|c| match c {
            UiComponent::Button(b) => Some((
                b.custom_id.clone().unwrap_or_default(),
                b.label.clone(),
                b.disabled,
            )),
            _ => None,
        })
        .collect()
}

/// A route call as the host makes it, checked against the route's declared
/// request and response schemas; answers `(status, body)`.
pub fn api(
    host: &MockHost,
    method: Method,
    route: &str,
    param: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), Error> {
    let param_name = if route.contains("{name}") {
        "name"
    } else {
        "id"
    };
    let request = ApiRequest {
        method,
        route: route.into(),
        params: param
            .map(|p| vec![(param_name.to_string(), p.to_string())])
            .unwrap_or_default(),
        query: vec![],
        body: body.map(|b| b.to_string()),
        caller: ApiCaller {
            user_id: Some(ANN),
            owner: false,
            permissions: 1 << 5,
        },
    };
    townes_sdk::testing::call_route::<CustomCommands>(host, request)
}

/// Creates a command through the dashboard route.
pub fn create(host: &MockHost, body: Value) -> Value {
    let (status, value) = api(host, Method::Post, "/commands", None, Some(body.clone()))
        .unwrap_or_else(|e| panic!("creating {body}: {e:?}"));
    assert_eq!(status, 201);
    value
}

/// A text command.
pub fn text_command(host: &MockHost, name: &str, content: &str) -> Value {
    create(
        host,
        json!({ "name": name, "response": { "type": "text", "content": content } }),
    )
}

/// Creates an auto-responder through the dashboard route; answers its id.
pub fn responder(host: &MockHost, body: Value) -> String {
    let (status, value) = api(
        host,
        Method::Post,
        "/auto-responders",
        None,
        Some(body.clone()),
    )
    .unwrap_or_else(|e| panic!("creating {body}: {e:?}"));
    assert_eq!(status, 201);
    value["id"].as_str().unwrap().to_string()
}

// ------------------------------------------------------------ JSON Schema

/// Checks JSON against the feature's schemas as the host does.
pub use townes_sdk::testing::schema_problems;

// -------------------------------------------------------- manifest, config

#[test]
fn the_manifest_asks_for_what_the_feature_uses() {
    let manifest = CustomCommands::describe();
    assert_eq!(
        (
            manifest.id.as_str(),
            manifest.version.as_str(),
            manifest.name.as_str()
        ),
        (
            "custom-commands",
            "0.1.0",
            "Custom commands & auto-responders"
        )
    );
    for required in [
        Capability::Messages,
        Capability::MessageContent,
        Capability::Storage,
    ] {
        assert!(manifest.request(required).unwrap().required, "{required:?}");
    }
    for optional in [Capability::Members, Capability::Audit] {
        assert!(
            !manifest.request(optional).unwrap().required,
            "{optional:?}"
        );
    }
    assert!(manifest.request(Capability::Roles).is_none());
    assert_eq!(manifest.events, [EventKind::MessageCreated]);
    let commands: Vec<(&str, bool, bool)> = manifest
        .commands
        .iter()
        .map(|c| (c.name.as_str(), c.slash, c.prefix))
        .collect();
    assert_eq!(
        commands,
        [
            ("cc", true, false),
            ("tag", true, false),
            ("tags", true, false)
        ],
        "prefix commands come through message events, with the feature's own prefix"
    );
    let cc = &manifest.commands[0];
    let options: Vec<(&str, bool)> = cc
        .options
        .iter()
        .map(|o| (o.name.as_str(), o.required))
        .collect();
    assert_eq!(options, [("name", true), ("args", false)]);
}

#[test]
fn the_default_config_is_the_documented_one_and_fits_the_schema() {
    let manifest = CustomCommands::describe();
    let schema: Value = serde_json::from_str(&manifest.config_schema).unwrap();
    let default: Value = serde_json::from_str(&manifest.default_config).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        default,
        json!({ "prefix": "!", "max_commands": 100, "max_auto_responders": 50 })
    );
    assert_eq!(schema_problems(&schema, &default), Vec::<String>::new());
    for (key, value) in default.as_object().unwrap() {
        assert_eq!(&schema["properties"][key]["default"], value, "{key}");
    }
    assert_eq!(
        serde_json::from_value::<Config>(default).unwrap(),
        Config::default()
    );
}

#[test]
fn the_config_schema_refuses_what_the_feature_cannot_use() {
    let schema = config_schema();
    for good in [
        json!({}),
        json!({ "prefix": "?" }),
        json!({ "prefix": "cc!", "max_commands": 500, "max_auto_responders": 1 }),
    ] {
        assert_eq!(
            schema_problems(&schema, &good),
            Vec::<String>::new(),
            "{good}"
        );
    }
    for bad in [
        json!({ "prefix": "" }),
        json!({ "prefix": "toolong" }),
        json!({ "prefix": "a b" }),
        json!({ "max_commands": 0 }),
        json!({ "max_commands": 501 }),
        json!({ "max_auto_responders": 201 }),
        json!({ "colour": "red" }),
    ] {
        assert!(!schema_problems(&schema, &bad).is_empty(), "{bad}");
    }
}

#[test]
fn a_configured_prefix_is_used_and_a_broken_one_falls_back() {
    let host = host();
    text_command(&host, "hi", "Hello!");
    host.set_config(json!({ "prefix": "?" }));
    assert_eq!(said(&host, BOB, GENERAL, "?hi"), "Hello!");
    assert!(say(&host, BOB, GENERAL, "!hi").is_empty());
    host.set_config(json!({ "prefix": "" }));
    assert_eq!(Config::load().unwrap().prefix, "!");
    assert_eq!(said(&host, BOB, GENERAL, "!hi"), "Hello!");
}

#[test]
fn unknown_commands_and_components_are_not_mistaken_for_ours() {
    let host = host();
    // A slash command of its own that was deleted since it was registered.
    let invocation = CommandInvocation::new("frobnicate", member(ANN), GENERAL);
    let reply = CustomCommands::on_command(&host.context(), invocation).unwrap();
    assert!(reply.ephemeral);
    assert!(
        reply
            .content()
            .unwrap()
            .contains("no custom command named `frobnicate`")
    );
    let interaction = ComponentInteraction::button("vote:1:2", member(ANN), GENERAL);
    assert!(matches!(
        CustomCommands::on_component(&host.context(), interaction),
        Err(Error::InvalidArgument(_))
    ));
    assert!(host.effects().is_empty());
}

#[test]
fn the_bot_s_own_messages_and_other_bots_are_ignored() {
    let host = host();
    text_command(&host, "hi", "Hello!");
    responder(
        &host,
        json!({ "trigger": "hello", "match_type": "contains",
                "response": { "type": "text", "content": "hey" } }),
    );
    let own = User::new(BOT_USER_ID, "townes");
    let other_bot = User::new(77, "otherbot").as_bot();
    for author in [own, other_bot] {
        assert!(say_as(&host, author.clone(), GENERAL, "!hi").is_empty());
        assert!(say_as(&host, author, GENERAL, "hello there").is_empty());
    }
    assert_eq!(
        host.storage_value("ar-count:0000000001"),
        None,
        "not counted"
    );
    assert_eq!(said(&host, BOB, GENERAL, "!hi"), "Hello!");
}
