use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use super::{at, ls};
use crate::alerts::payload::{
    PayloadError, parse, parse_api_alerts, parse_generic, parse_pagerduty, parse_time,
    parse_webhook,
};
use crate::alerts::{Action, Source};
use crate::ids::Timestamp;

const WEBHOOK: &str = include_str!("alertmanager-webhook-v4.json");

fn path_of(e: PayloadError) -> String {
    e.path
}

#[test]
fn reads_the_alertmanager_webhook_sample() {
    let w = parse_webhook(WEBHOOK.as_bytes()).unwrap();
    assert_eq!(w.version.as_deref(), Some("4"));
    assert_eq!(
        w.group_key,
        r#"{}/{team=~"db|storage"}:{alertname="DiskFull"}"#
    );
    assert_eq!(w.receiver, "switchboard");
    assert_eq!(w.status, "firing");
    assert_eq!(w.external_url, "http://127.0.0.1:9093");
    assert_eq!(w.group_labels["alertname"], "DiskFull");
    assert_eq!(w.alerts.len(), 2);
    let first = &w.alerts[0];
    assert_eq!(first.source, Source::AlertmanagerWebhook);
    assert_eq!(first.action, Action::Trigger);
    assert_eq!(first.labels.get("instance"), Some("db-1:9100"));
    assert_eq!(first.annotations["description"], "/var is 97% full on db-1");
    // Nanoseconds are cut to the microseconds a Timestamp holds.
    assert_eq!(first.starts_at, Some(Timestamp(1_795_513_946_739_266)));
    assert_eq!(first.ends_at, None, "Go's zero time is no end");
    assert!(
        first
            .generator_url
            .as_deref()
            .unwrap()
            .starts_with("http://127.0.0.1:9090/graph")
    );
    // The fingerprints Alertmanager sent are the ones computed here.
    let sent: serde_json::Value = serde_json::from_str(WEBHOOK).unwrap();
    for (i, alert) in w.alerts.iter().enumerate() {
        assert_eq!(
            alert.fingerprint().to_string(),
            sent["alerts"][i]["fingerprint"].as_str().unwrap()
        );
    }
    assert_eq!(w.alerts[1].starts_at, Some(at("2026-11-24T09:53:01Z")));
}

#[test]
fn webhook_is_lenient_about_new_and_missing_fields() {
    let body = json!({
        "version": "4",
        "status": "resolved",
        "routeLabels": {"x": "y"},
        "notification_reason": "repeat",
        "commonLabels": null,
        "alerts": [
            {"labels": {"alertname": "A"}, "startsAt": "2026-01-01T00:00:00Z",
             "endsAt": "2026-01-01T01:00:00Z", "someNewField": [1, 2]},
            {"status": "firing", "labels": {"alertname": "B"}, "annotations": null}
        ]
    });
    let w = parse_webhook(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        w.alerts[0].action,
        Action::Resolve,
        "falls back to the group's status"
    );
    assert_eq!(w.alerts[0].ends_at, Some(at("2026-01-01T01:00:00Z")));
    assert_eq!(w.alerts[1].action, Action::Trigger);
    assert!(w.common_labels.is_empty());
}

#[test]
fn webhook_errors_name_the_field() {
    let bad =
        |body: serde_json::Value| path_of(parse_webhook(body.to_string().as_bytes()).unwrap_err());
    assert_eq!(
        bad(json!({"alerts": [{"labels": {"a": "b"}, "status": "exploded"}]})),
        "alerts[0].status"
    );
    assert_eq!(
        bad(json!({"alerts": [{"labels": {"a": "b"}}, {"labels": {"bad-name": "x"}}]})),
        "alerts[1].labels.bad-name"
    );
    assert_eq!(bad(json!({"alerts": [{"labels": {}}]})), "alerts[0].labels");
    assert_eq!(
        bad(json!({"alerts": [{"labels": {"a": 1}}]})),
        "alerts[0].labels.a"
    );
    assert_eq!(
        bad(json!({"alerts": [{"labels": {"a": "b"}, "startsAt": "yesterday"}]})),
        "alerts[0].startsAt"
    );
    assert_eq!(
        bad(
            json!({"alerts": [{"labels": {"a": "b"}, "startsAt": "2026-01-02T00:00:00Z", "endsAt": "2026-01-01T00:00:00Z"}]})
        ),
        "alerts[0].endsAt"
    );
    let missing = parse_webhook(b"{}").unwrap_err();
    assert!(missing.message.contains("alerts"), "{missing}");
    assert!(parse_webhook(b"{\"alerts\": []} trailing").is_err());
}

