//! `members`: read members and guild info, and send direct messages.

use super::{Cap, DiscordCtx, Effect, validate_body};
use crate::wit::townes::feature::members::Host;
use crate::wit::{Capability, Error, GuildInfo, Member, MessageBody};

impl Host for Cap<'_, DiscordCtx> {
    async fn get(&mut self, user_id: u64) -> Result<Member, Error> {
        const CALL: &str = "members.get";
        self.calls.begin(Capability::Members, CALL)?;
        let result = self
            .ctx
            .discord
            .member(self.ctx.guild_id, user_id)
            .await
            .map_err(Error::from);
        self.calls.finish(CALL, result, |_| None)
    }

    async fn guild(&mut self) -> Result<GuildInfo, Error> {
        const CALL: &str = "members.guild";
        self.calls.begin(Capability::Members, CALL)?;
        let result = self
            .ctx
            .discord
            .guild_info(self.ctx.guild_id)
            .await
            .map_err(Error::from);
        self.calls.finish(CALL, result, |_| None)
    }

    async fn send_dm(&mut self, user_id: u64, body: MessageBody) -> Result<u64, Error> {
        const CALL: &str = "members.send-dm";
        self.calls.begin(Capability::Members, CALL)?;
        // Only members of this guild: a feature must not DM arbitrary users.
        let result = match validate_body(&body) {
            Err(e) => Err(e),
            Ok(()) => match self.ctx.discord.member(self.ctx.guild_id, user_id).await {
                Err(e) => Err(e.into()),
                Ok(_) => self
                    .ctx
                    .discord
                    .send_dm(user_id, &body)
                    .await
                    .map_err(Error::from),
            },
        };
        self.calls.finish(CALL, result, |_| {
            Some(Effect::DirectMessageSent {
                user_id,
                content: body.content.clone(),
            })
        })
    }
}
