//! The billing lifecycle and its webhooks, received by an endpoint that checks
//! Stripe signatures on its own.

mod common;

use common::{Client, Receiver, now, sim};
use serde_json::Value;
use townes_stripe_sim::{Delivery, SimError, StripeSim, sign};

const DAY: i64 = 86_400;

async fn world() -> (StripeSim, Client, Receiver) {
    let sim = sim().await;
    let receiver = Receiver::start(&sim.webhook_secret()).await;
    sim.set_webhook_url(&receiver.url);
    let api = Client::new(&sim);
    (sim, api, receiver)
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

fn all_ok(deliveries: &[Delivery]) -> bool {
    deliveries.iter().all(|d| d.status == 200)
}

fn period(sub: &Value) -> (i64, i64) {
    let item = &sub["items"]["data"][0];
    (
        item["current_period_start"].as_i64().unwrap(),
        item["current_period_end"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn paying_checkout_sends_three_signed_events() {
    let (sim, api, receiver) = world().await;
    let customer = api.customer().await;
    let session = api.checkout(&customer, None).await;

    let sub_id = sim.complete_checkout(&session).await.unwrap();
    assert!(sub_id.starts_with("sub_"));

    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.valid), "{received:?}");
    assert!(all_ok(&sim.deliveries()));
    // Pretty-printed, as Stripe's bodies are.
    assert!(received[0].body.contains("\n  \"api_version\""));

    let events = receiver.events();
    assert_eq!(
        types(&events),
        [
            "checkout.session.completed",
            "customer.subscription.created",
            "invoice.paid"
        ]
    );
    assert_eq!(events, sim.events());
    for e in &events {
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(e["object"], "event");
        assert_eq!(e["api_version"], "2025-03-31.basil");
        assert_eq!(e["livemode"], false);
        assert_eq!(e["pending_webhooks"], 1);
        assert!(e["request"]["id"].is_null());
        assert!((e["created"].as_i64().unwrap() - now()).abs() < 5);
    }

    let s = &events[0]["data"]["object"];
    assert_eq!(s["object"], "checkout.session");
    assert_eq!(s["id"], session.as_str());
    assert_eq!(s["status"], "complete");
    assert_eq!(s["payment_status"], "paid");
    assert_eq!(s["subscription"], sub_id.as_str());
    assert_eq!(s["client_reference_id"], "t1");
    assert_eq!(s["metadata"]["tenant_id"], "t1");

    let sub = &events[1]["data"]["object"];
    assert_eq!(sub["object"], "subscription");
    assert_eq!(sub["id"], sub_id.as_str());
    assert_eq!(sub["customer"], customer.as_str());
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["cancel_at_period_end"], false);
    assert!(sub["trial_end"].is_null() && sub["ended_at"].is_null());
    assert_eq!(sub["metadata"]["tenant_id"], "t1");
    let item = &sub["items"]["data"][0];
    assert!(item["id"].as_str().unwrap().starts_with("si_"));
    assert_eq!(item["object"], "subscription_item");
    assert_eq!(item["price"]["id"], "price_base");
    assert_eq!(item["quantity"], 2);
    let (start, end) = period(sub);
    assert_eq!(end - start, 30 * DAY);

    let invoice = &events[2]["data"]["object"];
    assert!(invoice["id"].as_str().unwrap().starts_with("in_"));
    assert_eq!(invoice["object"], "invoice");
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["customer"], customer.as_str());
    assert_eq!(invoice["subscription"], sub_id.as_str());
    assert_eq!(
        invoice["parent"]["subscription_details"]["subscription"],
        sub_id.as_str()
    );
    assert_eq!(invoice["billing_reason"], "subscription_create");
    assert_eq!(invoice["amount_paid"], 2 * townes_stripe_sim::UNIT_AMOUNT);
    assert_eq!(sub["latest_invoice"], invoice["id"]);

    // The stored objects agree with what was sent.
    assert_eq!(sim.subscription(&sub_id).as_ref(), Some(sub));
    assert_eq!(
        sim.checkout_session(&session).unwrap()["status"],
        "complete"
    );
    // Paying twice is not a thing.
    assert!(matches!(
        sim.complete_checkout(&session).await,
        Err(SimError::InvalidState(_))
    ));
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn a_trial_runs_until_paid() {
    let (sim, api, receiver) = world().await;
    let customer = api.customer().await;
    let session = api.checkout(&customer, Some("30")).await;

    let sub_id = sim.complete_checkout(&session).await.unwrap();
    let events = receiver.events();
    assert_eq!(
        types(&events),
        [
            "checkout.session.completed",
            "customer.subscription.created"
        ]
    );
    assert_eq!(
        events[0]["data"]["object"]["payment_status"],
        "no_payment_required"
    );
    let sub = &events[1]["data"]["object"];
    assert_eq!(sub["status"], "trialing");
    let trial_end = sub["trial_end"].as_i64().unwrap();
    assert!((trial_end - (now() + 30 * DAY)).abs() < 5);
    assert_eq!(period(sub).1, trial_end, "the trial is the first period");
    assert!(sub["latest_invoice"].is_null());

    let d = sim.trial_will_end(&sub_id).await.unwrap();
    assert_eq!(d.len(), 1);
    assert!(all_ok(&d));
    let e = receiver.events().pop().unwrap();
    assert_eq!(e["type"], "customer.subscription.trial_will_end");
    assert_eq!(e["data"]["object"]["status"], "trialing");

    let d = sim.pay(&sub_id).await.unwrap();
    assert_eq!(d.len(), 2);
    assert!(all_ok(&d));
    let events = receiver.events();
    let [paid, updated] = &events[events.len() - 2..] else {
        unreachable!()
    };
    assert_eq!(paid["type"], "invoice.paid");
    assert_eq!(
        paid["data"]["object"]["billing_reason"],
        "subscription_cycle"
    );
    assert_eq!(updated["type"], "customer.subscription.updated");
    let sub = &updated["data"]["object"];
    assert_eq!(sub["status"], "active");
    assert!(sub["trial_end"].as_i64().unwrap() <= now());
    let (start, end) = period(sub);
    assert!((start - now()).abs() < 5);
    assert_eq!(end - start, 30 * DAY);
    let previous = &updated["data"]["previous_attributes"];
    assert_eq!(previous["status"], "trialing");
    assert_eq!(previous["trial_end"], trial_end);

    // No trial any more.
    assert!(matches!(
        sim.trial_will_end(&sub_id).await,
        Err(SimError::InvalidState(_))
    ));
}

#[tokio::test]
async fn failure_recovery_cancellation_and_end() {
    let (sim, api, receiver) = world().await;
    let customer = api.customer().await;
    let session = api.checkout(&customer, None).await;
    let sub_id = sim.complete_checkout(&session).await.unwrap();
    let first_period = period(&sim.subscription(&sub_id).unwrap());

    // The renewal fails.
    let d = sim.fail_payment(&sub_id).await.unwrap();
    assert_eq!(d.len(), 2);
    assert!(all_ok(&d));
    let events = receiver.events();
    let [failed, updated] = &events[events.len() - 2..] else {
        unreachable!()
    };
    assert_eq!(failed["type"], "invoice.payment_failed");
    let invoice = &failed["data"]["object"];
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["subscription"], sub_id.as_str());
    assert_eq!(invoice["customer"], customer.as_str());
    assert_eq!(invoice["attempt_count"], 1);
    assert!(invoice["next_payment_attempt"].as_i64().unwrap() > now());
    assert_eq!(updated["type"], "customer.subscription.updated");
    assert_eq!(updated["data"]["object"]["status"], "past_due");
    assert_eq!(updated["data"]["previous_attributes"]["status"], "active");
    let sub = sim.subscription(&sub_id).unwrap();
    assert_eq!(sub["status"], "past_due");
    assert_eq!(
        period(&sub),
        (first_period.1, first_period.1 + 30 * DAY),
        "the next period began at the failed renewal"
    );

    // The retry fails too: same invoice, nothing new on the subscription.
    let d = sim.fail_payment(&sub_id).await.unwrap();
    assert_eq!(d.len(), 1);
    let again = receiver.events().pop().unwrap();
    assert_eq!(again["type"], "invoice.payment_failed");
    assert_eq!(again["data"]["object"]["id"], invoice["id"]);
    assert_eq!(again["data"]["object"]["attempt_count"], 2);

    // Then it is paid.
    let d = sim.pay(&sub_id).await.unwrap();
    assert_eq!(d.len(), 2);
    let events = receiver.events();
    let [paid, updated] = &events[events.len() - 2..] else {
        unreachable!()
    };
    assert_eq!(paid["type"], "invoice.paid");
    assert_eq!(paid["data"]["object"]["id"], invoice["id"]);
    assert_eq!(paid["data"]["object"]["status"], "paid");
    assert_eq!(updated["data"]["object"]["status"], "active");
    assert_eq!(sim.subscription(&sub_id).unwrap()["status"], "active");
    assert_eq!(
        period(&sim.subscription(&sub_id).unwrap()).0,
        first_period.1
    );

    // The customer cancels at period end.
    let d = sim.cancel_at_period_end(&sub_id).await.unwrap();
    assert_eq!(d.len(), 1);
    let e = receiver.events().pop().unwrap();
    assert_eq!(e["type"], "customer.subscription.updated");
    let sub = &e["data"]["object"];
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["cancel_at_period_end"], true);
    assert_eq!(sub["cancel_at"].as_i64(), Some(period(sub).1));
    assert_eq!(
        e["data"]["previous_attributes"]["cancel_at_period_end"],
        false
    );
    // It ends instead of renewing.
    assert!(matches!(
        sim.pay(&sub_id).await,
        Err(SimError::InvalidState(_))
    ));

    let d = sim.end_subscription(&sub_id).await.unwrap();
    assert_eq!(d.len(), 1);
    let e = receiver.events().pop().unwrap();
    assert_eq!(e["type"], "customer.subscription.deleted");
    assert_eq!(e["data"]["object"]["status"], "canceled");
    assert!((e["data"]["object"]["ended_at"].as_i64().unwrap() - now()).abs() < 5);
    assert_eq!(sim.subscription(&sub_id).unwrap()["status"], "canceled");

    let before = receiver.received().len();
    for result in [
        sim.fail_payment(&sub_id).await,
        sim.pay(&sub_id).await,
        sim.end_subscription(&sub_id).await,
    ] {
        assert!(
            matches!(result, Err(SimError::InvalidState(_))),
            "{result:?}"
        );
    }
    assert!(matches!(
        sim.pay("sub_nope").await,
        Err(SimError::NotFound { .. })
    ));
    assert_eq!(receiver.received().len(), before);
    assert!(receiver.received().iter().all(|r| r.valid));
}

