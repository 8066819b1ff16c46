//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations. `townes openapi` prints it; `docs/API/openapi.yaml` is that
//! output, committed, and a test fails when the two differ.

use super::routes::{
    admin, ai, assets, auth, billing, community_health, exports, feature_api, files, guild, health,
    licenses, marketplace, offboarding, status,
};
use super::ws;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "TownesDev Bot Platform API",
        description = "The dashboard API: sign in with Discord, manage guilds' features, settings and permissions, read usage and the audit log, and follow live events over /api/ws. Discord ids are strings of 1 to 19 digits. Text may not contain U+0000 (NUL): it is refused with 422 in a body, 400 in a path or query. Errors are `{\"error\": {\"code\", \"message\", \"hint\"?, \"problems\"?}}`; every response carries `X-Request-ID`.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    paths(
        health::healthz, health::readyz, health::metrics,
        status::status, status::changelog, status::changelog_markdown,
        auth::login, auth::callback, auth::logout, auth::me,
        auth::list_keys, auth::create_key, auth::revoke_key,
        assets::tenant_assets, assets::asset, assets::enable_feature_route,
        assets::disable_feature_route, assets::daily_usage,
        assets::create_incident, assets::list_incidents,
        billing::billing, billing::start_trial, billing::checkout, billing::portal,
        billing::stripe_webhook,
        offboarding::list, offboarding::start, offboarding::cancel,
        offboarding::forget_user, offboarding::forget_me,
        guild::settings, guild::update_settings, guild::permissions,
        guild::grant_permission, guild::revoke_permission,
        guild::audit_logs, guild::audit_log,
        guild::emojis, guild::roles, guild::channels, guild::members,
        community_health::community_health,
        ai::key, ai::set_key, ai::delete_key, ai::caps, ai::set_caps,
        marketplace::catalogue, marketplace::feature, marketplace::guild_features,
        marketplace::install, marketplace::enable, marketplace::disable,
        marketplace::upgrade, marketplace::config, marketplace::set_config,
        feature_api::document,
        files::list, files::download, files::linked,
        licenses::activate, licenses::refresh,
        admin::tenants, admin::tenant, admin::guilds, admin::incidents, admin::migrations,
        admin::replay, admin::regen_license, admin::anonymize, admin::stats,
        admin::export_tenant, admin::export,
        exports::start, exports::get, exports::download, exports::import,
        ws::upgrade,
    ),
    components(schemas(super::snowflake::Snowflake, super::routes::marketplace::CapabilityName)),
    modifiers(&Security, &Conventions),
    tags(
        (name = "health", description = "Probes and metrics"),
        (name = "status", description = "The platform's public status and changelog (no sign-in)"),
        (name = "auth", description = "Discord login, sessions and API keys"),
        (name = "tenants", description = "A tenant's guilds, feature toggles, usage and incidents"),
        (name = "guild settings", description = "A guild's settings, command permissions and audit log"),
        (name = "guild data", description = "The guild as the bot sees it: roles, channels, emojis, members"),
        (name = "community health", description = "A guild's daily community health score: its parts, what they were computed from, and the 30-day trend"),
        (name = "ai", description = "A guild's AI settings: its own API key (never shown back) and its daily token caps"),
        (name = "marketplace", description = "The catalogue and per-guild features"),
        (name = "files", description = "Files features keep, and signed links to them"),
        (name = "billing", description = "A tenant's plan, trial and Stripe subscription; Stripe's signed webhook"),
        (name = "offboarding", description = "Leaving the hosted platform (move to self-hosting, remove the bot, non-payment), and erasing a member's data"),
        (name = "licenses", description = "Self-hosting licences: activation and lease refresh (the licence, then the activation's secret, is the credential)"),
        (name = "exports", description = "Encrypted export bundles of a tenant or guild, their signed downloads, and guild imports"),
        (name = "live", description = "WebSocket events"),
        (name = "admin", description = "The platform operators' routes: tenants, guilds, incidents, migrations, figures and support tools (operator tokens only)"),
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
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A platform operator's token from `townes operator add` (`tdo_…`); tenants' sessions and API keys get 403",
                    ))
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

