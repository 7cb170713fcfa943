//! The alert dispatcher: holds the aggregation groups
//! ([`switchboard_core::alerts::aggregation`]) built from the alerts kept,
//! wakes when a group is due, flushes it — applying silences, inhibition
//! and the route's time intervals — and records, in one store transaction
//! per tick, each group's new state, what each receiver integration was
//! told (the notification log) and the deliveries owed.
//!
//! The store is the truth: at start-up, after a catalog reload that changes
//! `alerts.toml`, and after a failed write, the groups are rebuilt from the
//! stored alerts, groups and log, so a restart loses neither a group's
//! timers nor a resolved notice owed.
//!
//! With several nodes on one database only the leader flushes, escalates
//! and runs automation; every node groups the alerts it receives and, each
//! tick, those other nodes received (`catch_up`), so `ack` and the views
//! work on any node. A follower writes nothing and rebuilds from the store
//! now and then (the leader's flushes end groups it cannot see end); a
//! node that becomes leader rebuilds first, and so starts from what the
//! previous leader stored.
//!
//! Not here: sending (`delivery`), the wire formats (`webhook`), reading
//! `alerts.toml` (core).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::Timestamp;
use switchboard_core::alerts::aggregation::{
    Aggregator, Alert, Group, GroupId, Integration as Told, LogEntry, Mutes, Notification,
};
use switchboard_core::alerts::inhibit::Inhibitor;
use switchboard_core::alerts::receivers::Integration;
use switchboard_core::alerts::{AlertsConfig, Fingerprint, LabelSet, Silence};
use switchboard_store::{
    FlushRecord, NewDelivery, StoredAck, StoredAlert, StoredGroup, StoredLogEntry,
    group_ack_subject,
};
use tokio::sync::Notify;

use super::escalate::{Chain, Run, escalate};
use super::webhook;
use crate::{EngineError, Shared};

/// The longest the dispatcher sleeps without looking (silences that end,
/// alerts whose end comes, a catalog that changed).
const IDLE_TICK: Duration = Duration::from_secs(1);
/// How far back each look for alerts other nodes received reaches behind
/// the previous look: covers a transaction that committed late and small
/// differences between the nodes' clocks.
const CATCH_UP_OVERLAP: Duration = Duration::from_secs(5);
/// How often a follower rebuilds its groups from the store.
const FOLLOWER_REBUILD: Duration = Duration::from_secs(30);

/// The dispatcher's state, shared by ingest (which adds alerts) and the
/// timer (which flushes).
#[derive(Default)]
pub(crate) struct Dispatcher {
    state: Mutex<State>,
    /// Held shared while alerts are kept and grouped, exclusively while
    /// the groups are rebuilt from the store, so no alert kept meanwhile
    /// is missed by both.
    pub(crate) regroup_gate: tokio::sync::RwLock<()>,
    /// Wakes the timer: a group was created.
    pub(crate) wake: Notify,
    /// Wakes the delivery worker: deliveries were recorded.
    pub(crate) deliveries: Notify,
}

#[derive(Default)]
pub(super) struct State {
    /// The configuration the groups were built with; `None` until loaded
    /// (and after a failed write, so the next tick rebuilds).
    pub(super) config: Option<Arc<AlertsConfig>>,
    pub(super) agg: Aggregator,
    log: HashMap<(GroupId, String), LogEntry>,
    pub(super) silences: Vec<Silence>,
    /// Acknowledgements by subject (`alert:<fp>`, `group:<receiver>:<key>`).
    pub(super) acks: HashMap<String, StoredAck>,
    /// Where each group's escalation chain stands.
    pub(super) escalations: HashMap<GroupId, Chain>,
    /// Learning of the alerts other nodes received; `None` on a database
    /// no other node shares.
    catch_up: Option<CatchUp>,
    /// When the groups were built.
    built_at: Option<Timestamp>,
}

/// Where the look for alerts other nodes received stands.
struct CatchUp {
    /// The next look reads what changed from here on.
    since: Timestamp,
    /// The alerts grouped here lately, with the `updated_at` grouped, so
    /// that a look reaching back over them does not group them again.
    recent: HashMap<Fingerprint, Timestamp>,
}

/// What an `ack` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AckTarget {
    Alert(Fingerprint),
    Group(GroupId),
}

