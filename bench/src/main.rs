//! `cargo xtask bench`: the dispatch benchmark (not a command of the shipped
//! binary). Measures, in one run and through the
//! runtime's public API only, what one invocation costs, how many xp
//! MESSAGE_CREATE events per second the sandbox and the store carry, how that
//! compares with the same store calls made natively, and what live instances and
//! idle guilds cost in resident memory. Prints its figures (`--json` for one JSON
//! object). `docs/PERFORMANCE.md` records a run and what it means.
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
use townes::store::{Guild, GuildFeature, Scope, Store};
use townes::wit::{CommandInvocation, CommandSource, Event, Member, Message, User};

/// Measure dispatch: instantiation, no-op and xp throughput, memory (temporary stores).
#[derive(clap::Parser)]
#[command(name = "townes-bench")]
struct BenchArgs {
    /// Where the built components are (`xp.wasm`, `hostile.wasm`); build them with
    /// `cargo xtask build-guests`.
    #[arg(long, default_value = "target/wasm32-wasip2/release")]
    components: PathBuf,
    /// Also measure on this Postgres database, in a fresh schema dropped afterwards.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Samples per latency figure.
    #[arg(long, default_value_t = 5_000)]
    iterations: usize,
    /// Seconds per throughput run.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Concurrent tasks of the throughput runs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    tasks: Vec<usize>,
    /// Live instances held at once for the memory-per-instance figure.
    #[arg(long, default_value_t = 256)]
    instances: usize,
    /// Guilds loaded for the memory-per-idle-guild figure.
    #[arg(long, default_value_t = 100_000)]
    guilds: u64,
    /// Of those, how many receive one event each.
    #[arg(long, default_value_t = 1_000)]
    touched: u64,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The guild where the `hostile` test feature is enabled (its `ok` command is the
/// no-op; it echoes every message, which the live-instance figure uses to park).
const NOOP_GUILD: u64 = 1_000;
/// The first of the guilds where `xp` is enabled; throughput events go round-robin.
const XP_GUILD: u64 = 10_000;
const XP_GUILDS: u64 = 64;
/// The first guild id of the idle-guild figure.
const IDLE_GUILD: u64 = 1_000_000;
/// The bot's user id; authors are never it.
const BOT_USER: u64 = 1;
/// How long a parked `hostile` echo waits in its Discord call.
const PARK: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <BenchArgs as clap::Parser>::parse();
    if args.tasks.is_empty() || args.tasks.contains(&0) || args.iterations == 0 {
        bail!("--tasks must list positive numbers and --iterations must be positive");
    }
    if args.touched > args.guilds {
        bail!("--touched cannot exceed --guilds");
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
    out.line("\n== memory ==");
    let idle = idle_guilds(&mut out, &components, args.guilds, args.touched).await?;
    live_instances(&mut out, &components, args.instances).await?;
    drop(idle);

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
        Ok(Components {
            xp: read("xp.wasm")?,
            hostile: read("hostile.wasm")?,
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

/// The free plan's limits with storage quotas no run can reach and a wall-clock
/// limit above [`PARK`]; neither changes what a call costs.
fn bench_limits() -> Limits {
    Limits {
        storage_bytes: 1 << 40,
        storage_rows: 1 << 40,
        wall_ms: 10_000,
        ..Limits::default()
    }
}

/// A runtime over `store` with `hostile` enabled in [`NOOP_GUILD`] and `xp` in
/// [`XP_GUILDS`] guilds from [`XP_GUILD`].
struct Platform {
    runtime: Arc<Runtime>,
    discord: Arc<LocalDiscord>,
    quota: Quota,
    /// The xp configuration as the runtime hands it to the feature.
    xp_config: String,
}

async fn platform(
    store: Store,
    data_dir: &Path,
    components: &Components,
) -> anyhow::Result<Platform> {
    let limits = bench_limits();
    let mut config = RuntimeConfig::new(data_dir.join("data"));
    config.plans = Plans::single(limits.clone());
    config.bot_user_id = BOT_USER;
    let discord = Arc::new(LocalDiscord::new());
    discord.add_guild(LocalGuild::new(NOOP_GUILD, "noop"));
    let runtime = Runtime::new(config, store, discord.clone())?;
    let market = Marketplace::new(&runtime, "bench");
    let mut xp_config = String::new();
    for (wasm, guilds) in [
        (&components.hostile, NOOP_GUILD..NOOP_GUILD + 1),
        (&components.xp, XP_GUILD..XP_GUILD + XP_GUILDS),
    ] {
        let (_, manifest) = market.install(wasm, &Publisher::Platform).await?;
        if manifest.id == "xp" {
            xp_config = manifest.default_config.clone();
        }
        for guild in guilds {
            runtime
                .store()
                .upsert_guild(&Guild::new(guild, format!("bench {guild}"), 1))
                .await?;
            market
                .enable(
                    guild,
                    &manifest.id,
                    Some(&manifest.version),
                    Approval::everything_requested(&manifest.capabilities),
                )
                .await?;
        }
    }
    Ok(Platform {
        runtime: Arc::new(runtime),
        discord,
        quota: limits.quota(),
        xp_config,
    })
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

fn xp_guild_of(n: u64) -> u64 {
    XP_GUILD + n % XP_GUILDS
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

/// Times `iterations` sequential calls of `a` and of `b`, alternating so both see
/// the same machine (after a tenth as many warm-up calls of each).
async fn latency<A, FutA, B, FutB>(
    iterations: usize,
    mut a: A,
    mut b: B,
) -> anyhow::Result<((f64, f64), (f64, f64))>
where
    A: FnMut() -> FutA,
    FutA: Future<Output = anyhow::Result<()>>,
    B: FnMut() -> FutB,
    FutB: Future<Output = anyhow::Result<()>>,
{
    for _ in 0..iterations / 10 + 1 {
        a().await?;
        b().await?;
    }
    let mut samples_a = Vec::with_capacity(iterations);
    let mut samples_b = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        a().await?;
        samples_a.push(started.elapsed());
        let started = Instant::now();
        b().await?;
        samples_b.push(started.elapsed());
    }
    Ok((percentiles(&mut samples_a), percentiles(&mut samples_b)))
}

struct Throughput {
    events: u64,
    per_second: f64,
    p50_us: f64,
    p99_us: f64,
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
    for _ in 0..tasks {
        let (call, next) = (call.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                call(n).await?;
                samples.push(t.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for handle in handles {
        samples.extend(handle.await??);
    }
    let elapsed = started.elapsed();
    let events = samples.len() as u64;
    let (p50_us, p99_us) = percentiles(&mut samples);
    Ok(Throughput {
        events,
        per_second: events as f64 / elapsed.as_secs_f64(),
        p50_us,
        p99_us,
    })
}

/// The parts of xp's configuration a non-level-up message reads.
#[derive(serde::Deserialize)]
#[serde(default)]
struct XpConfig {
    min_xp: u32,
    max_xp: u32,
    cooldown_seconds: u32,
    ignored_channels: Vec<u64>,
}

impl Default for XpConfig {
    fn default() -> Self {
        XpConfig {
            min_xp: 15,
            max_xp: 25,
            cooldown_seconds: 60,
            ignored_channels: vec![],
        }
    }
}

/// xp's `message_created` in plain Rust against the same store: the same store
/// calls in the same order (read the cooldown key; write it; add to the board)
/// and the same checks around them.
async fn native_xp(
    store: &Store,
    scope: &Scope,
    quota: Quota,
    config: &str,
    message: &Message,
) -> anyhow::Result<()> {
    let author = message.author.id;
    if message.author.bot || author == BOT_USER || author == 0 {
        return Ok(());
    }
    let config: XpConfig = serde_json::from_str(config)?;
    if config.ignored_channels.contains(&message.channel_id) {
        return Ok(());
    }
    let now = chrono::DateTime::parse_from_rfc3339(&message.timestamp)?.timestamp();
    let key = format!("last:{author}");
    if let Some(last) = store
        .kv_get(scope, &key)
        .await?
        .and_then(|v| v.trim().parse::<i64>().ok())
        && now - last < i64::from(config.cooldown_seconds)
    {
        return Ok(());
    }
    let (lo, hi) = (
        config.min_xp.min(config.max_xp),
        config.min_xp.max(config.max_xp),
    );
    let amount = i64::from(lo) + (splitmix64(message.id) % (u64::from(hi - lo) + 1)) as i64;
    store.kv_set(scope, &key, &now.to_string(), quota).await?;
    let total = store
        .board_increment(scope, "xp", author, amount, quota)
        .await?;
    if total >= 100 {
        bail!("member {author} levelled up: the native baseline must not take that path");
    }
    Ok(())
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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

/// Figures 1 to 4 on one backend.
async fn backend(
    out: &mut Report,
    args: &BenchArgs,
    components: &Components,
    label: &str,
    store: Store,
    data_dir: &Path,
) -> anyhow::Result<()> {
    out.line(&format!("\n== {label} =="));
    let p = platform(store, data_dir, components).await?;
    let runtime = p.runtime.clone();
    let store = runtime.store().clone();

    // 1 and 2: the no-op command, end to end, and the store reads it makes.
    let ((p50, p99), (l50, l99)) = latency(
        args.iterations,
        || async {
            let outcome = runtime
                .command(NOOP_GUILD, "hostile", ok_command(), 0)
                .await;
            match outcome.result {
                Ok(Some(reply)) if reply.body.content.as_deref() == Some("ok") => Ok(()),
                other => bail!("hostile `ok` did not reply ok: {other:?}"),
            }
        },
        || async {
            store.guild_feature(NOOP_GUILD, "hostile").await?;
            store.guild(NOOP_GUILD).await?;
            store.guild(NOOP_GUILD).await?;
            Ok(())
        },
    )
    .await?;
    out.line(&format!(
        "no-op dispatch (Runtime::command → hostile `ok`, end to end): p50 {p50:.1} µs, p99 {p99:.1} µs ({} samples)",
        args.iterations
    ));
    out.line(&format!(
        "  of which the runtime's store reads (guild_feature + guild ×2, run natively): p50 {l50:.1} µs, p99 {l99:.1} µs"
    ));
    out.line(&format!(
        "instantiation: not exposed by the runtime's public API; no-op p50 minus store reads ≈ {:.1} µs for instantiate + call + drop",
        p50 - l50
    ));
    out.put(
        &[label, "noop_dispatch"],
        json!({"p50_us": p50, "p99_us": p99, "samples": args.iterations}),
    );
    out.put(
        &[label, "noop_store_reads"],
        json!({"p50_us": l50, "p99_us": l99}),
    );
    out.put(
        &[label, "instantiation_estimate"],
        json!({"p50_us": p50 - l50, "how": "noop_dispatch.p50 - noop_store_reads.p50"}),
    );

    // 3 and 4: xp MESSAGE_CREATE throughput, wasm and native, same store.
    let duration = Duration::from_secs_f64(args.seconds);
    let next = Arc::new(AtomicU64::new(0));
    let timestamp: Arc<str> = chrono::Utc::now().to_rfc3339().into();
    let wasm = {
        let (runtime, timestamp) = (runtime.clone(), timestamp.clone());
        move |n: u64| {
            let (runtime, timestamp) = (runtime.clone(), timestamp.clone());
            async move {
                let guild = xp_guild_of(n);
                xp_event(&runtime, guild, &message(n, guild + 1, &timestamp)).await
            }
        }
    };
    let native = |lookups: bool| {
        let (store, timestamp) = (store.clone(), timestamp.clone());
        let (config, quota) = (Arc::<str>::from(p.xp_config.as_str()), p.quota);
        move |n: u64| {
            let (store, timestamp, config) = (store.clone(), timestamp.clone(), config.clone());
            async move {
                let guild = xp_guild_of(n);
                if lookups {
                    // What the runtime reads before and around each invocation.
                    store.guild_features(guild).await?;
                    store.guild(guild).await?;
                    store.guild(guild).await?;
                }
                let scope = Scope::new(guild, "xp");
                let message = chat(n, guild + 1, &timestamp);
                native_xp(&store, &scope, quota, &config, &message).await
            }
        }
    };
    // Warm-up: load xp, fill the pools and the caches.
    let warm = Duration::from_millis(300);
    throughput(8, warm, next.clone(), wasm.clone()).await?;
    throughput(8, warm, next.clone(), native(false)).await?;
    let mut rows = Vec::new();
    for &tasks in &args.tasks {
        let w = throughput(tasks, duration, next.clone(), wasm.clone()).await?;
        let n = throughput(tasks, duration, next.clone(), native(false)).await?;
        let nl = throughput(tasks, duration, next.clone(), native(true)).await?;
        let ratio = n.per_second / w.per_second;
        out.line(&format!(
            "xp MESSAGE_CREATE, {tasks:>2} tasks: wasm {:>7.0} events/s (p50 {:.0} µs, p99 {:.0} µs) | native {:>7.0}/s (p50 {:.0} µs, p99 {:.0} µs) | native + runtime's reads {:>7.0}/s | wasm/native time {ratio:.2}×",
            w.per_second, w.p50_us, w.p99_us, n.per_second, n.p50_us, n.p99_us, nl.per_second
        ));
        let fig = |t: &Throughput| json!({"events": t.events, "per_second": t.per_second, "p50_us": t.p50_us, "p99_us": t.p99_us});
        rows.push(json!({
            "tasks": tasks,
            "wasm": fig(&w),
            "native": fig(&n),
            "native_with_runtime_reads": fig(&nl),
            "wasm_over_native_time": ratio,
        }));
    }
    out.put(&[label, "xp_message_create"], Value::Array(rows));
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
    let store = Store::connect(&dir.url()).await?;
    let p = platform(store, &dir.0, components).await?;
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

/// Figure 6: memory per idle guild. `guilds` guilds, each with xp enabled, are
/// written through the store; then `touched` of them, spread over the range,
/// get one xp event each.
async fn idle_guilds(
    out: &mut Report,
    components: &Components,
    guilds: u64,
    touched: u64,
) -> anyhow::Result<(Platform, TempDir)> {
    let dir = TempDir::new("idle")?;
    let store = Store::connect(&dir.url()).await?;
    let p = platform(store, &dir.0, components).await?;
    let store = p.runtime.store().clone();
    let timestamp = chrono::Utc::now().to_rfc3339();
    for n in 0..20 {
        let guild = xp_guild_of(n);
        xp_event(&p.runtime, guild, &message(n, guild + 1, &timestamp)).await?;
    }
    let template: GuildFeature = store
        .guild_feature(XP_GUILD, "xp")
        .await?
        .context("xp is not enabled in the first xp guild")?;
    let before = rss_bytes()?;
    let started = Instant::now();
    let writers = 8u64;
    let mut handles = Vec::new();
    for w in 0..writers {
        let (store, template) = (store.clone(), template.clone());
        handles.push(tokio::spawn(async move {
            let mut i = w;
            while i < guilds {
                let id = IDLE_GUILD + i;
                store
                    .upsert_guild(&Guild::new(id, format!("idle {i}"), 1))
                    .await?;
                let gf = GuildFeature {
                    guild_id: id,
                    ..template.clone()
                };
                store.upsert_guild_feature(&gf).await?;
                i += writers;
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    let load_time = started.elapsed();
    let after_insert = rss_bytes()?;
    let step = (guilds / touched.max(1)).max(1);
    for k in 0..touched {
        let guild = IDLE_GUILD + k * step;
        let n = 1_000_000_000 + k;
        xp_event(&p.runtime, guild, &message(n, guild + 1, &timestamp)).await?;
    }
    let after_events = rss_bytes()?;
    let per = after_events.saturating_sub(before) as f64 / guilds as f64;
    let on_disk: u64 = ["bench.db", "bench.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.0.join(f)).ok())
        .map(|m| m.len())
        .sum();
    out.line(&format!(
        "memory per idle guild: {per:.0} bytes ({guilds} guilds, each with xp enabled, written through the store in {:.1} s = {:.0} single-row writes/s; {touched} of them got one xp event; RSS {} → {} → {} MiB; database {:.1} MiB on disk = {:.0} bytes per guild)",
        load_time.as_secs_f64(),
        (2 * guilds) as f64 / load_time.as_secs_f64(),
        mib(before),
        mib(after_insert),
        mib(after_events),
        on_disk as f64 / (1u64 << 20) as f64,
        on_disk as f64 / guilds as f64,
    ));
    out.put(
        &["memory", "per_idle_guild"],
        json!({
            "bytes": per, "guilds": guilds, "touched": touched,
            "rss_before": before, "rss_after_insert": after_insert, "rss_after_events": after_events,
            "insert_seconds": load_time.as_secs_f64(), "database_bytes_on_disk": on_disk,
        }),
    );
    Ok((p, dir))
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
