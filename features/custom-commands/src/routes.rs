//! The dashboard routes. The host lets only members who manage the guild
//! (and the tenant's API keys) reach them, checks bodies against the request
//! schemas first, and also serves them under seed 002's
//! `/api/guild/{guildId}/commands…` for the paths starting with `commands`.
//!
//! | method and path | operation id |
//! |---|---|
//! | `GET /commands` | `listCommands` |
//! | `POST /commands` (201) | `createCommand` |
//! | `GET /commands/{name}` | `getCommand` |
//! | `PUT /commands/{name}` | `updateCommand` |
//! | `DELETE /commands/{name}` | `deleteCommand` |
//! | `GET /auto-responders` | `listAutoResponders` |
//! | `POST /auto-responders` (201) | `createAutoResponder` |
//! | `GET /auto-responders/{id}` | `getAutoResponder` |
//! | `PUT /auto-responders/{id}` | `updateAutoResponder` |
//! | `DELETE /auto-responders/{id}` | `deleteAutoResponder` |
//!
//! Errors: an unknown name or id is `not-found` (404); a body the feature
//! cannot use (a reserved or taken name, an invalid regex, an `http://` URL,
//! an embed over Discord's limits, …) is `invalid-argument` (400) saying
//! which field and why; a guild at `max_commands` / `max_auto_responders`
//! is `quota-exceeded` (409).

use crate::Config;
use crate::commands::{self, RESERVED};
use crate::menus::MAX_PAGES;
use crate::responders;
use crate::store::{self, AutoResponder, CustomCommand, MatchType, Response};
use crate::tags::DEFAULT_CATEGORY;
use crate::variables::raw_body;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use townes_sdk::serde_json::Value;
use townes_sdk::{
    ApiRequest, ApiResponse, Error, Method, Route, Snowflake, audit, json, limits, snowflake,
    storage,
};

/// The longest description.
pub const MAX_DESCRIPTION: usize = 100;
/// The longest cooldown: a week.
pub const MAX_COOLDOWN: u32 = 604_800;
/// Required roles one command may list.
pub const MAX_ROLES: usize = 25;
/// Channels one auto-responder may be limited to.
pub const MAX_CHANNELS: usize = 50;
/// Priorities run from -1000 to 1000.
pub const MAX_PRIORITY: i32 = 1000;
/// The longest URL in an embed.
pub const MAX_URL: usize = 2048;

const NAME_PATTERN: &str = "^[a-z0-9_-]{1,32}$";
const URL_PATTERN: &str = "^https://[^\\s]+$";

// ------------------------------------------------------------------ schemas

/// An id as the API writes it: a decimal string.
fn id_schema() -> Value {
    json!({ "type": "string", "pattern": snowflake::PATTERN })
}

fn url_schema() -> Value {
    json!({
        "anyOf": [
            { "type": "string", "maxLength": MAX_URL, "pattern": URL_PATTERN },
            { "type": "null" }
        ],
        "description": "https:// only"
    })
}

fn text_or_null(max: usize) -> Value {
    json!({ "type": ["string", "null"], "maxLength": max })
}

/// A text or embed response; variables allowed in its texts.
pub fn response_schema() -> Value {
    json!({
        "description": "A text or an embed. To answer with a message template (buttons, role menus), give the template a `command` in the templates feature: it answers that slash command itself",
        "anyOf": [
            {
                "type": "object",
                "required": ["type", "content"],
                "properties": {
                    "type": { "const": "text" },
                    "content": { "type": "string", "minLength": 1, "maxLength": limits::CONTENT }
                },
                "additionalProperties": false
            },
            {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": { "const": "embed" },
                    "title": text_or_null(limits::EMBED_TITLE),
                    "description": text_or_null(limits::EMBED_DESCRIPTION),
                    "url": url_schema(),
                    "color": { "type": ["integer", "null"], "minimum": 0, "maximum": 0xFF_FFFF },
                    "fields": {
                        "type": "array",
                        "maxItems": limits::EMBED_FIELDS,
                        "items": {
                            "type": "object",
                            "required": ["name", "value"],
                            "properties": {
                                "name": { "type": "string", "minLength": 1, "maxLength": limits::EMBED_FIELD_NAME },
                                "value": { "type": "string", "minLength": 1, "maxLength": limits::EMBED_FIELD_VALUE },
                                "inline": { "type": "boolean" }
                            },
                            "additionalProperties": false
                        }
                    },
                    "footer": text_or_null(limits::EMBED_FOOTER),
                    "thumbnail_url": url_schema(),
                    "image_url": url_schema()
                },
                "additionalProperties": false
            }
        ]
    })
}

