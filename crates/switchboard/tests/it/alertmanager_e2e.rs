//! Alerts through the real tools, end to end: a real Prometheus scrapes a
//! gauge the test serves and evaluates an alerting rule on it, sends what
//! fires to a real Alertmanager, whose webhook posts to Switchboard;
//! Switchboard keeps the alert, routes it and notifies every outlet of its
//! receiver — a webhook sink in the test (checking each body's signature),
//! a real SMTP server (Python's aiosmtpd), and a room of the test's Slack
//! (the local Slack of the chat suite) — and its automation rule runs an
//! action whose result is followed in the room's thread; once the test
//! clears the condition, each outlet hears it resolved. Every wait has a
//! deadline; on a timeout the failure shows what each tool holds and their
//! logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::chat_platforms::slack::Slack;
use crate::chat_platforms::{Platform, Room, Said};
use crate::harness::{ADMIN_TOKEN, Server};
use crate::sinks::{Sink, SmtpSink, alerts_catalog, header, signing_key_file};

#[path = "../../../switchboard-engine/tests/it/support/alertmanager.rs"]
mod alertmanager;

use alertmanager::{AlertingPrometheus, Alertmanager};

/// The alert the rule raises.
const ALERT: &str = "SwitchboardE2eCondition";
/// The gauge it watches: 1 while the condition holds.
const GAUGE: &str = "switchboard_e2e_condition";
/// The scrape job of the test's target.
const JOB: &str = "condition";
/// Longest wait for each step (a loaded CI machine).
const WITHIN: Duration = Duration::from_secs(60);

