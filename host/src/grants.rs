//! What a feature may do in a guild.
//!
//! The effective grant is what the feature's manifest requests ∩ what the guild's
//! admin approved ∩ what the guild's plan allows, plus the scopes the admin set
//! (channel allow-list for messages, role ceiling for roles). Every capability
//! call checks it first.
//!
//! `ai` and `http` (contract 0.1.4) are interfaces outside the WIT
//! `capability` enum, which cannot grow within 0.1: a feature requests one by
//! importing it, and the admin approves it with [`Approval::ai`] and
//! [`Approval::http_hosts`] (ADR 0024).

use crate::discord::permissions;
use crate::wit::{Capability, CapabilityRequest, Error};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every capability, in WIT order.
pub const ALL_CAPABILITIES: [Capability; 11] = [
    Capability::Messages,
    Capability::MessageContent,
    Capability::Members,
    Capability::Roles,
    Capability::Channels,
    Capability::Moderation,
    Capability::Storage,
    Capability::Config,
    Capability::Scheduler,
    Capability::Audit,
    Capability::Log,
];

/// The WIT name of a capability (`message-content`), which is also the name of
/// the interface that carries it (except `message-content`, which has none).
pub fn capability_name(c: Capability) -> &'static str {
    match c {
        Capability::Messages => "messages",
        Capability::MessageContent => "message-content",
        Capability::Members => "members",
        Capability::Roles => "roles",
        Capability::Channels => "channels",
        Capability::Moderation => "moderation",
        Capability::Storage => "storage",
        Capability::Config => "config",
        Capability::Scheduler => "scheduler",
        Capability::Audit => "audit",
        Capability::Log => "log",
    }
}

pub fn parse_capability(name: &str) -> Result<Capability, String> {
    ALL_CAPABILITIES
        .into_iter()
        .find(|c| capability_name(*c) == name)
        .ok_or_else(|| {
            let known: Vec<_> = ALL_CAPABILITIES
                .iter()
                .map(|c| capability_name(*c))
                .collect();
            format!(
                "unknown capability `{name}`; known capabilities: {}",
                known.join(", ")
            )
        })
}

/// Capabilities every feature holds without asking: reading its own config and
/// writing to the host log have no effect on the guild.
pub fn always_granted(c: Capability) -> bool {
    matches!(c, Capability::Config | Capability::Log)
}

/// A set of capabilities, stored as a list of WIT names.
#[derive(Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct CapabilitySet(u16);

impl CapabilitySet {
    pub fn all() -> Self {
        ALL_CAPABILITIES.into_iter().collect()
    }

    pub fn contains(self, c: Capability) -> bool {
        self.0 & (1 << c as u16) != 0
    }

    pub fn insert(&mut self, c: Capability) {
        self.0 |= 1 << c as u16;
    }

    pub fn intersect(self, other: Self) -> Self {
        CapabilitySet(self.0 & other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Capability> {
        ALL_CAPABILITIES
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Capability> for CapabilitySet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut set = CapabilitySet::default();
        iter.into_iter().for_each(|c| set.insert(c));
        set
    }
}

impl TryFrom<Vec<String>> for CapabilitySet {
    type Error = String;
    fn try_from(names: Vec<String>) -> Result<Self, String> {
        names.iter().map(|n| parse_capability(n)).collect()
    }
}

impl From<CapabilitySet> for Vec<String> {
    fn from(set: CapabilitySet) -> Self {
        set.iter().map(|c| capability_name(c).to_string()).collect()
    }
}

impl fmt::Debug for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(capability_name))
            .finish()
    }
}

/// Storage limits of one (guild, feature). A key-value row counts
/// `len(key) + len(value)` bytes (UTF-8), a board row `len(board) + 8` (see
/// `townes_limits::storage`); each row counts one against `max_rows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub max_bytes: u64,
    pub max_rows: u64,
}

