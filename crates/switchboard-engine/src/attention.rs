//! "Which machines need attention": the hosts with firing alerts or whose
//! latest run of some action did not succeed, worst first (the most severe
//! firing alert, then the most alerts, then the most failing actions), from
//! the alerts kept and the executions of a recent window that the asker may
//! view. An alert names its host by its `instance` label (without a port)
//! or `host` label, matched to the inventory by name or address. A host counts as failing an action until
//! a later run of that action on it succeeds; a cancelled run decides
//! nothing.
//!
//! Per-host outcomes come from an `ssh` run's result (`hosts`: one status
//! per host of a fan-out) or else from the run's `host` parameters and its
//! status.

use std::collections::BTreeMap;

use serde::Serialize;
use switchboard_core::{Execution, ExecutionId, ExecutionStatus, Origin, Timestamp};
use switchboard_store::ExecutionFilter;

use crate::authz::Identity;
use crate::{Engine, EngineError};

/// Most executions looked at for one answer (newest first).
const MAX_EXECUTIONS: usize = 20_000;
const PAGE: u32 = 500;

/// One action a host is failing.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailingAction {
    pub action: String,
    /// Its latest run on the host.
    pub execution: ExecutionId,
    pub status: ExecutionStatus,
    pub at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A firing alert about a host.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostAlert {
    pub fingerprint: String,
    pub alertname: String,
    pub severity: Option<String>,
    pub since: Timestamp,
}

/// How bad a severity label is, for ordering (unknown ones least).
fn severity_rank(severity: Option<&str>) -> u8 {
    match severity.map(str::to_ascii_lowercase).as_deref() {
        Some("critical" | "page" | "emergency" | "fatal") => 4,
        Some("error" | "high" | "major") => 3,
        Some("warning" | "warn" | "medium" | "minor") => 2,
        Some("info" | "low") => 1,
        _ => 0,
    }
}

/// A host that needs attention.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostAttention {
    pub host: String,
    /// Its firing alerts, most severe first.
    pub alerts: Vec<HostAlert>,
    /// Actions whose latest run on it did not succeed, newest first.
    pub failing: Vec<FailingAction>,
    /// Runs on it in the window that did not succeed (recovered or not).
    pub failures: usize,
    /// Whether the inventory lists it.
    pub known: bool,
}

/// How one host fared in one execution.
fn host_outcomes(
    e: &Execution,
    host_params: &[&str],
) -> Vec<(String, ExecutionStatus, Option<String>)> {
    if let Some(hosts) = e
        .result
        .as_ref()
        .and_then(|r| r.get("hosts"))
        .and_then(serde_json::Value::as_array)
    {
        return hosts
            .iter()
            .filter_map(|h| {
                let name = h.get("host")?.as_str()?.to_owned();
                let status = ExecutionStatus::parse(h.get("status")?.as_str()?)?;
                let error = h.get("error").and_then(|v| v.as_str()).map(str::to_owned);
                Some((name, status, error))
            })
            .collect();
    }
    host_params
        .iter()
        .filter_map(|p| e.params.get(*p).and_then(|v| v.as_str()))
        .map(|host| (host.to_owned(), e.status, e.error.clone()))
        .collect()
}

/// `db-1:9100` → `db-1`; `[::1]:9100` → `::1`; a name without a port as it is.
fn strip_port(instance: &str) -> &str {
    if let Some(rest) = instance.strip_prefix('[') {
        return rest
            .split_once(']')
            .map_or(instance, |(address, _)| address);
    }
    match instance.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
        _ => instance,
    }
}

fn is_failure(status: ExecutionStatus) -> bool {
    matches!(
        status,
        ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Lost
    )
}

