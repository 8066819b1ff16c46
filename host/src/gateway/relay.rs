//! `townes gateway`: shards that relay every dispatch into the event stream
//! for the workers, through twilight's gateway (ADR 0023).
//!
//! serenity 0.12's shards cannot start from a stored session nor take an
//! identify queue from outside, and both are what a gateway process needs:
//! - **Resuming after a restart.** Each dispatch is appended to the stream
//!   together with the session it advances (see [`EventStream::publish`]); a
//!   restarted process RESUMEs from there and Discord replays what it missed.
//! - **One IDENTIFY per bucket every 5 s across processes.** Discord allows
//!   `max_concurrency` logins at a time, bucketed by `shard % max_concurrency`;
//!   [`RedisIdentifyQueue`] takes a Redis key per bucket with `SET NX PX 5000`.

use crate::event_stream::{EventStream, StoredSession};
use futures_util::StreamExt as _;
use redis::aio::ConnectionManager;
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::oneshot;
use twilight_gateway::queue::Queue;
use twilight_gateway::{ConfigBuilder, Message, Session, Shard, ShardId};

/// Discord's identify window: `max_concurrency` logins per 5 seconds.
const IDENTIFY_WINDOW: Duration = Duration::from_secs(5);
/// How often a shard waiting for its bucket asks again.
const IDENTIFY_POLL: Duration = Duration::from_millis(100);
/// Pause before retrying Redis when it refuses a dispatch (the shard stops
/// reading meanwhile, so nothing is skipped).
const REDIS_RETRY: Duration = Duration::from_millis(500);

/// The identify queue shared by every gateway process through Redis.
#[derive(Clone)]
pub struct RedisIdentifyQueue {
    connection: ConnectionManager,
    max_concurrency: u32,
}

impl std::fmt::Debug for RedisIdentifyQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisIdentifyQueue")
            .field("max_concurrency", &self.max_concurrency)
            .finish()
    }
}

impl RedisIdentifyQueue {
    pub fn new(connection: ConnectionManager, max_concurrency: u32) -> RedisIdentifyQueue {
        RedisIdentifyQueue {
            connection,
            max_concurrency: max_concurrency.max(1),
        }
    }

    /// Waits until this process holds `shard`'s bucket for the next window.
    pub async fn acquire(&self, shard: u32) {
        let key = format!("townes:identify:{}", shard % self.max_concurrency);
        let window = u64::try_from(IDENTIFY_WINDOW.as_millis()).unwrap_or(u64::MAX);
        let mut connection = self.connection.clone();
        loop {
            let taken: redis::RedisResult<Option<String>> = redis::cmd("SET")
                .arg(&key)
                .arg(shard)
                .arg("NX")
                .arg("PX")
                .arg(window)
                .query_async(&mut connection)
                .await;
            match taken {
                Ok(Some(_)) => return,
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, shard, "identify queue: Redis failed; retrying")
                }
            }
            tokio::time::sleep(IDENTIFY_POLL).await;
        }
    }
}

impl Queue for RedisIdentifyQueue {
    fn enqueue(&self, shard: u32) -> oneshot::Receiver<()> {
        let (sender, receiver) = oneshot::channel();
        let queue = self.clone();
        tokio::spawn(async move {
            queue.acquire(shard).await;
            let _ = sender.send(());
        });
        receiver
    }
}

/// What a relay needs to connect its shards.
#[derive(Clone)]
pub struct RelayConfig {
    pub token: String,
    /// The gateway URL from `GET /gateway/bot`, used instead of Discord's
    /// default when the platform talks to a proxy or the simulator.
    pub gateway_url: Option<String>,
    pub intents: u64,
    pub total_shards: u32,
}

/// Relays one shard's dispatches into the stream until `stop` resolves.
pub async fn relay_shard(
    shard_id: u32,
    config: RelayConfig,
    stream: EventStream,
    queue: RedisIdentifyQueue,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut stored = stream.session(shard_id).await?;
    let mut builder = ConfigBuilder::new(
        config.token.clone(),
        twilight_gateway::Intents::from_bits_truncate(config.intents),
    )
    .queue(queue);
    if let Some(url) = &config.gateway_url {
        builder = builder.proxy_url(url.clone());
    }
    if let Some(session) = &stored {
        tracing::info!(
            shard = shard_id,
            sequence = session.sequence,
            "resuming the stored session"
        );
        builder = builder
            .session(Session::new(session.sequence, session.id.clone()))
            .resume_url(session.resume_url.clone());
    }
    let mut shard =
        Shard::with_config(ShardId::new(shard_id, config.total_shards), builder.build());
    loop {
        let message = tokio::select! {
            _ = stop.changed() => return Ok(()),
            message = shard.next() => message,
        };
        let text = match message {
            None => return Ok(()),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) => continue,
            Some(Err(error)) => {
                tracing::warn!(shard = shard_id, %error, "gateway: could not read a message");
                continue;
            }
        };
        // Op 9 needs nothing here: twilight resumes or identifies again, and
        // the new READY replaces the stored session.
        let Some(Dispatch { t, s, resume }) = Dispatch::read(&text) else {
            continue;
        };
        if let Some((id, resume_url)) = resume {
            stored = Some(StoredSession {
                id,
                sequence: s,
                resume_url,
            });
        }
        let Some(session) = stored.as_mut() else {
            tracing::warn!(shard = shard_id, kind = %t, "gateway: a dispatch before READY; skipped");
            continue;
        };
        session.sequence = s;
        publish(&stream, shard_id, session, t == "INTERACTION_CREATE", &text).await;
        crate::metrics::metrics().record_relayed(shard_id);
    }
}

/// Appends until Redis takes it: reading on would let Discord's sequence run
/// ahead of what the stream holds.
async fn publish(
    stream: &EventStream,
    shard: u32,
    session: &StoredSession,
    interaction: bool,
    frame: &str,
) {
    loop {
        match stream.publish(shard, session, interaction, frame).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(shard, %error, "gateway: Redis refused a dispatch; retrying");
                tokio::time::sleep(REDIS_RETRY).await;
            }
        }
    }
}

/// What the relay reads of a dispatch frame; READY also carries the new
/// session's id and resume URL.
struct Dispatch {
    t: String,
    s: u64,
    resume: Option<(String, String)>,
}

impl Dispatch {
    fn read(text: &str) -> Option<Dispatch> {
        #[derive(Deserialize)]
        struct Raw {
            op: u8,
            t: Option<String>,
            s: Option<u64>,
        }
        #[derive(Deserialize)]
        struct Ready {
            d: ReadyData,
        }
        #[derive(Deserialize)]
        struct ReadyData {
            session_id: String,
            resume_gateway_url: String,
        }
        let raw: Raw = serde_json::from_str(text).ok()?;
        if raw.op != 0 {
            return None;
        }
        let t = raw.t?;
        let resume = if t == "READY" {
            let ready: Ready = serde_json::from_str(text).ok()?;
            Some((ready.d.session_id, ready.d.resume_gateway_url))
        } else {
            None
        };
        Some(Dispatch {
            t,
            s: raw.s?,
            resume,
        })
    }
}
