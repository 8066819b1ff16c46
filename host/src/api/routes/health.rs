//! Probes for orchestrators and the Prometheus scrape.

use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::api::examples;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[schema(example = examples::health)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
#[schema(example = examples::readiness)]
pub struct Readiness {
    /// `ok` when every dependency answered.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// `ok`, or why the database is not reachable.
    pub database: String,
    /// `ok`, `not configured`, or why Redis is not reachable.
    pub redis: String,
    /// The gateway shards of this process: `ok` when all are connected, how
    /// many are when some are not, or `not in this process` (`townes api`).
    pub shards: String,
    /// The Discord call queue (the executor and its outbox): `ok` with its
    /// depth, `stopping`, or `not in this process`.
    pub queue: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "getHealth",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// What readiness says of the gateway and the queue when `townes api` runs
/// without them.
const NOT_HERE: &str = "not in this process";

/// Readiness: the database (and Redis, when configured) answer, and, when the
/// gateway runs in this process, every shard is connected and the Discord call
/// queue accepts work.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "getReadiness", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "A dependency does not answer", body = Readiness,
        example = examples::readiness_unavailable)))]
pub async fn readyz(State(state): State<ApiState>) -> impl IntoResponse {
    let database = match state.store().ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database");
            "unreachable".to_string()
        }
    };
    let redis = if state.live().uses_redis() {
        match state.live().ping().await {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: redis");
                "unreachable".to_string()
            }
        }
    } else {
        "not configured".to_string()
    };
    let (shards, shards_ready) = match state.platform() {
        None => (NOT_HERE.to_string(), true),
        Some(platform) => match platform.shards_connected().await {
            None => ("not connected yet".to_string(), false),
            Some((ready, total)) if ready == total && total > 0 => ("ok".to_string(), true),
            Some((ready, total)) => (format!("{ready} of {total} connected"), false),
        },
    };
    let (queue, queue_ready) = match state.platform() {
        None => (NOT_HERE.to_string(), true),
        Some(platform) if platform.executor.accepting() => (
            format!("ok ({} waiting)", platform.executor.queue_depth()),
            true,
        ),
        Some(_) => ("stopping".to_string(), false),
    };
    let ready = database == "ok" && redis != "unreachable" && shards_ready && queue_ready;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ok" } else { "unavailable" },
        database,
        redis,
        shards,
        queue,
    };
    (status, Json(body))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "health", operation_id = "getMetrics", responses(
    (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain",
        example = examples::metrics)))]
pub async fn metrics(State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    if let Some(platform) = state.platform() {
        platform.refresh_metrics().await;
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::metrics().render(),
    ))
}
