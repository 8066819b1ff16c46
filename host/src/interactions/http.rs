//! The HTTP interactions endpoint: Discord POSTs each interaction to a URL of
//! ours instead of sending it over the gateway. Every request is signed with the
//! application's Ed25519 key over `X-Signature-Timestamp` ++ the raw body; a bad
//! or stale signature is answered 401 (Discord itself probes with forged ones).

use super::{Responder, handle};
use crate::platform::Platform;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How far a request's timestamp may be from our clock: replays of an old,
/// validly signed request are refused.
const MAX_SKEW_SECONDS: i64 = 5 * 60;
/// Longer than `Platform::defer_after`, so a deferral is always sent in time.
const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// Checks Discord's signatures with the application's public key.
#[derive(Clone, Debug)]
pub struct SignatureCheck {
    key: VerifyingKey,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Signature-Ed25519 or X-Signature-Timestamp")]
    Missing,
    #[error("the signature is malformed")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the timestamp is more than five minutes from now")]
    Stale,
}

impl SignatureCheck {
    /// From the application's public key as the developer portal shows it (hex).
    pub fn from_hex(public_key: &str) -> Result<SignatureCheck, String> {
        let bytes: [u8; 32] = hex::decode(public_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(
                "the public key must be 64 hex digits (the developer portal's \"Public Key\")",
            )?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| format!("not an Ed25519 public key: {e}"))?;
        Ok(SignatureCheck { key })
    }

    /// Verifies one request; `now` is the current unix time in seconds.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), SignatureError> {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(signature), Some(timestamp)) = (
            header("x-signature-ed25519"),
            header("x-signature-timestamp"),
        ) else {
            return Err(SignatureError::Missing);
        };
        let signature: [u8; 64] = hex::decode(signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(SignatureError::Malformed)?;
        let sent_at: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        self.key
            .verify(&message, &Signature::from_bytes(&signature))
            .map_err(|_| SignatureError::Mismatch)?;
        if (now - sent_at).abs() > MAX_SKEW_SECONDS {
            return Err(SignatureError::Stale);
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Endpoint {
    platform: Arc<Platform>,
    check: SignatureCheck,
}

/// `POST /interactions`.
pub fn router(platform: Arc<Platform>, check: SignatureCheck) -> Router {
    Router::new()
        .route("/interactions", post(interaction))
        .with_state(Endpoint { platform, check })
}

async fn interaction(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(error) = endpoint
        .check
        .verify(&headers, &body, chrono::Utc::now().timestamp())
    {
        tracing::info!(%error, "refused an interaction request");
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid request signature"})),
        )
            .into_response();
    }
    let Ok(raw) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body is not JSON");
    };
    if raw["type"] == 1 {
        return axum::Json(json!({"type": 1})).into_response();
    }
    let interaction = match serde_json::from_value(raw) {
        Ok(interaction) => interaction,
        Err(error) => {
            tracing::warn!(%error, "an interaction we could not read");
            return bad_request("not an interaction this endpoint understands");
        }
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    tokio::spawn(handle(
        endpoint.platform.clone(),
        interaction,
        Responder::Http(reply),
    ));
    match tokio::time::timeout(ANSWER_WAIT, answer).await {
        Ok(Ok(response)) => axum::Json(response).into_response(),
        // The interaction produced no response (unsupported kind) or ran out of time.
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

fn bad_request(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": why}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn signed(key: &SigningKey, timestamp: &str, body: &[u8]) -> HeaderMap {
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-signature-ed25519",
            hex::encode(key.sign(&message).to_bytes()).parse().unwrap(),
        );
        headers.insert("x-signature-timestamp", timestamp.parse().unwrap());
        headers
    }

    #[test]
    fn accepts_good_signatures_and_refuses_the_rest() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let check = SignatureCheck::from_hex(&hex::encode(key.verifying_key().to_bytes())).unwrap();
        let body = br#"{"type":1}"#;
        let now = 1_800_000_000;
        let headers = signed(&key, "1800000000", body);
        assert_eq!(check.verify(&headers, body, now), Ok(()));
        assert_eq!(
            check.verify(&headers, br#"{"type":2}"#, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check.verify(&headers, body, now + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check.verify(&HeaderMap::new(), body, now),
            Err(SignatureError::Missing)
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        assert_eq!(
            check.verify(&signed(&other, "1800000000", body), body, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_bad_public_key_says_what_is_expected() {
        assert!(
            SignatureCheck::from_hex("abc")
                .unwrap_err()
                .contains("64 hex digits")
        );
    }
}
