//! JSON Schema (the OpenAPI 3.1 dialect utoipa 5 emits) → an IR → zod
//! expressions and TypeScript types.
//!
//! Every keyword is either understood, or an annotation that does not change
//! what a value may be (`title`, `example`, `format`, …); anything else is an
//! error naming the schema's path, so nothing silently becomes `any`.

use std::collections::{BTreeSet, HashMap};

use serde_norway::{Mapping, Value};

/// Keywords that describe a value without constraining it: accepted anywhere
/// and ignored. (`format` is informative for the client: `date-time` stays a
/// string, `int64` is an integer either way; `uniqueItems` is the server's
/// promise and does not change the type.)
const ANNOTATIONS: &[&str] = &[
    "title",
    "default",
    "example",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "xml",
    "externalDocs",
    "discriminator",
    "format",
    "summary",
    "uniqueItems",
    "contentMediaType",
    "contentEncoding",
    "$comment",
    "$schema",
    "$id",
];

/// A schema: what values it admits, plus its description.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub kind: Kind,
    pub nullable: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `{}`: any JSON value (utoipa's `serde_json::Value`).
    Unknown,
    Null,
    String(StringRules),
    Integer(NumberRules),
    Number(NumberRules),
    Boolean,
    /// `enum` / `const`.
    Literals(Vec<Literal>),
    Array {
        items: Box<Schema>,
        min: Option<u64>,
        max: Option<u64>,
    },
    /// `prefixItems` with `items: false`.
    Tuple(Vec<Schema>),
    Object {
        properties: Vec<Property>,
        extra: Extra,
    },
    /// An object with no named properties: a map from string keys.
    Record {
        key: StringRules,
        value: Box<Schema>,
    },
    /// `$ref: '#/components/schemas/<name>'`.
    Ref(String),
    AllOf(Vec<Schema>),
    /// `oneOf` / `anyOf` (besides a `{type: 'null'}` member).
    Union(Vec<Schema>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StringRules {
    pub pattern: Option<String>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
}

/// Bounds, as JavaScript number literals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NumberRules {
    pub minimum: Option<String>,
    pub maximum: Option<String>,
    pub exclusive_minimum: Option<String>,
    pub exclusive_maximum: Option<String>,
    pub multiple_of: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    /// A JavaScript number literal.
    Num(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub name: String,
    pub schema: Schema,
    pub required: bool,
}

/// What an object with named properties does with other keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Extra {
    /// Not described (or `additionalProperties: true`): zod drops them.
    Strip,
    /// `additionalProperties: false`.
    Strict,
    /// `additionalProperties: <schema>`.
    Catchall(Box<Schema>),
}

impl Schema {
    pub fn new(kind: Kind) -> Self {
        Schema {
            kind,
            nullable: false,
            description: None,
        }
    }

    /// Every component name this schema refers to, in order of appearance.
    pub fn refs(&self, out: &mut Vec<String>) {
        match &self.kind {
            Kind::Ref(name) => out.push(name.clone()),
            Kind::Array { items, .. } => items.refs(out),
            Kind::Tuple(items) | Kind::AllOf(items) | Kind::Union(items) => {
                items.iter().for_each(|s| s.refs(out))
            }
            Kind::Object { properties, extra } => {
                properties.iter().for_each(|p| p.schema.refs(out));
                if let Extra::Catchall(s) = extra {
                    s.refs(out);
                }
            }
            Kind::Record { value, .. } => value.refs(out),
            Kind::Unknown
            | Kind::Null
            | Kind::String(_)
            | Kind::Integer(_)
            | Kind::Number(_)
            | Kind::Boolean
            | Kind::Literals(_) => {}
        }
    }
}

/// The keys of one schema object, with the ones read so far.
struct Keys<'a> {
    map: &'a Mapping,
    path: &'a str,
    used: BTreeSet<&'static str>,
}

