//! The webhook outlet: Alertmanager's webhook body (version 4), which is
//! also the stored description of every notification, and its delivery by
//! HTTP POST, signed with HMAC-SHA256 when the receiver has a key.
//!
//! The signature: `X-Switchboard-Timestamp: <unix seconds>` and
//! `X-Switchboard-Signature: sha256=<hex HMAC-SHA256 over
//! "<timestamp>.<body>">`, so a receiver can refuse replays of old bodies.
//!
//! Not here: when to send (the dispatcher), retries (`delivery`).

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use switchboard_core::Timestamp;
use switchboard_core::alerts::aggregation::{Alert, Notification};
use switchboard_core::alerts::receivers::WebhookConfig;

/// Alertmanager's webhook body for a notification.
pub(crate) fn body(
    n: &Notification,
    external_url: &str,
    max_alerts: usize,
    now: Timestamp,
) -> serde_json::Value {
    let all: Vec<&Alert> = n
        .firing
        .iter()
        .chain(&n.resolved)
        .map(AsRef::as_ref)
        .collect();
    let listed = if max_alerts > 0 && all.len() > max_alerts {
        &all[..max_alerts]
    } else {
        &all[..]
    };
    let common = |pick: &dyn Fn(&Alert) -> BTreeMap<String, String>| {
        let mut iter = all.iter().map(|a| pick(a));
        let mut common = iter.next().unwrap_or_default();
        for next in iter {
            common.retain(|k, v| next.get(k) == Some(v));
        }
        common
    };
    let alerts: Vec<serde_json::Value> = listed
        .iter()
        .map(|a| {
            let resolved = a.is_resolved_at(now);
            serde_json::json!({
                "status": if resolved { "resolved" } else { "firing" },
                "labels": a.labels.as_map(),
                "annotations": a.annotations,
                "startsAt": a.starts_at,
                // Alertmanager's zero time for an alert with no end yet.
                "endsAt": if resolved { a.ends_at.map(|t| t.to_string()) } else { None }
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned()),
                "generatorURL": a.generator_url.clone().unwrap_or_default(),
                "fingerprint": a.fingerprint.to_string(),
            })
        })
        .collect();
    serde_json::json!({
        "version": "4",
        "groupKey": n.group.key,
        "truncatedAlerts": all.len() - listed.len(),
        "status": n.status(),
        "receiver": n.group.receiver,
        "groupLabels": n.group_labels.as_map(),
        "commonLabels": common(&|a: &Alert| a.labels.as_map().clone()),
        "commonAnnotations": common(&|a: &Alert| a.annotations.clone()),
        "externalURL": external_url,
        "alerts": alerts,
    })
}

/// The signature headers' values for `body` at `timestamp` (unix seconds).
pub fn signature(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Posts `notification` to the webhook; the error says why it failed.
pub(crate) async fn send(
    config: &WebhookConfig,
    notification: &serde_json::Value,
) -> Result<(), String> {
    let body = serde_json::to_vec(notification).map_err(|e| e.to_string())?;
    let mut request = super::delivery::http()?
        .post(&config.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "Switchboard");
    if let Some(secret) = &config.hmac_secret {
        let key = secret.resolve().map_err(|e| e.to_string())?;
        let timestamp = Timestamp::now().micros() / 1_000_000;
        request = request
            .header("X-Switchboard-Timestamp", timestamp.to_string())
            .header(
                "X-Switchboard-Signature",
                signature(key.expose().as_bytes(), timestamp, &body),
            );
    }
    super::delivery::send_http(request.body(body), &config.url).await
}
