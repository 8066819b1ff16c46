//! The built-in features through the real host, on both backends: welcome
//! message and auto-role, XP cooldown, level-up, role reward and leaderboard
//! order; ids in their configs given as strings (what dashboards send); and
//! moderation's escalation and temporary bans, audited.

mod common;

use std::sync::Arc;
use townes::capabilities::Effect;
use townes::discord::{LocalDiscord, LocalGuild, Role};
use townes::grants::Approval;
use townes::marketplace::{Marketplace, Publisher, config::validate};
use townes::runtime::{Outcome, Runtime, RuntimeConfig};
use townes::store::Guild;
use townes::wit::{CommandInvocation, CommandSource, Event, Message, Reply};

const GUILD: u64 = 1000;
const GENERAL: u64 = GUILD + 1;
const MEMBER_ROLE: u64 = GUILD + 2;
const REGULAR_ROLE: u64 = GUILD + 3;

fn message(id: u64, discord: &LocalDiscord, user: u64, at_seconds: i64) -> Event {
    let author = discord.member_of(GUILD, user).unwrap().user;
    let at = chrono::DateTime::from_timestamp(1_800_000_000 + at_seconds, 0).unwrap();
    Event::MessageCreated(Message {
        id,
        channel_id: GENERAL,
        author,
        content: String::new(),
        mentions: vec![],
        timestamp: at.to_rfc3339(),
    })
}

fn effects(outcomes: &[Outcome], feature: &str) -> Vec<Effect> {
    outcomes
        .iter()
        .filter(|o| o.feature_id == feature)
        .flat_map(|o| {
            assert!(o.result.is_ok(), "{feature}: {:?} {}", o.result, o.stdio);
            o.effects.clone()
        })
        .collect()
}

fn score(effects: &[Effect]) -> Option<i64> {
    effects.iter().find_map(|e| {
        if let Effect::ScoreChanged { score, .. } = e {
            Some(*score)
        } else {
            None
        }
    })
}

