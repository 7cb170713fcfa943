//! The dispatcher: claims queued executions from the store as slots free up
//! (global and per-action limits), runs each in its own task, records its
//! output in batches and its end, and tells watchers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use switchboard_core::audit::AuditEvent;
use switchboard_core::{ActionName, Execution, ExecutionId, OutputChunk, Timestamp};
use switchboard_store::Finish;
use tokio::sync::{mpsc, watch};

use crate::metrics::StatusLabel;
use crate::runner::{self, RunEvent, RunOutcome};
use crate::{Pending, Running, Shared};

/// How long the dispatcher sleeps when nothing wakes it, to pick up work
/// queued by other means (another process on the same store).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Output chunks written in one batch at most.
const FLUSH_BATCH: usize = 512;

pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        if !shared.accepting.load(Ordering::Acquire) {
            return;
        }
        match claim(&shared).await {
            Ok(0) => {}
            Ok(_) => continue,
            Err(e) => tracing::error!(error = %e, "claiming queued executions failed; retrying"),
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
}

/// Claims what the free slots allow and starts it; returns how many started.
async fn claim(shared: &Arc<Shared>) -> Result<usize, switchboard_store::StoreError> {
    let catalog = shared.catalog();
    let _gate = shared.claim_gate.write().await;
    let (free, mut per_action) = {
        let state = shared.state();
        let mut per_action: HashMap<ActionName, usize> = HashMap::new();
        for r in state.running.values() {
            *per_action.entry(r.action.clone()).or_default() += 1;
        }
        (
            shared
                .config
                .max_concurrency
                .saturating_sub(state.running.values().filter(|r| !r.workflow).count()),
            per_action,
        )
    };
    if free == 0 {
        return Ok(0);
    }
    let limit_of = |name: &ActionName| catalog.action(name.as_str()).and_then(|a| a.concurrency);
    let full: Vec<ActionName> = per_action
        .iter()
        .filter(|(name, n)| limit_of(name).is_some_and(|limit| **n >= limit))
        .map(|(name, _)| name.clone())
        .collect();
    let claimed = shared
        .store
        .claim_queued(
            &shared.config.node,
            u32::try_from(free).unwrap_or(u32::MAX),
            &full,
            Timestamp::now(),
        )
        .await?;
    if !claimed.is_empty() {
        // Leased from the start: should this node stop before its next
        // heartbeat, the leader still finds these.
        let until = Timestamp::now().after(shared.config.cluster.lease);
        shared
            .store
            .renew_execution_leases(&shared.config.node, until)
            .await?;
    }
    let mut release = Vec::new();
    let mut started = 0;
    for execution in claimed {
        let count = per_action.entry(execution.action.clone()).or_default();
        let pending = shared.state().pending.remove(&execution.id);
        let Some(pending) = pending.or_else(|| adoptable(shared, &catalog, &execution)) else {
            // Queued by another node that will run it itself.
            release.push(execution.id);
            continue;
        };
        if pending
            .action
            .concurrency
            .is_some_and(|limit| *count >= limit)
        {
            shared.state().pending.insert(execution.id, pending);
            release.push(execution.id);
            continue;
        }
        if pending.action.workflow.is_none() {
            *count += 1;
        }
        start(shared, execution, pending);
        started += 1;
    }
    shared.store.release_claims(&release).await?;
    Ok(started)
}

/// An execution another node queued, made ready to run here — when it has
/// waited long enough that its node is not about to (that node stopped,
/// or is busy): its request is audited by then, and its parameters are
/// read back from the store. Never one with secrets, which are not stored.
fn adoptable(
    shared: &Arc<Shared>,
    catalog: &switchboard_core::Catalog,
    execution: &Execution,
) -> Option<Pending> {
    let waited = execution.created_at.until(Timestamp::now());
    if waited < switchboard_store::ADOPT_AFTER {
        return None;
    }
    let action = catalog.action(execution.action.as_str())?;
    if action.params.iter().any(|p| p.is_secret()) {
        return None;
    }
    let inventory = shared.inventory_sources.merged(&catalog.inventory);
    let (params, hosts) = crate::resume_params(action, &execution.params, &inventory).ok()?;
    shared.hub.open(execution.id);
    Some(Pending {
        action: action.clone(),
        params,
        hosts,
        audited: None,
        requester: None,
    })
}

/// Runs a claimed execution in its own task, cancellable.
fn start(shared: &Arc<Shared>, execution: Execution, pending: Pending) {
    let (cancel_tx, cancel_rx) = watch::channel(false);
    shared.state().running.insert(
        execution.id,
        Running {
            action: execution.action.clone(),
            cancel: cancel_tx,
            workflow: pending.action.workflow.is_some(),
        },
    );
    shared.metrics.running.inc();
    tokio::spawn(run_one(shared.clone(), execution, pending, cancel_rx));
}

/// Goes on with a workflow this node was running before a restart.
pub(crate) fn resume(shared: Arc<Shared>, execution: Execution, pending: Pending) {
    shared.hub.open(execution.id);
    start(&shared, execution, pending);
}

