//! Every dispatch the simulator can produce must deserialize into serenity's typed
//! `Event` — a missing required field would make serenity fall back to
//! `Event::Unknown` and silently drop it before any `EventHandler` runs.

mod common;

use common::{ALL_INTENTS, Api, Frame, Gw, world};
use serde_json::{Value, json};
use serenity::model::event::{Event, GatewayEvent};
use std::collections::BTreeSet;
use std::time::Duration;

/// For a diagnostic: deserializes `d` as the concrete event type to get serde's error.
fn why_unknown(t: &str, d: &Value) -> String {
    use serenity::model::event::*;
    fn err<T: serde::de::DeserializeOwned>(d: &Value) -> String {
        match serde_json::from_value::<T>(d.clone()) {
            Ok(_) => "deserializes on its own".into(),
            Err(e) => e.to_string(),
        }
    }
    match t {
        "READY" => err::<ReadyEvent>(d),
        "RESUMED" => err::<ResumedEvent>(d),
        "GUILD_CREATE" => err::<GuildCreateEvent>(d),
        "GUILD_DELETE" => err::<GuildDeleteEvent>(d),
        "GUILD_ROLE_CREATE" => err::<GuildRoleCreateEvent>(d),
        "GUILD_ROLE_UPDATE" => err::<GuildRoleUpdateEvent>(d),
        "CHANNEL_CREATE" => err::<ChannelCreateEvent>(d),
        "CHANNEL_UPDATE" => err::<ChannelUpdateEvent>(d),
        "CHANNEL_DELETE" => err::<ChannelDeleteEvent>(d),
        "GUILD_MEMBER_ADD" => err::<GuildMemberAddEvent>(d),
        "GUILD_MEMBER_UPDATE" => err::<GuildMemberUpdateEvent>(d),
        "GUILD_MEMBER_REMOVE" => err::<GuildMemberRemoveEvent>(d),
        "GUILD_MEMBERS_CHUNK" => err::<GuildMembersChunkEvent>(d),
        "GUILD_BAN_ADD" => err::<GuildBanAddEvent>(d),
        "GUILD_BAN_REMOVE" => err::<GuildBanRemoveEvent>(d),
        "MESSAGE_CREATE" => err::<MessageCreateEvent>(d),
        "MESSAGE_UPDATE" => err::<MessageUpdateEvent>(d),
        "MESSAGE_DELETE" => err::<MessageDeleteEvent>(d),
        "MESSAGE_DELETE_BULK" => err::<MessageDeleteBulkEvent>(d),
        "MESSAGE_REACTION_ADD" => err::<ReactionAddEvent>(d),
        "MESSAGE_REACTION_REMOVE" => err::<ReactionRemoveEvent>(d),
        "INTERACTION_CREATE" => err::<InteractionCreateEvent>(d),
        _ => "no concrete type known to this test".into(),
    }
}

/// Reads frames until the heartbeat ACK that follows everything queued so far.
async fn drain(gw: &mut Gw, into: &mut Vec<Value>) {
    gw.send(json!({"op": 1, "d": null})).await;
    loop {
        match gw.next_frame(Duration::from_secs(5)).await {
            Frame::Json(v) if v["op"] == 11 => {
                into.push(v);
                return;
            }
            Frame::Json(v) => into.push(v),
            other => panic!("gateway ended early: {other:?}"),
        }
    }
}

