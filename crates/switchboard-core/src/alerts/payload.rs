//! Ingest formats: the bodies other systems send alerts in, read leniently
//! and normalized into one [`IncomingAlert`].
//!
//! * **Alertmanager webhook, version 4** ([`parse_webhook`]): the
//!   notification an Alertmanager `webhook_config` posts. Unknown fields
//!   (newer Alertmanagers add `notification_reason`, `routeLabels`, …) are
//!   ignored; every field but `alerts` and each alert's `labels` may be
//!   missing or `null`. An alert's `status` is `firing` or `resolved`
//!   (missing: the message's status, else `firing`). The alert's
//!   `fingerprint` is not trusted: it is recomputed from the labels.
//! * **Alertmanager `POST /api/v2/alerts`** ([`parse_api_alerts`]): an array
//!   of `{labels, annotations?, startsAt?, endsAt?, generatorURL?}`, as
//!   Prometheus sends them. As in Alertmanager, an alert whose `endsAt` is
//!   not after `now` is resolved; any other is firing.
//! * **PagerDuty Events API v2** ([`parse_pagerduty`]): one event,
//!   `{routing_key, event_action, dedup_key?, payload?, client?, client_url?}`.
//!   A `trigger` needs `payload.summary`, `payload.source` and
//!   `payload.severity` (`critical`, `error`, `warning` or `info`), as
//!   PagerDuty requires; `acknowledge` and `resolve` need only `dedup_key`.
//!   Mapping: labels `alertname` = `payload.class`, or `PagerDuty` when the
//!   event has no class; `severity`; `instance` = `payload.source`;
//!   `component` and `group` when given; `dedup_key`. Annotations `summary`,
//!   `custom_details` (a string as it is, anything else as JSON text) and
//!   `client`. `client_url` is the generator URL, `payload.timestamp` the
//!   start. The summary is an annotation, not the alert name, because
//!   PagerDuty lets a trigger update an open incident's summary and the
//!   labels must stay the same for it to stay one alert. A trigger without
//!   `dedup_key` gets one derived from what it says (SHA-256 hex of
//!   `class`, `component`, `group`, `source` and `summary`, joined by
//!   `0xff`), so that repeating the same event does not open a second
//!   alert. `acknowledge` and `resolve` carry no payload (PagerDuty ignores
//!   it), so their labels are only `dedup_key`: the caller must find the
//!   alert they mean by [`IncomingAlert::dedup_key`], not by fingerprint.
//!   The `routing_key` is returned apart ([`PagerDutyEvent`]), never put in
//!   labels: it is the integration's credential.
//! * **Generic JSON** ([`parse_generic`]), Switchboard's own: one object or
//!   an array of them, `{"labels": {…}, "annotations"?: {…}, "status"?:
//!   "firing"|"resolved", "starts_at"?, "ends_at"?, "generator_url"?}` (the
//!   Alertmanager spellings `startsAt`, `endsAt`, `generatorURL` also work).
//!   Unknown fields are refused, since this format is ours and a typo should
//!   not pass silently. Without `status`, the alert is resolved when
//!   `ends_at` is not after `now`.
//!
//! Every format: at least one label; label names are Prometheus names;
//! times are RFC 3339 (`Z`, `+02:00` or `+0200`; Go's zero time
//! `0001-01-01T00:00:00Z` and the empty string mean none); an end before
//! the start is refused. Errors name the field as a path,
//! `alerts[1].labels.bad-name`.
//!
//! Not here: reading the request, checking its signature or routing key
//! (the HTTP layer), filling a missing start with the time received and
//! keeping alerts (the store).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::labels::{Fingerprint, LabelSet, is_valid_label_name};
use crate::ids::Timestamp;

/// Which format an alert came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    AlertmanagerWebhook,
    AlertmanagerApi,
    #[serde(rename = "pagerduty")]
    PagerDuty,
    Generic,
    /// Raised by an action's result.
    Action,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlertmanagerWebhook => "alertmanager_webhook",
            Self::AlertmanagerApi => "alertmanager_api",
            Self::PagerDuty => "pagerduty",
            Self::Generic => "generic",
            Self::Action => "action",
        }
    }
}

/// What the sender says about the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Firing (raised or still firing).
    Trigger,
    /// Acknowledged at the source (PagerDuty only).
    Acknowledge,
    /// Resolved.
    Resolve,
}

