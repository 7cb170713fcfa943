//! Aggregation groups and the notification decision: Alertmanager's
//! dispatcher (`dispatch/dispatch.go`) and its dedup stage
//! (`notify/notify.go`), as a state machine that is told the time.
//!
//! Owns [`Aggregator`]: the groups alerts join on each route they take
//! (one per route and group labels, with its receiver), when each group is
//! next due, and what a flush of a due group decides — which alerts are
//! held back (silenced, inhibited, or the route muted at that time), whether
//! the receiver must hear of the group now ([`needs_update`], against the
//! [`LogEntry`] of what it was last told), and which resolved alerts leave
//! the group. As in Alertmanager:
//!
//! * a new group is first flushed `group_wait` after it was created — or at
//!   once when its alert started more than `group_wait` ago (so a restart or
//!   a late sender does not hold an old alert back again) — and then every
//!   `group_interval`;
//! * a receiver is told when a firing alert is new to it, when every alert
//!   it was told of has resolved (a resolved notice), when an alert it was
//!   told of resolved and it wants resolved notices, and otherwise every
//!   `repeat_interval`; never of a group that only ever held resolved
//!   alerts — so a group resolved within `group_wait` sends nothing;
//! * a flush removes the group's resolved alerts, and a group left empty
//!   ends.
//!
//! Not here: keeping groups and the notification log across restarts (the
//! engine, through the store), the clock and timers (the engine), and
//! delivering notifications (outlets).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::inhibit::Inhibitor;
use super::labels::{Fingerprint, LabelSet};
use super::routing::{Route, RouteOptions};
use super::silences::Silence;
use crate::ids::Timestamp;

/// An alert as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub fingerprint: Fingerprint,
    pub labels: LabelSet,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Timestamp,
    /// When it ends (or ended): a firing alert resolves at this time unless
    /// renewed.
    pub ends_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub generator_url: Option<String>,
}

impl Alert {
    /// Whether it has resolved by `now`.
    pub fn is_resolved_at(&self, now: Timestamp) -> bool {
        self.ends_at.is_some_and(|end| end <= now)
    }
}

/// A group's identity: its group key and its receiver (two routes may
/// share a key and differ in receiver).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId {
    pub key: String,
    pub receiver: String,
}

impl GroupId {
    /// A short id people can type (`ack 3f9c0a1b2c3d`): 12 hex digits of
    /// the SHA-256 of the receiver and the key.
    pub fn short(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{}\n{}", self.receiver, self.key).as_bytes());
        hex::encode(&digest[..6])
    }
}

/// An aggregation group.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: GroupId,
    /// The labels it groups by, with the alert's values.
    pub labels: LabelSet,
    /// The options of the route it belongs to.
    pub options: RouteOptions,
    /// The route's dotted key in `alerts.toml`.
    pub route_path: String,
    pub created_at: Timestamp,
    pub alerts: BTreeMap<Fingerprint, Arc<Alert>>,
    /// When it is next flushed.
    pub next_flush: Timestamp,
    /// Whether it has been flushed once (after that it waits
    /// `group_interval`, not `group_wait`).
    pub flushed: bool,
}

/// What a receiver was last told of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub firing: BTreeSet<Fingerprint>,
    pub resolved: BTreeSet<Fingerprint>,
    pub sent_at: Timestamp,
}

/// Alertmanager's `DedupStage.needsUpdate`: whether a receiver last told
/// `entry` must be told of a group whose notifiable alerts are now `firing`
/// and `resolved`.
pub fn needs_update(
    entry: Option<&LogEntry>,
    firing: &BTreeSet<Fingerprint>,
    resolved: &BTreeSet<Fingerprint>,
    send_resolved: bool,
    repeat_interval: std::time::Duration,
    now: Timestamp,
) -> bool {
    let Some(entry) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&entry.firing) {
        return true;
    }
    if firing.is_empty() {
        // Everything it was told of resolved: say so (regardless of
        // `send_resolved`, which only decides whether resolved alerts are
        // listed), unless it was told of nothing firing.
        return !entry.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return true;
    }
    entry.sent_at <= now.before(repeat_interval)
}

