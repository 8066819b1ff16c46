//! Stripe's webhooks: the signature over the raw body, and the few fields of
//! the events we act on.
//!
//! `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//! (several `v1` while a secret is being rolled). A delivery older or newer
//! than [`TOLERANCE`] is refused, so a captured delivery cannot be replayed
//! later; within it, the event id makes a replay change nothing.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// How far a delivery's timestamp may be from our clock (Stripe's libraries' default).
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header: only Stripe's deliveries are accepted here")]
    Missing,
    #[error("the Stripe-Signature header has no `t=` and `v1=` parts")]
    Malformed,
    #[error(
        "the signature does not match: check STRIPE_WEBHOOK_SECRET is the endpoint's signing secret (whsec_…)"
    )]
    Mismatch,
    #[error(
        "the delivery was signed at {signed_at}, more than {TOLERANCE_SECS} s from now: refused as stale (check this machine's clock if every delivery is)"
    )]
    Stale { signed_at: i64 },
}

/// Checks `header` signs `body` with `secret` at a time within the tolerance of `now`.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let (Some(signed_at), false) = (timestamp, signatures.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    let expected = sign(secret, signed_at, body);
    if !signatures
        .iter()
        .any(|s| bool::from(s.as_slice().ct_eq(&expected)))
    {
        return Err(SignatureError::Mismatch);
    }
    if (now - signed_at).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale { signed_at });
    }
    Ok(())
}

fn sign(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// An event as delivered: its id (what makes it once-only), type, creation
/// time, and the object it is about.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

/// The fields of a subscription we map onto a tenant.
#[derive(Debug, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub status: String,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    pub trial_end: Option<i64>,
    /// Before API version 2025-03-31 the period was on the subscription.
    pub current_period_end: Option<i64>,
    pub items: List<SubscriptionItem>,
    #[serde(default)]
    pub metadata: std::collections::HashMap<String, String>,
}

impl Subscription {
    /// The plan's price: the first item's.
    pub fn price(&self) -> Option<&str> {
        self.items.data.first().map(|item| item.price.id.as_str())
    }

    /// When the paid period ends: on the items since 2025-03-31.
    pub fn period_end(&self) -> Option<i64> {
        self.items
            .data
            .iter()
            .filter_map(|item| item.current_period_end)
            .max()
            .or(self.current_period_end)
    }
}

#[derive(Debug, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
}

#[derive(Debug, Deserialize)]
pub struct SubscriptionItem {
    pub price: Price,
    pub current_period_end: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct Price {
    pub id: String,
}

/// The fields of an invoice and of a Checkout session we use.
#[derive(Debug, Deserialize)]
pub struct CustomerObject {
    pub customer: Option<String>,
    pub client_reference_id: Option<String>,
    #[serde(default)]
    pub metadata: std::collections::HashMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(secret: &str, t: i64, body: &[u8]) -> String {
        format!("t={t},v1={}", hex::encode(sign(secret, t, body)))
    }

    #[test]
    fn a_signature_is_checked_over_the_raw_body_within_the_tolerance() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000;
        let good = header("whsec_a", now - 10, body);
        assert_eq!(verify(Some(&good), body, "whsec_a", now), Ok(()));
        // A second v1 (a secret being rolled) is enough when one matches.
        let rolled = format!("{good},v1={}", hex::encode([0u8; 32]));
        assert_eq!(verify(Some(&rolled), body, "whsec_a", now), Ok(()));
        assert_eq!(
            verify(Some(&good), br#"{"id":"evt_2"}"#, "whsec_a", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&good), body, "whsec_b", now),
            Err(SignatureError::Mismatch)
        );
        let old = header("whsec_a", now - 301, body);
        assert_eq!(
            verify(Some(&old), body, "whsec_a", now),
            Err(SignatureError::Stale {
                signed_at: now - 301
            })
        );
        assert_eq!(
            verify(None, body, "whsec_a", now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some("t=1"), body, "whsec_a", now),
            Err(SignatureError::Malformed)
        );
    }
}
