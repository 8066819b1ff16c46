use super::*;
use townes_sdk::serde_json::{self, Value};
use townes_sdk::testing::{BOT_USER_ID, MockHost};
use townes_sdk::{LogLevel, Member, OptionValue};

const GENERAL: Snowflake = 1001;
const SPAM: Snowflake = 1002;
const LEVELS: Snowflake = 1003;
/// 2024-01-01T00:00:00Z
const T0: i64 = 1_704_067_200;

fn carol() -> User {
    User::new(44, "carol").with_global_name("Carol C")
}

fn host() -> MockHost {
    MockHost::for_feature::<Xp>()
}

fn config_with(host: &MockHost, patch: Value) {
    let mut config = default_config();
    for (k, v) in patch.as_object().unwrap() {
        config[k] = v.clone();
    }
    host.set_config(config);
}

/// RFC 3339 for `T0 + seconds` (within 2024-01-01).
fn at(seconds: i64) -> String {
    assert!((0..86_400).contains(&seconds));
    let text = format!(
        "2024-01-01T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    assert_eq!(
        townes_sdk::time::parse_datetime(&text),
        u64::try_from(T0 + seconds).ok()
    );
    text
}

fn message(id: Snowflake, channel: Snowflake, author: User, seconds: i64) -> Message {
    let mut m = Message::new(id, channel, author, "");
    m.timestamp = at(seconds);
    m
}

fn chat(host: &MockHost, m: Message) -> Result<(), Error> {
    Xp::on_event(&host.context(), Event::MessageCreated(m))
}

fn score(host: &MockHost, user: Snowflake) -> Option<i64> {
    host.board(BOARD)
        .into_iter()
        .find(|e| e.subject == user)
        .map(|e| e.score)
}

fn amount(id: Snowflake) -> i64 {
    i64::from(award_amount(id, &Config::default()))
}

fn command(host: &MockHost, inv: CommandInvocation) -> Reply {
    Xp::on_command(&host.context(), inv).unwrap()
}

fn ada() -> Member {
    Member::new(User::new(42, "ada"))
}

// --------------------------------------------------------------------- curve

#[test]
fn the_curve_matches_mee6() {
    assert_eq!(xp_to_next_level(0), 100);
    assert_eq!(xp_to_next_level(1), 155);
    assert_eq!(xp_to_next_level(2), 220);
    assert_eq!(xp_to_next_level(10), 1100);
    let totals: Vec<u128> = (0..=6).map(total_xp_for_level).collect();
    assert_eq!(totals, vec![0, 100, 255, 475, 770, 1150, 1625]);
    // The closed form agrees with summing the steps.
    let mut sum = 0u128;
    for level in 0..500 {
        assert_eq!(total_xp_for_level(level), sum, "level {level}");
        sum += u128::from(xp_to_next_level(level));
    }
}

#[test]
fn level_for_gives_level_progress_and_step() {
    assert_eq!(level_for(0), (0, 0, 100));
    assert_eq!(level_for(99), (0, 99, 100));
    assert_eq!(level_for(100), (1, 0, 155));
    assert_eq!(level_for(254), (1, 154, 155));
    assert_eq!(level_for(255), (2, 0, 220));
    assert_eq!(level_for(300), (2, 45, 220));
    assert_eq!(level_for(475), (3, 0, 295));
    assert_eq!(level_for(1000), (4, 230, 380));
    assert_eq!(level_for(-5), (0, 0, 100));
    let (level, into, next) = level_for(i64::MAX);
    assert!(level > 1_000_000);
    assert!(into < next);
}

// ------------------------------------------------------ time and randomness

#[test]
fn awards_are_in_range_deterministic_and_spread() {
    let config = Config::default();
    let mut seen = std::collections::BTreeSet::new();
    for id in 0..2000u64 {
        let id = 1_200_000_000_000_000_000 + id;
        let a = award_amount(id, &config);
        assert!((15..=25).contains(&a), "{a}");
        assert_eq!(a, award_amount(id, &config));
        seen.insert(a);
    }
    assert_eq!(seen.len(), 11, "every value in 15..=25 occurs");
    assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF, "reference value");

    let fixed = Config {
        min_xp: 7,
        max_xp: 7,
        ..Config::default()
    };
    assert_eq!(award_amount(123, &fixed), 7);
    let swapped = Config {
        min_xp: 30,
        max_xp: 20,
        ..Config::default()
    };
    assert!((20..=30).contains(&award_amount(123, &swapped)));
}

