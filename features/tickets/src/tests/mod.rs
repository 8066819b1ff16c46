//! The tickets feature against the SDK's mock host: no host, no wasm.
//!
//! Besides the helpers that click, submit and call routes as members, this
//! module has two small checkers the tests lean on: [`schema_problems`], the
//! JSON Schema keywords this feature uses (so the default config and every
//! route answer are checked against what the manifest and routes declare, as
//! the host checks them), and [`assert_inert`], which reads HTML the way a
//! browser splits it into tags, so a transcript can be shown to hold only the
//! tags and attributes the feature writes.

mod closing;
mod handling;
mod inactivity;
mod opening;
mod panels;
mod routes;
mod transcript;

use crate::permissions::*;
use crate::store::{self, Ticket};
use crate::*;
use townes_sdk::serde_json::Value;
use townes_sdk::testing::{BOT_USER_ID, Effect, GUILD_ID, MockHost};
use townes_sdk::{ApiCaller, CommandArgument, Member, Method, OptionValue, PastMessage, User};

pub const ANN: Snowflake = 42;
pub const BOB: Snowflake = 43;
pub const CAT: Snowflake = 44;
/// Holds the support role.
pub const SUP: Snowflake = 50;
/// Holds the support role too.
pub const SUP2: Snowflake = 51;
/// Manages channels; no support role.
pub const MOD: Snowflake = 60;
/// Administrator; no support role.
pub const ADMIN: Snowflake = 70;
pub const SUPPORT_ROLE: Snowflake = 500;
pub const PANEL_CHANNEL: Snowflake = 300;
pub const CATEGORY: Snowflake = 400;
pub const LOG: Snowflake = 900;

pub fn member(id: Snowflake) -> Member {
    let name = match id {
        ANN => "ann",
        BOB => "bob",
        CAT => "cat",
        SUP => "sup",
        SUP2 => "sup2",
        MOD => "mod",
        ADMIN => "admin",
        _ => "someone",
    };
    let member = Member::new(User::new(id, name));
    if matches!(id, SUP | SUP2) {
        member.with_role(SUPPORT_ROLE)
    } else {
        member
    }
}

/// What `invocation::invoker_permissions` answers for each of them.
pub fn permissions_of(id: Snowflake) -> u64 {
    let everyone = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY;
    match id {
        MOD => everyone | MANAGE_CHANNELS,
        ADMIN => everyone | ADMINISTRATOR,
        _ => everyone,
    }
}

/// The mock as the host sets it up after an install that grants everything.
pub fn host() -> MockHost {
    let host = MockHost::for_feature::<Tickets>();
    for id in [ANN, BOB, CAT, SUP, SUP2, MOD, ADMIN] {
        host.add_member(member(id));
    }
    host
}

pub fn click(host: &MockHost, custom_id: &str, by: Snowflake, channel: Snowflake) -> Reply {
    host.set_invoker_permissions(permissions_of(by));
    let interaction = ComponentInteraction::button(custom_id, member(by), channel);
    Tickets::on_component(&host.context(), interaction)
        .unwrap_or_else(|e| panic!("{by} clicking {custom_id}: {e:?}"))
}

pub fn submit_close(
    host: &MockHost,
    number: u64,
    reason: &str,
    by: Snowflake,
    channel: Snowflake,
) -> Reply {
    host.set_invoker_permissions(permissions_of(by));
    let interaction = ComponentInteraction::modal_submit(
        format!("close-form:{number}"),
        [("reason", reason)],
        member(by),
        channel,
    );
    Tickets::on_component(&host.context(), interaction)
        .unwrap_or_else(|e| panic!("{by} submitting the close form: {e:?}"))
}

pub fn command(
    host: &MockHost,
    name: &str,
    subcommand: &str,
    args: &[(&str, OptionValue)],
    by: Snowflake,
    channel: Snowflake,
) -> Reply {
    host.set_invoker_permissions(permissions_of(by));
    let mut invocation =
        CommandInvocation::new(name, member(by), channel).with_subcommand(subcommand);
    invocation.arguments = args
        .iter()
        .map(|(n, v)| CommandArgument {
            name: n.to_string(),
            value: v.clone(),
        })
        .collect();
    Tickets::on_command(&host.context(), invocation)
        .unwrap_or_else(|e| panic!("/{name} {subcommand}: {e:?}"))
}

