//! A tenant's billing (seed 001's "billing state"): its plan, status, limits
//! and usage, the one trial, Stripe Checkout and the billing portal; and
//! Stripe's webhook, which moves plans when payments happen.

use super::{BodyErrors, CallerErrors, own_tenant};
use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult, ErrorBody, MaybeJson, Path};
use crate::api::examples;
use crate::billing::{BillingError, BillingState};
use crate::runtime::Plan;
use crate::store::BillingStatus;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A tenant's billing as the dashboard shows it.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::billing_view)]
pub struct BillingView {
    pub tenant_id: String,
    /// The plan the tenant's guilds run on now.
    #[schema(example = "base")]
    pub plan: String,
    /// `free`, `trialing`, `active`, `past_due` or `canceled`.
    #[schema(example = "trialing")]
    pub status: String,
    /// The plan subscribed to or tried (when the status has one).
    pub subscribed_plan: Option<String>,
    /// Whether the tenant may still start its one trial.
    pub trial_available: bool,
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// When the paid plan renews; `null` when it will not (canceling, trial, free).
    pub renews_at: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// While `past_due`: when the plan ends unless a payment succeeds.
    pub grace_until: Option<DateTime<Utc>>,
    /// Whether this platform sells plans through Stripe (checkout, portal).
    pub stripe_enabled: bool,
    /// The plan's limits and caps.
    #[schema(value_type = Object)]
    pub limits: Plan,
    pub usage: UsageAgainstLimits,
}

/// Usage now against the plan's limits.
#[derive(Serialize, ToSchema)]
pub struct UsageAgainstLimits {
    /// Guilds of the tenant the bot is in, and how many the plan covers
    /// (`null`: all; the others run on free).
    pub guilds: u64,
    pub guilds_limit: Option<u32>,
    /// AI tokens all guilds used today (UTC), the most one guild used, and the
    /// per-guild daily cap.
    pub ai_tokens_today: u64,
    pub ai_tokens_today_busiest_guild: u64,
    pub ai_tokens_per_day_limit: Option<u64>,
    /// Storage per (guild, feature).
    pub storage_bytes_limit: u64,
    pub storage_rows_limit: u64,
}

impl BillingView {
    fn from_state(tenant_id: &str, state: BillingState) -> BillingView {
        let a = state.account;
        let has_plan = a.status.has_plan();
        BillingView {
            tenant_id: tenant_id.to_string(),
            plan: state.applied_plan,
            status: a.status.as_str().to_string(),
            subscribed_plan: has_plan.then_some(a.plan),
            trial_available: state.trial_available,
            trial_ends_at: a
                .trial_ends_at
                .filter(|_| a.status == BillingStatus::Trialing),
            renews_at: state.renews_at,
            current_period_end: a.current_period_end,
            cancel_at_period_end: a.cancel_at_period_end,
            grace_until: a.grace_until,
            stripe_enabled: state.stripe_enabled,
            usage: UsageAgainstLimits {
                guilds: state.usage.guilds,
                guilds_limit: state.plan.guilds,
                ai_tokens_today: state.usage.ai_tokens_today,
                ai_tokens_today_busiest_guild: state.usage.ai_tokens_today_busiest_guild,
                ai_tokens_per_day_limit: state.plan.ai_tokens_per_day,
                storage_bytes_limit: state.plan.limits.storage_bytes,
                storage_rows_limit: state.plan.limits.storage_rows,
            },
            limits: state.plan,
        }
    }
}

impl From<BillingError> for ApiError {
    fn from(e: BillingError) -> ApiError {
        match e {
            BillingError::Off(message) => ApiError::Unavailable {
                message,
                hint: None,
            },
            BillingError::Conflict(message) => ApiError::Conflict {
                message,
                hint: None,
            },
            BillingError::Invalid(message) => ApiError::invalid("", message),
            BillingError::Signature(e) => ApiError::BadRequest(e.to_string()),
            e @ BillingError::Stripe(_) => ApiError::Unavailable {
                message: e.to_string(),
                hint: None,
            },
            BillingError::Unmapped(message) => ApiError::Unavailable {
                message,
                hint: Some(
                    "the operator adds the price to TOWNES_PLANS; Stripe retries the event".into(),
                ),
            },
            BillingError::Store(e) => e.into(),
        }
    }
}

/// The tenant's billing: plan, status, trial end, renewal, limits and usage.
#[utoipa::path(get, path = "/tenants/{tenant_id}/billing", tag = "billing", operation_id = "getBilling",
    security(("session" = []), ("api_key" = [])),
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    responses((status = 200, description = "The billing state", body = BillingView), CallerErrors,
        (status = 404, description = "Not the caller's tenant", body = ErrorBody)))]
