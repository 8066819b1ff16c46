-- 0018 ai (Postgres): the `ai` capability's per-guild settings (a tenant's own
-- API key, sealed; the admins' daily caps) and the daily token ledger its caps
-- are enforced on. Keep in step with migrations/sqlite/0018_ai.sql.

-- One row per guild whose admins set something. Goes with the guild.
CREATE TABLE guild_ai (
    guild_id            BIGINT  NOT NULL PRIMARY KEY REFERENCES guilds(id) ON DELETE CASCADE,
    -- The tenant's own API key for the operator's endpoint, sealed with
    -- XChaCha20-Poly1305 under the operator's secret (TOWNES_AI_KEY_SECRET),
    -- the guild id as associated data: nonce (24 bytes) then ciphertext.
    -- NULL: calls use the operator's key.
    key_sealed          BYTEA,
    key_set_at          TIMESTAMPTZ,
    -- Who set it: `user:<discord id>` or `key:<api key id>`.
    key_set_by          TEXT,
    -- The admins' daily caps in tokens per UTC day, below the plan's; NULL: none.
    daily_tokens        BIGINT  CHECK (daily_tokens IS NULL OR daily_tokens >= 0),
    member_daily_tokens BIGINT  CHECK (member_daily_tokens IS NULL OR member_daily_tokens >= 0),
    updated_at          TIMESTAMPTZ NOT NULL
);

-- Tokens used and reserved per guild, day and member: a call reserves its
-- worst case here before it is made (a conditional upsert that refuses past
-- the cap) and settles to what it used after.
CREATE TABLE ai_token_use (
    guild_id     BIGINT  NOT NULL REFERENCES guilds(id) ON DELETE CASCADE,
    day          DATE    NOT NULL,
    -- 0: the guild as a whole; else the member the calls were for.
    member_id    BIGINT  NOT NULL,
    tokens       BIGINT  NOT NULL DEFAULT 0,
    -- The part spent through the operator's key (the plan's cap counts these).
    plan_tokens  BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, day, member_id)
);

-- Tokens spent through the guild's own key: shown in the usage, not billed.
ALTER TABLE usage_counters ADD COLUMN ai_own_key_tokens BIGINT NOT NULL DEFAULT 0;
