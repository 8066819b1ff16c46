//! The fun feature against the SDK's mock host: no host, no wasm.
//!
//! Besides the helpers that run commands and click as members, this module
//! has [`schema_problems`], a checker for the JSON Schema keywords this
//! feature uses, so the default config and every route answer are checked
//! against what the manifest and routes declare, as the host checks them.

mod ending;
mod polls;
mod quips;
mod routes;
mod voting;

use crate::permissions::MANAGE_MESSAGES;
use crate::store::{self, Poll, Tally};
use crate::*;
use townes_sdk::serde_json::Value;
use townes_sdk::testing::{Effect, MockHost};
use townes_sdk::{
    ApiCaller, CommandArgument, Embed, Member, MessageBody, Method, OptionValue, Snowflake,
    UiComponent, User, storage,
};

pub const ANN: Snowflake = 42;
pub const BOB: Snowflake = 43;
pub const CAT: Snowflake = 44;
/// Holds Manage Messages in the channel.
pub const MOD: Snowflake = 60;
pub const CHANNEL: Snowflake = 300;

pub fn member(id: Snowflake) -> Member {
    let name = match id {
        ANN => "ann",
        BOB => "bob",
        CAT => "cat",
        MOD => "mod",
        _ => "someone",
    };
    Member::new(User::new(id, name))
}

/// What `invocation::invoker_permissions` answers for each of them.
pub fn permissions_of(id: Snowflake) -> u64 {
    const VIEW_AND_SEND: u64 = (1 << 10) | (1 << 11);
    match id {
        MOD => VIEW_AND_SEND | MANAGE_MESSAGES,
        _ => VIEW_AND_SEND,
    }
}

/// The mock as the host sets it up after an install that grants everything.
pub fn host() -> MockHost {
    let host = MockHost::for_feature::<Fun>();
    for id in [ANN, BOB, CAT, MOD] {
        host.add_member(member(id));
    }
    host
}

pub fn text(value: &str) -> OptionValue {
    OptionValue::Text(value.into())
}

/// `by` runs `/name` with `args` in [`CHANNEL`].
pub fn command(
    host: &MockHost,
    name: &str,
    args: &[(&str, OptionValue)],
    by: Snowflake,
) -> Result<Reply, Error> {
    host.set_invoker_permissions(permissions_of(by));
    let mut invocation = CommandInvocation::new(name, member(by), CHANNEL);
    invocation.arguments = args
        .iter()
        .map(|(n, v)| CommandArgument {
            name: n.to_string(),
            value: v.clone(),
        })
        .collect();
    Fun::on_command(&host.context(), invocation)
}

/// `by` clicks button `custom_id` on a message in [`CHANNEL`].
pub fn click(host: &MockHost, custom_id: &str, by: Snowflake) -> Reply {
    host.set_invoker_permissions(permissions_of(by));
    let interaction = ComponentInteraction::button(custom_id, member(by), CHANNEL);
    Fun::on_component(&host.context(), interaction)
        .unwrap_or_else(|e| panic!("{by} clicking {custom_id}: {e:?}"))
}

/// `by` chooses `values` in menu `custom_id`.
pub fn choose(host: &MockHost, custom_id: &str, values: &[&str], by: Snowflake) -> Reply {
    host.set_invoker_permissions(permissions_of(by));
    let interaction =
        ComponentInteraction::select(custom_id, values.iter().copied(), member(by), CHANNEL);
    Fun::on_component(&host.context(), interaction)
        .unwrap_or_else(|e| panic!("{by} choosing {values:?} in {custom_id}: {e:?}"))
}

/// Ann starts a poll; `extra` adds `duration` or `multi`. Returns its reply.
pub fn start_poll(
    host: &MockHost,
    question: &str,
    options: &str,
    extra: &[(&str, OptionValue)],
) -> Reply {
    let mut args = vec![("question", text(question)), ("options", text(options))];
    args.extend(extra.iter().cloned());
    command(host, "poll", &args, ANN).unwrap()
}

