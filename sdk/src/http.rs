//! Requests to outside web services (contract 0.1.4). Importing this
//! interface — calling any function here — is how a feature asks for it; the
//! guild's admin approves the host names it may reach. Only `https://` URLs on
//! the default port to an approved host are sent; the host refuses addresses
//! that are not public, follows at most 3 redirects (each checked the same
//! way), sends no cookies and sets its own `User-Agent`.
//!
//! ```no_run
//! use townes_sdk::http;
//! let answer = http::get("https://api.example.com/v1/status")?;
//! if answer.status == 200 {
//!     let text = answer.text();
//! }
//! # Ok::<(), townes_sdk::http::HttpError>(())
//! ```
//!
//! Every failure is an [`HttpError`] value: `Denied` (not approved, or not
//! an approved host), `BlockedAddress`, `InvalidArgument`, `TooLarge` (an
//! answer over 1 MiB), `Timeout` (10 s for the whole request),
//! `QuotaExceeded` (8 requests per invocation, 60 per minute per guild) or
//! `Unavailable` (DNS, TLS, connection).

pub use crate::bindings::townes::feature::http::{HttpError, Method, Request, Response};
use crate::route;

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header (at most 32; `host`, `cookie`, `content-length`,
    /// `transfer-encoding`, `connection`, `proxy-*`, `user-agent` and the other
    /// hop-by-hop headers are refused).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (at most 1 MiB; not for `GET` or `HEAD`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json(self, value: &impl serde::Serialize) -> Result<Request, HttpError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| HttpError::InvalidArgument(format!("request body: {e}")))?;
        Ok(self.header("content-type", "application/json").body(body))
    }
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::InvalidArgument(format!("the answer is not that JSON: {e}")))
    }
}

/// Sends `request`.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    route!(
        wasm: crate::bindings::townes::feature::http::send(request),
        mock: crate::testing::http_send(request),
    )
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    send(&Request::new(Method::Get, url))
}

/// `POST url` with `value` as a JSON body.
pub fn post_json(url: &str, value: &impl serde::Serialize) -> Result<Response, HttpError> {
    send(&Request::new(Method::Post, url).json(value)?)
}
