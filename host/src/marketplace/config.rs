//! Feature configuration checked against the feature's own JSON Schema.

use serde::Serialize;
use serde_json::Value;

/// One reason a configuration was refused, at a JSON Pointer into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// Where in the configuration, e.g. `/welcome_channel` (empty for the whole).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "(the configuration)"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// The largest configuration a guild may set for a feature, as compact JSON.
/// Every invocation carries it into the sandbox and every cached guild policy
/// holds it, so it is bounded whatever the feature's schema allows.
pub const MAX_CONFIG_BYTES: usize = 32 * 1024;

/// Validates `config` against `schema` (a JSON Schema as text), returning every
/// problem found. A schema that does not compile is reported at the path `#schema`.
pub fn validate(schema: &str, config: &Value) -> Result<(), Vec<ConfigProblem>> {
    let size = config.to_string().len();
    if size > MAX_CONFIG_BYTES {
        return Err(vec![ConfigProblem {
            path: String::new(),
            message: format!(
                "{size} bytes of JSON; a configuration holds at most {MAX_CONFIG_BYTES}: keep long texts and lists in the feature's own data"
            ),
        }]);
    }
    let schema: Value = serde_json::from_str(schema).map_err(|e| {
        vec![ConfigProblem {
            path: "#schema".into(),
            message: format!("the feature's schema is not JSON: {e}"),
        }]
    })?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| {
        vec![ConfigProblem {
            path: "#schema".into(),
            message: format!("the feature's schema is invalid: {e}"),
        }]
    })?;
    let problems: Vec<_> = validator
        .iter_errors(config)
        .map(|e| ConfigProblem {
            path: e.instance_path().to_string(),
            message: e.to_string(),
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"{"type":"object","properties":{"greeting":{"type":"string","maxLength":5},"channel":{"type":["integer","null"]}},"additionalProperties":false}"#;

    #[test]
    fn every_problem_is_named_by_its_path() {
        assert!(validate(SCHEMA, &json!({"greeting": "hi", "channel": 5})).is_ok());
        let problems =
            validate(SCHEMA, &json!({"greeting": "far too long", "channel": "x"})).unwrap_err();
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths.len(), 2, "{problems:?}");
        assert!(
            paths.contains(&"/greeting") && paths.contains(&"/channel"),
            "{problems:?}"
        );
        let extra = validate(SCHEMA, &json!({"colour": 1})).unwrap_err();
        assert!(extra[0].message.contains("colour"), "{extra:?}");
    }

    #[test]
    fn a_configuration_is_bounded_whatever_the_schema_allows() {
        let open = r#"{"type":"object"}"#;
        let big = json!({ "text": "x".repeat(MAX_CONFIG_BYTES) });
        let problems = validate(open, &big).unwrap_err();
        assert!(problems[0].message.contains("at most"), "{problems:?}");
        assert!(validate(open, &json!({ "text": "x".repeat(1000) })).is_ok());
    }

    #[test]
    fn a_broken_schema_is_reported_as_the_features_fault() {
        let problems = validate(r#"{"type": 12}"#, &json!({})).unwrap_err();
        assert_eq!(problems[0].path, "#schema");
    }
}
