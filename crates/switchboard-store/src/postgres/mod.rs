//! The PostgreSQL backend: what several identical nodes share. It owns the
//! schema of `migrations/postgres` (applied at open, under the migrator's
//! advisory lock, so nodes starting together migrate once) and the SQL of
//! every [`Store`] operation; alerts, groups, deliveries and the rest of
//! alerting live in `alerts.rs`. It keeps the SQLite backend's observable
//! behaviour (ordering, paging, return values) and its representation:
//! times are `BIGINT` microseconds, JSON is text as written (the audit
//! log's hashes cover it byte for byte), so a copy between backends is a
//! copy of rows.
//!
//! What only several nodes need is done here, in the database:
//! - [`Store::claim_queued`] picks the oldest queued executions with
//!   `FOR UPDATE SKIP LOCKED` (once per claim, materialized), so two nodes claiming at once never claim
//!   the same execution and never wait for each other;
//! - [`Store::append_audit`] locks the audit table against other appends
//!   for its transaction, so appends from every node form one chain.
//!
//! It does not decide anything (which status comes next, who may ask),
//! renew leases, elect a leader or carry events between nodes: those are
//! the engine's, on top of this.
//!
//! Connections: one pool of [`POOL_SIZE`] connections per node, each checked
//! before use, so a connection broken by a server restart or failover is
//! replaced rather than handed out. Waiting for a free (or new) connection
//! gives up after [`ACQUIRE_TIMEOUT`]. At open, a server that is not (yet)
//! reachable is retried with backoff for [`OPEN_RETRY_FOR`] — nodes and
//! the database often start together — while a refused login or a missing
//! database fails at once.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder};
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
    StoredLogEntry, StoredSilence,
};

mod alerts;
mod changes;
mod triggers;

mod leases;

/// Connections one node keeps to the server at most.
pub const POOL_SIZE: u32 = 10;

/// How long an operation waits for a connection before it fails.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening the store retries a server it cannot reach.
pub const OPEN_RETRY_FOR: Duration = Duration::from_secs(30);

