//! The three offboarding flows end to end on both backends, in simulated time
//! (the job takes the time): their states and audit entries, what the runtime
//! still does for the guilds, their commands taken off Discord, licences
//! revoked, and the data purged after the retention window and not before.
//! Also a member's erasure, and the routes refusing strangers.

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::harness::{GUILD_A, GUILD_B, HOSTILE_CAPS, Harness, limits, reply_text};
use std::sync::Arc;
use townes::billing::{Billing, BillingConfig};
use townes::commands::registry;
use townes::grants::{Approval, Quota};
use townes::licensing::server::LicenseServer;
use townes::marketplace::{MarketError, Marketplace};
use townes::offboarding::{Offboarder, OffboardingConfig, OffboardingError};
use townes::runtime::InvokeError;
use townes::store::{
    BillingAccount, BillingChange, BillingStatus, FileQuota, GuildService, LicenseRecord,
    OffboardingKind, OffboardingState, Scope, Store,
};

const DAY: TimeDelta = TimeDelta::days(1);

struct World {
    h: Harness,
    hostile: String,
    /// Owns guild A.
    ada: String,
    /// Owns guild B.
    bob: String,
    offboarder: Offboarder,
}

impl World {
    async fn new(store: Store) -> World {
        let h = Harness::new(store.clone(), limits()).await;
        let hostile = h.install("hostile", HOSTILE_CAPS).await;
        let ada = store.create_tenant(42, Some("Ada")).await.unwrap().id;
        let bob = store.create_tenant(43, Some("Bob")).await.unwrap().id;
        store.set_guild_tenant(GUILD_A, Some(&ada)).await.unwrap();
        store.set_guild_tenant(GUILD_B, Some(&bob)).await.unwrap();
        let licensing = LicenseServer::new(
            townes::licensing::new_signing_key(),
            std::time::Duration::from_secs(3 * 86400),
            std::time::Duration::from_secs(3600),
        );
        let offboarder = Offboarder::new(
            store,
            OffboardingConfig::default(),
            Some(Arc::new(licensing)),
            "https://townes.example",
        );
        for guild in [GUILD_A, GUILD_B] {
            registry::sync(&h.runtime, h.discord.as_ref(), guild)
                .await
                .unwrap();
        }
        World {
            h,
            hostile,
            ada,
            bob,
            offboarder,
        }
    }

    fn store(&self) -> &Store {
        &self.h.store
    }

    fn scope(&self, guild: u64) -> Scope {
        Scope {
            guild_id: guild,
            feature_id: self.hostile.clone(),
        }
    }

    /// A guild's data of every kind: storage, a score, a transcript file, a
    /// job, usage, audit entries.
    async fn seed(&self, guild: u64) {
        let store = self.store();
        let scope = self.scope(guild);
        let room = Quota {
            max_bytes: 100_000,
            max_rows: 100,
        };
        store
            .kv_set(&scope, "config:motd", "hello", room)
            .await
            .unwrap();
        store.board_set(&scope, "xp", 42, 120, room).await.unwrap();
        let files = FileQuota {
            max_bytes: 100_000,
            max_files: 10,
            max_file_bytes: 10_000,
        };
        store
            .put_file(
                &scope,
                "tickets/1/transcript.html",
                "text/html",
                b"<p>hi</p>",
                files,
            )
            .await
            .unwrap();
        store
            .schedule_job(&scope, "remind", "later", Utc::now() + DAY * 400, 10)
            .await
            .unwrap();
        store
            .add_usage(guild, Utc::now().date_naive(), 10, 2, 0)
            .await
            .unwrap();
    }

