//! The hosted platform's side of self-hosting (ADR 0016, addendum): an
//! installation activates its licence (`POST /licenses/activate`) and gets an
//! activation id, a secret and a lease; from then on it asks for a fresh
//! lease with signed pings (`POST /licenses/refresh`).
//!
//! A ping is `{"activationId", "pingId", "sentAt"}` with
//! `Townes-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//! One signed more than [`PING_TOLERANCE_SECS`] away from the platform's
//! clock is refused as stale, so a captured ping cannot be replayed later;
//! within that window a ping sent again (same `pingId` as the last one
//! answered) gets the same lease back and changes nothing, so a runner may
//! retry a ping whose answer it never got.

use super::lease::{self, DEFAULT_REFRESH, DEFAULT_TTL, LeaseClaims, licensed_plan};
use super::{Claims, LicenseError, Secret, decode_signing_key, parse_duration};
use crate::runtime::{FREE_PLAN, Plans};
use crate::store::{LicenseRecord, Store, StoreError};
use axum::http::StatusCode;
use chrono::{DateTime, SubsecRound as _, Utc};
use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::PathBuf;
use std::time::Duration;
use subtle::ConstantTimeEq as _;

/// The header a refresh ping is signed in.
pub const SIGNATURE_HEADER: &str = "Townes-Signature";
/// How far a ping's signing time may be from the platform's clock.
pub const PING_TOLERANCE_SECS: i64 = 300;

/// Licensing on the hosted platform: off until the issuer's signing key is
/// given. Part of the API's settings (`townes serve`, `townes api`).
#[derive(clap::Args, Clone, Debug)]
pub struct ServerConfig {
    /// The issuer's signing key file (`townes license keygen` writes it). Turns
    /// on /licenses/activate and /licenses/refresh; without it they answer 503.
    #[arg(long = "license-signing-key", env = "TOWNES_LICENSE_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// How long a lease lasts (it never outlasts its licence), e.g. `3d`.
    #[arg(
        long = "license-lease-ttl",
        env = "TOWNES_LICENSE_LEASE_TTL",
        default_value = "3d",
        value_parser = parse_duration
    )]
    pub lease_ttl: Duration,
    /// How often installations ask for a fresh lease, e.g. `1h`.
    #[arg(
        long = "license-refresh",
        env = "TOWNES_LICENSE_REFRESH",
        default_value = "1h",
        value_parser = parse_duration
    )]
    pub refresh: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            signing_key: None,
            lease_ttl: DEFAULT_TTL,
            refresh: DEFAULT_REFRESH,
        }
    }
}

/// Activates licences and hands out leases. `Debug` leaves the key out.
pub struct LicenseServer {
    key: SigningKey,
    lease_ttl: Duration,
    refresh: Duration,
}

impl std::fmt::Debug for LicenseServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LicenseServer")
            .field("key", &"<redacted>")
            .field("lease_ttl", &self.lease_ttl)
            .field("refresh", &self.refresh)
            .finish()
    }
}

/// The lease an activation or a refresh hands out.
#[derive(Debug)]
pub struct Granted {
    /// The signed lease (`tdlease1.…`).
    pub lease: String,
    pub claims: LeaseClaims,
}

/// A refresh ping's body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ping {
    pub activation_id: String,
    /// Random, one per refresh; sent again with a retry of the same refresh.
    pub ping_id: String,
    pub sent_at: DateTime<Utc>,
}

