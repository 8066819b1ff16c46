//! Attacks on the sandbox's limits by components that follow the contract, each
//! asserting its specific outcome and that the host's own memory and CPU stay
//! bounded while other guilds keep working.
//!
//! This is its own test binary, and its tests take [`MEASURING`] in turn, so the
//! process's resident memory and CPU time measure one attack at a time.

mod common;

use common::harness::*;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use townes::capabilities::Effect;
use townes::runtime::{
    InstallError, InvokeError, Limits, Plans, StructureCaps, TrapKind, structure,
};
use townes::wit::Capability;

static MEASURING: Mutex<()> = Mutex::const_new(());

const MIB: u64 = 1 << 20;

/// The process's resident memory now and at its peak since the last reset.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .unwrap_or_else(|| panic!("{name} missing from /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Peak resident memory the process gained while `work` ran.
async fn peak_growth<T>(work: impl Future<Output = T>) -> (T, u64) {
    // Writing 5 resets the peak (VmHWM) to the current resident size.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let (before, _) = rss();
    let out = work.await;
    let (_, peak) = rss();
    (out, peak.saturating_sub(before))
}

/// CPU time the whole process has used (user + system).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[tokio::test]
async fn the_structure_caps_admit_every_feature_we_build_and_componentize_py() {
    let _one = MEASURING.lock().await;
    let caps = StructureCaps::default();
    let mut names: Vec<String> = ["hello", "welcome", "xp", "hostile", "panel"]
        .map(common::component_path)
        .into();
    let python = format!("{}/python/python_counter.wasm", common::target_dir());
    if std::path::Path::new(&python).exists() || common::in_ci() {
        names.push(python);
    } else {
        eprintln!("skipping the componentize-py structure: {python} is not built");
    }
    for path in names {
        let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let shape = structure::measure(&wasm).unwrap();
        println!("{path}: {shape:?}");
        assert!(shape.memories >= 1 && shape.core_instances >= 1, "{path}");
        caps.check(&shape)
            .unwrap_or_else(|e| panic!("{path} does not fit: {e}"));
    }
}

/// `base` with `extra` more core instances, each of a module whose start
/// function touches every page of its own `mib`-MiB memory.
fn with_extra_memories(base: &[u8], extra: u32, mib: u32) -> Vec<u8> {
    use wasm_encoder::{
        BlockType, CodeSection, Function, FunctionSection, Instruction, MemArg, MemorySection,
        MemoryType, Module, StartSection, TypeSection, ValType,
    };
    let bytes = i32::try_from(mib as u64 * MIB).unwrap();
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], []);
    module.section(&types);
    let mut functions = FunctionSection::new();
    functions.function(0);
    module.section(&functions);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: u64::from(mib) * 16,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    module.section(&memories);
    module.section(&StartSection { function_index: 0 });
    let mut touch = Function::new([(1, ValType::I32)]);
    let store = MemArg {
        offset: 0,
        align: 0,
        memory_index: 0,
    };
    for instruction in [
        Instruction::Loop(BlockType::Empty),
        Instruction::LocalGet(0),
        Instruction::I32Const(1),
        Instruction::I32Store8(store),
        Instruction::LocalGet(0),
        Instruction::I32Const(4096),
        Instruction::I32Add,
        Instruction::LocalTee(0),
        Instruction::I32Const(bytes),
        Instruction::I32LtU,
        Instruction::BrIf(0),
        Instruction::End,
        Instruction::End,
    ] {
        touch.instruction(&instruction);
    }
    let mut code = CodeSection::new();
    code.function(&touch);
    module.section(&code);

    // Core modules already in the root component's index space.
    let mut depth = 0;
    let mut modules = 0;
    for payload in wasmparser::Parser::new(0).parse_all(base) {
        match payload.unwrap() {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            wasmparser::Payload::ModuleSection { .. } if depth == 1 => modules += 1,
            _ => {}
        }
    }
    let mut appended = wasm_encoder::Component::new();
    appended.section(&wasm_encoder::ModuleSection(&module));
    let mut instances = wasm_encoder::InstanceSection::new();
    for _ in 0..extra {
        instances.instantiate(modules, Vec::<(&str, wasm_encoder::ModuleArg)>::new());
    }
    appended.section(&instances);
    // Sections may follow each other in any order: append after the preamble.
    let mut wasm = base.to_vec();
    wasm.extend_from_slice(&appended.finish()[8..]);
    wasm
}

