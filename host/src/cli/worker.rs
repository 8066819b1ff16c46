//! `townes worker`: handles the dispatches `townes gateway` processes relay
//! through Redis, runs scheduled jobs and the hosted platform's periodic work
//! (billing, offboarding, usage, the journal's sweep, the daily community
//! health score), and carries out the Discord calls that causes. Run as many
//! as the load needs: each dispatch and each job goes to one of them.

use super::serve::{DRAIN, JournalRetention, serve_until, shutdown_signal};
use super::{Settings, live, open_store, runtime_config, shared_limits};
use townes::billing::{Billing, BillingConfig};
use townes::discord::ExecutorConfig;
use townes::event_stream::EventStream;
use townes::offboarding::{Offboarder, OffboardingConfig};
use townes::platform::{Connection, Events, connect_to};

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The bot token.
    #[arg(long, env = "DISCORD_TOKEN", hide_env_values = true)]
    discord_token: String,
    /// Send REST calls here instead of discord.com (a REST proxy, or a
    /// Discord-compatible server).
    // A proxy's URL may carry credentials.
    #[arg(long, env = "DISCORD_API_BASE", hide_env_values = true)]
    discord_api_base: Option<String>,
    /// This worker's name in the event stream's consumer group. Give each
    /// worker its own, kept across restarts (e.g. the pod's name): a worker
    /// restarted under its name first handles what it held when it stopped;
    /// otherwise another takes that over after 30 s.
    #[arg(long, env = "TOWNES_WORKER_NAME")]
    name: Option<String>,
    #[command(flatten)]
    billing: BillingConfig,
    #[command(flatten)]
    offboarding: OffboardingConfig,
    #[command(flatten)]
    license: townes::licensing::client::ClientConfig,
    #[command(flatten)]
    journal: JournalRetention,
    /// Serve Prometheus metrics (`GET /metrics`) here, e.g. `0.0.0.0:9100`;
    /// this process runs no dashboard API to serve them.
    #[arg(long, env = "TOWNES_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

pub async fn run(settings: &Settings, args: WorkerArgs) -> anyhow::Result<()> {
    let stream = EventStream::connect(super::redis_url(settings, "townes worker")?).await?;
    let store = open_store(settings).await?;
    let consumer = args
        .name
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let connection = Connection {
        live: live(settings).await?,
        limits: shared_limits(settings).await?,
        executor: ExecutorConfig::from_env()?,
        ..Connection::new(args.discord_token, args.discord_api_base)
    };
    let events = Events::Stream {
        stream,
        consumer: consumer.clone(),
    };
    let running = connect_to(store, runtime_config(settings)?, connection, events).await?;
    let runtime = &running.platform.runtime;
    let _license =
        townes::licensing::client::start(&args.license, runtime.clone(), &settings.data_dir).await;
    let billing = Billing::new(
        runtime.store().clone(),
        runtime.plans().clone(),
        args.billing,
    );
    let offboarding = Offboarder::new(
        runtime.store().clone(),
        args.offboarding,
        None,
        settings.public_url.clone(),
    );
    if let Some(addr) = args.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("metrics: http://{}/metrics", listener.local_addr()?);
        townes::metrics::serve_alone(listener, Some(running.platform.clone()));
    }
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    println!(
        "worker {consumer}: handling the event stream and scheduled jobs; press Ctrl-C to stop"
    );
    let served = serve_until(
        &running,
        Some((&billing, &offboarding)),
        args.journal,
        shutdown,
    )
    .await;
    running.shutdown(DRAIN).await?;
    served?;
    println!("stopped");
    Ok(())
}
