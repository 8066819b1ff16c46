//! Ending a poll: by its button (who may), on time by the job, twice, and
//! the votes that come after.

use super::*;
use crate::poll::END_POLL_JOB;
use crate::store::{count_key, voters_key};

/// The `end-poll` job of poll #1, as the host would deliver it.
fn job_of_poll_1() -> ScheduledJob {
    ScheduledJob::new(poll(1).job.unwrap(), END_POLL_JOB, "1")
}

/// Bob and Cat vote Pasta, Mod votes Pizza.
fn three_votes(host: &MockHost) {
    click(host, "vote:1:1", BOB);
    click(host, "vote:1:1", CAT);
    click(host, "vote:1:0", MOD);
    host.clear_effects();
}

fn results(host: &MockHost) -> Vec<MessageBody> {
    host.sent_messages()
        .into_iter()
        .filter(|(channel, _)| *channel == CHANNEL)
        .map(|(_, body)| body)
        .collect()
}

#[test]
fn the_job_ends_the_poll_on_time_and_posts_the_results() {
    let host = with_poll(&[]);
    three_votes(&host);
    let message_id = poll(1).message_id.unwrap();
    Fun::on_schedule(&host.context(), job_of_poll_1()).unwrap();

    let ended = poll(1);
    assert!(ended.closed);
    assert_eq!(ended.closed_by, None, "its time ran out");
    assert!(ended.closed_at.is_some());

    // The poll's message: final counts, the winner, nothing left to click.
    let body = shown(&host, message_id);
    assert!(body.components.is_empty(), "{:?}", body.components);
    let text = embed_text(embed(&body));
    assert!(
        text.contains("**Pasta**\n`██████░░░░` 66% · 2 votes"),
        "{text}"
    );
    assert!(
        text.contains("Result: 🏆 **Pasta** wins with 2 votes (66% of 3 voters)."),
        "{text}"
    );
    assert!(
        text.contains(&format!("Ended: <t:{}:f>", ended.closed_at.unwrap())),
        "{text}"
    );
    assert!(!text.contains("ended early"), "{text}");

    // The results, posted in the channel.
    let posted = results(&host);
    assert_eq!(posted.len(), 1);
    let results = embed(&posted[0]);
    assert_eq!(results.title.as_deref(), Some("🏁 Poll #1 has ended"));
    let description = results.description.clone().unwrap();
    assert!(
        description.starts_with("**Lunch?**\n\n🏆 **Pasta** wins with 2 votes"),
        "{description}"
    );
    assert!(
        description.ends_with(&format!(
            "[Jump to the poll](https://discord.com/channels/{}/{CHANNEL}/{message_id})",
            host.context().guild_id
        )),
        "{description}"
    );
    assert_eq!(results.fields[0].name, "Final counts");
    assert_eq!(
        results.fields[0].value, "2️⃣ Pasta — 2 votes\n1️⃣ Pizza — 1 vote\n3️⃣ Salad — 0 votes",
        "best first"
    );
    assert_eq!(host.live_events().last().unwrap().1["action"], "ended");
}

#[test]
fn ending_twice_is_harmless_whichever_comes_first() {
    // The button first, then the job (cancelled, or already running).
    let host = with_poll(&[]);
    three_votes(&host);
    let job = job_of_poll_1();
    let reply = click(&host, "end:1", ANN);
    assert_eq!(
        reply.content(),
        Some("You ended poll #1; the results are posted in the channel.")
    );
    assert!(host.pending_jobs().is_empty(), "the job was cancelled");
    let stored = host.storage_entries();
    host.clear_effects();
    Fun::on_schedule(&host.context(), job.clone()).unwrap();
    Fun::on_schedule(&host.context(), job).unwrap();
    assert!(host.effects().is_empty(), "{:?}", host.effects());
    assert_eq!(host.storage_entries(), stored, "nothing changed");
    assert_eq!(poll(1).closed_by, Some(ANN), "still ended by Ann");

    // The job first, then a click on a stale button.
    let host = with_poll(&[]);
    Fun::on_schedule(&host.context(), job_of_poll_1()).unwrap();
    host.clear_effects();
    let reply = click(&host, "end:1", ANN);
    assert_eq!(reply.content(), Some("This poll has already ended."));
    assert!(host.effects().is_empty());
}

#[test]
fn only_the_creator_or_a_message_manager_may_end_a_poll_early() {
    let host = with_poll(&[]);
    // Bob is neither.
    let reply = click(&host, "end:1", BOB);
    assert!(reply.ephemeral);
    assert_eq!(
        reply.content(),
        Some(
            "Only the member who started this poll, or someone with Manage Messages, can end it early."
        )
    );
    assert!(!poll(1).closed);
    assert!(host.sent_messages().is_empty() && host.edited_messages().is_empty());

    // Mod holds Manage Messages.
    click(&host, "vote:1:2", BOB);
    let reply = click(&host, "end:1", MOD);
    assert_eq!(
        reply.content(),
        Some("You ended poll #1; the results are posted in the channel.")
    );
    let ended = poll(1);
    assert_eq!(ended.closed_by, Some(MOD));
    let text = embed_text(embed(&shown(&host, ended.message_id.unwrap())));
    assert!(text.contains(&format!("ended early by <@{MOD}>")), "{text}");
    assert_eq!(results(&host).len(), 1);

    // Ann, the creator, needs no permission at all.
    let host = with_poll(&[]);
    host.set_invoker_permissions(0);
    let interaction = ComponentInteraction::button("end:1", member(ANN), CHANNEL);
    let reply = Fun::on_component(&host.context(), interaction).unwrap();
    assert!(reply.content().unwrap().starts_with("You ended poll #1"));
    assert_eq!(poll(1).closed_by, Some(ANN));
}

