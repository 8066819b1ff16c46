//! Read members and guild info; send direct messages — capability
//! [`Members`](crate::Capability::Members).

use crate::{Error, GuildInfo, Member, MessageBody, Snowflake, route};

/// The member `user_id` of this guild; `Error::NotFound` when not a member.
pub fn get(user_id: Snowflake) -> Result<Member, Error> {
    route!(
        wasm: crate::bindings::townes::feature::members::get(user_id),
        mock: crate::testing::call(crate::Capability::Members, |h| h.get_member(user_id)),
    )
}

/// This guild's id, name, member count and owner.
pub fn guild() -> Result<GuildInfo, Error> {
    route!(
        wasm: crate::bindings::townes::feature::members::guild(),
        mock: crate::testing::call(crate::Capability::Members, |h| Ok(h.guild_info())),
    )
}

/// Sends a direct message; returns its id. Fails with `Error::Unavailable` when
/// the user does not accept DMs — answer in the channel instead.
pub fn send_dm(user_id: Snowflake, body: impl Into<MessageBody>) -> Result<Snowflake, Error> {
    let body = body.into();
    route!(
        wasm: crate::bindings::townes::feature::members::send_dm(user_id, &body),
        mock: crate::testing::call(crate::Capability::Members, |h| h.send_dm(user_id, body)),
    )
}
