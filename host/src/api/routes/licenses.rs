//! Self-hosting licences, the hosted platform's side (seed 001, ADR 0016):
//! an installation activates its licence and refreshes its lease with signed
//! pings. No session or API key: the licence, then the activation's secret,
//! is the credential; the per-IP rate limit applies as everywhere.
//!
//! Refusals carry their own codes (`license_revoked`, `signature_stale`, …,
//! listed on each operation) in the API's usual error body, so a runner can
//! act on them and show the message to its operator.

use crate::api::ApiState;
use crate::api::error::{ApiError, ErrorBody, ErrorDetail, Json};
use crate::licensing::lease::LeaseClaims;
use crate::licensing::server::{Granted, LicenseServer, Refusal, SIGNATURE_HEADER};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = activate_request_example)]
pub struct ActivateRequest {
    /// The licence key (`tdl1.…`), as `TOWNESDEV_LICENSE` holds it.
    pub license: String,
    /// A name for the installation, for the platform's log (at most 100
    /// characters, no control characters).
    pub instance: Option<String>,
}

/// An activation: the installation's id and secret, and its first lease.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = activation_example)]
pub struct Activation {
    /// `act_…`: what the installation's refresh pings name.
    pub activation_id: String,
    /// Signs the refresh pings (HMAC-SHA256); given in this answer only.
    pub secret: String,
    #[serde(flatten)]
    pub lease: Lease,
}

/// A lease and what it says. Only `lease` is signed: a runner verifies it
/// with the issuer's public key and acts on its claims; the other fields
/// repeat them for people and scripts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = lease_example)]
pub struct Lease {
    /// `tdlease1.{claims}.{signature}`, signed with the licence issuer's key.
    pub lease: String,
    /// The plan's name.
    #[schema(example = "pro")]
    pub plan: String,
    /// Marketplace features the plan may enable; empty: every one.
    pub flags: Vec<String>,
    /// The plan's limits: each invocation's (`memory_mib`, `cpu_ms`, …),
    /// `ai_tokens_per_day` and `guilds` when capped, and `features`.
    #[schema(value_type = Object)]
    pub limits: Value,
    /// When to ask for the next lease.
    pub refresh_in_sec: u64,
    /// When the lease ends (never after the licence).
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    fn new(text: String, claims: &LeaseClaims) -> Lease {
        Lease {
            lease: text,
            plan: claims.plan_name.clone(),
            flags: claims.plan.features.clone().unwrap_or_default(),
            limits: serde_json::to_value(&claims.plan).expect("a plan serializes"),
            refresh_in_sec: claims.refresh_in_sec,
            expires_at: claims.expires_at,
        }
    }
}

/// A refresh ping, signed in `Townes-Signature`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = ping_example)]
#[allow(dead_code)] // The handler reads the raw body it verifies; this documents it.
pub struct RefreshPing {
    /// The activation's id.
    pub activation_id: String,
    /// Random, 1 to 128 letters, digits, `-` or `_`, new for each refresh;
    /// the same when a refresh is retried.
    pub ping_id: String,
    pub sent_at: DateTime<Utc>,
}

/// A lease renewed, with the activation it belongs to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = refreshed_example)]
pub struct Refreshed {
    pub activation_id: String,
    #[serde(flatten)]
    pub lease: Lease,
}

/// Activates a self-hosting licence: a new activation, with the secret that
/// signs its refresh pings, and a first lease.
#[utoipa::path(post, path = "/licenses/activate", tag = "licenses", operation_id = "activateLicense",
    request_body = ActivateRequest,
    responses(
        (status = 200, description = "Activated", body = Activation),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "The licence is refused: `license_bad_signature` (changed, or another issuer's), `license_expired`, `license_revoked` (the message gives the reason), `license_unknown` (not issued here) or `license_other_tenant` (its id was issued to another tenant)", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "`license_malformed` (not a licence key), `license_not_yet_valid` (issued in the future), or a refused body (`invalid`)", body = ErrorBody),
        (status = 429, description = "Too many requests; see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Licensing is off on this platform", body = ErrorBody)))]
pub async fn activate(
    State(state): State<ApiState>,
    Json(body): Json<ActivateRequest>,
) -> Result<axum::Json<Activation>, Refused> {
    let server = licensing(&state)?;
    // It goes to the log: no control characters that could fake a line.
    if body
        .instance
        .as_ref()
        .is_some_and(|i| i.chars().count() > 100 || i.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(
            "/instance",
            "at most 100 characters, none of them control characters",
        )
        .into());
    }
    let (secret, Granted { lease, claims }) = server
        .activate(
            state.store(),
            state.runtime().plans(),
            &body.license,
            body.instance.as_deref(),
            Utc::now(),
        )
        .await?;
    Ok(axum::Json(Activation {
        activation_id: claims.activation_id.clone(),
        secret: secret.expose().to_string(),
        lease: Lease::new(lease, &claims),
    }))
}

