//! The transcript's pieces on their own: escaping, names, avatars, the page,
//! and the cap on long channels.

use super::*;
use crate::store::Status;
use crate::time::{format_rfc3339, format_unix, human_duration};
use crate::transcript::{
    Kept, MAX_MESSAGES, Summary, attachment_file_name, avatar_url, escape, make, message_html,
    page_html,
};
use townes_sdk::Attachment;

#[test]
fn escape_makes_every_markup_character_text() {
    assert_eq!(
        escape(r#"<a href="x" onclick='y'>&amp;</a>"#),
        "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
    );
    assert_eq!(escape("plain text, ünïcödé 🎫"), "plain text, ünïcödé 🎫");
    assert_eq!(escape(""), "");
    for hostile in [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "'-alert(1)-'",
    ] {
        let escaped = escape(hostile);
        assert!(!escaped.contains(['<', '>', '"', '\'']), "{escaped}");
    }
}

#[test]
fn attachment_names_never_read_as_paths() {
    assert_eq!(
        attachment_file_name(3, 9, "report.pdf"),
        "tickets/3/9-report.pdf"
    );
    assert_eq!(
        attachment_file_name(3, 9, "my file (1).PNG"),
        "tickets/3/9-my_file__1_.PNG"
    );
    let climbing = attachment_file_name(3, 9, "../../etc/passwd");
    assert_eq!(climbing, "tickets/3/9-._._etc_passwd");
    assert_eq!(attachment_file_name(3, 9, "…"), "tickets/3/9-_");
    assert_eq!(attachment_file_name(3, 9, ""), "tickets/3/9-file");
    let long = attachment_file_name(
        3,
        1_100_000_000_000_000_001,
        &format!("{}.png", "a".repeat(300)),
    );
    assert_eq!(long.len(), 128);
    assert!(long.starts_with("tickets/3/1100000000000000001-") && long.ends_with("aaa.png"));
    for name in [climbing, long] {
        assert!(!name.contains("..") && !name.contains("//"));
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
        );
    }
}

#[test]
fn avatars_come_from_discord_only_with_a_plain_hash() {
    assert_eq!(
        avatar_url(42, Some("a_0f9e")),
        "https://cdn.discordapp.com/avatars/42/a_0f9e.png"
    );
    let default = "https://cdn.discordapp.com/embed/avatars/0.png";
    for hostile in [
        None,
        Some(""),
        Some("x\"><script>"),
        Some("../../x"),
        Some("a b"),
    ] {
        assert_eq!(avatar_url(42, hostile), default, "{hostile:?}");
    }
    assert_eq!(
        avatar_url(1_100_000_000_000_000_001, None),
        format!(
            "https://cdn.discordapp.com/embed/avatars/{}.png",
            (1_100_000_000_000_000_001u64 >> 22) % 6
        )
    );
}

#[test]
fn times_read_as_people_write_them() {
    assert_eq!(format_unix(0), "1970-01-01 00:00 UTC");
    assert_eq!(format_unix(1_709_290_800), "2024-03-01 11:00 UTC");
    assert_eq!(format_unix(951_782_400), "2000-02-29 00:00 UTC");
    assert_eq!(
        format_rfc3339("2026-03-01T10:00:00.000000+00:00"),
        "2026-03-01 10:00:00 UTC"
    );
    assert_eq!(format_rfc3339("yesterday"), "yesterday");
    assert_eq!(format_rfc3339("ünïcödé-ish"), "ünïcödé-ish");
    assert_eq!(human_duration(3600), "1 hour");
    assert_eq!(human_duration(5400), "90 minutes");
    assert_eq!(human_duration(172_800), "2 days");
    assert_eq!(human_duration(45), "45 seconds");
}

fn sample_ticket() -> store::Ticket {
    store::Ticket {
        number: 7,
        panel: 1,
        channel_id: 555,
        opener_id: ANN,
        opener_name: "<b>ann</b> & \"co\"".into(),
        support_roles: vec![SUPPORT_ROLE],
        status: Status::Closed,
        claimed_by: None,
        opened_at: 1_709_290_800,
        last_activity: 1_709_290_800,
        closed_at: Some(1_709_294_400),
        closed_by: Some(SUP),
        close_reason: Some("<img src=x onerror=alert('reason')>".into()),
        transcript: None,
        warned_at: None,
        inactivity_job: None,
    }
}

