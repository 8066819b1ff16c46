//! Working a ticket: who may claim and unclaim, adding and removing members.

use super::*;

#[test]
fn support_claims_others_are_told_why_not() {
    let (host, channel) = with_ticket();

    let refused = click(&host, "claim:1", BOB, channel);
    assert!(refused.ephemeral);
    assert_eq!(
        refused.content(),
        Some("Only the support team can claim tickets.")
    );
    let refused = click(&host, "claim:1", ANN, channel);
    assert_eq!(
        refused.content(),
        Some("Only the support team can claim tickets."),
        "not even the opener"
    );
    assert_eq!(ticket(1).claimed_by, None);
    assert!(
        host.effects()
            .iter()
            .all(|e| !matches!(e, Effect::Live { .. }))
    );

    let reply = click(&host, "claim:1", SUP, channel);
    assert!(reply.ephemeral);
    assert_eq!(reply.content(), Some("You hold ticket #1 now."));
    assert_eq!(ticket(1).claimed_by, Some(SUP));
    assert_eq!(
        host.sent_texts(),
        ["🙋 <@50> claimed this ticket and will help you from here."]
    );
    assert_eq!(host.sent_messages()[0].0, channel);
    assert_eq!(live_actions(&host), ["claimed"]);
    assert_eq!(host.audit_entries()[0].0, "ticket.claimed");

    // Claiming again is harmless.
    host.clear_effects();
    click(&host, "claim:1", SUP, channel);
    assert!(host.sent_messages().is_empty());

    // Another supporter is told who holds it.
    let refused = click(&host, "claim:1", SUP2, channel);
    assert!(refused.ephemeral);
    assert!(
        refused
            .content()
            .unwrap()
            .contains("already claimed by <@50>"),
        "{refused:?}"
    );
    assert_eq!(ticket(1).claimed_by, Some(SUP));
}

#[test]
fn the_claimer_or_a_channel_manager_unclaims() {
    let (host, channel) = with_ticket();
    let refused = click(&host, "unclaim:1", SUP, channel);
    assert_eq!(refused.content(), Some("Ticket #1 is not claimed."));

    click(&host, "claim:1", SUP, channel);
    let refused = click(&host, "unclaim:1", SUP2, channel);
    assert!(
        refused
            .content()
            .unwrap()
            .starts_with("Only <@50>, who claimed it")
    );
    assert_eq!(ticket(1).claimed_by, Some(SUP));

    let reply = click(&host, "unclaim:1", SUP, channel);
    assert_eq!(
        reply.content(),
        Some("Ticket #1 is free for another supporter.")
    );
    assert_eq!(ticket(1).claimed_by, None);
    assert_eq!(
        host.sent_texts().last().unwrap(),
        "<@50> unclaimed this ticket; another supporter can claim it."
    );

    // A member who manages channels may take it from the claimer, and claim
    // without a support role; so may an administrator.
    click(&host, "claim:1", SUP2, channel);
    click(&host, "unclaim:1", MOD, channel);
    assert_eq!(ticket(1).claimed_by, None);
    assert_eq!(
        host.sent_texts().last().unwrap(),
        "<@60> unclaimed this ticket from <@51>; another supporter can claim it."
    );
    click(&host, "claim:1", MOD, channel);
    assert_eq!(ticket(1).claimed_by, Some(MOD));
    click(&host, "unclaim:1", ADMIN, channel);
    click(&host, "claim:1", ADMIN, channel);
    assert_eq!(ticket(1).claimed_by, Some(ADMIN));
    assert_eq!(
        live_actions(&host),
        [
            "claimed",
            "unclaimed",
            "claimed",
            "unclaimed",
            "claimed",
            "unclaimed",
            "claimed"
        ]
    );
}

#[test]
fn the_ticket_command_claims_adds_and_removes_in_its_own_channel() {
    let (host, channel) = with_ticket();
    let outside = command(&host, "ticket", "claim", &[], SUP, 12_345);
    assert!(outside.ephemeral);
    assert!(outside.content().unwrap().contains("not a ticket channel"));

    command(&host, "ticket", "claim", &[], SUP, channel);
    assert_eq!(ticket(1).claimed_by, Some(SUP));

    let refused = command(
        &host,
        "ticket",
        "add",
        &[("user", OptionValue::User(CAT))],
        BOB,
        channel,
    );
    assert_eq!(
        refused.content(),
        Some("Only the support team can do that.")
    );
    assert!(overwrites_set(&host).is_empty());

    let added = command(
        &host,
        "ticket",
        "add",
        &[("user", OptionValue::User(CAT))],
        SUP,
        channel,
    );
    assert_eq!(added.content(), Some("<@44> can see this ticket now."));
    let removed = command(
        &host,
        "ticket",
        "remove",
        &[("user", OptionValue::User(CAT))],
        SUP,
        channel,
    );
    assert_eq!(removed.content(), Some("<@44> no longer sees this ticket."));
    let set = overwrites_set(&host);
    assert_eq!(set.len(), 2);
    assert_eq!(set[0].0, channel);
    assert_eq!(
        (set[0].1.id, set[0].1.allow, set[0].1.deny),
        (CAT, MEMBER_ACCESS, 0)
    );
    assert_eq!(
        (set[1].1.id, set[1].1.allow, set[1].1.deny),
        (CAT, 0, VIEW_CHANNEL)
    );
    assert_eq!(
        host.audit_entries()
            .iter()
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>(),
        [
            "ticket.claimed",
            "ticket.member_added",
            "ticket.member_removed"
        ]
    );

    let opener = command(
        &host,
        "ticket",
        "remove",
        &[("user", OptionValue::User(ANN))],
        SUP,
        channel,
    );
    assert!(opener.content().unwrap().contains("close it instead"));
    let bot = command(
        &host,
        "ticket",
        "remove",
        &[("user", OptionValue::User(BOT_USER_ID))],
        SUP,
        channel,
    );
    assert!(bot.content().unwrap().contains("stay in the ticket"));
    let nobody = command(&host, "ticket", "add", &[], SUP, channel);
    assert!(nobody.content().unwrap().contains("Name the member"));
    assert_eq!(overwrites_set(&host).len(), 2);
}

#[test]
fn buttons_of_a_closed_or_vanished_ticket_explain() {
    let (host, channel) = with_ticket();
    submit_close(&host, 1, "done", SUP, channel);
    let claim = click(&host, "claim:1", SUP, channel);
    assert_eq!(claim.content(), Some("Ticket #1 is closed."));
    let close = click(&host, "close:1", SUP, channel);
    assert_eq!(close.content(), Some("Ticket #1 is already closed."));
    let gone = click(&host, "claim:9", SUP, channel);
    assert!(
        gone.ephemeral && gone.content().unwrap().contains("ticket #9"),
        "{gone:?}"
    );
}
