//! Runners: how an action's command becomes a running thing and an outcome.
//! A runner reports what happens as [`RunEvent`]s on a channel and returns a
//! [`RunOutcome`]; it knows nothing of storage, queues or who asked, so the
//! daemon and the offline `run --local` share it.

pub mod local;

use std::time::Duration;

use switchboard_core::{ExecutionStatus, OutputChunk, Timestamp};

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
