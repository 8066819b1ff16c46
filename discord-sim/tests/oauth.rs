//! OAuth2 (authorization-code grant) over real HTTP: the authorize page, the token
//! endpoint, refresh and revoke, and the two Bearer endpoints.

mod common;

use common::{Api, world};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use townes_discord_sim::{Simulator, permissions as p};

const REDIRECT: &str = "http://127.0.0.1:9/auth/callback";

/// Plain HTTP without following redirects.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Reply {
    status: u16,
    body: Value,
}

async fn reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let body = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or(Value::Null);
    Reply { status, body }
}

/// `POST /api/v10/oauth2/token…` with a form; the client's credentials in the
/// form unless `secret` is `None`.
async fn post_form(
    sim: &Simulator,
    path: &str,
    secret: Option<&str>,
    form: &[(&str, &str)],
) -> Reply {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let id = sim.client_id();
    if let Some(s) = secret {
        fields.push(("client_id", &id));
        fields.push(("client_secret", s));
    }
    let resp = http()
        .post(format!("{}/api/v10{path}", sim.base_url()))
        .form(&fields)
        .send()
        .await
        .unwrap();
    reply(resp).await
}

async fn exchange(sim: &Simulator, code: &str, redirect_uri: &str) -> Reply {
    let secret = sim.client_secret();
    post_form(
        sim,
        "/oauth2/token",
        Some(&secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ],
    )
    .await
}

