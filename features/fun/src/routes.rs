//! The dashboard routes: `GET /polls` and `GET /polls/{id}`. The host lets
//! only members who manage the guild (and the tenant's API keys) reach them.

use crate::store::{self, Poll, Tally};
use serde::Serialize;
use townes_sdk::serde_json::Value;
use townes_sdk::{ApiRequest, ApiResponse, Error, Route, Snowflake, json, snowflake};

/// Polls `GET /polls` answers at most (each costs a storage call for its
/// counts).
pub const LIST_LIMIT: usize = 50;

/// A poll as the API shows it: ids as decimal strings, counts beside each
/// option.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PollView {
    pub number: u64,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub channel_id: Snowflake,
    #[serde(with = "townes_sdk::snowflake::opt_string")]
    pub message_id: Option<Snowflake>,
    pub question: String,
    pub options: Vec<OptionView>,
    pub multi: bool,
    pub voters: u64,
    /// Indexes of the options with the most votes (none without votes).
    pub leading: Vec<usize>,
    #[serde(with = "townes_sdk::snowflake::string")]
    pub creator: Snowflake,
    pub created_at: u64,
    pub ends_at: u64,
    pub closed: bool,
    pub closed_at: Option<u64>,
    #[serde(with = "townes_sdk::snowflake::opt_string")]
    pub closed_by: Option<Snowflake>,
}

/// One option and its votes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OptionView {
    pub label: String,
    pub votes: u64,
}

impl PollView {
    pub fn new(poll: Poll, tally: &Tally) -> Self {
        PollView {
            number: poll.number,
            channel_id: poll.channel_id,
            message_id: poll.message_id,
            options: poll
                .options
                .into_iter()
                .zip(&tally.counts)
                .map(|(label, &votes)| OptionView { label, votes })
                .collect(),
            question: poll.question,
            multi: poll.multi,
            voters: tally.voters,
            leading: tally.winners(),
            creator: poll.creator,
            created_at: poll.created_at,
            ends_at: poll.ends_at,
            closed: poll.closed,
            closed_at: poll.closed_at,
            closed_by: poll.closed_by,
        }
    }
}

fn view(poll: Poll) -> Result<PollView, Error> {
    let tally = store::tally(poll.number, poll.options.len())?;
    Ok(PollView::new(poll, &tally))
}

/// An id as the API writes it: a decimal string.
fn id_schema() -> Value {
    json!({ "type": "string", "pattern": snowflake::PATTERN })
}

pub fn poll_schema() -> Value {
    json!({
        "type": "object",
        "required": [
            "number", "channel_id", "message_id", "question", "options", "multi", "voters",
            "leading", "creator", "created_at", "ends_at", "closed", "closed_at", "closed_by"
        ],
        "properties": {
            "number": { "type": "integer", "minimum": 1 },
            "channel_id": id_schema(),
            "message_id": {
                "anyOf": [id_schema(), { "type": "null" }],
                "description": "null only while the poll is being posted"
            },
            "question": { "type": "string" },
            "options": {
                "type": "array",
                "maxItems": crate::poll::MAX_OPTIONS,
                "items": {
                    "type": "object",
                    "required": ["label", "votes"],
                    "properties": {
                        "label": { "type": "string" },
                        "votes": { "type": "integer", "minimum": 0 }
                    }
                }
            },
            "multi": { "type": "boolean", "description": "Members may choose several options" },
            "voters": { "type": "integer", "minimum": 0 },
            "leading": {
                "type": "array",
                "items": { "type": "integer", "minimum": 0 },
                "description": "Indexes of the options with the most votes; the winners once closed"
            },
            "creator": id_schema(),
            "created_at": { "type": "integer", "description": "Unix seconds" },
            "ends_at": { "type": "integer", "description": "Unix seconds" },
            "closed": { "type": "boolean" },
            "closed_at": { "type": ["integer", "null"] },
            "closed_by": {
                "anyOf": [id_schema(), { "type": "null" }],
                "description": "Who ended it early; null when it ran its time"
            }
        }
    })
}

/// A made-up ended poll, for the API document.
pub fn poll_example() -> Value {
    json!({
        "number": 12,
        "channel_id": "1141234567890123458",
        "message_id": "1141299990000000042",
        "question": "Where should the summer meet-up be?",
        "options": [
            { "label": "The beach", "votes": 14 },
            { "label": "The mountains", "votes": 9 },
            { "label": "A city weekend", "votes": 5 }
        ],
        "multi": false,
        "voters": 28,
        "leading": [0],
        "creator": "1150011223344556677",
        "created_at": 1796600000,
        "ends_at": 1796686400,
        "closed": true,
        "closed_at": 1796686400,
        "closed_by": null
    })
}

fn with_example(mut schema: Value, example: Value) -> Value {
    schema["examples"] = json!([example]);
    schema
}

pub fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/polls",
            "listPolls",
            "The guild's polls with their counts, newest first, at most 50",
        )
        .response(with_example(
            json!({
                "type": "object",
                "required": ["polls"],
                "properties": { "polls": { "type": "array", "items": poll_schema() } }
            }),
            json!({ "polls": [poll_example()] }),
        )),
        Route::get("/polls/{id}", "getPoll", "One poll with its counts")
            .response(with_example(poll_schema(), poll_example())),
    ]
}

pub fn handle(request: ApiRequest) -> Result<ApiResponse, Error> {
    match request.route.as_str() {
        "/polls" => {
            let polls = store::recent_polls(LIST_LIMIT)?
                .into_iter()
                .map(view)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ApiResponse::json(&json!({ "polls": polls })))
        }
        "/polls/{id}" => {
            let number = request
                .param("id")
                .and_then(|id| id.parse::<u64>().ok())
                .ok_or_else(|| Error::invalid("id: a poll number, e.g. 12"))?;
            Ok(ApiResponse::json(&view(store::load_poll(number)?)?))
        }
        _ => Err(Error::not_found("no such route")),
    }
}
