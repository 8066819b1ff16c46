//! `http` (contract 0.1.4): outbound HTTPS requests to the hosts the guild's
//! admin approved ([`crate::grants::Grant::http_hosts`]). Importing the
//! interface requests it.
//!
//! Every feature is hostile code, and this is the classic server-side request
//! forgery hole, so a request goes out only when all of this holds:
//!
//! - **Approved host.** The URL's host is exactly one of the grant's host
//!   names (no IP literals: approvals hold DNS names only), else `denied`.
//! - **Strict URL.** `https`, the default port (443), no user info, at most
//!   [`MAX_URL_BYTES`]; else `invalid-argument` saying what to change.
//! - **Public addresses only, pinned.** The client's only resolver
//!   ([`outbound`]) resolves the name, refuses it when *any* address is not
//!   globally routable ([`address::is_public`]: loopback, private, link-local,
//!   the metadata addresses, CGNAT, multicast, IPv4-mapped and NAT64 forms of
//!   those, …) and hands the connection exactly the addresses it checked, so
//!   there is no window for DNS rebinding between check and connect.
//! - **Redirects followed here**, at most [`MAX_REDIRECTS`], each target
//!   checked again (https, port, approved host; its addresses by the same
//!   resolver), `authorization` dropped when the host changes.
//! - **Nothing ambient.** No cookie jar, no proxy from the environment, no
//!   default credentials, no `Referer`; a fixed [`USER_AGENT`]; the headers
//!   that would let a feature steer the connection itself (`host`,
//!   `content-length`, `connection`, `proxy-*`, …) or send cookies are refused.
//! - **Bounded.** Request bodies up to [`MAX_REQUEST_BYTES`]; answers read in
//!   chunks and cut past [`MAX_RESPONSE_BYTES`] (`too-large`); the whole
//!   request, redirects and reading included, within [`TIMEOUT`] (`timeout`);
//!   [`PER_INVOCATION`] requests per invocation and [`PER_MINUTE`] per (guild,
//!   feature); [`outbound::MAX_IN_FLIGHT_PER_GUILD`] in flight per guild and
//!   [`outbound::MAX_IN_FLIGHT`] on the host. The request runs on a task of
//!   its own (aborted if the invocation ends first) with the invocation's wall
//!   clock stopped, the way waits on Discord are: the time counts against
//!   the plan's `discord_wait_ms` allowance instead, so a feature cannot hold
//!   an instance slot longer than its wall budget plus that allowance.
//!
//! **Tests** reach a local TLS server through [`Outbound::for_tests`] (with a
//! [`TestNetwork`]): names resolve from a table, the client trusts only the
//! test's certificate authority, and the test server's one loopback socket
//! may be reached through the server's own names; every other name and
//! address is checked as in production, so the tests of the checks run the production
//! checks. It is not a setting: the constructor is compiled only with the
//! cargo feature `test-network`, which only this crate's own
//! `[dev-dependencies]` turn on, and cargo keeps dev-dependency features out of
//! `cargo build` and `cargo install` (resolver 2 and later). Even in a test
//! build, nothing the binary reads (environment, config file, flags) can
//! construct one; the runtime takes one only through
//! [`crate::runtime::Runtime::with_http`], which only code calls.

mod address;
pub mod outbound;

pub use address::is_public;
pub use outbound::Outbound;
#[cfg(any(test, feature = "test-network"))]
pub use outbound::TestNetwork;

use super::rates::Rates;
use super::{Cap, Effect};
use crate::grants::Grant;
use crate::runtime::wall::WallClock;
use crate::store::Scope;
use crate::wit::townes::feature::http::{Host, HttpError, Method, Request, Response};
use outbound::{Blocked, Busy, NotResolved};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, LOCATION};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Requests one invocation may make.
pub const PER_INVOCATION: u32 = 8;
/// Requests one feature may make in one guild per minute.
pub const PER_MINUTE: u32 = 60;
/// A request body's cap (the contract's).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// An answer's body cap: past it the answer is cut and the call fails.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Headers a request may carry (the contract's), and their bytes together.
pub const MAX_HEADERS: usize = 32;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Headers of an answer passed to the feature; the rest are dropped.
pub const MAX_RESPONSE_HEADERS: usize = 64;
pub const MAX_URL_BYTES: usize = 4096;
/// Redirects followed per call.
pub const MAX_REDIRECTS: usize = 3;
/// One call, redirects and reading the answer included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Connecting (TCP and TLS) to one address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Resolving one name.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
/// What every request says it is.
pub const USER_AGENT: &str = concat!(
    "TownesDev-Bot-Platform/",
    env!("CARGO_PKG_VERSION"),
    " (feature http)"
);

