//! Executions: submit, list, show, output (text, JSON or live server-sent
//! events) and cancel.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use switchboard_core::token::Scope;
use switchboard_core::{ActionName, ExecutionId, ExecutionStatus, Origin, Principal, Stream};
use switchboard_engine::{SubmitRequest, WatchEvent};
use switchboard_store::ExecutionFilter;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::caller::Caller;
use crate::dto::{
    ApprovalDto, ArtifactDto, ExecutionDto, ExecutionPage, JsonBody, OutputChunkDto, OutputDto,
    PathText, SubmitBody, field_error, page_limit, query_time,
};
use crate::error::{ApiError, ErrorBody};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;

pub(crate) fn parse_id(text: &str) -> Result<ExecutionId, ApiError> {
    text.parse()
        .map_err(|e: switchboard_core::IdError| ApiError::bad_request(e.to_string()))
}

/// Runs an action: validates its parameters and queues it.
#[utoipa::path(
    post, path = "/executions", tag = "executions",
    request_body = SubmitBody,
    responses(
        (status = 201, description = "Queued", body = ExecutionDto),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 404, description = "Unknown action", body = ErrorBody),
        (status = 422, description = "Invalid parameters", body = ErrorBody),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<SubmitBody>,
) -> Result<(StatusCode, Json<ExecutionDto>), ApiError> {
    caller
        .require(&state.engine, Scope::Run, "run actions")
        .await?;
    let request = SubmitRequest {
        action: body.action,
        params: body.params,
        requester: caller.identity().clone(),
        origin: caller.origin.clone(),
    };
    let execution = state.engine.submit(request).await?;
    Ok((StatusCode::CREATED, Json(ExecutionDto::from(&execution))))
}

/// Filters of the execution list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only this status.
    status: Option<String>,
    /// Only this action.
    action: Option<String>,
    /// Only this requester.
    requester: Option<String>,
    /// Only this origin, e.g. `cli`.
    origin: Option<String>,
    /// Created at or after this RFC 3339 time.
    since: Option<String>,
    /// Created before this RFC 3339 time.
    until: Option<String>,
    /// Only ids below this one (the `next_before` of the previous page).
    before: Option<i64>,
    /// Only the steps of this workflow execution.
    parent: Option<i64>,
    /// Page size, 1 to 1000 (default 50).
    limit: Option<u32>,
}

impl ListQuery {
    pub(crate) fn into_filter(self) -> Result<ExecutionFilter, ApiError> {
        let limit = page_limit(self.limit, DEFAULT_PAGE, MAX_PAGE)?;
        Ok(ExecutionFilter {
            status: self
                .status
                .map(|s| {
                    ExecutionStatus::parse(&s)
                        .ok_or_else(|| field_error("status", format!("unknown status `{s}`")))
                })
                .transpose()?,
            action: self
                .action
                .map(|a| ActionName::new(a).map_err(|e| field_error("action", e.to_string())))
                .transpose()?,
            requester: self
                .requester
                .map(|r| Principal::new(r).map_err(|e| field_error("requester", e.to_string())))
                .transpose()?,
            origin: self
                .origin
                .map(|o| Origin::new(o).map_err(|e| field_error("origin", e.to_string())))
                .transpose()?,
            since: query_time("since", self.since)?,
            until: query_time("until", self.until)?,
            before: self.before.map(ExecutionId),
            parent: self.parent.map(ExecutionId),
            limit,
            actions_in: None,
        })
    }
}

/// Lists executions, newest first, a page at a time.
#[utoipa::path(
    get, path = "/executions", tag = "executions", params(ListQuery),
    responses((status = 200, body = ExecutionPage), (status = 400, body = ErrorBody))
)]
pub async fn list_executions(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ExecutionPage>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "list executions")
        .await?;
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let filter = query.into_filter()?;
    let limit = filter.limit;
    let executions = state
        .engine
        .list_visible(caller.identity(), &caller.origin, filter)
        .await?;
    let next_before = (executions.len() == limit as usize)
        .then(|| executions.last().map(|e| e.id.0))
        .flatten();
    Ok(Json(ExecutionPage {
        executions: executions.iter().map(ExecutionDto::from).collect(),
        next_before,
    }))
}