#[test]
fn api_alerts_resolve_by_their_end() {
    let now = at("2026-11-24T10:00:00Z");
    let body = json!([
        {"labels": {"alertname": "Up"}, "annotations": {"summary": "s"}, "generatorURL": "http://prom"},
        {"labels": {"alertname": "Gone"}, "endsAt": "2026-11-24T09:00:00Z"},
        {"labels": {"alertname": "Later"}, "endsAt": "2026-11-24T11:00:00+01:00"},
        {"labels": {"alertname": "Soon"}, "endsAt": "2026-11-24T11:00:00Z"}
    ]);
    let alerts = parse_api_alerts(body.to_string().as_bytes(), now).unwrap();
    let actions: Vec<_> = alerts.iter().map(|a| a.action).collect();
    assert_eq!(
        actions,
        [
            Action::Trigger,
            Action::Resolve,
            Action::Resolve,
            Action::Trigger
        ]
    );
    assert_eq!(alerts[0].generator_url.as_deref(), Some("http://prom"));
    assert_eq!(alerts[0].source, Source::AlertmanagerApi);
    let err = parse_api_alerts(
        br#"[{"labels":{"a":"b"}},{"labels":{"a":"b"},"endsAt":"nope"}]"#,
        now,
    )
    .unwrap_err();
    assert_eq!(err.path, "[1].endsAt");
    assert!(err.to_string().starts_with("[1].endsAt: "), "{err}");
    assert_eq!(parse_api_alerts(b"{}", now).unwrap_err().path, "");
}

