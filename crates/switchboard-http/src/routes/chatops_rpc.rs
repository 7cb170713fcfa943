//! The ChatOps-RPC door for Hubot: `GET /_chatops` (the listing) and
//! `POST /_chatops/{method}` (an invocation). Outside the token middleware:
//! Hubot proves itself by its RSA signature, checked over the raw request
//! (with the URL Hubot called: the configured base URL and this path, as
//! sent, not decoded)
//! before anything is read; then its nonce is remembered, so a replay is
//! refused. An invocation runs through the engine as the chat user and is
//! answered when the run ends, or after `wait` with the execution's number
//! and where to follow it; the answer's buttons say the built-in methods
//! (`~approve`, `~reject`, `~cancel`), which steer a run as chat does.
//!
//! Not here: the signature's arithmetic, the listing and the wire format
//! (`switchboard_connectors::chat::chatops_rpc`), running anything (the
//! engine's `chatops_call` and `chatops_steer`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use switchboard_connectors::chat::chatops_rpc::{
    self as rpc, Answer, ChatopsRpcConfig, ErrorCode, RpcError, UserField,
};
use switchboard_core::chat::ChatIdentity;
use switchboard_core::{ExecutionStatus, Timestamp};
use switchboard_engine::chat::{RpcCall, RpcRun};

use crate::AppState;
use crate::error::ApiError;

/// `GET /_chatops`: the methods, one per alias of the catalog.
pub async fn listing(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let config = configured(&state)?;
        authenticate(&state, config, uri.path(), &headers, body).await?;
        let listing = rpc::listing(&state.engine.catalog(), &config.namespace);
        Ok(json(StatusCode::OK, &listing))
    };
    answer.await.unwrap_or_else(refusal)
}

/// `POST /_chatops/{method}`: runs the method for the chat user.
pub async fn invoke(
    State(state): State<AppState>,
    Path(method): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let config = configured(&state)?;
        let body = authenticate(&state, config, uri.path(), &headers, body).await?;
        // A built-in command, or an alias of the catalog.
        let target = match rpc::Steer::from_method(&method) {
            Some(steer) => Target::Steer(steer),
            None => Target::Alias(
                rpc::resolve_method(&state.engine.catalog(), &method).ok_or_else(|| {
                    RpcError::new(
                        ErrorCode::MethodNotFound,
                        format!(
                            "no method `{}`; the listing at /_chatops has them all",
                            method.chars().take(64).collect::<String>()
                        ),
                    )
                })?,
            ),
        };
        let invocation = rpc::parse_invocation(&method, &body)?;
        let user = match config.user_field {
            UserField::User => Some(&invocation.user),
            UserField::MentionSlug => invocation.mention_slug.as_ref(),
        }
        .ok_or_else(|| {
            RpcError::new(
                ErrorCode::InvalidRequest,
                "`mention_slug` is required: it names the user here",
            )
        })?;
        let sender = ChatIdentity::new(config.platform.as_str(), config.workspace.as_str(), user)
            .map_err(|e| RpcError::new(ErrorCode::InvalidRequest, e))?;
        let resolved = match target {
            Target::Alias(resolved) => resolved,
            Target::Steer(steer) => {
                let args: Vec<&str> = ["id", "reason"]
                    .iter()
                    .filter_map(|p| invocation.params.get(*p).map(String::as_str))
                    .collect();
                let said = state
                    .engine
                    .chatops_steer(&sender, &invocation.room_id, steer.verb(), &args)
                    .await
                    .map_err(engine_refusal)?;
                tracing::info!(method = %method, user = %invocation.user, room = %invocation.room_id, "ChatOps-RPC command");
                let answer = Answer {
                    result: said,
                    ..Answer::default()
                };
                return Ok(json(StatusCode::OK, &answer));
            }
        };
        resolved.check_params(&invocation.params)?;
        let call = RpcCall {
            sender,
            room: invocation.room_id.clone(),
            action: resolved.action.name.to_string(),
            params: invocation
                .params
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
            wait: config.wait,
        };
        let run = state
            .engine
            .chatops_call(call)
            .await
            .map_err(engine_refusal)?;
        tracing::info!(method = %method, user = %invocation.user, room = %invocation.room_id, principal = %run.principal, execution = %run.execution.id, "ChatOps-RPC invocation");
        let (status, body) = match answer(&run, config.wait) {
            Ok(a) => (StatusCode::OK, serde_json::to_value(a).unwrap_or_default()),
            Err(e) => (status_of(&e), e.body()),
        };
        Ok(json(status, &body))
    };
    answer.await.unwrap_or_else(refusal)
}

/// What an invocation's method names.
enum Target {
    /// A built-in command on a run already asked for.
    Steer(rpc::Steer),
    /// An alias of an action of the catalog.
    Alias(rpc::ResolvedMethod),
}

/// An engine error as the protocol's error, with its HTTP status.
fn engine_refusal(e: switchboard_engine::EngineError) -> RpcError {
    let e = ApiError::from(e);
    let code = match e.status {
        StatusCode::FORBIDDEN => ErrorCode::Denied,
        s if s.is_client_error() => ErrorCode::InvalidParams,
        _ => ErrorCode::Failed,
    };
    RpcError::new(code, e.message).with_status(e.status.as_u16())
}

