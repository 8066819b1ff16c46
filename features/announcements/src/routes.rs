//! The dashboard routes. The host lets only members who manage the guild
//! (and the tenant's API keys) reach them, and checks each body against the
//! route's request schema first; what a schema cannot say (a schedule that
//! does not parse, a time that has passed) is refused here as
//! `invalid-argument` (400) with a hint. `{id}` is the announcement's number.

use crate::Config;
use crate::actions::{self, Draft, Patch};
use crate::run::MAX_EMBED_DESCRIPTION;
use crate::schedule::{MIN_EVERY, Schedule, Weekday};
use crate::store::{self, EmbedSpec};
use serde::{Deserialize, Deserializer};
use townes_sdk::serde_json::Value;
use townes_sdk::{
    ApiRequest, ApiResponse, Context, Error, Method, Route, Snowflake, json, limits, snowflake,
};

// ------------------------------------------------------------------ schemas

/// A Discord id as the API writes it: a decimal string.
fn id_schema() -> Value {
    json!({ "type": "string", "pattern": snowflake::PATTERN })
}

fn nullable_id_schema() -> Value {
    json!({ "anyOf": [id_schema(), { "type": "null" }] })
}

fn embed_schema() -> Value {
    json!({
        "anyOf": [
            { "type": "null" },
            {
                "type": "object",
                "properties": {
                    "title": { "type": ["string", "null"], "maxLength": limits::EMBED_TITLE },
                    "description": { "type": ["string", "null"], "maxLength": MAX_EMBED_DESCRIPTION },
                    "color": {
                        "type": ["integer", "null"], "minimum": 0, "maximum": 0xff_ffff,
                        "description": "0xRRGGBB as a number"
                    }
                },
                "additionalProperties": false
            }
        ]
    })
}

fn time_of_day_schema() -> Value {
    json!({ "type": "string", "description": "A 24-hour UTC time, HH:MM" })
}

/// A schedule: one of four one-key objects. `input` also takes `at` as an
/// RFC 3339 string and any spelling of the day.
fn schedule_schema(input: bool) -> Value {
    let at = if input {
        json!({
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "description": "RFC 3339, e.g. 2026-12-07T10:00:00Z" }
            ],
            "description": "Once, at this moment (Unix seconds or RFC 3339)"
        })
    } else {
        json!({ "type": "integer", "minimum": 0, "description": "Once, at these Unix seconds" })
    };
    let day = if input {
        json!({ "type": "string", "description": "mon, tue, wed, thu, fri, sat or sun" })
    } else {
        json!({ "enum": Weekday::ALL.map(Weekday::short) })
    };
    let one = |key: &str, value: Value| {
        json!({
            "type": "object",
            "required": [key],
            "properties": { key: value },
            "additionalProperties": false
        })
    };
    json!({
        "anyOf": [
            one("at", at),
            one("every", json!({
                "type": "string",
                "description": format!("An interval such as 30m, 6h, 1h30m, 2d or 1w; {} minutes at least", MIN_EVERY / 60)
            })),
            one("daily", time_of_day_schema()),
            one("weekly", json!({
                "type": "object",
                "required": ["day", "time"],
                "properties": { "day": day, "time": time_of_day_schema() },
                "additionalProperties": false
            }))
        ],
        "description": "When it runs; times are UTC"
    })
}

pub fn announcement_schema() -> Value {
    json!({
        "type": "object",
        "required": [
            "number", "channel_id", "content", "embed", "ping_role", "schedule", "paused",
            "next_run", "last_run", "runs", "created_by", "created_at", "pending_job",
            "last_due", "ping_skipped", "last_error"
        ],
        "properties": {
            "number": { "type": "integer", "minimum": 1 },
            "channel_id": id_schema(),
            "content": { "type": "string", "description": "With template variables such as {server.name}" },
            "embed": embed_schema(),
            "ping_role": nullable_id_schema(),
            "schedule": schedule_schema(false),
            "paused": { "type": "boolean" },
            "next_run": { "type": ["integer", "null"], "description": "Unix seconds" },
            "last_run": { "type": ["integer", "null"], "description": "Unix seconds" },
            "runs": { "type": "integer", "minimum": 0 },
            "created_by": nullable_id_schema(),
            "created_at": { "type": "integer", "description": "Unix seconds" },
            "pending_job": { "type": ["string", "null"] },
            "last_due": {
                "type": ["integer", "null"],
                "description": "Due time of the last scheduled run posted (Unix seconds)"
            },
            "ping_skipped": {
                "type": "boolean",
                "description": "The last post did not ping ping_role: allowed_ping_roles does not list it"
            },
            "last_error": { "type": ["string", "null"] }
        }
    })
}

