//! Schedules at work: one timer task that sleeps until the next tick of
//! the catalog's enabled schedules, claims that tick in the store (so a
//! tick runs once, even with several processes on one store) and submits
//! the schedule's action as its `run_as` principal from the
//! `schedule:<name>` door — so policies decide, approvals apply and the
//! audit log records it like any other request. Each fired tick is
//! audited (`schedule.fired`, with its outcome) and kept with its
//! execution, which [`Engine::schedules`] lists with the next run.
//!
//! At start, ticks that passed while no process ran (counted from the
//! newest tick the store has) are run once or skipped, as each schedule
//! says; a reload of the catalog wakes the timer, which then follows the
//! new schedules (a changed pattern starts from now, so a reload never
//! runs a tick of the past).
//!
//! Not here: reading `schedules.toml` and computing ticks in a time zone
//! (core's `schedules`). With several nodes, only the leader should run
//! this timer; until leases exist, the store's claim keeps a tick from
//! running twice.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use switchboard_core::audit::AuditEvent;
use switchboard_core::schedules::{Missed, Schedule};
use switchboard_core::{Execution, ExecutionId, ExecutionStatus, Origin, Principal, Timestamp};

use crate::{Engine, EngineError, SubmitRequest, metrics};

/// The longest the timer sleeps before it looks at the clock again (the
/// wall clock may have been set meanwhile).
const LONGEST_SLEEP: Duration = Duration::from_secs(60);
/// Missed ticks are counted up to this many.
const MISSED_COUNT_CAP: usize = 10_000;

/// A schedule as `switchboard schedules` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScheduleView {
    pub name: String,
    pub description: String,
    pub action: String,
    pub cron: String,
    pub timezone: String,
    pub run_as: String,
    /// `run_once` or `skip`.
    pub missed: &'static str,
    pub enabled: bool,
    /// The next tick (none when disabled or never again).
    pub next_run: Option<Timestamp>,
    /// The same on the schedule's wall clock.
    pub next_run_local: Option<String>,
    pub last_run: Option<LastRun>,
}

/// The newest tick a schedule fired (or let go), and how it went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastRun {
    pub tick: Timestamp,
    pub tick_local: String,
    /// `submitted`, `skipped`, `refused`, `failed`, or `claimed` while
    /// being submitted.
    pub outcome: String,
    pub node: String,
    pub execution_id: Option<ExecutionId>,
    /// The status of that execution now.
    pub status: Option<ExecutionStatus>,
    pub reason: Option<String>,
}

/// Where the timer stands with one schedule.
struct Cursor {
    /// The pattern and zone it was computed for.
    pattern: (String, String),
    /// Ticks up to this time are done.
    after: Timestamp,
}

fn pattern_of(s: &Schedule) -> (String, String) {
    (s.cron.clone(), s.timezone.clone())
}

impl Engine {
    /// The catalog's schedules, each with its next run and its last run
    /// and that run's execution.
    pub async fn schedules(&self) -> Result<Vec<ScheduleView>, EngineError> {
        let catalog = self.catalog();
        let last = self.shared.store.last_schedule_ticks().await?;
        let now = Timestamp::now();
        let mut out = Vec::new();
        for s in catalog.schedules.iter() {
            let next_run = if s.enabled { s.next_after(now) } else { None };
            let last_run = match last.iter().find(|t| t.schedule == s.name) {
                None => None,
                Some(t) => {
                    let status = match t.execution {
                        Some(id) => self.shared.store.get_execution(id).await?.map(|e| e.status),
                        None => None,
                    };
                    Some(LastRun {
                        tick: t.tick,
                        tick_local: s.local_time(t.tick),
                        outcome: t.outcome.clone(),
                        node: t.node.clone(),
                        execution_id: t.execution,
                        status,
                        reason: t.reason.clone(),
                    })
                }
            };
            out.push(ScheduleView {
                name: s.name.clone(),
                description: s.description.clone(),
                action: s.action.clone(),
                cron: s.cron.clone(),
                timezone: s.timezone.clone(),
                run_as: s.run_as.clone(),
                missed: s.missed.as_str(),
                enabled: s.enabled,
                next_run,
                next_run_local: next_run.map(|t| s.local_time(t)),
                last_run,
            });
        }
        Ok(out)
    }