/// The body of `POST /commands` (`with_name`) and `PUT /commands/{name}`.
pub fn command_draft_schema(with_name: bool) -> Value {
    let mut schema = json!({
        "type": "object",
        "properties": {
            "description": { "type": "string", "maxLength": MAX_DESCRIPTION },
            "enabled": { "type": "boolean", "default": true },
            "response": { "anyOf": [response_schema(), { "type": "null" }] },
            "menu_pages": {
                "type": "array", "maxItems": MAX_PAGES, "items": response_schema(),
                "description": "A menu's pages, shown with Previous / Next buttons; instead of `response`"
            },
            "cooldown_seconds": { "type": "integer", "minimum": 0, "maximum": MAX_COOLDOWN, "default": 0 },
            "required_roles": {
                "type": "array", "maxItems": MAX_ROLES, "items": snowflake::schema(),
                "description": "A member needs any one of them; empty: everyone may"
            },
            "is_tag": { "type": "boolean", "default": false },
            "category": {
                "anyOf": [{ "type": "string", "pattern": NAME_PATTERN }, { "type": "null" }],
                "description": "A tag's category (general when none)"
            }
        },
        "additionalProperties": false
    });
    if with_name {
        schema["required"] = json!(["name"]);
        schema["properties"]["name"] = json!({
            "type": "string", "pattern": NAME_PATTERN,
            "description": "The trigger: lower-case a-z, 0-9, - and _"
        });
    }
    schema
}

pub fn command_schema() -> Value {
    json!({
        "type": "object",
        "required": [
            "name", "description", "enabled", "response", "menu_pages", "cooldown_seconds",
            "required_roles", "is_tag", "category", "created_at", "updated_at"
        ],
        "properties": {
            "name": { "type": "string", "pattern": NAME_PATTERN },
            "description": { "type": "string" },
            "enabled": { "type": "boolean" },
            "response": { "anyOf": [response_schema(), { "type": "null" }] },
            "menu_pages": { "type": "array", "items": response_schema() },
            "cooldown_seconds": { "type": "integer", "minimum": 0 },
            "required_roles": { "type": "array", "items": id_schema() },
            "is_tag": { "type": "boolean" },
            "category": { "type": ["string", "null"] },
            "created_at": { "type": "integer", "description": "Unix seconds" },
            "updated_at": { "type": "integer", "description": "Unix seconds" }
        }
    })
}

fn match_type_schema() -> Value {
    json!({ "enum": ["exact", "contains", "starts_with", "ends_with", "regex"] })
}

/// The body of `POST /auto-responders` and `PUT /auto-responders/{id}`.
pub fn responder_draft_schema() -> Value {
    json!({
        "type": "object",
        "required": ["trigger", "match_type", "response"],
        "properties": {
            "trigger": {
                "type": "string", "minLength": 1, "maxLength": responders::MAX_PATTERN,
                "description": "The text, or for `regex` the pattern (linear-time `regex` syntax)"
            },
            "match_type": match_type_schema(),
            "case_sensitive": { "type": "boolean", "default": false },
            "channels": {
                "type": "array", "maxItems": MAX_CHANNELS, "items": snowflake::schema(),
                "description": "Where it answers; empty: every channel"
            },
            "response": response_schema(),
            "enabled": { "type": "boolean", "default": true },
            "priority": {
                "type": "integer", "minimum": -MAX_PRIORITY, "maximum": MAX_PRIORITY, "default": 0,
                "description": "Higher is tried first"
            }
        },
        "additionalProperties": false
    })
}