pub fn new_announcement_schema() -> Value {
    json!({
        "type": "object",
        "required": ["channel_id", "schedule"],
        "properties": {
            "channel_id": snowflake::schema(),
            "content": { "type": "string", "maxLength": limits::CONTENT },
            "embed": embed_schema(),
            "ping_role": snowflake::nullable_schema(),
            "schedule": schedule_schema(true),
            "paused": { "type": "boolean", "description": "Create it paused (not scheduled until resumed)" }
        },
        "additionalProperties": false
    })
}

pub fn patch_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "channel_id": snowflake::schema(),
            "content": { "type": "string", "maxLength": limits::CONTENT },
            "embed": embed_schema(),
            "ping_role": snowflake::nullable_schema(),
            "schedule": schedule_schema(true)
        },
        "additionalProperties": false,
        "description": "Only the fields given change; null removes the embed or the role. A new schedule starts from now."
    })
}

/// `schema` with `example` as its JSON Schema `examples`: the host shows the
/// first in the API document.
fn with_example(mut schema: Value, example: Value) -> Value {
    schema["examples"] = json!([example]);
    schema
}

/// A made-up announcement, for the API document.
pub fn announcement_example() -> Value {
    json!({
        "number": 3,
        "channel_id": "1141234567890123458",
        "content": "Good morning, {server.name}! Today is {weekday}, {date}.",
        "embed": {
            "title": "Weekly community call",
            "description": "Join us in the Stage channel at 18:00 UTC.",
            "color": 5793266
        },
        "ping_role": "1141240001234567890",
        "schedule": { "weekly": { "day": "mon", "time": "09:30" } },
        "paused": false,
        "next_run": 1796635800,
        "last_run": 1796031000,
        "runs": 12,
        "created_by": "1098765432109876543",
        "created_at": 1789380000,
        "pending_job": "5f0c2a9e8b7d4c1a9e3f6b2d7c8a1e40",
        "last_due": 1796031000,
        "ping_skipped": false,
        "last_error": null
    })
}

pub fn routes() -> Vec<Route> {
    let announcement = || with_example(announcement_schema(), announcement_example());
    vec![
        Route::get(
            "/announcements",
            "listAnnouncements",
            "The guild's announcements, by number",
        )
        .response(with_example(
            json!({
                "type": "object",
                "required": ["announcements"],
                "properties": { "announcements": { "type": "array", "items": announcement_schema() } }
            }),
            json!({ "announcements": [announcement_example()] }),
        )),
        Route::post(
            "/announcements",
            "createAnnouncement",
            "Creates an announcement and schedules its first run (201)",
        )
        .request(with_example(
            new_announcement_schema(),
            json!({
                "channel_id": "1141234567890123458",
                "content": "Good morning, {server.name}! Today is {weekday}, {date}.",
                "ping_role": "1141240001234567890",
                "schedule": { "weekly": { "day": "mon", "time": "09:30" } }
            }),
        ))
        .response(announcement()),
        Route::get("/announcements/{id}", "getAnnouncement", "One announcement")
            .response(announcement()),
        Route::patch(
            "/announcements/{id}",
            "updateAnnouncement",
            "Changes an announcement; a new schedule starts from now",
        )
        .request(with_example(
            patch_schema(),
            json!({ "content": "Stand-up in 15 minutes!", "schedule": { "daily": "08:45" } }),
        ))
        .response(announcement()),
        Route::post(
            "/announcements/{id}/pause",
            "pauseAnnouncement",
            "Pauses an announcement: its pending run is cancelled",
        )
        .response(announcement()),
        Route::post(
            "/announcements/{id}/resume",
            "resumeAnnouncement",
            "Resumes an announcement: its next run is scheduled from now",
        )
        .response(announcement()),
        Route::post(
            "/announcements/{id}/send",
            "sendAnnouncement",
            "Posts an announcement now; its schedule stays as it is",
        )
        .response(with_example(
            json!({
                "type": "object",
                "required": ["announcement", "message_id"],
                "properties": {
                    "announcement": announcement_schema(),
                    "message_id": id_schema()
                }
            }),
            json!({ "announcement": announcement_example(), "message_id": "1141299990000000001" }),
        )),
        Route::delete(
            "/announcements/{id}",
            "deleteAnnouncement",
            "Deletes an announcement and cancels its pending run",
        )
        .response(announcement()),
    ]
}

