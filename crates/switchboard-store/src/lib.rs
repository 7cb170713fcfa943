//! Switchboard's storage: the [`Store`] trait that the engine writes through,
//! and its backends: SQLite (one node) and PostgreSQL (any number of nodes
//! sharing one database).
//! This is the only crate that writes SQL. Each backend has its own
//! append-only migrations folder; a landed migration is never edited.
//!
//! The store keeps what was decided; it decides nothing. Which status comes
//! next, who may ask, and what to run are the engine's business.

// The row mappings and their column macros, shared by both backends.
#[macro_use]
mod rows;
mod audit_chain;
pub mod copy;
mod postgres;
mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::audit::{AuditEvent, AuditRecord};
use switchboard_core::token::{Scope, TokenRecord};
use switchboard_core::{
    ActionName, Approval, Execution, ExecutionId, ExecutionStatus, Origin, OutputChunk, Principal,
    Timestamp,
};

pub use audit_chain::{AuditVerification, verify_audit};
pub use copy::{CopyReport, SchemaVersion, copy, migrate};
pub use postgres::{PostgresStore, without_password};
pub use sqlite::SqliteStore;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    #[error(
        "unsupported storage URL `{0}`: use `sqlite:///path/to/switchboard.db`, `sqlite::memory:` \
         or `postgres://user:password@host:5432/database`"
    )]
    UnsupportedUrl(String),
    #[error(
        "the target {target} already holds data ({}): a copy goes only into an empty \
         database and never merges into a live one; nothing was changed",
        .tables.iter().map(|(t, n)| format!("{t}: {n} rows")).collect::<Vec<_>>().join(", ")
    )]
    TargetNotEmpty {
        target: String,
        tables: Vec<(String, u64)>,
    },
    #[error("cannot copy: {0}")]
    Copy(String),
}

/// An execution about to be stored.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub action: ActionName,
    /// Validated parameters with secrets masked.
    pub params: serde_json::Value,
    pub requester: Principal,
    pub origin: Origin,
    pub status: ExecutionStatus,
    pub created_at: Timestamp,
    /// For `awaiting_approval`: the rule it waits under.
    pub approval_rule: Option<switchboard_core::catalog::ApprovalRule>,
    /// For `awaiting_approval`: when the request lapses.
    pub approval_expires_at: Option<Timestamp>,
    /// The workflow execution whose step this is, if any.
    pub parent: Option<ExecutionId>,
    /// Which step (and item and attempt) of it: `restart#2`, `each[3]#1`.
    pub step: Option<String>,
    /// The node that accepted it: that node claims it; another only once
    /// it has waited [`ADOPT_AFTER`] (its node is busy or gone).
    pub node: Option<String>,
}

/// How long an execution another node accepted waits in the queue before
/// any node may claim it.
pub const ADOPT_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// A named lease: who holds it, until when, and its fencing token (which
/// grows at every change of holder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub token: i64,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A front door's live state on one node (see `note_door_event` and
/// `note_door_connection`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorState {
    /// `api`, `web`, `chat:irc`, `chatops-rpc`, `webhook`, `schedule`.
    pub door: String,
    pub node: String,
    /// Whether its long-lived connection is up; `None` for a door without
    /// one.
    pub connected: Option<bool>,
    /// When `connected` last changed.
    pub changed_at: Option<Timestamp>,
    /// What the connection last said (the server, or why it dropped).
    pub detail: Option<String>,
    /// When the door last heard from a caller.
    pub last_event_at: Option<Timestamp>,
}

/// What becomes of an execution whose node stopped renewing its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakeOver {
    /// It ends `lost`, saying why.
    Lost { reason: String },
    /// It is queued again (its action is idempotent).
    Requeue,
    /// `node` goes on with it (a workflow, whose state is stored).
    Adopt { node: String, until: Timestamp },
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct Finish {
    pub status: ExecutionStatus,
    /// When its process started, if it did (replaces the claim time).
    pub started_at: Option<Timestamp>,
    pub exit_code: Option<i32>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub output_bytes: i64,
    pub output_truncated: bool,
    pub finished_at: Timestamp,
    /// Files the run produced; stored with its end.
    pub artifacts: Vec<switchboard_core::Artifact>,
}

