//! Billing: what a tenant pays for and what that lets its guilds use.
//!
//! - The operator's plans (`TOWNES_PLANS`, see [`crate::runtime::limits`]) say
//!   what each plan allows and which Stripe price bills it.
//! - A tenant's account ([`BillingAccount`]) moves between free, trialing,
//!   active, past due and canceled; every move goes through
//!   [`Store::change_billing`], which also sets the plan of the tenant's guilds
//!   (the runtime applies it on their next invocation) and audits the move in
//!   each guild, which every dashboard hears on its live feed.
//! - [`stripe_api`]: Checkout, the billing portal and meter events (async-stripe);
//!   [`webhook`]: Stripe's signed events, each applied once.
//! - [`Billing::expire`] (hourly) ends trials and unpaid plans Stripe did not
//!   end; [`Billing::report_usage`] sends each tenant's daily AI tokens to a
//!   Stripe meter, once per tenant and day.
//!
//! Without `STRIPE_SECRET` billing runs without Stripe: plans and trials work,
//! checkout and the portal answer that billing is off and say what to set.

pub mod stripe_api;
pub mod webhook;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use std::time::Duration;

use crate::runtime::{BASE_PLAN, FREE_PLAN, Plan, Plans};
use crate::store::{
    BillingAccount, BillingChange, BillingOutcome, BillingStatus, SeenEvent, Store, StoreError,
};
use stripe_api::{CheckoutPage, CheckoutRequest, StripeApi};

/// Billing's settings (`townes serve --help`, `townes api --help`).
#[derive(clap::Args, Clone)]
pub struct BillingConfig {
    /// Days of the one trial of the base plan a tenant may start.
    #[arg(long = "trial-days", env = "TRIAL_DAYS", default_value_t = 30)]
    pub trial_days: u32,
    /// Days a tenant keeps its plan after a payment failed.
    #[arg(
        long = "billing-grace-days",
        env = "TOWNES_BILLING_GRACE_DAYS",
        default_value_t = 7
    )]
    pub grace_days: u32,
    /// Stripe's secret API key (sk_…); without it billing runs without Stripe.
    #[arg(long = "stripe-secret", env = "STRIPE_SECRET", hide_env_values = true)]
    pub stripe_secret: Option<String>,
    /// The webhook endpoint's signing secret (whsec_…), for POST /webhooks/stripe.
    #[arg(
        long = "stripe-webhook-secret",
        env = "STRIPE_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub stripe_webhook_secret: Option<String>,
    /// Stripe's API address (tests point it at a fake Stripe).
    #[arg(
        long = "stripe-api-base",
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com/"
    )]
    pub stripe_api_base: String,
    /// The event name of the Stripe meter AI tokens are reported to.
    #[arg(
        long = "stripe-ai-meter",
        env = "STRIPE_AI_METER",
        default_value = "ai_tokens"
    )]
    pub ai_meter: String,
    /// Add-ons a checkout may include, as `name=price_…` pairs (comma-separated).
    #[arg(long = "stripe-addons", env = "STRIPE_ADDONS", value_delimiter = ',', value_parser = parse_addon)]
    pub addons: Vec<(String, String)>,
    /// The dashboard page Checkout and the portal return to.
    #[arg(
        long = "billing-return-url",
        env = "TOWNES_BILLING_RETURN_URL",
        default_value = "http://localhost:3000/billing"
    )]
    pub return_url: String,
}

fn parse_addon(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(name, price)| !name.is_empty() && !price.is_empty())
        .map(|(name, price)| (name.trim().to_string(), price.trim().to_string()))
        .ok_or_else(|| format!("`{text}` is not an add-on: write name=price_…"))
}

impl BillingConfig {
    /// No Stripe, the default trial and grace: tests and the playground.
    pub fn local() -> BillingConfig {
        BillingConfig {
            trial_days: 30,
            grace_days: 7,
            stripe_secret: None,
            stripe_webhook_secret: None,
            stripe_api_base: "https://api.stripe.com/".into(),
            ai_meter: "ai_tokens".into(),
            addons: Vec::new(),
            return_url: "http://localhost:3000/billing".into(),
        }
    }
}

