//! Live events: what the dashboard hears about a guild as it happens (a command
//! ran, a setting changed, a feature was toggled, …), read by the dashboard's
//! WebSocket.
//!
//! A [`Live`] is a bus with one in-process [`broadcast`] channel. Self-hosted
//! (one process) that is all there is: [`Live::local`]. Hosted, several
//! processes (gateway and API instances) share it through Redis pub/sub
//! ([`Live::with_redis`]): [`Live::publish`] goes to Redis only, and one
//! background task per process forwards what Redis delivers into the local
//! channel, so every process hears every event exactly once, its own included.
//!
//! Live events are best-effort notifications: publishing never blocks and never
//! fails the caller, a slow subscriber misses events (it gets
//! [`broadcast::error::RecvError::Lagged`]), and events published while Redis is
//! unreachable are lost. The durable record is the audit log.
//!
//! Snowflakes are strings in event JSON (`guild_id` and every id in `data`):
//! JavaScript numbers lose precision above 2^53.

use futures_util::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// What the dashboard hears about a guild as it happens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveEvent {
    /// A string in JSON (see the module documentation); a number is accepted too.
    #[serde(with = "snowflake")]
    pub guild_id: u64,
    pub kind: LiveKind,
    /// What happened, by kind. Ids in it are strings.
    pub data: serde_json::Value,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl LiveEvent {
    /// An event that happens now.
    pub fn new(guild_id: u64, kind: LiveKind, data: serde_json::Value) -> LiveEvent {
        LiveEvent {
            guild_id,
            kind,
            data,
            at: chrono::Utc::now(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveKind {
    AuditLog,
    SettingsUpdate,
    FeatureToggled,
    /// A slash or prefix command, or a component, ran (or was refused): `data`
    /// is `{command, feature, user_id, channel_id, outcome, source}`.
    CommandExecuted,
    /// An export of the guild (or of its tenant) moved: `data` is
    /// `{export_id, status, step, done, total, error}`.
    ExportProgress,
    /// Published by a feature through its `live` capability (`ticket_update`
    /// from tickets, …): the kind as the feature named it, and which feature.
    Feature {
        kind: String,
        feature: String,
    },
}

impl LiveKind {
    /// The name in JSON: `audit_log`, `settings_update`, …
    pub fn as_str(&self) -> &str {
        match self {
            LiveKind::AuditLog => "audit_log",
            LiveKind::SettingsUpdate => "settings_update",
            LiveKind::FeatureToggled => "feature_toggled",
            LiveKind::CommandExecuted => "command_executed",
            LiveKind::ExportProgress => "export_progress",
            LiveKind::Feature { kind, .. } => kind,
        }
    }

    /// The feature that published the event, for feature kinds.
    pub fn feature(&self) -> Option<&str> {
        match self {
            LiveKind::Feature { feature, .. } => Some(feature),
            _ => None,
        }
    }
}

/// The Redis pub/sub channel every process publishes to and listens on.
pub const REDIS_CHANNEL: &str = "townes:live";
/// How many events a subscriber may fall behind before it misses some.
pub const CAPACITY: usize = 4096;
/// How many events may wait for Redis before new ones are dropped.
const OUTBOX: usize = 4096;
/// The most events sent to Redis in one round trip.
const BATCH: usize = 256;
/// Connecting to Redis, and a PING, give up after this.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How often the subscription's connection is checked (a half-open TCP
/// connection would otherwise go unnoticed).
const HEALTH_EVERY: Duration = Duration::from_secs(15);
/// Reconnection delays: doubling from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_LAST: Duration = Duration::from_secs(30);

/// The live-events bus (cheap to clone: clones share it).
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    local: broadcast::Sender<Arc<LiveEvent>>,
    redis: Option<RedisSide>,
}

struct RedisSide {
    /// For PING; reconnects on its own.
    connection: ConnectionManager,
    /// To the task that publishes to Redis.
    outbox: mpsc::Sender<String>,
    /// Set while events are being dropped, so a full outbox warns once per episode.
    dropping: AtomicBool,
    /// Forwards what Redis delivers into `local`.
    forwarder: JoinHandle<()>,
}

impl Drop for RedisSide {
    fn drop(&mut self) {
        // The publisher ends by itself once the outbox's sender is gone (after
        // sending what is queued); the forwarder would listen forever.
        self.forwarder.abort();
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("redis", &self.uses_redis())
            .field("subscribers", &self.inner.local.receiver_count())
            .finish()
    }
}

impl Default for Live {
    fn default() -> Live {
        Live::local()
    }
}

impl Live {
    /// In-process only: a tokio broadcast channel (capacity [`CAPACITY`]).
    pub fn local() -> Live {
        let (local, _) = broadcast::channel(CAPACITY);
        Live {
            inner: Arc::new(Inner { local, redis: None }),
        }
    }

    /// Fans out through the Redis pub/sub channel [`REDIS_CHANNEL`], so every
    /// process (gateway and API instances) hears every event: [`Live::publish`]
    /// goes to Redis only, and one background task per process forwards what
    /// Redis delivers into the local broadcast (so nothing is heard twice).
    ///
    /// Connects and subscribes before returning (a wrong URL or an unreachable
    /// server fails start-up; the error never shows the URL's password). If
    /// Redis drops later, it reconnects with backoff, logging a warning; events
    /// published meanwhile are lost.
    pub async fn with_redis(url: &str) -> anyhow::Result<Live> {
        let fail = |what: &str, error: &dyn std::fmt::Display| {
            anyhow::anyhow!(
                "{what} Redis at {} for live events: {}",
                redact(url),
                scrub(url, &error.to_string())
            )
        };
        let client = redis::Client::open(url).map_err(|e| fail("invalid URL for", &e))?;
        let pubsub = subscribed(&client)
            .await
            .map_err(|e| fail("could not subscribe to", &e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(2));
        let connection = tokio::time::timeout(
            TIMEOUT * 3,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| fail("could not connect to", &"no answer in time"))?
        .map_err(|e| fail("could not connect to", &e))?;
        let (local, _) = broadcast::channel(CAPACITY);
        let (outbox, queued) = mpsc::channel(OUTBOX);
        tokio::spawn(publish_to_redis(connection.clone(), queued));
        let forwarder = tokio::spawn(forward_from_redis(client, pubsub, local.clone()));
        Ok(Live {
            inner: Arc::new(Inner {
                local,
                redis: Some(RedisSide {
                    connection,
                    outbox,
                    dropping: AtomicBool::new(false),
                    forwarder,
                }),
            }),
        })
    }

    /// Sends `event` to every process (through Redis when there is one). Never
    /// blocks and never fails the caller: an event that cannot be sent is
    /// logged and dropped (live events are best-effort notifications; the
    /// durable record is the audit log).
    pub fn publish(&self, event: LiveEvent) {
        let Some(redis) = &self.inner.redis else {
            self.publish_local(event);
            return;
        };
        let json = match serde_json::to_string(&event) {
            Ok(json) => json,
            Err(error) => {
                tracing::warn!(%error, kind = event.kind.as_str(), "could not encode a live event; dropping it");
                return;
            }
        };
        match redis.outbox.try_send(json) {
            Ok(()) => redis.dropping.store(false, Ordering::Relaxed),
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !redis.dropping.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "live events are being dropped: {OUTBOX} are already waiting for Redis"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!("the live-events publisher stopped; dropping an event");
            }
        }
    }

    /// Publishes to this process only, never to Redis — for events every
    /// process derives itself (the API tails the audit log table on its own).
    pub fn publish_local(&self, event: LiveEvent) {
        // An error only means nobody is listening right now.
        let _ = self.inner.local.send(Arc::new(event));
    }

    /// Every event from now on. A receiver that falls more than [`CAPACITY`]
    /// events behind gets `Lagged` and misses the oldest ones (memory stays
    /// bounded whatever a slow WebSocket does).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.inner.local.subscribe()
    }

    /// Ok for local; PING for Redis (used by `/readyz`), with a 2 s timeout.
    pub async fn ping(&self) -> Result<(), String> {
        let Some(redis) = &self.inner.redis else {
            return Ok(());
        };
        let mut connection = redis.connection.clone();
        match tokio::time::timeout(
            TIMEOUT,
            redis::cmd("PING").query_async::<redis::Value>(&mut connection),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("Redis: {error}")),
            Err(_) => Err(format!("Redis: no answer to PING within {TIMEOUT:?}")),
        }
    }

    pub fn uses_redis(&self) -> bool {
        self.inner.redis.is_some()
    }
}

/// A pub/sub connection subscribed to [`REDIS_CHANNEL`].
async fn subscribed(client: &redis::Client) -> redis::RedisResult<PubSub> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(REDIS_CHANNEL).await?;
        Ok(pubsub)
    };
    match tokio::time::timeout(TIMEOUT, connect).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer in time",
        ))),
    }
}

