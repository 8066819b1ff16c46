//! Who is who: names the person types, ids Discord speaks.

use super::*;

/// The guild's people, roles and channel by name and by id: the person types
/// names, Discord speaks ids.
pub(super) struct Directory {
    /// Users by name, including those `join` made.
    pub(super) users: BTreeMap<String, u64>,
    /// Highest first.
    pub(super) roles: Vec<(u64, String)>,
    pub(super) general: u64,
    pub(super) bot: (u64, String),
}

impl Directory {
    pub(super) fn new(playground: &Playground, bot_name: String) -> Directory {
        Directory {
            users: playground
                .users()
                .iter()
                .map(|(name, id)| (name.to_string(), *id))
                .collect(),
            roles: playground.roles.clone(),
            general: playground.general(),
            bot: (playground.sim.bot_user_id(), bot_name),
        }
    }

    pub(super) fn user(&self, name: &str) -> Option<u64> {
        self.users.get(name).copied()
    }

    fn user_name(&self, id: u64) -> Option<&str> {
        if id == self.bot.0 {
            return Some(&self.bot.1);
        }
        self.users
            .iter()
            .find(|(_, known)| **known == id)
            .map(|(name, _)| name.as_str())
    }

    /// A user's name for narration; an unknown id stays an id.
    pub(super) fn name(&self, id: u64) -> String {
        self.user_name(id)
            .map_or_else(|| format!("user {id}"), str::to_string)
    }

    fn role_name(&self, id: u64) -> Option<&str> {
        self.roles
            .iter()
            .find(|(known, _)| *known == id)
            .map(|(_, name)| name.as_str())
    }

    pub(super) fn role(&self, id: u64) -> String {
        self.role_name(id)
            .map_or_else(|| format!("role {id}"), |name| format!("the {name} role"))
    }

    pub(super) fn channel_name(&self, id: u64) -> Option<&str> {
        (id == self.general).then_some("general")
    }

    /// `@name` or an id.
    pub(super) fn user_ref(&self, raw: &str) -> Option<u64> {
        match raw.strip_prefix('@') {
            Some(name) => self.user(name),
            None => raw.parse().ok(),
        }
    }

    /// `@Role` (any case) or an id.
    pub(super) fn role_ref(&self, raw: &str) -> Option<u64> {
        match raw.strip_prefix('@') {
            Some(name) => self
                .roles
                .iter()
                .find(|(_, known)| known.eq_ignore_ascii_case(name))
                .map(|(id, _)| *id),
            None => raw.parse().ok(),
        }
    }

    /// `#general` or an id.
    pub(super) fn channel_ref(&self, raw: &str) -> Option<u64> {
        match raw.strip_prefix('#') {
            Some("general") => Some(self.general),
            Some(_) => None,
            None => raw.parse().ok(),
        }
    }

    /// The text with mentions of known users, roles and channels (`<@id>`,
    /// `<@!id>`, `<@&id>`, `<#id>`) shown as `@name` and `#name`.
    pub(super) fn render(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find('<') {
            out.push_str(&rest[..start]);
            let tail = &rest[start..];
            match self.mention(tail) {
                Some((len, name)) => {
                    out.push_str(&name);
                    rest = &tail[len..];
                }
                None => {
                    out.push('<');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The mention `text` starts with, as (its length, how to show it).
    fn mention(&self, text: &str) -> Option<(usize, String)> {
        let end = text.find('>')?;
        let inner = &text[1..end];
        let shown = if let Some(id) = inner.strip_prefix("@&") {
            format!("@{}", self.role_name(id.parse().ok()?)?)
        } else if let Some(id) = inner.strip_prefix('#') {
            format!("#{}", self.channel_name(id.parse().ok()?)?)
        } else {
            let id = inner.strip_prefix('@')?;
            let id = id.strip_prefix('!').unwrap_or(id);
            format!("@{}", self.user_name(id.parse().ok()?)?)
        };
        Some((end + 1, shown))
    }
}
