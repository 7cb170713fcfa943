//! The one mapping from failures to HTTP answers. Client mistakes get a 4xx
//! with a JSON body naming the field; anything else is logged in full and
//! answered with a bare 500, so internals never reach the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_engine::{EngineError, HookError};
use utoipa::ToSchema;

/// One problem with one field of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, e.g. `params.lines` or `action`.
    pub field: String,
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `unknown_action`.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// Per-field problems, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error answering a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                details: self.details,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// A body that could not be read: over the size limit (413, `body_too_large`)
/// or broken off (400). One answer for every route that reads raw bytes.
impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                status,
                "body_too_large",
                format!(
                    "the request is larger than {} bytes, the most Switchboard reads",
                    crate::MAX_BODY_BYTES
                ),
            )
        } else {
            Self::bad_request(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ))
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::UnknownAction { .. } => {
                let mut err = Self::new(StatusCode::NOT_FOUND, "unknown_action", e.to_string());
                err.details.push(FieldError {
                    field: "action".into(),
                    message: e.to_string(),
                });
                err
            }
            EngineError::InvalidParams(errors) => {
                let message = format!(
                    "invalid parameters: {}",
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                let mut err =
                    Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_params", message);
                err.details = errors
                    .into_iter()
                    .map(|p| FieldError {
                        field: format!("params.{}", p.param),
                        message: p.message,
                    })
                    .collect();
                err
            }
            EngineError::NotFound(_)
            | EngineError::UnknownSilence(_)
            | EngineError::UnknownAlert(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            EngineError::AlreadyFinished { .. } => {
                Self::new(StatusCode::CONFLICT, "already_finished", e.to_string())
            }
            EngineError::NotAwaitingApproval { .. } => {
                Self::new(StatusCode::CONFLICT, "not_awaiting_approval", e.to_string())
            }
            EngineError::WorkflowState(_) => {
                Self::new(StatusCode::CONFLICT, "workflow_state", e.to_string())
            }
            EngineError::AlreadyAnswered { .. } => {
                Self::new(StatusCode::CONFLICT, "already_answered", e.to_string())
            }
            EngineError::Catalog(errors) => {
                let mut err = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "catalog_invalid",
                    errors.to_string(),
                );
                err.details = errors
                    .0
                    .iter()
                    .map(|c| FieldError {
                        field: match (c.line, &c.key) {
                            (Some(l), Some(k)) => format!("{}:{l}: {k}", c.file.display()),
                            (Some(l), None) => format!("{}:{l}", c.file.display()),
                            _ => c.file.display().to_string(),
                        },
                        message: c.message.clone(),
                    })
                    .collect();
                err
            }
            EngineError::Audit(_) => {
                tracing::error!(error = %e, "refusing work that cannot be audited");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "audit_unavailable",
                    "the audit log cannot be written; nothing was run",
                )
            }
            EngineError::Unauthenticated(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string())
            }
            EngineError::Forbidden(_) => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
            }
            EngineError::UnknownPrincipal(_) => {
                let mut err = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_principal",
                    e.to_string(),
                );
                err.details.push(FieldError {
                    field: "principal".into(),
                    message: e.to_string(),
                });
                err
            }
            EngineError::Invalid(_) => Self::bad_request(e.to_string()),
            EngineError::DirectoryUnavailable(_) => {
                tracing::error!(error = %e, "denied: the user directory cannot be reached");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "directory_unavailable",
                    "the user directory cannot be reached, so the request is denied",
                )
            }
            EngineError::TokenNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            EngineError::ShuttingDown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                e.to_string(),
            ),
            EngineError::Store(inner) => Self::internal(&inner),
            EngineError::TempDir { .. } | EngineError::Internal(_) => Self::internal(&e),
        }
    }
}

impl From<HookError> for ApiError {
    fn from(e: HookError) -> Self {
        let message = e.to_string();
        match e {
            HookError::UnknownHook(_) => Self::new(StatusCode::NOT_FOUND, "unknown_hook", message),
            HookError::BadSignature(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "bad_signature", message)
            }
            HookError::Stale(_) => Self::new(StatusCode::UNAUTHORIZED, "stale", message),
            HookError::Replay(_) => Self::new(StatusCode::UNAUTHORIZED, "replay", message),
            HookError::BadRequest { field, message } => {
                let mut err = Self::bad_request(format!("{field}: {message}"));
                err.details.push(FieldError { field, message });
                err
            }
            HookError::Engine(inner) => inner.into(),
        }
    }
}

pub(crate) async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no such endpoint `{}`", uri.path()),
    )
}

pub(crate) async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("`{method}` is not allowed on `{}`", uri.path()),
    )
}

pub(crate) fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(&"a request handler panicked").into_response()
}
