//! Tags: shown by `!name` and `/tag name`, listed by category.

use super::*;

fn tag(host: &MockHost, name: &str, category: Option<&str>, content: &str) {
    let mut body = json!({ "name": name, "is_tag": true,
                           "response": { "type": "text", "content": content } });
    if let Some(category) = category {
        body["category"] = json!(category);
    }
    create(host, body);
}

fn some_tags(host: &MockHost) {
    tag(host, "rules", Some("info"), "Be kind.");
    tag(host, "faq", Some("info"), "Read the FAQ.");
    tag(host, "refund", Some("support"), "Refunds take 5 days.");
    tag(host, "hi", None, "Hi {user}!");
    text_command(host, "notatag", "x");
    create(
        host,
        json!({ "name": "hidden", "is_tag": true, "enabled": false, "category": "info",
                "response": { "type": "text", "content": "off" } }),
    );
}

#[test]
fn a_tag_is_shown_by_its_name_and_by_slash_tag() {
    let host = host();
    some_tags(&host);
    assert_eq!(said(&host, BOB, GENERAL, "!refund"), "Refunds take 5 days.");
    let reply = slash(&host, "tag", &[("name", "hi")], ANN);
    assert_eq!(reply.content(), Some("Hi Annie!"));
    assert!(!reply.ephemeral);
    let reply = slash(&host, "tag", &[("name", "notatag")], ANN);
    assert_eq!(
        reply.content(),
        Some("There is no tag named `notatag`. `/tags` lists the tags.")
    );
    assert!(reply.ephemeral);
}

#[test]
fn tags_are_listed_by_category_without_disabled_ones() {
    let host = host();
    some_tags(&host);
    let all = said(&host, BOB, GENERAL, "!tags");
    assert_eq!(
        all,
        "**Tags** — use `!name` or `/tag name`\n\
         **general**: `hi`\n\
         **info**: `faq`, `rules`\n\
         **support**: `refund`"
    );
    assert_eq!(
        said(&host, BOB, GENERAL, "!tags Support"),
        "**Tags** — use `!name` or `/tag name`\n**support**: `refund`"
    );
    let reply = slash(&host, "tags", &[("category", "info")], BOB);
    assert_eq!(
        reply.content(),
        Some("**Tags** — use `!name` or `/tag name`\n**info**: `faq`, `rules`")
    );
    let reply = slash(&host, "tags", &[], BOB);
    assert_eq!(reply.content(), Some(all.as_str()));
}

#[test]
fn an_unknown_category_names_the_known_ones_and_no_tags_says_so() {
    let host = host();
    assert_eq!(said(&host, BOB, GENERAL, "!tags"), "There are no tags yet.");
    some_tags(&host);
    assert_eq!(
        said(&host, BOB, GENERAL, "!tags games"),
        "There are no tags in `games`. Categories: `general`, `info`, `support`."
    );
}

#[test]
fn the_listing_follows_the_configured_prefix() {
    let host = host();
    some_tags(&host);
    host.set_config(json!({ "prefix": "?" }));
    let text = said(&host, BOB, GENERAL, "?tags support");
    assert!(text.starts_with("**Tags** — use `?name`"), "{text}");
}
