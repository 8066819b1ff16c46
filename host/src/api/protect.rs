//! What wraps every request: a request id (taken from `X-Request-ID` when it is
//! sane, else made up) that is echoed back and carried by every log line; a
//! per-IP rate limit (per caller limits are applied when the caller is known);
//! security headers; CORS for the configured origins only; and the request
//! counters `/metrics` shows.

use super::ApiState;
use super::error::ApiError;
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
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
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path()
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

async fn limit_ip(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    if let Err(limited) = state.limiter().check(&format!("ip:{ip}"), Scope::Ip) {
        return limited.into_response();
    }
    next.run(request).await
}

#[derive(Clone, Copy)]
enum Scope {
    Ip,
    Caller,
}

/// Token buckets per IP and per caller: each holds a minute's allowance and
/// refills continuously, so bursts up to the allowance pass and a steady rate
/// above it gets 429 with the seconds until the next request would pass.
pub struct RateLimiter {
    per_minute_ip: u32,
    per_minute_caller: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept at most; past it, full (idle) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    pub fn new(per_minute_ip: u32, per_minute_caller: u32) -> RateLimiter {
        RateLimiter {
            per_minute_ip: per_minute_ip.max(1),
            per_minute_caller: per_minute_caller.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check_caller(&self, key: &str) -> Result<(), ApiError> {
        self.check(key, Scope::Caller)
    }

    fn check(&self, key: &str, scope: Scope) -> Result<(), ApiError> {
        let capacity = f64::from(match scope {
            Scope::Ip => self.per_minute_ip,
            Scope::Caller => self.per_minute_caller,
        });
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < capacity
            });
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second)
            .min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / per_second;
        Err(ApiError::RateLimited {
            retry_after: wait.ceil().max(1.0) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_allowance_then_says_how_long_to_wait() {
        let limiter = RateLimiter::new(3, 60);
        for _ in 0..3 {
            limiter.check("ip:a", Scope::Ip).unwrap();
        }
        match limiter.check("ip:a", Scope::Ip) {
            Err(ApiError::RateLimited { retry_after }) => assert!((1..=20).contains(&retry_after)),
            other => panic!("expected 429, got {other:?}"),
        }
        // Another key has its own bucket.
        limiter.check("ip:b", Scope::Ip).unwrap();
    }
}
