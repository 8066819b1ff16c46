//! The dashboard API over real HTTP and WebSocket: the platform connected to the
//! Discord simulator (gateway, REST and OAuth2), real feature components, and the
//! API server on a free port, on both database backends.

mod common;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use townes::api::{ApiConfig, ApiParts, ApiServer, ApiState};
use townes::discord::{LocalDiscord, RestClient};
use townes::live::{LiveEvent, LiveKind};
use townes::marketplace::{Marketplace, Publisher};
use townes::platform::{Connection, Running, connect};
use townes::runtime::{Runtime, RuntimeConfig};
use townes::store::{Guild, Store};
use townes_discord_sim::{GuildSetup, SimConfig, Simulator, permissions};

const WAIT: Duration = Duration::from_secs(10);
const REDIRECT: &str = "http://dashboard.test/auth/callback";

/// How a request authenticates.
#[derive(Clone, Debug)]
enum Auth {
    None,
    /// A `Cookie` header value.
    Session(String),
    /// An API key secret.
    Key(String),
}

struct World {
    sim: Simulator,
    store: Store,
    _data_dir: tempfile::TempDir,
    guild: GuildSetup,
    /// Owns the guild on Discord.
    owner: u64,
    /// Holds a role with Manage Server.
    manager: u64,
    /// A member without rights.
    member: u64,
    /// Not in the guild.
    stranger: u64,
    running: Option<Running>,
    server: Option<ApiServer>,
    base: String,
    http: reqwest::Client,
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl World {
    async fn new(store: Store) -> World {
        World::with(store, |c| c).await
    }

    async fn with(store: Store, tune: impl FnOnce(ApiConfig) -> ApiConfig) -> World {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("TOWNES_LOG").unwrap_or_else(|_| "warn,serenity=error".into()),
            )
            .with_test_writer()
            .try_init();
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        let owner = sim.create_user("olivia");
        let manager = sim.create_user("mia");
        let member = sim.create_user("bob");
        let stranger = sim.create_user("sam");
        let guild = sim.create_guild("Alpha", owner);
        let managers = sim.create_role(guild.guild_id, "Managers", permissions::MANAGE_GUILD, 3);
        sim.member_join(guild.guild_id, manager).await;
        sim.member_join(guild.guild_id, member).await;
        sim.give_role(guild.guild_id, manager, managers);
        store
            .upsert_guild(&Guild::new(guild.guild_id, "Alpha", owner))
            .await
            .unwrap();

        let data_dir = tempfile::tempdir().unwrap();
        let installer = Runtime::new(
            RuntimeConfig::new(data_dir.path()),
            store.clone(),
            Arc::new(LocalDiscord::new()),
        )
        .unwrap();
        for component in [
            "hello",
            "hello_next",
            "welcome",
            "notes",
            "tickets",
            "templates",
            "custom_commands",
        ] {
            Marketplace::new(&installer, "test")
                .install(&common::component(component), &Publisher::Platform)
                .await
                .unwrap();
        }
        let running = connect(
            store.clone(),
            RuntimeConfig::new(data_dir.path()),
            Connection::new(sim.token(), Some(sim.base_url())),
        )
        .await
        .unwrap();
        assert!(sim.wait_for_ready(1, WAIT).await, "gateway not ready");

        let config = tune(ApiConfig {
            oauth_client_id: Some(sim.client_id()),
            oauth_client_secret: Some(sim.client_secret()),
            oauth_redirect_uri: Some(REDIRECT.into()),
            discord_web_base: sim.base_url(),
            cors_origins: vec!["https://app.dashboard.test".into()],
            ..ApiConfig::local()
        });
        let platform = running.platform.clone();
        let parts = ApiParts {
            runtime: platform.runtime.clone(),
            live: platform.live.clone(),
            discord: Some(RestClient::new(&sim.base_url(), &sim.token()).unwrap()),
            platform: Some(platform),
            billing: None,
            offboarding: None,
            exports: None,
        };
        let server = ApiServer::start(ApiState::new(config, parts).unwrap())
            .await
            .unwrap();
        World {
            base: format!("http://{}", server.addr),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            sim,
            store,
            _data_dir: data_dir,
            guild,
            owner,
            manager,
            member,
            stranger,
            running: Some(running),
            server: Some(server),
        }
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
        if let Some(running) = self.running.take() {
            running.shutdown(Duration::from_secs(2)).await.unwrap();
        }
    }

    fn gid(&self) -> u64 {
        self.guild.guild_id
    }

    /// Runs the due scheduled jobs, as `townes serve` does.
    fn run_jobs(&self) -> tokio::task::AbortHandle {
        common::run_jobs(self.running.as_ref().unwrap().platform.runtime.clone())
    }

    /// The final answer to an interaction (a deferred one once edited).
    async fn answer(&self, interaction: townes_discord_sim::Interaction) -> (u8, Value) {
        let response = self
            .sim
            .interaction_response(interaction.id, WAIT)
            .await
            .expect("no interaction response");
        if response.kind == 5 {
            let edited = self.sim.wait_for_edit(interaction.id, WAIT).await;
            return (4, edited.expect("a deferred answer was never edited"));
        }
        (response.kind, response.data)
    }

    async fn call(&self, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = match auth {
            Auth::None => request,
            Auth::Session(cookie) => request.header(header::COOKIE, cookie),
            Auth::Key(key) => request.bearer_auth(key),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, auth: &Auth) -> Reply {
        self.call(Method::GET, path, auth, None).await
    }

    /// Logs `user` in through the simulator's OAuth2 and returns the session cookie.
    async fn login(&self, user: u64) -> Auth {
        let start = self.get("/auth/discord/login", &Auth::None).await;
        assert_eq!(start.status, 303, "{:?}", start.body);
        let state_cookie = set_cookie(&start.headers, "townes_oauth_state").unwrap();
        let consent_url = start.headers[header::LOCATION].to_str().unwrap();
        assert!(
            consent_url.contains("scope=identify+guilds"),
            "{consent_url}"
        );
        let consent = self
            .http
            .get(format!("{consent_url}&sim_user={user}"))
            .send()
            .await
            .unwrap();
        assert_eq!(consent.status().as_u16(), 302);
        let back = url::Url::parse(consent.headers()[header::LOCATION].to_str().unwrap()).unwrap();
        assert!(back.as_str().starts_with(REDIRECT));
        let query = |name: &str| {
            back.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        let (code, state) = (query("code"), query("state"));
        assert_eq!(state, state_cookie);
        let finish = self
            .http
            .post(format!("{}/auth/discord/callback", self.base))
            .header(header::COOKIE, format!("townes_oauth_state={state}"))
            .json(&json!({ "code": code, "state": state }))
            .send()
            .await
            .unwrap();
        assert_eq!(finish.status().as_u16(), 200);
        let cookies: Vec<String> = finish
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let session = cookies
            .iter()
            .find(|c| c.starts_with("townes_session="))
            .expect("a session cookie");
        for flag in ["HttpOnly", "Secure", "SameSite=Lax"] {
            assert!(session.contains(flag), "{session} lacks {flag}");
        }
        let value = set_cookie(finish.headers(), "townes_session").unwrap();
        Auth::Session(format!("townes_session={value}"))
    }

    async fn new_key(&self, session: &Auth) -> Auth {
        let created = self
            .call(
                Method::POST,
                "/api/keys",
                session,
                Some(json!({"name": "dashboard"})),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        Auth::Key(created.body["secret"].as_str().unwrap().to_string())
    }
}

/// A cookie's value from the `Set-Cookie` headers.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()?
                .trim()
                .strip_prefix(&format!("{name}="))
                .map(str::to_string)
        })
}

fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{:?}", reply.body);
    assert!(
        reply.body["error"]["message"].is_string(),
        "{:?}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_login_creates_a_tenant_and_a_revocable_session() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        assert_error(&world.get("/me", &Auth::None).await, 401, "unauthorized");

        let session = world.login(world.owner).await;
        let me = world.get("/me", &session).await;
        assert_eq!(me.status, 200, "{label}: {:?}", me.body);
        assert_eq!(
            me.body["user"]["id"],
            world.owner.to_string(),
            "{label}: ids are strings"
        );
        assert_eq!(me.body["via"], "session");
        let tenant = me.body["tenant"]["id"].as_str().unwrap().to_string();
        // The guild's Discord owner claimed it on login.
        let guild = world.store.guild(world.gid()).await.unwrap().unwrap();
        assert_eq!(guild.tenant_id.as_deref(), Some(tenant.as_str()), "{label}");

        // A second login finds the same tenant.
        let again = world.login(world.owner).await;
        assert_eq!(world.get("/me", &again).await.body["tenant"]["id"], tenant);

        // A state is single-use and bound to the browser that started the login.
        let start = world.get("/auth/discord/login", &Auth::None).await;
        let state = set_cookie(&start.headers, "townes_oauth_state").unwrap();
        let code = world
            .sim
            .authorize(world.owner, &["identify", "guilds"], REDIRECT);
        let forged = world
            .call(
                Method::POST,
                "/auth/discord/callback",
                &Auth::Session("townes_oauth_state=someone-elses".into()),
                Some(json!({"code": code, "state": state})),
            )
            .await;
        assert_error(&forged, 403, "forbidden");
        let bad_code = world
            .call(
                Method::POST,
                "/auth/discord/callback",
                &Auth::Session(format!("townes_oauth_state={state}")),
                Some(json!({"code": "not-a-code", "state": state})),
            )
            .await;
        assert_error(&bad_code, 422, "invalid");
        let replayed = world
            .call(
                Method::POST,
                "/auth/discord/callback",
                &Auth::Session(format!("townes_oauth_state={state}")),
                Some(json!({"code": code, "state": state})),
            )
            .await;
        assert_error(&replayed, 403, "forbidden");

        // Logging out revokes the session server-side: the cookie stops working.
        let out = world
            .call(Method::POST, "/auth/logout", &session, None)
            .await;
        assert_eq!(out.status, 204, "{label}");
        assert!(set_cookie(&out.headers, "townes_session").is_some_and(|v| v.is_empty()));
        assert_error(&world.get("/me", &session).await, 401, "unauthorized");
        assert_eq!(
            world.get("/me", &again).await.status,
            200,
            "other sessions live on"
        );
        world.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_shown_once_reach_their_tenant_only_and_stop_when_revoked() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let owner = world.login(world.owner).await;
        let key = world.new_key(&owner).await;
        let Auth::Key(secret) = &key else {
            unreachable!()
        };
        assert!(secret.starts_with("tdk_"), "{label}");
        let listed = world.get("/api/keys", &owner).await;
        assert_eq!(listed.status, 200);
        assert_eq!(listed.body.as_array().unwrap().len(), 1);
        assert!(
            !listed.body.to_string().contains(secret.as_str()),
            "the secret is never listed"
        );

        let me = world.get("/me", &key).await;
        assert_eq!(me.body["via"], "api_key", "{label}: {:?}", me.body);
        let path = format!("/api/guild/{}/settings", world.gid());
        assert_eq!(world.get(&path, &key).await.status, 200, "{label}");
        // A key cannot mint keys.
        let minted = world
            .call(Method::POST, "/api/keys", &key, Some(json!({"name": "x"})))
            .await;
        assert_error(&minted, 403, "forbidden");
        // Another tenant's key does not see the guild at all.
        let other = world.login(world.stranger).await;
        let other_key = world.new_key(&other).await;
        assert_error(&world.get(&path, &other_key).await, 404, "not_found");
        // A wrong secret for a real key id is refused.
        let tampered = Auth::Key(format!("{}x", &secret[..secret.len() - 1]));
        assert_error(&world.get("/me", &tampered).await, 401, "unauthorized");

        let id = listed.body[0]["id"].as_str().unwrap();
        let revoked = world
            .call(Method::DELETE, &format!("/api/keys/{id}"), &owner, None)
            .await;
        assert_eq!(revoked.status, 204);
        assert_error(&world.get(&path, &key).await, 401, "unauthorized");
        let again = world
            .call(Method::DELETE, &format!("/api/keys/{id}"), &owner, None)
            .await;
        assert_error(&again, 404, "not_found");
        world.stop().await;
    }
}

