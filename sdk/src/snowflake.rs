//! Discord ids (snowflakes) in a feature's configuration.
//!
//! Dashboards are JavaScript, and a JavaScript number holds 53 bits while a
//! snowflake needs 64, so the dashboard API sends ids as JSON strings. A
//! configuration field that holds a channel, role or user id should therefore
//! accept `"1100000000000000001"` as well as `1100000000000000001`. This module
//! gives you both halves:
//!
//! - the JSON Schema fragment for the manifest: [`schema`] and [`nullable_schema`];
//! - serde helpers for the config struct: [`de`] for a [`Snowflake`], [`de_opt`] for
//!   an `Option<Snowflake>` and [`de_vec`] for a `Vec<Snowflake>`;
//! - for the records a feature stores and its dashboard routes answer, which
//!   should *write* ids as strings too: the `with` modules [`string`],
//!   [`opt_string`] and [`vec_string`] (written as strings, read in either form).
//!
//! ```
//! use serde::Deserialize;
//! use townes_sdk::{Snowflake, json, snowflake};
//!
//! #[derive(Debug, Default, Deserialize, PartialEq)]
//! #[serde(default)]
//! struct Config {
//!     #[serde(deserialize_with = "snowflake::de_opt")]
//!     channel: Option<Snowflake>,
//!     #[serde(deserialize_with = "snowflake::de_vec")]
//!     roles: Vec<Snowflake>,
//! }
//!
//! // In `describe()`:
//! let schema = json!({
//!     "type": "object",
//!     "properties": {
//!         "channel": snowflake::nullable_schema(),
//!         "roles": {"type": "array", "items": snowflake::schema()}
//!     }
//! });
//! # let _ = schema;
//!
//! let config: Config = serde_json::from_value(json!({
//!     "channel": "1100000000000000001",
//!     "roles": [7, "8"]
//! })).unwrap();
//! assert_eq!(config.channel, Some(1_100_000_000_000_000_001));
//! assert_eq!(config.roles, [7, 8]);
//! ```
//!
//! `de_opt` and `de_vec` only run when the field is present: give the field (or
//! the struct) `#[serde(default)]` if it may be left out.
//!
//! The deserializers accept any `u64`, as an integer or as a string of decimal
//! digits; the schema is what limits ids to positive values without leading zeros.
//! Its strings have at most 19 digits (like the dashboard API's): a snowflake is
//! 63 bits, and every such string fits a `u64`, so a config that passed the schema
//! always deserializes.

use crate::Snowflake;
use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};
use serde_json::{Value, json};
use std::fmt;

/// The pattern a snowflake given as a string must match: 1 to 19 decimal
/// digits, no sign, no leading zero.
pub const PATTERN: &str = "^[1-9][0-9]{0,18}$";

/// The JSON Schema of a snowflake: a positive integer, or the same as a decimal
/// string (what dashboards send).
///
/// `{"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[1-9][0-9]{0,18}$"}]}`
pub fn schema() -> Value {
    json!({"anyOf": [integer(), string()]})
}

/// [`schema`], or `null` (for an `Option<Snowflake>` that may be unset).
pub fn nullable_schema() -> Value {
    json!({"anyOf": [integer(), string(), {"type": "null"}]})
}

fn integer() -> Value {
    json!({"type": "integer", "minimum": 1})
}

fn string() -> Value {
    json!({"type": "string", "pattern": PATTERN})
}

/// Deserializes a [`Snowflake`] from an integer or a decimal string:
/// `#[serde(deserialize_with = "townes_sdk::snowflake::de")]`.
pub fn de<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Snowflake, D::Error> {
    Id::deserialize(deserializer).map(|Id(id)| id)
}

/// Deserializes an `Option<Snowflake>`: `null`, an integer or a decimal string.
/// `#[serde(default, deserialize_with = "townes_sdk::snowflake::de_opt")]`.
pub fn de_opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Snowflake>, D::Error> {
    Option::<Id>::deserialize(deserializer).map(|id| id.map(|Id(id)| id))
}

/// Deserializes a `Vec<Snowflake>` whose items are integers or decimal strings
/// (mixed is fine): `#[serde(deserialize_with = "townes_sdk::snowflake::de_vec")]`.
pub fn de_vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Snowflake>, D::Error> {
    Vec::<Id>::deserialize(deserializer).map(|ids| ids.into_iter().map(|Id(id)| id).collect())
}

/// A [`Snowflake`] written as a JSON string and read from a string or an
/// integer: `#[serde(with = "townes_sdk::snowflake::string")]`.
pub mod string {
    pub use super::de as deserialize;
    use crate::Snowflake;
    use serde::Serializer;

