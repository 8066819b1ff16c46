-- 0005 api (Postgres): what the dashboard API needs: logins, API keys, OAuth states, incidents.
-- Keep in step with migrations/sqlite/0005_api.sql: same tables, same columns.
-- Conventions as in 0001. Secrets are never stored: only their hex sha256.

-- Dashboard logins. The cookie carries a random token; the key is its sha256, so a copy
-- of the database cannot be replayed as a cookie. A session is live while revoked_at is
-- NULL and expires_at is in the future.
CREATE TABLE api_sessions (
    token_hash       TEXT        NOT NULL PRIMARY KEY,
    tenant_id        TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    discord_user_id  BIGINT      NOT NULL,
    user_name        TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    revoked_at       TIMESTAMPTZ
);
-- Serves the cascade when a tenant is deleted (and listing a tenant's sessions).
CREATE INDEX api_sessions_by_tenant ON api_sessions (tenant_id);

-- API keys of a tenant. The secret is shown once when created; only its sha256 is kept.
-- Revoked keys stay (revoked_at set) so the dashboard can show them.
CREATE TABLE api_keys (
    id            TEXT        NOT NULL PRIMARY KEY,
    tenant_id     TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT        NOT NULL,
    secret_hash   TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
-- A tenant's keys, newest first (id breaks ties).
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at, id);

-- OAuth `state` values the API issued and not yet consumed (as sha256), so a callback
-- can only complete a login the API started, once. No tenant: it precedes the login.
CREATE TABLE oauth_states (
    state_hash  TEXT        NOT NULL PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
-- Serves purging expired states.
CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at);

-- Incidents a tenant reported or the platform raised. guild_id has no foreign key (like
-- audit_log): an incident about a guild outlives the guild's row.
CREATE TABLE incidents (
    id           TEXT        NOT NULL PRIMARY KEY,
    tenant_id    TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    guild_id     BIGINT,
    severity     TEXT        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    title        TEXT        NOT NULL,
    description  TEXT        NOT NULL DEFAULT '',
    status       TEXT        NOT NULL DEFAULT 'open',
    created_by   TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
-- A tenant's incidents, newest first (id breaks ties).
CREATE INDEX incidents_by_tenant ON incidents (tenant_id, created_at, id);
