//! Starting a poll: what is refused with which hint, and what is posted.

use super::*;
use crate::pick::now;
use crate::poll::{Click, END_POLL_JOB, parse_custom_id, parse_duration, parse_options};

/// The hint a refused `/poll` answers (ephemeral), with nothing stored or sent.
fn refused(host: &MockHost, args: &[(&str, OptionValue)]) -> String {
    let reply = command(host, "poll", args, ANN).unwrap();
    assert!(reply.ephemeral, "{reply:?}");
    assert!(host.effects().is_empty(), "{:?}", host.effects());
    assert_eq!(host.storage_value("poll:0000000001"), None);
    reply.content().unwrap().to_string()
}

fn poll_args(options: &str) -> Vec<(&'static str, OptionValue)> {
    vec![("question", text("Lunch?")), ("options", text(options))]
}

#[test]
fn options_split_on_bars_or_semicolons_and_are_tidied() {
    assert_eq!(
        parse_options(" Pizza |Pasta|  Salad  bar |").unwrap(),
        ["Pizza", "Pasta", "Salad bar"]
    );
    assert_eq!(
        parse_options("Tea;Coffee; Juice").unwrap(),
        ["Tea", "Coffee", "Juice"]
    );
    // With a bar present, a semicolon belongs to its option.
    assert_eq!(
        parse_options("Tea; hot | Coffee; iced").unwrap(),
        ["Tea; hot", "Coffee; iced"]
    );
}

#[test]
fn bad_options_are_refused_with_a_hint() {
    let host = host();
    let few = refused(&host, &poll_args("Pizza"));
    assert_eq!(
        few,
        "A poll needs 2 to 10 options separated by `|` or `;`, e.g. `Pizza | Pasta | Salad` \
         (I found 1)."
    );
    assert!(refused(&host, &poll_args("Pizza, Pasta, Salad")).contains("(I found 1)"));
    assert!(refused(&host, &poll_args(" | | ")).contains("(I found 0)"));
    let eleven: Vec<String> = (1..=11).map(|n| format!("Option {n}")).collect();
    assert_eq!(
        refused(&host, &poll_args(&eleven.join(" | "))),
        "A poll has at most 10 options and you gave 11; merge some or run two polls."
    );
    let long = format!("Pizza | {} | Salad", "x".repeat(81));
    assert_eq!(
        refused(&host, &poll_args(&long)),
        "Option 2 is 81 characters long; keep each option to 80."
    );
    assert_eq!(
        refused(&host, &poll_args("Pizza | Pasta | pizza")),
        "“pizza” is there twice; every option must differ."
    );
    let hint = refused(&host, &[("options", text("A | B"))]);
    assert!(hint.starts_with("Give the poll a question"), "{hint}");
    let question = "Why? ".repeat(50);
    let hint = refused(
        &host,
        &[("question", text(&question)), ("options", text("A | B"))],
    );
    assert_eq!(hint, "The question is 249 characters long; keep it to 240.");
    // Exactly at the limits is fine.
    let ten: Vec<String> = (1..=10).map(|n| format!("{n}{}", "y".repeat(78))).collect();
    assert_eq!(parse_options(&ten.join("|")).unwrap().len(), 10);
}

#[test]
fn durations_parse_within_the_guilds_limit_and_nonsense_gets_a_hint() {
    assert_eq!(parse_duration("30m", 7), Ok(1800));
    assert_eq!(parse_duration("2h", 7), Ok(7200));
    assert_eq!(parse_duration("1d", 7), Ok(86_400));
    assert_eq!(parse_duration("1h30m", 7), Ok(5400));
    assert_eq!(parse_duration(" 1W ", 7), Ok(604_800));
    assert_eq!(parse_duration("7d", 7), Ok(604_800));
    for bad in [
        "",
        "soon",
        "10",
        "h",
        "1x",
        "-5m",
        "0m",
        "99999999999999999999d",
    ] {
        let Err(Error::InvalidArgument(why)) = parse_duration(bad, 7) else {
            panic!("{bad} was accepted");
        };
        assert!(why.contains("e.g. `30m`, `2h`, `1d`"), "{bad}: {why}");
        assert!(why.contains("(from 10 seconds to 7 days)"), "{bad}: {why}");
    }
    assert_eq!(parse_duration("30s", 7), Ok(30));
    assert_eq!(
        parse_duration("5s", 7),
        Err(Error::invalid(
            "A poll runs for at least 10 seconds; `5s` is shorter."
        ))
    );
    assert_eq!(
        parse_duration("8d", 7),
        Err(Error::invalid(
            "A poll runs for at most 7 days here; `8d` is longer."
        ))
    );
    assert_eq!(parse_duration("30d", 30), Ok(30 * 86_400));

    let host = host();
    let mut args = poll_args("A | B");
    args.push(("duration", text("a fortnight")));
    assert!(refused(&host, &args).starts_with("Duration `a fortnight`: use a number"));
    host.set_config(json!({ "max_poll_days": 2 }));
    let mut args = poll_args("A | B");
    args.push(("duration", text("3d")));
    assert_eq!(
        refused(&host, &args),
        "A poll runs for at most 2 days here; `3d` is longer."
    );
}

