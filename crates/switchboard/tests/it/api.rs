//! The HTTP API: submission, validation errors, streaming, OpenAPI, metrics.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::harness::{Server, test_catalog};

#[tokio::test]
async fn injection_attempts_reach_the_program_as_plain_text() {
    let server = Server::start(&test_catalog());
    let marker = server.data.path().join("pwned");
    let m = marker.display();
    let attempts = [
        format!("x; touch {m}"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("a\ntouch {m}"),
        format!("' \" \\ | & > {m}"),
    ];
    for attempt in &attempts {
        let id = server
            .submit("test.args", json!({"text": attempt, "items": ["-rf", "*"]}))
            .await;
        let e = server.wait_finished(id).await;
        assert_eq!(e["status"], "succeeded", "{e}");
        let out = server.output_text(id).await;
        let expected = format!("arg:{attempt}\narg:--\narg:-rf\narg:*\nenv:{attempt}\n");
        // A newline inside a value prints as two lines; compare whole text.
        assert_eq!(out, expected);
    }
    assert!(
        !marker.exists(),
        "a parameter value was interpreted by a shell"
    );
}

#[tokio::test]
async fn bad_requests_get_clear_errors_naming_the_field() {
    let server = Server::start(&test_catalog());
    let (status, body) = server
        .post("/executions", json!({"action": "test.arg", "params": {}}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "unknown_action");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `test.args`?"),
        "{body}"
    );

    let (status, body) = server
        .post(
            "/executions",
            json!({"action": "test.stream", "params": {"tick": 3, "interval": "soon"}}),
        )
        .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["params.tick", "params.interval"], "{body}");
    assert!(
        body["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `ticks`")
    );

    let (status, body) = server
        .post(
            "/executions",
            json!({"action": "test.stream", "params": {"ticks": "many"}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"]["details"][0]["message"],
        "expected a whole number, got `many`"
    );

    let (status, body) = server
        .post("/executions", json!({"action": "test.args"}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["details"][0]["field"], "params.text");

    let (status, body) = server.post("/executions", json!({"params": {}})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing field `action`"),
        "{body}"
    );

    let (status, body) = server
        .post("/executions", json!({"action": "test.args", "parms": {}}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `parms`"),
        "{body}"
    );

    let resp = server
        .http
        .post(server.api("/executions"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    // The server refuses the body without reading it and closes that
    // connection, so this request gets a client of its own.
    let huge = "x".repeat(2 * 1024 * 1024);
    let resp = crate::harness::Api::new(server.url.clone())
        .http
        .post(server.api("/executions"))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body_too_large");

    for (path, status) in [
        ("/executions/abc", 400),
        ("/executions/0", 400),
        ("/executions/999999", 404),
        ("/nowhere", 404),
        ("/executions?status=bogus", 400),
        ("/executions?limit=0", 400),
        ("/executions?since=yesterday", 400),
        ("/actions/no.such", 404),
    ] {
        let (got, body) = server.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    }
    let resp = server
        .http
        .delete(server.api("/executions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);

    let (status, _) = server.get("/executions").await;
    assert_eq!(status, 200, "nothing stored was harmed by the bad requests");
}

#[tokio::test]
async fn output_streams_live_as_server_sent_events() {
    let server = Server::start(&test_catalog());
    let id = server
        .submit("test.stream", json!({"ticks": 6, "interval": "300ms"}))
        .await;
    let resp = server.output_events(id, None).await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = resp.bytes_stream().eventsource();
    let first = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.event, "output");
    let chunk: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(chunk["text"], "tick 1");
    assert_eq!(chunk["stream"], "stdout");
    assert!(chunk["ts"].as_str().unwrap().ends_with('Z'));
    let (_, e) = server.get(&format!("/executions/{id}")).await;
    assert_eq!(
        e["status"], "running",
        "the first line arrived while the action was still running"
    );

    let mut texts = vec![chunk["text"].as_str().unwrap().to_owned()];
    let end = loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if ev.event == "end" {
            break serde_json::from_str::<Value>(&ev.data).unwrap();
        }
        texts.push(
            serde_json::from_str::<Value>(&ev.data).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    };
    assert_eq!(
        texts,
        (1..=6).map(|i| format!("tick {i}")).collect::<Vec<_>>()
    );
    assert_eq!(end["status"], "succeeded");

    // A late watcher resuming after event 4 gets the rest, then the end.
    let resp = server.output_events(id, Some(4)).await;
    let events: Vec<_> = resp.bytes_stream().eventsource().collect().await;
    let names: Vec<String> = events
        .iter()
        .map(|e| e.as_ref().unwrap().event.clone())
        .collect();
    assert_eq!(names, ["output", "output", "end"]);

    let resp = server
        .http
        .get(server.api(&format!("/executions/{id}/output")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["complete"], true);
    assert_eq!(body["chunks"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn listing_filters_and_pages() {
    let server = Server::start(&test_catalog());
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            server
                .submit("test.args", json!({"text": format!("n{i}")}))
                .await,
        );
    }
    let fail = server.submit("test.fail", json!({"code": 3})).await;
    for id in ids.iter().chain([&fail]) {
        server.wait_finished(*id).await;
    }
    let (_, page) = server.get("/executions?limit=2").await;
    let got: Vec<i64> = page["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [fail, ids[4]]);
    let next = page["next_before"].as_i64().unwrap();
    let (_, page) = server
        .get(&format!("/executions?limit=2&before={next}"))
        .await;
    let got: Vec<i64> = page["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [ids[3], ids[2]]);
    let (_, page) = server
        .get("/executions?action=test.fail&status=failed&origin=api&requester=admin")
        .await;
    assert_eq!(page["executions"].as_array().unwrap().len(), 1);
    assert_eq!(page["executions"][0]["error"], "exited with status 3");
    assert_eq!(page["executions"][0]["exit_code"], 3);
    assert!(page["next_before"].is_null());
}

#[tokio::test]
async fn openapi_document_covers_every_route() {
    let server = Server::start(&test_catalog());
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("get", "/api/v1/actions"),
        ("get", "/api/v1/actions/{name}"),
        ("get", "/api/v1/executions"),
        ("post", "/api/v1/executions"),
        ("get", "/api/v1/executions/{id}"),
        ("get", "/api/v1/executions/{id}/output"),
        ("post", "/api/v1/executions/{id}/cancel"),
        ("get", "/api/v1/catalog"),
        ("post", "/api/v1/catalog/reload"),
        ("get", "/api/v1/audit"),
        ("get", "/api/v1/audit/verify"),
        ("post", "/api/v1/audit/offline"),
        ("get", "/api/v1/tokens"),
        ("post", "/api/v1/tokens"),
        ("delete", "/api/v1/tokens/{id}"),
        ("get", "/api/v1/whoami"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    ];
    for (method, path) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    // And every documented route is served (no `no_route` or 405 answer).
    let id = server.submit("test.args", json!({"text": "x"})).await;
    server.wait_finished(id).await;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let url = format!(
                "{}{}",
                server.url,
                path.replace("{id}", &id.to_string())
                    .replace("{name}", "test.args")
            );
            let req = match method.as_str() {
                "get" => server.http.get(&url),
                "post" => server.http.post(&url).json(&json!({})),
                "delete" => server.http.delete(&url),
                other => panic!("unexpected method {other}"),
            };
            let resp = req.send().await.unwrap();
            assert_ne!(resp.status().as_u16(), 405, "{method} {path}");
            let body = resp.text().await.unwrap();
            assert!(
                !body.contains("no_route"),
                "{method} {path} is documented but not served"
            );
        }
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = Server::start(&test_catalog());
    let id = server.submit("test.args", json!({"text": "x"})).await;
    server.wait_finished(id).await;
    let (status, health) = server.page("/healthz").await;
    assert_eq!(status, 200);
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    let (status, _) = server.page("/readyz").await;
    assert_eq!(status, 200);
    let (_, metrics) = server.page("/metrics").await;
    for expected in [
        "switchboard_executions_finished_total{status=\"succeeded\"} 1",
        "switchboard_executions_submitted_total 1",
        "switchboard_queue_depth 0",
        "switchboard_catalog_actions 9",
        "switchboard_execution_start_latency_seconds_count 1",
    ] {
        assert!(
            metrics.contains(expected),
            "`{expected}` missing from:\n{metrics}"
        );
    }
}

/// The API's JSON is a contract: a change to it shows up here.
#[tokio::test]
async fn action_and_execution_json_shapes() {
    let server = Server::start(&crate::harness::sample_catalog());
    let (_, action) = server.get("/actions/host.logs").await;
    insta::assert_json_snapshot!("action_host_logs", action);
    let id = server
        .submit("demo.login", json!({"token": "s3cr3t"}))
        .await;
    let e = server.wait_finished(id).await;
    insta::assert_json_snapshot!("execution_demo_login", e, {
        ".id" => "[id]",
        ".node" => "[node]",
        ".created_at" => "[time]",
        ".started_at" => "[time]",
        ".finished_at" => "[time]",
        ".duration_ms" => "[ms]",
    });
}
