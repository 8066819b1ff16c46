//! `/8ball`, `/joke` and `/meme`.

use super::*;
use crate::data::{CATEGORIES, EIGHT_BALL, JOKES, MEMES};
use crate::quips::{QUESTION_ECHO, eight_ball_answer, joke_pool, truncate};

fn ask(host: &MockHost, question: &str) -> Reply {
    command(host, "8ball", &[("question", text(question))], ANN).unwrap()
}

/// The answer line of an 8-ball reply: the bold text after the quote.
fn answer_of(reply: &Reply) -> String {
    let description = embed(&reply.body).description.clone().unwrap();
    let answer = description.rsplit("\n\n").next().unwrap();
    answer.trim_matches('*').to_string()
}

#[test]
fn the_8ball_answers_from_the_classic_list_and_quotes_the_question() {
    let host = host();
    let reply = ask(&host, "Will it rain tomorrow?");
    assert!(!reply.ephemeral, "everyone sees the oracle");
    let embed = embed(&reply.body);
    assert_eq!(embed.title.as_deref(), Some("🎱 The Magic 8-Ball"));
    let description = embed.description.as_deref().unwrap();
    assert!(
        description.starts_with("> Will it rain tomorrow?\n\n"),
        "{description}"
    );
    assert!(
        EIGHT_BALL.contains(&answer_of(&reply).as_str()),
        "{description}"
    );
    assert_eq!(embed.footer.as_deref(), Some("Asked by ann"));
    reply.body.validate().unwrap();
    assert!(host.effects().is_empty(), "an answer, not a message sent");
}

#[test]
fn the_8ball_keeps_its_answer_for_the_hour_however_the_question_is_typed() {
    let hour = 493_000;
    let answer = eight_ball_answer("Will it rain tomorrow?", ANN, hour);
    assert_eq!(
        eight_ball_answer("will it   rain TOMORROW", ANN, hour),
        answer
    );
    assert_eq!(
        eight_ball_answer("Will it rain tomorrow?!", ANN, hour),
        answer
    );
    // Across questions, askers and hours every answer comes up.
    let mut seen: Vec<&str> = (0..400u64)
        .map(|n| eight_ball_answer(&format!("question {n}"), ANN + n % 3, hour + n % 5))
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), EIGHT_BALL.len());

    let host = host();
    let first = answer_of(&ask(&host, "Should I learn Rust?"));
    assert_eq!(answer_of(&ask(&host, "should i learn rust")), first);
}

#[test]
fn a_long_or_multi_line_question_is_quoted_on_one_line_within_limits() {
    let host = host();
    let long = format!("Is this fine?\n> **Yes.**\n{}", "very ".repeat(2000));
    let reply = ask(&host, &long);
    reply.body.validate().unwrap();
    let description = embed(&reply.body).description.clone().unwrap();
    let quote = description.split("\n\n").next().unwrap();
    assert!(!quote.contains('\n'), "one line: {quote}");
    assert!(quote.starts_with("> Is this fine? > **Yes.** very very"));
    assert!(quote.ends_with('…'));
    assert_eq!(quote.chars().count(), 2 + QUESTION_ECHO);
    assert_eq!(truncate("short", 10), "short");
    assert_eq!(truncate("abcdef", 4), "abc…");
}

#[test]
fn the_8ball_needs_a_question_and_works_as_a_prefix_command() {
    let host = host();
    let reply = command(&host, "8ball", &[("question", text("   "))], ANN).unwrap();
    assert!(reply.ephemeral);
    assert!(
        reply.content().unwrap().contains("/8ball question:"),
        "a hint: {reply:?}"
    );
    let invocation = CommandInvocation::new("8ball", member(BOB), CHANNEL)
        .via_prefix()
        .with_arg("question", text("Is it Friday yet?"));
    let reply = Fun::on_command(&host.context(), invocation).unwrap();
    assert!(EIGHT_BALL.contains(&answer_of(&reply).as_str()));
}

