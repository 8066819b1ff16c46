//! `channels`: create and delete channels and set permission overwrites, only
//! in channels (and under categories) on the grant's allow-list when the admin
//! set one, and never allowing a dangerous permission the admin did not allow.

use super::Effect;
use crate::runtime::HostState;
use crate::runtime::bindings::townes::feature::channels::{ChannelSpec, Host, PermissionOverwrite};
use crate::runtime::wit::{Capability, Error};

impl Host for HostState {
    async fn create(&mut self, spec: ChannelSpec) -> Result<u64, Error> {
        const CALL: &str = "channels.create";
        self.begin(Capability::Channels, CALL)?;
        let name_len = spec.name.chars().count();
        let topic_len = spec.topic.as_deref().map_or(0, |t| t.chars().count());
        let in_scope = match (spec.parent_id, &self.grant.channels) {
            (Some(parent), _) => self.grant.check_channel(Capability::Channels, parent),
            // With an allow-list, new channels go under an allowed category.
            (None, Some(_)) => Err(Error::Denied(Capability::Channels)),
            (None, None) => Ok(()),
        };
        let result = if let Err(e) = in_scope.and_then(|()| {
            spec.overwrites
                .iter()
                .try_for_each(|o| self.grant.check_permissions(Capability::Channels, o.allow))
        }) {
            Err(e)
        } else if !(1..=100).contains(&name_len) {
            Err(Error::InvalidArgument(format!(
                "channel name is {name_len} characters; Discord allows 1 to 100"
            )))
        } else if topic_len > 1024 || spec.overwrites.len() > 100 {
            Err(Error::InvalidArgument(
                "a channel topic is at most 1024 characters and a channel has at most 100 overwrites"
                    .into(),
            ))
        } else {
            self.discord
                .create_channel(self.guild_id, &spec)
                .await
                .map_err(Error::from)
        };
        self.finish(CALL, result, |&channel_id| {
            Some(Effect::ChannelCreated {
                channel_id,
                name: spec.name.clone(),
            })
        })
    }

    async fn delete(&mut self, channel_id: u64) -> Result<(), Error> {
        const CALL: &str = "channels.delete";
        self.begin(Capability::Channels, CALL)?;
        let result = match self.grant.check_channel(Capability::Channels, channel_id) {
            Ok(()) => self
                .discord
                .delete_channel(self.guild_id, channel_id)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result, |_| {
            Some(Effect::ChannelDeleted { channel_id })
        })
    }

    async fn set_overwrite(
        &mut self,
        channel_id: u64,
        overwrite: PermissionOverwrite,
    ) -> Result<(), Error> {
        const CALL: &str = "channels.set-overwrite";
        self.begin(Capability::Channels, CALL)?;
        let result = match self
            .grant
            .check_channel(Capability::Channels, channel_id)
            .and_then(|()| {
                self.grant
                    .check_permissions(Capability::Channels, overwrite.allow)
            }) {
            Ok(()) => self
                .discord
                .set_overwrite(self.guild_id, channel_id, &overwrite)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result, |_| {
            Some(Effect::OverwriteSet {
                channel_id,
                target_id: overwrite.id,
                allow: overwrite.allow,
                deny: overwrite.deny,
            })
        })
    }
}
