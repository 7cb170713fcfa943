//! Alerts in SQLite: the alerts received, the aggregation groups, the
//! notification log and the deliveries (migrations 0008 and 0009).
//! Fingerprint sets are JSON arrays of hex strings; label sets JSON
//! objects.

use std::collections::BTreeMap;

use sqlx::{QueryBuilder, Sqlite};
use switchboard_core::Timestamp;

use super::SqliteStore;
use crate::rows::{AlertRow, DeliveryRow, alert, delivery, from_json, to_json};
use crate::{
    DeliveryAttempt, FlushRecord, NewAutomation, StoreError, StoredAck, StoredAlert,
    StoredAutomation, StoredChatCard, StoredDelivery, StoredEscalation, StoredGroup,
    StoredLogEntry, StoredSilence,
};

impl SqliteStore {
    pub(super) async fn upsert_alerts_impl(
        &self,
        mut alerts: Vec<StoredAlert>,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        // Many rows per statement (SQLite takes up to 32766 parameters, ten
        // a row). The statements are built before the writer is taken: it
        // waits for no serializing.
        const ROWS_PER_STATEMENT: usize = 500;
        let mut statements = Vec::with_capacity(alerts.len().div_ceil(ROWS_PER_STATEMENT));
        for chunk in alerts.chunks(ROWS_PER_STATEMENT) {
            let mut rows = Vec::with_capacity(chunk.len());
            for a in chunk {
                rows.push((
                    a,
                    to_json("alert labels", &a.labels)?,
                    to_json("alert annotations", &a.annotations)?,
                ));
            }
            let mut q = QueryBuilder::<Sqlite>::new(concat!(
                "INSERT INTO alerts (",
                alert_columns!(),
                ") "
            ));
            q.push_values(rows, |mut b, (a, labels, annotations)| {
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
            // fires again after it resolved starts anew.
            q.push(
                " ON CONFLICT (fingerprint) DO UPDATE SET labels = excluded.labels, \
                 annotations = excluded.annotations, \
                 starts_at = CASE WHEN alerts.status = 'firing' \
                   THEN MIN(alerts.starts_at, excluded.starts_at) ELSE excluded.starts_at END, \
                 status = excluded.status, ends_at = excluded.ends_at, updated_at = excluded.updated_at, \
                 source = excluded.source, generator_url = excluded.generator_url, \
                 dedup_key = COALESCE(excluded.dedup_key, alerts.dedup_key)",
            );
            statements.push(q);
        }
        // What the store kept that differs from what was sent — the earlier
        // start of an alert that goes on firing, a dedup key kept from
        // before — comes back as one JSON row rather than a row per alert:
        // each row would be a hand-off between the writer's thread and this
        // task.
        let sent: Vec<(&str, i64)> = alerts
            .iter()
            .map(|a| (a.fingerprint.as_str(), a.starts_at.micros()))
            .collect();
        let sent = to_json("alert starts", &sent)?;
        let mut tx = self.writer.begin().await?;
        for q in &mut statements {
            q.build().execute(&mut *tx).await?;
        }
        let (changed,): (String,) = sqlx::query_as(
            "SELECT COALESCE(json_group_array(json_array(a.fingerprint, a.starts_at, a.dedup_key)), '[]') \
             FROM json_each(?) AS j JOIN alerts AS a ON a.fingerprint = json_extract(j.value, '$[0]') \
             WHERE a.starts_at != json_extract(j.value, '$[1]') OR a.dedup_key IS NOT NULL",
        )
        .bind(sent)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let changed: Vec<(String, i64, Option<String>)> = from_json("alerts kept", &changed)?;
        if !changed.is_empty() {
            let kept_now: std::collections::HashMap<String, (i64, Option<String>)> = changed
                .into_iter()
                .map(|(fingerprint, starts_at, dedup_key)| (fingerprint, (starts_at, dedup_key)))
                .collect();
            for a in &mut alerts {
                if let Some((starts_at, dedup_key)) = kept_now.get(&a.fingerprint) {
                    a.starts_at = Timestamp(*starts_at);
                    a.dedup_key.clone_from(dedup_key);
                }
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
            " FROM alerts WHERE (? = 0 OR status = 'firing') \
             ORDER BY status = 'firing' DESC, updated_at DESC LIMIT ?"
        ))
        .bind(firing_only)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(alert).collect()
    }

    pub(super) async fn resolve_due_alerts_impl(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE alerts SET status = 'resolved', updated_at = ? \
             WHERE status = 'firing' AND ends_at IS NOT NULL AND ends_at <= ?",
        )
        .bind(now.micros())
        .bind(now.micros())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn resolve_alert_by_dedup_key_impl(
        &self,
        dedup_key: &str,
        now: Timestamp,
    ) -> Result<Option<StoredAlert>, StoreError> {
        let row: Option<AlertRow> = sqlx::query_as(concat!(
            "UPDATE alerts SET status = 'resolved', ends_at = ?, updated_at = ? \
             WHERE dedup_key = ? AND status = 'firing' RETURNING ",
            alert_columns!(),
            ""
        ))
        .bind(now.micros())
        .bind(now.micros())
        .bind(dedup_key)
        .fetch_optional(&self.writer)
        .await?;
        row.map(alert).transpose()
    }

    pub(super) async fn alerts_to_regroup_impl(&self) -> Result<Vec<StoredAlert>, StoreError> {
        let rows: Vec<AlertRow> = sqlx::query_as(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE status = 'firing' OR fingerprint IN \
             (SELECT j.value FROM alert_notification_log AS l, json_each(l.firing) AS j)"
        ))
        .fetch_all(&self.reader)
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
            " FROM alerts WHERE updated_at >= ? ORDER BY updated_at, fingerprint"
        ))
        .bind(since.micros())
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(alert).collect()
    }

    pub(super) async fn save_alert_groups_impl(
        &self,
        groups: &[StoredGroup],
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for g in groups {
            save_group(&mut tx, g).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn alert_groups_impl(&self) -> Result<Vec<StoredGroup>, StoreError> {
        let rows: Vec<(String, String, String, String, i64, i64, bool)> = sqlx::query_as(
            "SELECT group_key, receiver, labels, route, created_at, next_flush_at, flushed \
             FROM alert_groups",
        )
        .fetch_all(&self.reader)
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
        let mut tx = self.writer.begin().await?;
        for (key, receiver) in ids {
            sqlx::query("DELETE FROM alert_groups WHERE group_key = ? AND receiver = ?")
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
             FROM alert_notification_log",
        )
        .fetch_all(&self.reader)
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
        let mut tx = self.writer.begin().await?;
        for f in flushes {
            match &f.group {
                Some(g) => save_group(&mut tx, g).await?,
                None => {
                    for table in ["alert_groups", "alert_escalations"] {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DELETE FROM {table} WHERE group_key = ? AND receiver = ?"
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
                     VALUES (?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (group_key, receiver, integration) DO UPDATE SET \
                     firing = excluded.firing, resolved = excluded.resolved, sent_at = excluded.sent_at",
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
            for subject in &f.cleared_acks {
                sqlx::query("DELETE FROM alert_acks WHERE subject = ?")
                    .bind(subject)
                    .execute(&mut *tx)
                    .await?;
            }
            for d in &f.deliveries {
                sqlx::query(
                    "INSERT INTO alert_deliveries (group_key, receiver, integration, status, \
                     notification, attempts, next_attempt_at, created_at) \
                     VALUES (?, ?, ?, 'pending', ?, 0, ?, ?)",
                )
                .bind(&d.group_key)
                .bind(&d.receiver)
                .bind(&d.integration)
                .bind(to_json("delivery", &d.notification)?)
                .bind(d.created_at.micros())
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
            " FROM alert_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"
        ))
        .bind(now.micros())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(delivery).collect()
    }

    pub(super) async fn record_delivery_attempt_impl(
        &self,
        id: i64,
        attempt: &DeliveryAttempt,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, \
             last_error = COALESCE(?, last_error), delivered_at = ? WHERE id = ?",
        )
        .bind(attempt.status.as_str())
        .bind(i64::from(attempt.attempts))
        .bind(attempt.next_attempt_at.micros())
        .bind(attempt.error.as_deref())
        .bind(attempt.delivered_at.map(Timestamp::micros))
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(super) async fn list_deliveries_impl(
        &self,
        group_keys: &[String],
        limit: u32,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM alert_deliveries"
        ));
        if !group_keys.is_empty() {
            q.push(" WHERE group_key IN (");
            let mut list = q.separated(", ");
            for k in group_keys {
                list.push_bind(k);
            }
            q.push(")");
        }
        q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
        let rows: Vec<DeliveryRow> = q.build_query_as().fetch_all(&self.reader).await?;
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

impl SqliteStore {
    pub(super) async fn schedule_automations_impl(
        &self,
        runs: &[NewAutomation],
    ) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await?;
        let mut scheduled = 0;
        for r in runs {
            let done = sqlx::query(
                "INSERT INTO alert_automations (rule, fingerprint, starts_at, state, due_at, \
                 created_at, updated_at) SELECT ?, ?, ?, 'pending', ?, ?, ? \
                 WHERE NOT EXISTS (SELECT 1 FROM alert_automations WHERE rule = ? \
                   AND fingerprint = ? AND state IN ('pending', 'ran') AND created_at > ?) \
                 ON CONFLICT (rule, fingerprint, starts_at) DO NOTHING",
            )
            .bind(&r.rule)
            .bind(&r.fingerprint)
            .bind(r.starts_at.micros())
            .bind(r.due_at.micros())
            .bind(r.created_at.micros())
            .bind(r.created_at.micros())
            .bind(&r.rule)
            .bind(&r.fingerprint)
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
            " FROM alert_automations WHERE state = 'pending' AND due_at <= ? \
             ORDER BY due_at, id LIMIT ?"
        ))
        .bind(now.micros())
        .bind(limit)
        .fetch_all(&self.reader)
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
            "UPDATE alert_automations SET state = ?, execution_id = ?, reason = ?, updated_at = ? \
             WHERE id = ? AND state = 'pending'",
        )
        .bind(state)
        .bind(execution_id)
        .bind(reason)
        .bind(now.micros())
        .bind(id)
        .execute(&self.writer)
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
            " FROM alert_automations WHERE fingerprint = ? ORDER BY id DESC LIMIT 100"
        ))
        .bind(fingerprint)
        .fetch_all(&self.reader)
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
            " FROM alerts WHERE fingerprint = ?"
        ))
        .bind(fingerprint)
        .fetch_optional(&self.reader)
        .await?;
        row.map(alert).transpose()
    }

    pub(super) async fn save_escalations_impl(
        &self,
        states: &[StoredEscalation],
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for e in states {
            sqlx::query(
                "INSERT INTO alert_escalations (group_key, receiver, chain, state, step, round, \
                 due_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
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
             FROM alert_escalations",
        )
        .fetch_all(&self.reader)
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
            "INSERT INTO alert_acks (subject, acked_by, acked_at, comment) VALUES (?, ?, ?, ?) \
             ON CONFLICT (subject) DO UPDATE SET acked_by = excluded.acked_by, \
             acked_at = excluded.acked_at, comment = excluded.comment",
        )
        .bind(&ack.subject)
        .bind(&ack.acked_by)
        .bind(ack.acked_at.micros())
        .bind(&ack.comment)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(super) async fn acks_impl(&self) -> Result<Vec<StoredAck>, StoreError> {
        let rows: Vec<(String, String, i64, String)> =
            sqlx::query_as("SELECT subject, acked_by, acked_at, comment FROM alert_acks")
                .fetch_all(&self.reader)
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
        let mut tx = self.writer.begin().await?;
        for subject in subjects {
            sqlx::query("DELETE FROM alert_acks WHERE subject = ?")
                .bind(subject)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn insert_silence_impl(&self, s: &StoredSilence) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.matchers)
        .bind(s.starts_at.micros())
        .bind(s.ends_at.micros())
        .bind(&s.created_by)
        .bind(&s.comment)
        .bind(s.created_at.micros())
        .bind(s.updated_at.micros())
        .execute(&self.writer)
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
             FROM silences WHERE ends_at > ? ORDER BY created_at DESC LIMIT ?",
        )
        .bind(ends_after.map_or(i64::MIN, Timestamp::micros))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(silence).collect())
    }

    pub(super) async fn expire_silence_impl(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<StoredSilence>, StoreError> {
        let row: Option<SilenceRow> = sqlx::query_as(
            "UPDATE silences SET ends_at = MIN(ends_at, ?), \
             starts_at = MIN(starts_at, ?), updated_at = ? WHERE id = ? \
             RETURNING id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at",
        )
        .bind(now.micros())
        .bind(now.micros())
        .bind(now.micros())
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.map(silence))
    }
}

async fn save_group(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    g: &StoredGroup,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alert_groups (group_key, receiver, labels, route, created_at, \
         next_flush_at, flushed) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (group_key, receiver) DO UPDATE SET labels = excluded.labels, \
         route = excluded.route, next_flush_at = excluded.next_flush_at, flushed = excluded.flushed",
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

impl SqliteStore {
    pub(super) async fn save_chat_card_impl(
        &self,
        card: &StoredChatCard,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO alert_chat_cards (group_key, receiver, integration, platform, room, \
             message_id, thread, notification, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (group_key, receiver, integration) DO UPDATE SET \
             platform = excluded.platform, room = excluded.room, message_id = excluded.message_id, \
             thread = excluded.thread, notification = excluded.notification, \
             updated_at = excluded.updated_at",
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
        .execute(&self.writer)
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
             WHERE group_key = ? AND receiver = ? ORDER BY integration",
        )
        .bind(group_key)
        .bind(receiver)
        .fetch_all(&self.reader)
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
            "DELETE FROM alert_chat_cards WHERE group_key = ? AND receiver = ? AND integration = ?",
        )
        .bind(group_key)
        .bind(receiver)
        .bind(integration)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
