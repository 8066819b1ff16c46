//! The `announce` job: posts on time, fills variables, pings only allowed
//! roles, moves on to the next run; late, stale and duplicate jobs.

use super::*;
use crate::run::{self, claim};
use townes_sdk::LogLevel;

/// Monday 09:30, the first run of a daily 09:30 created at [`T0`].
const DUE: u64 = MONDAY + 9 * HOUR + 30 * MINUTE;

/// Announcement #1: daily at 09:30 in [`CHANNEL`], pinging [`ROLE`], with an
/// embed, created by [`ADMIN`]; effects cleared.
fn daily_with_role(host: &MockHost) -> ScheduledJob {
    let reply = command(
        host,
        "create",
        &[
            ("channel", OptionValue::Channel(CHANNEL)),
            (
                "message",
                text(
                    "Good morning {server.name} ({server.memberCount} members)! \
                     {weekday} {date}, {time} UTC. {unknown} @everyone",
                ),
            ),
            ("daily", text("09:30")),
            ("role", OptionValue::Role(ROLE)),
        ],
    )
    .unwrap();
    assert!(reply.content().unwrap().contains("#1"));
    edit(1, |a| {
        a.embed = Some(store::EmbedSpec {
            title: Some("{server.name} news".into()),
            description: Some("Posted on {date} for @here".into()),
            color: Some(0x5865f2),
        })
    });
    host.clear_effects();
    the_job(host)
}

#[test]
fn a_due_job_posts_with_variables_filled_and_schedules_the_next_run() {
    let host = host();
    host.set_config(json!({ "allowed_ping_roles": [ROLE.to_string()] }));
    let job = daily_with_role(&host);
    assert_eq!(
        payload(&job),
        JobPayload {
            number: 1,
            due: DUE
        }
    );

    set_now(DUE + 2);
    fire(&host, &job).unwrap();

    let sent = host.sent_messages();
    assert_eq!(sent.len(), 1);
    let (channel, body) = &sent[0];
    assert_eq!(*channel, CHANNEL);
    assert_eq!(
        body.content.as_deref(),
        Some(
            "<@&500> Good morning Playground (42 members)! Monday 2026-12-07, 09:30 UTC. \
             {unknown} @\u{200b}everyone"
        )
    );
    let embed = &body.embeds[0];
    assert_eq!(embed.title.as_deref(), Some("Playground news"));
    assert_eq!(
        embed.description.as_deref(),
        Some("Posted on 2026-12-07 for @\u{200b}here")
    );
    assert_eq!(embed.color, Some(0x5865f2));

    // The next run: tomorrow 09:30, as a job of its own.
    let next = the_job(&host);
    assert_ne!(next.id, job.id);
    assert_eq!(
        payload(&next),
        JobPayload {
            number: 1,
            due: DUE + DAY
        }
    );
    assert_eq!(scheduled(&host)[0].2, (DAY - 2) as u32);
    let stored = announcement(1);
    assert_eq!(stored.runs, 1);
    assert_eq!(stored.last_run, Some(DUE + 2));
    assert_eq!(stored.last_due, Some(DUE));
    assert_eq!(stored.next_run, Some(DUE + DAY));
    assert_eq!(stored.pending_job.as_deref(), Some(next.id.as_str()));
    assert!(!stored.ping_skipped);
    assert_eq!(live_actions(&host), ["sent"]);
    assert!(
        host.audit_entries().is_empty(),
        "routine posts are not audited"
    );

    // The day after, the same again.
    set_now(DUE + DAY);
    fire(&host, &next).unwrap();
    assert_eq!(host.sent_messages().len(), 2);
    assert!(host.sent_texts()[1].contains("Tuesday 2026-12-08"));
    assert_eq!(payload(&the_job(&host)).due, DUE + 2 * DAY);
    assert_eq!(announcement(1).runs, 2);
}

#[test]
fn a_role_the_config_does_not_allow_is_shown_but_not_pinged_and_audited_once() {
    let host = host();
    host.set_config(json!({ "allowed_ping_roles": [OTHER_ROLE.to_string()] }));
    let job = daily_with_role(&host);
    set_now(DUE);
    fire(&host, &job).unwrap();
    let content = host.sent_texts()[0].clone();
    assert!(!content.contains("<@&"), "{content}");
    assert!(content.starts_with("Good morning"));
    assert!(announcement(1).ping_skipped);
    let audits = host.audit_entries();
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].0, "announcement.ping_skipped");
    assert!(audits[0].1.contains("<@&500>"), "{}", audits[0].1);
    assert!(
        host.logs()
            .iter()
            .any(|(level, line)| *level == LogLevel::Warn && line.contains("without pinging"))
    );

    // The next run logs again but does not audit again.
    set_now(DUE + DAY);
    fire(&host, &the_job(&host)).unwrap();
    assert_eq!(host.audit_entries().len(), 1);
    assert_eq!(
        host.logs()
            .iter()
            .filter(|(_, line)| line.contains("without pinging"))
            .count(),
        2
    );

    // Once an admin allows the role, it is pinged and the flag clears.
    host.set_config(json!({ "allowed_ping_roles": [ROLE.to_string()] }));
    set_now(DUE + 2 * DAY);
    fire(&host, &the_job(&host)).unwrap();
    assert!(host.sent_texts()[2].starts_with("<@&500> Good morning"));
    assert!(!announcement(1).ping_skipped);
}

