//! The Prometheus metrics, fed by real events and commands through a real
//! runtime with real components, read back from the rendered exposition text.
//!
//! The registry is process-wide and the tests in this file run concurrently, so
//! each test owns its label values (its event kinds, its features) and asserts
//! on how much they changed.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use townes::discord::{Action, LocalDiscord, LocalGuild};
use townes::grants::Approval;
use townes::marketplace::{Marketplace, Publisher};
use townes::metrics::metrics;
use townes::platform::{Connection, connect};
use townes::runtime::{InvokeError, Outcome, Plans, Runtime, RuntimeConfig, TrapKind};
use townes::store::Guild;
use townes::wit::{CommandInvocation, CommandSource, Event, Message};
use townes_discord_sim::{SimConfig, Simulator};

const GUILD_A: u64 = 1000;
const GUILD_B: u64 = 2000;

/// The samples of an exposition text: `(name, labels) -> value`.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn samples() -> Samples {
    let text = metrics().render();
    let mut samples = Samples::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest
                    .strip_suffix('}')
                    .unwrap()
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap();
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        samples.insert((name.to_string(), labels), value);
    }
    samples
}

/// A sample's value, 0 when the series does not exist yet.
fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .get(&(name.to_string(), labels))
        .copied()
        .unwrap_or(0.0)
}

/// How much a series grew between two snapshots.
fn delta(before: &Samples, after: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(after, name, labels) - value(before, name, labels)
}

struct Harness {
    runtime: Runtime,
    discord: Arc<LocalDiscord>,
    _data: tempfile::TempDir,
    _guard: common::Guard,
}

impl Harness {
    /// Guild A on the `free` plan, guild B on `slow` (a wall clock shorter than
    /// its CPU budget, so a spinning guest times out).
    async fn new() -> Harness {
        let (_, store, guard) = common::sqlite().await;
        let discord = Arc::new(LocalDiscord::new());
        for (id, plan) in [(GUILD_A, "free"), (GUILD_B, "slow")] {
            let mut guild = LocalGuild::new(id, "g");
            guild.add_member(42, "ada", vec![]);
            discord.add_guild(guild);
            let row = Guild {
                plan: plan.into(),
                ..Guild::new(id, "g", 1)
            };
            store.upsert_guild(&row).await.unwrap();
        }
        let data = tempfile::tempdir().unwrap();
        let plans = Plans::from_json(
            // 300 ms of CPU: touching 16 MiB (page faults, zeroing) must reach the
            // memory limit first even on a loaded machine.
            r#"{"free": {"memory_mib": 16, "cpu_ms": 300, "wall_ms": 5000},
                "slow": {"memory_mib": 16, "cpu_ms": 60000, "wall_ms": 300}}"#,
        )
        .unwrap();
        let config = RuntimeConfig {
            plans,
            pool_instances: 16,
            bot_user_id: 1,
            ..RuntimeConfig::new(data.path())
        };
        let runtime = Runtime::new(config, store, discord.clone()).unwrap();
        Harness {
            runtime,
            discord,
            _data: data,
            _guard: guard,
        }
    }

    /// Installs a component and enables it in both guilds with all it asks for.
    async fn install(&self, name: &str) -> String {
        let market = Marketplace::new(&self.runtime, "test");
        let (version, manifest) = market
            .install(&common::component(name), &Publisher::Platform)
            .await
            .unwrap();
        for guild in [GUILD_A, GUILD_B] {
            market
                .enable(
                    guild,
                    &version.feature_id,
                    None,
                    Approval::everything_requested(&manifest.capabilities),
                )
                .await
                .unwrap();
        }
        version.feature_id
    }

    async fn command(&self, guild: u64, feature: &str, name: &str) -> Outcome {
        let invocation = CommandInvocation {
            source: CommandSource::Slash,
            name: name.into(),
            subcommand: None,
            arguments: vec![],
            invoker: self.discord.member_of(guild, 42).unwrap(),
            channel_id: guild + 1,
        };
        self.runtime.command(guild, feature, invocation, 0).await
    }
}

fn message(h: &Harness, id: u64) -> Event {
    Event::MessageCreated(Message {
        id,
        channel_id: GUILD_A + 1,
        author: h.discord.member_of(GUILD_A, 42).unwrap().user,
        content: String::new(),
        mentions: vec![],
        timestamp: "2026-11-23T00:00:00Z".into(),
    })
}

fn trap_kind(outcome: &Outcome) -> TrapKind {
    match &outcome.result {
        Err(InvokeError::Trap { kind, .. }) => *kind,
        other => panic!("expected a trap, got {other:?} ({})", outcome.stdio),
    }
}

