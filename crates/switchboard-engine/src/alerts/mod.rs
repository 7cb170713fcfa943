//! Alerts: what other systems report (Alertmanager, Prometheus,
//! PagerDuty-style events, Switchboard's own JSON), normalized by
//! `core::alerts::payload` and kept in the store by fingerprint, so that a
//! restart loses none. A firing alert that names no end resolves after
//! `resolve_timeout` unless it is sent again, as in Alertmanager. Each
//! alert kept joins its groups in the `dispatcher`, which notifies the
//! receivers through `delivery`; `silences` hold alerts back.
//!
//! `acks` records who is on an alert or a group.
//!
//! Outlets: `webhook`, `email`, `paging` (PagerDuty, Opsgenie), and `chat`,
//! which posts groups to chat rooms and tells their threads what happens.
//!
//! `escalate` pages a route's escalation chain until someone acknowledges.
//!
//! `automate` runs the automation rules alerts match; `raised` takes the
//! alerts an action's result raises.

pub mod acks;
pub(crate) mod automate;
pub(crate) mod chat;
pub(crate) mod delivery;
pub(crate) mod dispatcher;
pub(crate) mod email;
pub(crate) mod escalate;
pub(crate) mod paging;
pub(crate) mod raised;
pub mod silences;
pub mod webhook;

use std::time::Duration;

use switchboard_core::Timestamp;
use switchboard_core::alerts::{Action, Fingerprint, IncomingAlert, LabelSet};
use switchboard_store::{StoredAlert, StoredDelivery};

pub use acks::AckView;
pub use dispatcher::GroupView;
pub use silences::{NewSilence, SilenceView};

use crate::{Engine, EngineError};

/// How alerts are kept and notifications delivered.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// How long a firing alert without an end stays firing unless renewed.
    pub resolve_timeout: Duration,
    /// How many times a notification is tried before it is given up.
    pub delivery_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each
    /// (at most 5 minutes).
    pub delivery_backoff: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            resolve_timeout: Duration::from_secs(5 * 60),
            delivery_attempts: 10,
            delivery_backoff: Duration::from_secs(1),
        }
    }
}

/// One alert with the groups it is in and their notifications.
#[derive(Debug, Clone)]
pub struct AlertDetail {
    pub alert: StoredAlert,
    /// The automation runs it asked for, newest first.
    pub automations: Vec<switchboard_store::StoredAutomation>,
    /// Who acknowledged it, if anyone.
    pub ack: Option<switchboard_store::StoredAck>,
    pub groups: Vec<GroupView>,
    /// Deliveries of notifications of those groups, newest first.
    pub deliveries: Vec<StoredDelivery>,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestSummary {
    /// Alerts now firing.
    pub firing: usize,
    /// Alerts now resolved.
    pub resolved: usize,
    /// Alerts acknowledged (PagerDuty `acknowledge` events).
    pub acknowledged: usize,
    /// Events taken but not acted on: acknowledgements and resolutions of
    /// unknown PagerDuty keys.
    pub ignored: usize,
}

impl Engine {
    /// Keeps what `incoming` says of each alert.
    pub async fn ingest_alerts(
        &self,
        incoming: Vec<IncomingAlert>,
    ) -> Result<IngestSummary, EngineError> {
        let _gate = self.shared.alerting.regroup_gate.read().await;
        let now = Timestamp::now();
        let resolve_timeout = self.shared.config.alerts.resolve_timeout;
        let mut summary = IngestSummary::default();
        let mut records = Vec::with_capacity(incoming.len());
        let mut label_sets = Vec::with_capacity(incoming.len());
        for alert in incoming {
            let firing = match alert.action {
                Action::Acknowledge => {
                    let key = alert.dedup_key.as_deref().unwrap_or_default();
                    if self.acknowledge_by_dedup_key(key).await? {
                        summary.acknowledged += 1;
                    } else {
                        summary.ignored += 1;
                    }
                    continue;
                }
                // A PagerDuty resolve names the alert by its key only.
                Action::Resolve if alert.dedup_key.is_some() && alert.labels.len() <= 1 => {
                    let key = alert.dedup_key.as_deref().unwrap_or_default();
                    match self
                        .shared
                        .store
                        .resolve_alert_by_dedup_key(key, now)
                        .await?
                    {
                        Some(kept) => {
                            summary.resolved += 1;
                            self.group_alerts(&[kept], None, now).await?;
                        }
                        None => summary.ignored += 1,
                    }
                    continue;
                }
                Action::Resolve => false,
                Action::Trigger => alert.ends_at.is_none_or(|end| end > now),
            };
            if firing {
                summary.firing += 1;
            } else {
                summary.resolved += 1;
            }
            records.push(StoredAlert {
                fingerprint: alert.fingerprint().to_string(),
                labels: alert.labels.as_map().clone(),
                annotations: alert.annotations,
                firing,
                starts_at: alert.starts_at.unwrap_or(now),
                ends_at: match (firing, alert.ends_at) {
                    (_, Some(end)) => Some(end),
                    (true, None) => Some(now.after(resolve_timeout)),
                    (false, None) => Some(now),
                },
                updated_at: now,
                source: alert.source.as_str().to_owned(),
                generator_url: alert.generator_url,
                dedup_key: alert.dedup_key,
            });
            label_sets.push(alert.labels);
        }
        let kept = self.shared.store.upsert_alerts(records).await?;
        self.group_alerts(&kept, Some(label_sets), now).await?;
        Ok(summary)
    }

