//! The control plane in memory: what the hot path must know about a guild (its
//! plan, settings, features with their grants and configuration, role rules and
//! command cooldowns) read once and then served from memory, so a steady-state
//! event costs no database read.
//!
//! One [`GuildPolicy`] per guild, in a bounded cache (moka's TinyLFU). It is never
//! served stale:
//! - **This process** drops a guild's entry as soon as one of the store's writers
//!   to its control tables returns ([`ControlCache::changed`]).
//! - **Other processes** write to the same database: migration 0009 adds triggers
//!   on every control table, so any change — by another host, the CLI, or SQL by
//!   hand — is announced: on Postgres as a `NOTIFY townes_control, '<guild id>'`
//!   delivered at commit to every listener; on SQLite as a row in
//!   `control_changes`, which each process polls every [`SQLITE_POLL`].
//! - **While it cannot hear** (the listener lost its connection, a poll failed),
//!   the cache is bypassed — every read goes to the database — and emptied once
//!   it can hear again, because changes may have been missed meanwhile.
//!
//! A load racing a change must not put the old policy back after the change
//! dropped it: loads and drops of one guild are ordered by a per-shard epoch
//! (see [`ControlCache::insert_if_unchanged`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::{
    CommandCooldown, Db, FeatureCommands, Guild, GuildFeature, GuildSettings, RolePermission,
    Store, StoreError, api_id,
};
use crate::metrics::metrics;

/// How many guilds' policies stay in memory. A guild evicted is reloaded on its
/// next event; the hottest guilds stay.
pub const CONTROL_CACHE_GUILDS: u64 = 250_000;
/// How often a process on SQLite looks for changes made by other processes.
pub const SQLITE_POLL: Duration = Duration::from_millis(250);
/// The Postgres channel the triggers of migration 0009 notify.
const CHANNEL: &str = "townes_control";
/// `control_changes` rows kept for slow pollers; older ones are pruned.
const CHANGES_KEPT: i64 = 10_000;
/// Polls between two prunes of `control_changes` (a minute).
const PRUNE_EVERY_POLLS: u64 = 240;
/// Loads and drops are ordered per shard of guilds, not globally, so a change
/// in one guild does not make another's concurrent load uncacheable.
const SHARDS: usize = 64;

/// Everything the hot path reads about a guild, as of one load.
#[derive(Clone, Debug, PartialEq)]
pub struct GuildPolicy {
    pub guild_id: u64,
    /// `None` for a guild the store has never seen.
    pub guild: Option<Guild>,
    pub settings: GuildSettings,
    /// By feature id.
    pub features: Vec<GuildFeature>,
    pub role_permissions: Vec<RolePermission>,
    pub cooldowns: Vec<CommandCooldown>,
    /// Commands features define in this guild beside their manifests'.
    pub feature_commands: Vec<FeatureCommands>,
}

impl GuildPolicy {
    pub fn feature(&self, feature_id: &str) -> Option<&GuildFeature> {
        self.features.iter().find(|gf| gf.feature_id == feature_id)
    }

    /// The guild's plan; `"free"` for a guild the store has never seen.
    pub fn plan(&self) -> &str {
        self.guild.as_ref().map_or("free", |g| g.plan.as_str())
    }

    pub fn owner_id(&self) -> Option<u64> {
        self.guild.as_ref().map(|g| g.owner_id)
    }

    /// A command's own cooldown in seconds, if it has one.
    pub fn cooldown(&self, command: &str) -> Option<u32> {
        self.cooldowns
            .iter()
            .find(|c| c.command == command)
            .map(|c| c.seconds)
    }
}

/// The cache and what keeps it honest. Shared by every clone of a [`Store`].
pub(super) struct ControlCache {
    policies: moka::sync::Cache<u64, Arc<GuildPolicy>>,
    /// Bumped under its lock by every drop of a guild in the shard.
    epochs: [Mutex<u64>; SHARDS],
    /// Whether the watcher can currently hear every change.
    hearing: AtomicBool,
    /// Dropped with the cache; the watcher stops when it is.
    _stop: tokio::sync::watch::Sender<()>,
}

