//! What wraps every request: a request id (taken from `X-Request-ID` when it is
//! sane, else made up) that is echoed back and carried by every log line; a
//! per-IP rate limit (per caller limits are applied when the caller is known,
//! probes are exempt, and the client address is read through trusted proxies
//! only); security headers; CORS for the configured origins only; and the
//! request counters `/metrics` shows.

use super::error::ApiError;
use super::{ApiConfig, ApiState, auth::Caller};
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
    if let Err(limited) = state.limiter().check_ip(client) {
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

/// The API's rate limits: requests per client IP, requests per caller, and
/// WebSocket messages per caller. Each allows a minute's allowance as a burst and
/// refills continuously (GCRA); a request over it gets 429 with the seconds until
/// the next one would pass. Keys live in sharded maps, so callers do not contend
/// on one lock; [`RateLimiter::forget_idle`] drops the keys that are full again.
pub struct RateLimiter {
    ip: DefaultKeyedRateLimiter<IpAddr>,
    caller: DefaultKeyedRateLimiter<CallerKey>,
    frames: DefaultKeyedRateLimiter<CallerKey>,
}

impl RateLimiter {
    pub fn new(config: &ApiConfig) -> RateLimiter {
        RateLimiter {
            ip: per_minute(config.rate_limit_ip),
            caller: per_minute(config.rate_limit_key),
            frames: per_minute(config.rate_limit_ws),
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        verdict(&self.ip, &ip_bucket(ip))
    }

    pub fn check_caller(&self, caller: &Caller) -> Result<(), ApiError> {
        verdict(&self.caller, &CallerKey::from(caller))
    }

    /// An operator's request: the same allowance per operator as per API key.
    pub fn check_operator(&self, operator_id: &str) -> Result<(), ApiError> {
        verdict(&self.caller, &CallerKey::Operator(operator_id.to_string()))
    }

    /// One WebSocket message from `caller`, whichever socket it came on.
    pub fn check_frame(&self, caller: &Caller) -> Result<(), ApiError> {
        verdict(&self.frames, &CallerKey::from(caller))
    }

    /// Drops the keys whose allowance is full again: such a key behaves exactly
    /// like one never seen, so only memory changes.
    pub fn forget_idle(&self) {
        self.ip.retain_recent();
        self.ip.shrink_to_fit();
        self.caller.retain_recent();
        self.caller.shrink_to_fit();
        self.frames.retain_recent();
        self.frames.shrink_to_fit();
    }
}

fn per_minute<K: Clone + Eq + Hash>(allowance: u32) -> DefaultKeyedRateLimiter<K> {
    governor::RateLimiter::keyed(Quota::per_minute(
        NonZeroU32::new(allowance).unwrap_or(NonZeroU32::MIN),
    ))
}

fn verdict<K: Clone + Eq + Hash>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), ApiError> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::RateLimited {
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
        }
    })
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

    #[test]
    fn a_bucket_allows_its_allowance_then_says_how_long_to_wait() {
        let limiter = limiter(3);
        for _ in 0..3 {
            limiter.check_ip(ip("192.0.2.1")).unwrap();
        }
        match limiter.check_ip(ip("192.0.2.1")) {
            Err(ApiError::RateLimited { retry_after }) => assert!((1..=20).contains(&retry_after)),
            other => panic!("expected 429, got {other:?}"),
        }
        // Another address has its own bucket.
        limiter.check_ip(ip("192.0.2.2")).unwrap();
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter = limiter(2);
        limiter.check_ip(ip("2001:db8:1:2::1")).unwrap();
        limiter.check_ip(ip("2001:db8:1:2:ffff::9")).unwrap();
        assert!(
            limiter.check_ip(ip("2001:db8:1:2::abcd")).is_err(),
            "rotating within the /64 does not escape"
        );
        limiter.check_ip(ip("2001:db8:1:3::1")).unwrap();
        limiter.check_ip(ip("192.0.2.9")).unwrap();
        limiter.check_ip(ip("::ffff:192.0.2.9")).unwrap();
        assert!(limiter.check_ip(ip("192.0.2.9")).is_err());
    }

    #[test]
    fn callers_and_their_websocket_messages_have_separate_allowances() {
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
        limiter.check_caller(&ada).unwrap();
        assert!(limiter.check_caller(&ada).is_err());
        limiter.check_caller(&key).unwrap();
        limiter.check_frame(&ada).unwrap();
        assert!(limiter.check_frame(&ada).is_err());
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let limiter = limiter(6000);
        limiter.check_ip(ip("192.0.2.1")).unwrap();
        limiter.check_ip(ip("2001:db8::1")).unwrap();
        assert_eq!(limiter.ip.len(), 2);
        // At 100 a second, one request is paid back after 10 ms.
        std::thread::sleep(Duration::from_millis(50));
        limiter.forget_idle();
        assert_eq!(limiter.ip.len(), 0);
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
