//! Kick, ban, unban, time out and purge — capability
//! [`Moderation`](crate::Capability::Moderation).
//!
//! Targets above the bot in the role hierarchy are refused by Discord.

use crate::{Error, Snowflake, route};

/// Longest timeout Discord allows: 28 days.
pub use townes_limits::moderation::MAX_TIMEOUT_SECONDS;

/// Kicks `user_id`; `reason` goes to Discord's audit log.
pub fn kick(user_id: Snowflake, reason: Option<&str>) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::moderation::kick(user_id, reason),
        mock: crate::testing::call(crate::Capability::Moderation, |h| h.kick(user_id, reason)),
    )
}

/// Bans `user_id`, deleting their messages of the last `delete_message_seconds`.
pub fn ban(
    user_id: Snowflake,
    delete_message_seconds: u32,
    reason: Option<&str>,
) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::moderation::ban(
            user_id,
            delete_message_seconds,
            reason
        ),
        mock: crate::testing::call(crate::Capability::Moderation, |h| {
            h.ban(user_id, delete_message_seconds, reason)
        }),
    )
}

/// Lifts the ban on `user_id`; `Error::NotFound` when they are not banned.
pub fn unban(user_id: Snowflake, reason: Option<&str>) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::moderation::unban(user_id, reason),
        mock: crate::testing::call(crate::Capability::Moderation, |h| h.unban(user_id, reason)),
    )
}

/// Times `user_id` out for `seconds` (at most [`MAX_TIMEOUT_SECONDS`]); 0 lifts
/// a timeout.
pub fn timeout(user_id: Snowflake, seconds: u32, reason: Option<&str>) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::moderation::timeout(user_id, seconds, reason),
        mock: crate::testing::call(crate::Capability::Moderation, |h| {
            h.timeout(user_id, seconds, reason)
        }),
    )
}

/// Deletes up to `count` (1-100) recent messages in `channel_id`; returns how many
/// were deleted.
pub fn purge(channel_id: Snowflake, count: u32) -> Result<u32, Error> {
    route!(
        wasm: crate::bindings::townes::feature::moderation::purge(channel_id, count),
        mock: crate::testing::call(crate::Capability::Moderation, |h| h.purge(channel_id, count)),
    )
}
