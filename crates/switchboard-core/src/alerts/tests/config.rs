use super::{at, ls};
use crate::alerts::AlertsConfig;
use crate::catalog::CatalogError;

fn errors(text: &str) -> Vec<CatalogError> {
    AlertsConfig::parse(text).unwrap_err()
}

/// `line key: message` of every error.
fn lines(text: &str) -> Vec<String> {
    errors(text)
        .iter()
        .map(|e| {
            format!(
                "{} {}: {}",
                e.line.unwrap_or(0),
                e.key.as_deref().unwrap_or(""),
                e.message
            )
        })
        .collect()
}

fn has(all: &[String], needle: &str) -> bool {
    all.iter().any(|e| e.contains(needle))
}

#[test]
fn every_problem_with_line_and_key() {
    let text = r#"[route]
receiver = "nobody"
group_by = ["...", "alertname"]
group_interval = "0s"
repeat_intervl = "4h"
matchers = ['a="1"']

[[route.routes]]
matchers = ['severity="critical"', 'x=~"("']
mute_time_intervals = ["never-declared"]

[[route.routes]]
receiver = "ops"
group_by = ["bad-name", "a", "a"]
continue = "yes"

[[receivers]]
name = "ops"
[[receivers]]
name = "ops"
[[receivers]]
room = "x"
"#;
    let all = lines(text);
    for expected in [
        "2 route.receiver: unknown receiver (declare it in `[[receivers]]`): `nobody`",
        "3 route.group_by: `...`",
        "4 route.group_interval: must not be zero",
        "5 route.repeat_intervl: unknown key (did you mean `repeat_interval`?)",
        "6 route.matchers: the root route must not have matchers",
        "9 route.routes[0].matchers[1]: `x=~\"(\"`: column 4: invalid regular expression",
        "10 route.routes[0].mute_time_intervals[0]: unknown time interval",
        "14 route.routes[1].group_by[0]: `bad-name` is not a valid label name",
        "14 route.routes[1].group_by[2]: `a` is listed twice",
        "15 route.routes[1].continue: must be true or false",
        "19 receivers[1].name: receiver `ops` is declared twice",
        "21 receivers[2].name: missing",
    ] {
        assert!(has(&all, expected), "missing {expected:?} in {all:#?}");
    }
    assert!(
        errors(text)
            .iter()
            .all(|e| e.file.to_str() == Some("alerts.toml"))
    );
    let sorted = {
        let mut l: Vec<_> = errors(text).iter().map(|e| e.line).collect();
        l.sort();
        l
    };
    assert_eq!(
        errors(text).iter().map(|e| e.line).collect::<Vec<_>>(),
        sorted
    );
}

#[test]
fn root_rules() {
    let all = lines("[route]\ncontinue = true\nactive_time_intervals = []\n");
    assert!(has(&all, "route.receiver: missing"), "{all:#?}");
    assert!(
        has(
            &all,
            "2 route.continue: the root route cannot have `continue`"
        ),
        "{all:#?}"
    );
    assert!(
        has(&all, "3 route.active_time_intervals: the root route cannot"),
        "{all:#?}"
    );
    assert!(has(&lines(""), "route: missing"));
    assert!(has(
        &lines("[route]\nreceiver = \"r\"\n[[receivers]]\nname = \"r\"\n[extra]\n"),
        "5 extra: unknown key"
    ));
    assert!(has(&lines("route = 1\n"), "1 route: must be a table"));
    assert!(has(&lines("[route\n"), "invalid TOML"));
}

