//! The three guided ways off the hosted platform (seed 001, ADR 0020), and a
//! member's erasure.
//!
//! - **Move to self-host**: a licence for the self-hosted runner and the
//!   environment it needs; the hosted runner retires when that runner
//!   activates the licence, or at the scheduled date; the data is purged
//!   after the retention window (the tenant, its billing and licences stay:
//!   the self-hosted runner renews its lease here).
//! - **Remove bot**: the guild's (or every guild's) commands unregistered and,
//!   for the whole tenant, its licences revoked, now; purge after retention.
//! - **Non-payment**: started by the job when billing reports a failed
//!   payment (grace: everything runs); read-only once billing ends the grace
//!   period (commands answer, nothing changes, exports still work); retired
//!   after the read-only days; purged after retention. A payment at any step
//!   before the purge cancels it; so may the tenant, to go on with the free
//!   plan.
//!
//! [`Offboarder::tick`] is the job (hourly in `townes serve`); it takes the
//! time, so tests drive the flows through weeks in milliseconds. Every step is
//! one transaction (see `store/offboarding.rs`).

use crate::licensing::server::LicenseServer;
use crate::store::{
    BillingAccount, BillingStatus, NewOffboarding, Offboarding, OffboardingKind, OffboardingState,
    OffboardingStep, Started, Store, StoreError,
};
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Arc;
use std::time::Duration;

/// How often `townes serve` runs [`Offboarder::tick`].
pub const TICK_EVERY: Duration = Duration::from_secs(3600);

/// How long the licence a move to self-hosting issues is valid.
const SELF_HOST_LICENSE_DAYS: i64 = 365;

/// The offboarding settings (`townes serve --help`, `townes api --help`).
#[derive(clap::Args, Clone, Debug)]
pub struct OffboardingConfig {
    /// Days a retired guild's data is kept before it is purged (30 to 60).
    #[arg(
        long = "retention-days",
        env = "TOWNES_RETENTION_DAYS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(30..=60)
    )]
    pub retention_days: u32,
    /// Days an unpaid tenant's guilds stay read-only before they are retired.
    #[arg(
        long = "read-only-days",
        env = "TOWNES_READ_ONLY_DAYS",
        default_value_t = 14,
        value_parser = clap::value_parser!(u32).range(1..=90)
    )]
    pub read_only_days: u32,
    /// Days a move to self-hosting waits for the self-hosted runner to
    /// activate its licence before the hosted runner retires anyway.
    #[arg(
        long = "self-host-retire-days",
        env = "TOWNES_SELF_HOST_RETIRE_DAYS",
        default_value_t = 14,
        value_parser = clap::value_parser!(u32).range(1..=90)
    )]
    pub self_host_days: u32,
}

impl Default for OffboardingConfig {
    fn default() -> Self {
        OffboardingConfig {
            retention_days: 30,
            read_only_days: 14,
            self_host_days: 14,
        }
    }
}

impl OffboardingConfig {
    fn retention(&self) -> TimeDelta {
        TimeDelta::days(self.retention_days.into())
    }
}

/// Why a flow could not start or change.
#[derive(Debug, thiserror::Error)]
pub enum OffboardingError {
    #[error("no offboarding {0} for this tenant")]
    Unknown(String),
    #[error("an offboarding ({}, {}) is already under way for {}", .0.kind.as_str(), .0.state.as_str(), .0.guild_id.map_or("every guild".to_string(), |g| format!("guild {g}")))]
    AlreadyOpen(Box<Offboarding>),
    #[error("offboarding {id} is {}: {why}", .state.as_str())]
    WrongState {
        id: String,
        state: OffboardingState,
        why: &'static str,
    },
    #[error("guild {0} is not one of the tenant's guilds")]
    NotTenantGuild(u64),
    #[error(
        "self-hosting licences are not issued here: set TOWNES_LICENSE_SIGNING_KEY (townes license keygen) to move tenants to self-hosting"
    )]
    LicensingOff,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a move to self-hosting hands the tenant: the licence and the
