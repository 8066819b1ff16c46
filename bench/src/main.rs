//! `cargo xtask bench`: the dispatch benchmark (not a command of the shipped
//! binary). Measures, in one run and through the runtime's public API only:
//! the no-op dispatch at 1 and at many concurrent callers; xp MESSAGE_CREATE
//! events per second over 1, 100 and 10,000 guilds at several concurrencies;
//! the p99 latency at 80% of the best throughput; xp's own award logic run in
//! the sandbox against the same logic run natively on the same store; resident
//! memory per live instance and per known idle guild; and the cold start of a
//! platform whose features are installed and compiled. Prints its figures
//! (`--json` for one JSON object). `docs/PERFORMANCE.md` records a run and what
//! it means.
//!
//! Every store is temporary: SQLite files in a fresh temporary directory, and with
//! `--postgres` a fresh schema that is dropped at the end. The global
//! `--database-url` is not used.

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use townes::discord::{LocalDiscord, LocalGuild};
use townes::grants::Approval;
use townes::grants::Quota;
use townes::marketplace::{Marketplace, Publisher};
use townes::runtime::{Limits, Plans, Runtime, RuntimeConfig};
use townes::store::{Guild, GuildFeature, Scope, Store, StoreError};
use townes::wit::{CommandInvocation, CommandSource, Event, Member, Message, User};

/// Measure dispatch: no-op latency, xp throughput, wasm against native, memory,
/// cold start (temporary stores).
#[derive(clap::Parser)]
#[command(name = "townes-bench")]
struct BenchArgs {
    /// Where the built components are (`xp.wasm`, `hostile.wasm`, …); build them
    /// with `cargo xtask build-guests`.
    #[arg(long, default_value = "target/wasm32-wasip2/release")]
    components: PathBuf,
    /// Also measure on this Postgres database, in a fresh schema dropped afterwards.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Samples of the sequential no-op latency.
    #[arg(long, default_value_t = 5_000)]
    iterations: usize,
    /// Concurrent callers of the concurrent no-op figure, each in its own guild.
    #[arg(long, default_value_t = 300)]
    callers: u64,
    /// Seconds per throughput run.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Concurrent tasks of the throughput runs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64,512")]
    tasks: Vec<usize>,
    /// Guilds the throughput runs spread their events over, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,100,10000")]
    guild_counts: Vec<u64>,
    /// Live instances held at once for the memory-per-instance figure.
    #[arg(long, default_value_t = 256)]
    instances: usize,
    /// Known guilds for the memory-per-idle-guild figure.
    #[arg(long, default_value_t = 100_000)]
    guilds: u64,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The first of the guilds where the `hostile` test feature is enabled (its
/// `ok` command is the no-op; it echoes every message, which the live-instance
/// figure uses to park).
const NOOP_GUILD: u64 = 1_000;
/// The first of the guilds where `xp` is enabled; throughput events go round-robin.
const XP_GUILD: u64 = 10_000;
/// The first guild id of the idle-guild figure.
const IDLE_GUILD: u64 = 1_000_000;
/// The bot's user id; authors are never it.
const BOT_USER: u64 = 1;
/// How long a parked `hostile` echo waits in its Discord call.
const PARK: Duration = Duration::from_secs(2);
/// Guilds of the wasm-against-native figure.
const RATIO_GUILDS: u64 = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <BenchArgs as clap::Parser>::parse();
    if args.tasks.is_empty() || args.tasks.contains(&0) || args.iterations == 0 {
        bail!("--tasks must list positive numbers and --iterations must be positive");
    }
    if args.guild_counts.is_empty() || args.guild_counts.contains(&0) || args.callers == 0 {
        bail!("--guild-counts must list positive numbers and --callers must be positive");
    }
    if args.instances == 0 || args.instances > 900 {
        bail!("--instances must be 1 to 900 (the runtime pools 1,000 instance slots)");
    }
    let components = Components::read(&args.components)?;
    let mut out = Report::new(args.json);
    machine(&mut out);
    // The memory figures first, while the heap holds nothing freed by earlier
    // figures that their allocations could reuse unseen; the idle guilds stay
    // loaded (their memory held) while the live instances are measured.
    out.line("\n== memory and start ==");
    let idle = idle_guilds(&mut out, &components, args.guilds).await?;
    live_instances(&mut out, &components, args.instances).await?;
    drop(idle);
    cold_start(&mut out, &components).await?;

    let sqlite = TempDir::new("sqlite")?;
    let store = Store::connect(&sqlite.url()).await?;
    backend(&mut out, &args, &components, "sqlite", store, &sqlite.0).await?;

    if let Some(url) = &args.postgres {
        let schema = format!("townes_bench_{:016x}", rand::random::<u64>());
        create_schema(url, &schema).await?;
        let separator = if url.contains('?') { '&' } else { '?' };
        let scoped = format!("{url}{separator}options[search_path]={schema}");
        let data = TempDir::new("postgres")?;
        let result = async {
            let store = Store::connect(&scoped).await?;
            backend(&mut out, &args, &components, "postgres", store, &data.0).await
        }
        .await;
        let dropped = drop_schema(url, &schema).await;
        result?;
        dropped?;
    }

    out.put(&["machine", "load_average_end"], json!(load_average()));
    out.line(&format!("load average at the end: {}", load_average()));
    out.finish();
    Ok(())
}

// ------------------------------------------------------------------ set-up

struct Components {
    xp: Vec<u8>,
    hostile: Vec<u8>,
    /// Every component that installs as a feature of its own, for the cold start.
    all: Vec<(String, Vec<u8>)>,
}

impl Components {
    fn read(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).with_context(|| {
                format!(
                    "reading {} (build the components with `cargo xtask build-guests`, \
                     or point --components at them)",
                    path.display()
                )
            })
        };
        let mut all = Vec::new();
        for name in ["hello", "welcome", "xp", "hostile", "panel"] {
            all.push((name.to_string(), read(&format!("{name}.wasm"))?));
        }
        Ok(Components {
            xp: read("xp.wasm")?,
            hostile: read("hostile.wasm")?,
            all,
        })
    }
}

