//! `invocation`: what the host knows of the current invocation beyond its
//! arguments — the invoker's permissions in the channel, so a feature can
//! hold a button's click to the same rights as the command that posted it.
//! Free to import (it reveals only what the member showed by invoking); each
//! call still spends host-call fuel.

use super::Cap;
use crate::wit::townes::feature::invocation::Host;

/// What `invocation` tells; the default is nobody's invocation.
#[derive(Default)]
pub struct InvocationCtx {
    /// The invoker's effective permissions in the channel; 0 when nobody
    /// invoked (events, jobs, migrations).
    pub invoker_permissions: u64,
}

impl Host for Cap<'_, InvocationCtx> {
    async fn invoker_permissions(&mut self) -> u64 {
        // Out of fuel, the answer fails closed: no permissions.
        match self.calls.spend("invocation.invoker-permissions") {
            Ok(()) => self.ctx.invoker_permissions,
            Err(_) => 0,
        }
    }
}
