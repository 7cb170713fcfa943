//! Chat over HTTP: the console (`POST /api/v1/chat`, whose replies stream
//! back as server-sent events), identity links (`/api/v1/chat/links`), and
//! the platforms' inbound requests (`/chat/<platform>/<endpoint>`), which
//! are handed to that platform's adapter to verify and translate.
//!
//! The platform routes sit outside the token middleware: a platform proves
//! itself with its signature or token, which its adapter checks. They
//! answer as soon as the request is verified (platforms retry slow answers)
//! and the conversation goes on in the background.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_connectors::chat::HookRequest;
use switchboard_connectors::chat::console::{ConsoleEvent, ConsoleOutlet};
use switchboard_core::Timestamp;
use switchboard_core::chat::{ChatIdentity, Inbound, Room};
use switchboard_core::policy::Verb;
use switchboard_core::token::Scope;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use utoipa::ToSchema;

use crate::AppState;
use crate::caller::Caller;
use crate::dto::{JsonBody, PathText};
use crate::error::{ApiError, ErrorBody};

/// A line typed into the console.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    /// The command, as it would be typed in chat: `uptime`, `help logs`.
    pub text: String,
    /// Which console: `web` (default) or `shell` (`switchboard chat`).
    #[serde(default)]
    pub client: Option<String>,
}

/// Says one line to Switchboard as in chat, and streams the replies.
///
/// Events: `post` (a new message: `id`, `text`, and the structured `reply`),
/// `update` (message `id` now reads `text`), `file` (an attachment, shown
/// inline when it is text). The stream ends when everything the line
/// started has been reported.
#[utoipa::path(
    post, path = "/chat", tag = "chat",
    request_body = ChatBody,
    responses(
        (status = 200, description = "text/event-stream of `post`, `update` and `file` events"),
        (status = 400, description = "Malformed body", body = ErrorBody),
    )
)]
pub async fn console(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ChatBody>,
) -> Result<Response, ApiError> {
    // The console can run anything the caller may run.
    caller
        .require(&state.engine, Scope::Run, "use the chat console")
        .await?;
    let client = match body.client.as_deref() {
        None | Some("web") => "web",
        Some("shell") => "shell",
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`client` must be `web` or `shell`, not `{other}`"
            )));
        }
    };
    console_replies(&state, &caller, client, body.text)
}

/// Answers one console line of `caller` (from console `client`, `web` or
/// `shell`) as chat would, streaming the replies as server-sent events:
/// `post`, `update`, `file`. The web UI's console page uses it too.
pub(crate) fn console_replies(
    state: &AppState,
    caller: &Caller,
    client: &str,
    text: String,
) -> Result<Response, ApiError> {
    let principal = caller.principal().to_string();
    let sender =
        ChatIdentity::new(client, "console", principal.as_str()).map_err(ApiError::bad_request)?;
    let inbound = Inbound {
        delivery_id: None,
        sender,
        sender_name: None,
        sender_is_bot: false,
        authenticated: Some(caller.principal().clone()),
        room: Room {
            id: "console".to_owned(),
            name: Some("console".to_owned()),
            direct: true,
        },
        thread: None,
        message_id: None,
        text,
        mentioned: true,
    };
    let (outlet, rx) = ConsoleOutlet::new();
    let engine = state.engine.clone();
    let who = caller.identity().clone();
    tokio::spawn(async move {
        if let Err(e) = engine.console(inbound, who, outlet).await {
            tracing::warn!(error = %e, "a console line could not be answered");
        }
    });
    let events = ReceiverStream::new(rx).map(|e| {
        let name = match &e {
            ConsoleEvent::Post { .. } => "post",
            ConsoleEvent::Update { .. } => "update",
            ConsoleEvent::File { .. } => "file",
        };
        Ok::<Event, Infallible>(
            Event::default()
                .event(name)
                .json_data(&e)
                .unwrap_or_else(|_| Event::default().event("error").data("cannot encode event")),
        )
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// A link code to confirm.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// The code the bot sent in a direct message, e.g. `ABCD-EFGH`.
    pub code: String,
}

/// A chat identity linked to a principal.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatLinkDto {
    /// `platform:workspace/user`, e.g. `slack:T01ABC/U123`.
    pub chat_identity: String,
    pub principal: String,
    #[schema(value_type = String)]
    pub linked_at: Timestamp,
}

/// Confirms a link code: links the chat identity it was sent to with the
/// caller. Needs a token with the `run` scope, since the chat account can
/// then run whatever the caller may.
#[utoipa::path(
    post, path = "/chat/links", tag = "chat",
    request_body = LinkBody,
    responses(
        (status = 201, description = "Linked", body = ChatLinkDto),
        (status = 422, description = "Unknown, used or expired code", body = ErrorBody),
    )
)]
pub async fn confirm_link(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<LinkBody>,
) -> Result<(StatusCode, Json<ChatLinkDto>), ApiError> {
    caller
        .require(&state.engine, Scope::Run, "link a chat account")
        .await?;
    if body.code.len() > 64 {
        return Err(ApiError::bad_request("`code` is too long"));
    }
    let identity = state
        .engine
        .confirm_link(&body.code, caller.principal(), &caller.origin)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ChatLinkDto {
            chat_identity: identity.to_string(),
            principal: caller.principal().to_string(),
            linked_at: Timestamp::now(),
        }),
    ))
}