/// A directory under the system's temporary directory, deleted on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "townes-bench-{}-{label}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.join("bench.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn create_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut admin = sqlx::postgres::PgConnection::connect(url)
        .await
        .context("connecting to --postgres")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(())
}

async fn drop_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut admin = sqlx::postgres::PgConnection::connect(url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut admin)
    .await
    .with_context(|| format!("dropping schema {schema}"))?;
    admin.close().await?;
    Ok(())
}

/// The free plan's limits with storage quotas no run can reach, a wall-clock
/// limit above [`PARK`], and a per-guild queue that holds every task of the
/// one-guild runs (the free plan sheds load past 256 waiting); none of it
/// changes what a call costs.
fn bench_limits() -> Limits {
    Limits {
        storage_bytes: 1 << 40,
        storage_rows: 1 << 40,
        wall_ms: 10_000,
        queued_per_guild: 4_096,
        ..Limits::default()
    }
}

/// A runtime over `store` with `hostile` enabled in `noop_guilds` guilds from
/// [`NOOP_GUILD`] and `xp` in `xp_guilds` guilds from [`XP_GUILD`].
struct Platform {
    runtime: Arc<Runtime>,
    discord: Arc<LocalDiscord>,
    quota: Quota,
    /// xp's configuration as the runtime hands it to the feature.
    xp_config: xp::Config,
}

async fn platform(
    store: Store,
    data_dir: &Path,
    components: &Components,
    noop_guilds: u64,
    xp_guilds: u64,
    limits: Limits,
) -> anyhow::Result<Platform> {
    let mut config = RuntimeConfig::new(data_dir.join("data"));
    config.plans = Plans::single(limits.clone());
    config.bot_user_id = BOT_USER;
    let discord = Arc::new(LocalDiscord::new());
    discord.add_guild(LocalGuild::new(NOOP_GUILD, "noop"));
    let runtime = Runtime::new(config, store, discord.clone())?;
    let market = Marketplace::new(&runtime, "bench");
    let mut xp_config = None;
    for (wasm, first, count) in [
        (&components.hostile, NOOP_GUILD, noop_guilds),
        (&components.xp, XP_GUILD, xp_guilds),
    ] {
        let (_, manifest) = market.install(wasm, &Publisher::Platform).await?;
        if manifest.id == "xp" {
            xp_config = Some(serde_json::from_str(&manifest.default_config)?);
        }
        let guilds: Vec<u64> = (first..first + count).collect();
        enable_everywhere(&runtime, &manifest, &guilds).await?;
    }
    Ok(Platform {
        runtime: Arc::new(runtime),
        discord,
        quota: limits.quota(),
        xp_config: xp_config.context("xp installed")?,
    })
}

