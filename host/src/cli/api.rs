//! `townes api`: the dashboard API alone, without a gateway (`townes serve`
//! starts the same API next to the gateway). Several may run behind a load
//! balancer on one database; with `REDIS_URL` they all hear every live event
//! and share the rate limits.

use super::serve::shutdown_signal;
use super::{Settings, live, platform, shared_limits};
use std::sync::Arc;
use townes::api::{ApiConfig, ApiParts, ApiServer, ApiState};
use townes::billing::{Billing, BillingConfig};
use townes::discord::{DEFAULT_BASE_URL, RestClient};

#[derive(clap::Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub api: ApiConfig,
    /// The bot token, to read guild data and members' rights from Discord.
    /// Without it only guilds owned by the caller's tenant can be managed.
    #[arg(long, env = "DISCORD_TOKEN", hide_env_values = true)]
    pub discord_token: Option<String>,
    /// Discord's (or a REST proxy's) base URL.
    // A proxy's URL may carry credentials.
    #[arg(long, env = "DISCORD_API_BASE", hide_env_values = true)]
    pub discord_api_base: Option<String>,
    #[command(flatten)]
    pub billing: BillingConfig,
}

pub async fn run(settings: &Settings, args: ApiArgs) -> anyhow::Result<()> {
    let live = live(settings).await?;
    let runtime = Arc::new(
        platform(settings)
            .await?
            .with_live(live.clone())
            .with_shared_limits(shared_limits(settings).await?),
    );
    let discord = match &args.discord_token {
        Some(token) => Some(RestClient::new(
            args.discord_api_base.as_deref().unwrap_or(DEFAULT_BASE_URL),
            token,
        )?),
        None => None,
    };
    let billing = Arc::new(Billing::new(
        runtime.store().clone(),
        runtime.plans().clone(),
        args.billing,
    ));
    let exports = Arc::new(townes::export::Exports::new(
        runtime.clone(),
        live.clone(),
        super::export_config(settings),
    ));
    let parts = ApiParts {
        runtime,
        live,
        discord,
        platform: None,
        billing: Some(billing),
        offboarding: None,
        exports: Some(exports),
    };
    let server = start(args.api, parts).await?;
    let shutdown = shutdown_signal()?;
    println!("press Ctrl-C to stop");
    shutdown.await;
    server.shutdown().await?;
    println!("stopped");
    Ok(())
}

/// Starts the API and says where it listens.
pub async fn start(config: ApiConfig, parts: ApiParts) -> anyhow::Result<ApiServer> {
    let login = config.oauth_client_id.is_some();
    let server = ApiServer::start(ApiState::new(config, parts)?).await?;
    println!("dashboard API: http://{}", server.addr);
    if !login {
        println!(
            "  Discord login is off: set DISCORD_CLIENT_ID, DISCORD_CLIENT_SECRET and TOWNES_OAUTH_REDIRECT_URI"
        );
    }
    Ok(server)
}