/// Why an activation or a refresh was refused: each with its status, a
/// machine code and what the operator can do.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    License(LicenseError),
    #[error(
        "licence {0} was not issued by this platform; use the key this platform's operator gave you"
    )]
    UnknownLicense(String),
    #[error("licence {id} was revoked at {at}: {reason}{}", .replaced_by.as_ref().map(|new| format!("; it was replaced by licence {new}")).unwrap_or_default())]
    Revoked {
        id: String,
        at: DateTime<Utc>,
        reason: String,
        replaced_by: Option<String>,
    },
    #[error(
        "activation {0} is not known here (this platform forgot it, or it was made elsewhere); activate again with the licence"
    )]
    UnknownActivation(String),
    #[error(
        "the ping has no valid {SIGNATURE_HEADER} header (t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" with the activation's secret>)"
    )]
    MissingSignature,
    #[error(
        "the ping's signature does not match the activation's secret; activate again with the licence"
    )]
    BadSignature,
    #[error(
        "the ping is stale: signed at {signed_at} (unix seconds), more than {PING_TOLERANCE_SECS} s from this platform's clock; check the installation's clock"
    )]
    Stale { signed_at: i64 },
    #[error("{0}")]
    BadPing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::License(LicenseError::Malformed(_) | LicenseError::NotYetValid(_))
            | Refusal::BadPing(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::License(_) | Refusal::UnknownLicense(_) | Refusal::Revoked { .. } => {
                StatusCode::FORBIDDEN
            }
            Refusal::UnknownActivation(_) => StatusCode::NOT_FOUND,
            Refusal::MissingSignature | Refusal::BadSignature | Refusal::Stale { .. } => {
                StatusCode::UNAUTHORIZED
            }
            Refusal::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable, for runners to act on.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::License(LicenseError::Malformed(_)) => "license_malformed",
            Refusal::License(LicenseError::BadSignature) => "license_bad_signature",
            Refusal::License(LicenseError::Expired(_)) => "license_expired",
            Refusal::License(LicenseError::NotYetValid(_)) => "license_not_yet_valid",
            Refusal::License(LicenseError::OtherTenant { .. }) => "license_other_tenant",
            Refusal::UnknownLicense(_) => "license_unknown",
            Refusal::Revoked { .. } => "license_revoked",
            Refusal::UnknownActivation(_) => "activation_unknown",
            Refusal::MissingSignature => "signature_missing",
            Refusal::BadSignature => "signature_invalid",
            Refusal::Stale { .. } => "signature_stale",
            Refusal::BadPing(_) => "invalid",
            Refusal::Store(_) => "internal",
        }
    }

    /// What the operator of the installation can do.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Refusal::License(LicenseError::Expired(_)) => Some(
                "renew the licence on the hosted platform and put the new key in TOWNESDEV_LICENSE",
            ),
            Refusal::Revoked {
                replaced_by: Some(_),
                ..
            } => Some("put the new licence key in TOWNESDEV_LICENSE and restart"),
            Refusal::Revoked { .. } | Refusal::UnknownLicense(_) => Some(
                "ask the hosted platform's operator for a licence, put it in TOWNESDEV_LICENSE and restart",
            ),
            _ => None,
        }
    }
}

