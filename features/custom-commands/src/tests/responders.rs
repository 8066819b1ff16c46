//! Auto-responders: match types, case, channel scope, limits and counts.

use super::*;
use crate::responders::{REGEX_SIZE_LIMIT, compile};

fn text(content: &str) -> Value {
    json!({ "type": "text", "content": content })
}

/// Creates a responder of `match_type` for `trigger` answering `answer`.
fn make(host: &MockHost, match_type: &str, trigger: &str, answer: &str) -> String {
    responder(
        host,
        json!({ "trigger": trigger, "match_type": match_type, "response": text(answer) }),
    )
}

/// Whether a message by Bob in a fresh channel gets `answer` (a new channel
/// each time keeps the 10-second channel limit out of the way).
fn answers(host: &MockHost, content: &str) -> Option<String> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(10_000);
    let channel = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let sent = say(host, BOB, channel, content);
    assert!(sent.len() <= 1);
    sent.first().map(|b| b.content.clone().unwrap_or_default())
}

#[test]
fn each_match_type_matches_what_it_says() {
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "exact",
            "hello",
            &["hello", "  HELLO  ", "Hello"],
            &["hello there", "say hello"],
        ),
        (
            "contains",
            "pizza",
            &["I like pizza!", "PIZZA", "pizzas"],
            &["pizz a", "pasta"],
        ),
        (
            "starts_with",
            "good morning",
            &["Good morning all", "  good morning"],
            &["a good morning"],
        ),
        (
            "ends_with",
            "?!",
            &["what?!", "really?!  "],
            &["?! no", "what?"],
        ),
        (
            "regex",
            r"\bgm\b|good ?night",
            &["gm all", "GOODNIGHT", "good night"],
            &["gmail", "night"],
        ),
    ];
    for (match_type, trigger, hits, misses) in cases {
        let host = host();
        make(&host, match_type, trigger, "matched");
        for hit in *hits {
            assert_eq!(
                answers(&host, hit).as_deref(),
                Some("matched"),
                "{match_type} {hit:?}"
            );
        }
        for miss in *misses {
            assert_eq!(answers(&host, miss), None, "{match_type} {miss:?}");
        }
    }
}

#[test]
fn case_sensitivity_is_an_option() {
    let host = host();
    responder(
        &host,
        json!({ "trigger": "NASA", "match_type": "contains", "case_sensitive": true,
                "response": text("space!") }),
    );
    responder(
        &host,
        json!({ "trigger": "^Rust$", "match_type": "regex", "case_sensitive": true,
                "response": text("crab") }),
    );
    assert_eq!(answers(&host, "I love NASA").as_deref(), Some("space!"));
    assert_eq!(answers(&host, "I love nasa"), None);
    assert_eq!(answers(&host, "Rust").as_deref(), Some("crab"));
    assert_eq!(answers(&host, "rust"), None);
}

#[test]
fn a_channel_scope_limits_where_it_answers() {
    let host = host();
    responder(
        &host,
        json!({ "trigger": "meme", "match_type": "contains", "channels": [MEMES.to_string()],
                "response": text("😂") }),
    );
    assert!(say(&host, BOB, GENERAL, "a meme").is_empty());
    assert_eq!(said(&host, BOB, MEMES, "a meme"), "😂");
    assert_eq!(
        host.storage_value("ar-count:0000000001").as_deref(),
        Some("1")
    );
}

#[test]
fn a_channel_gets_at_most_one_auto_response_per_ten_seconds() {
    let host = host();
    make(&host, "contains", "hi", "hello!");
    assert_eq!(said(&host, BOB, GENERAL, "hi"), "hello!");
    townes_sdk::testing::set_now(T0 + 9);
    assert!(say(&host, ANN, GENERAL, "hi again").is_empty());
    assert_eq!(
        said(&host, ANN, MEMES, "hi"),
        "hello!",
        "other channels are free"
    );
    townes_sdk::testing::set_now(T0 + 10);
    assert_eq!(said(&host, ANN, GENERAL, "hi"), "hello!");
    assert_eq!(
        host.storage_value("ar-last:300").as_deref(),
        Some((T0 + 10).to_string().as_str())
    );
    // Every match counts, the one held back too.
    let (_, value) = api(&host, Method::Get, "/auto-responders/{id}", Some("1"), None).unwrap();
    assert_eq!(value["trigger_count"], 4);
}

#[test]
fn the_channel_slot_is_taken_with_a_conditional_write() {
    let _host = host();
    assert_eq!(store::take_channel_slot(GENERAL, 10, T0), Ok(true));
    assert_eq!(
        store::take_channel_slot(GENERAL, 10, T0),
        Ok(false),
        "the racer loses"
    );
    assert_eq!(store::take_channel_slot(GENERAL, 10, T0 + 10), Ok(true));
}

