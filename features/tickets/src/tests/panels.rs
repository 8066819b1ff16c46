//! Panels: posted by `/ticket-panel create` and `POST /panels`, listed and
//! deleted by the routes.

use super::*;

#[test]
fn the_command_posts_a_panel_with_an_open_button_and_stores_it() {
    let host = host();
    let reply = command(
        &host,
        "ticket-panel",
        "create",
        &[
            ("channel", OptionValue::Channel(PANEL_CHANNEL)),
            ("title", OptionValue::Text("  Support  ".into())),
            ("description", OptionValue::Text("Ask us anything".into())),
            ("emoji", OptionValue::Text("🎫".into())),
            ("category", OptionValue::Channel(CATEGORY)),
            ("support_role", OptionValue::Role(SUPPORT_ROLE)),
        ],
        ADMIN,
        1,
    );
    assert!(reply.ephemeral);
    assert_eq!(
        reply.content(),
        Some(format!("Panel #1 is up in <#{PANEL_CHANNEL}>.").as_str())
    );
    let (message_id, channel, body) = host
        .effects()
        .into_iter()
        .find_map(|e| match e {
            Effect::MessageSent {
                id,
                channel_id,
                body,
            } => Some((id, channel_id, body)),
            _ => None,
        })
        .expect("the panel's message");
    assert_eq!(channel, PANEL_CHANNEL);
    assert_eq!(body.embeds[0].title.as_deref(), Some("Support"), "trimmed");
    assert_eq!(
        body.embeds[0].description.as_deref(),
        Some("Ask us anything")
    );
    let townes_sdk::UiComponent::Button(button) = &body.components[0].components[0] else {
        panic!("a button");
    };
    assert_eq!(button.custom_id.as_deref(), Some("open:1"));
    assert_eq!(button.label, "Open a ticket");
    assert_eq!(button.emoji.as_deref(), Some("🎫"));

    let panel = store::load_panel(1).unwrap();
    assert_eq!(panel.message_id, message_id);
    assert_eq!(panel.category_id, Some(CATEGORY));
    assert_eq!(panel.support_roles, [SUPPORT_ROLE]);
    assert_eq!(
        host.audit_entries()[0].0,
        "ticket.panel_created",
        "audited where granted"
    );
    let stored: Value =
        serde_json::from_str(&host.storage_value("panel:0000000001").unwrap()).unwrap();
    assert_eq!(stored["channel_id"], "300", "ids are stored as strings");

    // A second panel gets the next number and the default text.
    command(
        &host,
        "ticket-panel",
        "create",
        &[
            ("channel", OptionValue::Channel(301)),
            ("title", OptionValue::Text("Appeals".into())),
            ("label", OptionValue::Text("Appeal".into())),
        ],
        ADMIN,
        1,
    );
    let second = store::load_panel(2).unwrap();
    assert_eq!(
        (second.button_label.as_str(), second.category_id),
        ("Appeal", None)
    );
    let (_, body) = host.sent_messages().pop().unwrap();
    assert!(
        body.embeds[0]
            .description
            .as_deref()
            .unwrap()
            .contains("open a private ticket")
    );
}

#[test]
fn a_panel_that_would_not_work_is_refused_politely_and_not_posted() {
    let host = host();
    let create =
        |args: &[(&str, OptionValue)]| command(&host, "ticket-panel", "create", args, ADMIN, 1);
    let channel = ("channel", OptionValue::Channel(PANEL_CHANNEL));
    let blank = create(&[channel.clone(), ("title", OptionValue::Text("   ".into()))]);
    assert!(
        blank.ephemeral && blank.content().unwrap().contains("title"),
        "{blank:?}"
    );
    let everyone = create(&[
        channel.clone(),
        ("title", OptionValue::Text("Help".into())),
        ("support_role", OptionValue::Role(GUILD_ID)),
    ]);
    assert!(
        everyone
            .content()
            .unwrap()
            .contains("@everyone cannot be a support role")
    );
    let long = create(&[
        channel,
        ("title", OptionValue::Text("Help".into())),
        ("label", OptionValue::Text("x".repeat(81))),
    ]);
    assert!(long.content().unwrap().contains("at most 80"), "{long:?}");
    assert!(host.sent_messages().is_empty());
    assert!(store::panels().unwrap().is_empty());
}

#[test]
fn the_routes_create_list_and_delete_panels() {
    let host = host();
    let (_, empty) = api(&host, Method::Get, "/panels", None, &[], None, Some(ADMIN)).unwrap();
    assert_eq!(empty, json!({ "panels": [] }));

    let (status, panel) = api(
        &host,
        Method::Post,
        "/panels",
        None,
        &[],
        Some(json!({
            "channel_id": "300", "title": "Help", "description": null,
            "category_id": "400", "support_roles": ["500", "501"]
        })),
        Some(ADMIN),
    )
    .unwrap();
    assert_eq!(status, 201);
    assert_eq!(panel["number"], 1);
    assert_eq!(panel["category_id"], "400");
    assert_eq!(panel["support_roles"], json!(["500", "501"]));
    assert_eq!(panel["button_label"], "Open a ticket");
    let (channel, body) = host.sent_messages().pop().unwrap();
    assert_eq!(channel, PANEL_CHANNEL);
    assert_eq!(button_ids(&body), ["open:1"]);
    let message_id = panel["message_id"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();

    let (_, listed) = api(&host, Method::Get, "/panels", None, &[], None, None).unwrap();
    assert_eq!(listed["panels"][0], panel);

    let refused = api(
        &host,
        Method::Post,
        "/panels",
        None,
        &[],
        Some(json!({ "channel_id": "300", "title": " " })),
        Some(ADMIN),
    );
    assert!(
        matches!(refused, Err(Error::InvalidArgument(_))),
        "{refused:?}"
    );

    let (_, deleted) = api(
        &host,
        Method::Delete,
        "/panels/{id}",
        Some("1"),
        &[],
        None,
        Some(ADMIN),
    )
    .unwrap();
    assert_eq!(deleted["message_deleted"], true);
    assert_eq!(deleted["panel"]["number"], 1);
    assert_eq!(host.deleted_messages(), [(PANEL_CHANNEL, message_id)]);
    let (_, listed) = api(&host, Method::Get, "/panels", None, &[], None, None).unwrap();
    assert_eq!(listed, json!({ "panels": [] }));
    assert!(matches!(
        api(
            &host,
            Method::Delete,
            "/panels/{id}",
            Some("1"),
            &[],
            None,
            None
        ),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        api(
            &host,
            Method::Delete,
            "/panels/{id}",
            Some("one"),
            &[],
            None,
            None
        ),
        Err(Error::InvalidArgument(_))
    ));

    // A click on the button of a deleted panel explains instead of failing.
    let reply = click(&host, "open:1", ANN, PANEL_CHANNEL);
    assert!(reply.content().unwrap().contains("panel was removed"));
    assert!(host.channels_created().is_empty());
}

#[test]
fn a_panel_whose_message_cannot_be_deleted_is_still_deleted() {
    let host = host();
    make_panel(&host);
    host.deny(Capability::Messages);
    let (_, deleted) = api(
        &host,
        Method::Delete,
        "/panels/{id}",
        Some("1"),
        &[],
        None,
        None,
    )
    .unwrap();
    assert_eq!(deleted["message_deleted"], false);
    assert!(store::panels().unwrap().is_empty());
}
