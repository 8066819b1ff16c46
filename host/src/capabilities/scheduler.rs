//! `scheduler`: durable delayed calls to the feature's `on-schedule`, in this
//! guild. Jobs live in the store and survive restarts. A (guild, feature) holds
//! at most the plan's `pending_jobs`, and a job runs at least a second after it
//! was scheduled (`townes_limits::scheduler::MIN_DELAY_SECONDS`), so a job that
//! schedules another cannot make the host spin.

use super::{Cap, Effect};
use crate::store::{Scope, Store};
use crate::wit::townes::feature::scheduler::Host;
use crate::wit::{Capability, Error};
use townes_limits::scheduler as limits;

/// What `scheduler` needs: where jobs are kept, whose they are, and how many
/// may be pending at once.
pub struct SchedulerCtx {
    pub store: Store,
    pub scope: Scope,
    pub pending_jobs: u32,
}

impl Host for Cap<'_, SchedulerCtx> {
    async fn schedule(
        &mut self,
        name: String,
        payload: String,
        delay_seconds: u32,
    ) -> Result<String, Error> {
        const CALL: &str = "scheduler.schedule";
        self.calls.begin(Capability::Scheduler, CALL)?;
        let delay = limits::effective_delay(delay_seconds);
        let result = match limits::check_job(&name, &payload, delay_seconds) {
            Err(e) => Err(e.into()),
            Ok(()) => {
                let run_at = chrono::Utc::now() + chrono::Duration::seconds(delay.into());
                let scope = &self.ctx.scope;
                let id = crate::discord::delivery::next_job_id((
                    scope.guild_id,
                    scope.feature_id.as_str(),
                ))
                .unwrap_or_else(crate::store::random_id);
                self.ctx
                    .store
                    .schedule_job_as(
                        &id,
                        &self.ctx.scope,
                        &name,
                        &payload,
                        run_at,
                        self.ctx.pending_jobs,
                    )
                    .await
                    .map_err(Error::from)
            }
        };
        self.calls.finish(CALL, result, |job_id| {
            Some(Effect::JobScheduled {
                job_id: job_id.clone(),
                name: name.clone(),
                delay_seconds: delay,
            })
        })
    }

    async fn cancel(&mut self, job_id: String) -> Result<bool, Error> {
        const CALL: &str = "scheduler.cancel";
        self.calls.begin(Capability::Scheduler, CALL)?;
        let result = self
            .ctx
            .store
            .cancel_job(&self.ctx.scope, &job_id)
            .await
            .map_err(Error::from);
        self.calls.finish(CALL, result, |&cancelled| {
            cancelled.then(|| Effect::JobCancelled {
                job_id: job_id.clone(),
            })
        })
    }
}