/// A host with Ann's poll #1 "Lunch?" (Pizza, Pasta, Salad), effects cleared.
pub fn with_poll(extra: &[(&str, OptionValue)]) -> MockHost {
    let host = host();
    let reply = start_poll(&host, "Lunch?", "Pizza | Pasta | Salad", extra);
    assert!(
        reply.content().unwrap().starts_with("Poll #1 is up"),
        "{reply:?}"
    );
    host.clear_effects();
    host
}

pub fn poll(number: u64) -> Poll {
    store::load_poll(number).unwrap()
}

pub fn tally(number: u64) -> Tally {
    let options = poll(number).options.len();
    store::tally(number, options).unwrap()
}

/// Edits a stored poll, e.g. to move its end into the past.
pub fn edit_poll(number: u64, mut change: impl FnMut(&mut Poll)) {
    store::update_poll(number, |p| {
        change(p);
        Ok(())
    })
    .unwrap();
}

/// The body the poll's message shows now: its last edit, else as posted.
pub fn shown(host: &MockHost, message_id: Snowflake) -> MessageBody {
    let edited = host
        .edited_messages()
        .into_iter()
        .rev()
        .find(|(_, id, _)| *id == message_id)
        .map(|(_, _, body)| body);
    edited.unwrap_or_else(|| {
        host.effects()
            .into_iter()
            .find_map(|e| match e {
                Effect::MessageSent { id, body, .. } if id == message_id => Some(body),
                _ => None,
            })
            .expect("the message was sent")
    })
}

pub fn embed(body: &MessageBody) -> &Embed {
    body.embeds.first().expect("an embed")
}

/// An embed's description and fields as one text.
pub fn embed_text(embed: &Embed) -> String {
    let mut text = embed.description.clone().unwrap_or_default();
    for field in &embed.fields {
        text.push_str(&format!("\n{}: {}", field.name, field.value));
    }
    text
}

/// Every `custom_id` of a message's buttons, in order.
pub fn button_ids(body: &MessageBody) -> Vec<String> {
    body.components
        .iter()
        .flat_map(|row| &row.components)
        .filter_map(|c| match c {
            UiComponent::Button(b) => b.custom_id.clone(),
            _ => None,
        })
        .collect()
}