pub fn responder_schema() -> Value {
    json!({
        "type": "object",
        "required": [
            "id", "trigger", "match_type", "case_sensitive", "channels", "response", "enabled",
            "priority", "trigger_count", "created_at", "updated_at"
        ],
        "properties": {
            "id": id_schema(),
            "trigger": { "type": "string" },
            "match_type": match_type_schema(),
            "case_sensitive": { "type": "boolean" },
            "channels": { "type": "array", "items": id_schema() },
            "response": response_schema(),
            "enabled": { "type": "boolean" },
            "priority": { "type": "integer" },
            "trigger_count": { "type": "integer", "minimum": 0, "description": "Messages it matched" },
            "created_at": { "type": "integer", "description": "Unix seconds" },
            "updated_at": { "type": "integer", "description": "Unix seconds" }
        }
    })
}

/// `schema` with `example` as its JSON Schema `examples`.
fn with_example(mut schema: Value, example: Value) -> Value {
    schema["examples"] = json!([example]);
    schema
}

fn command_draft_example() -> Value {
    json!({
        "name": "rules",
        "description": "The server rules",
        "response": {
            "type": "embed",
            "title": "Rules of {server.name}",
            "description": "Welcome {user}! Be kind, no spam, keep it in English.",
            "color": 5793266,
            "fields": [{ "name": "Help", "value": "Ask in <#1141234567890123458>", "inline": false }],
            "footer": "Asked by {user.name}",
            "url": "https://example.com/rules"
        },
        "cooldown_seconds": 30,
        "required_roles": ["1141240001234567890"],
        "is_tag": true,
        "category": "info"
    })
}

fn command_example() -> Value {
    json!({
        "name": "rules",
        "description": "The server rules",
        "enabled": true,
        "response": {
            "type": "embed",
            "title": "Rules of {server.name}",
            "description": "Welcome {user}! Be kind, no spam, keep it in English.",
            "url": "https://example.com/rules",
            "color": 5793266,
            "fields": [{ "name": "Help", "value": "Ask in <#1141234567890123458>", "inline": false }],
            "footer": "Asked by {user.name}",
            "thumbnail_url": null,
            "image_url": null
        },
        "menu_pages": [],
        "cooldown_seconds": 30,
        "required_roles": ["1141240001234567890"],
        "is_tag": true,
        "category": "info",
        "created_at": 1796600000,
        "updated_at": 1796603600
    })
}

fn responder_draft_example() -> Value {
    json!({
        "trigger": "\\b(good ?morning|gm)\\b",
        "match_type": "regex",
        "case_sensitive": false,
        "channels": ["1141234567890123458"],
        "response": { "type": "text", "content": "Good morning, {user}! ☀️" },
        "priority": 10
    })
}

fn responder_example() -> Value {
    json!({
        "id": "3",
        "trigger": "\\b(good ?morning|gm)\\b",
        "match_type": "regex",
        "case_sensitive": false,
        "channels": ["1141234567890123458"],
        "response": { "type": "text", "content": "Good morning, {user}! ☀️" },
        "enabled": true,
        "priority": 10,
        "trigger_count": 128,
        "created_at": 1796600000,
        "updated_at": 1796600000
    })
}

