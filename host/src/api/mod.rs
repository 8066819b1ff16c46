//! The dashboard API: REST and WebSocket over axum.
//!
//! - [`config`]: flags and environment.
//! - [`error`]: one error enum, one JSON shape, and extractors that use it.
//! - [`auth`]: Discord OAuth login, sessions, API keys, and the [`auth::Caller`]
//!   extractor every protected route takes.
//! - [`authz`]: who may touch a guild (tenant owner, or Manage Server there).
//! - [`directory`]: the guild's roles, channels, emojis and members, read from Discord.
//! - [`protect`]: request ids, rate limits, security headers, metrics.
//! - `routes/`: the handlers, one file per area of the seed contracts.
//! - [`ws`]: live guild events over `/api/ws`.
//! - [`openapi`]: the OpenAPI document, generated from the handlers' annotations.
//! - `examples`: the document's example answers and requests.
//!
//! `townes serve` starts it next to the gateway; `townes api` runs it alone.

pub mod auth;
pub mod authz;
pub mod config;
pub mod directory;
pub mod error;
mod examples;
pub mod openapi;
pub mod protect;
mod routes;
pub mod snowflake;
pub mod ws;

use crate::billing::{Billing, BillingConfig};
use crate::live::Live;
use crate::offboarding::Offboarder;
use crate::platform::Platform;
use crate::runtime::Runtime;
use crate::store::Store;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::net::SocketAddr;
use std::sync::Arc;

pub use config::ApiConfig;
pub use error::{ApiError, ApiResult};

/// Everything a handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ApiConfig,
    runtime: Arc<Runtime>,
    live: Live,
    directory: directory::Directory,
    oauth: Option<auth::oauth::OAuthClient>,
    rights: authz::RightsCache,
    limiter: protect::RateLimiter,
    /// Present when the gateway runs in this process: queue depth and shard
    /// latencies for `/metrics`.
    platform: Option<Arc<Platform>>,
    billing: Arc<Billing>,
    exports: Arc<crate::export::Exports>,
    /// Present when the licence signing key is configured: `/licenses/…`.
    licensing: Option<Arc<crate::licensing::server::LicenseServer>>,
    offboarding: Arc<Offboarder>,
}

/// What the API needs from the rest of the host.
pub struct ApiParts {
    pub runtime: Arc<Runtime>,
    pub live: Live,
    /// The bot's REST access, for guild data and rights checks; `None` when no
    /// bot token is configured (only tenant-owned guilds are reachable then).
    pub discord: Option<crate::discord::RestClient>,
    pub platform: Option<Arc<Platform>>,
    /// Tenants' billing; `None`: billing over the runtime's plans without Stripe.
    pub billing: Option<Arc<Billing>>,
    /// The offboarding flows, shared with the job that runs them; `None`: the
    /// API's own, from its configuration.
    pub offboarding: Option<Arc<Offboarder>>,
    /// Export jobs and imports; `None`: the defaults, bundles under the
    /// runtime's data directory.
    pub exports: Option<Arc<crate::export::Exports>>,
}

impl ApiParts {
    /// The runtime and live events only: no bot token, no gateway, and
    /// billing, offboarding and exports built from the API's configuration.
    pub fn new(runtime: Arc<Runtime>, live: Live) -> ApiParts {
        ApiParts {
            runtime,
            live,
            discord: None,
            platform: None,
            billing: None,
            offboarding: None,
            exports: None,
        }
    }
}