impl ControlCache {
    /// A cache for `db`, and a watcher task that keeps it in step with other
    /// processes. Returns once the watcher hears changes (on Postgres, once it
    /// listens), so nothing loaded afterwards can miss one.
    pub(super) async fn start(db: &Db) -> Result<Arc<ControlCache>, StoreError> {
        let (stop, stopped) = tokio::sync::watch::channel(());
        let cache = Arc::new(ControlCache {
            policies: moka::sync::Cache::new(CONTROL_CACHE_GUILDS),
            epochs: std::array::from_fn(|_| Mutex::new(0)),
            hearing: AtomicBool::new(true),
            _stop: stop,
        });
        let weak = Arc::downgrade(&cache);
        match db {
            Db::Postgres(pool) => {
                let listener = listen(pool).await?;
                tokio::spawn(watch_postgres(pool.clone(), listener, weak, stopped));
            }
            Db::Sqlite(pool) => {
                let seen = last_change(pool).await?;
                tokio::spawn(watch_sqlite(pool.clone(), seen, weak, stopped));
            }
        }
        Ok(cache)
    }

    /// Drops the guild's policy: the next read loads it again.
    pub(super) fn changed(&self, guild_id: u64) {
        let mut epoch = self.epochs[shard(guild_id)].lock().unwrap();
        *epoch += 1;
        self.policies.invalidate(&guild_id);
    }

    /// Drops every policy (changes may have been missed).
    fn forget_all(&self) {
        let guards: Vec<_> = self.epochs.iter().map(|e| e.lock().unwrap()).collect();
        for mut epoch in guards {
            *epoch += 1;
        }
        self.policies.invalidate_all();
    }

    fn epoch(&self, guild_id: u64) -> u64 {
        *self.epochs[shard(guild_id)].lock().unwrap()
    }

    /// Caches a policy loaded after the shard's epoch was `epoch`, unless a
    /// change dropped the guild since: then the load may predate the change.
    fn insert_if_unchanged(&self, epoch: u64, policy: Arc<GuildPolicy>) {
        let current = self.epochs[shard(policy.guild_id)].lock().unwrap();
        if *current == epoch && self.hearing.load(Ordering::Acquire) {
            self.policies.insert(policy.guild_id, policy);
        }
    }

    /// Records whether the watcher hears every change. Either way of a change
    /// drops everything: changes may have been missed, and while deaf nothing
    /// may be served from memory.
    fn set_hearing(&self, hearing: bool) {
        if self.hearing.swap(hearing, Ordering::AcqRel) == hearing {
            return;
        }
        self.forget_all();
        if hearing {
            tracing::info!("the control-plane cache hears changes again");
        } else {
            tracing::warn!(
                "the control-plane cache cannot hear changes; reading policy from the database"
            );
        }
    }

    /// How many guilds' policies are in memory (approximate, for benchmarks).
    pub(super) fn len(&self) -> u64 {
        self.policies.run_pending_tasks();
        self.policies.entry_count()
    }
}

fn shard(guild_id: u64) -> usize {
    (guild_id % SHARDS as u64) as usize
}

impl Store {
    /// The guild's policy, from memory when it is there (see the module docs).
    pub async fn guild_policy(&self, guild_id: u64) -> Result<Arc<GuildPolicy>, StoreError> {
        let cache = &self.control;
        if let Some(policy) = cache.policies.get(&guild_id) {
            metrics().record_cache_lookup("control", true);
            return Ok(policy);
        }
        metrics().record_cache_lookup("control", false);
        let epoch = cache.epoch(guild_id);
        let policy = Arc::new(self.load_policy(guild_id).await?);
        cache.insert_if_unchanged(epoch, policy.clone());
        Ok(policy)
    }

    /// How many guilds' policies are in memory.
    pub fn cached_policies(&self) -> u64 {
        self.control.len()
    }

    async fn load_policy(&self, guild_id: u64) -> Result<GuildPolicy, StoreError> {
        Ok(GuildPolicy {
            guild_id,
            guild: self.guild(guild_id).await?,
            settings: self.guild_settings(guild_id).await?,
            features: self.guild_features(guild_id).await?,
            role_permissions: self.role_permissions(guild_id).await?,
            cooldowns: self.command_cooldowns(guild_id).await?,
            feature_commands: self.feature_commands(guild_id).await?,
        })
    }
}

