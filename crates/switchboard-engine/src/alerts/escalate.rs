//! Escalation: a group whose route names a chain pages the chain's
//! receivers, step by step, from its first notification until someone
//! acknowledges it (the group, or every firing alert in it). An
//! acknowledgement stops the chain; if the group still fires when the
//! acknowledgement is older than the chain's `ack_timeout`, the
//! acknowledgement lapses and the chain starts again. A group that ends
//! (all resolved) ends its chain; a chain that has run `repeat` times is
//! finished.
//!
//! Runs in the dispatcher's tick, after the flushes, on its state; pages
//! go out as deliveries like every notification. Not here: the chain's
//! steps (core's `alerts::escalation`).

use std::collections::HashMap;

use switchboard_core::Timestamp;
use switchboard_core::alerts::aggregation::{GroupId, Mutes};
use switchboard_core::alerts::escalation::Position;
use switchboard_store::{FlushRecord, NewDelivery, StoredAck, StoredEscalation};

use super::dispatcher::{AckTarget, State, notification_body, stored_group};

/// Where a group's chain stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    pub(crate) name: String,
    pub(crate) run: Run,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    Running(Position),
    Finished,
    /// Stopped by an acknowledgement.
    Stopped,
}

impl Chain {
    pub(crate) fn stored(&self, id: &GroupId, now: Timestamp) -> StoredEscalation {
        let (state, pos) = match self.run {
            Run::Running(p) => ("running", Some(p)),
            Run::Finished => ("finished", None),
            Run::Stopped => ("stopped", None),
        };
        StoredEscalation {
            group_key: id.key.clone(),
            receiver: id.receiver.clone(),
            chain: self.name.clone(),
            state: state.to_owned(),
            step: pos.map_or(0, |p| u32::try_from(p.step).unwrap_or(0)),
            round: pos.map_or(0, |p| p.round),
            due_at: pos.map_or(now, |p| p.due),
            updated_at: now,
        }
    }

    pub(crate) fn from_stored(e: &StoredEscalation) -> Self {
        let run = match e.state.as_str() {
            "running" => Run::Running(Position {
                step: usize::try_from(e.step).unwrap_or(0),
                round: e.round,
                due: e.due_at,
            }),
            "stopped" => Run::Stopped,
            _ => Run::Finished,
        };
        Self {
            name: e.chain.clone(),
            run,
        }
    }
}

/// What a round of escalation changed.
#[derive(Default)]
pub(super) struct Escalated {
    /// Pages to deliver (and acknowledgements that lapsed).
    pub(super) records: Vec<FlushRecord>,
    /// Chains whose state changed.
    pub(super) states: Vec<StoredEscalation>,
    /// What to audit: (group id, what happened, detail).
    pub(super) events: Vec<(String, &'static str, serde_json::Value)>,
}

/// When the group or all of its firing alerts were acknowledged: the
/// latest such acknowledgement's time, or `None`.
fn acknowledged(
    acks: &HashMap<String, StoredAck>,
    id: &GroupId,
    firing: &[switchboard_core::alerts::Fingerprint],
) -> Option<(Timestamp, Vec<String>)> {
    let group = AckTarget::Group(id.clone()).subject();
    if let Some(a) = acks.get(&group) {
        return Some((a.acked_at, vec![group]));
    }
    let subjects: Vec<String> = firing
        .iter()
        .map(|fp| AckTarget::Alert(*fp).subject())
        .collect();
    let times: Option<Vec<Timestamp>> = subjects
        .iter()
        .map(|s| acks.get(s).map(|a| a.acked_at))
        .collect();
    let times = times.filter(|t| !t.is_empty())?;
    times.into_iter().max().map(|t| (t, subjects))
}

/// Advances every group's chain at `now`.
pub(super) fn escalate(state: &mut State, public_url: Option<&str>, now: Timestamp) -> Escalated {
    let mut out = Escalated::default();
    let Some(config) = state.config.clone() else {
        return out;
    };
    let ids: Vec<GroupId> = state
        .agg
        .groups()
        .filter(|g| g.flushed && g.options.escalation.is_some())
        .map(|g| g.id.clone())
        .collect();
    if ids.is_empty() {
        return out;
    }
    let inhibitor = config.inhibitor();
    let firing_labels = super::dispatcher::inhibiting(&state.agg, &inhibitor, now);
    for id in ids {
        let Some(group) = state.agg.group(&id) else {
            continue;
        };
        let Some(chain_name) = group.options.escalation.clone() else {
            continue;
        };
        let Some(chain) = config.escalation(&chain_name) else {
            continue;
        };
        let mutes = Mutes {
            silences: &state.silences,
            inhibitor: &inhibitor,
            firing: &firing_labels,
            route_muted: config.is_muted_options(&group.options, now),
        };
        let Some(page) = state.agg.firing_notification(&id, now, &mutes) else {
            continue;
        };
        let firing: Vec<_> = page.firing.iter().map(|a| a.fingerprint).collect();
        let acked = acknowledged(&state.acks, &id, &firing);
        let current = state.escalations.get(&id).map(|c| c.run);
        let mut cleared = Vec::new();
        let next = match (current, acked) {
            (None, None) => Some(Run::Running(Position::start(now))),
            (None | Some(Run::Running(_)), Some(_)) => {
                out.events.push((
                    id.short(),
                    "stopped",
                    serde_json::json!({"chain": chain_name, "reason": "acknowledged"}),
                ));
                Some(Run::Stopped)
            }
            (Some(Run::Stopped), Some((at, subjects))) if at.after(chain.ack_timeout) <= now => {
                // Still firing long after the acknowledgement: it lapses.
                cleared = subjects;
                out.events.push((id.short(), "restarted", serde_json::json!({"chain": chain_name, "reason": "acknowledgement older than ack_timeout"})));
                Some(Run::Running(Position::start(now)))
            }
            (Some(Run::Stopped), None) => Some(Run::Running(Position::start(now))),
            (Some(Run::Running(pos)), None) => Some(Run::Running(pos)),
            (Some(Run::Stopped | Run::Finished), _) => None,
        };
        let Some(mut run) = next else { continue };
        let mut deliveries = Vec::new();
        if let Run::Running(pos) = run {
            let advanced = chain.advance(pos, now);
            for receiver in &advanced.notify {
                let integrations = config
                    .receiver(receiver)
                    .map(|r| r.integrations.list())
                    .unwrap_or_default();
                for (name, integration) in integrations {
                    deliveries.push(NewDelivery {
                        group_key: id.key.clone(),
                        receiver: receiver.clone(),
                        integration: name,
                        notification: notification_body(&page, &integration, public_url, now),
                        created_at: now,
                    });
                }
            }
            if !advanced.notify.is_empty() {
                out.events.push((
                    id.short(),
                    "paged",
                    serde_json::json!({"chain": chain_name, "receivers": advanced.notify}),
                ));
            }
            run = advanced.position.map_or(Run::Finished, Run::Running);
        }
        let chain_state = Chain {
            name: chain_name,
            run,
        };
        if state.escalations.get(&id) != Some(&chain_state) {
            out.states.push(chain_state.stored(&id, now));
            state.escalations.insert(id.clone(), chain_state);
        }
        for subject in &cleared {
            state.acks.remove(subject);
        }
        if !deliveries.is_empty() || !cleared.is_empty() {
            out.records.push(FlushRecord {
                group: state.agg.group(&id).map(stored_group),
                group_key: id.key.clone(),
                receiver: id.receiver.clone(),
                log: Vec::new(),
                deliveries,
                cleared_acks: cleared,
            });
        }
    }
    out
}
