//! `log`: the host log, attributed to the feature and guild. Always granted;
//! lines are truncated, control characters escaped (a feature cannot forge log
//! records), and both the lines per invocation and per (guild, feature) per
//! minute are capped so a feature cannot flood the operator's logs.

use crate::runtime::HostState;
use crate::runtime::bindings::townes::feature::log::{Host, Level};
use crate::runtime::wit::Capability;

const MAX_LINE_BYTES: usize = 1024;
const MAX_LINES: usize = 100;

impl Host for HostState {
    async fn write(&mut self, level: Level, message: String) {
        if self.begin(Capability::Log, "log.write").is_err() || self.log_lines.len() >= MAX_LINES {
            return;
        }
        let (guild, feature) = (self.guild_id, self.scope.feature_id.as_str());
        if !self
            .rates
            .log
            .take(guild, feature, self.limits.log_lines_per_minute)
        {
            return;
        }
        // A fresh string: the argument may be megabytes, and keeping it (even
        // truncated) would keep its whole allocation alive.
        let mut line =
            crate::runtime::escape_controls(crate::runtime::truncated(&message, MAX_LINE_BYTES));
        drop(message);
        if line.len() > MAX_LINE_BYTES {
            line = crate::runtime::truncated(&line, MAX_LINE_BYTES).to_string();
        }
        match level {
            Level::Trace => tracing::trace!(guild, feature, "{line}"),
            Level::Debug => tracing::debug!(guild, feature, "{line}"),
            Level::Info => tracing::info!(guild, feature, "{line}"),
            Level::Warn => tracing::warn!(guild, feature, "{line}"),
            Level::Error => tracing::error!(guild, feature, "{line}"),
        }
        self.log_lines.push(line);
    }
}
