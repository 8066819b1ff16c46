//! A fake Stripe for testing billing offline.
//!
//! It serves the slice of Stripe's REST API the host uses — customers, Checkout
//! sessions (subscription mode), billing-portal sessions and billing meter
//! events — with Stripe's auth, error shapes and idempotency keys, and it plays
//! the customer and the billing engine: tests "pay" a Checkout session, fail or
//! make renewals, cancel and end subscriptions, and the simulator sends the signed
//! webhooks Stripe would send. Everything is kept for inspection: the requests,
//! the objects, the events and every delivery's answer.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use townes_stripe_sim::{SimConfig, StripeSim};
//! let sim = StripeSim::start(SimConfig::new()).await?;
//! sim.set_webhook_url("http://127.0.0.1:8080/stripe/webhook");
//! // point the Stripe client at sim.base_url() with key sim.secret_key(); once the
//! // host has created a Checkout session:
//! let session = sim.checkout_sessions()[0]["id"].as_str().unwrap().to_string();
//! let subscription = sim.complete_checkout(&session).await?;
//! sim.fail_payment(&subscription).await?;
//! # Ok(()) }
//! ```

mod api;
mod form;
mod ids;
mod lifecycle;
mod state;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use state::{State, StoredEvent};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use state::{CURRENCY, PERIOD_SECS, UNIT_AMOUNT};

/// The `api_version` every event carries (the account's default version, as
/// Stripe renders webhooks in it).
pub const API_VERSION: &str = "2025-03-31.basil";

/// How the simulator is set up. The simulator always listens on a free port of
/// 127.0.0.1.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The API key every `/v1` request must carry as `Authorization: Bearer …`.
    pub secret_key: String,
    /// The webhook endpoint's signing secret (`whsec_…`).
    pub webhook_secret: String,
    /// Where events are POSTed; can be set later with
    /// [`StripeSim::set_webhook_url`] (the receiver usually starts after the
    /// simulator, since it needs the simulator's URL).
    pub webhook_url: Option<String>,
    /// The price ids that exist; a Checkout session naming another is refused
    /// with `resource_missing`, as Stripe does.
    pub prices: Vec<String>,
}

impl SimConfig {
    /// Key `sk_test_sim`, webhook secret `whsec_sim`, one price `price_base`,
    /// no webhook URL yet.
    pub fn new() -> Self {
        Self {
            secret_key: "sk_test_sim".into(),
            webhook_secret: "whsec_sim".into(),
            webhook_url: None,
            prices: vec!["price_base".into()],
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// One webhook POST and the status the receiver answered; `status` is 0 when
/// the receiver could not be reached (no connection, or no answer in 10 s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    pub status: u16,
}

/// An accepted billing meter event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterEvent {
    pub identifier: String,
    pub event_name: String,
    /// `payload[stripe_customer_id]`.
    pub customer: String,
    /// `payload[value]`.
    pub value: i64,
    /// Unix seconds; the request's `timestamp`, or when it arrived.
    pub timestamp: i64,
}

/// One `/v1` request, as answered. Headers other than the two below are never
/// kept (so the API key is not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// Without the query string: `/v1/checkout/sessions`.
    pub path: String,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
    /// The form fields as sent (brackets decoded): `("metadata[tenant_id]", "abc")`.
    pub form: Vec<(String, String)>,
    /// The status answered.
    pub status: u16,
    /// Whether the answer was an idempotency replay.
    pub replayed: bool,
}

/// Why a driver or webhook call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// Neither `SimConfig::webhook_url` nor [`StripeSim::set_webhook_url`] gave
    /// an endpoint; nothing was changed.
    NoWebhookUrl,
    NotFound {
        kind: &'static str,
        id: String,
    },
    /// The object cannot do that now (a session already paid, a subscription
    /// already canceled, a trial reminder without a trial…); nothing was changed.
    InvalidState(String),
    /// The endpoint could not be reached. The change was made and its events
    /// exist ([`StripeSim::events`]); this one and any after it in the same call
    /// were not delivered — [`StripeSim::resend`] them.
    Unreachable {
        event_id: String,
        reason: String,
    },
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::NoWebhookUrl => write!(f, "no webhook URL is set"),
            SimError::NotFound { kind, id } => write!(f, "no such {kind}: {id}"),
            SimError::InvalidState(why) => f.write_str(why),
            SimError::Unreachable { event_id, reason } => {
                write!(f, "could not deliver {event_id}: {reason}")
            }
        }
    }
}