#[tokio::test]
async fn extra_core_instances_are_refused_at_install_and_never_exceed_the_memory_total() {
    let _one = MEASURING.lock().await;
    let hello = common::component("hello");
    let attack = with_extra_memories(&hello, 8, 15);
    let shape = structure::measure(&attack).unwrap();
    assert_eq!(
        shape.memories,
        structure::measure(&hello).unwrap().memories + 8
    );

    // Refused at install, naming what is too big.
    let (h, _guard) = Harness::sqlite(limits()).await;
    match h.runtime.install(&attack).await {
        Err(InstallError::TooComplex(why)) => {
            assert!(why.contains("linear memories"), "{why}")
        }
        other => panic!("installed: {other:?}"),
    }

    // With caps an operator raised, the total still holds: a plan of 16 MiB
    // cannot start the 120 MiB the extra instances ask for, and the host's
    // memory does not grow by it. A roomier plan installs and runs it.
    let (_, store, _guard) = common::sqlite().await;
    let small = Limits {
        memory_mib: 16,
        ..limits()
    };
    // Touching 120 MiB takes a while in a debug build.
    let roomy = Limits {
        memory_mib: 256,
        cpu_ms: 5_000,
        wall_ms: 20_000,
        ..limits()
    };
    let h = Harness::with_config(store, roomy.clone(), |config| {
        config.structure = StructureCaps {
            core_instances: 64,
            memories: 16,
            ..StructureCaps::default()
        };
        config.plans =
            Plans::from_json(&serde_json::json!({ "free": roomy, "small": small }).to_string())
                .unwrap();
    })
    .await;
    let (version, _) = h.runtime.install(&attack).await.unwrap();
    h.enable(
        &version.feature_id,
        &[Capability::Messages, Capability::Storage],
    )
    .await;
    // Moved to the small plan after enabling: enabling runs `migrate`, which
    // the small plan would refuse to start.
    let mut guild = h.store.guild(GUILD_A).await.unwrap().unwrap();
    guild.plan = "small".into();
    h.store.upsert_guild(&guild).await.unwrap();
    let (outcome, growth) = peak_growth(h.command(GUILD_A, "hello", "hello", vec![])).await;
    assert_eq!(trap_kind(&outcome), TrapKind::MemoryLimit, "{outcome:?}");
    assert!(
        growth < 48 * MIB,
        "the host grew by {} MiB for a 16 MiB plan",
        growth / MIB
    );
    let other = h.command(GUILD_B, "hello", "hello", vec![]).await;
    assert!(reply_text(&other).contains("ada"), "{other:?}");
}

#[tokio::test]
async fn wasi_random_is_bounded_and_a_random_loop_spends_only_its_cpu_budget() {
    let _one = MEASURING.lock().await;
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;

    let outcome = h.command(GUILD_A, &hostile, "random-big", vec![]).await;
    match &outcome.result {
        Err(InvokeError::Trap { message, .. }) => {
            assert!(message.contains("exceeds limit"), "{message}")
        }
        other => panic!("8 MiB of random bytes: {other:?}"),
    }

    let cpu_before = process_cpu();
    let started = Instant::now();
    let outcome = h.command(GUILD_A, &hostile, "random-loop", vec![]).await;
    let (elapsed, cpu) = (started.elapsed(), process_cpu() - cpu_before);
    assert_eq!(trap_kind(&outcome), TrapKind::CpuLimit, "{outcome:?}");
    // The budget is 50 ms of CPU; the wall clock (2 s) never had to step in.
    assert!(elapsed < Duration::from_millis(1_000), "{elapsed:?}");
    assert!(cpu < Duration::from_millis(500), "the host spent {cpu:?}");
    assert_eq!(
        reply_text(&h.command(GUILD_B, &hostile, "ok", vec![]).await),
        "ok"
    );
}

#[tokio::test]
async fn huge_log_lines_cost_cpu_and_keep_host_memory_bounded() {
    let _one = MEASURING.lock().await;
    // Copying 12 MiB arguments out of the guest is the host's CPU spent on the
    // feature's behalf: a guest that does nothing but log them ends at its CPU
    // budget, not at the wall clock (as it did when only guest code counted).
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let outcome = h.command(GUILD_A, &hostile, "log-forever", vec![]).await;
    assert_eq!(trap_kind(&outcome), TrapKind::CpuLimit, "{outcome:?}");
    assert!(outcome.elapsed < limits().wall(), "{:?}", outcome.elapsed);

    // With the CPU to finish, the host still keeps only what it logs.
    let (h, _guard) = Harness::sqlite(Limits {
        cpu_ms: 10_000,
        wall_ms: 20_000,
        ..limits()
    })
    .await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let (outcome, growth) = peak_growth(h.command(GUILD_A, &hostile, "log-flood", vec![])).await;
    assert_eq!(reply_text(&outcome), "log-flood: done");
    assert!(outcome.logs.len() <= 46);
    assert!(outcome.logs.iter().all(|line| line.len() <= 1024));
    // 46 lines of 12 MiB: the guest's 16 MiB plus one argument in flight at a
    // time, not 550 MiB of kept arguments.
    assert!(growth < 64 * MIB, "the host grew by {} MiB", growth / MIB);
}