/// The latest state of one alert, keyed by its fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    /// Alertmanager's fingerprint of the labels, 16 hex digits.
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `true` while firing.
    pub firing: bool,
    pub starts_at: Timestamp,
    /// When a firing alert resolves unless renewed; when a resolved one ended.
    pub ends_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// The format it came in (`alertmanager_webhook`, `pagerduty`, …).
    pub source: String,
    pub generator_url: Option<String>,
    pub dedup_key: Option<String>,
}

/// An aggregation group's state that outlives a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub group_key: String,
    pub receiver: String,
    pub labels: BTreeMap<String, String>,
    /// The route's dotted key in `alerts.toml`.
    pub route: String,
    pub created_at: Timestamp,
    pub next_flush_at: Timestamp,
    pub flushed: bool,
}

/// What one integration of a receiver was last told of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogEntry {
    pub group_key: String,
    pub receiver: String,
    pub integration: String,
    /// Fingerprints, 16 hex digits each.
    pub firing: Vec<String>,
    pub resolved: Vec<String>,
    pub sent_at: Timestamp,
}

/// A notification to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub group_key: String,
    pub receiver: String,
    pub integration: String,
    pub notification: serde_json::Value,
    pub created_at: Timestamp,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Given up after its attempts.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::Corrupt(format!("delivery status `{other}`"))),
        }
    }
}

/// A delivery and its attempts so far.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDelivery {
    pub id: i64,
    pub group_key: String,
    pub receiver: String,
    pub integration: String,
    pub status: DeliveryStatus,
    pub notification: serde_json::Value,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// When to try again (pending only).
    pub next_attempt_at: Timestamp,
    /// Why it failed; `None` keeps the error of an earlier attempt.
    pub error: Option<String>,
    pub delivered_at: Option<Timestamp>,
}

/// What one flush of a group changes, written at once.
#[derive(Debug, Clone, PartialEq)]
pub struct FlushRecord {
    /// The group's new state, or `None` when it ended (its row goes).
    pub group: Option<StoredGroup>,
    pub group_key: String,
    pub receiver: String,
    pub log: Vec<StoredLogEntry>,
    pub deliveries: Vec<NewDelivery>,
    /// Acknowledgements that end: of alerts that resolved, of the group
    /// when it ended.
    pub cleared_acks: Vec<String>,
}

/// An acknowledgement: someone is on an alert or a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAck {
    /// `alert:<fingerprint>` or `group:<receiver>:<group key>`
    /// ([`group_ack_subject`]).
    pub subject: String,
    pub acked_by: String,
    pub acked_at: Timestamp,
    pub comment: String,
}

/// The subject of a group's acknowledgement.
pub fn group_ack_subject(receiver: &str, group_key: &str) -> String {
    format!("group:{receiver}:{group_key}")
}

/// Where a group's escalation chain stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEscalation {
    pub group_key: String,
    pub receiver: String,
    pub chain: String,
    /// `running`, `finished` or `stopped` (by an acknowledgement).
    pub state: String,
    pub step: u32,
    pub round: u32,
    pub due_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A run of an automation rule an alert asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAutomation {
    pub rule: String,
    pub fingerprint: String,
    /// The alert's start: one run per rule and firing episode.
    pub starts_at: Timestamp,
    pub due_at: Timestamp,
    /// Not scheduled when the rule ran (or is pending) for this alert
    /// after this time (its rate limit).
    pub not_since: Timestamp,
    pub created_at: Timestamp,
}

/// A run of an automation rule, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAutomation {
    pub id: i64,
    pub rule: String,
    pub fingerprint: String,
    pub starts_at: Timestamp,
    /// `pending`, `ran`, `skipped` or `failed`.
    pub state: String,
    pub due_at: Timestamp,
    pub execution_id: Option<i64>,
    pub reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The chat message showing an alert group in a room (one per group and
/// receiver integration), so it is edited in place and later notices go
/// in its thread.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChatCard {
    pub group_key: String,
    pub receiver: String,
    /// `chat[0]`.
    pub integration: String,
    pub platform: String,
    pub room: String,
    /// The platform's id of the message (Slack `ts`, a post id).
    pub message_id: String,
    pub thread: Option<String>,
    /// The notification it shows (Alertmanager's webhook body).
    pub notification: serde_json::Value,
    pub updated_at: Timestamp,
}

