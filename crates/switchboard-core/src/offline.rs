//! Offline runs: the record `switchboard run --local` appends to its spool
//! while no server is reachable, later pushed into the audit log. This is a
//! wire format written by one version and read by another: fields are only
//! ever added, and `version` says which ones to expect.

use serde::{Deserialize, Serialize};

use crate::execution::ExecutionStatus;
use crate::ids::{ActionName, Timestamp};

/// The spool format this build writes.
pub const SPOOL_VERSION: u32 = 1;

/// One line of the spool file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfflineRun {
    /// Format version of this record.
    pub version: u32,
    /// Unique id of the offline run: `<host>-<pid>-<start micros>`.
    pub id: String,
    pub action: ActionName,
    /// Validated parameters, secrets shown as `****`.
    pub params: serde_json::Value,
    /// The Switchboard principal of the run (`local` offline).
    pub requester: String,
    /// The operating-system user who ran it.
    pub os_user: String,
    pub host: String,
    /// Always `local`.
    pub origin: String,
    pub catalog_version: String,
    pub catalog_git_commit: Option<String>,
    pub status: ExecutionStatus,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
    pub output_bytes: i64,
    pub output_truncated: bool,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

impl OfflineRun {
    /// What is wrong with a record read back from a spool, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.version != SPOOL_VERSION {
            return Some(format!(
                "spool format version {} is not supported (expected {SPOOL_VERSION})",
                self.version
            ));
        }
        if self.id.is_empty() || self.id.len() > 200 || self.id.chars().any(char::is_control) {
            return Some("the run id must be 1 to 200 visible characters".to_owned());
        }
        if !self.status.is_terminal() {
            return Some(format!("status `{}` is not an end state", self.status));
        }
        if self.finished_at < self.started_at {
            return Some("it finished before it started".to_owned());
        }
        None
    }
}
