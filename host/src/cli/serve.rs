//! `townes serve`: runs the platform until interrupted.
//!
//! Without a Discord token it runs offline: the features given are installed into
//! the local playground guild, the playground script plays once, and then the
//! platform keeps running — processing scheduled jobs and flushing usage counters —
//! until Ctrl-C (or SIGTERM), when it flushes what it counted and stops.

use super::{Settings, demo, local_platform, print_outcome};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Feature components (.wasm) to install into the playground.
    components: Vec<PathBuf>,
    /// The bot token; without one the platform runs offline.
    #[arg(long, env = "DISCORD_TOKEN", hide_env_values = true)]
    discord_token: Option<String>,
}

/// How often due scheduled jobs are looked for.
const JOB_POLL: Duration = Duration::from_secs(1);
/// How often usage counters are written.
const USAGE_FLUSH: Duration = Duration::from_secs(60);

pub async fn run(settings: &Settings, args: ServeArgs) -> anyhow::Result<()> {
    if args.discord_token.is_some() {
        anyhow::bail!(
            "connecting to Discord is not built yet (it arrives with the gateway); unset DISCORD_TOKEN to run the offline playground"
        );
    }
    let (runtime, discord) = local_platform(settings).await?;
    if !args.components.is_empty() {
        demo::play(&runtime, &discord, &args.components, false).await?;
    }
    // Listen before announcing, so an interrupt right after the announcement is seen.
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    println!(
        "the platform is running offline (no DISCORD_TOKEN): scheduled jobs are processed; press Ctrl-C to stop"
    );
    let mut jobs = tokio::time::interval(JOB_POLL);
    let mut usage = tokio::time::interval(USAGE_FLUSH);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = jobs.tick() => {
                for outcome in runtime.run_due_jobs(chrono::Utc::now(), 100).await? {
                    print_outcome("scheduled job", &outcome, false);
                }
            }
            _ = usage.tick() => {
                if let Err(error) = runtime.flush_usage().await {
                    tracing::warn!(%error, "could not write usage counters; keeping them for the next flush");
                }
            }
        }
    }
    runtime.flush_usage().await?;
    println!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM. The handlers are installed
/// when this returns, not when the future is first polled.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
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
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        let _ = ctrl_c.await;
    })
}
