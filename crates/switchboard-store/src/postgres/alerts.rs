//! Alerts in PostgreSQL: the alerts received, the aggregation groups, the
//! notification log, the deliveries, silences, acknowledgements,
//! escalations, automation runs and chat cards (migration 0004), with the
//! SQLite backend's behaviour. Fingerprint sets are JSON arrays of hex
//! strings and label sets JSON objects, kept as text.
//!
//! Lists that SQLite returns in its storage order (groups, the log,
//! acknowledgements, escalations) come back here in key order: PostgreSQL
//! has no storage order worth relying on. Which node flushes groups and
//! sends deliveries is not decided here: those are the leader's duties.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{Postgres, QueryBuilder};
use switchboard_core::Timestamp;

use super::PostgresStore;
use crate::rows::{AlertRow, DeliveryRow, alert, delivery, from_json, to_json};
use crate::{
    DeliveryAttempt, FlushRecord, NewAutomation, StoreError, StoredAck, StoredAlert,
    StoredAutomation, StoredChatCard, StoredDelivery, StoredEscalation, StoredGroup,
    StoredLogEntry, StoredSilence,
};

/// Splits alerts into the statements that upsert them: at most
/// `per_statement` each, and a new statement where a fingerprint repeats
/// (PostgreSQL's upsert touches a row once per statement; the second
/// sending of an alert in a batch must see the first, as in SQLite). Each
/// statement's rows are in fingerprint order, so that concurrent batches
/// lock the rows they share in the same order and never deadlock.
fn upsert_statements(alerts: &[StoredAlert], per_statement: usize) -> Vec<Vec<&StoredAlert>> {
    let mut statements: Vec<Vec<&StoredAlert>> = Vec::new();
    let mut current: Vec<&StoredAlert> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for a in alerts {
        if current.len() == per_statement || seen.contains(a.fingerprint.as_str()) {
            statements.push(std::mem::take(&mut current));
            seen.clear();
        }
        seen.insert(&a.fingerprint);
        current.push(a);
    }
    if !current.is_empty() {
        statements.push(current);
    }
    for s in &mut statements {
        s.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    }
    statements
}

impl PostgresStore {
    pub(super) async fn upsert_alerts_impl(
        &self,
        mut alerts: Vec<StoredAlert>,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        // Ten parameters a row; PostgreSQL takes up to 65535 a statement.
        const ROWS_PER_STATEMENT: usize = 1000;
        let mut statements = Vec::new();
        for rows in upsert_statements(&alerts, ROWS_PER_STATEMENT) {
            let mut bound = Vec::with_capacity(rows.len());
            for a in rows {
                bound.push((
                    a,
                    to_json("alert labels", &a.labels)?,
                    to_json("alert annotations", &a.annotations)?,
                ));
            }
            let mut q = QueryBuilder::<Postgres>::new(concat!(
                "INSERT INTO alerts (",
                alert_columns!(),
                ") "
            ));
            q.push_values(bound, |mut b, (a, labels, annotations)| {
                b.push_bind(a.fingerprint.clone())
                    .push_bind(labels)
                    .push_bind(annotations)
                    .push_bind(if a.firing { "firing" } else { "resolved" })
                    .push_bind(a.starts_at.micros())
                    .push_bind(a.ends_at.map(Timestamp::micros))
                    .push_bind(a.updated_at.micros())
                    .push_bind(a.source.clone())
                    .push_bind(a.generator_url.clone())
                    .push_bind(a.dedup_key.clone());
            });
            // A firing alert that goes on firing keeps its start; one that
            // fires again after it resolved starts anew. What is kept comes
            // back: the earlier start, a dedup key kept from before.
            q.push(
                " ON CONFLICT (fingerprint) DO UPDATE SET labels = excluded.labels, \
                 annotations = excluded.annotations, \
                 starts_at = CASE WHEN alerts.status = 'firing' \
                   THEN LEAST(alerts.starts_at, excluded.starts_at) ELSE excluded.starts_at END, \
                 status = excluded.status, ends_at = excluded.ends_at, \
                 updated_at = excluded.updated_at, source = excluded.source, \
                 generator_url = excluded.generator_url, \
                 dedup_key = COALESCE(excluded.dedup_key, alerts.dedup_key) \
                 RETURNING fingerprint, starts_at, dedup_key",
            );
            statements.push(q);
        }
        let mut kept: HashMap<String, (i64, Option<String>)> = HashMap::new();
        let mut tx = self.pool.begin().await?;
        for q in &mut statements {
            let rows: Vec<(String, i64, Option<String>)> =
                q.build_query_as().fetch_all(&mut *tx).await?;
            // A later statement's row is the later state.
            kept.extend(
                rows.into_iter().map(|(fingerprint, starts_at, dedup_key)| {
                    (fingerprint, (starts_at, dedup_key))
                }),
            );
        }
        tx.commit().await?;
        for a in &mut alerts {
            if let Some((starts_at, dedup_key)) = kept.get(&a.fingerprint) {
                a.starts_at = Timestamp(*starts_at);
                a.dedup_key.clone_from(dedup_key);
            }
        }
        Ok(alerts)
    }

