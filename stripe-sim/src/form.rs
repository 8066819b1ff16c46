//! Stripe's request bodies: `application/x-www-form-urlencoded` with bracket
//! nesting (`metadata[tenant_id]=abc`, `line_items[0][price]=price_base`), which
//! is what every Stripe client (async-stripe through serde_qs) sends.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A parsed form, fields in the order sent (brackets decoded, `%5B` or not).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `key`; an empty value counts as absent (Stripe treats
    /// `field=` as "unset").
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The fields `prefix[key]=value` (one level, e.g. a metadata hash) by key.
    pub fn hash(&self, prefix: &str) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let key = k
                    .strip_prefix(prefix)?
                    .strip_prefix('[')?
                    .strip_suffix(']')?;
                (!key.contains('[') && !key.contains(']')).then(|| (key.to_string(), v.clone()))
            })
            .collect()
    }

    /// An array of hashes `prefix[N][field]=value`, by index (gaps allowed, as
    /// Stripe allows them).
    pub fn list(&self, prefix: &str) -> BTreeMap<usize, BTreeMap<String, String>> {
        let mut out: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
        for (k, v) in &self.0 {
            let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('[')) else {
                continue;
            };
            let Some((index, field)) = rest.split_once("][") else {
                continue;
            };
            let (Ok(index), Some(field)) = (index.parse::<usize>(), field.strip_suffix(']')) else {
                continue;
            };
            out.entry(index)
                .or_default()
                .insert(field.to_string(), v.clone());
        }
        out
    }

    /// The fields sorted, for comparing two requests' parameters regardless of
    /// the order a client happened to send them in.
    pub fn sorted(&self) -> Vec<(String, String)> {
        let mut fields = self.0.clone();
        fields.sort();
        fields
    }
}

/// A string hash as a JSON object (metadata, a meter event's payload).
pub fn object(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bracket_nesting_encoded_or_not() {
        let f = Form::parse(
            b"mode=subscription&line_items%5B0%5D%5Bprice%5D=price_base&line_items[0][quantity]=2\
              &line_items[1][price]=price_x&subscription_data[trial_period_days]=30\
              &subscription_data[metadata][tenant_id]=t1&metadata[tenant_id]=abc&metadata[a+b]=c%26d",
        );
        assert_eq!(f.get("mode"), Some("subscription"));
        assert_eq!(f.get("subscription_data[trial_period_days]"), Some("30"));
        let items = f.list("line_items");
        assert_eq!(items.len(), 2);
        assert_eq!(items[&0]["price"], "price_base");
        assert_eq!(items[&0]["quantity"], "2");
        assert_eq!(items[&1]["price"], "price_x");
        let meta = f.hash("metadata");
        assert_eq!(meta.len(), 2);
        assert_eq!(meta["tenant_id"], "abc");
        assert_eq!(meta["a b"], "c&d");
        assert_eq!(f.hash("subscription_data[metadata]")["tenant_id"], "t1");
        // `subscription_data[metadata][…]` is not a key of `subscription_data`.
        assert_eq!(
            f.hash("subscription_data").keys().collect::<Vec<_>>(),
            vec!["trial_period_days"]
        );
    }

    #[test]
    fn empty_values_are_absent() {
        let f = Form::parse(b"email=&name=Ann");
        assert_eq!(f.get("email"), None);
        assert_eq!(f.get("name"), Some("Ann"));
    }
}
