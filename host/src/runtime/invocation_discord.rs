//! The Discord one invocation sees: the platform's Discord as the invoking feature's
//! own view of it (its quotas, its invalid-request budget; see `discord::governor`),
//! with the invocation's wall clock stopped while a call waits (see `wall`), and
//! component custom ids namespaced for the calling feature (see `discord::custom_id`).

use super::wall::WallClock;
use crate::discord::custom_id::namespace_body;
use crate::discord::{Caller, Discord, DiscordError, Role};
use crate::wit::townes::feature::channels::{ChannelSpec, PermissionOverwrite};
use crate::wit::townes::feature::history::{Attachment, PastMessage};
use crate::wit::{GuildInfo, Member, MessageBody};
use async_trait::async_trait;
use std::sync::Arc;

pub(crate) struct InvocationDiscord {
    inner: Arc<dyn Discord>,
    clock: WallClock,
    caller: Caller,
}

impl InvocationDiscord {
    /// `platform` as feature `feature_id` running in `guild_id` uses it.
    pub(crate) fn new(
        platform: &Arc<dyn Discord>,
        clock: WallClock,
        guild_id: u64,
        feature_id: &str,
    ) -> Self {
        let caller = Caller::new(guild_id, feature_id);
        let inner = platform
            .for_caller(&caller)
            .unwrap_or_else(|| Arc::clone(platform));
        InvocationDiscord {
            inner,
            clock,
            caller,
        }
    }

    /// This invocation's calls that Discord answered 401, 403 or 429, or that were
    /// refused locally (remembered refusals, quotas, budgets) — including calls
    /// finished after the invocation ended. A feature that keeps provoking them is
    /// misbehaving as surely as one that keeps trapping.
    pub(crate) fn invalid_requests(&self) -> u32 {
        self.caller.invalid_requests()
    }

    fn namespaced(&self, body: &MessageBody) -> Result<MessageBody, DiscordError> {
        namespace_body(&self.caller.feature_id, body).map_err(DiscordError::Invalid)
    }
}

impl Drop for InvocationDiscord {
    fn drop(&mut self) {
        let invalid = self.invalid_requests();
        if invalid > 0 {
            tracing::info!(
                guild = self.caller.guild_id,
                feature = %self.caller.feature_id,
                invalid,
                "an invocation's Discord calls were refused (by Discord or locally)"
            );
        }
    }
}

