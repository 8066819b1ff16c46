//! Create and delete channels and set permission overwrites — capability
//! [`Channels`](crate::Capability::Channels).

use crate::{Error, Snowflake, route};

pub use crate::{ChannelKind, ChannelSpec, OverwriteTarget, PermissionOverwrite};

/// Creates a channel (see [`ChannelSpec::text`] and friends); returns its id.
pub fn create(spec: &ChannelSpec) -> Result<Snowflake, Error> {
    route!(
        wasm: crate::bindings::townes::feature::channels::create(spec),
        mock: crate::testing::call(crate::Capability::Channels, |h| h.create_channel(spec)),
    )
}

/// Deletes a channel.
pub fn delete(channel_id: Snowflake) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::channels::delete(channel_id),
        mock: crate::testing::call(crate::Capability::Channels, |h| h.delete_channel(channel_id)),
    )
}

/// Sets (replaces) one permission overwrite on a channel.
pub fn set_overwrite(channel_id: Snowflake, overwrite: PermissionOverwrite) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::channels::set_overwrite(channel_id, overwrite),
        mock: crate::testing::call(crate::Capability::Channels, |h| {
            h.set_overwrite(channel_id, overwrite)
        }),
    )
}