/// What holds alerts back from notifications at a flush.
pub struct Mutes<'a> {
    pub silences: &'a [Silence],
    pub inhibitor: &'a Inhibitor,
    /// Every firing alert's labels (the sources of inhibition).
    pub firing: &'a [LabelSet],
    /// Whether the group's route is muted now (its time intervals).
    pub route_muted: bool,
}

impl Mutes<'_> {
    fn mutes(&self, alert: &Alert, now: Timestamp) -> bool {
        self.silences.iter().any(|s| s.silences(&alert.labels, now))
            || self
                .inhibitor
                .is_inhibited(&alert.labels, self.firing)
                .is_some()
    }
}

/// A notification to deliver: the group and its notifiable alerts.
#[derive(Debug, Clone)]
pub struct Notification {
    pub group: GroupId,
    pub group_labels: LabelSet,
    pub firing: Vec<Arc<Alert>>,
    /// Listed only when the receiver wants resolved notices.
    pub resolved: Vec<Arc<Alert>>,
}

impl Notification {
    /// `firing` while any alert fires, else `resolved`.
    pub fn status(&self) -> &'static str {
        if self.firing.is_empty() {
            "resolved"
        } else {
            "firing"
        }
    }
}

/// What a receiver's integration (one outlet of it) was last told, and
/// whether it lists resolved alerts: the input of a flush for it.
#[derive(Debug, Clone, Copy)]
pub struct Integration<'a> {
    pub last: Option<&'a LogEntry>,
    pub send_resolved: bool,
}

/// What a flush decided for one integration.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// What to record as told, when it is told (or would be, but for
    /// `send_resolved = false` leaving nothing to list).
    pub log: Option<LogEntry>,
    /// What to deliver.
    pub notification: Option<Notification>,
}

/// What a flush decided.
#[derive(Debug, Clone, Default)]
pub struct Flush {
    /// One decision per integration, in the order given.
    pub decisions: Vec<Decision>,
    /// Resolved alerts that left the group.
    pub removed: Vec<Fingerprint>,
    /// Whether the group ended (no alerts left).
    pub ended: bool,
}

/// Every aggregation group.
#[derive(Debug, Clone, Default)]
pub struct Aggregator {
    groups: BTreeMap<GroupId, Group>,
}

