//! The memory budget of one invocation: every linear memory and table the
//! instance creates or grows, counted together against the plan's limit.
//!
//! wasmtime's `StoreLimits` caps each memory on its own, so a component with
//! eight core instances could hold eight times its plan. Here the first byte
//! past the total traps (or fails instantiation) with [`MemoryLimitExceeded`],
//! and the count of instances, memories and tables per store is capped too.

use super::structure::StructureCaps;
use wasmtime::ResourceLimiter;

/// Bytes charged per table element: a function reference slot.
const TABLE_ELEMENT_BYTES: usize = 8;

/// The error a memory or table growth past the budget raises; the runtime
/// recognises it to report a memory-limit trap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded: growing to {wanted} bytes in all; the plan allows {limit}")]
pub struct MemoryLimitExceeded {
    pub wanted: usize,
    pub limit: usize,
}

pub(crate) struct MemoryBudget {
    limit: usize,
    used: usize,
    /// The most ever held at once (for the invocation's record and tests).
    peak: usize,
    caps: StructureCaps,
}

impl MemoryBudget {
    pub(crate) fn new(limit: usize, caps: StructureCaps) -> Self {
        MemoryBudget {
            limit,
            used: 0,
            peak: 0,
            caps,
        }
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak
    }

    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let wanted = self.used.saturating_add(desired.saturating_sub(current));
        if wanted > self.limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                wanted,
                limit: self.limit,
            }));
        }
        self.used = wanted;
        self.peak = self.peak.max(wanted);
        Ok(true)
    }
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        )
    }

    fn instances(&self) -> usize {
        self.caps.core_instances as usize
    }

    fn memories(&self) -> usize {
        self.caps.memories as usize
    }

    fn tables(&self) -> usize {
        self.caps.tables as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_counted_across_memories_and_tables() {
        let mut budget = MemoryBudget::new(1000, StructureCaps::default());
        assert!(budget.memory_growing(0, 600, None).unwrap());
        // A second memory: its own size is small, the total is not.
        let error = budget.memory_growing(0, 500, None).unwrap_err();
        assert!(error.downcast_ref::<MemoryLimitExceeded>().is_some());
        assert!(budget.table_growing(0, 50, None).unwrap());
        assert_eq!(budget.peak(), 1000);
        assert!(budget.memory_growing(600, 601, None).is_err());
    }
}
