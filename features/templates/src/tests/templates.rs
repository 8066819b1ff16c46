//! Templates: CRUD, validation, rendering and sending, `/send-template`.

use super::*;
use crate::store::{self, SentMessage};
use townes_sdk::testing::Effect;
use townes_sdk::{ButtonStyle, GuildInfo, OptionValue};

fn refused(result: Result<(u16, Value), Error>) -> String {
    match result {
        Err(Error::InvalidArgument(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// `roles_template()` with `change` applied, posted unchecked; the refusal.
fn refusal_of(host: &MockHost, change: impl FnOnce(&mut Value)) -> String {
    let mut body = roles_template();
    change(&mut body);
    refused(api_unchecked(
        host,
        Method::Post,
        "/templates",
        &[],
        Some(body),
    ))
}

fn request_schema_problems(route: &str, method: Method, body: &Value) -> Vec<String> {
    let route = Templates::routes()
        .into_iter()
        .find(|r| r.path == route && r.method == method)
        .unwrap();
    schema_problems(
        &serde_json::from_str(&route.request_schema.unwrap()).unwrap(),
        body,
    )
}

#[test]
fn templates_are_created_read_listed_updated_and_deleted() {
    let host = host();
    let created = create_template(&host, roles_template());
    assert_eq!(created["id"], "roles");
    assert_eq!(created["buttons"][0]["role_id"], "501", "ids are strings");
    assert_eq!(
        created["buttons"][0]["style"], "primary",
        "the default style"
    );
    assert_eq!(
        created["select"]["max_values"], 2,
        "defaults to every option"
    );
    assert_eq!(created["select"]["min_values"], 0);
    create_template(
        &host,
        json!({ "id": "hello", "name": "Hello", "content": "Hi!" }),
    );

    let (_, one) = api(
        &host,
        Method::Get,
        "/templates/{id}",
        &[("id", "roles")],
        None,
    )
    .unwrap();
    assert_eq!(one, created);
    let (_, list) = api(&host, Method::Get, "/templates", &[], None).unwrap();
    let ids: Vec<&str> = list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hello", "roles"]);

    let (status, updated) = api(
        &host,
        Method::Put,
        "/templates/{id}",
        &[("id", "hello")],
        Some(json!({ "name": "  Hello again ", "content": "Hi {server.name}!" })),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(updated["name"], "Hello again", "trimmed");
    assert_eq!(
        store::load_template("hello").unwrap().content,
        "Hi {server.name}!"
    );
    assert!(matches!(
        api(
            &host,
            Method::Put,
            "/templates/{id}",
            &[("id", "nope")],
            Some(json!({ "name": "Nope" }))
        ),
        Err(Error::NotFound(_))
    ));

    let (_, deleted) = api(
        &host,
        Method::Delete,
        "/templates/{id}",
        &[("id", "hello")],
        None,
    )
    .unwrap();
    assert_eq!(deleted["name"], "Hello again");
    for method in [Method::Get, Method::Delete] {
        assert!(matches!(
            api(&host, method, "/templates/{id}", &[("id", "hello")], None),
            Err(Error::NotFound(_))
        ));
    }
    let audits: Vec<String> = host.audit_entries().into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        audits,
        [
            "template.created",
            "template.created",
            "template.updated",
            "template.deleted"
        ]
    );
}

#[test]
fn ids_are_unique_slugs() {
    let host = host();
    create_template(
        &host,
        json!({ "id": "rules", "name": "Rules", "content": "Be kind" }),
    );
    let why = refused(api(
        &host,
        Method::Post,
        "/templates",
        &[],
        Some(json!({ "id": "rules", "name": "Other", "content": "x" })),
    ));
    assert!(
        why.contains("exists already") && why.contains("PUT"),
        "{why}"
    );
    assert_eq!(store::load_template("rules").unwrap().name, "Rules");

    for bad in ["Rules", "no spaces", "", "x_y", "é", &"a".repeat(33)] {
        let body = json!({ "id": bad, "name": "Bad", "content": "x" });
        assert!(
            !request_schema_problems("/templates", Method::Post, &body).is_empty(),
            "the schema refuses `{bad}`"
        );
        let why = refused(api_unchecked(
            &host,
            Method::Post,
            "/templates",
            &[],
            Some(body),
        ));
        assert!(
            why.contains("lower-case letters, digits and dashes"),
            "{why}"
        );
    }
    assert!(crate::templates::is_slug(&"a".repeat(32)) && crate::templates::is_slug("role-menu-2"));
    assert!(matches!(
        api(
            &host,
            Method::Get,
            "/templates/{id}",
            &[("id", "Rules")],
            None
        ),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn discord_limits_are_checked_with_clear_errors() {
    let host = host();
    let why = refusal_of(&host, |t| t["content"] = json!("x".repeat(2001)));
    assert_eq!(
        why,
        "message content is 2001 characters; at most 2000 allowed"
    );
    let why = refusal_of(&host, |t| t["embed"]["title"] = json!("t".repeat(257)));
    assert!(why.contains("embed title is 257 characters"), "{why}");
    let why = refusal_of(&host, |t| {
        t["embed"]["fields"] = json!(vec![json!({ "name": "n", "value": "v" }); 26])
    });
    assert!(why.contains("embed fields is 26"), "{why}");
    let why = refusal_of(&host, |t| {
        t["embed"]["description"] = json!("d".repeat(2001))
    });
    assert!(why.contains("at most 2000"), "{why}");
    let why = refusal_of(&host, |t| {
        t["embed"] = json!({ "title": "", "fields": [] });
    });
    assert!(why.contains("the embed is empty"), "{why}");

    let link = json!({ "kind": "link", "label": "L", "url": "https://example.com" });
    let why = refusal_of(&host, |t| t["buttons"] = json!(vec![link.clone(); 21]));
    assert!(
        why.contains("21 buttons") && why.contains("at most 20"),
        "{why}"
    );
    let why = refusal_of(&host, |t| {
        t["select"] = Value::Null;
        t["buttons"] = json!(vec![link.clone(); 26]);
    });
    assert!(why.contains("at most 25"), "{why}");
    let mut ok = roles_template();
    ok["select"] = Value::Null;
    ok["id"] = json!("full");
    ok["buttons"] = json!(vec![link.clone(); 25]);
    create_template(&host, ok);

    let why = refusal_of(&host, |t| t["buttons"][0]["label"] = json!("l".repeat(81)));
    assert!(why.contains("button 1's label is 81 characters"), "{why}");
    let why = refusal_of(&host, |t| t["select"]["max_values"] = json!(3));
    assert!(why.contains("max_values must be 1 to 2"), "{why}");
    let why = refusal_of(&host, |t| t["select"]["options"] = json!([]));
    assert!(why.contains("give it 1 to 25"), "{why}");
    let why = refusal_of(&host, |t| t["name"] = json!("   "));
    assert!(why.contains("the name is 0 characters"), "{why}");
    assert!(
        host.storage_entries()
            .iter()
            .all(|(k, _)| k != "template:roles")
    );
}

#[test]
fn urls_must_be_https() {
    let host = host();
    for (at, url) in [
        ("url", "http://example.com"),
        ("image_url", "http://cdn.example.com/a.png"),
        ("thumbnail_url", "ftp://example.com/a.png"),
        ("url", "https://"),
        ("button", "https://exa mple.com"),
        ("button", "javascript:alert(1)"),
    ] {
        let why = refusal_of(&host, |t| {
            if at == "button" {
                t["buttons"][2]["url"] = json!(url);
            } else {
                t["embed"][at] = json!(url);
            }
        });
        assert!(why.contains("is not an https URL"), "{at} {url}: {why}");
    }
    let mut body = roles_template();
    body["buttons"][2]["url"] = json!("http://example.com");
    assert!(!request_schema_problems("/templates", Method::Post, &body).is_empty());
}

#[test]
fn roles_must_be_real_allowed_and_not_repeated() {
    let host = host();
    let why = refusal_of(&host, |t| {
        t["buttons"][0]["role_id"] = json!(GUILD_ID.to_string())
    });
    assert!(why.contains("`@everyone`"), "{why}");
    let why = refusal_of(&host, |t| t["select"]["options"][0]["role_id"] = json!(0));
    assert!(why.contains("not roles"), "{why}");
    let why = refusal_of(&host, |t| {
        t["buttons"][1]["role_id"] = json!(NEWS.to_string())
    });
    assert!(why.contains("repeats role 501"), "{why}");
    let why = refusal_of(&host, |t| {
        t["select"]["options"][1]["role_id"] = json!(MINECRAFT.to_string())
    });
    assert!(why.contains("repeats role 511"), "{why}");

    host.set_config(json!({
        "assignable_roles": [NEWS.to_string(), EVENTS.to_string(), MINECRAFT.to_string()]
    }));
    let why = refusal_of(&host, |_| {});
    assert!(
        why.contains("role 512 is not in this server's `assignable_roles`"),
        "{why}"
    );
    let all = [NEWS, EVENTS, MINECRAFT, CHESS].map(|r| r.to_string());
    host.set_config(json!({ "assignable_roles": all }));
    create_template(&host, roles_template());
}

#[test]
fn the_number_of_templates_is_capped_by_config() {
    let host = host();
    host.set_config(json!({ "max_templates": 2 }));
    for id in ["a", "b"] {
        create_template(&host, json!({ "id": id, "name": id, "content": "x" }));
    }
    let why = refused(api(
        &host,
        Method::Post,
        "/templates",
        &[],
        Some(json!({ "id": "c", "name": "c", "content": "x" })),
    ));
    assert!(why.contains("`max_templates`"), "{why}");
}

#[test]
fn sending_renders_variables_and_attaches_role_components() {
    let host = host();
    let message_id = {
        create_template(&host, roles_template());
        let (_, sent) = api(
            &host,
            Method::Post,
            "/templates/{id}/send",
            &[("id", "roles")],
            Some(json!({ "channel_id": ROLES_CHANNEL.to_string() })),
        )
        .unwrap();
        assert_eq!(sent["channel_id"], ROLES_CHANNEL.to_string());
        sent["message_id"]
            .as_str()
            .unwrap()
            .parse::<Snowflake>()
            .unwrap()
    };
    let [(channel, body)] = &host.sent_messages()[..] else {
        panic!("one message: {:?}", host.sent_messages())
    };
    assert_eq!(*channel, ROLES_CHANNEL);
    assert_eq!(
        body.content.as_deref(),
        Some("Welcome to Test Guild (4 members)! Post in <#301>.")
    );
    let embed = &body.embeds[0];
    assert_eq!(embed.title.as_deref(), Some("Test Guild roles"));
    assert_eq!(embed.fields[0].value, "id 1000");
    assert_eq!(embed.footer.as_deref(), Some("Unknown stays: {nope}"));
    assert_eq!(embed.color, Some(0x5865F2));
    assert_eq!(
        embed.image_url.as_deref(),
        Some("https://cdn.example.com/banner.png")
    );
    assert_eq!(
        component_ids(body),
        ["role:501", "role:502", "https://example.com", "roles:roles"]
    );
    assert_eq!(body.components.len(), 2, "buttons, then the menu's row");
    let UiComponent::Button(news) = &body.components[0].components[0] else {
        panic!()
    };
    assert_eq!(
        (news.label.as_str(), news.style, news.emoji.as_deref()),
        ("News", ButtonStyle::Primary, Some("📣"))
    );
    let UiComponent::Button(events) = &body.components[0].components[1] else {
        panic!()
    };
    assert_eq!(events.style, ButtonStyle::Success);
    let UiComponent::SelectMenu(menu) = &body.components[1].components[0] else {
        panic!()
    };
    let values: Vec<&str> = menu.options.iter().map(|o| o.value.as_str()).collect();
    assert_eq!(values, ["511", "512"]);
    assert_eq!((menu.min_values, menu.max_values), (0, 2));
    assert!(menu.options.iter().all(|o| !o.default));
    assert_eq!(
        menu.options[1].description.as_deref(),
        Some("Kings and queens")
    );

    let sent: SentMessage = store::get(&store::sent_key(message_id)).unwrap().unwrap();
    assert_eq!(
        sent,
        SentMessage {
            template_id: "roles".into(),
            channel_id: ROLES_CHANNEL,
            button_roles: vec![NEWS, EVENTS],
            menu_roles: vec![MINECRAFT, CHESS],
        }
    );
    assert!(
        host.audit_entries()
            .iter()
            .any(|(a, d)| a == "template.sent" && d.contains(&message_id.to_string()))
    );
}

#[test]
fn without_members_server_variables_read_placeholders_and_names_are_defused() {
    let host = host();
    create_template(
        &host,
        json!({ "id": "hi", "name": "Hi", "content": "Hi {server.name}, all {server.memberCount} of you ({server.id})" }),
    );
    host.deny(Capability::Members);
    let t = store::load_template("hi").unwrap();
    crate::templates::send(&host.context(), &t, CHANNEL).unwrap();
    host.allow(Capability::Members);
    host.set_guild(GuildInfo::new(GUILD_ID, "@everyone party", 2));
    crate::templates::send(&host.context(), &t, CHANNEL).unwrap();
    assert_eq!(
        host.sent_texts(),
        [
            "Hi this server, all ? of you (1000)",
            "Hi @\u{200b}everyone party, all 0 of you (1000)"
        ]
    );
    assert!(
        host.storage_entries()
            .iter()
            .all(|(k, _)| !k.starts_with("sent:")),
        "a message without role components is not remembered"
    );
}

#[test]
fn sending_an_unknown_template_or_where_the_bot_may_not_post_fails_cleanly() {
    let host = host();
    let send = |id: &str| {
        api(
            &host,
            Method::Post,
            "/templates/{id}/send",
            &[("id", id)],
            Some(json!({ "channel_id": "301" })),
        )
    };
    assert!(matches!(send("nope"), Err(Error::NotFound(_))));
    create_template(&host, roles_template());
    host.deny(Capability::Messages);
    assert_eq!(send("roles"), Err(Error::Denied(Capability::Messages)));
    assert!(
        host.storage_entries()
            .iter()
            .all(|(k, _)| !k.starts_with("sent:"))
    );
}

fn send_command(host: &MockHost, args: Vec<(&str, OptionValue)>, prefix: bool) -> Reply {
    let mut invocation = CommandInvocation::new("send-template", member(ADMIN), CHANNEL);
    for (name, value) in args {
        invocation = invocation.with_arg(name, value);
    }
    if prefix {
        invocation = invocation.via_prefix();
    }
    Templates::on_command(&host.context(), invocation).unwrap()
}

#[test]
fn send_template_sends_by_id_or_name_here_or_to_a_channel() {
    let host = host();
    create_template(&host, roles_template());
    let reply = send_command(
        &host,
        vec![
            ("name", OptionValue::Text("pick your ROLES".into())),
            ("channel", OptionValue::Channel(ROLES_CHANNEL)),
        ],
        false,
    );
    assert_eq!(text_of(&reply), "Sent **Pick your roles** to <#301>.");
    let reply = send_command(
        &host,
        vec![("name", OptionValue::Text("roles".into()))],
        true,
    );
    assert_eq!(text_of(&reply), "Sent **Pick your roles** to <#300>.");
    let channels: Vec<Snowflake> = host.sent_messages().iter().map(|(c, _)| *c).collect();
    assert_eq!(channels, [ROLES_CHANNEL, CHANNEL]);
    let ids: Vec<Snowflake> = host
        .effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::MessageSent { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    for id in ids {
        assert!(host.storage_value(&store::sent_key(id)).is_some());
    }
    assert_eq!(
        host.sent_messages()[1].1.content.as_deref(),
        Some("Welcome to Test Guild (4 members)! Post in <#300>.")
    );
}

#[test]
fn send_template_explains_what_it_cannot_do() {
    let host = host();
    let reply = send_command(
        &host,
        vec![("name", OptionValue::Text("rules".into()))],
        false,
    );
    assert_eq!(
        text_of(&reply),
        "There is no template `rules`; make one in the dashboard first."
    );
    create_template(&host, roles_template());
    let reply = send_command(
        &host,
        vec![("name", OptionValue::Text("rules".into()))],
        false,
    );
    assert_eq!(
        text_of(&reply),
        "There is no template `rules`. Templates: `roles`."
    );
    host.deny(Capability::Messages);
    let reply = send_command(
        &host,
        vec![("name", OptionValue::Text("roles".into()))],
        false,
    );
    assert!(text_of(&reply).starts_with("I may not post in <#300>"));
    assert!(host.sent_messages().is_empty());
}

#[test]
fn a_template_with_a_command_answers_it_and_commands_stay_unique() {
    let host = host();
    create_template(
        &host,
        json!({ "id": "rules", "name": "Server rules", "content": "Be kind in {channel}.",
                "command": "rules" }),
    );
    let mut roles = roles_template();
    roles["command"] = json!("roles");
    create_template(&host, roles);
    let offered = Templates::guild_commands(&host.context()).unwrap();
    let names: Vec<&str> = offered.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["roles", "rules"]);
    assert!(offered.iter().all(|c| c.slash && !c.prefix));
    assert_eq!(offered[1].description, "Posts “Server rules”");

    // Plain: the template is the answer, for everyone to see.
    host.clear_effects();
    let invocation = CommandInvocation::new("rules", member(BOB), CHANNEL);
    let reply = Templates::on_command(&host.context(), invocation).unwrap();
    assert!(!reply.ephemeral);
    assert_eq!(
        reply.content(),
        Some(format!("Be kind in <#{CHANNEL}>.").as_str())
    );
    assert!(host.sent_messages().is_empty());
    // With roles: posted as a message of its own, so its clicks work.
    let invocation = CommandInvocation::new("roles", member(BOB), CHANNEL);
    let reply = Templates::on_command(&host.context(), invocation).unwrap();
    assert!(reply.ephemeral);
    assert_eq!(host.sent_messages().len(), 1);

    let mut twice = roles_template();
    twice["id"] = json!("other");
    twice["command"] = json!("rules");
    let why = refused(api(&host, Method::Post, "/templates", &[], Some(twice)));
    assert!(why.contains("`rules` answers `/rules` already"), "{why}");
    let ours = refusal_of(&host, |t| t["command"] = json!("send-template"));
    assert!(ours.contains("this feature's own"), "{ours}");
}
