//! Auto-close: messages keep a ticket alive; the job waits, warns, closes.

use super::*;
use crate::store::Status;
use crate::time::now;
use townes_sdk::{Message, ScheduledJob};

fn says(host: &MockHost, channel: Snowflake, author: User) {
    let message = Message::new(9_999, channel, author, "hello?");
    Tickets::on_event(&host.context(), Event::MessageCreated(message)).unwrap();
}

/// Runs the ticket's one pending job, as the host does when it is due.
fn run_job(host: &MockHost) {
    let jobs = host.pending_jobs();
    assert_eq!(jobs.len(), 1, "one live job per ticket: {jobs:?}");
    let job = host.take_job(&jobs[0].id).unwrap();
    Tickets::on_schedule(&host.context(), job).unwrap();
}

/// The delay of the job scheduled last.
fn last_delay(host: &MockHost) -> u32 {
    host.effects()
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::JobScheduled { delay_seconds, .. } => Some(*delay_seconds),
            _ => None,
        })
        .expect("a job was scheduled")
}

fn quiet_ticket(host: &MockHost) -> Snowflake {
    host.set_config(json!({ "inactive_seconds": 3600, "warning_seconds": 600 }));
    make_panel(host);
    let channel = open_ticket(host, ANN);
    assert_eq!(last_delay(host), 3600);
    host.clear_effects();
    channel
}

#[test]
fn a_human_message_resets_the_clock_and_voids_the_warning() {
    let (host, channel) = with_ticket();
    let long_ago = now() - 1000;
    edit_ticket(1, |t| {
        t.last_activity = long_ago;
        t.warned_at = Some(long_ago);
    });
    says(&host, channel, User::new(7, "a bot").as_bot());
    says(&host, channel, User::new(BOT_USER_ID, "Tickets"));
    says(&host, 12_345, User::new(ANN, "ann"));
    assert_eq!(
        ticket(1).last_activity,
        long_ago,
        "bots and other channels do not count"
    );
    assert_eq!(ticket(1).warned_at, Some(long_ago));

    says(&host, channel, User::new(BOB, "bob"));
    let alive = ticket(1);
    assert!(alive.last_activity.abs_diff(now()) < 5);
    assert_eq!(alive.warned_at, None);

    // A busy ticket is not rewritten on every message.
    let moments_ago = now() - 10;
    edit_ticket(1, |t| t.last_activity = moments_ago);
    says(&host, channel, User::new(ANN, "ann"));
    assert_eq!(ticket(1).last_activity, moments_ago);
    assert!(host.effects().is_empty(), "{:?}", host.effects());
}

#[test]
fn the_job_waits_warns_and_then_closes() {
    let host = host();
    let channel = quiet_ticket(&host);

    // Someone wrote 1000 s ago: check again when the hour is up.
    edit_ticket(1, |t| t.last_activity = now() - 1000);
    run_job(&host);
    assert!(
        (2590..=2600).contains(&last_delay(&host)),
        "{}",
        last_delay(&host)
    );
    assert!(host.sent_messages().is_empty());
    let pending = host.pending_jobs();
    assert_eq!(
        ticket(1).inactivity_job.as_deref(),
        Some(pending[0].id.as_str())
    );

    // Quiet for more than the hour: a warning first.
    edit_ticket(1, |t| t.last_activity = now() - 4000);
    run_job(&host);
    assert_eq!(
        host.sent_texts(),
        [
            "⏰ This ticket has been quiet for a while. It will close in 10 minutes if nobody writes."
        ]
    );
    assert_eq!(host.sent_messages()[0].0, channel);
    let warned = ticket(1);
    assert!(warned.warned_at.unwrap().abs_diff(now()) < 5);
    assert_eq!(warned.status, Status::Open);
    assert_eq!(last_delay(&host), 600);
    assert_eq!(live_actions(&host), ["warned"]);
    assert!(host.audit_entries().is_empty(), "a warning is not audited");

    // Run early (a retry, a clock skew): it waits out the warning.
    run_job(&host);
    assert_eq!(ticket(1).status, Status::Open);
    assert!((595..=600).contains(&last_delay(&host)));

    // The warning went unanswered: closed by the bot.
    edit_ticket(1, |t| t.warned_at = Some(now() - 700));
    host.clear_effects();
    run_job(&host);
    let closed = ticket(1);
    assert_eq!(closed.status, Status::Closed);
    assert_eq!(closed.closed_by, Some(BOT_USER_ID));
    assert_eq!(closed.close_reason.as_deref(), Some("No activity"));
    assert!(closed.transcript.is_some());
    let closing = host.sent_messages()[0].1.embeds[0]
        .description
        .clone()
        .unwrap();
    assert!(
        closing.starts_with("Ticket closed by <@1>.\n**Reason:** No activity"),
        "{closing}"
    );
    assert_eq!(host.dms()[0].0, ANN);
    assert!(host.pending_jobs().is_empty());
    assert_eq!(live_actions(&host), ["closed"]);
}