pub fn routes() -> Vec<Route> {
    let command = || with_example(command_schema(), command_example());
    let responder = || with_example(responder_schema(), responder_example());
    let mut update_example = command_draft_example();
    update_example
        .as_object_mut()
        .expect("an object")
        .remove("name");
    vec![
        Route::get(
            "/commands",
            "listCommands",
            "The guild's custom commands and tags, by name",
        )
        .response(with_example(
            json!({
                "type": "object",
                "required": ["commands"],
                "properties": { "commands": { "type": "array", "items": command_schema() } }
            }),
            json!({ "commands": [command_example()] }),
        )),
        Route::post(
            "/commands",
            "createCommand",
            "Creates a custom command, tag or menu (201); the name must be free",
        )
        .request(with_example(
            command_draft_schema(true),
            command_draft_example(),
        ))
        .response(command()),
        Route::get("/commands/{name}", "getCommand", "One custom command").response(command()),
        Route::put(
            "/commands/{name}",
            "updateCommand",
            "Replaces a custom command's settings (fields left out take their defaults)",
        )
        .request(with_example(command_draft_schema(false), update_example))
        .response(command()),
        Route::delete(
            "/commands/{name}",
            "deleteCommand",
            "Deletes a custom command; answers it",
        )
        .response(command()),
        Route::get(
            "/auto-responders",
            "listAutoResponders",
            "The guild's auto-responders in the order they are tried, with their trigger counts",
        )
        .response(with_example(
            json!({
                "type": "object",
                "required": ["auto_responders"],
                "properties": {
                    "auto_responders": { "type": "array", "items": responder_schema() }
                }
            }),
            json!({ "auto_responders": [responder_example()] }),
        )),
        Route::post(
            "/auto-responders",
            "createAutoResponder",
            "Creates an auto-responder (201); an invalid or too large regex is refused",
        )
        .request(with_example(
            responder_draft_schema(),
            responder_draft_example(),
        ))
        .response(responder()),
        Route::get(
            "/auto-responders/{id}",
            "getAutoResponder",
            "One auto-responder",
        )
        .response(responder()),
        Route::put(
            "/auto-responders/{id}",
            "updateAutoResponder",
            "Replaces an auto-responder's settings; its trigger count stays",
        )
        .request(with_example(
            responder_draft_schema(),
            responder_draft_example(),
        ))
        .response(responder()),
        Route::delete(
            "/auto-responders/{id}",
            "deleteAutoResponder",
            "Deletes an auto-responder and its count; answers it",
        )
        .response(responder()),
    ]
}

// ------------------------------------------------------------------ bodies

fn yes() -> bool {
    true
}

/// A command as the dashboard sends it.
#[derive(Clone, Debug, Deserialize)]
pub struct CommandDraft {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub response: Option<Response>,
    #[serde(default)]
    pub menu_pages: Vec<Response>,
    #[serde(default)]
    pub cooldown_seconds: u32,
    #[serde(default, deserialize_with = "snowflake::de_vec")]
    pub required_roles: Vec<Snowflake>,
    #[serde(default)]
    pub is_tag: bool,
    #[serde(default)]
    pub category: Option<String>,
}

/// An auto-responder as the dashboard sends it.
#[derive(Clone, Debug, Deserialize)]
pub struct ResponderDraft {
    pub trigger: String,
    pub match_type: MatchType,
    #[serde(default)]
    pub case_sensitive: bool,
    #[serde(default, deserialize_with = "snowflake::de_vec")]
    pub channels: Vec<Snowflake>,
    pub response: Response,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub priority: i32,
}

fn check_url(url: &Option<String>, at: &str) -> Result<(), Error> {
    match url {
        Some(url)
            if !url.starts_with("https://")
                || url.len() <= "https://".len()
                || url.len() > MAX_URL
                || url.contains(char::is_whitespace) =>
        {
            Err(Error::invalid(format!(
                "{at}: `{url}` is not an https:// URL (only https links are allowed)"
            )))
        }
        _ => Ok(()),
    }
}