/// A code for `user` via the helper, exchanged over HTTP: the access token.
async fn login(sim: &Simulator, user: u64, scopes: &[&str]) -> Value {
    let code = sim.authorize(user, scopes, REDIRECT);
    let r = exchange(sim, &code, REDIRECT).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn bearer(sim: &Simulator, method: &str, path: &str, token: &str) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let resp = http()
        .request(method, format!("{}/api/v10{path}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    reply(resp).await
}

fn authorize_url(sim: &Simulator, extra: &str) -> String {
    format!(
        "{}/oauth2/authorize?response_type=code&client_id={}&scope=identify%20guilds&redirect_uri={}{extra}",
        sim.base_url(),
        sim.client_id(),
        "http%3A%2F%2F127.0.0.1%3A9%2Fauth%2Fcallback",
    )
}

fn guild_entry(guilds: &Value, id: u64) -> Value {
    guilds
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"].as_str().and_then(|s| s.parse::<u64>().ok()) == Some(id))
        .cloned()
        .unwrap_or_else(|| panic!("guild {id} not in {guilds}"))
}

#[tokio::test]
async fn full_flow_over_http_with_owner_member_and_manage_server() {
    let w = world().await;
    let sim = &w.sim;
    let g = w.g.guild_id;
    let bob = sim.create_user("bob");
    sim.member_join(g, bob).await;
    let mods = sim.create_role(g, "Mods", p::MANAGE_GUILD, 2);
    sim.give_role(g, bob, mods);
    assert_eq!(sim.client_id(), sim.application_id().to_string());
    assert_eq!(sim.client_secret(), "sim-client-secret");

    // The owner consents on the authorize page.
    let state = "xyz 1&2=3/é";
    let url = authorize_url(
        sim,
        &format!("&state=xyz%201%262%3D3%2F%C3%A9&sim_user={}", w.owner),
    );
    let resp = http().get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=")),
        "{location}"
    );
    assert!(
        location.ends_with("&state=xyz%201%262%3D3%2F%C3%A9"),
        "{location}"
    );
    let q: HashMap<String, String> = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["state"], state);

    let r = exchange(sim, &q["code"], REDIRECT).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 604800);
    assert_eq!(r.body["scope"], "identify guilds");
    assert!(
        r.body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let token = r.body["access_token"].as_str().unwrap().to_string();

    let me = bearer(sim, "GET", "/users/@me", &token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["id"], w.owner.to_string());
    assert_eq!(me.body["username"], "owner");
    assert_eq!(me.body["global_name"], "owner");
    assert_eq!(me.body["discriminator"], "0");
    assert_eq!(me.body["avatar"], Value::Null);
    assert!(me.body.get("bot").is_none());
    assert!(me.body.get("email").is_none(), "no email without the scope");

    let guilds = bearer(sim, "GET", "/users/@me/guilds", &token).await;
    assert_eq!(guilds.status, 200, "{}", guilds.body);
    assert_eq!(
        guild_entry(&guilds.body, g),
        json!({
            "id": g.to_string(), "name": "Test Guild", "icon": null, "banner": null,
            "owner": true, "permissions": p::ALL.to_string(), "features": [],
        })
    );

    // A plain member: @everyone's permissions, not the owner.
    let t = login(sim, w.alice, &["identify", "guilds"]).await;
    let guilds = bearer(
        sim,
        "GET",
        "/users/@me/guilds",
        t["access_token"].as_str().unwrap(),
    )
    .await;
    let entry = guild_entry(&guilds.body, g);
    assert_eq!(entry["owner"], false);
    assert_eq!(entry["permissions"], p::EVERYONE_DEFAULT.to_string());

    // A member whose role grants Manage Server.
    let t = login(sim, bob, &["guilds", "identify"]).await;
    assert_eq!(t["scope"], "guilds identify");
    let guilds = bearer(
        sim,
        "GET",
        "/users/@me/guilds",
        t["access_token"].as_str().unwrap(),
    )
    .await;
    let entry = guild_entry(&guilds.body, g);
    assert_eq!(entry["owner"], false);
    let perms: u64 = entry["permissions"].as_str().unwrap().parse().unwrap();
    assert_eq!(perms & p::MANAGE_GUILD, p::MANAGE_GUILD);
    assert_eq!(perms & p::ADMINISTRATOR, 0);
    assert_eq!(perms, p::EVERYONE_DEFAULT | p::MANAGE_GUILD);

    // A user in no guild gets an empty list.
    let loner = sim.create_user("loner");
    let t = login(sim, loner, &["guilds"]).await;
    let guilds = bearer(
        sim,
        "GET",
        "/users/@me/guilds",
        t["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(guilds.body, json!([]));

    // Recorded like any REST call, with no secret, code or token in the clear.
    let recorded = sim.requests();
    let authorize = recorded
        .iter()
        .find(|r| r.path == "/oauth2/authorize")
        .expect("authorize recorded");
    assert_eq!((authorize.method.as_str(), authorize.status), ("GET", 302));
    let exchange_rec = recorded
        .iter()
        .find(|r| r.path == "/oauth2/token")
        .expect("token recorded");
    assert_eq!(exchange_rec.status, 200);
    let body = exchange_rec.body.as_ref().expect("form recorded");
    assert_eq!(body["grant_type"], "authorization_code");
    assert_eq!(body["client_secret"], "[redacted]");
    assert_eq!(body["code"], "[redacted]");
    assert_eq!(body["redirect_uri"], REDIRECT);
    let dump = format!("{recorded:?}");
    assert!(!dump.contains(&sim.client_secret()));
    assert!(!dump.contains(&token));
    assert!(!dump.contains(q["code"].as_str()));
    assert!(
        recorded
            .iter()
            .any(|r| r.path == "/users/@me/guilds" && r.status == 200)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn code_is_single_use() {
    let w = world().await;
    let code = w.sim.authorize(w.alice, &["identify"], REDIRECT);
    assert_eq!(exchange(&w.sim, &code, REDIRECT).await.status, 200);
    let again = exchange(&w.sim, &code, REDIRECT).await;
    assert_eq!(again.status, 400);
    assert_eq!(
        again.body,
        json!({"error": "invalid_grant", "error_description": "Invalid \"code\" in request."})
    );
    let unknown = exchange(&w.sim, "not-a-code", REDIRECT).await;
    assert_eq!(unknown.body["error"], "invalid_grant");
    w.sim.shutdown().await;
}

#[tokio::test]
async fn client_credentials_are_checked() {
    let w = world().await;
    let sim = &w.sim;
    let code = sim.authorize(w.alice, &["identify"], REDIRECT);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let r = post_form(sim, "/oauth2/token", Some("wrong-secret"), &form).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"error": "invalid_client"}));
    let r = post_form(sim, "/oauth2/token", None, &form).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"error": "invalid_client"}));
    // A bot token is no client authentication.
    let resp = http()
        .post(format!("{}/api/v10/oauth2/token", sim.base_url()))
        .header("authorization", format!("Bot {}", sim.token()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // HTTP Basic works, and the refused attempts did not use the code up.
    let resp = http()
        .post(format!("{}/api/v10/oauth2/token", sim.base_url()))
        .basic_auth(sim.client_id(), Some(sim.client_secret()))
        .form(&form)
        .send()
        .await
        .unwrap();
    let r = reply(resp).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scope"], "identify");
    // Unsupported grant types.
    let secret = sim.client_secret();
    let r = post_form(
        sim,
        "/oauth2/token",
        Some(&secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"error": "unsupported_grant_type"}));
    sim.shutdown().await;
}

#[tokio::test]
async fn redirect_uri_must_match() {
    let w = world().await;
    let code = w.sim.authorize(w.alice, &["identify"], REDIRECT);
    let r = exchange(&w.sim, &code, "http://127.0.0.1:9/elsewhere").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"error": "invalid_grant", "error_description": "Invalid \"code\" in request."})
    );
    let secret = w.sim.client_secret();
    let r = post_form(
        &w.sim,
        "/oauth2/token",
        Some(&secret),
        &[("grant_type", "authorization_code"), ("code", &code)],
    )
    .await;
    assert_eq!(
        r.body["error"], "invalid_grant",
        "a missing redirect_uri is a mismatch"
    );
    w.sim.shutdown().await;
}