#[test]
fn the_page_escapes_its_header_and_holds_no_script() {
    let ticket = sample_ticket();
    let summary = Summary {
        guild: "<script>guild</script>".into(),
        claimed_by: Some("\"claimer\"".into()),
        closed_by: Some("sup (50)".into()),
        messages: 1,
        cut: false,
        made_at: 1_709_294_400,
    };
    let mut message = past(1, User::new(ANN, "ann"), "hi");
    message.attachments = vec![Attachment {
        id: 5,
        filename: "<evil>.png".into(),
        content_type: Some("image/png".into()),
        size: 3 << 20,
        url: "javascript:alert(1)".into(),
    }];
    let kept = [Kept::Copy {
        url: "javascript:alert(1)".into(),
    }];
    let article = message_html(&message, &kept);
    assert!(
        article.contains("&lt;evil&gt;.png <span class=\"missing\">(not kept: no web link)</span>")
    );
    let page = page_html(&ticket, &summary, &[article]);
    assert_inert(&page);
    assert!(page.contains("<title>Ticket #7 transcript</title>"));
    assert!(page.contains("<div class=\"guild\">&lt;script&gt;guild&lt;/script&gt;</div>"));
    assert!(page.contains("<dd>&lt;b&gt;ann&lt;/b&gt; &amp; &quot;co&quot; (42)</dd>"));
    assert!(page.contains("<dd>&quot;claimer&quot;</dd>"));
    assert!(page.contains("<dd>&lt;img src=x onerror=alert(&#39;reason&#39;)&gt;</dd>"));
    assert!(page.contains("<dt>Opened</dt><dd>2024-03-01 11:00 UTC</dd>"));
    assert!(page.contains("<dt>Closed</dt><dd>2024-03-01 12:00 UTC</dd>"));
    assert!(page.contains("Content-Security-Policy"));
    assert!(!page.contains("class=\"cut\""));

    let copied = message_html(
        &message,
        &[Kept::Copy {
            url: "https://files.example/5".into(),
        }],
    );
    assert!(copied.contains("(3.0 MB)"));
    assert!(copied.contains(
        "<img class=\"inline\" src=\"https://files.example/5\" alt=\"&lt;evil&gt;.png\""
    ));
    assert_inert(&copied);
}

#[test]
fn a_very_long_channel_keeps_its_newest_messages_and_says_so() {
    let host = host();
    let mut ticket = sample_ticket();
    ticket.opener_name = "ann".into();
    for id in 1..=(MAX_MESSAGES as u64 + 1) {
        host.post_history(
            555,
            past(id, User::new(ANN, "ann"), &format!("message number {id}.")),
        );
    }
    let name = make(&ticket, 3600).unwrap();
    assert_eq!(name, "tickets/7/transcript.html");
    let html = String::from_utf8(host.file(&name).unwrap().1).unwrap();
    assert!(html.contains(
        "This transcript keeps the 5000 most recent messages; older ones were left out."
    ));
    assert!(
        !html.contains("message number 1."),
        "the oldest is left out"
    );
    assert!(html.contains("message number 2."));
    assert!(html.contains(&format!("message number {}.", MAX_MESSAGES + 1)));
    assert_eq!(html.matches("<article").count(), MAX_MESSAGES);
    let first = html.find("message number 2.").unwrap();
    let last = html.find("message number 5001.").unwrap();
    assert!(first < last, "oldest first");
    // 51 pages were read, not more.
    assert!(host.calls() < 80, "{} host calls", host.calls());
}

#[test]
fn exactly_full_pages_are_not_mistaken_for_a_cut() {
    let host = host();
    let ticket = sample_ticket();
    for id in 1..=200 {
        host.post_history(555, past(id, User::new(ANN, "ann"), "x"));
    }
    let html = String::from_utf8(host.file(&make(&ticket, 3600).unwrap()).unwrap().1).unwrap();
    assert_eq!(html.matches("<article").count(), 200);
    assert!(!html.contains("class=\"cut\""));
}

#[test]
fn attachments_past_the_cap_are_noted_not_copied() {
    let host = host();
    let ticket = sample_ticket();
    let mut message = past(1, User::new(ANN, "ann"), "many files");
    message.attachments = (1..=(crate::transcript::MAX_ATTACHMENTS as u64 + 2))
        .map(|id| Attachment {
            id,
            filename: format!("f{id}.txt"),
            content_type: Some("text/plain".into()),
            size: 1,
            url: String::new(),
        })
        .collect();
    host.post_history(555, message);
    for id in 1..=(crate::transcript::MAX_ATTACHMENTS as u64 + 2) {
        host.attachment_bytes(id, b"x");
    }
    let html = String::from_utf8(host.file(&make(&ticket, 3600).unwrap()).unwrap().1).unwrap();
    assert_eq!(
        html.matches("class=\"size\"").count(),
        crate::transcript::MAX_ATTACHMENTS
    );
    assert_eq!(
        html.matches("(not kept: more than 100 attachments)")
            .count(),
        2
    );
    assert!(host.file("tickets/7/101-f101.txt").is_none());
}