impl Engine {
    /// The hosts needing attention among the runs since `since` that `who`
    /// may view, worst first: most failing actions, then most failures,
    /// then the most recent.
    pub async fn attention(
        &self,
        who: &Identity,
        origin: &Origin,
        since: Timestamp,
    ) -> Result<Vec<HostAttention>, EngineError> {
        let catalog = self.catalog();
        let inventory = self.inventory();
        // (host, action) → latest decided outcome; host → failures.
        let mut latest: BTreeMap<(String, String), Option<FailingAction>> = BTreeMap::new();
        let mut failures: BTreeMap<String, usize> = BTreeMap::new();
        let mut before = None;
        let mut seen = 0;
        while seen < MAX_EXECUTIONS {
            let filter = ExecutionFilter {
                since: Some(since),
                before,
                limit: PAGE,
                ..Default::default()
            };
            let page = self.list_visible(who, origin, filter).await?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            seen += page.len();
            for e in &page {
                if !e.status.is_terminal() || e.status == ExecutionStatus::Cancelled {
                    continue;
                }
                // An `ssh` run without per-host results failed before it
                // reached any host (SSH not set up, a jump host down); its
                // parameter holds a selector, not a host.
                let host_params: Vec<&str> = catalog
                    .action(e.action.as_str())
                    .filter(|a| a.runner != switchboard_core::Runner::Ssh)
                    .map(|a| {
                        a.params
                            .iter()
                            .filter(|p| p.ty == switchboard_core::ParamType::Host)
                            .map(|p| p.name.as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                for (host, status, error) in host_outcomes(e, &host_params) {
                    if status == ExecutionStatus::Cancelled {
                        continue;
                    }
                    if is_failure(status) {
                        *failures.entry(host.clone()).or_default() += 1;
                    }
                    // Newest first: the first outcome seen is the latest.
                    latest
                        .entry((host, e.action.to_string()))
                        .or_insert_with(|| {
                            is_failure(status).then(|| FailingAction {
                                action: e.action.to_string(),
                                execution: e.id,
                                status,
                                at: e.finished_at.unwrap_or(e.created_at),
                                error,
                            })
                        });
                }
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        let mut by_host: BTreeMap<String, (Vec<HostAlert>, Vec<FailingAction>)> = BTreeMap::new();
        for ((host, _), failing) in latest {
            if let Some(f) = failing {
                by_host.entry(host).or_default().1.push(f);
            }
        }
        for alert in self.alerts(true, 10_000).await? {
            let named = alert
                .labels
                .get("instance")
                .map(|i| strip_port(i))
                .or_else(|| alert.labels.get("host").map(String::as_str));
            let Some(named) = named.filter(|n| !n.is_empty()) else {
                continue;
            };
            let host = inventory
                .hosts()
                .find(|h| h.name == named || h.address == named)
                .map_or_else(|| named.to_owned(), |h| h.name.clone());
            by_host.entry(host).or_default().0.push(HostAlert {
                fingerprint: alert.fingerprint.clone(),
                alertname: alert.labels.get("alertname").cloned().unwrap_or_default(),
                severity: alert.labels.get("severity").cloned(),
                since: alert.starts_at,
            });
        }
        let mut hosts: Vec<HostAttention> = by_host
            .into_iter()
            .map(|(host, (mut alerts, mut failing))| {
                alerts.sort_by_key(|a| {
                    std::cmp::Reverse((severity_rank(a.severity.as_deref()), a.since))
                });
                failing.sort_by_key(|f| std::cmp::Reverse(f.at));
                HostAttention {
                    failures: failures.get(&host).copied().unwrap_or(0),
                    known: inventory.host(&host).is_some(),
                    host,
                    alerts,
                    failing,
                }
            })
            .collect();
        let badness = |h: &HostAttention| {
            (
                h.alerts
                    .first()
                    .map_or(0, |a| severity_rank(a.severity.as_deref()) + 1),
                h.alerts.len(),
                h.failing.len(),
                h.failures,
                h.failing.first().map(|f| f.at),
            )
        };
        hosts.sort_by(|a, b| {
            badness(b)
                .cmp(&badness(a))
                .then_with(|| a.host.cmp(&b.host))
        });
        Ok(hosts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution(
        status: ExecutionStatus,
        params: serde_json::Value,
        result: Option<serde_json::Value>,
    ) -> Execution {
        Execution {
            id: ExecutionId(1),
            action: switchboard_core::ActionName::new("fleet.logs").unwrap(),
            params,
            requester: switchboard_core::Principal::new("alice").unwrap(),
            origin: Origin::new("cli").unwrap(),
            status,
            node: None,
            exit_code: None,
            result,
            error: Some("exited with status 1".into()),
            output_bytes: 0,
            output_truncated: false,
            created_at: Timestamp::now(),
            started_at: None,
            finished_at: None,
            approval_rule: None,
            approval_expires_at: None,
            parent: None,
            step: None,
        }
    }

    #[test]
    fn instances_lose_their_port_and_severities_rank() {
        assert_eq!(strip_port("db-1:9100"), "db-1");
        assert_eq!(strip_port("[2001:db8::1]:9100"), "2001:db8::1");
        assert_eq!(strip_port("2001:db8::1"), "2001:db8::1");
        assert_eq!(strip_port("web-1"), "web-1");
        assert!(severity_rank(Some("Critical")) > severity_rank(Some("warning")));
        assert!(severity_rank(Some("warning")) > severity_rank(None));
    }

    #[test]
    fn a_fan_out_reports_each_host_and_a_single_run_its_parameter() {
        let fan_out = execution(
            ExecutionStatus::Failed,
            serde_json::json!({"host": "group:web"}),
            Some(serde_json::json!({"hosts": [
                {"host": "web-1", "status": "succeeded", "exit_code": 0},
                {"host": "web-2", "status": "failed", "error": "cannot connect"},
            ]})),
        );
        let outcomes = host_outcomes(&fan_out, &["host"]);
        assert_eq!(
            outcomes,
            [
                ("web-1".to_owned(), ExecutionStatus::Succeeded, None),
                (
                    "web-2".to_owned(),
                    ExecutionStatus::Failed,
                    Some("cannot connect".to_owned())
                ),
            ]
        );
        let single = execution(
            ExecutionStatus::TimedOut,
            serde_json::json!({"host": "db-1"}),
            None,
        );
        assert_eq!(
            host_outcomes(&single, &["host"]),
            [(
                "db-1".to_owned(),
                ExecutionStatus::TimedOut,
                Some("exited with status 1".to_owned())
            )]
        );
        assert!(host_outcomes(&single, &[]).is_empty());
    }
}