#[tokio::test]
async fn resends_and_forgeries() {
    let (sim, api, receiver) = world().await;
    let customer = api.customer().await;
    let session = api.checkout(&customer, None).await;
    sim.complete_checkout(&session).await.unwrap();
    let first = receiver.received()[0].clone();
    let event_id = first.event()["id"].as_str().unwrap().to_string();

    // A retry: the same body, signed again.
    let d = sim.resend(&event_id).await.unwrap();
    assert_eq!(
        d,
        Delivery {
            event_id: event_id.clone(),
            status: 200
        }
    );
    let again = receiver.received().pop().unwrap();
    assert!(again.valid);
    assert_eq!(again.body, first.body);

    let body = first.body.as_str();
    let secret = sim.webhook_secret();
    // A correct raw send passes, so the refusals below are about what they change.
    assert_eq!(
        sim.send_raw(body, &sign(body, now(), &secret))
            .await
            .unwrap()
            .status,
        200
    );
    let wrong_secret = sim.send_raw(body, &sign(body, now(), "whsec_forged")).await;
    assert_eq!(wrong_secret.unwrap().status, 400);
    let stale = sim.send_raw(body, &sign(body, now() - 3600, &secret)).await;
    assert_eq!(stale.unwrap().status, 400);
    let tampered_body = body.replace("\"livemode\": false", "\"livemode\": true");
    assert_ne!(tampered_body, body);
    let tampered = sim
        .send_raw(&tampered_body, &sign(body, now(), &secret))
        .await
        .unwrap();
    assert_eq!(tampered.status, 400);
    assert_eq!(tampered.event_id, event_id);
    assert_eq!(sim.send_raw(body, "").await.unwrap().status, 400);

    let valid: Vec<bool> = receiver.received().iter().map(|r| r.valid).collect();
    assert_eq!(
        valid,
        [true, true, true, true, true, false, false, false, false]
    );
    assert!(matches!(
        sim.resend("evt_nope").await,
        Err(SimError::NotFound { .. })
    ));
}

