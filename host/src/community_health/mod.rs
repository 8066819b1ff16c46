//! The community health score (ADR 0025): how lively, growing, welcoming and
//! calm a guild is, as one number from 0 to 100 with its parts, computed once
//! a day per guild and kept for the dashboard (`GET /api/guild/{id}/health`).
//!
//! # What is measured
//!
//! The gateway handler counts, per guild and UTC day, in memory
//! ([`ActivityMeter`]), and every process writes what it counted once a
//! minute, like usage counters: messages written by members (bots' never),
//! replies (Discord's inline replies), reactions added, members joining and
//! leaving, and which members wrote or reacted ("active members") and which
//! joined. Commands come from the usage counters (slash and prefix commands a
//! feature ran), moderation actions from the audit log (`moderation.ban`,
//! `moderation.kick`, `moderation.timeout`, `moderation.purge`: those features
//! took and those done in Discord's own interface).
//!
//! # The score of a day D
//!
//! Every figure covers the week W = the seven days ending with D, so one
//! quiet day does not sink a guild. Each part is a number from 0 to 100,
//! rounded to the nearest integer (halves away from zero):
//!
//! - **activity** = 60 × min(1, A / 25) + 40 × min(1, m / 100), where A is the
//!   average number of distinct active members a day (member-days ÷ 7) and m
//!   the average number of messages a day: 25 members taking part and 100
//!   messages a day get full marks.
//! - **engagement** = 100 × min(1, (replies + reactions + commands) ÷
//!   max(messages, 1) ÷ 0.5): half an answer (a reply, a reaction or a
//!   command) per message gets full marks.
//! - **growth** = 100 × joins ÷ (joins + leaves); 50 (steady) when nobody
//!   joined or left.
//! - **retention** = 100 × retained ÷ cohort: the cohort is the members who
//!   joined on a day from D − 36 to D − 7, the retained are those of them who
//!   wrote or reacted on a day from their join day + 7 to D. `null` when
//!   nobody joined in that time (nothing to measure).
//!
//!   Growth and retention are `null` unless a feature enabled in the guild
//!   follows member events (welcome, say): joins and leaves come through
//!   Discord's privileged Server Members intent, which the gateway asks for
//!   only for such features (`gateway::guild_intents`); without it no join
//!   is seen and "nobody joined" would be a guess.
//! - **moderation** = 100 × max(0, 1 − 10 × K ÷ max(U, 1)), where K is the
//!   moderation actions of W and U the distinct active members of W: one
//!   action for every ten active members in a week scores 0. `null` unless a
//!   feature holding the `moderation` grant is enabled in the guild: the part
//!   is scored where moderation runs on the platform. K then includes what
//!   moderators did in Discord's own interface, which the host audits too.
//! - **support** (ticket response times): always `null`. The tickets feature
//!   keeps no first-response time, and its data is its own (ADR 0008): the
//!   host does not read it. Measuring it needs the feature to report it.
//!
//! The **score** is the weighted mean of the parts that are not `null`,
//! rounded: activity 30, engagement 20, retention 20, growth 15, moderation
//! 15 (support would weigh 15). A part left out does not count as zero: the
//! others share its weight.
//!
//! # The daily job
//!
//! [`CommunityHealth::run`] computes every guild the bot is in for each of
//! the last [`CATCH_UP_DAYS`] settled days (a day settles
//! [`ACTIVITY_SETTLES`] after it ends, once every process flushed its
//! counters) it has no score for yet, so a process that was down computes
//! the days it missed when it is back. Days before the guild was first seen,
//! and days before any activity was recorded at all (the upgrade that brought
//! this in), are not scored. [`CommunityHealth::compute`] computes one guild
//! and day, replacing a score already there: recomputing is idempotent.
//! `townes serve` and `townes worker` run it every [`RUN_EVERY`]; several
//! processes may compute the same guild and day at once, which writes the
//! same row twice and nothing worse.
//!
//! History: scores and day counters are kept [`HISTORY_DAYS`] days; the
//! member-level rows (who was active, who joined) only [`MEMBER_DAYS`].

mod meter;

