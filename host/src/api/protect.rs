//! What wraps every request: a request id (taken from `X-Request-ID` when it is
//! sane, else made up) that is echoed back and carried by every log line; a
//! per-IP rate limit (per caller limits are applied when the caller is known,
//! probes are exempt, and the client address is read through trusted proxies
//! only); security headers; CORS for the configured origins only; and the
//! request counters `/metrics` shows.

use super::error::ApiError;
use super::{ApiConfig, ApiState, auth::Caller};
use crate::shared_limits::{SharedLimits, Verdict};
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument as _;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, for handlers that want to mention it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn layers(routes: Router<ApiState>, state: &ApiState) -> Router<ApiState> {
    let mut routes = routes
        .layer(from_fn_with_state(state.clone(), limit_ip))
        .layer(from_fn(count));
    for (name, value) in SECURITY_HEADERS {
        routes = routes.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    let origins: Vec<HeaderValue> = state
        .config()
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, REQUEST_ID])
        .expose_headers([REQUEST_ID, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600));
    // Outermost: the request id, so even a refused preflight carries one.
    routes.layer(cors).layer(from_fn(request_id))
}

/// Sent on every response: the API serves JSON only, never a page to frame or sniff.
const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("cache-control", "no-store"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
];

async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 12]>()));
    request.extensions_mut().insert(RequestId(id.clone()));
    // ERROR only decides whether the span exists: it must under every filter
    // that lets a line of the request through (the default shows warnings
    // only). `tenant` is filled in once the caller is known (`Caller`).
    let span = tracing::error_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        tenant = tracing::field::Empty
    );
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

async fn count(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "(unmatched)".into());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    crate::metrics::metrics().record_api_request(
        method.as_str(),
        &route,
        status,
        started.elapsed(),
    );
    if status >= 500 {
        tracing::warn!(%method, route, status, "request failed");
    } else {
        tracing::debug!(%method, route, status, "request served");
    }
    response
}

/// Orchestrators' probes: never rate limited, so load on the API cannot make
/// an orchestrator restart a healthy process.
const PROBES: [&str; 2] = ["/healthz", "/readyz"];

async fn limit_ip(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if PROBES.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    // A router served without connect info (never the case in `ApiServer`) puts
    // every request in one bucket rather than none.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let client = client_ip(peer, request.headers(), &state.config().trusted_proxies);
    if let Err(limited) = state.limiter().check_ip(client).await {
        return limited.into_response();
    }
    next.run(request).await
}

/// The address a request comes from. That is the peer, unless the peer is a
/// trusted proxy: then `X-Forwarded-For` is read from the right (each proxy
/// appends the address it received the request from) and the first address
/// that is not a trusted proxy is the client. Whatever stands left of it was
/// written by the client itself, so it cannot choose its own bucket.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .rev()
        .flat_map(|value| value.to_str().unwrap_or_default().rsplit(','));
    for hop in hops {
        let hop = hop.trim();
        // Some proxies append the port too.
        let Some(ip) = hop
            .parse::<IpAddr>()
            .ok()
            .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        else {
            // Garbage from a hop: the last address known good stands.
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The bucket an address counts against: IPv4 per address, IPv6 per /64. One
/// subscriber is usually handed a whole /64, so keying single IPv6 addresses
/// would let it rotate through 2^64 buckets.
fn ip_bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64))),
        v4 => v4,
    }
}

/// A signed-in user, or an API key: the subject of the per-caller limits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum CallerKey {
    User(u64),
    Key(String),
    Operator(String),
}

impl From<&Caller> for CallerKey {
    fn from(caller: &Caller) -> CallerKey {
        match caller {
            Caller::User { user_id, .. } => CallerKey::User(*user_id),
            Caller::Key { key_id, .. } => CallerKey::Key(key_id.clone()),
        }
    }
}