    /// Writes the id as a decimal string.
    pub fn serialize<S: Serializer>(id: &Snowflake, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }
}

/// [`string`] for an `Option<Snowflake>` (`null` when none):
/// `#[serde(with = "townes_sdk::snowflake::opt_string")]`.
pub mod opt_string {
    pub use super::de_opt as deserialize;
    use crate::Snowflake;
    use serde::Serializer;

    /// Writes the id as a decimal string, or `null`.
    pub fn serialize<S: Serializer>(id: &Option<Snowflake>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.collect_str(id),
            None => s.serialize_none(),
        }
    }
}

/// [`string`] for a `Vec<Snowflake>`:
/// `#[serde(with = "townes_sdk::snowflake::vec_string")]`.
pub mod vec_string {
    pub use super::de_vec as deserialize;
    use crate::Snowflake;
    use serde::Serializer;

    /// Writes the ids as decimal strings.
    pub fn serialize<S: Serializer>(ids: &[Snowflake], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ids.iter().map(Snowflake::to_string))
    }
}

/// One id in either form.
struct Id(Snowflake);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IdVisitor)
    }
}

struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = Id;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Discord id: an unsigned integer or a string of decimal digits")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
        Ok(Id(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
        u64::try_from(v)
            .map(Id)
            .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
        // `u64::from_str` alone would also take a leading `+`.
        match v.parse() {
            Ok(id) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(Id(id)),
            _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Config {
        #[serde(deserialize_with = "de")]
        one: Snowflake,
        #[serde(deserialize_with = "de_opt")]
        maybe: Option<Snowflake>,
        #[serde(deserialize_with = "de_vec")]
        many: Vec<Snowflake>,
    }

    fn parse(config: Value) -> Result<Config, serde_json::Error> {
        serde_json::from_value(config)
    }

    /// 2^53 + 1: a JavaScript number cannot hold it.
    const BIG: Snowflake = 9_007_199_254_740_993;

    #[test]
    fn integers_still_read() {
        let config = parse(json!({"one": 5, "maybe": BIG, "many": [1, BIG, u64::MAX]})).unwrap();
        assert_eq!(
            config,
            Config {
                one: 5,
                maybe: Some(BIG),
                many: vec![1, BIG, u64::MAX]
            }
        );
    }

    #[test]
    fn strings_read_exactly() {
        let config = parse(json!({
            "one": "1100000000000000001",
            "maybe": "9007199254740993",
            "many": ["18446744073709551615", 7]
        }))
        .unwrap();
        assert_eq!(
            config,
            Config {
                one: 1_100_000_000_000_000_001,
                maybe: Some(BIG),
                many: vec![u64::MAX, 7]
            }
        );
    }

    #[test]
    fn null_and_missing_fields() {
        assert_eq!(parse(json!({"maybe": null})).unwrap(), Config::default());
        assert_eq!(parse(json!({})).unwrap(), Config::default());
        // From JSON text too, where serde_json drives `deserialize_option` itself.
        let text: Config = serde_json::from_str(r#"{"maybe": null, "one": "3"}"#).unwrap();
        assert_eq!((text.one, text.maybe), (3, None));
        let text: Config = serde_json::from_str(r#"{"maybe": "4", "many": ["5"]}"#).unwrap();
        assert_eq!((text.maybe, text.many), (Some(4), vec![5]));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            json!(-1),
            json!(1.5),
            json!(""),
            json!("abc"),
            json!("+1"),
            json!("-1"),
            json!(" 1"),
            json!("1e3"),
            json!("18446744073709551616"),
            json!(true),
            json!([1]),
        ] {
            let err = parse(json!({"one": bad})).unwrap_err();
            assert!(err.to_string().contains("Discord id"), "{bad}: {err}");
            assert!(parse(json!({"maybe": bad})).is_err(), "{bad}");
            assert!(parse(json!({"many": [bad]})).is_err(), "{bad}");
        }
        assert!(parse(json!({"one": null})).is_err());
        assert!(parse(json!({"many": "1"})).is_err(), "a list, not one id");
    }

    #[test]
    fn the_schema_takes_both_forms() {
        assert_eq!(
            schema(),
            json!({"anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": "^[1-9][0-9]{0,18}$"}
            ]})
        );
        let nullable = nullable_schema();
        let options = nullable["anyOf"].as_array().unwrap();
        assert_eq!(options[..2], schema()["anyOf"].as_array().unwrap()[..]);
        assert_eq!(options[2], json!({"type": "null"}));
        // Every string the pattern allows fits a u64.
        assert_eq!(PATTERN, "^[1-9][0-9]{0,18}$");
        assert!("9".repeat(19).parse::<u64>().is_ok());
    }
}
