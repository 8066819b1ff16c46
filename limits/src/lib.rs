//! The limits of the feature contract, in one place.
//!
//! The host enforces them on every capability call; the SDK's builders check
//! them before a feature calls, and its `MockHost` enforces them in native
//! tests. All three use this crate, so a test against the mock fails exactly
//! where the real host would refuse.
//!
//! The crate knows nothing of the generated WIT types (the host and the guest
//! generate their own): callers describe a message as a [`message::Shape`].
//! Every check returns a [`Invalid`] whose text is the `invalid-argument`
//! message a feature receives.

use std::fmt;

/// Why an argument is refused: the text of the `invalid-argument` error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

fn invalid(text: impl Into<String>) -> Invalid {
    Invalid(text.into())
}

/// `Ok` when `n` is within `range`, else "`what` is `n` `unit`; it must be …".
fn within(
    what: &str,
    n: usize,
    range: std::ops::RangeInclusive<usize>,
    unit: &str,
) -> Result<(), Invalid> {
    if range.contains(&n) {
        return Ok(());
    }
    let allowed = if *range.start() == 0 {
        format!("at most {}", range.end())
    } else {
        format!("{} to {}", range.start(), range.end())
    };
    let n = if unit.is_empty() {
        n.to_string()
    } else {
        format!("{n} {unit}")
    };
    Err(invalid(format!("{what} is {n}; {allowed} allowed")))
}

/// Characters as Discord counts them (Unicode scalar values).
pub fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Messages, embeds, components and modals, as Discord limits them.
pub mod message {
    use super::{Invalid, chars, invalid, within};

    /// Characters of message content.
    pub const CONTENT: usize = 2000;
    /// Embeds per message.
    pub const EMBEDS: usize = 10;
    /// Characters of an embed title.
    pub const EMBED_TITLE: usize = 256;
    /// Characters of an embed description.
    pub const EMBED_DESCRIPTION: usize = 4096;
    /// Fields per embed.
    pub const EMBED_FIELDS: usize = 25;
    /// Characters of an embed field name.
    pub const EMBED_FIELD_NAME: usize = 256;
    /// Characters of an embed field value.
    pub const EMBED_FIELD_VALUE: usize = 1024;
    /// Characters of an embed footer.
    pub const EMBED_FOOTER: usize = 2048;
    /// Characters of all embeds of one message together.
    pub const EMBED_TOTAL: usize = 6000;
    /// Action rows per message.
    pub const ACTION_ROWS: usize = 5;
    /// Buttons per action row (a select menu fills a row on its own).
    pub const BUTTONS_PER_ROW: usize = 5;
    /// Characters of a modal's title.
    pub const MODAL_TITLE: usize = 45;
    /// Text inputs per modal.
    pub const MODAL_INPUTS: usize = 5;