fn joke_text(reply: &Reply) -> (String, String) {
    let embed = embed(&reply.body);
    (
        embed.title.clone().unwrap(),
        embed.description.clone().unwrap(),
    )
}

#[test]
fn a_joke_of_the_asked_category_with_the_punchline_behind_a_spoiler() {
    let host = host();
    for category in CATEGORIES {
        for _ in 0..5 {
            let reply = command(&host, "joke", &[("category", text(category))], ANN).unwrap();
            let (title, description) = joke_text(&reply);
            assert_eq!(title, format!("😄 A {category} joke"));
            let joke = JOKES
                .iter()
                .find(|j| description == format!("{}\n\n||{}||", j.setup, j.punchline))
                .unwrap_or_else(|| panic!("not a bundled joke: {description}"));
            assert_eq!(joke.category, category);
        }
    }
    // Any category when none is asked for; case and spaces do not matter.
    let reply = command(&host, "joke", &[], ANN).unwrap();
    assert!(joke_text(&reply).0.starts_with("😄 A "));
    let reply = command(&host, "joke", &[("category", text(" Puns "))], ANN).unwrap();
    assert_eq!(joke_text(&reply).0, "😄 A puns joke");
}

#[test]
fn an_unknown_category_is_refused_with_the_known_ones() {
    let host = host();
    let reply = command(&host, "joke", &[("category", text("knock-knock"))], ANN).unwrap();
    assert!(reply.ephemeral);
    assert_eq!(
        reply.content(),
        Some(
            "There is no joke category `knock-knock`; pick one of `animals`, `food`, \
             `programming`, `puns`, `science`."
        )
    );
}

#[test]
fn the_guilds_joke_categories_limit_what_is_told_and_listed() {
    let host = host();
    host.set_config(json!({ "joke_categories": ["science", "animals"] }));
    let config = Config::load().unwrap();
    let pool = joke_pool(None, &config).unwrap();
    assert!(!pool.is_empty());
    assert!(
        pool.iter()
            .all(|j| j.category == "science" || j.category == "animals")
    );
    let reply = command(&host, "joke", &[("category", text("puns"))], ANN).unwrap();
    assert_eq!(
        reply.content(),
        Some("`puns` jokes are turned off in this server; pick one of `animals`, `science`.")
    );
    let reply = command(&host, "joke", &[("category", text("cats"))], ANN).unwrap();
    assert_eq!(
        reply.content(),
        Some("There is no joke category `cats`; pick one of `animals`, `science`.")
    );
    host.set_config(json!({ "joke_categories": [] }));
    let reply = command(&host, "joke", &[], ANN).unwrap();
    assert_eq!(
        reply.content(),
        Some("Jokes are turned off in this server.")
    );
}

#[test]
fn a_meme_is_a_bundled_format_with_its_scene_and_captions() {
    let host = host();
    let mut formats = Vec::new();
    for _ in 0..20 {
        let reply = command(&host, "meme", &[], ANN).unwrap();
        reply.body.validate().unwrap();
        let embed = embed(&reply.body);
        let title = embed.title.clone().unwrap();
        let index = MEMES
            .iter()
            .position(|m| title == format!("🖼️ {}", m.format))
            .unwrap_or_else(|| panic!("not a bundled meme: {title}"));
        let meme = MEMES[index];
        assert_eq!(
            embed.description.as_deref(),
            Some(
                format!(
                    "*{}*\n\n**{}**\n\n**{}**",
                    meme.scene,
                    meme.top.to_uppercase(),
                    meme.bottom.to_uppercase()
                )
                .as_str()
            )
        );
        let footer = embed.footer.clone().unwrap();
        assert!(
            footer.starts_with(&format!("Text meme {} of {}", index + 1, MEMES.len())),
            "{footer}"
        );
        assert!(embed.image_url.is_none(), "nothing points outside");
        formats.push(index);
    }
    formats.sort_unstable();
    formats.dedup();
    assert!(formats.len() > 1, "not always the same meme");
}
