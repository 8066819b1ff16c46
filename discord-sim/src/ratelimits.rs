//! Discord's rate limits as the simulator keeps them, so a client's limiter can be
//! tested against something that pushes back:
//!
//! - **Per-route buckets.** Every REST answer carries `X-RateLimit-Bucket` (a hash of
//!   the method and route template, shared by every major parameter), `-Limit`,
//!   `-Remaining`, `-Reset`, `-Reset-After`. A bucket is that hash plus the major
//!   parameter (channel, guild, or webhook id and token) and allows
//!   [`SimConfig::route_limit`](crate::SimConfig::route_limit) requests per
//!   [`SimConfig::route_reset`](crate::SimConfig::route_reset), counted from the first
//!   request of the window; one more is a 429 scoped `user`.
//! - **Global limit.** With [`SimConfig::global_limit`](crate::SimConfig::global_limit),
//!   more than that many requests in any second (interaction answers exempt) are a
//!   429 scoped `global`.
//! - **A limited channel.** [`Simulator::rate_limit_channel`](crate::Simulator::rate_limit_channel)
//!   makes every request to one channel answer 429 until a deadline, as a channel
//!   under a long limit does.

use axum::http::{HeaderMap, HeaderValue};
use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A request's bucket as Discord would see it.
#[derive(Clone, Debug)]
pub struct RouteKey {
    /// Discord's bucket hash: the same for every major parameter of a route.
    pub hash: String,
    pub major: String,
    /// The channel of a `/channels/{id}/…` route.
    pub channel: Option<u64>,
    /// Whether the global limit applies (not to interaction answers).
    pub global: bool,
}

impl RouteKey {
    pub fn of(method: &str, path: &str) -> RouteKey {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let top = segments.first().copied().unwrap_or("");
        let token_route = matches!(top, "webhooks" | "interactions");
        let major = match top {
            "channels" | "guilds" => segments.get(1).copied().unwrap_or("").to_string(),
            _ if token_route => segments
                .iter()
                .skip(1)
                .take(2)
                .copied()
                .collect::<Vec<_>>()
                .join("/"),
            _ => String::new(),
        };
        let template: Vec<&str> = segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let after_reactions = i > 0 && segments[i - 1] == "reactions";
                if s.bytes().all(|b| b.is_ascii_digit())
                    || (token_route && i == 2)
                    || after_reactions
                {
                    "{}"
                } else {
                    s
                }
            })
            .collect();
        let mut hasher = DefaultHasher::new();
        (method, template.join("/")).hash(&mut hasher);
        RouteKey {
            hash: format!("{:016x}", hasher.finish()),
            major,
            channel: (top == "channels")
                .then(|| segments.get(1).and_then(|c| c.parse().ok()))
                .flatten(),
            global: !token_route,
        }
    }
}

/// A refusal: how long to wait and whether it is global.
#[derive(Debug, PartialEq)]
pub struct Limited {
    pub retry_after: Duration,
    pub global: bool,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    used: u32,
}

#[derive(Debug, Default)]
struct State {
    windows: HashMap<String, Window>,
    /// When the requests of the last second arrived (only with a global limit).
    recent: VecDeque<Instant>,
    blocked_channels: HashMap<u64, Instant>,
}

#[derive(Debug)]
pub struct Limits {
    route_limit: u32,
    route_reset: Duration,
    global_limit: Option<u32>,
    state: Mutex<State>,
}

fn set(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}

/// Seconds with millisecond precision, as Discord writes them.
fn seconds(d: Duration) -> String {
    format!("{:.3}", (d.as_secs_f64() * 1000.0).ceil() / 1000.0)
}

impl Limits {
    pub fn new(route_limit: u32, route_reset: Duration, global_limit: Option<u32>) -> Limits {
        Limits {
            route_limit: route_limit.max(1),
            route_reset,
            global_limit,
            state: Mutex::new(State::default()),
        }
    }

    pub fn block_channel(&self, channel_id: u64, until: Instant) {
        self.state
            .lock()
            .expect("limits")
            .blocked_channels
            .insert(channel_id, until);
    }

