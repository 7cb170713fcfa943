//! The engine's Prometheus metrics. Each is updated where the event happens;
//! the HTTP layer only encodes the registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabel {
    pub status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabel {
    pub result: String,
}

pub(crate) struct EngineMetrics {
    pub registry: Registry,
    pub submitted: Counter,
    pub finished: Family<StatusLabel, Counter>,
    pub running: Gauge,
    pub duration: Histogram,
    pub start_latency: Histogram,
    pub catalog_reloads: Family<ResultLabel, Counter>,
    pub catalog_actions: Gauge,
    pub queue_depth: Gauge,
    /// Schedule ticks this node claimed, by outcome.
    pub schedule_fires: Family<ResultLabel, Counter>,
    /// Inbound webhook calls, by outcome.
    pub hook_calls: Family<ResultLabel, Counter>,
}

impl EngineMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let submitted = Counter::default();
        let finished = Family::<StatusLabel, Counter>::default();
        let running = Gauge::default();
        let duration = Histogram::new(exponential_buckets(0.005, 4.0, 10));
        let start_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let catalog_reloads = Family::<ResultLabel, Counter>::default();
        let catalog_actions = Gauge::default();
        let queue_depth = Gauge::default();
        let schedule_fires = Family::<ResultLabel, Counter>::default();
        let hook_calls = Family::<ResultLabel, Counter>::default();
        registry.register(
            "executions_submitted",
            "Executions accepted for running",
            submitted.clone(),
        );
        registry.register(
            "executions_finished",
            "Executions that ended, by final status",
            finished.clone(),
        );
        registry.register(
            "executions_running",
            "Executions running on this node",
            running.clone(),
        );
        registry.register(
            "execution_duration_seconds",
            "Time from process start to end",
            duration.clone(),
        );
        registry.register(
            "execution_start_latency_seconds",
            "Time from submission to process start",
            start_latency.clone(),
        );
        registry.register(
            "catalog_reloads",
            "Catalog loads, by result",
            catalog_reloads.clone(),
        );
        registry.register(
            "catalog_actions",
            "Actions in the serving catalog",
            catalog_actions.clone(),
        );
        registry.register(
            "queue_depth",
            "Executions waiting in the queue",
            queue_depth.clone(),
        );
        registry.register(
            "schedule_fires",
            "Schedule ticks claimed by this node, by outcome (submitted, refused, failed, skipped)",
            schedule_fires.clone(),
        );
        registry.register(
            "hook_calls",
            "Inbound webhook calls, by outcome (accepted, or why they were rejected)",
            hook_calls.clone(),
        );
        Self {
            registry,
            submitted,
            finished,
            running,
            duration,
            start_latency,
            catalog_reloads,
            catalog_actions,
            queue_depth,
            schedule_fires,
            hook_calls,
        }
    }
}
