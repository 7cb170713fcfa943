//! Aggregation and the notification decision, with Alertmanager's
//! documented behaviour: a group resolved within `group_wait` sends
//! nothing; a new alert in a group sends; all resolved sends a resolved
//! notice; a group repeats after `repeat_interval`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{at, ls};
use crate::alerts::aggregation::{Aggregator, Alert, GroupId, Integration, LogEntry, Mutes};
use crate::alerts::{AlertsConfig, Matchers, Silence};
use crate::ids::Timestamp;

const CONFIG: &str = r#"
[route]
receiver = "ops"
group_by = ["alertname"]
group_wait = "30s"
group_interval = "5m"
repeat_interval = "4h"

[[route.routes]]
matchers = ['severity="page"']
receiver = "pager"
continue = true

[[route.routes]]
matchers = ['team="db"']
receiver = "db"
mute_time_intervals = ["never"]

[[receivers]]
name = "ops"
[[receivers]]
name = "pager"
[[receivers]]
name = "db"

[[time_intervals]]
name = "never"
[[time_intervals.time_intervals]]
years = ["1999"]
"#;

/// The aggregator and what each receiver was told, as the engine keeps
/// them.
struct Harness {
    config: AlertsConfig,
    agg: Aggregator,
    log: BTreeMap<GroupId, LogEntry>,
    silences: Vec<Silence>,
    send_resolved: bool,
}

impl Harness {
    fn new() -> Self {
        Self {
            config: AlertsConfig::parse(CONFIG).unwrap(),
            agg: Aggregator::new(),
            log: BTreeMap::new(),
            silences: Vec::new(),
            send_resolved: true,
        }
    }

    fn fire(&mut self, labels: &[(&str, &str)], starts: Timestamp, now: Timestamp) {
        self.put(labels, starts, None, now);
    }

    fn resolve(&mut self, labels: &[(&str, &str)], starts: Timestamp, now: Timestamp) {
        self.put(labels, starts, Some(now), now);
    }

    fn put(
        &mut self,
        labels: &[(&str, &str)],
        starts: Timestamp,
        ends: Option<Timestamp>,
        now: Timestamp,
    ) {
        let labels = ls(labels);
        let alert = Alert {
            fingerprint: labels.fingerprint(),
            labels,
            annotations: BTreeMap::new(),
            starts_at: starts,
            ends_at: ends,
            updated_at: now,
            generator_url: None,
        };
        self.agg.insert(&self.config.route, Arc::new(alert), now);
    }

    /// Flushes every group due at `now`, as the engine's timer does;
    /// returns, per receiver, the status and alert names it was sent.
    fn tick(&mut self, now: Timestamp) -> Vec<(String, String, Vec<String>)> {
        let firing = self.agg.firing_labels(now);
        let inhibitor = self.config.inhibitor();
        let mut sent = Vec::new();
        for id in self.agg.due(now) {
            let route_muted = self
                .agg
                .group(&id)
                .is_some_and(|g| self.config.is_muted_options(&g.options, now));
            let mutes = Mutes {
                silences: &self.silences,
                inhibitor: &inhibitor,
                firing: &firing,
                route_muted,
            };
            let integration = Integration {
                last: self.log.get(&id),
                send_resolved: self.send_resolved,
            };
            let mut flush = self.agg.flush(&id, now, &mutes, &[integration]);
            let decision = flush.decisions.remove(0);
            if let Some(entry) = decision.log {
                self.log.insert(id.clone(), entry);
            }
            if let Some(n) = decision.notification {
                let mut names: Vec<String> = n
                    .firing
                    .iter()
                    .chain(&n.resolved)
                    .map(|a| {
                        let state = if a.is_resolved_at(now) { "-" } else { "+" };
                        format!("{state}{}", a.labels.value("instance"))
                    })
                    .collect();
                names.sort();
                sent.push((id.receiver.clone(), n.status().to_owned(), names));
            }
        }
        sent
    }
}

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn sent(receiver: &str, status: &str, alerts: &[&str]) -> (String, String, Vec<String>) {
    (
        receiver.to_owned(),
        status.to_owned(),
        alerts.iter().map(|a| (*a).to_owned()).collect(),
    )
}

const DISK_A: &[(&str, &str)] = &[("alertname", "Disk"), ("instance", "a")];
const DISK_B: &[(&str, &str)] = &[("alertname", "Disk"), ("instance", "b")];