pub use meter::{ActivityMeter, MAX_TRACKED, MEMBERS_PER_GUILD_DAY};

use crate::runtime::Runtime;
use crate::store::Store;
use crate::wit::Capability;
use chrono::{DateTime, Days, NaiveDate, SubsecRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serenity::all::GatewayIntents;
use std::sync::Arc;
use std::time::Duration;

/// The days each score covers: the scored day and the six before it.
pub const WINDOW_DAYS: u64 = 7;
/// How long after a UTC day ends its activity is final (every process flushes
/// its counters every minute).
pub const ACTIVITY_SETTLES: TimeDelta = TimeDelta::minutes(10);
/// How many settled days the job looks back for days it has not scored.
pub const CATCH_UP_DAYS: u64 = 7;
/// How often `serve` and `worker` run the job.
pub const RUN_EVERY: Duration = Duration::from_secs(15 * 60);
/// How long scores and the daily counters are kept.
pub const HISTORY_DAYS: u64 = 400;
/// How long who-was-active and who-joined rows are kept: retention looks 36
/// days back, and the job may catch up a week late.
pub const MEMBER_DAYS: u64 = 45;
/// The days of trend the dashboard gets.
pub const TREND_DAYS: u64 = 30;

/// Retention's cohort: members who joined from this many days before the
/// scored day …
const COHORT_FROM: u64 = 36;
/// … to this many days before it; and what "still active" waits for.
pub const RETAINED_AFTER: u64 = 7;

/// Daily active members that get full marks for activity.
const ACTIVE_TARGET: f64 = 25.0;
/// Messages a day that get full marks for activity.
const MESSAGES_TARGET: f64 = 100.0;
/// Answers per message that get full marks for engagement.
const ANSWERS_TARGET: f64 = 0.5;
/// Moderation actions per active member of a week that score 0.
const MODERATION_CEILING: f64 = 0.1;

/// The parts' weights in the score: activity, engagement, retention,
/// growth, moderation, support.
pub const WEIGHTS: Weights = Weights {
    activity: 30,
    engagement: 20,
    retention: 20,
    growth: 15,
    moderation: 15,
    support: 15,
};

/// One weight per part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weights {
    pub activity: u32,
    pub engagement: u32,
    pub retention: u32,
    pub growth: u32,
    pub moderation: u32,
    pub support: u32,
}

/// A score's parts, each 0 to 100; `None`: the part does not apply to the
/// guild or cannot be measured, and is left out of the score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parts {
    pub activity: Option<u8>,
    pub engagement: Option<u8>,
    pub retention: Option<u8>,
    pub growth: Option<u8>,
    pub moderation: Option<u8>,
    pub support: Option<u8>,
}

impl Parts {
    /// The weighted mean of the parts present, rounded; `None` when none is.
    pub fn score(&self) -> Option<u8> {
        let w = WEIGHTS;
        let weighted = [
            (self.activity, w.activity),
            (self.engagement, w.engagement),
            (self.retention, w.retention),
            (self.growth, w.growth),
            (self.moderation, w.moderation),
            (self.support, w.support),
        ];
        let (sum, weights) = weighted
            .iter()
            .filter_map(|(part, weight)| part.map(|p| (u32::from(p) * weight, *weight)))
            .fold((0, 0), |(s, w), (p, weight)| (s + p, w + weight));
        (weights > 0).then(|| (f64::from(sum) / f64::from(weights)).round() as u8)
    }
}

/// What one day's score was computed from: the week ending that day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// Messages members wrote.
    pub messages: u64,
    /// Of them, replies to another message.
    pub replies: u64,
    pub reactions: u64,
    /// Commands features ran (slash and prefix).
    pub commands: u64,
    pub joins: u64,
    pub leaves: u64,
    /// Distinct active members summed over the days (their average a day is
    /// this ÷ 7).
    pub active_member_days: u64,
    /// Distinct members active at some point of the week.
    pub active_members: u64,
    /// Members who joined from 36 to 7 days before the day.
    pub retention_cohort: u64,
    /// Of them, those active a week or more after joining.
    pub retained: u64,
    /// Moderation actions; `None` where no feature moderates.
    pub moderation_actions: Option<u64>,
    /// Whether an enabled feature follows member events, so joins and leaves
    /// reach the platform: growth and retention apply only then.
    pub member_events: bool,
}

