//! Workflows at the engine: what the doors call to follow and steer a
//! running workflow — its step tree, answers to its inquiries, pause,
//! resume, re-run from a step — and the resumption, at start-up, of the
//! workflows this node was running. The run itself is `driver`'s.
//!
//! Not here: what a workflow is and the rules of its state (core's
//! `workflow`), and how a step's action runs (any runner, through
//! `submit_linked` and the dispatcher, like every execution).

pub(crate) mod driver;

use std::sync::Arc;

use switchboard_core::audit::AuditEvent;
use switchboard_core::catalog::Approver;
use switchboard_core::policy::{Identity, Verb};
use switchboard_core::workflow::state::{RunState, StepStatus};
use switchboard_core::workflow::{StepKind, Workflow};
use switchboard_core::{
    Action, Execution, ExecutionId, ExecutionStatus, Origin, Principal, RawParams, Timestamp,
};
use tokio::sync::oneshot;

use crate::{Engine, EngineError, Pending, Shared, SubmitRequest};

/// A message to a running workflow's driver.
pub(crate) enum Control {
    Pause {
        by: Principal,
        reply: driver::Reply<()>,
    },
    Resume {
        by: Principal,
        reply: driver::Reply<()>,
    },
    Answer {
        step: Option<String>,
        by: Principal,
        origin: Origin,
        text: String,
        reply: driver::Reply<String>,
    },
}

/// One step of a workflow run, as shown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepView {
    pub name: String,
    pub status: StepStatus,
    pub reason: Option<String>,
    /// `action` or `inquiry`.
    pub kind: &'static str,
    pub action: Option<String>,
    pub needs: Vec<String>,
    /// Every attempt's execution, per unit (one unit per `for_each` item).
    pub units: Vec<UnitView>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub prompt: Option<String>,
    pub deadline: Option<Timestamp>,
    pub answer: Option<serde_json::Value>,
    pub answered_by: Option<Principal>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UnitView {
    pub item: serde_json::Value,
    pub status: StepStatus,
    pub attempt: u32,
    pub executions: Vec<ExecutionId>,
    pub error: Option<String>,
}

/// A workflow run: its steps in file order, and whether it is paused.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkflowView {
    pub execution: ExecutionId,
    pub paused: bool,
    /// Who the steps run as.
    pub runs_as: Principal,
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub steps: Vec<StepView>,
}

impl WorkflowView {
    /// The step tree as text, one line a step: what chat shows while a
    /// workflow runs and when it ends.
    pub fn tree_text(&self) -> String {
        let mut lines = Vec::new();
        if self.paused {
            lines.push("(paused)".to_owned());
        }
        for s in &self.steps {
            let runs: Vec<String> = s
                .units
                .iter()
                .flat_map(|u| u.executions.iter().map(|e| format!("#{e}")))
                .collect();
            let mut line = format!(
                "{} {} {}",
                driver::mark(s.status),
                s.name,
                s.status.as_str()
            );
            if s.units.len() > 1 {
                let done = s.units.iter().filter(|u| u.status.is_terminal()).count();
                line.push_str(&format!(" ({done}/{} items)", s.units.len()));
            }
            if !runs.is_empty() {
                line.push_str(&format!(" {}", runs.join(" ")));
            }
            if let Some(r) = &s.reason {
                line.push_str(&format!(" — {r}"));
            }
            lines.push(line);
        }
        lines.join("\n")
    }
}