#[test]
fn without_members_the_server_variables_read_as_placeholders() {
    let host = host();
    host.deny(Capability::Members);
    create(
        &host,
        "Hi {server.name}, all {server.memberCount} of you",
        ("daily", text("09:30")),
    );
    set_now(DUE);
    fire(&host, &the_job(&host)).unwrap();
    assert_eq!(host.sent_texts(), ["Hi this server, all ? of you"]);
}

#[test]
fn a_late_job_posts_once_and_schedules_from_now_skipping_what_it_missed() {
    let host = host();
    create(&host, "Status report", ("every", text("6h")));
    let job = the_job(&host);
    let due = T0 + 6 * HOUR;
    assert_eq!(payload(&job).due, due);
    host.clear_effects();

    // The bot was down for three days: the job survived and runs now.
    let now = due + 3 * DAY + HOUR;
    set_now(now);
    fire(&host, &job).unwrap();
    assert_eq!(host.sent_texts(), ["Status report"], "one post, no backlog");
    let next = the_job(&host);
    let next_due = payload(&next).due;
    assert_eq!(
        next_due,
        due + 13 * 6 * HOUR,
        "the interval keeps its phase"
    );
    assert!(next_due > now && next_due - now <= 6 * HOUR);
    assert_eq!(scheduled(&host)[0].2, 5 * HOUR as u32);
    assert!(
        host.logs()
            .iter()
            .any(|(_, line)| line.contains("late") && line.contains("once")),
        "{:?}",
        host.logs()
    );

    // A daily one after a long weekend: posts once, then the next morning.
    let host = self::host();
    create(&host, "Good morning", ("daily", text("09:30")));
    let job = the_job(&host);
    host.clear_effects();
    let thursday_afternoon = MONDAY + 3 * DAY + 15 * HOUR;
    set_now(thursday_afternoon);
    fire(&host, &job).unwrap();
    assert_eq!(host.sent_texts().len(), 1);
    assert_eq!(payload(&the_job(&host)).due, DUE + 4 * DAY, "Friday 09:30");
    assert_eq!(announcement(1).last_due, Some(DUE));
}

#[test]
fn a_stale_or_duplicate_job_posts_nothing() {
    let host = host();
    create(&host, "Hello", ("daily", text("09:30")));
    let first = the_job(&host);
    // Pause and resume: the first job is cancelled and replaced.
    command(&host, "pause", &[("number", OptionValue::Integer(1))]).unwrap();
    command(&host, "resume", &[("number", OptionValue::Integer(1))]).unwrap();
    let second = the_job(&host);
    assert_ne!(first.id, second.id);
    host.clear_effects();

    set_now(DUE);
    // The old job, had the cancel come too late: not its announcement's job.
    fire(&host, &first).unwrap();
    assert!(host.sent_messages().is_empty());
    fire(&host, &second).unwrap();
    assert_eq!(host.sent_messages().len(), 1);
    // The same job delivered again (a retry, a duplicate): nothing.
    let third = the_job(&host);
    fire(&host, &second).unwrap();
    assert_eq!(host.sent_messages().len(), 1);
    assert_eq!(the_job(&host).id, third.id, "the next run is untouched");
    assert_eq!(announcement(1).runs, 1);

    // Even a job that is the stored one cannot post a due time that was
    // claimed already.
    edit(1, |a| a.last_due = Some(DUE + DAY));
    set_now(DUE + DAY);
    fire(&host, &third).unwrap();
    assert_eq!(host.sent_messages().len(), 1);
    assert_eq!(
        announcement(1).pending_job.as_deref(),
        Some(third.id.as_str())
    );
}

