-- Scheduled jobs are retried when the host could not run them (the feature
-- was paused, the database failed) and can end as `failed`; finished rows are
-- purged after a while.
CREATE TABLE scheduled_jobs_new (
    id           TEXT    NOT NULL PRIMARY KEY,
    guild_id     BIGINT  NOT NULL,
    feature_id   TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    run_at       TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'cancelled', 'failed')),
    created_at   TEXT    NOT NULL,
    finished_at  TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
INSERT INTO scheduled_jobs_new (id, guild_id, feature_id, name, payload, run_at, status, created_at, finished_at)
    SELECT id, guild_id, feature_id, name, payload, run_at, status, created_at, finished_at FROM scheduled_jobs;
DROP TABLE scheduled_jobs;
ALTER TABLE scheduled_jobs_new RENAME TO scheduled_jobs;
CREATE INDEX scheduled_jobs_due ON scheduled_jobs (run_at, id) WHERE status = 'pending';
CREATE INDEX scheduled_jobs_by_scope ON scheduled_jobs (guild_id, feature_id, status);
CREATE INDEX scheduled_jobs_finished ON scheduled_jobs (finished_at) WHERE status <> 'pending';
