//! Operating endpoints: `/healthz`, `/readyz`, `/metrics`, the OpenAPI
//! document, and a plain index at `/`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// The answer of the health endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthDto {
    /// `ok`, `ready` or `not_ready`.
    pub status: &'static str,
    pub node: String,
    /// Whether this node holds the leader lease (singleton duties such as
    /// schedules run on the leader only); on `/readyz`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set when the last catalog reload failed (the previous one serves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_reload_error: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = HealthDto)))]
pub async fn healthz(State(state): State<AppState>) -> Json<HealthDto> {
    Json(HealthDto {
        status: "ok",
        node: state.engine.node().to_owned(),
        leader: None,
        reason: None,
        catalog_reload_error: None,
    })
}

/// Readiness: the store answers and a catalog is loaded.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, body = HealthDto), (status = 503, body = HealthDto))
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<HealthDto>) {
    let node = state.engine.node().to_owned();
    let catalog_reload_error = state.engine.last_reload_error();
    match state.engine.store().ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(HealthDto {
                status: "ready",
                node,
                leader: Some(state.engine.is_leader()),
                reason: None,
                catalog_reload_error,
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: the store does not answer");
            let reason = Some("the store does not answer".to_owned());
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(HealthDto {
                    status: "not_ready",
                    node,
                    leader: Some(state.engine.is_leader()),
                    reason,
                    catalog_reload_error,
                }),
            )
        }
    }
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    state.engine.refresh_queue_depth().await;
    if state.engine.encode_metrics(&mut text).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, content_type = "application/json", body = Object)))]
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi_json.as_str().to_owned(),
    )
        .into_response()
}
