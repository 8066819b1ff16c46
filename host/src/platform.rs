//! Everything connected to Discord shares one [`Platform`]: the sandbox, the
//! command router, the Discord port and the executor behind it.

use crate::commands::{Commands, registry};
use crate::community_health::ActivityMeter;
pub use crate::discord::CacheSlot;
use crate::discord::{
    DEFAULT_BASE_URL, Discord, Executor, ExecutorConfig, RemoteDiscord, RestClient,
};
use crate::gateway::{self, Intents, Shards};
use crate::live::Live;
use crate::metrics::metrics;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::shared_limits::SharedLimits;
use crate::store::Store;
use serenity::all::GatewayIntents;
use serenity::gateway::{ConnectionStage, ShardManager};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub struct Platform {
    pub runtime: Arc<Runtime>,
    pub commands: Commands,
    /// Discord as capabilities see it (cache for reads, the executor for writes).
    pub discord: Arc<dyn Discord>,
    pub executor: Executor,
    pub application_id: u64,
    pub bot_user_id: u64,
    /// How long an interaction may run before it is deferred (Discord allows 3 s
    /// for the first response); zero defers every one.
    pub defer_after: Duration,
    /// Gateway dispatches serenity could not parse (it drops them silently).
    pub unknown_dispatches: AtomicU64,
    /// The gateway's cache of guilds, once connected (shared with the Discord port).
    pub cache: CacheSlot,
    /// Live events for the dashboard (the same bus the command router publishes
    /// `command_executed` to); hand `live.clone()` to the API server.
    pub live: Live,
    /// The gateway's shard manager, once connected: heartbeat latencies for the
    /// metrics. Replaced when the gateway reconnects with other intents.
    shard_manager: RwLock<Option<Arc<ShardManager>>>,
    /// The intents the enabled features need, those the shards run with and
    /// those Discord refused.
    pub intents: Intents,
    /// What members do in each guild, counted for the community health score
    /// and written by [`ActivityMeter::flush`].
    pub activity: ActivityMeter,
}

/// Time left for a feature within Discord's 3-second window, with room for the
/// callback's own round trip.
pub const DEFER_AFTER: Duration = Duration::from_millis(2_200);

impl Platform {
    pub fn new(
        runtime: Arc<Runtime>,
        discord: Arc<dyn Discord>,
        executor: Executor,
        application_id: u64,
        bot_user_id: u64,
        cache: CacheSlot,
        live: Live,
    ) -> Platform {
        Platform {
            commands: Commands::new(runtime.clone(), discord.clone(), live.clone()),
            runtime,
            discord,
            executor,
            application_id,
            bot_user_id,
            defer_after: DEFER_AFTER,
            unknown_dispatches: AtomicU64::new(0),
            cache,
            live,
            shard_manager: RwLock::default(),
            intents: Intents::default(),
            activity: ActivityMeter::default(),
        }
    }

    /// Writes the activity counted for the community health score since the
    /// last flush; on an error the counts are kept for the next one.
    pub async fn flush_activity(&self) -> anyhow::Result<usize> {
        let store = self.runtime.store();
        let today = chrono::Utc::now().date_naive();
        Ok(self.activity.flush(store, today).await?)
    }

