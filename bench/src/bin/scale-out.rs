//! `scale-out`: the same load on one `townes serve` and on four processes
//! (`townes gateway` ×2 splitting the shards, `townes worker`, `townes api`)
//! against one Postgres, one Redis and the Discord simulator. The load is
//! member joins, each answered by one message of the `probe` test feature, so
//! an event counts as handled once its answer reached Discord. Prints events
//! per second (first join sent to last answer seen) and the p50 and p99 of
//! join-to-answer latency, read off the answers' snowflakes. Run it with
//! release builds:
//!
//! ```text
//! cargo xtask build-guests && cargo build --release -p townes
//! cargo run --release -p townes-bench --bin scale-out -- \
//!     --postgres postgres://postgres@127.0.0.1:5432/test --redis redis://127.0.0.1:6379/11
//! ```
//!
//! Every run uses a fresh Postgres schema (dropped at the end) and empties the
//! Redis database it is given: give it one of its own.

use anyhow::Context as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use townes::discord::LocalDiscord;
use townes::grants::Approval;
use townes::marketplace::Marketplace;
use townes::runtime::{Runtime, RuntimeConfig};
use townes::store::{Guild, Store};
use townes::wit::Capability;
use townes_discord_sim::{GuildSetup, SimConfig, Simulator};

#[derive(clap::Parser)]
#[command(name = "scale-out")]
struct Args {
    /// Postgres; each layout gets a fresh schema in it.
    #[arg(long)]
    postgres: String,
    /// A Redis database of the benchmark's own: it is emptied.
    #[arg(long)]
    redis: String,
    /// The `townes` binary (a release build).
    #[arg(long, default_value = "target/release/townes")]
    townes: PathBuf,
    /// Where `probe.wasm` is.
    #[arg(long, default_value = "target/wasm32-wasip2/release")]
    components: PathBuf,
    /// Guilds the joins spread over.
    #[arg(long, default_value_t = 200)]
    guilds: usize,
    /// Joins per guild.
    #[arg(long, default_value_t = 10)]
    joins: usize,
}

/// Simulated users joining at once.
const JOINERS: usize = 64;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    anyhow::ensure!(
        args.townes.exists(),
        "{} is missing: `cargo build --release -p townes`",
        args.townes.display()
    );
    let probe = std::fs::read(args.components.join("probe.wasm"))
        .context("probe.wasm: run `cargo xtask build-guests`")?;
    println!(
        "{} joins over {} guilds, {JOINERS} at once; {} cores",
        args.guilds * args.joins,
        args.guilds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut results = Vec::new();
    for layout in [Layout::One, Layout::Four] {
        let figures = run(&args, &probe, layout).await?;
        println!(
            "{:<40} {:>8.0} events/s   p50 {:>6} ms   p99 {:>6} ms",
            layout.describe(),
            figures.per_second,
            figures.p50_ms,
            figures.p99_ms
        );
        results.push(figures);
    }
    println!(
        "four processes / one: {:.2}× the events/s",
        results[1].per_second / results[0].per_second
    );
    Ok(())
}

#[derive(Clone, Copy)]
enum Layout {
    One,
    Four,
}

impl Layout {
    fn describe(self) -> &'static str {
        match self {
            Layout::One => "one process (townes serve)",
            Layout::Four => "four (gateway ×2, worker, api)",
        }
    }
}

struct Figures {
    per_second: f64,
    p50_ms: u64,
    p99_ms: u64,
}

/// A child killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run(args: &Args, probe: &[u8], layout: Layout) -> anyhow::Result<Figures> {
    flush(&args.redis).await?;
    let schema = format!("townes_scale_{:016x}", rand::random::<u64>());
    let admin = &args.postgres;
    {
        use sqlx::Connection;
        let mut c = sqlx::postgres::PgConnection::connect(admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut c)
            .await?;
    }
    let separator = if admin.contains('?') { '&' } else { '?' };
    let database = format!("{admin}{separator}options[search_path]={schema}");
    let result = measure(args, probe, layout, &database).await;
    {
        use sqlx::Connection;
        let mut c = sqlx::postgres::PgConnection::connect(admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&mut c)
        .await?;
    }
    result
}

