//! Resource limits per plan: what one invocation of a feature may use.
//!
//! A plan names a set of limits; a guild is on one plan. The defaults are the
//! `free` plan. Limits are plain data so an operator can load them from a file
//! (`TOWNES_PLANS`, JSON: `{"free": {...}, "pro": {...}}`).

use crate::grants::CapabilitySet;
use crate::store::Quota;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Linear memory per instance; growing past it traps.
    pub memory_mib: u32,
    /// Guest CPU time per invocation, in milliseconds (measured in 1 ms epoch ticks).
    pub cpu_ms: u32,
    /// Wall-clock time per invocation in milliseconds: host calls included, waits on
    /// Discord excluded (the Discord executor bounds those).
    pub wall_ms: u32,
    /// Capability calls per invocation ("host-call fuel").
    pub host_calls: u32,
    /// Storage per (guild, feature).
    pub storage_bytes: u64,
    pub storage_rows: u64,
    /// Capabilities the plan allows at all.
    pub capabilities: CapabilitySet,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 16,
            cpu_ms: 50,
            wall_ms: 2_000,
            host_calls: 1_000,
            storage_bytes: 1 << 20,
            storage_rows: 10_000,
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

    pub fn quota(&self) -> Quota {
        Quota {
            max_bytes: self.storage_bytes,
            max_rows: self.storage_rows,
        }
    }
}

/// Limits by plan name. Unknown plans get the `free` limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plans(BTreeMap<String, Limits>);

impl Default for Plans {
    fn default() -> Self {
        let pro = Limits {
            memory_mib: 64,
            cpu_ms: 200,
            wall_ms: 5_000,
            host_calls: 5_000,
            storage_bytes: 64 << 20,
            storage_rows: 500_000,
            ..Limits::default()
        };
        Plans(BTreeMap::from([
            ("free".to_string(), Limits::default()),
            ("pro".to_string(), pro),
        ]))
    }
}

impl Plans {
    pub fn from_json(json: &str) -> Result<Self, String> {
        let plans: BTreeMap<String, Limits> = serde_json::from_str(json)
            .map_err(|e| format!("TOWNES_PLANS is not valid plan JSON: {e}"))?;
        if !plans.contains_key("free") {
            return Err(
                "TOWNES_PLANS must define a `free` plan: it is the default for new guilds".into(),
            );
        }
        Ok(Plans(plans))
    }

    pub fn single(limits: Limits) -> Self {
        Plans(BTreeMap::from([("free".to_string(), limits)]))
    }

    pub fn get(&self, plan: &str) -> &Limits {
        self.0
            .get(plan)
            .or_else(|| self.0.get("free"))
            .expect("plans always define `free`")
    }

    /// The largest memory any plan allows: the pooling allocator's slot size.
    pub fn max_memory_bytes(&self) -> usize {
        self.0.values().map(Limits::memory_bytes).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_fill_missing_fields_with_defaults_and_fall_back_to_free() {
        let plans =
            Plans::from_json(r#"{"free": {"cpu_ms": 10}, "big": {"memory_mib": 128}}"#).unwrap();
        assert_eq!(plans.get("free").cpu_ms, 10);
        assert_eq!(plans.get("free").memory_mib, 16);
        assert_eq!(plans.get("nonexistent").cpu_ms, 10);
        assert_eq!(plans.max_memory_bytes(), 128 << 20);
        assert!(
            Plans::from_json(r#"{"pro": {}}"#)
                .unwrap_err()
                .contains("`free`")
        );
    }
}