#[tokio::test]
async fn calls_after_the_fuel_is_spent_are_refused_without_growing_the_record() {
    let _one = MEASURING.lock().await;
    let (h, _guard) = Harness::sqlite(Limits {
        cpu_ms: 5_000,
        wall_ms: 10_000,
        ..limits()
    })
    .await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let outcome = h.command(GUILD_A, &hostile, "calls-flood", vec![]).await;
    assert_eq!(reply_text(&outcome), "calls-flood: 1000 ok");
    let refused = outcome
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::Refused { .. }))
        .count();
    assert!(
        outcome.effects.len() <= 1_000 + 16 && refused >= 1,
        "{} effects, {refused} refusals",
        outcome.effects.len()
    );
}

#[tokio::test]
async fn wasi_handles_are_bounded() {
    let _one = MEASURING.lock().await;
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let (outcome, growth) = peak_growth(h.command(GUILD_A, &hostile, "handles", vec![])).await;
    match &outcome.result {
        Err(InvokeError::Trap { kind, message }) => {
            assert_eq!(*kind, TrapKind::Other, "{message}");
        }
        other => panic!("opened handles without end: {other:?}"),
    }
    assert!(growth < 32 * MIB, "the host grew by {} MiB", growth / MIB);
    assert_eq!(
        reply_text(&h.command(GUILD_B, &hostile, "ok", vec![]).await),
        "ok"
    );
}

#[tokio::test]
async fn audit_entries_are_limited_per_guild_and_feature_per_hour() {
    let _one = MEASURING.lock().await;
    let (h, _guard) = Harness::sqlite(Limits {
        audit_per_hour: 25,
        ..limits()
    })
    .await;
    let caps = [Capability::Messages, Capability::Storage, Capability::Audit];
    let hostile = h.install("hostile", &caps).await;
    let first = h.command(GUILD_A, &hostile, "audit-flood", vec![]).await;
    assert!(
        reply_text(&first).starts_with("audit-flood: 25 then QuotaExceeded(\"audit entries"),
        "{first:?}"
    );
    let again = h.command(GUILD_A, &hostile, "audit-flood", vec![]).await;
    assert!(reply_text(&again).starts_with("audit-flood: 0 then"));
    let other_guild = h.command(GUILD_B, &hostile, "audit-flood", vec![]).await;
    assert!(reply_text(&other_guild).starts_with("audit-flood: 25 then"));
    let written = h.store.audit_entries(GUILD_A, 100).await.unwrap();
    assert_eq!(written.iter().filter(|e| e.action == "flood").count(), 25);
}

#[tokio::test]
async fn waits_on_discord_past_the_allowance_end_in_a_timeout() {
    let _one = MEASURING.lock().await;
    let (h, _guard) = Harness::sqlite(Limits {
        wall_ms: 300,
        discord_wait_ms: 200,
        ..limits()
    })
    .await;
    h.install("hostile", HOSTILE_CAPS).await;
    h.discord.set_latency(Duration::from_secs(5));
    let started = Instant::now();
    let outcome = h.echo(GUILD_A, "hi").await;
    let elapsed = started.elapsed();
    assert!(
        matches!(outcome.result, Err(InvokeError::Timeout(_))),
        "{:?}",
        outcome.result
    );
    // The allowance, then the wall budget: about 500 ms, not the 5 s wait.
    assert!(elapsed < Duration::from_millis(2_000), "{elapsed:?}");
}

#[tokio::test]
async fn a_guild_flooding_invocations_waits_on_its_own_share() {
    let _one = MEASURING.lock().await;
    let (h, _guard) = Harness::sqlite(Limits {
        concurrent_per_guild: 2,
        queued_per_guild: 4,
        discord_wait_ms: 10_000,
        ..limits()
    })
    .await;
    h.install("hostile", HOSTILE_CAPS).await;
    h.discord.set_latency(Duration::from_millis(700));
    let flood: Vec<_> = (0..12)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move { h.echo(GUILD_A, &format!("m{i}")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Guild B is not behind guild A's queue.
    let started = Instant::now();
    let ok = h.command(GUILD_B, "hostile", "ok", vec![]).await;
    assert_eq!(reply_text(&ok), "ok");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "guild B waited {:?}",
        started.elapsed()
    );
    let mut busy = 0;
    for task in flood {
        match task.await.unwrap().result {
            Ok(_) => {}
            Err(InvokeError::Busy(_)) => busy += 1,
            other => panic!("{other:?}"),
        }
    }
    // 4 fit in the queue (2 running, 2 waiting); the rest were turned away.
    assert_eq!(busy, 8);
    let row = h
        .store
        .guild_feature(GUILD_A, "hostile")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.breaker_strikes, 0,
        "turning work away is not the feature's fault"
    );
}
