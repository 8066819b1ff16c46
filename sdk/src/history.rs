//! A channel's past messages, for transcripts and context — comes with
//! capability [`Messages`](crate::Capability::Messages) (and its channel
//! allow-list). Without [`MessageContent`](crate::Capability::MessageContent)
//! the text, embeds and attachments arrive empty.
//!
//! ```no_run
//! use townes_sdk::history;
//! // Every message of a channel, oldest first, 100 at a time.
//! let mut all = Vec::new();
//! let mut before = None;
//! loop {
//!     let page = history::read(42, before, 100)?;
//!     let Some(oldest) = page.last() else { break };
//!     before = Some(oldest.id);
//!     all.extend(page);
//! }
//! all.reverse();
//! # Ok::<(), townes_sdk::Error>(())
//! ```

use crate::{Error, PastMessage, Snowflake, route};

/// Up to `limit` (1-100) messages older than `before` (none: the newest),
/// newest first.
pub fn read(
    channel_id: Snowflake,
    before: Option<Snowflake>,
    limit: u32,
) -> Result<Vec<PastMessage>, Error> {
    route!(
        wasm: crate::bindings::townes::feature::history::read(channel_id, before, limit),
        mock: crate::testing::call(crate::Capability::Messages, |h| h.history(channel_id, before, limit)),
    )
}
