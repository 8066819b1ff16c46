//! Several runtimes on one database (migration 0016), on SQLite and Postgres: due
//! scheduled jobs are claimed so each runs once, a crashed runner's jobs come back
//! after their lease and are given up on after a few crashes, and a component
//! installed by one process runs in another with an empty data directory, unless
//! its stored bytes were tampered with.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::harness::{GUILD_A, GUILD_B, Harness, limits, reply_text};
use sqlx::Connection;
use townes::runtime::{InvokeError, JOB_ATTEMPTS, Outcome, Runtime, RuntimeConfig};
use townes::store::{Scope, Store};
use townes::wit::{Capability, CommandInvocation, CommandSource};

const CAPS: &[Capability] = &[
    Capability::Messages,
    Capability::Storage,
    Capability::Scheduler,
];

/// Schedules the hostile feature's `ping` job (it posts `job:ping` in the
/// guild's first channel) in `guild`, due a second ago.
async fn ping_job(store: &Store, feature: &str, guild: u64) -> String {
    let scope = Scope {
        guild_id: guild,
        feature_id: feature.to_string(),
    };
    let channel = (guild + 1).to_string();
    let due = Utc::now() - chrono::Duration::seconds(1);
    store
        .schedule_job(&scope, "ping", &channel, due, 10_000)
        .await
        .unwrap()
}

/// Runs one SQL statement on the test database behind `url`, beside the store,
/// and returns the first column of the first row, if any.
async fn sql(url: &str, statement: &'static str, id: &str) -> Option<String> {
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(statement)
            .bind(id)
            .fetch_optional(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(statement)
            .bind(id)
            .fetch_optional(&mut conn)
            .await
            .unwrap()
    }
}

async fn status(url: &str, job: &str) -> String {
    sql(url, "SELECT status FROM scheduled_jobs WHERE id = $1", job)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_runtimes_racing_on_200_due_jobs_run_each_exactly_once() {
    for (label, store, guard) in common::each_backend().await {
        let h = Harness::new(store.clone(), limits()).await;
        let feature = h.install("hostile", CAPS).await;
        let mut jobs = Vec::new();
        for i in 0..200 {
            let guild = if i % 2 == 0 { GUILD_A } else { GUILD_B };
            jobs.push(ping_job(&store, &feature, guild).await);
        }
        let other = Arc::new(h.runtime_on(Store::connect(guard.url()).await.unwrap()));
        let race = |runtime: Arc<Runtime>| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ran: Vec<Outcome> = Vec::new();
                while !store.due_jobs(Utc::now(), 1, 1).await.unwrap().is_empty() {
                    let round = runtime.run_due_jobs(Utc::now(), 100).await.unwrap();
                    if round.is_empty() {
                        // The other runtime holds what is left: wait for it.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    ran.extend(round);
                }
                ran
            })
        };
        let (a, b) = tokio::join!(race(h.runtime.clone()), race(other));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.len() + b.len(), 200, "{label}: {} + {}", a.len(), b.len());
        for outcome in a.iter().chain(&b) {
            assert!(outcome.result.is_ok(), "{label}: {:?}", outcome.result);
            assert_eq!(
                common::sent_texts(&outcome.effects),
                ["job:ping"],
                "{label}"
            );
        }
        for job in &jobs {
            assert_eq!(status(guard.url(), job).await, "done", "{label}");
        }
        eprintln!("{label}: the runtimes ran {} and {} jobs", a.len(), b.len());
    }
}