impl<'a> Keys<'a> {
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        let value = self.map.get(key)?;
        self.used.insert(key);
        Some(value)
    }

    fn str(&mut self, key: &'static str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{}.{key}: expected a string", self.path)),
        }
    }

    fn bool(&mut self, key: &'static str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(format!("{}.{key}: expected true or false", self.path)),
        }
    }

    fn count(&mut self, key: &'static str) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(_) => Err(format!(
                "{}.{key}: expected a non-negative integer",
                self.path
            )),
        }
    }

    fn number(&mut self, key: &'static str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => js_number(v)
                .map(Some)
                .ok_or_else(|| format!("{}.{key}: expected a finite number", self.path)),
        }
    }

    /// Fails on any key that was neither read nor an annotation.
    fn finish(self) -> Result<(), String> {
        let unknown: Vec<String> = self
            .map
            .keys()
            .map(key_string)
            .filter(|k| {
                !self.used.contains(k.as_str())
                    && !ANNOTATIONS.contains(&k.as_str())
                    && !k.starts_with("x-")
            })
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}: unsupported schema keyword(s) {} here (the TypeScript client generator \
                 does not know how to express them; extend xtask/src/ts_client/schema.rs)",
                self.path,
                unknown
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }
}

/// A mapping key as text (YAML allows unquoted numbers as keys).
pub fn key_string(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// A YAML number as a JavaScript number literal.
fn js_number(value: &Value) -> Option<String> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(i) = n.as_i64() {
        return Some(i.to_string());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.to_string());
    }
    let f = n.as_f64()?;
    f.is_finite().then(|| format!("{f:?}"))
}

/// The component name in a `#/components/schemas/<name>` reference.
pub fn ref_name(value: &Value, prefix: &str, path: &str) -> Result<String, String> {
    let Value::String(target) = value else {
        return Err(format!("{path}.$ref: expected a string"));
    };
    let name = target
        .strip_prefix(prefix)
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| format!("{path}.$ref: `{target}` does not point into `{prefix}`"))?;
    Ok(name.replace("~1", "/").replace("~0", "~"))
}

const SCHEMA_REF: &str = "#/components/schemas/";

