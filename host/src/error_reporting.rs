//! Optional error reporting to Sentry (`SENTRY_DSN`), with secrets scrubbed.
//!
//! Error-level log lines become Sentry events and warnings their breadcrumbs;
//! panics are reported too. Before anything leaves the process, every string
//! in the event (message, exception values, breadcrumbs, extra data, tags) is
//! scrubbed of: the values of the secret settings this process was given, and
//! anything shaped like a credential (our API and operator keys, bearer
//! tokens, Stripe keys and webhook secrets, passwords in URLs). Sentry's own
//! PII collection (IP addresses, user data) stays off.

use regex::Regex;
use sentry::protocol::Event;
use std::sync::{Arc, LazyLock};

/// The variable naming the Sentry project to report to.
pub const SENTRY_DSN: &str = "SENTRY_DSN";

/// Settings whose values are secrets: scrubbed wherever they appear.
pub const SECRET_SETTINGS: &[&str] = &[
    "DISCORD_TOKEN",
    "DISCORD_CLIENT_SECRET",
    "DATABASE_URL",
    "REDIS_URL",
    "STRIPE_SECRET",
    "STRIPE_WEBHOOK_SECRET",
    "TOWNESDEV_LICENSE",
    "TOWNES_LICENSE_SIGNING_KEY",
    SENTRY_DSN,
];

/// What a scrubbed secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Credential shapes, whatever setting (or request) they came from.
static CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b(?:tdk|tdo)_[A-Za-z0-9_-]{8,}",
        r"|\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}",
        r"|\bwhsec_[A-Za-z0-9+/=]{8,}",
        r"|\bbearer\s+[A-Za-z0-9._~+/=-]{8,}",
        r"|\bbot\s+[A-Za-z0-9._-]{20,}",
    ))
    .expect("valid regex")
});

/// The password of a `scheme://user:password@host` URL.
static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?P<head>[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@").expect("valid regex")
});

/// Removes secrets from text.
#[derive(Clone, Debug, Default)]
pub struct Scrubber {
    /// Secret values, longest first (a secret containing another is replaced
    /// whole).
    secrets: Vec<String>,
}

impl Scrubber {
    /// Scrubs `secrets` (values shorter than 6 characters are ignored: they
    /// would redact ordinary words) and every credential shape.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Scrubber {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| s.len() >= 6)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Scrubber { secrets }
    }

    /// The values of [`SECRET_SETTINGS`] in this process's environment.
    pub fn from_env() -> Scrubber {
        Scrubber::new(
            SECRET_SETTINGS
                .iter()
                .filter_map(|name| std::env::var(name).ok()),
        )
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        let text = URL_PASSWORD.replace_all(&text, format!("${{head}}{REDACTED}@"));
        CREDENTIALS.replace_all(&text, REDACTED).into_owned()
    }

    /// `event` with every string in it scrubbed. The event is walked as JSON,
    /// so a field added to Sentry's protocol later is covered too.
    pub fn scrub_event(&self, event: Event<'static>) -> Option<Event<'static>> {
        let mut value = match serde_json::to_value(&event) {
            Ok(value) => value,
            // Never send what could not be checked.
            Err(_) => return None,
        };
        self.scrub_value(&mut value);
        serde_json::from_value(value).ok()
    }

    fn scrub_value(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => *s = self.scrub(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.scrub_value(v)),
            _ => {}
        }
    }
}

/// Starts reporting to `dsn` (when set and not empty). Keep the guard for the
/// life of the process: dropping it sends what is queued (waiting at most 2 s).
pub fn init(dsn: Option<&str>) -> anyhow::Result<Option<sentry::ClientInitGuard>> {
    let Some(dsn) = dsn.map(str::trim).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let dsn: sentry::types::Dsn = dsn.parse().map_err(|e| {
        anyhow::anyhow!(
            "{SENTRY_DSN} is not a Sentry DSN ({e}); copy it from the Sentry project's Client Keys page (https://KEY@HOST/PROJECT), or unset it"
        )
    })?;
    let scrubber = Arc::new(Scrubber::from_env());
    let breadcrumbs = scrubber.clone();
    let guard = sentry::init(sentry::ClientOptions {
        dsn: Some(dsn),
        release: Some(concat!("townes@", env!("CARGO_PKG_VERSION")).into()),
        environment: std::env::var("SENTRY_ENVIRONMENT").ok().map(Into::into),
        send_default_pii: false,
        before_send: Some(Arc::new(move |event| scrubber.scrub_event(event))),
        before_breadcrumb: Some(Arc::new(move |mut crumb| {
            crumb.message = crumb.message.map(|m| breadcrumbs.scrub(&m));
            crumb.data.clear();
            Some(crumb)
        })),
        ..Default::default()
    });
    Ok(Some(guard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentry::protocol::{Breadcrumb, Exception, Value};

    #[test]
    fn secrets_and_credential_shapes_are_replaced() {
        let scrubber = Scrubber::new(["MTIzNDU2Nzg5.discord-token-value".to_string()]);
        let text = "token MTIzNDU2Nzg5.discord-token-value, key tdk_AbCdEf012345678, \
                    stripe sk_live_51HxYzAbCdEf, hook whsec_abcdefghijk, \
                    Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x, \
                    db postgres://townes:hunter2@db:5432/townes";
        let scrubbed = scrubber.scrub(text);
        for secret in [
            "discord-token-value",
            "tdk_AbCdEf",
            "sk_live_51",
            "whsec_abc",
            "eyJhbGci",
            "hunter2",
        ] {
            assert!(!scrubbed.contains(secret), "{secret} left in {scrubbed}");
        }
        assert!(scrubbed.contains("postgres://townes:[redacted]@db:5432/townes"));
        // Ordinary words and short values stay.
        assert_eq!(
            Scrubber::new(["abc".to_string()]).scrub("abc token"),
            "abc token"
        );
    }

    #[test]
    fn every_string_of_an_event_is_scrubbed() {
        let scrubber = Scrubber::new(["s3cr3t-value".to_string()]);
        let mut event = Event {
            message: Some("failed with s3cr3t-value".into()),
            ..Default::default()
        };
        event.exception.values.push(Exception {
            ty: "Error".into(),
            value: Some("Bearer abcdefghijklmnop rejected".into()),
            ..Default::default()
        });
        event.extra.insert(
            "url".into(),
            Value::from("redis://:s3cr3t-value@cache:6379"),
        );
        event
            .tags
            .insert("key".into(), "tdo_0123456789abcdef".into());
        event.breadcrumbs.values.push(Breadcrumb {
            message: Some("using s3cr3t-value".into()),
            ..Default::default()
        });
        let scrubbed = scrubber.scrub_event(event).expect("kept");
        let text = serde_json::to_string(&scrubbed).unwrap();
        for secret in ["s3cr3t-value", "abcdefghijklmnop", "tdo_0123"] {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
        assert_eq!(scrubbed.message.as_deref(), Some("failed with [redacted]"));
    }
}
