//! What tenants pay for: billing accounts, the Stripe events applied to them,
//! and the usage reported to Stripe's meters (migration 0012).
//!
//! Every change of an account goes through [`Store::change_billing`], one
//! transaction that also records the Stripe event (if any) as seen, sets the
//! plan of the tenant and of its guilds, and audits the change in each guild —
//! so a change is applied once, completely, and heard on every dashboard.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;

use super::{Store, StoreError, api_id, now, ts};

/// Where a tenant's billing is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingStatus {
    /// Nothing paid for: the free plan.
    Free,
    /// Trying the plan until `trial_ends_at`.
    Trialing,
    /// Paid and renewing (unless `cancel_at_period_end`).
    Active,
    /// A payment failed: the plan holds until `grace_until`.
    PastDue,
    /// Ended: back on the free plan.
    Canceled,
}

impl BillingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingStatus::Free => "free",
            BillingStatus::Trialing => "trialing",
            BillingStatus::Active => "active",
            BillingStatus::PastDue => "past_due",
            BillingStatus::Canceled => "canceled",
        }
    }

    fn parse(text: &str) -> BillingStatus {
        match text {
            "trialing" => BillingStatus::Trialing,
            "active" => BillingStatus::Active,
            "past_due" => BillingStatus::PastDue,
            "canceled" => BillingStatus::Canceled,
            _ => BillingStatus::Free,
        }
    }

    /// Whether the account's plan applies (otherwise its guilds are on free).
    pub fn has_plan(self) -> bool {
        matches!(
            self,
            BillingStatus::Trialing | BillingStatus::Active | BillingStatus::PastDue
        )
    }
}

/// A tenant's billing, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct BillingAccount {
    pub tenant_id: String,
    /// The plan subscribed to or tried.
    pub plan: String,
    pub status: BillingStatus,
    pub trial_started_at: Option<DateTime<Utc>>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub grace_until: Option<DateTime<Utc>>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    /// `created` of the newest Stripe subscription event applied.
    pub stripe_event_at: Option<i64>,
    pub updated_at: DateTime<Utc>,
}