/// Parses one schema; errors name `path`.
pub fn parse(value: &Value, path: &str) -> Result<Schema, String> {
    let map = match value {
        Value::Mapping(map) => map,
        Value::Bool(true) => return Ok(Schema::new(Kind::Unknown)),
        _ => return Err(format!("{path}: a schema must be a mapping")),
    };
    let mut keys = Keys {
        map,
        path,
        used: BTreeSet::new(),
    };
    let description = keys.str("description")?;
    // OpenAPI 3.0's spelling; 3.1 puts "null" in `type`.
    let mut nullable = keys.bool("nullable")?.unwrap_or(false);
    let mut kind = if let Some(target) = keys.get("$ref") {
        Kind::Ref(ref_name(target, SCHEMA_REF, path)?)
    } else if let Some((word, items)) = keys
        .get("oneOf")
        .map(|v| ("oneOf", v))
        .or_else(|| keys.get("anyOf").map(|v| ("anyOf", v)))
    {
        let mut members = Vec::new();
        for (i, item) in sequence(items, &format!("{path}.{word}"))?
            .iter()
            .enumerate()
        {
            let member = parse(item, &format!("{path}.{word}[{i}]"))?;
            if member.kind == Kind::Null {
                nullable = true;
            } else {
                members.push(member);
            }
        }
        match members.len() {
            0 => Kind::Null,
            1 => {
                let only = members.remove(0);
                nullable |= only.nullable;
                let description = description.or(only.description);
                keys.finish()?;
                return Ok(Schema {
                    kind: only.kind,
                    nullable,
                    description,
                });
            }
            _ => Kind::Union(members),
        }
    } else if let Some(items) = keys.get("allOf") {
        let mut members = Vec::new();
        for (i, item) in sequence(items, &format!("{path}.allOf"))?
            .iter()
            .enumerate()
        {
            members.push(parse(item, &format!("{path}.allOf[{i}]"))?);
        }
        match members.len() {
            0 => return Err(format!("{path}.allOf: empty")),
            1 => {
                let only = members.remove(0);
                nullable |= only.nullable;
                let description = description.or(only.description);
                keys.finish()?;
                return Ok(Schema {
                    kind: only.kind,
                    nullable,
                    description,
                });
            }
            _ => Kind::AllOf(members),
        }
    } else if let Some(values) = keys.get("enum") {
        // `type` only restates what the values are; it may add "null".
        let (_, null_type) = types(&mut keys)?;
        nullable |= null_type;
        let mut literals = Vec::new();
        for (i, v) in sequence(values, &format!("{path}.enum"))?
            .iter()
            .enumerate()
        {
            match literal(v) {
                Some(l) => literals.push(l),
                None if v.is_null() => nullable = true,
                None => return Err(format!("{path}.enum[{i}]: unsupported enum value {v:?}")),
            }
        }
        if literals.is_empty() {
            Kind::Null
        } else {
            Kind::Literals(literals)
        }
    } else if let Some(value) = keys.get("const") {
        let (_, null_type) = types(&mut keys)?;
        nullable |= null_type;
        match literal(value) {
            Some(l) => Kind::Literals(vec![l]),
            None if value.is_null() => Kind::Null,
            None => return Err(format!("{path}.const: unsupported value {value:?}")),
        }
    } else {
        let (names, null_type) = types(&mut keys)?;
        nullable |= null_type;
        let names = if names.is_empty() && !null_type {
            // No `type`: infer it from the keywords, as utoipa leaves it out
            // only for `{}` (any value).
            if [
                "properties",
                "additionalProperties",
                "propertyNames",
                "required",
            ]
            .iter()
            .any(|k| map.contains_key(*k))
            {
                vec!["object".to_string()]
            } else if map.contains_key("items") || map.contains_key("prefixItems") {
                vec!["array".to_string()]
            } else {
                Vec::new()
            }
        } else {
            names
        };
        let mut kinds = Vec::new();
        for name in &names {
            kinds.push(typed(name, &mut keys)?);
        }
        match kinds.len() {
            0 if null_type => Kind::Null,
            0 => Kind::Unknown,
            1 => kinds.remove(0),
            _ => Kind::Union(kinds.into_iter().map(Schema::new).collect()),
        }
    };
    keys.finish()?;
    if matches!(kind, Kind::Unknown | Kind::Null) {
        nullable = false;
    }
    if let Kind::Union(members) = &mut kind {
        // `oneOf: [A, B]` where a member is itself nullable: lift it.
        for m in members.iter_mut() {
            if m.nullable && !matches!(m.kind, Kind::Unknown) {
                m.nullable = false;
                nullable = true;
            }
        }
    }
    Ok(Schema {
        kind,
        nullable,
        description,
    })
}

fn sequence<'a>(value: &'a Value, path: &str) -> Result<&'a Vec<Value>, String> {
    match value {
        Value::Sequence(items) => Ok(items),
        _ => Err(format!("{path}: expected a list")),
    }
}

fn literal(value: &Value) -> Option<Literal> {
    match value {
        Value::String(s) => Some(Literal::Str(s.clone())),
        Value::Bool(b) => Some(Literal::Bool(*b)),
        Value::Number(_) => js_number(value).map(Literal::Num),
        _ => None,
    }
}

