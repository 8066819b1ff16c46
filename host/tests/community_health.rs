//! The community health score (ADR 0025) over a simulated month, on both
//! database backends: activity fed through the activity meter and flushed as
//! `serve` flushes it, commands through the usage counters, moderation
//! through the audit log; the daily job's catch-up, idempotent recomputation,
//! the sweep and a member's erasure. Every expected number is worked out by
//! hand from the formula in `townes::community_health`.

mod common;

use chrono::{DateTime, Days, NaiveDate, Utc};
use std::sync::Arc;
use townes::community_health::{ActivityMeter, CommunityHealth, Figures, HealthDay, Parts};
use townes::discord::LocalDiscord;
use townes::grants::Approval;
use townes::marketplace::Marketplace;
use townes::runtime::{Runtime, RuntimeConfig};
use townes::store::{Guild, NewAuditEntry, Store};
use townes::wit::Capability;

const GUILD: u64 = 5000;
/// Twenty regulars: each writes four messages a day (one a reply).
const REGULARS: std::ops::RangeInclusive<u64> = 100..=119;
/// The first ten regulars also react once a day.
const REACTORS: std::ops::RangeInclusive<u64> = 100..=109;

fn day(i: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + Days::new(i)
}

fn at(day: NaiveDate, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    day.and_hms_opt(h, m, s).unwrap().and_utc()
}