/// A silence as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSilence {
    pub id: String,
    /// In Alertmanager's syntax: `{alertname="Disk", instance=~"db-.*"}`.
    pub matchers: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What is known of a stored artifact without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactInfo {
    pub name: String,
    pub media_type: String,
    pub size: i64,
}

/// Which executions to list: every field narrows; newest first.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub status: Option<ExecutionStatus>,
    pub action: Option<ActionName>,
    /// Only executions of these actions (what a caller may view).
    pub actions_in: Option<Vec<ActionName>>,
    pub requester: Option<Principal>,
    pub origin: Option<Origin>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// Only ids below this one: the cursor of the next page.
    pub before: Option<ExecutionId>,
    /// Only the steps of this workflow execution.
    pub parent: Option<ExecutionId>,
    pub limit: u32,
}

/// A catalog load, recorded.
#[derive(Debug, Clone)]
pub struct CatalogLoad {
    pub hash: String,
    pub git_commit: Option<String>,
    pub actions: i64,
    pub node: String,
    pub loaded_at: Timestamp,
}

/// A token about to be stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// SHA-256 of the token, hex.
    pub hash: String,
    pub principal: Principal,
    pub scopes: Vec<Scope>,
    pub description: String,
    pub created_by: Principal,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// Where executions, their output and catalog versions are kept.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Whether other nodes may share this database (so what they store
    /// must be looked for, not only what this node stored).
    fn shared_by_nodes(&self) -> bool {
        self.backend() == "postgres"
    }

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The ids of executions whose output or status changed, on any node,
    /// as they change — where the database can tell (PostgreSQL's
    /// `LISTEN/NOTIFY`); `None` otherwise. Best effort: a change may go
    /// unheard while the connection is re-established, so a watcher still
    /// looks at the store now and then.
    fn execution_changes(&self) -> Option<tokio::sync::broadcast::Receiver<ExecutionId>> {
        None
    }

    async fn insert_execution(&self, new: &NewExecution) -> Result<Execution, StoreError>;

    /// Moves up to `limit` of the oldest `queued` executions (skipping the
    /// listed actions) to `running` on `node`, with `started_at` set to
    /// `now` (refined at the finish to when the process really started),
    /// and returns them: never the same one to two nodes (PostgreSQL: `FOR
    /// UPDATE SKIP LOCKED`), and not one another node accepted until it has
    /// waited [`ADOPT_AFTER`]. Their leases are renewed by the claiming
    /// node's heartbeat (`renew_execution_leases`).
    async fn claim_queued(
        &self,
        node: &str,
        limit: u32,
        skip_actions: &[ActionName],
        now: Timestamp,
    ) -> Result<Vec<Execution>, StoreError>;

    /// Gives claimed but not started executions back to the queue.
    async fn release_claims(&self, ids: &[ExecutionId]) -> Result<(), StoreError>;

    async fn append_output(
        &self,
        id: ExecutionId,
        chunks: &[OutputChunk],
    ) -> Result<(), StoreError>;

    /// Ends a `running` execution; `false` when it was not running.
    async fn finish_execution(&self, id: ExecutionId, finish: &Finish) -> Result<bool, StoreError>;

    /// The artifacts of an execution, by name.
    async fn artifacts(&self, id: ExecutionId) -> Result<Vec<ArtifactInfo>, StoreError>;

    /// One artifact with its content.
    async fn artifact(
        &self,
        id: ExecutionId,
        name: &str,
    ) -> Result<Option<switchboard_core::Artifact>, StoreError>;

    /// Records alerts as received, in one transaction: a new fingerprint is
    /// added; a known one takes the new state, keeping its start while it
    /// goes on firing. Returns each alert as now kept, in order (the
    /// alerts given, changed where the store kept something else).
    async fn upsert_alerts(&self, alerts: Vec<StoredAlert>)
    -> Result<Vec<StoredAlert>, StoreError>;

    /// The alerts a restart must group again: the firing ones, and resolved
    /// ones some receiver was told were firing (their resolved notice may
    /// be owed).
    async fn alerts_to_regroup(&self) -> Result<Vec<StoredAlert>, StoreError>;

    /// The alerts received at `since` or later (by `updated_at`), oldest
    /// first: how a node learns of the alerts other nodes received.
    async fn alerts_changed_since(&self, since: Timestamp) -> Result<Vec<StoredAlert>, StoreError>;

    /// Adds or replaces aggregation groups.
    async fn save_alert_groups(&self, groups: &[StoredGroup]) -> Result<(), StoreError>;

    /// Every aggregation group kept.
    async fn alert_groups(&self) -> Result<Vec<StoredGroup>, StoreError>;

    /// Removes aggregation groups that no longer exist (the route tree
    /// changed).
    async fn delete_alert_groups(&self, ids: &[(String, String)]) -> Result<(), StoreError>;

    /// The whole notification log.
    async fn notification_log(&self) -> Result<Vec<StoredLogEntry>, StoreError>;

    /// Records flushes: each group's new state, log entries and deliveries,
    /// in one transaction; a group that ended loses its escalation state.
    async fn record_flushes(&self, flushes: &[FlushRecord]) -> Result<(), StoreError>;

    /// Pending deliveries whose next attempt is due, oldest first.
    async fn due_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredDelivery>, StoreError>;

    /// Records an attempt of delivery `id`.
    async fn record_delivery_attempt(
        &self,
        id: i64,
        attempt: &DeliveryAttempt,
    ) -> Result<(), StoreError>;

    /// Records an acknowledgement (replacing an earlier one of the same
    /// subject).
    async fn save_ack(&self, ack: &StoredAck) -> Result<(), StoreError>;

    /// Every acknowledgement kept.
    async fn acks(&self) -> Result<Vec<StoredAck>, StoreError>;

    /// Removes acknowledgements (their alert resolved, their group ended).
    async fn delete_acks(&self, subjects: &[String]) -> Result<(), StoreError>;

    /// Adds or replaces escalation states.
    async fn save_escalations(&self, states: &[StoredEscalation]) -> Result<(), StoreError>;

    /// Every escalation state kept.
    async fn escalations(&self) -> Result<Vec<StoredEscalation>, StoreError>;

    /// Schedules automation runs (each unless it exists or is rate
    /// limited); returns how many were scheduled.
    async fn schedule_automations(&self, runs: &[NewAutomation]) -> Result<u64, StoreError>;

    /// Pending automation runs due at `now`, oldest first.
    async fn due_automations(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredAutomation>, StoreError>;

    /// Ends a pending automation run: `ran` (with its execution),
    /// `skipped` or `failed` (with the reason).
    async fn finish_automation(
        &self,
        id: i64,
        state: &str,
        execution_id: Option<i64>,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// The automation runs an alert asked for, newest first.
    async fn automations_of(&self, fingerprint: &str) -> Result<Vec<StoredAutomation>, StoreError>;

    /// Adds or replaces the chat message of a group's integration.
    async fn save_chat_card(&self, card: &StoredChatCard) -> Result<(), StoreError>;

    /// The chat messages of a group, one per chat integration of its receiver.
    async fn chat_cards(
        &self,
        group_key: &str,
        receiver: &str,
    ) -> Result<Vec<StoredChatCard>, StoreError>;

    /// Forgets a group's chat message (its group resolved: the next firing
    /// starts a new one).
    async fn delete_chat_card(
        &self,
        group_key: &str,
        receiver: &str,
        integration: &str,
    ) -> Result<(), StoreError>;

    /// One alert by fingerprint.
    async fn alert(&self, fingerprint: &str) -> Result<Option<StoredAlert>, StoreError>;

    /// Adds a silence.
    async fn insert_silence(&self, silence: &StoredSilence) -> Result<(), StoreError>;

    /// Silences ending after `ends_after` (all when `None`), newest first.
    async fn silences(
        &self,
        ends_after: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<StoredSilence>, StoreError>;

    /// Ends a silence now, if it had not ended; returns it as now kept
    /// (`None` for an unknown id).
    async fn expire_silence(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<StoredSilence>, StoreError>;

    /// Deliveries of the groups whose keys are given (all groups when
    /// empty), newest first.
    async fn list_deliveries(
        &self,
        group_keys: &[String],
        limit: u32,
    ) -> Result<Vec<StoredDelivery>, StoreError>;

    /// Alerts, firing first then newest; only firing ones when asked.
    async fn list_alerts(
        &self,
        firing_only: bool,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, StoreError>;

    /// Resolves the firing alerts whose end has come; returns how many.
    async fn resolve_due_alerts(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// Resolves the firing alert with this PagerDuty `dedup_key`, if any,
    /// and returns it as now kept.
    async fn resolve_alert_by_dedup_key(
        &self,
        dedup_key: &str,
        now: Timestamp,
    ) -> Result<Option<StoredAlert>, StoreError>;

    /// Ends a `queued` or `awaiting_approval` execution with `status`
    /// (`cancelled` or `lost`); `false` when it was in no such state.
    async fn end_waiting(
        &self,
        id: ExecutionId,
        status: ExecutionStatus,
        reason: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    async fn get_execution(&self, id: ExecutionId) -> Result<Option<Execution>, StoreError>;

    /// Records an approver's answer; `false` when this approver already
    /// answered for this execution.
    async fn record_approval(
        &self,
        id: ExecutionId,
        approval: &Approval,
    ) -> Result<bool, StoreError>;

    /// The answers an execution received, oldest first.
    async fn approvals(&self, id: ExecutionId) -> Result<Vec<Approval>, StoreError>;

    /// Moves an `awaiting_approval` execution to the queue; `false` when it
    /// was no longer waiting.
    async fn release_approved(&self, id: ExecutionId) -> Result<bool, StoreError>;

    /// Executions awaiting approval whose request lapsed at or before `now`.
    async fn lapsed_approvals(&self, now: Timestamp) -> Result<Vec<ExecutionId>, StoreError>;

    /// When the next request for approval lapses, if any is waiting.
    async fn next_approval_expiry(&self) -> Result<Option<Timestamp>, StoreError>;

    async fn list_executions(&self, filter: &ExecutionFilter)
    -> Result<Vec<Execution>, StoreError>;

    /// Output chunks with `seq > after`, in order, at most `limit`.
    async fn output(
        &self,
        id: ExecutionId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>, StoreError>;

    /// Marks every execution still `running` on `node` as `lost`: called at
    /// start-up, when nothing of the previous process can still be running.
    /// Workflows with a stored state are not lost: they resume.
    async fn mark_lost(
        &self,
        node: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<Vec<ExecutionId>, StoreError>;

    /// Executions waiting in the queue.
    async fn queue_depth(&self) -> Result<i64, StoreError>;

    /// Stores the state of a workflow run (replacing the previous one).
    async fn save_workflow_state(
        &self,
        id: ExecutionId,
        state: &serde_json::Value,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// The stored state of a workflow run.
    async fn workflow_state(
        &self,
        id: ExecutionId,
    ) -> Result<Option<serde_json::Value>, StoreError>;

    /// Workflows `node` was running (with a stored state), to resume.
    async fn workflows_running_on(&self, node: &str) -> Result<Vec<ExecutionId>, StoreError>;

    /// Takes the named lease for `holder` until `until` when it is free,
    /// has run out (before `now`), or is `holder`'s already (a renewal);
    /// returns the lease as it now stands, whoever holds it.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Lease, StoreError>;

    /// Gives the named lease up, if `holder` holds it: it runs out now (its
    /// token stays, so the next holder's is higher).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// The named lease as it stands, if anyone ever took it.
    async fn lease(&self, name: &str) -> Result<Option<Lease>, StoreError>;

    /// The named leases whose names start with `prefix` (`node:`), by name.
    async fn leases_with_prefix(&self, prefix: &str) -> Result<Vec<Lease>, StoreError>;

    /// Notes that `door` heard from a caller on `node` at `at`.
    async fn note_door_event(
        &self,
        door: &str,
        node: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Notes that `door`'s connection on `node` came up (or went down) at
    /// `at`, with what it said.
    async fn note_door_connection(
        &self,
        door: &str,
        node: &str,
        connected: bool,
        at: Timestamp,
        detail: &str,
    ) -> Result<(), StoreError>;

    /// Every door's state on every node, by door then node.
    async fn door_states(&self) -> Result<Vec<DoorState>, StoreError>;

    /// The heartbeat: extends the lease of every execution `node` runs.
    async fn renew_execution_leases(&self, node: &str, until: Timestamp)
    -> Result<u64, StoreError>;

    /// Running executions whose lease ran out before `now`: their node
    /// stopped renewing it.
    async fn expired_executions(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Execution>, StoreError>;

    /// Takes over an execution whose lease ran out, if it still has (so
    /// two nodes never both take one over); whether it was taken.
    async fn take_over_expired(
        &self,
        id: ExecutionId,
        now: Timestamp,
        outcome: &TakeOver,
    ) -> Result<bool, StoreError>;

    async fn record_catalog_load(&self, load: &CatalogLoad) -> Result<(), StoreError>;

    /// Seals and appends audit events, in order, in one transaction, each
    /// chained to the record before it; returns the sealed records.
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<Vec<AuditRecord>, StoreError>;

    async fn create_token(&self, new: &NewToken) -> Result<TokenRecord, StoreError>;

    /// The token with this hash, if any (revoked and expired ones included).
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Every token, newest first.
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revokes a token; `false` when there is no such token or it already was.
    async fn revoke_token(&self, id: i64, at: Timestamp) -> Result<bool, StoreError>;

    /// Records that a token was used.
    async fn touch_token(&self, id: i64, at: Timestamp) -> Result<(), StoreError>;

    /// Remembers that an offline run was pushed; `false` when it already was.
    async fn register_offline_run(
        &self,
        id: &str,
        by: &Principal,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Records a chat delivery; `false` when it was recorded before (a
    /// platform's retry). Deliveries older than `forget_before` are dropped.
    async fn record_chat_delivery(
        &self,
        platform: &str,
        delivery_id: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Stores a link code (its hash) for a chat identity.
    async fn create_link_code(
        &self,
        code_hash: &str,
        chat_identity: &str,
        at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Uses a link code: when it exists, is unused and has not expired, marks
    /// it used and links its chat identity to `principal` (replacing an
    /// earlier link of that identity). Returns the chat identity linked.
    async fn redeem_link_code(
        &self,
        code_hash: &str,
        principal: &Principal,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError>;

    /// The principal a chat identity is linked to.
    async fn linked_principal(&self, chat_identity: &str) -> Result<Option<Principal>, StoreError>;

    /// The chat identities linked to a principal, with when.
    async fn chat_links_of(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(String, Timestamp)>, StoreError>;

    /// Removes a link; `false` when there was none.
    async fn unlink_chat_identity(&self, chat_identity: &str) -> Result<bool, StoreError>;

    /// Audit records with `seq > after`, in chain order, at most `limit`;
    /// only those at or after `since` when given.
    async fn audit_records(
        &self,
        after: i64,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Claims a schedule's tick for `node` with `outcome` (`claimed`, or
    /// `skipped` for a missed tick let go); `false` when it was claimed
    /// before, by any process. Ticks of the schedule a week older than
    /// this one are forgotten; the newest always stays.
    async fn claim_schedule_tick(
        &self,
        schedule: &str,
        tick: Timestamp,
        node: &str,
        outcome: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Records how a claimed tick went.
    async fn finish_schedule_tick(
        &self,
        schedule: &str,
        tick: Timestamp,
        outcome: &str,
        execution: Option<ExecutionId>,
        reason: Option<&str>,
    ) -> Result<(), StoreError>;

    /// The newest claimed tick of every schedule that has one.
    async fn last_schedule_ticks(&self) -> Result<Vec<StoredTick>, StoreError>;

    /// A schedule's claimed ticks, newest first, at most `limit`.
    async fn schedule_ticks(
        &self,
        schedule: &str,
        limit: u32,
    ) -> Result<Vec<StoredTick>, StoreError>;

    /// Records a webhook's delivery id; `false` when it was recorded
    /// before (a replay). The hook's ids older than `forget_before` are
    /// dropped.
    async fn record_hook_delivery(
        &self,
        hook: &str,
        delivery_id: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Forgets a webhook's delivery id, so that the sender's retry of a
    /// call that failed on this side is not taken for a replay.
    async fn forget_hook_delivery(&self, hook: &str, delivery_id: &str) -> Result<(), StoreError>;
}

/// One tick of a schedule, claimed by the first process that asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTick {
    pub schedule: String,
    pub tick: Timestamp,
    /// The node that claimed it.
    pub node: String,
    pub claimed_at: Timestamp,
    /// `claimed`, then `submitted`, `skipped`, `refused` or `failed`.
    pub outcome: String,
    pub execution: Option<ExecutionId>,
    pub reason: Option<String>,
}

/// Opens the store named by a URL (`sqlite:///var/lib/switchboard/db.sqlite`,
/// `sqlite::memory:`, `postgres://switchboard@db.example.com/switchboard`
/// or `postgresql://…`), applying its migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}
