//! The issuer's bookkeeping, shared by `townes license issue|regen` and
//! `POST /admin/licenses/{id}/regen`: licence ids, the record a licence
//! leaves in the database, and regenerating one in place of another.

use super::{Claims, lease};
use crate::runtime::Plans;
use crate::store::{LicenseRecord, Revocation, Store, StoreError};
use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use ed25519_dalek::SigningKey;
use std::collections::BTreeMap;

/// A new licence id: `lic_` and 16 hex digits.
pub fn new_id() -> String {
    format!("lic_{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// What the database keeps of a licence.
pub fn record_of(claims: &Claims) -> LicenseRecord {
    LicenseRecord::new(
        &claims.id,
        &claims.tenant,
        &claims.plan,
        claims.issued_at,
        claims.expires_at,
    )
}

/// Refuses a plan the operator's catalog does not define: its leases would
/// carry the free plan.
pub fn check_plan(plans: &Plans, plan: &str) -> Result<(), String> {
    if plans.defines(plan) {
        return Ok(());
    }
    let known: Vec<&str> = plans.iter().map(|(name, _)| name).collect();
    Err(format!(
        "plan `{plan}` is not defined here (TOWNES_PLANS defines {}); pick one of those, or define it in TOWNES_PLANS first",
        known.join(", ")
    ))
}

/// Why a licence could not be regenerated; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RegenError {
    #[error("{}", unknown_license(.0))]
    Unknown(String),
    #[error("licence {id} was already replaced by {by}; regenerate {by} instead")]
    Replaced { id: String, by: String },
    /// Another regeneration (or a revocation) won the race; `detail` says
    /// when and what, as far as the record tells.
    #[error("licence {id} was replaced meanwhile{detail}; regenerate its successor instead")]
    ReplacedMeanwhile { id: String, detail: String },
    /// Its features and limits cannot be recovered here.
    #[error("{0}")]
    GrantUnknown(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A licence issued in place of another.
pub struct Regenerated {
    pub claims: Claims,
    /// The new licence key (`tdl1.…`), for the tenant's `TOWNESDEV_LICENSE`.
    pub key: String,
}

/// What [`regenerate`] is asked for.
pub struct Regen<'a> {
    /// The licence to replace (`lic_…`).
    pub id: &'a str,
    /// The old licence's key, where its features and limits are read from
    /// when no installation ever activated it.
    pub old_key: Option<&'a str>,
    /// Days the new licence is valid; the old one's length when absent.
    pub days: Option<u32>,
    /// Why, as the old licence's installations will read it.
    pub reason: &'a str,
}

/// Issues a new licence in place of `request.id` (same tenant, plan,
/// features and limits; new id and dates) and revokes the old one, naming
/// its successor, in one step of the store.
pub async fn regenerate(
    store: &Store,
    plans: &Plans,
    key: &SigningKey,
    request: &Regen<'_>,
    now: DateTime<Utc>,
) -> Result<Regenerated, RegenError> {
    let id = request.id;
    let Some(old) = store.license(id).await? else {
        return Err(RegenError::Unknown(id.to_string()));
    };
    if let Some(new) = &old.replaced_by {
        return Err(RegenError::Replaced {
            id: id.to_string(),
            by: new.clone(),
        });
    }
    let (flags, limits) = grant_of(store, &old, request.old_key, key).await?;
    check_plan(plans, &old.plan).map_err(RegenError::Invalid)?;
    // Whole seconds: the times are shown to people.
    let issued_at = now.trunc_subsecs(0);
    let length = match request.days {
        Some(0) => return Err(RegenError::Invalid("days must be at least 1".into())),
        Some(days) => TimeDelta::days(days.into()),
        None => (old.expires_at - old.issued_at).max(TimeDelta::days(1)),
    };
    let claims = Claims {
        id: new_id(),
        tenant: old.tenant_id.clone(),
        plan: old.plan.clone(),
        flags,
        limits,
        issued_at,
        expires_at: issued_at + length,
    };
    match store
        .replace_license(id, &record_of(&claims), request.reason)
        .await?
    {
        Revocation::Revoked(_) => {}
        Revocation::AlreadyRevoked(record) => {
            return Err(RegenError::ReplacedMeanwhile {
                id: id.to_string(),
                detail: revoked_when(&record),
            });
        }
        Revocation::Unknown => return Err(RegenError::Unknown(id.to_string())),
    }
    let key = super::issue(&claims, key);
    Ok(Regenerated { claims, key })
}

/// What to say of a licence id the database does not hold.
pub fn unknown_license(id: &str) -> String {
    format!(
        "no licence {id} is recorded in this database; check the id (`lic_…`) and DATABASE_URL (`townes license issue` records the licences it issues)"
    )
}

/// ` at <time>: <reason>; its successor is <id>`, as far as the record says.
pub fn revoked_when(record: &LicenseRecord) -> String {
    let mut text = String::new();
    if let Some(at) = record.revoked_at {
        text.push_str(&format!(" at {at}"));
    }
    if let Some(reason) = &record.revoked_reason {
        text.push_str(&format!(": {reason}"));
    }
    if let Some(new) = &record.replaced_by {
        text.push_str(&format!("; its successor is {new}"));
    }
    text
}

/// The features and limits `old` was issued with: from its key when given,
/// else from the last lease an installation of it got (leases carry them).
async fn grant_of(
    store: &Store,
    old: &LicenseRecord,
    old_key: Option<&str>,
    key: &SigningKey,
) -> Result<(Vec<String>, BTreeMap<String, u64>), RegenError> {
    let issuer = key.verifying_key();
    if let Some(text) = old_key {
        let claims = super::open(text, &issuer).map_err(|e| {
            RegenError::Invalid(format!(
                "the old licence key is not licence {} of this issuer: {e}",
                old.id
            ))
        })?;
        if claims.id != old.id {
            return Err(RegenError::Invalid(format!(
                "the old licence key is licence {}, not {}",
                claims.id, old.id
            )));
        }
        return Ok((claims.flags, claims.limits));
    }
    let lease = match store.license_last_lease(&old.id).await? {
        Some(text) => lease::open(&text, &issuer).ok(),
        None => None,
    };
    lease.map(|lease| (lease.flags, lease.limits)).ok_or_else(|| {
        RegenError::GrantUnknown(format!(
            "no installation activated licence {} with this signing key, so its features and limits are not known here (the database keeps its tenant and plan only); pass its key with --license (`license` in a request to the API)",
            old.id
        ))
    })
}
