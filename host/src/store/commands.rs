//! Which slash commands were last registered with Discord for a guild (by hash),
//! so they are re-registered only when the set actually changes; and the
//! commands features define per guild beside their manifests'.

use super::{Store, StoreError, api_id, db_id, now, ts};
use crate::wit::Command;
use chrono::{DateTime, Utc};
use sqlx::types::Json;

/// The commands one feature defines in one guild (contract 0.1.3
/// `guild-commands`), as it last returned them.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureCommands {
    pub feature_id: String,
    pub commands: Vec<Command>,
}

impl Store {
    /// The hash of the command set last registered for the guild, if any.
    pub async fn command_set_hash(&self, guild_id: u64) -> Result<Option<String>, StoreError> {
        Ok(on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT hash FROM guild_command_sets WHERE guild_id = $1")
                .bind(db_id(guild_id))
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Records that `commands` commands hashing to `hash` are registered.
    pub async fn set_command_set_hash(
        &self,
        guild_id: u64,
        hash: &str,
        commands: usize,
    ) -> Result<(), StoreError> {
        let commands = i32::try_from(commands).unwrap_or(i32::MAX);
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO guild_command_sets (guild_id, hash, commands, registered_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (guild_id) DO UPDATE
                 SET hash = excluded.hash, commands = excluded.commands,
                     registered_at = excluded.registered_at",
            )
            .bind(db_id(guild_id))
            .bind(hash)
            .bind(commands)
            .bind(now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The commands each feature of the guild defines there, by feature id;
    /// a list that cannot be read is dropped (and logged).
    pub async fn feature_commands(
        &self,
        guild_id: u64,
    ) -> Result<Vec<FeatureCommands>, StoreError> {
        let rows: Vec<(String, Json<serde_json::Value>)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT feature_id, guild_commands FROM guild_features
                 WHERE guild_id = $1 AND guild_commands IS NOT NULL
                 ORDER BY feature_id",
            )
            .bind(db_id(guild_id))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(feature_id, Json(value))| {
                match serde_json::from_value(value) {
                    Ok(commands) => Some(FeatureCommands { feature_id, commands }),
                    Err(error) => {
                        tracing::error!(guild = guild_id, feature = %feature_id, %error, "dropping unreadable guild commands");
                        None
                    }
                }
            })
            .collect())
    }

    /// Replaces the commands `feature_id` defines in the guild (none: it
    /// defines none) and marks the guild changed, so its slash commands are
    /// registered again. Returns whether the feature is set up there.
    pub async fn set_feature_commands(
        &self,
        guild_id: u64,
        feature_id: &str,
        commands: &[Command],
    ) -> Result<bool, StoreError> {
        let value = (!commands.is_empty()).then_some(Json(commands));
        let updated = on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE guild_features SET guild_commands = $3, updated_at = $4
                 WHERE guild_id = $1 AND feature_id = $2",
            )
            .bind(db_id(guild_id))
            .bind(feature_id)
            .bind(value)
            .bind(now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.control.changed(guild_id);
        Ok(updated > 0)
    }

    /// Guilds whose features, settings or service changed after `since` — the
    /// ones whose command set may differ from what is registered.
    pub async fn guilds_changed_since(&self, since: DateTime<Utc>) -> Result<Vec<u64>, StoreError> {
        let ids: Vec<i64> = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT guild_id FROM guild_features WHERE updated_at > $1
                 UNION
                 SELECT guild_id FROM guild_settings WHERE updated_at > $1
                 UNION
                 SELECT id FROM guilds WHERE service_since > $1",
            )
            .bind(ts(since))
            .fetch_all(pool)
            .await?
        });
        Ok(ids.into_iter().map(api_id).collect())
    }
}
