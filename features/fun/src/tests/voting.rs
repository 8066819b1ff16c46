//! Voting: one vote per member, changing it, several on a `multi` poll,
//! the counts on the message, and votes that race.

use super::*;
use crate::store::{count_key, update_vote, vote_key, voters_key};
use townes_sdk::storage::{SWAP_ATTEMPTS, compare_and_swap};

fn message_of(poll_number: u64) -> Snowflake {
    poll(poll_number).message_id.unwrap()
}

#[test]
fn a_vote_is_counted_shown_on_the_message_and_confirmed_to_the_voter() {
    let host = with_poll(&[]);
    let reply = click(&host, "vote:1:0", BOB);
    assert!(reply.ephemeral, "only the voter sees it");
    assert_eq!(reply.content(), Some("You voted for **Pizza**."));
    assert_eq!(store::vote_of(1, BOB).unwrap(), [0]);
    assert_eq!(
        host.storage_value("vote:0000000001:43").as_deref(),
        Some("[0]")
    );
    assert_eq!(
        tally(1),
        Tally {
            counts: vec![1, 0, 0],
            voters: 1
        }
    );

    let edits = host.edited_messages();
    assert_eq!(edits.len(), 1, "one edit when nothing raced it");
    let (channel, message, body) = &edits[0];
    assert_eq!((*channel, *message), (CHANNEL, message_of(1)));
    let shown = embed_text(embed(body));
    assert!(
        shown.contains("1️⃣ **Pizza**\n`██████████` 100% · 1 vote"),
        "{shown}"
    );
    assert!(
        shown.contains("2️⃣ **Pasta**\n`░░░░░░░░░░` 0% · 0 votes"),
        "{shown}"
    );
    assert_eq!(
        embed(body).footer.as_deref(),
        Some("Poll #1 · one choice each · 1 voter")
    );
    assert_eq!(
        button_ids(body),
        ["vote:1:0", "vote:1:1", "vote:1:2", "end:1"],
        "still open"
    );
    let (kind, data) = host.live_events().pop().unwrap();
    assert_eq!(kind, "poll_update");
    assert_eq!(
        data,
        json!({ "poll": 1, "action": "voted", "counts": [1, 0, 0], "voters": 1, "closed": false })
    );

    click(&host, "vote:1:1", CAT);
    click(&host, "vote:1:1", MOD);
    assert_eq!(
        tally(1),
        Tally {
            counts: vec![1, 2, 0],
            voters: 3
        }
    );
    let shown = embed_text(embed(&shown_body(&host)));
    assert!(
        shown.contains("**Pizza**\n`███░░░░░░░` 33% · 1 vote"),
        "{shown}"
    );
    assert!(
        shown.contains("**Pasta**\n`██████░░░░` 66% · 2 votes"),
        "{shown}"
    );
}

fn shown_body(host: &MockHost) -> MessageBody {
    shown(host, message_of(1))
}

#[test]
fn voting_again_changes_the_vote_and_the_same_click_changes_nothing() {
    let host = with_poll(&[]);
    click(&host, "vote:1:0", BOB);
    let reply = click(&host, "vote:1:2", BOB);
    assert_eq!(
        reply.content(),
        Some("You voted for **Salad** (instead of **Pizza**).")
    );
    assert_eq!(store::vote_of(1, BOB).unwrap(), [2]);
    assert_eq!(
        tally(1),
        Tally {
            counts: vec![0, 0, 1],
            voters: 1
        },
        "moved, not added"
    );

    host.clear_effects();
    let reply = click(&host, "vote:1:2", BOB);
    assert_eq!(reply.content(), Some("You already voted for **Salad**."));
    assert_eq!(
        tally(1),
        Tally {
            counts: vec![0, 0, 1],
            voters: 1
        }
    );
    assert!(host.edited_messages().is_empty(), "nothing to show");
}