impl Figures {
    /// The parts these figures score (see the module documentation).
    pub fn parts(&self) -> Parts {
        let days = WINDOW_DAYS as f64;
        let active_a_day = self.active_member_days as f64 / days;
        let messages_a_day = self.messages as f64 / days;
        let activity = 60.0 * (active_a_day / ACTIVE_TARGET).min(1.0)
            + 40.0 * (messages_a_day / MESSAGES_TARGET).min(1.0);
        let answers = (self.replies + self.reactions + self.commands) as f64;
        let engagement = 100.0 * (answers / self.messages.max(1) as f64 / ANSWERS_TARGET).min(1.0);
        let moved = self.joins + self.leaves;
        let growth = match moved {
            0 => 50.0,
            _ => 100.0 * self.joins as f64 / moved as f64,
        };
        let growth = self.member_events.then_some(growth);
        let retention = (self.member_events && self.retention_cohort > 0)
            .then(|| 100.0 * self.retained as f64 / self.retention_cohort as f64);
        let moderation = self.moderation_actions.map(|actions| {
            let per_member = actions as f64 / self.active_members.max(1) as f64;
            100.0 * (1.0 - per_member / MODERATION_CEILING).max(0.0)
        });
        Parts {
            activity: Some(part(activity)),
            engagement: Some(part(engagement)),
            retention: retention.map(part),
            growth: growth.map(part),
            moderation: moderation.map(part),
            support: None,
        }
    }
}

/// A part's value, rounded into 0..=100.
fn part(value: f64) -> u8 {
    value.round().clamp(0.0, 100.0) as u8
}

/// One guild's score for one day, as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HealthDay {
    pub guild_id: u64,
    pub day: NaiveDate,
    pub score: u8,
    pub parts: Parts,
    pub figures: Figures,
    pub computed_at: DateTime<Utc>,
}

/// What one run of the job did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Guild-days scored.
    pub computed: u64,
    /// Rows swept past their keeping time.
    pub swept: u64,
}

/// Guilds scored per query of those due.
const BATCH: u32 = 200;

/// The daily job and the computation behind it. Cheap to clone.
#[derive(Clone)]
pub struct CommunityHealth {
    runtime: Arc<Runtime>,
}

impl CommunityHealth {
    /// Reads the runtime's store, and its installed features' manifests (who
    /// follows member events).
    pub fn new(runtime: Arc<Runtime>) -> CommunityHealth {
        CommunityHealth { runtime }
    }

    fn store(&self) -> &Store {
        self.runtime.store()
    }

    /// The last day whose activity is final at `now`.
    pub fn last_settled_day(now: DateTime<Utc>) -> NaiveDate {
        let settled = now - ACTIVITY_SETTLES;
        settled.date_naive() - Days::new(1)
    }

    /// Scores every guild the bot is in for each settled day of the last
    /// [`CATCH_UP_DAYS`] it has no score for (oldest first), then, when it
    /// scored anything, sweeps what is past its keeping time.
    pub async fn run(&self, now: DateTime<Utc>) -> anyhow::Result<RunReport> {
        let last = Self::last_settled_day(now);
        let mut report = RunReport::default();
        let Some(first_recorded) = self.store().first_activity_day().await? else {
            return Ok(report);
        };
        for back in (0..CATCH_UP_DAYS).rev() {
            let day = last - Days::new(back);
            if day < first_recorded {
                continue;
            }
            loop {
                let due = self.store().guilds_without_health(day, BATCH).await?;
                if due.is_empty() {
                    break;
                }
                for guild_id in due {
                    self.compute_at(guild_id, day, now).await?;
                    report.computed += 1;
                }
            }
        }
        if report.computed > 0 {
            report.swept = self.store().sweep_community_health(last).await?;
        }
        Ok(report)
    }

    /// Computes and stores one guild's score for `day`, replacing the one
    /// there (recomputing gives the same row unless late counts arrived).
    pub async fn compute(&self, guild_id: u64, day: NaiveDate) -> anyhow::Result<HealthDay> {
        self.compute_at(guild_id, day, Utc::now()).await
    }

