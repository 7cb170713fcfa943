//! `POST /api/v1/hooks/{name}`: an inbound webhook of the catalog. It
//! stands outside the bearer-token middleware: the request's HMAC
//! signature is its credential, checked by the engine over the raw body
//! before anything in it is read. The handler only hands the raw request
//! over and answers.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::dto::HookAcceptedDto;
use crate::error::{ApiError, ErrorBody};

/// Receives a signed call of a hook and queues its action, with
/// parameters taken from the JSON body. Every call is audited.
#[utoipa::path(
    post, path = "/api/v1/hooks/{name}", tag = "triggers",
    params(("name" = String, Path, description = "The hook's name in hooks.toml")),
    request_body(content = Object, description = "The sender's JSON, signed with the hook's secret", content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted: the execution is queued", body = HookAcceptedDto),
        (status = 400, description = "The body is not JSON, or a parameter's template found no value", body = ErrorBody),
        (status = 401, description = "Missing or wrong signature, stale timestamp, or replayed delivery", body = ErrorBody),
        (status = 403, description = "The policies deny the hook's principal", body = ErrorBody),
        (status = 404, description = "No such hook", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "The rendered parameters do not fit the action", body = ErrorBody),
    ),
    security(())
)]
pub async fn receive(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // Header names are lower case in `HeaderMap`; values that are not
    // text cannot carry a signature and are left out.
    let headers: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    match state.engine.receive_hook(&name, &headers, &body).await {
        Ok(execution) => (
            StatusCode::ACCEPTED,
            Json(HookAcceptedDto {
                execution_id: execution.id.0,
                status: execution.status.as_str().to_owned(),
                url: format!("/api/v1/executions/{}", execution.id),
            }),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
