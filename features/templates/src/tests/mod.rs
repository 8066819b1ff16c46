//! The templates feature against the SDK's mock host: no host, no wasm.
//!
//! Besides helpers that click, react and call routes as the host would, this
//! module has a small JSON Schema checker ([`schema_problems`]) for the
//! keywords this feature uses, so the default config, every route's request
//! and answer, and every declared example are checked against the schemas.

mod components;
mod reactions;
mod routes;
mod templates;

use crate::*;
use townes_sdk::serde_json::Value;
use townes_sdk::testing::{GUILD_ID, MockHost};
use townes_sdk::{ApiCaller, Member, MessageBody, Method, UiComponent, User};

pub const ANN: Snowflake = 42;
pub const BOB: Snowflake = 43;
pub const ADMIN: Snowflake = 70;
pub const BOT: Snowflake = 99;
pub const CHANNEL: Snowflake = 300;
pub const ROLES_CHANNEL: Snowflake = 301;
pub const NEWS: Snowflake = 501;
pub const EVENTS: Snowflake = 502;
pub const MINECRAFT: Snowflake = 511;
pub const CHESS: Snowflake = 512;
pub const RED: Snowflake = 521;
pub const BLUE: Snowflake = 522;
pub const GREEN: Snowflake = 523;
/// A role no template offers.
pub const MODERATOR: Snowflake = 600;

pub fn member(id: Snowflake) -> Member {
    let name = match id {
        ANN => "ann",
        BOB => "bob",
        ADMIN => "admin",
        BOT => "otherbot",
        _ => "someone",
    };
    let user = User::new(id, name);
    Member::new(if id == BOT { user.as_bot() } else { user })
}

/// The mock as the host sets it up after an install that grants everything.
pub fn host() -> MockHost {
    let host = MockHost::for_feature::<Templates>();
    for id in [ANN, BOB, ADMIN, BOT] {
        host.add_member(member(id));
    }
    host
}

/// The member as the mock now knows them (with the roles given so far).
pub fn now(host: &MockHost, id: Snowflake) -> Member {
    host.member(id).expect("a member")
}

pub fn roles_of(host: &MockHost, id: Snowflake) -> Vec<Snowflake> {
    let mut roles = now(host, id).roles;
    roles.sort_unstable();
    roles
}

/// A route call as the host makes it, with the request checked against the
/// route's declared schema first and the answer after. `params` are the
/// path's parameters. Answers `(status, body)`.
pub fn api(
    host: &MockHost,
    method: Method,
    route: &str,
    params: &[(&str, &str)],
    body: Option<Value>,
) -> Result<(u16, Value), Error> {
    townes_sdk::testing::call_route::<Templates>(host, request(method, route, params, body))
}

/// [`api`] without checking the request: what the feature answers to a body
/// the host's schema check would already refuse (defence in depth). The
/// answer is still checked.
pub fn api_unchecked(
    host: &MockHost,
    method: Method,
    route: &str,
    params: &[(&str, &str)],
    body: Option<Value>,
) -> Result<(u16, Value), Error> {
    let declared = Templates::routes()
        .into_iter()
        .find(|r| r.method == method && r.path == route)
        .unwrap_or_else(|| panic!("{method:?} {route} is not declared"));
    let response = Templates::on_api(&host.context(), request(method, route, params, body))?;
    let value: Value = serde_json::from_str(&response.body).unwrap();
    let schema = serde_json::from_str(&declared.response_schema).unwrap();
    let problems = schema_problems(&schema, &value);
    assert!(
        problems.is_empty(),
        "answer of {route}: {problems:?}\n{value}"
    );
    Ok((response.status, value))
}

fn request(
    method: Method,
    route: &str,
    params: &[(&str, &str)],
    body: Option<Value>,
) -> ApiRequest {
    ApiRequest {
        method,
        route: route.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        query: vec![],
        body: body.map(|b| b.to_string()),
        caller: ApiCaller {
            user_id: Some(ADMIN),
            owner: false,
            permissions: MANAGE_GUILD,
        },
    }
}

