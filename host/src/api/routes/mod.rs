//! The REST routes, one file per area: `health` (probes and metrics), `auth`
//! (login, sessions, API keys), `assets` (seed 001: tenants' guilds, feature
//! toggles, usage, incidents), `guild` (seed 002: settings, permissions, audit
//! log, guild data), `marketplace` (catalogue and per-guild features),
//! `feature_api` (routes the features themselves serve), `files` (what
//! features keep, and signed links to it), `billing` (plans, trials,
//! Stripe), `licenses` (self-hosting licences: activation, lease refresh),
//! `exports` (export bundles, their downloads, guild imports), `offboarding`
//! (leaving the hosted platform; erasing a member's data), `admin` (the
//! platform operators' `/admin/…`), `status` (the public `/status` and
//! `/changelog`) and `community_health` (a guild's daily health score).
//!
//! Seed 001's paths are served as written (`/auth/…`, `/tenants/…`, `/assets/…`,
//! `/usage/…`, `/incidents`, `/licenses/…`); everything else lives under `/api`.

pub mod admin;
pub mod ai;
pub mod assets;
pub mod auth;
pub mod billing;
pub mod community_health;
pub mod exports;
pub mod feature_api;
pub mod files;
pub mod guild;
pub mod health;
pub mod licenses;
pub mod marketplace;
pub mod offboarding;
pub mod status;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, delete, get, post};

/// The largest Stripe event accepted.
const WEBHOOK_BODY_LIMIT: usize = 512 * 1024;

