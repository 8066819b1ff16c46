//! `townes serve`: runs the platform until interrupted.
//!
//! With `DISCORD_TOKEN` it connects to Discord (or to `DISCORD_API_BASE`, a REST
//! proxy or any Discord-compatible server). Without one it starts the offline
//! playground: an in-process Discord simulator with the given features enabled
//! in a guild, plays a short script there, and keeps serving it. Either way it
//! then processes scheduled jobs, flushes usage and activity counters and
//! scores guilds' community health once a day until Ctrl-C (or
//! SIGTERM), when it closes the gateway, drains in-flight Discord calls (the rest
//! stay queued for the next start) and writes what it counted.

use super::playground::{self, Playground};
use super::{Settings, live, open_store, print_outcome, runtime_config, shared_limits};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use townes::api::{ApiConfig, ApiParts, ApiServer};
use townes::billing::{Billing, BillingConfig, EXPIRY_EVERY, METER_EVERY};
use townes::community_health::{self, CommunityHealth};
use townes::discord::{DEFAULT_BASE_URL, ExecutorConfig, RestClient};
use townes::gateway::Shards;
use townes::interactions::http::{SignatureCheck, router};
use townes::offboarding::{Offboarder, TICK_EVERY, TickReport};
use townes::platform::{Connection, Running, connect};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Feature components (.wasm) to enable in the offline playground.
    pub(super) components: Vec<PathBuf>,
    /// The bot token; without one the platform runs offline against the simulator.
    #[arg(long, env = "DISCORD_TOKEN", hide_env_values = true)]
    pub(super) discord_token: Option<String>,
    /// Send REST calls and gateway discovery here instead of discord.com (a REST
    /// proxy, or a Discord-compatible server).
    // A proxy's URL may carry credentials.
    #[arg(long, env = "DISCORD_API_BASE", hide_env_values = true)]
    pub(super) discord_api_base: Option<String>,
    /// Which shards this process runs: `auto`, or `0-3/16` to split shards
    /// across processes.
    #[arg(long, env = "TOWNES_SHARDS", default_value = "auto")]
    pub(super) shards: Shards,
    /// Also serve the HTTP interactions endpoint (POST /interactions) here.
    #[arg(long, env = "TOWNES_INTERACTIONS_ADDR")]
    pub(super) interactions_addr: Option<SocketAddr>,
    /// The application's public key (developer portal), to verify interactions.
    #[arg(long, env = "DISCORD_PUBLIC_KEY")]
    pub(super) discord_public_key: Option<String>,
    /// Do not start the dashboard API (run it elsewhere with `townes api`).
    #[arg(long, env = "TOWNES_NO_API")]
    pub(super) no_api: bool,
    #[command(flatten)]
    pub(super) api: ApiConfig,
    #[command(flatten)]
    pub(super) billing: BillingConfig,
    #[command(flatten)]
    pub(super) license: townes::licensing::client::ClientConfig,
    #[command(flatten)]
    pub(super) journal: JournalRetention,
}

/// How long the event journal keeps what it delivered to features, for
/// `POST /admin/guilds/{id}/replay`.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct JournalRetention {
    /// How long journaled events are kept, e.g. `7d`.
    #[arg(
        long = "journal-retention",
        env = "TOWNES_JOURNAL_RETENTION",
        default_value = "7d",
        value_parser = townes::licensing::parse_duration
    )]
    pub keep: Duration,
    /// Most events kept per guild (the newest).
    #[arg(
        long = "journal-cap",
        env = "TOWNES_JOURNAL_CAP",
        default_value_t = JournalRetention::DEFAULT_CAP,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub per_guild: u32,
}

impl JournalRetention {
    const DEFAULT_CAP: u32 = 1000;
}

impl Default for JournalRetention {
    fn default() -> Self {
        JournalRetention {
            keep: Duration::from_secs(7 * 86_400),
            per_guild: JournalRetention::DEFAULT_CAP,
        }
    }
}

