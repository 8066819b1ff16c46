//! The event stream between `townes gateway` and `townes worker`: a Redis
//! Stream with one consumer group (ADR 0023).
//!
//! - **A gateway** appends each dispatch it receives, and in the same
//!   `MULTI` records its shard's session (id, the dispatch's sequence, resume
//!   URL). What the stream holds and what the session says were delivered
//!   never disagree, so a gateway restarted after a SIGKILL RESUMEs from the
//!   last dispatch it kept and Discord replays the rest: nothing is lost and
//!   nothing is kept twice.
//! - **Workers** read through the group: each entry goes to one of them, and is
//!   acknowledged (and deleted) only after it was handled. A worker that dies
//!   leaves its entries pending; any worker claims those idle longer than
//!   [`CLAIM_IDLE`] and handles them again (at least once). An entry delivered
//!   [`MAX_DELIVERIES`] times without being acknowledged (it kills every worker
//!   that handles it) is moved to the dead-letter stream instead.
//!
//! The stream only holds what was not handled yet, so its length is the
//! backlog; nothing trims it, which would drop events.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamId, StreamPendingCountReply, StreamReadReply};
use redis::{AsyncCommands, RedisResult};
use std::time::Duration;

/// Dispatches waiting for a worker.
pub const STREAM: &str = "townes:events";
/// Interactions waiting for a worker: a lane of their own, read first, so
/// Discord's 3-second answer window is not spent behind a backlog of events.
pub const INTERACTIONS: &str = "townes:interactions";
/// Both, in the order workers read them.
const STREAMS: [&str; 2] = [INTERACTIONS, STREAM];
/// The workers' consumer group.
pub const GROUP: &str = "workers";
/// Entries no worker could finish.
pub const DEAD_LETTERS: &str = "townes:events:dead";
/// Dead letters kept (about: Redis trims whole nodes); the oldest go first.
const DEAD_LETTERS_KEPT: u32 = 10_000;
/// How long an entry stays with a worker that does not acknowledge it before
/// another takes it over. Longer than any invocation may run (the sandbox's
/// wall-clock limits are seconds), so a slow worker is not doubled.
pub const CLAIM_IDLE: Duration = Duration::from_secs(30);
/// Deliveries of one entry before it is dead-lettered.
pub const MAX_DELIVERIES: usize = 5;

fn session_key(shard: u32) -> String {
    format!("townes:gateway:session:{shard}")
}

/// A gateway shard's session, as far as the stream holds its dispatches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSession {
    pub id: String,
    /// The sequence of the last dispatch in the stream.
    pub sequence: u64,
    pub resume_url: String,
}

/// One dispatch handed to a worker.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// The stream it came from ([`STREAM`] or [`INTERACTIONS`]).
    pub stream: &'static str,
    /// The stream entry id; also what makes the dispatch's effects idempotent
    /// (see `discord::Delivery`).
    pub id: String,
    pub shard: u32,
    /// The gateway frame as Discord sent it (`{"op":0,"t":…,"s":…,"d":…}`).
    pub frame: String,
    /// How many times it was handed out, this time included.
    pub deliveries: usize,
}

/// The stream, through one multiplexed connection.
#[derive(Clone)]
pub struct EventStream {
    connection: ConnectionManager,
    /// [`CLAIM_IDLE`], shorter only in tests that watch a takeover.
    claim_idle: Duration,
}