/// Every guild-scoped route in the OpenAPI document the API serves (its own
/// and those of the installed features), as (method, path) with the guild id
/// filled in.
async fn guild_routes(world: &World, auth: &Auth, guild_id: u64) -> Vec<(Method, String)> {
    let served = world.get("/api/openapi.json", auth).await;
    assert_eq!(served.status, 200, "{:?}", served.body);
    let doc = served.body;
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        // `/admin` routes are the platform operators', not a guild's managers':
        // tests/admin.rs walks them with every kind of caller.
        if !path.contains("{guild_id}") || path.starts_with("/admin/") {
            continue;
        }
        let mut filled = path
            .replace("{guild_id}", &guild_id.to_string())
            .replace("{feature_id}", "hello")
            .replace("{permission_id}", "1:hello")
            .replace("{entry_id}", "1")
            .replace("{name}", "notes/1.html");
        // A feature's own route parameters are plain ids: any will do. Its
        // routes sit under `/features/{id}/api/`, or under seed 002's paths.
        let seed_path = ["tickets", "templates", "commands"]
            .iter()
            .any(|first| filled.starts_with(&format!("/api/guild/{guild_id}/{first}/")));
        if seed_path || (filled.contains("/features/") && filled.contains("/api/")) {
            let segments: Vec<&str> = filled
                .split('/')
                .map(|s| if s.starts_with('{') { "1" } else { s })
                .collect();
            filled = segments.join("/");
        }
        assert!(!filled.contains('{'), "fill in the new parameter of {path}");
        for method in item.as_object().unwrap().keys() {
            routes.push((method.to_uppercase().parse().unwrap(), filled.clone()));
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_guild_route_hides_the_guild_from_strangers_and_refuses_members_without_rights() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let stranger = world.login(world.stranger).await;
        let routes = guild_routes(&world, &stranger, world.gid()).await;
        assert!(
            routes.len() >= 20,
            "{label}: only {} guild routes found",
            routes.len()
        );
        for served in [
            "/features/notes/api/notes/1",
            "/tickets/1/claim",
            "/ai/key",
            "/ai/caps",
        ] {
            assert!(
                routes.iter().any(|(_, path)| path.ends_with(served)),
                "{label}: the features' routes are walked too: {served} in {routes:?}"
            );
        }
        let health = format!("/api/guild/{}/health", world.gid());
        assert!(
            routes.contains(&(Method::GET, health.clone())),
            "{label}: the community health score is walked too: {routes:?}"
        );
        let member = world.login(world.member).await;
        let stranger_key = world.new_key(&stranger).await;
        for (method, path) in &routes {
            let body = Some(json!({}));
            let anonymous = world
                .call(method.clone(), path, &Auth::None, body.clone())
                .await;
            assert_error(&anonymous, 401, "unauthorized");
            for (who, auth) in [("stranger", &stranger), ("stranger's key", &stranger_key)] {
                let reply = world.call(method.clone(), path, auth, body.clone()).await;
                assert_eq!(
                    reply.status, 404,
                    "{label}: {who} {method} {path}: {:?}",
                    reply.body
                );
            }
            let reply = world
                .call(method.clone(), path, &member, body.clone())
                .await;
            assert_eq!(
                reply.status, 403,
                "{label}: member {method} {path}: {:?}",
                reply.body
            );
        }
        // The same routes for a guild that does not exist: 404, as for a stranger.
        let manager = world.login(world.manager).await;
        for (method, path) in guild_routes(&world, &manager, 4242).await {
            let reply = world
                .call(method.clone(), &path, &manager, Some(json!({})))
                .await;
            assert_eq!(reply.status, 404, "{label}: {method} {path}");
        }
        // A manager (Manage Server) and the owner get through.
        let owner = world.login(world.owner).await;
        for auth in [&manager, &owner] {
            let path = format!("/api/guild/{}/settings", world.gid());
            assert_eq!(world.get(&path, auth).await.status, 200, "{label}");
        }
        world.stop().await;
    }
}

/// Members' messages and reactions reach the activity meter through the
/// gateway, the job scores them, and managers read the score, its parts
/// and trend; members without rights are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn community_health_is_counted_from_the_gateway_and_served_to_managers() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let g = world.gid();
        let general = world.guild.general_channel_id;
        let manager = world.login(world.manager).await;
        let path = format!("/api/guild/{g}/health");

        // Not scored yet: every figure `null`, no trend.
        let unscored = world.get(&path, &manager).await;
        assert_eq!(unscored.status, 200, "{label}: {:?}", unscored.body);
        assert_eq!(
            unscored.body,
            json!({
                "guild_id": g.to_string(), "day": null, "score": null,
                "parts": {"activity": null, "engagement": null, "retention": null,
                          "growth": null, "moderation": null, "support": null},
                "figures": null, "change": null, "trend": []
            }),
            "{label}"
        );

        let sim = &world.sim;
        let first = sim.say(g, general, world.member, "hello there").await;
        sim.say(g, general, world.member, "anyone around?").await;
        sim.say(g, general, world.manager, "hi!").await;
        sim.react(g, general, first, world.manager, "👋").await;
        let running = world.running.as_ref().unwrap();
        let today = chrono::Utc::now().date_naive();
        common::wait_until(|| async {
            running.flush_activity().await.unwrap();
            let counted = world.store.activity_between(g, today, today).await.unwrap();
            counted.messages == 3 && counted.reactions == 1
        })
        .await;
        let job = townes::community_health::CommunityHealth::new(running.platform.runtime.clone());
        job.compute(g, today).await.unwrap();

        // activity = 60 × 2/7/25 + 40 × 3/7/100 = 0.86 → 1;
        // engagement = 100 × min(1, 1/3/0.5) = 66.7 → 67; no feature follows
        // member events or moderates: score = (1 × 30 + 67 × 20)/50 = 27.4 → 27.
        let scored = world.get(&path, &manager).await;
        assert_eq!(scored.status, 200, "{label}: {:?}", scored.body);
        let day = today.to_string();
        assert_eq!(
            scored.body,
            json!({
                "guild_id": g.to_string(), "day": day, "score": 27,
                "parts": {"activity": 1, "engagement": 67, "retention": null,
                          "growth": null, "moderation": null, "support": null},
                "figures": {"messages": 3, "replies": 0, "reactions": 1, "commands": 0,
                            "joins": 0, "leaves": 0, "active_member_days": 2,
                            "active_members": 2, "retention_cohort": 0, "retained": 0,
                            "moderation_actions": null, "member_events": false},
                "change": null,
                "trend": [{"day": day, "score": 27}]
            }),
            "{label}"
        );
        let owner = world.login(world.owner).await;
        assert_eq!(world.get(&path, &owner).await.status, 200, "{label}");
        let member = world.login(world.member).await;
        assert_error(&world.get(&path, &member).await, 403, "forbidden");
        let stranger = world.login(world.stranger).await;
        assert_error(&world.get(&path, &stranger).await, 404, "not_found");
        world.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_assets_toggles_usage_and_incidents() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let owner = world.login(world.owner).await;
        let tenant = world.get("/me", &owner).await.body["tenant"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let g = world.gid();

        let enabled = world
            .call(
                Method::POST,
                &format!("/assets/{g}/features/hello/enable"),
                &owner,
                None,
            )
            .await;
        assert_eq!(enabled.status, 200, "{label}: {:?}", enabled.body);
        assert_eq!(enabled.body["enabled"], true);
        // Without a body, a first install approves the required capabilities only.
        assert_eq!(enabled.body["capabilities"], json!(["messages", "storage"]));

        let assets = world
            .get(&format!("/tenants/{tenant}/assets"), &owner)
            .await;
        assert_eq!(assets.status, 200, "{label}");
        assert_eq!(assets.body[0]["id"], g.to_string());
        assert_eq!(assets.body[0]["features"][0]["feature_id"], "hello");
        let other = world.login(world.stranger).await;
        assert_error(
            &world
                .get(&format!("/tenants/{tenant}/assets"), &other)
                .await,
            404,
            "not_found",
        );

        let disabled = world
            .call(
                Method::POST,
                &format!("/assets/{g}/features/hello/disable"),
                &owner,
                None,
            )
            .await;
        assert_eq!(disabled.body["enabled"], false, "{label}");
        let missing = world
            .call(
                Method::POST,
                &format!("/assets/{g}/features/nope/enable"),
                &owner,
                None,
            )
            .await;
        assert_error(&missing, 404, "not_found");

        let today = chrono::Utc::now().date_naive();
        world.store.add_usage(g, today, 7, 2, 100).await.unwrap();
        let detail = world.get(&format!("/assets/{g}"), &owner).await;
        assert_eq!(detail.status, 200, "{label}");
        assert_eq!(detail.body["usage_today"]["events"], 7);
        assert_eq!(detail.body["settings"]["prefix"], "!");
        assert_eq!(detail.body["features"][0]["enabled"], false);
        let daily = world.get(&format!("/usage/{g}/daily"), &owner).await;
        assert_eq!(
            daily.body,
            json!([{"day": today.to_string(), "events": 7, "commands": 2, "ai_tokens": 100}])
        );
        let backwards = world
            .get(
                &format!("/usage/{g}/daily?from=2026-02-01&to=2026-01-01"),
                &owner,
            )
            .await;
        assert_error(&backwards, 422, "invalid");
        let garbage = world
            .get(&format!("/usage/{g}/daily?from=yesterday"), &owner)
            .await;
        assert_error(&garbage, 400, "bad_request");

        let incident = json!({"tenantId": tenant, "guildId": g.to_string(), "severity": "high", "title": "Welcome messages stopped"});
        let created = world
            .call(Method::POST, "/incidents", &owner, Some(incident))
            .await;
        assert_eq!(created.status, 201, "{label}: {:?}", created.body);
        assert_eq!(created.body["status"], "open");
        assert_eq!(created.body["guild_id"], g.to_string());
        let listed = world.get("/incidents", &owner).await;
        assert_eq!(listed.body[0]["id"], created.body["id"]);
        let wrong = json!({"tenantId": tenant, "severity": "apocalyptic", "title": "x"});
        assert_error(
            &world
                .call(Method::POST, "/incidents", &owner, Some(wrong))
                .await,
            422,
            "invalid",
        );
        let foreign = json!({"tenantId": "someone-else", "severity": "low", "title": "x"});
        assert_error(
            &world
                .call(Method::POST, "/incidents", &owner, Some(foreign))
                .await,
            403,
            "forbidden",
        );
        let untitled = json!({"tenantId": tenant, "severity": "low", "title": ""});
        assert_error(
            &world
                .call(Method::POST, "/incidents", &owner, Some(untitled))
                .await,
            422,
            "invalid",
        );
        world.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_settings_permissions_audit_log_and_guild_data() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let manager = world.login(world.manager).await;
        let g = world.gid();
        let settings = format!("/api/guild/{g}/settings");

        let put = world
            .call(
                Method::PUT,
                &settings,
                &manager,
                Some(json!({"prefix": "?", "global_cooldown_seconds": 5})),
            )
            .await;
        assert_eq!(put.status, 200, "{label}: {:?}", put.body);
        assert_eq!(put.body["prefix"], "?");
        assert_eq!(
            world.get(&settings, &manager).await.body["global_cooldown_seconds"],
            5
        );
        let bad = world
            .call(
                Method::PUT,
                &settings,
                &manager,
                Some(json!({"prefix": "too long"})),
            )
            .await;
        assert_error(&bad, 422, "invalid");
        assert_eq!(
            bad.body["error"]["problems"][0]["path"], "/prefix",
            "{label}"
        );
        let unknown_field = world
            .call(
                Method::PUT,
                &settings,
                &manager,
                Some(json!({"colour": "red"})),
            )
            .await;
        assert_error(&unknown_field, 422, "invalid");

        let permissions = format!("/api/guild/{g}/permissions");
        let role = world.guild.everyone_role_id;
        let granted = world
            .call(
                Method::POST,
                &permissions,
                &manager,
                Some(json!({"role_id": role.to_string(), "command_group": "hello"})),
            )
            .await;
        assert_eq!(granted.status, 201, "{label}: {:?}", granted.body);
        let id = granted.body["id"].as_str().unwrap().to_string();
        let listed = world.get(&permissions, &manager).await;
        assert_eq!(listed.body, json!([granted.body.clone()]));
        let deleted = world
            .call(
                Method::DELETE,
                &format!("{permissions}/{id}"),
                &manager,
                None,
            )
            .await;
        assert_eq!(deleted.status, 204);
        let again = world
            .call(
                Method::DELETE,
                &format!("{permissions}/{id}"),
                &manager,
                None,
            )
            .await;
        assert_error(&again, 404, "not_found");

        // Everything above was audited, newest first, naming the manager.
        let log = world
            .get(&format!("/api/guild/{g}/audit-logs?limit=2"), &manager)
            .await;
        let actions: Vec<_> = log
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].clone())
            .collect();
        assert_eq!(
            actions,
            [json!("permission.revoked"), json!("permission.granted")],
            "{label}"
        );
        assert_eq!(log.body[0]["actor"], format!("user:{}", world.manager));
        let before = log.body[1]["id"].as_i64().unwrap();
        let older = world
            .get(
                &format!("/api/guild/{g}/audit-logs?before={before}&limit=100"),
                &manager,
            )
            .await;
        assert_eq!(older.body[0]["action"], "settings.updated", "{label}");
        let one = world
            .get(&format!("/api/guild/{g}/audit-logs/{before}"), &manager)
            .await;
        assert_eq!(one.body["action"], "permission.granted");
        assert_error(
            &world
                .get(&format!("/api/guild/{g}/audit-logs/999999"), &manager)
                .await,
            404,
            "not_found",
        );
        assert_error(
            &world
                .get(&format!("/api/guild/{g}/audit-logs?limit=0"), &manager)
                .await,
            422,
            "invalid",
        );

        let roles = world.get(&format!("/api/guild/{g}/roles"), &manager).await;
        assert_eq!(roles.status, 200, "{label}");
        let names: Vec<_> = roles
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"Managers") && names.contains(&"@everyone"),
            "{names:?}"
        );
        let channels = world
            .get(&format!("/api/guild/{g}/channels"), &manager)
            .await;
        assert!(
            channels
                .body
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"].as_str() == Some(&world.guild.general_channel_id.to_string()))
        );
        let party = world.sim.create_emoji(g, "party", true);
        let emojis = world.get(&format!("/api/guild/{g}/emojis"), &manager).await;
        assert_eq!(emojis.status, 200, "{label}: {:?}", emojis.body);
        assert_eq!(
            emojis.body,
            json!([{
                "id": party.to_string(),
                "name": "party",
                "animated": true,
                "url": format!("https://cdn.discordapp.com/emojis/{party}.gif"),
            }]),
            "{label}: seed 002's emoji shape"
        );
        let members = world
            .get(&format!("/api/guild/{g}/members?limit=2"), &manager)
            .await;
        assert_eq!(
            members.body.as_array().unwrap().len(),
            2,
            "{label}: {:?}",
            members.body
        );
        let last = members.body[1]["user_id"].as_str().unwrap().to_string();
        let rest = world
            .get(
                &format!("/api/guild/{g}/members?limit=1000&after={last}"),
                &manager,
            )
            .await;
        let all = members.body.as_array().unwrap().len() + rest.body.as_array().unwrap().len();
        assert!(all >= 4, "owner, manager, member and the bot: {all}");
        world.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketplace_installs_with_approvals_validates_config_and_upgrades() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let owner = world.login(world.owner).await;
        let g = world.gid();

        let catalogue = world.get("/api/marketplace/features", &owner).await;
        assert_eq!(catalogue.status, 200, "{label}");
        let hello = catalogue
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == "hello")
            .unwrap();
        assert_eq!(hello["latest_version"], "0.2.0");
        let manifest = world
            .get("/api/marketplace/features/hello?version=0.1.0", &owner)
            .await;
        assert_eq!(manifest.body["version"], "0.1.0");
        assert_eq!(
            manifest.body["capabilities"][0],
            json!({"capability": "messages", "required": true, "reason": "post greetings"})
        );
        assert_error(
            &world.get("/api/marketplace/features/nope", &owner).await,
            404,
            "not_found",
        );

        let install = format!("/api/guild/{g}/features/hello/install");
        let missing = world
            .call(
                Method::POST,
                &install,
                &owner,
                Some(json!({"version": "0.1.0", "capabilities": ["messages"]})),
            )
            .await;
        assert_error(&missing, 422, "invalid");
        assert!(
            missing.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("storage"),
            "{:?}",
            missing.body
        );
        let unknown = world
            .call(
                Method::POST,
                &install,
                &owner,
                Some(json!({"capabilities": ["messages", "teleport"]})),
            )
            .await;
        assert_eq!(
            unknown.body["error"]["problems"][0]["path"], "/capabilities/1",
            "{label}"
        );
        let installed = world
            .call(
                Method::POST,
                &install,
                &owner,
                Some(json!({"version": "0.1.0", "capabilities": ["messages", "storage"]})),
            )
            .await;
        assert_eq!(installed.status, 200, "{label}: {:?}", installed.body);
        assert_eq!(installed.body["version"], "0.1.0");
        assert_eq!(installed.body["elevated_permissions"], "0", "{label}");
        // The admin may let it hand out Manage Server (0x20); Administrator
        // (0x8) is never kept.
        let elevated = world
            .call(
                Method::POST,
                &install,
                &owner,
                Some(
                    json!({"capabilities": ["messages", "storage"], "elevated_permissions": "40"}),
                ),
            )
            .await;
        assert_eq!(elevated.status, 200, "{label}: {:?}", elevated.body);
        assert_eq!(elevated.body["elevated_permissions"], "32", "{label}");

        let config = format!("/api/guild/{g}/features/hello/config");
        assert_eq!(
            world.get(&config, &owner).await.body,
            json!({"greeting": "Hello", "welcome_channel": null})
        );
        let invalid = world
            .call(Method::PUT, &config, &owner, Some(json!({"greeting": 5})))
            .await;
        assert_error(&invalid, 422, "invalid");
        assert_eq!(
            invalid.body["error"]["problems"][0]["path"], "/greeting",
            "{label}"
        );
        let saved = world
            .call(
                Method::PUT,
                &config,
                &owner,
                Some(json!({"greeting": "Ahoy"})),
            )
            .await;
        assert_eq!(saved.status, 200, "{label}: {:?}", saved.body);
        assert_eq!(world.get(&config, &owner).await.body["greeting"], "Ahoy");
        assert_error(
            &world
                .get(&format!("/api/guild/{g}/features/welcome/config"), &owner)
                .await,
            409,
            "conflict",
        );

        let upgrade = format!("/api/guild/{g}/features/hello/upgrade");
        let upgraded = world
            .call(
                Method::POST,
                &upgrade,
                &owner,
                Some(json!({"version": "0.2.0"})),
            )
            .await;
        assert_eq!(upgraded.status, 200, "{label}: {:?}", upgraded.body);
        assert_eq!(upgraded.body["previous_version"], "0.1.0");
        let same = world
            .call(
                Method::POST,
                &upgrade,
                &owner,
                Some(json!({"version": "0.2.0"})),
            )
            .await;
        assert_error(&same, 409, "conflict");
        let listed = world.get(&format!("/api/guild/{g}/features"), &owner).await;
        assert_eq!(listed.body[0]["version"], "0.2.0");
        let off = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/features/hello/disable"),
                &owner,
                None,
            )
            .await;
        assert_eq!(off.body["enabled"], false);
        // Re-enabling without a body keeps the approvals.
        let on = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/features/hello/enable"),
                &owner,
                None,
            )
            .await;
        assert_eq!(
            on.body["capabilities"],
            json!(["messages", "storage"]),
            "{label}"
        );
        world.stop().await;
    }
}

