//! Automation rules: an alert that fires and matches a rule runs an action,
//! its parameters taken from the alert's labels and annotations.
//!
//! ```toml
//! [[automations]]
//! name = "restart-dead-service"
//! matchers = ['alertname="ServiceDown"']
//! action = "service.restart"
//! params = { service = "{{ labels.service }}", host = "{{ labels.instance }}" }
//! delay = "1m"          # then run, unless it resolved meanwhile (default 0s)
//! rate_limit = "30m"    # at most one run per rule and alert in this time (default 10m)
//! run_as = "svc:automation"   # the principal the run is requested as
//! ```
//!
//! Owns [`Automation`] and rendering its parameters
//! ([`Automation::params_for`]): each value is a template (minijinja, strict:
//! a label the alert lacks is an error, not an empty string) over `labels`,
//! `annotations` and `fingerprint`. Not here: reading the rules (`config`),
//! checking that the action exists (the catalog), and scheduling, running
//! and authorizing the run (the engine; the run goes through `submit` as
//! `run_as`, from the `alert` door, so policies and approvals apply).

use std::collections::BTreeMap;
use std::time::Duration;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};

use super::labels::LabelSet;
use super::matchers::Matchers;

/// The default `rate_limit`.
pub const DEFAULT_RATE_LIMIT: Duration = Duration::from_secs(600);

/// A rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Automation {
    pub name: String,
    pub matchers: Matchers,
    pub action: String,
    /// Parameter name → template.
    pub params: BTreeMap<String, String>,
    pub delay: Duration,
    pub rate_limit: Duration,
    pub run_as: String,
    pub line: usize,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env
}

/// Whether `template` reads as a template; the error says why not.
pub fn check_template(template: &str) -> Result<(), String> {
    environment()
        .template_from_str(template)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

impl Automation {
    /// Whether the rule applies to an alert with these labels.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.matchers.matches(labels)
    }

    /// The action's parameters for an alert; the error names the
    /// parameter whose template failed (a missing label, say).
    pub fn params_for(
        &self,
        labels: &LabelSet,
        annotations: &BTreeMap<String, String>,
        fingerprint: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        let env = environment();
        let ctx = context! {
            labels => labels.as_map(),
            annotations => annotations,
            fingerprint => fingerprint,
        };
        self.params
            .iter()
            .map(|(name, template)| {
                env.render_str(template, &ctx)
                    .map(|value| (name.clone(), value))
                    .map_err(|e| format!("params.{name}: {e}"))
            })
            .collect()
    }
}