#[tokio::test]
async fn expired_codes_and_tokens_are_refused() {
    let w = world().await;
    let sim = &w.sim;
    let code = sim.authorize(w.alice, &["identify"], REDIRECT);
    sim.expire_oauth_codes();
    let r = exchange(sim, &code, REDIRECT).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_grant");

    // A code lives 10 minutes.
    let code = sim.authorize(w.alice, &["identify"], REDIRECT);
    sim.advance_oauth_clock(Duration::from_secs(9 * 60));
    let t = exchange(sim, &code, REDIRECT).await;
    assert_eq!(t.status, 200);
    let code = sim.authorize(w.alice, &["identify"], REDIRECT);
    sim.advance_oauth_clock(Duration::from_secs(10 * 60 + 1));
    assert_eq!(exchange(sim, &code, REDIRECT).await.status, 400);

    // An access token lives 7 days.
    let token = t.body["access_token"].as_str().unwrap();
    assert_eq!(bearer(sim, "GET", "/users/@me", token).await.status, 200);
    sim.advance_oauth_clock(Duration::from_secs(604_800));
    let r = bearer(sim, "GET", "/users/@me", token).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"message": "401: Unauthorized", "code": 0}));
    sim.shutdown().await;
}

#[tokio::test]
async fn scopes_gate_the_bearer_endpoints() {
    let w = world().await;
    let sim = &w.sim;
    let t = login(sim, w.alice, &["identify"]).await;
    let token = t["access_token"].as_str().unwrap();
    assert_eq!(bearer(sim, "GET", "/users/@me", token).await.status, 200);
    let r = bearer(sim, "GET", "/users/@me/guilds", token).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body, json!({"message": "Missing Access", "code": 50001}));

    let t = login(sim, w.alice, &["guilds"]).await;
    let token = t["access_token"].as_str().unwrap();
    assert_eq!(
        bearer(sim, "GET", "/users/@me/guilds", token).await.status,
        200
    );
    let r = bearer(sim, "GET", "/users/@me", token).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"message": "401: Unauthorized", "code": 0}));

    // `email` adds the address.
    let t = login(sim, w.alice, &["identify", "email"]).await;
    let me = bearer(
        sim,
        "GET",
        "/users/@me",
        t["access_token"].as_str().unwrap(),
    )
    .await;
    assert!(me.body["email"].as_str().is_some_and(|e| e.contains('@')));
    assert_eq!(me.body["verified"], true);

    // Unknown tokens.
    let r = bearer(sim, "GET", "/users/@me", "nope").await;
    assert_eq!(r.status, 401);
    sim.shutdown().await;
}

