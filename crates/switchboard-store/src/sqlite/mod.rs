//! The SQLite backend: one file in WAL mode, written through a single
//! connection (SQLite allows one writer at a time; queuing writes in the pool
//! is cheaper than retrying on `SQLITE_BUSY`) and read through a few more.
//!
//! Checkpoints (copying the write-ahead log into the database file, the
//! only step that waits for the disk with `synchronous = NORMAL`) run on a
//! connection of their own every [`CHECKPOINT_EVERY`], so that a commit
//! rarely waits for an `fsync`. SQLite's own checkpoint in the committing
//! writer (when the log reaches 1000 pages) stays as the backstop: under
//! writes without pause the log is never wholly copied, so never restarted,
//! and only the writer can bound it. Under CPU starvation both can fall
//! behind for a while and the log's file grows; `journal_size_limit` cuts
//! it back when the log next starts over, so the file does not keep the
//! high-water mark of a burst, and a log file past that size is emptied by
//! a `TRUNCATE` checkpoint through the writer.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};
use switchboard_core::audit::{AuditEvent, AuditRecord, GENESIS};
use switchboard_core::token::TokenRecord;
use switchboard_core::{
    ActionName, Approval, Execution, ExecutionId, ExecutionStatus, Origin, OutputChunk, Principal,
    Stream, Timestamp,
};

use crate::rows::{ExecutionRow, TokenRow, corrupt, to_executions};
use crate::{
    ArtifactInfo, CatalogLoad, DeliveryAttempt, ExecutionFilter, Finish, FlushRecord,
    NewAutomation, NewExecution, NewToken, Store, StoreError, StoredAck, StoredAlert,
    StoredAutomation, StoredChatCard, StoredDelivery, StoredEscalation, StoredGroup,
    StoredLogEntry, StoredSilence, StoredTick,
};

mod alerts;
mod triggers;

mod leases;

/// How often the background checkpoint runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The size, in bytes, the write-ahead log's file is cut back to when it
/// starts over (about SQLite's own checkpoint threshold of 1000 pages).
const WAL_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// Executions, output and catalog loads in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Stops the background checkpoints when the last clone goes.
    _checkpoints: Option<std::sync::Arc<AbortOnDrop>>,
}

/// A task that ends when this is dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Checkpoints the write-ahead log in the background. `PASSIVE` never
/// blocks the writer or readers: it copies what no reader still needs and
/// leaves the rest for the next round. When the log's file has grown past
/// [`WAL_SIZE_LIMIT`] anyway (writes outran both checkpointers), a
/// `TRUNCATE` checkpoint through the writer — so no write comes between —
/// copies the rest and empties the file.
async fn checkpoint_forever(checkpointer: SqlitePool, writer: SqlitePool, wal: PathBuf) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&checkpointer)
            .await
        {
            tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
            continue;
        }
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if size > WAL_SIZE_LIMIT
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&writer)
                .await
        {
            tracing::warn!(error = %e, size, "SQLite log truncation failed; retrying");
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::UnsupportedUrl(url.to_owned()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            // When a checkpoint lets the log start over, its file is cut
            // back to this size: a burst of writes that outran the
            // checkpoints does not keep its disk space for ever.
            .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        // An in-memory database exists once per connection: read through the
        // writer; it has no log to checkpoint.
        if url.contains(":memory:") {
            return Ok(Self {
                reader: writer.clone(),
                writer,
                _checkpoints: None,
            });
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().read_only(true))
            .await?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let wal = PathBuf::from(format!("{}-wal", options.get_filename().display()));
        let task = tokio::spawn(checkpoint_forever(checkpointer, writer.clone(), wal));
        Ok(Self {
            writer,
            reader,
            _checkpoints: Some(std::sync::Arc::new(AbortOnDrop(task))),
        })
    }
}

impl SqliteStore {
    /// The writer's and the readers' pools, for [`crate::copy`].
    pub(crate) fn pools(&self) -> (&SqlitePool, &SqlitePool) {
        (&self.writer, &self.reader)
    }
}

