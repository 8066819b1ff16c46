-- 0012 billing and licences (Postgres): what a tenant pays for, the Stripe events
-- applied, the usage reported to Stripe's meters, and the licences the hosted
-- platform issued to self-hosters with their activations.
-- Keep in step with migrations/sqlite/0012_billing_and_licenses.sql.

-- One row per tenant that ever had billing: no row means free, never trialed.
-- `plan` is what the tenant is subscribed to or trying (tenants.plan is what
-- applies now: the free plan once the trial or subscription is over).
CREATE TABLE billing_accounts (
    tenant_id               TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    plan                    TEXT    NOT NULL,
    status                  TEXT    NOT NULL
        CHECK (status IN ('free', 'trialing', 'active', 'past_due', 'canceled')),
    -- Set once when the tenant's one trial starts; never cleared.
    trial_started_at        TIMESTAMPTZ,
    trial_ends_at           TIMESTAMPTZ,
    current_period_end      TIMESTAMPTZ,
    cancel_at_period_end    BOOLEAN NOT NULL DEFAULT FALSE,
    -- While past_due: when the plan ends unless a payment succeeds.
    grace_until             TIMESTAMPTZ,
    stripe_customer_id      TEXT    UNIQUE,
    stripe_subscription_id  TEXT    UNIQUE,
    -- `created` of the newest Stripe event applied to the subscription: an older
    -- one arriving late must not put an old state back.
    stripe_event_at         BIGINT,
    -- How many of the tenant's guilds the plan covers (NULL: all), for guilds
    -- linked to the tenant later.
    guild_cap               INTEGER,
    updated_at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX billing_accounts_by_status ON billing_accounts (status);

-- Every Stripe event id applied, written in the transaction that applied it, so
-- a retried or replayed delivery changes nothing twice.
CREATE TABLE stripe_events (
    id           TEXT    NOT NULL PRIMARY KEY,
    type         TEXT    NOT NULL,
    tenant_id    TEXT,
    received_at  TIMESTAMPTZ NOT NULL
);

-- Usage reported to a Stripe meter: one row per (tenant, meter, day), its value
-- frozen when first written so a retry after a crash sends the same number
-- under the same identifier. `reported_at` is NULL until Stripe accepted it.
CREATE TABLE meter_reports (
    tenant_id    TEXT    NOT NULL,
    meter        TEXT    NOT NULL,
    day          DATE    NOT NULL,
    value        BIGINT  NOT NULL CHECK (value >= 0),
    identifier   TEXT    NOT NULL UNIQUE,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    reported_at  TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, meter, day)
);

-- Licences this platform issued (`townes license issue`), for activation and
-- revocation. The key itself is not kept: it is the tenant's to hold.
CREATE TABLE licenses (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL,
    plan            TEXT    NOT NULL,
    issued_at       TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ,
    revoked_reason  TEXT,
    -- The licence issued in its place by `townes license regen`.
    replaced_by     TEXT
);
CREATE INDEX licenses_by_tenant ON licenses (tenant_id);

-- Self-hosted installations that activated a licence: each gets a secret that
-- signs its refresh pings; a replayed ping (`last_ping` again) gets `last_lease`
-- back and changes nothing.
CREATE TABLE license_activations (
    id            TEXT    NOT NULL PRIMARY KEY,
    license_id    TEXT    NOT NULL REFERENCES licenses (id) ON DELETE CASCADE,
    secret        TEXT    NOT NULL,
    activated_at  TIMESTAMPTZ NOT NULL,
    last_ping     TEXT,
    last_lease    TEXT,
    last_seen_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX license_activations_by_license ON license_activations (license_id);
