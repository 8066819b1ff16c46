//! Marketplace operations on both backends: every operation, its rejections,
//! config validation, upgrade with `migrate`, a failed upgrade, rollback, the
//! lifecycle hooks of contract 0.1.1, and a component frozen at 0.1.0.

mod common;

use std::sync::Arc;
use townes::discord::{LocalDiscord, LocalGuild};
use townes::grants::Approval;
use townes::marketplace::{MarketError, Marketplace, Publisher};
use townes::runtime::{InstallError, InvokeError, Outcome, Runtime, RuntimeConfig};
use townes::store::{Guild, Scope, Store};
use townes::wit::{Capability, CommandInvocation, CommandSource, Reply};

const GUILD: u64 = 1000;
const OTHER: u64 = 2000;

async fn runtime(store: Store, data: &std::path::Path) -> (Runtime, Arc<LocalDiscord>) {
    let discord = Arc::new(LocalDiscord::new());
    for id in [GUILD, OTHER] {
        let mut guild = LocalGuild::new(id, "G");
        guild.add_member(42, "ada", vec![]);
        discord.add_guild(guild);
        store.upsert_guild(&Guild::new(id, "G", 1)).await.unwrap();
    }
    let runtime = Runtime::new(
        RuntimeConfig {
            pool_instances: 8,
            ..RuntimeConfig::new(data)
        },
        store,
        discord.clone(),
    )
    .unwrap();
    (runtime, discord)
}

async fn hello(runtime: &Runtime, discord: &LocalDiscord, guild: u64) -> Outcome {
    let invoker = discord.member_of(guild, 42).unwrap();
    let invocation = CommandInvocation {
        name: "hello".into(),
        source: CommandSource::Slash,
        subcommand: None,
        arguments: vec![],
        invoker,
        channel_id: guild + 1,
    };
    runtime.command(guild, "hello", invocation, 0).await
}

