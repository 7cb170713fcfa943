//! `alerts.toml`: the catalog's alerting configuration — the route tree,
//! the receivers, the inhibition rules and the time intervals — laid out
//! like Alertmanager's YAML, in TOML:
//!
//! ```toml
//! [route]
//! receiver = "ops"
//! group_by = ["alertname", "cluster"]    # "..." groups by every label
//! group_wait = "30s"                     # defaults: 30s, 5m, 4h
//! group_interval = "5m"
//! repeat_interval = "4h"
//!
//! [[route.routes]]
//! matchers = ['severity="critical"', 'team=~"db|storage"']
//! receiver = "pager"
//! continue = true
//! mute_time_intervals = ["maintenance"]  # also: active_time_intervals
//!
//! [[receivers]]
//! name = "ops"
//! [[receivers.webhook_configs]]          # its outlets: see `receivers`
//! url = "https://hooks.example.com/alerts"
//!
//! [[inhibit_rules]]
//! source_matchers = ['severity="critical"']
//! target_matchers = ['severity="warning"']
//! equal = ["alertname", "cluster"]
//!
//! [[time_intervals]]
//! name = "maintenance"
//! [[time_intervals.time_intervals]]
//! weekdays = ["saturday", "sunday"]
//! times = [{ start_time = "02:00", end_time = "04:00" }]
//! location = "+01:00"
//! ```
//!
//! Owns reading that file into an [`AlertsConfig`], checked as Alertmanager
//! checks its configuration: the root route has a receiver and no
//! matchers, `continue` or time intervals; every receiver and time interval
//! a route names exists; names are unique; `group_by` has valid, distinct
//! label names and does not mix `...` with names; `group_interval` and
//! `repeat_interval` are not zero. Every problem is reported, each with its
//! line and dotted key (`route.routes[1].matchers[0]`), as the rest of the
//! catalog reports them. Each `matchers` entry may hold several matchers
//! (`'a="1", b="2"'`), as in Alertmanager.
//!
//! Not here: what a receiver's settings mean (`receivers` reads them), reading the
//! file from disk, and Alertmanager's deprecated `match`/`match_re`,
//! `source_match`/`target_match` and top-level `mute_time_intervals`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::automation::{Automation, DEFAULT_RATE_LIMIT, check_template};
use super::escalation::{DEFAULT_ACK_TIMEOUT, Escalation, Step};
use super::inhibit::{InhibitRule, Inhibitor};
use super::matchers::{MatchOp, Matchers};
use super::receivers::Integrations;
use super::routing::{GroupBy, Route, RouteNode, RouteOptions, RouteSpec};
use super::time_intervals::{self as ti, Location, TimeInterval, TimePeriod};
use super::toml_reader::{Entry, Reader, join};
use crate::catalog::CatalogError;
use crate::ids::Timestamp;

/// The file, relative to the catalog root.
pub const FILE: &str = "alerts.toml";

const TOP_KEYS: [&str; 6] = [
    "route",
    "receivers",
    "inhibit_rules",
    "time_intervals",
    "escalations",
    "automations",
];
const AUTOMATION_KEYS: [&str; 7] = [
    "name",
    "matchers",
    "action",
    "params",
    "delay",
    "rate_limit",
    "run_as",
];
const ESCALATION_KEYS: [&str; 4] = ["name", "steps", "repeat", "ack_timeout"];
const STEP_KEYS: [&str; 2] = ["notify", "wait"];
const ROUTE_KEYS: [&str; 13] = [
    "match",
    "match_re",
    "escalation",
    "receiver",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "matchers",
    "continue",
    "mute_time_intervals",
    "active_time_intervals",
    "routes",
];
const INHIBIT_KEYS: [&str; 7] = [
    "source_matchers",
    "target_matchers",
    "equal",
    "source_match",
    "source_match_re",
    "target_match",
    "target_match_re",
];
const INTERVAL_KEYS: [&str; 2] = ["name", "time_intervals"];
const PERIOD_KEYS: [&str; 6] = [
    "times",
    "weekdays",
    "days_of_month",
    "months",
    "years",
    "location",
];
const TIMES_KEYS: [&str; 2] = ["start_time", "end_time"];

/// A receiver: its name and its integrations (outlets).
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    pub name: String,
    pub integrations: Integrations,
    pub line: usize,
}

