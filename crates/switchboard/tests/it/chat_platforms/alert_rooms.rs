//! Alerts in a chat room: a receiver's `chat_configs` posts each group as
//! one message, edits it as the group changes (a notice in its thread says
//! what changed), and its buttons acknowledge, run the linked automation
//! and silence — each as the person who pressed it, authorized and
//! audited like anything they type. Automation rules' runs, and their
//! refusals, are told in the group's thread.

use serde_json::{Value, json};

use super::fake::eventually;
use super::flows::link;
use super::{Platform, Rig, Room, Said};

const RUNBOOK: &str = "https://runbooks.example.com/disk-full";

/// An `alerts.toml` sending every group to the fake's `ops` room.
fn alerts_toml<P: Platform>(fake: &P) -> String {
    format!(
        r#"
[route]
receiver = "ops-room"
group_by = ["alertname"]
group_wait = "300ms"
group_interval = "500ms"
repeat_interval = "1h"

[[receivers]]
name = "ops-room"
[[receivers.chat_configs]]
platform = "{platform}"
room = "{room}"

# Run from the message's button only: its delay is long.
[[automations]]
name = "check-disk"
matchers = ['alertname="DiskFull"']
action = "host.disk"
params = {{ path = "{{{{ labels.mountpoint }}}}" }}
delay = "1h"
run_as = "alice"

# Failing over is critical: the policies let no alert start it.
[[automations]]
name = "auto-failover"
matchers = ['alertname="PrimaryDown"']
action = "db.failover"
params = {{ host = "{{{{ labels.standby }}}}" }}
run_as = "alice"
"#,
        platform = P::NAME,
        room = fake.room_id(Room::Ops),
    )
}

fn disk(instance: &str, status: &str) -> Value {
    json!({"labels": {"alertname": "DiskFull", "instance": instance, "mountpoint": "/"},
           "annotations": {"summary": format!("/ is 97% full on {instance}"), "runbook_url": RUNBOOK},
           "status": status})
}

fn start<P: Platform>() -> Rig<P> {
    Rig::<P>::start_for(|fake, catalog| {
        std::fs::write(catalog.join("alerts.toml"), alerts_toml(fake)).unwrap();
    })
}

/// The bot's message at the top of `ops` whose text contains `needle`, as
/// it reads now.
async fn card<P: Platform>(rig: &Rig<P>, needle: &str) -> Said {
    let ops = rig.fake.room_id(Room::Ops);
    eventually(
        || {
            format!(
                "a message containing {needle:?} at the top of ops{}",
                rig.transcript()
            )
        },
        || {
            rig.fake
                .said()
                .into_iter()
                .find(|s| s.room == ops && s.thread.is_none() && s.text.contains(needle))
        },
    )
    .await
}

/// The message `id` as it reads now, once its text contains `needle`.
async fn edited<P: Platform>(rig: &Rig<P>, id: &str, needle: &str) -> Said {
    eventually(
        || {
            format!(
                "message {id} edited to contain {needle:?}{}",
                rig.transcript()
            )
        },
        || {
            rig.fake
                .said()
                .into_iter()
                .find(|s| s.id == id && s.text.contains(needle))
        },
    )
    .await
}

pub async fn an_alert_group_is_one_message_kept_current_whose_buttons_ack_automate_and_silence<
    P: Platform,
