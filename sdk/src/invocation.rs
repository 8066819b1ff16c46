//! What the host knows of the current invocation beyond its arguments. Free
//! to use: no capability to request.
//!
//! A button, menu or modal can be clicked by anyone who sees the message. The
//! host holds clicks to the roles the guild requires for the feature, but a
//! feature that posts a moderator-only panel checks the clicker itself:
//!
//! ```no_run
//! use townes_sdk::{Error, invocation};
//! const MANAGE_MESSAGES: u64 = 1 << 13;
//! if invocation::invoker_permissions() & MANAGE_MESSAGES == 0 {
//!     return Err(Error::Denied(townes_sdk::Capability::Moderation));
//! }
//! # Ok::<(), Error>(())
//! ```

/// The effective permissions (Discord's bit set) in the channel of the member
/// who ran the command, clicked, chose or submitted. 0 for events, scheduled
/// jobs and migrations, and once the invocation's host calls are used up.
pub fn invoker_permissions() -> u64 {
    crate::route!(
        wasm: crate::bindings::townes::feature::invocation::invoker_permissions(),
        mock: crate::testing::invoker_permissions(),
    )
}