/// Only this test dispatches events (`member_joined`, `message_created`) and
/// uses hello, welcome and xp.
#[tokio::test]
async fn each_event_is_counted_once_with_its_dispatch_time_and_each_invocation_by_outcome() {
    let h = Harness::new().await;
    for feature in ["hello", "welcome", "xp"] {
        h.install(feature).await;
    }
    let before = samples();

    // Two features (hello, welcome) subscribe to member joins: three events, six
    // invocations.
    for user in [50, 51, 52] {
        let member = h
            .discord
            .with_guild(GUILD_A, |g| g.add_member(user, "new", vec![]))
            .unwrap();
        let outcomes = h
            .runtime
            .dispatch_event(GUILD_A, &Event::MemberJoined(member))
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    }
    // One (xp) subscribes to messages.
    for id in 1..=4 {
        let outcomes = h
            .runtime
            .dispatch_event(GUILD_A, &message(&h, id))
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 1);
        assert!(outcomes[0].result.is_ok(), "{:?}", outcomes[0].result);
    }
    let after = samples();

    let d = |name: &str, labels: &[(&str, &str)]| delta(&before, &after, name, labels);
    let joined = [("kind", "member_joined")];
    let created = [("kind", "message_created")];
    assert_eq!(d("townes_events_total", &joined), 3.0);
    assert_eq!(d("townes_events_total", &created), 4.0);
    assert_eq!(d("townes_dispatch_duration_seconds_count", &joined), 3.0);
    assert_eq!(d("townes_dispatch_duration_seconds_count", &created), 4.0);
    assert!(d("townes_dispatch_duration_seconds_sum", &created) > 0.0);
    // Every event is below the largest bucket, and the buckets are cumulative.
    assert_eq!(
        d(
            "townes_dispatch_duration_seconds_bucket",
            &[("kind", "message_created"), ("le", "5")]
        ),
        4.0
    );
    assert_eq!(
        d(
            "townes_dispatch_duration_seconds_bucket",
            &[("kind", "message_created"), ("le", "+Inf")]
        ),
        4.0
    );
    assert_eq!(
        d(
            "townes_feature_invocations_total",
            &[("feature", "xp"), ("outcome", "ok")]
        ),
        4.0
    );
    for feature in ["hello", "welcome"] {
        let all: f64 = ["ok", "error", "trap", "timeout"]
            .iter()
            .map(|o| {
                d(
                    "townes_feature_invocations_total",
                    &[("feature", feature), ("outcome", o)],
                )
            })
            .sum();
        assert_eq!(all, 3.0, "{feature}");
    }
    assert_eq!(d("townes_feature_traps_total", &[("feature", "xp")]), 0.0);
}

/// Only this test uses the hostile guest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_timeouts_and_an_open_breaker_are_counted_by_outcome() {
    let h = Harness::new().await;
    let hostile = h.install("hostile").await;
    let before = samples();

    // Guild A: three faults of three kinds, which open the breaker (threshold 3).
    assert_eq!(
        trap_kind(&h.command(GUILD_A, &hostile, "panic").await),
        TrapKind::Panic
    );
    assert_eq!(
        trap_kind(&h.command(GUILD_A, &hostile, "loop").await),
        TrapKind::CpuLimit
    );
    assert_eq!(
        trap_kind(&h.command(GUILD_A, &hostile, "alloc").await),
        TrapKind::MemoryLimit
    );
    let paused = h.command(GUILD_A, &hostile, "ok").await;
    assert!(
        matches!(paused.result, Err(InvokeError::BreakerOpen { .. })),
        "{:?}",
        paused.result
    );
    // Guild B: its wall clock runs out before its CPU budget.
    let slow = h.command(GUILD_B, &hostile, "loop").await;
    assert!(
        matches!(slow.result, Err(InvokeError::Timeout(_))),
        "{:?}",
        slow.result
    );
    assert!(h.command(GUILD_B, &hostile, "ok").await.result.is_ok());
    let after = samples();

    let d = |name: &str, labels: &[(&str, &str)]| delta(&before, &after, name, labels);
    let invocations = |outcome: &str| {
        d(
            "townes_feature_invocations_total",
            &[("feature", "hostile"), ("outcome", outcome)],
        )
    };
    assert_eq!(invocations("trap"), 1.0);
    assert_eq!(invocations("cpu_exhausted"), 1.0);
    assert_eq!(invocations("memory"), 1.0);
    assert_eq!(invocations("breaker_open"), 1.0);
    assert_eq!(invocations("timeout"), 1.0);
    assert_eq!(invocations("ok"), 1.0);
    assert_eq!(invocations("error"), 0.0);
    assert_eq!(
        d("townes_feature_traps_total", &[("feature", "hostile")]),
        3.0
    );
    assert_eq!(
        d("townes_feature_timeouts_total", &[("feature", "hostile")]),
        1.0
    );
    let command = |name: &str| {
        d(
            "townes_commands_total",
            &[("feature", "hostile"), ("command", name)],
        )
    };
    assert_eq!(command("loop"), 2.0);
    assert_eq!(command("ok"), 2.0);
    assert_eq!(command("panic"), 1.0);
}

