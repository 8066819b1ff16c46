//! `channels`: create and delete channels and set permission overwrites, only
//! in channels (and under categories) on the grant's allow-list when the admin
//! set one, and never allowing a dangerous permission the admin did not allow.

use super::{Cap, DiscordCtx, Effect};
use crate::wit::townes::feature::channels::{ChannelSpec, Host, PermissionOverwrite};
use crate::wit::{Capability, Error};

impl Host for Cap<'_, DiscordCtx> {
    async fn create(&mut self, spec: ChannelSpec) -> Result<u64, Error> {
        const CALL: &str = "channels.create";
        self.calls.begin(Capability::Channels, CALL)?;
        let in_scope = match (spec.parent_id, &self.calls.grant.channels) {
            (Some(parent), _) => self.calls.grant.check_channel(Capability::Channels, parent),
            // With an allow-list, new channels go under an allowed category.
            (None, Some(_)) => Err(Error::Denied(Capability::Channels)),
            (None, None) => Ok(()),
        };
        let result = if let Err(e) = in_scope.and_then(|()| {
            spec.overwrites.iter().try_for_each(|o| {
                self.calls
                    .grant
                    .check_permissions(Capability::Channels, o.allow)
            })
        }) {
            Err(e)
        } else if let Err(e) = townes_limits::channels::check_spec(
            &spec.name,
            spec.topic.as_deref(),
            spec.overwrites.len(),
        ) {
            Err(e.into())
        } else {
            self.ctx
                .discord
                .create_channel(self.ctx.guild_id, &spec)
                .await
                .map_err(Error::from)
        };
        self.calls.finish(CALL, result, |&channel_id| {
            Some(Effect::ChannelCreated {
                channel_id,
                name: spec.name.clone(),
            })
        })
    }

    async fn delete(&mut self, channel_id: u64) -> Result<(), Error> {
        const CALL: &str = "channels.delete";
        self.calls.begin(Capability::Channels, CALL)?;
        let result = match self
            .calls
            .grant
            .check_channel(Capability::Channels, channel_id)
        {
            Ok(()) => self
                .ctx
                .discord
                .delete_channel(self.ctx.guild_id, channel_id)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls.finish(CALL, result, |_| {
            Some(Effect::ChannelDeleted { channel_id })
        })
    }

    async fn set_overwrite(
        &mut self,
        channel_id: u64,
        overwrite: PermissionOverwrite,
    ) -> Result<(), Error> {
        const CALL: &str = "channels.set-overwrite";
        self.calls.begin(Capability::Channels, CALL)?;
        let result = match self
            .calls
            .grant
            .check_channel(Capability::Channels, channel_id)
            .and_then(|()| {
                self.calls
                    .grant
                    .check_permissions(Capability::Channels, overwrite.allow)
            }) {
            Ok(()) => self
                .ctx
                .discord
                .set_overwrite(self.ctx.guild_id, channel_id, &overwrite)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls.finish(CALL, result, |_| {
            Some(Effect::OverwriteSet {
                channel_id,
                target_id: overwrite.id,
                allow: overwrite.allow,
                deny: overwrite.deny,
            })
        })
    }
}
