//! `moderation`: kick, ban, time out and purge. Discord's own hierarchy rules
//! (nobody at or above the bot) are enforced by Discord and reported as
//! `unavailable` with the reason.

use super::Effect;
use crate::runtime::HostState;
use crate::runtime::bindings::townes::feature::moderation::Host;
use crate::runtime::wit::{Capability, Error};

const MAX_TIMEOUT_SECONDS: u32 = 28 * 24 * 3600;

impl Host for HostState {
    async fn kick(&mut self, user_id: u64, reason: Option<String>) -> Result<(), Error> {
        const CALL: &str = "moderation.kick";
        self.begin(Capability::Moderation, CALL)?;
        let result = self
            .discord
            .kick(self.guild_id, user_id, reason.as_deref())
            .await
            .map_err(Error::from);
        self.finish(CALL, result, |_| Some(Effect::Kicked { user_id }))
    }

    async fn ban(
        &mut self,
        user_id: u64,
        delete_message_seconds: u32,
        reason: Option<String>,
    ) -> Result<(), Error> {
        const CALL: &str = "moderation.ban";
        self.begin(Capability::Moderation, CALL)?;
        let result = if delete_message_seconds > 604_800 {
            Err(Error::InvalidArgument(
                "delete-message-seconds is at most 604800 (7 days)".into(),
            ))
        } else {
            self.discord
                .ban(
                    self.guild_id,
                    user_id,
                    delete_message_seconds,
                    reason.as_deref(),
                )
                .await
                .map_err(Error::from)
        };
        self.finish(CALL, result, |_| Some(Effect::Banned { user_id }))
    }

    async fn timeout(
        &mut self,
        user_id: u64,
        seconds: u32,
        reason: Option<String>,
    ) -> Result<(), Error> {
        const CALL: &str = "moderation.timeout";
        self.begin(Capability::Moderation, CALL)?;
        let result = if seconds > MAX_TIMEOUT_SECONDS {
            Err(Error::InvalidArgument(format!(
                "a timeout lasts at most {MAX_TIMEOUT_SECONDS} seconds (28 days)"
            )))
        } else {
            self.discord
                .timeout(self.guild_id, user_id, seconds, reason.as_deref())
                .await
                .map_err(Error::from)
        };
        self.finish(CALL, result, |_| {
            Some(Effect::TimedOut { user_id, seconds })
        })
    }

    async fn purge(&mut self, channel_id: u64, count: u32) -> Result<u32, Error> {
        const CALL: &str = "moderation.purge";
        self.begin(Capability::Moderation, CALL)?;
        let result = if let Err(e) = self.grant.check_channel(Capability::Moderation, channel_id) {
            Err(e)
        } else if !(1..=100).contains(&count) {
            Err(Error::InvalidArgument(format!(
                "purge count is {count}; it must be 1 to 100"
            )))
        } else {
            self.discord
                .purge(self.guild_id, channel_id, count)
                .await
                .map_err(Error::from)
        };
        self.finish(CALL, result, |&deleted| {
            Some(Effect::Purged {
                channel_id,
                deleted,
            })
        })
    }
}
