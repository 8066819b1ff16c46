//! The dashboard routes. The host lets only members who manage the guild (and
//! the tenant's API keys) reach them, so they act without the support-role
//! checks the buttons make; the caller's user id, when there is one, is who
//! claimed or closed.

use crate::Config;
use crate::actions;
use crate::panels::{self, PanelDraft};
use crate::store::{self, Status};
use serde::Deserialize;
use townes_sdk::serde_json::Value;
use townes_sdk::{ApiRequest, ApiResponse, Error, Method, Route, files, json, snowflake};

/// Tickets `GET /tickets` answers at most.
pub const LIST_LIMIT: usize = 100;

/// An id as the API writes it: a decimal string.
fn id_schema() -> Value {
    json!({ "type": "string", "pattern": snowflake::PATTERN })
}

fn nullable_id_schema() -> Value {
    json!({ "anyOf": [id_schema(), { "type": "null" }] })
}

pub fn ticket_schema() -> Value {
    json!({
        "type": "object",
        "required": [
            "number", "panel", "channel_id", "opener_id", "opener_name", "support_roles",
            "status", "claimed_by", "opened_at", "last_activity", "closed_at", "closed_by",
            "close_reason", "transcript", "warned_at", "inactivity_job"
        ],
        "properties": {
            "number": { "type": "integer", "minimum": 1 },
            "panel": { "type": "integer", "minimum": 1 },
            "channel_id": id_schema(),
            "opener_id": id_schema(),
            "opener_name": { "type": "string" },
            "support_roles": { "type": "array", "items": id_schema() },
            "status": { "enum": ["open", "closed", "deleted"] },
            "claimed_by": nullable_id_schema(),
            "opened_at": { "type": "integer", "description": "Unix seconds" },
            "last_activity": { "type": "integer", "description": "Unix seconds" },
            "closed_at": { "type": ["integer", "null"] },
            "closed_by": nullable_id_schema(),
            "close_reason": { "type": ["string", "null"] },
            "transcript": { "type": ["string", "null"], "description": "The transcript's file name" },
            "warned_at": { "type": ["integer", "null"] },
            "inactivity_job": { "type": ["string", "null"] }
        }
    })
}

pub fn panel_schema() -> Value {
    json!({
        "type": "object",
        "required": [
            "number", "channel_id", "message_id", "title", "description", "button_label",
            "button_emoji", "category_id", "support_roles"
        ],
        "properties": {
            "number": { "type": "integer", "minimum": 1 },
            "channel_id": id_schema(),
            "message_id": id_schema(),
            "title": { "type": "string" },
            "description": { "type": ["string", "null"] },
            "button_label": { "type": "string" },
            "button_emoji": { "type": ["string", "null"] },
            "category_id": nullable_id_schema(),
            "support_roles": { "type": "array", "items": id_schema() }
        }
    })
}

pub fn new_panel_schema() -> Value {
    json!({
        "type": "object",
        "required": ["channel_id", "title"],
        "properties": {
            "channel_id": snowflake::schema(),
            "title": { "type": "string", "minLength": 1, "maxLength": 256 },
            "description": { "type": ["string", "null"], "maxLength": 4000 },
            "button_label": { "type": ["string", "null"], "maxLength": 80 },
            "button_emoji": { "type": ["string", "null"], "maxLength": 100 },
            "category_id": snowflake::nullable_schema(),
            "support_roles": {
                "type": "array",
                "maxItems": panels::MAX_SUPPORT_ROLES,
                "items": snowflake::schema()
            }
        },
        "additionalProperties": false
    })
}

pub fn close_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "reason": { "type": ["string", "null"], "maxLength": actions::MAX_REASON }
        },
        "additionalProperties": false
    })
}

pub fn transcript_schema() -> Value {
    json!({
        "type": "object",
        "required": ["name", "url", "size", "created_at"],
        "properties": {
            "name": { "type": "string" },
            "url": { "type": "string", "description": "Works for `transcript_link_days`" },
            "size": { "type": "integer", "minimum": 0 },
            "created_at": { "type": "string", "description": "RFC 3339, UTC" }
        }
    })
}

/// `schema` with `example` as its JSON Schema `examples`: the host shows the
/// first in the API document.
fn with_example(mut schema: Value, example: Value) -> Value {
    schema["examples"] = json!([example]);
    schema
}

