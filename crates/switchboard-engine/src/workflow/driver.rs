//! The workflow driver: one task per running workflow, on the node that
//! claimed its execution. It applies core's rules (`workflow::state`) to
//! what happens — a step's attempt ending, an answer, a timer, a pause,
//! a cancel — submits each attempt as a child execution through
//! `Engine::submit_linked` (so every step is authorized, approved and
//! audited like any request), and stores the run's state after every
//! change, before it acts on it, so a killed node resumes where it was.
//!
//! It writes one line per step event to the workflow's own output, which
//! is how the CLI (`logs --follow`), the web page and chat show the step
//! tree live.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::audit::AuditEvent;
use switchboard_core::policy::Identity;
use switchboard_core::workflow::state::{AttemptEnd, Move, RunState, StepStatus, Unit};
use switchboard_core::workflow::{StepKind, Workflow, expr};
use switchboard_core::{
    Execution, ExecutionId, ExecutionStatus, Origin, OutputChunk, Principal, RawParams, Stream,
    Timestamp,
};
use tokio::sync::{mpsc, oneshot, watch};

use super::Control;
use crate::runner::{RunEvent, RunOutcome};
use crate::{Engine, EngineError, Pending, Shared, SubmitRequest};

/// The longest the driver sleeps without looking at its timers.
const IDLE: Duration = Duration::from_secs(30);

/// An attempt's execution ended.
struct ChildEnded {
    step: String,
    unit: usize,
    execution: Execution,
}

/// Writes the workflow's own output: one system line per step event.
struct Log {
    id: ExecutionId,
    seq: i64,
    tx: mpsc::Sender<RunEvent>,
}

impl Log {
    async fn line(&mut self, text: String) {
        self.seq += 1;
        let chunk = OutputChunk {
            seq: self.seq,
            ts: Timestamp::now(),
            stream: Stream::System,
            text,
        };
        if self.tx.send(RunEvent::Output(chunk)).await.is_err() {
            tracing::warn!(id = %self.id, "the workflow's output is no longer recorded");
        }
    }
}

struct Driver {
    engine: Engine,
    execution: Execution,
    workflow: Arc<Workflow>,
    state: RunState,
    /// The workflow's parameters with secrets in clear (never stored).
    input: serde_json::Map<String, serde_json::Value>,
    log: Log,
    ended_tx: mpsc::Sender<ChildEnded>,
    /// Set when the whole run is being stopped: `cancelled` or `timed_out`.
    stopping: Option<(ExecutionStatus, String)>,
}

