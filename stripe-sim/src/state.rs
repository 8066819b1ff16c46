//! What the simulated Stripe account holds, and how each object renders as
//! Stripe's JSON (API version 2025-03-31 "basil" and later: the billing period
//! lives on subscription items, and an invoice names its subscription under
//! `parent.subscription_details`).

use crate::form::object;
use crate::{Delivery, MeterEvent, Recorded};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// The price of one unit of every configured price, in cents: the simulator
/// has no catalogue, only price ids, and invoices need an amount.
pub const UNIT_AMOUNT: i64 = 1000;
pub const CURRENCY: &str = "usd";
/// The length of a billing period (Stripe bills by calendar month; 30 days
/// keeps the arithmetic obvious in tests).
pub const PERIOD_SECS: i64 = 30 * 86_400;

#[derive(Debug, Default)]
pub struct State {
    pub webhook_url: Option<String>,
    pub unreachable: bool,
    /// Requests still to be carried out but answered 502 (see `lose_responses`).
    pub lose_responses: u32,
    pub customers: Vec<Customer>,
    pub sessions: Vec<Session>,
    pub portal_sessions: Vec<Value>,
    pub subscriptions: Vec<Subscription>,
    pub invoices: Vec<Invoice>,
    pub meter_events: Vec<MeterEvent>,
    /// Every event created, with the exact body delivered (resends reuse it).
    pub events: Vec<StoredEvent>,
    pub deliveries: Vec<Delivery>,
    pub requests: Vec<Recorded>,
    /// Idempotency key → the first answer.
    pub idempotency: HashMap<String, StoredResponse>,
    pub replays: usize,
}

#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub id: String,
    pub body: String,
}

/// An answer kept for an idempotency key, with what it answered (Stripe refuses
/// the key for a different request).
#[derive(Clone, Debug)]
pub struct StoredResponse {
    pub method: String,
    pub path: String,
    pub params: Vec<(String, String)>,
    pub status: u16,
    pub body: String,
    pub request_id: String,
}

impl State {
    pub fn customer(&self, id: &str) -> Option<&Customer> {
        self.customers.iter().find(|c| c.id == id)
    }

    pub fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.iter().find(|s| s.id == id)
    }

    pub fn subscription(&self, id: &str) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.id == id)
    }

    pub fn subscription_mut(&mut self, id: &str) -> Option<&mut Subscription> {
        self.subscriptions.iter_mut().find(|s| s.id == id)
    }

    pub fn invoice_mut(&mut self, id: &str) -> Option<&mut Invoice> {
        self.invoices.iter_mut().find(|i| i.id == id)
    }
}

#[derive(Clone, Debug)]
pub struct Customer {
    pub id: String,
    pub created: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

impl Customer {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "customer",
            "created": self.created,
            "email": self.email,
            "name": self.name,
            "metadata": object(&self.metadata),
            "livemode": false,
            "balance": 0,
            "currency": null,
            "default_source": null,
            "delinquent": false,
            "description": null,
            "invoice_prefix": null,
            "phone": null,
        })
    }
}

#[derive(Clone, Debug)]
pub struct LineItem {
    pub price: String,
    pub quantity: u64,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub created: i64,
    pub expires_at: i64,
    pub customer: String,
    pub client_reference_id: Option<String>,
    pub line_items: Vec<LineItem>,
    pub trial_days: Option<u32>,
    pub subscription_metadata: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    /// `open` until paid, then `complete`.
    pub status: &'static str,
    pub payment_status: &'static str,
    pub subscription: Option<String>,
}

impl Session {
    pub fn amount_total(&self) -> i64 {
        if self.trial_days.is_some() {
            0
        } else {
            amount(&self.line_items)
        }
    }

    pub fn to_json(&self, base_url: &str) -> Value {
        json!({
            "id": self.id,
            "object": "checkout.session",
            // Stripe clears the URL once the session is complete.
            "url": (self.status == "open").then(|| format!("{base_url}/checkout/{}", self.id)),
            "customer": self.customer,
            "client_reference_id": self.client_reference_id,
            "mode": "subscription",
            "status": self.status,
            "payment_status": self.payment_status,
            "subscription": self.subscription,
            "metadata": object(&self.metadata),
            "success_url": self.success_url,
            "cancel_url": self.cancel_url,
            "amount_total": self.amount_total(),
            "currency": CURRENCY,
            "created": self.created,
            "expires_at": self.expires_at,
            "livemode": false,
        })
    }
}

pub fn amount(items: &[LineItem]) -> i64 {
    items.iter().map(|i| UNIT_AMOUNT * i.quantity as i64).sum()
}

pub fn price_json(id: &str) -> Value {
    json!({
        "id": id,
        "object": "price",
        "active": true,
        "currency": CURRENCY,
        "unit_amount": UNIT_AMOUNT,
        "type": "recurring",
        "recurring": { "interval": "month", "interval_count": 1, "usage_type": "licensed" },
        "livemode": false,
    })
}

