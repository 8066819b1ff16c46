//! The customer and the billing engine: what happens on Stripe's side between
//! API calls (a payment on the hosted page, a renewal that fails or succeeds, a
//! cancellation taking effect), each changing the stored objects and sending the
//! webhooks Stripe sends for it.
//!
//! Every driver checks first and changes nothing on error, except delivery: once
//! the change is made its events exist, and an unreachable endpoint only means
//! they were not (all) delivered.

use crate::ids::now;
use crate::state::{
    Invoice, InvoiceLine, PERIOD_SECS, State, StoredEvent, Subscription, SubscriptionItem, amount,
};
use crate::{Delivery, SimError, StripeSim};
use serde_json::{Map, Value};

/// When Stripe retries a failed renewal payment (Smart Retries vary; 3 days is
/// a typical first retry).
const RETRY_SECS: i64 = 3 * 86_400;

impl StripeSim {
    /// The customer pays on the hosted Checkout page: the session becomes
    /// `complete` with a new subscription — `trialing` until now + the session's
    /// `subscription_data[trial_period_days]`, else `active` with a paid first
    /// invoice — and `checkout.session.completed`,
    /// `customer.subscription.created` and (without a trial) `invoice.paid` are
    /// sent, in that order. Returns the subscription id.
    pub async fn complete_checkout(&self, session_id: &str) -> Result<String, SimError> {
        let url = self.webhook_url()?;
        let (subscription_id, events) = {
            let mut st = self.state();
            let now = now();
            let session = st
                .session(session_id)
                .cloned()
                .ok_or_else(|| SimError::not_found("checkout session", session_id))?;
            if session.status != "open" {
                return Err(SimError::InvalidState(format!(
                    "checkout session {session_id} is already {}",
                    session.status
                )));
            }
            let trial_end = session.trial_days.map(|d| now + i64::from(d) * 86_400);
            let mut sub = Subscription {
                id: self.0.ids.make("sub_", 24),
                customer: session.customer.clone(),
                status: if trial_end.is_some() {
                    "trialing"
                } else {
                    "active"
                },
                created: now,
                period_start: now,
                // During a trial the current period is the trial.
                period_end: trial_end.unwrap_or(now + PERIOD_SECS),
                cancel_at_period_end: false,
                cancel_at: None,
                canceled_at: None,
                ended_at: None,
                trial_start: trial_end.map(|_| now),
                trial_end,
                cancellation_reason: None,
                metadata: session.subscription_metadata.clone(),
                items: session
                    .line_items
                    .iter()
                    .map(|l| SubscriptionItem {
                        id: self.0.ids.make("si_", 14),
                        price: l.price.clone(),
                        quantity: l.quantity,
                        created: now,
                    })
                    .collect(),
                latest_invoice: None,
                open_invoice: None,
            };
            let invoice = trial_end
                .is_none()
                .then(|| self.new_invoice(&sub, "subscription_create", now, true));
            sub.latest_invoice = invoice.as_ref().map(|i| i.id.clone());
            let session_json = {
                let s = st
                    .sessions
                    .iter_mut()
                    .find(|s| s.id == session_id)
                    .expect("session exists");
                s.status = "complete";
                s.payment_status = if trial_end.is_some() {
                    "no_payment_required"
                } else {
                    "paid"
                };
                s.subscription = Some(sub.id.clone());
                s.to_json(&self.0.base_url)
            };
            let subscription_id = sub.id.clone();
            let sub_json = sub.to_json();
            st.subscriptions.push(sub);
            let mut events = vec![
                self.emit(&mut st, "checkout.session.completed", session_json, None),
                self.emit(&mut st, "customer.subscription.created", sub_json, None),
            ];
            if let Some(invoice) = invoice {
                let json = invoice.to_json();
                st.invoices.push(invoice);
                events.push(self.emit(&mut st, "invoice.paid", json, None));
            }
            (subscription_id, events)
        };
        self.deliver(&url, events).await?;
        Ok(subscription_id)
    }

