//! Every failure of the API as one enum, and the one JSON shape clients see:
//! `{"error": {"code", "message", "hint"?, "problems"?}}` with the status code, plus
//! `Retry-After` on 429. Axum's own rejections (bad JSON, bad path or query) are
//! converted here too, so no response leaves in another shape.
//!
//! The extractors also refuse text holding U+0000 (NUL): Postgres cannot store
//! it, so it would otherwise fail deep in a query as a 500 (and SQLite would
//! keep what Postgres refuses). A body gets 422 naming each value, a path or
//! query parameter 400.

use crate::marketplace::MarketError;
use crate::store::StoreError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `invalid`, `bad_request`, `payload_too_large`,
    /// `unsupported_media_type`, `method_not_allowed`, `rate_limited`,
    /// `unavailable`, `feature_failed`, `internal`; for an import bundle
    /// refused, `wrong_passphrase`, `damaged_bundle` or `newer_version`; for an
    /// export download link, `link_expired`.
    #[schema(example = "not_found")]
    pub code: &'static str,
    /// For people; may change between versions.
    pub message: String,
    /// What to do about it, when there is something to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For `invalid`: each value that was refused and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// One refused value: where it is in the request body (a JSON pointer) and why.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    #[schema(example = "/greeting")]
    pub path: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("sign in first, or send an API key")]
    Unauthorized { hint: &'static str },
    #[error("{0}")]
    Forbidden(String),
    /// A tenant's valid credential on an operators' route.
    #[error(
        "operator credentials are needed: tenant sessions and API keys cannot use /admin routes"
    )]
    OperatorsOnly,
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict {
        message: String,
        hint: Option<String>,
    },
    #[error("{message}")]
    Invalid {
        message: String,
        problems: Vec<Problem>,
    },
    #[error("{0}")]
    BadRequest(String),
    /// A request refused for a reason with its own code (an import bundle that
    /// cannot be opened, an expired link), as `status`.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
        hint: String,
    },
    #[error("the request body is larger than the limit")]
    PayloadTooLarge,
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("this path does not accept that method")]
    MethodNotAllowed,
    #[error("too many requests; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("{message}")]
    Unavailable {
        message: String,
        hint: Option<String>,
    },
    /// A feature's route failed or answered outside its contract (a trap, a
    /// timeout, a body that does not match its response schema).
    #[error("{0}")]
    FeatureFailed(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::Invalid {
            message: message.clone(),
            problems: vec![Problem {
                path: path.into(),
                message,
            }],
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Internal(e.into())
    }

    /// The error of a lookup that several requests waited on together: taken
    /// whole when no one else holds it, else copied with the same status,
    /// message and hint.
    pub fn from_shared(e: std::sync::Arc<ApiError>) -> ApiError {
        std::sync::Arc::try_unwrap(e).unwrap_or_else(|shared| match &*shared {
            ApiError::NotFound(message) => ApiError::NotFound(message.clone()),
            ApiError::Unavailable { message, hint } => ApiError::Unavailable {
                message: message.clone(),
                hint: hint.clone(),
            },
            ApiError::Internal(e) => ApiError::internal(anyhow::anyhow!("{e:#}")),
            // A lookup fails with the kinds above; anything else is reported as
            // what it says, without its status.
            other => ApiError::internal(anyhow::anyhow!("{other}")),
        })
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::OperatorsOnly => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Refused { status, .. } => *status,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::FeatureFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden(_) | ApiError::OperatorsOnly => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::Invalid { .. } => "invalid",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Refused { code, .. } => code,
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::FeatureFailed(_) => "feature_failed",
            ApiError::Internal(_) => "internal",
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ApiError::Unauthorized { hint } => Some((*hint).to_string()),
            ApiError::Refused { hint, .. } => Some(hint.clone()),
            ApiError::Conflict { hint, .. } | ApiError::Unavailable { hint, .. } => hint.clone(),
            ApiError::Forbidden(_) => Some(
                "ask the guild's owner for Manage Server, or sign in as the tenant that owns it"
                    .into(),
            ),
            ApiError::OperatorsOnly => Some(
                "the platform's operators get a token from `townes operator add` (`Authorization: Bearer tdo_…`)".into(),
            ),
            ApiError::PayloadTooLarge => Some("send at most 64 KiB".into()),
            ApiError::FeatureFailed(_) => Some(
                "the feature's author can see why in its logs; the guild's admins can disable or roll it back".into(),
            ),
            ApiError::Internal(_) => {
                Some("try again; if it keeps failing, report the X-Request-ID".into())
            }
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(e) = &self {
            // The cause stays in the log (with the request id); the client gets none of it.
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let retry_after = match &self {
            ApiError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                hint: self.hint(),
                problems: match self {
                    ApiError::Invalid { problems, .. } => problems,
                    _ => Vec::new(),
                },
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::InvalidArgument(message) => ApiError::Invalid {
                message,
                problems: Vec::new(),
            },
            StoreError::QuotaExceeded(message) => ApiError::Conflict {
                message,
                hint: None,
            },
            other => ApiError::internal(other),
        }
    }
}

impl From<MarketError> for ApiError {
    fn from(e: MarketError) -> ApiError {
        let message = e.to_string();
        match e {
            MarketError::UnknownFeature(_) | MarketError::UnknownVersion { .. } => {
                ApiError::NotFound(message)
            }
            MarketError::UnknownGuild(_) => ApiError::NotFound(message),
            MarketError::NotInPlan { .. } | MarketError::NotServed { .. } => {
                ApiError::Forbidden(message)
            }
            MarketError::NotInGuild { .. } => ApiError::Conflict {
                message,
                hint: Some("install the feature in this guild first".into()),
            },
            MarketError::SameVersion { .. }
            | MarketError::IdTaken { .. }
            | MarketError::NothingToRollBack { .. }
            | MarketError::MigrateFailed { .. } => ApiError::Conflict {
                message,
                hint: None,
            },
            MarketError::EnableFailed { .. } => ApiError::Conflict {
                message,
                hint: Some(
                    "the feature refused to start; its author's error is quoted, and the feature stays off".into(),
                ),
            },
            MarketError::Contended { .. } => ApiError::Conflict {
                message,
                hint: Some(
                    "others are changing this feature right now; read it again and retry".into(),
                ),
            },
            MarketError::MissingRequired { missing, .. } => ApiError::Invalid {
                problems: capability_problems(&missing, |c| {
                    format!("required capability `{c}` is not approved")
                }),
                message,
            },
            MarketError::NotRequested { extra, .. } => ApiError::Invalid {
                problems: capability_problems(&extra, |c| {
                    format!("`{c}` is not requested by this feature")
                }),
                message,
            },
            MarketError::InvalidConfig { problems, .. } => ApiError::Invalid {
                problems: problems
                    .iter()
                    .map(|p| Problem {
                        path: p.path.clone(),
                        message: p.message.clone(),
                    })
                    .collect(),
                message,
            },
            MarketError::Install(e) => ApiError::Invalid {
                message: e.to_string(),
                problems: Vec::new(),
            },
            MarketError::Store(e) => e.into(),
            MarketError::Host(e) => ApiError::Internal(e),
        }
    }
}

/// One problem at `/capabilities` per capability named.
fn capability_problems(capabilities: &[String], why: impl Fn(&str) -> String) -> Vec<Problem> {
    capabilities
        .iter()
        .map(|c| Problem {
            path: "/capabilities".into(),
            message: why(c),
        })
        .collect()
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match r {
            JsonRejection::JsonDataError(e) => ApiError::Invalid {
                message: e.body_text(),
                problems: Vec::new(),
            },
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::BadRequest(r.body_text())
    }
}

/// `axum::Json` whose rejection is an [`ApiError`], refusing NUL in any string.
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = body_bytes(
            axum::extract::Request::from_parts(parts.clone(), body),
            state,
        )
        .await?;
        // axum's own extractor, for its content-type check and error messages.
        let request =
            axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        refuse_nul(&bytes)?;
        Ok(Json(value))
    }
}

