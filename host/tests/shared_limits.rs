//! Limits shared by several processes through one Redis (the server at
//! `TEST_REDIS_URL`, default `redis://127.0.0.1:6379`; without one these tests
//! print `skipping: Redis not reachable at …`, or fail when `CI` is set): command
//! cooldowns and the dashboard API's rate limits hold across processes, keys stay
//! bounded, and a Redis that goes away leaves each process its own limits. Also
//! the control plane's cache on Postgres seeing a cooldown changed by another
//! process. Each test writes under a key prefix of its own.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use townes::api::protect::RateLimiter;
use townes::api::{ApiConfig, ApiParts, ApiServer, ApiState};
use townes::commands::policy::{Cooldowns, Refusal};
use townes::discord::LocalDiscord;
use townes::live::Live;
use townes::runtime::{Runtime, RuntimeConfig};
use townes::shared_limits::{SharedLimits, Verdict};
use townes::store::{Guild, Store};

const TEN_SECONDS: Duration = Duration::from_secs(10);

/// A key prefix no other test (nor another run on the same Redis) uses.
fn unique_prefix() -> String {
    format!("townes-test-{:016x}", rand::random::<u64>())
}

/// Shared limits on `url` under `prefix`, or `None` (after saying so) when
/// Redis is unreachable outside CI.
async fn limits_on(url: &str, prefix: &str) -> Option<SharedLimits> {
    match SharedLimits::with_redis_prefix(url, prefix).await {
        Ok(limits) => Some(limits),
        Err(error) if common::in_ci() => panic!("Redis is required when CI is set: {error}"),
        Err(error) => {
            eprintln!(
                "skipping: Redis not reachable at {} ({error})",
                common::redact(url)
            );
            None
        }
    }
}

/// Two processes' shared limits on the test Redis, under one fresh prefix.
async fn two_processes() -> Option<(SharedLimits, SharedLimits, String)> {
    let (url, prefix) = (common::redis_url(), unique_prefix());
    let a = limits_on(&url, &prefix).await?;
    let b = limits_on(&url, &prefix).await?;
    Some((a, b, prefix))
}

/// A plain connection to the test Redis, to look at what the limits wrote.
async fn inspect() -> redis::aio::MultiplexedConnection {
    redis::Client::open(common::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key under `prefix` with its remaining time to live in ms.
async fn keys_under(prefix: &str) -> Vec<(String, i64)> {
    let mut redis = inspect().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut out = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        out.push((key, ttl));
    }
    out
}

#[tokio::test]
async fn a_cooldown_started_in_one_process_holds_in_another() {
    let Some((a, b, prefix)) = two_processes().await else {
        return;
    };
    let (here, there) = (Cooldowns::new(a), Cooldowns::new(b));
    let (guild, user) = (rand::random::<u64>() >> 1, 42);
    here.start_now(guild, user, "rank", TEN_SECONDS)
        .await
        .unwrap();
    let refused = there
        .start_now(guild, user, "rank", TEN_SECONDS)
        .await
        .unwrap_err();
    assert_eq!(refused, Refusal::Cooldown { seconds_left: 10 });
    assert_eq!(
        refused.to_string(),
        "Please wait 10 seconds before using this command again."
    );
    // Not another member's, guild's or command's.
    there
        .start_now(guild, user + 1, "rank", TEN_SECONDS)
        .await
        .unwrap();
    there
        .start_now(guild + 1, user, "rank", TEN_SECONDS)
        .await
        .unwrap();
    there
        .start_now(guild, user, "top", TEN_SECONDS)
        .await
        .unwrap();

    // Counted down by Redis's clock, rounded up.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        here.start_now(guild, user, "rank", TEN_SECONDS).await,
        Err(Refusal::Cooldown { seconds_left: 9 })
    );
    // A run without a cooldown is recorded too, so one configured later
    // applies at once, in every process.
    here.start_now(guild, user, "daily", Duration::ZERO)
        .await
        .unwrap();
    assert!(
        there
            .start_now(guild, user, "daily", TEN_SECONDS)
            .await
            .is_err()
    );
    // Over once the period has passed.
    let second = Duration::from_secs(1);
    here.start_now(guild, user, "ping", second).await.unwrap();
    assert!(there.start_now(guild, user, "ping", second).await.is_err());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    there.start_now(guild, user, "ping", second).await.unwrap();

    // Every run is remembered for a day, not longer.
    for (key, ttl) in keys_under(&prefix).await {
        assert!((1..=86_400_000).contains(&ttl), "{key} expires in {ttl} ms");
    }
}

/// Of many simultaneous runs spread over two processes, one starts the cooldown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_simultaneous_runs_in_two_processes_one_starts() {
    let Some((a, b, _)) = two_processes().await else {
        return;
    };
    let processes = [Arc::new(Cooldowns::new(a)), Arc::new(Cooldowns::new(b))];
    let runs: Vec<_> = (0..32)
        .map(|i| {
            let cooldowns = processes[i % 2].clone();
            tokio::spawn(async move { cooldowns.start_now(1, 42, "rank", TEN_SECONDS).await })
        })
        .collect();
    let mut started = 0;
    for run in runs {
        started += usize::from(run.await.unwrap().is_ok());
    }
    assert_eq!(started, 1);
}

