//! The ticket routes, each answer checked against its declared schema.

use super::*;

/// Three tickets: Ann's #1, Bob's #2, Cat's #3; returns their channels.
fn three_tickets(host: &MockHost) -> [Snowflake; 3] {
    make_panel(host);
    let channels = [ANN, BOB, CAT].map(|who| open_ticket(host, who));
    host.clear_effects();
    channels
}

fn numbers(list: &Value) -> Vec<u64> {
    list["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_u64().unwrap())
        .collect()
}

#[test]
fn tickets_are_listed_newest_first_and_filtered() {
    let host = host();
    three_tickets(&host);
    let get = |query: &[(&str, &str)]| {
        api(
            &host,
            Method::Get,
            "/tickets",
            None,
            query,
            None,
            Some(ADMIN),
        )
        .map(|(_, v)| v)
    };
    assert_eq!(numbers(&get(&[]).unwrap()), [3, 2, 1]);
    api(
        &host,
        Method::Post,
        "/tickets/{id}/close",
        Some("2"),
        &[],
        Some(json!({})),
        Some(MOD),
    )
    .unwrap();
    assert_eq!(numbers(&get(&[("status", "open")]).unwrap()), [3, 1]);
    assert_eq!(numbers(&get(&[("status", "closed")]).unwrap()), [2]);
    assert_eq!(
        numbers(&get(&[("status", "deleted")]).unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(
        numbers(&get(&[("status", "all"), ("user", "43")]).unwrap()),
        [2]
    );
    assert!(matches!(
        get(&[("status", "lost")]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        get(&[("user", "bob")]),
        Err(Error::InvalidArgument(_))
    ));

    let (_, one) = api(
        &host,
        Method::Get,
        "/tickets/{id}",
        Some("1"),
        &[],
        None,
        None,
    )
    .unwrap();
    assert_eq!(one["number"], 1);
    assert_eq!(one["opener_id"], "42");
    assert_eq!(one["status"], "open");
    assert!(matches!(
        api(
            &host,
            Method::Get,
            "/tickets/{id}",
            Some("99"),
            &[],
            None,
            None
        ),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        api(
            &host,
            Method::Get,
            "/tickets/{id}",
            Some("0"),
            &[],
            None,
            None
        ),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        api(
            &host,
            Method::Get,
            "/tickets/{id}",
            Some("x"),
            &[],
            None,
            None
        ),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn the_list_holds_the_newest_hundred_across_blocks_of_a_thousand() {
    let host = host();
    // Tickets #950 to #1100, stored as the feature stores them.
    make_panel(&host);
    open_ticket(&host, ANN);
    let template = serde_json::to_value(ticket(1)).unwrap();
    for n in 950..=1100u64 {
        let mut t = template.clone();
        t["number"] = json!(n);
        host.set_storage_value(&store::ticket_key(n), &t.to_string());
    }
    host.set_storage_value(store::TICKET_COUNTER, "1100");
    let (_, list) = api(&host, Method::Get, "/tickets", None, &[], None, None).unwrap();
    let got = numbers(&list);
    assert_eq!(got.len(), 100);
    assert_eq!((got[0], got[99]), (1100, 1001));
    let (_, list) = api(
        &host,
        Method::Get,
        "/tickets",
        None,
        &[("user", "42")],
        None,
        None,
    )
    .unwrap();
    assert_eq!(numbers(&list)[..3], [1100, 1099, 1098]);
}

#[test]
fn claim_and_unclaim_from_the_dashboard() {
    let host = host();
    let [channel, ..] = three_tickets(&host);
    let by_key = api(
        &host,
        Method::Post,
        "/tickets/{id}/claim",
        Some("1"),
        &[],
        None,
        None,
    );
    assert!(matches!(by_key, Err(Error::InvalidArgument(why)) if why.contains("API key")));
    let (_, claimed) = api(
        &host,
        Method::Post,
        "/tickets/{id}/claim",
        Some("1"),
        &[],
        None,
        Some(SUP),
    )
    .unwrap();
    assert_eq!(claimed["claimed_by"], "50");
    assert_eq!(host.sent_messages()[0].0, channel);
    let taken = api(
        &host,
        Method::Post,
        "/tickets/{id}/claim",
        Some("1"),
        &[],
        None,
        Some(MOD),
    );
    assert!(matches!(taken, Err(Error::InvalidArgument(why)) if why.contains("<@50>")));

    let (_, free) = api(
        &host,
        Method::Post,
        "/tickets/{id}/unclaim",
        Some("1"),
        &[],
        None,
        None,
    )
    .unwrap();
    assert_eq!(free["claimed_by"], Value::Null);
    assert_eq!(
        host.sent_texts().last().unwrap(),
        "the dashboard unclaimed this ticket from <@50>; another supporter can claim it."
    );
    assert!(matches!(
        api(
            &host,
            Method::Post,
            "/tickets/{id}/unclaim",
            Some("1"),
            &[],
            None,
            None
        ),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        api(
            &host,
            Method::Post,
            "/tickets/{id}/claim",
            Some("7"),
            &[],
            None,
            Some(SUP)
        ),
        Err(Error::NotFound(_))
    ));
    assert_eq!(live_actions(&host), ["claimed", "unclaimed"]);
}

#[test]
fn close_reopen_delete_and_the_transcript_from_the_dashboard() {
    let host = host();
    let [first, second, _] = three_tickets(&host);
    host.post_history(
        second,
        past(20, User::new(BOB, "bob"), "my printer is on fire"),
    );

    // No transcript while open.
    let open = api(
        &host,
        Method::Get,
        "/tickets/{id}/transcript",
        Some("2"),
        &[],
        None,
        None,
    );
    assert!(
        matches!(&open, Err(Error::NotFound(why)) if why.contains("is open and has no transcript yet")),
        "{open:?}"
    );

    // Closed by a signed-in manager, with a reason.
    let (_, closed) = api(
        &host,
        Method::Post,
        "/tickets/{id}/close",
        Some("2"),
        &[],
        Some(json!({ "reason": "Replaced the printer" })),
        Some(MOD),
    )
    .unwrap();
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["closed_by"], "60");
    assert_eq!(closed["close_reason"], "Replaced the printer");
    assert_eq!(host.dms()[0].0, BOB);

    let (_, transcript) = api(
        &host,
        Method::Get,
        "/tickets/{id}/transcript",
        Some("2"),
        &[],
        None,
        None,
    )
    .unwrap();
    assert_eq!(transcript["name"], "tickets/2/transcript.html");
    assert_eq!(
        transcript["url"],
        "https://files.mock.invalid/tickets/2/transcript.html?expires_in=604800"
    );
    let size = transcript["size"].as_u64().unwrap();
    assert_eq!(
        size,
        host.file("tickets/2/transcript.html").unwrap().1.len() as u64
    );
    assert!(transcript["created_at"].as_str().unwrap().ends_with('Z'));
    let html = String::from_utf8(host.file("tickets/2/transcript.html").unwrap().1).unwrap();
    assert!(html.contains("my printer is on fire"));
    assert!(html.contains("<dd>mod (60)</dd>"), "closed by the caller");

    // Shorter links when the guild asks for them.
    host.set_config(json!({ "transcript_link_days": 1 }));
    let (_, transcript) = api(
        &host,
        Method::Get,
        "/tickets/{id}/transcript",
        Some("2"),
        &[],
        None,
        None,
    )
    .unwrap();
    assert!(
        transcript["url"]
            .as_str()
            .unwrap()
            .ends_with("expires_in=86400")
    );

    // Closed with an API key, and an empty body: "the dashboard" closed it.
    host.clear_effects();
    let (_, closed) = api(
        &host,
        Method::Post,
        "/tickets/{id}/close",
        Some("1"),
        &[],
        Some(json!({})),
        None,
    )
    .unwrap();
    assert_eq!(
        (closed["closed_by"].clone(), closed["close_reason"].clone()),
        (Value::Null, Value::Null)
    );
    let text = host.sent_messages()[0].1.embeds[0]
        .description
        .clone()
        .unwrap();
    assert!(
        text.starts_with("Ticket closed by the dashboard.\n**Reason:** none given"),
        "{text}"
    );
    let again = api(
        &host,
        Method::Post,
        "/tickets/{id}/close",
        Some("1"),
        &[],
        Some(json!({})),
        None,
    );
    assert!(matches!(again, Err(Error::InvalidArgument(why)) if why == "Ticket #1 is closed."));
    // The host refuses a reason over the schema's length; the feature too.
    let long = ApiRequest {
        method: Method::Post,
        route: "/tickets/{id}/close".into(),
        params: vec![("id".into(), "3".into())],
        query: vec![],
        body: Some(json!({ "reason": "x".repeat(1001) }).to_string()),
        caller: ApiCaller {
            user_id: None,
            owner: true,
            permissions: u64::MAX,
        },
    };
    let long = Tickets::on_api(&host.context(), long);
    assert!(matches!(long, Err(Error::InvalidArgument(why)) if why.contains("at most 1000")));
    assert_eq!(ticket(3).status, crate::store::Status::Open);

    // Reopened, then deleted.
    let (_, reopened) = api(
        &host,
        Method::Post,
        "/tickets/{id}/reopen",
        Some("1"),
        &[],
        None,
        Some(SUP),
    )
    .unwrap();
    assert_eq!(reopened["status"], "open");
    assert_eq!(reopened["closed_by"], Value::Null);
    host.clear_effects();
    let (_, deleted) = api(
        &host,
        Method::Post,
        "/tickets/{id}/delete",
        Some("1"),
        &[],
        None,
        Some(SUP),
    )
    .unwrap();
    assert_eq!(deleted["status"], "deleted");
    assert!(
        host.effects()
            .contains(&Effect::ChannelDeleted { channel_id: first })
    );
    let (_, transcript) = api(
        &host,
        Method::Get,
        "/tickets/{id}/transcript",
        Some("1"),
        &[],
        None,
        None,
    )
    .unwrap();
    assert_eq!(transcript["name"], "tickets/1/transcript.html");
    for action in ["reopen", "delete", "claim", "unclaim"] {
        let route = format!("/tickets/{{id}}/{action}");
        let refused = api(&host, Method::Post, &route, Some("1"), &[], None, Some(SUP));
        assert!(
            matches!(refused, Err(Error::InvalidArgument(_))),
            "{action}: {refused:?}"
        );
    }
    for action in ["reopen", "delete"] {
        let route = format!("/tickets/{{id}}/{action}");
        let missing = api(&host, Method::Post, &route, Some("42"), &[], None, None);
        assert!(matches!(missing, Err(Error::NotFound(_))), "{action}");
    }
}

#[test]
fn a_transcript_file_that_is_gone_is_a_404() {
    let host = host();
    let [channel, ..] = three_tickets(&host);
    submit_close(&host, 1, "", SUP, channel);
    townes_sdk::files::delete("tickets/1/transcript.html").unwrap();
    let gone = api(
        &host,
        Method::Get,
        "/tickets/{id}/transcript",
        Some("1"),
        &[],
        None,
        None,
    );
    assert!(matches!(gone, Err(Error::NotFound(why)) if why.contains("is gone")));
}

#[test]
fn an_undeclared_route_is_not_found() {
    let host = host();
    let request = ApiRequest {
        method: Method::Put,
        route: "/tickets/{id}".into(),
        params: vec![("id".into(), "1".into())],
        query: vec![],
        body: None,
        caller: ApiCaller {
            user_id: None,
            owner: true,
            permissions: u64::MAX,
        },
    };
    assert!(matches!(
        Tickets::on_api(&host.context(), request),
        Err(Error::NotFound(_))
    ));
}
