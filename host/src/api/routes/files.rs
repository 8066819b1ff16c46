//! Files features keep (`files` capability): listed and downloaded by the
//! guild's managers, and served to anyone holding a signed link until it
//! expires (`GET /files/{token}`, made by `files.link`).
//!
//! A file's bytes are the feature's, and may be HTML a member wrote into a
//! transcript: every file is served with a Content-Security-Policy `sandbox`
//! (a unique origin, no scripts, no forms, no cookies of the API's origin),
//! `nosniff`, and as an attachment unless it is an image, plain text or HTML.

use super::{CallerErrors, GuildErrors};
use crate::api::ApiState;
use crate::api::authz::GuildAccess;
use crate::api::error::{ApiError, ApiResult};
use crate::api::examples;
#[allow(unused_imports)] // Named by the OpenAPI annotations.
use crate::api::snowflake::Snowflake;
use crate::store::{FileInfo, Scope};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// What both file routes answer: the bytes, of whatever type the feature
/// stored. The document shows a transcript (`text/html`) as the example.
const FILE_ANSWER: &str = "The file, with the content type its feature stored it under \
    (`text/html` for a ticket transcript; any other type is served as it is)";

/// What a served file may do in a browser: show itself, its inline styles and
/// images, nothing else.
const FILE_CSP: &str =
    "sandbox; default-src 'none'; img-src https: data:; style-src 'unsafe-inline'";

/// A file a feature keeps.
#[derive(Serialize, ToSchema)]
#[schema(example = examples::file)]
pub struct FileView {
    #[schema(example = "transcripts/42.html")]
    pub name: String,
    #[schema(example = "text/html; charset=utf-8")]
    pub content_type: String,
    pub size: u64,
    pub created_at: DateTime<Utc>,
}

impl From<FileInfo> for FileView {
    fn from(f: FileInfo) -> FileView {
        FileView {
            name: f.name,
            content_type: f.content_type,
            size: f.size,
            created_at: f.created_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileListQuery {
    /// Only names starting with this.
    #[serde(default)]
    pub prefix: String,
    /// At most this many (1-1000, default 100).
    pub limit: Option<u32>,
}

/// The files a feature keeps in the guild, in name order.
#[utoipa::path(get, path = "/api/guild/{guild_id}/features/{feature_id}/files", tag = "files",
    operation_id = "listFeatureFiles",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), ("feature_id" = String, Path), FileListQuery),
    responses((status = 200, description = "The files", body = [FileView]), CallerErrors, GuildErrors))]
pub async fn list(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, feature_id)): Path<(String, String)>,
    Query(query): Query<FileListQuery>,
) -> ApiResult<axum::Json<Vec<FileView>>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=townes_limits::files::MAX_LIST).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit}: ask for 1 to {}",
            townes_limits::files::MAX_LIST
        )));
    }
    let scope = Scope::new(access.guild.id, feature_id);
    let files = state.store().files(&scope, &query.prefix, limit).await?;
    Ok(axum::Json(files.into_iter().map(Into::into).collect()))
}

/// One file's bytes, as its feature stored them.
#[utoipa::path(get, path = "/api/guild/{guild_id}/features/{feature_id}/files/{name}", tag = "files",
    operation_id = "getFeatureFile",
    security(("session" = []), ("api_key" = [])),
    params(("guild_id" = Snowflake, Path), ("feature_id" = String, Path),
        ("name" = String, Path, description = "The file's name; may contain `/`")),
    responses((status = 200, description = FILE_ANSWER, content(
            (String = "text/html", example = examples::transcript), ("*/*"))),
        CallerErrors, GuildErrors))]
pub async fn download(
    State(state): State<ApiState>,
    access: GuildAccess,
    Path((_, feature_id, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    serve(&state, &Scope::new(access.guild.id, feature_id), &name).await
}

/// A file through a signed link, until the link expires. No sign-in: the link
/// is the permission.
#[utoipa::path(get, path = "/files/{token}", tag = "files", operation_id = "getLinkedFile",
    params(("token" = String, Path, description = "What `files.link` made, after `/files/`")),
    responses((status = 200, description = FILE_ANSWER, content(
            (String = "text/html", example = examples::transcript), ("*/*"))),
        (status = 404, description = "No such link, or it expired, or the file is gone", body = crate::api::error::ErrorBody)))]
pub async fn linked(
    State(state): State<ApiState>,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let gone = || ApiError::NotFound("this link has expired or is not valid".into());
    let linked = state
        .runtime()
        .file_links()
        .check(&token)
        .await?
        .ok_or_else(gone)?;
    serve(&state, &linked.scope, &linked.name)
        .await
        .map_err(|_| gone())
}

async fn serve(state: &ApiState, scope: &Scope, name: &str) -> ApiResult<Response> {
    let (info, data) = state
        .store()
        .file(scope, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("file `{name}`")))?;
    let content_type = HeaderValue::from_str(&info.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let base = info.content_type.split(';').next().unwrap_or("");
    let shown = base.starts_with("image/") || base == "text/plain" || base == "text/html";
    let file_name = name.rsplit('/').next().unwrap_or(name);
    let disposition = format!(
        "{}; filename=\"{file_name}\"",
        if shown { "inline" } else { "attachment" }
    );
    let mut response = data.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FILE_CSP),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(ApiError::internal)?,
    );
    Ok(response)
}
