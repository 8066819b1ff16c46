//! Community health (migration 0017, ADR 0025): each guild's activity per UTC
//! day, the members behind it, and the daily scores computed from them (the
//! formula lives in `crate::community_health`).
//!
//! Like usage counters, rows carry a guild id without a foreign key, so
//! counting never fails to write; a guild's purge deletes them, a member's
//! erasure and a tenant's anonymization delete the member-level rows.

use chrono::{DateTime, Days, NaiveDate, Utc};
use sqlx::types::Json;

use super::{Store, StoreError, api_id, count, db_id, ts};
use crate::community_health::{
    Figures, HISTORY_DAYS, HealthDay, MEMBER_DAYS, Parts, RETAINED_AFTER,
};

/// What members did in a guild (one day, or summed over days).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActivityCounts {
    pub messages: u64,
    pub replies: u64,
    pub reactions: u64,
    pub joins: u64,
    pub leaves: u64,
}

impl ActivityCounts {
    pub fn add(&mut self, other: &ActivityCounts) {
        self.messages += other.messages;
        self.replies += other.replies;
        self.reactions += other.reactions;
        self.joins += other.joins;
        self.leaves += other.leaves;
    }
}

/// Activity to record at once ([`Store::record_activity`]): counters to add
/// per (guild, day), and (guild, day, member) rows of members active and
/// members who joined.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityBatch {
    pub counts: Vec<(u64, NaiveDate, ActivityCounts)>,
    pub active: Vec<(u64, NaiveDate, u64)>,
    pub joins: Vec<(u64, NaiveDate, u64)>,
}

impl ActivityBatch {
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.active.is_empty() && self.joins.is_empty()
    }
}

/// Member rows per multi-row `INSERT` (three or four values each).
const INSERT_CHUNK: usize = 1000;

/// A count as the database holds it.
fn amount(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n)
        .map_err(|_| StoreError::InvalidArgument(format!("activity count {n} is too large")))
}

#[derive(sqlx::FromRow)]
struct CountsRow {
    messages: i64,
    replies: i64,
    reactions: i64,
    joins: i64,
    leaves: i64,
}

#[derive(sqlx::FromRow)]
struct HealthRow {
    guild_id: i64,
    day: NaiveDate,
    score: i32,
    activity: Option<i32>,
    engagement: Option<i32>,
    retention: Option<i32>,
    growth: Option<i32>,
    moderation: Option<i32>,
    support: Option<i32>,
    figures: Json<Figures>,
    computed_at: DateTime<Utc>,
}

/// A stored part: 0 to 100 by the table's checks.
fn part(value: Option<i32>) -> Option<u8> {
    value.map(|v| v.clamp(0, 100) as u8)
}

impl From<HealthRow> for HealthDay {
    fn from(r: HealthRow) -> HealthDay {
        HealthDay {
            guild_id: api_id(r.guild_id),
            day: r.day,
            score: r.score.clamp(0, 100) as u8,
            parts: Parts {
                activity: part(r.activity),
                engagement: part(r.engagement),
                retention: part(r.retention),
                growth: part(r.growth),
                moderation: part(r.moderation),
                support: part(r.support),
            },
            figures: r.figures.0,
            computed_at: r.computed_at,
        }
    }
}

macro_rules! select_health {
    ($tail:literal) => {
        concat!(
            "SELECT guild_id, day, score, activity, engagement, retention, growth, moderation,
                    support, figures, computed_at
             FROM guild_health ",
            $tail
        )
    };
}