/// Waits until the guild's slash commands include `name`.
async fn wait_for_command(world: &World, name: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !world
        .sim
        .guild_commands(world.gid())
        .iter()
        .any(|c| c["name"] == name)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "/{name} never registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_socket(world: &World, auth: &Auth) -> Socket {
    let mut request = format!("{}/api/ws", world.base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    match auth {
        Auth::Session(cookie) => {
            request
                .headers_mut()
                .insert("cookie", cookie.parse().unwrap());
        }
        Auth::Key(key) => {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {key}").parse().unwrap());
        }
        Auth::None => {}
    }
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

async fn send(socket: &mut Socket, value: Value) {
    socket.send(Message::Text(value.to_string())).await.unwrap();
}

/// The next JSON frame, or `None` if none arrives within `wait`.
async fn next(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// The next frame of `kind`, skipping others.
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if let Some(frame) = next(socket, WAIT).await
            && frame["type"] == kind
        {
            return frame;
        }
    }
    panic!("no {kind} event within {WAIT:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_arrive_while_subscribed_and_stop_after_unsubscribing() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let owner = world.login(world.owner).await;
        let g = world.gid();
        assert_eq!(
            world.get("/api/ws", &Auth::None).await.status,
            401,
            "{label}"
        );

        // A stranger cannot follow the guild.
        let stranger = world.login(world.stranger).await;
        let mut prying = open_socket(&world, &stranger).await;
        send(
            &mut prying,
            json!({"type": "subscribe_guild", "guild_id": g.to_string()}),
        )
        .await;
        let refused = next(&mut prying, WAIT).await.unwrap();
        assert_eq!(refused["type"], "error", "{label}");
        assert_eq!(refused["error"]["code"], "not_found");

        let mut socket = open_socket(&world, &owner).await;
        send(
            &mut socket,
            json!({"type": "subscribe_guild", "guild_id": g.to_string()}),
        )
        .await;
        assert_eq!(next(&mut socket, WAIT).await.unwrap()["type"], "subscribed");

        let put = world
            .call(
                Method::PUT,
                &format!("/api/guild/{g}/settings"),
                &owner,
                Some(json!({"prefix": "$"})),
            )
            .await;
        assert_eq!(put.status, 200);
        let update = next_of(&mut socket, "settings_update").await;
        assert_eq!(update["guild_id"], g.to_string(), "{label}");
        assert_eq!(update["data"]["settings"]["prefix"], "$");
        let audit = next_of(&mut socket, "audit_log").await;
        assert_eq!(audit["data"]["action"], "settings.updated", "{label}");

        world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/features/hello/install"),
                &owner,
                Some(json!({"version": "0.1.0"})),
            )
            .await;
        let toggled = next_of(&mut socket, "feature_toggled").await;
        assert_eq!(toggled["data"]["feature_id"], "hello", "{label}");
        assert_eq!(toggled["data"]["enabled"], true);

        // A member runs a command on Discord.
        let general = world.guild.general_channel_id;
        wait_for_command(&world, "hello").await;
        world
            .sim
            .slash(g, general, world.member, "hello", json!([]))
            .await;
        let executed = next_of(&mut socket, "command_executed").await;
        assert_eq!(executed["data"]["command"], "hello", "{label}: {executed}");
        assert_eq!(executed["data"]["user_id"], world.member.to_string());

        send(
            &mut socket,
            json!({"type": "unsubscribe_guild", "guild_id": g.to_string()}),
        )
        .await;
        assert_eq!(
            next_of(&mut socket, "unsubscribed").await["guild_id"],
            g.to_string()
        );
        world
            .call(
                Method::PUT,
                &format!("/api/guild/{g}/settings"),
                &owner,
                Some(json!({"prefix": "%"})),
            )
            .await;
        assert_eq!(
            next(&mut socket, Duration::from_secs(1)).await,
            None,
            "{label}: nothing after unsubscribing"
        );
        world.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_does_not_read_is_disconnected() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let owner = world.login(world.owner).await;
    let g = world.gid();
    let mut socket = open_socket(&world, &owner).await;
    send(
        &mut socket,
        json!({"type": "subscribe_guild", "guild_id": g.to_string()}),
    )
    .await;
    assert_eq!(next(&mut socket, WAIT).await.unwrap()["type"], "subscribed");

    // Far more than the bounded channel holds, while the client reads nothing.
    let live = world.running.as_ref().unwrap().platform.live.clone();
    let padding = "x".repeat(4096);
    let published = 20_000;
    for i in 0..published {
        live.publish_local(LiveEvent {
            guild_id: g,
            kind: LiveKind::CommandExecuted,
            data: json!({ "n": i, "padding": padding }),
            at: chrono::Utc::now(),
        });
    }
    let mut received = 0;
    let mut close_code = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => received += 1,
            Ok(Some(Ok(Message::Close(frame)))) => {
                close_code = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("the server neither closed nor kept sending"),
        }
    }
    assert!(
        received < published,
        "the server buffered everything ({received})"
    );
    assert_eq!(
        close_code,
        Some(1008),
        "closed as too slow after {received} events"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after_per_ip_and_per_caller() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::with(store, |c| ApiConfig {
        rate_limit_ip: 40,
        rate_limit_key: 3,
        ..c
    })
    .await;
    let owner = world.login(world.owner).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let reply = world.get("/me", &owner).await;
        statuses.push(reply.status);
        if reply.status == 429 {
            assert_error(&reply, 429, "rate_limited");
            let retry: u64 = reply.headers[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429], "per caller");
    // Per IP. No proxy is trusted, so a forwarded-for address of the client's
    // choosing changes nothing.
    let mut last = 0;
    for i in 0..60 {
        let reply = world
            .http
            .get(format!("{}/me", world.base))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .send()
            .await
            .unwrap();
        last = reply.status().as_u16();
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "per IP");
    // Probes stay answered: throttling them would get a busy process restarted.
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(world.get(probe, &Auth::None).await.status, 200, "{probe}");
    }
    world.stop().await;
}

/// Behind a trusted proxy each client gets its own allowance, keyed by the
/// address the proxy saw (the rightmost one in `X-Forwarded-For` that is not a
/// proxy): one client's flood does not lock out the others, and IPv6 clients
/// count per /64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_clients_are_limited_by_their_own_address() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::with(store, |c| ApiConfig {
        rate_limit_ip: 5,
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..c
    })
    .await;
    let from = |client: &str| {
        let request = world
            .http
            .get(format!("{}/me", world.base))
            .header("x-forwarded-for", client.to_string());
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Whatever the client writes left of the proxy's entry is not believed.
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(from(&format!("198.51.100.{i}, 203.0.113.7")).await);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    assert_eq!(
        from("203.0.113.8").await,
        401,
        "another client is not limited"
    );
    for _ in 0..5 {
        assert_eq!(from("2001:db8:1:2::1").await, 401);
    }
    assert_eq!(from("2001:db8:1:2::ffff").await, 429, "the same /64");
    assert_eq!(from("2001:db8:1:3::1").await, 401, "another /64");
    world.stop().await;
}