    /// What the checks need to know of a message body.
    #[derive(Clone, Debug, Default)]
    pub struct Shape<'a> {
        pub content: Option<&'a str>,
        pub embeds: Vec<EmbedShape<'a>>,
        pub rows: Vec<RowShape>,
    }

    #[derive(Clone, Debug, Default)]
    pub struct EmbedShape<'a> {
        pub title: Option<&'a str>,
        pub description: Option<&'a str>,
        pub footer: Option<&'a str>,
        /// (name, value) of each field.
        pub fields: Vec<(&'a str, &'a str)>,
    }

    #[derive(Clone, Copy, Debug, Default)]
    pub struct RowShape {
        pub buttons: usize,
        pub selects: usize,
    }

    impl Shape<'_> {
        /// Nothing Discord would show: no text, no embed, no component.
        pub fn is_empty(&self) -> bool {
            self.content.is_none_or(str::is_empty) && self.embeds.is_empty() && self.rows.is_empty()
        }
    }

    /// A message to send or an edit: within Discord's limits and not empty
    /// (Discord answers an empty message with an error that counts toward
    /// its invalid-request ban).
    pub fn check(body: &Shape) -> Result<(), Invalid> {
        check_parts(body)?;
        if body.is_empty() {
            return Err(invalid(
                "the message is empty; give it content, an embed or a component",
            ));
        }
        Ok(())
    }

    /// An interaction reply: within Discord's limits. An empty body is
    /// allowed: the host acknowledges the interaction without a message.
    pub fn check_reply(body: &Shape) -> Result<(), Invalid> {
        check_parts(body)
    }

    fn check_parts(body: &Shape) -> Result<(), Invalid> {
        within(
            "message content",
            body.content.map_or(0, chars),
            0..=CONTENT,
            "characters",
        )?;
        within("the number of embeds", body.embeds.len(), 0..=EMBEDS, "")?;
        let mut total = 0;
        for embed in &body.embeds {
            total += check_embed(embed)?;
        }
        within(
            "the embeds' text in all",
            total,
            0..=EMBED_TOTAL,
            "characters",
        )?;
        within(
            "the number of action rows",
            body.rows.len(),
            0..=ACTION_ROWS,
            "",
        )?;
        for row in &body.rows {
            let size = row.buttons + row.selects;
            if size == 0 || row.buttons > BUTTONS_PER_ROW || (row.selects > 0 && size > 1) {
                return Err(invalid(format!(
                    "an action row holds 1 to {BUTTONS_PER_ROW} buttons or exactly one select menu"
                )));
            }
        }
        Ok(())
    }

    /// Checks one embed; returns the characters it counts toward [`EMBED_TOTAL`].
    pub fn check_embed(embed: &EmbedShape) -> Result<usize, Invalid> {
        let text = |what: &str, s: Option<&str>, max: usize| {
            let n = s.map_or(0, chars);
            within(what, n, 0..=max, "characters").map(|()| n)
        };
        let mut total = text("an embed title", embed.title, EMBED_TITLE)?
            + text("an embed description", embed.description, EMBED_DESCRIPTION)?
            + text("an embed footer", embed.footer, EMBED_FOOTER)?;
        within(
            "the number of embed fields",
            embed.fields.len(),
            0..=EMBED_FIELDS,
            "",
        )?;
        for (name, value) in &embed.fields {
            total += text("an embed field name", Some(name), EMBED_FIELD_NAME)?
                + text("an embed field value", Some(value), EMBED_FIELD_VALUE)?;
        }
        Ok(total)
    }

    /// A modal a reply opens.
    pub fn check_modal(title: &str, inputs: usize) -> Result<(), Invalid> {
        within("a modal title", chars(title), 1..=MODAL_TITLE, "characters")?;
        within("the number of modal inputs", inputs, 1..=MODAL_INPUTS, "")
    }

    /// A reaction's emoji: a Unicode emoji or `name:id` of a custom one.
    pub fn check_emoji(emoji: &str) -> Result<(), Invalid> {
        within("an emoji", emoji.len(), 1..=100, "bytes")
    }
}

/// Feature storage: keys, values, boards, and what a row counts against the
/// plan's quota.
pub mod storage {
    use super::{Invalid, within};

    pub const MAX_KEY_BYTES: usize = 256;
    pub const MAX_VALUE_BYTES: usize = 64 * 1024;
    pub const MAX_BOARD_BYTES: usize = 64;
    /// Rows one `list-prefix` returns at most.
    pub const MAX_LIST: u32 = 1000;
    /// Entries one `board-top` returns at most.
    pub const MAX_TOP: u32 = 100;

    pub fn check_key(key: &str) -> Result<(), Invalid> {
        within("a key", key.len(), 1..=MAX_KEY_BYTES, "bytes")
    }

    pub fn check_value(value: &str) -> Result<(), Invalid> {
        within("a value", value.len(), 0..=MAX_VALUE_BYTES, "bytes")
    }

    pub fn check_board(board: &str) -> Result<(), Invalid> {
        within("a board name", board.len(), 1..=MAX_BOARD_BYTES, "bytes")
    }

    /// A `limit` argument of 1 to `max`.
    pub fn check_limit(limit: u32, max: u32) -> Result<(), Invalid> {
        within("limit", limit as usize, 1..=max as usize, "")
    }

    /// Bytes a key-value row counts against the quota.
    pub fn kv_row_bytes(key: &str, value: &str) -> u64 {
        (key.len() + value.len()) as u64
    }