#[derive(Clone, Debug)]
pub struct SubscriptionItem {
    pub id: String,
    pub price: String,
    pub quantity: u64,
    pub created: i64,
}

#[derive(Clone, Debug)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    /// `trialing`, `active`, `past_due` or `canceled`.
    pub status: &'static str,
    pub created: i64,
    pub period_start: i64,
    pub period_end: i64,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub trial_start: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancellation_reason: Option<&'static str>,
    pub metadata: BTreeMap<String, String>,
    pub items: Vec<SubscriptionItem>,
    pub latest_invoice: Option<String>,
    /// The unpaid invoice of a failed renewal, which `pay` settles.
    pub open_invoice: Option<String>,
}

impl Subscription {
    pub fn line_items(&self) -> Vec<LineItem> {
        self.items
            .iter()
            .map(|i| LineItem {
                price: i.price.clone(),
                quantity: i.quantity,
            })
            .collect()
    }

    pub fn to_json(&self) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|i| {
                json!({
                    "id": i.id,
                    "object": "subscription_item",
                    "created": i.created,
                    "price": price_json(&i.price),
                    "quantity": i.quantity,
                    "current_period_start": self.period_start,
                    "current_period_end": self.period_end,
                    "subscription": self.id,
                    "metadata": {},
                })
            })
            .collect();
        json!({
            "id": self.id,
            "object": "subscription",
            "customer": self.customer,
            "status": self.status,
            "cancel_at_period_end": self.cancel_at_period_end,
            "cancel_at": self.cancel_at,
            "canceled_at": self.canceled_at,
            "cancellation_details": {
                "reason": self.cancellation_reason,
                "comment": null,
                "feedback": null,
            },
            "ended_at": self.ended_at,
            "trial_start": self.trial_start,
            "trial_end": self.trial_end,
            "metadata": object(&self.metadata),
            "created": self.created,
            "start_date": self.created,
            "billing_cycle_anchor": self.period_start,
            "collection_method": "charge_automatically",
            "currency": CURRENCY,
            "latest_invoice": self.latest_invoice,
            "livemode": false,
            "items": {
                "object": "list",
                "data": items,
                "has_more": false,
                "total_count": self.items.len(),
                "url": format!("/v1/subscription_items?subscription={}", self.id),
            },
        })
    }
}

#[derive(Clone, Debug)]
pub struct InvoiceLine {
    pub id: String,
    pub subscription_item: String,
    pub price: String,
    pub quantity: u64,
}

#[derive(Clone, Debug)]
pub struct Invoice {
    pub id: String,
    pub customer: String,
    pub subscription: String,
    pub subscription_metadata: BTreeMap<String, String>,
    /// `open` or `paid`.
    pub status: &'static str,
    /// `subscription_create` or `subscription_cycle`.
    pub billing_reason: &'static str,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub attempt_count: u32,
    pub next_payment_attempt: Option<i64>,
    pub created: i64,
    /// The service period the lines pay for.
    pub period_start: i64,
    pub period_end: i64,
    pub lines: Vec<InvoiceLine>,
}

impl Invoice {
    pub fn to_json(&self) -> Value {
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|l| {
                json!({
                    "id": l.id,
                    "object": "line_item",
                    "amount": UNIT_AMOUNT * l.quantity as i64,
                    "currency": CURRENCY,
                    "quantity": l.quantity,
                    "period": { "start": self.period_start, "end": self.period_end },
                    "pricing": {
                        "type": "price_details",
                        "price_details": { "price": l.price, "product": null },
                        "unit_amount_decimal": UNIT_AMOUNT.to_string(),
                    },
                    "parent": {
                        "type": "subscription_item_details",
                        "subscription_item_details": {
                            "subscription": self.subscription,
                            "subscription_item": l.subscription_item,
                            "proration": false,
                        },
                    },
                    "livemode": false,
                })
            })
            .collect();
        json!({
            "id": self.id,
            "object": "invoice",
            "customer": self.customer,
            // Basil moved this under `parent`; kept at the top too for clients
            // (and async-stripe versions) that still read it there.
            "subscription": self.subscription,
            "parent": {
                "type": "subscription_details",
                "subscription_details": {
                    "subscription": self.subscription,
                    "metadata": object(&self.subscription_metadata),
                },
                "quote_details": null,
            },
            "status": self.status,
            "billing_reason": self.billing_reason,
            "collection_method": "charge_automatically",
            "currency": CURRENCY,
            "amount_due": self.amount_due,
            "amount_paid": self.amount_paid,
            "amount_remaining": self.amount_due - self.amount_paid,
            "total": self.amount_due,
            "subtotal": self.amount_due,
            "attempt_count": self.attempt_count,
            "attempted": self.attempt_count > 0,
            "next_payment_attempt": self.next_payment_attempt,
            "created": self.created,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "livemode": false,
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": false,
                "total_count": self.lines.len(),
                "url": format!("/v1/invoices/{}/lines", self.id),
            },
        })
    }
}
