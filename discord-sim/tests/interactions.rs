//! Interactions: the callback window, one answer only, deferrals, edits, followups,
//! component updates, and HTTP delivery with Ed25519 signatures.

mod common;

use common::{Api, world, world_with};
use serde_json::{Value, json};
use std::time::Duration;
use townes_discord_sim::{Forgery, SimConfig};

const WAIT: Duration = Duration::from_secs(5);

fn callback_path(i: &townes_discord_sim::Interaction) -> String {
    format!("/interactions/{}/{}/callback", i.id, i.token)
}

#[tokio::test]
async fn callback_within_the_window_and_only_once() {
    let w = world_with(SimConfig {
        interaction_window: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&w.sim);
    let (g, c) = (w.g.guild_id, w.g.general_channel_id);

    let ix = w.sim.slash(g, c, w.alice, "hello", json!([])).await;
    let r = api
        .call(
            "POST",
            &callback_path(&ix),
            Some(json!({"type": 4, "data": {"content": "Hi!"}})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = api
        .call(
            "POST",
            &callback_path(&ix),
            Some(json!({"type": 4, "data": {"content": "again"}})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["code"], 40060);
    let resp = w.sim.interaction_response(ix.id, WAIT).await.unwrap();
    assert_eq!(resp.kind, 4);
    assert_eq!(resp.data["content"], "Hi!");
    let msg = w.sim.messages(c).pop().unwrap();
    assert_eq!(
        (msg.content.as_str(), msg.author_id),
        ("Hi!", w.sim.bot_user_id())
    );

    // A wrong token is an unknown interaction.
    let r = api
        .call(
            "POST",
            &format!("/interactions/{}/nope/callback", ix.id),
            Some(json!({"type": 5})),
        )
        .await;
    assert_eq!((r.status, r.body["code"].clone()), (404, json!(10062)));

    // Too late.
    let late = w.sim.slash(g, c, w.alice, "hello", json!([])).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = api
        .call("POST", &callback_path(&late), Some(json!({"type": 5})))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({"message": "Unknown interaction", "code": 10062})
    );
    assert!(
        w.sim
            .interaction_response(late.id, Duration::from_millis(50))
            .await
            .is_none()
    );

    // Invalid bodies: an empty message, update on a command.
    let ix = w.sim.slash(g, c, w.alice, "hello", json!([])).await;
    let r = api
        .call(
            "POST",
            &callback_path(&ix),
            Some(json!({"type": 4, "data": {}})),
        )
        .await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!(50035)));
    assert!(r.body["errors"]["data"].is_object(), "{}", r.body);
    let r = api
        .call(
            "POST",
            &callback_path(&ix),
            Some(json!({"type": 7, "data": {"content": "x"}})),
        )
        .await;
    assert_eq!(r.status, 400);
    w.sim.shutdown().await;
}

#[tokio::test]
async fn deferred_then_edit_and_followups() {
    let w = world().await;
    let api = Api::new(&w.sim);
    let (g, c, app) = (w.g.guild_id, w.g.general_channel_id, w.sim.application_id());
    let bob = w.sim.create_user("bob");
    w.sim.member_join(g, bob).await;
    assert!(
        w.sim.guild_commands(g).is_empty(),
        "stale commands are accepted"
    );

    let ix = w
        .sim
        .slash(
            g,
            c,
            w.alice,
            "rank",
            json!([{"name": "user", "type": 6, "value": bob.to_string()}]),
        )
        .await;
    // Nothing answered yet: no edit either.
    assert!(
        w.sim
            .wait_for_edit(ix.id, Duration::from_millis(50))
            .await
            .is_none()
    );
    let webhook = format!("/webhooks/{app}/{}", ix.token);
    // Before the callback, the webhook does not exist.
    let r = api
        .call("POST", &webhook, Some(json!({"content": "early"})))
        .await;
    assert_eq!(r.status, 404);

    assert_eq!(
        api.call("POST", &callback_path(&ix), Some(json!({"type": 5})))
            .await
            .status,
        204
    );
    let r = api
        .call(
            "PATCH",
            &format!("{webhook}/messages/@original"),
            Some(json!({"content": "rank 3"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["content"], "rank 3");
    assert_eq!(r.body["webhook_id"], app.to_string());
    assert_eq!(
        w.sim.wait_for_edit(ix.id, WAIT).await.unwrap(),
        json!({"content": "rank 3"})
    );
    let r = api
        .call(
            "PATCH",
            &format!("{webhook}/messages/@original"),
            Some(json!({"content": "rank 2"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let original = r.body["id"].clone();
    let r = api
        .call(
            "POST",
            &webhook,
            Some(json!({"content": "and more", "flags": 64})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["flags"], 64);
    let resp = w.sim.interaction_response(ix.id, WAIT).await.unwrap();
    assert_eq!(resp.kind, 5);
    assert_eq!(resp.edits.len(), 2);
    assert_eq!(
        resp.followups,
        vec![json!({"content": "and more", "flags": 64})]
    );
    let contents: Vec<_> = w.sim.messages(c).into_iter().map(|m| m.content).collect();
    assert_eq!(contents, vec!["rank 2", "and more"]);
    let r = api
        .call("GET", &format!("{webhook}/messages/@original"), None)
        .await;
    assert_eq!(r.body["id"], original);
    let r = api
        .call("DELETE", &format!("{webhook}/messages/@original"), None)
        .await;
    assert_eq!(r.status, 204);
    // Wrong application id: unknown webhook.
    let r = api
        .call(
            "POST",
            &format!("/webhooks/1/{}", ix.token),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!((r.status, r.body["code"].clone()), (404, json!(10015)));
    w.sim.shutdown().await;
}

#[tokio::test]
async fn component_update_edits_the_message_and_modals_open() {
    let w = world().await;
    let api = Api::new(&w.sim);
    let (g, c) = (w.g.guild_id, w.g.general_channel_id);
    let r = api
        .call(
            "POST",
            &format!("/channels/{c}/messages"),
            Some(
                json!({"content": "Vote?", "components": [{"type": 1, "components": [
                {"type": 2, "style": 1, "label": "Yes", "custom_id": "vote:yes"}]}]}),
            ),
        )
        .await;
    let panel: u64 = r.body["id"].as_str().unwrap().parse().unwrap();

    let ix = w.sim.click(g, c, w.alice, panel, "vote:yes").await;
    let r = api
        .call(
            "POST",
            &callback_path(&ix),
            Some(json!({"type": 7, "data": {"content": "1 vote", "components": []}})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let m = w
        .sim
        .wait_for_message(c, WAIT, |m| m.id == panel && m.content == "1 vote")
        .await
        .expect("updated panel");
    assert!(m.components.is_empty());

    let ix = w
        .sim
        .choose(g, c, w.alice, panel, "vote:pick", &["a", "b"])
        .await;
    let modal = json!({"type": 9, "data": {"custom_id": "why", "title": "Why?", "components": [
        {"type": 1, "components": [{"type": 4, "custom_id": "reason", "label": "Reason", "style": 2}]}]}});
    assert_eq!(
        api.call("POST", &callback_path(&ix), Some(modal.clone()))
            .await
            .status,
        204
    );
    assert_eq!(
        w.sim.interaction_response(ix.id, WAIT).await.unwrap().kind,
        9
    );

    let ix = w
        .sim
        .submit_modal(g, c, w.alice, "why", &[("reason", "because")])
        .await;
    // A modal cannot answer a modal.
    assert_eq!(
        api.call("POST", &callback_path(&ix), Some(modal))
            .await
            .status,
        400
    );
    let r = api
        .call(
            "POST",
            &callback_path(&ix),
            Some(json!({"type": 4, "data": {"content": "thanks", "flags": 64}})),
        )
        .await;
    assert_eq!(r.status, 204);
    w.sim.shutdown().await;
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A minimal interactions endpoint, verifying signatures the way Discord requires.
async fn endpoint(public_key: std::sync::Arc<std::sync::OnceLock<String>>) -> String {
    use axum::http::{HeaderMap, StatusCode};
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let app = axum::Router::new().route(
        "/interactions",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let key = public_key.clone();
            async move {
                let refuse = (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "bad signature"})));
                let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
                let (Some(sig), Some(ts)) = (header("x-signature-ed25519"), header("x-signature-timestamp")) else {
                    return refuse;
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                if ts.parse::<u64>().map_or(true, |t| now.abs_diff(t) > 300) {
                    return refuse;
                }
                let key_bytes: [u8; 32] = unhex(key.get().unwrap()).unwrap().try_into().unwrap();
                let key = VerifyingKey::from_bytes(&key_bytes).unwrap();
                let Some(sig) = unhex(&sig).and_then(|s| <[u8; 64]>::try_from(s).ok()) else {
                    return refuse;
                };
                let mut signed = ts.into_bytes();
                signed.extend_from_slice(&body);
                if key.verify(&signed, &Signature::from_bytes(&sig)).is_err() {
                    return refuse;
                }
                let v: Value = serde_json::from_slice(&body).unwrap();
                match v["type"].as_u64() {
                    Some(1) => (StatusCode::OK, axum::Json(json!({"type": 1}))),
                    _ => (
                        StatusCode::OK,
                        axum::Json(json!({"type": 4, "data": {"content": format!("pong {}", v["data"]["name"].as_str().unwrap_or("?"))}})),
                    ),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/interactions", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn http_interactions_are_signed_and_forgeries_refused() {
    let w = world().await;
    let key = std::sync::Arc::new(std::sync::OnceLock::new());
    let url = endpoint(key.clone()).await;
    let public = w.sim.deliver_interactions_to(&url);
    assert_eq!(public.len(), 64);
    key.set(public.clone()).unwrap();
    // The application reports the same key.
    let app = Api::new(&w.sim)
        .call("GET", "/oauth2/applications/@me", None)
        .await;
    assert_eq!(app.body["verify_key"], public);
    assert_eq!(app.body["interactions_endpoint_url"], url);

    assert_eq!(
        w.sim.ping_interactions_endpoint().await,
        (200, json!({"type": 1}))
    );
    assert_eq!(
        w.sim
            .post_interaction_unsigned_or_forged(Forgery::BadSignature)
            .await,
        401
    );
    assert_eq!(
        w.sim
            .post_interaction_unsigned_or_forged(Forgery::StaleTimestamp)
            .await,
        401
    );
    assert_eq!(
        w.sim
            .post_interaction_unsigned_or_forged(Forgery::MissingHeaders)
            .await,
        401
    );

    let ix = w
        .sim
        .slash(
            w.g.guild_id,
            w.g.general_channel_id,
            w.alice,
            "ping",
            json!([]),
        )
        .await;
    let resp = w
        .sim
        .interaction_response(ix.id, WAIT)
        .await
        .expect("answered over HTTP");
    assert_eq!(resp.kind, 4);
    assert_eq!(resp.data["content"], "pong ping");
    assert!(
        w.sim
            .wait_for_message(w.g.general_channel_id, WAIT, |m| m.content == "pong ping")
            .await
            .is_some()
    );
    w.sim.shutdown().await;
}
