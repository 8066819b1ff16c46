//! Shared by the integration tests: a plain form-posting Stripe client and a
//! webhook receiver that checks signatures itself (not with the simulator's
//! `sign`), so a signing bug in the simulator fails the tests.
#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use townes_stripe_sim::{SimConfig, StripeSim};

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub async fn sim() -> StripeSim {
    StripeSim::start(SimConfig::new()).await.expect("start")
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub raw: String,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Talks to the simulator as a Stripe client does: form bodies, Bearer key.
pub struct Client {
    pub base: String,
    pub key: Option<String>,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(sim: &StripeSim) -> Self {
        Self {
            base: sim.base_url(),
            key: Some(sim.secret_key()),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.post_with_key(path, form, None).await
    }

    pub async fn post_with_key(
        &self,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> Reply {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("stripe-version", "2025-03-31.basil")
            .form(form);
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        reply(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        reply(req.send().await.unwrap()).await
    }

    /// A customer's id.
    pub async fn customer(&self) -> String {
        let r = self
            .post(
                "/v1/customers",
                &[("name", "Guild 1"), ("metadata[tenant_id]", "t1")],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.raw);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// A subscription Checkout session for `customer`; its id.
    pub async fn checkout(&self, customer: &str, trial_days: Option<&str>) -> String {
        let mut form = vec![
            ("mode", "subscription"),
            ("customer", customer),
            ("client_reference_id", "t1"),
            ("line_items[0][price]", "price_base"),
            ("line_items[0][quantity]", "2"),
            ("subscription_data[metadata][tenant_id]", "t1"),
            ("metadata[tenant_id]", "t1"),
            (
                "success_url",
                "http://app.test/billing/done?s={CHECKOUT_SESSION_ID}",
            ),
            ("cancel_url", "http://app.test/billing"),
        ];
        if let Some(d) = trial_days {
            form.push(("subscription_data[trial_period_days]", d));
        }
        let r = self.post("/v1/checkout/sessions", &form).await;
        assert_eq!(r.status, 200, "{}", r.raw);
        r.body["id"].as_str().unwrap().to_string()
    }
}

pub async fn reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.text().await.unwrap();
    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        raw,
        body,
    }
}

/// One POST the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub body: String,
    pub signature: String,
    /// Whether the signature checked out (then the receiver answered 200, else 400).
    pub valid: bool,
}

impl Received {
    pub fn event(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A webhook endpoint verifying Stripe signatures the documented way: HMAC-SHA256
/// keyed by the secret over `"{t}.{raw body}"`, any `v1` matching, `t` within
/// 300 s.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    secret: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(secret: &str) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook", listener.local_addr().unwrap());
        let receiver = Receiver {
            url,
            secret: secret.to_string(),
            got: Arc::default(),
        };
        let app = Router::new()
            .route("/webhook", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The valid events' JSON, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.received()
            .iter()
            .filter(|r| r.valid)
            .map(Received::event)
            .collect()
    }

    fn verify(&self, body: &str, header: &str) -> bool {
        let mut t = None;
        let mut v1 = Vec::new();
        for part in header.split(',') {
            match part.split_once('=') {
                Some(("t", value)) => t = value.parse::<i64>().ok(),
                Some(("v1", value)) => v1.push(value.to_string()),
                _ => {}
            }
        }
        let Some(t) = t else { return false };
        if (now() - t).abs() > 300 {
            return false;
        }
        v1.iter().any(|candidate| {
            let Ok(given) = hex::decode(candidate) else {
                return false;
            };
            let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).unwrap();
            mac.update(format!("{t}.{body}").as_bytes());
            mac.verify_slice(&given).is_ok()
        })
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let body = String::from_utf8(body.to_vec()).unwrap();
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let valid = r.verify(&body, &signature);
    r.got.lock().unwrap().push(Received {
        body,
        signature,
        valid,
    });
    if valid {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
}
