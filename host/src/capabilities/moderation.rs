//! `moderation`: kick, ban, time out and purge. Discord's own hierarchy rules
//! (nobody at or above the bot) are enforced by Discord and reported as
//! `unavailable` with the reason; purges stay within the channel allow-list.

use super::{Cap, DiscordCtx, Effect};
use crate::wit::townes::feature::moderation::Host;
use crate::wit::{Capability, Error};
use townes_limits::moderation as limits;

impl Host for Cap<'_, DiscordCtx> {
    async fn kick(&mut self, user_id: u64, reason: Option<String>) -> Result<(), Error> {
        const CALL: &str = "moderation.kick";
        self.calls.begin(Capability::Moderation, CALL)?;
        let result = match limits::check_reason(reason.as_deref()) {
            Err(e) => Err(e.into()),
            Ok(()) => self
                .ctx
                .discord
                .kick(self.ctx.guild_id, user_id, reason.as_deref())
                .await
                .map_err(Error::from),
        };
        self.calls
            .finish(CALL, result, |_| Some(Effect::Kicked { user_id, reason }))
    }

    async fn ban(
        &mut self,
        user_id: u64,
        delete_message_seconds: u32,
        reason: Option<String>,
    ) -> Result<(), Error> {
        const CALL: &str = "moderation.ban";
        self.calls.begin(Capability::Moderation, CALL)?;
        let checked = limits::check_ban_delete(delete_message_seconds)
            .and_then(|()| limits::check_reason(reason.as_deref()));
        let result = match checked {
            Err(e) => Err(e.into()),
            Ok(()) => self
                .ctx
                .discord
                .ban(
                    self.ctx.guild_id,
                    user_id,
                    delete_message_seconds,
                    reason.as_deref(),
                )
                .await
                .map_err(Error::from),
        };
        self.calls.finish(CALL, result, |_| {
            Some(Effect::Banned {
                user_id,
                delete_message_seconds,
                reason,
            })
        })
    }

    async fn unban(&mut self, user_id: u64, reason: Option<String>) -> Result<(), Error> {
        const CALL: &str = "moderation.unban";
        self.calls.begin(Capability::Moderation, CALL)?;
        let result = match limits::check_reason(reason.as_deref()) {
            Err(e) => Err(e.into()),
            Ok(()) => self
                .ctx
                .discord
                .unban(self.ctx.guild_id, user_id, reason.as_deref())
                .await
                .map_err(Error::from),
        };
        self.calls
            .finish(CALL, result, |_| Some(Effect::Unbanned { user_id, reason }))
    }

    async fn timeout(
        &mut self,
        user_id: u64,
        seconds: u32,
        reason: Option<String>,
    ) -> Result<(), Error> {
        const CALL: &str = "moderation.timeout";
        self.calls.begin(Capability::Moderation, CALL)?;
        let checked =
            limits::check_timeout(seconds).and_then(|()| limits::check_reason(reason.as_deref()));
        let result = match checked {
            Err(e) => Err(e.into()),
            Ok(()) => self
                .ctx
                .discord
                .timeout(self.ctx.guild_id, user_id, seconds, reason.as_deref())
                .await
                .map_err(Error::from),
        };
        self.calls.finish(CALL, result, |_| {
            Some(Effect::TimedOut {
                user_id,
                seconds,
                reason,
            })
        })
    }

    async fn purge(&mut self, channel_id: u64, count: u32) -> Result<u32, Error> {
        const CALL: &str = "moderation.purge";
        self.calls.begin(Capability::Moderation, CALL)?;
        let checked = self
            .calls
            .grant
            .check_channel(Capability::Moderation, channel_id)
            .and_then(|()| Ok(limits::check_purge(count)?));
        let result = match checked {
            Err(e) => Err(e),
            Ok(()) => self
                .ctx
                .discord
                .purge(self.ctx.guild_id, channel_id, count)
                .await
                .map_err(Error::from),
        };
        self.calls.finish(CALL, result, |&deleted| {
            Some(Effect::Purged {
                channel_id,
                deleted,
            })
        })
    }
}