#[tokio::test]
async fn a_job_whose_runner_crashed_runs_after_its_lease_and_one_that_keeps_crashing_fails() {
    for (label, store, guard) in common::each_backend().await {
        let h = Harness::new(store.clone(), limits()).await;
        let feature = h.install("hostile", CAPS).await;
        let job = ping_job(&store, &feature, GUILD_A).await;
        let now = Utc::now();

        // A runner claimed it and died (it never finishes nor renews).
        let lease = Duration::from_secs(30);
        let claimed = store
            .claim_due_jobs("dead-runner", now, lease, 10, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "{label}");
        assert_eq!(claimed[0].claims, 1, "{label}");
        // Nobody else runs it while that lease runs, whoever asks.
        assert!(
            h.runtime.run_due_jobs(now, 10).await.unwrap().is_empty(),
            "{label}"
        );
        let later = now + chrono::Duration::seconds(29);
        assert!(
            h.runtime.run_due_jobs(later, 10).await.unwrap().is_empty(),
            "{label}"
        );
        // Once it ran out the job is due again, and runs once.
        let after = now + chrono::Duration::seconds(31);
        let ran = h.runtime.run_due_jobs(after, 10).await.unwrap();
        assert_eq!(ran.len(), 1, "{label}");
        assert_eq!(common::sent_texts(&ran[0].effects), ["job:ping"], "{label}");
        assert_eq!(status(guard.url(), &job).await, "done", "{label}");
        assert!(
            h.runtime.run_due_jobs(after, 10).await.unwrap().is_empty(),
            "{label}"
        );

        // A job that kills every runner that takes it: each claim dies.
        let deadly = ping_job(&store, &feature, GUILD_B).await;
        let mut at = after;
        for claim in 1..=JOB_ATTEMPTS {
            let claimed = store
                .claim_due_jobs("dead-runner", at, lease, 10, 10)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1, "{label}: claim {claim}");
            assert_eq!(claimed[0].claims, claim, "{label}");
            at += chrono::Duration::seconds(31);
        }
        // The next claim gives up on it instead of running it again.
        assert!(
            h.runtime.run_due_jobs(at, 10).await.unwrap().is_empty(),
            "{label}"
        );
        assert_eq!(status(guard.url(), &deadly).await, "failed", "{label}");
        let why = sql(
            guard.url(),
            "SELECT last_error FROM scheduled_jobs WHERE id = $1",
            &deadly,
        )
        .await
        .unwrap();
        assert!(why.contains("stopped each time"), "{label}: {why}");
        // Finishing again is a no-op: a late runner's answer changes nothing.
        store.complete_job(&deadly).await.unwrap();
        assert_eq!(status(guard.url(), &deadly).await, "failed", "{label}");
        let far = at + chrono::Duration::days(1);
        assert!(
            store.due_jobs(far, 10, 10).await.unwrap().is_empty(),
            "{label}"
        );
    }
}

/// A runtime like the harness's, over its own store on the same database and an
/// empty data directory of its own: another host.
fn other_host(h: &Harness, store: Store, data: &tempfile::TempDir) -> Runtime {
    let config = RuntimeConfig {
        pool_instances: 8,
        ..RuntimeConfig::new(data.path())
    };
    Runtime::new(config, store, h.discord.clone()).unwrap()
}

async fn ok_command(runtime: &Runtime, h: &Harness, feature: &str) -> Outcome {
    let invocation = CommandInvocation {
        source: CommandSource::Slash,
        name: "ok".into(),
        subcommand: None,
        arguments: vec![],
        invoker: h.discord.member_of(GUILD_A, 42).unwrap(),
        channel_id: GUILD_A + 1,
    };
    runtime.command(GUILD_A, feature, invocation, 0).await
}

