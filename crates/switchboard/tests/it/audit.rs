//! The audit log as an auditor meets it: what is recorded, secrets masked,
//! verification over the API and the CLI, and tampering detected.

use serde_json::json;

use crate::harness::{Server, test_catalog, text};

#[tokio::test]
async fn every_execution_and_reload_is_recorded_and_the_chain_verifies() {
    let mut server = Server::start(&test_catalog());
    let ok = server
        .submit("test.secret", json!({"token": "hunter2-secret"}))
        .await;
    server.wait_finished(ok).await;
    let failed = server.submit("test.fail", json!({"code": 2})).await;
    server.wait_finished(failed).await;
    let (status, _) = server.post("/catalog/reload", json!({})).await;
    assert_eq!(status, 200);

    let (_, page) = server.get("/audit").await;
    let records = page["records"].as_array().unwrap();
    let summary: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["kind"].as_str().unwrap(),
                r["subject"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["actor"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "catalog.loaded catalog ok switchboard".to_owned(),
            format!("execution.requested execution:{ok} queued admin"),
            format!("execution.finished execution:{ok} succeeded admin"),
            format!("execution.requested execution:{failed} queued admin"),
            format!("execution.finished execution:{failed} failed admin"),
            "catalog.reloaded catalog unchanged admin".to_owned(),
        ]
    );
    assert_eq!(records[1]["detail"]["params"]["token"], "****");
    assert_eq!(records[1]["origin"], "api");
    assert_eq!(records[4]["detail"]["exit_code"], 2);

    let out = server.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("audit chain intact: 6 records, head "),
        "{}",
        text(&out.stdout)
    );
    let out = server.cli(&["audit", "export"]);
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 6);
    assert!(!text(&out.stdout).contains("hunter2-secret"));

    // Someone with write access to the database rewrites history.
    server.stop();
    let db = server.data.path().join("db.sqlite");
    let url = format!("sqlite://{}", db.display());
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_log SET outcome = 'succeeded' WHERE seq = 5")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["audit", "verify", "--storage", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stdout).trim(),
        "audit chain BROKEN at record 5: its content does not match its hash (4 records before it verify)"
    );
}

#[tokio::test]
async fn offline_runs_join_the_chain_once_with_their_own_time_and_origin() {
    let server = Server::start(&test_catalog());
    let spool = server.data.path().join("spool.jsonl");
    let catalog = crate::harness::sample_catalog();
    for message in ["first", "second"] {
        let out = std::process::Command::new(crate::harness::BIN)
            .args([
                "run",
                "--local",
                "--catalog",
                catalog.to_str().unwrap(),
                "demo.echo",
                &format!("message={message}"),
            ])
            .env("SWITCHBOARD_SPOOL", &spool)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let lines = std::fs::read_to_string(&spool).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();

    let push = || server.cli(&["audit", "push", "--spool", spool.to_str().unwrap()]);
    let out = push();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout).trim(),
        "2 offline runs added to the audit log, 0 already there"
    );
    assert_eq!(
        std::fs::read_to_string(&spool).unwrap(),
        "",
        "the spool is emptied once pushed"
    );

    // The same records again (a copy kept elsewhere), plus a torn line.
    std::fs::write(&spool, format!("{lines}{{\"version\": 1, \"id\"\n")).unwrap();
    let out = push();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        text(&out.stdout).trim(),
        "0 offline runs added to the audit log, 2 already there"
    );
    assert!(
        text(&out.stderr).contains("spool.jsonl:3: not a record, kept in the spool"),
        "{}",
        text(&out.stderr)
    );

    let (_, page) = server.get("/audit").await;
    let offline: Vec<&serde_json::Value> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "execution.offline")
        .collect();
    assert_eq!(offline.len(), 2);
    assert_eq!(
        offline[0]["ts"], first["started_at"],
        "the run keeps its own time"
    );
    assert_eq!(offline[0]["origin"], "local");
    assert_eq!(offline[0]["actor"], "admin", "who pushed it answers for it");
    assert_eq!(offline[0]["outcome"], "succeeded");
    assert_eq!(offline[0]["detail"]["params"]["message"], "first");
    assert_eq!(offline[0]["detail"]["pushed_through"], "cli");
    let (_, verified) = server.get("/audit/verify").await;
    assert_eq!(verified["intact"], true, "{verified}");

    let (status, body) = server
        .post("/audit/offline", json!({"runs": [{"version": 9, "id": "x", "action": "a.b", "params": {}, "requester": "r", "os_user": "u", "host": "h", "origin": "local", "catalog_version": "v", "catalog_git_commit": null, "status": "succeeded", "exit_code": 0, "error": null, "result": null, "output_bytes": 0, "output_truncated": false, "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01Z"}]}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("spool format version 9 is not supported")
    );
}