#[tokio::test]
async fn delivery_needs_a_reachable_endpoint() {
    let sim = sim().await;
    let api = Client::new(&sim);
    let customer = api.customer().await;
    let session = api.checkout(&customer, None).await;

    // No endpoint: nothing happens.
    assert_eq!(
        sim.complete_checkout(&session).await,
        Err(SimError::NoWebhookUrl)
    );
    assert_eq!(sim.checkout_session(&session).unwrap()["status"], "open");
    assert!(sim.events().is_empty());

    // An endpoint nobody listens on: the payment happens, delivery fails.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/webhook", closed.local_addr().unwrap());
    drop(closed);
    sim.set_webhook_url(&dead_url);
    let err = sim.complete_checkout(&session).await.unwrap_err();
    let SimError::Unreachable { event_id, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        sim.checkout_session(&session).unwrap()["status"],
        "complete"
    );
    assert_eq!(sim.subscriptions().len(), 1);
    let events = sim.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["id"], event_id.as_str());
    assert_eq!(
        sim.deliveries(),
        [Delivery {
            event_id,
            status: 0
        }]
    );

    // Once the endpoint is up, the undelivered events can be sent.
    let receiver = Receiver::start(&sim.webhook_secret()).await;
    sim.set_webhook_url(&receiver.url);
    for e in &events {
        let d = sim.resend(e["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(d.status, 200);
    }
    assert_eq!(receiver.events(), events);
}

#[tokio::test]
async fn the_hosted_checkout_page_pays_and_redirects() {
    let (sim, api, receiver) = world().await;
    let customer = api.customer().await;
    let session = api.checkout(&customer, Some("7")).await;

    let r = api
        .http
        .post(format!("{}/checkout/{session}/complete", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("http://app.test/billing/done?s={session}").as_str()
    );
    assert_eq!(receiver.events().len(), 2);
    assert_eq!(sim.subscriptions()[0]["status"], "trialing");
}