    /// Puts alerts just kept into their groups; the leader stores the
    /// groups created (a follower's are created again by the leader when it
    /// catches up, with the leader's timers).
    async fn group_alerts(
        &self,
        kept: &[StoredAlert],
        labels: Option<Vec<LabelSet>>,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        self.schedule_automations(kept, now).await?;
        let created = self.shared.alerting.insert(kept, labels, now);
        if !created.is_empty() && self.is_leader() {
            self.shared.store.save_alert_groups(&created).await?;
            self.shared.alerting.wake.notify_one();
        }
        Ok(())
    }

    /// One alert by fingerprint, with its groups and their deliveries.
    pub async fn alert(&self, fingerprint: &str) -> Result<Option<AlertDetail>, EngineError> {
        let Ok(fp) = fingerprint.parse::<Fingerprint>() else {
            return Ok(None);
        };
        self.shared
            .store
            .resolve_due_alerts(Timestamp::now())
            .await?;
        let Some(alert) = self.shared.store.alert(&fp.to_string()).await? else {
            return Ok(None);
        };
        let groups = self.shared.alerting.groups_of(fp);
        let keys: Vec<String> = groups.iter().map(|g| g.group_key.clone()).collect();
        let deliveries = if keys.is_empty() {
            Vec::new()
        } else {
            self.shared.store.list_deliveries(&keys, 100).await?
        };
        Ok(Some(AlertDetail {
            automations: self.shared.store.automations_of(&alert.fingerprint).await?,
            ack: self.shared.alerting.alert_ack(fp),
            alert,
            groups,
            deliveries,
        }))
    }

    /// The aggregation groups.
    pub fn alert_groups(&self) -> Vec<GroupView> {
        self.shared.alerting.groups()
    }

    /// Recent deliveries of notifications, newest first.
    pub async fn deliveries(&self, limit: u32) -> Result<Vec<StoredDelivery>, EngineError> {
        Ok(self.shared.store.list_deliveries(&[], limit).await?)
    }

    /// The alerts kept, firing first; those whose end has come are
    /// resolved first.
    pub async fn alerts(
        &self,
        firing_only: bool,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, EngineError> {
        self.shared
            .store
            .resolve_due_alerts(Timestamp::now())
            .await?;
        Ok(self.shared.store.list_alerts(firing_only, limit).await?)
    }
}
