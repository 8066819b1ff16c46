//! Tags: custom commands with `is_tag` and a category, shown by
//! `{prefix}name` or `/tag name` and listed by `{prefix}tags [category]` or
//! `/tags [category]`.

use crate::store;
use std::collections::BTreeMap;
use townes_sdk::{CommandInvocation, Error, MessageBody, Reply, limits, template};

/// A tag's category when none is given.
pub const DEFAULT_CATEGORY: &str = "general";

/// The enabled tags by category (both in name order), or only `category`'s.
pub fn list(category: Option<&str>, prefix: &str) -> Result<MessageBody, Error> {
    let mut by_category: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for command in store::commands()? {
        if command.is_tag && command.enabled {
            let category = command
                .category
                .unwrap_or_else(|| DEFAULT_CATEGORY.to_string());
            by_category.entry(category).or_default().push(command.name);
        }
    }
    if by_category.is_empty() {
        return Ok(MessageBody::text("There are no tags yet."));
    }
    let wanted = category.map(str::to_lowercase);
    if let Some(wanted) = &wanted
        && !by_category.contains_key(wanted)
    {
        let known: Vec<String> = by_category.keys().map(|c| format!("`{c}`")).collect();
        return Ok(MessageBody::text(format!(
            "There are no tags in `{wanted}`. Categories: {}.",
            known.join(", ")
        )));
    }
    let mut text = format!("**Tags** — use `{prefix}name` or `/tag name`");
    for (category, names) in &by_category {
        if wanted.as_ref().is_some_and(|w| w != category) {
            continue;
        }
        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        text.push_str(&format!("\n**{category}**: {}", names.join(", ")));
    }
    Ok(MessageBody::text(template::truncate(text, limits::CONTENT)))
}

/// `/tags [category]`.
pub fn on_slash(invocation: &CommandInvocation, prefix: &str) -> Result<Reply, Error> {
    let category = invocation.text_arg("category").map(str::trim);
    Ok(Reply::from(list(category.filter(|c| !c.is_empty()), prefix)?).ephemeral())
}
