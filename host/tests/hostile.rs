//! The hostile-feature suite: real components that misbehave, each asserting the
//! specific outcome, and that the host, other features and other guilds keep
//! working during and after.
//!
//! The components are built from `host/tests/guests/*` and `features/*` by
//! `cargo xtask build-guests` (which `cargo xtask test` runs first).

mod common;

use common::harness::*;

use sqlx::Connection;
use std::sync::Arc;
use std::time::{Duration, Instant};
use townes::capabilities::Effect;
use townes::discord::{LocalDiscord, LocalGuild};
use townes::grants::{Approval, CapabilitySet};
use townes::marketplace::Marketplace;
use townes::runtime::{
    InstallError, InvokeError, Limits, Outcome, Runtime, RuntimeConfig, TrapKind,
};
use townes::store::Guild;
use townes::wit::{Capability, CommandArgument, CommandInvocation, CommandSource, OptionValue};

/// hello works in a guild: the reply counts greetings per guild.
async fn assert_hello_works(h: &Harness, guild: u64) {
    let outcome = h.command(guild, "hello", "hello", vec![]).await;
    assert!(reply_text(&outcome).contains("ada"), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_interrupted_at_its_cpu_budget_while_other_guilds_keep_working() {
    let (h, _guard) = Harness::sqlite(Limits {
        cpu_ms: 300,
        ..limits()
    })
    .await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    h.install("hello", &[Capability::Messages, Capability::Storage])
        .await;

    let runtime = h.runtime.clone();
    let invoker = h.discord.member_of(GUILD_A, 42).unwrap();
    let looping = tokio::spawn(async move {
        let invocation = CommandInvocation {
            source: CommandSource::Slash,
            name: "loop".into(),
            subcommand: None,
            arguments: vec![],
            invoker,
            channel_id: GUILD_A + 1,
        };
        let outcome = runtime.command(GUILD_A, &hostile, invocation, 0).await;
        (outcome, Instant::now())
    });
    // During the loop: the same feature set in another guild and another feature
    // in the same guild answer.
    tokio::time::sleep(Duration::from_millis(20)).await;
    for guild in [GUILD_B, GUILD_A] {
        assert_hello_works(&h, guild).await;
    }
    let others_done = Instant::now();
    let (outcome, loop_done) = looping.await.unwrap();
    assert_eq!(trap_kind(&outcome), TrapKind::CpuLimit);
    assert!(
        others_done < loop_done,
        "other invocations had to wait for the loop"
    );
    assert!(
        outcome.elapsed < Duration::from_millis(2_000),
        "interrupted by the wall clock, not the CPU budget: {:?}",
        outcome.elapsed
    );
    // After: the feature itself still works in both guilds.
    for guild in [GUILD_A, GUILD_B] {
        assert_eq!(
            reply_text(&h.command(guild, "hostile", "ok", vec![]).await),
            "ok"
        );
    }
}

#[tokio::test]
async fn unbounded_allocation_traps_at_the_memory_limit() {
    // Touching 16 MiB is real CPU (page faults, zeroing); on a loaded machine it
    // can pass 50 ms, and this test is about memory.
    let (h, _guard) = Harness::sqlite(Limits {
        cpu_ms: 1_000,
        ..limits()
    })
    .await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let outcome = h.command(GUILD_A, &hostile, "alloc", vec![]).await;
    assert_eq!(trap_kind(&outcome), TrapKind::MemoryLimit, "{outcome:?}");
    assert_eq!(
        reply_text(&h.command(GUILD_A, &hostile, "ok", vec![]).await),
        "ok"
    );
}

#[tokio::test]
async fn unbounded_recursion_traps_without_harming_the_host() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let outcome = h.command(GUILD_A, &hostile, "recurse", vec![]).await;
    let kind = trap_kind(&outcome);
    assert!(
        matches!(kind, TrapKind::StackOverflow | TrapKind::OutOfBounds),
        "{kind:?}"
    );
    assert_eq!(
        reply_text(&h.command(GUILD_B, &hostile, "ok", vec![]).await),
        "ok"
    );
}

#[tokio::test]
async fn a_panic_is_reported_with_its_message() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let outcome = h.command(GUILD_A, &hostile, "panic", vec![]).await;
    assert_eq!(trap_kind(&outcome), TrapKind::Panic);
    assert!(
        outcome.stdio.contains("hostile panic"),
        "stdio: {:?}",
        outcome.stdio
    );
}

