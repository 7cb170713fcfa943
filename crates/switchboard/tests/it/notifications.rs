//! Alerts out: routing, grouping, silences and webhook notifications
//! through the real server — a webhook receiver in the test that checks
//! each body's signature, refuses the first delivery (so it is retried),
//! and sees the resolved notice after a restart.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::Server;
use crate::sinks::{Sink, SmtpSink, alerts_catalog, header, signed_hook_catalog};

/// Polls alert `fp` (10 s at most) until its first automation run is no
/// longer `pending`; the alert's detail as it then reads.
async fn automation_settled(server: &Server, fp: &str) -> Value {
    let mut detail = Value::Null;
    for _ in 0..100 {
        detail = server.get(&format!("/alerts/{fp}")).await.1;
        let state = &detail["automations"][0]["state"];
        if !state.is_null() && state != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    detail
}

fn instances(notification: &Value) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = notification["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["instance"].as_str().unwrap().to_owned(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    list.sort();
    list
}

fn disk(instance: &str, status: &str) -> Value {
    json!({"labels": {"alertname": "DiskFull", "instance": instance, "severity": "critical"},
           "annotations": {"summary": format!("disk full on {instance}")},
           "status": status})
}

#[tokio::test]
async fn groups_notify_a_signed_webhook_with_retries_silences_and_a_resolved_notice_after_a_restart()
 {
    let sink = Sink::start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = signed_hook_catalog(dir.path(), &sink);
    let mut server =
        Server::start_with_config(&catalog, "[alerts]\ndelivery_backoff = \"200ms\"\n");

    // A silence for one instance, made before its alert comes.
    let (status, silence) = server
        .post(
            "/silences",
            json!({"matchers": "instance=\"db-3\"", "duration": "1h", "comment": "disk being replaced"}),
        )
        .await;
    assert_eq!(status, 201, "{silence}");
    assert_eq!(silence["state"], "active");

    let (status, body) = server
        .post(
            "/alerts",
            json!([
                disk("db-1", "firing"),
                disk("db-2", "firing"),
                disk("db-3", "firing")
            ]),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // One notification for the group, after group_wait, without the
    // silenced alert; the first attempt was refused and retried.
    let got = sink.wait_for("/hook", 1).await;
    let first = &got[0];
    assert_eq!(first["version"], "4");
    assert_eq!(first["status"], "firing");
    assert_eq!(first["receiver"], "hook");
    assert_eq!(first["groupLabels"], json!({"alertname": "DiskFull"}));
    assert_eq!(first["commonLabels"]["severity"], "critical");
    assert_eq!(first["groupKey"], "{}:{alertname=\"DiskFull\"}");
    assert_eq!(
        instances(first),
        [
            ("db-1".to_owned(), "firing".to_owned()),
            ("db-2".to_owned(), "firing".to_owned())
        ]
    );
    let requests = sink.requests();
    assert_eq!(requests.len(), 2, "refused, then retried");
    assert!(requests.iter().all(|r| r.signed), "every body signed");

    // The alert shows its group and the delivery with its two attempts.
    let fp = first["alerts"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut detail = Value::Null;
    for _ in 0..50 {
        detail = server.get(&format!("/alerts/{fp}")).await.1;
        if detail["deliveries"][0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(detail["groups"][0]["receiver"], "hook", "{detail}");
    let delivery = &detail["deliveries"][0];
    assert_eq!(delivery["status"], "delivered", "{detail}");
    assert_eq!(delivery["attempts"], 2, "{detail}");
    assert_eq!(delivery["integration"], "webhook[0]");
    assert!(
        delivery["last_error"].as_str().unwrap().contains("503"),
        "{delivery}"
    );

    // A restart loses neither the group nor the resolved notice owed.
    server.restart();
    let (_, groups) = server.get("/alerts/groups").await;
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    let (status, _) = server
        .post(
            "/alerts",
            json!([disk("db-1", "resolved"), disk("db-2", "resolved")]),
        )
        .await;
    assert_eq!(status, 200);
    let got = sink.wait_for("/hook", 2).await;
    let last = &got[1];
    // The silenced alert is left out, so nothing listed fires.
    assert_eq!(last["status"], "resolved", "{last}");
    assert_eq!(
        instances(last),
        [
            ("db-1".to_owned(), "resolved".to_owned()),
            ("db-2".to_owned(), "resolved".to_owned())
        ],
        "{last}"
    );

    // Expiring the silence makes db-3 news; resolving it, the all-clear.
    let id = silence["id"].as_str().unwrap();
    let resp = server
        .http
        .delete(server.api(&format!("/silences/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = sink.wait_for("/hook", 3).await;
    assert_eq!(
        instances(&got[2]),
        [("db-3".to_owned(), "firing".to_owned())]
    );
    server
        .post("/alerts", json!([disk("db-3", "resolved")]))
        .await;
    let got = sink.wait_for("/hook", 4).await;
    assert_eq!(got[3]["status"], "resolved");
    assert_eq!(
        instances(&got[3]),
        [("db-3".to_owned(), "resolved".to_owned())]
    );

    // A group whose alert resolves within group_wait sends nothing: wait
    // until the group has ended, then look.
    server
        .post(
            "/alerts",
            json!([{"labels": {"alertname": "Blip", "instance": "web-1"}, "status": "firing"}]),
        )
        .await;
    server
        .post(
            "/alerts",
            json!([{"labels": {"alertname": "Blip", "instance": "web-1"}, "status": "resolved"}]),
        )
        .await;
    for _ in 0..100 {
        let (_, groups) = server.get("/alerts/groups").await;
        if groups.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, groups) = server.get("/alerts/groups").await;
    assert_eq!(groups, json!([]), "every group ended");
    let all = sink.bodies("/hook");
    assert_eq!(all.len(), 4, "nothing sent for the blip: {all:?}");

    // Silences are listed, the expired one with `state=all`.
    let (_, current) = server.get("/silences").await;
    assert_eq!(current, json!([]));
    let (_, every) = server.get("/silences?state=all").await;
    assert_eq!(every[0]["state"], "expired");
    assert_eq!(every[0]["comment"], "disk being replaced");
}

#[tokio::test]
async fn email_notifications_reach_a_real_smtp_server_threaded_per_group() {
    let smtp = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let catalog = alerts_catalog(
        dir.path(),
        &format!(
            r#"
[route]
receiver = "mail"
group_by = ["alertname"]
group_wait = "1s"
group_interval = "2s"

[[receivers]]
name = "mail"
[[receivers.email_configs]]
to = ["oncall@example.com", "db-team@example.com"]
from = "switchboard@example.com"
smarthost = "127.0.0.1:{}"
require_tls = false
send_resolved = true
"#,
            smtp.port
        ),
    );
    let server = Server::start(&catalog);
    let alert = |instance: &str, status: &str| {
        json!({"labels": {"alertname": "DiskFull", "instance": instance, "severity": "critical"},
               "annotations": {"summary": format!("disk full on {instance}"),
                               "runbook_url": "https://runbooks.example.com/disk"},
               "status": status})
    };
    server
        .post(
            "/alerts",
            json!([alert("db-1", "firing"), alert("db-2", "firing")]),
        )
        .await;
    let mail = smtp.wait_for(1).await;
    let first = &mail[0];
    assert_eq!(
        header(first, "Subject"),
        ["[FIRING:2] DiskFull (critical)"],
        "{first}"
    );
    assert_eq!(header(first, "From"), ["switchboard@example.com"]);
    assert!(first.contains("oncall@example.com") && first.contains("db-team@example.com"));
    assert!(first.contains("multipart/alternative"), "{first}");
    assert!(first.contains("text/html"), "{first}");
    for expected in [
        "[FIRING] DiskFull: disk full on db-1",
        "[FIRING] DiskFull: disk full on db-2",
        "runbook: https://runbooks.example.com/disk",
        "silence alertname=\"DiskFull\" instance=\"db-1\" for 2h",
    ] {
        assert!(first.contains(expected), "{expected} not in {first}");
    }
    let thread = header(first, "References");
    assert_eq!(thread.len(), 1);

    server
        .post(
            "/alerts",
            json!([alert("db-1", "resolved"), alert("db-2", "resolved")]),
        )
        .await;
    let mail = smtp.wait_for(2).await;
    let second = &mail[1];
    assert_eq!(
        header(second, "Subject"),
        ["[RESOLVED:2] DiskFull (critical)"],
        "{second}"
    );
    assert!(
        second.contains("[RESOLVED] DiskFull: disk full on db-1"),
        "{second}"
    );
    assert_eq!(header(second, "References"), thread, "one thread per group");
    assert_ne!(header(second, "Message-ID"), header(first, "Message-ID"));

    // Delivered, and shown so.
    let (_, deliveries) = server.get("/alerts/deliveries").await;
    assert!(
        deliveries
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["integration"] == "email[0]" && d["status"] == "delivered"),
        "{deliveries}"
    );
}

#[tokio::test]
async fn pagerduty_and_opsgenie_get_one_incident_per_group_resolved_with_it() {
    use sha2::Digest;

    // PagerDuty's Events API and Opsgenie's Alert API, as documented.
    let sink = Sink::start(false).await;
    let url = &sink.url;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("pd.key");
    std::fs::write(&key_file, "R0UT1NGK3Y\n").unwrap();
    let genie_file = dir.path().join("genie.key");
    std::fs::write(&genie_file, "g3n1e\n").unwrap();
    let catalog = alerts_catalog(
        dir.path(),
        &format!(
            r#"
[route]
receiver = "pager"
group_by = ["alertname"]
group_wait = "1s"
group_interval = "2s"

[[receivers]]
name = "pager"
[[receivers.pagerduty_configs]]
routing_key = "file:{}"
url = "{url}/v2/enqueue"
[[receivers.opsgenie_configs]]
api_key = "file:{}"
api_url = "{url}/"
priority = "P2"
"#,
            key_file.display(),
            genie_file.display()
        ),
    );
    let server = Server::start(&catalog);
    server
        .post(
            "/alerts",
            json!([disk("db-1", "firing"), disk("db-2", "firing")]),
        )
        .await;
    let wait = |n: usize| {
        let sink = &sink;
        async move {
            for _ in 0..300 {
                let got = sink.requests();
                if got.len() >= n {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("{n} requests never came: {:?}", sink.requests());
        }
    };
    let got = wait(2).await;
    let group_key = "{}:{alertname=\"DiskFull\"}";
    let dedup = hex::encode(sha2::Sha256::digest(group_key.as_bytes()));
    let pd = got.iter().find(|r| r.path == "/v2/enqueue").unwrap();
    let event = &pd.body;
    assert_eq!(event["routing_key"], "R0UT1NGK3Y");
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(
        event["dedup_key"],
        dedup.as_str(),
        "SHA-256 of the group key"
    );
    assert_eq!(event["payload"]["severity"], "critical", "from the label");
    assert_eq!(
        event["payload"]["summary"],
        "[FIRING:2] DiskFull (critical)"
    );
    assert_eq!(event["payload"]["custom_details"]["num_firing"], 2);
    assert!(
        event["payload"]["custom_details"]["firing"]
            .as_str()
            .unwrap()
            .contains("[FIRING] DiskFull instance=db-1: disk full on db-1"),
        "{event}"
    );
    let og = got.iter().find(|r| r.path == "/v2/alerts").unwrap();
    assert_eq!(og.authorization, "GenieKey g3n1e");
    assert_eq!(og.body["alias"], dedup.as_str());
    assert_eq!(og.body["priority"], "P2");
    assert_eq!(og.body["message"], "[FIRING:2] DiskFull (critical)");
    assert_eq!(og.body["tags"], json!(["alertname=DiskFull"]));

    server
        .post(
            "/alerts",
            json!([disk("db-1", "resolved"), disk("db-2", "resolved")]),
        )
        .await;
    let got = wait(4).await;
    let resolve = got[2..].iter().find(|r| r.path == "/v2/enqueue").unwrap();
    assert_eq!(
        resolve.body,
        json!({"routing_key": "R0UT1NGK3Y", "event_action": "resolve", "dedup_key": dedup})
    );
    let close = got[2..]
        .iter()
        .find(|r| r.path.starts_with("/v2/alerts/"))
        .unwrap();
    assert_eq!(
        close.path,
        format!("/v2/alerts/{dedup}/close?identifierType=alias")
    );
    assert_eq!(close.authorization, "GenieKey g3n1e");
}

async fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = check() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test]
async fn an_escalation_pages_step_by_step_stops_on_ack_and_restarts_when_the_ack_lapses() {
    let sink = Sink::start(false).await;
    let (primary_url, secondary_url) = (
        format!("{}/primary", sink.url),
        format!("{}/secondary", sink.url),
    );
    let dir = tempfile::tempdir().unwrap();
    let catalog = alerts_catalog(
        dir.path(),
        &format!(
            r#"
[route]
receiver = "ops"
group_by = ["alertname"]
group_wait = "1s"
group_interval = "1s"
escalation = "oncall"

[[receivers]]
name = "ops"
[[receivers]]
name = "primary"
[[receivers.webhook_configs]]
url = "{primary_url}"
[[receivers]]
name = "secondary"
[[receivers.webhook_configs]]
url = "{secondary_url}"

[[escalations]]
name = "oncall"
ack_timeout = "3s"
[[escalations.steps]]
notify = ["primary"]
[[escalations.steps]]
wait = "2s"
[[escalations.steps]]
notify = ["secondary"]
"#
        ),
    );
    let server = Server::start(&catalog);

    // Nobody acknowledges DiskFull: primary, then secondary two seconds on.
    server
        .post("/alerts", json!([disk("db-1", "firing")]))
        .await;
    let page = sink.wait_for("/secondary", 1).await.remove(0);
    assert_eq!(sink.bodies("/primary").len(), 1);
    assert_eq!(page["receiver"], "ops", "the group's own receiver");
    assert_eq!(page["alerts"][0]["labels"]["instance"], "db-1");
    let (_, groups) = server.get("/alerts/groups").await;
    let disk_group = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["labels"]["alertname"] == "DiskFull")
        .unwrap()
        .clone();
    assert_eq!(disk_group["escalation"], "oncall");

    // Load is acknowledged after its first page: the chain stops there.
    server
        .post(
            "/alerts",
            json!([{"labels": {"alertname": "Load", "instance": "web-1"}, "status": "firing"}]),
        )
        .await;
    let pages_for = |path: &str| {
        sink.bodies(path)
            .iter()
            .filter(|p| p["groupLabels"]["alertname"] == "Load")
            .count()
    };
    wait_until("the first Load page", || {
        (pages_for("/primary") == 1).then_some(())
    })
    .await;
    let (_, groups) = server.get("/alerts/groups").await;
    let load = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["labels"]["alertname"] == "Load")
        .unwrap()
        .clone();
    let (status, ack) = server
        .post(
            &format!("/alerts/{}/ack", load["id"].as_str().unwrap()),
            json!({"comment": "on it"}),
        )
        .await;
    assert_eq!(status, 200, "{ack}");
    let stopped = group_where(&server, |g| {
        g["labels"]["alertname"] == "Load" && g["escalation_state"] == "stopped"
    })
    .await
    .expect("the chain stops");
    assert_eq!(stopped["acked_by"], "admin");
    assert_eq!(
        pages_for("/secondary"),
        0,
        "acknowledged before its second step"
    );

    // Still firing three seconds after the acknowledgement: it lapses and
    // the chain pages again from its first step.
    wait_until("the chain to restart", || {
        (pages_for("/primary") >= 2).then_some(())
    })
    .await;
    let (_, audit) = server.get("/audit?limit=1000").await;
    let kinds: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "escalation.paged",
        "escalation.stopped",
        "escalation.restarted",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }

    // A resolved group ends its chain.
    server
        .post("/alerts", json!([disk("db-1", "resolved")]))
        .await;
    for _ in 0..300 {
        let (_, groups) = server.get("/alerts/groups").await;
        if !groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["labels"]["alertname"] == "DiskFull")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("DiskFull's group never ended");
}

/// The first group that `pred` holds for, polled for up to 30 seconds.
async fn group_where(server: &Server, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    for _ in 0..300 {
        let (_, groups) = server.get("/alerts/groups").await;
        if let Some(g) = groups.as_array().unwrap().iter().find(|g| pred(g)) {
            return Some(g.clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn automation_rules_run_actions_from_alert_labels_once_and_skip_resolved_ones() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = alerts_catalog(
        dir.path(),
        r#"
[route]
receiver = "ops"
[[receivers]]
name = "ops"

[[automations]]
name = "restart"
matchers = ['alertname="ServiceDown"']
action = "demo.echo"
params = { message = "restarting {{ labels.service }} on {{ labels.instance }}" }
run_as = "admin"

[[automations]]
name = "slow-fix"
matchers = ['alertname="Blip"']
action = "demo.echo"
params = { message = "fixing" }
delay = "2s"
run_as = "admin"
"#,
    );
    let server = Server::start(&catalog);
    let down = json!([{"labels": {"alertname": "ServiceDown", "service": "cron", "instance": "web-1"},
                       "status": "firing"}]);
    server.post("/alerts", down.clone()).await;
    // Sent again while firing: the same episode, no second run.
    server.post("/alerts", down).await;
    let (_, alerts) = server.get("/alerts").await;
    let fp = alerts[0]["fingerprint"].as_str().unwrap().to_owned();
    let detail = automation_settled(&server, &fp).await;
    let runs = detail["automations"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{detail}");
    assert_eq!(runs[0]["rule"], "restart");
    assert_eq!(runs[0]["state"], "ran", "{detail}");
    let id = runs[0]["execution_id"].as_i64().unwrap();
    let execution = server.wait_finished(id).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["origin"], "alert");
    assert_eq!(execution["requester"], "admin");
    assert_eq!(execution["params"]["message"], "restarting cron on web-1");

    // Resolved within the rule's delay: skipped, with the reason.
    let blip = |status: &str| json!([{"labels": {"alertname": "Blip"}, "status": status}]);
    server.post("/alerts", blip("firing")).await;
    server.post("/alerts", blip("resolved")).await;
    let (_, all) = server.get("/alerts?state=all").await;
    let fp = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "Blip")
        .unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let detail = automation_settled(&server, &fp).await;
    assert_eq!(detail["automations"][0]["state"], "skipped", "{detail}");
    assert_eq!(
        detail["automations"][0]["reason"],
        "the alert resolved before the run was due"
    );
    let (_, page) = server.get("/executions").await;
    assert_eq!(
        page["executions"].as_array().map_or(0, Vec::len),
        1,
        "only the first rule ran: {page}"
    );
}

/// A check action whose result lists alerts: `firing` raises a disk alert
/// for `host`, anything else resolves it; `garbage` writes an `alerts` that
/// is not an array.
const CHECK_ACTION: &str = r#"
name = "check.disk"
description = "A check that reports its findings as alerts"
command = ["/bin/sh", "-c", "if [ \"$1\" = garbage ]; then echo '{\"alerts\": 5}' > \"$SB_RESULT\"; else printf '{\"alerts\": [{\"labels\": {\"alertname\": \"DiskFull\", \"instance\": \"%s\"}, \"status\": \"%s\", \"annotations\": {\"summary\": \"found by the check\"}}]}' \"$2\" \"$1\" > \"$SB_RESULT\"; fi", "check", "{{ state }}", "{{ host }}"]
tags = ["demo"]

[params.state]
type = "enum"
choices = ["firing", "resolved", "garbage"]
required = true

[params.host]
type = "string"
required = true
"#;

#[tokio::test]
async fn an_action_raises_and_resolves_alerts_through_its_result() {
    let sink = Sink::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = signed_hook_catalog(dir.path(), &sink);
    std::fs::create_dir_all(catalog.join("actions/check")).unwrap();
    std::fs::write(catalog.join("actions/check/disk.toml"), CHECK_ACTION).unwrap();
    let server = Server::start_with_config(
        &catalog,
        "[chat]\npublic_url = \"https://sb.example.com\"\n",
    );

    let id = server
        .submit("check.disk", json!({"state": "firing", "host": "db-7"}))
        .await;
    let e = server.wait_finished(id).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    // Routed like any alert: the webhook hears of it.
    let got = sink.wait_for("/hook", 1).await;
    assert_eq!(
        instances(&got[0]),
        [("db-7".to_owned(), "firing".to_owned())]
    );
    let alert = &got[0]["alerts"][0];
    assert_eq!(alert["annotations"]["execution"], id.to_string());
    assert_eq!(alert["annotations"]["summary"], "found by the check");
    assert_eq!(
        alert["generatorURL"],
        format!("https://sb.example.com/api/v1/executions/{id}")
    );
    let (_, alerts) = server.get("/alerts").await;
    assert_eq!(alerts[0]["source"], "action", "{alerts}");

    // The next run finds it fixed: the alert resolves.
    let id = server
        .submit("check.disk", json!({"state": "resolved", "host": "db-7"}))
        .await;
    server.wait_finished(id).await;
    let (_, firing) = server.get("/alerts").await;
    assert_eq!(firing, json!([]), "resolved by the check");

    // A result whose `alerts` is not a list raises nothing, and says why.
    let id = server
        .submit("check.disk", json!({"state": "garbage", "host": "db-7"}))
        .await;
    let e = server.wait_finished(id).await;
    assert_eq!(e["status"], "succeeded", "the run itself went well: {e}");
    let (_, audit) = server.get("/audit?limit=500").await;
    let raised: Vec<(String, String)> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "alerts.raised")
        .map(|r| {
            (
                r["outcome"].as_str().unwrap().to_owned(),
                r["detail"].to_string(),
            )
        })
        .collect();
    assert_eq!(raised.len(), 3, "{raised:?}");
    assert!(
        raised
            .iter()
            .any(|(outcome, detail)| outcome == "rejected"
                && detail.contains("not an array of alerts")),
        "{raised:?}"
    );
}

#[tokio::test]
async fn an_automation_whose_action_needs_approval_waits_for_an_approver() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = alerts_catalog(
        dir.path(),
        r#"
[route]
receiver = "ops"
[[receivers]]
name = "ops"

[[automations]]
name = "drain"
matchers = ['alertname="NodeUnhealthy"']
action = "demo.drain"
params = { message = "draining {{ labels.instance }}" }
run_as = "admin"
"#,
    );
    std::fs::write(
        catalog.join("actions/demo/drain.toml"),
        r#"
name = "demo.drain"
description = "Says it drains a node, once someone agrees"
command = ["/bin/echo", "{{ message }}"]
tags = ["demo"]
approval = { approvers = "group:sre-leads", count = 1 }

[params.message]
type = "string"
required = true
"#,
    )
    .unwrap();
    let server = Server::start_with_config(&catalog, crate::authz::TEAM);
    server
        .post(
            "/alerts",
            json!([{"labels": {"alertname": "NodeUnhealthy", "instance": "web-4"}, "status": "firing"}]),
        )
        .await;
    let (_, alerts) = server.get("/alerts").await;
    let fp = alerts[0]["fingerprint"].as_str().unwrap().to_owned();
    let detail = automation_settled(&server, &fp).await;
    let id = detail["automations"][0]["execution_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{detail}"));
    // Requested, not run: it waits for someone in sre-leads.
    let (_, e) = server.get(&format!("/executions/{id}")).await;
    assert_eq!(e["status"], "awaiting_approval", "{e}");
    assert_eq!(
        (e["requester"].as_str(), e["origin"].as_str()),
        (Some("admin"), Some("alert"))
    );
    let carol = crate::harness::Api::with_token(server.url.clone(), &server.token_for("carol"));
    let (status, body) = carol
        .post(
            &format!("/executions/{id}/approve"),
            json!({"reason": "web-4 is flapping"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let e = server.wait_finished(id).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["approvals"][0]["approver"], "carol", "{e}");
}
