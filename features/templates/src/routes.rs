//! The dashboard routes. The host lets only members who manage the guild (and
//! the tenant's API keys) reach them and checks request bodies against the
//! schemas declared here; the handlers check everything again for the
//! meaning the schemas cannot say (Discord's limits, roles, duplicates).

use crate::reaction_roles::{self, Draft, MAX_PAIRS};
use crate::store::{self, ReactionRoles, Template};
use crate::templates::{self, MAX_EMBED_DESCRIPTION, MAX_LABEL, MAX_MENU_OPTIONS};
use crate::{Config, audit_entry};
use serde::Deserialize;
use townes_sdk::serde_json::{self, Value};
use townes_sdk::{
    ApiRequest, ApiResponse, Context, Error, Method, Route, Snowflake, json, limits, snowflake,
};

/// The pattern of a template id.
pub const SLUG_PATTERN: &str = "^[a-z0-9-]{1,32}$";
/// The pattern of a URL the feature accepts.
pub const HTTPS_PATTERN: &str = "^https://";

/// An id as the API writes it: a decimal string.
fn id_schema() -> Value {
    json!({ "type": "string", "pattern": snowflake::PATTERN })
}

/// An id in a request: a decimal string (or an integer).
fn id_in(input: bool) -> Value {
    if input {
        snowflake::schema()
    } else {
        id_schema()
    }
}

fn nullable(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "type": "null" }] })
}

fn text(max: usize) -> Value {
    json!({ "type": "string", "maxLength": max })
}

fn https() -> Value {
    json!({ "type": "string", "pattern": HTTPS_PATTERN, "maxLength": templates::MAX_URL })
}

fn emoji() -> Value {
    nullable(json!({ "type": "string", "minLength": 1, "maxLength": 100 }))
}

/// `required` as given in a request (only what must be), or every property
/// in an answer.
fn object(properties: Value, required: &[&str], input: bool) -> Value {
    let required: Vec<Value> = if input {
        required.iter().map(|r| json!(r)).collect()
    } else {
        properties
            .as_object()
            .map(|p| p.keys().map(|k| json!(k)).collect())
            .unwrap_or_default()
    };
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": false
    })
}

fn embed_schema(input: bool) -> Value {
    object(
        json!({
            "title": nullable(text(limits::EMBED_TITLE)),
            "description": nullable(text(MAX_EMBED_DESCRIPTION)),
            "url": nullable(https()),
            "color": nullable(json!({ "type": "integer", "minimum": 0, "maximum": 0xFF_FFFF })),
            "fields": {
                "type": "array",
                "maxItems": limits::EMBED_FIELDS,
                "items": object(
                    json!({
                        "name": { "type": "string", "minLength": 1, "maxLength": limits::EMBED_FIELD_NAME },
                        "value": { "type": "string", "minLength": 1, "maxLength": limits::EMBED_FIELD_VALUE },
                        "inline": { "type": "boolean" }
                    }),
                    &["name", "value"],
                    input,
                )
            },
            "footer": nullable(text(limits::EMBED_FOOTER)),
            "thumbnail_url": nullable(https()),
            "image_url": nullable(https())
        }),
        &[],
        input,
    )
}

fn button_schema(input: bool) -> Value {
    let label = json!({ "type": "string", "minLength": 1, "maxLength": MAX_LABEL });
    json!({
        "anyOf": [
            object(
                json!({ "kind": { "const": "link" }, "label": label, "url": https(), "emoji": emoji() }),
                &["kind", "label", "url"],
                input,
            ),
            object(
                json!({
                    "kind": { "const": "role" },
                    "label": label,
                    "role_id": id_in(input),
                    "style": { "enum": ["primary", "secondary", "success", "danger"] },
                    "emoji": emoji()
                }),
                &["kind", "label", "role_id"],
                input,
            )
        ]
    })
}