    /// Bytes a board row counts against the quota: the board's name and the
    /// score (8 bytes); the subject is the row's key.
    pub fn board_row_bytes(board: &str) -> u64 {
        board.len() as u64 + 8
    }
}

/// Channels a feature creates, and their permission overwrites.
pub mod channels {
    use super::{Invalid, chars, within};

    pub const NAME: usize = 100;
    pub const TOPIC: usize = 1024;
    pub const OVERWRITES: usize = 100;

    pub fn check_spec(name: &str, topic: Option<&str>, overwrites: usize) -> Result<(), Invalid> {
        within("a channel name", chars(name), 1..=NAME, "characters")?;
        within(
            "a channel topic",
            topic.map_or(0, chars),
            0..=TOPIC,
            "characters",
        )?;
        within("the number of overwrites", overwrites, 0..=OVERWRITES, "")
    }
}

/// Kicks, bans, timeouts and purges.
pub mod moderation {
    use super::{Invalid, within};

    /// A timeout lasts at most 28 days.
    pub const MAX_TIMEOUT_SECONDS: u32 = 28 * 24 * 3600;
    /// A ban deletes at most the last 7 days of the member's messages.
    pub const MAX_BAN_DELETE_SECONDS: u32 = 7 * 24 * 3600;
    pub const MAX_PURGE: u32 = 100;
    /// Characters of the reason shown in Discord's audit log.
    pub const REASON: usize = 512;

    pub fn check_timeout(seconds: u32) -> Result<(), Invalid> {
        within(
            "a timeout",
            seconds as usize,
            0..=MAX_TIMEOUT_SECONDS as usize,
            "seconds",
        )
    }

    pub fn check_ban_delete(seconds: u32) -> Result<(), Invalid> {
        within(
            "delete-message-seconds",
            seconds as usize,
            0..=MAX_BAN_DELETE_SECONDS as usize,
            "",
        )
    }

    pub fn check_purge(count: u32) -> Result<(), Invalid> {
        within("a purge count", count as usize, 1..=MAX_PURGE as usize, "")
    }

    pub fn check_reason(reason: Option<&str>) -> Result<(), Invalid> {
        within(
            "a reason",
            reason.map_or(0, super::chars),
            0..=REASON,
            "characters",
        )
    }
}

/// Scheduled jobs.
pub mod scheduler {
    use super::{Invalid, within};

    /// Delays are at most a year.
    pub const MAX_DELAY_SECONDS: u32 = 366 * 24 * 3600;
    /// Shorter delays are rounded up to this, so a job that schedules another
    /// cannot make the host spin.
    pub const MIN_DELAY_SECONDS: u32 = 1;
    pub const MAX_NAME_BYTES: usize = 64;
    pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

    pub fn check_job(name: &str, payload: &str, delay_seconds: u32) -> Result<(), Invalid> {
        within("a job name", name.len(), 1..=MAX_NAME_BYTES, "bytes")?;
        within(
            "a job payload",
            payload.len(),
            0..=MAX_PAYLOAD_BYTES,
            "bytes",
        )?;
        within(
            "a delay",
            delay_seconds as usize,
            0..=MAX_DELAY_SECONDS as usize,
            "seconds",
        )
    }

    /// The delay a job actually waits.
    pub fn effective_delay(delay_seconds: u32) -> u32 {
        delay_seconds.max(MIN_DELAY_SECONDS)
    }
}

/// Entries in the guild's audit log.
pub mod audit {
    use super::{Invalid, within};

    pub const MAX_ACTION_BYTES: usize = 64;
    pub const MAX_DETAILS_BYTES: usize = 4096;

    pub fn check_entry(action: &str, details: &str) -> Result<(), Invalid> {
        within(
            "an audit action",
            action.len(),
            1..=MAX_ACTION_BYTES,
            "bytes",
        )?;
        within(
            "audit details",
            details.len(),
            0..=MAX_DETAILS_BYTES,
            "bytes",
        )
    }
}

pub mod files {
    use super::{Invalid, invalid};

