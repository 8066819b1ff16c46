//! The one wasmtime `Engine` and its epoch ticker.

use super::structure::StructureCaps;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The epoch advances once per tick; a feature's CPU budget is counted in ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// How instances get their memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Pre-reserved slots, reused with copy-on-write: microsecond instantiation.
    Pooling,
    /// mmap per instance, when the address space for the pool cannot be reserved.
    OnDemand,
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    // Concurrent component calls are not used, and turning them off makes each
    // call about 3× cheaper (DESIGN.md, "Verified with wasmtime 48").
    config.concurrency_support(false);
    config
}

/// Builds the engine with the pooling allocator sized for `max_memory_bytes`
/// per instance, or falls back to on-demand allocation when the pool cannot be
/// reserved (small address spaces, strict overcommit settings).
pub fn build_engine(
    max_memory_bytes: usize,
    pool_instances: u32,
    caps: &StructureCaps,
) -> anyhow::Result<(Engine, Allocation)> {
    let mut pool = PoolingAllocationConfig::new();
    // The same caps the install check and each store's limiter apply, so no
    // instance can take more of the pool than that.
    pool.max_core_instances_per_component(caps.core_instances)
        .max_memories_per_component(caps.memories)
        .max_tables_per_component(caps.tables)
        .max_memories_per_module(caps.memories)
        .max_tables_per_module(caps.tables);
    pool.total_component_instances(pool_instances)
        .total_core_instances(pool_instances * 4)
        .total_memories(pool_instances * 2)
        .total_tables(pool_instances * 2)
        .total_stacks(pool_instances)
        .max_memory_size(max_memory_bytes)
        // Without these, freeing slots dominates and two workers are slower than one.
        .decommit_batch_size(64)
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&config) {
        Ok(engine) => Ok((engine, Allocation::Pooling)),
        Err(error) => {
            tracing::warn!(%error, "the pooling allocator could not reserve its slots; using on-demand allocation");
            Ok((Engine::new(&base_config())?, Allocation::OnDemand))
        }
    }
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("townes-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch ticker thread");
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_when_the_slots_fit_and_falls_back_when_they_cannot_be_reserved() {
        let caps = StructureCaps::default();
        let (_, allocation) = build_engine(16 << 20, 8, &caps).unwrap();
        assert_eq!(allocation, Allocation::Pooling);
        // A million slots of 1 TiB each cannot be reserved in a 47-bit address space.
        let (_, allocation) = build_engine(1 << 40, 1_000_000, &caps).unwrap();
        assert_eq!(allocation, Allocation::OnDemand);
    }
}
