//! What the dashboard API authenticates with: login sessions, API keys, OAuth states.
//!
//! No secret is stored: session tokens, key secrets and OAuth states are kept as their
//! hex sha256 (computed by the caller), so a leaked database or backup cannot be replayed
//! against the API. Looking hashes up in SQL leaks nothing useful through timing either:
//! learning part of a stored hash does not help to find a token that hashes to it.

use chrono::{DateTime, Utc};

use super::{
    ApiKey, NewSession, Session, Store, StoreError, api_id, check_name, db_id,
    is_foreign_key_violation, now, random_id, ts,
};

#[derive(sqlx::FromRow)]
struct SessionRow {
    tenant_id: String,
    discord_user_id: i64,
    user_name: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Session {
        Session {
            tenant_id: r.tenant_id,
            discord_user_id: api_id(r.discord_user_id),
            user_name: r.user_name,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    tenant_id: String,
    name: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> ApiKey {
        ApiKey {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// An API key row with its secret hash, for verification only.
#[derive(sqlx::FromRow)]
struct ApiKeySecretRow {
    #[sqlx(flatten)]
    key: ApiKeyRow,
    secret_hash: String,
}

/// A foreign-key violation on insert means the tenant does not exist: say so instead of
/// surfacing a database error. (The only foreign key of the tables written with it.)
pub(super) fn tenant_refused(e: sqlx::Error, tenant_id: &str) -> StoreError {
    if is_foreign_key_violation(&e) {
        StoreError::InvalidArgument(format!("no tenant {tenant_id}"))
    } else {
        e.into()
    }
}

impl Store {
    /// Records a login, stamped now. An unknown tenant is refused with
    /// [`StoreError::InvalidArgument`]; a token hash already stored is a database error
    /// (tokens are random, so that never happens by chance).
    pub async fn create_session(&self, s: &NewSession<'_>) -> Result<(), StoreError> {
        let result = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO api_sessions
                     (token_hash, tenant_id, discord_user_id, user_name, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(s.token_hash)
            .bind(s.tenant_id)
            .bind(db_id(s.discord_user_id))
            .bind(s.user_name)
            .bind(now())
            .bind(ts(s.expires_at))
            .execute(pool)
            .await
            .map(|_| ())
        });
        result.map_err(|e| tenant_refused(e, s.tenant_id))?;
        Ok(())
    }

    /// The session with this token hash if it is neither revoked nor expired (now).
    /// Expired rows are not deleted here: a read-only lookup per request stays cheap.
    pub async fn live_session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let row: Option<SessionRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT tenant_id, discord_user_id, user_name, created_at, expires_at
                 FROM api_sessions
                 WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Session::from))
    }

    /// Revokes (logout); false if there was no live session with that hash, so a second
    /// logout, or one after expiry, changes nothing.
    pub async fn revoke_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let revoked = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE api_sessions SET revoked_at = $2
                 WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(revoked > 0)
    }

    /// Creates a key for a tenant, stamped now, with id = 32 random hex digits (the caller
    /// builds the presented key from the id and a secret it shows once, and passes the
    /// secret's sha256). `name` must be 1 to 100 characters; an unknown tenant is
    /// refused. Both with [`StoreError::InvalidArgument`].
    pub async fn create_api_key(
        &self,
        tenant_id: &str,
        name: &str,
        secret_hash: &str,
    ) -> Result<ApiKey, StoreError> {
        check_name("name", name)?;
        let key = ApiKey {
            id: random_id(),
            tenant_id: tenant_id.to_string(),
            name: name.to_string(),
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        let result = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, name, secret_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&key.id)
            .bind(&key.tenant_id)
            .bind(&key.name)
            .bind(secret_hash)
            .bind(key.created_at)
            .execute(pool)
            .await
            .map(|_| ())
        });
        result.map_err(|e| tenant_refused(e, tenant_id))?;
        Ok(key)
    }

    /// A tenant's keys, revoked ones included (so the dashboard can show what was
    /// revoked), newest first (ones created in the same microsecond by id, descending,
    /// so the order is deterministic).
    pub async fn api_keys(&self, tenant_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let rows: Vec<ApiKeyRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, name, created_at, last_used_at, revoked_at
                 FROM api_keys
                 WHERE tenant_id = $1
                 ORDER BY created_at DESC, id DESC",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// A live (not revoked) key and its stored secret hash, for verifying a presented
    /// key. The hash is returned separately so [`ApiKey`] itself never carries it.
    pub async fn live_api_key(&self, id: &str) -> Result<Option<(ApiKey, String)>, StoreError> {
        let row: Option<ApiKeySecretRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, name, created_at, last_used_at, revoked_at, secret_hash
                 FROM api_keys
                 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|r| (ApiKey::from(r.key), r.secret_hash)))
    }

    /// Revokes a tenant's key, now. False if the tenant has no live key with that id:
    /// already revoked, unknown, or another tenant's (which this never touches).
    pub async fn revoke_api_key(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let revoked = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $3
                 WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(revoked > 0)
    }

    /// Sets a key's `last_used_at` to now, so tenants can spot unused keys. An unknown id
    /// is not an error: a key deleted between verification and this call needs no
    /// handling by the caller.
    pub async fn touch_api_key(&self, id: &str) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// An OAuth `state` the API issued (stored as a hash), valid until expires_at. The
    /// callback must present it back ([`Store::take_oauth_state`]), which ties a login to
    /// a flow this API started (CSRF protection) and works across API replicas.
    pub async fn put_oauth_state(
        &self,
        state_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO oauth_states (state_hash, expires_at, created_at)
                 VALUES ($1, $2, $3)",
            )
            .bind(state_hash)
            .bind(ts(expires_at))
            .bind(now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Consumes a state: true once if it exists and has not expired; also deletes expired
    /// states, so abandoned logins do not pile up. The consuming `DELETE` is one
    /// statement, so of two concurrent callbacks with the same state only one wins.
    pub async fn take_oauth_state(&self, state_hash: &str) -> Result<bool, StoreError> {
        let at = now();
        let taken = on_db!(&self.db, pool => {
            let taken = sqlx::query(
                "DELETE FROM oauth_states WHERE state_hash = $1 AND expires_at > $2",
            )
            .bind(state_hash)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM oauth_states WHERE expires_at <= $1")
                .bind(at)
                .execute(pool)
                .await?;
            taken
        });
        Ok(taken > 0)
    }

    /// `SELECT 1`, for readiness probes: succeeds only if a pooled connection answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }
}
