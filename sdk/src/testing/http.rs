//! `http` in the mock: approved hosts and canned answers per URL.

use super::{CURRENT, MockHost};
use crate::http::{HttpError, Request, Response};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(crate) struct MockHttp {
    hosts: BTreeSet<String>,
    answers: BTreeMap<String, Result<Response, HttpError>>,
    sent: Vec<Request>,
}

impl MockHost {
    /// Approves `hosts` for `http` (none are approved in a fresh mock, so
    /// every request is `Denied` until then, as on a host whose admin
    /// approved none).
    pub fn approve_http_hosts(&self, hosts: &[&str]) {
        self.with(|s| s.http.hosts.extend(hosts.iter().map(|h| h.to_string())));
    }

    /// Answers requests to exactly `url` with `answer`. A request to an
    /// approved host with no answer set gets `Unavailable`.
    pub fn answer_http(&self, url: &str, answer: Result<Response, HttpError>) {
        self.with(|s| s.http.answers.insert(url.to_string(), answer));
    }

    /// The requests sent so far (those the mock refused included).
    pub fn http_requests(&self) -> Vec<Request> {
        self.with(|s| s.http.sent.clone())
    }
}

/// `http::send` in the mock: the URL checks the host makes before any
/// network (https, default port, approved host), then the canned answer.
pub(crate) fn http_send(request: &Request) -> Result<Response, HttpError> {
    let Some(state) = CURRENT.with(|c| c.borrow().clone()) else {
        panic!(
            "townes_sdk: `http::send` was called outside wasm with no MockHost installed on \
             this thread"
        );
    };
    let mut s = state.borrow_mut();
    s.calls += 1;
    if s.call_budget.is_some_and(|budget| s.calls > budget) {
        return Err(HttpError::QuotaExceeded("host calls".into()));
    }
    s.http.sent.push(request.clone());
    let Some(rest) = request.url.strip_prefix("https://") else {
        return Err(HttpError::InvalidArgument(
            "only `https://` URLs are sent".into(),
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains(['@', ':']) {
        return Err(HttpError::InvalidArgument(
            "no user info or port: only the default https port is reached".into(),
        ));
    }
    let host = authority.to_ascii_lowercase();
    if !s.http.hosts.contains(&host) {
        return Err(HttpError::Denied(format!(
            "{host}: not a host the server's admins approved for this feature"
        )));
    }
    s.http
        .answers
        .get(&request.url)
        .cloned()
        .unwrap_or_else(|| {
            Err(HttpError::Unavailable(format!(
                "the mock has no answer for {}",
                request.url
            )))
        })
}

#[cfg(test)]
mod tests {
    use crate::http::{self, HttpError, Response};
    use crate::testing::MockHost;

    #[test]
    fn requests_reach_approved_hosts_only() {
        let host = MockHost::new();
        let url = "https://api.example.com/v1";
        assert!(matches!(http::get(url), Err(HttpError::Denied(_))));
        host.approve_http_hosts(&["api.example.com"]);
        let answer = Response {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"ok":true}"#.to_vec(),
        };
        host.answer_http(url, Ok(answer));
        let got = http::get(url).unwrap();
        assert_eq!(got.header("content-type"), Some("application/json"));
        assert_eq!(got.json::<serde_json::Value>().unwrap()["ok"], true);
        assert!(matches!(
            http::get("http://api.example.com/v1"),
            Err(HttpError::InvalidArgument(_))
        ));
        assert!(matches!(
            http::get("https://api.example.com:8443/"),
            Err(HttpError::InvalidArgument(_))
        ));
        assert!(matches!(
            http::get("https://api.example.com/other"),
            Err(HttpError::Unavailable(_))
        ));
        assert_eq!(host.http_requests().len(), 5);
    }
}