#[test]
fn receivers_read_their_integrations() {
    let c = AlertsConfig::parse(
        r#"
[route]
receiver = "ops"

[[receivers]]
name = "ops"
[[receivers.webhook_configs]]
url = "https://hooks.example.com/a"
hmac_secret = "env:HOOK"
[[receivers.webhook_configs]]
url = "http://127.0.0.1:9/b"
send_resolved = false
max_alerts = 10

[[receivers]]
name = "blackhole"
"#,
    )
    .unwrap();
    let ops = c.receiver("ops").unwrap();
    assert_eq!(ops.line, 5);
    let hooks = &ops.integrations.webhook_configs;
    assert_eq!(hooks.len(), 2);
    assert!(hooks[0].send_resolved, "webhooks send resolved by default");
    assert_eq!(
        hooks[0].hmac_secret.as_ref().unwrap().to_string(),
        "env:HOOK"
    );
    assert!(!hooks[1].send_resolved);
    assert_eq!(hooks[1].max_alerts, 10);
    let names: Vec<_> = ops
        .integrations
        .list()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["webhook[0]", "webhook[1]"]);
    assert!(
        c.receiver("blackhole")
            .unwrap()
            .integrations
            .list()
            .is_empty()
    );
    assert!(c.receiver("nobody").is_none());

    let bad = |body: &str| {
        lines(&format!(
            "[route]\nreceiver = \"r\"\n[[receivers]]\nname = \"r\"\n{body}"
        ))
    };
    assert!(has(
        &bad("room = \"x\"\n"),
        "3 receivers[0]: unknown field `room`"
    ));
    assert!(has(
        &bad("[[receivers.webhook_configs]]\nurl = \"ftp://x\"\n"),
        "receivers[0]: webhook_configs[0].url: `ftp://x` is not an http"
    ));
    assert!(has(
        &bad("[[receivers.webhook_configs]]\nurl = \"https://x\"\nhmac_secret = \"hunter2\"\n"),
        "never the secret itself"
    ));
    let email = |body: &str| bad(&format!("[[receivers.email_configs]]\n{body}"));
    assert!(has(
        &email("to = []\nfrom = \"a@b\"\nsmarthost = \"h:25\"\n"),
        "email_configs[0].to: name at least one address"
    ));
    assert!(has(
        &email("to = [\"ops\"]\nfrom = \"a@b\"\nsmarthost = \"h:25\"\n"),
        "email_configs[0].to: `ops` is not an email address"
    ));
    assert!(has(
        &email("to = [\"o@x\"]\nfrom = \"a@b\"\nsmarthost = \"h\"\n"),
        "email_configs[0].smarthost: `h` is not `host:port`"
    ));
    assert!(has(
        &email("to = [\"o@x\"]\nfrom = \"a@b\"\nsmarthost = \"h:25\"\nauth_username = \"u\"\n"),
        "auth_username and auth_password go together"
    ));
    assert!(has(
        &bad("[[receivers.pagerduty_configs]]\nrouting_key = \"env:K\"\nseverity = \"high\"\n"),
        "pagerduty_configs[0].severity: `high` is not one of critical, error, warning, info"
    ));
    assert!(has(
        &bad("[[receivers.pagerduty_configs]]\nrouting_key = \"R0UT1NG\"\n"),
        "never the secret itself"
    ));
    assert!(has(
        &bad("[[receivers.opsgenie_configs]]\napi_key = \"env:K\"\npriority = \"P9\"\n"),
        "opsgenie_configs[0].priority: `P9` is not P1 to P5"
    ));
    assert!(has(
        &bad("[[receivers.chat_configs]]\nplatform = \"slack\"\nroom = \"#ops room\"\n"),
        "chat_configs[0].room: `#ops room` is not a room id"
    ));
    assert!(has(
        &bad("[[receivers.chat_configs]]\nplatform = \"slack\"\n"),
        "missing field `room`"
    ));
    let chat = AlertsConfig::parse(
        "[route]\nreceiver = \"r\"\n[[receivers]]\nname = \"r\"\n[[receivers.chat_configs]]\n\
         platform = \"mattermost\"\nroom = \"opsroom01\"\n",
    )
    .unwrap();
    let list = chat.receiver("r").unwrap().integrations.list();
    assert_eq!(list[0].0, "chat[0]");
    assert!(
        list[0].1.send_resolved(),
        "chat tells resolved groups by default"
    );
    let ok = AlertsConfig::parse(
        "[route]\nreceiver = \"r\"\n[[receivers]]\nname = \"r\"\n[[receivers.email_configs]]\n\
         to = [\"o@x.org\"]\nfrom = \"sb@x.org\"\nsmarthost = \"mail.x.org:587\"\n",
    )
    .unwrap();
    let list = ok.receiver("r").unwrap().integrations.list();
    assert_eq!(list[0].0, "email[0]");
    assert!(
        !list[0].1.send_resolved(),
        "email sends no resolved notices by default"
    );
}