/// Each WebSocket message can cost Discord reads on the bot token, so a
/// caller's messages are limited across all its sockets; one that keeps
/// sending past the limit is disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_are_rate_limited_per_caller() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::with(store, |c| ApiConfig {
        rate_limit_ws: 3,
        ..c
    })
    .await;
    let owner = world.login(world.owner).await;
    let subscribe = json!({"type": "subscribe_guild", "guild_id": world.gid().to_string()});
    let mut socket = open_socket(&world, &owner).await;
    for _ in 0..3 {
        send(&mut socket, subscribe.clone()).await;
        assert_eq!(next(&mut socket, WAIT).await.unwrap()["type"], "subscribed");
    }
    send(&mut socket, subscribe.clone()).await;
    let refused = next(&mut socket, WAIT).await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["error"]["code"], "rate_limited", "{refused}");
    assert!(
        refused["error"]["retry_after"].as_u64().unwrap() >= 1,
        "{refused}"
    );
    // A second socket of the same caller shares the allowance.
    let mut second = open_socket(&world, &owner).await;
    send(&mut second, subscribe.clone()).await;
    assert_eq!(
        next(&mut second, WAIT).await.unwrap()["error"]["code"],
        "rate_limited"
    );
    // Keeping on closes the socket (policy violation).
    for _ in 0..20 {
        if socket
            .send(Message::Text(subscribe.to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("a flooding socket stayed open");
    assert_eq!(closed, Some(1008));

    // A client that keeps sending and never reads the Close cannot hold the
    // closing handshake open: the server drains it for a second, then drops it.
    let mut flooder = open_socket(&world, &owner).await;
    let started = std::time::Instant::now();
    let cut_off = loop {
        if flooder
            .send(Message::Text(subscribe.to_string()))
            .await
            .is_err()
        {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the server kept reading a client that never stops sending"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(
        cut_off < Duration::from_secs(5),
        "cut off after {cut_off:?}"
    );
    world.stop().await;
}

/// A member's rights are read from Discord once for any number of concurrent
/// requests (and then cached): a burst does not multiply reads on the bot token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rights_checks_for_one_member_read_discord_once() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let manager = world.login(world.manager).await;
    let g = world.gid();
    let member_path = format!("/guilds/{g}/members/{}", world.manager);
    let lookups = || {
        world
            .sim
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == member_path)
            .count()
    };
    let before = lookups();
    let path = format!("/api/guild/{g}/settings");
    let replies = futures_util::future::join_all((0..8).map(|_| world.get(&path, &manager))).await;
    for reply in &replies {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    assert_eq!(lookups() - before, 1, "one Discord read for eight requests");
    // The metrics say so too (other tests in this process only add to them).
    let counted = |result: &str| {
        let line = format!("townes_cache_lookups_total{{cache=\"rights\",result=\"{result}\"}} ");
        townes::metrics::metrics()
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(&line).map(|n| n.parse::<f64>().unwrap()))
            .unwrap_or(0.0)
    };
    assert!(counted("miss") >= 1.0 && counted("hit") >= 7.0);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_a_request_id_security_headers_and_stable_errors() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::new(store).await;
    let health = world.get("/healthz", &Auth::None).await;
    assert_eq!(health.body, json!({"status": "ok"}));
    let id = health.headers["x-request-id"].to_str().unwrap();
    assert!(id.len() >= 16, "{id}");
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(health.headers[name], value);
    }
    // A sane incoming id is kept; a hostile one is replaced.
    let kept = world
        .http
        .get(format!("{}/healthz", world.base))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-123");
    let replaced = world
        .http
        .get(format!("{}/healthz", world.base))
        .header("x-request-id", "a b\"<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "a b\"<script>");

    assert_error(
        &world.get("/no/such/route", &Auth::None).await,
        404,
        "not_found",
    );
    assert_error(
        &world
            .call(Method::DELETE, "/healthz", &Auth::None, None)
            .await,
        405,
        "method_not_allowed",
    );
    let owner = world.login(world.owner).await;
    let path = format!("/api/guild/{}/settings", world.gid());
    let Auth::Session(cookie) = &owner else {
        unreachable!()
    };
    let send_raw = |body: Vec<u8>, content_type: &'static str| {
        world
            .http
            .put(format!("{}{path}", world.base))
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let big = send_raw(vec![b' '; 70 * 1024], "application/json")
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);
    let not_json = send_raw(b"prefix=!".to_vec(), "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(not_json.status().as_u16(), 415);
    let broken = send_raw(b"{\"prefix\":".to_vec(), "application/json")
        .await
        .unwrap();
    assert_eq!(broken.status().as_u16(), 400);
    let body: Value = broken.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert_error(
        &world.get("/api/guild/not-a-number/settings", &owner).await,
        400,
        "bad_request",
    );

    // CORS: the configured origin may call with credentials; others get no grant.
    let preflight = |origin: &'static str| {
        world
            .http
            .request(Method::OPTIONS, format!("{}/me", world.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let allowed = preflight("https://app.dashboard.test").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.dashboard.test"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let refused = preflight("https://evil.test").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_metrics_report_the_platform() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let ready = world.get("/readyz", &Auth::None).await;
        assert_eq!(ready.status, 200, "{label}: {:?}", ready.body);
        assert_eq!(ready.body["database"], "ok");
        world.get("/me", &Auth::None).await;
        let metrics = world.get("/metrics", &Auth::None).await;
        assert_eq!(metrics.status, 200);
        let text = metrics.body.as_str().unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("townes_api_requests_total{")
                    && l.contains("route=\"/me\"")
                    && l.contains("status=\"401\"")),
            "{label}: {text}"
        );
        assert!(text.contains("townes_discord_queue_depth"), "{label}");

        // A command run on Discord shows in the counters the scrape returns.
        let owner = world.login(world.owner).await;
        let g = world.gid();
        world
            .call(
                Method::POST,
                &format!("/assets/{g}/features/hello/enable"),
                &owner,
                None,
            )
            .await;
        let hellos = |text: &str| {
            text.lines()
                .filter(|l| {
                    l.starts_with("townes_commands_total{") && l.contains("command=\"hello\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        };
        let before = hellos(text);
        wait_for_command(&world, "hello").await;
        world
            .sim
            .slash(
                g,
                world.guild.general_channel_id,
                world.member,
                "hello",
                json!([]),
            )
            .await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = world.get("/metrics", &Auth::None).await.body;
            if hellos(text.as_str().unwrap()) > before {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: /hello not counted"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        world.stop().await;
    }
}

/// What `cargo xtask fuzz-api` found, kept: text with NUL (U+0000) was a 500 on
/// Postgres, which cannot store it; ids past 19 digits passed the schema's
/// pattern; a `null` optional body was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_and_overlong_ids_are_refused_as_client_errors() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let owner = world.login(world.owner).await;
        let g = world.gid();
        let tenant = world.get("/me", &owner).await.body["tenant"]["id"].clone();
        for (method, path, body, pointer) in [
            (
                Method::POST,
                format!("/api/guild/{g}/permissions"),
                json!({"role_id": "5", "command_group": "mod\u{0}eration"}),
                "/command_group",
            ),
            (
                Method::PUT,
                format!("/api/guild/{g}/settings"),
                json!({"prefix": "\u{0}"}),
                "/prefix",
            ),
            (
                Method::POST,
                "/incidents".to_string(),
                json!({"tenantId": tenant, "severity": "low", "title": "a\u{0}b"}),
                "/title",
            ),
            (
                Method::POST,
                "/api/keys".to_string(),
                json!({"name": "\u{0}"}),
                "/name",
            ),
        ] {
            let refused = world.call(method, &path, &owner, Some(body)).await;
            assert_error(&refused, 422, "invalid");
            assert_eq!(
                refused.body["error"]["problems"][0]["path"], pointer,
                "{label} {path}"
            );
        }
        for path in [
            "/api/marketplace/features/hel%00lo".to_string(),
            "/api/marketplace/features/hello?version=0.1%000".to_string(),
            format!("/api/guild/{g}/features/hel%00lo/config"),
            // 20 digits: more than any snowflake.
            "/api/guild/71385351550064403219/settings".to_string(),
        ] {
            assert_error(&world.get(&path, &owner).await, 400, "bad_request");
        }
        let overlong = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/permissions"),
                &owner,
                Some(json!({"role_id": "71385351550064403219", "command_group": "x"})),
            )
            .await;
        assert_error(&overlong, 422, "invalid");
        // `null` is the documented "no body" of an optional one.
        let enabled = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/features/hello/enable"),
                &owner,
                Some(Value::Null),
            )
            .await;
        assert_eq!(enabled.status, 200, "{label}: {:?}", enabled.body);
        assert_eq!(world.get("/healthz", &Auth::None).await.status, 200);
        world.stop().await;
    }
}

/// The committed document is the API's own with the built-in features'
/// routes (`cargo xtask openapi`), and every operation in it, the features'
/// included, has examples that match its schemas.
#[tokio::test]
async fn the_committed_openapi_document_is_the_generated_one() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/API/openapi.yaml"
    ))
    .expect("docs/API/openapi.yaml is missing; run `cargo xtask openapi`");
    let features: Vec<Vec<u8>> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../features"))
            .unwrap()
            .map(|entry| {
                entry
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .replace('-', "_")
            })
            .map(|name| common::component(&name))
            .collect();
    let generated = townes::api::openapi::yaml_with(&features).await.unwrap();
    assert!(
        committed == generated,
        "docs/API/openapi.yaml is stale; run `cargo xtask openapi` and commit the result"
    );
    let doc: Value = serde_norway::from_str(&committed).unwrap();
    assert!(
        doc["paths"]["/api/guild/{guild_id}/tickets/{id}/claim"]["post"].is_object(),
        "the built-in features' routes are listed"
    );
    for problems in [
        townes::api::openapi::lint::example_gaps(&doc),
        townes::api::openapi::lint::example_mismatches(&doc),
    ] {
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_websocket_closes_when_its_session_is_revoked() {
    let (_, store, _guard) = common::sqlite().await;
    let world = World::with(store, |c| ApiConfig {
        ws_recheck: Duration::from_millis(200),
        ..c
    })
    .await;
    let owner = world.login(world.owner).await;
    let mut socket = open_socket(&world, &owner).await;
    send(
        &mut socket,
        json!({"type": "subscribe_guild", "guild_id": world.gid().to_string()}),
    )
    .await;
    assert_eq!(next(&mut socket, WAIT).await.unwrap()["type"], "subscribed");
    // Still open across several re-checks while the session lives.
    assert_eq!(next(&mut socket, Duration::from_millis(700)).await, None);

    let out = world.call(Method::POST, "/auth/logout", &owner, None).await;
    assert_eq!(out.status, 204);
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the socket stayed open after logout");
    assert_eq!(closed, Some(1008));
    world.stop().await;
}

/// When a guild's owner hands it over on Discord, the guild moves to the new
/// owner's tenant (created for them if they never signed in) and the old
/// owner's tenant loses it at once: its API keys get 404, its sessions fall
/// back to Discord rights like any member's, and its open WebSockets drop the
/// guild without waiting for the periodic re-check (and without the news). The
/// audit log says who handed it to whom.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guild_whose_ownership_moves_follows_its_new_owner_at_once() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let g = world.gid();
        let path = format!("/api/guild/{g}/settings");
        let old_owner = world.login(world.owner).await;
        let old_key = world.new_key(&old_owner).await;
        assert_eq!(world.get(&path, &old_key).await.status, 200, "{label}");
        let old_tenant = world.get("/me", &old_owner).await.body["tenant"]["id"].clone();
        let subscribe = json!({"type": "subscribe_guild", "guild_id": g.to_string()});
        let mut key_socket = open_socket(&world, &old_key).await;
        send(&mut key_socket, subscribe.clone()).await;
        assert_eq!(
            next(&mut key_socket, WAIT).await.unwrap()["type"],
            "subscribed"
        );
        let mut session_socket = open_socket(&world, &old_owner).await;
        send(&mut session_socket, subscribe.clone()).await;
        assert_eq!(
            next(&mut session_socket, WAIT).await.unwrap()["type"],
            "subscribed"
        );
        assert!(
            world
                .store
                .tenant_by_owner(world.member)
                .await
                .unwrap()
                .is_none(),
            "{label}: the new owner never signed in"
        );

        world.sim.transfer_ownership(g, world.member).await;

        // Both sockets drop the guild well before the 30 s re-check.
        for (which, socket) in [("key", &mut key_socket), ("session", &mut session_socket)] {
            let dropped = loop {
                let frame = next(socket, WAIT).await.expect("the guild was not dropped");
                assert_ne!(
                    frame["type"], "audit_log",
                    "{label}: the old owner's {which} heard the news: {frame}"
                );
                if frame["type"] == "unsubscribed" {
                    break frame;
                }
            };
            assert_eq!(dropped["guild_id"], g.to_string(), "{label}");
            assert!(dropped["reason"].is_string(), "{label}: {dropped}");
        }
        let guild = world.store.guild(g).await.unwrap().unwrap();
        assert_eq!(guild.owner_id, world.member, "{label}");
        let new_tenant = world
            .store
            .tenant_by_owner(world.member)
            .await
            .unwrap()
            .expect("a tenant was created for the new owner");
        assert_eq!(
            guild.tenant_id.as_deref(),
            Some(new_tenant.id.as_str()),
            "{label}"
        );

        assert_error(&world.get(&path, &old_key).await, 404, "not_found");
        assert_error(&world.get(&path, &old_owner).await, 403, "forbidden");
        let assets = world
            .get(
                &format!("/tenants/{}/assets", old_tenant.as_str().unwrap()),
                &old_owner,
            )
            .await;
        assert_eq!(assets.status, 200, "{label}: {:?}", assets.body);
        assert!(
            !assets.body.to_string().contains(&g.to_string()),
            "{label}: the old tenant still lists the guild: {:?}",
            assets.body
        );

        let new_owner = world.login(world.member).await;
        assert_eq!(
            world.get("/me", &new_owner).await.body["tenant"]["id"],
            new_tenant.id.as_str(),
            "{label}: their login finds the tenant made for them"
        );
        assert_eq!(world.get(&path, &new_owner).await.status, 200, "{label}");
        let new_key = world.new_key(&new_owner).await;
        assert_eq!(world.get(&path, &new_key).await.status, 200, "{label}");

        let entry = world
            .store
            .audit_entries(g, 10)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.action == "guild.transferred")
            .expect("an audit entry for the transfer");
        assert_eq!(entry.actor, "discord", "{label}");
        assert_eq!(
            entry.details["from_owner"],
            world.owner.to_string(),
            "{label}"
        );
        assert_eq!(
            entry.details["to_owner"],
            world.member.to_string(),
            "{label}"
        );
        assert_eq!(
            world
                .running
                .as_ref()
                .unwrap()
                .platform
                .unknown_dispatches
                .load(std::sync::atomic::Ordering::Relaxed),
            0,
            "{label}: GUILD_UPDATE was readable"
        );
        world.stop().await;
    }
}

