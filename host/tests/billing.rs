//! Billing end to end, on both backends: a tenant's trial, Checkout through the
//! fake Stripe (`stripe-sim`), Stripe's signed webhooks moving the plan, the
//! runtime applying the plan's limits on the next invocation, the expiry job,
//! and AI usage reaching Stripe's meter once per day.

mod common;

use chrono::{Days, TimeDelta, Utc};
use common::harness::{GUILD_A, GUILD_B, HOSTILE_CAPS, Harness, limits, reply_text};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use townes::api::{ApiConfig, ApiParts, ApiServer, ApiState};
use townes::billing::{Billing, BillingConfig};
use townes::grants::Approval;
use townes::live::Live;
use townes::marketplace::Marketplace;
use townes::runtime::Plans;
use townes::store::Store;
use townes::wit::Capability;
use townes_stripe_sim::{SimConfig, StripeSim};

/// Free: 4 storage rows and only the hostile test feature; base: 8 rows, every
/// feature, two guilds of a tenant, billed at `price_base`.
const PLANS: &str = r#"{
    "free": {"storage_rows": 4, "storage_bytes": 1000000, "features": ["hostile"]},
    "base": {"storage_rows": 8, "storage_bytes": 1000000, "stripe_price": "price_base", "guilds": 2}
}"#;

struct World {
    h: Harness,
    stripe: StripeSim,
    billing: Arc<Billing>,
    server: ApiServer,
    http: reqwest::Client,
    base: String,
    tenant: String,
    key: String,
    hostile: String,
}

fn config(stripe: &StripeSim) -> BillingConfig {
    BillingConfig {
        stripe_secret: Some(SimConfig::new().secret_key),
        stripe_webhook_secret: Some(SimConfig::new().webhook_secret),
        stripe_api_base: stripe.base_url(),
        ..BillingConfig::local()
    }
}