/// One alert as it arrived, in every format's common shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncomingAlert {
    pub labels: LabelSet,
    pub annotations: BTreeMap<String, String>,
    /// When it started; `None` when the sender did not say.
    pub starts_at: Option<Timestamp>,
    /// When it ends or ended; `None` when the sender did not say.
    pub ends_at: Option<Timestamp>,
    pub generator_url: Option<String>,
    pub source: Source,
    pub action: Action,
    /// PagerDuty's incident key (also the `dedup_key` label); `None` for
    /// the other formats.
    pub dedup_key: Option<String>,
}

impl IncomingAlert {
    /// Alertmanager's fingerprint of the labels.
    pub fn fingerprint(&self) -> Fingerprint {
        self.labels.fingerprint()
    }
}

/// A body that could not be read: the field (a path such as
/// `alerts[0].startsAt`, empty for the whole body) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct PayloadError {
    pub path: String,
    pub message: String,
}

fn fail<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, PayloadError> {
    Err(PayloadError {
        path: path.into(),
        message: message.into(),
    })
}

/// Reads `body` as `source`'s format. PagerDuty's routing key is dropped
/// ([`parse_pagerduty`] keeps it); `now` decides which Alertmanager API and
/// generic alerts have ended.
pub fn parse(
    source: Source,
    body: &[u8],
    now: Timestamp,
) -> Result<Vec<IncomingAlert>, PayloadError> {
    match source {
        Source::AlertmanagerWebhook => parse_webhook(body).map(|w| w.alerts),
        Source::AlertmanagerApi => parse_api_alerts(body, now),
        Source::PagerDuty => parse_pagerduty(body).map(|e| vec![e.alert]),
        // An action's alerts are in the generic format.
        Source::Generic | Source::Action => parse_generic(body, now).map(|alerts| {
            alerts
                .into_iter()
                .map(|a| IncomingAlert { source, ..a })
                .collect()
        }),
    }
}

/// An Alertmanager webhook notification: the group it is about and its
/// alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    pub version: Option<String>,
    pub group_key: String,
    pub truncated_alerts: u64,
    pub status: String,
    pub receiver: String,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    pub external_url: String,
    pub alerts: Vec<IncomingAlert>,
}

/// A PagerDuty event: its routing key and the alert it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyEvent {
    pub routing_key: String,
    pub alert: IncomingAlert,
}

type Map = BTreeMap<String, String>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireWebhook {
    version: Option<String>,
    group_key: Option<String>,
    truncated_alerts: Option<u64>,
    status: Option<String>,
    receiver: Option<String>,
    group_labels: Option<Map>,
    common_labels: Option<Map>,
    common_annotations: Option<Map>,
    #[serde(rename = "externalURL")]
    external_url: Option<String>,
    alerts: Vec<WireAlert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAlert {
    status: Option<String>,
    labels: Map,
    annotations: Option<Map>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    generator_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericAlert {
    labels: Map,
    #[serde(default)]
    annotations: Option<Map>,
    status: Option<String>,
    #[serde(alias = "startsAt")]
    starts_at: Option<String>,
    #[serde(alias = "endsAt")]
    ends_at: Option<String>,
    #[serde(alias = "generatorURL")]
    generator_url: Option<String>,
}

#[derive(Deserialize)]
struct WirePagerDuty {
    routing_key: String,
    event_action: String,
    dedup_key: Option<String>,
    payload: Option<WirePayload>,
    client: Option<String>,
    client_url: Option<String>,
}

#[derive(Deserialize)]
struct WirePayload {
    summary: Option<String>,
    source: Option<String>,
    severity: Option<String>,
    timestamp: Option<String>,
    component: Option<String>,
    group: Option<String>,
    class: Option<String>,
    custom_details: Option<serde_json::Value>,
}

/// PagerDuty's longest `dedup_key`.
const MAX_DEDUP_KEY: usize = 255;
const PD_SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, PayloadError> {
    // Read plainly first; only a body that fails is read again, tracking
    // the path to the field at fault (which costs on every field).
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        PayloadError {
            path: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })?;
    de.end().map_err(|e| PayloadError {
        path: String::new(),
        message: e.to_string(),
    })?;
    Ok(value)
}

/// `prefix.key`, or `key` at the top.
fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn label_set(prefix: &str, labels: Map) -> Result<LabelSet, PayloadError> {
    if labels.is_empty() {
        return fail(join(prefix, "labels"), "at least one label is required");
    }
    if let Some(bad) = labels.keys().find(|n| !is_valid_label_name(n)) {
        return fail(
            join(prefix, &format!("labels.{bad}")),
            "not a valid label name (letters, digits and `_`, not starting with a digit)",
        );
    }
    LabelSet::try_from(labels).map_err(|e| PayloadError {
        path: join(prefix, "labels"),
        message: e.to_string(),
    })
}

/// The start and end of an alert at `prefix`, named `keys` in its format.
fn times(
    prefix: &str,
    keys: (&str, &str),
    starts: Option<&str>,
    ends: Option<&str>,
) -> Result<(Option<Timestamp>, Option<Timestamp>), PayloadError> {
    let read = |key: &str, text: Option<&str>| match text {
        None => Ok(None),
        Some(t) => parse_time(t).map_err(|message| PayloadError {
            path: join(prefix, key),
            message,
        }),
    };
    let start = read(keys.0, starts)?;
    let end = read(keys.1, ends)?;
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return fail(
            join(prefix, keys.1),
            format!("ends ({e}) before it starts ({s})"),
        );
    }
    Ok((start, end))
}