/// How often due scheduled jobs are looked for.
const JOB_POLL: Duration = Duration::from_secs(1);
/// How often usage counters are written.
const USAGE_FLUSH: Duration = Duration::from_secs(60);
/// How often the event journal is swept.
const JOURNAL_SWEEP_EVERY: Duration = Duration::from_secs(600);
/// How long a shutdown waits for in-flight Discord calls.
pub(super) const DRAIN: Duration = Duration::from_secs(10);

pub async fn run(settings: &Settings, args: ServeArgs) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let check = match (&args.interactions_addr, &args.discord_public_key) {
        (Some(_), Some(key)) => Some(SignatureCheck::from_hex(key).map_err(anyhow::Error::msg)?),
        (Some(_), None) => anyhow::bail!(
            "--interactions-addr needs the application's public key: set DISCORD_PUBLIC_KEY (developer portal → General Information → Public Key)"
        ),
        _ => None,
    };
    let (playground, connection) = match args.discord_token {
        Some(token) => {
            if !args.components.is_empty() {
                anyhow::bail!(
                    "components on the command line are for the offline playground; with DISCORD_TOKEN set, install features with `townes feature install` and enable them per guild"
                );
            }
            let connection = Connection {
                shards: args.shards,
                live: live(settings).await?,
                limits: shared_limits(settings).await?,
                executor: ExecutorConfig::from_env()?,
                ..Connection::new(token, args.discord_api_base)
            };
            (None, connection)
        }
        None => {
            let (playground, connection) =
                Playground::start(settings, &store, &args.components).await?;
            (Some(playground), connection)
        }
    };
    let rest = RestClient::new(
        connection.api_base.as_deref().unwrap_or(DEFAULT_BASE_URL),
        &connection.token,
    )?;
    let running = connect(store, runtime_config(settings)?, connection).await?;
    // A self-hosted installation's licence (ADR 0016) sets every guild's plan
    // from here on, and keeps its lease fresh until this returns.
    let _license = townes::licensing::client::start(
        &args.license,
        running.platform.runtime.clone(),
        &settings.data_dir,
    )
    .await;
    if let (Some(addr), Some(check)) = (args.interactions_addr, check) {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!(
            "HTTP interactions endpoint: http://{}/interactions",
            listener.local_addr()?
        );
        let app = router(running.platform.clone(), check);
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let runtime = &running.platform.runtime;
    match runtime.share_cached_components().await {
        Ok(0) => {}
        Ok(shared) => tracing::info!(
            shared,
            "stored cached components in the database for the other processes"
        ),
        Err(error) => {
            tracing::warn!(%error, "cannot store cached components in the database; processes without them cannot run them")
        }
    }
    let billing = Arc::new(Billing::new(
        runtime.store().clone(),
        runtime.plans().clone(),
        args.billing,
    ));
    let api = if args.no_api {
        None
    } else {
        Some(
            start_api(
                args.api.clone(),
                &running,
                &rest,
                playground.as_ref(),
                billing.clone(),
                super::export_config(settings),
            )
            .await?,
        )
    };
    if let Some(playground) = &playground {
        playground::play(playground).await?;
    }
    // Listen before announcing, so an interrupt right after the announcement is seen.
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    match &playground {
        Some(_) => println!(
            "the platform is running offline (no DISCORD_TOKEN) against the Discord simulator; try `townes dev` to chat in it yourself; press Ctrl-C to stop"
        ),
        None => println!("the platform is connected to Discord; press Ctrl-C to stop"),
    }
    // The job never issues licences: it needs no signing key.
    let offboarding = Offboarder::new(
        runtime.store().clone(),
        args.api.offboarding.clone(),
        None,
        settings.public_url.clone(),
    );
    let served = serve_until(
        &running,
        Some((&billing, &offboarding)),
        args.journal,
        shutdown,
    )
    .await;
    // Shut down in full even when serving ended in an error: in-flight Discord
    // calls drain and usage counters are written either way.
    if let Some(api) = api {
        api.shutdown().await?;
    }
    running.shutdown(DRAIN).await?;
    served?;
    println!("stopped");
    Ok(())
}

