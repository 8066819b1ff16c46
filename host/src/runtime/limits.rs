//! Resource limits per plan: what one invocation of a feature may use.
//!
//! A plan names a set of limits; a guild is on one plan. The defaults are the
//! `free` plan. Limits are plain data so an operator can load them from a file
//! (`TOWNES_PLANS`, JSON: `{"free": {...}, "pro": {...}}`).

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

/// Limits by plan name. Unknown plans get the `free` limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plans(BTreeMap<String, Limits>);

impl Default for Plans {
    fn default() -> Self {
        let pro = Limits {
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