/// What a guild's admin approved for one feature; stored as JSON per
/// (guild, feature).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub capabilities: CapabilitySet,
    /// Channels the feature may post in; `None` means every channel.
    #[serde(default)]
    pub channels: Option<Vec<u64>>,
    /// The feature may only manage roles strictly below this role.
    #[serde(default)]
    pub role_ceiling: Option<u64>,
    /// Dangerous permission bits (see `discord::permissions::DANGEROUS`) the
    /// feature may hand out through roles and overwrites anyway. Administrator
    /// is never allowed, whatever this says.
    #[serde(default)]
    pub elevated_permissions: u64,
    /// Roles whose mentions in the feature's messages notify their members
    /// (with `messages`); any other role mention shows without notifying, and
    /// @everyone and @here never notify.
    #[serde(default)]
    pub mention_roles: Vec<u64>,
    /// The feature may call `ai` (0.1.4), metered against the guild's caps.
    #[serde(default)]
    pub ai: bool,
    /// Host names the feature may reach with `http` (0.1.4), lower-case;
    /// empty: `http` is denied.
    #[serde(default)]
    pub http_hosts: Vec<String>,
}

/// Interfaces of contract 0.1.4 that importing requests (see the module doc).
pub const IMPORT_REQUESTED: [&str; 2] = ["ai", "http"];

impl Approval {
    /// Approves these capabilities, with no scopes.
    pub fn of(capabilities: impl IntoIterator<Item = Capability>) -> Self {
        Approval {
            capabilities: capabilities.into_iter().collect(),
            ..Default::default()
        }
    }

    /// Approves everything the manifest requests, with no scopes.
    pub fn everything_requested(requests: &[CapabilityRequest]) -> Self {
        Approval::of(requests.iter().map(|r| r.capability))
    }
}

/// The effective grant of one feature in one guild for one invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub capabilities: CapabilitySet,
    pub channels: Option<Vec<u64>>,
    pub role_ceiling: Option<u64>,
    /// Dangerous bits the feature may hand out ([`Approval::elevated_permissions`]).
    pub elevated_permissions: u64,
    /// Roles the feature's messages may notify ([`Approval::mention_roles`]).
    pub mention_roles: Vec<u64>,
    pub storage: Quota,
    /// `ai` is approved ([`Approval::ai`]).
    pub ai: bool,
    /// Hosts `http` may reach ([`Approval::http_hosts`]).
    pub http_hosts: Vec<String>,
}

impl Grant {
    pub fn effective(
        requested: &[CapabilityRequest],
        approval: &Approval,
        plan_allows: CapabilitySet,
        storage: Quota,
    ) -> Self {
        let requested: CapabilitySet = requested.iter().map(|r| r.capability).collect();
        let mut capabilities = requested
            .intersect(approval.capabilities)
            .intersect(plan_allows);
        ALL_CAPABILITIES
            .into_iter()
            .filter(|c| always_granted(*c))
            .for_each(|c| capabilities.insert(c));
        Grant {
            capabilities,
            channels: approval.channels.clone(),
            role_ceiling: approval.role_ceiling,
            elevated_permissions: approval.elevated_permissions & !permissions::ADMINISTRATOR,
            mention_roles: approval.mention_roles.clone(),
            storage,
            ai: approval.ai,
            http_hosts: approval.http_hosts.clone(),
        }
    }

    /// The roles `content` mentions (`<@&id>`) that the grant lets notify
    /// their members, each once.
    pub fn pinged_roles(&self, content: &str) -> Vec<u64> {
        let mut pinged = Vec::new();
        for mention in content.split("<@&").skip(1) {
            let Some((id, _)) = mention.split_once('>') else {
                continue;
            };
            if let Ok(id) = id.parse::<u64>()
                && self.mention_roles.contains(&id)
                && !pinged.contains(&id)
            {
                pinged.push(id);
            }
        }
        pinged
    }

    pub fn check(&self, c: Capability) -> Result<(), Error> {
        if self.capabilities.contains(c) {
            Ok(())
        } else {
            Err(Error::Denied(c))
        }
    }

