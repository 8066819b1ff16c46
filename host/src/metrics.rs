//! Prometheus metrics for the host, served in the text exposition format by the
//! dashboard API's `/metrics` route.
//!
//! Counters and histograms are updated where things happen (the runtime, the
//! gateway, the API middleware); the gauges that mirror state elsewhere (the
//! executor's queue, the shards' heartbeat latency) are set by
//! [`Platform::refresh_metrics`](crate::platform::Platform::refresh_metrics) just
//! before each scrape.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `townes_events_total` | counter | `kind` |
//! | `townes_dispatch_duration_seconds` | histogram | `kind` |
//! | `townes_feature_invocations_total` | counter | `feature`, `outcome` |
//! | `townes_feature_traps_total` | counter | `feature` |
//! | `townes_feature_timeouts_total` | counter | `feature` |
//! | `townes_commands_total` | counter | `feature`, `command` |
//! | `townes_gateway_unknown_dispatches_total` | counter | |
//! | `townes_gateway_relayed_total` | counter | `shard` |
//! | `townes_event_stream_dead_letters_total` | counter | |
//! | `townes_discord_queue_depth` | gauge | |
//! | `townes_discord_queue_latency_seconds` | histogram | |
//! | `townes_discord_actions_total` | counter | `result` |
//! | `townes_shards_ready` | gauge | |
//! | `townes_ai_tokens_today` | gauge | |
//! | `townes_discord_invalid_requests_total` | counter | `feature`, `status` |
//! | `townes_discord_refused_total` | counter | `feature`, `reason` |
//! | `townes_cache_lookups_total` | counter | `cache`, `result` |
//! | `townes_shared_limit_fallbacks_total` | counter | `limit` |
//! | `townes_storage_batch_writes` | histogram | |
//! | `townes_shard_heartbeat_latency_seconds` | gauge | `shard` |
//! | `townes_api_requests_total` | counter | `method`, `route`, `status` |
//! | `townes_api_request_duration_seconds` | histogram | `method`, `route` |
//!
//! The standard `process_*` metrics (CPU seconds, resident and virtual memory,
//! open file descriptors, threads, start time) come from `/proc/self` on Linux.
//!
//! Every label value comes from a bounded set (event kinds, installed feature
//! ids or `host`, their declared commands, API route templates, shard ids, the
//! statuses 401/403/429, the governor's refusal reasons, cache and limit names), never from
//! user input, so the number of series stays bounded.

