//! The knowledge base the admins keep from the dashboard: short articles in
//! storage, put into the system prompt. Routes (the host lets only the
//! guild's managers reach them): `GET /knowledge`, `POST /knowledge`,
//! `PUT /knowledge/{id}`, `DELETE /knowledge/{id}`.

use serde::{Deserialize, Serialize};
use townes_sdk::serde_json::Value;
use townes_sdk::{ApiRequest, ApiResponse, Error, Method, Route, json, storage, time};

pub const MAX_ARTICLES: usize = 50;
pub const MAX_TITLE: usize = 100;
pub const MAX_BODY: usize = 2_000;
const PREFIX: &str = "kb/";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Article {
    pub id: u64,
    pub title: String,
    pub body: String,
    /// Unix seconds.
    pub updated_at: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Draft {
    title: String,
    body: String,
}

fn key(id: u64) -> String {
    // Zero-padded so storage's key order is the articles' order.
    format!("{PREFIX}{id:010}")
}

/// Every article, oldest first.
pub fn all() -> Result<Vec<Article>, Error> {
    storage::list_prefix(PREFIX, MAX_ARTICLES as u32 + 10)?
        .into_iter()
        .map(|e| {
            townes_sdk::serde_json::from_str(&e.value)
                .map_err(|_| Error::InvalidArgument(format!("{} is not an article", e.key)))
        })
        .collect()
}

fn checked(draft: Draft) -> Result<Draft, Error> {
    let title = draft.title.trim().to_string();
    let body = draft.body.trim().to_string();
    if title.is_empty() || title.chars().count() > MAX_TITLE {
        return Err(Error::InvalidArgument(format!(
            "title: 1 to {MAX_TITLE} characters"
        )));
    }
    if body.is_empty() || body.chars().count() > MAX_BODY {
        return Err(Error::InvalidArgument(format!(
            "body: 1 to {MAX_BODY} characters"
        )));
    }
    Ok(Draft { title, body })
}

fn article_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "title", "body", "updated_at"],
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "title": {"type": "string"},
            "body": {"type": "string"},
            "updated_at": {"type": "integer", "description": "Unix seconds"}
        }
    })
}

fn draft_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["title", "body"],
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
            "body": {"type": "string", "minLength": 1, "maxLength": MAX_BODY}
        }
    })
}

/// `schema` with `example` as its JSON Schema `examples` (the host shows it
/// in the OpenAPI document).
fn with_example(mut schema: Value, example: Value) -> Value {
    schema["examples"] = json!([example]);
    schema
}

fn article_example() -> Value {
    json!({"id": 1, "title": "Opening hours", "body": "We open at 8 and close at 18, every day but Monday.", "updated_at": 1_796_000_000})
}

fn draft_example() -> Value {
    json!({"title": "Opening hours", "body": "We open at 8 and close at 18, every day but Monday."})
}

pub fn routes() -> Vec<Route> {
    let article = || with_example(article_schema(), article_example());
    let draft = || with_example(draft_schema(), draft_example());
    vec![
        Route::get("/knowledge", "listKnowledge", "The concierge's knowledge base")
            .response(with_example(
                json!({"type": "array", "items": article_schema()}),
                json!([article_example()]),
            )),
        Route::post("/knowledge", "addKnowledge", "Add an article to the knowledge base")
            .request(draft())
            .response(article()),
        Route::put("/knowledge/{id}", "updateKnowledge", "Replace an article")
            .request(draft())
            .response(article()),
        Route::delete("/knowledge/{id}", "deleteKnowledge", "Delete an article")
            .response(with_example(
                json!({"type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "boolean"}}}),
                json!({"deleted": true}),
            )),
    ]
}

fn id_param(request: &ApiRequest) -> Result<u64, Error> {
    request
        .param("id")
        .and_then(|id| id.parse().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| Error::NotFound("no such article".into()))
}

pub fn handle(request: ApiRequest) -> Result<ApiResponse, Error> {
    match (request.method, request.route.as_str()) {
        (Method::Get, "/knowledge") => Ok(ApiResponse::json(&all()?)),
        (Method::Post, "/knowledge") => {
            let draft = checked(request.body()?)?;
            if all()?.len() >= MAX_ARTICLES {
                return Err(Error::InvalidArgument(format!(
                    "the knowledge base holds at most {MAX_ARTICLES} articles; delete one first"
                )));
            }
            let id = storage::increment("kb-next-id", 1)? as u64;
            let article = Article {
                id,
                title: draft.title,
                body: draft.body,
                updated_at: time::now(),
            };
            storage::set_json(&key(id), &article)?;
            Ok(ApiResponse::with_status(201, &article))
        }
        (Method::Put, "/knowledge/{id}") => {
            let id = id_param(&request)?;
            let draft = checked(request.body()?)?;
            if storage::get(&key(id))?.is_none() {
                return Err(Error::NotFound(format!("no article {id}")));
            }
            let article = Article {
                id,
                title: draft.title,
                body: draft.body,
                updated_at: time::now(),
            };
            storage::set_json(&key(id), &article)?;
            Ok(ApiResponse::json(&article))
        }
        (Method::Delete, "/knowledge/{id}") => {
            let deleted = storage::delete(&key(id_param(&request)?))?;
            Ok(ApiResponse::json(&json!({ "deleted": deleted })))
        }
        _ => Err(Error::NotFound("no such route".into())),
    }
}