    /// Which kinds of data the guild still has.
    async fn kept(&self, guild: u64) -> Vec<&'static str> {
        let store = self.store();
        let scope = self.scope(guild);
        let mut kept = Vec::new();
        if store.guild(guild).await.unwrap().is_some() {
            kept.push("guild");
        }
        if store.kv_get(&scope, "config:motd").await.unwrap().is_some() {
            kept.push("storage");
        }
        if !store.board_top(&scope, "xp", 10).await.unwrap().is_empty() {
            kept.push("scores");
        }
        if !store.files(&scope, "", 10).await.unwrap().is_empty() {
            kept.push("files");
        }
        let today = Utc::now().date_naive();
        if !store.usage(guild, today, today).await.unwrap().is_empty() {
            kept.push("usage");
        }
        if !store.audit_entries(guild, 100).await.unwrap().is_empty() {
            kept.push("audit");
        }
        if !store.guild_features(guild).await.unwrap().is_empty() {
            kept.push("features");
        }
        kept
    }

    async fn service(&self, guild: u64) -> GuildService {
        self.store().guild(guild).await.unwrap().unwrap().service
    }

    /// The slash commands registered in the guild after a sync.
    async fn registered(&self, guild: u64) -> usize {
        registry::sync(&self.h.runtime, self.h.discord.as_ref(), guild)
            .await
            .unwrap();
        self.h
            .discord
            .with_guild(guild, |g| g.registered_commands.clone())
            .flatten()
            .and_then(|c| c.as_array().map(Vec::len))
            .unwrap_or(0)
    }

    async fn audit_actions(&self, guild: u64) -> Vec<String> {
        self.store()
            .audit_entries(guild, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }

    /// Moves `tenant`'s billing to `status`, as Stripe's webhook would.
    async fn bill(&self, tenant: &str, status: BillingStatus, grace_until: Option<DateTime<Utc>>) {
        let mut account = BillingAccount::new(tenant, "base");
        account.status = status;
        account.grace_until = grace_until;
        self.store()
            .change_billing(tenant, None, |_| {
                Some(BillingChange {
                    account,
                    applied_plan: if status.has_plan() { "base" } else { "free" }.into(),
                    guild_cap: None,
                    action: "billing.test",
                    details: serde_json::json!({}),
                })
            })
            .await
            .unwrap();
    }
}