#[tokio::test]
async fn api_requests_are_counted_by_route_template_and_status() {
    let route = "/api/test-only/{id}";
    let before = samples();
    metrics().record_api_request("GET", route, 200, Duration::from_millis(4));
    metrics().record_api_request("GET", route, 200, Duration::from_millis(6));
    metrics().record_api_request("GET", route, 404, Duration::from_millis(1));
    let after = samples();
    let d = |name: &str, labels: &[(&str, &str)]| delta(&before, &after, name, labels);
    let labels = |status| [("method", "GET"), ("route", route), ("status", status)];
    assert_eq!(d("townes_api_requests_total", &labels("200")), 2.0);
    assert_eq!(d("townes_api_requests_total", &labels("404")), 1.0);
    let timing = [("method", "GET"), ("route", route)];
    assert_eq!(d("townes_api_request_duration_seconds_count", &timing), 3.0);
    let sum = d("townes_api_request_duration_seconds_sum", &timing);
    assert!((sum - 0.011).abs() < 1e-9, "{sum}");
}

/// Through the Discord simulator: once connected, a scrape's refresh reports
/// the shard's heartbeat latency, the shards connected, the executor's queue
/// depth, counters and latency, today's AI tokens and the process metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_platform_reports_shards_queue_ai_tokens_and_process() {
    let sim = Simulator::start(SimConfig {
        heartbeat_interval_ms: 100,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let (_, store, _guard) = common::sqlite().await;
    let guild = sim.create_guild("Metrics", sim.create_user("owner"));
    let today = chrono::Utc::now().date_naive();
    store
        .add_usage(guild.guild_id, today, 0, 0, 1_234)
        .await
        .unwrap();
    store
        .add_usage(guild.guild_id + 1, today, 0, 0, 66)
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let running = connect(
        store,
        RuntimeConfig::new(data.path()),
        Connection::new(sim.token(), Some(sim.base_url())),
    )
    .await
    .unwrap();
    assert!(
        sim.wait_for_ready(1, Duration::from_secs(10)).await,
        "the gateway never became ready"
    );
    let shard = [("shard", "0")];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let latency = loop {
        running.platform.refresh_metrics().await;
        let now = samples();
        if now.contains_key(&(
            "townes_shard_heartbeat_latency_seconds".to_string(),
            BTreeMap::from([("shard".to_string(), "0".to_string())]),
        )) {
            break value(&now, "townes_shard_heartbeat_latency_seconds", &shard);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat latency after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!((0.0..1.0).contains(&latency), "{latency}");
    // Nothing is waiting to go to Discord.
    let queued = samples();
    assert!(queued.contains_key(&("townes_discord_queue_depth".to_string(), BTreeMap::new())));
    assert_eq!(value(&queued, "townes_discord_queue_depth", &[]), 0.0);
    assert_eq!(value(&queued, "townes_shards_ready", &[]), 1.0);
    assert_eq!(value(&queued, "townes_ai_tokens_today", &[]), 1_300.0);
    assert!(value(&queued, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(queued.contains_key(&("process_cpu_seconds_total".to_string(), BTreeMap::new())));

    // A call through the executor is counted as completed, with its wait.
    let completed = [("result", "completed")];
    running
        .platform
        .executor
        .run(Action::SendMessage {
            guild_id: guild.guild_id,
            channel_id: guild.general_channel_id,
            body: serde_json::json!({ "content": "counted" }),
        })
        .await
        .unwrap();
    running.platform.refresh_metrics().await;
    let after = samples();
    assert!(delta(&queued, &after, "townes_discord_actions_total", &completed) >= 1.0);
    assert!(
        delta(
            &queued,
            &after,
            "townes_discord_queue_latency_seconds_count",
            &[]
        ) >= 1.0
    );
    running.shutdown(Duration::from_secs(5)).await.unwrap();
    sim.shutdown().await;
}