fn menu_schema(input: bool) -> Value {
    let max_values = json!({ "type": "integer", "minimum": 1, "maximum": MAX_MENU_OPTIONS });
    object(
        json!({
            "placeholder": nullable(text(templates::MAX_PLACEHOLDER)),
            "min_values": { "type": "integer", "minimum": 0, "maximum": MAX_MENU_OPTIONS },
            "max_values": if input { nullable(max_values) } else { max_values },
            "options": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_MENU_OPTIONS,
                "items": object(
                    json!({
                        "role_id": id_in(input),
                        "label": { "type": "string", "minLength": 1, "maxLength": templates::MAX_OPTION_TEXT },
                        "description": nullable(text(templates::MAX_OPTION_TEXT))
                    }),
                    &["role_id", "label"],
                    input,
                )
            }
        }),
        &["options"],
        input,
    )
}

/// A template; `with_id` false for `PUT`, whose id is in the path.
pub fn template_schema(input: bool, with_id: bool) -> Value {
    let mut properties = json!({
        "id": { "type": "string", "pattern": SLUG_PATTERN },
        "name": { "type": "string", "minLength": 1, "maxLength": templates::MAX_NAME },
        "content": { "type": "string", "maxLength": limits::CONTENT,
                     "description": "With template variables such as {server.name}" },
        "embed": nullable(embed_schema(input)),
        "buttons": { "type": "array", "maxItems": templates::MAX_BUTTONS, "items": button_schema(input) },
        "select": nullable(menu_schema(input)),
        "command": nullable(json!({
            "type": "string", "pattern": "^[a-z0-9_-]{1,32}$",
            "description": "A slash command of the server that posts this template, e.g. rules for /rules"
        }))
    });
    let mut required = vec!["id", "name"];
    if !with_id {
        properties.as_object_mut().map(|p| p.remove("id"));
        required.remove(0);
    }
    object(properties, &required, input)
}

pub fn reaction_roles_schema(input: bool) -> Value {
    object(
        json!({
            "channel_id": id_in(input),
            "message_id": id_in(input),
            "mode": { "enum": ["normal", "unique", "verify"],
                      "description": "normal: add and remove; unique: one role of the set; verify: add only" },
            "limit": { "type": "integer", "minimum": 0, "maximum": MAX_PAIRS,
                       "description": "Roles of this message a member may hold; 0: no limit" },
            "pairs": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_PAIRS,
                "items": object(
                    json!({
                        "emoji": { "type": "string", "minLength": 1, "maxLength": 100,
                                   "description": "A unicode emoji or name:id of a custom one" },
                        "role_id": id_in(input)
                    }),
                    &["emoji", "role_id"],
                    input,
                )
            }
        }),
        &["channel_id", "message_id", "pairs"],
        input,
    )
}

fn send_schema() -> Value {
    object(
        json!({ "channel_id": snowflake::schema() }),
        &["channel_id"],
        true,
    )
}

fn sent_schema() -> Value {
    object(
        json!({ "message_id": id_schema(), "channel_id": id_schema() }),
        &[],
        false,
    )
}

fn list_schema(key: &str, item: Value) -> Value {
    json!({
        "type": "object",
        "required": [key],
        "properties": { key: { "type": "array", "items": item } },
        "additionalProperties": false
    })
}

/// `schema` with `example` as its JSON Schema `examples`: the host shows the
/// first in the API document.
fn with_example(mut schema: Value, example: Value) -> Value {
    schema["examples"] = json!([example]);
    schema
}

/// A made-up template, as stored and answered.
pub fn template_example() -> Value {
    json!({
        "id": "rules",
        "name": "Server rules",
        "content": "Welcome to {server.name}! Read the rules, then pick your roles below.",
        "embed": {
            "title": "Rules of {server.name}",
            "description": "1. Be kind.\n2. No spam or self-promotion.\n3. Keep it safe for work.",
            "url": "https://example.com/rules",
            "color": 5793266,
            "fields": [{ "name": "Need help?", "value": "Ask in {channel} or ping a moderator.", "inline": false }],
            "footer": "{server.memberCount} members and counting",
            "thumbnail_url": null,
            "image_url": "https://cdn.example.com/banners/rules.png"
        },
        "buttons": [
            { "kind": "role", "label": "Announcements", "role_id": "1141240001234567890", "style": "primary", "emoji": "📣" },
            { "kind": "link", "label": "Website", "url": "https://example.com", "emoji": null }
        ],
        "command": "rules",
        "select": {
            "placeholder": "Pick the games you play",
            "min_values": 0,
            "max_values": 2,
            "options": [
                { "role_id": "1141240001234567891", "label": "Minecraft", "description": "Block by block" },
                { "role_id": "1141240001234567892", "label": "Chess", "description": null }
            ]
        }
    })
}

