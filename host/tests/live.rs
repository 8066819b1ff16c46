//! The live-events bus: in-process, and fanned out through Redis (the server at
//! `TEST_REDIS_URL`, default `redis://127.0.0.1:6379`; without one these tests
//! print `skipping: Redis not reachable at …`, or fail when `CI` is set), and
//! the `command_executed` event a command run through the platform publishes.

mod common;

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use townes::discord::{ExecutorConfig, LocalDiscord};
use townes::grants::Approval;
use townes::live::{CAPACITY, Live, LiveEvent, LiveKind};
use townes::marketplace::{Marketplace, Publisher};
use townes::platform::{Connection, connect};
use townes::runtime::{Runtime, RuntimeConfig};
use townes::store::Guild;
use townes_discord_sim::{SimConfig, Simulator, permissions};

const WAIT: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(500);

fn event(guild_id: u64, n: u64) -> LiveEvent {
    LiveEvent::new(guild_id, LiveKind::AuditLog, json!({"n": n}))
}

/// A guild id no other test (nor another process on the same Redis) uses.
fn unique_guild() -> u64 {
    rand::random::<u64>() >> 1
}

/// The next event about `guild_id` (others on the shared Redis channel are
/// skipped), or `None` if none comes within `wait`.
async fn next_for(
    rx: &mut Receiver<Arc<LiveEvent>>,
    guild_id: u64,
    wait: Duration,
) -> Option<LiveEvent> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => return None,
            Ok(Ok(event)) if event.guild_id == guild_id => return Some((*event).clone()),
            Ok(Ok(_)) => {}
            Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Err(RecvError::Closed)) => return None,
        }
    }
}

/// A bus on the test Redis, or `None` (after saying so) when it is unreachable
/// outside CI.
async fn redis_live() -> Option<Live> {
    let url = common::redis_url();
    match Live::with_redis(&url).await {
        Ok(live) => Some(live),
        Err(error) if common::in_ci() => panic!("Redis is required when CI is set: {error}"),
        Err(error) => {
            eprintln!(
                "skipping: Redis not reachable at {} ({error})",
                common::redact(&url)
            );
            None
        }
    }
}

#[tokio::test]
async fn local_events_reach_every_subscriber() {
    let live = Live::local();
    assert!(!live.uses_redis());
    assert_eq!(live.ping().await, Ok(()));
    let (mut first, mut second) = (live.subscribe(), live.subscribe());
    let sent = event(7, 1);
    live.publish(sent.clone());
    assert_eq!(*first.recv().await.unwrap(), sent);
    assert_eq!(*second.recv().await.unwrap(), sent);

    let local = event(7, 2);
    live.publish_local(local.clone());
    assert_eq!(*first.recv().await.unwrap(), local);
    // Clones share the bus.
    live.clone().publish(event(7, 3));
    assert_eq!(second.recv().await.unwrap().data, json!({"n": 2}));
    assert_eq!(second.recv().await.unwrap().data, json!({"n": 3}));
    assert!(matches!(first.try_recv(), Ok(e) if e.data == json!({"n": 3})));
    assert_eq!(first.try_recv().unwrap_err(), TryRecvError::Empty);

    // Nobody listening is not an error.
    drop((first, second));
    live.publish(event(7, 4));
}

/// A subscriber that stops reading holds at most `CAPACITY` events; it is then
/// told how many it missed and goes on from the oldest one kept.
#[tokio::test]
async fn a_lagging_subscriber_is_told_what_it_missed() {
    let live = Live::local();
    let mut slow = live.subscribe();
    let total = CAPACITY as u64 + 10;
    for n in 0..total {
        live.publish(event(1, n));
    }
    assert_eq!(slow.recv().await.unwrap_err(), RecvError::Lagged(10));
    assert_eq!(slow.recv().await.unwrap().data, json!({"n": 10}));
    let mut rest = 1;
    while slow.try_recv().is_ok() {
        rest += 1;
    }
    assert_eq!(rest, CAPACITY);
}