/// Sends queued events to Redis, several per round trip when they pile up.
/// Ends when the [`Live`] is dropped, after sending what was queued.
async fn publish_to_redis(mut connection: ConnectionManager, mut queued: mpsc::Receiver<String>) {
    let mut failing = false;
    let mut batch = Vec::with_capacity(BATCH);
    while queued.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for json in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(REDIS_CHANNEL).arg(json).ignore();
        }
        match pipe.exec_async(&mut connection).await {
            Ok(()) if failing => {
                tracing::info!("publishing live events to Redis again");
                failing = false;
            }
            Ok(()) => {}
            Err(error) if !failing => {
                tracing::warn!(%error, "could not publish live events to Redis; dropping them until it answers again");
                failing = true;
            }
            Err(error) => tracing::debug!(%error, "still could not publish live events to Redis"),
        }
    }
}

/// Forwards what Redis delivers into the local broadcast, resubscribing with
/// backoff whenever the connection is lost.
async fn forward_from_redis(
    client: redis::Client,
    mut pubsub: PubSub,
    local: broadcast::Sender<Arc<LiveEvent>>,
) {
    loop {
        let (mut sink, mut stream) = pubsub.split();
        let mut health = tokio::time::interval(HEALTH_EVERY);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        health.tick().await;
        let lost = loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => forward(&local, message.get_payload_bytes()),
                    None => break "the connection closed".to_string(),
                },
                _ = health.tick() => {
                    match tokio::time::timeout(TIMEOUT, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => break error.to_string(),
                        Err(_) => break format!("no answer to PING within {TIMEOUT:?}"),
                    }
                }
            }
        };
        tracing::warn!(reason = %lost, "lost the Redis live-events subscription; reconnecting (events published meanwhile are missed)");
        let mut delay = BACKOFF_FIRST;
        pubsub = loop {
            tokio::time::sleep(delay).await;
            match subscribed(&client).await {
                Ok(pubsub) => break pubsub,
                Err(error) => {
                    tracing::warn!(%error, "could not resubscribe to Redis live events; retrying in {:?}", delay * 2);
                    delay = (delay * 2).min(BACKOFF_LAST);
                }
            }
        };
        tracing::info!("resubscribed to Redis live events");
    }
}

