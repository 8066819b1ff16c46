//! Closing (form, command, permissions), the transcript and where its link
//! goes, reopening and deleting.

use super::*;
use crate::store::Status;
use crate::transcript::attachment_file_name;
use townes_sdk::{Attachment, Embed, EmbedField, ScheduledJob};

const XSS_SCRIPT: &str = "<script>alert(1)</script>";
const XSS_ATTRIBUTE: &str = "\"><img src=x onerror=alert(1)>";
const XSS_SCRIPT_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";
const XSS_ATTRIBUTE_ESCAPED: &str = "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;";

fn link(name: &str) -> String {
    format!("https://files.mock.invalid/{name}?expires_in=604800")
}

fn attachment(id: Snowflake, filename: &str, content_type: Option<&str>, size: u32) -> Attachment {
    Attachment {
        id,
        filename: filename.into(),
        content_type: content_type.map(str::to_string),
        size,
        url: format!("https://cdn.discordapp.com/attachments/{id}/x"),
    }
}

/// The ticket channel's history: a welcome by the bot, then hostile names,
/// text, embeds and attachment names.
fn hostile_history(host: &MockHost, channel: Snowflake) {
    let mut welcome = past(
        10,
        User::new(BOT_USER_ID, "Tickets").as_bot(),
        "<@42> <@&500>",
    );
    welcome.embeds.push(Embed::new().title("Ticket #1"));
    host.post_history(channel, welcome);

    let mut ann = past(
        11,
        User::new(ANN, "ann").with_global_name(XSS_ATTRIBUTE),
        &format!("{XSS_SCRIPT} help & 'quotes'\nsecond line"),
    );
    ann.avatar = Some("a_1b2c3d".into());
    host.post_history(channel, ann);

    let mut bob = past(12, User::new(BOB, XSS_SCRIPT), "see attached");
    bob.avatar = Some(XSS_ATTRIBUTE.into());
    bob.attachments = vec![
        attachment(700, "screen shot.png", Some("image/png"), 2048),
        attachment(701, &format!("{XSS_ATTRIBUTE}.txt"), Some("text/plain"), 10),
        attachment(702, "huge.zip", Some("application/zip"), 90_000_000),
    ];
    host.post_history(channel, bob);
    host.attachment_bytes(700, b"\x89PNG fake");
    host.attachment_bytes(701, b"hello");
    // 702 has no bytes: the copy fails as an unavailable download does.

    let mut sup = past(13, User::new(SUP, "sup"), "");
    sup.edited_timestamp = Some("2026-03-01T10:05:00.000000+00:00".into());
    sup.embeds = vec![
        Embed {
            title: Some(format!("Title {XSS_SCRIPT}")),
            url: Some("javascript:alert(1)".into()),
            description: Some(XSS_ATTRIBUTE.into()),
            fields: vec![EmbedField {
                name: XSS_SCRIPT.into(),
                value: XSS_ATTRIBUTE.into(),
                inline: false,
            }],
            footer: Some(XSS_SCRIPT.into()),
            ..Embed::new()
        },
        Embed::new()
            .title("Docs")
            .url(format!("https://example.com/?a=1&b={XSS_ATTRIBUTE}")),
    ];
    host.post_history(channel, sup);
}

#[test]
fn the_close_button_asks_for_a_reason_in_a_form() {
    let (host, channel) = with_ticket();
    let reply = click(&host, "close:1", SUP, channel);
    let modal = reply.modal.expect("a form");
    assert_eq!(modal.custom_id, "close-form:1");
    assert_eq!(modal.title, "Close ticket #1");
    let input = &modal.inputs[0];
    assert_eq!(input.custom_id, "reason");
    assert!(input.paragraph && !input.required);
    // The opener may close their own ticket; others may not.
    assert!(click(&host, "close:1", ANN, channel).modal.is_some());
    let refused = click(&host, "close:1", BOB, channel);
    assert!(refused.modal.is_none() && refused.ephemeral);
    assert!(
        refused
            .content()
            .unwrap()
            .starts_with("Only the support team or the member who opened")
    );
    // Submitting the form is checked again.
    submit_close(&host, 1, "nope", BOB, channel);
    assert_eq!(ticket(1).status, Status::Open);
    assert!(
        host.effects().is_empty(),
        "nothing happened: {:?}",
        host.effects()
    );
}

