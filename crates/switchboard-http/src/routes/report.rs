//! `GET /report`: the auditor's report — who can do what, the principals,
//! tokens and chat links, and the evidence — as JSON, for `admin` only.
//! The CLI renders it (Markdown, HTML, CSV) and compares two of them.
//!
//! Not here: gathering it (the engine's `report`), its shape and
//! renderings (`switchboard_core::report`).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use switchboard_core::report::{DoorRow, Report, Selection};
use switchboard_core::token::Scope;
use switchboard_engine::report::ReportOptions;
use utoipa::IntoParams;

use crate::AppState;
use crate::caller::Caller;
use crate::dto::query_time;
use crate::error::{ApiError, ErrorBody};

/// What the report covers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Count the evidence from this RFC 3339 time on (default: all of it).
    since: Option<String>,
    /// Only these actions, comma-separated; `db.*` names a prefix.
    actions: Option<String>,
    /// For actions that take a host, ask about each of these hosts,
    /// comma-separated.
    hosts: Option<String>,
}

fn list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The report, made now from the running configuration.
#[utoipa::path(
    get, path = "/report", tag = "audit", params(ReportQuery),
    responses(
        (status = 200, description = "The report (see docs/report.md)", body = Object),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)
    )
)]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Json<Report>, ApiError> {
    caller
        .require(&state.engine, Scope::Admin, "read the access report")
        .await?;
    let Query(q) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let options = ReportOptions {
        since: query_time("since", q.since)?,
        selection: Selection {
            actions: list(q.actions.as_deref()),
            hosts: list(q.hosts.as_deref()),
        },
        doors: doors(&state),
    };
    Ok(Json(state.engine.report(&options).await?))
}

/// The doors this server opens, and how each knows who is calling.
fn doors(state: &AppState) -> Vec<DoorRow> {
    let tokens = match state.engine.oidc_issuer() {
        Some(issuer) => {
            format!("API tokens (only their hashes are kept), or OIDC bearer tokens of {issuer}")
        }
        None => "API tokens (only their hashes are kept)".to_owned(),
    };
    let mut doors = vec![
        DoorRow {
            door: "api".to_owned(),
            reaches: "the HTTP API (/api/v1) and the CLI".to_owned(),
            authentication: tokens.clone(),
            ..DoorRow::default()
        },
        DoorRow {
            door: "web".to_owned(),
            reaches: "the web UI (/ui)".to_owned(),
            authentication: format!(
                "a session signed in with {}; forms carry a CSRF token",
                if state.engine.oidc_login_enabled() {
                    "the OIDC provider or an API token"
                } else {
                    "an API token"
                }
            ),
            ..DoorRow::default()
        },
    ];
    for (platform, adapter) in state.chat.iter() {
        let door = adapter.door();
        doors.push(DoorRow {
            door: format!("chat:{platform}"),
            reaches: door.reaches,
            authentication: format!(
                "{}; linked chat accounts act as their principal, others as anonymous",
                door.authentication
            ),
            ..DoorRow::default()
        });
    }
    if let Some(rpc) = &state.chatops_rpc {
        doors.push(DoorRow {
            door: "chatops-rpc".to_owned(),
            reaches: format!("Hubot at {}/_chatops, namespace {}", rpc.base_url, rpc.namespace),
            authentication: format!(
                "requests signed with Hubot's RSA key (nonce once, 5-minute window); users as {} identities of {}",
                rpc.platform, rpc.workspace
            ),
            ..DoorRow::default()
        });
    }
    doors
}
