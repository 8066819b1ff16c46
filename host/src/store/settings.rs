//! Per-guild configuration: command settings, which roles may use which command group,
//! and per-command cooldowns.

use chrono::{DateTime, Utc};

use super::{
    CommandCooldown, GuildSettings, RolePermission, Store, StoreError, api_id, check_name, db_id,
    is_foreign_key_violation, now,
};

/// The longest cooldown, global or per command: one day.
const MAX_COOLDOWN_SECONDS: u32 = 86_400;

#[derive(sqlx::FromRow)]
struct SettingsRow {
    guild_id: i64,
    prefix: String,
    use_slash_commands: bool,
    allow_prefix_fallback: bool,
    global_cooldown_seconds: i32,
    updated_at: DateTime<Utc>,
}

impl From<SettingsRow> for GuildSettings {
    fn from(r: SettingsRow) -> GuildSettings {
        GuildSettings {
            guild_id: api_id(r.guild_id),
            prefix: r.prefix,
            use_slash_commands: r.use_slash_commands,
            allow_prefix_fallback: r.allow_prefix_fallback,
            global_cooldown_seconds: seconds(r.global_cooldown_seconds),
            updated_at: Some(r.updated_at),
        }
    }
}

/// A stored cooldown as seconds (the schema keeps it within 0..=86,400).
fn seconds(n: i32) -> u32 {
    n.max(0) as u32
}

/// Refuses a cooldown longer than a day.
fn check_cooldown(field: &str, seconds: u32) -> Result<i32, StoreError> {
    if seconds > MAX_COOLDOWN_SECONDS {
        return Err(StoreError::InvalidArgument(format!(
            "{field} must be 0 to {MAX_COOLDOWN_SECONDS} seconds, got {seconds}"
        )));
    }
    Ok(seconds as i32)
}

/// Maps a foreign-key violation to "no such guild".
fn unknown_guild(e: sqlx::Error, guild_id: u64) -> StoreError {
    if is_foreign_key_violation(&e) {
        StoreError::InvalidArgument(format!("no guild {guild_id}"))
    } else {
        e.into()
    }
}

