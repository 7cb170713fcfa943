//! Workflow executions: their step tree, answers to their inquiries, pause,
//! resume and re-run from a step. Starting a workflow is `POST /executions`
//! like any action; cancelling it is `POST /executions/{id}/cancel`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::token::Scope;
use utoipa::ToSchema;

use crate::AppState;
use crate::caller::Caller;
use crate::dto::{ExecutionDto, JsonBody, PathText};
use crate::error::{ApiError, ErrorBody};
use crate::routes::executions::parse_id;

/// The steps of a workflow execution in file order, each with its status,
/// attempts (each its own execution), inquiry and answer; `null` before
/// the workflow started.
#[utoipa::path(
    get, path = "/executions/{id}/steps", tag = "workflows",
    params(("id" = i64, Path, description = "Workflow execution id")),
    responses((status = 200, description = "The step tree", body = Object), (status = 400, description = "Not a workflow", body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn steps(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
) -> Result<Json<Option<switchboard_engine::WorkflowView>>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see executions")
        .await?;
    let id = parse_id(&id)?;
    state
        .engine
        .get_visible(caller.identity(), &caller.origin, id)
        .await?;
    Ok(Json(state.engine.workflow_view(id).await?))
}

/// An answer to a workflow's inquiry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// `yes`/`no`, one of the choices, or text, as the inquiry asks.
    pub answer: String,
    /// The inquiry's step, when more than one waits.
    pub step: Option<String>,
}

/// Answers the inquiry a workflow waits on. Whoever answers must be one of
/// the inquiry's approvers (when it names any) and be permitted `approve`
/// on the workflow; `no` fails the step.
#[utoipa::path(
    post, path = "/executions/{id}/answer", tag = "workflows",
    params(("id" = i64, Path, description = "Workflow execution id")),
    request_body = AnswerBody,
    responses((status = 200, description = "What was recorded", body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "Not waiting for an answer", body = ErrorBody))
)]
pub async fn answer(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
    JsonBody(body): JsonBody<AnswerBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller
        .require(&state.engine, Scope::Run, "answer workflows")
        .await?;
    let said = state
        .engine
        .answer(
            parse_id(&id)?,
            body.step.as_deref(),
            caller.identity(),
            &caller.origin,
            &body.answer,
        )
        .await?;
    Ok(Json(serde_json::json!({ "answered": said })))
}

/// Pauses a running workflow: steps already running finish, no new step
/// starts until it is resumed. Needs `cancel` on the workflow.
#[utoipa::path(
    post, path = "/executions/{id}/pause", tag = "workflows",
    params(("id" = i64, Path, description = "Workflow execution id")),
    responses((status = 204, description = "Paused"), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
) -> Result<StatusCode, ApiError> {
    caller
        .require(&state.engine, Scope::Run, "pause workflows")
        .await?;
    state
        .engine
        .pause(parse_id(&id)?, caller.identity(), &caller.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lets a paused workflow go on.
#[utoipa::path(
    post, path = "/executions/{id}/resume", tag = "workflows",
    params(("id" = i64, Path, description = "Workflow execution id")),
    responses((status = 204, description = "Resumed"), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
) -> Result<StatusCode, ApiError> {
    caller
        .require(&state.engine, Scope::Run, "resume workflows")
        .await?;
    state
        .engine
        .resume(parse_id(&id)?, caller.identity(), &caller.origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a re-run starts.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunBody {
    /// The step to start from; by default the first that failed.
    pub from: Option<String>,
}

/// Runs an ended workflow again from a step: the steps before it keep
/// their results and do not run again. A new execution, requested by the
/// caller (who needs `run` on the workflow).
#[utoipa::path(
    post, path = "/executions/{id}/rerun", tag = "workflows",
    params(("id" = i64, Path, description = "Workflow execution id")),
    request_body = RerunBody,
    responses((status = 201, body = ExecutionDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub async fn rerun(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
    body: Option<JsonBody<RerunBody>>,
) -> Result<(StatusCode, Json<ExecutionDto>), ApiError> {
    caller
        .require(&state.engine, Scope::Run, "run workflows")
        .await?;
    let from = body.and_then(|JsonBody(b)| b.from);
    let execution = state
        .engine
        .rerun(
            parse_id(&id)?,
            from.as_deref(),
            caller.identity(),
            &caller.origin,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(ExecutionDto::from(&execution))))
}