fn text(outcome: &Outcome) -> String {
    match &outcome.result {
        Ok(Some(Reply { body, .. })) => body.content.clone().unwrap_or_default(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn both() -> Approval {
    Approval::of([Capability::Messages, Capability::Storage])
}

#[tokio::test]
async fn install_enable_configure_disable_with_every_rejection() {
    for (label, store, _guard) in common::each_backend().await {
        let data = tempfile::tempdir().unwrap();
        let (runtime, discord) = runtime(store.clone(), data.path()).await;
        let market = Marketplace::new(&runtime, "test");

        // Install: rejections name the problem; nothing rejected reaches the catalogue.
        assert!(
            matches!(
                market
                    .install(
                        &common::component("undeclared"),
                        &Publisher::Named("someone".into())
                    )
                    .await,
                Err(MarketError::Install(InstallError::Undeclared(_)))
            ),
            "{label}"
        );
        assert!(
            matches!(
                market
                    .install(
                        &common::component("wrong_world"),
                        &Publisher::Named("someone".into())
                    )
                    .await,
                Err(MarketError::Install(InstallError::WrongWorld { .. }))
            ),
            "{label}"
        );
        assert!(market.catalogue().await.unwrap().is_empty(), "{label}");
        market
            .install(&common::component("hello"), &Publisher::Platform)
            .await
            .unwrap();
        let catalogue = market.catalogue().await.unwrap();
        assert_eq!(catalogue.len(), 1, "{label}");
        assert!(
            catalogue[0].feature.builtin && catalogue[0].versions[0].version == "0.1.0",
            "{label}"
        );

        // Enable: each rejection, then success.
        let err = market
            .enable(GUILD, "nope", None, both())
            .await
            .unwrap_err();
        assert!(
            matches!(err, MarketError::UnknownFeature(_)),
            "{label}: {err}"
        );
        let err = market
            .enable(GUILD, "hello", Some("9.9.9"), both())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("has no version 9.9.9; installed: 0.1.0"),
            "{label}: {err}"
        );
        let err = market.enable(777, "hello", None, both()).await.unwrap_err();
        assert!(
            matches!(err, MarketError::UnknownGuild(777)),
            "{label}: {err}"
        );
        let only_messages = Approval::of([Capability::Messages]);
        let err = market
            .enable(GUILD, "hello", None, only_messages)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`hello` requires storage — approve it to enable it",
            "{label}"
        );
        let too_much = Approval::of([
            Capability::Messages,
            Capability::Storage,
            Capability::Moderation,
        ]);
        let err = market
            .enable(GUILD, "hello", None, too_much)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("does not request moderation"),
            "{label}: {err}"
        );
        market.enable(GUILD, "hello", None, both()).await.unwrap();
        assert_eq!(
            text(&hello(&runtime, &discord, GUILD).await),
            "Hello, ada! (greeting #1 in this server)",
            "{label}"
        );

        // Approvals: a required capability cannot be withdrawn while enabled.
        assert!(
            matches!(
                market.approve(GUILD, "hello", Approval::default()).await,
                Err(MarketError::MissingRequired { .. })
            ),
            "{label}"
        );
        assert!(
            matches!(
                market.approve(OTHER, "hello", both()).await,
                Err(MarketError::NotInGuild { .. })
            ),
            "{label}"
        );

        // Config: validated against the schema, errors name the path.
        let err = market
            .set_config(
                GUILD,
                "hello",
                serde_json::json!({"greeting": 5, "colour": "red"}),
            )
            .await
            .unwrap_err();
        let MarketError::InvalidConfig { problems, .. } = &err else {
            panic!("{label}: {err}")
        };
        assert!(
            problems.iter().any(|p| p.path == "/greeting"),
            "{label}: {problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.message.contains("colour")),
            "{label}: {problems:?}"
        );
        market
            .set_config(
                GUILD,
                "hello",
                serde_json::json!({"greeting": "Ahoy", "welcome_channel": null}),
            )
            .await
            .unwrap();
        assert_eq!(
            text(&hello(&runtime, &discord, GUILD).await),
            "Ahoy, ada! (greeting #2 in this server)",
            "{label}"
        );

        // Disable: the next invocation does not run, its queued Discord calls are
        // dropped (not another feature's); enabling again keeps the config.
        let call = serde_json::json!({ "kind": "send_message" });
        for feature in ["hello", "other"] {
            store
                .outbox_insert(None, 7, Some((GUILD, feature)), &call, |_| {})
                .await
                .unwrap();
        }
        market.disable(GUILD, "hello").await.unwrap();
        let left = store.outbox_pending(10).await.unwrap();
        assert_eq!(left.len(), 1, "{label}");
        assert_eq!(left[0].feature_id.as_deref(), Some("other"), "{label}");
        assert!(
            matches!(
                hello(&runtime, &discord, GUILD).await.result,
                Err(InvokeError::NotEnabled(_))
            ),
            "{label}"
        );
        market.enable(GUILD, "hello", None, both()).await.unwrap();
        assert!(
            text(&hello(&runtime, &discord, GUILD).await).starts_with("Ahoy"),
            "{label}"
        );

        // Every change is audited with its actor, newest first.
        let actions: Vec<_> = store
            .audit_entries(GUILD, 20)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.actor == "test")
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            [
                "feature.enabled",
                "feature.disabled",
                "feature.config_changed",
                "feature.enabled"
            ],
            "{label}"
        );
    }
}