/// environment of the self-hosted runner. Shown once (the licence text is
/// not kept).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SelfHostKit {
    pub offboarding: Offboarding,
    /// `NAME=value` lines for the self-hosted runner's `.env`.
    pub env: Vec<(String, String)>,
}

/// What one run of the job did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    /// Non-payment flows started.
    pub started: u32,
    /// Steps taken (read-only, retired, canceled by a payment).
    pub moved: u32,
    /// Flows whose data was purged.
    pub purged: u32,
}

/// Runs the flows.
pub struct Offboarder {
    store: Store,
    config: OffboardingConfig,
    /// The licence signer, when this platform issues self-hosting licences.
    licensing: Option<Arc<LicenseServer>>,
    /// Where self-hosted runners reach this platform (`LICENSE_SERVER_BASE`).
    public_url: String,
}

impl Offboarder {
    pub fn new(
        store: Store,
        config: OffboardingConfig,
        licensing: Option<Arc<LicenseServer>>,
        public_url: impl Into<String>,
    ) -> Offboarder {
        Offboarder {
            store,
            config,
            licensing,
            public_url: public_url.into(),
        }
    }

    pub fn config(&self) -> &OffboardingConfig {
        &self.config
    }

    /// A tenant's flows, newest first.
    pub async fn flows(&self, tenant_id: &str) -> Result<Vec<Offboarding>, OffboardingError> {
        Ok(self.store.offboardings_of_tenant(tenant_id).await?)
    }

    /// Moves the tenant to self-hosting: a licence on its plan, the runner's
    /// environment, and the hosted runner's retirement scheduled.
    pub async fn start_self_host(
        &self,
        tenant_id: &str,
        started_by: &str,
        now: DateTime<Utc>,
    ) -> Result<SelfHostKit, OffboardingError> {
        let licensing = self
            .licensing
            .as_ref()
            .ok_or(OffboardingError::LicensingOff)?;
        let tenant = self
            .store
            .tenant(tenant_id)
            .await?
            .ok_or_else(|| OffboardingError::Unknown(tenant_id.to_string()))?;
        self.refuse_if_open(tenant_id, None).await?;
        let (license_id, license) = licensing
            .issue_license(
                &self.store,
                tenant_id,
                &tenant.plan,
                now,
                TimeDelta::days(SELF_HOST_LICENSE_DAYS),
            )
            .await?;
        let started = self
            .start(NewOffboarding {
                tenant_id: tenant_id.to_string(),
                guild_id: None,
                kind: OffboardingKind::SelfHost,
                state: OffboardingState::AwaitingActivation,
                export_id: None,
                license_id: Some(license_id.clone()),
                started_by: started_by.to_string(),
                retire_at: Some(now + TimeDelta::days(self.config.self_host_days.into())),
                purge_at: None,
                revoke_licenses: false,
            })
            .await;
        let flow = match started {
            Ok(flow) => flow,
            Err(error) => {
                // Another move started meanwhile: this licence is never handed out.
                self.store
                    .revoke_license(&license_id, "issued for a move that did not start", now)
                    .await?;
                return Err(error);
            }
        };
        let env = vec![
            ("TOWNESDEV_LICENSE".to_string(), license),
            ("LICENSE_SERVER_BASE".to_string(), self.public_url.clone()),
            (
                "TOWNESDEV_LICENSE_PUBLIC_KEY".to_string(),
                licensing.public_key(),
            ),
        ];
        Ok(SelfHostKit {
            offboarding: flow,
            env,
        })
    }

