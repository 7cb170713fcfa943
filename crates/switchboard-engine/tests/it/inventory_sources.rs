#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the unexpected"
)]
//! Dynamic inventory sources through a running engine: a `file_sd` file
//! rewritten (and broken) under it, an HTTP source with a bearer token, and
//! a catalog reload that drops a source.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use switchboard_core::{Catalog, Origin, Principal};
use switchboard_engine::inventory_sources::SourceState;
use switchboard_engine::{Engine, EngineConfig};

/// How long a refresh may take to show before the test fails.
const DEADLINE: Duration = Duration::from_secs(15);

struct TestEngine {
    engine: Engine,
    dir: tempfile::TempDir,
}

/// An engine on a fresh database, serving a catalog with this inventory.
async fn start(inventory: &str, files: &[(&str, &str)]) -> TestEngine {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    std::fs::create_dir_all(root.join("actions")).unwrap();
    std::fs::write(
        root.join("actions/t.toml"),
        "name = \"t.t\"\ndescription = \"test\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    std::fs::write(root.join("inventory.toml"), inventory).unwrap();
    for (path, text) in files {
        write_atomically(&root.join(path), text);
    }
    let catalog = Catalog::load(&root).unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = switchboard_store::open(&url).await.unwrap();
    let config = EngineConfig {
        temp_dir: dir.path().to_path_buf(),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store, catalog, config).await.unwrap();
    TestEngine { engine, dir }
}

/// Replaces a file the way tools should (write, then rename), so a refresh
/// never reads it half written.
fn write_atomically(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls `check` until it holds, failing the test after [`DEADLINE`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn names(engine: &Engine) -> Vec<String> {
    engine.inventory().hosts().map(|h| h.name.clone()).collect()
}

fn state(engine: &Engine, name: &str) -> SourceState {
    engine
        .inventory_sources()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap()
}

const FILE_SD: &str = r#"
[[hosts]]
name = "web-1"
groups = ["web"]

[groups.monitored]
children = ["discovered"]

[[sources]]
name = "nodes"
file_sd = "targets/*.json"
refresh = "1s"
groups = ["discovered"]
"#;

#[tokio::test]
async fn a_rewritten_file_is_picked_up_and_a_broken_one_keeps_the_hosts() {
    let t = start(
        FILE_SD,
        &[(
            "targets/a.json",
            r#"[{"targets": ["node-1:9100", "web-1:9100"], "labels": {"job": "node"}}]"#,
        )],
    )
    .await;
    let engine = &t.engine;
    eventually("the first refresh", || {
        names(engine).contains(&"node-1".to_owned())
    })
    .await;
    assert_eq!(names(engine), ["node-1", "web-1"]);
    let inventory = engine.inventory();
    let node1 = inventory.host("node-1").unwrap();
    assert_eq!(node1.vars["target_port"], "9100");
    assert_eq!(node1.vars["job"], "node");
    assert!(node1.groups.contains("monitored"));
    // The declared host wins over the discovered one.
    assert!(!inventory.host("web-1").unwrap().vars.contains_key("job"));
    let names_of = |selector: &str| -> Vec<String> {
        inventory
            .select(selector)
            .unwrap()
            .iter()
            .map(|h| h.name.clone())
            .collect()
    };
    assert_eq!(names_of("group:monitored"), ["node-1"]);
    let s = state(engine, "nodes");
    assert_eq!((s.kind, s.location.as_str()), ("file_sd", "targets/*.json"));
    assert_eq!(s.hosts, 2);
    assert!(s.last_refresh.is_some() && s.last_error.is_none());
    // Cached while nothing changes.
    assert!(Arc::ptr_eq(&engine.inventory(), &engine.inventory()));

    let root = t.dir.path().join("catalog");
    write_atomically(
        &root.join("targets/a.json"),
        r#"[{"targets": ["node-2:9100"], "labels": {"group": "linux"}}]"#,
    );
    write_atomically(&root.join("targets/b.json"), r#"[{"targets": ["node-3"]}]"#);
    eventually("the rewrite", || {
        names(engine) == ["node-2", "node-3", "web-1"]
    })
    .await;
    assert!(
        engine
            .inventory()
            .host("node-2")
            .unwrap()
            .groups
            .contains("linux")
    );

    write_atomically(&root.join("targets/b.json"), "[{\"targets\": [\"node-4\"");
    eventually("the error", || state(engine, "nodes").last_error.is_some()).await;
    let s = state(engine, "nodes");
    let error = s.last_error.unwrap();
    assert!(
        error.starts_with("targets/b.json: not a file_sd document"),
        "{error}"
    );
    assert!(s.last_error_at.is_some());
    assert_eq!(s.hosts, 2, "the previous hosts are kept");
    assert_eq!(names(engine), ["node-2", "node-3", "web-1"]);

    // Fixed again: the error clears.
    write_atomically(&root.join("targets/b.json"), r#"[{"targets": ["node-4"]}]"#);
    eventually("the recovery", || {
        names(engine) == ["node-2", "node-4", "web-1"]
    })
    .await;
    assert!(state(engine, "nodes").last_error.is_none());

    // A reload without the source drops it and its hosts.
    std::fs::write(root.join("inventory.toml"), "[[hosts]]\nname = \"web-1\"\n").unwrap();
    engine
        .reload_catalog(&Principal::system(), &Origin::system())
        .await
        .unwrap();
    assert_eq!(names(engine), ["web-1"]);
    assert!(engine.inventory_sources().is_empty());
}

/// A CMDB that answers only with the right bearer token.
async fn cmdb() -> String {
    async fn targets(headers: HeaderMap) -> Result<String, StatusCode> {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some("Bearer tok-123") {
            return Err(StatusCode::UNAUTHORIZED);
        }
        Ok(r#"[{"targets": ["db-1:5432", "db-2:5432"], "labels": {"groups": "db,postgres", "tags": "pg16"}}]"#.to_owned())
    }
    let app = Router::new().route("/targets", get(targets)).route(
        "/moved",
        get(|| async { (StatusCode::FOUND, [("location", "/targets")]) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_http_source_sends_its_bearer_token() {
    let base = cmdb().await;
    let secrets = tempfile::tempdir().unwrap();
    let good = secrets.path().join("good");
    let bad = secrets.path().join("bad");
    std::fs::write(&good, "tok-123\n").unwrap();
    std::fs::write(&bad, "wrong\n").unwrap();
    let inventory = format!(
        r#"
[[sources]]
name = "cmdb"
http = "{base}/targets"
refresh = "1s"
bearer = "file:{good}"

[[sources]]
name = "wrong-token"
http = "{base}/targets"
refresh = "1s"
bearer = "file:{bad}"

[[sources]]
name = "redirected"
http = "{base}/moved"
refresh = "1s"
"#,
        good = good.display(),
        bad = bad.display(),
    );
    let t = start(&inventory, &[]).await;
    let engine = &t.engine;
    eventually("the CMDB's hosts", || names(engine) == ["db-1", "db-2"]).await;
    let inventory = engine.inventory();
    let db1 = inventory.host("db-1").unwrap();
    assert!(db1.groups.contains("postgres") && db1.tags.contains("pg16"));
    assert_eq!(db1.port, 22, "the target's port is not the SSH port");
    assert_eq!(db1.vars["target_port"], "5432");

    eventually("the refused token", || {
        state(engine, "wrong-token").last_error.is_some()
    })
    .await;
    let s = state(engine, "wrong-token");
    assert_eq!(s.last_error.as_deref(), Some("HTTP 401 Unauthorized"));
    assert_eq!(s.hosts, 0);
    eventually("the redirect", || {
        state(engine, "redirected").last_error.is_some()
    })
    .await;
    assert_eq!(
        state(engine, "redirected").last_error.as_deref(),
        Some("HTTP 302 Found (redirects are not followed)")
    );
    let s = state(engine, "cmdb");
    assert_eq!((s.kind, s.hosts), ("http", 2));
    assert!(s.last_error.is_none());
}
