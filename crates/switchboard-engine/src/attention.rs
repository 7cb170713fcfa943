//! "Which machines need attention": the hosts whose latest run of some
//! action did not succeed, worst first, from the executions of a recent
//! window that the asker may view. A host counts as failing an action until
//! a later run of that action on it succeeds; a cancelled run decides
//! nothing.
//!
//! Per-host outcomes come from an `ssh` run's result (`hosts`: one status
//! per host of a fan-out) or else from the run's `host` parameters and its
//! status. Not here (yet): firing alerts, which the alerting engine will add.

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

/// A host that needs attention.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostAttention {
    pub host: String,
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
        let mut by_host: BTreeMap<String, Vec<FailingAction>> = BTreeMap::new();
        for ((host, _), failing) in latest {
            if let Some(f) = failing {
                by_host.entry(host).or_default().push(f);
            }
        }
        let mut hosts: Vec<HostAttention> = by_host
            .into_iter()
            .map(|(host, mut failing)| {
                failing.sort_by_key(|f| std::cmp::Reverse(f.at));
                HostAttention {
                    failures: failures.get(&host).copied().unwrap_or(0),
                    known: inventory.host(&host).is_some(),
                    host,
                    failing,
                }
            })
            .collect();
        hosts.sort_by(|a, b| {
            (b.failing.len(), b.failures, b.failing.first().map(|f| f.at))
                .cmp(&(a.failing.len(), a.failures, a.failing.first().map(|f| f.at)))
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
        }
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
