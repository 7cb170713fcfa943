//! Silences: `GET /silences`, `POST /silences`, `DELETE /silences/{id}`.
//! Creating and expiring need a `run`-scoped token and the `silence` right
//! (the engine decides and audits).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_core::token::Scope;
use switchboard_engine::alerts::{NewSilence, SilenceView};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::caller::Caller;
use crate::dto::{JsonBody, PathText, field_error, query_time};
use crate::error::{ApiError, ErrorBody};

/// A silence to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
    /// Alertmanager's syntax: `alertname="Disk", instance=~"db-.*"`.
    pub matchers: String,
    /// RFC 3339; now when absent.
    pub starts_at: Option<String>,
    /// RFC 3339; or give `duration`.
    pub ends_at: Option<String>,
    /// How long from its start: `2h`, `30m`.
    pub duration: Option<String>,
    /// Why (required).
    pub comment: String,
}

/// A silence.
#[derive(Debug, Serialize, ToSchema)]
pub struct SilenceDto {
    pub id: String,
    pub matchers: String,
    pub starts_at: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
    /// `pending`, `active` or `expired`.
    pub state: String,
}

impl From<SilenceView> for SilenceDto {
    fn from(s: SilenceView) -> Self {
        Self {
            id: s.id,
            matchers: s.matchers,
            starts_at: s.starts_at.to_string(),
            ends_at: s.ends_at.to_string(),
            created_by: s.created_by,
            comment: s.comment,
            state: s.state.to_owned(),
        }
    }
}

/// Which silences.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SilencesQuery {
    /// `current` (pending and active, the default) or `all`.
    state: Option<String>,
}

/// Silences, newest first.
#[utoipa::path(
    get, path = "/silences", tag = "alerts", params(SilencesQuery),
    responses((status = 200, body = Vec<SilenceDto>), (status = 400, body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<SilencesQuery>, QueryRejection>,
) -> Result<Json<Vec<SilenceDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see silences")
        .await?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let all = match query.state.as_deref() {
        None | Some("current") => false,
        Some("all") => true,
        Some(other) => {
            return Err(field_error(
                "state",
                format!("`{other}` is not `current` or `all`"),
            ));
        }
    };
    let list = state.engine.silences(all).await?;
    Ok(Json(list.into_iter().map(SilenceDto::from).collect()))
}

/// Creates a silence.
#[utoipa::path(
    post, path = "/silences", tag = "alerts", request_body = SilenceBody,
    responses(
        (status = 201, body = SilenceDto),
        (status = 400, description = "Bad matchers, times or duration", body = ErrorBody),
        (status = 403, description = "No `silence` right", body = ErrorBody)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<SilenceBody>,
) -> Result<(StatusCode, Json<SilenceDto>), ApiError> {
    caller
        .require(&state.engine, Scope::Run, "create silences")
        .await?;
    let duration = body
        .duration
        .map(|d| {
            humantime::parse_duration(&d)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    field_error("duration", format!("`{d}` is not a duration like `2h`"))
                })
        })
        .transpose()?;
    let new = NewSilence {
        matchers: body.matchers,
        starts_at: query_time("starts_at", body.starts_at)?,
        ends_at: query_time("ends_at", body.ends_at)?,
        duration,
        comment: body.comment,
    };
    let created = state
        .engine
        .create_silence(caller.identity(), &caller.origin, new)
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Ends a silence now.
#[utoipa::path(
    delete, path = "/silences/{id}", tag = "alerts",
    params(("id" = String, Path, description = "Silence id")),
    responses((status = 200, body = SilenceDto), (status = 404, body = ErrorBody))
)]
pub async fn expire(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
) -> Result<Json<SilenceDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Run, "expire silences")
        .await?;
    let expired = state
        .engine
        .expire_silence(caller.identity(), &caller.origin, &id)
        .await?;
    Ok(Json(expired.into()))
}