/// An API server on `store` with `limits`, as one `townes api` process.
async fn api_server(
    store: &Store,
    data: &std::path::Path,
    config: &ApiConfig,
    limits: SharedLimits,
) -> ApiServer {
    let runtime = Runtime::new(
        RuntimeConfig::new(data),
        store.clone(),
        Arc::new(LocalDiscord::new()),
    )
    .unwrap()
    .with_shared_limits(limits);
    let parts = ApiParts::new(Arc::new(runtime), Live::local());
    ApiServer::start(ApiState::new(config.clone(), parts).unwrap())
        .await
        .unwrap()
}

/// GET `path` on `server` with an optional bearer key: the status and the
/// `Retry-After` header, if any.
async fn get(server: &ApiServer, path: &str, key: Option<&str>) -> (u16, Option<u64>) {
    let mut request = reqwest::Client::new().get(format!("http://{}{path}", server.addr));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let reply = request.send().await.unwrap();
    let retry = reply
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (reply.status().as_u16(), retry)
}

/// `n` requests alternating between the two servers: their statuses, and
/// every `Retry-After` (each must be within one interval of the quota).
async fn alternate(
    servers: &[ApiServer; 2],
    path: &str,
    key: Option<&str>,
    n: usize,
    per_minute: u64,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        let (status, retry) = get(&servers[i % 2], path, key).await;
        if status == 429 {
            let retry = retry.expect("a 429 says when to retry");
            assert!((1..=60 / per_minute).contains(&retry), "{retry}");
        } else {
            assert_eq!(retry, None);
        }
        statuses.push(status);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_servers_share_the_per_ip_limit() {
    let Some((a, b, _)) = two_processes().await else {
        return;
    };
    let (_, store, _guard) = common::sqlite().await;
    let config = ApiConfig {
        rate_limit_ip: 6,
        ..ApiConfig::local()
    };
    let data = tempfile::tempdir().unwrap();
    let servers = [
        api_server(&store, data.path(), &config, a).await,
        api_server(&store, data.path(), &config, b).await,
    ];
    // Unauthenticated: 401 until the IP's allowance is spent, on either server.
    let statuses = alternate(&servers, "/me", None, 9, 6).await;
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 429, 429, 429]);
    // Probes are never limited.
    assert_eq!(get(&servers[0], "/healthz", None).await.0, 200);
    for server in servers {
        server.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_servers_share_the_per_caller_limit() {
    let Some((a, b, _)) = two_processes().await else {
        return;
    };
    let (_, store, _guard) = common::sqlite().await;
    let tenant = store.create_tenant(7, Some("acme")).await.unwrap();
    let (_, key) = townes::api::auth::issue_api_key(&store, &tenant.id, "ci", "test".into())
        .await
        .unwrap();
    let (_, other) = townes::api::auth::issue_api_key(&store, &tenant.id, "other", "test".into())
        .await
        .unwrap();
    let config = ApiConfig {
        rate_limit_ip: 1_000,
        rate_limit_key: 4,
        ..ApiConfig::local()
    };
    let data = tempfile::tempdir().unwrap();
    let servers = [
        api_server(&store, data.path(), &config, a).await,
        api_server(&store, data.path(), &config, b).await,
    ];
    let statuses = alternate(&servers, "/me", Some(&key), 7, 4).await;
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429]);
    // Another key of the same tenant has its own allowance.
    assert_eq!(get(&servers[1], "/me", Some(&other)).await.0, 200);
    for server in servers {
        server.shutdown().await.unwrap();
    }
}

/// Whatever a caller sends, each limited subject is one short key that
/// expires: a rate-limit key once its allowance is full again (at most a
/// minute), a cooldown's after a day.
#[tokio::test]
async fn hostile_keys_stay_short_and_expire() {
    let Some((limits, _, prefix)) = two_processes().await else {
        return;
    };
    let huge = "9".repeat(64 << 10);
    for i in 0..100 {
        let caller = format!("{huge}{i}\r\n*1\r\n$8\r\nFLUSHALL\r\n");
        assert_eq!(limits.take("caller", &caller, 6).await, Verdict::Pass);
        let command = format!("{i}{huge}");
        assert_eq!(
            limits
                .cooldown(1, u64::MAX, &command, TEN_SECONDS, TEN_SECONDS)
                .await,
            Verdict::Pass
        );
    }
    let keys = keys_under(&prefix).await;
    assert_eq!(keys.len(), 200, "one key per subject");
    for (key, ttl) in &keys {
        assert!(key.len() <= prefix.len() + 80, "{key}");
        // At 6 a minute, a bucket is full again 10 s after its one request.
        assert!((1..=10_000).contains(ttl), "{key} expires in {ttl} ms");
    }
    // At 600 a minute a request is paid back in 100 ms: then the key is gone,
    // exactly like one never seen.
    assert_eq!(limits.take("ip", "192.0.2.50", 600).await, Verdict::Pass);
    let bucket = format!("{prefix}:rl:ip:192.0.2.50");
    let ttl = |keys: Vec<(String, i64)>| keys.into_iter().find(|(key, _)| *key == bucket);
    assert!(matches!(ttl(keys_under(&prefix).await), Some((_, 1..=100))));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ttl(keys_under(&prefix).await), None);
    // The GCRA allows a minute's allowance at once, then one per interval.
    for _ in 0..3 {
        assert_eq!(limits.take("ip", "192.0.2.1", 3).await, Verdict::Pass);
    }
    match limits.take("ip", "192.0.2.1", 3).await {
        Verdict::Wait(wait) => assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        ),
        other => panic!("expected a wait, got {other:?}"),
    }
}

