#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the unexpected"
)]
//! The query runner against a real Prometheus: each test starts Debian's
//! `prometheus` on a free loopback port, in a temporary folder, scraping
//! itself every second, waits (with a deadline, never a fixed sleep) until
//! its own metrics have points, and draws a graph of them. Needs the Debian
//! package `prometheus` (`scripts/test` installs it); without it the tests
//! fail, they are never skipped.

use std::time::Duration;

use switchboard_core::graphs::{GraphSpec, Graphs};
use switchboard_core::{ExecutionStatus, Stream};
use switchboard_engine::runner::query::{self, PrometheusSettings, QueryRun};
use switchboard_engine::runner::{RunEvent, RunOutcome};
use tokio::sync::{mpsc, watch};

use crate::support::prometheus::{Server, free_port};

/// Longest one run may take before the test calls it hung.
const HANG: Duration = Duration::from_secs(120);

const GRAPHS: &str = r#"
[graphs.requests]
title = "HTTP requests to {{ host }}"
description = "Requests Prometheus has served, by handler"
query = 'prometheus_http_requests_total{job="prometheus", instance="{{ address }}"}'
unit = "requests"
legend = "{{ handler }} ({{ code }})"
range = "2m"

[graphs.broken]
title = "Unbalanced"
query = 'sum(rate(up{instance="{{ address }}"}[1m])'
unit = ""
"#;

fn graph(name: &str) -> GraphSpec {
    Graphs::parse(GRAPHS).unwrap().get(name).cloned().unwrap()
}

struct Ran {
    outcome: RunOutcome,
    lines: Vec<(Stream, String)>,
}

async fn run(
    graph: &GraphSpec,
    address: &str,
    settings: &PrometheusSettings,
    range: Duration,
) -> Ran {
    let (tx, mut rx) = mpsc::channel(256);
    let (_cancel_tx, cancel_rx) = watch::channel(false);
    let job = QueryRun {
        graph,
        context: serde_json::json!({"host": "prom-1", "address": address, "vars": {}}),
        range,
        prometheus: settings,
        artifact_name: format!("{}.png", graph.name),
    };
    let outcome = tokio::time::timeout(HANG, query::run(job, tx, cancel_rx))
        .await
        .expect("the run hung");
    let mut lines = Vec::new();
    while let Ok(event) = rx.try_recv() {
        if let RunEvent::Output(chunk) = event {
            lines.push((chunk.stream, chunk.text));
        }
    }
    Ran { outcome, lines }
}

/// Width, height and RGB pixels of a PNG.
fn decode(bytes: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

#[tokio::test]
async fn prometheus_answers_are_drawn_as_a_graph() {
    let server = Server::start().await;
    let graph = graph("requests");
    let ran = run(&graph, &server.address, &server.settings, graph.range).await;
    let o = &ran.outcome;
    assert_eq!(
        o.status,
        ExecutionStatus::Succeeded,
        "{o:?}\n{:?}\n{}",
        ran.lines,
        server.log()
    );
    assert_eq!(o.error, None);
    assert_eq!(o.artifacts.len(), 1);
    let artifact = &o.artifacts[0];
    assert_eq!(artifact.name, "requests.png");
    assert_eq!(artifact.media_type, "image/png");

    let (width, height, pixels) = decode(&artifact.bytes);
    assert_eq!((width, height), (800, 400));
    // Series are drawn in colour; text, grid and axes are grey.
    let coloured = pixels
        .iter()
        .filter(|[r, g, b]| {
            let (hi, lo) = ((*r).max(*g).max(*b), (*r).min(*g).min(*b));
            hi - lo > 60
        })
        .count();
    assert!(
        coloured > 20,
        "{coloured} coloured pixels: the plot is blank"
    );
    let distinct: std::collections::BTreeSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(distinct.len() > 20, "{} colours", distinct.len());

    let result = o.result.as_ref().unwrap();
    assert_eq!(result["graph"], "requests");
    assert_eq!(result["range"], "2m");
    assert_eq!(result["step"], "1s");
    assert_eq!(result["artifact"], "requests.png");
    assert!(result["series"].as_u64().unwrap() >= 1, "{result}");
    assert!(result["points"].as_u64().unwrap() >= 3, "{result}");
    assert_eq!(
        result["query"],
        format!(
            "prometheus_http_requests_total{{job=\"prometheus\", instance=\"{}\"}}",
            server.address
        )
    );
    // One summary line per series drawn, labelled by the legend template.
    let summaries: Vec<&String> = ran
        .lines
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .map(|(_, t)| t)
        .collect();
    assert!(!summaries.is_empty());
    assert!(
        summaries
            .iter()
            .any(|t| t.starts_with("/api/v1/query_range (200): last ")),
        "{summaries:?}"
    );
    assert!(summaries.iter().all(|t| t.contains(" requests, min ")));
}

#[tokio::test]
async fn prometheus_reads_a_hostile_value_as_a_label_value() {
    let server = Server::start().await;
    let graph = graph("requests");
    // Were the value to leave its string, `vector(1)` would add a series.
    let ran = run(
        &graph,
        r#"x"} or vector(1) or {a=""#,
        &server.settings,
        Duration::from_secs(60),
    )
    .await;
    let o = &ran.outcome;
    assert_eq!(o.status, ExecutionStatus::Succeeded, "{o:?}");
    let result = o.result.as_ref().unwrap();
    assert_eq!(result["series"], 0, "{result}");
    assert!(
        ran.lines
            .iter()
            .any(|(s, t)| *s == Stream::System && t == "no data for this range")
    );
    let (width, height, _) = decode(&o.artifacts[0].bytes);
    assert_eq!((width, height), (800, 400));
}

#[tokio::test]
async fn prometheus_rejecting_a_query_fails_with_its_reason() {
    let server = Server::start().await;
    let graph = graph("broken");
    let ran = run(
        &graph,
        &server.address,
        &server.settings,
        Duration::from_secs(60),
    )
    .await;
    let o = &ran.outcome;
    assert_eq!(o.status, ExecutionStatus::Failed, "{o:?}");
    assert!(o.artifacts.is_empty());
    let e = o.error.as_deref().unwrap();
    assert!(
        e.starts_with(&format!(
            "Prometheus at http://{} refused the query `sum(rate(up{{instance=\"{}\"}}[1m])`: bad_data: ",
            server.address, server.address
        )),
        "{e}"
    );
    assert!(e.contains("parse error"), "{e}");
}

#[tokio::test]
async fn prometheus_being_down_fails_naming_its_url() {
    let port = free_port();
    let settings = PrometheusSettings {
        url: format!("http://127.0.0.1:{port}"),
        timeout: Duration::from_secs(30),
        bearer: None,
    };
    let graph = graph("requests");
    let ran = run(&graph, "10.0.0.5:9100", &settings, graph.range).await;
    let o = &ran.outcome;
    assert_eq!(o.status, ExecutionStatus::Failed, "{o:?}");
    let e = o.error.as_deref().unwrap();
    assert!(
        e.starts_with(&format!(
            "cannot connect to Prometheus at http://127.0.0.1:{port}: "
        )),
        "{e}"
    );
}