use crate::wit::EventKind;
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::collections::BTreeSet;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`]'s output (exposition format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Buckets for event dispatch: 50 µs (no feature interested) to 5 s (several
/// features each near their wall-clock budget).
const DISPATCH_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// Buckets for API requests: 1 ms to 10 s.
const API_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for writes per storage commit: 1 (no concurrency) to 256 (a full batch).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Buckets for the time a Discord call waits in the executor, from acceptance
/// to Discord's final answer: 5 ms (sent at once) to 5 minutes (rate limited,
/// retried, or waiting for the process to come back).
const QUEUE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// How an invocation ended, as the `outcome` label of
/// `townes_feature_invocations_total`.
pub mod outcome {
    pub const OK: &str = "ok";
    /// A trap other than the two budgets below: a panic, a stack overflow, an
    /// out-of-bounds access.
    pub const TRAP: &str = "trap";
    /// The wall-clock budget ran out.
    pub const TIMEOUT: &str = "timeout";
    /// The CPU budget ran out.
    pub const CPU_EXHAUSTED: &str = "cpu_exhausted";
    /// Memory grew past the limit.
    pub const MEMORY: &str = "memory";
    /// The circuit breaker had paused the feature in that guild.
    pub const BREAKER_OPEN: &str = "breaker_open";
    /// The handler returned an error value, its reply was rejected, or the host
    /// failed around the call.
    pub const ERROR: &str = "error";
    /// The host had no room for it (a full pool, a guild over its share).
    pub const BUSY: &str = "busy";
}

/// The host's metrics: one registry, and a handle on each metric in it.
pub struct Metrics {
    registry: Registry,
    events: IntCounterVec,
    dispatch_duration: HistogramVec,
    invocations: IntCounterVec,
    traps: IntCounterVec,
    timeouts: IntCounterVec,
    commands: IntCounterVec,
    unknown_dispatches: IntCounter,
    relayed: IntCounterVec,
    event_dead_letters: IntCounter,
    queue_depth: IntGauge,
    queue_latency: Histogram,
    /// The executor's counters since it started, mirrored at each scrape.
    discord_actions: IntCounterVec,
    shards_ready: IntGauge,
    ai_tokens_today: IntGauge,
    discord_invalid: IntCounterVec,
    discord_refused: IntCounterVec,
    cache_lookups: IntCounterVec,
    shared_limit_fallbacks: IntCounterVec,
    storage_batch_writes: Histogram,
    shard_latency: GaugeVec,
    /// The shards that currently have a latency series, so a shard that went
    /// away can have its series removed.
    shards: Mutex<BTreeSet<u32>>,
    api_requests: IntCounterVec,
    api_duration: HistogramVec,
}

/// The process's metrics.
///
/// Global rather than passed around: the instrumentation points sit deep in the
/// runtime, the gateway handler and the API middleware, and Prometheus expects
/// exactly one registry per process (two would report the same series twice).
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        fn counter_vec(
            registry: &Registry,
            name: &str,
            help: &str,
            labels: &[&str],
        ) -> IntCounterVec {
            let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("metric registered once");
            metric
        }
        fn histogram_vec(
            registry: &Registry,
            name: &str,
            help: &str,
            buckets: &[f64],
            labels: &[&str],
        ) -> HistogramVec {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            let metric = HistogramVec::new(opts, labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("metric registered once");
            metric
        }
        let unknown_dispatches = IntCounter::new(
            "townes_gateway_unknown_dispatches_total",
            "Gateway dispatches serenity could not parse.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(unknown_dispatches.clone()))
            .expect("metric registered once");
        let event_dead_letters = IntCounter::new(
            "townes_event_stream_dead_letters_total",
            "Relayed dispatches no worker could finish, moved to the dead-letter stream.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(event_dead_letters.clone()))
            .expect("metric registered once");
        let queue_depth = IntGauge::new(
            "townes_discord_queue_depth",
            "Discord calls waiting in the executor's queue.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(queue_depth.clone()))
            .expect("metric registered once");
        let shard_latency = GaugeVec::new(
            Opts::new(
                "townes_shard_heartbeat_latency_seconds",
                "Time between a gateway heartbeat and its acknowledgement, per shard.",
            ),
            &["shard"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(shard_latency.clone()))
            .expect("metric registered once");
        let storage_batch_writes = Histogram::with_opts(
            HistogramOpts::new(
                "townes_storage_batch_writes",
                "Feature-storage writes per committed transaction (writes of concurrent \
                 callers are committed together).",
            )
            .buckets(BATCH_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        registry
            .register(Box::new(storage_batch_writes.clone()))
            .expect("metric registered once");
        let queue_latency = Histogram::with_opts(
            HistogramOpts::new(
                "townes_discord_queue_latency_seconds",
                "Time from a Discord call's acceptance by the executor to Discord's final \
                 answer (or its dead letter).",
            )
            .buckets(QUEUE_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let shards_ready = IntGauge::new(
            "townes_shards_ready",
            "Gateway shards of this process connected to Discord.",
        )
        .expect("valid metric");
        let ai_tokens_today = IntGauge::new(
            "townes_ai_tokens_today",
            "AI tokens used by every guild today (UTC), as counted in the usage table.",
        )
        .expect("valid metric");
        for metric in [
            Box::new(queue_latency.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(shards_ready.clone()),
            Box::new(ai_tokens_today.clone()),
        ] {
            registry.register(metric).expect("metric registered once");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("metric registered once");
        Metrics {
            events: counter_vec(
                &registry,
                "townes_events_total",
                "Gateway events dispatched to the features of a guild, by event kind.",
                &["kind"],
            ),
            dispatch_duration: histogram_vec(
                &registry,
                "townes_dispatch_duration_seconds",
                "Wall time to dispatch one event to every interested feature of a guild.",
                DISPATCH_BUCKETS,
                &["kind"],
            ),
            invocations: counter_vec(
                &registry,
                "townes_feature_invocations_total",
                "Feature invocations (events, commands, components, jobs, migrations) by outcome.",
                &["feature", "outcome"],
            ),
            traps: counter_vec(
                &registry,
                "townes_feature_traps_total",
                "Feature invocations stopped by a trap (CPU or memory limit, panic, stack overflow, ...).",
                &["feature"],
            ),
            timeouts: counter_vec(
                &registry,
                "townes_feature_timeouts_total",
                "Feature invocations stopped at their wall-clock budget.",
                &["feature"],
            ),
            commands: counter_vec(
                &registry,
                "townes_commands_total",
                "Commands (slash or prefix) run, by feature and command name.",
                &["feature", "command"],
            ),
            unknown_dispatches,
            relayed: counter_vec(
                &registry,
                "townes_gateway_relayed_total",
                "Dispatches a gateway process kept in the event stream, by shard.",
                &["shard"],
            ),
            event_dead_letters,
            queue_depth,
            queue_latency,
            discord_actions: counter_vec(
                &registry,
                "townes_discord_actions_total",
                "Discord calls by how they ended (completed, failed, dead_lettered, \
                 cancelled) and the 429s and retries seen on the way (rate_limited, \
                 retried).",
                &["result"],
            ),
            shards_ready,
            ai_tokens_today,
            discord_invalid: counter_vec(
                &registry,
                "townes_discord_invalid_requests_total",
                "Discord answers that count toward its invalid-request ban (401, 403, 429 \
                 but shared-scope 429s), by the feature that made the call (or host).",
                &["feature", "status"],
            ),
            discord_refused: counter_vec(
                &registry,
                "townes_discord_refused_total",
                "Discord calls refused locally without asking Discord, by feature (or host) \
                 and reason (remembered_refusal, feature_budget, guild_budget, \
                 platform_budget, queue_quota).",
                &["feature", "reason"],
            ),
            cache_lookups: counter_vec(
                &registry,
                "townes_cache_lookups_total",
                "Lookups in the host's in-memory caches, by cache (rights) and result \
                 (hit, or miss: loaded from Discord or the database).",
                &["cache", "result"],
            ),
            shared_limit_fallbacks: counter_vec(
                &registry,
                "townes_shared_limit_fallbacks_total",
                "Checks of a limit shared through Redis decided by this process alone because \
                 Redis failed, by limit (cooldown, ip, caller, frames).",
                &["limit"],
            ),
            storage_batch_writes,
            shard_latency,
            shards: Mutex::new(BTreeSet::new()),
            api_requests: counter_vec(
                &registry,
                "townes_api_requests_total",
                "Dashboard API requests by method, route template and status.",
                &["method", "route", "status"],
            ),
            api_duration: histogram_vec(
                &registry,
                "townes_api_request_duration_seconds",
                "Dashboard API request duration by method and route template.",
                API_BUCKETS,
                &["method", "route"],
            ),
            registry,
        }
    }

    /// One event handled by the runtime: `kind` is the event kind's label
    /// ([`event_kind_label`]), `elapsed` the time to dispatch it to every
    /// interested feature of the guild.
    pub fn record_event(&self, kind: &str, elapsed: Duration) {
        self.events.with_label_values(&[kind]).inc();
        self.dispatch_duration
            .with_label_values(&[kind])
            .observe(elapsed.as_secs_f64());
    }

    /// One feature invocation that ended with `outcome` (see [`outcome`]); traps
    /// (any of `trap`, `cpu_exhausted`, `memory`) and timeouts are also counted
    /// in their own per-feature counters.
    pub fn record_invocation(&self, feature: &str, outcome: &str) {
        self.invocations
            .with_label_values(&[feature, outcome])
            .inc();
        match outcome {
            outcome::TRAP | outcome::CPU_EXHAUSTED | outcome::MEMORY => {
                self.traps.with_label_values(&[feature]).inc()
            }
            outcome::TIMEOUT => self.timeouts.with_label_values(&[feature]).inc(),
            _ => {}
        }
    }

    /// One command run by a feature (whatever its outcome).
    pub fn record_command(&self, feature: &str, command: &str) {
        self.commands.with_label_values(&[feature, command]).inc();
    }

    /// One gateway dispatch serenity could not parse.
    pub fn record_unknown_dispatch(&self) {
        self.unknown_dispatches.inc();
    }

    /// A dispatch a gateway process kept in the event stream.
    pub fn record_relayed(&self, shard: u32) {
        self.relayed.with_label_values(&[&shard.to_string()]).inc();
    }

    /// A relayed dispatch moved to the dead-letter stream.
    pub fn record_event_dead_letter(&self) {
        self.event_dead_letters.inc();
    }

    /// Discord calls waiting in the executor.
    pub fn set_queue_depth(&self, n: u64) {
        self.queue_depth.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// One Discord call settled `waited` after the executor accepted it.
    pub fn record_queue_latency(&self, waited: Duration) {
        self.queue_latency.observe(waited.as_secs_f64());
    }

    /// Mirrors the executor's counters (they live in the executor, which is
    /// lock-free on its hot path); a counter never goes back, so an executor
    /// restarted within the process only adds once it passes the old count.
    pub fn set_executor_stats(&self, stats: &crate::discord::ExecutorStats) {
        for (result, count) in [
            ("completed", stats.completed),
            ("failed", stats.failed),
            ("dead_lettered", stats.dead_lettered),
            ("cancelled", stats.cancelled),
            ("rate_limited", stats.rate_limited),
            ("retried", stats.retried),
        ] {
            let counter = self.discord_actions.with_label_values(&[result]);
            counter.inc_by(count.saturating_sub(counter.get()));
        }
    }

    /// How many of this process's shards are connected.
    pub fn set_shards_ready(&self, n: usize) {
        self.shards_ready.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The AI tokens every guild used today.
    pub fn set_ai_tokens_today(&self, n: u64) {
        self.ai_tokens_today
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A Discord answer that counts toward Discord's invalid-request limit.
    pub fn record_discord_invalid(&self, feature: &str, status: u16) {
        self.discord_invalid
            .with_label_values(&[feature, &status.to_string()])
            .inc();
    }

    /// A Discord call refused locally (see `discord::governor::reason`).
    pub fn record_discord_refused(&self, feature: &str, reason: &str) {
        self.discord_refused
            .with_label_values(&[feature, reason])
            .inc();
    }

    /// A lookup in cache `cache`: `hit` when it answered from memory.
    pub fn record_cache_lookup(&self, cache: &str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache_lookups.with_label_values(&[cache, result]).inc();
    }

    /// A shared limit (`cooldown`, `ip`, `caller`, `frames`) checked locally
    /// because Redis failed.
    pub fn record_shared_limit_fallback(&self, limit: &str) {
        self.shared_limit_fallbacks
            .with_label_values(&[limit])
            .inc();
    }

    /// One committed transaction of feature-storage writes, holding `writes`.
    pub fn record_storage_commit(&self, writes: usize) {
        self.storage_batch_writes.observe(writes as f64);
    }

    /// A shard's heartbeat latency; `None` (no heartbeat acknowledged yet)
    /// removes the shard's series rather than reporting a made-up value.
    pub fn set_shard_latency(&self, shard: u32, latency: Option<Duration>) {
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        self.set_shard_locked(&mut shards, shard, latency);
    }

    /// Every shard this process runs, with its latency: shards not listed (shut
    /// down, moved to another process) lose their series.
    pub fn set_shard_latencies(
        &self,
        latencies: impl IntoIterator<Item = (u32, Option<Duration>)>,
    ) {
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        let mut listed = BTreeSet::new();
        for (shard, latency) in latencies {
            listed.insert(shard);
            self.set_shard_locked(&mut shards, shard, latency);
        }
        let gone: Vec<u32> = shards.difference(&listed).copied().collect();
        for shard in gone {
            self.set_shard_locked(&mut shards, shard, None);
        }
    }

    fn set_shard_locked(&self, shards: &mut BTreeSet<u32>, shard: u32, latency: Option<Duration>) {
        let label = shard.to_string();
        match latency {
            Some(latency) => {
                self.shard_latency
                    .with_label_values(&[label.as_str()])
                    .set(latency.as_secs_f64());
                shards.insert(shard);
            }
            None => {
                if shards.remove(&shard) {
                    // Only fails when the series does not exist.
                    let _ = self.shard_latency.remove_label_values(&[label.as_str()]);
                }
            }
        }
    }

    /// One dashboard API request. `route` is the route template (axum's
    /// `MatchedPath`, e.g. `/api/guild/{guild_id}/settings`), never the raw path,
    /// so the number of series stays bounded.
    pub fn record_api_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        self.api_requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.api_duration
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4,
    /// [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|error| {
                tracing::error!(%error, "could not encode the metrics");
                String::new()
            })
    }
}

/// Serves `GET /metrics` alone on `listener`, for the processes that run no
/// dashboard API (`townes gateway`, `townes worker`); with `platform`, its
/// mirrored gauges are refreshed before each scrape, as the API's route does.
pub fn serve_alone(
    listener: tokio::net::TcpListener,
    platform: Option<std::sync::Arc<crate::platform::Platform>>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    use axum::http::header;
    let route = axum::routing::get(move || {
        let platform = platform.clone();
        async move {
            if let Some(platform) = platform {
                platform.refresh_metrics().await;
            }
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                metrics().render(),
            )
        }
    });
    let app = axum::Router::new().route("/metrics", route);
    tokio::spawn(async move { axum::serve(listener, app).await })
}

/// The `kind` label of an event kind: its WIT name in snake case.
pub fn event_kind_label(kind: EventKind) -> &'static str {
    match kind {
        EventKind::MessageCreated => "message_created",
        EventKind::MessageUpdated => "message_updated",
        EventKind::MessageDeleted => "message_deleted",
        EventKind::MemberJoined => "member_joined",
        EventKind::MemberLeft => "member_left",
        EventKind::MemberUpdated => "member_updated",
        EventKind::ReactionAdded => "reaction_added",
        EventKind::ReactionRemoved => "reaction_removed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sample: metric name, labels, value.
    type Sample = (String, Vec<(String, String)>, f64);

    /// Every line of `text` is a `# HELP`/`# TYPE` comment or a sample
    /// `name{label="value",...} number`; returns the samples.
    fn parse_exposition(text: &str) -> Vec<Sample> {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
                continue;
            }
            assert!(
                !line.is_empty() && !line.starts_with('#'),
                "stray line {line:?}"
            );
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').expect("closing brace");
                    let labels = inner
                        .split(',')
                        .filter(|pair| !pair.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once('=').expect("label=value");
                            let v = v
                                .strip_prefix('"')
                                .and_then(|v| v.strip_suffix('"'))
                                .unwrap_or_else(|| panic!("unquoted label value in {line:?}"));
                            (k.to_string(), v.to_string())
                        })
                        .collect();
                    (name, labels)
                }
                None => (series, Vec::new()),
            };
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name in {line:?}"
            );
            samples.push((name.to_string(), labels, value));
        }
        samples
    }

    #[test]
    fn render_is_valid_exposition_with_every_metric() {
        let m = Metrics::new();
        m.record_event("message_created", Duration::from_micros(70));
        m.record_invocation("xp", outcome::OK);
        m.record_invocation("xp", outcome::CPU_EXHAUSTED);
        m.record_invocation("xp", outcome::TIMEOUT);
        m.record_command("xp", "rank");
        m.record_unknown_dispatch();
        m.set_queue_depth(7);
        m.record_discord_invalid("xp", 403);
        m.record_discord_refused("host", "remembered_refusal");
        m.record_cache_lookup("rights", true);
        m.record_cache_lookup("rights", true);
        m.record_cache_lookup("rights", false);
        m.record_storage_commit(1);
        m.record_storage_commit(40);
        m.set_shard_latency(0, Some(Duration::from_millis(42)));
        m.record_api_request(
            "GET",
            "/api/guild/{guild_id}/settings",
            200,
            Duration::from_millis(3),
        );
        let text = m.render();
        let samples = parse_exposition(&text);
        let value = |name: &str, labels: &[(&str, &str)]| {
            samples
                .iter()
                .find(|(n, l, _)| {
                    n == name
                        && labels
                            .iter()
                            .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
                })
                .map(|(_, _, v)| *v)
                .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
        };
        assert_eq!(
            value("townes_events_total", &[("kind", "message_created")]),
            1.0
        );
        assert_eq!(
            value(
                "townes_dispatch_duration_seconds_count",
                &[("kind", "message_created")]
            ),
            1.0
        );
        assert_eq!(
            value(
                "townes_dispatch_duration_seconds_bucket",
                &[("kind", "message_created"), ("le", "0.00005")]
            ),
            0.0
        );
        assert_eq!(
            value(
                "townes_dispatch_duration_seconds_bucket",
                &[("kind", "message_created"), ("le", "0.0001")]
            ),
            1.0
        );
        assert_eq!(
            value(
                "townes_feature_invocations_total",
                &[("feature", "xp"), ("outcome", "cpu_exhausted")]
            ),
            1.0
        );
        assert_eq!(
            value("townes_feature_traps_total", &[("feature", "xp")]),
            1.0
        );
        assert_eq!(
            value("townes_feature_timeouts_total", &[("feature", "xp")]),
            1.0
        );
        assert_eq!(
            value(
                "townes_commands_total",
                &[("feature", "xp"), ("command", "rank")]
            ),
            1.0
        );
        assert_eq!(value("townes_gateway_unknown_dispatches_total", &[]), 1.0);
        assert_eq!(value("townes_discord_queue_depth", &[]), 7.0);
        assert_eq!(
            value(
                "townes_discord_invalid_requests_total",
                &[("feature", "xp"), ("status", "403")]
            ),
            1.0
        );
        assert_eq!(
            value(
                "townes_discord_refused_total",
                &[("feature", "host"), ("reason", "remembered_refusal")]
            ),
            1.0
        );
        assert_eq!(
            value(
                "townes_cache_lookups_total",
                &[("cache", "rights"), ("result", "hit")]
            ),
            2.0
        );
        assert_eq!(
            value(
                "townes_cache_lookups_total",
                &[("cache", "rights"), ("result", "miss")]
            ),
            1.0
        );
        assert_eq!(value("townes_storage_batch_writes_count", &[]), 2.0);
        assert_eq!(value("townes_storage_batch_writes_sum", &[]), 41.0);
        assert_eq!(
            value("townes_storage_batch_writes_bucket", &[("le", "32")]),
            1.0
        );
        assert_eq!(
            value("townes_shard_heartbeat_latency_seconds", &[("shard", "0")]),
            0.042
        );
        assert_eq!(
            value(
                "townes_api_requests_total",
                &[
                    ("method", "GET"),
                    ("route", "/api/guild/{guild_id}/settings"),
                    ("status", "200")
                ]
            ),
            1.0
        );
        assert_eq!(
            value(
                "townes_api_request_duration_seconds_count",
                &[
                    ("method", "GET"),
                    ("route", "/api/guild/{guild_id}/settings")
                ]
            ),
            1.0
        );
        for name in [
            "townes_events_total counter",
            "townes_dispatch_duration_seconds histogram",
            "townes_discord_queue_depth gauge",
        ] {
            assert!(text.contains(&format!("# TYPE {name}\n")), "{name}\n{text}");
        }
    }

    #[test]
    fn shards_without_a_latency_or_gone_lose_their_series() {
        let m = Metrics::new();
        m.set_shard_latencies([
            (0, Some(Duration::from_millis(10))),
            (1, Some(Duration::from_millis(20))),
            (2, None),
        ]);
        let text = m.render();
        assert!(
            text.contains("townes_shard_heartbeat_latency_seconds{shard=\"0\"} 0.01\n"),
            "{text}"
        );
        assert!(text.contains("{shard=\"1\"} 0.02\n"), "{text}");
        assert!(!text.contains("{shard=\"2\"}"), "{text}");

        m.set_shard_latencies([(1, None), (2, Some(Duration::from_millis(5)))]);
        let text = m.render();
        assert!(!text.contains("{shard=\"0\"}"), "shard 0 is gone: {text}");
        assert!(
            !text.contains("{shard=\"1\"}"),
            "shard 1 lost its latency: {text}"
        );
        assert!(text.contains("{shard=\"2\"} 0.005\n"), "{text}");

        m.set_shard_latency(2, None);
        assert!(!m.render().contains("shard=\""));
    }
}
