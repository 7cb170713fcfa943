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
//! Also the chat grammar of a silence request, [`parse_request`]:
//! `<matchers> for <duration> because <comment>`, matchers separated by
//! spaces or commas (`alertname=DiskFull instance=~"db-.*"`), a quoted
//! value may hold spaces and the word `for`.
//!
//! Not here: storing silences, expiring them, and refusing an end already
//! in the past when one is created (the caller knows "now" and decides).

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

/// A silence as asked for in chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceRequest {
    pub matchers: Matchers,
    pub duration: std::time::Duration,
    pub comment: String,
}

/// The usage of the chat grammar, for error messages.
pub const REQUEST_USAGE: &str = "silence <matchers> for <duration> because <why>, e.g. `silence alertname=DiskFull instance=~\"db-.*\" for 2h because replacing the disks`";

/// Reads `<matchers> for <duration> because <comment>`.
pub fn parse_request(text: &str) -> Result<SilenceRequest, String> {
    let words = split_words(text)?;
    let for_at = words
        .iter()
        .position(|(w, _)| w.eq_ignore_ascii_case("for"))
        .ok_or_else(|| format!("say how long: {REQUEST_USAGE}"))?;
    if for_at == 0 {
        return Err(format!("say which alerts: {REQUEST_USAGE}"));
    }
    let matcher_text = words[..for_at]
        .iter()
        .map(|(w, _)| w.trim_end_matches(',').to_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let matchers = Matchers::parse(&matcher_text).map_err(|e| format!("matchers: {e}"))?;
    let duration_word = words
        .get(for_at + 1)
        .map(|(w, _)| w.as_str())
        .ok_or_else(|| format!("say how long after `for`: {REQUEST_USAGE}"))?;
    let duration = humantime::parse_duration(duration_word)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{duration_word}` is not a duration like `2h` or `30m`"))?;
    let comment = match words.get(for_at + 2) {
        Some((w, start)) if w.trim_end_matches(':').eq_ignore_ascii_case("because") => {
            text[*start + w.len()..].trim()
        }
        Some((w, _)) => {
            return Err(format!(
                "expected `because <why>` after the duration, found `{w}`"
            ));
        }
        None => "",
    };
    if comment.is_empty() {
        return Err(format!("say why, after `because`: {REQUEST_USAGE}"));
    }
    Ok(SilenceRequest {
        matchers,
        duration,
        comment: comment.to_owned(),
    })
}

/// Whitespace-separated words with their byte offsets; double quotes (with
/// backslash escapes) keep spaces inside a word.
fn split_words(text: &str) -> Result<Vec<(String, usize)>, String> {
    let mut words = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        let mut quoted = false;
        while let Some(&(_, c)) = chars.peek() {
            if c.is_whitespace() && !quoted {
                break;
            }
            chars.next();
            word.push(c);
            if c == '\\' && quoted {
                if let Some((_, escaped)) = chars.next() {
                    word.push(escaped);
                }
            } else if c == '"' {
                quoted = !quoted;
            }
        }
        if quoted {
            return Err(format!("a quote opened in `{word}` is never closed"));
        }
        words.push((word, start));
    }
    Ok(words)
}
