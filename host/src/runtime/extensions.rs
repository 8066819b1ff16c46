//! The optional exports (world `extensions`): `api`, the dashboard routes a
//! feature serves, and `lifecycle`, its enabled / disabled hooks (0.1.1);
//! `moderation-events`, moderation done outside the platform (0.1.2);
//! `guild-ready`, the platform back in a guild after being away, and
//! `guild-commands`, commands a feature defines per guild (0.1.3). A
//! component built against an older contract lacks some and loads as before;
//! each is looked up beside the required `feature` exports.
//!
//! The routes a component declares are read once at install (with
//! `describe`), validated here, and stored in the catalogue beside the
//! manifest, so the OpenAPI document and the router never ask the component
//! again.

use super::HostState;
use crate::wit::Manifest;
use crate::wit::extensions::{
    ApiIndices, GuildCommandsIndices, GuildReadyIndices, LifecycleIndices, Method,
    ModerationEventsIndices, Route,
};
use serde_json::Value;
use std::collections::HashSet;
use wasmtime::component::InstancePre;

/// The optional exports a loaded component has.
pub struct Extensions {
    pub api: Option<ApiIndices>,
    pub lifecycle: Option<LifecycleIndices>,
    pub moderation_events: Option<ModerationEventsIndices>,
    pub guild_ready: Option<GuildReadyIndices>,
    pub guild_commands: Option<GuildCommandsIndices>,
}

impl Extensions {
    /// Looks the optional exports up; a component lacking one simply has none.
    pub fn find(pre: &InstancePre<HostState>) -> Extensions {
        Extensions {
            api: ApiIndices::new(pre).ok(),
            lifecycle: LifecycleIndices::new(pre).ok(),
            moderation_events: ModerationEventsIndices::new(pre).ok(),
            guild_ready: GuildReadyIndices::new(pre).ok(),
            guild_commands: GuildCommandsIndices::new(pre).ok(),
        }
    }
}

/// Routes one feature may declare.
pub const MAX_ROUTES: usize = 64;
/// The longest JSON Schema a route may carry, in bytes.
pub const MAX_SCHEMA_BYTES: usize = 16 * 1024;
/// Segments in a route's path.
const MAX_SEGMENTS: usize = 8;

/// The key under which the catalogue's manifest JSON keeps the routes.
const ROUTES_KEY: &str = "routes";

/// The key under which it keeps the interfaces requested by importing them.
const IMPORTS_KEY: &str = "imports";

/// The manifest as the catalogue stores it: the manifest's own fields plus
/// the declared routes and the interfaces the component requests by importing
/// them (`ai`, `http`; ADR 0024), which `Manifest` itself, a 0.1.0 record,
/// cannot hold.
pub fn stored_manifest(
    manifest: &Manifest,
    routes: &[Route],
    imports: &[String],
) -> serde_json::Result<Value> {
    let mut value = serde_json::to_value(manifest)?;
    if !routes.is_empty() {
        value[ROUTES_KEY] = serde_json::to_value(routes)?;
    }
    if !imports.is_empty() {
        value[IMPORTS_KEY] = serde_json::to_value(imports)?;
    }
    Ok(value)
}