#[tokio::test]
async fn welcome_and_xp_behave_on_both_backends() {
    for (label, store, _guard) in common::each_backend().await {
        let discord = Arc::new(LocalDiscord::new());
        let mut guild = LocalGuild::new(GUILD, "Playground");
        guild.roles.push(Role {
            id: REGULAR_ROLE,
            name: "Regular".into(),
            position: 2,
            permissions: 0,
        });
        guild.add_member(42, "ada", vec![]);
        discord.add_guild(guild);
        store
            .upsert_guild(&Guild::new(GUILD, "Playground", 1))
            .await
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(
            RuntimeConfig {
                pool_instances: 8,
                bot_user_id: 1,
                ..RuntimeConfig::new(data.path())
            },
            store,
            discord.clone(),
        )
        .unwrap();
        let market = Marketplace::new(&runtime, "test");
        for name in ["welcome", "xp"] {
            let (_, manifest) = market
                .install(&common::component(name), &Publisher::Platform)
                .await
                .unwrap();
            market
                .enable(
                    GUILD,
                    name,
                    None,
                    Approval::everything_requested(&manifest.capabilities),
                )
                .await
                .unwrap();
        }
        market
            .set_config(
                GUILD,
                "welcome",
                serde_json::json!({"channel": GENERAL, "auto_roles": [MEMBER_ROLE]}),
            )
            .await
            .unwrap();
        let xp_config = serde_json::json!({"min_xp": 60, "max_xp": 60, "role_rewards": [{"level": 1, "role": REGULAR_ROLE}]});
        market.set_config(GUILD, "xp", xp_config).await.unwrap();

        // welcome: the templated message and the auto-role.
        let carol = discord
            .with_guild(GUILD, |g| g.add_member(44, "carol", vec![]))
            .unwrap();
        let joined = runtime
            .dispatch_event(GUILD, &Event::MemberJoined(carol))
            .await
            .unwrap();
        let welcome = effects(&joined, "welcome");
        assert_eq!(
            common::sent_texts(&welcome),
            ["Welcome <@44> to Playground! You are member #2."],
            "{label}"
        );
        assert!(
            welcome.iter().any(|e| matches!(
                e,
                Effect::RoleAdded {
                    user_id: 44,
                    role_id: MEMBER_ROLE,
                    ..
                }
            )),
            "{label}: {welcome:?}"
        );
        // The host audits the feature's role change, with its version and no
        // invoker (an event: the feature acted on its own).
        let audit = runtime.store().audit_entries(GUILD, 50).await.unwrap();
        let added = audit
            .iter()
            .find(|e| e.action == "role.added")
            .unwrap_or_else(|| panic!("{label}: no role.added in {audit:?}"));
        assert_eq!(added.actor, "feature:welcome", "{label}");
        assert_eq!(added.details["target"], "44", "{label}");
        assert_eq!(added.details["role_id"], MEMBER_ROLE.to_string());
        assert_eq!(added.details["version"], "0.1.0");
        assert_eq!(added.details["invoker"], serde_json::Value::Null);

        // xp: an award, the cooldown, then a level-up with its announcement and reward.
        let first = runtime
            .dispatch_event(GUILD, &message(1, &discord, 44, 0))
            .await
            .unwrap();
        assert_eq!(score(&effects(&first, "xp")), Some(60), "{label}");
        let too_soon = runtime
            .dispatch_event(GUILD, &message(2, &discord, 44, 30))
            .await
            .unwrap();
        assert_eq!(
            score(&effects(&too_soon, "xp")),
            None,
            "{label}: within the cooldown"
        );
        let level_up = effects(
            &runtime
                .dispatch_event(GUILD, &message(3, &discord, 44, 61))
                .await
                .unwrap(),
            "xp",
        );
        assert_eq!(score(&level_up), Some(120), "{label}");
        assert_eq!(
            common::sent_texts(&level_up),
            ["GG <@44>, you reached level 1!"],
            "{label}"
        );
        assert!(
            level_up.iter().any(|e| matches!(
                e,
                Effect::RoleAdded {
                    user_id: 44,
                    role_id: REGULAR_ROLE,
                    ..
                }
            )),
            "{label}: {level_up:?}"
        );
        assert!(
            discord
                .member_of(GUILD, 44)
                .unwrap()
                .roles
                .contains(&REGULAR_ROLE),
            "{label}"
        );
        // The bot's own messages earn nothing.
        let bot = discord
            .with_guild(GUILD, |g| g.add_member(1, "townes", vec![]))
            .unwrap();
        assert_eq!(bot.user.id, 1);
        let by_bot = runtime
            .dispatch_event(GUILD, &message(4, &discord, 1, 200))
            .await
            .unwrap();
        assert_eq!(score(&effects(&by_bot, "xp")), None, "{label}");
        runtime
            .dispatch_event(GUILD, &message(5, &discord, 42, 0))
            .await
            .unwrap();

        // The leaderboard, best first.
        let invoker = discord.member_of(GUILD, 42).unwrap();
        let invocation = CommandInvocation {
            name: "leaderboard".into(),
            source: CommandSource::Slash,
            subcommand: None,
            arguments: vec![],
            invoker,
            channel_id: GENERAL,
        };
        let board = runtime.command(GUILD, "xp", invocation, 0).await;
        let Ok(Some(Reply { body, .. })) = &board.result else {
            panic!("{label}: {:?}", board.result)
        };
        let text = body.content.clone().unwrap_or_default();
        assert!(
            text.contains("#1 <@44> — level 1 (120 XP)\n#2 <@42> — level 0 (60 XP)"),
            "{label}: {text}"
        );

        // Usage: six events and one command today, written by one flush.
        assert_eq!(runtime.flush_usage().await.unwrap(), 1, "{label}");
        let today = chrono::Utc::now().date_naive();
        let usage = runtime.store().usage(GUILD, today, today).await.unwrap();
        assert_eq!((usage[0].events, usage[0].commands), (6, 1), "{label}");
        assert_eq!(
            runtime.flush_usage().await.unwrap(),
            0,
            "{label}: nothing twice"
        );
    }
}

/// Ids above 2^53, which a JavaScript number cannot hold: dashboards send them as
/// strings.
const BIG_WELCOME: u64 = 1_100_000_000_000_000_001;
const BIG_LEVELS: u64 = 1_100_000_000_000_000_002;
const BIG_ROLE: u64 = 1_100_000_000_000_000_003;