/// Enables a feature in `guilds` (created as needed): through the marketplace
/// in the first, then by copying that row, which is what thousands of enables
/// leave behind without their audit entries.
async fn enable_everywhere(
    runtime: &Runtime,
    manifest: &townes::wit::Manifest,
    guilds: &[u64],
) -> anyhow::Result<()> {
    let store = runtime.store();
    let Some((&first, rest)) = guilds.split_first() else {
        return Ok(());
    };
    store
        .upsert_guild(&Guild::new(first, format!("bench {first}"), 1))
        .await?;
    Marketplace::new(runtime, "bench")
        .enable(
            first,
            &manifest.id,
            Some(&manifest.version),
            Approval::everything_requested(&manifest.capabilities),
        )
        .await?;
    let template: GuildFeature = store
        .guild_feature(first, &manifest.id)
        .await?
        .context("the feature was just enabled")?;
    copy_feature_row(store, &template, rest).await
}

/// Creates `guilds` with `template`'s feature row, from a few writers at once.
async fn copy_feature_row(
    store: &Store,
    template: &GuildFeature,
    guilds: &[u64],
) -> anyhow::Result<()> {
    let writers = 8;
    let mut handles = Vec::new();
    for w in 0..writers {
        let (store, template) = (store.clone(), template.clone());
        let ids: Vec<u64> = guilds.iter().copied().skip(w).step_by(writers).collect();
        handles.push(tokio::spawn(async move {
            for id in ids {
                store
                    .upsert_guild(&Guild::new(id, format!("bench {id}"), 1))
                    .await?;
                let gf = GuildFeature {
                    guild_id: id,
                    ..template.clone()
                };
                store.upsert_guild_feature(&gf).await?;
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    Ok(())
}

fn ok_command() -> CommandInvocation {
    CommandInvocation {
        source: CommandSource::Slash,
        name: "ok".into(),
        subcommand: None,
        arguments: vec![],
        invoker: Member {
            user: user(42),
            nick: None,
            roles: vec![],
            joined_at: None,
        },
        channel_id: NOOP_GUILD + 1,
    }
}

fn user(id: u64) -> User {
    User {
        id,
        username: format!("member{id}"),
        global_name: None,
        bot: false,
    }
}

/// Event `n`: a message from a member who has never spoken (so no cooldown applies
/// and no level is reached: an award is 15 to 25 XP and level 1 takes 100).
fn message(n: u64, channel_id: u64, timestamp: &str) -> Event {
    Event::MessageCreated(chat(n, channel_id, timestamp))
}

fn chat(n: u64, channel_id: u64, timestamp: &str) -> Message {
    Message {
        id: 5_000_000_000 + n,
        channel_id,
        author: user(member_of(n)),
        content: String::new(),
        mentions: vec![],
        timestamp: timestamp.to_string(),
    }
}

fn member_of(n: u64) -> u64 {
    100_000_000 + n
}

/// The same message as the SDK's type, for xp's native award.
fn sdk_message(m: &Message) -> townes_sdk::Message {
    townes_sdk::Message {
        id: m.id,
        channel_id: m.channel_id,
        author: townes_sdk::User {
            id: m.author.id,
            username: m.author.username.clone(),
            global_name: m.author.global_name.clone(),
            bot: m.author.bot,
        },
        content: m.content.clone(),
        mentions: m.mentions.clone(),
        timestamp: m.timestamp.clone(),
    }
}

// ------------------------------------------------------------ measurements

/// Latency percentiles of a sample, in microseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: usize| {
        let i = (samples.len() * q / 100).min(samples.len() - 1);
        samples[i].as_secs_f64() * 1e6
    };
    (at(50), at(99))
}

struct Throughput {
    events: u64,
    per_second: f64,
    p50_us: f64,
    p99_us: f64,
}

impl Throughput {
    /// `samples` latencies measured over `elapsed`.
    fn of(mut samples: Vec<Duration>, elapsed: Duration) -> Throughput {
        let events = samples.len() as u64;
        let (p50_us, p99_us) = percentiles(&mut samples);
        Throughput {
            events,
            per_second: events as f64 / elapsed.as_secs_f64(),
            p50_us,
            p99_us,
        }
    }

    fn json(&self) -> Value {
        json!({"events": self.events, "per_second": self.per_second, "p50_us": self.p50_us, "p99_us": self.p99_us})
    }
}

/// Runs `call(n)` for n = 0, 1, … from `tasks` concurrent tokio tasks until
/// `duration` has passed. `next` numbers the events across runs, so no two runs
/// share a member. Fails on the first failed call.
async fn throughput<F, Fut>(
    tasks: usize,
    duration: Duration,
    next: Arc<AtomicU64>,
    call: F,
) -> anyhow::Result<Throughput>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let deadline = started + duration;
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let (call, next) = (call.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                call(n)
                    .await
                    .with_context(|| format!("task {task}, event {n}"))?;
                samples.push(t.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for handle in handles {
        samples.extend(handle.await??);
    }
    Ok(Throughput::of(samples, started.elapsed()))
}

/// Offers `rate` calls per second for `duration`, each as its own task at its
/// scheduled time whether or not earlier ones finished (an open loop, as
/// Discord delivers), and measures each from its scheduled time to its end.
async fn paced<F, Fut>(
    rate: f64,
    duration: Duration,
    next: Arc<AtomicU64>,
    call: F,
) -> anyhow::Result<Throughput>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let total = (rate * duration.as_secs_f64()) as u64;
    let mut handles = Vec::with_capacity(total as usize);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut issued = 0u64;
    while issued < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * rate) as u64).min(total);
        while issued < due {
            let scheduled = started + Duration::from_secs_f64(issued as f64 / rate);
            let (call, n) = (call.clone(), next.fetch_add(1, Ordering::Relaxed));
            handles.push(tokio::spawn(async move {
                call(n).await?;
                anyhow::Ok(scheduled.elapsed())
            }));
            issued += 1;
        }
    }
    let mut samples = Vec::with_capacity(handles.len());
    for handle in handles {
        samples.push(handle.await??);
    }
    Ok(Throughput::of(samples, started.elapsed()))
}