impl BillingAccount {
    /// A tenant that never had billing: free, never trialed.
    pub fn new(tenant_id: &str, plan: &str) -> BillingAccount {
        BillingAccount {
            tenant_id: tenant_id.to_string(),
            plan: plan.to_string(),
            status: BillingStatus::Free,
            trial_started_at: None,
            trial_ends_at: None,
            current_period_end: None,
            cancel_at_period_end: false,
            grace_until: None,
            stripe_customer_id: None,
            stripe_subscription_id: None,
            stripe_event_at: None,
            updated_at: now(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    tenant_id: String,
    plan: String,
    status: String,
    trial_started_at: Option<DateTime<Utc>>,
    trial_ends_at: Option<DateTime<Utc>>,
    current_period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
    grace_until: Option<DateTime<Utc>>,
    stripe_customer_id: Option<String>,
    stripe_subscription_id: Option<String>,
    stripe_event_at: Option<i64>,
    updated_at: DateTime<Utc>,
}

impl From<AccountRow> for BillingAccount {
    fn from(r: AccountRow) -> BillingAccount {
        BillingAccount {
            tenant_id: r.tenant_id,
            plan: r.plan,
            status: BillingStatus::parse(&r.status),
            trial_started_at: r.trial_started_at,
            trial_ends_at: r.trial_ends_at,
            current_period_end: r.current_period_end,
            cancel_at_period_end: r.cancel_at_period_end,
            grace_until: r.grace_until,
            stripe_customer_id: r.stripe_customer_id,
            stripe_subscription_id: r.stripe_subscription_id,
            stripe_event_at: r.stripe_event_at,
            updated_at: r.updated_at,
        }
    }
}

/// `SELECT` of every account column, then `$tail` (a literal: SQL stays static).
macro_rules! select_accounts {
    ($tail:literal) => {
        concat!(
            "SELECT tenant_id, plan, status, trial_started_at, trial_ends_at,
                 current_period_end, cancel_at_period_end, grace_until, stripe_customer_id,
                 stripe_subscription_id, stripe_event_at, updated_at
             FROM billing_accounts ",
            $tail
        )
    };
}

/// A Stripe event behind a change, recorded as seen in the change's transaction.
#[derive(Clone, Debug)]
pub struct SeenEvent<'a> {
    pub id: &'a str,
    pub kind: &'a str,
}

/// What a change does: the account afterwards, and the plan its guilds run on.
#[derive(Clone, Debug)]
pub struct BillingChange {
    pub account: BillingAccount,
    /// The plan the tenant's guilds run on now (`free` unless the status has one).
    pub applied_plan: String,
    /// How many of the tenant's guilds the plan covers (the oldest first); the
    /// others run on `free`. `None`: all.
    pub guild_cap: Option<u32>,
    /// The audit action, e.g. `billing.trial_started`.
    pub action: &'static str,
    /// Shown in the audit entries beside the old and new status and plan.
    pub details: serde_json::Value,
}

/// What [`Store::change_billing`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum BillingOutcome {
    /// The event was applied before: nothing changed.
    Duplicate,
    /// The decision was to change nothing (recorded as seen when from an event).
    Unchanged,
    /// The account changed (to `after`); these guilds were told.
    Changed {
        after: Box<BillingAccount>,
        guilds: Vec<u64>,
    },
}

/// Why a report to a meter is owed, with its frozen value.
#[derive(Clone, Debug, PartialEq)]
pub struct MeterReport {
    pub tenant_id: String,
    pub meter: String,
    pub day: NaiveDate,
    pub value: u64,
    pub identifier: String,
    pub attempts: u32,
    pub reported_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct MeterRow {
    tenant_id: String,
    meter: String,
    day: NaiveDate,
    value: i64,
    identifier: String,
    attempts: i32,
    reported_at: Option<DateTime<Utc>>,
}

impl From<MeterRow> for MeterReport {
    fn from(r: MeterRow) -> MeterReport {
        MeterReport {
            tenant_id: r.tenant_id,
            meter: r.meter,
            day: r.day,
            value: r.value.max(0) as u64,
            identifier: r.identifier,
            attempts: r.attempts.max(0) as u32,
            reported_at: r.reported_at,
        }
    }
}

impl Store {
    pub async fn billing_account(
        &self,
        tenant_id: &str,
    ) -> Result<Option<BillingAccount>, StoreError> {
        let row: Option<AccountRow> = on_db!(&self.db, pool => {
            sqlx::query_as(select_accounts!("WHERE tenant_id = $1"))
                .bind(tenant_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(BillingAccount::from))
    }

    /// The account whose Stripe customer is `customer_id`.
    pub async fn billing_account_of_customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<BillingAccount>, StoreError> {
        let row: Option<AccountRow> = on_db!(&self.db, pool => {
            sqlx::query_as(select_accounts!("WHERE stripe_customer_id = $1"))
                .bind(customer_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(BillingAccount::from))
    }

    /// Accounts in `status`, for the expiry job.
    pub async fn billing_accounts_in(
        &self,
        status: BillingStatus,
    ) -> Result<Vec<BillingAccount>, StoreError> {
        let rows: Vec<AccountRow> = on_db!(&self.db, pool => {
            sqlx::query_as(select_accounts!("WHERE status = $1 ORDER BY tenant_id"))
                .bind(status.as_str())
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(BillingAccount::from).collect())
    }

    /// Accounts with a Stripe customer, for metering.
    pub async fn billing_accounts_with_customer(&self) -> Result<Vec<BillingAccount>, StoreError> {
        let rows: Vec<AccountRow> = on_db!(&self.db, pool => {
            sqlx::query_as(select_accounts!(
                "WHERE stripe_customer_id IS NOT NULL ORDER BY tenant_id"
            ))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(BillingAccount::from).collect())
    }

    /// Changes a tenant's billing in one transaction: records `event` as seen
    /// (a duplicate changes nothing), locks and reads the account, asks `decide`
    /// what it becomes (`None`: nothing), writes it, sets the plan of the tenant
    /// and its guilds, and audits the change in each guild (which the dashboards'
    /// live feed announces) and once for the tenant. An unknown tenant is refused
    /// with [`StoreError::InvalidArgument`].
    pub async fn change_billing(
        &self,
        tenant_id: &str,
        event: Option<SeenEvent<'_>>,
        decide: impl FnOnce(Option<&BillingAccount>) -> Option<BillingChange>,
    ) -> Result<BillingOutcome, StoreError> {
        let outcome = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            // A write first: the tenant's row is locked (Postgres) or the database
            // reserved (SQLite) before the account is read, so two changes of one
            // tenant (two processes, two webhook deliveries) run one after the other.
            let tenant: Option<String> =
                sqlx::query_scalar("UPDATE tenants SET plan = plan WHERE id = $1 RETURNING id")
                    .bind(tenant_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if tenant.is_none() {
                return Err(StoreError::InvalidArgument(format!("no tenant {tenant_id}")));
            }
            if let Some(event) = &event {
                let seen = sqlx::query(
                    "INSERT INTO stripe_events (id, type, tenant_id, received_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                )
                .bind(event.id)
                .bind(event.kind)
                .bind(tenant_id)
                .bind(now())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if seen == 0 {
                    tx.rollback().await?;
                    return Ok(BillingOutcome::Duplicate);
                }
            }
            let before: Option<BillingAccount> =
                sqlx::query_as::<_, AccountRow>(select_accounts!("WHERE tenant_id = $1"))
                .bind(tenant_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(BillingAccount::from);
            let Some(change) = decide(before.as_ref()).filter(|c| Some(&c.account) != before.as_ref())
            else {
                tx.commit().await?;
                return Ok(BillingOutcome::Unchanged);
            };
            let a = &change.account;
            sqlx::query(
                "INSERT INTO billing_accounts (tenant_id, plan, status, trial_started_at,
                     trial_ends_at, current_period_end, cancel_at_period_end, grace_until,
                     stripe_customer_id, stripe_subscription_id, stripe_event_at, updated_at,
                     guild_cap)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (tenant_id) DO UPDATE SET
                     plan = excluded.plan, status = excluded.status,
                     trial_started_at = excluded.trial_started_at,
                     trial_ends_at = excluded.trial_ends_at,
                     current_period_end = excluded.current_period_end,
                     cancel_at_period_end = excluded.cancel_at_period_end,
                     grace_until = excluded.grace_until,
                     stripe_customer_id = excluded.stripe_customer_id,
                     stripe_subscription_id = excluded.stripe_subscription_id,
                     stripe_event_at = excluded.stripe_event_at,
                     updated_at = excluded.updated_at,
                     guild_cap = excluded.guild_cap",
            )
            .bind(tenant_id)
            .bind(&a.plan)
            .bind(a.status.as_str())
            .bind(a.trial_started_at.map(ts))
            .bind(a.trial_ends_at.map(ts))
            .bind(a.current_period_end.map(ts))
            .bind(a.cancel_at_period_end)
            .bind(a.grace_until.map(ts))
            .bind(a.stripe_customer_id.as_deref())
            .bind(a.stripe_subscription_id.as_deref())
            .bind(a.stripe_event_at)
            .bind(now())
            .bind(change.guild_cap.map(i64::from))
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE tenants SET plan = $2 WHERE id = $1")
                .bind(tenant_id)
                .bind(&change.applied_plan)
                .execute(&mut *tx)
                .await?;
            // The plan covers the tenant's oldest guilds up to its cap (guilds the
            // bot left do not count); the rest run on free.
            let covered: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM guilds WHERE tenant_id = $1 AND left_at IS NULL
                 ORDER BY created_at, id LIMIT $2",
            )
            .bind(tenant_id)
            .bind(change.guild_cap.map_or(i64::MAX, i64::from))
            .fetch_all(&mut *tx)
            .await?;
            let guilds: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM guilds WHERE tenant_id = $1 ORDER BY id",
            )
            .bind(tenant_id)
            .fetch_all(&mut *tx)
            .await?;
            let details = serde_json::json!({
                "tenant_id": tenant_id,
                "from_status": before.as_ref().map_or("free", |b| b.status.as_str()),
                "to_status": a.status.as_str(),
                "plan": &a.plan,
                "applied_plan": &change.applied_plan,
                "event": event.as_ref().map(|e| e.kind),
                "more": &change.details,
            });
            for guild in &guilds {
                let plan = if covered.contains(guild) { change.applied_plan.as_str() } else { "free" };
                sqlx::query("UPDATE guilds SET plan = $2 WHERE id = $1")
                    .bind(guild)
                    .bind(plan)
                    .execute(&mut *tx)
                    .await?;
            }
            for guild in guilds.iter().map(|g| Some(*g)).chain([None]) {
                sqlx::query(
                    "INSERT INTO audit_log (guild_id, actor, action, feature_id, details, created_at)
                     VALUES ($1, 'billing', $2, NULL, $3, $4)",
                )
                .bind(guild)
                .bind(change.action)
                .bind(Json(&details))
                .bind(now())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            BillingOutcome::Changed {
                after: Box::new(change.account),
                guilds: guilds.into_iter().map(api_id).collect(),
            }
        });
        if let BillingOutcome::Changed { guilds, .. } = &outcome {
            for guild in guilds {
                self.control.changed(*guild);
            }
        }
        Ok(outcome)
    }

    /// Whether a Stripe event was applied already.
    pub async fn stripe_event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        let seen: Option<String> = on_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT id FROM stripe_events WHERE id = $1")
                .bind(event_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(seen.is_some())
    }

    /// Records a Stripe event that changes no account as seen; `false` if it was.
    pub async fn record_stripe_event(
        &self,
        event: SeenEvent<'_>,
        tenant_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let added = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO stripe_events (id, type, tenant_id, received_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            )
            .bind(event.id)
            .bind(event.kind)
            .bind(tenant_id)
            .bind(now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(added == 1)
    }

    /// The AI tokens a tenant's guilds used on `day` through the operator's key
    /// (every guild linked to it now): tokens through a guild's own key are
    /// the tenant's bill with their provider, not ours.
    pub async fn tenant_ai_tokens(
        &self,
        tenant_id: &str,
        day: NaiveDate,
    ) -> Result<u64, StoreError> {
        let total: Option<i64> = on_db!(&self.db, pool => {
            sqlx::query_scalar(
                "SELECT CAST(SUM(u.ai_tokens - u.ai_own_key_tokens) AS BIGINT) FROM usage_counters u
                 JOIN guilds g ON g.id = u.guild_id
                 WHERE g.tenant_id = $1 AND u.day = $2",
            )
            .bind(tenant_id)
            .bind(day)
            .fetch_one(pool)
            .await?
        });
        Ok(total.unwrap_or(0).max(0) as u64)
    }

    /// The report owed for (tenant, meter, day), written with `value` the first
    /// time and returned as stored ever after: a retry sends what the first
    /// attempt sent, under the same identifier.
    pub async fn meter_report(
        &self,
        tenant_id: &str,
        meter: &str,
        day: NaiveDate,
        value: u64,
    ) -> Result<MeterReport, StoreError> {
        let identifier = format!("townes-{tenant_id}-{meter}-{day}");
        let row: MeterRow = on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO meter_reports (tenant_id, meter, day, value, identifier)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, meter, day) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(meter)
            .bind(day)
            .bind(i64::try_from(value).unwrap_or(i64::MAX))
            .bind(&identifier)
            .execute(pool)
            .await?;
            sqlx::query_as(
                "SELECT tenant_id, meter, day, value, identifier, attempts, reported_at
                 FROM meter_reports WHERE tenant_id = $1 AND meter = $2 AND day = $3",
            )
            .bind(tenant_id)
            .bind(meter)
            .bind(day)
            .fetch_one(pool)
            .await?
        });
        Ok(MeterReport::from(row))
    }

    /// Records an attempt to send a report: accepted (`error: None`) or not.
    pub async fn meter_attempted(
        &self,
        identifier: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE meter_reports SET attempts = attempts + 1, last_error = $2,
                     reported_at = CASE WHEN $2 IS NULL THEN $3 ELSE reported_at END
                 WHERE identifier = $1",
            )
            .bind(identifier)
            .bind(error)
            .bind(now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every report of a tenant, oldest day first.
    pub async fn meter_reports(&self, tenant_id: &str) -> Result<Vec<MeterReport>, StoreError> {
        let rows: Vec<MeterRow> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT tenant_id, meter, day, value, identifier, attempts, reported_at
                 FROM meter_reports WHERE tenant_id = $1 ORDER BY day, meter",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(MeterReport::from).collect())
    }
}