    /// Removes the bot from one guild of the tenant, or from all of them
    /// (`guild_id` `None`, which also revokes the tenant's licences): its
    /// commands are unregistered now, its data purged after retention.
    pub async fn start_remove_bot(
        &self,
        tenant_id: &str,
        guild_id: Option<u64>,
        started_by: &str,
        now: DateTime<Utc>,
    ) -> Result<Offboarding, OffboardingError> {
        if let Some(guild) = guild_id {
            let owned = self
                .store
                .guild(guild)
                .await?
                .is_some_and(|g| g.tenant_id.as_deref() == Some(tenant_id));
            if !owned {
                return Err(OffboardingError::NotTenantGuild(guild));
            }
        }
        self.start(NewOffboarding {
            tenant_id: tenant_id.to_string(),
            guild_id,
            kind: OffboardingKind::RemoveBot,
            state: OffboardingState::Retired,
            export_id: None,
            license_id: None,
            started_by: started_by.to_string(),
            retire_at: Some(now),
            purge_at: Some(now + self.config.retention()),
            revoke_licenses: guild_id.is_none(),
        })
        .await
    }

    /// Calls a flow off before its purge: the guilds run again (a move to
    /// self-hosting also revokes the licence it issued). A non-payment flow
    /// in grace is billing's to end (pay, or wait for the grace period).
    pub async fn cancel(
        &self,
        tenant_id: &str,
        id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Offboarding, OffboardingError> {
        let flow = self
            .store
            .offboarding(id)
            .await?
            .filter(|f| f.tenant_id == tenant_id)
            .ok_or_else(|| OffboardingError::Unknown(id.to_string()))?;
        match flow.state {
            OffboardingState::Purged => {
                return Err(OffboardingError::WrongState {
                    id: flow.id,
                    state: flow.state,
                    why: "its data is deleted; nothing is left to bring back",
                });
            }
            OffboardingState::Canceled => {
                return Err(OffboardingError::WrongState {
                    id: flow.id,
                    state: flow.state,
                    why: "it was already called off",
                });
            }
            OffboardingState::Grace => {
                return Err(OffboardingError::WrongState {
                    id: flow.id,
                    state: flow.state,
                    why: "everything still runs; pay the open invoice in the billing portal to end it",
                });
            }
            _ => {}
        }
        let step = OffboardingStep {
            from: flow.state,
            to: OffboardingState::Canceled,
            retire_at: None,
            purge_at: None,
            at: now,
            details: serde_json::json!({ "by": by }),
        };
        if !self.store.advance_offboarding(&flow.id, &step).await? {
            let now_state = self
                .store
                .offboarding(id)
                .await?
                .map_or(flow.state, |f| f.state);
            return Err(OffboardingError::WrongState {
                id: flow.id,
                state: now_state,
                why: "it moved on meanwhile; look at it again",
            });
        }
        if let Some(license) = &flow.license_id {
            self.store
                .revoke_license(license, "move to self-hosting called off", now)
                .await?;
        }
        self.store
            .offboarding(id)
            .await?
            .ok_or_else(|| OffboardingError::Unknown(id.to_string()))
    }

    /// The job: starts non-payment flows for tenants whose payment failed,
    /// moves every open flow whose time or condition has come, and purges
    /// what is past its retention.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, OffboardingError> {
        let mut report = TickReport::default();
        for account in self
            .store
            .billing_accounts_in(BillingStatus::PastDue)
            .await?
        {
            let new = NewOffboarding {
                tenant_id: account.tenant_id.clone(),
                guild_id: None,
                kind: OffboardingKind::NonPayment,
                state: OffboardingState::Grace,
                export_id: None,
                license_id: None,
                started_by: "billing".into(),
                retire_at: None,
                purge_at: None,
                revoke_licenses: false,
            };
            if let Started::Started(_) = self.store.start_offboarding(&new).await? {
                report.started += 1;
            }
        }
        for flow in self.store.open_offboardings().await? {
            match self.step_of(&flow, now).await? {
                Some(Next::Step(step)) => {
                    report.moved +=
                        u32::from(self.store.advance_offboarding(&flow.id, &step).await?);
                }
                Some(Next::Purge) => {
                    // A tenant that keeps self-hosting keeps its tenant,
                    // billing and licences: its runner renews its lease here.
                    let tenant = flow.guild_id.is_none() && flow.kind != OffboardingKind::SelfHost;
                    report.purged +=
                        u32::from(self.store.purge_offboarding(&flow, tenant, now).await?);
                }
                None => {}
            }
        }
        Ok(report)
    }

