//! Automation rules at work: when an alert kept is firing and matches a
//! rule, a run is scheduled (once per rule and firing episode, not again
//! within the rule's rate limit), due after the rule's delay; when it falls
//! due, it is skipped if the alert resolved meanwhile, else the action is
//! submitted as the rule's `run_as` principal from the `alert` door — so
//! policies decide, approvals apply and the audit log records it like any
//! other request. Each run's outcome (the execution, or why not) is kept
//! and shown with the alert, and followed in the threads of the alert's
//! chat messages. `automate_now` runs a rule at once for a person (the
//! "Run" button of an alert's chat message).
//!
//! Not here: the rules themselves and their templates (core's
//! `alerts::automation`).

use switchboard_core::alerts::LabelSet;
use switchboard_core::{Execution, Origin, Principal, Timestamp};
use switchboard_store::{NewAutomation, StoredAlert, StoredAutomation};

use crate::{Engine, EngineError, Identity, SubmitRequest};

/// How many due runs one round takes.
const BATCH: u32 = 100;

impl Engine {
    /// Schedules the runs that alerts just kept ask for.
    pub(crate) async fn schedule_automations(
        &self,
        kept: &[StoredAlert],
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Some(config) = self.catalog().alerts.clone() else {
            return Ok(());
        };
        if config.automations.is_empty() {
            return Ok(());
        }
        let mut runs = Vec::new();
        for alert in kept
            .iter()
            .filter(|a| a.firing && a.ends_at.is_none_or(|e| e > now))
        {
            let Ok(labels) = LabelSet::from_pairs(alert.labels.iter()) else {
                continue;
            };
            for rule in config.automations.iter().filter(|r| r.matches(&labels)) {
                runs.push(NewAutomation {
                    rule: rule.name.clone(),
                    fingerprint: alert.fingerprint.clone(),
                    starts_at: alert.starts_at,
                    due_at: now.after(rule.delay),
                    not_since: now.before(rule.rate_limit),
                    created_at: now,
                });
            }
        }
        if !runs.is_empty() && self.shared.store.schedule_automations(&runs).await? > 0 {
            self.shared.alerting.wake.notify_one();
        }
        Ok(())
    }

    /// Runs (or skips) the automation runs that are due.
    pub(crate) async fn run_due_automations(&self) -> Result<(), EngineError> {
        let now = Timestamp::now();
        for run in self.shared.store.due_automations(now, BATCH).await? {
            let outcome = self.automate(&run, now).await;
            let (state, execution, reason) = match &outcome {
                Ok(Ok(e)) => ("ran", Some(e.id.0), None),
                Ok(Err(skipped)) => ("skipped", None, Some(skipped.clone())),
                Err(e) => ("failed", None, Some(e.to_string())),
            };
            if let Some(reason) = &reason {
                tracing::info!(rule = %run.rule, fingerprint = %run.fingerprint, state, %reason, "automation not run");
            }
            self.shared
                .store
                .finish_automation(run.id, state, execution, reason.as_deref(), now)
                .await?;
            // The alert's chat threads follow the run, or hear why not.
            let groups = run
                .fingerprint
                .parse()
                .map(|fp| self.shared.alerting.group_ids_of(fp))
                .unwrap_or_default();
            let engine = self.clone();
            let rule = run.rule.clone();
            tokio::spawn(async move {
                match outcome {
                    Ok(Ok(execution)) => {
                        let ack = format!("Automation `{rule}` runs {}…", execution.action);
                        for thread in engine.alert_threads(&groups).await {
                            let to = thread.destination();
                            if let Err(e) = engine
                                .announce_run(execution.clone(), ack.clone(), to, thread.outlet)
                                .await
                            {
                                tracing::warn!(error = %e, "cannot tell an automation run in chat");
                            }
                        }
                    }
                    Ok(Err(_)) => {}
                    Err(e) => {
                        let notice = format!("Automation `{rule}` did not run: {e}");
                        engine.tell_alert_threads(&groups, &notice, None).await;
                    }
                }
            });
        }
        Ok(())
    }

    /// Runs an automation rule now for the firing alerts of what `target`
    /// names (an alert, or a group: each of its firing alerts the rule
    /// matches), as `who` from `origin` — the `automate` chat command
    /// behind an alert message's "Run" button. Each run is a request like
    /// any other: `who` needs `run` on the rule's action.
    pub async fn automate_now(
        &self,
        who: &Identity,
        origin: &Origin,
        target: &str,
        rule_name: &str,
    ) -> Result<Vec<Execution>, EngineError> {
        let config = self
            .catalog()
            .alerts
            .clone()
            .ok_or_else(|| EngineError::Invalid("the catalog has no alerts.toml".to_owned()))?;
        let rule = config
            .automations
            .iter()
            .find(|r| r.name == rule_name)
            .ok_or_else(|| {
                let names: Vec<&str> = config.automations.iter().map(|r| r.name.as_str()).collect();
                EngineError::Invalid(format!(
                    "no automation rule `{rule_name}` (rules: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ))
            })?;
        let found = self
            .shared
            .alerting
            .find_target(target)
            .map_err(EngineError::UnknownAlert)?;
        let matching: Vec<_> = self
            .shared
            .alerting
            .firing_of(&found, Timestamp::now())
            .into_iter()
            .filter(|a| rule.matches(&a.labels))
            .collect();
        if matching.is_empty() {
            return Err(EngineError::Invalid(format!(
                "no firing alert of `{target}` matches rule `{rule_name}`"
            )));
        }
        let mut runs = Vec::new();
        for alert in matching {
            let params = rule
                .params_for(
                    &alert.labels,
                    &alert.annotations,
                    &alert.fingerprint.to_string(),
                )
                .map_err(EngineError::Invalid)?;
            runs.push(
                self.submit(SubmitRequest {
                    action: rule.action.clone(),
                    params: params
                        .into_iter()
                        .map(|(k, v)| (k, serde_json::Value::String(v)))
                        .collect(),
                    requester: who.clone(),
                    origin: origin.clone(),
                })
                .await?,
            );
        }
        Ok(runs)
    }

    /// The execution; `Ok(Err(why))` when skipped; `Err` when refused.
    async fn automate(
        &self,
        run: &StoredAutomation,
        now: Timestamp,
    ) -> Result<Result<Execution, String>, EngineError> {
        let Some(config) = self.catalog().alerts.clone() else {
            return Ok(Err("alerts.toml is gone".to_owned()));
        };
        let Some(rule) = config.automations.iter().find(|r| r.name == run.rule) else {
            return Ok(Err(format!(
                "rule `{}` is no longer in alerts.toml",
                run.rule
            )));
        };
        let Some(alert) = self.shared.store.alert(&run.fingerprint).await? else {
            return Ok(Err("the alert is gone".to_owned()));
        };
        if !alert.firing || alert.ends_at.is_some_and(|e| e <= now) {
            return Ok(Err("the alert resolved before the run was due".to_owned()));
        }
        let labels = LabelSet::from_pairs(alert.labels.iter())
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let params = rule
            .params_for(&labels, &alert.annotations, &alert.fingerprint)
            .map_err(EngineError::Invalid)?;
        let principal = Principal::new(rule.run_as.clone())
            .map_err(|e| EngineError::Invalid(format!("run_as: {e}")))?;
        let requester = self.identity_of(&principal, &[]).await?;
        let origin = Origin::new("alert").map_err(|e| EngineError::Internal(e.to_string()))?;
        let execution = self
            .submit(SubmitRequest {
                action: rule.action.clone(),
                params: params
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect(),
                requester,
                origin,
            })
            .await?;
        Ok(Ok(execution))
    }
}
