-- 0011 guild feature commands (SQLite): commands a feature defines per guild.
-- Keep in step with migrations/postgres/0011_guild_feature_commands.sql.

-- The commands a feature offers in this guild beside its manifest's (contract
-- 0.1.3 `guild-commands`: commands the guild's admins defined on the dashboard),
-- as the JSON list the feature last returned; NULL when it defines none. A column
-- of guild_features so the control-change triggers and the command sync's
-- `updated_at` already cover it.
ALTER TABLE guild_features ADD COLUMN guild_commands TEXT;
