//! The announcements feature against the SDK's mock host: no host, no wasm.
//!
//! The mock host has no clock, so every test stops the feature's clock
//! ([`set_now`]) and moves it by hand; jobs are run the way the host
//! runs them ([`fire`]: taken off the pending list, then `on_schedule`).
//! [`schema_problems`] checks JSON against the JSON Schema keywords this
//! feature uses, so the default config and every route call's request and
//! answer are held to what the manifest and routes declare, as the host does.

mod commands;
mod lifecycle;
mod routes;
mod running;
mod schedule;

use crate::run::JobPayload;
use crate::store::Announcement;
use crate::*;
use townes_sdk::serde_json::Value;
use townes_sdk::testing::{Effect, GUILD_ID, MockHost, OWNER_ID};
use townes_sdk::{ApiCaller, CommandArgument, GuildInfo, Member, Method, OptionValue, User};

/// Manages the server.
pub const ADMIN: Snowflake = 7;
pub const CHANNEL: Snowflake = 300;
pub const OTHER_CHANNEL: Snowflake = 301;
pub const ROLE: Snowflake = 500;
pub const OTHER_ROLE: Snowflake = 501;

/// Monday 2026-12-07 08:00 UTC, when every test starts.
pub const T0: u64 = 1_796_630_400;
pub const MINUTE: u64 = 60;
pub const HOUR: u64 = 3600;
pub const DAY: u64 = 86_400;
/// Monday 2026-12-07 00:00 UTC.
pub const MONDAY: u64 = T0 - 8 * HOUR;

/// The mock as the host sets it up after an install that grants everything,
/// in a guild called Playground with 42 members, at [`T0`].
pub fn host() -> MockHost {
    let host = MockHost::for_feature::<Announcements>();
    host.set_guild(GuildInfo {
        id: GUILD_ID,
        name: "Playground".into(),
        member_count: 42,
        owner_id: OWNER_ID,
    });
    host.add_member(admin());
    townes_sdk::testing::set_now(T0);
    host
}

pub fn admin() -> Member {
    Member::new(User::new(ADMIN, "admin"))
}

/// Moves the feature's clock.
pub fn set_now(unix: u64) {
    townes_sdk::testing::set_now(unix);
}

/// `/announce {subcommand}` by [`ADMIN`] in [`CHANNEL`].
pub fn command(
    host: &MockHost,
    subcommand: &str,
    args: &[(&str, OptionValue)],
) -> Result<Reply, Error> {
    let mut invocation =
        CommandInvocation::new("announce", admin(), CHANNEL).with_subcommand(subcommand);
    invocation.arguments = args
        .iter()
        .map(|(n, v)| CommandArgument {
            name: n.to_string(),
            value: v.clone(),
        })
        .collect();
    Announcements::on_command(&host.context(), invocation)
}

pub fn text(value: &str) -> OptionValue {
    OptionValue::Text(value.into())
}

/// `/announce create` in [`CHANNEL`] with `message` and one more argument;
/// answers the reply's text.
pub fn create(host: &MockHost, message: &str, when: (&str, OptionValue)) -> String {
    let reply = command(
        host,
        "create",
        &[
            ("channel", OptionValue::Channel(CHANNEL)),
            ("message", text(message)),
            when,
        ],
    )
    .unwrap_or_else(|e| panic!("/announce create: {e:?}"));
    assert!(reply.ephemeral);
    reply.content().unwrap().to_string()
}

pub fn announcement(number: u64) -> Announcement {
    store::load(number).unwrap()
}

/// Edits a stored announcement behind the feature's back.
pub fn edit(number: u64, change: impl Fn(&mut Announcement)) {
    store::update(number, |a| {
        change(a);
        Ok(())
    })
    .unwrap();
}

/// The one pending job.
pub fn the_job(host: &MockHost) -> ScheduledJob {
    let jobs = host.pending_jobs();
    assert_eq!(jobs.len(), 1, "one live job: {jobs:?}");
    jobs[0].clone()
}

pub fn payload(job: &ScheduledJob) -> JobPayload {
    assert_eq!(job.name, run::ANNOUNCE_JOB);
    serde_json::from_str(&job.payload).unwrap()
}

/// Runs `job` the way the host does: off the pending list, then the handler.
pub fn fire(host: &MockHost, job: &ScheduledJob) -> Result<(), Error> {
    host.take_job(&job.id);
    Announcements::on_schedule(&host.context(), job.clone())
}

/// `(job id, payload, delay)` of every job scheduled, in order.
pub fn scheduled(host: &MockHost) -> Vec<(String, JobPayload, u32)> {
    host.effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::JobScheduled {
                id,
                payload,
                delay_seconds,
                ..
            } => Some((id, serde_json::from_str(&payload).unwrap(), delay_seconds)),
            _ => None,
        })
        .collect()
}

pub fn cancelled(host: &MockHost) -> Vec<String> {
    host.effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::JobCancelled { id } => Some(id),
            _ => None,
        })
        .collect()
}

