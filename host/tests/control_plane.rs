//! The control plane in memory never serves stale policy: a feature disabled, a
//! grant or a configuration changed — through the marketplace, the CLI in
//! another process, or SQL by hand — is used by the next event in this process
//! and within a second by another process on the same database, on both
//! backends.

mod common;

use std::time::{Duration, Instant};

use common::harness::{GUILD_A, GUILD_B, HOSTILE_CAPS, Harness, limits, message};
use townes::grants::Approval;
use townes::marketplace::Marketplace;
use townes::runtime::Runtime;
use townes::store::Store;
use townes::wit::Event;

/// How long another process may take to hear of a change.
const HEARD_WITHIN: Duration = Duration::from_secs(1);

/// What the features of `guild` said in answer to ada saying "hi" there.
async fn echoes(runtime: &Runtime, h: &Harness, guild: u64) -> Vec<String> {
    let ada = h.discord.member_of(guild, 42).unwrap();
    let outcomes = runtime
        .dispatch_event(guild, &message(guild, "hi", ada))
        .await
        .unwrap();
    outcomes
        .iter()
        .flat_map(|o| common::sent_texts(&o.effects))
        .collect()
}

/// Waits until `runtime` echoes `expected` times in `guild`, failing after
/// [`HEARD_WITHIN`]; returns how long it took.
async fn until_echoes(
    runtime: &Runtime,
    h: &Harness,
    guild: u64,
    expected: usize,
    label: &str,
) -> Duration {
    let started = Instant::now();
    loop {
        if echoes(runtime, h, guild).await.len() == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < HEARD_WITHIN,
            "{label}: still not {expected} echoes after {HEARD_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A harness with the hostile feature (which echoes every message) enabled in
/// both guilds, and a runtime of a second process on the same database: its own
/// pool, control-plane cache and watcher. Both caches are warm.
async fn two_processes(store: Store, url: &str) -> (Harness, Runtime, String) {
    let h = Harness::new(store, limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let other = h.runtime_on(Store::connect(url).await.unwrap());
    for runtime in [&*h.runtime, &other] {
        for guild in [GUILD_A, GUILD_B] {
            assert_eq!(echoes(runtime, &h, guild).await.len(), 1);
        }
    }
    (h, other, hostile)
}

#[tokio::test]
async fn a_feature_disabled_stops_receiving_events_here_at_once_and_elsewhere_within_a_second() {
    for (label, store, guard) in common::each_backend().await {
        let (h, other, hostile) = two_processes(store, guard.url()).await;

        Marketplace::new(&h.runtime, "test")
            .disable(GUILD_A, &hostile)
            .await
            .unwrap();
        assert_eq!(
            echoes(&h.runtime, &h, GUILD_A).await,
            Vec::<String>::new(),
            "{label}: the very next event in this process"
        );
        let took = until_echoes(&other, &h, GUILD_A, 0, &label).await;
        eprintln!("{label}: the other process stopped after {took:?}");
        // The other guild's policy was not touched.
        assert_eq!(echoes(&other, &h, GUILD_B).await.len(), 1, "{label}");

        // And back on, the same way.
        Marketplace::new(&h.runtime, "test")
            .enable(
                GUILD_A,
                &hostile,
                None,
                Approval::of(HOSTILE_CAPS.iter().copied()),
            )
            .await
            .unwrap();
        assert_eq!(echoes(&h.runtime, &h, GUILD_A).await.len(), 1, "{label}");
        until_echoes(&other, &h, GUILD_A, 1, &label).await;
    }
}

#[tokio::test]
async fn a_feature_disabled_by_the_cli_in_another_process_stops_within_a_second() {
    for (label, store, guard) in common::each_backend().await {
        let (h, other, hostile) = two_processes(store, guard.url()).await;
        let data = tempfile::tempdir().unwrap();
        let done = std::process::Command::new(env!("CARGO_BIN_EXE_townes"))
            .env("DATABASE_URL", guard.url())
            .env("TOWNES_DATA_DIR", data.path())
            .args([
                "feature",
                "disable",
                &hostile,
                "--guild",
                &GUILD_A.to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            done.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        for runtime in [&*h.runtime, &other] {
            until_echoes(runtime, &h, GUILD_A, 0, &label).await;
            assert_eq!(echoes(runtime, &h, GUILD_B).await.len(), 1, "{label}");
        }
    }
}

/// Writes a guild feature's grants with plain SQL on a connection of its own.
async fn set_grants_by_hand(url: &str, guild: u64, feature: &str, approval: &Approval) {
    use sqlx::Connection;
    let grants = serde_json::to_string(approval).unwrap();
    let (guild, feature) = (guild as i64, feature.to_string());
    if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(
            "UPDATE guild_features SET grants = $1 WHERE guild_id = $2 AND feature_id = $3",
        )
        .bind(grants)
        .bind(guild)
        .bind(feature)
        .execute(&mut db)
        .await
        .unwrap();
    } else {
        let mut db = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(
            "UPDATE guild_features SET grants = $1::jsonb WHERE guild_id = $2 AND feature_id = $3",
        )
        .bind(grants)
        .bind(guild)
        .bind(feature)
        .execute(&mut db)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_grant_changed_by_hand_in_sql_is_heard_by_every_process() {
    for (label, store, guard) in common::each_backend().await {
        let (h, other, hostile) = two_processes(store, guard.url()).await;
        // A channel allow-list that leaves out the channel ada talks in,
        // written the way an operator's hot fix would be: not through the
        // store. The database's triggers announce it all the same.
        let approval = Approval {
            channels: Some(vec![GUILD_A + 99]),
            ..Approval::of(HOSTILE_CAPS.iter().copied())
        };
        set_grants_by_hand(guard.url(), GUILD_A, &hostile, &approval).await;
        for runtime in [&*h.runtime, &other] {
            until_echoes(runtime, &h, GUILD_A, 0, &label).await;
            assert_eq!(echoes(runtime, &h, GUILD_B).await.len(), 1, "{label}");
        }
    }
}

#[tokio::test]
async fn a_changed_configuration_is_used_by_the_next_invocation() {
    for (label, store, guard) in common::each_backend().await {
        let h = Harness::new(store, limits()).await;
        let (version, _) = h
            .runtime
            .install(&common::component("welcome"))
            .await
            .unwrap();
        let market = Marketplace::new(&h.runtime, "test");
        let requests = market.requests("welcome", None).await.unwrap();
        market
            .enable(
                GUILD_A,
                &version.feature_id,
                None,
                Approval::everything_requested(&requests.1),
            )
            .await
            .unwrap();
        let other = h.runtime_on(Store::connect(guard.url()).await.unwrap());
        let welcome =
            |text: &str| serde_json::json!({"channel": (GUILD_A + 1).to_string(), "message": text});
        let greeting = async |runtime: &Runtime| {
            let bob = h.discord.member_of(GUILD_A, 43).unwrap();
            let outcomes = runtime
                .dispatch_event(GUILD_A, &Event::MemberJoined(bob))
                .await
                .unwrap();
            outcomes
                .iter()
                .flat_map(|o| common::sent_texts(&o.effects))
                .collect::<Vec<_>>()
        };
        for (round, text) in [
            "first {user.mention}",
            "second {user.mention}",
            "third {user.mention}",
        ]
        .into_iter()
        .enumerate()
        {
            market
                .set_config(GUILD_A, "welcome", welcome(text))
                .await
                .unwrap();
            let expected = text.replace("{user.mention}", "<@43>");
            assert_eq!(
                greeting(&h.runtime).await,
                vec![expected.clone()],
                "{label}: round {round}, this process"
            );
            let started = Instant::now();
            while greeting(&other).await != vec![expected.clone()] {
                assert!(
                    started.elapsed() < HEARD_WITHIN,
                    "{label}: round {round}, the other process"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
