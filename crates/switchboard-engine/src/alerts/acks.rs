//! Acknowledgements: "I am on it", for one firing alert or a whole group,
//! from any door — authorized by the `silence` verb (it quiets what an alert
//! asks of people) and audited. An acknowledgement lasts until its alert
//! resolves or its group ends. PagerDuty `acknowledge` events acknowledge
//! the alert with their `dedup_key`.
//!
//! What an acknowledgement stops is `escalate`'s; the groups' chat
//! messages show it and their threads say it (`chat`).

use switchboard_core::audit::AuditEvent;
use switchboard_core::chat::Destination;
use switchboard_core::policy::Verb;
use switchboard_core::{Origin, Principal, Timestamp};
use switchboard_store::StoredAck;

use super::dispatcher::AckTarget;
use crate::{Engine, EngineError, Identity};

/// What was acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AckView {
    /// `alert` or `group`.
    pub kind: &'static str,
    /// The alert's fingerprint or the group's short id.
    pub id: String,
    pub acked_by: String,
    pub acked_at: Timestamp,
    pub comment: String,
}

impl Engine {
    /// Acknowledges the firing alert or group `target` names (a
    /// fingerprint, a group id, or a unique prefix of either).
    pub async fn acknowledge(
        &self,
        who: &Identity,
        origin: &Origin,
        target: &str,
        comment: &str,
    ) -> Result<AckView, EngineError> {
        self.acknowledge_in(who, origin, target, comment, None)
            .await
    }

    /// [`Engine::acknowledge`], said in a chat thread (which hears the
    /// answer itself: the notice goes to the groups' other threads only).
    pub(crate) async fn acknowledge_in(
        &self,
        who: &Identity,
        origin: &Origin,
        target: &str,
        comment: &str,
        said_in: Option<Destination>,
    ) -> Result<AckView, EngineError> {
        let found = self
            .shared
            .alerting
            .find_target(target)
            .map_err(EngineError::UnknownAlert)?;
        self.authorize(who, origin, Verb::Silence, None, &[], None)
            .await?;
        self.record_ack(&who.principal, origin, found, comment, said_in)
            .await
    }

    /// Who acknowledged the alert with this fingerprint, and when.
    pub fn alert_acked_by(&self, fingerprint: &str) -> Option<(String, Timestamp)> {
        let ack = self.shared.alerting.alert_ack(fingerprint.parse().ok()?)?;
        Some((ack.acked_by, ack.acked_at))
    }

    /// Acknowledges the firing alert with PagerDuty `dedup_key`, for the
    /// sender of an `acknowledge` event; `false` when there is none.
    pub(crate) async fn acknowledge_by_dedup_key(
        &self,
        dedup_key: &str,
    ) -> Result<bool, EngineError> {
        let firing = self.alerts(true, u32::MAX).await?;
        let Some(fp) = firing
            .iter()
            .find(|a| a.dedup_key.as_deref() == Some(dedup_key))
            .and_then(|a| a.fingerprint.parse().ok())
        else {
            return Ok(false);
        };
        self.record_ack(
            &Principal::system(),
            &Origin::api(),
            AckTarget::Alert(fp),
            "acknowledged by a PagerDuty event",
            None,
        )
        .await?;
        Ok(true)
    }

    async fn record_ack(
        &self,
        by: &Principal,
        origin: &Origin,
        target: AckTarget,
        comment: &str,
        said_in: Option<Destination>,
    ) -> Result<AckView, EngineError> {
        let ack = StoredAck {
            subject: target.subject(),
            acked_by: by.to_string(),
            acked_at: Timestamp::now(),
            comment: comment.trim().to_owned(),
        };
        self.shared.store.save_ack(&ack).await?;
        self.shared.alerting.set_ack(ack.clone());
        // An acknowledgement stops an escalation at the next tick: now.
        self.shared.alerting.wake.notify_one();
        let (kind, id, groups) = match &target {
            AckTarget::Alert(fp) => (
                "alert",
                fp.to_string(),
                self.shared.alerting.group_ids_of(*fp),
            ),
            AckTarget::Group(g) => ("group", g.short(), vec![g.clone()]),
        };
        // The groups' chat messages show it, and their threads say it.
        let mut notice = format!("{by} acknowledged {kind} `{id}`");
        if !ack.comment.is_empty() {
            notice.push_str(&format!(": {}", ack.comment));
        }
        let engine = self.clone();
        tokio::spawn(async move {
            engine
                .tell_alert_threads(&groups, &notice, said_in.as_ref())
                .await;
        });
        self.record(AuditEvent::now(
            by,
            origin,
            "alert.acknowledged",
            format!("{kind}:{id}"),
            "acknowledged",
            serde_json::json!({"comment": ack.comment}),
        ))
        .await;
        Ok(AckView {
            kind,
            id,
            acked_by: ack.acked_by,
            acked_at: ack.acked_at,
            comment: ack.comment,
        })
    }
}
