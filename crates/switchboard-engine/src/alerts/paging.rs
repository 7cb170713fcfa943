//! The paging outlets: PagerDuty (Events API v2) and Opsgenie (Alert API),
//! as Alertmanager drives them. Each group is one incident: PagerDuty's
//! `dedup_key` and Opsgenie's `alias` are the SHA-256 (hex) of the group
//! key, so a group's later notifications update it and its resolved notice
//! resolves (closes) it.
//!
//! Renders from the stored notification (Alertmanager's webhook body). Not
//! here: when to send and retries.

use serde_json::{Value, json};
use switchboard_core::alerts::pagerduty_dedup_key;
use switchboard_core::alerts::receivers::{OpsgenieConfig, PAGERDUTY_SEVERITIES, PagerDutyConfig};

use super::delivery::{http, send_http};
use super::email::subject;

/// At most `max` characters of `text`.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// One line per alert: `[FIRING] DiskFull instance=db-1: disk full`.
fn details(n: &Value) -> String {
    n["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let mut line = format!(
                "[{}] {}",
                a["status"].as_str().unwrap_or_default().to_uppercase(),
                a["labels"]["alertname"].as_str().unwrap_or("alert")
            );
            if let Some(i) = a["labels"]["instance"].as_str() {
                line.push_str(&format!(" instance={i}"));
            }
            if let Some(s) = a["annotations"]["summary"].as_str() {
                line.push_str(&format!(": {s}"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn count(n: &Value, status: &str) -> usize {
    n["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["status"] == status)
        .count()
}

/// PagerDuty's event for notification `n`.
pub(crate) fn pagerduty_event(config: &PagerDutyConfig, routing_key: &str, n: &Value) -> Value {
    let resolved = n["status"] == "resolved";
    let dedup_key = pagerduty_dedup_key(n["groupKey"].as_str().unwrap_or_default());
    if resolved {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let label_severity = n["commonLabels"]["severity"]
        .as_str()
        .filter(|s| PAGERDUTY_SEVERITIES.contains(s));
    let severity = config
        .severity
        .as_deref()
        .or(label_severity)
        .unwrap_or("error");
    let external = n["externalURL"].as_str().unwrap_or_default();
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "Switchboard",
        "payload": {
            "summary": cut(&subject(n), 1024),
            "source": n["commonLabels"]["instance"].as_str().unwrap_or("Switchboard"),
            "severity": severity,
            "custom_details": {
                "firing": details(n),
                "num_firing": count(n, "firing"),
                "num_resolved": count(n, "resolved"),
                "group_labels": n["groupLabels"],
            },
        },
    });
    if external.starts_with("http") {
        event["client_url"] = json!(external);
    }
    event
}

/// Sends notification `n` to PagerDuty.
pub(crate) async fn send_pagerduty(config: &PagerDutyConfig, n: &Value) -> Result<(), String> {
    let key = config.routing_key.resolve().map_err(|e| e.to_string())?;
    let event = pagerduty_event(config, key.expose(), n);
    send_http(http()?.post(&config.url).json(&event), &config.url).await
}

/// Opsgenie's alias of a group: the SHA-256 (hex) of its key.
fn alias(n: &Value) -> String {
    pagerduty_dedup_key(n["groupKey"].as_str().unwrap_or_default())
}

/// Opsgenie's create request for notification `n`.
pub(crate) fn opsgenie_alert(config: &OpsgenieConfig, n: &Value) -> Value {
    let mut alert = json!({
        "message": cut(&subject(n), 130),
        "alias": alias(n),
        "description": cut(&details(n), 15_000),
        "source": "Switchboard",
        "details": n["commonLabels"],
        "tags": n["groupLabels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>(),
    });
    if let Some(p) = &config.priority {
        alert["priority"] = json!(p);
    }
    alert
}

/// Sends notification `n` to Opsgenie: creates (or, with the same alias,
/// updates) the group's alert while it fires, closes it when resolved.
pub(crate) async fn send_opsgenie(config: &OpsgenieConfig, n: &Value) -> Result<(), String> {
    let key = config.api_key.resolve().map_err(|e| e.to_string())?;
    let base = config.api_url.trim_end_matches('/');
    let (url, body) = if n["status"] == "resolved" {
        (
            format!("{base}/v2/alerts/{}/close?identifierType=alias", alias(n)),
            json!({"source": "Switchboard", "note": "resolved"}),
        )
    } else {
        (format!("{base}/v2/alerts"), opsgenie_alert(config, n))
    };
    let request = http()?
        .post(&url)
        .header(
            reqwest::header::AUTHORIZATION,
            format!("GenieKey {}", key.expose()),
        )
        .json(&body);
    send_http(request, &url).await
}
