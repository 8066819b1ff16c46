//! Leases: what a self-hosted runner acts on (ADR 0016, addendum). A licence
//! lasts a year and can only be revoked where the hosted platform is asked;
//! a lease lasts days, names one activation, and carries the whole plan the
//! runner applies, so the runner needs nothing but the issuer's public key to
//! trust it, and a revocation reaches it within one lease at the latest.
//!
//! A lease reads `tdlease1.{claims}.{signature}`, signed with the licence
//! issuer's key exactly as a licence is (the tag is signed too, so neither
//! passes for the other).

use super::{Claims, Unsealed, seal, unseal};
use crate::runtime::{Limits, Plan};
use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The format's tag, first in every lease.
const PREFIX: &str = "tdlease1";

/// How long a lease lasts unless the licence ends sooner.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3 * 86_400);
/// How often a runner asks for a fresh lease.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3_600);

/// What a lease says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseClaims {
    /// The installation's activation (`act_…`).
    pub activation_id: String,
    /// The licence it was activated with (`lic_…`).
    pub license_id: String,
    pub tenant: String,
    /// The plan's name, as the runner reports it.
    pub plan_name: String,
    /// The plan the runner applies: the hosted platform's catalog entry with
    /// the licence's features and limits applied ([`licensed_plan`]).
    pub plan: Plan,
    /// The licence's own features and limits, as issued: each refresh
    /// computes the plan from them and the catalog of that day.
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub limits: BTreeMap<String, u64>,
    pub issued_at: DateTime<Utc>,
    /// `min(licence expiry, issue + lease TTL)`: the runner keeps the plan
    /// this long (plus its grace) while the platform is unreachable.
    pub expires_at: DateTime<Utc>,
    /// When the runner should ask for the next lease, in seconds after issue.
    pub refresh_in_sec: u64,
}

impl LeaseClaims {
    /// The lease for `activation_id` of `license`, on `plan_name`/`plan` (the
    /// licensed plan), issued `now`.
    pub fn new(
        activation_id: &str,
        license: &Claims,
        plan_name: &str,
        plan: Plan,
        now: DateTime<Utc>,
        ttl: Duration,
        refresh: Duration,
    ) -> LeaseClaims {
        let ttl = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        // Whole seconds: the times are shown to operators.
        let now = now.trunc_subsecs(0);
        LeaseClaims {
            activation_id: activation_id.to_string(),
            license_id: license.id.clone(),
            tenant: license.tenant.clone(),
            plan_name: plan_name.to_string(),
            plan,
            flags: license.flags.clone(),
            limits: license.limits.clone(),
            issued_at: now,
            expires_at: now
                .checked_add_signed(ttl)
                .map_or(license.expires_at, |end| end.min(license.expires_at)),
            refresh_in_sec: refresh.as_secs().max(1),
        }
    }

