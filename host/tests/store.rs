//! The store against both backends: every test body runs on a SQLite file and on a
//! Postgres schema (see `common::each_backend`).

mod common;

use std::collections::HashSet;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, SubsecRound, TimeZone, Utc};
use serde_json::json;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use townes::grants::{Approval, Quota};
use townes::store::{
    Backend, CommandCooldown, Feature, FeatureVersion, Guild, GuildFeature, GuildService,
    GuildSettings, NewAuditEntry, RolePermission, Scope, ScoreEntry, Store, StoreError, Usage,
    UsageCounter,
};
use townes::wit::Capability;

use common::each_backend;

const ROOMY: Quota = Quota {
    max_bytes: 1 << 20,
    max_rows: 10_000,
};

fn version(feature_id: &str, version: &str, sha256: &str) -> FeatureVersion {
    FeatureVersion {
        feature_id: feature_id.to_string(),
        version: version.to_string(),
        sha256: sha256.to_string(),
        manifest: json!({ "id": feature_id, "version": version, "commands": ["ping"] }),
        size_bytes: 12_345,
        created_at: Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap(),
        published: true,
    }
}

fn entry(subject: u64, score: i64, rank: u32) -> ScoreEntry {
    ScoreEntry {
        subject,
        score,
        rank,
    }
}

fn quota_message(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::QuotaExceeded(message)) => message,
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for (label, store, guard) in each_backend().await {
        let expected = vec![
            (1, "runtime".to_string()),
            (2, "platform".to_string()),
            (3, "discord outbox".to_string()),
            (4, "guild command sets".to_string()),
            (5, "api".to_string()),
            (6, "outbox origin".to_string()),
            (7, "sandbox limits".to_string()),
            (8, "guild feature revision".to_string()),
            (9, "control changes".to_string()),
            (10, "feature files".to_string()),
            (11, "guild feature commands".to_string()),
            (12, "billing and licenses".to_string()),
            (13, "exports".to_string()),
            (14, "operators and journal".to_string()),
            (15, "offboarding".to_string()),
            (16, "claimed work".to_string()),
            (17, "community health".to_string()),
            (18, "ai".to_string()),
        ];
        assert_eq!(
            store.applied_migrations().await.unwrap(),
            expected,
            "{label}"
        );
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        assert_eq!(
            store.applied_migrations().await.unwrap(),
            expected,
            "{label}"
        );

        // Data written before a second connect (which migrates again) is still there.
        store
            .upsert_guild(&Guild::new(7, "seven", 70))
            .await
            .unwrap();
        let again = Store::connect(guard.url()).await.unwrap();
        assert_eq!(
            again.applied_migrations().await.unwrap(),
            expected,
            "{label}"
        );
        assert_eq!(
            again.guild(7).await.unwrap().unwrap().name,
            "seven",
            "{label}"
        );
        assert_eq!(
            again.backend(),
            if label == "sqlite" {
                Backend::Sqlite
            } else {
                Backend::Postgres
            },
            "{label}"
        );
        again.close().await;
    }
}

#[tokio::test]
async fn connect_accepts_the_documented_url_forms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forms.db");
    let plain = path.display().to_string();

    let by_path = Store::connect(&plain).await.unwrap();
    by_path
        .upsert_guild(&Guild::new(1, "one", 10))
        .await
        .unwrap();
    assert_eq!(by_path.backend(), Backend::Sqlite);
    for url in [format!("sqlite://{plain}"), format!("sqlite:{plain}")] {
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.guild(1).await.unwrap().unwrap().name, "one", "{url}");
        store.close().await;
    }
    by_path.close().await;

    let memory = Store::connect("sqlite::memory:").await.unwrap();
    memory
        .upsert_guild(&Guild::new(2, "two", 20))
        .await
        .unwrap();
    assert_eq!(memory.guilds().await.unwrap().len(), 1);

    for url in [
        "mysql://root:secret@localhost/db",
        "redis://localhost",
        "file:x.db",
        "",
    ] {
        match Store::connect(url).await {
            Err(StoreError::InvalidArgument(message)) => {
                assert!(message.contains("postgres://"), "{url}: {message}");
                assert!(message.contains("sqlite://"), "{url}: {message}");
                assert!(!message.contains("secret"), "{url}: {message}");
            }
            other => panic!("{url}: expected InvalidArgument, got {other:?}"),
        }
    }

    // postgresql:// is the same as postgres://.
    for (label, _store, guard) in each_backend().await {
        if label == "postgres" {
            let url = guard.url().replacen("postgres://", "postgresql://", 1);
            let store = Store::connect(&url).await.unwrap();
            assert_eq!(store.backend(), Backend::Postgres);
            store.close().await;
        }
    }
}

#[tokio::test]
async fn guilds_upsert_and_read_back() {
    for (label, store, _guard) in each_backend().await {
        assert_eq!(store.guild(1).await.unwrap(), None, "{label}");

        // Nanoseconds are truncated to microseconds on both backends.
        let created = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        let big = Guild {
            id: u64::MAX - 1, // above i64::MAX: stored bit-for-bit
            name: "Big".into(),
            owner_id: 1 << 63,
            plan: "pro".into(),
            created_at: created,
            tenant_id: None,
            left_at: None,
            service: GuildService::Active,
        };
        let small = Guild::new(42, "Small", 4242);
        store.upsert_guild(&big).await.unwrap();
        store.upsert_guild(&small).await.unwrap();

        let read = store.guild(u64::MAX - 1).await.unwrap().unwrap();
        assert_eq!(read.id, u64::MAX - 1, "{label}");
        assert_eq!(read.owner_id, 1 << 63, "{label}");
        assert_eq!(read.plan, "pro", "{label}");
        assert_eq!(read.created_at, created.trunc_subsecs(6), "{label}");
        assert_eq!(store.guild(42).await.unwrap().unwrap(), small, "{label}");
        assert_eq!(small.plan, "free");

        // Update: name, owner and plan change; created_at stays.
        let renamed = Guild {
            name: "Smaller".into(),
            owner_id: 5,
            plan: "pro".into(),
            created_at: Utc::now() + Duration::days(1),
            ..small.clone()
        };
        store.upsert_guild(&renamed).await.unwrap();
        let read = store.guild(42).await.unwrap().unwrap();
        assert_eq!(
            read,
            Guild {
                created_at: small.created_at,
                ..renamed
            },
            "{label}"
        );

        // Ordered by the stored (signed) id.
        let ids: Vec<u64> = store.guilds().await.unwrap().iter().map(|g| g.id).collect();
        assert_eq!(ids, vec![u64::MAX - 1, 42], "{label}");
    }
}

#[tokio::test]
async fn feature_versions_are_immutable() {
    for (label, store, _guard) in each_backend().await {
        let v1 = version("xp", "1.0.0", &"a".repeat(64));
        store.insert_feature_version(&v1).await.unwrap();
        // The same build again: no-op.
        store.insert_feature_version(&v1).await.unwrap();
        // Same version, different build: refused, original kept.
        let other = version("xp", "1.0.0", &"b".repeat(64));
        match store.insert_feature_version(&other).await {
            Err(StoreError::InvalidArgument(message)) => {
                assert!(message.contains(&"a".repeat(64)), "{label}: {message}");
            }
            result => panic!("{label}: expected InvalidArgument, got {result:?}"),
        }
        assert_eq!(
            store.feature_version("xp", "1.0.0").await.unwrap(),
            Some(v1.clone()),
            "{label}"
        );
        assert_eq!(
            store.feature_version("xp", "9.9.9").await.unwrap(),
            None,
            "{label}"
        );

        let v2 = FeatureVersion {
            created_at: v1.created_at + Duration::hours(1),
            ..version("xp", "1.1.0", &"c".repeat(64))
        };
        let welcome = version("welcome", "0.1.0", &"d".repeat(64));
        store.insert_feature_version(&v2).await.unwrap();
        store.insert_feature_version(&welcome).await.unwrap();
        assert_eq!(
            store.feature_versions().await.unwrap(),
            vec![welcome, v1, v2],
            "{label}"
        );
    }
}

