//! Live updates to the guild's dashboard — free to use, no capability to
//! request. Every dashboard subscribed to the guild receives
//! `{"type": kind, "feature": <your id>, "guild_id", "data"}` at once; it is a
//! notification, not a record (a dashboard that is closed misses it).
//!
//! ```no_run
//! use townes_sdk::{json, live};
//! live::publish("ticket_update", &json!({ "id": "42", "status": "closed" }))?;
//! # Ok::<(), townes_sdk::Error>(())
//! ```

use crate::{Error, route};
use townes_limits::live as limits;

/// Sends `data` (as JSON) as a `kind` event. `kind` is 1-32 characters of
/// `a-z _`, not one of the host's own (`audit_log`, `command_executed`, …);
/// `data` is at most 16 KiB of JSON. At most 600
/// events per minute per guild.
pub fn publish(kind: &str, data: &impl serde::Serialize) -> Result<(), Error> {
    let data = serde_json::to_string(data)
        .map_err(|e| Error::InvalidArgument(format!("live data: {e}")))?;
    limits::check_event(kind, &data)?;
    route!(
        wasm: crate::bindings::townes::feature::live::publish(kind, &data),
        mock: crate::testing::live(kind, &data),
    )
}
