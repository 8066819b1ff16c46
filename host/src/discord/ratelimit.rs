//! Discord's rate limits, respected before Discord has to enforce them (ADR 0009).
//!
//! - **Buckets are learned from the answers.** Discord names a route's bucket in
//!   `X-RateLimit-Bucket` (routes may share one) and says how many requests it has
//!   left (`-Limit`, `-Remaining`) and when it refills (`-Reset-After`). A bucket is
//!   that hash plus the route's major parameter (channel, guild or webhook). Until a
//!   route's hash is known, one request at a time goes to it, so a burst cannot
//!   overrun a bucket nobody has seen yet.
//! - **Only the bucket waits.** A used-up or 429'd bucket holds the requests for it;
//!   requests for every other bucket go on. Callers wait in [`RateLimiter::acquire`],
//!   each on its own task, so nothing shared sleeps.
//! - **Waiters go at the bucket's pace.** When a bucket refills it admits at most its
//!   limit; the rest keep waiting for the answers that say how the new window looks,
//!   instead of all firing at the reset and collecting 429s.
//! - **The global limit is ours to keep.** Every request but interaction answers (which
//!   Discord exempts) takes a slot from a sliding one-second window of
//!   [`RateLimiter::global_per_second`] requests, so the global 429 (and the
//!   invalid-request count it feeds) is never earned by bursting.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Discord's global limit for a bot: 50 requests per second.
pub const DEFAULT_GLOBAL_PER_SECOND: u32 = 50;

/// Buckets remembered at most; idle ones are forgotten past it.
const MAX_TRACKED_BUCKETS: usize = 10_000;

/// The longest a waiter sleeps without looking again (a wake-up it missed, a bucket
/// forgotten meanwhile).
const RECHECK: Duration = Duration::from_secs(1);

/// What a request needs from the limiter.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// Method and route template: `POST /channels/{channel}/messages`.
    pub(crate) route: String,
    /// The major parameter: the channel, guild or webhook the path starts with.
    pub(crate) major: String,
    /// Whether the global limit applies (not for interaction answers).
    pub(crate) global: bool,
}

/// A request admitted by [`RateLimiter::acquire`]: [`Permit::complete`] it with the
/// answer. Dropped without one (a network error, a caller that gave up), it frees its
/// place, so a bucket never waits for an answer that will not come.
#[must_use]
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    limiter: &'a RateLimiter,
    bucket: String,
    /// Counted out of its bucket by `complete`, so `Drop` leaves it alone.
    completed: bool,
}

/// How a 429 is scoped (`X-RateLimit-Scope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The bot's own per-route limit.
    User,
    /// Every route: the bot's global limit.
    Global,
    /// A limit shared by everyone on a resource; Discord does not count these as
    /// invalid requests.
    Shared,
}

#[derive(Debug, Default)]
struct Bucket {
    /// Requests allowed before the reset; `None` until an answer said.
    remaining: Option<u32>,
    limit: u32,
    /// When Discord refills the bucket; `None` after a refill until an answer says.
    reset_at: Option<Instant>,
    in_flight: u32,
}

#[derive(Debug, Default)]
struct State {
    /// Route → Discord's bucket hash.
    hashes: HashMap<String, String>,
    buckets: HashMap<String, Bucket>,
    /// When the last requests under the global limit were sent.
    sent: VecDeque<Instant>,
    /// A global 429 holds every request until then.
    global_until: Option<Instant>,
}

/// What [`State::try_take`] decided.
enum Take {
    Go,
    /// Wait until then (or until an answer changes things).
    Until(Instant),
    /// Wait for an answer in flight.
    Answer,
}

/// Per-bucket and global rate limiting for one bot token. Shared by every clone of
/// the REST client.
#[derive(Debug)]
pub struct RateLimiter {
    global_per_second: AtomicU32,
    state: Mutex<State>,
    /// Woken whenever an answer changes a bucket.
    changed: Notify,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(DEFAULT_GLOBAL_PER_SECOND)
    }
}

fn bucket_id(state: &State, route: &Route) -> String {
    let hash = state.hashes.get(&route.route).unwrap_or(&route.route);
    format!("{hash} {}", route.major)
}