    /// A renewal payment fails (or the retry of one fails again): the
    /// subscription becomes `past_due`; sends `invoice.payment_failed` (the
    /// open invoice: `attempt_count`, `next_payment_attempt`) then
    /// `customer.subscription.updated`.
    ///
    /// The first failure is the renewal: a trial ends now, otherwise the new
    /// period starts where the last one ended. A repeated failure retries the
    /// same invoice (`attempt_count` + 1) and, as nothing on the subscription
    /// changes, sends no `customer.subscription.updated`.
    pub async fn fail_payment(&self, subscription_id: &str) -> Result<Vec<Delivery>, SimError> {
        self.drive(|st, now| {
            let mut sub = live(st, subscription_id)?;
            let before = sub.to_json();
            let invoice = match sub.open_invoice.clone() {
                Some(id) => {
                    let invoice = st.invoice_mut(&id).expect("open invoice exists");
                    invoice.attempt_count += 1;
                    invoice.next_payment_attempt = Some(now + RETRY_SECS);
                    invoice.clone()
                }
                None => {
                    renewable(&sub)?;
                    start_period(&mut sub, now);
                    let invoice = self.new_invoice(&sub, "subscription_cycle", now, false);
                    sub.open_invoice = Some(invoice.id.clone());
                    sub.latest_invoice = Some(invoice.id.clone());
                    st.invoices.push(invoice.clone());
                    invoice
                }
            };
            sub.status = "past_due";
            let mut events = vec![self.emit(st, "invoice.payment_failed", invoice.to_json(), None)];
            events.extend(self.updated(st, before, sub));
            Ok(events)
        })
        .await
    }

    /// A payment succeeds: the subscription becomes `active`; sends
    /// `invoice.paid` then `customer.subscription.updated`.
    ///
    /// With an open invoice (after `fail_payment`) that invoice is paid and the
    /// period stays (it began at the failed renewal). Otherwise this is the
    /// renewal: a trial ends now (`trial_end` = now) and a period starts now;
    /// an active subscription's next period starts where the last one ended.
    pub async fn pay(&self, subscription_id: &str) -> Result<Vec<Delivery>, SimError> {
        self.drive(|st, now| {
            let mut sub = live(st, subscription_id)?;
            let before = sub.to_json();
            let invoice = match sub.open_invoice.take() {
                Some(id) => {
                    let invoice = st.invoice_mut(&id).expect("open invoice exists");
                    invoice.status = "paid";
                    invoice.attempt_count += 1;
                    invoice.amount_paid = invoice.amount_due;
                    invoice.next_payment_attempt = None;
                    invoice.clone()
                }
                None => {
                    renewable(&sub)?;
                    start_period(&mut sub, now);
                    let invoice = self.new_invoice(&sub, "subscription_cycle", now, true);
                    sub.latest_invoice = Some(invoice.id.clone());
                    st.invoices.push(invoice.clone());
                    invoice
                }
            };
            sub.status = "active";
            let mut events = vec![self.emit(st, "invoice.paid", invoice.to_json(), None)];
            events.extend(self.updated(st, before, sub));
            Ok(events)
        })
        .await
    }

    /// Stripe's reminder three days before a trial ends: sends
    /// `customer.subscription.trial_will_end`. Changes nothing.
    pub async fn trial_will_end(&self, subscription_id: &str) -> Result<Vec<Delivery>, SimError> {
        self.drive(|st, _| {
            let sub = live(st, subscription_id)?;
            if sub.status != "trialing" {
                return Err(SimError::InvalidState(format!(
                    "subscription {subscription_id} is {}, not trialing",
                    sub.status
                )));
            }
            Ok(vec![self.emit(
                st,
                "customer.subscription.trial_will_end",
                sub.to_json(),
                None,
            )])
        })
        .await
    }