/// Runs (or resumes) a workflow execution to its end.
pub(crate) async fn drive(
    shared: Arc<Shared>,
    execution: Execution,
    pending: Pending,
    events: mpsc::Sender<RunEvent>,
    mut cancel: watch::Receiver<bool>,
) -> RunOutcome {
    let engine = Engine {
        shared: shared.clone(),
    };
    let id = execution.id;
    let Some(workflow) = pending.action.workflow.clone() else {
        return RunOutcome::failed("this workflow action has no steps");
    };
    let seq = match last_output_seq(&engine, id).await {
        Ok(s) => s,
        Err(e) => return RunOutcome::failed(format!("cannot read the workflow's output: {e}")),
    };
    let (ended_tx, mut ended_rx) = mpsc::channel(64);
    let (control_tx, mut control_rx) = mpsc::channel(16);
    let input: serde_json::Map<String, serde_json::Value> = pending
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    let stored = match engine.shared.store.workflow_state(id).await {
        Ok(s) => s,
        Err(e) => return RunOutcome::failed(format!("cannot read the workflow's state: {e}")),
    };
    // A run that has written its log before is resuming after a restart; a
    // stored state without a log is a re-run's starting point.
    let resumed = seq > 0;
    let state = match stored.map(serde_json::from_value::<RunState>) {
        Some(Ok(mut state)) => {
            state.fit(&workflow);
            state
        }
        Some(Err(e)) => {
            return RunOutcome::failed(format!("the stored workflow state is unreadable: {e}"));
        }
        None => {
            let runs_as = match runs_as(&engine, &workflow, &execution, pending.requester).await {
                Ok(who) => who,
                Err(e) => return RunOutcome::failed(e.to_string()),
            };
            let masked = match pending.params.to_masked_json(&pending.action.params) {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            RunState::new(
                &workflow,
                runs_as,
                masked,
                Timestamp::now().after(pending.action.timeout),
            )
        }
    };
    let mut driver = Driver {
        engine: engine.clone(),
        execution,
        workflow,
        state,
        input,
        log: Log {
            id,
            seq,
            tx: events,
        },
        ended_tx,
        stopping: None,
    };
    if !resumed {
        let _ = driver
            .log
            .tx
            .send(RunEvent::Started(Timestamp::now()))
            .await;
        if let Some(run_as) = &driver.workflow.run_as {
            driver
                .log
                .line(format!(
                    "steps run as {run_as} on behalf of {}",
                    driver.execution.requester
                ))
                .await;
        }
    } else {
        driver.log.line("resumed after a restart".to_owned()).await;
        driver.reattach().await;
    }
    shared.workflows().insert(id, control_tx);
    let outcome = driver
        .run(&mut ended_rx, &mut control_rx, &mut cancel)
        .await;
    shared.workflows().remove(&id);
    outcome
}

/// Who the steps run as: the workflow's `run_as` service principal, or the
/// requester with the groups they had when they asked.
async fn runs_as(
    engine: &Engine,
    workflow: &Workflow,
    execution: &Execution,
    requester: Option<Identity>,
) -> Result<Identity, EngineError> {
    match (&workflow.run_as, requester) {
        (Some(service), _) => engine.identity_of(service, &[]).await,
        (None, Some(who)) => Ok(who),
        (None, None) => engine.identity_of(&execution.requester, &[]).await,
    }
}

async fn last_output_seq(engine: &Engine, id: ExecutionId) -> Result<i64, EngineError> {
    let mut after = 0;
    loop {
        let page = engine.shared.store.output(id, after, 1000).await?;
        match page.last() {
            Some(last) => after = last.seq,
            None => return Ok(after),
        }
    }
}

/// The label of a unit's n-th execution: `restart#2`, `each[0]#1`.
fn label(step: &str, unit: usize, for_each: bool, n: usize) -> String {
    if for_each {
        format!("{step}[{unit}]#{n}")
    } else {
        format!("{step}#{n}")
    }
}

impl Driver {
    fn id(&self) -> ExecutionId {
        self.execution.id
    }

    async fn save(&self) {
        let value = match serde_json::to_value(&self.state) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(id = %self.id(), error = %e, "cannot encode the workflow state");
                return;
            }
        };
        // The state must be stored before the driver acts on it: retry.
        let mut attempt = 0u32;
        while let Err(e) = self
            .engine
            .shared
            .store
            .save_workflow_state(self.id(), &value, Timestamp::now())
            .await
        {
            attempt += 1;
            tracing::error!(id = %self.id(), error = %e, attempt, "storing the workflow state failed");
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(25)))).await;
        }
    }

    /// After a restart: watch again the attempts that were running, find
    /// those submitted just before the crash, and start over those that
    /// never were.
    async fn reattach(&mut self) {
        let children = self
            .engine
            .list(&switchboard_store::ExecutionFilter {
                parent: Some(self.id()),
                limit: 10_000,
                ..Default::default()
            })
            .await
            .unwrap_or_default();
        let by_label: BTreeMap<String, ExecutionId> = children
            .iter()
            .filter_map(|c| c.step.clone().map(|s| (s, c.id)))
            .collect();
        let names: Vec<String> = self.state.steps.keys().cloned().collect();
        for name in names {
            let for_each = self
                .workflow
                .step(&name)
                .is_some_and(|s| s.for_each.is_some());
            let Some(step) = self.state.step_mut(&name) else {
                continue;
            };
            for (i, unit) in step.units.iter_mut().enumerate() {
                if unit.status != StepStatus::Running {
                    continue;
                }
                let n = unit.executions.len();
                if n < unit.attempt as usize {
                    // Submitted or not? Its label tells.
                    match by_label.get(&label(&name, i, for_each, n + 1)) {
                        Some(child) => unit.executions.push(*child),
                        None => {
                            unit.status = StepStatus::Pending;
                            unit.attempt = unit.attempt.saturating_sub(1);
                            unit.due_at = None;
                            continue;
                        }
                    }
                }
                if let Some(child) = unit.execution() {
                    watch_child(&self.engine, &self.ended_tx, name.clone(), i, child);
                }
            }
        }
        self.save().await;
    }

    async fn run(
        &mut self,
        ended_rx: &mut mpsc::Receiver<ChildEnded>,
        control_rx: &mut mpsc::Receiver<Control>,
        cancel: &mut watch::Receiver<bool>,
    ) -> RunOutcome {
        loop {
            self.advance().await;
            if let Some(outcome) = self.finished().await {
                return outcome;
            }
            let next = self.next_timer();
            tokio::select! {
                Some(ended) = ended_rx.recv() => self.child_ended(ended).await,
                Some(control) = control_rx.recv() => self.control(control).await,
                changed = cancel.changed() => {
                    if changed.is_err() || *cancel.borrow() {
                        self.stop(ExecutionStatus::Cancelled, "the workflow was cancelled".to_owned()).await;
                    }
                }
                () = tokio::time::sleep_until(next) => self.timers().await,
            }
        }
    }

    /// Starts what can start and ends what can no longer run, until nothing
    /// moves; stores the state when anything changed.
    async fn advance(&mut self) {
        let mut changed = false;
        loop {
            let mut moved = false;
            if self.stopping.is_none() && !self.state.paused {
                for m in self.state.moves(&self.workflow) {
                    moved = true;
                    match m {
                        Move::Unreach(name, why) => {
                            self.end_step_here(&name, StepStatus::Unreached, why).await;
                        }
                        Move::Start(name) => self.start_step(&name).await,
                    }
                }
            }
            moved |= self.start_units().await;
            changed |= moved;
            if !moved {
                break;
            }
        }
        if changed {
            self.save().await;
        }
    }

    /// Evaluates a step's `when` and `for_each` and makes its units, or
    /// opens its inquiry.
    async fn start_step(&mut self, name: &str) {
        let Some(step) = self.workflow.step(name).cloned() else {
            return;
        };
        let now = Timestamp::now();
        let ctx = self.context(None);
        if let Some(when) = &step.when {
            match expr::holds(when, &ctx) {
                Ok(true) => {}
                Ok(false) => {
                    self.end_step_here(name, StepStatus::Skipped, "`when` was false".to_owned())
                        .await;
                    return;
                }
                Err(e) => {
                    self.fail_step(name, format!("`when`: {e}")).await;
                    return;
                }
            }
        }
        if let Some(s) = self.state.step_mut(name) {
            s.started_at = Some(now);
        }
        match &step.kind {
            StepKind::Inquiry(q) => {
                let prompt = match expr::render_text(&q.prompt, &ctx) {
                    Ok(serde_json::Value::String(s)) => s,
                    Ok(other) => other.to_string(),
                    Err(e) => {
                        self.fail_step(name, format!("prompt: {e}")).await;
                        return;
                    }
                };
                let deadline = now.after(q.timeout);
                if let Some(s) = self.state.step_mut(name) {
                    s.status = StepStatus::Waiting;
                    s.prompt = Some(prompt.clone());
                    s.deadline = Some(deadline);
                }
                let who = if q.approvers.is_empty() {
                    "anyone allowed to approve this workflow".to_owned()
                } else {
                    q.approvers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let id = self.id();
                self.log
                    .line(format!(
                        "? {name}: {prompt} — waiting for {who} to answer {} until {deadline} (`switchboard answer {id} …`; in chat `approve {id}` / `reject {id}`)",
                        q.answer.hint()
                    ))
                    .await;
            }
            StepKind::Action { .. } => {
                let items = match &step.for_each {
                    None => vec![serde_json::Value::Null],
                    Some(list) => match expr::list(list, &ctx) {
                        Ok(items) => items,
                        Err(e) => {
                            self.fail_step(name, format!("`for_each`: {e}")).await;
                            return;
                        }
                    },
                };
                if items.is_empty() {
                    self.end_step_here(name, StepStatus::Succeeded, "no items".to_owned())
                        .await;
                    return;
                }
                if let Some(s) = self.state.step_mut(name) {
                    s.status = StepStatus::Running;
                    s.units = items.into_iter().map(Unit::new).collect();
                }
            }
        }
    }

    async fn fail_step(&mut self, name: &str, reason: String) {
        self.end_step_here(name, StepStatus::Failed, reason).await;
    }

    /// Ends a step that ran nothing (or nothing more), and says so.
    async fn end_step_here(&mut self, name: &str, status: StepStatus, reason: String) {
        self.log
            .line(format!(
                "{} {name}: {} ({reason})",
                mark(status),
                status.as_str().replace('_', " ")
            ))
            .await;
        self.state
            .end_step(&self.workflow, name, status, Some(reason), Timestamp::now());
    }

    /// Starts the units that are due, within each step's concurrency.
    async fn start_units(&mut self) -> bool {
        if self.stopping.is_some() || self.state.paused {
            return false;
        }
        let now = Timestamp::now();
        let mut started = false;
        let names: Vec<String> = self
            .state
            .steps
            .iter()
            .filter(|(_, s)| s.status == StepStatus::Running)
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let Some(step) = self.workflow.step(&name).cloned() else {
                continue;
            };
            while let Some(s) = self.state.step(&name) {
                let running = s
                    .units
                    .iter()
                    .filter(|u| u.status == StepStatus::Running)
                    .count();
                if running >= step.concurrency {
                    break;
                }
                let Some(i) = s.units.iter().position(|u| {
                    u.status == StepStatus::Pending && u.due_at.is_none_or(|d| d <= now)
                }) else {
                    break;
                };
                self.start_unit(&name, i).await;
                started = true;
            }
        }
        started
    }

    /// Submits one attempt of a unit as a child execution. The state says
    /// the attempt started before it is submitted, so a crash in between
    /// is found again by its label (see `reattach`).
    async fn start_unit(&mut self, name: &str, i: usize) {
        let Some(step) = self.workflow.step(name).cloned() else {
            return;
        };
        let StepKind::Action { action, params } = &step.kind else {
            return;
        };
        let for_each = step.for_each.is_some();
        let item = self
            .state
            .step(name)
            .map(|s| s.units[i].item.clone())
            .unwrap_or_default();
        let ctx = self.context(for_each.then_some((i, &item)));
        let rendered: Result<RawParams, String> = params
            .iter()
            .map(|(k, v)| {
                expr::render(v, &ctx)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| format!("`{k}`: {e}"))
            })
            .collect();
        let n;
        {
            let Some(unit) = self.state.step_mut(name).map(|s| &mut s.units[i]) else {
                return;
            };
            unit.attempt += 1;
            unit.status = StepStatus::Running;
            unit.due_at = step.timeout.map(|t| Timestamp::now().after(t));
            n = unit.executions.len() + 1;
        }
        let tag = if for_each {
            format!("{name}[{i}]")
        } else {
            name.to_owned()
        };
        let raw = match rendered {
            Ok(raw) => raw,
            Err(e) => {
                self.attempt_refused(name, i, format!("parameters: {e}"))
                    .await;
                return;
            }
        };
        self.save().await;
        let request = SubmitRequest {
            action: action.to_string(),
            params: raw,
            requester: self.state.runs_as.clone(),
            origin: self.execution.origin.clone(),
        };
        let link = crate::Link {
            parent: self.id(),
            step: label(name, i, for_each, n),
        };
        match self.engine.submit_linked(request, Some(link), None).await {
            Ok(child) => {
                if let Some(unit) = self.state.step_mut(name).map(|s| &mut s.units[i]) {
                    unit.executions.push(child.id);
                }
                let attempt = self.state.step(name).map_or(1, |s| s.units[i].attempt);
                let again = if attempt > 1 {
                    format!(", attempt {attempt}")
                } else {
                    String::new()
                };
                let waits = if child.status == ExecutionStatus::AwaitingApproval {
                    " — awaiting approval"
                } else {
                    ""
                };
                self.log
                    .line(format!(
                        "▶ {tag}: {action} started (execution {}{again}){waits}",
                        child.id
                    ))
                    .await;
                watch_child(&self.engine, &self.ended_tx, name.to_owned(), i, child.id);
                self.save().await;
            }
            Err(e) => self.attempt_refused(name, i, e.to_string()).await,
        }
    }

    /// An attempt that could not even be submitted: it fails for good (a
    /// refusal or bad parameters do not get better by retrying).
    async fn attempt_refused(&mut self, name: &str, i: usize, error: String) {
        let ended = AttemptEnd {
            status: ExecutionStatus::Failed,
            result: None,
            exit_code: None,
            error: Some(error),
            final_: true,
        };
        self.attempt_ended(name, i, ended).await;
    }

    async fn child_ended(&mut self, ended: ChildEnded) {
        let ChildEnded {
            step,
            unit,
            execution,
        } = ended;
        let current = self
            .state
            .step(&step)
            .and_then(|s| s.units.get(unit))
            .filter(|u| u.status == StepStatus::Running)
            .and_then(Unit::execution);
        if current != Some(execution.id) {
            return;
        }
        let catalog = self.engine.catalog();
        let idempotent = catalog
            .action(execution.action.as_str())
            .is_some_and(|a| a.idempotent);
        let interrupted = execution.status == ExecutionStatus::Lost;
        if interrupted && idempotent && self.stopping.is_none() {
            if let Some(u) = self.state.step_mut(&step).map(|s| &mut s.units[unit]) {
                u.status = StepStatus::Pending;
                u.attempt = u.attempt.saturating_sub(1);
                u.due_at = None;
            }
            self.log
                .line(format!(
                    "↻ {step}: execution {} was interrupted; {} is idempotent, so it runs again",
                    execution.id, execution.action
                ))
                .await;
            self.save().await;
            return;
        }
        let error = if interrupted {
            Some(format!(
                "interrupted: {}; `{}` is not declared idempotent, so it is not run again",
                execution.error.as_deref().unwrap_or("its node stopped"),
                execution.action
            ))
        } else {
            execution.error.clone()
        };
        let ended = AttemptEnd {
            status: execution.status,
            result: execution.result.clone(),
            exit_code: execution.exit_code,
            error,
            final_: interrupted || self.stopping.is_some(),
        };
        self.attempt_ended(&step, unit, ended).await;
    }

    async fn attempt_ended(&mut self, name: &str, i: usize, ended: AttemptEnd) {
        let status = ended.status;
        let detail = ended
            .error
            .clone()
            .or_else(|| ended.exit_code.map(|c| format!("exit code {c}")));
        let for_each = self
            .workflow
            .step(name)
            .is_some_and(|s| s.for_each.is_some());
        let tag = if for_each {
            format!("{name}[{i}]")
        } else {
            name.to_owned()
        };
        let settled = self
            .state
            .end_attempt(&self.workflow, name, i, ended, Timestamp::now());
        let unit = self.state.step(name).map(|s| s.units[i].clone());
        match (&settled, unit) {
            (None, Some(u)) if u.status == StepStatus::Pending => {
                let wait = u
                    .due_at
                    .map(|d| {
                        humantime::format_duration(Duration::from_secs(
                            Timestamp::now().until(d).as_secs(),
                        ))
                        .to_string()
                    })
                    .unwrap_or_default();
                let retries = self.workflow.step(name).map_or(0, |s| s.retry.count);
                self.log
                    .line(format!(
                        "✖ {tag}: {} ({}); retry {} of {retries} in {wait}",
                        status.as_str(),
                        detail.unwrap_or_default(),
                        u.attempt
                    ))
                    .await;
            }
            (None, Some(u)) if for_each => {
                self.log
                    .line(format!("{} {tag}: {}", mark(u.status), u.status.as_str()))
                    .await;
            }
            _ => {}
        }
        if let Some((step_status, reason)) = settled {
            self.step_ended(name, step_status, reason).await;
        }
        self.save().await;
    }

    /// A step ended: publish its variables when it succeeded, and say so.
    async fn step_ended(&mut self, name: &str, status: StepStatus, reason: Option<String>) {
        if status == StepStatus::Succeeded {
            let publish = self
                .workflow
                .step(name)
                .map(|s| s.publish.clone())
                .unwrap_or_default();
            let ctx = self.context(None);
            for (var, template) in publish {
                match expr::render_text(&template, &ctx) {
                    Ok(v) => {
                        self.state.vars.insert(var, v);
                    }
                    Err(e) => {
                        // The step did its work, but what it promised is missing.
                        self.fail_step(name, format!("publish `{var}`: {e}")).await;
                        return;
                    }
                }
            }
            self.log.line(format!("✔ {name}: succeeded")).await;
            return;
        }
        let reason = reason.map(|r| format!(" ({r})")).unwrap_or_default();
        self.log
            .line(format!(
                "{} {name}: {}{reason}",
                mark(status),
                status.as_str().replace('_', " ")
            ))
            .await;
        if let Some(target) = self.workflow.step(name).and_then(|s| match status {
            StepStatus::TimedOut => s.on_timeout().or(s.on_failure.as_ref()),
            StepStatus::Failed => s.on_failure.as_ref(),
            _ => None,
        }) && self.state.step(target).is_some_and(|t| t.triggered)
        {
            self.log
                .line(format!("→ {target}: called by the failure of {name}"))
                .await;
        }
    }

    async fn control(&mut self, control: Control) {
        match control {
            Control::Pause { by, reply } => {
                let was = std::mem::replace(&mut self.state.paused, true);
                if !was {
                    self.log
                        .line(format!(
                            "⏸ paused by {by}: running steps finish, no new step starts"
                        ))
                        .await;
                    self.save().await;
                }
                let _ = reply.send(Ok(()));
            }
            Control::Resume { by, reply } => {
                let was = std::mem::replace(&mut self.state.paused, false);
                if was {
                    self.log.line(format!("⏵ resumed by {by}")).await;
                    self.save().await;
                }
                let _ = reply.send(Ok(()));
            }
            Control::Answer {
                step,
                by,
                origin,
                text,
                reply,
            } => {
                let result = self.answer(step.as_deref(), &by, &origin, &text).await;
                let _ = reply.send(result);
            }
        }
    }

    /// Records an answer to the waiting inquiry (`step`, or the only one
    /// waiting); the caller has checked who may answer.
    async fn answer(
        &mut self,
        step: Option<&str>,
        by: &Principal,
        origin: &Origin,
        text: &str,
    ) -> Result<String, EngineError> {
        let waiting: Vec<String> = self
            .state
            .steps
            .iter()
            .filter(|(n, s)| {
                s.status == StepStatus::Waiting && step.is_none_or(|w| w == n.as_str())
            })
            .map(|(n, _)| n.clone())
            .collect();
        let name = match waiting.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(EngineError::WorkflowState(format!(
                    "workflow {} is not waiting for an answer{}",
                    self.id(),
                    step.map(|s| format!(" at step `{s}`")).unwrap_or_default()
                )));
            }
            _ => {
                return Err(EngineError::Invalid(format!(
                    "workflow {} waits for answers at {}: name the step",
                    self.id(),
                    waiting.join(", ")
                )));
            }
        };
        let Some(StepKind::Inquiry(q)) = self.workflow.step(&name).map(|s| &s.kind) else {
            return Err(EngineError::Internal(format!(
                "step `{name}` is not an inquiry"
            )));
        };
        let value = q.answer.read(text).map_err(EngineError::Invalid)?;
        if let Some(s) = self.state.step_mut(&name) {
            s.answer = Some(value.clone());
            s.answered_by = Some(by.clone());
        }
        let refused = value == serde_json::Value::Bool(false);
        let shown = match &value {
            serde_json::Value::Bool(true) => "yes".to_owned(),
            serde_json::Value::Bool(false) => "no".to_owned(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.engine
            .record(AuditEvent::now(
                by,
                origin,
                "workflow.answered",
                format!("execution:{}", self.id()),
                if refused { "rejected" } else { "answered" },
                serde_json::json!({"workflow": self.execution.action, "step": name, "answer": value}),
            ))
            .await;
        self.log
            .line(format!("! {name}: {by} answered {shown}"))
            .await;
        if refused {
            let reason = format!("{by} answered no");
            self.state.end_step(
                &self.workflow,
                &name,
                StepStatus::Failed,
                Some(reason.clone()),
                Timestamp::now(),
            );
            self.step_ended(&name, StepStatus::Failed, Some(reason))
                .await;
        } else {
            self.state.end_step(
                &self.workflow,
                &name,
                StepStatus::Succeeded,
                None,
                Timestamp::now(),
            );
            self.step_ended(&name, StepStatus::Succeeded, None).await;
        }
        self.save().await;
        Ok(format!("step `{name}` of workflow {}: {shown}", self.id()))
    }

    /// When the driver must next look at its timers: a retry falling due,
    /// a step's timeout, an inquiry's deadline, the workflow's deadline.
    fn next_timer(&self) -> tokio::time::Instant {
        let now = Timestamp::now();
        let mut next = self.state.deadline;
        for s in self.state.steps.values() {
            if s.status == StepStatus::Waiting
                && let Some(d) = s.deadline
            {
                next = next.min(d);
            }
            for u in &s.units {
                if matches!(u.status, StepStatus::Pending | StepStatus::Running)
                    && !u.stopped_for_timeout
                    && let Some(d) = u.due_at
                {
                    next = next.min(d);
                }
            }
        }
        let wait = if next <= now {
            Duration::ZERO
        } else {
            now.until(next).min(IDLE)
        };
        tokio::time::Instant::now() + wait
    }

    async fn timers(&mut self) {
        let now = Timestamp::now();
        if self.stopping.is_none() && self.state.deadline <= now {
            self.stop(
                ExecutionStatus::TimedOut,
                "the workflow ran past its timeout".to_owned(),
            )
            .await;
            return;
        }
        let names: Vec<String> = self.state.steps.keys().cloned().collect();
        for name in names {
            let Some(s) = self.state.step(&name).cloned() else {
                continue;
            };
            if s.status == StepStatus::Waiting && s.deadline.is_some_and(|d| d <= now) {
                self.state.end_step(
                    &self.workflow,
                    &name,
                    StepStatus::TimedOut,
                    Some("nobody answered in time".to_owned()),
                    now,
                );
                self.step_ended(
                    &name,
                    StepStatus::TimedOut,
                    Some("nobody answered in time".to_owned()),
                )
                .await;
                self.save().await;
            }
            for (i, u) in s.units.iter().enumerate() {
                if u.status == StepStatus::Running
                    && !u.stopped_for_timeout
                    && u.due_at.is_some_and(|d| d <= now)
                {
                    if let Some(unit) = self.state.step_mut(&name).map(|s| &mut s.units[i]) {
                        unit.stopped_for_timeout = true;
                    }
                    self.save().await;
                    if let Some(child) = u.execution() {
                        self.log
                            .line(format!(
                                "⏱ {name}: stopping execution {child}, past the step's timeout"
                            ))
                            .await;
                        self.stop_child(child);
                    }
                }
            }
        }
    }

    fn stop_child(&self, child: ExecutionId) {
        let engine = self.engine.clone();
        let origin = self.execution.origin.clone();
        tokio::spawn(async move {
            if let Err(e) = engine
                .cancel_unchecked(child, &Principal::system(), &origin)
                .await
            {
                tracing::debug!(%child, error = %e, "stopping a workflow step");
            }
        });
    }

    /// Stops the whole run: running attempts are cancelled (their ends are
    /// still awaited), steps not started end `cancelled`.
    async fn stop(&mut self, status: ExecutionStatus, why: String) {
        if self.stopping.is_some() {
            return;
        }
        self.log.line(format!("■ {why}")).await;
        self.stopping = Some((status, why.clone()));
        let now = Timestamp::now();
        let names: Vec<String> = self.state.steps.keys().cloned().collect();
        for name in names {
            let Some(s) = self.state.step(&name).cloned() else {
                continue;
            };
            match s.status {
                StepStatus::Pending | StepStatus::Waiting => {
                    self.state.end_step(
                        &self.workflow,
                        &name,
                        StepStatus::Cancelled,
                        Some(why.clone()),
                        now,
                    );
                }
                StepStatus::Running => {
                    for (i, u) in s.units.iter().enumerate() {
                        match u.status {
                            StepStatus::Running => {
                                if let Some(child) = u.execution() {
                                    self.stop_child(child);
                                }
                            }
                            StepStatus::Pending => {
                                if let Some(unit) =
                                    self.state.step_mut(&name).map(|s| &mut s.units[i])
                                {
                                    unit.status = StepStatus::Cancelled;
                                    unit.error = Some(why.clone());
                                }
                            }
                            _ => {}
                        }
                    }
                    let all_ended = self
                        .state
                        .step(&name)
                        .is_some_and(|s| s.units.iter().all(|u| u.status.is_terminal()));
                    if all_ended {
                        self.state.end_step(
                            &self.workflow,
                            &name,
                            StepStatus::Cancelled,
                            Some(why.clone()),
                            now,
                        );
                    }
                }
                _ => {}
            }
        }
        self.save().await;
    }

    /// The run's outcome, once every step has ended.
    async fn finished(&mut self) -> Option<RunOutcome> {
        let (mut status, mut error) = self.state.outcome(&self.workflow)?;
        if let Some((stop_status, why)) = &self.stopping {
            status = *stop_status;
            error = Some(why.clone());
        }
        let ctx = self.context(None);
        let mut output = serde_json::Map::new();
        for (name, template) in &self.workflow.output {
            match expr::render_text(template, &ctx) {
                Ok(v) => {
                    output.insert(name.clone(), v);
                }
                Err(e) if status == ExecutionStatus::Succeeded => {
                    status = ExecutionStatus::Failed;
                    error = Some(format!("output `{name}`: {e}"));
                }
                Err(_) => {}
            }
        }
        let summary: Vec<String> = self
            .workflow
            .steps
            .iter()
            .filter_map(|s| {
                let state = self.state.step(&s.name)?;
                Some(format!("{} {}", s.name, state.status.as_str()))
            })
            .collect();
        self.log
            .line(format!(
                "workflow {}: {}",
                status.as_str().replace('_', " "),
                summary.join(", ")
            ))
            .await;
        let result = (!output.is_empty()).then_some(serde_json::Value::Object(output));
        Some(RunOutcome {
            status,
            exit_code: None,
            result,
            error,
            output_bytes: 0,
            output_truncated: false,
            artifacts: Vec::new(),
        })
    }

    /// The context templates are rendered with; the input with its secrets
    /// (in memory only).
    fn context(&self, item: Option<(usize, &serde_json::Value)>) -> serde_json::Value {
        let mut ctx = self.state.context(&self.workflow, self.id());
        ctx["input"] = serde_json::Value::Object(self.input.clone());
        if let Some((index, item)) = item {
            ctx["item"] = item.clone();
            ctx["index"] = index.into();
        }
        ctx
    }
}

/// The sign a step's line starts with in the workflow's output.
pub(crate) fn mark(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Succeeded => "✔",
        StepStatus::Failed | StepStatus::TimedOut => "✖",
        StepStatus::Cancelled => "■",
        StepStatus::Skipped => "↷",
        StepStatus::Unreached => "·",
        StepStatus::Pending | StepStatus::Running | StepStatus::Waiting => "▶",
    }
}

/// Waits for a child execution's end and reports it to the driver.
fn watch_child(
    engine: &Engine,
    tx: &mpsc::Sender<ChildEnded>,
    step: String,
    unit: usize,
    child: ExecutionId,
) {
    let engine = engine.clone();
    let tx = tx.clone();
    tokio::spawn(async move {
        let mut events = engine.watch_from(child, i64::MAX);
        while let Some(ev) = tokio_stream::StreamExt::next(&mut events).await {
            if let crate::WatchEvent::Finished(execution) = ev {
                let _ = tx
                    .send(ChildEnded {
                        step,
                        unit,
                        execution: *execution,
                    })
                    .await;
                return;
            }
        }
    });
}

/// A reply to a control message.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, EngineError>>;
