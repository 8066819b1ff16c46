//! A feature's JSON against the JSON Schemas it declares — its routes'
//! requests and answers and their examples — checked natively the way the
//! host checks them (draft 2020-12, formats included), so a test fails where
//! the dashboard would get a 422 or a 502.

use super::MockHost;
use crate::{ApiRequest, Error, Feature, Route};
use serde_json::Value;

/// What is wrong with `value` under `schema`; empty when it is valid. A
/// schema that does not compile is one problem.
pub fn schema_problems(schema: &Value, value: &Value) -> Vec<String> {
    let validator = match jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
    {
        Ok(validator) => validator,
        Err(e) => return vec![format!("the schema does not compile: {e}")],
    };
    validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// What is wrong with a feature's declared routes as the API document shows
/// them: schemas that are not JSON or do not compile, and `examples` that do
/// not match their schema.
pub fn route_problems(routes: &[Route]) -> Vec<String> {
    let mut problems = Vec::new();
    for route in routes {
        let name = format!("{:?} {}", route.method, route.path);
        let schemas = [("request", route.request_schema.as_deref())]
            .into_iter()
            .chain([("response", Some(route.response_schema.as_str()))]);
        for (part, schema) in schemas {
            let Some(schema) = schema else { continue };
            let schema: Value = match serde_json::from_str(schema) {
                Ok(schema) => schema,
                Err(e) => {
                    problems.push(format!("{name}: the {part} schema is not JSON: {e}"));
                    continue;
                }
            };
            let examples = schema["examples"].as_array().cloned().unwrap_or_default();
            for (i, example) in examples.iter().enumerate() {
                for problem in schema_problems(&schema, example) {
                    problems.push(format!("{name}: {part} example {i}: {problem}"));
                }
            }
        }
    }
    problems
}

/// Calls feature `F`'s route `request.route` as the host would: the route
/// must be declared for the method, the body must match its request schema,
/// and a success must be a 2xx whose JSON matches its response schema (each
/// a panic naming the problem). Returns the status and the answer's JSON, or
/// the feature's error.
pub fn call_route<F: Feature>(host: &MockHost, request: ApiRequest) -> Result<(u16, Value), Error> {
    let routes = F::routes();
    let declared = routes
        .iter()
        .find(|r| r.method == request.method && r.path == request.route)
        .unwrap_or_else(|| panic!("{:?} {} is not declared", request.method, request.route));
    match (&request.body, &declared.request_schema) {
        (Some(body), Some(schema)) => {
            let problems = schema_problems(&parse(schema), &parse(body));
            assert!(
                problems.is_empty(),
                "request to {}: {problems:?}",
                request.route
            );
        }
        (Some(_), None) => panic!("{} takes no body", request.route),
        (None, _) => {}
    }
    let route = request.route.clone();
    let response = F::on_api(&host.context(), request)?;
    assert!(
        (200..300).contains(&response.status),
        "{route} answered {}",
        response.status
    );
    let value = parse(&response.body);
    let problems = schema_problems(&parse(&declared.response_schema), &value);
    assert!(
        problems.is_empty(),
        "answer of {route}: {problems:?}\n{value}"
    );
    Ok((response.status, value))
}

fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"))
}