#[tokio::test]
async fn guild_features_and_the_breaker() {
    for (label, store, _guard) in each_backend().await {
        store.upsert_guild(&Guild::new(1, "g", 2)).await.unwrap();
        store
            .insert_feature_version(&version("xp", "1.0.0", "aa"))
            .await
            .unwrap();
        store
            .insert_feature_version(&version("xp", "1.1.0", "bb"))
            .await
            .unwrap();
        store
            .insert_feature_version(&version("fun", "0.1.0", "cc"))
            .await
            .unwrap();

        let updated_at = Utc::now().trunc_subsecs(6);
        let xp = GuildFeature {
            guild_id: 1,
            feature_id: "xp".into(),
            version: "1.0.0".into(),
            enabled: true,
            grants: Approval {
                channels: Some(vec![123]),
                ..Approval::of([Capability::Messages, Capability::Storage])
            },
            config: None,
            breaker_strikes: 0,
            breaker_open_until: None,
            updated_at,
            previous_version: None,
            revision: 0,
        };
        store.upsert_guild_feature(&xp).await.unwrap();
        assert_eq!(
            store.guild_feature(1, "xp").await.unwrap(),
            Some(xp.clone()),
            "{label}"
        );
        assert_eq!(
            store.guild_feature(1, "fun").await.unwrap(),
            None,
            "{label}"
        );
        assert_eq!(store.guild_feature(2, "xp").await.unwrap(), None, "{label}");

        // Replace: new version, disabled, with config.
        let xp2 = GuildFeature {
            version: "1.1.0".into(),
            enabled: false,
            config: Some(json!({ "per_message": 5, "nested": { "list": [1, 2, null] } })),
            updated_at: updated_at + Duration::seconds(1),
            // The row's second write.
            revision: 1,
            ..xp.clone()
        };
        store.upsert_guild_feature(&xp2).await.unwrap();
        let fun = GuildFeature {
            feature_id: "fun".into(),
            version: "0.1.0".into(),
            grants: Approval::default(),
            ..xp.clone()
        };
        store.upsert_guild_feature(&fun).await.unwrap();
        assert_eq!(
            store.guild_features(1).await.unwrap(),
            vec![fun.clone(), xp2.clone()],
            "{label}"
        );

        // The breaker opens and closes; nothing else changes.
        let open_until = Utc::now() + Duration::minutes(5);
        store
            .set_breaker(1, "xp", 3, Some(open_until))
            .await
            .unwrap();
        let read = store.guild_feature(1, "xp").await.unwrap().unwrap();
        assert_eq!(
            read,
            GuildFeature {
                breaker_strikes: 3,
                breaker_open_until: Some(open_until.trunc_subsecs(6)),
                ..xp2.clone()
            },
            "{label}"
        );
        store.set_breaker(1, "xp", 0, None).await.unwrap();
        assert_eq!(
            store.guild_feature(1, "xp").await.unwrap(),
            Some(xp2),
            "{label}"
        );

        // No such row.
        assert!(
            matches!(
                store.set_breaker(1, "nope", 1, None).await,
                Err(StoreError::InvalidArgument(_))
            ),
            "{label}"
        );
        // Unknown guild or version: refused by foreign keys.
        let orphan = GuildFeature {
            guild_id: 999,
            ..fun.clone()
        };
        assert!(
            store.upsert_guild_feature(&orphan).await.is_err(),
            "{label}"
        );
        let unknown_version = GuildFeature {
            version: "7.0.0".into(),
            ..fun
        };
        assert!(
            store.upsert_guild_feature(&unknown_version).await.is_err(),
            "{label}"
        );
    }
}

