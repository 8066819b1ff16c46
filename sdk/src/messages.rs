//! Send, edit and delete messages, add reactions and read who reacted — capability
//! [`Messages`](crate::Capability::Messages).
//!
//! The admin may restrict the grant to a channel allow-list; a channel outside it
//! answers `Error::Denied(Capability::Messages)`. The host checks Discord's limits
//! (see [`MessageBody::validate`]) and answers `Error::InvalidArgument` when a
//! message exceeds them.

use crate::{Error, MessageBody, Snowflake, route};

/// Posts a message in `channel_id`; returns its id.
///
/// `body` is anything that converts into a [`MessageBody`]: a `&str`/`String`
/// (plain text), an [`Embed`](crate::Embed), or a built `MessageBody`.
pub fn send(channel_id: Snowflake, body: impl Into<MessageBody>) -> Result<Snowflake, Error> {
    let body = body.into();
    route!(
        wasm: crate::bindings::townes::feature::messages::send(channel_id, &body),
        mock: crate::testing::call(crate::Capability::Messages, |h| h.send_message(channel_id, body)),
    )
}

/// Replaces the body of a message the bot posted.
pub fn edit(
    channel_id: Snowflake,
    message_id: Snowflake,
    body: impl Into<MessageBody>,
) -> Result<(), Error> {
    let body = body.into();
    route!(
        wasm: crate::bindings::townes::feature::messages::edit(channel_id, message_id, &body),
        mock: crate::testing::call(crate::Capability::Messages, |h| {
            h.edit_message(channel_id, message_id, body)
        }),
    )
}

/// Deletes a message.
pub fn delete(channel_id: Snowflake, message_id: Snowflake) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::messages::delete(channel_id, message_id),
        mock: crate::testing::call(crate::Capability::Messages, |h| {
            h.delete_message(channel_id, message_id)
        }),
    )
}

/// Adds the bot's reaction: a unicode emoji (`"👍"`) or a custom one (`"name:id"`).
pub fn react(channel_id: Snowflake, message_id: Snowflake, emoji: &str) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::messages::react(channel_id, message_id, emoji),
        mock: crate::testing::call(crate::Capability::Messages, |h| {
            h.react(channel_id, message_id, emoji)
        }),
    )
}

/// Up to `limit` (1-100) ids of the users who reacted to a message with
/// `emoji`, in id order, above `after`; page with the last id until a page
/// comes back short ([`all_reactions`] does).
pub fn reactions(
    channel_id: Snowflake,
    message_id: Snowflake,
    emoji: &str,
    after: Option<Snowflake>,
    limit: u32,
) -> Result<Vec<Snowflake>, Error> {
    route!(
        wasm: crate::bindings::townes::feature::messages::reactions(channel_id, message_id, emoji, after, limit),
        mock: crate::testing::call(crate::Capability::Messages, |h| {
            h.list_reactions(channel_id, message_id, emoji, after, limit)
        }),
    )
}

/// Every user who reacted to a message with `emoji`, at most `max`, read a
/// page of 100 at a time.
pub fn all_reactions(
    channel_id: Snowflake,
    message_id: Snowflake,
    emoji: &str,
    max: usize,
) -> Result<Vec<Snowflake>, Error> {
    const PAGE: u32 = 100;
    let mut users = Vec::new();
    loop {
        let page = reactions(channel_id, message_id, emoji, users.last().copied(), PAGE)?;
        let short = page.len() < PAGE as usize;
        users.extend(page);
        if short || users.len() >= max {
            users.truncate(max);
            return Ok(users);
        }
    }
}
