//! Many nodes on one database: the heartbeat that renews the leases of the
//! executions this node runs and its own (which lists the nodes alive),
//! the leader lease that one node at a time holds for singleton duties
//! (schedules, alert dispatch and delivery, long-lived chat connections,
//! taking over the work of nodes that stopped), that take-over itself,
//! and [`Engine::lead`], which runs a duty only while this node leads.
//!
//! The database decides everything (`Store::acquire_lease`,
//! `take_over_expired` are compare-and-set statements); Switchboard adds no
//! consensus of its own. A leader that cannot renew its lease stops acting
//! as leader on its own a quarter of a lease before the lease runs out
//! (fencing by time: the gap covers the stopping of its duties, so a
//! successor never overlaps them), and the lease's token grows at each
//! change of holder.
//!
//! Not here: which duties are singletons (each asks [`Engine::is_leader`]),
//! and how an execution taken over runs again (the dispatcher, and the
//! workflow driver's resumption).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use switchboard_core::{Execution, ExecutionStatus, Timestamp};
use switchboard_store::TakeOver;
use tokio::sync::watch;

use crate::{Engine, Shared};

/// The name of the leader's lease.
pub const LEADER: &str = "leader";
/// Each node holds a lease of its own, `node:<name>`, renewed at each
/// beat and never given up: the nodes alive, and when each was last seen.
pub const NODE_LEASE_PREFIX: &str = "node:";
/// Expired executions taken over in one round at most.
const TAKE_OVER_BATCH: u32 = 100;

/// How long leases last.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// A lease lasts this long and is renewed every third of it: a node that
    /// stopped is noticed, and its work taken over, within about this time.
    pub lease: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
        }
    }
}

/// This node's term as leader: the lease's token and when it runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub token: i64,
    pub until: Timestamp,
}

/// Who leads, as this node last knew.
pub(crate) type Leadership = watch::Sender<Option<Term>>;

impl Term {
    /// When this node stops acting as leader unless it renews first: a
    /// quarter of a lease before the lease runs out. A healthy leader renews
    /// every third of a lease, so only one that failed to renew for about
    /// half a lease gets there.
    fn fenced_at(&self, lease: Duration) -> Timestamp {
        self.until.before(lease / 4)
    }
}

impl Engine {
    /// Whether this node leads now: it holds the leader lease, and is not
    /// within a quarter of a lease of its end without having renewed it.
    pub fn is_leader(&self) -> bool {
        let lease = self.shared.config.cluster.lease;
        self.shared
            .leader
            .borrow()
            .is_some_and(|t| t.fenced_at(lease) > Timestamp::now())
    }

    /// This node's term as leader, if it leads.
    pub fn leader_term(&self) -> Option<Term> {
        *self.shared.leader.borrow()
    }

    /// Waits until this node leads; `false` when the engine stopped first.
    pub async fn until_leading(&self) -> bool {
        let mut leader = self.shared.leader.subscribe();
        loop {
            if !self.shared.accepting.load(Ordering::Acquire) {
                return false;
            }
            if self.is_leader() {
                return true;
            }
            // The heartbeat sends at every beat; the timeout notices a stop.
            let _ = tokio::time::timeout(Duration::from_secs(1), leader.changed()).await;
        }
    }

    /// Returns when this node no longer leads: another took the lease, or
    /// it could not renew it in time — at that instant, not at the next
    /// beat, so a deposed leader stops before a successor can start
    /// (fencing by time).
    pub async fn leadership_lost(&self) {
        let lease = self.shared.config.cluster.lease;
        let mut leader = self.shared.leader.subscribe();
        loop {
            let until = match *leader.borrow_and_update() {
                Some(term) if term.fenced_at(lease) > Timestamp::now() => term.fenced_at(lease),
                _ => return,
            };
            tokio::select! {
                changed = leader.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(Timestamp::now().until(until)) => {}
            }
        }
    }

