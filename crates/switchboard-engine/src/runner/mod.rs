//! Runners: how an action's command becomes a running thing and an outcome.
//! A runner reports what happens as [`RunEvent`]s on a channel and returns a
//! [`RunOutcome`]; it knows nothing of storage, queues or who asked, so the
//! daemon and the offline `run --local` share it.

pub mod local;

use std::path::{Path, PathBuf};
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