/// The `type` keyword: its non-null type names, and whether it includes "null".
fn types(keys: &mut Keys<'_>) -> Result<(Vec<String>, bool), String> {
    let path = keys.path;
    let names: Vec<String> = match keys.get("type") {
        None => return Ok((Vec::new(), false)),
        Some(Value::String(name)) => vec![name.clone()],
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(name) => Ok(name.clone()),
                _ => Err(format!("{path}.type: expected type names")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(format!("{path}.type: expected a name or a list of names")),
    };
    let null = names.iter().any(|n| n == "null");
    Ok((names.into_iter().filter(|n| n != "null").collect(), null))
}

/// The schema for one `type` name, reading that type's keywords.
fn typed(name: &str, keys: &mut Keys<'_>) -> Result<Kind, String> {
    let path = keys.path;
    Ok(match name {
        "string" => Kind::String(string_rules(keys)?),
        "integer" => Kind::Integer(number_rules(keys)?),
        "number" => Kind::Number(number_rules(keys)?),
        "boolean" => Kind::Boolean,
        "array" => {
            let min = keys.count("minItems")?;
            let max = keys.count("maxItems")?;
            if let Some(prefix) = keys.get("prefixItems") {
                if !matches!(keys.get("items"), Some(Value::Bool(false))) {
                    return Err(format!(
                        "{path}: `prefixItems` without `items: false` (a tuple with rest elements) is not supported"
                    ));
                }
                let mut items = Vec::new();
                for (i, item) in sequence(prefix, &format!("{path}.prefixItems"))?
                    .iter()
                    .enumerate()
                {
                    items.push(parse(item, &format!("{path}.prefixItems[{i}]"))?);
                }
                Kind::Tuple(items)
            } else {
                let items = keys
                    .get("items")
                    .ok_or_else(|| format!("{path}: an array without `items`"))?;
                Kind::Array {
                    items: Box::new(parse(items, &format!("{path}.items"))?),
                    min,
                    max,
                }
            }
        }
        "object" => object(keys)?,
        other => return Err(format!("{path}.type: unsupported type `{other}`")),
    })
}

fn string_rules(keys: &mut Keys<'_>) -> Result<StringRules, String> {
    let pattern = keys.str("pattern")?;
    if let Some(p) = &pattern
        && p.contains(['\n', '\r', '\u{2028}', '\u{2029}'])
    {
        return Err(format!("{}.pattern: a line break in a pattern", keys.path));
    }
    Ok(StringRules {
        pattern,
        min_length: keys.count("minLength")?,
        max_length: keys.count("maxLength")?,
    })
}

fn number_rules(keys: &mut Keys<'_>) -> Result<NumberRules, String> {
    if matches!(keys.map.get("exclusiveMinimum"), Some(Value::Bool(_)))
        || matches!(keys.map.get("exclusiveMaximum"), Some(Value::Bool(_)))
    {
        return Err(format!(
            "{}: boolean exclusiveMinimum/exclusiveMaximum (OpenAPI 3.0) is not supported; 3.1 uses numbers",
            keys.path
        ));
    }
    Ok(NumberRules {
        minimum: keys.number("minimum")?,
        maximum: keys.number("maximum")?,
        exclusive_minimum: keys.number("exclusiveMinimum")?,
        exclusive_maximum: keys.number("exclusiveMaximum")?,
        multiple_of: keys.number("multipleOf")?,
    })
}

fn object(keys: &mut Keys<'_>) -> Result<Kind, String> {
    let path = keys.path;
    let required: Vec<String> = match keys.get("required") {
        None => Vec::new(),
        Some(v) => sequence(v, &format!("{path}.required"))?
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(format!("{path}.required: expected property names")),
            })
            .collect::<Result<_, _>>()?,
    };
    let mut properties = Vec::new();
    if let Some(props) = keys.get("properties") {
        let Value::Mapping(props) = props else {
            return Err(format!("{path}.properties: expected a mapping"));
        };
        for (name, schema) in props {
            let name = key_string(name);
            let schema = parse(schema, &format!("{path}.properties.{name}"))?;
            properties.push(Property {
                required: required.contains(&name),
                name,
                schema,
            });
        }
    }
    if let Some(missing) = required
        .iter()
        .find(|r| !properties.iter().any(|p| &p.name == *r))
    {
        return Err(format!(
            "{path}.required: `{missing}` is required but has no schema under `properties`"
        ));
    }
    let additional = match keys.get("additionalProperties") {
        None | Some(Value::Bool(true)) => None,
        Some(Value::Bool(false)) => Some(None),
        Some(schema) => Some(Some(parse(
            schema,
            &format!("{path}.additionalProperties"),
        )?)),
    };
    let key = match keys.get("propertyNames") {
        None => StringRules::default(),
        Some(names) => property_names(&parse(names, &format!("{path}.propertyNames"))?, path)?,
    };
    for unsupported in ["minProperties", "maxProperties", "patternProperties"] {
        if keys.map.contains_key(unsupported) {
            return Err(format!(
                "{path}: `{unsupported}` is not supported by the TypeScript client generator"
            ));
        }
    }
    if properties.is_empty() {
        return Ok(match additional {
            Some(None) => Kind::Object {
                properties,
                extra: Extra::Strict,
            },
            Some(Some(value)) => Kind::Record {
                key,
                value: Box::new(value),
            },
            None => Kind::Record {
                key,
                value: Box::new(Schema::new(Kind::Unknown)),
            },
        });
    }
    let extra = match additional {
        None => Extra::Strip,
        Some(None) => Extra::Strict,
        Some(Some(schema)) => Extra::Catchall(Box::new(schema)),
    };
    Ok(Kind::Object { properties, extra })
}