fn configured(state: &AppState) -> Result<&Arc<ChatopsRpcConfig>, RpcError> {
    state.chatops_rpc.as_ref().ok_or_else(|| {
        RpcError::new(
            ErrorCode::MethodNotFound,
            "ChatOps-RPC is not configured here ([chatops_rpc])",
        )
    })
}

/// Checks the signature, the timestamp and the nonce; hands back the body.
async fn authenticate(
    state: &AppState,
    config: &ChatopsRpcConfig,
    path: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, RpcError> {
    let body = body.map_err(|e| {
        let error = ApiError::from(e);
        RpcError::new(ErrorCode::InvalidRequest, error.message).with_status(error.status.as_u16())
    })?;
    let headers: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let full_url = format!("{}{path}", config.base_url);
    let now = Timestamp::now();
    let verified = config
        .verifier
        .verify(&full_url, &headers, &body, now)
        .map_err(|r| {
            tracing::warn!(%path, kind = r.kind(), reason = %r, "ChatOps-RPC request refused");
            RpcError::new(ErrorCode::Unauthenticated, r.to_string())
        })?;
    // Remembered for as long as its timestamp would be accepted.
    let fresh = state
        .engine
        .chatops_nonce_fresh(&verified.nonce, now, 2 * rpc::MAX_SKEW)
        .await
        .map_err(|e| {
            let e = ApiError::from(e);
            RpcError::new(ErrorCode::Failed, e.message).with_status(e.status.as_u16())
        })?;
    if !fresh {
        tracing::warn!(%path, "ChatOps-RPC request refused: replayed nonce");
        return Err(RpcError::new(
            ErrorCode::Unauthenticated,
            "replayed request: this `Chatops-Nonce` was used before",
        ));
    }
    Ok(body)
}

/// What Hubot shows for a run: its result, or an error when it failed.
fn answer(run: &RpcRun, waited: Duration) -> Result<Answer, RpcError> {
    let e = &run.execution;
    let who = format!("run as {}", run.principal);
    let follow = run
        .link
        .as_ref()
        .map_or_else(|| format!("`switchboard logs {}`", e.id), |l| l.clone());
    let took = match (e.started_at, e.finished_at) {
        (Some(s), Some(f)) => format!(
            " in {}",
            humantime::format_duration(Duration::from_millis(
                u64::try_from((f.micros() - s.micros()) / 1000).unwrap_or(0)
            ))
        ),
        _ => String::new(),
    };
    let mut output = run.tail.clone();
    if run.partial {
        output = format!("…\n{output}\n(the last lines; all of it: {follow})");
    }
    let title = format!("{} #{} {}{took}", e.action, e.id, e.status.as_str());
    match e.status {
        ExecutionStatus::Succeeded => Ok(Answer {
            result: [format!("{title} ({who})"), output]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("\n"),
            title: Some(title),
            title_link: run.link.clone(),
            color: Some("2eb886".to_owned()),
            ..Answer::default()
        }),
        ExecutionStatus::AwaitingApproval => {
            let approvers = e
                .approval_rule
                .as_ref()
                .map(|r| format!(" by {}", r.approvers_text()))
                .unwrap_or_default();
            Ok(Answer {
                result: format!(
                    "{} #{} awaits approval{approvers} ({who}); approve it here (`approve {}`, or its button), with `switchboard approve {}`, in the web UI or in chat. It runs once approved: {follow}",
                    e.action, e.id, e.id, e.id
                ),
                color: Some("daa038".to_owned()),
                buttons: vec![
                    rpc::Steer::Approve.button(e.id.0),
                    rpc::Steer::Reject.button(e.id.0),
                ],
                ..Answer::default()
            })
        }
        ExecutionStatus::Queued | ExecutionStatus::Running => Ok(Answer {
            result: format!(
                "{} #{} is still {} after {} ({who}); it goes on. Follow it: {follow}",
                e.action,
                e.id,
                e.status.as_str(),
                humantime::format_duration(waited)
            ),
            color: Some("439fe0".to_owned()),
            buttons: vec![rpc::Steer::Cancel.button(e.id.0)],
            ..Answer::default()
        }),
        _ => {
            let mut message = format!("{title} ({who})");
            if let Some(code) = e.exit_code.filter(|c| *c != 0) {
                message.push_str(&format!(", exit code {code}"));
            }
            if let Some(error) = &e.error {
                message.push_str(&format!(": {error}"));
            }
            if !output.is_empty() {
                message.push('\n');
                message.push_str(&output);
            }
            Err(RpcError::new(ErrorCode::Failed, message))
        }
    }
}

fn status_of(e: &RpcError) -> StatusCode {
    StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST)
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(body).unwrap_or_default(),
    )
        .into_response()
}

fn refusal(e: RpcError) -> Response {
    json(status_of(&e), &e.body())
}