#[test]
fn a_vote_after_the_end_is_refused_politely_and_changes_nothing() {
    let host = with_poll(&[]);
    click(&host, "vote:1:0", BOB);
    click(&host, "end:1", ANN);
    host.clear_effects();
    let reply = click(&host, "vote:1:1", CAT);
    assert!(reply.ephemeral);
    assert_eq!(
        reply.content(),
        Some("This poll has ended; its results are in the channel.")
    );
    assert_eq!(store::vote_of(1, CAT).unwrap(), Vec::<usize>::new());
    assert_eq!(
        tally(1),
        Tally {
            counts: vec![1, 0, 0],
            voters: 1
        }
    );
    assert!(host.effects().is_empty());
}

/// The job is late (or lost): the first vote after `ends_at` ends the poll
/// itself, and the job later finds nothing to do.
#[test]
fn a_vote_after_the_end_time_ends_a_poll_whose_job_is_late() {
    let host = with_poll(&[]);
    click(&host, "vote:1:2", BOB);
    let job = job_of_poll_1();
    edit_poll(1, |p| p.ends_at = crate::pick::now() - 5);
    host.clear_effects();
    let reply = click(&host, "vote:1:0", CAT);
    assert_eq!(
        reply.content(),
        Some("This poll has ended; its results are in the channel.")
    );
    assert!(poll(1).closed);
    assert_eq!(poll(1).closed_by, None);
    assert_eq!(tally(1).counts, [0, 0, 1], "Cat's late vote is not counted");
    let posted = results(&host);
    assert_eq!(posted.len(), 1);
    assert!(
        embed(&posted[0])
            .description
            .as_deref()
            .unwrap()
            .contains("🏆 **Salad** wins with 1 vote (100% of 1 voter).")
    );
    host.clear_effects();
    Fun::on_schedule(&host.context(), job).unwrap();
    assert!(host.effects().is_empty());
}

#[test]
fn ties_and_empty_polls_are_announced_as_such() {
    let host = with_poll(&[]);
    click(&host, "vote:1:0", BOB);
    click(&host, "vote:1:2", CAT);
    host.clear_effects();
    Fun::on_schedule(&host.context(), job_of_poll_1()).unwrap();
    let posted = results(&host);
    let description = embed(&posted[0]).description.clone().unwrap();
    assert!(
        description.contains("🤝 A tie between **Pizza** and **Salad**, with 1 vote each."),
        "{description}"
    );

    let host = with_poll(&[]);
    Fun::on_schedule(&host.context(), job_of_poll_1()).unwrap();
    let posted = results(&host);
    let description = embed(&posted[0]).description.clone().unwrap();
    assert!(description.contains("No votes were cast."), "{description}");
    let text = embed_text(embed(&shown(&host, poll(1).message_id.unwrap())));
    assert!(text.contains("Result: No votes were cast."), "{text}");
}

/// An invocation that stopped between recording a vote and counting it
/// leaves the counts off; the end counts the votes afresh and corrects them.
#[test]
fn the_final_counts_are_recounted_from_the_votes() {
    let host = with_poll(&[]);
    click(&host, "vote:1:1", BOB);
    // Cat's vote was recorded, but her invocation died before counting it;
    // and a stray count was left on Salad.
    host.set_storage_value(&store::vote_key(1, CAT), "[1]");
    host.set_storage_value(&count_key(1, 2), "3");
    Fun::on_schedule(&host.context(), job_of_poll_1()).unwrap();
    assert_eq!(
        tally(1),
        Tally {
            counts: vec![0, 2, 0],
            voters: 2
        }
    );
    assert_eq!(host.storage_value(&voters_key(1)).as_deref(), Some("2"));
    let posted = results(&host);
    assert!(
        embed(&posted[0])
            .description
            .as_deref()
            .unwrap()
            .contains("🏆 **Pasta** wins with 2 votes (100% of 2 voters).")
    );
}

#[test]
fn a_job_for_a_poll_that_is_gone_or_garbled_does_no_harm() {
    let host = host();
    let gone = ScheduledJob::new("job-1", END_POLL_JOB, "7");
    assert_eq!(Fun::on_schedule(&host.context(), gone), Ok(()));
    let garbled = ScheduledJob::new("job-2", END_POLL_JOB, "seven");
    assert!(matches!(
        Fun::on_schedule(&host.context(), garbled),
        Err(Error::InvalidArgument(_))
    ));
    assert!(host.effects().is_empty());
    let reply = click(&host, "end:7", ANN);
    assert_eq!(reply.content(), Some("That poll no longer exists."));
}