/// Checks a response as it will be stored: not empty, https URLs only, and
/// within Discord's limits as written.
pub fn check_response(response: &Response, at: &str) -> Result<(), Error> {
    match response {
        Response::Text { content } if content.trim().is_empty() => {
            return Err(Error::invalid(format!("{at}.content: must not be blank")));
        }
        Response::Text { .. } => {}
        Response::Embed(embed) => {
            check_url(&embed.url, &format!("{at}.url"))?;
            check_url(&embed.thumbnail_url, &format!("{at}.thumbnail_url"))?;
            check_url(&embed.image_url, &format!("{at}.image_url"))?;
            let blank = |t: &Option<String>| t.as_deref().is_none_or(|t| t.trim().is_empty());
            if blank(&embed.title)
                && blank(&embed.description)
                && blank(&embed.footer)
                && embed.fields.is_empty()
                && embed.image_url.is_none()
                && embed.thumbnail_url.is_none()
            {
                return Err(Error::invalid(format!(
                    "{at}: an embed needs a title, a description, a field, a footer or an image"
                )));
            }
            for (i, field) in embed.fields.iter().enumerate() {
                if field.name.trim().is_empty() || field.value.trim().is_empty() {
                    return Err(Error::invalid(format!(
                        "{at}.fields[{i}]: a field needs a name and a value"
                    )));
                }
            }
            if embed.color.is_some_and(|c| c > 0xFF_FFFF) {
                return Err(Error::invalid(format!(
                    "{at}.color: 0 to 16777215 (0xFFFFFF)"
                )));
            }
        }
    }
    raw_body(response).validate().map_err(|e| match e {
        Error::InvalidArgument(why) => Error::invalid(format!("{at}: {why}")),
        other => other,
    })
}

/// `ids` without repeats, in their order.
fn unique(ids: &[Snowflake]) -> Vec<Snowflake> {
    let mut out: Vec<Snowflake> = Vec::with_capacity(ids.len());
    for &id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

fn check_name(name: &str) -> Result<(), Error> {
    if !commands::valid_name(name) {
        return Err(Error::invalid(format!(
            "name: `{name}` must be 1-32 characters of lower-case a-z, 0-9, - and _"
        )));
    }
    if RESERVED.contains(&name) {
        return Err(Error::invalid(format!(
            "name: `{name}` is taken by the feature's own command; choose another"
        )));
    }
    Ok(())
}

/// Applies a checked draft to `command` (its name and times aside).
fn apply_command(draft: &CommandDraft, command: &mut CustomCommand) -> Result<(), Error> {
    let description = draft.description.trim();
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid(format!(
            "description: at most {MAX_DESCRIPTION} characters"
        )));
    }
    match (&draft.response, draft.menu_pages.is_empty()) {
        (None, true) => {
            return Err(Error::invalid(
                "response: give a `response`, or `menu_pages` for a multi-page menu",
            ));
        }
        (Some(_), false) => {
            return Err(Error::invalid(
                "menu_pages: give a `response` or `menu_pages`, not both",
            ));
        }
        (Some(response), true) => check_response(response, "response")?,
        (None, false) => {
            if draft.menu_pages.len() > MAX_PAGES {
                return Err(Error::invalid(format!(
                    "menu_pages: at most {MAX_PAGES} pages"
                )));
            }
            for (i, page) in draft.menu_pages.iter().enumerate() {
                check_response(page, &format!("menu_pages[{i}]"))?;
            }
        }
    }
    if draft.cooldown_seconds > MAX_COOLDOWN {
        return Err(Error::invalid(format!(
            "cooldown_seconds: at most {MAX_COOLDOWN} (a week)"
        )));
    }
    let roles = unique(&draft.required_roles);
    if roles.len() > MAX_ROLES {
        return Err(Error::invalid(format!(
            "required_roles: at most {MAX_ROLES}"
        )));
    }
    let category = if draft.is_tag {
        let category = draft
            .category
            .as_deref()
            .map(str::to_lowercase)
            .unwrap_or_else(|| DEFAULT_CATEGORY.into());
        if !commands::valid_name(&category) {
            return Err(Error::invalid(format!(
                "category: `{category}` must be 1-32 characters of lower-case a-z, 0-9, - and _"
            )));
        }
        Some(category)
    } else {
        None
    };
    command.description = description.to_string();
    command.enabled = draft.enabled;
    command.response = draft.response.clone();
    command.menu_pages = draft.menu_pages.clone();
    command.cooldown_seconds = draft.cooldown_seconds;
    command.required_roles = roles;
    command.is_tag = draft.is_tag;
    command.category = category;
    Ok(())
}

