//! Alerts in: Alertmanager's webhook and API shapes, PagerDuty-style events
//! and Switchboard's JSON, kept by fingerprint across restarts.

use serde_json::{Value, json};

use crate::harness::{Api, Server, sample_catalog, text};

/// The published Alertmanager webhook (version 4) sample.
const WEBHOOK: &str =
    include_str!("../../../switchboard-core/src/alerts/tests/alertmanager-webhook-v4.json");

fn by_fingerprint<'a>(alerts: &'a Value, fingerprint: &str) -> &'a Value {
    alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["fingerprint"] == fingerprint)
        .unwrap_or_else(|| panic!("no alert {fingerprint} in {alerts}"))
}

#[tokio::test]
async fn alerts_from_alertmanager_are_kept_resolved_and_survive_a_restart() {
    let mut server = Server::start(&sample_catalog());

    let (status, body) = server
        .post(
            "/alerts/alertmanager",
            serde_json::from_str(WEBHOOK).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"firing": 2, "resolved": 0, "acknowledged": 0, "ignored": 0})
    );
    let (_, firing) = server.get("/alerts").await;
    assert_eq!(firing.as_array().unwrap().len(), 2, "{firing}");
    // The key is Alertmanager's own fingerprint of the labels.
    let sent: Value = serde_json::from_str(WEBHOOK).unwrap();
    let db1 = sent["alerts"][0]["fingerprint"].as_str().unwrap();
    let alert = by_fingerprint(&firing, db1);
    assert_eq!(alert["labels"]["instance"], "db-1:9100");
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["source"], "alertmanager_webhook");

    // The hosts the alerts name need attention, matched to the inventory
    // by their instance label.
    let out = server.cli(&["hosts", "--attention"]);
    let listed = text(&out.stdout);
    assert!(listed.contains("ALERTS"), "{listed}");
    for host in ["db-1", "db-2"] {
        let line = listed
            .lines()
            .find(|l| l.starts_with(host))
            .unwrap_or_else(|| panic!("{host} missing: {listed}"));
        assert!(line.contains("DiskFull (critical)"), "{line}");
    }
    let (_, attention) = server.get("/hosts/attention").await;
    assert_eq!(
        attention[0]["alerts"][0]["alertname"], "DiskFull",
        "{attention}"
    );
    assert_eq!(attention[0]["known"], true);

    // Resolved by the next notification.
    let mut resolved = sent.clone();
    resolved["status"] = json!("resolved");
    resolved["alerts"][0]["status"] = json!("resolved");
    resolved["alerts"][0]["endsAt"] = json!("2026-11-25T10:00:00Z");
    resolved["alerts"].as_array_mut().unwrap().truncate(1);
    let (status, body) = server.post("/alerts/alertmanager", resolved).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resolved"], 1);
    let (_, firing) = server.get("/alerts").await;
    assert_eq!(firing.as_array().unwrap().len(), 1, "{firing}");
    let (_, all) = server.get("/alerts?state=all").await;
    assert_eq!(by_fingerprint(&all, db1)["status"], "resolved");

    // Nothing is lost with a restart.
    server.restart();
    let (_, all) = server.get("/alerts?state=all").await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let out = server.cli(&["alerts"]);
    let listed = text(&out.stdout);
    assert!(listed.starts_with("FINGERPRINT"), "{listed}");
    assert!(
        listed.contains("DiskFull") && listed.contains("instance=db-2:9100"),
        "{listed}"
    );
    assert!(!listed.contains("db-1:9100"), "{listed}");
}

