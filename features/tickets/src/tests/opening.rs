//! Opening a ticket: the channel and who sees it, the welcome, the limits.

use super::*;
use crate::actions::channel_name;
use crate::time::now;
use townes_sdk::{ChannelKind, OverwriteTarget};

/// Every bit that lets someone manage anything, moderate, or ping everyone.
const DANGEROUS: u64 = (1 << 1) // kick
    | (1 << 2) // ban
    | ADMINISTRATOR
    | MANAGE_CHANNELS
    | MANAGE_GUILD
    | (1 << 13) // manage messages
    | (1 << 17) // mention everyone
    | (1 << 28) // manage roles
    | (1 << 29) // manage webhooks
    | (1 << 30) // manage emojis
    | (1 << 34) // manage threads
    | (1 << 40); // moderate members

#[test]
fn opening_makes_a_private_channel_for_the_opener_and_support() {
    let host = host();
    make_panel(&host);
    host.clear_effects();
    let channel = open_ticket(&host, ANN);

    let (_, spec) = host.channels_created()[0].clone();
    assert_eq!(spec.name, "ticket-ann");
    assert_eq!(spec.kind, ChannelKind::Text);
    assert_eq!(spec.parent_id, Some(CATEGORY));
    let overwrite = |id: Snowflake| {
        spec.overwrites
            .iter()
            .find(|o| o.id == id)
            .unwrap_or_else(|| panic!("an overwrite for {id}"))
    };
    let everyone = overwrite(GUILD_ID);
    assert_eq!(
        (everyone.target, everyone.allow, everyone.deny),
        (OverwriteTarget::Role, 0, VIEW_CHANNEL)
    );
    let access = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 15) | (1 << 14);
    for (id, target) in [
        (ANN, OverwriteTarget::Member),
        (SUPPORT_ROLE, OverwriteTarget::Role),
        (BOT_USER_ID, OverwriteTarget::Member),
    ] {
        let o = overwrite(id);
        assert_eq!((o.target, o.allow, o.deny), (target, access, 0), "{id}");
    }
    assert_eq!(spec.overwrites.len(), 4);
    for o in &spec.overwrites {
        assert_eq!(o.allow & DANGEROUS, 0, "{o:?}");
        assert_eq!(o.allow & !access, 0, "nothing beyond the five: {o:?}");
    }

    // The welcome, in the new channel: mentions, embed, the three buttons.
    let (welcome_channel, welcome) = host.sent_messages()[0].clone();
    assert_eq!(welcome_channel, channel);
    assert_eq!(welcome.content.as_deref(), Some("<@42> <@&500>"));
    assert_eq!(welcome.embeds[0].title.as_deref(), Some("Ticket #1"));
    let text = welcome.embeds[0].description.as_deref().unwrap();
    assert!(text.contains("<@42>") && text.contains("<@&500>"), "{text}");
    assert_eq!(button_ids(&welcome), ["claim:1", "unclaim:1", "close:1"]);

    let ticket = ticket(1);
    assert_eq!(
        (
            ticket.channel_id,
            ticket.opener_id,
            ticket.opener_name.as_str()
        ),
        (channel, ANN, "ann")
    );
    assert_eq!((ticket.panel, ticket.status), (1, store::Status::Open));
    assert_eq!(ticket.support_roles, [SUPPORT_ROLE]);
    assert!(ticket.opened_at.abs_diff(now()) < 5);
    assert_eq!(ticket.last_activity, ticket.opened_at);
    assert_eq!(
        host.storage_value(&format!("channel:{channel}")).as_deref(),
        Some("1")
    );
    assert_eq!(
        host.storage_value("open:42:0000000001"),
        Some(channel.to_string())
    );
    assert_eq!(
        host.storage_value("opening:42"),
        None,
        "the lock is released"
    );

    let live = host.live_events();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].0, "ticket_update");
    assert_eq!(live[0].1["action"], "opened");
    assert_eq!(live[0].1["ticket"]["number"], 1);
    assert_eq!(live[0].1["ticket"]["channel_id"], channel.to_string());
    let audit = host.audit_entries();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, "ticket.opened");
    assert!(audit[0].1.contains("ticket #1"), "{audit:?}");

    // The inactivity check is scheduled and remembered.
    let jobs = host.pending_jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].name.as_str(), jobs[0].payload.as_str()),
        ("inactivity", "1")
    );
    assert_eq!(ticket.inactivity_job.as_deref(), Some(jobs[0].id.as_str()));
    assert!(host.effects().iter().any(|e| matches!(
        e,
        Effect::JobScheduled {
            delay_seconds: 172_800,
            ..
        }
    )));
}

#[test]
fn without_audit_or_inactivity_a_ticket_still_opens() {
    let host = host();
    host.set_config(json!({ "inactive_seconds": 0 }));
    host.deny(Capability::Audit);
    make_panel(&host);
    open_ticket(&host, ANN);
    assert!(host.audit_entries().is_empty());
    assert!(host.pending_jobs().is_empty());
    assert_eq!(ticket(1).inactivity_job, None);
    assert_eq!(live_actions(&host), ["opened"]);
}

