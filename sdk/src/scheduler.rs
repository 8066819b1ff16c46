//! Later calls to this feature's `on_schedule` — capability
//! [`Scheduler`](crate::Capability::Scheduler).

use crate::{Error, route};

/// Calls [`Feature::on_schedule`](crate::Feature::on_schedule) with `name` and
/// `payload` after `delay_seconds`, in this guild; returns the job id. Jobs
/// survive restarts.
pub fn schedule(name: &str, payload: &str, delay_seconds: u32) -> Result<String, Error> {
    route!(
        wasm: crate::bindings::townes::feature::scheduler::schedule(name, payload, delay_seconds),
        mock: crate::testing::call(crate::Capability::Scheduler, |h| {
            h.schedule(name, payload, delay_seconds)
        }),
    )
}

/// Cancels a pending job; returns whether there was one.
pub fn cancel(job_id: &str) -> Result<bool, Error> {
    route!(
        wasm: crate::bindings::townes::feature::scheduler::cancel(job_id),
        mock: crate::testing::call(crate::Capability::Scheduler, |h| h.cancel(job_id)),
    )
}
