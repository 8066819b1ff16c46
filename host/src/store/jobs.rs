//! Scheduled jobs: work a feature asked to run later. Stored, so they survive a restart.
//!
//! A job is `pending` until it is completed (`done`), cancelled (`cancelled`) or
//! given up on (`failed`); only pending jobs whose time has come are due. A job the
//! host could not run is moved to a later `run_at` with its `attempts` counted.
//! Finished rows are purged after a while ([`Store::purge_finished_jobs`]).
//!
//! Several processes may run jobs from one database (migration 0016): a runtime
//! claims the due jobs it runs ([`Store::claim_due_jobs`]), leasing them to itself
//! until it finishes or moves them. A job whose runner died is due again once its
//! lease ran out; `claims` counts every claim, so the caller can give up on a job
//! that keeps killing its runners. Finishing and retrying do not check the lease:
//! they only ever act on a pending job, so a late runner's answer is harmless.

use chrono::{DateTime, Utc};

use super::{
    Db, ScheduledJob, Scope, Store, StoreError, api_id, db_id, db_limit, lease_end, now, random_id,
    ts,
};

/// The claim of due jobs, fair across guilds as in [`Store::due_jobs`]; `$lock` is
/// how Postgres keeps two claimers off the same jobs (the conditions are checked
/// again on the locked rows, so a job claimed meanwhile is skipped).
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE scheduled_jobs
             SET lease_owner = $4, lease_until = $5, claims = claims + 1
             WHERE id IN (
                 SELECT j.id FROM scheduled_jobs AS j
                 WHERE j.id IN (
                           SELECT id
                           FROM (SELECT id, run_at,
                                        ROW_NUMBER() OVER (PARTITION BY guild_id ORDER BY run_at, id) AS turn
                                 FROM scheduled_jobs
                                 WHERE status = 'pending' AND run_at <= $1
                                   AND (lease_until IS NULL OR lease_until < $1)) AS due
                           WHERE turn <= $3
                           ORDER BY turn, run_at, id
                           LIMIT $2)
                   AND j.status = 'pending'
                   AND (j.lease_until IS NULL OR j.lease_until < $1) ",
            $lock,
            ")
             RETURNING id, guild_id, feature_id, name, payload, run_at, attempts, claims"
        )
    };
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    guild_id: i64,
    feature_id: String,
    name: String,
    payload: String,
    run_at: DateTime<Utc>,
    attempts: i32,
    claims: i32,
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
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            claims: u32::try_from(r.claims).unwrap_or(0),
        }
    }
}

impl Store {
    /// Schedules a job for `run_at` and returns its id (32 random hex digits),
    /// unless the scope already has `max_pending` pending jobs.
    pub async fn schedule_job(
        &self,
        s: &Scope,
        name: &str,
        payload: &str,
        run_at: DateTime<Utc>,
        max_pending: u32,
    ) -> Result<String, StoreError> {
        self.schedule_job_as(&random_id(), s, name, payload, run_at, max_pending)
            .await
    }

