//! Tests of the alerts core, one file per module, with Alertmanager's
//! documented behaviour and the published fixtures (copied here:
//! `alertmanager-webhook-v4.json` is the shared webhook sample, and the
//! fingerprint vectors are in `labels.rs`).

mod aggregation;
mod automation;
mod config;
mod escalation;
mod inhibit;
mod labels;
mod matchers;
mod payload;
mod routing;
mod silences;
mod time_intervals;

use crate::alerts::LabelSet;
use crate::ids::Timestamp;

/// A label set from `name=value` pairs.
fn ls(pairs: &[(&str, &str)]) -> LabelSet {
    LabelSet::from_pairs(pairs.iter().copied()).unwrap()
}

/// A time from RFC 3339 text.
fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}