fn reaction_roles_example() -> Value {
    json!({
        "channel_id": "1141234567890123458",
        "message_id": "1141299990000000001",
        "mode": "unique",
        "limit": 0,
        "pairs": [
            { "emoji": "🔴", "role_id": "1141240001234567893" },
            { "emoji": "party_blob:1141250000000000001", "role_id": "1141240001234567894" }
        ]
    })
}

pub fn routes() -> Vec<Route> {
    let template = || with_example(template_schema(false, true), template_example());
    let rr = || with_example(reaction_roles_schema(false), reaction_roles_example());
    let mut update_example = template_example();
    update_example.as_object_mut().map(|t| t.remove("id"));
    vec![
        Route::get("/templates", "listTemplates", "The guild's message templates, by id")
            .response(with_example(
                list_schema("templates", template_schema(false, true)),
                json!({ "templates": [template_example()] }),
            )),
        Route::post(
            "/templates",
            "createTemplate",
            "Creates a template (its id is a slug you pick: 1-32 of a-z 0-9 -)",
        )
        .request(with_example(
            template_schema(true, true),
            template_example(),
        ))
        .response(template()),
        Route::get("/templates/{id}", "getTemplate", "One template").response(template()),
        Route::put("/templates/{id}", "updateTemplate", "Replaces a template (messages already sent keep working)")
            .request(with_example(template_schema(true, false), update_example))
            .response(template()),
        Route::delete(
            "/templates/{id}",
            "deleteTemplate",
            "Deletes a template; answers it (messages already sent keep working)",
        )
        .response(template()),
        Route::post(
            "/templates/{id}/send",
            "sendTemplate",
            "Renders the template's variables and sends it to a channel",
        )
        .request(with_example(send_schema(), json!({ "channel_id": "1141234567890123458" })))
        .response(with_example(
            sent_schema(),
            json!({ "message_id": "1141299990000000002", "channel_id": "1141234567890123458" }),
        )),
        Route::get("/reaction-roles", "listReactionRoles", "The messages with reaction roles")
            .response(with_example(
                list_schema("reaction_roles", reaction_roles_schema(false)),
                json!({ "reaction_roles": [reaction_roles_example()] }),
            )),
        Route::post(
            "/reaction-roles",
            "setReactionRoles",
            "Sets a message's emoji → role pairs (201 new, 200 replaced); the bot reacts with each emoji",
        )
        .request(with_example(
            reaction_roles_schema(true),
            reaction_roles_example(),
        ))
        .response(rr()),
        Route::delete(
            "/reaction-roles/{message_id}",
            "deleteReactionRoles",
            "Removes a message's reaction roles (members keep their roles); answers them",
        )
        .response(rr()),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    #[serde(deserialize_with = "snowflake::de")]
    channel_id: Snowflake,
}

fn id_param(request: &ApiRequest) -> Result<String, Error> {
    let id = request.param("id").unwrap_or("");
    templates::check_slug(id)?;
    Ok(id.to_string())
}

fn json_of<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

pub fn handle(ctx: &Context, request: ApiRequest) -> Result<ApiResponse, Error> {
    match (request.method, request.route.as_str()) {
        (Method::Get, "/templates") => {
            let list: Vec<Template> = store::list(store::TEMPLATE_PREFIX)?;
            Ok(ApiResponse::json(&json!({ "templates": list })))
        }
        (Method::Post, "/templates") => {
            let t: Template = request.body()?;
            Ok(ApiResponse::with_status(201, &create(ctx, t)?))
        }
        (Method::Get, "/templates/{id}") => Ok(ApiResponse::json(&store::load_template(
            &id_param(&request)?,
        )?)),
        (Method::Put, "/templates/{id}") => {
            let id = id_param(&request)?;
            let mut body: Value = request.body()?;
            let Some(object) = body.as_object_mut() else {
                return Err(Error::invalid("body: a template object"));
            };
            object.insert("id".into(), json!(id));
            let t: Template =
                serde_json::from_value(body).map_err(|e| Error::invalid(format!("body: {e}")))?;
            Ok(ApiResponse::json(&update(ctx, t)?))
        }
        (Method::Delete, "/templates/{id}") => {
            let id = id_param(&request)?;
            let t = store::load_template(&id)?;
            townes_sdk::storage::delete(&store::template_key(&id))?;
            audit_entry("template.deleted", &format!("template `{id}`"));
            Ok(ApiResponse::json(&t))
        }
        (Method::Post, "/templates/{id}/send") => {
            let t = store::load_template(&id_param(&request)?)?;
            let body: SendBody = request.body()?;
            let message_id = templates::send(ctx, &t, body.channel_id)?;
            Ok(ApiResponse::json(&json!({
                "message_id": message_id.to_string(),
                "channel_id": body.channel_id.to_string(),
            })))
        }
        (Method::Get, "/reaction-roles") => {
            let list: Vec<ReactionRoles> = store::list(store::RR_PREFIX)?;
            Ok(ApiResponse::json(
                &json!({ "reaction_roles": json_of(&list) }),
            ))
        }
        (Method::Post, "/reaction-roles") => {
            let draft: Draft = request.body()?;
            let (record, created) = reaction_roles::set(ctx, &Config::load()?, draft)?;
            Ok(ApiResponse::with_status(
                if created { 201 } else { 200 },
                &record,
            ))
        }
        (Method::Delete, "/reaction-roles/{message_id}") => {
            let message_id = request
                .param("message_id")
                .and_then(|id| id.parse::<Snowflake>().ok())
                .filter(|&id| id > 0)
                .ok_or_else(|| Error::invalid("message_id: a Discord message id"))?;
            Ok(ApiResponse::json(&reaction_roles::delete(message_id)?))
        }
        _ => Err(Error::not_found("no such route")),
    }
}

/// Stores a new template after checking it.
pub fn create(ctx: &Context, mut t: Template) -> Result<Template, Error> {
    let config = Config::load()?;
    templates::validate(ctx.guild_id, &config, &mut t)?;
    templates::check_command_free(&t)?;
    let key = store::template_key(&t.id);
    if store::get::<Value>(&key)?.is_some() {
        return Err(duplicate(&t.id));
    }
    let count = store::count(
        store::TEMPLATE_PREFIX,
        config.max_templates.saturating_add(1),
    )?;
    if count >= config.max_templates as usize {
        return Err(Error::invalid(format!(
            "this server has {count} templates, the most `max_templates` allows; delete one or raise it"
        )));
    }
    if !store::insert(&key, &t)? {
        return Err(duplicate(&t.id));
    }
    audit_entry(
        "template.created",
        &format!("template `{}` ({})", t.id, t.name),
    );
    Ok(t)
}

fn duplicate(id: &str) -> Error {
    Error::invalid(format!(
        "a template `{id}` exists already; pick another id or change it with PUT /templates/{id}"
    ))
}

/// Replaces an existing template after checking it.
pub fn update(ctx: &Context, mut t: Template) -> Result<Template, Error> {
    store::load_template(&t.id)?;
    templates::validate(ctx.guild_id, &Config::load()?, &mut t)?;
    templates::check_command_free(&t)?;
    let id = t.id.clone();
    store::update::<Value>(&store::template_key(&id), |old| match old {
        None => Err(Error::not_found(format!("template `{id}`"))),
        Some(_) => Ok(Some(json_of(&t))),
    })?;
    audit_entry(
        "template.updated",
        &format!("template `{}` ({})", t.id, t.name),
    );
    Ok(t)
}