#[test]
fn on_a_multi_poll_each_button_toggles_its_option() {
    let host = with_poll(&[("multi", OptionValue::Boolean(true))]);
    let reply = click(&host, "vote:1:0", BOB);
    assert_eq!(
        reply.content(),
        Some("You voted for **Pizza**. Click an option again to take it back.")
    );
    let reply = click(&host, "vote:1:2", BOB);
    assert_eq!(
        reply.content(),
        Some("You voted for **Pizza** and **Salad**. Click an option again to take it back.")
    );
    click(&host, "vote:1:2", CAT);
    assert_eq!(
        tally(1),
        Tally {
            counts: vec![1, 0, 2],
            voters: 2
        }
    );
    let shown = embed_text(embed(&shown_body(&host)));
    // Shares are of voters: both chose Salad.
    assert!(
        shown.contains("**Salad**\n`██████████` 100% · 2 votes"),
        "{shown}"
    );
    assert!(
        shown.contains("**Pizza**\n`█████░░░░░` 50% · 1 vote"),
        "{shown}"
    );

    let reply = click(&host, "vote:1:0", BOB);
    assert!(
        reply
            .content()
            .unwrap()
            .starts_with("You voted for **Salad**.")
    );
    assert_eq!(store::vote_of(1, BOB).unwrap(), [2]);
    let reply = click(&host, "vote:1:2", BOB);
    assert_eq!(reply.content(), Some("You took back your vote."));
    assert_eq!(
        host.storage_value("vote:0000000001:43").as_deref(),
        Some("[]")
    );
    assert_eq!(
        tally(1),
        Tally {
            counts: vec![0, 0, 1],
            voters: 1
        }
    );
    assert!(
        embed(&shown_body(&host))
            .footer
            .as_deref()
            .unwrap()
            .ends_with("1 voter")
    );
}

#[test]
fn the_menu_sets_the_whole_vote_and_refuses_what_the_poll_does_not_take() {
    let host = host();
    start_poll(&host, "Six?", "A | B | C | D | E | F", &[]);
    start_poll(
        &host,
        "Seven?",
        "A | B | C | D | E | F | G",
        &[("multi", OptionValue::Boolean(true))],
    );
    host.clear_effects();

    assert_eq!(
        choose(&host, "vote:1", &["5"], BOB).content(),
        Some("You voted for **F**.")
    );
    assert_eq!(
        choose(&host, "vote:1", &["0"], BOB).content(),
        Some("You voted for **A** (instead of **F**).")
    );
    assert_eq!(tally(1).counts, [1, 0, 0, 0, 0, 0]);
    let reply = choose(&host, "vote:1", &["0", "1"], BOB);
    assert_eq!(
        reply.content(),
        Some("This poll takes one choice per member.")
    );
    for bad in [&["6"][..], &["x"], &["-1"]] {
        let reply = choose(&host, "vote:1", bad, CAT);
        assert_eq!(
            reply.content(),
            Some("That option is not on this poll."),
            "{bad:?}"
        );
    }
    assert_eq!(
        choose(&host, "vote:1", &[], CAT).content(),
        Some("Choose at least one option.")
    );
    assert_eq!(
        store::vote_of(1, CAT).unwrap(),
        Vec::<usize>::new(),
        "nothing written"
    );

    let reply = choose(&host, "vote:2", &["6", "1", "1"], BOB);
    assert_eq!(reply.content(), Some("You voted for **B** and **G**."));
    choose(&host, "vote:2", &["1", "2", "3"], BOB);
    assert_eq!(
        tally(2),
        Tally {
            counts: vec![0, 1, 1, 1, 0, 0, 0],
            voters: 1
        }
    );
    let shown = embed_text(embed(&shown(&host, message_of(2))));
    assert!(
        shown.contains("**G**\n`░░░░░░░░░░` 0% · 0 votes"),
        "{shown}"
    );
    assert!(
        shown.contains("**D**\n`██████████` 100% · 1 vote"),
        "{shown}"
    );
}

#[test]
fn a_button_for_an_option_the_poll_does_not_have_is_refused() {
    let host = with_poll(&[]);
    let reply = click(&host, "vote:1:3", BOB);
    assert_eq!(reply.content(), Some("That option is not on this poll."));
    assert_eq!(host.storage_value("vote:0000000001:43"), None);
    let reply = click(&host, "vote:9:0", BOB);
    assert_eq!(reply.content(), Some("That poll no longer exists."));
}

/// A write landing between this call's read and its compare-and-set (another
/// invocation, simulated from inside the change) makes the set fail; the
/// change is made again on top of what that write left, so neither is lost.
#[test]
fn a_vote_racing_another_write_of_the_same_key_is_redone_on_top_of_it() {
    let host = with_poll(&[("multi", OptionValue::Boolean(true))]);
    let mut seen = Vec::new();
    let (before, after) = update_vote(1, BOB, |before| {
        seen.push(before.to_vec());
        if seen.len() == 1 {
            // Bob's other click (Pasta) lands first.
            storage::set(&vote_key(1, BOB), "[1]").unwrap();
        }
        let mut after = before.to_vec();
        after.push(2);
        Ok(after)
    })
    .unwrap();
    assert_eq!(seen, [vec![], vec![1]], "read again after losing the race");
    assert_eq!((before, after.clone()), (vec![1], vec![1, 2]));
    assert_eq!(store::vote_of(1, BOB).unwrap(), after, "both clicks kept");

    // A key that never stops changing gives up with an error, writing nothing
    // of its own.
    let mut tries = 0;
    let result = compare_and_swap("poll:0000000001", |_| {
        tries += 1;
        storage::set("poll:0000000001", &format!("{{\"try\":{tries}}}")).unwrap();
        Ok(Some("mine".into()))
    });
    assert!(matches!(result, Err(Error::Unavailable(_))), "{result:?}");
    assert_eq!(tries, SWAP_ATTEMPTS);
    assert_ne!(
        host.storage_value("poll:0000000001").as_deref(),
        Some("mine")
    );
}

