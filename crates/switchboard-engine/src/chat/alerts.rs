//! The alert commands of chat: `alerts [matchers]`, `silence <matchers>
//! for <duration> because <why>`, `unsilence ID`, `ack ID [comment]` and
//! `automate ID RULE` (the buttons of an alert's chat message say these).
//! Each calls the same engine method as the API, so the same rights (the
//! `silence` verb) and the same audit apply.
//!
//! Not here: the grammar of a silence request (core's
//! `alerts::silences::parse_request`).

use std::sync::Arc;
use switchboard_core::alerts::Matchers;
use switchboard_core::alerts::silences::parse_request;

use switchboard_core::chat::{ChatOutlet, Destination, Reply};
use switchboard_core::{Timestamp, alerts::LabelSet};

use super::{Speaker, refusal, say, table};
use crate::alerts::NewSilence;
use crate::{Engine, EngineError};

/// The most alerts one `alerts` answer lists.
const LIST_MAX: usize = 20;

impl Engine {
    /// `alerts [matchers]`: the firing alerts, newest first.
    pub(super) async fn chat_alerts(&self, text: &str) -> Reply {
        let matchers = match Matchers::parse(&text.split_whitespace().collect::<Vec<_>>().join(","))
        {
            Ok(m) => m,
            Err(e) => {
                return Reply::Text {
                    text: format!(
                        "Those matchers do not read: {e}. Say e.g. `alerts severity=critical`."
                    ),
                };
            }
        };
        let firing = match self.alerts(true, u32::MAX).await {
            Ok(a) => a,
            Err(e) => return refusal(e),
        };
        let now = Timestamp::now();
        let matching: Vec<_> = firing
            .into_iter()
            .filter(|a| LabelSet::from_pairs(a.labels.iter()).is_ok_and(|l| matchers.matches(&l)))
            .collect();
        if matching.is_empty() {
            return Reply::Text {
                text: "No alert is firing that matches.".to_owned(),
            };
        }
        let rows: Vec<(String, String)> = matching
            .iter()
            .take(LIST_MAX)
            .map(|a| {
                let label = |n: &str| a.labels.get(n).cloned().unwrap_or_default();
                let mut what = format!("{} {}", label("alertname"), label("instance"));
                if let Some(severity) = a.labels.get("severity") {
                    what.push_str(&format!(" ({severity})"));
                }
                let since = humantime::format_duration(std::time::Duration::from_secs(
                    u64::try_from((now.micros() - a.starts_at.micros()) / 1_000_000).unwrap_or(0),
                ));
                let ack = a
                    .fingerprint
                    .parse()
                    .ok()
                    .and_then(|fp| self.shared.alerting.alert_ack(fp))
                    .map(|k| format!(", acknowledged by {}", k.acked_by))
                    .unwrap_or_default();
                (a.fingerprint.clone(), format!("{what}, for {since}{ack}"))
            })
            .collect();
        let more = matching.len().saturating_sub(LIST_MAX);
        Reply::Code {
            title: format!(
                "{} firing{}:",
                matching.len(),
                if more > 0 {
                    format!(" ({more} not shown)")
                } else {
                    String::new()
                }
            ),
            code: table(&rows),
        }
    }

    /// `silence <matchers> for <duration> because <why>`.
    pub(super) async fn chat_silence(&self, speaker: &Speaker, text: &str) -> Reply {
        let request = match parse_request(text) {
            Ok(r) => r,
            Err(e) => return Reply::Text { text: e },
        };
        let new = NewSilence {
            matchers: request.matchers.to_string(),
            starts_at: None,
            ends_at: None,
            duration: Some(request.duration),
            comment: request.comment,
        };
        match self
            .create_silence(&speaker.identity, &speaker.origin, new)
            .await
        {
            Ok(s) => Reply::Text {
                text: format!(
                    "Silenced {} until {} (silence {}). Say `unsilence {}` to end it.",
                    s.matchers, s.ends_at, s.id, s.id
                ),
            },
            Err(e) => refusal(e),
        }
    }

    /// `unsilence ID`.
    pub(super) async fn chat_unsilence(&self, speaker: &Speaker, args: &[&str]) -> Reply {
        let [id] = args else {
            return Reply::Text {
                text: "Say `unsilence ID` (the id `silence` answered with).".to_owned(),
            };
        };
        match self
            .expire_silence(&speaker.identity, &speaker.origin, id)
            .await
        {
            Ok(s) => Reply::Text {
                text: format!("Silence {} ({}) has ended.", s.id, s.matchers),
            },
            Err(e) => refusal(e),
        }
    }

    /// `ack ID [comment]`, answered in `to`.
    pub(super) async fn chat_ack(
        &self,
        speaker: &Speaker,
        args: &[&str],
        to: &Destination,
    ) -> Reply {
        let Some((id, comment)) = args.split_first() else {
            return Reply::Text {
                text: "Say `ack ID` with an alert's fingerprint or a group's id (see `alerts`)."
                    .to_owned(),
            };
        };
        let comment = comment.join(" ");
        match self
            .acknowledge_in(
                &speaker.identity,
                &speaker.origin,
                id,
                &comment,
                Some(to.clone()),
            )
            .await
        {
            Ok(a) => Reply::Text {
                text: format!("{} acknowledged {} `{}`.", a.acked_by, a.kind, a.id),
            },
            Err(e) => refusal(e),
        }
    }

    /// `automate ID RULE`: runs an automation rule now for the firing
    /// alerts of an alert or group, as the speaker; each run is announced
    /// and followed in `to` like a command's.
    pub(super) async fn chat_automate(
        &self,
        speaker: &Speaker,
        args: &[&str],
        to: Destination,
        outlet: Arc<dyn ChatOutlet>,
    ) -> Result<(), EngineError> {
        let [id, rule] = args else {
            let reply = Reply::Text {
                text: "Say `automate ID RULE` with an alert's fingerprint or a group's id and an automation rule of alerts.toml.".to_owned(),
            };
            return say(&*outlet, &to, reply).await;
        };
        let runs = match self
            .automate_now(&speaker.identity, &speaker.origin, id, rule)
            .await
        {
            Ok(runs) => runs,
            Err(e) => return say(&*outlet, &to, refusal(e)).await,
        };
        for execution in runs {
            let ack = format!("Automation `{rule}` runs {}…", execution.action);
            self.announce_run(execution, ack, to.clone(), outlet.clone())
                .await?;
        }
        Ok(())
    }
}