    /// The customer cancels in the portal: `cancel_at_period_end: true`,
    /// `cancel_at` the period's end, `canceled_at` now; sends
    /// `customer.subscription.updated`. The subscription stays as it is until
    /// [`StripeSim::end_subscription`].
    pub async fn cancel_at_period_end(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<Delivery>, SimError> {
        self.drive(|st, now| {
            let mut sub = live(st, subscription_id)?;
            if sub.cancel_at_period_end {
                return Err(SimError::InvalidState(format!(
                    "subscription {subscription_id} already cancels at period end"
                )));
            }
            let before = sub.to_json();
            sub.cancel_at_period_end = true;
            sub.cancel_at = Some(sub.period_end);
            sub.canceled_at = Some(now);
            sub.cancellation_reason = Some("cancellation_requested");
            Ok(self.updated(st, before, sub).into_iter().collect())
        })
        .await
    }

    /// The subscription ends (its canceled period is over, or it was canceled
    /// at once, or payment retries ran out): `canceled` with `ended_at` now;
    /// sends `customer.subscription.deleted`.
    pub async fn end_subscription(&self, subscription_id: &str) -> Result<Vec<Delivery>, SimError> {
        self.drive(|st, now| {
            let mut sub = live(st, subscription_id)?;
            sub.cancellation_reason =
                sub.cancellation_reason
                    .or(Some(if sub.status == "past_due" {
                        "payment_failed"
                    } else {
                        "cancellation_requested"
                    }));
            sub.status = "canceled";
            sub.ended_at = Some(now);
            sub.canceled_at = sub.canceled_at.or(Some(now));
            let json = sub.to_json();
            store(st, sub);
            Ok(vec![self.emit(
                st,
                "customer.subscription.deleted",
                json,
                None,
            )])
        })
        .await
    }

    // ----- internals -----

    /// Runs a change under the lock, then delivers its events (no lock held).
    async fn drive(
        &self,
        change: impl FnOnce(&mut State, i64) -> Result<Vec<StoredEvent>, SimError>,
    ) -> Result<Vec<Delivery>, SimError> {
        let url = self.webhook_url()?;
        let events = change(&mut self.state(), now())?;
        self.deliver(&url, events).await
    }

    /// Stores the subscription and, if anything changed, emits
    /// `customer.subscription.updated` with the old values of what changed as
    /// `previous_attributes`, as Stripe does.
    fn updated(&self, st: &mut State, before: Value, sub: Subscription) -> Option<StoredEvent> {
        let after = sub.to_json();
        store(st, sub);
        let mut previous = Map::new();
        if let Value::Object(old) = before {
            for (key, value) in old {
                if after.get(&key) != Some(&value) {
                    previous.insert(key, value);
                }
            }
        }
        (!previous.is_empty()).then(|| {
            self.emit(
                st,
                "customer.subscription.updated",
                after,
                Some(Value::Object(previous)),
            )
        })
    }

    /// An invoice for the subscription's current period.
    fn new_invoice(
        &self,
        sub: &Subscription,
        billing_reason: &'static str,
        now: i64,
        paid: bool,
    ) -> Invoice {
        let amount_due = amount(&sub.line_items());
        Invoice {
            id: self.0.ids.make("in_", 24),
            customer: sub.customer.clone(),
            subscription: sub.id.clone(),
            subscription_metadata: sub.metadata.clone(),
            status: if paid { "paid" } else { "open" },
            billing_reason,
            amount_due,
            amount_paid: if paid { amount_due } else { 0 },
            attempt_count: 1,
            next_payment_attempt: (!paid).then_some(now + RETRY_SECS),
            created: now,
            period_start: sub.period_start,
            period_end: sub.period_end,
            lines: sub
                .items
                .iter()
                .map(|i| InvoiceLine {
                    id: self.0.ids.make("il_", 24),
                    subscription_item: i.id.clone(),
                    price: i.price.clone(),
                    quantity: i.quantity,
                })
                .collect(),
        }
    }
}

/// A copy of a subscription that has not ended.
fn live(st: &State, id: &str) -> Result<Subscription, SimError> {
    let sub = st
        .subscription(id)
        .cloned()
        .ok_or_else(|| SimError::not_found("subscription", id))?;
    if sub.status == "canceled" {
        return Err(SimError::InvalidState(format!(
            "subscription {id} is canceled"
        )));
    }
    Ok(sub)
}

/// A subscription set to cancel at period end ends there instead of renewing.
fn renewable(sub: &Subscription) -> Result<(), SimError> {
    if sub.cancel_at_period_end {
        return Err(SimError::InvalidState(format!(
            "subscription {} cancels at period end: it ends (end_subscription) instead of renewing",
            sub.id
        )));
    }
    Ok(())
}

/// The renewal: a trial ends now and a period starts now; otherwise the next
/// period starts where the last ended.
fn start_period(sub: &mut Subscription, now: i64) {
    let start = if sub.status == "trialing" {
        sub.trial_end = Some(now);
        now
    } else {
        sub.period_end
    };
    sub.period_start = start;
    sub.period_end = start + PERIOD_SECS;
}

fn store(st: &mut State, sub: Subscription) {
    let slot = st.subscription_mut(&sub.id).expect("subscription exists");
    *slot = sub;
}
