//! Executions over their whole life: timeouts, cancel, restarts, crashes,
//! limits and catalog reloads.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Server, alive, copy_catalog, read_pids, test_catalog};

#[tokio::test]
async fn a_timed_out_process_tree_leaves_no_survivor() {
    let server = Server::start(&test_catalog());
    let pidfile = server.data.path().join("tree.pids");
    let id = server
        .submit("test.tree", json!({"pidfile": pidfile}))
        .await;
    let e = server.wait_finished(id).await;
    assert_eq!(e["status"], "timed_out", "{e}");
    assert_eq!(e["error"], "timed out after 1s");
    let pids = read_pids(&pidfile);
    assert_eq!(pids.len(), 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for pid in pids {
        assert!(!alive(pid), "process {pid} survived the timeout");
    }
    let out = server.output_text(id).await;
    assert!(
        out.contains("[switchboard] timed out after 1s; stopping the process group"),
        "{out}"
    );
    assert!(out.contains("sending SIGKILL"), "{out}");
}

#[tokio::test]
async fn cancel_stops_a_running_execution_and_a_queued_one() {
    let server = Server::start_with(&test_catalog(), &["--max-concurrency", "1"]);
    let pidfile = server.data.path().join("sleep.pid");
    let running = server
        .submit("test.sleep", json!({"seconds": "60s", "pidfile": pidfile}))
        .await;
    server.wait_for(running, |s| s == "running").await;
    let queued = server.submit("test.args", json!({"text": "never"})).await;
    let pid = read_pids(&pidfile)[0];

    let (status, e) = server
        .post(&format!("/executions/{queued}/cancel"), json!({}))
        .await;
    assert_eq!(
        (status, e["status"].as_str()),
        (200, Some("cancelled")),
        "{e}"
    );
    assert_eq!(e["error"], "cancelled by admin");

    let out = server.cli(&["cancel", &running.to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("#{running} test.sleep cancelled")
    );
    assert!(!alive(pid), "the cancelled process {pid} still runs");

    let (status, e) = server
        .post(&format!("/executions/{running}/cancel"), json!({}))
        .await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(
        e["error"]["message"],
        format!("execution {running} is already cancelled")
    );
}

#[tokio::test]
async fn executions_and_their_output_survive_a_restart() {
    let mut server = Server::start(&test_catalog());
    let id = server.submit("test.args", json!({"text": "kept"})).await;
    server.wait_finished(id).await;
    let before = server.output_text(id).await;
    server.restart();
    let (status, e) = server.get(&format!("/executions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(e["status"], "succeeded");
    assert_eq!(server.output_text(id).await, before);
    assert!(before.contains("env:kept"));
    let next = server.submit("test.args", json!({"text": "again"})).await;
    assert!(next > id);
}

#[tokio::test]
async fn running_executions_of_a_killed_server_are_lost_after_restart() {
    let mut server = Server::start(&test_catalog());
    let pidfile = server.data.path().join("sleep.pid");
    let id = server
        .submit("test.sleep", json!({"seconds": "30s", "pidfile": pidfile}))
        .await;
    server.wait_for(id, |s| s == "running").await;
    let orphan = read_pids(&pidfile)[0];
    server.kill_9();
    // The orphaned process is not Switchboard's to reap any more; end it so
    // the test leaves nothing behind.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(orphan),
        nix::sys::signal::Signal::SIGKILL,
    );
    server.start_again();
    let (_, e) = server.get(&format!("/executions/{id}")).await;
    assert_eq!(e["status"], "lost", "{e}");
    assert_eq!(e["error"], "the node stopped while it was running");
    assert!(e["finished_at"].is_string());
}

#[tokio::test]
async fn per_action_concurrency_limit_runs_one_at_a_time() {
    let server = Server::start(&test_catalog());
    let a = server.submit("test.serial", json!({"seconds": "1s"})).await;
    let b = server.submit("test.serial", json!({"seconds": "1s"})).await;
    let other = server
        .submit("test.args", json!({"text": "not held back"}))
        .await;
    let other = server.wait_finished(other).await;
    let a = server.wait_finished(a).await;
    let b = server.wait_finished(b).await;
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("succeeded"), Some("succeeded"))
    );
    let t = |e: &serde_json::Value, k: &str| e[k].as_str().unwrap().to_owned();
    assert!(
        t(&b, "started_at") >= t(&a, "finished_at"),
        "b started before a finished: {a} {b}"
    );
    assert!(
        t(&other, "finished_at") < t(&a, "finished_at"),
        "an unlimited action waited for a limited one"
    );
}

#[tokio::test]
async fn output_beyond_the_cap_is_dropped_with_a_marker() {
    let server = Server::start_with(&test_catalog(), &["--max-output-bytes", "4096"]);
    let id = server.submit("test.flood", json!({"lines": 5000})).await;
    let e = server.wait_finished(id).await;
    assert_eq!(e["status"], "succeeded");
    assert_eq!(e["output_truncated"], true);
    assert!(e["output_bytes"].as_i64().unwrap() > 100_000);
    let out = server.output_text(id).await;
    assert!(out.len() < 5000, "{} bytes kept", out.len());
    assert!(
        out.trim_end().ends_with(
            "[switchboard] [output truncated: more than 4096 bytes; the rest is discarded]"
        ),
        "{out}"
    );
}

#[tokio::test]
async fn a_failed_reload_keeps_the_last_good_catalog_serving() {
    let dir = tempfile::tempdir().unwrap();
    copy_catalog(&test_catalog(), dir.path());
    let server = Server::start(dir.path());
    let good = std::fs::read_to_string(dir.path().join("actions/args.toml")).unwrap();
    std::fs::write(
        dir.path().join("actions/args.toml"),
        good.replace("type     = \"string\"", "type     = \"strng\""),
    )
    .unwrap();

    let (status, body) = server.post("/catalog/reload", json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"][0]["field"],
        "actions/args.toml:7: params.text.type"
    );
    let (_, catalog) = server.get("/catalog").await;
    assert!(
        catalog["last_reload_error"]
            .as_str()
            .unwrap()
            .contains("unknown type `strng`")
    );
    let id = server
        .submit("test.args", json!({"text": "still served"}))
        .await;
    assert_eq!(server.wait_finished(id).await["status"], "succeeded");

    // Fixed, plus a new action, and reloaded by SIGHUP.
    std::fs::write(dir.path().join("actions/args.toml"), &good).unwrap();
    std::fs::write(
        dir.path().join("actions/new.toml"),
        "name = \"test.new\"\ndescription = \"Added while serving\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.pid()),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = server.get("/actions/test.new").await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload the catalog"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, catalog) = server.get("/catalog").await;
    assert!(catalog["last_reload_error"].is_null());
    assert_eq!(catalog["actions"], 10);
}

#[tokio::test]
async fn shutdown_drains_running_work_and_restart_resumes_the_queue() {
    let mut server = Server::start_with(&test_catalog(), &["--max-concurrency", "1"]);
    let running = server.submit("test.sleep", json!({"seconds": "1s"})).await;
    server.wait_for(running, |s| s == "running").await;
    let plain = server.submit("test.args", json!({"text": "resumed"})).await;
    let secret = server
        .submit("test.secret", json!({"token": "hunter2"}))
        .await;

    server.restart();

    let (_, e) = server.get(&format!("/executions/{running}")).await;
    assert_eq!(
        e["status"], "succeeded",
        "a run that ends within the drain time is not cut short: {e}"
    );
    let e = server.wait_finished(plain).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert!(server.output_text(plain).await.contains("env:resumed"));
    let e = server.wait_finished(secret).await;
    assert_eq!(e["status"], "lost", "{e}");
    assert_eq!(
        e["error"],
        "not resumed after a restart: secret parameters are never stored, so it cannot run again"
    );
    assert_eq!(e["params"]["token"], "****");
}
