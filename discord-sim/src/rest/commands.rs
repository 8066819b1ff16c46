//! Application commands: bulk overwrite (PUT), list, create, delete — with Discord's
//! validation of names, descriptions and options, and ids that survive
//! re-registration of the same command, as on Discord.

use super::{Params, bot_guild, created, id, json_body, no_content, ok};
use crate::Simulator;
use crate::error::{ApiError, ApiResult};
use crate::messages::snowflake_value;
use crate::payloads::sf;
use crate::state::World;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

const MAX_COMMANDS: usize = 100;
const MAX_OPTIONS: usize = 25;

/// `^[-_\p{Ll}\p{N}]{1,32}$`: what Discord accepts for chat-input command and
/// option names.
pub fn valid_chat_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=32).contains(&n)
        && name
            .chars()
            .all(|c| c == '-' || c == '_' || c.is_lowercase() || c.is_numeric())
}

fn check_app(sim: &Simulator, p: &Params) -> ApiResult<()> {
    if id(p, "app_id")? != sim.0.config.application_id {
        return Err(ApiError::new(
            403,
            20012,
            "You are not authorized to perform this action on this application",
        ));
    }
    Ok(())
}

/// Validates one command; `at` is its index in a bulk body (empty for single ones).
fn validate(cmd: &Value, at: &[&str]) -> ApiResult<()> {
    let field = |f: &str| -> Vec<String> {
        at.iter()
            .map(|s| s.to_string())
            .chain(std::iter::once(f.to_string()))
            .collect()
    };
    let err = |path: Vec<String>, code: &str, msg: &str| {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        ApiError::form(&p, code, msg)
    };
    let kind = cmd.get("type").and_then(Value::as_u64).unwrap_or(1);
    if !(1..=4).contains(&kind) {
        return Err(err(
            field("type"),
            "BASE_TYPE_CHOICES",
            "Value must be one of {1, 2, 3, 4}.",
        ));
    }
    let name = cmd.get("name").and_then(Value::as_str).unwrap_or("");
    let len = name.chars().count();
    if !(1..=32).contains(&len) {
        return Err(err(
            field("name"),
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 32 in length.",
        ));
    }
    if kind == 1 && !valid_chat_name(name) {
        return Err(err(
            field("name"),
            "APPLICATION_COMMAND_INVALID_NAME",
            "Command name is invalid",
        ));
    }
    let description = cmd.get("description").and_then(Value::as_str).unwrap_or("");
    let dlen = description.chars().count();
    if kind == 1 && !(1..=100).contains(&dlen) {
        return Err(err(
            field("description"),
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        ));
    }
    if kind != 1 && dlen != 0 {
        return Err(err(
            field("description"),
            "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION_INVALID",
            "Context menu commands cannot have description",
        ));
    }
    if let Some(opts) = cmd.get("options").filter(|v| !v.is_null()) {
        if kind != 1 {
            return Err(err(
                field("options"),
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Context menu commands cannot have options",
            ));
        }
        let base = field("options");
        let base: Vec<&str> = base.iter().map(String::as_str).collect();
        validate_options(opts, &base)?;
    }
    Ok(())
}