#[tokio::test]
async fn upgrade_runs_migrate_a_failed_migrate_changes_nothing_and_rollback_returns() {
    for (label, store, _guard) in common::each_backend().await {
        let data = tempfile::tempdir().unwrap();
        let (runtime, discord) = runtime(store.clone(), data.path()).await;
        let market = Marketplace::new(&runtime, "test");
        market
            .install(&common::component("hello"), &Publisher::Platform)
            .await
            .unwrap();
        for guild in [GUILD, OTHER] {
            market
                .enable(guild, "hello", Some("0.1.0"), both())
                .await
                .unwrap();
        }
        market
            .install(&common::component("hello_next"), &Publisher::Platform)
            .await
            .unwrap();
        let versions: Vec<_> = market.catalogue().await.unwrap()[0]
            .versions
            .iter()
            .map(|v| v.version.clone())
            .collect();
        assert_eq!(versions, ["0.2.0", "0.1.0"], "{label}: newest first");

        // GUILD upgrades: migrate runs in that guild with the old version.
        let upgraded = market.upgrade(GUILD, "hello", "0.2.0").await.unwrap();
        assert_eq!(
            (
                upgraded.version.as_str(),
                upgraded.previous_version.as_deref()
            ),
            ("0.2.0", Some("0.1.0")),
            "{label}"
        );
        assert_eq!(
            text(&hello(&runtime, &discord, GUILD).await),
            "Hello v2, ada!",
            "{label}"
        );
        let scope = Scope {
            guild_id: GUILD,
            feature_id: "hello".into(),
        };
        assert_eq!(
            store
                .kv_get(&scope, "migrated-from")
                .await
                .unwrap()
                .as_deref(),
            Some("0.1.0"),
            "{label}"
        );
        assert_eq!(
            text(&hello(&runtime, &discord, OTHER).await),
            "Hello, ada! (greeting #1 in this server)",
            "{label}: other guilds stay"
        );
        assert!(
            matches!(
                market.upgrade(GUILD, "hello", "0.2.0").await,
                Err(MarketError::SameVersion { .. })
            ),
            "{label}"
        );

        // OTHER has 13 greetings, which hello 0.2.0's migrate refuses: it stays on 0.1.0.
        for _ in 1..13 {
            hello(&runtime, &discord, OTHER).await;
        }
        let err = market.upgrade(OTHER, "hello", "0.2.0").await.unwrap_err();
        assert!(
            matches!(&err, MarketError::MigrateFailed { from, .. } if from == "0.1.0"),
            "{label}: {err}"
        );
        assert!(err.to_string().contains("13 greetings"), "{label}: {err}");
        let row = store.guild_feature(OTHER, "hello").await.unwrap().unwrap();
        assert_eq!(
            (row.version.as_str(), row.previous_version),
            ("0.1.0", None),
            "{label}"
        );
        assert!(
            text(&hello(&runtime, &discord, OTHER).await).starts_with("Hello, ada!"),
            "{label}"
        );

        // Rollback: one step back, then nothing more to roll back to.
        let back = market.rollback(GUILD, "hello").await.unwrap();
        assert_eq!(back.version, "0.1.0", "{label}");
        assert!(
            text(&hello(&runtime, &discord, GUILD).await).starts_with("Hello, ada!"),
            "{label}"
        );
        assert!(
            matches!(
                market.rollback(GUILD, "hello").await,
                Err(MarketError::NothingToRollBack { .. })
            ),
            "{label}"
        );

        let actions: Vec<_> = store
            .audit_entries(GUILD, 5)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            &actions[..2],
            ["feature.rolled_back", "feature.upgraded"],
            "{label}"
        );
        let failed = store.audit_entries(OTHER, 1).await.unwrap().remove(0);
        assert_eq!(failed.action, "feature.upgrade_failed", "{label}");
    }
}

