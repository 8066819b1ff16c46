//! Licenses for self-hosted platforms (ADR 0016): what a tenant's plan lets
//! their own `townes serve` do, signed by the hosted platform's Ed25519 key
//! so a runner verifies it offline, with the public key only.
//!
//! A license key reads `tdl1.{claims}.{signature}`: the claims as JSON in
//! unpadded base64url, and the signature over `tdl1.{claims}`, in the same
//! encoding. Everything a runner needs is in the claims; nothing in the key
//! is secret, and no change to a claim survives verification.
//!
//! - this module: the licence key format and the issuer's keys;
//! - [`lease`]: the short-lived `tdlease1` leases a runner acts on;
//! - [`server`]: what the hosted platform does on `/licenses/activate` and
//!   `/licenses/refresh`;
//! - [`issuer`]: the issuer's bookkeeping: ids, records, regeneration;
//! - [`client`]: what a self-hosted runner does: activate, refresh, keep its
//!   lease while the platform is unreachable, and degrade to `free`.

pub mod client;
pub mod issuer;
pub mod lease;
pub mod server;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The format's tag, first in every key.
const PREFIX: &str = "tdl1";

/// How far ahead of the runner's clock an issue time may lie: clocks drift.
pub const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

/// What a license says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The license's own id, what revocation names.
    pub id: String,
    /// The tenant it was issued to.
    pub tenant: String,
    /// The plan whose limits the runner applies (`TOWNES_PLANS` names).
    pub plan: String,
    /// Marketplace features the plan may enable; empty: every one.
    #[serde(default)]
    pub flags: Vec<String>,
    /// Limits beyond the plan's own, by name (e.g. `ai_tokens_per_day`).
    #[serde(default)]
    pub limits: BTreeMap<String, u64>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Why a license key was refused, each with what the operator can do.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LicenseError {
    #[error(
        "this is not a TownesDev license key ({0}); copy the whole `tdl1.…` key you were given"
    )]
    Malformed(String),
    #[error(
        "the license's signature does not match: it was changed after it was issued, or another issuer signed it; ask for a new key"
    )]
    BadSignature,
    #[error("the license expired at {0}; renew it on the hosted platform")]
    Expired(DateTime<Utc>),
    #[error(
        "the license was issued at {0}, which is still in the future here; check this machine's clock"
    )]
    NotYetValid(DateTime<Utc>),
    #[error("the license belongs to tenant {licensed}, not {expected}; use that tenant's key")]
    OtherTenant { licensed: String, expected: String },
}

/// Signs `claims` into a license key.
pub fn issue(claims: &Claims, key: &SigningKey) -> String {
    seal(PREFIX, claims, key)
}

/// The claims of `license` if `issuer` signed it, it is in force at `now`,
/// and (when given) it belongs to `tenant`.
pub fn verify(
    license: &str,
    issuer: &VerifyingKey,
    now: DateTime<Utc>,
    tenant: Option<&str>,
) -> Result<Claims, LicenseError> {
    let claims = open(license, issuer)?;
    if claims.issued_at > now + CLOCK_SKEW {
        return Err(LicenseError::NotYetValid(claims.issued_at));
    }
    if claims.expires_at <= now {
        return Err(LicenseError::Expired(claims.expires_at));
    }
    if let Some(expected) = tenant
        && claims.tenant != expected
    {
        return Err(LicenseError::OtherTenant {
            licensed: claims.tenant,
            expected: expected.to_string(),
        });
    }
    Ok(claims)
}

/// The claims of `license` if `issuer` signed it, whatever its times: for
/// the issuer reading back a licence it issued, in force or not.
pub fn open(license: &str, issuer: &VerifyingKey) -> Result<Claims, LicenseError> {
    unseal(PREFIX, license, issuer).map_err(|refused| match refused {
        Unsealed::Form => {
            LicenseError::Malformed("it does not have the form tdl1.claims.signature".into())
        }
        Unsealed::UnreadableSignature => {
            LicenseError::Malformed("its signature is not readable".into())
        }
        Unsealed::BadSignature => LicenseError::BadSignature,
        Unsealed::NewerClaims => {
            LicenseError::Malformed("its claims are from a newer version; update townes".into())
        }
    })
}

/// Signs `claims` as `{prefix}.{claims}.{signature}`: the claims as JSON in
/// unpadded base64url, the Ed25519 signature over `{prefix}.{claims}`. The
/// prefix is signed too, so a licence cannot pass for a lease or the reverse.
fn seal<T: Serialize>(prefix: &str, claims: &T, key: &SigningKey) -> String {
    let payload =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims always serialize"));
    let signed = format!("{prefix}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(key.sign(signed.as_bytes()).to_bytes());
    format!("{signed}.{signature}")
}

/// Why [`unseal`] refused a text.
#[derive(Debug, PartialEq)]
enum Unsealed {
    /// Not `{prefix}.{claims}.{signature}`.
    Form,
    UnreadableSignature,
    BadSignature,
    /// Signed by the issuer, so the claims are the issuer's: unreadable ones
    /// come from a newer format.
    NewerClaims,
}

/// The claims of a text [`seal`] made with `issuer`'s key.
fn unseal<T: DeserializeOwned>(
    prefix: &str,
    text: &str,
    issuer: &VerifyingKey,
) -> Result<T, Unsealed> {
    let text = text.trim();
    let mut parts = text.split('.');
    let (Some(tag), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Unsealed::Form);
    };
    if tag != prefix {
        return Err(Unsealed::Form);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .ok_or(Unsealed::UnreadableSignature)?;
    let signed = &text[..prefix.len() + 1 + payload.len()];
    issuer
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| Unsealed::BadSignature)?;
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(Unsealed::NewerClaims)
}