impl std::fmt::Debug for BillingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingConfig")
            .field("trial_days", &self.trial_days)
            .field("grace_days", &self.grace_days)
            .field(
                "stripe_secret",
                &self.stripe_secret.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "stripe_webhook_secret",
                &self.stripe_webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("stripe_api_base", &self.stripe_api_base)
            .field("ai_meter", &self.ai_meter)
            .field("addons", &self.addons)
            .field("return_url", &self.return_url)
            .finish()
    }
}

/// Why a billing request was refused; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("{0}")]
    Off(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Signature(#[from] webhook::SignatureError),
    #[error("Stripe could not be reached or refused the call ({0}); try again shortly")]
    Stripe(String),
    /// An event this platform cannot apply yet (a price no plan has).
    #[error("{0}")]
    Unmapped(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How far past a date the expiry job waits before acting on Stripe's behalf:
/// Stripe's own event normally comes first.
const STRIPE_SLACK: TimeDelta = TimeDelta::days(1);
/// How long after a UTC day ends its usage is final (every process flushed its
/// counters, which it does every minute).
const USAGE_SETTLES: TimeDelta = TimeDelta::minutes(10);
/// How many past days the meter job looks at: reports owed longer than this
/// are past what Stripe accepts (35 days) anyway.
const METER_DAYS: u64 = 30;

/// Tenants' billing. Cheap to share (`Arc`).
pub struct Billing {
    store: Store,
    plans: Plans,
    config: BillingConfig,
    stripe: Option<StripeApi>,
}

impl Billing {
    /// Billing over `store`. A missing or unusable Stripe configuration leaves
    /// Stripe off (logged once, with the fix), never stops the platform.
    pub fn new(store: Store, plans: Plans, config: BillingConfig) -> Billing {
        let stripe = match &config.stripe_secret {
            None => {
                tracing::info!(
                    "billing runs without Stripe: plans and trials work, checkout and the portal are off; set STRIPE_SECRET and STRIPE_WEBHOOK_SECRET to sell plans"
                );
                None
            }
            Some(secret) => match StripeApi::new(secret, &config.stripe_api_base) {
                Ok(api) => {
                    if config.stripe_webhook_secret.is_none() {
                        tracing::warn!(
                            "STRIPE_WEBHOOK_SECRET is not set: Stripe's events are refused, so payments will not change plans; copy the endpoint's signing secret (whsec_…) from Stripe's dashboard"
                        );
                    }
                    Some(api)
                }
                Err(error) => {
                    tracing::error!(error = %stripe_api::describe(&error), api_base = %config.stripe_api_base, "billing runs without Stripe: the Stripe client could not be built; check STRIPE_API_BASE");
                    None
                }
            },
        };
        Billing {
            store,
            plans,
            config,
            stripe,
        }
    }

    fn stripe(&self) -> Result<&StripeApi, BillingError> {
        self.stripe.as_ref().ok_or_else(|| {
            BillingError::Off(
                "billing with Stripe is off on this platform: the operator sets STRIPE_SECRET (and STRIPE_WEBHOOK_SECRET) to turn it on".into(),
            )
        })
    }

    /// The change that puts `account` in `status` on `plan`, with the plan and
    /// guild cap its guilds get.
    fn change(
        &self,
        account: BillingAccount,
        action: &'static str,
        details: serde_json::Value,
    ) -> BillingChange {
        let applied = if account.status.has_plan() {
            account.plan.clone()
        } else {
            FREE_PLAN.to_string()
        };
        BillingChange {
            guild_cap: self.plans.get(&applied).guilds,
            applied_plan: applied,
            account,
            action,
            details,
        }
    }

    /// Starts the tenant's one trial of the base plan, for `TRIAL_DAYS`.
    pub async fn start_trial(
        &self,
        tenant_id: &str,
        now: DateTime<Utc>,
    ) -> Result<BillingAccount, BillingError> {
        if !self.plans.defines(BASE_PLAN) {
            return Err(BillingError::Off(format!(
                "this platform's plans have no `{BASE_PLAN}` plan to try; the operator adds it to TOWNES_PLANS"
            )));
        }
        let mut refusal = None;
        let outcome = self
            .store
            .change_billing(tenant_id, None, |before| {
                let account = before
                    .cloned()
                    .unwrap_or_else(|| BillingAccount::new(tenant_id, BASE_PLAN));
                if let Some(started) = account.trial_started_at {
                    refusal = Some(format!(
                        "this tenant's trial was used (started {}); one trial per tenant — subscribe with POST /tenants/{tenant_id}/billing/checkout",
                        started.date_naive()
                    ));
                    return None;
                }
                if account.status.has_plan() {
                    refusal = Some(format!(
                        "this tenant is already on the {} plan ({}); a trial is for tenants on the free plan",
                        account.plan,
                        account.status.as_str()
                    ));
                    return None;
                }
                let ends = now + TimeDelta::days(self.config.trial_days.into());
                let account = BillingAccount {
                    plan: BASE_PLAN.to_string(),
                    status: BillingStatus::Trialing,
                    trial_started_at: Some(now),
                    trial_ends_at: Some(ends),
                    ..account
                };
                Some(self.change(
                    account,
                    "billing.trial_started",
                    serde_json::json!({"trial_ends_at": ends}),
                ))
            })
            .await?;
        match (outcome, refusal) {
            (_, Some(refusal)) => Err(BillingError::Conflict(refusal)),
            (BillingOutcome::Changed { after, .. }, None) => Ok(*after),
            _ => Err(BillingError::Conflict(
                "the trial could not start; try again".into(),
            )),
        }
    }

    /// A Checkout page for the base plan (and `addons`), creating the tenant's
    /// Stripe customer on first use. A trial not yet used comes with it; the
    /// days left of a running card-less trial carry over.
    pub async fn checkout(
        &self,
        tenant_id: &str,
        tenant_name: Option<&str>,
        addons: &[String],
        now: DateTime<Utc>,
    ) -> Result<CheckoutPage, BillingError> {
        let stripe = self.stripe()?;
        let price = self
            .plans
            .get(BASE_PLAN)
            .stripe_price
            .clone()
            .filter(|_| self.plans.defines(BASE_PLAN))
            .ok_or_else(|| {
                BillingError::Off(format!(
                    "the `{BASE_PLAN}` plan has no `stripe_price` in TOWNES_PLANS; the operator sets it to the Stripe price that bills it"
                ))
            })?;
        let mut prices = vec![price];
        for addon in addons {
            let known = self.config.addons.iter().find(|(name, _)| name == addon);
            let Some((_, price)) = known else {
                let offered: Vec<&str> =
                    self.config.addons.iter().map(|(n, _)| n.as_str()).collect();
                return Err(BillingError::Invalid(format!(
                    "no add-on `{addon}`; this platform offers: {}",
                    if offered.is_empty() {
                        "none".to_string()
                    } else {
                        offered.join(", ")
                    }
                )));
            };
            prices.push(price.clone());
        }
        let account = self.store.billing_account(tenant_id).await?;
        if let Some(account) = &account
            && account.stripe_subscription_id.is_some()
            && account.status.has_plan()
        {
            return Err(BillingError::Conflict(format!(
                "this tenant already subscribes ({}); change or cancel it in the billing portal: POST /tenants/{tenant_id}/billing/portal",
                account.status.as_str()
            )));
        }
        let trial_days = match &account {
            None => Some(self.config.trial_days),
            Some(a) if a.trial_started_at.is_none() => Some(self.config.trial_days),
            Some(a) if a.status == BillingStatus::Trialing => a
                .trial_ends_at
                .map(|ends| ((ends - now).num_hours() + 23) / 24)
                .filter(|days| *days >= 1)
                .map(|days| days as u32),
            Some(_) => None,
        };
        let customer = self.customer_of(tenant_id, tenant_name, account).await?;
        let success = format!("{}?checkout=success", self.config.return_url);
        let cancel = format!("{}?checkout=canceled", self.config.return_url);
        stripe
            .create_checkout(CheckoutRequest {
                customer: &customer,
                tenant_id,
                prices,
                trial_days,
                success_url: &success,
                cancel_url: &cancel,
            })
            .await
            .map_err(|e| BillingError::Stripe(stripe_api::describe(&e)))
    }

    /// The tenant's Stripe customer, created and recorded on first use.
    async fn customer_of(
        &self,
        tenant_id: &str,
        tenant_name: Option<&str>,
        account: Option<BillingAccount>,
    ) -> Result<String, BillingError> {
        if let Some(customer) = account.as_ref().and_then(|a| a.stripe_customer_id.clone()) {
            return Ok(customer);
        }
        let customer = self
            .stripe()?
            .create_customer(tenant_id, tenant_name)
            .await
            .map_err(|e| BillingError::Stripe(stripe_api::describe(&e)))?;
        let recorded = customer.clone();
        self.store
            .change_billing(tenant_id, None, |before| {
                let account = before
                    .cloned()
                    .unwrap_or_else(|| BillingAccount::new(tenant_id, BASE_PLAN));
                if account.stripe_customer_id.is_some() {
                    return None;
                }
                let account = BillingAccount {
                    stripe_customer_id: Some(recorded),
                    ..account
                };
                Some(self.change(account, "billing.customer_created", serde_json::json!({})))
            })
            .await?;
        // The customer is created idempotently per tenant, so a racing request
        // recorded this same id.
        Ok(customer)
    }

    /// A billing-portal page where the tenant manages its subscription.
    pub async fn portal(&self, tenant_id: &str) -> Result<String, BillingError> {
        let stripe = self.stripe()?;
        let customer = self
            .store
            .billing_account(tenant_id)
            .await?
            .and_then(|a| a.stripe_customer_id)
            .ok_or_else(|| {
                BillingError::Conflict(format!(
                    "this tenant has no Stripe customer yet; subscribe first: POST /tenants/{tenant_id}/billing/checkout"
                ))
            })?;
        stripe
            .create_portal(&customer, &self.config.return_url)
            .await
            .map_err(|e| BillingError::Stripe(stripe_api::describe(&e)))
    }

    /// Applies one delivery of Stripe's webhook: the signature over the raw
    /// body first, then the event, at most once by its id.
    pub async fn handle_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<WebhookOutcome, BillingError> {
        let secret = self.config.stripe_webhook_secret.as_deref().ok_or_else(|| {
            BillingError::Off(
                "Stripe webhooks are off: the operator sets STRIPE_WEBHOOK_SECRET to the endpoint's signing secret".into(),
            )
        })?;
        webhook::verify(signature, body, secret, now.timestamp())?;
        let event: webhook::Event = serde_json::from_slice(body)
            .map_err(|e| BillingError::Invalid(format!("the event is not a Stripe event: {e}")))?;
        if self.store.stripe_event_seen(&event.id).await? {
            return Ok(WebhookOutcome::Duplicate);
        }
        let seen = SeenEvent {
            id: &event.id,
            kind: &event.kind,
        };
        let outcome = match event.kind.as_str() {
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => {
                let sub: webhook::Subscription = parse_object(&event)?;
                self.apply_subscription(seen, &sub, event.created, now)
                    .await?
            }
            "customer.subscription.trial_will_end" => {
                let sub: webhook::Subscription = parse_object(&event)?;
                self.notice_of(seen, Some(&sub.customer), "billing.trial_ending", now)
                    .await?
            }
            "invoice.payment_failed" => {
                let invoice: webhook::CustomerObject = parse_object(&event)?;
                self.payment_failed(seen, invoice.customer.as_deref(), now)
                    .await?
            }
            "invoice.paid" => {
                let invoice: webhook::CustomerObject = parse_object(&event)?;
                self.payment_succeeded(seen, invoice.customer.as_deref())
                    .await?
            }
            "checkout.session.completed" => {
                let session: webhook::CustomerObject = parse_object(&event)?;
                self.notice_of(
                    seen,
                    session.customer.as_deref(),
                    "billing.checkout_completed",
                    now,
                )
                .await?
            }
            _ => {
                self.store.record_stripe_event(seen, None).await?;
                BillingOutcome::Unchanged
            }
        };
        Ok(match outcome {
            BillingOutcome::Duplicate => WebhookOutcome::Duplicate,
            BillingOutcome::Unchanged => WebhookOutcome::Ignored,
            BillingOutcome::Changed { .. } => WebhookOutcome::Applied,
        })
    }

    /// The tenant whose Stripe customer this is; `None` for a customer of
    /// another system on the same Stripe account.
    async fn tenant_of(&self, customer: Option<&str>) -> Result<Option<String>, BillingError> {
        let Some(customer) = customer else {
            return Ok(None);
        };
        Ok(self
            .store
            .billing_account_of_customer(customer)
            .await?
            .map(|a| a.tenant_id))
    }

    /// Applies `decide` to the account of Stripe customer `customer`, with the
    /// event recorded as seen either way (a customer that is not ours changes
    /// nothing).
    async fn change_for_customer(
        &self,
        seen: SeenEvent<'_>,
        customer: Option<&str>,
        decide: impl FnOnce(Option<&BillingAccount>) -> Option<BillingChange>,
    ) -> Result<BillingOutcome, BillingError> {
        let Some(tenant_id) = self.tenant_of(customer).await? else {
            self.store.record_stripe_event(seen, None).await?;
            return Ok(BillingOutcome::Unchanged);
        };
        Ok(self
            .store
            .change_billing(&tenant_id, Some(seen), decide)
            .await?)
    }

    async fn apply_subscription(
        &self,
        seen: SeenEvent<'_>,
        sub: &webhook::Subscription,
        created: i64,
        now: DateTime<Utc>,
    ) -> Result<BillingOutcome, BillingError> {
        let price = sub.price().unwrap_or_default();
        let Some((plan, _)) = self.plans.by_price(price) else {
            // Not recorded as seen: Stripe retries for days, time for the
            // operator to add the price to TOWNES_PLANS.
            return Err(BillingError::Unmapped(format!(
                "subscription {} bills price {price}, which no plan in TOWNES_PLANS has as its stripe_price",
                sub.id
            )));
        };
        let status = match sub.status.as_str() {
            "trialing" => Some(BillingStatus::Trialing),
            "active" => Some(BillingStatus::Active),
            "past_due" | "unpaid" => Some(BillingStatus::PastDue),
            "canceled" | "incomplete_expired" | "paused" => Some(BillingStatus::Canceled),
            // `incomplete`: the first payment is still being made.
            _ => None,
        };
        let grace = TimeDelta::days(self.config.grace_days.into());
        self.change_for_customer(seen, Some(&sub.customer), |before| {
            let status = status?;
            let account = before.cloned()?;
            if account.stripe_event_at.is_some_and(|at| created < at) {
                return None; // An older state arriving late.
            }
            let trial_end = sub.trial_end.and_then(from_unix);
            let account = BillingAccount {
                plan: plan.to_string(),
                status,
                trial_started_at: match status {
                    BillingStatus::Trialing => account.trial_started_at.or(Some(now)),
                    _ => account.trial_started_at,
                },
                trial_ends_at: trial_end.or(account.trial_ends_at),
                current_period_end: sub.period_end().and_then(from_unix),
                cancel_at_period_end: sub.cancel_at_period_end,
                grace_until: match status {
                    BillingStatus::PastDue => account.grace_until.or(Some(now + grace)),
                    _ => None,
                },
                stripe_subscription_id: Some(sub.id.clone()),
                stripe_event_at: Some(created),
                ..account
            };
            let action = match status {
                BillingStatus::Canceled => "billing.canceled",
                BillingStatus::PastDue => "billing.past_due",
                _ => "billing.subscription_updated",
            };
            Some(self.change(
                account,
                action,
                serde_json::json!({"subscription": &sub.id, "stripe_status": &sub.status}),
            ))
        })
        .await
    }

    async fn payment_failed(
        &self,
        seen: SeenEvent<'_>,
        customer: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<BillingOutcome, BillingError> {
        let grace = TimeDelta::days(self.config.grace_days.into());
        self.change_for_customer(seen, customer, |before| {
            let account = before.cloned()?;
            if !matches!(
                account.status,
                BillingStatus::Active | BillingStatus::Trialing | BillingStatus::PastDue
            ) {
                return None;
            }
            let until = account.grace_until.unwrap_or(now + grace);
            let account = BillingAccount {
                status: BillingStatus::PastDue,
                grace_until: Some(until),
                ..account
            };
            Some(self.change(
                account,
                "billing.payment_failed",
                serde_json::json!({"grace_until": until}),
            ))
        })
        .await
    }

    async fn payment_succeeded(
        &self,
        seen: SeenEvent<'_>,
        customer: Option<&str>,
    ) -> Result<BillingOutcome, BillingError> {
        self.change_for_customer(seen, customer, |before| {
            // A paid invoice only ends a grace period: the subscription's
            // own events say when a trial turns into a paid plan.
            let account = before
                .cloned()
                .filter(|a| a.status == BillingStatus::PastDue)?;
            let account = BillingAccount {
                status: BillingStatus::Active,
                grace_until: None,
                ..account
            };
            Some(self.change(account, "billing.payment_recovered", serde_json::json!({})))
        })
        .await
    }

    /// Audits an event that changes no state (and tells the dashboards).
    async fn notice_of(
        &self,
        seen: SeenEvent<'_>,
        customer: Option<&str>,
        action: &'static str,
        now: DateTime<Utc>,
    ) -> Result<BillingOutcome, BillingError> {
        self.change_for_customer(seen, customer, |before| {
            let account = BillingAccount {
                updated_at: now,
                ..before.cloned()?
            };
            Some(self.change(account, action, serde_json::json!({})))
        })
        .await
    }

    /// Ends what Stripe did not end: card-less trials past their end, grace
    /// periods over, subscriptions set to cancel whose period ended, and paid
    /// periods long over without a renewal. Each move is checked again on the
    /// locked row, so processes running this at once move each tenant once.
    pub async fn expire(&self, now: DateTime<Utc>) -> Result<Vec<Expired>, BillingError> {
        let mut expired = Vec::new();
        let grace = TimeDelta::days(self.config.grace_days.into());
        for status in [
            BillingStatus::Trialing,
            BillingStatus::PastDue,
            BillingStatus::Active,
        ] {
            for account in self.store.billing_accounts_in(status).await? {
                let tenant_id = account.tenant_id.clone();
                let mut action = "";
                let outcome = self
                    .store
                    .change_billing(&tenant_id, None, |before| {
                        let account = before.cloned()?;
                        let (status, why) = expiry(&account, now)?;
                        action = why;
                        let grace_until = match status {
                            BillingStatus::PastDue => Some(now + grace),
                            _ => None,
                        };
                        let account = BillingAccount {
                            status,
                            grace_until,
                            ..account
                        };
                        Some(self.change(account, why, serde_json::json!({"at": now})))
                    })
                    .await?;
                if let BillingOutcome::Changed { after, .. } = outcome {
                    tracing::info!(tenant = %tenant_id, action, status = after.status.as_str(), "billing: expired");
                    expired.push(Expired {
                        tenant_id,
                        action,
                        status: after.status,
                    });
                }
            }
        }
        Ok(expired)
    }

    /// Reports each Stripe customer's AI tokens per finished UTC day to the
    /// AI meter: once per tenant and day (the value is frozen when first
    /// written, and its identifier is also the idempotency key), retried on
    /// the next run while Stripe is unreachable.
    pub async fn report_usage(&self, now: DateTime<Utc>) -> Result<MeterRun, BillingError> {
        let mut run = MeterRun::default();
        let Some(stripe) = &self.stripe else {
            return Ok(run);
        };
        let settled = (now - USAGE_SETTLES).date_naive();
        for account in self.store.billing_accounts_with_customer().await? {
            let Some(customer) = &account.stripe_customer_id else {
                continue;
            };
            let reports = self.store.meter_reports(&account.tenant_id).await?;
            for back in 1..=METER_DAYS {
                let Some(day) = settled.checked_sub_days(Days::new(back)) else {
                    continue;
                };
                let known = reports
                    .iter()
                    .find(|r| r.day == day && r.meter == self.config.ai_meter);
                if known.is_some_and(|r| r.reported_at.is_some()) {
                    continue;
                }
                let used = self.store.tenant_ai_tokens(&account.tenant_id, day).await?;
                if known.is_none() && used == 0 {
                    continue;
                }
                let report = self
                    .store
                    .meter_report(&account.tenant_id, &self.config.ai_meter, day, used)
                    .await?;
                let sent = stripe
                    .report_meter(
                        &self.config.ai_meter,
                        customer,
                        report.value,
                        &report.identifier,
                        end_of(day),
                    )
                    .await;
                match sent {
                    Ok(()) => {
                        self.store.meter_attempted(&report.identifier, None).await?;
                        run.sent += 1;
                    }
                    Err(e) if stripe_api::is_duplicate_meter_event(&e) => {
                        self.store.meter_attempted(&report.identifier, None).await?;
                        run.sent += 1;
                    }
                    Err(e) => {
                        let error = stripe_api::describe(&e);
                        tracing::warn!(tenant = %account.tenant_id, %day, %error, "billing: could not report AI usage to Stripe; retrying on the next run");
                        self.store
                            .meter_attempted(&report.identifier, Some(&error))
                            .await?;
                        run.failed += 1;
                    }
                }
            }
        }
        Ok(run)
    }

    /// The tenant's billing state with its limits and usage, for the dashboard.
    pub async fn view(
        &self,
        tenant_id: &str,
        now: DateTime<Utc>,
    ) -> Result<BillingState, BillingError> {
        let account = self.store.billing_account(tenant_id).await?;
        let account = account.unwrap_or_else(|| BillingAccount::new(tenant_id, BASE_PLAN));
        let applied = if account.status.has_plan() {
            account.plan.clone()
        } else {
            FREE_PLAN.to_string()
        };
        let plan = self.plans.get(&applied).clone();
        let today = now.date_naive();
        let mut ai_today = 0;
        let mut busiest = 0;
        let guilds = self.store.guilds_of_tenant(tenant_id).await?;
        for guild in &guilds {
            let used = self
                .store
                .usage(guild.id, today, today)
                .await?
                .first()
                .map_or(0, |u| u.ai_tokens);
            ai_today += used;
            busiest = busiest.max(used);
        }
        let guilds_in = guilds.iter().filter(|g| g.left_at.is_none()).count() as u64;
        Ok(BillingState {
            trial_available: account.trial_started_at.is_none() && !account.status.has_plan(),
            renews_at: account.current_period_end.filter(|_| {
                account.status == BillingStatus::Active && !account.cancel_at_period_end
            }),
            stripe_enabled: self.stripe.is_some(),
            usage: BillingUsage {
                guilds: guilds_in,
                ai_tokens_today: ai_today,
                ai_tokens_today_busiest_guild: busiest,
            },
            applied_plan: applied,
            plan,
            account,
        })
    }
}

/// What [`Billing::expire`] does to an account at `now`, and the audit action.
fn expiry(account: &BillingAccount, now: DateTime<Utc>) -> Option<(BillingStatus, &'static str)> {
    let stripe_managed = account.stripe_subscription_id.is_some();
    match account.status {
        BillingStatus::Trialing => {
            let ends = account.trial_ends_at?;
            if !stripe_managed && ends <= now {
                Some((BillingStatus::Free, "billing.trial_ended"))
            } else if stripe_managed && ends + STRIPE_SLACK <= now {
                Some((BillingStatus::PastDue, "billing.trial_unpaid"))
            } else {
                None
            }
        }
        BillingStatus::PastDue => account
            .grace_until
            .filter(|until| *until <= now)
            .map(|_| (BillingStatus::Canceled, "billing.grace_ended")),
        BillingStatus::Active => {
            let end = account.current_period_end?;
            if account.cancel_at_period_end && end + STRIPE_SLACK <= now {
                Some((BillingStatus::Canceled, "billing.period_ended"))
            } else if end + STRIPE_SLACK * 3 <= now {
                Some((BillingStatus::PastDue, "billing.renewal_missing"))
            } else {
                None
            }
        }
        BillingStatus::Free | BillingStatus::Canceled => None,
    }
}

fn parse_object<T: serde::de::DeserializeOwned>(event: &webhook::Event) -> Result<T, BillingError> {
    serde_json::from_value(event.data.object.clone()).map_err(|e| {
        BillingError::Invalid(format!(
            "event {} ({}) does not carry the object we expect: {e}",
            event.id, event.kind
        ))
    })
}

fn from_unix(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

/// The last second of a UTC day, as Unix time: when its usage happened.
fn end_of(day: NaiveDate) -> i64 {
    day.and_hms_opt(23, 59, 59)
        .map_or(0, |t| t.and_utc().timestamp())
}

/// What one delivery did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    Applied,
    /// Applied before: nothing changed.
    Duplicate,
    /// Nothing to do (an event type or customer we do not follow, or state
    /// older than what we have).
    Ignored,
}

impl WebhookOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Applied => "applied",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Ignored => "ignored",
        }
    }
}

/// One move the expiry job made.
#[derive(Clone, Debug, PartialEq)]
pub struct Expired {
    pub tenant_id: String,
    pub action: &'static str,
    pub status: BillingStatus,
}

/// What one metering run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeterRun {
    pub sent: u32,
    pub failed: u32,
}

