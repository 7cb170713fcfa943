//! The state of one workflow run, as stored after every change, and the
//! rules that move it: which steps may start, which can no longer be
//! reached, how an attempt's end becomes a retry or the step's end, which
//! failure branch it triggers, and how the whole run ends.
//!
//! Every step that runs an action has one or more *units*: one per
//! `for_each` item (one for a plain step). Each unit's attempts are child
//! executions of the workflow's own execution.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Workflow;
use crate::execution::ExecutionStatus;
use crate::ids::{ExecutionId, Principal, Timestamp};
use crate::policy::Identity;

/// Where a step (or one unit of it) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started; for a unit, also: waiting for its next attempt.
    Pending,
    Running,
    /// An inquiry waiting for its answer.
    Waiting,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    /// Its `when` was false: counts as done for the steps after it.
    Skipped,
    /// A step it needs failed or was not reached, or it is a failure branch
    /// nothing triggered: the steps after it are not reached either.
    Unreached,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
            Self::Unreached => "unreached",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Running | Self::Waiting)
    }

    /// A step status from the end of its child execution.
    pub fn from_execution(status: ExecutionStatus) -> Self {
        match status {
            ExecutionStatus::Succeeded => Self::Succeeded,
            ExecutionStatus::TimedOut => Self::TimedOut,
            ExecutionStatus::Cancelled => Self::Cancelled,
            ExecutionStatus::Failed | ExecutionStatus::Lost => Self::Failed,
            ExecutionStatus::AwaitingApproval | ExecutionStatus::Queued => Self::Pending,
            ExecutionStatus::Running => Self::Running,
        }
    }
}

/// One run of a step's action: the step itself, or one `for_each` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub status: StepStatus,
    /// The `for_each` item (null for a plain step).
    #[serde(default)]
    pub item: serde_json::Value,
    /// Attempts started so far.
    pub attempt: u32,
    /// Every attempt's execution, in order; the last is the current one.
    #[serde(default)]
    pub executions: Vec<ExecutionId>,
    /// Pending: not before this (a retry's wait). Running: when the step's
    /// `timeout` stops it.
    pub due_at: Option<Timestamp>,
    /// Whether the driver stopped the attempt for the step's `timeout`.
    #[serde(default)]
    pub stopped_for_timeout: bool,
    pub result: Option<serde_json::Value>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

impl Unit {
    pub fn new(item: serde_json::Value) -> Self {
        Self {
            status: StepStatus::Pending,
            item,
            attempt: 0,
            executions: Vec::new(),
            due_at: None,
            stopped_for_timeout: false,
            result: None,
            exit_code: None,
            error: None,
        }
    }

    /// The execution of its current (or last) attempt.
    pub fn execution(&self) -> Option<ExecutionId> {
        self.executions.last().copied()
    }
}

/// One step's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    pub status: StepStatus,
    /// Why it ended as it did, when that says more than its status.
    pub reason: Option<String>,
    /// For a failure branch: whether a failure has called it.
    #[serde(default)]
    pub triggered: bool,
    #[serde(default)]
    pub units: Vec<Unit>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// An inquiry: when it times out.
    pub deadline: Option<Timestamp>,
    /// An inquiry: the question, rendered.
    pub prompt: Option<String>,
    pub answer: Option<serde_json::Value>,
    pub answered_by: Option<Principal>,
}

impl StepState {
    fn new() -> Self {
        Self {
            status: StepStatus::Pending,
            reason: None,
            triggered: false,
            units: Vec::new(),
            started_at: None,
            ended_at: None,
            deadline: None,
            prompt: None,
            answer: None,
            answered_by: None,
        }
    }

    /// The step's result: its unit's, or the list of its items' results.
    pub fn result(&self, for_each: bool) -> serde_json::Value {
        if for_each {
            serde_json::Value::Array(
                self.units
                    .iter()
                    .map(|u| u.result.clone().unwrap_or(serde_json::Value::Null))
                    .collect(),
            )
        } else {
            self.units
                .first()
                .and_then(|u| u.result.clone())
                .unwrap_or(serde_json::Value::Null)
        }
    }
}