impl AckTarget {
    pub(crate) fn subject(&self) -> String {
        match self {
            Self::Alert(fp) => format!("alert:{fp}"),
            Self::Group(id) => group_ack_subject(&id.receiver, &id.key),
        }
    }
}

impl Dispatcher {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Groups alerts just kept; returns the groups created (to be stored).
    /// `labels`, when given, are the kept alerts' label sets, already
    /// checked (so they are not rebuilt from the stored maps).
    pub(crate) fn insert(
        &self,
        kept: &[StoredAlert],
        labels: Option<Vec<LabelSet>>,
        now: Timestamp,
    ) -> Vec<StoredGroup> {
        let mut state = self.state();
        let Some(config) = state.config.clone() else {
            // Not loaded: the rebuild reads them from the store.
            return Vec::new();
        };
        let mut labels = labels.map(Vec::into_iter);
        let mut created = Vec::new();
        for stored in kept {
            let alert = match labels.as_mut().and_then(Iterator::next) {
                Some(labels) => Some(with_labels(stored, labels)),
                None => to_alert(stored),
            };
            let Some(alert) = alert else {
                continue;
            };
            if let Some(c) = state.catch_up.as_mut() {
                c.recent.insert(alert.fingerprint, alert.updated_at);
            }
            for id in state.agg.insert(&config.route, Arc::new(alert), now) {
                if let Some(g) = state.agg.group(&id) {
                    created.push(stored_group(g));
                }
            }
        }
        created
    }

