//! The calls billing makes to Stripe, through async-stripe's client and
//! request types. Answers are read into the few fields we use (unknown
//! fields are ignored), so a Stripe release adding fields never breaks us.

use std::collections::HashMap;

use stripe::{
    Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest as _,
};
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::CheckoutSessionMode;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};

/// Stripe's API, with our secret key.
#[derive(Clone)]
pub struct StripeApi {
    client: Client,
}

#[derive(miniserde::Deserialize)]
struct Created {
    id: String,
}

#[derive(miniserde::Deserialize)]
struct WithUrl {
    id: String,
    url: Option<String>,
}

/// A Checkout page to send the customer to.
#[derive(Clone, Debug)]
pub struct CheckoutPage {
    pub id: String,
    pub url: String,
}

/// What a Checkout session is for.
pub struct CheckoutRequest<'a> {
    pub customer: &'a str,
    pub tenant_id: &'a str,
    /// The plan's price first, then each add-on's.
    pub prices: Vec<String>,
    pub trial_days: Option<u32>,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

impl StripeApi {
    pub fn new(secret: &str, api_base: &str) -> Result<StripeApi, StripeError> {
        let client = ClientBuilder::new(secret)
            .url(api_base)
            .app_info("townes", Some(env!("CARGO_PKG_VERSION").into()), None)
            .build()?;
        Ok(StripeApi { client })
    }

    /// Creates the tenant's customer. Idempotent per tenant: two racing
    /// checkouts get the same customer.
    pub async fn create_customer(
        &self,
        tenant_id: &str,
        name: Option<&str>,
    ) -> Result<String, StripeError> {
        let mut create = stripe_core::customer::CreateCustomer::new().metadata(HashMap::from([(
            "tenant_id".to_string(),
            tenant_id.to_string(),
        )]));
        if let Some(name) = name {
            create = create.name(name);
        }
        let created: Created = create
            .build()
            .customize()
            .request_strategy(idempotent(&format!("townes-customer-{tenant_id}"))?)
            .send(&self.client)
            .await?;
        Ok(created.id)
    }

    pub async fn create_checkout(
        &self,
        request: CheckoutRequest<'_>,
    ) -> Result<CheckoutPage, StripeError> {
        let metadata = HashMap::from([("tenant_id".to_string(), request.tenant_id.to_string())]);
        let mut subscription = CreateCheckoutSessionSubscriptionData::new();
        subscription.metadata = Some(metadata.clone());
        subscription.trial_period_days = request.trial_days;
        let line_items: Vec<CreateCheckoutSessionLineItems> = request
            .prices
            .into_iter()
            .map(|price| {
                let mut item = CreateCheckoutSessionLineItems::new();
                item.price = Some(price);
                item.quantity = Some(1);
                item
            })
            .collect();
        let page: WithUrl = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .customer(request.customer)
            .client_reference_id(request.tenant_id)
            .line_items(line_items)
            .subscription_data(subscription)
            .metadata(metadata)
            .success_url(request.success_url)
            .cancel_url(request.cancel_url)
            .build()
            .customize()
            .send(&self.client)
            .await?;
        Ok(CheckoutPage {
            url: page.url.unwrap_or_default(),
            id: page.id,
        })
    }

    /// A billing-portal page for the customer, returning to `return_url`.
    pub async fn create_portal(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<String, StripeError> {
        let page: WithUrl = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url)
            .build()
            .customize()
            .send(&self.client)
            .await?;
        Ok(page.url.unwrap_or_default())
    }

    /// Sends one meter event. `identifier` doubles as the idempotency key, so a
    /// retry of an attempt Stripe accepted is answered with the first answer.
    pub async fn report_meter(
        &self,
        event_name: &str,
        customer: &str,
        value: u64,
        identifier: &str,
        timestamp: i64,
    ) -> Result<(), StripeError> {
        let payload = HashMap::from([
            ("stripe_customer_id".to_string(), customer.to_string()),
            ("value".to_string(), value.to_string()),
        ]);
        let request = CreateBillingMeterEvent::new(event_name, payload)
            .identifier(identifier)
            .timestamp(timestamp);
        request
            .build()
            .customize::<miniserde::json::Value>()
            .request_strategy(idempotent(identifier)?)
            .send(&self.client)
            .await?;
        Ok(())
    }
}

fn idempotent(key: &str) -> Result<RequestStrategy, StripeError> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| StripeError::ConfigError(format!("idempotency key {key}: {e}")))
}

/// Stripe's own words for an error, without the secret-free but noisy
/// debug dump async-stripe gives.
pub fn describe(error: &StripeError) -> String {
    match error {
        StripeError::Stripe(errors, status) => format!(
            "Stripe answered {status}: {}",
            errors.message.as_deref().unwrap_or("no message")
        ),
        other => other.to_string(),
    }
}

/// Whether Stripe refused a meter event because one with its identifier was
/// accepted before (an attempt whose answer we lost).
pub fn is_duplicate_meter_event(error: &StripeError) -> bool {
    matches!(error, StripeError::Stripe(errors, 400)
        if errors.message.as_deref().is_some_and(|m| m.contains("identifier") && m.contains("already")))
}
