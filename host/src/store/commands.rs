//! Which slash commands were last registered with Discord for a guild (by hash),
//! so they are re-registered only when the set actually changes.

use super::{Store, StoreError, api_id, db_id, now, ts};
use chrono::{DateTime, Utc};

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

    /// Guilds whose features or settings changed after `since` — the ones whose
    /// command set may differ from what is registered.
    pub async fn guilds_changed_since(&self, since: DateTime<Utc>) -> Result<Vec<u64>, StoreError> {
        let ids: Vec<i64> = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT guild_id FROM guild_features WHERE updated_at > $1
                 UNION
                 SELECT guild_id FROM guild_settings WHERE updated_at > $1",
            )
            .bind(ts(since))
            .fetch_all(pool)
            .await?
        });
        Ok(ids.into_iter().map(api_id).collect())
    }
}
