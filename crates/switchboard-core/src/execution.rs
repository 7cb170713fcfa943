//! Executions: the record of one run of an action, its status machine and its
//! output chunks. Who may move an execution between states (the engine) and
//! where it is kept (the store) are decided elsewhere.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{ActionName, ExecutionId, Origin, Principal, Timestamp};

/// Where an execution is in its life.
///
/// `awaiting_approval → queued → running → succeeded | failed | timed_out | cancelled | lost`;
/// `queued` and `awaiting_approval` may also end `cancelled`, and an execution
/// whose node died while it was `running` (or `queued` with secrets that were
/// never stored) ends `lost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    AwaitingApproval,
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Lost,
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 8] = [
        Self::AwaitingApproval,
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Cancelled,
        Self::Lost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingApproval => "awaiting_approval",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Lost => "lost",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::TimedOut | Self::Cancelled | Self::Lost
        )
    }

    /// Whether the status machine allows moving from `self` to `next`.
    pub fn can_become(self, next: Self) -> bool {
        use ExecutionStatus::*;
        matches!(
            (self, next),
            (AwaitingApproval, Queued | Cancelled | Lost)
                | (Queued, Running | Cancelled | Lost)
                | (Running, Succeeded | Failed | TimedOut | Cancelled | Lost)
        )
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run of an action, as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: ExecutionId,
    pub action: ActionName,
    /// Validated parameters, secrets shown as `****`.
    pub params: serde_json::Value,
    pub requester: Principal,
    pub origin: Origin,
    pub status: ExecutionStatus,
    /// The node that ran (or is running) it.
    pub node: Option<String>,
    pub exit_code: Option<i32>,
    /// The JSON the action wrote to `$SB_RESULT`, secrets masked.
    pub result: Option<serde_json::Value>,
    /// Why it ended as it did, when that is not just the exit code.
    pub error: Option<String>,
    pub output_bytes: i64,
    pub output_truncated: bool,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// The two-person rule it was asked for under, if any.
    pub approval_rule: Option<crate::catalog::ApprovalRule>,
    /// While awaiting approval: when the request lapses.
    pub approval_expires_at: Option<Timestamp>,
    /// The workflow execution this is a step of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ExecutionId>,
    /// Which step of that workflow (`restart#2`: step, then attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// An approver's answer to an execution awaiting approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: Principal,
    pub approved: bool,
    pub reason: Option<String>,
    pub origin: Origin,
    pub at: Timestamp,
}

impl Execution {
    /// Time from start to finish (or to `now` while running).
    pub fn duration(&self, now: Timestamp) -> Option<std::time::Duration> {
        let start = self.started_at?;
        Some(start.until(self.finished_at.unwrap_or(now)))
    }
}

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    /// Lines Switchboard itself adds: truncation markers, kill notices.
    System,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Stdout, Self::Stderr, Self::System]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A timestamped piece of output: one line (without its newline) or a part of
/// an overlong line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputChunk {
    /// Position in the execution's output, from 1.
    pub seq: i64,
    pub ts: Timestamp,
    pub stream: Stream,
    pub text: String,
}

/// A file an execution produced (a rendered graph, a report), kept with it
/// and served at `/api/v1/executions/{id}/artifacts/{name}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Artifact {
    /// A plain file name (`cpu.png`): no folders.
    pub name: String,
    /// Its media type (`image/png`).
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifact")
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_machine() {
        use ExecutionStatus::*;
        assert!(Queued.can_become(Running));
        assert!(Running.can_become(TimedOut));
        assert!(!Succeeded.can_become(Running));
        assert!(!Queued.can_become(Succeeded));
        for s in ExecutionStatus::ALL {
            assert_eq!(ExecutionStatus::parse(s.as_str()), Some(s));
            if s.is_terminal() {
                assert!(ExecutionStatus::ALL.iter().all(|n| !s.can_become(*n)));
            }
        }
    }
}
