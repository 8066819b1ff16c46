//! `/announce`: creating with each kind of schedule, refusals with hints,
//! list, pause, resume, delete.

use super::*;

fn number(n: i64) -> (&'static str, OptionValue) {
    ("number", OptionValue::Integer(n))
}

fn refusal(result: Result<Reply, Error>) -> String {
    match result {
        Err(Error::InvalidArgument(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn create_schedules_the_first_run_and_says_when() {
    let host = host();
    let reply = create(&host, "Stand-up in 15 minutes", ("daily", text("09:30")));
    let first = MONDAY + 9 * HOUR + 30 * MINUTE;
    assert_eq!(
        reply,
        format!(
            "📣 Announcement #1 posts in <#300> daily at 09:30 UTC: next <t:{first}:f> (<t:{first}:R>)."
        )
    );
    let a = announcement(1);
    assert_eq!(a.channel_id, CHANNEL);
    assert_eq!(a.content, "Stand-up in 15 minutes");
    assert_eq!(a.created_by, Some(ADMIN));
    assert_eq!(a.created_at, T0);
    assert_eq!(a.next_run, Some(first));
    assert_eq!((a.runs, a.paused, a.last_run), (0, false, None));
    let [(id, payload, delay)] = &scheduled(&host)[..] else {
        panic!("{:?}", scheduled(&host));
    };
    assert_eq!(a.pending_job.as_ref(), Some(id));
    assert_eq!(
        *payload,
        JobPayload {
            number: 1,
            due: first
        }
    );
    assert_eq!(*delay, 90 * MINUTE as u32);
    assert_eq!(live_actions(&host), ["created"]);
    let audits = host.audit_entries();
    assert_eq!(audits[0].0, "announcement.created");
    assert!(
        audits[0].1.contains("#1") && audits[0].1.contains("<@7>"),
        "{audits:?}"
    );
    assert!(sent_nothing(&host));
}

fn sent_nothing(host: &MockHost) -> bool {
    host.sent_messages().is_empty()
}

#[test]
fn every_weekly_and_at_forms_are_understood() {
    let host = host();
    let reply = create(&host, "Tea break", ("every", text("1h30m")));
    assert!(reply.contains("every 90 minutes"), "{reply}");
    assert_eq!(announcement(1).next_run, Some(T0 + 90 * MINUTE));

    let reply = create(&host, "Weekend!", ("weekly", text("fri 17:00")));
    assert!(reply.contains("every Friday at 17:00 UTC"), "{reply}");
    assert_eq!(announcement(2).next_run, Some(MONDAY + 4 * DAY + 17 * HOUR));

    create(&host, "Doors open", ("at", text("in 2h")));
    assert_eq!(announcement(3).next_run, Some(T0 + 2 * HOUR));
    create(&host, "Launch", ("at", text("2026-12-24 18:00")));
    assert_eq!(announcement(4).next_run, time::unix(2026, 12, 24, 18, 0, 0));
    assert_eq!(host.pending_jobs().len(), 4, "one job each");
}

#[test]
fn create_refuses_with_a_hint_and_stores_nothing() {
    let host = host();
    let create_with = |args: &[(&str, OptionValue)]| {
        let mut all = vec![
            ("channel", OptionValue::Channel(CHANNEL)),
            ("message", text("Hello")),
        ];
        all.extend(args.iter().cloned());
        refusal(command(&host, "create", &all))
    };
    for (args, hint) in [
        (vec![], "say when"),
        (
            vec![("every", text("6h")), ("daily", text("09:30"))],
            "not every and daily",
        ),
        (vec![("every", text("5m"))], "at least every 10 minutes"),
        (vec![("every", text("often"))], "e.g. 30m"),
        (vec![("daily", text("25:00"))], "HH:MM"),
        (vec![("weekly", text("someday 09:30"))], "mon, tue"),
        (vec![("weekly", text("09:30"))], "mon 09:30"),
        (vec![("at", text("2026-12-01 10:00"))], "already passed"),
        (vec![("at", text("2030-01-01 10:00"))], "365 days"),
        (vec![("at", text("soon"))], "in 2h"),
        (
            vec![
                ("daily", text("09:30")),
                ("role", OptionValue::Role(GUILD_ID)),
            ],
            "@everyone is never pinged",
        ),
    ] {
        let why = create_with(&args);
        assert!(why.contains(hint), "{args:?}: {why}");
    }
    let why = refusal(command(
        &host,
        "create",
        &[
            ("channel", OptionValue::Channel(CHANNEL)),
            ("message", text("   ")),
            ("daily", text("09:30")),
        ],
    ));
    assert!(why.contains("needs a message"), "{why}");
    let why = refusal(command(
        &host,
        "create",
        &[
            ("channel", OptionValue::Channel(CHANNEL)),
            ("message", text(&"x".repeat(2001))),
            ("daily", text("09:30")),
        ],
    ));
    assert!(why.contains("2001 characters; at most 2000"), "{why}");
    assert!(store::all().unwrap().is_empty());
    assert!(host.effects().is_empty(), "{:?}", host.effects());
}

#[test]
fn the_server_has_at_most_max_announcements() {
    let host = host();
    host.set_config(json!({ "max_announcements": 2 }));
    create(&host, "One", ("daily", text("09:30")));
    create(&host, "Two", ("daily", text("10:30")));
    let why = refusal(command(
        &host,
        "create",
        &[
            ("channel", OptionValue::Channel(CHANNEL)),
            ("message", text("Three")),
            ("daily", text("11:30")),
        ],
    ));
    assert!(
        why.contains("has 2 announcements") && why.contains("delete one"),
        "{why}"
    );
    command(&host, "delete", &[number(1)]).unwrap();
    create(&host, "Three", ("daily", text("11:30")));
    assert_eq!(announcement(3).content, "Three", "numbers are not reused");
}

#[test]
fn a_role_the_config_does_not_allow_gets_a_note_at_creation() {
    let host = host();
    let reply = command(
        &host,
        "create",
        &[
            ("channel", OptionValue::Channel(CHANNEL)),
            ("message", text("Raid tonight")),
            ("daily", text("18:00")),
            ("role", OptionValue::Role(ROLE)),
        ],
    )
    .unwrap();
    let note = reply.content().unwrap();
    assert!(
        note.contains("<@&500> is not in the config's `allowed_ping_roles`"),
        "{note}"
    );
    assert_eq!(announcement(1).ping_role, Some(ROLE), "kept for when it is");

    host.set_config(json!({ "allowed_ping_roles": [ROLE.to_string()] }));
    let reply = command(
        &host,
        "create",
        &[
            ("channel", OptionValue::Channel(CHANNEL)),
            ("message", text("Raid tomorrow")),
            ("daily", text("18:00")),
            ("role", OptionValue::Role(ROLE)),
        ],
    )
    .unwrap();
    assert!(!reply.content().unwrap().contains("allowed_ping_roles"));
}

#[test]
fn pause_cancels_resume_schedules_from_now_and_delete_cancels() {
    let host = host();
    create(&host, "Tick", ("every", text("1h")));
    let first = the_job(&host);
    host.clear_effects();

    let reply = command(&host, "pause", &[number(1)]).unwrap();
    assert_eq!(reply.content(), Some("⏸️ Announcement #1 is paused."));
    assert_eq!(cancelled(&host), std::slice::from_ref(&first.id));
    assert!(host.pending_jobs().is_empty());
    let paused = announcement(1);
    assert!(paused.paused);
    assert_eq!((paused.next_run, paused.pending_job), (None, None));
    let again = command(&host, "pause", &[number(1)]).unwrap();
    assert_eq!(again.content(), Some("Announcement #1 was paused already."));

    // Resumed five hours later: the next run is an hour from then.
    set_now(T0 + 5 * HOUR);
    let reply = command(&host, "resume", &[number(1)]).unwrap();
    let next = T0 + 6 * HOUR;
    assert_eq!(
        reply.content().unwrap(),
        format!("▶️ Announcement #1 is back on schedule: next <t:{next}:f> (<t:{next}:R>).")
    );
    let job = the_job(&host);
    assert_eq!(payload(&job).due, next);
    assert_eq!(scheduled(&host).last().unwrap().2, HOUR as u32);
    assert!(!announcement(1).paused);
    let again = command(&host, "resume", &[number(1)]).unwrap();
    assert!(again.content().unwrap().contains("is not paused"));
    assert_eq!(the_job(&host).id, job.id, "resuming twice changes nothing");

    let reply = command(&host, "delete", &[number(1)]).unwrap();
    assert_eq!(reply.content(), Some("🗑️ Announcement #1 is deleted."));
    assert!(cancelled(&host).contains(&job.id));
    assert!(host.pending_jobs().is_empty());
    assert!(matches!(store::load(1), Err(Error::NotFound(_))));
    assert_eq!(
        live_actions(&host),
        ["paused", "resumed", "deleted"],
        "no event for what changed nothing"
    );
    let audited: Vec<String> = host.audit_entries().into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        audited,
        [
            "announcement.paused",
            "announcement.resumed",
            "announcement.deleted"
        ]
    );
    assert!(sent_nothing(&host));
}

#[test]
fn unknown_numbers_point_to_the_list() {
    let host = host();
    for sub in ["pause", "resume", "delete", "send"] {
        match command(&host, sub, &[number(9)]) {
            Err(Error::NotFound(why)) => assert!(
                why.contains("announcement #9") && why.contains("/announce list"),
                "{sub}: {why}"
            ),
            other => panic!("{sub}: {other:?}"),
        }
        let why = refusal(command(&host, sub, &[number(0)]));
        assert!(why.contains("number"), "{why}");
        let why = refusal(command(&host, sub, &[]));
        assert!(why.contains("/announce list"), "{why}");
    }
}

#[test]
fn list_shows_each_state_and_fits_a_message() {
    let host = host();
    assert_eq!(
        command(&host, "list", &[]).unwrap().content(),
        Some("No announcements yet: `/announce create` schedules one.")
    );
    create(&host, "Morning\nwith @everyone", ("daily", text("09:30")));
    create(&host, "Tick", ("every", text("1h")));
    command(&host, "pause", &[number(2)]).unwrap();
    let list = command(&host, "list", &[]).unwrap();
    assert!(list.ephemeral);
    let shown = list.content().unwrap();
    let first = MONDAY + 9 * HOUR + 30 * MINUTE;
    assert!(
        shown.contains(&format!(
            "**#1** <#300> daily at 09:30 UTC · next <t:{first}:f> (<t:{first}:R>) · Morning with @\u{200b}everyone"
        )),
        "{shown}"
    );
    assert!(
        shown.contains("**#2** <#300> every hour · paused · Tick"),
        "{shown}"
    );

    // A full server's list is cut to one message.
    host.set_config(json!({ "max_announcements": 100 }));
    for _ in 0..98 {
        create(
            &host,
            &"Long announcement text ".repeat(10),
            ("every", text("1d")),
        );
    }
    let full = command(&host, "list", &[])
        .unwrap()
        .content()
        .unwrap()
        .to_string();
    assert!(full.chars().count() <= 2000, "{}", full.chars().count());
    assert!(full.ends_with("more"), "{full}");
}