#[test]
fn a_member_has_at_most_their_open_tickets() {
    let host = host();
    make_panel(&host);
    let first = open_ticket(&host, ANN);
    let refused = click(&host, "open:1", ANN, PANEL_CHANNEL);
    assert!(refused.ephemeral);
    let text = refused.content().unwrap();
    assert!(
        text.contains("You already have a ticket open") && text.contains(&format!("<#{first}>")),
        "{text}"
    );
    assert_eq!(host.channels_created().len(), 1);
    // Others are not held back by Ann's ticket.
    open_ticket(&host, BOB);
    // Once closed, it no longer counts.
    submit_close(&host, 1, "", SUP, first);
    open_ticket(&host, ANN);
    assert_eq!(ticket(3).opener_id, ANN);

    host.set_config(json!({ "max_open_per_member": 2 }));
    open_ticket(&host, BOB);
    let refused = click(&host, "open:1", BOB, PANEL_CHANNEL);
    assert!(
        refused
            .content()
            .unwrap()
            .contains("You already have tickets open")
    );
    assert_eq!(host.channels_created().len(), 4);
}

#[test]
fn the_guild_opens_at_most_so_many_tickets_per_30_seconds() {
    let host = host();
    host.set_config(json!({ "max_opens_per_30s": 2 }));
    make_panel(&host);
    // One ticket was opened in this window already (the next window too, in
    // case the clock turns one over during the test).
    let window = now() / 30;
    host.set_storage_value(&format!("opens:{window}"), "1");
    host.set_storage_value(&format!("opens:{}", window + 1), "1");
    open_ticket(&host, ANN);
    let refused = click(&host, "open:1", BOB, PANEL_CHANNEL);
    assert!(refused.ephemeral);
    assert_eq!(
        refused.content(),
        Some("Too many tickets are being opened right now; try again in a few seconds.")
    );
    assert_eq!(host.channels_created().len(), 1);
}

#[test]
fn a_new_window_forgets_the_old_ones() {
    let host = host();
    make_panel(&host);
    host.set_storage_value("opens:5", "99");
    open_ticket(&host, ANN);
    assert_eq!(host.storage_value("opens:5"), None);
    let counters: Vec<String> = host
        .storage_entries()
        .into_iter()
        .filter(|(k, _)| k.starts_with("opens:"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(counters, ["1"]);
}

#[test]
fn a_double_click_opens_one_ticket_and_a_dead_lock_is_taken_over() {
    let host = host();
    make_panel(&host);
    host.set_storage_value("opening:42", &now().to_string());
    let refused = click(&host, "open:1", ANN, PANEL_CHANNEL);
    assert!(refused.content().unwrap().contains("already being opened"));
    assert!(host.channels_created().is_empty());
    host.set_storage_value("opening:42", &(now() - 120).to_string());
    open_ticket(&host, ANN);
}

#[test]
fn a_channel_no_ticket_knows_is_deleted_again() {
    let host = host();
    make_panel(&host);
    // Room for the counters and the lock, not for the ticket itself.
    let used: u64 = host
        .storage_entries()
        .iter()
        .map(|(k, v)| (k.len() + v.len()) as u64)
        .sum();
    host.set_storage_quota(used + 80, 100);
    let interaction = ComponentInteraction::button("open:1", member(ANN), PANEL_CHANNEL);
    let error = Tickets::on_component(&host.context(), interaction).unwrap_err();
    assert!(matches!(error, Error::QuotaExceeded(_)), "{error:?}");
    let (created, _) = host.channels_created()[0].clone();
    assert!(host.effects().contains(&Effect::ChannelDeleted {
        channel_id: created
    }));
}

#[test]
fn names_are_cut_down_to_what_channels_allow() {
    let name = |username: &str| channel_name(Naming::Username, username, 7);
    assert_eq!(name("Ann"), "ticket-ann");
    assert_eq!(name("Ann_The.Great!!"), "ticket-ann-the-great");
    assert_eq!(name("x--y"), "ticket-x-y");
    assert_eq!(name("ÉMILE"), "ticket-mile");
    assert_eq!(name("__"), "ticket-7");
    assert_eq!(name("😀😀"), "ticket-7");
    let long = name(&"a".repeat(200));
    assert_eq!(long.len(), 90);
    assert!(long.starts_with("ticket-aaa") && long.ends_with('a'));
    let edge = name(&format!("{}-b", "a".repeat(82)));
    assert!(edge.len() <= 90 && !edge.ends_with('-'), "{edge}");
    assert_eq!(channel_name(Naming::Number, "ann", 12), "ticket-12");
    for username in ["Ann", "a b/c\\d", "<script>", "ñ", "ann.", "."] {
        let n = name(username);
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{n}"
        );
    }
}

#[test]
fn numbered_naming_names_the_channel_after_the_ticket() {
    let host = host();
    host.set_config(json!({ "naming": "number" }));
    make_panel(&host);
    open_ticket(&host, ANN);
    assert_eq!(host.channels_created()[0].1.name, "ticket-1");
}