impl std::fmt::Display for CallerKey {
    /// The caller's name in a shared key: `u:<user id>`, `k:<key id>`, `o:<operator id>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallerKey::User(id) => write!(f, "u:{id}"),
            CallerKey::Key(id) => write!(f, "k:{id}"),
            CallerKey::Operator(id) => write!(f, "o:{id}"),
        }
    }
}

/// The API's rate limits: requests per client IP, requests per caller, and
/// WebSocket messages per caller. Each allows a minute's allowance as a burst and
/// refills continuously (GCRA); a request over it gets 429 with the seconds until
/// the next one would pass.
///
/// With Redis ([`SharedLimits::with_redis`]) the allowances are shared by every
/// API process (the same GCRA, run by a script on Redis; keys
/// `townes:rl:<kind>:<key>` expire once full again). Without it, or while Redis
/// fails, each process keeps its own: keys live in sharded maps, so callers do
/// not contend on one lock, and [`RateLimiter::forget_idle`] drops the keys that
/// are full again.
pub struct RateLimiter {
    ip: Bucket<IpAddr>,
    caller: Bucket<CallerKey>,
    frames: Bucket<CallerKey>,
    shared: SharedLimits,
}

/// One kind of limit: its allowance per minute and this process's own buckets.
struct Bucket<K: Clone + Eq + Hash> {
    kind: &'static str,
    per_minute: u32,
    local: DefaultKeyedRateLimiter<K>,
}

impl<K: Clone + Eq + Hash + std::fmt::Display> Bucket<K> {
    fn new(kind: &'static str, per_minute: u32) -> Bucket<K> {
        Bucket {
            kind,
            per_minute,
            local: governor::RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN),
            )),
        }
    }

    async fn check(&self, shared: &SharedLimits, key: &K) -> Result<(), ApiError> {
        let wait = match shared
            .take(self.kind, &key.to_string(), self.per_minute)
            .await
        {
            Verdict::Pass => return Ok(()),
            Verdict::Wait(wait) => wait,
            Verdict::Local => match self.local.check_key(key) {
                Ok(()) => return Ok(()),
                Err(not_until) => not_until.wait_time_from(DefaultClock::default().now()),
            },
        };
        Err(ApiError::RateLimited {
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }

    fn forget_idle(&self) {
        self.local.retain_recent();
        self.local.shrink_to_fit();
    }
}

impl RateLimiter {
    /// Limits kept in this process.
    pub fn new(config: &ApiConfig) -> RateLimiter {
        RateLimiter::shared(config, SharedLimits::local())
    }

    /// Limits shared through `shared` when it uses Redis.
    pub fn shared(config: &ApiConfig, shared: SharedLimits) -> RateLimiter {
        RateLimiter {
            ip: Bucket::new("ip", config.rate_limit_ip),
            caller: Bucket::new("caller", config.rate_limit_key),
            frames: Bucket::new("frames", config.rate_limit_ws),
            shared,
        }
    }

    pub async fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.ip.check(&self.shared, &ip_bucket(ip)).await
    }

    pub async fn check_caller(&self, caller: &Caller) -> Result<(), ApiError> {
        self.caller
            .check(&self.shared, &CallerKey::from(caller))
            .await
    }

    /// An operator's request: the same allowance per operator as per API key.
    pub async fn check_operator(&self, operator_id: &str) -> Result<(), ApiError> {
        self.caller
            .check(&self.shared, &CallerKey::Operator(operator_id.to_string()))
            .await
    }

    /// One WebSocket message from `caller`, whichever socket it came on.
    pub async fn check_frame(&self, caller: &Caller) -> Result<(), ApiError> {
        self.frames
            .check(&self.shared, &CallerKey::from(caller))
            .await
    }

    /// Drops the local keys whose allowance is full again: such a key behaves
    /// exactly like one never seen, so only memory changes.
    pub fn forget_idle(&self) {
        self.ip.forget_idle();
        self.caller.forget_idle();
        self.frames.forget_idle();
    }
}

