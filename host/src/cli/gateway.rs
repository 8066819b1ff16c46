//! `townes gateway`: shards that relay Discord's dispatches into the event
//! stream on Redis, for `townes worker` processes to handle. It needs no
//! database: only the bot token and Redis (docs/OPERATIONS.md, "Running
//! several processes").

use super::Settings;
use super::serve::shutdown_signal;
use townes::event_stream::EventStream;
use townes::gateway::relay::{RedisIdentifyQueue, RelayConfig, relay_shard};
use townes::gateway::{RELAY_INTENTS, Shards};
use townes::platform::startup_call;

#[derive(clap::Args)]
pub struct GatewayArgs {
    /// The bot token.
    #[arg(long, env = "DISCORD_TOKEN", hide_env_values = true)]
    discord_token: String,
    /// Send gateway discovery here instead of discord.com (a REST proxy, or a
    /// Discord-compatible server); its gateway URL is then used too.
    // A proxy's URL may carry credentials.
    #[arg(long, env = "DISCORD_API_BASE", hide_env_values = true)]
    discord_api_base: Option<String>,
    /// Which shards this process runs: `auto` (all of Discord's recommended
    /// count) or `0-3/16` to split shards across processes.
    #[arg(long, env = "TOWNES_SHARDS", default_value = "auto")]
    shards: Shards,
    /// The gateway intents, as Discord's bit field. The default asks for what
    /// every feature can use, the privileged Server Members and Message
    /// Content intents included: switch them on in the developer portal (Bot →
    /// Privileged Gateway Intents), or pass fewer.
    #[arg(long, env = "TOWNES_GATEWAY_INTENTS", default_value_t = RELAY_INTENTS.bits())]
    intents: u64,
    /// Serve Prometheus metrics (`GET /metrics`) here, e.g. `0.0.0.0:9100`;
    /// this process runs no dashboard API to serve them.
    #[arg(long, env = "TOWNES_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

pub async fn run(settings: &Settings, args: GatewayArgs) -> anyhow::Result<()> {
    let stream = EventStream::connect(super::redis_url(settings, "townes gateway")?).await?;
    let http = townes::gateway::http(&args.discord_token, args.discord_api_base.as_deref());
    let bot = startup_call("GET /gateway/bot", || http.get_bot_gateway()).await?;
    let (first, last, total) = match args.shards {
        Shards::Auto => (0, bot.shards.saturating_sub(1), bot.shards.max(1)),
        Shards::Range { first, last, total } => (first, last, total),
    };
    let config = RelayConfig {
        token: args.discord_token,
        gateway_url: args.discord_api_base.is_some().then_some(bot.url),
        intents: args.intents,
        total_shards: total,
    };
    let queue = RedisIdentifyQueue::new(
        stream.connection(),
        u32::try_from(bot.session_start_limit.max_concurrency).unwrap_or(u32::MAX),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut shards = tokio::task::JoinSet::new();
    for shard in first..=last {
        shards.spawn(relay_shard(
            shard,
            config.clone(),
            stream.clone(),
            queue.clone(),
            stopped.clone(),
        ));
    }
    if let Some(addr) = args.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("metrics: http://{}/metrics", listener.local_addr()?);
        townes::metrics::serve_alone(listener, None);
    }
    let shutdown = shutdown_signal()?;
    println!(
        "gateway: relaying shards {first}-{last} of {total} into the event stream; press Ctrl-C to stop"
    );
    let ended = tokio::select! {
        _ = shutdown => None,
        ended = shards.join_next() => ended,
    };
    let _ = stop.send(true);
    while shards.join_next().await.is_some() {}
    match ended {
        Some(Ok(Err(error))) => Err(error.context("a shard stopped")),
        Some(Err(error)) => Err(anyhow::anyhow!("a shard's task failed: {error}")),
        _ => {
            println!("stopped");
            Ok(())
        }
    }
}