/// A TCP relay to the test Redis that can be cut, as if Redis went away.
struct Relay {
    addr: SocketAddr,
    target: String,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Relay {
    async fn start(target: String, addr: SocketAddr) -> Relay {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = {
            let (tasks, target) = (tasks.clone(), target.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let target = target.clone();
                    let relay = tokio::spawn(async move {
                        let mut server = TcpStream::connect(target).await.unwrap();
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    });
                    tasks.lock().unwrap().push(relay.abort_handle());
                }
            })
        };
        tasks.lock().unwrap().push(accept.abort_handle());
        Relay {
            addr,
            target,
            tasks,
        }
    }

    /// Closes every connection and stops listening.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// Where the test Redis listens (`host:port`).
fn redis_addr(url: &str) -> String {
    let url = reqwest::Url::parse(url).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(6379))
}

/// The test Redis URL pointing at `addr` instead.
fn through(url: &str, addr: SocketAddr) -> String {
    let mut url = reqwest::Url::parse(url).unwrap();
    url.set_host(Some(&addr.ip().to_string())).unwrap();
    url.set_port(Some(addr.port())).unwrap();
    url.to_string()
}

/// Redis going away leaves every process its own limits (no request waits
/// on Redis, none is refused for it), and they are shared again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_goes_away_each_process_keeps_its_own_limits() {
    let url = common::redis_url();
    let prefix = unique_prefix();
    let Some(direct) = limits_on(&url, &prefix).await else {
        return;
    };
    let relay = Relay::start(redis_addr(&url), "127.0.0.1:0".parse().unwrap()).await;
    let relayed = limits_on(&through(&url, relay.addr), &prefix)
        .await
        .unwrap();
    let config = ApiConfig {
        rate_limit_ip: 2,
        ..ApiConfig::local()
    };
    let (here, there) = (
        RateLimiter::shared(&config, relayed.clone()),
        RateLimiter::shared(&config, direct),
    );
    let client: IpAddr = "192.0.2.7".parse().unwrap();
    here.check_ip(client).await.unwrap();
    there.check_ip(client).await.unwrap();
    assert!(here.check_ip(client).await.is_err(), "shared while up");

    relay.cut();
    let started = std::time::Instant::now();
    // This process's own allowance now, fresh: two, then refused.
    here.check_ip(client).await.unwrap();
    here.check_ip(client).await.unwrap();
    assert!(
        here.check_ip(client).await.is_err(),
        "the local limit holds"
    );
    let cooldowns = Cooldowns::new(relayed.clone());
    cooldowns
        .start_now(1, 42, "rank", TEN_SECONDS)
        .await
        .unwrap();
    assert!(
        cooldowns
            .start_now(1, 42, "rank", TEN_SECONDS)
            .await
            .is_err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "checks did not wait on Redis: {:?}",
        started.elapsed()
    );
    let metrics = townes::metrics::metrics().render();
    assert!(
        metrics.contains("townes_shared_limit_fallbacks_total{limit=\"ip\"}"),
        "{metrics}"
    );

    // Back: after a moment the checks go to Redis again.
    let relay = Relay::start(relay.target.clone(), relay.addr).await;
    let deadline = tokio::time::Instant::now() + TEN_SECONDS;
    while relayed.take("ip", "192.0.2.8", 1_000).await == Verdict::Local {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Redis not used again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay.cut();
}

/// The control plane's cache is per process but never stale: a cooldown set
/// through one store on Postgres is used by another store's cached policy
/// within a second (`LISTEN`/`NOTIFY`; `control_plane.rs` covers features and
/// grants through the runtime on both backends).
#[tokio::test]
async fn a_cooldown_set_through_one_store_is_seen_by_another_within_a_second() {
    let (_, a, guard) = match common::postgres().await {
        Ok(backend) => backend,
        Err(reason) if common::in_ci() => panic!("Postgres is required when CI is set: {reason}"),
        Err(reason) => return eprintln!("skipping Postgres: {reason}"),
    };
    let b = Store::connect(guard.url()).await.unwrap();
    a.upsert_guild(&Guild::new(5, "g", 6)).await.unwrap();
    // Warm B's cache first.
    assert_eq!(b.guild_policy(5).await.unwrap().cooldown("rank"), None);
    a.set_command_cooldown(5, "rank", 30).await.unwrap();
    let started = std::time::Instant::now();
    while b.guild_policy(5).await.unwrap().cooldown("rank") != Some(30) {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "store B still serves the old policy"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("store B saw the change after {:?}", started.elapsed());
}