/// Map keys are strings in JSON: a string schema keeps its rules, an integer
/// one (`HashMap<u64, _>`) becomes a decimal-digits pattern.
fn property_names(schema: &Schema, path: &str) -> Result<StringRules, String> {
    match &schema.kind {
        Kind::String(rules) => Ok(rules.clone()),
        Kind::Integer(_) => Ok(StringRules {
            pattern: Some("^-?[0-9]+$".into()),
            ..StringRules::default()
        }),
        _ => Err(format!(
            "{path}.propertyNames: only string or integer keys are supported"
        )),
    }
}

// ---------------------------------------------------------------------------
// Emission.

/// What emission needs to know about the components.
pub struct Components<'a> {
    /// Component name → its TypeScript identifier.
    pub idents: &'a HashMap<String, String>,
    /// Component name → its schema (to see through references).
    pub schemas: &'a HashMap<String, Schema>,
}

impl Components<'_> {
    fn ident<'s>(&'s self, name: &'s str) -> &'s str {
        self.idents.get(name).map(String::as_str).unwrap_or(name)
    }

    /// Whether zod's output type makes a key with this schema optional even
    /// when it is required (zod does that for every type that admits
    /// `undefined`, i.e. `z.unknown()`).
    pub fn admits_undefined(&self, schema: &Schema) -> bool {
        self.admits_undefined_seen(schema, &mut Vec::new())
    }

    fn admits_undefined_seen<'s>(&'s self, schema: &'s Schema, seen: &mut Vec<&'s str>) -> bool {
        match &schema.kind {
            Kind::Unknown => true,
            Kind::Ref(name) => {
                if seen.contains(&name.as_str()) {
                    return false;
                }
                seen.push(name);
                self.schemas
                    .get(name)
                    .is_some_and(|s| self.admits_undefined_seen(s, seen))
            }
            Kind::Union(members) => members.iter().any(|m| self.admits_undefined_seen(m, seen)),
            Kind::AllOf(members) => members.iter().all(|m| self.admits_undefined_seen(m, seen)),
            _ => false,
        }
    }
}

/// How references are written in a zod expression.
pub struct ZodRefs<'a> {
    pub components: &'a Components<'a>,
    /// Components already declared above the expression: any other is
    /// referred to through `z.lazy`.
    pub declared: &'a dyn Fn(&str) -> bool,
}

const INDENT: &str = "  ";

/// A JavaScript string literal.
pub fn js_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JavaScript regular-expression literal for a JSON Schema (ECMA-262) pattern.
fn js_regex(pattern: &str) -> String {
    let mut out = String::from("/");
    let mut escaped = false;
    for c in pattern.chars() {
        if c == '/' && !escaped {
            out.push('\\');
        }
        escaped = c == '\\' && !escaped;
        out.push(c);
    }
    if escaped {
        // A trailing lone backslash would escape the closing slash.
        out.push('\\');
    }
    out.push('/');
    out
}

const RESERVED_WORDS: &[&str] = &[
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
    "undefined",
    "arguments",
    "eval",
];

pub fn is_reserved_word(s: &str) -> bool {
    RESERVED_WORDS.contains(&s)
}

/// Whether `s` can be written bare as an identifier (or a property name).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// A property name in an object literal or type: bare when possible.
pub fn property_key(name: &str) -> String {
    if is_identifier(name) {
        name.to_string()
    } else {
        js_string(name)
    }
}