/// A tenant's billing as the dashboard shows it.
#[derive(Clone, Debug)]
pub struct BillingState {
    pub account: BillingAccount,
    /// The plan its guilds run on now.
    pub applied_plan: String,
    pub plan: Plan,
    pub trial_available: bool,
    pub renews_at: Option<DateTime<Utc>>,
    pub stripe_enabled: bool,
    pub usage: BillingUsage,
}

#[derive(Clone, Debug)]
pub struct BillingUsage {
    /// Guilds of the tenant the bot is in.
    pub guilds: u64,
    pub ai_tokens_today: u64,
    /// The most one guild used today (the daily cap is per guild).
    pub ai_tokens_today_busiest_guild: u64,
}

/// How often the platform runs [`Billing::expire`] (seed 004's hourly
/// `expire_licenses`) and [`Billing::report_usage`].
pub const EXPIRY_EVERY: Duration = Duration::from_secs(3600);
pub const METER_EVERY: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    fn account(status: BillingStatus) -> BillingAccount {
        BillingAccount {
            status,
            ..BillingAccount::new("t", BASE_PLAN)
        }
    }

    #[test]
    fn the_expiry_job_ends_what_stripe_did_not() {
        let now = Utc::now();
        let mut trial = account(BillingStatus::Trialing);
        trial.trial_ends_at = Some(now - TimeDelta::seconds(1));
        assert_eq!(
            expiry(&trial, now),
            Some((BillingStatus::Free, "billing.trial_ended"))
        );
        trial.stripe_subscription_id = Some("sub_1".into());
        assert_eq!(
            expiry(&trial, now),
            None,
            "Stripe ends its own trials first"
        );
        assert_eq!(
            expiry(&trial, now + STRIPE_SLACK),
            Some((BillingStatus::PastDue, "billing.trial_unpaid"))
        );
        let mut late = account(BillingStatus::PastDue);
        late.grace_until = Some(now + TimeDelta::days(1));
        assert_eq!(expiry(&late, now), None);
        assert_eq!(
            expiry(&late, now + TimeDelta::days(1)),
            Some((BillingStatus::Canceled, "billing.grace_ended"))
        );
        let mut leaving = account(BillingStatus::Active);
        leaving.current_period_end = Some(now);
        assert_eq!(expiry(&leaving, now + STRIPE_SLACK), None);
        leaving.cancel_at_period_end = true;
        assert_eq!(
            expiry(&leaving, now + STRIPE_SLACK),
            Some((BillingStatus::Canceled, "billing.period_ended"))
        );
        assert_eq!(expiry(&account(BillingStatus::Free), now), None);
    }

    #[test]
    fn debug_output_never_shows_stripe_secrets() {
        let config = BillingConfig {
            stripe_secret: Some("sk_live_topsecret".into()),
            stripe_webhook_secret: Some("whsec_topsecret".into()),
            ..BillingConfig::local()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
    }
}
