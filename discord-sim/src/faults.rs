//! Faults on demand: 429s and 5xx answers for the next N REST requests, and the
//! punishment Discord deals to clients that ignore `Retry-After` — a request that
//! arrives before an earlier 429's `retry_after` has elapsed is refused again
//! (per route, or for everything after a global 429).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    rate_limited: u32,
    retry_after: Duration,
    global: bool,
    failing: u32,
    fail_status: u16,
    /// Route bucket → end of its 429 window.
    blocked_routes: HashMap<String, Instant>,
    blocked_global: Option<Instant>,
}

/// What to do with a request.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Pass,
    RateLimited { retry_after: Duration, global: bool },
    Fail(u16),
}

#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    pub fn rate_limit(&self, requests: u32, retry_after: Duration, global: bool) {
        let mut s = self.state.lock().expect("faults");
        s.rate_limited = requests;
        s.retry_after = retry_after;
        s.global = global;
    }

    pub fn fail_next(&self, requests: u32, status: u16) {
        let mut s = self.state.lock().expect("faults");
        s.failing = requests;
        s.fail_status = status;
    }

    /// Decides the fate of a request to `bucket` (its method and path).
    pub fn check(&self, bucket: &str) -> Verdict {
        let mut s = self.state.lock().expect("faults");
        let now = Instant::now();
        if let Some(until) = s.blocked_global.filter(|u| *u > now) {
            return Verdict::RateLimited {
                retry_after: until - now,
                global: true,
            };
        }
        if let Some(until) = s.blocked_routes.get(bucket).copied().filter(|u| *u > now) {
            return Verdict::RateLimited {
                retry_after: until - now,
                global: false,
            };
        }
        if s.rate_limited > 0 {
            s.rate_limited -= 1;
            let (retry_after, global) = (s.retry_after, s.global);
            if global {
                s.blocked_global = Some(now + retry_after);
            } else {
                s.blocked_routes
                    .insert(bucket.to_string(), now + retry_after);
            }
            return Verdict::RateLimited {
                retry_after,
                global,
            };
        }
        if s.failing > 0 {
            s.failing -= 1;
            return Verdict::Fail(s.fail_status);
        }
        Verdict::Pass
    }
}

/// Discord's 429 for a request to `bucket` (its `X-RateLimit-Bucket` hash):
/// fractional seconds in the body and in `Retry-After` / `X-RateLimit-Reset-After`,
/// plus the scope headers.
pub fn too_many_requests(retry_after: Duration, global: bool, bucket: &str) -> Response {
    let secs = retry_after.as_secs_f64();
    // Millisecond precision, like Discord's `retry_after`.
    let secs = (secs * 1000.0).ceil() / 1000.0;
    let body = json!({
        "message": "You are being rate limited.",
        "retry_after": secs,
        "global": global,
    });
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let h = r.headers_mut();
    let text = format!("{secs}");
    let reset_at = crate::ids::now_ms() as f64 / 1000.0 + secs;
    let mut set = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set("retry-after", text.clone());
    set("x-ratelimit-reset-after", text);
    set("x-ratelimit-limit", "5".into());
    set("x-ratelimit-remaining", "0".into());
    set("x-ratelimit-reset", format!("{reset_at:.3}"));
    set("x-ratelimit-bucket", bucket.to_string());
    set(
        "x-ratelimit-scope",
        if global { "global" } else { "user" }.into(),
    );
    if global {
        set("x-ratelimit-global", "true".into());
    }
    r
}

/// An injected server error, with a JSON body like Discord's edge sends.
pub fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = format!(
        "{}: {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Server Error")
    );
    (status, axum::Json(json!({ "message": message, "code": 0 }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_then_punishes_then_passes() {
        let f = Faults::default();
        f.rate_limit(1, Duration::from_millis(50), false);
        assert!(matches!(f.check("GET a"), Verdict::RateLimited { .. }));
        // Too early: punished, and the budget is not consumed by it.
        assert!(matches!(f.check("GET a"), Verdict::RateLimited { .. }));
        // Another route is not blocked by a route-scoped 429.
        assert_eq!(f.check("GET b"), Verdict::Pass);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(f.check("GET a"), Verdict::Pass);
        f.fail_next(2, 502);
        assert_eq!(f.check("GET a"), Verdict::Fail(502));
        assert_eq!(f.check("GET a"), Verdict::Fail(502));
        assert_eq!(f.check("GET a"), Verdict::Pass);
    }
}
