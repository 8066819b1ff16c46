//! Export bundles (ADR 0018): a tenant starts an export of itself or of one of
//! its guilds, follows it, downloads the bundle through a signed, expiring
//! link; and imports a guild's bundle made by another installation.
//!
//! Whole-tenant bundles are imported by the operator (`townes import`): over
//! the API the caller is already a tenant here, so its own tenant bundle would
//! always collide, and another tenant's bundle is not the caller's to restore.

use super::{BodyErrors, CallerErrors};
use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::auth::operator::Operator;
use crate::api::authz::authorize;
use crate::api::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use crate::api::examples;
use crate::api::snowflake::Snowflake;
use crate::export::{BundleKind, ExportError, ExportKey, ExportRequest};
use crate::store::export::ExportJob;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> ApiError {
        let message = e.to_string();
        let refused = |code, hint: &str| ApiError::Refused {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message: message.clone(),
            hint: hint.to_string(),
        };
        match e {
            ExportError::WeakPassphrase => ApiError::invalid("/passphrase", message),
            ExportError::WrongKey => refused(
                "wrong_passphrase",
                "send the passphrase the export was started with",
            ),
            ExportError::Damaged(_) | ExportError::NotABundle => refused(
                "damaged_bundle",
                "download the bundle again; compare its sha256 with the export's",
            ),
            ExportError::Newer { .. } => refused(
                "newer_version",
                "upgrade this installation to the exporting one's version, then import",
            ),
            ExportError::Component(_) => refused(
                "invalid",
                "the bundle's component does not install here; upgrade this installation",
            ),
            ExportError::TooLarge { .. } => ApiError::PayloadTooLarge,
            ExportError::NotFound(what) => ApiError::not_found(what),
            ExportError::Conflict(message) => ApiError::Conflict {
                message,
                hint: None,
            },
            ExportError::Busy(_) => ApiError::Conflict {
                message,
                hint: None,
            },
            ExportError::BadLink => ApiError::Refused {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message,
                hint: "use the link GET /exports/{id} gives, unchanged".into(),
            },
            ExportError::LinkExpired(_) => ApiError::Refused {
                status: StatusCode::GONE,
                code: "link_expired",
                message,
                hint: "ask GET /exports/{id} for a fresh link while the export is kept".into(),
            },
            ExportError::Store(e) => e.into(),
            ExportError::Other(e) => ApiError::internal(e),
        }
    }
}

/// An export to start.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::export_request)]
pub struct ExportStart {
    /// The caller's own tenant.
    pub tenant_id: String,
    /// One guild of the tenant; absent: the whole tenant.
    pub guild_id: Option<Snowflake>,
    /// At least 12 characters. Encrypts the bundle; used in memory by the
    /// job and never stored: without it the bundle cannot be opened.
    #[schema(example = "correct horse battery staple")]
    pub passphrase: String,
}

/// An export job.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::export_job)]
pub struct ExportView {
    pub id: String,
    pub tenant_id: String,
    pub guild_id: Option<Snowflake>,
    /// `queued`, `running`, `done` or `failed`.
    #[schema(example = "running")]
    pub status: String,
    /// `reading`, `writing`, `done`, …
    pub step: String,
    pub done: u64,
    pub total: u64,
    /// Why it failed, and what to do.
    pub error: Option<String>,
    /// Of the encrypted bundle, once done.
    pub size_bytes: Option<u64>,
    pub sha256: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The download link and the bundle expire then.
    pub expires_at: Option<DateTime<Utc>>,
    /// A signed link to the bundle while it is kept (no sign-in needed).
    pub download_url: Option<String>,
}

impl ExportView {
    /// The job as shown, with its signed download link once done.
    pub(super) async fn with_link(state: &ApiState, job: ExportJob) -> ApiResult<ExportView> {
        let url = state.exports().download_url(&job).await?;
        Ok(ExportView::new(job, url))
    }

    pub(super) fn new(job: ExportJob, download_url: Option<String>) -> ExportView {
        ExportView {
            id: job.id,
            tenant_id: job.tenant_id,
            guild_id: job.guild_id.map(Snowflake),
            status: job.status.as_str().to_string(),
            step: job.step,
            done: job.done,
            total: job.total,
            error: job.error,
            size_bytes: job.size_bytes,
            sha256: job.sha256,
            requested_by: job.requested_by,
            created_at: job.created_at,
            finished_at: job.finished_at,
            expires_at: job.expires_at,
            download_url,
        }
    }
}

/// Starts an export of the caller's tenant, or of one of its guilds, in the
/// background: follow it with `GET /exports/{export_id}` or the live feed's
/// `export_progress` events.
#[utoipa::path(post, path = "/exports", tag = "exports", operation_id = "startExport",
    security(("session" = []), ("api_key" = [])),
    request_body(content = ExportStart, example = examples::export_request),
    responses((status = 202, description = "The export is queued", body = ExportView),
        CallerErrors, BodyErrors,
        (status = 404, description = "Not the caller's tenant, or not its guild", body = ErrorBody),
        (status = 409, description = "Another export of the tenant is queued or running", body = ErrorBody)))]
pub async fn start(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<ExportStart>,
) -> ApiResult<(StatusCode, axum::Json<ExportView>)> {
    if caller.tenant_id() != body.tenant_id {
        return Err(ApiError::not_found(format!("tenant {}", body.tenant_id)));
    }
    if let Some(guild_id) = body.guild_id {
        let (guild, _) = authorize(&state, &caller, guild_id.0).await?;
        if guild.tenant_id.as_deref() != Some(caller.tenant_id()) {
            return Err(ApiError::not_found(format!("guild {}", guild_id.0)));
        }
    }
    let key = ExportKey::passphrase(body.passphrase)?;
    let job = state
        .exports()
        .start(ExportRequest {
            tenant_id: body.tenant_id,
            guild_id: body.guild_id.map(|g| g.0),
            key,
            requested_by: caller.actor(),
        })
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(ExportView::new(job, None))))
}

