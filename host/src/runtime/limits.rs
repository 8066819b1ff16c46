//! Resource limits per plan: what one invocation of a feature may use.
//!
//! A plan names a set of limits; a guild is on one plan. The defaults are the
//! `free` plan. Plans are plain data so an operator can load them from a file
//! (`TOWNES_PLANS=@plans.json`, or the JSON itself: `{"free": {...}, "base": {...}}`).

use crate::grants::CapabilitySet;
use crate::grants::Quota;
use crate::store::FileQuota;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Memory per instance: every linear memory and table of every core
    /// instance together. Growing past it traps.
    pub memory_mib: u32,
    /// CPU time per invocation in milliseconds: the thread's real CPU time while
    /// the invocation runs, guest code and host calls (WASI included) alike.
    pub cpu_ms: u32,
    /// Wall-clock time per invocation in milliseconds: host calls included, waits on
    /// Discord excluded up to `discord_wait_ms`.
    pub wall_ms: u32,
    /// Time one invocation may spend waiting on Discord (rate limits, a slow
    /// API) without it counting against `wall_ms`.
    pub discord_wait_ms: u32,
    /// Time one invocation may spend waiting on `ai` answers without it
    /// counting against `wall_ms` (each call also has the operator's timeout).
    pub ai_wait_ms: u32,
    /// Capability calls per invocation ("host-call fuel").
    pub host_calls: u32,
    /// Invocations of one guild that run at once; more wait for a slot.
    pub concurrent_per_guild: u32,
    /// Invocations of one guild waiting or running; more are turned away.
    pub queued_per_guild: u32,
    /// Pending scheduled jobs per (guild, feature).
    pub pending_jobs: u32,
    /// Audit entries per (guild, feature) per hour.
    pub audit_per_hour: u32,
    /// Host log lines per (guild, feature) per minute.
    pub log_lines_per_minute: u32,
    /// Storage per (guild, feature).
    pub storage_bytes: u64,
    pub storage_rows: u64,
    /// Files (`files` capability) per (guild, feature): total bytes, count,
    /// and the largest one.
    pub file_bytes: u64,
    pub files: u64,
    pub file_max_bytes: u64,
    /// Capabilities the plan allows at all.
    pub capabilities: CapabilitySet,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 16,
            cpu_ms: 50,
            wall_ms: 2_000,
            discord_wait_ms: 30_000,
            ai_wait_ms: 60_000,
            host_calls: 1_000,
            concurrent_per_guild: 4,
            queued_per_guild: 256,
            pending_jobs: 100,
            audit_per_hour: 60,
            log_lines_per_minute: 300,
            storage_bytes: 1 << 20,
            storage_rows: 10_000,
            file_bytes: 16 << 20,
            files: 500,
            file_max_bytes: 4 << 20,
            capabilities: CapabilitySet::all(),
        }
    }
}

impl Limits {
    pub fn memory_bytes(&self) -> usize {
        self.memory_mib as usize * 1024 * 1024
    }

    pub fn cpu(&self) -> Duration {
        Duration::from_millis(self.cpu_ms.into())
    }

    pub fn wall(&self) -> Duration {
        Duration::from_millis(self.wall_ms.into())
    }

    pub fn discord_wait(&self) -> Duration {
        Duration::from_millis(self.discord_wait_ms.into())
    }

    pub fn ai_wait(&self) -> Duration {
        Duration::from_millis(self.ai_wait_ms.into())
    }

    pub fn file_quota(&self) -> FileQuota {
        FileQuota {
            max_bytes: self.file_bytes,
            max_files: self.files,
            max_file_bytes: self.file_max_bytes,
        }
    }

    pub fn quota(&self) -> Quota {
        Quota {
            max_bytes: self.storage_bytes,
            max_rows: self.storage_rows,
        }
    }
}

