//! Message bodies as clients send them: validation (Discord's limits and error
//! shapes), mentions as `allowed_mentions` lets them through, and building the stored
//! message. Shared by `POST /channels/{id}/messages`, interaction responses,
//! followups and webhook edits, which all take the same body.

use crate::error::{ApiError, ApiResult};
use crate::state::{MessageRec, World};
use serde_json::Value;

/// Discord's limit on `content`.
pub const MAX_CONTENT: usize = 2000;

/// A validated message body.
#[derive(Clone, Debug, Default)]
pub struct Body {
    pub content: Option<String>,
    pub embeds: Option<Vec<Value>>,
    pub components: Option<Vec<Value>>,
    pub allowed_mentions: Option<Value>,
    pub nonce: Option<Value>,
    pub enforce_nonce: bool,
    pub reply_to: Option<u64>,
    /// `message_reference.fail_if_not_exists` (default true).
    pub reply_must_exist: bool,
    pub flags: u64,
    /// Files sent as multipart parts.
    pub attachments: Vec<Value>,
}

impl Body {
    pub fn has_embeds(&self) -> bool {
        self.embeds.as_ref().is_some_and(|e| !e.is_empty())
    }

    fn has_content(&self) -> bool {
        self.content.as_ref().is_some_and(|c| !c.is_empty())
    }
}

