use super::*;
use townes_sdk::serde_json::{self, Value};
use townes_sdk::testing::{GUILD_ID, MockHost, OWNER_ID};
use townes_sdk::{LogLevel, MessageBody};

const CHANNEL: Snowflake = 500;
const LEAVE_CHANNEL: Snowflake = 501;
const ROLE_A: Snowflake = 700;
const ROLE_B: Snowflake = 701;

fn carol() -> Member {
    Member::new(User::new(44, "carol").with_global_name("Carol C"))
}

fn host() -> MockHost {
    let host = MockHost::for_feature::<Welcome>();
    let mut guild = GuildInfo::new(GUILD_ID, "Playground", OWNER_ID);
    guild.member_count = 128;
    host.set_guild(guild);
    host
}

/// The default config with `patch`'s top-level keys replaced.
fn config_with(host: &MockHost, patch: Value) {
    let mut config = default_config();
    for (k, v) in patch.as_object().unwrap() {
        config[k] = v.clone();
    }
    host.set_config(config);
}

fn join(host: &MockHost, member: Member) -> Result<(), Error> {
    Welcome::on_event(&host.context(), Event::MemberJoined(member))
}

fn leave(host: &MockHost, user: User) -> Result<(), Error> {
    Welcome::on_event(&host.context(), Event::MemberLeft(user))
}

fn texts(messages: Vec<(Snowflake, MessageBody)>) -> Vec<(Snowflake, String)> {
    messages
        .into_iter()
        .map(|(c, b)| (c, b.content.unwrap_or_default()))
        .collect()
}

fn warnings(host: &MockHost) -> Vec<String> {
    host.logs()
        .into_iter()
        .filter(|(l, _)| *l == LogLevel::Warn)
        .map(|(_, m)| m)
        .collect()
}

// ------------------------------------------------------------------ templates

fn vars<'a>(user: &'a User, guild: Option<&'a GuildInfo>) -> Vars<'a> {
    Vars {
        user,
        display_name: "Carol C",
        guild,
    }
}

#[test]
fn renders_each_placeholder() {
    let user = carol().user;
    let mut guild = GuildInfo::new(1, "Playground", 2);
    guild.member_count = 42;
    let v = vars(&user, Some(&guild));
    assert_eq!(render("{user}", &v), "Carol C");
    assert_eq!(render("{user.mention}", &v), "<@44>");
    assert_eq!(render("{user.name}", &v), "carol");
    assert_eq!(render("{server.name}", &v), "Playground");
    assert_eq!(render("{server.memberCount}", &v), "42");
    assert_eq!(
        render(DEFAULT_MESSAGE, &v),
        "Welcome <@44> to Playground! You are member #42."
    );
}

#[test]
fn unknown_placeholders_and_stray_braces_are_kept() {
    let user = carol().user;
    let v = vars(&user, None);
    assert_eq!(
        render("{nope} {user.id} {{user}} { {user", &v),
        "{nope} {user.id} {Carol C} { {user"
    );
    assert_eq!(render("no placeholders", &v), "no placeholders");
    assert_eq!(render("}{}", &v), "}{}");
}

#[test]
fn values_are_not_expanded_again() {
    let user = User::new(9, "{server.name}");
    let v = Vars {
        user: &user,
        display_name: "{user.mention}",
        guild: None,
    };
    assert_eq!(
        render("{user} / {user.name}", &v),
        "{user.mention} / {server.name}"
    );
}

#[test]
fn server_placeholders_without_a_guild_have_fallbacks() {
    let user = carol().user;
    let v = vars(&user, None);
    assert_eq!(
        render(DEFAULT_MESSAGE, &v),
        "Welcome <@44> to this server! You are member #?."
    );
}

#[test]
fn rendered_text_is_cut_to_discords_limit() {
    let user = User::new(1, "x".repeat(32));
    let v = Vars {
        user: &user,
        display_name: "y",
        guild: None,
    };
    let out = render(&"{user.name}".repeat(200), &v);
    assert_eq!(out.chars().count(), limits::CONTENT);
    assert!(out.ends_with('…'));
    assert_eq!(townes_sdk::template::truncate("héllo".into(), 3), "hé…");
    assert_eq!(townes_sdk::template::truncate("héllo".into(), 5), "héllo");
}

#[test]
fn uses_server_only_for_server_placeholders() {
    assert!(uses_server(DEFAULT_MESSAGE));
    assert!(uses_server("{server.name}"));
    assert!(!uses_server("Hi {user}, {server}"));
}

// --------------------------------------------------------------------- joins

