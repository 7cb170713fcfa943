//! Alerts: the pure core of Alertmanager-compatible alerting — what an
//! alert is (labels and their fingerprint), how alerts arrive (Alertmanager
//! webhook and API bodies, PagerDuty Events v2, a generic JSON), and how
//! they are routed, grouped, inhibited, muted and silenced, with the
//! semantics Alertmanager's users know.
//!
//! One file per concern: `labels` (label sets, fingerprints), `matchers`
//! (label matchers and their syntax), `payload` (ingest formats), `routing`
//! (the route tree, group keys, PagerDuty dedup keys), `config` (reading
//! the catalog's `alerts.toml`, with `toml_reader`'s helpers), `inhibit` (inhibition rules),
//! `time_intervals` (mute and active times) and `silences`.
//!
//! Deliberately not here: HTTP, storage, timers and delivery. Everything
//! takes the current time as an argument; keeping alerts, waiting
//! `group_wait`, retrying outlets and the receivers' own settings belong to
//! the engine, the store and the connectors.

pub mod aggregation;
pub mod automation;
pub mod config;
pub mod escalation;
pub mod inhibit;
pub mod labels;
pub mod matchers;
pub mod payload;
pub mod receivers;
pub mod routing;
pub mod silences;
pub mod time_intervals;
pub(crate) mod toml_reader;

#[cfg(test)]
mod tests;

pub use config::{AlertsConfig, FILE, Receiver};
pub use inhibit::{InhibitRule, Inhibitor};
pub use labels::{Fingerprint, LabelError, LabelSet, fingerprint};
pub use matchers::{MatchOp, Matcher, MatcherError, Matchers};
pub use payload::{Action, IncomingAlert, PayloadError, Source};
pub use routing::{
    GroupBy, Route, RouteNode, RouteOptions, group_key, group_labels, pagerduty_dedup_key,
};
pub use silences::{Silence, SilenceError, SilenceState};
pub use time_intervals::{Location, TimeInterval, TimePeriod};
