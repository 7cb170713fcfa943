//! The route tree: which routes an alert takes, with which options, and
//! the group it joins on each — Alertmanager's `dispatch/route.go`.
//!
//! Owns [`Route`] (built from [`RouteSpec`]s, the tree as written), the
//! matching of a label set ([`Route::match_labels`]), the inheritance of
//! options, group labels and keys, and PagerDuty's dedup key. As
//! Alertmanager:
//!
//! * matching is depth-first, left to right: a node matches when its
//!   matchers do; then its children are tried in order, and a child that
//!   matched stops its later siblings unless it has `continue = true`; a
//!   node none of whose children matched is itself the match. The root has
//!   no matchers, so every alert takes at least one route.
//! * `receiver`, `escalation`, `group_by`, `group_wait`, `group_interval`
//!   and `repeat_interval` are inherited from the parent unless set (defaults at
//!   the root: no grouping labels, 30s, 5m, 4h). An empty `group_by` counts
//!   as not set, as in Alertmanager. `mute_time_intervals` and
//!   `active_time_intervals` are not inherited: each route has its own.
//! * a route's matchers are kept sorted (name, value, operator), which
//!   makes its key independent of the order they were written in.
//! * a route's key is its parent's key, `/`, and its matchers printed as
//!   `{a="1",b=~"2"}`; the root's is `{}`. A group's key is the route key,
//!   `:`, and the group labels printed as `{alertname="Disk", job="node"}`:
//!   `{}/{severity="critical"}:{alertname="Disk"}`. This is the readable
//!   key Alertmanager releases put in webhooks' `groupKey` and hash for
//!   PagerDuty's `dedup_key` (SHA-256, hex).
//! * group labels are the alert's labels named in `group_by` (labels the
//!   alert lacks are left out), or all of them for `...`.
//!
//! Not here: reading `alerts.toml` (`config`), holding groups and their
//! timers, and deciding whether a muted route notifies (the engine).

use std::collections::BTreeSet;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::labels::LabelSet;
use super::matchers::Matchers;

/// Alertmanager's default `group_wait`.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// Alertmanager's default `group_interval`.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Alertmanager's default `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// Which labels form an alert's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// These labels (none: every alert of the route in one group).
    Labels(BTreeSet<String>),
    /// Every label (`...`): each distinct alert is its own group.
    All,
}

impl Default for GroupBy {
    fn default() -> Self {
        Self::Labels(BTreeSet::new())
    }
}

/// A route's options, after inheritance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOptions {
    pub receiver: String,
    /// The escalation chain of its groups, if any (inherited).
    pub escalation: Option<String>,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    /// Named intervals when this route does not notify.
    pub mute_time_intervals: Vec<String>,
    /// Named intervals outside which this route does not notify (empty:
    /// always active).
    pub active_time_intervals: Vec<String>,
}

impl RouteOptions {
    fn defaults() -> Self {
        Self {
            receiver: String::new(),
            escalation: None,
            group_by: GroupBy::default(),
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
        }
    }
}

/// A route as written: unset options are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteSpec {
    pub receiver: Option<String>,
    pub escalation: Option<String>,
    /// `None` (or an empty list, as in Alertmanager) inherits.
    pub group_by: Option<GroupBy>,
    pub group_wait: Option<Duration>,
    pub group_interval: Option<Duration>,
    pub repeat_interval: Option<Duration>,
    pub matchers: Matchers,
    pub continue_matching: bool,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub routes: Vec<RouteSpec>,
    /// Where it was written: its dotted key (`route.routes[0]`) and line.
    pub path: String,
    pub line: usize,
}

/// A node of the route tree, with its effective options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteNode {
    /// Sorted as Alertmanager sorts them.
    pub matchers: Matchers,
    /// Whether siblings after this one are still tried when it matched.
    pub continue_matching: bool,
    pub options: RouteOptions,
    pub routes: Vec<RouteNode>,
    /// Its dotted key in `alerts.toml`, e.g. `route.routes[1]`.
    pub path: String,
    pub line: usize,
    key: String,
}