async fn measure(
    args: &Args,
    probe: &[u8],
    layout: Layout,
    database: &str,
) -> anyhow::Result<Figures> {
    let sim = Simulator::start(SimConfig {
        shards: 2,
        route_limit: 10_000,
        ..SimConfig::default()
    })
    .await?;
    let owner = sim.create_user("owner");
    let guilds: Vec<GuildSetup> = (0..args.guilds)
        .map(|i| sim.create_guild(&format!("guild {i}"), owner))
        .collect();
    let joiners: Vec<u64> = (0..args.joins)
        .map(|i| sim.create_user(&format!("member {i}")))
        .collect();

    let store = Store::connect(database).await?;
    let setup = tempfile::tempdir()?;
    let runtime = Arc::new(Runtime::new(
        RuntimeConfig::new(setup.path()),
        store.clone(),
        Arc::new(LocalDiscord::new()),
    )?);
    let (version, _) = runtime.install(probe).await?;
    let market = Marketplace::new(&runtime, "bench");
    let approval = Approval::of([Capability::Messages, Capability::Scheduler]);
    for g in &guilds {
        store
            .upsert_guild(&Guild::new(g.guild_id, "guild", owner))
            .await?;
        market
            .enable(g.guild_id, &version.feature_id, None, approval.clone())
            .await?;
        market
            .set_config(
                g.guild_id,
                &version.feature_id,
                serde_json::json!({ "channel": g.general_channel_id.to_string() }),
            )
            .await?;
    }

    let dir = tempfile::tempdir()?;
    let (token, base) = (sim.token(), sim.base_url());
    let common = [
        ("DISCORD_TOKEN", token.as_str()),
        ("DISCORD_API_BASE", base.as_str()),
        ("REDIS_URL", args.redis.as_str()),
        ("DATABASE_URL", database),
        ("TOWNES_API_ADDR", "127.0.0.1:0"),
        // The simulator has no global limit; Discord's 50/s would measure it.
        ("TOWNES_DISCORD_GLOBAL_PER_SECOND", "100000"),
    ];
    let spawn = |args_: &[&str], name: &str| -> anyhow::Result<Process> {
        let data = dir.path().join(name);
        let log = std::fs::File::create(dir.path().join(format!("{name}.log")))?;
        let child = Command::new(&args.townes)
            .args(args_)
            .envs(common)
            .env("TOWNES_DATA_DIR", &data)
            .env("TOWNES_WORKER_NAME", name)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()?;
        Ok(Process(child))
    };
    let _processes = match layout {
        Layout::One => vec![spawn(&["serve"], "serve")?],
        Layout::Four => vec![
            spawn(&["gateway", "--shards", "0/2"], "gateway-0")?,
            spawn(&["gateway", "--shards", "1/2"], "gateway-1")?,
            spawn(&["worker"], "worker")?,
            spawn(&["api"], "api")?,
        ],
    };
    anyhow::ensure!(
        sim.wait_for_ready(2, Duration::from_secs(120)).await,
        "the shards did not connect; see the logs in {}",
        dir.path().display()
    );
    // Guild set-up traffic (command registrations) settles first.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let joins: Vec<(u64, u64)> = joiners
        .iter()
        .flat_map(|&member| guilds.iter().map(move |g| (g.guild_id, member)))
        .collect();
    let total = joins.len();
    let sent = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let started = Instant::now();
    let started_ms = unix_ms();
    let queue = Arc::new(std::sync::Mutex::new(joins.into_iter()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..JOINERS {
        let (sim, queue, sent) = (sim.clone(), queue.clone(), sent.clone());
        tasks.spawn(async move {
            loop {
                let next = queue.lock().unwrap().next();
                let Some((guild, member)) = next else { break };
                let at = unix_ms();
                sim.member_join(guild, member).await;
                sent.lock().unwrap().push(((guild, member), at));
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let channels: Vec<(u64, u64)> = guilds
        .iter()
        .map(|g| (g.guild_id, g.general_channel_id))
        .collect();
    let answers = loop {
        let answers: Vec<(u64, String, u64)> = channels
            .iter()
            .flat_map(|&(guild, channel)| {
                sim.messages(channel)
                    .into_iter()
                    .filter(|m| m.author_id == sim.bot_user_id())
                    .map(move |m| (guild, m.content, m.id))
            })
            .collect();
        if answers.len() >= total {
            break answers;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {} of {total} joins answered after 10 minutes; see the logs in {}",
            answers.len(),
            dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sent: std::collections::HashMap<(u64, u64), u64> =
        sent.lock().unwrap().iter().copied().collect();
    let mut latencies: Vec<u64> = Vec::with_capacity(total);
    let mut last_answer = started_ms;
    for (guild, content, id) in answers {
        let member: u64 = content
            .strip_prefix("welcome ")
            .and_then(|m| m.parse().ok())
            .context("an answer that is not probe's")?;
        let answered = snowflake_ms(id);
        last_answer = last_answer.max(answered);
        if let Some(at) = sent.get(&(guild, member)) {
            latencies.push(answered.saturating_sub(*at));
        }
    }
    latencies.sort_unstable();
    let elapsed = Duration::from_millis(last_answer.saturating_sub(started_ms).max(1));
    Ok(Figures {
        per_second: total as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    })
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// When Discord (the simulator) created a snowflake, in Unix milliseconds.
fn snowflake_ms(id: u64) -> u64 {
    (id >> 22) + 1_420_070_400_000
}

fn unix_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

async fn flush(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut c = client.get_multiplexed_async_connection().await?;
    redis::cmd("FLUSHDB").query_async::<()>(&mut c).await?;
    Ok(())
}
