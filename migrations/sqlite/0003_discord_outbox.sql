-- 0003 discord outbox (SQLite): Discord REST calls accepted by the executor and not yet
-- finished. Keep in step with migrations/postgres/0003_discord_outbox.sql.
-- Conventions as in 0001.
--
-- A row is written before the call is attempted and deleted once Discord answered for
-- good (success or a final refusal), so a crash or restart never loses an accepted
-- call: the next start replays every pending row, oldest first. A row whose retries
-- ran out is kept as a dead letter (failed_at set) and never retried automatically.
CREATE TABLE discord_outbox (
    -- AUTOINCREMENT: ids are never reused, even after deletes; message creates send
    -- the id as their nonce, so a reused id could be taken for a duplicate.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The channel (message actions) or guild the call is ordered by.
    lane_key    BIGINT  NOT NULL,
    -- The action as JSON (its kind and parameters).
    action      TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT    NOT NULL,
    -- Set when the row was dead-lettered; NULL while it is pending.
    failed_at   TEXT
);
CREATE INDEX discord_outbox_pending ON discord_outbox (id) WHERE failed_at IS NULL;
CREATE INDEX discord_outbox_dead ON discord_outbox (failed_at, id) WHERE failed_at IS NOT NULL;
