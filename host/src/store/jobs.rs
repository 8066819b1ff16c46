//! Scheduled jobs: work a feature asked to run later. Stored, so they survive a restart.
//!
//! A job is `pending` until it is completed (`done`) or cancelled (`cancelled`); only
//! pending jobs whose time has come are due. Rows are kept after they finish.

use chrono::{DateTime, Utc};

use super::{ScheduledJob, Scope, Store, StoreError, api_id, db_id, db_limit, now, random_id, ts};

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    guild_id: i64,
    feature_id: String,
    name: String,
    payload: String,
    run_at: DateTime<Utc>,
}

impl From<JobRow> for ScheduledJob {
    fn from(r: JobRow) -> ScheduledJob {
        ScheduledJob {
            id: r.id,
            scope: Scope {
                guild_id: api_id(r.guild_id),
                feature_id: r.feature_id,
            },
            name: r.name,
            payload: r.payload,
            run_at: r.run_at,
        }
    }
}

impl Store {
    /// Schedules a job for `run_at` and returns its id (32 random hex digits).
    pub async fn schedule_job(
        &self,
        s: &Scope,
        name: &str,
        payload: &str,
        run_at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let id = random_id();
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO scheduled_jobs
                     (id, guild_id, feature_id, name, payload, run_at, status, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)",
            )
            .bind(&id)
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(name)
            .bind(payload)
            .bind(ts(run_at))
            .bind(now())
            .execute(pool)
            .await?;
        });
        Ok(id)
    }

    /// Cancels a pending job of this scope. Returns false if there is no such job (wrong
    /// scope, unknown id, or already done or cancelled).
    pub async fn cancel_job(&self, s: &Scope, id: &str) -> Result<bool, StoreError> {
        let cancelled = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE scheduled_jobs SET status = 'cancelled', finished_at = $4
                 WHERE id = $1 AND guild_id = $2 AND feature_id = $3 AND status = 'pending'",
            )
            .bind(id)
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(cancelled == 1)
    }

    /// Up to `limit` pending jobs with `run_at <= now`, earliest first. Does not claim
    /// them: a job stays due until [`Store::complete_job`] or [`Store::cancel_job`].
    pub async fn due_jobs(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ScheduledJob>, StoreError> {
        let rows: Vec<JobRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, guild_id, feature_id, name, payload, run_at
                 FROM scheduled_jobs
                 WHERE status = 'pending' AND run_at <= $1
                 ORDER BY run_at, id
                 LIMIT $2",
            )
            .bind(ts(now))
            .bind(db_limit(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(ScheduledJob::from).collect())
    }

    /// Marks a pending job done. Completing a job that is not pending (already done,
    /// cancelled, or unknown) is a no-op, so handlers may complete at least once.
    pub async fn complete_job(&self, id: &str) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE scheduled_jobs SET status = 'done', finished_at = $2
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