#[tokio::test]
async fn ids_in_configs_may_be_strings() {
    let (_, store, _guard) = common::sqlite().await;
    let discord = Arc::new(LocalDiscord::new());
    let mut guild = LocalGuild::new(GUILD, "Playground");
    guild.channels.insert(BIG_WELCOME, "welcome".into());
    guild.channels.insert(BIG_LEVELS, "levels".into());
    guild.roles.push(Role {
        id: BIG_ROLE,
        name: "Big".into(),
        position: 2,
        permissions: 0,
    });
    guild.add_member(42, "ada", vec![]);
    discord.add_guild(guild);
    store
        .upsert_guild(&Guild::new(GUILD, "Playground", 1))
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(
        RuntimeConfig {
            pool_instances: 4,
            bot_user_id: 1,
            ..RuntimeConfig::new(data.path())
        },
        store,
        discord.clone(),
    )
    .unwrap();
    let market = Marketplace::new(&runtime, "test");

    // (feature, a channel key, its config with string ids)
    let configs = [
        (
            "welcome",
            "channel",
            serde_json::json!({
                "channel": "1100000000000000001",
                "auto_roles": ["1100000000000000003", MEMBER_ROLE],
                "leave": {"enabled": true, "channel": null}
            }),
        ),
        (
            "xp",
            "announce_channel",
            serde_json::json!({
                "min_xp": 120, "max_xp": 120,
                "ignored_channels": ["1100000000000000001"],
                "announce_channel": "1100000000000000002",
                "role_rewards": [{"level": 1, "role": "1100000000000000003"}]
            }),
        ),
        (
            "hello",
            "welcome_channel",
            serde_json::json!({"greeting": "Hi", "welcome_channel": "1100000000000000001"}),
        ),
    ];
    for (name, key, config) in configs {
        let (_, manifest) = market
            .install(&common::component(name), &Publisher::Platform)
            .await
            .unwrap();
        let schema = &manifest.config_schema;
        assert_eq!(validate(schema, &config), Ok(()), "{name}");
        // The integers of old configs still validate.
        let mut old = config.clone();
        old[key] = serde_json::json!(BIG_WELCOME);
        assert_eq!(validate(schema, &old), Ok(()), "{name}");
        // Strings that are not ids do not.
        for bad in [
            "",
            "0",
            "01",
            "-1",
            "+1",
            "#general",
            "1e3",
            "12345678901234567890",
        ] {
            let mut wrong = config.clone();
            wrong[key] = serde_json::json!(bad);
            let problems = validate(schema, &wrong).unwrap_err();
            assert_eq!(problems[0].path, format!("/{key}"), "{name} {bad:?}");
        }
        // `hello` (the example) is only checked against its schema here.
        if name != "hello" {
            market
                .enable(
                    GUILD,
                    name,
                    None,
                    Approval::everything_requested(&manifest.capabilities),
                )
                .await
                .unwrap();
            market.set_config(GUILD, name, config).await.unwrap();
        }
    }

    // welcome: the message in the channel given as a string, and both auto-roles.
    let carol = discord
        .with_guild(GUILD, |g| g.add_member(44, "carol", vec![]))
        .unwrap();
    let joined = runtime
        .dispatch_event(GUILD, &Event::MemberJoined(carol))
        .await
        .unwrap();
    let welcome = effects(&joined, "welcome");
    assert!(
        matches!(
            &welcome[..],
            [Effect::MessageSent { channel_id: BIG_WELCOME, content: Some(c), .. }, ..]
                if c == "Welcome <@44> to Playground! You are member #2."
        ),
        "{welcome:?}"
    );
    for role_id in [BIG_ROLE, MEMBER_ROLE] {
        assert!(
            welcome.iter().any(|e| matches!(
                e,
                Effect::RoleAdded { user_id: 44, role_id: r, .. } if *r == role_id
            )),
            "{welcome:?}"
        );
    }

    // xp: nothing in the ignored channel; a level-up announced in the channel
    // given as a string, with the reward role given as a string.
    let mut in_welcome = message(1, &discord, 42, 0);
    if let Event::MessageCreated(m) = &mut in_welcome {
        m.channel_id = BIG_WELCOME;
    }
    let ignored = runtime.dispatch_event(GUILD, &in_welcome).await.unwrap();
    assert_eq!(score(&effects(&ignored, "xp")), None);
    let level_up = effects(
        &runtime
            .dispatch_event(GUILD, &message(2, &discord, 42, 0))
            .await
            .unwrap(),
        "xp",
    );
    assert_eq!(score(&level_up), Some(120));
    assert!(
        level_up.iter().any(|e| matches!(
            e,
            Effect::MessageSent { channel_id: BIG_LEVELS, content: Some(c), .. }
                if c == "GG <@42>, you reached level 1!"
        )),
        "{level_up:?}"
    );
    assert!(
        level_up.iter().any(|e| matches!(
            e,
            Effect::RoleAdded {
                user_id: 42,
                role_id: BIG_ROLE,
                ..
            }
        )),
        "{level_up:?}"
    );
}