fn time(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

async fn moderation(store: &Store, action: &str, when: DateTime<Utc>) {
    store
        .audit_at(
            &NewAuditEntry {
                guild_id: Some(GUILD),
                actor: "user:7".into(),
                action: action.into(),
                feature_id: Some("moderation".into()),
                details: serde_json::json!({ "target": "1234" }),
            },
            when,
        )
        .await
        .unwrap();
}

/// November 2026, day i = 0 … 29 (the 1st … the 30th):
/// - the regulars write and react as above;
/// - newcomer 1000 + i joins; an even one writes once, eight days later
///   (while still in November);
/// - member 2000 + i leaves when i is a multiple of 3;
/// - 5 commands a day;
/// - a timeout when i is a multiple of 5 (at noon), an unban (not a
///   moderation load) on the 28th, a ban at 23:59:59 on the 30th and one
///   at midnight on 1 December (the next day's).
async fn simulate_month(store: &Store) {
    let meter = ActivityMeter::default();
    for i in 0..30 {
        let d = day(i);
        meter.joined(GUILD, 1000 + i, d);
        for member in REGULARS.clone() {
            meter.message(GUILD, member, false, d);
            meter.message(GUILD, member, true, d);
        }
        // A flush in the middle of the day, as every minute in `serve`: the
        // regulars are written once, whatever they do later that day.
        assert_eq!(meter.flush(store, d).await.unwrap(), 1);
        for member in REGULARS.clone() {
            meter.message(GUILD, member, false, d);
            meter.message(GUILD, member, false, d);
        }
        for member in REACTORS.clone() {
            meter.reaction(GUILD, member, d);
        }
        if i >= 8 && (i - 8) % 2 == 0 {
            meter.message(GUILD, 1000 + i - 8, false, d);
        }
        if i % 3 == 0 {
            meter.left(GUILD, d);
        }
        meter.flush(store, d + Days::new(1)).await.unwrap();
        store.add_usage(GUILD, d, 90, 5, 0).await.unwrap();
        if i % 5 == 0 {
            moderation(store, "moderation.timeout", at(d, 12, 0, 0)).await;
        }
    }
    assert_eq!(meter.untracked(), 0);
    moderation(store, "moderation.unban", at(day(27), 9, 0, 0)).await;
    moderation(store, "moderation.ban", at(day(29), 23, 59, 59)).await;
    moderation(store, "moderation.ban", at(day(30), 0, 0, 0)).await;
}

/// The week ending on the 30th (the 24th to the 30th), by hand:
/// - messages: 20 regulars × 4 × 7 = 560, and newcomers 16, 18 and 20
///   write on the 25th, 27th and 29th: 563; replies 20 × 7 = 140;
///   reactions 10 × 7 = 70; commands 5 × 7 = 35;
/// - joins 7; leaves on the 25th and 28th (i = 24, 27): 2;
/// - active member-days 20 × 7 + 3 = 143; distinct active members 23;
/// - retention cohort: joined the 1st to the 23rd (D − 36 … D − 7): 23;
///   retained: the even ones who wrote by the 30th (i = 0, 2, …, 20): 11;
/// - moderation: the timeout of the 26th (i = 25) and the ban of the 30th: 2.
fn november_30(moderation_actions: Option<u64>, member_events: bool) -> Figures {
    Figures {
        messages: 563,
        replies: 140,
        reactions: 70,
        commands: 35,
        joins: 7,
        leaves: 2,
        active_member_days: 143,
        active_members: 23,
        retention_cohort: 23,
        retained: 11,
        moderation_actions,
        member_events,
    }
}

struct World {
    store: Store,
    runtime: Arc<Runtime>,
    _data: tempfile::TempDir,
}

impl World {
    async fn new(store: Store) -> World {
        let data = tempfile::tempdir().unwrap();
        let runtime = Arc::new(
            Runtime::new(
                RuntimeConfig::new(data.path()),
                store.clone(),
                Arc::new(LocalDiscord::new()),
            )
            .unwrap(),
        );
        for component in ["welcome", "moderation"] {
            runtime
                .install(&common::component(component))
                .await
                .unwrap();
        }
        store
            .upsert_guild(&Guild {
                created_at: time("2026-10-01T00:00:00Z"),
                ..Guild::new(GUILD, "Lantern Cafe", 1)
            })
            .await
            .unwrap();
        World {
            store,
            runtime,
            _data: data,
        }
    }

    async fn enable(&self, feature: &str, approve: &[Capability]) {
        Marketplace::new(&self.runtime, "test")
            .enable(GUILD, feature, None, Approval::of(approve.iter().copied()))
            .await
            .unwrap();
    }

    /// The job as a process started afresh runs it.
    fn job(&self) -> CommunityHealth {
        CommunityHealth::new(self.runtime.clone())
    }

    async fn scores(&self, from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, u8)> {
        self.store
            .health_between(GUILD, from, to)
            .await
            .unwrap()
            .iter()
            .map(|h| (h.day, h.score))
            .collect()
    }
}

fn without_time(health: &HealthDay) -> (NaiveDate, u8, Parts, Figures) {
    (health.day, health.score, health.parts, health.figures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_month_scores_as_worked_out_by_hand() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store.clone()).await;
        simulate_month(&store).await;
        let d = day(29);

        // No feature runs: activity and engagement only.
        // activity = 60 × min(1, 143/7/25) + 40 × min(1, 563/7/100)
        //          = 49.03 + 32.17 = 81.2 → 81;
        // engagement = 100 × min(1, (140 + 70 + 35)/563/0.5) = 87.03 → 87;
        // score = (81 × 30 + 87 × 20)/50 = 83.4 → 83.
        let bare = w.job().compute(GUILD, d).await.unwrap();
        assert_eq!(bare.figures, november_30(None, false), "{label}");
        assert_eq!(
            bare.parts,
            Parts {
                activity: Some(81),
                engagement: Some(87),
                ..Parts::default()
            },
            "{label}"
        );
        assert_eq!(bare.score, 83, "{label}");

        // welcome follows member events: growth and retention apply.
        // growth = 100 × 7/9 = 77.8 → 78; retention = 100 × 11/23 = 47.8 → 48;
        // score = (2430 + 1740 + 48 × 20 + 78 × 15)/85 = 74.1 → 74.
        w.enable("welcome", &[Capability::Messages]).await;
        let welcomed = w.job().compute(GUILD, d).await.unwrap();
        assert_eq!(welcomed.figures, november_30(None, true), "{label}");
        assert_eq!(
            (welcomed.parts.growth, welcomed.parts.retention),
            (Some(78), Some(48)),
            "{label}"
        );
        assert_eq!(welcomed.score, 74, "{label}");

        // moderation holds the moderation grant: its load applies.
        // moderation = 100 × (1 − 10 × 2/23) = 13.04 → 13;
        // score = (2430 + 1740 + 960 + 1170 + 13 × 15)/100 = 64.95 → 65.
        w.enable(
            "moderation",
            &[
                Capability::Moderation,
                Capability::Storage,
                Capability::Scheduler,
            ],
        )
        .await;
        let full = w.job().compute(GUILD, d).await.unwrap();
        let expected_parts = Parts {
            activity: Some(81),
            engagement: Some(87),
            retention: Some(48),
            growth: Some(78),
            moderation: Some(13),
            support: None,
        };
        assert_eq!(full.figures, november_30(Some(2), true), "{label}");
        assert_eq!(full.parts, expected_parts, "{label}");
        assert_eq!(full.score, 65, "{label}");

        // Recomputing replaces the day's row: one row, the same score.
        let again = w.job().compute(GUILD, d).await.unwrap();
        assert_eq!(without_time(&again), without_time(&full), "{label}");
        let stored = store.health_between(GUILD, d, d).await.unwrap();
        assert_eq!(stored, vec![again.clone()], "{label}");
        assert_eq!(
            store.latest_health(GUILD).await.unwrap(),
            Some(again),
            "{label}"
        );

        // The job on 3 November, ten minutes past midnight: the 1st and 2nd
        // are settled; the days before the first recorded activity are not
        // scored. With every feature on (worked out like the 30th):
        // the 1st: 20 active, 80 messages, 20 replies, 10 reactions,
        //   5 commands, 1 join, 1 leave, 1 timeout: activity 60 × 20/175 +
        //   40 × 80/700 = 11.43 → 11, engagement 100 × 35/80/0.5 = 87.5 → 88,
        //   growth 50, no cohort, moderation 100 × (1 − 10/20) = 50:
        //   (330 + 1760 + 750 + 750)/80 = 44.9 → 45;
        // the 2nd: activity 60 × 40/175 + 40 × 160/700 = 22.86 → 23,
        //   engagement 88, growth 100 × 2/3 → 67, moderation 50:
        //   (690 + 1760 + 1005 + 750)/80 = 52.6 → 53.
        let report = w.job().run(time("2026-11-03T00:10:00Z")).await.unwrap();
        assert_eq!(report.computed, 2, "{label}");
        assert_eq!(
            w.scores(day(0), day(1)).await,
            vec![(day(0), 45), (day(1), 53)],
            "{label}"
        );

        // Down until 1 December: the missed days of the last week are
        // computed when the process is back, the 30th (computed) is not.
        // Each worked out like the 30th (see the test's notes).
        let report = w.job().run(time("2026-12-01T00:10:00Z")).await.unwrap();
        assert_eq!(report.computed, 6, "{label}");
        assert_eq!(
            w.scores(day(23), day(29)).await,
            vec![
                (day(23), 71),
                (day(24), 71),
                (day(25), 65),
                (day(26), 66),
                (day(27), 70),
                (day(28), 72),
                (day(29), 65),
            ],
            "{label}"
        );
        // Run again: nothing left to do.
        let report = w.job().run(time("2026-12-01T00:20:00Z")).await.unwrap();
        assert_eq!(report.computed, 0, "{label}");
        // Before 00:10 the 30th has not settled: the job looks no further
        // than the 29th.
        assert_eq!(
            CommunityHealth::last_settled_day(time("2026-12-01T00:09:00Z")),
            day(28)
        );

        // A member's erasure takes the days they were active and joined:
        // newcomer 1000 (joined the 1st, retained) leaves the cohort.
        // retention = 100 × 10/22 = 45.5 → 45;
        // score = (2430 + 1740 + 900 + 1170 + 195)/100 = 64.35 → 64.
        store.forget_user(&[GUILD], 1000).await.unwrap();
        let forgotten = w.job().compute(GUILD, d).await.unwrap();
        assert_eq!(
            (
                forgotten.figures.retention_cohort,
                forgotten.figures.retained
            ),
            (22, 10),
            "{label}"
        );
        assert_eq!(forgotten.parts.retention, Some(45), "{label}");
        assert_eq!(forgotten.score, 64, "{label}");

        // The sweep: member rows go after 45 days, scores after 400.
        let swept = store
            .sweep_community_health(NaiveDate::from_ymd_opt(2027, 1, 10).unwrap())
            .await
            .unwrap();
        assert!(swept > 0, "{label}");
        // Kept from 26 November (10 January − 45 days): the regulars' five
        // days and newcomers 18 and 20 (the 27th and 29th).
        assert_eq!(
            store
                .active_members_between(GUILD, day(23), day(29))
                .await
                .unwrap(),
            (102, 22),
            "{label}"
        );
        assert_eq!(w.scores(day(0), day(29)).await.len(), 9, "{label}");
        store
            .sweep_community_health(NaiveDate::from_ymd_opt(2028, 1, 1).unwrap())
            .await
            .unwrap();
        // Kept from 27 November (1 January 2028 − 400 days).
        assert_eq!(
            w.scores(day(0), day(29)).await,
            vec![(day(26), 66), (day(27), 70), (day(28), 72), (day(29), 64)],
            "{label}"
        );
    }
}

#[tokio::test]
async fn nothing_is_scored_before_activity_is_recorded() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store.clone()).await;
        let report = w.job().run(Utc::now()).await.unwrap();
        assert_eq!(report.computed, 0, "{label}");
        assert_eq!(store.latest_health(GUILD).await.unwrap(), None, "{label}");
    }
}