impl std::error::Error for SimError {}

impl SimError {
    pub(crate) fn not_found(kind: &'static str, id: &str) -> Self {
        SimError::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

/// The `Stripe-Signature` header Stripe would send for `body` at `timestamp`
/// (Unix seconds): `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
/// Tests use it with another secret, an old timestamp or a different body to
/// make forged, stale or tampered deliveries for [`StripeSim::send_raw`].
pub fn sign(body: &str, timestamp: i64, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// A running simulator. Cheap to clone; all clones share one account.
#[derive(Clone)]
pub struct StripeSim(Arc<Inner>);

pub(crate) struct Inner {
    config: SimConfig,
    base_url: String,
    state: Mutex<State>,
    ids: ids::Ids,
    http: reqwest::Client,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl StripeSim {
    /// Binds a free port on 127.0.0.1 and serves in a background task.
    pub async fn start(config: SimConfig) -> std::io::Result<StripeSim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        // Webhook endpoints in tests are local: never route them via a proxy
        // from the environment.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let state = State {
            webhook_url: config.webhook_url.clone(),
            ..State::default()
        };
        let sim = StripeSim(Arc::new(Inner {
            config,
            base_url,
            state: Mutex::new(state),
            ids: ids::Ids::default(),
            http,
            shutdown,
            server: Mutex::new(None),
        }));
        let app = api::router(sim.clone());
        let mut stop = sim.0.shutdown.subscribe();
        let handle = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                eprintln!("stripe simulator stopped serving: {e}");
            }
        });
        *sim.0.server.lock().expect("server") = Some(handle);
        Ok(sim)
    }

    /// `http://127.0.0.1:PORT`; the API is under `{base_url}/v1`, as Stripe's is
    /// under `https://api.stripe.com/v1`.
    pub fn base_url(&self) -> String {
        self.0.base_url.clone()
    }

    pub fn secret_key(&self) -> String {
        self.0.config.secret_key.clone()
    }

    pub fn webhook_secret(&self) -> String {
        self.0.config.webhook_secret.clone()
    }

    pub fn set_webhook_url(&self, url: impl Into<String>) {
        self.state().webhook_url = Some(url.into());
    }

    /// Stops serving (waits up to 2 s for requests in flight).
    pub async fn shutdown(&self) {
        self.0.shutdown.send_replace(true);
        let handle = self.0.server.lock().expect("server").take();
        if let Some(mut h) = handle
            && tokio::time::timeout(Duration::from_secs(2), &mut h)
                .await
                .is_err()
        {
            h.abort();
        }
    }

    // ----- faults -----

    /// While on, every `/v1` request is answered 503 (`api_error`, with
    /// `Stripe-Should-Retry: true`) before anything else happens — Stripe down.
    pub fn set_unreachable(&self, on: bool) {
        self.state().unreachable = on;
    }

    /// The next `requests` `/v1` requests that get past auth are carried out
    /// (and their answers kept for their idempotency keys) but answered 502, as
    /// when the answer is lost on the way back: the client cannot tell whether
    /// anything happened, and only a retry with the same `Idempotency-Key` is
    /// safe.
    pub fn lose_responses(&self, requests: u32) {
        self.state().lose_responses = requests;
    }

    // ----- inspection -----

    /// Every `/v1` request, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// How many requests were answered from the idempotency store.
    pub fn idempotent_replays(&self) -> usize {
        self.state().replays
    }

    /// Customers as `GET /v1/customers/{id}` returns them, oldest first.
    pub fn customers(&self) -> Vec<Value> {
        self.state().customers.iter().map(|c| c.to_json()).collect()
    }

    /// Checkout sessions as the API returns them, oldest first.
    pub fn checkout_sessions(&self) -> Vec<Value> {
        let base = &self.0.base_url;
        self.state()
            .sessions
            .iter()
            .map(|s| s.to_json(base))
            .collect()
    }

    pub fn checkout_session(&self, id: &str) -> Option<Value> {
        self.state()
            .session(id)
            .map(|s| s.to_json(&self.0.base_url))
    }

    /// Billing-portal sessions as created, oldest first.
    pub fn portal_sessions(&self) -> Vec<Value> {
        self.state().portal_sessions.clone()
    }

    /// Subscriptions as the API returns them, oldest first.
    pub fn subscriptions(&self) -> Vec<Value> {
        self.state()
            .subscriptions
            .iter()
            .map(|s| s.to_json())
            .collect()
    }

    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.state().subscription(id).map(|s| s.to_json())
    }

    /// Invoices as sent in events, oldest first.
    pub fn invoices(&self) -> Vec<Value> {
        self.state().invoices.iter().map(|i| i.to_json()).collect()
    }

    /// Accepted meter events, each once, in arrival order.
    pub fn meter_events(&self) -> Vec<MeterEvent> {
        self.state().meter_events.clone()
    }

    /// Every event created, in order — delivered or not.
    pub fn events(&self) -> Vec<Value> {
        self.state()
            .events
            .iter()
            .map(|e| serde_json::from_str(&e.body).expect("events are JSON"))
            .collect()
    }

    /// Every webhook POST (driver calls, resends, raw sends), in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state().deliveries.clone()
    }

    // ----- webhooks -----

    /// Sends an event again: the same body, signed afresh with the current time
    /// (what Stripe does when it retries a delivery).
    pub async fn resend(&self, event_id: &str) -> Result<Delivery, SimError> {
        let url = self.webhook_url()?;
        let body = self
            .state()
            .events
            .iter()
            .find(|e| e.id == event_id)
            .map(|e| e.body.clone())
            .ok_or_else(|| SimError::not_found("event", event_id))?;
        let signature = sign(&body, ids::now(), &self.0.config.webhook_secret);
        self.post_webhook(&url, event_id, &body, &signature).await
    }

    /// POSTs `body` with `signature_header` as `Stripe-Signature`, exactly as
    /// given. `Delivery::event_id` is the body's `id` when it has one.
    pub async fn send_raw(&self, body: &str, signature_header: &str) -> Result<Delivery, SimError> {
        let url = self.webhook_url()?;
        let event_id = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.post_webhook(&url, &event_id, body, signature_header)
            .await
    }

    // ----- internals -----

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().expect("stripe sim state")
    }

    pub(crate) fn webhook_url(&self) -> Result<String, SimError> {
        self.state()
            .webhook_url
            .clone()
            .ok_or(SimError::NoWebhookUrl)
    }

    /// Creates an event (kept in `events`) and returns what to deliver.
    pub(crate) fn emit(
        &self,
        st: &mut State,
        kind: &str,
        object: Value,
        previous_attributes: Option<Value>,
    ) -> StoredEvent {
        let id = self.0.ids.make("evt_", 24);
        let mut data = json!({ "object": object });
        if let Some(previous) = previous_attributes {
            data["previous_attributes"] = previous;
        }
        let event = json!({
            "id": id,
            "object": "event",
            "api_version": API_VERSION,
            "created": ids::now(),
            "livemode": false,
            "type": kind,
            "data": data,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
        });
        // Stripe's webhook bodies are pretty-printed; a receiver that re-serialises
        // the JSON before checking the signature fails here as it would there.
        let body = serde_json::to_string_pretty(&event).expect("json");
        let stored = StoredEvent { id, body };
        st.events.push(stored.clone());
        stored
    }

    /// Delivers events in order, each signed at the moment it is sent; stops at
    /// the first that cannot be delivered.
    pub(crate) async fn deliver(
        &self,
        url: &str,
        events: Vec<StoredEvent>,
    ) -> Result<Vec<Delivery>, SimError> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let signature = sign(&e.body, ids::now(), &self.0.config.webhook_secret);
            out.push(self.post_webhook(url, &e.id, &e.body, &signature).await?);
        }
        Ok(out)
    }

    async fn post_webhook(
        &self,
        url: &str,
        event_id: &str,
        body: &str,
        signature: &str,
    ) -> Result<Delivery, SimError> {
        let sent = self
            .0
            .http
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header("stripe-signature", signature)
            .body(body.to_string())
            .send()
            .await;
        let result = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the answer so the connection can be reused.
                let _ = response.bytes().await;
                Ok(status)
            }
            Err(e) => Err(e.to_string()),
        };
        let delivery = Delivery {
            event_id: event_id.to_string(),
            status: *result.as_ref().unwrap_or(&0),
        };
        self.state().deliveries.push(delivery.clone());
        match result {
            Ok(_) => Ok(delivery),
            Err(reason) => Err(SimError::Unreachable {
                event_id: event_id.to_string(),
                reason,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_stripes_documented_scheme() {
        // `printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test`
        assert_eq!(
            sign("{}", 1_700_000_000, "whsec_test"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }
}
