//! Leases in SQLite: the heartbeat of running executions and the named
//! leases (the leader's). One statement each, so two processes on one
//! database file agree on who holds what.

use switchboard_core::{ExecutionId, Timestamp};

use super::SqliteStore;
use crate::rows::{ExecutionRow, to_executions};
use crate::rows::{LeaseRow, lease_of};
use crate::{Lease, StoreError, TakeOver};

impl SqliteStore {
    pub(super) async fn acquire_lease_impl(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Lease, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO leases (name, holder, token, acquired_at, expires_at) VALUES (?, ?, 1, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET \
               token = CASE WHEN leases.holder = excluded.holder THEN leases.token ELSE leases.token + 1 END, \
               acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END, \
               holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < ?",
        )
        .bind(name)
        .bind(holder)
        .bind(now.micros())
        .bind(until.micros())
        .bind(now.micros())
        .execute(&mut *tx)
        .await?;
        let row: LeaseRow = sqlx::query_as(
            "SELECT name, holder, token, acquired_at, expires_at FROM leases WHERE name = ?",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(lease_of(row))
    }

    pub(super) async fn release_lease_impl(
        &self,
        name: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub(super) async fn lease_impl(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let row: Option<LeaseRow> = sqlx::query_as(
            "SELECT name, holder, token, acquired_at, expires_at FROM leases WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(lease_of))
    }

    pub(super) async fn renew_execution_leases_impl(
        &self,
        node: &str,
        until: Timestamp,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET lease_expires_at = ? WHERE status = 'running' AND node = ?",
        )
        .bind(until.micros())
        .bind(node)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn expired_executions_impl(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<switchboard_core::Execution>, StoreError> {
        let rows: Vec<ExecutionRow> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM executions WHERE status = 'running' AND lease_expires_at < ? ORDER BY id LIMIT ?"
        ))
        .bind(now.micros())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        to_executions(rows)
    }

    pub(super) async fn take_over_expired_impl(
        &self,
        id: ExecutionId,
        now: Timestamp,
        outcome: &TakeOver,
    ) -> Result<bool, StoreError> {
        let guard = "WHERE id = ? AND status = 'running' AND lease_expires_at < ?";
        let q = match outcome {
            TakeOver::Lost { reason } => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE executions SET status = 'lost', error = ?, finished_at = ? {guard}"
            )))
            .bind(reason.clone())
            .bind(now.micros()),
            TakeOver::Requeue => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE executions SET status = 'queued', node = NULL, started_at = NULL, lease_expires_at = NULL {guard}"
            ))),
            TakeOver::Adopt { node, until } => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE executions SET node = ?, lease_expires_at = ? {guard}"
            )))
            .bind(node.clone())
            .bind(until.micros()),
        };
        let done = q
            .bind(id.0)
            .bind(now.micros())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
