//! Licences the hosted platform issued to self-hosters, and the installations
//! that activated them (ADR 0016). The licence key itself is not kept: it is
//! the tenant's to hold, and everything it says is signed into it. An
//! activation's secret is kept as it is, because the platform must compute
//! the HMAC of each refresh ping with it (a hash could not).

use chrono::{DateTime, Utc};

use super::{Store, StoreError, ts};

/// A licence as recorded when it was issued.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LicenseRecord {
    /// `lic_…`: the licence's `id` claim.
    pub id: String,
    pub tenant_id: String,
    pub plan: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When it was revoked; activation and refresh refuse it from then on.
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    /// The licence `townes license regen` issued in its place.
    pub replaced_by: Option<String>,
}

impl LicenseRecord {
    /// A licence as issued: in force, not replaced.
    pub fn new(
        id: &str,
        tenant_id: &str,
        plan: &str,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> LicenseRecord {
        LicenseRecord {
            id: id.to_string(),
            tenant_id: tenant_id.to_string(),
            plan: plan.to_string(),
            issued_at: ts(issued_at),
            expires_at: ts(expires_at),
            revoked_at: None,
            revoked_reason: None,
            replaced_by: None,
        }
    }
}

/// A self-hosted installation's activation of a licence. `Debug` leaves the
/// secret out.
#[derive(Clone, PartialEq)]
pub struct LicenseActivation {
    /// `act_…`.
    pub id: String,
    pub license_id: String,
    /// Signs the installation's refresh pings (HMAC-SHA256); never logged.
    pub secret: String,
    pub activated_at: DateTime<Utc>,
    /// The id of the last refresh ping answered, and the lease it got: a ping
    /// sent again gets that same lease.
    pub last_ping: Option<String>,
    pub last_lease: Option<String>,
    pub last_seen_at: DateTime<Utc>,
}

impl std::fmt::Debug for LicenseActivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LicenseActivation")
            .field("id", &self.id)
            .field("license_id", &self.license_id)
            .field("secret", &"<redacted>")
            .field("activated_at", &self.activated_at)
            .field("last_ping", &self.last_ping)
            .field(
                "last_lease",
                &self.last_lease.as_ref().map(|_| "tdlease1.…"),
            )
            .field("last_seen_at", &self.last_seen_at)
            .finish()
    }
}

/// What [`Store::revoke_license`] and [`Store::replace_license`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Revocation {
    /// Revoked now.
    Revoked(LicenseRecord),
    /// It was revoked before (the record says when, why and by what it was
    /// replaced); nothing changed.
    AlreadyRevoked(LicenseRecord),
    /// No licence has that id.
    Unknown,
}

#[derive(sqlx::FromRow)]
struct LicenseRow {
    id: String,
    tenant_id: String,
    plan: String,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    revoked_reason: Option<String>,
    replaced_by: Option<String>,
}