#[test]
fn a_group_waits_group_wait_then_sends_its_alerts_together() {
    let mut h = Harness::new();
    let t0 = at("2026-11-25T10:00:00Z");
    h.fire(DISK_A, t0, t0);
    h.fire(DISK_B, t0.after(s(10)), t0.after(s(10)));
    assert!(
        h.tick(t0.after(s(29))).is_empty(),
        "nothing before group_wait"
    );
    assert_eq!(
        h.tick(t0.after(s(30))),
        vec![sent("ops", "firing", &["+a", "+b"])]
    );
    // Nothing changed: nothing until the repeat interval.
    for minutes in [5, 10, 60, 235] {
        assert!(h.tick(t0.after(s(30 + minutes * 60))).is_empty());
    }
}

#[test]
fn a_group_resolved_within_group_wait_sends_nothing() {
    let mut h = Harness::new();
    let t0 = at("2026-11-25T10:00:00Z");
    h.fire(DISK_A, t0, t0);
    h.resolve(DISK_A, t0, t0.after(s(20)));
    assert!(h.tick(t0.after(s(30))).is_empty());
    assert!(h.agg.is_empty(), "the group ended");
    assert!(h.log.is_empty());
}

#[test]
fn a_new_alert_in_a_group_sends_at_the_next_group_interval() {
    let mut h = Harness::new();
    let t0 = at("2026-11-25T10:00:00Z");
    h.fire(DISK_A, t0, t0);
    assert_eq!(h.tick(t0.after(s(30))).len(), 1);
    h.fire(DISK_B, t0.after(s(60)), t0.after(s(60)));
    assert!(
        h.tick(t0.after(s(120))).is_empty(),
        "waits for group_interval"
    );
    assert_eq!(
        h.tick(t0.after(s(330))),
        vec![sent("ops", "firing", &["+a", "+b"])]
    );
}

#[test]
fn all_resolved_sends_a_resolved_notice_and_ends_the_group() {
    let mut h = Harness::new();
    let t0 = at("2026-11-25T10:00:00Z");
    h.fire(DISK_A, t0, t0);
    h.fire(DISK_B, t0, t0);
    h.tick(t0.after(s(30)));
    // One resolves: with send_resolved the receiver hears of it.
    h.resolve(DISK_A, t0, t0.after(s(100)));
    assert_eq!(
        h.tick(t0.after(s(330))),
        vec![sent("ops", "firing", &["+b", "-a"])]
    );
    h.resolve(DISK_B, t0, t0.after(s(400)));
    assert_eq!(
        h.tick(t0.after(s(630))),
        vec![sent("ops", "resolved", &["-b"])]
    );
    assert!(h.agg.is_empty());
}

#[test]
fn without_send_resolved_only_the_all_clear_is_logged_and_nothing_listed() {
    let mut h = Harness::new();
    h.send_resolved = false;
    let t0 = at("2026-11-25T10:00:00Z");
    h.fire(DISK_A, t0, t0);
    h.fire(DISK_B, t0, t0);
    h.tick(t0.after(s(30)));
    h.resolve(DISK_A, t0, t0.after(s(100)));
    assert!(
        h.tick(t0.after(s(330))).is_empty(),
        "a resolved alert alone"
    );
    h.resolve(DISK_B, t0, t0.after(s(400)));
    assert!(h.tick(t0.after(s(630))).is_empty());
    let id = GroupId {
        key: "{}:{alertname=\"Disk\"}".into(),
        receiver: "ops".into(),
    };
    assert!(h.log[&id].firing.is_empty(), "the log says all resolved");
}

#[test]
fn an_unchanged_group_repeats_after_repeat_interval() {
    let mut h = Harness::new();
    let t0 = at("2026-11-25T10:00:00Z");
    h.fire(DISK_A, t0, t0);
    h.tick(t0.after(s(30)));
    let mut repeats = Vec::new();
    // Flushes every 5 minutes for 9 hours; the alert is renewed meanwhile.
    for n in 1..=108 {
        let now = t0.after(s(30 + n * 300));
        if !h.tick(now).is_empty() {
            repeats.push((now.micros() - t0.micros()) / 1_000_000);
        }
    }
    assert_eq!(repeats, vec![30 + 4 * 3600, 30 + 8 * 3600]);
}

#[test]
fn an_alert_that_started_long_ago_is_sent_without_waiting() {
    let mut h = Harness::new();
    let now = at("2026-11-25T10:00:00Z");
    h.fire(DISK_A, now.before(s(3600)), now);
    assert_eq!(h.tick(now), vec![sent("ops", "firing", &["+a"])]);
}