impl Aggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `alert` into its group on every route it takes, creating
    /// groups as needed; returns the ids of the groups created.
    pub fn insert(&mut self, route: &Route, alert: Arc<Alert>, now: Timestamp) -> Vec<GroupId> {
        let mut created = Vec::new();
        for node in route.match_labels(&alert.labels) {
            let id = GroupId {
                key: node.group_key(&alert.labels),
                receiver: node.options.receiver.clone(),
            };
            let group = self.groups.entry(id.clone()).or_insert_with(|| {
                created.push(id.clone());
                Group {
                    id,
                    labels: node.group_labels(&alert.labels),
                    options: node.options.clone(),
                    route_path: node.path.clone(),
                    created_at: now,
                    alerts: BTreeMap::new(),
                    next_flush: now.after(node.options.group_wait),
                    flushed: false,
                }
            });
            if !group.flushed && alert.starts_at.after(group.options.group_wait) <= now {
                group.next_flush = group.next_flush.min(now);
            }
            group.alerts.insert(alert.fingerprint, alert.clone());
        }
        created
    }

    /// Sets when a group is next flushed and whether it was flushed before
    /// (restoring a group kept across a restart).
    pub fn restore(
        &mut self,
        id: &GroupId,
        created_at: Timestamp,
        next_flush: Timestamp,
        flushed: bool,
    ) {
        if let Some(g) = self.groups.get_mut(id) {
            g.created_at = created_at;
            g.next_flush = next_flush;
            g.flushed = flushed;
        }
    }

    pub fn group(&self, id: &GroupId) -> Option<&Group> {
        self.groups.get(id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The earliest next flush of any group.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.groups.values().map(|g| g.next_flush).min()
    }

    /// The groups due at `now`.
    pub fn due(&self, now: Timestamp) -> Vec<GroupId> {
        self.groups
            .values()
            .filter(|g| g.next_flush <= now)
            .map(|g| g.id.clone())
            .collect()
    }

    /// The labels of every firing alert held, each once.
    pub fn firing_labels(&self, now: Timestamp) -> Vec<LabelSet> {
        let mut seen = BTreeSet::new();
        self.groups
            .values()
            .flat_map(|g| g.alerts.values())
            .filter(|a| !a.is_resolved_at(now) && seen.insert(a.fingerprint))
            .map(|a| a.labels.clone())
            .collect()
    }

    /// Flushes group `id` at `now`: decides what each of its receiver's
    /// integrations is told, drops resolved alerts, and sets the next flush
    /// `group_interval` later. Nothing for an unknown group.
    pub fn flush(
        &mut self,
        id: &GroupId,
        now: Timestamp,
        mutes: &Mutes<'_>,
        integrations: &[Integration<'_>],
    ) -> Flush {
        let Some(group) = self.groups.get_mut(id) else {
            return Flush::default();
        };
        let mut flush = Flush::default();
        let (resolved, firing): (Vec<_>, Vec<_>) = group
            .alerts
            .values()
            .filter(|a| !mutes.route_muted && !mutes.mutes(a, now))
            .cloned()
            .partition(|a| a.is_resolved_at(now));
        let firing_set: BTreeSet<_> = firing.iter().map(|a| a.fingerprint).collect();
        let resolved_set: BTreeSet<_> = resolved.iter().map(|a| a.fingerprint).collect();
        for integration in integrations {
            let mut decision = Decision::default();
            if !mutes.route_muted
                && needs_update(
                    integration.last,
                    &firing_set,
                    &resolved_set,
                    integration.send_resolved,
                    group.options.repeat_interval,
                    now,
                )
            {
                decision.log = Some(LogEntry {
                    firing: firing_set.clone(),
                    resolved: resolved_set.clone(),
                    sent_at: now,
                });
                let resolved = if integration.send_resolved {
                    resolved.clone()
                } else {
                    Vec::new()
                };
                if !firing.is_empty() || !resolved.is_empty() {
                    decision.notification = Some(Notification {
                        group: id.clone(),
                        group_labels: group.labels.clone(),
                        firing: firing.clone(),
                        resolved,
                    });
                }
            }
            flush.decisions.push(decision);
        }
        group.alerts.retain(|fp, a| {
            let keep = !a.is_resolved_at(now);
            if !keep {
                flush.removed.push(*fp);
            }
            keep
        });
        group.flushed = true;
        group.next_flush = now.after(group.options.group_interval);
        if group.alerts.is_empty() {
            self.groups.remove(id);
            flush.ended = true;
        }
        flush
    }

    /// What an escalation page of group `id` says at `now`: its firing
    /// alerts that nothing holds back; `None` when there are none.
    pub fn firing_notification(
        &self,
        id: &GroupId,
        now: Timestamp,
        mutes: &Mutes<'_>,
    ) -> Option<Notification> {
        let group = self.groups.get(id)?;
        if mutes.route_muted {
            return None;
        }
        let firing: Vec<Arc<Alert>> = group
            .alerts
            .values()
            .filter(|a| !a.is_resolved_at(now) && !mutes.mutes(a, now))
            .cloned()
            .collect();
        (!firing.is_empty()).then(|| Notification {
            group: id.clone(),
            group_labels: group.labels.clone(),
            firing,
            resolved: Vec::new(),
        })
    }

    /// Ends every group (the route tree changed; the caller inserts the
    /// alerts again).
    pub fn clear(&mut self) {
        self.groups.clear();
    }
}
