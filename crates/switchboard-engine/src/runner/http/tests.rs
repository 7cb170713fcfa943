use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use serde_json::{Value, json};
use switchboard_core::{Catalog, ParamSpec, ParamType, RawParams};

use super::*;

/// Requests the test server has seen on `/target` (which a redirect points to).
#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

/// Echoes what it received as JSON, with status 201.
async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let header = |n: &str| {
        headers
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let seen = json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "authorization": header("authorization"),
        "x_note": header("x-note"),
        "content_type": header("content-type"),
        "body": String::from_utf8_lossy(&body),
    });
    (
        StatusCode::CREATED,
        [
            ("content-type", "application/json"),
            ("location", "/things/7"),
        ],
        seen.to_string(),
    )
}

async fn status(Path(code): Path<u16>) -> impl IntoResponse {
    (
        StatusCode::from_u16(code).unwrap(),
        [("location", "/target")],
        "boom\n",
    )
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "late"
}

async fn lines() -> String {
    (0..50).map(|i| format!("line {i}\n")).collect()
}

async fn target(State(hits): State<Hits>) -> &'static str {
    hits.0.fetch_add(1, Ordering::SeqCst);
    "reached"
}

/// A server on 127.0.0.1 and its base URL.
async fn server() -> (String, Hits) {
    let hits = Hits::default();
    let app = Router::new()
        .route("/echo/{*rest}", any(echo))
        .route("/status/{code}", get(status))
        .route("/slow", get(slow))
        .route("/lines", get(lines))
        .route("/target", get(target))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), hits)
}

/// An action of a throwaway catalog, with these parameters and timeout.
fn action(params: Vec<ParamSpec>, timeout: Duration) -> Action {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("actions")).unwrap();
    std::fs::write(
        dir.path().join("actions/t.toml"),
        "name = \"t.t\"\ndescription = \"test\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    let catalog = Catalog::load(dir.path()).unwrap();
    let mut action = (**catalog.action("t.t").unwrap()).clone();
    action.params = params;
    action.timeout = timeout;
    action
}

fn param_specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("app", ParamType::String),
        ParamSpec::new("note", ParamType::String),
        ParamSpec::new("version", ParamType::String),
        ParamSpec::new("token", ParamType::Secret),
    ]
}

struct Ran {
    outcome: RunOutcome,
    lines: Vec<(Stream, String)>,
    took: Duration,
}

impl Ran {
    fn all_text(&self) -> String {
        let mut all: Vec<String> = self.lines.iter().map(|(_, t)| t.clone()).collect();
        all.push(format!("{:?}", self.outcome));
        all.join("\n")
    }

    fn stdout(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(s, _)| *s == Stream::Stdout)
            .map(|(_, t)| t.as_str())
            .collect()
    }
}

async fn run_with(
    spec: Value,
    raw: Value,
    timeout: Duration,
    limits: RunLimits,
    cancel_after: Option<Duration>,
) -> Ran {
    let spec: HttpSpec = serde_json::from_value(spec).unwrap();
    let action = action(param_specs(), timeout);
    let names: Vec<String> = action.params.iter().map(|p| p.name.clone()).collect();
    assert_eq!(spec.check(&names), Vec::new(), "the spec is valid");
    let raw: RawParams = serde_json::from_value(raw).unwrap();
    let params = ValidatedParams::validate(&action.params, &raw).unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let canceller = tokio::spawn(async move {
        if let Some(after) = cancel_after {
            tokio::time::sleep(after).await;
            let _ = cancel_tx.send(true);
        }
        // Keep the sender until the run is over.
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let collector = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(ev) = rx.recv().await {
            if let RunEvent::Output(c) = ev {
                lines.push((c.stream, c.text));
            }
        }
        lines
    });
    let job = HttpRun {
        action: &action,
        spec: &spec,
        params: &params,
        limits: &limits,
    };
    let start = Instant::now();
    let outcome = run(job, tx, cancel_rx).await;
    let took = start.elapsed();
    canceller.abort();
    Ran {
        outcome,
        lines: collector.await.unwrap(),
        took,
    }
}

