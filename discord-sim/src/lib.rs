//! A Discord simulator for testing bots offline.
//!
//! It speaks Discord's real wire protocols — gateway v10 (JSON over WebSocket) and
//! the REST API v10, plus HTTP interactions signed with Ed25519 — so the host connects
//! to it with serenity and its own REST executor exactly as it connects to Discord.
//! Tests build a world (guilds, roles, channels, users), make users act (say, react,
//! run slash commands, click buttons), inject faults (429s, 5xx, reconnects, invalid
//! sessions) and then observe what the bot did (REST requests, messages, roles,
//! interaction responses).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use townes_discord_sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::default()).await?;
//! let owner = sim.create_user("alice");
//! let g = sim.create_guild("Test", owner);
//! // point serenity at sim.base_url() with token sim.token(), then:
//! sim.say(g.guild_id, g.general_channel_id, owner, "!ping").await;
//! # Ok(()) }
//! ```

#![recursion_limit = "256"]

mod actions;
mod error;
mod faults;
mod gateway;
mod ids;
mod interactions;
mod messages;
mod oauth;
mod payloads;
mod ratelimits;
mod recorder;
mod rest;
mod state;

pub use gateway::intents;
pub use interactions::Forgery;
pub use recorder::Recorded;
/// Discord permission bits, for building worlds in tests.
pub use state::perms as permissions;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use state::{MessageRec, World};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// READY's `application.flags`: GATEWAY_GUILD_MEMBERS_LIMITED |
/// GATEWAY_MESSAGE_CONTENT_LIMITED | APPLICATION_COMMAND_BADGE, what an unverified
/// bot with both privileged intents enabled has.
pub(crate) const APPLICATION_FLAGS: u64 = (1 << 15) | (1 << 19) | (1 << 23);

/// How the simulator is set up. `Default` gives a single-shard bot on a free
/// local port.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free one.
    pub addr: SocketAddr,
    /// The bot token, without `Bot `.
    pub token: String,
    pub application_id: u64,
    pub bot_user_id: u64,
    pub bot_name: String,
    /// The recommended shard count `GET /gateway/bot` reports.
    pub shards: u32,
    pub heartbeat_interval_ms: u64,
    /// How long the bot has to answer an interaction; a later callback gets 404
    /// 10062 "Unknown interaction", as on Discord (3 s).
    pub interaction_window: Duration,
    /// The OAuth2 client secret of the simulated application (its client id is
    /// `application_id`).
    pub oauth_client_secret: String,
    /// Requests each rate-limit bucket (route × major parameter) allows per
    /// `route_reset`; one more is a 429. Discord's are tighter (5 messages per 5 s
    /// per channel); the default stays out of the way of tests not about limits.
    pub route_limit: u32,
    pub route_reset: Duration,
    /// Requests per second over every route before a global 429 (Discord: 50);
    /// `None` for no global limit.
    pub global_limit: Option<u32>,
    /// The privileged intents (members, presences, message content) switched
    /// on for the application in the developer portal; an IDENTIFY asking for
    /// another is closed with 4014 "Disallowed intent(s)", as on Discord.
    pub privileged_intents: u64,
    /// Ids handed out, in order, before any new one is minted: a world an
    /// earlier run built, rebuilt with the same ids by making the same calls
    /// in the same order (the offline playground keeps its guild and members
    /// across runs this way). Each must be a snowflake from the past.
    pub first_ids: Vec<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: "sim-token".into(),
            application_id: 1_100_000_000_000_000_001,
            bot_user_id: 1_100_000_000_000_000_001,
            bot_name: "TownesBot".into(),
            shards: 1,
            heartbeat_interval_ms: 41_250,
            interaction_window: Duration::from_secs(3),
            oauth_client_secret: "sim-client-secret".into(),
            route_limit: 50,
            route_reset: Duration::from_secs(1),
            global_limit: None,
            privileged_intents: gateway::intents::PRIVILEGED,
            first_ids: Vec::new(),
        }
    }
}

/// What `create_guild` made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuildSetup {
    pub guild_id: u64,
    pub everyone_role_id: u64,
    pub general_channel_id: u64,
    pub bot_role_id: u64,
}

/// An interaction a simulated user started.
#[derive(Clone, Debug)]
pub struct Interaction {
    pub id: u64,
    pub token: String,
}

/// What the bot answered to an interaction.
#[derive(Clone, Debug)]
pub struct InteractionResponse {
    /// 4 message, 5 deferred message, 6 deferred update, 7 update, 9 modal.
    pub kind: u8,
    pub data: Value,
    /// Bodies of `PATCH …/messages/@original`, in order.
    pub edits: Vec<Value>,
    /// Bodies of followup messages, in order.
    pub followups: Vec<Value>,
}

/// A message as a test sees it.
#[derive(Clone, Debug)]
pub struct SimMessage {
    pub id: u64,
    pub channel_id: u64,
    pub author_id: u64,
    pub content: String,
    pub embeds: Vec<Value>,
    pub components: Vec<Value>,
    pub nonce: Option<String>,
    pub reply_to: Option<u64>,
    pub allowed_mentions: Option<Value>,
}