fn status_action(path: &str, status: &str) -> Result<Action, PayloadError> {
    match status {
        "firing" => Ok(Action::Trigger),
        "resolved" => Ok(Action::Resolve),
        other => fail(
            path,
            format!("`{other}` is not a status (`firing` or `resolved`)"),
        ),
    }
}

/// Resolved when it has an end that is not after `now`.
fn by_end(ends_at: Option<Timestamp>, now: Timestamp) -> Action {
    match ends_at {
        Some(end) if end <= now => Action::Resolve,
        _ => Action::Trigger,
    }
}

/// Reads an Alertmanager webhook (version 4) body.
pub fn parse_webhook(body: &[u8]) -> Result<Webhook, PayloadError> {
    let wire: WireWebhook = from_json(body)?;
    let group_status = wire.status.clone().unwrap_or_default();
    let mut alerts = Vec::with_capacity(wire.alerts.len());
    for (i, a) in wire.alerts.into_iter().enumerate() {
        let prefix = format!("alerts[{i}]");
        let status = a
            .status
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(Some(group_status.as_str()).filter(|s| !s.is_empty()))
            .unwrap_or("firing");
        let action = status_action(&join(&prefix, "status"), status)?;
        alerts.push(from_wire(&prefix, a, Source::AlertmanagerWebhook, |_| {
            action
        })?);
    }
    Ok(Webhook {
        version: wire.version,
        group_key: wire.group_key.unwrap_or_default(),
        truncated_alerts: wire.truncated_alerts.unwrap_or(0),
        status: group_status,
        receiver: wire.receiver.unwrap_or_default(),
        group_labels: wire.group_labels.unwrap_or_default(),
        common_labels: wire.common_labels.unwrap_or_default(),
        common_annotations: wire.common_annotations.unwrap_or_default(),
        external_url: wire.external_url.unwrap_or_default(),
        alerts,
    })
}

/// Reads an Alertmanager `POST /api/v2/alerts` body (a JSON array).
pub fn parse_api_alerts(body: &[u8], now: Timestamp) -> Result<Vec<IncomingAlert>, PayloadError> {
    let wire: Vec<WireAlert> = from_json(body)?;
    let mut alerts = Vec::with_capacity(wire.len());
    for (i, a) in wire.into_iter().enumerate() {
        let prefix = format!("[{i}]");
        alerts.push(from_wire(&prefix, a, Source::AlertmanagerApi, |end| {
            by_end(end, now)
        })?);
    }
    Ok(alerts)
}