/// The `action` of every live event, checking its kind and shape.
pub fn live_actions(host: &MockHost) -> Vec<String> {
    host.live_events()
        .into_iter()
        .map(|(kind, data)| {
            assert_eq!(kind, "announcement_update");
            let problems =
                schema_problems(&crate::routes::announcement_schema(), &data["announcement"]);
            assert!(problems.is_empty(), "{problems:?}");
            data["action"].as_str().unwrap().to_string()
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
    body: Option<Value>,
    caller: Option<Snowflake>,
) -> Result<(u16, Value), Error> {
    let request = ApiRequest {
        method,
        route: route.into(),
        params: id
            .map(|id| vec![("id".to_string(), id.to_string())])
            .unwrap_or_default(),
        query: Vec::new(),
        body: body.map(|b| b.to_string()),
        caller: ApiCaller {
            user_id: caller,
            owner: caller.is_none(),
            permissions: caller.map_or(u64::MAX, |_| MANAGE_GUILD),
        },
    };
    townes_sdk::testing::call_route::<Announcements>(host, request)
}

// ------------------------------------------------------------ JSON Schema

/// Checks JSON against the feature's schemas as the host does.
pub use townes_sdk::testing::schema_problems;

// -------------------------------------------------------- manifest, config

#[test]
fn the_manifest_asks_for_what_the_feature_uses() {
    let manifest = Announcements::describe();
    assert_eq!(
        (
            manifest.id.as_str(),
            manifest.version.as_str(),
            manifest.name.as_str()
        ),
        ("announcements", "0.1.0", "Announcements")
    );
    for required in [
        Capability::Messages,
        Capability::Storage,
        Capability::Scheduler,
    ] {
        assert!(manifest.request(required).unwrap().required, "{required:?}");
    }
    for optional in [Capability::Members, Capability::Audit] {
        assert!(
            !manifest.request(optional).unwrap().required,
            "{optional:?}"
        );
    }
    for unused in [
        Capability::Roles,
        Capability::Channels,
        Capability::Moderation,
        Capability::MessageContent,
    ] {
        assert!(manifest.request(unused).is_none(), "{unused:?}");
    }
    assert!(manifest.events.is_empty());
    let [announce] = &manifest.commands[..] else {
        panic!("one command: {:?}", manifest.commands);
    };
    assert_eq!(announce.name, "announce");
    assert!(announce.slash);
    assert_eq!(announce.default_permissions, Some(0x20));
    let subcommands: Vec<&str> = announce
        .subcommands
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        subcommands,
        ["create", "list", "pause", "resume", "delete", "send"]
    );
    let create = &announce.subcommands[0];
    let options: Vec<(&str, bool)> = create
        .options
        .iter()
        .map(|o| (o.name.as_str(), o.required))
        .collect();
    assert_eq!(
        options,
        [
            ("channel", true),
            ("message", true),
            ("every", false),
            ("daily", false),
            ("weekly", false),
            ("at", false),
            ("role", false)
        ]
    );
    for numbered in &announce.subcommands[2..] {
        assert_eq!(numbered.options.len(), 1);
        assert_eq!(numbered.options[0].name, "number");
        assert!(numbered.options[0].required);
    }
}

#[test]
fn the_default_config_is_the_documented_one_and_fits_the_schema() {
    let manifest = Announcements::describe();
    let schema: Value = serde_json::from_str(&manifest.config_schema).unwrap();
    let default: Value = serde_json::from_str(&manifest.default_config).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        default,
        json!({ "allowed_ping_roles": [], "max_announcements": 25 })
    );
    assert_eq!(schema_problems(&schema, &default), Vec::<String>::new());
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
        json!({ "allowed_ping_roles": ["1141240001234567890", 501] }),
        json!({ "max_announcements": 1 }),
        json!({ "max_announcements": 100 }),
    ] {
        assert_eq!(
            schema_problems(&schema, &good),
            Vec::<String>::new(),
            "{good}"
        );
    }
    for bad in [
        json!({ "max_announcements": 0 }),
        json!({ "max_announcements": 101 }),
        json!({ "allowed_ping_roles": ["@everyone"] }),
        json!({ "allowed_ping_roles": ["here"] }),
        json!({ "allowed_ping_roles": "500" }),
        json!({ "timezone": "Europe/Paris" }),
    ] {
        assert!(!schema_problems(&schema, &bad).is_empty(), "{bad}");
    }
}

#[test]
fn config_reads_ids_as_strings_and_never_pings_everyone() {
    let host = host();
    host.set_config(json!({
        "allowed_ping_roles": ["500", GUILD_ID],
        "max_announcements": 500
    }));
    let config = Config::load().unwrap();
    assert_eq!(config.allowed_ping_roles, [ROLE, GUILD_ID]);
    assert_eq!(
        config.max_announcements, 100,
        "clamped to the schema's range"
    );
    assert!(config.may_ping(ROLE, GUILD_ID));
    assert!(!config.may_ping(OTHER_ROLE, GUILD_ID), "not listed");
    assert!(
        !config.may_ping(GUILD_ID, GUILD_ID),
        "@everyone, even when listed"
    );
}

#[test]
fn unknown_commands_and_jobs_are_not_mistaken_for_ours() {
    let host = host();
    let invocation = CommandInvocation::new("announcements", admin(), CHANNEL);
    assert!(Announcements::on_command(&host.context(), invocation).is_err());
    assert!(matches!(
        command(&host, "frobnicate", &[]),
        Err(Error::InvalidArgument(_))
    ));
    let job = ScheduledJob::new("job-9", "something-else", "1");
    assert_eq!(Announcements::on_schedule(&host.context(), job), Ok(()));
    let broken = ScheduledJob::new("job-9", run::ANNOUNCE_JOB, "not json");
    assert!(matches!(
        Announcements::on_schedule(&host.context(), broken),
        Err(Error::InvalidArgument(_))
    ));
    assert!(host.effects().is_empty());
}