    /// When the next refresh is due.
    pub fn refresh_at(&self) -> DateTime<Utc> {
        let refresh = TimeDelta::seconds(i64::try_from(self.refresh_in_sec).unwrap_or(i64::MAX));
        self.issued_at
            .checked_add_signed(refresh)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// When a runner that cannot reach the platform stops using this lease.
    pub fn grace_ends(&self, grace: Duration) -> DateTime<Utc> {
        TimeDelta::from_std(grace)
            .ok()
            .and_then(|grace| self.expires_at.checked_add_signed(grace))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Why a lease was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum LeaseError {
    #[error("this is not a TownesDev lease ({0})")]
    Malformed(String),
    #[error(
        "the lease's signature does not match TOWNESDEV_LICENSE_PUBLIC_KEY: it was changed, or another platform signed it; check that LICENSE_SERVER_BASE is the platform that issued the licence"
    )]
    BadSignature,
}

/// Signs `claims` into a lease.
pub fn issue(claims: &LeaseClaims, key: &SigningKey) -> String {
    seal(PREFIX, claims, key)
}

/// The claims of `lease` if `issuer` signed it, whatever its times: whether
/// it is still in force, or within the grace, is the runner's decision.
pub fn open(lease: &str, issuer: &VerifyingKey) -> Result<LeaseClaims, LeaseError> {
    unseal(PREFIX, lease, issuer).map_err(|refused| match refused {
        Unsealed::Form => {
            LeaseError::Malformed("it does not have the form tdlease1.claims.signature".into())
        }
        Unsealed::UnreadableSignature => {
            LeaseError::Malformed("its signature is not readable".into())
        }
        Unsealed::BadSignature => LeaseError::BadSignature,
        Unsealed::NewerClaims => {
            LeaseError::Malformed("its claims are from a newer version; update townes".into())
        }
    })
}

/// The plan a licence grants: `catalog` (the platform's entry for the
/// licence's plan) with the licence's `flags` as its features when there are
/// any, and each of its `limits` that names something a plan has
/// (`ai_tokens_per_day`, `guilds`, or a numeric [`Limits`] field) set to its
/// value; other names are left for newer versions. Not for sale where it
/// runs, so without a Stripe price.
pub fn licensed_plan(catalog: &Plan, flags: &[String], limits: &BTreeMap<String, u64>) -> Plan {
    let mut plan = catalog.clone();
    plan.stripe_price = None;
    if !flags.is_empty() {
        plan.features = Some(flags.to_vec());
    }
    for (name, &value) in limits {
        match name.as_str() {
            "ai_tokens_per_day" => plan.ai_tokens_per_day = Some(value),
            "guilds" => plan.guilds = Some(u32::try_from(value).unwrap_or(u32::MAX)),
            _ => {
                if let Ok(limits) = with_limit(&plan.limits, name, value) {
                    plan.limits = limits;
                }
            }
        }
    }
    plan
}

/// The names in `limits` a plan does not have, and the values too large for
/// theirs: what [`licensed_plan`] leaves out, for the issuer to hear about.
pub fn unused_limits(limits: &BTreeMap<String, u64>) -> Vec<String> {
    let base = Limits::default();
    limits
        .iter()
        .filter(|(name, value)| match name.as_str() {
            "ai_tokens_per_day" => false,
            "guilds" => u32::try_from(**value).is_err(),
            _ => with_limit(&base, name, **value).is_err(),
        })
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

/// `limits` with its numeric field `name` set to `value`. Through serde, so a
/// field added to [`Limits`] can be licensed without a change here.
fn with_limit(limits: &Limits, name: &str, value: u64) -> Result<Limits, ()> {
    let mut fields = serde_json::to_value(limits).map_err(|_| ())?;
    match fields.get_mut(name) {
        Some(field) if field.is_u64() => *field = value.into(),
        _ => return Err(()),
    }
    // A value too large for its field (a u32) does not deserialize.
    serde_json::from_value(fields).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licensing::new_signing_key;
    use chrono::TimeZone;

    fn license() -> Claims {
        Claims {
            id: "lic_1".into(),
            tenant: "tenant-a".into(),
            plan: "pro".into(),
            flags: vec!["tickets".into()],
            limits: BTreeMap::from([
                ("ai_tokens_per_day".into(), 50_000),
                ("cpu_ms".into(), 300),
                ("guilds".into(), 3),
                ("warp_drives".into(), 2),
            ]),
            issued_at: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            expires_at: Utc.with_ymd_and_hms(2027, 12, 1, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn the_licensed_plan_is_the_catalog_entry_with_the_licence_flags_and_limits() {
        let catalog = Plan {
            stripe_price: Some("price_pro".into()),
            ai_tokens_per_day: Some(500_000),
            ..Plan::new(Limits::default())
        };
        let claims = license();
        let plan = licensed_plan(&catalog, &claims.flags, &claims.limits);
        assert_eq!(plan.features, Some(vec!["tickets".to_string()]));
        assert_eq!(plan.ai_tokens_per_day, Some(50_000));
        assert_eq!(plan.guilds, Some(3));
        assert_eq!(plan.limits.cpu_ms, 300);
        assert_eq!(plan.limits.memory_mib, Limits::default().memory_mib);
        assert_eq!(plan.stripe_price, None);
        // No flags: the catalog's features stand.
        let open = licensed_plan(&catalog, &[], &BTreeMap::new());
        assert_eq!(open.features, None);
        assert_eq!(open.ai_tokens_per_day, Some(500_000));
        assert_eq!(
            unused_limits(&BTreeMap::from([
                ("warp_drives".into(), 2),
                ("cpu_ms".into(), u64::from(u32::MAX) + 1),
                ("storage_bytes".into(), u64::MAX),
                ("capabilities".into(), 1),
            ])),
            ["capabilities=1", "cpu_ms=4294967296", "warp_drives=2"]
        );
    }

    #[test]
    fn a_lease_ends_with_its_ttl_or_the_licence_and_verifies_with_the_public_key() {
        let key = new_signing_key();
        let claims = license();
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        let lease = LeaseClaims::new(
            "act_1",
            &claims,
            "pro",
            Plan::new(Limits::default()),
            now,
            DEFAULT_TTL,
            DEFAULT_REFRESH,
        );
        assert_eq!(lease.expires_at, now + TimeDelta::days(3));
        assert_eq!(lease.refresh_at(), now + TimeDelta::hours(1));
        assert_eq!(
            lease.grace_ends(Duration::from_secs(86_400)),
            now + TimeDelta::days(4)
        );
        let late = Utc.with_ymd_and_hms(2027, 11, 30, 0, 0, 0).unwrap();
        let last = LeaseClaims::new(
            "act_1",
            &claims,
            "pro",
            Plan::new(Limits::default()),
            late,
            DEFAULT_TTL,
            DEFAULT_REFRESH,
        );
        assert_eq!(last.expires_at, claims.expires_at, "never past the licence");

        let text = issue(&lease, &key);
        assert!(text.starts_with("tdlease1."));
        assert_eq!(open(&text, &key.verifying_key()), Ok(lease));
        assert_eq!(
            open(&text, &new_signing_key().verifying_key()),
            Err(LeaseError::BadSignature)
        );
        // A licence is no lease, and a lease no licence.
        let licence = crate::licensing::issue(&claims, &key);
        assert!(matches!(
            open(&licence, &key.verifying_key()),
            Err(LeaseError::Malformed(_))
        ));
        assert!(matches!(
            crate::licensing::verify(&text, &key.verifying_key(), now, None),
            Err(crate::licensing::LicenseError::Malformed(_))
        ));
    }
}