pub fn router() -> Router<ApiState> {
    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/status", get(status::status))
        .route("/changelog", get(status::changelog))
        .route("/changelog.md", get(status::changelog_markdown))
        .route("/admin/tenants", get(admin::tenants))
        .route("/admin/tenants/{tenant_id}", get(admin::tenant))
        .route(
            "/admin/tenants/{tenant_id}/anonymize",
            post(admin::anonymize),
        )
        .route(
            "/admin/tenants/{tenant_id}/export",
            post(admin::export_tenant),
        )
        .route("/admin/exports/{export_id}", get(admin::export))
        .route("/admin/guilds", get(admin::guilds))
        .route("/admin/guilds/{guild_id}/replay", post(admin::replay))
        .route("/admin/incidents", get(admin::incidents))
        .route("/admin/migrations", get(admin::migrations))
        .route(
            "/admin/licenses/{license_id}/regen",
            post(admin::regen_license),
        )
        .route("/admin/stats", get(admin::stats))
        .route("/auth/discord/login", get(auth::login))
        .route("/auth/discord/callback", post(auth::callback))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/api/keys", get(auth::list_keys).post(auth::create_key))
        .route("/api/keys/{key_id}", delete(auth::revoke_key))
        .route("/tenants/{tenant_id}/assets", get(assets::tenant_assets))
        .route("/assets/{guild_id}", get(assets::asset))
        .route(
            "/assets/{guild_id}/features/{feature_id}/enable",
            post(assets::enable_feature_route),
        )
        .route(
            "/assets/{guild_id}/features/{feature_id}/disable",
            post(assets::disable_feature_route),
        )
        .route("/usage/{guild_id}/daily", get(assets::daily_usage))
        .route("/tenants/{tenant_id}/billing", get(billing::billing))
        .route(
            "/tenants/{tenant_id}/billing/trial",
            post(billing::start_trial),
        )
        .route(
            "/tenants/{tenant_id}/billing/checkout",
            post(billing::checkout),
        )
        .route("/tenants/{tenant_id}/billing/portal", post(billing::portal))
        .route(
            "/webhooks/stripe",
            // Stripe's events outgrow the API's 64 KiB body limit.
            post(billing::stripe_webhook).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
        .route(
            "/tenants/{tenant_id}/offboarding",
            get(offboarding::list).post(offboarding::start),
        )
        .route(
            "/tenants/{tenant_id}/offboarding/{offboarding_id}/cancel",
            post(offboarding::cancel),
        )
        .route(
            "/api/guild/{guild_id}/forget-user",
            post(offboarding::forget_user),
        )
        .route("/me/forget", post(offboarding::forget_me))
        .route(
            "/incidents",
            get(assets::list_incidents).post(assets::create_incident),
        )
        .route(
            "/api/guild/{guild_id}/settings",
            get(guild::settings).put(guild::update_settings),
        )
        .route(
            "/api/guild/{guild_id}/permissions",
            get(guild::permissions).post(guild::grant_permission),
        )
        .route(
            "/api/guild/{guild_id}/permissions/{permission_id}",
            delete(guild::revoke_permission),
        )
        .route("/api/guild/{guild_id}/audit-logs", get(guild::audit_logs))
        .route(
            "/api/guild/{guild_id}/audit-logs/{entry_id}",
            get(guild::audit_log),
        )
        .route("/api/guild/{guild_id}/emojis", get(guild::emojis))
        .route("/api/guild/{guild_id}/roles", get(guild::roles))
        .route("/api/guild/{guild_id}/channels", get(guild::channels))
        .route("/api/guild/{guild_id}/members", get(guild::members))
        .route(
            "/api/guild/{guild_id}/health",
            get(community_health::community_health),
        )
        .route(
            "/api/guild/{guild_id}/ai/key",
            get(ai::key).put(ai::set_key).delete(ai::delete_key),
        )
        .route(
            "/api/guild/{guild_id}/ai/caps",
            get(ai::caps).put(ai::set_caps),
        )
        .route("/api/openapi.json", get(feature_api::document))
        .route("/api/marketplace/features", get(marketplace::catalogue))
        .route(
            "/api/marketplace/features/{feature_id}",
            get(marketplace::feature),
        )
        .route(
            "/api/guild/{guild_id}/features",
            get(marketplace::guild_features),
        )
        .route(
            "/api/guild/{guild_id}/features/{feature_id}/install",
            post(marketplace::install),
        )
        .route(
            "/api/guild/{guild_id}/features/{feature_id}/enable",
            post(marketplace::enable),
        )
        .route(
            "/api/guild/{guild_id}/features/{feature_id}/disable",
            post(marketplace::disable),
        )
        .route(
            "/api/guild/{guild_id}/features/{feature_id}/upgrade",
            post(marketplace::upgrade),
        )
        .route(
            "/api/guild/{guild_id}/features/{feature_id}/config",
            get(marketplace::config).put(marketplace::set_config),
        )
        .route(
            "/api/guild/{guild_id}/features/{feature_id}/api/{*path}",
            any(feature_api::call),
        )
        .route(
            "/api/guild/{guild_id}/features/{feature_id}/files",
            get(files::list),
        )
        .route(
            "/api/guild/{guild_id}/features/{feature_id}/files/{*name}",
            get(files::download),
        )
        .route("/files/{token}", get(files::linked))
        .route("/exports", post(exports::start))
        .route("/exports/{export_id}", get(exports::get))
        .route("/exports/{export_id}/download", get(exports::download))
        .route(
            "/imports",
            // A bundle outgrows the API's 64 KiB body limit; the handler holds
            // it to TOWNES_EXPORT_MAX_BYTES instead.
            post(exports::import).layer(DefaultBodyLimit::disable()),
        )
        .route("/licenses/activate", post(licenses::activate))
        .route("/licenses/refresh", post(licenses::refresh));
    feature_api::SEED_ALIASES
        .iter()
        .fold(router, |router, (segment, _)| {
            router
                .route(
                    &format!("/api/guild/{{guild_id}}/{segment}"),
                    any(feature_api::alias),
                )
                .route(
                    &format!("/api/guild/{{guild_id}}/{segment}/{{*rest}}"),
                    any(feature_api::alias),
                )
        })
}

/// The caller's own tenant, or 404 (another tenant is not told apart from one
/// that does not exist).
fn own_tenant(caller: &super::auth::Caller, tenant_id: &str) -> Result<(), ApiError> {
    if caller.tenant_id() == tenant_id {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("tenant {tenant_id}")))
    }
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; the API's routes are in docs/API/openapi.yaml".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Errors any signed-in route can answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only read by the OpenAPI generator.
pub enum CallerErrors {
    /// A malformed parameter.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No session or API key, or a revoked or expired one.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Too many requests; see `Retry-After`.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    RateLimited(ErrorBody),
}

/// Errors of a guild-scoped route, on top of [`CallerErrors`].
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum GuildErrors {
    /// The caller is in the guild but lacks Manage Server.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such guild, or the caller is not in it (the two are not told apart).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Discord could not be asked about the caller's rights.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Errors of a route that reads a JSON body.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    /// The body is over 64 KiB.
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// The body is not `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// The body is well-formed but refused; `problems` names each value.
    #[response(status = 422)]
    Invalid(ErrorBody),
}