/// A duration as operators write it: `90s`, `15m`, `12h`, `7d`, or seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds: u64 = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 0,
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|_| seconds > 0)
        .and_then(|n| n.checked_mul(seconds))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            format!("`{text}` is not a duration; write a whole number with s, m, h or d (e.g. 7d)")
        })
}

/// A secret an activation shares with the platform (it signs the
/// installation's refresh pings). `Debug` shows `<redacted>`; it serializes
/// as itself, for the one answer and the one file that must carry it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: String) -> Secret {
        Secret(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A new issuer key, from the system's random source.
pub fn new_signing_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

/// An issuer's signing key as written to its file: 32 bytes, base64url.
pub fn encode_signing_key(key: &SigningKey) -> String {
    URL_SAFE_NO_PAD.encode(key.to_bytes())
}

pub fn decode_signing_key(text: &str) -> Result<SigningKey, String> {
    let bytes: [u8; 32] = URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("a signing key is 32 bytes in base64url, as `townes license keygen` writes it")?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// The public key runners verify with: 32 bytes, base64url.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(key.to_bytes())
}

pub fn decode_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = URL_SAFE_NO_PAD
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("a public key is 32 bytes in base64url, as `townes license keygen` prints it")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "that is not an Ed25519 public key".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn claims() -> Claims {
        Claims {
            id: "lic_1".into(),
            tenant: "tenant-a".into(),
            plan: "pro".into(),
            flags: vec!["tickets".into()],
            limits: BTreeMap::from([("ai_tokens_per_day".into(), 50_000)]),
            issued_at: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            expires_at: Utc.with_ymd_and_hms(2027, 12, 1, 0, 0, 0).unwrap(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap()
    }

    #[test]
    fn durations_read_as_operators_write_them() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration(" 12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3_600)));
        for wrong in ["", "d", "7w", "-1d", "1.5h", "99999999999999999999d"] {
            let error = parse_duration(wrong).unwrap_err();
            assert!(error.contains("e.g. 7d"), "{wrong}: {error}");
        }
        let secret = Secret::new("hunter2".into());
        assert_eq!(format!("{secret:?}"), "<redacted>");
    }

    #[test]
    fn a_license_verifies_offline_with_the_public_key_only() {
        let key = new_signing_key();
        let license = issue(&claims(), &key);
        assert!(license.starts_with("tdl1."));
        let public = decode_public_key(&encode_public_key(&key.verifying_key())).unwrap();
        assert_eq!(
            verify(&license, &public, now(), Some("tenant-a")),
            Ok(claims())
        );
        assert_eq!(
            verify(&format!("  {license}\n"), &public, now(), None),
            Ok(claims())
        );
        let again = decode_signing_key(&encode_signing_key(&key)).unwrap();
        assert_eq!(
            issue(&claims(), &again),
            license,
            "Ed25519 signs deterministically"
        );
    }

    #[test]
    fn tampered_foreign_expired_future_and_garbled_licenses_are_refused_with_the_reason() {
        let key = new_signing_key();
        let public = key.verifying_key();
        let license = issue(&claims(), &key);

        // A claim changed: the plan raised to `enterprise`.
        let (head, signature) = license.rsplit_once('.').unwrap();
        let payload = head.strip_prefix("tdl1.").unwrap();
        let mut tampered: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        tampered["plan"] = "enterprise".into();
        let forged = format!(
            "tdl1.{}.{signature}",
            URL_SAFE_NO_PAD.encode(tampered.to_string())
        );
        assert_eq!(
            verify(&forged, &public, now(), None),
            Err(LicenseError::BadSignature)
        );
        let other_issuer = issue(&claims(), &new_signing_key());
        assert_eq!(
            verify(&other_issuer, &public, now(), None),
            Err(LicenseError::BadSignature)
        );

        let c = claims();
        assert_eq!(
            verify(&license, &public, c.expires_at, None),
            Err(LicenseError::Expired(c.expires_at))
        );
        let early = c.issued_at - CLOCK_SKEW - TimeDelta::seconds(1);
        assert_eq!(
            verify(&license, &public, early, None),
            Err(LicenseError::NotYetValid(c.issued_at))
        );
        assert!(
            verify(&license, &public, c.issued_at - CLOCK_SKEW, None).is_ok(),
            "skew allowed"
        );
        let error = verify(&license, &public, now(), Some("tenant-b")).unwrap_err();
        assert_eq!(
            error,
            LicenseError::OtherTenant {
                licensed: "tenant-a".into(),
                expected: "tenant-b".into()
            }
        );
        assert!(error.to_string().contains("use that tenant's key"));

        for garbled in ["", "tdl1", "tdl2.a.b", "tdl1.a.b.c", "tdl1.e30.!!!"] {
            assert!(
                matches!(
                    verify(garbled, &public, now(), None),
                    Err(LicenseError::Malformed(_))
                ),
                "{garbled}"
            );
        }
        assert!(decode_public_key("short").is_err());
        assert!(
            decode_signing_key("short")
                .unwrap_err()
                .contains("townes license keygen")
        );
    }
}