/// An export job of the caller's tenant, with a download link once done.
#[utoipa::path(get, path = "/exports/{export_id}", tag = "exports", operation_id = "getExport",
    security(("session" = []), ("api_key" = [])),
    params(("export_id" = String, Path, description = "The export's id")),
    responses((status = 200, description = "The export", body = ExportView), CallerErrors,
        (status = 404, description = "No such export of the caller's tenant", body = ErrorBody)))]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(export_id): Path<String>,
) -> ApiResult<axum::Json<ExportView>> {
    let job = state
        .exports()
        .job(&export_id)
        .await?
        .filter(|job| job.tenant_id == caller.tenant_id())
        .ok_or_else(|| ApiError::not_found(format!("export {export_id}")))?;
    Ok(axum::Json(ExportView::with_link(&state, job).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// Unix seconds, as signed.
    pub expires: i64,
    /// The link's signature.
    pub sig: String,
}

/// The encrypted bundle, through the signed link `GET /exports/{export_id}`
/// gives. No sign-in: the link is the permission, until it expires.
#[utoipa::path(get, path = "/exports/{export_id}/download", tag = "exports", operation_id = "downloadExport",
    params(("export_id" = String, Path, description = "The export's id"), DownloadQuery),
    responses((status = 200, description = "The encrypted bundle", content(("application/octet-stream"))),
        (status = 403, description = "The link is not valid (changed, or not this export's)", body = ErrorBody),
        (status = 404, description = "The bundle is gone", body = ErrorBody),
        (status = 410, description = "The link expired", body = ErrorBody)))]
pub async fn download(
    State(state): State<ApiState>,
    Path(export_id): Path<String>,
    Query(query): Query<DownloadQuery>,
) -> ApiResult<Response> {
    let bytes = state
        .exports()
        .download(&export_id, query.expires, &query.sig)
        .await?;
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let disposition = format!("attachment; filename=\"townes-export-{export_id}.bundle\"");
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// What an import restored.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::import_report)]
pub struct ImportView {
    /// `guild` (over the API; `tenant` bundles through `townes import`).
    pub kind: String,
    pub tenant_id: String,
    pub guild_ids: Vec<Snowflake>,
    /// Rows per table, and `components`.
    #[schema(value_type = Object)]
    pub counts: std::collections::BTreeMap<String, u64>,
}

/// A bundle to import.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = examples::import_request)]
pub struct ImportRequest {
    /// The passphrase the export was started with.
    pub passphrase: String,
    /// The bundle file, base64 (standard alphabet, padded).
    #[schema(format = Byte)]
    pub bundle: String,
}

/// Restores a bundle exported from another installation, a tenant's or one
/// guild's: for operators only, since a bundle's rows (guild ids, owners,
/// plans) are whatever its maker put in them, and only the operator can vouch
/// for where it came from. All or nothing: a wrong passphrase, a damaged
/// bundle, one from a newer version, or a tenant or guild that exists here
/// already leave nothing behind. The bundle may be up to
/// `TOWNES_EXPORT_MAX_BYTES` (base64 adds a third to the body).
#[utoipa::path(post, path = "/imports", tag = "exports", operation_id = "importBundle",
    security(("operator" = [])),
    request_body(content = ImportRequest, example = examples::import_request),
    responses((status = 201, description = "Imported", body = ImportView), CallerErrors,
        (status = 403, description = "Not an operator: a tenant's session or API key", body = ErrorBody),
        (status = 409, description = "A guild (or a feature build) in the bundle exists here", body = ErrorBody),
        (status = 413, description = "Larger than TOWNES_EXPORT_MAX_BYTES", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "`wrong_passphrase`, `damaged_bundle`, `newer_version`, or a refused value", body = ErrorBody)))]
pub async fn import(
    State(state): State<ApiState>,
    operator: Operator,
    request: axum::extract::Request,
) -> ApiResult<(StatusCode, axum::Json<ImportView>)> {
    use axum::extract::FromRequest as _;
    // The route has no body limit of its own (the API's 64 KiB would refuse
    // any bundle): the configured one is applied here, base64 included.
    let max = state.exports().config().max_bytes;
    let limit = max.saturating_mul(4) / 3 + 64 * 1024;
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let request = axum::extract::Request::from_parts(parts, Body::from(bytes));
    let Json(body) = Json::<ImportRequest>::from_request(request, &state).await?;
    let key = ExportKey::passphrase(body.passphrase)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.bundle.as_bytes())
        .map_err(|e| ApiError::invalid("/bundle", format!("not base64: {e}")))?;
    let report = state.exports().import(&bytes, &key).await?;
    operator
        .audit(
            state.store(),
            "admin.bundle_imported",
            None,
            serde_json::json!({
                "tenant_id": &report.tenant_id,
                "guilds": report.guild_ids.iter().map(u64::to_string).collect::<Vec<_>>(),
            }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ImportView {
            kind: match report.kind {
                BundleKind::Tenant => "tenant",
                BundleKind::Guild => "guild",
            }
            .to_string(),
            tenant_id: report.tenant_id,
            guild_ids: report.guild_ids.into_iter().map(Snowflake).collect(),
            counts: report.counts,
        }),
    ))
}