#[test]
fn closing_keeps_a_transcript_with_its_attachments_and_sends_it() {
    let (host, channel) = with_ticket();
    host.set_config(json!({ "log_channel": "900" }));
    hostile_history(&host, channel);
    let job = ticket(1).inactivity_job.unwrap();

    let reply = submit_close(&host, 1, &format!("  Solved {XSS_SCRIPT}  "), SUP, channel);
    assert!(reply.ephemeral);
    assert_eq!(reply.content(), Some("Ticket #1 is closed."));

    let closed = ticket(1);
    assert_eq!(closed.status, Status::Closed);
    assert_eq!(closed.closed_by, Some(SUP));
    assert_eq!(closed.close_reason, Some(format!("Solved {XSS_SCRIPT}")));
    assert!(closed.closed_at.is_some());
    assert_eq!(
        closed.transcript.as_deref(),
        Some("tickets/1/transcript.html")
    );
    assert_eq!(closed.inactivity_job, None);
    assert!(host.effects().contains(&Effect::JobCancelled { id: job }));
    assert_eq!(
        host.storage_value("open:42:0000000001"),
        None,
        "no longer counts"
    );
    assert!(host.storage_value(&format!("channel:{channel}")).is_some());

    // The opener reads on but cannot write.
    let set = overwrites_set(&host);
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].0, channel);
    assert_eq!(
        (set[0].1.id, set[0].1.allow, set[0].1.deny),
        (ANN, VIEW_CHANNEL | READ_MESSAGE_HISTORY, SEND_MESSAGES)
    );

    // The transcript: the messages in order, everything hostile escaped.
    let (content_type, bytes) = host.file("tickets/1/transcript.html").unwrap();
    assert_eq!(content_type, "text/html; charset=utf-8");
    let html = String::from_utf8(bytes).unwrap();
    assert_inert(&html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains(XSS_SCRIPT) && !html.contains(XSS_ATTRIBUTE));
    assert!(html.contains(&format!(
        "{XSS_SCRIPT_ESCAPED} help &amp; &#39;quotes&#39;\nsecond line"
    )));
    assert!(html.contains(&format!(
        "<span class=\"author\">{XSS_ATTRIBUTE_ESCAPED}</span>"
    )));
    assert!(
        html.contains(&format!("<dd>Solved {XSS_SCRIPT_ESCAPED}</dd>")),
        "the reason"
    );
    assert!(html.contains("<dd>sup (50)</dd>"), "who closed it, by name");
    assert!(html.contains("<dd>ann (42)</dd>"), "who opened it");
    assert!(html.contains("<dd>4</dd>"), "four messages");
    let order: Vec<usize> = ["Ticket #1</div>", "second line", "see attached", "Docs"]
        .iter()
        .map(|s| html.find(s).unwrap_or_else(|| panic!("{s}")))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {order:?}"
    );
    assert!(html.contains("<span class=\"tag\">BOT</span>"));
    assert!(html.contains("(edited)"));
    assert!(html.contains("2026-03-01 10:00:00 UTC"));
    assert!(html.contains("https://cdn.discordapp.com/avatars/42/a_1b2c3d.png"));
    assert!(
        html.contains("https://cdn.discordapp.com/embed/avatars/"),
        "a hostile avatar hash gives the default avatar"
    );
    // A `javascript:` link is not a link; a web one is, escaped.
    assert!(!html.contains("javascript:alert(1)\""));
    assert!(html.contains(&format!(
        "<div class=\"embed-title\">Title {XSS_SCRIPT_ESCAPED}</div>"
    )));
    assert!(html.contains(&format!(
        "<a href=\"https://example.com/?a=1&amp;b={XSS_ATTRIBUTE_ESCAPED}\" rel=\"noopener noreferrer nofollow\">Docs</a>"
    )));
    assert!(html.contains(&format!(
        "<dt>{XSS_SCRIPT_ESCAPED}</dt><dd>{XSS_ATTRIBUTE_ESCAPED}</dd>"
    )));
    assert!(html.contains(&format!(
        "<div class=\"embed-footer\">{XSS_SCRIPT_ESCAPED}</div>"
    )));

    // Attachments: copied, linked (images shown), or noted with the reason.
    let png = "tickets/1/700-screen_shot.png";
    assert_eq!(
        host.file(png),
        Some(("image/png".into(), b"\x89PNG fake".to_vec()))
    );
    assert!(html.contains(&format!("<img class=\"inline\" src=\"{}\"", link(png))));
    assert!(html.contains(&format!("<a href=\"{}\" rel=\"noopener noreferrer\">screen shot.png</a> <span class=\"size\">(2 KB)</span>", link(png))));
    let txt = attachment_file_name(1, 701, &format!("{XSS_ATTRIBUTE}.txt"));
    assert_eq!(txt, "tickets/1/701-___img_src_x_onerror_alert_1__.txt");
    assert_eq!(host.file(&txt).unwrap().1, b"hello");
    assert!(html.contains(&format!(">{XSS_ATTRIBUTE_ESCAPED}.txt</a>")));
    assert!(
        !html.contains(&format!("src=\"{}\"", link(&txt))),
        "not an image"
    );
    assert!(html.contains(
        "huge.zip <span class=\"missing\">(not kept: unavailable: attachment 702: no bytes)</span>"
    ));
    assert_eq!(host.file("tickets/1/702-huge.zip"), None);

    // The channel hears it, with Reopen, Delete and the link.
    let transcript = link("tickets/1/transcript.html");
    let (posted_in, closing) = host.sent_messages()[0].clone();
    assert_eq!(posted_in, channel);
    assert_eq!(closing.embeds[0].title.as_deref(), Some("Ticket #1 closed"));
    let text = closing.embeds[0].description.clone().unwrap();
    assert!(
        text.starts_with("Ticket closed by <@50>.\n**Reason:** Solved <script>"),
        "{text}"
    );
    assert!(
        text.contains(&transcript) && text.contains("works for 7 days"),
        "{text}"
    );
    assert_eq!(
        button_ids(&closing),
        ["reopen:1", "delete:1", transcript.as_str()]
    );

    // The opener gets it by DM; the log channel too.
    let dms = host.dms();
    assert_eq!(dms.len(), 1);
    assert_eq!(dms[0].0, ANN);
    let dm = &dms[0].1.embeds[0];
    assert_eq!(
        dm.title.as_deref(),
        Some("Your ticket #1 in Test Guild was closed")
    );
    assert!(dm.description.as_deref().unwrap().contains(&transcript));
    let (log_channel, log) = host.sent_messages()[1].clone();
    assert_eq!(log_channel, LOG);
    assert_eq!(log.embeds[0].title.as_deref(), Some("Ticket #1 closed"));
    assert!(
        log.embeds[0]
            .fields
            .iter()
            .any(|f| f.value.contains(&transcript))
    );
    assert_eq!(
        host.sent_messages().len(),
        2,
        "nothing posted for the opener: the DM arrived"
    );

    assert_eq!(live_actions(&host), ["closed"]);
    let (kind, data) = host.live_events()[0].clone();
    assert_eq!(kind, "ticket_update");
    assert_eq!(data["ticket"]["status"], "closed");
    assert_eq!(data["ticket"]["closed_by"], "50");
    assert_eq!(host.audit_entries()[0].0, "ticket.closed");
}