async fn run_default(spec: Value, raw: Value) -> Ran {
    run_with(
        spec,
        raw,
        Duration::from_secs(10),
        RunLimits::default(),
        None,
    )
    .await
}

#[tokio::test]
async fn values_reach_the_server_only_in_their_place_and_echoed_secrets_are_masked() {
    let (base, _) = server().await;
    let hostile_app = "../admin?x=1#f";
    let hostile_note = "a&admin=1";
    let hostile_version = r#"1", "admin": true, "x": ""#;
    let ran = run_default(
        json!({
            "method": "post",
            "url": format!("{base}/echo/apps/{{{{ app }}}}/deploy?note={{{{ note }}}}"),
            "headers": {"Authorization": "Bearer {{ token }}", "X-Note": "{{ note }}"},
            "json": {"version": "{{ version }}"},
        }),
        json!({"app": hostile_app, "note": hostile_note, "version": hostile_version, "token": "s3cr3t-token"}),
    )
    .await;
    assert_eq!(
        ran.outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        ran.outcome
    );
    let result = ran.outcome.result.clone().unwrap();
    assert_eq!(result["status"], 201);
    assert_eq!(result["headers"]["content-type"], "application/json");
    assert_eq!(result["headers"]["location"], "/things/7");
    let seen = &result["body"];
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/echo/apps/..%2Fadmin%3Fx%3D1%23f/deploy");
    assert_eq!(seen["query"], "note=a%26admin%3D1");
    assert_eq!(seen["x_note"], hostile_note);
    assert_eq!(seen["content_type"], "application/json");
    let body: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"version": hostile_version}));
    // The server echoed the token back: masked in the result and the output.
    assert_eq!(seen["authorization"], "Bearer ****");
    let text = ran.all_text();
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("Bearer ****"), "{text}");
    assert_eq!(ran.lines[0].0, Stream::System);
    assert_eq!(
        ran.lines[0].1,
        format!("POST {base}/echo/apps/..%2Fadmin%3Fx%3D1%23f/deploy?note=a%26admin%3D1")
    );
    assert_eq!(
        ran.lines[1],
        (Stream::System, "HTTP 201 Created".to_owned())
    );
    assert_eq!(ran.stdout().len(), 1);
}

#[tokio::test]
async fn a_secret_in_the_url_is_masked_in_every_form() {
    let (base, _) = server().await;
    let ran = run_default(
        json!({"url": format!("{base}/echo/q?key={{{{ token }}}}")}),
        json!({"token": "p@ss w/rd\"x"}),
    )
    .await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Succeeded);
    let text = ran.all_text();
    assert!(
        text.contains(&format!("GET {base}/echo/q?key=****")),
        "{text}"
    );
    for form in ["p@ss", "p%40ss", "w/rd", "w%2Frd"] {
        assert!(!text.contains(form), "{form} in {text}");
    }
    let result = ran.outcome.result.unwrap();
    assert_eq!(result["body"]["query"], "key=****");
}