    pub(super) async fn list_alerts_impl(
        &self,
        firing_only: bool,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let rows: Vec<AlertRow> = sqlx::query_as(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE (NOT $1 OR status = 'firing') \
             ORDER BY status = 'firing' DESC, updated_at DESC, fingerprint LIMIT $2"
        ))
        .bind(firing_only)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(alert).collect()
    }

    pub(super) async fn resolve_due_alerts_impl(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE alerts SET status = 'resolved', updated_at = $1 \
             WHERE status = 'firing' AND ends_at IS NOT NULL AND ends_at <= $1",
        )
        .bind(now.micros())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn resolve_alert_by_dedup_key_impl(
        &self,
        dedup_key: &str,
        now: Timestamp,
    ) -> Result<Option<StoredAlert>, StoreError> {
        let rows: Vec<AlertRow> = sqlx::query_as(concat!(
            "UPDATE alerts SET status = 'resolved', ends_at = $1, updated_at = $1 \
             WHERE dedup_key = $2 AND status = 'firing' RETURNING ",
            alert_columns!()
        ))
        .bind(now.micros())
        .bind(dedup_key)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().next().map(alert).transpose()
    }

    pub(super) async fn alerts_to_regroup_impl(&self) -> Result<Vec<StoredAlert>, StoreError> {
        let rows: Vec<AlertRow> = sqlx::query_as(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE status = 'firing' OR fingerprint IN \
             (SELECT jsonb_array_elements_text(l.firing::jsonb) FROM alert_notification_log AS l) \
             ORDER BY fingerprint"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(alert).collect()
    }

    pub(super) async fn alerts_changed_since_impl(
        &self,
        since: Timestamp,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let rows: Vec<AlertRow> = sqlx::query_as(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE updated_at >= $1 ORDER BY updated_at, fingerprint"
        ))
        .bind(since.micros())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(alert).collect()
    }

    pub(super) async fn save_alert_groups_impl(
        &self,
        groups: &[StoredGroup],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for g in groups {
            save_group(&mut tx, g).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn alert_groups_impl(&self) -> Result<Vec<StoredGroup>, StoreError> {
        let rows: Vec<(String, String, String, String, i64, i64, bool)> = sqlx::query_as(
            "SELECT group_key, receiver, labels, route, created_at, next_flush_at, flushed \
             FROM alert_groups ORDER BY group_key, receiver",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StoredGroup {
                    group_key: r.0,
                    receiver: r.1,
                    labels: from_json::<BTreeMap<String, String>>("group labels", &r.2)?,
                    route: r.3,
                    created_at: Timestamp(r.4),
                    next_flush_at: Timestamp(r.5),
                    flushed: r.6,
                })
            })
            .collect()
    }

    pub(super) async fn delete_alert_groups_impl(
        &self,
        ids: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (key, receiver) in ids {
            sqlx::query("DELETE FROM alert_groups WHERE group_key = $1 AND receiver = $2")
                .bind(key)
                .bind(receiver)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn notification_log_impl(&self) -> Result<Vec<StoredLogEntry>, StoreError> {
        let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
            "SELECT group_key, receiver, integration, firing, resolved, sent_at \
             FROM alert_notification_log ORDER BY group_key, receiver, integration",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StoredLogEntry {
                    group_key: r.0,
                    receiver: r.1,
                    integration: r.2,
                    firing: from_json("notification log", &r.3)?,
                    resolved: from_json("notification log", &r.4)?,
                    sent_at: Timestamp(r.5),
                })
            })
            .collect()
    }

    pub(super) async fn record_flushes_impl(
        &self,
        flushes: &[FlushRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for f in flushes {
            match &f.group {
                Some(g) => save_group(&mut tx, g).await?,
                None => {
                    for table in ["alert_groups", "alert_escalations"] {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DELETE FROM {table} WHERE group_key = $1 AND receiver = $2"
                        )))
                        .bind(&f.group_key)
                        .bind(&f.receiver)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            for e in &f.log {
                sqlx::query(
                    "INSERT INTO alert_notification_log \
                     (group_key, receiver, integration, firing, resolved, sent_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (group_key, receiver, integration) DO UPDATE SET \
                     firing = excluded.firing, resolved = excluded.resolved, \
                     sent_at = excluded.sent_at",
                )
                .bind(&e.group_key)
                .bind(&e.receiver)
                .bind(&e.integration)
                .bind(to_json("notification log", &e.firing)?)
                .bind(to_json("notification log", &e.resolved)?)
                .bind(e.sent_at.micros())
                .execute(&mut *tx)
                .await?;
            }
            if !f.cleared_acks.is_empty() {
                sqlx::query("DELETE FROM alert_acks WHERE subject = ANY($1)")
                    .bind(&f.cleared_acks)
                    .execute(&mut *tx)
                    .await?;
            }
            for d in &f.deliveries {
                sqlx::query(
                    "INSERT INTO alert_deliveries (group_key, receiver, integration, status, \
                     notification, attempts, next_attempt_at, created_at) \
                     VALUES ($1, $2, $3, 'pending', $4, 0, $5, $5)",
                )
                .bind(&d.group_key)
                .bind(&d.receiver)
                .bind(&d.integration)
                .bind(to_json("delivery", &d.notification)?)
                .bind(d.created_at.micros())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn due_deliveries_impl(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2"
        ))
        .bind(now.micros())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(delivery).collect()
    }

    pub(super) async fn record_delivery_attempt_impl(
        &self,
        id: i64,
        attempt: &DeliveryAttempt,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, \
             last_error = COALESCE($4, last_error), delivered_at = $5 WHERE id = $6",
        )
        .bind(attempt.status.as_str())
        .bind(i64::from(attempt.attempts))
        .bind(attempt.next_attempt_at.micros())
        .bind(attempt.error.as_deref())
        .bind(attempt.delivered_at.map(Timestamp::micros))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn list_deliveries_impl(
        &self,
        group_keys: &[String],
        limit: u32,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM alert_deliveries WHERE (cardinality($1::TEXT[]) = 0 OR group_key = ANY($1)) \
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(group_keys)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(delivery).collect()
    }
}

type SilenceRow = (String, String, i64, i64, String, String, i64, i64);

fn silence(r: SilenceRow) -> StoredSilence {
    StoredSilence {
        id: r.0,
        matchers: r.1,
        starts_at: Timestamp(r.2),
        ends_at: Timestamp(r.3),
        created_by: r.4,
        comment: r.5,
        created_at: Timestamp(r.6),
        updated_at: Timestamp(r.7),
    }
}

type AutomationRow = (
    i64,
    String,
    String,
    i64,
    String,
    i64,
    Option<i64>,
    Option<String>,
    i64,
    i64,
);

/// The columns of an [`AutomationRow`], as a literal for `concat!`.
macro_rules! automation_columns {
    () => {
        "id, rule, fingerprint, starts_at, state, due_at, execution_id, reason, created_at, \
         updated_at"
    };
}

fn automation(r: AutomationRow) -> StoredAutomation {
    StoredAutomation {
        id: r.0,
        rule: r.1,
        fingerprint: r.2,
        starts_at: Timestamp(r.3),
        state: r.4,
        due_at: Timestamp(r.5),
        execution_id: r.6,
        reason: r.7,
        created_at: Timestamp(r.8),
        updated_at: Timestamp(r.9),
    }
}

impl PostgresStore {
    pub(super) async fn schedule_automations_impl(
        &self,
        runs: &[NewAutomation],
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut scheduled = 0;
        for r in runs {
            let done = sqlx::query(
                "INSERT INTO alert_automations (rule, fingerprint, starts_at, state, due_at, \
                 created_at, updated_at) SELECT $1, $2, $3, 'pending', $4, $5, $5 \
                 WHERE NOT EXISTS (SELECT 1 FROM alert_automations WHERE rule = $1 \
                   AND fingerprint = $2 AND state IN ('pending', 'ran') AND created_at > $6) \
                 ON CONFLICT (rule, fingerprint, starts_at) DO NOTHING",
            )
            .bind(&r.rule)
            .bind(&r.fingerprint)
            .bind(r.starts_at.micros())
            .bind(r.due_at.micros())
            .bind(r.created_at.micros())
            .bind(r.not_since.micros())
            .execute(&mut *tx)
            .await?;
            scheduled += done.rows_affected();
        }
        tx.commit().await?;
        Ok(scheduled)
    }

    pub(super) async fn due_automations_impl(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredAutomation>, StoreError> {
        let rows: Vec<AutomationRow> = sqlx::query_as(concat!(
            "SELECT ",
            automation_columns!(),
            " FROM alert_automations WHERE state = 'pending' AND due_at <= $1 \
             ORDER BY due_at, id LIMIT $2"
        ))
        .bind(now.micros())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(automation).collect())
    }

    pub(super) async fn finish_automation_impl(
        &self,
        id: i64,
        state: &str,
        execution_id: Option<i64>,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_automations SET state = $1, execution_id = $2, reason = $3, \
             updated_at = $4 WHERE id = $5 AND state = 'pending'",
        )
        .bind(state)
        .bind(execution_id)
        .bind(reason)
        .bind(now.micros())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn automations_of_impl(
        &self,
        fingerprint: &str,
    ) -> Result<Vec<StoredAutomation>, StoreError> {
        let rows: Vec<AutomationRow> = sqlx::query_as(concat!(
            "SELECT ",
            automation_columns!(),
            " FROM alert_automations WHERE fingerprint = $1 ORDER BY id DESC LIMIT 100"
        ))
        .bind(fingerprint)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(automation).collect())
    }

    pub(super) async fn alert_impl(
        &self,
        fingerprint: &str,
    ) -> Result<Option<StoredAlert>, StoreError> {
        let row: Option<AlertRow> = sqlx::query_as(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE fingerprint = $1"
        ))
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?;
        row.map(alert).transpose()
    }

    pub(super) async fn save_escalations_impl(
        &self,
        states: &[StoredEscalation],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for e in states {
            sqlx::query(
                "INSERT INTO alert_escalations (group_key, receiver, chain, state, step, round, \
                 due_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (group_key, receiver) DO UPDATE SET chain = excluded.chain, \
                 state = excluded.state, step = excluded.step, round = excluded.round, \
                 due_at = excluded.due_at, updated_at = excluded.updated_at",
            )
            .bind(&e.group_key)
            .bind(&e.receiver)
            .bind(&e.chain)
            .bind(&e.state)
            .bind(i64::from(e.step))
            .bind(i64::from(e.round))
            .bind(e.due_at.micros())
            .bind(e.updated_at.micros())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn escalations_impl(&self) -> Result<Vec<StoredEscalation>, StoreError> {
        type Row = (String, String, String, String, i64, i64, i64, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT group_key, receiver, chain, state, step, round, due_at, updated_at \
             FROM alert_escalations ORDER BY group_key, receiver",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StoredEscalation {
                group_key: r.0,
                receiver: r.1,
                chain: r.2,
                state: r.3,
                step: u32::try_from(r.4).unwrap_or(0),
                round: u32::try_from(r.5).unwrap_or(0),
                due_at: Timestamp(r.6),
                updated_at: Timestamp(r.7),
            })
            .collect())
    }

    pub(super) async fn save_ack_impl(&self, ack: &StoredAck) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO alert_acks (subject, acked_by, acked_at, comment) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subject) DO UPDATE SET acked_by = excluded.acked_by, \
             acked_at = excluded.acked_at, comment = excluded.comment",
        )
        .bind(&ack.subject)
        .bind(&ack.acked_by)
        .bind(ack.acked_at.micros())
        .bind(&ack.comment)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn acks_impl(&self) -> Result<Vec<StoredAck>, StoreError> {
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT subject, acked_by, acked_at, comment FROM alert_acks ORDER BY subject",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StoredAck {
                subject: r.0,
                acked_by: r.1,
                acked_at: Timestamp(r.2),
                comment: r.3,
            })
            .collect())
    }

    pub(super) async fn delete_acks_impl(&self, subjects: &[String]) -> Result<(), StoreError> {
        if subjects.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM alert_acks WHERE subject = ANY($1)")
            .bind(subjects)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn insert_silence_impl(&self, s: &StoredSilence) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.id)
        .bind(&s.matchers)
        .bind(s.starts_at.micros())
        .bind(s.ends_at.micros())
        .bind(&s.created_by)
        .bind(&s.comment)
        .bind(s.created_at.micros())
        .bind(s.updated_at.micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn silences_impl(
        &self,
        ends_after: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<StoredSilence>, StoreError> {
        let rows: Vec<SilenceRow> = sqlx::query_as(
            "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at \
             FROM silences WHERE ends_at > $1 ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(ends_after.map_or(i64::MIN, Timestamp::micros))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(silence).collect())
    }

    pub(super) async fn expire_silence_impl(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<StoredSilence>, StoreError> {
        let row: Option<SilenceRow> = sqlx::query_as(
            "UPDATE silences SET ends_at = LEAST(ends_at, $1), \
             starts_at = LEAST(starts_at, $1), updated_at = $1 WHERE id = $2 \
             RETURNING id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at",
        )
        .bind(now.micros())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(silence))
    }
}

async fn save_group(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    g: &StoredGroup,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alert_groups (group_key, receiver, labels, route, created_at, \
         next_flush_at, flushed) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (group_key, receiver) DO UPDATE SET labels = excluded.labels, \
         route = excluded.route, next_flush_at = excluded.next_flush_at, \
         flushed = excluded.flushed",
    )
    .bind(&g.group_key)
    .bind(&g.receiver)
    .bind(to_json("group labels", &g.labels)?)
    .bind(&g.route)
    .bind(g.created_at.micros())
    .bind(g.next_flush_at.micros())
    .bind(g.flushed)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

type ChatCardRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
);

impl PostgresStore {
    pub(super) async fn save_chat_card_impl(
        &self,
        card: &StoredChatCard,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO alert_chat_cards (group_key, receiver, integration, platform, room, \
             message_id, thread, notification, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (group_key, receiver, integration) DO UPDATE SET \
             platform = excluded.platform, room = excluded.room, \
             message_id = excluded.message_id, thread = excluded.thread, \
             notification = excluded.notification, updated_at = excluded.updated_at",
        )
        .bind(&card.group_key)
        .bind(&card.receiver)
        .bind(&card.integration)
        .bind(&card.platform)
        .bind(&card.room)
        .bind(&card.message_id)
        .bind(&card.thread)
        .bind(card.notification.to_string())
        .bind(card.updated_at.micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn chat_cards_impl(
        &self,
        group_key: &str,
        receiver: &str,
    ) -> Result<Vec<StoredChatCard>, StoreError> {
        let rows: Vec<ChatCardRow> = sqlx::query_as(
            "SELECT group_key, receiver, integration, platform, room, message_id, thread, \
             notification, updated_at FROM alert_chat_cards \
             WHERE group_key = $1 AND receiver = $2 ORDER BY integration",
        )
        .bind(group_key)
        .bind(receiver)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StoredChatCard {
                    group_key: r.0,
                    receiver: r.1,
                    integration: r.2,
                    platform: r.3,
                    room: r.4,
                    message_id: r.5,
                    thread: r.6,
                    notification: serde_json::from_str(&r.7)
                        .map_err(|e| StoreError::Corrupt(format!("alert_chat_cards: {e}")))?,
                    updated_at: Timestamp(r.8),
                })
            })
            .collect()
    }

    pub(super) async fn delete_chat_card_impl(
        &self,
        group_key: &str,
        receiver: &str,
        integration: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM alert_chat_cards WHERE group_key = $1 AND receiver = $2 \
             AND integration = $3",
        )
        .bind(group_key)
        .bind(receiver)
        .bind(integration)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
