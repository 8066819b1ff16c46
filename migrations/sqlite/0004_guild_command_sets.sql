-- The slash commands last registered with Discord for each guild, as a hash of the
-- exact JSON sent, so a restart or an unrelated change does not re-register them.
CREATE TABLE guild_command_sets (
    guild_id       BIGINT  NOT NULL PRIMARY KEY REFERENCES guilds (id) ON DELETE CASCADE,
    hash           TEXT    NOT NULL,
    commands       INTEGER NOT NULL,
    registered_at  TEXT    NOT NULL
);
