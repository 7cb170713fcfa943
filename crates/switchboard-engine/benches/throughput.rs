//! End-to-end execution throughput and start latency of the engine on
//! SQLite: trivial executions (`true`) submitted through `Engine::submit`,
//! claimed from the queue, run as real processes, with their end recorded.
//!
//! Run: `cargo bench -p switchboard-engine --bench throughput`
//! Knobs (environment): SB_BENCH_N (executions, default 5000),
//! SB_BENCH_CONCURRENCY (default 16), SB_BENCH_STORAGE (a database URL,
//! e.g. PostgreSQL; default a new SQLite file), SB_BENCH_CLIENTS (concurrent
//! submitters, default 8), SB_BENCH_PREFILL (rows stored before
//! measuring, to show that cost does not grow with history; default 0).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::time::{Duration, Instant};

use switchboard_core::directory::PrincipalKind;
use switchboard_core::{
    ActionName, Catalog, ExecutionStatus, Origin, Principal, RawParams, Timestamp,
};
use switchboard_engine::{Engine, EngineConfig, Identity, SubmitRequest};
use switchboard_store::{ExecutionFilter, NewExecution};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main]
async fn main() {
    let n = env_num("SB_BENCH_N", 5000);
    let concurrency = env_num("SB_BENCH_CONCURRENCY", 16);
    let clients = env_num("SB_BENCH_CLIENTS", 8).max(1);
    let prefill = env_num("SB_BENCH_PREFILL", 0);
    let dir = tempfile::tempdir().unwrap();
    let catalog_dir = dir.path().join("catalog");
    std::fs::create_dir_all(catalog_dir.join("actions")).unwrap();
    std::fs::write(
        catalog_dir.join("actions/true.toml"),
        "name = \"bench.true\"\ndescription = \"Do nothing, successfully\"\ncommand = [\"true\"]\ntimeout = \"10s\"\n",
    )
    .unwrap();
    // Every submission is authorized, as in production.
    std::fs::create_dir_all(catalog_dir.join("policies")).unwrap();
    std::fs::write(
        catalog_dir.join("policies/bench.cedar"),
        "permit (principal in Group::\"bench\", action == Action::\"run\", resource);\n",
    )
    .unwrap();
    let catalog = Catalog::load(&catalog_dir).unwrap();
    // SB_BENCH_STORAGE: another database (a PostgreSQL URL), else SQLite.
    let url = std::env::var("SB_BENCH_STORAGE")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = switchboard_store::open(&url).await.unwrap();

    if prefill > 0 {
        let t = Instant::now();
        let new = NewExecution {
            action: ActionName::new("bench.history").unwrap(),
            params: serde_json::json!({}),
            requester: Principal::local(),
            origin: Origin::api(),
            status: ExecutionStatus::Succeeded,
            created_at: Timestamp::now(),
            approval_rule: None,
            approval_expires_at: None,
            parent: None,
            step: None,
            node: None,
        };
        for _ in 0..prefill {
            store.insert_execution(&new).await.unwrap();
        }
        eprintln!(
            "prefilled {prefill} executions in {:.1}s",
            t.elapsed().as_secs_f64()
        );
    }

    let config = EngineConfig {
        node: "bench".into(),
        max_concurrency: concurrency,
        ..EngineConfig::default()
    };
    let engine = Engine::start(store.clone(), catalog, config).await.unwrap();
    let requester = Identity {
        principal: Principal::new("bench").unwrap(),
        kind: PrincipalKind::ServiceAccount,
        groups: ["bench".to_owned()].into(),
    };
    let request = move || SubmitRequest {
        action: "bench.true".into(),
        params: RawParams::new(),
        requester: requester.clone(),
        origin: Origin::api(),
    };

    // 1. Throughput: `clients` concurrent submitters send n in all, as API
    // clients would; then wait until every execution has ended.
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let engine = engine.clone();
        let request = request.clone();
        let share = n / clients + usize::from(c < n % clients);
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                engine.submit(request()).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let submitted = t.elapsed();
    loop {
        if engine.running_count() == 0 && store.queue_depth().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let total = t.elapsed();
    let done = ExecutionFilter {
        status: Some(ExecutionStatus::Succeeded),
        action: Some(ActionName::new("bench.true").unwrap()),
        limit: u32::MAX,
        ..Default::default()
    };
    let ok = store.list_executions(&done).await.unwrap().len();
    assert_eq!(ok, n, "every execution succeeded");

    // 2. Start latency at low load: one at a time.
    let samples = n.min(1000);
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let e = engine.submit(request()).await.unwrap();
        loop {
            let got = store.get_execution(e.id).await.unwrap().unwrap();
            if got.status.is_terminal() {
                latencies
                    .push(got.created_at.until(got.started_at.unwrap()).as_secs_f64() * 1000.0);
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    latencies.sort_by(f64::total_cmp);

    // 3. Reads that pages and watchers make, timed at this history size.
    let reads = 1000;
    let micros_per = |t: Instant| t.elapsed().as_secs_f64() * 1e6 / f64::from(reads);
    let t = Instant::now();
    for _ in 0..reads {
        store
            .list_executions(&ExecutionFilter {
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let list_page = micros_per(t);
    let t = Instant::now();
    for _ in 0..reads {
        let filter = ExecutionFilter {
            action: Some(ActionName::new("bench.true").unwrap()),
            status: Some(ExecutionStatus::Succeeded),
            limit: 50,
            ..Default::default()
        };
        store.list_executions(&filter).await.unwrap();
    }
    let list_filtered = micros_per(t);
    let t = Instant::now();
    for i in 0..reads {
        store
            .get_execution(switchboard_core::ExecutionId(1 + i64::from(i) * 7))
            .await
            .unwrap();
    }
    let get_one = micros_per(t);

    println!(
        "executions:           {n} ({clients} submitters, concurrency {concurrency}, {prefill} stored before)"
    );
    println!(
        "submitted in:         {:.3}s ({:.0}/s)",
        submitted.as_secs_f64(),
        n as f64 / submitted.as_secs_f64()
    );
    println!("all completed in:     {:.3}s", total.as_secs_f64());
    println!(
        "throughput:           {:.0} executions/s end to end",
        n as f64 / total.as_secs_f64()
    );
    println!(
        "submit→process start: p50 {:.2} ms, p99 {:.2} ms (sequential, {samples} samples)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );
    println!(
        "list first page (50):  {list_page:.0} µs; filtered by action and status: {list_filtered:.0} µs; get by id: {get_one:.0} µs"
    );
    engine.shutdown(Duration::from_secs(5)).await;
}