    pub const MAX_NAME: usize = 128;
    /// Links live 60 seconds to 7 days.
    pub const MIN_LINK_SECONDS: u32 = 60;
    pub const MAX_LINK_SECONDS: u32 = 7 * 24 * 3600;
    pub const MAX_LIST: u32 = 1000;

    /// 1-128 characters of `A-Z a-z 0-9 . _ - /`, not starting or ending with
    /// `/`, without `..` or `//`: a name never reads as a path anywhere.
    pub fn check_name(name: &str) -> Result<(), Invalid> {
        let ok = (1..=MAX_NAME).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
            && !name.starts_with('/')
            && !name.ends_with('/')
            && !name.contains("..")
            && !name.contains("//");
        if ok {
            Ok(())
        } else {
            Err(invalid(format!(
                "file name `{}`: use 1-{MAX_NAME} characters of A-Z a-z 0-9 . _ - and /, e.g. `transcripts/42.html`",
                name.escape_debug()
            )))
        }
    }

    /// `type/subtype`, lower-case, optionally `; charset=utf-8`.
    pub fn check_content_type(content_type: &str) -> Result<(), Invalid> {
        let mime = content_type
            .strip_suffix("; charset=utf-8")
            .unwrap_or(content_type);
        let ok = mime.len() <= 100
            && mime.split_once('/').is_some_and(|(kind, sub)| {
                !kind.is_empty()
                    && !sub.is_empty()
                    && kind.bytes().all(|b| b.is_ascii_lowercase())
                    && sub.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b".+-".contains(&b)
                    })
            });
        if ok {
            Ok(())
        } else {
            Err(invalid(format!(
                "content type `{}`: give a MIME type such as `text/html; charset=utf-8` or `image/png`",
                content_type.escape_debug()
            )))
        }
    }

    pub fn check_link_seconds(seconds: u32) -> Result<(), Invalid> {
        if (MIN_LINK_SECONDS..=MAX_LINK_SECONDS).contains(&seconds) {
            Ok(())
        } else {
            Err(invalid(format!(
                "a link lives {MIN_LINK_SECONDS} to {MAX_LINK_SECONDS} seconds, not {seconds}"
            )))
        }
    }
}

pub mod live {
    use super::{Invalid, invalid};

    /// The largest `data` accepted, in bytes of JSON.
    pub const MAX_DATA_BYTES: usize = 16 * 1024;
    /// What the host and its WebSocket send themselves; no feature may.
    pub const RESERVED_KINDS: [&str; 8] = [
        "audit_log",
        "settings_update",
        "feature_toggled",
        "command_executed",
        "export_progress",
        "subscribed",
        "unsubscribed",
        "error",
    ];

    /// A kind is 1-32 characters of `a-z _` and not one of [`RESERVED_KINDS`];
    /// `data` is at most [`MAX_DATA_BYTES`] (that it is JSON is checked where
    /// it is parsed).
    pub fn check_event(kind: &str, data: &str) -> Result<(), Invalid> {
        if kind.is_empty()
            || kind.len() > 32
            || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            return Err(invalid(format!(
                "live kind `{}`: use 1-32 characters of a-z and _, e.g. `ticket_update`",
                kind.escape_debug()
            )));
        }
        if RESERVED_KINDS.contains(&kind) {
            return Err(invalid(format!(
                "live kind `{kind}` is the host's own; name yours after your feature, e.g. `ticket_update`"
            )));
        }
        super::within("live data", data.len(), 0..=MAX_DATA_BYTES, "bytes")
    }
}

/// The `http` interface (contract 0.1.4).
pub mod http {
    use super::{Invalid, invalid};