/// An alert in Alertmanager's wire shape (webhook and API alike); `action`
/// decides firing or resolved from its end.
fn from_wire(
    prefix: &str,
    a: WireAlert,
    source: Source,
    action: impl FnOnce(Option<Timestamp>) -> Action,
) -> Result<IncomingAlert, PayloadError> {
    let labels = label_set(prefix, a.labels)?;
    let (starts_at, ends_at) = times(
        prefix,
        ("startsAt", "endsAt"),
        a.starts_at.as_deref(),
        a.ends_at.as_deref(),
    )?;
    Ok(IncomingAlert {
        labels,
        annotations: a.annotations.unwrap_or_default(),
        starts_at,
        ends_at,
        generator_url: a.generator_url.filter(|u| !u.is_empty()),
        source,
        action: action(ends_at),
        dedup_key: None,
    })
}

/// Reads the generic JSON format: one alert object or an array of them.
pub fn parse_generic(body: &[u8], now: Timestamp) -> Result<Vec<IncomingAlert>, PayloadError> {
    let is_array = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[');
    let (wire, array): (Vec<GenericAlert>, bool) = if is_array {
        (from_json(body)?, true)
    } else {
        (vec![from_json(body)?], false)
    };
    let mut alerts = Vec::with_capacity(wire.len());
    for (i, a) in wire.into_iter().enumerate() {
        let prefix = if array {
            format!("[{i}]")
        } else {
            String::new()
        };
        let labels = label_set(&prefix, a.labels)?;
        let (starts_at, ends_at) = times(
            &prefix,
            ("starts_at", "ends_at"),
            a.starts_at.as_deref(),
            a.ends_at.as_deref(),
        )?;
        let action = match a.status.as_deref() {
            Some(s) => status_action(&join(&prefix, "status"), s)?,
            None => by_end(ends_at, now),
        };
        alerts.push(IncomingAlert {
            labels,
            annotations: a.annotations.unwrap_or_default(),
            starts_at,
            ends_at,
            generator_url: a.generator_url.filter(|u| !u.is_empty()),
            source: Source::Generic,
            action,
            dedup_key: None,
        });
    }
    Ok(alerts)
}

/// Reads one PagerDuty Events API v2 event.
pub fn parse_pagerduty(body: &[u8]) -> Result<PagerDutyEvent, PayloadError> {
    let wire: WirePagerDuty = from_json(body)?;
    if wire.routing_key.trim().is_empty() {
        return fail("routing_key", "must not be empty");
    }
    let action = match wire.event_action.as_str() {
        "trigger" => Action::Trigger,
        "acknowledge" => Action::Acknowledge,
        "resolve" => Action::Resolve,
        other => {
            return fail(
                "event_action",
                format!("`{other}` is not an event action (`trigger`, `acknowledge` or `resolve`)"),
            );
        }
    };
    let given_key = wire.dedup_key.filter(|k| !k.is_empty());
    if let Some(k) = &given_key
        && k.chars().count() > MAX_DEDUP_KEY
    {
        return fail(
            "dedup_key",
            format!("longer than {MAX_DEDUP_KEY} characters"),
        );
    }
    let alert = if action == Action::Trigger {
        let Some(p) = wire.payload else {
            return fail("payload", "a trigger needs a payload");
        };
        pagerduty_trigger(p, given_key, wire.client, wire.client_url)?
    } else {
        let Some(key) = given_key else {
            return fail(
                "dedup_key",
                "an acknowledge or resolve event needs a dedup_key",
            );
        };
        let mut labels = LabelSet::new();
        labels
            .insert("dedup_key", key.clone())
            .map_err(|e| PayloadError {
                path: "dedup_key".to_owned(),
                message: e.to_string(),
            })?;
        IncomingAlert {
            labels,
            annotations: BTreeMap::new(),
            starts_at: None,
            ends_at: None,
            generator_url: None,
            source: Source::PagerDuty,
            action,
            dedup_key: Some(key),
        }
    };
    Ok(PagerDutyEvent {
        routing_key: wire.routing_key,
        alert,
    })
}

fn pagerduty_trigger(
    p: WirePayload,
    given_key: Option<String>,
    client: Option<String>,
    client_url: Option<String>,
) -> Result<IncomingAlert, PayloadError> {
    let required = |value: Option<String>, key: &str| match value.filter(|v| !v.trim().is_empty()) {
        Some(v) => Ok(v),
        None => fail(format!("payload.{key}"), "required for a trigger"),
    };
    let summary = required(p.summary, "summary")?;
    let source = required(p.source, "source")?;
    let severity = required(p.severity, "severity")?;
    if !PD_SEVERITIES.contains(&severity.as_str()) {
        return fail(
            "payload.severity",
            format!("`{severity}` is not a severity (`critical`, `error`, `warning` or `info`)"),
        );
    }
    let starts_at = match p.timestamp.as_deref() {
        None => None,
        Some(t) => parse_time(t).map_err(|message| PayloadError {
            path: "payload.timestamp".to_owned(),
            message,
        })?,
    };
    let optional = |v: Option<String>| v.filter(|v| !v.is_empty());
    let (class, component, group) = (optional(p.class), optional(p.component), optional(p.group));
    let dedup_key = given_key.unwrap_or_else(|| {
        let mut h = Sha256::new();
        for part in [
            &class,
            &component,
            &group,
            &Some(source.clone()),
            &Some(summary.clone()),
        ] {
            h.update(part.as_deref().unwrap_or("").as_bytes());
            h.update([0xff]);
        }
        hex::encode(h.finalize())
    });
    let mut pairs: Vec<(&str, String)> = vec![
        ("alertname", class.unwrap_or_else(|| "PagerDuty".to_owned())),
        ("severity", severity),
        ("instance", source),
        ("dedup_key", dedup_key.clone()),
    ];
    pairs.extend(component.map(|c| ("component", c)));
    pairs.extend(group.map(|g| ("group", g)));
    let labels = LabelSet::from_pairs(pairs).map_err(|e| PayloadError {
        path: "payload".to_owned(),
        message: e.to_string(),
    })?;
    let mut annotations = BTreeMap::from([("summary".to_owned(), summary)]);
    match p.custom_details {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(s)) => {
            annotations.insert("custom_details".to_owned(), s);
        }
        Some(other) => {
            annotations.insert("custom_details".to_owned(), other.to_string());
        }
    }
    if let Some(c) = optional(client) {
        annotations.insert("client".to_owned(), c);
    }
    Ok(IncomingAlert {
        labels,
        annotations,
        starts_at,
        ends_at: None,
        generator_url: optional(client_url),
        source: Source::PagerDuty,
        action: Action::Trigger,
        dedup_key: Some(dedup_key),
    })
}

