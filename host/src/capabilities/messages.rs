//! `messages`: send, edit and delete messages, react and read reactions,
//! within the grant's channel allow-list; role mentions notify only the roles
//! the grant lists.

use super::{Cap, DiscordCtx, Effect, validate_body};
use crate::wit::townes::feature::messages::Host;
use crate::wit::{Capability, Error, MessageBody};

/// Users `messages.reactions` returns at most per call (Discord's page).
const MAX_REACTIONS_PAGE: u32 = 100;

impl Cap<'_, DiscordCtx> {
    pub(super) fn begin_in_channel(
        &mut self,
        call: &'static str,
        channel_id: u64,
    ) -> Result<(), Error> {
        self.calls.begin(Capability::Messages, call)?;
        self.calls
            .grant
            .check_channel(Capability::Messages, channel_id)
            .inspect_err(|e| self.calls.refused(call, e))
    }
}

impl Host for Cap<'_, DiscordCtx> {
    async fn send(&mut self, channel_id: u64, body: MessageBody) -> Result<u64, Error> {
        const CALL: &str = "messages.send";
        self.begin_in_channel(CALL, channel_id)?;
        let pinged = self
            .calls
            .grant
            .pinged_roles(body.content.as_deref().unwrap_or_default());
        let result = match validate_body(&body) {
            Ok(()) => self
                .ctx
                .discord
                .send_message_pinging(self.ctx.guild_id, channel_id, &body, &pinged)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls.finish(CALL, result, |&message_id| {
            Some(Effect::MessageSent {
                channel_id,
                message_id,
                content: body.content.clone(),
                embeds: body.embeds.len(),
                components: body.components.len(),
            })
        })
    }

    async fn edit(
        &mut self,
        channel_id: u64,
        message_id: u64,
        body: MessageBody,
    ) -> Result<(), Error> {
        const CALL: &str = "messages.edit";
        self.begin_in_channel(CALL, channel_id)?;
        let result = match validate_body(&body) {
            Ok(()) => self
                .ctx
                .discord
                .edit_message(self.ctx.guild_id, channel_id, message_id, &body)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls.finish(CALL, result, |_| {
            Some(Effect::MessageEdited {
                channel_id,
                message_id,
                content: body.content.clone(),
            })
        })
    }

    async fn delete(&mut self, channel_id: u64, message_id: u64) -> Result<(), Error> {
        const CALL: &str = "messages.delete";
        self.begin_in_channel(CALL, channel_id)?;
        let result = self
            .ctx
            .discord
            .delete_message(self.ctx.guild_id, channel_id, message_id)
            .await
            .map_err(Error::from);
        self.calls.finish(CALL, result, |_| {
            Some(Effect::MessageDeleted {
                channel_id,
                message_id,
            })
        })
    }

    async fn react(
        &mut self,
        channel_id: u64,
        message_id: u64,
        emoji: String,
    ) -> Result<(), Error> {
        const CALL: &str = "messages.react";
        self.begin_in_channel(CALL, channel_id)?;
        let result = match townes_limits::message::check_emoji(&emoji) {
            Err(e) => Err(e.into()),
            Ok(()) => self
                .ctx
                .discord
                .add_reaction(self.ctx.guild_id, channel_id, message_id, &emoji)
                .await
                .map_err(Error::from),
        };
        self.calls.finish(CALL, result, |_| {
            Some(Effect::ReactionAdded {
                channel_id,
                message_id,
                emoji: emoji.clone(),
            })
        })
    }
    async fn reactions(
        &mut self,
        channel_id: u64,
        message_id: u64,
        emoji: String,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<u64>, Error> {
        const CALL: &str = "messages.reactions";
        self.begin_in_channel(CALL, channel_id)?;
        let result = if !(1..=MAX_REACTIONS_PAGE).contains(&limit) {
            Err(Error::InvalidArgument(format!(
                "messages.reactions: limit {limit}; read 1 to {MAX_REACTIONS_PAGE} at a time and page with `after`"
            )))
        } else {
            match townes_limits::message::check_emoji(&emoji) {
                Err(e) => Err(e.into()),
                Ok(()) => self
                    .ctx
                    .discord
                    .reactions(
                        self.ctx.guild_id,
                        channel_id,
                        message_id,
                        &emoji,
                        after,
                        limit,
                    )
                    .await
                    .map_err(Error::from),
            }
        };
        self.calls.finish(CALL, result, |_| None)
    }
}