#[tokio::test]
async fn every_dispatch_deserializes_into_a_known_serenity_event() {
    let w = world().await;
    let sim = &w.sim;
    let api = Api::new(sim);
    let (g, general, alice) = (w.g.guild_id, w.g.general_channel_id, w.alice);
    let bot = sim.bot_user_id();
    let mut frames = Vec::new();

    let (mut gw, _) = Gw::connect(sim).await;
    gw.identify(&sim.token(), ALL_INTENTS, [0, 1]).await;
    assert!(sim.wait_for_ready(1, Duration::from_secs(5)).await);

    // World building.
    let second = sim.create_guild("Second", w.owner);
    let role = sim.create_role(g, "Regular", 0, 0);
    sim.set_role_permissions(g, role, 1 << 10);
    let channel = sim.create_channel(g, "chat");
    sim.set_overwrite(g, channel, g, true, 0, 1 << 11);
    let bob = sim.create_user("bob");
    sim.member_join(g, bob).await;
    sim.give_role(g, bob, role);

    // Users act.
    let hello = sim
        .say(g, general, alice, &format!("hi <@{bot}> and <@{bob}>"))
        .await;
    sim.react(g, general, hello, alice, "👍").await;
    sim.unreact(g, general, hello, alice, "👍").await;

    // The bot acts over REST.
    let messages_path = format!("/channels/{general}/messages");
    let post = |body: Value| api.call("POST", &messages_path, Some(body));
    let reply = post(json!({
        "content": "a reply", "message_reference": {"message_id": hello.to_string()},
        "embeds": [{"title": "t", "description": "d", "color": 5}],
    }))
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let panel = post(json!({
        "content": "panel",
        "components": [
            {"type": 1, "components": [{"type": 2, "style": 1, "label": "Go", "custom_id": "go"}]},
            {"type": 1, "components": [{"type": 3, "custom_id": "pick", "options": [{"label": "A", "value": "a"}]}]},
        ],
    }))
    .await;
    assert_eq!(panel.status, 200, "{}", panel.body);
    let panel_id: u64 = panel.body["id"].as_str().unwrap().parse().unwrap();
    let edited = api
        .call(
            "PATCH",
            &format!("/channels/{general}/messages/{panel_id}"),
            Some(json!({"content": "panel v2"})),
        )
        .await;
    assert_eq!(edited.status, 200);
    let reacted = api
        .call(
            "PUT",
            &format!("/channels/{general}/messages/{hello}/reactions/%E2%9C%85/@me"),
            None,
        )
        .await;
    assert_eq!(reacted.status, 204);
    let unreacted = api
        .call(
            "DELETE",
            &format!("/channels/{general}/messages/{hello}/reactions/%E2%9C%85/@me"),
            None,
        )
        .await;
    assert_eq!(unreacted.status, 204);
    let a = sim.say(g, general, alice, "a").await;
    let b = sim.say(g, general, alice, "b").await;
    let c = sim.say(g, general, alice, "c").await;
    api.call("DELETE", &format!("/channels/{general}/messages/{c}"), None)
        .await;
    api.call(
        "POST",
        &format!("/channels/{general}/messages/bulk-delete"),
        Some(json!({"messages": [a.to_string(), b.to_string()]})),
    )
    .await;
    let created = api
        .call(
            "POST",
            &format!("/guilds/{g}/channels"),
            Some(json!({"name": "tickets", "type": 0})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let ticket = created.body["id"].as_str().unwrap().to_string();
    api.call(
        "PUT",
        &format!("/channels/{ticket}/permissions/{bob}"),
        Some(json!({"type": 1, "allow": "1024", "deny": "0"})),
    )
    .await;
    api.call("DELETE", &format!("/channels/{ticket}"), None)
        .await;
    api.call(
        "PUT",
        &format!("/guilds/{g}/members/{alice}/roles/{role}"),
        None,
    )
    .await;
    api.call(
        "PATCH",
        &format!("/guilds/{g}/members/{alice}"),
        Some(json!({"communication_disabled_until": "2000-01-01T00:00:00Z"})),
    )
    .await;
    let dm = api
        .call(
            "POST",
            "/users/@me/channels",
            Some(json!({"recipient_id": alice.to_string()})),
        )
        .await;
    let dm_id = dm.body["id"].as_str().unwrap().to_string();
    api.call(
        "POST",
        &format!("/channels/{dm_id}/messages"),
        Some(json!({"content": "dm"})),
    )
    .await;

    // Interactions and their responses.
    async fn callback(api: &Api, i: &townes_discord_sim::Interaction, body: Value) -> u16 {
        let path = format!("/interactions/{}/{}/callback", i.id, i.token);
        api.call("POST", &path, Some(body)).await.status
    }
    let ix = sim
        .slash(
            g,
            general,
            alice,
            "rank",
            json!([{"name": "user", "type": 6, "value": bob.to_string()}]),
        )
        .await;
    assert_eq!(
        callback(&api, &ix, json!({"type": 4, "data": {"content": "rank!"}})).await,
        204
    );
    let ix = sim
        .slash(
            g,
            general,
            alice,
            "config",
            json!([{"name": "set", "type": 1, "options": [
            {"name": "role", "type": 8, "value": role.to_string()},
            {"name": "where", "type": 7, "value": general.to_string()}]}]),
        )
        .await;
    assert_eq!(callback(&api, &ix, json!({"type": 5})).await, 204);
    let app = sim.application_id();
    api.call(
        "PATCH",
        &format!("/webhooks/{app}/{}/messages/@original", ix.token),
        Some(json!({"content": "done"})),
    )
    .await;
    api.call(
        "POST",
        &format!("/webhooks/{app}/{}", ix.token),
        Some(json!({"content": "followup"})),
    )
    .await;
    let ix = sim.click(g, general, alice, panel_id, "go").await;
    assert_eq!(
        callback(
            &api,
            &ix,
            json!({"type": 7, "data": {"content": "clicked"}})
        )
        .await,
        204
    );
    let ix = sim
        .choose(g, general, alice, panel_id, "pick", &["a"])
        .await;
    assert_eq!(
        callback(
            &api,
            &ix,
            json!({"type": 9, "data": {"custom_id": "m", "title": "T", "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "f", "label": "F", "style": 1}]}]}})
        )
        .await,
        204
    );
    let ix = sim
        .submit_modal(g, general, alice, "m", &[("f", "value")])
        .await;
    // The answer's MESSAGE_CREATE carries modal-submit interaction metadata.
    assert_eq!(
        callback(&api, &ix, json!({"type": 4, "data": {"content": "thanks"}})).await,
        204
    );
    sim.click(g, general, alice, 4242, "unknown-message").await;

    // Members leave, are kicked, banned and unbanned.
    gw.send(
        json!({"op": 8, "d": {"guild_id": g.to_string(), "query": "", "limit": 0, "nonce": "n"}}),
    )
    .await;
    sim.member_leave(g, bob).await;
    let carol = sim.create_user("carol");
    sim.member_join(g, carol).await;
    api.call("DELETE", &format!("/guilds/{g}/members/{carol}"), None)
        .await;
    sim.member_join(g, carol).await;
    api.call(
        "PUT",
        &format!("/guilds/{g}/bans/{carol}"),
        Some(json!({"delete_message_seconds": 60})),
    )
    .await;
    api.call("DELETE", &format!("/guilds/{g}/bans/{carol}"), None)
        .await;
    sim.remove_bot(second.guild_id).await;
    drain(&mut gw, &mut frames).await;

    // RESUMED, and the non-dispatch opcodes.
    let session = frames[0]["d"]["session_id"].clone();
    let last_seq = frames.iter().filter_map(|f| f["s"].as_u64()).max().unwrap();
    sim.drop_connections().await;
    let (mut gw, _) = Gw::connect(sim).await;
    gw.send(json!({"op": 6, "d": {"token": sim.token(), "session_id": session, "seq": last_seq}}))
        .await;
    drain(&mut gw, &mut frames).await;
    sim.reconnect_shards().await;
    sim.invalidate_sessions(true).await;
    drain(&mut gw, &mut frames).await;

    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for f in &frames {
        let parsed: GatewayEvent = match serde_json::from_value(f.clone()) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("op {}: {e}: {f}", f["op"]));
                continue;
            }
        };
        if let GatewayEvent::Dispatch(_, event) = parsed {
            let t = f["t"].as_str().unwrap_or_default().to_string();
            if let Event::Unknown(_) = event {
                failures.push(format!(
                    "{t} is Event::Unknown: {}\n  {}",
                    why_unknown(&t, &f["d"]),
                    f["d"]
                ));
            }
            seen.insert(t);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let expected = [
        "READY",
        "RESUMED",
        "GUILD_CREATE",
        "GUILD_DELETE",
        "GUILD_ROLE_CREATE",
        "GUILD_ROLE_UPDATE",
        "CHANNEL_CREATE",
        "CHANNEL_UPDATE",
        "CHANNEL_DELETE",
        "GUILD_MEMBER_ADD",
        "GUILD_MEMBER_UPDATE",
        "GUILD_MEMBER_REMOVE",
        "GUILD_MEMBERS_CHUNK",
        "GUILD_BAN_ADD",
        "GUILD_BAN_REMOVE",
        "MESSAGE_CREATE",
        "MESSAGE_UPDATE",
        "MESSAGE_DELETE",
        "MESSAGE_DELETE_BULK",
        "MESSAGE_REACTION_ADD",
        "MESSAGE_REACTION_REMOVE",
        "INTERACTION_CREATE",
    ];
    let missing: Vec<_> = expected.iter().filter(|t| !seen.contains(**t)).collect();
    assert!(
        missing.is_empty(),
        "never produced: {missing:?}; seen {seen:?}"
    );
    let ops: BTreeSet<u64> = frames.iter().filter_map(|f| f["op"].as_u64()).collect();
    assert!(ops.is_superset(&BTreeSet::from([0, 7, 9, 11])), "{ops:?}");
    let interactions: BTreeSet<u64> = frames
        .iter()
        .filter(|f| f["t"] == "INTERACTION_CREATE")
        .map(|f| f["d"]["type"].as_u64().unwrap())
        .collect();
    assert_eq!(interactions, BTreeSet::from([2, 3, 5]));
    sim.shutdown().await;
}