impl World {
    async fn new(store: Store) -> World {
        let h = Harness::with_config(store.clone(), limits(), |c| {
            c.plans = Plans::from_json(PLANS).unwrap();
        })
        .await;
        let hostile = h.install("hostile", HOSTILE_CAPS).await;
        let tenant = store.create_tenant(1, Some("Olivia")).await.unwrap();
        store
            .set_guild_tenant(GUILD_A, Some(&tenant.id))
            .await
            .unwrap();
        let (_, key) = townes::api::auth::issue_api_key(&store, &tenant.id, "test", "test".into())
            .await
            .unwrap();
        let stripe = StripeSim::start(SimConfig::new()).await.unwrap();
        let billing = Arc::new(Billing::new(
            store.clone(),
            h.runtime.plans().clone(),
            config(&stripe),
        ));
        let parts = ApiParts {
            runtime: h.runtime.clone(),
            live: Live::local(),
            discord: None,
            platform: None,
            billing: Some(billing.clone()),
            offboarding: None,
            exports: None,
        };
        let server = ApiServer::start(ApiState::new(ApiConfig::local(), parts).unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", server.addr);
        stripe.set_webhook_url(format!("{base}/webhooks/stripe"));
        World {
            h,
            stripe,
            billing,
            server,
            http: reqwest::Client::new(),
            base,
            tenant: tenant.id,
            key,
            hostile,
        }
    }

    async fn call(&self, method: Method, path: &str) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn billing_state(&self) -> Value {
        let (status, body) = self
            .call(Method::GET, &format!("/tenants/{}/billing", self.tenant))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// How many rows the hostile feature's `fill` stores in `guild` before its
    /// quota stops it: the plan's `storage_rows` minus the one `migrate` wrote.
    async fn fill(&self, guild: u64) -> String {
        reply_text(&self.h.command(guild, &self.hostile, "fill", vec![]).await)
    }

    /// The guild runs on free again: what it stored on the paid plan is kept,
    /// but nothing more fits, and features outside the free plan are refused.
    async fn assert_back_on_free(&self, label: &str) {
        let guild = self.h.store.guild(GUILD_A).await.unwrap().unwrap();
        assert_eq!(guild.plan, "free", "{label}");
        assert!(stopped_at(&self.fill(GUILD_A).await, 7), "{label}");
        let notes = self
            .h
            .runtime
            .install(&common::component("notes"))
            .await
            .unwrap()
            .0;
        let refused = Marketplace::new(&self.h.runtime, "test")
            .enable(
                GUILD_A,
                &notes.feature_id,
                None,
                Approval::of([Capability::Storage]),
            )
            .await;
        assert!(refused.is_err(), "{label}");
    }

    async fn billing_audits(&self) -> Vec<String> {
        let mut actions: Vec<String> = self
            .h
            .store
            .audit_entries(GUILD_A, 200)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action.starts_with("billing."))
            .map(|e| e.action)
            .collect();
        actions.reverse();
        actions
    }
}

fn stopped_at(text: &str, rows: u32) -> bool {
    text.starts_with(&format!("fill: stopped at {rows} with QuotaExceeded("))
}

#[tokio::test]
async fn a_trial_then_checkout_then_the_subscription_lifecycle_moves_the_plan() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store).await;
        let free = w.billing_state().await;
        assert_eq!(
            (free["plan"].as_str(), free["status"].as_str()),
            (Some("free"), Some("free")),
            "{label}: {free}"
        );
        assert_eq!(free["trial_available"], json!(true), "{label}");
        assert!(stopped_at(&w.fill(GUILD_A).await, 3), "{label}");
        // The free plan does not include `notes`.
        let notes =
            w.h.runtime
                .install(&common::component("notes"))
                .await
                .unwrap()
                .0;
        let refused = Marketplace::new(&w.h.runtime, "test")
            .enable(GUILD_A, &notes.feature_id, None, Approval::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("the `free` plan, which does not include `notes`"),
            "{label}: {refused}"
        );

        // The one trial: the base plan for 30 days, applied on the next invocation.
        let (status, trial) = w
            .call(
                Method::POST,
                &format!("/tenants/{}/billing/trial", w.tenant),
            )
            .await;
        assert_eq!(status, 200, "{label}: {trial}");
        assert_eq!(
            (trial["plan"].as_str(), trial["status"].as_str()),
            (Some("base"), Some("trialing"))
        );
        let ends: chrono::DateTime<Utc> =
            serde_json::from_value(trial["trial_ends_at"].clone()).unwrap();
        assert!(
            (ends - Utc::now() - TimeDelta::days(30))
                .num_minutes()
                .abs()
                < 5
        );
        assert!(stopped_at(&w.fill(GUILD_A).await, 7), "{label}");
        // Guild B belongs to no tenant: still free. Linked, it follows the
        // tenant's plan at once, up to the plan's two guilds.
        assert!(stopped_at(&w.fill(GUILD_B).await, 3), "{label}");
        w.h.store
            .set_guild_tenant(GUILD_B, Some(&w.tenant))
            .await
            .unwrap();
        let third = townes::store::Guild::new(3000, "C", 1);
        w.h.store.upsert_guild(&third).await.unwrap();
        w.h.store
            .set_guild_tenant(3000, Some(&w.tenant))
            .await
            .unwrap();
        let mut plans = Vec::new();
        for guild in [GUILD_B, 3000] {
            plans.push(w.h.store.guild(guild).await.unwrap().unwrap().plan);
        }
        assert_eq!(plans, ["base", "free"], "{label}");
        Marketplace::new(&w.h.runtime, "test")
            .enable(
                GUILD_A,
                &notes.feature_id,
                None,
                Approval::of([Capability::Storage]),
            )
            .await
            .unwrap();
        let (status, again) = w
            .call(
                Method::POST,
                &format!("/tenants/{}/billing/trial", w.tenant),
            )
            .await;
        assert_eq!(status, 409, "{label}: {again}");
        assert!(
            again["error"]["message"]
                .as_str()
                .unwrap()
                .contains("one trial per tenant")
        );

        // Checkout: the trial's days left carry over; paying makes it active.
        let (status, page) = w
            .call(
                Method::POST,
                &format!("/tenants/{}/billing/checkout", w.tenant),
            )
            .await;
        assert_eq!(status, 200, "{label}: {page}");
        let asked = w
            .stripe
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.path == "/v1/checkout/sessions")
            .unwrap();
        assert!(
            asked
                .form
                .contains(&("subscription_data[trial_period_days]".into(), "30".into())),
            "{label}: {:?}",
            asked.form
        );
        let sessions = w.stripe.checkout_sessions();
        let session = sessions.last().unwrap();
        assert_eq!(page["url"], session["url"], "{label}");
        assert_eq!(session["client_reference_id"], json!(w.tenant));
        let subscription = w
            .stripe
            .complete_checkout(session["id"].as_str().unwrap())
            .await
            .unwrap();
        let trialing = w.billing_state().await;
        assert_eq!(trialing["status"], json!("trialing"), "{label}: {trialing}");
        w.stripe.pay(&subscription).await.unwrap();
        let active = w.billing_state().await;
        assert_eq!(
            (active["plan"].as_str(), active["status"].as_str()),
            (Some("base"), Some("active")),
            "{label}: {active}"
        );
        assert!(active["renews_at"].is_string(), "{label}: {active}");
        let audits = w.billing_audits().await;

        // A replayed delivery changes nothing; forged, stale and tampered ones are refused.
        let last = w.stripe.events().last().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let replay = w.stripe.resend(&last).await.unwrap();
        assert_eq!(replay.status, 200, "{label}");
        assert_eq!(
            w.billing_audits().await,
            audits,
            "{label}: a replay was applied twice"
        );
        let body = serde_json::to_string(w.stripe.events().last().unwrap()).unwrap();
        let now = Utc::now().timestamp();
        for (what, header, sent) in [
            (
                "forged",
                townes_stripe_sim::sign(&body, now, "whsec_not_ours"),
                body.clone(),
            ),
            (
                "stale",
                townes_stripe_sim::sign(&body, now - 600, &SimConfig::new().webhook_secret),
                body.clone(),
            ),
            (
                "tampered",
                townes_stripe_sim::sign(&body, now, &SimConfig::new().webhook_secret),
                body.replace("active", "canceled"),
            ),
        ] {
            let delivery = w.stripe.send_raw(&sent, &header).await.unwrap();
            assert_eq!(
                delivery.status, 400,
                "{label}: a {what} delivery was accepted"
            );
        }

        // A failed payment: past due with a grace period, the plan kept meanwhile.
        w.stripe.fail_payment(&subscription).await.unwrap();
        let late = w.billing_state().await;
        assert_eq!(late["status"], json!("past_due"), "{label}: {late}");
        assert!(late["grace_until"].is_string());
        assert!(stopped_at(&w.fill(GUILD_A).await, 7), "{label}");
        w.stripe.pay(&subscription).await.unwrap();
        assert_eq!(
            w.billing_state().await["status"],
            json!("active"),
            "{label}"
        );

        // Canceled at period end: still base until Stripe ends it, then free.
        w.stripe.cancel_at_period_end(&subscription).await.unwrap();
        let leaving = w.billing_state().await;
        assert_eq!(
            (
                leaving["status"].as_str(),
                leaving["cancel_at_period_end"].as_bool()
            ),
            (Some("active"), Some(true)),
            "{label}: {leaving}"
        );
        assert!(leaving["renews_at"].is_null());
        w.stripe.end_subscription(&subscription).await.unwrap();
        let ended = w.billing_state().await;
        assert_eq!(
            (ended["plan"].as_str(), ended["status"].as_str()),
            (Some("free"), Some("canceled")),
            "{label}: {ended}"
        );
        w.assert_back_on_free(&label).await;
        // Stripe does not promise order: an older state arriving late (a new
        // event id, an earlier `created`) is recorded and changes nothing.
        let mut late = w
            .stripe
            .events()
            .into_iter()
            .find(|e| {
                e["type"] == "customer.subscription.updated"
                    && e["data"]["object"]["status"] == "active"
            })
            .unwrap();
        late["id"] = json!("evt_arrives_late");
        late["created"] = json!(late["created"].as_i64().unwrap() - 1);
        let body = late.to_string();
        let header = townes_stripe_sim::sign(
            &body,
            Utc::now().timestamp(),
            &SimConfig::new().webhook_secret,
        );
        assert_eq!(
            w.stripe.send_raw(&body, &header).await.unwrap().status,
            200,
            "{label}"
        );
        assert_eq!(
            w.billing_state().await["status"],
            json!("canceled"),
            "{label}"
        );

        // Every move is in the guild's audit log (what the live feed announces).
        let audits = w.billing_audits().await;
        for action in [
            "billing.trial_started",
            "billing.customer_created",
            "billing.checkout_completed",
            "billing.subscription_updated",
            "billing.payment_failed",
            "billing.canceled",
        ] {
            assert!(
                audits.iter().any(|a| a == action),
                "{label}: no {action} in {audits:?}"
            );
        }
        w.server.shutdown().await.unwrap();
        w.stripe.shutdown().await;
    }
}