    /// What the flow does next at `now`, if anything.
    async fn step_of(
        &self,
        flow: &Offboarding,
        now: DateTime<Utc>,
    ) -> Result<Option<Next>, OffboardingError> {
        let step = |to, retire_at, purge_at, details| {
            Some(Next::Step(OffboardingStep {
                from: flow.state,
                to,
                retire_at,
                purge_at,
                at: now,
                details,
            }))
        };
        let retention = Some(now + self.config.retention());
        if flow.kind == OffboardingKind::NonPayment {
            let account = self.store.billing_account(&flow.tenant_id).await?;
            if account.as_ref().is_some_and(paying) {
                return Ok(step(
                    OffboardingState::Canceled,
                    None,
                    None,
                    serde_json::json!({ "by": "billing", "why": "paid" }),
                ));
            }
            if flow.state == OffboardingState::Grace
                && !account
                    .as_ref()
                    .is_some_and(|a| a.status == BillingStatus::PastDue)
            {
                return Ok(step(
                    OffboardingState::ReadOnly,
                    Some(now + TimeDelta::days(self.config.read_only_days.into())),
                    None,
                    serde_json::json!({
                        "why": "the grace period ended without a payment",
                        "export": "POST /exports still works: take your data with you",
                    }),
                ));
            }
        }
        Ok(match flow.state {
            OffboardingState::ReadOnly if flow.retire_at.is_some_and(|at| now >= at) => step(
                OffboardingState::Retired,
                None,
                retention,
                serde_json::json!({ "why": "read-only days are over" }),
            ),
            OffboardingState::AwaitingActivation => {
                let activated = match &flow.license_id {
                    Some(license) => self.store.license_activation_count(license).await? > 0,
                    None => false,
                };
                if activated || flow.retire_at.is_some_and(|at| now >= at) {
                    step(
                        OffboardingState::Retired,
                        None,
                        retention,
                        serde_json::json!({
                            "why": if activated {
                                "the self-hosted runner activated its licence"
                            } else {
                                "the scheduled retirement date came"
                            },
                        }),
                    )
                } else {
                    None
                }
            }
            OffboardingState::Retired if flow.purge_at.is_some_and(|at| now >= at) => {
                Some(Next::Purge)
            }
            _ => None,
        })
    }

    /// Refuses a new flow while one is open for the same guilds.
    async fn refuse_if_open(
        &self,
        tenant_id: &str,
        guild_id: Option<u64>,
    ) -> Result<(), OffboardingError> {
        let open = self
            .store
            .offboardings_of_tenant(tenant_id)
            .await?
            .into_iter()
            .find(|f| {
                f.state.is_open()
                    && (f.guild_id.is_none() || guild_id.is_none() || f.guild_id == guild_id)
            });
        match open {
            Some(open) => Err(OffboardingError::AlreadyOpen(Box::new(open))),
            None => Ok(()),
        }
    }

    async fn start(&self, new: NewOffboarding) -> Result<Offboarding, OffboardingError> {
        match self.store.start_offboarding(&new).await? {
            Started::Started(flow) => Ok(*flow),
            Started::AlreadyOpen(open) => Err(OffboardingError::AlreadyOpen(open)),
        }
    }
}

enum Next {
    Step(OffboardingStep),
    Purge,
}

/// A subscription that is paid (or trying): a non-payment flow ends.
fn paying(account: &BillingAccount) -> bool {
    matches!(
        account.status,
        BillingStatus::Active | BillingStatus::Trialing
    )
}
