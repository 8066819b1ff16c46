-- 0009 control changes (SQLite): tell every process sharing this database which
-- guild's policy changed, so their in-memory control plane drops it.
-- Keep in step with migrations/postgres/0009_control_changes.sql.

-- One row per committed change to a guild's control data. SQLite has one writer at a
-- time, so revisions are handed out in commit order: a reader that has seen revision
-- N has seen every change up to N. Each process polls for rows past the last one it
-- saw; old rows are pruned by revision, and a reader that finds a gap forgets all.
CREATE TABLE control_changes (
    revision  INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id  BIGINT  NOT NULL
);

-- Triggers rather than code in every writer: a change made by any version of the
-- host, a CLI, or a hand-written SQL fix reaches every cache.
CREATE TRIGGER guilds_changed_insert AFTER INSERT ON guilds
BEGIN INSERT INTO control_changes (guild_id) VALUES (NEW.id); END;
CREATE TRIGGER guilds_changed_update AFTER UPDATE ON guilds
BEGIN INSERT INTO control_changes (guild_id) VALUES (NEW.id); END;
CREATE TRIGGER guilds_changed_delete AFTER DELETE ON guilds
BEGIN INSERT INTO control_changes (guild_id) VALUES (OLD.id); END;

CREATE TRIGGER guild_features_changed_insert AFTER INSERT ON guild_features
BEGIN INSERT INTO control_changes (guild_id) VALUES (NEW.guild_id); END;
CREATE TRIGGER guild_features_changed_update AFTER UPDATE ON guild_features
BEGIN INSERT INTO control_changes (guild_id) VALUES (NEW.guild_id); END;
CREATE TRIGGER guild_features_changed_delete AFTER DELETE ON guild_features
BEGIN INSERT INTO control_changes (guild_id) VALUES (OLD.guild_id); END;

CREATE TRIGGER guild_settings_changed_insert AFTER INSERT ON guild_settings
BEGIN INSERT INTO control_changes (guild_id) VALUES (NEW.guild_id); END;
CREATE TRIGGER guild_settings_changed_update AFTER UPDATE ON guild_settings
BEGIN INSERT INTO control_changes (guild_id) VALUES (NEW.guild_id); END;
CREATE TRIGGER guild_settings_changed_delete AFTER DELETE ON guild_settings
BEGIN INSERT INTO control_changes (guild_id) VALUES (OLD.guild_id); END;

CREATE TRIGGER role_permissions_changed_insert AFTER INSERT ON role_permissions
BEGIN INSERT INTO control_changes (guild_id) VALUES (NEW.guild_id); END;
CREATE TRIGGER role_permissions_changed_update AFTER UPDATE ON role_permissions
BEGIN INSERT INTO control_changes (guild_id) VALUES (NEW.guild_id); END;
CREATE TRIGGER role_permissions_changed_delete AFTER DELETE ON role_permissions
BEGIN INSERT INTO control_changes (guild_id) VALUES (OLD.guild_id); END;

CREATE TRIGGER command_cooldowns_changed_insert AFTER INSERT ON command_cooldowns
BEGIN INSERT INTO control_changes (guild_id) VALUES (NEW.guild_id); END;
CREATE TRIGGER command_cooldowns_changed_update AFTER UPDATE ON command_cooldowns
BEGIN INSERT INTO control_changes (guild_id) VALUES (NEW.guild_id); END;
CREATE TRIGGER command_cooldowns_changed_delete AFTER DELETE ON command_cooldowns
BEGIN INSERT INTO control_changes (guild_id) VALUES (OLD.guild_id); END;
