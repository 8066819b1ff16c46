//! Discord ids in the API are JSON strings: a snowflake needs 64 bits and
//! JavaScript numbers lose precision above 2^53 (ADR 0007). Requests may send
//! either a string or a number; responses always send strings.
//!
//! A snowflake is 63 bits (Discord keeps them in signed 64-bit integers), so
//! it has at most 19 digits; the API accepts exactly the strings of 1 to 19
//! digits, which all fit, and says so in the schema (`^[0-9]{1,19}$`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Snowflake(pub u64);

/// What a Discord id looks like in a request, as the schema states it.
pub const PATTERN: &str = "^[0-9]{1,19}$";

/// A Discord id from its decimal form: 1 to 19 ASCII digits (so it always fits).
pub fn parse(v: &str) -> Result<u64, String> {
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{v}` is not a Discord id (1 to 19 digits)"));
    }
    v.parse()
        .map_err(|_| format!("`{v}` is not a Discord id (1 to 19 digits)"))
}

impl fmt::Display for Snowflake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Snowflake {
    fn from(id: u64) -> Snowflake {
        Snowflake(id)
    }
}

impl Serialize for Snowflake {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Snowflake {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Snowflake, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Snowflake;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Discord id: a string of 1 to 19 digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Snowflake, E> {
                parse(v).map(Snowflake).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Snowflake, E> {
                Ok(Snowflake(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Snowflake, E> {
                u64::try_from(v)
                    .map(Snowflake)
                    .map_err(|_| E::custom("a Discord id is not negative"))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl utoipa::PartialSchema for Snowflake {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(PATTERN))
            .description(Some(
                "A Discord id (snowflake), as a string: it needs 64 bits.",
            ))
            .examples([serde_json::json!("1100000000000000001")])
            .into()
    }
}

impl utoipa::ToSchema for Snowflake {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Snowflake")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn above_two_to_the_53_survives_a_round_trip_as_a_string() {
        let id = Snowflake(i64::MAX as u64);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"9223372036854775807\"");
        assert_eq!(serde_json::from_str::<Snowflake>(&json).unwrap(), id);
        assert_eq!(
            serde_json::from_str::<Snowflake>("42").unwrap(),
            Snowflake(42)
        );
        for bad in [
            "\"\"",
            "\"12a\"",
            "\"-1\"",
            "-1",
            "\"123456789012345678901\"",
            // 20 digits: more than a snowflake has, and past u64 here.
            "\"71385351550064403219\"",
        ] {
            assert!(serde_json::from_str::<Snowflake>(bad).is_err(), "{bad}");
        }
    }
}