/// The built-in moderation feature through the real host: a warning that
/// escalates to a timeout, a temporary ban lifted by its job after a restart,
/// and every action in the audit log with the feature, its version and the
/// moderator who ran the command.
#[tokio::test]
async fn moderation_escalates_warnings_and_lifts_a_temporary_ban_after_a_restart() {
    const MOD: u64 = 7;
    const ANN: u64 = 44;
    for (label, store, _guard) in common::each_backend().await {
        let discord = Arc::new(LocalDiscord::new());
        let mut guild = LocalGuild::new(GUILD, "Playground");
        guild.add_member(MOD, "mod", vec![GUILD + 20]);
        guild.add_member(ANN, "ann", vec![]);
        discord.add_guild(guild);
        store
            .upsert_guild(&Guild::new(GUILD, "Playground", 1))
            .await
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let config = || RuntimeConfig {
            pool_instances: 8,
            bot_user_id: 1,
            ..RuntimeConfig::new(data.path())
        };
        let runtime = Runtime::new(config(), store.clone(), discord.clone()).unwrap();
        let market = Marketplace::new(&runtime, "test");
        let (_, manifest) = market
            .install(&common::component("moderation"), &Publisher::Platform)
            .await
            .unwrap();
        market
            .enable(
                GUILD,
                "moderation",
                None,
                Approval::everything_requested(&manifest.capabilities),
            )
            .await
            .unwrap();
        let command = |name: &str, args: Vec<(&str, townes::wit::OptionValue)>| CommandInvocation {
            name: name.into(),
            source: CommandSource::Slash,
            subcommand: None,
            arguments: args
                .into_iter()
                .map(|(name, value)| townes::wit::CommandArgument {
                    name: name.into(),
                    value,
                })
                .collect(),
            invoker: discord.member_of(GUILD, MOD).unwrap(),
            channel_id: GENERAL,
        };
        let ann = || ("user", townes::wit::OptionValue::User(ANN));

        for _ in 0..3 {
            let outcome = runtime
                .command(GUILD, "moderation", command("warn", vec![ann()]), u64::MAX)
                .await;
            assert!(
                outcome.result.is_ok(),
                "{label}: {:?} {}",
                outcome.result,
                outcome.stdio
            );
        }
        let audit = store.audit_entries(GUILD, 50).await.unwrap();
        let timeout = audit
            .iter()
            .find(|e| e.action == "moderation.timeout")
            .unwrap_or_else(|| panic!("{label}: the third warning escalates: {audit:?}"));
        assert_eq!(timeout.actor, "feature:moderation", "{label}");
        assert_eq!(timeout.details["target"], ANN.to_string());
        assert_eq!(timeout.details["seconds"], 3600);
        assert_eq!(timeout.details["invoker"], MOD.to_string());
        assert_eq!(timeout.details["version"], "0.1.0");

        let banned = runtime
            .command(
                GUILD,
                "moderation",
                command(
                    "ban",
                    vec![
                        ann(),
                        ("duration", townes::wit::OptionValue::Text("7d".into())),
                        ("reason", townes::wit::OptionValue::Text("raid".into())),
                    ],
                ),
                u64::MAX,
            )
            .await;
        assert!(banned.result.is_ok(), "{label}: {:?}", banned.result);
        assert!(
            discord
                .with_guild(GUILD, |g| g.bans.contains(&ANN))
                .unwrap()
        );

        // A restart: a new runtime over the same database runs the job when due.
        drop(runtime);
        let restarted = Runtime::new(config(), store.clone(), discord.clone()).unwrap();
        let early = restarted
            .run_due_jobs(chrono::Utc::now(), 10)
            .await
            .unwrap();
        assert!(early.is_empty(), "{label}: not due yet");
        let later = chrono::Utc::now() + chrono::Duration::days(7) + chrono::Duration::minutes(1);
        let ran = restarted.run_due_jobs(later, 10).await.unwrap();
        assert_eq!(ran.len(), 1, "{label}");
        assert!(ran[0].result.is_ok(), "{label}: {:?}", ran[0].result);
        assert!(
            !discord
                .with_guild(GUILD, |g| g.bans.contains(&ANN))
                .unwrap(),
            "{label}"
        );
        let audit = store.audit_entries(GUILD, 50).await.unwrap();
        let ban = audit.iter().find(|e| e.action == "moderation.ban").unwrap();
        assert_eq!(ban.details["reason"], "raid", "{label}");
        let unban = audit
            .iter()
            .find(|e| e.action == "moderation.unban")
            .unwrap();
        assert_eq!(
            unban.details["invoker"],
            serde_json::Value::Null,
            "{label}: the job acted"
        );
    }
}