/// Contract 0.1.1's `api` export through the dashboard API: a feature's routes
/// run behind the guild check, with bodies validated both ways, errors mapped,
/// a spinning route stopped, changes audited with the caller as actor, and
/// the feature's `live` events on the guild's WebSocket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_serve_their_own_routes_behind_the_hosts_guards() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let g = world.gid();
        let owner = world.login(world.owner).await;
        let manager = world.login(world.manager).await;
        let member = world.login(world.member).await;
        let key = world.new_key(&owner).await;
        let notes = format!("/api/guild/{g}/features/notes/api/notes");

        let not_enabled = world.get(&notes, &owner).await;
        assert_error(&not_enabled, 404, "not_found");
        assert!(
            not_enabled.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not enabled"),
            "{label}: {:?}",
            not_enabled.body
        );
        let mut socket = open_socket(&world, &owner).await;
        send(
            &mut socket,
            json!({"type": "subscribe_guild", "guild_id": g.to_string()}),
        )
        .await;
        assert_eq!(next(&mut socket, WAIT).await.unwrap()["type"], "subscribed");
        let installed = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/features/notes/install"),
                &owner,
                Some(json!({"capabilities": ["storage"]})),
            )
            .await;
        assert_eq!(installed.status, 200, "{label}: {:?}", installed.body);
        let started = next_of(&mut socket, "notes_update").await;
        assert_eq!(started["feature"], "notes", "{label}: {started}");
        assert_eq!(started["data"]["event"], "enabled");

        let hostile = "<script>alert(1)</script>";
        let created = world
            .call(
                Method::POST,
                &notes,
                &manager,
                Some(json!({ "text": hostile })),
            )
            .await;
        assert_eq!(created.status, 201, "{label}: {:?}", created.body);
        assert_eq!(created.body, json!({ "id": "1", "text": hostile }));
        assert_eq!(
            created.headers[header::CONTENT_TYPE],
            "application/json",
            "{label}"
        );
        let heard = next_of(&mut socket, "note_created").await;
        assert_eq!(heard["data"]["id"], "1", "{label}");
        let listed = world.get(&notes, &key).await;
        assert_eq!(listed.status, 200, "{label}");
        assert_eq!(listed.body["notes"][0]["text"], hostile);
        assert_eq!(
            world.get(&format!("{notes}/1"), &owner).await.body["text"],
            hostile
        );
        let missing = world.get(&format!("{notes}/99"), &owner).await;
        assert_error(&missing, 404, "not_found");

        // The body is checked against the route's schema before the feature runs.
        for bad in [
            json!({ "text": "" }),
            json!({ "text": "hi", "extra": 1 }),
            json!([]),
        ] {
            let refused = world
                .call(Method::POST, &notes, &owner, Some(bad.clone()))
                .await;
            assert_error(&refused, 422, "invalid");
            assert!(
                !refused.body["error"]["problems"]
                    .as_array()
                    .unwrap()
                    .is_empty(),
                "{label}: {bad} {:?}",
                refused.body
            );
        }
        let put = world.call(Method::PUT, &notes, &owner, None).await;
        assert_error(&put, 405, "method_not_allowed");
        let nowhere = world
            .get(
                &format!("/api/guild/{g}/features/notes/api/nowhere"),
                &owner,
            )
            .await;
        assert_error(&nowhere, 404, "not_found");

        // Who is calling, as the feature is told.
        let whoami = format!("/api/guild/{g}/features/notes/api/whoami?tab=open&tab=x");
        let as_manager = world.get(&whoami, &manager).await.body;
        assert_eq!(as_manager["user_id"], world.manager.to_string(), "{label}");
        assert_eq!(as_manager["owner"], false);
        let bits: u64 = as_manager["permissions"].as_str().unwrap().parse().unwrap();
        assert_ne!(
            bits & townes_discord_sim::permissions::MANAGE_GUILD,
            0,
            "{label}"
        );
        assert_ne!(bits, u64::MAX, "{label}: a manager is not an owner");
        assert_eq!(as_manager["query"], json!([["tab", "open"], ["tab", "x"]]));
        let as_key = world.get(&whoami, &key).await.body;
        assert_eq!(as_key["user_id"], Value::Null, "{label}");
        assert_eq!(as_key["owner"], true);
        assert_eq!(as_key["permissions"], u64::MAX.to_string());
        assert_error(&world.get(&whoami, &member).await, 403, "forbidden");

        // Channel history, read from Discord: refused until `messages` is
        // granted, then newest first, paged with `before`.
        let general = world.guild.general_channel_id;
        let recent = format!("/api/guild/{g}/features/notes/api/recent/{general}");
        let denied = world.get(&recent, &owner).await;
        assert_error(&denied, 403, "forbidden");
        let mut said = Vec::new();
        for text in ["first", "<b>second</b>", "third"] {
            said.push(world.sim.say(g, general, world.member, text).await);
        }
        let regranted = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/features/notes/install"),
                &owner,
                Some(json!({"capabilities": ["storage", "messages", "message-content"]})),
            )
            .await;
        assert_eq!(regranted.status, 200, "{label}: {:?}", regranted.body);
        let page = world.get(&recent, &owner).await.body;
        let texts: Vec<&str> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["content"].as_str())
            .collect();
        assert_eq!(
            texts[..3],
            ["third", "<b>second</b>", "first"],
            "{label}: {page}"
        );
        assert_eq!(page["messages"][0]["author"], "bob");
        let older = world
            .get(&format!("{recent}?before={}", said[2]), &owner)
            .await
            .body;
        assert_eq!(older["messages"][0]["content"], "<b>second</b>", "{label}");

        // Answers outside the contract, and a route that never returns.
        for (path, why) in [
            ("bad-status", "status 500"),
            ("off-contract", "ok"),
            ("spin", "CPU"),
            ("huge", "1048576"),
        ] {
            let started = std::time::Instant::now();
            let failed = world
                .get(&format!("/api/guild/{g}/features/notes/api/{path}"), &owner)
                .await;
            assert_error(&failed, 502, "feature_failed");
            let message = failed.body["error"]["message"].as_str().unwrap();
            assert!(message.contains(why), "{label}: {path}: {message}");
            assert!(!message.contains("<script>"), "{label}: {message}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{label}: {path}"
            );
        }

        let deleted = world
            .call(Method::DELETE, &format!("{notes}/1"), &owner, None)
            .await;
        assert_eq!(deleted.body, json!({ "deleted": true }), "{label}");
        let audit = world
            .get(&format!("/api/guild/{g}/audit-logs"), &owner)
            .await
            .body;
        let calls: Vec<&Value> = audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "feature.api_call")
            .collect();
        assert_eq!(calls.len(), 2, "{label}: a POST and a DELETE: {audit}");
        assert!(
            calls
                .iter()
                .any(|e| e["actor"] == format!("user:{}", world.manager)
                    && e["details"]["operation"] == "createNote"),
            "{label}: {calls:?}"
        );

        // Files: what a feature exports, through its signed link (no sign-in)
        // until the link expires, and to the guild's managers.
        let exported = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/features/notes/api/export"),
                &owner,
                Some(json!({ "seconds": 60 })),
            )
            .await;
        assert_eq!(exported.status, 200, "{label}: {:?}", exported.body);
        let url = exported.body["url"].as_str().unwrap();
        let token = url.split_once("/files/").unwrap().1.to_string();
        let served = world.get(&format!("/files/{token}"), &Auth::None).await;
        assert_eq!(served.status, 200, "{label}: {:?}", served.body);
        assert_eq!(
            served.headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let csp = served.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.starts_with("sandbox;") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert_eq!(served.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(
            served.body.as_str().unwrap().starts_with("<!doctype html>"),
            "{label}"
        );
        let (payload, tag) = token.split_once('.').unwrap();
        for forged in [format!("{payload}.x{tag}"), format!("{payload}A.{tag}")] {
            let refused = world.get(&format!("/files/{forged}"), &Auth::None).await;
            assert_error(&refused, 404, "not_found");
        }
        let links = world
            .running
            .as_ref()
            .unwrap()
            .platform
            .runtime
            .file_links();
        let scope = townes::store::Scope::new(g, "notes");
        // A link signed the same way but already past its expiry is refused;
        // a live one was served above. (Waiting for a short link to run out
        // failed on a loaded CI machine, where the first GET came too late.)
        let past = chrono::Utc::now() - chrono::Duration::seconds(2);
        let expired = links.sign(&scope, "notes/export.html", past).await.unwrap();
        let expired = format!("/files/{}", expired.split_once("/files/").unwrap().1);
        assert_error(&world.get(&expired, &Auth::None).await, 404, "not_found");
        let later = chrono::Utc::now() + chrono::Duration::seconds(60);
        let live = links
            .sign(&scope, "notes/export.html", later)
            .await
            .unwrap();
        let live = format!("/files/{}", live.split_once("/files/").unwrap().1);
        assert_eq!(world.get(&live, &Auth::None).await.status, 200, "{label}");
        let files = world
            .get(&format!("/api/guild/{g}/features/notes/files"), &manager)
            .await;
        assert_eq!(
            files.body[0]["name"], "notes/export.html",
            "{label}: {:?}",
            files.body
        );
        let download = world
            .get(
                &format!("/api/guild/{g}/features/notes/files/notes/export.html"),
                &manager,
            )
            .await;
        assert_eq!(download.status, 200, "{label}");
        assert_eq!(download.body, served.body);

        // The served OpenAPI document lists the feature's routes.
        let doc = world.get("/api/openapi.json", &owner).await.body;
        let create = &doc["paths"]["/api/guild/{guild_id}/features/notes/api/notes"]["post"];
        assert_eq!(create["operationId"], "notesCreateNote", "{label}");
        assert_eq!(
            create["requestBody"]["content"]["application/json"]["schema"]["required"],
            json!(["text"])
        );
        // Seed 002's ticket paths belong to the tickets feature.
        let tickets = world.get(&format!("/api/guild/{g}/tickets"), &owner).await;
        assert_error(&tickets, 404, "not_found");
        assert!(
            tickets.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`tickets` is not enabled"),
            "{label}: {:?}",
            tickets.body
        );
        world.stop().await;
    }
}

/// The next `ticket_update` about ticket `number` with `action`, skipping
/// every other frame.
async fn ticket_update(socket: &mut Socket, number: u64, action: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    while tokio::time::Instant::now() < deadline {
        if let Some(frame) = next(socket, WAIT).await
            && frame["type"] == "ticket_update"
            && frame["data"]["ticket"]["number"] == number
            && frame["data"]["action"] == action
        {
            return frame["data"]["ticket"].clone();
        }
    }
    panic!("no ticket_update {action} for ticket {number}");
}

/// The token of the first file link (`…/files/{token}`) in `text`.
fn file_token(text: &str, after: usize) -> Option<String> {
    let start = text[after..].find("/files/")? + after + "/files/".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    Some(token.trim_end_matches('.').to_string())
}