/// The stored state of one workflow run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Who the steps are authorized for (the requester, or the workflow's
    /// `run_as` service principal), as resolved when it was requested.
    pub runs_as: Identity,
    /// The workflow's parameters (secrets are never stored: a workflow with
    /// secret parameters cannot resume after a restart).
    pub input: serde_json::Map<String, serde_json::Value>,
    /// Variables published by steps so far.
    #[serde(default)]
    pub vars: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub paused: bool,
    /// When the whole workflow times out.
    pub deadline: Timestamp,
    pub steps: BTreeMap<String, StepState>,
}

/// What the driver should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// Every step it needs is done: evaluate `when` and start it.
    Start(String),
    /// It can no longer run; why.
    Unreach(String, String),
}

impl RunState {
    pub fn new(
        workflow: &Workflow,
        runs_as: Identity,
        input: serde_json::Map<String, serde_json::Value>,
        deadline: Timestamp,
    ) -> Self {
        Self {
            runs_as,
            input,
            vars: serde_json::Map::new(),
            paused: false,
            deadline,
            steps: workflow
                .steps
                .iter()
                .map(|s| (s.name.clone(), StepState::new()))
                .collect(),
        }
    }

    /// Makes the state fit the workflow as the catalog now declares it
    /// (after a reload, before a run resumes): a step added since starts
    /// pending; a step removed since is dropped.
    pub fn fit(&mut self, workflow: &Workflow) {
        self.steps.retain(|name, _| workflow.step(name).is_some());
        for step in &workflow.steps {
            self.steps
                .entry(step.name.clone())
                .or_insert_with(StepState::new);
        }
    }

    pub fn step(&self, name: &str) -> Option<&StepState> {
        self.steps.get(name)
    }

    pub fn step_mut(&mut self, name: &str) -> Option<&mut StepState> {
        self.steps.get_mut(name)
    }

    fn status(&self, name: &str) -> StepStatus {
        self.steps
            .get(name)
            .map_or(StepStatus::Unreached, |s| s.status)
    }

    /// Whether a step is done in a way that lets the steps after it run.
    fn done_ok(&self, workflow: &Workflow, name: &str) -> bool {
        match self.status(name) {
            StepStatus::Succeeded | StepStatus::Skipped => true,
            StepStatus::Failed | StepStatus::TimedOut => {
                workflow.step(name).is_some_and(|s| s.allow_failure)
            }
            _ => false,
        }
    }

    /// The steps that can start now and those that can no longer run.
    pub fn moves(&self, workflow: &Workflow) -> Vec<Move> {
        let branch = workflow.branch_steps();
        let mut moves = Vec::new();
        for step in &workflow.steps {
            let Some(state) = self.steps.get(&step.name) else {
                continue;
            };
            if state.status != StepStatus::Pending {
                continue;
            }
            let is_root = workflow.steps.iter().any(|s| {
                s.on_failure.as_ref() == Some(&step.name) || s.on_timeout() == Some(&step.name)
            });
            if is_root {
                if state.triggered {
                    moves.push(Move::Start(step.name.clone()));
                }
                continue;
            }
            let blocked = step.needs.iter().find(|n| {
                let s = self.status(n);
                s.is_terminal() && !self.done_ok(workflow, n)
            });
            if let Some(need) = blocked {
                let why = match self.status(need) {
                    StepStatus::Unreached => format!("`{need}` was not reached"),
                    other => format!("`{need}` {}", other.as_str().replace('_', " ")),
                };
                moves.push(Move::Unreach(step.name.clone(), why));
            } else if step.needs.iter().all(|n| self.done_ok(workflow, n)) {
                moves.push(Move::Start(step.name.clone()));
            }
        }
        if moves.is_empty() && !self.paused {
            // Nothing more can happen on the main path: failure branches
            // nothing triggered, and the steps after them, are not reached.
            let active = self
                .steps
                .values()
                .any(|s| matches!(s.status, StepStatus::Running | StepStatus::Waiting));
            let settled = workflow
                .steps
                .iter()
                .all(|s| branch.contains(s.name.as_str()) || self.status(&s.name).is_terminal());
            if !active && settled {
                for s in &workflow.steps {
                    if self.status(&s.name) == StepStatus::Pending
                        && !self.steps.get(&s.name).is_some_and(|st| st.triggered)
                    {
                        moves.push(Move::Unreach(
                            s.name.clone(),
                            "its failure branch was not needed".to_owned(),
                        ));
                    }
                }
            }
        }
        moves
    }

