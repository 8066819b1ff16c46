//! `messages`: send, edit and delete messages and react, within the grant's
//! channel allow-list.

use super::{Effect, validate_body};
use crate::runtime::HostState;
use crate::runtime::bindings::townes::feature::messages::Host;
use crate::runtime::wit::{Capability, Error, MessageBody};

impl HostState {
    fn begin_in_channel(&mut self, call: &'static str, channel_id: u64) -> Result<(), Error> {
        self.begin(Capability::Messages, call)?;
        self.grant
            .check_channel(Capability::Messages, channel_id)
            .inspect_err(|e| self.refused(call, e))
    }
}

impl Host for HostState {
    async fn send(&mut self, channel_id: u64, body: MessageBody) -> Result<u64, Error> {
        const CALL: &str = "messages.send";
        self.begin_in_channel(CALL, channel_id)?;
        let result = match validate_body(&body) {
            Ok(()) => self
                .discord
                .send_message(self.guild_id, channel_id, &body)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result, |&message_id| {
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
                .discord
                .edit_message(self.guild_id, channel_id, message_id, &body)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result, |_| {
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
            .discord
            .delete_message(self.guild_id, channel_id, message_id)
            .await
            .map_err(Error::from);
        self.finish(CALL, result, |_| {
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
        let result = self
            .discord
            .add_reaction(self.guild_id, channel_id, message_id, &emoji)
            .await
            .map_err(Error::from);
        self.finish(CALL, result, |_| {
            Some(Effect::ReactionAdded {
                channel_id,
                message_id,
                emoji: emoji.clone(),
            })
        })
    }
}
