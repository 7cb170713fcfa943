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
