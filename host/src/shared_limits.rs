//! Limits that every process on one Redis shares: command cooldowns (see
//! [`Cooldowns`](crate::commands::policy::Cooldowns)) and the dashboard API's
//! rate limits (see [`RateLimiter`](crate::api::protect::RateLimiter)). With
//! several processes on one database, limits kept in each process's memory
//! would let a member who reaches several of them run a command, or call the
//! API, that many times over.
//!
//! [`SharedLimits::local`] (self-hosted, no `REDIS_URL`) shares nothing: every
//! check answers [`Verdict::Local`] and the caller uses its in-process limiter.
//! [`SharedLimits::with_redis`] decides each check with one Lua script, atomic on
//! the Redis server and timed by Redis's own `TIME`, so process clocks do not
//! matter. Every key it writes expires, and the part of a key that comes from
//! outside (a command name, an API key id) is replaced by a hash when it is long
//! or unusual, so no caller can make Redis hold more than a bounded key per
//! limited subject.
//!
//! When Redis fails (an error, or no answer within [`CHECK_TIMEOUT`]) the check
//! answers [`Verdict::Local`] too, and so does every check for the next
//! [`REST`], so an outage costs each request nothing rather than a timeout. A
//! warning is logged once per outage and `townes_shared_limit_fallbacks_total`
//! counts the checks decided locally. Failing open is deliberate: refusing every
//! command and API call while Redis is away would turn a cache outage into a
//! platform outage, and the local limiters still hold each process to its quota.

use crate::live::{redact, scrub};
use crate::metrics::metrics;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// What every key starts with, unless [`SharedLimits::with_redis_prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "townes";
/// A check that Redis has not answered within this is decided locally.
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failed check, checks skip Redis for this long.
pub const REST: Duration = Duration::from_secs(1);
/// Connecting to Redis at start gives up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest piece of a key kept as it is; longer ones are hashed.
const KEY_PART_MAX: usize = 64;

/// Starts a cooldown unless one is running. KEYS[1]: one member's runs of one
/// command in one guild; ARGV[1]: the cooldown, ARGV[2]: how long a run is
/// remembered (both in ms). Returns 0 when the run starts (it is recorded, even
/// without a cooldown, so one configured later applies at once), else the ms left.
/// A Redis clock that stepped back counts as no time passed, as `Instant` would.
const COOLDOWN: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]))
if last then
  local since = math.max(0, now - last)
  if since < period then
    return period - since
  end
end
redis.call('SET', KEYS[1], string.format('%d', now), 'PX', ARGV[2])
return 0
";

/// One request against a GCRA bucket, the algorithm of the `governor` crate the
/// in-process limiter uses: the bucket stores its theoretical arrival time
/// (TAT). KEYS[1]: the bucket; ARGV[1]: µs between requests at the sustained
/// rate; ARGV[2]: the burst. Returns 0 when the request passes, else the µs
/// until one would. The key expires when the bucket is full again, when it
/// behaves exactly like a key never seen.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local next_tat = tat + interval
if next_tat - now > capacity then
  return next_tat - now - capacity
end
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
return 0
";

/// How a shared check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Refused: the wait until it would pass.
    Wait(Duration),
    /// Not decided here (no Redis, or Redis failing): use the local limiter.
    Local,
}

/// The shared limits (cheap to clone: clones share the connection).
#[derive(Clone, Default)]
pub struct SharedLimits {
    redis: Option<Arc<RedisSide>>,
}

struct RedisSide {
    /// Reconnects on its own.
    connection: ConnectionManager,
    prefix: String,
    cooldown: Script,
    gcra: Script,
    /// Checks skip Redis until then, after a failure.
    resting_until: Mutex<Option<Instant>>,
    /// Set while Redis fails, so an outage is warned about once.
    failing: AtomicBool,
}

impl std::fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimits")
            .field("redis", &self.uses_redis())
            .finish()
    }
}

impl SharedLimits {
    /// Nothing shared: every limit is kept in this process.
    pub fn local() -> SharedLimits {
        SharedLimits::default()
    }

    /// Limits shared through Redis at `url`, keys under [`DEFAULT_PREFIX`].
    pub async fn with_redis(url: &str) -> anyhow::Result<SharedLimits> {
        SharedLimits::with_redis_prefix(url, DEFAULT_PREFIX).await
    }