>() {
    let rig = start::<P>();
    let alice = rig.server.token_for("alice");
    link(&rig, "alice", &alice).await;

    let (status, body) = rig
        .server
        .post(
            "/alerts",
            json!([disk("db-1", "firing"), disk("db-2", "firing")]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let first = card(&rig, "[FIRING:2] DiskFull").await;
    for said in ["DiskFull on db-1: /is 97% full on db-1", "DiskFull on db-2"] {
        let said = said.replace("/is", "/ is");
        assert!(first.text.contains(&said), "{said:?} in {}", first.text);
    }
    assert!(first.text.contains(RUNBOOK), "{}", first.text);
    for label in ["Ack", "Silence 1h", "Run host.disk"] {
        assert!(
            first.buttons.iter().any(|b| b == label),
            "{label} in {:?}",
            first.buttons
        );
    }
    let thread = first.id.clone();

    // A third disk fills: the same message says so, and its thread tells.
    rig.server
        .post("/alerts", json!([disk("db-3", "firing")]))
        .await;
    let now = edited(&rig, &thread, "[FIRING:3] DiskFull").await;
    assert!(now.text.contains("DiskFull on db-3"), "{}", now.text);
    rig.reply(&thread, "now firing: DiskFull on db-3").await;
    let tops: Vec<Said> = rig
        .in_room(Room::Ops)
        .into_iter()
        .filter(|s| s.thread.is_none() && s.text.contains("DiskFull"))
        .collect();
    assert_eq!(tops.len(), 1, "one message per group: {}", rig.transcript());

    // Someone who is not linked may not acknowledge it; alice may.
    rig.deliver(rig.fake.press_labelled(&now, "mallory", "Ack"))
        .await;
    rig.reply(&thread, "Refused:").await;
    rig.deliver(rig.fake.press_labelled(&now, "alice", "Ack"))
        .await;
    rig.reply(&thread, "alice acknowledged group").await;
    let acked = edited(&rig, &thread, "Acknowledged by alice").await;
    assert!(
        !acked.buttons.iter().any(|b| b == "Ack"),
        "{:?}",
        acked.buttons
    );
    let (_, groups) = rig.server.get("/alerts/groups").await;
    assert_eq!(groups[0]["acked_by"], "alice", "{groups}");
    // Told once in the thread where it was pressed.
    rig.barrier().await;
    let told = rig
        .in_thread(&thread)
        .iter()
        .filter(|s| s.text.contains("acknowledged group"))
        .count();
    assert_eq!(told, 1, "{}", rig.transcript());

    // The linked automation, run by alice from the button: one run per
    // firing alert, as alice from the room, followed in the thread.
    rig.deliver(rig.fake.press_labelled(&acked, "alice", "Run host.disk"))
        .await;
    rig.reply(&thread, "Automation `check-disk` runs host.disk")
        .await;
    let runs = eventually(
        || format!("three host.disk runs{}", rig.transcript()),
        || {
            let said = rig.in_thread(&thread);
            let ended: Vec<String> = said
                .iter()
                .filter(|s| {
                    s.text.contains("host.disk")
                        && (s.text.contains("succeeded") || s.text.contains("failed"))
                })
                .map(|s| s.text.clone())
                .collect();
            (ended.len() == 3).then_some(ended)
        },
    )
    .await;
    assert_eq!(runs.len(), 3);
    let executions = rig.executions().await;
    let disk_runs: Vec<&Value> = executions
        .iter()
        .filter(|e| e["action"] == "host.disk")
        .collect();
    assert_eq!(disk_runs.len(), 3, "{executions:#?}");
    for e in disk_runs {
        assert_eq!(e["requester"], "alice", "{e}");
        assert_eq!(e["origin"], rig.fake.origin(Room::Ops), "{e}");
        assert_eq!(e["params"]["path"], "/", "{e}");
    }

    // Silenced for an hour by alice.
    rig.deliver(rig.fake.press_labelled(&acked, "alice", "Silence 1h"))
        .await;
    rig.reply(&thread, "Silenced").await;
    let (_, silences) = rig.server.get("/silences").await;
    let silences = silences.as_array().unwrap();
    assert_eq!(silences.len(), 1, "{silences:?}");
    assert_eq!(silences[0]["created_by"], "alice", "{silences:?}");
    assert_eq!(silences[0]["matchers"], "{alertname=\"DiskFull\"}");

    // Every disk recovers: the message says resolved, with nothing left
    // to do (links stay), and the thread tells.
    let status = rig
        .server
        .delete(&format!(
            "/silences/{}",
            silences[0]["id"].as_str().unwrap()
        ))
        .await;
    assert!(status < 300, "{status}");
    rig.server
        .post(
            "/alerts",
            json!([
                disk("db-1", "resolved"),
                disk("db-2", "resolved"),
                disk("db-3", "resolved")
            ]),
        )
        .await;
    let resolved = edited(&rig, &thread, "[RESOLVED:3] DiskFull").await;
    assert!(
        !resolved
            .buttons
            .iter()
            .any(|b| ["Ack", "Silence 1h", "Run host.disk"].contains(&b.as_str())),
        "{:?}",
        resolved.buttons
    );
    rig.reply(&thread, "all resolved").await;
    let audit = rig.audit("alert.acknowledged").await;
    assert_eq!(audit.len(), 1, "{audit:#?}");
    assert_eq!(audit[0]["actor"], "alice");
}

pub async fn an_automation_the_policies_refuse_is_told_in_the_alert_thread<P: Platform>() {
    let rig = start::<P>();
    rig.server
        .post(
            "/alerts",
            json!([{"labels": {"alertname": "PrimaryDown", "instance": "db-1", "standby": "db-2"},
                    "status": "firing"}]),
        )
        .await;
    let message = card(&rig, "[FIRING:1] PrimaryDown").await;
    let refusal = rig
        .reply(&message.id, "Automation `auto-failover` did not run")
        .await;
    assert!(
        refusal.text.contains("no-unattended-critical-runs"),
        "{}",
        refusal.text
    );
    let (_, alerts) = rig.server.get("/alerts").await;
    let fp = alerts[0]["fingerprint"].as_str().unwrap().to_owned();
    let (_, detail) = rig.server.get(&format!("/alerts/{fp}")).await;
    assert_eq!(detail["automations"][0]["state"], "failed", "{detail}");
    assert!(rig.executions().await.is_empty());
    let decisions = rig.audit("authz.decision").await;
    assert!(
        decisions
            .iter()
            .any(|r| r["subject"] == "action:db.failover"
                && r["outcome"] == "denied"
                && r["origin"] == "alert"),
        "{decisions:#?}"
    );
}