/// Tickets end to end through Discord's protocols and the dashboard: a
/// member opens one from a panel made on the dashboard, talks (hostile HTML,
/// an attachment), support claims and closes it with a reason; the transcript
/// is stored, escaped, linked and DM'd with the attachment kept; the
/// dashboard's routes list, show, reopen, close, delete and fetch the
/// transcript while `ticket_update` events arrive; a ticket left alone is
/// warned, then closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_goes_from_panel_to_transcript_and_the_dashboard_follows() {
    use permissions::*;
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let (g, sim) = (world.gid(), &world.sim);
        let general = world.guild.general_channel_id;
        let bot_role = sim.create_role(
            g,
            "Townes",
            VIEW_CHANNEL
                | SEND_MESSAGES
                | EMBED_LINKS
                | ATTACH_FILES
                | READ_MESSAGE_HISTORY
                | MANAGE_CHANNELS
                | MANAGE_ROLES,
            5,
        );
        sim.give_role(g, sim.bot_user_id(), bot_role);
        let support = sim.create_role(g, "Support", 0, 2);
        let hostile = "\"><img src=x onerror=alert(1)>";
        let helper = sim.create_user(hostile);
        sim.member_join(g, helper).await;
        sim.give_role(g, helper, support);
        let (bob, mia) = (world.member, world.manager);
        let owner = world.login(world.owner).await;
        let mut socket = open_socket(&world, &owner).await;
        send(
            &mut socket,
            json!({"type": "subscribe_guild", "guild_id": g.to_string()}),
        )
        .await;
        assert_eq!(next(&mut socket, WAIT).await.unwrap()["type"], "subscribed");
        let capabilities = [
            "messages",
            "message-content",
            "members",
            "channels",
            "storage",
            "scheduler",
            "audit",
        ];
        let installed = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/features/tickets/install"),
                &owner,
                Some(json!({ "capabilities": capabilities })),
            )
            .await;
        assert_eq!(installed.status, 200, "{label}: {:?}", installed.body);
        let configured = world
            .call(
                Method::PUT,
                &format!("/api/guild/{g}/features/tickets/config"),
                &owner,
                Some(json!({ "inactive_seconds": 10, "warning_seconds": 5 })),
            )
            .await;
        assert_eq!(configured.status, 200, "{label}: {:?}", configured.body);
        let jobs = world.run_jobs();

        let panel = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/features/tickets/api/panels"),
                &owner,
                Some(json!({
                    "channel_id": general.to_string(),
                    "title": "Need help?",
                    "support_roles": [support.to_string()],
                })),
            )
            .await;
        assert_eq!(panel.status, 201, "{label}: {:?}", panel.body);
        let bot = sim.bot_user_id();
        let panel_message = sim
            .wait_for_message(general, WAIT, |m| {
                m.author_id == bot && !m.components.is_empty()
            })
            .await
            .expect("the panel was posted");
        let open = common::custom_id(&panel_message, "open:");

        // Mia opens one and leaves it alone; Bob opens his and talks.
        let (_, mias) = world
            .answer(sim.click(g, general, mia, panel_message.id, &open).await)
            .await;
        assert!(
            mias["content"].as_str().unwrap_or_default().contains("<#"),
            "{label}: {mias}"
        );
        let idle = ticket_update(&mut socket, 1, "opened").await;
        let (_, answer) = world
            .answer(sim.click(g, general, bob, panel_message.id, &open).await)
            .await;
        let opened = ticket_update(&mut socket, 2, "opened").await;
        let channel: u64 = opened["channel_id"].as_str().unwrap().parse().unwrap();
        assert!(
            answer["content"]
                .as_str()
                .unwrap()
                .contains(&format!("<#{channel}>")),
            "{label}: {answer}"
        );
        assert_eq!(sim.channel_name(channel).as_deref(), Some("ticket-bob"));
        for (who, sees) in [
            (bob, true),
            (helper, true),
            (mia, false),
            (world.stranger, false),
        ] {
            assert_eq!(
                sim.channel_permissions(channel, who) & VIEW_CHANNEL != 0,
                sees,
                "{label}: who sees the ticket ({who})"
            );
        }
        let (_, again) = world
            .answer(sim.click(g, general, bob, panel_message.id, &open).await)
            .await;
        assert!(
            again["content"]
                .as_str()
                .unwrap_or_default()
                .contains("open"),
            "{label}: a second ticket is refused: {again}"
        );

        let script = "<script>alert(1)</script> where is my order?";
        sim.say(g, channel, bob, script).await;
        sim.say_with_attachment(
            g,
            channel,
            bob,
            "the receipt",
            "receipt.txt",
            "text/plain",
            b"paid 10 EUR",
        )
        .await;
        sim.say(g, channel, helper, "on it").await;
        let welcome = sim
            .wait_for_message(channel, WAIT, |m| {
                m.author_id == bot && !m.components.is_empty()
            })
            .await
            .expect("the welcome message");
        let (_, claimed) = world
            .answer(
                sim.click(
                    g,
                    channel,
                    helper,
                    welcome.id,
                    &common::custom_id(&welcome, "claim:"),
                )
                .await,
            )
            .await;
        let ticket = ticket_update(&mut socket, 2, "claimed").await;
        assert_eq!(
            ticket["claimed_by"],
            helper.to_string(),
            "{label}: {claimed}"
        );
        let (kind, form) = world
            .answer(
                sim.click(
                    g,
                    channel,
                    helper,
                    welcome.id,
                    &common::custom_id(&welcome, "close:"),
                )
                .await,
            )
            .await;
        assert_eq!(
            kind, 9,
            "{label}: the close button asks for a reason: {form}"
        );
        let form_id = form["custom_id"].as_str().unwrap().to_string();
        let reason = "solved <b>bold</b>";
        world
            .answer(
                sim.submit_modal(g, channel, helper, &form_id, &[("reason", reason)])
                    .await,
            )
            .await;
        let closed = ticket_update(&mut socket, 2, "closed").await;
        assert_eq!(closed["close_reason"], reason, "{label}");
        assert_eq!(
            sim.channel_permissions(channel, bob) & SEND_MESSAGES,
            0,
            "{label}: the opener can no longer write"
        );

        // The opener's DM carries the transcript's link.
        let said = |m: &townes_discord_sim::SimMessage| format!("{} {:?}", m.content, m.embeds);
        let dm = sim
            .wait_for_dm(bob, WAIT, |m| said(m).contains("/files/"))
            .await
            .unwrap_or_else(|| panic!("{label}: no DM with the transcript"));
        let token = file_token(&said(&dm), 0).unwrap();
        let page = world.get(&format!("/files/{token}"), &Auth::None).await;
        assert_eq!(page.status, 200, "{label}: {:?}", page.body);
        let html = page.body.as_str().unwrap().to_string();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{label}"
        );
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{label}"
        );
        assert!(
            html.contains("on it") && html.contains("receipt.txt"),
            "{label}"
        );
        for raw in ["<script>alert", "<img src=x", "<b>bold"] {
            assert!(
                !html.contains(raw),
                "{label}: `{raw}` came through unescaped"
            );
        }
        let attachment = file_token(&html, html.find("receipt").unwrap_or(0))
            .unwrap_or_else(|| panic!("{label}: no link to the copied attachment"));
        let kept = world
            .get(&format!("/files/{attachment}"), &Auth::None)
            .await;
        assert_eq!(kept.body, Value::String("paid 10 EUR".into()), "{label}");

        // The dashboard, through seed 002's paths.
        let tickets = format!("/api/guild/{g}/tickets");
        let listed = world.get(&tickets, &owner).await;
        assert_eq!(listed.status, 200, "{label}: {:?}", listed.body);
        assert_eq!(
            listed.body["tickets"].as_array().unwrap().len(),
            2,
            "{label}"
        );
        let member = world.login(bob).await;
        assert_error(&world.get(&tickets, &member).await, 403, "forbidden");
        let shown = world.get(&format!("{tickets}/2"), &owner).await;
        assert_eq!(shown.body["status"], "closed", "{label}: {:?}", shown.body);
        let transcript = world.get(&format!("{tickets}/2/transcript"), &owner).await;
        assert_eq!(transcript.status, 200, "{label}: {:?}", transcript.body);
        let fresh = file_token(transcript.body["url"].as_str().unwrap(), 0).unwrap();
        assert_eq!(
            world
                .get(&format!("/files/{fresh}"), &Auth::None)
                .await
                .status,
            200,
            "{label}"
        );
        assert_error(
            &world.get(&format!("{tickets}/99"), &owner).await,
            404,
            "not_found",
        );
        let reopened = world
            .call(Method::POST, &format!("{tickets}/2/reopen"), &owner, None)
            .await;
        assert_eq!(
            reopened.body["status"], "open",
            "{label}: {:?}",
            reopened.body
        );
        ticket_update(&mut socket, 2, "reopened").await;
        for (step, holder) in [
            ("unclaim", Value::Null),
            ("claim", json!(world.owner.to_string())),
        ] {
            let changed = world
                .call(Method::POST, &format!("{tickets}/2/{step}"), &owner, None)
                .await;
            assert_eq!(changed.status, 200, "{label}: {step}: {:?}", changed.body);
            assert_eq!(changed.body["claimed_by"], holder, "{label}: {step}");
        }
        let closed = world
            .call(
                Method::POST,
                &format!("{tickets}/2/close"),
                &owner,
                Some(json!({ "reason": "from the dashboard" })),
            )
            .await;
        assert_eq!(
            closed.body["status"], "closed",
            "{label}: {:?}",
            closed.body
        );
        assert_eq!(closed.body["closed_by"], world.owner.to_string(), "{label}");
        let deleted = world
            .call(Method::POST, &format!("{tickets}/2/delete"), &owner, None)
            .await;
        assert_eq!(
            deleted.body["status"], "deleted",
            "{label}: {:?}",
            deleted.body
        );
        ticket_update(&mut socket, 2, "deleted").await;
        assert_eq!(
            sim.channel_name(channel),
            None,
            "{label}: the channel is gone"
        );

        // Mia's ticket: nobody wrote, so a warning, then the close.
        let idle_channel: u64 = idle["channel_id"].as_str().unwrap().parse().unwrap();
        ticket_update(&mut socket, 1, "warned").await;
        sim.wait_for_message(idle_channel, WAIT, |m| {
            m.author_id == bot && said(m).contains("close")
        })
        .await
        .expect("the inactivity warning");
        let idle = ticket_update(&mut socket, 1, "closed").await;
        assert_eq!(idle["closed_by"], bot.to_string(), "{label}: {idle}");
        assert_eq!(idle["close_reason"], "No activity", "{label}");
        jobs.abort();
        world.stop().await;
    }
}

/// Seed 002's module switches in the guild settings are the features'
/// enabled states, read and written both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_module_switches_are_the_features_enabled_states() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let g = world.gid();
        let owner = world.login(world.owner).await;
        let settings = format!("/api/guild/{g}/settings");
        let read = world.get(&settings, &owner).await;
        assert_eq!(read.status, 200, "{label}: {:?}", read.body);
        assert_eq!(read.body["tickets_enabled"], false, "{label}");

        let on = world
            .call(
                Method::PUT,
                &settings,
                &owner,
                Some(json!({ "tickets_enabled": true, "prefix": "?" })),
            )
            .await;
        assert_eq!(on.status, 200, "{label}: {:?}", on.body);
        assert_eq!(
            (
                on.body["tickets_enabled"].clone(),
                on.body["prefix"].clone()
            ),
            (json!(true), json!("?")),
            "{label}"
        );
        let row = world
            .store
            .guild_feature(g, "tickets")
            .await
            .unwrap()
            .unwrap();
        assert!(row.enabled, "{label}: the switch enabled the feature");
        assert!(
            row.grants
                .capabilities
                .contains(townes::wit::Capability::Channels),
            "{label}: a first enable approves what the feature requires"
        );

        // The marketplace's own switch shows in the settings.
        let off = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/features/tickets/disable"),
                &owner,
                None,
            )
            .await;
        assert_eq!(off.status, 200, "{label}: {:?}", off.body);
        assert_eq!(
            world.get(&settings, &owner).await.body["tickets_enabled"],
            false,
            "{label}"
        );

        // Custom commands and auto-responders are one feature: one switch
        // moves both, and they may not disagree.
        let responders = world
            .call(
                Method::PUT,
                &settings,
                &owner,
                Some(json!({ "auto_responders_enabled": true })),
            )
            .await;
        assert_eq!(responders.status, 200, "{label}: {:?}", responders.body);
        assert_eq!(responders.body["custom_commands_enabled"], true, "{label}");
        let disagree = world
            .call(
                Method::PUT,
                &settings,
                &owner,
                Some(json!({ "custom_commands_enabled": false, "auto_responders_enabled": true })),
            )
            .await;
        assert_error(&disagree, 422, "invalid");

        // A switch whose feature this platform lacks says so.
        let missing = world
            .call(
                Method::PUT,
                &settings,
                &owner,
                Some(json!({ "fun_enabled": true })),
            )
            .await;
        assert_error(&missing, 409, "conflict");
        let message = missing.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("fun_enabled:"), "{label}: {message}");
        let member = world.login(world.member).await;
        let refused = world
            .call(
                Method::PUT,
                &settings,
                &member,
                Some(json!({ "tickets_enabled": true })),
            )
            .await;
        assert_error(&refused, 403, "forbidden");
        assert!(
            !world
                .store
                .guild_feature(g, "tickets")
                .await
                .unwrap()
                .unwrap()
                .enabled,
            "{label}"
        );
        world.stop().await;
    }
}

