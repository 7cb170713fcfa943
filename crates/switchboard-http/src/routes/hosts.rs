//! `GET /hosts`: the inventory, or the hosts a selector names; and
//! `GET /hosts/attention`: the hosts that need attention.

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

/// Over which recent window.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttentionQuery {
    /// How far back to look, e.g. `24h` (the default) or `7d`.
    within: Option<String>,
}

/// An action a host is failing: its latest run there did not succeed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailingActionDto {
    pub action: String,
    pub execution: i64,
    pub status: String,
    /// When that run ended (RFC 3339).
    pub at: String,
    pub error: Option<String>,
}

/// A firing alert about a host.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostAlertDto {
    pub fingerprint: String,
    pub alertname: String,
    pub severity: Option<String>,
    /// When it started firing (RFC 3339).
    pub since: String,
}

/// A host that needs attention.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostAttentionDto {
    pub host: String,
    /// Its firing alerts, most severe first.
    pub alerts: Vec<HostAlertDto>,
    /// Newest first.
    pub failing: Vec<FailingActionDto>,
    /// Runs on it in the window that did not succeed, recovered or not.
    pub failures: usize,
    /// Whether the inventory lists it.
    pub known: bool,
}

/// The hosts with firing alerts or whose latest run of some action did not
/// succeed (among the runs the caller may view), worst first: the most
/// severe alert, then the most alerts, then the most failing actions, the
/// most failures, the most recent.
#[utoipa::path(
    get, path = "/hosts/attention", tag = "hosts",
    params(AttentionQuery),
    responses((status = 200, body = Vec<HostAttentionDto>), (status = 400, body = ErrorBody))
)]
pub async fn hosts_attention(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AttentionQuery>, QueryRejection>,
) -> Result<Json<Vec<HostAttentionDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see executions")
        .await?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let within = match query.within.as_deref() {
        None => std::time::Duration::from_secs(24 * 3600),
        Some(text) => switchboard_core::params::parse_duration(text)
            .map_err(|e| crate::dto::field_error("within", e))?,
    };
    let since = switchboard_core::Timestamp::now().before(within);
    let hosts = state
        .engine
        .attention(caller.identity(), &caller.origin, since)
        .await?;
    Ok(Json(
        hosts
            .into_iter()
            .map(|h| HostAttentionDto {
                host: h.host,
                alerts: h
                    .alerts
                    .into_iter()
                    .map(|a| HostAlertDto {
                        fingerprint: a.fingerprint,
                        alertname: a.alertname,
                        severity: a.severity,
                        since: a.since.to_string(),
                    })
                    .collect(),
                failing: h
                    .failing
                    .into_iter()
                    .map(|f| FailingActionDto {
                        action: f.action,
                        execution: f.execution.0,
                        status: f.status.as_str().to_owned(),
                        at: f.at.to_string(),
                        error: f.error,
                    })
                    .collect(),
                failures: h.failures,
                known: h.known,
            })
            .collect(),
    ))
}