#[test]
fn a_poll_is_stored_posted_with_a_button_per_option_and_scheduled_to_end() {
    let host = host();
    let before = now();
    let reply = start_poll(&host, "Lunch?", "Pizza | Pasta | Salad", &[]);
    assert!(reply.ephemeral);
    let poll = poll(1);
    assert_eq!(
        reply.content(),
        Some(format!("Poll #1 is up; it ends <t:{}:R>.", poll.ends_at).as_str())
    );
    // Stored as documented.
    assert_eq!(poll.question, "Lunch?");
    assert_eq!(poll.options, ["Pizza", "Pasta", "Salad"]);
    assert_eq!((poll.channel_id, poll.creator), (CHANNEL, ANN));
    assert!(!poll.multi && !poll.closed);
    assert!(
        (before + 86_400..=now() + 86_400).contains(&poll.ends_at),
        "24 h by default"
    );
    let stored: Value =
        serde_json::from_str(&host.storage_value("poll:0000000001").unwrap()).unwrap();
    for key in [
        "number",
        "channel_id",
        "message_id",
        "question",
        "options",
        "multi",
        "ends_at",
        "closed",
        "creator",
    ] {
        assert!(stored.get(key).is_some(), "{key} in {stored}");
    }
    assert_eq!(stored["channel_id"], "300", "ids as strings");
    assert_eq!(host.storage_value("poll:next").as_deref(), Some("1"));

    // Posted in the channel, with the id kept.
    let sent = host.effects();
    let (message_id, body) = sent
        .iter()
        .find_map(|e| match e {
            Effect::MessageSent {
                id,
                channel_id: CHANNEL,
                body,
            } => Some((*id, body.clone())),
            _ => None,
        })
        .expect("the poll was posted");
    assert_eq!(poll.message_id, Some(message_id));
    let embed = embed(&body);
    assert_eq!(embed.title.as_deref(), Some("📊 Lunch?"));
    let shown = embed_text(embed);
    assert!(
        shown.contains("1️⃣ **Pizza**\n`░░░░░░░░░░` 0% · 0 votes"),
        "{shown}"
    );
    assert!(shown.contains("3️⃣ **Salad**"), "{shown}");
    assert!(shown.contains(&format!("Ends: <t:{0}:R> (<t:{0}:f>)", poll.ends_at)));
    assert_eq!(
        embed.footer.as_deref(),
        Some("Poll #1 · one choice each · 0 voters")
    );
    assert_eq!(
        button_ids(&body),
        ["vote:1:0", "vote:1:1", "vote:1:2", "end:1"]
    );
    assert_eq!(body.components.len(), 2, "the options' row and End poll's");
    let UiComponent::Button(first) = &body.components[0].components[0] else {
        panic!("a button")
    };
    assert_eq!(
        (first.label.as_str(), first.emoji.as_deref()),
        ("Pizza", Some("1️⃣"))
    );
    let UiComponent::Button(end) = &body.components[1].components[0] else {
        panic!("a button")
    };
    assert_eq!(end.label, "End poll");
    assert!(menus(&body).is_empty());

    // The job that ends it, due when it ends.
    let (job_id, delay) = sent
        .iter()
        .find_map(|e| match e {
            Effect::JobScheduled {
                id,
                name,
                payload,
                delay_seconds,
            } if name == END_POLL_JOB && payload == "1" => Some((id.clone(), *delay_seconds)),
            _ => None,
        })
        .expect("an end-poll job");
    assert_eq!(delay, 86_400);
    assert_eq!(poll.job, Some(job_id));
    assert_eq!(host.live_events()[0].1["action"], "created");
}

