//! Write entries into the guild's audit log, which admins see in the dashboard —
//! capability [`Audit`](crate::Capability::Audit).

use crate::{Error, route};

/// Writes one audit entry: a short `action` (`"warn"`, `"ticket.close"`) and
/// free-form `details`.
pub fn write(action: &str, details: &str) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::audit::write(action, details),
        mock: crate::testing::call(crate::Capability::Audit, |h| h.audit(action, details)),
    )
}