async fn run_one(
    shared: Arc<Shared>,
    execution: Execution,
    pending: Pending,
    cancel: watch::Receiver<bool>,
) {
    let id = execution.id;
    let (tx, rx) = mpsc::channel(1024);
    let recorder = tokio::spawn(record(shared.clone(), execution.clone(), rx));
    let audited = match pending.audited.clone() {
        Some(stored) => crate::audit::wait_stored(stored).await,
        None => Ok(()),
    };
    let outcome = match audited {
        Ok(()) if pending.action.workflow.is_some() => {
            crate::workflow::driver::drive(shared.clone(), execution.clone(), pending, tx, cancel)
                .await
        }
        Ok(()) => {
            let catalog = shared.catalog();
            let inventory = shared.inventory_sources.merged(&catalog.inventory);
            let job = runner::Job {
                catalog: &catalog,
                inventory: &inventory,
                action: &pending.action,
                params: &pending.params,
                hosts: &pending.hosts,
                execution_id: Some(id),
                limits: &shared.config.limits,
                settings: &shared.config.runners,
                temp_dir: &shared.run_dir,
            };
            runner::run(job, tx, cancel).await
        }
        Err(e) => {
            drop(tx);
            tracing::error!(%id, error = %e, "not running an execution whose request could not be audited");
            RunOutcome {
                status: switchboard_core::ExecutionStatus::Cancelled,
                ..RunOutcome::failed("not run: the audit log cannot be written")
            }
        }
    };
    let started_at = recorder.await.unwrap_or_else(|e| {
        tracing::error!(%id, error = %e, "output recorder failed");
        None
    });
    finish(&shared, &execution, started_at, outcome).await;
}

async fn finish(
    shared: &Arc<Shared>,
    execution: &Execution,
    started_at: Option<Timestamp>,
    outcome: RunOutcome,
) {
    let id = execution.id;
    let finished_at = Timestamp::now();
    let finish = Finish {
        status: outcome.status,
        started_at,
        exit_code: outcome.exit_code,
        result: outcome.result,
        error: outcome.error,
        output_bytes: outcome.output_bytes,
        output_truncated: outcome.output_truncated,
        finished_at,
        artifacts: outcome.artifacts,
    };
    // The store must have the end before watchers are told; retry briefly
    // rather than leave a finished run looking `running`.
    let mut attempt = 0;
    while let Err(e) = shared.store.finish_execution(id, &finish).await {
        attempt += 1;
        tracing::error!(%id, error = %e, attempt, "recording the end of an execution failed");
        if attempt >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
    }
    shared.state().running.remove(&id);
    shared.hub.finish(id, finish.status);
    shared.metrics.running.dec();
    shared
        .metrics
        .finished
        .get_or_create(&StatusLabel {
            status: finish.status.as_str().to_owned(),
        })
        .inc();
    if let Some(started) = execution.started_at {
        shared
            .metrics
            .duration
            .observe(started.until(finished_at).as_secs_f64());
    }
    tracing::info!(%id, action = %execution.action, status = %finish.status, exit_code = ?finish.exit_code, "execution finished");
    shared.idle.notify_waiters();
    shared.wake.notify_one();
    let event = AuditEvent {
        ts: finished_at,
        actor: execution.requester.clone(),
        origin: execution.origin.clone(),
        kind: "execution.finished".to_owned(),
        subject: format!("execution:{id}"),
        outcome: finish.status.as_str().to_owned(),
        detail: serde_json::json!({
            "action": execution.action,
            "node": shared.config.node,
            "exit_code": finish.exit_code,
            "error": finish.error,
        }),
    };
    if let Err(e) = shared.audit.record(event).await {
        tracing::error!(%id, error = %e, "the end of an execution was not audited");
    }
    crate::alerts::raised::from_result(shared, execution, finish.result.as_ref()).await;
}

/// Publishes output live at once and writes it to the store in batches;
/// returns when the process started.
async fn record(
    shared: Arc<Shared>,
    execution: Execution,
    mut events: mpsc::Receiver<RunEvent>,
) -> Option<Timestamp> {
    let id = execution.id;
    let mut last_seq = 0;
    let mut flushed_seq = 0;
    let mut dirty = false;
    let mut started_at = None;
    let mut tick = tokio::time::interval(shared.config.output_flush);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(RunEvent::Started(at)) => {
                    shared.metrics.start_latency.observe(execution.created_at.until(at).as_secs_f64());
                    started_at = Some(at);
                }
                Some(RunEvent::Output(chunk)) => {
                    last_seq = chunk.seq;
                    shared.hub.publish(id, chunk);
                    dirty = true;
                    if last_seq - flushed_seq >= FLUSH_BATCH as i64 {
                        flushed_seq = flush(&shared, id, flushed_seq).await;
                    }
                }
                None => break,
            },
            _ = tick.tick(), if dirty => {
                flushed_seq = flush(&shared, id, flushed_seq).await;
                dirty = flushed_seq < last_seq;
            }
        }
    }
    flush(&shared, id, flushed_seq).await;
    started_at
}

/// Writes the unflushed output; returns the last stored seq.
async fn flush(shared: &Shared, id: ExecutionId, flushed: i64) -> i64 {
    let chunks: Vec<OutputChunk> = shared
        .hub
        .unflushed(id)
        .into_iter()
        .filter(|c| c.seq > flushed)
        .collect();
    let Some(last) = chunks.last().map(|c| c.seq) else {
        return flushed;
    };
    match shared.store.append_output(id, &chunks).await {
        Ok(()) => {
            shared.hub.flushed(id, last);
            last
        }
        Err(e) => {
            tracing::error!(%id, error = %e, "storing output failed; will retry");
            flushed
        }
    }
}