/// Request headers a feature may not set: they would steer the connection or
/// framing (request smuggling), send cookies, or pose as the platform.
const FORBIDDEN_HEADERS: [&str; 10] = [
    "host",
    "cookie",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "user-agent",
];

/// What `http` needs: whose call it is, the shared client, the per-minute
/// allowance, and the invocation's wall clock.
pub struct HttpCtx {
    pub scope: Scope,
    pub outbound: Arc<Outbound>,
    pub rates: Arc<Rates>,
    /// Stopped while a request is out (none outside an invocation).
    pub(crate) clock: Option<WallClock>,
    /// Requests this invocation made.
    made: u32,
}

impl HttpCtx {
    /// A context with no wall clock to stop (tests calling the capability
    /// directly); the runtime adds the invocation's own.
    pub fn new(scope: Scope, outbound: Arc<Outbound>, rates: Arc<Rates>) -> HttpCtx {
        HttpCtx {
            scope,
            outbound,
            rates,
            clock: None,
            made: 0,
        }
    }

    pub(crate) fn with_clock(mut self, clock: WallClock) -> HttpCtx {
        self.clock = Some(clock);
        self
    }

    async fn send(
        &mut self,
        grant: &Grant,
        request: Request,
    ) -> Result<(Response, Effect), HttpError> {
        let checked = Checked::new(request)?;
        approved(&grant.http_hosts, &checked.url)?;
        if self.made >= PER_INVOCATION {
            return Err(HttpError::QuotaExceeded(format!(
                "requests: {PER_INVOCATION} per invocation are used up"
            )));
        }
        self.made += 1;
        let Scope {
            guild_id,
            feature_id,
        } = &self.scope;
        if !self.rates.http.take(*guild_id, feature_id, PER_MINUTE) {
            return Err(HttpError::QuotaExceeded(format!(
                "requests: {PER_MINUTE} per minute for this feature in this server are used up"
            )));
        }
        let admitted = self
            .outbound
            .admit(*guild_id)
            .await
            .map_err(|busy| match busy {
                Busy::Guild => HttpError::QuotaExceeded(format!(
                    "requests: at most {} in flight at once in this server",
                    outbound::MAX_IN_FLIGHT_PER_GUILD
                )),
                Busy::Host => HttpError::Unavailable(
                    "the platform has too many requests in flight; try again later".into(),
                ),
            })?;
        let client = self
            .outbound
            .shared_client()
            .map_err(|e| HttpError::Unavailable(format!("no HTTP client: {e}")))?;
        let method = checked.method_name;
        let host = checked.url.host_str().unwrap_or_default().to_string();
        let hosts = grant.http_hosts.clone();
        let timeout = self.outbound.timeout();
        // A task of its own: the invocation's CPU meter does not pay for TLS,
        // and aborting it on drop ends the request when the invocation ends.
        let task = Abort(tokio::spawn(async move {
            let _admitted = admitted;
            tokio::time::timeout(timeout, follow(&client, &hosts, checked))
                .await
                .unwrap_or(Err(HttpError::Timeout))
        }));
        let response = match &self.clock {
            Some(clock) => clock.excluding(task.join()).await,
            None => task.join().await,
        }?;
        let effect = Effect::HttpRequested {
            method,
            host,
            status: response.status,
            bytes: response.body.len(),
        };
        Ok((response, effect))
    }
}

/// A spawned request, aborted if dropped before it finished.
struct Abort(tokio::task::JoinHandle<Result<Response, HttpError>>);