fn apply_responder(draft: &ResponderDraft, responder: &mut AutoResponder) -> Result<(), Error> {
    responders::check_trigger(&draft.trigger, draft.match_type, draft.case_sensitive)?;
    check_response(&draft.response, "response")?;
    let channels = unique(&draft.channels);
    if channels.len() > MAX_CHANNELS {
        return Err(Error::invalid(format!("channels: at most {MAX_CHANNELS}")));
    }
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&draft.priority) {
        return Err(Error::invalid(format!(
            "priority: -{MAX_PRIORITY} to {MAX_PRIORITY}"
        )));
    }
    responder.trigger = draft.trigger.clone();
    responder.match_type = draft.match_type;
    responder.case_sensitive = draft.case_sensitive;
    responder.channels = channels;
    responder.response = draft.response.clone();
    responder.enabled = draft.enabled;
    responder.priority = draft.priority;
    Ok(())
}

/// An auto-responder as the API shows it: with its trigger count.
#[derive(Serialize)]
struct ResponderView {
    #[serde(flatten)]
    responder: AutoResponder,
    trigger_count: i64,
}

fn view(responder: AutoResponder) -> Result<ResponderView, Error> {
    let trigger_count = store::trigger_count(responder.id)?.max(0);
    Ok(ResponderView {
        responder,
        trigger_count,
    })
}

// ------------------------------------------------------------------ handlers

fn name_param(request: &ApiRequest) -> Result<String, Error> {
    let name = request.param("name").unwrap_or("").to_lowercase();
    if commands::valid_name(&name) {
        Ok(name)
    } else {
        Err(Error::invalid(
            "name: a command name, 1-32 characters of a-z, 0-9, - and _",
        ))
    }
}

fn id_param(request: &ApiRequest) -> Result<u64, Error> {
    request
        .param("id")
        .and_then(|id| id.parse().ok())
        .filter(|&id| id > 0)
        .ok_or_else(|| Error::invalid("id: an auto-responder id, a positive number"))
}

/// Audit entries are a courtesy: without `audit` the change still happens.
fn note(action: &str, details: &str) {
    let _ = audit::write(action, details);
}