/// Posts panel #1 in [`PANEL_CHANNEL`], with [`SUPPORT_ROLE`] and [`CATEGORY`].
pub fn make_panel(host: &MockHost) {
    let reply = command(
        host,
        "ticket-panel",
        "create",
        &[
            ("channel", OptionValue::Channel(PANEL_CHANNEL)),
            ("title", OptionValue::Text("Support".into())),
            ("category", OptionValue::Channel(CATEGORY)),
            ("support_role", OptionValue::Role(SUPPORT_ROLE)),
        ],
        ADMIN,
        PANEL_CHANNEL,
    );
    assert!(reply.content().unwrap().contains("Panel #1"), "{reply:?}");
}

/// `by` clicks panel #1's button; returns the new ticket's channel.
pub fn open_ticket(host: &MockHost, by: Snowflake) -> Snowflake {
    let reply = click(host, "open:1", by, PANEL_CHANNEL);
    let (channel, _) = host
        .channels_created()
        .last()
        .cloned()
        .expect("a ticket channel");
    assert_eq!(
        reply.content(),
        Some(format!("Your ticket is open: <#{channel}>").as_str())
    );
    channel
}

/// A host with panel #1 and Ann's ticket #1; returns its channel.
pub fn with_ticket() -> (MockHost, Snowflake) {
    let host = host();
    make_panel(&host);
    let channel = open_ticket(&host, ANN);
    host.clear_effects();
    (host, channel)
}

pub fn ticket(number: u64) -> Ticket {
    store::load_ticket(number).unwrap()
}

/// Edits a stored ticket, e.g. to move its clock back.
pub fn edit_ticket(number: u64, mut change: impl FnMut(&mut Ticket)) {
    store::update_ticket(number, |t| {
        change(t);
        Ok(())
    })
    .unwrap();
}

pub fn past(id: Snowflake, author: User, content: &str) -> PastMessage {
    PastMessage {
        id,
        author,
        avatar: None,
        content: content.into(),
        timestamp: "2026-03-01T10:00:00.000000+00:00".into(),
        edited_timestamp: None,
        embeds: vec![],
        attachments: vec![],
    }
}

/// `(kind, data)` of the live events with action `action`.
pub fn live_actions(host: &MockHost) -> Vec<String> {
    host.live_events()
        .into_iter()
        .map(|(kind, data)| {
            assert_eq!(kind, "ticket_update");
            data["action"].as_str().unwrap().to_string()
        })
        .collect()
}

pub fn overwrites_set(host: &MockHost) -> Vec<(Snowflake, townes_sdk::PermissionOverwrite)> {
    host.effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::OverwriteSet {
                channel_id,
                overwrite,
            } => Some((channel_id, overwrite)),
            _ => None,
        })
        .collect()
}

/// Every `custom_id` (or link URL) of a message's buttons.
pub fn button_ids(body: &townes_sdk::MessageBody) -> Vec<String> {
    body.components
        .iter()
        .flat_map(|row| &row.components)
        .filter_map(|c| match c {
            townes_sdk::UiComponent::Button(b) => b.custom_id.clone().or(b.url.clone()),
            _ => None,
        })
        .collect()
}

/// A route call as the host makes it, checked against the route's declared
/// request and response schemas; answers `(status, body)`. `caller` none is
/// an API key.
pub fn api(
    host: &MockHost,
    method: Method,
    route: &str,
    id: Option<&str>,
    query: &[(&str, &str)],
    body: Option<Value>,
    caller: Option<Snowflake>,
) -> Result<(u16, Value), Error> {
    let request = ApiRequest {
        method,
        route: route.into(),
        params: id
            .map(|id| vec![("id".to_string(), id.to_string())])
            .unwrap_or_default(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.map(|b| b.to_string()),
        caller: ApiCaller {
            user_id: caller,
            owner: caller.is_none(),
            permissions: caller.map_or(u64::MAX, |_| MANAGE_GUILD),
        },
    };
    townes_sdk::testing::call_route::<Tickets>(host, request)
}

// ------------------------------------------------------------ JSON Schema

/// Checks JSON against the feature's schemas as the host does.
pub use townes_sdk::testing::schema_problems;

// ------------------------------------------------------------------ HTML

/// Each tag of `html` as `(name, [(attribute, value)])`, read as a browser
/// splits markup: a `<` opens a tag, quoted values may hold anything but
/// their quote.
pub fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(open) = html[i..].find('<') {
        let mut j = i + open + 1;
        let start = j;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'/' | b'!')) {
            j += 1;
        }
        let name = html[start..j].to_ascii_lowercase();
        let mut attributes = Vec::new();
        loop {
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            assert!(j < b.len(), "unterminated tag <{name}");
            if b[j] == b'>' {
                j += 1;
                break;
            }
            let start = j;
            while j < b.len() && !matches!(b[j], b'=' | b'>') && !b[j].is_ascii_whitespace() {
                j += 1;
            }
            let attribute = html[start..j].to_ascii_lowercase();
            let mut value = String::new();
            if b[j] == b'=' {
                j += 1;
                assert_eq!(b[j], b'"', "<{name} {attribute}=…> is not quoted");
                let end = html[j + 1..].find('"').expect("a closing quote");
                value = html[j + 1..j + 1 + end].to_string();
                j += end + 2;
            }
            attributes.push((attribute, value));
        }
        out.push((name, attributes));
        i = j;
    }
    out
}