impl Store {
    /// A guild's settings, or [`GuildSettings::new`] (the defaults, `updated_at: None`)
    /// if none were saved.
    pub async fn guild_settings(&self, guild_id: u64) -> Result<GuildSettings, StoreError> {
        let row: Option<SettingsRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT guild_id, prefix, use_slash_commands, allow_prefix_fallback,
                        global_cooldown_seconds, updated_at
                 FROM guild_settings WHERE guild_id = $1",
            )
            .bind(db_id(guild_id))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map_or_else(|| GuildSettings::new(guild_id), GuildSettings::from))
    }

    /// Saves a guild's settings, stamping `updated_at` now (the value passed in is
    /// ignored). Refused with [`StoreError::InvalidArgument`], naming the field, if the
    /// prefix is not 1 to 5 characters without whitespace or the global cooldown is over
    /// 86,400 seconds, or if the guild is unknown.
    pub async fn set_guild_settings(&self, s: &GuildSettings) -> Result<(), StoreError> {
        let length = s.prefix.chars().count();
        if !(1..=5).contains(&length) || s.prefix.chars().any(char::is_whitespace) {
            return Err(StoreError::InvalidArgument(format!(
                "prefix must be 1 to 5 characters without whitespace, got {:?}",
                s.prefix.chars().take(20).collect::<String>()
            )));
        }
        let cooldown = check_cooldown("global_cooldown_seconds", s.global_cooldown_seconds)?;
        let result = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO guild_settings
                     (guild_id, prefix, use_slash_commands, allow_prefix_fallback,
                      global_cooldown_seconds, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (guild_id) DO UPDATE
                 SET prefix = excluded.prefix,
                     use_slash_commands = excluded.use_slash_commands,
                     allow_prefix_fallback = excluded.allow_prefix_fallback,
                     global_cooldown_seconds = excluded.global_cooldown_seconds,
                     updated_at = excluded.updated_at",
            )
            .bind(db_id(s.guild_id))
            .bind(&s.prefix)
            .bind(s.use_slash_commands)
            .bind(s.allow_prefix_fallback)
            .bind(cooldown)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        });
        self.control.changed(s.guild_id);
        result.map_err(|e| unknown_guild(e, s.guild_id))?;
        Ok(())
    }

    /// Saves the default settings for a guild that has none, in one statement:
    /// settings saved meanwhile (by the API, another process) are never
    /// overwritten, as a read-then-write would.
    pub async fn ensure_guild_settings(&self, guild_id: u64) -> Result<(), StoreError> {
        let defaults = GuildSettings::new(guild_id);
        let cooldown = check_cooldown("global_cooldown_seconds", defaults.global_cooldown_seconds)?;
        let result = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO guild_settings
                     (guild_id, prefix, use_slash_commands, allow_prefix_fallback,
                      global_cooldown_seconds, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (guild_id) DO NOTHING",
            )
            .bind(db_id(guild_id))
            .bind(&defaults.prefix)
            .bind(defaults.use_slash_commands)
            .bind(defaults.allow_prefix_fallback)
            .bind(cooldown)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        });
        self.control.changed(guild_id);
        result.map_err(|e| unknown_guild(e, guild_id))?;
        Ok(())
    }

    /// Lets a role use a command group. Granting it again is a no-op. The group must be
    /// 1 to 100 characters and the guild must exist, else
    /// [`StoreError::InvalidArgument`].
    pub async fn grant_role_permission(
        &self,
        guild_id: u64,
        role_id: u64,
        command_group: &str,
    ) -> Result<(), StoreError> {
        check_name("command_group", command_group)?;
        let result = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO role_permissions (guild_id, role_id, command_group)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (guild_id, role_id, command_group) DO NOTHING",
            )
            .bind(db_id(guild_id))
            .bind(db_id(role_id))
            .bind(command_group)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        });
        self.control.changed(guild_id);
        result.map_err(|e| unknown_guild(e, guild_id))?;
        Ok(())
    }

    /// Takes a command group away from a role. Returns whether the role had it.
    pub async fn revoke_role_permission(
        &self,
        guild_id: u64,
        role_id: u64,
        command_group: &str,
    ) -> Result<bool, StoreError> {
        let deleted = on_db!(&self.db, pool => {
            sqlx::query(
                "DELETE FROM role_permissions
                 WHERE guild_id = $1 AND role_id = $2 AND command_group = $3",
            )
            .bind(db_id(guild_id))
            .bind(db_id(role_id))
            .bind(command_group)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.control.changed(guild_id);
        Ok(deleted == 1)
    }

    /// A guild's role permissions, by (stored, signed) role id, then command group.
    pub async fn role_permissions(&self, guild_id: u64) -> Result<Vec<RolePermission>, StoreError> {
        let rows: Vec<(i64, String)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT role_id, command_group FROM role_permissions
                 WHERE guild_id = $1
                 ORDER BY role_id, command_group",
            )
            .bind(db_id(guild_id))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(role_id, command_group)| RolePermission {
                guild_id,
                role_id: api_id(role_id),
                command_group,
            })
            .collect())
    }

    /// Sets a command's own cooldown; 0 removes it (the global cooldown applies again).
    /// Refused with [`StoreError::InvalidArgument`] if `seconds` is over 86,400, the
    /// command is not 1 to 100 characters, or the guild is unknown.
    pub async fn set_command_cooldown(
        &self,
        guild_id: u64,
        command: &str,
        seconds: u32,
    ) -> Result<(), StoreError> {
        check_name("command", command)?;
        let seconds = check_cooldown("seconds", seconds)?;
        let result = on_db!(&self.db, pool => {
            if seconds == 0 {
                sqlx::query("DELETE FROM command_cooldowns WHERE guild_id = $1 AND command = $2")
                    .bind(db_id(guild_id))
                    .bind(command)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
            } else {
                sqlx::query(
                    "INSERT INTO command_cooldowns (guild_id, command, seconds)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (guild_id, command) DO UPDATE SET seconds = excluded.seconds",
                )
                .bind(db_id(guild_id))
                .bind(command)
                .bind(seconds)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
            }
        });
        self.control.changed(guild_id);
        result.map_err(|e| unknown_guild(e, guild_id))?;
        Ok(())
    }

    /// A guild's per-command cooldowns, by command (byte-wise).
    pub async fn command_cooldowns(
        &self,
        guild_id: u64,
    ) -> Result<Vec<CommandCooldown>, StoreError> {
        let rows: Vec<(String, i32)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT command, seconds FROM command_cooldowns
                 WHERE guild_id = $1
                 ORDER BY command",
            )
            .bind(db_id(guild_id))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(command, n)| CommandCooldown {
                guild_id,
                command,
                seconds: seconds(n),
            })
            .collect())
    }

    /// A command's own cooldown in seconds, or `None` if it has none.
    pub async fn command_cooldown(
        &self,
        guild_id: u64,
        command: &str,
    ) -> Result<Option<u32>, StoreError> {
        let n: Option<i32> = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT seconds FROM command_cooldowns WHERE guild_id = $1 AND command = $2",
            )
            .bind(db_id(guild_id))
            .bind(command)
            .fetch_optional(pool)
            .await?
        });
        Ok(n.map(seconds))
    }
}