/// Renews an activation's lease. The ping is signed:
/// `Townes-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`;
/// one signed more than 300 s from the platform's clock is refused as stale.
/// A ping sent again (the last `pingId` answered) gets the same lease back
/// and changes nothing.
// The header is described here rather than as a parameter: the TypeScript
// client has no header parameters, and runners, not dashboards, send pings.
#[utoipa::path(post, path = "/licenses/refresh", tag = "licenses", operation_id = "refreshLicense",
    request_body = RefreshPing,
    responses(
        (status = 200, description = "A fresh lease, or for a ping sent again the same one", body = Refreshed),
        (status = 401, description = "`signature_missing`, `signature_invalid`, or `signature_stale` (signed more than 300 s away from the platform's clock)", body = ErrorBody),
        (status = 403, description = "The licence was revoked (`license_revoked`, with the reason) or expired (`license_expired`)", body = ErrorBody),
        (status = 404, description = "`activation_unknown`: activate again", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 422, description = "The body is not a ping (`invalid`)", body = ErrorBody),
        (status = 429, description = "Too many requests; see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Licensing is off on this platform", body = ErrorBody)))]
pub async fn refresh(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Refreshed>, Refused> {
    let server = licensing(&state)?;
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    let granted = server
        .refresh(
            state.store(),
            state.runtime().plans(),
            signature,
            &body,
            Utc::now(),
        )
        .await?;
    Ok(axum::Json(Refreshed {
        activation_id: granted.claims.activation_id.clone(),
        lease: Lease::new(granted.lease, &granted.claims),
    }))
}

fn licensing(state: &ApiState) -> Result<&LicenseServer, Refused> {
    state.license_server().ok_or_else(|| {
        ApiError::Unavailable {
            message: "self-hosting licences are off on this platform".into(),
            hint: Some(
                "its operator sets TOWNES_LICENSE_SIGNING_KEY to the signing key file `townes license keygen` wrote, and restarts".into(),
            ),
        }
        .into()
    })
}

/// What the licence routes answer instead of a lease: the platform's refusal
/// with its own code, or an error of the API's.
pub enum Refused {
    Licence(Refusal),
    Api(ApiError),
}

impl From<Refusal> for Refused {
    fn from(refusal: Refusal) -> Refused {
        match refusal {
            Refusal::Store(e) => Refused::Api(ApiError::internal(e)),
            refusal => Refused::Licence(refusal),
        }
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        Refused::Api(e)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let refusal = match self {
            Refused::Api(e) => return e.into_response(),
            Refused::Licence(refusal) => refusal,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: refusal.code(),
                message: refusal.to_string(),
                hint: refusal.hint().map(str::to_string),
                problems: Vec::new(),
            },
        };
        (refusal.status(), axum::Json(body)).into_response()
    }
}

// The document's examples: an installation of Ada's tenant (see `examples`)
// on plan `pro`, licensed for two features.

const ACTIVATION: &str = "act_5d0c8e2a9b7f41e3a6c2d8f0b4e1a793";
const LEASE: &str = "tdlease1.eyJhY3RpdmF0aW9uX2lkIjoiYWN0XzVkMGM4ZTJhOWI3ZjQxZTNhNmMyZDhmMGI0ZTFhNzkzIn0.c2lnbmF0dXJlLW9mLTY0LWJ5dGVzLW1hZGUtdXAtZm9yLXRoZS1leGFtcGxlLW9ubHktbm90LXJlYWw";

fn activate_request_example() -> Value {
    json!({
        "license": "tdl1.eyJpZCI6ImxpY185ZjJhN2MxZTRiOGQwNjNhIn0.bWFkZS11cC1zaWduYXR1cmUtZm9yLXRoZS1leGFtcGxl",
        "instance": "lantern-cafe-vps"
    })
}

fn lease_example() -> Value {
    json!({
        "lease": LEASE,
        "plan": "pro",
        "flags": ["welcome", "tickets"],
        "limits": {
            "memory_mib": 64, "cpu_ms": 200, "wall_ms": 5000,
            "ai_tokens_per_day": 500000, "features": ["welcome", "tickets"]
        },
        "refreshInSec": 3600,
        "expiresAt": "2026-12-10T12:00:00Z"
    })
}

fn activation_example() -> Value {
    let mut answer = lease_example();
    answer["activationId"] = ACTIVATION.into();
    answer["secret"] = "9c4f0e7a2b5d8c1e3f6a9b0c2d4e7f1a8b3c5d6e9f0a1b2c4d5e6f7a8b9c0d1e".into();
    answer
}

fn refreshed_example() -> Value {
    let mut answer = lease_example();
    answer["activationId"] = ACTIVATION.into();
    answer
}

fn ping_example() -> Value {
    json!({
        "activationId": ACTIVATION,
        "pingId": "3b8e1f0c6a2d4e9f",
        "sentAt": "2026-12-07T13:00:00Z"
    })
}
