//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations. `townes openapi` prints it; `docs/API/openapi.yaml` is that
//! output, committed, and a test fails when the two differ.

use super::routes::{assets, auth, feature_api, files, guild, health, marketplace};
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
        feature_api::document,
        files::list, files::download, files::linked,
        ws::upgrade,
    ),
    components(schemas(super::snowflake::Snowflake, super::routes::marketplace::CapabilityName)),
    modifiers(&Security, &Conventions),
    tags(
        (name = "health", description = "Probes and metrics"),
        (name = "auth", description = "Discord login, sessions and API keys"),
        (name = "tenants", description = "A tenant's guilds, feature toggles, usage and incidents"),
        (name = "guild settings", description = "A guild's settings, command permissions and audit log"),
        (name = "guild data", description = "The guild as the bot sees it: roles, channels, emojis, members"),
        (name = "marketplace", description = "The catalogue and per-guild features"),
        (name = "files", description = "Files features keep, and signed links to them"),
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

const REQUEST_ID_DESCRIPTION: &str = "The request's id (the caller's own when it sent a sane one): quote it when reporting a problem";
const INTERNAL_DESCRIPTION: &str =
    "Internal error; the cause is in the server's log under the request id";

/// What holds for every operation, written into each so a client generator
/// sees it: the `X-Request-ID` header on every answer, and the 500 answer
/// (`internal`, the cause only in the server's log).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, schema};
        let request_id = HeaderBuilder::new()
            .schema(schema::Object::with_type(schema::Type::String))
            .description(Some(REQUEST_ID_DESCRIPTION))
            .build();
        let internal = ResponseBuilder::new()
            .description(INTERNAL_DESCRIPTION)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses
                    .entry("500".into())
                    .or_insert_with(|| internal.clone().into());
                for response in responses.values_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response {
                        response
                            .headers
                            .insert("X-Request-ID".into(), request_id.clone());
                    }
                }
            }
        }
    }
}

/// The document as YAML, as committed in `docs/API/openapi.yaml`.
pub fn yaml() -> String {
    ApiDoc::openapi()
        .to_yaml()
        .expect("the OpenAPI document serializes")
}

/// One feature version's routes, as the document lists them.
pub struct FeatureRoutes {
    pub feature_id: String,
    pub version: String,
    pub routes: Vec<crate::wit::extensions::Route>,
}

/// Errors a feature route can answer, beyond its 2xx.
const FEATURE_ROUTE_ERRORS: [(&str, &str); 10] = [
    (
        "400",
        "A malformed parameter or body, or the feature's `invalid-argument`",
    ),
    ("401", "No session or API key"),
    (
        "403",
        "The caller lacks Manage Server, or the feature's `denied`",
    ),
    (
        "404",
        "No such guild, the feature is not enabled there, or the feature's `not-found`",
    ),
    ("409", "The feature's `quota-exceeded`"),
    ("422", "The body does not match the route's request schema"),
    ("429", "Too many requests; see `Retry-After`"),
    ("502", "The feature failed or answered outside its contract"),
    (
        "503",
        "The guild is busy, the feature is paused, or its `unavailable`",
    ),
    ("500", INTERNAL_DESCRIPTION),
];

/// The committed document plus the routes `features` serve (ADR 0008). A
/// route is listed under the feature's mount,
/// `/api/guild/{guild_id}/features/{feature_id}/api/…`, with an operation id
/// prefixed by the feature's (`notesListNotes`), or under its seed 002 alias
/// (`/api/guild/{guild_id}/tickets/…`) with its own operation id when the
/// feature owns one.
pub fn with_features(features: &[FeatureRoutes]) -> serde_json::Value {
    use serde_json::{Value, json};
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    let error = json!({ "$ref": "#/components/schemas/ErrorBody" });
    for feature in features {
        let alias = super::routes::feature_api::SEED_ALIASES
            .iter()
            .find(|(_, owner)| *owner == feature.feature_id)
            .map(|(segment, _)| *segment);
        for route in &feature.routes {
            let aliased = alias.filter(|segment| {
                route.path.trim_start_matches('/').split('/').next() == Some(segment)
            });
            let (path, operation_id) = match aliased {
                Some(_) => (
                    format!("/api/guild/{{guild_id}}{}", route.path),
                    route.operation_id.clone(),
                ),
                None => (
                    format!(
                        "/api/guild/{{guild_id}}/features/{}/api{}",
                        feature.feature_id, route.path
                    ),
                    format!(
                        "{}{}",
                        camel_case(&feature.feature_id),
                        upper_first(&route.operation_id)
                    ),
                ),
            };
            let mut parameters = vec![json!({
                "name": "guild_id", "in": "path", "required": true,
                "schema": { "$ref": "#/components/schemas/Snowflake" }
            })];
            parameters.extend(route.path.split('/').filter_map(|s| {
                let name = s.strip_prefix('{')?.strip_suffix('}')?;
                Some(json!({
                    "name": name, "in": "path", "required": true,
                    "schema": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,100}$" }
                }))
            }));
            let schema = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(json!({}));
            let headers = json!({ "X-Request-ID": {
                "description": REQUEST_ID_DESCRIPTION,
                "schema": { "type": "string" }
            }});
            let mut responses = serde_json::Map::new();
            responses.insert(
                "2XX".into(),
                json!({
                    "description": "The feature's answer",
                    "headers": headers,
                    "content": { "application/json": { "schema": schema(&route.response_schema) } }
                }),
            );
            for (status, description) in FEATURE_ROUTE_ERRORS {
                responses.insert(
                    status.into(),
                    json!({
                        "description": description,
                        "headers": headers,
                        "content": { "application/json": { "schema": error } }
                    }),
                );
            }
            let mut operation = json!({
                "tags": [format!("feature: {}", feature.feature_id)],
                "summary": route.summary,
                "description": format!("Served by feature `{}` {}.", feature.feature_id, feature.version),
                "operationId": operation_id,
                "parameters": parameters,
                "responses": responses,
                "security": [{ "session": [] }, { "api_key": [] }],
            });
            if let Some(request) = &route.request_schema {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": { "application/json": { "schema": schema(request) } }
                });
            }
            let method = crate::runtime::extensions::method_name(route.method).to_lowercase();
            doc["paths"][&path][&method] = operation;
        }
    }
    doc
}

/// `custom-commands` → `customCommands`.
fn camel_case(id: &str) -> String {
    let mut out = String::new();
    for (i, part) in id.split('-').enumerate() {
        if i == 0 {
            out.push_str(part);
        } else {
            out.push_str(&upper_first(part));
        }
    }
    out
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
