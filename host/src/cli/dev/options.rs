//! A slash command's words as the `data.options` Discord would send.

use super::*;

/// Discord's option types.
pub(super) mod kind {
    pub const SUBCOMMAND: u64 = 1;
    pub const GROUP: u64 = 2;
    pub const STRING: u64 = 3;
    pub const INTEGER: u64 = 4;
    pub const BOOLEAN: u64 = 5;
    pub const USER: u64 = 6;
    pub const CHANNEL: u64 = 7;
    pub const ROLE: u64 = 8;
    pub const MENTIONABLE: u64 = 9;
    pub const NUMBER: u64 = 10;
}

/// Discord's `data.options` for `/name words…`: leading bare words pick a
/// subcommand group and subcommand, `key=value` words are options typed as the
/// registered command declares them — guessed from the value for a command or
/// option Discord does not know, which is still sent, as a stale client would.
pub(super) fn slash_options(
    command: Option<&Value>,
    words: &[Word],
    people: &Directory,
) -> Result<Value, String> {
    let mut declared = command.and_then(|c| c["options"].as_array());
    let mut path = Vec::new();
    let mut rest = words;
    while let Some((word, tail)) = rest.split_first()
        && !word.quoted
        && !word.text.contains('=')
    {
        let (kind, options) = subcommand(declared, &word.text)?;
        path.push((kind, word.text.clone()));
        declared = options;
        rest = tail;
    }
    let options = rest
        .iter()
        .map(|word| typed_option(declared, word, people))
        .collect::<Result<Vec<_>, _>>()?;
    // Nest the options under the subcommand path, innermost first.
    Ok(path.into_iter().rev().fold(
        Value::Array(options),
        |inner, (kind, name)| json!([{ "type": kind, "name": name, "options": inner }]),
    ))
}

/// The subcommand (or group) `name` among `declared`, and its own options.
pub(super) fn subcommand<'a>(
    declared: Option<&'a Vec<Value>>,
    name: &str,
) -> Result<(u64, Option<&'a Vec<Value>>), String> {
    let Some(declared) = declared else {
        return Ok((kind::SUBCOMMAND, None));
    };
    let subcommands: Vec<&Value> = declared
        .iter()
        .filter(|o| matches!(o["type"].as_u64(), Some(kind::SUBCOMMAND | kind::GROUP)))
        .collect();
    if subcommands.is_empty() {
        return Err(format!(
            "expected name=value, not {name:?}; quote values with spaces: text=\"hello there\""
        ));
    }
    match subcommands.iter().find(|o| o["name"] == name) {
        Some(found) => Ok((
            found["type"].as_u64().unwrap_or(kind::SUBCOMMAND),
            found["options"].as_array(),
        )),
        None => {
            let names: Vec<&str> = subcommands
                .iter()
                .filter_map(|o| o["name"].as_str())
                .collect();
            Err(format!(
                "no subcommand {name:?} here; there are: {}",
                names.join(", ")
            ))
        }
    }
}

/// One `key=value` as an option of the declared (or guessed) type.
pub(super) fn typed_option(
    declared: Option<&Vec<Value>>,
    word: &Word,
    people: &Directory,
) -> Result<Value, String> {
    let (key, raw) = pair(word)?;
    let kind = declared
        .and_then(|options| options.iter().find(|o| o["name"] == key.as_str()))
        .and_then(|o| o["type"].as_u64())
        .unwrap_or_else(|| guess_kind(&raw, word.quoted, people));
    let value = option_value(kind, &key, &raw, people)?;
    Ok(json!({ "type": kind, "name": key, "value": value }))
}

/// The type a value looks like, for an option Discord does not know.
pub(super) fn guess_kind(raw: &str, quoted: bool, people: &Directory) -> u64 {
    if quoted {
        kind::STRING
    } else if raw.parse::<i64>().is_ok() {
        kind::INTEGER
    } else if raw == "true" || raw == "false" {
        kind::BOOLEAN
    } else if raw.starts_with('@') && people.user_ref(raw).is_some() {
        kind::USER
    } else if raw.starts_with('@') && people.role_ref(raw).is_some() {
        kind::ROLE
    } else if raw.starts_with('#') && people.channel_ref(raw).is_some() {
        kind::CHANNEL
    } else {
        kind::STRING
    }
}

/// The value as Discord sends an option of `kind`: numbers and booleans as
/// JSON, users, channels and roles as snowflake strings.
pub(super) fn option_value(
    kind: u64,
    key: &str,
    raw: &str,
    people: &Directory,
) -> Result<Value, String> {
    let bad = |what: &str| format!("option {key} takes {what}, not {raw:?}");
    let snowflake =
        |id: Option<u64>, what: &str| id.map(|id| json!(id.to_string())).ok_or_else(|| bad(what));
    match kind {
        kind::INTEGER => raw
            .parse::<i64>()
            .map(|n| json!(n))
            .map_err(|_| bad("a whole number")),
        kind::NUMBER => match raw.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(json!(n)),
            _ => Err(bad("a number")),
        },
        kind::BOOLEAN => raw
            .parse::<bool>()
            .map(|b| json!(b))
            .map_err(|_| bad("true or false")),
        kind::USER => snowflake(people.user_ref(raw), "a member, like @ada"),
        kind::CHANNEL => snowflake(people.channel_ref(raw), "a channel, like #general"),
        kind::ROLE => snowflake(people.role_ref(raw), "a role, like @Member"),
        kind::MENTIONABLE => snowflake(
            people.user_ref(raw).or_else(|| people.role_ref(raw)),
            "a member or a role, like @ada or @Member",
        ),
        _ => Ok(json!(raw)),
    }
}
