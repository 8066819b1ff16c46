//! The dashboard routes, each call checked against its declared schemas.

use super::*;

fn created(host: &MockHost, body: Value) -> Value {
    let (status, value) = api(
        host,
        Method::Post,
        "/announcements",
        None,
        Some(body),
        Some(ADMIN),
    )
    .unwrap();
    assert_eq!(status, 201);
    value
}

fn weekly_body() -> Value {
    json!({
        "channel_id": CHANNEL.to_string(),
        "content": "Weekly call, {server.name}!",
        "embed": { "title": "Agenda", "description": "Roadmap", "color": 0x5865f2 },
        "ping_role": ROLE.to_string(),
        "schedule": { "weekly": { "day": "mon", "time": "09:30" } }
    })
}

fn refused(result: Result<(u16, Value), Error>) -> String {
    match result {
        Err(Error::InvalidArgument(why)) => why,
        other => panic!("expected 400, got {other:?}"),
    }
}

#[test]
fn routes_are_declared_with_camel_case_ids_and_examples_that_fit() {
    let routes = Announcements::routes();
    let declared: Vec<(Method, &str, &str)> = routes
        .iter()
        .map(|r| (r.method, r.path.as_str(), r.operation_id.as_str()))
        .collect();
    assert_eq!(
        declared,
        [
            (Method::Get, "/announcements", "listAnnouncements"),
            (Method::Post, "/announcements", "createAnnouncement"),
            (Method::Get, "/announcements/{id}", "getAnnouncement"),
            (Method::Patch, "/announcements/{id}", "updateAnnouncement"),
            (
                Method::Post,
                "/announcements/{id}/pause",
                "pauseAnnouncement"
            ),
            (
                Method::Post,
                "/announcements/{id}/resume",
                "resumeAnnouncement"
            ),
            (Method::Post, "/announcements/{id}/send", "sendAnnouncement"),
            (Method::Delete, "/announcements/{id}", "deleteAnnouncement"),
        ]
    );
    for route in &routes {
        assert!(!route.summary.is_empty() && route.summary.len() <= 200);
        let mut schemas = vec![("response", route.response_schema.as_str())];
        schemas.extend(route.request_schema.as_deref().map(|s| ("request", s)));
        for (which, schema) in schemas {
            let schema: Value = serde_json::from_str(schema).unwrap();
            assert_eq!(schema["type"], "object", "{} {which}", route.path);
            let examples = schema["examples"].as_array().unwrap_or_else(|| {
                panic!("{} {which}: no examples", route.path);
            });
            assert_eq!(examples.len(), 1, "{} {which}", route.path);
            let problems = schema_problems(&schema, &examples[0]);
            assert!(problems.is_empty(), "{} {which}: {problems:?}", route.path);
        }
    }
    let with_body: Vec<(Method, &str)> = routes
        .iter()
        .filter(|r| r.request_schema.is_some())
        .map(|r| (r.method, r.path.as_str()))
        .collect();
    assert_eq!(
        with_body,
        [
            (Method::Post, "/announcements"),
            (Method::Patch, "/announcements/{id}")
        ]
    );
    // The example's weekly schedule really has the next run it shows.
    let example = crate::routes::announcement_example();
    let schedule: crate::schedule::Schedule =
        serde_json::from_value(example["schedule"].clone()).unwrap();
    let last = example["last_run"].as_u64().unwrap();
    assert_eq!(schedule.after_run(last, last), example["next_run"].as_u64());
}

