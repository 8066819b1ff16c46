//! Custom commands typed with the prefix or run with `/cc`.

use super::*;
use crate::commands::parse_prefixed;

#[test]
fn every_variable_is_filled_in() {
    let host = host();
    text_command(
        &host,
        "whoami",
        "{user}|{user.mention}|{user.name}|{user.id}|{server.name}|{server.memberCount}|\
         {server.id}|{channel}|{channel.mention}|{args}|{arg1}|{arg2}|{arg9}|{arg0}|{nope}",
    );
    assert_eq!(
        said(&host, ANN, GENERAL, "!whoami one  two"),
        format!(
            "Annie|<@42>|ann|42|Rust Town|1234|{GUILD_ID}|300|<#300>|one two|one|two||{{arg0}}|{{nope}}"
        )
    );
}

#[test]
fn arg1_to_arg9_are_the_words_in_order_and_values_are_not_expanded_again() {
    let host = host();
    text_command(
        &host,
        "args",
        "{arg1}{arg2}{arg3}{arg4}{arg5}{arg6}{arg7}{arg8}{arg9}",
    );
    assert_eq!(
        said(&host, BOB, GENERAL, "!args a b c d e f g h i j"),
        "abcdefghi"
    );
    text_command(&host, "echo", "You said: {args}");
    assert_eq!(
        said(&host, BOB, GENERAL, "!echo {user} {server.name}"),
        "You said: {user} {server.name}"
    );
}

#[test]
fn user_falls_back_to_the_global_name_without_members_and_server_stays_as_written() {
    let host = host();
    text_command(
        &host,
        "who",
        "{user} on {server.name} ({server.memberCount})",
    );
    host.deny(Capability::Members);
    assert_eq!(
        said(&host, ANN, GENERAL, "!who"),
        "Ann A. on {server.name} ({server.memberCount})"
    );
}

#[test]
fn slash_commands_use_the_member_the_host_describes() {
    let host = host();
    text_command(&host, "who", "{user} in {channel.mention}: {args}");
    let reply = slash(&host, "cc", &[("name", "who"), ("args", "x  y")], ANN);
    assert_eq!(reply.content(), Some("Annie in <#300>: x y"));
    assert!(!reply.ephemeral);
}

#[test]
fn each_command_but_tags_is_offered_as_its_own_slash_command() {
    let host = host();
    text_command(&host, "who", "{user} asked: {args}");
    create(
        &host,
        json!({ "name": "faq", "is_tag": true, "response": { "type": "text", "content": "FAQ" } }),
    );
    create(
        &host,
        json!({ "name": "off", "enabled": false, "response": { "type": "text", "content": "x" } }),
    );
    create(
        &host,
        json!({ "name": "rules", "description": "The rules",
                "response": { "type": "text", "content": "Be kind" } }),
    );
    let offered = CustomCommands::guild_commands(&host.context()).unwrap();
    let names: Vec<&str> = offered.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["rules", "who"], "no tag, nothing disabled");
    assert!(offered.iter().all(|c| c.slash && !c.prefix));
    assert_eq!(offered[0].description, "The rules");
    assert_eq!(offered[1].options[0].name, "args");

    let reply = slash(&host, "who", &[("args", "a  b")], ANN);
    assert_eq!(reply.content(), Some("Annie asked: a b"));
    let gone = slash(&host, "nothing", &[], ANN);
    assert!(gone.ephemeral);
    assert!(
        gone.content()
            .unwrap()
            .contains("no custom command named `nothing`")
    );
}

#[test]
fn a_text_command_answers_in_the_channel_and_names_are_case_insensitive() {
    let host = host();
    text_command(&host, "faq", "Read the FAQ, {user}.");
    assert_eq!(said(&host, BOB, MEMES, "!FAQ"), "Read the FAQ, bob.");
    assert!(
        say(&host, BOB, GENERAL, "! faq").is_empty(),
        "a space after the prefix"
    );
    assert!(
        say(&host, BOB, GENERAL, "!unknown").is_empty(),
        "maybe another bot's"
    );
    assert!(say(&host, BOB, GENERAL, "faq").is_empty());
}