/// The host's store as xp's [`xp::Ledger`]: the native baseline runs xp's own
/// award logic against the very store the sandboxed feature uses.
struct StoreLedger<'a> {
    store: &'a Store,
    scope: &'a Scope,
    quota: Quota,
}

impl StoreLedger<'_> {
    /// Awaits a store call from xp's synchronous code, on this worker thread.
    fn wait<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, townes_sdk::Error> {
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(call))
            .map_err(|e| townes_sdk::Error::Unavailable(e.to_string()))
    }
}

impl xp::Ledger for StoreLedger<'_> {
    fn get(&mut self, key: &str) -> Result<Option<String>, townes_sdk::Error> {
        self.wait(self.store.kv_get(self.scope, key))
    }

    fn set_if(
        &mut self,
        key: &str,
        expected: Option<&str>,
        value: &str,
    ) -> Result<bool, townes_sdk::Error> {
        self.wait(
            self.store
                .kv_set_if(self.scope, key, Some(expected), value, self.quota),
        )
    }

    fn board_increment(
        &mut self,
        board: &str,
        subject: u64,
        delta: i64,
    ) -> Result<i64, townes_sdk::Error> {
        self.wait(
            self.store
                .board_increment(self.scope, board, subject, delta, self.quota),
        )
    }
}

/// Dispatches one xp event and insists on exactly one successful outcome.
async fn xp_event(runtime: &Runtime, guild: u64, event: &Event) -> anyhow::Result<()> {
    let outcomes = runtime.dispatch_event(guild, event).await?;
    match outcomes.as_slice() {
        [outcome] if outcome.result.is_ok() => Ok(()),
        [outcome] => bail!(
            "xp failed in guild {guild}: {}",
            outcome.result.as_ref().unwrap_err()
        ),
        other => bail!("expected one outcome in guild {guild}, got {}", other.len()),
    }
}

/// The no-op command in `guild`, insisting on its answer.
async fn noop(runtime: &Runtime, guild: u64) -> anyhow::Result<()> {
    let outcome = runtime.command(guild, "hostile", ok_command(), 0).await;
    match outcome.result {
        Ok(Some(reply)) if reply.body.content.as_deref() == Some("ok") => Ok(()),
        other => bail!("hostile `ok` did not reply ok in guild {guild}: {other:?}"),
    }
}