#[test]
fn events_carry_snowflakes_as_strings() {
    let sent = LiveEvent::new(
        9_007_199_254_740_993, // 2^53 + 1: a JavaScript number would round it
        LiveKind::CommandExecuted,
        json!({"user_id": "9007199254740993"}),
    );
    let json = serde_json::to_value(&sent).unwrap();
    assert_eq!(json["guild_id"], "9007199254740993");
    assert_eq!(json["kind"], "command_executed");
    assert!(json["at"].is_string());
    assert_eq!(serde_json::from_value::<LiveEvent>(json).unwrap(), sent);
}

/// Two processes on one Redis: what either publishes, both hear once; what one
/// publishes locally stays there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_fans_events_out_to_every_process_exactly_once() {
    let Some(gateway) = redis_live().await else {
        return;
    };
    let api = Live::with_redis(&common::redis_url()).await.unwrap();
    assert!(gateway.uses_redis() && api.uses_redis());
    assert_eq!(gateway.ping().await, Ok(()));
    assert_eq!(api.ping().await, Ok(()));
    let guild = unique_guild();
    let (mut at_gateway, mut at_api) = (gateway.subscribe(), api.subscribe());

    let sent = event(guild, 1);
    gateway.publish(sent.clone());
    assert_eq!(
        next_for(&mut at_gateway, guild, WAIT).await,
        Some(sent.clone())
    );
    assert_eq!(next_for(&mut at_api, guild, WAIT).await, Some(sent));
    let reply = event(guild, 2);
    api.publish(reply.clone());
    assert_eq!(
        next_for(&mut at_gateway, guild, WAIT).await,
        Some(reply.clone())
    );
    assert_eq!(next_for(&mut at_api, guild, WAIT).await, Some(reply));

    let local = event(guild, 3);
    api.publish_local(local.clone());
    assert_eq!(next_for(&mut at_api, guild, WAIT).await, Some(local));
    // Nothing was heard twice, and the local event never left the API process.
    assert_eq!(next_for(&mut at_gateway, guild, QUIET).await, None);
    assert_eq!(next_for(&mut at_api, guild, QUIET).await, None);
}

/// The connection to Redis drops (a TCP proxy in between cuts it): the bus
/// reconnects by itself and events flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_reconnects_after_the_connection_drops() {
    let Some(_reachable) = redis_live().await else {
        return;
    };
    let url = common::redis_url();
    let proxy = Proxy::start(upstream(&url)).await;
    let live = Live::with_redis(&through(&url, proxy.addr)).await.unwrap();
    let guild = unique_guild();
    let mut rx = live.subscribe();
    live.publish(event(guild, 0));
    assert_eq!(
        next_for(&mut rx, guild, WAIT).await.unwrap().data,
        json!({"n": 0})
    );

    proxy.cut();
    // Events published while it reconnects are lost; keep publishing until one
    // makes the round trip.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        n += 1;
        live.publish(event(guild, n));
        if next_for(&mut rx, guild, Duration::from_millis(200))
            .await
            .is_some()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event made it through Redis after the connection dropped"
        );
    }
    assert_eq!(live.ping().await, Ok(()));
}

#[tokio::test]
async fn a_bad_redis_url_fails_without_showing_the_password() {
    for url in [
        // Nothing listens on port 1.
        "redis://ada:hunter2@127.0.0.1:1/0",
        "redis://:hunter2@127.0.0.1:1",
        // Not a URL at all.
        "redis://ada:hunter2@[not-a-host",
        "ada:hunter2@somewhere",
    ] {
        let error = Live::with_redis(url).await.unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{url}: {error}");
        assert!(error.contains("***"), "{url}: {error}");
    }
}

