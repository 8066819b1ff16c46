//! Add and remove roles — capability [`Roles`](crate::Capability::Roles).
//!
//! The grant has a ceiling: a role at or above the bot's top role, one carrying
//! Administrator, or one above the admin's ceiling answers
//! `Error::Denied(Capability::Roles)`.

use crate::{Error, Snowflake, route};

/// Gives `role_id` to `user_id`; `reason` goes to Discord's audit log.
pub fn add(user_id: Snowflake, role_id: Snowflake, reason: Option<&str>) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::roles::add(user_id, role_id, reason),
        mock: crate::testing::call(crate::Capability::Roles, |h| h.add_role(user_id, role_id, reason)),
    )
}

/// Takes `role_id` from `user_id`; `reason` goes to Discord's audit log.
pub fn remove(user_id: Snowflake, role_id: Snowflake, reason: Option<&str>) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::roles::remove(user_id, role_id, reason),
        mock: crate::testing::call(crate::Capability::Roles, |h| {
            h.remove_role(user_id, role_id, reason)
        }),
    )
}