#[tokio::test]
async fn kv_get_set_delete_list() {
    for (label, store, _guard) in each_backend().await {
        let s = Scope::new(1, "notes");
        let other = Scope::new(1, "other");
        let other_guild = Scope::new(2, "notes");

        assert_eq!(store.kv_get(&s, "a").await.unwrap(), None, "{label}");
        store.kv_set(&s, "a", "1", ROOMY).await.unwrap();
        store.kv_set(&s, "a", "one", ROOMY).await.unwrap();
        store.kv_set(&other, "a", "elsewhere", ROOMY).await.unwrap();
        store
            .kv_set(&other_guild, "a", "elsewhere too", ROOMY)
            .await
            .unwrap();
        assert_eq!(
            store.kv_get(&s, "a").await.unwrap().as_deref(),
            Some("one"),
            "{label}"
        );
        assert_eq!(
            store.kv_get(&other, "a").await.unwrap().as_deref(),
            Some("elsewhere"),
            "{label}"
        );

        for key in [
            "a%",
            "a%b",
            "a_c",
            "abc",
            "b",
            "A1",
            "aXb",
            "é",
            "z\u{10FFFF}x",
        ] {
            store
                .kv_set(&s, key, &format!("v:{key}"), ROOMY)
                .await
                .unwrap();
        }
        let keys = |pairs: Vec<(String, String)>| -> Vec<String> {
            pairs
                .into_iter()
                .map(|(k, v)| {
                    assert_eq!(
                        v,
                        if k == "a" {
                            "one".to_string()
                        } else {
                            format!("v:{k}")
                        }
                    );
                    k
                })
                .collect()
        };

        // Wildcards are literal; case matters; byte order.
        assert_eq!(
            keys(store.kv_list(&s, "a%", 100).await.unwrap()),
            ["a%", "a%b"],
            "{label}"
        );
        assert_eq!(
            keys(store.kv_list(&s, "a_", 100).await.unwrap()),
            ["a_c"],
            "{label}"
        );
        assert_eq!(
            keys(store.kv_list(&s, "a", 100).await.unwrap()),
            ["a", "a%", "a%b", "aXb", "a_c", "abc"],
            "{label}"
        );
        assert_eq!(
            keys(store.kv_list(&s, "a", 2).await.unwrap()),
            ["a", "a%"],
            "{label}"
        );
        assert_eq!(
            keys(store.kv_list(&s, "a", 0).await.unwrap()),
            Vec::<String>::new(),
            "{label}"
        );
        assert_eq!(
            keys(store.kv_list(&s, "", 100).await.unwrap()),
            [
                "A1",
                "a",
                "a%",
                "a%b",
                "aXb",
                "a_c",
                "abc",
                "b",
                "z\u{10FFFF}x",
                "é"
            ],
            "{label}"
        );
        assert_eq!(
            keys(store.kv_list(&s, "z\u{10FFFF}", 100).await.unwrap()),
            ["z\u{10FFFF}x"],
            "{label}"
        );
        assert_eq!(
            keys(store.kv_list(&s, "nothing", 100).await.unwrap()),
            Vec::<String>::new(),
            "{label}"
        );

        assert!(store.kv_delete(&s, "a%").await.unwrap(), "{label}");
        assert!(!store.kv_delete(&s, "a%").await.unwrap(), "{label}");
        assert_eq!(store.kv_get(&s, "a%").await.unwrap(), None, "{label}");
        assert_eq!(
            keys(store.kv_list(&s, "a%", 100).await.unwrap()),
            ["a%b"],
            "{label}"
        );
        // The other scopes are untouched.
        assert_eq!(
            store.kv_list(&other, "", 100).await.unwrap().len(),
            1,
            "{label}"
        );

        // Keys must be non-empty and free of NUL; values may be empty.
        assert!(
            matches!(
                store.kv_set(&s, "", "x", ROOMY).await,
                Err(StoreError::InvalidArgument(_))
            ),
            "{label}"
        );
        assert!(
            matches!(
                store.kv_set(&s, "k", "a\0b", ROOMY).await,
                Err(StoreError::InvalidArgument(_))
            ),
            "{label}"
        );
        store.kv_set(&s, "empty", "", ROOMY).await.unwrap();
        assert_eq!(
            store.kv_get(&s, "empty").await.unwrap().as_deref(),
            Some(""),
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increments_are_atomic() {
    for (label, store, _guard) in each_backend().await {
        let s = Scope::new(1, "counter");
        let tasks: Vec<_> = (1..=50)
            .map(|delta| {
                let (store, s) = (store.clone(), s.clone());
                tokio::spawn(async move {
                    let kv = store.kv_increment(&s, "hits", delta, ROOMY).await.unwrap();
                    let board = store
                        .board_increment(&s, "xp", 9, delta, ROOMY)
                        .await
                        .unwrap();
                    (kv, board)
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for task in tasks {
            let (kv, board) = task.await.unwrap();
            assert!(seen.insert(kv), "{label}: two increments returned {kv}");
            assert!((1..=1275).contains(&board), "{label}");
        }
        // 1 + 2 + … + 50
        assert_eq!(
            store.kv_get(&s, "hits").await.unwrap().as_deref(),
            Some("1275"),
            "{label}"
        );
        assert!(seen.contains(&1275), "{label}");
        assert_eq!(
            store.board_rank(&s, "xp", 9).await.unwrap(),
            Some(entry(9, 1275, 1)),
            "{label}"
        );
        // "hits" + "1275" and "xp" + 8; two rows.
        assert_eq!(
            store.storage_usage(&s).await.unwrap(),
            Usage {
                bytes: 8 + 10,
                rows: 2
            },
            "{label}"
        );

        // Missing counts as 0; negative deltas work.
        assert_eq!(
            store.kv_increment(&s, "fresh", -3, ROOMY).await.unwrap(),
            -3,
            "{label}"
        );

        // A value that is not an integer is left alone.
        store.kv_set(&s, "name", "forty-two", ROOMY).await.unwrap();
        match store.kv_increment(&s, "name", 1, ROOMY).await {
            Err(StoreError::NotInteger(message)) => {
                assert!(message.contains("forty-two"), "{label}: {message}")
            }
            other => panic!("{label}: expected NotInteger, got {other:?}"),
        }
        assert_eq!(
            store.kv_get(&s, "name").await.unwrap().as_deref(),
            Some("forty-two"),
            "{label}"
        );

        // Overflow is refused and changes nothing.
        store
            .kv_set(&s, "max", &i64::MAX.to_string(), ROOMY)
            .await
            .unwrap();
        assert!(
            matches!(
                store.kv_increment(&s, "max", 1, ROOMY).await,
                Err(StoreError::InvalidArgument(_))
            ),
            "{label}"
        );
        assert_eq!(
            store.kv_get(&s, "max").await.unwrap(),
            Some(i64::MAX.to_string()),
            "{label}"
        );
    }
}

/// Compare-and-set: of many writers expecting the same value exactly one wins,
/// a stale expectation writes nothing, and the quota still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_if_lets_exactly_one_racing_writer_win() {
    for (label, store, _guard) in each_backend().await {
        let s = Scope::new(1, "xp");
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (store, s) = (store.clone(), s.clone());
                tokio::spawn(async move {
                    let won = store
                        .kv_set_if(&s, "last:42", Some(None), &format!("t{i}"), ROOMY)
                        .await
                        .unwrap();
                    (i, won)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (i, won) = task.await.unwrap();
            if won {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "{label}: {winners:?}");
        let value = format!("t{}", winners[0]);
        assert_eq!(
            store.kv_get(&s, "last:42").await.unwrap(),
            Some(value.clone()),
            "{label}"
        );

        // A stale expectation writes nothing; the current one does.
        assert!(
            !store
                .kv_set_if(&s, "last:42", Some(Some("stale")), "x", ROOMY)
                .await
                .unwrap(),
            "{label}"
        );
        assert!(
            store
                .kv_set_if(&s, "last:42", Some(Some(value.as_str())), "next", ROOMY)
                .await
                .unwrap(),
            "{label}"
        );
        assert_eq!(
            store.storage_usage(&s).await.unwrap(),
            Usage {
                bytes: ("last:42".len() + "next".len()) as u64,
                rows: 1
            },
            "{label}"
        );
        // A write that would pass its condition is still held to the quota.
        let tight = Quota {
            max_bytes: 12,
            max_rows: 10,
        };
        assert!(
            matches!(
                store
                    .kv_set_if(&s, "last:42", Some(Some("next")), "far too long", tight)
                    .await,
                Err(StoreError::QuotaExceeded(_))
            ),
            "{label}"
        );
        assert_eq!(
            store.kv_get(&s, "last:42").await.unwrap().as_deref(),
            Some("next"),
            "{label}"
        );
    }
}

#[tokio::test]
async fn quotas_bound_bytes_and_rows() {
    for (label, store, _guard) in each_backend().await {
        // Bytes: a key-value row is len(key) + len(value).
        let s = Scope::new(1, "bytes");
        let q = Quota {
            max_bytes: 20,
            max_rows: 100,
        };
        store.kv_set(&s, "a", "123456789", q).await.unwrap(); // 10
        assert_eq!(
            store.storage_usage(&s).await.unwrap(),
            Usage { bytes: 10, rows: 1 },
            "{label}"
        );

        let message = quota_message(store.kv_set(&s, "b", "1234567890", q).await); // +11 = 21
        assert_eq!(
            message, "storage bytes: 10 of 20 used, this write needs 11 more",
            "{label}"
        );
        assert_eq!(store.kv_get(&s, "b").await.unwrap(), None, "{label}");
        assert_eq!(
            store.storage_usage(&s).await.unwrap(),
            Usage { bytes: 10, rows: 1 },
            "{label}"
        );

        store.kv_set(&s, "b", "12345678", q).await.unwrap(); // +9 = 19
        // Overwrites count the difference: "a" 10 -> 5, then 5 -> 11 (total exactly 20).
        store.kv_set(&s, "a", "1234", q).await.unwrap();
        assert_eq!(
            store.storage_usage(&s).await.unwrap(),
            Usage { bytes: 14, rows: 2 },
            "{label}"
        );
        store.kv_set(&s, "a", "1234567890", q).await.unwrap();
        assert_eq!(
            store.storage_usage(&s).await.unwrap(),
            Usage { bytes: 20, rows: 2 },
            "{label}"
        );
        quota_message(store.kv_set(&s, "a", "12345678901", q).await);
        assert_eq!(
            store.kv_get(&s, "a").await.unwrap().as_deref(),
            Some("1234567890"),
            "{label}"
        );

        // A board row is len(board) + 8.
        let message = quota_message(store.board_set(&s, "b", 1, 5, q).await);
        assert!(
            message.starts_with("storage bytes: 20 of 20 used"),
            "{label}: {message}"
        );
        assert_eq!(
            store.board_top(&s, "b", 10).await.unwrap(),
            vec![],
            "{label}"
        );

        // Deleting frees space.
        assert!(store.kv_delete(&s, "b").await.unwrap(), "{label}");
        assert_eq!(
            store.storage_usage(&s).await.unwrap(),
            Usage { bytes: 11, rows: 1 },
            "{label}"
        );
        store.board_set(&s, "b", 1, 5, q).await.unwrap(); // +9 = 20
        assert_eq!(
            store.storage_usage(&s).await.unwrap(),
            Usage { bytes: 20, rows: 2 },
            "{label}"
        );

        // Increments that lengthen a number count the extra bytes.
        let n = Scope::new(1, "numbers");
        let tight = Quota {
            max_bytes: 2,
            max_rows: 100,
        };
        assert_eq!(
            store.kv_increment(&n, "n", 9, tight).await.unwrap(),
            9,
            "{label}"
        ); // "n9": 2
        quota_message(store.kv_increment(&n, "n", 1, tight).await); // "n10": 3
        assert_eq!(
            store.kv_get(&n, "n").await.unwrap().as_deref(),
            Some("9"),
            "{label}"
        );
        assert_eq!(
            store.kv_increment(&n, "n", -5, tight).await.unwrap(),
            4,
            "{label}"
        );
        assert_eq!(
            store.storage_usage(&n).await.unwrap(),
            Usage { bytes: 2, rows: 1 },
            "{label}"
        );

        // Rows: key-value and board rows share the count.
        let r = Scope::new(1, "rows");
        let q = Quota {
            max_bytes: 1 << 20,
            max_rows: 2,
        };
        store.kv_set(&r, "x", "1", q).await.unwrap();
        store.board_increment(&r, "top", 7, 1, q).await.unwrap();
        let message = quota_message(store.kv_set(&r, "y", "1", q).await);
        assert_eq!(
            message, "storage rows: 2 of 2 used, this write needs 1 more",
            "{label}"
        );
        quota_message(store.board_set(&r, "top", 8, 1, q).await);
        quota_message(store.kv_increment(&r, "z", 1, q).await);
        assert_eq!(store.kv_get(&r, "y").await.unwrap(), None, "{label}");
        assert_eq!(
            store.board_rank(&r, "top", 8).await.unwrap(),
            None,
            "{label}"
        );
        // Updating existing rows needs no new row.
        store.kv_set(&r, "x", "2", q).await.unwrap();
        assert_eq!(
            store.board_increment(&r, "top", 7, 1, q).await.unwrap(),
            2,
            "{label}"
        );
        assert!(store.board_remove(&r, "top", 7).await.unwrap(), "{label}");
        store.kv_set(&r, "y", "1", q).await.unwrap();
        assert_eq!(
            store.storage_usage(&r).await.unwrap(),
            Usage { bytes: 4, rows: 2 },
            "{label}"
        );

        // A scope that is over (quota lowered) may still shrink.
        let lowered = Quota {
            max_bytes: 1,
            max_rows: 1,
        };
        store.kv_set(&r, "y", "", lowered).await.unwrap();
        quota_message(store.kv_set(&r, "y", "12", lowered).await);
        assert!(store.kv_delete(&r, "x").await.unwrap(), "{label}");
        assert_eq!(
            store.storage_usage(&r).await.unwrap(),
            Usage { bytes: 1, rows: 1 },
            "{label}"
        );

        // Another scope never paid for any of this.
        assert_eq!(
            store.storage_usage(&Scope::new(2, "rows")).await.unwrap(),
            Usage::default(),
            "{label}"
        );
    }
}

#[tokio::test]
async fn boards_rank_best_first_with_ties_by_subject() {
    for (label, store, _guard) in each_backend().await {
        let s = Scope::new(1, "xp");
        for (subject, score) in [(10, 50), (20, 70), (30, 50), (40, 90), (5, 50), (60, -5)] {
            store
                .board_set(&s, "weekly", subject, score, ROOMY)
                .await
                .unwrap();
        }
        store
            .board_set(&s, "monthly", 10, 1_000, ROOMY)
            .await
            .unwrap();
        store
            .board_set(&Scope::new(2, "xp"), "weekly", 99, 1_000, ROOMY)
            .await
            .unwrap();

        assert_eq!(
            store.board_top(&s, "weekly", 10).await.unwrap(),
            vec![
                entry(40, 90, 1),
                entry(20, 70, 2),
                entry(5, 50, 3),
                entry(10, 50, 4),
                entry(30, 50, 5),
                entry(60, -5, 6),
            ],
            "{label}"
        );
        assert_eq!(
            store.board_top(&s, "weekly", 2).await.unwrap(),
            vec![entry(40, 90, 1), entry(20, 70, 2)],
            "{label}"
        );
        assert_eq!(
            store.board_rank(&s, "weekly", 30).await.unwrap(),
            Some(entry(30, 50, 5)),
            "{label}"
        );
        assert_eq!(
            store.board_rank(&s, "weekly", 5).await.unwrap(),
            Some(entry(5, 50, 3)),
            "{label}"
        );
        assert_eq!(
            store.board_rank(&s, "weekly", 60).await.unwrap(),
            Some(entry(60, -5, 6)),
            "{label}"
        );
        assert_eq!(
            store.board_rank(&s, "weekly", 77).await.unwrap(),
            None,
            "{label}"
        );
        assert_eq!(
            store.board_rank(&s, "monthly", 10).await.unwrap(),
            Some(entry(10, 1_000, 1)),
            "{label}"
        );

        // Moving up and leaving.
        assert_eq!(
            store
                .board_increment(&s, "weekly", 10, 25, ROOMY)
                .await
                .unwrap(),
            75,
            "{label}"
        );
        assert_eq!(
            store.board_rank(&s, "weekly", 10).await.unwrap(),
            Some(entry(10, 75, 2)),
            "{label}"
        );
        assert!(
            store.board_remove(&s, "weekly", 40).await.unwrap(),
            "{label}"
        );
        assert!(
            !store.board_remove(&s, "weekly", 40).await.unwrap(),
            "{label}"
        );
        assert_eq!(
            store.board_top(&s, "weekly", 3).await.unwrap(),
            vec![entry(10, 75, 1), entry(20, 70, 2), entry(5, 50, 3)],
            "{label}"
        );
        assert_eq!(
            store.board_rank(&s, "weekly", 30).await.unwrap(),
            Some(entry(30, 50, 4)),
            "{label}"
        );

        // Subjects above i64::MAX round-trip.
        store
            .board_set(&s, "big", u64::MAX, 1, ROOMY)
            .await
            .unwrap();
        assert_eq!(
            store.board_top(&s, "big", 1).await.unwrap(),
            vec![entry(u64::MAX, 1, 1)],
            "{label}"
        );
        assert_eq!(
            store.board_rank(&s, "big", u64::MAX).await.unwrap(),
            Some(entry(u64::MAX, 1, 1)),
            "{label}"
        );

        // 5 weekly + 1 monthly + 1 big rows.
        assert_eq!(
            store.storage_usage(&s).await.unwrap(),
            Usage {
                bytes: 5 * (6 + 8) + (7 + 8) + (3 + 8),
                rows: 7
            },
            "{label}"
        );
    }
}

#[tokio::test]
async fn audit_entries_newest_first() {
    for (label, store, _guard) in each_backend().await {
        let before = Utc::now().trunc_subsecs(6);
        for (guild_id, action) in [
            (Some(1), "enable"),
            (Some(2), "other"),
            (Some(1), "configure"),
            (None, "platform"),
            (Some(1), "disable"),
        ] {
            store
                .audit(&NewAuditEntry {
                    guild_id,
                    actor: "user:42".into(),
                    action: action.into(),
                    feature_id: (action != "platform").then(|| "xp".to_string()),
                    details: json!({ "action": action, "n": [1, 2] }),
                })
                .await
                .unwrap();
        }
        let after = Utc::now();

        let entries = store.audit_entries(1, 10).await.unwrap();
        let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["disable", "configure", "enable"], "{label}");
        assert!(entries.windows(2).all(|w| w[0].id > w[1].id), "{label}");
        for e in &entries {
            assert_eq!(e.guild_id, Some(1), "{label}");
            assert_eq!(e.actor, "user:42", "{label}");
            assert_eq!(e.feature_id.as_deref(), Some("xp"), "{label}");
            assert_eq!(
                e.details,
                json!({ "action": e.action, "n": [1, 2] }),
                "{label}"
            );
            assert!(e.created_at >= before && e.created_at <= after, "{label}");
        }
        let latest: Vec<String> = store
            .audit_entries(1, 2)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(latest, ["disable", "configure"], "{label}");
        assert_eq!(
            store.audit_entries(2, 10).await.unwrap().len(),
            1,
            "{label}"
        );
        assert_eq!(store.audit_entries(3, 10).await.unwrap(), vec![], "{label}");
    }
}

#[tokio::test]
async fn jobs_schedule_due_complete_cancel() {
    for (label, store, guard) in each_backend().await {
        let s = Scope::new(1, "reminders");
        let now = Utc::now();
        let first = store
            .schedule_job(
                &s,
                "remind",
                r#"{"text":"one"}"#,
                now - Duration::seconds(10),
                100,
            )
            .await
            .unwrap();
        let second = store
            .schedule_job(&s, "remind", "two", now - Duration::seconds(5), 100)
            .await
            .unwrap();
        let later = store
            .schedule_job(&s, "remind", "later", now + Duration::hours(1), 100)
            .await
            .unwrap();
        let ids: HashSet<&String> = [&first, &second, &later].into_iter().collect();
        assert_eq!(ids.len(), 3, "{label}");
        assert!(
            first.len() == 32 && first.chars().all(|c| c.is_ascii_hexdigit()),
            "{label}: {first}"
        );

        let due = store.due_jobs(now, 10, 10).await.unwrap();
        assert_eq!(
            due.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
            [first.as_str(), second.as_str()],
            "{label}"
        );
        assert_eq!(due[0].scope, s, "{label}");
        assert_eq!(due[0].name, "remind", "{label}");
        assert_eq!(due[0].payload, r#"{"text":"one"}"#, "{label}");
        assert_eq!(
            due[0].run_at,
            (now - Duration::seconds(10)).trunc_subsecs(6),
            "{label}"
        );
        assert_eq!(
            store.due_jobs(now, 1, 10).await.unwrap().len(),
            1,
            "{label}"
        );

        store.complete_job(&first).await.unwrap();
        store.complete_job(&first).await.unwrap(); // at least once: no-op
        let due = store.due_jobs(now, 10, 10).await.unwrap();
        let due_ids: Vec<&str> = due.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(due_ids, [second.as_str()], "{label}");

        // Only a pending job of the same scope can be cancelled.
        assert!(
            !store
                .cancel_job(&Scope::new(2, "reminders"), &second)
                .await
                .unwrap(),
            "{label}"
        );
        assert!(
            !store
                .cancel_job(&Scope::new(1, "other"), &second)
                .await
                .unwrap(),
            "{label}"
        );
        assert!(store.cancel_job(&s, &second).await.unwrap(), "{label}");
        assert!(!store.cancel_job(&s, &second).await.unwrap(), "{label}");
        assert!(
            !store.cancel_job(&s, &first).await.unwrap(),
            "{label}: completed"
        );
        assert!(
            !store.cancel_job(&s, "no-such-job").await.unwrap(),
            "{label}"
        );
        assert_eq!(
            store.due_jobs(now, 10, 10).await.unwrap(),
            vec![],
            "{label}"
        );

        // Jobs survive a restart.
        store.close().await;
        let reopened = Store::connect(guard.url()).await.unwrap();
        let due = reopened
            .due_jobs(now + Duration::hours(2), 10, 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 1, "{label}");
        assert_eq!(due[0].id, later, "{label}");
        assert_eq!(due[0].payload, "later", "{label}");
        reopened.close().await;
    }
}

#[tokio::test]
async fn jobs_are_quota_d_taken_fairly_retried_and_purged() {
    for (label, store, _guard) in each_backend().await {
        let now = Utc::now();
        let busy = Scope::new(1, "reminders");
        // A scope holds at most its quota of pending jobs.
        for i in 0..5 {
            let at = now - Duration::seconds(100 - i);
            store.schedule_job(&busy, "flood", "", at, 5).await.unwrap();
        }
        let refused = store.schedule_job(&busy, "flood", "", now, 5).await;
        assert!(
            matches!(&refused, Err(StoreError::QuotaExceeded(why)) if why.contains("5 pending")),
            "{label}: {refused:?}"
        );
        let quiet = Scope::new(2, "reminders");
        let theirs = store
            .schedule_job(&quiet, "once", "", now - Duration::seconds(1), 5)
            .await
            .unwrap();

        // Guild 2's one late job is taken in the first round, ahead of guild
        // 1's older backlog beyond its share.
        let due = store.due_jobs(now, 3, 2).await.unwrap();
        let guilds: Vec<u64> = due.iter().map(|j| j.scope.guild_id).collect();
        assert_eq!(guilds, [1, 2, 1], "{label}");
        assert_eq!(due[1].id, theirs, "{label}");

        // A retry moves the job and counts the attempt; a failure ends it.
        let retried = &due[0];
        store
            .retry_job(&retried.id, now + Duration::minutes(1), "busy")
            .await
            .unwrap();
        let later = store
            .due_jobs(now + Duration::minutes(2), 10, 10)
            .await
            .unwrap();
        let moved = later.iter().find(|j| j.id == retried.id).unwrap();
        assert_eq!(moved.attempts, 1, "{label}");
        assert!(
            !store
                .due_jobs(now, 10, 10)
                .await
                .unwrap()
                .iter()
                .any(|j| j.id == retried.id),
            "{label}: a retried job is not due before its new time"
        );
        store
            .finish_job(&retried.id, townes::store::JobEnd::Failed, Some("gave up"))
            .await
            .unwrap();
        // A finished job frees its place in the quota.
        store
            .schedule_job(&busy, "again", "", now, 5)
            .await
            .unwrap();

        // Finished rows are purged after the retention, pending ones never.
        store.complete_job(&theirs).await.unwrap();
        assert_eq!(
            store
                .purge_finished_jobs(now - Duration::hours(1))
                .await
                .unwrap(),
            0,
            "{label}"
        );
        assert_eq!(
            store
                .purge_finished_jobs(Utc::now() + Duration::seconds(1))
                .await
                .unwrap(),
            2,
            "{label}"
        );
        assert_eq!(
            store
                .due_jobs(now + Duration::hours(1), 100, 100)
                .await
                .unwrap()
                .len(),
            5,
            "{label}"
        );
    }
}

fn invalid_argument(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::InvalidArgument(message)) => message,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_find_or_create_and_own_guilds() {
    for (label, store, _guard) in each_backend().await {
        assert_eq!(
            store.tenant_by_owner(u64::MAX).await.unwrap(),
            None,
            "{label}"
        );

        let before = Utc::now().trunc_subsecs(6);
        let acme = store.create_tenant(u64::MAX, Some("Acme")).await.unwrap();
        assert!(
            acme.id.len() == 32 && acme.id.chars().all(|c| c.is_ascii_hexdigit()),
            "{label}: {}",
            acme.id
        );
        assert_eq!(acme.owner_discord_id, u64::MAX, "{label}");
        assert_eq!(acme.name.as_deref(), Some("Acme"), "{label}");
        assert_eq!(acme.plan, "free", "{label}");
        assert!(
            acme.created_at >= before && acme.created_at <= Utc::now(),
            "{label}"
        );

        // Find-or-create: the same owner gets the same tenant, name unchanged.
        assert_eq!(
            store
                .create_tenant(u64::MAX, Some("Renamed"))
                .await
                .unwrap(),
            acme,
            "{label}"
        );
        assert_eq!(
            store.create_tenant(u64::MAX, None).await.unwrap(),
            acme,
            "{label}"
        );
        assert_eq!(
            store.tenant(&acme.id).await.unwrap(),
            Some(acme.clone()),
            "{label}"
        );
        assert_eq!(
            store.tenant_by_owner(u64::MAX).await.unwrap(),
            Some(acme.clone()),
            "{label}"
        );
        assert_eq!(
            store.tenant("no-such-tenant").await.unwrap(),
            None,
            "{label}"
        );

        // Another owner, another tenant; unnamed is fine.
        let other = store.create_tenant(7, None).await.unwrap();
        assert_ne!(other.id, acme.id, "{label}");
        assert_eq!(other.name, None, "{label}");

        // Concurrent find-or-create for one owner: one tenant.
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.create_tenant(555, Some("race")).await })
            })
            .collect();
        let mut ids = HashSet::new();
        for task in tasks {
            ids.insert(task.await.unwrap().unwrap().id);
        }
        assert_eq!(ids.len(), 1, "{label}");

        // Guilds link to a tenant; re-announcing a guild keeps the link.
        store.upsert_guild(&Guild::new(1, "one", 10)).await.unwrap();
        store.upsert_guild(&Guild::new(2, "two", 20)).await.unwrap();
        store
            .upsert_guild(&Guild::new(3, "three", 30))
            .await
            .unwrap();
        assert_eq!(
            store.guild(1).await.unwrap().unwrap().tenant_id,
            None,
            "{label}"
        );
        store.set_guild_tenant(2, Some(&acme.id)).await.unwrap();
        store.set_guild_tenant(1, Some(&acme.id)).await.unwrap();
        store.set_guild_tenant(3, Some(&other.id)).await.unwrap();
        store.upsert_guild(&Guild::new(1, "uno", 10)).await.unwrap();
        let one = store.guild(1).await.unwrap().unwrap();
        assert_eq!(one.name, "uno", "{label}");
        assert_eq!(one.tenant_id.as_deref(), Some(acme.id.as_str()), "{label}");
        let owned: Vec<u64> = store
            .guilds_of_tenant(&acme.id)
            .await
            .unwrap()
            .iter()
            .map(|g| g.id)
            .collect();
        assert_eq!(owned, [1, 2], "{label}");
        assert_eq!(
            store.guilds_of_tenant("no-such-tenant").await.unwrap(),
            vec![],
            "{label}"
        );

        // A guild inserted with a tenant; an upsert naming a tenant moves it.
        let four = Guild {
            tenant_id: Some(other.id.clone()),
            ..Guild::new(4, "four", 40)
        };
        store.upsert_guild(&four).await.unwrap();
        store
            .upsert_guild(&Guild {
                tenant_id: Some(other.id.clone()),
                ..Guild::new(2, "two", 20)
            })
            .await
            .unwrap();
        let owned: Vec<u64> = store
            .guilds_of_tenant(&other.id)
            .await
            .unwrap()
            .iter()
            .map(|g| g.id)
            .collect();
        assert_eq!(owned, [2, 3, 4], "{label}");

        // Unlinking; unknown guild or tenant refused.
        store.set_guild_tenant(1, None).await.unwrap();
        assert_eq!(
            store.guild(1).await.unwrap().unwrap().tenant_id,
            None,
            "{label}"
        );
        assert!(
            invalid_argument(store.set_guild_tenant(1, Some("nope")).await).contains("nope"),
            "{label}"
        );
        assert!(
            invalid_argument(store.set_guild_tenant(99, Some(&acme.id)).await).contains("99"),
            "{label}"
        );
        invalid_argument(
            store
                .upsert_guild(&Guild {
                    tenant_id: Some("nope".into()),
                    ..Guild::new(5, "five", 50)
                })
                .await,
        );
        assert_eq!(store.guild(5).await.unwrap(), None, "{label}");
        assert_eq!(
            store.guild(1).await.unwrap().unwrap().tenant_id,
            None,
            "{label}"
        );
    }
}

#[tokio::test]
async fn guilds_left_and_rejoined() {
    for (label, store, _guard) in each_backend().await {
        store.upsert_guild(&Guild::new(1, "one", 10)).await.unwrap();
        assert_eq!(
            store.guild(1).await.unwrap().unwrap().left_at,
            None,
            "{label}"
        );

        let left = Utc.timestamp_opt(1_750_000_000, 987_654_321).unwrap();
        store.mark_guild_left(1, Some(left)).await.unwrap();
        assert_eq!(
            store.guild(1).await.unwrap().unwrap().left_at,
            Some(left.trunc_subsecs(6)),
            "{label}"
        );
        // An upsert keeps it: only mark_guild_left changes it.
        store.upsert_guild(&Guild::new(1, "one", 11)).await.unwrap();
        let read = store.guild(1).await.unwrap().unwrap();
        assert_eq!(read.owner_id, 11, "{label}");
        assert_eq!(read.left_at, Some(left.trunc_subsecs(6)), "{label}");
        // Left guilds are still listed.
        assert_eq!(store.guilds().await.unwrap(), vec![read], "{label}");

        // Re-join clears it.
        store.mark_guild_left(1, None).await.unwrap();
        assert_eq!(
            store.guild(1).await.unwrap().unwrap().left_at,
            None,
            "{label}"
        );

        // Inserted as left.
        let gone = Guild {
            left_at: Some(left),
            ..Guild::new(2, "two", 20)
        };
        store.upsert_guild(&gone).await.unwrap();
        assert_eq!(
            store.guild(2).await.unwrap().unwrap().left_at,
            Some(left.trunc_subsecs(6)),
            "{label}"
        );

        assert!(
            invalid_argument(store.mark_guild_left(99, Some(left)).await).contains("99"),
            "{label}"
        );
    }
}

#[tokio::test]
async fn guild_settings_defaults_round_trip_and_validation() {
    for (label, store, _guard) in each_backend().await {
        // No row: the defaults, even for an unknown guild.
        let defaults = store.guild_settings(1).await.unwrap();
        assert_eq!(defaults, GuildSettings::new(1), "{label}");
        assert_eq!(defaults.prefix, "!", "{label}");
        assert!(
            defaults.use_slash_commands && defaults.allow_prefix_fallback,
            "{label}"
        );
        assert_eq!(defaults.global_cooldown_seconds, 0, "{label}");
        assert_eq!(defaults.updated_at, None, "{label}");

        // Saving needs the guild.
        assert!(
            invalid_argument(store.set_guild_settings(&GuildSettings::new(1)).await)
                .contains("no guild 1"),
            "{label}"
        );
        store.upsert_guild(&Guild::new(1, "one", 10)).await.unwrap();
        store.upsert_guild(&Guild::new(2, "two", 20)).await.unwrap();

        let custom = GuildSettings {
            prefix: "?>".into(),
            use_slash_commands: false,
            allow_prefix_fallback: false,
            global_cooldown_seconds: 30,
            ..GuildSettings::new(1)
        };
        let before = Utc::now().trunc_subsecs(6);
        store.set_guild_settings(&custom).await.unwrap();
        let read = store.guild_settings(1).await.unwrap();
        let stamped = read.updated_at.expect("stamped");
        assert!(stamped >= before && stamped <= Utc::now(), "{label}");
        assert_eq!(
            read,
            GuildSettings {
                updated_at: Some(stamped),
                ..custom.clone()
            },
            "{label}"
        );
        assert_eq!(
            store.guild_settings(2).await.unwrap(),
            GuildSettings::new(2),
            "{label}"
        );

        // Update; the boundaries are accepted.
        let edge = GuildSettings {
            prefix: "éé!!é".into(), // 5 characters, 8 bytes
            use_slash_commands: true,
            global_cooldown_seconds: 86_400,
            updated_at: None,
            ..custom.clone()
        };
        store.set_guild_settings(&edge).await.unwrap();
        let read = store.guild_settings(1).await.unwrap();
        assert_eq!(
            GuildSettings {
                updated_at: None,
                ..read
            },
            edge,
            "{label}"
        );

        // Each validation error names its field and changes nothing.
        for prefix in ["", "toolong", "a b", "\t", "x\n"] {
            let bad = GuildSettings {
                prefix: prefix.into(),
                ..GuildSettings::new(1)
            };
            let message = invalid_argument(store.set_guild_settings(&bad).await);
            assert!(message.contains("prefix"), "{label}: {prefix:?}: {message}");
        }
        let bad = GuildSettings {
            global_cooldown_seconds: 86_401,
            ..GuildSettings::new(1)
        };
        let message = invalid_argument(store.set_guild_settings(&bad).await);
        assert!(
            message.contains("global_cooldown_seconds"),
            "{label}: {message}"
        );
        assert_eq!(
            store.guild_settings(1).await.unwrap().prefix,
            "éé!!é",
            "{label}"
        );
    }
}

#[tokio::test]
async fn role_permissions_grant_revoke_list() {
    for (label, store, _guard) in each_backend().await {
        store.upsert_guild(&Guild::new(1, "one", 10)).await.unwrap();
        store.upsert_guild(&Guild::new(2, "two", 20)).await.unwrap();
        assert_eq!(store.role_permissions(1).await.unwrap(), vec![], "{label}");

        let big_role = (1 << 63) + 5; // stored as a negative BIGINT: sorts first
        store.grant_role_permission(1, 20, "mod").await.unwrap();
        store.grant_role_permission(1, 20, "mod").await.unwrap(); // idempotent
        store.grant_role_permission(1, 10, "mod").await.unwrap();
        store.grant_role_permission(1, 10, "admin").await.unwrap();
        store
            .grant_role_permission(1, big_role, "fun")
            .await
            .unwrap();
        store.grant_role_permission(2, 10, "mod").await.unwrap();

        let perm = |role_id: u64, group: &str| RolePermission {
            guild_id: 1,
            role_id,
            command_group: group.to_string(),
        };
        assert_eq!(
            store.role_permissions(1).await.unwrap(),
            vec![
                perm(big_role, "fun"),
                perm(10, "admin"),
                perm(10, "mod"),
                perm(20, "mod")
            ],
            "{label}"
        );

        assert!(
            store.revoke_role_permission(1, 20, "mod").await.unwrap(),
            "{label}"
        );
        assert!(
            !store.revoke_role_permission(1, 20, "mod").await.unwrap(),
            "{label}"
        );
        assert!(
            !store.revoke_role_permission(3, 10, "mod").await.unwrap(),
            "{label}"
        );
        assert!(
            !store.revoke_role_permission(1, 10, "MOD").await.unwrap(),
            "{label}"
        );
        assert_eq!(
            store.role_permissions(1).await.unwrap(),
            vec![perm(big_role, "fun"), perm(10, "admin"), perm(10, "mod")],
            "{label}"
        );
        assert_eq!(
            store.role_permissions(2).await.unwrap(),
            vec![RolePermission {
                guild_id: 2,
                role_id: 10,
                command_group: "mod".into()
            }],
            "{label}"
        );

        assert!(
            invalid_argument(store.grant_role_permission(1, 10, "").await)
                .contains("command_group"),
            "{label}"
        );
        assert!(
            invalid_argument(store.grant_role_permission(99, 10, "mod").await)
                .contains("no guild 99"),
            "{label}"
        );
    }
}

#[tokio::test]
async fn command_cooldowns_set_remove_list() {
    for (label, store, _guard) in each_backend().await {
        store.upsert_guild(&Guild::new(1, "one", 10)).await.unwrap();
        store.upsert_guild(&Guild::new(2, "two", 20)).await.unwrap();
        assert_eq!(
            store.command_cooldown(1, "ban").await.unwrap(),
            None,
            "{label}"
        );

        store.set_command_cooldown(1, "ban", 30).await.unwrap();
        store.set_command_cooldown(1, "kick", 5).await.unwrap();
        store.set_command_cooldown(1, "ban", 60).await.unwrap(); // replaces
        store.set_command_cooldown(1, "Warn", 86_400).await.unwrap();
        store.set_command_cooldown(2, "ban", 1).await.unwrap();

        let cd = |command: &str, seconds: u32| CommandCooldown {
            guild_id: 1,
            command: command.to_string(),
            seconds,
        };
        assert_eq!(
            store.command_cooldowns(1).await.unwrap(),
            vec![cd("Warn", 86_400), cd("ban", 60), cd("kick", 5)],
            "{label}"
        );
        assert_eq!(
            store.command_cooldown(1, "ban").await.unwrap(),
            Some(60),
            "{label}"
        );
        assert_eq!(
            store.command_cooldown(2, "ban").await.unwrap(),
            Some(1),
            "{label}"
        );

        // 0 removes; removing what is not there is fine.
        store.set_command_cooldown(1, "kick", 0).await.unwrap();
        store.set_command_cooldown(1, "kick", 0).await.unwrap();
        assert_eq!(
            store.command_cooldown(1, "kick").await.unwrap(),
            None,
            "{label}"
        );
        assert_eq!(
            store.command_cooldowns(1).await.unwrap(),
            vec![cd("Warn", 86_400), cd("ban", 60)],
            "{label}"
        );

        assert!(
            invalid_argument(store.set_command_cooldown(1, "ban", 86_401).await)
                .contains("seconds"),
            "{label}"
        );
        assert!(
            invalid_argument(store.set_command_cooldown(1, "", 5).await).contains("command"),
            "{label}"
        );
        assert!(
            invalid_argument(store.set_command_cooldown(99, "ban", 5).await)
                .contains("no guild 99"),
            "{label}"
        );
        assert_eq!(
            store.command_cooldown(1, "ban").await.unwrap(),
            Some(60),
            "{label}"
        );
    }
}

#[tokio::test]
async fn feature_catalogue_and_versions() {
    for (label, store, _guard) in each_backend().await {
        assert_eq!(store.features().await.unwrap(), vec![], "{label}");
        assert_eq!(store.feature("xp").await.unwrap(), None, "{label}");

        // Installing a build creates a catalogue entry from its manifest.
        let v1 = version("xp", "1.0.0", "aa");
        store.insert_feature_version(&v1).await.unwrap();
        assert_eq!(
            store.feature("xp").await.unwrap(),
            Some(Feature {
                id: "xp".into(),
                name: "xp".into(), // no name in the manifest: the id
                description: String::new(),
                builtin: false,
                publisher: None,
                created_at: v1.created_at,
            }),
            "{label}"
        );
        let welcome = FeatureVersion {
            manifest: json!({ "id": "welcome", "name": "Welcome", "description": "Greets" }),
            ..version("welcome", "0.1.0", "bb")
        };
        store.insert_feature_version(&welcome).await.unwrap();
        let entry = store.feature("welcome").await.unwrap().unwrap();
        assert_eq!(
            (entry.name.as_str(), entry.description.as_str()),
            ("Welcome", "Greets"),
            "{label}"
        );

        // Claiming an unclaimed entry updates everything but created_at.
        let curated = Feature {
            id: "xp".into(),
            name: "Levels".into(),
            description: "XP and levels".into(),
            builtin: true,
            publisher: Some("TownesDev".into()),
            created_at: Utc::now(),
        };
        assert!(store.claim_feature(&curated).await.unwrap(), "{label}");
        let read = store.feature("xp").await.unwrap().unwrap();
        assert_eq!(
            read,
            Feature {
                created_at: v1.created_at,
                ..curated.clone()
            },
            "{label}"
        );
        // Another publisher's claim changes nothing.
        let squatter = Feature {
            name: "Mine now".into(),
            publisher: Some("mallory".into()),
            ..curated.clone()
        };
        assert!(!store.claim_feature(&squatter).await.unwrap(), "{label}");
        assert_eq!(
            store.feature("xp").await.unwrap().as_ref(),
            Some(&read),
            "{label}"
        );
        // Later builds never overwrite a catalogue entry.
        let v2 = FeatureVersion {
            created_at: v1.created_at + Duration::hours(1),
            manifest: json!({ "name": "Other name" }),
            ..version("xp", "1.1.0", "cc")
        };
        let v3 = FeatureVersion {
            created_at: v2.created_at,
            ..version("xp", "1.2.0", "dd")
        };
        store.insert_feature_version(&v3).await.unwrap();
        store.insert_feature_version(&v2).await.unwrap();
        assert_eq!(store.feature("xp").await.unwrap(), Some(read), "{label}");

        // A catalogue entry without builds; byte order of ids.
        let zeta = Feature {
            id: "Zeta".into(),
            name: "Zeta".into(),
            description: String::new(),
            builtin: false,
            publisher: None,
            created_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        };
        assert!(store.claim_feature(&zeta).await.unwrap(), "{label}");
        let ids: Vec<String> = store
            .features()
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(ids, ["Zeta", "welcome", "xp"], "{label}");
        assert_eq!(store.feature("Zeta").await.unwrap(), Some(zeta), "{label}");
        assert!(
            invalid_argument(
                store
                    .claim_feature(&Feature {
                        id: String::new(),
                        ..curated.clone()
                    })
                    .await
            )
            .contains("feature id"),
            "{label}"
        );

        // Newest first; ties on created_at by version, descending.
        assert_eq!(
            store.versions_of("xp").await.unwrap(),
            vec![v3.clone(), v2.clone(), v1.clone()],
            "{label}"
        );
        assert_eq!(store.versions_of("nope").await.unwrap(), vec![], "{label}");

        // Unpublishing and publishing again.
        assert!(
            store
                .set_version_published("xp", "1.1.0", false)
                .await
                .unwrap(),
            "{label}"
        );
        let hidden = FeatureVersion {
            published: false,
            ..v2.clone()
        };
        assert_eq!(
            store.feature_version("xp", "1.1.0").await.unwrap(),
            Some(hidden.clone()),
            "{label}"
        );
        assert_eq!(
            store.versions_of("xp").await.unwrap(),
            vec![v3.clone(), hidden.clone(), v1.clone()],
            "{label}"
        );
        // Recording the same build again changes nothing, published included.
        store.insert_feature_version(&v2).await.unwrap();
        assert_eq!(
            store.feature_version("xp", "1.1.0").await.unwrap(),
            Some(hidden),
            "{label}"
        );
        assert!(
            store
                .set_version_published("xp", "1.1.0", true)
                .await
                .unwrap(),
            "{label}"
        );
        assert_eq!(
            store.feature_version("xp", "1.1.0").await.unwrap(),
            Some(v2),
            "{label}"
        );
        assert!(
            !store
                .set_version_published("xp", "9.9.9", false)
                .await
                .unwrap(),
            "{label}"
        );

        // A build recorded unpublished.
        let draft = FeatureVersion {
            published: false,
            ..version("welcome", "0.2.0", "ee")
        };
        store.insert_feature_version(&draft).await.unwrap();
        assert_eq!(
            store.feature_version("welcome", "0.2.0").await.unwrap(),
            Some(draft),
            "{label}"
        );
    }
}

#[tokio::test]
async fn previous_version_round_trips() {
    for (label, store, _guard) in each_backend().await {
        store.upsert_guild(&Guild::new(1, "g", 2)).await.unwrap();
        for v in ["1.0.0", "1.1.0"] {
            store
                .insert_feature_version(&version("xp", v, v))
                .await
                .unwrap();
        }
        let installed = GuildFeature {
            guild_id: 1,
            feature_id: "xp".into(),
            version: "1.0.0".into(),
            enabled: true,
            grants: Approval::default(),
            config: None,
            breaker_strikes: 0,
            breaker_open_until: None,
            updated_at: Utc::now().trunc_subsecs(6),
            previous_version: None,
            revision: 0,
        };
        store.upsert_guild_feature(&installed).await.unwrap();
        assert_eq!(
            store.guild_feature(1, "xp").await.unwrap(),
            Some(installed.clone()),
            "{label}"
        );

        let upgraded = GuildFeature {
            version: "1.1.0".into(),
            previous_version: Some("1.0.0".into()),
            revision: 1,
            ..installed.clone()
        };
        store.upsert_guild_feature(&upgraded).await.unwrap();
        assert_eq!(
            store.guild_feature(1, "xp").await.unwrap(),
            Some(upgraded.clone()),
            "{label}"
        );
        assert_eq!(
            store.guild_features(1).await.unwrap(),
            vec![upgraded.clone()],
            "{label}"
        );
        // The breaker leaves it alone.
        store.set_breaker(1, "xp", 2, None).await.unwrap();
        assert_eq!(
            store
                .guild_feature(1, "xp")
                .await
                .unwrap()
                .unwrap()
                .previous_version
                .as_deref(),
            Some("1.0.0"),
            "{label}"
        );

        // Rolled back: the caller decides what is previous now.
        let rolled_back = GuildFeature {
            previous_version: None,
            revision: 2,
            ..installed
        };
        store.upsert_guild_feature(&rolled_back).await.unwrap();
        assert_eq!(
            store.guild_feature(1, "xp").await.unwrap(),
            Some(rolled_back),
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_counters_accumulate_and_filter_by_day() {
    for (label, store, _guard) in each_backend().await {
        let today = day(2025, 1, 1);
        assert_eq!(
            store.usage(1, today, today).await.unwrap(),
            vec![],
            "{label}"
        );

        // 20 concurrent writers, one row: exact totals.
        let tasks: Vec<_> = (0..20u64)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.add_usage(1, today, 1, i % 2, 100).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let counter = |guild_id: u64, day: NaiveDate, events, commands, ai_tokens| UsageCounter {
            guild_id,
            day,
            events,
            commands,
            ai_tokens,
        };
        assert_eq!(
            store.usage(1, today, today).await.unwrap(),
            vec![counter(1, today, 20, 10, 2_000)],
            "{label}"
        );

        // Other days (across a year end and a month end) and other guilds.
        for (guild_id, d) in [
            (1, day(2024, 12, 31)),
            (1, day(2025, 1, 2)),
            (1, day(2025, 1, 10)),
            (1, day(2025, 2, 1)),
            (2, today),
            (u64::MAX, today),
        ] {
            store.add_usage(guild_id, d, 1, 1, 1).await.unwrap();
        }
        store.add_usage(1, day(2025, 1, 10), 0, 0, 5).await.unwrap();

        let days = |rows: Vec<UsageCounter>| -> Vec<NaiveDate> {
            rows.into_iter().map(|c| c.day).collect()
        };
        assert_eq!(
            days(
                store
                    .usage(1, day(2024, 1, 1), day(2026, 1, 1))
                    .await
                    .unwrap()
            ),
            [
                day(2024, 12, 31),
                today,
                day(2025, 1, 2),
                day(2025, 1, 10),
                day(2025, 2, 1)
            ],
            "{label}"
        );
        // Inclusive at both ends.
        assert_eq!(
            store
                .usage(1, day(2025, 1, 2), day(2025, 1, 10))
                .await
                .unwrap(),
            vec![
                counter(1, day(2025, 1, 2), 1, 1, 1),
                counter(1, day(2025, 1, 10), 1, 1, 6)
            ],
            "{label}"
        );
        assert_eq!(
            days(
                store
                    .usage(1, day(2025, 1, 3), day(2025, 1, 31))
                    .await
                    .unwrap()
            ),
            [day(2025, 1, 10)],
            "{label}"
        );
        assert_eq!(
            store
                .usage(1, day(2025, 1, 10), day(2025, 1, 2))
                .await
                .unwrap(),
            vec![],
            "{label}"
        );
        assert_eq!(
            store.usage(u64::MAX, today, today).await.unwrap(),
            vec![counter(u64::MAX, today, 1, 1, 1)],
            "{label}"
        );
        assert_eq!(
            store
                .usage(3, day(2000, 1, 1), day(2100, 1, 1))
                .await
                .unwrap(),
            vec![],
            "{label}"
        );

        assert!(
            invalid_argument(store.add_usage(1, today, 0, 0, u64::MAX).await).contains("ai_tokens"),
            "{label}"
        );
        assert_eq!(
            store.usage(1, today, today).await.unwrap(),
            vec![counter(1, today, 20, 10, 2_000)],
            "{label}"
        );
    }
}

/// A raw pool on a test database, without the store (to build a 0001-only schema).
enum RawPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

macro_rules! on_raw {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            RawPool::Sqlite($p) => $body,
            RawPool::Postgres($p) => $body,
        }
    };
}

/// Empties the test database behind `url` and applies migration 0001 only.
async fn database_at_0001(label: &str, url: &str) -> RawPool {
    let only_first = tempfile::tempdir().unwrap();
    let folder = if label == "sqlite" {
        "sqlite"
    } else {
        "postgres"
    };
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(folder)
        .join("0001_runtime.sql");
    std::fs::copy(&source, only_first.path().join("0001_runtime.sql")).unwrap();
    let migrator = Migrator::new(only_first.path()).await.unwrap();

    let pool = if label == "sqlite" {
        let path = url.strip_prefix("sqlite://").unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
        let options = SqliteConnectOptions::from_str(url)
            .unwrap()
            .create_if_missing(true)
            .foreign_keys(true);
        RawPool::Sqlite(SqlitePool::connect_with(options).await.unwrap())
    } else {
        let pool = PgPool::connect(url).await.unwrap();
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await
            .unwrap();
        for statement in [
            format!("DROP SCHEMA \"{schema}\" CASCADE"),
            format!("CREATE SCHEMA \"{schema}\""),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
        RawPool::Postgres(PgPool::connect(url).await.unwrap())
    };
    on_raw!(&pool, p => migrator.run(p).await.unwrap());
    pool
}

#[tokio::test]
async fn migrating_a_0001_database_to_0002() {
    for (label, store, guard) in each_backend().await {
        store.close().await;
        let raw = database_at_0001(&label, guard.url()).await;
        let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let t1 = t0 + Duration::days(1);
        on_raw!(&raw, p => {
            let applied: Vec<i64> =
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                    .fetch_all(p)
                    .await
                    .unwrap();
            assert_eq!(applied, [1], "{label}");
            sqlx::query(
                "INSERT INTO guilds (id, name, owner_id, plan, created_at)
                 VALUES ($1, 'old', 10, 'pro', $2)",
            )
            .bind(5_i64)
            .bind(t0)
            .execute(p)
            .await
            .unwrap();
            for (feature_id, version, manifest, created_at) in [
                ("xp", "1.0.0", json!({ "name": "XP", "description": "Levels" }), t0),
                ("xp", "1.1.0", json!({ "name": "XP two", "description": "More" }), t1),
                ("welcome", "0.1.0", json!({}), t1),
            ] {
                sqlx::query(
                    "INSERT INTO feature_versions
                         (feature_id, version, sha256, manifest, size_bytes, created_at)
                     VALUES ($1, $2, 'sha', $3, 1, $4)",
                )
                .bind(feature_id)
                .bind(version)
                .bind(sqlx::types::Json(manifest))
                .bind(created_at)
                .execute(p)
                .await
                .unwrap();
            }
            sqlx::query(
                "INSERT INTO guild_features (guild_id, feature_id, version, enabled, updated_at)
                 VALUES (5, 'xp', '1.1.0', TRUE, $1)",
            )
            .bind(t1)
            .execute(p)
            .await
            .unwrap();
            p.close().await;
        });

        // Connecting applies 0002; the 0001 data reads back with the new defaults.
        let upgraded = Store::connect(guard.url()).await.unwrap();
        let expected = vec![
            (1, "runtime".to_string()),
            (2, "platform".to_string()),
            (3, "discord outbox".to_string()),
            (4, "guild command sets".to_string()),
            (5, "api".to_string()),
            (6, "outbox origin".to_string()),
            (7, "sandbox limits".to_string()),
            (8, "guild feature revision".to_string()),
            (9, "control changes".to_string()),
            (10, "feature files".to_string()),
            (11, "guild feature commands".to_string()),
            (12, "billing and licenses".to_string()),
            (13, "exports".to_string()),
            (14, "operators and journal".to_string()),
            (15, "offboarding".to_string()),
            (16, "claimed work".to_string()),
            (17, "community health".to_string()),
            (18, "ai".to_string()),
        ];
        assert_eq!(
            upgraded.applied_migrations().await.unwrap(),
            expected,
            "{label}"
        );
        let guild = upgraded.guild(5).await.unwrap().unwrap();
        assert_eq!(
            (guild.name.as_str(), guild.plan.as_str(), guild.created_at),
            ("old", "pro", t0),
            "{label}"
        );
        assert_eq!((guild.tenant_id, guild.left_at), (None, None), "{label}");
        let versions = upgraded.feature_versions().await.unwrap();
        assert_eq!(versions.len(), 3, "{label}");
        assert!(versions.iter().all(|v| v.published), "{label}");
        let gf = upgraded.guild_feature(5, "xp").await.unwrap().unwrap();
        assert_eq!(
            (gf.version.as_str(), gf.previous_version),
            ("1.1.0", None),
            "{label}"
        );
        // Installed features got catalogue entries, named after their newest build.
        let catalogue: Vec<(String, String, String, bool, DateTime<Utc>)> = upgraded
            .features()
            .await
            .unwrap()
            .into_iter()
            .map(|f| (f.id, f.name, f.description, f.builtin, f.created_at))
            .collect();
        assert_eq!(
            catalogue,
            [
                ("welcome".into(), "welcome".into(), String::new(), false, t1),
                ("xp".into(), "XP two".into(), "More".into(), false, t0),
            ],
            "{label}"
        );

        // The new tables work on the upgraded database.
        let tenant = upgraded.create_tenant(10, Some("Old")).await.unwrap();
        upgraded
            .set_guild_tenant(5, Some(&tenant.id))
            .await
            .unwrap();
        upgraded.grant_role_permission(5, 1, "mod").await.unwrap();
        upgraded
            .add_usage(5, day(2025, 1, 1), 1, 0, 0)
            .await
            .unwrap();
        upgraded.close().await;

        // Connecting again applies nothing and keeps everything.
        let again = Store::connect(guard.url()).await.unwrap();
        assert_eq!(
            again.applied_migrations().await.unwrap(),
            expected,
            "{label}"
        );
        again.migrate().await.unwrap();
        assert_eq!(
            again.guild(5).await.unwrap().unwrap().tenant_id,
            Some(tenant.id),
            "{label}"
        );
        assert_eq!(again.role_permissions(5).await.unwrap().len(), 1, "{label}");
        again.close().await;
    }
}

/// An approval that cannot be read approves nothing, wherever the row is read.
#[tokio::test]
async fn an_unreadable_approval_approves_nothing() {
    for (label, store, guard) in each_backend().await {
        store.upsert_guild(&Guild::new(1, "g", 7)).await.unwrap();
        store
            .insert_feature_version(&version("xp", "1.0.0", "aa"))
            .await
            .unwrap();
        store
            .enable_guild_feature(1, "xp", "1.0.0", &Approval::of([Capability::Messages]))
            .await
            .unwrap();
        let garbage = sqlx::types::Json(json!({ "capabilities": "everything" }));
        let update = "UPDATE guild_features SET grants = $1 WHERE feature_id = 'xp'";
        if label == "sqlite" {
            let pool = SqlitePool::connect(guard.url()).await.unwrap();
            sqlx::query(update)
                .bind(&garbage)
                .execute(&pool)
                .await
                .unwrap();
        } else {
            let pool = PgPool::connect(guard.url()).await.unwrap();
            sqlx::query(update)
                .bind(&garbage)
                .execute(&pool)
                .await
                .unwrap();
        }
        let read = store.guild_feature(1, "xp").await.unwrap().unwrap();
        assert_eq!(read.grants, Approval::default(), "{label}");
        assert_eq!(
            store.guild_features(1).await.unwrap()[0].grants,
            Approval::default(),
            "{label}"
        );
    }
}

/// Files are kept exact under their quota on both backends, also when many
/// writers race for the last bytes, and one guild's files are not another's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_keep_exact_usage_under_racing_writers() {
    use townes::store::{FileQuota, FileUsage};
    for (label, store, _guard) in each_backend().await {
        let scope = Scope::new(7, "tickets");
        let quota = FileQuota {
            max_bytes: 10_000,
            max_files: 1_000,
            max_file_bytes: 1_000,
        };
        let writers: Vec<_> = (0..40)
            .map(|i| {
                let (store, scope) = (store.clone(), scope.clone());
                tokio::spawn(async move {
                    store
                        .put_file(
                            &scope,
                            &format!("f{i}"),
                            "text/plain",
                            &[b'x'; 1_000],
                            quota,
                        )
                        .await
                })
            })
            .collect();
        let mut stored = 0;
        for writer in writers {
            match writer.await.unwrap() {
                Ok(_) => stored += 1,
                Err(StoreError::QuotaExceeded(_)) => {}
                Err(e) => panic!("{label}: {e}"),
            }
        }
        assert_eq!(stored, 10, "{label}: exactly what fits");
        let usage = store.file_usage(&scope).await.unwrap();
        assert_eq!(
            usage,
            FileUsage {
                bytes: 10_000,
                files: 10
            },
            "{label}"
        );
        let listed = store.files(&scope, "f", 1000).await.unwrap();
        assert_eq!(listed.len(), 10, "{label}");
        let (info, data) = store.file(&scope, &listed[0].name).await.unwrap().unwrap();
        assert_eq!((info.size, data.len()), (1_000, 1_000), "{label}");
        assert!(store.delete_file(&scope, &listed[0].name).await.unwrap());
        assert!(!store.delete_file(&scope, &listed[0].name).await.unwrap());
        assert_eq!(
            store.file_usage(&scope).await.unwrap(),
            FileUsage {
                bytes: 9_000,
                files: 9
            },
            "{label}"
        );
        let elsewhere = Scope::new(8, "tickets");
        assert!(
            store
                .file(&elsewhere, &listed[1].name)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.file_usage(&elsewhere).await.unwrap(),
            FileUsage::default()
        );
        assert_eq!(
            store.host_secret("k").await.unwrap(),
            store.host_secret("k").await.unwrap(),
            "{label}: made once"
        );
    }
}

#[tokio::test]
async fn commands_a_feature_defines_in_a_guild_are_kept_and_reach_the_policy() {
    use townes::wit::{Command, CommandOption, OptionKind};
    for (label, store, _guard) in each_backend().await {
        store.upsert_guild(&Guild::new(1, "one", 10)).await.unwrap();
        store
            .insert_feature_version(&version("custom-commands", "0.1.0", "aa"))
            .await
            .unwrap();
        assert!(
            !store
                .set_feature_commands(1, "custom-commands", &[])
                .await
                .unwrap(),
            "{label}: not set up in the guild"
        );
        store
            .enable_guild_feature(1, "custom-commands", "0.1.0", &Approval::default())
            .await
            .unwrap();
        let before = store.guild_policy(1).await.unwrap();
        assert!(before.feature_commands.is_empty(), "{label}");
        let greet = Command {
            name: "greet".into(),
            description: "Greets you".into(),
            options: vec![CommandOption {
                name: "args".into(),
                description: "what for".into(),
                kind: OptionKind::Text,
                required: false,
                choices: vec![],
            }],
            subcommands: vec![],
            slash: true,
            prefix: false,
            default_permissions: None,
        };
        let since = Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(
            store
                .set_feature_commands(1, "custom-commands", std::slice::from_ref(&greet))
                .await
                .unwrap()
        );
        let policy = store.guild_policy(1).await.unwrap();
        assert_eq!(
            policy.feature_commands.len(),
            1,
            "{label}: the cache was dropped"
        );
        assert_eq!(policy.feature_commands[0].feature_id, "custom-commands");
        assert_eq!(policy.feature_commands[0].commands, [greet], "{label}");
        assert_eq!(
            store.guilds_changed_since(since).await.unwrap(),
            [1],
            "{label}: the command sync sees it"
        );
        store
            .set_feature_commands(1, "custom-commands", &[])
            .await
            .unwrap();
        assert!(
            store.feature_commands(1).await.unwrap().is_empty(),
            "{label}"
        );
    }
}