/// A slash command and a prefix command run through the platform (against the
/// Discord simulator) each publish `command_executed`, ids as strings; chat
/// that names no command publishes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_run_through_the_platform_publishes_command_executed() {
    let (_, store, _guard) = common::sqlite().await;
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let ada = sim.create_user("ada");
    let bob = sim.create_user("bob");
    let alpha = sim.create_guild("Alpha", ada);
    let bot_role = sim.create_role(
        alpha.guild_id,
        "Townes",
        permissions::SEND_MESSAGES | permissions::VIEW_CHANNEL,
        5,
    );
    sim.give_role(alpha.guild_id, sim.bot_user_id(), bot_role);
    sim.member_join(alpha.guild_id, bob).await;
    let (guild, general) = (alpha.guild_id, alpha.general_channel_id);
    store
        .upsert_guild(&Guild::new(guild, "Alpha", ada))
        .await
        .unwrap();

    let data_dir = tempfile::tempdir().unwrap();
    let installer = Runtime::new(
        RuntimeConfig::new(data_dir.path()),
        store.clone(),
        Arc::new(LocalDiscord::new()),
    )
    .unwrap();
    let market = Marketplace::new(&installer, "test");
    let (_, manifest) = market
        .install(&common::component("hello"), &Publisher::Platform)
        .await
        .unwrap();
    market
        .enable(
            guild,
            "hello",
            None,
            Approval::everything_requested(&manifest.capabilities),
        )
        .await
        .unwrap();

    let live = Live::local();
    let mut events = live.subscribe();
    let running = connect(
        store.clone(),
        RuntimeConfig::new(data_dir.path()),
        Connection {
            executor: ExecutorConfig {
                backoff_base: Duration::from_millis(20),
                backoff_max: Duration::from_millis(200),
                ..ExecutorConfig::default()
            },
            live: live.clone(),
            ..Connection::new(sim.token(), Some(sim.base_url()))
        },
    )
    .await
    .unwrap();
    assert!(
        sim.wait_for_ready(1, WAIT).await,
        "the gateway never became ready"
    );
    // The platform hands out the bus it was given (the API server reads it).
    let mut via_platform = running.platform.live.subscribe();
    let deadline = tokio::time::Instant::now() + WAIT;
    while store.command_set_hash(guild).await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "commands were never registered"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let interaction = sim.slash(guild, general, bob, "hello", json!([])).await;
    sim.interaction_response(interaction.id, WAIT)
        .await
        .expect("no answer to /hello");
    let slash = next_for(&mut events, guild, WAIT)
        .await
        .expect("no live event for /hello");
    assert_eq!(slash.kind, LiveKind::CommandExecuted);
    assert_eq!(
        slash.data,
        json!({
            "command": "hello",
            "feature": "hello",
            "user_id": bob.to_string(),
            "channel_id": general.to_string(),
            "outcome": "ok",
            "source": "slash",
        })
    );
    assert_eq!(
        serde_json::to_value(&slash).unwrap()["guild_id"],
        Value::String(guild.to_string())
    );
    assert_eq!(
        next_for(&mut via_platform, guild, WAIT).await.as_ref(),
        Some(&slash)
    );

    sim.say(guild, general, bob, "just chatting").await;
    sim.say(guild, general, bob, "!hello").await;
    let prefix = next_for(&mut events, guild, WAIT)
        .await
        .expect("no live event for !hello");
    assert_eq!(prefix.data["command"], "hello");
    assert_eq!(prefix.data["source"], "prefix");
    assert_eq!(prefix.data["outcome"], "ok");
    assert_eq!(prefix.data["user_id"], bob.to_string());

    // A command no feature owns is refused, and told too.
    let interaction = sim
        .slash(guild, general, bob, "nothing-here", json!([]))
        .await;
    sim.interaction_response(interaction.id, WAIT).await;
    let unknown = next_for(&mut events, guild, WAIT)
        .await
        .expect("no live event for an unknown command");
    assert_eq!(unknown.data["outcome"], "refused");
    assert_eq!(unknown.data["feature"], Value::Null);
    assert_eq!(next_for(&mut events, guild, QUIET).await, None);

    running.shutdown(Duration::from_secs(5)).await.unwrap();
    sim.shutdown().await;
}

/// `host:port` of a Redis URL.
fn upstream(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap().to_string()
}

/// The URL with its `host:port` replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    url.replacen(&upstream(url), &addr.to_string(), 1)
}

/// A TCP proxy that can cut every connection it carries.
struct Proxy {
    addr: SocketAddr,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (generation, _) = tokio::sync::watch::channel(0);
        let cuts = generation.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { addr, generation }
    }

    /// Closes every connection open now; new ones are carried as before.
    fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}