/// Parses and validates a body. `creating` is true for new messages, which must not
/// be empty; edits may change any subset.
pub fn parse(v: &Value, creating: bool) -> ApiResult<Body> {
    let Some(o) = v.as_object() else {
        return Err(ApiError::form(
            &[],
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        ));
    };
    let mut b = Body {
        reply_must_exist: true,
        ..Body::default()
    };
    match o.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if s.chars().count() > MAX_CONTENT {
                return Err(ApiError::form(
                    &["content"],
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 2000 or fewer in length.",
                ));
            }
            b.content = Some(s.clone());
        }
        Some(_) => {
            return Err(ApiError::form(
                &["content"],
                "BASE_TYPE_BAD_TYPE",
                "Must be a string.",
            ));
        }
    }
    b.embeds = array_field(o.get("embeds"), "embeds", 10)?;
    // Discord refuses `components: null` ("This field is required" on the array).
    if o.get("components") == Some(&Value::Null) {
        return Err(ApiError::form(
            &["components"],
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    }
    b.components = array_field(o.get("components"), "components", 5)?;
    if let Some(rows) = &b.components {
        for (i, row) in rows.iter().enumerate() {
            if row.get("type").and_then(Value::as_u64).is_none() {
                return Err(ApiError::form(
                    &["components", &i.to_string(), "type"],
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                ));
            }
        }
    }
    b.allowed_mentions = o.get("allowed_mentions").filter(|v| !v.is_null()).cloned();
    match o.get("nonce") {
        None | Some(Value::Null) => {}
        Some(n @ Value::String(s)) if s.len() <= 25 => b.nonce = Some(n.clone()),
        Some(n @ Value::Number(_)) => b.nonce = Some(n.clone()),
        Some(_) => {
            return Err(ApiError::form(
                &["nonce"],
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
    }
    b.enforce_nonce = o
        .get("enforce_nonce")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(r) = o.get("message_reference").filter(|v| !v.is_null()) {
        b.reply_to = r.get("message_id").and_then(snowflake_value);
        b.reply_must_exist = r
            .get("fail_if_not_exists")
            .and_then(Value::as_bool)
            .unwrap_or(true);
    }
    b.flags = o.get("flags").and_then(Value::as_u64).unwrap_or(0);
    if let Some(files) = o.get("attachments").and_then(Value::as_array) {
        b.attachments = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let name = f.get("filename").and_then(Value::as_str).unwrap_or("file");
                let id = f.get("id").and_then(snowflake_value).unwrap_or(i as u64);
                serde_json::json!({
                    "id": id.to_string(),
                    "filename": name,
                    "size": f.get("size").and_then(Value::as_u64).unwrap_or(0),
                    "url": format!("https://cdn.discordapp.com/attachments/0/{id}/{name}"),
                    "proxy_url": format!("https://media.discordapp.net/attachments/0/{id}/{name}"),
                })
            })
            .collect();
    }
    if creating
        && !b.has_content()
        && !b.has_embeds()
        && b.attachments.is_empty()
        && o.get("sticker_ids")
            .is_none_or(|s| s.as_array().is_none_or(Vec::is_empty))
        && o.get("poll").is_none_or(Value::is_null)
    {
        return Err(ApiError::form(
            &["content"],
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    }
    Ok(b)
}

fn array_field(v: Option<&Value>, name: &str, max: usize) -> ApiResult<Option<Vec<Value>>> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.len() > max => Err(ApiError::form(
            &[name],
            "BASE_TYPE_MAX_LENGTH",
            &format!("Must be {max} or fewer in length."),
        )),
        Some(Value::Array(a)) => Ok(Some(a.clone())),
        Some(_) => Err(ApiError::form(
            &[name],
            "BASE_TYPE_BAD_TYPE",
            "Must be an array.",
        )),
    }
}

/// A snowflake sent as a string or a number.
pub fn snowflake_value(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// The nonce's dedupe key.
pub fn nonce_key(n: &Value) -> String {
    match n {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Who a message pings: `<@id>`/`<@!id>` users, `<@&id>` roles and `@everyone`/`@here`,
/// filtered through `allowed_mentions` the way Discord does (absent = everything;
/// `parse` lists the kinds allowed wholesale, `users`/`roles` list explicit ids,
/// `replied_user` adds the author of the replied-to message).
pub fn mentions(
    content: &str,
    allowed: Option<&Value>,
    reply_author: Option<u64>,
) -> (Vec<u64>, Vec<u64>, bool) {
    let mut users = Vec::new();
    let mut roles = Vec::new();
    let mut rest = content;
    while let Some(i) = rest.find("<@") {
        rest = &rest[i + 2..];
        let (is_role, body) = match rest.strip_prefix('&') {
            Some(b) => (true, b),
            None => (false, rest.strip_prefix('!').unwrap_or(rest)),
        };
        if let Some(end) = body.find('>')
            && let Ok(id) = body[..end].parse::<u64>()
        {
            let list = if is_role { &mut roles } else { &mut users };
            if !list.contains(&id) {
                list.push(id);
            }
        }
    }
    let everyone = content.contains("@everyone") || content.contains("@here");
    let Some(allowed) = allowed else {
        return (users, roles, everyone);
    };
    let parse: Vec<&str> = allowed
        .get("parse")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let listed = |key: &str| -> Vec<u64> {
        allowed
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(snowflake_value).collect())
            .unwrap_or_default()
    };
    let (allowed_users, allowed_roles) = (listed("users"), listed("roles"));
    users.retain(|u| parse.contains(&"users") || allowed_users.contains(u));
    roles.retain(|r| parse.contains(&"roles") || allowed_roles.contains(r));
    if let Some(author) = reply_author
        && allowed.get("replied_user").and_then(Value::as_bool) == Some(true)
        && !users.contains(&author)
    {
        users.push(author);
    }
    (users, roles, everyone && parse.contains(&"everyone"))
}

/// Builds a new message from a validated body. The caller stores it.
pub fn build(
    w: &World,
    id: u64,
    channel_id: u64,
    author_id: u64,
    body: &Body,
    now_ms: u64,
) -> MessageRec {
    let guild_id = w.channels.get(&channel_id).and_then(|c| c.guild_id);
    let content = body.content.clone().unwrap_or_default();
    let reply_author = body
        .reply_to
        .and_then(|r| w.message(channel_id, r))
        .map(|m| m.author_id);
    let (mut mention_users, mention_roles, mention_everyone) = match body.allowed_mentions {
        Some(ref a) => mentions(&content, Some(a), reply_author),
        // Without allowed_mentions Discord pings everything, the replied user included.
        None => {
            let (mut u, r, e) = mentions(&content, None, None);
            if let Some(a) = reply_author
                && !u.contains(&a)
            {
                u.push(a);
            }
            (u, r, e)
        }
    };
    mention_users.retain(|u| w.users.contains_key(u));
    MessageRec {
        id,
        channel_id,
        guild_id,
        author_id,
        content,
        embeds: body.embeds.clone().unwrap_or_default(),
        components: body.components.clone().unwrap_or_default(),
        attachments: body.attachments.clone(),
        nonce: body.nonce.clone(),
        reply_to: body
            .reply_to
            .filter(|r| w.message(channel_id, *r).is_some()),
        allowed_mentions: body.allowed_mentions.clone(),
        timestamp_ms: now_ms,
        edited_ms: None,
        // Only EPHEMERAL and SUPPRESS_EMBEDS / SUPPRESS_NOTIFICATIONS are settable.
        flags: body.flags & (64 | 4 | 4096),
        kind: if body.reply_to.is_some() { 19 } else { 0 },
        webhook_id: None,
        interaction: None,
        mentions: mention_users,
        mention_roles,
        mention_everyone,
        reactions: Vec::new(),
        pinned: false,
    }
}

/// Applies an edit body to a stored message; only the fields present change.
pub fn apply_edit(m: &mut MessageRec, body: &Body, now_ms: u64) {
    if let Some(c) = &body.content {
        m.content = c.clone();
        let (u, r, e) = mentions(c, body.allowed_mentions.as_ref(), None);
        m.mentions = u;
        m.mention_roles = r;
        m.mention_everyone = e;
    }
    if let Some(e) = &body.embeds {
        m.embeds = e.clone();
    }
    if let Some(c) = &body.components {
        m.components = c.clone();
    }
    if body.allowed_mentions.is_some() {
        m.allowed_mentions = body.allowed_mentions.clone();
    }
    m.edited_ms = Some(now_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation() {
        assert!(parse(&json!({"content": "hi"}), true).is_ok());
        let long = "x".repeat(2001);
        let e = parse(&json!({ "content": long }), true).unwrap_err();
        assert_eq!(e.code(), 50035);
        assert_eq!(
            e.body["errors"]["content"]["_errors"][0]["code"],
            "BASE_TYPE_MAX_LENGTH"
        );
        assert_eq!(parse(&json!({}), true).unwrap_err().code(), 50035);
        assert!(parse(&json!({"embeds": [{"title": "t"}]}), true).is_ok());
        assert!(parse(&json!({"content": "a", "components": null}), true).is_err());
        assert!(parse(&json!({}), false).is_ok());
    }

    #[test]
    fn allowed_mentions_filter() {
        let c = "hi <@1> <@!2> <@&3> @everyone";
        assert_eq!(mentions(c, None, None), (vec![1, 2], vec![3], true));
        let none = json!({"parse": []});
        assert_eq!(mentions(c, Some(&none), None), (vec![], vec![], false));
        let some = json!({"parse": ["roles"], "users": ["2"], "replied_user": true});
        assert_eq!(
            mentions(c, Some(&some), Some(9)),
            (vec![2, 9], vec![3], false)
        );
    }
}