impl RouteNode {
    fn build(spec: RouteSpec, parent: Option<(&RouteOptions, &str)>) -> Self {
        let mut options = parent.map_or_else(RouteOptions::defaults, |(o, _)| o.clone());
        if let Some(r) = spec.receiver.filter(|r| !r.is_empty()) {
            options.receiver = r;
        }
        if let Some(e) = spec.escalation.filter(|e| !e.is_empty()) {
            options.escalation = Some(e);
        }
        match spec.group_by {
            Some(GroupBy::Labels(l)) if l.is_empty() => {}
            Some(g) => options.group_by = g,
            None => {}
        }
        if let Some(d) = spec.group_wait {
            options.group_wait = d;
        }
        if let Some(d) = spec.group_interval {
            options.group_interval = d;
        }
        if let Some(d) = spec.repeat_interval {
            options.repeat_interval = d;
        }
        options.mute_time_intervals = spec.mute_time_intervals;
        options.active_time_intervals = spec.active_time_intervals;
        let matchers = spec.matchers.sorted();
        let key = match parent {
            Some((_, parent_key)) => format!("{parent_key}/{matchers}"),
            None => matchers.to_string(),
        };
        let routes = spec
            .routes
            .into_iter()
            .map(|child| Self::build(child, Some((&options, &key))))
            .collect();
        Self {
            matchers,
            continue_matching: spec.continue_matching,
            options,
            routes,
            path: spec.path,
            line: spec.line,
            key,
        }
    }

    /// Alertmanager's `Route.Match`: the nodes `labels` take under this
    /// one, depth-first; empty when this node's matchers do not hold.
    pub fn match_labels(&self, labels: &LabelSet) -> Vec<&RouteNode> {
        if !self.matchers.matches(labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let found = child.match_labels(labels);
            let matched = !found.is_empty();
            all.extend(found);
            if matched && !child.continue_matching {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// Alertmanager's `Route.Key()`: `{}/{severity="critical"}`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The labels of `labels`' group on this route.
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        group_labels(self, labels)
    }

    /// The key of `labels`' group on this route.
    pub fn group_key(&self, labels: &LabelSet) -> String {
        group_key(self, labels)
    }

    /// This node and every node below it, depth-first.
    pub fn walk(&self) -> Vec<&RouteNode> {
        let mut out = vec![self];
        for child in &self.routes {
            out.extend(child.walk());
        }
        out
    }
}

/// The route tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    root: RouteNode,
}

impl Route {
    /// The tree of `root`, with options inherited from the defaults down.
    /// Checking it (a root receiver, no root matchers, known names) is the
    /// caller's: [`crate::alerts::AlertsConfig::parse`] does it.
    pub fn new(root: RouteSpec) -> Self {
        Self {
            root: RouteNode::build(root, None),
        }
    }

    pub fn root(&self) -> &RouteNode {
        &self.root
    }

    /// The nodes `labels` take, in order (at least the root).
    pub fn match_labels(&self, labels: &LabelSet) -> Vec<&RouteNode> {
        self.root.match_labels(labels)
    }

    /// Every node, depth-first from the root.
    pub fn nodes(&self) -> Vec<&RouteNode> {
        self.root.walk()
    }
}

/// The labels of `labels` that `route` groups by (all of them for `...`;
/// grouping labels the alert lacks are left out).
pub fn group_labels(route: &RouteNode, labels: &LabelSet) -> LabelSet {
    match &route.options.group_by {
        GroupBy::All => labels.clone(),
        GroupBy::Labels(names) => labels.filter(|n| names.contains(n)),
    }
}

/// Alertmanager's group key: the route's key, `:`, the group labels,
/// e.g. `{}/{severity="critical"}:{alertname="Disk"}`.
pub fn group_key(route: &RouteNode, labels: &LabelSet) -> String {
    format!("{}:{}", route.key(), group_labels(route, labels))
}

/// PagerDuty's `dedup_key` for a group, as Alertmanager derives it: the
/// SHA-256 of the group key, in lower-case hex.
pub fn pagerduty_dedup_key(group_key: &str) -> String {
    hex::encode(Sha256::digest(group_key.as_bytes()))
}
