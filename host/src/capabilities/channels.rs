//! `channels`: create and delete channels and set permission overwrites.

use super::Effect;
use crate::runtime::HostState;
use crate::runtime::bindings::townes::feature::channels::{ChannelSpec, Host, PermissionOverwrite};
use crate::runtime::wit::{Capability, Error};

impl Host for HostState {
    async fn create(&mut self, spec: ChannelSpec) -> Result<u64, Error> {
        const CALL: &str = "channels.create";
        self.begin(Capability::Channels, CALL)?;
        let name_len = spec.name.chars().count();
        let result = if !(1..=100).contains(&name_len) {
            Err(Error::InvalidArgument(format!(
                "channel name is {name_len} characters; Discord allows 1 to 100"
            )))
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
        let result = self
            .discord
            .delete_channel(self.guild_id, channel_id)
            .await
            .map_err(Error::from);
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
        let result = self
            .discord
            .set_overwrite(self.guild_id, channel_id, &overwrite)
            .await
            .map_err(Error::from);
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