    /// Ends a step (after its units ended, its inquiry was answered or timed
    /// out, or it could not start): publishes nothing, but calls its failure
    /// branch when it failed or timed out.
    pub fn end_step(
        &mut self,
        workflow: &Workflow,
        name: &str,
        status: StepStatus,
        reason: Option<String>,
        now: Timestamp,
    ) {
        if let Some(s) = self.steps.get_mut(name) {
            s.status = status;
            s.reason = reason;
            s.ended_at = Some(now);
        }
        let Some(step) = workflow.step(name) else {
            return;
        };
        let branch = match status {
            StepStatus::Failed => step.on_failure.as_ref(),
            StepStatus::TimedOut => step.on_timeout().or(step.on_failure.as_ref()),
            _ => None,
        };
        if let Some(target) = branch
            && let Some(t) = self.steps.get_mut(target)
            && t.status == StepStatus::Pending
        {
            t.triggered = true;
        }
    }

    /// Records the end of a unit's attempt. A failed attempt with retries
    /// left becomes pending again, due after the retry's wait; returns
    /// whether the step has now ended (every unit ended), with its status.
    pub fn end_attempt(
        &mut self,
        workflow: &Workflow,
        name: &str,
        unit: usize,
        ended: AttemptEnd,
        now: Timestamp,
    ) -> Option<(StepStatus, Option<String>)> {
        let step = workflow.step(name)?;
        let state = self.steps.get_mut(name)?;
        let u = state.units.get_mut(unit)?;
        let mut status = StepStatus::from_execution(ended.status);
        if u.stopped_for_timeout && status == StepStatus::Cancelled {
            status = StepStatus::TimedOut;
        }
        u.result = ended.result;
        u.exit_code = ended.exit_code;
        u.error = if status == StepStatus::TimedOut && u.stopped_for_timeout {
            Some(format!(
                "stopped after the step's timeout of {}",
                step.timeout
                    .map(|t| humantime::format_duration(t).to_string())
                    .unwrap_or_default()
            ))
        } else {
            ended.error
        };
        u.stopped_for_timeout = false;
        let retryable = matches!(status, StepStatus::Failed | StepStatus::TimedOut)
            && !ended.final_
            && u.attempt <= step.retry.count;
        if retryable {
            u.status = StepStatus::Pending;
            u.due_at = Some(now.after(step.retry.delay_before(u.attempt + 1)));
            return None;
        }
        u.status = status;
        u.due_at = None;
        if state.units.iter().any(|u| !u.status.is_terminal()) {
            return None;
        }
        let (status, reason) = settle(&state.units, step.for_each.is_some());
        self.end_step(workflow, name, status, reason.clone(), now);
        Some((status, reason))
    }

    /// How the run ends, once no step can move any more.
    pub fn outcome(&self, workflow: &Workflow) -> Option<(ExecutionStatus, Option<String>)> {
        if self.steps.values().any(|s| !s.status.is_terminal()) {
            return None;
        }
        let mut failed = None;
        for step in &workflow.steps {
            let Some(s) = self.steps.get(&step.name) else {
                continue;
            };
            match s.status {
                StepStatus::Cancelled => {
                    return Some((
                        ExecutionStatus::Cancelled,
                        Some(format!("step `{}` was cancelled", step.name)),
                    ));
                }
                StepStatus::Failed | StepStatus::TimedOut
                    if !step.allow_failure && failed.is_none() =>
                {
                    let what = if s.status == StepStatus::TimedOut {
                        "timed out"
                    } else {
                        "failed"
                    };
                    failed = Some(match &s.reason {
                        Some(r) => format!("step `{}` {what}: {r}", step.name),
                        None => format!("step `{}` {what}", step.name),
                    });
                }
                _ => {}
            }
        }
        Some(match failed {
            Some(why) => (ExecutionStatus::Failed, Some(why)),
            None => (ExecutionStatus::Succeeded, None),
        })
    }