/// The interfaces requested by importing them, stored with a catalogue
/// manifest (none for older rows and components that import neither).
pub fn stored_imports(manifest: &Value) -> Vec<String> {
    manifest
        .get(IMPORTS_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The routes stored with a catalogue manifest (none for older rows).
pub fn stored_routes(manifest: &Value) -> serde_json::Result<Vec<Route>> {
    match manifest.get(ROUTES_KEY) {
        Some(routes) => serde_json::from_value(routes.clone()),
        None => Ok(Vec::new()),
    }
}

/// Checks what `api.routes` returned: well-formed, unique paths and
/// operation ids, schemas that compile, bodies only where HTTP has them.
pub fn validate_routes(routes: &[Route]) -> Result<(), String> {
    if routes.len() > MAX_ROUTES {
        return Err(format!(
            "{} routes declared; at most {MAX_ROUTES}",
            routes.len()
        ));
    }
    let mut seen = HashSet::new();
    let mut operations = HashSet::new();
    for route in routes {
        let name = format!("{} {}", method_name(route.method), route.path);
        let params = path_segments(&route.path).map_err(|why| format!("route `{name}`: {why}"))?;
        let shape: Vec<_> = params
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => *l,
                Segment::Param(_) => "{}",
            })
            .collect();
        if !seen.insert((method_name(route.method), shape)) {
            return Err(format!("route `{name}` is declared twice"));
        }
        let op = &route.operation_id;
        let camel = op.len() <= 64
            && op.starts_with(|c: char| c.is_ascii_lowercase())
            && op.chars().all(|c| c.is_ascii_alphanumeric());
        if !camel {
            return Err(format!(
                "route `{name}`: operation id `{}` must be camelCase letters and digits (1-64), e.g. `listTickets`",
                op.escape_debug()
            ));
        }
        if !operations.insert(op.as_str()) {
            return Err(format!("operation id `{op}` is used twice"));
        }
        if route.summary.trim().is_empty() || route.summary.chars().count() > 200 {
            return Err(format!(
                "route `{name}`: summary must be 1 to 200 characters"
            ));
        }
        let takes_body = matches!(route.method, Method::Post | Method::Put | Method::Patch);
        match (&route.request_schema, takes_body) {
            (Some(_), false) => {
                return Err(format!(
                    "route `{name}`: a {} request has no body; drop its request schema",
                    method_name(route.method)
                ));
            }
            (Some(schema), true) => check_schema(schema)
                .map_err(|why| format!("route `{name}`: request schema: {why}"))?,
            (None, _) => {}
        }
        check_schema(&route.response_schema)
            .map_err(|why| format!("route `{name}`: response schema: {why}"))?;
    }
    Ok(())
}

fn check_schema(schema: &str) -> Result<(), String> {
    if schema.len() > MAX_SCHEMA_BYTES {
        return Err(format!(
            "{} bytes; at most {MAX_SCHEMA_BYTES}",
            schema.len()
        ));
    }
    let value: Value = serde_json::from_str(schema).map_err(|e| format!("not JSON: {e}"))?;
    jsonschema::validator_for(&value).map_err(|e| format!("not a JSON Schema: {e}"))?;
    Ok(())
}

/// One segment of a route's path.
#[derive(Debug, PartialEq)]
enum Segment<'a> {
    Literal(&'a str),
    Param(&'a str),
}

/// `/tickets/{id}/claim` → literal, parameter, literal. Literals are
/// lower-case letters, digits and dashes; parameters snake_case names.
fn path_segments(path: &str) -> Result<Vec<Segment<'_>>, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("the path must start with `/`".into());
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut segments = Vec::new();
    let mut names = HashSet::new();
    for part in rest.split('/') {
        let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => {
                let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
                    && name.len() <= 32
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !ok || !names.insert(name) {
                    return Err(format!(
                        "parameter `{{{name}}}` must be a unique snake_case name"
                    ));
                }
                Segment::Param(name)
            }
            None => {
                let ok = !part.is_empty()
                    && part.len() <= 32
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !ok {
                    return Err(format!(
                        "segment `{}` must be 1-32 lower-case letters, digits and dashes, or a `{{parameter}}`",
                        part.escape_debug()
                    ));
                }
                Segment::Literal(part)
            }
        };
        segments.push(segment);
    }
    if segments.len() > MAX_SEGMENTS {
        return Err(format!("at most {MAX_SEGMENTS} segments"));
    }
    Ok(segments)
}