#[test]
fn when_the_opener_takes_no_dms_the_link_goes_in_the_channel() {
    let (host, channel) = with_ticket();
    host.block_dms(ANN);
    // The opener closes it themself, with the command.
    let reply = command(
        &host,
        "ticket",
        "close",
        &[("reason", OptionValue::Text("fixed".into()))],
        ANN,
        channel,
    );
    assert_eq!(reply.content(), Some("Ticket #1 is closed."));
    assert_eq!(ticket(1).closed_by, Some(ANN));
    assert!(host.dms().is_empty());
    let texts = host.sent_texts();
    let fallback = texts.last().unwrap();
    assert!(
        fallback.starts_with("<@42> I could not send you a direct message"),
        "{fallback}"
    );
    assert!(fallback.contains(&link("tickets/1/transcript.html")));
    assert_eq!(host.sent_messages().last().unwrap().0, channel);
}

#[test]
fn a_ticket_closes_even_when_its_transcript_cannot_be_made() {
    let (host, channel) = with_ticket();
    // The history cannot be read (nor anything posted).
    host.deny(Capability::Messages);
    command(&host, "ticket", "close", &[], SUP, channel);
    let closed = ticket(1);
    assert_eq!((closed.status, closed.transcript), (Status::Closed, None));
    assert_eq!(closed.close_reason, None);
    let dm = host.dms()[0].1.embeds[0].description.clone().unwrap();
    assert!(dm.contains("**Reason:** none given"), "{dm}");
    assert!(
        dm.contains("No transcript: the messages permission is not granted"),
        "{dm}"
    );

    // The transcript route says so.
    let missing = api(
        &host,
        Method::Get,
        "/tickets/{id}/transcript",
        Some("1"),
        &[],
        None,
        None,
    );
    assert!(
        matches!(&missing, Err(Error::NotFound(why)) if why.contains("could not be made")),
        "{missing:?}"
    );
    // And deleting refuses to lose the history.
    host.clear_effects();
    host.set_invoker_permissions(permissions_of(MOD));
    let refused = Tickets::on_component(
        &host.context(),
        ComponentInteraction::button("delete:1", member(MOD), channel),
    );
    assert_eq!(refused, Err(Error::Denied(Capability::Messages)));
    assert!(
        !host
            .effects()
            .iter()
            .any(|e| matches!(e, Effect::ChannelDeleted { .. }))
    );
    assert_eq!(ticket(1).status, Status::Closed);
}