/// Installs `feature` in the world's guild, approving `capabilities`, and
/// gives the bot a role with `permissions` (above the test's roles).
async fn install_with_bot_role(
    world: &World,
    owner: &Auth,
    feature: &str,
    capabilities: &[&str],
    permissions: u64,
) {
    let g = world.gid();
    let bot_role = world.sim.create_role(g, "Townes", permissions, 5);
    world.sim.give_role(g, world.sim.bot_user_id(), bot_role);
    let installed = world
        .call(
            Method::POST,
            &format!("/api/guild/{g}/features/{feature}/install"),
            owner,
            Some(json!({ "capabilities": capabilities })),
        )
        .await;
    assert_eq!(installed.status, 200, "{:?}", installed.body);
}

/// Installs custom-commands as the guild's owner (with what it needs to
/// answer, embeds included) and returns the owner's session.
async fn install_custom_commands(world: &World) -> Auth {
    use permissions::*;
    let owner = world.login(world.owner).await;
    install_with_bot_role(
        world,
        &owner,
        "custom-commands",
        &["messages", "message-content", "storage", "members"],
        VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS,
    )
    .await;
    owner
}

/// Creates a template on the dashboard and sends it to `channel`; the
/// message as Discord has it.
async fn create_and_send_template(
    world: &World,
    owner: &Auth,
    channel: u64,
    template: Value,
) -> townes_discord_sim::SimMessage {
    let g = world.gid();
    let created = world
        .call(
            Method::POST,
            &format!("/api/guild/{g}/templates"),
            owner,
            Some(template.clone()),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = template["id"].as_str().unwrap();
    let sent = world
        .call(
            Method::POST,
            &format!("/api/guild/{g}/templates/{id}/send"),
            owner,
            Some(json!({ "channel_id": channel.to_string() })),
        )
        .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let message_id: u64 = sent.body["message_id"].as_str().unwrap().parse().unwrap();
    world
        .sim
        .messages(channel)
        .into_iter()
        .find(|m| m.id == message_id)
        .unwrap()
}

/// Templates end to end: made and sent from the dashboard (seed 002's
/// `/templates` paths), with variables filled in; its role button toggles the
/// role on Discord; a click naming another role gets nothing; reaction roles
/// set on the sent message give their role on a reaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_is_sent_from_the_dashboard_and_its_roles_are_handed_out() {
    use permissions::*;
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let (g, sim, bob) = (world.gid(), &world.sim, world.member);
        let general = world.guild.general_channel_id;
        let owner = world.login(world.owner).await;
        install_with_bot_role(
            &world,
            &owner,
            "templates",
            &["messages", "roles", "storage", "members"],
            VIEW_CHANNEL
                | SEND_MESSAGES
                | EMBED_LINKS
                | ADD_REACTIONS
                | READ_MESSAGE_HISTORY
                | MANAGE_ROLES,
        )
        .await;
        let gamer = sim.create_role(g, "Gamer", 0, 1);
        let reader = sim.create_role(g, "Reader", 0, 1);
        let message = create_and_send_template(&world, &owner, general, json!({
                "id": "roles",
                "name": "Pick your roles",
                "content": "Welcome to {server.name}!",
                "buttons": [{ "kind": "role", "label": "Gamer", "role_id": gamer.to_string(), "style": "primary" }]
            }))
        .await;
        let message_id = message.id;
        assert_eq!(message.content, "Welcome to Alpha!", "{label}");
        let toggle = common::custom_id(&message, &format!("role:{gamer}"));
        let here = &world;
        let click = |id: String| async move {
            here.answer(sim.click(g, general, bob, message_id, &id).await)
                .await
        };
        click(toggle.clone()).await;
        assert!(sim.member_roles(g, bob).contains(&gamer), "{label}: added");
        click(toggle.clone()).await;
        assert!(
            !sim.member_roles(g, bob).contains(&gamer),
            "{label}: removed"
        );
        // A click naming a role the message does not offer gets nothing.
        click(toggle.replace(&gamer.to_string(), &reader.to_string())).await;
        assert!(
            !sim.member_roles(g, bob).contains(&reader),
            "{label}: forged"
        );

        let reactions = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/features/templates/api/reaction-roles"),
                &owner,
                Some(json!({
                    "channel_id": general.to_string(),
                    "message_id": message_id.to_string(),
                    "mode": "normal",
                    "pairs": [{ "emoji": "📚", "role_id": reader.to_string() }]
                })),
            )
            .await;
        assert_eq!(reactions.status, 201, "{label}: {:?}", reactions.body);
        sim.react(g, general, message_id, bob, "📚").await;
        common::wait_until(|| async { sim.member_roles(g, bob).contains(&reader) }).await;
        // No feature here follows member events, so the gateway's cache does
        // not see roles change: the member is read afresh, and un-reacting
        // takes the role back.
        sim.unreact(g, general, message_id, bob, "📚").await;
        common::wait_until(|| async { !sim.member_roles(g, bob).contains(&reader) }).await;

        // A template with a command of its own: seed 002's "template"
        // response, registered as the server's /faq.
        let faq = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/templates"),
                &owner,
                Some(json!({
                    "id": "faq",
                    "name": "FAQ",
                    "embed": { "title": "FAQ of {server.name}", "description": "Ask away" },
                    "buttons": [{ "kind": "link", "label": "Docs", "url": "https://example.com/docs" }],
                    "command": "faq"
                })),
            )
            .await;
        assert_eq!(faq.status, 201, "{label}: {:?}", faq.body);
        common::wait_until(|| async { sim.guild_commands(g).iter().any(|c| c["name"] == "faq") })
            .await;
        let (kind, data) = world
            .answer(sim.slash(g, general, bob, "faq", json!([])).await)
            .await;
        assert_eq!(kind, 4, "{label}: {data}");
        assert_eq!(
            data["embeds"][0]["title"], "FAQ of Alpha",
            "{label}: {data}"
        );
        assert_eq!(
            data["components"][0]["components"][0]["url"], "https://example.com/docs",
            "{label}: {data}"
        );

        // The roles its messages may notify: never @everyone.
        let enable = format!("/api/guild/{g}/features/templates/enable");
        let everyone = world
            .call(
                Method::POST,
                &enable,
                &owner,
                Some(
                    json!({ "capabilities": ["messages", "roles", "storage", "members"],
                             "mention_roles": [g.to_string()] }),
                ),
            )
            .await;
        assert_eq!(everyone.status, 422, "{label}: {:?}", everyone.body);
        assert!(
            everyone.body["error"]["problems"][0]["message"]
                .as_str()
                .unwrap()
                .contains("@everyone"),
            "{label}: {:?}",
            everyone.body
        );
        let allowed = world
            .call(
                Method::POST,
                &enable,
                &owner,
                Some(
                    json!({ "capabilities": ["messages", "roles", "storage", "members"],
                             "mention_roles": [gamer.to_string()] }),
                ),
            )
            .await;
        assert_eq!(allowed.status, 200, "{label}: {:?}", allowed.body);
        assert_eq!(
            allowed.body["mention_roles"],
            json!([gamer.to_string()]),
            "{label}"
        );
        world.stop().await;
    }
}

/// Custom commands and auto-responders end to end: a command defined on the
/// dashboard answers a member's `!command` with its variables filled in; an
/// auto-responder answers a matching message once per channel per 10 s and
/// counts every match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_defined_commands_and_auto_responders_answer_members() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let (g, sim, bob) = (world.gid(), &world.sim, world.member);
        let general = world.guild.general_channel_id;
        let owner = install_custom_commands(&world).await;
        let created = world
            .call(
                Method::POST,
                &format!("/api/guild/{g}/commands"),
                &owner,
                Some(json!({
                    "name": "greet",
                    "response": { "type": "text", "content": "Hi {user.mention}, welcome to {server.name}: {args}" }
                })),
            )
            .await;
        assert_eq!(created.status, 201, "{label}: {:?}", created.body);
        let bot = sim.bot_user_id();
        sim.say(g, general, bob, "!greet nice to meet you").await;
        let answer = sim
            .wait_for_message(general, WAIT, |m| {
                m.author_id == bot && m.content.starts_with("Hi ")
            })
            .await
            .unwrap_or_else(|| panic!("{label}: the command never answered"));
        assert_eq!(
            answer.content,
            format!("Hi <@{bob}>, welcome to Alpha: nice to meet you"),
            "{label}"
        );

        let responders = format!("/api/guild/{g}/features/custom-commands/api/auto-responders");
        let responder = world
            .call(
                Method::POST,
                &responders,
                &owner,
                Some(json!({
                    "trigger": "pizza",
                    "match_type": "contains",
                    "response": { "type": "text", "content": "Pizza time, {user}!" }
                })),
            )
            .await;
        assert_eq!(responder.status, 201, "{label}: {:?}", responder.body);
        let id = responder.body["id"].as_str().unwrap().to_string();
        let pizza = |m: &townes_discord_sim::SimMessage| {
            m.author_id == bot && m.content.starts_with("Pizza time")
        };
        sim.say(g, general, bob, "who wants PIZZA?").await;
        sim.wait_for_message(general, WAIT, pizza)
            .await
            .unwrap_or_else(|| panic!("{label}: the auto-responder never answered"));
        sim.say(g, general, bob, "pizza again").await;
        common::wait_until(|| async {
            world.get(&format!("{responders}/{id}"), &owner).await.body["trigger_count"] == 2
        })
        .await;
        let answers = sim.messages(general).iter().filter(|m| pizza(m)).count();
        assert_eq!(answers, 1, "{label}: one answer per channel per 10 s");
        world.stop().await;
    }
}

/// A template's role menu end to end: the member's roles among the menu's
/// options become exactly the ones chosen, every time they choose; a value
/// the menu does not offer gives nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_menu_gives_exactly_the_chosen_roles() {
    use permissions::*;
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let (g, sim, bob) = (world.gid(), &world.sim, world.member);
        let general = world.guild.general_channel_id;
        let owner = world.login(world.owner).await;
        install_with_bot_role(
            &world,
            &owner,
            "templates",
            &["messages", "roles", "storage", "members"],
            VIEW_CHANNEL | SEND_MESSAGES | MANAGE_ROLES,
        )
        .await;
        let [gamer, reader, artist, admin] =
            ["Gamer", "Reader", "Artist", "Admin"].map(|name| sim.create_role(g, name, 0, 1));
        let option = |role: u64, name: &str| json!({ "role_id": role.to_string(), "label": name });
        let message = create_and_send_template(&world, &owner, general, json!({
                "id": "hobbies",
                "name": "Hobbies",
                "content": "Pick your hobbies in {channel}",
                "select": {
                    "placeholder": "Your hobbies",
                    "min_values": 0,
                    "options": [option(gamer, "Gamer"), option(reader, "Reader"), option(artist, "Artist")]
                }
            }))
        .await;
        let message_id = message.id;
        assert_eq!(
            message.content,
            format!("Pick your hobbies in <#{general}>")
        );
        let menu = &message.components[0]["components"][0];
        assert_eq!(menu["type"], 3, "{label}: a select menu: {menu}");
        assert_eq!(
            (&menu["min_values"], &menu["max_values"]),
            (&json!(0), &json!(3)),
            "{label}: {menu}"
        );
        let offered: Vec<&str> = menu["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap())
            .collect();
        assert_eq!(offered, [gamer, reader, artist].map(|r| r.to_string()));
        let custom_id = common::custom_id(&message, "roles:hobbies");

        let here = &world;
        let choose = |values: &[u64]| {
            let values: Vec<String> = values.iter().map(u64::to_string).collect();
            let custom_id = custom_id.clone();
            async move {
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                let chosen = sim
                    .choose(g, general, bob, message_id, &custom_id, &values)
                    .await;
                let (_, data) = here.answer(chosen).await;
                assert_eq!(data["flags"], 64, "only Bob sees the answer: {data}");
                data["content"].as_str().unwrap_or_default().to_string()
            }
        };
        let menu_roles = || {
            let mut held: Vec<u64> = sim
                .member_roles(g, bob)
                .into_iter()
                .filter(|r| [gamer, reader, artist, admin].contains(r))
                .collect();
            held.sort_unstable();
            held
        };
        let sorted = |mut roles: Vec<u64>| {
            roles.sort_unstable();
            roles
        };

        let said = choose(&[gamer, reader]).await;
        assert_eq!(said, format!("Added <@&{gamer}>, <@&{reader}>"), "{label}");
        common::wait_until(|| async { menu_roles() == sorted(vec![gamer, reader]) }).await;

        let said = choose(&[reader, artist]).await;
        assert_eq!(
            said,
            format!("Added <@&{artist}>\nRemoved <@&{gamer}>"),
            "{label}"
        );
        common::wait_until(|| async { menu_roles() == sorted(vec![reader, artist]) }).await;

        let said = choose(&[reader, artist]).await;
        assert_eq!(said, "Your roles already match your choice.", "{label}");

        // A value naming a role the menu does not offer changes nothing.
        let said = choose(&[admin]).await;
        assert_eq!(said, "That role is not offered on this message.", "{label}");
        assert_eq!(menu_roles(), sorted(vec![reader, artist]), "{label}");

        let said = choose(&[]).await;
        assert_eq!(
            said,
            format!("Removed <@&{reader}>, <@&{artist}>"),
            "{label}"
        );
        common::wait_until(|| async { menu_roles().is_empty() }).await;
        world.stop().await;
    }
}

