//! Alerts in and out: `POST /alerts/alertmanager` (an Alertmanager
//! `webhook_config`'s notifications), `POST /alerts` (Alertmanager's
//! `/api/v2/alerts` array as Prometheus sends it, PagerDuty Events v2, or
//! Switchboard's own JSON, told apart by their shape), `GET /alerts`, one
//! alert with its groups and notifications (`GET /alerts/{fingerprint}`),
//! the aggregation groups and the deliveries of notifications.
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
use switchboard_engine::alerts::{AckView, GroupView, IngestSummary};
use switchboard_store::{StoredAlert, StoredDelivery};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::caller::Caller;
use crate::dto::{JsonBody, PathText, RawBody, field_error, page_limit};
use crate::error::{ApiError, ErrorBody};

/// What an ingest did.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestDto {
    /// Alerts now firing.
    pub firing: usize,
    /// Alerts now resolved.
    pub resolved: usize,
    /// Alerts acknowledged (PagerDuty `acknowledge` events).
    pub acknowledged: usize,
    /// Events taken but not acted on (acknowledgements and resolutions of
    /// unknown keys).
    pub ignored: usize,
}

impl From<IngestSummary> for IngestDto {
    fn from(s: IngestSummary) -> Self {
        Self {
            firing: s.firing,
            resolved: s.resolved,
            acknowledged: s.acknowledged,
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
///
/// Only the keys are looked at (values are skipped, not built), so telling
/// the format costs a fraction of reading the alerts.
fn format_of(body: &[u8]) -> Source {
    use serde::de::{Deserializer, IgnoredAny};

    /// Whether the key is there, whatever its value (`null` included).
    fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        IgnoredAny::deserialize(d).map(|_| true)
    }

    /// The keys that tell the shapes apart; every other key is skipped.
    #[derive(Deserialize)]
    struct Keys {
        #[serde(default, deserialize_with = "present")]
        status: bool,
        #[serde(default, deserialize_with = "present")]
        starts_at: bool,
        #[serde(default, deserialize_with = "present")]
        ends_at: bool,
        #[serde(default, deserialize_with = "present")]
        generator_url: bool,
        #[serde(default, deserialize_with = "present")]
        event_action: bool,
        #[serde(default, deserialize_with = "present")]
        version: bool,
        #[serde(default, deserialize_with = "present")]
        alerts: bool,
    }
    impl Keys {
        fn ours(&self) -> bool {
            self.status || self.starts_at || self.ends_at || self.generator_url
        }
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return match serde_json::from_slice::<Vec<Keys>>(body) {
            Ok(items) if items.iter().any(Keys::ours) => Source::Generic,
            Ok(_) => Source::AlertmanagerApi,
            // Not an array of objects: Switchboard's reader says what is wrong.
            Err(_) => Source::Generic,
        };
    }
    match serde_json::from_slice::<Keys>(body) {
        Ok(k) if k.event_action => Source::PagerDuty,
        Ok(k) if k.version && k.alerts => Source::AlertmanagerWebhook,
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

/// An aggregation group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDto {
    /// A short id to acknowledge it by.
    pub id: String,
    /// Alertmanager's group key: the route's key and the group labels.
    pub group_key: String,
    pub receiver: String,
    pub labels: BTreeMap<String, String>,
    /// The route in `alerts.toml`, e.g. `route.routes[1]`.
    pub route: String,
    /// How many alerts it holds.
    pub alerts: usize,
    pub created_at: String,
    pub next_flush_at: String,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    pub acked_at: Option<String>,
    /// Its escalation chain, once started, and where it stands:
    /// `running`, `stopped` (acknowledged) or `finished`.
    pub escalation: Option<String>,
    pub escalation_state: Option<String>,
}

impl From<GroupView> for GroupDto {
    fn from(g: GroupView) -> Self {
        let (acked_by, acked_at) = g
            .acked
            .map_or((None, None), |(by, at)| (Some(by), Some(at.to_string())));
        let (escalation, escalation_state) = g
            .escalation
            .map_or((None, None), |(c, s)| (Some(c), Some(s.to_owned())));
        Self {
            id: g.id,
            acked_by,
            acked_at,
            escalation,
            escalation_state,
            group_key: g.group_key,
            receiver: g.receiver,
            labels: g.labels,
            route: g.route,
            alerts: g.alerts,
            created_at: g.created_at.to_string(),
            next_flush_at: g.next_flush_at.to_string(),
        }
    }
}

/// A notification's delivery and its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    pub id: i64,
    pub group_key: String,
    pub receiver: String,
    /// The receiver's outlet, e.g. `webhook[0]`.
    pub integration: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    /// `firing` or `resolved`.
    pub notification_status: String,
    /// How many alerts it lists.
    pub alerts: usize,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
}

impl From<StoredDelivery> for DeliveryDto {
    fn from(d: StoredDelivery) -> Self {
        let pending = d.status == switchboard_store::DeliveryStatus::Pending;
        Self {
            id: d.id,
            group_key: d.group_key,
            receiver: d.receiver,
            integration: d.integration,
            status: d.status.as_str().to_owned(),
            notification_status: d.notification["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            alerts: d.notification["alerts"].as_array().map_or(0, Vec::len),
            attempts: d.attempts,
            last_error: d.last_error,
            created_at: d.created_at.to_string(),
            next_attempt_at: pending.then(|| d.next_attempt_at.to_string()),
            delivered_at: d.delivered_at.map(|t| t.to_string()),
        }
    }
}

/// One alert, the groups it is in and their notifications.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDetailDto {
    pub alert: AlertDto,
    /// The automation runs it asked for, newest first.
    pub automations: Vec<AutomationDto>,
    /// Who acknowledged the alert itself.
    pub ack: Option<AckDto>,
    pub groups: Vec<GroupDto>,
    /// Newest first.
    pub deliveries: Vec<DeliveryDto>,
}

/// One alert by fingerprint, with its groups and their notifications.
#[utoipa::path(
    get, path = "/alerts/{fingerprint}", tag = "alerts",
    params(("fingerprint" = String, Path, description = "16 hex digits")),
    responses((status = 200, body = AlertDetailDto), (status = 404, body = ErrorBody))
)]
pub async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    PathText(fingerprint): PathText,
) -> Result<Json<AlertDetailDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see alerts")
        .await?;
    let Some(d) = state.engine.alert(&fingerprint).await? else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            format!("no alert with fingerprint `{fingerprint}`"),
        ));
    };
    Ok(Json(AlertDetailDto {
        automations: d
            .automations
            .into_iter()
            .map(|a| AutomationDto {
                rule: a.rule,
                state: a.state,
                execution_id: a.execution_id,
                reason: a.reason,
                due_at: a.due_at.to_string(),
                updated_at: a.updated_at.to_string(),
            })
            .collect(),
        ack: d.ack.map(|a| AckDto {
            kind: "alert".to_owned(),
            id: a.subject.trim_start_matches("alert:").to_owned(),
            acked_by: a.acked_by,
            acked_at: a.acked_at.to_string(),
            comment: a.comment,
        }),
        alert: d.alert.into(),
        groups: d.groups.into_iter().map(GroupDto::from).collect(),
        deliveries: d.deliveries.into_iter().map(DeliveryDto::from).collect(),
    }))
}

