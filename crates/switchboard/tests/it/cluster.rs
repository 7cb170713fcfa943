//! Several nodes on one PostgreSQL: real `switchboard serve` processes on
//! loopback sharing a real PostgreSQL server. The leader is killed with
//! `kill -9` mid-work; another node takes the leader lease within the
//! configured time, the schedules go on from it, the dead node's
//! executions are taken over (an idempotent one runs again, the others end
//! `lost`), no execution runs twice, and the audit chain verifies; then
//! PostgreSQL restarts and every node recovers by itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Api, Server, copy_catalog, test_catalog, wait_for_pid};
use crate::pg::PgServer;

/// Leases last 2 s here (renewed every ⅔ s), so a failover is quick.
const LEASE: Duration = Duration::from_secs(2);

const CONFIG: &str = "[cluster]\nlease = \"2s\"\n";

const SCHEDULES: &str = r#"[[schedules]]
name = "every-second"
action = "test.args"
cron = "* * * * * *"
params = { text = "tick" }
run_as = "admin"
"#;

const IDEMPOTENT_SLEEP: &str = r#"name = "test.sleep_again"
description = "Sleep; safe to run again"
command = ["scripts/sleep.sh", "{{ seconds }}", "{{ pidfile }}"]
idempotent = true
[params.seconds]
type = "duration"
default = "3s"
[params.pidfile]
type = "string"
default = "/dev/null"
"#;

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Submits `test.args` to `api` every 20 ms until `stop`; the ids of the
/// executions accepted, and how many submissions were refused or failed.
async fn submit_until(api: &Api, stop: &AtomicBool) -> (Vec<i64>, usize) {
    let (mut accepted, mut refused) = (Vec::new(), 0);
    while !stop.load(Ordering::SeqCst) {
        let body = json!({"action": "test.args", "params": {"text": "under load"}});
        match api
            .http
            .post(api.api("/executions"))
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status() == 201 => {
                let e: Value = r.json().await.unwrap();
                accepted.push(e["id"].as_i64().unwrap());
            }
            Ok(_) | Err(_) => refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (accepted, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_dies_and_another_node_takes_over_its_duties_and_its_work() {
    let pg = PgServer::start();
    let url = pg.database("switchboard").await;
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&test_catalog(), dir.path());
    std::fs::write(dir.path().join("schedules.toml"), SCHEDULES).unwrap();
    std::fs::write(
        dir.path().join("actions/sleep_again.toml"),
        IDEMPOTENT_SLEEP,
    )
    .unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let config = config.to_str().unwrap();
    let extra = ["--config", config];
    let mut first = Server::start_node(dir.path(), &url, "node-1", &extra);
    // The first node leads from its first heartbeat.
    assert_eq!(first.readiness().await.unwrap()["leader"], true);
    let others = [
        Server::start_node(dir.path(), &url, "node-2", &extra),
        Server::start_node(dir.path(), &url, "node-3", &extra),
    ];
    for n in &others {
        assert_eq!(n.readiness().await.unwrap()["leader"], false);
    }

    // Work everywhere; two long runs on the leader.
    let mut quick = Vec::new();
    for i in 0..30 {
        let api: &Api = if i % 3 == 0 { &first } else { &others[i % 2] };
        quick.push(
            api.submit("test.args", json!({"text": format!("run {i}")}))
                .await,
        );
    }
    let work = tempfile::tempdir().unwrap();
    let again_pid = work.path().join("again.pid");
    let once_pid = work.path().join("once.pid");
    let again = first
        .submit(
            "test.sleep_again",
            json!({"seconds": "3s", "pidfile": again_pid.to_str().unwrap()}),
        )
        .await;
    let once = first
        .submit(
            "test.sleep",
            json!({"seconds": "60s", "pidfile": once_pid.to_str().unwrap()}),
        )
        .await;
    let pids = [
        wait_for_pid(&again_pid).await,
        wait_for_pid(&once_pid).await,
    ];
    let (_, e) = first.get(&format!("/executions/{once}")).await;
    assert_eq!(e["node"], "node-1", "{e}");

    // The leader's machine dies: the process and what it ran.
    first.kill_9();
    for pid in pids {
        kill(pid);
    }
    std::fs::remove_file(&again_pid).unwrap();
    let died = Instant::now();
    let leader = loop {
        let mut leading = Vec::new();
        for n in &others {
            if n.readiness().await.is_some_and(|r| r["leader"] == true) {
                leading.push(n);
            }
        }
        assert!(leading.len() <= 1, "two leaders at once");
        if let Some(n) = leading.pop() {
            break n;
        }
        assert!(died.elapsed() < LEASE * 3, "no node took the lead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = died.elapsed();
    eprintln!(
        "leader lease taken over {} ms after kill -9",
        took.as_millis()
    );

    // The auditor's report, from the new leader: every node, the one
    // killed stopped, and who leads for how long.
    let leader_name = leader.readiness().await.unwrap()["node"].clone();
    let (_, report) = leader.get("/report?actions=test.args").await;
    let cluster = &report["cluster"];
    let nodes: Vec<(&str, bool, bool)> = cluster["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap(),
                n["alive"].as_bool().unwrap(),
                n["leader"].as_bool().unwrap(),
            )
        })
        .collect();
    let leads = |name: &str| leader_name == name;
    assert_eq!(
        nodes,
        [
            ("node-1", false, false),
            ("node-2", true, leads("node-2")),
            ("node-3", true, leads("node-3")),
        ],
        "{cluster}"
    );
    assert_eq!(cluster["leader"], leader_name, "{cluster}");
    assert!(cluster["leader_for"].is_string(), "{cluster}");
    assert_eq!(
        (cluster["storage"].as_str(), cluster["shared"].as_bool()),
        (Some("postgres"), Some(true))
    );

    // Its work: the idempotent run ran again elsewhere, the other is lost.
    let done = leader.wait_finished(again).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_ne!(done["node"], "node-1");
    let lost = leader.wait_finished(once).await;
    assert_eq!(lost["status"], "lost");
    assert_eq!(
        lost["error"],
        "its node node-1 stopped while it was running"
    );
    for id in quick {
        assert_eq!(leader.wait_finished(id).await["status"], "succeeded");
    }

    // Schedules go on from the new leader, each tick once.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = leader
            .get("/executions?origin=schedule:every-second&limit=100")
            .await;
        let runs = page["executions"].as_array().unwrap();
        if runs
            .iter()
            .any(|e| e["node"] != "node-1" && e["status"] == "succeeded")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no schedule ran after the failover: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, page) = leader.get("/audit?limit=5000").await;
    let records = page["records"].as_array().unwrap();
    let mut ticks: Vec<&str> = records
        .iter()
        .filter(|r| r["kind"] == "schedule.fired")
        .filter_map(|r| r["detail"]["tick"].as_str())
        .collect();
    let fired = ticks.len();
    ticks.sort_unstable();
    ticks.dedup();
    assert_eq!(ticks.len(), fired, "a tick fired twice");
    // No execution ran twice: one end each.
    let mut ends: Vec<&str> = records
        .iter()
        .filter(|r| r["kind"] == "execution.finished")
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    let finished = ends.len();
    ends.sort_unstable();
    ends.dedup();
    assert_eq!(ends.len(), finished, "an execution finished twice");
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "execution.requeued"
                && r["subject"] == format!("execution:{again}"))
    );
    // One chain, written by three nodes, verifies.
    let (_, verified) = leader.get("/audit/verify").await;
    assert_eq!(verified["intact"], true, "{verified}");

    // PostgreSQL restarts under load: every connection breaks; the nodes
    // carry on by themselves, and every execution accepted — before, during
    // and after — runs to its end.
    let before = leader.submit("test.args", json!({"text": "before"})).await;
    let stop = AtomicBool::new(false);
    let restart = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::task::block_in_place(|| pg.restart());
        for n in &others {
            let deadline = Instant::now() + Duration::from_secs(30);
            while n.readiness().await.is_none_or(|r| r["status"] != "ready") {
                assert!(Instant::now() < deadline, "{} never ready again", n.url);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::SeqCst);
    };
    let ((one, refused_one), (two, refused_two), ()) = tokio::join!(
        submit_until(&others[0], &stop),
        submit_until(&others[1], &stop),
        restart
    );
    eprintln!(
        "under load: {} accepted, {} refused while PostgreSQL restarted",
        one.len() + two.len(),
        refused_one + refused_two
    );
    assert!(one.len() + two.len() >= 20, "the load went on");
    assert_eq!(leader.wait_finished(before).await["status"], "succeeded");
    for id in one.into_iter().chain(two) {
        let e = leader.wait_finished(id).await;
        assert_eq!(e["status"], "succeeded", "{e}");
    }
    for n in &others {
        let id = n.submit("test.args", json!({"text": "after"})).await;
        assert_eq!(n.wait_finished(id).await["status"], "succeeded");
    }
    let (_, verified) = leader.get("/audit/verify").await;
    assert_eq!(verified["intact"], true, "{verified}");
}