    /// Counts a request against its bucket and the global limit; `Err` if it is over
    /// either (it then counts toward neither).
    pub fn take(&self, key: &RouteKey) -> Result<HeaderMap, Limited> {
        let now = Instant::now();
        let mut state = self.state.lock().expect("limits");
        if let Some(until) = key
            .channel
            .and_then(|c| state.blocked_channels.get(&c).copied())
            .filter(|u| *u > now)
        {
            return Err(Limited {
                retry_after: until - now,
                global: false,
            });
        }
        if let Some(limit) = self.global_limit.filter(|_| key.global) {
            while state
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                state.recent.pop_front();
            }
            if state.recent.len() >= limit as usize {
                let oldest = *state.recent.front().expect("non-empty");
                return Err(Limited {
                    retry_after: (oldest + Duration::from_secs(1)).saturating_duration_since(now),
                    global: true,
                });
            }
        }
        let window = state
            .windows
            .entry(format!("{} {}", key.hash, key.major))
            .or_insert(Window {
                started: now,
                used: 0,
            });
        if now.duration_since(window.started) >= self.route_reset {
            *window = Window {
                started: now,
                used: 0,
            };
        }
        let reset_after = (window.started + self.route_reset).saturating_duration_since(now);
        if window.used >= self.route_limit {
            return Err(Limited {
                retry_after: reset_after,
                global: false,
            });
        }
        window.used += 1;
        let remaining = self.route_limit - window.used;
        if self.global_limit.is_some() && key.global {
            state.recent.push_back(now);
        }
        let mut headers = HeaderMap::new();
        set(&mut headers, "x-ratelimit-bucket", key.hash.clone());
        set(
            &mut headers,
            "x-ratelimit-limit",
            self.route_limit.to_string(),
        );
        set(&mut headers, "x-ratelimit-remaining", remaining.to_string());
        set(
            &mut headers,
            "x-ratelimit-reset-after",
            seconds(reset_after),
        );
        let reset_at = crate::ids::now_ms() as f64 / 1000.0 + reset_after.as_secs_f64();
        set(&mut headers, "x-ratelimit-reset", format!("{reset_at:.3}"));
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_share_a_hash_across_major_parameters() {
        let a = RouteKey::of("POST", "/channels/1/messages");
        let b = RouteKey::of("POST", "/channels/2/messages");
        assert_eq!(a.hash, b.hash);
        assert_eq!((a.major.as_str(), a.channel), ("1", Some(1)));
        assert_ne!(a.hash, RouteKey::of("GET", "/channels/1/messages").hash);
        let hook = RouteKey::of("POST", "/webhooks/5/tok");
        assert_eq!((hook.major.as_str(), hook.global), ("5/tok", false));
        assert_eq!(
            RouteKey::of("PUT", "/channels/1/messages/2/reactions/👍/@me").hash,
            RouteKey::of("PUT", "/channels/1/messages/3/reactions/x:9/@me").hash
        );
    }

    #[test]
    fn a_bucket_counts_down_then_refuses_until_its_reset() {
        let limits = Limits::new(2, Duration::from_millis(50), None);
        let key = RouteKey::of("POST", "/channels/1/messages");
        let first = limits.take(&key).unwrap();
        assert_eq!(first["x-ratelimit-remaining"], "1");
        assert_eq!(first["x-ratelimit-limit"], "2");
        assert_eq!(first["x-ratelimit-bucket"], key.hash.as_str());
        assert_eq!(limits.take(&key).unwrap()["x-ratelimit-remaining"], "0");
        let refused = limits.take(&key).unwrap_err();
        assert!(!refused.global && refused.retry_after <= Duration::from_millis(50));
        // Another channel is another bucket.
        limits
            .take(&RouteKey::of("POST", "/channels/2/messages"))
            .unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert!(limits.take(&key).is_ok());
    }

    #[test]
    fn the_global_limit_and_a_blocked_channel_refuse() {
        let limits = Limits::new(100, Duration::from_secs(1), Some(2));
        for c in 1..=2 {
            limits
                .take(&RouteKey::of("GET", &format!("/channels/{c}")))
                .unwrap();
        }
        let refused = limits
            .take(&RouteKey::of("GET", "/channels/3"))
            .unwrap_err();
        assert!(refused.global);
        // Interaction answers are exempt.
        limits
            .take(&RouteKey::of("POST", "/interactions/1/tok/callback"))
            .unwrap();
        let limits = Limits::new(100, Duration::from_secs(1), None);
        limits.block_channel(7, Instant::now() + Duration::from_secs(60));
        let blocked = limits
            .take(&RouteKey::of("GET", "/channels/7"))
            .unwrap_err();
        assert!(blocked.retry_after > Duration::from_secs(59));
        limits.take(&RouteKey::of("GET", "/channels/8")).unwrap();
    }
}