/// A run of an automation rule that an alert asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutomationDto {
    pub rule: String,
    /// `pending`, `ran`, `skipped` or `failed`.
    pub state: String,
    /// The execution, once it ran.
    pub execution_id: Option<i64>,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    pub due_at: String,
    pub updated_at: String,
}

/// An acknowledgement.
#[derive(Debug, Serialize, ToSchema)]
pub struct AckDto {
    /// `alert` or `group`.
    pub kind: String,
    /// The alert's fingerprint or the group's id.
    pub id: String,
    pub acked_by: String,
    pub acked_at: String,
    pub comment: String,
}

impl From<AckView> for AckDto {
    fn from(a: AckView) -> Self {
        Self {
            kind: a.kind.to_owned(),
            id: a.id,
            acked_by: a.acked_by,
            acked_at: a.acked_at.to_string(),
            comment: a.comment,
        }
    }
}

/// What to say with an acknowledgement.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    #[serde(default)]
    pub comment: String,
}

/// Acknowledges a firing alert (by fingerprint) or a group (by id); a
/// unique prefix of either will do. Needs the `silence` right; audited.
#[utoipa::path(
    post, path = "/alerts/{id}/ack", tag = "alerts",
    params(("id" = String, Path, description = "An alert's fingerprint or a group's id, or a unique prefix")),
    request_body = AckBody,
    responses((status = 200, body = AckDto), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn ack(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
    body: Option<JsonBody<AckBody>>,
) -> Result<Json<AckDto>, ApiError> {
    caller
        .require(&state.engine, Scope::Run, "acknowledge alerts")
        .await?;
    let comment = body.map(|JsonBody(b)| b.comment).unwrap_or_default();
    let done = state
        .engine
        .acknowledge(caller.identity(), &caller.origin, &id, &comment)
        .await?;
    Ok(Json(done.into()))
}

/// The aggregation groups, as routing made them.
#[utoipa::path(
    get, path = "/alerts/groups", tag = "alerts",
    responses((status = 200, body = Vec<GroupDto>))
)]
pub async fn groups(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<GroupDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see alerts")
        .await?;
    Ok(Json(
        state
            .engine
            .alert_groups()
            .into_iter()
            .map(GroupDto::from)
            .collect(),
    ))
}

/// Recent deliveries of notifications, newest first.
#[utoipa::path(
    get, path = "/alerts/deliveries", tag = "alerts",
    responses((status = 200, body = Vec<DeliveryDto>))
)]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<DeliveryDto>>, ApiError> {
    caller
        .require(&state.engine, Scope::Read, "see alerts")
        .await?;
    let list = state.engine.deliveries(200).await?;
    Ok(Json(list.into_iter().map(DeliveryDto::from).collect()))
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
        assert_eq!(format_of(b"  [1, 2]"), Source::Generic);
        assert_eq!(
            format_of(br#" [{"labels":{"status":"x"}},{"labels":{},"ends_at":null}]"#),
            Source::Generic,
            "a key of a later item; a label named like a key is no key"
        );
        assert_eq!(
            format_of(br#"[{"labels":{"status":"firing"}}]"#),
            Source::AlertmanagerApi
        );
    }
}