    /// A host name an admin may approve and a URL may name: a lower-case DNS
    /// name of 1-253 characters, labels of 1-63 characters of `a-z 0-9 -`
    /// not starting or ending with `-`, at least two labels, and not an IP
    /// address (the address checks after resolution must always run).
    pub fn check_host_name(host: &str) -> Result<(), Invalid> {
        let shown = host.escape_debug();
        if host.is_empty() || host.len() > 253 {
            return Err(invalid(format!(
                "host `{shown}`: a host name is 1-253 characters"
            )));
        }
        if host.parse::<std::net::IpAddr>().is_ok()
            || host.starts_with('[')
            || host
                .split('.')
                .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(format!(
                "host `{shown}` is an IP address; approve the host's DNS name instead"
            )));
        }
        let labels: Vec<_> = host.split('.').collect();
        let well_formed = |label: &&str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if labels.len() < 2 || !labels.iter().all(well_formed) {
            return Err(invalid(format!(
                "host `{shown}`: use a lower-case DNS name such as `api.example.com` (no scheme, port or path)"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::message::{EmbedShape, RowShape, Shape};
    use super::*;

    #[test]
    fn an_empty_message_is_refused_but_an_empty_reply_acknowledges() {
        let empty = Shape::default();
        assert!(message::check(&empty).unwrap_err().0.contains("empty"));
        assert_eq!(message::check_reply(&empty), Ok(()));
        let blank = Shape {
            content: Some(""),
            ..Shape::default()
        };
        assert!(message::check(&blank).is_err());
        let components_only = Shape {
            rows: vec![RowShape {
                buttons: 1,
                selects: 0,
            }],
            ..Shape::default()
        };
        assert_eq!(message::check(&components_only), Ok(()));
    }

    #[test]
    fn discord_limits_name_the_part_and_the_limit() {
        let long = "é".repeat(message::CONTENT + 1);
        let err = message::check(&Shape {
            content: Some(&long),
            ..Shape::default()
        })
        .unwrap_err();
        assert_eq!(
            err.0,
            "message content is 2001 characters; at most 2000 allowed"
        );
        let exactly = "é".repeat(message::CONTENT);
        assert!(
            message::check(&Shape {
                content: Some(&exactly),
                ..Shape::default()
            })
            .is_ok(),
            "characters are counted, not bytes"
        );
        let field = "x".repeat(1024);
        let embed = EmbedShape {
            fields: vec![("n", field.as_str()); 6],
            ..EmbedShape::default()
        };
        let err = message::check(&Shape {
            embeds: vec![embed],
            ..Shape::default()
        })
        .unwrap_err();
        assert!(err.0.contains("embeds' text in all is 6150"), "{err}");
        let mixed = Shape {
            rows: vec![RowShape {
                buttons: 1,
                selects: 1,
            }],
            ..Shape::default()
        };
        assert!(
            message::check(&mixed)
                .unwrap_err()
                .0
                .contains("select menu")
        );
    }

    #[test]
    fn storage_rows_count_the_same_everywhere() {
        assert_eq!(storage::kv_row_bytes("key", "value"), 8);
        assert_eq!(storage::board_row_bytes("xp"), 10);
        assert!(storage::check_key("").is_err());
        assert!(storage::check_key(&"k".repeat(256)).is_ok());
        assert!(storage::check_key(&"k".repeat(257)).is_err());
        assert!(storage::check_limit(0, 100).is_err());
        assert!(storage::check_limit(101, 100).is_err());
    }

    #[test]
    fn other_arguments() {
        assert!(channels::check_spec("", None, 0).is_err());
        assert!(channels::check_spec("general", Some(&"t".repeat(1025)), 0).is_err());
        assert!(moderation::check_purge(0).is_err());
        assert!(moderation::check_timeout(moderation::MAX_TIMEOUT_SECONDS + 1).is_err());
        assert_eq!(scheduler::effective_delay(0), 1);
        assert!(scheduler::check_job("", "", 1).is_err());
        assert!(audit::check_entry("x", &"d".repeat(4097)).is_err());
        assert_eq!(
            message::check_modal("", 1).unwrap_err().0,
            "a modal title is 0 characters; 1 to 45 allowed"
        );
    }

    #[test]
    fn http_hosts_are_dns_names_never_addresses() {
        for good in ["api.example.com", "x-1.example.org", "a.b"] {
            assert_eq!(http::check_host_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "localhost",
            "127.0.0.1",
            "169.254.169.254",
            "2130706433.0",
            "[::1]",
            "::1",
            "Example.com",
            "https://example.com",
            "example.com:443",
            "example.com/path",
            "-x.example.com",
            "a..b",
        ] {
            assert!(http::check_host_name(bad).is_err(), "{bad}");
        }
    }
}