/// A `/** … */` comment at `indent`, or nothing.
pub fn doc_comment(text: Option<&str>, indent: &str) -> String {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return String::new();
    };
    let text = text.replace("*/", "*\\/");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    if lines.len() == 1 {
        return format!("{indent}/** {} */\n", lines[0]);
    }
    let mut out = format!("{indent}/**\n");
    for line in lines {
        if line.is_empty() {
            out.push_str(&format!("{indent} *\n"));
        } else {
            out.push_str(&format!("{indent} * {line}\n"));
        }
    }
    out.push_str(&format!("{indent} */\n"));
    out
}

fn number_checks(out: &mut String, rules: &NumberRules) {
    let checks = [
        ("min", &rules.minimum),
        ("max", &rules.maximum),
        ("gt", &rules.exclusive_minimum),
        ("lt", &rules.exclusive_maximum),
        ("multipleOf", &rules.multiple_of),
    ];
    for (method, value) in checks {
        if let Some(v) = value {
            out.push_str(&format!(".{method}({v})"));
        }
    }
}

fn string_checks(out: &mut String, rules: &StringRules) {
    if let Some(n) = rules.min_length {
        out.push_str(&format!(".min({n})"));
    }
    if let Some(n) = rules.max_length {
        out.push_str(&format!(".max({n})"));
    }
    if let Some(p) = &rules.pattern {
        out.push_str(&format!(".regex({})", js_regex(p)));
    }
}

fn literal_js(l: &Literal) -> String {
    match l {
        Literal::Str(s) => js_string(s),
        Literal::Num(n) => n.clone(),
        Literal::Bool(b) => b.to_string(),
    }
}

/// A zod expression for `schema`, laid out for a line indented `depth` levels.
pub fn zod(schema: &Schema, refs: &ZodRefs<'_>, depth: usize) -> String {
    let mut out = match &schema.kind {
        Kind::Unknown => return "z.unknown()".into(),
        Kind::Null => return "z.null()".into(),
        Kind::String(rules) => {
            let mut out = String::from("z.string()");
            string_checks(&mut out, rules);
            out
        }
        Kind::Integer(rules) => {
            let mut out = String::from("z.number().int()");
            number_checks(&mut out, rules);
            out
        }
        Kind::Number(rules) => {
            let mut out = String::from("z.number()");
            number_checks(&mut out, rules);
            out
        }
        Kind::Boolean => "z.boolean()".into(),
        Kind::Literals(literals) => {
            if literals.len() > 1 && literals.iter().all(|l| matches!(l, Literal::Str(_))) {
                let values: Vec<String> = literals.iter().map(literal_js).collect();
                format!("z.enum([{}])", values.join(", "))
            } else if literals.len() == 1 {
                format!("z.literal({})", literal_js(&literals[0]))
            } else {
                let members: Vec<String> = literals
                    .iter()
                    .map(|l| format!("z.literal({})", literal_js(l)))
                    .collect();
                list("z.union([", &members, "])", depth)
            }
        }
        Kind::Array { items, min, max } => {
            let mut out = format!("z.array({})", zod(items, refs, depth));
            if let Some(n) = min {
                out.push_str(&format!(".min({n})"));
            }
            if let Some(n) = max {
                out.push_str(&format!(".max({n})"));
            }
            out
        }
        Kind::Tuple(items) => {
            let members: Vec<String> = items.iter().map(|s| zod(s, refs, depth + 1)).collect();
            list("z.tuple([", &members, "])", depth)
        }
        Kind::Object { properties, extra } => {
            let mut out = if properties.is_empty() {
                String::from("z.object({})")
            } else {
                let inner = INDENT.repeat(depth + 1);
                let mut out = String::from("z.object({\n");
                for p in properties {
                    out.push_str(&doc_comment(p.schema.description.as_deref(), &inner));
                    let optional = if p.required { "" } else { ".optional()" };
                    out.push_str(&format!(
                        "{inner}{}: {}{optional},\n",
                        property_key(&p.name),
                        zod(&p.schema, refs, depth + 1)
                    ));
                }
                out.push_str(&INDENT.repeat(depth));
                out.push_str("})");
                out
            };
            match extra {
                Extra::Strip => {}
                Extra::Strict => out.push_str(".strict()"),
                Extra::Catchall(value) => {
                    out.push_str(&format!(".catchall({})", zod(value, refs, depth)))
                }
            }
            out
        }
        Kind::Record { key, value } => {
            let mut k = String::from("z.string()");
            string_checks(&mut k, key);
            format!("z.record({k}, {})", zod(value, refs, depth))
        }
        Kind::Ref(name) => {
            let ident = refs.components.ident(name);
            if (refs.declared)(name) {
                ident.to_string()
            } else {
                format!("z.lazy(() => {ident})")
            }
        }
        Kind::AllOf(members) => {
            let mut members = members.iter().map(|m| zod(m, refs, depth));
            let mut out = members.next().unwrap_or_default();
            for m in members {
                out.push_str(&format!(".and({m})"));
            }
            out
        }
        Kind::Union(members) => {
            let members: Vec<String> = members.iter().map(|m| zod(m, refs, depth + 1)).collect();
            list("z.union([", &members, "])", depth)
        }
    };
    if schema.nullable {
        out.push_str(".nullable()");
    }
    out
}