#[test]
fn nothing_happens_with_the_default_config() {
    let host = host();
    join(&host, carol()).unwrap();
    leave(&host, carol().user).unwrap();
    assert!(host.effects().is_empty(), "{:?}", host.effects());
    assert_eq!(host.calls(), 2, "only the config was read");
}

#[test]
fn a_join_posts_the_welcome_in_the_channel() {
    let host = host();
    config_with(&host, json!({"channel": CHANNEL}));
    join(&host, carol()).unwrap();
    assert_eq!(
        texts(host.sent_messages()),
        vec![(
            CHANNEL,
            "Welcome <@44> to Playground! You are member #128.".to_string()
        )]
    );
    assert!(host.dms().is_empty());
    assert!(host.roles_added().is_empty());
}

#[test]
fn the_display_name_is_the_nickname_when_set() {
    let host = host();
    config_with(
        &host,
        json!({"channel": CHANNEL, "message": "Hi {user} ({user.name})"}),
    );
    join(&host, carol().with_nick("Caz")).unwrap();
    assert_eq!(host.sent_texts(), vec!["Hi Caz (carol)"]);
}

#[test]
fn the_guild_is_read_only_when_a_template_needs_it() {
    let host = host();
    config_with(
        &host,
        json!({"channel": CHANNEL, "message": "Hi {user.mention}"}),
    );
    host.deny(Capability::Members);
    join(&host, carol()).unwrap();
    assert_eq!(host.sent_texts(), vec!["Hi <@44>"]);
    assert!(warnings(&host).is_empty(), "members was never called");
    assert_eq!(host.calls(), 2, "config + send");
}

#[test]
fn without_members_the_server_placeholders_fall_back() {
    let host = host();
    config_with(&host, json!({"channel": CHANNEL}));
    host.deny(Capability::Members);
    join(&host, carol()).unwrap();
    assert_eq!(
        host.sent_texts(),
        vec!["Welcome <@44> to this server! You are member #?."]
    );
    assert_eq!(warnings(&host).len(), 1);
}

#[test]
fn the_dm_is_sent_when_enabled() {
    let host = host();
    config_with(
        &host,
        json!({"channel": CHANNEL, "dm": {"enabled": true, "message": "Hey {user}, welcome to {server.name}"}}),
    );
    join(&host, carol()).unwrap();
    assert_eq!(host.sent_messages().len(), 1);
    assert_eq!(
        texts(host.dms()),
        vec![(44, "Hey Carol C, welcome to Playground".to_string())]
    );
    // One guild read for both templates.
    assert_eq!(host.calls(), 4, "config, guild, send, dm");
}

#[test]
fn the_default_dm_renders() {
    let host = host();
    config_with(&host, json!({"dm": {"enabled": true}}));
    join(&host, carol()).unwrap();
    assert_eq!(
        host.dms()[0].1.content.as_deref(),
        Some("Welcome to Playground, Carol C! Have a look around and say hi.")
    );
    assert!(host.sent_messages().is_empty(), "no channel set");
}

#[test]
fn a_denied_members_capability_skips_the_dm_but_still_posts() {
    let host = host();
    config_with(&host, json!({"channel": CHANNEL, "dm": {"enabled": true}}));
    host.deny(Capability::Members);
    join(&host, carol()).unwrap();
    assert!(host.dms().is_empty());
    assert_eq!(
        host.sent_texts(),
        vec!["Welcome <@44> to this server! You are member #?."]
    );
    let warnings = warnings(&host);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(
        warnings[1],
        "welcome: the welcome DM to 44 failed: Error::Denied(Capability::Members)"
    );
}

#[test]
fn a_user_who_blocks_dms_still_gets_the_channel_message_and_roles() {
    let host = host();
    config_with(
        &host,
        json!({"channel": CHANNEL, "dm": {"enabled": true}, "auto_roles": [ROLE_A]}),
    );
    host.block_dms(44);
    join(&host, carol()).unwrap();
    assert!(host.dms().is_empty());
    assert_eq!(host.sent_messages().len(), 1);
    assert_eq!(host.roles_added(), vec![(44, ROLE_A)]);
    let warnings = warnings(&host);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("Unavailable"), "{warnings:?}");
}

#[test]
fn auto_roles_are_given() {
    let host = host();
    host.add_member(carol());
    config_with(
        &host,
        json!({"channel": CHANNEL, "auto_roles": [ROLE_A, ROLE_B]}),
    );
    join(&host, carol()).unwrap();
    assert_eq!(host.roles_added(), vec![(44, ROLE_A), (44, ROLE_B)]);
    assert_eq!(host.member(44).unwrap().roles, vec![ROLE_A, ROLE_B]);
    assert!(matches!(
        &host.effects()[..],
        [townes_sdk::testing::Effect::MessageSent { .. }, townes_sdk::testing::Effect::RoleAdded { reason: Some(r), .. }, ..]
            if r == "welcome: auto-role"
    ));
}