#[tokio::test]
async fn capabilities_not_approved_are_denied_as_typed_errors() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let bob = vec![CommandArgument {
        name: "user".into(),
        value: OptionValue::User(43),
    }];
    let outcome = h.command(GUILD_A, &hostile, "kick", bob.clone()).await;
    assert_eq!(reply_text(&outcome), "kick: Denied(Moderation)");
    assert!(outcome.effects.iter().any(|e| matches!(
        e,
        Effect::Refused {
            call: "moderation.kick",
            ..
        }
    )));
    assert!(
        h.discord.member_of(GUILD_A, 43).is_some(),
        "bob was kicked without the grant"
    );

    // Approving it in guild B only lets it act there.
    let approval = Approval::of([
        Capability::Messages,
        Capability::Storage,
        Capability::Moderation,
    ]);
    Marketplace::new(&h.runtime, "test")
        .enable(GUILD_B, &hostile, Some("0.1.0"), approval)
        .await
        .unwrap();
    assert_eq!(
        reply_text(&h.command(GUILD_B, &hostile, "kick", bob.clone()).await),
        "kick: ok"
    );
    assert!(h.discord.member_of(GUILD_B, 43).is_none());
    assert_eq!(
        reply_text(&h.command(GUILD_A, &hostile, "kick", bob).await),
        "kick: Denied(Moderation)"
    );
}

#[tokio::test]
async fn the_plan_caps_what_an_admin_can_approve() {
    let plan = Limits {
        capabilities: [Capability::Messages, Capability::Storage]
            .into_iter()
            .collect::<CapabilitySet>(),
        ..limits()
    };
    let (h, _guard) = Harness::sqlite(plan).await;
    let hostile = h
        .install(
            "hostile",
            &[
                Capability::Messages,
                Capability::Storage,
                Capability::Moderation,
            ],
        )
        .await;
    let outcome = h.command(GUILD_A, &hostile, "kick", vec![]).await;
    assert_eq!(reply_text(&outcome), "kick: Denied(Moderation)");
}

#[tokio::test]
async fn roles_above_the_ceiling_or_carrying_administrator_are_denied() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h
        .install(
            "hostile",
            &[Capability::Messages, Capability::Storage, Capability::Roles],
        )
        .await;
    let role = |id: u64| {
        vec![CommandArgument {
            name: "role".into(),
            value: OptionValue::Role(id),
        }]
    };
    let (member_role, bot_role, admin_role) = (GUILD_A + 2, GUILD_A + 10, GUILD_A + 20);
    assert_eq!(
        reply_text(&h.command(GUILD_A, &hostile, "role", role(admin_role)).await),
        "role: Denied(Roles)"
    );
    assert_eq!(
        reply_text(&h.command(GUILD_A, &hostile, "role", role(bot_role)).await),
        "role: Denied(Roles)"
    );
    assert_eq!(
        reply_text(&h.command(GUILD_A, &hostile, "role", role(GUILD_A)).await),
        "role: Denied(Roles)",
        "@everyone"
    );

    // A role below the bot, carrying Administrator, is still refused.
    let sneaky = GUILD_A + 5;
    h.discord.with_guild(GUILD_A, |g| {
        g.roles.push(townes::discord::Role {
            id: sneaky,
            name: "Sneaky".into(),
            position: 3,
            permissions: townes::discord::permissions::ADMINISTRATOR,
        })
    });
    assert_eq!(
        reply_text(&h.command(GUILD_A, &hostile, "role", role(sneaky)).await),
        "role: Denied(Roles)"
    );

    // A role below the bot and without Administrator is granted…
    h.discord
        .with_guild(GUILD_A, |g| g.members.get_mut(&42).unwrap().roles.clear());
    assert_eq!(
        reply_text(
            &h.command(GUILD_A, &hostile, "role", role(member_role))
                .await
        ),
        "role: ok"
    );
    assert!(
        h.discord
            .member_of(GUILD_A, 42)
            .unwrap()
            .roles
            .contains(&member_role)
    );

    // …unless the admin set a ceiling at or below it.
    let approval = Approval {
        role_ceiling: Some(member_role),
        ..Approval::of([Capability::Messages, Capability::Storage, Capability::Roles])
    };
    Marketplace::new(&h.runtime, "test")
        .enable(GUILD_A, &hostile, Some("0.1.0"), approval)
        .await
        .unwrap();
    assert_eq!(
        reply_text(
            &h.command(GUILD_A, &hostile, "role", role(member_role))
                .await
        ),
        "role: Denied(Roles)"
    );
}