/// `html` holds only the tags and attributes a transcript writes, links only
/// to the web, and no script in any form.
pub fn assert_inert(html: &str) {
    const TAGS: &[&str] = &[
        "!doctype", "html", "head", "meta", "title", "style", "body", "header", "h1", "div", "dl",
        "dt", "dd", "p", "main", "article", "img", "span", "time", "a", "ul", "li", "br", "footer",
    ];
    const ATTRIBUTES: &[&str] = &[
        "html",
        "lang",
        "charset",
        "http-equiv",
        "content",
        "name",
        "class",
        "src",
        "alt",
        "width",
        "height",
        "datetime",
        "title",
        "href",
        "rel",
        "loading",
    ];
    assert!(!html.to_ascii_lowercase().contains("<script"));
    for (tag, attributes) in tags(html) {
        let name = tag.trim_start_matches('/');
        assert!(TAGS.contains(&name), "a <{tag}> tag");
        for (attribute, value) in attributes {
            assert!(
                ATTRIBUTES.contains(&attribute.as_str()),
                "<{tag} {attribute}=\"{value}\">"
            );
            if attribute == "href" || attribute == "src" {
                assert!(
                    value.starts_with("https://") || value.starts_with("http://"),
                    "<{tag} {attribute}=\"{value}\">"
                );
            }
            assert!(!value.contains('<') && !value.contains('>'), "{value}");
        }
    }
}

// -------------------------------------------------------- manifest, config

#[test]
fn the_manifest_asks_for_what_the_feature_uses() {
    let manifest = Tickets::describe();
    assert_eq!(
        (
            manifest.id.as_str(),
            manifest.version.as_str(),
            manifest.name.as_str()
        ),
        ("tickets", "0.1.0", "Tickets")
    );
    for required in [
        Capability::Messages,
        Capability::MessageContent,
        Capability::Members,
        Capability::Channels,
        Capability::Storage,
        Capability::Scheduler,
    ] {
        assert!(manifest.request(required).unwrap().required, "{required:?}");
    }
    assert!(!manifest.request(Capability::Audit).unwrap().required);
    assert!(manifest.request(Capability::Roles).is_none());
    assert_eq!(manifest.events, [EventKind::MessageCreated]);
    let panel = &manifest.commands[0];
    assert_eq!(panel.name, "ticket-panel");
    assert_eq!(panel.default_permissions, Some(0x20));
    assert_eq!(panel.subcommands[0].name, "create");
    let required: Vec<&str> = panel.subcommands[0]
        .options
        .iter()
        .filter(|o| o.required)
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(required, ["channel", "title"]);
    let ticket = &manifest.commands[1];
    assert_eq!(ticket.default_permissions, None, "openers close their own");
    let subcommands: Vec<&str> = ticket.subcommands.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(subcommands, ["close", "claim", "add", "remove"]);
}

#[test]
fn the_default_config_is_the_documented_one_and_fits_the_schema() {
    let manifest = Tickets::describe();
    let schema: Value = serde_json::from_str(&manifest.config_schema).unwrap();
    let default: Value = serde_json::from_str(&manifest.default_config).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        default,
        json!({
            "max_open_per_member": 1, "max_opens_per_30s": 5, "naming": "username",
            "inactive_seconds": 172_800, "warning_seconds": 3600,
            "transcript_link_days": 7, "log_channel": null
        })
    );
    assert_eq!(schema_problems(&schema, &default), Vec::<String>::new());
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
        json!({ "inactive_seconds": 0 }),
        json!({ "inactive_seconds": 10, "naming": "number" }),
        json!({ "log_channel": "1100000000000000001" }),
        json!({ "max_open_per_member": 10, "max_opens_per_30s": 100, "transcript_link_days": 1 }),
    ] {
        assert_eq!(
            schema_problems(&schema, &good),
            Vec::<String>::new(),
            "{good}"
        );
    }
    for bad in [
        json!({ "naming": "emoji" }),
        json!({ "inactive_seconds": 5 }),
        json!({ "inactive_seconds": 2_592_001 }),
        json!({ "warning_seconds": 4 }),
        json!({ "transcript_link_days": 8 }),
        json!({ "max_open_per_member": 0 }),
        json!({ "max_opens_per_30s": 101 }),
        json!({ "log_channel": "general" }),
        json!({ "colour": "red" }),
    ] {
        assert!(!schema_problems(&schema, &bad).is_empty(), "{bad}");
    }
}

