//! Silences: create, list and expire them — authorized by the `silence`
//! verb and audited, from every door alike — and hand the ones not yet
//! ended to the dispatcher, which holds back the alerts they match.
//!
//! Not here: what a silence matches and when it is active (core's
//! `alerts::silences`), the HTTP and chat grammar (the doors).

use std::time::Duration;

use switchboard_core::alerts::{Matchers, Silence, SilenceState};
use switchboard_core::audit::AuditEvent;
use switchboard_core::policy::Verb;
use switchboard_core::{Origin, Timestamp};
use switchboard_store::StoredSilence;

use crate::{Engine, EngineError, Identity, Shared};

/// The most silences listed.
const LIST_LIMIT: u32 = 1000;

/// A silence to create.
#[derive(Debug, Clone)]
pub struct NewSilence {
    /// Alertmanager's syntax: `alertname="Disk", instance=~"db-.*"`.
    pub matchers: String,
    /// Now when not given.
    pub starts_at: Option<Timestamp>,
    /// When it ends…
    pub ends_at: Option<Timestamp>,
    /// …or how long it lasts from its start (one of the two is needed).
    pub duration: Option<Duration>,
    pub comment: String,
}

/// A silence as shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SilenceView {
    pub id: String,
    pub matchers: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    /// `pending`, `active` or `expired`.
    pub state: &'static str,
}

impl SilenceView {
    fn of(s: &StoredSilence, now: Timestamp) -> Self {
        let state = if now < s.starts_at {
            SilenceState::Pending
        } else if now < s.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        };
        Self {
            id: s.id.clone(),
            matchers: s.matchers.clone(),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
            state: match state {
                SilenceState::Pending => "pending",
                SilenceState::Active => "active",
                SilenceState::Expired => "expired",
            },
        }
    }
}

fn new_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap_or_default();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The silences not yet ended, for the dispatcher.
pub(crate) async fn active(shared: &Shared) -> Result<Vec<Silence>, EngineError> {
    let now = Timestamp::now();
    let kept = shared.store.silences(Some(now), LIST_LIMIT).await?;
    Ok(kept
        .into_iter()
        .filter_map(|s| {
            Some(Silence {
                matchers: Matchers::parse(&s.matchers).ok()?,
                id: s.id,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                created_by: s.created_by,
                comment: s.comment,
            })
        })
        .collect())
}

impl Engine {
    /// Creates a silence for `who`, who needs the `silence` right.
    pub async fn create_silence(
        &self,
        who: &Identity,
        origin: &Origin,
        new: NewSilence,
    ) -> Result<SilenceView, EngineError> {
        let now = Timestamp::now();
        let matchers = Matchers::parse(&new.matchers)
            .map_err(|e| EngineError::Invalid(format!("matchers: {e}")))?;
        let starts_at = new.starts_at.unwrap_or(now).max(now);
        let ends_at = match (new.ends_at, new.duration) {
            (Some(end), None) => end,
            (None, Some(d)) => starts_at.after(d),
            (Some(_), Some(_)) => {
                return Err(EngineError::Invalid(
                    "give the silence an end or a duration, not both".to_owned(),
                ));
            }
            (None, None) => {
                return Err(EngineError::Invalid(
                    "a silence needs an end or a duration (`for 2h`)".to_owned(),
                ));
            }
        };
        if new.comment.trim().is_empty() {
            return Err(EngineError::Invalid(
                "a silence needs a comment saying why".to_owned(),
            ));
        }
        let silence = Silence {
            id: new_id(),
            matchers,
            starts_at,
            ends_at,
            created_by: who.principal.to_string(),
            comment: new.comment.trim().to_owned(),
        };
        silence
            .validate()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        self.authorize(who, origin, Verb::Silence, None, &[], None)
            .await?;
        let stored = StoredSilence {
            id: silence.id.clone(),
            matchers: silence.matchers.to_string(),
            starts_at,
            ends_at,
            created_by: silence.created_by.clone(),
            comment: silence.comment.clone(),
            created_at: now,
            updated_at: now,
        };
        self.shared.store.insert_silence(&stored).await?;
        self.record(AuditEvent::now(
            &who.principal,
            origin,
            "silence.created",
            format!("silence:{}", stored.id),
            "created",
            serde_json::json!({
                "matchers": stored.matchers,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "comment": stored.comment,
            }),
        ))
        .await;
        self.shared.alerting.wake.notify_one();
        Ok(SilenceView::of(&stored, now))
    }

    /// Ends a silence now; `who` needs the `silence` right.
    pub async fn expire_silence(
        &self,
        who: &Identity,
        origin: &Origin,
        id: &str,
    ) -> Result<SilenceView, EngineError> {
        self.authorize(who, origin, Verb::Silence, None, &[], None)
            .await?;
        let now = Timestamp::now();
        let Some(stored) = self.shared.store.expire_silence(id.trim(), now).await? else {
            return Err(EngineError::UnknownSilence(id.to_owned()));
        };
        self.record(AuditEvent::now(
            &who.principal,
            origin,
            "silence.expired",
            format!("silence:{}", stored.id),
            "expired",
            serde_json::json!({"matchers": stored.matchers, "created_by": stored.created_by}),
        ))
        .await;
        self.shared.alerting.wake.notify_one();
        Ok(SilenceView::of(&stored, now))
    }

    /// Silences, newest first: those not ended, or all.
    pub async fn silences(&self, include_expired: bool) -> Result<Vec<SilenceView>, EngineError> {
        let now = Timestamp::now();
        let kept = self
            .shared
            .store
            .silences((!include_expired).then_some(now), LIST_LIMIT)
            .await?;
        Ok(kept.iter().map(|s| SilenceView::of(s, now)).collect())
    }
}