#[tokio::test]
async fn storage_stops_at_the_quota_on_both_backends() {
    for (label, store, _guard) in common::each_backend().await {
        let h = Harness::new(
            store,
            Limits {
                storage_bytes: 10_000,
                storage_rows: 100,
                ..limits()
            },
        )
        .await;
        let hostile = h.install("hostile", HOSTILE_CAPS).await;
        let text = reply_text(&h.command(GUILD_A, &hostile, "fill", vec![]).await);
        // Each entry is a 6-byte key plus a 1024-byte value: nine fit in 10,000 bytes.
        assert!(
            text.starts_with("fill: stopped at 9 with QuotaExceeded("),
            "{label}: {text}"
        );
        let usage = h
            .store
            .storage_usage(&townes::store::Scope {
                guild_id: GUILD_A,
                feature_id: hostile.clone(),
            })
            .await
            .unwrap();
        // Plus what `migrate` wrote on the first enable: `migrated-from` = "".
        let marker = "migrated-from".len() as u64;
        assert_eq!(
            (usage.bytes, usage.rows),
            (9 * 1030 + marker, 10),
            "{label}"
        );
        // Another guild's quota is its own.
        let other = reply_text(&h.command(GUILD_B, &hostile, "fill", vec![]).await);
        assert!(other.starts_with("fill: stopped at 9 "), "{label}: {other}");
    }
}

#[tokio::test]
async fn host_calls_stop_at_the_per_invocation_budget() {
    // A generous CPU budget: this test is about the host-call budget, and a
    // storage call that spans an epoch tick is charged one tick of CPU (on a
    // loaded machine, 100 SQLite writes can spend a 50 ms budget).
    let (h, _guard) = Harness::sqlite(Limits {
        host_calls: 100,
        cpu_ms: 2_000,
        wall_ms: 10_000,
        ..limits()
    })
    .await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let text = reply_text(&h.command(GUILD_A, &hostile, "spam", vec![]).await);
    assert!(
        text.starts_with("spam: 100 calls then QuotaExceeded("),
        "{text}"
    );
    // The budget is per invocation: the next one starts afresh.
    let again = reply_text(&h.command(GUILD_A, &hostile, "spam", vec![]).await);
    assert!(again.starts_with("spam: 100 calls then"), "{again}");
}

#[tokio::test]
async fn an_oversized_reply_is_rejected_with_the_reason() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    match h
        .command(GUILD_A, &hostile, "oversized", vec![])
        .await
        .result
    {
        Err(InvokeError::InvalidReply(why)) => assert!(
            why.contains("message content is 5000 characters; at most 2000 allowed"),
            "{why}"
        ),
        other => panic!("expected InvalidReply, got {other:?}"),
    }
}

fn sent_contents(outcome: &Outcome) -> Vec<String> {
    common::sent_texts(&outcome.effects)
}

#[tokio::test]
async fn message_content_is_emptied_without_its_grant() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let ada = h.discord.member_of(GUILD_A, 42).unwrap();
    let outcomes = h
        .runtime
        .dispatch_event(GUILD_A, &message(GUILD_A, "secret plans", ada.clone()))
        .await
        .unwrap();
    assert_eq!(sent_contents(&outcomes[0]), ["echo:[]"]);

    let approval = Approval::of([
        Capability::Messages,
        Capability::Storage,
        Capability::MessageContent,
    ]);
    Marketplace::new(&h.runtime, "test")
        .enable(GUILD_A, &hostile, Some("0.1.0"), approval)
        .await
        .unwrap();
    let outcomes = h
        .runtime
        .dispatch_event(GUILD_A, &message(GUILD_A, "secret plans", ada))
        .await
        .unwrap();
    assert_eq!(sent_contents(&outcomes[0]), ["echo:[secret plans]"]);
}

#[tokio::test]
async fn the_channel_allow_list_scopes_messages() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let approval = Approval {
        channels: Some(vec![GUILD_A + 99]),
        ..Approval::of(HOSTILE_CAPS.iter().copied())
    };
    Marketplace::new(&h.runtime, "test")
        .enable(GUILD_A, &hostile, Some("0.1.0"), approval)
        .await
        .unwrap();
    let ada = h.discord.member_of(GUILD_A, 42).unwrap();
    let outcome = h
        .runtime
        .dispatch_event(GUILD_A, &message(GUILD_A, "hi", ada))
        .await
        .unwrap()
        .remove(0);
    assert!(
        matches!(
            outcome.result,
            Err(InvokeError::Feature(townes::wit::Error::Denied(
                Capability::Messages
            )))
        ),
        "{:?}",
        outcome.result
    );
    assert!(sent_contents(&outcome).is_empty());
}