#[test]
fn a_closed_ticket_reopens_for_support_only() {
    let (host, channel) = with_ticket();
    submit_close(&host, 1, "done", SUP, channel);
    host.clear_effects();

    let refused = click(&host, "reopen:1", ANN, channel);
    assert_eq!(
        refused.content(),
        Some("Only the support team can do that.")
    );
    assert_eq!(ticket(1).status, Status::Closed);

    let reply = click(&host, "reopen:1", SUP2, channel);
    assert_eq!(reply.content(), Some("Ticket #1 is open again."));
    let reopened = ticket(1);
    assert_eq!(reopened.status, Status::Open);
    assert_eq!(
        (
            reopened.closed_at,
            reopened.closed_by,
            reopened.close_reason.clone()
        ),
        (None, None, None)
    );
    assert_eq!(
        reopened.transcript.as_deref(),
        Some("tickets/1/transcript.html"),
        "kept"
    );
    let set = overwrites_set(&host);
    assert_eq!(
        (set[0].0, set[0].1.id, set[0].1.allow, set[0].1.deny),
        (channel, ANN, MEMBER_ACCESS, 0)
    );
    let (_, note) = host.sent_messages()[0].clone();
    assert_eq!(note.embeds[0].title.as_deref(), Some("Ticket #1 reopened"));
    assert_eq!(
        note.embeds[0].description.as_deref(),
        Some("Reopened by <@51>.")
    );
    assert_eq!(live_actions(&host), ["reopened"]);
    assert_eq!(host.audit_entries()[0].0, "ticket.reopened");
    assert_eq!(
        host.storage_value("open:42:0000000001"),
        Some(channel.to_string()),
        "counts again"
    );
    let jobs: Vec<ScheduledJob> = host.pending_jobs();
    assert_eq!(jobs.len(), 1, "the old check was cancelled, a new one runs");
    assert_eq!(
        reopened.inactivity_job.as_deref(),
        Some(jobs[0].id.as_str())
    );

    let again = click(&host, "reopen:1", SUP, channel);
    assert!(
        again
            .content()
            .unwrap()
            .contains("only a closed ticket can be reopened")
    );
}

