-- 0016 claimed work (SQLite): several `townes` processes on one database without
-- losing or doubling work. Keep in step with migrations/postgres/0016_claimed_work.sql.
-- Conventions as in 0001.

-- An outbox row is leased to the executor that inserted (or adopted) it: only that
-- holder sends it, renewing the lease while it lives. A row whose lease ran out
-- (its holder crashed) may be adopted by another executor; NULL (rows written
-- before this migration, or released by a graceful shutdown) is free at once.
ALTER TABLE discord_outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE discord_outbox ADD COLUMN lease_until TEXT;
-- The renewal and release of one holder's rows.
CREATE INDEX discord_outbox_by_holder ON discord_outbox (lease_owner) WHERE failed_at IS NULL;

-- A due job is claimed by the runtime that runs it, until it is finished or its
-- lease runs out (its runner died: due again). `claims` counts every claim, so a
-- job that keeps killing its runner is given up on (failed) after a few.
ALTER TABLE scheduled_jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE scheduled_jobs ADD COLUMN lease_until TEXT;
ALTER TABLE scheduled_jobs ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;

-- Installed components' bytes, keyed by their sha256 and written once, so every
-- process can load a component another one installed. Shared by every version
-- (of any tenant) with the same contents; never deleted by a tenant's purge.
CREATE TABLE component_blobs (
    sha256      TEXT    NOT NULL PRIMARY KEY,
    wasm        BLOB    NOT NULL,
    size_bytes  BIGINT  NOT NULL,
    created_at  TEXT    NOT NULL
);
