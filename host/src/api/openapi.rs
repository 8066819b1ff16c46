//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations. `townes openapi` prints it; `docs/API/openapi.yaml` is that
//! output, committed, and a test fails when the two differ.

use super::routes::{assets, auth, guild, health, marketplace};
use super::ws;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "TownesDev Bot Platform API",
        description = "The dashboard API: sign in with Discord, manage guilds' features, settings and permissions, read usage and the audit log, and follow live events over /api/ws. Discord ids are strings of 1 to 19 digits. Text may not contain U+0000 (NUL): it is refused with 422 in a body, 400 in a path or query. Errors are `{\"error\": {\"code\", \"message\", \"hint\"?, \"problems\"?}}`; every response carries `X-Request-ID`.",
        license(name = "Apache-2.0"),
    ),
    paths(
        health::healthz, health::readyz, health::metrics,
        auth::login, auth::callback, auth::logout, auth::me,
        auth::list_keys, auth::create_key, auth::revoke_key,
        assets::tenant_assets, assets::asset, assets::enable_feature_route,
        assets::disable_feature_route, assets::daily_usage,
        assets::create_incident, assets::list_incidents,
        guild::settings, guild::update_settings, guild::permissions,
        guild::grant_permission, guild::revoke_permission,
        guild::audit_logs, guild::audit_log,
        guild::emojis, guild::roles, guild::channels, guild::members,
        marketplace::catalogue, marketplace::feature, marketplace::guild_features,
        marketplace::install, marketplace::enable, marketplace::disable,
        marketplace::upgrade, marketplace::config, marketplace::set_config,
        ws::upgrade,
    ),
    components(schemas(super::snowflake::Snowflake, super::routes::marketplace::CapabilityName)),
    modifiers(&Security),
    tags(
        (name = "health", description = "Probes and metrics"),
        (name = "auth", description = "Discord login, sessions and API keys"),
        (name = "assets", description = "Seed 001: a tenant's guilds, toggles, usage, incidents"),
        (name = "guild", description = "Seed 002: settings, permissions, audit log"),
        (name = "guild data", description = "Seed 002: the guild as the bot sees it"),
        (name = "marketplace", description = "The catalogue and per-guild features"),
        (name = "live", description = "WebSocket events"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::SESSION_COOKIE,
                "Set by POST /auth/discord/callback",
            ))),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from POST /api/keys (`tdk_…`)"))
                    .build(),
            ),
        );
    }
}

/// The document as YAML, as committed in `docs/API/openapi.yaml`.
pub fn yaml() -> String {
    ApiDoc::openapi()
        .to_yaml()
        .expect("the OpenAPI document serializes")
}