#[test]
fn the_claim_is_a_compare_and_set_that_one_job_wins() {
    let _host = host();
    let mut a = store::Announcement {
        number: 1,
        channel_id: CHANNEL,
        content: "x".into(),
        embed: None,
        ping_role: None,
        schedule: crate::schedule::Schedule::Every { seconds: HOUR },
        paused: false,
        next_run: Some(T0),
        last_run: None,
        runs: 0,
        created_by: None,
        created_at: T0 - HOUR,
        pending_job: Some("job-1".into()),
        last_due: None,
        ping_skipped: false,
        last_error: None,
    };
    let original = a.clone();
    assert_eq!(claim(&mut a, "job-1", T0, T0), Ok(()));
    assert_eq!(
        (a.last_due, a.pending_job.as_deref(), a.next_run),
        (Some(T0), None, Some(T0 + HOUR))
    );
    assert!(claim(&mut a, "job-1", T0, T0).is_err(), "claimed");
    let mut paused = store::Announcement {
        paused: true,
        ..original.clone()
    };
    assert!(claim(&mut paused, "job-1", T0, T0).is_err());
    let mut other = original.clone();
    assert!(claim(&mut other, "job-2", T0, T0).is_err());
    assert_eq!(other, original, "a refused claim changes nothing");

    // Two deliveries racing on the stored record: the second's set_if finds
    // the value moved on and, re-reading, a claimed run.
    store::insert(&original).unwrap();
    let (_, first) = store::update(1, |a| Ok(claim(a, "job-1", T0, T0))).unwrap();
    let (_, second) = store::update(1, |a| Ok(claim(a, "job-1", T0, T0))).unwrap();
    assert_eq!((first, second.is_err()), (Ok(()), true));
}

