use std::collections::BTreeSet;

use super::ls;
use crate::alerts::{InhibitRule, Inhibitor, Matchers};

fn rule(source: &str, target: &str, equal: &[&str]) -> InhibitRule {
    InhibitRule {
        source_matchers: Matchers::parse(source).unwrap(),
        target_matchers: Matchers::parse(target).unwrap(),
        equal: equal
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>(),
        line: 0,
    }
}

/// The documented example: a critical alert inhibits warnings of the same
/// alert name in the same cluster.
#[test]
fn critical_inhibits_warning_with_equal_labels() {
    let inhibitor = Inhibitor::new(vec![rule(
        r#"severity="critical""#,
        r#"severity="warning""#,
        &["alertname", "cluster"],
    )]);
    let critical = ls(&[
        ("alertname", "Disk"),
        ("cluster", "eu"),
        ("severity", "critical"),
    ]);
    let warning_eu = ls(&[
        ("alertname", "Disk"),
        ("cluster", "eu"),
        ("severity", "warning"),
    ]);
    let warning_us = ls(&[
        ("alertname", "Disk"),
        ("cluster", "us"),
        ("severity", "warning"),
    ]);
    let firing = [critical.clone(), warning_eu.clone(), warning_us.clone()];
    assert_eq!(
        inhibitor.is_inhibited(&warning_eu, &firing),
        Some(critical.fingerprint())
    );
    assert_eq!(inhibitor.is_inhibited(&warning_us, &firing), None);
    assert_eq!(inhibitor.is_inhibited(&critical, &firing), None);
    assert_eq!(inhibitor.is_inhibited(&warning_eu, &[]), None);
}

#[test]
fn missing_on_both_sides_counts_as_equal() {
    let inhibitor = Inhibitor::new(vec![rule(
        r#"severity="critical""#,
        r#"severity="warning""#,
        &["cluster"],
    )]);
    let source = ls(&[("severity", "critical")]);
    let target = ls(&[("severity", "warning")]);
    assert!(
        inhibitor
            .is_inhibited(&target, std::slice::from_ref(&source))
            .is_some()
    );
    // Missing on one side only is not equal…
    let target_in_eu = ls(&[("severity", "warning"), ("cluster", "eu")]);
    assert!(inhibitor.is_inhibited(&target_in_eu, &[source]).is_none());
    // …but missing equals empty, since both read as "".
    let source_empty = ls(&[("severity", "critical"), ("cluster", "")]);
    assert!(inhibitor.is_inhibited(&target, &[source_empty]).is_some());
}

#[test]
fn an_alert_does_not_inhibit_itself() {
    // Both sides match the same alerts: without the two-sided rule, every
    // such alert would inhibit itself and each other.
    let inhibitor = Inhibitor::new(vec![rule(r#"team="db""#, r#"team="db""#, &[])]);
    let a = ls(&[("team", "db"), ("alertname", "A")]);
    let b = ls(&[("team", "db"), ("alertname", "B")]);
    assert_eq!(inhibitor.is_inhibited(&a, std::slice::from_ref(&a)), None);
    assert_eq!(inhibitor.is_inhibited(&a, &[a.clone(), b.clone()]), None);
    // A source that matches only the source side still inhibits such a target.
    let two_sided = Inhibitor::new(vec![rule(r#"s="1""#, r#"t="1""#, &[])]);
    let both = ls(&[("s", "1"), ("t", "1")]);
    let source_only = ls(&[("s", "1")]);
    assert_eq!(
        two_sided.is_inhibited(&both, std::slice::from_ref(&both)),
        None
    );
    assert_eq!(
        two_sided.is_inhibited(&both, &[both.clone(), source_only.clone()]),
        Some(source_only.fingerprint())
    );
}

#[test]
fn the_first_inhibiting_rule_decides() {
    let inhibitor = Inhibitor::new(vec![
        rule(
            r#"alertname="NodeDown""#,
            r#"alertname="Disk""#,
            &["instance"],
        ),
        rule(
            r#"alertname="DatacenterDown""#,
            r#"alertname=~".+""#,
            &["dc"],
        ),
    ]);
    let node_down = ls(&[
        ("alertname", "NodeDown"),
        ("instance", "db-1"),
        ("dc", "fra"),
    ]);
    let dc_down = ls(&[("alertname", "DatacenterDown"), ("dc", "fra")]);
    let disk = ls(&[("alertname", "Disk"), ("instance", "db-1"), ("dc", "fra")]);
    let firing = [dc_down.clone(), node_down.clone()];
    assert_eq!(
        inhibitor.is_inhibited(&disk, &firing),
        Some(node_down.fingerprint())
    );
    assert_eq!(
        inhibitor.is_inhibited(&node_down, &firing),
        Some(dc_down.fingerprint())
    );
    assert_eq!(inhibitor.is_inhibited(&dc_down, &firing), None);
}
