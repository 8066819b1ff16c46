-- 0017 community health (Postgres): what members do in each guild per UTC day, and
-- the daily health score computed from it (ADR 0025).
-- Keep in step with migrations/sqlite/0017_community_health.sql.
-- Conventions as in 0001. Like usage counters, no row has a foreign key to
-- guilds: counting never fails to write, and a purge deletes them by guild.

-- A guild's activity counters for one day, added to by every process's
-- periodic flush. Aggregates only: no member is named.
CREATE TABLE guild_activity (
    guild_id   BIGINT  NOT NULL,
    day        DATE    NOT NULL,
    messages   BIGINT  NOT NULL DEFAULT 0,
    -- Messages that answer another message (Discord's inline replies).
    replies    BIGINT  NOT NULL DEFAULT 0,
    reactions  BIGINT  NOT NULL DEFAULT 0,
    joins      BIGINT  NOT NULL DEFAULT 0,
    leaves     BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, day)
);

-- The members who wrote or reacted in a guild on a day: one row each, so the
-- distinct count is exact across processes. Kept 45 days (retention looks
-- 37 days back), then swept; a member's erasure and the guild's purge delete
-- them earlier.
CREATE TABLE guild_active_members (
    guild_id   BIGINT  NOT NULL,
    day        DATE    NOT NULL,
    member_id  BIGINT  NOT NULL,
    PRIMARY KEY (guild_id, day, member_id)
);
-- Retention asks whether one member was active from a day on.
CREATE INDEX guild_active_members_by_member ON guild_active_members (guild_id, member_id, day);

-- The members who joined a guild on a day, and the first day that counts as
-- "still active a week later" (day + 7), so retention is one plain join.
-- Kept 45 days like active members.
CREATE TABLE guild_joins (
    guild_id       BIGINT  NOT NULL,
    day            DATE    NOT NULL,
    member_id      BIGINT  NOT NULL,
    retained_from  DATE    NOT NULL,
    PRIMARY KEY (guild_id, day, member_id)
);

-- One computed score per guild and day: the total, each part (NULL: the part
-- does not apply to the guild, or cannot be measured) and the figures it was
-- computed from. Recomputing a day replaces its row. Kept 400 days.
CREATE TABLE guild_health (
    guild_id     BIGINT   NOT NULL,
    day          DATE     NOT NULL,
    score        INTEGER  NOT NULL CHECK (score BETWEEN 0 AND 100),
    activity     INTEGER  CHECK (activity BETWEEN 0 AND 100),
    growth       INTEGER  CHECK (growth BETWEEN 0 AND 100),
    retention    INTEGER  CHECK (retention BETWEEN 0 AND 100),
    engagement   INTEGER  CHECK (engagement BETWEEN 0 AND 100),
    moderation   INTEGER  CHECK (moderation BETWEEN 0 AND 100),
    support      INTEGER  CHECK (support BETWEEN 0 AND 100),
    figures      JSONB    NOT NULL,
    computed_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (guild_id, day)
);
-- The daily job looks for days it has not computed yet.
CREATE INDEX guild_health_by_day ON guild_health (day, guild_id);

-- Moderation load counts a guild's moderation entries of a week.
CREATE INDEX audit_log_by_guild_time ON audit_log (guild_id, created_at);