impl EventStream {
    pub async fn connect(url: &str) -> anyhow::Result<EventStream> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {e}"))?;
        // Longer than a blocking read's wait, which the server holds open.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach Redis (REDIS_URL): {e}; is it running?"))?;
        Ok(EventStream {
            connection,
            claim_idle: CLAIM_IDLE,
        })
    }

    /// Takes over other workers' entries after `idle` instead of
    /// [`CLAIM_IDLE`] (tests that watch a takeover without waiting 30 s).
    pub fn with_claim_idle(self, idle: Duration) -> EventStream {
        EventStream {
            claim_idle: idle,
            ..self
        }
    }

    /// The session a shard's dispatches were last kept under.
    pub async fn session(&self, shard: u32) -> RedisResult<Option<StoredSession>> {
        let mut c = self.connection.clone();
        let (id, sequence, resume_url): (Option<String>, Option<u64>, Option<String>) =
            redis::cmd("HMGET")
                .arg(session_key(shard))
                .arg(&["id", "sequence", "resume_url"])
                .query_async(&mut c)
                .await?;
        Ok(match (id, sequence, resume_url) {
            (Some(id), Some(sequence), Some(resume_url)) => Some(StoredSession {
                id,
                sequence,
                resume_url,
            }),
            _ => None,
        })
    }

    /// Appends a dispatch (an interaction to [`INTERACTIONS`]) and records the
    /// session it advances, atomically.
    pub async fn publish(
        &self,
        shard: u32,
        session: &StoredSession,
        interaction: bool,
        frame: &str,
    ) -> RedisResult<()> {
        let mut c = self.connection.clone();
        redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(if interaction { INTERACTIONS } else { STREAM })
            .arg("*")
            .arg("shard")
            .arg(shard)
            .arg("frame")
            .arg(frame)
            .ignore()
            .cmd("HSET")
            .arg(session_key(shard))
            .arg("id")
            .arg(&session.id)
            .arg("sequence")
            .arg(session.sequence)
            .arg("resume_url")
            .arg(&session.resume_url)
            .ignore()
            .query_async(&mut c)
            .await
    }

    /// Creates the workers' group on both streams (reading from their start)
    /// unless it exists.
    pub async fn ensure_group(&self) -> RedisResult<()> {
        let mut c = self.connection.clone();
        for stream in STREAMS {
            let created: RedisResult<()> = c.xgroup_create_mkstream(stream, GROUP, "0").await;
            match created {
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Up to `count` entries for `consumer`: first those another worker left
    /// unacknowledged for [`CLAIM_IDLE`] (dead-lettering the ones handed out
    /// [`MAX_DELIVERIES`] times), then new ones, waiting up to `block` for any.
    pub async fn next(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> RedisResult<Vec<Delivered>> {
        let reclaimed = self.reclaim(consumer, count).await?;
        if !reclaimed.is_empty() {
            return Ok(reclaimed);
        }
        let mut c = self.connection.clone();
        let options = redis::streams::StreamReadOptions::default()
            .group(GROUP, consumer)
            .count(count)
            .block(usize::try_from(block.as_millis()).unwrap_or(usize::MAX));
        let reply: Option<StreamReadReply> =
            c.xread_options(&STREAMS, &[">", ">"], &options).await?;
        Ok(entries(reply, 1))
    }

    /// Entries handed to `consumer` before and not acknowledged: what a
    /// worker restarted under the same name was handling when it died. One
    /// that has now been delivered more than [`MAX_DELIVERIES`] times is
    /// dead-lettered instead, or a dispatch that kills its worker would crash
    /// a restarted worker forever.
    pub async fn own_pending(&self, consumer: &str, count: usize) -> RedisResult<Vec<Delivered>> {
        let mut c = self.connection.clone();
        let options = redis::streams::StreamReadOptions::default()
            .group(GROUP, consumer)
            .count(count);
        let reply: Option<StreamReadReply> =
            c.xread_options(&STREAMS, &["0", "0"], &options).await?;
        let mut held = Vec::new();
        for mut entry in entries(reply, 0) {
            // The read counted as a delivery; XPENDING knows how many in all.
            let pending: StreamPendingCountReply = redis::cmd("XPENDING")
                .arg(entry.stream)
                .arg(GROUP)
                .arg(&entry.id)
                .arg(&entry.id)
                .arg(1)
                .arg(consumer)
                .query_async(&mut c)
                .await?;
            entry.deliveries = pending.ids.first().map_or(1, |p| p.times_delivered);
            if entry.deliveries > MAX_DELIVERIES {
                self.dead_letter(&entry, "no worker finished it").await?;
            } else {
                held.push(entry);
            }
        }
        Ok(held)
    }

    async fn reclaim(&self, consumer: &str, count: usize) -> RedisResult<Vec<Delivered>> {
        let mut c = self.connection.clone();
        let idle = u64::try_from(self.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let mut claimed = Vec::new();
        for stream in STREAMS {
            let stale: StreamPendingCountReply = redis::cmd("XPENDING")
                .arg(stream)
                .arg(GROUP)
                .arg("IDLE")
                .arg(idle)
                .arg("-")
                .arg("+")
                .arg(count)
                .query_async(&mut c)
                .await?;
            if stale.ids.is_empty() {
                continue;
            }
            let delivered_before: std::collections::HashMap<&str, usize> = stale
                .ids
                .iter()
                .map(|p| (p.id.as_str(), p.times_delivered))
                .collect();
            // One XCLAIM for all of them; it counts this delivery, and leaves
            // out what another worker claimed first.
            let reply: redis::streams::StreamClaimReply = redis::cmd("XCLAIM")
                .arg(stream)
                .arg(GROUP)
                .arg(consumer)
                .arg(idle)
                .arg(stale.ids.iter().map(|p| p.id.as_str()).collect::<Vec<_>>())
                .query_async(&mut c)
                .await?;
            for entry in reply.ids {
                let deliveries = delivered_before
                    .get(entry.id.as_str())
                    .copied()
                    .unwrap_or(0)
                    + 1;
                let Some(delivered) = delivered(stream, &entry, deliveries) else {
                    // Not written by a gateway: nothing to handle.
                    self.ack(stream, &entry.id).await?;
                    continue;
                };
                if deliveries > MAX_DELIVERIES {
                    self.dead_letter(&delivered, "no worker finished it")
                        .await?;
                } else {
                    claimed.push(delivered);
                }
            }
        }
        Ok(claimed)
    }

    /// Acknowledges a handled entry of `stream` and deletes it.
    pub async fn ack(&self, stream: &str, id: &str) -> RedisResult<()> {
        let mut c = self.connection.clone();
        redis::pipe()
            .atomic()
            .xack(stream, GROUP, &[id])
            .ignore()
            .xdel(stream, &[id])
            .ignore()
            .query_async(&mut c)
            .await
    }

    /// Moves an entry to [`DEAD_LETTERS`] with `reason`, and out of the stream.
    pub async fn dead_letter(&self, entry: &Delivered, reason: &str) -> RedisResult<()> {
        tracing::error!(id = %entry.id, deliveries = entry.deliveries, reason, "event stream: dead-lettering a dispatch");
        crate::metrics::metrics().record_event_dead_letter();
        let mut c = self.connection.clone();
        redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(DEAD_LETTERS)
            .arg("MAXLEN")
            .arg("~")
            .arg(DEAD_LETTERS_KEPT)
            .arg("*")
            .arg("stream")
            .arg(entry.stream)
            .arg("id")
            .arg(&entry.id)
            .arg("shard")
            .arg(entry.shard)
            .arg("frame")
            .arg(&entry.frame)
            .arg("reason")
            .arg(reason)
            .ignore()
            .xack(entry.stream, GROUP, &[&entry.id])
            .ignore()
            .xdel(entry.stream, &[&entry.id])
            .ignore()
            .query_async(&mut c)
            .await
    }

    /// Entries not handled yet (waiting or with a worker), in both streams.
    pub async fn backlog(&self) -> RedisResult<u64> {
        let mut c = self.connection.clone();
        let mut total = 0;
        for stream in STREAMS {
            total += c.xlen::<_, u64>(stream).await?;
        }
        Ok(total)
    }

    /// Entries dead-lettered so far.
    pub async fn dead_letters(&self) -> RedisResult<u64> {
        let mut c = self.connection.clone();
        c.xlen(DEAD_LETTERS).await
    }

    /// The connection, for the identify queue that shares it.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

/// The entries of a read, from whichever stream.
fn entries(reply: Option<StreamReadReply>, deliveries: usize) -> Vec<Delivered> {
    reply
        .into_iter()
        .flat_map(|r| r.keys)
        .flat_map(|k| {
            let stream = if k.key == INTERACTIONS {
                INTERACTIONS
            } else {
                STREAM
            };
            k.ids
                .into_iter()
                .filter_map(move |entry| delivered(stream, &entry, deliveries))
        })
        .collect()
}

fn delivered(stream: &'static str, entry: &StreamId, deliveries: usize) -> Option<Delivered> {
    let shard = entry.get::<u32>("shard")?;
    let frame = entry.get::<String>("frame")?;
    Some(Delivered {
        stream,
        id: entry.id.clone(),
        shard,
        frame,
        deliveries,
    })
}