    /// Submits a schedule's action as its principal from its door.
    async fn submit_scheduled(&self, s: &Schedule) -> Result<Execution, EngineError> {
        let principal = Principal::new(s.run_as.clone())
            .map_err(|e| EngineError::Invalid(format!("run_as: {e}")))?;
        let requester = self.identity_of(&principal, &[]).await?;
        self.submit(SubmitRequest {
            action: s.action.clone(),
            params: s.params.clone(),
            requester,
            origin: origin_of(s),
        })
        .await
    }

    /// Claims a tick and, when this process got it, runs the schedule's
    /// action; `missed` counts the ticks a catch-up stands for.
    async fn fire(&self, s: &Schedule, tick: Timestamp, missed: Option<usize>) {
        let store = &self.shared.store;
        match store
            .claim_schedule_tick(&s.name, tick, self.node(), "claimed", Timestamp::now())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(schedule = %s.name, %tick, "tick already claimed elsewhere");
                return;
            }
            Err(e) => {
                tracing::error!(schedule = %s.name, %tick, error = %e, "cannot claim a schedule's tick; not run");
                return;
            }
        }
        self.door_event("schedule");
        let result = self.submit_scheduled(s).await;
        let (outcome, execution, reason) = match &result {
            Ok(e) => ("submitted", Some(e.id), None),
            Err(
                e @ (EngineError::Forbidden(_)
                | EngineError::InvalidParams(_)
                | EngineError::UnknownAction { .. }
                | EngineError::UnknownPrincipal(_)
                | EngineError::Invalid(_)),
            ) => ("refused", None, Some(e.to_string())),
            Err(e) => ("failed", None, Some(e.to_string())),
        };
        match &reason {
            None => {
                tracing::info!(schedule = %s.name, %tick, execution = ?execution, "schedule fired")
            }
            Some(why) => {
                tracing::warn!(schedule = %s.name, %tick, outcome, reason = %why, "schedule fired but did not run")
            }
        }
        if let Err(e) = store
            .finish_schedule_tick(&s.name, tick, outcome, execution, reason.as_deref())
            .await
        {
            tracing::error!(schedule = %s.name, error = %e, "cannot record how a tick went");
        }
        self.count_fire(outcome);
        let detail = serde_json::json!({
            "schedule": s.name,
            "action": s.action,
            "tick": tick,
            "tick_local": s.local_time(tick),
            "execution": execution,
            "reason": reason,
            "missed": missed,
        });
        self.record(AuditEvent::now(
            &Principal::new(s.run_as.clone()).unwrap_or_else(|_| Principal::system()),
            &origin_of(s),
            "schedule.fired",
            format!("schedule:{}", s.name),
            outcome,
            detail,
        ))
        .await;
    }

    fn count_fire(&self, outcome: &str) {
        let label = metrics::ResultLabel {
            result: outcome.to_owned(),
        };
        self.shared
            .metrics
            .schedule_fires
            .get_or_create(&label)
            .inc();
    }

    /// Ticks that passed while no process ran: the latest is run once or
    /// let go, as each schedule says. Returns where each schedule stands.
    async fn catch_up(&self) -> HashMap<String, Cursor> {
        let catalog = self.catalog();
        let now = Timestamp::now();
        let mut cursors = HashMap::new();
        for s in catalog.schedules.iter().filter(|s| s.enabled) {
            cursors.insert(
                s.name.clone(),
                Cursor {
                    pattern: pattern_of(s),
                    after: now,
                },
            );
        }
        let last = match self.shared.store.last_schedule_ticks().await {
            Ok(last) => last,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the schedules' last ticks; missed ticks are not looked for");
                return cursors;
            }
        };
        for s in catalog.schedules.iter().filter(|s| s.enabled) {
            let Some(previous) = last.iter().find(|t| t.schedule == s.name) else {
                continue;
            };
            let Some(latest) = s.latest_at_or_before(now).filter(|t| *t > previous.tick) else {
                continue;
            };
            let missed = s.ticks_between(previous.tick, now, MISSED_COUNT_CAP);
            tracing::info!(schedule = %s.name, missed, since = %previous.tick, policy = s.missed.as_str(), "ticks were missed while no process ran");
            match s.missed {
                Missed::RunOnce => self.fire(s, latest, Some(missed)).await,
                Missed::Skip => self.skip(s, latest, previous.tick, missed, now).await,
            }
        }
        cursors
    }

    /// Lets missed ticks go: the latest is recorded as `skipped` (so the
    /// next start does not count them again) and audited.
    async fn skip(
        &self,
        s: &Schedule,
        latest: Timestamp,
        since: Timestamp,
        missed: usize,
        now: Timestamp,
    ) {
        let reason =
            format!("{missed} tick(s) missed while no process ran; the schedule skips them");
        match self
            .shared
            .store
            .claim_schedule_tick(&s.name, latest, self.node(), "skipped", now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(schedule = %s.name, error = %e, "cannot record skipped ticks");
                return;
            }
        }
        if let Err(e) = self
            .shared
            .store
            .finish_schedule_tick(&s.name, latest, "skipped", None, Some(&reason))
            .await
        {
            tracing::error!(schedule = %s.name, error = %e, "cannot record skipped ticks");
        }
        self.count_fire("skipped");
        let detail = serde_json::json!({
            "schedule": s.name,
            "action": s.action,
            "missed": missed,
            "since": since,
            "latest": latest,
            "latest_local": s.local_time(latest),
        });
        self.record(AuditEvent::now(
            &Principal::system(),
            &origin_of(s),
            "schedule.missed",
            format!("schedule:{}", s.name),
            "skipped",
            detail,
        ))
        .await;
    }
}