/// A template with text, an embed, a role button, a link button and a menu
/// of two games.
pub fn roles_template() -> Value {
    json!({
        "id": "roles",
        "name": "Pick your roles",
        "content": "Welcome to {server.name} ({server.memberCount} members)! Post in {channel}.",
        "embed": {
            "title": "{server.name} roles",
            "description": "Click to join or leave.",
            "color": 0x5865F2,
            "fields": [{ "name": "Server", "value": "id {server.id}", "inline": true }],
            "footer": "Unknown stays: {nope}",
            "image_url": "https://cdn.example.com/banner.png"
        },
        "buttons": [
            { "kind": "role", "label": "News", "role_id": NEWS.to_string(), "emoji": "📣" },
            { "kind": "role", "label": "Events", "role_id": EVENTS.to_string(), "style": "success" },
            { "kind": "link", "label": "Website", "url": "https://example.com" }
        ],
        "select": {
            "placeholder": "Your games",
            "options": [
                { "role_id": MINECRAFT.to_string(), "label": "Minecraft" },
                { "role_id": CHESS.to_string(), "label": "Chess", "description": "Kings and queens" }
            ]
        }
    })
}

pub fn create_template(host: &MockHost, body: Value) -> Value {
    let (status, t) = api(host, Method::Post, "/templates", &[], Some(body)).unwrap();
    assert_eq!(status, 201);
    t
}

/// Creates [`roles_template`] and sends it to [`ROLES_CHANNEL`]; returns
/// the message id.
pub fn sent_roles_message(host: &MockHost) -> Snowflake {
    create_template(host, roles_template());
    let (_, sent) = api(
        host,
        Method::Post,
        "/templates/{id}/send",
        &[("id", "roles")],
        Some(json!({ "channel_id": ROLES_CHANNEL.to_string() })),
    )
    .unwrap();
    host.clear_effects();
    sent["message_id"].as_str().unwrap().parse().unwrap()
}

/// `(custom id or url, label)` of every button, then the menu's custom id.
pub fn component_ids(body: &MessageBody) -> Vec<String> {
    body.components
        .iter()
        .flat_map(|row| &row.components)
        .map(|c| match c {
            UiComponent::Button(b) => b.custom_id.clone().or(b.url.clone()).unwrap(),
            UiComponent::SelectMenu(m) => m.custom_id.clone(),
        })
        .collect()
}

pub fn text_of(reply: &Reply) -> &str {
    assert!(reply.ephemeral, "answers are ephemeral: {reply:?}");
    reply.content().unwrap_or("")
}

// ------------------------------------------------------------ JSON Schema

/// Checks JSON against the feature's schemas as the host does.
pub use townes_sdk::testing::schema_problems;

// -------------------------------------------------------- manifest, config

#[test]
fn the_manifest_asks_for_what_the_feature_uses() {
    let manifest = Templates::describe();
    assert_eq!(
        (
            manifest.id.as_str(),
            manifest.version.as_str(),
            manifest.name.as_str()
        ),
        ("templates", "0.1.0", "Templates & role menus")
    );
    for required in [Capability::Messages, Capability::Roles, Capability::Storage] {
        assert!(manifest.request(required).unwrap().required, "{required:?}");
    }
    for optional in [Capability::Members, Capability::Audit] {
        assert!(
            !manifest.request(optional).unwrap().required,
            "{optional:?}"
        );
    }
    assert_eq!(manifest.capabilities.len(), 5);
    assert_eq!(
        manifest.events,
        [EventKind::ReactionAdded, EventKind::ReactionRemoved]
    );
    let [send] = &manifest.commands[..] else {
        panic!("one command")
    };
    assert_eq!(send.name, "send-template");
    assert!(send.slash && send.prefix);
    assert_eq!(send.default_permissions, Some(0x20));
    let options: Vec<(&str, bool)> = send
        .options
        .iter()
        .map(|o| (o.name.as_str(), o.required))
        .collect();
    assert_eq!(options, [("name", true), ("channel", false)]);
}