/// Dashboards send ids as strings: this one is above 2^53, where a JavaScript
/// number would already have rounded it.
const BIG_CHANNEL: Snowflake = 1_100_000_000_000_000_001;
const BIG_ROLE: Snowflake = 1_100_000_000_000_000_002;
const BIG_LEAVE_CHANNEL: Snowflake = 1_100_000_000_000_000_003;

#[test]
fn ids_may_be_strings_or_integers() {
    let as_strings = json!({
        "channel": "1100000000000000001",
        "auto_roles": ["1100000000000000002", ROLE_A],
        "leave": {"enabled": true, "channel": "1100000000000000003"}
    });
    let as_integers = json!({
        "channel": BIG_CHANNEL,
        "auto_roles": [BIG_ROLE, ROLE_A],
        "leave": {"enabled": true, "channel": BIG_LEAVE_CHANNEL}
    });
    for config in [as_strings, as_integers] {
        let host = host();
        host.add_member(carol());
        config_with(&host, config.clone());
        join(&host, carol()).unwrap();
        leave(&host, carol().user).unwrap();
        let channels: Vec<Snowflake> = host.sent_messages().iter().map(|(c, _)| *c).collect();
        assert_eq!(channels, [BIG_CHANNEL, BIG_LEAVE_CHANNEL], "{config}");
        assert_eq!(
            host.roles_added(),
            [(44, BIG_ROLE), (44, ROLE_A)],
            "{config}"
        );
    }
}