fn push_ids(q: &mut QueryBuilder<Sqlite>, ids: &[ExecutionId]) {
    q.push("(");
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(id.0);
    }
    q.push(")");
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn insert_execution(&self, new: &NewExecution) -> Result<Execution, StoreError> {
        // `fetch_all`, not `fetch_one`: a `RETURNING` statement left unfinished
        // keeps its transaction open, and then the WAL is never checkpointed
        // and grows without bound (the test `sqlite_checkpoints_its_write_ahead_log`).
        let rows: Vec<ExecutionRow> = sqlx::query_as(concat!(
            "INSERT INTO executions (action, params, requester, origin, status, created_at, \
             approval_rule, approval_expires_at, parent_id, step, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ",
            columns!()
        ))
        .bind(new.action.as_str())
        .bind(new.params.to_string())
        .bind(new.requester.as_str())
        .bind(new.origin.as_str())
        .bind(new.status.as_str())
        .bind(new.created_at.micros())
        .bind(
            new.approval_rule
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("approval rule: {e}")))?,
        )
        .bind(new.approval_expires_at.map(Timestamp::micros))
        .bind(new.parent.map(|p| p.0))
        .bind(new.step.as_deref())
        .bind(new.node.as_deref())
        .fetch_all(&self.writer)
        .await?;
        rows.into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt("insert returned no row".into()))?
            .try_into()
    }

    async fn claim_queued(
        &self,
        node: &str,
        limit: u32,
        skip_actions: &[ActionName],
        now: Timestamp,
    ) -> Result<Vec<Execution>, StoreError> {
        let mut q =
            QueryBuilder::<Sqlite>::new("UPDATE executions SET status = 'running', node = ");
        q.push_bind(node.to_owned());
        q.push(", started_at = ");
        q.push_bind(now.micros());
        q.push(" WHERE id IN (SELECT id FROM executions WHERE status = 'queued' AND (node IS NULL OR node = ");
        q.push_bind(node.to_owned());
        q.push(" OR created_at < ");
        q.push_bind(now.before(crate::ADOPT_AFTER).micros());
        q.push(")");
        if !skip_actions.is_empty() {
            q.push(" AND action NOT IN (");
            let mut sep = q.separated(", ");
            for a in skip_actions {
                sep.push_bind(a.as_str().to_owned());
            }
            q.push(")");
        }
        q.push(" ORDER BY id LIMIT ");
        q.push_bind(i64::from(limit));
        q.push(concat!(") RETURNING ", columns!()));
        let rows: Vec<ExecutionRow> = q.build_query_as().fetch_all(&self.writer).await?;
        let mut claimed = to_executions(rows)?;
        claimed.sort_by_key(|e| e.id);
        Ok(claimed)
    }

    async fn release_claims(&self, ids: &[ExecutionId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE executions SET status = 'queued', node = NULL, started_at = NULL WHERE status = 'running' AND id IN ",
        );
        push_ids(&mut q, ids);
        q.build().execute(&self.writer).await?;
        Ok(())
    }

    async fn append_output(
        &self,
        id: ExecutionId,
        chunks: &[OutputChunk],
    ) -> Result<(), StoreError> {
        // SQLite allows 32766 bound values per statement; 4 per chunk.
        for batch in chunks.chunks(4000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO output_chunks (execution_id, seq, ts, stream, text) ",
            );
            q.push_values(batch, |mut b, c| {
                b.push_bind(id.0)
                    .push_bind(c.seq)
                    .push_bind(c.ts.micros())
                    .push_bind(c.stream.as_str())
                    .push_bind(c.text.clone());
            });
            q.build().execute(&self.writer).await?;
        }
        Ok(())
    }

    async fn finish_execution(&self, id: ExecutionId, f: &Finish) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE executions SET status = ?, started_at = COALESCE(?, started_at), exit_code = ?, result = ?, \
             error = ?, output_bytes = ?, output_truncated = ?, finished_at = ? WHERE id = ? AND status = 'running'",
        )
        .bind(f.status.as_str())
        .bind(f.started_at.map(Timestamp::micros))
        .bind(f.exit_code.map(i64::from))
        .bind(f.result.as_ref().map(ToString::to_string))
        .bind(f.error.as_deref())
        .bind(f.output_bytes)
        .bind(f.output_truncated)
        .bind(f.finished_at.micros())
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        for a in &f.artifacts {
            sqlx::query(
                "INSERT OR REPLACE INTO artifacts (execution_id, name, media_type, size, content) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(id.0)
            .bind(&a.name)
            .bind(&a.media_type)
            .bind(i64::try_from(a.bytes.len()).unwrap_or(i64::MAX))
            .bind(&a.bytes)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn upsert_alerts(
        &self,
        alerts: Vec<StoredAlert>,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        self.upsert_alerts_impl(alerts).await
    }

    async fn list_alerts(
        &self,
        firing_only: bool,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        self.list_alerts_impl(firing_only, limit).await
    }

    async fn resolve_due_alerts(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.resolve_due_alerts_impl(now).await
    }

    async fn resolve_alert_by_dedup_key(
        &self,
        dedup_key: &str,
        now: Timestamp,
    ) -> Result<Option<StoredAlert>, StoreError> {
        self.resolve_alert_by_dedup_key_impl(dedup_key, now).await
    }

    async fn alerts_to_regroup(&self) -> Result<Vec<StoredAlert>, StoreError> {
        self.alerts_to_regroup_impl().await
    }

    async fn alerts_changed_since(&self, since: Timestamp) -> Result<Vec<StoredAlert>, StoreError> {
        self.alerts_changed_since_impl(since).await
    }

    async fn save_alert_groups(&self, groups: &[StoredGroup]) -> Result<(), StoreError> {
        self.save_alert_groups_impl(groups).await
    }

    async fn alert_groups(&self) -> Result<Vec<StoredGroup>, StoreError> {
        self.alert_groups_impl().await
    }

    async fn delete_alert_groups(&self, ids: &[(String, String)]) -> Result<(), StoreError> {
        self.delete_alert_groups_impl(ids).await
    }

    async fn notification_log(&self) -> Result<Vec<StoredLogEntry>, StoreError> {
        self.notification_log_impl().await
    }

    async fn record_flushes(&self, flushes: &[FlushRecord]) -> Result<(), StoreError> {
        self.record_flushes_impl(flushes).await
    }

    async fn due_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        self.due_deliveries_impl(now, limit).await
    }

    async fn record_delivery_attempt(
        &self,
        id: i64,
        attempt: &DeliveryAttempt,
    ) -> Result<(), StoreError> {
        self.record_delivery_attempt_impl(id, attempt).await
    }

    async fn save_ack(&self, ack: &StoredAck) -> Result<(), StoreError> {
        self.save_ack_impl(ack).await
    }

    async fn acks(&self) -> Result<Vec<StoredAck>, StoreError> {
        self.acks_impl().await
    }

    async fn delete_acks(&self, subjects: &[String]) -> Result<(), StoreError> {
        self.delete_acks_impl(subjects).await
    }

    async fn save_escalations(&self, states: &[StoredEscalation]) -> Result<(), StoreError> {
        self.save_escalations_impl(states).await
    }

    async fn escalations(&self) -> Result<Vec<StoredEscalation>, StoreError> {
        self.escalations_impl().await
    }

    async fn schedule_automations(&self, runs: &[NewAutomation]) -> Result<u64, StoreError> {
        self.schedule_automations_impl(runs).await
    }

    async fn due_automations(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredAutomation>, StoreError> {
        self.due_automations_impl(now, limit).await
    }

    async fn finish_automation(
        &self,
        id: i64,
        state: &str,
        execution_id: Option<i64>,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.finish_automation_impl(id, state, execution_id, reason, now)
            .await
    }

    async fn automations_of(&self, fingerprint: &str) -> Result<Vec<StoredAutomation>, StoreError> {
        self.automations_of_impl(fingerprint).await
    }

    async fn alert(&self, fingerprint: &str) -> Result<Option<StoredAlert>, StoreError> {
        self.alert_impl(fingerprint).await
    }

    async fn save_chat_card(&self, card: &StoredChatCard) -> Result<(), StoreError> {
        self.save_chat_card_impl(card).await
    }

    async fn chat_cards(
        &self,
        group_key: &str,
        receiver: &str,
    ) -> Result<Vec<StoredChatCard>, StoreError> {
        self.chat_cards_impl(group_key, receiver).await
    }

    async fn delete_chat_card(
        &self,
        group_key: &str,
        receiver: &str,
        integration: &str,
    ) -> Result<(), StoreError> {
        self.delete_chat_card_impl(group_key, receiver, integration)
            .await
    }

    async fn insert_silence(&self, silence: &StoredSilence) -> Result<(), StoreError> {
        self.insert_silence_impl(silence).await
    }

    async fn silences(
        &self,
        ends_after: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<StoredSilence>, StoreError> {
        self.silences_impl(ends_after, limit).await
    }

    async fn expire_silence(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<StoredSilence>, StoreError> {
        self.expire_silence_impl(id, now).await
    }

    async fn list_deliveries(
        &self,
        group_keys: &[String],
        limit: u32,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        self.list_deliveries_impl(group_keys, limit).await
    }

    async fn artifacts(&self, id: ExecutionId) -> Result<Vec<ArtifactInfo>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, media_type, size FROM artifacts WHERE execution_id = ? ORDER BY name",
        )
        .bind(id.0)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, media_type, size)| ArtifactInfo {
                name,
                media_type,
                size,
            })
            .collect())
    }

    async fn artifact(
        &self,
        id: ExecutionId,
        name: &str,
    ) -> Result<Option<switchboard_core::Artifact>, StoreError> {
        let row: Option<(String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT name, media_type, content FROM artifacts WHERE execution_id = ? AND name = ?",
        )
        .bind(id.0)
        .bind(name)
        .fetch_optional(&self.reader)
        .await?;
        Ok(
            row.map(|(name, media_type, bytes)| switchboard_core::Artifact {
                name,
                media_type,
                bytes,
            }),
        )
    }

    async fn end_waiting(
        &self,
        id: ExecutionId,
        status: ExecutionStatus,
        reason: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = ?, error = ?, finished_at = ? \
             WHERE id = ? AND status IN ('queued', 'awaiting_approval')",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(at.micros())
        .bind(id.0)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_approval(
        &self,
        id: ExecutionId,
        approval: &Approval,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO approvals (execution_id, approver, decision, reason, origin, at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (execution_id, approver) DO NOTHING",
        )
        .bind(id.0)
        .bind(approval.approver.as_str())
        .bind(if approval.approved {
            "approved"
        } else {
            "rejected"
        })
        .bind(approval.reason.as_deref())
        .bind(approval.origin.as_str())
        .bind(approval.at.micros())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn approvals(&self, id: ExecutionId) -> Result<Vec<Approval>, StoreError> {
        let rows: Vec<(String, String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT approver, decision, reason, origin, at FROM approvals \
             WHERE execution_id = ? ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(approver, decision, reason, origin, at)| {
                Ok(Approval {
                    approver: Principal::new(approver).map_err(|e| corrupt(id.0, e))?,
                    approved: decision == "approved",
                    reason,
                    origin: Origin::new(origin).map_err(|e| corrupt(id.0, e))?,
                    at: Timestamp(at),
                })
            })
            .collect()
    }

    async fn release_approved(&self, id: ExecutionId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = 'queued', approval_expires_at = NULL \
             WHERE id = ? AND status = 'awaiting_approval'",
        )
        .bind(id.0)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn lapsed_approvals(&self, now: Timestamp) -> Result<Vec<ExecutionId>, StoreError> {
        let ids: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM executions WHERE status = 'awaiting_approval' \
             AND approval_expires_at <= ? ORDER BY id",
        )
        .bind(now.micros())
        .fetch_all(&self.reader)
        .await?;
        Ok(ids.into_iter().map(|(id,)| ExecutionId(id)).collect())
    }

    async fn next_approval_expiry(&self) -> Result<Option<Timestamp>, StoreError> {
        let next: (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(approval_expires_at) FROM executions WHERE status = 'awaiting_approval'",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(next.0.map(Timestamp))
    }

    async fn get_execution(&self, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
        let row: Option<ExecutionRow> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM executions WHERE id = ?"
        ))
        .bind(id.0)
        .fetch_optional(&self.reader)
        .await?;
        row.map(Execution::try_from).transpose()
    }

    async fn list_executions(&self, f: &ExecutionFilter) -> Result<Vec<Execution>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            columns!(),
            " FROM executions WHERE 1 = 1"
        ));
        if let Some(s) = f.status {
            q.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(a) = &f.action {
            q.push(" AND action = ").push_bind(a.as_str().to_owned());
        }
        if let Some(actions) = &f.actions_in {
            q.push(" AND action IN (SELECT value FROM json_each(")
                .push_bind(serde_json::to_string(actions).unwrap_or_else(|_| "[]".to_owned()))
                .push("))");
        }
        if let Some(r) = &f.requester {
            q.push(" AND requester = ").push_bind(r.as_str().to_owned());
        }
        if let Some(o) = &f.origin {
            q.push(" AND origin = ").push_bind(o.as_str().to_owned());
        }
        if let Some(t) = f.since {
            q.push(" AND created_at >= ").push_bind(t.micros());
        }
        if let Some(t) = f.until {
            q.push(" AND created_at < ").push_bind(t.micros());
        }
        if let Some(b) = f.before {
            q.push(" AND id < ").push_bind(b.0);
        }
        if let Some(p) = f.parent {
            q.push(" AND parent_id = ").push_bind(p.0);
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(f.limit));
        let rows: Vec<ExecutionRow> = q.build_query_as().fetch_all(&self.reader).await?;
        to_executions(rows)
    }

    async fn output(
        &self,
        id: ExecutionId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>, StoreError> {
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT seq, ts, stream, text FROM output_chunks WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(id.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(seq, ts, stream, text)| {
                let stream = Stream::parse(&stream)
                    .ok_or_else(|| corrupt(id.0, format!("output stream `{stream}`")))?;
                Ok(OutputChunk {
                    seq,
                    ts: Timestamp(ts),
                    stream,
                    text,
                })
            })
            .collect()
    }

    async fn mark_lost(
        &self,
        node: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<Vec<ExecutionId>, StoreError> {
        let ids: Vec<(i64,)> = sqlx::query_as(
            "UPDATE executions SET status = 'lost', error = ?, finished_at = ? \
             WHERE status = 'running' AND node = ? \
             AND id NOT IN (SELECT execution_id FROM workflow_runs) RETURNING id",
        )
        .bind(reason)
        .bind(at.micros())
        .bind(node)
        .fetch_all(&self.writer)
        .await?;
        Ok(ids.into_iter().map(|(id,)| ExecutionId(id)).collect())
    }

    async fn queue_depth(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM executions WHERE status = 'queued'")
                .fetch_one(&self.reader)
                .await?;
        Ok(n)
    }

    async fn save_workflow_state(
        &self,
        id: ExecutionId,
        state: &serde_json::Value,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workflow_runs (execution_id, state, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (execution_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(id.0)
        .bind(state.to_string())
        .bind(at.micros())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn workflow_state(
        &self,
        id: ExecutionId,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT state FROM workflow_runs WHERE execution_id = ?")
                .bind(id.0)
                .fetch_optional(&self.reader)
                .await?;
        row.map(|(text,)| serde_json::from_str(&text).map_err(|e| corrupt(id.0, e)))
            .transpose()
    }

    async fn workflows_running_on(&self, node: &str) -> Result<Vec<ExecutionId>, StoreError> {
        let ids: Vec<(i64,)> = sqlx::query_as(
            "SELECT e.id FROM executions e JOIN workflow_runs w ON w.execution_id = e.id \
             WHERE e.status = 'running' AND e.node = ? ORDER BY e.id",
        )
        .bind(node)
        .fetch_all(&self.reader)
        .await?;
        Ok(ids.into_iter().map(|(id,)| ExecutionId(id)).collect())
    }

    async fn record_catalog_load(&self, load: &CatalogLoad) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO catalog_versions (hash, git_commit, actions, node, loaded_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&load.hash)
            .bind(load.git_commit.as_deref())
            .bind(load.actions)
            .bind(&load.node)
            .bind(load.loaded_at.micros())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn append_audit(&self, events: &[AuditEvent]) -> Result<Vec<AuditRecord>, StoreError> {
        let mut tx = self.writer.begin().await?;
        let head: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_all(&mut *tx)
                .await?;
        let (mut seq, mut prev) = head.into_iter().next().unwrap_or((0, GENESIS.to_owned()));
        let mut sealed = Vec::with_capacity(events.len());
        for event in events {
            seq += 1;
            let r = AuditRecord::seal(seq, event.clone(), &prev);
            sqlx::query(
                "INSERT INTO audit_log (seq, ts, actor, origin, kind, subject, outcome, detail, prev_hash, hash) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.seq)
            .bind(r.event.ts.micros())
            .bind(r.event.actor.as_str())
            .bind(r.event.origin.as_str())
            .bind(&r.event.kind)
            .bind(&r.event.subject)
            .bind(&r.event.outcome)
            .bind(r.event.detail.to_string())
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .execute(&mut *tx)
            .await?;
            prev = r.hash.clone();
            sealed.push(r);
        }
        tx.commit().await?;
        Ok(sealed)
    }

    async fn audit_records(
        &self,
        after: i64,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        type Row = (
            i64,
            i64,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, ts, actor, origin, kind, subject, outcome, detail, prev_hash, hash FROM audit_log \
             WHERE seq > ? AND ts >= ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(since.map_or(i64::MIN, Timestamp::micros))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(
                |(seq, ts, actor, origin, kind, subject, outcome, detail, prev_hash, hash)| {
                    let bad =
                        |what: &str| StoreError::Corrupt(format!("audit record {seq}: {what}"));
                    Ok(AuditRecord {
                        seq,
                        event: AuditEvent {
                            ts: Timestamp(ts),
                            // A tampered field must still load, so that verification
                            // (not parsing) is what reports it.
                            actor: Principal::new(actor).map_err(|e| bad(&e.to_string()))?,
                            origin: Origin::new(origin).map_err(|e| bad(&e.to_string()))?,
                            kind,
                            subject,
                            outcome,
                            detail: serde_json::from_str(&detail)
                                .map_err(|e| bad(&e.to_string()))?,
                        },
                        prev_hash,
                        hash,
                    })
                },
            )
            .collect()
    }

    async fn create_token(&self, new: &NewToken) -> Result<TokenRecord, StoreError> {
        let scopes: Vec<&str> = new.scopes.iter().map(|s| s.as_str()).collect();
        // `fetch_all`: see `insert_execution` on unfinished `RETURNING` statements.
        let rows: Vec<TokenRow> = sqlx::query_as(concat!(
            "INSERT INTO api_tokens (hash, principal, scopes, description, created_by, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ",
            token_columns!()
        ))
        .bind(&new.hash)
        .bind(new.principal.as_str())
        .bind(scopes.join(","))
        .bind(&new.description)
        .bind(new.created_by.as_str())
        .bind(new.created_at.micros())
        .bind(new.expires_at.map(Timestamp::micros))
        .fetch_all(&self.writer)
        .await?;
        rows.into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt("insert returned no row".into()))?
            .try_into()
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE hash = ?"
        ))
        .bind(hash)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .next()
            .map(TokenRecord::try_from)
            .transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens ORDER BY id DESC"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(TokenRecord::try_from).collect()
    }

    async fn revoke_token(&self, id: i64, at: Timestamp) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(at.micros())
                .bind(id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch_token(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(at.micros())
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn record_chat_delivery(
        &self,
        platform: &str,
        delivery_id: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM chat_deliveries WHERE received_at < ?")
            .bind(forget_before.micros())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "INSERT OR IGNORE INTO chat_deliveries (platform, delivery_id, received_at) \
             VALUES (?, ?, ?)",
        )
        .bind(platform)
        .bind(delivery_id)
        .bind(at.micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_link_code(
        &self,
        code_hash: &str,
        chat_identity: &str,
        at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        // Only the newest code of an identity works; spent and lapsed codes go.
        sqlx::query(
            "DELETE FROM chat_link_codes WHERE chat_identity = ? OR expires_at < ? \
             OR used_at IS NOT NULL",
        )
        .bind(chat_identity)
        .bind(at.micros())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO chat_link_codes (code_hash, chat_identity, created_at, expires_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(code_hash)
        .bind(chat_identity)
        .bind(at.micros())
        .bind(expires_at.micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn redeem_link_code(
        &self,
        code_hash: &str,
        principal: &Principal,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.writer.begin().await?;
        let used: Vec<(String,)> = sqlx::query_as(
            "UPDATE chat_link_codes SET used_at = ? \
             WHERE code_hash = ? AND used_at IS NULL AND expires_at >= ? \
             RETURNING chat_identity",
        )
        .bind(now.micros())
        .bind(code_hash)
        .bind(now.micros())
        .fetch_all(&mut *tx)
        .await?;
        let Some((identity,)) = used.into_iter().next() else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO chat_links (chat_identity, principal, linked_at) VALUES (?, ?, ?) \
             ON CONFLICT (chat_identity) DO UPDATE SET principal = excluded.principal, \
             linked_at = excluded.linked_at",
        )
        .bind(&identity)
        .bind(principal.as_str())
        .bind(now.micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(identity))
    }

    async fn linked_principal(&self, chat_identity: &str) -> Result<Option<Principal>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT principal FROM chat_links WHERE chat_identity = ?")
                .bind(chat_identity)
                .fetch_optional(&self.reader)
                .await?;
        row.map(|(p,)| {
            Principal::new(p).map_err(|e| StoreError::Corrupt(format!("chat link: {e}")))
        })
        .transpose()
    }

    async fn chat_links_of(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(String, Timestamp)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT chat_identity, linked_at FROM chat_links WHERE principal = ? \
             ORDER BY chat_identity",
        )
        .bind(principal.as_str())
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, at)| (id, Timestamp(at)))
            .collect())
    }

    async fn unlink_chat_identity(&self, chat_identity: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM chat_links WHERE chat_identity = ?")
            .bind(chat_identity)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn register_offline_run(
        &self,
        id: &str,
        by: &Principal,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT OR IGNORE INTO offline_runs (id, pushed_by, pushed_at) VALUES (?, ?, ?)",
        )
        .bind(id)
        .bind(by.as_str())
        .bind(at.micros())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_schedule_tick(
        &self,
        schedule: &str,
        tick: Timestamp,
        node: &str,
        outcome: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.claim_schedule_tick_impl(schedule, tick, node, outcome, at)
            .await
    }

    async fn finish_schedule_tick(
        &self,
        schedule: &str,
        tick: Timestamp,
        outcome: &str,
        execution: Option<ExecutionId>,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.finish_schedule_tick_impl(schedule, tick, outcome, execution, reason)
            .await
    }

    async fn last_schedule_ticks(&self) -> Result<Vec<StoredTick>, StoreError> {
        self.last_schedule_ticks_impl().await
    }

    async fn schedule_ticks(
        &self,
        schedule: &str,
        limit: u32,
    ) -> Result<Vec<StoredTick>, StoreError> {
        self.schedule_ticks_impl(schedule, limit).await
    }

    async fn record_hook_delivery(
        &self,
        hook: &str,
        delivery_id: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<bool, StoreError> {
        self.record_hook_delivery_impl(hook, delivery_id, at, forget_before)
            .await
    }

    async fn forget_hook_delivery(&self, hook: &str, delivery_id: &str) -> Result<(), StoreError> {
        self.forget_hook_delivery_impl(hook, delivery_id).await
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<crate::Lease, StoreError> {
        self.acquire_lease_impl(name, holder, now, until).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.release_lease_impl(name, holder).await
    }

    async fn lease(&self, name: &str) -> Result<Option<crate::Lease>, StoreError> {
        self.lease_impl(name).await
    }

    async fn leases_with_prefix(&self, prefix: &str) -> Result<Vec<crate::Lease>, StoreError> {
        self.leases_with_prefix_impl(prefix).await
    }

    async fn note_door_event(
        &self,
        door: &str,
        node: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.note_door_event_impl(door, node, at).await
    }

    async fn note_door_connection(
        &self,
        door: &str,
        node: &str,
        connected: bool,
        at: Timestamp,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.note_door_connection_impl(door, node, connected, at, detail)
            .await
    }

    async fn door_states(&self) -> Result<Vec<crate::DoorState>, StoreError> {
        self.door_states_impl().await
    }

    async fn renew_execution_leases(
        &self,
        node: &str,
        until: Timestamp,
    ) -> Result<u64, StoreError> {
        self.renew_execution_leases_impl(node, until).await
    }

    async fn expired_executions(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Execution>, StoreError> {
        self.expired_executions_impl(now, limit).await
    }

    async fn take_over_expired(
        &self,
        id: ExecutionId,
        now: Timestamp,
        outcome: &crate::TakeOver,
    ) -> Result<bool, StoreError> {
        self.take_over_expired_impl(id, now, outcome).await
    }
}