#[test]
fn a_message_gets_one_response_the_first_by_priority_then_order() {
    let host = host();
    let low = make(&host, "contains", "cake", "first made");
    let other = make(&host, "contains", "cake", "second made");
    let sent = say(&host, BOB, GENERAL, "cake please");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].content.as_deref(), Some("first made"));
    assert_eq!(
        host.storage_value(&format!("ar-count:{:0>10}", low))
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        host.storage_value(&format!("ar-count:{:0>10}", other)),
        None
    );
    let high = responder(
        &host,
        json!({ "trigger": "cake", "match_type": "exact", "priority": 5,
                "response": text("priority") }),
    );
    townes_sdk::testing::set_now(T0 + 60);
    assert_eq!(said(&host, BOB, GENERAL, "cake"), "priority");
    assert_eq!(
        host.storage_value(&format!("ar-count:{:0>10}", high))
            .as_deref(),
        Some("1")
    );
    let (_, list) = api(&host, Method::Get, "/auto-responders", None, None).unwrap();
    let order: Vec<&str> = list["auto_responders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, [high.as_str(), low.as_str(), other.as_str()]);
}

#[test]
fn a_message_that_ran_a_command_gets_no_auto_response() {
    let host = host();
    text_command(&host, "hi", "command");
    make(&host, "contains", "hi", "responder");
    let sent = say(&host, BOB, GENERAL, "!hi");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].content.as_deref(), Some("command"));
    assert_eq!(host.storage_value("ar-count:0000000001"), None);
    assert_eq!(said(&host, BOB, GENERAL, "!unknown hi"), "responder");
}

#[test]
fn disabled_responders_stay_quiet_and_responses_use_the_variables() {
    let host = host();
    responder(
        &host,
        json!({ "trigger": "ping", "match_type": "exact", "enabled": false,
                "response": text("pong") }),
    );
    responder(
        &host,
        json!({ "trigger": "welcome", "match_type": "starts_with",
                "response": { "type": "embed", "title": "Welcome to {server.name}",
                              "description": "{user.mention} said: {args}" } }),
    );
    assert!(say(&host, BOB, GENERAL, "ping").is_empty());
    let sent = say(&host, ANN, GENERAL, "welcome  everyone");
    assert_eq!(
        sent[0].embeds[0].title.as_deref(),
        Some("Welcome to Rust Town")
    );
    assert_eq!(
        sent[0].embeds[0].description.as_deref(),
        Some("<@42> said: welcome everyone")
    );
}

#[test]
fn an_invalid_or_too_large_regex_is_refused_when_saved_with_the_reason() {
    let host = host();
    let save = |trigger: &str| {
        api(
            &host,
            Method::Post,
            "/auto-responders",
            None,
            Some(json!({ "trigger": trigger, "match_type": "regex", "response": text("x") })),
        )
    };
    let Err(Error::InvalidArgument(why)) = save("(unclosed") else {
        panic!("an invalid regex was saved")
    };
    assert!(
        why.starts_with("trigger: the pattern is not a valid regex"),
        "{why}"
    );
    assert!(why.contains("unclosed group"), "{why}");
    let Err(Error::InvalidArgument(why)) = save(r"(?:\w{50}){50}") else {
        panic!("a huge regex was saved")
    };
    assert!(why.contains("compiles to more than"), "{why}");
    let Err(Error::InvalidArgument(why)) = save(r"(a)\1") else {
        panic!("a back-reference was saved")
    };
    assert!(why.contains("not a valid regex"), "{why}");
    // Too long for the schema and for the feature.
    let long = "a".repeat(201);
    let Err(why) = compile(&long, false) else {
        panic!("a 201-character pattern compiled")
    };
    assert_eq!(why, "the pattern is 201 characters long; at most 200");
    assert!(compile(&"a".repeat(200), false).is_ok());
    const {
        assert!(
            REGEX_SIZE_LIMIT < 10 * (1 << 20),
            "smaller than the crate's default"
        )
    };
    assert_eq!(host.storage_value("ar-next"), None, "nothing was stored");
    // The same check on update.
    let id = make(&host, "contains", "ok", "fine");
    let Err(Error::InvalidArgument(why)) = api(
        &host,
        Method::Put,
        "/auto-responders/{id}",
        Some(&id),
        Some(json!({ "trigger": "[z-a]", "match_type": "regex", "response": text("x") })),
    ) else {
        panic!("an invalid regex was saved by PUT")
    };
    assert!(why.contains("not a valid regex"), "{why}");
}

#[test]
fn common_regexes_fit_the_size_limits() {
    for pattern in [
        r"\b(good ?morning|gm)\b",
        r"^\w+@\w+\.(com|org)$",
        r"(?i)discord\.gg/\w+",
        r"\d{3}-\d{4}",
        r"[\p{Emoji}]{3,}",
    ] {
        assert!(
            compile(pattern, false).is_ok(),
            "{pattern}: {:?}",
            compile(pattern, false)
        );
    }
}

#[test]
fn messages_without_content_are_ignored() {
    let host = host();
    make(&host, "regex", ".*", "anything");
    let before = host.calls();
    assert!(say(&host, BOB, GENERAL, "").is_empty());
    assert_eq!(host.calls(), before, "nothing was even read");
}
