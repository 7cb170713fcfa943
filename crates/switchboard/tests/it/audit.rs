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
            "cluster.leader node:test-node elected switchboard".to_owned(),
            "authz.decision action:test.secret allowed admin".to_owned(),
            format!("execution.requested execution:{ok} queued admin"),
            format!("execution.finished execution:{ok} succeeded admin"),
            "authz.decision action:test.fail allowed admin".to_owned(),
            format!("execution.requested execution:{failed} queued admin"),
            format!("execution.finished execution:{failed} failed admin"),
            "authz.decision switchboard allowed admin".to_owned(),
            "catalog.reloaded catalog unchanged admin".to_owned(),
            "authz.decision switchboard allowed admin".to_owned(),
        ]
    );
    assert_eq!(records[2]["detail"]["verb"], "run");
    assert_eq!(records[2]["detail"]["policies"][0]["id"], "builtin:admin");
    assert_eq!(records[3]["detail"]["params"]["token"], "****");
    assert_eq!(records[3]["origin"], "api");
    assert_eq!(records[7]["detail"]["exit_code"], 2);

    let out = server.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("audit chain intact: 12 records, head "),
        "{}",
        text(&out.stdout)
    );
    let out = server.cli(&["audit", "export"]);
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    // Verifying and exporting are admin acts, recorded too.
    assert_eq!(lines.len(), 13);
    assert!(!text(&out.stdout).contains("hunter2-secret"));

    // Someone with write access to the database rewrites history.
    server.stop();
    let db = server.data.path().join("db.sqlite");
    let url = format!("sqlite://{}", db.display());
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_log SET outcome = 'succeeded' WHERE seq = 6")
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
        "audit chain BROKEN at record 6: its content does not match its hash (5 records before it verify)"
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

#[tokio::test]
async fn records_are_forwarded_to_syslog_and_a_signed_webhook() {
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncReadExt;

    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (udp_addr, tcp_addr, hook_addr) = (
        udp.local_addr().unwrap(),
        tcp.local_addr().unwrap(),
        hook.local_addr().unwrap(),
    );

    /// What the webhook received: timestamp header, signature header, body.
    type Delivery = (String, String, Vec<u8>);
    let received: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/audit",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    sink.lock().unwrap().push((
                        h("x-switchboard-timestamp"),
                        h("x-switchboard-signature"),
                        body.to_vec(),
                    ));
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(hook, app).await });

    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("hook-secret");
    std::fs::write(&secret_file, "s3cr3t-hook-key\n").unwrap();
    let config = format!(
        "[[audit_forward]]\nsyslog = \"udp://{udp_addr}\"\n\n[[audit_forward]]\nsyslog = \"tcp://{tcp_addr}\"\n\n\
         [[audit_forward]]\nwebhook = \"http://{hook_addr}/audit\"\nsecret = \"file:{}\"\n",
        secret_file.display()
    );
    let server = Server::start_with_config(&test_catalog(), &config);
    let id = server
        .submit("test.args", json!({"text": "forwarded"}))
        .await;
    server.wait_finished(id).await;

    // UDP: one RFC 5424 message per record.
    let mut buf = vec![0u8; 65536];
    let mut udp_msgs = Vec::new();
    while udp_msgs.len() < 5 {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), udp.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        udp_msgs.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(udp_msgs[0].starts_with("<86>1 "), "{}", udp_msgs[0]);
    let msgids: Vec<&str> = udp_msgs
        .iter()
        .map(|m| m.split(' ').nth(5).unwrap())
        .collect();
    assert_eq!(
        msgids,
        [
            "catalog.loaded",
            "cluster.leader",
            "authz.decision",
            "execution.requested",
            "execution.finished"
        ]
    );
    let json_part = udp_msgs[3].split_once(" - ").unwrap().1;
    let record: serde_json::Value = serde_json::from_str(json_part).unwrap();
    assert_eq!(record["subject"], format!("execution:{id}"));

    // TCP: octet-counted frames (RFC 6587).
    let (mut stream, _) = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.accept())
        .await
        .unwrap()
        .unwrap();
    let mut data = Vec::new();
    let mut frames = Vec::new();
    while frames.len() < 5 {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed early");
        data.extend_from_slice(&chunk[..n]);
        while let Some(space) = data.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&data[..space])
                .unwrap()
                .parse()
                .unwrap();
            if data.len() < space + 1 + len {
                break;
            }
            frames.push(String::from_utf8(data[space + 1..space + 1 + len].to_vec()).unwrap());
            data.drain(..space + 1 + len);
        }
    }
    assert!(
        frames[4].contains(" execution.finished - "),
        "{}",
        frames[4]
    );

    // Webhook: signed batches carrying every record.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut records = Vec::new();
    while records.len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "webhook got {records:?}"
        );
        for (ts, signature, body) in received.lock().unwrap().drain(..) {
            let expected = switchboard_engine_signature(b"s3cr3t-hook-key", &ts, &body);
            assert_eq!(
                signature,
                format!("sha256={expected}"),
                "the signature verifies"
            );
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            records.extend(
                v["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["kind"].as_str().unwrap().to_owned()),
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        records[..5],
        [
            "catalog.loaded",
            "cluster.leader",
            "authz.decision",
            "execution.requested",
            "execution.finished"
        ]
    );
}

/// HMAC-SHA256 over `<timestamp>.<body>`, hex, computed here independently
/// of the server's code.
fn switchboard_engine_signature(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    // HMAC (RFC 2104) by hand over aws-lc's SHA-256, so the test does not
    // reuse the implementation it checks.
    use aws_lc_rs::digest::{SHA256, digest};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let mut inner = pad(0x36);
    inner.extend_from_slice(timestamp.as_bytes());
    inner.push(b'.');
    inner.extend_from_slice(body);
    let mut outer = pad(0x5c);
    outer.extend_from_slice(digest(&SHA256, &inner).as_ref());
    digest(&SHA256, &outer)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