    /// The context templates of a step are rendered with.
    pub fn context(&self, workflow: &Workflow, id: ExecutionId) -> serde_json::Value {
        let steps: serde_json::Map<String, serde_json::Value> = workflow
            .steps
            .iter()
            .filter_map(|step| {
                let s = self.steps.get(&step.name)?;
                let first = s.units.first();
                let view = serde_json::json!({
                    "status": s.status.as_str(),
                    "reason": s.reason,
                    "result": s.result(step.for_each.is_some()),
                    "exit_code": first.and_then(|u| u.exit_code),
                    "error": first.and_then(|u| u.error.clone()).or_else(|| s.reason.clone()),
                    "answer": s.answer,
                    "by": s.answered_by,
                    "items": s.units.iter().map(|u| serde_json::json!({
                        "item": u.item, "status": u.status.as_str(), "result": u.result,
                    })).collect::<Vec<_>>(),
                });
                Some((step.name.clone(), view))
            })
            .collect();
        serde_json::json!({
            "input": self.input,
            "steps": steps,
            "vars": self.vars,
            "workflow": {"id": id.0},
        })
    }

    /// Makes a run that starts again at `from`: every step that is not
    /// `from` nor after it keeps its end if it succeeded or was skipped;
    /// the rest, and the failure branches, start over.
    pub fn restart_from(&self, workflow: &Workflow, from: &str, deadline: Timestamp) -> Self {
        let mut after: std::collections::BTreeSet<String> = workflow
            .branch_steps()
            .into_iter()
            .map(str::to_owned)
            .collect();
        after.insert(from.to_owned());
        loop {
            let before = after.len();
            for s in &workflow.steps {
                if s.needs.iter().any(|n| after.contains(n)) {
                    after.insert(s.name.clone());
                }
            }
            if after.len() == before {
                break;
            }
        }
        let mut next = Self::new(workflow, self.runs_as.clone(), self.input.clone(), deadline);
        for (name, s) in &self.steps {
            let keep = !after.contains(name)
                && matches!(s.status, StepStatus::Succeeded | StepStatus::Skipped);
            if keep && let Some(slot) = next.steps.get_mut(name) {
                *slot = s.clone();
            }
        }
        for step in &workflow.steps {
            if next.status(&step.name) == StepStatus::Succeeded {
                for key in step.publish.keys() {
                    if let Some(v) = self.vars.get(key) {
                        next.vars.insert(key.clone(), v.clone());
                    }
                }
            }
        }
        next
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptEnd {
    pub status: ExecutionStatus,
    pub result: Option<serde_json::Value>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// No retry, whatever the step allows (the workflow is being cancelled,
    /// or the attempt was interrupted and its action is not idempotent).
    pub final_: bool,
}

/// A step's end from its units' ends.
fn settle(units: &[Unit], for_each: bool) -> (StepStatus, Option<String>) {
    let failing = |s: StepStatus| units.iter().filter(move |u| u.status == s);
    if let Some(u) = failing(StepStatus::Cancelled).next() {
        return (StepStatus::Cancelled, u.error.clone());
    }
    let failed: Vec<&Unit> = units
        .iter()
        .filter(|u| matches!(u.status, StepStatus::Failed | StepStatus::TimedOut))
        .collect();
    let Some(first) = failed.first() else {
        return (StepStatus::Succeeded, None);
    };
    let status = if failed.iter().all(|u| u.status == StepStatus::TimedOut) {
        StepStatus::TimedOut
    } else {
        StepStatus::Failed
    };
    let detail = first
        .error
        .clone()
        .unwrap_or_else(|| match first.exit_code {
            Some(code) => format!("exit code {code}"),
            None => first.status.as_str().to_owned(),
        });
    let reason = if for_each {
        format!(
            "{} of {} items failed; item {}: {detail}",
            failed.len(),
            units.len(),
            first.item
        )
    } else {
        detail
    };
    (status, Some(reason))
}