/// `open a, b close` on one line when short and flat, else one item a line.
fn list(open: &str, items: &[String], close: &str, depth: usize) -> String {
    let flat = format!("{open}{}{close}", items.join(", "));
    if !flat.contains('\n') && flat.len() + depth * INDENT.len() <= 80 {
        return flat;
    }
    let inner = INDENT.repeat(depth + 1);
    let mut out = format!("{open}\n");
    for item in items {
        out.push_str(&format!("{inner}{item},\n"));
    }
    out.push_str(&INDENT.repeat(depth));
    out.push_str(close);
    out
}

/// The TypeScript type zod infers for `schema` (for recursive components,
/// which need it spelled out, and for method signatures).
pub fn ts_type(schema: &Schema, components: &Components<'_>, depth: usize) -> String {
    let base = match &schema.kind {
        Kind::Unknown => return "unknown".into(),
        Kind::Null => return "null".into(),
        Kind::String(_) => "string".into(),
        Kind::Integer(_) | Kind::Number(_) => "number".into(),
        Kind::Boolean => "boolean".into(),
        Kind::Literals(literals) => {
            let values: Vec<String> = literals.iter().map(literal_js).collect();
            values.join(" | ")
        }
        Kind::Array { items, .. } => format!("Array<{}>", ts_type(items, components, depth)),
        Kind::Tuple(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|s| ts_type(s, components, depth))
                .collect();
            format!("[{}]", items.join(", "))
        }
        Kind::Object { properties, extra } => {
            let mut out = if properties.is_empty() {
                "{}".to_string()
            } else {
                let inner = INDENT.repeat(depth + 1);
                let mut out = String::from("{\n");
                for p in properties {
                    out.push_str(&doc_comment(p.schema.description.as_deref(), &inner));
                    let ty = ts_type(&p.schema, components, depth + 1);
                    if p.required && !components.admits_undefined(&p.schema) {
                        out.push_str(&format!("{inner}{}: {ty};\n", property_key(&p.name)));
                    } else {
                        out.push_str(&format!(
                            "{inner}{}?: {} | undefined;\n",
                            property_key(&p.name),
                            ty
                        ));
                    }
                }
                out.push_str(&INDENT.repeat(depth));
                out.push('}');
                out
            };
            if let Extra::Catchall(value) = extra {
                out = format!(
                    "{out} & {{ [key: string]: {} }}",
                    ts_type(value, components, depth)
                );
            }
            out
        }
        Kind::Record { value, .. } => {
            format!("Record<string, {}>", ts_type(value, components, depth))
        }
        Kind::Ref(name) => components.ident(name).to_string(),
        Kind::AllOf(members) => {
            let members: Vec<String> = members
                .iter()
                .map(|m| {
                    let t = ts_type(m, components, depth);
                    if m.nullable || matches!(m.kind, Kind::Union(_) | Kind::Literals(_)) {
                        format!("({t})")
                    } else {
                        t
                    }
                })
                .collect();
            members.join(" & ")
        }
        Kind::Union(members) => {
            let members: Vec<String> = members
                .iter()
                .map(|m| ts_type(m, components, depth))
                .collect();
            members.join(" | ")
        }
    };
    if schema.nullable {
        format!("{base} | null")
    } else {
        base
    }
}