/// The document with the routes the given components serve: the committed
/// one (`townes openapi …`, `docs/API/openapi.yaml`) lists the built-in
/// features'. Each component is validated as an install would validate it,
/// and nothing is recorded.
pub async fn yaml_with(components: &[Vec<u8>]) -> anyhow::Result<String> {
    use crate::discord::LocalDiscord;
    use crate::runtime::{Runtime, RuntimeConfig};
    let store = crate::store::Store::connect("sqlite::memory:").await?;
    let scratch = std::env::temp_dir().join(format!("townes-openapi-{}", std::process::id()));
    let runtime = Runtime::new(
        RuntimeConfig::new(&scratch),
        store.clone(),
        std::sync::Arc::new(LocalDiscord::new()),
    )?;
    let mut features = Vec::new();
    for wasm in components {
        let validated = runtime.validate(wasm).await?;
        if !validated.routes().is_empty() {
            features.push(FeatureRoutes {
                feature_id: validated.manifest().id.clone(),
                version: validated.manifest().version.clone(),
                routes: validated.routes().to_vec(),
            });
        }
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&scratch);
    features.sort_by(|a, b| a.feature_id.cmp(&b.feature_id));
    Ok(serde_norway::to_string(&with_features(&features))?)
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
            // A feature gives examples in its schemas (JSON Schema's
            // `examples`); the first one is the operation's.
            let body = |text: &str| {
                let schema = schema(text);
                let mut media = json!({ "schema": schema });
                if let Some(first) = schema["examples"].get(0) {
                    media["example"] = first.clone();
                }
                json!({ "application/json": media })
            };
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
                    "content": body(&route.response_schema)
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
                    "content": body(request)
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

/// Checks of a document's examples, shared by the unit tests (the API's own
/// document) and the integration test of the committed document (with the
/// built-in features' routes).
pub mod lint {
    use serde_json::{Value, json};

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    /// Every operation: `GET /path (operationId)` and the operation object.
    fn operations(doc: &Value) -> Vec<(String, &Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if let Some(operation) = item.get(method) {
                    let id = operation["operationId"]
                        .as_str()
                        .unwrap_or("no operationId");
                    out.push((
                        format!("{} {path} ({id})", method.to_uppercase()),
                        operation,
                    ));
                }
            }
        }
        out
    }

    /// `value`, or what its local `$ref` (`#/components/…`) points at, followed
    /// until a value without one.
    fn resolve<'d>(doc: &'d Value, mut value: &'d Value) -> &'d Value {
        for _ in 0..32 {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return value;
            };
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("`{reference}` is not a local $ref"));
            value = doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("`{reference}` points at nothing"));
        }
        panic!("a $ref cycle")
    }

    /// An `example`, or a non-empty `examples` (a schema's list, or a media
    /// type's map of named examples).
    fn has_own_example(value: &Value) -> bool {
        value.get("example").is_some()
            || match value.get("examples") {
                Some(Value::Array(list)) => !list.is_empty(),
                Some(Value::Object(named)) => !named.is_empty(),
                _ => false,
            }
    }

    /// Whether a body of this schema has an example: the schema's own
    /// (through its `$ref`s), or for an array, its items'.
    fn schema_has_example(doc: &Value, schema: &Value) -> bool {
        if has_own_example(schema) {
            return true;
        }
        let schema = resolve(doc, schema);
        has_own_example(schema)
            || (schema.get("type") == Some(&json!("array"))
                && schema
                    .get("items")
                    .is_some_and(|items| schema_has_example(doc, items)))
    }

    /// JSON (`application/json`, `…+json`) or text (`text/…`) bodies need an
    /// example; other media types (a file's bytes, `*/*`) are binary.
    fn needs_example(media_type: &str) -> bool {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        essence == "application/json" || essence.ends_with("+json") || essence.starts_with("text/")
    }

    /// Where the rule is broken: every 2xx answer but 204 declares its body,
    /// and every JSON or text body of a 2xx answer or of a request has an
    /// example, on the media type or on its schema (following `$ref`s into the
    /// components; an array's items' example counts for the array). Binary
    /// media types, and answers that are not 2xx (101, 303, errors), need none.
    pub fn example_gaps(doc: &Value) -> Vec<String> {
        let mut missing = Vec::new();
        // The JSON and text bodies of an answer or request without an example.
        let gaps = |operation: &str, part: &str, body: &Value| -> Vec<String> {
            let content = body.get("content").and_then(Value::as_object);
            content
                .into_iter()
                .flatten()
                .filter(|(media_type, media)| {
                    needs_example(media_type)
                        && !has_own_example(media)
                        && !media
                            .get("schema")
                            .is_some_and(|schema| schema_has_example(doc, schema))
                })
                .map(|(media_type, _)| format!("{operation}: {part} ({media_type}) has no example"))
                .collect()
        };
        for (operation, object) in operations(doc) {
            let responses = object["responses"].as_object().expect("responses");
            for (status, response) in responses {
                if !status.starts_with('2') {
                    continue;
                }
                let response = resolve(doc, response);
                let declared = response
                    .get("content")
                    .and_then(Value::as_object)
                    .is_some_and(|content| !content.is_empty());
                if !declared && status != "204" {
                    missing.push(format!(
                        "{operation}: the {status} answer declares no body (only 204 may be empty)"
                    ));
                }
                missing.extend(gaps(&operation, &format!("the {status} answer"), response));
            }
            if let Some(body) = object.get("requestBody") {
                missing.extend(gaps(&operation, "the request body", resolve(doc, body)));
            }
        }
        missing
    }

    /// The schemas inside `schema` (itself included), with their JSON
    /// pointers below `at`: what `properties`, `items`, `oneOf` and the other
    /// applicators hold.
    fn schemas_in<'d>(schema: &'d Value, at: String, out: &mut Vec<(String, &'d Value)>) {
        let Some(object) = schema.as_object() else {
            return;
        };
        out.push((at.clone(), schema));
        for (keyword, value) in object {
            let at = format!("{at}/{keyword}");
            match keyword.as_str() {
                "properties" | "patternProperties" | "$defs" | "dependentSchemas" => {
                    for (name, sub) in value.as_object().into_iter().flatten() {
                        schemas_in(
                            sub,
                            format!("{at}/{}", name.replace('~', "~0").replace('/', "~1")),
                            out,
                        );
                    }
                }
                "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                    for (i, sub) in value.as_array().into_iter().flatten().enumerate() {
                        schemas_in(sub, format!("{at}/{i}"), out);
                    }
                }
                "items"
                | "additionalProperties"
                | "unevaluatedItems"
                | "unevaluatedProperties"
                | "contains"
                | "propertyNames"
                | "not"
                | "if"
                | "then"
                | "else" => {
                    schemas_in(value, at, out);
                }
                _ => {}
            }
        }
    }

    /// The examples that are not valid against their schema: a schema's
    /// `example`/`examples` against that schema, a media type's or a
    /// parameter's against theirs. `$ref`s resolve into the document's
    /// components, and formats (`date-time`, `date`) are checked.
    pub fn example_mismatches(doc: &Value) -> Vec<String> {
        let escape = |s: &str| s.replace('~', "~0").replace('/', "~1");
        // (where, schema, example)
        let mut cases: Vec<(String, &Value, &Value)> = Vec::new();
        let mut schemas = Vec::new();
        for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
            schemas_in(
                schema,
                format!("#/components/schemas/{}", escape(name)),
                &mut schemas,
            );
        }
        let mut media = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                let Some(operation) = item.get(method) else {
                    continue;
                };
                let at = format!("#/paths/{}/{method}", escape(path));
                for (status, response) in operation["responses"].as_object().expect("responses") {
                    let content = response.get("content").and_then(Value::as_object);
                    for (media_type, object) in content.into_iter().flatten() {
                        media.push((
                            format!("{at}/responses/{status}/content/{}", escape(media_type)),
                            object,
                        ));
                    }
                }
                let content = operation
                    .get("requestBody")
                    .and_then(|body| body.get("content"))
                    .and_then(Value::as_object);
                for (media_type, object) in content.into_iter().flatten() {
                    media.push((
                        format!("{at}/requestBody/content/{}", escape(media_type)),
                        object,
                    ));
                }
                for (i, parameter) in operation
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    media.push((format!("{at}/parameters/{i}"), parameter));
                }
            }
        }
        for (at, object) in &media {
            let Some(schema) = object.get("schema") else {
                continue;
            };
            schemas_in(schema, format!("{at}/schema"), &mut schemas);
            if let Some(example) = object.get("example") {
                cases.push((format!("{at}/example"), schema, example));
            }
            for (name, named) in object
                .get("examples")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(value) = named.get("value") {
                    cases.push((format!("{at}/examples/{name}"), schema, value));
                }
            }
        }
        for (at, schema) in &schemas {
            if let Some(example) = schema.get("example") {
                cases.push((format!("{at}/example"), schema, example));
            }
            for (i, example) in schema
                .get("examples")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                cases.push((format!("{at}/examples/{i}"), schema, example));
            }
        }
        if cases.is_empty() {
            return vec!["no examples found: has the walk lost its way?".into()];
        }
        let mut wrong = Vec::new();
        for (at, schema, example) in cases {
            // The schema, with the components its `$ref`s point into.
            let root = json!({ "components": doc["components"], "allOf": [schema] });
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&root);
            match validator {
                Err(e) => wrong.push(format!("{at}: the schema does not compile: {e}")),
                Ok(validator) => wrong.extend(
                    validator
                        .iter_errors(example)
                        .map(|error| format!("{at}{}: {error}", error.instance_path())),
                ),
            }
        }
        wrong
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiDoc, lint};
    use serde_json::Value;
    use utoipa::OpenApi;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes")
    }

    /// The rule: every 2xx answer but 204 declares its body, and every JSON
    /// or text body of a 2xx answer or of a request has an example, on the
    /// media type or on its schema (following `$ref`s into the components; an
    /// array's items' example counts for the array). Binary media types, and
    /// answers that are not 2xx (101, 303, errors), need none.
    #[test]
    fn every_success_answer_and_request_body_has_an_example() {
        let missing = lint::example_gaps(&document());
        assert!(
            missing.is_empty(),
            "{} bodies lack an example (add `#[schema(example = …)]` to the type, or \
             `example = …` to the operation's response or request_body):\n{}",
            missing.len(),
            missing.join("\n")
        );
    }

    /// Every example in the document must be valid against its schema: a
    /// schema's `example`/`examples` against that schema, a media type's or a
    /// parameter's against theirs. `$ref`s resolve into the document's
    /// components, and formats (`date-time`, `date`) are checked.
    #[test]
    fn every_example_matches_its_schema() {
        let wrong = lint::example_mismatches(&document());
        assert!(
            wrong.is_empty(),
            "{} examples do not match their schemas:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
}