fn forward(local: &broadcast::Sender<Arc<LiveEvent>>, payload: &[u8]) {
    match serde_json::from_slice::<LiveEvent>(payload) {
        Ok(event) => {
            let _ = local.send(Arc::new(event));
        }
        Err(error) => tracing::debug!(%error, "ignoring an unreadable live event from Redis"),
    }
}

/// `url` without its credentials' secret part: `redis://user:***@host`, or
/// `redis://***@host` when there is no `user:`.
pub(crate) fn redact(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_string();
    };
    let start = url.find("://").map_or(0, |i| i + 3).min(at);
    let shown = match url[start..at].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None if start == at => String::new(),
        None => "***".to_string(),
    };
    format!("{}{shown}{}", &url[..start], &url[at..])
}

/// `message` with anything of the URL's credentials removed, in case an error
/// repeats them.
pub(crate) fn scrub(url: &str, message: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return message.to_string();
    };
    let start = url.find("://").map_or(0, |i| i + 3).min(at);
    let credentials = &url[start..at];
    let secret = credentials.split_once(':').map_or(credentials, |(_, p)| p);
    if secret.is_empty() {
        message.to_string()
    } else {
        message.replace(secret, "***")
    }
}

/// A snowflake as a JSON string (read from a string or a number).
mod snowflake {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(id: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Id {
            Text(String),
            Number(u64),
        }
        match Id::deserialize(deserializer)? {
            Id::Text(text) => text.parse().map_err(D::Error::custom),
            Id::Number(id) => Ok(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact("redis://ada:hunter2@cache:6379/0"),
            "redis://ada:***@cache:6379/0"
        );
        assert_eq!(
            redact("redis://:hunter2@cache:6379"),
            "redis://:***@cache:6379"
        );
        assert_eq!(redact("redis://hunter2@cache"), "redis://***@cache");
        assert_eq!(redact("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(redact("ada:hunter2@cache"), "ada:***@cache");
        assert_eq!(scrub("redis://ada:hunter2@cache", "bad hunter2"), "bad ***");
    }

    #[test]
    fn guild_ids_are_strings_in_json_and_read_either_way() {
        let event = LiveEvent::new(
            1_234_567_890_123_456_789,
            LiveKind::CommandExecuted,
            serde_json::json!({}),
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["guild_id"], "1234567890123456789");
        assert_eq!(json["kind"], LiveKind::CommandExecuted.as_str());
        assert_eq!(
            serde_json::from_value::<LiveEvent>(json.clone()).unwrap(),
            event
        );
        let mut numeric = json;
        numeric["guild_id"] = serde_json::json!(42u64);
        assert_eq!(
            serde_json::from_value::<LiveEvent>(numeric)
                .unwrap()
                .guild_id,
            42
        );
    }

    #[test]
    fn kinds_are_named_as_in_json() {
        for kind in [
            LiveKind::AuditLog,
            LiveKind::SettingsUpdate,
            LiveKind::FeatureToggled,
            LiveKind::CommandExecuted,
            LiveKind::ExportProgress,
        ] {
            assert_eq!(serde_json::to_value(&kind).unwrap(), kind.as_str());
            assert!(
                townes_limits::live::RESERVED_KINDS.contains(&kind.as_str()),
                "features must not publish as {kind:?}"
            );
        }
    }
}
