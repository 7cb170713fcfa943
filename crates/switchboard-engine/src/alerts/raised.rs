//! Alerts raised by actions: an execution whose result (the JSON it wrote
//! to `$SB_RESULT`) holds an `alerts` array — alerts in the generic format
//! — raises or resolves those alerts when it ends, so a check run by a
//! schedule, a person or another alert feeds the same routing, silences,
//! outlets and automation as Prometheus does. Each alert is marked with the
//! execution (`execution` annotation, and a link to it as its source when
//! a public URL is set and the alert names none) and kept with source
//! `action`. The outcome is audited (`alerts.raised`): how many, or why the
//! array was refused (the execution itself keeps its status).
//!
//! Not here: reading the format (core's `alerts::payload`).

use std::sync::Arc;

use serde_json::Value;
use switchboard_core::alerts::payload::{Source, parse};
use switchboard_core::audit::AuditEvent;
use switchboard_core::{Execution, Timestamp};

use crate::{Engine, Shared};

/// Raises the alerts `result` holds, if any.
pub(crate) async fn from_result(
    shared: &Arc<Shared>,
    execution: &Execution,
    result: Option<&Value>,
) {
    let Some(listed) = result.and_then(|r| r.get("alerts")) else {
        return;
    };
    let engine = Engine {
        shared: Arc::clone(shared),
    };
    let id = execution.id;
    let link = shared
        .config
        .chat
        .public_url
        .as_ref()
        .map(|base| format!("{}/api/v1/executions/{id}", base.trim_end_matches('/')));
    let outcome = match listed {
        Value::Array(_) => parse(
            Source::Action,
            listed.to_string().as_bytes(),
            Timestamp::now(),
        )
        .map_err(|e| format!("the result's `alerts`{e}")),
        _ => Err("the result's `alerts` is not an array of alerts".to_owned()),
    };
    let outcome = match outcome {
        Ok(mut alerts) => {
            for a in &mut alerts {
                a.annotations
                    .entry("execution".to_owned())
                    .or_insert_with(|| id.to_string());
                if a.generator_url.is_none() {
                    a.generator_url.clone_from(&link);
                }
            }
            let count = alerts.len();
            engine
                .ingest_alerts(alerts)
                .await
                .map(|_| count)
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e),
    };
    let (what, detail) = match &outcome {
        Ok(count) => (
            "raised",
            serde_json::json!({ "alerts": count, "action": execution.action }),
        ),
        Err(error) => {
            tracing::warn!(%id, %error, "alerts in an execution's result refused");
            (
                "rejected",
                serde_json::json!({ "error": error, "action": execution.action }),
            )
        }
    };
    engine
        .record(AuditEvent::now(
            &execution.requester,
            &execution.origin,
            "alerts.raised",
            format!("execution:{id}"),
            what,
            detail,
        ))
        .await;
}
