-- 0002 platform (Postgres): tenants, guild configuration, the feature catalogue, daily usage.
-- Keep in step with migrations/sqlite/0002_platform.sql: same tables, same columns.
-- Conventions as in 0001; a calendar day (UTC) is DATE.

-- A customer account: the Discord user who owns it, and the plan it pays for.
CREATE TABLE tenants (
    id                TEXT        NOT NULL PRIMARY KEY,
    owner_discord_id  BIGINT      NOT NULL UNIQUE,
    name              TEXT,
    plan              TEXT        NOT NULL DEFAULT 'free',
    created_at        TIMESTAMPTZ NOT NULL
);

-- Which tenant a guild belongs to (NULL: not claimed yet), and when the bot left it
-- (NULL: the bot is in it). Deleting a tenant unlinks its guilds.
ALTER TABLE guilds ADD COLUMN tenant_id TEXT REFERENCES tenants (id) ON DELETE SET NULL;
ALTER TABLE guilds ADD COLUMN left_at TIMESTAMPTZ;
CREATE INDEX guilds_by_tenant ON guilds (tenant_id, id);

-- Per-guild command settings. No row means every default.
CREATE TABLE guild_settings (
    guild_id                 BIGINT      NOT NULL PRIMARY KEY REFERENCES guilds (id) ON DELETE CASCADE,
    prefix                   TEXT        NOT NULL DEFAULT '!',
    use_slash_commands       BOOLEAN     NOT NULL DEFAULT TRUE,
    allow_prefix_fallback    BOOLEAN     NOT NULL DEFAULT TRUE,
    global_cooldown_seconds  INTEGER     NOT NULL DEFAULT 0
        CHECK (global_cooldown_seconds BETWEEN 0 AND 86400),
    updated_at               TIMESTAMPTZ NOT NULL
);

-- Which roles may use which command group in a guild.
CREATE TABLE role_permissions (
    guild_id       BIGINT  NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    role_id        BIGINT  NOT NULL,
    command_group  TEXT    COLLATE "C" NOT NULL,
    PRIMARY KEY (guild_id, role_id, command_group)
);

-- Per-command cooldowns configured in a guild (configuration, not per-user state).
CREATE TABLE command_cooldowns (
    guild_id  BIGINT  NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    command   TEXT    COLLATE "C" NOT NULL,
    seconds   INTEGER NOT NULL CHECK (seconds BETWEEN 1 AND 86400),
    PRIMARY KEY (guild_id, command)
);

-- The feature catalogue: one entry per feature id; its builds are in feature_versions.
CREATE TABLE features (
    id           TEXT        COLLATE "C" NOT NULL PRIMARY KEY,
    name         TEXT        NOT NULL,
    description  TEXT        NOT NULL DEFAULT '',
    builtin      BOOLEAN     NOT NULL DEFAULT FALSE,
    publisher    TEXT,
    created_at   TIMESTAMPTZ NOT NULL
);

-- Every feature already installed gets a catalogue entry, named after its newest build.
INSERT INTO features (id, name, description, builtin, publisher, created_at)
SELECT v.feature_id,
       COALESCE(v.manifest ->> 'name', v.feature_id),
       COALESCE(v.manifest ->> 'description', ''),
       FALSE,
       NULL,
       (SELECT MIN(o.created_at) FROM feature_versions o WHERE o.feature_id = v.feature_id)
FROM feature_versions v
WHERE NOT EXISTS (
    SELECT 1 FROM feature_versions n
    WHERE n.feature_id = v.feature_id
      AND (n.created_at > v.created_at
           OR (n.created_at = v.created_at AND n.version COLLATE "C" > v.version COLLATE "C"))
);

-- Whether a build is offered in the catalogue; guilds already running it keep it.
ALTER TABLE feature_versions ADD COLUMN published BOOLEAN NOT NULL DEFAULT TRUE;

-- The version a guild ran before its last upgrade, for rollback.
ALTER TABLE guild_features ADD COLUMN previous_version TEXT;

-- What each guild used per UTC day, for metering and caps.
CREATE TABLE usage_counters (
    guild_id   BIGINT  NOT NULL,
    day        DATE    NOT NULL,
    events     BIGINT  NOT NULL DEFAULT 0,
    commands   BIGINT  NOT NULL DEFAULT 0,
    ai_tokens  BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, day)
);
