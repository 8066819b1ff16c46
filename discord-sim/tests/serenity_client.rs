//! A real serenity client against the simulator, end to end: it connects through
//! `GET /gateway`, identifies, gets its guild, answers messages and slash commands
//! through its event handler, and survives RECONNECT and dropped sockets by resuming.

mod common;

use common::world;
use serde_json::json;
use serenity::all::{
    ClientBuilder, Context, CreateInteractionResponse, CreateInteractionResponseMessage,
    EventHandler, GatewayIntents, HttpBuilder, Interaction, Message,
};
use serenity::async_trait;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

struct Handler;

#[async_trait]
impl EventHandler for Handler {
    async fn message(&self, ctx: Context, msg: Message) {
        if !msg.author.bot && msg.content == "!ping" {
            msg.channel_id.say(&ctx.http, "pong").await.expect("reply");
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        if let Interaction::Command(cmd) = interaction {
            let reply = CreateInteractionResponseMessage::new()
                .content(format!("hello from /{}", cmd.data.name));
            cmd.create_response(&ctx.http, CreateInteractionResponse::Message(reply))
                .await
                .expect("interaction response");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_client_runs_against_the_simulator() {
    let w = world().await;
    let sim = w.sim.clone();
    let http = HttpBuilder::new(sim.token())
        .proxy(sim.base_url())
        .ratelimiter_disabled(true)
        .build();
    let intents = GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MEMBERS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT;
    // As DESIGN.md says: REST only goes to the proxy with the ratelimiter disabled,
    // and the client must be built from that Http.
    let mut client = ClientBuilder::new_with_http(http, intents)
        .event_handler(Handler)
        .await
        .expect("client");
    let shards = client.shard_manager.clone();
    tokio::spawn(async move { client.start().await });

    assert!(
        sim.wait_for_ready(1, WAIT).await,
        "serenity never got READY"
    );
    let (g, c) = (w.g.guild_id, w.g.general_channel_id);

    sim.say(g, c, w.alice, "!ping").await;
    let pong = sim.wait_for_message(c, WAIT, |m| m.content == "pong").await;
    assert_eq!(pong.expect("pong").author_id, sim.bot_user_id());

    let ix = sim.slash(g, c, w.alice, "hello", json!([])).await;
    let resp = sim
        .interaction_response(ix.id, WAIT)
        .await
        .expect("answered");
    assert_eq!(resp.kind, 4);
    assert_eq!(resp.data["content"], "hello from /hello");

    // RECONNECT: serenity resumes on a new socket and keeps working.
    sim.reconnect_shards().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while sim.gateway_stats().resumes < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sim.gateway_stats().resumes, 1);
    assert!(sim.wait_for_ready(1, WAIT).await);
    sim.say(g, c, w.alice, "!ping").await;
    let pongs = sim
        .wait_for_message(c, WAIT, |m| m.content == "pong" && m.id != pong_id(&sim, c))
        .await;
    assert!(pongs.is_some(), "no pong after resume");

    // A dropped socket: resumed too.
    sim.drop_connections().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while sim.gateway_stats().resumes < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = sim.gateway_stats();
    assert_eq!((stats.identifies, stats.resumes), (1, 2), "{stats:?}");

    shards.shutdown_all().await;
    sim.shutdown().await;
}

/// The id of the first "pong".
fn pong_id(sim: &townes_discord_sim::Simulator, channel: u64) -> u64 {
    sim.messages(channel)
        .into_iter()
        .find(|m| m.content == "pong")
        .map_or(0, |m| m.id)
}
