//! Leases in PostgreSQL: the heartbeat of running executions, the named
//! leases (the leader's, each node's), and the doors' live state per node.
//! Each change is one statement, so concurrent nodes agree on who holds
//! what; a take-over is a compare-and-set on an expired
//! lease, so two nodes never both take one execution over.

use switchboard_core::{ExecutionId, Timestamp};

use super::PostgresStore;
use crate::rows::{ExecutionRow, to_executions};
use crate::rows::{LeaseRow, lease_of};
use crate::{DoorState, Lease, StoreError, TakeOver};

impl PostgresStore {
    pub(super) async fn acquire_lease_impl(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Lease, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO leases (name, holder, token, acquired_at, expires_at) VALUES ($1, $2, 1, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET \
               token = CASE WHEN leases.holder = excluded.holder THEN leases.token ELSE leases.token + 1 END, \
               acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END, \
               holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $3",
        )
        .bind(name)
        .bind(holder)
        .bind(now.micros())
        .bind(until.micros())
        .execute(&mut *tx)
        .await?;
        let row: LeaseRow = sqlx::query_as(
            "SELECT name, holder, token, acquired_at, expires_at FROM leases WHERE name = $1",
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
        sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn lease_impl(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let row: Option<LeaseRow> = sqlx::query_as(
            "SELECT name, holder, token, acquired_at, expires_at FROM leases WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(lease_of))
    }

    pub(super) async fn renew_execution_leases_impl(
        &self,
        node: &str,
        until: Timestamp,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET lease_expires_at = $1 WHERE status = 'running' AND node = $2",
        )
        .bind(until.micros())
        .bind(node)
        .execute(&self.pool)
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
            " FROM executions WHERE status = 'running' AND lease_expires_at < $1 ORDER BY id LIMIT $2"
        ))
        .bind(now.micros())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        to_executions(rows)
    }

    pub(super) async fn take_over_expired_impl(
        &self,
        id: ExecutionId,
        now: Timestamp,
        outcome: &TakeOver,
    ) -> Result<bool, StoreError> {
        let done = match outcome {
            TakeOver::Lost { reason } => {
                sqlx::query(
                    "UPDATE executions SET status = 'lost', error = $1, finished_at = $2 \
                     WHERE id = $3 AND status = 'running' AND lease_expires_at < $2",
                )
                .bind(reason)
                .bind(now.micros())
                .bind(id.0)
                .execute(&self.pool)
                .await?
            }
            TakeOver::Requeue => {
                sqlx::query(
                    "UPDATE executions SET status = 'queued', node = NULL, started_at = NULL, lease_expires_at = NULL \
                     WHERE id = $1 AND status = 'running' AND lease_expires_at < $2",
                )
                .bind(id.0)
                .bind(now.micros())
                .execute(&self.pool)
                .await?
            }
            TakeOver::Adopt { node, until } => {
                sqlx::query(
                    "UPDATE executions SET node = $1, lease_expires_at = $2 \
                     WHERE id = $3 AND status = 'running' AND lease_expires_at < $4",
                )
                .bind(node)
                .bind(until.micros())
                .bind(id.0)
                .bind(now.micros())
                .execute(&self.pool)
                .await?
            }
        };
        Ok(done.rows_affected() == 1)
    }
}

/// A row of `door_states`.
type DoorStateRow = (
    String,
    String,
    Option<bool>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

impl PostgresStore {
    pub(super) async fn leases_with_prefix_impl(
        &self,
        prefix: &str,
    ) -> Result<Vec<Lease>, StoreError> {
        let rows: Vec<LeaseRow> = sqlx::query_as(
            "SELECT name, holder, token, acquired_at, expires_at FROM leases WHERE substr(name, 1, $1) = $2 ORDER BY name",
        )
        .bind(i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX))
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(lease_of).collect())
    }

    pub(super) async fn note_door_event_impl(
        &self,
        door: &str,
        node: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO door_states (door, node, last_event_at) VALUES ($1, $2, $3) ON CONFLICT (door, node) DO UPDATE SET last_event_at = excluded.last_event_at WHERE door_states.last_event_at IS NULL OR door_states.last_event_at < excluded.last_event_at",
        )
        .bind(door)
        .bind(node)
        .bind(at.micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn note_door_connection_impl(
        &self,
        door: &str,
        node: &str,
        connected: bool,
        at: Timestamp,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO door_states (door, node, connected, changed_at, detail) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (door, node) DO UPDATE SET connected = excluded.connected, changed_at = excluded.changed_at, detail = excluded.detail",
        )
        .bind(door)
        .bind(node)
        .bind(connected)
        .bind(at.micros())
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn door_states_impl(&self) -> Result<Vec<DoorState>, StoreError> {
        let rows: Vec<DoorStateRow> = sqlx::query_as(
            "SELECT door, node, connected, changed_at, detail, last_event_at FROM door_states ORDER BY door, node",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| DoorState {
                door: r.0,
                node: r.1,
                connected: r.2,
                changed_at: r.3.map(Timestamp),
                detail: r.4,
                last_event_at: r.5.map(Timestamp),
            })
            .collect())
    }
}