#[test]
fn an_embed_command_fills_in_every_text_but_not_its_urls() {
    let host = host();
    create(
        &host,
        json!({
            "name": "rules",
            "response": {
                "type": "embed",
                "title": "Rules of {server.name}",
                "description": "Hi {user.mention}",
                "color": 0x5865F2,
                "fields": [
                    { "name": "Asked by", "value": "{user}", "inline": true },
                    { "name": "Topic", "value": "{arg1}" }
                ],
                "footer": "in {channel}",
                "url": "https://example.com/{user}",
                "image_url": "https://example.com/rules.png"
            }
        }),
    );
    let sent = say(&host, ANN, GENERAL, "!rules");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].content, None);
    let embed = &sent[0].embeds[0];
    assert_eq!(embed.title.as_deref(), Some("Rules of Rust Town"));
    assert_eq!(embed.description.as_deref(), Some("Hi <@42>"));
    assert_eq!(embed.color, Some(0x5865F2));
    assert_eq!(embed.fields[0].name, "Asked by");
    assert_eq!(embed.fields[0].value, "Annie");
    assert!(embed.fields[0].inline);
    assert_eq!(
        embed.fields[1].value, "\u{200B}",
        "an empty field would be refused"
    );
    assert_eq!(embed.footer.as_deref(), Some("in 300"));
    assert_eq!(embed.url.as_deref(), Some("https://example.com/{user}"));
    assert_eq!(
        embed.image_url.as_deref(),
        Some("https://example.com/rules.png")
    );
    assert_eq!(sent[0].validate(), Ok(()));
}

#[test]
fn long_arguments_are_cut_to_discords_limit() {
    let host = host();
    text_command(&host, "echo", "{args}{args}");
    let long = "x".repeat(1500);
    let text = said(&host, BOB, GENERAL, &format!("!echo {long}"));
    assert_eq!(text.chars().count(), 2000);
    assert!(text.ends_with('…'));
}

#[test]
fn a_command_that_has_nothing_to_send_says_so() {
    let host = host();
    text_command(&host, "echo", "{args}");
    let text = said(&host, BOB, GENERAL, "!echo");
    assert!(
        text.starts_with("<@43> `!echo` has nothing it can send"),
        "{text}"
    );
}

#[test]
fn a_cooldown_is_per_member_and_refusals_say_how_long() {
    let host = host();
    create(
        &host,
        json!({ "name": "daily", "response": { "type": "text", "content": "Here you go" },
                "cooldown_seconds": 90 }),
    );
    assert_eq!(said(&host, ANN, GENERAL, "!daily"), "Here you go");
    townes_sdk::testing::set_now(T0 + 20);
    assert_eq!(
        said(&host, ANN, GENERAL, "!daily"),
        "<@42> `!daily` is on cooldown for you: try again in 1m 10s."
    );
    assert_eq!(
        said(&host, BOB, GENERAL, "!daily"),
        "Here you go",
        "Bob's own clock"
    );
    let reply = slash(&host, "cc", &[("name", "daily")], ANN);
    assert_eq!(
        reply.content(),
        Some("`/cc daily` is on cooldown for you: try again in 1m 10s.")
    );
    assert!(reply.ephemeral);
    townes_sdk::testing::set_now(T0 + 90);
    assert_eq!(said(&host, ANN, GENERAL, "!daily"), "Here you go");
    assert_eq!(
        host.storage_value("cd:daily:42").as_deref(),
        Some((T0 + 90).to_string().as_str())
    );
}

#[test]
fn a_lost_cooldown_race_is_refused_too() {
    let _host = host();
    // Another invocation wrote between this one's read and its write: the
    // conditional write fails, so only one of them passes.
    assert_eq!(store::take_cooldown("x", ANN, 30, T0), Ok(None));
    assert_eq!(store::take_cooldown("x", ANN, 30, T0 + 1), Ok(Some(29)));
    assert_eq!(store::take_cooldown("x", ANN, 30, T0 + 30), Ok(None));
}