    /// [`Store::schedule_job`] under the id `id`. Scheduling an id that exists
    /// already returns it and changes nothing: work handled a second time
    /// (see `discord::delivery`) schedules the jobs it scheduled the first
    /// time, not new ones.
    pub async fn schedule_job_as(
        &self,
        id: &str,
        s: &Scope,
        name: &str,
        payload: &str,
        run_at: DateTime<Utc>,
        max_pending: u32,
    ) -> Result<String, StoreError> {
        // One statement, so the count and the insert see the same rows.
        let inserted = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO scheduled_jobs
                     (id, guild_id, feature_id, name, payload, run_at, status, created_at)
                 SELECT $1, $2, $3, $4, $5, $6, 'pending', $7
                 WHERE (SELECT COUNT(*) FROM scheduled_jobs
                        WHERE guild_id = $2 AND feature_id = $3 AND status = 'pending') < $8
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(db_id(s.guild_id))
            .bind(&s.feature_id)
            .bind(name)
            .bind(payload)
            .bind(ts(run_at))
            .bind(now())
            .bind(db_limit(max_pending))
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            let existing: Option<(String,)> = on_db!(&self.db, pool => {
                sqlx::query_as(
                    "SELECT id FROM scheduled_jobs
                     WHERE id = $1 AND guild_id = $2 AND feature_id = $3",
                )
                .bind(id)
                .bind(db_id(s.guild_id))
                .bind(&s.feature_id)
                .fetch_optional(pool)
                .await?
            });
            if existing.is_none() {
                return Err(StoreError::QuotaExceeded(format!(
                    "scheduled jobs: {max_pending} pending jobs in this guild; cancel one or wait for them to run"
                )));
            }
        }
        Ok(id.to_string())
    }

    /// Cancels a pending job of this scope. Returns false if there is no such job (wrong
    /// scope, unknown id, or already finished).
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

    /// Up to `limit` pending jobs with `run_at <= now`, at most `per_guild` of any
    /// one guild, taking each guild's earliest first and then round-robin across
    /// guilds, so a guild with thousands of due jobs does not hold up the others.
    /// Does not claim them, and counts claimed ones as due too: what is waiting,
    /// for a look; [`Store::claim_due_jobs`] is what runners use.
    pub async fn due_jobs(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        per_guild: u32,
    ) -> Result<Vec<ScheduledJob>, StoreError> {
        let rows: Vec<JobRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, guild_id, feature_id, name, payload, run_at, attempts, claims
                 FROM (SELECT id, guild_id, feature_id, name, payload, run_at, attempts, claims,
                              ROW_NUMBER() OVER (PARTITION BY guild_id ORDER BY run_at, id) AS turn
                       FROM scheduled_jobs
                       WHERE status = 'pending' AND run_at <= $1) AS due
                 WHERE turn <= $3
                 ORDER BY turn, run_at, id
                 LIMIT $2",
            )
            .bind(ts(now))
            .bind(db_limit(limit))
            .bind(db_limit(per_guild))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(ScheduledJob::from).collect())
    }

    /// Claims up to `limit` due jobs for `holder` until `now + lease`, chosen like
    /// [`Store::due_jobs`] (at most `per_guild` of one guild, round-robin) among those
    /// nobody holds, and returns them in that order with their claim counted. A
    /// compare-and-set: of runtimes claiming at once, each job goes to one.
    pub async fn claim_due_jobs(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
        per_guild: u32,
    ) -> Result<Vec<ScheduledJob>, StoreError> {
        let sql = match &self.db {
            Db::Sqlite(_) => claim_sql!(""),
            Db::Postgres(_) => claim_sql!("FOR UPDATE OF j SKIP LOCKED"),
        };
        let until = lease_end(now, lease);
        let rows: Vec<JobRow> = on_db!(&self.db, pool => {
            sqlx::query_as(sql)
                .bind(ts(now))
                .bind(db_limit(limit))
                .bind(db_limit(per_guild))
                .bind(holder)
                .bind(until)
                .fetch_all(pool)
                .await?
        });
        // RETURNING has no order: put the claimed jobs back in their turns.
        let mut jobs: Vec<ScheduledJob> = rows.into_iter().map(ScheduledJob::from).collect();
        jobs.sort_by(|a, b| {
            (a.scope.guild_id, a.run_at, &a.id).cmp(&(b.scope.guild_id, b.run_at, &b.id))
        });
        let mut turns = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            let turn = match i.checked_sub(1).map(|p| &jobs[p]) {
                Some(previous) if previous.scope.guild_id == job.scope.guild_id => turns[i - 1] + 1,
                _ => 0,
            };
            turns.push(turn);
        }
        let mut ordered: Vec<(usize, ScheduledJob)> = turns.into_iter().zip(jobs).collect();
        ordered.sort_by(|(ta, a), (tb, b)| (ta, a.run_at, &a.id).cmp(&(tb, b.run_at, &b.id)));
        Ok(ordered.into_iter().map(|(_, job)| job).collect())
    }

    /// Extends `holder`'s leases on the jobs it still runs to at least `until`;
    /// returns how many.
    pub async fn renew_job_leases(
        &self,
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let renewed = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE scheduled_jobs
                 SET lease_until = CASE WHEN lease_until < $2 THEN $2 ELSE lease_until END
                 WHERE lease_owner = $1 AND status = 'pending'",
            )
            .bind(holder)
            .bind(ts(until))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(renewed)
    }

    /// Marks a pending job finished: `done`, `cancelled` or `failed`, with the
    /// reason for the last two. Finishing a job that is not pending is a no-op,
    /// so handlers may finish at least once.
    pub async fn finish_job(
        &self,
        id: &str,
        status: JobEnd,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE scheduled_jobs SET status = $2, finished_at = $3, last_error = $4
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(now())
            .bind(reason)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Marks a pending job done.
    pub async fn complete_job(&self, id: &str) -> Result<(), StoreError> {
        self.finish_job(id, JobEnd::Done, None).await
    }

    /// Moves a pending job the host could not run to `run_at`, counting the attempt,
    /// and frees its claim: it is due again for whoever claims it then.
    pub async fn retry_job(
        &self,
        id: &str,
        run_at: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE scheduled_jobs
                 SET run_at = $2, attempts = attempts + 1, last_error = $3,
                     lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(ts(run_at))
            .bind(reason)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Deletes jobs that finished before `before`; returns how many.
    pub async fn purge_finished_jobs(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let purged = on_db!(&self.db, pool => {
            sqlx::query("DELETE FROM scheduled_jobs WHERE status <> 'pending' AND finished_at < $1")
                .bind(ts(before))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(purged)
    }
}

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEnd {
    Done,
    /// Nobody is left to run it (the feature was disabled or cancelled it).
    Cancelled,
    /// It failed in the feature, or the host gave up retrying.
    Failed,
}

impl JobEnd {
    fn as_str(self) -> &'static str {
        match self {
            JobEnd::Done => "done",
            JobEnd::Cancelled => "cancelled",
            JobEnd::Failed => "failed",
        }
    }
}