fn not_served(outcome: &townes::runtime::Outcome) -> bool {
    matches!(outcome.result, Err(InvokeError::NotServed(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_bot_unregisters_now_and_purges_after_retention_only() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store).await;
        w.seed(GUILD_A).await;
        w.seed(GUILD_B).await;
        assert!(w.registered(GUILD_A).await > 0, "{label}");
        let t0 = Utc::now();

        let flow = w
            .offboarder
            .start_remove_bot(&w.ada, Some(GUILD_A), "user:42", t0)
            .await
            .unwrap();
        assert_eq!(flow.kind, OffboardingKind::RemoveBot);
        assert_eq!(flow.state, OffboardingState::Retired, "{label}");
        assert_eq!(w.service(GUILD_A).await, GuildService::Retired);
        assert_eq!(w.service(GUILD_B).await, GuildService::Active);
        // Discord: the guild's commands are gone; the other guild keeps its own.
        assert_eq!(w.registered(GUILD_A).await, 0, "{label}");
        assert!(w.registered(GUILD_B).await > 0, "{label}");
        // The runtime serves nothing there, and nothing new is enabled.
        assert!(not_served(
            &w.h.command(GUILD_A, &w.hostile, "ok", vec![]).await
        ));
        assert!(not_served(&w.h.echo(GUILD_A, "hi").await), "{label}");
        assert_eq!(
            reply_text(&w.h.command(GUILD_B, &w.hostile, "ok", vec![]).await),
            "ok"
        );
        let enable = Marketplace::new(&w.h.runtime, "test")
            .enable(
                GUILD_A,
                &w.hostile,
                None,
                Approval::of(HOSTILE_CAPS.iter().copied()),
            )
            .await;
        assert!(
            matches!(enable, Err(MarketError::NotServed { .. })),
            "{label}"
        );
        assert!(
            w.audit_actions(GUILD_A)
                .await
                .contains(&"offboarding.started".to_string())
        );
        // A second removal of the same guild is refused while this one runs.
        let again = w
            .offboarder
            .start_remove_bot(&w.ada, Some(GUILD_A), "user:42", t0)
            .await;
        assert!(
            matches!(again, Err(OffboardingError::AlreadyOpen(_))),
            "{label}"
        );

        // One day before the window ends, everything is still there.
        let report = w.offboarder.tick(t0 + DAY * 29).await.unwrap();
        assert_eq!(report.purged, 0, "{label}");
        let all = [
            "guild", "storage", "scores", "files", "usage", "audit", "features",
        ];
        assert_eq!(w.kept(GUILD_A).await, all, "{label}");
        // After it, guild A's data is gone; B keeps all of its own.
        let report = w.offboarder.tick(t0 + DAY * 31).await.unwrap();
        assert_eq!(report.purged, 1, "{label}");
        assert!(
            w.kept(GUILD_A).await.is_empty(),
            "{label}: {:?}",
            w.kept(GUILD_A).await
        );
        assert_eq!(w.kept(GUILD_B).await, all, "{label}");
        let flows = w.offboarder.flows(&w.ada).await.unwrap();
        assert_eq!(flows[0].state, OffboardingState::Purged);
        assert!(
            w.store().tenant(&w.ada).await.unwrap().is_some(),
            "one guild only"
        );
        // A purged flow cannot be called off.
        let cancel = w
            .offboarder
            .cancel(&w.ada, &flow.id, "user:42", t0 + DAY * 32)
            .await;
        assert!(
            matches!(cancel, Err(OffboardingError::WrongState { .. })),
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_bot_from_a_whole_tenant_revokes_its_licences_and_can_be_called_off() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store).await;
        let now = Utc::now();
        let licence = LicenseRecord::new("lic_bob", &w.bob, "base", now, now + DAY * 365);
        w.store().record_license(&licence).await.unwrap();
        let flow = w
            .offboarder
            .start_remove_bot(&w.bob, None, "user:43", now)
            .await
            .unwrap();
        let revoked = w.store().license("lic_bob").await.unwrap().unwrap();
        assert!(revoked.revoked_at.is_some(), "{label}");
        assert_eq!(revoked.revoked_reason.as_deref(), Some("bot removed"));
        assert_eq!(w.service(GUILD_B).await, GuildService::Retired);
        // Another tenant cannot see or cancel it.
        let stranger = w.offboarder.cancel(&w.ada, &flow.id, "user:42", now).await;
        assert!(
            matches!(stranger, Err(OffboardingError::Unknown(_))),
            "{label}"
        );
        // Called off within the window: the guild runs again.
        let canceled = w
            .offboarder
            .cancel(&w.bob, &flow.id, "user:43", now + DAY)
            .await
            .unwrap();
        assert_eq!(canceled.state, OffboardingState::Canceled);
        assert_eq!(w.service(GUILD_B).await, GuildService::Active);
        assert!(w.registered(GUILD_B).await > 0, "{label}");
        assert_eq!(
            reply_text(&w.h.command(GUILD_B, &w.hostile, "ok", vec![]).await),
            "ok"
        );
        // The job never purges a canceled flow.
        assert_eq!(w.offboarder.tick(now + DAY * 90).await.unwrap().purged, 0);
        assert!(w.store().guild(GUILD_B).await.unwrap().is_some(), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_to_self_hosting_retires_on_activation_or_on_schedule_and_keeps_the_tenant() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store).await;
        w.seed(GUILD_A).await;
        let t0 = Utc::now();
        let kit = w
            .offboarder
            .start_self_host(&w.ada, "user:42", t0)
            .await
            .unwrap();
        assert_eq!(kit.offboarding.state, OffboardingState::AwaitingActivation);
        let env: std::collections::BTreeMap<_, _> = kit.env.iter().cloned().collect();
        assert_eq!(env["LICENSE_SERVER_BASE"], "https://townes.example");
        assert!(env["TOWNESDEV_LICENSE_PUBLIC_KEY"].len() > 20);
        let license = &env["TOWNESDEV_LICENSE"];
        let licence_id = kit.offboarding.license_id.clone().unwrap();
        assert!(
            w.store().license(&licence_id).await.unwrap().is_some(),
            "{label}"
        );
        // Bob moves too, but his runner never activates.
        let bob = w
            .offboarder
            .start_self_host(&w.bob, "user:43", t0)
            .await
            .unwrap();

        // Nothing retires before the self-hosted runner activates.
        w.offboarder.tick(t0 + DAY).await.unwrap();
        assert_eq!(w.service(GUILD_A).await, GuildService::Active, "{label}");
        assert!(w.registered(GUILD_A).await > 0);

        // The self-hosted runner activates its licence with the env it was given.
        let key =
            townes::licensing::decode_public_key(&env["TOWNESDEV_LICENSE_PUBLIC_KEY"]).unwrap();
        let claims = townes::licensing::verify(license, &key, t0, None).unwrap();
        assert_eq!(claims.tenant, w.ada);
        w.store()
            .create_license_activation("act_ada", &licence_id, "secret", "lease", t0 + DAY)
            .await
            .unwrap();
        let report = w.offboarder.tick(t0 + DAY * 2).await.unwrap();
        assert_eq!(report.moved, 1, "{label}: only Ada's retires");
        assert_eq!(w.service(GUILD_A).await, GuildService::Retired);
        assert_eq!(w.registered(GUILD_A).await, 0, "{label}");
        assert_eq!(w.service(GUILD_B).await, GuildService::Active);
        assert!(
            w.audit_actions(GUILD_A)
                .await
                .contains(&"offboarding.retired".to_string())
        );

        // Bob's retires at the scheduled date (14 days) without activation.
        w.offboarder.tick(t0 + DAY * 15).await.unwrap();
        let bob_now = w
            .store()
            .offboarding(&bob.offboarding.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bob_now.state, OffboardingState::Retired, "{label}");

        // Ada's hosted data goes after the window; her tenant and licence stay
        // (the self-hosted runner renews its lease here).
        w.offboarder.tick(t0 + DAY * 31).await.unwrap();
        assert!(
            w.store().guild(GUILD_A).await.unwrap().is_some(),
            "{label}: not yet"
        );
        w.offboarder.tick(t0 + DAY * 33).await.unwrap();
        assert!(w.kept(GUILD_A).await.is_empty(), "{label}");
        assert!(w.store().tenant(&w.ada).await.unwrap().is_some());
        let kept = w.store().license(&licence_id).await.unwrap().unwrap();
        assert!(kept.revoked_at.is_none(), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_payment_goes_grace_read_only_retired_purged_unless_paid() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store.clone()).await;
        w.seed(GUILD_A).await;
        w.seed(GUILD_B).await;
        let billing = Billing::new(
            store.clone(),
            w.h.runtime.plans().clone(),
            BillingConfig::local(),
        );
        let t0 = Utc::now();
        for tenant in [&w.ada, &w.bob] {
            w.bill(tenant, BillingStatus::PastDue, Some(t0 + DAY * 7))
                .await;
        }

        // Grace: the job opens a flow per tenant; everything still runs.
        let report = w.offboarder.tick(t0).await.unwrap();
        assert_eq!(report.started, 2, "{label}");
        assert_eq!(w.offboarder.tick(t0).await.unwrap().started, 0, "once");
        let flow = w.offboarder.flows(&w.ada).await.unwrap().remove(0);
        assert_eq!(flow.kind, OffboardingKind::NonPayment);
        assert_eq!(flow.state, OffboardingState::Grace);
        assert_eq!(w.service(GUILD_A).await, GuildService::Active);
        let cancel = w.offboarder.cancel(&w.ada, &flow.id, "user:42", t0).await;
        assert!(
            matches!(cancel, Err(OffboardingError::WrongState { .. })),
            "billing's to end"
        );

        // Billing's expiry job ends the grace period: the guilds turn read-only.
        billing.expire(t0 + DAY * 8).await.unwrap();
        w.offboarder.tick(t0 + DAY * 8).await.unwrap();
        assert_eq!(w.service(GUILD_A).await, GuildService::ReadOnly, "{label}");
        assert!(
            w.audit_actions(GUILD_A)
                .await
                .contains(&"offboarding.read_only".to_string())
        );
        // Commands answer; writes are refused; events are not delivered; nothing
        // new is enabled.
        assert_eq!(
            reply_text(&w.h.command(GUILD_A, &w.hostile, "ok", vec![]).await),
            "ok"
        );
        let fill = reply_text(&w.h.command(GUILD_A, &w.hostile, "fill", vec![]).await);
        assert!(
            fill.starts_with("fill: stopped at 0 with Unavailable(\"read-only"),
            "{label}: {fill}"
        );
        assert!(not_served(&w.h.echo(GUILD_A, "hi").await), "{label}");
        let enable = Marketplace::new(&w.h.runtime, "test")
            .enable(
                GUILD_A,
                &w.hostile,
                None,
                Approval::of(HOSTILE_CAPS.iter().copied()),
            )
            .await;
        assert!(
            matches!(enable, Err(MarketError::NotServed { .. })),
            "{label}"
        );
        assert!(
            w.registered(GUILD_A).await > 0,
            "read-only keeps its commands"
        );

        // After the read-only days, retired: commands off Discord.
        w.offboarder.tick(t0 + DAY * 21).await.unwrap();
        assert_eq!(
            w.service(GUILD_A).await,
            GuildService::ReadOnly,
            "{label}: not yet"
        );
        w.offboarder.tick(t0 + DAY * 23).await.unwrap();
        assert_eq!(w.service(GUILD_A).await, GuildService::Retired, "{label}");
        assert_eq!(w.registered(GUILD_A).await, 0);

        // Ada pays before the purge: her flow ends and her guild runs again.
        w.bill(&w.ada, BillingStatus::Active, None).await;
        w.offboarder.tick(t0 + DAY * 24).await.unwrap();
        assert_eq!(w.service(GUILD_A).await, GuildService::Active, "{label}");
        let ended = w.offboarder.flows(&w.ada).await.unwrap().remove(0);
        assert_eq!(ended.state, OffboardingState::Canceled);
        assert!(w.registered(GUILD_A).await > 0);

        // Bob never pays: purged 30 days after retirement, tenant and all.
        w.offboarder.tick(t0 + DAY * 52).await.unwrap();
        assert!(
            w.store().guild(GUILD_B).await.unwrap().is_some(),
            "{label}: not before"
        );
        let report = w.offboarder.tick(t0 + DAY * 54).await.unwrap();
        assert_eq!(report.purged, 1, "{label}");
        assert!(w.kept(GUILD_B).await.is_empty(), "{label}");
        assert!(w.store().tenant(&w.bob).await.unwrap().is_none(), "{label}");
        assert_eq!(
            w.kept(GUILD_A).await.len(),
            7,
            "{label}: Ada's data is whole"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_a_member_reaches_every_feature_record_that_names_them() {
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store).await;
        let scope = w.scope(GUILD_A);
        let room = Quota {
            max_bytes: 100_000,
            max_rows: 100,
        };
        let s = w.store();
        s.kv_set(&scope, "open:777:0000000001", "1", room)
            .await
            .unwrap();
        s.kv_set(&scope, "ticket:0000000001", r#"{"opener":"777"}"#, room)
            .await
            .unwrap();
        s.kv_set(&scope, "ticket:0000000002", r#"{"opener":"7770"}"#, room)
            .await
            .unwrap();
        s.board_set(&scope, "xp", 777, 50, room).await.unwrap();
        s.board_set(&scope, "xp", 778, 60, room).await.unwrap();
        let files = FileQuota {
            max_bytes: 100_000,
            max_files: 10,
            max_file_bytes: 10_000,
        };
        s.put_file(
            &scope,
            "tickets/1/transcript.html",
            "text/html",
            b"<p>&lt;@777&gt; hi</p>",
            files,
        )
        .await
        .unwrap();
        s.audit(&townes::store::NewAuditEntry {
            guild_id: Some(GUILD_A),
            actor: "user:777".into(),
            action: "ticket.opened".into(),
            feature_id: None,
            details: serde_json::json!({"note": "by 777"}),
        })
        .await
        .unwrap();
        let before = s.storage_usage(&scope).await.unwrap();

        let forgotten = s.forget_user(&[GUILD_A], 777).await.unwrap();
        assert_eq!(
            forgotten.storage_keys, 2,
            "{label}: the index key and the record naming them"
        );
        assert_eq!(forgotten.scores, 1);
        assert_eq!(forgotten.files, 1);
        assert_eq!(forgotten.audit_entries, 1);
        assert_eq!(s.kv_get(&scope, "open:777:0000000001").await.unwrap(), None);
        assert!(
            s.kv_get(&scope, "ticket:0000000002")
                .await
                .unwrap()
                .is_some(),
            "7770 is someone else"
        );
        let top = s.board_top(&scope, "xp", 10).await.unwrap();
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].subject, 778);
        let after = s.storage_usage(&scope).await.unwrap();
        assert_eq!(
            after.rows,
            before.rows - 3,
            "{label}: usage shrank with the rows"
        );
        let entries = s.audit_entries(GUILD_A, 10).await.unwrap();
        assert!(
            entries
                .iter()
                .all(|e| !e.actor.contains("777") && !e.details.to_string().contains("777"))
        );
        assert!(entries.iter().any(|e| e.action == "member.forgotten"));
    }
}

/// The routes: a tenant follows, starts and calls off its own flows; another
/// tenant's are 404, as if they did not exist; a move to self-hosting needs
/// this platform to issue licences; erasure needs rights in the guild, and
/// `/me/forget` a person's own session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routes_serve_a_tenant_its_own_flows_only() {
    use reqwest::Method;
    use townes::api::{ApiConfig, ApiParts, ApiServer, ApiState};
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store.clone()).await;
        // The API's own offboarder: no signing key configured.
        let parts = ApiParts::new(w.h.runtime.clone(), townes::live::Live::local());
        let server = ApiServer::start(ApiState::new(ApiConfig::local(), parts).unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", server.addr);
        let key_of = |tenant: String| {
            let store = store.clone();
            async move {
                townes::api::auth::issue_api_key(&store, &tenant, "test", "test".into())
                    .await
                    .unwrap()
                    .1
            }
        };
        let (ada, bob) = (key_of(w.ada.clone()).await, key_of(w.bob.clone()).await);
        let http = reqwest::Client::new();
        let call = |method: Method, path: String, key: String, body: Option<serde_json::Value>| {
            let request = http
                .request(method, format!("{base}{path}"))
                .bearer_auth(key);
            let request = match body {
                Some(body) => request.json(&body),
                None => request,
            };
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (
                    status,
                    response
                        .json::<serde_json::Value>()
                        .await
                        .unwrap_or_default(),
                )
            }
        };
        let flows = format!("/tenants/{}/offboarding", w.ada);

        let (status, body) = call(
            Method::POST,
            flows.clone(),
            ada.clone(),
            Some(serde_json::json!({"kind": "self_host"})),
        )
        .await;
        assert_eq!(status, 503, "{label}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("TOWNES_LICENSE_SIGNING_KEY")
        );
        let (status, body) = call(
            Method::POST,
            flows.clone(),
            ada.clone(),
            Some(serde_json::json!({"kind": "non_payment"})),
        )
        .await;
        assert_eq!(status, 422, "{label}: {body}");

        let (status, started) = call(
            Method::POST,
            flows.clone(),
            ada.clone(),
            Some(serde_json::json!({"kind": "remove_bot", "guild_id": GUILD_A.to_string()})),
        )
        .await;
        assert_eq!(status, 201, "{label}: {started}");
        assert_eq!(started["offboarding"]["state"], "retired");
        assert_eq!(started["offboarding"]["guild_id"], GUILD_A.to_string());
        let id = started["offboarding"]["id"].as_str().unwrap().to_string();
        // Bob's guild is not Ada's to remove.
        let (status, _) = call(
            Method::POST,
            flows.clone(),
            ada.clone(),
            Some(serde_json::json!({"kind": "remove_bot", "guild_id": GUILD_B.to_string()})),
        )
        .await;
        assert_eq!(status, 404, "{label}");

        // Bob sees nothing of Ada's flows and cannot call them off.
        let (status, _) = call(Method::GET, flows.clone(), bob.clone(), None).await;
        assert_eq!(status, 404, "{label}");
        let cancel = format!("{flows}/{id}/cancel");
        let (status, _) = call(Method::POST, cancel.clone(), bob.clone(), None).await;
        assert_eq!(status, 404, "{label}");
        let (status, _) = call(
            Method::POST,
            format!("/tenants/{}/offboarding/{id}/cancel", w.bob),
            bob.clone(),
            None,
        )
        .await;
        assert_eq!(status, 404, "{label}: not Bob's flow");

        let (status, listed) = call(Method::GET, flows.clone(), ada.clone(), None).await;
        assert_eq!(status, 200);
        assert_eq!(listed.as_array().unwrap().len(), 1, "{label}");
        let (status, canceled) = call(Method::POST, cancel, ada.clone(), None).await;
        assert_eq!(status, 200, "{label}: {canceled}");
        assert_eq!(canceled["state"], "canceled");

        // Erasure: Bob's key has no rights in Ada's guild; Ada's has.
        let forget = format!("/api/guild/{GUILD_A}/forget-user");
        let who = Some(serde_json::json!({"user_id": "777"}));
        let (status, _) = call(Method::POST, forget.clone(), bob.clone(), who.clone()).await;
        assert_eq!(status, 404, "{label}");
        let (status, body) = call(Method::POST, forget, ada.clone(), who).await;
        assert_eq!(status, 200, "{label}: {body}");
        assert_eq!(body["scores"], 0);
        let (status, _) = call(Method::POST, "/me/forget".into(), ada.clone(), None).await;
        assert_eq!(status, 403, "{label}: an API key is not a person");
        server.shutdown().await.unwrap();
    }
}