impl Abort {
    async fn join(mut self) -> Result<Response, HttpError> {
        (&mut self.0)
            .await
            .unwrap_or_else(|e| Err(HttpError::Unavailable(format!("the request failed: {e}"))))
    }
}

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Host for Cap<'_, HttpCtx> {
    async fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        const CALL: &str = "http.send";
        self.calls.begin_imported(CALL).map_err(HttpError::from)?;
        let result = self.ctx.send(&self.calls.grant, request).await;
        self.calls
            .finish(CALL, result, |(_, effect)| Some(effect.clone()))
            .map(|(response, _)| response)
    }
}

/// A request that passed every check that needs no network.
struct Checked {
    method: reqwest::Method,
    method_name: &'static str,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

impl Checked {
    fn new(request: Request) -> Result<Checked, HttpError> {
        let (method, method_name) = match request.method {
            Method::Get => (reqwest::Method::GET, "GET"),
            Method::Head => (reqwest::Method::HEAD, "HEAD"),
            Method::Post => (reqwest::Method::POST, "POST"),
            Method::Put => (reqwest::Method::PUT, "PUT"),
            Method::Patch => (reqwest::Method::PATCH, "PATCH"),
            Method::Delete => (reqwest::Method::DELETE, "DELETE"),
        };
        let url = parse_url(&request.url)?;
        let headers = check_headers(&request.headers)?;
        if let Some(body) = &request.body {
            if body.len() > MAX_REQUEST_BYTES {
                return Err(invalid(format!(
                    "the body is {} bytes; at most {MAX_REQUEST_BYTES}",
                    body.len()
                )));
            }
            if matches!(request.method, Method::Get | Method::Head) {
                return Err(invalid(format!("a {method_name} request has no body")));
            }
        }
        Ok(Checked {
            method,
            method_name,
            url,
            headers,
            body: request.body,
        })
    }
}

fn invalid(why: String) -> HttpError {
    HttpError::InvalidArgument(why)
}

/// An absolute `https` URL on the default port with no user info.
fn parse_url(text: &str) -> Result<Url, HttpError> {
    if text.len() > MAX_URL_BYTES {
        return Err(invalid(format!(
            "the URL is {} bytes; at most {MAX_URL_BYTES}",
            text.len()
        )));
    }
    let url = Url::parse(text).map_err(|e| {
        invalid(format!(
            "`{}` is not an absolute URL ({e}); write `https://host/path`",
            text.escape_debug()
        ))
    })?;
    check_url(url)
}

fn check_url(mut url: Url) -> Result<Url, HttpError> {
    if url.scheme() != "https" {
        return Err(invalid(format!(
            "scheme `{}` refused: only `https://` URLs are sent",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "a URL with user info (`user:password@`) is refused; send credentials in a header"
                .into(),
        ));
    }
    if let Some(port) = url.port() {
        return Err(invalid(format!(
            "port {port} refused: only the default https port (443) is reached; drop `:{port}`"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".into()));
    }
    url.set_fragment(None);
    Ok(url)
}

/// The URL's host is one the admin approved (compared exactly, lower-case;
/// an IP literal never is).
fn approved(hosts: &[String], url: &Url) -> Result<(), HttpError> {
    let host = url.host_str().unwrap_or_default();
    if hosts.is_empty() {
        return Err(HttpError::Denied(format!(
            "{host}: no host is approved for this feature in this server"
        )));
    }
    let is_name = matches!(url.host(), Some(url::Host::Domain(_)));
    if is_name && hosts.iter().any(|h| h == host) {
        Ok(())
    } else {
        Err(HttpError::Denied(format!(
            "{host}: not a host the server's admins approved for this feature"
        )))
    }
}

fn check_headers(headers: &[(String, String)]) -> Result<HeaderMap, HttpError> {
    if headers.len() > MAX_HEADERS {
        return Err(invalid(format!(
            "{} headers; at most {MAX_HEADERS}",
            headers.len()
        )));
    }
    let bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(invalid(format!(
            "the headers are {bytes} bytes; at most {MAX_HEADER_BYTES}"
        )));
    }
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            invalid(format!(
                "header name `{}` is not valid",
                name.escape_debug()
            ))
        })?;
        let lower = parsed.as_str();
        if FORBIDDEN_HEADERS.contains(&lower) || lower.starts_with("proxy-") {
            return Err(invalid(format!(
                "header `{lower}` is refused: the platform sets it, or it would steer the connection"
            )));
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            invalid(format!(
                "header `{lower}`: the value has characters a header cannot carry"
            ))
        })?;
        map.append(parsed, value);
    }
    Ok(map)
}