/// Starts the dashboard API next to the gateway. In the playground, Discord
/// login goes to the simulator unless configured otherwise.
async fn start_api(
    mut config: ApiConfig,
    running: &Running,
    rest: &RestClient,
    playground: Option<&Playground>,
    billing: Arc<Billing>,
    exports: townes::export::ExportConfig,
) -> anyhow::Result<ApiServer> {
    if let Some(playground) = playground.filter(|_| config.oauth_client_id.is_none()) {
        config.oauth_client_id = Some(playground.sim.client_id());
        config.oauth_client_secret = Some(playground.sim.client_secret());
        config.discord_web_base = playground.sim.base_url();
        config
            .oauth_redirect_uri
            .get_or_insert_with(|| PLAYGROUND_REDIRECT.to_string());
    }
    let platform = running.platform.clone();
    let exports = Arc::new(townes::export::Exports::new(
        platform.runtime.clone(),
        platform.live.clone(),
        exports,
    ));
    let parts = ApiParts {
        runtime: platform.runtime.clone(),
        live: platform.live.clone(),
        discord: Some(rest.clone()),
        platform: Some(platform),
        billing: Some(billing),
        offboarding: None,
        exports: Some(exports),
    };
    super::api::start(config, parts).await
}

/// Where the playground's Discord login returns to: a dashboard in development.
const PLAYGROUND_REDIRECT: &str = "http://localhost:3000/auth/callback";

/// Runs scheduled jobs and flushes usage and activity counters until
/// `shutdown` resolves or the gateway stops for good, sweeping the event
/// journal to `journal` and scoring guilds' community health once a day (in
/// the background, so a long run never holds up scheduled jobs); with
/// `hosted` (billing and offboarding), also billing's hourly expiry job,
/// the metering of AI usage to Stripe and the hourly offboarding job
/// (retirements, purges). A failing database (a restart, a failover, a
/// full disk) is logged and retried with growing pauses: it does not end
/// serving.
pub async fn serve_until(
    running: &Running,
    hosted: Option<(&Billing, &Offboarder)>,
    journal: JournalRetention,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> anyhow::Result<()> {
    let runtime = &running.platform.runtime;
    let mut jobs = tokio::time::interval(JOB_POLL);
    let mut usage = tokio::time::interval(USAGE_FLUSH);
    let mut expiry = tokio::time::interval(EXPIRY_EVERY);
    let mut meters = tokio::time::interval(METER_EVERY);
    let mut offboardings = tokio::time::interval(TICK_EVERY);
    let billing = hosted.map(|(billing, _)| billing);
    let mut sweep = tokio::time::interval(JOURNAL_SWEEP_EVERY);
    let health = CommunityHealth::new(runtime.clone());
    let mut health_every = tokio::time::interval(community_health::RUN_EVERY);
    // At most one run at a time; dropped (aborted) when serving ends.
    let mut health_run = tokio::task::JoinSet::new();
    let mut backoff = Backoff::default();
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = jobs.tick() => {
                if running.gateway_finished() {
                    anyhow::bail!("the gateway connection ended; see the log above");
                }
                if !backoff.due(tokio::time::Instant::now()) {
                    continue;
                }
                match runtime.run_due_jobs(chrono::Utc::now(), 100).await {
                    Ok(outcomes) => {
                        backoff.succeeded();
                        for outcome in outcomes {
                            print_outcome("scheduled job", &outcome, false);
                        }
                    }
                    Err(error) => {
                        let pause = backoff.failed(tokio::time::Instant::now());
                        tracing::warn!(error = format!("{error:#}"), retry_in = ?pause, "could not run scheduled jobs; retrying");
                    }
                }
            }
            _ = usage.tick() => {
                if let Err(error) = runtime.flush_usage().await {
                    tracing::warn!(%error, "could not write usage counters; keeping them for the next flush");
                }
                if let Err(error) = running.flush_activity().await {
                    tracing::warn!(%error, "could not write activity counters; keeping them for the next flush");
                }
            }
            _ = health_every.tick() => {
                while health_run.try_join_next().is_some() {}
                if health_run.is_empty() {
                    health_run.spawn(score_community_health(health.clone()));
                }
            }
            _ = sweep.tick() => {
                let keep = chrono::TimeDelta::from_std(journal.keep).unwrap_or(chrono::TimeDelta::MAX);
                let before = chrono::Utc::now().checked_sub_signed(keep).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
                match runtime.store().sweep_journal(before, journal.per_guild).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "event journal: swept old entries"),
                    Err(error) => tracing::warn!(%error, "event journal: the sweep failed; it runs again in 10 minutes"),
                }
            }
            _ = expiry.tick(), if billing.is_some() => {
                let Some(billing) = billing else { continue };
                match billing.expire(chrono::Utc::now()).await {
                    Ok(expired) if !expired.is_empty() => {
                        tracing::info!(moved = expired.len(), "billing: the expiry job ended trials and unpaid plans");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "billing: the expiry job failed; it runs again in an hour"),
                }
            }
            _ = meters.tick(), if billing.is_some() => {
                let Some(billing) = billing else { continue };
                if let Err(error) = billing.report_usage(chrono::Utc::now()).await {
                    tracing::warn!(%error, "billing: could not report AI usage to Stripe; retrying on the next run");
                }
            }
            _ = offboardings.tick(), if hosted.is_some() => {
                let Some((_, offboarding)) = hosted else { continue };
                match offboarding.tick(chrono::Utc::now()).await {
                    Ok(report) if report != TickReport::default() => {
                        tracing::info!(?report, "offboarding: flows moved");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "offboarding: the job failed; it runs again in an hour"),
                }
            }
        }
    }
}