    /// Whether the groups were built with `config`.
    fn built_with(&self, config: Option<&Arc<AlertsConfig>>) -> bool {
        let state = self.state();
        match (&state.config, config) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The groups an alert is in.
    pub(crate) fn groups_of(&self, fingerprint: Fingerprint) -> Vec<GroupView> {
        let state = self.state();
        state
            .agg
            .groups()
            .filter(|g| g.alerts.contains_key(&fingerprint))
            .map(|g| GroupView::of(g, &state))
            .collect()
    }

    /// Every group.
    pub(crate) fn groups(&self) -> Vec<GroupView> {
        let state = self.state();
        state
            .agg
            .groups()
            .map(|g| GroupView::of(g, &state))
            .collect()
    }

    /// The acknowledgement of an alert, if any.
    pub(crate) fn alert_ack(&self, fingerprint: Fingerprint) -> Option<StoredAck> {
        let subject = AckTarget::Alert(fingerprint).subject();
        self.state().acks.get(&subject).cloned()
    }

    /// What `word` names: an alert held in a group, by its fingerprint or
    /// a unique prefix of it (at least 4 hex digits), or a group by its
    /// short id or a unique prefix of it.
    pub(crate) fn find_target(&self, word: &str) -> Result<AckTarget, String> {
        let word = word.trim().to_ascii_lowercase();
        if word.len() < 4 || !word.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{word}` is not an alert fingerprint or a group id (4 to 16 hex digits)"
            ));
        }
        let state = self.state();
        let mut found: Vec<AckTarget> = Vec::new();
        for g in state.agg.groups() {
            if g.id.short().starts_with(&word) {
                found.push(AckTarget::Group(g.id.clone()));
            }
            for fp in g.alerts.keys() {
                let target = AckTarget::Alert(*fp);
                if fp.to_string().starts_with(&word) && !found.contains(&target) {
                    found.push(target);
                }
            }
        }
        match found.len() {
            0 => Err(format!("no firing alert or group `{word}` (see `alerts`)")),
            1 => Ok(found.remove(0)),
            n => Err(format!(
                "`{word}` names {n} alerts or groups; give more digits"
            )),
        }
    }

    /// Who acknowledged a group, when, and (for an alert's
    /// acknowledgement) which alert: the group's own first, else one of
    /// its alerts'.
    pub(crate) fn ack_of_group(&self, id: &GroupId) -> Option<(String, Timestamp, Option<String>)> {
        let state = self.state();
        if let Some(a) = state.acks.get(&AckTarget::Group(id.clone()).subject()) {
            return Some((a.acked_by.clone(), a.acked_at, None));
        }
        let group = state.agg.group(id)?;
        group.alerts.keys().find_map(|fp| {
            let a = state.acks.get(&AckTarget::Alert(*fp).subject())?;
            Some((a.acked_by.clone(), a.acked_at, Some(fp.to_string())))
        })
    }

    /// The alerts of what an `ack` or `automate` names that fire at `now`.
    pub(crate) fn firing_of(&self, target: &AckTarget, now: Timestamp) -> Vec<Arc<Alert>> {
        let state = self.state();
        let mut found: Vec<Arc<Alert>> = match target {
            AckTarget::Group(id) => state
                .agg
                .group(id)
                .map(|g| g.alerts.values().cloned().collect())
                .unwrap_or_default(),
            AckTarget::Alert(fp) => state
                .agg
                .groups()
                .find_map(|g| g.alerts.get(fp).cloned())
                .into_iter()
                .collect(),
        };
        found.retain(|a| !a.is_resolved_at(now));
        found
    }

    /// The groups an alert is in, by identity.
    pub(crate) fn group_ids_of(&self, fingerprint: Fingerprint) -> Vec<GroupId> {
        self.state()
            .agg
            .groups()
            .filter(|g| g.alerts.contains_key(&fingerprint))
            .map(|g| g.id.clone())
            .collect()
    }

    pub(crate) fn set_ack(&self, ack: StoredAck) {
        self.state().acks.insert(ack.subject.clone(), ack);
    }

    pub(crate) fn set_silences(&self, silences: Vec<Silence>) {
        self.state().silences = silences;
    }
}

/// A group as shown to people.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupView {
    /// A short id to type (`ack ID`).
    pub id: String,
    pub group_key: String,
    pub receiver: String,
    pub labels: BTreeMap<String, String>,
    pub route: String,
    pub alerts: usize,
    pub created_at: Timestamp,
    pub next_flush_at: Timestamp,
    /// Who acknowledged it, and when.
    pub acked: Option<(String, Timestamp)>,
    /// Its escalation chain and where it stands (`running`, `stopped`,
    /// `finished`), once started.
    pub escalation: Option<(String, &'static str)>,
}

impl GroupView {
    fn of(g: &Group, state: &State) -> Self {
        let acks = &state.acks;
        Self {
            escalation: state.escalations.get(&g.id).map(|c| {
                let run = match c.run {
                    Run::Running(_) => "running",
                    Run::Stopped => "stopped",
                    Run::Finished => "finished",
                };
                (c.name.clone(), run)
            }),
            id: g.id.short(),
            acked: acks
                .get(&group_ack_subject(&g.id.receiver, &g.id.key))
                .map(|a| (a.acked_by.clone(), a.acked_at)),
            group_key: g.id.key.clone(),
            receiver: g.id.receiver.clone(),
            labels: g.labels.as_map().clone(),
            route: g.route_path.clone(),
            alerts: g.alerts.len(),
            created_at: g.created_at,
            next_flush_at: g.next_flush,
        }
    }
}

fn to_alert(stored: &StoredAlert) -> Option<Alert> {
    let labels = LabelSet::from_pairs(stored.labels.iter()).ok()?;
    Some(with_labels(stored, labels))
}

fn with_labels(stored: &StoredAlert, labels: LabelSet) -> Alert {
    Alert {
        fingerprint: labels.fingerprint(),
        labels,
        annotations: stored.annotations.clone(),
        starts_at: stored.starts_at,
        ends_at: stored.ends_at,
        updated_at: stored.updated_at,
        generator_url: stored.generator_url.clone(),
    }
}

pub(super) fn stored_group(g: &Group) -> StoredGroup {
    StoredGroup {
        group_key: g.id.key.clone(),
        receiver: g.id.receiver.clone(),
        labels: g.labels.as_map().clone(),
        route: g.route_path.clone(),
        created_at: g.created_at,
        next_flush_at: g.next_flush,
        flushed: g.flushed,
    }
}

fn fingerprints(list: &[String]) -> std::collections::BTreeSet<Fingerprint> {
    list.iter().filter_map(|f| f.parse().ok()).collect()
}

fn hex(set: &std::collections::BTreeSet<Fingerprint>) -> Vec<String> {
    set.iter().map(ToString::to_string).collect()
}

/// Rebuilds the groups from the store for `config`; `leads`: this node
/// flushes, and so stores the groups' changes (a follower writes nothing).
async fn load(shared: &Shared, config: Arc<AlertsConfig>, leads: bool) -> Result<(), EngineError> {
    let _gate = shared.alerting.regroup_gate.write().await;
    let store = &shared.store;
    let started = Timestamp::now();
    let stored_groups = store.alert_groups().await?;
    let log = store.notification_log().await?;
    let alerts = store.alerts_to_regroup().await?;
    let silences = super::silences::active(shared).await?;
    let acks = store
        .acks()
        .await?
        .into_iter()
        .map(|a| (a.subject.clone(), a))
        .collect();
    let escalations = store
        .escalations()
        .await?
        .iter()
        .map(|e| {
            let id = GroupId {
                key: e.group_key.clone(),
                receiver: e.receiver.clone(),
            };
            (id, Chain::from_stored(e))
        })
        .collect();
    let now = Timestamp::now();
    let mut agg = Aggregator::new();
    for stored in &alerts {
        if let Some(alert) = to_alert(stored) {
            agg.insert(&config.route, Arc::new(alert), now);
        }
    }
    let mut gone = Vec::new();
    for g in &stored_groups {
        let id = GroupId {
            key: g.group_key.clone(),
            receiver: g.receiver.clone(),
        };
        if agg.group(&id).is_some() {
            agg.restore(&id, g.created_at, g.next_flush_at, g.flushed);
        } else {
            gone.push((g.group_key.clone(), g.receiver.clone()));
        }
    }
    let known: std::collections::HashSet<(&str, &str)> = stored_groups
        .iter()
        .map(|g| (g.group_key.as_str(), g.receiver.as_str()))
        .collect();
    let new: Vec<StoredGroup> = agg
        .groups()
        .filter(|g| !known.contains(&(g.id.key.as_str(), g.id.receiver.as_str())))
        .map(stored_group)
        .collect();
    if leads {
        store.save_alert_groups(&new).await?;
        store.delete_alert_groups(&gone).await?;
    }
    let catch_up = store.shared_by_nodes().then(|| {
        let since = started.before(CATCH_UP_OVERLAP);
        CatchUp {
            since: started,
            recent: alerts
                .iter()
                .filter(|a| a.updated_at >= since)
                .filter_map(|a| Some((a.fingerprint.parse().ok()?, a.updated_at)))
                .collect(),
        }
    });
    let log = log
        .into_iter()
        .map(|e| {
            let id = GroupId {
                key: e.group_key,
                receiver: e.receiver,
            };
            let entry = LogEntry {
                firing: fingerprints(&e.firing),
                resolved: fingerprints(&e.resolved),
                sent_at: e.sent_at,
            };
            ((id, e.integration), entry)
        })
        .collect();
    tracing::info!(
        alerts = alerts.len(),
        groups = agg.len(),
        "alert groups rebuilt from the store"
    );
    let mut state = shared.alerting.state();
    *state = State {
        config: Some(config),
        agg,
        log,
        silences,
        acks,
        escalations,
        catch_up,
        built_at: Some(started),
    };
    Ok(())
}

/// Groups the alerts other nodes received since the last look, and takes
/// the acknowledgements any node recorded; returns the groups created (to
/// be stored by the leader). Nothing to do on a database of one node.
async fn catch_up(shared: &Shared) -> Result<Vec<StoredGroup>, EngineError> {
    let Some(since) = shared.alerting.state().catch_up.as_ref().map(|c| c.since) else {
        return Ok(Vec::new());
    };
    let _gate = shared.alerting.regroup_gate.read().await;
    let now = Timestamp::now();
    let changed = shared
        .store
        .alerts_changed_since(since.before(CATCH_UP_OVERLAP))
        .await?;
    let acks = shared.store.acks().await?;
    let fresh: Vec<StoredAlert> = {
        let mut state = shared.alerting.state();
        let Some(c) = state.catch_up.as_mut() else {
            return Ok(Vec::new());
        };
        let fresh = changed
            .into_iter()
            .filter(|a| {
                a.fingerprint
                    .parse::<Fingerprint>()
                    .is_ok_and(|fp| c.recent.get(&fp) != Some(&a.updated_at))
            })
            .collect();
        c.since = now;
        let keep_from = now.before(CATCH_UP_OVERLAP).before(CATCH_UP_OVERLAP);
        c.recent.retain(|_, at| *at >= keep_from);
        state.acks = acks.into_iter().map(|a| (a.subject.clone(), a)).collect();
        fresh
    };
    Ok(shared.alerting.insert(&fresh, None, now))
}

/// The label sets of the alerts firing at `now` that inhibition rules look
/// at as sources: none when there are no rules (every alert's labels are
/// copied otherwise, which a tick with 100,000 alerts feels).
pub(super) fn inhibiting(agg: &Aggregator, inhibitor: &Inhibitor, now: Timestamp) -> Vec<LabelSet> {
    if inhibitor.rules().is_empty() {
        Vec::new()
    } else {
        agg.firing_labels(now)
    }
}

/// Flushes every group due at `now`; returns what to store.
fn flush_due(state: &mut State, public_url: Option<&str>, now: Timestamp) -> Vec<FlushRecord> {
    let Some(config) = state.config.clone() else {
        return Vec::new();
    };
    let due = state.agg.due(now);
    if due.is_empty() {
        return Vec::new();
    }
    let inhibitor = config.inhibitor();
    let firing = inhibiting(&state.agg, &inhibitor, now);
    let silences = std::mem::take(&mut state.silences);
    let mut records = Vec::with_capacity(due.len());
    for id in due {
        let Some(route_muted) = state
            .agg
            .group(&id)
            .map(|g| config.is_muted_options(&g.options, now))
        else {
            continue;
        };
        let integrations = config
            .receiver(&id.receiver)
            .map(|r| r.integrations.list())
            .unwrap_or_default();
        // What each integration was last told, copied: the log is written
        // below.
        let last: Vec<Option<LogEntry>> = integrations
            .iter()
            .map(|(name, _)| state.log.get(&(id.clone(), name.clone())).cloned())
            .collect();
        let told: Vec<Told<'_>> = integrations
            .iter()
            .zip(&last)
            .map(|((_, integration), last)| Told {
                last: last.as_ref(),
                send_resolved: integration.send_resolved(),
            })
            .collect();
        let mutes = Mutes {
            silences: &silences,
            inhibitor: &inhibitor,
            firing: &firing,
            route_muted,
        };
        let flush = state.agg.flush(&id, now, &mutes, &told);
        let mut record = FlushRecord {
            group: state.agg.group(&id).map(stored_group),
            group_key: id.key.clone(),
            receiver: id.receiver.clone(),
            log: Vec::new(),
            deliveries: Vec::new(),
            cleared_acks: flush
                .removed
                .iter()
                .map(|fp| AckTarget::Alert(*fp).subject())
                .chain(flush.ended.then(|| AckTarget::Group(id.clone()).subject()))
                .collect(),
        };
        for subject in &record.cleared_acks {
            state.acks.remove(subject);
        }
        if flush.ended {
            state.escalations.remove(&id);
        }
        for ((name, integration), decision) in integrations.iter().zip(flush.decisions) {
            if let Some(entry) = decision.log {
                record.log.push(StoredLogEntry {
                    group_key: id.key.clone(),
                    receiver: id.receiver.clone(),
                    integration: name.clone(),
                    firing: hex(&entry.firing),
                    resolved: hex(&entry.resolved),
                    sent_at: entry.sent_at,
                });
                state.log.insert((id.clone(), name.clone()), entry);
            }
            if let Some(n) = decision.notification {
                record.deliveries.push(NewDelivery {
                    group_key: id.key.clone(),
                    receiver: id.receiver.clone(),
                    integration: name.clone(),
                    notification: notification_body(&n, integration, public_url, now),
                    created_at: now,
                });
            }
        }
        records.push(record);
    }
    state.silences = silences;
    records
}

/// What a delivery carries: Alertmanager's webhook body (version 4), the
/// one description every outlet renders from.
pub(super) fn notification_body(
    n: &Notification,
    integration: &Integration,
    public_url: Option<&str>,
    now: Timestamp,
) -> serde_json::Value {
    let max_alerts = match integration {
        Integration::Webhook(w) => w.max_alerts,
        Integration::Email(_)
        | Integration::PagerDuty(_)
        | Integration::Opsgenie(_)
        | Integration::Chat(_) => 0,
    };
    webhook::body(n, public_url.unwrap_or_default(), max_alerts, now)
}

/// Builds the groups from the store before the engine takes requests, so
/// that they show at once after a restart; a failure is left to the timer,
/// which tries again.
pub(crate) async fn prepare(shared: &Shared) {
    let leads = shared.leader.borrow().is_some();
    if let Some(config) = shared.catalog().alerts.clone()
        && let Err(e) = load(shared, config, leads).await
    {
        tracing::warn!(error = %e, "cannot rebuild the alert groups yet; retrying");
    }
}

/// The dispatcher's timer: flushes groups as they fall due while this node
/// leads, follows the leader otherwise, until the process ends.
pub(crate) async fn run(shared: Arc<Shared>) {
    let engine = crate::Engine {
        shared: Arc::clone(&shared),
    };
    let mut led = engine.is_leader();
    loop {
        let leads = engine.is_leader();
        if leads != led {
            // A new leader starts from what the previous one stored.
            shared.alerting.state().config = None;
            led = leads;
        }
        let config = shared.catalog().alerts.clone();
        let round = match config {
            None => Ok(IDLE_TICK),
            Some(config) if leads => tick(&shared, config).await,
            Some(config) => follow(&shared, config).await.map(|()| IDLE_TICK),
        };
        let wait = match round {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "alert dispatch failed; rebuilding from the store");
                shared.alerting.state().config = None;
                IDLE_TICK
            }
        };
        tokio::select! {
            () = shared.alerting.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn audit_escalation(shared: &Shared, group: &str, what: &str, detail: serde_json::Value) {
    let event = switchboard_core::audit::AuditEvent::now(
        &switchboard_core::Principal::system(),
        &switchboard_core::Origin::system(),
        &format!("escalation.{what}"),
        format!("group:{group}"),
        what,
        detail,
    );
    if let Err(e) = shared.audit.record(event).await {
        tracing::warn!(error = %e, "cannot audit an escalation");
    }
}

/// A follower's round: (re)build when needed or due, and group what other
/// nodes received.
async fn follow(shared: &Shared, config: Arc<AlertsConfig>) -> Result<(), EngineError> {
    let built_at = shared.alerting.state().built_at;
    if !shared.alerting.built_with(Some(&config))
        || built_at.is_none_or(|at| at.after(FOLLOWER_REBUILD) <= Timestamp::now())
    {
        load(shared, config, false).await?;
    }
    catch_up(shared).await?;
    Ok(())
}

/// The leader's round: (re)load when needed, group what other nodes
/// received, flush what is due, store it; returns how long until the next
/// group is due.
async fn tick(shared: &Arc<Shared>, config: Arc<AlertsConfig>) -> Result<Duration, EngineError> {
    if !shared.alerting.built_with(Some(&config)) {
        load(shared, config, true).await?;
    }
    let created = catch_up(shared).await?;
    if !created.is_empty() {
        shared.store.save_alert_groups(&created).await?;
    }
    let silences = super::silences::active(shared).await?;
    shared.alerting.set_silences(silences);
    let now = Timestamp::now();
    let public_url = shared.config.chat.public_url.clone();
    let (mut records, escalated) = {
        let mut state = shared.alerting.state();
        let records = flush_due(&mut state, public_url.as_deref(), now);
        (records, escalate(&mut state, public_url.as_deref(), now))
    };
    // The chains' new positions first: a crash before the pages are
    // recorded loses a page rather than sending one twice.
    shared.store.save_escalations(&escalated.states).await?;
    records.extend(escalated.records);
    if !records.is_empty() {
        shared.store.record_flushes(&records).await?;
        if records.iter().any(|r| !r.deliveries.is_empty()) {
            shared.alerting.deliveries.notify_one();
        }
    }
    for (group, what, detail) in escalated.events {
        audit_escalation(shared, &group, what, detail).await;
    }
    let engine = crate::Engine {
        shared: Arc::clone(shared),
    };
    engine.run_due_automations().await?;
    let next = {
        let state = shared.alerting.state();
        let chains = state.escalations.values().filter_map(|c| match c.run {
            Run::Running(p) => Some(p.due),
            _ => None,
        });
        state.agg.next_due().into_iter().chain(chains).min()
    };
    Ok(next.map_or(IDLE_TICK, |at| Timestamp::now().until(at).min(IDLE_TICK)))
}