    pub fn shard_manager(&self) -> Option<Arc<ShardManager>> {
        self.shard_manager
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_shard_manager(&self, manager: Arc<ShardManager>) {
        *self
            .shard_manager
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(manager);
    }

    /// How many of this process's shards are connected, of how many; `None`
    /// before the gateway started.
    pub async fn shards_connected(&self) -> Option<(usize, usize)> {
        let manager = self.shard_manager()?;
        let runners = manager.runners.lock().await;
        let connected = runners
            .values()
            .filter(|runner| runner.stage == ConnectionStage::Connected)
            .count();
        Some((connected, runners.len()))
    }

    /// Sets the metrics that mirror state held elsewhere: the executor's queue
    /// depth and counters, each shard's heartbeat latency and how many are
    /// connected, and today's AI tokens. Call before rendering a scrape.
    pub async fn refresh_metrics(&self) {
        let metrics = metrics();
        metrics.set_queue_depth(self.executor.queue_depth() as u64);
        metrics.set_executor_stats(&self.executor.stats());
        if let Some(manager) = self.shard_manager() {
            let latencies: Vec<(u32, Option<Duration>)> = manager
                .runners
                .lock()
                .await
                .iter()
                .map(|(id, runner)| (id.0, runner.latency))
                .collect();
            metrics.set_shard_latencies(latencies);
        }
        if let Some((ready, _)) = self.shards_connected().await {
            metrics.set_shards_ready(ready);
        }
        match self
            .runtime
            .store()
            .ai_tokens_on(chrono::Utc::now().date_naive())
            .await
        {
            Ok(tokens) => metrics.set_ai_tokens_today(tokens),
            Err(error) => tracing::warn!(%error, "metrics: cannot read today's AI tokens"),
        }
    }
}

/// How to reach Discord. `Debug` leaves the token out.
#[derive(Clone)]
pub struct Connection {
    pub token: String,
    /// A REST proxy or the simulator; `None` for discord.com.
    pub api_base: Option<String>,
    pub shards: Shards,
    pub executor: ExecutorConfig,
    /// See [`Platform::defer_after`].
    pub defer_after: Duration,
    /// See [`Platform::live`].
    pub live: Live,
    /// What the command router (and an API built on this platform's runtime)
    /// shares with other processes: see [`Runtime::shared_limits`].
    pub limits: SharedLimits,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("token", &"<redacted>")
            .field("api_base", &self.api_base)
            .field("shards", &self.shards)
            .field("executor", &self.executor)
            .field("defer_after", &self.defer_after)
            .field("live", &self.live)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Connection {
    /// All shards, the executor's defaults, deferring after [`DEFER_AFTER`],
    /// live events and limits in this process only.
    pub fn new(token: impl Into<String>, api_base: Option<String>) -> Connection {
        Connection {
            token: token.into(),
            api_base,
            shards: Shards::Auto,
            executor: ExecutorConfig::default(),
            defer_after: DEFER_AFTER,
            live: Live::local(),
            limits: SharedLimits::local(),
        }
    }
}

/// A platform connected to Discord: the gateway running, commands kept
/// registered. Stop it with [`Running::shutdown`].
pub struct Running {
    pub platform: Arc<Platform>,
    stop: Arc<Notify>,
    gateway: JoinHandle<anyhow::Result<()>>,
    commands: JoinHandle<()>,
}

/// How often guilds whose features or settings changed (from any process: the
/// CLI, the API) get their slash commands re-registered and the intents their
/// features need asked for.
const COMMAND_SYNC_EVERY: Duration = Duration::from_secs(2);

/// How long a guild's new commands wait for the gateway to reconnect with
/// the intents their features need.
const INTENTS_PATIENCE: Duration = Duration::from_secs(15);

/// Where a platform's events come from.
pub enum Events {
    /// Its own shards, through serenity (`townes serve`).
    Gateway,
    /// The event stream gateway processes relay into (`townes worker`), read
    /// as this consumer of the workers' group.
    Stream {
        stream: crate::event_stream::EventStream,
        consumer: String,
    },
}

/// Connects to Discord (or anything speaking its protocols) and starts serving:
/// the executor resumes whatever the outbox holds, then the gateway connects.
pub async fn connect(
    store: Store,
    config: RuntimeConfig,
    connection: Connection,
) -> anyhow::Result<Running> {
    connect_to(store, config, connection, Events::Gateway).await
}

/// [`connect`], taking events from `events`.
pub async fn connect_to(
    store: Store,
    mut config: RuntimeConfig,
    connection: Connection,
    events: Events,
) -> anyhow::Result<Running> {
    let http = gateway::http(&connection.token, connection.api_base.as_deref());
    let me = startup_call("GET /users/@me", || http.get_current_user()).await?;
    let application_id = startup_call("GET /oauth2/applications/@me", || {
        http.get_current_application_info()
    })
    .await?
    .id
    .get();
    config.bot_user_id = me.id.get();
    let base = connection.api_base.as_deref().unwrap_or(DEFAULT_BASE_URL);
    let rest = RestClient::new(base, &connection.token)?;
    let executor = Executor::start(store.clone(), rest, connection.executor.clone()).await?;
    let cache = CacheSlot::default();
    let discord: Arc<dyn Discord> = Arc::new(
        RemoteDiscord::new(executor.clone())
            .with_cache_slot(cache.clone())
            .with_application_id(application_id),
    );
    let runtime = Arc::new(
        Runtime::new(config, store, discord.clone())?
            .with_live(connection.live.clone())
            .with_shared_limits(connection.limits.clone()),
    );
    let mut platform = Platform::new(
        runtime.clone(),
        discord,
        executor,
        application_id,
        me.id.get(),
        cache,
        connection.live.clone(),
    );
    platform.defer_after = connection.defer_after;
    let platform = Arc::new(platform);
    platform.intents.want(gateway::intents(&runtime).await?);
    let stop = Arc::new(Notify::new());
    let own_shards = matches!(events, Events::Gateway);
    let gateway = {
        let (platform, stop) = (platform.clone(), stop.clone());
        match events {
            Events::Gateway => {
                let make_http =
                    move || gateway::http(&connection.token, connection.api_base.as_deref());
                tokio::spawn(async move {
                    gateway::run(platform, make_http, connection.shards, stop.notified()).await
                })
            }
            Events::Stream { stream, consumer } => tokio::spawn(async move {
                gateway::consume(platform, stream, consumer, stop.notified()).await
            }),
        }
    };
    let commands = tokio::spawn(follow_guild_changes(platform.clone(), own_shards));
    Ok(Running {
        platform,
        stop,
        gateway,
        commands,
    })
}

/// How long start-up keeps retrying Discord while it rate limits or fails.
const STARTUP_PATIENCE: Duration = Duration::from_secs(120);

/// A call made before the executor runs, retried while Discord answers 429 or
/// 5xx or cannot be reached (a restart during a rate-limit storm must not fail);
/// a refusal (a bad token) ends start-up with a hint.
pub async fn startup_call<T, F: Future<Output = serenity::Result<T>>>(
    what: &str,
    call: impl Fn() -> F,
) -> anyhow::Result<T> {
    use serenity::http::HttpError;
    let give_up = tokio::time::Instant::now() + STARTUP_PATIENCE;
    let mut delay = Duration::from_millis(250);
    loop {
        let error = match call().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let retry = match &error {
            serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
                let status = response.status_code;
                if status.as_u16() == 401 {
                    anyhow::bail!("Discord refused the bot token ({what}): check DISCORD_TOKEN");
                }
                status.as_u16() == 429 || status.is_server_error()
            }
            serenity::Error::Http(HttpError::Request(_)) => true,
            _ => false,
        };
        if !retry || tokio::time::Instant::now() + delay > give_up {
            return Err(anyhow::Error::new(error).context(format!("{what} failed")));
        }
        tracing::warn!(%error, "{what} failed; retrying in {delay:?}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Re-registers the slash commands of every guild whose features or settings
/// changed since the last look, and widens the gateway's intents when those
/// features need more (the gateway reconnects with them). Without
/// `own_shards` (a worker), the gateway processes are configured with the
/// intents to ask for, so nothing waits for them.
async fn follow_guild_changes(platform: Arc<Platform>, own_shards: bool) {
    let mut since = chrono::Utc::now();
    let mut tick = tokio::time::interval(COMMAND_SYNC_EVERY);
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        let store = platform.runtime.store();
        let changed = match store.guilds_changed_since(since).await {
            Ok(changed) => changed,
            Err(error) => {
                tracing::warn!(%error, "could not look for changed guilds");
                continue;
            }
        };
        // Only move on once every changed guild is in sync, so a failure retries.
        let mut all_synced = true;
        let mut needed = GatewayIntents::empty();
        for &guild_id in &changed {
            match gateway::guild_intents(&platform.runtime, guild_id).await {
                Ok(intents) => needed |= intents,
                Err(error) => {
                    tracing::warn!(guild = guild_id, %error, "could not read the intents the guild's features need; retrying");
                    all_synced = false;
                }
            }
        }
        // New commands appear once the shards receive what their features
        // need (one run in a reconnect's gap is lost): one wait for them all.
        platform.intents.want(needed);
        if own_shards
            && !changed.is_empty()
            && !platform.intents.serving(needed, INTENTS_PATIENCE).await
        {
            tracing::warn!(
                "the gateway is not running with the intents the changed guilds' features need yet; registering their commands anyway"
            );
        }
        for guild_id in changed {
            if let Err(error) =
                registry::sync(&platform.runtime, platform.discord.as_ref(), guild_id).await
            {
                tracing::warn!(guild = guild_id, %error, "could not register the guild's commands; retrying");
                all_synced = false;
            }
        }
        if all_synced {
            since = now;
        }
    }
}

impl Running {
    /// Closes the gateway, lets in-flight Discord calls finish within `drain`
    /// (what is left stays queued for the next start) and writes usage and
    /// activity counters.
    pub async fn shutdown(self, drain: Duration) -> anyhow::Result<()> {
        self.commands.abort();
        self.stop.notify_one();
        match tokio::time::timeout(Duration::from_secs(10), self.gateway).await {
            Ok(Ok(Err(error))) => tracing::warn!(%error, "the gateway stopped with an error"),
            Err(_) => tracing::warn!("the gateway did not close within 10 s"),
            _ => {}
        }
        self.platform.executor.shutdown(drain).await;
        self.platform.runtime.flush_usage().await?;
        self.platform.flush_activity().await?;
        Ok(())
    }

    /// See [`Platform::flush_activity`].
    pub async fn flush_activity(&self) -> anyhow::Result<usize> {
        self.platform.flush_activity().await
    }

    /// Whether the gateway task ended (it only does on a fatal error or shutdown).
    pub fn gateway_finished(&self) -> bool {
        self.gateway.is_finished()
    }
}

#[cfg(test)]
mod tests {
    use super::Connection;

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let connection = Connection::new("secret-token-value", None);
        assert!(!format!("{connection:?}").contains("secret-token-value"));
    }
}