/// A plan as the operator sells it: the runtime limits of one invocation, and
/// what the tenant gets beyond them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    #[serde(flatten)]
    pub limits: Limits,
    /// The Stripe price a subscription to it is billed at (`price_…`); `None`:
    /// not for sale (the free plan, or one only licences and the operator give).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_price: Option<String>,
    /// Marketplace features a guild on it may enable; `None`: every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// AI tokens one guild may use per UTC day; `None`: no cap of the plan's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_tokens_per_day: Option<u64>,
    /// The model a guild on it gets from `ai`; `None`: the operator's default
    /// (`TOWNES_AI_MODEL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_model: Option<String>,
    /// Guilds of one tenant the plan covers; the tenant's others stay on `free`.
    /// `None`: every guild.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guilds: Option<u32>,
}

impl Plan {
    pub fn new(limits: Limits) -> Plan {
        Plan {
            limits,
            stripe_price: None,
            features: None,
            ai_tokens_per_day: None,
            ai_model: None,
            guilds: None,
        }
    }

    /// Whether a guild on this plan may enable `feature_id`.
    pub fn allows_feature(&self, feature_id: &str) -> bool {
        self.features
            .as_ref()
            .is_none_or(|features| features.iter().any(|f| f == feature_id))
    }
}

/// The plans by name. Unknown plans get the `free` plan. Loaded from
/// `TOWNES_PLANS` (JSON, or `@path` to a JSON file): `{"free": {...}, "base":
/// {...}}`, each plan's limits beside its `stripe_price`, `features`,
/// `ai_tokens_per_day`, `ai_model` and `guilds`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plans(BTreeMap<String, Plan>);

/// The plan a tenant pays for (and tries: the trial is of this plan).
pub const BASE_PLAN: &str = "base";
/// The plan of every guild nobody pays for.
pub const FREE_PLAN: &str = "free";

impl Default for Plans {
    fn default() -> Self {
        let free = Plan {
            ai_tokens_per_day: Some(2_000),
            ..Plan::new(Limits::default())
        };
        let base = Plan {
            stripe_price: Some("price_base".into()),
            ai_tokens_per_day: Some(50_000),
            guilds: Some(5),
            ..Plan::new(Limits {
                memory_mib: 32,
                cpu_ms: 100,
                wall_ms: 3_000,
                host_calls: 2_500,
                concurrent_per_guild: 8,
                queued_per_guild: 512,
                pending_jobs: 500,
                audit_per_hour: 300,
                log_lines_per_minute: 600,
                storage_bytes: 16 << 20,
                storage_rows: 100_000,
                file_bytes: 256 << 20,
                files: 10_000,
                file_max_bytes: 8 << 20,
                ..Limits::default()
            })
        };
        let pro = Plan {
            ai_tokens_per_day: Some(500_000),
            ..Plan::new(Limits {
                memory_mib: 64,
                cpu_ms: 200,
                wall_ms: 5_000,
                discord_wait_ms: 60_000,
                host_calls: 5_000,
                concurrent_per_guild: 16,
                queued_per_guild: 1_024,
                pending_jobs: 1_000,
                audit_per_hour: 600,
                log_lines_per_minute: 1_200,
                storage_bytes: 64 << 20,
                storage_rows: 500_000,
                file_bytes: 1 << 30,
                files: 50_000,
                file_max_bytes: 16 << 20,
                ..Limits::default()
            })
        };
        Plans(BTreeMap::from([
            (FREE_PLAN.to_string(), free),
            (BASE_PLAN.to_string(), base),
            ("pro".to_string(), pro),
        ]))
    }
}

impl Plans {
    /// Plans from `TOWNES_PLANS`: JSON, or `@path` naming a JSON file.
    pub fn from_setting(setting: &str) -> Result<Self, String> {
        match setting.strip_prefix('@') {
            Some(path) => {
                let json = std::fs::read_to_string(path).map_err(|e| {
                    format!("cannot read the plans file {path} (TOWNES_PLANS=@{path}): {e}")
                })?;
                Self::from_json(&json).map_err(|e| format!("{path}: {e}"))
            }
            None => Self::from_json(setting),
        }
    }