pub fn handle(request: ApiRequest) -> Result<ApiResponse, Error> {
    match (request.method, request.route.as_str()) {
        (Method::Get, "/commands") => Ok(ApiResponse::json(
            &json!({ "commands": store::commands()? }),
        )),
        (Method::Post, "/commands") => create_command(&request),
        (Method::Get, "/commands/{name}") => {
            let name = name_param(&request)?;
            let command =
                store::load_command(&name)?.ok_or_else(|| store::command_not_found(&name))?;
            Ok(ApiResponse::json(&command))
        }
        (Method::Put, "/commands/{name}") => {
            let name = name_param(&request)?;
            let draft: CommandDraft = request.body()?;
            if draft.name.as_ref().is_some_and(|n| *n != name) {
                return Err(Error::invalid(
                    "name: renaming is not supported; create a new command",
                ));
            }
            let now = store::now();
            let command = store::update_command(&name, |command| {
                apply_command(&draft, command)?;
                command.updated_at = now;
                Ok(())
            })?;
            note("custom_command.update", &name);
            Ok(ApiResponse::json(&command))
        }
        (Method::Delete, "/commands/{name}") => {
            let command = store::delete_command(&name_param(&request)?)?;
            note("custom_command.delete", &command.name);
            Ok(ApiResponse::json(&command))
        }
        (Method::Get, "/auto-responders") => {
            let counts: HashMap<String, i64> =
                storage::list_prefix(store::TRIGGER_COUNT_PREFIX, 1000)?
                    .into_iter()
                    .map(|e| (e.key, e.value.parse().unwrap_or(0)))
                    .collect();
            let list: Vec<ResponderView> = store::responders()?
                .into_iter()
                .map(|responder| {
                    let trigger_count = counts
                        .get(&store::trigger_count_key(responder.id))
                        .copied()
                        .unwrap_or(0)
                        .max(0);
                    ResponderView {
                        responder,
                        trigger_count,
                    }
                })
                .collect();
            Ok(ApiResponse::json(&json!({ "auto_responders": list })))
        }
        (Method::Post, "/auto-responders") => create_responder(&request),
        (Method::Get, "/auto-responders/{id}") => {
            let id = id_param(&request)?;
            let responder =
                store::load_responder(id)?.ok_or_else(|| store::responder_not_found(id))?;
            Ok(ApiResponse::json(&view(responder)?))
        }
        (Method::Put, "/auto-responders/{id}") => {
            let id = id_param(&request)?;
            let draft: ResponderDraft = request.body()?;
            let now = store::now();
            let responder = store::update_responder(id, |responder| {
                apply_responder(&draft, responder)?;
                responder.updated_at = now;
                Ok(())
            })?;
            note("auto_responder.update", &id.to_string());
            Ok(ApiResponse::json(&view(responder)?))
        }
        (Method::Delete, "/auto-responders/{id}") => {
            let id = id_param(&request)?;
            let trigger_count = store::trigger_count(id)?.max(0);
            let responder = store::delete_responder(id)?;
            note("auto_responder.delete", &id.to_string());
            Ok(ApiResponse::json(&ResponderView {
                responder,
                trigger_count,
            }))
        }
        _ => Err(Error::not_found("no such route")),
    }
}

fn create_command(request: &ApiRequest) -> Result<ApiResponse, Error> {
    let draft: CommandDraft = request.body()?;
    let name = draft.name.clone().unwrap_or_default().to_lowercase();
    check_name(&name)?;
    let config = Config::load()?;
    let count = store::commands()?.len();
    if count >= config.max_commands as usize {
        return Err(Error::QuotaExceeded(format!(
            "this server has {count} custom commands, the most `max_commands` allows; \
             delete one or raise `max_commands` in the feature's settings"
        )));
    }
    let now = store::now();
    let mut command = CustomCommand {
        name: name.clone(),
        description: String::new(),
        enabled: true,
        response: None,
        menu_pages: Vec::new(),
        cooldown_seconds: 0,
        required_roles: Vec::new(),
        is_tag: false,
        category: None,
        created_at: now,
        updated_at: now,
    };
    apply_command(&draft, &mut command)?;
    if !store::insert_command(&command)? {
        return Err(Error::invalid(format!(
            "name: a command named `{name}` exists already; change it with PUT /commands/{name}"
        )));
    }
    note("custom_command.create", &name);
    Ok(ApiResponse::with_status(201, &command))
}

fn create_responder(request: &ApiRequest) -> Result<ApiResponse, Error> {
    let draft: ResponderDraft = request.body()?;
    let config = Config::load()?;
    let count = store::responders()?.len();
    if count >= config.max_auto_responders as usize {
        return Err(Error::QuotaExceeded(format!(
            "this server has {count} auto-responders, the most `max_auto_responders` allows; \
             delete one or raise `max_auto_responders` in the feature's settings"
        )));
    }
    let now = store::now();
    let mut responder = AutoResponder {
        id: 0,
        trigger: String::new(),
        match_type: draft.match_type,
        case_sensitive: false,
        channels: Vec::new(),
        response: draft.response.clone(),
        enabled: true,
        priority: 0,
        created_at: now,
        updated_at: now,
    };
    apply_responder(&draft, &mut responder)?;
    responder.id = store::next_responder_id()?;
    store::insert_responder(&responder)?;
    note("auto_responder.create", &responder.id.to_string());
    Ok(ApiResponse::with_status(
        201,
        &ResponderView {
            responder,
            trigger_count: 0,
        },
    ))
}