/// An RFC 3339 time: `2026-11-24T09:52:26.739266876Z`, with `Z`, `+02:00`
/// or `+0200`. Go's zero time (`0001-01-01T00:00:00Z`, how Alertmanager
/// writes "no end") and the empty string are `None`.
pub fn parse_time(text: &str) -> Result<Option<Timestamp>, String> {
    let t = text.trim();
    if t.is_empty() || t.starts_with("0001-01-01T00:00:00") {
        return Ok(None);
    }
    let invalid = || format!("`{text}` is not an RFC 3339 time such as `2026-11-24T09:52:26Z`");
    let (local, offset_secs) = split_offset(t).ok_or_else(invalid)?;
    if local.len() < 19 || !local.is_char_boundary(19) {
        return Err(invalid());
    }
    let base = Timestamp::parse_rfc3339(local).ok_or_else(invalid)?;
    let micros = base
        .0
        .checked_sub(offset_secs * 1_000_000)
        .filter(|m| *m >= 0)
        .ok_or_else(|| format!("`{text}` is before 1970"))?;
    Ok(Some(Timestamp(micros)))
}

/// The local part of a time and its offset east of UTC in seconds; `None`
/// when it has no zone (RFC 3339 requires one).
fn split_offset(t: &str) -> Option<(&str, i64)> {
    if let Some(local) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) {
        return Some((local, 0));
    }
    for (len, colon) in [(6, true), (5, false)] {
        let Some(at) = t.len().checked_sub(len).filter(|at| *at >= 19) else {
            continue;
        };
        let Some(zone) = t.get(at..) else { continue };
        let sign = match zone.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => continue,
        };
        let digits = if colon {
            if zone.as_bytes().get(3) != Some(&b':') {
                continue;
            }
            format!("{}{}", zone.get(1..3)?, zone.get(4..6)?)
        } else {
            zone.get(1..5)?.to_owned()
        };
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let hours: i64 = digits.get(..2)?.parse().ok()?;
        let minutes: i64 = digits.get(2..)?.parse().ok()?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        return Some((t.get(..at)?, sign * (hours * 3600 + minutes * 60)));
    }
    None
}
