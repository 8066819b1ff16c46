//! Disabling leaves the jobs to the host; enabling puts every active
//! announcement back on schedule from now.

use super::*;

/// What the host does with a disabled feature's jobs: each one that comes
/// due while the feature is off is cancelled (here: simply dropped).
fn host_drops_due_jobs(host: &MockHost, now: u64) {
    for job in host.pending_jobs() {
        if payload(&job).due <= now {
            host.take_job(&job.id);
        }
    }
}

#[test]
fn enabling_again_reschedules_every_active_announcement_from_now() {
    let host = host();
    create(&host, "Daily", ("daily", text("09:30"))); // #1
    create(&host, "Tick", ("every", text("6h"))); // #2
    create(&host, "Paused", ("daily", text("09:30"))); // #3
    command(&host, "pause", &[("number", OptionValue::Integer(3))]).unwrap();
    create(&host, "Noon launch", ("at", text("2026-12-07 12:00"))); // #4
    create(&host, "Next week", ("at", text("2026-12-14 12:00"))); // #5
    let old_jobs: Vec<String> = host.pending_jobs().into_iter().map(|j| j.id).collect();
    assert_eq!(old_jobs.len(), 4);

    assert_eq!(Announcements::on_disabled(&host.context()), Ok(()));
    assert_eq!(host.pending_jobs().len(), 4, "disabling leaves the jobs");

    // Off from Monday 08:00 to Wednesday 10:00.
    let wednesday = MONDAY + 2 * DAY + 10 * HOUR;
    set_now(wednesday);
    host_drops_due_jobs(&host, wednesday);
    assert_eq!(
        host.pending_jobs().len(),
        1,
        "only next week's one-off is left"
    );
    host.clear_effects();

    assert_eq!(Announcements::on_enabled(&host.context()), Ok(()));
    assert!(
        host.sent_messages().is_empty(),
        "what fell in the off time is not posted"
    );
    let due = |n: u64| announcement(n).next_run;
    assert_eq!(
        due(1),
        Some(MONDAY + 3 * DAY + 9 * HOUR + 30 * MINUTE),
        "Thursday 09:30"
    );
    assert_eq!(
        due(2),
        Some(wednesday + 6 * HOUR),
        "an interval starts over from now"
    );
    assert_eq!(due(3), None, "paused stays paused");
    assert_eq!(due(4), None, "its moment passed while off");
    assert!(
        announcement(4)
            .last_error
            .unwrap()
            .contains("passed while the feature was disabled")
    );
    assert_eq!(
        due(5),
        Some(MONDAY + 7 * DAY + 12 * HOUR),
        "still ahead: kept"
    );

    // One pending job per scheduled announcement, each the stored one; the
    // old job that was still pending is cancelled, not left to fire twice.
    let pending = host.pending_jobs();
    assert_eq!(pending.len(), 3);
    for n in [1, 2, 5] {
        let a = announcement(n);
        let job = pending
            .iter()
            .find(|j| Some(&j.id) == a.pending_job.as_ref())
            .unwrap_or_else(|| panic!("#{n} has no job"));
        assert_eq!(
            payload(job),
            JobPayload {
                number: n,
                due: a.next_run.unwrap()
            }
        );
        assert!(!old_jobs.contains(&job.id));
    }
    let [(_, _, delay_1), ..] = &scheduled(&host)[..] else {
        panic!();
    };
    assert_eq!(*delay_1, (23 * HOUR + 30 * MINUTE) as u32);
    assert_eq!(cancelled(&host).len(), 1);
    assert!(announcement(3).pending_job.is_none());

    // The restarted jobs post as usual.
    set_now(wednesday + 6 * HOUR);
    let tick = pending.iter().find(|j| payload(j).number == 2).unwrap();
    fire(&host, tick).unwrap();
    assert_eq!(host.sent_texts(), ["Tick"]);

    // Enabling twice is harmless: still one job each.
    Announcements::on_enabled(&host.context()).unwrap();
    assert_eq!(host.pending_jobs().len(), 3);
}

#[test]
fn enabling_with_nothing_to_schedule_does_nothing() {
    let host = host();
    assert_eq!(Announcements::on_enabled(&host.context()), Ok(()));
    assert!(host.pending_jobs().is_empty());
    assert!(host.sent_messages().is_empty());
}

#[test]
fn a_failure_to_schedule_one_announcement_does_not_fail_the_enable() {
    let host = host();
    create(&host, "Daily", ("daily", text("09:30")));
    host.fail(
        Capability::Scheduler,
        Error::QuotaExceeded("scheduled jobs: 100 pending jobs in this guild".into()),
    );
    assert_eq!(Announcements::on_enabled(&host.context()), Ok(()));
    let a = announcement(1);
    assert_eq!(a.pending_job, None);
    assert!(a.last_error.unwrap().contains("100 pending jobs"));
    let list = command(&host, "list", &[]).unwrap();
    assert!(
        list.content().unwrap().contains("not scheduled"),
        "{list:?}"
    );

    // Resume puts it back once jobs can be scheduled again. The first job,
    // which could not be cancelled, is stale: it posts nothing.
    host.allow(Capability::Scheduler);
    let orphan = the_job(&host);
    command(&host, "resume", &[("number", OptionValue::Integer(1))]).unwrap();
    let current = announcement(1).pending_job.unwrap();
    assert_ne!(current, orphan.id);
    assert_eq!(host.pending_jobs().len(), 2);
    set_now(MONDAY + 9 * HOUR + 30 * MINUTE);
    fire(&host, &orphan).unwrap();
    assert!(host.sent_messages().is_empty());
    let current = host
        .pending_jobs()
        .into_iter()
        .find(|j| j.id == current)
        .unwrap();
    fire(&host, &current).unwrap();
    assert_eq!(host.sent_texts(), ["Daily"]);
}