// ------------------------------------------------------------------ awarding

#[test]
fn a_message_earns_xp_deterministically() {
    let host = host();
    chat(&host, message(5044, GENERAL, carol(), 0)).unwrap();
    let first = score(&host, 44).unwrap();
    assert_eq!(first, amount(5044));
    assert!((15..=25).contains(&first));
    assert_eq!(host.storage_value("last:44").as_deref(), Some("1704067200"));
    assert!(host.sent_messages().is_empty(), "no level-up yet");

    // Another guild (a fresh host) awards the same for the same message.
    drop(host);
    let other = self::host();
    chat(&other, message(5044, GENERAL, carol(), 0)).unwrap();
    assert_eq!(score(&other, 44), Some(first));
}

#[test]
fn the_cooldown_is_judged_by_message_timestamps() {
    let host = host();
    chat(&host, message(1, GENERAL, carol(), 0)).unwrap();
    chat(&host, message(2, GENERAL, carol(), 30)).unwrap();
    chat(&host, message(3, GENERAL, carol(), 59)).unwrap();
    assert_eq!(score(&host, 44), Some(amount(1)), "within 60 s: nothing");
    assert_eq!(host.storage_value("last:44").as_deref(), Some("1704067200"));

    chat(&host, message(4, GENERAL, carol(), 60)).unwrap();
    assert_eq!(score(&host, 44), Some(amount(1) + amount(4)));
    assert_eq!(host.storage_value("last:44").as_deref(), Some("1704067260"));

    // An older message arriving late earns nothing either.
    chat(&host, message(5, GENERAL, carol(), 10)).unwrap();
    assert_eq!(score(&host, 44), Some(amount(1) + amount(4)));

    // The cooldown is per member.
    chat(&host, message(6, GENERAL, User::new(42, "ada"), 61)).unwrap();
    assert_eq!(score(&host, 42), Some(amount(6)));
}

#[test]
fn the_cooldown_is_configurable() {
    let host = host();
    config_with(&host, json!({"cooldown_seconds": 0}));
    chat(&host, message(1, GENERAL, carol(), 0)).unwrap();
    chat(&host, message(2, GENERAL, carol(), 0)).unwrap();
    assert_eq!(score(&host, 44), Some(amount(1) + amount(2)));
}

#[test]
fn bots_the_bot_itself_and_ignored_channels_earn_nothing() {
    let host = host();
    config_with(&host, json!({"ignored_channels": [SPAM]}));
    chat(
        &host,
        message(1, GENERAL, User::new(99, "robot").as_bot(), 0),
    )
    .unwrap();
    chat(
        &host,
        message(2, GENERAL, User::new(BOT_USER_ID, "townes"), 0),
    )
    .unwrap();
    chat(&host, message(3, SPAM, carol(), 0)).unwrap();
    assert!(host.board(BOARD).is_empty());
    assert!(host.storage_entries().is_empty(), "not even the cooldown");
    chat(&host, message(4, GENERAL, carol(), 0)).unwrap();
    assert_eq!(score(&host, 44), Some(amount(4)));
}

#[test]
fn an_unreadable_timestamp_earns_nothing_and_warns() {
    let host = host();
    let mut m = message(1, GENERAL, carol(), 0);
    m.timestamp = "soon".into();
    chat(&host, m).unwrap();
    assert!(host.board(BOARD).is_empty());
    assert_eq!(host.logs()[0].0, LogLevel::Warn);
}

#[test]
fn without_storage_the_award_fails() {
    let host = host();
    host.deny(Capability::Storage);
    assert_eq!(
        chat(&host, message(1, GENERAL, carol(), 0)),
        Err(Error::Denied(Capability::Storage))
    );
}