/// Moving to self-hosting over the API: a weak passphrase is refused before
/// anything starts; with a good one the move returns the runner's settings
/// once and takes the tenant's export, which the tenant can follow to done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_to_self_hosting_over_the_api_takes_the_export_with_it() {
    use reqwest::Method;
    use townes::api::{ApiConfig, ApiParts, ApiServer, ApiState};
    use townes::licensing::server::ServerConfig;
    for (label, store, _guard) in common::each_backend().await {
        let w = World::new(store.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("issuer.key");
        let key = townes::licensing::new_signing_key();
        std::fs::write(&key_file, townes::licensing::encode_signing_key(&key)).unwrap();
        let config = ApiConfig {
            licensing: ServerConfig {
                signing_key: Some(key_file),
                ..ServerConfig::default()
            },
            ..ApiConfig::local()
        };
        let parts = ApiParts::new(w.h.runtime.clone(), townes::live::Live::local());
        let server = ApiServer::start(ApiState::new(config, parts).unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", server.addr);
        let (_, key) = townes::api::auth::issue_api_key(&store, &w.ada, "test", "test".into())
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let call = |method: Method, path: String, body: Option<serde_json::Value>| {
            let request = http
                .request(method, format!("{base}{path}"))
                .bearer_auth(&key);
            let request = match body {
                Some(body) => request.json(&body),
                None => request,
            };
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (
                    status,
                    response
                        .json::<serde_json::Value>()
                        .await
                        .unwrap_or_default(),
                )
            }
        };
        let flows = format!("/tenants/{}/offboarding", w.ada);
        let weak = serde_json::json!({"kind": "self_host", "passphrase": "short"});
        let (status, body) = call(Method::POST, flows.clone(), Some(weak)).await;
        assert_eq!(status, 422, "{label}: {body}");
        assert!(
            w.offboarder.flows(&w.ada).await.unwrap().is_empty(),
            "{label}"
        );

        let good =
            serde_json::json!({"kind": "self_host", "passphrase": "a long enough passphrase"});
        let (status, started) = call(Method::POST, flows, Some(good)).await;
        assert_eq!(status, 201, "{label}: {started}");
        assert_eq!(started["offboarding"]["state"], "awaiting_activation");
        assert_eq!(started["export_error"], serde_json::Value::Null);
        let env: Vec<&str> = started["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            env.iter().any(|l| l.starts_with("TOWNESDEV_LICENSE=tdl1.")),
            "{env:?}"
        );
        let export = started["offboarding"]["export_id"].as_str().unwrap();
        let path = format!("/exports/{export}");
        let mut job = serde_json::Value::Null;
        for _ in 0..200 {
            let (status, now) = call(Method::GET, path.clone(), None).await;
            assert_eq!(status, 200, "{label}: {now}");
            job = now;
            if job["status"] == "done" || job["status"] == "failed" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(job["status"], "done", "{label}: {job}");
        server.shutdown().await.unwrap();
    }
}