    /// Runs a singleton duty while this node leads: `duty` is started with
    /// a stop signal when this node becomes leader, told to stop (and given
    /// [`DUTY_GRACE`] to do so) when it no longer leads, and started again
    /// when it leads again. Returns when `stop` says so (the duty is told
    /// too), when the engine stops, or when the duty ends on its own.
    pub async fn lead<F, D>(&self, name: &str, mut stop: watch::Receiver<bool>, mut duty: F)
    where
        F: FnMut(watch::Receiver<bool>) -> D,
        D: std::future::Future<Output = ()>,
    {
        loop {
            tokio::select! {
                leads = self.until_leading() => if !leads { return },
                _ = stop.wait_for(|s| *s) => return,
            }
            tracing::info!(duty = name, "this node leads: starting");
            let (tell, told) = watch::channel(false);
            let running = duty(told);
            tokio::pin!(running);
            let stopping = tokio::select! {
                () = &mut running => return,
                () = self.leadership_lost() => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            tracing::info!(duty = name, "this node no longer leads: stopping");
            let _ = tell.send(true);
            if tokio::time::timeout(DUTY_GRACE, &mut running)
                .await
                .is_err()
            {
                tracing::warn!(duty = name, "did not stop in time; dropped");
            }
            if stopping {
                return;
            }
        }
    }
}

/// How long a singleton duty told to stop may take.
pub const DUTY_GRACE: Duration = Duration::from_secs(5);

/// One round: renew this node's execution leases, take or keep the leader
/// lease, and, as leader, take over what stopped nodes left.
pub(crate) async fn beat(shared: &Arc<Shared>) {
    let engine = Engine {
        shared: shared.clone(),
    };
    let node = shared.config.node.clone();
    let now = Timestamp::now();
    let until = now.after(shared.config.cluster.lease);
    if let Err(e) = shared.store.renew_execution_leases(&node, until).await {
        tracing::error!(error = %e, "renewing this node's execution leases failed");
    }
    let own = format!("{NODE_LEASE_PREFIX}{node}");
    if let Err(e) = shared.store.acquire_lease(&own, &node, now, until).await {
        tracing::error!(error = %e, "renewing this node's own lease failed");
    }
    let was = *shared.leader.borrow();
    let term = match shared.store.acquire_lease(LEADER, &node, now, until).await {
        Ok(lease) if lease.holder == node => Some(Term {
            token: lease.token,
            until: lease.expires_at,
        }),
        Ok(_) => None,
        Err(e) => {
            tracing::error!(error = %e, "renewing the leader lease failed");
            // Leads only until it is fenced.
            was.filter(|t| t.fenced_at(shared.config.cluster.lease) > Timestamp::now())
        }
    };
    match (was.map(|t| t.token), term.map(|t| t.token)) {
        (old, Some(token)) if old != Some(token) => {
            tracing::info!(%node, token, "this node leads");
            engine
                .audit_system(
                    "cluster.leader",
                    &format!("node:{node}"),
                    "elected",
                    serde_json::json!({"token": token}),
                )
                .await;
        }
        (Some(token), None) => {
            tracing::warn!(%node, token, "this node no longer leads");
        }
        _ => {}
    }
    shared.leader.send_replace(term);
    if term.is_some() {
        engine.take_over_expired().await;
        // Duties that wait for leadership look again.
        shared.schedules_wake.notify_one();
    }
}

/// The heartbeat, every third of a lease, until the engine stops.
pub(crate) async fn run(shared: Arc<Shared>) {
    let every = (shared.config.cluster.lease / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        if !shared.accepting.load(Ordering::Acquire) {
            // Give leadership up at once, so another node need not wait
            // for the lease to run out.
            if shared.leader.borrow().is_some() {
                let _ = shared
                    .store
                    .release_lease(LEADER, &shared.config.node)
                    .await;
                shared.leader.send_replace(None);
            }
            return;
        }
        beat(&shared).await;
    }
}

impl Engine {
    /// Takes over the executions whose node stopped renewing their lease:
    /// a workflow goes on here (its state is stored), an idempotent action
    /// is queued again, anything else ends `lost`.
    async fn take_over_expired(&self) {
        let now = Timestamp::now();
        let expired = match self
            .shared
            .store
            .expired_executions(now, TAKE_OVER_BATCH)
            .await
        {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "listing expired executions failed");
                return;
            }
        };
        let catalog = self.catalog();
        for e in expired {
            let dead = e.node.clone().unwrap_or_default();
            let action = catalog.action(e.action.as_str());
            let outcome = match action {
                Some(a) if a.workflow.is_some() => TakeOver::Adopt {
                    node: self.shared.config.node.clone(),
                    until: now.after(self.shared.config.cluster.lease),
                },
                Some(a) if a.idempotent => TakeOver::Requeue,
                _ => TakeOver::Lost {
                    reason: format!("its node {dead} stopped while it was running"),
                },
            };
            match self
                .shared
                .store
                .take_over_expired(e.id, now, &outcome)
                .await
            {
                Ok(true) => self.taken_over(e, &dead, &outcome).await,
                Ok(false) => {}
                Err(err) => {
                    tracing::error!(id = %e.id, error = %err, "taking over an execution failed")
                }
            }
        }
    }

    async fn taken_over(&self, e: Execution, dead: &str, outcome: &TakeOver) {
        let id = e.id;
        let (kind, result) = match outcome {
            TakeOver::Lost { reason } => {
                self.shared.hub.finish(id, ExecutionStatus::Lost);
                tracing::warn!(%id, node = %dead, "execution lost with its node");
                (
                    "execution.lost",
                    serde_json::json!({"action": e.action, "node": dead, "reason": reason}),
                )
            }
            TakeOver::Requeue => {
                tracing::info!(%id, node = %dead, "idempotent execution queued again");
                self.shared.wake.notify_one();
                (
                    "execution.requeued",
                    serde_json::json!({"action": e.action, "node": dead}),
                )
            }
            TakeOver::Adopt { .. } => {
                tracing::info!(%id, node = %dead, "workflow taken over from a stopped node");
                if let Err(err) = self.resume_workflow(e.clone(), "its node stopped").await {
                    tracing::error!(%id, error = %err, "going on with a workflow taken over failed");
                }
                (
                    "workflow.adopted",
                    serde_json::json!({"action": e.action, "node": dead, "by": self.node()}),
                )
            }
        };
        let outcome = kind.rsplit('.').next().unwrap_or(kind);
        self.audit_system(kind, &format!("execution:{id}"), outcome, result)
            .await;
    }
}