/// Executions, output, the audit log and the rest in one PostgreSQL
/// database shared by every node.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    changes: std::sync::Arc<changes::Changes>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// Whether connecting failed in a way that waiting may cure: the server is
/// not listening yet, is starting or shutting down, or is out of
/// connections. A wrong password or a missing database is not.
fn worth_retrying(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // cannot_connect_now, too_many_connections, admin_shutdown
            Some("57P03" | "53300" | "57P01")
        ),
        _ => false,
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`)
    /// and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::UnsupportedUrl(without_password(url)))?;
        if options.get_application_name().is_none() {
            options = options.application_name("switchboard");
        }
        let pool_options = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true);
        let deadline = tokio::time::Instant::now() + OPEN_RETRY_FOR;
        let mut pause = Duration::from_millis(100);
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(e) if worth_retrying(&e) && tokio::time::Instant::now() + pause < deadline => {
                    tracing::warn!(error = %e, "PostgreSQL is not reachable yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e.into()),
            }
        };
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            changes: std::sync::Arc::default(),
        })
    }
}

impl PostgresStore {
    /// The pool, for [`crate::copy`].
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The URL with its password, if any, replaced by `****` (in the user
/// information and in a `password=` parameter): fit for an error message,
/// a log or a report.
pub fn without_password(url: &str) -> String {
    let url = match url.split_once('?') {
        Some((base, query)) if query.split('&').any(|p| p.starts_with("password=")) => {
            let query: Vec<&str> = query
                .split('&')
                .map(|p| {
                    if p.starts_with("password=") {
                        "password=****"
                    } else {
                        p
                    }
                })
                .collect();
            format!("{base}?{}", query.join("&"))
        }
        _ => url.to_owned(),
    };
    let url = url.as_str();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****{}", &rest[at..]),
        None => url.to_owned(),
    }
}

type AuditRow = (
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

fn audit_record(row: AuditRow) -> Result<AuditRecord, StoreError> {
    let (seq, ts, actor, origin, kind, subject, outcome, detail, prev_hash, hash) = row;
    let bad = |what: &str| StoreError::Corrupt(format!("audit record {seq}: {what}"));
    Ok(AuditRecord {
        seq,
        event: AuditEvent {
            ts: Timestamp(ts),
            // A tampered field must still load, so that verification (not
            // parsing) is what reports it.
            actor: Principal::new(actor).map_err(|e| bad(&e.to_string()))?,
            origin: Origin::new(origin).map_err(|e| bad(&e.to_string()))?,
            kind,
            subject,
            outcome,
            detail: serde_json::from_str(&detail).map_err(|e| bad(&e.to_string()))?,
        },
        prev_hash,
        hash,
    })
}

fn id_list(ids: &[ExecutionId]) -> Vec<i64> {
    ids.iter().map(|id| id.0).collect()
}

fn names(actions: &[ActionName]) -> Vec<String> {
    actions.iter().map(|a| a.as_str().to_owned()).collect()
}

/// One row back from a statement that must return one.
fn single<T>(rows: Vec<T>) -> Result<T, StoreError> {
    rows.into_iter()
        .next()
        .ok_or_else(|| StoreError::Corrupt("insert returned no row".into()))
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn execution_changes(&self) -> Option<tokio::sync::broadcast::Receiver<ExecutionId>> {
        Some(self.changes.subscribe(&self.pool))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_execution(&self, new: &NewExecution) -> Result<Execution, StoreError> {
        let rows: Vec<ExecutionRow> = sqlx::query_as(concat!(
            "INSERT INTO executions (action, params, requester, origin, status, created_at, \
             approval_rule, approval_expires_at, parent_id, step, node) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
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
        .fetch_all(&self.pool)
        .await?;
        single(rows)?.try_into()
    }

    async fn claim_queued(
        &self,
        node: &str,
        limit: u32,
        skip_actions: &[ActionName],
        now: Timestamp,
    ) -> Result<Vec<Execution>, StoreError> {
        // The select locks the rows it picks and passes over those another
        // node's claim holds; the update checks the status again on the row
        // as it is now. The pick is materialized, so it runs once: as a
        // plain `IN (subquery)` PostgreSQL may run it again for each row
        // updated, each run skipping the rows this statement already
        // changed, and claim more than `limit`.
        let rows: Vec<ExecutionRow> = sqlx::query_as(concat!(
            "WITH picked AS MATERIALIZED (SELECT id AS picked_id FROM executions \
               WHERE status = 'queued' AND action <> ALL($3) \
               AND (node IS NULL OR node = $1 OR created_at < $5) \
               ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             UPDATE executions SET status = 'running', node = $1, started_at = $2 \
             FROM picked WHERE id = picked.picked_id AND status = 'queued' \
             RETURNING ",
            columns!()
        ))
        .bind(node)
        .bind(now.micros())
        .bind(names(skip_actions))
        .bind(i64::from(limit))
        .bind(now.before(crate::ADOPT_AFTER).micros())
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = to_executions(rows)?;
        claimed.sort_by_key(|e| e.id);
        Ok(claimed)
    }

    async fn release_claims(&self, ids: &[ExecutionId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE executions SET status = 'queued', node = NULL, started_at = NULL \
             WHERE status = 'running' AND id = ANY($1)",
        )
        .bind(id_list(ids))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn append_output(
        &self,
        id: ExecutionId,
        chunks: &[OutputChunk],
    ) -> Result<(), StoreError> {
        if chunks.is_empty() {
            return Ok(());
        }
        // One statement, whatever the number of chunks: a column per array.
        let seqs: Vec<i64> = chunks.iter().map(|c| c.seq).collect();
        let times: Vec<i64> = chunks.iter().map(|c| c.ts.micros()).collect();
        let streams: Vec<&str> = chunks.iter().map(|c| c.stream.as_str()).collect();
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        sqlx::query(
            "INSERT INTO output_chunks (execution_id, seq, ts, stream, text) \
             SELECT $1, * FROM UNNEST($2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[])",
        )
        .bind(id.0)
        .bind(seqs)
        .bind(times)
        .bind(streams)
        .bind(texts)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish_execution(&self, id: ExecutionId, f: &Finish) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE executions SET status = $1, started_at = COALESCE($2, started_at), \
             exit_code = $3, result = $4, error = $5, output_bytes = $6, output_truncated = $7, \
             finished_at = $8 WHERE id = $9 AND status = 'running'",
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
                "INSERT INTO artifacts (execution_id, name, media_type, size, content) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (execution_id, name) DO UPDATE SET \
                 media_type = excluded.media_type, size = excluded.size, content = excluded.content",
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
            "SELECT name, media_type, size FROM artifacts WHERE execution_id = $1 ORDER BY name",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
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
            "SELECT name, media_type, content FROM artifacts WHERE execution_id = $1 AND name = $2",
        )
        .bind(id.0)
        .bind(name)
        .fetch_optional(&self.pool)
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
            "UPDATE executions SET status = $1, error = $2, finished_at = $3 \
             WHERE id = $4 AND status IN ('queued', 'awaiting_approval')",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(at.micros())
        .bind(id.0)
        .execute(&self.pool)
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
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (execution_id, approver) DO NOTHING",
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
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn approvals(&self, id: ExecutionId) -> Result<Vec<Approval>, StoreError> {
        let rows: Vec<(String, String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT approver, decision, reason, origin, at FROM approvals \
             WHERE execution_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
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
             WHERE id = $1 AND status = 'awaiting_approval'",
        )
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn lapsed_approvals(&self, now: Timestamp) -> Result<Vec<ExecutionId>, StoreError> {
        let ids: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM executions WHERE status = 'awaiting_approval' \
             AND approval_expires_at <= $1 ORDER BY id",
        )
        .bind(now.micros())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(|(id,)| ExecutionId(id)).collect())
    }

    async fn next_approval_expiry(&self) -> Result<Option<Timestamp>, StoreError> {
        let next: (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(approval_expires_at) FROM executions WHERE status = 'awaiting_approval'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next.0.map(Timestamp))
    }

    async fn get_execution(&self, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
        let row: Option<ExecutionRow> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM executions WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Execution::try_from).transpose()
    }

    async fn list_executions(&self, f: &ExecutionFilter) -> Result<Vec<Execution>, StoreError> {
        let mut q = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            columns!(),
            " FROM executions WHERE TRUE"
        ));
        if let Some(s) = f.status {
            q.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(a) = &f.action {
            q.push(" AND action = ").push_bind(a.as_str().to_owned());
        }
        if let Some(actions) = &f.actions_in {
            q.push(" AND action = ANY(")
                .push_bind(names(actions))
                .push(")");
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
        let rows: Vec<ExecutionRow> = q.build_query_as().fetch_all(&self.pool).await?;
        to_executions(rows)
    }

    async fn output(
        &self,
        id: ExecutionId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>, StoreError> {
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT seq, ts, stream, text FROM output_chunks \
             WHERE execution_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
            "UPDATE executions SET status = 'lost', error = $1, finished_at = $2 \
             WHERE status = 'running' AND node = $3 \
             AND id NOT IN (SELECT execution_id FROM workflow_runs) RETURNING id",
        )
        .bind(reason)
        .bind(at.micros())
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        let mut ids: Vec<ExecutionId> = ids.into_iter().map(|(id,)| ExecutionId(id)).collect();
        ids.sort();
        Ok(ids)
    }

    async fn queue_depth(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM executions WHERE status = 'queued'")
                .fetch_one(&self.pool)
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
            "INSERT INTO workflow_runs (execution_id, state, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (execution_id) DO UPDATE SET state = excluded.state, \
             updated_at = excluded.updated_at",
        )
        .bind(id.0)
        .bind(state.to_string())
        .bind(at.micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn workflow_state(
        &self,
        id: ExecutionId,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT state FROM workflow_runs WHERE execution_id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(text,)| serde_json::from_str(&text).map_err(|e| corrupt(id.0, e)))
            .transpose()
    }

    async fn workflows_running_on(&self, node: &str) -> Result<Vec<ExecutionId>, StoreError> {
        let ids: Vec<(i64,)> = sqlx::query_as(
            "SELECT e.id FROM executions e JOIN workflow_runs w ON w.execution_id = e.id \
             WHERE e.status = 'running' AND e.node = $1 ORDER BY e.id",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(|(id,)| ExecutionId(id)).collect())
    }

    async fn record_catalog_load(&self, load: &CatalogLoad) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO catalog_versions (hash, git_commit, actions, node, loaded_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&load.hash)
        .bind(load.git_commit.as_deref())
        .bind(load.actions)
        .bind(&load.node)
        .bind(load.loaded_at.micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn append_audit(&self, events: &[AuditEvent]) -> Result<Vec<AuditRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // One appender at a time, across every node: the lock conflicts with
        // itself and not with readers, and is held until the commit, so the
        // head read next is the last one committed and stays the head.
        sqlx::query("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (mut seq, mut prev) = head.unwrap_or((0, GENESIS.to_owned()));
        let mut sealed = Vec::with_capacity(events.len());
        for event in events {
            seq += 1;
            let r = AuditRecord::seal(seq, event.clone(), &prev);
            prev.clone_from(&r.hash);
            sealed.push(r);
        }
        // One statement for the whole batch.
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO audit_log (seq, ts, actor, origin, kind, subject, outcome, detail, \
             prev_hash, hash) ",
        );
        for batch in sealed.chunks(5000) {
            q.reset();
            q.push_values(batch, |mut b, r| {
                b.push_bind(r.seq)
                    .push_bind(r.event.ts.micros())
                    .push_bind(r.event.actor.as_str().to_owned())
                    .push_bind(r.event.origin.as_str().to_owned())
                    .push_bind(r.event.kind.clone())
                    .push_bind(r.event.subject.clone())
                    .push_bind(r.event.outcome.clone())
                    .push_bind(r.event.detail.to_string())
                    .push_bind(r.prev_hash.clone())
                    .push_bind(r.hash.clone());
            });
            q.build().execute(&mut *tx).await?;
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
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT seq, ts, actor, origin, kind, subject, outcome, detail, prev_hash, hash \
             FROM audit_log WHERE seq > $1 AND ts >= $2 ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(since.map_or(i64::MIN, Timestamp::micros))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(audit_record).collect()
    }

    async fn create_token(&self, new: &NewToken) -> Result<TokenRecord, StoreError> {
        let scopes: Vec<&str> = new.scopes.iter().map(|s| s.as_str()).collect();
        let rows: Vec<TokenRow> = sqlx::query_as(concat!(
            "INSERT INTO api_tokens (hash, principal, scopes, description, created_by, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
            token_columns!()
        ))
        .bind(&new.hash)
        .bind(new.principal.as_str())
        .bind(scopes.join(","))
        .bind(&new.description)
        .bind(new.created_by.as_str())
        .bind(new.created_at.micros())
        .bind(new.expires_at.map(Timestamp::micros))
        .fetch_all(&self.pool)
        .await?;
        single(rows)?.try_into()
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(TokenRecord::try_from).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens ORDER BY id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TokenRecord::try_from).collect()
    }

    async fn revoke_token(&self, id: i64, at: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(at.micros())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch_token(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at.micros())
            .bind(id)
            .execute(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM chat_deliveries WHERE received_at < $1")
            .bind(forget_before.micros())
            .execute(&mut *tx)
            .await?;
        // Two nodes receiving the same event at once: the second insert
        // waits for the first's commit and then adds nothing.
        let done = sqlx::query(
            "INSERT INTO chat_deliveries (platform, delivery_id, received_at) \
             VALUES ($1, $2, $3) ON CONFLICT (platform, delivery_id) DO NOTHING",
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
        let mut tx = self.pool.begin().await?;
        // Only the newest code of an identity works; spent and lapsed codes go.
        sqlx::query(
            "DELETE FROM chat_link_codes WHERE chat_identity = $1 OR expires_at < $2 \
             OR used_at IS NOT NULL",
        )
        .bind(chat_identity)
        .bind(at.micros())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO chat_link_codes (code_hash, chat_identity, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
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
        let mut tx = self.pool.begin().await?;
        let used: Option<(String,)> = sqlx::query_as(
            "UPDATE chat_link_codes SET used_at = $1 \
             WHERE code_hash = $2 AND used_at IS NULL AND expires_at >= $1 \
             RETURNING chat_identity",
        )
        .bind(now.micros())
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((identity,)) = used else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO chat_links (chat_identity, principal, linked_at) VALUES ($1, $2, $3) \
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
            sqlx::query_as("SELECT principal FROM chat_links WHERE chat_identity = $1")
                .bind(chat_identity)
                .fetch_optional(&self.pool)
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
            "SELECT chat_identity, linked_at FROM chat_links WHERE principal = $1 \
             ORDER BY chat_identity",
        )
        .bind(principal.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, at)| (id, Timestamp(at)))
            .collect())
    }

    async fn unlink_chat_identity(&self, chat_identity: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM chat_links WHERE chat_identity = $1")
            .bind(chat_identity)
            .execute(&self.pool)
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
            "INSERT INTO offline_runs (id, pushed_by, pushed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(by.as_str())
        .bind(at.micros())
        .execute(&self.pool)
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

    async fn last_schedule_ticks(&self) -> Result<Vec<crate::StoredTick>, StoreError> {
        self.last_schedule_ticks_impl().await
    }

    async fn schedule_ticks(
        &self,
        schedule: &str,
        limit: u32,
    ) -> Result<Vec<crate::StoredTick>, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            without_password("postgres://sb:s3cret@db:5432/sb?sslmode=require"),
            "postgres://sb:****@db:5432/sb?sslmode=require"
        );
        assert_eq!(
            without_password("postgresql://sb@db/sb"),
            "postgresql://sb@db/sb"
        );
        assert_eq!(without_password("postgres://db/x@y"), "postgres://db/x@y");
        assert_eq!(
            without_password("postgres://sb@db/sb?sslmode=require&password=s3cret"),
            "postgres://sb@db/sb?sslmode=require&password=****"
        );
        assert_eq!(
            without_password("sqlite:///var/lib/switchboard/switchboard.db"),
            "sqlite:///var/lib/switchboard/switchboard.db"
        );
    }
}
