-- 0014 operators and journal (SQLite): the platform's operators, who sign in to
-- the /admin routes with their own tokens, and a journal of the events delivered
-- to features, kept a few days so support can replay a guild's last events.
-- Keep in step with migrations/postgres/0014_operators_and_journal.sql.
-- (0013 is another change's number.)

-- Operators are not tenants: no tenant, no guild, no Discord login. A token is
-- `tdo_<id>_<secret>`; only the secret's sha256 is kept. Revoked operators stay
-- (revoked_at set) so the audit log's `operator:<id>` actors keep a name.
CREATE TABLE operators (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);

-- The events dispatched to a guild's features, as the features received them.
-- Written in batches off the gateway's path; swept by age
-- (TOWNES_JOURNAL_RETENTION) and by a per-guild row cap (TOWNES_JOURNAL_CAP).
-- No foreign key: a journal entry must never block deleting a guild.
CREATE TABLE event_journal (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id     BIGINT  NOT NULL,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    received_at  TEXT    NOT NULL
);
-- A guild's last events (replay, the per-guild cap).
CREATE INDEX event_journal_by_guild ON event_journal (guild_id, id);
-- The age sweep.
CREATE INDEX event_journal_by_time ON event_journal (received_at);
