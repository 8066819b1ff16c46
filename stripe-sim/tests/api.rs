//! The REST side over real HTTP: auth, object shapes, validation, idempotency,
//! meter events and outages.

mod common;

use common::{Client, now, sim};

#[tokio::test]
async fn requests_without_the_key_are_refused() {
    let sim = sim().await;
    let mut api = Client::new(&sim);

    api.key = None;
    let r = api.post("/v1/customers", &[("name", "x")]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("API key")
    );

    api.key = Some("sk_test_wrong1234".into());
    let r = api.post("/v1/customers", &[("name", "x")]).await;
    assert_eq!(r.status, 401);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Invalid API Key provided"), "{message}");
    assert!(
        message.ends_with("1234") && !message.contains("wrong"),
        "{message}"
    );

    assert!(sim.customers().is_empty());
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401]);
}

#[tokio::test]
async fn customer_checkout_and_portal_objects_look_like_stripes() {
    let sim = sim().await;
    let api = Client::new(&sim);

    let r = api
        .post(
            "/v1/customers",
            &[
                ("name", "Guild One"),
                ("email", "owner@example.com"),
                ("metadata[tenant_id]", "t1"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let c = &r.body;
    let customer = c["id"].as_str().unwrap();
    assert!(customer.starts_with("cus_"));
    assert_eq!(c["object"], "customer");
    assert_eq!(c["name"], "Guild One");
    assert_eq!(c["email"], "owner@example.com");
    assert_eq!(c["metadata"], serde_json::json!({ "tenant_id": "t1" }));
    assert_eq!(c["livemode"], false);
    assert!((c["created"].as_i64().unwrap() - now()).abs() < 5);
    assert!(r.header("request-id").unwrap().starts_with("req_"));

    let r = api
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "subscription"),
                ("customer", customer),
                ("client_reference_id", "t1"),
                ("line_items[0][price]", "price_base"),
                ("line_items[0][quantity]", "1"),
                ("subscription_data[trial_period_days]", "30"),
                ("metadata[tenant_id]", "t1"),
                ("success_url", "http://app.test/ok"),
                ("cancel_url", "http://app.test/no"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let s = &r.body;
    let id = s["id"].as_str().unwrap();
    assert!(id.starts_with("cs_test_"));
    assert_eq!(s["object"], "checkout.session");
    assert_eq!(s["url"], format!("{}/checkout/{id}", sim.base_url()));
    assert_eq!(s["customer"], customer);
    assert_eq!(s["client_reference_id"], "t1");
    assert_eq!(s["mode"], "subscription");
    assert_eq!(s["status"], "open");
    assert_eq!(s["payment_status"], "unpaid");
    assert!(s["subscription"].is_null());
    assert_eq!(s["metadata"]["tenant_id"], "t1");
    assert_eq!(s["livemode"], false);
    assert_eq!(
        s["expires_at"].as_i64().unwrap() - s["created"].as_i64().unwrap(),
        86_400
    );
    assert_eq!(sim.checkout_sessions(), vec![s.clone()]);
    // The recorder kept the form as sent.
    let recorded = sim.requests().pop().unwrap();
    assert_eq!(recorded.path, "/v1/checkout/sessions");
    assert_eq!(recorded.stripe_version.as_deref(), Some("2025-03-31.basil"));
    assert!(
        recorded
            .form
            .contains(&("subscription_data[trial_period_days]".into(), "30".into()))
    );

    // The hosted page is there for a browser.
    let page = api
        .http
        .get(s["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(id));

    // Retrieval, as Stripe serves it.
    let r = api.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(r.body, *s);
    let r = api.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(r.body["id"], customer);
    let r = api.get("/v1/customers/cus_nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "resource_missing");

    let r = api
        .post(
            "/v1/billing_portal/sessions",
            &[
                ("customer", customer),
                ("return_url", "http://app.test/back"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let p = &r.body;
    let pid = p["id"].as_str().unwrap();
    assert!(pid.starts_with("bps_"));
    assert_eq!(p["object"], "billing_portal.session");
    assert_eq!(p["url"], format!("{}/portal/{pid}", sim.base_url()));
    assert_eq!(p["customer"], customer);
    assert_eq!(p["return_url"], "http://app.test/back");
    assert_eq!(sim.portal_sessions().len(), 1);
    let page = api
        .http
        .get(p["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("http://app.test/back"));

    let r = api
        .post("/v1/billing_portal/sessions", &[("customer", "cus_nope")])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "resource_missing");
    assert_eq!(sim.portal_sessions().len(), 1);
}

#[tokio::test]
async fn checkout_sessions_are_validated() {
    let sim = sim().await;
    let api = Client::new(&sim);
    let customer = api.customer().await;
    let base = |mode: &'static str, customer: String, price: &'static str| {
        vec![
            ("mode", mode.to_string()),
            ("customer", customer),
            ("line_items[0][price]", price.to_string()),
            ("line_items[0][quantity]", "1".to_string()),
        ]
    };
    let send = |form: Vec<(&'static str, String)>| {
        let api = &api;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            api.post("/v1/checkout/sessions", &form).await
        }
    };

    let r = send(base("payment", customer.clone(), "price_base")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    assert_eq!(r.body["error"]["param"], "mode");

    let r = send(base("subscription", "cus_missing".into(), "price_base")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "resource_missing");
    assert_eq!(r.body["error"]["param"], "customer");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cus_missing")
    );

    let r = send(base("subscription", customer.clone(), "price_gold")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "resource_missing");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("price_gold")
    );
    assert_eq!(r.body["error"]["param"], "line_items[0][price]");

    let mut trial = base("subscription", customer.clone(), "price_base");
    trial.push(("subscription_data[trial_period_days]", "thirty".into()));
    assert_eq!(send(trial).await.status, 400);

    assert!(sim.checkout_sessions().is_empty());
    let r = send(base("subscription", customer, "price_base")).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(sim.checkout_sessions().len(), 1);
}

#[tokio::test]
async fn a_repeated_idempotency_key_replays_the_first_answer() {
    let sim = sim().await;
    let api = Client::new(&sim);
    let form = [("name", "Guild"), ("metadata[tenant_id]", "t1")];

    let first = api.post_with_key("/v1/customers", &form, Some("k-1")).await;
    let second = api.post_with_key("/v1/customers", &form, Some("k-1")).await;
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 200);
    assert_eq!(
        second.raw, first.raw,
        "the replay is byte for byte the first answer"
    );
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        second.header("original-request"),
        first.header("request-id")
    );
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(sim.customers().len(), 1);
    assert_eq!(sim.idempotent_replays(), 1);

    // Another request under the same key is refused, not replayed.
    let other = api
        .post_with_key("/v1/customers", &[("name", "Other")], Some("k-1"))
        .await;
    assert_eq!(other.status, 400);
    assert_eq!(other.body["error"]["type"], "idempotency_error");
    assert_eq!(sim.customers().len(), 1);
    assert_eq!(sim.idempotent_replays(), 1);

    // A new key is a new request.
    let third = api.post_with_key("/v1/customers", &form, Some("k-2")).await;
    assert_ne!(third.body["id"], first.body["id"]);
    assert_eq!(sim.customers().len(), 2);

    let recorded = sim.requests();
    let replayed: Vec<bool> = recorded.iter().map(|r| r.replayed).collect();
    assert_eq!(replayed, [false, true, false, false]);
    assert_eq!(recorded[1].idempotency_key.as_deref(), Some("k-1"));
}

#[tokio::test]
async fn meter_events_are_accepted_once_per_identifier() {
    let sim = sim().await;
    let api = Client::new(&sim);
    let customer = api.customer().await;
    let at = now() - 60;
    let ts = at.to_string();
    let event = |identifier: &'static str, value: &'static str| {
        vec![
            ("event_name", "bot_calls".to_string()),
            ("payload[stripe_customer_id]", customer.clone()),
            ("payload[value]", value.to_string()),
            ("identifier", identifier.to_string()),
            ("timestamp", ts.clone()),
        ]
    };
    let send = |form: Vec<(&'static str, String)>, key: Option<&'static str>| {
        let api = &api;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            api.post_with_key("/v1/billing/meter_events", &form, key)
                .await
        }
    };

    let r = send(event("usage-1", "42"), Some("mk-1")).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["object"], "billing.meter_event");
    assert_eq!(r.body["event_name"], "bot_calls");
    assert_eq!(r.body["identifier"], "usage-1");
    assert_eq!(r.body["payload"]["value"], "42");
    assert_eq!(r.body["payload"]["stripe_customer_id"], customer.as_str());
    assert_eq!(r.body["timestamp"].as_i64(), Some(at));

    // The client's retry with its idempotency key is a replay, not a duplicate.
    let replay = send(event("usage-1", "42"), Some("mk-1")).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.raw, r.raw);

    // The same identifier without that key is refused.
    let dup = send(event("usage-1", "42"), None).await;
    assert_eq!(dup.status, 400);
    assert_eq!(dup.body["error"]["type"], "invalid_request_error");
    assert_eq!(dup.body["error"]["code"], "duplicate_meter_event");
    assert!(
        dup.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("usage-1")
    );
    assert_eq!(dup.header("stripe-should-retry"), Some("false"));

    let other = send(event("usage-2", "8"), None).await;
    assert_eq!(other.status, 200);

    let events = sim.meter_events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].identifier, "usage-1");
    assert_eq!(events[0].value, 42);
    assert_eq!(events[0].customer, customer);
    assert_eq!(events[0].event_name, "bot_calls");
    assert_eq!(events[0].timestamp, at);
    assert_eq!(events[1].value, 8);

    // Unknown customer, non-integer value, a timestamp in milliseconds.
    let mut bad = event("usage-3", "1");
    bad[1].1 = "cus_nope".into();
    assert_eq!(send(bad, None).await.status, 400);
    assert_eq!(send(event("usage-4", "1.5"), None).await.status, 400);
    let mut ms = event("usage-5", "1");
    ms[4].1 = (now() * 1000).to_string();
    let r = send(ms, None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["param"], "timestamp");
    assert_eq!(sim.meter_events().len(), 2);
}

#[tokio::test]
async fn an_unreachable_stripe_answers_503_and_a_retry_runs_once() {
    let sim = sim().await;
    let api = Client::new(&sim);
    let form = [("name", "Guild")];

    sim.set_unreachable(true);
    let r = api.post_with_key("/v1/customers", &form, Some("k")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["error"]["type"], "api_error");
    assert_eq!(r.header("stripe-should-retry"), Some("true"));
    assert!(sim.customers().is_empty());

    sim.set_unreachable(false);
    let r = api.post_with_key("/v1/customers", &form, Some("k")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("idempotent-replayed"),
        None,
        "the 503 kept nothing"
    );
    assert_eq!(sim.customers().len(), 1);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 200]);
}

#[tokio::test]
async fn a_lost_answer_is_replayed_to_the_retry() {
    let sim = sim().await;
    let api = Client::new(&sim);
    let form = [("name", "Guild")];

    sim.lose_responses(1);
    let lost = api.post_with_key("/v1/customers", &form, Some("k")).await;
    assert_eq!(lost.status, 502);
    assert_eq!(sim.customers().len(), 1, "the request was carried out");

    let retry = api.post_with_key("/v1/customers", &form, Some("k")).await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body["id"], sim.customers()[0]["id"]);
    assert_eq!(sim.customers().len(), 1);
    assert_eq!(sim.idempotent_replays(), 1);
}

#[tokio::test]
async fn unknown_routes_are_404_in_stripes_shape() {
    let sim = sim().await;
    let api = Client::new(&sim);
    let r = api.post("/v1/refunds", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/refunds")
    );
    let r = api.get("/elsewhere").await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"]["message"].is_string());
}
