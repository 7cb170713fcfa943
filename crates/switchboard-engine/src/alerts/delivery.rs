//! Delivering notifications: the worker that takes due deliveries from the
//! store, sends each through its receiver's integration, and records every
//! attempt — delivered, or retried with exponential backoff until
//! `[alerts] delivery_attempts` is reached, then failed. A restart resumes
//! pending deliveries where they stood. With several nodes, the leader
//! delivers (the one that recorded them): a delivery is sent at least once,
//! and twice only when a leader stopped between sending and recording.
//!
//! Not here: deciding what to send (the dispatcher), the wire formats (one
//! file per outlet).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use switchboard_core::Timestamp;
use switchboard_core::alerts::receivers::Integration;
use switchboard_store::{DeliveryAttempt, DeliveryStatus, StoredDelivery};

use super::{chat, email, paging, webhook};
use crate::Shared;

/// How many deliveries are sent at once.
const CONCURRENCY: usize = 8;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often the worker looks for due retries when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);

/// How long one HTTP request of an outlet may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client of the outlets: made once (loading the system's trust
/// roots is not free), following no redirect.
pub(super) fn http() -> Result<&'static reqwest::Client, String> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(CLIENT.get_or_init(|| client))
}

/// Sends an outlet's request; any answer but 2xx is an error quoting the
/// start of the answer's body.
pub(super) async fn send_http(request: reqwest::RequestBuilder, to: &str) -> Result<(), String> {
    let response = request
        .send()
        .await
        .map_err(crate::runner::describe_request_error)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    Err(format!("{to} answered {status}: {text}"))
}

/// The wait before attempt `attempts + 1`: `first`, doubling, at most
/// [`MAX_BACKOFF`].
pub(crate) fn backoff(first: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
    first.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Runs while this node leads, until the engine stops.
pub(crate) async fn run(shared: Arc<Shared>) {
    let engine = crate::Engine {
        shared: Arc::clone(&shared),
    };
    loop {
        if !engine.is_leader() && !engine.until_leading().await {
            return;
        }
        match shared.store.due_deliveries(Timestamp::now(), 64).await {
            Ok(due) if !due.is_empty() => {
                futures::stream::iter(due)
                    .for_each_concurrent(CONCURRENCY, |d| attempt(&shared, d))
                    .await;
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the deliveries owed"),
        }
        tokio::select! {
            () = shared.alerting.deliveries.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn attempt(shared: &Arc<Shared>, d: StoredDelivery) {
    let outcome = match integration(shared, &d) {
        Some(Integration::Webhook(config)) => webhook::send(&config, &d.notification).await,
        Some(Integration::Email(config)) => email::send(&config, &d.notification).await,
        Some(Integration::PagerDuty(config)) => {
            paging::send_pagerduty(&config, &d.notification).await
        }
        Some(Integration::Opsgenie(config)) => {
            paging::send_opsgenie(&config, &d.notification).await
        }
        Some(Integration::Chat(config)) => chat::send(shared, &d, &config).await,
        None => Err(format!(
            "receiver `{}` has no integration `{}` any more",
            d.receiver, d.integration
        )),
    };
    let settings = &shared.config.alerts;
    let attempts = d.attempts + 1;
    let now = Timestamp::now();
    let record = match &outcome {
        Ok(()) => DeliveryAttempt {
            status: DeliveryStatus::Delivered,
            attempts,
            next_attempt_at: now,
            error: None,
            delivered_at: Some(now),
        },
        Err(error) => {
            let give_up = attempts >= settings.delivery_attempts;
            if give_up {
                tracing::warn!(receiver = %d.receiver, integration = %d.integration, %error, attempts, "notification not delivered; giving up");
            } else {
                tracing::info!(receiver = %d.receiver, integration = %d.integration, %error, attempts, "notification not delivered; will retry");
            }
            DeliveryAttempt {
                status: if give_up {
                    DeliveryStatus::Failed
                } else {
                    DeliveryStatus::Pending
                },
                attempts,
                next_attempt_at: now.after(backoff(settings.delivery_backoff, attempts)),
                error: Some(error.clone()),
                delivered_at: None,
            }
        }
    };
    if let Err(e) = shared.store.record_delivery_attempt(d.id, &record).await {
        tracing::warn!(error = %e, id = d.id, "cannot record a delivery attempt");
    }
}

fn integration(shared: &Shared, d: &StoredDelivery) -> Option<Integration> {
    let config = shared.catalog().alerts.clone()?;
    config
        .receiver(&d.receiver)?
        .integrations
        .list()
        .into_iter()
        .find(|(name, _)| *name == d.integration)
        .map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let s = Duration::from_secs;
        let waits: Vec<_> = (1..=12).map(|n| backoff(s(1), n)).collect();
        assert_eq!(&waits[..5], &[s(1), s(2), s(4), s(8), s(16)]);
        assert_eq!(waits[9], s(300));
        assert_eq!(backoff(s(1), u32::MAX), s(300));
    }
}