impl State {
    fn try_take(&mut self, id: &str, global: bool, per_second: u32, now: Instant) -> Take {
        if global && let Some(until) = self.global_until.filter(|u| *u > now) {
            return Take::Until(until);
        }
        let bucket = self.buckets.entry(id.to_string()).or_default();
        if let Some(reset) = bucket.reset_at
            && reset <= now
        {
            bucket.reset_at = None;
            // A limit never learned (a 429 without headers) is probed one at a time.
            bucket.remaining = (bucket.limit > 0).then_some(bucket.limit);
        }
        match (bucket.remaining, bucket.reset_at) {
            (Some(0), Some(reset)) => return Take::Until(reset),
            // The answers in flight will say how the bucket stands. With none in flight
            // (they failed without headers) one request goes to find out.
            (None | Some(0), None) if bucket.in_flight > 0 => return Take::Answer,
            _ => {}
        }
        if global {
            while self
                .sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                self.sent.pop_front();
            }
            if self.sent.len() >= per_second.max(1) as usize {
                let oldest = *self.sent.front().expect("non-empty");
                return Take::Until(oldest + Duration::from_secs(1));
            }
            self.sent.push_back(now);
        }
        let bucket = self.buckets.get_mut(id).expect("inserted above");
        bucket.remaining = bucket.remaining.map(|r| r.saturating_sub(1));
        bucket.in_flight += 1;
        Take::Go
    }

    fn forget_idle(&mut self, now: Instant) {
        if self.buckets.len() < MAX_TRACKED_BUCKETS {
            return;
        }
        self.buckets
            .retain(|_, b| b.in_flight > 0 || b.reset_at.is_some_and(|r| r > now));
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn seconds(text: &str) -> Option<Duration> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// The scope of a 429 from its headers (`X-RateLimit-Scope`, or the older
/// `X-RateLimit-Global`).
pub fn scope(headers: &HeaderMap, global_in_body: bool) -> Scope {
    match header(headers, "x-ratelimit-scope") {
        Some("global") => Scope::Global,
        Some("shared") => Scope::Shared,
        _ if global_in_body
            || header(headers, "x-ratelimit-global")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")) =>
        {
            Scope::Global
        }
        _ => Scope::User,
    }
}

impl RateLimiter {
    pub fn new(global_per_second: u32) -> RateLimiter {
        RateLimiter {
            global_per_second: AtomicU32::new(global_per_second.max(1)),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    /// Requests per second allowed under the global limit.
    pub fn global_per_second(&self) -> u32 {
        self.global_per_second.load(Ordering::Relaxed)
    }

    pub fn set_global_per_second(&self, per_second: u32) {
        self.global_per_second
            .store(per_second.max(1), Ordering::Relaxed);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Each critical section is a few map updates: a panic leaves the data usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `route`'s bucket and the global limit allow one more request.
    pub(crate) async fn acquire(&self, route: &Route) -> Permit<'_> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            let (id, take) = {
                let mut state = self.state();
                let id = bucket_id(&state, route);
                let take = state.try_take(&id, route.global, self.global_per_second(), now);
                (id, take)
            };
            let until = match take {
                Take::Go => {
                    return Permit {
                        limiter: self,
                        bucket: id,
                        completed: false,
                    };
                }
                Take::Until(until) => until.min(now + RECHECK),
                Take::Answer => now + RECHECK,
            };
            let _ = tokio::time::timeout_at(until, changed).await;
        }
    }

    fn release(&self, bucket: &str) {
        if let Some(bucket) = self.state().buckets.get_mut(bucket) {
            bucket.in_flight = bucket.in_flight.saturating_sub(1);
        }
        self.changed.notify_waiters();
    }
}

impl Permit<'_> {
    /// Learns from the answer's headers; `limited` is a 429's wait and scope.
    pub(crate) fn complete(
        mut self,
        route: &Route,
        headers: &HeaderMap,
        limited: Option<(Duration, Scope)>,
    ) {
        self.completed = true;
        let (limiter, permit_bucket) = (self.limiter, &self.bucket);
        let now = Instant::now();
        let mut state = limiter.state();
        if let Some(bucket) = state.buckets.get_mut(permit_bucket) {
            bucket.in_flight = bucket.in_flight.saturating_sub(1);
        }
        if let Some(hash) = header(headers, "x-ratelimit-bucket")
            && state.hashes.get(&route.route).map(String::as_str) != Some(hash)
        {
            state.hashes.insert(route.route.clone(), hash.to_string());
        }
        let id = bucket_id(&state, route);
        let limit = header(headers, "x-ratelimit-limit").and_then(|v| v.parse::<u32>().ok());
        let remaining =
            header(headers, "x-ratelimit-remaining").and_then(|v| v.parse::<u32>().ok());
        let reset_after = header(headers, "x-ratelimit-reset-after").and_then(seconds);
        match limited {
            Some((retry_after, Scope::Global)) => {
                let until = now + retry_after;
                if state.global_until.is_none_or(|u| u < until) {
                    state.global_until = Some(until);
                }
            }
            Some((retry_after, _)) => {
                let bucket = state.buckets.entry(id).or_default();
                bucket.remaining = Some(0);
                let until = now + retry_after;
                if bucket.reset_at.is_none_or(|r| r < until) {
                    bucket.reset_at = Some(until);
                }
                if let Some(limit) = limit {
                    bucket.limit = limit;
                }
            }
            None => {
                if let (Some(limit), Some(remaining), Some(reset_after)) =
                    (limit, remaining, reset_after)
                {
                    let bucket = state.buckets.entry(id).or_default();
                    bucket.limit = limit;
                    // Requests still in flight were sent after this answer's count;
                    // assume they all land in this window.
                    bucket.remaining = Some(remaining.saturating_sub(bucket.in_flight));
                    bucket.reset_at = Some(now + reset_after);
                } else if let Some(bucket) = state.buckets.get_mut(&id)
                    && bucket.remaining.is_none()
                {
                    // A route without limits: nothing to wait for after this.
                    bucket.limit = u32::MAX;
                    bucket.remaining = Some(u32::MAX);
                }
            }
        }
        if *permit_bucket != bucket_id(&state, route)
            && state
                .buckets
                .get(permit_bucket)
                .is_some_and(|b| b.in_flight == 0)
        {
            // The provisional bucket of a route whose hash is now known.
            state.buckets.remove(permit_bucket);
        }
        state.forget_idle(now);
        drop(state);
        limiter.changed.notify_waiters();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.completed {
            self.limiter.release(&self.bucket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn route(major: &str) -> Route {
        Route {
            route: "POST /channels/{channel}/messages".into(),
            major: major.into(),
            global: true,
        }
    }

    fn headers(bucket: &str, limit: u32, remaining: u32, reset_after: f64) -> HeaderMap {
        let mut h = HeaderMap::new();
        let mut set = |k: &'static str, v: String| {
            h.insert(k, HeaderValue::from_str(&v).unwrap());
        };
        set("x-ratelimit-bucket", bucket.into());
        set("x-ratelimit-limit", limit.to_string());
        set("x-ratelimit-remaining", remaining.to_string());
        set("x-ratelimit-reset-after", reset_after.to_string());
        h
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_bucket_admits_one_request_until_it_is_known() {
        let limiter = RateLimiter::new(50);
        let first = limiter.acquire(&route("1")).await;
        // The second waits for the first answer, not for a timer.
        let one = route("1");
        let second = tokio::time::timeout(Duration::from_millis(500), limiter.acquire(&one));
        assert!(second.await.is_err());
        first.complete(&route("1"), &headers("abc", 5, 4, 5.0), None);
        let started = Instant::now();
        let second = limiter.acquire(&route("1")).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        // Another channel is another bucket, even with the same hash.
        let other = limiter.acquire(&route("2")).await;
        second.complete(&route("1"), &headers("abc", 5, 3, 5.0), None);
        other.complete(&route("2"), &headers("abc", 5, 4, 5.0), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_used_up_bucket_releases_its_waiters_at_its_own_pace() {
        let limiter = std::sync::Arc::new(RateLimiter::new(1000));
        let r = route("7");
        let permit = limiter.acquire(&r).await;
        permit.complete(&r, &headers("h", 2, 0, 1.0), None);
        let started = Instant::now();
        let mut waiters = Vec::new();
        for _ in 0..5 {
            let (limiter, r) = (limiter.clone(), r.clone());
            waiters.push(tokio::spawn(async move {
                let permit = limiter.acquire(&r).await;
                let at = started.elapsed();
                // Each answer says what a bucket of 2 per second used up says.
                tokio::time::sleep(Duration::from_millis(10)).await;
                permit.complete(&r, &headers("h", 2, 0, 1.0), None);
                at
            }));
        }
        let mut times = Vec::new();
        for w in waiters {
            times.push(w.await.unwrap());
        }
        times.sort();
        // Two at the reset, the others only after the next windows.
        assert!(
            times[..2].iter().all(|t| *t == Duration::from_secs(1)),
            "{times:?}"
        );
        assert!(
            times[2..].iter().all(|t| *t > Duration::from_secs(1)),
            "{times:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_parks_only_its_bucket_and_a_global_one_parks_all() {
        let limiter = RateLimiter::new(50);
        let (a, b) = (route("1"), route("2"));
        let permit = limiter.acquire(&a).await;
        permit.complete(
            &a,
            &headers("h", 5, 0, 60.0),
            Some((Duration::from_secs(60), Scope::User)),
        );
        let started = Instant::now();
        let permit = limiter.acquire(&b).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        permit.complete(
            &b,
            &HeaderMap::new(),
            Some((Duration::from_secs(2), Scope::Global)),
        );
        let permit = limiter.acquire(&b).await;
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        permit.complete(&b, &headers("h", 5, 4, 5.0), None);
        let permit = limiter.acquire(&a).await;
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        drop(permit);
    }

    #[tokio::test(start_paused = true)]
    async fn the_global_limit_holds_in_every_second() {
        let limiter = RateLimiter::new(10);
        let started = Instant::now();
        let mut times = Vec::new();
        for i in 0..35 {
            let r = route(&i.to_string());
            let permit = limiter.acquire(&r).await;
            times.push(started.elapsed());
            permit.complete(&r, &headers("h", 5, 4, 5.0), None);
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 10,
                "{in_window} requests within a second of {t:?}"
            );
        }
        assert_eq!(times[34], Duration::from_secs(3));
        // Interaction answers are exempt.
        let exempt = Route {
            global: false,
            ..route("x")
        };
        let at = started.elapsed();
        drop(limiter.acquire(&exempt).await);
        assert_eq!(started.elapsed(), at);
    }

    #[test]
    fn scope_comes_from_the_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(scope(&h, false), Scope::User);
        assert_eq!(scope(&h, true), Scope::Global);
        h.insert("x-ratelimit-scope", HeaderValue::from_static("shared"));
        assert_eq!(scope(&h, false), Scope::Shared);
    }
}