impl Shared {
    /// The control channels of the workflows this node drives.
    pub(crate) fn workflows(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<ExecutionId, tokio::sync::mpsc::Sender<Control>>,
    > {
        self.workflows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Engine {
    /// The workflow action of an execution, and the execution.
    async fn workflow_of(
        &self,
        id: ExecutionId,
    ) -> Result<(Execution, Arc<Action>, Arc<Workflow>), EngineError> {
        let execution = self.get(id).await?;
        let catalog = self.catalog();
        let action = catalog.action(execution.action.as_str()).cloned();
        let Some((action, workflow)) = action.and_then(|a| a.workflow.clone().map(|w| (a, w)))
        else {
            return Err(EngineError::Invalid(format!(
                "execution {id} ({}) is not a workflow",
                execution.action
            )));
        };
        Ok((execution, action, workflow))
    }

    async fn run_state(&self, id: ExecutionId) -> Result<Option<RunState>, EngineError> {
        self.shared
            .store
            .workflow_state(id)
            .await?
            .map(|v| {
                serde_json::from_value(v)
                    .map_err(|e| EngineError::Internal(format!("workflow state of {id}: {e}")))
            })
            .transpose()
    }

    /// The step tree of a workflow execution (`None` before it started).
    pub async fn workflow_view(
        &self,
        id: ExecutionId,
    ) -> Result<Option<WorkflowView>, EngineError> {
        let (_, _, workflow) = self.workflow_of(id).await?;
        let Some(state) = self.run_state(id).await? else {
            return Ok(None);
        };
        let steps = workflow
            .steps
            .iter()
            .filter_map(|step| {
                let s = state.step(&step.name)?;
                let (kind, action) = match &step.kind {
                    StepKind::Action { action, .. } => ("action", Some(action.to_string())),
                    StepKind::Inquiry(_) => ("inquiry", None),
                };
                Some(StepView {
                    name: step.name.clone(),
                    status: s.status,
                    reason: s.reason.clone(),
                    kind,
                    action,
                    needs: step.needs.clone(),
                    units: s
                        .units
                        .iter()
                        .map(|u| UnitView {
                            item: u.item.clone(),
                            status: u.status,
                            attempt: u.attempt,
                            executions: u.executions.clone(),
                            error: u.error.clone(),
                        })
                        .collect(),
                    started_at: s.started_at,
                    ended_at: s.ended_at,
                    prompt: s.prompt.clone(),
                    deadline: s.deadline,
                    answer: s.answer.clone(),
                    answered_by: s.answered_by.clone(),
                })
            })
            .collect();
        Ok(Some(WorkflowView {
            execution: id,
            paused: state.paused,
            runs_as: state.runs_as.principal.clone(),
            vars: state.vars.clone(),
            steps,
        }))
    }

    /// The driver of a workflow running on this node.
    fn control_of(
        &self,
        id: ExecutionId,
    ) -> Result<tokio::sync::mpsc::Sender<Control>, EngineError> {
        self.shared
            .workflows()
            .get(&id)
            .cloned()
            .ok_or_else(|| EngineError::WorkflowState(format!("workflow {id} is not running")))
    }

    async fn send<T>(
        &self,
        id: ExecutionId,
        make: impl FnOnce(driver::Reply<T>) -> Control,
    ) -> Result<T, EngineError> {
        let tx = self.control_of(id)?;
        let (reply, answer) = oneshot::channel();
        tx.send(make(reply))
            .await
            .map_err(|_| EngineError::WorkflowState(format!("workflow {id} has just ended")))?;
        answer
            .await
            .map_err(|_| EngineError::WorkflowState(format!("workflow {id} has just ended")))?
    }

    /// Answers the inquiry a workflow waits on (`step`, or the only one
    /// waiting). Whoever answers must be one of the inquiry's approvers
    /// (when it names any) and be allowed to `approve` the workflow.
    pub async fn answer(
        &self,
        id: ExecutionId,
        step: Option<&str>,
        by: &Identity,
        origin: &Origin,
        text: &str,
    ) -> Result<String, EngineError> {
        let (execution, action, workflow) = self.workflow_of(id).await?;
        if execution.status != ExecutionStatus::Running {
            return Err(EngineError::AlreadyFinished {
                id,
                status: execution.status,
            });
        }
        let state = self.run_state(id).await?.ok_or_else(|| {
            EngineError::WorkflowState(format!("workflow {id} has not started a step yet"))
        })?;
        let waiting: Vec<&str> = state
            .steps
            .iter()
            .filter(|(n, s)| {
                s.status == StepStatus::Waiting && step.is_none_or(|w| w == n.as_str())
            })
            .map(|(n, _)| n.as_str())
            .collect();
        if let [name] = waiting.as_slice()
            && let Some(StepKind::Inquiry(q)) = workflow.step(name).map(|s| &s.kind)
            && !q.approvers.is_empty()
            && !q.approvers.iter().any(|a| match a {
                Approver::Group(g) => by.groups.contains(g),
                Approver::User(u) => *u == by.principal,
            })
        {
            let who: Vec<String> = q.approvers.iter().map(ToString::to_string).collect();
            let reason = format!(
                "step `{name}` is answered by {}, and {} is not one of them",
                who.join(", "),
                by.principal
            );
            self.record(AuditEvent::now(
                &by.principal,
                origin,
                "workflow.answered",
                format!("execution:{id}"),
                "denied",
                serde_json::json!({"workflow": execution.action, "step": name, "reason": reason}),
            ))
            .await;
            return Err(EngineError::Forbidden(reason));
        }
        self.authorize(
            by,
            origin,
            Verb::Approve,
            Some(&action),
            &[],
            Some(&execution.requester),
        )
        .await?;
        let step = step.map(str::to_owned);
        let principal = by.principal.clone();
        let origin = origin.clone();
        let text = text.to_owned();
        self.send(id, |reply| Control::Answer {
            step,
            by: principal,
            origin,
            text,
            reply,
        })
        .await
    }

    /// Pauses a running workflow: steps running finish, none starts.
    pub async fn pause(
        &self,
        id: ExecutionId,
        by: &Identity,
        origin: &Origin,
    ) -> Result<(), EngineError> {
        self.steer(id, by, origin, true).await
    }

    /// Lets a paused workflow go on.
    pub async fn resume(
        &self,
        id: ExecutionId,
        by: &Identity,
        origin: &Origin,
    ) -> Result<(), EngineError> {
        self.steer(id, by, origin, false).await
    }

    async fn steer(
        &self,
        id: ExecutionId,
        by: &Identity,
        origin: &Origin,
        pause: bool,
    ) -> Result<(), EngineError> {
        let (execution, _, _) = self.workflow_of(id).await?;
        self.authorize_on_execution(by, origin, Verb::Cancel, &execution)
            .await?;
        let principal = by.principal.clone();
        if pause {
            self.send(id, |reply| Control::Pause {
                by: principal,
                reply,
            })
            .await?;
        } else {
            self.send(id, |reply| Control::Resume {
                by: principal,
                reply,
            })
            .await?;
        }
        self.record(AuditEvent::now(
            &by.principal,
            origin,
            if pause {
                "workflow.paused"
            } else {
                "workflow.resumed"
            },
            format!("execution:{id}"),
            "ok",
            serde_json::json!({"workflow": execution.action}),
        ))
        .await;
        Ok(())
    }

    /// Runs a finished workflow again from one of its steps (by default the
    /// first that failed): the steps before it keep their results and are
    /// not run again. A new execution, requested by `by`.
    pub async fn rerun(
        &self,
        id: ExecutionId,
        from: Option<&str>,
        by: &Identity,
        origin: &Origin,
    ) -> Result<Execution, EngineError> {
        let (execution, action, workflow) = self.workflow_of(id).await?;
        if !execution.status.is_terminal() {
            return Err(EngineError::WorkflowState(format!(
                "workflow {id} is still {}; re-run it once it ended",
                execution.status
            )));
        }
        let state = self
            .run_state(id)
            .await?
            .ok_or_else(|| EngineError::Invalid(format!("workflow {id} never started a step")))?;
        let from = match from {
            Some(f) if workflow.step(f).is_some() => f.to_owned(),
            Some(f) => {
                return Err(EngineError::Invalid(format!(
                    "workflow `{}` has no step `{f}`",
                    action.name
                )));
            }
            None => workflow
                .steps
                .iter()
                .find(|s| {
                    matches!(
                        state.step(&s.name).map(|x| x.status),
                        Some(StepStatus::Failed | StepStatus::TimedOut | StepStatus::Cancelled)
                    )
                })
                .map(|s| s.name.clone())
                .ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "no step of workflow {id} failed; name the step to start from"
                    ))
                })?,
        };
        if action.params.iter().any(|p| p.is_secret()) {
            return Err(EngineError::Invalid("secret parameters are never stored, so this workflow cannot be re-run; start it anew".to_owned()));
        }
        let params: RawParams = match &execution.params {
            serde_json::Value::Object(m) => m.clone().into_iter().collect(),
            _ => RawParams::default(),
        };
        let mut seed = state.restart_from(&workflow, &from, Timestamp::now().after(action.timeout));
        seed.runs_as = match &workflow.run_as {
            Some(service) => self.identity_of(service, &[]).await?,
            None => by.clone(),
        };
        let seed = serde_json::to_value(&seed).map_err(|e| EngineError::Internal(e.to_string()))?;
        let request = SubmitRequest {
            action: action.name.to_string(),
            params,
            requester: by.clone(),
            origin: origin.clone(),
        };
        let again = self.submit_linked(request, None, Some(seed)).await?;
        self.record(AuditEvent::now(
            &by.principal,
            origin,
            "workflow.rerun",
            format!("execution:{}", again.id),
            "queued",
            serde_json::json!({"workflow": action.name, "rerun_of": id, "from": from}),
        ))
        .await;
        Ok(again)
    }

    /// At start-up: the workflows this node was running go on where they
    /// were; those that cannot (their workflow left the catalog, they took
    /// secrets) end `lost`, saying why.
    pub(crate) async fn resume_workflows(&self) -> Result<(), EngineError> {
        for id in self
            .shared
            .store
            .workflows_running_on(&self.shared.config.node)
            .await?
        {
            if let Some(execution) = self.shared.store.get_execution(id).await? {
                self.resume_workflow(execution, "a restart").await?;
            }
        }
        Ok(())
    }

    /// Goes on here with a workflow this node, or a node that stopped, was
    /// running (`after` says which, for the log); one that cannot go on
    /// (its workflow left the catalog, it took secrets) ends `lost`.
    pub(crate) async fn resume_workflow(
        &self,
        execution: Execution,
        after: &str,
    ) -> Result<(), EngineError> {
        let id = execution.id;
        let catalog = self.catalog();
        let resumable = match catalog.action(execution.action.as_str()) {
            Some(action) if action.workflow.is_some() => {
                if action.params.iter().any(|p| p.is_secret()) {
                    Err("secret parameters are never stored, so it cannot resume".to_owned())
                } else {
                    crate::resume_params(action, &execution.params, &self.inventory())
                        .map(|(params, hosts)| (action.clone(), params, hosts))
                }
            }
            _ => Err("its workflow is no longer in the catalog".to_owned()),
        };
        match resumable {
            Ok((action, params, hosts)) => {
                let pending = Pending {
                    action,
                    params,
                    hosts,
                    audited: None,
                    requester: None,
                };
                tracing::info!(%id, workflow = %execution.action, "resuming a workflow after {after}");
                crate::dispatch::resume(self.shared.clone(), execution, pending);
            }
            Err(reason) => {
                let reason = format!("not resumed after {after}: {reason}");
                let finish = switchboard_store::Finish {
                    status: ExecutionStatus::Lost,
                    started_at: execution.started_at,
                    exit_code: None,
                    result: None,
                    error: Some(reason.clone()),
                    output_bytes: 0,
                    output_truncated: false,
                    finished_at: Timestamp::now(),
                    artifacts: Vec::new(),
                };
                self.shared.store.finish_execution(id, &finish).await?;
                self.audit_system(
                    "execution.lost",
                    &format!("execution:{id}"),
                    "lost",
                    serde_json::json!({"action": execution.action, "reason": reason}),
                )
                .await;
            }
        }
        Ok(())
    }
}
