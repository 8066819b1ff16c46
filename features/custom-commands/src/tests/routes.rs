//! The dashboard routes, every call checked against its declared schemas.

use super::*;

#[test]
fn routes_are_declared_with_camel_case_ids_summaries_and_examples() {
    let routes = CustomCommands::routes();
    let declared: Vec<(Method, &str, &str)> = routes
        .iter()
        .map(|r| (r.method, r.path.as_str(), r.operation_id.as_str()))
        .collect();
    assert_eq!(
        declared,
        [
            (Method::Get, "/commands", "listCommands"),
            (Method::Post, "/commands", "createCommand"),
            (Method::Get, "/commands/{name}", "getCommand"),
            (Method::Put, "/commands/{name}", "updateCommand"),
            (Method::Delete, "/commands/{name}", "deleteCommand"),
            (Method::Get, "/auto-responders", "listAutoResponders"),
            (Method::Post, "/auto-responders", "createAutoResponder"),
            (Method::Get, "/auto-responders/{id}", "getAutoResponder"),
            (Method::Put, "/auto-responders/{id}", "updateAutoResponder"),
            (
                Method::Delete,
                "/auto-responders/{id}",
                "deleteAutoResponder"
            ),
        ]
    );
    for route in &routes {
        assert!(!route.summary.is_empty());
        assert!(
            route
                .operation_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
        assert!(
            route
                .operation_id
                .starts_with(|c: char| c.is_ascii_lowercase())
        );
        let mut schemas = vec![("response", route.response_schema.clone())];
        schemas.extend(route.request_schema.clone().map(|s| ("request", s)));
        assert_eq!(
            route.request_schema.is_some(),
            matches!(route.method, Method::Post | Method::Put),
            "{}",
            route.path
        );
        for (what, schema) in schemas {
            let schema: Value = serde_json::from_str(&schema).unwrap();
            assert_eq!(schema["type"], "object", "{} {what}", route.path);
            let examples = schema["examples"].as_array().expect("examples");
            assert_eq!(examples.len(), 1, "{} {what}", route.path);
            assert_eq!(
                schema_problems(&schema, &examples[0]),
                Vec::<String>::new(),
                "{} {what} example",
                route.path
            );
        }
    }
}

#[test]
fn the_examples_are_accepted_by_the_feature_itself() {
    let host = host();
    let example = |method: Method, path: &str| -> Value {
        let route = CustomCommands::routes()
            .into_iter()
            .find(|r| r.method == method && r.path == path)
            .unwrap();
        let schema: Value = serde_json::from_str(&route.request_schema.unwrap()).unwrap();
        schema["examples"][0].clone()
    };
    let command = create(&host, example(Method::Post, "/commands"));
    assert_eq!(command["required_roles"], json!(["1141240001234567890"]));
    api(
        &host,
        Method::Put,
        "/commands/{name}",
        Some("rules"),
        Some(example(Method::Put, "/commands/{name}")),
    )
    .unwrap();
    let id = responder(&host, example(Method::Post, "/auto-responders"));
    api(
        &host,
        Method::Put,
        "/auto-responders/{id}",
        Some(&id),
        Some(example(Method::Put, "/auto-responders/{id}")),
    )
    .unwrap();
}

#[test]
fn commands_are_created_read_listed_updated_and_deleted() {
    let host = host();
    let created = create(
        &host,
        json!({ "name": "faq", "description": "  The FAQ  ", "is_tag": true,
                "response": { "type": "text", "content": "Read it" },
                "required_roles": [500, "500", "501"] }),
    );
    assert_eq!(
        created,
        json!({
            "name": "faq", "description": "The FAQ", "enabled": true,
            "response": { "type": "text", "content": "Read it" }, "menu_pages": [],
            "cooldown_seconds": 0, "required_roles": ["500", "501"], "is_tag": true,
            "category": "general", "created_at": T0, "updated_at": T0
        })
    );
    text_command(&host, "about", "About us");
    let (status, got) = api(&host, Method::Get, "/commands/{name}", Some("faq"), None).unwrap();
    assert_eq!((status, &got), (200, &created));
    let (_, list) = api(&host, Method::Get, "/commands", None, None).unwrap();
    let names: Vec<&str> = list["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["about", "faq"]);

    townes_sdk::testing::set_now(T0 + 5);
    let (_, updated) = api(
        &host,
        Method::Put,
        "/commands/{name}",
        Some("faq"),
        Some(
            json!({ "response": { "type": "text", "content": "New FAQ" },
                     "cooldown_seconds": 10, "is_tag": true, "category": "help" }),
        ),
    )
    .unwrap();
    assert_eq!(updated["created_at"], T0);
    assert_eq!(updated["updated_at"], T0 + 5);
    assert_eq!(updated["category"], "help");
    assert_eq!(updated["required_roles"], json!([]), "PUT replaces");
    let actions = |host: &MockHost| -> Vec<String> {
        host.audit_entries().into_iter().map(|(a, _)| a).collect()
    };
    let mut entries = actions(&host);
    assert_eq!(said(&host, BOB, GENERAL, "!faq"), "New FAQ");

    let (_, deleted) = api(&host, Method::Delete, "/commands/{name}", Some("faq"), None).unwrap();
    assert_eq!(deleted["name"], "faq");
    entries.extend(actions(&host));
    assert!(say(&host, BOB, GENERAL, "!faq").is_empty());
    assert_eq!(
        entries,
        [
            "custom_command.create",
            "custom_command.create",
            "custom_command.update",
            "custom_command.delete"
        ]
    );
}

#[test]
fn unknown_commands_are_not_found_with_a_hint() {
    let host = host();
    for (method, body) in [
        (Method::Get, None),
        (Method::Delete, None),
        (
            Method::Put,
            Some(json!({ "response": { "type": "text", "content": "x" } })),
        ),
    ] {
        let Err(Error::NotFound(why)) = api(&host, method, "/commands/{name}", Some("nope"), body)
        else {
            panic!("{method:?} of a missing command")
        };
        assert!(why.contains("GET /commands lists them"), "{why}");
    }
    assert!(matches!(
        api(
            &host,
            Method::Get,
            "/commands/{name}",
            Some("not a name"),
            None
        ),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn bad_command_bodies_are_refused_with_the_field_and_the_reason() {
    let host = host();
    text_command(&host, "taken", "x");
    let text = json!({ "type": "text", "content": "x" });
    let cases = [
        (
            json!({ "name": "taken", "response": text }),
            "name: a command named `taken` exists already",
        ),
        (
            json!({ "name": "tags", "response": text }),
            "name: `tags` is taken",
        ),
        (json!({ "name": "nothing" }), "response: give a `response`"),
        (
            json!({ "name": "both", "response": text, "menu_pages": [text] }),
            "not both",
        ),
        (
            json!({ "name": "blank", "response": { "type": "text", "content": "   " } }),
            "response.content: must not be blank",
        ),
        (
            json!({ "name": "empty", "response": { "type": "embed", "color": 1 } }),
            "response: an embed needs",
        ),
        (
            json!({ "name": "field", "response": { "type": "embed", "fields": [{ "name": " ", "value": "v" }] } }),
            "response.fields[0]: a field needs a name and a value",
        ),
        (
            json!({ "name": "pages", "menu_pages": [text, { "type": "embed" }] }),
            "menu_pages[1]: an embed needs",
        ),
        (
            json!({ "name": "huge", "response": { "type": "embed",
            "title": "t".repeat(256), "description": "d".repeat(4096),
            "fields": [{ "name": "n".repeat(256), "value": "v".repeat(1024) },
                       { "name": "n".repeat(256), "value": "v".repeat(1024) }] } }),
            "response: ",
        ),
    ];
    for (body, expected) in cases {
        let Err(Error::InvalidArgument(why)) =
            api(&host, Method::Post, "/commands", None, Some(body.clone()))
        else {
            panic!("{body} was accepted")
        };
        assert!(why.contains(expected), "{body}: {why}");
    }
    // Non-https URLs are refused by the schema the host checks first, and by
    // the feature too.
    let schema = crate::routes::command_draft_schema(true);
    for bad in [
        json!({ "name": "Big", "response": text }),
        json!({ "name": "cat", "is_tag": true, "category": "Big Cat", "response": text }),
        json!({ "name": "cd", "cooldown_seconds": 604_801, "response": text }),
    ] {
        assert!(!schema_problems(&schema, &bad).is_empty(), "{bad}");
    }
    for url in [
        "http://example.com/a.png",
        "https://",
        "https://a b",
        "javascript:alert(1)",
    ] {
        let body = json!({ "name": "url", "response": { "type": "embed", "title": "t",
                           "image_url": url } });
        assert!(!schema_problems(&schema, &body).is_empty(), "{url}");
        let response: store::Response = serde_json::from_value(body["response"].clone()).unwrap();
        let Err(Error::InvalidArgument(why)) = crate::routes::check_response(&response, "response")
        else {
            panic!("{url} was accepted")
        };
        assert!(
            why.starts_with("response.image_url: ") && why.contains("https"),
            "{why}"
        );
    }
    let (_, list) = api(&host, Method::Get, "/commands", None, None).unwrap();
    assert_eq!(list["commands"].as_array().unwrap().len(), 1);
}

#[test]
fn a_command_too_large_to_store_is_refused() {
    let host = host();
    let page = json!({ "type": "embed", "description": "d".repeat(4000),
                       "fields": [{ "name": "n", "value": "v".repeat(1000) },
                                  { "name": "n", "value": "v".repeat(900) }] });
    let body = json!({ "name": "big", "menu_pages": vec![page; 10] });
    let Err(Error::InvalidArgument(why)) = api(&host, Method::Post, "/commands", None, Some(body))
    else {
        panic!("a 60 kB command was stored")
    };
    assert!(why.contains("bytes of JSON"), "{why}");
}

#[test]
fn max_commands_and_max_auto_responders_are_enforced() {
    let host = host();
    host.set_config(json!({ "max_commands": 2, "max_auto_responders": 1 }));
    text_command(&host, "a", "a");
    text_command(&host, "b", "b");
    let Err(Error::QuotaExceeded(why)) = api(
        &host,
        Method::Post,
        "/commands",
        None,
        Some(json!({ "name": "c", "response": { "type": "text", "content": "c" } })),
    ) else {
        panic!("a third command")
    };
    assert!(why.contains("max_commands"), "{why}");
    let ar = json!({ "trigger": "x", "match_type": "exact",
                     "response": { "type": "text", "content": "y" } });
    responder(&host, ar.clone());
    assert!(matches!(
        api(&host, Method::Post, "/auto-responders", None, Some(ar)),
        Err(Error::QuotaExceeded(_))
    ));
}

#[test]
fn auto_responders_are_created_read_listed_updated_and_deleted() {
    let host = host();
    let (status, created) = api(
        &host,
        Method::Post,
        "/auto-responders",
        None,
        Some(json!({ "trigger": "hello", "match_type": "contains",
                     "channels": [GENERAL, GENERAL.to_string()],
                     "response": { "type": "text", "content": "hi {user}" } })),
    )
    .unwrap();
    assert_eq!(status, 201);
    assert_eq!(
        created,
        json!({
            "id": "1", "trigger": "hello", "match_type": "contains", "case_sensitive": false,
            "channels": ["300"], "response": { "type": "text", "content": "hi {user}" },
            "enabled": true, "priority": 0, "trigger_count": 0,
            "created_at": T0, "updated_at": T0
        })
    );
    assert_eq!(said(&host, BOB, GENERAL, "hello"), "hi bob");
    let (_, got) = api(&host, Method::Get, "/auto-responders/{id}", Some("1"), None).unwrap();
    assert_eq!(got["trigger_count"], 1);

    townes_sdk::testing::set_now(T0 + 30);
    let (_, updated) = api(
        &host,
        Method::Put,
        "/auto-responders/{id}",
        Some("1"),
        Some(
            json!({ "trigger": "HELLO", "match_type": "exact", "case_sensitive": true,
                     "response": { "type": "text", "content": "HI" } }),
        ),
    )
    .unwrap();
    assert_eq!(updated["trigger_count"], 1, "the count stays");
    assert_eq!(updated["channels"], json!([]));
    assert_eq!(updated["updated_at"], T0 + 30);
    assert!(say(&host, BOB, GENERAL, "hello").is_empty());
    assert_eq!(said(&host, BOB, GENERAL, "HELLO"), "HI");

    let (_, list) = api(&host, Method::Get, "/auto-responders", None, None).unwrap();
    assert_eq!(
        list["auto_responders"][0]["trigger_count"], 2,
        "matches only"
    );

    let (_, deleted) = api(
        &host,
        Method::Delete,
        "/auto-responders/{id}",
        Some("1"),
        None,
    )
    .unwrap();
    assert_eq!(deleted["trigger_count"], 2);
    assert_eq!(host.storage_value("ar:0000000001"), None);
    assert_eq!(host.storage_value("ar-count:0000000001"), None);
    for method in [Method::Get, Method::Delete] {
        let Err(Error::NotFound(why)) =
            api(&host, method, "/auto-responders/{id}", Some("1"), None)
        else {
            panic!("{method:?} of a deleted responder")
        };
        assert!(why.contains("GET /auto-responders lists them"), "{why}");
    }
    assert!(matches!(
        api(&host, Method::Get, "/auto-responders/{id}", Some("x"), None),
        Err(Error::InvalidArgument(_))
    ));
    let (_, list) = api(&host, Method::Get, "/auto-responders", None, None).unwrap();
    assert_eq!(list, json!({ "auto_responders": [] }));
}

#[test]
fn changes_still_happen_without_audit() {
    let host = host();
    host.deny(Capability::Audit);
    text_command(&host, "a", "a");
    assert!(host.audit_entries().is_empty());
    assert_eq!(said(&host, BOB, GENERAL, "!a"), "a");
}