/// One run of the daily community health job, logged.
async fn score_community_health(health: CommunityHealth) {
    match health.run(chrono::Utc::now()).await {
        Ok(report) if report.computed > 0 => tracing::info!(
            computed = report.computed,
            swept = report.swept,
            "community health: scored guilds"
        ),
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, "community health: the daily job failed; it runs again in 15 minutes")
        }
    }
}

/// The longest pause between attempts while the database keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// When to try again after failures: after [`JOB_POLL`], doubling with each
/// failure in a row up to [`MAX_BACKOFF`]; back to every poll after a success.
#[derive(Default)]
struct Backoff {
    failures: u32,
    next: Option<tokio::time::Instant>,
}

impl Backoff {
    fn due(&self, now: tokio::time::Instant) -> bool {
        self.next.is_none_or(|next| now >= next)
    }

    /// Records a failure at `now`; returns the pause before the next attempt.
    fn failed(&mut self, now: tokio::time::Instant) -> Duration {
        let pause = JOB_POLL
            .saturating_mul(1 << self.failures.min(16))
            .min(MAX_BACKOFF);
        self.failures += 1;
        self.next = Some(now + pause);
        pause
    }

    fn succeeded(&mut self) {
        *self = Backoff::default();
    }
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM. The handlers are installed
/// when this returns, not when the future is first polled.
#[cfg(unix)]
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        let _ = ctrl_c.await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_doubling_up_to_the_cap_and_a_success_resets() {
        let start = tokio::time::Instant::now();
        let mut backoff = Backoff::default();
        assert!(backoff.due(start));
        let pauses: Vec<u64> = (0..8).map(|_| backoff.failed(start).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert!(!backoff.due(start + Duration::from_secs(59)));
        assert!(backoff.due(start + MAX_BACKOFF));
        backoff.succeeded();
        assert!(backoff.due(start));
        assert_eq!(backoff.failed(start), JOB_POLL);
    }
}