/// The dispatch figures on one backend.
async fn backend(
    out: &mut Report,
    args: &BenchArgs,
    components: &Components,
    label: &str,
    store: Store,
    data_dir: &Path,
) -> anyhow::Result<()> {
    out.line(&format!("\n== {label} =="));
    let most_guilds = args.guild_counts.iter().copied().max().unwrap_or(1);
    let started = Instant::now();
    let p = platform(
        store,
        data_dir,
        components,
        args.callers,
        most_guilds,
        bench_limits(),
    )
    .await?;
    out.line(&format!(
        "set-up: hostile in {} guilds, xp in {most_guilds} guilds, in {:.1} s",
        args.callers,
        started.elapsed().as_secs_f64()
    ));
    let runtime = p.runtime.clone();
    let store = runtime.store().clone();
    let duration = Duration::from_secs_f64(args.seconds);
    let next = Arc::new(AtomicU64::new(0));

    // The no-op command, end to end: sequential, then `callers` at once, each
    // caller in its own guild.
    for _ in 0..args.iterations / 10 + 1 {
        noop(&runtime, NOOP_GUILD).await?;
    }
    let mut samples = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let t = Instant::now();
        noop(&runtime, NOOP_GUILD).await?;
        samples.push(t.elapsed());
    }
    let (p50, p99) = percentiles(&mut samples);
    out.line(&format!(
        "no-op dispatch (Runtime::command → hostile `ok`), 1 caller: p50 {p50:.1} µs, p99 {p99:.1} µs ({} samples)",
        args.iterations
    ));
    let callers = args.callers;
    let noop_many = {
        let runtime = runtime.clone();
        move |n: u64| {
            let runtime = runtime.clone();
            async move { noop(&runtime, NOOP_GUILD + n % callers).await }
        }
    };
    throughput(
        callers as usize,
        Duration::from_millis(300),
        next.clone(),
        noop_many.clone(),
    )
    .await?;
    let many = throughput(callers as usize, duration, next.clone(), noop_many).await?;
    out.line(&format!(
        "no-op dispatch, {callers} callers at once: p50 {:.1} µs, p99 {:.1} µs ({:.0} calls/s)",
        many.p50_us, many.p99_us, many.per_second
    ));
    out.put(
        &[label, "noop_dispatch"],
        json!({"one_caller": {"p50_us": p50, "p99_us": p99, "samples": args.iterations},
               "concurrent": {"callers": callers, "result": many.json()}}),
    );

    // xp MESSAGE_CREATE over 1, 100, 10,000 guilds at each concurrency.
    let timestamp: Arc<str> = chrono::Utc::now().to_rfc3339().into();
    let wasm = |guilds: u64| {
        let (runtime, timestamp) = (runtime.clone(), timestamp.clone());
        move |n: u64| {
            let (runtime, timestamp) = (runtime.clone(), timestamp.clone());
            async move {
                let guild = XP_GUILD + n % guilds;
                xp_event(&runtime, guild, &message(n, guild + 1, &timestamp)).await
            }
        }
    };
    // Warm-up: load xp, fill the pools, and the control plane of every guild.
    throughput(
        64,
        Duration::from_millis(300),
        next.clone(),
        wasm(most_guilds),
    )
    .await?;
    for guild in XP_GUILD..XP_GUILD + most_guilds {
        store.guild_policy(guild).await?;
    }
    let mut rows = Vec::new();
    let mut best: Option<(f64, u64, usize)> = None;
    for &guilds in &args.guild_counts {
        for &tasks in &args.tasks {
            let t = throughput(tasks, duration, next.clone(), wasm(guilds)).await?;
            out.line(&format!(
                "xp MESSAGE_CREATE, {guilds:>6} guilds, {tasks:>3} tasks: {:>7.0} events/s (p50 {:.0} µs, p99 {:.0} µs)",
                t.per_second, t.p50_us, t.p99_us
            ));
            if best.is_none_or(|(rate, _, _)| t.per_second > rate) {
                best = Some((t.per_second, guilds, tasks));
            }
            rows.push(json!({"guilds": guilds, "tasks": tasks, "result": t.json()}));
        }
    }
    out.put(&[label, "xp_message_create"], Value::Array(rows));

    // The latency a steady load sees: events offered at 80% of the best rate.
    let (best_rate, best_guilds, best_tasks) = best.context("at least one run")?;
    let offered = best_rate * 0.8;
    let steady = paced(offered, duration, next.clone(), wasm(best_guilds)).await?;
    out.line(&format!(
        "xp at 80% of the best ({best_rate:.0}/s with {best_guilds} guilds, {best_tasks} tasks): {offered:.0} events/s offered, p50 {:.0} µs, p99 {:.0} µs from the scheduled time",
        steady.p50_us, steady.p99_us
    ));
    out.put(
        &[label, "xp_at_80_percent"],
        json!({"best_per_second": best_rate, "guilds": best_guilds, "offered_per_second": offered, "result": steady.json()}),
    );

    // xp's award in the sandbox against the same award run natively, same store.
    let native = {
        let (store, timestamp) = (store.clone(), timestamp.clone());
        let (config, quota) = (Arc::new(p.xp_config.clone()), p.quota);
        move |n: u64| {
            let (store, timestamp, config) = (store.clone(), timestamp.clone(), config.clone());
            async move {
                let guild = XP_GUILD + n % RATIO_GUILDS;
                let scope = Scope::new(guild, "xp");
                let mut ledger = StoreLedger {
                    store: &store,
                    scope: &scope,
                    quota,
                };
                let message = sdk_message(&chat(n, guild + 1, &timestamp));
                match xp::award(&mut ledger, &config, BOT_USER, &message)? {
                    xp::Awarded::Xp { total, .. } if total < 100 => Ok(()),
                    other => bail!("the native award must award without a level-up: {other:?}"),
                }
            }
        }
    };
    throughput(8, Duration::from_millis(300), next.clone(), native.clone()).await?;
    let mut ratios = Vec::new();
    for tasks in [1usize, 64] {
        let w = throughput(tasks, duration, next.clone(), wasm(RATIO_GUILDS)).await?;
        let n = throughput(tasks, duration, next.clone(), native.clone()).await?;
        let ratio = n.per_second / w.per_second;
        out.line(&format!(
            "xp award, {RATIO_GUILDS} guilds, {tasks:>2} tasks: sandboxed dispatch {:>7.0}/s | xp::award natively {:>7.0}/s | wasm ÷ native time {ratio:.2}×",
            w.per_second, n.per_second
        ));
        ratios.push(json!({"tasks": tasks, "wasm": w.json(), "native": n.json(), "wasm_over_native_time": ratio}));
    }
    out.put(&[label, "wasm_over_native"], Value::Array(ratios));
    drop(runtime);
    drop(p);
    store.close().await;
    Ok(())
}

