//! Inhibition: an alert is not notified while another, more important one
//! fires — Alertmanager's `inhibit_rules` and `inhibit.go`.
//!
//! Owns [`InhibitRule`] and [`Inhibitor::is_inhibited`]. As Alertmanager: a
//! rule applies to a target whose labels satisfy `target_matchers`; it is
//! inhibited by any firing alert that satisfies `source_matchers` and has
//! the same value for every label in `equal`, a label missing on both sides
//! counting as equal (both read as the empty string, so a missing label
//! also equals an empty one). When the target also satisfies the source
//! matchers, sources that also satisfy the target matchers are skipped, so
//! an alert never inhibits itself (nor another alert of the same kind). The
//! first rule that inhibits wins, and the answer names the inhibiting
//! alert's fingerprint.
//!
//! Not here: knowing which alerts fire (the caller passes them, resolved
//! ones left out) and recording why an alert was held back.

use std::collections::BTreeSet;

use super::labels::{Fingerprint, LabelSet};
use super::matchers::Matchers;

/// One `[[inhibit_rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InhibitRule {
    pub source_matchers: Matchers,
    pub target_matchers: Matchers,
    /// Labels that must have the same value on source and target.
    pub equal: BTreeSet<String>,
    /// The line of its `[[inhibit_rules]]` header (0 when not from a file).
    pub line: usize,
}

impl InhibitRule {
    /// The first alert of `firing` that inhibits `target` under this rule.
    pub fn inhibited_by(&self, target: &LabelSet, firing: &[LabelSet]) -> Option<Fingerprint> {
        if !self.target_matchers.matches(target) {
            return None;
        }
        let two_sided = self.source_matchers.matches(target);
        firing
            .iter()
            .filter(|source| self.source_matchers.matches(source))
            .filter(|source| {
                self.equal
                    .iter()
                    .all(|n| source.value(n) == target.value(n))
            })
            .find(|source| !(two_sided && self.target_matchers.matches(source)))
            .map(LabelSet::fingerprint)
    }
}

/// The inhibition rules of a configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inhibitor {
    rules: Vec<InhibitRule>,
}

impl Inhibitor {
    pub fn new(rules: Vec<InhibitRule>) -> Self {
        Self { rules }
    }

    pub fn rules(&self) -> &[InhibitRule] {
        &self.rules
    }

    /// The fingerprint of the firing alert that inhibits `target`, if one
    /// does (the first rule that inhibits decides).
    pub fn is_inhibited(&self, target: &LabelSet, firing: &[LabelSet]) -> Option<Fingerprint> {
        self.rules
            .iter()
            .find_map(|rule| rule.inhibited_by(target, firing))
    }
}