#[test]
fn an_answer_to_the_warning_keeps_the_ticket_open() {
    let host = host();
    let channel = quiet_ticket(&host);
    edit_ticket(1, |t| t.last_activity = now() - 4000);
    run_job(&host);
    assert!(ticket(1).warned_at.is_some());

    says(&host, channel, User::new(ANN, "ann"));
    assert_eq!(ticket(1).warned_at, None);
    host.clear_effects();
    run_job(&host);
    assert_eq!(ticket(1).status, Status::Open);
    assert!((3595..=3600).contains(&last_delay(&host)));
    assert!(host.sent_messages().is_empty());
}

#[test]
fn leftover_jobs_do_nothing_and_turning_it_off_stops_the_checks() {
    let host = host();
    let channel = quiet_ticket(&host);
    let first = ticket(1).inactivity_job.unwrap();

    // A job that is not the ticket's live one (a retry of an old one).
    let stale = ScheduledJob::new("job-77", "inactivity", "1");
    edit_ticket(1, |t| t.last_activity = now() - 90_000);
    Tickets::on_schedule(&host.context(), stale).unwrap();
    assert!(host.effects().is_empty());
    // A job of a ticket that does not exist.
    let unknown = ScheduledJob::new("job-78", "inactivity", "9");
    Tickets::on_schedule(&host.context(), unknown).unwrap();
    assert!(host.effects().is_empty());

    // Auto-close turned off: the live job ends the chain.
    host.set_config(json!({ "inactive_seconds": 0 }));
    run_job(&host);
    assert_eq!(ticket(1).inactivity_job, None);
    assert!(host.pending_jobs().is_empty());
    assert_eq!(ticket(1).status, Status::Open);

    // Turned on again: the next message starts a new chain.
    host.set_config(json!({ "inactive_seconds": 3600 }));
    says(&host, channel, User::new(ANN, "ann"));
    let job = ticket(1).inactivity_job.expect("a new job");
    assert_ne!(job, first);
    assert_eq!(host.pending_jobs()[0].id, job);

    // A closed ticket's job (had it not been cancelled) does nothing either,
    // and a message in it neither touches it nor starts a new check.
    submit_close(&host, 1, "", SUP, channel);
    host.clear_effects();
    edit_ticket(1, |t| t.last_activity = 5);
    says(&host, channel, User::new(ANN, "ann"));
    assert_eq!(ticket(1).last_activity, 5);
    assert!(host.pending_jobs().is_empty());
    Tickets::on_schedule(&host.context(), ScheduledJob::new(job, "inactivity", "1")).unwrap();
    assert!(host.effects().is_empty());
}

#[test]
fn a_ticket_whose_channel_vanished_is_marked_deleted() {
    let host = host();
    let channel = quiet_ticket(&host);
    edit_ticket(1, |t| t.last_activity = now() - 4000);
    host.fail(
        Capability::Messages,
        Error::NotFound(format!("channel {channel}")),
    );
    run_job(&host);
    assert_eq!(ticket(1).status, Status::Deleted);
    assert_eq!(host.storage_value(&format!("channel:{channel}")), None);
    assert_eq!(host.storage_value("open:42:0000000001"), None);
    assert_eq!(live_actions(&host), ["deleted"]);
}