/// Shows one execution.
#[utoipa::path(
    get, path = "/executions/{id}", tag = "executions",
    params(("id" = i64, Path, description = "Execution id")),
    responses((status = 200, body = ExecutionDto), (status = 404, body = ErrorBody))
)]
pub async fn get_execution(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
) -> Result<Json<ExecutionDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see executions")
        .await?;
    let execution = state
        .engine
        .get_visible(caller.identity(), &caller.origin, parse_id(&id)?)
        .await?;
    let mut dto = ExecutionDto::from(&execution);
    let answers = state.engine.approvals(execution.id).await?;
    if !answers.is_empty() || execution.status == ExecutionStatus::AwaitingApproval {
        dto.approvals = Some(answers.iter().map(ApprovalDto::from).collect());
    }
    let files = state.engine.artifacts(execution.id).await?;
    if !files.is_empty() {
        dto.artifacts = Some(
            files
                .into_iter()
                .map(|f| ArtifactDto::new(execution.id, f))
                .collect(),
        );
    }
    Ok(Json(dto))
}

/// A file an execution produced (a graph), as it is: `Content-Type` its
/// media type; shown inline when it is an image.
#[utoipa::path(
    get, path = "/executions/{id}/artifacts/{name}", tag = "executions",
    params(
        ("id" = i64, Path, description = "Execution id"),
        ("name" = String, Path, description = "The file's name, e.g. `cpu.png`"),
    ),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn get_artifact(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, name)): axum::extract::Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see executions")
        .await?;
    let id = parse_id(&id)?;
    state
        .engine
        .get_visible(caller.identity(), &caller.origin, id)
        .await?;
    let Some(file) = state.engine.artifact(id, &name).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("execution {id} has no file named `{name}`"),
        ));
    };
    let disposition = if file.media_type.starts_with("image/") {
        "inline"
    } else {
        "attachment"
    };
    Ok((
        [
            (header::CONTENT_TYPE, file.media_type.clone()),
            (
                header::CONTENT_DISPOSITION,
                format!("{disposition}; filename=\"{}\"", file.name),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        file.bytes,
    )
        .into_response())
}

/// Stops an execution: a queued one at once, a running one by signalling
/// its process group; answers with the execution once it has ended.
#[utoipa::path(
    post, path = "/executions/{id}/cancel", tag = "executions",
    params(("id" = i64, Path, description = "Execution id")),
    responses((status = 200, body = ExecutionDto), (status = 404, body = ErrorBody), (status = 409, description = "Already finished", body = ErrorBody))
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
) -> Result<Json<ExecutionDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Run, "cancel executions")
        .await?;
    let execution = state
        .engine
        .cancel(parse_id(&id)?, caller.identity(), &caller.origin)
        .await?;
    Ok(Json(ExecutionDto::from(&execution)))
}

/// An approver's answer.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// Why, shown to the requester and kept in the audit log.
    pub reason: Option<String>,
}

/// The result of an approval.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovedDto {
    pub execution: ExecutionDto,
    /// Approvals so far.
    pub approvals: u32,
    /// Approvals needed before it runs.
    pub needed: u32,
}

/// Approves an execution awaiting approval. The approver must be named by
/// the action's rule, permitted `approve`, and not the requester; the
/// execution is queued once enough distinct approvers said yes.
#[utoipa::path(
    post, path = "/executions/{id}/approve", tag = "approvals",
    params(("id" = i64, Path, description = "Execution id")),
    request_body = AnswerBody,
    responses((status = 200, body = ApprovedDto), (status = 403, body = ErrorBody), (status = 409, description = "Not awaiting approval, or already answered", body = ErrorBody))
)]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
    body: Option<JsonBody<AnswerBody>>,
) -> Result<Json<ApprovedDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Run, "approve executions")
        .await?;
    let reason = body.and_then(|JsonBody(b)| b.reason);
    let outcome = state
        .engine
        .approve(parse_id(&id)?, caller.identity(), &caller.origin, reason)
        .await?;
    Ok(Json(ApprovedDto {
        execution: ExecutionDto::from(&outcome.execution),
        approvals: outcome.approvals,
        needed: outcome.needed,
    }))
}

