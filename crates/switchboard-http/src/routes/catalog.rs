//! `GET /catalog` and `POST /catalog/reload`.

use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::caller::Caller;
use crate::dto::{CatalogDto, ReloadDto};
use crate::error::{ApiError, ErrorBody};
use switchboard_core::token::Scope;

/// Shows which catalog version is serving and whether the last reload failed.
#[utoipa::path(get, path = "/catalog", tag = "catalog", responses((status = 200, body = CatalogDto)))]
pub async fn get_catalog(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CatalogDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see the catalog")
        .await?;
    let catalog = state.engine.catalog();
    Ok(Json(CatalogDto {
        root: catalog.root.display().to_string(),
        version: catalog.version.hash.clone(),
        git_commit: catalog.version.git_commit.clone(),
        actions: catalog.len(),
        last_reload_error: state.engine.last_reload_error(),
    }))
}

/// Reloads the catalog from its folder. When it has errors, the previous
/// catalog keeps serving and the answer lists every error with file and line.
#[utoipa::path(
    post, path = "/catalog/reload", tag = "catalog",
    responses((status = 200, body = ReloadDto), (status = 422, description = "The catalog has errors", body = ErrorBody))
)]
pub async fn reload(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ReloadDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Admin, "reload the catalog")
        .await?;
    let report = state
        .engine
        .reload_catalog(caller.principal(), &caller.origin)
        .await?;
    Ok(Json(ReloadDto {
        version: report.version.hash,
        git_commit: report.version.git_commit,
        actions: report.actions,
        changed: report.changed,
    }))
}