/// Sends `request`, following redirects the way browsers do, each target
/// checked as the first URL was.
async fn follow(
    client: &reqwest::Client,
    hosts: &[String],
    request: Checked,
) -> Result<Response, HttpError> {
    let Checked {
        mut method,
        mut url,
        mut headers,
        mut body,
        ..
    } = request;
    for hop in 0..=MAX_REDIRECTS {
        let mut builder = client
            .request(method.clone(), url.clone())
            .headers(headers.clone());
        if let Some(body) = &body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().await.map_err(|e| failed(&url, &e))?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        let redirect = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
        let (true, Some(location)) = (redirect, location) else {
            return read(&url, response).await;
        };
        drop(response);
        if hop == MAX_REDIRECTS {
            return Err(HttpError::Unavailable(format!(
                "more than {MAX_REDIRECTS} redirects"
            )));
        }
        let next = url.join(&location).map_err(|e| {
            HttpError::Unavailable(format!(
                "the answer redirected to `{}`, not a URL: {e}",
                location.escape_debug()
            ))
        })?;
        let next = check_url(next).map_err(|e| match e {
            HttpError::InvalidArgument(why) => {
                HttpError::InvalidArgument(format!("the answer redirected elsewhere: {why}"))
            }
            other => other,
        })?;
        approved(hosts, &next).map_err(|e| match e {
            HttpError::Denied(why) => HttpError::Denied(format!("redirected to {why}")),
            other => other,
        })?;
        if next.host_str() != url.host_str() {
            headers.remove(AUTHORIZATION);
        }
        let becomes_get = status.as_u16() == 303
            || (matches!(status.as_u16(), 301 | 302) && method == reqwest::Method::POST);
        if becomes_get && method != reqwest::Method::HEAD {
            method = reqwest::Method::GET;
            body = None;
            headers.remove(reqwest::header::CONTENT_TYPE);
        }
        url = next;
    }
    unreachable!("the last hop returns")
}

