//! Several processes on one Postgres and one Redis (issue 16, ADR 0023):
//! `townes gateway` processes splitting the shards, a `townes worker`, a
//! `townes api`, all started from the binary against the Discord simulator.
//! Killing a gateway and the worker with SIGKILL in the middle of a load
//! loses nothing (the gateway RESUMEs from the session it kept in Redis and
//! the simulator replays; the worker's unacknowledged events are handled
//! again) and does nothing twice (message nonces), and leaves nothing queued.
//!
//! Needs Postgres and Redis: without them it prints why it skips, unless `CI`
//! is set (then it fails).

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use townes::discord::LocalDiscord;
use townes::event_stream::EventStream;
use townes::gateway::relay::RedisIdentifyQueue;
use townes::grants::Approval;
use townes::marketplace::Marketplace;
use townes::runtime::{Runtime, RuntimeConfig};
use townes::store::{Guild, Store};
use townes::wit::Capability;
use townes_discord_sim::{GuildSetup, SimConfig, Simulator};

/// Guilds in the simulated world, all with `probe` enabled.
const GUILDS: usize = 1000;
/// Slash commands run per phase while a worker is up.
const COMMANDS: usize = 40;

/// A Redis database of its own for a test (the event stream's keys are fixed),
/// emptied; `None` (after saying why) when Redis is not there outside CI.
async fn redis_db(db: u8) -> Option<String> {
    let url = format!("{}/{db}", common::redis_url().trim_end_matches('/'));
    let flushed = async {
        let client = redis::Client::open(url.as_str())?;
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd("FLUSHDB").query_async::<()>(&mut c).await
    };
    match tokio::time::timeout(Duration::from_secs(5), flushed).await {
        Ok(Ok(())) => Some(url),
        outcome => {
            let why = format!(
                "skipping: Redis not reachable at {} ({outcome:?})",
                common::redact(&url)
            );
            assert!(!common::in_ci(), "{why}");
            eprintln!("{why}");
            None
        }
    }
}

async fn postgres() -> Option<(Store, common::Guard)> {
    match common::postgres().await {
        Ok((_, store, guard)) => Some((store, guard)),
        Err(why) => {
            assert!(!common::in_ci(), "Postgres is required in CI: {why}");
            eprintln!("skipping Postgres: {why}");
            None
        }
    }
}

/// A child process, killed when dropped (a failing test leaves none behind
/// to compete for the stream).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `townes` process whose output goes to `log`.
fn spawn(args: &[&str], envs: &[(&str, &str)], log: &std::path::Path) -> Process {
    let log = std::fs::File::create(log).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_townes"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log));
    for (key, value) in envs {
        command.env(key, value);
    }
    Process(command.spawn().unwrap())
}

fn sigkill(process: &mut Process) {
    process.0.kill().unwrap();
    process.0.wait().unwrap();
}

/// The end of every process's log, for a failure's message.
fn logs_of(dir: &std::path::Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail = &text[text.len().saturating_sub(4000)..];
            all.push_str(&format!("--- {}\n{tail}\n", entry.path().display()));
        }
    }
    all
}