fn origin_of(s: &Schedule) -> Origin {
    Origin::new(format!("schedule:{}", s.name))
        .or_else(|_| Origin::new("schedule"))
        .unwrap_or_else(|_| Origin::system())
}

/// The timer: catches up, then fires each tick as it falls due, until the
/// engine stops accepting work.
/// Waits until this node leads (the heartbeat wakes the timer when it
/// does) or the engine stops.
async fn wait_to_lead(engine: &Engine) {
    while !engine.is_leader() && engine.shared.accepting.load(Ordering::Acquire) {
        let wake = engine.shared.schedules_wake.notified();
        let _ = tokio::time::timeout(LONGEST_SLEEP, wake).await;
    }
}

pub(crate) async fn run(engine: Engine) {
    wait_to_lead(&engine).await;
    let mut cursors = engine.catch_up().await;
    loop {
        if !engine.shared.accepting.load(Ordering::Acquire) {
            return;
        }
        // Only the leader schedules; a node that takes over fires the
        // latest tick it missed (the tick's claim keeps it to one run).
        wait_to_lead(&engine).await;
        // Armed before the catalog is read, so a reload meanwhile wakes us.
        let wake = engine.shared.schedules_wake.notified();
        let catalog = engine.catalog();
        let now = Timestamp::now();
        for s in catalog.schedules.iter().filter(|s| s.enabled) {
            let pattern = pattern_of(s);
            let cursor = cursors.entry(s.name.clone()).or_insert(Cursor {
                pattern: pattern.clone(),
                after: now,
            });
            if cursor.pattern != pattern {
                // A changed schedule starts from now: no tick of the past.
                *cursor = Cursor {
                    pattern,
                    after: now.max(cursor.after),
                };
            }
            if let Some(due) = s.latest_at_or_before(now).filter(|t| *t > cursor.after) {
                cursor.after = due;
                engine.fire(s, due, None).await;
            }
        }
        cursors.retain(|name, _| catalog.schedules.get(name).is_some_and(|s| s.enabled));
        let now = Timestamp::now();
        let soonest = catalog
            .schedules
            .iter()
            .filter(|s| s.enabled)
            .filter_map(|s| {
                let after = cursors.get(&s.name).map_or(now, |c| c.after.max(now));
                s.next_after(after)
            })
            .min();
        let pause = soonest.map_or(LONGEST_SLEEP, |t| now.until(t).min(LONGEST_SLEEP));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = wake => {}
        }
    }
}