#[tokio::test]
async fn the_expiry_job_ends_a_trial_once_and_only_after_its_end() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store).await;
        let started = w.billing.start_trial(&w.tenant, Utc::now()).await.unwrap();
        let ends = started.trial_ends_at.unwrap();
        assert!(
            w.billing
                .expire(ends - TimeDelta::minutes(1))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(stopped_at(&w.fill(GUILD_A).await, 7), "{label}");
        // Two processes running the hourly job at once move the tenant once.
        let (a, b) = tokio::join!(w.billing.expire(ends), w.billing.expire(ends));
        let moved: Vec<_> = a.unwrap().into_iter().chain(b.unwrap()).collect();
        assert_eq!(moved.len(), 1, "{label}: {moved:?}");
        assert_eq!(moved[0].action, "billing.trial_ended");
        let state = w.billing_state().await;
        assert_eq!(
            (
                state["plan"].as_str(),
                state["status"].as_str(),
                state["trial_available"].as_bool()
            ),
            (Some("free"), Some("free"), Some(false)),
            "{label}: {state}"
        );
        w.assert_back_on_free(&label).await;
        w.server.shutdown().await.unwrap();
        w.stripe.shutdown().await;
    }
}

#[tokio::test]
async fn ai_usage_reaches_the_stripe_meter_once_per_day_across_restarts_and_outages() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store.clone()).await;
        let (status, _) = w
            .call(
                Method::POST,
                &format!("/tenants/{}/billing/checkout", w.tenant),
            )
            .await;
        assert_eq!(status, 200, "{label}");
        let today = Utc::now().date_naive();
        let yesterday = today.checked_sub_days(Days::new(1)).unwrap();
        let before = today.checked_sub_days(Days::new(2)).unwrap();
        store
            .add_usage(GUILD_A, yesterday, 5, 1, 1200)
            .await
            .unwrap();
        store.add_usage(GUILD_A, today, 5, 1, 99).await.unwrap();
        store.add_usage(GUILD_A, before, 5, 1, 300).await.unwrap();
        // Stripe is down: nothing sent, the attempts recorded for a retry.
        w.stripe.set_unreachable(true);
        let now = Utc::now() + TimeDelta::hours(1);
        let run = w.billing.report_usage(now).await.unwrap();
        assert_eq!((run.sent, run.failed), (0, 2), "{label}");
        w.stripe.set_unreachable(false);
        // Stripe takes the first report but its answer is lost: the retry goes
        // under the same identifier and idempotency key, and counts once.
        w.stripe.lose_responses(1);
        let run = w.billing.report_usage(now).await.unwrap();
        assert_eq!((run.sent, run.failed), (1, 1), "{label}");
        let run = w.billing.report_usage(now).await.unwrap();
        assert_eq!((run.sent, run.failed), (1, 0), "{label}");
        assert!(w.stripe.idempotent_replays() >= 1, "{label}");
        // Usage counted late for a reported day does not change what was sent,
        // and a restart (a new Billing on the same database) sends nothing again.
        store.add_usage(GUILD_A, yesterday, 0, 0, 1).await.unwrap();
        let restarted = Billing::new(
            store.clone(),
            w.h.runtime.plans().clone(),
            config(&w.stripe),
        );
        assert_eq!(
            restarted.report_usage(now).await.unwrap(),
            Default::default(),
            "{label}"
        );
        for report in store.meter_reports(&w.tenant).await.unwrap() {
            assert!(report.reported_at.is_some(), "{label}: {report:?}");
        }
        let mut sent: Vec<(i64, String)> = w
            .stripe
            .meter_events()
            .into_iter()
            .map(|e| (e.value, e.identifier))
            .collect();
        sent.sort();
        assert_eq!(
            sent,
            vec![
                (300, format!("townes-{}-ai_tokens-{before}", w.tenant)),
                (1200, format!("townes-{}-ai_tokens-{yesterday}", w.tenant)),
            ],
            "{label}"
        );
        w.server.shutdown().await.unwrap();
        w.stripe.shutdown().await;
    }
}