impl From<LicenseRow> for LicenseRecord {
    fn from(r: LicenseRow) -> LicenseRecord {
        LicenseRecord {
            id: r.id,
            tenant_id: r.tenant_id,
            plan: r.plan,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            revoked_reason: r.revoked_reason,
            replaced_by: r.replaced_by,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ActivationRow {
    id: String,
    license_id: String,
    secret: String,
    activated_at: DateTime<Utc>,
    last_ping: Option<String>,
    last_lease: Option<String>,
    last_seen_at: DateTime<Utc>,
}

impl From<ActivationRow> for LicenseActivation {
    fn from(r: ActivationRow) -> LicenseActivation {
        LicenseActivation {
            id: r.id,
            license_id: r.license_id,
            secret: r.secret,
            activated_at: r.activated_at,
            last_ping: r.last_ping,
            last_lease: r.last_lease,
            last_seen_at: r.last_seen_at,
        }
    }
}

/// Whether a database error is a unique violation (an id recorded twice).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

fn duplicate(id: &str) -> StoreError {
    StoreError::InvalidArgument(format!(
        "a licence with id {id} is already recorded; issue it without --id for a new one"
    ))
}

impl Store {
    /// Records an issued licence. An id already recorded is refused with
    /// [`StoreError::InvalidArgument`].
    pub async fn record_license(&self, license: &LicenseRecord) -> Result<(), StoreError> {
        let done = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO licenses (id, tenant_id, plan, issued_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&license.id)
            .bind(&license.tenant_id)
            .bind(&license.plan)
            .bind(ts(license.issued_at))
            .bind(ts(license.expires_at))
            .execute(pool)
            .await
            .map(|_| ())
        });
        match done {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(duplicate(&license.id)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn license(&self, id: &str) -> Result<Option<LicenseRecord>, StoreError> {
        let row: Option<LicenseRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, plan, issued_at, expires_at, revoked_at, revoked_reason,
                        replaced_by
                 FROM licenses WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(LicenseRecord::from))
    }

    /// Revokes a licence at `at` for `reason`. A licence revoked before keeps
    /// its first revocation.
    pub async fn revoke_license(
        &self,
        id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Revocation, StoreError> {
        let revoked: Option<LicenseRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "UPDATE licenses SET revoked_at = $2, revoked_reason = $3
                 WHERE id = $1 AND revoked_at IS NULL
                 RETURNING id, tenant_id, plan, issued_at, expires_at, revoked_at,
                           revoked_reason, replaced_by",
            )
            .bind(id)
            .bind(ts(at))
            .bind(reason)
            .fetch_optional(pool)
            .await?
        });
        Ok(match revoked {
            Some(row) => Revocation::Revoked(row.into()),
            None => match self.license(id).await? {
                Some(record) => Revocation::AlreadyRevoked(record),
                None => Revocation::Unknown,
            },
        })
    }

    /// Records `new` and revokes `old_id` in its favour (`replaced_by`), in one
    /// transaction: both happen or neither. A licence replaced before is left
    /// as it is ([`Revocation::AlreadyRevoked`]) and `new` is not recorded;
    /// one revoked but never replaced can still be replaced (its first
    /// revocation time and reason stay).
    pub async fn replace_license(
        &self,
        old_id: &str,
        new: &LicenseRecord,
        reason: &str,
    ) -> Result<Revocation, StoreError> {
        let at = ts(new.issued_at);
        let outcome = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            // The update first: it locks the old row (Postgres) or reserves the
            // database (SQLite) before anything else happens.
            let replaced: Option<LicenseRow> = sqlx::query_as(
                "UPDATE licenses
                 SET revoked_at = COALESCE(revoked_at, $2),
                     revoked_reason = COALESCE(revoked_reason, $3),
                     replaced_by = $4
                 WHERE id = $1 AND replaced_by IS NULL
                 RETURNING id, tenant_id, plan, issued_at, expires_at, revoked_at,
                           revoked_reason, replaced_by",
            )
            .bind(old_id)
            .bind(at)
            .bind(reason)
            .bind(&new.id)
            .fetch_optional(&mut *tx)
            .await?;
            match replaced {
                Some(row) => {
                    let inserted = sqlx::query(
                        "INSERT INTO licenses (id, tenant_id, plan, issued_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&new.id)
                    .bind(&new.tenant_id)
                    .bind(&new.plan)
                    .bind(at)
                    .bind(ts(new.expires_at))
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        Err(e) if is_unique_violation(&e) => return Err(duplicate(&new.id)),
                        Err(e) => return Err(e.into()),
                    }
                    tx.commit().await?;
                    Some(row)
                }
                None => {
                    tx.rollback().await?;
                    None
                }
            }
        });
        Ok(match outcome {
            Some(row) => Revocation::Revoked(row.into()),
            None => match self.license(old_id).await? {
                Some(record) => Revocation::AlreadyRevoked(record),
                None => Revocation::Unknown,
            },
        })
    }

    /// Records a new activation of `license_id` with the lease it got.
    pub async fn create_license_activation(
        &self,
        id: &str,
        license_id: &str,
        secret: &str,
        lease: &str,
        at: DateTime<Utc>,
    ) -> Result<LicenseActivation, StoreError> {
        let row: ActivationRow = on_db!(&self.db, pool => {
            sqlx::query_as(
                "INSERT INTO license_activations
                     (id, license_id, secret, activated_at, last_ping, last_lease, last_seen_at)
                 VALUES ($1, $2, $3, $4, NULL, $5, $4)
                 RETURNING id, license_id, secret, activated_at, last_ping, last_lease, last_seen_at",
            )
            .bind(id)
            .bind(license_id)
            .bind(secret)
            .bind(ts(at))
            .bind(lease)
            .fetch_one(pool)
            .await?
        });
        Ok(row.into())
    }

    pub async fn license_activation(
        &self,
        id: &str,
    ) -> Result<Option<LicenseActivation>, StoreError> {
        let row: Option<ActivationRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, license_id, secret, activated_at, last_ping, last_lease, last_seen_at
                 FROM license_activations WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(LicenseActivation::from))
    }

    /// The lease most recently handed to an installation of `license_id`, if
    /// any activated it.
    pub async fn license_last_lease(&self, license_id: &str) -> Result<Option<String>, StoreError> {
        let lease: Option<Option<String>> = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT last_lease FROM license_activations
                 WHERE license_id = $1 AND last_lease IS NOT NULL
                 ORDER BY last_seen_at DESC, id
                 LIMIT 1",
            )
            .bind(license_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(lease.flatten())
    }

    /// Records that refresh ping `ping` of activation `id` got `lease`, in one
    /// statement. `false` when `ping` was already the last one recorded (a
    /// concurrent delivery of the same ping won): then nothing changed, and
    /// the lease to answer with is the stored one.
    pub async fn record_license_ping(
        &self,
        id: &str,
        ping: &str,
        lease: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE license_activations
                 SET last_ping = $2, last_lease = $3, last_seen_at = $4
                 WHERE id = $1 AND (last_ping IS NULL OR last_ping <> $2)",
            )
            .bind(id)
            .bind(ping)
            .bind(lease)
            .bind(ts(at))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }
}