/// How often idle rate-limit keys are dropped. Between sweeps the maps grow
/// only by the keys first seen in that time, which the IP limit itself bounds.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Drops idle rate-limit keys every [`SWEEP_EVERY`], until aborted.
pub async fn sweep_rate_limits(state: ApiState) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        state.limiter().forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32) -> RateLimiter {
        RateLimiter::new(&ApiConfig {
            rate_limit_ip: per_minute,
            rate_limit_key: per_minute,
            rate_limit_ws: per_minute,
            ..ApiConfig::local()
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn a_bucket_allows_its_allowance_then_says_how_long_to_wait() {
        let limiter = limiter(3);
        for _ in 0..3 {
            limiter.check_ip(ip("192.0.2.1")).await.unwrap();
        }
        match limiter.check_ip(ip("192.0.2.1")).await {
            Err(ApiError::RateLimited { retry_after }) => assert!((1..=20).contains(&retry_after)),
            other => panic!("expected 429, got {other:?}"),
        }
        // Another address has its own bucket.
        limiter.check_ip(ip("192.0.2.2")).await.unwrap();
    }

    #[tokio::test]
    async fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter = limiter(2);
        limiter.check_ip(ip("2001:db8:1:2::1")).await.unwrap();
        limiter.check_ip(ip("2001:db8:1:2:ffff::9")).await.unwrap();
        assert!(
            limiter.check_ip(ip("2001:db8:1:2::abcd")).await.is_err(),
            "rotating within the /64 does not escape"
        );
        limiter.check_ip(ip("2001:db8:1:3::1")).await.unwrap();
        limiter.check_ip(ip("192.0.2.9")).await.unwrap();
        limiter.check_ip(ip("::ffff:192.0.2.9")).await.unwrap();
        assert!(limiter.check_ip(ip("192.0.2.9")).await.is_err());
    }

    #[tokio::test]
    async fn callers_and_their_websocket_messages_have_separate_allowances() {
        let limiter = limiter(1);
        let ada = Caller::User {
            tenant_id: "t".into(),
            user_id: 42,
            user_name: "ada".into(),
            session: "s".into(),
        };
        let key = Caller::Key {
            tenant_id: "t".into(),
            key_id: "k".into(),
        };
        limiter.check_caller(&ada).await.unwrap();
        assert!(limiter.check_caller(&ada).await.is_err());
        limiter.check_caller(&key).await.unwrap();
        limiter.check_frame(&ada).await.unwrap();
        assert!(limiter.check_frame(&ada).await.is_err());
    }

    #[tokio::test]
    async fn idle_keys_are_forgotten() {
        let limiter = limiter(6000);
        limiter.check_ip(ip("192.0.2.1")).await.unwrap();
        limiter.check_ip(ip("2001:db8::1")).await.unwrap();
        assert_eq!(limiter.ip.local.len(), 2);
        // At 100 a second, one request is paid back after 10 ms.
        std::thread::sleep(Duration::from_millis(50));
        limiter.forget_idle();
        assert_eq!(limiter.ip.local.len(), 0);
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let trusted: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::1/128".parse().unwrap(),
        ];
        let spoofed = forwarded(&["198.51.100.1, 203.0.113.5"]);
        // Not configured, or not from a proxy: the header is the client's word.
        assert_eq!(client_ip(ip("192.0.2.1"), &spoofed, &[]), ip("192.0.2.1"));
        assert_eq!(
            client_ip(ip("192.0.2.1"), &spoofed, &trusted),
            ip("192.0.2.1")
        );
        // From a proxy: the rightmost address that is not a proxy.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &spoofed, &trusted),
            ip("203.0.113.5")
        );
        let chained = forwarded(&["198.51.100.1, 203.0.113.5", "10.1.1.1", "[2001:db8::1]:443"]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &chained, &trusted),
            ip("203.0.113.5")
        );
        // No header, or garbage after the proxies: the nearest address known.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        let garbage = forwarded(&["203.0.113.5, not-an-ip, 10.9.9.9"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &garbage, &trusted),
            ip("10.9.9.9")
        );
    }
}