// ------------------------------------------------------------------ bodies

/// `POST /announcements`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBody {
    #[serde(deserialize_with = "snowflake::de")]
    channel_id: Snowflake,
    #[serde(default)]
    content: String,
    #[serde(default)]
    embed: Option<EmbedSpec>,
    #[serde(default, deserialize_with = "snowflake::de_opt")]
    ping_role: Option<Snowflake>,
    /// Read by [`Schedule::from_json`], whose refusals carry the hints.
    schedule: Value,
    #[serde(default)]
    paused: bool,
}

/// `PATCH /announcements/{id}`: a field left out stays `None`; a `null` is
/// `Some(None)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "snowflake::de_opt")]
    channel_id: Option<Snowflake>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default, deserialize_with = "present")]
    embed: Option<Option<EmbedSpec>>,
    #[serde(default, deserialize_with = "present_id")]
    ping_role: Option<Option<Snowflake>>,
    #[serde(default)]
    schedule: Option<Value>,
}

/// A field that is present, `null` or not.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

fn present_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<Snowflake>>, D::Error> {
    snowflake::de_opt(deserializer).map(Some)
}

fn number_param(request: &ApiRequest) -> Result<u64, Error> {
    request
        .param("id")
        .and_then(|id| id.parse().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| Error::invalid("id: an announcement number, e.g. 3"))
}

// ------------------------------------------------------------------ handler

pub fn handle(ctx: &Context, request: ApiRequest) -> Result<ApiResponse, Error> {
    let by = request.caller.user_id;
    match (request.method, request.route.as_str()) {
        (Method::Get, "/announcements") => Ok(ApiResponse::json(
            &json!({ "announcements": store::all()? }),
        )),
        (Method::Post, "/announcements") => {
            let body: NewBody = request.body()?;
            let draft = Draft {
                channel_id: body.channel_id,
                content: body.content,
                embed: body.embed,
                ping_role: body.ping_role,
                schedule: Schedule::from_json(&body.schedule)?,
                paused: body.paused,
            };
            let created = actions::create(ctx, &Config::load()?, draft, by)?;
            Ok(ApiResponse::with_status(201, &created))
        }
        (Method::Get, "/announcements/{id}") => {
            Ok(ApiResponse::json(&store::load(number_param(&request)?)?))
        }
        (Method::Patch, "/announcements/{id}") => {
            let number = number_param(&request)?;
            let body: PatchBody = request.body()?;
            let patch = Patch {
                channel_id: body.channel_id,
                content: body.content,
                embed: body.embed,
                ping_role: body.ping_role,
                schedule: body
                    .schedule
                    .as_ref()
                    .map(Schedule::from_json)
                    .transpose()?,
            };
            Ok(ApiResponse::json(&actions::update(ctx, number, patch, by)?))
        }
        (Method::Post, "/announcements/{id}/pause") => Ok(ApiResponse::json(
            &actions::pause(number_param(&request)?, by)?.0,
        )),
        (Method::Post, "/announcements/{id}/resume") => Ok(ApiResponse::json(
            &actions::resume(number_param(&request)?, by)?.0,
        )),
        (Method::Post, "/announcements/{id}/send") => {
            let number = number_param(&request)?;
            let (announcement, message_id) = actions::send_now(ctx, &Config::load()?, number, by)?;
            Ok(ApiResponse::json(&json!({
                "announcement": announcement,
                "message_id": message_id.to_string(),
            })))
        }
        (Method::Delete, "/announcements/{id}") => Ok(ApiResponse::json(&actions::delete(
            number_param(&request)?,
            by,
        )?)),
        _ => Err(Error::not_found("no such route")),
    }
}