async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, StoreError> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Drops each guild a notification names. A lost connection may have lost
/// notifications: until listening again, the cache is bypassed. Stops when the
/// cache is dropped or the pool closed (the listener holds one of its
/// connections, which `close` waits for).
async fn watch_postgres(
    pool: sqlx::PgPool,
    listener: sqlx::postgres::PgListener,
    weak: Weak<ControlCache>,
    mut stopped: tokio::sync::watch::Receiver<()>,
) {
    let mut listening = Some(listener);
    let mut retry = Duration::from_millis(100);
    loop {
        let mut listener = match listening.take() {
            Some(listener) => listener,
            None => {
                tokio::select! {
                    () = tokio::time::sleep(retry) => {}
                    _ = stopped.changed() => return,
                }
                if pool.is_closed() {
                    return;
                }
                match listen(&pool).await {
                    Ok(listener) => {
                        retry = Duration::from_millis(100);
                        let Some(cache) = weak.upgrade() else { return };
                        cache.set_hearing(true);
                        listener
                    }
                    Err(_) => {
                        retry = (retry * 2).min(Duration::from_secs(1));
                        continue;
                    }
                }
            }
        };
        loop {
            let heard = tokio::select! {
                heard = listener.try_recv() => heard,
                _ = stopped.changed() => return,
            };
            let Some(cache) = weak.upgrade() else { return };
            match heard {
                Ok(Some(notification)) => match notification.payload().parse::<i64>() {
                    Ok(guild_id) => cache.changed(api_id(guild_id)),
                    Err(_) => cache.forget_all(),
                },
                // sqlx reconnected before answering, but what was sent while the
                // connection was down is lost.
                Ok(None) => {
                    cache.forget_all();
                    cache.set_hearing(true);
                }
                Err(error) => {
                    cache.set_hearing(false);
                    if !pool.is_closed() {
                        tracing::warn!(%error, "the control-plane listener failed; reconnecting");
                    }
                    // Dropping the listener gives its connection back.
                    break;
                }
            }
        }
        if pool.is_closed() {
            return;
        }
    }
}

/// The newest revision in `control_changes` (0 when there is none).
async fn last_change(pool: &sqlx::SqlitePool) -> Result<i64, StoreError> {
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(revision) FROM control_changes")
        .fetch_one(pool)
        .await?;
    Ok(last.unwrap_or(0))
}

/// Polls `control_changes` for revisions past `seen` and drops their guilds;
/// prunes old rows now and then.
async fn watch_sqlite(
    pool: sqlx::SqlitePool,
    mut seen: i64,
    weak: Weak<ControlCache>,
    mut stopped: tokio::sync::watch::Receiver<()>,
) {
    let mut tick = tokio::time::interval(SQLITE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut polls: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let Some(cache) = weak.upgrade() else { return };
        match changes_since(&pool, seen).await {
            Ok(changes) => {
                // Revisions have no holes but the pruned ones: a hole means
                // changes this process never saw.
                if changes
                    .first()
                    .is_some_and(|(revision, _)| *revision > seen + 1)
                {
                    cache.forget_all();
                }
                for (revision, guild_id) in changes {
                    cache.changed(api_id(guild_id));
                    seen = revision;
                }
                cache.set_hearing(true);
            }
            Err(error) => {
                tracing::warn!(%error, "could not poll the control-plane changes");
                cache.set_hearing(false);
            }
        }
        polls += 1;
        if polls.is_multiple_of(PRUNE_EVERY_POLLS)
            && let Err(error) = prune_changes(&pool).await
        {
            tracing::warn!(%error, "could not prune the control-plane changes");
        }
    }
}

async fn changes_since(pool: &sqlx::SqlitePool, seen: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT revision, guild_id FROM control_changes
         WHERE revision > $1 ORDER BY revision LIMIT 10000",
    )
    .bind(seen)
    .fetch_all(pool)
    .await?)
}

async fn prune_changes(pool: &sqlx::SqlitePool) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM control_changes
         WHERE revision <= (SELECT MAX(revision) FROM control_changes) - $1",
    )
    .bind(CHANGES_KEPT)
    .execute(pool)
    .await?;
    Ok(())
}