#[test]
fn a_malformed_id_is_an_invalid_config() {
    let host = host();
    config_with(&host, json!({"channel": "#general"}));
    assert!(matches!(
        join(&host, carol()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(host.effects().is_empty());
}

#[test]
fn a_denied_role_does_not_stop_the_message() {
    let host = host();
    config_with(
        &host,
        json!({"channel": CHANNEL, "auto_roles": [ROLE_A, ROLE_B]}),
    );
    host.deny(Capability::Roles);
    join(&host, carol()).unwrap();
    assert_eq!(host.sent_messages().len(), 1);
    assert!(host.roles_added().is_empty());
    assert_eq!(warnings(&host).len(), 2, "one warning per role");
}

#[test]
fn bots_are_ignored_unless_configured_otherwise() {
    let host = host();
    let bot = Member::new(User::new(99, "robot").as_bot());
    config_with(
        &host,
        json!({"channel": CHANNEL, "auto_roles": [ROLE_A], "leave": {"enabled": true}}),
    );
    join(&host, bot.clone()).unwrap();
    leave(&host, bot.user.clone()).unwrap();
    assert!(host.effects().is_empty());

    config_with(
        &host,
        json!({"channel": CHANNEL, "message": "beep {user}", "ignore_bots": false}),
    );
    join(&host, bot).unwrap();
    assert_eq!(host.sent_texts(), vec!["beep robot"]);
}

#[test]
fn a_denied_messages_capability_is_an_error_only_when_nothing_was_done() {
    let host = host();
    config_with(&host, json!({"channel": CHANNEL}));
    host.deny(Capability::Messages);
    assert_eq!(
        join(&host, carol()),
        Err(Error::Denied(Capability::Messages))
    );

    config_with(&host, json!({"channel": CHANNEL, "auto_roles": [ROLE_A]}));
    assert_eq!(join(&host, carol()), Ok(()));
    assert_eq!(host.roles_added(), vec![(44, ROLE_A)]);
}

#[test]
fn other_send_failures_are_logged_not_returned() {
    let host = host();
    config_with(&host, json!({"channel": CHANNEL}));
    host.fail(
        Capability::Messages,
        Error::Unavailable("discord is down".into()),
    );
    assert_eq!(join(&host, carol()), Ok(()));
    assert_eq!(warnings(&host).len(), 1);
}

// -------------------------------------------------------------------- leaves

#[test]
fn the_leave_message_goes_to_the_welcome_channel_by_default() {
    let host = host();
    config_with(
        &host,
        json!({"channel": CHANNEL, "leave": {"enabled": true}}),
    );
    leave(&host, carol().user).unwrap();
    assert_eq!(
        texts(host.sent_messages()),
        vec![(CHANNEL, "carol left Playground.".to_string())]
    );
}

#[test]
fn the_leave_message_can_have_its_own_channel_and_template() {
    let host = host();
    config_with(
        &host,
        json!({"leave": {"enabled": true, "channel": LEAVE_CHANNEL, "message": "Bye {user} ({user.mention})"}}),
    );
    leave(&host, carol().user).unwrap();
    assert_eq!(
        texts(host.sent_messages()),
        vec![(LEAVE_CHANNEL, "Bye Carol C (<@44>)".to_string())]
    );
}

#[test]
fn no_leave_message_when_disabled_or_without_a_channel() {
    let host = host();
    config_with(&host, json!({"channel": CHANNEL}));
    leave(&host, carol().user).unwrap();
    config_with(&host, json!({"leave": {"enabled": true}}));
    leave(&host, carol().user).unwrap();
    assert!(host.sent_messages().is_empty());
}

#[test]
fn a_denied_leave_message_is_an_error() {
    let host = host();
    config_with(
        &host,
        json!({"channel": CHANNEL, "leave": {"enabled": true}}),
    );
    host.deny(Capability::Messages);
    assert_eq!(
        leave(&host, carol().user),
        Err(Error::Denied(Capability::Messages))
    );
}

// ------------------------------------------------------------- /welcome-test

fn preview(host: &MockHost, invoker: Member) -> Reply {
    let inv = CommandInvocation::new("welcome-test", invoker, 42);
    Welcome::on_command(&host.context(), inv).unwrap()
}

#[test]
fn welcome_test_previews_the_message_ephemerally() {
    let host = host();
    config_with(
        &host,
        json!({"channel": CHANNEL, "auto_roles": [ROLE_A], "dm": {"enabled": true, "message": "psst {user}"}}),
    );
    let ada = Member::new(User::new(42, "ada")).with_nick("Ada L");
    let reply = preview(&host, ada);
    assert!(reply.ephemeral);
    assert_eq!(
        reply.content(),
        Some("Welcome <@42> to Playground! You are member #128.")
    );
    let embed = &reply.body.embeds[0];
    let field = |name: &str| {
        embed
            .fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    };
    assert_eq!(field("Channel"), Some("<#500>"));
    assert_eq!(field("Auto-roles"), Some("<@&700>"));
    assert_eq!(field("DM"), Some("psst Ada L"));
    assert_eq!(field("Leave message"), Some("off"));
    assert!(reply.body.validate().is_ok());
    assert!(host.effects().is_empty(), "a preview posts nothing");
}

#[test]
fn welcome_test_works_without_a_channel_and_says_so() {
    let host = host();
    let reply = preview(&host, carol());
    assert_eq!(
        reply.content(),
        Some("Welcome <@44> to Playground! You are member #128.")
    );
    let embed = &reply.body.embeds[0];
    assert!(embed.fields[0].value.starts_with("not set"));
    assert!(host.sent_messages().is_empty());
}

#[test]
fn unknown_commands_are_rejected() {
    let host = host();
    let inv = CommandInvocation::new("nope", carol(), 42);
    assert!(matches!(
        Welcome::on_command(&host.context(), inv),
        Err(Error::InvalidArgument(_))
    ));
}

// ------------------------------------------------------------------ manifest

#[test]
fn the_manifest_is_consistent() {
    let m = Welcome::describe();
    assert_eq!((m.id.as_str(), m.version.as_str()), ("welcome", "0.1.0"));
    let default: Value = serde_json::from_str(&m.default_config).unwrap();
    let parsed: Config = serde_json::from_value(default.clone()).unwrap();
    assert_eq!(parsed, Config::default());
    let empty: Config = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, Config::default());

    // Every default key is in the schema, and nothing else is allowed.
    let schema: Value = serde_json::from_str(&m.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for key in default.as_object().unwrap().keys() {
        assert!(schema["properties"].get(key).is_some(), "{key}");
    }
    // Ids take both forms (dashboards send strings).
    let props = &schema["properties"];
    assert_eq!(props["channel"], snowflake::nullable_schema());
    assert_eq!(
        props["leave"]["properties"]["channel"],
        snowflake::nullable_schema()
    );
    assert_eq!(props["auto_roles"]["items"], snowflake::schema());

    let caps: Vec<(Capability, bool)> = m
        .capabilities
        .iter()
        .map(|r| (r.capability, r.required))
        .collect();
    assert_eq!(
        caps,
        vec![
            (Capability::Messages, true),
            (Capability::Members, false),
            (Capability::Roles, false)
        ]
    );
    assert_eq!(
        m.events,
        vec![EventKind::MemberJoined, EventKind::MemberLeft]
    );
    assert_eq!(m.commands[0].name, "welcome-test");
    assert_eq!(m.commands[0].default_permissions, Some(1 << 5));
}
