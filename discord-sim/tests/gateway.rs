//! The gateway over a real WebSocket, frame by frame.

mod common;

use common::{ALL_INTENTS, Frame, Gw, world, world_with};
use serde_json::json;
use std::time::Duration;
use townes_discord_sim::SimConfig;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn hello_identify_ready_guilds_heartbeat_and_resume_replay() {
    let w = world().await;
    let sim = &w.sim;
    let (mut gw, interval) = Gw::connect(sim).await;
    assert_eq!(interval, 41_250);
    gw.identify(&sim.token(), ALL_INTENTS, [0, 1]).await;

    let ready = gw.dispatch().await;
    assert_eq!(
        (ready["t"].clone(), ready["s"].clone()),
        (json!("READY"), json!(1))
    );
    let d = &ready["d"];
    assert_eq!(d["v"], 10);
    assert_eq!(d["user"]["id"], sim.bot_user_id().to_string());
    assert_eq!(d["user"]["bot"], true);
    assert_eq!(d["user"]["discriminator"], "0");
    assert_eq!(
        d["guilds"],
        json!([{"id": w.g.guild_id.to_string(), "unavailable": true}])
    );
    assert_eq!(d["shard"], json!([0, 1]));
    assert_eq!(d["application"]["id"], sim.application_id().to_string());
    let session_id = d["session_id"].as_str().unwrap().to_string();
    assert!(
        d["resume_gateway_url"]
            .as_str()
            .unwrap()
            .starts_with("ws://")
    );

    let gc = gw.dispatch().await;
    assert_eq!(
        (gc["t"].clone(), gc["s"].clone()),
        (json!("GUILD_CREATE"), json!(2))
    );
    assert_eq!(gc["d"]["id"], w.g.guild_id.to_string());
    assert_eq!(gc["d"]["members"].as_array().unwrap().len(), 3);
    assert_eq!(gc["d"]["unavailable"], false);
    assert!(sim.wait_for_ready(1, 5 * SECOND).await);

    gw.send(json!({"op": 1, "d": 2})).await;
    assert_eq!(gw.recv().await["op"], 11);

    let said = sim
        .say(w.g.guild_id, w.g.general_channel_id, w.alice, "hi")
        .await;
    let m = gw.dispatch().await;
    assert_eq!(
        (m["t"].clone(), m["s"].clone()),
        (json!("MESSAGE_CREATE"), json!(3))
    );
    assert_eq!(m["d"]["id"], said.to_string());
    assert_eq!(m["d"]["content"], "hi");
    assert_eq!(m["d"]["guild_id"], w.g.guild_id.to_string());
    assert!(m["d"]["member"]["roles"].is_array());

    // The socket dies; meanwhile two things happen.
    sim.drop_connections().await;
    assert!(matches!(gw.next_frame(SECOND).await, Frame::Closed(_)));
    assert!(sim.gateway_stats().ready_shards.is_empty());
    sim.say(w.g.guild_id, w.g.general_channel_id, w.alice, "missed 1")
        .await;
    sim.say(w.g.guild_id, w.g.general_channel_id, w.alice, "missed 2")
        .await;

    // RESUME (serenity sends it right away, before reading HELLO).
    let url = format!(
        "{}/gateway?v=10&encoding=json",
        sim.base_url().replace("http", "ws")
    );
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut gw = Gw { ws };
    gw.send(json!({"op": 6, "d": {"token": format!("Bot {}", sim.token()), "session_id": session_id, "seq": 3}}))
        .await;
    assert_eq!(gw.recv().await["op"], 10);
    let replay: Vec<_> = [
        gw.dispatch().await,
        gw.dispatch().await,
        gw.dispatch().await,
    ]
    .into_iter()
    .map(|f| {
        (
            f["s"].as_u64().unwrap(),
            f["t"].as_str().unwrap().to_string(),
            f["d"]["content"].clone(),
        )
    })
    .collect();
    assert_eq!(
        replay,
        vec![
            (4, "MESSAGE_CREATE".into(), json!("missed 1")),
            (5, "MESSAGE_CREATE".into(), json!("missed 2")),
            (6, "RESUMED".into(), json!(null)),
        ]
    );
    assert!(sim.wait_for_ready(1, 5 * SECOND).await);
    let stats = sim.gateway_stats();
    assert_eq!(
        (stats.identifies, stats.resumes, stats.heartbeats),
        (1, 1, 1)
    );
    assert_eq!(stats.ready_shards, vec![0]);

    // Live again, sequence continues.
    sim.member_join(w.g.guild_id, sim.create_user("dave")).await;
    let add = gw.dispatch().await;
    assert_eq!(
        (add["t"].clone(), add["s"].clone()),
        (json!("GUILD_MEMBER_ADD"), json!(7))
    );
    assert_eq!(add["d"]["guild_id"], w.g.guild_id.to_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_token_closes_4004_and_unknown_session_is_invalid() {
    let w = world().await;
    let (mut gw, _) = Gw::connect(&w.sim).await;
    gw.identify("not-the-token", ALL_INTENTS, [0, 1]).await;
    match gw.next_frame(5 * SECOND).await {
        Frame::Closed(Some((code, reason))) => {
            assert_eq!(code, 4004);
            assert_eq!(reason, "Authentication failed");
        }
        other => panic!("expected close 4004, got {other:?}"),
    }
    let (mut gw, _) = Gw::connect(&w.sim).await;
    gw.send(json!({"op": 6, "d": {"token": w.sim.token(), "session_id": "nope", "seq": 1}}))
        .await;
    let f = gw.recv().await;
    assert_eq!((f["op"].clone(), f["d"].clone()), (json!(9), json!(false)));
    // The same socket may IDENTIFY afterwards.
    gw.identify(&w.sim.token(), ALL_INTENTS, [0, 1]).await;
    assert_eq!(gw.dispatch().await["t"], "READY");
    w.sim.shutdown().await;
}

#[tokio::test]
async fn intents_filter_dispatches_and_message_content() {
    let w = world().await;
    let sim = &w.sim;
    let (mut gw, _) = Gw::connect(sim).await;
    // GUILDS | GUILD_MESSAGES only: no members, no content.
    gw.identify(&sim.token(), (1 << 0) | (1 << 9), [0, 1]).await;
    assert_eq!(gw.dispatch().await["t"], "READY");
    assert_eq!(gw.dispatch().await["t"], "GUILD_CREATE");
    let (g, c) = (w.g.guild_id, w.g.general_channel_id);
    sim.member_join(g, sim.create_user("erin")).await; // needs GUILD_MEMBERS: not sent
    sim.say(g, c, w.alice, "secret").await;
    let m = gw.dispatch().await;
    assert_eq!(m["t"], "MESSAGE_CREATE");
    assert_eq!(m["d"]["content"], "", "no MESSAGE_CONTENT intent");
    assert_eq!(m["s"], 3);
    let bot = sim.bot_user_id();
    sim.say(g, c, w.alice, &format!("<@{bot}> hello")).await;
    let m = gw.dispatch().await;
    assert_eq!(
        m["d"]["content"],
        format!("<@{bot}> hello"),
        "mentions keep content"
    );
    assert_eq!(m["d"]["mentions"][0]["id"], bot.to_string());
    // Interactions need no intent.
    let ix = sim.slash(g, c, w.alice, "rank", json!([])).await;
    let i = gw.dispatch().await;
    assert_eq!(i["t"], "INTERACTION_CREATE");
    assert_eq!(i["d"]["id"], ix.id.to_string());
    assert_eq!(i["d"]["token"], ix.token);
    sim.shutdown().await;
}

#[tokio::test]
async fn shards_get_only_their_guilds() {
    let config = SimConfig {
        shards: 2,
        ..SimConfig::default()
    };
    let w = world_with(config).await;
    let sim = &w.sim;
    // Consecutive guilds land on consecutive shards.
    let second = sim.create_guild("Second", w.owner);
    let shard_of = |g: u64| ((g >> 22) % 2) as u32;
    assert_ne!(shard_of(w.g.guild_id), shard_of(second.guild_id));

    let mut shards = Vec::new();
    for id in 0..2u32 {
        let (mut gw, _) = Gw::connect(sim).await;
        gw.identify(&sim.token(), ALL_INTENTS, [id, 2]).await;
        let ready = gw.dispatch().await;
        let guilds = ready["d"]["guilds"].as_array().unwrap().clone();
        assert_eq!(guilds.len(), 1, "shard {id}: {guilds:?}");
        let gid: u64 = guilds[0]["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(shard_of(gid), id);
        assert_eq!(gw.dispatch().await["d"]["id"], gid.to_string());
        shards.push((gw, gid));
    }
    assert!(sim.wait_for_ready(2, 5 * SECOND).await);
    assert_eq!(sim.gateway_stats().ready_shards, vec![0, 1]);
    // A message in the second guild goes to its shard only.
    let target = shard_of(second.guild_id) as usize;
    sim.say(second.guild_id, second.general_channel_id, w.owner, "x")
        .await;
    let (gw, _) = &mut shards[target];
    assert_eq!(gw.dispatch().await["t"], "MESSAGE_CREATE");
    let (other, _) = &mut shards[1 - target];
    assert!(matches!(
        other.next_frame(Duration::from_millis(200)).await,
        Frame::Timeout
    ));

    // A guild created while connected arrives as GUILD_CREATE on its shard.
    let third = sim.create_guild("Third", w.owner);
    let (gw, _) = &mut shards[shard_of(third.guild_id) as usize];
    let gc = gw.dispatch().await;
    assert_eq!(
        (gc["t"].clone(), gc["d"]["id"].clone()),
        (json!("GUILD_CREATE"), json!(third.guild_id.to_string()))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn reconnect_and_invalid_session_ops() {
    let w = world().await;
    let sim = &w.sim;
    let (mut gw, _) = Gw::connect(sim).await;
    gw.identify(&sim.token(), ALL_INTENTS, [0, 1]).await;
    let session = gw.dispatch().await["d"]["session_id"].clone();
    gw.dispatch().await;
    assert!(sim.wait_for_ready(1, 5 * SECOND).await);

    sim.reconnect_shards().await;
    assert_eq!(gw.recv().await["op"], 7);
    // The client reconnects and resumes.
    let (mut gw2, _) = Gw::connect(sim).await;
    gw2.send(json!({"op": 6, "d": {"token": sim.token(), "session_id": session, "seq": 2}}))
        .await;
    assert_eq!(gw2.dispatch().await["t"], "RESUMED");
    // The old socket is dropped once the session moved.
    assert!(matches!(gw.next_frame(SECOND).await, Frame::Closed(_)));

    sim.invalidate_sessions(false).await;
    let f = gw2.recv().await;
    assert_eq!((f["op"].clone(), f["d"].clone()), (json!(9), json!(false)));
    assert!(sim.gateway_stats().ready_shards.is_empty());
    // The session is gone: a RESUME is refused; a fresh IDENTIFY works.
    let (mut gw3, _) = Gw::connect(sim).await;
    gw3.send(json!({"op": 6, "d": {"token": sim.token(), "session_id": session, "seq": 2}}))
        .await;
    assert_eq!(gw3.recv().await["d"], false);
    gw3.identify(&sim.token(), ALL_INTENTS, [0, 1]).await;
    assert_eq!(gw3.dispatch().await["t"], "READY");
    assert!(sim.wait_for_ready(1, 5 * SECOND).await);
    assert_eq!(sim.gateway_stats().identifies, 2);
    sim.shutdown().await;
}
