//! Runners: how an action's command becomes a running thing and an outcome.
//! A runner reports what happens as [`RunEvent`]s on a channel and returns a
//! [`RunOutcome`]; it knows nothing of storage, queues or who asked, so the
//! daemon and the offline `run --local` share it.

pub mod http;
pub mod local;
pub mod output;
pub mod query;
pub mod ssh;

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchboard_core::inventory::Host;
use switchboard_core::{
    Action, Artifact, Catalog, ExecutionId, ExecutionStatus, OutputChunk, Runner, Timestamp,
    ValidatedParams,
};
use tokio::sync::{mpsc, watch};

/// Something a runner reports while it runs.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The process started.
    Started(Timestamp),
    /// A piece of output, secrets already masked.
    Output(OutputChunk),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub status: ExecutionStatus,
    pub exit_code: Option<i32>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    /// Bytes of output the command produced (stored or not).
    pub output_bytes: i64,
    pub output_truncated: bool,
    /// Files the run produced, kept with the execution.
    pub artifacts: Vec<Artifact>,
}

impl RunOutcome {
    /// A run that failed before anything ran.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            status: ExecutionStatus::Failed,
            exit_code: None,
            result: None,
            error: Some(error.into()),
            output_bytes: 0,
            output_truncated: false,
            artifacts: Vec::new(),
        }
    }
}

/// Limits every run obeys.
#[derive(Debug, Clone)]
pub struct RunLimits {
    /// Output kept per execution; the rest is counted and discarded.
    pub max_output_bytes: u64,
    /// Time between SIGTERM and SIGKILL when a run is stopped.
    pub kill_grace: Duration,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            max_output_bytes: 1024 * 1024,
            kill_grace: Duration::from_secs(5),
        }
    }
}

/// How this node reaches what runners talk to (from its configuration).
#[derive(Debug, Clone, Default)]
pub struct RunnerSettings {
    pub ssh: ssh::SshSettings,
    pub prometheus: query::PrometheusSettings,
}

/// One run of an action, whatever its runner.
pub struct Job<'a> {
    pub catalog: &'a Catalog,
    /// The hosts known now (the catalog's and those sources found).
    pub inventory: &'a switchboard_core::inventory::Inventory,
    pub action: &'a Action,
    pub params: &'a ValidatedParams,
    /// The hosts an `ssh` action runs on, resolved when it was requested.
    pub hosts: &'a [Host],
    pub execution_id: Option<ExecutionId>,
    pub limits: &'a RunLimits,
    pub settings: &'a RunnerSettings,
    /// A private folder (see [`private_dir`]) for the run's files.
    pub temp_dir: &'a Path,
}

/// Runs a job with its action's runner.
pub async fn run(
    job: Job<'_>,
    events: mpsc::Sender<RunEvent>,
    cancel: watch::Receiver<bool>,
) -> RunOutcome {
    match job.action.runner {
        Runner::Workflow => RunOutcome::failed(
            "a workflow runs in the daemon, which stores each step's state (`switchboard run` without `--local`)",
        ),
        Runner::Local => {
            let run = local::LocalRun {
                action: job.action,
                params: job.params,
                catalog_root: &job.catalog.root,
                execution_id: job.execution_id,
                limits: job.limits,
                temp_dir: job.temp_dir,
            };
            local::run(run, events, cancel).await
        }
        Runner::Ssh => {
            let run = ssh::SshRun {
                action: job.action,
                params: job.params,
                targets: job.hosts,
                settings: &job.settings.ssh,
                limits: job.limits,
            };
            ssh::run(run, events, cancel).await
        }
        Runner::Http => {
            let Some(spec) = &job.action.http else {
                return RunOutcome::failed("this `http` action has no `[http]` table");
            };
            let run = http::HttpRun {
                action: job.action,
                spec,
                params: job.params,
                limits: job.limits,
            };
            http::run(run, events, cancel).await
        }
        Runner::Query => query_job(job, events, cancel).await,
    }
}

/// A `query` action: its graph from the catalog, its parameters (and the
/// inventory's description of its host) as the query's context.
async fn query_job(
    job: Job<'_>,
    events: mpsc::Sender<RunEvent>,
    cancel: watch::Receiver<bool>,
) -> RunOutcome {
    let Some(graph) = job
        .action
        .graph
        .as_deref()
        .and_then(|name| job.catalog.graphs.get(name))
    else {
        return RunOutcome::failed("the graph of this action is not in graphs.toml");
    };
    let mut context = serde_json::Map::new();
    for (name, value) in job.params.iter() {
        context.insert(name.clone(), value.to_json());
    }
    let host = job.action.params.iter().find_map(|p| {
        (p.ty == switchboard_core::ParamType::Host)
            .then(|| job.params.get(&p.name))
            .flatten()
            .and_then(|v| job.inventory.host(&v.render()))
    });
    if let Some(host) = host {
        context.insert("address".into(), host.address.clone().into());
        context.insert(
            "vars".into(),
            serde_json::to_value(&host.vars).unwrap_or_default(),
        );
    }
    let range = match job.params.get("range") {
        Some(switchboard_core::ParamValue::Duration(d)) => *d,
        _ => graph.range,
    };
    let run = query::QueryRun {
        graph,
        context: serde_json::Value::Object(context),
        range,
        prometheus: &job.settings.prometheus,
        artifact_name: format!("{}.png", graph.name),
    };
    let timeout = job.action.timeout;
    match tokio::time::timeout(timeout, query::run(run, events, cancel)).await {
        Ok(outcome) => outcome,
        Err(_) => RunOutcome {
            status: ExecutionStatus::TimedOut,
            ..RunOutcome::failed(format!(
                "timed out after {}",
                humantime::format_duration(timeout)
            ))
        },
    }
}

/// Resolves once a stop is asked for, or once nobody can ask any more
/// (which the local runner treats the same way).
pub(crate) async fn stop_asked(cancel: &mut watch::Receiver<bool>) {
    loop {
        if *cancel.borrow_and_update() {
            return;
        }
        if cancel.changed().await.is_err() {
            return;
        }
    }
}

/// A `reqwest` error with its causes, without the URL (which may carry a
/// parameter's value).
pub(crate) fn describe_request_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Creates a folder only this user can enter (mode 0700), for the result
/// files of runs: being private, its file names may be predictable without
/// letting another local user plant a link there.
pub fn private_dir(parent: &Path, name: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::create_dir_all(parent)?;
    let dir = parent.join(name);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}