/// A scrape target serving one gauge: 1 while `holds`, else 0. Its
/// `host:port`.
async fn condition_target(holds: Arc<AtomicBool>) -> String {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let value = u8::from(holds.load(Ordering::SeqCst));
            async move {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    format!("# TYPE {GAUGE} gauge\n{GAUGE} {value}\n"),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// A notification Switchboard sent: whether its signature was right, and
/// its body.
type Received = (bool, Value);

/// The last `n` lines of a log.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Everything the test started, so that a timeout can say where the alert
/// stopped.
struct Tools {
    server: Server,
    alertmanager: Alertmanager,
    prometheus: AlertingPrometheus,
    sink: Sink,
    smtp: SmtpSink,
    slack: Slack,
}

impl Tools {
    /// What each tool holds now, and the tail of the logs.
    async fn report(&self) -> String {
        let (_, alerts) = self.server.get("/alerts?state=all").await;
        let (_, deliveries) = self.server.get("/alerts/deliveries").await;
        format!(
            "Prometheus alerts: {:?}\nAlertmanager alerts: {:?}\n\
             Switchboard alerts: {alerts}\nSwitchboard deliveries: {deliveries}\n\
             sink: {:?}\nemails: {:?}\nSlack: {:?}\n\
             --- Alertmanager log ---\n{}\n--- Prometheus log ---\n{}",
            self.prometheus.alerts().await,
            self.alertmanager.alerts().await,
            self.notifications(),
            self.smtp.messages(),
            self.slack.said(),
            tail(&self.alertmanager.log(), 40),
            tail(&self.prometheus.log(), 20),
        )
    }

    /// The notifications the sink received, in order.
    fn notifications(&self) -> Vec<Received> {
        self.sink
            .requests()
            .into_iter()
            .map(|r| (r.signed, r.body))
            .collect()
    }

    /// Polls `check` until it answers, failing with the report after
    /// [`WITHIN`].
    async fn eventually<T>(&self, what: &str, check: impl AsyncFn(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + WITHIN;
        loop {
            if let Some(found) = check(self).await {
                return found;
            }
            if Instant::now() > deadline {
                panic!("{what}: not within {WITHIN:?}\n{}", self.report().await);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Switchboard's record of the alert, if it has one in `state`.
    async fn switchboard_alert(&self, query: &str) -> Option<Value> {
        let (status, alerts) = self.server.get(&format!("/alerts{query}")).await;
        assert_eq!(status, 200, "{alerts}");
        alerts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == ALERT)
            .cloned()
    }

    /// The index and body of the first notification with `status` that
    /// lists the alert as `status`.
    fn notification(&self, status: &str) -> Option<(usize, Value)> {
        self.notifications()
            .into_iter()
            .enumerate()
            .find(|(_, (_, n))| {
                n["status"] == status
                    && n["alerts"].as_array().is_some_and(|alerts| {
                        alerts
                            .iter()
                            .any(|a| a["labels"]["alertname"] == ALERT && a["status"] == status)
                    })
            })
            .map(|(i, (_, n))| (i, n))
    }

    /// The emails whose subject starts with `prefix`.
    fn emails(&self, prefix: &str) -> Vec<String> {
        self.smtp
            .messages()
            .into_iter()
            .filter(|m| header(m, "Subject").iter().any(|s| s.starts_with(prefix)))
            .collect()
    }

    /// The bot's messages in the ops room: at its top, or in `thread`.
    fn slack_messages(&self, thread: Option<&str>) -> Vec<Said> {
        let ops = self.slack.room_id(Room::Ops);
        self.slack
            .said()
            .into_iter()
            .filter(|m| m.room == ops && m.thread.as_deref() == thread)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_firing_in_a_real_prometheus_reaches_switchboard_through_a_real_alertmanager_and_is_notified_until_resolved()
 {
    // Switchboard, routing every alert to the test's signed webhook, its
    // SMTP server and its Slack's ops room, and running a rule's action
    // for it.
    let sink = Sink::start(false).await;
    let smtp = SmtpSink::start();
    let slack = Slack::start();
    let dir = tempfile::tempdir().unwrap();
    let key = signing_key_file(dir.path());
    let catalog = alerts_catalog(
        dir.path(),
        &format!(
            r#"
[route]
receiver = "oncall"
group_by = ["alertname"]
group_wait = "1s"
group_interval = "2s"
repeat_interval = "1h"

[[receivers]]
name = "oncall"
[[receivers.webhook_configs]]
url = "{sink}/hook"
hmac_secret = "file:{key}"
[[receivers.email_configs]]
to = ["oncall@example.com"]
from = "switchboard@example.com"
smarthost = "127.0.0.1:{smtp}"
require_tls = false
send_resolved = true
[[receivers.chat_configs]]
platform = "slack"
room = "{room}"

[[automations]]
name = "note-condition"
matchers = ['alertname="{ALERT}"']
action = "demo.echo"
params = {{ message = "condition seen on {{{{ labels.instance }}}}" }}
run_as = "admin"
"#,
            sink = sink.url,
            key = key.display(),
            smtp = smtp.port,
            room = slack.room_id(Room::Ops),
        ),
    );
    let config = format!(
        "[alerts]\ndelivery_backoff = \"200ms\"\n\n{}",
        slack.config(dir.path())
    );
    let server = Server::start_with_config(&catalog, &config);

    // Alertmanager, sending every group to Switchboard as the admin.
    let alertmanager = Alertmanager::start(&format!(
        r#"route:
  receiver: switchboard
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: switchboard
    webhook_configs:
      - url: "{}/api/v1/alerts/alertmanager"
        send_resolved: true
        http_config:
          authorization:
            credentials: "{ADMIN_TOKEN}"
"#,
        server.url
    ))
    .await;

    // Prometheus, scraping the test's gauge and alerting while it is 1.
    let holds = Arc::new(AtomicBool::new(false));
    let target = condition_target(holds.clone()).await;
    let rules = format!(
        r#"groups:
  - name: switchboard-e2e
    interval: 1s
    rules:
      - alert: {ALERT}
        expr: {GAUGE} == 1
        for: 0s
        labels:
          severity: warning
        annotations:
          summary: "the condition holds on {{{{ $labels.instance }}}}"
"#
    );
    let prometheus =
        AlertingPrometheus::start(JOB, &[&target], &rules, &alertmanager.address).await;
    let tools = Tools {
        server,
        alertmanager,
        prometheus,
        sink,
        smtp,
        slack,
    };

    // Prometheus scrapes the gauge, and nothing fires yet.
    tools
        .eventually("Prometheus scraping the condition at 0", async |t| {
            let result = t.prometheus.query(GAUGE).await.ok()?;
            (result[0]["value"][1] == "0").then_some(())
        })
        .await;
    assert_eq!(tools.switchboard_alert("?state=all").await, None);

    // The condition holds: the rule fires, Alertmanager tells Switchboard.
    let fired = Instant::now();
    holds.store(true, Ordering::SeqCst);
    let alert = tools
        .eventually("the alert firing in Switchboard", async |t| {
            t.switchboard_alert("").await
        })
        .await;
    let reached_switchboard = fired.elapsed();
    assert_eq!(alert["status"], "firing", "{alert}");
    assert_eq!(alert["source"], "alertmanager_webhook", "{alert}");
    assert_eq!(
        alert["labels"],
        json!({"alertname": ALERT, "instance": target, "job": JOB, "severity": "warning"}),
        "{alert}"
    );
    assert_eq!(
        alert["annotations"]["summary"],
        format!("the condition holds on {target}"),
        "{alert}"
    );
    // Alertmanager sends no end for a firing alert: it ends only if it is
    // not sent again within the resolve timeout.
    assert!(
        alert["ends_at"].as_str().unwrap_or_default() > alert["updated_at"].as_str().unwrap(),
        "{alert}"
    );
    let generator = alert["generator_url"].as_str().unwrap_or_default();
    assert!(generator.contains("/graph?g0.expr="), "{alert}");
    // The same key as Alertmanager's own fingerprint of the labels.
    let fingerprint = alert["fingerprint"].as_str().unwrap().to_owned();
    let held = tools.alertmanager.alerts().await.unwrap();
    let in_alertmanager = held
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == ALERT)
        .unwrap_or_else(|| panic!("not in Alertmanager: {held}"));
    assert_eq!(in_alertmanager["fingerprint"], fingerprint, "{held}");

    // Switchboard's group sends the firing notification to the sink.
    let (first, firing) = tools
        .eventually("the firing notification", async |t| {
            t.notification("firing")
        })
        .await;
    let notified_firing = fired.elapsed();
    assert_eq!(firing["version"], "4", "{firing}");
    assert_eq!(firing["receiver"], "oncall", "{firing}");
    assert_eq!(
        firing["groupLabels"],
        json!({"alertname": ALERT}),
        "{firing}"
    );
    assert_eq!(
        firing["groupKey"],
        format!("{{}}:{{alertname=\"{ALERT}\"}}"),
        "{firing}"
    );
    assert_eq!(firing["alerts"].as_array().unwrap().len(), 1, "{firing}");
    assert_eq!(firing["alerts"][0]["fingerprint"], fingerprint, "{firing}");
    assert_eq!(firing["alerts"][0]["labels"], alert["labels"], "{firing}");

    // The same group as an email, and as one message in the ops room.
    let title = format!("[FIRING:1] {ALERT} (");
    let email = tools
        .eventually("the firing email", async |t| t.emails(&title).pop())
        .await;
    assert!(
        email.contains(&format!("the condition holds on {target}")),
        "{email}"
    );
    let card = tools
        .eventually("the alert's message in the ops room", async |t| {
            t.slack_messages(None)
                .into_iter()
                .find(|m| m.text.contains(&title))
        })
        .await;
    assert!(card.text.contains(&fingerprint), "{}", card.text);
    assert!(
        card.buttons.iter().any(|b| b == "Ack"),
        "{:?}",
        card.buttons
    );

    // The automation rule ran its action for the alert, as its principal
    // from the alert door, and the run's result came in the thread.
    let finished = tools
        .eventually(
            "the automation's result in the message's thread",
            async |t| {
                t.slack_messages(Some(&card.id))
                    .into_iter()
                    .find(|m| m.text.contains("demo.echo") && m.text.contains("succeeded"))
            },
        )
        .await;
    assert!(
        finished
            .text
            .contains(&format!("condition seen on {target}")),
        "{}",
        finished.text
    );
    let (_, detail) = tools.server.get(&format!("/alerts/{fingerprint}")).await;
    assert_eq!(detail["automations"][0]["state"], "ran", "{detail}");
    let run = detail["automations"][0]["execution_id"].as_i64().unwrap();
    let execution = tools.server.wait_finished(run).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["requester"], "admin", "{execution}");
    assert_eq!(execution["origin"], "alert", "{execution}");

    // The condition clears: Prometheus resolves the alert, Alertmanager
    // sends the resolved alert on, Switchboard sends its resolved notice.
    let cleared = Instant::now();
    holds.store(false, Ordering::SeqCst);
    let (last, resolved) = tools
        .eventually("the resolved notice", async |t| t.notification("resolved"))
        .await;
    let notified_resolved = cleared.elapsed();
    assert!(first < last, "resolved before it fired");
    assert_eq!(resolved["groupKey"], firing["groupKey"], "{resolved}");
    assert_eq!(
        resolved["alerts"].as_array().unwrap().len(),
        1,
        "{resolved}"
    );
    assert_eq!(
        resolved["alerts"][0]["fingerprint"], fingerprint,
        "{resolved}"
    );
    assert!(
        resolved["alerts"][0]["endsAt"]
            .as_str()
            .is_some_and(|end| !end.starts_with("0001")),
        "{resolved}"
    );

    // Switchboard lists it no more among the firing, and keeps it resolved.
    assert_eq!(tools.switchboard_alert("").await, None);
    let kept = tools.switchboard_alert("?state=all").await.unwrap();
    assert_eq!(kept["status"], "resolved", "{kept}");
    assert_eq!(kept["fingerprint"], fingerprint, "{kept}");
    assert!(kept["ends_at"].is_string(), "{kept}");

    // The email and the room hear it too: a resolved email in the same
    // thread, the message edited to say so and its thread told.
    let resolved_title = format!("[RESOLVED:1] {ALERT} (");
    let resolved_email = tools
        .eventually("the resolved email", async |t| {
            t.emails(&resolved_title).pop()
        })
        .await;
    assert_eq!(
        header(&resolved_email, "References"),
        header(&email, "References"),
        "one thread per group"
    );
    tools
        .eventually("the message edited to resolved", async |t| {
            t.slack_messages(None)
                .into_iter()
                .find(|m| m.id == card.id && m.text.contains(&resolved_title))
        })
        .await;
    tools
        .eventually("the resolved notice in the thread", async |t| {
            t.slack_messages(Some(&card.id))
                .into_iter()
                .find(|m| m.text.contains("all resolved"))
        })
        .await;
    assert_eq!(tools.slack_messages(None).len(), 1, "one message per group");

    // Told once of each, every notification signed.
    let all = tools.notifications();
    assert!(all.iter().all(|(verified, _)| *verified), "{all:?}");
    let bodies: Vec<&Value> = all.iter().map(|(_, n)| n).collect();
    assert_eq!(bodies.len(), 2, "one firing, one resolved: {bodies:?}");
    eprintln!(
        "fired → in Switchboard {reached_switchboard:?}, notified {notified_firing:?}; \
         cleared → resolved notice {notified_resolved:?}"
    );
}
