//! `scheduler`: durable delayed calls to the feature's `on-schedule`, in this
//! guild. Jobs live in the store and survive restarts. A (guild, feature) holds
//! at most the plan's `pending_jobs`, and a job runs at least
//! [`MIN_DELAY_SECONDS`] after it was scheduled, so a job that schedules
//! another cannot make the host spin.

use super::Effect;
use crate::runtime::HostState;
use crate::runtime::bindings::townes::feature::scheduler::Host;
use crate::runtime::wit::{Capability, Error};

const MAX_DELAY_SECONDS: u32 = 366 * 24 * 3600;
/// Shorter delays are rounded up to this.
pub const MIN_DELAY_SECONDS: u32 = 1;
const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

impl Host for HostState {
    async fn schedule(
        &mut self,
        name: String,
        payload: String,
        delay_seconds: u32,
    ) -> Result<String, Error> {
        const CALL: &str = "scheduler.schedule";
        self.begin(Capability::Scheduler, CALL)?;
        let result = if delay_seconds > MAX_DELAY_SECONDS {
            Err(Error::InvalidArgument(format!(
                "delay is at most {MAX_DELAY_SECONDS} seconds (a year)"
            )))
        } else if payload.len() > MAX_PAYLOAD_BYTES || name.is_empty() || name.len() > 64 {
            Err(Error::InvalidArgument(format!(
                "a job name is 1 to 64 bytes and its payload at most {MAX_PAYLOAD_BYTES} bytes"
            )))
        } else {
            let delay = delay_seconds.max(MIN_DELAY_SECONDS);
            let run_at = chrono::Utc::now() + chrono::Duration::seconds(delay.into());
            self.store
                .schedule_job(
                    &self.scope,
                    &name,
                    &payload,
                    run_at,
                    self.limits.pending_jobs,
                )
                .await
                .map_err(Error::from)
        };
        self.finish(CALL, result, |job_id| {
            Some(Effect::JobScheduled {
                job_id: job_id.clone(),
                name: name.clone(),
                delay_seconds: delay_seconds.max(MIN_DELAY_SECONDS),
            })
        })
    }

    async fn cancel(&mut self, job_id: String) -> Result<bool, Error> {
        const CALL: &str = "scheduler.cancel";
        self.begin(Capability::Scheduler, CALL)?;
        let result = self
            .store
            .cancel_job(&self.scope, &job_id)
            .await
            .map_err(Error::from);
        self.finish(CALL, result, |&cancelled| {
            cancelled.then(|| Effect::JobCancelled {
                job_id: job_id.clone(),
            })
        })
    }
}