/// The chat identities linked to the caller.
#[utoipa::path(
    get, path = "/chat/links", tag = "chat",
    responses((status = 200, body = Vec<ChatLinkDto>))
)]
pub async fn list_links(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ChatLinkDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "list chat links")
        .await?;
    let links = state.engine.chat_links(caller.principal()).await?;
    Ok(Json(
        links
            .into_iter()
            .map(|(chat_identity, linked_at)| ChatLinkDto {
                chat_identity,
                principal: caller.principal().to_string(),
                linked_at,
            })
            .collect(),
    ))
}

/// Removes a link: one's own, or any when the policies permit `admin`.
#[utoipa::path(
    delete, path = "/chat/links/{identity}", tag = "chat",
    params(("identity" = String, Path, description = "`platform:workspace/user`")),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 404, description = "No such link of yours", body = ErrorBody),
    )
)]
pub async fn unlink(
    State(state): State<AppState>,
    caller: Caller,
    PathText(identity): PathText,
) -> Result<StatusCode, ApiError> {
    caller
        .require(&state.engine, Scope::Run, "unlink a chat account")
        .await?;
    let identity = ChatIdentity::try_from(identity).map_err(ApiError::bad_request)?;
    let mine = state
        .engine
        .chat_links(caller.principal())
        .await?
        .iter()
        .any(|(id, _)| *id == identity.to_string());
    if !mine
        && !state
            .engine
            .permits(caller.identity(), &caller.origin, Verb::Admin, None)
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{identity} is not linked to you"),
        ));
    }
    if state
        .engine
        .unlink(&identity, caller.principal(), &caller.origin)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{identity} is not linked"),
        ))
    }
}

/// `POST /chat/<platform>/<endpoint>`: a platform's inbound request.
pub async fn platform_hook(
    State(state): State<AppState>,
    Path((platform, endpoint)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        // Over the body limit, or a body that broke off: answered in JSON
        // like every client error.
        Err(e) => {
            let error = ApiError::from(e);
            tracing::warn!(%platform, %endpoint, message = %error.message, "chat request refused");
            return error.into_response();
        }
    };
    let Some(adapter) = state.chat.get(platform.as_str()).cloned() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("chat platform `{platform}` is not configured"),
        )
        .into_response();
    };
    let request = HookRequest {
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect::<BTreeMap<_, _>>(),
        body,
    };
    let answer = adapter.webhook(&endpoint, &request, Timestamp::now());
    if let Some(rejection) = &answer.rejection {
        tracing::warn!(%platform, %endpoint, status = answer.status, reason = %rejection.reason, "chat request refused");
        if let Some(sender) = rejection.claimed_sender.clone() {
            let engine = state.engine.clone();
            let reason = rejection.reason.clone();
            tokio::spawn(async move {
                engine.audit_chat_refusal(&sender, &reason).await;
            });
        }
    }
    let outlet = adapter.outlet();
    for inbound in answer.inbound {
        let engine = state.engine.clone();
        let outlet = outlet.clone();
        let adapter = adapter.clone();
        tokio::spawn(async move {
            let inbound = adapter.complete(inbound).await;
            if let Err(e) = engine.converse(inbound, outlet).await {
                tracing::warn!(error = %e, "a chat message could not be answered");
            }
        });
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CONTENT_TYPE, answer.content_type)],
        answer.body,
    )
        .into_response()
}