#[test]
fn pagerduty_trigger_mapping() {
    let body = json!({
        "routing_key": "R0123",
        "event_action": "trigger",
        "dedup_key": "disk/db-1",
        "client": "Monitoring",
        "client_url": "https://monitoring.example.com",
        "payload": {
            "summary": "Disk almost full on db-1",
            "source": "db-1",
            "severity": "critical",
            "timestamp": "2015-07-17T08:42:58.315+0000",
            "component": "postgres",
            "group": "prod-datapipe",
            "class": "disk",
            "custom_details": {"free space": "1%"}
        }
    });
    let event = parse_pagerduty(body.to_string().as_bytes()).unwrap();
    assert_eq!(event.routing_key, "R0123");
    let a = event.alert;
    assert_eq!(
        a.labels,
        ls(&[
            ("alertname", "disk"),
            ("severity", "critical"),
            ("instance", "db-1"),
            ("dedup_key", "disk/db-1"),
            ("component", "postgres"),
            ("group", "prod-datapipe"),
        ])
    );
    assert_eq!(a.annotations["summary"], "Disk almost full on db-1");
    assert_eq!(a.annotations["custom_details"], r#"{"free space":"1%"}"#);
    assert_eq!(a.annotations["client"], "Monitoring");
    assert_eq!(
        a.generator_url.as_deref(),
        Some("https://monitoring.example.com")
    );
    assert_eq!(a.starts_at, Some(at("2015-07-17T08:42:58.315Z")));
    assert_eq!(a.action, Action::Trigger);
    assert_eq!(a.dedup_key.as_deref(), Some("disk/db-1"));
    assert_eq!(a.source, Source::PagerDuty);
}

#[test]
fn pagerduty_trigger_without_a_key_gets_a_stable_one() {
    let event = |summary: &str| {
        let body = json!({"routing_key": "R", "event_action": "trigger",
            "payload": {"summary": summary, "source": "db-1", "severity": "warning"}});
        parse_pagerduty(body.to_string().as_bytes()).unwrap().alert
    };
    let a = event("Disk full");
    let key = a.dedup_key.clone().unwrap();
    assert_eq!(key.len(), 64);
    assert_eq!(a.labels.get("dedup_key"), Some(key.as_str()));
    assert_eq!(a.labels.get("alertname"), Some("PagerDuty"));
    assert_eq!(event("Disk full").dedup_key, Some(key.clone()));
    assert_ne!(event("CPU hot").dedup_key, Some(key));
}

#[test]
fn pagerduty_acknowledge_and_resolve() {
    for (action, expected) in [
        ("acknowledge", Action::Acknowledge),
        ("resolve", Action::Resolve),
    ] {
        let body = json!({"routing_key": "R", "event_action": action, "dedup_key": "k-1"});
        let a = parse_pagerduty(body.to_string().as_bytes()).unwrap().alert;
        assert_eq!(a.action, expected);
        assert_eq!(a.labels, ls(&[("dedup_key", "k-1")]));
        assert_eq!(a.dedup_key.as_deref(), Some("k-1"));
    }
}

#[test]
fn pagerduty_errors_name_the_field() {
    let bad = |body: serde_json::Value| {
        path_of(parse_pagerduty(body.to_string().as_bytes()).unwrap_err())
    };
    assert_eq!(
        bad(json!({"routing_key": "R", "event_action": "resolve"})),
        "dedup_key"
    );
    assert_eq!(
        bad(json!({"routing_key": "R", "event_action": "explode", "dedup_key": "k"})),
        "event_action"
    );
    assert_eq!(
        bad(json!({"routing_key": "R", "event_action": "trigger"})),
        "payload"
    );
    assert_eq!(
        bad(json!({"routing_key": "R", "event_action": "trigger",
        "payload": {"source": "s", "severity": "info"}})),
        "payload.summary"
    );
    assert_eq!(
        bad(json!({"routing_key": "R", "event_action": "trigger",
        "payload": {"summary": "x", "source": "s", "severity": "fatal"}})),
        "payload.severity"
    );
    assert_eq!(
        bad(json!({"routing_key": "R", "event_action": "trigger",
        "payload": {"summary": "x", "source": "s", "severity": "info", "timestamp": "soon"}})),
        "payload.timestamp"
    );
    assert_eq!(
        bad(json!({"event_action": "resolve", "dedup_key": "k"})),
        ""
    );
    assert_eq!(
        bad(json!({"routing_key": " ", "event_action": "resolve", "dedup_key": "k"})),
        "routing_key"
    );
    assert_eq!(
        bad(json!({"routing_key": "R", "event_action": "resolve", "dedup_key": "k".repeat(256)})),
        "dedup_key"
    );
}

#[test]
fn generic_one_or_many() {
    let now = at("2026-11-24T10:00:00Z");
    let one = parse_generic(
        br#"{"labels": {"alertname": "Backup"}, "annotations": {"summary": "late"},
             "status": "firing", "starts_at": "2026-11-24T09:00:00Z"}"#,
        now,
    )
    .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].starts_at, Some(at("2026-11-24T09:00:00Z")));
    assert_eq!(
        one[0].annotations,
        BTreeMap::from([("summary".to_owned(), "late".to_owned())])
    );
    assert_eq!(one[0].source, Source::Generic);
    let many = parse_generic(
        br#" [{"labels": {"a": "1"}, "status": "resolved"},
              {"labels": {"a": "2"}, "endsAt": "2026-11-24T09:30:00Z"},
              {"labels": {"a": "3"}, "ends_at": "2026-11-24T10:30:00Z"}]"#,
        now,
    )
    .unwrap();
    let actions: Vec<_> = many.iter().map(|a| a.action).collect();
    assert_eq!(actions, [Action::Resolve, Action::Resolve, Action::Trigger]);
}