#[tokio::test]
async fn every_format_is_taken_and_bad_bodies_are_refused_naming_the_field() {
    let server = Server::start(&sample_catalog());

    // Prometheus-style (Alertmanager /api/v2/alerts) with no end: firing
    // until resolve_timeout passes without it being sent again.
    let (status, body) = server
        .post(
            "/alerts",
            json!([{"labels": {"alertname": "HighLoad", "instance": "web-1"}}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["firing"], 1);
    let (_, firing) = server.get("/alerts").await;
    let alert = &firing[0];
    assert_eq!(alert["source"], "alertmanager_api");
    assert!(alert["ends_at"].as_str().unwrap() > alert["updated_at"].as_str().unwrap());

    // Switchboard's own format, and PagerDuty trigger then resolve by key.
    let (status, body) = server
        .post("/alerts", json!({"labels": {"alertname": "Backup"}, "status": "firing", "annotations": {"summary": "nightly backup late"}}))
        .await;
    assert_eq!((status, body["firing"].clone()), (200, json!(1)), "{body}");
    let trigger = json!({"routing_key": "k", "event_action": "trigger", "dedup_key": "disk-db-1",
        "payload": {"summary": "disk full on db-1", "source": "db-1", "severity": "critical"}});
    let (status, body) = server.post("/alerts", trigger).await;
    assert_eq!((status, body["firing"].clone()), (200, json!(1)), "{body}");
    let (_, firing) = server.get("/alerts").await;
    assert_eq!(firing.as_array().unwrap().len(), 3, "{firing}");
    // Acknowledged by its key (an unknown key is ignored); the alert says
    // who acknowledged it.
    let ack = json!({"routing_key": "k", "event_action": "acknowledge", "dedup_key": "disk-db-1"});
    let (_, body) = server.post("/alerts", ack).await;
    assert_eq!(
        body,
        json!({"firing": 0, "resolved": 0, "acknowledged": 1, "ignored": 0})
    );
    let unknown = json!({"routing_key": "k", "event_action": "acknowledge", "dedup_key": "nope"});
    let (_, body) = server.post("/alerts", unknown).await;
    assert_eq!(body["ignored"], 1, "{body}");
    let keyed = firing
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["dedup_key"] == "disk-db-1")
        .unwrap();
    let fp = keyed["fingerprint"].as_str().unwrap();
    let (status, detail) = server.get(&format!("/alerts/{fp}")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["ack"]["acked_by"], "switchboard", "{detail}");
    let resolve = json!({"routing_key": "k", "event_action": "resolve", "dedup_key": "disk-db-1"});
    let (_, body) = server.post("/alerts", resolve).await;
    assert_eq!(
        body,
        json!({"firing": 0, "resolved": 1, "acknowledged": 0, "ignored": 0})
    );
    let (_, firing) = server.get("/alerts").await;
    assert_eq!(firing.as_array().unwrap().len(), 2, "{firing}");

    // Bad input: a clear error naming the field; nothing kept is lost.
    let (status, body) = server
        .post("/alerts", json!([{"labels": {"bad-name": "x"}}]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[0].labels.bad-name"),
        "{body}"
    );
    let (status, body) = server
        .post("/alerts/alertmanager", json!({"version": "4"}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, firing) = server.get("/alerts").await;
    assert_eq!(firing.as_array().unwrap().len(), 2);

    // Sending alerts needs the run scope.
    let out = server.cli(&["token", "create", "--user", "admin", "--scope", "read"]);
    let reader = Api::with_token(server.url.clone(), text(&out.stdout).trim());
    let (status, _) = reader
        .post("/alerts", json!({"labels": {"alertname": "X"}}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = reader.get("/alerts").await;
    assert_eq!(status, 200);

    // Alertmanager's `basic_auth`: the token as the password.
    let token = server.token_for("admin");
    let resp = reqwest::Client::new()
        .post(server.api("/alerts/alertmanager"))
        .basic_auth("alertmanager", Some(&token))
        .header("content-type", "application/json")
        .body(WEBHOOK)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = reqwest::Client::new()
        .post(server.api("/alerts/alertmanager"))
        .basic_auth("alertmanager", Some("sb_wrong_token_0123456789"))
        .body(WEBHOOK)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn the_cli_silences_lists_expires_and_acknowledges() {
    let dir = tempfile::tempdir().unwrap();
    crate::harness::copy_catalog(&sample_catalog(), dir.path());
    std::fs::write(
        dir.path().join("alerts.toml"),
        "[route]\nreceiver = \"ops\"\n[[receivers]]\nname = \"ops\"\n",
    )
    .unwrap();
    let server = Server::start(dir.path());
    server
        .post(
            "/alerts",
            json!({"labels": {"alertname": "DiskFull", "instance": "db-1"}, "status": "firing"}),
        )
        .await;

    let out = server.cli(&[
        "silence",
        "add",
        "alertname=DiskFull",
        "instance=~db-.*",
        "--for",
        "2h",
        "--comment",
        "swapping disks",
    ]);
    assert!(out.status.success(), "{out:?}");
    let said = text(&out.stdout);
    assert!(
        said.contains(r#"({alertname="DiskFull",instance=~"db-.*"}) until"#),
        "{said}"
    );
    let id = said.split_whitespace().nth(1).unwrap().to_owned();
    let listed = text(&server.cli(&["silence", "list"]).stdout);
    assert!(listed.starts_with("ID"), "{listed}");
    assert!(
        listed.contains(&id) && listed.contains("active") && listed.contains("swapping disks"),
        "{listed}"
    );

    // A bad request says what is wrong and changes nothing.
    let out = server.cli(&["silence", "add", "alertname=~(", "--comment", "x"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("matchers"), "{out:?}");
    let out = server.cli(&[
        "silence",
        "add",
        "alertname=X",
        "--for",
        "soon",
        "--comment",
        "x",
    ]);
    assert!(
        text(&out.stderr).contains("`soon` is not a duration"),
        "{out:?}"
    );

    let listed = text(&server.cli(&["alerts"]).stdout);
    let fp = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let out = server.cli(&["ack", &fp[..8], "--comment", "on it"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("admin acknowledged alert {fp}")
    );
    let out = server.cli(&["ack", "zz"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not an alert fingerprint"),
        "{out:?}"
    );

    let out = server.cli(&["silence", "expire", &id]);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&server.cli(&["silence", "list"]).stdout).contains("no silences"));
    assert!(text(&server.cli(&["silence", "list", "--all"]).stdout).contains("expired"));
    let out = server.cli(&["silence", "expire", "nope"]);
    assert!(text(&out.stderr).contains("no silence `nope`"), "{out:?}");
}
