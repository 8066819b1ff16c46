//! `history`: a channel's past messages, for transcripts and context. Comes
//! with the `messages` grant and its channel allow-list; without
//! `message-content`, content, embeds and attachments arrive empty, as they do
//! in events.

use super::{Cap, DiscordCtx};
use crate::wit::townes::feature::history::{Host, PastMessage};
use crate::wit::{Capability, Error};

/// The most messages one `read` returns (Discord's page).
pub const MAX_PAGE: u32 = 100;

impl Host for Cap<'_, DiscordCtx> {
    async fn read(
        &mut self,
        channel_id: u64,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<PastMessage>, Error> {
        const CALL: &str = "history.read";
        self.begin_in_channel(CALL, channel_id)?;
        let result = if !(1..=MAX_PAGE).contains(&limit) {
            Err(Error::InvalidArgument(format!(
                "history.read: limit {limit}; read 1 to {MAX_PAGE} at a time and page with `before`"
            )))
        } else {
            self.ctx
                .discord
                .channel_messages(self.ctx.guild_id, channel_id, before, limit)
                .await
                .map_err(Error::from)
        };
        let content = self
            .calls
            .grant
            .capabilities
            .contains(Capability::MessageContent);
        let result = result.map(|messages| {
            messages
                .into_iter()
                .map(|m| if content { m } else { without_content(m) })
                .collect()
        });
        self.calls.finish(CALL, result, |_| None)
    }
}

fn without_content(message: PastMessage) -> PastMessage {
    PastMessage {
        content: String::new(),
        embeds: Vec::new(),
        attachments: Vec::new(),
        ..message
    }
}