/// Figure 5: resident memory per live instance. `instances` `hostile` echoes are
/// dispatched at once while Discord answers only after [`PARK`], so every
/// instance is alive (parked in `messages.send`, using no CPU) while RSS is read.
async fn live_instances(
    out: &mut Report,
    components: &Components,
    instances: usize,
) -> anyhow::Result<()> {
    let dir = TempDir::new("live")?;
    // All in one guild, which may run them all at once.
    let live = Limits {
        concurrent_per_guild: instances as u32,
        ..bench_limits()
    };
    let store = Store::connect(&dir.url()).await?;
    let p = platform(store, &dir.0, components, 1, 0, live).await?;
    let echo = |n: u64| message(n, NOOP_GUILD + 1, "2025-01-01T00:00:00Z");
    let check = |outcomes: Vec<townes::runtime::Outcome>| match outcomes.as_slice() {
        [o] if o.result.is_ok() && !o.effects.is_empty() => Ok(()),
        other => bail!("the hostile echo did not run as expected: {other:?}"),
    };
    for n in 0..20 {
        check(p.runtime.dispatch_event(NOOP_GUILD, &echo(n)).await?)?;
    }
    let before = rss_bytes()?;
    p.discord.set_latency(PARK);
    let started = Instant::now();
    let handles: Vec<_> = (0..instances as u64)
        .map(|n| {
            let runtime = p.runtime.clone();
            tokio::spawn(async move {
                let outcomes = runtime.dispatch_event(NOOP_GUILD, &echo(n)).await;
                (outcomes, Instant::now())
            })
        })
        .collect();
    let mut samples = Vec::new();
    for at_ms in [700u64, 1_000, 1_300, 1_600] {
        tokio::time::sleep_until((started + Duration::from_millis(at_ms)).into()).await;
        samples.push(rss_bytes()?);
    }
    let mut last_done = started;
    for handle in handles {
        let (outcomes, done) = handle.await?;
        check(outcomes?)?;
        last_done = last_done.max(done);
    }
    p.discord.set_latency(Duration::ZERO);
    // Each finished PARK after it started: if the last finished within 0.7 s + PARK,
    // all started within 0.7 s and were alive at every sample.
    let all_alive = last_done - started <= PARK + Duration::from_millis(700);
    samples.sort_unstable();
    let during = samples[samples.len() / 2];
    let per = during.saturating_sub(before) as f64 / instances as f64;
    out.line(&format!(
        "resident memory per live instance: {:.1} KiB ({instances} hostile instances parked in a Discord call; RSS {} → {} MiB){}",
        per / 1024.0,
        mib(before),
        mib(during),
        if all_alive {
            ""
        } else {
            " — WARNING: not all were alive at once"
        }
    ));
    out.put(
        &["memory", "per_live_instance"],
        json!({"bytes": per, "instances": instances, "rss_before": before, "rss_during": during, "all_alive_at_samples": all_alive}),
    );
    Ok(())
}

