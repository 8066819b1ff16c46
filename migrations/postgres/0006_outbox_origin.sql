-- 0006 outbox origin (Postgres): who asked for each pending Discord call, so the
-- executor can hold every guild and feature to a quota of pending calls and drop a
-- feature's queued calls when it is disabled. Keep in step with
-- migrations/sqlite/0006_outbox_origin.sql. Conventions as in 0001.
--
-- Both columns are NULL for calls the host makes for itself (interaction answers,
-- command registration) and for rows written before this migration: those are never
-- counted against a feature.
ALTER TABLE discord_outbox ADD COLUMN guild_id BIGINT;
ALTER TABLE discord_outbox ADD COLUMN feature_id TEXT COLLATE "C";
-- Serves cancelling a feature's pending rows when it is disabled in a guild.
CREATE INDEX discord_outbox_origin ON discord_outbox (guild_id, feature_id)
    WHERE failed_at IS NULL;