/// Custom commands end to end: a text response with every variable, run as
/// `!whoami` and as `/cc whoami` in another channel, is rendered exactly; an
/// embed response reaches Discord with its title, description, link,
/// colour, fields and footer filled in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_commands_fill_in_every_variable_and_send_embeds() {
    for (label, store, _guard) in common::each_backend().await {
        let world = World::new(store).await;
        let (g, sim, bob) = (world.gid(), &world.sim, world.member);
        let general = world.guild.general_channel_id;
        let owner = install_custom_commands(&world).await;
        let commands = format!("/api/guild/{g}/commands");
        for command in [
            json!({
                "name": "whoami",
                "response": { "type": "text", "content": "user={user} mention={user.mention} server={server.name} members={server.memberCount} channel={channel} link={channel.mention} args={args} first={arg1}" }
            }),
            json!({
                "name": "card",
                "response": {
                    "type": "embed",
                    "title": "Card of {user}",
                    "description": "{user.mention} asked in {channel.mention} on {server.name}",
                    "url": "https://example.com/card",
                    "color": 3447003,
                    "fields": [
                        { "name": "First word", "value": "{arg1}", "inline": true },
                        { "name": "Members", "value": "{server.memberCount}" }
                    ],
                    "footer": "All of it: {args}"
                }
            }),
        ] {
            let created = world
                .call(Method::POST, &commands, &owner, Some(command))
                .await;
            assert_eq!(created.status, 201, "{label}: {:?}", created.body);
        }
        let bot = sim.bot_user_id();
        // Olivia (the owner), Mia, Bob and the bot.
        let members = 4;

        sim.say(g, general, bob, "!whoami red green blue").await;
        let answer = sim
            .wait_for_message(general, WAIT, |m| {
                m.author_id == bot && m.content.starts_with("user=")
            })
            .await
            .unwrap_or_else(|| panic!("{label}: !whoami never answered"));
        assert_eq!(
            answer.content,
            format!(
                "user=bob mention=<@{bob}> server=Alpha members={members} channel={general} \
                 link=<#{general}> args=red green blue first=red"
            ),
            "{label}"
        );

        // As `/cc` in another channel: the channel variables follow it.
        wait_for_command(&world, "cc").await;
        let lounge = sim.create_channel(g, "lounge");
        let cc = sim
            .slash(
                g,
                lounge,
                bob,
                "cc",
                json!([{ "name": "name", "type": 3, "value": "whoami" },
                       { "name": "args", "type": 3, "value": "solo" }]),
            )
            .await;
        let (_, data) = world.answer(cc).await;
        assert_eq!(
            data["content"],
            format!(
                "user=bob mention=<@{bob}> server=Alpha members={members} channel={lounge} \
                 link=<#{lounge}> args=solo first=solo"
            ),
            "{label}"
        );

        sim.say(g, general, bob, "!card hello world").await;
        let card = sim
            .wait_for_message(general, WAIT, |m| {
                m.author_id == bot && !m.embeds.is_empty()
            })
            .await
            .unwrap_or_else(|| panic!("{label}: !card never answered"));
        assert_eq!(card.content, "", "{label}");
        assert_eq!(card.embeds.len(), 1, "{label}");
        let embed = &card.embeds[0];
        assert_eq!(embed["title"], "Card of bob", "{label}");
        assert_eq!(
            embed["description"],
            format!("<@{bob}> asked in <#{general}> on Alpha"),
            "{label}"
        );
        assert_eq!(embed["url"], "https://example.com/card", "{label}");
        assert_eq!(embed["color"], 3447003, "{label}");
        assert_eq!(
            embed["fields"],
            json!([
                { "name": "First word", "value": "hello", "inline": true },
                { "name": "Members", "value": members.to_string(), "inline": false }
            ]),
            "{label}"
        );
        assert_eq!(embed["footer"]["text"], "All of it: hello world", "{label}");
        world.stop().await;
    }
}

/// Every auto-responder's trigger count as the dashboard shows it, under the
/// name `ids` gives its id.
async fn trigger_counts<'a>(
    world: &World,
    auth: &Auth,
    ids: &std::collections::BTreeMap<&'a str, String>,
) -> std::collections::BTreeMap<&'a str, i64> {
    let g = world.gid();
    let listed = world
        .get(
            &format!("/api/guild/{g}/features/custom-commands/api/auto-responders"),
            auth,
        )
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let list = listed.body["auto_responders"].as_array().unwrap();
    ids.iter()
        .map(|(name, id)| {
            let responder = list
                .iter()
                .find(|r| r["id"] == id.as_str())
                .unwrap_or_else(|| panic!("auto-responder {id} is not listed: {list:?}"));
            (*name, responder["trigger_count"].as_i64().unwrap())
        })
        .collect()
}

/// Auto-responders end to end. Saving refuses a regex that does not compile
/// (or compiles too big) with the reason. Each match type matches what it
/// should and not what it should not, with and without case sensitivity: a
/// catch-all at the lowest priority takes every message the others do not
/// match, so exactly one trigger count moves per message and says which
/// responder matched; each message, in a channel of its own, gets that
/// responder's answer. Then the channel limit: a second match within 10 s in
/// a channel gets no answer but still counts (as `responders.rs` documents),
/// another channel is answered meanwhile, and the first channel is answered
/// again once the 10 s are over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_responders_match_by_type_and_case_and_answer_once_per_channel_per_10_seconds() {
    use std::collections::BTreeMap;
    for (label, store, _guard) in common::each_backend().await {
        // The test reads the trigger counts often.
        let world = World::with(store, |c| ApiConfig {
            rate_limit_ip: 100_000,
            rate_limit_key: 100_000,
            ..c
        })
        .await;
        let (g, sim, bob) = (world.gid(), &world.sim, world.member);
        let owner = install_custom_commands(&world).await;
        let responders = format!("/api/guild/{g}/features/custom-commands/api/auto-responders");
        let bot = sim.bot_user_id();

        for (pattern, why) in [
            ("(unclosed", "not a valid regex"),
            (r"(?:\w{50}){50}", "compiles to more than"),
        ] {
            let refused = world
                .call(
                    Method::POST,
                    &responders,
                    &owner,
                    Some(json!({
                        "trigger": pattern,
                        "match_type": "regex",
                        "response": { "type": "text", "content": "never" }
                    })),
                )
                .await;
            assert_error(&refused, 400, "bad_request");
            let reason = refused.body["error"]["message"].as_str().unwrap();
            assert!(
                reason.starts_with("trigger: the pattern") && reason.contains(why),
                "{label}: {reason}"
            );
        }
        let listed = world.get(&responders, &owner).await;
        assert_eq!(
            listed.body["auto_responders"],
            json!([]),
            "{label}: nothing saved"
        );

        let mut ids = BTreeMap::new();
        for (name, trigger, match_type, case_sensitive, priority, answer) in [
            (
                "exact",
                "Hello Bot",
                "exact",
                false,
                60,
                "Hello to you, {user}!",
            ),
            (
                "starts",
                "good morning",
                "starts_with",
                false,
                50,
                "Morning, {user.mention}!",
            ),
            ("ends", "see you", "ends_with", false, 40, "Bye, {user}!"),
            (
                "order",
                r"^order #\d{3}$",
                "regex",
                false,
                30,
                "Order {arg2} is on its way",
            ),
            ("shout", "SHOUT", "exact", true, 20, "No shouting, {user}."),
            ("rust", r"\bRust\b", "regex", true, 10, "A Rust fan!"),
            ("other", r"[\s\S]", "regex", false, -1000, "Noted."),
        ] {
            let created = world
                .call(
                    Method::POST,
                    &responders,
                    &owner,
                    Some(json!({
                        "trigger": trigger,
                        "match_type": match_type,
                        "case_sensitive": case_sensitive,
                        "priority": priority,
                        "response": { "type": "text", "content": answer }
                    })),
                )
                .await;
            assert_eq!(created.status, 201, "{label}: {name}: {:?}", created.body);
            assert_eq!(created.body["trigger_count"], 0, "{label}");
            ids.insert(name, created.body["id"].as_str().unwrap().to_string());
        }
        // An invalid regex is refused by PUT too, and the responder stays as it was.
        let order = format!("{responders}/{}", ids["order"]);
        let refused = world
            .call(
                Method::PUT,
                &order,
                &owner,
                Some(json!({
                    "trigger": "order #(",
                    "match_type": "regex",
                    "response": { "type": "text", "content": "never" }
                })),
            )
            .await;
        assert_error(&refused, 400, "bad_request");
        assert_eq!(
            world.get(&order, &owner).await.body["trigger"],
            r"^order #\d{3}$",
            "{label}"
        );

        let counts = || trigger_counts(&world, &owner, &ids);
        let mut expected: BTreeMap<&str, i64> = ids.keys().map(|name| (*name, 0)).collect();
        let mut channels = 0;
        let hello = "Hello to you, bob!".to_string();
        let morning = format!("Morning, <@{bob}>!");
        let (bye, noted) = ("Bye, bob!".to_string(), "Noted.".to_string());
        for (text, matched, answer) in [
            ("hello bot", "exact", &hello),
            ("HELLO BOT", "exact", &hello),
            ("hello bot!", "other", &noted),
            ("well, hello bot", "other", &noted),
            ("Good Morning, everyone", "starts", &morning),
            ("and a good morning", "other", &noted),
            ("ok, SEE YOU", "ends", &bye),
            ("see you tomorrow", "other", &noted),
            (
                "ORDER #123",
                "order",
                &"Order #123 is on its way".to_string(),
            ),
            ("order #1234", "other", &noted),
            ("my order #123", "other", &noted),
            ("SHOUT", "shout", &"No shouting, bob.".to_string()),
            ("shout", "other", &noted),
            ("I like Rust", "rust", &"A Rust fan!".to_string()),
            ("i like rust", "other", &noted),
            ("Rusty nails", "other", &noted),
        ] {
            channels += 1;
            let channel = sim.create_channel(g, &format!("case-{channels}"));
            sim.say(g, channel, bob, text).await;
            *expected.get_mut(matched).unwrap() += 1;
            let total: i64 = expected.values().sum();
            common::wait_until(|| async { counts().await.values().sum::<i64>() == total }).await;
            assert_eq!(
                counts().await,
                expected,
                "{label}: `{text}` matches `{matched}` only"
            );
            let reply = sim
                .wait_for_message(channel, WAIT, |m| m.author_id == bot)
                .await
                .unwrap_or_else(|| panic!("{label}: `{text}` got no answer"));
            assert_eq!(&reply.content, answer, "{label}: `{text}`");
        }

        // At most one answer per channel per 10 seconds; every match counts.
        let busy = sim.create_channel(g, "busy");
        let quiet = sim.create_channel(g, "quiet");
        let answers = |channel: u64| {
            sim.messages(channel)
                .iter()
                .filter(|m| m.author_id == bot && m.content == hello)
                .count()
        };
        let said = move |channel: u64, text: &'static str| sim.say(g, channel, bob, text);
        let counted = |n: i64| {
            let expected = &expected;
            let counts = &counts;
            async move {
                common::wait_until(|| async { counts().await["exact"] == expected["exact"] + n })
                    .await
            }
        };
        said(busy, "hello bot").await;
        sim.wait_for_message(busy, WAIT, |m| m.author_id == bot)
            .await
            .unwrap_or_else(|| panic!("{label}: no answer in #busy"));
        let window_from = tokio::time::Instant::now();
        counted(1).await;
        said(busy, "Hello Bot").await;
        counted(2).await;
        said(quiet, "HELLO BOT").await;
        sim.wait_for_message(quiet, WAIT, |m| m.author_id == bot && m.content == hello)
            .await
            .unwrap_or_else(|| panic!("{label}: #quiet was not answered"));
        counted(3).await;
        assert_eq!(answers(busy), 1, "{label}: the second match in #busy");

        tokio::time::sleep_until(window_from + Duration::from_millis(10_500)).await;
        said(busy, "hello bot").await;
        common::wait_until(|| async { answers(busy) >= 2 }).await;
        counted(4).await;
        assert_eq!(
            answers(busy),
            2,
            "{label}: answered again after 10 s, and the held-back match never was"
        );
        *expected.get_mut("exact").unwrap() += 4;
        assert_eq!(counts().await, expected, "{label}");
        world.stop().await;
    }
}