#[tokio::test]
async fn an_unexpected_status_fails_and_redirects_are_not_followed() {
    let (base, hits) = server().await;
    let ran = run_default(json!({"url": format!("{base}/status/500")}), json!({})).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Failed);
    assert_eq!(
        ran.outcome.error.as_deref(),
        Some("HTTP 500 Internal Server Error (expected 2xx)")
    );
    let result = ran.outcome.result.clone().unwrap();
    assert_eq!(result["status"], 500);
    assert_eq!(result["body"], "boom\n");
    assert_eq!(ran.stdout(), ["boom"]);

    let ran = run_default(
        json!({"url": format!("{base}/status/500"), "expect_status": [500, 503]}),
        json!({}),
    )
    .await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Succeeded);

    let ran = run_default(
        json!({"url": format!("{base}/status/201"), "expect_status": [200]}),
        json!({}),
    )
    .await;
    assert_eq!(
        ran.outcome.error.as_deref(),
        Some("HTTP 201 Created (expected 200)")
    );

    let ran = run_default(json!({"url": format!("{base}/status/302")}), json!({})).await;
    assert_eq!(
        ran.outcome.error.as_deref(),
        Some("HTTP 302 Found (expected 2xx)")
    );
    assert_eq!(
        ran.outcome.result.unwrap()["headers"]["location"],
        "/target"
    );
    assert_eq!(
        hits.0.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

#[tokio::test]
async fn the_action_timeout_bounds_the_request() {
    let (base, _) = server().await;
    let ran = run_with(
        json!({"url": format!("{base}/slow")}),
        json!({}),
        Duration::from_millis(300),
        RunLimits::default(),
        None,
    )
    .await;
    assert_eq!(ran.outcome.status, ExecutionStatus::TimedOut);
    assert_eq!(ran.outcome.error.as_deref(), Some("timed out after 300ms"));
    assert!(ran.took < Duration::from_secs(5), "{:?}", ran.took);
    assert!(
        ran.lines
            .iter()
            .any(|(s, t)| *s == Stream::System && t.contains("timed out"))
    );
}

#[tokio::test]
async fn cancelling_abandons_the_request() {
    let (base, _) = server().await;
    let ran = run_with(
        json!({"url": format!("{base}/slow")}),
        json!({}),
        Duration::from_secs(30),
        RunLimits::default(),
        Some(Duration::from_millis(200)),
    )
    .await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Cancelled);
    assert_eq!(ran.outcome.error.as_deref(), Some("cancelled"));
    assert!(ran.took < Duration::from_secs(5), "{:?}", ran.took);
}

#[tokio::test]
async fn output_is_capped_like_the_local_runner_caps_it() {
    let (base, _) = server().await;
    let limits = RunLimits {
        max_output_bytes: 100,
        ..RunLimits::default()
    };
    let ran = run_with(
        json!({"url": format!("{base}/lines")}),
        json!({}),
        Duration::from_secs(10),
        limits,
        None,
    )
    .await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Succeeded);
    assert!(ran.outcome.output_truncated);
    assert!(ran.stdout().len() < 50);
    assert!(ran.lines.iter().any(|(s, t)| *s == Stream::System
        && t == "[output truncated: more than 100 bytes; the rest is discarded]"));
    // The result keeps the whole body (it is within its own cap).
    let body = ran.outcome.result.unwrap()["body"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(body.ends_with("line 49\n"), "{body}");
}

#[tokio::test]
async fn a_connection_error_is_clear_and_shows_no_secret() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let ran = run_default(
        json!({
            "url": format!("http://{addr}/x?key={{{{ token }}}}"),
            "headers": {"Authorization": "Bearer {{ token }}"},
        }),
        json!({"token": "s3cr3t-token"}),
    )
    .await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Failed);
    let error = ran.outcome.error.clone().unwrap();
    assert!(
        error.starts_with(&format!("the request to {addr} failed: ")),
        "{error}"
    );
    assert!(!ran.all_text().contains("s3cr3t"), "{}", ran.all_text());
}

#[tokio::test]
async fn a_value_that_cannot_be_sent_fails_before_anything_is_sent() {
    let (base, _) = server().await;
    let ran = run_default(
        json!({"url": format!("{base}/echo/x"), "headers": {"X-Note": "{{ note }}"}}),
        json!({"note": "a\r\nX-Admin: yes"}),
    )
    .await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Failed);
    let error = ran.outcome.error.unwrap();
    assert!(error.contains("header `X-Note`"), "{error}");
    assert!(!error.contains("X-Admin"), "{error}");
    assert!(ran.lines.is_empty(), "nothing was sent: {:?}", ran.lines);
}