// ------------------------------------------------------------------ level-up

#[test]
fn a_level_up_is_announced_exactly_once() {
    let host = host();
    host.set_score(BOARD, 44, 99);
    chat(&host, message(1, GENERAL, carol(), 0)).unwrap();
    assert_eq!(score(&host, 44), Some(99 + amount(1)));
    assert_eq!(
        host.sent_messages()
            .into_iter()
            .map(|(c, b)| (c, b.content.unwrap()))
            .collect::<Vec<_>>(),
        vec![(GENERAL, "GG <@44>, you reached level 1!".to_string())]
    );
    // Still level 1 after the next awards: no second announcement.
    chat(&host, message(2, GENERAL, carol(), 60)).unwrap();
    chat(&host, message(3, GENERAL, carol(), 120)).unwrap();
    assert_eq!(level_for(score(&host, 44).unwrap()).0, 1);
    assert_eq!(host.sent_messages().len(), 1);
}

#[test]
fn announcements_follow_the_config() {
    let host = host();
    config_with(
        &host,
        json!({"announce_channel": LEVELS, "announce_message": "{user} ({user.name}) is now level {level} {unknown}"}),
    );
    host.set_score(BOARD, 44, 250);
    chat(&host, message(1, GENERAL, carol(), 0)).unwrap();
    let sent = host.sent_messages();
    assert_eq!(sent[0].0, LEVELS);
    assert_eq!(
        sent[0].1.content.as_deref(),
        Some("Carol C (carol) is now level 2 {unknown}")
    );

    let host2 = self::host();
    drop(host);
    config_with(&host2, json!({"announce": false}));
    host2.set_score(BOARD, 44, 250);
    chat(&host2, message(1, GENERAL, carol(), 0)).unwrap();
    assert!(host2.sent_messages().is_empty());
    assert_eq!(level_for(score(&host2, 44).unwrap()).0, 2);
}

#[test]
fn a_failed_announcement_still_awards_and_rewards() {
    let host = host();
    config_with(&host, json!({"role_rewards": [{"level": 1, "role": 701}]}));
    host.deny(Capability::Messages);
    host.set_score(BOARD, 44, 99);
    chat(&host, message(1, GENERAL, carol(), 0)).unwrap();
    assert_eq!(score(&host, 44), Some(99 + amount(1)));
    assert_eq!(host.roles_added(), vec![(44, 701)]);
    assert_eq!(host.logs().len(), 1);
}

fn rewards() -> Value {
    json!([
        {"level": 1, "role": 701},
        {"level": 2, "role": 702},
        {"level": 5, "role": 705},
        {"level": 10, "role": 710}
    ])
}

#[test]
fn role_rewards_stack_and_are_given_once() {
    let host = host();
    config_with(&host, json!({"role_rewards": rewards()}));
    // Level 1 reached before the rewards were configured: both 701 and 702
    // come with the step to level 2.
    host.set_score(BOARD, 44, 250);
    chat(&host, message(1, GENERAL, carol(), 0)).unwrap();
    assert_eq!(host.roles_added(), vec![(44, 701), (44, 702)]);
    assert_eq!(
        host.storage_value("rewards:44").as_deref(),
        Some("[701,702]")
    );

    host.clear_effects();
    host.set_score(BOARD, 44, 1140);
    chat(&host, message(2, GENERAL, carol(), 60)).unwrap();
    assert_eq!(level_for(score(&host, 44).unwrap()).0, 5);
    assert_eq!(host.roles_added(), vec![(44, 705)]);
    assert!(host.roles_removed().is_empty());
    assert_eq!(
        host.storage_value("rewards:44").as_deref(),
        Some("[701,702,705]")
    );
}