/// The counts move by the difference each vote made, atomically: a vote
/// someone else's invocation recorded meanwhile (pre-seeded here, as if it
/// landed just before) is neither lost nor counted again.
#[test]
fn counts_move_by_each_votes_difference_so_concurrent_votes_add_up() {
    let host = with_poll(&[]);
    // Cat's vote for Pasta, recorded by a concurrent invocation.
    host.set_storage_value(&vote_key(1, CAT), "[1]");
    host.set_storage_value(&count_key(1, 1), "1");
    host.set_storage_value(&voters_key(1), "1");
    click(&host, "vote:1:0", BOB);
    assert_eq!(
        tally(1),
        Tally {
            counts: vec![1, 1, 0],
            voters: 2
        }
    );
    // Cat changes her vote: her Pasta is taken off, not Bob's Pizza.
    let reply = click(&host, "vote:1:2", CAT);
    assert_eq!(
        reply.content(),
        Some("You voted for **Salad** (instead of **Pasta**).")
    );
    assert_eq!(
        tally(1),
        Tally {
            counts: vec![1, 0, 1],
            voters: 2
        }
    );
    let shown = embed_text(embed(&shown_body(&host)));
    assert!(
        shown.contains("**Pizza**\n`█████░░░░░` 50% · 1 vote"),
        "{shown}"
    );
    assert!(
        shown.contains("**Pasta**\n`░░░░░░░░░░` 0% · 0 votes"),
        "{shown}"
    );
}

/// The message is edited until it shows what storage holds: two votes may
/// edit in the other order than they counted, so a vote counted while this
/// one edited (written from the hook, as another invocation would) is shown
/// by a second edit, and a poll ended meanwhile is shown ended.
#[test]
fn the_message_catches_up_with_what_changed_while_it_was_edited() {
    let host = with_poll(&[]);
    click(&host, "vote:1:0", BOB);
    host.clear_effects();
    let mut edits = 0;
    let (_, last) = crate::poll::refresh_then(1, || {
        edits += 1;
        if edits == 1 {
            // Cat's vote, counted by a concurrent invocation.
            storage::set(&vote_key(1, CAT), "[1]").unwrap();
            storage::increment(&count_key(1, 1), 1).unwrap();
            storage::increment(&voters_key(1), 1).unwrap();
        }
    })
    .unwrap();
    assert_eq!(
        last,
        Tally {
            counts: vec![1, 1, 0],
            voters: 2
        }
    );
    let shown = host.edited_messages();
    assert_eq!(shown.len(), 2, "edited again, then confirmed");
    assert!(embed_text(embed(&shown[0].2)).contains("**Pasta**\n`░░░░░░░░░░` 0% · 0 votes"));
    assert!(embed_text(embed(&shown[1].2)).contains("**Pasta**\n`█████░░░░░` 50% · 1 vote"));

    // A vote's edit that lands after the poll ended does not bring the
    // buttons back.
    host.clear_effects();
    let mut edits = 0;
    crate::poll::refresh_then(1, || {
        edits += 1;
        if edits == 1 {
            store::close_poll(1, store::Closer::Timer).unwrap();
        }
    })
    .unwrap();
    let shown = host.edited_messages();
    assert_eq!(shown.len(), 2);
    assert!(!shown[0].2.components.is_empty());
    assert!(shown[1].2.components.is_empty(), "shown ended");

    // Nothing changed: one edit, confirmed by one read.
    host.clear_effects();
    crate::poll::refresh(1).unwrap();
    assert_eq!(host.edited_messages().len(), 1);
}

#[test]
fn a_message_that_cannot_be_edited_does_not_undo_the_vote() {
    let host = with_poll(&[]);
    host.fail(Capability::Messages, Error::NotFound("message".into()));
    let reply = click(&host, "vote:1:1", BOB);
    assert_eq!(reply.content(), Some("You voted for **Pasta**."));
    assert_eq!(
        tally(1),
        Tally {
            counts: vec![0, 1, 0],
            voters: 1
        }
    );
    assert!(
        host.logs()
            .iter()
            .any(|(_, line)| line.contains("poll #1: the message was not updated")),
        "{:?}",
        host.logs()
    );
}