#[test]
fn inhibit_rules_and_time_intervals_are_checked() {
    let all = lines(
        r#"[route]
receiver = "r"
[[receivers]]
name = "r"
[[inhibit_rules]]
source_matchers = ['severity="critical"']
equal = ["a-b"]
[[inhibit_rules]]
source_matchers = ['severity="critical"']
target_matchers = ['severity="warning"']
sources = []
[[time_intervals]]
name = "x"
[[time_intervals.time_intervals]]
weekdays = ["saturday:sunday"]
days_of_month = [0, "-1:3"]
times = [{ start_time = "18:00", end_time = "09:00" }, { start = "1" }]
location = "Europe/Berlin"
[[time_intervals]]
name = "x"
"#,
    );
    for expected in [
        "5 inhibit_rules[0].target_matchers: missing",
        "7 inhibit_rules[0].equal[0]: `a-b` is not a valid label name",
        "11 inhibit_rules[1].sources: unknown key",
        "15 time_intervals[0].time_intervals[0].weekdays[0]: `saturday:sunday`",
        "16 time_intervals[0].time_intervals[0].days_of_month[0]: `0` is not a day of the month",
        "16 time_intervals[0].time_intervals[0].days_of_month[1]: `-1:3`: the end day must be negative",
        "17 time_intervals[0].time_intervals[0].times[0]: start time `18:00` must be before end time `09:00`",
        "17 time_intervals[0].time_intervals[0].times[1].start: unknown key",
        "18 time_intervals[0].time_intervals[0].location: `Europe/Berlin` is not a supported location",
        "time_intervals[1].name: time interval `x` is declared twice",
    ] {
        assert!(has(&all, expected), "missing {expected:?} in {all:#?}");
    }
}

#[test]
fn mute_and_active_intervals_decide_muting() {
    let c = AlertsConfig::parse(
        r#"
[route]
receiver = "r"

[[route.routes]]
matchers = ['team="db"']
mute_time_intervals = ["weekend"]

[[route.routes]]
matchers = ['team="web"']
active_time_intervals = ["office"]

[[receivers]]
name = "r"

[[time_intervals]]
name = "weekend"
[[time_intervals.time_intervals]]
weekdays = ["saturday", "sunday"]

[[time_intervals]]
name = "office"
[[time_intervals.time_intervals]]
weekdays = ["monday:friday"]
times = [{ start_time = "09:00", end_time = "17:00" }]
location = "+01:00"
"#,
    )
    .unwrap();
    let db = c.route.match_labels(&ls(&[("team", "db")]))[0];
    let web = c.route.match_labels(&ls(&[("team", "web")]))[0];
    let root = c.route.root();
    let saturday = at("2026-11-28T12:00:00Z");
    let tuesday_noon = at("2026-11-24T11:00:00Z");
    let tuesday_evening = at("2026-11-24T16:30:00Z");
    assert!(c.is_muted(db, saturday));
    assert!(!c.is_muted(db, tuesday_noon));
    assert!(c.is_muted(web, saturday));
    assert!(!c.is_muted(web, tuesday_noon));
    assert!(c.is_muted(web, tuesday_evening), "17:30 at +01:00");
    assert!(!c.is_muted(root, saturday));
    assert_eq!(c.time_interval("office").unwrap().line, 21);
}

#[test]
fn inhibit_rules_are_read() {
    let c = AlertsConfig::parse(
        r#"
[route]
receiver = "r"
[[receivers]]
name = "r"
[[inhibit_rules]]
source_matchers = ['severity="critical"']
target_matchers = ['severity="warning"']
equal = ["alertname", "cluster"]
"#,
    )
    .unwrap();
    let inhibitor = c.inhibitor();
    assert_eq!(inhibitor.rules().len(), 1);
    assert_eq!(inhibitor.rules()[0].line, 6);
    let critical = ls(&[
        ("alertname", "A"),
        ("cluster", "x"),
        ("severity", "critical"),
    ]);
    let warning = ls(&[
        ("alertname", "A"),
        ("cluster", "x"),
        ("severity", "warning"),
    ]);
    assert_eq!(
        inhibitor.is_inhibited(&warning, std::slice::from_ref(&critical)),
        Some(critical.fingerprint())
    );
}
