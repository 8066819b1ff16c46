//! `notes`: a feature that serves dashboard routes (contract 0.1.1's `api`
//! export), hears its `lifecycle`, and tells the dashboard through `live`.
//! Some of its routes misbehave on purpose, so the host's guards can be seen
//! holding: `/bad-status`, `/off-contract`, `/huge` and `/spin`. Not shipped.

use townes_sdk::{
    ApiRequest, ApiResponse, Capability, CapabilityRequest, Context, Error, Feature, Manifest,
    Route, files, history, json, live, storage,
};

pub struct Notes;

fn note_schema() -> townes_sdk::serde_json::Value {
    json!({
        "type": "object",
        "required": ["id", "text"],
        "properties": { "id": { "type": "string" }, "text": { "type": "string" } },
        "additionalProperties": false
    })
}

impl Feature for Notes {
    fn describe() -> Manifest {
        Manifest::new("notes", "0.1.0")
            .description("Notes kept for a guild's dashboard")
            .capability(CapabilityRequest::required(
                Capability::Storage,
                "keeps the notes",
            ))
            .capability(CapabilityRequest::optional(
                Capability::Messages,
                "shows a channel's recent messages",
            ))
            .capability(CapabilityRequest::optional(
                Capability::MessageContent,
                "shows what they say",
            ))
    }

    fn routes() -> Vec<Route> {
        vec![
            Route::get("/notes", "listNotes", "The guild's notes, oldest first").response(json!({
                "type": "object",
                "required": ["notes"],
                "properties": { "notes": { "type": "array", "items": note_schema() } }
            })),
            Route::post("/notes", "createNote", "Adds a note")
                .request(json!({
                    "type": "object",
                    "required": ["text"],
                    "properties": { "text": { "type": "string", "minLength": 1, "maxLength": 200 } },
                    "additionalProperties": false
                }))
                .response(note_schema()),
            Route::get("/notes/{id}", "getNote", "One note").response(note_schema()),
            Route::delete("/notes/{id}", "deleteNote", "Deletes a note")
                .response(json!({ "type": "object", "required": ["deleted"] })),
            Route::get("/whoami", "whoAmI", "The caller as the feature sees them"),
            Route::get("/recent/{channel}", "recentMessages", "A channel's messages, newest first"),
            Route::get("/lifecycle", "lifecycleCounts", "How often it was enabled and disabled"),
            Route::post("/export", "exportNotes", "Writes the notes to a file and links to it")
                .request(json!({ "type": "object", "properties": { "seconds": { "type": "integer" } } }))
                .response(json!({ "type": "object", "required": ["url", "name"] })),
            Route::get("/bad-status", "badStatus", "Answers a status outside 2xx"),
            Route::get("/off-contract", "offContract", "Answers a body its schema refuses")
                .response(json!({ "type": "object", "required": ["ok"] })),
            Route::get("/spin", "spin", "Never returns"),
            Route::get("/huge", "huge", "Answers more than the host reads"),
        ]
    }

    fn on_api(_ctx: &Context, request: ApiRequest) -> Result<ApiResponse, Error> {
        match request.route.as_str() {
            "/notes" if request.method == townes_sdk::Method::Post => {
                let body: townes_sdk::serde_json::Value = request.body()?;
                let text = body["text"].as_str().unwrap_or_default().to_string();
                let id = storage::increment("next-id", 1)?.to_string();
                storage::set(&format!("note/{id:0>8}"), &text)?;
                live::publish("note_created", &json!({ "id": id }))?;
                Ok(ApiResponse::with_status(
                    201,
                    &json!({ "id": id, "text": text }),
                ))
            }
            "/notes" => {
                let notes: Vec<_> = storage::list_prefix("note/", 100)?
                    .into_iter()
                    .map(|e| json!({ "id": e.key["note/".len()..].trim_start_matches('0'), "text": e.value }))
                    .collect();
                Ok(ApiResponse::json(&json!({ "notes": notes })))
            }
            "/notes/{id}" => {
                let id = request.param("id").unwrap_or_default();
                let key = format!("note/{id:0>8}");
                if request.method == townes_sdk::Method::Delete {
                    let deleted = storage::delete(&key)?;
                    return Ok(ApiResponse::json(&json!({ "deleted": deleted })));
                }
                let text =
                    storage::get(&key)?.ok_or_else(|| Error::NotFound(format!("note {id}")))?;
                Ok(ApiResponse::json(&json!({ "id": id, "text": text })))
            }
            "/recent/{channel}" => {
                let channel = request
                    .param("channel")
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| Error::InvalidArgument("channel: a snowflake".into()))?;
                let before = request.query("before").and_then(|b| b.parse().ok());
                let messages: Vec<_> = history::read(channel, before, 100)?
                    .into_iter()
                    .map(|m| json!({ "id": m.id.to_string(), "author": m.author.username, "content": m.content }))
                    .collect();
                Ok(ApiResponse::json(&json!({ "messages": messages })))
            }
            "/whoami" => Ok(ApiResponse::json(&json!({
                "user_id": request.caller.user_id.map(|id| id.to_string()),
                "owner": request.caller.owner,
                "permissions": request.caller.permissions.to_string(),
                "query": request.query,
            }))),
            "/lifecycle" => Ok(ApiResponse::json(&json!({
                "enabled": storage::get("enabled")?.unwrap_or_default(),
                "disabled": storage::get("disabled")?.unwrap_or_default(),
                "migrated_from": storage::get("migrated-from")?,
            }))),
            "/export" => {
                let body: townes_sdk::serde_json::Value = request.body()?;
                let seconds = body["seconds"].as_u64().unwrap_or(3600) as u32;
                let mut html = String::from("<!doctype html><ul>");
                for entry in storage::list_prefix("note/", 100)? {
                    // Deliberately unescaped: the host's serving must hold anyway.
                    html.push_str(&format!("<li>{}</li>", entry.value));
                }
                html.push_str("</ul>");
                let name = "notes/export.html";
                files::put(name, "text/html; charset=utf-8", html.as_bytes())?;
                let url = files::link(name, seconds)?;
                Ok(ApiResponse::json(&json!({ "url": url, "name": name })))
            }
            "/bad-status" => Ok(ApiResponse::with_status(500, &json!({ "oops": true }))),
            "/off-contract" => Ok(ApiResponse::json(&json!({ "not_ok": "<script>" }))),
            "/huge" => Ok(ApiResponse::json(&json!({ "x": "a".repeat(1_100_000) }))),
            "/spin" =>
            {
                #[allow(clippy::empty_loop)]
                loop {}
            }
            _ => Err(Error::NotFound("no such route".into())),
        }
    }

    fn migrate(_ctx: &Context, from_version: &str) -> Result<(), Error> {
        storage::set("migrated-from", from_version)
    }

    fn on_enabled(_ctx: &Context) -> Result<(), Error> {
        if storage::get("refuse-enable")?.is_some() {
            return Err(Error::Unavailable("notes refuses to start here".into()));
        }
        storage::increment("enabled", 1)?;
        live::publish("notes_update", &json!({ "event": "enabled" }))
    }

    fn on_disabled(_ctx: &Context) -> Result<(), Error> {
        storage::increment("disabled", 1).map(drop)
    }
}

townes_sdk::export_feature!(Notes);
