//! `http` (contract 0.1.4): outbound HTTPS requests to the hosts the guild's
//! admin approved ([`crate::grants::Grant::http_hosts`]). Importing the
//! interface requests it.

use super::{Cap, Effect};
use crate::store::Scope;
use crate::wit::townes::feature::http::{Host, HttpError, Request, Response};

/// What `http` needs: whose call it is.
pub struct HttpCtx {
    pub scope: Scope,
}

impl Host for Cap<'_, HttpCtx> {
    async fn send(&mut self, _request: Request) -> Result<Response, HttpError> {
        const CALL: &str = "http.send";
        self.calls.begin_imported(CALL).map_err(HttpError::from)?;
        let result = if self.calls.grant.http_hosts.is_empty() {
            Err(HttpError::Denied(
                "no host is approved for this feature in this server".into(),
            ))
        } else {
            Err(HttpError::Unavailable(
                "outbound requests are not built yet".into(),
            ))
        };
        self.calls
            .finish_imported(CALL, result, |_: &Response| None::<Effect>)
    }
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
