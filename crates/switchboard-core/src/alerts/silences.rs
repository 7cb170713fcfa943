//! Silences: matchers that mute notifications for a while, as
//! Alertmanager's silences.
//!
//! Owns [`Silence`], its validation and its state. As Alertmanager: a
//! silence is pending before `starts_at`, active from `starts_at`
//! (included) to `ends_at` (excluded), then expired; it silences an alert
//! when it is active and all its matchers hold for the alert's labels (a
//! missing label is the empty string). Validation refuses what
//! Alertmanager's API refuses: no id, no matchers, an end not after the
//! start, and matchers that would all match the empty string — judged as
//! Alertmanager judges them, by `=` and `=~` matchers only (`!=` and `!~`
//! never count as matching the empty string there), so `{job=""}` and
//! `{job=~".*"}` are refused.
//!
//! Not here: storing silences, expiring them, refusing an end already in
//! the past when one is created (the caller knows "now" and decides), and
//! the chat grammar `silence <matchers> for 2h because …`.

use super::labels::LabelSet;
use super::matchers::{MatchOp, Matchers};
use crate::ids::Timestamp;

/// A silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub id: String,
    pub matchers: Matchers,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
}

/// Where a silence is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

/// Why a silence is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("a silence needs an id")]
    MissingId,
    #[error("a silence needs at least one matcher")]
    NoMatchers,
    #[error(
        "at least one matcher must not match the empty string, or the silence would match every alert"
    )]
    MatchesEverything,
    #[error("the silence must end ({ends_at}) after it starts ({starts_at})")]
    EndNotAfterStart {
        starts_at: Timestamp,
        ends_at: Timestamp,
    },
}

impl Silence {
    /// Checks the silence as Alertmanager's API does.
    pub fn validate(&self) -> Result<(), SilenceError> {
        if self.id.trim().is_empty() {
            return Err(SilenceError::MissingId);
        }
        if self.matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        let matches_empty = |m: &super::matchers::Matcher| match m.op() {
            MatchOp::Eq | MatchOp::Re => m.matches_value(""),
            MatchOp::NotEq | MatchOp::NotRe => false,
        };
        if self.matchers.iter().all(matches_empty) {
            return Err(SilenceError::MatchesEverything);
        }
        if self.ends_at <= self.starts_at {
            return Err(SilenceError::EndNotAfterStart {
                starts_at: self.starts_at,
                ends_at: self.ends_at,
            });
        }
        Ok(())
    }

    pub fn state(&self, now: Timestamp) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn is_active(&self, now: Timestamp) -> bool {
        self.state(now) == SilenceState::Active
    }

    /// Whether this silence mutes an alert with `labels` at `now`.
    pub fn silences(&self, labels: &LabelSet, now: Timestamp) -> bool {
        self.is_active(now) && self.matchers.matches(labels)
    }
}

/// The silences of `all` that mute `labels` at `now`.
pub fn silenced_by<'a>(all: &'a [Silence], labels: &LabelSet, now: Timestamp) -> Vec<&'a Silence> {
    all.iter().filter(|s| s.silences(labels, now)).collect()
}