/// A made-up closed ticket, for the API document.
fn ticket_example() -> Value {
    json!({
        "number": 42,
        "panel": 1,
        "channel_id": "1141234567890123460",
        "opener_id": "1150011223344556677",
        "opener_name": "ben",
        "support_roles": ["1141240001234567890"],
        "status": "closed",
        "claimed_by": "1098765432109876543",
        "opened_at": 1796600000,
        "last_activity": 1796603600,
        "closed_at": 1796607200,
        "closed_by": "1098765432109876543",
        "close_reason": "Solved: the order shipped",
        "transcript": "tickets/42/transcript.html",
        "warned_at": null,
        "inactivity_job": null
    })
}

/// A made-up panel, for the API document.
fn panel_example() -> Value {
    json!({
        "number": 1,
        "channel_id": "1141234567890123458",
        "message_id": "1141299990000000001",
        "title": "Need help?",
        "description": "Open a ticket and the team will answer here.",
        "button_label": "Open a ticket",
        "button_emoji": "🎫",
        "category_id": "1141234567890123457",
        "support_roles": ["1141240001234567890"]
    })
}

pub fn routes() -> Vec<Route> {
    let ticket = || with_example(ticket_schema(), ticket_example());
    let panel = || with_example(panel_schema(), panel_example());
    vec![
        Route::get(
            "/tickets",
            "listTickets",
            "The guild's tickets, newest first, at most 100 (`?status=open|closed|deleted|all`, `?user=` for one opener's)",
        )
        .response(with_example(
            json!({
                "type": "object",
                "required": ["tickets"],
                "properties": { "tickets": { "type": "array", "items": ticket_schema() } }
            }),
            json!({ "tickets": [ticket_example()] }),
        )),
        Route::get("/tickets/{id}", "getTicket", "One ticket").response(ticket()),
        Route::post("/tickets/{id}/claim", "claimTicket", "Claims the ticket for the caller")
            .response(ticket()),
        Route::post("/tickets/{id}/unclaim", "unclaimTicket", "Frees a claimed ticket")
            .response(ticket()),
        Route::post(
            "/tickets/{id}/close",
            "closeTicket",
            "Closes the ticket with an optional reason (body `{}` for none) and makes its transcript",
        )
        .request(with_example(close_schema(), json!({ "reason": "Solved: the order shipped" })))
        .response(ticket()),
        Route::post("/tickets/{id}/reopen", "reopenTicket", "Reopens a closed ticket")
            .response(ticket()),
        Route::post(
            "/tickets/{id}/delete",
            "deleteTicket",
            "Deletes the ticket's channel, after making its transcript if it has none",
        )
        .response(ticket()),
        Route::get(
            "/tickets/{id}/transcript",
            "getTicketTranscript",
            "A fresh link to the ticket's transcript",
        )
        .response(with_example(
            transcript_schema(),
            json!({
                "name": "tickets/42/transcript.html",
                "url": "https://api.townes.example/files/MTE0MTIzNDU2Nzg5MDEyMzQ1Ngp0aWNrZXRz.c2lnbmF0dXJl",
                "size": 18342,
                "created_at": "2026-12-01T14:00:00+00:00"
            }),
        )),
        Route::get("/panels", "listPanels", "The guild's ticket panels").response(with_example(
            json!({
                "type": "object",
                "required": ["panels"],
                "properties": { "panels": { "type": "array", "items": panel_schema() } }
            }),
            json!({ "panels": [panel_example()] }),
        )),
        Route::post("/panels", "createPanel", "Posts a ticket panel in a channel")
            .request(with_example(
                new_panel_schema(),
                json!({
                    "channel_id": "1141234567890123458",
                    "title": "Need help?",
                    "description": "Open a ticket and the team will answer here.",
                    "support_roles": ["1141240001234567890"]
                }),
            ))
            .response(panel()),
        Route::delete(
            "/panels/{id}",
            "deletePanel",
            "Deletes a panel and its message (its tickets stay)",
        )
        .response(with_example(
            json!({
                "type": "object",
                "required": ["panel", "message_deleted"],
                "properties": {
                    "panel": panel_schema(),
                    "message_deleted": { "type": "boolean" }
                }
            }),
            json!({ "panel": panel_example(), "message_deleted": true }),
        )),
    ]
}