#[test]
fn a_one_off_posts_once_and_is_done() {
    let host = host();
    create(&host, "Launch day!", ("at", text("2026-12-07T12:00:00Z")));
    let job = the_job(&host);
    let noon = MONDAY + 12 * HOUR;
    assert_eq!(payload(&job).due, noon);
    host.clear_effects();
    set_now(noon);
    fire(&host, &job).unwrap();
    assert_eq!(host.sent_texts(), ["Launch day!"]);
    assert!(host.pending_jobs().is_empty(), "no next run");
    assert!(scheduled(&host).is_empty());
    let done = announcement(1);
    assert_eq!(
        (done.next_run, done.pending_job, done.runs, done.paused),
        (None, None, 1, false)
    );
    let list = command(&host, "list", &[]).unwrap();
    assert!(list.content().unwrap().contains("done"), "{list:?}");
    // Resuming it has nothing to schedule, and says what would.
    match command(&host, "resume", &[("number", OptionValue::Integer(1))]) {
        Err(Error::InvalidArgument(why)) => {
            assert!(
                why.contains("already posted") && why.contains("new time"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_post_is_recorded_and_the_schedule_goes_on() {
    let host = host();
    create(&host, "Hello", ("every", text("1h")));
    let job = the_job(&host);
    host.clear_effects();
    // The channel is outside the messages grant's allow-list.
    host.deny(Capability::Messages);
    set_now(T0 + HOUR);
    let error = fire(&host, &job).unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument(why) if why.contains("not allowed")),
        "{error:?}"
    );
    let stored = announcement(1);
    assert!(stored.last_error.unwrap().contains("<#300>"));
    assert_eq!(stored.runs, 0);
    assert_eq!(stored.last_due, Some(T0 + HOUR), "the run is spent");
    assert_eq!(payload(&the_job(&host)).due, T0 + 2 * HOUR);
    let audits = host.audit_entries();
    assert_eq!(audits[0].0, "announcement.failed");

    // The next run posts and clears the error.
    host.allow(Capability::Messages);
    set_now(T0 + 2 * HOUR);
    fire(&host, &the_job(&host)).unwrap();
    assert_eq!(host.sent_texts(), ["Hello"]);
    assert_eq!(announcement(1).last_error, None);
}

#[test]
fn a_paused_or_deleted_announcement_ignores_its_job() {
    let host = host();
    create(&host, "One", ("daily", text("09:30")));
    create(&host, "Two", ("daily", text("09:30")));
    let jobs = host.pending_jobs();
    // The host cancelled them, but a job already taken to run still arrives.
    command(&host, "pause", &[("number", OptionValue::Integer(1))]).unwrap();
    command(&host, "delete", &[("number", OptionValue::Integer(2))]).unwrap();
    assert!(host.pending_jobs().is_empty());
    set_now(DUE);
    for job in &jobs {
        Announcements::on_schedule(&host.context(), job.clone()).unwrap();
    }
    assert!(host.sent_messages().is_empty());
    assert_eq!(announcement(1).runs, 0);
}

#[test]
fn send_posts_now_without_touching_the_schedule() {
    let host = host();
    host.set_config(json!({ "allowed_ping_roles": [ROLE.to_string()] }));
    daily_with_role(&host);
    let before = announcement(1);
    set_now(T0 + 10 * MINUTE);
    let reply = command(&host, "send", &[("number", OptionValue::Integer(1))]).unwrap();
    assert!(reply.content().unwrap().contains("schedule is unchanged"));
    let sent = host.sent_messages();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .1
            .content
            .as_deref()
            .unwrap()
            .starts_with("<@&500> Good morning")
    );
    assert!(
        sent[0].1.content.as_deref().unwrap().contains("08:10"),
        "the moment of posting"
    );
    let after = announcement(1);
    assert_eq!(after.runs, 1);
    assert_eq!(after.last_run, Some(T0 + 10 * MINUTE));
    assert_eq!(
        (after.next_run, &after.pending_job, after.last_due),
        (before.next_run, &before.pending_job, before.last_due)
    );
    assert!(scheduled(&host).is_empty() && cancelled(&host).is_empty());
    assert_eq!(live_actions(&host), ["sent"]);
    assert_eq!(host.audit_entries()[0].0, "announcement.sent");

    // The scheduled run still comes, and posts.
    set_now(DUE);
    fire(&host, &the_job(&host)).unwrap();
    assert_eq!(host.sent_messages().len(), 2);

    // A paused announcement can be sent too; a denied channel says why.
    command(&host, "pause", &[("number", OptionValue::Integer(1))]).unwrap();
    command(&host, "send", &[("number", OptionValue::Integer(1))]).unwrap();
    assert_eq!(host.sent_messages().len(), 3);
    host.deny(Capability::Messages);
    match command(&host, "send", &[("number", OptionValue::Integer(1))]) {
        Err(Error::InvalidArgument(why)) => {
            assert!(why.contains("<#300>") && why.contains("allow"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn message_bodies_keep_to_discords_limits() {
    let host = host();
    let long = "x".repeat(2000);
    create(&host, &long, ("daily", text("09:30")));
    edit(1, |a| a.ping_role = Some(ROLE));
    host.set_config(json!({ "allowed_ping_roles": [ROLE.to_string()] }));
    set_now(DUE);
    fire(&host, &the_job(&host)).unwrap();
    let content = host.sent_texts()[0].clone();
    assert!(content.starts_with("<@&500> xxx"));
    assert_eq!(content.chars().count(), 2000);
    assert!(content.ends_with('…'));

    // An embed alone makes a message; a role alone is its whole text.
    let a = store::Announcement {
        content: String::new(),
        embed: Some(store::EmbedSpec {
            title: Some("t".repeat(300)),
            description: None,
            color: None,
        }),
        ..announcement(1)
    };
    let vars = run::Vars {
        guild: None,
        now: T0,
    };
    let body = run::message_body(&a, vars, None);
    assert_eq!(body.content, None);
    assert_eq!(body.embeds[0].title.as_ref().unwrap().chars().count(), 256);
    assert!(body.validate().is_ok());
    assert_eq!(
        run::message_body(&a, vars, Some(ROLE)).content.as_deref(),
        Some("<@&500>")
    );
}

#[test]
fn a_next_run_that_cannot_be_scheduled_still_posts_this_one_and_says_so() {
    let host = host();
    create(&host, "Hello", ("every", text("1h")));
    let job = the_job(&host);
    host.clear_effects();
    // The guild is at its plan's pending-job cap.
    host.fail(
        Capability::Scheduler,
        Error::QuotaExceeded("scheduled jobs: 100 pending jobs in this guild".into()),
    );
    set_now(T0 + HOUR);
    let error = fire(&host, &job).unwrap_err();
    assert!(matches!(error, Error::QuotaExceeded(_)), "{error:?}");
    assert_eq!(host.sent_texts(), ["Hello"], "this run still goes out");
    let stored = announcement(1);
    assert_eq!((stored.runs, stored.pending_job), (1, None));
    assert_eq!(stored.next_run, Some(T0 + 2 * HOUR));
    assert!(
        stored
            .last_error
            .unwrap()
            .contains("next run could not be scheduled")
    );
    assert_eq!(host.audit_entries()[0].0, "announcement.failed");
    // `resume` puts it back on schedule once jobs fit again.
    // Its stored next run still lies ahead, so it keeps it.
    host.allow(Capability::Scheduler);
    set_now(T0 + HOUR + 10 * MINUTE);
    let reply = command(&host, "resume", &[("number", OptionValue::Integer(1))]).unwrap();
    assert!(reply.content().unwrap().contains("back on schedule"));
    assert_eq!(payload(&the_job(&host)).due, T0 + 2 * HOUR);
    assert_eq!(scheduled(&host).last().unwrap().2, 50 * MINUTE as u32);
}