/// Waiting on Discord (a slow or rate-limiting Discord) is not the feature's
/// fault: it does not count against the wall clock, which the executor's own
/// bound replaces for those waits.
#[tokio::test]
async fn waiting_on_discord_does_not_count_against_the_wall_clock() {
    let (h, _guard) = Harness::sqlite(Limits {
        wall_ms: 300,
        ..limits()
    })
    .await;
    h.install("hostile", HOSTILE_CAPS).await;
    h.discord.set_latency(Duration::from_millis(600));
    let ada = h.discord.member_of(GUILD_A, 42).unwrap();
    let started = Instant::now();
    let outcome = h
        .runtime
        .dispatch_event(GUILD_A, &message(GUILD_A, "hi", ada))
        .await
        .unwrap()
        .remove(0);
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert!(!sent_contents(&outcome).is_empty(), "the message went out");
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn repeated_faults_trip_the_breaker_for_that_guild_only_and_are_audited() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    for _ in 0..3 {
        assert_eq!(
            trap_kind(&h.command(GUILD_A, &hostile, "panic", vec![]).await),
            TrapKind::Panic
        );
    }
    let outcome = h.command(GUILD_A, &hostile, "ok", vec![]).await;
    assert!(
        matches!(outcome.result, Err(InvokeError::BreakerOpen { .. })),
        "{:?}",
        outcome.result
    );
    assert_eq!(
        reply_text(&h.command(GUILD_B, &hostile, "ok", vec![]).await),
        "ok",
        "guild B is unaffected"
    );

    let row = h
        .store
        .guild_feature(GUILD_A, &hostile)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.breaker_strikes, 3);
    let until = row.breaker_open_until.expect("breaker open");
    assert!(until > chrono::Utc::now() + chrono::Duration::seconds(50));
    let audit = h.store.audit_entries(GUILD_A, 10).await.unwrap();
    let paused = audit
        .iter()
        .find(|e| e.action == "feature.paused")
        .expect("audit entry");
    assert_eq!(paused.feature_id.as_deref(), Some(hostile.as_str()));
    assert!(
        paused.details["reason"].as_str().unwrap().contains("panic"),
        "{}",
        paused.details
    );
}

#[tokio::test]
async fn a_success_clears_strikes_below_the_threshold() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    for _ in 0..2 {
        h.command(GUILD_A, &hostile, "panic", vec![]).await;
    }
    assert_eq!(
        reply_text(&h.command(GUILD_A, &hostile, "ok", vec![]).await),
        "ok"
    );
    assert_eq!(
        h.store
            .guild_feature(GUILD_A, &hostile)
            .await
            .unwrap()
            .unwrap()
            .breaker_strikes,
        0
    );
    h.command(GUILD_A, &hostile, "panic", vec![]).await;
    assert_eq!(
        reply_text(&h.command(GUILD_A, &hostile, "ok", vec![]).await),
        "ok",
        "one fault after a success does not trip"
    );
}

#[tokio::test]
async fn install_rejects_components_that_break_the_contract() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    match h.runtime.install(&common::component("undeclared")).await {
        Err(InstallError::Undeclared(capability)) => assert_eq!(capability, "moderation"),
        other => panic!("expected Undeclared, got {:?}", other.map(|(v, _)| v)),
    }
    let err = h
        .runtime
        .install(&common::component("wrong_world"))
        .await
        .map(|(v, _)| v)
        .unwrap_err();
    assert!(
        matches!(&err, InstallError::WrongWorld { found } if found == "townes:feature@1.0.0"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("this host speaks townes:feature@0.1.x"),
        "{err}"
    );
    let err = h
        .runtime
        .install(b"definitely not wasm")
        .await
        .map(|(v, _)| v)
        .unwrap_err();
    assert!(matches!(err, InstallError::NotAComponent(_)), "{err}");
    // A core module is not a component.
    let err = h
        .runtime
        .install(b"\0asm\x01\0\0\0")
        .await
        .map(|(v, _)| v)
        .unwrap_err();
    assert!(matches!(err, InstallError::NotAComponent(_)), "{err}");
    assert!(
        h.store.feature_versions().await.unwrap().is_empty(),
        "nothing rejected reaches the catalogue"
    );
}