#[test]
fn a_missing_role_is_refused_with_the_roles_needed() {
    let host = host();
    create(
        &host,
        json!({ "name": "staff", "response": { "type": "text", "content": "Staff only" },
                "required_roles": [HELPER_ROLE.to_string(), VIP_ROLE] }),
    );
    assert_eq!(said(&host, ANN, GENERAL, "!staff"), "Staff only");
    assert_eq!(
        said(&host, BOB, GENERAL, "!staff"),
        "<@43> You need one of these roles to use `!staff`: <@&500>, <@&501>."
    );
    assert_eq!(
        said(&host, GHOST, GENERAL, "!staff"),
        "<@44> You need one of these roles to use `!staff`: <@&500>, <@&501>."
    );
    let reply = slash(&host, "cc", &[("name", "staff")], BOB);
    assert_eq!(
        reply.content(),
        Some("You need one of these roles to use `/cc staff`: <@&500>, <@&501>.")
    );
    assert!(reply.ephemeral);
    assert_eq!(
        slash(&host, "cc", &[("name", "staff")], ANN).content(),
        Some("Staff only")
    );
}

#[test]
fn without_members_a_role_check_is_refused_saying_why() {
    let host = host();
    create(
        &host,
        json!({ "name": "staff", "response": { "type": "text", "content": "Staff only" },
                "required_roles": ["500"] }),
    );
    host.deny(Capability::Members);
    let text = said(&host, ANN, GENERAL, "!staff");
    assert!(
        text.contains("can't check yours") && text.contains("`members`"),
        "{text}"
    );
    // A slash command carries the member's roles: no lookup needed.
    assert_eq!(
        slash(&host, "cc", &[("name", "staff")], ANN).content(),
        Some("Staff only")
    );
}

#[test]
fn a_disabled_command_is_refused_not_dropped() {
    let host = host();
    create(
        &host,
        json!({ "name": "old", "enabled": false,
                "response": { "type": "text", "content": "never" } }),
    );
    assert_eq!(
        said(&host, BOB, GENERAL, "!old"),
        "<@43> `!old` is turned off right now."
    );
    let reply = slash(&host, "cc", &[("name", "old")], BOB);
    assert_eq!(reply.content(), Some("`/cc old` is turned off right now."));
    assert!(reply.ephemeral);
}

#[test]
fn cc_runs_any_command_and_refuses_unknown_ones() {
    let host = host();
    text_command(&host, "hello", "Hello, {user}! {arg1}");
    create(
        &host,
        json!({ "name": "faq", "is_tag": true, "response": { "type": "text", "content": "FAQ" } }),
    );
    assert_eq!(
        slash(&host, "cc", &[("name", " Hello "), ("args", "wave")], BOB).content(),
        Some("Hello, bob! wave")
    );
    assert_eq!(
        slash(&host, "cc", &[("name", "!faq")], BOB).content(),
        Some("FAQ")
    );
    for name in ["nope", "Not A Name!"] {
        let reply = slash(&host, "cc", &[("name", name)], BOB);
        assert!(reply.ephemeral);
        assert!(
            reply
                .content()
                .unwrap()
                .starts_with("There is no custom command named"),
            "{reply:?}"
        );
    }
    assert!(host.sent_messages().is_empty(), "slash answers are replies");
}

#[test]
fn prefixed_messages_are_parsed_into_a_name_and_words() {
    assert_eq!(
        parse_prefixed("  !Faq  a\tb ", "!"),
        Some(("faq".to_string(), vec!["a".to_string(), "b".to_string()]))
    );
    assert_eq!(
        parse_prefixed("cc!x", "cc!"),
        Some(("x".to_string(), vec![]))
    );
    assert_eq!(parse_prefixed("! x", "!"), None);
    assert_eq!(parse_prefixed("!", "!"), None);
    assert_eq!(parse_prefixed("!hé", "!"), None);
    assert_eq!(parse_prefixed(&format!("!{}", "a".repeat(33)), "!"), None);
    assert_eq!(parse_prefixed("?x", "!"), None);
}