impl LicenseServer {
    /// The server `config` asks for: `None` while no signing key is given.
    pub fn from_config(config: &ServerConfig) -> Result<Option<LicenseServer>, String> {
        let Some(path) = &config.signing_key else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the licence signing key {} (TOWNES_LICENSE_SIGNING_KEY): {e}",
                path.display()
            )
        })?;
        let key = decode_signing_key(&text)
            .map_err(|e| format!("{} (TOWNES_LICENSE_SIGNING_KEY): {e}", path.display()))?;
        tracing::info!(
            "self-hosting licences are on: /licenses/activate and /licenses/refresh answer; leases last {} s and are renewed every {} s",
            config.lease_ttl.as_secs(),
            config.refresh.as_secs()
        );
        Ok(Some(LicenseServer::new(
            key,
            config.lease_ttl,
            config.refresh,
        )))
    }

    pub fn new(key: SigningKey, lease_ttl: Duration, refresh: Duration) -> LicenseServer {
        LicenseServer {
            key,
            lease_ttl,
            refresh,
        }
    }

    /// The public key self-hosted runners check licences and leases with
    /// (`TOWNESDEV_LICENSE_PUBLIC_KEY`).
    pub fn public_key(&self) -> String {
        super::encode_public_key(&self.key.verifying_key())
    }

    /// Issues a licence of `tenant` on `plan`, valid for `valid` from `now`,
    /// and records it. Returns its id and the licence text the runner is
    /// given (`TOWNESDEV_LICENSE`).
    pub async fn issue_license(
        &self,
        store: &Store,
        tenant: &str,
        plan: &str,
        now: DateTime<Utc>,
        valid: chrono::TimeDelta,
    ) -> Result<(String, String), StoreError> {
        // Whole seconds: the times are shown to people.
        let issued_at = now.trunc_subsecs(0);
        let claims = Claims {
            id: super::issuer::new_id(),
            tenant: tenant.to_string(),
            plan: plan.to_string(),
            flags: Vec::new(),
            limits: Default::default(),
            issued_at,
            expires_at: issued_at + valid,
        };
        store
            .record_license(&super::issuer::record_of(&claims))
            .await?;
        Ok((claims.id.clone(), super::issue(&claims, &self.key)))
    }

    /// Issues a licence in place of another with this platform's key (see
    /// [`super::issuer::regenerate`]).
    pub async fn regenerate(
        &self,
        store: &Store,
        plans: &Plans,
        request: &super::issuer::Regen<'_>,
        now: DateTime<Utc>,
    ) -> Result<super::issuer::Regenerated, super::issuer::RegenError> {
        super::issuer::regenerate(store, plans, &self.key, request, now).await
    }

    /// Activates `license` for a new installation (`instance` names it in the
    /// log) at `now`: a new activation, its random secret, and its first lease.
    pub async fn activate(
        &self,
        store: &Store,
        plans: &Plans,
        license: &str,
        instance: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Secret, Granted), Refusal> {
        let claims = super::verify(license, &self.key.verifying_key(), now, None)
            .map_err(Refusal::License)?;
        let record = store
            .license(&claims.id)
            .await?
            .ok_or_else(|| Refusal::UnknownLicense(claims.id.clone()))?;
        // Only the issuer signs, but an id recorded for one tenant must not
        // serve another's key (one signed outside `townes license issue`).
        if record.tenant_id != claims.tenant {
            return Err(Refusal::License(LicenseError::OtherTenant {
                licensed: claims.tenant,
                expected: record.tenant_id,
            }));
        }
        in_force(&record, now)?;
        let activation_id = format!("act_{}", hex::encode(rand::random::<[u8; 16]>()));
        let secret = Secret::new(hex::encode(rand::random::<[u8; 32]>()));
        let (lease, text) = self.lease(&activation_id, &claims, plans, now);
        store
            .create_license_activation(&activation_id, &claims.id, secret.expose(), &text, now)
            .await?;
        tracing::info!(
            license = claims.id,
            tenant = claims.tenant,
            activation = activation_id,
            instance = instance.unwrap_or("unnamed"),
            plan = lease.plan_name,
            "licence activated"
        );
        Ok((
            secret,
            Granted {
                lease: text,
                claims: lease,
            },
        ))
    }

    /// Answers a refresh ping: `signature` is the [`SIGNATURE_HEADER`], `body`
    /// the raw body it signs.
    pub async fn refresh(
        &self,
        store: &Store,
        plans: &Plans,
        signature: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Granted, Refusal> {
        let (signed_at, macs) = parse_signature(signature)?;
        let ping: Ping = serde_json::from_slice(body).map_err(|e| {
            Refusal::BadPing(format!(
                "the ping is not {{activationId, pingId, sentAt}}: {e}"
            ))
        })?;
        if !is_token(&ping.ping_id) {
            return Err(Refusal::BadPing(
                "pingId must be 1 to 128 letters, digits, `-` or `_`".into(),
            ));
        }
        // Activation ids are ours: anything else is unknown without asking
        // the database (Postgres refuses a NUL in text).
        let activation = match is_token(&ping.activation_id) {
            true => store.license_activation(&ping.activation_id).await?,
            false => None,
        }
        .ok_or_else(|| Refusal::UnknownActivation(ping.activation_id.clone()))?;
        let expected = mac(activation.secret.as_bytes(), signed_at, body);
        if !macs
            .iter()
            .any(|m| bool::from(m.as_slice().ct_eq(&expected)))
        {
            return Err(Refusal::BadSignature);
        }
        if (now.timestamp() - signed_at).abs() > PING_TOLERANCE_SECS {
            return Err(Refusal::Stale { signed_at });
        }
        let previous = activation
            .last_lease
            .as_deref()
            .and_then(|text| lease::open(text, &self.key.verifying_key()).ok());
        if activation.last_ping.as_deref() == Some(&ping.ping_id) {
            return match (activation.last_lease, previous) {
                (Some(text), Some(claims)) => Ok(Granted {
                    lease: text,
                    claims,
                }),
                _ => Err(Refusal::UnknownActivation(activation.id)),
            };
        }
        // The licence's features and limits are in the lease it signed last
        // (the licence table keeps neither); a lease it cannot read (the
        // signing key changed) means activating again.
        let previous = previous.ok_or_else(|| Refusal::UnknownActivation(activation.id.clone()))?;
        let record = store
            .license(&activation.license_id)
            .await?
            .ok_or_else(|| Refusal::UnknownActivation(activation.id.clone()))?;
        in_force(&record, now)?;
        let license = Claims {
            id: record.id,
            tenant: record.tenant_id,
            plan: record.plan,
            flags: previous.flags,
            limits: previous.limits,
            issued_at: record.issued_at,
            expires_at: record.expires_at,
        };
        let (claims, text) = self.lease(&activation.id, &license, plans, now);
        if store
            .record_license_ping(&activation.id, &ping.ping_id, &text, now)
            .await?
        {
            return Ok(Granted {
                lease: text,
                claims,
            });
        }
        // The same ping, delivered twice at once: the other delivery's lease
        // is the answer to both.
        let stored = store
            .license_activation(&activation.id)
            .await?
            .and_then(|a| a.last_lease)
            .ok_or_else(|| Refusal::UnknownActivation(activation.id.clone()))?;
        let claims = lease::open(&stored, &self.key.verifying_key())
            .map_err(|_| Refusal::UnknownActivation(activation.id.clone()))?;
        Ok(Granted {
            lease: stored,
            claims,
        })
    }

    /// A lease of `license` for `activation_id`, and its signed text.
    fn lease(
        &self,
        activation_id: &str,
        license: &Claims,
        plans: &Plans,
        now: DateTime<Utc>,
    ) -> (LeaseClaims, String) {
        let name = if plans.defines(&license.plan) {
            license.plan.as_str()
        } else {
            tracing::warn!(
                license = license.id,
                plan = license.plan,
                "the licence names a plan TOWNES_PLANS does not define: its leases carry the free plan; define the plan, or regenerate the licence on another"
            );
            FREE_PLAN
        };
        let plan = licensed_plan(plans.get(name), &license.flags, &license.limits);
        let claims = LeaseClaims::new(
            activation_id,
            license,
            name,
            plan,
            now,
            self.lease_ttl,
            self.refresh,
        );
        let text = lease::issue(&claims, &self.key);
        (claims, text)
    }
}