/// The notification of an HA Alertmanager pair: both send the same one.
const PAIR_NOTIFICATION: &str =
    include_str!("../../../switchboard-core/src/alerts/tests/alertmanager-webhook-v4.json");

/// The instances a webhook notification names, with their status.
fn told(notification: &Value) -> Vec<String> {
    let mut list: Vec<String> = notification["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} {}", a["labels"]["instance"], a["status"]).replace('"', ""))
        .collect();
    list.sort();
    list
}

#[tokio::test]
async fn alerts_received_by_any_node_are_notified_once_by_the_leader_and_its_successor() {
    let pg = PgServer::start();
    let url = pg.database("switchboard").await;
    let sink = crate::sinks::Sink::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = crate::sinks::signed_hook_catalog(dir.path(), &sink);
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let extra = ["--config", config.to_str().unwrap()];
    let mut first = Server::start_node(&catalog, &url, "node-1", &extra);
    let second = Server::start_node(&catalog, &url, "node-2", &extra);
    assert_eq!(first.readiness().await.unwrap()["leader"], true);

    // The pair sends the same notification to both nodes: told once.
    let body: Value = serde_json::from_str(PAIR_NOTIFICATION).unwrap();
    for node in [&first, &second] {
        let (status, answer) = node.post("/alerts/alertmanager", body.clone()).await;
        assert_eq!(status, 200, "{answer}");
    }
    let both = ["db-1:9100 firing", "db-2:9100 firing"];
    assert_eq!(told(&sink.wait_for("/hook", 1).await[0]), both);

    // An alert only the follower received reaches the leader's group, and
    // can be acknowledged on either node.
    let (status, answer) = second
        .post(
            "/alerts",
            json!([{"labels": {"alertname": "DiskFull", "instance": "db-3:9100",
                                "job": "node", "severity": "critical", "team": "db"},
                    "status": "firing"}]),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let notes = sink.wait_for("/hook", 2).await;
    assert_eq!(
        told(&notes[1]),
        ["db-1:9100 firing", "db-2:9100 firing", "db-3:9100 firing"]
    );
    let fingerprint = body["alerts"][0]["fingerprint"].as_str().unwrap();
    let (status, ack) = second
        .post(
            &format!("/alerts/{fingerprint}/ack"),
            json!({"comment": "on it"}),
        )
        .await;
    assert_eq!(status, 200, "{ack}");

    // The leader dies; the follower leads, from what the leader stored: it
    // tells nothing again, and tells what comes next.
    first.kill_9();
    let died = Instant::now();
    while second.readiness().await.is_none_or(|r| r["leader"] != true) {
        assert!(died.elapsed() < LEASE * 3, "node-2 never took the lead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut resolved = body.clone();
    resolved["status"] = json!("resolved");
    resolved["alerts"][0]["status"] = json!("resolved");
    resolved["alerts"][0]["endsAt"] = json!("2026-11-24T10:00:00Z");
    resolved["alerts"].as_array_mut().unwrap().truncate(1);
    let (status, answer) = second.post("/alerts/alertmanager", resolved).await;
    assert_eq!(status, 200, "{answer}");
    let notes = sink.wait_for("/hook", 3).await;
    assert_eq!(
        told(&notes[2]),
        ["db-1:9100 resolved", "db-2:9100 firing", "db-3:9100 firing"]
    );
    // Nothing more: no notification was sent twice, by either leader.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all: Vec<Vec<String>> = sink.bodies("/hook").iter().map(told).collect();
    assert_eq!(all.len(), 3, "{all:#?}");
}

#[tokio::test]
async fn a_watcher_on_one_node_follows_live_an_execution_another_node_runs() {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;

    let pg = PgServer::start();
    let url = pg.database("switchboard").await;
    let catalog = test_catalog();
    let runs = Server::start_node(&catalog, &url, "node-1", &[]);
    let watches = Server::start_node(&catalog, &url, "node-2", &[]);
    let id = runs
        .submit("test.stream", json!({"ticks": 6, "interval": "300ms"}))
        .await;
    let mut events = watches
        .output_events(id, None)
        .await
        .bytes_stream()
        .eventsource();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap()
    };
    let first = next().await;
    let (_, e) = watches.get(&format!("/executions/{id}")).await;
    assert_eq!(
        (e["node"].as_str(), e["status"].as_str()),
        (Some("node-1"), Some("running"))
    );
    let mut texts = vec![first.data];
    let end = loop {
        let event = next().await;
        if event.event == "end" {
            break serde_json::from_str::<Value>(&event.data).unwrap();
        }
        texts.push(event.data);
    };
    let texts: Vec<String> = texts
        .iter()
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        texts,
        (1..=6).map(|i| format!("tick {i}")).collect::<Vec<_>>()
    );
    assert_eq!(end["status"], "succeeded");
}
