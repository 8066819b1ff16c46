-- 0015 offboarding (Postgres): the three guided ways a tenant (or one of its guilds)
-- leaves the hosted platform, and the service each guild gets meanwhile.
-- Keep in step with migrations/sqlite/0015_offboarding.sql.

-- What the hosted runner does for the guild: everything (active); commands
-- that only read (read_only: a lapsed subscription); nothing, its commands
-- unregistered (retired: moved to a self-hosted runner, bot removed, or
-- unpaid past read-only). A change reaches every process through the
-- guilds table's control-change trigger.
ALTER TABLE guilds ADD COLUMN service TEXT NOT NULL DEFAULT 'active'
    CHECK (service IN ('active', 'read_only', 'retired'));
-- When the service last changed (NULL: never): the command sync looks for
-- guilds changed since its last run here too.
ALTER TABLE guilds ADD COLUMN service_since TIMESTAMPTZ;

-- One row per flow. No foreign key to tenants: the row outlives the purge it
-- records.
CREATE TABLE offboardings (
    id           TEXT        NOT NULL PRIMARY KEY,
    tenant_id    TEXT        NOT NULL,
    -- The one guild it concerns; NULL: every guild of the tenant.
    guild_id     BIGINT,
    kind         TEXT        NOT NULL
        CHECK (kind IN ('self_host', 'remove_bot', 'non_payment')),
    state        TEXT        NOT NULL
        CHECK (state IN ('awaiting_activation', 'grace', 'read_only', 'retired',
                         'purged', 'canceled')),
    -- The export made for the move (self_host), if one was asked for.
    export_id    TEXT,
    -- The licence issued for the self-hosted runner (self_host).
    license_id   TEXT,
    started_by   TEXT        NOT NULL,
    -- When the hosted runner retires unless something happens first.
    retire_at    TIMESTAMPTZ,
    retired_at   TIMESTAMPTZ,
    -- When the data is deleted: retired_at plus the retention window.
    purge_at     TIMESTAMPTZ,
    purged_at    TIMESTAMPTZ,
    canceled_at  TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX offboardings_by_tenant ON offboardings (tenant_id, created_at);
CREATE INDEX offboardings_open ON offboardings (state)
    WHERE state NOT IN ('purged', 'canceled');

-- The metrics' AI tokens of the day sum one day over every guild.
CREATE INDEX usage_counters_by_day ON usage_counters (day);