/// The checked contents of `alerts.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    pub route: Route,
    pub receivers: Vec<Receiver>,
    pub inhibit_rules: Vec<InhibitRule>,
    pub time_intervals: BTreeMap<String, TimeInterval>,
    pub escalations: BTreeMap<String, Escalation>,
    pub automations: Vec<Automation>,
}

impl AlertsConfig {
    /// The configuration in the text of an `alerts.toml`, or every problem.
    pub fn parse(text: &str) -> Result<Self, Vec<CatalogError>> {
        Loader {
            r: Reader {
                file: FILE,
                src: text,
                errors: Vec::new(),
            },
            refs: Vec::new(),
        }
        .file()
    }

    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }

    pub fn escalation(&self, name: &str) -> Option<&Escalation> {
        self.escalations.get(name)
    }

    pub fn time_interval(&self, name: &str) -> Option<&TimeInterval> {
        self.time_intervals.get(name)
    }

    pub fn inhibitor(&self) -> Inhibitor {
        Inhibitor::new(self.inhibit_rules.clone())
    }

    /// Whether `route` is muted at `now`: one of its mute intervals
    /// contains `now`, or it has active intervals and none contains `now`.
    pub fn is_muted(&self, route: &RouteNode, now: Timestamp) -> bool {
        self.is_muted_options(&route.options, now)
    }

    /// [`Self::is_muted`] for a route's options.
    pub fn is_muted_options(&self, opts: &RouteOptions, now: Timestamp) -> bool {
        let contains = |name: &String| self.time_interval(name).is_some_and(|t| t.contains(now));
        opts.mute_time_intervals.iter().any(contains)
            || (!opts.active_time_intervals.is_empty()
                && !opts.active_time_intervals.iter().any(contains))
    }
}

/// A name a route uses, checked once every name is known.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RefKind {
    Receiver,
    Interval,
    Escalation,
}

struct Reference {
    kind: RefKind,
    name: String,
    key: String,
    span: Range<usize>,
}

struct Loader<'a> {
    r: Reader<'a>,
    refs: Vec<Reference>,
}

