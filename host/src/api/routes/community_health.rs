//! A guild's community health score for the dashboard: the newest daily
//! score, its parts, the figures behind them and the 30-day trend. Computed
//! by the daily job (`crate::community_health`, ADR 0025); this only reads.

use super::{CallerErrors, GuildErrors};
use crate::api::ApiState;
use crate::api::authz::GuildAccess;
use crate::api::error::ApiResult;
use crate::api::examples;
use crate::api::snowflake::Snowflake;
use crate::community_health::{Figures, HealthDay, Parts, TREND_DAYS};
use axum::extract::State;
use chrono::{Days, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

/// A guild's community health.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::community_health)]
pub struct CommunityHealthView {
    pub guild_id: Snowflake,
    /// The UTC day of the newest score; it covers the seven days ending
    /// with it. `null` until the guild's first day was scored.
    #[schema(value_type = Option<String>, format = Date)]
    pub day: Option<NaiveDate>,
    /// 0 to 100: the parts' weighted mean (activity 30, engagement 20,
    /// retention 20, growth 15, moderation 15), over the parts that are not
    /// `null`. `null` until first scored.
    #[schema(minimum = 0, maximum = 100)]
    pub score: Option<u8>,
    pub parts: HealthParts,
    /// What the newest score was computed from; `null` until first scored.
    pub figures: Option<HealthFigures>,
    /// The newest score minus the oldest of the trend; `null` with fewer
    /// than two scores.
    pub change: Option<i32>,
    /// The scores of the 30 days ending with `day`, oldest first; days
    /// without a score are absent.
    pub trend: Vec<TrendDay>,
}

/// The score's parts, each 0 to 100; `null`: it does not apply here (or
/// cannot be measured) and is left out of the score.
#[derive(Serialize, ToSchema)]
pub struct HealthParts {
    /// Members taking part and messages written (25 active members and 100
    /// messages a day get full marks).
    #[schema(minimum = 0, maximum = 100)]
    pub activity: Option<u8>,
    /// Replies, reactions and commands per message (half an answer per
    /// message gets full marks).
    #[schema(minimum = 0, maximum = 100)]
    pub engagement: Option<u8>,
    /// Of the members who joined 36 to 7 days ago, the share still active a
    /// week after joining; `null` when nobody joined then, or as `growth`.
    #[schema(minimum = 0, maximum = 100)]
    pub retention: Option<u8>,
    /// Joins against joins and leaves; 50 when nobody came or went. `null`
    /// unless a feature following member events (welcome, say) is enabled
    /// here: only then does the platform receive joins and leaves.
    #[schema(minimum = 0, maximum = 100)]
    pub growth: Option<u8>,
    /// Fewer moderation actions per active member is calmer; `null` unless
    /// a feature with the `moderation` grant is enabled here.
    #[schema(minimum = 0, maximum = 100)]
    pub moderation: Option<u8>,
    /// Ticket response times: always `null` for now (the tickets feature
    /// does not report them to the platform).
    #[schema(minimum = 0, maximum = 100)]
    pub support: Option<u8>,
}

impl From<Parts> for HealthParts {
    fn from(p: Parts) -> HealthParts {
        HealthParts {
            activity: p.activity,
            engagement: p.engagement,
            retention: p.retention,
            growth: p.growth,
            moderation: p.moderation,
            support: p.support,
        }
    }
}

/// The seven days a score covers, as counted.
#[derive(Serialize, ToSchema)]
pub struct HealthFigures {
    /// Messages members wrote (bots' are not counted).
    pub messages: u64,
    /// Of them, replies to another message.
    pub replies: u64,
    pub reactions: u64,
    /// Commands features ran.
    pub commands: u64,
    pub joins: u64,
    pub leaves: u64,
    /// Members who wrote or reacted, counted once a day and summed over the
    /// days (÷ 7: the average a day).
    pub active_member_days: u64,
    /// Distinct members who wrote or reacted in the seven days.
    pub active_members: u64,
    /// Members who joined 36 to 7 days before `day`.
    pub retention_cohort: u64,
    /// Of them, those active a week or more after joining.
    pub retained: u64,
    /// Bans, kicks, timeouts and purges; `null` where no feature moderates.
    pub moderation_actions: Option<u64>,
    /// Whether a feature following member events is enabled, so joins and
    /// leaves reach the platform (growth and retention apply only then).
    pub member_events: bool,
}

impl From<Figures> for HealthFigures {
    fn from(f: Figures) -> HealthFigures {
        HealthFigures {
            messages: f.messages,
            replies: f.replies,
            reactions: f.reactions,
            commands: f.commands,
            joins: f.joins,
            leaves: f.leaves,
            active_member_days: f.active_member_days,
            active_members: f.active_members,
            retention_cohort: f.retention_cohort,
            retained: f.retained,
            moderation_actions: f.moderation_actions,
            member_events: f.member_events,
        }
    }
}

/// One day's score.
#[derive(Serialize, ToSchema)]
pub struct TrendDay {
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    #[schema(minimum = 0, maximum = 100)]
    pub score: u8,
}

impl From<&HealthDay> for TrendDay {
    fn from(h: &HealthDay) -> TrendDay {
        TrendDay {
            day: h.day,
            score: h.score,
        }
    }
}

/// The guild's newest community health score with its parts, and the
/// 30-day trend. Scores are computed once a day, for the day before.
#[utoipa::path(get, path = "/api/guild/{guild_id}/health", tag = "community health",
    operation_id = "getCommunityHealth",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path)),
    responses((status = 200, description = "The newest score (all `null` until the guild's first day is scored) and its trend", body = CommunityHealthView),
        CallerErrors, GuildErrors))]
pub async fn community_health(
    State(state): State<ApiState>,
    access: GuildAccess,
) -> ApiResult<axum::Json<CommunityHealthView>> {
    let guild_id = access.guild.id;
    let store = state.store();
    let Some(latest) = store.latest_health(guild_id).await? else {
        return Ok(axum::Json(CommunityHealthView {
            guild_id: Snowflake(guild_id),
            day: None,
            score: None,
            parts: Parts::default().into(),
            figures: None,
            change: None,
            trend: Vec::new(),
        }));
    };
    let from = latest.day - Days::new(TREND_DAYS - 1);
    let trend: Vec<TrendDay> = store
        .health_between(guild_id, from, latest.day)
        .await?
        .iter()
        .map(TrendDay::from)
        .collect();
    let change = match trend.as_slice() {
        [first, .., last] => Some(i32::from(last.score) - i32::from(first.score)),
        _ => None,
    };
    Ok(axum::Json(CommunityHealthView {
        guild_id: Snowflake(guild_id),
        day: Some(latest.day),
        score: Some(latest.score),
        parts: latest.parts.into(),
        figures: Some(latest.figures.into()),
        change,
        trend,
    }))
}