/// The select menus of a message.
pub fn menus(body: &MessageBody) -> Vec<townes_sdk::SelectMenu> {
    body.components
        .iter()
        .flat_map(|row| &row.components)
        .filter_map(|c| match c {
            UiComponent::SelectMenu(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// A route call as the host makes it, its answer checked against the
/// route's declared response schema.
pub fn api(host: &MockHost, route: &str, id: Option<&str>) -> Result<Value, Error> {
    let request = ApiRequest {
        method: Method::Get,
        route: route.into(),
        params: id
            .map(|id| vec![("id".to_string(), id.to_string())])
            .unwrap_or_default(),
        query: vec![],
        body: None,
        caller: ApiCaller {
            user_id: Some(MOD),
            owner: false,
            permissions: 1 << 5, // Manage Server, as the host requires
        },
    };
    let (status, value) = townes_sdk::testing::call_route::<Fun>(host, request)?;
    assert_eq!(status, 200);
    Ok(value)
}

// ------------------------------------------------------------ JSON Schema

/// Checks JSON against the feature's schemas as the host does.
pub use townes_sdk::testing::schema_problems;

// -------------------------------------------------------- manifest, config

#[test]
fn the_manifest_asks_for_what_the_feature_uses_and_nothing_else() {
    let manifest = Fun::describe();
    assert_eq!(
        (
            manifest.id.as_str(),
            manifest.version.as_str(),
            manifest.name.as_str()
        ),
        ("fun", "0.1.0", "Fun")
    );
    assert!(!manifest.description.is_empty());
    let requested: Vec<(Capability, bool)> = manifest
        .capabilities
        .iter()
        .map(|r| (r.capability, r.required))
        .collect();
    assert_eq!(
        requested,
        [
            (Capability::Messages, true),
            (Capability::Storage, true),
            (Capability::Scheduler, true)
        ]
    );
    assert!(manifest.events.is_empty());
    let commands: Vec<(&str, bool, bool)> = manifest
        .commands
        .iter()
        .map(|c| (c.name.as_str(), c.slash, c.prefix))
        .collect();
    assert_eq!(
        commands,
        [
            ("8ball", true, true),
            ("joke", true, true),
            ("meme", true, true),
            ("poll", true, false)
        ]
    );
    let poll = &manifest.commands[3];
    let options: Vec<(&str, bool)> = poll
        .options
        .iter()
        .map(|o| (o.name.as_str(), o.required))
        .collect();
    assert_eq!(
        options,
        [
            ("question", true),
            ("options", true),
            ("duration", false),
            ("multi", false)
        ]
    );
    assert_eq!(manifest.commands[1].options[0].choices, data::CATEGORIES);
    assert!(
        manifest
            .commands
            .iter()
            .all(|c| c.default_permissions.is_none())
    );
}

#[test]
fn the_default_config_is_the_documented_one_and_fits_the_schema() {
    let manifest = Fun::describe();
    let schema: Value = serde_json::from_str(&manifest.config_schema).unwrap();
    let default: Value = serde_json::from_str(&manifest.default_config).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        default,
        json!({
            "max_poll_days": 7,
            "joke_categories": ["animals", "food", "programming", "puns", "science"]
        })
    );
    assert_eq!(schema_problems(&schema, &default), Vec::<String>::new());
    assert_eq!(schema["properties"]["max_poll_days"]["default"], 7);
    assert_eq!(
        schema["properties"]["joke_categories"]["default"],
        default["joke_categories"]
    );
    assert_eq!(
        serde_json::from_value::<Config>(default).unwrap(),
        Config::default()
    );
}

#[test]
fn the_schema_refuses_what_the_feature_cannot_use() {
    let schema = config_schema();
    for good in [
        json!({}),
        json!({ "max_poll_days": 1 }),
        json!({ "max_poll_days": 30, "joke_categories": [] }),
        json!({ "joke_categories": ["puns", "science"] }),
    ] {
        assert_eq!(
            schema_problems(&schema, &good),
            Vec::<String>::new(),
            "{good}"
        );
    }
    for bad in [
        json!({ "max_poll_days": 0 }),
        json!({ "max_poll_days": 31 }),
        json!({ "max_poll_days": "7" }),
        json!({ "joke_categories": ["knock-knock"] }),
        json!({ "joke_categories": ["puns", "puns"] }),
        json!({ "joke_categories": "puns" }),
        json!({ "memes": true }),
    ] {
        assert!(!schema_problems(&schema, &bad).is_empty(), "{bad}");
    }
}

#[test]
fn a_partial_config_takes_defaults_and_a_hand_edited_one_is_kept_in_range() {
    let host = host();
    host.set_config(json!({ "joke_categories": ["puns"] }));
    let config = Config::load().unwrap();
    assert_eq!(config.max_poll_days, 7);
    assert_eq!(config.joke_categories, ["puns"]);
    host.set_config(json!({ "max_poll_days": 400 }));
    assert_eq!(Config::load().unwrap().max_poll_days, 30);
    host.set_config(json!({ "max_poll_days": 0 }));
    assert_eq!(Config::load().unwrap().max_poll_days, 1);
}

#[test]
fn unknown_commands_buttons_and_jobs_are_not_mistaken_for_ours() {
    let host = host();
    assert_eq!(
        command(&host, "dice", &[], ANN),
        Err(Error::invalid("unknown command"))
    );
    for custom_id in [
        "",
        "vote",
        "vote:x",
        "vote:1:x",
        "vote:1:0:9",
        "end:1:0",
        "close:1",
        "open:1",
    ] {
        let interaction = ComponentInteraction::button(custom_id, member(ANN), CHANNEL);
        assert_eq!(
            Fun::on_component(&host.context(), interaction),
            Err(Error::invalid("unknown component")),
            "{custom_id}"
        );
    }
    let job = ScheduledJob::new("job-9", "something-else", "1");
    assert_eq!(Fun::on_schedule(&host.context(), job), Ok(()));
    assert!(host.effects().is_empty());
}