#[test]
fn five_options_are_buttons_and_more_become_a_menu() {
    let host = host();
    start_poll(&host, "Five?", "A | B | C | D | E", &[]);
    let five = shown(&host, poll(1).message_id.unwrap());
    assert_eq!(
        button_ids(&five),
        [
            "vote:1:0", "vote:1:1", "vote:1:2", "vote:1:3", "vote:1:4", "end:1"
        ]
    );
    assert_eq!(five.components[0].components.len(), 5);

    start_poll(&host, "Six?", "A | B | C | D | E | F", &[]);
    let six = shown(&host, poll(2).message_id.unwrap());
    assert_eq!(button_ids(&six), ["end:2"], "no option buttons");
    let menu = &menus(&six)[0];
    assert_eq!(menu.custom_id, "vote:2");
    assert_eq!((menu.min_values, menu.max_values), (1, 1));
    let options: Vec<(&str, &str)> = menu
        .options
        .iter()
        .map(|o| (o.label.as_str(), o.value.as_str()))
        .collect();
    assert_eq!(
        options,
        [
            ("A", "0"),
            ("B", "1"),
            ("C", "2"),
            ("D", "3"),
            ("E", "4"),
            ("F", "5")
        ]
    );

    let ten = "1|2|3|4|5|6|7|8|9|10";
    start_poll(&host, "Ten?", ten, &[("multi", OptionValue::Boolean(true))]);
    let multi = shown(&host, poll(3).message_id.unwrap());
    let menu = &menus(&multi)[0];
    assert_eq!(
        (menu.min_values, menu.max_values),
        (1, 10),
        "several at once"
    );
    assert_eq!(
        embed(&multi).footer.as_deref(),
        Some("Poll #3 · choose any number · 0 voters")
    );
    for body in [five, six, multi] {
        body.validate().unwrap();
    }
}

#[test]
fn the_longest_poll_fits_discords_limits() {
    let host = host();
    let options: Vec<String> = (0..10).map(|n| format!("{n}{}", "o".repeat(79))).collect();
    let question = "q".repeat(240);
    start_poll(&host, &question, &options.join("|"), &[]);
    let poll = poll(1);
    assert_eq!(poll.options.len(), 10);
    let mut tally = Tally::empty(10);
    tally.counts = vec![1_000_000; 10];
    tally.voters = 10_000_000;
    crate::render::poll_message(&poll, &tally)
        .validate()
        .unwrap();
    let mut ended = poll.clone();
    ended.closed = true;
    ended.closed_at = Some(now());
    crate::render::poll_message(&ended, &tally)
        .validate()
        .unwrap();
    crate::render::results_message(1, &ended, &tally)
        .validate()
        .unwrap();
}

#[test]
fn a_poll_that_cannot_be_posted_or_scheduled_leaves_nothing_behind() {
    let host = host();
    host.deny(Capability::Messages);
    let reply = start_poll(&host, "Lunch?", "A | B", &[]);
    assert!(reply.ephemeral);
    assert!(
        reply
            .content()
            .unwrap()
            .contains("may not post in this channel")
    );
    assert_eq!(host.storage_value("poll:0000000001"), None);
    assert!(host.pending_jobs().is_empty(), "the job was cancelled");

    host.allow(Capability::Messages);
    host.fail(Capability::Scheduler, Error::Unavailable("down".into()));
    let args = poll_args("A | B");
    assert_eq!(
        command(&host, "poll", &args, ANN),
        Err(Error::Unavailable("down".into()))
    );
    assert_eq!(host.storage_value("poll:0000000002"), None);
    assert!(host.sent_messages().is_empty());
}

#[test]
fn custom_ids_read_back_as_what_they_were_made_for() {
    assert_eq!(
        parse_custom_id("vote:12:3"),
        Some(Click::Vote {
            poll: 12,
            option: Some(3)
        })
    );
    assert_eq!(
        parse_custom_id("vote:12"),
        Some(Click::Vote {
            poll: 12,
            option: None
        })
    );
    assert_eq!(parse_custom_id("end:12"), Some(Click::End { poll: 12 }));
    for other in [
        "end",
        "vote:-1",
        "vote:1:-1",
        "end:1:1",
        "poll:1",
        "vote:1:2:3",
    ] {
        assert_eq!(parse_custom_id(other), None, "{other}");
    }
}