#[test]
fn continue_sends_to_each_matching_route_in_its_own_group() {
    let mut h = Harness::new();
    let t0 = at("2026-11-25T10:00:00Z");
    h.fire(
        &[
            ("alertname", "Down"),
            ("instance", "a"),
            ("severity", "page"),
        ],
        t0,
        t0,
    );
    // `pager` continues, and no later sibling matches: the root is not
    // taken again, so only pager hears of it.
    let mut got = h.tick(t0.after(s(30)));
    got.sort();
    assert_eq!(got, vec![sent("pager", "firing", &["+a"])]);
    h.fire(
        &[
            ("alertname", "Lag"),
            ("instance", "b"),
            ("severity", "page"),
            ("team", "web"),
        ],
        t0.after(s(40)),
        t0.after(s(40)),
    );
    assert_eq!(
        h.tick(t0.after(s(70))),
        vec![sent("pager", "firing", &["+b"])]
    );
}

#[test]
fn silenced_and_inhibited_alerts_are_held_back() {
    let mut h = Harness::new();
    let t0 = at("2026-11-25T10:00:00Z");
    h.silences.push(Silence {
        id: "s1".into(),
        matchers: Matchers::parse(r#"instance="a""#).unwrap(),
        starts_at: t0,
        ends_at: t0.after(s(3600)),
        created_by: "alice".into(),
        comment: "replacing the disk".into(),
    });
    h.fire(DISK_A, t0, t0);
    assert!(h.tick(t0.after(s(30))).is_empty(), "silenced");
    h.fire(DISK_B, t0.after(s(60)), t0.after(s(60)));
    assert_eq!(
        h.tick(t0.after(s(330))),
        vec![sent("ops", "firing", &["+b"])]
    );
    // The silence ends: the alert it held back is news.
    assert_eq!(
        h.tick(t0.after(s(3630))),
        vec![sent("ops", "firing", &["+a", "+b"])]
    );

    // Inhibition: a critical alert mutes the warning of the same instance.
    let mut h = Harness::new();
    h.config.inhibit_rules = AlertsConfig::parse(&format!(
        "{CONFIG}\n[[inhibit_rules]]\nsource_matchers = ['severity=\"critical\"']\n\
         target_matchers = ['severity=\"warning\"']\nequal = [\"instance\"]\n"
    ))
    .unwrap()
    .inhibit_rules;
    h.fire(
        &[
            ("alertname", "Up"),
            ("instance", "a"),
            ("severity", "critical"),
        ],
        t0,
        t0,
    );
    h.fire(
        &[
            ("alertname", "Slow"),
            ("instance", "a"),
            ("severity", "warning"),
        ],
        t0,
        t0,
    );
    h.fire(
        &[
            ("alertname", "Slow"),
            ("instance", "b"),
            ("severity", "warning"),
        ],
        t0,
        t0,
    );
    let mut got = h.tick(t0.after(s(30)));
    got.sort();
    assert_eq!(
        got,
        vec![
            sent("ops", "firing", &["+a"]),
            sent("ops", "firing", &["+b"])
        ]
    );
}

#[test]
fn a_muted_route_sends_nothing_and_logs_nothing() {
    let mut h = Harness::new();
    let t0 = at("2026-11-25T10:00:00Z");
    // Active only in an interval that never holds: always muted.
    let config = CONFIG.replace("mute_time_intervals", "active_time_intervals");
    h.config = AlertsConfig::parse(&config).unwrap();
    h.fire(
        &[("alertname", "Lag"), ("instance", "a"), ("team", "db")],
        t0,
        t0,
    );
    assert!(h.tick(t0.after(s(30))).is_empty());
    assert!(h.log.is_empty());
    assert_eq!(h.agg.len(), 1, "the group stays, muted");

    let mut h = Harness::new();
    h.fire(
        &[("alertname", "Lag"), ("instance", "a"), ("team", "db")],
        t0,
        t0,
    );
    assert_eq!(
        h.tick(t0.after(s(30))),
        vec![sent("db", "firing", &["+a"])],
        "a mute interval that does not hold mutes nothing"
    );
}

#[test]
fn a_resolved_alert_that_fires_again_is_news() {
    let mut h = Harness::new();
    let t0 = at("2026-11-25T10:00:00Z");
    h.fire(DISK_A, t0, t0);
    h.tick(t0.after(s(30)));
    h.resolve(DISK_A, t0, t0.after(s(60)));
    assert_eq!(
        h.tick(t0.after(s(330))),
        vec![sent("ops", "resolved", &["-a"])]
    );
    let again = t0.after(s(400));
    h.fire(DISK_A, again, again);
    assert_eq!(
        h.tick(again.after(s(30))),
        vec![sent("ops", "firing", &["+a"])]
    );
}