/// Memory per known idle guild with the control plane warm: `guilds` guilds,
/// each with xp enabled, written through the store; then each one's policy is
/// loaded into memory, as its first event would.
async fn idle_guilds(
    out: &mut Report,
    components: &Components,
    guilds: u64,
) -> anyhow::Result<(Platform, TempDir)> {
    let dir = TempDir::new("idle")?;
    let store = Store::connect(&dir.url()).await?;
    let p = platform(store, &dir.0, components, 1, 1, bench_limits()).await?;
    let store = p.runtime.store().clone();
    let timestamp = chrono::Utc::now().to_rfc3339();
    for n in 0..20 {
        xp_event(&p.runtime, XP_GUILD, &message(n, XP_GUILD + 1, &timestamp)).await?;
    }
    let template = store
        .guild_feature(XP_GUILD, "xp")
        .await?
        .context("xp is enabled in the first xp guild")?;
    let ids: Vec<u64> = (IDLE_GUILD..IDLE_GUILD + guilds).collect();
    let before = rss_bytes()?;
    let started = Instant::now();
    copy_feature_row(&store, &template, &ids).await?;
    let load_time = started.elapsed();
    let after_insert = rss_bytes()?;
    let started = Instant::now();
    let warmers = 8;
    let mut handles = Vec::new();
    for w in 0..warmers {
        let store = store.clone();
        let ids: Vec<u64> = ids.iter().copied().skip(w).step_by(warmers).collect();
        handles.push(tokio::spawn(async move {
            for id in ids {
                store.guild_policy(id).await?;
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    let warm_time = started.elapsed();
    let after_warm = rss_bytes()?;
    let cached = store.cached_policies();
    let per = after_warm.saturating_sub(before) as f64 / guilds as f64;
    out.line(&format!(
        "memory per known idle guild, control plane warm: {per:.0} bytes ({guilds} guilds with xp enabled, written in {:.1} s; {cached} policies loaded in {:.1} s; RSS {} → {} → {} MiB)",
        load_time.as_secs_f64(),
        warm_time.as_secs_f64(),
        mib(before),
        mib(after_insert),
        mib(after_warm),
    ));
    out.put(
        &["memory", "per_idle_guild"],
        json!({
            "bytes": per, "guilds": guilds, "cached_policies": cached,
            "rss_before": before, "rss_after_insert": after_insert, "rss_after_warm": after_warm,
            "insert_seconds": load_time.as_secs_f64(), "warm_seconds": warm_time.as_secs_f64(),
        }),
    );
    Ok((p, dir))
}

/// The cold start of a platform whose features are installed and compiled (a
/// first run did it): connect to the store, build the runtime, and answer a
/// first event in a guild where every feature is enabled, which loads each
/// one's compiled component from the cache.
async fn cold_start(out: &mut Report, components: &Components) -> anyhow::Result<()> {
    const GUILD: u64 = 777;
    let dir = TempDir::new("cold")?;
    let config = || {
        let mut config = RuntimeConfig::new(dir.0.join("data"));
        config.bot_user_id = BOT_USER;
        config
    };
    let discord = Arc::new(LocalDiscord::new());
    discord.add_guild(LocalGuild::new(GUILD, "cold"));
    let event = message(0, GUILD + 1, "2025-01-01T00:00:00Z");
    {
        let store = Store::connect(&dir.url()).await?;
        store.upsert_guild(&Guild::new(GUILD, "cold", 1)).await?;
        let runtime = Runtime::new(config(), store.clone(), discord.clone())?;
        let market = Marketplace::new(&runtime, "bench");
        for (_, wasm) in &components.all {
            let (_, manifest) = market.install(wasm, &Publisher::Platform).await?;
            let approval = Approval::everything_requested(&manifest.capabilities);
            market
                .enable(GUILD, &manifest.id, Some(&manifest.version), approval)
                .await?;
        }
        runtime.dispatch_event(GUILD, &event).await?;
        drop(runtime);
        store.close().await;
    }
    let started = Instant::now();
    let store = Store::connect(&dir.url()).await?;
    let connected = started.elapsed();
    let runtime = Runtime::new(config(), store.clone(), discord.clone())?;
    let built = started.elapsed();
    runtime.dispatch_event(GUILD, &event).await?;
    let answered = started.elapsed();
    let names: Vec<&str> = components.all.iter().map(|(n, _)| n.as_str()).collect();
    out.line(&format!(
        "cold start with {} features installed and compiled ({}): store {:.0} ms, runtime {:.0} ms, first event answered at {:.0} ms",
        names.len(),
        names.join(", "),
        connected.as_secs_f64() * 1e3,
        (built - connected).as_secs_f64() * 1e3,
        answered.as_secs_f64() * 1e3,
    ));
    out.put(
        &["cold_start"],
        json!({
            "features": names, "store_ms": connected.as_secs_f64() * 1e3,
            "runtime_ms": (built - connected).as_secs_f64() * 1e3,
            "first_event_ms": answered.as_secs_f64() * 1e3,
        }),
    );
    drop(runtime);
    store.close().await;
    Ok(())
}

// ------------------------------------------------------------ the machine

fn machine(out: &mut Report) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| kib_field(&m, "MemTotal:"))
        .map(|kib| kib * 1024);
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let dirty = commit.is_some()
        && std::process::Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty());
    let load = load_average();
    out.line(&format!(
        "machine: {cores} cores, {} RAM{}; load average {load}",
        memory.map_or("unknown".into(), |b| format!(
            "{:.1} GiB",
            b as f64 / (1u64 << 30) as f64
        )),
        cpu.as_deref().map(|c| format!(", {c}")).unwrap_or_default(),
    ));
    if let Some(commit) = &commit {
        out.line(&format!(
            "commit: {commit}{}",
            if dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        ));
    }
    out.put(
        &["machine"],
        json!({"cores": cores, "memory_bytes": memory, "cpu": cpu, "load_average_start": load}),
    );
    out.put(&["commit"], json!(commit));
    out.put(&["dirty"], json!(dirty));
}

fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// This process's resident set: `VmRSS` in `/proc/self/status` (the resident pages
/// of `/proc/self/statm`, already multiplied by the page size).
fn rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status (the memory figures need Linux)")?;
    let kib = kib_field(&status, "VmRSS:").context("no VmRSS in /proc/self/status")?;
    Ok(kib * 1024)
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 20) as f64)
}

// ------------------------------------------------------------ the report

/// Text lines as the figures come, or one JSON object at the end.
struct Report {
    json: bool,
    value: Value,
}

impl Report {
    fn new(json: bool) -> Self {
        Report {
            json,
            value: json!({}),
        }
    }

    fn line(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }

    fn put(&mut self, path: &[&str], value: Value) {
        let mut at = &mut self.value;
        for (i, key) in path.iter().enumerate() {
            let object = at.as_object_mut().expect("report paths name objects");
            if i + 1 == path.len() {
                match object.get_mut(*key) {
                    Some(Value::Object(existing)) if value.is_object() => {
                        existing.extend(value.as_object().cloned().unwrap_or_default());
                    }
                    _ => {
                        object.insert(key.to_string(), value);
                    }
                }
                return;
            }
            at = object.entry(key.to_string()).or_insert_with(|| json!({}));
        }
    }

    fn finish(self) {
        if self.json {
            println!("{}", self.value);
        }
    }
}