/// A disable racing a configuration save (and an approval) is never undone by
/// it, and the saved configuration is never lost to the disable: each write
/// changes only what it is about. Both used to write back the whole row they
/// had read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disable_is_never_undone_by_a_concurrent_config_save() {
    const ROUNDS: usize = 40;
    for (label, store, _guard) in common::each_backend().await {
        let data = tempfile::tempdir().unwrap();
        let (runtime, _discord) = runtime(store.clone(), data.path()).await;
        let runtime = Arc::new(runtime);
        Marketplace::new(&runtime, "test")
            .install(&common::component("hello"), &Publisher::Platform)
            .await
            .unwrap();
        for round in 0..ROUNDS {
            Marketplace::new(&runtime, "test")
                .enable(GUILD, "hello", None, both())
                .await
                .unwrap();
            let config =
                serde_json::json!({"greeting": format!("Hi #{round}"), "welcome_channel": null});
            let disable = tokio::spawn({
                let runtime = runtime.clone();
                async move {
                    Marketplace::new(&runtime, "a")
                        .disable(GUILD, "hello")
                        .await
                }
            });
            let save = tokio::spawn({
                let (runtime, config) = (runtime.clone(), config.clone());
                async move {
                    Marketplace::new(&runtime, "b")
                        .set_config(GUILD, "hello", config)
                        .await
                }
            });
            let approve = tokio::spawn({
                let runtime = runtime.clone();
                async move {
                    Marketplace::new(&runtime, "c")
                        .approve(GUILD, "hello", both())
                        .await
                }
            });
            disable.await.unwrap().unwrap();
            save.await.unwrap().unwrap();
            approve.await.unwrap().unwrap();
            let gf = store.guild_feature(GUILD, "hello").await.unwrap().unwrap();
            assert!(
                !gf.enabled,
                "{label}: round {round}: the disable was undone"
            );
            assert_eq!(
                gf.config,
                Some(config),
                "{label}: round {round}: the configuration was lost"
            );
        }
    }
}

/// Writes validated against what they read only land on the row they read: a
/// stale one is refused and changes nothing, so the marketplace reads, checks
/// and writes again. Toggles touch `enabled` alone.
#[tokio::test]
async fn guild_feature_writes_compare_revisions_and_toggles_touch_only_enabled() {
    for (label, store, _guard) in common::each_backend().await {
        let data = tempfile::tempdir().unwrap();
        let (runtime, _discord) = runtime(store.clone(), data.path()).await;
        let market = Marketplace::new(&runtime, "test");
        market
            .install(&common::component("hello"), &Publisher::Platform)
            .await
            .unwrap();
        let enabled = market.enable(GUILD, "hello", None, both()).await.unwrap();
        let read = store.guild_feature(GUILD, "hello").await.unwrap().unwrap();
        assert_eq!(read, enabled, "{label}");

        let configured = townes::store::GuildFeature {
            config: Some(serde_json::json!({"greeting": "Ahoy"})),
            ..read.clone()
        };
        let written = store
            .revise_guild_feature(&configured)
            .await
            .unwrap()
            .expect("the revision read is current");
        assert_eq!(written.revision, read.revision + 1, "{label}");
        assert_eq!(written.config, configured.config, "{label}");
        // Written again from the same (now stale) read: refused, nothing changes.
        let stale = townes::store::GuildFeature {
            config: None,
            ..read
        };
        assert_eq!(
            store.revise_guild_feature(&stale).await.unwrap(),
            None,
            "{label}"
        );

        let disabled = store
            .set_guild_feature_enabled(GUILD, "hello", false)
            .await
            .unwrap()
            .unwrap();
        assert!(!disabled.enabled, "{label}");
        assert_eq!(
            disabled.config, written.config,
            "{label}: only `enabled` changed"
        );
        assert_eq!(disabled.revision, written.revision + 1, "{label}");
        assert_eq!(
            store
                .set_guild_feature_enabled(OTHER, "hello", false)
                .await
                .unwrap(),
            None,
            "{label}: not set up there"
        );
        // Re-enabling keeps the configuration.
        let again = market.enable(GUILD, "hello", None, both()).await.unwrap();
        assert!(again.enabled, "{label}");
        assert_eq!(again.config, written.config, "{label}");
    }
}