    pub fn from_json(json: &str) -> Result<Self, String> {
        let plans: BTreeMap<String, Plan> = serde_json::from_str(json)
            .map_err(|e| format!("TOWNES_PLANS is not valid plan JSON: {e}"))?;
        if !plans.contains_key(FREE_PLAN) {
            return Err(
                "TOWNES_PLANS must define a `free` plan: it is the default for new guilds".into(),
            );
        }
        let mut prices = std::collections::BTreeSet::new();
        for (name, plan) in &plans {
            if let Some(price) = &plan.stripe_price
                && !prices.insert(price)
            {
                return Err(format!(
                    "TOWNES_PLANS: plan `{name}` has the Stripe price {price} of another plan; each price names one plan"
                ));
            }
        }
        Ok(Plans(plans))
    }

    pub fn single(limits: Limits) -> Self {
        Plans(BTreeMap::from([(FREE_PLAN.to_string(), Plan::new(limits))]))
    }

    pub fn get(&self, plan: &str) -> &Plan {
        self.0
            .get(plan)
            .or_else(|| self.0.get(FREE_PLAN))
            .expect("plans always define `free`")
    }

    /// Whether the operator defined `plan` (unknown names run as `free`).
    pub fn defines(&self, plan: &str) -> bool {
        self.0.contains_key(plan)
    }

    /// The plan a Stripe price bills, if any.
    pub fn by_price(&self, price: &str) -> Option<(&str, &Plan)> {
        self.0
            .iter()
            .find(|(_, plan)| plan.stripe_price.as_deref() == Some(price))
            .map(|(name, plan)| (name.as_str(), plan))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Plan)> {
        self.0.iter().map(|(name, plan)| (name.as_str(), plan))
    }

    /// The largest memory any plan allows: the pooling allocator's slot size.
    pub fn max_memory_bytes(&self) -> usize {
        self.0
            .values()
            .map(|plan| plan.limits.memory_bytes())
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_fill_missing_fields_with_defaults_and_fall_back_to_free() {
        let plans =
            Plans::from_json(r#"{"free": {"cpu_ms": 10}, "big": {"memory_mib": 128}}"#).unwrap();
        assert_eq!(plans.get("free").limits.cpu_ms, 10);
        assert_eq!(plans.get("free").limits.memory_mib, 16);
        assert_eq!(plans.get("nonexistent").limits.cpu_ms, 10);
        assert_eq!(plans.max_memory_bytes(), 128 << 20);
        assert!(
            Plans::from_json(r#"{"pro": {}}"#)
                .unwrap_err()
                .contains("`free`")
        );
    }

    #[test]
    fn a_plan_names_its_price_features_and_caps_and_each_price_one_plan() {
        let plans = Plans::from_json(
            r#"{"free": {"features": ["welcome"]},
                "base": {"cpu_ms": 80, "stripe_price": "price_b", "ai_tokens_per_day": 9, "guilds": 3}}"#,
        )
        .unwrap();
        let (name, base) = plans.by_price("price_b").unwrap();
        assert_eq!(
            (name, base.limits.cpu_ms, base.guilds),
            ("base", 80, Some(3))
        );
        assert_eq!(base.ai_tokens_per_day, Some(9));
        assert!(base.allows_feature("tickets"));
        assert!(plans.get("free").allows_feature("welcome"));
        assert!(!plans.get("free").allows_feature("tickets"));
        let twice = Plans::from_json(
            r#"{"free": {}, "a": {"stripe_price": "p"}, "b": {"stripe_price": "p"}}"#,
        );
        assert!(twice.unwrap_err().contains("each price names one plan"));
        let missing = Plans::from_setting("@/nonexistent/plans.json").unwrap_err();
        assert!(missing.contains("cannot read the plans file"), "{missing}");
    }
}
