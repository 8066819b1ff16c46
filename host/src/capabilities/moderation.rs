//! `moderation`: kick, ban, unban, time out and purge. Discord's own hierarchy rules
//! (nobody at or above the bot) are enforced by Discord and reported as
//! `unavailable` with the reason; purges stay within the channel allow-list.

use super::{Cap, DiscordCtx, Effect};
use crate::discord::{Discord, DiscordError};
use crate::wit::townes::feature::moderation::Host;
use crate::wit::{Capability, Error};
use std::sync::Arc;
use townes_limits::moderation as limits;

impl Cap<'_, DiscordCtx> {
    /// A call that takes only a reason besides its target: begins `call`,
    /// checks the reason, runs `act` (given the Discord port, the guild and
    /// the reason) and records `effect` of the reason on success.
    async fn with_reason<Fut>(
        &mut self,
        call: &'static str,
        reason: Option<String>,
        act: impl FnOnce(Arc<dyn Discord>, u64, Option<String>) -> Fut,
        effect: impl FnOnce(Option<String>) -> Effect,
    ) -> Result<(), Error>
    where
        Fut: Future<Output = Result<(), DiscordError>>,
    {
        self.calls.begin(Capability::Moderation, call)?;
        let result = match limits::check_reason(reason.as_deref()) {
            Err(e) => Err(e.into()),
            Ok(()) => act(self.ctx.discord.clone(), self.ctx.guild_id, reason.clone())
                .await
                .map_err(Error::from),
        };
        self.calls.finish(call, result, |_| Some(effect(reason)))
    }
}

impl Host for Cap<'_, DiscordCtx> {
    async fn kick(&mut self, user_id: u64, reason: Option<String>) -> Result<(), Error> {
        self.with_reason(
            "moderation.kick",
            reason,
            |discord, guild_id, reason| async move {
                discord.kick(guild_id, user_id, reason.as_deref()).await
            },
            |reason| Effect::Kicked { user_id, reason },
        )
        .await
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
        self.with_reason(
            "moderation.unban",
            reason,
            |discord, guild_id, reason| async move {
                discord.unban(guild_id, user_id, reason.as_deref()).await
            },
            |reason| Effect::Unbanned { user_id, reason },
        )
        .await
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