/// Refuses a licence revoked or expired at `now`.
fn in_force(record: &LicenseRecord, now: DateTime<Utc>) -> Result<(), Refusal> {
    if let Some(at) = record.revoked_at {
        return Err(Refusal::Revoked {
            id: record.id.clone(),
            at,
            reason: record
                .revoked_reason
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
            replaced_by: record.replaced_by.clone(),
        });
    }
    if record.expires_at <= now {
        return Err(Refusal::License(LicenseError::Expired(record.expires_at)));
    }
    Ok(())
}

/// An id as the platform and runners make them: short, printable, no NUL.
fn is_token(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The signing time and the `v1` signatures of a [`SIGNATURE_HEADER`]
/// (several while a runner's secret is being changed).
fn parse_signature(header: Option<&str>) -> Result<(i64, Vec<Vec<u8>>), Refusal> {
    let mut signed_at = None;
    let mut macs = Vec::new();
    for part in header.unwrap_or_default().split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => signed_at = t.parse::<i64>().ok(),
            Some(("v1", v)) => macs.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    match signed_at {
        Some(t) if !macs.is_empty() => Ok((t, macs)),
        _ => Err(Refusal::MissingSignature),
    }
}

fn mac(secret: &[u8], signed_at: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(signed_at.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The [`SIGNATURE_HEADER`] value signing `body` with an activation's secret
/// at `signed_at` (unix seconds): what a runner sends.
pub fn sign_ping(secret: &Secret, signed_at: i64, body: &[u8]) -> String {
    format!(
        "t={signed_at},v1={}",
        hex::encode(mac(secret.expose().as_bytes(), signed_at, body))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_signature_is_the_hmac_of_time_and_body_and_anything_else_is_refused() {
        let secret = Secret::new("s3cret".into());
        let header = sign_ping(&secret, 1_700_000_000, b"{}");
        let (t, macs) = parse_signature(Some(&header)).unwrap();
        assert_eq!(t, 1_700_000_000);
        assert_eq!(macs, [mac(b"s3cret", t, b"{}")]);
        for broken in [
            None,
            Some(""),
            Some("t=1"),
            Some("v1=00"),
            Some("t=x,v1=00"),
        ] {
            assert!(
                matches!(parse_signature(broken), Err(Refusal::MissingSignature)),
                "{broken:?}"
            );
        }
        assert!(is_token("act_0123abcd"));
        assert!(!is_token("act\0"));
        assert!(!is_token(""));
        assert!(!is_token(&"a".repeat(129)));
    }

    #[test]
    fn each_refusal_has_its_status_code_and_message() {
        let revoked = Refusal::Revoked {
            id: "lic_1".into(),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            reason: "chargeback".into(),
            replaced_by: Some("lic_2".into()),
        };
        assert_eq!(revoked.status(), StatusCode::FORBIDDEN);
        assert_eq!(revoked.code(), "license_revoked");
        assert_eq!(
            revoked.to_string(),
            "licence lic_1 was revoked at 2023-11-14 22:13:20 UTC: chargeback; it was replaced by licence lic_2"
        );
        let stale = Refusal::Stale { signed_at: 5 };
        assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
        assert!(stale.to_string().contains("stale"));
        assert_eq!(
            Refusal::License(LicenseError::Malformed("x".into())).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let debug = format!(
            "{:?}",
            LicenseServer::new(
                crate::licensing::new_signing_key(),
                DEFAULT_TTL,
                DEFAULT_REFRESH
            )
        );
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}