impl ApiState {
    pub fn new(config: ApiConfig, parts: ApiParts) -> anyhow::Result<ApiState> {
        let oauth = auth::oauth::OAuthClient::from_config(
            &config,
            parts.discord.as_ref().map(|rest| rest.base_url()),
        )?;
        let billing = parts.billing.unwrap_or_else(|| {
            Arc::new(Billing::new(
                parts.runtime.store().clone(),
                parts.runtime.plans().clone(),
                BillingConfig::local(),
            ))
        });
        let exports = parts.exports.unwrap_or_else(|| {
            Arc::new(crate::export::Exports::new(
                parts.runtime.clone(),
                parts.live.clone(),
                crate::export::ExportConfig::new(parts.runtime.data_dir()),
            ))
        });
        let licensing = crate::licensing::server::LicenseServer::from_config(&config.licensing)
            .map_err(anyhow::Error::msg)?
            .map(Arc::new);
        let offboarding = parts.offboarding.unwrap_or_else(|| {
            Arc::new(Offboarder::new(
                parts.runtime.store().clone(),
                config.offboarding.clone(),
                licensing.clone(),
                parts.runtime.public_url(),
            ))
        });
        Ok(ApiState {
            inner: Arc::new(Inner {
                billing,
                exports,
                licensing,
                offboarding,
                limiter: protect::RateLimiter::shared(
                    &config,
                    parts.runtime.shared_limits().clone(),
                ),
                config,
                runtime: parts.runtime,
                live: parts.live,
                directory: directory::Directory::new(parts.discord),
                oauth,
                rights: authz::RightsCache::default(),
                platform: parts.platform,
            }),
        })
    }

    pub fn store(&self) -> &Store {
        self.inner.runtime.store()
    }

    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    pub fn live(&self) -> &Live {
        &self.inner.live
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    pub(crate) fn directory(&self) -> &directory::Directory {
        &self.inner.directory
    }

    pub(crate) fn oauth(&self) -> Option<&auth::oauth::OAuthClient> {
        self.inner.oauth.as_ref()
    }

    pub(crate) fn rights(&self) -> &authz::RightsCache {
        &self.inner.rights
    }

    pub(crate) fn limiter(&self) -> &protect::RateLimiter {
        &self.inner.limiter
    }

    pub fn billing(&self) -> &Billing {
        &self.inner.billing
    }

    pub fn exports(&self) -> &Arc<crate::export::Exports> {
        &self.inner.exports
    }

    pub(crate) fn platform(&self) -> Option<&Platform> {
        self.inner.platform.as_deref()
    }

    pub(crate) fn license_server(&self) -> Option<&crate::licensing::server::LicenseServer> {
        self.inner.licensing.as_deref()
    }

    pub fn offboarding(&self) -> &Offboarder {
        &self.inner.offboarding
    }
}

/// The whole API as one router, with every protection layer applied.
pub fn router(state: ApiState) -> Router {
    let routes = routes::router()
        .merge(ws::router())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(config::BODY_LIMIT));
    protect::layers(routes, &state).with_state(state)
}

/// Fails interrupted export jobs and deletes expired bundles, at start and
/// then every [`crate::export::SWEEP_EVERY`].
async fn sweep_exports(exports: Arc<crate::export::Exports>) {
    let mut every = tokio::time::interval(crate::export::SWEEP_EVERY);
    loop {
        every.tick().await;
        if let Err(error) = exports.sweep().await {
            tracing::warn!(%error, "export sweep failed; trying again later");
        }
    }
}

/// A running API server.
pub struct ApiServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    /// Background work that lives as long as the server.
    chores: [tokio::task::JoinHandle<()>; 3],
}

impl ApiServer {
    /// Binds `state.config().addr` and serves until [`ApiServer::shutdown`].
    pub async fn start(state: ApiState) -> anyhow::Result<ApiServer> {
        let addr = state.config().addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {addr} for the dashboard API: {e}; set TOWNES_API_ADDR (or --api-addr) to a free address, or pass --no-api to `townes serve`"
                )
            })?;
        let addr = listener.local_addr()?;
        let chores = [
            tokio::spawn(ws::tail_audit_log(state.clone())),
            tokio::spawn(protect::sweep_rate_limits(state.clone())),
            tokio::spawn(sweep_exports(state.exports().clone())),
        ];
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
        Ok(ApiServer {
            addr,
            task,
            stop,
            chores,
        })
    }

    /// Stops accepting connections and waits for requests in flight.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for chore in &self.chores {
            chore.abort();
        }
        // Open WebSockets would hold a graceful shutdown forever; give them a moment.
        match tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await {
            Ok(joined) => Ok(joined??),
            Err(_) => Ok(()),
        }
    }
}
