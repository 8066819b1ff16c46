//! Multi-page menus paged by buttons whose custom ids carry the page.

use super::*;

fn menu(host: &MockHost) {
    create(
        host,
        json!({
            "name": "guide",
            "menu_pages": [
                { "type": "text", "content": "Page one for {user}" },
                { "type": "embed", "title": "Page two", "description": "Roles and channels" },
                { "type": "text", "content": "Page three" }
            ]
        }),
    );
}

#[test]
fn a_menu_shows_page_one_with_previous_and_next_buttons() {
    let host = host();
    menu(&host);
    let sent = say(&host, ANN, GENERAL, "!guide");
    assert_eq!(sent[0].content.as_deref(), Some("Page one for Annie"));
    assert_eq!(
        buttons(&sent[0]),
        [
            ("page:guide:0".to_string(), "◀ Previous".to_string(), true),
            ("page:guide:1".to_string(), "1 / 3".to_string(), true),
            ("page:guide:2".to_string(), "Next ▶".to_string(), false),
        ]
    );
    assert_eq!(sent[0].validate(), Ok(()));
    let reply = slash(&host, "cc", &[("name", "guide")], BOB);
    assert_eq!(reply.content(), Some("Page one for bob"));
    assert_eq!(buttons(&reply.body).len(), 3);
}

#[test]
fn buttons_page_through_the_menu_from_their_custom_ids_alone() {
    let host = host();
    menu(&host);
    // No state but the custom id: this works after a restart or elsewhere.
    let two = click(&host, "page:guide:2", BOB);
    assert!(two.ephemeral, "the clicker pages their own copy");
    assert_eq!(two.body.content, None);
    assert_eq!(two.body.embeds[0].title.as_deref(), Some("Page two"));
    assert_eq!(
        buttons(&two.body),
        [
            ("page:guide:1".to_string(), "◀ Previous".to_string(), false),
            ("page:guide:2".to_string(), "2 / 3".to_string(), true),
            ("page:guide:3".to_string(), "Next ▶".to_string(), false),
        ]
    );
    let three = click(&host, "page:guide:3", BOB);
    assert_eq!(three.content(), Some("Page three"));
    assert_eq!(
        buttons(&three.body)[2],
        ("page:guide:4".to_string(), "Next ▶".to_string(), true)
    );
    let one = click(&host, "page:guide:1", ANN);
    assert_eq!(one.content(), Some("Page one for Annie"));
    assert!(host.sent_messages().is_empty() && host.edited_messages().is_empty());
}

#[test]
fn forged_or_stale_page_buttons_are_refused_politely() {
    let host = host();
    menu(&host);
    text_command(&host, "plain", "not a menu");
    for (id, expected) in [
        (
            "page:guide:0",
            "That page doesn't exist: `guide` has pages 1 to 3.",
        ),
        (
            "page:guide:4",
            "That page doesn't exist: `guide` has pages 1 to 3.",
        ),
        (
            "page:guide:-1",
            "That page doesn't exist: `guide` has pages 1 to 3.",
        ),
        (
            "page:guide:two",
            "That page doesn't exist: `guide` has pages 1 to 3.",
        ),
        ("page:gone:1", "The `gone` menu doesn't exist any more."),
        ("page:plain:1", "`plain` isn't a menu any more."),
        ("page:BAD NAME:1", "That button isn't one of my menus."),
        ("page:", "That button isn't one of my menus."),
    ] {
        let reply = click(&host, id, BOB);
        assert_eq!(reply.content(), Some(expected), "{id}");
        assert!(reply.ephemeral, "{id}");
        assert!(reply.body.components.is_empty(), "{id}");
    }
}

#[test]
fn page_buttons_keep_the_menus_roles_and_enabled_flag() {
    let host = host();
    create(
        &host,
        json!({
            "name": "staffguide",
            "required_roles": ["500"],
            "menu_pages": [
                { "type": "text", "content": "one" },
                { "type": "text", "content": "two" }
            ]
        }),
    );
    assert_eq!(
        click(&host, "page:staffguide:2", ANN).content(),
        Some("two")
    );
    let refused = click(&host, "page:staffguide:2", BOB);
    assert_eq!(
        refused.content(),
        Some("You need one of these roles to use `staffguide`: <@&500>.")
    );
    api(
        &host,
        Method::Put,
        "/commands/{name}",
        Some("staffguide"),
        Some(
            json!({ "enabled": false, "menu_pages": [{ "type": "text", "content": "one" },
                                                       { "type": "text", "content": "two" }] }),
        ),
    )
    .unwrap();
    assert_eq!(
        click(&host, "page:staffguide:2", ANN).content(),
        Some("`staffguide` is turned off right now.")
    );
}

#[test]
fn a_one_page_menu_has_no_buttons() {
    let host = host();
    create(
        &host,
        json!({ "name": "single", "menu_pages": [{ "type": "text", "content": "only" }] }),
    );
    let sent = say(&host, BOB, GENERAL, "!single");
    assert_eq!(sent[0].content.as_deref(), Some("only"));
    assert!(sent[0].components.is_empty());
}