#[async_trait]
impl Discord for InvocationDiscord {
    async fn send_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        body: &MessageBody,
    ) -> Result<u64, DiscordError> {
        let body = self.namespaced(body)?;
        let call = self.inner.send_message(guild_id, channel_id, &body);
        self.clock.excluding(call).await
    }

    async fn send_message_pinging(
        &self,
        guild_id: u64,
        channel_id: u64,
        body: &MessageBody,
        roles: &[u64],
    ) -> Result<u64, DiscordError> {
        let body = self.namespaced(body)?;
        let call = self
            .inner
            .send_message_pinging(guild_id, channel_id, &body, roles);
        self.clock.excluding(call).await
    }

    async fn edit_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        body: &MessageBody,
    ) -> Result<(), DiscordError> {
        let body = self.namespaced(body)?;
        let call = self
            .inner
            .edit_message(guild_id, channel_id, message_id, &body);
        self.clock.excluding(call).await
    }

    async fn delete_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
    ) -> Result<(), DiscordError> {
        let call = self.inner.delete_message(guild_id, channel_id, message_id);
        self.clock.excluding(call).await
    }

    async fn add_reaction(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        emoji: &str,
    ) -> Result<(), DiscordError> {
        let call = self
            .inner
            .add_reaction(guild_id, channel_id, message_id, emoji);
        self.clock.excluding(call).await
    }

    async fn member(&self, guild_id: u64, user_id: u64) -> Result<Member, DiscordError> {
        self.clock
            .excluding(self.inner.member(guild_id, user_id))
            .await
    }

    async fn guild_info(&self, guild_id: u64) -> Result<GuildInfo, DiscordError> {
        self.clock.excluding(self.inner.guild_info(guild_id)).await
    }

    async fn send_dm(&self, user_id: u64, body: &MessageBody) -> Result<u64, DiscordError> {
        let body = self.namespaced(body)?;
        self.clock
            .excluding(self.inner.send_dm(user_id, &body))
            .await
    }

    async fn roles(&self, guild_id: u64) -> Result<Vec<Role>, DiscordError> {
        self.clock.excluding(self.inner.roles(guild_id)).await
    }

    async fn bot_top_position(&self, guild_id: u64) -> Result<u32, DiscordError> {
        self.clock
            .excluding(self.inner.bot_top_position(guild_id))
            .await
    }

    async fn add_role(
        &self,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        let call = self.inner.add_role(guild_id, user_id, role_id, reason);
        self.clock.excluding(call).await
    }

    async fn remove_role(
        &self,
        guild_id: u64,
        user_id: u64,
        role_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        let call = self.inner.remove_role(guild_id, user_id, role_id, reason);
        self.clock.excluding(call).await
    }

    async fn create_channel(&self, guild_id: u64, spec: &ChannelSpec) -> Result<u64, DiscordError> {
        self.clock
            .excluding(self.inner.create_channel(guild_id, spec))
            .await
    }

    async fn delete_channel(&self, guild_id: u64, channel_id: u64) -> Result<(), DiscordError> {
        self.clock
            .excluding(self.inner.delete_channel(guild_id, channel_id))
            .await
    }

    async fn set_overwrite(
        &self,
        guild_id: u64,
        channel_id: u64,
        overwrite: &PermissionOverwrite,
    ) -> Result<(), DiscordError> {
        let call = self.inner.set_overwrite(guild_id, channel_id, overwrite);
        self.clock.excluding(call).await
    }

    async fn kick(
        &self,
        guild_id: u64,
        user_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        self.clock
            .excluding(self.inner.kick(guild_id, user_id, reason))
            .await
    }

    async fn ban(
        &self,
        guild_id: u64,
        user_id: u64,
        delete_message_seconds: u32,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        let call = self
            .inner
            .ban(guild_id, user_id, delete_message_seconds, reason);
        self.clock.excluding(call).await
    }

    async fn timeout(
        &self,
        guild_id: u64,
        user_id: u64,
        seconds: u32,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        let call = self.inner.timeout(guild_id, user_id, seconds, reason);
        self.clock.excluding(call).await
    }

    async fn unban(
        &self,
        guild_id: u64,
        user_id: u64,
        reason: Option<&str>,
    ) -> Result<(), DiscordError> {
        let call = self.inner.unban(guild_id, user_id, reason);
        self.clock.excluding(call).await
    }

    async fn purge(&self, guild_id: u64, channel_id: u64, count: u32) -> Result<u32, DiscordError> {
        self.clock
            .excluding(self.inner.purge(guild_id, channel_id, count))
            .await
    }

    async fn reactions(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        emoji: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<u64>, DiscordError> {
        let call = self
            .inner
            .reactions(guild_id, channel_id, message_id, emoji, after, limit);
        self.clock.excluding(call).await
    }

    async fn channel_messages(
        &self,
        guild_id: u64,
        channel_id: u64,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<PastMessage>, DiscordError> {
        let call = self
            .inner
            .channel_messages(guild_id, channel_id, before, limit);
        self.clock.excluding(call).await
    }

    async fn attachment(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        attachment_id: u64,
        max_bytes: u64,
    ) -> Result<(Attachment, Vec<u8>), DiscordError> {
        let call =
            self.inner
                .attachment(guild_id, channel_id, message_id, attachment_id, max_bytes);
        self.clock.excluding(call).await
    }

    async fn overwrite_guild_commands(
        &self,
        guild_id: u64,
        commands: &serde_json::Value,
    ) -> Result<(), DiscordError> {
        let call = self.inner.overwrite_guild_commands(guild_id, commands);
        self.clock.excluding(call).await
    }
}