pub async fn billing(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<BillingView>> {
    own_tenant(&caller, &tenant_id)?;
    let view = state.billing().view(&tenant_id, Utc::now()).await?;
    Ok(axum::Json(BillingView::from_state(&tenant_id, view)))
}

/// Starts the tenant's one trial of the base plan (`TRIAL_DAYS`, no card).
#[utoipa::path(post, path = "/tenants/{tenant_id}/billing/trial", tag = "billing", operation_id = "startTrial",
    security(("session" = []), ("api_key" = [])),
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    responses((status = 200, description = "The trial runs", body = BillingView), CallerErrors,
        (status = 404, description = "Not the caller's tenant", body = ErrorBody),
        (status = 409, description = "The trial was used, or the tenant already has a plan", body = ErrorBody)))]
pub async fn start_trial(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<BillingView>> {
    own_tenant(&caller, &tenant_id)?;
    state.billing().start_trial(&tenant_id, Utc::now()).await?;
    let view = state.billing().view(&tenant_id, Utc::now()).await?;
    Ok(axum::Json(BillingView::from_state(&tenant_id, view)))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::checkout_request)]
pub struct CheckoutRequest {
    /// Add-ons to subscribe to beside the base plan (names the operator set
    /// in `STRIPE_ADDONS`).
    #[serde(default)]
    pub addons: Vec<String>,
}

/// Where to send the browser: Stripe's page.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::checkout_link)]
pub struct RedirectLink {
    pub url: String,
}

/// A Stripe Checkout page for the base plan, with the trial when the tenant
/// has not used it.
#[utoipa::path(post, path = "/tenants/{tenant_id}/billing/checkout", tag = "billing", operation_id = "startCheckout",
    security(("session" = []), ("api_key" = [])),
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    request_body(content = Option<CheckoutRequest>, description = "Optional add-ons",
        example = examples::checkout_request),
    responses((status = 200, description = "Stripe's Checkout page", body = RedirectLink), CallerErrors, BodyErrors,
        (status = 404, description = "Not the caller's tenant", body = ErrorBody),
        (status = 409, description = "Already subscribed: use the portal", body = ErrorBody),
        (status = 503, description = "Stripe is off here, or unreachable", body = ErrorBody)))]
pub async fn checkout(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    MaybeJson(body): MaybeJson<CheckoutRequest>,
) -> ApiResult<axum::Json<RedirectLink>> {
    own_tenant(&caller, &tenant_id)?;
    let request = body.unwrap_or_default();
    let name = match &caller {
        Caller::User { user_name, .. } => Some(user_name.as_str()),
        Caller::Key { .. } => None,
    };
    let page = state
        .billing()
        .checkout(&tenant_id, name, &request.addons, Utc::now())
        .await?;
    Ok(axum::Json(RedirectLink { url: page.url }))
}

/// A Stripe billing-portal page where the tenant changes or cancels its plan.
#[utoipa::path(post, path = "/tenants/{tenant_id}/billing/portal", tag = "billing", operation_id = "openBillingPortal",
    security(("session" = []), ("api_key" = [])),
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    responses((status = 200, description = "Stripe's portal page", body = RedirectLink), CallerErrors,
        (status = 404, description = "Not the caller's tenant", body = ErrorBody),
        (status = 409, description = "No subscription yet", body = ErrorBody),
        (status = 503, description = "Stripe is off here, or unreachable", body = ErrorBody)))]
pub async fn portal(
    State(state): State<ApiState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<axum::Json<RedirectLink>> {
    own_tenant(&caller, &tenant_id)?;
    let url = state.billing().portal(&tenant_id).await?;
    Ok(axum::Json(RedirectLink { url }))
}

#[derive(Serialize, ToSchema)]
#[schema(example = examples::webhook_receipt)]
pub struct WebhookReceipt {
    /// `applied`, `duplicate` (seen before: nothing changed) or `ignored`.
    pub outcome: String,
}

/// Stripe's webhook: the signature (`Stripe-Signature`) is checked over the
/// raw body within 300 s, and each event id is applied once.
#[utoipa::path(post, path = "/webhooks/stripe", tag = "billing", operation_id = "stripeWebhook",
    request_body(content = Object, description = "A Stripe event, as Stripe signs it",
        example = examples::stripe_event),
    responses((status = 200, description = "Received", body = WebhookReceipt),
        (status = 400, description = "Unsigned, forged, stale or unreadable", body = ErrorBody),
        (status = 503, description = "Not applied now; Stripe retries", body = ErrorBody)))]
pub async fn stripe_webhook(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<WebhookReceipt>> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let outcome = state
        .billing()
        .handle_webhook(signature, &body, Utc::now())
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "Stripe webhook refused"))?;
    Ok(axum::Json(WebhookReceipt {
        outcome: outcome.as_str().to_string(),
    }))
}