#[test]
fn the_default_config_is_the_documented_one_and_fits_the_schema() {
    let manifest = Templates::describe();
    let schema: Value = serde_json::from_str(&manifest.config_schema).unwrap();
    let default: Value = serde_json::from_str(&manifest.default_config).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        default,
        json!({ "max_templates": 50, "max_reaction_role_messages": 50, "assignable_roles": [] })
    );
    assert_eq!(schema_problems(&schema, &default), Vec::<String>::new());
    assert_eq!(
        serde_json::from_value::<Config>(default).unwrap(),
        Config::default()
    );
    for good in [
        json!({}),
        json!({ "max_templates": 1, "max_reaction_role_messages": 200 }),
        json!({ "assignable_roles": ["501", 502] }),
    ] {
        assert_eq!(
            schema_problems(&schema, &good),
            Vec::<String>::new(),
            "{good}"
        );
    }
    for bad in [
        json!({ "max_templates": 0 }),
        json!({ "max_templates": 201 }),
        json!({ "max_reaction_role_messages": 0 }),
        json!({ "assignable_roles": ["news"] }),
        json!({ "colour": "red" }),
    ] {
        assert!(!schema_problems(&schema, &bad).is_empty(), "{bad}");
    }
    let host = host();
    host.set_config(json!({ "assignable_roles": ["501"], "max_templates": 500 }));
    let config = Config::load().unwrap();
    assert_eq!(config.assignable_roles, [NEWS]);
    assert_eq!(config.max_templates, 200, "clamped");
}

#[test]
fn routes_are_declared_with_camel_case_ids_and_valid_examples() {
    let routes = Templates::routes();
    let declared: Vec<(Method, &str, &str)> = routes
        .iter()
        .map(|r| (r.method, r.path.as_str(), r.operation_id.as_str()))
        .collect();
    assert_eq!(
        declared,
        [
            (Method::Get, "/templates", "listTemplates"),
            (Method::Post, "/templates", "createTemplate"),
            (Method::Get, "/templates/{id}", "getTemplate"),
            (Method::Put, "/templates/{id}", "updateTemplate"),
            (Method::Delete, "/templates/{id}", "deleteTemplate"),
            (Method::Post, "/templates/{id}/send", "sendTemplate"),
            (Method::Get, "/reaction-roles", "listReactionRoles"),
            (Method::Post, "/reaction-roles", "setReactionRoles"),
            (
                Method::Delete,
                "/reaction-roles/{message_id}",
                "deleteReactionRoles"
            ),
        ]
    );
    for route in &routes {
        assert!(!route.summary.is_empty());
        assert!(
            route
                .operation_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
        assert!(
            route
                .operation_id
                .starts_with(|c: char| c.is_ascii_lowercase())
        );
        let mut schemas = vec![("response", route.response_schema.clone())];
        if let Some(request) = &route.request_schema {
            schemas.push(("request", request.clone()));
        }
        for (which, schema) in schemas {
            let schema: Value = serde_json::from_str(&schema).unwrap();
            assert_eq!(schema["type"], "object", "{} {which}", route.path);
            let examples = schema["examples"]
                .as_array()
                .unwrap_or_else(|| panic!("{} {which} has no examples", route.path));
            assert_eq!(examples.len(), 1, "{} {which}", route.path);
            assert_eq!(
                schema_problems(&schema, &examples[0]),
                Vec::<String>::new(),
                "{} {which} example",
                route.path
            );
        }
    }
    let with_body: Vec<&str> = routes
        .iter()
        .filter(|r| r.request_schema.is_some())
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        with_body,
        [
            "/templates",
            "/templates/{id}",
            "/templates/{id}/send",
            "/reaction-roles"
        ]
    );
}

/// The create example is a template the feature accepts, and stores as is.
#[test]
fn the_create_example_is_accepted_as_written() {
    let host = host();
    let example = crate::routes::template_example();
    let stored = create_template(&host, example.clone());
    assert_eq!(stored, example);
    assert_eq!(GUILD_ID, host.context().guild_id);
}

#[test]
fn unknown_components_commands_and_events_are_not_mistaken_for_ours() {
    let host = host();
    for custom_id in ["role", "role:x", "role:0", "roles:Bad Id", "vote:1", ""] {
        let interaction = ComponentInteraction::button(custom_id, member(ANN), CHANNEL);
        assert!(
            matches!(
                Templates::on_component(&host.context(), interaction),
                Err(Error::InvalidArgument(_))
            ),
            "{custom_id}"
        );
    }
    // A template command deleted since it was registered: said, not failed.
    let invocation = CommandInvocation::new("templates", member(ANN), CHANNEL);
    let reply = Templates::on_command(&host.context(), invocation).unwrap();
    assert!(reply.ephemeral);
    assert!(
        reply
            .content()
            .unwrap()
            .contains("no longer posts a template")
    );
    let event = Event::message_deleted(5, CHANNEL);
    assert_eq!(Templates::on_event(&host.context(), event), Ok(()));
    assert!(host.effects().is_empty());
}