    /// Limits shared through Redis at `url`, every key starting with `prefix:`
    /// (tests use one of their own). Connects and loads the scripts before
    /// returning, so a wrong URL, an unreachable server or one that refuses
    /// scripts fails start-up; the error never shows the URL's password.
    pub async fn with_redis_prefix(url: &str, prefix: &str) -> anyhow::Result<SharedLimits> {
        let fail = |what: &str, error: &dyn std::fmt::Display| {
            anyhow::anyhow!(
                "{what} Redis at {} for shared limits: {}",
                redact(url),
                scrub(url, &error.to_string())
            )
        };
        let client = redis::Client::open(url).map_err(|e| fail("invalid URL for", &e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CHECK_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let mut connection = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| fail("could not connect to", &"no answer in time"))?
        .map_err(|e| fail("could not connect to", &e))?;
        let (cooldown, gcra) = (Script::new(COOLDOWN), Script::new(GCRA));
        for script in [&cooldown, &gcra] {
            script
                .load_async(&mut connection)
                .await
                .map_err(|e| fail("could not load the scripts into", &e))?;
        }
        Ok(SharedLimits {
            redis: Some(Arc::new(RedisSide {
                connection,
                prefix: prefix.to_string(),
                cooldown,
                gcra,
                resting_until: Mutex::new(None),
                failing: AtomicBool::new(false),
            })),
        })
    }

    pub fn uses_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// Starts a `period` cooldown for (guild, user, command) unless one is
    /// running; every run is remembered for `remember`.
    pub async fn cooldown(
        &self,
        guild_id: u64,
        user_id: u64,
        command: &str,
        period: Duration,
        remember: Duration,
    ) -> Verdict {
        let Some(redis) = &self.redis else {
            return Verdict::Local;
        };
        let key = format!(
            "{}:cd:{guild_id}:{user_id}:{}",
            redis.prefix,
            key_part(command)
        );
        let args = [millis(period), millis(remember).max(1)];
        redis
            .check("cooldown", &redis.cooldown, key, args)
            .await
            .map_or(Verdict::Local, |left| verdict(Duration::from_millis(left)))
    }

    /// One request by `key` against a bucket of `kind` (`ip`, `caller`,
    /// `frames`) allowing `per_minute` at once and refilling continuously.
    pub async fn take(&self, kind: &'static str, key: &str, per_minute: u32) -> Verdict {
        let Some(redis) = &self.redis else {
            return Verdict::Local;
        };
        let key = format!("{}:rl:{kind}:{}", redis.prefix, key_part(key));
        let per_minute = per_minute.max(1);
        let interval = (60_000_000 / u64::from(per_minute)).max(1);
        let args = [interval, u64::from(per_minute)];
        redis
            .check(kind, &redis.gcra, key, args)
            .await
            .map_or(Verdict::Local, |wait| verdict(Duration::from_micros(wait)))
    }
}

fn verdict(wait: Duration) -> Verdict {
    if wait.is_zero() {
        Verdict::Pass
    } else {
        Verdict::Wait(wait)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisSide {
    /// Runs `script` on `key`; `None` when Redis is resting or fails (`limit`
    /// names the limit in the fallback metric).
    async fn check(
        &self,
        limit: &'static str,
        script: &Script,
        key: String,
        args: [u64; 2],
    ) -> Option<u64> {
        let resting_until = *self
            .resting_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if resting_until.is_some_and(|until| Instant::now() < until) {
            metrics().record_shared_limit_fallback(limit);
            return None;
        }
        let mut connection = self.connection.clone();
        let mut invocation = script.key(key);
        invocation.arg(args[0]).arg(args[1]);
        let outcome = tokio::time::timeout(
            CHECK_TIMEOUT,
            invocation.invoke_async::<i64>(&mut connection),
        )
        .await;
        let error = match outcome {
            Ok(Ok(answer)) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("shared limits: Redis answers again");
                }
                return Some(u64::try_from(answer).unwrap_or(0));
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
        };
        *self
            .resting_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + REST);
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                %error,
                "shared limits: Redis failed; cooldowns and API rate limits are kept per process until it answers again"
            );
        }
        metrics().record_shared_limit_fallback(limit);
        None
    }
}

/// A piece of a key that came from outside: as it is when short and plain,
/// else `#` and 32 hex digits of its SHA-256 (`#` never appears in a plain
/// piece, so the two kinds cannot collide).
fn key_part(raw: &str) -> Cow<'_, str> {
    let plain = raw.len() <= KEY_PART_MAX
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if plain {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(format!(
            "#{}",
            &hex::encode(Sha256::digest(raw.as_bytes()))[..32]
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_key_parts_are_bounded_and_cannot_collide() {
        assert_eq!(key_part("rank"), "rank");
        assert_eq!(key_part("tickets:open-1"), "tickets:open-1");
        let huge = "9".repeat(100_000);
        assert_eq!(key_part(&huge).len(), 33);
        let odd = key_part("rank\r\nFLUSHALL");
        assert!(odd.starts_with('#') && odd.len() == 33, "{odd}");
        assert_ne!(key_part(&odd), odd, "a hash is never taken as plain");
    }

    #[tokio::test]
    async fn without_redis_every_check_is_local() {
        let limits = SharedLimits::local();
        assert!(!limits.uses_redis());
        let day = Duration::from_secs(86_400);
        assert_eq!(
            limits.cooldown(1, 2, "rank", day, day).await,
            Verdict::Local
        );
        assert_eq!(limits.take("ip", "192.0.2.1", 1).await, Verdict::Local);
    }
}