#[tokio::test]
async fn a_component_installed_on_one_host_runs_on_another_unless_its_stored_copy_was_altered() {
    for (label, store, guard) in common::each_backend().await {
        let h = Harness::new(store.clone(), limits()).await;
        let feature = h.install("hostile", CAPS).await;
        let sha256 = store
            .feature_versions()
            .await
            .unwrap()
            .into_iter()
            .find(|v| v.feature_id == feature)
            .unwrap()
            .sha256;

        let data_b = tempfile::tempdir().unwrap();
        let b = other_host(&h, Store::connect(guard.url()).await.unwrap(), &data_b);
        let outcome = ok_command(&b, &h, &feature).await;
        assert_eq!(reply_text(&outcome), "ok", "{label}");
        let cached = data_b
            .path()
            .join("components")
            .join(format!("{sha256}.wasm"));
        assert_eq!(
            std::fs::read(&cached).unwrap(),
            common::component("hostile"),
            "{label}: host B cached the bytes it loaded"
        );
        // Host B exports it too, from its own cache now.
        assert_eq!(
            b.component_bytes(&sha256).await.unwrap().len(),
            std::fs::metadata(&cached).unwrap().len() as usize,
            "{label}"
        );

        // Someone altered the stored copy: a host without the file refuses it.
        sql(
            guard.url(),
            "UPDATE component_blobs SET wasm = substr(wasm, 2) WHERE sha256 = $1 RETURNING sha256",
            &sha256,
        )
        .await
        .unwrap();
        let data_c = tempfile::tempdir().unwrap();
        let c = other_host(&h, Store::connect(guard.url()).await.unwrap(), &data_c);
        let refused = ok_command(&c, &h, &feature).await;
        match &refused.result {
            Err(InvokeError::Host(why)) => assert!(
                format!("{why:#}").contains(&format!(
                    "component {sha256} in the database does not match its sha256"
                )),
                "{label}: {why:#}"
            ),
            other => panic!("{label}: expected a refusal, got {other:?}"),
        }
        assert!(
            !data_c
                .path()
                .join("components")
                .join(format!("{sha256}.wasm"))
                .exists(),
            "{label}: the altered bytes were not cached"
        );
        // The hosts that have the file are unaffected.
        assert_eq!(
            reply_text(&ok_command(&b, &h, &feature).await),
            "ok",
            "{label}"
        );
    }
}

#[tokio::test]
async fn components_installed_before_the_blobs_existed_are_shared_by_the_host_that_has_them() {
    for (label, store, guard) in common::each_backend().await {
        let h = Harness::new(store.clone(), limits()).await;
        let feature = h.install("hostile", CAPS).await;
        // As before migration 0016: the bytes only in host A's data directory.
        let sha256 = store.feature_versions().await.unwrap()[0].sha256.clone();
        sql(
            guard.url(),
            "DELETE FROM component_blobs WHERE sha256 = $1 RETURNING sha256",
            &sha256,
        )
        .await
        .unwrap();
        assert_eq!(
            store.unshared_components().await.unwrap(),
            std::slice::from_ref(&sha256),
            "{label}"
        );
        let data_b = tempfile::tempdir().unwrap();
        let b = other_host(&h, Store::connect(guard.url()).await.unwrap(), &data_b);
        assert_eq!(
            b.share_cached_components().await.unwrap(),
            0,
            "{label}: B has nothing to share"
        );
        let missing = ok_command(&b, &h, &feature).await;
        assert!(
            matches!(missing.result, Err(InvokeError::Host(_))),
            "{label}: {:?}",
            missing.result
        );

        assert_eq!(
            h.runtime.share_cached_components().await.unwrap(),
            1,
            "{label}"
        );
        assert!(
            store.unshared_components().await.unwrap().is_empty(),
            "{label}"
        );
        assert_eq!(
            reply_text(&ok_command(&b, &h, &feature).await),
            "ok",
            "{label}"
        );
    }
}

#[tokio::test]
async fn a_job_scheduled_again_under_its_id_is_the_job_already_there() {
    for (label, store, _guard) in common::each_backend().await {
        store
            .upsert_guild(&townes::store::Guild::new(GUILD_A, "A", 1))
            .await
            .unwrap();
        let scope = |feature: &str| Scope {
            guild_id: GUILD_A,
            feature_id: feature.to_string(),
        };
        let due = Utc::now();
        let id = "0123456789abcdef0123456789abcdef";
        let first = store
            .schedule_job_as(id, &scope("probe"), "answer", "1 2", due, 10)
            .await
            .unwrap();
        // Work handled again schedules the same id: nothing new.
        let again = store
            .schedule_job_as(id, &scope("probe"), "answer", "1 2", due, 10)
            .await
            .unwrap();
        assert_eq!((first.as_str(), again.as_str()), (id, id), "{label}");
        let due_now = store.due_jobs(due, 10, 10).await.unwrap();
        assert_eq!(due_now.len(), 1, "{label}: one job");
        // Another feature cannot take that id over: it is refused, not merged.
        let other = store
            .schedule_job_as(id, &scope("other"), "answer", "1 2", due, 10)
            .await;
        assert!(other.is_err(), "{label}: {other:?}");
        assert_eq!(
            store.due_jobs(due, 10, 10).await.unwrap().len(),
            1,
            "{label}"
        );
    }
}