/// The route a request reaches and the values of its parameters. A literal
/// segment beats a parameter (`/tickets/stats` before `/tickets/{id}`).
/// Parameter values are 1-100 characters of `A-Z a-z 0-9 . _ -`: ids and
/// names, never something a feature must decode or could be confused by.
pub fn match_route<'r>(routes: &'r [Route], method: Method, path: &str) -> Option<Matched<'r>> {
    let parts: Vec<&str> = match path.strip_prefix('/')? {
        "" => Vec::new(),
        rest => rest.split('/').collect(),
    };
    // (literal segments, the match): the most literals wins.
    let mut best: Option<(usize, Matched<'r>)> = None;
    for route in routes.iter().filter(|r| r.method == method) {
        let Ok(segments) = path_segments(&route.path) else {
            continue;
        };
        if segments.len() != parts.len() {
            continue;
        }
        let mut literals = 0;
        let mut params = Vec::new();
        let fits = segments
            .iter()
            .zip(&parts)
            .all(|(segment, part)| match segment {
                Segment::Literal(l) => {
                    literals += 1;
                    l == part
                }
                Segment::Param(name) => {
                    let ok = (1..=100).contains(&part.len())
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
                    params.push((name.to_string(), part.to_string()));
                    ok
                }
            });
        if fits && best.as_ref().is_none_or(|(n, _)| literals > *n) {
            best = Some((literals, (route, params)));
        }
    }
    best.map(|(_, matched)| matched)
}

/// A route and its parameters' values, by name.
pub type Matched<'r> = (&'r Route, Vec<(String, String)>);

pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Method, path: &str, op: &str) -> Route {
        Route {
            method,
            path: path.into(),
            operation_id: op.into(),
            summary: "does a thing".into(),
            request_schema: None,
            response_schema: r#"{"type":"object"}"#.into(),
        }
    }

    #[test]
    fn literals_beat_parameters_and_parameters_are_plain() {
        let routes = [
            route(Method::Get, "/tickets/{id}", "getTicket"),
            route(Method::Get, "/tickets/stats", "ticketStats"),
            route(Method::Post, "/tickets/{id}/claim", "claimTicket"),
        ];
        let (r, params) = match_route(&routes, Method::Get, "/tickets/42").unwrap();
        assert_eq!(r.operation_id, "getTicket");
        assert_eq!(params, [("id".to_string(), "42".to_string())]);
        let (r, _) = match_route(&routes, Method::Get, "/tickets/stats").unwrap();
        assert_eq!(r.operation_id, "ticketStats");
        assert!(match_route(&routes, Method::Get, "/tickets/42/claim").is_none());
        assert!(match_route(&routes, Method::Post, "/tickets/42/claim").is_some());
        for hostile in [
            "/tickets/..%2F",
            "/tickets/a%20b",
            "/tickets/",
            "/tickets/<x>",
        ] {
            assert!(
                match_route(&routes, Method::Get, hostile).is_none(),
                "{hostile}"
            );
        }
    }

    #[test]
    fn bad_declarations_are_refused_with_the_reason() {
        let ok = [route(Method::Get, "/tickets", "listTickets")];
        assert_eq!(validate_routes(&ok), Ok(()));
        let cases = [
            (route(Method::Get, "tickets", "listTickets"), "start with"),
            (route(Method::Get, "/Tickets", "listTickets"), "lower-case"),
            (route(Method::Get, "/t/{a}/{a}", "listTickets"), "unique"),
            (route(Method::Get, "/tickets", "list_tickets"), "camelCase"),
            (
                Route {
                    request_schema: Some("{}".into()),
                    ..route(Method::Get, "/tickets", "listTickets")
                },
                "has no body",
            ),
            (
                Route {
                    response_schema: r#"{"type": 12}"#.into(),
                    ..route(Method::Get, "/tickets", "listTickets")
                },
                "not a JSON Schema",
            ),
        ];
        for (bad, why) in cases {
            let error = validate_routes(&[bad]).unwrap_err();
            assert!(error.contains(why), "{error}");
        }
        let twice = [
            route(Method::Get, "/tickets/{id}", "getTicket"),
            route(Method::Get, "/tickets/{ticket}", "getOther"),
        ];
        assert!(validate_routes(&twice).unwrap_err().contains("twice"));
        let same_op = [
            route(Method::Get, "/a", "getA"),
            route(Method::Get, "/b", "getA"),
        ];
        assert!(validate_routes(&same_op).unwrap_err().contains("twice"));
    }
}
