-- Scheduled jobs are retried when the host could not run them (the feature
-- was paused, the database failed) and can end as `failed`; finished rows are
-- purged after a while.
ALTER TABLE scheduled_jobs DROP CONSTRAINT IF EXISTS scheduled_jobs_status_check;
ALTER TABLE scheduled_jobs ADD CONSTRAINT scheduled_jobs_status_check
    CHECK (status IN ('pending', 'done', 'cancelled', 'failed'));
ALTER TABLE scheduled_jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scheduled_jobs ADD COLUMN last_error TEXT;
DROP INDEX scheduled_jobs_by_scope;
CREATE INDEX scheduled_jobs_by_scope ON scheduled_jobs (guild_id, feature_id, status);
CREATE INDEX scheduled_jobs_finished ON scheduled_jobs (finished_at) WHERE status <> 'pending';
