//! `log`: the host log, attributed to the feature and guild. Always granted;
//! lines are truncated and the total per invocation is capped so a feature
//! cannot flood the log.

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
        let mut line = message;
        if line.len() > MAX_LINE_BYTES {
            let cut = (0..=MAX_LINE_BYTES)
                .rev()
                .find(|i| line.is_char_boundary(*i))
                .unwrap_or(0);
            line.truncate(cut);
            line.push('…');
        }
        let (guild, feature) = (self.guild_id, self.scope.feature_id.as_str());
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
