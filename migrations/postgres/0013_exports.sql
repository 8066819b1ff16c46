-- 0013 exports (Postgres): one row per export job (issue 15, ADR 0018).
-- Keep in step with migrations/sqlite/0013_exports.sql.
--
-- The bundle is a file under the data directory; the row says where the job
-- is and what the file is. No foreign key to tenants: an offboarded tenant is
-- deleted while its export waits to be downloaded.
CREATE TABLE exports (
    id            TEXT        NOT NULL PRIMARY KEY,
    tenant_id     TEXT        NOT NULL,
    -- Set for a one-guild export.
    guild_id      BIGINT,
    status        TEXT        NOT NULL
        CHECK (status IN ('queued', 'running', 'done', 'failed')),
    step          TEXT        NOT NULL,
    rows_done     BIGINT      NOT NULL DEFAULT 0,
    rows_total    BIGINT      NOT NULL DEFAULT 0,
    error         TEXT,
    -- Of the encrypted bundle, once done.
    size_bytes    BIGINT,
    sha256        TEXT,
    requested_by  TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    -- Moves with every step and a heartbeat: a queued or running row that
    -- stopped moving belongs to a process that stopped.
    updated_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    -- The download link works, and the file is kept, until then.
    expires_at    TIMESTAMPTZ
);
CREATE INDEX exports_by_tenant ON exports (tenant_id, created_at);
CREATE INDEX exports_unfinished ON exports (updated_at) WHERE status IN ('queued', 'running');
-- One unfinished export per tenant: a second is refused until the first ends,
-- so repeated requests cannot pile up work and disk.
CREATE UNIQUE INDEX exports_one_unfinished_per_tenant ON exports (tenant_id)
    WHERE status IN ('queued', 'running');
