//! Alerts in and out: `POST /alerts/alertmanager` (an Alertmanager
//! `webhook_config`'s notifications), `POST /alerts` (Alertmanager's
//! `/api/v2/alerts` array as Prometheus sends it, PagerDuty Events v2, or
//! Switchboard's own JSON, told apart by their shape), and `GET /alerts`.
//! Reading the formats is `core::alerts::payload`'s; keeping them the
//! engine's.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use switchboard_core::Timestamp;
use switchboard_core::alerts::payload::{self, Source};
use switchboard_core::token::Scope;
use switchboard_engine::alerts::IngestSummary;
use switchboard_store::StoredAlert;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::caller::Caller;
use crate::dto::{RawBody, field_error, page_limit};
use crate::error::{ApiError, ErrorBody};

/// What an ingest did.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestDto {
    /// Alerts now firing.
    pub firing: usize,
    /// Alerts now resolved.
    pub resolved: usize,
    /// Events taken but not acted on (acknowledgements; resolutions of
    /// unknown keys).
    pub ignored: usize,
}

impl From<IngestSummary> for IngestDto {
    fn from(s: IngestSummary) -> Self {
        Self {
            firing: s.firing,
            resolved: s.resolved,
            ignored: s.ignored,
        }
    }
}

async fn ingest(
    state: &AppState,
    caller: &Caller,
    source: Source,
    body: &[u8],
) -> Result<Json<IngestDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Run, "send alerts")
        .await?;
    let alerts = payload::parse(source, body, Timestamp::now()).map_err(|e| {
        if e.path.is_empty() {
            ApiError::bad_request(e.message)
        } else {
            field_error(&e.path, e.message)
        }
    })?;
    Ok(Json(state.engine.ingest_alerts(alerts).await?.into()))
}

/// Receives an Alertmanager webhook notification (version 4; fields newer
/// Alertmanagers add are ignored).
#[utoipa::path(
    post, path = "/alerts/alertmanager", tag = "alerts",
    request_body(content = String, content_type = "application/json", description = "Alertmanager webhook payload"),
    responses((status = 200, body = IngestDto), (status = 400, description = "Not a body of that format; the error names the field", body = ErrorBody))
)]
pub async fn from_alertmanager(
    State(state): State<AppState>,
    caller: Caller,
    RawBody(body): RawBody,
) -> Result<Json<IngestDto>, ApiError> {
    ingest(&state, &caller, Source::AlertmanagerWebhook, &body).await
}

/// Which format a `POST /alerts` body is, by its shape: an array of alerts
/// in Switchboard's format (they say `status` or use its snake_case times)
/// or else Alertmanager's API array; an object with `event_action` is a
/// PagerDuty event, one with `version` and `alerts` an Alertmanager
/// webhook, any other Switchboard's format.
fn format_of(body: &[u8]) -> Source {
    let ours = |item: &serde_json::Value| {
        ["status", "starts_at", "ends_at", "generator_url"]
            .iter()
            .any(|k| item.get(k).is_some())
    };
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(items)) if items.iter().any(ours) => Source::Generic,
        Ok(serde_json::Value::Array(_)) => Source::AlertmanagerApi,
        Ok(v) if v.get("event_action").is_some() => Source::PagerDuty,
        Ok(v) if v.get("version").is_some() && v.get("alerts").is_some() => {
            Source::AlertmanagerWebhook
        }
        _ => Source::Generic,
    }
}

/// Receives alerts: Alertmanager's `/api/v2/alerts` array (Prometheus can
/// send here), a PagerDuty Events v2 event, or Switchboard's JSON (one
/// alert or an array; see docs/alerts.md).
#[utoipa::path(
    post, path = "/alerts", tag = "alerts",
    request_body(content = String, content_type = "application/json", description = "Alerts in one of the accepted formats"),
    responses((status = 200, body = IngestDto), (status = 400, description = "Not a body of that format; the error names the field", body = ErrorBody))
)]
pub async fn receive(
    State(state): State<AppState>,
    caller: Caller,
    RawBody(body): RawBody,
) -> Result<Json<IngestDto>, ApiError> {
    ingest(&state, &caller, format_of(&body), &body).await
}

/// Which alerts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// `firing` (the default) or `all` (resolved ones too).
    state: Option<String>,
    /// At most this many (default 500, at most 5000).
    limit: Option<u32>,
}

/// An alert as kept.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDto {
    /// Alertmanager's fingerprint of its labels.
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `firing` or `resolved`.
    pub status: String,
    pub starts_at: String,
    /// When a firing alert resolves unless renewed; when a resolved one ended.
    pub ends_at: Option<String>,
    pub updated_at: String,
    /// The format it came in.
    pub source: String,
    pub generator_url: Option<String>,
}

impl From<StoredAlert> for AlertDto {
    fn from(a: StoredAlert) -> Self {
        Self {
            fingerprint: a.fingerprint,
            labels: a.labels,
            annotations: a.annotations,
            status: if a.firing { "firing" } else { "resolved" }.to_owned(),
            starts_at: a.starts_at.to_string(),
            ends_at: a.ends_at.map(|t| t.to_string()),
            updated_at: a.updated_at.to_string(),
            source: a.source,
            generator_url: a.generator_url,
        }
    }
}

/// The alerts kept, firing first, newest first.
#[utoipa::path(
    get, path = "/alerts", tag = "alerts", params(AlertsQuery),
    responses((status = 200, body = Vec<AlertDto>), (status = 400, body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AlertsQuery>, QueryRejection>,
) -> Result<Json<Vec<AlertDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see alerts")
        .await?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let firing_only = match query.state.as_deref() {
        None | Some("firing") => true,
        Some("all") => false,
        Some(other) => {
            return Err(field_error(
                "state",
                format!("`{other}` is not `firing` or `all`"),
            ));
        }
    };
    let limit = page_limit(query.limit, 500, 5000)?;
    let alerts = state.engine.alerts(firing_only, limit).await?;
    Ok(Json(alerts.into_iter().map(AlertDto::from).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_apart_by_shape() {
        assert_eq!(
            format_of(br#"[{"labels":{"a":"b"}}]"#),
            Source::AlertmanagerApi
        );
        assert_eq!(
            format_of(br#"[{"labels":{"a":"b"},"status":"firing"}]"#),
            Source::Generic
        );
        assert_eq!(
            format_of(br#"{"event_action":"trigger","routing_key":"k"}"#),
            Source::PagerDuty
        );
        assert_eq!(
            format_of(br#"{"version":"4","alerts":[]}"#),
            Source::AlertmanagerWebhook
        );
        assert_eq!(format_of(br#"{"labels":{"a":"b"}}"#), Source::Generic);
        assert_eq!(format_of(b"not json"), Source::Generic);
    }
}
