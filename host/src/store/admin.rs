//! What the platform's operators read and do across tenants (`/admin`):
//! tenants with their billing and guild counts, every guild, the incidents
//! feed, adoption and churn figures, and a tenant's anonymization.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::types::Json;

use super::catalog::GuildRow;
use super::incidents::IncidentRow;
use super::{Guild, Incident, Store, StoreError, api_id, count, db_limit};
use townes_limits::storage::kv_row_bytes;

/// A tenant as operators list it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TenantSummary {
    pub id: String,
    pub name: Option<String>,
    pub owner_discord_id: u64,
    /// What applies now (`free` once a trial or subscription is over).
    pub plan: String,
    /// `free` when the tenant never had billing.
    pub billing_status: String,
    /// Guilds the bot is in.
    pub guilds: u64,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct TenantSummaryRow {
    id: String,
    name: Option<String>,
    owner_discord_id: i64,
    plan: String,
    billing_status: String,
    guilds: i64,
    created_at: DateTime<Utc>,
}

impl From<TenantSummaryRow> for TenantSummary {
    fn from(r: TenantSummaryRow) -> TenantSummary {
        TenantSummary {
            id: r.id,
            name: r.name,
            owner_discord_id: api_id(r.owner_discord_id),
            plan: r.plan,
            billing_status: r.billing_status,
            guilds: count(r.guilds),
            created_at: r.created_at,
        }
    }
}

/// Adoption and churn over the last [`STATS_WINDOW_DAYS`] days.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PlatformStats {
    pub tenants: Figures,
    pub guilds: Figures,
    /// Guilds (the bot is in) with each feature enabled, by feature id.
    pub features_enabled: BTreeMap<String, u64>,
    /// Tenants paying (`active` or `past_due`), by plan.
    pub paying_by_plan: BTreeMap<String, u64>,
    /// Tenants trying a plan now.
    pub trialing: u64,
    /// Subscriptions that ended within the window.
    pub canceled: u64,
    /// Guilds the bot left within the window.
    pub guilds_left: u64,
    pub since: DateTime<Utc>,
}

/// Totals of one kind of thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Figures {
    pub total: u64,
    /// A guild the bot is in with at least one feature enabled; a tenant
    /// owning such a guild.
    pub active: u64,
    /// Created within the window.
    pub new: u64,
}

/// The window of [`Store::platform_stats`].
pub const STATS_WINDOW_DAYS: i64 = 30;

/// What [`Store::anonymize_tenant`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Anonymized {
    pub guilds: u64,
    /// Discord user ids replaced (owner, guild owners, score subjects, sessions).
    pub user_ids: u64,
    pub sessions_deleted: u64,
    pub api_keys_deleted: u64,
    pub storage_rows_emptied: u64,
    pub files_emptied: u64,
    pub audit_entries_scrubbed: u64,
    pub incidents_scrubbed: u64,
    pub journal_entries_deleted: u64,
}

/// Rows per multi-row `INSERT`: five values each stays far below both
/// backends' limits on bound values.
const INSERT_CHUNK: usize = 1000;

/// What anonymized actors and names read.
const ANONYMOUS_USER: &str = "user:anonymized";
const ANONYMOUS_GUILD: &str = "anonymized guild";
const ANONYMOUS_INCIDENT: &str = "anonymized";

/// `$1` is the search: empty for every tenant; else a tenant id prefix, a
/// part of its name (any case), or its owner's Discord id.
const TENANT_SUMMARIES: &str = "SELECT t.id, t.name, t.owner_discord_id, t.plan, t.created_at,
        COALESCE(b.status, 'free') AS billing_status,
        (SELECT COUNT(*) FROM guilds g WHERE g.tenant_id = t.id AND g.left_at IS NULL) AS guilds
    FROM tenants t LEFT JOIN billing_accounts b ON b.tenant_id = t.id
    WHERE $1 = ''
       OR t.id LIKE $1 || '%'
       OR LOWER(COALESCE(t.name, '')) LIKE '%' || LOWER($1) || '%'
       OR CAST(t.owner_discord_id AS TEXT) = $1
    ORDER BY t.created_at DESC, t.id DESC
    LIMIT $2 OFFSET $3";