#[test]
fn config_reads_ids_as_strings_and_keeps_values_in_range() {
    let host = host();
    host.set_config(
        json!({ "log_channel": "900", "naming": "number", "transcript_link_days": 30 }),
    );
    let config = Config::load().unwrap();
    assert_eq!(config.log_channel, Some(LOG));
    assert_eq!(config.naming, Naming::Number);
    assert_eq!(config.transcript_link_days, 7, "a week is the longest link");
    assert_eq!(config.link_seconds(), 604_800);
    assert_eq!(config.max_open_per_member, 1, "defaults fill the rest");
}

#[test]
fn routes_are_declared_with_camel_case_ids_and_schemas() {
    let routes = Tickets::routes();
    let declared: Vec<(Method, &str, &str)> = routes
        .iter()
        .map(|r| (r.method, r.path.as_str(), r.operation_id.as_str()))
        .collect();
    assert_eq!(
        declared,
        [
            (Method::Get, "/tickets", "listTickets"),
            (Method::Get, "/tickets/{id}", "getTicket"),
            (Method::Post, "/tickets/{id}/claim", "claimTicket"),
            (Method::Post, "/tickets/{id}/unclaim", "unclaimTicket"),
            (Method::Post, "/tickets/{id}/close", "closeTicket"),
            (Method::Post, "/tickets/{id}/reopen", "reopenTicket"),
            (Method::Post, "/tickets/{id}/delete", "deleteTicket"),
            (
                Method::Get,
                "/tickets/{id}/transcript",
                "getTicketTranscript"
            ),
            (Method::Get, "/panels", "listPanels"),
            (Method::Post, "/panels", "createPanel"),
            (Method::Delete, "/panels/{id}", "deletePanel"),
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
        let response: Value = serde_json::from_str(&route.response_schema).unwrap();
        assert_eq!(response["type"], "object", "{}", route.path);
    }
    let with_body: Vec<&str> = routes
        .iter()
        .filter(|r| r.request_schema.is_some())
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(with_body, ["/tickets/{id}/close", "/panels"]);
}

/// Ids are strings in every JSON the feature writes.
#[test]
fn a_ticket_writes_its_ids_as_strings_and_reads_either() {
    let _host = host();
    let json = json!({
        "number": 1, "panel": 1, "channel_id": 1_100_000_000_000_000_001u64, "opener_id": "42",
        "opener_name": "ann", "support_roles": [500, "501"], "status": "open",
        "claimed_by": null, "opened_at": 1, "last_activity": 1, "closed_at": null,
        "closed_by": "50", "close_reason": null, "transcript": null, "warned_at": null,
        "inactivity_job": null
    });
    let ticket: Ticket = serde_json::from_value(json).unwrap();
    assert_eq!(ticket.channel_id, 1_100_000_000_000_000_001);
    assert_eq!(ticket.support_roles, [500, 501]);
    let written = serde_json::to_value(&ticket).unwrap();
    assert_eq!(written["channel_id"], "1100000000000000001");
    assert_eq!(written["opener_id"], "42");
    assert_eq!(written["support_roles"], json!(["500", "501"]));
    assert_eq!(written["closed_by"], "50");
    assert_eq!(written["claimed_by"], Value::Null);
    assert!(schema_problems(&crate::routes::ticket_schema(), &written).is_empty());
}

#[test]
fn unknown_buttons_commands_and_jobs_are_not_mistaken_for_ours() {
    let host = host();
    host.set_invoker_permissions(0);
    for custom_id in ["open", "claim:x", "frobnicate:1", ""] {
        let interaction = ComponentInteraction::button(custom_id, member(ANN), 1);
        assert!(
            matches!(
                Tickets::on_component(&host.context(), interaction),
                Err(Error::InvalidArgument(_))
            ),
            "{custom_id}"
        );
    }
    let invocation = CommandInvocation::new("tickets", member(ANN), 1);
    assert!(Tickets::on_command(&host.context(), invocation).is_err());
    let job = townes_sdk::ScheduledJob::new("job-9", "something-else", "1");
    assert_eq!(Tickets::on_schedule(&host.context(), job), Ok(()));
    assert!(host.effects().is_empty());
}
