//! Alerts received: what other systems report (Alertmanager, Prometheus,
//! PagerDuty-style events, Switchboard's own JSON), normalized by
//! `core::alerts::payload` and kept in the store by fingerprint, so that a
//! restart loses none. A firing alert that names no end resolves after
//! `resolve_timeout` unless it is sent again, as in Alertmanager.
//!
//! Not here yet: routing, grouping, silences and notifications (the route
//! tree and its rules are in `core::alerts`; the dispatcher that applies
//! them is the next step), and acknowledgement.

use std::time::Duration;

use switchboard_core::Timestamp;
use switchboard_core::alerts::{Action, IncomingAlert};
use switchboard_store::StoredAlert;

use crate::{Engine, EngineError};

/// How alerts are kept.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// How long a firing alert without an end stays firing unless renewed.
    pub resolve_timeout: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            resolve_timeout: Duration::from_secs(5 * 60),
        }
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestSummary {
    /// Alerts now firing.
    pub firing: usize,
    /// Alerts now resolved.
    pub resolved: usize,
    /// Events taken but not acted on: acknowledgements (not supported
    /// yet) and resolutions of unknown PagerDuty keys.
    pub ignored: usize,
}

impl Engine {
    /// Keeps what `incoming` says of each alert.
    pub async fn ingest_alerts(
        &self,
        incoming: Vec<IncomingAlert>,
    ) -> Result<IngestSummary, EngineError> {
        let now = Timestamp::now();
        let resolve_timeout = self.shared.config.alerts.resolve_timeout;
        let mut summary = IngestSummary::default();
        let mut records = Vec::with_capacity(incoming.len());
        for alert in incoming {
            let firing = match alert.action {
                Action::Acknowledge => {
                    summary.ignored += 1;
                    continue;
                }
                // A PagerDuty resolve names the alert by its key only.
                Action::Resolve if alert.dedup_key.is_some() && alert.labels.len() <= 1 => {
                    let key = alert.dedup_key.as_deref().unwrap_or_default();
                    if self
                        .shared
                        .store
                        .resolve_alert_by_dedup_key(key, now)
                        .await?
                    {
                        summary.resolved += 1;
                    } else {
                        summary.ignored += 1;
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
        }
        self.shared.store.upsert_alerts(&records).await?;
        Ok(summary)
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
