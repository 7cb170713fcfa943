//! `GET /schedules`: the catalog's schedules with their next and last runs.

use axum::Json;
use axum::extract::State;
use switchboard_core::token::Scope;

use crate::AppState;
use crate::caller::Caller;
use crate::dto::ScheduleDto;
use crate::error::{ApiError, ErrorBody};

/// Lists the schedules whose action the caller may view, with the next
/// run (UTC and on the schedule's wall clock) and the last run with its
/// execution.
#[utoipa::path(
    get, path = "/schedules", tag = "triggers",
    responses((status = 200, body = Vec<ScheduleDto>), (status = 401, body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ScheduleDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see schedules")
        .await?;
    let visible: Vec<String> = state
        .engine
        .visible_actions(caller.identity(), &caller.origin)
        .iter()
        .map(|a| a.name.to_string())
        .collect();
    let schedules = state.engine.schedules().await?;
    Ok(Json(
        schedules
            .iter()
            .filter(|s| visible.contains(&s.action))
            .map(ScheduleDto::from)
            .collect(),
    ))
}
