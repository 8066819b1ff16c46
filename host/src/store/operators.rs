//! The platform's operators (migration 0014): people who run the platform and
//! reach the `/admin` routes, a role apart from tenants. Like API keys, a token
//! is shown once and only its sha256 (computed by the caller) is stored.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, check_name, now, random_id};

/// An operator; no secret in it, so it can be listed and serialized.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Operator {
    /// 32 random hex digits; the public half of a presented token.
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// A revoked operator is listed but never accepted.
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct OperatorRow {
    id: String,
    name: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<OperatorRow> for Operator {
    fn from(r: OperatorRow) -> Operator {
        Operator {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct OperatorSecretRow {
    #[sqlx(flatten)]
    operator: OperatorRow,
    token_hash: String,
}

impl Store {
    /// Records an operator, stamped now (id: 32 random hex digits). `name`
    /// must be 1 to 100 characters ([`StoreError::InvalidArgument`]).
    pub async fn create_operator(
        &self,
        name: &str,
        token_hash: &str,
    ) -> Result<Operator, StoreError> {
        check_name("name", name)?;
        let operator = Operator {
            id: random_id(),
            name: name.to_string(),
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO operators (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&operator.id)
            .bind(&operator.name)
            .bind(token_hash)
            .bind(operator.created_at)
            .execute(pool)
            .await?;
        });
        Ok(operator)
    }

    /// Every operator, revoked ones included, oldest first.
    pub async fn operators(&self) -> Result<Vec<Operator>, StoreError> {
        let rows: Vec<OperatorRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, name, created_at, last_used_at, revoked_at
                 FROM operators ORDER BY created_at, id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Operator::from).collect())
    }

    /// A live (not revoked) operator and its stored token hash, for verifying
    /// a presented token.
    pub async fn live_operator(&self, id: &str) -> Result<Option<(Operator, String)>, StoreError> {
        let row: Option<OperatorSecretRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, name, created_at, last_used_at, revoked_at, token_hash
                 FROM operators WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|r| (Operator::from(r.operator), r.token_hash)))
    }

    /// Revokes an operator now; false if there was no live one with that id.
    pub async fn revoke_operator(&self, id: &str) -> Result<bool, StoreError> {
        let revoked = on_db!(&self.db, pool => {
            sqlx::query("UPDATE operators SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(revoked > 0)
    }

    /// Sets an operator's `last_used_at` to now.
    pub async fn touch_operator(&self, id: &str) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query("UPDATE operators SET last_used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now())
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