impl Store {
    /// Adds a batch of counted activity in one transaction: counters are
    /// added to (creating the day's row at zero first), member rows already
    /// there are left as they are.
    pub async fn record_activity(&self, batch: &ActivityBatch) -> Result<(), StoreError> {
        let mut counts = Vec::with_capacity(batch.counts.len());
        for (guild_id, day, c) in &batch.counts {
            counts.push((
                db_id(*guild_id),
                *day,
                [
                    amount(c.messages)?,
                    amount(c.replies)?,
                    amount(c.reactions)?,
                    amount(c.joins)?,
                    amount(c.leaves)?,
                ],
            ));
        }
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for (guild_id, day, [messages, replies, reactions, joins, leaves]) in &counts {
                sqlx::query(
                    "INSERT INTO guild_activity (guild_id, day, messages, replies, reactions, joins, leaves)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (guild_id, day) DO UPDATE
                     SET messages = guild_activity.messages + excluded.messages,
                         replies = guild_activity.replies + excluded.replies,
                         reactions = guild_activity.reactions + excluded.reactions,
                         joins = guild_activity.joins + excluded.joins,
                         leaves = guild_activity.leaves + excluded.leaves",
                )
                .bind(guild_id)
                .bind(day)
                .bind(messages)
                .bind(replies)
                .bind(reactions)
                .bind(joins)
                .bind(leaves)
                .execute(&mut *tx)
                .await?;
            }
            for chunk in batch.active.chunks(INSERT_CHUNK) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO guild_active_members (guild_id, day, member_id) ",
                );
                insert.push_values(chunk, |mut row, (guild_id, day, member_id)| {
                    row.push_bind(db_id(*guild_id))
                        .push_bind(*day)
                        .push_bind(db_id(*member_id));
                });
                insert.push(" ON CONFLICT DO NOTHING");
                insert.build().execute(&mut *tx).await?;
            }
            for chunk in batch.joins.chunks(INSERT_CHUNK) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO guild_joins (guild_id, day, member_id, retained_from) ",
                );
                insert.push_values(chunk, |mut row, (guild_id, day, member_id)| {
                    row.push_bind(db_id(*guild_id))
                        .push_bind(*day)
                        .push_bind(db_id(*member_id))
                        .push_bind(*day + Days::new(RETAINED_AFTER));
                });
                insert.push(" ON CONFLICT DO NOTHING");
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The first day any activity was recorded, in any guild: days before it
    /// predate the counting and are not scored.
    pub async fn first_activity_day(&self) -> Result<Option<NaiveDate>, StoreError> {
        let day: Option<NaiveDate> = on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT MIN(day) FROM guild_activity")
                .fetch_one(pool)
                .await?
        });
        Ok(day)
    }

    /// A guild's activity summed over `from` to `to` (both included).
    pub async fn activity_between(
        &self,
        guild_id: u64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<ActivityCounts, StoreError> {
        let row: CountsRow = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(messages), 0) AS BIGINT) AS messages,
                        CAST(COALESCE(SUM(replies), 0) AS BIGINT) AS replies,
                        CAST(COALESCE(SUM(reactions), 0) AS BIGINT) AS reactions,
                        CAST(COALESCE(SUM(joins), 0) AS BIGINT) AS joins,
                        CAST(COALESCE(SUM(leaves), 0) AS BIGINT) AS leaves
                 FROM guild_activity
                 WHERE guild_id = $1 AND day >= $2 AND day <= $3",
            )
            .bind(db_id(guild_id))
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await?
        });
        Ok(ActivityCounts {
            messages: count(row.messages),
            replies: count(row.replies),
            reactions: count(row.reactions),
            joins: count(row.joins),
            leaves: count(row.leaves),
        })
    }

    /// From `from` to `to` (both included): the distinct active members of
    /// each day summed (member-days), and the distinct members of the span.
    pub async fn active_members_between(
        &self,
        guild_id: u64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(u64, u64), StoreError> {
        let (days, members): (i64, i64) = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT COUNT(*), COUNT(DISTINCT member_id)
                 FROM guild_active_members
                 WHERE guild_id = $1 AND day >= $2 AND day <= $3",
            )
            .bind(db_id(guild_id))
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await?
        });
        Ok((count(days), count(members)))
    }

    /// Of the distinct members who joined from `joined_from` to `joined_to`,
    /// how many there are, and how many were active on a day from a week
    /// after they joined to `active_to`.
    pub async fn retention(
        &self,
        guild_id: u64,
        joined_from: NaiveDate,
        joined_to: NaiveDate,
        active_to: NaiveDate,
    ) -> Result<(u64, u64), StoreError> {
        let (cohort, retained): (i64, i64) = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT COUNT(DISTINCT j.member_id),
                        COUNT(DISTINCT CASE WHEN EXISTS (
                            SELECT 1 FROM guild_active_members a
                            WHERE a.guild_id = j.guild_id AND a.member_id = j.member_id
                              AND a.day >= j.retained_from AND a.day <= $4
                        ) THEN j.member_id END)
                 FROM guild_joins j
                 WHERE j.guild_id = $1 AND j.day >= $2 AND j.day <= $3",
            )
            .bind(db_id(guild_id))
            .bind(joined_from)
            .bind(joined_to)
            .bind(active_to)
            .fetch_one(pool)
            .await?
        });
        Ok((count(cohort), count(retained)))
    }

    /// Moderation actions (bans, kicks, timeouts, purges) audited in a guild
    /// from `from` (included) to `to` (excluded), by features or in Discord's
    /// own interface.
    pub async fn moderation_actions_between(
        &self,
        guild_id: u64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n: i64 = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM audit_log
                 WHERE guild_id = $1 AND created_at >= $2 AND created_at < $3
                   AND action IN ('moderation.ban', 'moderation.kick',
                                  'moderation.timeout', 'moderation.purge')",
            )
            .bind(db_id(guild_id))
            .bind(ts(from))
            .bind(ts(to))
            .fetch_one(pool)
            .await?
        });
        Ok(count(n))
    }

    /// Up to `limit` guilds the bot is in, seen before `day` ended, with no
    /// score for `day`.
    pub async fn guilds_without_health(
        &self,
        day: NaiveDate,
        limit: u32,
    ) -> Result<Vec<u64>, StoreError> {
        let day_ended = crate::community_health::start_of(day + Days::new(1));
        let ids: Vec<i64> = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT g.id FROM guilds g
                 WHERE g.left_at IS NULL AND g.created_at < $2
                   AND NOT EXISTS (
                       SELECT 1 FROM guild_health h WHERE h.guild_id = g.id AND h.day = $1
                   )
                 ORDER BY g.id
                 LIMIT $3",
            )
            .bind(day)
            .bind(day_ended)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(ids.into_iter().map(api_id).collect())
    }

    /// Stores a guild's score for a day, replacing the one there.
    pub async fn put_health(&self, health: &HealthDay) -> Result<(), StoreError> {
        let p = &health.parts;
        let part = |v: Option<u8>| v.map(i32::from);
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO guild_health (guild_id, day, score, activity, engagement, retention,
                                           growth, moderation, support, figures, computed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (guild_id, day) DO UPDATE
                 SET score = excluded.score, activity = excluded.activity,
                     engagement = excluded.engagement, retention = excluded.retention,
                     growth = excluded.growth, moderation = excluded.moderation,
                     support = excluded.support, figures = excluded.figures,
                     computed_at = excluded.computed_at",
            )
            .bind(db_id(health.guild_id))
            .bind(health.day)
            .bind(i32::from(health.score))
            .bind(part(p.activity))
            .bind(part(p.engagement))
            .bind(part(p.retention))
            .bind(part(p.growth))
            .bind(part(p.moderation))
            .bind(part(p.support))
            .bind(Json(&health.figures))
            .bind(ts(health.computed_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A guild's scores from `from` to `to` (both included), oldest first.
    pub async fn health_between(
        &self,
        guild_id: u64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<HealthDay>, StoreError> {
        let rows: Vec<HealthRow> = on_db!(&self.db, pool => {
            sqlx::query_as(select_health!(
                "WHERE guild_id = $1 AND day >= $2 AND day <= $3 ORDER BY day"
            ))
            .bind(db_id(guild_id))
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(HealthDay::from).collect())
    }

    /// A guild's newest score.
    pub async fn latest_health(&self, guild_id: u64) -> Result<Option<HealthDay>, StoreError> {
        let row: Option<HealthRow> = on_db!(&self.db, pool => {
            sqlx::query_as(select_health!(
                "WHERE guild_id = $1 ORDER BY day DESC LIMIT 1"
            ))
            .bind(db_id(guild_id))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(HealthDay::from))
    }

    /// Deletes scores and day counters older than [`HISTORY_DAYS`] before
    /// `today`, and member rows older than [`MEMBER_DAYS`]; returns how many
    /// rows went.
    pub async fn sweep_community_health(&self, today: NaiveDate) -> Result<u64, StoreError> {
        let history = today - Days::new(HISTORY_DAYS);
        let members = today - Days::new(MEMBER_DAYS);
        let mut deleted = 0;
        on_db!(&self.db, pool => {
            for (sql, before) in [
                ("DELETE FROM guild_health WHERE day < $1", history),
                ("DELETE FROM guild_activity WHERE day < $1", history),
                ("DELETE FROM guild_active_members WHERE day < $1", members),
                ("DELETE FROM guild_joins WHERE day < $1", members),
            ] {
                deleted += sqlx::query(sql).bind(before).execute(pool).await?.rows_affected();
            }
        });
        Ok(deleted)
    }
}
