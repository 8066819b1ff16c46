//! `members`: read members and guild info, and send direct messages.

use super::{Effect, validate_body};
use crate::runtime::HostState;
use crate::runtime::bindings::townes::feature::members::Host;
use crate::runtime::wit::{Capability, Error, GuildInfo, Member, MessageBody};

impl Host for HostState {
    async fn get(&mut self, user_id: u64) -> Result<Member, Error> {
        const CALL: &str = "members.get";
        self.begin(Capability::Members, CALL)?;
        let result = self
            .discord
            .member(self.guild_id, user_id)
            .await
            .map_err(Error::from);
        self.finish(CALL, result, |_| None)
    }

    async fn guild(&mut self) -> Result<GuildInfo, Error> {
        const CALL: &str = "members.guild";
        self.begin(Capability::Members, CALL)?;
        let result = self
            .discord
            .guild_info(self.guild_id)
            .await
            .map_err(Error::from);
        self.finish(CALL, result, |_| None)
    }

    async fn send_dm(&mut self, user_id: u64, body: MessageBody) -> Result<u64, Error> {
        const CALL: &str = "members.send-dm";
        self.begin(Capability::Members, CALL)?;
        // Only members of this guild: a feature must not DM arbitrary users.
        let result = match validate_body(&body) {
            Err(e) => Err(e),
            Ok(()) => match self.discord.member(self.guild_id, user_id).await {
                Err(e) => Err(e.into()),
                Ok(_) => self
                    .discord
                    .send_dm(user_id, &body)
                    .await
                    .map_err(Error::from),
            },
        };
        self.finish(CALL, result, |_| {
            Some(Effect::DirectMessageSent {
                user_id,
                content: body.content.clone(),
            })
        })
    }
}
