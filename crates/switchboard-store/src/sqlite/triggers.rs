//! Triggers in SQLite: the claimed ticks of schedules (migration 0015) and
//! the delivery ids of inbound webhooks (migration 0016). Both rely on a
//! primary key and `INSERT OR IGNORE`: whoever inserts first owns the tick
//! or the delivery, whichever process it is.

use std::time::Duration;

use switchboard_core::{ExecutionId, Timestamp};

use super::SqliteStore;
use crate::rows::{TickRow, tick_of};
use crate::{StoreError, StoredTick};

/// How long a schedule's older ticks are kept behind its newest.
const TICKS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

impl SqliteStore {
    pub(super) async fn claim_schedule_tick_impl(
        &self,
        schedule: &str,
        tick: Timestamp,
        node: &str,
        outcome: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "INSERT OR IGNORE INTO schedule_ticks (schedule, tick, node, claimed_at, outcome) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(schedule)
        .bind(tick.micros())
        .bind(node)
        .bind(at.micros())
        .bind(outcome)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM schedule_ticks WHERE schedule = ? AND tick < ?")
            .bind(schedule)
            .bind(tick.before(TICKS_KEPT).micros())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn finish_schedule_tick_impl(
        &self,
        schedule: &str,
        tick: Timestamp,
        outcome: &str,
        execution: Option<ExecutionId>,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE schedule_ticks SET outcome = ?, execution_id = ?, reason = ? \
             WHERE schedule = ? AND tick = ?",
        )
        .bind(outcome)
        .bind(execution.map(|e| e.0))
        .bind(reason)
        .bind(schedule)
        .bind(tick.micros())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(super) async fn last_schedule_ticks_impl(&self) -> Result<Vec<StoredTick>, StoreError> {
        let rows: Vec<TickRow> = sqlx::query_as(
            "SELECT schedule, tick, node, claimed_at, outcome, execution_id, reason \
             FROM schedule_ticks AS t \
             WHERE tick = (SELECT MAX(tick) FROM schedule_ticks WHERE schedule = t.schedule) \
             ORDER BY schedule",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(tick_of).collect())
    }

    pub(super) async fn schedule_ticks_impl(
        &self,
        schedule: &str,
        limit: u32,
    ) -> Result<Vec<StoredTick>, StoreError> {
        let rows: Vec<TickRow> = sqlx::query_as(
            "SELECT schedule, tick, node, claimed_at, outcome, execution_id, reason \
             FROM schedule_ticks WHERE schedule = ? ORDER BY tick DESC LIMIT ?",
        )
        .bind(schedule)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(tick_of).collect())
    }

    pub(super) async fn record_hook_delivery_impl(
        &self,
        hook: &str,
        delivery_id: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM hook_deliveries WHERE hook = ? AND received_at < ?")
            .bind(hook)
            .bind(forget_before.micros())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "INSERT OR IGNORE INTO hook_deliveries (hook, delivery_id, received_at) \
             VALUES (?, ?, ?)",
        )
        .bind(hook)
        .bind(delivery_id)
        .bind(at.micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn forget_hook_delivery_impl(
        &self,
        hook: &str,
        delivery_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM hook_deliveries WHERE hook = ? AND delivery_id = ?")
            .bind(hook)
            .bind(delivery_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