    async fn compute_at(
        &self,
        guild_id: u64,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> anyhow::Result<HealthDay> {
        let figures = self.figures(guild_id, day).await?;
        let parts = figures.parts();
        let health = HealthDay {
            guild_id,
            day,
            score: parts.score().unwrap_or(0),
            parts,
            figures,
            computed_at: now.trunc_subsecs(6),
        };
        self.store().put_health(&health).await?;
        Ok(health)
    }

    /// The week's figures for `day` (see the module documentation).
    pub async fn figures(&self, guild_id: u64, day: NaiveDate) -> anyhow::Result<Figures> {
        let store = self.store();
        let from = day - Days::new(WINDOW_DAYS - 1);
        let counts = store.activity_between(guild_id, from, day).await?;
        let commands = store
            .usage(guild_id, from, day)
            .await?
            .iter()
            .map(|u| u.commands)
            .sum();
        let (active_member_days, active_members) =
            store.active_members_between(guild_id, from, day).await?;
        let (retention_cohort, retained) = store
            .retention(
                guild_id,
                day - Days::new(COHORT_FROM),
                day - Days::new(RETAINED_AFTER),
                day,
            )
            .await?;
        let moderates = store
            .guild_features(guild_id)
            .await?
            .iter()
            .any(|gf| gf.enabled && gf.grants.capabilities.contains(Capability::Moderation));
        let moderation_actions = match moderates {
            false => None,
            true => Some(
                store
                    .moderation_actions_between(
                        guild_id,
                        start_of(from),
                        start_of(day + Days::new(1)),
                    )
                    .await?,
            ),
        };
        Ok(Figures {
            messages: counts.messages,
            replies: counts.replies,
            reactions: counts.reactions,
            commands,
            joins: counts.joins,
            leaves: counts.leaves,
            active_member_days,
            active_members,
            retention_cohort,
            retained,
            moderation_actions,
            member_events: crate::gateway::guild_intents(&self.runtime, guild_id)
                .await?
                .contains(GatewayIntents::GUILD_MEMBERS),
        })
    }
}

/// Midnight (UTC) at the start of `day`.
pub fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_guild_scores_its_steadiness_only() {
        // Nobody followed member events: growth and retention do not apply.
        let parts = Figures::default().parts();
        assert_eq!(
            parts,
            Parts {
                activity: Some(0),
                engagement: Some(0),
                ..Parts::default()
            }
        );
        assert_eq!(parts.score(), Some(0));
        let parts = Figures {
            member_events: true,
            ..Figures::default()
        }
        .parts();
        assert_eq!((parts.growth, parts.retention), (Some(50), None));
        // (0 × 30 + 0 × 20 + 50 × 15) / 65 = 11.5 → 12.
        assert_eq!(parts.score(), Some(12));
    }

    #[test]
    fn parts_saturate_and_floor() {
        let figures = Figures {
            messages: 7_000,
            replies: 7_000,
            active_member_days: 700,
            active_members: 100,
            joins: 3,
            retention_cohort: 4,
            retained: 4,
            moderation_actions: Some(50),
            member_events: true,
            ..Figures::default()
        };
        let parts = figures.parts();
        assert_eq!(parts.activity, Some(100));
        assert_eq!(parts.engagement, Some(100));
        assert_eq!(parts.growth, Some(100));
        assert_eq!(parts.retention, Some(100));
        assert_eq!(parts.moderation, Some(0));
        // (100 × 85 + 0 × 15) / 100.
        assert_eq!(parts.score(), Some(85));
    }

    #[test]
    fn no_parts_no_score() {
        assert_eq!(Parts::default().score(), None);
    }

    #[test]
    fn a_day_settles_ten_minutes_after_it_ends() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            CommunityHealth::last_settled_day(at("2026-12-07T00:09:59Z")),
            day("2026-12-05")
        );
        assert_eq!(
            CommunityHealth::last_settled_day(at("2026-12-07T00:10:00Z")),
            day("2026-12-06")
        );
    }
}