/// `axum::extract::Path` whose rejection is an [`ApiError`], refusing NUL.
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        if let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await
            && let Some((name, _)) = raw.iter().find(|(_, value)| value.contains('\0'))
        {
            return Err(ApiError::BadRequest(format!(
                "path parameter `{name}` contains a NUL character (U+0000)"
            )));
        }
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// `axum::extract::Query` whose rejection is an [`ApiError`], refusing NUL.
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        // A query can only carry NUL percent-encoded.
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError::BadRequest(
                "the query contains a NUL character (U+0000)".into(),
            ));
        }
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// The request body, within the body limit.
async fn body_bytes<S: Send + Sync>(
    request: axum::extract::Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    use axum::extract::FromRequest as _;
    axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::BadRequest(e.body_text()),
        })
}

/// Refuses a JSON body with U+0000 in a string or key, naming each one.
pub(crate) fn refuse_nul(json: &[u8]) -> Result<(), ApiError> {
    // JSON carries NUL only as the escape `\u0000`; most bodies never have it.
    if !json.windows(6).any(|w| w == b"\\u0000") {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
        return Ok(()); // Not JSON: the typed parse has refused it already.
    };
    let mut problems = Vec::new();
    find_nul(&value, String::new(), &mut problems);
    if problems.is_empty() {
        return Ok(());
    }
    Err(ApiError::Invalid {
        message: "text must not contain NUL characters (U+0000)".into(),
        problems,
    })
}

fn find_nul(value: &serde_json::Value, pointer: String, problems: &mut Vec<Problem>) {
    let problem = |path: &str| Problem {
        path: path.to_string(),
        message: "contains a NUL character (U+0000), which cannot be stored".into(),
    };
    match value {
        serde_json::Value::String(s) if s.contains('\0') => problems.push(problem(&pointer)),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_nul(item, format!("{pointer}/{i}"), problems);
            }
        }
        serde_json::Value::Object(fields) => {
            for (key, item) in fields {
                let at = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                if key.contains('\0') {
                    problems.push(problem(&at));
                }
                find_nul(item, at, problems);
            }
        }
        _ => {}
    }
}

/// An optional JSON body: absent (empty) or JSON `null` is `None`; present, it
/// must be JSON.
pub struct MaybeJson<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S>
    for MaybeJson<T>
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let bytes = body_bytes(request, state).await?;
        if bytes.is_empty() {
            return Ok(MaybeJson(None));
        }
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        // The documented body is nullable, so `null` means "no body" too.
        let value = axum::Json::<Option<T>>::from_bytes(&bytes)?;
        refuse_nul(&bytes)?;
        Ok(MaybeJson(value.0))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_in_any_string_or_key_is_named_by_its_pointer() {
        let refused = refuse_nul(br#"{"a": ["ok", "x\u0000"], "b/\u0000": 1, "c": "\\u0000"}"#);
        let Err(ApiError::Invalid { problems, .. }) = refused else {
            panic!("expected 422, got {refused:?}");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["/a/1", "/b~1\u{0}"]);
        // An escaped backslash before `u0000` is text, not NUL.
        assert!(refuse_nul(br#"{"c": "\\u0000"}"#).is_ok());
        assert!(refuse_nul(br#"{"c": "fine"}"#).is_ok());
    }
}