    /// The channel allow-list, for every call that acts in or on a channel;
    /// a refusal names the capability of the call.
    pub fn check_channel(&self, capability: Capability, channel_id: u64) -> Result<(), Error> {
        match &self.channels {
            Some(allowed) if !allowed.contains(&channel_id) => Err(Error::Denied(capability)),
            _ => Ok(()),
        }
    }

    /// Permission bits the feature may hand out: a role to assign or an
    /// overwrite's allow bits may carry no dangerous bit the admin did not allow.
    pub fn check_permissions(&self, capability: Capability, bits: u64) -> Result<(), Error> {
        let forbidden = bits & permissions::DANGEROUS & !self.elevated_permissions;
        if forbidden != 0 {
            return Err(Error::Denied(capability));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(c: Capability) -> CapabilityRequest {
        CapabilityRequest {
            capability: c,
            required: true,
            reason: String::new(),
        }
    }

    #[test]
    fn effective_grant_is_the_intersection_plus_baseline() {
        let requested = [
            request(Capability::Messages),
            request(Capability::Roles),
            request(Capability::Storage),
        ];
        let approval = Approval::of([
            Capability::Messages,
            Capability::Roles,
            Capability::Moderation,
        ]);
        let plan: CapabilitySet = [
            Capability::Messages,
            Capability::Storage,
            Capability::Moderation,
        ]
        .into_iter()
        .collect();
        let grant = Grant::effective(
            &requested,
            &approval,
            plan,
            Quota {
                max_bytes: 1,
                max_rows: 1,
            },
        );
        let held: Vec<_> = grant.capabilities.iter().map(capability_name).collect();
        assert_eq!(held, ["messages", "config", "log"]);
        assert!(matches!(
            grant.check(Capability::Roles),
            Err(Error::Denied(Capability::Roles))
        ));
    }

    #[test]
    fn capability_sets_round_trip_through_json_and_reject_unknown_names() {
        let set: CapabilitySet = [Capability::MessageContent, Capability::Audit]
            .into_iter()
            .collect();
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["message-content","audit"]"#);
        assert_eq!(serde_json::from_str::<CapabilitySet>(&json).unwrap(), set);
        let err = serde_json::from_str::<CapabilitySet>(r#"["telepathy"]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown capability `telepathy`"), "{err}");
    }

    #[test]
    fn only_granted_role_mentions_notify() {
        let grant = Grant::effective(
            &[],
            &Approval {
                mention_roles: vec![7, 9],
                ..Approval::default()
            },
            CapabilitySet::all(),
            Quota {
                max_bytes: 1,
                max_rows: 1,
            },
        );
        assert_eq!(
            grant.pinged_roles("<@&7> and <@&8>, again <@&7>, <@&9 >, <@&9>, <@&x> <@&"),
            [7, 9]
        );
        assert!(grant.pinged_roles("@everyone @here <@7>").is_empty());
    }

    #[test]
    fn channel_allow_list_scopes_messages() {
        let grant = Grant {
            capabilities: CapabilitySet::all(),
            channels: Some(vec![5]),
            role_ceiling: None,
            elevated_permissions: permissions::MANAGE_MESSAGES,
            mention_roles: vec![7],
            storage: Quota {
                max_bytes: 1,
                max_rows: 1,
            },
            ai: false,
            http_hosts: Vec::new(),
        };
        assert!(grant.check_channel(Capability::Messages, 5).is_ok());
        assert!(matches!(
            grant.check_channel(Capability::Channels, 6),
            Err(Error::Denied(Capability::Channels))
        ));
        // Sending messages is harmless; Manage Messages was allowed; Ban was not.
        let perms = permissions::SEND_MESSAGES | permissions::MANAGE_MESSAGES;
        assert!(grant.check_permissions(Capability::Roles, perms).is_ok());
        assert!(matches!(
            grant.check_permissions(Capability::Roles, perms | permissions::BAN_MEMBERS),
            Err(Error::Denied(Capability::Roles))
        ));
    }
}