#[tokio::test]
async fn a_feature_id_belongs_to_its_first_publisher() {
    for (label, store, _guard) in common::each_backend().await {
        let data = tempfile::tempdir().unwrap();
        let (runtime, _discord) = runtime(store.clone(), data.path()).await;
        let market = Marketplace::new(&runtime, "test");
        market
            .install(&common::component("hello"), &Publisher::Platform)
            .await
            .unwrap();
        // hello-next is `hello` 0.2.0: a higher version of a builtin's id.
        let mallory = Publisher::Named("mallory".into());
        match market
            .install(&common::component("hello_next"), &mallory)
            .await
        {
            Err(MarketError::IdTaken { id, owner }) => {
                assert_eq!(
                    (id.as_str(), owner.as_str()),
                    ("hello", "townes"),
                    "{label}"
                )
            }
            other => panic!("{label}: {other:?}"),
        }
        let versions: Vec<_> = market.catalogue().await.unwrap()[0]
            .versions
            .iter()
            .map(|v| v.version.clone())
            .collect();
        assert_eq!(versions, ["0.1.0"], "{label}: nothing was recorded");
        assert!(
            runtime
                .store()
                .feature_version("hello", "0.2.0")
                .await
                .unwrap()
                .is_none(),
            "{label}"
        );

        // Mallory's own id is hers: nobody else, the platform included, adds to it.
        market
            .install(&common::component("hostile"), &mallory)
            .await
            .unwrap();
        let feature = runtime.store().feature("hostile").await.unwrap().unwrap();
        assert_eq!(feature.owner(), Some("mallory"), "{label}");
        assert!(!feature.builtin, "{label}");
        assert!(
            matches!(
                market
                    .install(&common::component("hostile"), &Publisher::Platform)
                    .await,
                Err(MarketError::IdTaken { .. })
            ),
            "{label}"
        );
        // The owner installing the same bytes again is a no-op, not a refusal.
        market
            .install(&common::component("hostile"), &mallory)
            .await
            .unwrap();

        // Two publishers racing for a new id: the claim is one statement, so
        // exactly one of them gets it and the catalogue names that one.
        let (alice, bob) = (
            Publisher::Named("alice".into()),
            Publisher::Named("bob".into()),
        );
        let panel = common::component("panel");
        let (a, b) = tokio::join!(market.install(&panel, &alice), market.install(&panel, &bob));
        let winner = match (&a, &b) {
            (Ok(_), Err(MarketError::IdTaken { owner, .. })) if owner == "alice" => "alice",
            (Err(MarketError::IdTaken { owner, .. }), Ok(_)) if owner == "bob" => "bob",
            other => panic!("{label}: {other:?}"),
        };
        let feature = runtime.store().feature("panel").await.unwrap().unwrap();
        assert_eq!(feature.owner(), Some(winner), "{label}");
    }
}

/// A component built against `townes:feature@0.1.0`, exactly as released,
/// installs and runs on this host unchanged: commands, events, capabilities
/// and `migrate` on its first enable.
#[tokio::test]
async fn a_component_built_against_the_frozen_0_1_0_contract_still_runs() {
    for (label, store, _guard) in common::each_backend().await {
        let data = tempfile::tempdir().unwrap();
        let (runtime, discord) = runtime(store.clone(), data.path()).await;
        let market = Marketplace::new(&runtime, "test");
        let (version, manifest) = market
            .install(&common::component("frozen_v0_1"), &Publisher::Platform)
            .await
            .unwrap();
        assert_eq!(manifest.id, "frozen", "{label}");
        assert!(
            runtime
                .routes("frozen", &version.version)
                .await
                .unwrap()
                .is_empty(),
            "{label}: a 0.1.0 component serves no routes"
        );
        let approval = Approval::of([
            Capability::Storage,
            Capability::Messages,
            Capability::MessageContent,
        ]);
        market
            .enable(GUILD, "frozen", None, approval)
            .await
            .unwrap();
        let scope = Scope::new(GUILD, "frozen");
        assert_eq!(
            store
                .kv_get(&scope, "migrated-from")
                .await
                .unwrap()
                .as_deref(),
            Some(""),
            "{label}: the first enable ran migrate from nothing"
        );

        let invoker = discord.member_of(GUILD, 42).unwrap();
        let invocation = CommandInvocation {
            name: "frozen".into(),
            source: CommandSource::Slash,
            subcommand: None,
            arguments: vec![],
            invoker: invoker.clone(),
            channel_id: GUILD + 1,
        };
        for run in 1..=2 {
            let outcome = runtime
                .command(GUILD, "frozen", invocation.clone(), 0x20)
                .await;
            assert_eq!(
                text(&outcome),
                format!("frozen #{run} for ada with permissions 32"),
                "{label}"
            );
        }
        let event = townes::wit::Event::MessageCreated(townes::wit::Message {
            id: 9,
            channel_id: GUILD + 1,
            author: invoker.user,
            content: "!echo still here".into(),
            mentions: vec![],
            timestamp: "2026-12-07T00:00:00Z".into(),
        });
        let outcomes = runtime.dispatch_event(GUILD, &event).await.unwrap();
        assert!(
            outcomes[0].result.is_ok(),
            "{label}: {:?}",
            outcomes[0].result
        );
        assert_eq!(
            common::sent_texts(&outcomes[0].effects),
            ["frozen echo: still here"],
            "{label}"
        );
        assert_eq!(
            store.kv_get(&scope, "echoes").await.unwrap().as_deref(),
            Some("1"),
            "{label}"
        );
    }
}

