//! A ticket's transcript: the channel's whole history as one self-contained
//! HTML page, stored as a file with copies of the attachments beside it.
//!
//! Every piece of text that came from Discord (names, messages, embeds, file
//! names, the close reason) is written through [`escape`], and a URL only
//! lands in an attribute when it is `http(s)://` — so a message that says
//! `<script>` shows `<script>` and runs nothing. The page carries no script of
//! its own, and a Content-Security-Policy that would forbid one anyway.

use crate::store::Ticket;
use crate::time::{format_rfc3339, format_unix, now};
use townes_sdk::{Attachment, Embed, Error, PastMessage, Snowflake, files, history, members};

/// Messages read per `history::read`, Discord's most.
const PAGE: u32 = 100;
/// Messages kept at most; the oldest beyond are left out (and the page says so).
pub const MAX_MESSAGES: usize = 5000;
/// Bytes of rendered messages at most, under the smallest plan's largest file
/// (4 MiB) with room for the header.
pub const MAX_MESSAGE_BYTES: usize = 3 << 20;
/// Attachments copied per transcript at most: each costs two host calls, and
/// an invocation has a thousand.
pub const MAX_ATTACHMENTS: usize = 100;
const CONTENT_TYPE: &str = "text/html; charset=utf-8";
/// The longest file name the host takes.
const MAX_FILE_NAME: usize = 128;

/// The transcript's file name.
pub fn file_name(ticket_number: u64) -> String {
    format!("tickets/{ticket_number}/transcript.html")
}

/// The file name of a copied attachment: `tickets/{n}/{id}-{filename}`, the
/// file name cut down to what file names allow (`A-Z a-z 0-9 . _ -`, no `..`)
/// and to 128 characters in all, keeping its end (the extension).
pub fn attachment_file_name(
    ticket_number: u64,
    attachment_id: Snowflake,
    filename: &str,
) -> String {
    let prefix = format!("tickets/{ticket_number}/{attachment_id}-");
    let mut safe = String::new();
    for c in filename.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '_'
        };
        // A run of dots becomes one: `..` never reads as a parent directory.
        if !(c == '.' && safe.ends_with('.')) {
            safe.push(c);
        }
    }
    if safe.is_empty() {
        safe.push_str("file");
    }
    let room = MAX_FILE_NAME - prefix.len();
    if safe.len() > room {
        safe = safe[safe.len() - room..].to_string();
    }
    prefix + &safe
}

/// Escapes text for HTML, in element content and in double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The URL when it is `https://` or `http://` (never `javascript:`, `data:`…).
fn web_url(url: &str) -> Option<&str> {
    (url.starts_with("https://") || url.starts_with("http://")).then_some(url)
}

/// The author's avatar on Discord's CDN, or Discord's default one. The hash
/// goes into a URL, so only a plain hash is used.
pub fn avatar_url(user_id: Snowflake, hash: Option<&str>) -> String {
    match hash {
        Some(hash)
            if !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            format!("https://cdn.discordapp.com/avatars/{user_id}/{hash}.png")
        }
        _ => format!(
            "https://cdn.discordapp.com/embed/avatars/{}.png",
            (user_id >> 22) % 6
        ),
    }
}

/// What became of one attachment.
#[derive(Clone, Debug, PartialEq)]
pub enum Kept {
    /// Copied; the copy is served at `url`.
    Copy { url: String },
    /// Not copied, and why (shown on the page).
    Not(String),
}

/// Why something could not be done, in words for the page.
pub fn why(error: &Error) -> String {
    match error {
        Error::QuotaExceeded(what) => format!("over the quota: {what}"),
        Error::Unavailable(what) => format!("unavailable: {what}"),
        Error::NotFound(what) => format!("gone: {what}"),
        Error::InvalidArgument(what) => what.clone(),
        Error::Denied(capability) => {
            format!("the {} permission is not granted", capability.as_str())
        }
    }
}

fn size(bytes: u32) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", f64::from(b) / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{} KB", b >> 10),
        b => format!("{b} bytes"),
    }
}

// --------------------------------------------------------------- rendering