/// Waits for `condition`, failing with `what` and the logs after `limit`.
async fn eventually(
    what: &str,
    limit: Duration,
    logs: &std::path::Path,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {limit:?}\n{}",
            logs_of(logs)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the bot posted in a channel, by text, without the answers to
/// commands (counted on their own).
fn bot_texts(sim: &Simulator, channel: u64) -> Vec<String> {
    sim.messages(channel)
        .into_iter()
        .filter(|m| m.author_id == sim.bot_user_id() && m.content != "pong")
        .map(|m| m.content)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_processes_lose_nothing_and_do_nothing_twice_when_killed() {
    let Some(redis) = redis_db(9).await else {
        return;
    };
    let Some((store, guard)) = postgres().await else {
        return;
    };
    let sim = Simulator::start(SimConfig {
        shards: 2,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let owner = sim.create_user("owner");
    let guilds: Vec<GuildSetup> = (0..GUILDS)
        .map(|i| sim.create_guild(&format!("guild {i}"), owner))
        .collect();
    let members: Vec<u64> = (0..4)
        .map(|i| sim.create_user(&format!("member {i}")))
        .collect();

    // The feature enabled everywhere, as the marketplace leaves it; the
    // worker loads the component from the database, not from this directory.
    let setup_dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(
        Runtime::new(
            RuntimeConfig::new(setup_dir.path()),
            store.clone(),
            Arc::new(LocalDiscord::new()),
        )
        .unwrap(),
    );
    let (version, _) = runtime.install(&common::component("probe")).await.unwrap();
    let market = Marketplace::new(&runtime, "test");
    let approval = Approval::of([Capability::Messages, Capability::Scheduler]);
    for g in &guilds {
        store
            .upsert_guild(&Guild::new(g.guild_id, "guild", owner))
            .await
            .unwrap();
        market
            .enable(g.guild_id, &version.feature_id, None, approval.clone())
            .await
            .unwrap();
        market
            .set_config(
                g.guild_id,
                &version.feature_id,
                serde_json::json!({ "channel": g.general_channel_id.to_string() }),
            )
            .await
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();
    let (token, base) = (sim.token(), sim.base_url());
    let discord = [
        ("DISCORD_TOKEN", token.as_str()),
        ("DISCORD_API_BASE", base.as_str()),
        ("REDIS_URL", redis.as_str()),
    ];
    let gateway = |shard: &str, log: &str| {
        let mut envs = discord.to_vec();
        envs.push(("TOWNES_METRICS_ADDR", "127.0.0.1:0"));
        spawn(&["gateway", "--shards", shard], &envs, &logs.join(log))
    };
    let worker_dir = dir.path().join("worker");
    let worker = |log: &str| {
        let mut envs = discord.to_vec();
        envs.extend([
            ("DATABASE_URL", guard.url()),
            ("TOWNES_DATA_DIR", worker_dir.to_str().unwrap()),
            ("TOWNES_WORKER_NAME", "worker-1"),
            // The simulator has no global limit; Discord's 50/s would make
            // 1,000 guilds' writes take minutes.
            ("TOWNES_DISCORD_GLOBAL_PER_SECOND", "5000"),
        ]);
        spawn(&["worker"], &envs, &logs.join(log))
    };
    let api_dir = dir.path().join("api");
    let mut api = spawn(
        &["api"],
        &[
            ("DATABASE_URL", guard.url()),
            ("REDIS_URL", redis.as_str()),
            ("TOWNES_DATA_DIR", api_dir.to_str().unwrap()),
            ("TOWNES_API_ADDR", "127.0.0.1:0"),
        ],
        &logs.join("api.log"),
    );
    let mut gateway_0 = gateway("0/2", "gateway-0.log");
    let gateway_1 = gateway("1/2", "gateway-1.log");
    let mut worker_1 = worker("worker.log");
    eventually("both shards ready", Duration::from_secs(60), logs, || {
        sim.gateway_stats().ready_shards == [0, 1]
    })
    .await;

    let stream = EventStream::connect(&redis).await.unwrap();
    let mut joined: Vec<(usize, u64)> = Vec::new();
    let mut said: Vec<(usize, u64)> = Vec::new();
    let mut answered = 0;
    let load = |round: usize| {
        let sim = sim.clone();
        let guilds = guilds.clone();
        let member = members[round];
        async move {
            let mut joined = Vec::new();
            let mut said = Vec::new();
            for (i, g) in guilds.iter().enumerate() {
                sim.member_join(g.guild_id, member).await;
                joined.push((i, member));
                // A message (and the job it schedules) in every fourth guild:
                // on two cores, a debug worker runs a job in about 0.1 s.
                if i % 4 == 0 {
                    let id = sim
                        .say(g.guild_id, g.general_channel_id, member, "hi")
                        .await;
                    said.push((i, id));
                }
            }
            (joined, said)
        }
    };
    let commands = |sim: Simulator, guilds: Vec<GuildSetup>, member: u64| async move {
        let logs = logs.to_path_buf();
        let mut answered = 0;
        for g in guilds.iter().step_by(GUILDS / COMMANDS) {
            let interaction = sim
                .slash(
                    g.guild_id,
                    g.general_channel_id,
                    member,
                    "ping",
                    serde_json::json!([]),
                )
                .await;
            let response = sim
                .interaction_response(interaction.id, Duration::from_secs(10))
                .await
                .unwrap_or_else(|| {
                    panic!(
                        "a command run while the worker is up is answered\n{}",
                        logs_of(&logs)
                    )
                });
            // A busy worker defers first (Discord's 3 s), then edits.
            let answer = match response.kind {
                5 => sim
                    .wait_for_edit(interaction.id, Duration::from_secs(10))
                    .await
                    .unwrap_or_default(),
                _ => response.data,
            };
            assert_eq!(answer["content"], "pong", "{}", logs_of(&logs));
            answered += 1;
        }
        answered
    };

    let bot_posts = || {
        guilds
            .iter()
            .map(|g| bot_texts(&sim, g.general_channel_id).len())
            .sum::<usize>()
    };

    // Round 0: everything up.
    let (j, s) = load(0).await;
    joined.extend(j);
    said.extend(s);
    answered += commands(sim.clone(), guilds.clone(), members[0]).await;
    let expected = joined.len() + said.len();
    eventually("round 0 answered", Duration::from_secs(600), logs, || {
        bot_posts() >= expected
    })
    .await;

    // Round 1: a gateway and the worker die by SIGKILL mid-load, and come back.
    let round = tokio::spawn(load(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigkill(&mut gateway_0);
    sigkill(&mut worker_1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    gateway_0 = gateway("0/2", "gateway-0-again.log");
    worker_1 = worker("worker-again.log");
    let (j, s) = round.await.unwrap();
    joined.extend(j);
    said.extend(s);

    // Round 2: after the restarts.
    let (j, s) = load(2).await;
    joined.extend(j);
    said.extend(s);

    let expected = joined.len() + said.len();
    eventually(
        "every join and message answered",
        Duration::from_secs(600),
        logs,
        || bot_posts() >= expected,
    )
    .await;
    // Commands again, once the restarted worker caught up (on two cores, its
    // backlog would outlast Discord's 3-second window).
    answered += commands(sim.clone(), guilds.clone(), members[2]).await;
    // Enough time for a duplicate to show, had one been made.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, g) in guilds.iter().enumerate() {
        let mut texts = bot_texts(&sim, g.general_channel_id);
        let mut wanted: Vec<String> = joined
            .iter()
            .filter(|(j, _)| *j == i)
            .map(|(_, member)| format!("welcome {member}"))
            .chain(
                said.iter()
                    .filter(|(s, _)| *s == i)
                    .map(|(_, id)| format!("job {id}")),
            )
            .collect();
        texts.sort();
        wanted.sort();
        assert_eq!(
            texts, wanted,
            "guild {i}: each join and message answered exactly once"
        );
    }
    assert_eq!(answered, 2 * COMMANDS);
    let stats = sim.gateway_stats();
    assert!(
        stats.resumes >= 1,
        "the restarted gateway resumed: {stats:?}"
    );

    // Nothing left queued: the stream, the outbox, the jobs.
    assert_eq!(stream.backlog().await.unwrap(), 0);
    assert_eq!(stream.dead_letters().await.unwrap(), 0);
    // Answered calls leave the outbox just after Discord's answer.
    for _ in 0..50 {
        if store.outbox_pending_count().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(store.outbox_pending_count().await.unwrap(), 0);
    assert!(
        store
            .due_jobs(chrono::Utc::now() + chrono::TimeDelta::days(1), 10, 10)
            .await
            .unwrap()
            .is_empty(),
        "no scheduled job left pending"
    );
    assert!(
        api.0.try_wait().unwrap().is_none(),
        "the API process is still serving"
    );
    // The gateway that was never killed relayed its shard's share (half the
    // guilds' joins and messages, and more) and says so on its own /metrics.
    let log = std::fs::read_to_string(logs.join("gateway-1.log")).unwrap();
    let url = log
        .lines()
        .find_map(|l| l.strip_prefix("metrics: "))
        .unwrap_or_else(|| panic!("the gateway prints where its metrics are: {log}"));
    let scraped = reqwest::get(url).await.unwrap().text().await.unwrap();
    let relayed: f64 = scraped
        .lines()
        .find_map(|l| l.strip_prefix("townes_gateway_relayed_total{shard=\"1\"} "))
        .expect("shard 1's relayed count")
        .parse()
        .unwrap();
    assert!(relayed >= 300.0, "{scraped}");
    drop((gateway_0, gateway_1, worker_1, api));
}

#[tokio::test]
async fn identify_is_one_login_per_bucket_per_five_seconds_across_processes() {
    let Some(redis) = redis_db(10).await else {
        return;
    };
    // Two gateway processes' queues: separate connections, one Redis.
    let connect = || async {
        let client = redis::Client::open(redis.as_str()).unwrap();
        redis::aio::ConnectionManager::new(client).await.unwrap()
    };
    let first = RedisIdentifyQueue::new(connect().await, 2);
    let second = RedisIdentifyQueue::new(connect().await, 2);
    let started = tokio::time::Instant::now();
    first.acquire(0).await;
    // Another bucket is free at once; the same bucket waits out the window.
    second.acquire(1).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    second.acquire(2).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(4_900) && waited < Duration::from_secs(7),
        "shard 2 shares shard 0's bucket: {waited:?}"
    );
}

/// The stream's hand-over rules, watched with a short claim idle instead of
/// 30 s: a worker that stops acknowledging loses its entries to another
/// worker, a worker restarted under its name gets its own back first, and an
/// entry no worker finishes in `MAX_DELIVERIES` deliveries is dead-lettered
/// with its frame and the reason, leaving nothing in the stream.
#[tokio::test]
async fn stale_entries_move_to_another_worker_and_end_as_dead_letters() {
    use townes::event_stream::{DEAD_LETTERS, MAX_DELIVERIES, STREAM, StoredSession};
    let Some(redis) = redis_db(12).await else {
        return;
    };
    let idle = Duration::from_millis(200);
    let stream = EventStream::connect(&redis)
        .await
        .unwrap()
        .with_claim_idle(idle);
    stream.ensure_group().await.unwrap();
    let session = StoredSession {
        id: "s".into(),
        sequence: 1,
        resume_url: "wss://gateway.invalid".into(),
    };
    for n in 0..3 {
        let frame = format!(r#"{{"op":0,"t":"TYPING_START","s":{n},"d":{{}}}}"#);
        stream.publish(0, &session, false, &frame).await.unwrap();
    }
    let block = Duration::from_millis(50);

    // Worker a takes all three and dies holding them.
    let taken = stream.next("a", 10, block).await.unwrap();
    assert_eq!(taken.len(), 3);
    assert!(taken.iter().all(|d| d.deliveries == 1));
    // Before the idle time nobody else gets them; a restarted `a` does.
    assert!(stream.next("b", 10, block).await.unwrap().is_empty());
    let own = stream.own_pending("a", 10).await.unwrap();
    assert_eq!(
        own.iter().map(|d| &d.id).collect::<Vec<_>>(),
        taken.iter().map(|d| &d.id).collect::<Vec<_>>()
    );
    assert!(own.iter().all(|d| d.deliveries == 2), "{own:?}");
    // After it (the restarted `a` died too), worker b takes them over; the
    // restart's read counted as a delivery, so this is the third.
    tokio::time::sleep(idle * 2).await;
    let moved = stream.next("b", 10, block).await.unwrap();
    assert_eq!(moved.len(), 3);
    assert!(moved.iter().all(|d| d.deliveries == 3), "{moved:?}");
    for d in &moved[..2] {
        stream.ack(d.stream, &d.id).await.unwrap();
    }
    assert_eq!(stream.backlog().await.unwrap(), 1);

    // The third kills every worker that handles it: after MAX_DELIVERIES it
    // is dead-lettered instead of delivered again.
    let poison = moved[2].id.clone();
    let mut deliveries = 3;
    loop {
        tokio::time::sleep(idle * 2).await;
        let worker = format!("w{deliveries}");
        let got = stream.next(&worker, 10, block).await.unwrap();
        if got.is_empty() {
            break;
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, poison);
        deliveries = got[0].deliveries;
        assert!(deliveries <= MAX_DELIVERIES, "{deliveries}");
    }
    assert_eq!(deliveries, MAX_DELIVERIES);
    assert_eq!(stream.backlog().await.unwrap(), 0);
    assert_eq!(stream.dead_letters().await.unwrap(), 1);
    let mut c = stream.connection();
    let dead: redis::streams::StreamRangeReply =
        redis::AsyncCommands::xrange_all(&mut c, DEAD_LETTERS)
            .await
            .unwrap();
    let letter = &dead.ids[0];
    assert_eq!(letter.get::<String>("id").unwrap(), poison);
    assert_eq!(letter.get::<String>("stream").unwrap(), STREAM);
    assert!(letter.get::<String>("frame").unwrap().contains(r#""s":2"#));
    assert_eq!(
        letter.get::<String>("reason").unwrap(),
        "no worker finished it"
    );

    // A dispatch that crashes the worker restarted under the same name each
    // time it is handled: the restarts count, and it ends as a dead letter.
    stream
        .publish(
            0,
            &session,
            false,
            r#"{"op":0,"t":"TYPING_START","s":9,"d":{}}"#,
        )
        .await
        .unwrap();
    let crasher = stream.next("c", 10, block).await.unwrap();
    assert_eq!(crasher.len(), 1);
    for restart in 2..=MAX_DELIVERIES {
        let own = stream.own_pending("c", 10).await.unwrap();
        assert_eq!(own.len(), 1);
        assert_eq!(own[0].deliveries, restart);
    }
    assert!(stream.own_pending("c", 10).await.unwrap().is_empty());
    assert_eq!(stream.dead_letters().await.unwrap(), 2);
    assert_eq!(stream.backlog().await.unwrap(), 0);
}
