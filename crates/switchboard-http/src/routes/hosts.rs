//! `GET /hosts`: the inventory, or the hosts a selector names.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use switchboard_core::token::Scope;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::caller::Caller;
use crate::error::{ApiError, ErrorBody};

/// Which hosts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HostsQuery {
    /// A selector: `web-1`, `group:prod`, `tag:db`, `web-*`, combined with
    /// `,` (or), `&` (and) and `!` (not). Default: every host.
    selector: Option<String>,
}

/// A host of the inventory.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostDto {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: Option<String>,
    /// Every group it is in, nested groups included.
    pub groups: Vec<String>,
    pub tags: Vec<String>,
    pub vars: BTreeMap<String, String>,
}

/// Lists the inventory's hosts, or those a selector names (400 saying why
/// when it names none).
#[utoipa::path(
    get, path = "/hosts", tag = "hosts",
    params(HostsQuery),
    responses((status = 200, body = Vec<HostDto>), (status = 400, body = ErrorBody))
)]
pub async fn list_hosts(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<HostsQuery>, QueryRejection>,
) -> Result<Json<Vec<HostDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see hosts")
        .await?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    // The catalog's inventory with what its dynamic sources found.
    let inventory = state.engine.inventory();
    let hosts = match query.selector.as_deref().map(str::trim) {
        None | Some("") => inventory.hosts().collect(),
        Some(selector) => inventory.select(selector).map_err(ApiError::bad_request)?,
    };
    Ok(Json(
        hosts
            .into_iter()
            .map(|h| HostDto {
                name: h.name.clone(),
                address: h.address.clone(),
                port: h.port,
                user: h.user.clone(),
                groups: h.groups.iter().cloned().collect(),
                tags: h.tags.iter().cloned().collect(),
                vars: h.vars.clone(),
            })
            .collect(),
    ))
}
