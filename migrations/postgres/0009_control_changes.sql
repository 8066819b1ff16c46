-- 0009 control changes (Postgres): tell every process sharing this database which
-- guild's policy changed, so their in-memory control plane drops it.
-- Keep in step with migrations/sqlite/0009_control_changes.sql.

-- A notification on channel `townes_control` whose payload is the guild id. NOTIFY is
-- transactional: listeners hear it only when, and only if, the change commits, in
-- commit order. TG_ARGV[0] names the column holding the guild id.
CREATE FUNCTION control_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed RECORD;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    PERFORM pg_notify('townes_control', to_jsonb(changed) ->> TG_ARGV[0]);
    RETURN NULL;
END
$$;

-- Triggers rather than code in every writer: a change made by any version of the
-- host, a CLI, or a hand-written SQL fix reaches every cache.
CREATE TRIGGER guilds_changed AFTER INSERT OR UPDATE OR DELETE ON guilds
    FOR EACH ROW EXECUTE FUNCTION control_changed('id');
CREATE TRIGGER guild_features_changed AFTER INSERT OR UPDATE OR DELETE ON guild_features
    FOR EACH ROW EXECUTE FUNCTION control_changed('guild_id');
CREATE TRIGGER guild_settings_changed AFTER INSERT OR UPDATE OR DELETE ON guild_settings
    FOR EACH ROW EXECUTE FUNCTION control_changed('guild_id');
CREATE TRIGGER role_permissions_changed AFTER INSERT OR UPDATE OR DELETE ON role_permissions
    FOR EACH ROW EXECUTE FUNCTION control_changed('guild_id');
CREATE TRIGGER command_cooldowns_changed AFTER INSERT OR UPDATE OR DELETE ON command_cooldowns
    FOR EACH ROW EXECUTE FUNCTION control_changed('guild_id');