fn number_param(request: &ApiRequest) -> Result<u64, Error> {
    request
        .param("id")
        .and_then(|id| id.parse().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| Error::invalid("id: a ticket or panel number"))
}

#[derive(Deserialize)]
struct CloseBody {
    #[serde(default)]
    reason: Option<String>,
}

pub fn handle(ctx: &townes_sdk::Context, request: ApiRequest) -> Result<ApiResponse, Error> {
    let by = request.caller.user_id;
    match (request.method, request.route.as_str()) {
        (Method::Get, "/tickets") => list_tickets(&request),
        (Method::Get, "/tickets/{id}") => Ok(ApiResponse::json(&store::load_ticket(
            number_param(&request)?,
        )?)),
        (Method::Post, "/tickets/{id}/claim") => {
            let number = number_param(&request)?;
            let by = by.ok_or_else(|| {
                Error::invalid("only a signed-in member can claim a ticket, not an API key")
            })?;
            Ok(ApiResponse::json(&actions::claim(number, by)?))
        }
        (Method::Post, "/tickets/{id}/unclaim") => Ok(ApiResponse::json(&actions::unclaim(
            number_param(&request)?,
            by,
        )?)),
        (Method::Post, "/tickets/{id}/close") => {
            let number = number_param(&request)?;
            let body: CloseBody = match request.body {
                Some(_) => request.body()?,
                None => CloseBody { reason: None },
            };
            let reason = actions::clean_reason(body.reason.as_deref())?;
            Ok(ApiResponse::json(&actions::close(
                &Config::load()?,
                number,
                by,
                reason,
            )?))
        }
        (Method::Post, "/tickets/{id}/reopen") => Ok(ApiResponse::json(&actions::reopen(
            &Config::load()?,
            number_param(&request)?,
            by,
        )?)),
        (Method::Post, "/tickets/{id}/delete") => Ok(ApiResponse::json(&actions::delete(
            &Config::load()?,
            number_param(&request)?,
            by,
        )?)),
        (Method::Get, "/tickets/{id}/transcript") => transcript_link(&request),
        (Method::Get, "/panels") => Ok(ApiResponse::json(&json!({ "panels": store::panels()? }))),
        (Method::Post, "/panels") => {
            let draft: PanelDraft = request.body()?;
            Ok(ApiResponse::with_status(
                201,
                &panels::create_panel(ctx, draft)?,
            ))
        }
        (Method::Delete, "/panels/{id}") => {
            let (panel, message_deleted) = panels::delete_panel(number_param(&request)?)?;
            Ok(ApiResponse::json(
                &json!({ "panel": panel, "message_deleted": message_deleted }),
            ))
        }
        _ => Err(Error::not_found("no such route")),
    }
}

fn list_tickets(request: &ApiRequest) -> Result<ApiResponse, Error> {
    let status = match request.query("status").unwrap_or("all") {
        "all" => None,
        "open" => Some(Status::Open),
        "closed" => Some(Status::Closed),
        "deleted" => Some(Status::Deleted),
        other => {
            return Err(Error::invalid(format!(
                "status `{other}`: use open, closed, deleted or all"
            )));
        }
    };
    let opener = request
        .query("user")
        .map(|user| {
            user.parse::<u64>()
                .map_err(|_| Error::invalid("user: a Discord id"))
        })
        .transpose()?;
    let tickets = store::recent_tickets(LIST_LIMIT, |t| {
        status.is_none_or(|s| t.status == s) && opener.is_none_or(|o| t.opener_id == o)
    })?;
    Ok(ApiResponse::json(&json!({ "tickets": tickets })))
}

fn transcript_link(request: &ApiRequest) -> Result<ApiResponse, Error> {
    let number = number_param(request)?;
    let ticket = store::load_ticket(number)?;
    let Some(name) = ticket.transcript else {
        return Err(Error::not_found(match ticket.status {
            Status::Open => {
                format!("ticket #{number} is open and has no transcript yet; closing it makes one")
            }
            _ => format!("ticket #{number} has no transcript: it could not be made"),
        }));
    };
    let info = files::list_prefix(&name, 1)?
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| Error::not_found(format!("the transcript file `{name}` is gone")))?;
    let url = files::link(&name, Config::load()?.link_seconds())?;
    Ok(ApiResponse::json(&json!({
        "name": name,
        "url": url,
        "size": info.size,
        "created_at": info.created_at,
    })))
}