/// One message as an `<article>`; `kept` says what became of each of its
/// attachments, in order.
pub fn message_html(message: &PastMessage, kept: &[Kept]) -> String {
    let author = &message.author;
    let mut html = format!(
        "<article class=\"msg\"><img class=\"avatar\" src=\"{}\" alt=\"\" width=\"40\" height=\"40\">\
         <div class=\"body\"><header><span class=\"author\">{}</span>",
        escape(&avatar_url(author.id, message.avatar.as_deref())),
        escape(author.display_name()),
    );
    if author.bot {
        html.push_str(" <span class=\"tag\">BOT</span>");
    }
    html.push_str(&format!(
        " <time datetime=\"{}\">{}</time>",
        escape(&message.timestamp),
        escape(&format_rfc3339(&message.timestamp))
    ));
    if let Some(edited) = &message.edited_timestamp {
        html.push_str(&format!(
            " <span class=\"edited\" title=\"edited {}\">(edited)</span>",
            escape(&format_rfc3339(edited))
        ));
    }
    html.push_str("</header>");
    if !message.content.is_empty() {
        html.push_str(&format!(
            "<div class=\"content\">{}</div>",
            escape(&message.content)
        ));
    }
    for embed in &message.embeds {
        html.push_str(&embed_html(embed));
    }
    if !message.attachments.is_empty() {
        html.push_str("<ul class=\"attachments\">");
        for (attachment, kept) in message.attachments.iter().zip(kept) {
            html.push_str(&attachment_html(attachment, kept));
        }
        html.push_str("</ul>");
    }
    html.push_str("</div></article>\n");
    html
}

fn embed_html(embed: &Embed) -> String {
    let mut html = String::from("<div class=\"embed\">");
    if let Some(title) = &embed.title {
        let title = escape(title);
        match embed.url.as_deref().and_then(web_url) {
            Some(url) => html.push_str(&format!(
                "<div class=\"embed-title\"><a href=\"{}\" rel=\"noopener noreferrer nofollow\">{title}</a></div>",
                escape(url)
            )),
            None => html.push_str(&format!("<div class=\"embed-title\">{title}</div>")),
        }
    }
    if let Some(description) = &embed.description {
        html.push_str(&format!(
            "<div class=\"embed-description\">{}</div>",
            escape(description)
        ));
    }
    if !embed.fields.is_empty() {
        html.push_str("<dl class=\"embed-fields\">");
        for field in &embed.fields {
            html.push_str(&format!(
                "<dt>{}</dt><dd>{}</dd>",
                escape(&field.name),
                escape(&field.value)
            ));
        }
        html.push_str("</dl>");
    }
    if let Some(footer) = &embed.footer {
        html.push_str(&format!(
            "<div class=\"embed-footer\">{}</div>",
            escape(footer)
        ));
    }
    html.push_str("</div>");
    html
}

fn attachment_html(attachment: &Attachment, kept: &Kept) -> String {
    let name = escape(&attachment.filename);
    match kept {
        Kept::Copy { url } => {
            let Some(url) = web_url(url) else {
                return format!(
                    "<li>{name} <span class=\"missing\">(not kept: no web link)</span></li>"
                );
            };
            let url = escape(url);
            let mut html = format!(
                "<li><a href=\"{url}\" rel=\"noopener noreferrer\">{name}</a> <span class=\"size\">({})</span>",
                size(attachment.size)
            );
            let image = attachment
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("image/"));
            if image {
                html.push_str(&format!(
                    "<br><a href=\"{url}\" rel=\"noopener noreferrer\"><img class=\"inline\" src=\"{url}\" alt=\"{name}\" loading=\"lazy\"></a>"
                ));
            }
            html.push_str("</li>");
            html
        }
        Kept::Not(reason) => format!(
            "<li>{name} <span class=\"missing\">(not kept: {})</span></li>",
            escape(reason)
        ),
    }
}

