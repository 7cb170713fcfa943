//! `GET /actions` and `GET /actions/{name}`.

use axum::Json;
use axum::extract::State;
use switchboard_core::token::Scope;

use crate::AppState;
use crate::caller::Caller;
use crate::dto::{ActionDto, PathText};
use crate::error::{ApiError, ErrorBody};

/// Lists the catalog's actions the caller may view, by name.
#[utoipa::path(get, path = "/actions", tag = "actions", responses((status = 200, body = Vec<ActionDto>), (status = 401, body = ErrorBody)))]
pub async fn list_actions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ActionDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see actions")
        .await?;
    Ok(Json(
        state
            .engine
            .visible_actions(caller.identity(), &caller.origin)
            .iter()
            .map(|a| ActionDto::from(a.as_ref()))
            .collect(),
    ))
}

/// Shows one action with its parameters and aliases.
#[utoipa::path(
    get, path = "/actions/{name}", tag = "actions",
    params(("name" = String, Path, description = "Action name, e.g. `host.disk`")),
    responses((status = 200, body = ActionDto), (status = 404, body = ErrorBody))
)]
pub async fn get_action(
    State(state): State<AppState>,
    caller: Caller,
    PathText(name): PathText,
) -> Result<Json<ActionDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see actions")
        .await?;
    let action = state
        .engine
        .visible_action(caller.identity(), &caller.origin, &name)
        .await?;
    Ok(Json(ActionDto::from(action.as_ref())))
}