const STATS: &str = "SELECT
        (SELECT COUNT(*) FROM tenants),
        (SELECT COUNT(*) FROM tenants t WHERE EXISTS (
            SELECT 1 FROM guilds g JOIN guild_features gf ON gf.guild_id = g.id
            WHERE g.tenant_id = t.id AND g.left_at IS NULL AND gf.enabled)),
        (SELECT COUNT(*) FROM tenants WHERE created_at >= $1),
        (SELECT COUNT(*) FROM guilds),
        (SELECT COUNT(*) FROM guilds g WHERE g.left_at IS NULL AND EXISTS (
            SELECT 1 FROM guild_features gf WHERE gf.guild_id = g.id AND gf.enabled)),
        (SELECT COUNT(*) FROM guilds WHERE created_at >= $1),
        (SELECT COUNT(*) FROM billing_accounts WHERE status = 'trialing'),
        (SELECT COUNT(*) FROM billing_accounts WHERE status = 'canceled' AND updated_at >= $1),
        (SELECT COUNT(*) FROM guilds WHERE left_at >= $1)";

type StatsRow = (i64, i64, i64, i64, i64, i64, i64, i64, i64);
/// (name, count) rows of a `GROUP BY`.
type Counts = Vec<(String, i64)>;

impl Store {
    /// Tenants matching `search` (see [`TENANT_SUMMARIES`]), newest first.
    pub async fn tenant_summaries(
        &self,
        search: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<TenantSummary>, StoreError> {
        let rows: Vec<TenantSummaryRow> = on_db!(&self.db, pool => {
            sqlx::query_as(TENANT_SUMMARIES)
                .bind(search)
                .bind(db_limit(limit))
                .bind(db_limit(offset))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(TenantSummary::from).collect())
    }

    /// Every guild, the ones the bot left included, newest first.
    pub async fn guilds_page(&self, limit: u32, offset: u32) -> Result<Vec<Guild>, StoreError> {
        let rows: Vec<GuildRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                select_guilds!("ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"),
            )
            .bind(db_limit(limit))
            .bind(db_limit(offset))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Guild::from).collect())
    }

    /// Every tenant's incidents, newest first.
    pub async fn incidents_feed(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows: Vec<IncidentRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, guild_id, severity, title, description, status,
                        created_by, created_at
                 FROM incidents
                 ORDER BY created_at DESC, id DESC
                 LIMIT $1 OFFSET $2",
            )
            .bind(db_limit(limit))
            .bind(db_limit(offset))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Incident::from).collect())
    }

    /// Adoption and churn as of `at`, over the [`STATS_WINDOW_DAYS`] before it.
    pub async fn platform_stats(&self, at: DateTime<Utc>) -> Result<PlatformStats, StoreError> {
        let since = super::ts(at - TimeDelta::days(STATS_WINDOW_DAYS));
        let (figures, features, paying): (StatsRow, Counts, Counts) = on_db!(&self.db, pool => {
            let figures = sqlx::query_as(STATS).bind(since).fetch_one(pool).await?;
            let features = sqlx::query_as(
                "SELECT gf.feature_id, COUNT(*)
                 FROM guild_features gf JOIN guilds g ON g.id = gf.guild_id
                 WHERE gf.enabled AND g.left_at IS NULL
                 GROUP BY gf.feature_id",
            )
            .fetch_all(pool)
            .await?;
            let paying = sqlx::query_as(
                "SELECT plan, COUNT(*) FROM billing_accounts
                 WHERE status IN ('active', 'past_due')
                 GROUP BY plan",
            )
            .fetch_all(pool)
            .await?;
            (figures, features, paying)
        });
        let (tenants, active_tenants, new_tenants, guilds, active_guilds, new_guilds) = (
            figures.0, figures.1, figures.2, figures.3, figures.4, figures.5,
        );
        let by_name = |rows: Counts| -> BTreeMap<String, u64> {
            rows.into_iter().map(|(name, n)| (name, count(n))).collect()
        };
        Ok(PlatformStats {
            tenants: Figures {
                total: count(tenants),
                active: count(active_tenants),
                new: count(new_tenants),
            },
            guilds: Figures {
                total: count(guilds),
                active: count(active_guilds),
                new: count(new_guilds),
            },
            features_enabled: by_name(features),
            paying_by_plan: by_name(paying),
            trialing: count(figures.6),
            canceled: count(figures.7),
            guilds_left: count(figures.8),
            since,
        })
    }

    /// Removes what identifies a tenant's people, in one transaction, keeping
    /// what is counted: the owner's and guild owners' Discord ids and score
    /// subjects are replaced by negative pseudonyms (Discord ids are
    /// positive, so none can be mistaken for a person), `user:` audit actors
    /// by `user:anonymized`; sessions and API keys are deleted; stored values,
    /// file contents and names, audit details, incident texts, feature
    /// configs, scheduled job payloads, outbox messages, journal entries,
    /// who was active or joined when (community health) and names are
    /// removed. Row counts, scores, usage and activity counters, health
    /// scores and billing stay.
    /// `None` when there is no such tenant.
    pub async fn anonymize_tenant(
        &self,
        tenant_id: &str,
    ) -> Result<Option<Anonymized>, StoreError> {
        let anonymized = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let owner: Option<(i64,)> =
                sqlx::query_as("SELECT owner_discord_id FROM tenants WHERE id = $1")
                    .bind(tenant_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((owner,)) = owner else {
                return Ok(None);
            };
            let mut done = Anonymized::default();
            let mut people: BTreeSet<i64> = BTreeSet::from([owner]);
            let guilds: Vec<(i64, i64)> =
                sqlx::query_as("SELECT id, owner_id FROM guilds WHERE tenant_id = $1")
                    .bind(tenant_id)
                    .fetch_all(&mut *tx)
                    .await?;
            people.extend(guilds.iter().map(|(_, owner)| *owner));
            let sessions: Vec<(i64,)> = sqlx::query_as(
                "SELECT DISTINCT discord_user_id FROM api_sessions WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .fetch_all(&mut *tx)
            .await?;
            people.extend(sessions.into_iter().map(|(id,)| id));

            // A pseudonym no tenant holds: owner ids are unique.
            let (lowest,): (Option<i64>,) =
                sqlx::query_as("SELECT MIN(owner_discord_id) FROM tenants")
                    .fetch_one(&mut *tx)
                    .await?;
            sqlx::query("UPDATE tenants SET owner_discord_id = $2, name = NULL WHERE id = $1")
                .bind(tenant_id)
                .bind(lowest.unwrap_or(0).min(0) - 1)
                .execute(&mut *tx)
                .await?;
            done.sessions_deleted = sqlx::query("DELETE FROM api_sessions WHERE tenant_id = $1")
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            done.api_keys_deleted = sqlx::query("DELETE FROM api_keys WHERE tenant_id = $1")
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            done.incidents_scrubbed = sqlx::query(
                "UPDATE incidents SET title = $2, description = '',
                     created_by = CASE WHEN created_by LIKE 'user:%' THEN $3 ELSE created_by END
                 WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .bind(ANONYMOUS_INCIDENT)
            .bind(ANONYMOUS_USER)
            .execute(&mut *tx)
            .await?
            .rows_affected();

            for &(guild, _) in &guilds {
                done.guilds += 1;
                sqlx::query("UPDATE guilds SET owner_id = 0, name = $2 WHERE id = $1")
                    .bind(guild)
                    .bind(ANONYMOUS_GUILD)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE guild_features SET config = NULL WHERE guild_id = $1")
                    .bind(guild)
                    .execute(&mut *tx)
                    .await?;

                // Subjects are mostly user ids; every one of the guild gets a
                // pseudonym, the same on every board, below any already there.
                // Rewritten wholesale: one pass, whatever the guild's size.
                let scores: Vec<(String, String, i64, i64)> = sqlx::query_as(
                    "SELECT feature_id, board, subject, score FROM feature_scores
                     WHERE guild_id = $1 ORDER BY subject",
                )
                .bind(guild)
                .fetch_all(&mut *tx)
                .await?;
                let mut pseudonyms: HashMap<i64, i64> = HashMap::new();
                let mut next = scores.first().map_or(0, |(_, _, subject, _)| *subject).min(0);
                for (_, _, subject, _) in &scores {
                    if *subject > 0 && !pseudonyms.contains_key(subject) {
                        next -= 1;
                        pseudonyms.insert(*subject, next);
                    }
                }
                done.user_ids += pseudonyms.len() as u64;
                sqlx::query("DELETE FROM feature_scores WHERE guild_id = $1")
                    .bind(guild)
                    .execute(&mut *tx)
                    .await?;
                for chunk in scores.chunks(INSERT_CHUNK) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO feature_scores (guild_id, feature_id, board, subject, score) ",
                    );
                    insert.push_values(chunk, |mut row, (feature, board, subject, score)| {
                        row.push_bind(guild)
                            .push_bind(feature.clone())
                            .push_bind(board.clone())
                            .push_bind(pseudonyms.get(subject).copied().unwrap_or(*subject))
                            .push_bind(*score);
                    });
                    insert.build().execute(&mut *tx).await?;
                }

                // Keys often name a member (`xp:<user>`): every row gets a
                // numbered key and an empty value; the scope's byte count
                // follows, its row count stays.
                let rows: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT feature_id, key, value FROM feature_kv WHERE guild_id = $1
                     ORDER BY feature_id, key",
                )
                .bind(guild)
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM feature_kv WHERE guild_id = $1")
                    .bind(guild)
                    .execute(&mut *tx)
                    .await?;
                let mut freed: HashMap<&str, i64> = HashMap::new();
                let renamed: Vec<(&str, String)> = rows
                    .iter()
                    .enumerate()
                    .map(|(n, (feature, key, value))| {
                        let key_now = format!("anonymized:{n}");
                        *freed.entry(feature.as_str()).or_default() +=
                            kv_row_bytes(key, value) as i64 - kv_row_bytes(&key_now, "") as i64;
                        (feature.as_str(), key_now)
                    })
                    .collect();
                for chunk in renamed.chunks(INSERT_CHUNK) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO feature_kv (guild_id, feature_id, key, value) ",
                    );
                    insert.push_values(chunk, |mut row, (feature, key)| {
                        row.push_bind(guild)
                            .push_bind(feature.to_string())
                            .push_bind(key.clone())
                            .push_bind("");
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                done.storage_rows_emptied += renamed.len() as u64;
                for (feature, saved) in freed {
                    sqlx::query(
                        "UPDATE feature_storage_usage SET bytes = CASE WHEN bytes > $3 THEN bytes - $3 ELSE 0 END
                         WHERE guild_id = $1 AND feature_id = $2",
                    )
                    .bind(guild)
                    .bind(feature)
                    .bind(saved)
                    .execute(&mut *tx)
                    .await?;
                }

                let files: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT feature_id, content_type, created_at FROM feature_files
                     WHERE guild_id = $1 ORDER BY feature_id, name",
                )
                .bind(guild)
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM feature_files WHERE guild_id = $1")
                    .bind(guild)
                    .execute(&mut *tx)
                    .await?;
                for (n, (feature, content_type, created_at)) in files.into_iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO feature_files (guild_id, feature_id, name, content_type, size, data, created_at)
                         VALUES ($1, $2, $3, $4, 0, $5, $6)",
                    )
                    .bind(guild)
                    .bind(&feature)
                    .bind(format!("anonymized-{n}"))
                    .bind(&content_type)
                    .bind(Vec::<u8>::new())
                    .bind(created_at)
                    .execute(&mut *tx)
                    .await?;
                    done.files_emptied += 1;
                }
                sqlx::query("UPDATE feature_files_usage SET bytes = 0 WHERE guild_id = $1")
                    .bind(guild)
                    .execute(&mut *tx)
                    .await?;

                done.audit_entries_scrubbed += sqlx::query(
                    "UPDATE audit_log SET details = $2,
                         actor = CASE WHEN actor LIKE 'user:%' THEN $3 ELSE actor END
                     WHERE guild_id = $1",
                )
                .bind(guild)
                .bind(Json(serde_json::json!({})))
                .bind(ANONYMOUS_USER)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                sqlx::query(
                    "UPDATE scheduled_jobs SET payload = '', last_error = NULL WHERE guild_id = $1",
                )
                .bind(guild)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM discord_outbox WHERE guild_id = $1")
                    .bind(guild)
                    .execute(&mut *tx)
                    .await?;
                // Who was active or joined when (community health); the
                // guild's daily counts and scores name nobody and stay.
                for sql in [
                    "DELETE FROM guild_active_members WHERE guild_id = $1",
                    "DELETE FROM guild_joins WHERE guild_id = $1",
                ] {
                    sqlx::query(sql).bind(guild).execute(&mut *tx).await?;
                }
                done.journal_entries_deleted += sqlx::query("DELETE FROM event_journal WHERE guild_id = $1")
                    .bind(guild)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }

            // What the tenant's own people did outside its guilds (API keys
            // made, logins) names them too. Members (score subjects) acted in
            // these guilds only, as far as this tenant is concerned.
            for person in &people {
                done.audit_entries_scrubbed += sqlx::query(
                    "UPDATE audit_log SET actor = $2, details = $3 WHERE actor = $1",
                )
                .bind(format!("user:{}", api_id(*person)))
                .bind(ANONYMOUS_USER)
                .bind(Json(serde_json::json!({})))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            // Who started the tenant's offboarding flows.
            sqlx::query(
                "UPDATE offboardings SET started_by = $2
                 WHERE tenant_id = $1 AND started_by LIKE 'user:%'",
            )
            .bind(tenant_id)
            .bind(ANONYMOUS_USER)
            .execute(&mut *tx)
            .await?;
            done.user_ids += people.len() as u64;
            tx.commit().await?;
            done
        });
        Ok(Some(anonymized))
    }
}