/// What the page's header says about the ticket.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub guild: String,
    pub claimed_by: Option<String>,
    pub closed_by: Option<String>,
    pub messages: usize,
    /// Older messages were left out.
    pub cut: bool,
    pub made_at: u64,
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f6f6f7;color:#1e1f22}\
header.summary{background:#5865f2;color:#fff;padding:16px 24px}header.summary h1{margin:0 0 4px}\
header.summary dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0 0}\
header.summary dt{font-weight:600}header.summary dd{margin:0;white-space:pre-wrap}\
.cut{background:#fee75c;color:#1e1f22;padding:6px 10px;border-radius:4px}\
main{padding:8px 24px}.msg{display:flex;gap:12px;padding:8px 0;border-bottom:1px solid #e3e5e8}\
.avatar{border-radius:50%;flex:none}.body{min-width:0;flex:1}.author{font-weight:600}\
.tag{background:#5865f2;color:#fff;font-size:11px;padding:0 4px;border-radius:3px}\
time,.edited,.size{color:#6d6f78;font-size:12px}.content{white-space:pre-wrap;overflow-wrap:anywhere}\
.embed{border-left:4px solid #5865f2;background:#fff;padding:8px 12px;margin:6px 0;border-radius:4px}\
.embed-title{font-weight:600}.embed-description,.embed-fields dd{white-space:pre-wrap}\
.embed-fields dt{font-weight:600;margin-top:4px}.embed-fields dd{margin:0}\
.embed-footer{color:#6d6f78;font-size:12px;margin-top:4px}.attachments{margin:6px 0;padding-left:18px}\
.inline{max-width:360px;max-height:360px;display:block;margin-top:4px}.missing{color:#da373c}\
footer{color:#6d6f78;font-size:12px;padding:16px 24px}";

/// The whole page: `messages` are rendered `<article>`s, oldest first.
pub fn page_html(ticket: &Ticket, summary: &Summary, messages: &[String]) -> String {
    let number = ticket.number;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src https: http:; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>Ticket #{number} transcript</title><style>{STYLE}</style></head>\n<body>\
         <header class=\"summary\"><h1>Ticket #{number}</h1><div class=\"guild\">{}</div><dl>",
        escape(&summary.guild)
    );
    let mut row = |label: &str, value: &str| {
        html.push_str(&format!("<dt>{label}</dt><dd>{}</dd>", escape(value)));
    };
    row(
        "Opened by",
        &format!("{} ({})", ticket.opener_name, ticket.opener_id),
    );
    row("Opened", &format_unix(ticket.opened_at));
    if let Some(claimer) = &summary.claimed_by {
        row("Claimed by", claimer);
    }
    if let Some(closer) = &summary.closed_by {
        row("Closed by", closer);
    }
    if let Some(closed_at) = ticket.closed_at {
        row("Closed", &format_unix(closed_at));
    }
    if let Some(reason) = &ticket.close_reason {
        row("Reason", reason);
    }
    row("Messages", &summary.messages.to_string());
    html.push_str("</dl>");
    if summary.cut {
        html.push_str(&format!(
            "<p class=\"cut\">This transcript keeps the {} most recent messages; older ones were left out.</p>",
            summary.messages
        ));
    }
    html.push_str("</header>\n<main>\n");
    for message in messages {
        html.push_str(message);
    }
    html.push_str(&format!(
        "</main><footer>Transcript made {} by Tickets.</footer></body></html>\n",
        format_unix(summary.made_at)
    ));
    html
}

// ------------------------------------------------------------------ making

/// A member's name for the page: their display name and id, or the id alone
/// when they cannot be looked up (left the guild, no grant).
fn name_of(user_id: Snowflake) -> String {
    match members::get(user_id) {
        Ok(member) => format!("{} ({user_id})", member.display_name()),
        Err(_) => format!("user {user_id}"),
    }
}

/// Copies attachments into files until [`MAX_ATTACHMENTS`].
struct Copier {
    ticket_number: u64,
    channel_id: Snowflake,
    link_seconds: u32,
    copied: usize,
}

impl Copier {
    fn keep(&mut self, message_id: Snowflake, attachment: &Attachment) -> Kept {
        if self.copied == MAX_ATTACHMENTS {
            return Kept::Not(format!("more than {MAX_ATTACHMENTS} attachments"));
        }
        self.copied += 1;
        let name = attachment_file_name(self.ticket_number, attachment.id, &attachment.filename);
        // A copy that fails (too large, over the quota, gone from Discord)
        // costs the page one link, not the whole transcript.
        match files::copy_attachment(&name, self.channel_id, message_id, attachment.id)
            .and_then(|_| files::link(&name, self.link_seconds))
        {
            Ok(url) => Kept::Copy { url },
            Err(error) => Kept::Not(why(&error)),
        }
    }
}

/// Reads the ticket's channel from the newest message back, copies the
/// attachments, and stores the page; returns the page's file name. The
/// ticket's closing fields should be set already: the header shows them.
pub fn make(ticket: &Ticket, link_seconds: u32) -> Result<String, Error> {
    let mut copier = Copier {
        ticket_number: ticket.number,
        channel_id: ticket.channel_id,
        link_seconds,
        copied: 0,
    };
    // Rendered as read (newest first) so the messages themselves are not all
    // held at once; reversed at the end.
    let mut rendered: Vec<String> = Vec::new();
    let mut bytes = 0;
    let mut cut = false;
    let mut before = None;
    'pages: loop {
        let page = history::read(ticket.channel_id, before, PAGE)?;
        let full = page.len() == PAGE as usize;
        for message in &page {
            if rendered.len() == MAX_MESSAGES || bytes >= MAX_MESSAGE_BYTES {
                cut = true;
                break 'pages;
            }
            before = Some(message.id);
            let kept: Vec<Kept> = message
                .attachments
                .iter()
                .map(|a| copier.keep(message.id, a))
                .collect();
            let html = message_html(message, &kept);
            bytes += html.len();
            rendered.push(html);
        }
        if !full {
            break;
        }
    }
    rendered.reverse();
    let summary = Summary {
        guild: members::guild().map(|g| g.name).unwrap_or_default(),
        claimed_by: ticket.claimed_by.map(name_of),
        closed_by: ticket.closed_at.map(|_| match ticket.closed_by {
            Some(user_id) => name_of(user_id),
            None => "the dashboard".into(),
        }),
        messages: rendered.len(),
        cut,
        made_at: now(),
    };
    let name = file_name(ticket.number);
    files::put(
        &name,
        CONTENT_TYPE,
        page_html(ticket, &summary, &rendered).as_bytes(),
    )?;
    Ok(name)
}
