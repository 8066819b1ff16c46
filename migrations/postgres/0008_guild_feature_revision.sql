-- 0008 guild feature revision (Postgres): optimistic concurrency for marketplace writes.
-- Keep in step with migrations/sqlite/0008_guild_feature_revision.sql.

-- Counts admin changes to a (guild, feature) row. A write validated against what it
-- read (a configuration against the version's schema, an upgrade against the stored
-- configuration) only lands if the revision is still the one it read, so a
-- concurrent change is never overwritten with stale values. Breaker updates leave it
-- alone: they are runtime state, not admin changes.
ALTER TABLE guild_features ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