#[test]
fn deleting_keeps_a_transcript_and_removes_the_channel() {
    let (host, channel) = with_ticket();
    host.post_history(channel, past(10, User::new(ANN, "ann"), "bye"));
    let refused = click(&host, "delete:1", ANN, channel);
    assert_eq!(
        refused.content(),
        Some("Only the support team can do that.")
    );
    assert!(host.effects().is_empty());

    // Straight from open: the transcript is made first.
    let reply = click(&host, "delete:1", SUP, channel);
    assert_eq!(
        reply.content(),
        Some("Ticket #1 is deleted; its transcript is kept.")
    );
    assert!(host.effects().contains(&Effect::ChannelDeleted {
        channel_id: channel
    }));
    let deleted = ticket(1);
    assert_eq!(deleted.status, Status::Deleted);
    assert_eq!(deleted.closed_by, Some(SUP));
    assert_eq!(
        deleted.transcript.as_deref(),
        Some("tickets/1/transcript.html")
    );
    let html = String::from_utf8(host.file("tickets/1/transcript.html").unwrap().1).unwrap();
    assert!(html.contains("bye") && html.contains("<dt>Closed by</dt><dd>sup (50)</dd>"));
    assert_eq!(host.storage_value(&format!("channel:{channel}")), None);
    assert_eq!(host.storage_value("open:42:0000000001"), None);
    assert!(host.pending_jobs().is_empty());
    assert_eq!(live_actions(&host), ["deleted"]);
    assert_eq!(host.audit_entries()[0].0, "ticket.deleted");

    let again = click(&host, "delete:1", SUP, channel);
    assert_eq!(again.content(), Some("Ticket #1 is already deleted."));
    // The member may open a new one.
    open_ticket(&host, ANN);
}

#[test]
fn deleting_a_closed_ticket_keeps_its_transcript_as_it_was() {
    let (host, channel) = with_ticket();
    submit_close(&host, 1, "done", SUP, channel);
    host.clear_effects();
    click(&host, "delete:1", MOD, channel);
    assert!(
        !host
            .effects()
            .iter()
            .any(|e| matches!(e, Effect::FileStored { .. })),
        "not made again"
    );
    let deleted = ticket(1);
    assert_eq!(
        (deleted.status, deleted.closed_by),
        (Status::Deleted, Some(SUP))
    );
    assert_eq!(deleted.close_reason.as_deref(), Some("done"));
}

#[test]
fn discord_refusing_to_silence_the_opener_stops_a_close_but_their_absence_does_not() {
    let (host, channel) = with_ticket();
    // An outage: nothing is closed, nothing half done.
    host.fail(
        Capability::Channels,
        Error::Unavailable("discord is down".into()),
    );
    host.set_invoker_permissions(permissions_of(SUP));
    let submit =
        ComponentInteraction::modal_submit("close-form:1", [("reason", "x")], member(SUP), channel);
    assert_eq!(
        Tickets::on_component(&host.context(), submit),
        Err(Error::Unavailable("discord is down".into()))
    );
    assert_eq!(ticket(1).status, Status::Open);
    assert!(host.file("tickets/1/transcript.html").is_none());
    assert!(host.sent_messages().is_empty() && host.dms().is_empty());

    // The opener left the guild: there is no one to silence; it closes.
    host.fail(Capability::Channels, Error::NotFound("member 42".into()));
    command(&host, "ticket", "close", &[], SUP, channel);
    assert_eq!(ticket(1).status, Status::Closed);
    assert!(host.file("tickets/1/transcript.html").is_some());
}