#[tokio::test]
async fn bearer_is_refused_on_bot_routes_and_the_bot_token_still_works() {
    let w = world().await;
    let sim = &w.sim;
    let t = login(
        sim,
        w.owner,
        &["identify", "guilds", "email", "guilds.members.read"],
    )
    .await;
    let token = t["access_token"].as_str().unwrap();
    let g = w.g.guild_id;
    for (method, path) in [
        ("GET", format!("/guilds/{g}")),
        ("GET", format!("/guilds/{g}/members/{}", w.owner)),
        ("GET", format!("/users/{}", w.owner)),
        ("GET", "/oauth2/applications/@me".to_string()),
        ("GET", "/gateway/bot".to_string()),
        ("POST", "/users/@me/channels".to_string()),
        (
            "GET",
            format!("/channels/{}/messages", w.g.general_channel_id),
        ),
    ] {
        let r = bearer(sim, method, &path, token).await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
        assert_eq!(r.body, json!({"message": "401: Unauthorized", "code": 0}));
    }
    // The bot is still the bot on the shared routes.
    let api = Api::new(sim);
    let me = api.call("GET", "/users/@me", None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], sim.bot_user_id().to_string());
    assert_eq!(me.body["bot"], true);
    let guilds = api.call("GET", "/users/@me/guilds", None).await;
    assert_eq!(guilds.status, 200);
    let entry = guild_entry(&guilds.body, g);
    assert_eq!(entry["owner"], false);
    let perms: u64 = entry["permissions"].as_str().unwrap().parse().unwrap();
    assert_eq!(perms & p::MANAGE_ROLES, p::MANAGE_ROLES);
    assert_eq!(
        api.call("GET", &format!("/guilds/{g}"), None).await.status,
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn revoke_kills_the_access_and_refresh_tokens() {
    let w = world().await;
    let sim = &w.sim;
    let t = login(sim, w.alice, &["identify"]).await;
    let (access, refresh) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(bearer(sim, "GET", "/users/@me", access).await.status, 200);
    let r = post_form(
        sim,
        "/oauth2/token/revoke",
        Some("wrong"),
        &[("token", access)],
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"error": "invalid_client"}));
    assert_eq!(bearer(sim, "GET", "/users/@me", access).await.status, 200);

    let secret = sim.client_secret();
    let r = post_form(
        sim,
        "/oauth2/token/revoke",
        Some(&secret),
        &[("token", access)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({}));
    assert_eq!(bearer(sim, "GET", "/users/@me", access).await.status, 401);
    let r = post_form(
        sim,
        "/oauth2/token",
        Some(&secret),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_grant");
    // Revoking an unknown token is fine, as RFC 7009 says.
    let r = post_form(
        sim,
        "/oauth2/token/revoke",
        Some(&secret),
        &[("token", "gone")],
    )
    .await;
    assert_eq!(r.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token() {
    let w = world().await;
    let sim = &w.sim;
    let t = login(sim, w.alice, &["identify", "guilds"]).await;
    let old_refresh = t["refresh_token"].as_str().unwrap();
    let secret = sim.client_secret();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", old_refresh),
    ];
    let r = post_form(sim, "/oauth2/token", Some(&secret), &form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 604800);
    assert_eq!(r.body["scope"], "identify guilds");
    let new_access = r.body["access_token"].as_str().unwrap();
    let new_refresh = r.body["refresh_token"].as_str().unwrap();
    assert_ne!(new_access, t["access_token"].as_str().unwrap());
    assert_ne!(new_refresh, old_refresh);
    let me = bearer(sim, "GET", "/users/@me", new_access).await;
    assert_eq!(me.body["id"], w.alice.to_string());
    // The old refresh token is spent; the new one works.
    let r = post_form(sim, "/oauth2/token", Some(&secret), &form).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"error": "invalid_grant", "error_description": "Invalid \"refresh_token\" in request."})
    );
    let r = post_form(
        sim,
        "/oauth2/token",
        Some(&secret),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", new_refresh),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn authorize_page_lists_users_escaped() {
    let w = world().await;
    let sim = &w.sim;
    let evil = sim.create_user("<b>x</b>");
    let resp = http()
        .get(authorize_url(sim, "&state=s1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"), "{html}");
    assert!(!html.contains("<b>x</b>"), "{html}");
    assert!(html.contains(&format!("sim_user={evil}\"")), "{html}");
    assert!(html.contains(&format!("sim_user={}\"", w.alice)), "{html}");
    assert!(html.contains(">owner</a>"), "{html}");
    assert!(
        !html.contains(&format!("sim_user={}\"", sim.bot_user_id())),
        "no bot"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn authorize_rejects_bad_requests() {
    let w = world().await;
    let sim = &w.sim;
    let base = sim.base_url();
    let id = sim.client_id();
    let redirect = "http%3A%2F%2F127.0.0.1%3A9%2Fcb";
    let cases = [
        (
            format!("response_type=code&client_id=123&scope=identify&redirect_uri={redirect}"),
            "client_id",
        ),
        (
            format!("response_type=token&client_id={id}&scope=identify&redirect_uri={redirect}"),
            "response_type",
        ),
        (
            format!(
                "response_type=code&client_id={id}&scope=identify%20bot&redirect_uri={redirect}"
            ),
            "\"bot\"",
        ),
        (
            format!("response_type=code&client_id={id}&scope=identify"),
            "redirect_uri",
        ),
        (
            format!(
                "response_type=code&client_id={id}&scope=identify&redirect_uri={redirect}&sim_user=42"
            ),
            "sim_user",
        ),
        (
            format!(
                "response_type=code&client_id={id}&scope=identify&redirect_uri={redirect}&sim_user={}",
                sim.bot_user_id()
            ),
            "sim_user",
        ),
    ];
    for (query, names) in cases {
        let resp = http()
            .get(format!("{base}/oauth2/authorize?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{query}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(names), "{query}: {text}");
    }
    // Without a state, none is echoed; `+` separates scopes too.
    let resp = http()
        .get(format!(
            "{base}/oauth2/authorize?response_type=code&client_id={id}&scope=identify+guilds&redirect_uri={redirect}&sim_user={}",
            w.alice
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("http://127.0.0.1:9/cb?code="),
        "{location}"
    );
    assert!(!location.contains("state="));
    let code = location.split("code=").nth(1).unwrap();
    let r = exchange(sim, code, "http://127.0.0.1:9/cb").await;
    assert_eq!(r.body["scope"], "identify guilds");
    sim.shutdown().await;
}
