#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the unexpected"
)]
//! Two engines on one store, as two nodes on one database would be, both
//! running the timer of a schedule that ticks every second: each tick runs
//! exactly once.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{Catalog, ExecutionStatus, Origin};
use switchboard_engine::{Engine, EngineConfig};
use switchboard_store::{ExecutionFilter, Store};

async fn engine(dir: &std::path::Path, store: Arc<dyn Store>, node: &str) -> Engine {
    let catalog = Catalog::load(&dir.join("catalog")).unwrap();
    let config = EngineConfig {
        node: node.to_owned(),
        temp_dir: dir.to_path_buf(),
        ..EngineConfig::default()
    };
    Engine::start(store, catalog, config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_store_run_each_tick_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("catalog");
    std::fs::create_dir_all(root.join("actions")).unwrap();
    std::fs::create_dir_all(root.join("policies")).unwrap();
    std::fs::write(
        root.join("actions/t.toml"),
        "name = \"t.t\"\ndescription = \"test\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    std::fs::write(
        root.join("policies/all.cedar"),
        "permit (principal, action, resource);\n",
    )
    .unwrap();
    std::fs::write(
        root.join("schedules.toml"),
        "[[schedules]]\nname = \"s\"\naction = \"t.t\"\ncron = \"* * * * * *\"\nrun_as = \"svc:timer\"\n",
    )
    .unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    // Each engine has its own connections to the one database file.
    let one = engine(
        dir.path(),
        switchboard_store::open(&url).await.unwrap(),
        "n1",
    )
    .await;
    let two = engine(
        dir.path(),
        switchboard_store::open(&url).await.unwrap(),
        "n2",
    )
    .await;
    let store = one.store().clone();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ticks = store.schedule_ticks("s", 100).await.unwrap();
        if ticks.len() >= 4 && ticks.iter().all(|t| t.outcome == "submitted") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "ticks: {ticks:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stop both from taking more ticks, and let a tick in flight finish.
    one.shutdown(Duration::from_secs(5)).await;
    two.shutdown(Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let ticks = store.schedule_ticks("s", 1000).await.unwrap();
    let executions = store
        .list_executions(&ExecutionFilter {
            origin: Some(Origin::new("schedule:s").unwrap()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let submitted: Vec<_> = ticks.iter().filter(|t| t.execution.is_some()).collect();
    assert_eq!(
        executions.len(),
        submitted.len(),
        "one execution per tick: {ticks:?}"
    );
    let mut ids: Vec<_> = submitted.iter().map(|t| t.execution.unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), submitted.len());
    assert!(
        executions
            .iter()
            .all(|e| e.requester.as_str() == "svc:timer" && e.status != ExecutionStatus::Lost),
        "{executions:?}"
    );
    // Successive seconds, each once.
    let mut seconds: Vec<i64> = ticks.iter().map(|t| t.tick.micros() / 1_000_000).collect();
    seconds.sort_unstable();
    assert!(seconds.windows(2).all(|w| w[0] < w[1]), "{seconds:?}");
}