fn validate_options(opts: &Value, at: &[&str]) -> ApiResult<()> {
    let form = |path: &[&str], code: &str, msg: &str| ApiError::form(path, code, msg);
    let Some(list) = opts.as_array() else {
        return Err(form(at, "BASE_TYPE_BAD_TYPE", "Must be an array."));
    };
    if list.len() > MAX_OPTIONS {
        return Err(form(
            at,
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        ));
    }
    let mut seen_optional = false;
    let mut names = Vec::new();
    for (i, o) in list.iter().enumerate() {
        let idx = i.to_string();
        let path = |f: &'static str| -> Vec<&str> {
            at.iter().copied().chain([idx.as_str(), f]).collect()
        };
        let kind = o.get("type").and_then(Value::as_u64).unwrap_or(0);
        if !(1..=11).contains(&kind) {
            return Err(form(
                &path("type"),
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}.",
            ));
        }
        let name = o.get("name").and_then(Value::as_str).unwrap_or("");
        if !valid_chat_name(name) {
            return Err(form(
                &path("name"),
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            ));
        }
        if names.contains(&name) {
            return Err(form(
                &path("name"),
                "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            ));
        }
        names.push(name);
        let d = o.get("description").and_then(Value::as_str).unwrap_or("");
        if !(1..=100).contains(&d.chars().count()) {
            return Err(form(
                &path("description"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            ));
        }
        let required = o.get("required").and_then(Value::as_bool).unwrap_or(false);
        if kind > 2 {
            if required && seen_optional {
                return Err(form(
                    &path("required"),
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                ));
            }
            seen_optional |= !required;
        }
        if let Some(choices) = o.get("choices").and_then(Value::as_array)
            && choices.len() > MAX_OPTIONS
        {
            return Err(form(
                &path("choices"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        if let Some(sub) = o.get("options").filter(|v| !v.is_null()) {
            let sub_at = path("options");
            validate_options(sub, &sub_at)?;
        }
    }
    Ok(())
}

/// The command object Discord returns, keeping the id (and the version if nothing
/// changed) of an earlier registration with the same type and name.
fn materialize(w: &mut World, sim: &Simulator, guild_id: Option<u64>, cmd: &Value) -> Value {
    let kind = cmd.get("type").and_then(Value::as_u64).unwrap_or(1);
    let name = cmd
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let key = (guild_id.unwrap_or(0), kind, name.clone());
    let id = *w.command_ids.entry(key).or_insert_with(|| sim.next_id());
    let previous = match guild_id {
        Some(g) => w
            .guild_commands
            .get(&g)
            .and_then(|l| l.iter().find(|c| c["id"] == json!(id.to_string())).cloned()),
        None => w
            .global_commands
            .iter()
            .find(|c| c["id"] == json!(id.to_string()))
            .cloned(),
    };
    let permissions = cmd
        .get("default_member_permissions")
        .and_then(snowflake_value)
        .map_or(Value::Null, |p| Value::String(p.to_string()));
    let mut v = json!({
        "id": sf(id),
        "application_id": sf(sim.0.config.application_id),
        "version": "0",
        "default_member_permissions": permissions,
        "type": kind,
        "name": name,
        "name_localizations": cmd.get("name_localizations").cloned().unwrap_or(Value::Null),
        "description": cmd.get("description").cloned().unwrap_or(json!("")),
        "description_localizations": cmd.get("description_localizations").cloned().unwrap_or(Value::Null),
        "nsfw": cmd.get("nsfw").and_then(Value::as_bool).unwrap_or(false),
        "integration_types": [0],
        "contexts": cmd.get("contexts").cloned().unwrap_or(Value::Null),
    });
    if let Some(opts) = cmd
        .get("options")
        .filter(|o| o.as_array().is_some_and(|a| !a.is_empty()))
    {
        v["options"] = opts.clone();
    }
    match guild_id {
        Some(g) => v["guild_id"] = sf(g),
        None => v["dm_permission"] = json!(true),
    }
    let same = previous.as_ref().is_some_and(|p| {
        let mut p = p.clone();
        p["version"] = json!("0");
        p == v
    });
    v["version"] = match previous {
        Some(p) if same => p["version"].clone(),
        _ => sf(sim.next_id()),
    };
    v
}

/// Validates a bulk body; returns the commands.
fn validate_bulk(body: &Value) -> ApiResult<Vec<Value>> {
    let Some(list) = body.as_array() else {
        return Err(ApiError::form(
            &[],
            "BASE_TYPE_BAD_TYPE",
            "Must be an array.",
        ));
    };
    if list.len() > MAX_COMMANDS {
        return Err(ApiError::form(
            &[],
            "BASE_TYPE_MAX_LENGTH",
            "Must be 100 or fewer in length.",
        ));
    }
    let mut seen = Vec::new();
    for (i, cmd) in list.iter().enumerate() {
        let idx = i.to_string();
        validate(cmd, &[idx.as_str()])?;
        let key = (
            cmd.get("type").and_then(Value::as_u64).unwrap_or(1),
            cmd.get("name").and_then(Value::as_str).unwrap_or(""),
        );
        if seen.contains(&key) {
            return Err(ApiError::form(
                &[idx.as_str(), "name"],
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                "Application command names must be unique",
            ));
        }
        seen.push(key);
    }
    Ok(list.clone())
}

/// `PUT /applications/{app}/guilds/{g}/commands`: replaces the guild's commands.
pub async fn put_guild(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    check_app(&sim, &p)?;
    let guild_id = id(&p, "guild_id")?;
    let body = json_body(&headers, &body)?;
    let mut w = sim.world();
    bot_guild(&w, guild_id)?;
    let list = validate_bulk(&body)?;
    let out: Vec<Value> = list
        .iter()
        .map(|c| materialize(&mut w, &sim, Some(guild_id), c))
        .collect();
    w.guild_commands.insert(guild_id, out.clone());
    *w.command_overwrites.entry(guild_id).or_default() += 1;
    Ok(ok(Value::Array(out)))
}

/// `GET /applications/{app}/guilds/{g}/commands`.
pub async fn get_guild(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    check_app(&sim, &p)?;
    let guild_id = id(&p, "guild_id")?;
    let w = sim.world();
    bot_guild(&w, guild_id)?;
    Ok(ok(Value::Array(
        w.guild_commands.get(&guild_id).cloned().unwrap_or_default(),
    )))
}

/// `GET /applications/{app}/guilds/{g}/commands/{id}`.
pub async fn get_guild_command(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    check_app(&sim, &p)?;
    let (guild_id, command_id) = (id(&p, "guild_id")?, id(&p, "command_id")?);
    let w = sim.world();
    bot_guild(&w, guild_id)?;
    w.guild_commands
        .get(&guild_id)
        .and_then(|l| l.iter().find(|c| c["id"] == json!(command_id.to_string())))
        .map(|c| ok(c.clone()))
        .ok_or_else(ApiError::unknown_command)
}

/// `POST /applications/{app}/guilds/{g}/commands`: creates or replaces one command
/// (201 when new, 200 when it existed).
pub async fn create_guild_command(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    check_app(&sim, &p)?;
    let guild_id = id(&p, "guild_id")?;
    let body = json_body(&headers, &body)?;
    validate(&body, &[])?;
    let mut w = sim.world();
    bot_guild(&w, guild_id)?;
    let cmd = materialize(&mut w, &sim, Some(guild_id), &body);
    let list = w.guild_commands.entry(guild_id).or_default();
    let existed = match list.iter_mut().find(|c| c["id"] == cmd["id"]) {
        Some(c) => {
            *c = cmd.clone();
            true
        }
        None => {
            if list.len() >= MAX_COMMANDS {
                return Err(ApiError::new(
                    400,
                    30032,
                    "Maximum number of application commands reached (100)",
                ));
            }
            list.push(cmd.clone());
            false
        }
    };
    Ok(if existed { ok(cmd) } else { created(cmd) })
}

/// `DELETE /applications/{app}/guilds/{g}/commands/{id}`.
pub async fn delete_guild_command(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    check_app(&sim, &p)?;
    let (guild_id, command_id) = (id(&p, "guild_id")?, id(&p, "command_id")?);
    let mut w = sim.world();
    bot_guild(&w, guild_id)?;
    let list = w.guild_commands.entry(guild_id).or_default();
    let before = list.len();
    list.retain(|c| c["id"] != json!(command_id.to_string()));
    if list.len() == before {
        return Err(ApiError::unknown_command());
    }
    Ok(no_content())
}

/// `PUT /applications/{app}/commands`: global commands.
pub async fn put_global(
    State(sim): State<Simulator>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    check_app(&sim, &p)?;
    let body = json_body(&headers, &body)?;
    let list = validate_bulk(&body)?;
    let mut w = sim.world();
    let out: Vec<Value> = list
        .iter()
        .map(|c| materialize(&mut w, &sim, None, c))
        .collect();
    w.global_commands = out.clone();
    Ok(ok(Value::Array(out)))
}

/// `GET /applications/{app}/commands`.
pub async fn get_global(State(sim): State<Simulator>, p: Params) -> ApiResult<Response> {
    check_app(&sim, &p)?;
    Ok(ok(Value::Array(sim.world().global_commands.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_chat_name("xp"));
        assert!(valid_chat_name("top-10_users"));
        assert!(valid_chat_name("é"));
        assert!(!valid_chat_name("Xp"));
        assert!(!valid_chat_name("with space"));
        assert!(!valid_chat_name(""));
        assert!(!valid_chat_name(&"a".repeat(33)));
    }

    #[test]
    fn option_errors_name_the_field() {
        let e = validate_bulk(&json!([
            {"name": "ok", "description": "fine"},
            {"name": "b", "description": "d", "options": [
                {"type": 3, "name": "fine", "description": "x"},
                {"type": 3, "name": "Bad", "description": "x"}
            ]}
        ]))
        .unwrap_err();
        assert_eq!(
            e.body["errors"]["1"]["options"]["1"]["name"]["_errors"][0]["code"],
            "APPLICATION_COMMAND_INVALID_NAME"
        );
        let e = validate_bulk(&json!([{"name": "a", "description": ""}])).unwrap_err();
        assert!(e.body["errors"]["0"]["description"].is_object());
        assert!(validate_bulk(&json!([{"name": "Ban User", "type": 2}])).is_ok());
    }
}