#[test]
fn without_stacking_lower_reward_roles_are_removed() {
    let host = host();
    config_with(
        &host,
        json!({"role_rewards": rewards(), "stack_rewards": false}),
    );
    host.set_score(BOARD, 44, 250);
    chat(&host, message(1, GENERAL, carol(), 0)).unwrap();
    assert_eq!(host.roles_added(), vec![(44, 702)], "only the highest");
    assert_eq!(host.storage_value("rewards:44").as_deref(), Some("[702]"));

    host.clear_effects();
    host.set_score(BOARD, 44, 1140);
    chat(&host, message(2, GENERAL, carol(), 60)).unwrap();
    assert_eq!(host.roles_added(), vec![(44, 705)]);
    assert_eq!(host.roles_removed(), vec![(44, 702)]);
    assert_eq!(host.storage_value("rewards:44").as_deref(), Some("[705]"));
}

#[test]
fn denied_roles_are_logged_and_retried_at_the_next_level_up() {
    let host = host();
    config_with(&host, json!({"role_rewards": rewards()}));
    host.deny(Capability::Roles);
    host.set_score(BOARD, 44, 99);
    chat(&host, message(1, GENERAL, carol(), 0)).unwrap();
    assert_eq!(host.sent_texts(), vec!["GG <@44>, you reached level 1!"]);
    assert!(host.roles_added().is_empty());
    assert_eq!(host.logs()[0].0, LogLevel::Warn);
    assert_eq!(host.storage_value("rewards:44"), None);

    host.allow(Capability::Roles);
    host.set_score(BOARD, 44, 250);
    chat(&host, message(2, GENERAL, carol(), 60)).unwrap();
    assert_eq!(host.roles_added(), vec![(44, 701), (44, 702)]);
}

/// Dashboards send ids as strings: these are above 2^53, where a JavaScript
/// number would already have rounded them.
const BIG_SPAM: Snowflake = 1_100_000_000_000_000_001;
const BIG_LEVELS: Snowflake = 1_100_000_000_000_000_002;
const BIG_ROLE: Snowflake = 1_100_000_000_000_000_003;

#[test]
fn ids_may_be_strings_or_integers() {
    let as_strings = json!({
        "ignored_channels": ["1100000000000000001", SPAM],
        "announce_channel": "1100000000000000002",
        "role_rewards": [{"level": 1, "role": "1100000000000000003"}]
    });
    let as_integers = json!({
        "ignored_channels": [BIG_SPAM, SPAM],
        "announce_channel": BIG_LEVELS,
        "role_rewards": [{"level": 1, "role": BIG_ROLE}]
    });
    for config in [as_strings, as_integers] {
        let host = host();
        config_with(&host, config.clone());
        host.set_score(BOARD, 44, 99);
        chat(&host, message(1, BIG_SPAM, carol(), 0)).unwrap();
        assert_eq!(score(&host, 44), Some(99), "{config}: ignored channel");
        chat(&host, message(2, GENERAL, carol(), 0)).unwrap();
        assert_eq!(score(&host, 44), Some(99 + amount(2)), "{config}");
        let channels: Vec<Snowflake> = host.sent_messages().iter().map(|(c, _)| *c).collect();
        assert_eq!(channels, [BIG_LEVELS], "{config}");
        assert_eq!(host.roles_added(), [(44, BIG_ROLE)], "{config}");
    }
}