#[tokio::test]
async fn billing_without_stripe_says_how_to_turn_it_on_and_another_tenant_is_not_found() {
    let (_, store, _guard) = common::sqlite().await;
    let w = World::new(store.clone()).await;
    let off = Arc::new(Billing::new(
        store.clone(),
        w.h.runtime.plans().clone(),
        BillingConfig::local(),
    ));
    let parts = ApiParts {
        runtime: w.h.runtime.clone(),
        live: Live::local(),
        discord: None,
        platform: None,
        billing: Some(off),
        offboarding: None,
        exports: None,
    };
    let server = ApiServer::start(ApiState::new(ApiConfig::local(), parts).unwrap())
        .await
        .unwrap();
    let response = w
        .http
        .post(format!(
            "http://{}/tenants/{}/billing/checkout",
            server.addr, w.tenant
        ))
        .bearer_auth(&w.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sets STRIPE_SECRET"),
        "{body}"
    );
    let other = store.create_tenant(2, None).await.unwrap();
    let (status, _) = w
        .call(Method::GET, &format!("/tenants/{}/billing", other.id))
        .await;
    assert_eq!(status, 404);
    let (status, _) = w
        .call(
            Method::POST,
            &format!("/tenants/{}/billing/trial", other.id),
        )
        .await;
    assert_eq!(status, 404);
    server.shutdown().await.unwrap();
    w.server.shutdown().await.unwrap();
}