#[test]
fn generic_refuses_unknown_fields_by_name() {
    let now = at("2026-11-24T10:00:00Z");
    let e = parse_generic(br#"{"labels": {"a": "1"}, "label": {}}"#, now).unwrap_err();
    assert!(e.message.contains("label"), "{e}");
    let e = parse_generic(
        br#"[{"labels": {"a": "1"}}, {"labels": {"a": "1"}, "status": "ok"}]"#,
        now,
    )
    .unwrap_err();
    assert_eq!(e.path, "[1].status");
    let e = parse_generic(br#"{"labels": {"a": "1"}, "status": "ok"}"#, now).unwrap_err();
    assert_eq!(e.path, "status");
}

#[test]
fn parse_dispatches_by_source() {
    let now = at("2026-11-24T10:00:00Z");
    assert_eq!(
        parse(Source::AlertmanagerWebhook, WEBHOOK.as_bytes(), now)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        parse(Source::Generic, br#"{"labels":{"a":"b"}}"#, now)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(parse(Source::AlertmanagerApi, b"[]", now).unwrap().len(), 0);
    let pd = br#"{"routing_key":"R","event_action":"resolve","dedup_key":"k"}"#;
    assert_eq!(parse(Source::PagerDuty, pd, now).unwrap().len(), 1);
}

#[test]
fn times() {
    assert_eq!(parse_time("0001-01-01T00:00:00Z"), Ok(None));
    assert_eq!(parse_time(""), Ok(None));
    assert_eq!(
        parse_time("2026-11-24T10:00:00Z"),
        Ok(Some(at("2026-11-24T10:00:00Z")))
    );
    assert_eq!(
        parse_time("2026-11-24T12:00:00+02:00"),
        Ok(Some(at("2026-11-24T10:00:00Z")))
    );
    assert_eq!(
        parse_time("2026-11-24T05:30:00-0430"),
        Ok(Some(at("2026-11-24T10:00:00Z")))
    );
    assert_eq!(
        parse_time("2026-11-24T10:00:00.5+00:00"),
        Ok(Some(at("2026-11-24T10:00:00.5Z")))
    );
    for bad in [
        "2026-11-24T10:00:00",
        "2026-11-24",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "1969-12-31T23:00:00Z",
        "2026-11-24T10:00:00+25:00",
        "2026-11-24T10:00:00€",
        "1970-01-01T00:30:00+01:00",
    ] {
        assert!(parse_time(bad).is_err(), "{bad}");
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[a-z_:0-9 .+-TZ]{0,24}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("firing"),
            Just("resolved"),
            Just("trigger"),
            Just("resolve"),
            Just("acknowledge"),
            Just("critical"),
            Just("2026-11-24T10:00:00Z"),
            Just("0001-01-01T00:00:00Z"),
        ]
        .prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        "[a-zA-Z_]{1,10}",
        Just("labels".to_owned()),
        Just("alerts".to_owned()),
        Just("status".to_owned()),
        Just("startsAt".to_owned()),
        Just("endsAt".to_owned()),
        Just("payload".to_owned()),
        Just("summary".to_owned()),
        Just("source".to_owned()),
        Just("severity".to_owned()),
        Just("routing_key".to_owned()),
        Just("event_action".to_owned()),
        Just("dedup_key".to_owned()),
        Just("annotations".to_owned()),
        Just("timestamp".to_owned()),
        Just("custom_details".to_owned()),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn every_parser(body: &[u8]) {
    let now = Timestamp(1_800_000_000_000_000);
    let _ = parse_webhook(body);
    let _ = parse_api_alerts(body, now);
    let _ = parse_pagerduty(body);
    let _ = parse_generic(body, now);
}

proptest! {
    #[test]
    fn no_panic_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        every_parser(&body);
    }

    #[test]
    fn no_panic_on_arbitrary_json(value in json_value()) {
        every_parser(value.to_string().as_bytes());
        // Wrapped where the formats expect their content.
        every_parser(json!({"alerts": [value.clone()]}).to_string().as_bytes());
        every_parser(json!([value.clone()]).to_string().as_bytes());
        every_parser(json!({"routing_key": "R", "event_action": "trigger", "payload": value}).to_string().as_bytes());
    }

    #[test]
    fn no_panic_on_arbitrary_times(text in any::<String>()) {
        let _ = parse_time(&text);
    }
}