impl Loader<'_> {
    fn file(mut self) -> Result<AlertsConfig, Vec<CatalogError>> {
        let (doc, syntax) = DeTable::parse_recoverable(self.r.src);
        if !syntax.is_empty() {
            for e in syntax {
                let message = format!("invalid TOML: {}", e.message().trim());
                self.r.error(e.span().unwrap_or(0..0), "", message);
            }
            return Err(self.r.errors);
        }
        let plain: toml::Table = toml::from_str(self.r.src).unwrap_or_default();
        let top = self.r.fields(doc.get_ref(), "", &TOP_KEYS);
        let route = match top.get("route") {
            Some(v) => self.route(v, "route", true),
            None => {
                self.r.error(
                    0..0,
                    "route",
                    "missing (the root route: `[route]` with a `receiver`)",
                );
                None
            }
        };
        let receivers = top
            .get("receivers")
            .map(|v| self.receivers(v, &plain))
            .unwrap_or_default();
        let inhibit_rules = top
            .get("inhibit_rules")
            .map(|v| self.inhibit_rules(v))
            .unwrap_or_default();
        let time_intervals = top
            .get("time_intervals")
            .map(|v| self.time_intervals(v))
            .unwrap_or_default();
        let escalations = top
            .get("escalations")
            .map(|v| self.escalations(v))
            .unwrap_or_default();
        let automations = top
            .get("automations")
            .map(|v| self.automations(v))
            .unwrap_or_default();
        for r in std::mem::take(&mut self.refs) {
            let known = match r.kind {
                RefKind::Interval => time_intervals.contains_key(&r.name),
                RefKind::Receiver => receivers.iter().any(|x: &Receiver| x.name == r.name),
                RefKind::Escalation => escalations.contains_key(&r.name),
            };
            if !known {
                let what = match r.kind {
                    RefKind::Interval => "time interval (declare it in `[[time_intervals]]`)",
                    RefKind::Receiver => "receiver (declare it in `[[receivers]]`)",
                    RefKind::Escalation => "escalation (declare it in `[[escalations]]`)",
                };
                self.r
                    .error(r.span, &r.key, format!("unknown {what}: `{}`", r.name));
            }
        }
        match route {
            Some(route) if self.r.errors.is_empty() => Ok(AlertsConfig {
                route: Route::new(route),
                receivers,
                inhibit_rules,
                time_intervals,
                escalations,
                automations,
            }),
            _ => {
                self.r.errors.sort_by_key(|e| e.line);
                Err(self.r.errors)
            }
        }
    }

    fn route(&mut self, v: &Entry<'_>, path: &str, root: bool) -> Option<RouteSpec> {
        let before = self.r.errors.len();
        let table = self.r.table(v, path)?;
        let f = self.r.fields(table, path, &ROUTE_KEYS);
        let key = |k: &str| join(path, k);
        let mut spec = RouteSpec {
            path: path.to_owned(),
            line: self.r.line(v.span().start),
            ..RouteSpec::default()
        };
        if let Some(r) = f.get("receiver") {
            spec.receiver = self.r.name(r, &key("receiver"));
            if let Some(name) = &spec.receiver {
                self.refs.push(Reference {
                    kind: RefKind::Receiver,
                    name: name.clone(),
                    key: key("receiver"),
                    span: r.span(),
                });
            }
        } else if root {
            self.r.error(
                v.span(),
                &key("receiver"),
                "missing (the root route needs a receiver)",
            );
        }
        if let Some(e) = f.get("escalation") {
            spec.escalation = self.r.name(e, &key("escalation"));
            if let Some(name) = &spec.escalation {
                self.refs.push(Reference {
                    kind: RefKind::Escalation,
                    name: name.clone(),
                    key: key("escalation"),
                    span: e.span(),
                });
            }
        }
        if let Some(g) = f.get("group_by") {
            spec.group_by = self.group_by(g, &key("group_by"));
        }
        if let Some(d) = f.get("group_wait") {
            spec.group_wait = self.r.duration(d, &key("group_wait"), false);
        }
        if let Some(d) = f.get("group_interval") {
            spec.group_interval = self.r.duration(d, &key("group_interval"), true);
        }
        if let Some(d) = f.get("repeat_interval") {
            spec.repeat_interval = self.r.duration(d, &key("repeat_interval"), true);
        }
        for (field, refused) in [
            (
                "matchers",
                "the root route must not have matchers: it takes every alert",
            ),
            ("continue", "the root route cannot have `continue`"),
            (
                "mute_time_intervals",
                "the root route cannot have mute time intervals",
            ),
            (
                "active_time_intervals",
                "the root route cannot have active time intervals",
            ),
        ] {
            if let (true, Some(x)) = (root, f.get(field)) {
                self.r.error(x.span(), &key(field), refused);
            }
        }
        if let Some(m) = f.get("matchers") {
            spec.matchers = self.r.matchers(m, &key("matchers")).unwrap_or_default();
        }
        for (field, op) in [("match", MatchOp::Eq), ("match_re", MatchOp::Re)] {
            let Some(m) = f.get(field) else { continue };
            if root {
                self.r.error(
                    m.span(),
                    &key(field),
                    "the root route must not have matchers: it takes every alert",
                );
            } else if let Some(m) = self.r.label_table(m, &key(field), op) {
                let mut all = std::mem::take(&mut spec.matchers);
                all.extend(m);
                spec.matchers = all.sorted();
            }
        }
        if let Some(c) = f.get("continue") {
            match c.get_ref().as_bool() {
                Some(b) => spec.continue_matching = b,
                None => self
                    .r
                    .error(c.span(), &key("continue"), "must be true or false"),
            }
        }
        for (field, interval_names) in [
            ("mute_time_intervals", &mut spec.mute_time_intervals),
            ("active_time_intervals", &mut spec.active_time_intervals),
        ] {
            let Some(x) = f.get(field) else { continue };
            for (i, (name, span)) in self
                .r
                .strings(x, &key(field))
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                self.refs.push(Reference {
                    kind: RefKind::Interval,
                    name: name.clone(),
                    key: format!("{}[{i}]", key(field)),
                    span,
                });
                interval_names.push(name);
            }
        }
        if let Some(children) = f.get("routes") {
            let routes_key = key("routes");
            for (i, child) in self
                .r
                .array(children, &routes_key)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if let Some(c) = self.route(child, &format!("{routes_key}[{i}]"), false) {
                    spec.routes.push(c);
                }
            }
        }
        (self.r.errors.len() == before).then_some(spec)
    }

    fn group_by(&mut self, v: &Entry<'_>, key: &str) -> Option<GroupBy> {
        let items = self.r.strings(v, key)?;
        if items.iter().any(|(s, _)| s == "...") {
            if items.len() > 1 {
                self.r.error(
                    v.span(),
                    key,
                    "`...` (group by every label) cannot be combined with label names",
                );
                return None;
            }
            return Some(GroupBy::All);
        }
        self.r.label_names(v, key).map(GroupBy::Labels)
    }

    fn receivers(&mut self, v: &Entry<'_>, plain: &toml::Table) -> Vec<Receiver> {
        let mut out: Vec<Receiver> = Vec::new();
        let plain_items = plain.get("receivers").and_then(toml::Value::as_array);
        for (i, item) in self
            .r
            .array(v, "receivers")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let path = format!("receivers[{i}]");
            let Some(table) = self.r.table(item, &path) else {
                continue;
            };
            let name_key = join(&path, "name");
            let name = match table.get("name") {
                Some(n) => self.r.name(n, &name_key),
                None => {
                    self.r.error(
                        item.span(),
                        &name_key,
                        "missing (every receiver has a name)",
                    );
                    None
                }
            };
            let Some(name) = name else { continue };
            if out.iter().any(|r| r.name == name) {
                self.r.error(
                    item.span(),
                    &name_key,
                    format!("receiver `{name}` is declared twice"),
                );
                continue;
            }
            let mut settings = plain_items
                .and_then(|a| a.get(i))
                .and_then(toml::Value::as_table)
                .cloned()
                .unwrap_or_default();
            settings.remove("name");
            let integrations = match Integrations::parse(&settings) {
                Ok(i) => i,
                Err(message) => {
                    self.r.error(item.span(), &path, message);
                    continue;
                }
            };
            out.push(Receiver {
                name,
                integrations,
                line: self.r.line(item.span().start),
            });
        }
        out
    }

    fn inhibit_rules(&mut self, v: &Entry<'_>) -> Vec<InhibitRule> {
        let mut out = Vec::new();
        for (i, item) in self
            .r
            .array(v, "inhibit_rules")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let path = format!("inhibit_rules[{i}]");
            let Some(table) = self.r.table(item, &path) else {
                continue;
            };
            let f = self.r.fields(table, &path, &INHIBIT_KEYS);
            // `source_matchers`, or Alertmanager's older `source_match` and
            // `source_match_re` (likewise for the target side).
            let side = |r: &mut Reader<'_>, side: &str| {
                let field = format!("{side}_matchers");
                let mut all = match f.get(field.as_str()) {
                    Some(m) => Some(r.matchers(m, &join(&path, &field))?),
                    None => None,
                };
                for (old, op) in [("match", MatchOp::Eq), ("match_re", MatchOp::Re)] {
                    let old = format!("{side}_{old}");
                    if let Some(m) = f.get(old.as_str()) {
                        let m = r.label_table(m, &join(&path, &old), op)?;
                        all.get_or_insert_with(Matchers::default).extend(m);
                    }
                }
                if all.is_none() {
                    r.error(
                        item.span(),
                        &join(&path, &field),
                        "missing (a list of matchers such as `['severity=\"critical\"']`)",
                    );
                }
                all.map(Matchers::sorted)
            };
            let source = side(&mut self.r, "source");
            let target = side(&mut self.r, "target");
            let equal = match f.get("equal") {
                Some(e) => self.r.label_names(e, &join(&path, "equal")),
                None => Some(BTreeSet::new()),
            };
            if let (Some(source_matchers), Some(target_matchers), Some(equal)) =
                (source, target, equal)
            {
                out.push(InhibitRule {
                    source_matchers,
                    target_matchers,
                    equal,
                    line: self.r.line(item.span().start),
                });
            }
        }
        out
    }

    fn escalations(&mut self, v: &Entry<'_>) -> BTreeMap<String, Escalation> {
        let mut out = BTreeMap::new();
        for it in self.r.tables(v, "escalations", &ESCALATION_KEYS) {
            let (item, path, f) = (it.entry, &it.path, &it.fields);
            let name_key = it.key("name");
            let name = self.r.item_name(&it);
            let repeat =
                match f.get("repeat") {
                    None => 1,
                    Some(r) => match r.get_ref().as_integer().and_then(|n| {
                        u32::from_str_radix(&n.as_str().replace('_', ""), n.radix()).ok()
                    }) {
                        Some(n) if (1..=100).contains(&n) => n,
                        _ => {
                            self.r.error(
                                r.span(),
                                &join(path, "repeat"),
                                "must be a whole number from 1 to 100",
                            );
                            1
                        }
                    },
                };
            let ack_timeout = f
                .get("ack_timeout")
                .and_then(|d| self.r.duration(d, &join(path, "ack_timeout"), true))
                .unwrap_or(DEFAULT_ACK_TIMEOUT);
            let mut steps = Vec::new();
            let steps_key = join(path, "steps");
            let before = self.r.errors.len();
            match f.get("steps") {
                None => self
                    .r
                    .error(item.span(), &steps_key, "missing (at least one step)"),
                Some(list) => {
                    for (j, step) in self
                        .r
                        .array(list, &steps_key)
                        .unwrap_or_default()
                        .iter()
                        .enumerate()
                    {
                        let step_key = format!("{steps_key}[{j}]");
                        steps.extend(self.step(step, &step_key));
                    }
                }
            }
            if !steps.iter().any(|s| matches!(s, Step::Notify(_))) && self.r.errors.len() == before
            {
                self.r
                    .error(item.span(), &steps_key, "no step notifies anyone");
            }
            if repeat > 1 && !steps.iter().any(|s| matches!(s, Step::Wait(_))) {
                self.r.error(
                    item.span(),
                    &steps_key,
                    "a chain that repeats needs a `wait` step, or every round would page at once",
                );
            }
            let Some(name) = name else { continue };
            if out.contains_key(&name) {
                self.r.error(
                    item.span(),
                    &name_key,
                    format!("escalation `{name}` is declared twice"),
                );
                continue;
            }
            let line = self.r.line(item.span().start);
            out.insert(
                name.clone(),
                Escalation {
                    name,
                    steps,
                    repeat,
                    ack_timeout,
                    line,
                },
            );
        }
        out
    }

    fn automations(&mut self, v: &Entry<'_>) -> Vec<Automation> {
        let mut out: Vec<Automation> = Vec::new();
        for it in self.r.tables(v, "automations", &AUTOMATION_KEYS) {
            let before = self.r.errors.len();
            let (item, f) = (it.entry, &it.fields);
            let key = |k: &str| it.key(k);
            let required = |r: &mut Reader<'_>, field: &str| match f.get(field) {
                Some(x) => r.string(x, &key(field)),
                None => {
                    r.error(item.span(), &key(field), "missing");
                    None
                }
            };
            let name = self.r.item_name(&it);
            let action = required(&mut self.r, "action");
            let run_as = required(&mut self.r, "run_as");
            let matchers = match f.get("matchers") {
                Some(m) => self.r.matchers(m, &key("matchers")),
                None => {
                    self.r.error(
                        item.span(),
                        &key("matchers"),
                        "missing (a rule for every alert is a mistake waiting to happen)",
                    );
                    None
                }
            };
            let mut params = BTreeMap::new();
            if let Some(p) = f.get("params")
                && let Some(t) = self.r.table(p, &key("params"))
            {
                for (pname, value) in t.iter() {
                    let pkey = join(&key("params"), pname.get_ref());
                    if let Some(template) = self.r.string(value, &pkey) {
                        if let Err(e) = check_template(&template) {
                            self.r
                                .error(value.span(), &pkey, format!("not a template: {e}"));
                        }
                        params.insert(pname.get_ref().to_string(), template);
                    }
                }
            }
            let delay = f
                .get("delay")
                .and_then(|d| self.r.duration(d, &key("delay"), false))
                .unwrap_or_default();
            let rate_limit = f
                .get("rate_limit")
                .and_then(|d| self.r.duration(d, &key("rate_limit"), false))
                .unwrap_or(DEFAULT_RATE_LIMIT);
            if let (Some(name), Some(action), Some(run_as), Some(matchers)) =
                (name, action, run_as, matchers)
            {
                if out.iter().any(|a| a.name == name) {
                    self.r.error(
                        item.span(),
                        &key("name"),
                        format!("automation `{name}` is declared twice"),
                    );
                } else if self.r.errors.len() == before {
                    out.push(Automation {
                        name,
                        matchers,
                        action,
                        params,
                        delay,
                        rate_limit,
                        run_as,
                        line: self.r.line(item.span().start),
                    });
                }
            }
        }
        out
    }

    fn step(&mut self, v: &Entry<'_>, path: &str) -> Option<Step> {
        let table = self.r.table(v, path)?;
        let f = self.r.fields(table, path, &STEP_KEYS);
        match (f.get("notify"), f.get("wait")) {
            (Some(n), None) => {
                let key = join(path, "notify");
                let names = self.r.strings(n, &key)?;
                if names.is_empty() {
                    self.r.error(n.span(), &key, "name at least one receiver");
                    return None;
                }
                for (k, (name, span)) in names.iter().enumerate() {
                    self.refs.push(Reference {
                        kind: RefKind::Receiver,
                        name: name.clone(),
                        key: format!("{key}[{k}]"),
                        span: span.clone(),
                    });
                }
                Some(Step::Notify(names.into_iter().map(|(n, _)| n).collect()))
            }
            (None, Some(w)) => self
                .r
                .duration(w, &join(path, "wait"), true)
                .map(Step::Wait),
            _ => {
                self.r.error(
                    v.span(),
                    path,
                    "a step is either `notify = [...]` or `wait = \"10m\"`",
                );
                None
            }
        }
    }

    fn time_intervals(&mut self, v: &Entry<'_>) -> BTreeMap<String, TimeInterval> {
        let mut out = BTreeMap::new();
        for it in self.r.tables(v, "time_intervals", &INTERVAL_KEYS) {
            let (item, path, f) = (it.entry, &it.path, &it.fields);
            let name_key = it.key("name");
            let name = self.r.item_name(&it);
            let mut periods = Vec::new();
            if let Some(p) = f.get("time_intervals") {
                let key = join(path, "time_intervals");
                for (j, period) in self.r.array(p, &key).unwrap_or_default().iter().enumerate() {
                    periods.extend(self.period(period, &format!("{key}[{j}]")));
                }
            }
            let Some(name) = name else { continue };
            if out.contains_key(&name) {
                self.r.error(
                    item.span(),
                    &name_key,
                    format!("time interval `{name}` is declared twice"),
                );
                continue;
            }
            let line = self.r.line(item.span().start);
            out.insert(
                name.clone(),
                TimeInterval {
                    name,
                    periods,
                    line,
                },
            );
        }
        out
    }

    fn period(&mut self, v: &Entry<'_>, path: &str) -> Option<TimePeriod> {
        let before = self.r.errors.len();
        let table = self.r.table(v, path)?;
        let f = self.r.fields(table, path, &PERIOD_KEYS);
        let mut p = TimePeriod::default();
        if let Some(times) = f.get("times") {
            let key = join(path, "times");
            for (i, t) in self
                .r
                .array(times, &key)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let tkey = format!("{key}[{i}]");
                let Some(tt) = self.r.table(t, &tkey) else {
                    continue;
                };
                let tf = self.r.fields(tt, &tkey, &TIMES_KEYS);
                let (Some(s), Some(e)) = (tf.get("start_time"), tf.get("end_time")) else {
                    self.r.error(
                        t.span(),
                        &tkey,
                        "needs `start_time` and `end_time` (`HH:MM`)",
                    );
                    continue;
                };
                let (Some(s), Some(e)) = (self.r.string(s, &tkey), self.r.string(e, &tkey)) else {
                    continue;
                };
                match ti::parse_time_range(&s, &e) {
                    Ok(r) => p.times.push(r),
                    Err(m) => self.r.error(t.span(), &tkey, m),
                }
            }
        }
        type RangeParser = fn(&str) -> Result<ti::InclusiveRange, String>;
        let ranges: [(&str, RangeParser); 4] = [
            ("weekdays", ti::parse_weekdays),
            ("days_of_month", ti::parse_days_of_month),
            ("months", ti::parse_months),
            ("years", ti::parse_years),
        ];
        for (field, parse) in ranges {
            let Some(list) = f.get(field) else { continue };
            let key = join(path, field);
            let mut parsed = Vec::new();
            for (i, item) in self
                .r
                .array(list, &key)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let ikey = format!("{key}[{i}]");
                let text = match item.get_ref() {
                    DeValue::String(s) => s.to_string(),
                    DeValue::Integer(n) => n.as_str().to_owned(),
                    other => {
                        let found = other.type_str();
                        self.r.error(
                            item.span(),
                            &ikey,
                            format!("must be a string or an integer, not {found}"),
                        );
                        continue;
                    }
                };
                match parse(&text) {
                    Ok(r) => parsed.push(r),
                    Err(m) => self.r.error(item.span(), &ikey, m),
                }
            }
            match field {
                "weekdays" => p.weekdays = parsed,
                "days_of_month" => p.days_of_month = parsed,
                "months" => p.months = parsed,
                _ => p.years = parsed,
            }
        }
        if let Some(l) = f.get("location") {
            let key = join(path, "location");
            if let Some(text) = self.r.string(l, &key) {
                match Location::parse(&text) {
                    Ok(loc) => p.location = loc,
                    Err(m) => self.r.error(l.span(), &key, m),
                }
            }
        }
        (self.r.errors.len() == before).then_some(p)
    }
}