#[test]
fn a_malformed_id_is_an_invalid_config() {
    let host = host();
    config_with(
        &host,
        json!({"role_rewards": [{"level": 1, "role": "Regular"}]}),
    );
    assert!(matches!(
        chat(&host, message(1, GENERAL, carol(), 0)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(host.board(BOARD).is_empty());
}

// ------------------------------------------------------------------ commands

fn seed_board(host: &MockHost) {
    host.set_score(BOARD, 45, 50);
    host.set_score(BOARD, 43, 300);
    host.set_score(BOARD, 44, 1000);
    host.set_score(BOARD, 42, 300);
}

#[test]
fn rank_shows_level_progress_and_rank() {
    let host = host();
    seed_board(&host);
    let reply = command(&host, CommandInvocation::new("rank", ada(), GENERAL));
    assert_eq!(
        reply.content(),
        Some("<@42> is **#2** — level 2, 45/220 XP to level 3, 300 XP in total.")
    );
    let inv =
        CommandInvocation::new("rank", ada(), GENERAL).with_arg("user", OptionValue::User(43));
    assert_eq!(
        command(&host, inv).content(),
        Some("<@43> is **#3** — level 2, 45/220 XP to level 3, 300 XP in total."),
        "ties are ordered by id"
    );
    let inv =
        CommandInvocation::new("rank", ada(), GENERAL).with_arg("user", OptionValue::User(44));
    assert_eq!(
        command(&host, inv).content(),
        Some("<@44> is **#1** — level 4, 230/380 XP to level 5, 1000 XP in total.")
    );
}

#[test]
fn level_answers_as_rank_does() {
    let host = host();
    seed_board(&host);
    let level = command(
        &host,
        CommandInvocation::new("level", ada(), GENERAL).with_arg("user", OptionValue::User(44)),
    );
    assert_eq!(
        level.content(),
        Some("<@44> is **#1** — level 4, 230/380 XP to level 5, 1000 XP in total.")
    );
    assert!(
        Xp::describe()
            .commands
            .iter()
            .any(|c| c.name == "level" && c.slash),
        "`/level` is registered"
    );
}

#[test]
fn rank_of_someone_unranked_is_friendly() {
    let host = host();
    let reply = command(&host, CommandInvocation::new("rank", ada(), GENERAL));
    assert_eq!(
        reply.content(),
        Some("You have no XP yet — chat a little and you'll show up on the board!")
    );
    let inv =
        CommandInvocation::new("rank", ada(), GENERAL).with_arg("user", OptionValue::User(43));
    assert_eq!(command(&host, inv).content(), Some("<@43> has no XP yet."));
}

#[test]
fn the_leaderboard_lists_the_top_in_order() {
    let host = host();
    assert_eq!(
        command(&host, CommandInvocation::new("leaderboard", ada(), GENERAL)).content(),
        Some("Nobody has earned XP yet.")
    );
    seed_board(&host);
    let reply = command(&host, CommandInvocation::new("leaderboard", ada(), GENERAL));
    assert!(!reply.ephemeral);
    assert_eq!(
        reply.content(),
        Some(
            "**Leaderboard** (page 1)\n\
             #1 <@44> — level 4 (1000 XP)\n\
             #2 <@42> — level 2 (300 XP)\n\
             #3 <@43> — level 2 (300 XP)\n\
             #4 <@45> — level 0 (50 XP)"
        )
    );
}

#[test]
fn the_leaderboard_pages_through_the_top_100() {
    let host = host();
    for i in 0..25u64 {
        host.set_score(BOARD, 100 + i, 1000 - i as i64);
    }
    let page = |p: i64| {
        let inv = CommandInvocation::new("leaderboard", ada(), GENERAL)
            .with_arg("page", OptionValue::Integer(p));
        command(&host, inv)
    };
    let lines: Vec<String> = page(1)
        .content()
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 11);
    assert_eq!(lines[1], "#1 <@100> — level 4 (1000 XP)");
    assert_eq!(lines[10], "#10 <@109> — level 4 (991 XP)");

    let third = page(3);
    let lines: Vec<&str> = third.content().unwrap().lines().collect();
    assert_eq!(lines[0], "**Leaderboard** (page 3)");
    assert_eq!(lines[1], "#21 <@120> — level 4 (980 XP)");
    assert_eq!(lines.len(), 6);

    assert_eq!(
        page(4).content(),
        Some("Page 4 is empty: 25 members are on the leaderboard.")
    );
    let bad = page(0);
    assert!(bad.ephemeral);
    assert_eq!(
        bad.content(),
        Some("Pages go from 1 to 10: the leaderboard shows the top 100.")
    );
    assert!(page(11).ephemeral);
}

fn xp_command(sub: &str, user: Snowflake) -> CommandInvocation {
    CommandInvocation::new("xp", ada(), GENERAL)
        .with_subcommand(sub)
        .with_arg("user", OptionValue::User(user))
}

#[test]
fn xp_set_sets_the_total() {
    let host = host();
    let reply = command(
        &host,
        xp_command("set", 43).with_arg("amount", OptionValue::Integer(475)),
    );
    assert!(reply.ephemeral);
    assert_eq!(reply.content(), Some("Set <@43>'s XP to 475 (level 3)."));
    assert_eq!(score(&host, 43), Some(475));

    let reply = command(
        &host,
        xp_command("set", 43).with_arg("amount", OptionValue::Integer(-1)),
    );
    assert!(reply.ephemeral);
    assert_eq!(reply.content(), Some("The amount must be 0 or more."));
    assert_eq!(score(&host, 43), Some(475));

    let reply = command(
        &host,
        xp_command("set", 43).with_arg("amount", OptionValue::Integer(0)),
    );
    assert_eq!(reply.content(), Some("Set <@43>'s XP to 0 (level 0)."));
    assert_eq!(score(&host, 43), Some(0));
}

#[test]
fn xp_reset_removes_the_score_and_the_cooldown() {
    let host = host();
    chat(&host, message(1, GENERAL, carol(), 0)).unwrap();
    host.set_score(BOARD, 44, 475);
    assert!(host.storage_value("last:44").is_some());

    let reply = command(&host, xp_command("reset", 44));
    assert!(reply.ephemeral);
    assert_eq!(
        reply.content(),
        Some("Reset <@44>: removed 475 XP (level 3).")
    );
    assert_eq!(score(&host, 44), None);
    assert_eq!(host.storage_value("last:44"), None);

    // The cooldown is gone: chatting at once earns again.
    chat(&host, message(2, GENERAL, carol(), 1)).unwrap();
    assert_eq!(score(&host, 44), Some(amount(2)));

    command(&host, xp_command("reset", 44));
    assert_eq!(
        command(&host, xp_command("reset", 44)).content(),
        Some("<@44> had no XP; nothing to reset.")
    );
}

#[test]
fn xp_needs_a_known_subcommand() {
    let host = host();
    let inv = CommandInvocation::new("xp", ada(), GENERAL);
    assert!(matches!(
        Xp::on_command(&host.context(), inv),
        Err(Error::InvalidArgument(_))
    ));
    let inv = CommandInvocation::new("nope", ada(), GENERAL);
    assert!(Xp::on_command(&host.context(), inv).is_err());
}

// ------------------------------------------------------------------ manifest

#[test]
fn the_manifest_is_consistent() {
    let m = Xp::describe();
    assert_eq!((m.id.as_str(), m.version.as_str()), ("xp", "0.1.0"));
    assert!(m.description.contains("5·L² + 50·L + 100"));
    let default: Value = serde_json::from_str(&m.default_config).unwrap();
    let parsed: Config = serde_json::from_value(default.clone()).unwrap();
    assert_eq!(parsed, Config::default());
    assert_eq!(
        serde_json::from_str::<Config>("{}").unwrap(),
        Config::default()
    );
    let schema: Value = serde_json::from_str(&m.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for key in default.as_object().unwrap().keys() {
        assert!(schema["properties"].get(key).is_some(), "{key}");
    }
    // Ids take both forms (dashboards send strings).
    let props = &schema["properties"];
    assert_eq!(props["ignored_channels"]["items"], snowflake::schema());
    assert_eq!(props["announce_channel"], snowflake::nullable_schema());
    assert_eq!(
        props["role_rewards"]["items"]["properties"]["role"],
        snowflake::schema()
    );

    let caps: Vec<(Capability, bool)> = m
        .capabilities
        .iter()
        .map(|r| (r.capability, r.required))
        .collect();
    assert_eq!(
        caps,
        vec![
            (Capability::Storage, true),
            (Capability::Messages, true),
            (Capability::Roles, false)
        ]
    );
    assert!(m.request(Capability::MessageContent).is_none());
    assert_eq!(m.events, vec![EventKind::MessageCreated]);
    let names: Vec<&str> = m.commands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["rank", "level", "leaderboard", "xp"]);
    let xp = &m.commands[3];
    assert_eq!(xp.default_permissions, Some(1 << 5));
    assert_eq!(xp.subcommands.len(), 2);
    assert!(
        m.commands[..3]
            .iter()
            .all(|c| c.default_permissions.is_none())
    );
}