/// Rejects an execution awaiting approval: it ends `cancelled`, saying who
/// rejected it and why.
#[utoipa::path(
    post, path = "/executions/{id}/reject", tag = "approvals",
    params(("id" = i64, Path, description = "Execution id")),
    request_body = AnswerBody,
    responses((status = 200, body = ExecutionDto), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
    body: Option<JsonBody<AnswerBody>>,
) -> Result<Json<ExecutionDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Run, "reject executions")
        .await?;
    let reason = body.and_then(|JsonBody(b)| b.reason);
    let execution = state
        .engine
        .reject(parse_id(&id)?, caller.identity(), &caller.origin, reason)
        .await?;
    Ok(Json(ExecutionDto::from(&execution)))
}

/// The executions awaiting approval that the caller may answer, newest first.
#[utoipa::path(
    get, path = "/approvals", tag = "approvals",
    responses((status = 200, body = Vec<ExecutionDto>))
)]
pub async fn approval_queue(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ExecutionDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see requests for approval")
        .await?;
    let queue = state
        .engine
        .approval_queue(caller.identity(), &caller.origin)
        .await?;
    Ok(Json(queue.iter().map(ExecutionDto::from).collect()))
}

fn wants(headers: &HeaderMap, kind: &str) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(kind))
}

/// The output of an execution: server-sent events (`Accept:
/// text/event-stream`) that replay what was written and follow it live until
/// the end (an `end` event carries the final execution); JSON chunks
/// (`Accept: application/json`); or else the plain text so far.
#[utoipa::path(
    get, path = "/executions/{id}/output", tag = "executions",
    params(
        ("id" = i64, Path, description = "Execution id"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume a stream after this output sequence number"),
    ),
    responses(
        (status = 200, description = "Output as text/plain, application/json (OutputDto) or text/event-stream (events `output` with OutputChunkDto, then `end` with ExecutionDto)", body = OutputDto),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn get_output(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see output")
        .await?;
    let id = parse_id(&id)?;
    let execution = state
        .engine
        .get_visible(caller.identity(), &caller.origin, id)
        .await?;
    if wants(&headers, "text/event-stream") {
        let after = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let events =
            state.engine.watch_from(id, after).map(|ev| {
                let event = match ev {
                    WatchEvent::Output(chunk) => Event::default()
                        .event("output")
                        .id(chunk.seq.to_string())
                        .json_data(OutputChunkDto::from(&chunk)),
                    WatchEvent::Finished(e) => Event::default()
                        .event("end")
                        .json_data(ExecutionDto::from(e.as_ref())),
                };
                Ok::<Event, Infallible>(event.unwrap_or_else(|_| {
                    Event::default().event("error").data("cannot encode event")
                }))
            });
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response());
    }
    let mut chunks = Vec::new();
    let mut after = 0;
    loop {
        let page = state
            .engine
            .store()
            .output(id, after, 5000)
            .await
            .map_err(switchboard_engine::EngineError::from)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        chunks.extend(page);
    }
    if wants(&headers, "application/json") {
        let body = OutputDto {
            chunks: chunks.iter().map(OutputChunkDto::from).collect(),
            complete: execution.status.is_terminal(),
        };
        return Ok(Json(body).into_response());
    }
    let mut text = String::new();
    for c in &chunks {
        if c.stream == Stream::System {
            text.push_str("[switchboard] ");
        }
        text.push_str(&c.text);
        text.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}