/// `lifecycle` (contract 0.1.1): `migrate` then `enabled` on a first enable,
/// `enabled` alone on a re-enable, `disabled` after a disable. A feature that
/// refuses to start is left as it was, with the reason, in its guild only.
#[tokio::test]
async fn enabling_runs_migrate_once_then_the_lifecycle_hooks_and_a_refusal_undoes_the_enable() {
    for (label, store, _guard) in common::each_backend().await {
        let data = tempfile::tempdir().unwrap();
        let (runtime, _discord) = runtime(store.clone(), data.path()).await;
        let market = Marketplace::new(&runtime, "test");
        let (version, _) = market
            .install(&common::component("notes"), &Publisher::Platform)
            .await
            .unwrap();
        let routes = runtime.routes("notes", &version.version).await.unwrap();
        assert!(
            routes.iter().any(|r| r.operation_id == "createNote"),
            "{label}: the routes were read at install: {routes:?}"
        );
        let storage = || Approval::of([Capability::Storage]);
        let scope = Scope::new(GUILD, "notes");
        let value = |key: &'static str| {
            let (store, scope) = (store.clone(), scope.clone());
            async move { store.kv_get(&scope, key).await.unwrap() }
        };

        market
            .enable(GUILD, "notes", None, storage())
            .await
            .unwrap();
        assert_eq!(value("migrated-from").await.as_deref(), Some(""), "{label}");
        assert_eq!(value("enabled").await.as_deref(), Some("1"), "{label}");
        market.disable(GUILD, "notes").await.unwrap();
        assert_eq!(value("disabled").await.as_deref(), Some("1"), "{label}");
        store.kv_delete(&scope, "migrated-from").await.unwrap();
        market
            .enable(GUILD, "notes", None, storage())
            .await
            .unwrap();
        assert_eq!(value("enabled").await.as_deref(), Some("2"), "{label}");
        assert_eq!(
            value("migrated-from").await,
            None,
            "{label}: a re-enable on the same version does not migrate again"
        );

        // In the other guild, the feature refuses to start.
        let refusing = Scope::new(OTHER, "notes");
        store
            .kv_set(
                &refusing,
                "refuse-enable",
                "yes",
                townes::grants::Quota {
                    max_bytes: 1 << 20,
                    max_rows: 100,
                },
            )
            .await
            .unwrap();
        let refused = market.enable(OTHER, "notes", None, storage()).await;
        match refused {
            Err(MarketError::EnableFailed { step, reason, .. }) => {
                assert_eq!(step, "lifecycle.enabled", "{label}");
                assert!(reason.contains("refuses to start"), "{label}: {reason}");
            }
            other => panic!("{label}: expected EnableFailed, got {other:?}"),
        }
        assert!(
            store.guild_feature(OTHER, "notes").await.unwrap().is_none(),
            "{label}: a failed first enable leaves no row, so the next one migrates again"
        );
        let audit = store.audit_entries(OTHER, 10).await.unwrap();
        assert!(
            audit.iter().any(|e| e.action == "feature.enable_failed"),
            "{label}: {audit:?}"
        );
        assert!(
            store
                .guild_feature(GUILD, "notes")
                .await
                .unwrap()
                .unwrap()
                .enabled,
            "{label}: the first guild is untouched"
        );
    }
}
