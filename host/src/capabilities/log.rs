//! `log`: the host log, attributed to the feature and guild. Always granted;
//! lines are truncated, control characters escaped (a feature cannot forge log
//! records), and both the lines per invocation and per (guild, feature) per
//! minute are capped so a feature cannot flood the operator's logs.

use super::Cap;
use super::rates::Rates;
use crate::store::Scope;
use crate::wit::Capability;
use crate::wit::townes::feature::log::{Host, Level};
use std::sync::Arc;

/// What `log` needs: whose lines they are, the allowance per minute, and
/// the lines of this invocation (shown by `townes feature run`).
pub struct LogCtx {
    pub scope: Scope,
    pub rates: Arc<Rates>,
    pub lines_per_minute: u32,
    pub lines: Vec<String>,
}

const MAX_LINE_BYTES: usize = 1024;
const MAX_LINES: usize = 100;

impl Host for Cap<'_, LogCtx> {
    async fn write(&mut self, level: Level, message: String) {
        if self.calls.begin(Capability::Log, "log.write").is_err()
            || self.ctx.lines.len() >= MAX_LINES
        {
            return;
        }
        let (guild, feature) = (self.ctx.scope.guild_id, self.ctx.scope.feature_id.as_str());
        if !self
            .ctx
            .rates
            .log
            .take(guild, feature, self.ctx.lines_per_minute)
        {
            return;
        }
        // A fresh string: the argument may be megabytes, and keeping it (even
        // truncated) would keep its whole allocation alive.
        let mut line = escape_controls(truncated(&message, MAX_LINE_BYTES));
        drop(message);
        if line.len() > MAX_LINE_BYTES {
            line = truncated(&line, MAX_LINE_BYTES).to_string();
        }
        match level {
            Level::Trace => tracing::trace!(guild, feature, "{line}"),
            Level::Debug => tracing::debug!(guild, feature, "{line}"),
            Level::Info => tracing::info!(guild, feature, "{line}"),
            Level::Warn => tracing::warn!(guild, feature, "{line}"),
            Level::Error => tracing::error!(guild, feature, "{line}"),
        }
        self.ctx.lines.push(line);
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn truncated(text: &str, max: usize) -> &str {
    let cut = (0..=max.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    &text[..cut]
}

/// Text a feature controls, made safe for a log line: control characters
/// (newlines included) are escaped so a feature cannot forge log records.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