/// Gateway counters.
#[derive(Clone, Debug, Default)]
pub struct GatewayStats {
    pub identifies: u32,
    pub resumes: u32,
    pub heartbeats: u32,
    /// Shard ids that are connected and have received READY (or RESUMED) and their
    /// GUILD_CREATEs, sorted.
    pub ready_shards: Vec<u32>,
    /// The intents each of those sessions asked for, in shard order.
    pub ready_intents: Vec<u64>,
}

/// A running simulator. Cheap to clone; all clones share one world.
#[derive(Clone)]
pub struct Simulator(Arc<Inner>);

pub(crate) struct Inner {
    config: SimConfig,
    base_url: String,
    world: Mutex<World>,
    ids: ids::Snowflakes,
    recorder: recorder::Recorder,
    faults: faults::Faults,
    limits: ratelimits::Limits,
    /// OAuth2 codes and tokens.
    oauth: oauth::Store,
    gateway: gateway::Hub,
    /// Woken whenever messages or interaction responses change, for the `wait_*`s.
    changed: Notify,
    signing_key: SigningKey,
    /// Where interactions go instead of the gateway, once set.
    interactions_url: Mutex<Option<String>>,
    http: reqwest::Client,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Simulator {
    /// Binds `config.addr` and serves REST and the gateway in a background task.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let world = World {
            bot_id: config.bot_user_id,
            application_id: config.application_id,
            ..World::default()
        };
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let http = reqwest::Client::builder()
            .timeout(config.interaction_window)
            .build()
            .map_err(std::io::Error::other)?;
        let limits =
            ratelimits::Limits::new(config.route_limit, config.route_reset, config.global_limit);
        let ids = ids::Snowflakes::starting_with(config.first_ids.clone());
        let sim = Simulator(Arc::new(Inner {
            gateway: gateway::Hub::new(format!("ws://{addr}/gateway")),
            limits,
            config,
            base_url,
            world: Mutex::new(world),
            ids,
            recorder: recorder::Recorder::default(),
            faults: faults::Faults::default(),
            oauth: oauth::Store::default(),
            changed: Notify::new(),
            signing_key: SigningKey::from_bytes(&ids::random_bytes::<32>()),
            interactions_url: Mutex::new(None),
            http,
            shutdown,
            server: Mutex::new(None),
        }));
        sim.add_bot_user();
        let app = rest::router(sim.clone());
        let mut stop = sim.0.shutdown.subscribe();
        let handle = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "discord simulator stopped serving");
            }
        });
        *sim.0.server.lock().expect("server") = Some(handle);
        tracing::info!(url = %sim.0.base_url, "discord simulator listening");
        Ok(sim)
    }

    /// `http://127.0.0.1:PORT`; REST lives under `{base_url}/api/v10`.
    pub fn base_url(&self) -> String {
        self.0.base_url.clone()
    }

    pub fn token(&self) -> String {
        self.0.config.token.clone()
    }

    pub fn application_id(&self) -> u64 {
        self.0.config.application_id
    }

    pub fn bot_user_id(&self) -> u64 {
        self.0.config.bot_user_id
    }

    /// Closes every gateway socket and stops serving.
    pub async fn shutdown(&self) {
        self.0.shutdown.send_replace(true);
        self.0.gateway.close_all();
        let handle = self.0.server.lock().expect("server").take();
        if let Some(mut h) = handle
            && tokio::time::timeout(Duration::from_secs(2), &mut h)
                .await
                .is_err()
        {
            h.abort();
        }
    }

    // ----- observation -----

    /// Every REST request, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.0.recorder.all()
    }

    /// Every message in the channel (users' and the bot's), oldest first.
    pub fn messages(&self, channel_id: u64) -> Vec<SimMessage> {
        let w = self.world();
        w.messages
            .get(&channel_id)
            .map(|ms| ms.iter().map(sim_message).collect())
            .unwrap_or_default()
    }

    /// Waits for the first message in the channel matching `pred` (already there or
    /// arriving, edits included).
    pub async fn wait_for_message(
        &self,
        channel_id: u64,
        timeout: Duration,
        pred: impl Fn(&SimMessage) -> bool,
    ) -> Option<SimMessage> {
        self.wait_until(timeout, || {
            self.messages(channel_id).into_iter().find(|m| pred(m))
        })
        .await
    }

    /// Waits for a direct message from the bot to `user_id` matching `pred`.
    pub async fn wait_for_dm(
        &self,
        user_id: u64,
        timeout: Duration,
        pred: impl Fn(&SimMessage) -> bool,
    ) -> Option<SimMessage> {
        self.wait_until(timeout, || {
            self.dm_messages(user_id).into_iter().find(|m| pred(m))
        })
        .await
    }

    /// Messages in the DM channel between the bot and `user_id`, oldest first.
    pub fn dm_messages(&self, user_id: u64) -> Vec<SimMessage> {
        let channel = self.world().dm_channels.get(&user_id).copied();
        channel.map(|c| self.messages(c)).unwrap_or_default()
    }

    /// The member's role ids (without @everyone); empty if not a member.
    pub fn member_roles(&self, guild_id: u64, user_id: u64) -> Vec<u64> {
        self.world()
            .guilds
            .get(&guild_id)
            .and_then(|g| g.members.get(&user_id))
            .map(|m| m.roles.clone())
            .unwrap_or_default()
    }

    /// Whether the user is in the guild (false after a kick or ban).
    pub fn is_member(&self, guild_id: u64, user_id: u64) -> bool {
        self.world()
            .guilds
            .get(&guild_id)
            .is_some_and(|g| g.members.contains_key(&user_id))
    }

    /// A channel's name, while it exists.
    pub fn channel_name(&self, channel_id: u64) -> Option<String> {
        self.world()
            .channels
            .get(&channel_id)
            .map(|c| c.name.clone())
    }

    /// The user's permissions in a guild channel, Discord's way (0 when they
    /// cannot see it, or it does not exist).
    pub fn channel_permissions(&self, channel_id: u64, user_id: u64) -> u64 {
        let w = self.world();
        let Some(channel) = w.channels.get(&channel_id) else {
            return 0;
        };
        channel
            .guild_id
            .and_then(|g| w.guilds.get(&g))
            .map_or(0, |g| g.channel_permissions(channel, user_id))
    }

    /// Whether the user is banned from the guild.
    pub fn is_banned(&self, guild_id: u64, user_id: u64) -> bool {
        self.world()
            .guilds
            .get(&guild_id)
            .is_some_and(|g| g.bans.contains(&user_id))
    }

    /// When the member's timeout ends (Unix ms), if they have one.
    pub fn timed_out_until_ms(&self, guild_id: u64, user_id: u64) -> Option<u64> {
        self.world()
            .guilds
            .get(&guild_id)?
            .members
            .get(&user_id)?
            .timeout_until_ms
    }

    /// The guild's current command registration, as Discord returns it.
    pub fn guild_commands(&self, guild_id: u64) -> Vec<Value> {
        self.world()
            .guild_commands
            .get(&guild_id)
            .cloned()
            .unwrap_or_default()
    }

    /// How many bulk overwrites (PUT) the guild's commands received.
    pub fn command_overwrites(&self, guild_id: u64) -> usize {
        self.world()
            .command_overwrites
            .get(&guild_id)
            .copied()
            .unwrap_or(0)
    }

    pub fn gateway_stats(&self) -> GatewayStats {
        self.0.gateway.stats()
    }

    /// Waits until `shards` shards are connected and got READY and their
    /// GUILD_CREATEs.
    pub async fn wait_for_ready(&self, shards: u32, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.0.gateway.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.0.gateway.stats().ready_shards.len() >= shards as usize {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }

    // ----- faults -----

    /// The next `requests` REST requests (not `GET /gateway*`) answer 429 with
    /// `retry_after`; requests arriving before that has elapsed are refused again.
    pub fn rate_limit(&self, requests: u32, retry_after: Duration, global: bool) {
        self.0.faults.rate_limit(requests, retry_after, global);
    }

    /// Every REST request to the channel answers 429 (scope `user`, `retry_after` the
    /// time left) for `duration`, as a channel under a long rate limit does.
    pub fn rate_limit_channel(&self, channel_id: u64, duration: Duration) {
        self.0
            .limits
            .block_channel(channel_id, std::time::Instant::now() + duration);
    }

    /// The next `requests` REST requests answer `status` (a 5xx) with a JSON body.
    pub fn fail_next(&self, requests: u32, status: u16) {
        self.0.faults.fail_next(requests, status);
    }

    /// Sends op 7 RECONNECT to every connected shard; they reconnect and RESUME.
    pub async fn reconnect_shards(&self) {
        self.0.gateway.reconnect_all().await;
    }

    /// Sends op 9 INVALID_SESSION; unless `resumable`, the sessions are gone and the
    /// shards must IDENTIFY afresh.
    pub async fn invalidate_sessions(&self, resumable: bool) {
        self.0.gateway.invalidate_all(resumable).await;
    }

    /// Drops every gateway socket without a close frame; shards RESUME.
    pub async fn drop_connections(&self) {
        self.0.gateway.drop_all().await;
    }

    // ----- internals -----

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.0.world.lock().expect("world lock")
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.0.ids.next()
    }

    pub(crate) fn notify_changed(&self) {
        self.0.changed.notify_waiters();
    }

    /// Polls `check` whenever the world changes, until it yields or `timeout` passes.
    pub(crate) async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(v) = check() {
                return Some(v);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return check();
            }
        }
    }
}

fn sim_message(m: &MessageRec) -> SimMessage {
    SimMessage {
        id: m.id,
        channel_id: m.channel_id,
        author_id: m.author_id,
        content: m.content.clone(),
        embeds: m.embeds.clone(),
        components: m.components.clone(),
        nonce: m.nonce.as_ref().map(messages::nonce_key),
        reply_to: m.reply_to,
        allowed_mentions: m.allowed_mentions.clone(),
    }
}