/// Reads an answer in chunks, giving up past [`MAX_RESPONSE_BYTES`].
async fn read(url: &Url, mut response: reqwest::Response) -> Result<Response, HttpError> {
    let too_large = || {
        HttpError::TooLarge(format!(
            "the answer exceeds {MAX_RESPONSE_BYTES} bytes; it was cut"
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str() != "set-cookie")
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .take(MAX_RESPONSE_HEADERS)
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(url, &e))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The error a failed request gives the feature: a refused address as
/// `blocked-address`, a timeout as `timeout`, the rest as `unavailable` with
/// the innermost cause.
fn failed(url: &Url, error: &reqwest::Error) -> HttpError {
    let host = url.host_str().unwrap_or_default();
    let mut innermost: &(dyn std::error::Error + 'static) = error;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<Blocked>() {
            return HttpError::BlockedAddress(blocked.0.clone());
        }
        if let Some(unresolved) = e.downcast_ref::<NotResolved>() {
            return HttpError::Unavailable(unresolved.0.clone());
        }
        innermost = e;
        source = e.source();
    }
    if error.is_timeout() {
        return HttpError::Timeout;
    }
    HttpError::Unavailable(format!("could not reach {host}: {innermost}"))
}

impl From<crate::wit::Error> for HttpError {
    fn from(e: crate::wit::Error) -> Self {
        use crate::wit::Error;
        match e {
            Error::Denied(_) => HttpError::Denied("http is not approved".into()),
            Error::QuotaExceeded(s) => HttpError::QuotaExceeded(s),
            Error::InvalidArgument(s) => HttpError::InvalidArgument(s),
            Error::NotFound(s) | Error::Unavailable(s) => HttpError::Unavailable(s),
        }
    }
}

impl super::Refusal for HttpError {
    fn describe(&self) -> String {
        match self {
            HttpError::Denied(s) => format!("denied(http): {s}"),
            HttpError::BlockedAddress(s) => format!("blocked-address: {s}"),
            HttpError::InvalidArgument(s) => format!("invalid-argument: {s}"),
            HttpError::TooLarge(s) => format!("too-large: {s}"),
            HttpError::Timeout => "timeout".to_string(),
            HttpError::QuotaExceeded(s) => format!("quota-exceeded: {s}"),
            HttpError::Unavailable(s) => format!("unavailable: {s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> Request {
        Request {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    fn refusal(request: Request) -> String {
        use super::super::Refusal;
        match Checked::new(request) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.describe(),
        }
    }

    #[test]
    fn only_https_on_the_default_port_without_user_info() {
        assert!(Checked::new(get("https://api.example.com/v1?q=1#frag")).is_ok());
        assert!(Checked::new(get("https://api.example.com:443/")).is_ok());
        assert!(refusal(get("http://api.example.com/")).contains("only `https://`"));
        assert!(refusal(get("ftp://api.example.com/")).contains("only `https://`"));
        assert!(refusal(get("https://api.example.com:8443/")).contains("port 8443"));
        assert!(refusal(get("https://u:p@api.example.com/")).contains("user info"));
        assert!(refusal(get("https://u@api.example.com/")).contains("user info"));
        assert!(refusal(get("/relative")).contains("not an absolute URL"));
        let long = format!("https://api.example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(refusal(get(&long)).contains("at most"));
    }

    #[test]
    fn the_host_must_be_approved_exactly() {
        let hosts = vec!["api.example.com".to_string()];
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(approved(&hosts, &url("https://API.Example.com/x")).is_ok());
        for other in [
            "https://evil.example.com/",
            "https://api.example.com.evil.test/",
            "https://example.com/",
            "https://api.example.com./",
            "https://127.0.0.1/",
            "https://[::1]/",
        ] {
            assert!(
                matches!(approved(&hosts, &url(other)), Err(HttpError::Denied(_))),
                "{other}"
            );
        }
        assert!(matches!(
            approved(&[], &url("https://api.example.com/")),
            Err(HttpError::Denied(_))
        ));
    }

    #[test]
    fn forbidden_and_malformed_headers_are_refused() {
        let with = |name: &str, value: &str| Request {
            headers: vec![(name.into(), value.into())],
            ..get("https://api.example.com/")
        };
        for name in [
            "Host",
            "cookie",
            "Content-Length",
            "transfer-encoding",
            "connection",
            "Proxy-Authorization",
            "proxy-connection",
            "user-agent",
            "te",
            "upgrade",
        ] {
            assert!(refusal(with(name, "x")).contains("refused"), "{name}");
        }
        assert!(refusal(with("bad name", "x")).contains("not valid"));
        assert!(refusal(with("x-a", "a\r\nhost: evil")).contains("cannot carry"));
        assert!(Checked::new(with("Authorization", "Bearer t")).is_ok());
        let many = Request {
            headers: (0..=MAX_HEADERS)
                .map(|i| (format!("x-{i}"), "v".into()))
                .collect(),
            ..get("https://api.example.com/")
        };
        assert!(refusal(many).contains("at most 32"));
    }

    #[test]
    fn bodies_are_capped_and_only_where_http_has_them() {
        let post = |body: Vec<u8>| Request {
            method: Method::Post,
            body: Some(body),
            ..get("https://api.example.com/")
        };
        assert!(Checked::new(post(vec![0; MAX_REQUEST_BYTES])).is_ok());
        assert!(refusal(post(vec![0; MAX_REQUEST_BYTES + 1])).contains("at most"));
        let get_with_body = Request {
            body: Some(b"x".to_vec()),
            ..get("https://api.example.com/")
        };
        assert!(refusal(get_with_body).contains("has no body"));
    }
}
