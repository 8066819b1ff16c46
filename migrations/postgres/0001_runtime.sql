-- 0001 runtime (Postgres): the tables the host needs to run features.
-- Keep in step with migrations/sqlite/0001_runtime.sql: same tables, same columns.
--
-- Conventions on Postgres:
--   * Discord snowflakes are BIGINT (a u64 stored bit-for-bit as a signed 64-bit integer).
--   * Times are TIMESTAMPTZ (microsecond resolution; the store truncates to match).
--   * JSON is JSONB.
--   * Keys and board names use COLLATE "C" so they sort byte-wise, as on SQLite.

-- A Discord server the bot is in.
CREATE TABLE guilds (
    id          BIGINT      NOT NULL PRIMARY KEY,
    name        TEXT        NOT NULL,
    owner_id    BIGINT      NOT NULL,
    plan        TEXT        NOT NULL DEFAULT 'free',
    created_at  TIMESTAMPTZ NOT NULL
);

-- One installed build of a feature component. A (feature, version) pair names exactly
-- one build: the sha256 of the component never changes once recorded.
CREATE TABLE feature_versions (
    feature_id  TEXT        NOT NULL,
    version     TEXT        NOT NULL,
    sha256      TEXT        NOT NULL,
    manifest    JSONB       NOT NULL,
    size_bytes  BIGINT      NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (feature_id, version)
);

-- A feature as set up in one guild: which version, on or off, the grants the admin
-- approved, its config, and the circuit breaker's state.
CREATE TABLE guild_features (
    guild_id            BIGINT      NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    feature_id          TEXT        NOT NULL,
    version             TEXT        NOT NULL,
    enabled             BOOLEAN     NOT NULL DEFAULT FALSE,
    grants              JSONB       NOT NULL DEFAULT '{}',
    config              JSONB,
    breaker_strikes     BIGINT      NOT NULL DEFAULT 0,
    breaker_open_until  TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (guild_id, feature_id),
    FOREIGN KEY (feature_id, version) REFERENCES feature_versions (feature_id, version)
);
CREATE INDEX guild_features_by_version ON guild_features (feature_id, version);

-- Feature storage: key-value pairs per (guild, feature).
CREATE TABLE feature_kv (
    guild_id    BIGINT  NOT NULL,
    feature_id  TEXT    NOT NULL,
    key         TEXT    COLLATE "C" NOT NULL,
    value       TEXT    NOT NULL,
    PRIMARY KEY (guild_id, feature_id, key)
);

-- Feature storage: score boards per (guild, feature); a subject is usually a user id.
CREATE TABLE feature_scores (
    guild_id    BIGINT  NOT NULL,
    feature_id  TEXT    NOT NULL,
    board       TEXT    COLLATE "C" NOT NULL,
    subject     BIGINT  NOT NULL,
    score       BIGINT  NOT NULL,
    PRIMARY KEY (guild_id, feature_id, board, subject)
);
CREATE INDEX feature_scores_top ON feature_scores (guild_id, feature_id, board, score DESC, subject);

-- What each (guild, feature) stores, kept exact in the same transaction as every write
-- to feature_kv and feature_scores, so quota checks read one row.
CREATE TABLE feature_storage_usage (
    guild_id    BIGINT  NOT NULL,
    feature_id  TEXT    NOT NULL,
    bytes       BIGINT  NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    rows        BIGINT  NOT NULL DEFAULT 0 CHECK (rows >= 0),
    PRIMARY KEY (guild_id, feature_id)
);

-- Who did what, for the dashboard. guild_id is NULL for platform-wide entries.
CREATE TABLE audit_log (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id    BIGINT,
    actor       TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    feature_id  TEXT,
    details     JSONB       NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_by_guild ON audit_log (guild_id, id);

-- Jobs features scheduled for later; they survive a restart.
CREATE TABLE scheduled_jobs (
    id           TEXT        NOT NULL PRIMARY KEY,
    guild_id     BIGINT      NOT NULL,
    feature_id   TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    payload      TEXT        NOT NULL,
    run_at       TIMESTAMPTZ NOT NULL,
    status       TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'cancelled')),
    created_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ
);
CREATE INDEX scheduled_jobs_due ON scheduled_jobs (run_at, id) WHERE status = 'pending';
CREATE INDEX scheduled_jobs_by_scope ON scheduled_jobs (guild_id, feature_id);