#[tokio::test]
async fn install_rejects_oversized_components() {
    let data = tempfile::tempdir().unwrap();
    let (_, store, _guard) = common::sqlite().await;
    let mut config = RuntimeConfig::new(data.path());
    config.max_component_bytes = 1024;
    config.pool_instances = 8;
    let runtime = Runtime::new(config, store, Arc::new(LocalDiscord::new())).unwrap();
    let err = runtime
        .install(&common::component("hello"))
        .await
        .map(|(v, _)| v)
        .unwrap_err();
    assert!(
        matches!(err, InstallError::TooLarge { max: 1024, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn installed_components_are_cached_precompiled_and_survive_a_restart() {
    let (_, store, _guard) = common::sqlite().await;
    store
        .upsert_guild(&Guild::new(GUILD_A, "A", 1))
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let discord = Arc::new(LocalDiscord::new());
    let mut guild = LocalGuild::new(GUILD_A, "A");
    guild.add_member(42, "ada", vec![]);
    discord.add_guild(guild);
    let config = || {
        let mut c = RuntimeConfig::new(data.path());
        c.pool_instances = 8;
        c
    };
    {
        let runtime = Runtime::new(config(), store.clone(), discord.clone()).unwrap();
        let (version, _) = runtime.install(&common::component("hello")).await.unwrap();
        // Installing identical bytes again is a no-op.
        runtime.install(&common::component("hello")).await.unwrap();
        let approval = Approval::of([Capability::Messages, Capability::Storage]);
        Marketplace::new(&runtime, "test")
            .enable(GUILD_A, "hello", Some(&version.version), approval)
            .await
            .unwrap();
        let files: Vec<_> = std::fs::read_dir(data.path().join("components"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            files
                .iter()
                .any(|f| f == &format!("{}.wasm", version.sha256)),
            "{files:?}"
        );
        assert!(
            files
                .iter()
                .any(|f| f.starts_with(&version.sha256) && f.ends_with(".cwasm")),
            "{files:?}"
        );
    }
    let runtime = Runtime::new(config(), store, discord.clone()).unwrap();
    let invoker = discord.member_of(GUILD_A, 42).unwrap();
    let outcome = runtime
        .command(
            GUILD_A,
            "hello",
            CommandInvocation {
                source: CommandSource::Slash,
                name: "hello".into(),
                subcommand: None,
                arguments: vec![],
                invoker,
                channel_id: GUILD_A + 1,
            },
            0,
        )
        .await;
    assert!(reply_text(&outcome).contains("ada"));
}

#[tokio::test]
async fn a_disabled_or_unknown_feature_does_not_run() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let outcome = h.command(GUILD_A, "hostile", "ok", vec![]).await;
    assert!(
        matches!(outcome.result, Err(InvokeError::NotEnabled(_))),
        "{:?}",
        outcome.result
    );
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let mut row = h
        .store
        .guild_feature(GUILD_A, &hostile)
        .await
        .unwrap()
        .unwrap();
    row.enabled = false;
    h.store.upsert_guild_feature(&row).await.unwrap();
    assert!(matches!(
        h.command(GUILD_A, &hostile, "ok", vec![]).await.result,
        Err(InvokeError::NotEnabled(_))
    ));
    let ada = h.discord.member_of(GUILD_A, 42).unwrap();
    assert!(
        h.runtime
            .dispatch_event(GUILD_A, &message(GUILD_A, "hi", ada))
            .await
            .unwrap()
            .is_empty(),
        "toggled off takes effect on the next event"
    );
}

#[tokio::test]
async fn enabling_requires_every_required_capability() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let (version, _) = h
        .runtime
        .install(&common::component("hostile"))
        .await
        .unwrap();
    let approval = Approval::of([Capability::Messages]);
    let err = Marketplace::new(&h.runtime, "test")
        .enable(GUILD_A, "hostile", Some(&version.version), approval.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("requires storage"), "{err}");
    let err = Marketplace::new(&h.runtime, "test")
        .enable(999, "hostile", Some(&version.version), approval)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("guild 999 is not known"), "{err}");
}

#[tokio::test]
async fn scheduled_jobs_run_once_when_due_and_survive_a_restart() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h
        .install(
            "hostile",
            &[
                Capability::Messages,
                Capability::Storage,
                Capability::Scheduler,
            ],
        )
        .await;
    let text = reply_text(&h.command(GUILD_A, &hostile, "schedule", vec![]).await);
    assert!(
        text.starts_with("schedule: ") && !text.contains("Denied"),
        "{text}"
    );
    // Without the grant in guild B, scheduling is refused.
    let approval = Approval::of(HOSTILE_CAPS.iter().copied());
    Marketplace::new(&h.runtime, "test")
        .enable(GUILD_B, &hostile, Some("0.1.0"), approval)
        .await
        .unwrap();
    assert_eq!(
        reply_text(&h.command(GUILD_B, &hostile, "schedule", vec![]).await),
        "schedule: Denied(Scheduler)"
    );

    // A new runtime over the same store (a restart) runs the job, once.
    let runtime = h.restarted();
    let outcomes = runtime
        .run_due_jobs(chrono::Utc::now() + chrono::Duration::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(sent_contents(&outcomes[0]), ["job:ping"]);
    assert!(
        runtime
            .run_due_jobs(chrono::Utc::now() + chrono::Duration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn migrate_runs_the_features_own_upgrade_step() {
    let (h, _guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    let outcome = h.runtime.migrate(GUILD_A, &hostile, "0.0.9").await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(
        outcome.effects,
        [Effect::StorageSet {
            key: "migrated-from".into(),
            bytes: 5
        }]
    );
}

#[tokio::test]
async fn scheduled_jobs_are_quota_d_and_a_paused_features_job_is_retried_not_dropped() {
    let (h, _guard) = Harness::sqlite(Limits {
        pending_jobs: 2,
        ..limits()
    })
    .await;
    let caps = [
        Capability::Messages,
        Capability::Storage,
        Capability::Scheduler,
    ];
    let hostile = h.install("hostile", &caps).await;
    for _ in 0..2 {
        let text = reply_text(&h.command(GUILD_A, &hostile, "schedule", vec![]).await);
        assert!(!text.contains("QuotaExceeded"), "{text}");
    }
    assert!(
        reply_text(&h.command(GUILD_A, &hostile, "schedule", vec![]).await)
            .starts_with("schedule: QuotaExceeded(\"scheduled jobs: 2 pending"),
    );
    // Another guild has its own quota.
    assert!(
        !reply_text(&h.command(GUILD_B, &hostile, "schedule", vec![]).await)
            .contains("QuotaExceeded")
    );

    // Guild A's feature is paused by its breaker: its jobs wait, guild B's runs.
    for _ in 0..3 {
        h.command(GUILD_A, &hostile, "panic", vec![]).await;
    }
    let soon = chrono::Utc::now() + chrono::Duration::seconds(2);
    let outcomes = h.runtime.run_due_jobs(soon, 10).await.unwrap();
    let paused = outcomes
        .iter()
        .filter(|o| matches!(o.result, Err(InvokeError::BreakerOpen { .. })))
        .count();
    let ran: Vec<_> = outcomes.iter().filter(|o| o.result.is_ok()).collect();
    assert_eq!((paused, ran.len()), (2, 1), "{outcomes:?}");
    assert_eq!(common::sent_texts(&ran[0].effects), ["job:ping"]);
    assert!(h.runtime.run_due_jobs(soon, 10).await.unwrap().is_empty());
    let row = h
        .store
        .guild_feature(GUILD_A, &hostile)
        .await
        .unwrap()
        .unwrap();
    let after_pause = row.breaker_open_until.unwrap() + chrono::Duration::seconds(1);
    let waiting = h.store.due_jobs(after_pause, 10, 10).await.unwrap();
    assert_eq!(waiting.len(), 2, "the paused feature's jobs were dropped");
    assert!(
        waiting
            .iter()
            .all(|j| j.attempts == 1 && j.scope.guild_id == GUILD_A)
    );
}

#[tokio::test]
async fn dangerous_permissions_and_channels_off_the_allow_list_are_refused() {
    use townes::discord::permissions::{BAN_MEMBERS, MANAGE_GUILD, SEND_MESSAGES};
    let (h, _guard) = Harness::sqlite(limits()).await;
    let caps = [
        Capability::Messages,
        Capability::Storage,
        Capability::Roles,
        Capability::Channels,
        Capability::Moderation,
    ];
    let hostile = h.install("hostile", &caps).await;
    let arg = |name: &str, value: OptionValue| CommandArgument {
        name: name.into(),
        value,
    };
    // A role below the bot carrying Manage Server would make ada a dashboard
    // manager: refused unless the admin allows that bit for this feature.
    let managers = GUILD_A + 6;
    h.discord.with_guild(GUILD_A, |g| {
        g.roles.push(townes::discord::Role {
            id: managers,
            name: "Managers".into(),
            position: 2,
            permissions: MANAGE_GUILD,
        })
    });
    let give = vec![arg("role", OptionValue::Role(managers))];
    assert_eq!(
        reply_text(&h.command(GUILD_A, &hostile, "role", give.clone()).await),
        "role: Denied(Roles)"
    );
    let overwrite = |bits: u64| {
        vec![
            arg("channel", OptionValue::Channel(GUILD_A + 1)),
            arg("allow", OptionValue::Integer(bits as i64)),
        ]
    };
    assert_eq!(
        reply_text(
            &h.command(GUILD_A, &hostile, "overwrite", overwrite(BAN_MEMBERS))
                .await
        ),
        "overwrite: Denied(Channels)"
    );
    assert_eq!(
        reply_text(
            &h.command(GUILD_A, &hostile, "overwrite", overwrite(SEND_MESSAGES))
                .await
        ),
        "overwrite: ok"
    );

    // The admin allows Manage Server and limits the feature to channel A+1.
    let approval = Approval {
        channels: Some(vec![GUILD_A + 1]),
        elevated_permissions: MANAGE_GUILD,
        ..Approval::of(caps)
    };
    Marketplace::new(&h.runtime, "test")
        .enable(GUILD_A, &hostile, None, approval)
        .await
        .unwrap();
    assert_eq!(
        reply_text(&h.command(GUILD_A, &hostile, "role", give).await),
        "role: ok"
    );
    let elsewhere = GUILD_A + 99;
    let purge = |channel: u64| vec![arg("channel", OptionValue::Channel(channel))];
    assert_eq!(
        reply_text(
            &h.command(GUILD_A, &hostile, "purge", purge(elsewhere))
                .await
        ),
        "purge: Denied(Moderation)"
    );
    let mut off_list = overwrite(SEND_MESSAGES);
    off_list[0] = arg("channel", OptionValue::Channel(elsewhere));
    assert_eq!(
        reply_text(&h.command(GUILD_A, &hostile, "overwrite", off_list).await),
        "overwrite: Denied(Channels)"
    );
}

#[tokio::test]
async fn a_feature_that_fails_to_load_never_stops_the_others() {
    let (h, guard) = Harness::sqlite(limits()).await;
    let hostile = h.install("hostile", HOSTILE_CAPS).await;
    h.install("xp", &[Capability::Storage, Capability::Messages])
        .await;
    let broken = h
        .store
        .feature_version(&hostile, "0.1.0")
        .await
        .unwrap()
        .unwrap();
    // The component's cached files vanish (a disk error, a bad restore)…
    for entry in std::fs::read_dir(h.data.path().join("components")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&broken.sha256)
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    // And so does the database's copy (since migration 0016 every process
    // reloads a missing file from there).
    let mut db = sqlx::SqliteConnection::connect(guard.url()).await.unwrap();
    sqlx::query("DELETE FROM component_blobs WHERE sha256 = $1")
        .bind(&broken.sha256)
        .execute(&mut db)
        .await
        .unwrap();
    // A restarted runtime: its manifest is still the stored one, and an event
    // reaches xp while hostile reports the host's failure to load it.
    let runtime = h.restarted();
    assert_eq!(
        runtime.manifest(&hostile, "0.1.0").await.unwrap().id,
        hostile
    );
    let ada = h.discord.member_of(GUILD_A, 42).unwrap();
    let outcomes = runtime
        .dispatch_event(GUILD_A, &message(GUILD_A, "hello there", ada))
        .await
        .unwrap();
    let result_of = |id: &str| &outcomes.iter().find(|o| o.feature_id == id).unwrap().result;
    assert!(
        matches!(result_of(&hostile), Err(InvokeError::Host(_))),
        "{outcomes:?}"
    );
    assert!(result_of("xp").is_ok(), "{outcomes:?}");
    let row = h
        .store
        .guild_feature(GUILD_A, &hostile)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.breaker_strikes, 0,
        "the host's failure is not the feature's fault"
    );
}