#[test]
fn create_answers_201_with_ids_as_strings_and_schedules_it() {
    let host = host();
    let value = created(&host, weekly_body());
    assert_eq!(value["number"], 1);
    assert_eq!(value["channel_id"], "300");
    assert_eq!(value["ping_role"], "500");
    assert_eq!(value["created_by"], "7");
    assert_eq!(
        value["schedule"],
        json!({ "weekly": { "day": "mon", "time": "09:30" } })
    );
    assert_eq!(value["next_run"], MONDAY + 9 * HOUR + 30 * MINUTE);
    assert_eq!(value["embed"]["color"], 0x5865f2);
    assert_eq!(value["pending_job"], the_job(&host).id.as_str());
    assert_eq!(live_actions(&host), ["created"]);

    // An API key creates too (nobody to credit), with `at` as RFC 3339, paused.
    let (status, value) = api(
        &host,
        Method::Post,
        "/announcements",
        None,
        Some(json!({
            "channel_id": OTHER_CHANNEL,
            "content": "Launch",
            "schedule": { "at": "2026-12-24T18:00:00+01:00" },
            "paused": true
        })),
        None,
    )
    .unwrap();
    assert_eq!(status, 201);
    assert_eq!(value["created_by"], Value::Null);
    assert_eq!(
        value["schedule"]["at"],
        time::unix(2026, 12, 24, 17, 0, 0).unwrap()
    );
    assert_eq!(
        (value["paused"].clone(), value["next_run"].clone()),
        (json!(true), Value::Null)
    );
    assert_eq!(host.pending_jobs().len(), 1, "a paused one has no job");

    let (_, list) = api(
        &host,
        Method::Get,
        "/announcements",
        None,
        None,
        Some(ADMIN),
    )
    .unwrap();
    let numbers: Vec<u64> = list["announcements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2]);
    let (_, one) = api(
        &host,
        Method::Get,
        "/announcements/{id}",
        Some("2"),
        None,
        Some(ADMIN),
    )
    .unwrap();
    assert_eq!(one["content"], "Launch");
}

#[test]
fn bad_bodies_are_400_with_a_hint() {
    let host = host();
    let post = |body: Value| {
        api(
            &host,
            Method::Post,
            "/announcements",
            None,
            Some(body),
            Some(ADMIN),
        )
    };
    let with = |key: &str, value: Value| {
        let mut body = weekly_body();
        body[key] = value;
        body
    };
    for (body, hint) in [
        (
            with("schedule", json!({ "every": "5m" })),
            "at least every 10 minutes",
        ),
        (with("schedule", json!({ "daily": "9" })), "HH:MM"),
        (
            with("schedule", json!({ "at": "2020-01-01T00:00:00Z" })),
            "already passed",
        ),
        (
            with("schedule", json!({ "at": "next friday" })),
            "2026-12-07T10:00:00Z",
        ),
        (
            with(
                "schedule",
                json!({ "weekly": { "day": "caturday", "time": "09:30" } }),
            ),
            "use mon",
        ),
        (with("ping_role", json!(GUILD_ID.to_string())), "@everyone"),
        (
            with("embed", json!({ "color": 5 })),
            "title or a description",
        ),
        (
            json!({ "channel_id": "300", "content": "", "schedule": { "daily": "09:30" } }),
            "needs a message",
        ),
    ] {
        let why = refused(post(body.clone()));
        assert!(why.contains(hint), "{body}: {why}");
    }
    assert!(store::all().unwrap().is_empty());
    assert!(host.pending_jobs().is_empty());

    created(&host, weekly_body());
    let why = refused(api(
        &host,
        Method::Patch,
        "/announcements/{id}",
        Some("1"),
        Some(json!({})),
        Some(ADMIN),
    ));
    assert!(why.contains("nothing to change"), "{why}");
    let why = refused(api(
        &host,
        Method::Patch,
        "/announcements/{id}",
        Some("1"),
        Some(json!({ "content": "", "embed": null })),
        Some(ADMIN),
    ));
    assert!(why.contains("needs a message"), "{why}");
    assert_eq!(
        announcement(1).content,
        "Weekly call, {server.name}!",
        "unchanged"
    );
    let why = refused(api(
        &host,
        Method::Get,
        "/announcements/{id}",
        Some("abc"),
        None,
        Some(ADMIN),
    ));
    assert!(why.contains("announcement number"), "{why}");
}

#[test]
fn unknown_numbers_are_404() {
    let host = host();
    for (method, route) in [
        (Method::Get, "/announcements/{id}"),
        (Method::Post, "/announcements/{id}/pause"),
        (Method::Post, "/announcements/{id}/resume"),
        (Method::Post, "/announcements/{id}/send"),
        (Method::Delete, "/announcements/{id}"),
    ] {
        let result = api(&host, method, route, Some("42"), None, Some(ADMIN));
        assert!(
            matches!(&result, Err(Error::NotFound(what)) if what == "announcement #42"),
            "{route}: {result:?}"
        );
    }
    let patch = api(
        &host,
        Method::Patch,
        "/announcements/{id}",
        Some("42"),
        Some(json!({ "content": "x" })),
        Some(ADMIN),
    );
    assert!(matches!(patch, Err(Error::NotFound(_))));
}

#[test]
fn patch_reschedules_a_new_schedule_and_keeps_the_run_for_other_edits() {
    let host = host();
    created(&host, weekly_body());
    let job = the_job(&host);
    host.clear_effects();

    // Text, embed, channel and role: the same run, the same job.
    let (_, value) = api(
        &host,
        Method::Patch,
        "/announcements/{id}",
        Some("1"),
        Some(json!({
            "content": "New text",
            "embed": null,
            "channel_id": OTHER_CHANNEL.to_string(),
            "ping_role": null
        })),
        Some(ADMIN),
    )
    .unwrap();
    assert_eq!(value["content"], "New text");
    assert_eq!(value["embed"], Value::Null);
    assert_eq!(value["channel_id"], "301");
    assert_eq!(value["ping_role"], Value::Null);
    assert_eq!(value["pending_job"], job.id.as_str());
    assert!(scheduled(&host).is_empty() && cancelled(&host).is_empty());
    // The job reads the edited announcement when it fires.
    set_now(MONDAY + 9 * HOUR + 30 * MINUTE);
    fire(&host, &job).unwrap();
    assert_eq!(host.sent_messages()[0].0, OTHER_CHANNEL);
    assert_eq!(host.sent_texts(), ["New text"]);
    let job = the_job(&host);
    host.clear_effects();

    // A new schedule starts from now: the old job goes, a new one comes.
    set_now(T0 + DAY);
    let (_, value) = api(
        &host,
        Method::Patch,
        "/announcements/{id}",
        Some("1"),
        Some(json!({ "schedule": { "every": "2h" } })),
        Some(ADMIN),
    )
    .unwrap();
    assert_eq!(value["schedule"], json!({ "every": "2h" }));
    assert_eq!(value["next_run"], T0 + DAY + 2 * HOUR);
    assert_eq!(cancelled(&host), std::slice::from_ref(&job.id));
    let new = the_job(&host);
    assert_eq!(payload(&new).due, T0 + DAY + 2 * HOUR);
    assert_eq!(value["pending_job"], new.id.as_str());
    assert_eq!(live_actions(&host), ["updated"]);
    assert!(host.audit_entries()[0].1.contains("schedule"));

    // A paused one keeps its new schedule for when it resumes.
    api(
        &host,
        Method::Post,
        "/announcements/{id}/pause",
        Some("1"),
        None,
        Some(ADMIN),
    )
    .unwrap();
    let (_, value) = api(
        &host,
        Method::Patch,
        "/announcements/{id}",
        Some("1"),
        Some(json!({ "schedule": { "daily": "12:00" } })),
        Some(ADMIN),
    )
    .unwrap();
    assert_eq!(
        (value["paused"].clone(), value["next_run"].clone()),
        (json!(true), Value::Null)
    );
    assert!(host.pending_jobs().is_empty());
    let (_, value) = api(
        &host,
        Method::Post,
        "/announcements/{id}/resume",
        Some("1"),
        None,
        Some(ADMIN),
    )
    .unwrap();
    assert_eq!(value["next_run"], MONDAY + DAY + 12 * HOUR);
}

#[test]
fn pause_resume_send_and_delete_through_the_routes() {
    let host = host();
    host.set_config(json!({ "allowed_ping_roles": [ROLE.to_string()] }));
    created(&host, weekly_body());
    let job = the_job(&host);
    host.clear_effects();

    let (_, paused) = api(
        &host,
        Method::Post,
        "/announcements/{id}/pause",
        Some("1"),
        None,
        None,
    )
    .unwrap();
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["pending_job"], Value::Null);
    assert_eq!(cancelled(&host), [job.id]);
    // Pausing again answers the same, and tells nobody.
    api(
        &host,
        Method::Post,
        "/announcements/{id}/pause",
        Some("1"),
        None,
        None,
    )
    .unwrap();

    set_now(MONDAY + 10 * HOUR);
    let (_, resumed) = api(
        &host,
        Method::Post,
        "/announcements/{id}/resume",
        Some("1"),
        None,
        None,
    )
    .unwrap();
    assert_eq!(resumed["paused"], false);
    assert_eq!(
        resumed["next_run"],
        MONDAY + 7 * DAY + 9 * HOUR + 30 * MINUTE,
        "next Monday"
    );
    assert_eq!(resumed["pending_job"], the_job(&host).id.as_str());

    let (_, sent) = api(
        &host,
        Method::Post,
        "/announcements/{id}/send",
        Some("1"),
        None,
        Some(ADMIN),
    )
    .unwrap();
    let message_id = host.effects().into_iter().find_map(|e| match e {
        Effect::MessageSent { id, .. } => Some(id),
        _ => None,
    });
    assert_eq!(sent["message_id"], message_id.unwrap().to_string());
    assert_eq!(sent["announcement"]["runs"], 1);
    assert_eq!(sent["announcement"]["next_run"], resumed["next_run"]);
    assert_eq!(host.sent_texts(), ["<@&500> Weekly call, Playground!"]);

    let (_, deleted) = api(
        &host,
        Method::Delete,
        "/announcements/{id}",
        Some("1"),
        None,
        Some(ADMIN),
    )
    .unwrap();
    assert_eq!(deleted["number"], 1);
    assert!(host.pending_jobs().is_empty());
    let (_, list) = api(&host, Method::Get, "/announcements", None, None, None).unwrap();
    assert_eq!(list, json!({ "announcements": [] }));
    assert_eq!(
        live_actions(&host),
        ["paused", "resumed", "sent", "deleted"]
    );
    let audits: Vec<String> = host
        .audit_entries()
        .into_iter()
        .map(|(a, d)| format!("{a}: {d}"))
        .collect();
    assert!(
        audits[0].starts_with("announcement.paused") && audits[0].ends_with("by the dashboard"),
        "{audits:?}"
    );
    assert!(
        audits[2].starts_with("announcement.sent") && audits[2].contains("<@7>"),
        "{audits:?}"
    );
}

#[test]
fn a_send_to_a_channel_the_grant_does_not_allow_is_400_with_a_hint() {
    let host = host();
    created(&host, weekly_body());
    host.deny(Capability::Messages);
    let why = refused(api(
        &host,
        Method::Post,
        "/announcements/{id}/send",
        Some("1"),
        None,
        Some(ADMIN),
    ));
    assert!(why.contains("<#300>") && why.contains("allow"), "{why}");
    assert_eq!(announcement(1).runs, 0);
}

#[test]
fn without_audit_everything_works_and_nothing_is_audited() {
    let host = host();
    host.deny(Capability::Audit);
    created(&host, weekly_body());
    api(
        &host,
        Method::Post,
        "/announcements/{id}/send",
        Some("1"),
        None,
        Some(ADMIN),
    )
    .unwrap();
    api(
        &host,
        Method::Delete,
        "/announcements/{id}",
        Some("1"),
        None,
        Some(ADMIN),
    )
    .unwrap();
    assert!(host.audit_entries().is_empty());
    assert_eq!(live_actions(&host), ["created", "sent", "deleted"]);
    assert!(
        host.logs().iter().all(|(_, line)| !line.contains("audit")),
        "a denied optional capability is expected, not worth a log line"
    );
}
