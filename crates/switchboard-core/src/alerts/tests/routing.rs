use std::collections::BTreeSet;
use std::time::Duration;

use super::ls;
use crate::alerts::routing::RouteSpec;
use crate::alerts::{
    AlertsConfig, GroupBy, Matchers, Route, group_key, group_labels, pagerduty_dedup_key,
};

fn config(text: &str) -> AlertsConfig {
    AlertsConfig::parse(text).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn receivers(route: &Route, labels: &[(&str, &str)]) -> Vec<String> {
    route
        .match_labels(&ls(labels))
        .iter()
        .map(|n| n.options.receiver.clone())
        .collect()
}

fn names(list: &[&str]) -> GroupBy {
    GroupBy::Labels(list.iter().map(|s| (*s).to_owned()).collect())
}

/// The example routing tree of Alertmanager's configuration docs.
const DOCS_EXAMPLE: &str = r#"
[route]
receiver = "default-receiver"
group_wait = "30s"
group_interval = "5m"
repeat_interval = "4h"
group_by = ["cluster", "alertname"]

[[route.routes]]
receiver = "database-pager"
group_wait = "10s"
matchers = ['service=~"mysql|cassandra"']

[[route.routes]]
receiver = "frontend-pager"
group_by = ["product", "environment"]
matchers = ['team="frontend"']

[[receivers]]
name = "default-receiver"
[[receivers]]
name = "database-pager"
[[receivers]]
name = "frontend-pager"
"#;

#[test]
fn the_documented_example_routes_and_inherits() {
    let c = config(DOCS_EXAMPLE);
    let db = c
        .route
        .match_labels(&ls(&[("service", "mysql"), ("cluster", "eu")]));
    assert_eq!(db.len(), 1);
    let db = db[0];
    assert_eq!(db.options.receiver, "database-pager");
    assert_eq!(db.options.group_wait, Duration::from_secs(10));
    assert_eq!(
        db.options.group_interval,
        Duration::from_secs(300),
        "inherited"
    );
    assert_eq!(
        db.options.repeat_interval,
        Duration::from_secs(4 * 3600),
        "inherited"
    );
    assert_eq!(
        db.options.group_by,
        names(&["alertname", "cluster"]),
        "inherited"
    );
    let fe = c.route.match_labels(&ls(&[("team", "frontend")]));
    assert_eq!(fe[0].options.receiver, "frontend-pager");
    assert_eq!(fe[0].options.group_by, names(&["environment", "product"]));
    assert_eq!(fe[0].options.group_wait, Duration::from_secs(30));
    assert_eq!(
        receivers(&c.route, &[("service", "postgres")]),
        ["default-receiver"]
    );
    assert_eq!(c.route.nodes().len(), 3);
}

const CONTINUE: &str = r#"
[route]
receiver = "root"

[[route.routes]]
receiver = "a"
matchers = ['env="prod"']
continue = true

[[route.routes]]
receiver = "b"
matchers = ['env="prod"']

[[route.routes]]
receiver = "c"
matchers = ['env=~"prod|dev"']

[[route.routes]]
receiver = "d"
matchers = ['team="db"']

[[route.routes.routes]]
receiver = "d-critical"
matchers = ['severity="critical"']

[[route.routes.routes]]
matchers = ['severity="warning"']

[[receivers]]
name = "root"
[[receivers]]
name = "a"
[[receivers]]
name = "b"
[[receivers]]
name = "c"
[[receivers]]
name = "d"
[[receivers]]
name = "d-critical"
"#;

#[test]
fn continue_lets_later_siblings_match() {
    let c = config(CONTINUE);
    // `a` continues, `b` matches and stops: `c` is never tried.
    assert_eq!(receivers(&c.route, &[("env", "prod")]), ["a", "b"]);
    assert_eq!(receivers(&c.route, &[("env", "dev")]), ["c"]);
    assert_eq!(receivers(&c.route, &[("env", "test")]), ["root"]);
}

#[test]
fn a_node_whose_children_do_not_match_is_the_match() {
    let c = config(CONTINUE);
    assert_eq!(
        receivers(&c.route, &[("team", "db"), ("severity", "critical")]),
        ["d-critical"]
    );
    assert_eq!(
        receivers(&c.route, &[("team", "db"), ("severity", "info")]),
        ["d"]
    );
    // A child without a receiver inherits its parent's.
    assert_eq!(
        receivers(&c.route, &[("team", "db"), ("severity", "warning")]),
        ["d"]
    );
    let nodes = c
        .route
        .match_labels(&ls(&[("team", "db"), ("severity", "warning")]));
    assert_eq!(nodes[0].path, "route.routes[3].routes[1]");
}

#[test]
fn group_by_all_and_inheritance() {
    let c = config(
        r#"
[route]
receiver = "r"
group_by = ["alertname"]
[[route.routes]]
matchers = ['a="1"']
group_by = ["..."]
[[route.routes.routes]]
matchers = ['b="1"']
[[route.routes]]
matchers = ['a="2"']
group_by = []
[[receivers]]
name = "r"
"#,
    );
    let labels = ls(&[("a", "1"), ("b", "1"), ("alertname", "X"), ("job", "j")]);
    let node = c.route.match_labels(&labels)[0];
    assert_eq!(
        node.options.group_by,
        GroupBy::All,
        "inherited from the parent"
    );
    assert_eq!(group_labels(node, &labels), labels);
    let labels2 = ls(&[("a", "2"), ("alertname", "X"), ("job", "j")]);
    let node2 = c.route.match_labels(&labels2)[0];
    assert_eq!(
        node2.options.group_by,
        names(&["alertname"]),
        "an empty group_by inherits"
    );
    assert_eq!(group_labels(node2, &labels2), ls(&[("alertname", "X")]));
    // Grouping labels the alert lacks are left out.
    let root = c.route.root();
    assert_eq!(group_labels(root, &ls(&[("job", "j")])), ls(&[]));
}

#[test]
fn group_keys_are_alertmanagers() {
    let c = config(
        r#"
[route]
receiver = "r"
group_by = ["alertname", "job"]
[[route.routes]]
matchers = ['team=~"db|storage"']
group_by = ["alertname"]
[[route.routes.routes]]
matchers = ['severity="critical"', 'alertname!="Watchdog", env="prod"']
[[receivers]]
name = "r"
"#,
    );
    let root = c.route.root();
    assert_eq!(root.key(), "{}");
    let test = ls(&[
        ("alertname", "Test"),
        ("job", "prometheus24"),
        ("instance", "x"),
    ]);
    let key = group_key(root, &test);
    assert_eq!(key, r#"{}:{alertname="Test", job="prometheus24"}"#);
    // The example of the fixtures' README: Alertmanager's PagerDuty dedup key.
    assert_eq!(
        pagerduty_dedup_key(&key),
        "a5fe28054b7a950fa6ecf2a932a263bf219836f700d4794986438620d8a6866f"
    );
    // The group key of the webhook sample.
    let disk = ls(&[
        ("alertname", "DiskFull"),
        ("instance", "db-1:9100"),
        ("job", "node"),
        ("severity", "critical"),
        ("team", "db"),
    ]);
    let team = &root.routes[0];
    assert_eq!(
        group_key(team, &disk),
        r#"{}/{team=~"db|storage"}:{alertname="DiskFull"}"#
    );
    // Matchers are sorted, whatever order they were written in.
    let nested = &team.routes[0];
    assert_eq!(
        nested.key(),
        r#"{}/{team=~"db|storage"}/{alertname!="Watchdog",env="prod",severity="critical"}"#
    );
    assert_eq!(
        nested.group_key(&disk),
        format!("{}:{{alertname=\"DiskFull\"}}", nested.key())
    );
}

#[test]
fn time_intervals_are_not_inherited() {
    let c = config(
        r#"
[route]
receiver = "r"
[[route.routes]]
matchers = ['a="1"']
mute_time_intervals = ["night"]
active_time_intervals = ["week"]
[[route.routes.routes]]
matchers = ['b="1"']
[[receivers]]
name = "r"
[[time_intervals]]
name = "night"
[[time_intervals]]
name = "week"
"#,
    );
    let parent = &c.route.root().routes[0];
    assert_eq!(parent.options.mute_time_intervals, ["night"]);
    assert_eq!(parent.options.active_time_intervals, ["week"]);
    let child = &parent.routes[0];
    assert!(child.options.mute_time_intervals.is_empty());
    assert!(child.options.active_time_intervals.is_empty());
}

#[test]
fn routes_built_without_a_file() {
    let route = Route::new(RouteSpec {
        receiver: Some("r".to_owned()),
        routes: vec![RouteSpec {
            matchers: Matchers::parse("x=1").unwrap(),
            group_by: Some(GroupBy::Labels(BTreeSet::from(["x".to_owned()]))),
            ..RouteSpec::default()
        }],
        ..RouteSpec::default()
    });
    let node = route.match_labels(&ls(&[("x", "1")]))[0];
    assert_eq!(node.options.receiver, "r");
    assert_eq!(node.options.group_wait, Duration::from_secs(30));
    assert_eq!(node.group_key(&ls(&[("x", "1")])), r#"{}/{x="1"}:{x="1"}"#);
}

#[test]
fn alertmanagers_older_match_and_match_re_read_as_matchers() {
    let older = config(
        r#"
[route]
receiver = "r"
[[route.routes]]
receiver = "db"
match = { team = "db", severity = "critical" }
match_re = { service = "^(mysql|postgres)$" }
[[receivers]]
name = "r"
[[receivers]]
name = "db"

[[inhibit_rules]]
source_match = { severity = "critical" }
target_match_re = { severity = "warning|info" }
equal = ["team"]
"#,
    );
    let newer = config(
        r#"
[route]
receiver = "r"
[[route.routes]]
receiver = "db"
matchers = ['team="db"', 'severity="critical"', 'service=~"^(mysql|postgres)$"']
[[receivers]]
name = "r"
[[receivers]]
name = "db"

[[inhibit_rules]]
source_matchers = ['severity="critical"']
target_matchers = ['severity=~"warning|info"']
equal = ["team"]
"#,
    );
    assert_eq!(
        older.route.root().routes[0].matchers.to_string(),
        newer.route.root().routes[0].matchers.to_string()
    );
    let postgres = [
        ("team", "db"),
        ("severity", "critical"),
        ("service", "postgres"),
    ];
    assert_eq!(receivers(&older.route, &postgres), ["db"]);
    // Anchored, as Alertmanager anchors `match_re`.
    let not_quite = [
        ("team", "db"),
        ("severity", "critical"),
        ("service", "postgres-exporter"),
    ];
    assert_eq!(receivers(&older.route, &not_quite), ["r"]);
    let rule = |c: &AlertsConfig| {
        let r = &c.inhibit_rules[0];
        (r.source_matchers.to_string(), r.target_matchers.to_string())
    };
    assert_eq!(rule(&older), rule(&newer));

    // Still checked: a label name that is not one, a value that is not text.
    let bad = AlertsConfig::parse(
        "[route]\nreceiver = \"r\"\n[[route.routes]]\nmatch = { \"bad-name\" = \"x\", n = 1 }\n[[receivers]]\nname = \"r\"\n",
    )
    .unwrap_err();
    let said: Vec<String> = bad.iter().map(ToString::to_string).collect();
    assert!(
        said.iter()
            .any(|e| e.contains("route.routes[0].match.bad-name")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|e| e.contains("route.routes[0].match.n: must be a string")),
        "{said:?}"
    );
}
